/*
 * smtpfix/front_test.c: unit tests of smtpfix/front.c, route mode's own
 * dialogue.  Each dialogue is a table of rows: the client's line as sent
 * and the start of the gateway's reply, with the RFC that sets it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "smtpfix/front.h"

#define FQDN "gw.example.net"

static const struct smtpfix_front_policy pol_full = {
    FQDN, sizeof(FQDN) - 1, 10485760, 1, 512, 1};
static const struct smtpfix_front_policy pol_bare = {
    FQDN, sizeof(FQDN) - 1, 0, 0, 512, 0};

static char mailbuf[512];

static int
contains(const char *p, size_t n, const char *w)
{
	size_t i, wl = strlen(w);

	for (i = 0; i + wl <= n; i++)
		if (memcmp(p + i, w, wl) == 0)
			return 1;
	return 0;
}

static void
start(struct smtpfix_front *f, const struct smtpfix_front_policy *p)
{
	smtpfix_front_init(f, p, mailbuf, sizeof(mailbuf));
}

/* Steps one line; returns the act and checks the whole line was consumed
 * (or nothing, for ROUTE) and the reply starts with want. */
static enum smtpfix_front_act
say(struct smtpfix_front *f, const char *line, const char *want)
{
	struct smtpfix_front_step o;
	size_t len = strlen(line);

	smtpfix_front_step(f, line, len, &o);
	if (o.act == SMTPFIX_FRONT_ROUTE) {
		assert_int_equal(o.consumed, 0);
		assert_null(want);
		return o.act;
	}
	assert_int_equal(o.consumed, len);
	assert_non_null(want);
	assert_true(o.emit_len >= strlen(want));
	assert_memory_equal(o.emit, want, strlen(want));
	return o.act;
}

struct row {
	const char *line;  /* CRLF included */
	const char *reply; /* start of the expected reply; NULL: ROUTE */
};

static void
dialogue(const struct smtpfix_front_policy *p, const struct row *r, size_t n)
{
	struct smtpfix_front f;
	size_t i;

	start(&f, p);
	for (i = 0; i < n; i++)
		say(&f, r[i].line, r[i].reply);
}
#define DIALOGUE(p, rows) dialogue((p), (rows), sizeof(rows) / sizeof(rows[0]))

static void
test_greeting(void **state)
{
	struct smtpfix_front f;
	char buf[128];
	size_t n;

	(void)state;
	start(&f, &pol_full);
	n = smtpfix_front_greeting(&f, buf, sizeof(buf));
	assert_int_equal(n, strlen("220 " FQDN " ESMTP smtp64\r\n"));
	assert_memory_equal(buf, "220 " FQDN " ESMTP smtp64\r\n", n);
	assert_int_equal(smtpfix_front_greeting(&f, buf, 10), 0);
}

/* RFC 5321 §4.1.1.1: the EHLO reply, greeting line first, "250 " last;
 * only what any server behind the gateway can keep (front.h). */
static void
test_ehlo_reply_allowlist(void **state)
{
	struct smtpfix_front f;
	struct smtpfix_front_step o;
	static const char full[] = "250-" FQDN "\r\n"
	                           "250-PIPELINING\r\n"
	                           "250-SIZE 10485760\r\n"
	                           "250 STARTTLS\r\n";
	static const char bare[] = "250-" FQDN "\r\n"
	                           "250 PIPELINING\r\n";

	(void)state;
	start(&f, &pol_full);
	smtpfix_front_step(&f, "EHLO client.example\r\n", 21, &o);
	assert_int_equal(o.act, SMTPFIX_FRONT_REPLY);
	assert_int_equal(o.emit_len, sizeof(full) - 1);
	assert_memory_equal(o.emit, full, sizeof(full) - 1);
	start(&f, &pol_bare);
	smtpfix_front_step(&f, "ehlo [192.0.2.1]\r\n", 18, &o);
	assert_int_equal(o.emit_len, sizeof(bare) - 1);
	assert_memory_equal(o.emit, bare, sizeof(bare) - 1);
	assert_int_equal(smtpfix_front_esmtp(&f), 1);
	say(&f, "HELO client.example\r\n", "250 " FQDN "\r\n");
	assert_int_equal(smtpfix_front_esmtp(&f), 0);
}

