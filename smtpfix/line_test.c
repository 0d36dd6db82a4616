/*
 * smtpfix/line_test.c: unit tests of smtpfix/line.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "smtpfix/line.h"

#define S(x) (x), (sizeof(x) - 1)

static void
find(const char *buf, size_t len, size_t cap, enum smtpfix_rc want,
    size_t want_used)
{
	size_t used = 12345;

	assert_int_equal(smtpfix_line_find(buf, len, cap, &used), want);
	assert_int_equal(used, want_used);
}

static void
test_ok(void **state)
{
	(void)state;
	find(S("NOOP\r\n"), 512, SMTPFIX_OK, 6);
	find(S("\r\n"), 512, SMTPFIX_OK, 2);
	find(S("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"), 512, SMTPFIX_OK, 17);
	/* Only the first line counts; junk after it is the next line's. */
	find(S("NOOP\r\n\n\0\r"), 512, SMTPFIX_OK, 6);
}

static void
test_partial(void **state)
{
	(void)state;
	find(S(""), 512, SMTPFIX_PARTIAL, 0);
	find(S("NOOP"), 512, SMTPFIX_PARTIAL, 0);
	find(S("NOOP\r"), 512, SMTPFIX_PARTIAL, 0);
	find(S("\r"), 512, SMTPFIX_PARTIAL, 0);
	/* A bare LF alone does not end a line: wait for the CRLF. */
	find(S("NOOP\n"), 512, SMTPFIX_PARTIAL, 0);
}

static void
test_cap(void **state)
{
	char buf[600];

	(void)state;
	memset(buf, 'x', sizeof(buf));
	/* Exactly cap bytes, CRLF included: accepted. */
	buf[8] = '\r';
	buf[9] = '\n';
	find(buf, 10, 10, SMTPFIX_OK, 10);
	find(buf, 600, 10, SMTPFIX_OK, 10);
	/* cap + 1: too long, even though the CRLF is in the buffer. */
	find(buf, 10, 9, SMTPFIX_TOOLONG, 0);
	find(buf, 600, 9, SMTPFIX_TOOLONG, 0);
	/* cap bytes ending in CR: the LF would be byte cap + 1. */
	find(buf, 9, 9, SMTPFIX_TOOLONG, 0);
	/* Fewer than cap bytes and no CRLF: partial. */
	find(buf, 8, 10, SMTPFIX_PARTIAL, 0);
	find(buf, 9, 10, SMTPFIX_PARTIAL, 0);
	/* cap bytes, no CRLF: too long. */
	memset(buf, 'x', sizeof(buf));
	find(buf, 512, 512, SMTPFIX_TOOLONG, 0);
	find(buf, 511, 512, SMTPFIX_PARTIAL, 0);
	buf[510] = '\r';
	buf[511] = '\n';
	find(buf, 512, 512, SMTPFIX_OK, 512);
	find(buf, 600, 511, SMTPFIX_TOOLONG, 0);
}

static void
test_badchar(void **state)
{
	(void)state;
	find(S("MAIL FROM:<a>\nRCPT TO:<b>\r\n"), 512, SMTPFIX_BADCHAR, 27);
	find(S("NOOP\rRSET\r\n"), 512, SMTPFIX_BADCHAR, 11);
	find(S("NO\0OP\r\n"), 512, SMTPFIX_BADCHAR, 7);
	find(S("\n\r\n"), 512, SMTPFIX_BADCHAR, 3);
	find(S("\r\r\n"), 512, SMTPFIX_BADCHAR, 3);
	find(S("\0\r\n"), 512, SMTPFIX_BADCHAR, 3);
	/* A bad byte with no CRLF yet is still partial. */
	find(S("NO\0OP"), 512, SMTPFIX_PARTIAL, 0);
	find(S("NOOP\rX"), 512, SMTPFIX_PARTIAL, 0);
	/* Too long wins over a bad byte. */
	find(S("a\nbcdefgh\r\n"), 8, SMTPFIX_TOOLONG, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ok),
	    cmocka_unit_test(test_partial),
	    cmocka_unit_test(test_cap),
	    cmocka_unit_test(test_badchar),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
