#include "attach_common.h"

const volatile __u16 udp_port = 0;

SEC("cgroup_skb/egress")
int count_egress(struct __sk_buff *skb)
{
	/* Count only our UDP datagrams to 127.0.0.1:udp_port (the test sends them). */
	struct iphdr ip;
	struct udphdr udp;

	if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)) < 0 || ip.protocol != 17)
		return 1;
	if (bpf_skb_load_bytes(skb, ip.ihl * 4, &udp, sizeof(udp)) < 0)
		return 1;
	if (udp.dest == __builtin_bswap16(udp_port))
		__sync_fetch_and_add(&hits, 1);
	return 1; /* allow */
}
