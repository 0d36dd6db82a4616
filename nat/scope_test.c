/*
 * nat/scope_test.c: unit tests of nat/scope.c.
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

#include "nat/scope.h"

static struct in_addr
v4(const char *s)
{
	struct in_addr a;

	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return a;
}

static struct in6_addr
v6(const char *s)
{
	struct in6_addr a;

	assert_int_equal(inet_pton(AF_INET6, s, &a), 1);
	return a;
}

/* Each non-global range: its first and last address, the reason, the
 * source and whether it is host/link scoped. */
static const struct {
	const char *first, *last, *reason, *source;
	int local;
} ranges[] = {
    {"0.0.0.0", "0.255.255.255", "this-network", "RFC 1122", 1},
    {"10.0.0.0", "10.255.255.255", "private", "RFC 1918", 0},
    {"100.64.0.0", "100.127.255.255", "shared", "RFC 6598", 0},
    {"127.0.0.0", "127.255.255.255", "loopback", "RFC 1122", 1},
    {"169.254.0.0", "169.254.255.255", "link-local", "RFC 3927", 1},
    {"172.16.0.0", "172.31.255.255", "private", "RFC 1918", 0},
    {"192.0.0.0", "192.0.0.255", "ietf-protocol", "RFC 6890", 0},
    {"192.0.2.0", "192.0.2.255", "documentation", "RFC 5737", 0},
    {"192.88.99.0", "192.88.99.255", "6to4-relay", "RFC 3068", 0},
    {"192.168.0.0", "192.168.255.255", "private", "RFC 1918", 0},
    {"198.18.0.0", "198.19.255.255", "benchmarking", "RFC 2544", 0},
    {"198.51.100.0", "198.51.100.255", "documentation", "RFC 5737", 0},
    {"203.0.113.0", "203.0.113.255", "documentation", "RFC 5737", 0},
    {"224.0.0.0", "239.255.255.255", "multicast", "RFC 5771", 0},
    {"240.0.0.0", "255.255.255.254", "reserved", "RFC 1112", 0},
    {"255.255.255.255", "255.255.255.255", "broadcast", "RFC 919", 1},
};

static void
check_nonglobal(
    const char *s, const char *reason, const char *source, int local)
{
	struct in_addr a = v4(s);

	assert_int_equal(nat_scope_v4_global(&a), 0);
	assert_non_null(nat_scope_v4_reason(&a));
	assert_string_equal(nat_scope_v4_reason(&a), reason);
	assert_string_equal(nat_scope_v4_source(&a), source);
	assert_int_equal(nat_scope_v4_local(&a), local);
}

static void
check_global(const char *s)
{
	struct in_addr a = v4(s);

	assert_int_equal(nat_scope_v4_global(&a), 1);
	assert_null(nat_scope_v4_reason(&a));
	assert_null(nat_scope_v4_source(&a));
	assert_int_equal(nat_scope_v4_local(&a), 0);
}

/* RFC 6052 §3.1 / RFC 5735 §3: every range, at both ends. */
static void
test_v4_every_reason(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
		check_nonglobal(ranges[i].first, ranges[i].reason,
		    ranges[i].source, ranges[i].local);
		check_nonglobal(ranges[i].last, ranges[i].reason,
		    ranges[i].source, ranges[i].local);
	}
}

/* The addresses just outside each range are global. */
static void
test_v4_neighbours_global(void **state)
{
	static const char *g[] = {"1.0.0.0", "9.255.255.255", "11.0.0.0",
	    "100.63.255.255", "100.128.0.0", "126.255.255.255", "128.0.0.0",
	    "169.253.255.255", "169.255.0.0", "172.15.255.255", "172.32.0.0",
	    "191.255.255.255", "192.0.1.0", "192.0.3.0", "192.88.98.255",
	    "192.88.100.0", "192.167.255.255", "192.169.0.0", "198.17.255.255",
	    "198.20.0.0", "198.51.99.255", "198.51.101.0", "203.0.112.255",
	    "203.0.114.0", "223.255.255.255", "8.8.8.8", "93.184.216.34"};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(g) / sizeof(g[0]); i++)
		check_global(g[i]);
}

static void
test_v4_null(void **state)
{
	(void)state;
	assert_int_equal(nat_scope_v4_global(NULL), 0);
	assert_null(nat_scope_v4_reason(NULL));
	assert_int_equal(nat_scope_v4_local(NULL), 0);
}

static void
test_v6_scoped(void **state)
{
	static const char *s[] = {"::", "::1", "fe80::", "fe80::1",
	    "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fec0::1",
	    "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ff01::1", "ff02::1",
	    "ff05::2", "ff08::1", "ff00::1", "ff0f::1", "ff12::1", "ff32::1"};
	struct in6_addr a;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
		a = v6(s[i]);
		if (!nat_scope_v6_scoped(&a))
			fail_msg("%s should be scoped", s[i]);
	}
}

