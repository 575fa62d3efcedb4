#include "attach_common.h"

SEC("tc")
int count_tc(struct __sk_buff *skb)
{
	__sync_fetch_and_add(&hits, 1);
	return 0; /* TC_ACT_OK */
}
