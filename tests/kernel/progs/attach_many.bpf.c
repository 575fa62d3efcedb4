#include "attach_common.h"

/* Eight tracepoint links: enough for RunningProgram.close() to detach in parallel. */
#define ON(n, tp)                                   \
	SEC("tp/syscalls/" tp) int on_##n(void *ctx) \
	{                                           \
		count_if_ours();                    \
		return 0;                           \
	}

ON(getppid, "sys_enter_getppid")
ON(getppid_exit, "sys_exit_getppid")
ON(getpid, "sys_enter_getpid")
ON(getpid_exit, "sys_exit_getpid")
ON(getuid, "sys_enter_getuid")
ON(getuid_exit, "sys_exit_getuid")
ON(getgid, "sys_enter_getgid")
ON(getgid_exit, "sys_exit_getgid")
