// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* A tc (clsact) ingress classifier that reports every packet it sees and lets it pass. */
#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include "tc.h"

#define TC_ACT_OK 0
#define ETH_P_IP 0x0800

/// Report only packets of this EtherType, e.g. 2048 for IPv4 (0: every packet)
const volatile __u16 only_protocol = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

/* Names the exported record type for the package meta (the ecc convention). */
struct event *__eunomia_dummy_event_ptr __attribute__((unused));

/// Runs on loopback (ifindex 1) unless `ecli run tc --ifname IF` says otherwise.
/// @tchook {"ifindex": 1, "attach_point": "BPF_TC_INGRESS"}
/// @tcopts {"handle": 1, "priority": 1}
SEC("tc")
int tc_ingress(struct __sk_buff *skb)
{
	void *data_end = (void *)(long)skb->data_end;
	void *data = (void *)(long)skb->data;
	__u16 protocol = bpf_ntohs(skb->protocol);
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct event *e;

	if (only_protocol && only_protocol != protocol)
		return TC_ACT_OK;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return TC_ACT_OK;
	__builtin_memset(e, 0, sizeof(*e));
	e->ifindex = skb->ifindex;
	e->len = skb->len;
	e->protocol = protocol;
	e->ip_proto = NOT_IPV4;

	ip = (struct iphdr *)(eth + 1);
	if (protocol == ETH_P_IP && (void *)(ip + 1) <= data_end) {
		e->ip_proto = ip->protocol;
		e->ttl = ip->ttl;
		__builtin_memcpy(e->saddr, &ip->saddr, sizeof(e->saddr));
		__builtin_memcpy(e->daddr, &ip->daddr, sizeof(e->daddr));
	}
	bpf_ringbuf_submit(e, 0);
	return TC_ACT_OK;
}

/// Report the packets arriving on an interface (tc ingress classifier) and let them pass.
char LICENSE[] SEC("license") = "Dual BSD/GPL";
