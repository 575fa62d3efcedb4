#include "attach_common.h"

SEC("kprobe/do_sys_openat2")
int BPF_KPROBE(on_open, int dfd)
{
	count_if_ours();
	return 0;
}
