// Test program for the ring buffer reader: a small ring so that records wrap, records
// of three sizes (exact, shorter, longer than the export type) and discarded ones.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct event {
	__u64 seq;
	__u32 pid;
	__u32 kind;
	__u64 extra;
};

struct short_event {
	__u64 seq;
	__u32 pid;
} __attribute__((packed)); /* 12 bytes: not a multiple of 8 */

struct long_event {
	struct event base;
	__u64 tail[2];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096 * 4);
} events SEC(".maps");

const volatile __u32 targ_pid = 0;
__u64 seq = 0;
__u64 dropped = 0;

/* names the export type for the package meta (the ecc convention) */
struct event *__eunomia_dummy_event_ptr __attribute__((unused));

SEC("tracepoint/syscalls/sys_enter_getppid")
int evtest_ring(void *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	__u64 n;

	if (pid != targ_pid)
		return 0;
	n = __sync_fetch_and_add(&seq, 1);
	if (n % 7 == 3) {
		struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
		if (!e) {
			__sync_fetch_and_add(&dropped, 1);
			return 0;
		}
		e->seq = n;
		bpf_ringbuf_discard(e, 0);
		return 0;
	}
	if (n % 5 == 1) {
		struct short_event s = { .seq = n, .pid = pid };
		if (bpf_ringbuf_output(&events, &s, sizeof(s), 0))
			__sync_fetch_and_add(&dropped, 1);
		return 0;
	}
	if (n % 5 == 2) {
		struct long_event l = {
			.base = { .seq = n, .pid = pid, .kind = 2, .extra = n * 3 },
			.tail = { 0xdead, 0xbeef },
		};
		if (bpf_ringbuf_output(&events, &l, sizeof(l), 0))
			__sync_fetch_and_add(&dropped, 1);
		return 0;
	}
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&dropped, 1);
		return 0;
	}
	e->seq = n;
	e->pid = pid;
	e->kind = 1;
	e->extra = n * 3;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
