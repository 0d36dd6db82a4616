/*
 * nat/rfc6052.c: IPv4-embedded IPv6 addresses, RFC 6052 §2.2.
 *
 *	prefix length	octets holding the IPv4 address (octet 8 is u)
 *	32		 4  5  6  7
 *	40		 5  6  7  9
 *	48		 6  7  9 10
 *	56		 7  9 10 11
 *	64		 9 10 11 12
 *	96		12 13 14 15
 *
 * Every allowed length is a multiple of 8, so the work is octet copies:
 * the IPv4 octets follow the prefix, stepping over octet 8 (bits 64-71,
 * the u octet).
 */
#include <netinet/in.h>

#include <stdint.h>
#include <string.h>

#include "nat/rfc6052.h"

/* Octet index of bits 64-71. */
#define U_OCTET 8

static int
plen_ok(unsigned plen)
{
	/* RFC 6052 §2.2: the only prefix lengths with a defined
	 * format. */
	switch (plen) {
	case 32:
	case 40:
	case 48:
	case 56:
	case 64:
	case 96:
		return 1;
	default:
		return 0;
	}
}

/* The octet positions of the four IPv4 octets under a prefix of plen. */
static void
v4_octets(unsigned plen, size_t pos[4])
{
	size_t i, o = plen / 8;

	for (i = 0; i < 4; i++) {
		if (o == U_OCTET)
			o++;
		pos[i] = o++;
	}
}

int
nat_6052_prefix_valid(const struct in6_addr *prefix, unsigned plen)
{
	size_t i;

	if (!plen_ok(plen))
		return -1;
	/* Nothing past plen: the embedded address and suffix go there. */
	for (i = plen / 8; i < sizeof(prefix->s6_addr); i++)
		if (prefix->s6_addr[i] != 0)
			return -1;
	/* RFC 6052 §2.2: bits 64-71 must be zero; with a /96 they fall
	 * inside the prefix, and "the administrators MUST ensure" it. */
	if (prefix->s6_addr[U_OCTET] != 0)
		return -1;
	return 0;
}

int
nat_6052_embed(const struct in6_addr *prefix, unsigned plen,
    const struct in_addr *v4, struct in6_addr *out)
{
	struct in6_addr a;
	uint8_t b[4];
	size_t pos[4], i;

	if (!plen_ok(plen))
		return -1;
	memcpy(b, &v4->s_addr, sizeof(b));
	/* RFC 6052 §2.2: u octet zero; the suffix "SHOULD be set to
	 * zero".  Bits of prefix past plen are not copied. */
	memset(&a, 0, sizeof(a));
	memcpy(a.s6_addr, prefix->s6_addr, plen / 8);
	v4_octets(plen, pos);
	for (i = 0; i < 4; i++)
		a.s6_addr[pos[i]] = b[i];
	*out = a;
	return 0;
}

int
nat_6052_extract(const struct in6_addr *prefix, unsigned plen,
    const struct in6_addr *a, struct in_addr *out)
{
	uint8_t b[4];
	size_t pos[4], i;

	if (!plen_ok(plen))
		return -1;
	if (memcmp(a->s6_addr, prefix->s6_addr, plen / 8) != 0)
		return -1;
	/* RFC 6052 §2.2: bits 64-71 "MUST be set to zero". */
	if (a->s6_addr[U_OCTET] != 0)
		return -1;
	/* The suffix is not checked: RFC 6052 §2.2 has translators that
	 * receive one not set to zero ignore it. */
	v4_octets(plen, pos);
	for (i = 0; i < 4; i++)
		b[i] = a->s6_addr[pos[i]];
	memcpy(&out->s_addr, b, sizeof(b));
	return 0;
}
