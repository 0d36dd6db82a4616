/*
 * nat/xlat_fuzz.c: libFuzzer target for nat_xlat and nat_xlat_split.
 * Arbitrary octets in, both directions; it must never read or write out
 * of bounds (input and output are heap blocks of exactly their size, so
 * ASan sees one octet too far), and what it emits must hold together:
 *
 *  - OK, SPLIT and ICMP packets are well-formed IP of the family named,
 *    within the capacity, the MTU and the ICMP error limits;
 *  - SPLIT pieces fit the MTU and carry the payload exactly once;
 *  - a good TCP, UDP or ICMP echo checksum stays good;
 *  - translated back (where the mapping is one to one), the transport
 *    octets come back unchanged.
 *
 * The first input octet steers: which addresses to write over the
 * packet's (so the mapping is hit), whether to fix the lengths and the
 * checksums (so the deep paths are reached), and the configuration.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nat/pair.h"
#include "nat/xlat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define F_ADDR                                                                 \
	0x03           /* 0: as is; 1: c4 -> pair; 2: s6 -> c4                 \
	                  via the prefix; 3: pair to pair */
#define F_LEN 0x04     /* fix Total / Payload Length */
#define F_IPCK 0x08    /* fix the IPv4 header checksum */
#define F_L4CK 0x10    /* fix the transport checksum */
#define F_ICMPERR 0x20 /* icmp_errors */
#define F_SMALL 0x40   /* mtu4 576, mtu6 1280, link6 1500; else 9000 */
#define F_PROXY 0x80   /* proxy_port 25 */

static struct nat_pairs pairs;
static struct nat_xlat_prefix pfx[2];
static int ready;

static void
init(void)
{
	static const char *const p[][2] = {
	    {"192.0.2.30", "2001:db8::25"},
	    {"198.51.100.25", "2001:db8:1::25"},
	    {"198.51.100.110", "2001:db8:1::10"},
	};
	struct in_addr v4;
	struct in6_addr v6;
	size_t i;

	if (nat_pairs_init(&pairs, 8) != 0)
		abort();
	for (i = 0; i < sizeof(p) / sizeof(p[0]); i++) {
		if (inet_pton(AF_INET, p[i][0], &v4) != 1 ||
		    inet_pton(AF_INET6, p[i][1], &v6) != 1 ||
		    nat_pairs_add(&pairs, &v4, &v6, 0) != 0)
			abort();
	}
	if (inet_pton(AF_INET6, "2001:db8:64::", &pfx[0].prefix) != 1 ||
	    inet_pton(AF_INET6, "64:ff9b::", &pfx[1].prefix) != 1)
		abort();
	pfx[0].plen = 96;
	pfx[1].plen = 96;
	pfx[1].global_only = 1;
	ready = 1;
}

static unsigned
rd16(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

static void
wr16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* A plain RFC 1071 sum, the fuzzer's own. */
static uint32_t
sum(uint32_t a, const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		a += (i & 1) ? p[i] : (uint32_t)p[i] << 8;
		a = (a & 0xffff) + (a >> 16);
	}
	return a;
}

/* Where the transport header of a whole (unfragmented) packet without
 * options or extension headers starts, its protocol and length; 0 if
 * the packet is not of that simple kind. */
static size_t
simple_l4(const uint8_t *p, size_t len, uint8_t *proto, size_t *n)
{
	if (len >= 20 && p[0] == 0x45 && rd16(p + 2) == len &&
	    (rd16(p + 6) & 0x3fff) == 0) {
		*proto = p[9];
		*n = len - 20;
		return 20;
	}
	if (len >= 40 && p[0] >> 4 == 6 && rd16(p + 4) + 40 == len &&
	    (p[6] == IPPROTO_TCP || p[6] == IPPROTO_UDP ||
	        p[6] == IPPROTO_ICMPV6)) {
		*proto = p[6];
		*n = len - 40;
		return 40;
	}
	return 0;
}

/* Checksum field offset for what simple_l4 found, 0 if none we check:
 * TCP, UDP, ICMP (only echo with code 0 if echo_only: what translates
 * back to itself). */
static size_t
ck_off(uint8_t proto, const uint8_t *l4, size_t n, int echo_only)
{
	if (proto == IPPROTO_TCP && n >= 20)
		return 16;
	if (proto == IPPROTO_UDP && n >= 8 && rd16(l4 + 4) == n)
		return 6;
	if (proto != IPPROTO_ICMP && proto != IPPROTO_ICMPV6)
		return 0;
	if (n < 8)
		return 0;
	if (!echo_only)
		return 2;
	if (l4[1] != 0)
		return 0;
	if (proto == IPPROTO_ICMP && (l4[0] == 0 || l4[0] == 8))
		return 2;
	if (proto == IPPROTO_ICMPV6 && (l4[0] == 128 || l4[0] == 129))
		return 2;
	return 0;
}

