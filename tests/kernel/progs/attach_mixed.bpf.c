#include "attach_common.h"

/* A tracepoint that attaches, then a kprobe this kernel refuses: load() must undo both. */
SEC("tp/syscalls/sys_enter_getppid")
int first_ok(void *ctx)
{
	count_if_ours();
	return 0;
}

SEC("kprobe/do_sys_openat2")
int then_refused(struct pt_regs *ctx)
{
	count_if_ours();
	return 0;
}