/* RFC 5321 §4.1.4 and §3.3: the order of commands. */
static void
test_sequence(void **state)
{
	static const struct row rows[] = {
	    {"MAIL FROM:<a@example.org>\r\n", "503 5.5.1"}, /* no EHLO */
	    {"RCPT TO:<b@a.example>\r\n", "503 5.5.1"},
	    {"DATA\r\n", "503 5.5.1 Send MAIL"},
	    {"EHLO c.example\r\n", "250-" FQDN},
	    {"RCPT TO:<b@a.example>\r\n", "503 5.5.1 Send MAIL"},
	    {"MAIL FROM:<a@example.org>\r\n", "250 2.1.0"},
	    {"MAIL FROM:<a@example.org>\r\n", "503 5.5.1 Nested"},
	    {"DATA\r\n", "503 5.5.1 Send RCPT"},
	    {"NOOP\r\n", "250 2.0.0"},
	    {"RSET\r\n", "250 2.0.0"},
	    {"RCPT TO:<b@a.example>\r\n", "503 5.5.1 Send MAIL"},
	    {"HELO c.example\r\n", "250 " FQDN},
	    {"MAIL FROM:<>\r\n", "250 2.1.0"},
	    {"EHLO c.example\r\n", "250-"}, /* resets the transaction */
	    {"RCPT TO:<b@a.example>\r\n", "503 5.5.1 Send MAIL"},
	    {"VRFY postmaster\r\n", "252 2.5.0"},
	    {"HELP\r\n", "214 2.0.0"},
	    {"QUIT\r\n", "221 2.0.0"},
	};

	(void)state;
	DIALOGUE(&pol_full, rows);
}

/* RFC 1870 §3 (SIZE), RFC 5321 §4.1.1.11 (555 for parameters not
 * offered), §4.1.2 path syntax. */
static void
test_mail_parameters(void **state)
{
	static const struct row rows[] = {
	    {"EHLO c.example\r\n", "250-"},
	    {"MAIL FROM:<a@example.org> SIZE=10485761\r\n", "552 5.3.4"},
	    {"MAIL FROM:<a@example.org> SIZE=99999999999999999999999\r\n",
	        "555 5.5.4"},
	    {"MAIL FROM:<a@example.org> SIZE=12x\r\n", "501 5.5.4"},
	    {"MAIL FROM:<a@example.org> BODY=8BITMIME\r\n", "555 5.5.4"},
	    {"MAIL FROM:<a@example.org> SMTPUTF8\r\n", "555 5.5.4"},
	    {"MAIL FROM:<a@example.org> SIZE=1 SIZE=2\r\n", "555 5.5.4"},
	    {"MAIL FROM:a@example.org\r\n", "501 5.5.4"},
	    {"MAIL FROM:<a@example.org>  SIZE=10485760 \r\n", "250 2.1.0"},
	};
	static const struct row helo_only[] = {
	    {"HELO c.example\r\n", "250 "},
	    {"MAIL FROM:<a@example.org> SIZE=10\r\n", "555 5.5.4"},
	    {"MAIL FROM:<a@example.org>\r\n", "250 2.1.0"},
	};
	static const struct row no_size[] = {
	    {"EHLO c.example\r\n", "250-"},
	    {"MAIL FROM:<a@example.org> SIZE=10\r\n", "555 5.5.4"},
	};
	struct smtpfix_front f;
	const char *m;
	size_t n;

	(void)state;
	DIALOGUE(&pol_full, rows);
	DIALOGUE(&pol_full, helo_only);
	DIALOGUE(&pol_bare, no_size);
	start(&f, &pol_full);
	say(&f, "EHLO c\r\n", "250-");
	assert_null(smtpfix_front_mail(&f, &n));
	say(&f, "MAIL FROM:<a@example.org> SIZE=5\r\n", "250 2.1.0");
	m = smtpfix_front_mail(&f, &n);
	assert_int_equal(n, 34);
	assert_memory_equal(m, "MAIL FROM:<a@example.org> SIZE=5\r\n", n);
	smtpfix_front_reset(&f);
	assert_null(smtpfix_front_mail(&f, &n));
}

/* The first RCPT with a domain asks for a route and consumes nothing;
 * no domain (postmaster), a literal, or a parameter is refused here. */