static void
test_v6_global(void **state)
{
	/* fe7f:: and fd00:: (ULA, RFC 4193: global scope) are just below
	 * link-local; ff0e:: and ff1e:: are global multicast; ::2 is not
	 * loopback; mapped addresses are judged as IPv4 elsewhere. */
	static const char *g[] = {"2001:db8::1", "fe7f:ffff::1", "fd00::1",
	    "fc00::1", "ff0e::1", "ff1e::101", "::2", "64:ff9b::192.0.2.1",
	    "::ffff:127.0.0.1", "2002:c000:0204::1", "1::"};
	struct in6_addr a;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(g) / sizeof(g[0]); i++) {
		a = v6(g[i]);
		if (nat_scope_v6_scoped(&a))
			fail_msg("%s should be global", g[i]);
	}
	assert_int_equal(nat_scope_v6_scoped(NULL), 0);
}

/*
 * nat_scope_dest_refused: every destination a pair, a prefix or a packet
 * mapping may produce.  Rows: address, the token (NULL: a host the
 * gateway may reach).  The ends of each range, and their neighbours.
 */
static void
test_dest_refused(void **state)
{
	static const struct {
		const char *addr, *why;
	} rows[] = {
	    /* IPv4: RFC 1122 §3.2.1.3, RFC 3927, RFC 5771, RFC 919 */
	    {"0.0.0.0", "this-network"},
	    {"0.255.255.255", "this-network"},
	    {"1.0.0.0", NULL},
	    {"126.255.255.255", NULL},
	    {"127.0.0.0", "loopback"},
	    {"127.0.0.1", "loopback"},
	    {"127.255.255.255", "loopback"},
	    {"128.0.0.0", NULL},
	    {"169.253.255.255", NULL},
	    {"169.254.0.0", "link-local"},
	    {"169.254.255.255", "link-local"},
	    {"169.255.0.0", NULL},
	    {"223.255.255.255", NULL},
	    {"224.0.0.0", "multicast"},
	    {"239.255.255.255", "multicast"},
	    {"255.255.255.255", "broadcast"},
	    /* non-global, yet a host inside one site: a pair may name it */
	    {"10.0.0.25", NULL},
	    {"192.0.2.30", NULL},
	    {"198.51.100.25", NULL},
	    {"100.64.0.1", NULL},
	    /* IPv6: RFC 4291 §2.5.2, §2.5.3, §2.5.5, §2.5.6, §2.7; 3879 */
	    {"::", "unspecified"},
	    {"::1", "loopback"},
	    {"::2", "ipv4-compatible"},
	    {"::127.0.0.1", "ipv4-compatible"},
	    {"::ffff", "ipv4-compatible"},
	    {"::ffff:ffff:ffff", "ipv4-mapped"},
	    {"::1:0:0:0", NULL},
	    {"::ffff:0.0.0.0", "ipv4-mapped"},
	    {"::ffff:127.0.0.1", "ipv4-mapped"},
	    {"::ffff:192.0.2.30", "ipv4-mapped"},
	    {"::fffe:c000:21e", NULL},
	    {"0:0:0:0:1:ffff:c000:21e", NULL},
	    {"fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NULL},
	    {"fe80::", "link-local"},
	    {"fe80::1", "link-local"},
	    {"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "link-local"},
	    {"fec0::", "site-local"},
	    {"feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "site-local"},
	    {"ff00::", "multicast"},
	    {"ff02::1", "multicast"},
	    {"ff0e::1", "multicast"},
	    {"fd00::1", NULL},
	    {"2001:db8::25", NULL},
	    {"64:ff9b::7f00:1", NULL},
	};
	struct nat_addr a;
	const char *got;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		memset(&a, 0, sizeof(a));
		if (strchr(rows[i].addr, ':') != NULL) {
			a.family = AF_INET6;
			a.u.v6 = v6(rows[i].addr);
		} else {
			a.family = AF_INET;
			a.u.v4 = v4(rows[i].addr);
		}
		got = nat_scope_dest_refused(&a);
		if (rows[i].why == NULL && got != NULL)
			fail_msg("%s: refused as %s", rows[i].addr, got);
		if (rows[i].why != NULL &&
		    (got == NULL || strcmp(got, rows[i].why) != 0))
			fail_msg("%s: got %s, want %s", rows[i].addr,
			    got != NULL ? got : "(ok)", rows[i].why);
	}
	assert_string_equal(nat_scope_dest_refused(NULL), "no-address");
	memset(&a, 0, sizeof(a));
	assert_string_equal(nat_scope_dest_refused(&a), "no-address");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_v4_every_reason),
	    cmocka_unit_test(test_v4_neighbours_global),
	    cmocka_unit_test(test_v4_null),
	    cmocka_unit_test(test_v6_scoped),
	    cmocka_unit_test(test_v6_global),
	    cmocka_unit_test(test_dest_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
