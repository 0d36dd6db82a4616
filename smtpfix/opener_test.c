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

#include "nat/addr.h"
#include "smtpfix/identity.h"
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

/* The client an XCLIENT speaks for: 192.0.2.10:4242, which reached
 * 192.0.2.40:25, said EHLO client.example. */
static struct smtpfix_identity ident;

static void
ident_init(void)
{
	memset(&ident, 0, sizeof(ident));
	assert_int_equal(nat_addr_parse("192.0.2.10", 10, &ident.client), 0);
	assert_int_equal(nat_addr_parse("192.0.2.40", 10, &ident.dest), 0);
	ident.client_port = 4242;
	ident.dest_port = 25;
	ident.helo = "client.example";
	ident.helo_len = 14;
	ident.esmtp = 1;
}

/* XCLIENT_README: offered, sent with the offered attributes only (after
 * STARTTLS when the leg takes it), its 220 absorbed, EHLO again, MAIL. */
static void
test_xclient(void **state)
{
	struct smtpfix_opener o;
	static const struct row clear[] = {
	    {"220 mx\r\n", SMTPFIX_OPENER_SEND, "EHLO " FQDN "\r\n"},
	    {"250-mx\r\n250-XCLIENT NAME ADDR PORT HELO\r\n250 8BITMIME\r\n",
	        SMTPFIX_OPENER_SEND,
	        "XCLIENT NAME=[UNAVAILABLE] ADDR=192.0.2.10 PORT=4242 "
	        "HELO=client.example\r\n"},
	    /* The server knows the client's address: its own name. */
	    {"220 mx ESMTP\r\n", SMTPFIX_OPENER_SEND,
	        "EHLO client.example\r\n"},
	    {"250-mx\r\n250 XCLIENT NAME ADDR PORT HELO\r\n",
	        SMTPFIX_OPENER_SEND, MAIL},
	    {"250 2.1.0 Ok\r\n", SMTPFIX_OPENER_DONE, NULL},
	};
	static const struct row tls1[] = {
	    {"220 mx\r\n", SMTPFIX_OPENER_SEND, "EHLO"},
	    {"250-mx\r\n250-XCLIENT ADDR\r\n250 STARTTLS\r\n",
	        SMTPFIX_OPENER_SEND, "STARTTLS\r\n"},
	    {"220 go\r\n", SMTPFIX_OPENER_TLS, NULL},
	};
	static const struct row tls2[] = {
	    {"", SMTPFIX_OPENER_SEND, "EHLO " FQDN "\r\n"},
	    {"250-mx\r\n250 XCLIENT ADDR PROTO\r\n", SMTPFIX_OPENER_SEND,
	        "XCLIENT ADDR=192.0.2.10 PROTO=ESMTP\r\n"},
	    {"220 mx\r\n", SMTPFIX_OPENER_SEND, "EHLO"},
	    {"250 mx\r\n", SMTPFIX_OPENER_SEND, MAIL},
	    {"250 ok\r\n", SMTPFIX_OPENER_DONE, NULL},
	};

	(void)state;
	ident_init();
	start(&o, SMTPFIX_OPENER_TLS_NO);
	smtpfix_opener_set_xclient(&o, &ident, 0);
	assert_int_equal(smtpfix_opener_xclient(&o), SMTPFIX_OPENER_XC_PENDING);
	RUN(&o, clear);
	assert_int_equal(
	    smtpfix_opener_xclient(&o), SMTPFIX_OPENER_XC_ACCEPTED);
	start(&o, SMTPFIX_OPENER_TLS_MAY);
	smtpfix_opener_set_xclient(&o, &ident, 1);
	RUN(&o, tls1);
	smtpfix_opener_tls_done(&o, 1);
	RUN(&o, tls2);
	assert_int_equal(
	    smtpfix_opener_xclient(&o), SMTPFIX_OPENER_XC_ACCEPTED);
}

/* Not offered (or a HELO session), or refused: the leg goes on as the
 * gateway, unless the identity is required. */
