/*
 * gateway/tally.c: see tally.h.
 */
#include <sys/socket.h>

#include <stdlib.h>
#include <string.h>

#include "gateway/tally.h"

#define TALLY_MIN 64

static uint32_t
mix(uint32_t h, uint32_t w)
{
	h ^= w;
	h *= UINT32_C(0x7feb352d);
	h ^= h >> 15;
	h *= UINT32_C(0x846ca68b);
	h ^= h >> 16;
	return h;
}

static size_t
hash(const struct nat_addr *a, unsigned port)
{
	const uint8_t *p =
	    a->family == AF_INET ? (const uint8_t *)&a->u.v4 : a->u.v6.s6_addr;
	size_t n = a->family == AF_INET ? 4 : 16, i;
	uint32_t h = UINT32_C(0x9e3779b9) ^ port, w;

	for (i = 0; i < n; i += 4) {
		memcpy(&w, p + i, 4);
		h = mix(h, w);
	}
	return h;
}

static int
same(const struct gw_tally_slot *s, const struct nat_addr *a, unsigned port)
{
	return s->count != 0 && s->port == port && nat_addr_eq(&s->addr, a);
}

/* The slot holding (a, port), or the free slot that ends its probe. */
static size_t
find(const struct gw_tally *t, const struct nat_addr *a, unsigned port)
{
	size_t i = hash(a, port) & t->mask;

	while (t->slot[i].count != 0 && !same(&t->slot[i], a, port))
		i = (i + 1) & t->mask;
	return i;
}

void
gw_tally_init(struct gw_tally *t)
{
	memset(t, 0, sizeof(*t));
}

void
gw_tally_free(struct gw_tally *t)
{
	free(t->slot);
	memset(t, 0, sizeof(*t));
}

static int
grow(struct gw_tally *t)
{
	size_t n = t->slot == NULL ? TALLY_MIN : (t->mask + 1) * 2, i;
	struct gw_tally old = *t;

	if ((t->slot = calloc(n, sizeof(*t->slot))) == NULL) {
		*t = old;
		return -1;
	}
	t->mask = n - 1;
	for (i = 0; old.slot != NULL && i <= old.mask; i++)
		if (old.slot[i].count != 0)
			t->slot[find(t, &old.slot[i].addr, old.slot[i].port)] =
			    old.slot[i];
	free(old.slot);
	return 0;
}

int
gw_tally_add(struct gw_tally *t, const struct nat_addr *a, unsigned port)
{
	size_t i;

	/* Load at most one half: probes stay short. */
	if ((t->slot == NULL || (t->used + 1) * 2 > t->mask + 1) &&
	    grow(t) != 0)
		return -1;
	i = find(t, a, port);
	if (t->slot[i].count == 0) {
		t->slot[i].addr = *a;
		t->slot[i].port = (uint16_t)port;
		t->used++;
	}
	t->slot[i].count++;
	return 0;
}

void
gw_tally_sub(struct gw_tally *t, const struct nat_addr *a, unsigned port)
{
	size_t i, j, k;

	if (t->slot == NULL)
		return;
	i = find(t, a, port);
	if (t->slot[i].count == 0 || --t->slot[i].count > 0)
		return;
	t->used--;
	/* Backward-shift deletion: pull later members of the probe run
	 * into the hole so every probe still ends at a free slot. */
	for (j = i;;) {
		j = (j + 1) & t->mask;
		if (t->slot[j].count == 0)
			break;
		k = hash(&t->slot[j].addr, t->slot[j].port) & t->mask;
		/* Move j to i unless its home k lies cyclically in (i, j]. */
		if ((i <= j) ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		t->slot[i] = t->slot[j];
		i = j;
	}
	memset(&t->slot[i], 0, sizeof(t->slot[i]));
}

uint32_t
gw_tally_get(const struct gw_tally *t, const struct nat_addr *a, unsigned port)
{
	if (t->slot == NULL)
		return 0;
	return t->slot[find(t, a, port)].count;
}
