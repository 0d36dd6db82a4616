/*
 * smtpfix/opener_test.c: unit tests of smtpfix/opener.c.  Each dialogue
 * is a table of rows: the server's bytes and what the opener does next
 * (the bytes it sends, or its outcome), per RFC 5321 §4.3.1-2 and RFC
 * 3207.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "smtpfix/opener.h"

#define FQDN "gw.example.net"
#define MAIL "MAIL FROM:<a@example.org> SIZE=100\r\n"

struct row {
	const char *server; /* bytes from the server (may be "") */
	enum smtpfix_opener_act act;
	const char *emit; /* start of what is written; NULL: nothing */
};

static void
start(struct smtpfix_opener *o, enum smtpfix_opener_tls tls)
{
	smtpfix_opener_init(
	    o, FQDN, sizeof(FQDN) - 1, MAIL, sizeof(MAIL) - 1, tls, 512);
}

/* Feeds each row's bytes whole, one step per reply line. */
static void
run(struct smtpfix_opener *o, const struct row *r, size_t n)
{
	struct smtpfix_opener_step s;
	size_t i, off, len;

	for (i = 0; i < n; i++) {
		len = strlen(r[i].server);
		off = 0;
		do {
			smtpfix_opener_step(
			    o, r[i].server + off, len - off, &s);
			off += s.consumed;
		} while (s.act == SMTPFIX_OPENER_NONE && s.consumed > 0 &&
		         off < len);
		assert_int_equal(off, len);
		assert_int_equal(s.act, r[i].act);
		if (r[i].emit == NULL) {
			assert_int_equal(s.emit_len, 0);
			continue;
		}
		assert_true(s.emit_len >= strlen(r[i].emit));
		assert_memory_equal(s.emit, r[i].emit, strlen(r[i].emit));
		/* A row that gives a whole line (CRLF) means exactly it. */
		len = strlen(r[i].emit);
		if (len >= 2 && r[i].emit[len - 1] == '\n')
			assert_int_equal(s.emit_len, len);
	}
}
#define RUN(o, rows) run((o), (rows), sizeof(rows) / sizeof(rows[0]))

/* The plain path: 220, EHLO with the gateway's name, MAIL replayed byte
 * for byte, 250: the relay takes over. */
static void
test_plain(void **state)
{
	struct smtpfix_opener o;
	static const struct row rows[] = {
	    {"220-mx.a.example ESMTP\r\n220 more\r\n", SMTPFIX_OPENER_SEND,
	        "EHLO " FQDN "\r\n"},
	    {"250-mx.a.example\r\n250-SIZE 1000\r\n250 8BITMIME\r\n",
	        SMTPFIX_OPENER_SEND, MAIL},
	    {"250 2.1.0 Ok\r\n", SMTPFIX_OPENER_DONE, NULL},
	};

	(void)state;
	start(&o, SMTPFIX_OPENER_TLS_MAY);
	RUN(&o, rows);
	assert_int_equal(smtpfix_opener_in_tls(&o), 0);
}

/* RFC 3207: STARTTLS when offered, EHLO again inside TLS (§4.2) without
 * waiting for the server, then MAIL. */
static void
test_starttls(void **state)
{
	struct smtpfix_opener o;
	struct smtpfix_opener_step s;
	static const struct row before[] = {
	    {"220 mx ESMTP\r\n", SMTPFIX_OPENER_SEND, "EHLO " FQDN "\r\n"},
	    {"250-mx\r\n250-STARTTLS\r\n250 SIZE\r\n", SMTPFIX_OPENER_SEND,
	        "STARTTLS\r\n"},
	    {"220 2.0.0 go ahead\r\n", SMTPFIX_OPENER_TLS, NULL},
	};
	static const struct row after[] = {
	    {"", SMTPFIX_OPENER_SEND, "EHLO " FQDN "\r\n"},
	    {"250-mx\r\n250 SIZE\r\n", SMTPFIX_OPENER_SEND, MAIL},
	    {"250 ok\r\n", SMTPFIX_OPENER_DONE, NULL},
	};

	(void)state;
	start(&o, SMTPFIX_OPENER_TLS_MAY);
	RUN(&o, before);
	/* While the handshake runs, nothing is read. */
	smtpfix_opener_step(&o, "250 x\r\n", 7, &s);
	assert_int_equal(s.act, SMTPFIX_OPENER_NONE);
	assert_int_equal(s.consumed, 0);
	smtpfix_opener_tls_done(&o, 1);
	RUN(&o, after);
	assert_int_equal(smtpfix_opener_in_tls(&o), 1);
	/* "250 STARTTLS" as the last line counts too; NO never asks. */
	start(&o, SMTPFIX_OPENER_TLS_NO);
	{
		static const struct row no[] = {
		    {"220 mx\r\n", SMTPFIX_OPENER_SEND, "EHLO"},
		    {"250-mx\r\n250 starttls \r\n", SMTPFIX_OPENER_SEND, MAIL},
		};
		RUN(&o, no);
	}
}

