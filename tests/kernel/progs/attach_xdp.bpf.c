#include "attach_common.h"

SEC("xdp")
int count_xdp(struct xdp_md *ctx)
{
	__sync_fetch_and_add(&hits, 1);
	return 2; /* XDP_PASS */
}