static void
test_xclient_not_taken(void **state)
{
	struct smtpfix_opener o;
	static const struct row none[] = {
	    {"220 mx\r\n", SMTPFIX_OPENER_SEND, "EHLO"},
	    {"250-mx\r\n250 PIPELINING\r\n", SMTPFIX_OPENER_SEND, MAIL},
	    {"250 ok\r\n", SMTPFIX_OPENER_DONE, NULL},
	};
	static const struct row none_req[] = {
	    {"220 mx\r\n", SMTPFIX_OPENER_SEND, "EHLO"},
	    {"250-mx\r\n250 PIPELINING\r\n", SMTPFIX_OPENER_FAIL, "451 4.7.0 "},
	};
	static const struct row helo_req[] = {
	    {"220 mx\r\n", SMTPFIX_OPENER_SEND, "EHLO"},
	    {"502 no\r\n", SMTPFIX_OPENER_SEND, "HELO"},
	    {"250 mx\r\n", SMTPFIX_OPENER_FAIL, "451 4.7.0 "},
	};
	static const struct row refused[] = {
	    {"220 mx\r\n", SMTPFIX_OPENER_SEND, "EHLO"},
	    {"250-mx\r\n250 XCLIENT ADDR\r\n", SMTPFIX_OPENER_SEND,
	        "XCLIENT ADDR=192.0.2.10\r\n"},
	    {"550 5.7.0 Error: insufficient authorization\r\n",
	        SMTPFIX_OPENER_SEND, MAIL},
	    {"250 ok\r\n", SMTPFIX_OPENER_DONE, NULL},
	};
	static const struct row refused_req[] = {
	    {"220 mx\r\n", SMTPFIX_OPENER_SEND, "EHLO"},
	    {"250-mx\r\n250 XCLIENT ADDR\r\n", SMTPFIX_OPENER_SEND, "XCLIENT"},
	    {"550 5.7.0 Error: insufficient authorization\r\n",
	        SMTPFIX_OPENER_FAIL, "451 4.7.0 "},
	};
	static const struct row closed[] = {
	    {"220 mx\r\n", SMTPFIX_OPENER_SEND, "EHLO"},
	    {"250-mx\r\n250 XCLIENT ADDR\r\n", SMTPFIX_OPENER_SEND, "XCLIENT"},
	    {"421 4.3.0 bye\r\n", SMTPFIX_OPENER_FAIL, "451 4.4.2 "},
	};
	/* An offer of attributes none of which is known sends nothing. */
	static const struct row unknown[] = {
	    {"220 mx\r\n", SMTPFIX_OPENER_SEND, "EHLO"},
	    {"250-mx\r\n250 XCLIENT LOGIN\r\n", SMTPFIX_OPENER_SEND, MAIL},
	};

	(void)state;
	ident_init();
	start(&o, SMTPFIX_OPENER_TLS_NO);
	smtpfix_opener_set_xclient(&o, &ident, 0);
	RUN(&o, none);
	assert_int_equal(
	    smtpfix_opener_xclient(&o), SMTPFIX_OPENER_XC_NOT_OFFERED);
	start(&o, SMTPFIX_OPENER_TLS_NO);
	smtpfix_opener_set_xclient(&o, &ident, 1);
	RUN(&o, none_req);
	assert_string_equal(o.why, "identity");
	start(&o, SMTPFIX_OPENER_TLS_NO);
	smtpfix_opener_set_xclient(&o, &ident, 1);
	RUN(&o, helo_req);
	start(&o, SMTPFIX_OPENER_TLS_NO);
	smtpfix_opener_set_xclient(&o, &ident, 0);
	RUN(&o, refused);
	assert_int_equal(smtpfix_opener_xclient(&o), SMTPFIX_OPENER_XC_REFUSED);
	start(&o, SMTPFIX_OPENER_TLS_NO);
	smtpfix_opener_set_xclient(&o, &ident, 1);
	RUN(&o, refused_req);
	start(&o, SMTPFIX_OPENER_TLS_NO);
	smtpfix_opener_set_xclient(&o, &ident, 0);
	RUN(&o, closed);
	start(&o, SMTPFIX_OPENER_TLS_NO);
	smtpfix_opener_set_xclient(&o, &ident, 0);
	RUN(&o, unknown);
	/* Not asked for: an offer is ignored. */
	start(&o, SMTPFIX_OPENER_TLS_NO);
	RUN(&o, unknown);
	assert_int_equal(smtpfix_opener_xclient(&o), SMTPFIX_OPENER_XC_OFF);
}

