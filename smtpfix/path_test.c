/*
 * smtpfix/path_test.c: unit tests of smtpfix/path.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "smtpfix/path.h"

#define OK SMTPFIX_PATH_OK
#define NOT_PATH SMTPFIX_PATH_NOT_PATH
#define SYNTAX SMTPFIX_PATH_SYNTAX
#define ROUTE SMTPFIX_PATH_SOURCE_ROUTE
#define SCOPED SMTPFIX_PATH_SCOPED_LITERAL
#define BADLIT SMTPFIX_PATH_BAD_LITERAL

/* span equals the C string want */
static void
span_is(const struct smtpfix_span *sp, const char *want)
{
	if (sp->len != strlen(want) ||
	    (sp->len > 0 && memcmp(sp->p, want, sp->len) != 0))
		fail_msg("span \"%.*s\", want \"%s\"", (int)sp->len,
		    sp->p == NULL ? "" : sp->p, want);
}

/* Checks a NUL-terminated line; returns its class. */
static enum smtpfix_path_class
check(const char *line, struct smtpfix_path *p)
{
	return smtpfix_path_check(line, strlen(line), p);
}

static void
want(const char *line, enum smtpfix_path_class c)
{
	struct smtpfix_path p;
	enum smtpfix_path_class got = check(line, &p);

	if (got != c)
		fail_msg("%s: got %s, want %s", line, smtpfix_path_reason(got),
		    smtpfix_path_reason(c));
}

/* Checks a path as both MAIL FROM:<path> and RCPT TO:<path>. */
static void
want_both(const char *path, enum smtpfix_path_class c)
{
	char line[512];
	size_t n = strlen(path);

	assert_true(n + 16 < sizeof(line));
	memcpy(line, "MAIL FROM:", 10);
	memcpy(line + 10, path, n);
	memcpy(line + 10 + n, "\r\n", 3);
	want(line, c);
	memcpy(line, "RCPT TO:", 8);
	memcpy(line + 8, path, n);
	memcpy(line + 8 + n, "\r\n", 3);
	want(line, c);
}

static void
test_ok_spans(void **state)
{
	static const char line[] =
	    "MAIL FROM:<user@example.org> SIZE=1000 BODY=8BITMIME\r\n";
	struct smtpfix_path p;

	(void)state;
	assert_int_equal(check(line, &p), OK);
	assert_int_equal(p.is_mail, 1);
	span_is(&p.path, "<user@example.org>");
	span_is(&p.mailbox, "user@example.org");
	span_is(&p.domain, "example.org");
	span_is(&p.params, "SIZE=1000 BODY=8BITMIME");
	span_is(&p.adl, "");
	span_is(&p.culprit, "");
	assert_int_equal(p.used, sizeof(line) - 1);
	assert_null(smtpfix_path_reply(OK, 1));

	assert_int_equal(
	    check("RCPT TO:<u@[192.0.2.1]> NOTIFY=NEVER\r\n", &p), OK);
	assert_int_equal(p.is_mail, 0);
	span_is(&p.domain, "[192.0.2.1]");
	span_is(&p.params, "NOTIFY=NEVER");
}

/* RFC 5321 §4.1.1.2 and §4.1.1.3: the null path and postmaster. */
static void
test_null_and_postmaster(void **state)
{
	struct smtpfix_path p;

	(void)state;
	assert_int_equal(check("MAIL FROM:<>\r\n", &p), OK);
	span_is(&p.path, "<>");
	span_is(&p.mailbox, "");
	span_is(&p.domain, "");
	assert_int_equal(check("MAIL FROM:<> SIZE=12 BODY=7BIT\r\n", &p), OK);
	span_is(&p.params, "SIZE=12 BODY=7BIT");
	want("RCPT TO:<>\r\n", SYNTAX);

	assert_int_equal(check("RCPT TO:<postmaster>\r\n", &p), OK);
	span_is(&p.mailbox, "postmaster");
	span_is(&p.domain, "");
	want("RCPT TO:<Postmaster>\r\n", OK);
	want("RCPT TO:<POSTMASTER> NOTIFY=NEVER\r\n", OK);
	want("RCPT TO:<Postmaster@example.org>\r\n", OK);
	want("MAIL FROM:<postmaster>\r\n", SYNTAX);
	want("RCPT TO:<\"postmaster\">\r\n", SYNTAX);
	want("RCPT TO:<@a.example:postmaster>\r\n", SYNTAX);
	want("RCPT TO:<user>\r\n", SYNTAX);
}

