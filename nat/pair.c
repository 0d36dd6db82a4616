/*
 * nat/pair.c: the pair table.  One array of pairs in insertion order and
 * two open-addressing hash tables over it, one keyed by the IPv4 address
 * and one by the IPv6 address.  Slots hold pair index + 1 (0 is free);
 * probing is linear, and the slot count is a power of two at least twice
 * the capacity, so the load never passes 0.5, probes stay short and a
 * free slot always ends a probe.  Pairs are never removed, so there are
 * no tombstones.
 */
#include <netinet/in.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nat/pair.h"

/*
 * Slots store index + 1 in a uint32_t and the hash has 32 bits, so
 * 2 * cap slots must fit in 2^32; a billion pairs is far past any real
 * configuration anyway.
 */
#define PAIRS_CAP_MAX ((size_t)1 << 30)

/*
 * A 32-bit integer finaliser with full avalanche (xorshift-multiply, the
 * "lowbias32" constants from Chris Wellons' hash prospector): neighbouring
 * addresses, the common case in a configured range, land far apart.
 */
static uint32_t
mix32(uint32_t x)
{
	x ^= x >> 16;
	x *= UINT32_C(0x7feb352d);
	x ^= x >> 15;
	x *= UINT32_C(0x846ca68b);
	x ^= x >> 16;
	return x;
}

static uint32_t
hash_v4(const struct in_addr *a)
{
	uint32_t w;

	memcpy(&w, a, sizeof(w));
	return mix32(w);
}

static uint32_t
hash_v6(const struct in6_addr *a)
{
	uint32_t w, h = UINT32_C(0x9e3779b9);
	size_t i;

	/* Chain the mixer over the four words so every byte reaches every
	 * bit of the result. */
	for (i = 0; i < sizeof(a->s6_addr); i += sizeof(w)) {
		memcpy(&w, a->s6_addr + i, sizeof(w));
		h = mix32(h ^ w);
	}
	return h;
}

/*
 * The slot of h4 holding v4, or else the free slot that ends its probe.
 * Callers tell the two apart by h4[slot] != 0.
 */
static size_t
slot_v4(const struct nat_pairs *t, const struct in_addr *v4)
{
	size_t slot = hash_v4(v4) & t->hmask;
	uint32_t e;

	while ((e = t->h4[slot]) != 0) {
		if (memcmp(&t->pairs[e - 1].v4, v4, sizeof(*v4)) == 0)
			break;
		slot = (slot + 1) & t->hmask;
	}
	return slot;
}

static size_t
slot_v6(const struct nat_pairs *t, const struct in6_addr *v6)
{
	size_t slot = hash_v6(v6) & t->hmask;
	uint32_t e;

	while ((e = t->h6[slot]) != 0) {
		if (memcmp(&t->pairs[e - 1].v6, v6, sizeof(*v6)) == 0)
			break;
		slot = (slot + 1) & t->hmask;
	}
	return slot;
}

int
nat_pairs_init(struct nat_pairs *t, size_t cap)
{
	size_t nslots;

	memset(t, 0, sizeof(*t));
	if (cap > PAIRS_CAP_MAX) {
		errno = ENOMEM;
		return -1;
	}
	/* Load <= 0.5; at least two slots so an empty table still has a
	 * free slot to end a probe. */
	for (nslots = 2; nslots < 2 * cap; nslots <<= 1)
		;
	/* calloc(0) may return NULL: always ask for one pair. */
	t->pairs = calloc(cap > 0 ? cap : 1, sizeof(*t->pairs));
	t->h4 = calloc(nslots, sizeof(*t->h4));
	t->h6 = calloc(nslots, sizeof(*t->h6));
	if (t->pairs == NULL || t->h4 == NULL || t->h6 == NULL) {
		nat_pairs_free(t);
		errno = ENOMEM;
		return -1;
	}
	t->cap = cap;
	t->hmask = nslots - 1;
	return 0;
}

void
nat_pairs_free(struct nat_pairs *t)
{
	free(t->pairs);
	free(t->h4);
	free(t->h6);
	memset(t, 0, sizeof(*t));
}

int
nat_pairs_add(struct nat_pairs *t, const struct in_addr *v4,
    const struct in6_addr *v6, uint32_t user)
{
	size_t s4, s6;
	struct nat_pair *p;

	if (t->h4 == NULL) {
		errno = ENOSPC;
		return -1;
	}
	/* Look both addresses up before touching either table, so a
	 * refused pair leaves no half-inserted entry behind. */
	s4 = slot_v4(t, v4);
	s6 = slot_v6(t, v6);
	if (t->h4[s4] != 0 || t->h6[s6] != 0) {
		errno = EEXIST;
		return -1;
	}
	if (t->n >= t->cap) {
		errno = ENOSPC;
		return -1;
	}
	p = &t->pairs[t->n];
	p->v4 = *v4;
	p->v6 = *v6;
	p->user = user;
	t->n++;
	/* n <= cap <= PAIRS_CAP_MAX, so index + 1 fits. */
	t->h4[s4] = (uint32_t)t->n;
	t->h6[s6] = (uint32_t)t->n;
	return 0;
}

const struct nat_pair *
nat_pairs_by_v4(const struct nat_pairs *t, const struct in_addr *v4)
{
	size_t slot;

	if (t->h4 == NULL)
		return NULL;
	slot = slot_v4(t, v4);
	return t->h4[slot] != 0 ? &t->pairs[t->h4[slot] - 1] : NULL;
}

const struct nat_pair *
nat_pairs_by_v6(const struct nat_pairs *t, const struct in6_addr *v6)
{
	size_t slot;

	if (t->h6 == NULL)
		return NULL;
	slot = slot_v6(t, v6);
	return t->h6[slot] != 0 ? &t->pairs[t->h6[slot] - 1] : NULL;
}
