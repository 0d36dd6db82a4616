/*
 * nat/xlat_test.c: unit tests of nat/xlat.c.  Packets are built by hand,
 * both ways, and compared byte for byte with the packet RFC 7915 says
 * comes out; the literal vectors below were made by a separate model of
 * the RFC (not by this code), and every output's checksums are checked
 * again here by a checksum routine of the test's own.
 *
 * The lab of the tests:
 *	pair	192.0.2.30      <-> 2001:db8::25     (v6-only MX, s6)
 *	pair	198.51.100.25   <-> 2001:db8:1::25   (v4-only MX, s4)
 *	pair	198.51.100.110  <-> 2001:db8:1::10   (v6-only client, c6)
 *	prefix	2001:db8:64::/96: 192.0.2.10 (c4) is 2001:db8:64::c000:20a
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "nat/pair.h"
#include "nat/xlat.h"
#include "nat/xlat_vectors.h"

/* ------------------------------------------------------------ set-up */

static struct nat_pairs pairs;
static struct nat_xlat_prefix pfx[2];
static struct nat_xlat_conf conf;
static uint8_t out[70000];
static struct nat_xlat_out res;

static void
pton(int af, const char *s, void *dst)
{
	assert_int_equal(inet_pton(af, s, dst), 1);
}

static void
add_pair(const char *a4, const char *a6)
{
	struct in_addr v4;
	struct in6_addr v6;

	pton(AF_INET, a4, &v4);
	pton(AF_INET6, a6, &v6);
	assert_int_equal(nat_pairs_add(&pairs, &v4, &v6, 0), 0);
}

static int
setup(void **state)
{
	(void)state;
	if (nat_pairs_init(&pairs, 8) != 0)
		return -1;
	add_pair("192.0.2.30", "2001:db8::25");
	add_pair("198.51.100.25", "2001:db8:1::25");
	add_pair("198.51.100.110", "2001:db8:1::10");
	memset(pfx, 0, sizeof(pfx));
	pton(AF_INET6, "2001:db8:64::", &pfx[0].prefix);
	pfx[0].plen = 96;
	pton(AF_INET6, "64:ff9b::", &pfx[1].prefix);
	pfx[1].plen = 96;
	pfx[1].global_only = 1;
	memset(&conf, 0, sizeof(conf));
	conf.pairs = &pairs;
	conf.prefixes = pfx;
	conf.nprefixes = 2;
	conf.proxy_port = 25;
	conf.icmp_errors = 1;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	nat_pairs_free(&pairs);
	return 0;
}

/* Every test starts from the same configuration. */
static int
reset(void **state)
{
	(void)state;
	conf.mtu4 = 0;
	conf.mtu6 = 0;
	conf.link6 = 0;
	conf.ident_nonzero = 0;
	conf.icmp_errors = 1;
	conf.proxy_port = 25;
	conf.nprefixes = 2;
	pfx[0].sources = pfx[1].sources = 0;
	memset(&conf.self4, 0, sizeof(conf.self4));
	memset(&conf.self6, 0, sizeof(conf.self6));
	memset(out, 0xa5, sizeof(out));
	return 0;
}

static enum nat_xlat_verdict
xl(const uint8_t *p, size_t len)
{
	return nat_xlat(&conf, p, len, out, sizeof(out), &res);
}

/* ------------------------------------ the test's own checksum routine */

/*
 * Written apart from nat/xlat.c on purpose: octet at a time, carries
 * folded as they come.  Returns the ones'-complement sum of n octets
 * added to acc.
 */
static uint32_t
ck_add(uint32_t acc, const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		acc += (i % 2 == 0) ? (uint32_t)p[i] << 8 : p[i];
		acc = (acc & 0xffff) + (acc >> 16);
	}
	return acc;
}

static uint32_t
ck_word(uint32_t acc, uint32_t w)
{
	acc += w & 0xffff;
	acc = (acc & 0xffff) + (acc >> 16);
	acc += w >> 16;
	return (acc & 0xffff) + (acc >> 16);
}

