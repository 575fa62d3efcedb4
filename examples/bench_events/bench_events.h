/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef __BENCH_EVENTS_H
#define __BENCH_EVENTS_H

/* 24 bytes, no padding: the consumer benchmarks decode it in batches. */
struct event {
	unsigned long long ts;
	unsigned int pid;
	unsigned int cpu;
	/* index among produced events: a gap seen by the reader is a lost event */
	unsigned long long seq;
};

#endif /* __BENCH_EVENTS_H */
