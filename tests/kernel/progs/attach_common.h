/* Shared by the attach/loader test programs: count hits of this test's process only. */
#pragma once
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

const volatile int targ_pid = 0;
__u64 hits = 0;

static __always_inline int ours(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == (__u32)targ_pid;
}

static __always_inline void count_if_ours(void)
{
	if (ours())
		__sync_fetch_and_add(&hits, 1);
}

char LICENSE[] SEC("license") = "GPL";
