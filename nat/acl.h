/*
 * nat/acl.h: access lists of IPv4 and IPv6 prefixes (RFC 4632 §3.1 CIDR
 * notation, RFC 4291 §2.3 for IPv6), for client and destination policy.
 * Pure: fixed capacity, nothing allocated, text is pointer plus length.
 */
#ifndef NAT_ACL_H
#define NAT_ACL_H

#include <stddef.h>

#include "nat/addr.h"

#define NAT_ACL_MAX 64

/* struct nat_acl flags: the list was one of the two words. */
#define NAT_ACL_ANY 0x1  /* "any": every address matches */
#define NAT_ACL_NONE 0x2 /* "none": no address matches */

/* Return codes of nat_cidr_parse and nat_acl_parse.  All are negative;
 * test "< 0", then name the code with nat_acl_error. */
#define NAT_ACL_ESYNTAX (-1)   /* not an address, "/len" malformed */
#define NAT_ACL_EPLEN (-2)     /* length over 32 (IPv4) or 128 (IPv6) */
#define NAT_ACL_EHOSTBITS (-3) /* bits set past the length */
#define NAT_ACL_EEMPTY (-4)    /* empty list, or empty entry (",,") */
#define NAT_ACL_EWORD (-5)     /* "any"/"none" not alone in the list */
#define NAT_ACL_EFULL (-6)     /* more than NAT_ACL_MAX entries */

struct nat_cidr {
	struct nat_addr addr; /* host bits are zero */
	unsigned plen;        /* 0..32 or 0..128 */
};

struct nat_acl {
	struct nat_cidr e[NAT_ACL_MAX];
	size_t n;
	int flags; /* NAT_ACL_ANY, NAT_ACL_NONE or 0 */
};

/*
 * Parses "192.0.2.0/24", "2001:db8::/32" or a bare address (a host
 * route: /32 or /128) from s[0..len), not NUL terminated, no blanks.
 * The length is 1 to 3 decimal digits, no sign, no leading zero.  0 on
 * success; NAT_ACL_ESYNTAX, NAT_ACL_EPLEN or NAT_ACL_EHOSTBITS
 * ("192.0.2.1/24": a typo for /32, or for 192.0.2.0/24?) on failure,
 * *out then untouched.  "any" is not a prefix: write 0.0.0.0/0 or ::/0.
 */
int nat_cidr_parse(const char *s, size_t len, struct nat_cidr *out);

/*
 * Parses a list of prefixes separated by commas and/or blanks (SP, TAB),
 * e.g. "192.0.2.0/24, 2001:db8::/32 198.51.100.7", or the single word
 * "any" or "none" (any case), which set out->flags.  Blanks may lead
 * and trail; a comma may not.  Families may be mixed.  0 on success, a
 * negative NAT_ACL_E* code on failure (*out then undefined).
 */
int nat_acl_parse(const char *s, size_t len, struct nat_acl *out);

/*
 * 1 if a lies in c; else 0.  An IPv4-mapped IPv6 address ::ffff:a.b.c.d
 * (RFC 4291 §2.5.5.2, what a dual-stack socket reports for an IPv4 peer)
 * lies in an IPv4 prefix as a.b.c.d does, and in IPv6 prefixes as
 * itself.
 */
int nat_cidr_match(const struct nat_cidr *c, const struct nat_addr *a);

/* 1 if a matches acl: NAT_ACL_ANY, or any entry by nat_cidr_match.
 * 0 for "none", an empty list, a NULL argument or a bad family. */
int nat_acl_match(const struct nat_acl *acl, const struct nat_addr *a);

/* A static, lower-case phrase for a NAT_ACL_E* code, for the caller's
 * "file:line: message"; "unknown error" for other values. */
const char *nat_acl_error(int code);

#endif
