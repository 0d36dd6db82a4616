/*
 * nat/addr_test.c: unit tests of nat/addr.c.
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

#include "nat/addr.h"

/* Parses a C string with nat_addr_parse. */
static int
parse(const char *s, struct nat_addr *a)
{
	return nat_addr_parse(s, strlen(s), a);
}

static void
assert_v4(const struct nat_addr *a, const char *want)
{
	struct in_addr w;

	assert_int_equal(inet_pton(AF_INET, want, &w), 1);
	assert_int_equal(a->family, AF_INET);
	assert_memory_equal(&a->u.v4, &w, sizeof(w));
}

static void
assert_v6(const struct nat_addr *a, const char *want)
{
	struct in6_addr w;

	assert_int_equal(inet_pton(AF_INET6, want, &w), 1);
	assert_int_equal(a->family, AF_INET6);
	assert_memory_equal(&a->u.v6, &w, sizeof(w));
}

static void
test_parse_v4(void **state)
{
	static const char *ok[] = {"192.0.2.1", "0.0.0.0", "255.255.255.255",
	    "10.0.0.1", "198.51.100.254"};
	struct nat_addr a;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(parse(ok[i], &a), 0);
		assert_v4(&a, ok[i]);
	}
}

static void
test_parse_v6(void **state)
{
	static const char *ok[] = {"2001:db8::1", "::", "::1",
	    "2001:DB8::A:b:C", "1:2:3:4:5:6:7:8", "fe80::1", "::ffff:192.0.2.1",
	    "64:ff9b::192.0.2.33", "2001:0db8:0000:0000:0000:0000:0000:0001",
	    /* 45 characters: the longest text accepted */
	    "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"};
	struct nat_addr a;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(parse(ok[i], &a), 0);
		assert_v6(&a, ok[i]);
	}
}

static void
test_parse_bracketed(void **state)
{
	struct nat_addr a;

	(void)state;
	assert_int_equal(parse("[2001:db8::1]", &a), 0);
	assert_v6(&a, "2001:db8::1");
	assert_int_equal(parse("[::]", &a), 0);
	assert_v6(&a, "::");
	assert_int_equal(
	    parse("[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]", &a), 0);
	assert_v6(&a, "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255");
}

static void
test_parse_not_nul_terminated(void **state)
{
	static const char buf4[] = {
	    '1', '9', '2', '.', '0', '.', '2', '.', '1', '2', '3', '4'};
	static const char buf6[] = {'[', ':', ':', '1', ']', ':', '2', '5'};
	struct nat_addr a;

	(void)state;
	/* Only len bytes count, whatever follows them. */
	assert_int_equal(nat_addr_parse(buf4, 9, &a), 0);
	assert_v4(&a, "192.0.2.1");
	assert_int_equal(nat_addr_parse(buf4, sizeof(buf4), &a), -1);
	assert_int_equal(nat_addr_parse(buf6, 5, &a), 0);
	assert_v6(&a, "::1");
	assert_int_equal(nat_addr_parse(buf6 + 1, 3, &a), 0);
	assert_v6(&a, "::1");
}

static void
test_parse_invalid(void **state)
{
	static const char *bad[] = {
	    "",
	    "[",
	    "]",
	    "[]",
	    "[[::1]]",
	    "[::1",
	    "::1]",
	    "[192.0.2.1]",
	    "192.0.2.1:25",
	    "[2001:db8::1]:25",
	    "2001:db8::1%eth0",
	    "fe80::1%1",
	    "[fe80::1%eth0]",
	    " 192.0.2.1",
	    "192.0.2.1 ",
	    "192.0.2.1\n",
	    "192.0.2.1\r\n",
	    "2001:db8:: 1",
	    "\t::1",
	    "192.0.2",
	    "192.0.2.256",
	    "192.0.2.1.5",
	    "192.0.2.01",
	    "0x7f.0.0.1",
	    "127.1",
	    "1.2.3.4/24",
	    "2001:db8::/32",
	    "2001:db8:::1",
	    "1:2:3:4:5:6:7:8:9",
	    "1:2:3:4:5:6:7",
	    "g::1",
	    "00000::1",
	    "::ffff:192.0.2.256",
	    "-1.0.0.0",
	    "+::1",
	    "localhost",
	    "IPv6:2001:db8::1",
	    "0000:0000:0000:0000:0000:0000:0000:0000:0",
	    "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.2555",
	};
	struct nat_addr a, before;
	size_t i;

	(void)state;
	memset(&a, 0x5a, sizeof(a));
	before = a;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse(bad[i], &a) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
		/* Nothing written on failure. */
		assert_memory_equal(&a, &before, sizeof(a));
	}
	assert_int_equal(nat_addr_parse(NULL, 0, &a), -1);
	assert_int_equal(nat_addr_parse("192.0.2.1", 0, &a), -1);
}