/* The sum that must fold to all ones over the transport data. */
static uint32_t
l4_sum(const uint8_t *p, size_t hl, uint8_t proto, size_t n)
{
	uint32_t a = 0;

	if (proto == IPPROTO_ICMP)
		return sum(0, p + hl, n);
	if (hl == 20)
		a = sum(0, p + 12, 8);
	else
		a = sum(0, p + 8, 32);
	a = sum(a, (const uint8_t[]){0, proto}, 2);
	a = sum(a, (const uint8_t[]){(uint8_t)(n >> 8), (uint8_t)n}, 2);
	if (hl == 40)
		a = sum(a, (const uint8_t[]){0, 0}, 2);
	return sum(a, p + hl, n);
}

/* 1 if a simple packet's checked transport checksum is good; -1 if it
 * has none we check (UDP zero over IPv4 counts as none). */
static int
l4_good(const uint8_t *p, size_t len)
{
	uint8_t proto;
	size_t n, hl, co;

	if ((hl = simple_l4(p, len, &proto, &n)) == 0)
		return -1;
	if ((co = ck_off(proto, p + hl, n, 0)) == 0)
		return -1;
	if (proto == IPPROTO_UDP && hl == 20 && rd16(p + hl + 6) == 0)
		return -1;
	return (sum(l4_sum(p, hl, proto, n), NULL, 0) & 0xffff) == 0xffff;
}

static void
fix_l4(uint8_t *p, size_t len)
{
	uint8_t proto;
	size_t n, hl, co;
	uint32_t s;

	if ((hl = simple_l4(p, len, &proto, &n)) == 0)
		return;
	if ((co = ck_off(proto, p + hl, n, 0)) == 0)
		return;
	wr16(p + hl + co, 0);
	s = ~l4_sum(p, hl, proto, n) & 0xffff;
	if (s == 0 && proto == IPPROTO_UDP)
		s = 0xffff;
	wr16(p + hl + co, s);
}

static void
put_addrs(uint8_t *p, size_t len, int mode)
{
	static const char *const a[4][4] = {
	    {NULL, NULL, NULL, NULL},
	    /* v4 src, v4 dst, v6 src, v6 dst */
	    {"192.0.2.10", "192.0.2.30", "2001:db8::25",
	        "2001:db8:64::c000:20a"},
	    {"8.8.8.8", "192.0.2.30", "2001:db8::25", "64:ff9b::808:808"},
	    {"198.51.100.25", "198.51.100.110", "2001:db8:1::10",
	        "2001:db8:1::25"},
	};

	if (mode == 0)
		return;
	if (len >= 20 && p[0] >> 4 == 4) {
		(void)inet_pton(AF_INET, a[mode][0], p + 12);
		(void)inet_pton(AF_INET, a[mode][1], p + 16);
	} else if (len >= 40 && p[0] >> 4 == 6) {
		(void)inet_pton(AF_INET6, a[mode][2], p + 8);
		(void)inet_pton(AF_INET6, a[mode][3], p + 24);
	}
}

static void
fix_ip4ck(uint8_t *p, size_t len)
{
	size_t hl;

	if (len < 20 || p[0] >> 4 != 4)
		return;
	hl = (size_t)(p[0] & 15) * 4;
	if (hl < 20 || hl > len)
		return;
	wr16(p + 10, 0);
	wr16(p + 10, ~sum(0, p, hl) & 0xffff);
}

/* What any emitted packet must be. */
static void
check_out(const uint8_t *o, size_t len, int family, size_t cap)
{
	if (len > cap || len < 20)
		abort();
	if (family == AF_INET) {
		if (o[0] != 0x45 || rd16(o + 2) != len ||
		    (sum(0, o, 20) & 0xffff) != 0xffff)
			abort();
	} else if (family == AF_INET6) {
		if (len < 40 || o[0] >> 4 != 6 || rd16(o + 4) + 40 != len)
			abort();
	} else
		abort();
}

/* Cuts a SPLIT packet and checks the pieces. */
static void
check_split(const uint8_t *o, size_t len, unsigned mtu, int family)
{
	static uint8_t piece[65536];
	size_t pos = 0, pl, hl = family == AF_INET6 ? 48 : 20, got = 0;
	int r, n = 0;

	if (len <= mtu || mtu < 68)
		abort();
	while (
	    (r = nat_xlat_split(o, len, mtu, 1, &pos, piece, mtu, &pl)) == 1) {
		if (pl > mtu || pl <= hl)
			abort();
		check_out(piece, pl, family, mtu);
		if (memcmp(piece + hl, o + hl + got, pl - hl) != 0)
			abort();
		got += pl - hl;
		if (++n > 65536)
			abort();
	}
	if (r != 0 || got != len - hl)
		abort();
}

