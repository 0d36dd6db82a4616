/*
 * nat/pair.h: the pair table.  Each pair joins one IPv4 address and one
 * IPv6 address; either one may be the gateway's address that stands for
 * the other (an IPv4 address for an IPv6-only MX, or the reverse,
 * draft-mrosenau-email-ipv4-to-6 §3), so lookups go both ways.
 *
 * Two open-addressing hash tables (one per family) index one array of
 * pairs: a lookup is one hash and a short probe, whatever the table size.
 * Memory is allocated once by nat_pairs_init (start-up, not the data
 * path); lookups allocate nothing.
 */
#ifndef NAT_PAIR_H
#define NAT_PAIR_H

#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

struct nat_pair {
	struct in_addr v4;
	struct in6_addr v6;
	uint32_t user; /* caller's data, e.g. an index into
	                  per-pair options */
};

struct nat_pairs {
	struct nat_pair *pairs; /* owned, cap entries */
	size_t n, cap;
	uint32_t *h4, *h6; /* owned; slot = pair index + 1, 0 free */
	size_t hmask;      /* hash slots - 1 (power of two) */
};

/* Allocates room for up to cap pairs (0 is allowed; at most 2^30).  0,
 * or -1 with errno ENOMEM.  nat_pairs_free is safe after either. */
int nat_pairs_init(struct nat_pairs *t, size_t cap);
void nat_pairs_free(struct nat_pairs *t);

/*
 * Adds a pair.  0 on success; -1 with errno EEXIST if either address is
 * already in a pair (an address has at most one partner), ENOSPC if the
 * table is full.
 */
int nat_pairs_add(struct nat_pairs *t, const struct in_addr *v4,
    const struct in6_addr *v6, uint32_t user);

/* The pair holding this address, or NULL.  Pointers stay valid until
 * nat_pairs_free. */
const struct nat_pair *nat_pairs_by_v4(
    const struct nat_pairs *t, const struct in_addr *v4);
const struct nat_pair *nat_pairs_by_v6(
    const struct nat_pairs *t, const struct in6_addr *v6);

#endif