static void
test_rcpt_route(void **state)
{
	struct smtpfix_front f;
	struct smtpfix_front_step o;
	static const char rcpt[] = "RCPT TO:<Bob@A.Example>\r\n";

	(void)state;
	start(&f, &pol_full);
	say(&f, "EHLO c.example\r\n", "250-");
	say(&f, "MAIL FROM:<a@example.org>\r\n", "250 2.1.0");
	say(&f, "RCPT TO:<postmaster>\r\n", "550 5.7.1");
	say(&f, "RCPT TO:<x@[192.0.2.1]>\r\n", "550 5.7.1");
	say(&f, "RCPT TO:<x@a.example> NOTIFY=NEVER\r\n", "555 5.5.4");
	say(&f, "RCPT TO:<x@[IPv6:fe80::1]>\r\n", "553 5.1.2");
	smtpfix_front_step(&f, rcpt, sizeof(rcpt) - 1, &o);
	assert_int_equal(o.act, SMTPFIX_FRONT_ROUTE);
	assert_int_equal(o.consumed, 0);
	assert_int_equal(o.domain.len, 9);
	assert_memory_equal(o.domain.p, "A.Example", 9);
	assert_int_equal(o.mailbox.len, 13);
	/* Asked again (the resolver is slow), the same answer. */
	smtpfix_front_step(&f, rcpt, sizeof(rcpt) - 1, &o);
	assert_int_equal(o.act, SMTPFIX_FRONT_ROUTE);
}

/* RFC 3974 §7: source routes refused with hygiene on, passed without. */
static void
test_hygiene(void **state)
{
	static const struct row on[] = {
	    {"EHLO c\r\n", "250-"},
	    {"MAIL FROM:<@r.example:a@example.org>\r\n", "553 5.1.0"},
	};
	static const struct row off[] = {
	    {"EHLO c\r\n", "250-"},
	    {"MAIL FROM:<@r.example:a@example.org>\r\n", "250 2.1.0"},
	    {"RCPT TO:<@r.example:b@a.example>\r\n", NULL},
	};

	(void)state;
	DIALOGUE(&pol_full, on);
	DIALOGUE(&pol_bare, off);
}

/* RFC 5321 §2.3.8 and §4.5.3.1.4: bad lines; verbs never offered. */
static void
test_bad_input(void **state)
{
	struct smtpfix_front f;
	struct smtpfix_front_step o;
	char big[600];
	static const struct row rows[] = {
	    {"EHLO c\r\n", "250-"},
	    {"NOOP\n\r\n", "500 5.5.2"},
	    {"MA\0L FROM:<a@b>\r\n", NULL}, /* replaced below */
	    {"FOO\r\n", "500 5.5.1"},
	    {"XCLIENT ADDR=192.0.2.99\r\n", "502 5.5.1"},
	    {"XFORWARD NAME=spoof\r\n", "502 5.5.1"},
	    {"AUTH PLAIN AAAA\r\n", "502 5.5.1"},
	    {"EXPN list\r\n", "502 5.5.1"},
	    {"EHLO\r\n", "501 5.5.4"},
	};

	(void)state;
	start(&f, &pol_full);
	say(&f, rows[0].line, rows[0].reply);
	say(&f, rows[1].line, rows[1].reply);
	smtpfix_front_step(&f, "MA\0L FROM:<a@b>\r\n", 17, &o);
	assert_int_equal(o.consumed, 17);
	assert_memory_equal(o.emit, "500 5.5.2", 9);
	for (size_t i = 3; i < sizeof(rows) / sizeof(rows[0]); i++)
		say(&f, rows[i].line, rows[i].reply);
	/* A partial line waits. */
	smtpfix_front_step(&f, "NOO", 3, &o);
	assert_int_equal(o.act, SMTPFIX_FRONT_NONE);
	assert_int_equal(o.consumed, 0);
	/* Over the cap: closed, never resynchronised. */
	memset(big, 'A', sizeof(big));
	smtpfix_front_step(&f, big, sizeof(big), &o);
	assert_int_equal(o.act, SMTPFIX_FRONT_CLOSE);
	assert_memory_equal(o.emit, "500 5.5.2", 9);
	smtpfix_front_step(&f, "NOOP\r\n", 6, &o);
	assert_int_equal(o.act, SMTPFIX_FRONT_NONE);
}

/* RFC 3207: STARTTLS offered with a certificate, answered 220, and the
 * session starts again from the greeting's state (§4.2). */
