/*
 * gateway/bpf_test.c: the fast path (nat/bpf/xlat.bpf.c) held against
 * the slow path's translator (nat/xlat.c), packet by packet, with
 * BPF_PROG_TEST_RUN: no interface, no namespace.  For every packet the
 * program either hands it on untouched (TC_ACT_OK, the same octets) or
 * translates it (TC_ACT_REDIRECT: loaded with GW_BPF_TEST it neither
 * routes nor forwards), and then nat_xlat must say NAT_XLAT_OK with the
 * same octets.  One field may differ, and is held to a rule instead: an
 * IPv4 packet without DF made from IPv6 has Identification 0 from
 * nat_xlat (the slow path's raw socket has the kernel choose one) and a
 * non-zero one from the program.
 *
 * The packets: the literal vectors of nat/xlat_vectors.h, packets built
 * here from every pairing of a list of addresses (pairs, prefixes, the
 * well-known prefix with global and non-global IPv4, host-local, unmapped,
 * martian) with TCP, UDP, ICMP echo and more, at sizes around each MTU
 * edge, with TTL 1, 2 and 64, DF on and off; then random corruptions of
 * them.  Each set runs under several configurations (MTUs, a prefix that
 * translates sources, no proxy port).
 *
 * Needs root and the bpf() syscall: where the kernel refuses the program
 * the test fails, saying so; it never skips.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <linux/pkt_cls.h>
#include <netinet/in.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <bpf/bpf.h>

#include "gateway/bpf.h"
#include "nat/pair.h"
#include "nat/xlat.h"
#include "nat/xlat_vectors.h"

#define ETH 14
#define PKT_MAX 1600

static struct nat_pairs pairs;
static struct nat_xlat_prefix pfx[2];
static struct nat_xlat_conf conf;
static char loaded_err[256];

/* What one configuration's run saw. */
struct tally {
	unsigned runs, passed, xlat46, xlat64;
};

static struct tally tl;

/* ------------------------------------------------------- checksums */

static uint32_t
sum(uint32_t acc, const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i + 1 < n; i += 2)
		acc += (uint32_t)p[i] << 8 | p[i + 1];
	if (n & 1)
		acc += (uint32_t)p[n - 1] << 8;
	while (acc >> 16)
		acc = (acc & 0xffff) + (acc >> 16);
	return acc;
}

static void
put16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static unsigned
get16(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

static void
csum_ip4(uint8_t *p)
{
	put16(p + 10, 0);
	put16(p + 10, ~sum(0, p, 20) & 0xffff);
}

/* Sets the transport checksum of a packet of len octets built here (no
 * options, no extension headers); nothing if its header claims more. */
static void
csum_l4(uint8_t *p, size_t len)
{
	int v6 = p[0] >> 4 == 6;
	size_t hl = v6 ? 40 : 20;
	size_t n = v6 ? get16(p + 4) : get16(p + 2);
	uint8_t proto = v6 ? p[6] : p[9];
	uint8_t *l4 = p + hl;
	uint32_t a = 0;
	size_t co;

	if (!v6) {
		if (n < 20)
			return;
		n -= 20;
	}
	if (proto == IPPROTO_TCP)
		co = 16;
	else if (proto == IPPROTO_UDP)
		co = 6;
	else if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6)
		co = 2;
	else
		return;
	if (n < co + 2 || hl + n > len)
		return;
	put16(l4 + co, 0);
	if (proto != IPPROTO_ICMP) {
		a = v6 ? sum(0, p + 8, 32) : sum(0, p + 12, 8);
		a += (uint32_t)(n >> 16) + (uint32_t)(n & 0xffff) + proto;
	}
	a = ~sum(a, l4, n) & 0xffff;
	if (a == 0 && proto == IPPROTO_UDP)
		a = 0xffff;
	put16(l4 + co, a);
}

/* ------------------------------------------------------- builders */

enum kind { K_TCP, K_UDP, K_ECHO, K_REPLY, K_ERROR, K_GRE, K_NKIND };

