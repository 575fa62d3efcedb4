// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Trace signals sent with kill(2), tkill(2) and tgkill(2): sender, target, signal, result.
 * The entry tracepoint keeps the arguments per thread; the exit tracepoint emits them
 * with the return value. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "sigsnoop.h"

/// Sender process ID to trace (0: every sender)
const volatile pid_t filtered_pid = 0;
/// Signal number to trace (0: every signal)
const volatile int target_signal = 0;
/// Report only calls that failed
const volatile bool failed_only = false;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);
	__type(value, struct event);
} values SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

/* Names the exported record type for the package meta (the ecc convention). */
struct event *__eunomia_dummy_event_ptr __attribute__((unused));

static __always_inline int probe_entry(pid_t tpid, int sig)
{
	struct event event = {};
	u64 id = bpf_get_current_pid_tgid();
	u32 pid = id >> 32, tid = (u32)id;

	if (target_signal && sig != target_signal)
		return 0;
	if (filtered_pid && pid != filtered_pid)
		return 0;

	event.pid = pid;
	event.tpid = tpid;
	event.sig = sig;
	bpf_get_current_comm(event.comm, sizeof(event.comm));
	bpf_map_update_elem(&values, &tid, &event, BPF_ANY);
	return 0;
}

static __always_inline int probe_exit(int ret)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct event *eventp, *e;

	eventp = bpf_map_lookup_elem(&values, &tid);
	if (!eventp)
		return 0;
	if (failed_only && ret >= 0)
		goto cleanup;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		goto cleanup;
	*e = *eventp;
	e->ret = ret;
	bpf_ringbuf_submit(e, 0);

cleanup:
	bpf_map_delete_elem(&values, &tid);
	return 0;
}

SEC("tp/syscalls/sys_enter_kill")
int kill_entry(struct trace_event_raw_sys_enter *ctx)
{
	return probe_entry((pid_t)ctx->args[0], (int)ctx->args[1]);
}

SEC("tp/syscalls/sys_exit_kill")
int kill_exit(struct trace_event_raw_sys_exit *ctx)
{
	return probe_exit((int)ctx->ret);
}

SEC("tp/syscalls/sys_enter_tkill")
int tkill_entry(struct trace_event_raw_sys_enter *ctx)
{
	return probe_entry((pid_t)ctx->args[0], (int)ctx->args[1]);
}

SEC("tp/syscalls/sys_exit_tkill")
int tkill_exit(struct trace_event_raw_sys_exit *ctx)
{
	return probe_exit((int)ctx->ret);
}

SEC("tp/syscalls/sys_enter_tgkill")
int tgkill_entry(struct trace_event_raw_sys_enter *ctx)
{
	return probe_entry((pid_t)ctx->args[1], (int)ctx->args[2]);
}

SEC("tp/syscalls/sys_exit_tgkill")
int tgkill_exit(struct trace_event_raw_sys_exit *ctx)
{
	return probe_exit((int)ctx->ret);
}

/// Trace signals sent by kill(2), tkill(2) and tgkill(2): sender, target, signal, result.
char LICENSE[] SEC("license") = "Dual BSD/GPL";
