/*
 * nat/fallback.h: where a message refused over IPv6 with 4.4.8 goes over
 * IPv4 in route mode (draft-martin-smtp-ipv6-to-ipv4-fallback §3.2,
 * Appendix A.3.1): the receiver publishes single-stack MX hosts, an
 * IPv6 one and an IPv4 one at each preference, and a sender that is
 * refused over IPv6 retries at once on the IPv4 host of the same
 * preference (or, failing that, of the next one).  Pure: reads the
 * targets nat/mx.h ordered; no allocation.
 */
#ifndef NAT_FALLBACK_H
#define NAT_FALLBACK_H

#include <stddef.h>

#include "nat/mx.h"

/*
 * The target to retry on after targets[cur] (an IPv6 address) refused
 * with 4.4.8: the first IPv4 target of the same preference, else the
 * first IPv4 target of the lowest preference above it that has one.
 * Returns its index
 * into targets, or -1 if there is none (the refusal then reaches the
 * client) or targets[cur] is not IPv6.
 */
long nat_fallback_pick(
    const struct nat_mx_target *targets, size_t n, size_t cur);

#endif
