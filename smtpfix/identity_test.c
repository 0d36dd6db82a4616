/*
 * smtpfix/identity_test.c: unit tests of smtpfix/identity.c.  XCLIENT
 * lines follow Postfix's XCLIENT_README grammar with RFC 3461 §4 xtext;
 * PROXY headers are written out from HAProxy's proxy-protocol.txt
 * (section 2.1 for the text form, 2.2 for the binary one) as hex rows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "smtpfix/identity.h"

static struct nat_addr
A(const char *s) {
	struct nat_addr a;

	assert_int_equal(nat_addr_parse(s, strlen(s), &a), 0);
	return a;
}

static void
ident(struct smtpfix_identity *id, const char *c, unsigned cp, const char *d,
    unsigned dp)
{
	memset(id, 0, sizeof(*id));
	id->client = A(c);
	id->client_port = cp;
	id->dest = A(d);
	id->dest_port = dp;
}

#define LINE(s) (s), (sizeof(s) - 1)

static void
test_offer(void **state)
{
	(void)state;
	assert_int_equal(
	    smtpfix_xclient_offer(LINE("250-XCLIENT NAME ADDR PROTO HELO\r\n")),
	    SMTPFIX_XC_NAME | SMTPFIX_XC_ADDR | SMTPFIX_XC_PROTO |
	        SMTPFIX_XC_HELO);
	assert_int_equal(
	    smtpfix_xclient_offer(
	        LINE("250 xclient addr port destaddr destport login\r\n")),
	    SMTPFIX_XC_ADDR | SMTPFIX_XC_PORT | SMTPFIX_XC_DESTADDR |
	        SMTPFIX_XC_DESTPORT);
	assert_int_equal(smtpfix_xclient_offer(LINE("250-XCLIENT\r\n")), 0);
	assert_int_equal(
	    smtpfix_xclient_offer(LINE("250-XCLIENTS ADDR\r\n")), -1);
	assert_int_equal(
	    smtpfix_xclient_offer(LINE("250-XFORWARD ADDR\r\n")), -1);
	assert_int_equal(
	    smtpfix_xclient_offer(LINE("550-XCLIENT ADDR\r\n")), -1);
	assert_int_equal(smtpfix_xclient_offer(LINE("250")), -1);
}

static void
test_xclient_build(void **state)
{
	struct smtpfix_identity id;
	char buf[512];
	size_t n;
	static const char want4[] =
	    "XCLIENT NAME=[UNAVAILABLE] ADDR=192.0.2.10 PORT=40000 "
	    "PROTO=ESMTP HELO=[IPv6:2001:db8::1] DESTADDR=192.0.2.30 "
	    "DESTPORT=25\r\n";
	static const char want6[] =
	    "XCLIENT ADDR=IPV6:2001:db8:1::10 HELO=a+2Bb+3Dc\r\n";

	(void)state;
	ident(&id, "192.0.2.10", 40000, "192.0.2.30", 25);
	id.helo = "[IPv6:2001:db8::1]";
	id.helo_len = strlen(id.helo);
	id.esmtp = 1;
	n = smtpfix_xclient_build(&id, 0x7f, buf, sizeof(buf));
	assert_int_equal(n, sizeof(want4) - 1);
	assert_memory_equal(buf, want4, n);
	/* Only offered attributes; "+" and "=" in xtext (RFC 3461 §4). */
	ident(&id, "2001:db8:1::10", 1, "2001:db8:1::25", 25);
	id.helo = "a+b=c";
	id.helo_len = 5;
	n = smtpfix_xclient_build(
	    &id, SMTPFIX_XC_ADDR | SMTPFIX_XC_HELO, buf, sizeof(buf));
	assert_int_equal(n, sizeof(want6) - 1);
	assert_memory_equal(buf, want6, n);
	/* Client bytes that are not printable never go on. */
	id.helo = "evil\r\nMAIL";
	id.helo_len = 10;
	n = smtpfix_xclient_build(&id, SMTPFIX_XC_HELO, buf, sizeof(buf));
	assert_memory_equal(buf, "XCLIENT HELO=[UNAVAILABLE]\r\n", n);
	id.helo = NULL;
	id.helo_len = 0;
	n = smtpfix_xclient_build(
	    &id, SMTPFIX_XC_HELO | SMTPFIX_XC_PROTO, buf, sizeof(buf));
	assert_memory_equal(
	    buf, "XCLIENT PROTO=SMTP HELO=[UNAVAILABLE]\r\n", n);
	/* Too small: nothing, never a cut line. */
	assert_int_equal(smtpfix_xclient_build(&id, 0x7f, buf, 20), 0);
}

