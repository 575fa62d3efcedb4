#include "attach_common.h"

SEC("tp_btf/sys_enter")
int BPF_PROG(on_sys_enter_btf, struct pt_regs *regs, long id)
{
	if (id == 110 /* __NR_getppid on x86-64 */)
		count_if_ours();
	return 0;
}
