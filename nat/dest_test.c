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
#include <stdio.h>
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

/*
 * Route mode.  The DNS of draft-mrosenau-email-ipv4-to-6 §2.1 with the
 * documentation ranges: mx1.example.org and mx1.example.com are IPv6-only
 * servers whose A record is the gateway's route address 192.0.2.30;
 * ip4only.example is an IPv4-only server.
 */
static struct nat_addr own[2], rt_addrs[2];
static struct nat_addr org_addrs[2], com_addrs[2], v4_addrs[1];
static struct nat_mx_host org_host, com_host, v4_host;
static struct nat_acl lan;
static const char *const served[] = {"example.com"};

static void
route_setup(struct nat_dest_route *r)
{
	own[0] = A("192.0.2.30");
	own[1] = A("2001:db8:ffff::30");
	rt_addrs[0] = own[0];
	rt_addrs[1] = own[1];
	org_addrs[0] = A("2001:db8:ffff::1:1");
	org_addrs[1] = A("192.0.2.30");
	com_addrs[0] = A("2001:db8:ffff::2:1");
	com_addrs[1] = A("192.0.2.30");
	v4_addrs[0] = A("198.51.100.1");
	org_host = (struct nat_mx_host){
	    1, "mx1.example.org", 15, NAT_DNS_OK, NAT_DNS_OK, org_addrs, 2};
	com_host = (struct nat_mx_host){
	    1, "mx1.example.com", 15, NAT_DNS_OK, NAT_DNS_OK, com_addrs, 2};
	v4_host = (struct nat_mx_host){1, "mx1.ip4only.example", 19, NAT_DNS_OK,
	    NAT_DNS_NODATA, v4_addrs, 1};
	lan = ACL("2001:db8:c::/48");
	memset(r, 0, sizeof(*r));
	r->addrs = rt_addrs;
	r->naddrs = 2;
	r->own = own;
	r->nown = 2;
}

static enum nat_route_rc
route(const struct nat_dest_route *r, int fam, const char *dom,
    const struct nat_mx_answer *ans, const char *want)
{
	struct nat_mx_target t[8];
	size_t n, i, used = 0;
	char got[256] = "";
	enum nat_route_rc rc;

	rc = nat_dest_route(r, fam, dom, strlen(dom), ans, 7, t, 8, &n);
	for (i = 0; i < n; i++)
		used += (size_t)snprintf(got + used, sizeof(got) - used, "%s%s",
		    i > 0 ? "," : "", fmt(&t[i].addr));
	if (want != NULL)
		assert_string_equal(got, want);
	if (rc != NAT_ROUTE_OK)
		assert_int_equal(n, 0);
	return rc;
}

/* Draft §2.2: an IPv4-only sender reaches 192.0.2.30 for mx1.example.com;
 * the gateway forwards to the IPv6 address, never to its own A record. */
static void
test_route_published(void **state)
{
	struct nat_dest_route r;
	struct nat_mx_answer org = {NAT_DNS_OK, &org_host, 1};
	struct nat_mx_answer com = {NAT_DNS_OK, &com_host, 1};
	struct nat_mx_answer v4 = {NAT_DNS_OK, &v4_host, 1};

	(void)state;
	route_setup(&r);
	/* Nothing configured: nothing served. */
	assert_int_equal(
	    route(&r, AF_INET, "example.org", &org, ""), NAT_ROUTE_NOT_SERVED);
	r.serve_published = 1;
	assert_int_equal(
	    route(&r, AF_INET, "example.org", &org, "2001:db8:ffff::1:1"),
	    NAT_ROUTE_OK);
	assert_int_equal(
	    route(&r, AF_INET, "EXAMPLE.COM.", &com, "2001:db8:ffff::2:1"),
	    NAT_ROUTE_OK);
	/* ip4only.example does not publish the gateway: not served. */
	assert_int_equal(route(&r, AF_INET, "ip4only.example", &v4, ""),
	    NAT_ROUTE_NOT_SERVED);
}

/* A listed domain is served whatever its DNS; an IPv6 client reaches the
 * IPv4 server (draft §2.3), a v4 client has no usable address. */
static void
test_route_listed(void **state)
{
	struct nat_dest_route r;
	struct nat_mx_answer v4 = {NAT_DNS_OK, &v4_host, 1};
	const char *const list[] = {".ip4only.example", "ip4only.example"};

	(void)state;
	route_setup(&r);
	r.domains = list;
	r.ndomains = 2;
	assert_int_equal(
	    route(&r, AF_INET6, "ip4only.example", &v4, "198.51.100.1"),
	    NAT_ROUTE_OK);
	assert_int_equal(route(&r, AF_INET, "ip4only.example", &v4, ""),
	    NAT_ROUTE_NOADDRESS);
	assert_int_equal(
	    route(&r, AF_INET6, "sub.ip4only.example", &v4, "198.51.100.1"),
	    NAT_ROUTE_OK);
	assert_int_equal(route(&r, AF_INET6, "xip4only.example", &v4, ""),
	    NAT_ROUTE_NOT_SERVED);
}

