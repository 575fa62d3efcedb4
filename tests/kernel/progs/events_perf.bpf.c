// Test program for the perf buffer reader: one event per getppid of the target pid.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct event {
	__u64 seq;
	__u32 pid;
	__u32 cpu;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

const volatile __u32 targ_pid = 0;
__u64 seq = 0;

/* names the export type for the package meta (the ecc convention) */
struct event *__eunomia_dummy_event_ptr __attribute__((unused));

SEC("tracepoint/syscalls/sys_enter_getppid")
int evtest_perf(void *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	struct event e = {};

	if (pid != targ_pid)
		return 0;
	e.seq = __sync_fetch_and_add(&seq, 1);
	e.pid = pid;
	e.cpu = bpf_get_smp_processor_id();
	bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &e, sizeof(e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
