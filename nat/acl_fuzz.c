/*
 * nat/acl_fuzz.c: libFuzzer target for nat_cidr_parse and nat_acl_parse.
 * A parsed prefix must have no host bits, match its own network and
 * broadcast-like last address, not match just outside, and format and
 * parse back to itself; errors must be named codes.  A parsed list must
 * respect its capacity and match what its entries match.
 */
#include <sys/socket.h>

#include <netinet/in.h>

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nat/acl.h"
#include "nat/addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *
bytes(struct nat_addr *a, unsigned *bits)
{
	if (a->family == AF_INET) {
		*bits = 32;
		return (uint8_t *)&a->u.v4.s_addr;
	}
	if (a->family == AF_INET6) {
		*bits = 128;
		return a->u.v6.s6_addr;
	}
	abort();
}

static void
known_error(int rc)
{
	if (rc >= 0 || strcmp(nat_acl_error(rc), "unknown error") == 0)
		abort();
}

static void
check_cidr(const struct nat_cidr *c)
{
	struct nat_cidr back;
	struct nat_addr a;
	char buf[INET6_ADDRSTRLEN + 8];
	uint8_t *b;
	unsigned bits, i;
	int n, m;

	a = c->addr;
	b = bytes(&a, &bits);
	if (c->plen > bits)
		abort();
	if (!nat_cidr_match(c, &c->addr))
		abort();
	/* Setting every host bit stays inside. */
	for (i = c->plen; i < bits; i++)
		b[i / 8] |= (uint8_t)(0x80 >> (i % 8));
	if (!nat_cidr_match(c, &a))
		abort();
	/* Flipping the last prefix bit leaves it. */
	if (c->plen > 0) {
		i = c->plen - 1;
		b[i / 8] ^= (uint8_t)(0x80 >> (i % 8));
		if (nat_cidr_match(c, &a))
			abort();
	}
	/* Text round trip. */
	n = nat_addr_fmt(&c->addr, buf, sizeof(buf));
	if (n <= 0)
		abort();
	m = snprintf(buf + n, sizeof(buf) - (size_t)n, "/%u", c->plen);
	if (m <= 0 || (size_t)m >= sizeof(buf) - (size_t)n)
		abort();
	if (nat_cidr_parse(buf, (size_t)(n + m), &back) != 0 ||
	    back.plen != c->plen || !nat_addr_eq(&back.addr, &c->addr))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct nat_acl acl;
	const char *s = (const char *)data;
	struct nat_cidr c;
	size_t i;
	int rc, any;

	if ((rc = nat_cidr_parse(s, size, &c)) == 0)
		check_cidr(&c);
	else
		known_error(rc);

	if ((rc = nat_acl_parse(s, size, &acl)) != 0) {
		known_error(rc);
		return 0;
	}
	if (acl.n > NAT_ACL_MAX)
		abort();
	if (acl.flags != 0 && (acl.n != 0 || (acl.flags != NAT_ACL_ANY &&
	                                         acl.flags != NAT_ACL_NONE)))
		abort();
	if (acl.flags == 0 && acl.n == 0)
		abort();
	for (i = 0; i < acl.n; i++) {
		check_cidr(&acl.e[i]);
		if (!nat_acl_match(&acl, &acl.e[i].addr))
			abort();
	}
	/* Matching agrees with the entries, for an address of the input. */
	if (size >= 16) {
		struct nat_addr a;

		memset(&a, 0, sizeof(a));
		a.family = data[0] & 1 ? AF_INET6 : AF_INET;
		memcpy(a.family == AF_INET6 ? (void *)&a.u.v6 : (void *)&a.u.v4,
		    data, a.family == AF_INET6 ? 16 : 4);
		any = acl.flags == NAT_ACL_ANY;
		for (i = 0; i < acl.n; i++)
			any |= nat_cidr_match(&acl.e[i], &a);
		if (nat_acl_match(&acl, &a) != any)
			abort();
	}
	return 0;
}