static unsigned
be16(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

/* 1 if an IPv4 packet's header checksum and (unless it is a fragment)
 * TCP, UDP or ICMP checksum are right. */
static int
ck_ok4(const uint8_t *p)
{
	size_t hl = (size_t)(p[0] & 15) * 4, tot = be16(p + 2), n = tot - hl;
	const uint8_t *l4 = p + hl;
	uint32_t a;

	if (ck_add(0, p, hl) != 0xffff)
		return 0;
	if ((be16(p + 6) & 0x3fff) != 0)
		return 1;
	if (p[9] == IPPROTO_ICMP)
		return ck_add(0, l4, n) == 0xffff;
	if (p[9] != IPPROTO_TCP && p[9] != IPPROTO_UDP)
		return 1;
	if (p[9] == IPPROTO_UDP && be16(l4 + 6) == 0)
		return 1;
	a = ck_add(0, p + 12, 8);
	a = ck_word(a, p[9]);
	a = ck_word(a, (uint32_t)n);
	return ck_add(a, l4, n) == 0xffff;
}

/* The same for IPv6 (a Fragment header is the only extension we make);
 * a UDP zero checksum is wrong here (RFC 8200 §8.1). */
static int
ck_ok6(const uint8_t *p)
{
	size_t n = be16(p + 4), off = 40;
	uint8_t nh = p[6];
	uint32_t a;

	if (nh == IPPROTO_FRAGMENT) {
		if ((be16(p + 42) & 0xfff9) != 0)
			return 1; /* a real fragment */
		nh = p[40];
		off = 48;
		n -= 8;
	}
	if (nh != IPPROTO_TCP && nh != IPPROTO_UDP && nh != IPPROTO_ICMPV6)
		return 1;
	if (nh == IPPROTO_UDP && be16(p + off + 6) == 0)
		return 0;
	a = ck_add(0, p + 8, 32);
	a = ck_word(a, (uint32_t)n);
	a = ck_word(a, nh);
	return ck_add(a, p + off, n) == 0xffff;
}

/* Sets the IPv4 header checksum (after the test edited a field). */
static void
fix4(uint8_t *p)
{
	size_t hl = (size_t)(p[0] & 15) * 4;
	uint32_t s;

	p[10] = p[11] = 0;
	s = ~ck_add(0, p, hl) & 0xffff;
	p[10] = (uint8_t)(s >> 8);
	p[11] = (uint8_t)s;
}

/* Recomputes the ICMPv4 checksum of a whole IPv4 ICMP packet. */
static void
fix_icmp4(uint8_t *p)
{
	size_t hl = (size_t)(p[0] & 15) * 4, n = be16(p + 2) - hl;
	uint32_t s;

	p[hl + 2] = p[hl + 3] = 0;
	s = ~ck_add(0, p + hl, n) & 0xffff;
	p[hl + 2] = (uint8_t)(s >> 8);
	p[hl + 3] = (uint8_t)s;
}

/* Recomputes the upper-layer checksum of an IPv6 packet without
 * extension headers (ICMPv6 or UDP or TCP). */
static void
fix_l4_6(uint8_t *p)
{
	size_t n = be16(p + 4), co;
	uint32_t a, s;

	co = p[6] == IPPROTO_TCP ? 16 : p[6] == IPPROTO_UDP ? 6 : 2;
	p[40 + co] = p[41 + co] = 0;
	a = ck_add(0, p + 8, 32);
	a = ck_word(a, (uint32_t)n);
	a = ck_word(a, p[6]);
	s = ~ck_add(a, p + 40, n) & 0xffff;
	if (s == 0 && p[6] == IPPROTO_UDP)
		s = 0xffff;
	p[40 + co] = (uint8_t)(s >> 8);
	p[41 + co] = (uint8_t)s;
}

static void
assert_bytes(const uint8_t *want, size_t wlen)
{
	assert_int_equal(res.len, wlen);
	assert_memory_equal(out, want, wlen);
}

/*
 * Hex rows, as the vectors below are written ("45 00 00 1c ...": pairs
 * of hex digits, spaces ignored).  unhex writes them into p (cap octets)
 * and returns how many, "xx" as 0 (a field the test fills in after);
 * assert_hex checks got against them, where "xx" stands for an octet
 * checked otherwise (a checksum: ck_ok4, ck_ok6).
 */
static int
nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* The octets of rows into p, and 1 into mask (if not NULL) for each
 * octet that is not "xx". */
static size_t
hexrows(uint8_t *p, uint8_t *mask, size_t cap, const char *const *rows,
    size_t nrows)
{
	const char *r;
	size_t i, n = 0;
	int hi, lo;

	for (i = 0; i < nrows; i++) {
		for (r = rows[i]; *r != '\0'; r++) {
			if (*r == ' ')
				continue;
			assert_true(n < cap && r[1] != '\0');
			if (r[0] == 'x' && r[1] == 'x') {
				if (mask != NULL)
					mask[n] = 0;
				p[n++] = 0;
				r++;
				continue;
			}
			hi = nibble(r[0]);
			lo = nibble(r[1]);
			assert_true(hi >= 0 && lo >= 0);
			if (mask != NULL)
				mask[n] = 1;
			p[n++] = (uint8_t)(hi << 4 | lo);
			r++;
		}
	}
	return n;
}

#define NROWS(rows) (sizeof(rows) / sizeof(rows[0]))

static size_t
unhex(uint8_t *p, size_t cap, const char *const *rows, size_t nrows)
{
	return hexrows(p, NULL, cap, rows, nrows);
}

/* Checks got against the rows; returns the octets they cover. */
static size_t
assert_hex(const uint8_t *got, const char *const *rows, size_t nrows)
{
	uint8_t want[2048], mask[2048];
	size_t n, i;

	n = hexrows(want, mask, sizeof(want), rows, nrows);
	for (i = 0; i < n; i++)
		if (mask[i] && got[i] != want[i])
			fail_msg("octet %zu: got %02x, want %02x", i, got[i],
			    want[i]);
	return n;
}

/* ------------------------------------------------ literal, both ways */

static void
test_vectors_are_sane(void **state)
{
	(void)state;
	/* The model's checksums agree with the test's routine. */
	assert_true(ck_ok4(udp46_in));
	assert_true(ck_ok6(udp46_out));
	assert_true(ck_ok4(udp0_46_in));
	assert_true(ck_ok6(udp0_46_out));
	assert_true(ck_ok6(tcp64_in));
	assert_true(ck_ok4(tcp64_out));
	assert_true(ck_ok4(echo46_in));
	assert_true(ck_ok6(echo46_out));
	assert_true(ck_ok6(echo64_in));
	assert_true(ck_ok4(echo64_out));
	assert_true(ck_ok4(err46_in));
	assert_true(ck_ok6(err46_out));
	assert_true(ck_ok6(err64_in));
	assert_true(ck_ok4(err64_out));
	assert_true(ck_ok4(frag46_in));
	assert_true(ck_ok4(frag64_out));
}

static void
test_udp_4to6(void **state)
{
	(void)state;
	/* RFC 7915 §4.1: TC from TOS, hop limit TTL - 1, payload length;
	 * §4.5: checksum adjusted for the new pseudo-header. */
	assert_int_equal(xl(udp46_in, sizeof(udp46_in)), NAT_XLAT_OK);
	assert_int_equal(res.family, AF_INET6);
	assert_bytes(udp46_out, sizeof(udp46_out));
	assert_true(ck_ok6(out));
}

static void
test_udp_zero_checksum_4to6(void **state)
{
	(void)state;
	/* RFC 7915 §4.5: a zero IPv4 UDP checksum is computed. */
	assert_int_equal(xl(udp0_46_in, sizeof(udp0_46_in)), NAT_XLAT_OK);
	assert_bytes(udp0_46_out, sizeof(udp0_46_out));
}

static void
test_udp_round_trip(void **state)
{
	(void)state;
	/* The translated packet translated back is the original but for
	 * the TTL (two hops older), DF (RFC 7915 §5.1: clear up to 1260
	 * octets), the Identification (zero: not a fragment) and so the
	 * header checksum.  The UDP octets come back exactly.  Its source
	 * is c4 under the prefix, which only a prefix that translates
	 * sources lets through. */
	assert_int_equal(xl(udp46_out, sizeof(udp46_out)), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_SRC_PREFIX);
	pfx[0].sources = 1;
	assert_int_equal(xl(udp46_out, sizeof(udp46_out)), NAT_XLAT_OK);
	assert_int_equal(res.family, AF_INET);
	assert_int_equal(res.len, sizeof(udp46_in));
	assert_int_equal(out[0], 0x45);
	assert_int_equal(out[1], 0x28);
	assert_memory_equal(out + 2, udp46_in + 2, 2);
	assert_int_equal(be16(out + 4), 0);
	assert_int_equal(be16(out + 6), 0);
	assert_int_equal(out[8], 62);
	assert_memory_equal(out + 9, udp46_in + 9, 1);
	assert_memory_equal(out + 12, udp46_in + 12, 8);
	assert_memory_equal(out + 20, udp46_in + 20, sizeof(udp46_in) - 20);
	assert_true(ck_ok4(out));
}

static void
test_tcp_6to4(void **state)
{
	(void)state;
	/* RFC 7915 §5.1: TOS from TC, DF clear (60 octets <= 1260), ID 0,
	 * TTL hop limit - 1, header checksum; §5.5 TCP checksum. */
	assert_int_equal(xl(tcp64_in, sizeof(tcp64_in)), NAT_XLAT_OK);
	assert_int_equal(res.family, AF_INET);
	assert_bytes(tcp64_out, sizeof(tcp64_out));
	assert_true(ck_ok4(out));
}

static void
test_tcp_round_trip(void **state)
{
	uint8_t four[sizeof(tcp64_out)], six[200];
	size_t n;

	(void)state;
	/* 6 -> 4 -> 6: the same TCP segment, hop limit two less. */
	assert_int_equal(xl(tcp64_in, sizeof(tcp64_in)), NAT_XLAT_OK);
	memcpy(four, out, res.len);
	/* Turn it round: it came from 192.0.2.30 to 192.0.2.10; a reply
	 * of the same shape from c4 to the pair address. */
	memcpy(four + 12, tcp64_out + 16, 4);
	memcpy(four + 16, tcp64_out + 12, 4);
	fix4(four);
	assert_int_equal(xl(four, sizeof(four)), NAT_XLAT_OK);
	n = res.len;
	assert_int_equal(n, sizeof(tcp64_in));
	memcpy(six, out, n);
	assert_true(ck_ok6(six));
	/* Same TCP bytes but for the checksum (the addresses swapped sum
	 * the same, so even that is equal). */
	assert_memory_equal(six + 40, tcp64_in + 40, n - 40);
	assert_int_equal(six[7], 62);
	assert_memory_equal(six + 8, tcp64_in + 24, 16);
	assert_memory_equal(six + 24, tcp64_in + 8, 16);
}

static void
test_echo_4to6(void **state)
{
	(void)state;
	/* RFC 7915 §4.2: Echo Request 8 -> 128, the checksum now covers
	 * the IPv6 pseudo-header. */
	assert_int_equal(xl(echo46_in, sizeof(echo46_in)), NAT_XLAT_OK);
	assert_bytes(echo46_out, sizeof(echo46_out));
}

static void
test_echo_reply_6to4(void **state)
{
	(void)state;
	/* RFC 7915 §5.2: Echo Reply 129 -> 0, pseudo-header out. */
	assert_int_equal(xl(echo64_in, sizeof(echo64_in)), NAT_XLAT_OK);
	assert_bytes(echo64_out, sizeof(echo64_out));
}

static void
test_icmp_error_4to6(void **state)
{
	(void)state;
	/* RFC 7915 §4.2: Port Unreachable 3/3 -> 1/4; §4.3: the inner
	 * packet translated too, its TTL kept, its UDP checksum adjusted;
	 * the ICMPv6 checksum computed over it all. */
	assert_int_equal(xl(err46_in, sizeof(err46_in)), NAT_XLAT_OK);
	assert_bytes(err46_out, sizeof(err46_out));
}

static void
test_icmp_error_6to4(void **state)
{
	(void)state;
	/* RFC 7915 §5.2: 1/4 -> 3/3; §5.3: the inner packet too. */
	assert_int_equal(xl(err64_in, sizeof(err64_in)), NAT_XLAT_OK);
	assert_bytes(err64_out, sizeof(err64_out));
}

static void
test_fragment_4to6(void **state)
{
	(void)state;
	/* RFC 7915 §4.1: a fragment gets a Fragment header: offset and M
	 * copied, Identification zero-extended; the UDP checksum of the
	 * whole datagram is adjusted in the first fragment. */
	assert_int_equal(xl(frag46_in, sizeof(frag46_in)), NAT_XLAT_OK);
	assert_bytes(frag46_out, sizeof(frag46_out));
}

static void
test_fragment_6to4(void **state)
{
	(void)state;
	/* RFC 7915 §5.1.1: IPv4 fragment fields from the Fragment header,
	 * Identification's low 16 bits, DF clear. */
	assert_int_equal(xl(frag64_in, sizeof(frag64_in)), NAT_XLAT_OK);
	assert_bytes(frag64_out, sizeof(frag64_out));
}

/* --------------------------------------------- built from parts here */

/* An IPv4 packet: header (IHL 5 plus opt), payload; checksums by the
 * test's routine.  Returns its length. */
static size_t
b4(uint8_t *p, const char *src, const char *dst, uint8_t proto, uint8_t ttl,
    uint16_t flags, const uint8_t *opt, size_t optlen, const uint8_t *pl,
    size_t plen)
{
	size_t hl = 20 + optlen;

	memset(p, 0, hl);
	p[0] = (uint8_t)(0x40 | hl / 4);
	p[2] = (uint8_t)((hl + plen) >> 8);
	p[3] = (uint8_t)(hl + plen);
	p[4] = 0x12;
	p[5] = 0x34;
	p[6] = (uint8_t)(flags >> 8);
	p[7] = (uint8_t)flags;
	p[8] = ttl;
	p[9] = proto;
	pton(AF_INET, src, p + 12);
	pton(AF_INET, dst, p + 16);
	if (optlen > 0)
		memcpy(p + 20, opt, optlen);
	memcpy(p + hl, pl, plen);
	fix4(p);
	return hl + plen;
}

/* An IPv6 packet without extension headers, upper-layer checksum set
 * (ICMPv6, UDP, TCP). */
static size_t
b6(uint8_t *p, const char *src, const char *dst, uint8_t nh, uint8_t hop,
    const uint8_t *pl, size_t plen)
{
	memset(p, 0, 40);
	p[0] = 0x60;
	p[4] = (uint8_t)(plen >> 8);
	p[5] = (uint8_t)plen;
	p[6] = nh;
	p[7] = hop;
	pton(AF_INET6, src, p + 8);
	pton(AF_INET6, dst, p + 24);
	memcpy(p + 40, pl, plen);
	if (nh == IPPROTO_ICMPV6 || nh == IPPROTO_UDP || nh == IPPROTO_TCP)
		fix_l4_6(p);
	return 40 + plen;
}

static const uint8_t udp8[] = {0x9c, 0x40, 0x14, 0xe9, 0, 8, 0, 0};

/* UDP header and n payload octets; checksum left zero (set later by
 * fix_l4_6, or a zero IPv4 checksum). */
static size_t
mkudp(uint8_t *u, uint16_t sp, uint16_t dp, size_t n)
{
	size_t i;

	u[0] = (uint8_t)(sp >> 8);
	u[1] = (uint8_t)sp;
	u[2] = (uint8_t)(dp >> 8);
	u[3] = (uint8_t)dp;
	u[4] = (uint8_t)((8 + n) >> 8);
	u[5] = (uint8_t)(8 + n);
	u[6] = u[7] = 0;
	for (i = 0; i < n; i++)
		u[8 + i] = (uint8_t)(i * 7);
	return 8 + n;
}

static void
test_pair_to_pair(void **state)
{
	uint8_t p[100], u[20];
	size_t n;

	(void)state;
	/* EAM on both sides: c6 (2001:db8:1::10) to 2001:db8:1::25 is
	 * 198.51.100.110 to s4 198.51.100.25. */
	n = b6(p, "2001:db8:1::10", "2001:db8:1::25", IPPROTO_UDP, 64, u,
	    mkudp(u, 1000, 53, 4));
	assert_int_equal(xl(p, n), NAT_XLAT_OK);
	assert_int_equal(res.len, 20 + 12);
	assert_int_equal(out[12], 198);
	assert_int_equal(out[15], 110);
	assert_int_equal(out[19], 25);
	assert_true(ck_ok4(out));
}

static void
test_not_ours(void **state)
{
	uint8_t p[100], u[64];
	size_t n;

	(void)state;
	/* To an address nothing maps. */
	n = b6(p, "2001:db8::25", "2001:db8:99::1", IPPROTO_UDP, 64, u,
	    mkudp(u, 1, 2, 0));
	assert_int_equal(xl(p, n), NAT_XLAT_NOT_OURS);
	assert_int_equal(res.reason, NAT_XLAT_R_DST_UNMAPPED);
	/* From one: the host may answer for its own address. */
	n = b6(p, "2001:db8:99::1", "2001:db8:1::25", IPPROTO_UDP, 64, u,
	    mkudp(u, 1, 2, 0));
	assert_int_equal(xl(p, n), NAT_XLAT_NOT_OURS);
	assert_int_equal(res.reason, NAT_XLAT_R_SRC_UNMAPPED);
	/* Multicast never maps, even with a prefix (4 -> 6). */
	n = b4(p, "192.0.2.10", "224.0.0.251", IPPROTO_UDP, 1, 0, NULL, 0, udp8,
	    8);
	assert_int_equal(xl(p, n), NAT_XLAT_NOT_OURS);
	assert_int_equal(res.reason, NAT_XLAT_R_DST_UNMAPPED);
	/* Neighbor Solicitation to a pair's IPv6 address: the host's. */
	memset(u, 0, 24);
	u[0] = 135;
	n = b6(
	    p, "2001:db8:1::10", "2001:db8:1::25", IPPROTO_ICMPV6, 255, u, 24);
	assert_int_equal(xl(p, n), NAT_XLAT_NOT_OURS);
	assert_int_equal(res.reason, NAT_XLAT_R_LOCAL_ICMP6);
}

static void
test_proxied_tcp25(void **state)
{
	uint8_t p[100], t[20];
	size_t n;

	(void)state;
	memset(t, 0, sizeof(t));
	t[2] = 0;
	t[3] = 25;
	t[12] = 0x50;
	n = b4(p, "192.0.2.10", "192.0.2.30", IPPROTO_TCP, 64, 0x4000, NULL, 0,
	    t, 20);
	assert_int_equal(xl(p, n), NAT_XLAT_NOT_OURS);
	assert_int_equal(res.reason, NAT_XLAT_R_PROXIED);
	/* From the MX's port 25 (the proxy's outbound leg) too. */
	t[0] = 0;
	t[1] = 25;
	t[2] = 0x9c;
	t[3] = 0x40;
	n = b6(
	    p, "2001:db8::25", "2001:db8:64::c000:20a", IPPROTO_TCP, 64, t, 20);
	assert_int_equal(xl(p, n), NAT_XLAT_NOT_OURS);
	assert_int_equal(res.reason, NAT_XLAT_R_PROXIED);
	/* proxy_port 0: translated like any port. */
	conf.proxy_port = 0;
	assert_int_equal(xl(p, n), NAT_XLAT_OK);
}

static void
test_icmp_error_about_proxy_is_not_ours(void **state)
{
	uint8_t p[200], m[100], in[60];
	size_t n, k;

	(void)state;
	/* Fragmentation Needed about the proxy's own segment from
	 * 192.0.2.30:25: its socket must see it, for PMTUD. */
	memset(m, 0, sizeof(m));
	k = b4(in, "192.0.2.30", "192.0.2.10", IPPROTO_TCP, 64, 0x4000, NULL, 0,
	    (const uint8_t[]){0, 25, 0x9c, 0x40, 0, 0, 0, 1}, 8);
	m[0] = 3;
	m[1] = 4;
	m[7] = 0xdc;
	m[6] = 0x05;
	memcpy(m + 8, in, k);
	n = b4(p, "192.0.2.10", "192.0.2.30", IPPROTO_ICMP, 64, 0, NULL, 0, m,
	    8 + k);
	fix_icmp4(p);
	assert_int_equal(xl(p, n), NAT_XLAT_NOT_OURS);
	assert_int_equal(res.reason, NAT_XLAT_R_PROXIED);
}

static void
test_well_known_prefix(void **state)
{
	uint8_t p[100], u[20];
	size_t n;

	(void)state;
	/* RFC 6052 §3.1: 64:ff9b::192.0.2.10 embeds a documentation
	 * address: refused.  64:ff9b::8.8.8.8 is fine, and maps the reply
	 * back to the first prefix. */
	n = b6(p, "2001:db8::25", "64:ff9b::c000:20a", IPPROTO_UDP, 64, u,
	    mkudp(u, 1, 2, 0));
	assert_int_equal(xl(p, n), NAT_XLAT_NOT_OURS);
	assert_int_equal(res.reason, NAT_XLAT_R_DST_UNMAPPED);
	n = b6(p, "2001:db8::25", "64:ff9b::808:808", IPPROTO_UDP, 64, u,
	    mkudp(u, 1, 2, 0));
	assert_int_equal(xl(p, n), NAT_XLAT_OK);
	assert_int_equal(out[16], 8);
	assert_int_equal(out[19], 8);
	/* With the well-known prefix first, 4 -> 6 refuses to embed a
	 * documentation source. */
	conf.prefixes = pfx + 1;
	conf.nprefixes = 1;
	n = b4(p, "192.0.2.10", "192.0.2.30", IPPROTO_UDP, 64, 0, NULL, 0, udp8,
	    8);
	assert_int_equal(xl(p, n), NAT_XLAT_NOT_OURS);
	assert_int_equal(res.reason, NAT_XLAT_R_SRC_UNMAPPED);
	n = b4(
	    p, "8.8.8.8", "192.0.2.30", IPPROTO_UDP, 64, 0, NULL, 0, udp8, 8);
	assert_int_equal(xl(p, n), NAT_XLAT_OK);
	conf.prefixes = pfx;
}

static void
test_prefix_cannot_impersonate_pair(void **state)
{
	uint8_t p[100], u[20];
	size_t n;

	(void)state;
	/* 2001:db8:64::192.0.2.30 would pass for the pair's v6 host: a
	 * source under the prefix, dropped; and where the prefix does
	 * translate sources, still never the pair's address. */
	n = b6(p, "2001:db8:64::c000:21e", "2001:db8:64::c000:20a", IPPROTO_UDP,
	    64, u, mkudp(u, 1, 2, 0));
	assert_int_equal(xl(p, n), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_SRC_PREFIX);
	pfx[0].sources = 1;
	assert_int_equal(xl(p, n), NAT_XLAT_NOT_OURS);
	assert_int_equal(res.reason, NAT_XLAT_R_SRC_UNMAPPED);
}

/* nat_scope_dest_refused: never the host itself or its link, under any
 * prefix; 169.254/16 was the one v4_martian let through. */
static void
test_prefix_dest_not_host(void **state)
{
	static const char *const dst[] = {"2001:db8:64::a9fe:101",
	    "2001:db8:64::7f00:1", "2001:db8:64::1", "2001:db8:64::ffff:ffff",
	    "2001:db8:64::e000:1"};
	uint8_t p[100], u[20];
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(dst) / sizeof(dst[0]); i++) {
		n = b6(p, "2001:db8::25", dst[i], IPPROTO_UDP, 64, u,
		    mkudp(u, 1, 2, 0));
		assert_int_equal(xl(p, n), NAT_XLAT_NOT_OURS);
		assert_int_equal(res.reason, NAT_XLAT_R_DST_UNMAPPED);
	}
}

