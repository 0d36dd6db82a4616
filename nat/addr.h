/*
 * nat/addr.h: one IPv4 or IPv6 address, parsed and formatted.  Pure.
 */
#ifndef NAT_ADDR_H
#define NAT_ADDR_H

#include <sys/socket.h>

#include <stddef.h>
#include <netinet/in.h>

struct nat_addr {
	int family; /* AF_INET or AF_INET6 */
	union {
		struct in_addr v4;
		struct in6_addr v6;
	} u;
};

/*
 * Parses "192.0.2.1", "2001:db8::1" or "[2001:db8::1]" from s[0..len)
 * (not NUL terminated).  No zone ids, no ports.  0 on success, -1 on
 * malformed input.
 */
int nat_addr_parse(const char *s, size_t len, struct nat_addr *out);

/*
 * Parses "ADDR:PORT", "[V6]:PORT" or a bare address (then *port =
 * defport).  A bare IPv6 address never carries a port: "2001:db8::1:25"
 * is an address; write "[2001:db8::1]:25".  The port is 1 to 5 decimal
 * digits.  0 on success, -1 if malformed or the port (given, or defport
 * when none is) is not 1..65535.  On failure *out and *port are left
 * untouched.
 */
int nat_addr_parse_port(const char *s, size_t len, unsigned defport,
    struct nat_addr *out, unsigned *port);

/* Writes the address as text (no brackets, RFC 5952 form) into dst of
 * capacity cap (INET6_ADDRSTRLEN suffices); returns the length or -1
 * (then dst is "" if cap > 0). */
int nat_addr_fmt(const struct nat_addr *a, char *dst, size_t cap);

/* Fills ss with a:port (a sockaddr_in or sockaddr_in6, the rest zero)
 * and returns its length for bind(2) or connect(2). */
socklen_t nat_addr_sockaddr(
    const struct nat_addr *a, unsigned port, struct sockaddr_storage *ss);

/* 1 if equal (same family, AF_INET or AF_INET6, and bytes); else 0. */
int nat_addr_eq(const struct nat_addr *a, const struct nat_addr *b);

#endif
