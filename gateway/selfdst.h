/*
 * gateway/selfdst.h: is a destination the gateway's own listener?  A pair
 * or prefix that leads back to an address the gateway listens on is a
 * routing loop (RFC 3463 X.4.6); caught here before any connection is
 * made, the client gets "554 5.4.6" and no second session starts.  This
 * does not depend on which worker a returning connection would reach.
 */
#ifndef GW_SELFDST_H
#define GW_SELFDST_H

#include <stddef.h>

#include "gateway/config.h"

/*
 * Pure: the listener of listen[0..n) that dst:port would reach, as an
 * index, or -1.  A wildcard listener matches every address of its family
 * (whether dst is local is for gw_selfdst to ask).  *wild is set to 1
 * when the match is a wildcard.
 */
int gw_selfdst_match(const struct gw_listen *listen, size_t n,
    const struct nat_addr *dst, unsigned port, int *wild);

/*
 * 1 when dst:port is one of cfg's listeners on this host: a listener
 * bound to dst itself, or a wildcard of dst's family on that port when dst
 * is an address of the host (a datagram socket can bind it).  Else 0.
 */
int gw_selfdst(
    const struct gw_config *cfg, const struct nat_addr *dst, unsigned port);

#endif