/*
 * A prefix stands for IPv4 hosts (RFC 6052 §2.2); an IPv6 packet whose
 * source lies under one claims to be such a host.  Translated, any IPv6
 * sender could pick its IPv4 source: dropped and counted unless the
 * prefix says it translates sources (behind BCP 38 ingress filtering).
 */
static void
test_prefix_source_spoofed(void **state)
{
	uint8_t p[200], q[100], e[120], u[20];
	size_t n, m;

	(void)state;
	/* UDP from 2001:db8:64::8.8.8.8 to the pair's v6 host: 8.8.8.8
	 * would leave as the IPv4 source. */
	n = b6(p, "2001:db8:64::808:808", "2001:db8::25", IPPROTO_UDP, 64, u,
	    mkudp(u, 1, 2, 0));
	assert_int_equal(xl(p, n), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_SRC_PREFIX);
	assert_string_equal(
	    nat_xlat_reason_name(res.reason), "src_under_prefix");
	/* ... to an address under the prefix, and under the well-known
	 * prefix too. */
	n = b6(p, "64:ff9b::808:808", "2001:db8:64::c000:20a", IPPROTO_UDP, 64,
	    u, mkudp(u, 1, 2, 0));
	assert_int_equal(xl(p, n), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_SRC_PREFIX);
	/* An ICMPv6 error from a "router" under the prefix: no RFC 6791
	 * stand-in either. */
	pton(AF_INET, "198.51.100.1", &conf.self4);
	m = b6(q, "2001:db8:64::c000:20a", "2001:db8::25", IPPROTO_UDP, 64, u,
	    mkudp(u, 1, 2, 0));
	memset(e, 0, 8);
	e[0] = 1; /* Destination Unreachable, port (RFC 4443 §3.1) */
	e[1] = 4;
	memcpy(e + 8, q, m);
	n = b6(p, "2001:db8:64::808:808", "2001:db8:64::c000:20a",
	    IPPROTO_ICMPV6, 64, e, 8 + m);
	assert_int_equal(xl(p, n), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_SRC_PREFIX);
	/* The pair's own IPv6 address is no prefix source. */
	n = b6(p, "2001:db8::25", "2001:db8:64::c000:20a", IPPROTO_UDP, 64, u,
	    mkudp(u, 1, 2, 0));
	assert_int_equal(xl(p, n), NAT_XLAT_OK);
	/* With sources translated (the operator filters at ingress), the
	 * embedded address is the IPv4 source. */
	pfx[0].sources = 1;
	n = b6(p, "2001:db8:64::808:808", "2001:db8::25", IPPROTO_UDP, 64, u,
	    mkudp(u, 1, 2, 0));
	assert_int_equal(xl(p, n), NAT_XLAT_OK);
	assert_int_equal(res.family, AF_INET);
	assert_int_equal(out[12], 8);
	assert_int_equal(out[15], 8);
	/* ... per prefix: the well-known one still refuses. */
	n = b6(p, "64:ff9b::808:808", "2001:db8::25", IPPROTO_UDP, 64, u,
	    mkudp(u, 1, 2, 0));
	assert_int_equal(xl(p, n), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_SRC_PREFIX);
}

static void
test_ttl(void **state)
{
	uint8_t p[100], q[100], u[20];
	size_t n;

	(void)state;
	/* RFC 7915 §4.1: TTL 1 is not forwarded: Time Exceeded 11/0 back,
	 * with the packet inside, from the pair address. */
	n = b4(
	    p, "192.0.2.10", "192.0.2.30", IPPROTO_UDP, 1, 0, NULL, 0, udp8, 8);
	assert_int_equal(xl(p, n), NAT_XLAT_ICMP);
	assert_int_equal(res.reason, NAT_XLAT_R_TTL);
	assert_int_equal(res.family, AF_INET);
	assert_int_equal(res.len, 28 + n);
	assert_int_equal(out[9], IPPROTO_ICMP);
	assert_memory_equal(out + 12, p + 16, 4);
	assert_memory_equal(out + 16, p + 12, 4);
	assert_int_equal(out[20], 11);
	assert_int_equal(out[21], 0);
	assert_memory_equal(out + 28, p, n);
	assert_true(ck_ok4(out));
	/* Errors off: a counted drop. */
	conf.icmp_errors = 0;
	assert_int_equal(xl(p, n), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_TTL);
	conf.icmp_errors = 1;
	/* RFC 7915 §5.1: hop limit 1, ICMPv6 3/0, from self6 if set. */
	pton(AF_INET6, "2001:db8::1", &conf.self6);
	n = b6(q, "2001:db8::25", "2001:db8:64::c000:20a", IPPROTO_UDP, 1, u,
	    mkudp(u, 1, 2, 0));
	assert_int_equal(xl(q, n), NAT_XLAT_ICMP);
	assert_int_equal(res.family, AF_INET6);
	assert_int_equal(out[40], 3);
	assert_memory_equal(out + 8, &conf.self6, 16);
	assert_memory_equal(out + 24, q + 8, 16);
	assert_memory_equal(out + 48, q, n);
	assert_true(ck_ok6(out));
	/* Never an error about an error. */
	memset(u, 0, 8);
	u[0] = 1;
	n = b6(q, "2001:db8::25", "2001:db8:64::c000:20a", IPPROTO_ICMPV6, 1, u,
	    8);
	assert_int_equal(xl(q, n), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_TTL);
}

static void
test_options(void **state)
{
	static const uint8_t nop_rr[8] = {1, 7, 7, 4, 0, 0, 0, 0};
	static const uint8_t lsrr[8] = {131, 7, 4, 198, 51, 100, 1, 0};
	static const uint8_t lsrr_done[8] = {131, 7, 8, 198, 51, 100, 1, 0};
	static const uint8_t bad[4] = {7, 9, 4, 0};
	uint8_t p[100];
	size_t n;

	(void)state;
	/* RFC 7915 §4.1: options are dropped from the translation ... */
	n = b4(p, "192.0.2.10", "192.0.2.30", IPPROTO_UDP, 64, 0, nop_rr, 8,
	    udp8, 8);
	assert_int_equal(xl(p, n), NAT_XLAT_OK);
	assert_int_equal(res.len, 48);
	/* ... an expired source route too ... */
	n = b4(p, "192.0.2.10", "192.0.2.30", IPPROTO_UDP, 64, 0, lsrr_done, 8,
	    udp8, 8);
	assert_int_equal(xl(p, n), NAT_XLAT_OK);
	/* ... but an unexpired one gets Source Route Failed (3/5). */
	n = b4(p, "192.0.2.10", "192.0.2.30", IPPROTO_UDP, 64, 0, lsrr, 8, udp8,
	    8);
	assert_int_equal(xl(p, n), NAT_XLAT_ICMP);
	assert_int_equal(res.reason, NAT_XLAT_R_SRC_ROUTE);
	assert_int_equal(out[20], 3);
	assert_int_equal(out[21], 5);
	/* An option running past the header. */
	n = b4(
	    p, "192.0.2.10", "192.0.2.30", IPPROTO_UDP, 64, 0, bad, 4, udp8, 8);
	assert_int_equal(xl(p, n), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_OPTIONS);
}

static void
test_segments_left(void **state)
{
	uint8_t p[120];
	size_t n;

	(void)state;
	/* RFC 7915 §5.1: Routing header with Segments Left 1: Parameter
	 * Problem 4/0 pointing at that field (octet 43). */
	memset(p, 0, sizeof(p));
	p[0] = 0x60;
	p[5] = 24 + 8;
	p[6] = IPPROTO_ROUTING;
	p[7] = 64;
	pton(AF_INET6, "2001:db8::25", p + 8);
	pton(AF_INET6, "2001:db8:64::c000:20a", p + 24);
	p[40] = IPPROTO_UDP;
	p[41] = 2; /* 24 octets */
	p[42] = 0;
	p[43] = 1;
	memcpy(p + 64, udp8, 8);
	n = 72;
	assert_int_equal(xl(p, n), NAT_XLAT_ICMP);
	assert_int_equal(res.reason, NAT_XLAT_R_SEG_LEFT);
	assert_int_equal(out[40], 4);
	assert_int_equal(out[41], 0);
	assert_int_equal(out[47], 43);
	assert_true(ck_ok6(out));
	/* Segments Left 0: skipped, the UDP inside translated. */
	p[43] = 0;
	p[64 + 6] = 0x12; /* any non-zero checksum */
	assert_int_equal(xl(p, n), NAT_XLAT_OK);
	assert_int_equal(res.len, 28);
	assert_int_equal(out[9], IPPROTO_UDP);
}

static void
test_df_clear_is_fragmented_4to6(void **state)
{
	uint8_t p[3100], u[3000], frag[1280], re[3000];
	size_t n, pos = 0, fl, got = 0, k;
	int r, pieces = 0, last_m = 1;
	enum nat_xlat_verdict v;

	(void)state;
	/* RFC 7915 §4: DF clear and over the IPv6 MTU (1280 by default):
	 * cut into fragments with Fragment headers. */
	k = mkudp(u, 40000, 5353, 2000);
	n = b4(
	    p, "192.0.2.10", "192.0.2.30", IPPROTO_UDP, 64, 0, NULL, 0, u, k);
	/* the zero checksum is computed over the whole datagram first */
	v = xl(p, n);
	assert_int_equal(v, NAT_XLAT_SPLIT);
	assert_int_equal(res.mtu, 1280);
	assert_int_equal(res.len, 48 + k);
	assert_int_equal(out[6], IPPROTO_FRAGMENT);
	while ((r = nat_xlat_split(out, res.len, res.mtu, 7, &pos, frag,
	            sizeof(frag), &fl)) == 1) {
		unsigned fo = be16(frag + 42);

		assert_true(fl <= 1280);
		assert_int_equal(be16(frag + 4) + 40, fl);
		assert_int_equal((fo >> 3) * 8, got);
		assert_int_equal(frag[44], 0);
		assert_int_equal(frag[47], 0x34); /* IPv4 ID 0x1234 */
		memcpy(re + got, frag + 48, fl - 48);
		got += fl - 48;
		last_m = fo & 1;
		pieces++;
	}
	assert_int_equal(r, 0);
	assert_int_equal(pieces, 2);
	assert_int_equal(last_m, 0);
	assert_int_equal(got, k);
	/* Reassembled: the UDP datagram with a good IPv6 checksum. */
	memcpy(frag, out, 40);
	frag[4] = (uint8_t)(k >> 8);
	frag[5] = (uint8_t)k;
	frag[6] = IPPROTO_UDP;
	{
		static uint8_t whole[3100];

		memcpy(whole, frag, 40);
		memcpy(whole + 40, re, k);
		assert_true(ck_ok6(whole));
		assert_memory_equal(whole + 48, u + 8, k - 8);
	}
	/* With a larger configured IPv6 MTU it fits: no Fragment header
	 * (RFC 7915 §4.1 adds one only to fragments). */
	conf.mtu6 = 9000;
	assert_int_equal(xl(p, n), NAT_XLAT_OK);
	assert_int_equal(out[6], IPPROTO_UDP);
}