/* Translates o back and compares the transport octets. */
static void
round_trip(const struct nat_xlat_conf *c, const uint8_t *in, size_t inlen,
    const uint8_t *o, size_t olen)
{
	struct nat_xlat_out res;
	uint8_t *back, pin, pback;
	size_t cap = olen + NAT_XLAT_GROWTH, hin, hback, nin, nback, co;

	if ((hin = simple_l4(in, inlen, &pin, &nin)) == 0 ||
	    ck_off(pin, in + hin, nin, 1) == 0)
		return;
	if ((back = malloc(cap)) == NULL)
		abort();
	if (nat_xlat(c, o, olen, back, cap, &res) == NAT_XLAT_OK) {
		hback = simple_l4(back, res.len, &pback, &nback);
		if (hback == 0 || nback != nin || (hin == 20) != (hback == 20))
			abort();
		co = ck_off(pin, in + hin, nin, 1);
		if (memcmp(in + hin + co + 2, back + hback + co + 2,
		        nin - co - 2) != 0 ||
		    memcmp(in + hin, back + hback, co) != 0)
			abort();
		/* One to one: the same addresses come back. */
		if (hin == 20 && memcmp(in + 12, back + 12, 8) != 0)
			abort();
		if (hin == 40 && memcmp(in + 8, back + 8, 32) != 0)
			abort();
	}
	free(back);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nat_xlat_conf c;
	struct nat_xlat_out res;
	enum nat_xlat_verdict v;
	uint8_t *in, *o, ctl;
	size_t len, cap;
	int good;

	if (!ready)
		init();
	if (size < 1 || size > 65536)
		return 0;
	ctl = data[0];
	len = size - 1;
	if ((in = malloc(len ? len : 1)) == NULL)
		abort();
	memcpy(in, data + 1, len);
	put_addrs(in, len, ctl & F_ADDR);
	if ((ctl & F_LEN) && len >= 20 && in[0] >> 4 == 4 && len <= 65535)
		wr16(in + 2, (unsigned)len);
	if ((ctl & F_LEN) && len >= 40 && in[0] >> 4 == 6 &&
	    len - 40 <= 65535 && len > 40)
		wr16(in + 4, (unsigned)(len - 40));
	if (ctl & F_L4CK)
		fix_l4(in, len);
	if (ctl & F_IPCK)
		fix_ip4ck(in, len);

	memset(&c, 0, sizeof(c));
	c.pairs = &pairs;
	/* Both ways of treating IPv6 sources under the prefix. */
	pfx[0].sources = (len >> 1) & 1;
	c.prefixes = pfx;
	c.nprefixes = (ctl & F_ADDR) == 2 ? 2 : 1 + (len & 1);
	c.icmp_errors = (ctl & F_ICMPERR) != 0;
	c.mtu4 = (ctl & F_SMALL) ? 576 : 9000;
	c.mtu6 = (ctl & F_SMALL) ? 1280 : 9000;
	c.link6 = (ctl & F_SMALL) ? 1500 : 9000;
	c.proxy_port = (ctl & F_PROXY) ? 25 : 0;
	/* Both ways of writing a zero IPv4 Identification. */
	c.ident_nonzero = (len >> 2) & 1;

	/* Exactly enough room, as the header promises; on odd lengths a
	 * little less, which must be refused, never overrun. */
	cap = len + NAT_XLAT_GROWTH;
	if (cap < 1280)
		cap = 1280;
	if ((len & 3) == 3)
		cap = len / 2 + 1;
	if ((o = malloc(cap)) == NULL)
		abort();
	good = l4_good(in, len);
	v = nat_xlat(&c, in, len, o, cap, &res);
	if ((unsigned)res.reason >= NAT_XLAT_R_MAX)
		abort();
	switch (v) {
	case NAT_XLAT_OK:
		check_out(o, res.len, res.family, cap);
		/* Without DF an IPv4 packet is cut to mtu6 (SPLIT); with
		 * DF it may be as large as the next hop takes. */
		if (res.family == AF_INET6 && res.len > c.link6)
			abort();
		if (res.family == AF_INET && res.len > c.mtu4)
			abort();
		/* A good checksum stays good. */
		if (good == 1 && l4_good(o, res.len) == 0)
			abort();
		if ((ctl & F_ADDR) == 1 || (ctl & F_ADDR) == 3)
			round_trip(&c, in, len, o, res.len);
		break;
	case NAT_XLAT_SPLIT:
		check_out(o, res.len, res.family, cap);
		if (res.family == AF_INET6 && res.mtu > c.mtu6)
			abort();
		check_split(o, res.len, res.mtu, res.family);
		break;
	case NAT_XLAT_ICMP:
		check_out(o, res.len, res.family, cap);
		if (!c.icmp_errors || res.reason == NAT_XLAT_R_NONE)
			abort();
		if (res.len > (res.family == AF_INET ? 576u : 1280u))
			abort();
		if (l4_good(o, res.len) == 0)
			abort();
		break;
	case NAT_XLAT_DROP:
	case NAT_XLAT_NOT_OURS:
		if (res.reason == NAT_XLAT_R_NONE)
			abort();
		break;
	default:
		abort();
	}
	free(o);
	free(in);
	return 0;
}
