/*
 * gateway/buf_test.c: the session buffer, and its growth for a message's
 * data.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gateway/buf.h"

/* Growing keeps the unread bytes (moved to the front), never shrinks,
 * and gives room up to the new capacity. */
static void
test_grow_keeps_bytes(void **state)
{
	struct gw_buf b = {0};

	(void)state;
	assert_int_equal(gw_buf_alloc(&b, 16), 0);
	gw_buf_put(&b, "0123456789abcdef", 16);
	assert_int_equal(gw_buf_room(&b), 0);
	gw_buf_drop(&b, 10);
	assert_int_equal(gw_buf_grow(&b, 64), 0);
	assert_int_equal(b.cap, 64);
	assert_int_equal(b.off, 0);
	assert_int_equal(b.len, 6);
	assert_memory_equal(gw_buf_head(&b), "abcdef", 6);
	assert_int_equal(gw_buf_room(&b), 58);
	assert_int_equal(gw_buf_grow(&b, 32), 0);
	assert_int_equal(b.cap, 64);
	gw_buf_drop(&b, 6);
	gw_buf_release(&b);
	assert_null(b.data);
	assert_int_equal(b.cap, 0);
}

/* Without storage, growing allocates it at the capacity asked for. */
static void
test_grow_empty(void **state)
{
	struct gw_buf b = {0};

	(void)state;
	assert_int_equal(gw_buf_grow(&b, 128), 0);
	assert_non_null(b.data);
	assert_int_equal(b.cap, 128);
	assert_int_equal(b.len, 0);
	gw_buf_free(&b);
	assert_null(b.data);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_grow_keeps_bytes),
	    cmocka_unit_test(test_grow_empty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