static void
test_df_set_too_big_4to6(void **state)
{
	uint8_t p[1600], u[1500];
	size_t n, k;

	(void)state;
	/* DF and over the IPv6 next hop's MTU (1280 here) once translated:
	 * Fragmentation Needed with the MTU that fits, 1280 - 20 (RFC 1191
	 * §4: in the low 16 bits). */
	conf.link6 = 1280;
	k = mkudp(u, 1, 2, 1300);
	n = b4(p, "192.0.2.10", "192.0.2.30", IPPROTO_UDP, 64, 0x4000, NULL, 0,
	    u, k);
	assert_int_equal(xl(p, n), NAT_XLAT_ICMP);
	assert_int_equal(res.reason, NAT_XLAT_R_TOO_BIG);
	assert_int_equal(out[20], 3);
	assert_int_equal(out[21], 4);
	assert_int_equal(be16(out + 26), 1260);
	assert_int_equal(res.len, 576);
	assert_true(ck_ok4(out));
	conf.icmp_errors = 0;
	assert_int_equal(xl(p, n), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_TOO_BIG);
}

static void
test_too_big_6to4(void **state)
{
	uint8_t p[2100], u[2000], frag[600];
	size_t n, k, pos = 0, fl, got = 0;
	int r, pieces = 0;

	(void)state;
	/* Over the IPv4 MTU and over 1260 (DF would be set): Packet Too
	 * Big with IPv4 MTU + 20, at least 1280. */
	conf.mtu4 = 1400;
	k = mkudp(u, 1, 2, 1500);
	n = b6(
	    p, "2001:db8::25", "2001:db8:64::c000:20a", IPPROTO_UDP, 64, u, k);
	assert_int_equal(xl(p, n), NAT_XLAT_ICMP);
	assert_int_equal(res.family, AF_INET6);
	assert_int_equal(out[40], 2);
	assert_int_equal(be16(out + 46), 1420);
	assert_int_equal(res.len, 1280);
	assert_true(ck_ok6(out));
	/* Under 1260, DF clear, over a small IPv4 MTU: cut in IPv4. */
	conf.mtu4 = 576;
	k = mkudp(u, 1, 2, 1000);
	n = b6(
	    p, "2001:db8::25", "2001:db8:64::c000:20a", IPPROTO_UDP, 64, u, k);
	assert_int_equal(xl(p, n), NAT_XLAT_SPLIT);
	assert_int_equal(res.mtu, 576);
	while ((r = nat_xlat_split(out, res.len, res.mtu, 0x5151, &pos, frag,
	            sizeof(frag), &fl)) == 1) {
		assert_true(fl <= 576);
		assert_int_equal(be16(frag + 2), fl);
		assert_int_equal(be16(frag + 4), 0x5151);
		assert_int_equal((be16(frag + 6) & 0x1fff) * 8, got);
		assert_int_equal(ck_add(0, frag, 20), 0xffff);
		got += fl - 20;
		pieces++;
	}
	assert_int_equal(r, 0);
	assert_int_equal(got, k);
	assert_int_equal(pieces, 2);
	assert_int_equal(be16(frag + 6) & 0x2000, 0);
}

static void
test_df_over_1260_6to4(void **state)
{
	uint8_t p[1400], u[1300];
	size_t n, k;

	(void)state;
	/* RFC 7915 §5.1: DF set when over 1260 octets, clear otherwise. */
	k = mkudp(u, 1, 2, 1240);
	n = b6(
	    p, "2001:db8::25", "2001:db8:64::c000:20a", IPPROTO_UDP, 64, u, k);
	assert_int_equal(xl(p, n), NAT_XLAT_OK);
	assert_int_equal(res.len, 1268);
	assert_int_equal(out[6], 0x40);
	assert_true(ck_ok4(out));
	k = mkudp(u, 1, 2, 1232);
	n = b6(
	    p, "2001:db8::25", "2001:db8:64::c000:20a", IPPROTO_UDP, 64, u, k);
	assert_int_equal(xl(p, n), NAT_XLAT_OK);
	assert_int_equal(res.len, 1260);
	assert_int_equal(out[6], 0);
}

/* An ICMPv4 message of type/code/rest about a UDP packet 192.0.2.30 ->
 * 192.0.2.10 (inner, as the v4 side saw it), from c4 to the pair. */
static size_t
icmp4_about(uint8_t *p, uint8_t type, uint8_t code, uint32_t rest)
{
	uint8_t m[100], in[40];
	size_t k, n;

	k = b4(in, "192.0.2.30", "192.0.2.10", IPPROTO_UDP, 60, 0, NULL, 0,
	    udp8, 8);
	memset(m, 0, 8);
	m[0] = type;
	m[1] = code;
	m[4] = (uint8_t)(rest >> 24);
	m[5] = (uint8_t)(rest >> 16);
	m[6] = (uint8_t)(rest >> 8);
	m[7] = (uint8_t)rest;
	memcpy(m + 8, in, k);
	n = b4(p, "192.0.2.10", "192.0.2.30", IPPROTO_ICMP, 64, 0, NULL, 0, m,
	    8 + k);
	fix_icmp4(p);
	return n;
}

static void
test_icmp4_map(void **state)
{
	static const struct {
		uint8_t type, code;
		uint32_t rest;
		int ok;
		uint8_t t6, c6;
		uint32_t rest6;
	} t[] = {
	    /* RFC 7915 §4.2 */
	    {3, 0, 0, 1, 1, 0, 0}, {3, 1, 0, 1, 1, 0, 0}, {3, 2, 0, 1, 4, 1, 6},
	    {3, 3, 0, 1, 1, 4, 0},
	    {3, 4, 1400, 1, 2, 0, 1420}, /* 1400 + 20 < link6 1500 */
	    {3, 5, 0, 1, 1, 0, 0}, {3, 9, 0, 1, 1, 1, 0},
	    {3, 10, 0, 1, 1, 1, 0}, {3, 13, 0, 1, 1, 1, 0},
	    {3, 14, 0, 0, 0, 0, 0}, {3, 15, 0, 1, 1, 1, 0},
	    {3, 16, 0, 0, 0, 0, 0}, {11, 0, 0, 1, 3, 0, 0},
	    {11, 1, 0, 1, 3, 1, 0}, {12, 0, 0x00000000, 1, 4, 0, 0},
	    {12, 0, 0x01000000, 1, 4, 0, 1}, {12, 0, 0x02000000, 1, 4, 0, 4},
	    {12, 0, 0x04000000, 0, 0, 0, 0}, {12, 0, 0x08000000, 1, 4, 0, 7},
	    {12, 0, 0x09000000, 1, 4, 0, 6}, {12, 0, 0x0a000000, 0, 0, 0, 0},
	    {12, 0, 0x0c000000, 1, 4, 0, 8}, {12, 2, 0x10000000, 1, 4, 0, 24},
	    {12, 0, 0x14000000, 0, 0, 0, 0}, {12, 1, 0, 0, 0, 0, 0},
	    {4, 0, 0, 0, 0, 0, 0}, /* source quench */
	    {5, 0, 0, 0, 0, 0, 0}, /* redirect */
	};
	uint8_t p[200];
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		n = icmp4_about(p, t[i].type, t[i].code, t[i].rest);
		if (!t[i].ok) {
			assert_int_equal(xl(p, n), NAT_XLAT_DROP);
			assert_int_equal(res.reason, NAT_XLAT_R_ICMP_TYPE);
			continue;
		}
		assert_int_equal(xl(p, n), NAT_XLAT_OK);
		assert_int_equal(out[40], t[i].t6);
		assert_int_equal(out[41], t[i].c6);
		assert_int_equal(
		    ((uint32_t)out[44] << 24 | (uint32_t)out[45] << 16 |
		        (uint32_t)out[46] << 8 | out[47]),
		    t[i].rest6);
		/* inner: 2001:db8::25 -> 2001:db8:64::c000:20a, hop 60 */
		assert_int_equal(out[48], 0x60);
		assert_int_equal(out[48 + 7], 60);
		assert_int_equal(out[48 + 8 + 15], 0x25);
		assert_true(ck_ok6(out));
	}
}

static void
test_icmp4_frag_needed_mtu(void **state)
{
	uint8_t p[200];
	size_t n;

	(void)state;
	conf.mtu6 = 9000;
	conf.mtu4 = 1500;
	/* minimum(1400 + 20, 9000, 1500 + 20) */
	n = icmp4_about(p, 3, 4, 1400);
	assert_int_equal(xl(p, n), NAT_XLAT_OK);
	assert_int_equal(be16(out + 46), 1420);
	/* RFC 1191 §7: MTU 0, inner Total Length 28: the plateau under
	 * it (68), then never below 1280 for IPv6. */
	n = icmp4_about(p, 3, 4, 0);
	assert_int_equal(xl(p, n), NAT_XLAT_OK);
	assert_int_equal(be16(out + 46), 1280);
}

/* An ICMPv6 message about a UDP packet 2001:db8:64::c000:20a ->
 * 2001:db8::25, from s6. */
static size_t
icmp6_about(uint8_t *p, uint8_t type, uint8_t code, uint32_t rest)
{
	uint8_t m[100], in[60];
	size_t k, n;

	k = b6(in, "2001:db8:64::c000:20a", "2001:db8::25", IPPROTO_UDP, 60,
	    udp8, 8);
	memset(m, 0, 8);
	m[0] = type;
	m[1] = code;
	m[4] = (uint8_t)(rest >> 24);
	m[5] = (uint8_t)(rest >> 16);
	m[6] = (uint8_t)(rest >> 8);
	m[7] = (uint8_t)rest;
	memcpy(m + 8, in, k);
	n = b6(p, "2001:db8::25", "2001:db8:64::c000:20a", IPPROTO_ICMPV6, 64,
	    m, 8 + k);
	return n;
}

static void
test_icmp6_map(void **state)
{
	static const struct {
		uint8_t type, code;
		uint32_t rest;
		int ok;
		uint8_t t4, c4;
		uint32_t rest4;
	} t[] = {
	    /* RFC 7915 §5.2 */
	    {1, 0, 0, 1, 3, 1, 0}, {1, 1, 0, 1, 3, 10, 0},
	    {1, 2, 0, 1, 3, 1, 0}, {1, 3, 0, 1, 3, 1, 0}, {1, 4, 0, 1, 3, 3, 0},
	    {1, 5, 0, 0, 0, 0, 0},
	    {2, 0, 1400, 1, 3, 4, 1380}, /* 1400 - 20 < link6 - 20 */
	    {3, 0, 0, 1, 11, 0, 0}, {3, 1, 0, 1, 11, 1, 0},
	    {4, 0, 0, 1, 12, 0, 0}, {4, 0, 1, 1, 12, 0, 0x01000000},
	    {4, 0, 2, 0, 0, 0, 0}, {4, 0, 4, 1, 12, 0, 0x02000000},
	    {4, 0, 6, 1, 12, 0, 0x09000000}, {4, 0, 7, 1, 12, 0, 0x08000000},
	    {4, 0, 8, 1, 12, 0, 0x0c000000}, {4, 0, 23, 1, 12, 0, 0x0c000000},
	    {4, 0, 24, 1, 12, 0, 0x10000000}, {4, 0, 39, 1, 12, 0, 0x10000000},
	    {4, 0, 40, 0, 0, 0, 0}, {4, 1, 0, 1, 3, 2, 0},
	    {4, 2, 0, 0, 0, 0, 0},
	    {100, 0, 0, 0, 0, 0, 0}, /* private experimentation */
	};
	uint8_t p[200];
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		n = icmp6_about(p, t[i].type, t[i].code, t[i].rest);
		if (!t[i].ok) {
			assert_int_equal(xl(p, n), NAT_XLAT_DROP);
			assert_int_equal(res.reason, NAT_XLAT_R_ICMP_TYPE);
			continue;
		}
		assert_int_equal(xl(p, n), NAT_XLAT_OK);
		assert_int_equal(out[20], t[i].t4);
		assert_int_equal(out[21], t[i].c4);
		assert_int_equal(
		    ((uint32_t)out[24] << 24 | (uint32_t)out[25] << 16 |
		        (uint32_t)out[26] << 8 | out[27]),
		    t[i].rest4);
		assert_int_equal(res.len, 20 + 8 + 20 + 8);
		/* inner 192.0.2.10 -> 192.0.2.30, TTL 60 */
		assert_int_equal(out[28 + 8], 60);
		assert_int_equal(out[28 + 15], 10);
		assert_int_equal(out[28 + 19], 30);
		assert_true(ck_ok4(out));
		assert_true(ck_ok4(out + 28));
	}
}

