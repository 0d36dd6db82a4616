/*
 * gateway/log_test.c: escaping of peer bytes for log lines.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "gateway/log.h"

static void
test_plain(void **state)
{
	char d[64];

	(void)state;
	assert_string_equal(
	    gw_log_escape(d, sizeof(d), "[IPv6:2001:db8::1]", 18),
	    "[IPv6:2001:db8::1]");
}

static void
test_controls(void **state)
{
	char d[64];

	(void)state;
	/* CR, LF, NUL, space, '=', '"' and 8-bit bytes can't forge a field
	 * or a second log line. */
	assert_string_equal(gw_log_escape(d, sizeof(d), "a\r\n\0 =\"\xff", 8),
	    "a\\x0d\\x0a\\x00\\x20\\x3d\\x22\\xff");
}

static void
test_truncate(void **state)
{
	char d[12];
	char big[100];

	(void)state;
	memset(big, 'x', sizeof(big));
	gw_log_escape(d, sizeof(d), big, sizeof(big));
	assert_true(strlen(d) < sizeof(d));
	assert_non_null(strstr(d, "..."));
	gw_log_escape(d, sizeof(d), "\n\n\n\n\n", 5);
	assert_true(strlen(d) < sizeof(d));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plain),
	    cmocka_unit_test(test_controls),
	    cmocka_unit_test(test_truncate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
