/*
 * gateway/privs_test.c: which capabilities a configuration keeps.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "gateway/privs.h"

static void
test_needed(void **state)
{
	struct gw_config c;
	char n[128];

	(void)state;
	gw_config_defaults(&c);
	/* Port 25 listeners: bound at start, nothing kept for them. */
	assert_int_equal(gw_privs_needed(&c), 0);
	assert_string_equal(gw_privs_names(0, n, sizeof(n)), "none");
	c.transparent = 1;
	assert_int_equal(gw_privs_needed(&c), GW_PRIV_ADMIN);
	assert_string_equal(
	    gw_privs_names(gw_privs_needed(&c), n, sizeof(n)), "cap_net_admin");
	c.transparent = 0;
	c.packet.enable = 1;
	assert_int_equal(gw_privs_needed(&c), GW_PRIV_ADMIN | GW_PRIV_RAW);
	assert_string_equal(gw_privs_names(gw_privs_needed(&c), n, sizeof(n)),
	    "cap_net_admin,cap_net_raw");
	assert_string_equal(
	    gw_privs_names(GW_PRIV_BIND | GW_PRIV_RAW, n, sizeof(n)),
	    "cap_net_bind_service,cap_net_raw");
	/* The bpf engine loads its program after the change: CAP_BPF, and
	 * CAP_PERFMON for the verifier's packet arithmetic. */
	c.packet.engine = GW_PACKET_BPF;
	assert_int_equal(gw_privs_needed(&c),
	    GW_PRIV_ADMIN | GW_PRIV_RAW | GW_PRIV_BPF | GW_PRIV_PERFMON);
	assert_string_equal(gw_privs_names(gw_privs_needed(&c), n, sizeof(n)),
	    "cap_net_admin,cap_net_raw,cap_bpf,cap_perfmon");
	/* engine = bpf without the packet path needs nothing of it. */
	c.packet.enable = 0;
	assert_int_equal(gw_privs_needed(&c), 0);
}

/* A buffer too small for every name keeps whole names only. */
static void
test_names_short(void **state)
{
	char n[20];

	(void)state;
	assert_string_equal(
	    gw_privs_names(GW_PRIV_ADMIN | GW_PRIV_RAW, n, sizeof(n)),
	    "cap_net_admin");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_needed),
	    cmocka_unit_test(test_names_short),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
