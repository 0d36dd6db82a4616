/*
 * nat/acl.c: prefix lists (RFC 4632 §3.1, RFC 4291 §2.3).  Pure.
 */
#include <sys/socket.h>

#include <netinet/in.h>

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "nat/acl.h"

/* "/128" at most: three digits. */
#define PLEN_DIGITS_MAX 3

static int
is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* 1 if s[0..len) is word, ignoring case. */
static int
word_eq(const char *s, size_t len, const char *word)
{
	size_t i;

	if (len != strlen(word))
		return 0;
	for (i = 0; i < len; i++)
		if (lower((unsigned char)s[i]) != word[i])
			return 0;
	return 1;
}

static const uint8_t *
addr_bytes(const struct nat_addr *a, unsigned *bits)
{
	if (a->family == AF_INET) {
		*bits = 32;
		return (const uint8_t *)&a->u.v4.s_addr;
	}
	if (a->family == AF_INET6) {
		*bits = 128;
		return a->u.v6.s6_addr;
	}
	return NULL;
}

/* 1 if the first plen bits of x and y agree. */
static int
prefix_eq(const uint8_t *x, const uint8_t *y, unsigned plen)
{
	size_t full = plen / 8;
	unsigned rest = plen % 8;
	uint8_t mask;

	if (memcmp(x, y, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	mask = (uint8_t)(0xff << (8 - rest));
	return (x[full] & mask) == (y[full] & mask);
}

/* 1 if any bit of b[0..bits) past plen is set. */
static int
host_bits(const uint8_t *b, unsigned bits, unsigned plen)
{
	size_t i = plen / 8;
	unsigned rest = plen % 8;

	if (rest != 0) {
		if ((b[i] & (uint8_t)(0xff >> rest)) != 0)
			return 1;
		i++;
	}
	for (; i < bits / 8; i++)
		if (b[i] != 0)
			return 1;
	return 0;
}

/* Decimal 0..999, digits only, no leading zero but for "0". */
static int
plen_parse(const char *s, size_t len, unsigned *plen)
{
	unsigned v = 0;
	size_t i;

	if (len == 0 || len > PLEN_DIGITS_MAX || (len > 1 && s[0] == '0'))
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*plen = v;
	return 0;
}

int
nat_cidr_parse(const char *s, size_t len, struct nat_cidr *out)
{
	struct nat_cidr c;
	const char *slash;
	const uint8_t *b;
	size_t alen;
	unsigned bits;

	if (s == NULL || out == NULL || len == 0)
		return NAT_ACL_ESYNTAX;
	slash = memchr(s, '/', len);
	alen = slash == NULL ? len : (size_t)(slash - s);
	memset(&c, 0, sizeof(c));
	/* nat_addr_parse turns away zone ids, ports and blanks. */
	if (nat_addr_parse(s, alen, &c.addr) != 0)
		return NAT_ACL_ESYNTAX;
	b = addr_bytes(&c.addr, &bits);
	if (b == NULL)
		return NAT_ACL_ESYNTAX;
	if (slash == NULL)
		c.plen = bits;
	else if (plen_parse(slash + 1, len - alen - 1, &c.plen) != 0)
		return NAT_ACL_ESYNTAX;
	if (c.plen > bits)
		return NAT_ACL_EPLEN;
	/* RFC 4632 §3.1: the prefix is the network; an address with host
	 * bits set is more likely a mistake than a wish. */
	if (host_bits(b, bits, c.plen))
		return NAT_ACL_EHOSTBITS;
	*out = c;
	return 0;
}

int
nat_acl_parse(const char *s, size_t len, struct nat_acl *out)
{
	struct nat_cidr c;
	size_t i, start;
	int rc, comma;

	if (s == NULL || out == NULL)
		return NAT_ACL_EEMPTY;
	memset(out, 0, sizeof(*out));
	for (i = 0; i < len && is_blank(s[i]); i++)
		continue;
	start = i;
	while (i < len && !is_blank(s[i]) && s[i] != ',')
		i++;
	if (i == start)
		return NAT_ACL_EEMPTY;
	if (word_eq(s + start, i - start, "any") ||
	    word_eq(s + start, i - start, "none")) {
		out->flags = word_eq(s + start, i - start, "any")
		                 ? NAT_ACL_ANY
		                 : NAT_ACL_NONE;
		while (i < len && is_blank(s[i]))
			i++;
		return i == len ? 0 : NAT_ACL_EWORD;
	}

	/* The first entry is s[start..i); each turn parses one, then its
	 * separator: blanks, at most one comma, blanks. */
	for (;;) {
		if (word_eq(s + start, i - start, "any") ||
		    word_eq(s + start, i - start, "none"))
			return NAT_ACL_EWORD;
		if ((rc = nat_cidr_parse(s + start, i - start, &c)) != 0)
			return rc;
		if (out->n == NAT_ACL_MAX)
			return NAT_ACL_EFULL;
		out->e[out->n++] = c;

		comma = 0;
		while (i < len && (is_blank(s[i]) || s[i] == ',')) {
			if (s[i] == ',' && comma++)
				return NAT_ACL_EEMPTY;
			i++;
		}
		if (i == len)
			return comma ? NAT_ACL_EEMPTY : 0;
		start = i;
		while (i < len && !is_blank(s[i]) && s[i] != ',')
			i++;
	}
}

int
nat_cidr_match(const struct nat_cidr *c, const struct nat_addr *a)
{
	static const uint8_t mapped[12] = {
	    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	const uint8_t *x, *y;
	unsigned xbits, ybits;

	if (c == NULL || a == NULL)
		return 0;
	if ((x = addr_bytes(&c->addr, &xbits)) == NULL ||
	    (y = addr_bytes(a, &ybits)) == NULL || c->plen > xbits)
		return 0;
	/* RFC 4291 §2.5.5.2: ::ffff:a.b.c.d is the IPv4 node a.b.c.d. */
	if (xbits == 32 && ybits == 128 && memcmp(y, mapped, 12) == 0) {
		y += 12;
		ybits = 32;
	}
	if (xbits != ybits)
		return 0;
	return prefix_eq(x, y, c->plen);
}

int
nat_acl_match(const struct nat_acl *acl, const struct nat_addr *a)
{
	size_t i;

	if (acl == NULL || a == NULL ||
	    (a->family != AF_INET && a->family != AF_INET6))
		return 0;
	if (acl->flags & NAT_ACL_ANY)
		return 1;
	if (acl->flags & NAT_ACL_NONE)
		return 0;
	for (i = 0; i < acl->n && i < NAT_ACL_MAX; i++)
		if (nat_cidr_match(&acl->e[i], a))
			return 1;
	return 0;
}

const char *
nat_acl_error(int code)
{
	switch (code) {
	case NAT_ACL_ESYNTAX:
		return "not an address or address/length";
	case NAT_ACL_EPLEN:
		return "prefix length over 32 (IPv4) or 128 (IPv6)";
	case NAT_ACL_EHOSTBITS:
		return "address has bits set past the prefix length";
	case NAT_ACL_EEMPTY:
		return "empty list or empty entry";
	case NAT_ACL_EWORD:
		return "\"any\" and \"none\" must stand alone";
	case NAT_ACL_EFULL:
		return "too many entries (at most 64)";
	default:
		return "unknown error";
	}
}
