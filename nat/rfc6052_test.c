/*
 * nat/rfc6052_test.c: unit tests of nat/rfc6052.c, built on the example
 * table of RFC 6052 §2.4.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "nat/rfc6052.h"

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

/* RFC 6052 §2.4, Table 1, written as the RFC writes it, then the
 * well-known prefix example of the same section. */
static const struct {
	const char *prefix;
	unsigned plen;
	const char *v4;
	const char *v6;
} examples[] = {
    {"2001:db8::", 32, "192.0.2.33", "2001:db8:c000:221::"},
    {"2001:db8:100::", 40, "192.0.2.33", "2001:db8:1c0:2:21::"},
    {"2001:db8:122::", 48, "192.0.2.33", "2001:db8:122:c000:2:2100::"},
    {"2001:db8:122:300::", 56, "192.0.2.33", "2001:db8:122:3c0:0:221::"},
    {"2001:db8:122:344::", 64, "192.0.2.33", "2001:db8:122:344:c0:2:2100::"},
    {"2001:db8:122:344::", 96, "192.0.2.33", "2001:db8:122:344::192.0.2.33"},
    {NAT_6052_WKP, 96, "192.0.2.33", "64:ff9b::192.0.2.33"},
};
#define NEXAMPLES (sizeof(examples) / sizeof(examples[0]))

static void
test_rfc_table_embed(void **state)
{
	struct in6_addr p, got, want;
	struct in_addr a;
	size_t i;

	(void)state;
	for (i = 0; i < NEXAMPLES; i++) {
		p = v6(examples[i].prefix);
		a = v4(examples[i].v4);
		want = v6(examples[i].v6);
		memset(&got, 0xa5, sizeof(got));
		assert_int_equal(
		    nat_6052_embed(&p, examples[i].plen, &a, &got), 0);
		assert_memory_equal(&got, &want, sizeof(want));
	}
}

static void
test_rfc_table_extract(void **state)
{
	struct in6_addr p, a;
	struct in_addr got, want;
	size_t i;

	(void)state;
	for (i = 0; i < NEXAMPLES; i++) {
		p = v6(examples[i].prefix);
		a = v6(examples[i].v6);
		want = v4(examples[i].v4);
		memset(&got, 0xa5, sizeof(got));
		assert_int_equal(
		    nat_6052_extract(&p, examples[i].plen, &a, &got), 0);
		assert_memory_equal(&got, &want, sizeof(want));
	}
}

static void
test_rfc_table_prefixes_valid(void **state)
{
	struct in6_addr p;
	size_t i;

	(void)state;
	for (i = 0; i < NEXAMPLES; i++) {
		p = v6(examples[i].prefix);
		assert_int_equal(
		    nat_6052_prefix_valid(&p, examples[i].plen), 0);
	}
}

static const unsigned bad_plens[] = {0, 1, 8, 16, 24, 31, 33, 39, 63, 65, 72,
    80, 88, 95, 97, 104, 112, 120, 128, 129, 256, 0xffffffffU};
#define NBAD_PLENS (sizeof(bad_plens) / sizeof(bad_plens[0]))

static void
test_bad_plen(void **state)
{
	struct in6_addr p = v6("2001:db8::"), a = v6("2001:db8:c000:221::");
	struct in6_addr out6, before6;
	struct in_addr v = v4("192.0.2.33"), out4, before4;
	size_t i;

	(void)state;
	for (i = 0; i < NBAD_PLENS; i++) {
		memset(&out6, 0xa5, sizeof(out6));
		memset(&out4, 0xa5, sizeof(out4));
		before6 = out6;
		before4 = out4;
		assert_int_equal(nat_6052_prefix_valid(&p, bad_plens[i]), -1);
		assert_int_equal(
		    nat_6052_embed(&p, bad_plens[i], &v, &out6), -1);
		assert_int_equal(
		    nat_6052_extract(&p, bad_plens[i], &a, &out4), -1);
		/* Nothing written on failure. */
		assert_memory_equal(&out6, &before6, sizeof(out6));
		assert_memory_equal(&out4, &before4, sizeof(out4));
	}
}

