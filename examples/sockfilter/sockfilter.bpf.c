// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* A socket filter: reports each IPv4 packet a socket is about to receive and, if told
 * to, keeps only those from one source port. The runtime loads it; the user attaches it
 * to a socket with setsockopt(SO_ATTACH_BPF) (see README.md). */
#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include "sockfilter.h"

#define ETH_P_IP 0x0800
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17

/// Keep only UDP/TCP packets from this source port (0: keep every packet)
const volatile __u16 only_sport = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

/* Names the exported record type for the package meta (the ecc convention). */
struct event *__eunomia_dummy_event_ptr __attribute__((unused));

SEC("socket")
int socket_filter(struct __sk_buff *skb)
{
	struct iphdr ip;
	__be16 ports[2];
	struct event *e;
	__u16 sport = 0, dport = 0;
	bool kept = true;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return skb->len;
	/* Relative to the network header, so that the same program works on a UDP socket
	 * (whose data starts at the UDP header) and on a packet socket (at Ethernet). */
	if (bpf_skb_load_bytes_relative(skb, 0, &ip, sizeof(ip), BPF_HDR_START_NET))
		return skb->len;
	if ((ip.protocol == IPPROTO_UDP || ip.protocol == IPPROTO_TCP) &&
	    !bpf_skb_load_bytes_relative(skb, ip.ihl * 4, ports, sizeof(ports),
					  BPF_HDR_START_NET)) {
		sport = bpf_ntohs(ports[0]);
		dport = bpf_ntohs(ports[1]);
	}
	if (only_sport && only_sport != sport)
		kept = false;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (e) {
		e->len = skb->len;
		e->ip_proto = ip.protocol;
		__builtin_memcpy(e->saddr, &ip.saddr, sizeof(e->saddr));
		__builtin_memcpy(e->daddr, &ip.daddr, sizeof(e->daddr));
		e->sport = sport;
		e->dport = dport;
		e->kept = kept;
		bpf_ringbuf_submit(e, 0);
	}
	/* A socket filter returns how many bytes of the packet to keep: 0 drops it. */
	return kept ? skb->len : 0;
}

/// Socket filter: report the IPv4 packets a socket receives, optionally keep one source port.
/// ecli only loads it: attach it to a socket of yours with setsockopt(SO_ATTACH_BPF).
char LICENSE[] SEC("license") = "Dual BSD/GPL";