static void
test_starttls(void **state)
{
	struct smtpfix_front f;
	struct smtpfix_front_step o;
	static const struct row none[] = {
	    {"EHLO c\r\n", "250-"},
	    {"STARTTLS\r\n", "502 5.5.1"},
	};

	(void)state;
	DIALOGUE(&pol_bare, none);
	start(&f, &pol_full);
	say(&f, "EHLO c\r\n", "250-");
	say(&f, "MAIL FROM:<a@example.org>\r\n", "250 2.1.0");
	say(&f, "STARTTLS now\r\n", "501 5.5.4");
	assert_int_equal(
	    say(&f, "STARTTLS\r\n", "220 2.0.0"), SMTPFIX_FRONT_TLS);
	smtpfix_front_tls_done(&f, 1);
	say(&f, "MAIL FROM:<a@example.org>\r\n", "503 5.5.1 Send EHLO");
	smtpfix_front_step(&f, "EHLO c\r\n", 8, &o);
	assert_false(contains(o.emit, o.emit_len, "STARTTLS"));
	say(&f, "STARTTLS\r\n", "503 5.5.1");
	/* A failed handshake ends the session. */
	start(&f, &pol_full);
	say(&f, "STARTTLS\r\n", "220 2.0.0");
	smtpfix_front_tls_done(&f, 0);
	smtpfix_front_step(&f, "EHLO c\r\n", 8, &o);
	assert_int_equal(o.act, SMTPFIX_FRONT_NONE);
}

/* RFC 2920: a pipelined group is answered line by line, in order, up to
 * the RCPT that needs a route. */
static void
test_pipelined_group(void **state)
{
	static const char in[] = "EHLO c.example\r\n"
	                         "MAIL FROM:<a@example.org>\r\n"
	                         "RCPT TO:<b@a.example>\r\n"
	                         "RCPT TO:<c@b.example>\r\n"
	                         "DATA\r\n";
	struct smtpfix_front f;
	struct smtpfix_front_step o;
	size_t off = 0;

	(void)state;
	start(&f, &pol_full);
	smtpfix_front_step(&f, in + off, sizeof(in) - 1 - off, &o);
	assert_memory_equal(o.emit, "250-", 4);
	off += o.consumed;
	smtpfix_front_step(&f, in + off, sizeof(in) - 1 - off, &o);
	assert_memory_equal(o.emit, "250 2.1.0", 9);
	off += o.consumed;
	smtpfix_front_step(&f, in + off, sizeof(in) - 1 - off, &o);
	assert_int_equal(o.act, SMTPFIX_FRONT_ROUTE);
	assert_int_equal(off, 16 + 27);
}

/* RFC 3030 §2: BDAT without CHUNKING ends the session (its chunk would
 * be read as commands); QUIT ends it cleanly. */
static void
test_bdat_and_quit(void **state)
{
	struct smtpfix_front f;

	(void)state;
	start(&f, &pol_full);
	say(&f, "EHLO c\r\n", "250-");
	assert_int_equal(
	    say(&f, "BDAT 10 LAST\r\n", "503 5.5.1"), SMTPFIX_FRONT_CLOSE);
	start(&f, &pol_full);
	assert_int_equal(say(&f, "QUIT\r\n", "221 2.0.0"), SMTPFIX_FRONT_CLOSE);
}

/* XCLIENT's HELO attribute: the client's own argument, kept when it is a
 * plain word, forgotten after the TLS handshake (RFC 3207 §4.2). */
static void
test_helo_kept(void **state)
{
	struct smtpfix_front f;
	const char *h;
	size_t n;

	(void)state;
	start(&f, &pol_full);
	assert_null(smtpfix_front_helo(&f, &n));
	assert_int_equal(n, 0);
	say(&f, "EHLO client.example\r\n", "250-");
	h = smtpfix_front_helo(&f, &n);
	assert_int_equal(n, 14);
	assert_memory_equal(h, "client.example", 14);
	say(&f, "HELO [192.0.2.10]\r\n", "250 ");
	h = smtpfix_front_helo(&f, &n);
	assert_int_equal(n, 12);
	assert_memory_equal(h, "[192.0.2.10]", 12);
	/* Not a word XCLIENT may carry: none. */
	say(&f, "EHLO a\x01b\r\n", "250-");
	assert_null(smtpfix_front_helo(&f, &n));
	say(&f, "EHLO c\r\n", "250-");
	assert_non_null(smtpfix_front_helo(&f, &n));
	say(&f, "STARTTLS\r\n", "220 2.0.0");
	smtpfix_front_tls_done(&f, 1);
	assert_null(smtpfix_front_helo(&f, &n));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_greeting),
	    cmocka_unit_test(test_ehlo_reply_allowlist),
	    cmocka_unit_test(test_sequence),
	    cmocka_unit_test(test_mail_parameters),
	    cmocka_unit_test(test_rcpt_route),
	    cmocka_unit_test(test_hygiene),
	    cmocka_unit_test(test_bad_input),
	    cmocka_unit_test(test_starttls),
	    cmocka_unit_test(test_pipelined_group),
	    cmocka_unit_test(test_bdat_and_quit),
	    cmocka_unit_test(test_helo_kept),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