/* The transport part of kind k, total octets n (at least 8). */
static size_t
l4fill(uint8_t *l4, enum kind k, int v6, size_t n, uint16_t port)
{
	size_t i, hl = k == K_TCP ? 20 : 8;

	if (n < hl)
		n = hl;
	memset(l4, 0, hl);
	for (i = hl; i < n; i++)
		l4[i] = (uint8_t)(i * 13 + 7);
	switch (k) {
	case K_TCP:
		put16(l4, 40000);
		put16(l4 + 2, port);
		l4[7] = 1;
		l4[12] = 5 << 4;
		l4[13] = 0x18;
		put16(l4 + 14, 512);
		break;
	case K_UDP:
		put16(l4, 40000);
		put16(l4 + 2, port);
		put16(l4 + 4, (unsigned)n);
		break;
	case K_ECHO:
	case K_REPLY:
		l4[0] = k == K_ECHO ? (v6 ? 128 : 8) : (v6 ? 129 : 0);
		put16(l4 + 4, 0x4242);
		put16(l4 + 6, 7);
		break;
	case K_ERROR: /* port unreachable, about nothing much */
		l4[0] = v6 ? 1 : 3;
		l4[1] = v6 ? 4 : 3;
		break;
	default:
		break;
	}
	return n;
}

static uint8_t
kind_proto(enum kind k, int v6)
{
	switch (k) {
	case K_TCP:
		return IPPROTO_TCP;
	case K_UDP:
		return IPPROTO_UDP;
	case K_GRE:
		return 47;
	default:
		return v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP;
	}
}

static size_t
b4(uint8_t *p, const char *src, const char *dst, enum kind k, size_t tot,
    uint8_t ttl, int df, uint8_t tos, uint16_t port)
{
	size_t n;

	memset(p, 0, 20);
	p[0] = 0x45;
	p[1] = tos;
	n = 20 + l4fill(p + 20, k, 0, tot > 20 ? tot - 20 : 0, port);
	put16(p + 2, (unsigned)n);
	put16(p + 4, 0x1234);
	put16(p + 6, df ? 0x4000 : 0);
	p[8] = ttl;
	p[9] = kind_proto(k, 0);
	assert_int_equal(inet_pton(AF_INET, src, p + 12), 1);
	assert_int_equal(inet_pton(AF_INET, dst, p + 16), 1);
	csum_ip4(p);
	csum_l4(p, n);
	return n;
}

static size_t
b6(uint8_t *p, const char *src, const char *dst, enum kind k, size_t tot,
    uint8_t hop, uint8_t tc, uint16_t port)
{
	size_t n;

	memset(p, 0, 40);
	p[0] = (uint8_t)(0x60 | tc >> 4);
	p[1] = (uint8_t)(tc << 4 | 0x0a); /* a flow label, dropped */
	p[3] = 0x55;
	n = l4fill(p + 40, k, 1, tot > 40 ? tot - 40 : 0, port);
	put16(p + 4, (unsigned)n);
	p[6] = kind_proto(k, 1);
	p[7] = hop;
	assert_int_equal(inet_pton(AF_INET6, src, p + 8), 1);
	assert_int_equal(inet_pton(AF_INET6, dst, p + 24), 1);
	csum_l4(p, 40 + n);
	return 40 + n;
}

/* ------------------------------------------------------- one packet */

enum outcome { PASSED, XLATED };

/*
 * Runs pkt through the program and through nat_xlat and checks they
 * agree (see the top).  Returns what the program did.
 */
