/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef __TCPSTATES_H
#define __TCPSTATES_H

#define TASK_COMM_LEN 16

/*
 * The kernel's TCP states (include/net/tcp_states.h). vmlinux.h spells them TCP_* in an
 * anonymous enum, which no field can have as its type; this named copy lets the decoder
 * print "ESTABLISHED" rather than 1.
 */
enum tcp_state_name {
	ESTABLISHED = 1,
	SYN_SENT = 2,
	SYN_RECV = 3,
	FIN_WAIT1 = 4,
	FIN_WAIT2 = 5,
	TIME_WAIT = 6,
	CLOSE = 7,
	CLOSE_WAIT = 8,
	LAST_ACK = 9,
	LISTEN = 10,
	CLOSING = 11,
	NEW_SYN_RECV = 12,
	BOUND_INACTIVE = 13,
};

/*
 * One record per TCP state change, exported through `events`. Addresses are raw bytes in
 * network order, as the tracepoint gives them (BPF has no string formatting to make
 * "127.0.0.1" of them): saddr/daddr hold the IPv4 address of an AF_INET (2) socket,
 * saddr_v6/daddr_v6 the IPv6 address of an AF_INET6 (10) socket (IPv4-mapped,
 * ::ffff:a.b.c.d, for an AF_INET one).
 */
struct event {
	unsigned long long skaddr;
	unsigned long long ts_us;
	unsigned long long delta_us;
	int pid;
	enum tcp_state_name oldstate;
	enum tcp_state_name newstate;
	unsigned short family;
	unsigned short sport;
	unsigned short dport;
	unsigned char saddr[4];
	unsigned char daddr[4];
	unsigned char saddr_v6[16];
	unsigned char daddr_v6[16];
	char comm[TASK_COMM_LEN];
};

#endif /* __TCPSTATES_H */
