/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef __USDT_H
#define __USDT_H

#define TASK_COMM_LEN 16
#define MESSAGE_LEN 48

/* One record per hit of the eunomia:tick probe: exported through `events`. */
struct event {
	int pid;
	long seq;
	char comm[TASK_COMM_LEN];
	char message[MESSAGE_LEN];
};

#endif /* __USDT_H */