static void
test_parse_embedded_nul(void **state)
{
	static const char v4nul[] = "192.0.2.1\0";
	static const char v6nul[] = "::1\0:2";
	static const char v4mid[] = "192.0\0.2.1";
	struct nat_addr a;

	(void)state;
	assert_int_equal(nat_addr_parse(v4nul, sizeof(v4nul) - 1, &a), -1);
	assert_int_equal(nat_addr_parse(v6nul, sizeof(v6nul) - 1, &a), -1);
	assert_int_equal(nat_addr_parse(v4mid, sizeof(v4mid) - 1, &a), -1);
}

static void
test_parse_overlong(void **state)
{
	char buf[512];
	struct nat_addr a;

	(void)state;
	memset(buf, '0', sizeof(buf));
	buf[0] = ':';
	buf[1] = ':';
	assert_int_equal(nat_addr_parse(buf, sizeof(buf), &a), -1);
	assert_int_equal(nat_addr_parse(buf, 46, &a), -1);
	/* "::" then 43 zeros: too many digits in the group, whatever
	 * the length. */
	assert_int_equal(nat_addr_parse(buf, 45, &a), -1);
	/* "::0000" is a fine address */
	assert_int_equal(nat_addr_parse(buf, 6, &a), 0);
	assert_v6(&a, "::");
}

/* Parses a C string with nat_addr_parse_port, default port 25. */
static int
parse_port(const char *s, struct nat_addr *a, unsigned *port)
{
	return nat_addr_parse_port(s, strlen(s), 25, a, port);
}

static void
test_parse_port_ok(void **state)
{
	struct nat_addr a;
	unsigned port;

	(void)state;
	assert_int_equal(parse_port("192.0.2.1:587", &a, &port), 0);
	assert_v4(&a, "192.0.2.1");
	assert_int_equal(port, 587);
	assert_int_equal(parse_port("[2001:db8::1]:587", &a, &port), 0);
	assert_v6(&a, "2001:db8::1");
	assert_int_equal(port, 587);
	assert_int_equal(parse_port("192.0.2.1:1", &a, &port), 0);
	assert_int_equal(port, 1);
	assert_int_equal(parse_port("192.0.2.1:65535", &a, &port), 0);
	assert_int_equal(port, 65535);
	assert_int_equal(parse_port("192.0.2.1:00465", &a, &port), 0);
	assert_int_equal(port, 465);
	assert_int_equal(
	    parse_port("[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535",
	        &a, &port),
	    0);
	assert_v6(&a, "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255");
	assert_int_equal(port, 65535);
}

static void
test_parse_port_default(void **state)
{
	struct nat_addr a;
	unsigned port;

	(void)state;
	port = 0;
	assert_int_equal(parse_port("192.0.2.1", &a, &port), 0);
	assert_v4(&a, "192.0.2.1");
	assert_int_equal(port, 25);
	port = 0;
	assert_int_equal(parse_port("2001:db8::1", &a, &port), 0);
	assert_v6(&a, "2001:db8::1");
	assert_int_equal(port, 25);
	port = 0;
	assert_int_equal(parse_port("[2001:db8::1]", &a, &port), 0);
	assert_v6(&a, "2001:db8::1");
	assert_int_equal(port, 25);
	port = 0;
	assert_int_equal(parse_port("::", &a, &port), 0);
	assert_v6(&a, "::");
	assert_int_equal(port, 25);
	/* A bare IPv6 address never carries a port: the last group is
	 * part of the address.  Brackets are how to give one. */
	port = 0;
	assert_int_equal(parse_port("2001:db8::1:25", &a, &port), 0);
	assert_v6(&a, "2001:db8::1:25");
	assert_int_equal(port, 25);
}

static void
test_parse_port_default_range(void **state)
{
	struct nat_addr a;
	unsigned port;

	(void)state;
	assert_int_equal(nat_addr_parse_port("192.0.2.1", 9, 0, &a, &port), -1);
	assert_int_equal(nat_addr_parse_port("::1", 3, 65536, &a, &port), -1);
	/* The default is not needed when a port is given. */
	assert_int_equal(
	    nat_addr_parse_port("192.0.2.1:2525", 14, 0, &a, &port), 0);
	assert_int_equal(port, 2525);
	assert_int_equal(nat_addr_parse_port("::1", 3, 65535, &a, &port), 0);
	assert_int_equal(port, 65535);
}

