/*
 * gateway/tally_test.c: the per-address counters of the accept path.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "gateway/tally.h"

static struct nat_addr
v4(uint32_t n)
{
	struct nat_addr a;

	memset(&a, 0, sizeof(a));
	a.family = AF_INET;
	a.u.v4.s_addr = htonl(UINT32_C(0xc0000200) + n); /* 192.0.2.n */
	return a;
}

static struct nat_addr
v6(uint32_t n)
{
	struct nat_addr a;

	memset(&a, 0, sizeof(a));
	a.family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::", &a.u.v6);
	a.u.v6.s6_addr[12] = (uint8_t)(n >> 24);
	a.u.v6.s6_addr[13] = (uint8_t)(n >> 16);
	a.u.v6.s6_addr[14] = (uint8_t)(n >> 8);
	a.u.v6.s6_addr[15] = (uint8_t)n;
	return a;
}

static void
test_counts(void **state)
{
	struct gw_tally t;
	struct nat_addr a = v4(10), b = v6(10);

	(void)state;
	gw_tally_init(&t);
	assert_int_equal(gw_tally_get(&t, &a, 0), 0);
	assert_int_equal(gw_tally_add(&t, &a, 0), 0);
	assert_int_equal(gw_tally_add(&t, &a, 0), 0);
	assert_int_equal(gw_tally_add(&t, &b, 0), 0);
	assert_int_equal(gw_tally_add(&t, &a, 25), 0);
	assert_int_equal(gw_tally_get(&t, &a, 0), 2);
	assert_int_equal(gw_tally_get(&t, &a, 25), 1); /* port is key */
	assert_int_equal(gw_tally_get(&t, &b, 0), 1);  /* family too */
	gw_tally_sub(&t, &a, 0);
	assert_int_equal(gw_tally_get(&t, &a, 0), 1);
	gw_tally_sub(&t, &a, 0);
	gw_tally_sub(&t, &a, 0); /* below zero: ignored */
	assert_int_equal(gw_tally_get(&t, &a, 0), 0);
	assert_int_equal(t.used, 2);
	gw_tally_free(&t);
}

/* Many keys, added and removed in an interleaved order, against a
 * plain array model: backward-shift deletion must never lose a key. */
static void
test_churn(void **state)
{
	enum { N = 20000 };
	static uint32_t model[N];
	struct gw_tally t;
	uint32_t i, r = 12345;

	(void)state;
	gw_tally_init(&t);
	memset(model, 0, sizeof(model));
	for (i = 0; i < 200000; i++) {
		uint32_t k;
		struct nat_addr a;

		r = r * 1103515245u + 12345u;
		k = (r >> 8) % N;
		a = (k & 1) ? v6(k) : v4(k);
		if ((r >> 4) & 1 || model[k] == 0) {
			assert_int_equal(gw_tally_add(&t, &a, k & 3), 0);
			model[k]++;
		} else {
			gw_tally_sub(&t, &a, k & 3);
			model[k]--;
		}
	}
	for (i = 0; i < N; i++) {
		struct nat_addr a = (i & 1) ? v6(i) : v4(i);

		assert_int_equal(gw_tally_get(&t, &a, i & 3), model[i]);
	}
	gw_tally_free(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_counts),
	    cmocka_unit_test(test_churn),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