/* draft-martin §3.1: the verb after the EHLO reply lists the keyword
 * (and after XCLIENT's EHLO), only when the gateway can follow a 456; a
 * 456 4.4.8 to MAIL then counts as a refusal asking for IPv4, and the
 * client would see 451. */
static void
test_fallback_verb(void **state)
{
	struct smtpfix_opener o;
	const char *line;
	size_t len;
	static const struct row verb[] = {
	    {"220 mx\r\n", SMTPFIX_OPENER_SEND, "EHLO"},
	    {"250-mx\r\n250-IPV6-IPV4-FALLBACK\r\n250 8BITMIME\r\n",
	        SMTPFIX_OPENER_SEND, "IPV6-IPV4-FALLBACK\r\n"},
	    {"250 2.0.0 ok\r\n", SMTPFIX_OPENER_SEND, MAIL},
	    {"456 4.4.8 please retry immediately over IPv4\r\n",
	        SMTPFIX_OPENER_FAIL, "451 4.4.8 please retry"},
	};
	static const struct row no_verb[] = {
	    {"220 mx\r\n", SMTPFIX_OPENER_SEND, "EHLO"},
	    {"250-mx\r\n250 IPV6-IPV4-FALLBACK\r\n", SMTPFIX_OPENER_SEND, MAIL},
	    {"456 4.4.8 please retry\r\n", SMTPFIX_OPENER_FAIL,
	        "451 4.4.8 please retry\r\n"},
	};
	static const struct row with_xclient[] = {
	    {"220 mx\r\n", SMTPFIX_OPENER_SEND, "EHLO"},
	    {"250-mx\r\n250-IPV6-IPV4-FALLBACK\r\n250 XCLIENT ADDR\r\n",
	        SMTPFIX_OPENER_SEND, "XCLIENT ADDR=192.0.2.10\r\n"},
	    {"220 mx\r\n", SMTPFIX_OPENER_SEND, "EHLO"},
	    {"250-mx\r\n250 IPV6-IPV4-FALLBACK\r\n", SMTPFIX_OPENER_SEND,
	        "IPV6-IPV4-FALLBACK\r\n"},
	    {"502 5.5.1 no\r\n", SMTPFIX_OPENER_SEND, MAIL},
	    {"250 ok\r\n", SMTPFIX_OPENER_DONE, NULL},
	};

	(void)state;
	ident_init();
	start(&o, SMTPFIX_OPENER_TLS_NO);
	smtpfix_opener_set_fallback(&o);
	RUN(&o, verb);
	assert_true(smtpfix_opener_fallback_negotiated(&o));
	assert_true(smtpfix_opener_refusal_448(&o, &line, &len));
	assert_int_equal(len, strlen("456 4.4.8 please retry immediately "
	                             "over IPv4"));
	assert_memory_equal(line, "456 4.4.8", 9);
	assert_string_equal(o.why, "mail-refused");
	/* Not armed: no verb, and a 456 is nothing special (the client
	 * sees it as 451 all the same). */
	start(&o, SMTPFIX_OPENER_TLS_NO);
	RUN(&o, no_verb);
	assert_false(smtpfix_opener_fallback_negotiated(&o));
	assert_false(smtpfix_opener_refusal_448(&o, &line, &len));
	start(&o, SMTPFIX_OPENER_TLS_NO);
	smtpfix_opener_set_fallback(&o);
	smtpfix_opener_set_xclient(&o, &ident, 0);
	RUN(&o, with_xclient);
	assert_false(smtpfix_opener_fallback_negotiated(&o));
}

/* draft-martin §3.2: 421 at the greeting, 451 to EHLO or MAIL with
 * 4.4.8: the leg fails at once (no HELO, no next step), and the refusal
 * is there for the gateway to follow. */
