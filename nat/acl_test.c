/*
 * nat/acl_test.c: unit tests of nat/acl.c.
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

#include "nat/acl.h"
#include "nat/addr.h"

static int
cidr(const char *s, struct nat_cidr *c)
{
	return nat_cidr_parse(s, strlen(s), c);
}

static int
acl(const char *s, struct nat_acl *a)
{
	return nat_acl_parse(s, strlen(s), a);
}

static struct nat_addr
addr(const char *s)
{
	struct nat_addr a;

	assert_int_equal(nat_addr_parse(s, strlen(s), &a), 0);
	return a;
}

/* 1 if the list in text matches the address in text. */
static int
matches(const char *list, const char *a)
{
	struct nat_acl l;
	struct nat_addr x = addr(a);

	assert_int_equal(acl(list, &l), 0);
	return nat_acl_match(&l, &x);
}

static void
test_cidr_ok(void **state)
{
	static const struct {
		const char *s;
		int family;
		unsigned plen;
	} ok[] = {
	    {"192.0.2.0/24", AF_INET, 24},
	    {"0.0.0.0/0", AF_INET, 0},
	    {"192.0.2.1/32", AF_INET, 32},
	    {"192.0.2.1", AF_INET, 32},
	    {"10.0.0.0/8", AF_INET, 8},
	    {"10.0.0.0/7", AF_INET, 7},
	    {"100.64.0.0/10", AF_INET, 10},
	    {"2001:db8::/32", AF_INET6, 32},
	    {"::/0", AF_INET6, 0},
	    {"2001:db8::1/128", AF_INET6, 128},
	    {"2001:db8::1", AF_INET6, 128},
	    {"[2001:db8::]/32", AF_INET6, 32},
	    {"fe80::/10", AF_INET6, 10},
	    {"64:ff9b::/96", AF_INET6, 96},
	};
	struct nat_cidr c;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		if (cidr(ok[i].s, &c) != 0)
			fail_msg("%s should parse", ok[i].s);
		assert_int_equal(c.addr.family, ok[i].family);
		assert_int_equal(c.plen, ok[i].plen);
	}
}

static void
test_cidr_errors(void **state)
{
	static const struct {
		const char *s;
		int rc;
	} bad[] = {
	    {"", NAT_ACL_ESYNTAX},
	    {"any", NAT_ACL_ESYNTAX},
	    {"none", NAT_ACL_ESYNTAX},
	    {"/24", NAT_ACL_ESYNTAX},
	    {"192.0.2.0/", NAT_ACL_ESYNTAX},
	    {"192.0.2.0/024", NAT_ACL_ESYNTAX},
	    {"192.0.2.0/+24", NAT_ACL_ESYNTAX},
	    {"192.0.2.0/ 24", NAT_ACL_ESYNTAX},
	    {"192.0.2.0 /24", NAT_ACL_ESYNTAX},
	    {"192.0.2.0/24/8", NAT_ACL_ESYNTAX},
	    {"192.0.2.0/2x", NAT_ACL_ESYNTAX},
	    {"192.0.2.0/1000", NAT_ACL_ESYNTAX},
	    {"192.0.2/24", NAT_ACL_ESYNTAX},
	    {"fe80::1%eth0/128", NAT_ACL_ESYNTAX},
	    {"example.org/24", NAT_ACL_ESYNTAX},
	    {"192.0.2.0/33", NAT_ACL_EPLEN},
	    {"0.0.0.0/999", NAT_ACL_EPLEN},
	    {"2001:db8::/129", NAT_ACL_EPLEN},
	    {"192.0.2.1/24", NAT_ACL_EHOSTBITS},
	    {"192.0.2.128/24", NAT_ACL_EHOSTBITS},
	    {"11.0.0.0/7", NAT_ACL_EHOSTBITS},
	    {"0.0.0.1/0", NAT_ACL_EHOSTBITS},
	    {"2001:db8::1/64", NAT_ACL_EHOSTBITS},
	    {"2001:db9::/31", NAT_ACL_EHOSTBITS},
	    {"::1/127", NAT_ACL_EHOSTBITS},
	};
	struct nat_cidr c;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&c, 0xa5, sizeof(c));
		if (cidr(bad[i].s, &c) != bad[i].rc)
			fail_msg("%s: want %d", bad[i].s, bad[i].rc);
		/* *out untouched on failure */
		assert_int_equal(((unsigned char *)&c)[0], 0xa5);
		assert_string_not_equal(
		    nat_acl_error(bad[i].rc), "unknown error");
	}
	assert_int_equal(nat_cidr_parse(NULL, 3, &c), NAT_ACL_ESYNTAX);
}

