/*
 * gateway/tally.h: counts keyed by address and port, for the accept path:
 * sessions per client address (max_sessions_per_client) and the local
 * ends of our own upstream connections (a connection that comes back to
 * us is a routing loop).  Open addressing with linear probing and
 * backward-shift deletion, so lookups stay O(1) with many sessions held
 * and removal leaves no tombstones.  Grows by doubling; never shrinks.
 */
#ifndef GW_TALLY_H
#define GW_TALLY_H

#include <stddef.h>
#include <stdint.h>

#include "nat/addr.h"

struct gw_tally_slot {
	struct nat_addr addr;
	uint16_t port;
	uint32_t count; /* 0: free */
};

struct gw_tally {
	struct gw_tally_slot *slot; /* owned */
	size_t mask;                /* slots - 1 */
	size_t used;
};

void gw_tally_init(struct gw_tally *t);
void gw_tally_free(struct gw_tally *t);
/* Adds one to (addr, port).  0, or -1 if memory ran out (nothing
 * changed). */
int gw_tally_add(struct gw_tally *t, const struct nat_addr *a, unsigned port);
/* Takes one away; a count that reaches zero frees its slot. */
void gw_tally_sub(struct gw_tally *t, const struct nat_addr *a, unsigned port);
uint32_t gw_tally_get(
    const struct gw_tally *t, const struct nat_addr *a, unsigned port);

#endif