static void
test_parse_port_invalid(void **state)
{
	static const char *bad[] = {
	    "",
	    ":",
	    ":25",
	    "[]:25",
	    "192.0.2.1:",
	    "192.0.2.1:0",
	    "192.0.2.1:00000",
	    "192.0.2.1:65536",
	    "192.0.2.1:99999",
	    "192.0.2.1:000025",
	    "192.0.2.1:4294967321",
	    "192.0.2.1:18446744073709551641",
	    "192.0.2.1:+25",
	    "192.0.2.1:-25",
	    "192.0.2.1: 25",
	    "192.0.2.1 :25",
	    "192.0.2.1:25 ",
	    "192.0.2.1:25\r\n",
	    "192.0.2.1:0x19",
	    "192.0.2.1:25a",
	    "192.0.2.1:25:26",
	    "192.0.2:25",
	    "[2001:db8::1]:",
	    "[2001:db8::1]25",
	    "[2001:db8::1]:25:",
	    "[2001:db8::1]:0",
	    "[2001:db8::1]]:25",
	    "[2001:db8::1",
	    "[2001:db8::1:25",
	    "2001:db8::1]:25",
	    "[192.0.2.1]:25",
	    "[192.0.2.1]",
	    "[fe80::1%eth0]:25",
	    "fe80::1%eth0",
	    "2001:db8::1 ",
	    "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:065535",
	};
	struct nat_addr a, before;
	unsigned port;
	size_t i;

	(void)state;
	memset(&a, 0x5a, sizeof(a));
	before = a;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		port = 4242;
		if (parse_port(bad[i], &a, &port) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_memory_equal(&a, &before, sizeof(a));
		assert_int_equal(port, 4242);
	}
}

static void
test_parse_port_not_nul_terminated(void **state)
{
	static const char buf[] = {
	    '1', '9', '2', '.', '0', '.', '2', '.', '1', ':', '2', '5', '9'};
	static const char nul[] = "192.0.2.1:25\0";
	struct nat_addr a;
	unsigned port;

	(void)state;
	assert_int_equal(nat_addr_parse_port(buf, 12, 587, &a, &port), 0);
	assert_v4(&a, "192.0.2.1");
	assert_int_equal(port, 25);
	assert_int_equal(nat_addr_parse_port(buf, 13, 587, &a, &port), 0);
	assert_int_equal(port, 259);
	assert_int_equal(nat_addr_parse_port(buf, 9, 587, &a, &port), 0);
	assert_int_equal(port, 587);
	assert_int_equal(
	    nat_addr_parse_port(nul, sizeof(nul) - 1, 587, &a, &port), -1);
}

static void
fmt_is(const char *in, const char *want)
{
	struct nat_addr a;
	char buf[INET6_ADDRSTRLEN];

	assert_int_equal(parse(in, &a), 0);
	assert_int_equal(nat_addr_fmt(&a, buf, sizeof(buf)), strlen(want));
	assert_string_equal(buf, want);
}

static void
test_fmt_canonical(void **state)
{
	(void)state;
	fmt_is("192.0.2.1", "192.0.2.1");
	fmt_is("255.255.255.255", "255.255.255.255");
	/* RFC 5952 §4: lower case, no leading zeros, "::" for the first
	 * longest run of two zero groups or more, never for one. */
	fmt_is("2001:DB8:0:0:0:0:0:1", "2001:db8::1");
	fmt_is("2001:0db8::0001", "2001:db8::1");
	fmt_is("[2001:db8::1]", "2001:db8::1");
	fmt_is("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1");
	fmt_is("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1");
	fmt_is("2001:0:0:1:0:0:0:1", "2001:0:0:1::1");
	fmt_is("2001:db8:122:344:c0:2:2100::", "2001:db8:122:344:c0:2:2100:0");
	fmt_is("::", "::");
	fmt_is("::1", "::1");
	/* RFC 5952 §5: mixed notation for IPv4-mapped addresses */
	fmt_is("::ffff:c000:201", "::ffff:192.0.2.1");
}

static void
test_fmt_small_buffer(void **state)
{
	struct nat_addr a;
	char buf[64];

	(void)state;
	assert_int_equal(parse("192.0.2.1", &a), 0);
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(nat_addr_fmt(&a, buf, 9), -1);
	assert_int_equal(buf[0], '\0');
	assert_int_equal(nat_addr_fmt(&a, buf, 10), 9);
	assert_string_equal(buf, "192.0.2.1");
	assert_int_equal(nat_addr_fmt(&a, buf, 0), -1);
	assert_int_equal(nat_addr_fmt(&a, NULL, 10), -1);
	assert_int_equal(nat_addr_fmt(&a, buf, sizeof(buf)), 9);

	assert_int_equal(
	    parse("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", &a), 0);
	assert_int_equal(nat_addr_fmt(&a, buf, sizeof(buf)), 39);
	assert_int_equal(nat_addr_fmt(&a, buf, 39), -1);
	assert_int_equal(nat_addr_fmt(&a, buf, 40), 39);
	assert_int_equal(parse("::ffff:255.255.255.255", &a), 0);
	assert_int_equal(nat_addr_fmt(&a, buf, INET6_ADDRSTRLEN), 22);
}

