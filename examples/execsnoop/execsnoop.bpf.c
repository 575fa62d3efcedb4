// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Trace new programs: every exec that succeeded, with its parent and arguments. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "execsnoop.h"

/* Filters, set before load (an invalid value means "no filter"). */
const volatile uid_t targ_uid = INVALID_UID;
const volatile pid_t targ_ppid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

/* Names the exported record type for the package meta (the ecc convention). */
struct event *__eunomia_dummy_event_ptr __attribute__((unused));

/*
 * sched_process_exec fires after the new image is in place, so only successful execs
 * are seen, `comm` is already the new one and argv is readable from the new mm.
 */
SEC("tp/sched/sched_process_exec")
int handle_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	unsigned long arg_start, arg_end, len;
	unsigned int fname_off;
	struct event *e;
	u32 uid;
	int ppid;

	uid = (u32)bpf_get_current_uid_gid();
	if (targ_uid != INVALID_UID && targ_uid != uid)
		return 0;
	ppid = BPF_CORE_READ(task, real_parent, tgid);
	if (targ_ppid && targ_ppid != ppid)
		return 0;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;

	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->ppid = ppid;
	e->uid = uid;
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	fname_off = ctx->__data_loc_filename & 0xFFFF;
	bpf_probe_read_str(&e->filename, sizeof(e->filename), (void *)ctx + fname_off);

	arg_start = BPF_CORE_READ(task, mm, arg_start);
	arg_end = BPF_CORE_READ(task, mm, arg_end);
	len = arg_end - arg_start;
	if (len > MAX_ARGS_LEN - 1)
		len = MAX_ARGS_LEN - 1;
	/* redundant for C, but lets the verifier see the bound on the register it checks */
	len &= MAX_ARGS_LEN - 1;
	if (bpf_probe_read_user(&e->args, len, (void *)arg_start) < 0)
		len = 0;
	e->args_size = len;
	/* argv is NUL-separated: join it with spaces so it reads as one string */
	for (unsigned int i = 0; i < MAX_ARGS_LEN - 1; i++) {
		if (i >= len)
			break;
		if (e->args[i] == '\0')
			e->args[i] = ' ';
	}
	if (len > 0 && e->args[(len - 1) & (MAX_ARGS_LEN - 1)] == ' ')
		len--;
	e->args[len & (MAX_ARGS_LEN - 1)] = '\0';

	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
