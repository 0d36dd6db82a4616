/*
 * nat/pkt_fuzz.c: libFuzzer target for nat/pkt.c, the header parsing of
 * tools/smtp64-pcap.  The first byte picks the link type, the rest is
 * the captured frame.  A segment that parses must lie inside the frame,
 * with no more payload captured than the IP header announces.
 */
#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "nat/pkt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nat_pkt_tcp k;
	const uint8_t *p;
	size_t n, off;
	enum nat_pkt_link link;

	if (size < 1)
		return 0;
	link = (enum nat_pkt_link)(data[0] % 5);
	p = data + 1;
	n = size - 1;
	if (nat_pkt_link_skip(link, p, n, &off) == NAT_PKT_OK && off >= n)
		abort();
	if (nat_pkt_parse(link, p, n, &k) != NAT_PKT_OK)
		return 0;
	if (k.family != AF_INET && k.family != AF_INET6)
		abort();
	if (k.data < p || k.data > p + n || k.len > (size_t)(p + n - k.data))
		abort();
	if (k.len > k.real_len)
		abort();
	return 0;
}