static void
test_fmt_bad_family(void **state)
{
	struct nat_addr a;
	char buf[INET6_ADDRSTRLEN];

	(void)state;
	memset(&a, 0, sizeof(a));
	a.family = AF_UNIX;
	assert_int_equal(nat_addr_fmt(&a, buf, sizeof(buf)), -1);
	a.family = 0;
	assert_int_equal(nat_addr_fmt(&a, buf, sizeof(buf)), -1);
}

static void
test_eq(void **state)
{
	struct nat_addr a, b;

	(void)state;
	assert_int_equal(parse("192.0.2.1", &a), 0);
	assert_int_equal(parse("192.0.2.1", &b), 0);
	assert_true(nat_addr_eq(&a, &b));
	assert_int_equal(parse("192.0.2.2", &b), 0);
	assert_false(nat_addr_eq(&a, &b));
	/* An IPv4-mapped IPv6 address is not the IPv4 address. */
	assert_int_equal(parse("::ffff:192.0.2.1", &b), 0);
	assert_false(nat_addr_eq(&a, &b));
	assert_false(nat_addr_eq(&b, &a));
	assert_int_equal(parse("2001:db8::1", &a), 0);
	assert_int_equal(parse("[2001:0DB8:0:0::1]", &b), 0);
	assert_true(nat_addr_eq(&a, &b));
	assert_int_equal(parse("2001:db8::2", &b), 0);
	assert_false(nat_addr_eq(&a, &b));
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	a.family = b.family = AF_UNIX;
	assert_false(nat_addr_eq(&a, &b));
}

static void
test_roundtrip(void **state)
{
	static const char *in[] = {"192.0.2.1", "0.0.0.0", "2001:db8::1",
	    "::", "::1", "::ffff:192.0.2.1", "::192.0.2.1", "64:ff9b::c000:221",
	    "1:2:3:4:5:6:7:8", "1::", "fe80::a:b:c:d",
	    "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"};
	struct nat_addr a, b;
	char buf[INET6_ADDRSTRLEN];
	size_t i;
	int n;

	(void)state;
	for (i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		assert_int_equal(parse(in[i], &a), 0);
		n = nat_addr_fmt(&a, buf, sizeof(buf));
		assert_true(n > 0);
		assert_int_equal(nat_addr_parse(buf, (size_t)n, &b), 0);
		assert_true(nat_addr_eq(&a, &b));
	}
}

/* A sockaddr for bind(2)/connect(2): family, address, port in network
 * order, the length of the family's structure. */
static void
test_sockaddr(void **state)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	struct nat_addr a;

	(void)state;
	assert_int_equal(nat_addr_parse("192.0.2.30", 10, &a), 0);
	assert_int_equal(nat_addr_sockaddr(&a, 25, &ss), sizeof(*s4));
	assert_int_equal(s4->sin_family, AF_INET);
	assert_int_equal(ntohs(s4->sin_port), 25);
	assert_memory_equal(&s4->sin_addr, &a.u.v4, 4);
	assert_int_equal(nat_addr_parse("2001:db8::25", 12, &a), 0);
	assert_int_equal(nat_addr_sockaddr(&a, 65535, &ss), sizeof(*s6));
	assert_int_equal(s6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(s6->sin6_port), 65535);
	assert_memory_equal(&s6->sin6_addr, &a.u.v6, 16);
	assert_int_equal(s6->sin6_scope_id, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_v4),
	    cmocka_unit_test(test_parse_v6),
	    cmocka_unit_test(test_parse_bracketed),
	    cmocka_unit_test(test_parse_not_nul_terminated),
	    cmocka_unit_test(test_parse_invalid),
	    cmocka_unit_test(test_parse_embedded_nul),
	    cmocka_unit_test(test_parse_overlong),
	    cmocka_unit_test(test_parse_port_ok),
	    cmocka_unit_test(test_parse_port_default),
	    cmocka_unit_test(test_parse_port_default_range),
	    cmocka_unit_test(test_parse_port_invalid),
	    cmocka_unit_test(test_parse_port_not_nul_terminated),
	    cmocka_unit_test(test_fmt_canonical),
	    cmocka_unit_test(test_fmt_small_buffer),
	    cmocka_unit_test(test_fmt_bad_family),
	    cmocka_unit_test(test_eq),
	    cmocka_unit_test(test_roundtrip),
	    cmocka_unit_test(test_sockaddr),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
