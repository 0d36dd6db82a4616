/*
 * smtpfix/ehlo_test.c: the extension and verb allowlists.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "smtpfix/ehlo.h"

static enum smtpfix_ehlo_kw
kw(const char *s)
{
	return smtpfix_ehlo_keyword(s, strlen(s));
}

static void
test_keywords(void **state)
{
	static const char *const keep[] = {
	    "PIPELINING",
	    "SIZE 10240000",
	    "size",
	    "8BITMIME",
	    "SMTPUTF8",
	    "DSN",
	    "ENHANCEDSTATUSCODES",
	    "AUTH PLAIN LOGIN",
	    "AUTH\tPLAIN",
	    "VRFY",
	    "EXPN",
	    "HELP",
	};
	static const char *const drop[] = {
	    /* RFC 3030 §2-3: BDAT. */
	    "CHUNKING",
	    "BINARYMIME",
	    /* The client would choose the identity the server logs. */
	    "XCLIENT NAME ADDR PROTO HELO REVERSE_NAME PORT LOGIN",
	    "XFORWARD NAME ADDR PROTO HELO SOURCE PORT IDENT",
	    "xclient",
	    /* draft-martin §3.1: the client came over the other family. */
	    "IPV6-IPV4-FALLBACK",
	    "ETRN",
	    "AUTH=LOGIN PLAIN",
	    "REQUIRETLS",
	    "SIZEX",
	    "PIPELINING2",
	    "",
	    " PIPELINING",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
		assert_int_equal(kw(keep[i]), SMTPFIX_KW_KEEP);
	for (i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
		assert_int_equal(kw(drop[i]), SMTPFIX_KW_DROP);
	assert_int_equal(kw("STARTTLS"), SMTPFIX_KW_STARTTLS);
	assert_int_equal(kw("starttls"), SMTPFIX_KW_STARTTLS);
	assert_int_equal(kw("STARTTLSX"), SMTPFIX_KW_DROP);
	/* Peer bytes are not NUL-terminated: only len counts. */
	assert_int_equal(smtpfix_ehlo_keyword("DSNX", 3), SMTPFIX_KW_KEEP);
}

static void
test_verbs(void **state)
{
	static const struct {
		const char *line;
		enum smtpfix_verb_class c;
		const char *name;
	} v[] = {
	    {"MAIL FROM:<a@example.net>", SMTPFIX_VERB_RELAY, "MAIL"},
	    {"rcpt TO:<b@example.org>", SMTPFIX_VERB_RELAY, "RCPT"},
	    {"  QUIT", SMTPFIX_VERB_RELAY, "QUIT"},
	    {"STARTTLS", SMTPFIX_VERB_RELAY, "STARTTLS"},
	    {"AUTH PLAIN", SMTPFIX_VERB_RELAY, "AUTH"},
	    {"XCLIENT ADDR=192.0.2.99 NAME=spoofed.example.net",
	        SMTPFIX_VERB_NOT_OFFERED, "XCLIENT"},
	    {"XFORWARD ADDR=192.0.2.99", SMTPFIX_VERB_NOT_OFFERED, "XFORWARD"},
	    {"etrn example.org", SMTPFIX_VERB_NOT_OFFERED, "ETRN"},
	    {"PROXY TCP4 192.0.2.99 192.0.2.30 1 25", SMTPFIX_VERB_UNRECOGNIZED,
	        NULL},
	    {"MAILX", SMTPFIX_VERB_UNRECOGNIZED, NULL},
	    {"", SMTPFIX_VERB_UNRECOGNIZED, NULL},
	};
	const char *name;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		assert_int_equal(
		    smtpfix_ehlo_verb(v[i].line, strlen(v[i].line), &name),
		    v[i].c);
		if (v[i].name == NULL)
			assert_null(name);
		else
			assert_string_equal(name, v[i].name);
	}
}

static void
test_reply_code(void **state)
{
	(void)state;
	assert_int_equal(smtpfix_ehlo_reply_code(456), 451);
	assert_int_equal(smtpfix_ehlo_reply_code(451), 451);
	assert_int_equal(smtpfix_ehlo_reply_code(250), 250);
	assert_int_equal(smtpfix_ehlo_reply_code(421), 421);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_keywords),
	    cmocka_unit_test(test_verbs),
	    cmocka_unit_test(test_reply_code),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
