/*
 * gateway/uptable.c: see uptable.h.
 */
#include <sys/mman.h>
#include <sys/socket.h>

#include <stdint.h>
#include <string.h>

#include "gateway/uptable.h"

#define WINDOW 64
#define SLOTS_MAX ((size_t)1 << 20)

enum { FREE = 0, BUSY, USED };

struct slot {
	uint32_t state;
	uint16_t port;
	uint8_t family;
	uint8_t owner;
	uint8_t addr[16];
};

static struct slot *tab;
static size_t mask;
static uint8_t owner;

int
gw_uptable_init(size_t sessions)
{
	size_t n = 256;
	void *p;

	/* At most two thirds full when every session has its upstream:
	 * the 64-slot window then all but never fills, and no more pages
	 * than that (every one gets touched: the hash spreads the entries)
	 * count against the memory an idle session costs. */
	while (n < sessions + sessions / 2 && n < SLOTS_MAX)
		n *= 2;
	p = mmap(NULL, n * sizeof(struct slot), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	tab = p;
	mask = n - 1;
	return 0;
}

void
gw_uptable_owner(unsigned worker)
{
	owner = (uint8_t)worker;
}

static void
key(const struct nat_addr *a, uint8_t out[16])
{
	memset(out, 0, 16);
	if (a->family == AF_INET)
		memcpy(out, &a->u.v4, 4);
	else
		memcpy(out, a->u.v6.s6_addr, 16);
}

static size_t
home(const uint8_t k[16], unsigned port)
{
	uint32_t h = UINT32_C(0x811c9dc5);
	size_t i;

	for (i = 0; i < 16; i++)
		h = (h ^ k[i]) * UINT32_C(0x01000193);
	h = (h ^ port) * UINT32_C(0x01000193);
	return h & mask;
}

size_t
gw_uptable_add(const struct nat_addr *a, unsigned port)
{
	uint8_t k[16];
	size_t i, j;

	if (tab == NULL)
		return 0;
	key(a, k);
	i = home(k, port);
	for (j = 0; j < WINDOW; j++) {
		struct slot *s = &tab[(i + j) & mask];
		uint32_t want = FREE;

		if (!__atomic_compare_exchange_n(&s->state, &want, BUSY, 0,
		        __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			continue;
		memcpy(s->addr, k, 16);
		s->port = (uint16_t)port;
		s->family = (uint8_t)a->family;
		s->owner = owner;
		__atomic_store_n(&s->state, USED, __ATOMIC_RELEASE);
		return ((i + j) & mask) + 1;
	}
	return 0;
}

void
gw_uptable_del(size_t handle)
{
	if (tab == NULL || handle == 0 || handle > mask + 1)
		return;
	__atomic_store_n(&tab[handle - 1].state, FREE, __ATOMIC_RELEASE);
}

int
gw_uptable_has(const struct nat_addr *a, unsigned port)
{
	uint8_t k[16];
	size_t i, j;

	if (tab == NULL)
		return 0;
	key(a, k);
	i = home(k, port);
	for (j = 0; j < WINDOW; j++) {
		const struct slot *s = &tab[(i + j) & mask];

		if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != USED)
			continue;
		if (s->port == port && s->family == a->family &&
		    memcmp(s->addr, k, 16) == 0)
			return 1;
	}
	return 0;
}

void
gw_uptable_forget(unsigned w)
{
	size_t i;

	for (i = 0; tab != NULL && i <= mask; i++)
		if (__atomic_load_n(&tab[i].state, __ATOMIC_ACQUIRE) == USED &&
		    tab[i].owner == (uint8_t)w)
			__atomic_store_n(&tab[i].state, FREE, __ATOMIC_RELEASE);
}
