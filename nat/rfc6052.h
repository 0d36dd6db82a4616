/*
 * nat/rfc6052.h: IPv4-embedded IPv6 addresses (RFC 6052 §2.2), for the
 * well-known prefix 64:ff9b::/96 and network-specific prefixes of length
 * 32, 40, 48, 56, 64 or 96.  Pure.
 */
#ifndef NAT_RFC6052_H
#define NAT_RFC6052_H

#include <netinet/in.h>

/* RFC 6052 §2.1 */
#define NAT_6052_WKP "64:ff9b::"

/* 0 if plen is one of the six lengths and the prefix has no bits set
 * past plen nor in the u octet (bits 64-71, RFC 6052 §2.2); else -1. */
int nat_6052_prefix_valid(const struct in6_addr *prefix, unsigned plen);

/* Builds prefix + v4 (+ zero u octet and suffix) into *out; bits of
 * prefix past plen are ignored (check them once with
 * nat_6052_prefix_valid).  0, or -1 if plen is not one of the six
 * lengths. */
int nat_6052_embed(const struct in6_addr *prefix, unsigned plen,
    const struct in_addr *v4, struct in6_addr *out);

/*
 * Recovers the IPv4 address embedded in a.  0 on success; -1 if a is not
 * under prefix/plen, or its u octet is not zero (RFC 6052 §2.2: "MUST be
 * set to zero"), or plen is invalid.  Suffix bits are ignored, as
 * RFC 6052 §2.2 asks of translators.
 */
int nat_6052_extract(const struct in6_addr *prefix, unsigned plen,
    const struct in6_addr *a, struct in_addr *out);

#endif