static void
test_proxy_v1(void **state)
{
	struct smtpfix_identity id;
	char buf[108];
	size_t n;

	(void)state;
	ident(&id, "192.0.2.10", 40000, "192.0.2.30", 25);
	n = smtpfix_proxy_v1(&id, buf, sizeof(buf));
	assert_int_equal(n, 43);
	assert_memory_equal(
	    buf, "PROXY TCP4 192.0.2.10 192.0.2.30 40000 25\r\n", n);
	ident(&id, "2001:db8:1::10", 1025, "2001:db8:1::25", 25);
	n = smtpfix_proxy_v1(&id, buf, sizeof(buf));
	assert_memory_equal(
	    buf, "PROXY TCP6 2001:db8:1::10 2001:db8:1::25 1025 25\r\n", n);
	ident(&id, "192.0.2.10", 1, "2001:db8:1::25", 25);
	assert_int_equal(smtpfix_proxy_v1(&id, buf, sizeof(buf)), 0);
	ident(&id, "192.0.2.10", 1, "192.0.2.30", 25);
	assert_int_equal(smtpfix_proxy_v1(&id, buf, 10), 0);
}

/* Section 2.2: 12-byte signature, 0x21 (v2, PROXY), 0x11 (TCP over
 * IPv4) or 0x21 (TCP over IPv6), length, addresses, ports; big-endian. */
static void
test_proxy_v2(void **state)
{
	static const uint8_t want4[28] = {
	    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, /* signature */
	    0x55, 0x49, 0x54, 0x0a, 0x21, 0x11, 0x00, 0x0c, /* v2 TCP4 12 */
	    0xc0, 0x00, 0x02, 0x0a, 0xc0, 0x00, 0x02, 0x1e, /* .10 .30 */
	    0x9c, 0x40, 0x00, 0x19,                         /* 40000 25 */
	};
	static const uint8_t want6_head[16] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00,
	    0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x21, 0x00, 0x24};
	struct smtpfix_identity id;
	uint8_t buf[64];
	size_t n;

	(void)state;
	ident(&id, "192.0.2.10", 40000, "192.0.2.30", 25);
	n = smtpfix_proxy_v2(&id, buf, sizeof(buf));
	assert_int_equal(n, 28);
	assert_memory_equal(buf, want4, 28);
	ident(&id, "2001:db8:1::10", 1025, "2001:db8:1::25", 25);
	n = smtpfix_proxy_v2(&id, buf, sizeof(buf));
	assert_int_equal(n, 52);
	assert_memory_equal(buf, want6_head, 16);
	assert_memory_equal(buf + 16, &id.client.u.v6, 16);
	assert_memory_equal(buf + 32, &id.dest.u.v6, 16);
	assert_int_equal(buf[48] << 8 | buf[49], 1025);
	assert_int_equal(buf[50] << 8 | buf[51], 25);
	assert_int_equal(smtpfix_proxy_v2(&id, buf, 51), 0);
}

static void
test_mode_and_helo(void **state)
{
	static const char *const names[] = {
	    "none", "xclient", "proxy-v1", "proxy-v2"};
	enum smtpfix_identity_mode m;
	size_t i;
	char long_name[257];

	(void)state;
	for (i = 0; i < 4; i++) {
		assert_int_equal(smtpfix_identity_mode_parse(names[i], &m), 0);
		assert_int_equal(m, (int)i);
		assert_string_equal(smtpfix_identity_mode_name(m), names[i]);
	}
	assert_int_equal(smtpfix_identity_mode_parse("XCLIENT", &m), -1);
	assert_int_equal(smtpfix_identity_mode_parse("proxy", &m), -1);
	assert_int_equal(smtpfix_identity_mode_parse("", &m), -1);
	/* RFC 1035 §2.3.4: 255 octets at most; printable, no blanks. */
	assert_true(smtpfix_identity_helo_ok(LINE("client.example.net")));
	assert_true(smtpfix_identity_helo_ok(LINE("[IPv6:2001:db8::1]")));
	assert_false(smtpfix_identity_helo_ok(LINE("")));
	assert_false(smtpfix_identity_helo_ok(LINE("a b")));
	assert_false(smtpfix_identity_helo_ok(LINE("caf\xc3\xa9")));
	assert_false(smtpfix_identity_helo_ok(LINE("a\x7f")));
	memset(long_name, 'a', sizeof(long_name));
	assert_true(smtpfix_identity_helo_ok(long_name, 255));
	assert_false(smtpfix_identity_helo_ok(long_name, 256));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_offer),
	    cmocka_unit_test(test_xclient_build),
	    cmocka_unit_test(test_proxy_v1),
	    cmocka_unit_test(test_proxy_v2),
	    cmocka_unit_test(test_mode_and_helo),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
