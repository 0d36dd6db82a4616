/*
 * nat/mx_test.c: unit tests of nat/mx.c.  The DNS answers are the shapes
 * RFC 3974 §3 and §5 describe (its example.org, a.example.org and
 * b.example.org zones), RFC 5321 §5.1's implicit MX, RFC 7505's null MX
 * and the tunnel-server layout of draft-mrosenau-email-ipv4-to-6 §3.
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

#include "nat/mx.h"

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

#define HOST(p, nm, arc, aaaarc, addrs)                                        \
	{                                                                      \
		(p), (nm), sizeof(nm) - 1, (arc), (aaaarc), (addrs),           \
		    sizeof(addrs) / sizeof((addrs)[0])                         \
	}
#define NOADDR(p, nm, arc, aaaarc)                                             \
	{                                                                      \
		(p), (nm), sizeof(nm) - 1, (arc), (aaaarc), NULL, 0            \
	}

static const struct nat_mx_policy both = {.families = NAT_MX_V4 | NAT_MX_V6};
static const struct nat_mx_policy only4 = {.families = NAT_MX_V4};
static const struct nat_mx_policy only6 = {.families = NAT_MX_V6};

/* Runs the choice and checks the targets, written as text, in order. */
static void
expect(const struct nat_mx_answer *ans, const struct nat_mx_policy *p,
    enum nat_mx_rc want_rc, const char *const *want, size_t nwant)
{
	struct nat_mx_target t[16];
	size_t n = 99, i;

	assert_int_equal(nat_mx_select(ans, p, 1, t, 16, &n), want_rc);
	assert_int_equal(n, nwant);
	for (i = 0; i < nwant; i++)
		assert_string_equal(fmt(&t[i].addr), want[i]);
}

/* RFC 3974 §3: example.org MX 1 mx1 (dual stack), MX 10 mx10 (IPv6
 * only).  AAAA first within a preference, preferences in order. */
static struct nat_addr mx1_addrs[2], mx10_addrs[1];

static void
rfc3974_example(struct nat_mx_host *h)
{
	mx1_addrs[0] = A("192.0.2.1");
	mx1_addrs[1] = A("2001:db8:ffff::1");
	mx10_addrs[0] = A("2001:db8:ffff::2");
	h[0] = (struct nat_mx_host)HOST(
	    10, "mx10.example.org", NAT_DNS_NODATA, NAT_DNS_OK, mx10_addrs);
	h[1] = (struct nat_mx_host)HOST(
	    1, "mx1.example.org", NAT_DNS_OK, NAT_DNS_OK, mx1_addrs);
}

static void
test_rfc3974_dual_stack(void **state)
{
	struct nat_mx_host h[2];
	struct nat_mx_answer ans = {NAT_DNS_OK, h, 2};
	static const char *const w_both[] = {
	    "2001:db8:ffff::1", "192.0.2.1", "2001:db8:ffff::2"};
	static const char *const w4[] = {"192.0.2.1"};
	static const char *const w6[] = {
	    "2001:db8:ffff::1", "2001:db8:ffff::2"};

	(void)state;
	rfc3974_example(h);
	expect(&ans, &both, NAT_MX_OK, w_both, 3);
	expect(&ans, &only4, NAT_MX_OK, w4, 1);
	expect(&ans, &only6, NAT_MX_OK, w6, 2);
}

/* RFC 3974 §3: an IPv4-only sender fails a.example.org (IPv6-only MX)
 * with the same error as b.example.org (MX without any address). */
static void
test_rfc3974_no_usable_family(void **state)
{
	static struct nat_addr a_addrs[1];
	struct nat_mx_host ha[1], hb[1];
	struct nat_mx_answer a = {NAT_DNS_OK, ha, 1}, b = {NAT_DNS_OK, hb, 1};

	(void)state;
	a_addrs[0] = A("2001:db8:ffff::1");
	ha[0] = (struct nat_mx_host)HOST(
	    1, "mx1.a.example.org", NAT_DNS_NODATA, NAT_DNS_OK, a_addrs);
	hb[0] = (struct nat_mx_host)NOADDR(
	    1, "mx1.b.example.org", NAT_DNS_NODATA, NAT_DNS_NODATA);
	expect(&a, &only4, NAT_MX_NOADDRESS, NULL, 0);
	expect(&b, &only4, NAT_MX_NOADDRESS, NULL, 0);
	expect(&b, &both, NAT_MX_NOADDRESS, NULL, 0);
}