static void
test_prefix_bits_past_plen(void **state)
{
	struct in6_addr p;

	(void)state;
	p = v6("2001:db8::1");
	assert_int_equal(nat_6052_prefix_valid(&p, 32), -1);
	assert_int_equal(nat_6052_prefix_valid(&p, 96), -1);
	p = v6("2001:db8:100::");
	assert_int_equal(nat_6052_prefix_valid(&p, 32), -1);
	assert_int_equal(nat_6052_prefix_valid(&p, 40), 0);
	p = v6("2001:db8:122:344::");
	assert_int_equal(nat_6052_prefix_valid(&p, 56), -1);
	assert_int_equal(nat_6052_prefix_valid(&p, 64), 0);
	p = v6("64:ff9b::1:0:0");
	assert_int_equal(nat_6052_prefix_valid(&p, 96), 0);
	p = v6("64:ff9b::1");
	assert_int_equal(nat_6052_prefix_valid(&p, 96), -1);
}

static void
test_prefix_u_octet(void **state)
{
	struct in6_addr p;

	(void)state;
	/* RFC 6052 §2.2: a /96 prefix must leave bits 64-71 zero. */
	p = v6("2001:db8:122:344:100::");
	assert_int_equal(nat_6052_prefix_valid(&p, 96), -1);
	p = v6("2001:db8:122:344:8000::");
	assert_int_equal(nat_6052_prefix_valid(&p, 96), -1);
	p = v6("2001:db8:122:344:ff::");
	assert_int_equal(nat_6052_prefix_valid(&p, 96), 0);
}

static void
test_extract_u_octet_nonzero(void **state)
{
	struct in6_addr p, a;
	struct in_addr out;

	(void)state;
	p = v6("2001:db8::");
	a = v6("2001:db8:c000:221:100::");
	assert_int_equal(nat_6052_extract(&p, 32, &a, &out), -1);
	p = v6("2001:db8:100::");
	a = v6("2001:db8:1c0:2:8021::");
	assert_int_equal(nat_6052_extract(&p, 40, &a, &out), -1);
	p = v6("2001:db8:122::");
	a = v6("2001:db8:122:c000:102:2100::");
	assert_int_equal(nat_6052_extract(&p, 48, &a, &out), -1);
	p = v6("2001:db8:122:300::");
	a = v6("2001:db8:122:3c0:ff00:221::");
	assert_int_equal(nat_6052_extract(&p, 56, &a, &out), -1);
	p = v6("2001:db8:122:344::");
	a = v6("2001:db8:122:344:1c0:2:2100:0");
	assert_int_equal(nat_6052_extract(&p, 64, &a, &out), -1);
	/* A /96 prefix that breaks the rule is refused at extraction
	 * too, so embed and extract never disagree. */
	p = v6("2001:db8:122:344:100::");
	a = v6("2001:db8:122:344:100::192.0.2.33");
	assert_int_equal(nat_6052_extract(&p, 96, &a, &out), -1);
}

static void
test_extract_outside_prefix(void **state)
{
	struct in6_addr p, a;
	struct in_addr out;

	(void)state;
	p = v6("2001:db8::");
	a = v6("2001:db9:c000:221::");
	assert_int_equal(nat_6052_extract(&p, 32, &a, &out), -1);
	p = v6("2001:db8:100::");
	a = v6("2001:db8:2c0:2:21::");
	assert_int_equal(nat_6052_extract(&p, 40, &a, &out), -1);
	p = v6("2001:db8:122:344::");
	a = v6("2001:db8:122:345:c0:2:2100:0");
	assert_int_equal(nat_6052_extract(&p, 64, &a, &out), -1);
	p = v6(NAT_6052_WKP);
	a = v6("64:ff9a::192.0.2.33");
	assert_int_equal(nat_6052_extract(&p, 96, &a, &out), -1);
	a = v6("64:ff9b::1:192.0.2.33");
	assert_int_equal(nat_6052_extract(&p, 96, &a, &out), -1);
	a = v6("::ffff:192.0.2.33");
	assert_int_equal(nat_6052_extract(&p, 96, &a, &out), -1);
}

