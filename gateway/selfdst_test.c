/*
 * gateway/selfdst_test.c: which destinations are the gateway's own
 * listeners.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <sys/socket.h>

#include <cmocka.h>

#include "gateway/selfdst.h"

static struct gw_listen
listen_at(const char *a, unsigned port)
{
	struct gw_listen l;

	memset(&l, 0, sizeof(l));
	assert_int_equal(nat_addr_parse(a, strlen(a), &l.addr), 0);
	l.port = port;
	return l;
}

static struct nat_addr
addr(const char *a)
{
	struct nat_addr n;

	assert_int_equal(nat_addr_parse(a, strlen(a), &n), 0);
	return n;
}

static void
test_match(void **state)
{
	struct gw_listen ls[3];
	struct nat_addr d;
	int wild;

	(void)state;
	ls[0] = listen_at("192.0.2.30", 25);
	ls[1] = listen_at("::", 25);
	ls[2] = listen_at("2001:db8:1::25", 2525);
	d = addr("192.0.2.30");
	assert_int_equal(gw_selfdst_match(ls, 3, &d, 25, &wild), 0);
	assert_int_equal(wild, 0);
	/* Another port, another IPv4 address: no listener. */
	assert_int_equal(gw_selfdst_match(ls, 3, &d, 587, &wild), -1);
	d = addr("192.0.2.31");
	assert_int_equal(gw_selfdst_match(ls, 3, &d, 25, &wild), -1);
	/* Any IPv6 address on 25 meets the wildcard. */
	d = addr("2001:db8::25");
	assert_int_equal(gw_selfdst_match(ls, 3, &d, 25, &wild), 1);
	assert_int_equal(wild, 1);
	/* A specific listener wins over the wildcard. */
	d = addr("2001:db8:1::25");
	assert_int_equal(gw_selfdst_match(ls, 3, &d, 2525, &wild), 2);
	assert_int_equal(wild, 0);
}

/* Under a wildcard only an address of this host is ours: loopback is;
 * a documentation address no interface holds is not. */
static void
test_local(void **state)
{
	struct gw_config c;
	struct nat_addr d;

	(void)state;
	gw_config_defaults(&c); /* 0.0.0.0:25 and [::]:25 */
	d = addr("127.0.0.1");
	assert_int_equal(gw_selfdst(&c, &d, 25), 1);
	assert_int_equal(gw_selfdst(&c, &d, 2525), 0);
	d = addr("203.0.113.77");
	assert_int_equal(gw_selfdst(&c, &d, 25), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_match),
	    cmocka_unit_test(test_local),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
