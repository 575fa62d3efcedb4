// Test program for the Python map API: user space decides which processes are traced by
// writing their pid into `filter`; the program counts and reports only those.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct event {
	__u32 pid;
	__u32 cpu;
	__u64 seq;
};

struct comm_key {
	__u32 pid;
	char comm[16];
};

struct comm_stats {
	__u64 calls;
	__u32 last_cpu;
	__u32 flags;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u8);
} filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} percpu_hits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct comm_key);
	__type(value, struct comm_stats);
} by_comm SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, struct comm_stats);
} percpu_stats SEC(".maps");

/* no BTF key/value types: only raw bytes make sense */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__uint(key_size, 4);
	__uint(value_size, 8);
} untyped SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096 * 4);
} events SEC(".maps");

__u64 seq = 0;

struct event *__eunomia_dummy_event_ptr __attribute__((unused));

SEC("tracepoint/syscalls/sys_enter_getppid")
int maps_filter(void *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	__u32 cpu = bpf_get_smp_processor_id();
	__u32 zero = 0;
	__u64 one = 1, *count, *hits;
	struct comm_key key = { .pid = pid };
	struct comm_stats *stats, fresh = { .calls = 1, .last_cpu = cpu };
	struct event *e;

	if (!bpf_map_lookup_elem(&filter, &pid))
		return 0;
	count = bpf_map_lookup_elem(&counts, &pid);
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(&counts, &pid, &one, BPF_NOEXIST);
	hits = bpf_map_lookup_elem(&percpu_hits, &zero);
	if (hits)
		*hits += 1;
	bpf_get_current_comm(key.comm, sizeof(key.comm));
	stats = bpf_map_lookup_elem(&by_comm, &key);
	if (stats) {
		__sync_fetch_and_add(&stats->calls, 1);
		stats->last_cpu = cpu;
	} else {
		bpf_map_update_elem(&by_comm, &key, &fresh, BPF_NOEXIST);
	}
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = pid;
	e->cpu = cpu;
	e->seq = __sync_fetch_and_add(&seq, 1);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
