// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* loadgen SECONDS: call getppid() in a tight loop for SECONDS, print the number of calls.
 * The syscall is made directly so that no libc caching can skip the kernel. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	unsigned long long calls = 0;
	double seconds, deadline;
	char *end;

	if (argc != 2) {
		fprintf(stderr, "usage: %s SECONDS\n", argv[0]);
		return 2;
	}
	seconds = strtod(argv[1], &end);
	if (*end || seconds <= 0) {
		fprintf(stderr, "%s: SECONDS must be a positive number\n", argv[0]);
		return 2;
	}
	deadline = now() + seconds;
	/* check the clock every 4096 calls: clock_gettime is a vDSO call, cheap but not free */
	do {
		for (int i = 0; i < 4096; i++)
			syscall(SYS_getppid);
		calls += 4096;
	} while (now() < deadline);
	printf("%llu\n", calls);
	return 0;
}