static void
test_icmp_error_checks(void **state)
{
	uint8_t p[200];
	size_t n;

	(void)state;
	/* A corrupt ICMPv4 error is not given a good ICMPv6 checksum. */
	n = icmp4_about(p, 3, 3, 0);
	p[n - 1] ^= 1;
	assert_int_equal(xl(p, n), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_ICMP_CSUM);
	n = icmp6_about(p, 1, 4, 0);
	p[n - 1] ^= 1;
	assert_int_equal(xl(p, n), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_ICMP_CSUM);
	/* Inner packet cut inside its header. */
	n = icmp4_about(p, 3, 3, 0);
	p[2] = 0;
	p[3] = (uint8_t)(20 + 8 + 12);
	fix4(p);
	fix_icmp4(p);
	assert_int_equal(xl(p, 40), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_ICMP_INNER);
	/* Inner addresses that map to nothing. */
	n = icmp4_about(p, 3, 3, 0);
	pton(AF_INET, "203.0.113.9", p + 28 + 16);
	conf.nprefixes = 0;
	fix_icmp4(p);
	assert_int_equal(xl(p, n), NAT_XLAT_NOT_OURS); /* outer src too */
	conf.nprefixes = 2;
}

static void
test_icmp_error_from_unmapped_router(void **state)
{
	uint8_t p[200];
	size_t n;

	(void)state;
	/* Time Exceeded from a v6 router under no prefix: RFC 6791 lets
	 * the error come from the gateway's own IPv4 address. */
	n = icmp6_about(p, 3, 0, 0);
	pton(AF_INET6, "2001:db8:ffff::1", p + 8);
	{
		uint8_t q[200];

		memcpy(q, p, n);
		/* recompute the ICMPv6 checksum with the new source */
		fix_l4_6(q);
		assert_int_equal(xl(q, n), NAT_XLAT_NOT_OURS);
		assert_int_equal(res.reason, NAT_XLAT_R_SRC_UNMAPPED);
		pton(AF_INET, "192.0.2.1", &conf.self4);
		assert_int_equal(xl(q, n), NAT_XLAT_OK);
		assert_int_equal(out[12], 192);
		assert_int_equal(out[15], 1);
		assert_int_equal(out[20], 11);
	}
}

static void
test_fragments_untranslatable(void **state)
{
	uint8_t p[200], u[100];
	size_t n, k;

	(void)state;
	/* Fragmented ICMP: the checksum needs the whole message. */
	memset(u, 0, 40);
	u[0] = 8;
	n = b4(p, "192.0.2.10", "192.0.2.30", IPPROTO_ICMP, 64, 0x2000, NULL, 0,
	    u, 40);
	assert_int_equal(xl(p, n), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_ICMP_FRAG);
	/* RFC 7915 §4.5: first fragment of UDP with checksum zero (§4.4:
	 * 3/13 back, test_frag_udp0_icmp4 has the octets). */
	k = mkudp(u, 1, 2, 40);
	n = b4(p, "192.0.2.10", "192.0.2.30", IPPROTO_UDP, 64, 0x2000, NULL, 0,
	    u, 24);
	(void)k;
	assert_int_equal(xl(p, n), NAT_XLAT_ICMP);
	assert_int_equal(res.reason, NAT_XLAT_R_FRAG_UDP0);
	/* RFC 1858: a first TCP fragment without the whole header, and a
	 * fragment at offset 1. */
	memset(u, 0, 16);
	n = b4(p, "192.0.2.10", "192.0.2.30", IPPROTO_TCP, 64, 0x2000, NULL, 0,
	    u, 16);
	assert_int_equal(xl(p, n), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_FRAG_SHORT);
	n = b4(p, "192.0.2.10", "192.0.2.30", IPPROTO_TCP, 64, 0x0001, NULL, 0,
	    u, 16);
	assert_int_equal(xl(p, n), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_FRAG_SHORT);
	/* A later fragment is copied as it is. */
	n = b4(p, "192.0.2.10", "192.0.2.30", IPPROTO_TCP, 64, 0x0003, NULL, 0,
	    u, 16);
	assert_int_equal(xl(p, n), NAT_XLAT_OK);
	assert_int_equal(res.len, 48 + 16);
	assert_int_equal(be16(out + 42), 3 << 3);
}

static void
test_malformed_ipv4(void **state)
{
	uint8_t p[100], q[100];
	size_t n;

	(void)state;
	n = b4(p, "192.0.2.10", "192.0.2.30", IPPROTO_UDP, 64, 0, NULL, 0, udp8,
	    8);
	/* Shorter than a header; shorter than Total Length. */
	assert_int_equal(xl(p, 19), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_TRUNCATED);
	assert_int_equal(xl(p, n - 1), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_TRUNCATED);
	/* Trailing octets (Ethernet padding) are not translated. */
	memcpy(q, p, n);
	memset(q + n, 0xee, 10);
	assert_int_equal(xl(q, n + 10), NAT_XLAT_OK);
	assert_int_equal(res.len, 48);
	/* IHL 4; IHL 15 past the end; Total Length under the header. */
	memcpy(q, p, n);
	q[0] = 0x44;
	fix4(q);
	assert_int_equal(xl(q, n), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_IHL);
	q[0] = 0x4f;
	assert_int_equal(xl(q, n), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_TRUNCATED);
	memcpy(q, p, n);
	q[3] = 16;
	fix4(q);
	assert_int_equal(xl(q, n), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_LENGTH);
	/* Header checksum. */
	memcpy(q, p, n);
	q[10] ^= 0x40;
	assert_int_equal(xl(q, n), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_IP_CSUM);
	/* Version 5. */
	memcpy(q, p, n);
	q[0] = 0x55;
	assert_int_equal(xl(q, n), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_VERSION);
	assert_int_equal(xl(q, 0), NAT_XLAT_DROP);
	assert_int_equal(nat_xlat_4to6(&conf, p + 0, 0, out, sizeof(out), &res),
	    NAT_XLAT_DROP);
	/* Fragment running past 65535. */
	n = b4(q, "192.0.2.10", "192.0.2.30", IPPROTO_UDP, 64, 0x1fff, NULL, 0,
	    udp8, 8);
	assert_int_equal(xl(q, n), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_LENGTH);
	/* ICMPv6 in IPv4 means nothing. */
	n = b4(q, "192.0.2.10", "192.0.2.30", IPPROTO_ICMPV6, 64, 0, NULL, 0,
	    udp8, 8);
	assert_int_equal(xl(q, n), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_PROTO);
	/* The 6to4 entry refuses IPv4. */
	assert_int_equal(nat_xlat_6to4(&conf, echo46_in, sizeof(echo46_in), out,
	                     sizeof(out), &res),
	    NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_VERSION);
	assert_int_equal(nat_xlat_4to6(&conf, echo64_in, sizeof(echo64_in), out,
	                     sizeof(out), &res),
	    NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_VERSION);
}

static void
test_malformed_l4(void **state)
{
	uint8_t p[100], t[40];
	size_t n;

	(void)state;
	/* TCP: 19 octets; Data Offset 4; Data Offset past the end. */
	memset(t, 0, sizeof(t));
	t[12] = 0x50;
	n = b4(
	    p, "192.0.2.10", "192.0.2.30", IPPROTO_TCP, 64, 0, NULL, 0, t, 19);
	assert_int_equal(xl(p, n), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_L4_SHORT);
	t[12] = 0x40;
	n = b4(
	    p, "192.0.2.10", "192.0.2.30", IPPROTO_TCP, 64, 0, NULL, 0, t, 20);
	assert_int_equal(xl(p, n), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_L4_SHORT);
	t[12] = 0x60;
	n = b4(
	    p, "192.0.2.10", "192.0.2.30", IPPROTO_TCP, 64, 0, NULL, 0, t, 20);
	assert_int_equal(xl(p, n), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_L4_SHORT);
	/* UDP: 7 octets; length 7; length past the datagram. */
	n = b4(p, "192.0.2.10", "192.0.2.30", IPPROTO_UDP, 64, 0, NULL, 0, udp8,
	    7);
	assert_int_equal(xl(p, n), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_L4_SHORT);
	memcpy(t, udp8, 8);
	t[5] = 7;
	n = b4(
	    p, "192.0.2.10", "192.0.2.30", IPPROTO_UDP, 64, 0, NULL, 0, t, 8);
	assert_int_equal(xl(p, n), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_UDP_LEN);
	t[5] = 9;
	n = b4(
	    p, "192.0.2.10", "192.0.2.30", IPPROTO_UDP, 64, 0, NULL, 0, t, 8);
	assert_int_equal(xl(p, n), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_UDP_LEN);
	/* ICMP under 8 octets; a type with no counterpart (timestamp). */
	memset(t, 0, 8);
	t[0] = 8;
	n = b4(
	    p, "192.0.2.10", "192.0.2.30", IPPROTO_ICMP, 64, 0, NULL, 0, t, 4);
	assert_int_equal(xl(p, n), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_L4_SHORT);
	memset(t, 0, 20);
	t[0] = 13;
	n = b4(
	    p, "192.0.2.10", "192.0.2.30", IPPROTO_ICMP, 64, 0, NULL, 0, t, 20);
	assert_int_equal(xl(p, n), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_ICMP_TYPE);
}

static void
test_malformed_ipv6(void **state)
{
	uint8_t p[200], q[200], u[20];
	size_t n;

	(void)state;
	n = b6(p, "2001:db8::25", "2001:db8:64::c000:20a", IPPROTO_UDP, 64, u,
	    mkudp(u, 1, 2, 4));
	assert_int_equal(xl(p, 39), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_TRUNCATED);
	assert_int_equal(xl(p, n - 1), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_TRUNCATED);
	/* Payload Length 0 with UDP: no UDP header (RFC 2675 §3: only a
	 * Hop-by-Hop header makes it a jumbogram, test_payload_length_0). */
	memcpy(q, p, n);
	q[4] = q[5] = 0;
	assert_int_equal(xl(q, n), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_L4_SHORT);
	/* UDP with no checksum (RFC 8200 §8.1). */
	memcpy(q, p, n);
	q[46] = q[47] = 0;
	assert_int_equal(xl(q, n), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_UDP_ZERO6);
	/* Hop-by-Hop not first; an extension header running past the
	 * payload; two Fragment headers. */
	memset(q, 0, sizeof(q));
	memcpy(q, p, 40);
	q[6] = IPPROTO_DSTOPTS;
	q[40] = IPPROTO_HOPOPTS;
	q[48] = IPPROTO_UDP;
	memcpy(q + 56, udp8, 8);
	q[5] = 24;
	assert_int_equal(xl(q, 64), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_EXTHDR);
	q[40] = IPPROTO_UDP;
	q[41] = 5; /* 48 octets, past the payload */
	assert_int_equal(xl(q, 64), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_EXTHDR);
	/* Two Fragment headers: RFC 7915 §5.1.1 (test_frag_ext_header). */
	q[6] = IPPROTO_FRAGMENT;
	q[40] = IPPROTO_FRAGMENT;
	q[41] = 0;
	q[48] = IPPROTO_UDP;
	assert_int_equal(xl(q, 64), NAT_XLAT_ICMP);
	assert_int_equal(res.reason, NAT_XLAT_R_FRAG_EXTHDR);
	/* ICMPv4 inside IPv6. */
	n = b6(q, "2001:db8::25", "2001:db8:64::c000:20a", IPPROTO_ICMP, 64,
	    udp8, 8);
	assert_int_equal(xl(q, n), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_PROTO);
	/* A fragmented ICMPv6 message. */
	memset(q, 0, sizeof(q));
	memcpy(q, p, 40);
	q[5] = 16;
	q[6] = IPPROTO_FRAGMENT;
	q[40] = IPPROTO_ICMPV6;
	q[43] = 1; /* M */
	q[48] = 128;
	assert_int_equal(xl(q, 56), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_ICMP_FRAG);
	/* Fuzzer find: a fragment at offset 8191 * 8 would end past the
	 * largest IPv4 datagram. */
	q[40] = IPPROTO_UDP;
	q[42] = 0xff;
	q[43] = 0xf8;
	assert_int_equal(xl(q, 56), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_LENGTH);
	/* An unknown informational ICMPv6 type: dropped (§5.2). */
	memset(u, 0, 8);
	u[0] = 200;
	n = b6(q, "2001:db8::25", "2001:db8:64::c000:20a", IPPROTO_ICMPV6, 64,
	    u, 8);
	assert_int_equal(xl(q, n), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_ICMP_TYPE);
}

static void
test_echo_all_zero_checksum(void **state)
{
	uint8_t p[100], m[9];
	size_t n;

	(void)state;
	/* Fuzzer find: an Echo Reply of all zeros (identifier, sequence,
	 * one data octet) sums to +0 over IPv4, so its checksum is 0xffff;
	 * RFC 1624 eqn. 3 alone yields 0x0000, which fails verification. */
	memset(m, 0, sizeof(m));
	m[0] = 129;
	n = b6(p, "2001:db8::25", "2001:db8:64::c000:20a", IPPROTO_ICMPV6, 64,
	    m, sizeof(m));
	assert_int_equal(xl(p, n), NAT_XLAT_OK);
	assert_int_equal(res.len, 29);
	assert_int_equal(out[20], 0);
	assert_int_equal(be16(out + 22), 0xffff);
	assert_true(ck_ok4(out));
}

