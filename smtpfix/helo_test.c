/*
 * smtpfix/helo_test.c: unit tests of smtpfix/helo.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "smtpfix/helo.h"

#define S(x) (x), (sizeof(x) - 1)
#define FQDN "gw.example.net"

static void
parse_ok(
    const char *line, size_t len, int ehlo, const char *verb, const char *arg)
{
	struct smtpfix_helo h;

	assert_int_equal(smtpfix_helo_parse(line, len, &h), SMTPFIX_OK);
	assert_int_equal(h.ehlo, ehlo);
	assert_int_equal(h.verb.len, strlen(verb));
	assert_memory_equal(h.verb.p, verb, h.verb.len);
	assert_int_equal(h.arg.len, strlen(arg));
	if (h.arg.len > 0)
		assert_memory_equal(h.arg.p, arg, h.arg.len);
	assert_int_equal(h.used, len);
}

static void
test_parse(void **state)
{
	(void)state;
	parse_ok(S("EHLO mx.example.org\r\n"), 1, "EHLO", "mx.example.org");
	parse_ok(S("HELO mx.example.org\r\n"), 0, "HELO", "mx.example.org");
	parse_ok(S("ehlo [192.0.2.1]\r\n"), 1, "ehlo", "[192.0.2.1]");
	parse_ok(S("Helo x\r\n"), 0, "Helo", "x");
	parse_ok(
	    S("eHlO [IPv6:2001:db8::1]\r\n"), 1, "eHlO", "[IPv6:2001:db8::1]");
	parse_ok(S("EHLO\r\n"), 1, "EHLO", "");
	parse_ok(S("EHLO \r\n"), 1, "EHLO", "");
	parse_ok(S("EHLO   a.b  \r\n"), 1, "EHLO", "a.b");
	parse_ok(S("EHLO a.b extra words\r\n"), 1, "EHLO", "a.b");
	parse_ok(S("EHLO\t[tag:x]\r\n"), 1, "EHLO", "[tag:x]");
	/* Servers skip leading blanks; so do we. */
	parse_ok(S("  EHLO a\r\n"), 1, "EHLO", "a");
}

static void
test_parse_other(void **state)
{
	struct smtpfix_helo h;

	(void)state;
	assert_int_equal(
	    smtpfix_helo_parse(S("MAIL FROM:<>\r\n"), &h), SMTPFIX_SYNTAX);
	assert_int_equal(
	    smtpfix_helo_parse(S("EHLOX a\r\n"), &h), SMTPFIX_SYNTAX);
	assert_int_equal(smtpfix_helo_parse(S("EHL\r\n"), &h), SMTPFIX_SYNTAX);
	assert_int_equal(
	    smtpfix_helo_parse(S("XHLO a\r\n"), &h), SMTPFIX_SYNTAX);
	assert_int_equal(smtpfix_helo_parse(S("\r\n"), &h), SMTPFIX_SYNTAX);
	/* Not a whole line. */
	assert_int_equal(smtpfix_helo_parse(S("EHLO a"), &h), SMTPFIX_SYNTAX);
	assert_int_equal(smtpfix_helo_parse(S(""), &h), SMTPFIX_SYNTAX);
}

static void
test_literal(void **state)
{
	(void)state;
	/* RFC 5321 §4.1.3 forms. */
	assert_true(smtpfix_helo_is_literal(S("[192.0.2.1]")));
	assert_true(smtpfix_helo_is_literal(S("[IPv6:2001:db8::1]")));
	assert_true(smtpfix_helo_is_literal(S("[tag:x]")));
	assert_true(smtpfix_helo_is_literal(S("[]")));
	assert_false(smtpfix_helo_is_literal(S("mx.example.org")));
	assert_false(smtpfix_helo_is_literal(S("[192.0.2.1")));
	assert_false(smtpfix_helo_is_literal(S("192.0.2.1]")));
	assert_false(smtpfix_helo_is_literal(S("[")));
	assert_false(smtpfix_helo_is_literal(S("")));
}

