/*
 * smtpfix/tlsmemo_test.c: the table of servers whose TLS failed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "smtpfix/tlsmemo.h"

#define K(x) (x), (sizeof(x) - 1)

static struct smtpfix_tlsmemo memo;

static void
test_note_and_expire(void **state)
{
	struct smtpfix_tlsmemo *m = &memo;

	(void)state;
	smtpfix_tlsmemo_init(m);
	assert_false(smtpfix_tlsmemo_known(m, K("[2001:db8::25]:25"), 100));
	smtpfix_tlsmemo_note(m, K("[2001:db8::25]:25"), 100, 3600);
	assert_true(smtpfix_tlsmemo_known(m, K("[2001:db8::25]:25"), 100));
	assert_true(smtpfix_tlsmemo_known(m, K("[2001:db8::25]:25"), 3699));
	assert_false(smtpfix_tlsmemo_known(m, K("[2001:db8::25]:25"), 3700));
	/* Another port is another server. */
	assert_false(smtpfix_tlsmemo_known(m, K("[2001:db8::25]:587"), 100));
	assert_false(smtpfix_tlsmemo_known(m, K("[2001:db8::25]:2"), 100));
	/* A new failure extends the note. */
	smtpfix_tlsmemo_note(m, K("[2001:db8::25]:25"), 3000, 3600);
	assert_true(smtpfix_tlsmemo_known(m, K("[2001:db8::25]:25"), 6599));
	/* ttl 0: remembering is off. */
	smtpfix_tlsmemo_note(m, K("198.51.100.25:25"), 100, 0);
	assert_false(smtpfix_tlsmemo_known(m, K("198.51.100.25:25"), 100));
	/* Empty and over-long keys are never stored. */
	smtpfix_tlsmemo_note(m, "", 0, 100, 60);
	assert_false(smtpfix_tlsmemo_known(m, "", 0, 100));
	{
		char big[SMTPFIX_TLSMEMO_KEY_MAX + 1];

		memset(big, 'a', sizeof(big));
		smtpfix_tlsmemo_note(m, big, sizeof(big), 100, 60);
		assert_false(smtpfix_tlsmemo_known(m, big, sizeof(big), 100));
		smtpfix_tlsmemo_note(m, big, sizeof(big) - 1, 100, 60);
		assert_true(
		    smtpfix_tlsmemo_known(m, big, sizeof(big) - 1, 100));
	}
	/* No overflow near the end of time. */
	smtpfix_tlsmemo_note(m, K("x"), UINT64_MAX - 5, 60);
	assert_false(smtpfix_tlsmemo_known(m, K("x"), UINT64_MAX - 5));
}

/* Many more servers than slots: the table stays bounded, the newest
 * notes are kept, and nothing is found that was not noted. */
static void
test_bounded(void **state)
{
	struct smtpfix_tlsmemo *m = &memo;
	char key[64];
	unsigned i, kept;
	int n;

	(void)state;
	smtpfix_tlsmemo_init(m);
	for (i = 0; i < 10 * SMTPFIX_TLSMEMO_SLOTS; i++) {
		n = snprintf(key, sizeof(key), "[2001:db8::%x]:25", i);
		smtpfix_tlsmemo_note(m, key, (size_t)n, 1000 + i, 600);
		assert_true(smtpfix_tlsmemo_known(m, key, (size_t)n, 1000 + i));
	}
	kept = 0;
	for (i = 0; i < 10 * SMTPFIX_TLSMEMO_SLOTS; i++) {
		n = snprintf(key, sizeof(key), "[2001:db8::%x]:25", i);
		kept += (unsigned)smtpfix_tlsmemo_known(
		    m, key, (size_t)n, 1000 + 10 * SMTPFIX_TLSMEMO_SLOTS);
	}
	assert_true(kept > 0);
	assert_true(kept <= SMTPFIX_TLSMEMO_SLOTS);
	assert_false(smtpfix_tlsmemo_known(m, K("[2001:db8::ffff]:25"), 2000));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_note_and_expire),
	    cmocka_unit_test(test_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
