// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* A USDT probe: the eunomia:tick probe of eunomia-usdt-target (usdt_target.c), with its two
 * arguments read through libbpf's BPF_USDT (the argument locations come from the binary's
 * .note.stapsdt notes, decoded by libbpf at attach time).
 *
 * The binary is named without a slash, so libbpf looks it up in ecli's $PATH (then
 * /usr/bin:/usr/sbin) when it attaches: install the target in a $PATH directory, or run
 * `PATH=DIR:$PATH ecli run usdt`. Every process running that binary is traced. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>
#include "usdt.h"

/// Process ID to trace (0: every process running the target)
const volatile pid_t targ_pid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

/* Names the exported record type for the package meta (the ecc convention). */
struct event *__eunomia_dummy_event_ptr __attribute__((unused));

SEC("usdt/eunomia-usdt-target:eunomia:tick")
int BPF_USDT(handle_tick, long seq, const char *message)
{
	pid_t pid = bpf_get_current_pid_tgid() >> 32;
	struct event *e;

	if (targ_pid && pid != targ_pid)
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = pid;
	e->seq = seq;
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	bpf_probe_read_user_str(&e->message, sizeof(e->message), message);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/// Trace the eunomia:tick USDT probe of eunomia-usdt-target (found in $PATH).
char LICENSE[] SEC("license") = "Dual BSD/GPL";
