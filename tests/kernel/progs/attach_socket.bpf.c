#include "attach_common.h"

SEC("socket")
int keep_all(struct __sk_buff *skb)
{
	return skb->len;
}
