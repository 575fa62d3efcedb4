#include "attach_common.h"

SEC("fentry/do_sys_openat2")
int BPF_PROG(do_open, int dfd)
{
	count_if_ours();
	return 0;
}
