/*
 * gateway/metrics_test.c: the exposition (Prometheus text format 0.0.4)
 * from counters set here.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "gateway/metrics.h"

static char out[256 * 1024];

static int
has(const char *line)
{
	char want[256];

	(void)snprintf(want, sizeof(want), "\n%s\n", line);
	return strstr(out, want) != NULL;
}

static void
test_render(void **state)
{
	size_t n;

	(void)state;
	/* Two workers' blocks, summed. */
	assert_int_equal(gw_metrics_init(2), 0);
	gw_metrics_worker(0);
	gw_metrics_count(GW_M_SESSIONS_OPENED, 2);
	gw_metrics_label(GW_MF_CLOSE, "quit", NULL);
	gw_metrics_label(GW_MF_REFUSE, "no_pair", "554 5.4.4");
	gw_metrics_open(3);
	gw_metrics_connect(0.0007); /* le 0.001 */
	gw_metrics_worker(1);
	gw_metrics_count(GW_M_SESSIONS_OPENED, 1);
	gw_metrics_label(GW_MF_CLOSE, "quit", NULL);
	gw_metrics_label(GW_MF_CLOSE, "timeout", NULL);
	gw_metrics_label(GW_MF_REFUSE, "no_pair", "554");
	gw_metrics_open(1);
	gw_metrics_connect(20.); /* over every bound */
	assert_int_equal(gw_metrics_open_total(), 4);
	n = gw_metrics_render(out, sizeof(out));
	assert_true(n > 0 && n < sizeof(out));
	assert_true(has("# TYPE smtp64_sessions_open gauge"));
	assert_true(has("smtp64_sessions_open 4"));
	assert_true(has("smtp64_sessions_opened_total 3"));
	assert_true(has("smtp64_sessions_closed_total{reason=\"quit\"} 2"));
	assert_true(has("smtp64_sessions_closed_total{reason=\"timeout\"} 1"));
	assert_true(
	    has("smtp64_refusals_total{reason=\"no_pair\",code=\"554\"} 2"));
	/* Cumulative buckets: 0 at 0.0005, 1 from 0.001, 2 at +Inf. */
	assert_true(
	    has("smtp64_upstream_connect_seconds_bucket{le=\"0.0005\"} 0"));
	assert_true(
	    has("smtp64_upstream_connect_seconds_bucket{le=\"0.001\"} 1"));
	assert_true(has("smtp64_upstream_connect_seconds_bucket{le=\"10\"} 1"));
	assert_true(
	    has("smtp64_upstream_connect_seconds_bucket{le=\"+Inf\"} 2"));
	assert_true(has("smtp64_upstream_connect_seconds_count 2"));
	/* A restarted worker's gauge starts again from 0. */
	gw_metrics_worker(1);
	assert_int_equal(gw_metrics_open_total(), 3);
}

/* Too small a buffer: 0, never a cut exposition. */
static void
test_render_short(void **state)
{
	(void)state;
	assert_int_equal(gw_metrics_render(out, 100), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_render),
	    cmocka_unit_test(test_render_short),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
