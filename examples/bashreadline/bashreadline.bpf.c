// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Print the command lines typed into interactive bash shells, system-wide: a uretprobe on
 * bash's readline() sees the string it returns. Debian's and Ubuntu's /bin/bash link
 * GNU readline statically, so `readline` is a symbol of /bin/bash itself. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "bashreadline.h"

/// Process ID of the bash to trace (0: every bash)
const volatile pid_t targ_pid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

/* Names the exported record type for the package meta (the ecc convention). */
struct event *__eunomia_dummy_event_ptr __attribute__((unused));

SEC("uretprobe//bin/bash:readline")
int BPF_KRETPROBE(printret, const void *ret)
{
	pid_t pid = bpf_get_current_pid_tgid() >> 32;
	struct event *e;

	if (!ret)  /* EOF (Ctrl-D) */
		return 0;
	if (targ_pid && pid != targ_pid)
		return 0;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = pid;
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	bpf_probe_read_user_str(&e->line, sizeof(e->line), ret);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/// Print the lines typed into interactive bash shells (a uretprobe on bash's readline).
char LICENSE[] SEC("license") = "Dual BSD/GPL";
