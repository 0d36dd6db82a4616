/*
 * tests/bench/pairbench.c: loads N pairs into the nat/pair.h table and
 * times the load and the lookups (make bench, issue 5, W5).
 *
 *	pairbench N [lookups]
 *
 * Prints one line of key=value: pairs, load_ms (init plus N adds),
 * v4_ns, v6_ns (lookups of present addresses, in a random order so that
 * a big table is read as a cache-cold mail flow would read it), miss_ns
 * (absent addresses of both families) and table_kib.
 *
 * The keys are synthetic and live only in memory: IPv4 from 10.0.0.0/8
 * (i times an odd constant mod 2^24, a bijection, so neighbours do not
 * stay neighbours), IPv6 from 2001:db8::/32 (RFC 3849).
 */
#include <netinet/in.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nat/pair.h"

#define PB_MAX (1UL << 24)               /* distinct keys in 10/8 */
#define PB_SCRAMBLE UINT32_C(0x9e3779b1) /* odd */

static double
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void
key_v4(uint32_t i, struct in_addr *a)
{
	uint32_t x = (i * PB_SCRAMBLE) & 0xffffffu;

	a->s_addr = htonl(UINT32_C(0x0a000000) | x);
}

static void
key_v6(uint32_t i, struct in6_addr *a)
{
	uint32_t x = i * PB_SCRAMBLE;

	memset(a, 0, sizeof(*a));
	a->s6_addr[0] = 0x20;
	a->s6_addr[1] = 0x01;
	a->s6_addr[2] = 0x0d;
	a->s6_addr[3] = 0xb8;
	a->s6_addr[12] = (uint8_t)(x >> 24);
	a->s6_addr[13] = (uint8_t)(x >> 16);
	a->s6_addr[14] = (uint8_t)(x >> 8);
	a->s6_addr[15] = (uint8_t)x;
}

static uint64_t
xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static unsigned long
num(const char *s, unsigned long min, unsigned long max)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || n < min || n > max) {
		fprintf(stderr, "usage: pairbench N [lookups]\n");
		exit(2);
	}
	return n;
}

int
main(int argc, char *argv[])
{
	struct nat_pairs t;
	struct in_addr *q4, a4;
	struct in6_addr *q6, a6;
	unsigned long n, nl = 2000000, i;
	uint64_t seed = UINT64_C(0x2545f4914f6cdd1d), sum = 0;
	double t0, load, d4, d6, dm;
	const struct nat_pair *p;

	if (argc < 2 || argc > 3)
		num("", 1, 0);
	n = num(argv[1], 1, PB_MAX);
	if (argc == 3)
		nl = num(argv[2], 1, 100000000);

	/* Query keys first, outside the timed loops. */
	if ((q4 = malloc(nl * sizeof(*q4))) == NULL ||
	    (q6 = malloc(nl * sizeof(*q6))) == NULL) {
		perror("pairbench");
		return 1;
	}
	for (i = 0; i < nl; i++) {
		uint32_t k = (uint32_t)(xorshift(&seed) % n);

		key_v4(k, &q4[i]);
		key_v6(k, &q6[i]);
	}

	t0 = now_ns();
	if (nat_pairs_init(&t, n) != 0) {
		perror("pairbench: nat_pairs_init");
		return 1;
	}
	for (i = 0; i < n; i++) {
		key_v4((uint32_t)i, &a4);
		key_v6((uint32_t)i, &a6);
		if (nat_pairs_add(&t, &a4, &a6, (uint32_t)i) != 0) {
			fprintf(stderr, "pairbench: add %lu: %s\n", i,
			    strerror(errno));
			return 1;
		}
	}
	load = now_ns() - t0;

	t0 = now_ns();
	for (i = 0; i < nl; i++) {
		if ((p = nat_pairs_by_v4(&t, &q4[i])) == NULL) {
			fprintf(stderr, "pairbench: v4 key %lu missing\n", i);
			return 1;
		}
		sum += p->user;
	}
	d4 = now_ns() - t0;

	t0 = now_ns();
	for (i = 0; i < nl; i++) {
		if ((p = nat_pairs_by_v6(&t, &q6[i])) == NULL) {
			fprintf(stderr, "pairbench: v6 key %lu missing\n", i);
			return 1;
		}
		sum += p->user;
	}
	d6 = now_ns() - t0;

	/* Misses: 11.0.0.0/8 and 2001:db8:1::/48 hold no key. */
	for (i = 0; i < nl; i++) {
		q4[i].s_addr = htonl(ntohl(q4[i].s_addr) + 0x01000000u);
		q6[i].s6_addr[5] = 1;
	}
	t0 = now_ns();
	for (i = 0; i < nl; i++) {
		if (nat_pairs_by_v4(&t, &q4[i]) != NULL ||
		    nat_pairs_by_v6(&t, &q6[i]) != NULL) {
			fprintf(stderr, "pairbench: absent key %lu found\n", i);
			return 1;
		}
	}
	dm = now_ns() - t0;

	printf("pairs=%lu lookups=%lu load_ms=%.3f v4_ns=%.1f v6_ns=%.1f "
	       "miss_ns=%.1f table_kib=%.0f check=%llu\n",
	    n, nl, load / 1e6, d4 / (double)nl, d6 / (double)nl,
	    dm / (2. * (double)nl),
	    ((double)t.cap * sizeof(struct nat_pair) +
	        2. * (double)(t.hmask + 1) * sizeof(uint32_t)) /
	        1024.,
	    (unsigned long long)sum);
	nat_pairs_free(&t);
	free(q4);
	free(q6);
	return 0;
}
