#include "attach_common.h"

SEC("tp/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
	count_if_ours();
	return 0;
}
