// Test program for `ecli run --dump-maps`: counts getppid(2) calls of one process in maps
// of several kinds; the data section, the ring buffer and the stack map must not be dumped.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct event {
	__u32 pid;
	__u32 calls;
};

struct call_key {
	__u32 pid;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, struct call_key);
	__type(value, __u64);
} by_comm SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} per_cpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 16);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, 127 * sizeof(__u64));
} stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096 * 4);
} events SEC(".maps");

const volatile __u32 targ_pid = 0;
__u64 total = 0;

struct event *__eunomia_dummy_event_ptr __attribute__((unused));

SEC("tracepoint/syscalls/sys_enter_getppid")
int maps_dump(void *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	__u32 slot = 3;
	__u64 one = 1, *count;
	struct call_key key = { .pid = pid };

	if (pid != targ_pid)
		return 0;
	__sync_fetch_and_add(&total, 1);
	count = bpf_map_lookup_elem(&calls, &pid);
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(&calls, &pid, &one, BPF_NOEXIST);
	bpf_get_current_comm(key.comm, sizeof(key.comm));
	count = bpf_map_lookup_elem(&by_comm, &key);
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(&by_comm, &key, &one, BPF_NOEXIST);
	count = bpf_map_lookup_elem(&per_cpu, &slot);
	if (count)
		*count += 1;
	bpf_get_stackid(ctx, &stacks, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
