/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef __SOCKFILTER_H
#define __SOCKFILTER_H

/* IPv4 protocol numbers that get a name in the output. */
enum ip_proto_name {
	ICMP = 1,
	TCP = 6,
	UDP = 17,
};

/*
 * One record per IPv4 packet the filter judged, exported through `events`. Addresses are
 * raw bytes in network order; ports are in host order (zero unless UDP or TCP); kept says
 * whether the packet went on to the socket.
 */
struct event {
	unsigned int len;
	enum ip_proto_name ip_proto;
	unsigned char saddr[4];
	unsigned char daddr[4];
	unsigned short sport;
	unsigned short dport;
	bool kept;
};

#endif /* __SOCKFILTER_H */
