// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The smallest useful program: one tracepoint, one bpf_printk, one option. No event map,
 * so `ecli run` shows what it prints through the kernel's trace pipe. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

/// Process ID to trace (0: every process)
const volatile pid_t targ_pid = 0;

SEC("tp/syscalls/sys_enter_write")
int handle_write(struct trace_event_raw_sys_enter *ctx)
{
	pid_t pid = bpf_get_current_pid_tgid() >> 32;

	/* The filter runs in the kernel: the trace pipe is shared by the whole host. */
	if (targ_pid && pid != targ_pid)
		return 0;
	bpf_printk("write(fd=%d, count=%d) from PID %d", (int)ctx->args[0],
		   (int)ctx->args[2], pid);
	return 0;
}

/// Print a line to the trace pipe for every write(2) of the chosen process.
char LICENSE[] SEC("license") = "Dual BSD/GPL";
