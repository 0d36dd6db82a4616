/*
 * nat/dest_test.c: unit tests of nat/dest.c.  Addresses are documentation
 * ranges (RFC 5737, RFC 3849); prefix examples follow RFC 6052 §2.4.
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

#include "nat/dest.h"

static struct nat_addr
A(const char *s) {
	struct nat_addr a;

	assert_int_equal(nat_addr_parse(s, strlen(s), &a), 0);
	return a;
}

static const char *
fmt(const struct nat_addr *a)
{
	static char buf[4][64];
	static int i;

	i = (i + 1) % 4;
	assert_true(nat_addr_fmt(a, buf[i], sizeof(buf[i])) > 0);
	return buf[i];
}

static struct nat_acl
ACL(const char *s) {
	struct nat_acl a;

	assert_int_equal(nat_acl_parse(s, strlen(s), &a), 0);
	return a;
}

/* Two pairs: mx6 (open to any client), mx4 (clients in 192.0.2.0/24);
 * a WKP prefix and a /96 network-specific one; sources configured. */
struct fixture {
	struct nat_pairs pairs;
	struct nat_acl any, lan, v6lan, dests;
	const struct nat_acl *pair_clients[3];
	struct nat_dest_prefix pfx[2];
	struct nat_dest_conf c;
};

static struct fixture F;

static int
setup(void **state)
{
	struct nat_addr a4, a6;

	(void)state;
	memset(&F, 0, sizeof(F));
	assert_int_equal(nat_pairs_init(&F.pairs, 4), 0);
	F.any = ACL("any");
	F.lan = ACL("192.0.2.0/24");
	F.v6lan = ACL("2001:db8:c::/48");
	F.dests = ACL("10.0.0.0/8");
	a4 = A("198.51.100.25");
	a6 = A("2001:db8:1::25");
	assert_int_equal(nat_pairs_add(&F.pairs, &a4.u.v4, &a6.u.v6, 0), 0);
	a4 = A("198.51.100.26");
	a6 = A("2001:db8:1::26");
	assert_int_equal(nat_pairs_add(&F.pairs, &a4.u.v4, &a6.u.v6, 1), 0);
	/* A client's own pair, for source pairing. */
	a4 = A("192.0.2.77");
	a6 = A("2001:db8:2::77");
	assert_int_equal(nat_pairs_add(&F.pairs, &a4.u.v4, &a6.u.v6, 2), 0);
	/* A pair towards loopback: the configuration refuses it, the
	 * decision refuses it again. */
	F.pair_clients[0] = &F.any;
	F.pair_clients[1] = &F.lan;
	F.pair_clients[2] = &F.any;
	F.pfx[0].prefix = A("64:ff9b::").u.v6;
	F.pfx[0].plen = 96;
	F.pfx[0].wkp = 1;
	F.pfx[0].clients = &F.v6lan;
	F.pfx[0].dests = &F.dests;
	F.pfx[1].prefix = A("2001:db8:64::").u.v6;
	F.pfx[1].plen = 96;
	F.pfx[1].clients = &F.v6lan;
	F.c.pairs = &F.pairs;
	F.c.pair_clients = F.pair_clients;
	F.c.prefixes = F.pfx;
	F.c.nprefixes = 2;
	F.c.source4 = A("203.0.113.4");
	F.c.source6 = A("2001:db8:ff::6");
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	nat_pairs_free(&F.pairs);
	return 0;
}

static void
expect(const char *local, const char *client, enum nat_dest_rc rc,
    enum nat_dest_kind kind, uint32_t index, const char *dst)
{
	struct nat_addr l = A(local), c = A(client);
	struct nat_dest d;

	assert_int_equal(nat_dest_find(&F.c, &l, &c, &d), rc);
	assert_int_equal(d.kind, kind);
	if (kind != NAT_DEST_NONE)
		assert_int_equal(d.index, index);
	if (dst != NULL)
		assert_string_equal(fmt(&d.dst), dst);
}

/* A pair's address stands for its partner, both ways. */
static void
test_pair_both_ways(void **state)
{
	(void)state;
	expect("198.51.100.25", "203.0.113.9", NAT_DEST_OK, NAT_DEST_PAIR, 0,
	    "2001:db8:1::25");
	expect("2001:db8:1::25", "2001:db8:9::9", NAT_DEST_OK, NAT_DEST_PAIR, 0,
	    "198.51.100.25");
}

/* Never open: a pair's allow_clients decides. */
static void
test_pair_clients(void **state)
{
	(void)state;
	expect("198.51.100.26", "192.0.2.10", NAT_DEST_OK, NAT_DEST_PAIR, 1,
	    "2001:db8:1::26");
	expect("198.51.100.26", "203.0.113.9", NAT_DEST_CLIENT, NAT_DEST_PAIR,
	    1, NULL);
	/* RFC 4291 §2.5.5.2: a v4 client on a dual-stack socket. */
	expect("198.51.100.26", "::ffff:192.0.2.10", NAT_DEST_OK, NAT_DEST_PAIR,
	    1, NULL);
}

