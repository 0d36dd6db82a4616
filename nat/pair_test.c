/*
 * nat/pair_test.c: unit tests of nat/pair.c.  Correctness only: speed is
 * measured by the benchmarks, not asserted here.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "nat/pair.h"

static struct in6_addr
v6(const char *s)
{
	struct in6_addr a;

	assert_int_equal(inet_pton(AF_INET6, s, &a), 1);
	return a;
}

static struct in_addr
v4(const char *s)
{
	struct in_addr a;

	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return a;
}

/* Pair i of a generated table: 10.0.0.0 + i and 2001:db8::<i>. */
static struct in_addr
gen_v4(uint32_t i)
{
	struct in_addr a;

	a.s_addr = htonl(UINT32_C(0x0a000000) + i);
	return a;
}

static struct in6_addr
gen_v6(uint16_t net, uint32_t i)
{
	struct in6_addr a = v6("2001:db8::");
	uint32_t be = htonl(i);

	a.s6_addr[4] = (uint8_t)(net >> 8);
	a.s6_addr[5] = (uint8_t)net;
	memcpy(a.s6_addr + 12, &be, sizeof(be));
	return a;
}

static void
test_add_lookup(void **state)
{
	struct nat_pairs t;
	struct in_addr a4 = v4("192.0.2.25"), b4 = v4("198.51.100.25");
	struct in6_addr a6 = v6("2001:db8::25"), b6 = v6("2001:db8:1::25");
	const struct nat_pair *p, *q;

	(void)state;
	assert_int_equal(nat_pairs_init(&t, 4), 0);
	assert_null(nat_pairs_by_v4(&t, &a4));
	assert_null(nat_pairs_by_v6(&t, &a6));

	assert_int_equal(nat_pairs_add(&t, &a4, &a6, 7), 0);
	assert_int_equal(nat_pairs_add(&t, &b4, &b6, 8), 0);
	assert_int_equal(t.n, 2);

	p = nat_pairs_by_v4(&t, &a4);
	assert_non_null(p);
	assert_memory_equal(&p->v4, &a4, sizeof(a4));
	assert_memory_equal(&p->v6, &a6, sizeof(a6));
	assert_int_equal(p->user, 7);
	/* Both ways lead to the same pair. */
	assert_ptr_equal(nat_pairs_by_v6(&t, &a6), p);

	q = nat_pairs_by_v6(&t, &b6);
	assert_non_null(q);
	assert_memory_equal(&q->v4, &b4, sizeof(b4));
	assert_int_equal(q->user, 8);
	assert_ptr_equal(nat_pairs_by_v4(&t, &b4), q);

	/* Pointers stay valid as the table fills. */
	assert_int_equal(nat_pairs_add(&t, &(struct in_addr){htonl(1)},
	                     &(struct in6_addr){{{1}}}, 9),
	    0);
	assert_ptr_equal(nat_pairs_by_v4(&t, &a4), p);
	assert_int_equal(p->user, 7);
	nat_pairs_free(&t);
}

static void
test_eexist(void **state)
{
	struct nat_pairs t;
	struct in_addr a4 = v4("192.0.2.25"), b4 = v4("192.0.2.26");
	struct in6_addr a6 = v6("2001:db8::25"), b6 = v6("2001:db8::26");
	const struct nat_pair *p;

	(void)state;
	assert_int_equal(nat_pairs_init(&t, 8), 0);
	assert_int_equal(nat_pairs_add(&t, &a4, &a6, 1), 0);

	/* the same pair again */
	errno = 0;
	assert_int_equal(nat_pairs_add(&t, &a4, &a6, 2), -1);
	assert_int_equal(errno, EEXIST);
	/* the IPv4 address reused */
	errno = 0;
	assert_int_equal(nat_pairs_add(&t, &a4, &b6, 2), -1);
	assert_int_equal(errno, EEXIST);
	/* the IPv6 address reused */
	errno = 0;
	assert_int_equal(nat_pairs_add(&t, &b4, &a6, 2), -1);
	assert_int_equal(errno, EEXIST);

	/* Refused pairs left nothing behind. */
	assert_int_equal(t.n, 1);
	assert_null(nat_pairs_by_v4(&t, &b4));
	assert_null(nat_pairs_by_v6(&t, &b6));
	p = nat_pairs_by_v4(&t, &a4);
	assert_non_null(p);
	assert_int_equal(p->user, 1);
	assert_memory_equal(&p->v6, &a6, sizeof(a6));
	assert_ptr_equal(nat_pairs_by_v6(&t, &a6), p);

	/* and the fresh pair still goes in */
	assert_int_equal(nat_pairs_add(&t, &b4, &b6, 3), 0);
	assert_int_equal(nat_pairs_by_v6(&t, &b6)->user, 3);
	nat_pairs_free(&t);
}

static void
test_enospc(void **state)
{
	struct nat_pairs t;
	struct in_addr a4;
	struct in6_addr a6;
	uint32_t i;

	(void)state;
	assert_int_equal(nat_pairs_init(&t, 3), 0);
	for (i = 0; i < 3; i++) {
		a4 = gen_v4(i);
		a6 = gen_v6(0, i);
		assert_int_equal(nat_pairs_add(&t, &a4, &a6, i), 0);
	}
	a4 = gen_v4(3);
	a6 = gen_v6(0, 3);
	errno = 0;
	assert_int_equal(nat_pairs_add(&t, &a4, &a6, 3), -1);
	assert_int_equal(errno, ENOSPC);
	assert_int_equal(t.n, 3);
	assert_null(nat_pairs_by_v4(&t, &a4));
	assert_null(nat_pairs_by_v6(&t, &a6));
	for (i = 0; i < 3; i++) {
		a4 = gen_v4(i);
		assert_non_null(nat_pairs_by_v4(&t, &a4));
	}
	nat_pairs_free(&t);
}

