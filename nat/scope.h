/*
 * nat/scope.h: address scope.  Which IPv4 addresses may sit behind the
 * well-known prefix 64:ff9b::/96 (RFC 6052 §3.1), and which IPv4 and IPv6
 * addresses mean something only on one host or link, so must not cross
 * the gateway in an SMTP address literal (RFC 3974 §6).  Pure: a static
 * table, no state.
 */
#ifndef NAT_SCOPE_H
#define NAT_SCOPE_H

#include <netinet/in.h>

#include "nat/addr.h"

/*
 * 1 if a (network byte order) is global: RFC 6052 §3.1 lets it be
 * embedded in the well-known prefix; 0 if it falls in one of the
 * non-global ranges of RFC 6890, RFC 5735 §3, RFC 5737 and RFC 6598.
 */
int nat_scope_v4_global(const struct in_addr *a);

/*
 * Why a is not global: a short static token for log lines ("private",
 * "loopback", "documentation", "shared", "link-local", "this-network",
 * "ietf-protocol", "6to4-relay", "benchmarking", "multicast",
 * "reserved", "broadcast"), or NULL if a is global.  Never free it.
 */
const char *nat_scope_v4_reason(const struct in_addr *a);

/* The document that sets a's range aside ("RFC 1918", "RFC 5737", ...),
 * static; NULL if a is global. */
const char *nat_scope_v4_source(const struct in_addr *a);

/*
 * 1 if a means "this host" or "this link" only: 0.0.0.0/8, 127.0.0.0/8,
 * 169.254.0.0/16, 255.255.255.255.  Such an address in a mail address
 * literal names a different machine on each side of the gateway; the
 * other non-global ranges (private, documentation, ...) are still
 * unambiguous inside one site.  Else 0.
 */
int nat_scope_v4_local(const struct in_addr *a);

/*
 * 1 if a is not of global scope: unspecified ::, loopback ::1,
 * link-local fe80::/10, site-local fec0::/10 (deprecated by RFC 3879,
 * but RFC 3974 §6 is about it), or multicast ff00::/8 of any scope but
 * global (RFC 4291 §2.7: scope 0xe).  Else 0.  An IPv4-mapped address
 * (::ffff:0:0/96) is not judged here: see nat_scope_v4_local.
 */
int nat_scope_v6_scoped(const struct in6_addr *a);

/*
 * Why a may never be a destination of the gateway, whoever chose it: a
 * pair, the address embedded under a [nat64] prefix (RFC 6052 §2.2), a
 * packet's mapping, or any later source of routes.  Such an address
 * names the gateway host itself or its link (a session sent there reaches
 * the host's own services, where a local MTA that trusts loopback turns
 * into an open relay), a group, or no host at all.  Every destination
 * decision calls this one function, at configuration time and again when
 * the destination is used.
 *
 * IPv4: 0.0.0.0/8, 127.0.0.0/8, 169.254.0.0/16, 224.0.0.0/4 and
 * 255.255.255.255.  IPv6: ::, ::1, fe80::/10, fec0::/10, ff00::/8, and
 * the IPv4-mapped ::ffff:0:0/96 (RFC 4291 §2.5.5.2: on a dual-stack
 * socket ::ffff:127.0.0.1 is IPv4 loopback) and IPv4-compatible ::/96
 * (RFC 4291 §2.5.5.1, deprecated) forms.
 *
 * Returns a short static token for messages and log lines ("this-network",
 * "loopback", "link-local", "multicast", "broadcast", "unspecified",
 * "site-local", "ipv4-mapped", "ipv4-compatible"; "no-address" for a
 * NULL a or a family other than AF_INET and AF_INET6), or NULL if a may
 * be a destination.  Never free it.
 */
const char *nat_scope_dest_refused(const struct nat_addr *a);

/*
 * The i-th IPv4 range of the table nat_scope_v4_global and
 * nat_scope_dest_refused read, for a longest-prefix-match copy of it (a
 * fast path's): the table is read first match first, and the only range
 * inside another (255.255.255.255 in 240.0.0.0/4) comes before it, so the
 * longest match gives the same answer.  0 with *net (network byte order),
 * *plen and *refused (1: nat_scope_dest_refused refuses the range) set,
 * or -1 past the last range.
 */
int nat_scope_v4_range(
    size_t i, struct in_addr *net, unsigned *plen, int *refused);

#endif