static void
test_refusal_448(void **state)
{
	struct smtpfix_opener o;
	const char *line;
	size_t len;
	static const struct row greet[] = {
	    {"421-4.4.8 mx over IPv6\r\n421 4.4.8 retry over IPv4\r\n",
	        SMTPFIX_OPENER_FAIL, "451 4.4.2 "},
	};
	static const struct row ehlo[] = {
	    {"220 mx\r\n", SMTPFIX_OPENER_SEND, "EHLO"},
	    {"451 4.4.8 not over IPv6\r\n", SMTPFIX_OPENER_FAIL, "451 4.4.2 "},
	};
	static const struct row mail[] = {
	    {"220 mx\r\n", SMTPFIX_OPENER_SEND, "EHLO"},
	    {"250 mx\r\n", SMTPFIX_OPENER_SEND, MAIL},
	    {"451 4.4.8 no SPF over IPv6\r\n", SMTPFIX_OPENER_FAIL,
	        "451 4.4.8 no SPF over IPv6\r\n"},
	};
	/* Another 4xx, or 4.4.8 in another code, is no such request. */
	static const struct row other[] = {
	    {"220 mx\r\n", SMTPFIX_OPENER_SEND, "EHLO"},
	    {"250 mx\r\n", SMTPFIX_OPENER_SEND, MAIL},
	    {"452 4.4.8 hm\r\n", SMTPFIX_OPENER_FAIL, "452 4.4.8 hm\r\n"},
	};

	(void)state;
	start(&o, SMTPFIX_OPENER_TLS_MAY);
	RUN(&o, greet);
	assert_true(smtpfix_opener_refusal_448(&o, &line, &len));
	assert_int_equal(len, strlen("421 4.4.8 retry over IPv4"));
	assert_string_equal(o.why, "greeting");
	start(&o, SMTPFIX_OPENER_TLS_MAY);
	RUN(&o, ehlo);
	assert_true(smtpfix_opener_refusal_448(&o, &line, &len));
	assert_string_equal(o.why, "helo");
	start(&o, SMTPFIX_OPENER_TLS_MAY);
	RUN(&o, mail);
	assert_true(smtpfix_opener_refusal_448(&o, &line, &len));
	assert_memory_equal(line, "451 4.4.8 no SPF", 16);
	start(&o, SMTPFIX_OPENER_TLS_MAY);
	RUN(&o, other);
	assert_false(smtpfix_opener_refusal_448(&o, &line, &len));
}

/* A PROXY header told the server who connected: every EHLO says the
 * client's own HELO argument; one XCLIENT may not carry is left out. */
static void
test_client_helo(void **state)
{
	struct smtpfix_opener o;
	static const struct row own[] = {
	    {"220 mx\r\n", SMTPFIX_OPENER_SEND, "EHLO client.example\r\n"},
	    {"502 no\r\n", SMTPFIX_OPENER_SEND, "HELO client.example\r\n"},
	    {"250 mx\r\n", SMTPFIX_OPENER_SEND, MAIL},
	};
	static const struct row gw[] = {
	    {"220 mx\r\n", SMTPFIX_OPENER_SEND, "EHLO " FQDN "\r\n"},
	};
	/* XCLIENT without ADDR: the server does not know the address. */
	static const struct row noaddr[] = {
	    {"220 mx\r\n", SMTPFIX_OPENER_SEND, "EHLO " FQDN "\r\n"},
	    {"250-mx\r\n250 XCLIENT HELO\r\n", SMTPFIX_OPENER_SEND,
	        "XCLIENT HELO=client.example\r\n"},
	    {"220 mx\r\n", SMTPFIX_OPENER_SEND, "EHLO " FQDN "\r\n"},
	};

	(void)state;
	ident_init();
	start(&o, SMTPFIX_OPENER_TLS_NO);
	smtpfix_opener_set_client_helo(&o, "client.example", 14);
	RUN(&o, own);
	start(&o, SMTPFIX_OPENER_TLS_NO);
	smtpfix_opener_set_client_helo(&o, "a b", 3);
	RUN(&o, gw);
	start(&o, SMTPFIX_OPENER_TLS_NO);
	smtpfix_opener_set_client_helo(&o, NULL, 0);
	RUN(&o, gw);
	start(&o, SMTPFIX_OPENER_TLS_NO);
	smtpfix_opener_set_xclient(&o, &ident, 0);
	RUN(&o, noaddr);
	assert_int_equal(smtpfix_opener_xclient_sent(&o), SMTPFIX_XC_HELO);
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
	    cmocka_unit_test(test_xclient),
	    cmocka_unit_test(test_xclient_not_taken),
	    cmocka_unit_test(test_fallback_verb),
	    cmocka_unit_test(test_refusal_448),
	    cmocka_unit_test(test_client_helo),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