/* Rewrites line under mode; want is the new line or NULL for "relay
 * unchanged". */
static void
rewrite(
    const char *line, size_t len, enum smtpfix_helo_mode mode, const char *want)
{
	struct smtpfix_helo h;
	char dst[600];
	size_t n = 999;

	assert_int_equal(smtpfix_helo_parse(line, len, &h), SMTPFIX_OK);
	assert_int_equal(
	    smtpfix_helo_rewrite(&h, mode, S(FQDN), dst, sizeof(dst), &n),
	    SMTPFIX_OK);
	if (want == NULL) {
		assert_int_equal(n, 0);
		return;
	}
	assert_int_equal(n, strlen(want));
	assert_memory_equal(dst, want, n);
}

static void
test_rewrite_always(void **state)
{
	enum smtpfix_helo_mode m = SMTPFIX_HELO_ALWAYS;

	(void)state;
	rewrite(S("EHLO [192.0.2.1]\r\n"), m, "EHLO " FQDN "\r\n");
	rewrite(S("EHLO [IPv6:2001:db8::1]\r\n"), m, "EHLO " FQDN "\r\n");
	rewrite(S("HELO [tag:x]\r\n"), m, "HELO " FQDN "\r\n");
	rewrite(S("EHLO client.example.org\r\n"), m, "EHLO " FQDN "\r\n");
	rewrite(S("ehlo client.example.org junk\r\n"), m, "ehlo " FQDN "\r\n");
	rewrite(S("Helo x\r\n"), m, "Helo " FQDN "\r\n");
	rewrite(S("EHLO\r\n"), m, NULL);
	rewrite(S("EHLO \r\n"), m, NULL);
}

static void
test_rewrite_literals(void **state)
{
	enum smtpfix_helo_mode m = SMTPFIX_HELO_LITERALS;

	(void)state;
	rewrite(S("EHLO [192.0.2.1]\r\n"), m, "EHLO " FQDN "\r\n");
	rewrite(S("EHLO [IPv6:2001:db8::1]\r\n"), m, "EHLO " FQDN "\r\n");
	rewrite(S("ehlo [tag:x]\r\n"), m, "ehlo " FQDN "\r\n");
	rewrite(S("EHLO client.example.org\r\n"), m, NULL);
	rewrite(S("EHLO\r\n"), m, NULL);
}

static void
test_rewrite_off(void **state)
{
	enum smtpfix_helo_mode m = SMTPFIX_HELO_OFF;

	(void)state;
	rewrite(S("EHLO [192.0.2.1]\r\n"), m, NULL);
	rewrite(S("EHLO [IPv6:2001:db8::1]\r\n"), m, NULL);
	rewrite(S("EHLO [tag:x]\r\n"), m, NULL);
	rewrite(S("EHLO client.example.org\r\n"), m, NULL);
	rewrite(S("EHLO\r\n"), m, NULL);
}

static void
test_rewrite_cap(void **state)
{
	struct smtpfix_helo h;
	char dst[64];
	size_t n;

	(void)state;
	assert_int_equal(
	    smtpfix_helo_parse(S("EHLO [192.0.2.1]\r\n"), &h), SMTPFIX_OK);
	/* "EHLO " + 14 + CRLF = 21 bytes. */
	assert_int_equal(
	    smtpfix_helo_rewrite(&h, SMTPFIX_HELO_ALWAYS, S(FQDN), dst, 21, &n),
	    SMTPFIX_OK);
	assert_int_equal(n, 21);
	assert_int_equal(
	    smtpfix_helo_rewrite(&h, SMTPFIX_HELO_ALWAYS, S(FQDN), dst, 20, &n),
	    SMTPFIX_TOOLONG);
	assert_int_equal(n, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_parse_other),
	    cmocka_unit_test(test_literal),
	    cmocka_unit_test(test_rewrite_always),
	    cmocka_unit_test(test_rewrite_literals),
	    cmocka_unit_test(test_rewrite_off),
	    cmocka_unit_test(test_rewrite_cap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
