// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Trace process exits: who exited, its parent, its exit status and how long it lived. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "exitsnoop.h"

/// Process ID to trace (0: every process)
const volatile pid_t targ_pid = 0;
/// Report only processes that exited with a non-zero status or were killed
const volatile bool trace_failed_only = false;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

/* Names the exported record type for the package meta (the ecc convention). */
struct event *__eunomia_dummy_event_ptr __attribute__((unused));

SEC("tp/sched/sched_process_exit")
int handle_exit(struct trace_event_raw_sched_process_template *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	pid_t pid = id >> 32, tid = (u32)id;
	struct task_struct *task;
	unsigned int status;
	struct event *e;

	/* One record per process, not per thread: only the group leader's exit counts. */
	if (pid != tid)
		return 0;
	if (targ_pid && pid != targ_pid)
		return 0;

	task = (struct task_struct *)bpf_get_current_task();
	status = BPF_CORE_READ(task, exit_code);
	if (trace_failed_only && status == 0)
		return 0;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = pid;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	/* wait(2) status: exit code in bits 8-15, terminating signal in bits 0-6 */
	e->exit_code = (status >> 8) & 0xff;
	e->sig = status & 0x7f;
	e->duration_ns = bpf_ktime_get_ns() - BPF_CORE_READ(task, start_time);
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/// Trace process exits: pid, parent, exit code or signal, lifetime, command.
char LICENSE[] SEC("license") = "Dual BSD/GPL";
