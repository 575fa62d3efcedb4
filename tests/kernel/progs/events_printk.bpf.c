// Test program for the trace pipe reader: one bpf_printk line per getppid of the target.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

const volatile __u32 targ_pid = 0;
__u64 seq = 0;

SEC("tracepoint/syscalls/sys_enter_getppid")
int evtest_printk(void *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;

	if (pid != targ_pid)
		return 0;
	bpf_printk("eunomia-test pid=%u seq=%llu", pid, __sync_fetch_and_add(&seq, 1));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