static void
test_no_room(void **state)
{
	(void)state;
	assert_int_equal(nat_xlat(&conf, udp46_in, sizeof(udp46_in), out,
	                     sizeof(udp46_out) - 1, &res),
	    NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_NO_ROOM);
	assert_int_equal(out[0], 0xa5); /* nothing written */
	assert_int_equal(nat_xlat(&conf, udp46_in, sizeof(udp46_in), out,
	                     sizeof(udp46_out), &res),
	    NAT_XLAT_OK);
	assert_int_equal(
	    nat_xlat(&conf, err64_in, sizeof(err64_in), out, 40, &res),
	    NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_NO_ROOM);
}

static void
test_split_refuses(void **state)
{
	uint8_t f[100];
	size_t pos = 0, fl;

	(void)state;
	/* Not a SPLIT packet: no Fragment header, DF set, tiny MTU. */
	assert_int_equal(nat_xlat_split(udp46_out, sizeof(udp46_out), 1280, 0,
	                     &pos, f, sizeof(f), &fl),
	    -1);
	assert_int_equal(nat_xlat_split(tcp64_out, sizeof(tcp64_out), 20, 0,
	                     &pos, f, sizeof(f), &fl),
	    -1);
	assert_int_equal(nat_xlat_split(frag46_out, sizeof(frag46_out), 48, 0,
	                     &pos, f, sizeof(f), &fl),
	    -1);
	assert_int_equal(nat_xlat_split(udp46_in, sizeof(udp46_in), 1280, 0,
	                     &pos, f, sizeof(f), &fl),
	    -1); /* DF */
	assert_int_equal(
	    nat_xlat_split(udp46_in, 0, 1280, 0, &pos, f, sizeof(f), &fl), -1);
	/* A packet that fits comes out whole, as one fragment. */
	assert_int_equal(nat_xlat_split(frag46_out, sizeof(frag46_out), 1280, 0,
	                     &pos, f, sizeof(f), &fl),
	    1);
	assert_int_equal(fl, sizeof(frag46_out));
	assert_memory_equal(f, frag46_out, fl);
	assert_int_equal(nat_xlat_split(frag46_out, sizeof(frag46_out), 1280, 0,
	                     &pos, f, sizeof(f), &fl),
	    0);
}

/* ------------------------------------------- sizes: RFC 7915 §4, §4.1 */

/* The addresses of c4's packets to s6 once translated: c4 under the
 * prefix, 2001:db8:64::c000:20a; s6, 2001:db8::25. */
#define ROW_C4_6 "20 01 0d b8 00 64 00 00 00 00 00 00 c0 00 02 0a"
#define ROW_S6 "20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 25"

/* An IPv4 packet of total octets from the header row h: UDP 40000 ->
 * 5353, checksum 0 unless ck, payload a pattern; header checksum by the
 * test. */
static size_t
big4(uint8_t *p, const char *const *h, size_t nh, size_t total, int ck)
{
	uint8_t u[1600];
	size_t k;

	assert_int_equal(unhex(p, 20, h, nh), 20);
	p[2] = (uint8_t)(total >> 8);
	p[3] = (uint8_t)total;
	k = mkudp(u, 40000, 5353, total - 28);
	if (ck)
		u[7] = 0x5a;
	memcpy(p + 20, u, k);
	fix4(p);
	return 20 + k;
}

static void
test_df_judged_by_next_hop_4to6(void **state)
{
	/* c4 -> s6's pair address, ID 0x1234, DF, TTL 64, UDP; Total
	 * Length and header checksum set by big4. */
	static const char *const in_df[] = {
	    "45 00 xx xx 12 34 40 00 40 11 xx xx c0 00 02 0a c0 00 02 1e",
	};
	/* §4.1: 1400 octets with DF fit link6 1500 though over mtu6 1280:
	 * Payload Length 1380, Next Header UDP, hop limit 63, and no
	 * Fragment header ("SHOULD NOT add" one: DF set, not a fragment). */
	static const char *const out_whole[] = {
	    "60 00 00 00 05 64 11 3f",
	    ROW_C4_6,
	    ROW_S6,
	};
	/* §4: the same without DF is cut to the lowest IPv6 MTU: Payload
	 * Length 1388 with the Fragment header (offset 0, M 0,
	 * Identification 0x1234 zero-extended), SPLIT at 1280. */
	static const char *const out_split[] = {
	    "60 00 00 00 05 6c 2c 3f",
	    ROW_C4_6,
	    ROW_S6,
	    "11 00 00 00 00 00 12 34",
	};
	/* §4.1: 1500 octets with DF are 1520 translated, over link6 1500:
	 * Fragmentation Needed (3/4) from the address c4 sent to, TTL 64,
	 * MTU 1480 = 1500 - 20 in the low 16 bits (RFC 1191 §4), the
	 * datagram cut so the whole is 576 octets (RFC 1812 §4.3.2.3). */
	static const char *const out_fn[] = {
	    "45 00 02 40 00 00 00 00 40 01 xx xx c0 00 02 1e c0 00 02 0a",
	    "03 04 xx xx 00 00 05 c8",
	};
	uint8_t p[1600];
	size_t n;

	(void)state;
	conf.link6 = 1500;
	n = big4(p, in_df, NROWS(in_df), 1400, 0);
	assert_int_equal(xl(p, n), NAT_XLAT_OK);
	assert_int_equal(res.len, 1420);
	assert_int_equal(assert_hex(out, out_whole, NROWS(out_whole)), 40);
	assert_memory_equal(out + 48, p + 28, n - 28);
	assert_true(ck_ok6(out));
	p[6] = 0; /* DF clear */
	fix4(p);
	assert_int_equal(xl(p, n), NAT_XLAT_SPLIT);
	assert_int_equal(res.mtu, 1280);
	assert_int_equal(res.len, 1428);
	assert_int_equal(assert_hex(out, out_split, NROWS(out_split)), 48);
	n = big4(p, in_df, NROWS(in_df), 1500, 0);
	assert_int_equal(xl(p, n), NAT_XLAT_ICMP);
	assert_int_equal(res.reason, NAT_XLAT_R_TOO_BIG);
	assert_int_equal(res.len, 576);
	assert_int_equal(assert_hex(out, out_fn, NROWS(out_fn)), 28);
	assert_memory_equal(out + 28, p, 576 - 28);
	assert_true(ck_ok4(out));
	/* A next hop that takes 9000: it goes whole. */
	conf.link6 = 9000;
	assert_int_equal(xl(p, n), NAT_XLAT_OK);
	assert_int_equal(res.len, 1520);
	assert_int_equal(out[6], IPPROTO_UDP);
	/* link6 unset: 1500, or mtu6 where that is larger. */
	conf.link6 = 0;
	assert_int_equal(xl(p, n), NAT_XLAT_ICMP);
	assert_int_equal(be16(out + 26), 1480);
	conf.mtu6 = 9000;
	assert_int_equal(xl(p, n), NAT_XLAT_OK);
	/* mtu6 above link6 is held to link6: without DF, cut at 1500. */
	conf.link6 = 1500;
	p[6] = 0;
	fix4(p);
	assert_int_equal(xl(p, n), NAT_XLAT_SPLIT);
	assert_int_equal(res.mtu, 1500);
}

static void
test_df_fragment_not_cut_4to6(void **state)
{
	/* A first fragment with DF and MF both set: ID 0x1234, offset 0;
	 * UDP header with a non-zero checksum. */
	static const char *const in_dfmf[] = {
	    "45 00 xx xx 12 34 60 00 40 11 xx xx c0 00 02 0a c0 00 02 1e",
	};
	/* §4.1: 1400 octets are 1428 with the Fragment header (offset 0,
	 * M 1), within link6 1500: sent as they are, not cut to 1280. */
	static const char *const out_whole[] = {
	    "60 00 00 00 05 6c 2c 3f",
	    ROW_C4_6,
	    ROW_S6,
	    "11 00 00 01 00 00 12 34",
	};
	/* §4.1: 1480 octets are 1508, over link6: Fragmentation Needed
	 * with MTU 1472 = 1500 - 20 - 8, what fits with the Fragment
	 * header it gets, instead of fragments of a fragment. */
	static const char *const out_fn[] = {
	    "45 00 02 40 00 00 00 00 40 01 xx xx c0 00 02 1e c0 00 02 0a",
	    "03 04 xx xx 00 00 05 c0",
	};
	/* A later fragment with DF (offset 1480 = 185 * 8, MF): never an
	 * ICMP error about it (RFC 1812 §4.3.2.7), dropped as too big. */
	static const char *const in_later[] = {
	    "45 00 xx xx 12 34 60 b9 40 11 xx xx c0 00 02 0a c0 00 02 1e",
	};
	uint8_t p[1600];
	size_t n;

	(void)state;
	conf.link6 = 1500;
	n = big4(p, in_dfmf, NROWS(in_dfmf), 1400, 1);
	assert_int_equal(xl(p, n), NAT_XLAT_OK);
	assert_int_equal(res.len, 1428);
	assert_int_equal(assert_hex(out, out_whole, NROWS(out_whole)), 48);
	assert_memory_equal(out + 56, p + 28, n - 28);
	n = big4(p, in_dfmf, NROWS(in_dfmf), 1480, 1);
	assert_int_equal(xl(p, n), NAT_XLAT_ICMP);
	assert_int_equal(res.reason, NAT_XLAT_R_TOO_BIG);
	assert_int_equal(assert_hex(out, out_fn, NROWS(out_fn)), 28);
	assert_memory_equal(out + 28, p, 576 - 28);
	assert_true(ck_ok4(out));
	/* The same fragment without DF is cut again (§4). */
	p[6] = 0x20;
	fix4(p);
	assert_int_equal(xl(p, n), NAT_XLAT_SPLIT);
	assert_int_equal(res.mtu, 1280);
	n = big4(p, in_later, NROWS(in_later), 1480, 1);
	assert_int_equal(xl(p, n), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_TOO_BIG);
}

/* An ICMPv6 Packet Too Big (MTU mtu) about a UDP packet c4 -> s6 that
 * had a Fragment header (offset 0, M 1: we added it), from s6. */
static size_t
ptb_about_fragment(uint8_t *p, uint32_t mtu)
{
	uint8_t m[100], in[80];
	size_t k;

	memset(in, 0, 56);
	in[0] = 0x60;
	in[5] = 16;
	in[6] = IPPROTO_FRAGMENT;
	in[7] = 60;
	pton(AF_INET6, "2001:db8:64::c000:20a", in + 8);
	pton(AF_INET6, "2001:db8::25", in + 24);
	in[40] = IPPROTO_UDP;
	in[43] = 1;
	memcpy(in + 48, udp8, 8);
	k = 56;
	memset(m, 0, 8);
	m[0] = 2;
	m[4] = (uint8_t)(mtu >> 24);
	m[5] = (uint8_t)(mtu >> 16);
	m[6] = (uint8_t)(mtu >> 8);
	m[7] = (uint8_t)mtu;
	memcpy(m + 8, in, k);
	return b6(p, "2001:db8::25", "2001:db8:64::c000:20a", IPPROTO_ICMPV6,
	    64, m, 8 + k);
}

static void
test_translated_mtu_fields(void **state)
{
	uint8_t p[200];
	size_t n;

	(void)state;
	/* §4.2: Fragmentation Needed -> Packet Too Big with
	 * minimum(MTU + 20, MTU_of_IPv6_nexthop, MTU_of_IPv4_nexthop + 20):
	 * the next hop's MTU (link6), not the lowest IPv6 MTU (mtu6). */
	conf.mtu6 = 1280;
	conf.link6 = 1300;
	n = icmp4_about(p, 3, 4, 1400);
	assert_int_equal(xl(p, n), NAT_XLAT_OK);
	assert_int_equal(be16(out + 46), 1300);
	conf.link6 = 9000;
	assert_int_equal(xl(p, n), NAT_XLAT_OK);
	assert_int_equal(be16(out + 46), 1420);
	/* §6: never below the IPv6 minimum: 1000 + 20 is sent as 1280. */
	n = icmp4_about(p, 3, 4, 1000);
	assert_int_equal(xl(p, n), NAT_XLAT_OK);
	assert_int_equal(be16(out + 46), 1280);
	/* §5.2: Packet Too Big -> Fragmentation Needed with
	 * minimum(MTU - 20, MTU_of_IPv4_nexthop, MTU_of_IPv6_nexthop - 20). */
	conf.link6 = 1300;
	n = icmp6_about(p, 2, 0, 1400);
	assert_int_equal(xl(p, n), NAT_XLAT_OK);
	assert_int_equal(be16(out + 26), 1280);
	conf.link6 = 9000;
	assert_int_equal(xl(p, n), NAT_XLAT_OK);
	assert_int_equal(be16(out + 26), 1380);
	/* ... 8 less on each IPv6 figure when the packet in error had the
	 * Fragment header we added: 1400 - 28, then 1300 - 28. */
	n = ptb_about_fragment(p, 1400);
	assert_int_equal(xl(p, n), NAT_XLAT_OK);
	assert_int_equal(be16(out + 26), 1372);
	conf.link6 = 1300;
	assert_int_equal(xl(p, n), NAT_XLAT_OK);
	assert_int_equal(be16(out + 26), 1272);
}