/* MUST: a server that does not offer STARTTLS, or refuses it, or whose
 * handshake fails, gets no mail; MAY goes on in clear when STARTTLS is
 * refused (RFC 7435). */
static void
test_tls_must_and_failures(void **state)
{
	struct smtpfix_opener o;
	static const struct row not_offered[] = {
	    {"220 mx\r\n", SMTPFIX_OPENER_SEND, "EHLO"},
	    {"250 mx\r\n", SMTPFIX_OPENER_FAIL, "451 4.7.5"},
	};
	static const struct row refused_must[] = {
	    {"220 mx\r\n", SMTPFIX_OPENER_SEND, "EHLO"},
	    {"250-mx\r\n250 STARTTLS\r\n", SMTPFIX_OPENER_SEND, "STARTTLS"},
	    {"454 4.7.0 TLS not available\r\n", SMTPFIX_OPENER_FAIL,
	        "451 4.7.0"},
	};
	static const struct row refused_may[] = {
	    {"220 mx\r\n", SMTPFIX_OPENER_SEND, "EHLO"},
	    {"250-mx\r\n250 STARTTLS\r\n", SMTPFIX_OPENER_SEND, "STARTTLS"},
	    {"454 4.7.0 TLS not available\r\n", SMTPFIX_OPENER_SEND, MAIL},
	};
	(void)state;
	start(&o, SMTPFIX_OPENER_TLS_MUST);
	RUN(&o, not_offered);
	assert_string_equal(o.why, "no-starttls");
	start(&o, SMTPFIX_OPENER_TLS_MUST);
	RUN(&o, refused_must);
	start(&o, SMTPFIX_OPENER_TLS_MAY);
	RUN(&o, refused_may);
}

static void
test_handshake_failure(void **state)
{
	struct smtpfix_opener o;
	static const struct row upto[] = {
	    {"220 mx\r\n", SMTPFIX_OPENER_SEND, "EHLO"},
	    {"250-mx\r\n250 STARTTLS\r\n", SMTPFIX_OPENER_SEND, "STARTTLS"},
	    {"220 go\r\n", SMTPFIX_OPENER_TLS, NULL},
	};
	static const struct row fail[] = {
	    {"", SMTPFIX_OPENER_FAIL, "451 4.7.0 TLS handshake"},
	};
	struct smtpfix_opener_step s;

	(void)state;
	start(&o, SMTPFIX_OPENER_TLS_MAY);
	RUN(&o, upto);
	smtpfix_opener_tls_done(&o, 0);
	RUN(&o, fail);
	assert_string_equal(o.why, "tls-handshake");
	/* Once failed, nothing more is read. */
	smtpfix_opener_step(&o, "250 late\r\n", 10, &s);
	assert_int_equal(s.act, SMTPFIX_OPENER_NONE);
	assert_int_equal(s.consumed, 0);
}

/* RFC 5321 §3.2: EHLO refused, HELO tried; refusals at each step give
 * the client a reply of the same class at its RCPT. */