static void
test_verb_forms(void **state)
{
	(void)state;
	want("mail from:<a@example.org>\r\n", OK);
	want("Mail From:<a@example.org>\r\n", OK);
	want("rcpt to:<a@example.org>\r\n", OK);
	want("RcPt To:<a@example.org>\r\n", OK);
	/* blanks around the colon and before the verb, as servers take */
	want("MAIL FROM: <a@example.org>\r\n", OK);
	want("RCPT TO: <a@example.org>\r\n", OK);
	want("MAIL FROM :<a@example.org>\r\n", OK);
	want("MAIL\tFROM:\t<a@example.org>\r\n", OK);
	want("  MAIL  FROM:<a@example.org>\r\n", OK);
	want("MAIL FROM:<a@example.org> \r\n", OK);

	/* MAIL or RCPT, but broken */
	want("MAIL\r\n", SYNTAX);
	want("MAIL TO:<a@example.org>\r\n", SYNTAX);
	want("RCPT FROM:<a@example.org>\r\n", SYNTAX);
	want("MAIL FROM<a@example.org>\r\n", SYNTAX);
	want("MAIL FROMX:<a@example.org>\r\n", SYNTAX);
	want("RCPT TO:<a@example.org>", SYNTAX);
	want("RCPT TO:<a@example.org>\n", SYNTAX);
}

static void
test_not_path(void **state)
{
	struct smtpfix_path p;

	(void)state;
	want("EHLO mx.example.org\r\n", NOT_PATH);
	want("DATA\r\n", NOT_PATH);
	want("VRFY <user@[IPv6:fe80::1]>\r\n", NOT_PATH);
	want("MAILX FROM:<a@b>\r\n", NOT_PATH);
	want("MAIL:FROM:<a@b>\r\n", NOT_PATH);
	want("RCP TO:<a@b>\r\n", NOT_PATH);
	want("\r\n", NOT_PATH);
	want("", NOT_PATH);
	assert_int_equal(smtpfix_path_check(NULL, 0, &p), NOT_PATH);
	assert_int_equal(check("NOOP\r\n", &p), NOT_PATH);
	assert_int_equal(p.used, 0);
	assert_null(p.path.p);
	assert_null(smtpfix_path_reply(NOT_PATH, 0));
}

/* Missing angle brackets or otherwise broken paths: 501 5.5.4. */
static void
test_syntax(void **state)
{
	(void)state;
	want("MAIL FROM:user@example.org\r\n", SYNTAX);
	want("RCPT TO:user@example.org\r\n", SYNTAX);
	want("MAIL FROM:\r\n", SYNTAX);
	want("MAIL FROM:<user@example.org\r\n", SYNTAX);
	want("MAIL FROM:user@example.org>\r\n", SYNTAX);
	want_both("<user@example.org>SIZE=1", SYNTAX);
	want_both("<user@example.org>>", SYNTAX);
	want_both("<@example.org>", SYNTAX);
	want_both("<user@>", SYNTAX);
	want_both("<user@exa mple.org>", SYNTAX);
	want_both("<us er@example.org>", SYNTAX);
	want_both("<user@example.org[192.0.2.1]>", SYNTAX);
	want_both("<user@(comment)example.org>", SYNTAX);
	want_both("<user@@example.org>", SYNTAX);
	want_both("<<user@example.org>>", SYNTAX);
	want_both("<\"unterminated@example.org>", SYNTAX);
	want_both("<user@[192.0.2.1>", SYNTAX);
	want_both("<user@[IPv6:fe80::1>", SYNTAX);
	want_both("<user@[192.0.2.1] >", SYNTAX);
	want_both("<user@[IPv6: fe80::1]>", SYNTAX);
	want_both("<user@[a\\]b]>", SYNTAX);
	want_both("<@a.example:>", SYNTAX);
	want_both("<@a.example,b.example:u@c.example>", SYNTAX);
	want_both("<@a.example,:u@c.example>", SYNTAX);
	want_both("<@a.example;u@c.example>", SYNTAX);
	want_both("<u\001@example.org>", SYNTAX);
	want("MAIL FROM:<a@example.org>\r\r\n", SYNTAX);
	assert_string_equal(smtpfix_path_reply(SYNTAX, 1),
	    "501 5.5.4 Syntax error in path, expected <mailbox> "
	    "(RFC 5321 section 4.1.2)\r\n");
	assert_string_equal(
	    smtpfix_path_reply(SYNTAX, 0), smtpfix_path_reply(SYNTAX, 1));
}

