// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* A BPF iterator over every task in the system: each read of the iterator runs this
 * program once per task and returns the text it printed (like a /proc file made in BPF).
 * One line per thread: tgid, tid, parent's tgid, state, command. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

/// Only list thread-group leaders (one line per process, not per thread)
const volatile bool processes_only = false;

SEC("iter/task")
int dump_task(struct bpf_iter__task *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;

	if (!task)  /* the end of the walk */
		return 0;
	if (processes_only && task->tgid != task->pid)
		return 0;
	if (ctx->meta->seq_num == 0)
		BPF_SEQ_PRINTF(seq, "%-8s %-8s %-8s %-5s %s\n", "TGID", "TID", "PPID", "STATE",
			       "COMM");
	BPF_SEQ_PRINTF(seq, "%-8d %-8d %-8d %-5u %s\n", task->tgid, task->pid,
		       task->real_parent->tgid, task->__state, task->comm);
	return 0;
}

/// List every task (tgid, tid, parent, state, comm) with a BPF task iterator.
char LICENSE[] SEC("license") = "Dual BSD/GPL";
