// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* An XDP program that reports every packet arriving on an interface and passes it on. */
#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include "xdp.h"

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17

/// Report only UDP/TCP packets from or to this port (0: every packet)
const volatile __u16 target_port = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

/* Names the exported record type for the package meta (the ecc convention). */
struct event *__eunomia_dummy_event_ptr __attribute__((unused));

/* Where the IP payload starts and which protocol it is; NULL when not IP or truncated. */
static __always_inline void *l4_header(void *l3, void *data_end, __u16 protocol,
				       __u8 *ip_proto)
{
	if (protocol == ETH_P_IP) {
		struct iphdr *ip = l3;

		if ((void *)(ip + 1) > data_end || ip->ihl < 5)
			return NULL;
		*ip_proto = ip->protocol;
		return l3 + ip->ihl * 4;
	}
	if (protocol == ETH_P_IPV6) {
		struct ipv6hdr *ip6 = l3;

		if ((void *)(ip6 + 1) > data_end)
			return NULL;
		*ip_proto = ip6->nexthdr;
		return ip6 + 1;
	}
	return NULL;
}

/// Runs on loopback (ifindex 1) unless `ecli run xdp --ifname IF` says otherwise.
/// @ifindex 1
/// @flags 0
/// @xdpopts {"old_prog_fd": 0}
SEC("xdp")
int xdp_report(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	void *data = (void *)(long)ctx->data;
	struct ethhdr *eth = data;
	__u16 protocol, sport = 0, dport = 0;
	__u8 ip_proto = NOT_IP;
	struct event *e;
	void *l4;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	protocol = bpf_ntohs(eth->h_proto);
	l4 = l4_header(eth + 1, data_end, protocol, &ip_proto);
	/* The ports are the first four bytes of both the UDP and the TCP header. */
	if (l4 && (ip_proto == IPPROTO_UDP || ip_proto == IPPROTO_TCP) &&
	    l4 + 2 * sizeof(__u16) <= data_end) {
		sport = bpf_ntohs(((__be16 *)l4)[0]);
		dport = bpf_ntohs(((__be16 *)l4)[1]);
	}
	if (target_port && target_port != sport && target_port != dport)
		return XDP_PASS;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return XDP_PASS;
	e->ifindex = ctx->ingress_ifindex;
	e->len = data_end - data;
	e->protocol = protocol;
	e->ip_proto = ip_proto;
	e->sport = sport;
	e->dport = dport;
	bpf_ringbuf_submit(e, 0);
	return XDP_PASS;
}

/// Report the packets arriving on an interface (XDP) and let them pass.
char LICENSE[] SEC("license") = "Dual BSD/GPL";