static void
test_extract_ignores_suffix(void **state)
{
	struct in6_addr p, a;
	struct in_addr out, want = v4("192.0.2.33");

	(void)state;
	/* RFC 6052 §2.2: a translator ignores non-zero suffix bits. */
	p = v6("2001:db8::");
	a = v6("2001:db8:c000:221:0:1:2:3");
	assert_int_equal(nat_6052_extract(&p, 32, &a, &out), 0);
	assert_memory_equal(&out, &want, sizeof(out));
	p = v6("2001:db8:122:344::");
	a = v6("2001:db8:122:344:c0:2:2100:ffff");
	assert_int_equal(nat_6052_extract(&p, 64, &a, &out), 0);
	assert_memory_equal(&out, &want, sizeof(out));
}

static void
test_embed_zeroes_u_and_suffix(void **state)
{
	struct in6_addr p, got, want;
	struct in_addr a = v4("255.255.255.255");

	(void)state;
	/* Stray bits past plen in the prefix are not copied. */
	p = v6("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff");
	assert_int_equal(nat_6052_embed(&p, 32, &a, &got), 0);
	want = v6("2001:db8:ffff:ffff::");
	assert_memory_equal(&got, &want, sizeof(want));
	assert_int_equal(nat_6052_embed(&p, 40, &a, &got), 0);
	want = v6("2001:db8:ffff:ffff:ff::");
	assert_memory_equal(&got, &want, sizeof(want));
	assert_int_equal(nat_6052_embed(&p, 56, &a, &got), 0);
	want = v6("2001:db8:ffff:ffff:ff:ffff::");
	assert_memory_equal(&got, &want, sizeof(want));
	assert_int_equal(nat_6052_embed(&p, 64, &a, &got), 0);
	want = v6("2001:db8:ffff:ffff:ff:ffff:ff00:0");
	assert_memory_equal(&got, &want, sizeof(want));
}

static void
test_roundtrip_all_lengths(void **state)
{
	static const unsigned plens[] = {32, 40, 48, 56, 64, 96};
	struct in6_addr base = v6("2001:db8:aabb:ccdd::"), p, e;
	struct in_addr a, back;
	size_t i;
	uint32_t x;

	(void)state;
	for (i = 0; i < sizeof(plens) / sizeof(plens[0]); i++) {
		p = base;
		memset(p.s6_addr + plens[i] / 8, 0, 16 - plens[i] / 8);
		assert_int_equal(nat_6052_prefix_valid(&p, plens[i]), 0);
		for (x = 0; x < 5000; x++) {
			a.s_addr = htonl(x * UINT32_C(2654435761));
			assert_int_equal(
			    nat_6052_embed(&p, plens[i], &a, &e), 0);
			assert_int_equal(e.s6_addr[8], 0);
			assert_int_equal(
			    nat_6052_extract(&p, plens[i], &e, &back), 0);
			assert_memory_equal(&a, &back, sizeof(a));
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rfc_table_embed),
	    cmocka_unit_test(test_rfc_table_extract),
	    cmocka_unit_test(test_rfc_table_prefixes_valid),
	    cmocka_unit_test(test_bad_plen),
	    cmocka_unit_test(test_prefix_bits_past_plen),
	    cmocka_unit_test(test_prefix_u_octet),
	    cmocka_unit_test(test_extract_u_octet_nonzero),
	    cmocka_unit_test(test_extract_outside_prefix),
	    cmocka_unit_test(test_extract_ignores_suffix),
	    cmocka_unit_test(test_embed_zeroes_u_and_suffix),
	    cmocka_unit_test(test_roundtrip_all_lengths),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