/* ---------------------------- RFC 4884 extensions: RFC 7915 §4.3, §5.3 */

/*
 * Time Exceeded (11/0) from c4 to s6's pair address about a UDP packet
 * 192.0.2.30 -> 192.0.2.10 (TTL 60, 28 octets), with the length
 * attribute 32 (octet 5: 128 octets of original datagram, zero-padded,
 * RFC 4884 §4) and an ICMP Extension Structure after it: version 2,
 * checksum, one MPLS Label Stack object (RFC 4950: length 8, class 1,
 * c-type 1, label 16, S, TTL 1).
 */
static const char *const ext46_in[] = {
    "45 00 00 a8 00 00 00 00 40 01 f6 2c c0 00 02 0a",
    "c0 00 02 1e 0b 00 79 22 00 20 00 00 45 00 00 1c",
    "00 00 00 00 3c 11 fa a8 c0 00 02 1e c0 00 02 0a",
    "9c 40 14 e9 00 08 ca 8b 00 00 00 00 00 00 00 00",
    "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
    "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
    "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
    "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
    "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
    "00 00 00 00 00 00 00 00 00 00 00 00 20 00 dd f4",
    "00 08 01 01 00 01 01 01",
};

/*
 * §4.2, §4.3: Time Exceeded 3/0, hop limit 63; the datagram translated
 * (40 + 8 octets) and zero-padded to 128 again, now counted in 64-bit
 * words: length attribute 16 in octet 4 (RFC 4884 §4); the extension
 * structure follows unchanged (its checksum covers only itself).
 */
static const char *const ext46_out[] = {
    "60 00 00 00 00 94 3a 3f 20 01 0d b8 00 64 00 00",
    "00 00 00 00 c0 00 02 0a 20 01 0d b8 00 00 00 00",
    "00 00 00 00 00 00 00 25 03 00 5d 00 10 00 00 00",
    "60 00 00 00 00 08 11 3c 20 01 0d b8 00 00 00 00",
    "00 00 00 00 00 00 00 25 20 01 0d b8 00 64 00 00",
    "00 00 00 00 c0 00 02 0a 9c 40 14 e9 00 08 30 af",
    "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
    "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
    "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
    "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
    "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
    "20 00 dd f4 00 08 01 01 00 01 01 01",
};

/* Destination Unreachable, port (1/4) from s6 about a UDP packet c4 ->
 * s6 (hop limit 60, 48 octets): length attribute 16 (octet 4, 128
 * octets), the same extension structure. */
static const char *const ext64_in[] = {
    "60 00 00 00 00 94 3a 40 20 01 0d b8 00 00 00 00",
    "00 00 00 00 00 00 00 25 20 01 0d b8 00 64 00 00",
    "00 00 00 00 c0 00 02 0a 01 04 5e fc 10 00 00 00",
    "60 00 00 00 00 08 11 3c 20 01 0d b8 00 64 00 00",
    "00 00 00 00 c0 00 02 0a 20 01 0d b8 00 00 00 00",
    "00 00 00 00 00 00 00 25 14 e9 9c 40 00 08 30 af",
    "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
    "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
    "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
    "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
    "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
    "20 00 dd f4 00 08 01 01 00 01 01 01",
};

/* §5.2, §5.3: Port Unreachable 3/3, TTL 63, DF clear (168 <= 1260);
 * the datagram (20 + 8) zero-padded to 128, length attribute 32 in
 * octet 5 in 32-bit words (RFC 4884 §4); the extension unchanged. */
static const char *const ext64_out[] = {
    "45 00 00 a8 00 00 00 00 3f 01 f7 2c c0 00 02 1e",
    "c0 00 02 0a 03 03 81 1f 00 20 00 00 45 00 00 1c",
    "00 00 00 00 3c 11 fa a8 c0 00 02 0a c0 00 02 1e",
    "14 e9 9c 40 00 08 ca 8b 00 00 00 00 00 00 00 00",
    "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
    "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
    "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
    "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
    "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
    "00 00 00 00 00 00 00 00 00 00 00 00 20 00 dd f4",
    "00 08 01 01 00 01 01 01",
};

static void
test_icmp_extensions(void **state)
{
	uint8_t p[300], w[300];
	size_t n, m;

	(void)state;
	n = unhex(p, sizeof(p), ext46_in, NROWS(ext46_in));
	assert_true(ck_ok4(p));
	assert_int_equal(xl(p, n), NAT_XLAT_OK);
	m = unhex(w, sizeof(w), ext46_out, NROWS(ext46_out));
	assert_bytes(w, m);
	assert_true(ck_ok6(out));
	n = unhex(p, sizeof(p), ext64_in, NROWS(ext64_in));
	assert_true(ck_ok6(p));
	assert_int_equal(xl(p, n), NAT_XLAT_OK);
	m = unhex(w, sizeof(w), ext64_out, NROWS(ext64_out));
	assert_bytes(w, m);
	assert_true(ck_ok4(out));
	/* Parameter Problem (12/0, pointer 9: Protocol) with the same
	 * extension: ICMPv6 Parameter Problem has no length attribute (RFC
	 * 4884 §4), so the extension is left out; pointer 6 (§4.2). */
	n = unhex(p, sizeof(p), ext46_in, NROWS(ext46_in));
	p[20] = 12;
	p[24] = 9;
	fix_icmp4(p);
	assert_int_equal(xl(p, n), NAT_XLAT_OK);
	assert_int_equal(res.len, 40 + 8 + 48);
	assert_int_equal(out[40], 4);
	assert_int_equal(be16(out + 46), 6);
	assert_true(ck_ok6(out));
	/* A length attribute under 128 octets (RFC 4884 §4) is not one:
	 * the message is read as without extension (§5), the datagram
	 * ending where its Total Length says. */
	n = unhex(p, sizeof(p), ext46_in, NROWS(ext46_in));
	p[25] = 8;
	fix_icmp4(p);
	assert_int_equal(xl(p, n), NAT_XLAT_OK);
	assert_int_equal(res.len, 40 + 8 + 48);
	assert_int_equal(out[44], 0);
	assert_true(ck_ok6(out));
	/* A longer extension (412 octets) still fits 576 octets (RFC 1812
	 * §4.3.2.3) with 128 of datagram; one of 512 does not: left out,
	 * attribute zero. */
	{
		static uint8_t big[1300];
		size_t k = unhex(big, sizeof(big), ext64_in, NROWS(ext64_in));

		memset(big + k, 0, 500);
		n = k + 400;
		big[4] = (uint8_t)((n - 40) >> 8);
		big[5] = (uint8_t)(n - 40);
		fix_l4_6(big);
		assert_int_equal(xl(big, n), NAT_XLAT_OK);
		assert_int_equal(res.len, 20 + 8 + 128 + 412);
		assert_int_equal(out[25], 32);
		assert_true(ck_ok4(out));
		n = k + 500;
		big[4] = (uint8_t)((n - 40) >> 8);
		big[5] = (uint8_t)(n - 40);
		fix_l4_6(big);
		assert_int_equal(xl(big, n), NAT_XLAT_OK);
		assert_int_equal(res.len, 20 + 8 + 28);
		assert_int_equal(out[25], 0);
		assert_true(ck_ok4(out));
	}
}

/* ------------------------- extension headers after a Fragment header */

/*
 * A first fragment from s6 to c4 whose Fragment header (Next Header 60,
 * offset 0, M 1, Identification 0xabcd) is followed by a Destination
 * Options header (Next Header UDP, PadN), then UDP.
 */
static const char *const fragext_in[] = {
    "60 00 00 00 00 20 2c 40 20 01 0d b8 00 00 00 00",
    "00 00 00 00 00 00 00 25 20 01 0d b8 00 64 00 00",
    "00 00 00 00 c0 00 02 0a 3c 00 00 01 00 00 ab cd",
    "11 00 01 04 00 00 00 00 9c 40 14 e9 00 18 12 34",
    "01 02 03 04 05 06 07 08",
};

/* RFC 7915 §5.1.1: not translated; §5.4: Destination Unreachable,
 * Communication Administratively Prohibited (1/1) back, from the
 * address s6 sent to, hop limit 64, the packet whole inside. */
static const char *const fragext_out[] = {
    "60 00 00 00 00 50 3a 40 20 01 0d b8 00 64 00 00",
    "00 00 00 00 c0 00 02 0a 20 01 0d b8 00 00 00 00",
    "00 00 00 00 00 00 00 25 01 01 68 ab 00 00 00 00",
    "60 00 00 00 00 20 2c 40 20 01 0d b8 00 00 00 00",
    "00 00 00 00 00 00 00 25 20 01 0d b8 00 64 00 00",
    "00 00 00 00 c0 00 02 0a 3c 00 00 01 00 00 ab cd",
    "11 00 01 04 00 00 00 00 9c 40 14 e9 00 18 12 34",
    "01 02 03 04 05 06 07 08",
};

static void
test_frag_ext_header(void **state)
{
	uint8_t p[200], w[200], e[200];
	size_t n, m;

	(void)state;
	n = unhex(p, sizeof(p), fragext_in, NROWS(fragext_in));
	assert_int_equal(xl(p, n), NAT_XLAT_ICMP);
	assert_int_equal(res.reason, NAT_XLAT_R_FRAG_EXTHDR);
	assert_string_equal(
	    nat_xlat_reason_name(res.reason), "fragment_ext_header");
	m = unhex(w, sizeof(w), fragext_out, NROWS(fragext_out));
	assert_bytes(w, m);
	assert_true(ck_ok6(out));
	/* AH after it too (RFC 7915 §5.1.1: "including AH") ... */
	p[40] = 51;
	assert_int_equal(xl(p, n), NAT_XLAT_ICMP);
	assert_int_equal(res.reason, NAT_XLAT_R_FRAG_EXTHDR);
	/* ... but not ESP: protocol 50, the rest its data. */
	p[40] = 50;
	assert_int_equal(xl(p, n), NAT_XLAT_OK);
	assert_int_equal(res.len, 20 + 24);
	assert_int_equal(out[9], 50);
	assert_memory_equal(out + 20, p + 48, 24);
	/* A later fragment naming an extension header: dropped, counted,
	 * no error (the first fragment's is enough). */
	p[40] = 60;
	p[43] = 0x40; /* offset 8 */
	assert_int_equal(xl(p, n), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_FRAG_EXTHDR);
	/* Errors off: dropped. */
	conf.icmp_errors = 0;
	n = unhex(p, sizeof(p), fragext_in, NROWS(fragext_in));
	assert_int_equal(xl(p, n), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_FRAG_EXTHDR);
	/* Inside an ICMPv6 error (from s6, about such a packet c4 -> s6) it
	 * is no packet we could have sent. */
	memset(e, 0, 8);
	e[0] = 1;
	e[1] = 4;
	memcpy(e + 8, p, n);
	pton(AF_INET6, "2001:db8:64::c000:20a", e + 8 + 8);
	pton(AF_INET6, "2001:db8::25", e + 8 + 24);
	e[8 + 40] = 51; /* AH: a protocol IPv4 has, were it not for §5.1.1 */
	m = b6(w, "2001:db8::25", "2001:db8:64::c000:20a", IPPROTO_ICMPV6, 64,
	    e, 8 + n);
	assert_int_equal(xl(w, m), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_ICMP_INNER);
}

/* ----------------------------------------------- Payload Length 0 */

/* From s6 to c4: Payload Length 0, No Next Header (59), hop limit 64:
 * an empty packet, not a jumbogram (RFC 2675 §3 needs a Jumbo Payload
 * option, in a Hop-by-Hop Options header). */
static const char *const nonext_in[] = {
    "60 00 00 00 00 00 3b 40 20 01 0d b8 00 00 00 00",
    "00 00 00 00 00 00 00 25 20 01 0d b8 00 64 00 00",
    "00 00 00 00 c0 00 02 0a",
};

/* RFC 7915 §5.1: Total Length 20, ID 0, DF clear (<= 1260), TTL 63,
 * Protocol copied (59), 192.0.2.30 -> 192.0.2.10. */
static const char *const nonext_out[] = {
    "45 00 00 14 00 00 00 00 3f 3b f7 86 c0 00 02 1e",
    "c0 00 02 0a",
};

/* Payload Length 0 and a Hop-by-Hop header with a Jumbo Payload option
 * (type 0xc2, length 4, 65544): a jumbogram, which no link of ours
 * carries. */
