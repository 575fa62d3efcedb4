#include "attach_common.h"

__u64 returns = 0;

SEC("uprobe//usr/lib/x86_64-linux-gnu/libc.so.6:getpid")
int on_getpid(void *ctx)
{
	count_if_ours();
	return 0;
}

SEC("uretprobe//usr/lib/x86_64-linux-gnu/libc.so.6:getpid")
int on_getpid_return(void *ctx)
{
	if (ours())
		__sync_fetch_and_add(&returns, 1);
	return 0;
}
