#include "attach_common.h"

SEC("iter/task")
int dump_task(struct bpf_iter__task *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;

	if (task && task->tgid == targ_pid && task->pid == task->tgid)
		BPF_SEQ_PRINTF(seq, "pid %d comm %s\n", task->tgid, task->comm);
	return 0;
}
