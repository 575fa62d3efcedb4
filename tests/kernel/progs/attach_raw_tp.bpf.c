#include "attach_common.h"

SEC("raw_tp/sys_enter")
int on_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	if (ctx->args[1] == 110 /* __NR_getppid on x86-64 */)
		count_if_ours();
	return 0;
}
