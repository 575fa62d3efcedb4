#include "attach_common.h"

SEC("kprobe.multi/do_sys_openat*")
int on_open_multi(struct pt_regs *ctx)
{
	count_if_ours();
	return 0;
}