/* The prefix text is not NUL terminated: parsing stops at len. */
static void
test_cidr_not_nul_terminated(void **state)
{
	struct nat_cidr c;

	(void)state;
	assert_int_equal(nat_cidr_parse("192.0.2.0/24x", 12, &c), 0);
	assert_int_equal(c.plen, 24);
	assert_int_equal(nat_cidr_parse("192.0.2.0/245", 12, &c), 0);
	assert_int_equal(nat_cidr_parse("2001:db8::/32,", 13, &c), 0);
}

static void
test_acl_words(void **state)
{
	struct nat_acl l;

	(void)state;
	assert_int_equal(acl("any", &l), 0);
	assert_int_equal(l.flags, NAT_ACL_ANY);
	assert_int_equal(l.n, 0);
	assert_int_equal(acl("  ANY\t", &l), 0);
	assert_int_equal(l.flags, NAT_ACL_ANY);
	assert_int_equal(acl("none", &l), 0);
	assert_int_equal(l.flags, NAT_ACL_NONE);
	assert_int_equal(l.n, 0);
	assert_int_equal(acl("None", &l), 0);
	assert_int_equal(l.flags, NAT_ACL_NONE);

	assert_int_equal(acl("any,192.0.2.0/24", &l), NAT_ACL_EWORD);
	assert_int_equal(acl("any none", &l), NAT_ACL_EWORD);
	assert_int_equal(acl("any,", &l), NAT_ACL_EWORD);
	assert_int_equal(acl("192.0.2.0/24 any", &l), NAT_ACL_EWORD);
	assert_int_equal(acl("192.0.2.0/24,none", &l), NAT_ACL_EWORD);
	assert_int_equal(acl("anything", &l), NAT_ACL_ESYNTAX);

	assert_true(matches("any", "192.0.2.1"));
	assert_true(matches("any", "2001:db8::1"));
	assert_false(matches("none", "192.0.2.1"));
	assert_false(matches("none", "::"));
}

static void
test_acl_separators(void **state)
{
	struct nat_acl l;

	(void)state;
	assert_int_equal(acl("192.0.2.0/24,198.51.100.0/24", &l), 0);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.flags, 0);
	assert_int_equal(
	    acl("192.0.2.0/24, 2001:db8::/32\t203.0.113.7", &l), 0);
	assert_int_equal(l.n, 3);
	assert_int_equal(l.e[2].plen, 32);
	assert_int_equal(acl(" \t192.0.2.0/24 ,  ::1 ", &l), 0);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.e[1].addr.family, AF_INET6);

	assert_int_equal(acl("", &l), NAT_ACL_EEMPTY);
	assert_int_equal(acl("   ", &l), NAT_ACL_EEMPTY);
	assert_int_equal(acl(",192.0.2.0/24", &l), NAT_ACL_EEMPTY);
	assert_int_equal(acl("192.0.2.0/24,", &l), NAT_ACL_EEMPTY);
	assert_int_equal(acl("192.0.2.0/24,,::1", &l), NAT_ACL_EEMPTY);
	assert_int_equal(acl("192.0.2.0/24 , , ::1", &l), NAT_ACL_EEMPTY);
	assert_int_equal(acl("192.0.2.0/24;::1", &l), NAT_ACL_ESYNTAX);
	assert_int_equal(nat_acl_parse(NULL, 0, &l), NAT_ACL_EEMPTY);
}

/* An error in any entry is the entry's error. */
static void
test_acl_entry_errors(void **state)
{
	struct nat_acl l;

	(void)state;
	assert_int_equal(
	    acl("192.0.2.0/24, 192.0.2.1/24", &l), NAT_ACL_EHOSTBITS);
	assert_int_equal(acl("::/0 2001:db8::/200", &l), NAT_ACL_EPLEN);
	assert_int_equal(acl("10.0.0.0/8 bogus", &l), NAT_ACL_ESYNTAX);
}

static void
test_acl_capacity(void **state)
{
	char buf[NAT_ACL_MAX * 16 + 32];
	struct nat_acl l;
	size_t n = 0;
	int i, w;

	(void)state;
	for (i = 0; i < NAT_ACL_MAX; i++) {
		w = snprintf(buf + n, sizeof(buf) - n, "%s10.0.%d.0/24",
		    i ? "," : "", i);
		assert_true(w > 0 && (size_t)w < sizeof(buf) - n);
		n += (size_t)w;
	}
	assert_int_equal(nat_acl_parse(buf, n, &l), 0);
	assert_int_equal(l.n, NAT_ACL_MAX);
	assert_true(matches(buf, "10.0.63.200"));
	assert_false(matches(buf, "10.0.64.1"));
	w = snprintf(buf + n, sizeof(buf) - n, ",10.0.64.0/24");
	assert_true(w > 0 && (size_t)w < sizeof(buf) - n);
	n += (size_t)w;
	assert_int_equal(nat_acl_parse(buf, n, &l), NAT_ACL_EFULL);
}

