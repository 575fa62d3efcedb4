/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef __EXECSNOOP_H
#define __EXECSNOOP_H

#define TASK_COMM_LEN 16
#define MAX_FILENAME_LEN 128
#define MAX_ARGS_LEN 256
#define INVALID_UID ((uid_t)-1)

/* One record per successful execve(2)/execveat(2): exported through `events`. */
struct event {
	int pid;
	int ppid;
	unsigned int uid;
	unsigned int args_size;
	char comm[TASK_COMM_LEN];
	char filename[MAX_FILENAME_LEN];
	/* argv joined with spaces, truncated to MAX_ARGS_LEN - 1 bytes */
	char args[MAX_ARGS_LEN];
};

#endif /* __EXECSNOOP_H */
