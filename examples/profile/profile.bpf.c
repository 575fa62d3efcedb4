// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Sample what every CPU is running, a few dozen times a second, with its kernel and user
 * stacks (as ids into a stack-trace map). Modelled on libbpf-tools' profile. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "profile.h"

#define PERF_MAX_STACK_DEPTH 127

/// Process ID to sample (0: every process)
const volatile pid_t targ_pid = 0;
/// Also report samples of the idle task (pid 0)
const volatile bool include_idle = false;

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 16384);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, PERF_MAX_STACK_DEPTH * sizeof(__u64));
} stack_traces SEC(".maps");

/* `@intepreter {"stack_trace": {}}` (spelled as in the public eunomia-bpf examples) marks
 * the events' stack fields: the runtime reads kstack_id/ustack_id from stack_traces while
 * the program runs and adds the symbolized frames as kstack/ustack. */
/// One record per sample, with its stack ids
/// @intepreter {"stack_trace": {}}
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

/* Names the exported record type for the package meta (the ecc convention). */
struct event *__eunomia_dummy_event_ptr __attribute__((unused));

/// Attached to a software cpu-clock event on every online CPU.
/// @sample_freq 49
SEC("perf_event")
int profile(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	pid_t pid = id >> 32;
	struct event *e;

	if (!include_idle && pid == 0)
		return 0;
	if (targ_pid && targ_pid != pid)
		return 0;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = pid;
	e->tid = (__u32)id;
	e->cpu = bpf_get_smp_processor_id();
	e->kstack_id = bpf_get_stackid(ctx, &stack_traces, 0);
	e->ustack_id = bpf_get_stackid(ctx, &stack_traces, BPF_F_USER_STACK);
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/// Sample every CPU at 49 Hz: process, thread, CPU and kernel/user stack ids.
char LICENSE[] SEC("license") = "Dual BSD/GPL";
