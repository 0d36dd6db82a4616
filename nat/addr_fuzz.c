/*
 * nat/addr_fuzz.c: libFuzzer target for nat_addr_parse and
 * nat_addr_parse_port.  Whatever parses must format and parse back to
 * the same address; any mismatch aborts.
 */
#include <sys/socket.h>

#include <netinet/in.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "nat/addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Formats a, parses the text back and aborts unless it is a again. */
static void
roundtrip(const struct nat_addr *a)
{
	struct nat_addr b;
	char buf[INET6_ADDRSTRLEN];
	int n;

	if (a->family != AF_INET && a->family != AF_INET6)
		abort();
	n = nat_addr_fmt(a, buf, sizeof(buf));
	if (n <= 0 || (size_t)n >= sizeof(buf))
		abort();
	if (nat_addr_parse(buf, (size_t)n, &b) != 0)
		abort();
	if (!nat_addr_eq(a, &b))
		abort();
	/* The port form takes a bare address too. */
	if (nat_addr_parse_port(buf, (size_t)n, 25, &b, &(unsigned){0}) != 0)
		abort();
	if (!nat_addr_eq(a, &b))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nat_addr a, b;
	unsigned port;
	const char *s = (const char *)data;

	if (nat_addr_parse(s, size, &a) == 0) {
		roundtrip(&a);
		/* Every bare or bracketed address is valid with a default
		 * port, and means the same. */
		if (nat_addr_parse_port(s, size, 25, &b, &port) != 0)
			abort();
		if (!nat_addr_eq(&a, &b) || port != 25)
			abort();
	}
	port = 0;
	if (nat_addr_parse_port(s, size, 587, &a, &port) == 0) {
		if (port < 1 || port > 65535)
			abort();
		roundtrip(&a);
	}
	return 0;
}
