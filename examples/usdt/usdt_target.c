// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* A target for the usdt example: fires the USDT probe eunomia:tick COUNT times, one every
 * INTERVAL_MS, with a sequence number and a message. Build and install it where the
 * probe's section finds it (any directory of $PATH):
 *
 *     gcc -O2 -o /usr/local/bin/eunomia-usdt-target usdt_target.c
 *     eunomia-usdt-target [COUNT [INTERVAL_MS]]      (defaults: 10, 500)
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <sys/sdt.h>

int main(int argc, char **argv)
{
	long count = argc > 1 ? atol(argv[1]) : 10;
	long interval_ms = argc > 2 ? atol(argv[2]) : 500;
	struct timespec pause = { interval_ms / 1000, (interval_ms % 1000) * 1000000L };
	char message[48];

	for (long seq = 1; seq <= count; seq++) {
		snprintf(message, sizeof(message), "tick %ld of %ld", seq, count);
		DTRACE_PROBE2(eunomia, tick, seq, message);
		if (seq < count)
			nanosleep(&pause, NULL);
	}
	return 0;
}
