// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Trace TCP state changes: which socket went from which state to which, and how long
 * it stayed in the old one. Modelled on libbpf-tools' tcpstates. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "tcpstates.h"

#define IPPROTO_TCP 6

/// Address family to trace: 2 (AF_INET) or 10 (AF_INET6); 0: both
const volatile short target_family = 0;
/// Local port to trace (0: every port)
const volatile __u16 target_sport = 0;
/// Remote port to trace (0: every port)
const volatile __u16 target_dport = 0;

/* When each socket entered its current state, to report how long it stayed there. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u64);
	__type(value, __u64);
} timestamps SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

/* Names the exported record type for the package meta (the ecc convention). */
struct event *__eunomia_dummy_event_ptr __attribute__((unused));

SEC("tp/sock/inet_sock_set_state")
int handle_set_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	__u64 skaddr = (__u64)ctx->skaddr;
	__u16 family = ctx->family;
	__u16 sport = ctx->sport;
	__u16 dport = ctx->dport;
	__u64 *start, ts, delta_us;
	struct event *e;

	if (ctx->protocol != IPPROTO_TCP)
		return 0;
	if (target_family && target_family != family)
		return 0;
	if (target_sport && target_sport != sport)
		return 0;
	if (target_dport && target_dport != dport)
		return 0;

	ts = bpf_ktime_get_ns();
	start = bpf_map_lookup_elem(&timestamps, &skaddr);
	delta_us = start ? (ts - *start) / 1000 : 0;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (e) {
		e->skaddr = skaddr;
		e->ts_us = ts / 1000;
		e->delta_us = delta_us;
		/* The task on the CPU: for changes driven by softirq (an incoming SYN, a
		 * FIN) it is whoever was interrupted, as in the original tool. */
		e->pid = bpf_get_current_pid_tgid() >> 32;
		e->oldstate = ctx->oldstate;
		e->newstate = ctx->newstate;
		e->family = family;
		e->sport = sport;
		e->dport = dport;
		bpf_get_current_comm(&e->comm, sizeof(e->comm));
		/* The verifier allows only fixed-offset loads from a tracepoint context, and
		 * clang turns a memcpy of an array member into loads from a moved pointer. */
		bpf_probe_read_kernel(e->saddr, sizeof(e->saddr), ctx->saddr);
		bpf_probe_read_kernel(e->daddr, sizeof(e->daddr), ctx->daddr);
		bpf_probe_read_kernel(e->saddr_v6, sizeof(e->saddr_v6), ctx->saddr_v6);
		bpf_probe_read_kernel(e->daddr_v6, sizeof(e->daddr_v6), ctx->daddr_v6);
		bpf_ringbuf_submit(e, 0);
	}

	if (ctx->newstate == TCP_CLOSE)
		bpf_map_delete_elem(&timestamps, &skaddr);
	else
		bpf_map_update_elem(&timestamps, &skaddr, &ts, BPF_ANY);
	return 0;
}

/// Trace TCP state changes: socket, addresses, ports, old and new state, time in the old state.
char LICENSE[] SEC("license") = "Dual BSD/GPL";
