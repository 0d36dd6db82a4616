/*
 * nat/scope.c: non-global IPv4 ranges (RFC 6052 §3.1) and scoped IPv6
 * addresses (RFC 4291 §2.4, RFC 3974 §6).  Pure.
 *
 * RFC 6052 §3.1: "The Well-Known Prefix MUST NOT be used to represent
 * non-global IPv4 addresses, such as those defined in [RFC1918] or
 * listed in Section 3 of [RFC5735]."  RFC 5735 is now RFC 6890 (the
 * IANA special-purpose registry); the table below is RFC 5735 §3 plus
 * the shared address space of RFC 6598, which came after it and is not
 * global either.
 */
#include <sys/socket.h>

#include <netinet/in.h>

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "nat/scope.h"

struct scope_v4 {
	uint32_t net; /* host byte order */
	unsigned plen;
	int local;          /* host or link scope */
	const char *reason; /* token for log lines */
	const char *source; /* the document reserving the range */
};

#define V4(a, b, c, d)                                                         \
	(((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) |                       \
	    ((uint32_t)(c) << 8) | (uint32_t)(d))

/*
 * First match wins: 255.255.255.255 comes before 240.0.0.0/4, which
 * holds it, so it is named "broadcast".
 */
static const struct scope_v4 scope_v4[] = {
    /* RFC 1122 §3.2.1.3: "this host on this network"; RFC 6890 §2.2.2 */
    {V4(0, 0, 0, 0), 8, 1, "this-network", "RFC 1122"},
    {V4(10, 0, 0, 0), 8, 0, "private", "RFC 1918"},
    /* Carrier-grade NAT space: RFC 6598 §7, not global in RFC 6890 */
    {V4(100, 64, 0, 0), 10, 0, "shared", "RFC 6598"},
    {V4(127, 0, 0, 0), 8, 1, "loopback", "RFC 1122"},
    {V4(169, 254, 0, 0), 16, 1, "link-local", "RFC 3927"},
    {V4(172, 16, 0, 0), 12, 0, "private", "RFC 1918"},
    /* RFC 6890 §2.1: IETF protocol assignments */
    {V4(192, 0, 0, 0), 24, 0, "ietf-protocol", "RFC 6890"},
    /* TEST-NET-1, -2, -3: RFC 5737 §3 */
    {V4(192, 0, 2, 0), 24, 0, "documentation", "RFC 5737"},
    /* 6to4 relay anycast, RFC 3068, deprecated by RFC 7526; RFC 5735 §3
     * lists it, so RFC 6052 §3.1 keeps it out of the prefix */
    {V4(192, 88, 99, 0), 24, 0, "6to4-relay", "RFC 3068"},
    {V4(192, 168, 0, 0), 16, 0, "private", "RFC 1918"},
    /* Benchmarking: RFC 2544 Appendix C.2.2, RFC 6890 §2.2.2 */
    {V4(198, 18, 0, 0), 15, 0, "benchmarking", "RFC 2544"},
    {V4(198, 51, 100, 0), 24, 0, "documentation", "RFC 5737"},
    {V4(203, 0, 113, 0), 24, 0, "documentation", "RFC 5737"},
    {V4(224, 0, 0, 0), 4, 0, "multicast", "RFC 5771"},
    /* Limited broadcast: RFC 919 §7, never forwarded */
    {V4(255, 255, 255, 255), 32, 1, "broadcast", "RFC 919"},
    /* Class E: RFC 1112 §4, RFC 6890 §2.2.2 */
    {V4(240, 0, 0, 0), 4, 0, "reserved", "RFC 1112"},
};

static uint32_t
v4_host(const struct in_addr *a)
{
	const uint8_t *b = (const uint8_t *)&a->s_addr;

	return V4(b[0], b[1], b[2], b[3]);
}

static const struct scope_v4 *
v4_lookup(const struct in_addr *a)
{
	uint32_t h, mask;
	size_t i;

	if (a == NULL)
		return NULL;
	h = v4_host(a);
	for (i = 0; i < sizeof(scope_v4) / sizeof(scope_v4[0]); i++) {
		mask = scope_v4[i].plen == 0
		           ? 0
		           : UINT32_MAX << (32 - scope_v4[i].plen);
		if ((h & mask) == scope_v4[i].net)
			return &scope_v4[i];
	}
	return NULL;
}

int
nat_scope_v4_global(const struct in_addr *a)
{
	return a != NULL && v4_lookup(a) == NULL;
}

const char *
nat_scope_v4_reason(const struct in_addr *a)
{
	const struct scope_v4 *s = v4_lookup(a);

	return s == NULL ? NULL : s->reason;
}

const char *
nat_scope_v4_source(const struct in_addr *a)
{
	const struct scope_v4 *s = v4_lookup(a);

	return s == NULL ? NULL : s->source;
}

int
nat_scope_v4_local(const struct in_addr *a)
{
	const struct scope_v4 *s = v4_lookup(a);

	return s != NULL && s->local;
}

int
nat_scope_v6_scoped(const struct in6_addr *a)
{
	const uint8_t *b;
	size_t i;
	int zero;

	if (a == NULL)
		return 0;
	b = a->s6_addr;
	/* RFC 4291 §2.5.2 unspecified, §2.5.3 loopback: all zero but
	 * perhaps the last bit. */
	zero = 1;
	for (i = 0; i < 15; i++)
		if (b[i] != 0)
			zero = 0;
	if (zero && (b[15] == 0 || b[15] == 1))
		return 1;
	/* RFC 4291 §2.5.6 link-local fe80::/10; RFC 3879 site-local
	 * fec0::/10.  Together: the top 9 bits are 1111 1110 1. */
	if (b[0] == 0xfe && (b[1] & 0x80) == 0x80)
		return 1;
	/* RFC 4291 §2.7: ff00::/8, scope in the low nibble of octet 1;
	 * only 0xe is global. */
	if (b[0] == 0xff && (b[1] & 0x0f) != 0x0e)
		return 1;
	return 0;
}

static const char *
v6_refused(const struct in6_addr *a)
{
	static const uint8_t mapped[12] = {
	    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	static const uint8_t zero[12];
	const uint8_t *b = a->s6_addr;

	/* RFC 4291 §2.5.5.2: ::ffff:a.b.c.d is an IPv4 address in an IPv6
	 * socket's clothes; whatever it embeds, the IPv4 form is the one
	 * to write, and the one judged. */
	if (memcmp(b, mapped, 12) == 0)
		return "ipv4-mapped";
	if (memcmp(b, zero, 12) == 0) {
		/* RFC 4291 §2.5.2, §2.5.3 */
		if (memcmp(b + 12, zero, 3) == 0 && b[15] <= 1)
			return b[15] == 0 ? "unspecified" : "loopback";
		/* RFC 4291 §2.5.5.1: deprecated, never routed */
		return "ipv4-compatible";
	}
	/* RFC 4291 §2.5.6 */
	if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
		return "link-local";
	/* RFC 3879 */
	if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0)
		return "site-local";
	/* RFC 4291 §2.7: a group is no host, whatever its scope */
	if (b[0] == 0xff)
		return "multicast";
	return NULL;
}

const char *
nat_scope_dest_refused(const struct nat_addr *a)
{
	const struct scope_v4 *s;

	if (a == NULL)
		return "no-address";
	if (a->family == AF_INET6)
		return v6_refused(&a->u.v6);
	if (a->family != AF_INET)
		return "no-address";
	/* RFC 1122 §3.2.1.3 (this network, loopback), RFC 3927 (link),
	 * RFC 919 (broadcast): the table's host and link scopes; RFC 5771:
	 * a group is no host. */
	s = v4_lookup(&a->u.v4);
	if (s != NULL && (s->local || strcmp(s->reason, "multicast") == 0))
		return s->reason;
	return NULL;
}

int
nat_scope_v4_range(size_t i, struct in_addr *net, unsigned *plen, int *refused)
{
	const struct scope_v4 *s;
	uint32_t h;

	if (i >= sizeof(scope_v4) / sizeof(scope_v4[0]))
		return -1;
	s = &scope_v4[i];
	h = s->net;
	net->s_addr = htonl(h);
	*plen = s->plen;
	/* As nat_scope_dest_refused: host or link scope, or a group. */
	*refused = s->local || strcmp(s->reason, "multicast") == 0;
	return 0;
}
