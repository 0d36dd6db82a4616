/*
 * nat/dest.h: where a session goes.  The decision the gateway carries out
 * when a client connects: the local address it reached (a pair's, or one
 * under a [nat64] prefix) names the server, the client's address decides
 * whether it may use it, and the client's own pair gives the source of the
 * upstream leg.  Pure: the configuration comes in as a const struct the
 * caller filled; no sockets, no globals, no allocation.
 *
 * Never open (the review of RFC 3974 on the ietf-smtp list, seed 002): a
 * cross-realm relay only reaches what it is configured for, and only for
 * the clients it names; and whatever produced a destination, it passes
 * nat_scope_dest_refused (nat/scope.h).
 */
#ifndef NAT_DEST_H
#define NAT_DEST_H

#include <netinet/in.h>

#include <stddef.h>
#include <stdint.h>

#include "nat/acl.h"
#include "nat/addr.h"
#include "nat/pair.h"

enum nat_dest_rc {
	NAT_DEST_OK = 0,
	NAT_DEST_NO_MAPPING, /* 554 5.4.4: nothing stands behind the address */
	NAT_DEST_CLIENT,     /* 554 5.7.1: the client may not use it */
	NAT_DEST_NONGLOBAL,  /* 554 5.4.4: RFC 6052 §3.1, a non-global IPv4
	                        address under the well-known prefix */
	NAT_DEST_NOT_HOST,   /* 554 5.4.4: nat_scope_dest_refused */
};

enum nat_dest_kind {
	NAT_DEST_NONE = 0,
	NAT_DEST_PAIR,  /* index: the pair's user value */
	NAT_DEST_NAT64, /* index: the prefix's position */
};

/* One [nat64] prefix. */
struct nat_dest_prefix {
	struct in6_addr prefix;
	unsigned plen; /* RFC 6052 §2.2: 32, 40, 48, 56, 64 or 96 */
	int wkp;       /* the well-known 64:ff9b::/96 */
	const struct nat_acl *clients; /* who may use it; never NULL */
	const struct nat_acl *dests;   /* non-global IPv4 ranges allowed
	                                  under the WKP; NULL: none */
};

/* The configuration the decision reads; pointers are the caller's. */
struct nat_dest_conf {
	const struct nat_pairs *pairs;
	/* By nat_pair.user: the clients that may use that pair. */
	const struct nat_acl *const *pair_clients;
	const struct nat_dest_prefix *prefixes;
	size_t nprefixes;
	int source_pairing; /* a paired client's partner is its source */
	struct nat_addr source4, source6; /* family 0: the kernel's */
};

struct nat_dest {
	enum nat_dest_kind kind;
	uint32_t index;      /* see enum nat_dest_kind */
	struct nat_addr dst; /* the server (port: the caller's) */
	const char *why;     /* NONGLOBAL, NOT_HOST: a static scope token */
};

/*
 * Where a client at `client` that reached `local` goes: the partner of a
 * paired address, else the IPv4 address embedded under a prefix (RFC 6052
 * §2.2; the first prefix that holds local).  Fills *out as far as it got
 * (kind and index are set for CLIENT, NONGLOBAL and NOT_HOST, so the
 * caller can name the section) and returns the verdict.
 */
enum nat_dest_rc nat_dest_find(const struct nat_dest_conf *c,
    const struct nat_addr *local, const struct nat_addr *client,
    struct nat_dest *out);

/*
 * The source of an upstream leg of `family` for this client: the partner
 * of the client's own address when source pairing is on and it has one of
 * the other family (the server then sees one stable address per client
 * that it can reverse-resolve); else the configured source of that
 * family; else family 0 (the kernel's choice).  Returns 1 and the pair's
 * user value in *pair when the pair gave it (its HELO name applies), 0
 * otherwise.
 */
int nat_dest_source(const struct nat_dest_conf *c,
    const struct nat_addr *client, int family, struct nat_addr *src,
    uint32_t *pair);

#endif
