/*
 * smtpfix/refuse_test.c: the refused-session dialogue.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "smtpfix/refuse.h"

static void
run(const char *in, size_t len, unsigned *n, struct smtpfix_refuse_step *st)
{
	smtpfix_refuse_step(in, len, 512, n, st);
}

static void
test_quit(void **state)
{
	struct smtpfix_refuse_step st;
	unsigned n = 0;

	(void)state;
	run("quit\r\n", 6, &n, &st);
	assert_int_equal(st.act, SMTPFIX_REFUSE_CLOSE);
	assert_int_equal(st.consumed, 6);
	assert_string_equal(st.code_enh, "221 2.0.0");
}

static void
test_503_then_quit(void **state)
{
	static const char in[] =
	    "EHLO x.example\r\nMAIL FROM:<a@b>\r\nQUIT\r\n";
	struct smtpfix_refuse_step st;
	unsigned n = 0;
	size_t off = 0;

	(void)state;
	run(in + off, sizeof(in) - 1 - off, &n, &st);
	assert_int_equal(st.act, SMTPFIX_REFUSE_REPLY);
	assert_string_equal(st.code_enh, "503 5.5.1");
	off += st.consumed;
	run(in + off, sizeof(in) - 1 - off, &n, &st);
	assert_string_equal(st.code_enh, "503 5.5.1");
	off += st.consumed;
	run(in + off, sizeof(in) - 1 - off, &n, &st);
	assert_int_equal(st.act, SMTPFIX_REFUSE_CLOSE);
	assert_string_equal(st.code_enh, "221 2.0.0");
	assert_int_equal(off + st.consumed, sizeof(in) - 1);
}

static void
test_partial_and_bad(void **state)
{
	struct smtpfix_refuse_step st;
	unsigned n = 0;
	char big[600];

	(void)state;
	run("QUI", 3, &n, &st);
	assert_int_equal(st.act, SMTPFIX_REFUSE_NONE);
	assert_int_equal(st.consumed, 0);
	/* "QUIT" hidden behind a bare LF is not a QUIT */
	run("NOOP\nQUIT\r\n", 11, &n, &st);
	assert_int_equal(st.act, SMTPFIX_REFUSE_REPLY);
	assert_string_equal(st.code_enh, "500 5.5.2");
	memset(big, 'x', sizeof(big));
	run(big, sizeof(big), &n, &st);
	assert_int_equal(st.act, SMTPFIX_REFUSE_CLOSE);
	assert_string_equal(st.code_enh, "500 5.5.2");
	/* "QUITX" is not QUIT */
	run("QUITX\r\n", 7, &n, &st);
	assert_string_equal(st.code_enh, "503 5.5.1");
}

static void
test_bounded(void **state)
{
	struct smtpfix_refuse_step st;
	unsigned n = 0, i;

	(void)state;
	for (i = 0; i + 1 < SMTPFIX_REFUSE_MAX_CMDS; i++) {
		run("NOOP\r\n", 6, &n, &st);
		assert_int_equal(st.act, SMTPFIX_REFUSE_REPLY);
	}
	run("NOOP\r\n", 6, &n, &st);
	assert_int_equal(st.act, SMTPFIX_REFUSE_CLOSE);
	assert_string_equal(st.code_enh, "421 4.7.0");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_quit),
	    cmocka_unit_test(test_503_then_quit),
	    cmocka_unit_test(test_partial_and_bad),
	    cmocka_unit_test(test_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
