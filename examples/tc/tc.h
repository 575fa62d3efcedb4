/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef __TC_H
#define __TC_H

/* EtherTypes (host byte order) that get a name in the output; others print as numbers. */
enum eth_proto_name {
	IPV4 = 0x0800,
	ARP = 0x0806,
	IPV6 = 0x86DD,
};

/* IPv4 protocol numbers that get a name in the output (255, reserved: not IPv4). */
enum ip_proto_name {
	ICMP = 1,
	TCP = 6,
	UDP = 17,
	NOT_IPV4 = 255,
};

/*
 * One record per packet the classifier sees, exported through `events`. The IPv4 fields
 * (saddr, daddr, ttl) are zero for other packets, whose ip_proto is NOT_IPV4; addresses
 * are raw bytes in network order, as BPF cannot format them.
 */
struct event {
	unsigned int ifindex;
	unsigned int len;
	enum eth_proto_name protocol;
	enum ip_proto_name ip_proto;
	unsigned char saddr[4];
	unsigned char daddr[4];
	unsigned char ttl;
};

#endif /* __TC_H */