/* Every error a RCPT can get from the DNS, for a served domain. */
static void
test_route_errors(void **state)
{
	struct nat_dest_route r;
	struct nat_mx_answer nx = {NAT_DNS_NXDOMAIN, NULL, 0};
	struct nat_mx_answer sf = {NAT_DNS_SERVFAIL, NULL, 0};
	struct nat_mx_answer to = {NAT_DNS_TIMEOUT, NULL, 0};
	struct nat_mx_host null_host = {
	    0, "", 0, NAT_DNS_NOTASKED, NAT_DNS_NOTASKED, NULL, 0};
	struct nat_mx_answer nullmx = {NAT_DNS_OK, &null_host, 1};
	struct nat_addr self6 = A("2001:db8:ffff::30");
	struct nat_addr lo = A("::1");
	struct nat_mx_host self_host = {
	    5, "mx.example.com", 14, NAT_DNS_NODATA, NAT_DNS_OK, &self6, 1};
	struct nat_mx_answer self = {NAT_DNS_OK, &self_host, 1};
	struct nat_mx_host lo_host = {
	    5, "mx.example.com", 14, NAT_DNS_NODATA, NAT_DNS_OK, &lo, 1};
	struct nat_mx_answer loa = {NAT_DNS_OK, &lo_host, 1};
	/* RFC 3974 §5: SERVFAIL on AAAA, an A record: from IPv6, go on
	 * over IPv4. */
	struct nat_mx_host brk = {10, "mx.example.com", 14, NAT_DNS_OK,
	    NAT_DNS_SERVFAIL, v4_addrs, 1};
	struct nat_mx_answer broken = {NAT_DNS_OK, &brk, 1};

	(void)state;
	route_setup(&r);
	r.domains = served;
	r.ndomains = 1;
	assert_int_equal(
	    route(&r, AF_INET, "example.com", &nx, ""), NAT_ROUTE_NXDOMAIN);
	assert_int_equal(
	    route(&r, AF_INET, "example.com", &sf, ""), NAT_ROUTE_TEMPFAIL);
	assert_int_equal(
	    route(&r, AF_INET, "example.com", &to, ""), NAT_ROUTE_TEMPFAIL);
	assert_int_equal(
	    route(&r, AF_INET, "example.com", &nullmx, ""), NAT_ROUTE_NULLMX);
	assert_int_equal(
	    route(&r, AF_INET, "example.com", &self, ""), NAT_ROUTE_SELF);
	assert_int_equal(
	    route(&r, AF_INET, "example.com", &loa, ""), NAT_ROUTE_NOADDRESS);
	assert_int_equal(
	    route(&r, AF_INET6, "example.com", &broken, "198.51.100.1"),
	    NAT_ROUTE_OK);
	/* From IPv4 the same answer leaves only the AAAA that failed:
	 * try again later, not a bounce. */
	assert_int_equal(
	    route(&r, AF_INET, "example.com", &broken, ""), NAT_ROUTE_TEMPFAIL);
	/* Published only, and the DNS did not answer: try later. */
	r.ndomains = 0;
	r.serve_published = 1;
	assert_int_equal(
	    route(&r, AF_INET, "example.com", &sf, ""), NAT_ROUTE_TEMPFAIL);
	assert_int_equal(
	    route(&r, AF_INET, "example.com", &nx, ""), NAT_ROUTE_NOT_SERVED);
}

/* The replies, as the RCPT gets them. */
static void
test_route_replies(void **state)
{
	static const struct {
		enum nat_route_rc rc;
		const char *code;
	} want[] = {
	    {NAT_ROUTE_NOT_SERVED, "550 5.7.1"},
	    {NAT_ROUTE_NXDOMAIN, "550 5.1.2"},
	    {NAT_ROUTE_NULLMX, "556 5.1.10"},
	    {NAT_ROUTE_NOADDRESS, "550 5.1.2"},
	    {NAT_ROUTE_TEMPFAIL, "451 4.4.3"},
	    {NAT_ROUTE_SELF, "554 5.4.6"},
	    {NAT_ROUTE_UNREACHABLE, "451 4.4.1"},
	    {NAT_ROUTE_OTHER, "452 4.5.3"},
	};
	const char *code, *text;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		nat_dest_route_reply(want[i].rc, &code, &text);
		assert_string_equal(code, want[i].code);
		assert_true(strlen(text) > 0);
		assert_string_not_equal(nat_dest_route_name(want[i].rc), "?");
	}
	assert_true(nat_dest_route_same("Example.COM.", 12, "example.com", 11));
	assert_false(nat_dest_route_same("example.com", 11, "example.org", 11));
}

/* A smarthost serves any domain, only to the clients it names; a route
 * address is found before pairs. */
static void
test_route_smarthost(void **state)
{
	struct nat_dest_route r;
	struct nat_mx_answer v4 = {NAT_DNS_OK, &v4_host, 1};
	struct nat_dest_conf c = F.c;
	struct nat_addr l = A("2001:db8:ffff::30"), cl = A("2001:db8:c::9");
	struct nat_addr out_cl = A("2001:db8:d::9");
	struct nat_dest d;

	(void)state;
	route_setup(&r);
	r.smarthost = 1;
	r.clients = &lan;
	assert_int_equal(
	    route(&r, AF_INET6, "ip4only.example", &v4, "198.51.100.1"),
	    NAT_ROUTE_OK);
	c.routes = &r;
	c.nroutes = 1;
	assert_int_equal(nat_dest_find(&c, &l, &cl, &d), NAT_DEST_OK);
	assert_int_equal(d.kind, NAT_DEST_ROUTE);
	assert_int_equal(nat_dest_find(&c, &l, &out_cl, &d), NAT_DEST_CLIENT);
	/* Without a list, a smarthost serves nobody. */
	r.clients = NULL;
	assert_int_equal(nat_dest_find(&c, &l, &cl, &d), NAT_DEST_CLIENT);
	/* A tunnel server (no smarthost, no list) is an MX: anyone. */
	r.smarthost = 0;
	assert_int_equal(nat_dest_find(&c, &l, &out_cl, &d), NAT_DEST_OK);
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
	    cmocka_unit_test(test_route_published),
	    cmocka_unit_test(test_route_listed),
	    cmocka_unit_test(test_route_errors),
	    cmocka_unit_test(test_route_replies),
	    cmocka_unit_test_setup_teardown(
	        test_route_smarthost, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
