/*
 * gateway/rlimit_test.c: the open-file limit max_sessions needs.
 */
#include <sys/resource.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>

#include "gateway/rlimit.h"

static void
test_need(void **state)
{
	(void)state;
	assert_int_equal(gw_rlimit_need(1), 66);
	assert_int_equal(gw_rlimit_need(1000), 2064);
	assert_int_equal(gw_rlimit_need(1000000), 2000064UL);
}

/* A need below the soft limit changes nothing and succeeds. */
static void
test_raise_noop(void **state)
{
	struct rlimit before, after;
	unsigned long now = 0;
	char err[256];

	(void)state;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &before), 0);
	assert_int_equal(gw_rlimit_raise(1, &now, err, sizeof(err)), 0);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &after), 0);
	assert_int_equal(before.rlim_cur, after.rlim_cur);
	assert_true(now >= 66);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_need),
	    cmocka_unit_test(test_raise_noop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
