/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef __PROFILE_H
#define __PROFILE_H

#define TASK_COMM_LEN 16

/*
 * One record per CPU sample, exported through `events`. The stack ids are keys of the
 * `stack_traces` map (BPF_MAP_TYPE_STACK_TRACE), whose values are the instruction
 * pointers of that stack, innermost first. A negative id is -errno from
 * bpf_get_stackid(): -14 (EFAULT) is normal when the sample has no stack of that kind
 * (no kernel stack for a sample taken in user space, no user stack for a kernel thread);
 * -17 (EEXIST) and -12 (ENOMEM) mean the map was full.
 */
struct event {
	int pid;
	int tid;
	unsigned int cpu;
	int kstack_id;
	int ustack_id;
	char comm[TASK_COMM_LEN];
};

#endif /* __PROFILE_H */
