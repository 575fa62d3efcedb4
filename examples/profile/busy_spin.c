/* A CPU-bound process for test_profile.py: it spins in a function whose name no other
 * program has, and calls getppid(2) every few thousand rounds so that some samples land
 * in the kernel. Built with frame pointers, so the kernel can walk its user stack. */
#include <sys/syscall.h>
#include <unistd.h>

volatile unsigned long eunomia_sink;

void eunomia_profile_busy_spin(void)
{
	for (;;) {
		for (unsigned long i = 0; i < 2000; i++)
			eunomia_sink += i * i;
		eunomia_sink += syscall(SYS_getppid);
	}
}

int main(void)
{
	eunomia_profile_busy_spin();
	return 0;
}