/* §3 step 1: NXDOMAIN is permanent, SERVFAIL and no answer temporary. */
static void
test_mx_query_outcomes(void **state)
{
	struct nat_mx_answer nx = {NAT_DNS_NXDOMAIN, NULL, 0};
	struct nat_mx_answer sf = {NAT_DNS_SERVFAIL, NULL, 0};
	struct nat_mx_answer to = {NAT_DNS_TIMEOUT, NULL, 0};
	struct nat_mx_answer empty = {NAT_DNS_OK, NULL, 0};

	(void)state;
	expect(&nx, &both, NAT_MX_NXDOMAIN, NULL, 0);
	expect(&sf, &both, NAT_MX_TEMPFAIL, NULL, 0);
	expect(&to, &both, NAT_MX_TEMPFAIL, NULL, 0);
	expect(&empty, &both, NAT_MX_NOADDRESS, NULL, 0);
	assert_string_equal(nat_mx_rc_name(NAT_MX_TEMPFAIL), "dns-tempfail");
	assert_string_equal(nat_mx_rc_name(NAT_MX_NRC), "unknown");
}

/* RFC 5321 §5.1: no MX record, the domain's own addresses. */
static void
test_implicit_mx(void **state)
{
	static struct nat_addr ad[2];
	struct nat_mx_host h[1];
	struct nat_mx_answer ans = {NAT_DNS_NODATA, h, 1};
	static const char *const w[] = {"2001:db8:5::25", "198.51.100.25"};

	(void)state;
	ad[0] = A("198.51.100.25");
	ad[1] = A("2001:db8:5::25");
	h[0] = (struct nat_mx_host)HOST(
	    0, "example.net", NAT_DNS_OK, NAT_DNS_OK, ad);
	expect(&ans, &both, NAT_MX_OK, w, 2);
}

/* RFC 7505 §3: "MX 0 ." alone means no mail; beside real MX records it
 * is ignored. */
static void
test_null_mx(void **state)
{
	static struct nat_addr ad[1];
	struct nat_mx_host h[2];
	struct nat_mx_answer only = {NAT_DNS_OK, h, 1};
	struct nat_mx_answer mixed = {NAT_DNS_OK, h, 2};
	static const char *const w[] = {"2001:db8::25"};

	(void)state;
	ad[0] = A("2001:db8::25");
	h[0] = (struct nat_mx_host)NOADDR(
	    0, ".", NAT_DNS_NOTASKED, NAT_DNS_NOTASKED);
	h[1] = (struct nat_mx_host)HOST(
	    10, "mx.example.org", NAT_DNS_NODATA, NAT_DNS_OK, ad);
	expect(&only, &both, NAT_MX_NULLMX, NULL, 0);
	expect(&mixed, &both, NAT_MX_OK, w, 1);
	h[0].name = "";
	h[0].name_len = 0;
	expect(&only, &both, NAT_MX_NULLMX, NULL, 0);
}

/* RFC 3974 §5: a server answering AAAA with SERVFAIL must not stop
 * delivery over IPv4; with IPv6 the only usable family the answer is
 * unknown, so temporary. */
static void
test_rfc3974_s5_aaaa_servfail(void **state)
{
	static struct nat_addr ad[1];
	struct nat_mx_host h[1];
	struct nat_mx_answer ans = {NAT_DNS_OK, h, 1};
	static const char *const w[] = {"192.0.2.25"};

	(void)state;
	ad[0] = A("192.0.2.25");
	h[0] = (struct nat_mx_host)HOST(
	    10, "mx.example.org", NAT_DNS_OK, NAT_DNS_SERVFAIL, ad);
	expect(&ans, &both, NAT_MX_OK, w, 1);
	expect(&ans, &only4, NAT_MX_OK, w, 1);
	expect(&ans, &only6, NAT_MX_TEMPFAIL, NULL, 0);
	h[0].aaaa_rc = NAT_DNS_TIMEOUT;
	expect(&ans, &only6, NAT_MX_TEMPFAIL, NULL, 0);
}

/* §5 across hosts: the more preferred host's lookups fail, the next
 * host's work. */