static void
test_empty_and_zero_cap(void **state)
{
	struct nat_pairs t;
	struct in_addr a4 = v4("192.0.2.1");
	struct in6_addr a6 = v6("2001:db8::1");

	(void)state;
	assert_int_equal(nat_pairs_init(&t, 0), 0);
	assert_null(nat_pairs_by_v4(&t, &a4));
	assert_null(nat_pairs_by_v6(&t, &a6));
	errno = 0;
	assert_int_equal(nat_pairs_add(&t, &a4, &a6, 0), -1);
	assert_int_equal(errno, ENOSPC);
	nat_pairs_free(&t);
	/* A freed table is empty and may be freed again. */
	assert_null(nat_pairs_by_v4(&t, &a4));
	assert_null(nat_pairs_by_v6(&t, &a6));
	nat_pairs_free(&t);
}

static void
test_enomem(void **state)
{
	struct nat_pairs t;

	(void)state;
	errno = 0;
	assert_int_equal(nat_pairs_init(&t, SIZE_MAX), -1);
	assert_int_equal(errno, ENOMEM);
	assert_null(t.pairs);
	assert_null(t.h4);
	assert_null(t.h6);
	nat_pairs_free(&t);
}

static void
test_all_zero_and_all_ones(void **state)
{
	struct nat_pairs t;
	struct in_addr z4 = v4("0.0.0.0"), o4 = v4("255.255.255.255");
	struct in6_addr z6 = v6("::"),
	                o6 = v6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");

	(void)state;
	/* Addresses are keys like any other: no value means "free". */
	assert_int_equal(nat_pairs_init(&t, 2), 0);
	assert_int_equal(nat_pairs_add(&t, &z4, &o6, 1), 0);
	assert_int_equal(nat_pairs_add(&t, &o4, &z6, 2), 0);
	assert_int_equal(nat_pairs_by_v4(&t, &z4)->user, 1);
	assert_int_equal(nat_pairs_by_v6(&t, &o6)->user, 1);
	assert_int_equal(nat_pairs_by_v4(&t, &o4)->user, 2);
	assert_int_equal(nat_pairs_by_v6(&t, &z6)->user, 2);
	nat_pairs_free(&t);
}

#define BIG 100000

static void
test_big_table(void **state)
{
	struct nat_pairs t;
	struct in_addr a4;
	struct in6_addr a6;
	const struct nat_pair *p;
	uint32_t i;

	(void)state;
	assert_int_equal(nat_pairs_init(&t, BIG), 0);
	/* Load stays at or under one half. */
	assert_true(t.hmask + 1 >= 2 * (size_t)BIG);
	assert_true(((t.hmask + 1) & t.hmask) == 0);
	for (i = 0; i < BIG; i++) {
		a4 = gen_v4(i);
		a6 = gen_v6(0, i);
		if (nat_pairs_add(&t, &a4, &a6, i) != 0)
			fail_msg("add %u: errno %d", i, errno);
	}
	assert_int_equal(t.n, BIG);
	for (i = 0; i < BIG; i++) {
		a4 = gen_v4(i);
		a6 = gen_v6(0, i);
		p = nat_pairs_by_v4(&t, &a4);
		if (p == NULL || p->user != i ||
		    memcmp(&p->v6, &a6, sizeof(a6)) != 0)
			fail_msg("by_v4 %u", i);
		p = nat_pairs_by_v6(&t, &a6);
		if (p == NULL || p->user != i ||
		    memcmp(&p->v4, &a4, sizeof(a4)) != 0)
			fail_msg("by_v6 %u", i);
	}
	/* Absent: the next IPv4 addresses, other IPv6 networks, and the
	 * same low bits under another prefix. */
	for (i = 0; i < BIG; i++) {
		a4 = gen_v4(BIG + i);
		if (nat_pairs_by_v4(&t, &a4) != NULL)
			fail_msg("found absent v4 %u", BIG + i);
		a4.s_addr = htonl(UINT32_C(0xc0000200) + i);
		if (nat_pairs_by_v4(&t, &a4) != NULL)
			fail_msg("found absent v4 192.0.2.0+%u", i);
		a6 = gen_v6(1, i);
		if (nat_pairs_by_v6(&t, &a6) != NULL)
			fail_msg("found absent v6 2001:db8:1::+%u", i);
		a6 = gen_v6(0, BIG + i);
		if (nat_pairs_by_v6(&t, &a6) != NULL)
			fail_msg("found absent v6 %u", BIG + i);
	}
	/* Every address is still taken. */
	a4 = gen_v4(BIG / 2);
	a6 = gen_v6(2, 0);
	errno = 0;
	assert_int_equal(nat_pairs_add(&t, &a4, &a6, 0), -1);
	assert_int_equal(errno, EEXIST);
	nat_pairs_free(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_add_lookup),
	    cmocka_unit_test(test_eexist),
	    cmocka_unit_test(test_enospc),
	    cmocka_unit_test(test_empty_and_zero_cap),
	    cmocka_unit_test(test_enomem),
	    cmocka_unit_test(test_all_zero_and_all_ones),
	    cmocka_unit_test(test_big_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