/* RFC 5321 §4.1.2 A-d-l, RFC 3974 §7. */
static void
test_source_route(void **state)
{
	struct smtpfix_path p;

	(void)state;
	assert_int_equal(
	    check("RCPT TO:<@a.example,@b.example:user@c.example>\r\n", &p),
	    ROUTE);
	span_is(&p.adl, "@a.example,@b.example");
	span_is(&p.culprit, "@a.example,@b.example");
	span_is(&p.mailbox, "user@c.example");
	span_is(&p.domain, "c.example");
	span_is(&p.path, "<@a.example,@b.example:user@c.example>");
	want_both("<@a.example:user@c.example>", ROUTE);
	want_both("<@[192.0.2.1]:user@c.example>", ROUTE);
	want_both("<@a.example,@[IPv6:2001:db8::1]:user@c.example>", ROUTE);
	assert_string_equal(smtpfix_path_reply(ROUTE, 0),
	    "553 5.1.0 Source routes are not accepted "
	    "(RFC 3974 section 7)\r\n");
	assert_string_equal(smtpfix_path_reason(ROUTE), "source-route");
}

/* RFC 3974 §6: scoped IPv6 literals, zone ids, host/link IPv4. */
static void
test_scoped(void **state)
{
	struct smtpfix_path p;

	(void)state;
	assert_int_equal(
	    check("MAIL FROM:<user@[IPv6:fe80::1%eth0]>\r\n", &p), SCOPED);
	span_is(&p.culprit, "[IPv6:fe80::1%eth0]");
	span_is(&p.domain, "[IPv6:fe80::1%eth0]");
	want("RCPT TO:<user@[IPv6:fe80::1]>\r\n", SCOPED);
	want_both("<user@[IPv6:fec0::1]>", SCOPED);
	want_both("<user@[IPv6:FE80::abcd]>", SCOPED);
	want_both("<user@[ipv6:fe80::1]>", SCOPED);
	want_both("<user@[IPv6:febf::1]>", SCOPED);
	want_both("<user@[IPv6:::1]>", SCOPED);
	want_both("<user@[IPv6:::]>", SCOPED);
	want_both("<user@[IPv6:ff02::1]>", SCOPED);
	/* a zone makes even a global address scoped */
	want_both("<user@[IPv6:2001:db8::1%eth0]>", SCOPED);
	want_both("<user@[IPv6:fe80::1%25eth0]>", SCOPED);
	/* IPv4 of host or link scope, also inside IPv6 */
	want_both("<user@[127.0.0.1]>", SCOPED);
	want_both("<user@[127.255.255.254]>", SCOPED);
	want_both("<user@[169.254.1.1]>", SCOPED);
	want_both("<user@[0.0.0.0]>", SCOPED);
	want_both("<user@[0.1.2.3]>", SCOPED);
	want_both("<user@[255.255.255.255]>", SCOPED);
	want_both("<user@[127.000.000.001]>", SCOPED);
	want_both("<user@[IPv6:::ffff:127.0.0.1]>", SCOPED);
	want_both("<user@[IPv6:64:ff9b::169.254.0.1]>", SCOPED);
	/* in a source route too */
	assert_int_equal(
	    check("RCPT TO:<@[IPv6:fe80::2]:user@example.org>\r\n", &p),
	    SCOPED);
	span_is(&p.culprit, "[IPv6:fe80::2]");
	span_is(&p.adl, "@[IPv6:fe80::2]");

	assert_string_equal(smtpfix_path_reply(SCOPED, 1),
	    "553 5.1.8 Link- or host-scoped address literal not accepted "
	    "(RFC 3974 section 6)\r\n");
	assert_string_equal(smtpfix_path_reply(SCOPED, 0),
	    "553 5.1.2 Link- or host-scoped address literal not accepted "
	    "(RFC 3974 section 6)\r\n");
}

