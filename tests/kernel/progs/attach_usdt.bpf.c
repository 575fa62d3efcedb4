#include "attach_common.h"
#include <bpf/usdt.bpf.h>

__u64 arg_sum = 0;

/* USDT_BINARY is given on the compiler command line: the test builds that binary. */
SEC("usdt/" USDT_BINARY ":eunomia_test:hit")
int BPF_USDT(on_hit, long value)
{
	if (ours()) {
		__sync_fetch_and_add(&hits, 1);
		__sync_fetch_and_add(&arg_sum, value);
	}
	return 0;
}
