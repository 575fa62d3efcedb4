/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef __STACK_ARRAYS_H
#define __STACK_ARRAYS_H

#define TASK_COMM_LEN 16
#define MAX_STACK_DEPTH 128

typedef __u64 stack_trace_t[MAX_STACK_DEPTH];

/* The layout of the public eunomia-bpf / libbpf-bootstrap profile example: the stacks
 * travel in the event itself (bpf_get_stack), *_sz is the number of bytes written. */
struct stacktrace_event {
	__u32 pid;
	__u32 cpu_id;
	char comm[TASK_COMM_LEN];
	__s32 kstack_sz;
	__s32 ustack_sz;
	stack_trace_t kstack;
	stack_trace_t ustack;
};

#endif /* __STACK_ARRAYS_H */