static void
test_match_v4(void **state)
{
	(void)state;
	/* /0 */
	assert_true(matches("0.0.0.0/0", "0.0.0.0"));
	assert_true(matches("0.0.0.0/0", "255.255.255.255"));
	assert_false(matches("0.0.0.0/0", "2001:db8::1"));
	/* /32 */
	assert_true(matches("192.0.2.7/32", "192.0.2.7"));
	assert_false(matches("192.0.2.7/32", "192.0.2.6"));
	assert_false(matches("192.0.2.7/32", "192.0.2.8"));
	assert_true(matches("192.0.2.7", "192.0.2.7"));
	/* a /24, at its edges */
	assert_true(matches("192.0.2.0/24", "192.0.2.0"));
	assert_true(matches("192.0.2.0/24", "192.0.2.255"));
	assert_false(matches("192.0.2.0/24", "192.0.1.255"));
	assert_false(matches("192.0.2.0/24", "192.0.3.0"));
	/* odd lengths split an octet */
	assert_true(matches("100.64.0.0/10", "100.127.255.255"));
	assert_false(matches("100.64.0.0/10", "100.128.0.0"));
	assert_true(matches("198.18.0.0/15", "198.19.1.1"));
	assert_false(matches("198.18.0.0/15", "198.20.0.0"));
	assert_true(matches("128.0.0.0/1", "200.1.1.1"));
	assert_false(matches("128.0.0.0/1", "127.255.255.255"));
}

static void
test_match_v6(void **state)
{
	(void)state;
	/* /0 */
	assert_true(matches("::/0", "::"));
	assert_true(matches("::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
	assert_false(matches("::/0", "192.0.2.1"));
	/* /128 */
	assert_true(matches("2001:db8::25/128", "2001:db8::25"));
	assert_false(matches("2001:db8::25/128", "2001:db8::24"));
	assert_false(matches("2001:db8::25/128", "2001:db8::26"));
	assert_true(matches("2001:db8::25", "2001:db8::25"));
	/* /32 and /10 */
	assert_true(matches("2001:db8::/32", "2001:db8:ffff::1"));
	assert_false(matches("2001:db8::/32", "2001:db9::1"));
	assert_true(matches("fe80::/10", "febf::1"));
	assert_false(matches("fe80::/10", "fec0::1"));
	/* /127 */
	assert_true(matches("2001:db8::/127", "2001:db8::1"));
	assert_false(matches("2001:db8::/127", "2001:db8::2"));
}

static void
test_match_mixed(void **state)
{
	static const char *list =
	    "192.0.2.0/24 2001:db8::/32, 198.51.100.7, ::1";

	(void)state;
	assert_true(matches(list, "192.0.2.200"));
	assert_true(matches(list, "2001:db8::abcd"));
	assert_true(matches(list, "198.51.100.7"));
	assert_true(matches(list, "::1"));
	assert_false(matches(list, "198.51.100.8"));
	assert_false(matches(list, "127.0.0.1"));
	assert_false(matches(list, "2001:db9::1"));
	/* RFC 4291 §2.5.5.2: a mapped peer is the IPv4 node */
	assert_true(matches(list, "::ffff:192.0.2.9"));
	assert_true(matches(list, "::ffff:198.51.100.7"));
	assert_false(matches(list, "::ffff:198.51.100.8"));
	/* the IPv4 part of other IPv6 addresses is not an IPv4 node */
	assert_false(matches(list, "::192.0.2.9"));
	assert_false(matches(list, "64:ff9b::192.0.2.9"));
	/* mapped addresses also match IPv6 prefixes as themselves */
	assert_true(matches("::ffff:0:0/96", "::ffff:10.1.2.3"));
	assert_true(matches("::/0", "::ffff:10.1.2.3"));
}

static void
test_match_edge(void **state)
{
	struct nat_acl l;
	struct nat_addr a = addr("192.0.2.1");

	(void)state;
	assert_int_equal(acl("192.0.2.0/24", &l), 0);
	assert_int_equal(nat_acl_match(NULL, &a), 0);
	assert_int_equal(nat_acl_match(&l, NULL), 0);
	a.family = AF_UNIX;
	assert_int_equal(nat_acl_match(&l, &a), 0);
	memset(&l, 0, sizeof(l));
	a = addr("192.0.2.1");
	assert_int_equal(nat_acl_match(&l, &a), 0);
	assert_string_equal(nat_acl_error(0), "unknown error");
	assert_string_equal(nat_acl_error(-99), "unknown error");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cidr_ok),
	    cmocka_unit_test(test_cidr_errors),
	    cmocka_unit_test(test_cidr_not_nul_terminated),
	    cmocka_unit_test(test_acl_words),
	    cmocka_unit_test(test_acl_separators),
	    cmocka_unit_test(test_acl_entry_errors),
	    cmocka_unit_test(test_acl_capacity),
	    cmocka_unit_test(test_match_v4),
	    cmocka_unit_test(test_match_v6),
	    cmocka_unit_test(test_match_mixed),
	    cmocka_unit_test(test_match_edge),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