static enum outcome
run(const uint8_t *pkt, size_t len)
{
	static uint8_t frame[ETH + PKT_MAX], got[ETH + PKT_MAX + 64];
	static uint8_t want[PKT_MAX + NAT_XLAT_GROWTH];
	struct nat_xlat_out res;
	enum nat_xlat_verdict v;
	size_t glen;
	int rc;

	assert_true(len <= PKT_MAX);
	memset(frame, 0, ETH);
	frame[0] = 0x02;
	frame[5] = 0x01;
	frame[6] = 0x02;
	frame[11] = 0x02;
	put16(frame + 12, len > 0 && pkt[0] >> 4 == 6 ? 0x86dd : 0x0800);
	memcpy(frame + ETH, pkt, len);
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame,
	    .data_size_in = (uint32_t)(ETH + len), .data_out = got,
	    .data_size_out = sizeof(got), .repeat = 1);
	rc = bpf_prog_test_run_opts(gw_bpf_prog_fd(), &o);
	if (rc != 0)
		fail_msg("BPF_PROG_TEST_RUN: %s (len %zu, %02x)", strerror(-rc),
		    len, len ? pkt[0] : 0);
	v = nat_xlat(&conf, pkt, len, want, sizeof(want), &res);
	tl.runs++;
	glen = o.data_size_out;
	if (o.retval == TC_ACT_OK) {
		if (glen != ETH + len || memcmp(got, frame, glen) != 0)
			fail_msg("passed on, but changed (len %zu -> %zu)", len,
			    glen);
		tl.passed++;
		return PASSED;
	}
	if (o.retval != TC_ACT_REDIRECT)
		fail_msg("verdict %d (len %zu)", (int)o.retval, len);
	if (v != NAT_XLAT_OK)
		fail_msg("translated, where nat_xlat says verdict %d reason %s "
		         "(len %zu)",
		    (int)v, nat_xlat_reason_name(res.reason), len);
	if (glen != ETH + res.len)
		fail_msg("translated to %zu octets, nat_xlat %zu", glen - ETH,
		    res.len);
	if (get16(got + 12) != (res.family == AF_INET6 ? 0x86dd : 0x0800))
		fail_msg("EtherType %04x", get16(got + 12));
	if (res.family == AF_INET && (get16(want + 6) & 0x4000) == 0) {
		/* The one field allowed to differ (see the top). */
		assert_int_equal(get16(want + 4), 0);
		assert_int_not_equal(get16(got + ETH + 4), 0);
		memcpy(want + 4, got + ETH + 4, 2);
		csum_ip4(want);
	}
	if (memcmp(got + ETH, want, res.len) != 0) {
		size_t i;

		for (i = 0; i < res.len && got[ETH + i] == want[i]; i++)
			;
		fail_msg("octet %zu of %zu: program %02x, nat_xlat %02x", i,
		    res.len, got[ETH + i], want[i]);
	}
	if (res.family == AF_INET6)
		tl.xlat46++;
	else
		tl.xlat64++;
	return XLATED;
}

/* ------------------------------------------------------- set-up */

static void
add_pair(const char *a4, const char *a6)
{
	struct in_addr v4;
	struct in6_addr v6;

	assert_int_equal(inet_pton(AF_INET, a4, &v4), 1);
	assert_int_equal(inet_pton(AF_INET6, a6, &v6), 1);
	assert_int_equal(nat_pairs_add(&pairs, &v4, &v6, 0), 0);
}

/* The lab of nat/xlat_test.c. */
static void
conf_default(void)
{
	memset(pfx, 0, sizeof(pfx));
	assert_int_equal(
	    inet_pton(AF_INET6, "2001:db8:64::", &pfx[0].prefix), 1);
	pfx[0].plen = 96;
	assert_int_equal(inet_pton(AF_INET6, "64:ff9b::", &pfx[1].prefix), 1);
	pfx[1].plen = 96;
	pfx[1].global_only = 1;
	memset(&conf, 0, sizeof(conf));
	conf.pairs = &pairs;
	conf.prefixes = pfx;
	conf.nprefixes = 2;
	conf.proxy_port = 25;
	conf.icmp_errors = 1;
}

static void
apply(void)
{
	char err[256];

	if (gw_bpf_reconf(&conf, err, sizeof(err)) != 0)
		fail_msg("gw_bpf_reconf: %s", err);
	memset(&tl, 0, sizeof(tl));
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
	conf_default();
	if (geteuid() != 0)
		(void)snprintf(loaded_err, sizeof(loaded_err),
		    "needs root (CAP_BPF, CAP_NET_ADMIN) for the bpf() "
		    "syscall");
	else
		(void)gw_bpf_start(
		    &conf, GW_BPF_TEST, loaded_err, sizeof(loaded_err));
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	gw_bpf_stop();
	nat_pairs_free(&pairs);
	return 0;
}

/* Every test starts from the default configuration, loaded. */
static int
reset(void **state)
{
	(void)state;
	if (!gw_bpf_running())
		fail_msg("the kernel refused the fast path, which is a "
		         "failure here, not a skip: %s",
		    loaded_err);
	conf_default();
	apply();
	return 0;
}

/* ------------------------------------------------------- the sets */

static const char *const v4s[] = {
    "192.0.2.30",     /* pair (s6) */
    "198.51.100.25",  /* pair (s4) */
    "198.51.100.110", /* pair (c6) */
    "192.0.2.10",     /* c4, under 2001:db8:64::/96 */
    "8.8.8.8",        /* global */
    "10.1.2.3",       /* private */
    "169.254.1.1",    /* link-local */
    "127.0.0.1",      /* loopback */
    "224.0.0.5",      /* multicast */
    "0.1.2.3",        /* this network */
    "255.255.255.255",
};