/* RFC 6052 §2.4 example: 192.0.2.33 under 64:ff9b::/96 is non-global
 * (RFC 5737), refused unless allow_destinations names it. */
static void
test_prefix_wkp(void **state)
{
	(void)state;
	/* A global address (no documentation range is global). */
	expect("64:ff9b::808:808", "2001:db8:c::1", NAT_DEST_OK, NAT_DEST_NAT64,
	    0, "8.8.8.8");
	expect("64:ff9b::c000:221", "2001:db8:c::1", NAT_DEST_NONGLOBAL,
	    NAT_DEST_NAT64, 0, "192.0.2.33");
	expect("64:ff9b::a00:1", "2001:db8:c::1", NAT_DEST_OK, NAT_DEST_NAT64,
	    0, "10.0.0.1");
	expect("64:ff9b::808:808", "2001:db8:d::1", NAT_DEST_CLIENT,
	    NAT_DEST_NAT64, 0, NULL);
}

/* A network-specific prefix carries any address but the host's own. */
static void
test_prefix_nsp(void **state)
{
	(void)state;
	expect("2001:db8:64::c000:221", "2001:db8:c::1", NAT_DEST_OK,
	    NAT_DEST_NAT64, 1, "192.0.2.33");
	expect("2001:db8:64::7f00:1", "2001:db8:c::1", NAT_DEST_NOT_HOST,
	    NAT_DEST_NAT64, 1, "127.0.0.1");
	expect("2001:db8:64::a9fe:1", "2001:db8:c::1", NAT_DEST_NOT_HOST,
	    NAT_DEST_NAT64, 1, NULL);
	expect("2001:db8:64::e000:1", "2001:db8:c::1", NAT_DEST_NOT_HOST,
	    NAT_DEST_NAT64, 1, NULL);
}

static void
test_no_mapping(void **state)
{
	(void)state;
	expect("198.51.100.99", "192.0.2.10", NAT_DEST_NO_MAPPING,
	    NAT_DEST_NONE, 0, NULL);
	expect("2001:db8:99::1", "2001:db8:c::1", NAT_DEST_NO_MAPPING,
	    NAT_DEST_NONE, 0, NULL);
}

/* A pair whose partner is loopback is refused whatever built it. */
static void
test_pair_not_host(void **state)
{
	struct nat_addr a4 = A("198.51.100.30"), a6 = A("::1");
	struct nat_addr l = A("198.51.100.30"), c = A("192.0.2.1");
	const struct nat_acl *pc[4];
	struct nat_dest_conf cc = F.c;
	struct nat_dest d;

	(void)state;
	assert_int_equal(nat_pairs_add(&F.pairs, &a4.u.v4, &a6.u.v6, 3), 0);
	memcpy(pc, F.pair_clients, sizeof(F.pair_clients));
	pc[3] = &F.any;
	cc.pair_clients = pc;
	assert_int_equal(nat_dest_find(&cc, &l, &c, &d), NAT_DEST_NOT_HOST);
	assert_string_equal(d.why, "loopback");
}

static void
test_source(void **state)
{
	struct nat_addr c4 = A("192.0.2.77"), c9 = A("192.0.2.9"), src;
	uint32_t pair = 99;

	(void)state;
	/* Off: the configured source of the family. */
	assert_int_equal(nat_dest_source(&F.c, &c4, AF_INET6, &src, &pair), 0);
	assert_string_equal(fmt(&src), "2001:db8:ff::6");
	F.c.source_pairing = 1;
	assert_int_equal(nat_dest_source(&F.c, &c4, AF_INET6, &src, &pair), 1);
	assert_string_equal(fmt(&src), "2001:db8:2::77");
	assert_int_equal(pair, 2);
	/* Same family: no translation, the configured source. */
	assert_int_equal(nat_dest_source(&F.c, &c4, AF_INET, &src, &pair), 0);
	assert_string_equal(fmt(&src), "203.0.113.4");
	/* Unpaired client. */
	assert_int_equal(nat_dest_source(&F.c, &c9, AF_INET6, &src, &pair), 0);
	assert_string_equal(fmt(&src), "2001:db8:ff::6");
	/* Nothing configured: the kernel's choice. */
	memset(&F.c.source6, 0, sizeof(F.c.source6));
	assert_int_equal(nat_dest_source(&F.c, &c9, AF_INET6, &src, &pair), 0);
	assert_int_equal(src.family, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
	        test_pair_both_ways, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pair_clients, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_prefix_wkp, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_prefix_nsp, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_mapping, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_pair_not_host, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_source, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