static void
test_refusals(void **state)
{
	struct smtpfix_opener o;
	static const struct row helo[] = {
	    {"220 mx\r\n", SMTPFIX_OPENER_SEND, "EHLO"},
	    {"502 5.5.1 no ESMTP\r\n", SMTPFIX_OPENER_SEND,
	        "HELO " FQDN "\r\n"},
	    {"250 mx\r\n", SMTPFIX_OPENER_SEND, MAIL},
	    {"250 ok\r\n", SMTPFIX_OPENER_DONE, NULL},
	};
	static const struct row greet5[] = {
	    {"554 5.7.1 go away\r\n", SMTPFIX_OPENER_FAIL, "550 5.7.1"},
	};
	static const struct row greet4[] = {
	    {"421 4.3.2 busy\r\n", SMTPFIX_OPENER_FAIL, "451 4.4.2"},
	};
	static const struct row helo5[] = {
	    {"220 mx\r\n", SMTPFIX_OPENER_SEND, "EHLO"},
	    {"500 no\r\n", SMTPFIX_OPENER_SEND, "HELO"},
	    {"550 no\r\n", SMTPFIX_OPENER_FAIL, "550 5.7.1"},
	};
	/* The server's own refusal of MAIL, its last line, as "ddd ". */
	static const struct row mail[] = {
	    {"220 mx\r\n", SMTPFIX_OPENER_SEND, "EHLO"},
	    {"250 mx\r\n", SMTPFIX_OPENER_SEND, MAIL},
	    {"550-5.7.1 sender\r\n550-5.7.1 rejected\r\n550 5.7.1 by "
	     "policy\r\n",
	        SMTPFIX_OPENER_FAIL, "550 5.7.1 by policy\r\n"},
	};
	static const struct row mail_binary[] = {
	    {"220 mx\r\n", SMTPFIX_OPENER_SEND, "EHLO"},
	    {"250 mx\r\n", SMTPFIX_OPENER_SEND, MAIL},
	    {"452 4.3.1 \x01\x7f full\r\n", SMTPFIX_OPENER_FAIL,
	        "451 4.4.2 The destination server refused the sender"},
	};

	(void)state;
	start(&o, SMTPFIX_OPENER_TLS_MAY);
	RUN(&o, helo);
	start(&o, SMTPFIX_OPENER_TLS_MAY);
	RUN(&o, greet5);
	start(&o, SMTPFIX_OPENER_TLS_MAY);
	RUN(&o, greet4);
	start(&o, SMTPFIX_OPENER_TLS_MAY);
	RUN(&o, helo5);
	start(&o, SMTPFIX_OPENER_TLS_MAY);
	RUN(&o, mail);
	start(&o, SMTPFIX_OPENER_TLS_MAY);
	RUN(&o, mail_binary);
}

/* RFC 5321 §4.2.1: malformed replies, codes that change inside a reply,
 * bare line ends and over-long lines end the attempt. */
static void
test_bad_replies(void **state)
{
	struct smtpfix_opener o;
	struct smtpfix_opener_step s;
	char big[600];
	static const char *const bad[] = {
	    "hello\r\n",
	    "22\r\n",
	    "220-a\r\n221 b\r\n",
	    "220x\r\n",
	    "220 a\nb\r\n",
	    "600 no\r\n",
	};
	size_t i, off;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		start(&o, SMTPFIX_OPENER_TLS_MAY);
		off = 0;
		do {
			smtpfix_opener_step(
			    &o, bad[i] + off, strlen(bad[i]) - off, &s);
			off += s.consumed;
		} while (s.act == SMTPFIX_OPENER_NONE && s.consumed > 0);
		assert_int_equal(s.act, SMTPFIX_OPENER_FAIL);
		assert_memory_equal(s.emit, "451 4.4.2", 9);
	}
	start(&o, SMTPFIX_OPENER_TLS_MAY);
	memset(big, '2', sizeof(big));
	smtpfix_opener_step(&o, big, sizeof(big), &s);
	assert_int_equal(s.act, SMTPFIX_OPENER_FAIL);
	/* Partial input waits. */
	start(&o, SMTPFIX_OPENER_TLS_MAY);
	smtpfix_opener_step(&o, "220 mx", 6, &s);
	assert_int_equal(s.act, SMTPFIX_OPENER_NONE);
	assert_int_equal(s.consumed, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plain),
	    cmocka_unit_test(test_starttls),
	    cmocka_unit_test(test_tls_must_and_failures),
	    cmocka_unit_test(test_handshake_failure),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_bad_replies),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
