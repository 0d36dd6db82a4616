/*
 * nat/addr.c: one IPv4 or IPv6 address, parsed and formatted.  Pure: the
 * text goes through inet_pton(3) and inet_ntop(3) on bounded local copies.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "nat/addr.h"

/*
 * Longest address text inet_pton accepts, without NUL:
 * "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255" is 45 characters
 * (RFC 4291 §2.2, form 3), and INET6_ADDRSTRLEN counts the NUL.
 */
#define ADDR_TEXT_MAX (INET6_ADDRSTRLEN - 1)
/* Ports are written with at most five digits: 65535, or 00025. */
#define PORT_DIGITS_MAX 5
/* "[" ADDR "]" ":" PORT */
#define ADDR_PORT_TEXT_MAX (1 + ADDR_TEXT_MAX + 1 + 1 + PORT_DIGITS_MAX)

static int
addr_char_ok(char c)
{
	/* RFC 4291 §2.2: hex groups, "::" and a dotted-quad tail. */
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	       (c >= 'A' && c <= 'F') || c == ':' || c == '.';
}

int
nat_addr_parse(const char *s, size_t len, struct nat_addr *out)
{
	char buf[ADDR_TEXT_MAX + 1];
	struct nat_addr a;
	size_t i;
	int bracketed = 0;

	if (s == NULL || out == NULL || len == 0)
		return -1;
	/* RFC 3986 §3.2.2 style "[v6]"; only an IPv6 address may be
	 * bracketed. */
	if (s[0] == '[') {
		if (len < 2 || s[len - 1] != ']')
			return -1;
		s++;
		len -= 2;
		bracketed = 1;
	}
	if (len == 0 || len > ADDR_TEXT_MAX)
		return -1;
	/*
	 * Whitelist the characters before inet_pton sees them: this turns
	 * away zone ids ("%eth0", RFC 4007 §11.2), prefixes, ports, spaces,
	 * brackets and embedded NULs, whatever the libc might tolerate.
	 */
	for (i = 0; i < len; i++)
		if (!addr_char_ok(s[i]))
			return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';

	memset(&a, 0, sizeof(a));
	if (memchr(buf, ':', len) != NULL) {
		a.family = AF_INET6;
		if (inet_pton(AF_INET6, buf, &a.u.v6) != 1)
			return -1;
	} else {
		if (bracketed)
			return -1;
		a.family = AF_INET;
		if (inet_pton(AF_INET, buf, &a.u.v4) != 1)
			return -1;
	}
	*out = a;
	return 0;
}

/* Parses the decimal port in s[0..len): digits only, 1..65535. */
static int
port_parse(const char *s, size_t len, unsigned *port)
{
	char buf[PORT_DIGITS_MAX + 1], *end;
	unsigned long v;
	size_t i;

	if (len == 0 || len > PORT_DIGITS_MAX)
		return -1;
	/* strtoul would also take spaces, a sign or "0x": refuse them. */
	for (i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	errno = 0;
	v = strtoul(buf, &end, 10);
	if (errno != 0 || end != buf + len || v < 1 || v > 65535)
		return -1;
	*port = (unsigned)v;
	return 0;
}

int
nat_addr_parse_port(const char *s, size_t len, unsigned defport,
    struct nat_addr *out, unsigned *port)
{
	struct nat_addr a;
	const char *colon, *close;
	size_t alen;
	unsigned p;

	if (s == NULL || out == NULL || port == NULL || len == 0 ||
	    len > ADDR_PORT_TEXT_MAX)
		return -1;

	if (s[0] == '[') {
		/* "[V6]" or "[V6]:PORT" */
		if ((close = memchr(s, ']', len)) == NULL)
			return -1;
		alen = (size_t)(close - s) + 1;
		colon = alen < len ? close + 1 : NULL;
		if (colon != NULL && *colon != ':')
			return -1;
	} else if ((colon = memchr(s, ':', len)) == NULL) {
		/* bare IPv4 */
		alen = len;
	} else if (memchr(colon + 1, ':', len - (size_t)(colon - s) - 1) !=
	           NULL) {
		/* Two colons or more: a bare IPv6 address, whose last group
		 * could not be told from a port, so it takes none. */
		alen = len;
		colon = NULL;
	} else {
		/* "IPV4:PORT" */
		alen = (size_t)(colon - s);
	}

	if (nat_addr_parse(s, alen, &a) == -1)
		return -1;
	if (colon != NULL) {
		if (port_parse(colon + 1, len - alen - 1, &p) == -1)
			return -1;
	} else {
		if (defport < 1 || defport > 65535)
			return -1;
		p = defport;
	}
	*out = a;
	*port = p;
	return 0;
}

int
nat_addr_fmt(const struct nat_addr *a, char *dst, size_t cap)
{
	socklen_t n;

	if (a == NULL || dst == NULL || cap == 0)
		return -1;
	n = cap > INET6_ADDRSTRLEN ? INET6_ADDRSTRLEN : (socklen_t)cap;
	/* RFC 5952 §4 canonical text: glibc's inet_ntop writes lower case,
	 * drops leading zeros and compresses the first longest zero run of
	 * two groups or more. */
	switch (a->family) {
	case AF_INET:
		if (inet_ntop(AF_INET, &a->u.v4, dst, n) == NULL)
			goto fail;
		break;
	case AF_INET6:
		if (inet_ntop(AF_INET6, &a->u.v6, dst, n) == NULL)
			goto fail;
		break;
	default:
		goto fail;
	}
	return (int)strlen(dst);
fail:
	dst[0] = '\0';
	return -1;
}

int
nat_addr_eq(const struct nat_addr *a, const struct nat_addr *b)
{
	if (a->family != b->family)
		return 0;
	switch (a->family) {
	case AF_INET:
		return memcmp(&a->u.v4, &b->u.v4, sizeof(a->u.v4)) == 0;
	case AF_INET6:
		return memcmp(&a->u.v6, &b->u.v6, sizeof(a->u.v6)) == 0;
	default:
		return 0;
	}
}

socklen_t
nat_addr_sockaddr(
    const struct nat_addr *a, unsigned port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (a->family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_addr = a->u.v4;
		s4->sin_port = htons((uint16_t)port);
		return sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_addr = a->u.v6;
		s6->sin6_port = htons((uint16_t)port);
		return sizeof(*s6);
	}
}
