/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef __BASHREADLINE_H
#define __BASHREADLINE_H

#define TASK_COMM_LEN 16
#define MAX_LINE_SIZE 256

/* One record per line read by an interactive bash: exported through `events`. */
struct event {
	int pid;
	char comm[TASK_COMM_LEN];
	char line[MAX_LINE_SIZE];
};

#endif /* __BASHREADLINE_H */