static const char *const v6s[] = {
    "2001:db8::25",           /* pair (s6) */
    "2001:db8:1::25",         /* pair (s4) */
    "2001:db8:1::10",         /* pair (c6) */
    "2001:db8:64::c000:20a",  /* 192.0.2.10 under the prefix */
    "2001:db8:64::808:808",   /* 8.8.8.8 under the prefix */
    "64:ff9b::808:808",       /* 8.8.8.8 under the WKP: global */
    "64:ff9b::c000:20a",      /* 192.0.2.10 under the WKP: not */
    "2001:db8:64::a9fe:101",  /* 169.254.1.1: the host's link */
    "2001:db8:64::7f00:1",    /* 127.0.0.1 */
    "2001:db8:64::c000:21e",  /* 192.0.2.30: a pair's, refused */
    "2001:db8:64:0:100::808", /* u octet not zero */
    "2001:db8:99::1",         /* unmapped */
    "fe80::1",                /* link-local */
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Every pairing of addresses, every kind, a few sizes and TTLs. */
static void
sweep(const size_t *sizes, size_t nsizes)
{
	uint8_t p[PKT_MAX];
	size_t s, d, k, z, n;
	int df;

	for (s = 0; s < N(v4s); s++)
		for (d = 0; d < N(v4s); d++)
			for (k = 0; k < K_NKIND; k++)
				for (z = 0; z < nsizes; z++)
					for (df = 0; df < 2; df++) {
						n = b4(p, v4s[s], v4s[d],
						    (enum kind)k, sizes[z], 64,
						    df, 0xb8, 7007);
						(void)run(p, n);
					}
	for (s = 0; s < N(v6s); s++)
		for (d = 0; d < N(v6s); d++)
			for (k = 0; k < K_NKIND; k++)
				for (z = 0; z < nsizes; z++) {
					n = b6(p, v6s[s], v6s[d], (enum kind)k,
					    sizes[z], 64, 0xb8, 7007);
					(void)run(p, n);
				}
}

/* Sizes around each edge: 1260 (DF of §5.1), 1280 (mtu6), 1500. */
static const size_t edges[] = {28, 48, 60, 100, 1259, 1260, 1261, 1279, 1280,
    1281, 1300, 1459, 1460, 1461, 1480, 1481, 1500};

/* Packets the fast path is for: translated, whatever the set. */
static void
common(void)
{
	uint8_t p[PKT_MAX];
	size_t n;
	int k;

	for (k = K_TCP; k <= K_REPLY; k++) {
		n = b4(p, "192.0.2.10", "192.0.2.30", (enum kind)k, 100, 64, 1,
		    0, 7007);
		assert_int_equal(run(p, n), XLATED);
		n = b6(p, "2001:db8::25", "2001:db8:64::c000:20a", (enum kind)k,
		    100, 64, 0, 7007);
		assert_int_equal(run(p, n), XLATED);
		n = b6(p, "2001:db8:1::10", "2001:db8:1::25", (enum kind)k,
		    1300, 64, 0, 7007);
		assert_int_equal(run(p, n), XLATED);
	}
}

/* ------------------------------------------------------- tests */

static void
test_literal_vectors(void **state)
{
	static const struct {
		const uint8_t *p;
		size_t len;
		int xlated; /* the program must translate it */
	} vec[] = {
#define V(a, x) {a, sizeof(a), x}
	    V(udp46_in, 1),
	    V(udp46_out, 0),  /* source under the prefix: spoofed */
	    V(udp0_46_in, 0), /* UDP checksum 0: the slow path's */
	    V(udp0_46_out, 0),
	    V(tcp64_in, 1),
	    V(tcp64_out, 0),
	    V(echo46_in, 1),
	    V(echo46_out, 0),
	    V(echo64_in, 1),
	    V(echo64_out, 0),
	    V(err46_in, 0), /* ICMP errors: the slow path's */
	    V(err46_out, 0),
	    V(err64_in, 0),
	    V(err64_out, 0),
	    V(frag46_in, 0), /* fragments: the slow path's */
	    V(frag46_out, 0),
	    V(frag64_in, 0),
	    V(frag64_out, 0),
#undef V
	};
	size_t i;
	enum outcome o;

	(void)state;
	for (i = 0; i < N(vec); i++) {
		o = run(vec[i].p, vec[i].len);
		if (vec[i].xlated && o != XLATED)
			fail_msg("vector %zu: handed on, not translated", i);
	}
	/* The outputs of one way are inputs of the other, some of them
	 * translatable too. */
	assert_true(tl.xlat46 >= 2 && tl.xlat64 >= 2);
}

static void
test_sweep_default(void **state)
{
	(void)state;
	common();
	sweep(edges, N(edges));
	print_message("default: %u packets, %u handed on, %u 4->6, %u 6->4\n",
	    tl.runs, tl.passed, tl.xlat46, tl.xlat64);
	assert_true(tl.xlat46 > 100 && tl.xlat64 > 100);
}

static void
test_sweep_mtus(void **state)
{
	static const unsigned m[][3] = {{1280, 1280, 1280}, {576, 1500, 1500},
	    {1500, 1400, 1400}, {68, 1280, 0}};
	size_t i;

	(void)state;
	for (i = 0; i < N(m); i++) {
		conf.mtu4 = m[i][0];
		conf.mtu6 = m[i][1];
		conf.link6 = m[i][2];
		apply();
		sweep(edges, N(edges));
		print_message("mtu4 %u mtu6 %u link6 %u: %u packets, %u "
		              "translated\n",
		    m[i][0], m[i][1], m[i][2], tl.runs, tl.xlat46 + tl.xlat64);
	}
}

static void
test_sweep_sources_no_proxy(void **state)
{
	static const size_t small[] = {60, 100};

	(void)state;
	/* A prefix that translates IPv6 sources under it (ingress
	 * filtering elsewhere), and no proxy port. */
	pfx[0].sources = 1;
	conf.proxy_port = 0;
	apply();
	sweep(small, N(small));
	assert_true(tl.xlat64 > 0);
}

/* TCP to or from the proxy's port is the proxy's, whatever the
 * addresses; other protocols on that port are not. */
static void
test_proxy_port(void **state)
{
	uint8_t p[PKT_MAX];
	size_t n;
	int k;

	(void)state;
	for (k = K_TCP; k <= K_UDP; k++) {
		n = b4(p, "192.0.2.10", "192.0.2.30", (enum kind)k, 80, 64, 1,
		    0, 25);
		assert_int_equal(run(p, n), k == K_TCP ? PASSED : XLATED);
		n = b6(p, "2001:db8::25", "2001:db8:64::c000:20a", (enum kind)k,
		    80, 64, 0, 25);
		assert_int_equal(run(p, n), k == K_TCP ? PASSED : XLATED);
	}
	conf.proxy_port = 0;
	apply();
	n = b4(p, "192.0.2.10", "192.0.2.30", K_TCP, 80, 64, 1, 0, 25);
	assert_int_equal(run(p, n), XLATED);
}

static void
test_ttl_tos(void **state)
{
	uint8_t p[PKT_MAX];
	size_t n;
	unsigned ttl, tos;

	(void)state;
	for (ttl = 0; ttl < 4; ttl++)
		for (tos = 0; tos < 256; tos += 5) {
			n = b4(p, "192.0.2.10", "192.0.2.30", K_UDP, 80,
			    (uint8_t)ttl, 1, (uint8_t)tos, 53);
			assert_int_equal(run(p, n), ttl > 1 ? XLATED : PASSED);
			n = b6(p, "2001:db8::25", "2001:db8:64::c000:20a",
			    K_TCP, 80, (uint8_t)ttl, (uint8_t)tos, 443);
			assert_int_equal(run(p, n), ttl > 1 ? XLATED : PASSED);
		}
}

/* The program takes only what the NFQUEUE rules queue: an IPv4 packet
 * to an address that is no pair's is left alone, though nat_xlat would
 * embed its destination under the first prefix. */
static void
test_ipv4_destination_pairs_only(void **state)
{
	uint8_t p[PKT_MAX], out[PKT_MAX + NAT_XLAT_GROWTH];
	struct nat_xlat_out res;
	size_t n;

	(void)state;
	n = b4(p, "198.51.100.110", "8.8.8.8", K_UDP, 80, 64, 1, 0, 53);
	assert_int_equal(
	    nat_xlat(&conf, p, n, out, sizeof(out), &res), NAT_XLAT_OK);
	assert_int_equal(run(p, n), PASSED);
	n = b6(
	    p, "2001:db8:1::10", "2001:db8:64::808:808", K_UDP, 80, 64, 0, 53);
	assert_int_equal(run(p, n), XLATED);
}

/* IPv4 packets with bytes past Total Length: Ethernet's padding is
 * trimmed, anything longer is the slow path's. */
static void
test_trailing_octets(void **state)
{
	uint8_t p[PKT_MAX];
	size_t n;

	(void)state;
	n = b4(p, "192.0.2.10", "192.0.2.30", K_TCP, 40, 64, 1, 0, 443);
	memset(p + n, 0, 6);
	assert_int_equal(run(p, n + 6), XLATED);
	n = b4(p, "192.0.2.10", "192.0.2.30", K_UDP, 100, 64, 1, 0, 53);
	memset(p + n, 0, 6);
	assert_int_equal(run(p, n + 6), PASSED);
	n = b6(
	    p, "2001:db8::25", "2001:db8:64::c000:20a", K_UDP, 100, 64, 0, 53);
	memset(p + n, 0, 2);
	assert_int_equal(run(p, n + 2), PASSED);
}

/* Random corruption of translatable packets: octets of the headers
 * changed, the IPv4 header checksum mended half the time, the transport
 * one a quarter, one in sixteen cut short. */
static void
test_corrupted(void **state)
{
	uint8_t base[8][PKT_MAX], p[PKT_MAX];
	size_t blen[8], i, n, j, nb = 0;
	uint32_t r = 0x12345678;
	int k;

	(void)state;
	for (k = K_TCP; k <= K_REPLY; k++) {
		blen[nb] = b4(base[nb], "192.0.2.10", "192.0.2.30",
		    (enum kind)k, 120, 64, 1, 0, 7007);
		nb++;
		blen[nb] = b6(base[nb], "2001:db8:1::10",
		    "2001:db8:64::808:808", (enum kind)k, 120, 64, 0, 7007);
		nb++;
	}
	for (i = 0; i < 20000; i++) {
		j = i % nb;
		n = blen[j];
		memcpy(p, base[j], n);
		for (k = 0; k < 3; k++) {
			r = r * 1103515245u + 12345u;
			p[(r >> 8) % 68] ^= (uint8_t)(1u << ((r >> 4) & 7));
		}
		r = r * 1103515245u + 12345u;
		if ((r >> 16) & 1 && p[0] >> 4 == 4)
			csum_ip4(p);
		if (((r >> 17) & 3) == 0 && (p[0] == 0x45 || p[0] >> 4 == 6))
			csum_l4(p, n);
		/* Cut short, not below 40: BPF_PROG_TEST_RUN refuses a
		 * frame shorter than its network header. */
		if ((r >> 20) % 16 == 0)
			n = 40 + (r >> 24) % (n - 40);
		(void)run(p, n);
	}
	print_message("corrupted: %u packets, %u translated\n", tl.runs,
	    tl.xlat46 + tl.xlat64);
}

static void
test_counters(void **state)
{
	struct gw_bpf_stats st;
	uint8_t p[PKT_MAX];
	size_t n;

	(void)state;
	gw_bpf_stats(&st);
	n = b4(p, "192.0.2.10", "192.0.2.30", K_UDP, 80, 64, 1, 0, 53);
	(void)run(p, n);
	n = b4(p, "192.0.2.10", "192.0.2.30", K_UDP, 80, 1, 1, 0, 53);
	(void)run(p, n);
	{
		struct gw_bpf_stats st2;

		gw_bpf_stats(&st2);
		assert_int_equal(
		    st2.count[NAT_BPF_C_XLAT46] - st.count[NAT_BPF_C_XLAT46],
		    1);
		assert_int_equal(
		    st2.count[NAT_BPF_C_TTL] - st.count[NAT_BPF_C_TTL], 1);
	}
	assert_string_equal(gw_bpf_count_name(NAT_BPF_C_FIB_MTU), "fib_mtu");
	assert_string_equal(gw_bpf_count_name(NAT_BPF_C_MAX), "unknown");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_literal_vectors, reset),
	    cmocka_unit_test_setup(test_sweep_default, reset),
	    cmocka_unit_test_setup(test_sweep_mtus, reset),
	    cmocka_unit_test_setup(test_sweep_sources_no_proxy, reset),
	    cmocka_unit_test_setup(test_proxy_port, reset),
	    cmocka_unit_test_setup(test_ipv4_destination_pairs_only, reset),
	    cmocka_unit_test_setup(test_ttl_tos, reset),
	    cmocka_unit_test_setup(test_trailing_octets, reset),
	    cmocka_unit_test_setup(test_corrupted, reset),
	    cmocka_unit_test_setup(test_counters, reset),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