/* Literals that are fine: global scope, or merely non-global IPv4. */
static void
test_literal_ok(void **state)
{
	(void)state;
	/* RFC 3849: documentation, but of global scope */
	want_both("<user@[IPv6:2001:db8::1]>", OK);
	want_both("<user@[IPv6:2001:DB8:0:0:0:0:0:1]>", OK);
	want_both("<user@[IPv6:::ffff:192.0.2.1]>", OK);
	want_both("<user@[IPv6:fd00::1]>", OK);
	want_both("<user@[IPv6:ff0e::1]>", OK);
	want_both("<user@[192.0.2.1]>", OK);
	/* private and shared space is unambiguous within a site */
	want_both("<user@[10.1.2.3]>", OK);
	want_both("<user@[100.64.0.1]>", OK);
	want_both("<user@[192.168.1.1]>", OK);
	want_both("<user@[001.2.3.4]>", OK);
}

static void
test_bad_literal(void **state)
{
	struct smtpfix_path p;

	(void)state;
	want_both("<user@[]>", BADLIT);
	want_both("<user@[256.0.0.1]>", BADLIT);
	want_both("<user@[1.2.3]>", BADLIT);
	want_both("<user@[1.2.3.4.5]>", BADLIT);
	want_both("<user@[1.2.3.0004]>", BADLIT);
	want_both("<user@[1..2.3]>", BADLIT);
	want_both("<user@[1.2.3.4.]>", BADLIT);
	want_both("<user@[-1.2.3.4]>", BADLIT);
	want_both("<user@[example.org]>", BADLIT);
	want_both("<user@[IPv6:]>", BADLIT);
	want_both("<user@[IPv6:192.0.2.1]>", BADLIT);
	want_both("<user@[IPv6:fe80:::1]>", BADLIT);
	want_both("<user@[IPv6:2001:db8::g]>", BADLIT);
	want_both("<user@[IPv6:1:2:3:4:5:6:7:8:9]>", BADLIT);
	want_both("<user@[IPv6:fe80::1%]>", BADLIT);
	want_both("<user@[IPv6:%eth0]>", BADLIT);
	want_both("<user@[IPv6:fe80::1%eth0/1]>", BADLIT);
	want_both("<user@[IPv6:zz%eth0]>", BADLIT);
	want_both("<user@[IPv6:::1:25]x>", SYNTAX);
	/* only the "IPv6" tag is registered (RFC 5321 §4.1.3) */
	want_both("<user@[IPv7:fe80::1]>", BADLIT);
	want_both("<user@[fe80::1]>", BADLIT);
	want_both("<user@[2001:db8::1]>", BADLIT);
	want_both("<user@[127.0.0.1%lo]>", BADLIT);
	want_both("<user@[1.2.3.4>]>", BADLIT);
	/* a bad literal outranks a scoped one and a route */
	assert_int_equal(
	    check("RCPT TO:<@[IPv6:fe80::1]:user@[300.1.1.1]>\r\n", &p),
	    BADLIT);
	span_is(&p.culprit, "[300.1.1.1]");
	/* ... and a scoped one a route */
	want("RCPT TO:<@a.example:user@[127.0.0.1]>\r\n", SCOPED);

	assert_string_equal(smtpfix_path_reply(BADLIT, 1),
	    "553 5.1.7 Address literal is not an IPv4 or IPv6 address "
	    "(RFC 5321 section 4.1.3)\r\n");
	assert_string_equal(smtpfix_path_reply(BADLIT, 0),
	    "553 5.1.3 Address literal is not an IPv4 or IPv6 address "
	    "(RFC 5321 section 4.1.3)\r\n");
}

/* Quoted local parts: "@", ">" and "[" inside them end nothing. */
static void
test_quoted_local(void **state)
{
	struct smtpfix_path p;

	(void)state;
	assert_int_equal(
	    check("MAIL FROM:<\"a>b@c\"@example.org> SIZE=1\r\n", &p), OK);
	span_is(&p.mailbox, "\"a>b@c\"@example.org");
	span_is(&p.domain, "example.org");
	span_is(&p.params, "SIZE=1");
	assert_int_equal(
	    check("RCPT TO:<\"x@[IPv6:fe80::1]\"@example.org>\r\n", &p), OK);
	span_is(&p.domain, "example.org");
	assert_int_equal(
	    check("RCPT TO:<\"x@example.org>\"@[IPv6:fe80::1]>\r\n", &p),
	    SCOPED);
	span_is(&p.domain, "[IPv6:fe80::1]");
	want_both("<\"a\\\"b\"@example.org>", OK);
	want_both("<\"a\\\\\"@example.org>", OK);
	want_both("<\"a b\"@example.org>", OK);
	want_both("<\"\"@example.org>", OK);
	want_both("<\"a\\\"@example.org>", SYNTAX);
	want_both("<\"a\"b@example.org>", SYNTAX);
	want_both("<\"a\tb\"@example.org>", SYNTAX);
	/* Dot-string specials */
	want_both("<a.b+tag!#$%&'*/=?^_`{|}~-@example.org>", OK);
	want_both("<user%relay@example.org>", OK);
	want_both("<a,b@example.org>", SYNTAX);
	want_both("<a\\b@example.org>", SYNTAX);
}