static void
test_tempfail_host_then_good_host(void **state)
{
	static struct nat_addr ad[1];
	struct nat_mx_host h[2];
	struct nat_mx_answer ans = {NAT_DNS_OK, h, 2};
	static const char *const w[] = {"2001:db8::26"};

	(void)state;
	ad[0] = A("2001:db8::26");
	h[0] = (struct nat_mx_host)NOADDR(
	    5, "mx1.example.org", NAT_DNS_SERVFAIL, NAT_DNS_SERVFAIL);
	h[1] = (struct nat_mx_host)HOST(
	    10, "mx2.example.org", NAT_DNS_NODATA, NAT_DNS_OK, ad);
	expect(&ans, &both, NAT_MX_OK, w, 1);
}

/* §3 step 2: MX records at or above the preference of the one naming
 * the gateway are dropped; if that is the lowest, nothing is left. */
static void
test_rfc3974_step2_own_name(void **state)
{
	static struct nat_addr a5[1], a10[1], a20[1];
	struct nat_mx_host h[3];
	struct nat_mx_answer ans = {NAT_DNS_OK, h, 3};
	struct nat_mx_policy p = {NAT_MX_V6, NULL, 0, "GW.example.net.", 15};
	static const char *const w[] = {"2001:db8::5"};

	(void)state;
	a5[0] = A("2001:db8::5");
	a10[0] = A("2001:db8::10");
	a20[0] = A("2001:db8::20");
	h[0] = (struct nat_mx_host)HOST(
	    20, "mx20.example.org", NAT_DNS_NODATA, NAT_DNS_OK, a20);
	h[1] = (struct nat_mx_host)HOST(
	    10, "gw.example.net", NAT_DNS_NODATA, NAT_DNS_OK, a10);
	h[2] = (struct nat_mx_host)HOST(
	    5, "mx5.example.org", NAT_DNS_NODATA, NAT_DNS_OK, a5);
	expect(&ans, &p, NAT_MX_OK, w, 1);
	h[2].pref = 10; /* now as preferred as the gateway: dropped too */
	expect(&ans, &p, NAT_MX_SELF, NULL, 0);
}

/* draft-mrosenau §3: the MX host's A record is the gateway's own IPv4
 * address, its AAAA the real server.  The gateway never connects to
 * itself: from IPv4 it goes to the AAAA; asked for IPv4 only, nothing
 * but itself is left (a loop). */
static void
test_tunnel_server_shape(void **state)
{
	static struct nat_addr ad[2], own[1], other[1];
	struct nat_mx_host h[1];
	struct nat_mx_answer ans = {NAT_DNS_OK, h, 1};
	struct nat_mx_policy p = {NAT_MX_V4 | NAT_MX_V6, own, 1, NULL, 0};
	static const char *const w[] = {"2001:db8:a::25"};

	(void)state;
	ad[0] = A("192.0.2.30");
	ad[1] = A("2001:db8:a::25");
	own[0] = A("192.0.2.30");
	other[0] = A("192.0.2.31");
	h[0] = (struct nat_mx_host)HOST(
	    10, "mx.a.example", NAT_DNS_OK, NAT_DNS_OK, ad);
	expect(&ans, &p, NAT_MX_OK, w, 1);
	p.families = NAT_MX_V4;
	expect(&ans, &p, NAT_MX_SELF, NULL, 0);
	assert_int_equal(nat_mx_names_gateway(&ans, &p), 1);
	p.own = other;
	assert_int_equal(nat_mx_names_gateway(&ans, &p), 0);
	ans.mx_rc = NAT_DNS_NXDOMAIN;
	p.own = own;
	assert_int_equal(nat_mx_names_gateway(&ans, &p), 0);
}

/* §3 step 5 note and RFC 5321 §5.1: equal preferences are shuffled,
 * AAAA and A apart (all AAAA of the group first), and every order is
 * reachable by some seed. */