static const char *const jumbo_in[] = {
    "60 00 00 00 00 00 00 40 20 01 0d b8 00 00 00 00",
    "00 00 00 00 00 00 00 25 20 01 0d b8 00 64 00 00",
    "00 00 00 00 c0 00 02 0a 11 00 c2 04 00 01 00 08",
    "9c 40 14 e9 00 00 00 00",
};

static void
test_payload_length_0(void **state)
{
	uint8_t p[100], w[100];
	size_t n, m;

	(void)state;
	n = unhex(p, sizeof(p), nonext_in, NROWS(nonext_in));
	assert_int_equal(xl(p, n), NAT_XLAT_OK);
	m = unhex(w, sizeof(w), nonext_out, NROWS(nonext_out));
	assert_bytes(w, m);
	assert_true(ck_ok4(out));
	n = unhex(p, sizeof(p), jumbo_in, NROWS(jumbo_in));
	assert_int_equal(xl(p, n), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_JUMBO);
}

/* --------------------------------- Identification: RFC 7915 §5.1.1 */

static void
test_frag_ident_zero(void **state)
{
	/* A later fragment (offset 8, M 0) of UDP from s6 to c4, 8 octets
	 * of data; its Identification in the last four octets of row 3. */
	static const char *const fid0_in[] = {
	    "60 00 00 00 00 10 2c 40 20 01 0d b8 00 00 00 00",
	    "00 00 00 00 00 00 00 25 20 01 0d b8 00 64 00 00",
	    "00 00 00 00 c0 00 02 0a 11 00 00 40 87 65 00 00",
	    "01 02 03 04 05 06 07 08",
	};
	/* §5.1.1: Identification the low-order 16 bits (0x0000), MF 0,
	 * offset 1 (8 octets), DF clear, TTL 63, Protocol UDP. */
	static const char *const fid0_out[] = {
	    "45 00 00 1c 00 00 00 08 3f 11 f7 a0 c0 00 02 1e",
	    "c0 00 02 0a 01 02 03 04 05 06 07 08",
	};
	/* ident_nonzero (the gateway's raw socket would replace 0 by a
	 * fresh value per packet): the high-order 16 bits, 0x8765. */
	static const char *const fid0_nz_out[] = {
	    "45 00 00 1c 87 65 00 08 3f 11 70 3b c0 00 02 1e",
	    "c0 00 02 0a 01 02 03 04 05 06 07 08",
	};
	/* Identification 0 whole: 0xffff. */
	static const char *const fid00_nz_out[] = {
	    "45 00 00 1c ff ff 00 08 3f 11 f7 a0 c0 00 02 1e",
	    "c0 00 02 0a 01 02 03 04 05 06 07 08",
	};
	/* 0x00012345: the low-order bits, 0x2345, either way. */
	static const char *const fid_out[] = {
	    "45 00 00 1c 23 45 00 08 3f 11 d4 5b c0 00 02 1e",
	    "c0 00 02 0a 01 02 03 04 05 06 07 08",
	};
	uint8_t p[100], w[100];
	size_t n, m;

	(void)state;
	n = unhex(p, sizeof(p), fid0_in, NROWS(fid0_in));
	assert_int_equal(xl(p, n), NAT_XLAT_OK);
	m = unhex(w, sizeof(w), fid0_out, NROWS(fid0_out));
	assert_bytes(w, m);
	conf.ident_nonzero = 1;
	assert_int_equal(xl(p, n), NAT_XLAT_OK);
	m = unhex(w, sizeof(w), fid0_nz_out, NROWS(fid0_nz_out));
	assert_bytes(w, m);
	p[44] = p[45] = 0;
	assert_int_equal(xl(p, n), NAT_XLAT_OK);
	m = unhex(w, sizeof(w), fid00_nz_out, NROWS(fid00_nz_out));
	assert_bytes(w, m);
	p[45] = 0x01;
	p[46] = 0x23;
	p[47] = 0x45;
	m = unhex(w, sizeof(w), fid_out, NROWS(fid_out));
	assert_int_equal(xl(p, n), NAT_XLAT_OK);
	assert_bytes(w, m);
	conf.ident_nonzero = 0;
	assert_int_equal(xl(p, n), NAT_XLAT_OK);
	assert_bytes(w, m);
	/* Every fragment of one datagram gets the same Identification,
	 * cut again into IPv4 fragments too (nat_xlat_split keeps a
	 * non-zero one). */
	conf.ident_nonzero = 1;
	{
		static uint8_t big[1400], piece[700];
		size_t pos = 0, fl, k;
		int r;

		memset(big, 0, sizeof(big));
		memcpy(big, p, 48);
		big[44] = 0x87;
		big[45] = 0x65;
		big[46] = big[47] = 0;
		big[43] = 0x40; /* offset 8, M 0 */
		k = 1000;
		big[4] = (uint8_t)((8 + k) >> 8);
		big[5] = (uint8_t)(8 + k);
		conf.mtu4 = 576;
		assert_int_equal(xl(big, 48 + k), NAT_XLAT_SPLIT);
		while ((r = nat_xlat_split(out, res.len, res.mtu, 0x5151, &pos,
		            piece, sizeof(piece), &fl)) == 1)
			assert_int_equal(be16(piece + 4), 0x8765);
		assert_int_equal(r, 0);
	}
}

/* ---------------------- fragmented UDP, checksum 0: RFC 7915 §4.5 */

static void
test_frag_udp0_icmp4(void **state)
{
	/* A first fragment (ID 0x1234, MF) of UDP from c4 to s6's pair
	 * address with checksum 0 and Length 40: 16 octets here. */
	static const char *const in[] = {
	    "45 00 00 24 12 34 20 00 40 11 c4 6c c0 00 02 0a",
	    "c0 00 02 1e 9c 40 14 e9 00 28 00 00 01 02 03 04",
	    "05 06 07 08",
	};
	/* §4.5: dropped; §4.4: Destination Unreachable, Communication
	 * Administratively Prohibited (3/13) from the address c4 sent to,
	 * TTL 64, the fragment whole inside. */
	static const char *const want[] = {
	    "45 00 00 40 00 00 00 00 40 01 f6 94 c0 00 02 1e",
	    "c0 00 02 0a 03 0d 3b 8d 00 00 00 00 45 00 00 24",
	    "12 34 20 00 40 11 c4 6c c0 00 02 0a c0 00 02 1e",
	    "9c 40 14 e9 00 28 00 00 01 02 03 04 05 06 07 08",
	};
	uint8_t p[100], w[100];
	size_t n, m;

	(void)state;
	n = unhex(p, sizeof(p), in, NROWS(in));
	assert_int_equal(xl(p, n), NAT_XLAT_ICMP);
	assert_int_equal(res.reason, NAT_XLAT_R_FRAG_UDP0);
	m = unhex(w, sizeof(w), want, NROWS(want));
	assert_bytes(w, m);
	assert_true(ck_ok4(out));
	conf.icmp_errors = 0;
	assert_int_equal(xl(p, n), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_FRAG_UDP0);
}

/* -------------------------- illegal IPv4 sources: RFC 7915 §4.1 */

static void
test_illegal_source_4to6(void **state)
{
	/* UDP from 127.0.0.1 to s6's pair address (header checksum set by
	 * the test). */
	static const char *const udp_lo[] = {
	    "45 00 00 1c 12 34 00 00 40 11 xx xx 7f 00 00 01",
	    "c0 00 02 1e 9c 40 14 e9 00 08 00 00",
	};
	static const char *const bad[] = {"127.0.0.1", "0.0.0.0", "0.1.2.3",
	    "224.0.0.1", "240.0.0.1", "255.255.255.255"};
	uint8_t p[200];
	size_t n, i;

	(void)state;
	/* §4.1: "an illegal source address (e.g., 0.0.0.0, 127.0.0.1)":
	 * silently dropped (RFC 1812 §5.3.7), not left to the host. */
	n = unhex(p, sizeof(p), udp_lo, NROWS(udp_lo));
	fix4(p);
	assert_int_equal(xl(p, n), NAT_XLAT_DROP);
	assert_int_equal(res.reason, NAT_XLAT_R_SRC_ILLEGAL);
	assert_string_equal(nat_xlat_reason_name(res.reason), "src_illegal");
	/* An ICMP error from such a source is no router's: not sent on
	 * from self6 (RFC 6791 is for routers merely unmapped), nor
	 * embedded under the prefix. */
	pton(AF_INET6, "2001:db8::1", &conf.self6);
	for (i = 0; i < NROWS(bad); i++) {
		n = icmp4_about(p, 11, 0, 0);
		pton(AF_INET, bad[i], p + 12);
		fix4(p);
		assert_int_equal(xl(p, n), NAT_XLAT_DROP);
		assert_int_equal(res.reason, NAT_XLAT_R_SRC_ILLEGAL);
	}
	/* The same error from c4 goes through. */
	n = icmp4_about(p, 11, 0, 0);
	assert_int_equal(xl(p, n), NAT_XLAT_OK);
}

static void
test_reason_names(void **state)
{
	int r;

	(void)state;
	for (r = 0; r < NAT_XLAT_R_MAX; r++)
		assert_string_not_equal(nat_xlat_reason_name(r), "unknown");
	assert_string_equal(nat_xlat_reason_name(NAT_XLAT_R_MAX), "unknown");
	assert_string_equal(
	    nat_xlat_reason_name(NAT_XLAT_R_TTL), "ttl_expired");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_vectors_are_sane, reset),
	    cmocka_unit_test_setup(test_udp_4to6, reset),
	    cmocka_unit_test_setup(test_udp_zero_checksum_4to6, reset),
	    cmocka_unit_test_setup(test_udp_round_trip, reset),
	    cmocka_unit_test_setup(test_tcp_6to4, reset),
	    cmocka_unit_test_setup(test_tcp_round_trip, reset),
	    cmocka_unit_test_setup(test_echo_4to6, reset),
	    cmocka_unit_test_setup(test_echo_reply_6to4, reset),
	    cmocka_unit_test_setup(test_icmp_error_4to6, reset),
	    cmocka_unit_test_setup(test_icmp_error_6to4, reset),
	    cmocka_unit_test_setup(test_fragment_4to6, reset),
	    cmocka_unit_test_setup(test_fragment_6to4, reset),
	    cmocka_unit_test_setup(test_pair_to_pair, reset),
	    cmocka_unit_test_setup(test_not_ours, reset),
	    cmocka_unit_test_setup(test_proxied_tcp25, reset),
	    cmocka_unit_test_setup(
	        test_icmp_error_about_proxy_is_not_ours, reset),
	    cmocka_unit_test_setup(test_well_known_prefix, reset),
	    cmocka_unit_test_setup(test_prefix_cannot_impersonate_pair, reset),
	    cmocka_unit_test_setup(test_prefix_source_spoofed, reset),
	    cmocka_unit_test_setup(test_prefix_dest_not_host, reset),
	    cmocka_unit_test_setup(test_ttl, reset),
	    cmocka_unit_test_setup(test_options, reset),
	    cmocka_unit_test_setup(test_segments_left, reset),
	    cmocka_unit_test_setup(test_df_clear_is_fragmented_4to6, reset),
	    cmocka_unit_test_setup(test_df_set_too_big_4to6, reset),
	    cmocka_unit_test_setup(test_too_big_6to4, reset),
	    cmocka_unit_test_setup(test_df_over_1260_6to4, reset),
	    cmocka_unit_test_setup(test_icmp4_map, reset),
	    cmocka_unit_test_setup(test_icmp4_frag_needed_mtu, reset),
	    cmocka_unit_test_setup(test_icmp6_map, reset),
	    cmocka_unit_test_setup(test_icmp_error_checks, reset),
	    cmocka_unit_test_setup(test_icmp_error_from_unmapped_router, reset),
	    cmocka_unit_test_setup(test_fragments_untranslatable, reset),
	    cmocka_unit_test_setup(test_malformed_ipv4, reset),
	    cmocka_unit_test_setup(test_malformed_l4, reset),
	    cmocka_unit_test_setup(test_malformed_ipv6, reset),
	    cmocka_unit_test_setup(test_echo_all_zero_checksum, reset),
	    cmocka_unit_test_setup(test_no_room, reset),
	    cmocka_unit_test_setup(test_split_refuses, reset),
	    cmocka_unit_test_setup(test_df_judged_by_next_hop_4to6, reset),
	    cmocka_unit_test_setup(test_df_fragment_not_cut_4to6, reset),
	    cmocka_unit_test_setup(test_translated_mtu_fields, reset),
	    cmocka_unit_test_setup(test_icmp_extensions, reset),
	    cmocka_unit_test_setup(test_frag_ext_header, reset),
	    cmocka_unit_test_setup(test_payload_length_0, reset),
	    cmocka_unit_test_setup(test_frag_ident_zero, reset),
	    cmocka_unit_test_setup(test_frag_udp0_icmp4, reset),
	    cmocka_unit_test_setup(test_illegal_source_4to6, reset),
	    cmocka_unit_test_setup(test_reason_names, reset),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
