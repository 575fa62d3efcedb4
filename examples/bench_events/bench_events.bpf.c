// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Event-rate benchmark: one small ring buffer record per getppid(2) call. Drive it with
 * loadgen.c, which calls getppid() in a tight loop. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "bench_events.h"

/* Only count calls from this process (0: every process). */
const volatile pid_t targ_pid = 0;
/* Submit with BPF_RB_NO_WAKEUP: no epoll wake-ups, the reader must consume on a timer. */
const volatile bool no_wakeup = false;

/* Live counters, read by mmap-ing .bss: events submitted, and events lost because the
 * ring buffer was full when the program tried to reserve a record. */
__u64 produced = 0;
__u64 dropped = 0;

/*
 * 64 MiB: at the ~2.2 M events/s a getppid loop reaches here, records take 32 bytes each
 * (24 + 8 header), about 70 MB/s, so the ring holds roughly a second of events. A reader
 * that polls on a timer or gets descheduled for a while then still loses nothing; a
 * smaller ring would measure the scheduler, not the reader.
 */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024 * 1024);
} events SEC(".maps");

/* Names the exported record type for the package meta (the ecc convention). */
struct event *__eunomia_dummy_event_ptr __attribute__((unused));

SEC("tp/syscalls/sys_enter_getppid")
int handle_getppid(void *ctx)
{
	u32 pid = bpf_get_current_pid_tgid() >> 32;
	struct event *e;

	if (targ_pid && targ_pid != pid)
		return 0;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&dropped, 1);
		return 0;
	}
	e->ts = bpf_ktime_get_ns();
	e->pid = pid;
	e->cpu = bpf_get_smp_processor_id();
	e->seq = __sync_fetch_and_add(&produced, 1);
	bpf_ringbuf_submit(e, no_wakeup ? BPF_RB_NO_WAKEUP : 0);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