static void
test_shuffle_within_family(void **state)
{
	static struct nat_addr a1[2], a2[2];
	struct nat_mx_host h[2];
	struct nat_mx_answer ans = {NAT_DNS_OK, h, 2};
	struct nat_mx_target t[8];
	size_t n, i;
	uint32_t seed;
	int first_seen[2] = {0, 0}, v4first[2] = {0, 0};

	(void)state;
	a1[0] = A("192.0.2.1");
	a1[1] = A("2001:db8::1");
	a2[0] = A("192.0.2.2");
	a2[1] = A("2001:db8::2");
	h[0] = (struct nat_mx_host)HOST(
	    10, "mx1.example.org", NAT_DNS_OK, NAT_DNS_OK, a1);
	h[1] = (struct nat_mx_host)HOST(
	    10, "mx2.example.org", NAT_DNS_OK, NAT_DNS_OK, a2);
	for (seed = 1; seed <= 64; seed++) {
		assert_int_equal(
		    nat_mx_select(&ans, &both, seed, t, 8, &n), NAT_MX_OK);
		assert_int_equal(n, 4);
		for (i = 0; i < 2; i++)
			assert_int_equal(t[i].addr.family, AF_INET6);
		for (i = 2; i < 4; i++)
			assert_int_equal(t[i].addr.family, AF_INET);
		first_seen[t[0].host] = 1;
		v4first[t[2].host] = 1;
	}
	assert_true(first_seen[0] && first_seen[1]);
	assert_true(v4first[0] && v4first[1]);
}

/* A shared address is listed once; cap bounds the list; a zone with
 * more hosts than the module considers is cut, not overrun. */
static void
test_dedupe_cap_and_many_hosts(void **state)
{
	static struct nat_addr ad[3];
	static struct nat_mx_host many[200];
	struct nat_mx_host h[2];
	struct nat_mx_answer ans = {NAT_DNS_OK, h, 2};
	struct nat_mx_answer big = {NAT_DNS_OK, many, 200};
	struct nat_mx_target t[4];
	size_t n, i;

	(void)state;
	ad[0] = A("2001:db8::1");
	ad[1] = A("2001:db8::2");
	ad[2] = A("2001:db8::3");
	h[0] = (struct nat_mx_host)HOST(
	    10, "mx1.example.org", NAT_DNS_NODATA, NAT_DNS_OK, ad);
	h[1] = h[0];
	h[1].pref = 20;
	assert_int_equal(nat_mx_select(&ans, &both, 7, t, 4, &n), NAT_MX_OK);
	assert_int_equal(n, 3);
	assert_int_equal(nat_mx_select(&ans, &both, 7, t, 2, &n), NAT_MX_OK);
	assert_int_equal(n, 2);
	for (i = 0; i < 200; i++) {
		many[i] = h[0];
		many[i].pref = (uint16_t)(i % 7);
	}
	assert_int_equal(nat_mx_select(&big, &both, 7, t, 4, &n), NAT_MX_OK);
	assert_int_equal(n, 3);
}

static void
test_domain_listed(void **state)
{
	static const char *const list[] = {
	    "a.example", ".b.example", "C.Example."};

	(void)state;
#define L(s) nat_mx_domain_listed((s), strlen(s), list, 3)
	assert_int_equal(L("a.example"), 1);
	assert_int_equal(L("A.EXAMPLE."), 1);
	assert_int_equal(L("x.a.example"), 0);
	assert_int_equal(L("b.example"), 0);
	assert_int_equal(L("mx.b.example"), 1);
	assert_int_equal(L("deep.mx.B.example"), 1);
	assert_int_equal(L("xb.example"), 0);
	assert_int_equal(L("c.example"), 1);
	assert_int_equal(L("bad-a.example"), 0);
	assert_int_equal(L(""), 0);
	assert_int_equal(L("."), 0);
#undef L
	assert_int_equal(nat_mx_domain_listed("a.example", 9, list, 0), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rfc3974_dual_stack),
	    cmocka_unit_test(test_rfc3974_no_usable_family),
	    cmocka_unit_test(test_mx_query_outcomes),
	    cmocka_unit_test(test_implicit_mx),
	    cmocka_unit_test(test_null_mx),
	    cmocka_unit_test(test_rfc3974_s5_aaaa_servfail),
	    cmocka_unit_test(test_tempfail_host_then_good_host),
	    cmocka_unit_test(test_rfc3974_step2_own_name),
	    cmocka_unit_test(test_tunnel_server_shape),
	    cmocka_unit_test(test_shuffle_within_family),
	    cmocka_unit_test(test_dedupe_cap_and_many_hosts),
	    cmocka_unit_test(test_domain_listed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