/* RFC 6531 §3.3: UTF-8 in local part and domain passes. */
static void
test_utf8(void **state)
{
	(void)state;
	want_both("<\xc3\xa9l\xc3\xa8ve@\xc3\xa9"
	          "cole.example>",
	    OK);
	want_both("<\"\xe2\x82\xac\"@example.org>", OK);
	want("MAIL FROM:<j\xc3\xb6rg@example.org> SMTPUTF8\r\n", OK);
}

/* Long input: parsed to the end, never past it. */
static void
test_overlong(void **state)
{
	static char line[8192];
	struct smtpfix_path p;
	size_t n;

	(void)state;
	memcpy(line, "RCPT TO:<", 9);
	n = 9;
	memset(line + n, 'a', 6000);
	n += 6000;
	memcpy(line + n, "@[IPv6:fe80::1]>\r\n", 18);
	n += 18;
	assert_int_equal(smtpfix_path_check(line, n, &p), SCOPED);
	assert_int_equal(p.mailbox.len, 6000 + 15);
	assert_int_equal(p.used, n);
	/* the same, cut short at every length: never OK, never a read
	 * past len (run under ASan) */
	for (n = n - 1; n > 6000; n--)
		assert_int_not_equal(smtpfix_path_check(line, n, &p), OK);

	/* an overlong literal does not parse */
	memcpy(line, "RCPT TO:<u@[IPv6:", 17);
	n = 17;
	memset(line + n, '1', 200);
	n += 200;
	memcpy(line + n, "]>\r\n", 4);
	n += 4;
	assert_int_equal(smtpfix_path_check(line, n, &p), BADLIT);
	/* a long route */
	memcpy(line, "RCPT TO:<", 9);
	for (n = 9; n < 7000; n += 11)
		memcpy(line + n, "@a.example,", 11);
	memcpy(line + n - 1, ":u@example.org>\r\n", 17);
	n += 16;
	assert_int_equal(smtpfix_path_check(line, n, &p), ROUTE);
}

/* Not NUL terminated: the bytes after len are never looked at. */
static void
test_not_nul_terminated(void **state)
{
	static const char buf[] = "MAIL FROM:<a@example.org>\r\nRCPT TO:<>";
	struct smtpfix_path p;

	(void)state;
	assert_int_equal(smtpfix_path_check(buf, 27, &p), OK);
	assert_int_equal(p.used, 27);
	assert_int_equal(smtpfix_path_check(buf, 26, &p), SYNTAX);
}

static void
test_reason_names(void **state)
{
	(void)state;
	assert_string_equal(smtpfix_path_reason(OK), "ok");
	assert_string_equal(smtpfix_path_reason(NOT_PATH), "not-path");
	assert_string_equal(smtpfix_path_reason(SYNTAX), "syntax");
	assert_string_equal(smtpfix_path_reason(SCOPED), "scoped-literal");
	assert_string_equal(smtpfix_path_reason(BADLIT), "bad-literal");
	assert_string_equal(
	    smtpfix_path_reason((enum smtpfix_path_class)99), "unknown");
	assert_null(smtpfix_path_reply((enum smtpfix_path_class)99, 1));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ok_spans),
	    cmocka_unit_test(test_null_and_postmaster),
	    cmocka_unit_test(test_verb_forms),
	    cmocka_unit_test(test_not_path),
	    cmocka_unit_test(test_syntax),
	    cmocka_unit_test(test_source_route),
	    cmocka_unit_test(test_scoped),
	    cmocka_unit_test(test_literal_ok),
	    cmocka_unit_test(test_bad_literal),
	    cmocka_unit_test(test_quoted_local),
	    cmocka_unit_test(test_utf8),
	    cmocka_unit_test(test_overlong),
	    cmocka_unit_test(test_not_nul_terminated),
	    cmocka_unit_test(test_reason_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
