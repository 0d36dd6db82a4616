/*
 * gateway/uptable_test.c: the workers' shared table of upstream sockets.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "gateway/uptable.h"

static struct nat_addr
addr(const char *s)
{
	struct nat_addr a;

	memset(&a, 0, sizeof(a));
	if (strchr(s, ':') != NULL) {
		a.family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, s, &a.u.v6), 1);
	} else {
		a.family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, s, &a.u.v4), 1);
	}
	return a;
}

static void
test_table(void **state)
{
	struct nat_addr a4 = addr("192.0.2.1"), a6 = addr("2001:db8::1"),
	                m = addr("::ffff:192.0.2.1");
	size_t h1, h2, h3, i, hs[300];

	(void)state;
	/* Not made: every call does nothing. */
	assert_int_equal(gw_uptable_add(&a4, 40000), 0);
	assert_int_equal(gw_uptable_has(&a4, 40000), 0);
	assert_int_equal(gw_uptable_init(100), 0);
	gw_uptable_owner(1);
	h1 = gw_uptable_add(&a4, 40000);
	h2 = gw_uptable_add(&a6, 40000);
	assert_true(h1 != 0 && h2 != 0 && h1 != h2);
	assert_int_equal(gw_uptable_has(&a4, 40000), 1);
	assert_int_equal(gw_uptable_has(&a6, 40000), 1);
	/* Port, family and address all count. */
	assert_int_equal(gw_uptable_has(&a4, 40001), 0);
	assert_int_equal(gw_uptable_has(&m, 40000), 0);
	gw_uptable_del(h1);
	assert_int_equal(gw_uptable_has(&a4, 40000), 0);
	assert_int_equal(gw_uptable_has(&a6, 40000), 1);
	/* A dead worker's entries go; another's stay. */
	gw_uptable_owner(2);
	h3 = gw_uptable_add(&a4, 40002);
	assert_true(h3 != 0);
	gw_uptable_forget(1);
	assert_int_equal(gw_uptable_has(&a6, 40000), 0);
	assert_int_equal(gw_uptable_has(&a4, 40002), 1);
	gw_uptable_del(h3);
	/* Many at once: each found, each removed. */
	for (i = 0; i < 200; i++) {
		hs[i] = gw_uptable_add(&a4, (unsigned)(1024 + i));
		assert_true(hs[i] != 0);
	}
	for (i = 0; i < 200; i++)
		assert_int_equal(gw_uptable_has(&a4, (unsigned)(1024 + i)), 1);
	for (i = 0; i < 200; i++)
		gw_uptable_del(hs[i]);
	for (i = 0; i < 200; i++)
		assert_int_equal(gw_uptable_has(&a4, (unsigned)(1024 + i)), 0);
	gw_uptable_del(0); /* no handle: nothing */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
