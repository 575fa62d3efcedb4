/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef __XDP_H
#define __XDP_H

/* EtherTypes (host byte order) that get a name in the output; others print as numbers. */
enum eth_proto_name {
	IPV4 = 0x0800,
	ARP = 0x0806,
	IPV6 = 0x86DD,
};

/* IP protocol numbers that get a name in the output (255, reserved by IANA: not IP). */
enum ip_proto_name {
	HOPOPT = 0,
	ICMP = 1,
	TCP = 6,
	UDP = 17,
	ICMPV6 = 58,
	NOT_IP = 255,
};

/*
 * One record per packet that reaches the XDP hook, exported through `events`. len is the
 * whole frame, Ethernet header included. sport/dport (host byte order) are set for UDP
 * and TCP over IPv4 and IPv6 (without extension headers), zero otherwise.
 */
struct event {
	unsigned int ifindex;
	unsigned int len;
	enum eth_proto_name protocol;
	enum ip_proto_name ip_proto;
	unsigned short sport;
	unsigned short dport;
};

#endif /* __XDP_H */
