/*
 * gateway/uptable.h: the local ends of every worker's upstream
 * connections, in one table all workers share (a MAP_SHARED mapping made
 * before the fork).  With workers the kernel steers a client's
 * connections to one worker by its address (gw_listener_steer), but a
 * connection of worker A that comes back to the gateway (a routing loop)
 * arrives from the gateway's own address and may land on worker B: B
 * finds A's socket here.
 *
 * Lock-free: a slot is claimed with a compare-and-swap, filled, then
 * published; a lookup scans a fixed window from the key's home slot.  A
 * full window leaves the connection out (the owning worker's own tally
 * still sees it).  Without gw_uptable_init every call does nothing.
 *
 * A socket is recorded once connect(2) has returned (its local port is
 * known only then).  A returning connection that another worker accepts
 * within those microseconds is not seen as a loop at that hop; it opens
 * a session whose own upstream connection comes back from the same
 * address, meets the same worker, and is caught there.
 */
#ifndef GW_UPTABLE_H
#define GW_UPTABLE_H

#include <stddef.h>

#include "nat/addr.h"

/* Sized for `sessions` connections at once (over all workers).  0, or
 * -1 with errno. */
int gw_uptable_init(size_t sessions);
/* This process's worker number, stored with each of its entries. */
void gw_uptable_owner(unsigned worker);
/* Records (a, port); returns a handle for gw_uptable_del, 0 if not
 * recorded. */
size_t gw_uptable_add(const struct nat_addr *a, unsigned port);
void gw_uptable_del(size_t handle);
/* 1 if some worker holds an upstream socket bound to (a, port). */
int gw_uptable_has(const struct nat_addr *a, unsigned port);
/* Drops every entry of worker w (it died; the supervisor calls this). */
void gw_uptable_forget(unsigned w);

#endif
