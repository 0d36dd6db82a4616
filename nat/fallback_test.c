/*
 * nat/fallback_test.c: unit tests of nat/fallback.c with the DNS layout
 * of draft-martin-smtp-ipv6-to-ipv4-fallback §3.2, as nat_mx_select
 * orders it (by preference, AAAA before A).
 */
#include <sys/socket.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "nat/addr.h"
#include "nat/fallback.h"

static void
target(struct nat_mx_target *t, const char *a, unsigned pref)
{
	memset(t, 0, sizeof(*t));
	assert_int_equal(nat_addr_parse(a, strlen(a), &t->addr), 0);
	t->pref = (uint16_t)pref;
}

/* §3.2's example:
 *   example.org. IN MX 1 mx1-6 (AAAA 2001:db8:ffff::1)
 *                IN MX 1 mx1   (A 192.0.2.1)
 *                IN MX 10 mx10-6 (AAAA 2001:db8:ffff::2)
 *                IN MX 10 mx10   (A 192.0.2.2) */
static void
test_draft_layout(void **state)
{
	struct nat_mx_target t[4];

	(void)state;
	target(&t[0], "2001:db8:ffff::1", 1);
	target(&t[1], "192.0.2.1", 1);
	target(&t[2], "2001:db8:ffff::2", 10);
	target(&t[3], "192.0.2.2", 10);
	assert_int_equal(nat_fallback_pick(t, 4, 0), 1);
	assert_int_equal(nat_fallback_pick(t, 4, 2), 3);
	/* An IPv4 target is no IPv6 refusal to follow. */
	assert_int_equal(nat_fallback_pick(t, 4, 1), -1);
	assert_int_equal(nat_fallback_pick(t, 4, 9), -1);
}

/* No IPv4 host at the same preference: the next preference's; none
 * above: nothing. */
static void
test_next_preference(void **state)
{
	struct nat_mx_target t[5];

	(void)state;
	target(&t[0], "2001:db8::1", 5);
	target(&t[1], "2001:db8::2", 10);
	target(&t[2], "192.0.2.20", 20);
	target(&t[3], "192.0.2.10", 10);
	target(&t[4], "2001:db8::3", 30);
	assert_int_equal(nat_fallback_pick(t, 5, 0), 3);
	assert_int_equal(nat_fallback_pick(t, 5, 1), 3);
	assert_int_equal(nat_fallback_pick(t, 5, 4), -1);
	assert_int_equal(nat_fallback_pick(t, 0, 0), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_draft_layout),
	    cmocka_unit_test(test_next_preference),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
