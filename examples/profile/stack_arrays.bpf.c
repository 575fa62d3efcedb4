// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* test_profile.py builds this: a profiler in the shape of the public eunomia-bpf profile
 * example (stacks inline in the event, marked by the stack_trace interpreter), to check
 * that such packages get symbolized stacks and folded output too. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "stack_arrays.h"

/// Process ID to sample (0: every process)
const volatile pid_t targ_pid = 0;

/// @intepreter {"stack_trace": {}}
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1024 * 1024);
} events SEC(".maps");

/* Names the exported record type for the package meta (the ecc convention). */
struct stacktrace_event *__eunomia_dummy_stacktrace_event_ptr __attribute__((unused));

/// @sample_freq 49
SEC("perf_event")
int profile(void *ctx)
{
	pid_t pid = bpf_get_current_pid_tgid() >> 32;
	struct stacktrace_event *event;

	if (pid == 0 || (targ_pid && targ_pid != pid))
		return 0;
	event = bpf_ringbuf_reserve(&events, sizeof(*event), 0);
	if (!event)
		return 1;
	event->pid = pid;
	event->cpu_id = bpf_get_smp_processor_id();
	if (bpf_get_current_comm(event->comm, sizeof(event->comm)))
		event->comm[0] = 0;
	event->kstack_sz = bpf_get_stack(ctx, event->kstack, sizeof(event->kstack), 0);
	event->ustack_sz = bpf_get_stack(ctx, event->ustack, sizeof(event->ustack),
					 BPF_F_USER_STACK);
	bpf_ringbuf_submit(event, 0);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
