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
#include "nat/mx.h"
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
	NAT_DEST_ROUTE, /* index: the route's position; no dst yet: the
	                   recipient's domain names it (nat_dest_route) */
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

/*
 * One route (route mode): addresses on which the gateway answers the
 * client itself and chooses the server per recipient from DNS
 * (draft-mrosenau-email-ipv4-to-6 §2.1, the "tunnel server"; RFC 3974 §3).
 * Which domains it serves is never open:
 *  - a domain listed in domains (nat_mx_domain_listed), or
 *  - with serve_published, a domain whose MX host has one of own (the
 *    gateway's route addresses) as an A or AAAA record: the way the DNS
 *    publishes a tunnel server (draft §2.1), or
 *  - with smarthost, any domain, but only for the clients in clients
 *    (the review of RFC 3974, seed 002: a cross-realm relay serves only
 *    its own customers).
 */
struct nat_dest_route {
	const struct nat_addr *addrs; /* where clients reach it */
	size_t naddrs;
	const char *const *domains;
	size_t ndomains;
	int serve_published;
	int smarthost;
	const struct nat_acl *clients; /* NULL: any client (an MX) */
	/* The gateway's own addresses (every route address, every listen
	 * address that is not a wildcard): never a destination. */
	const struct nat_addr *own;
	size_t nown;
	const char *own_name; /* the gateway's name, RFC 3974 §3 step 2 */
	size_t own_name_len;
};

/* The configuration the decision reads; pointers are the caller's. */
struct nat_dest_conf {
	const struct nat_pairs *pairs;
	/* By nat_pair.user: the clients that may use that pair. */
	const struct nat_acl *const *pair_clients;
	const struct nat_dest_prefix *prefixes;
	size_t nprefixes;
	const struct nat_dest_route *routes;
	size_t nroutes;
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
 * What became of a recipient in route mode, each with the reply its RCPT
 * gets when it is not NAT_ROUTE_OK (nat_dest_route_reply).
 */
enum nat_route_rc {
	NAT_ROUTE_OK = 0,
	NAT_ROUTE_NOT_SERVED,  /* 550 5.7.1: no rule serves the domain */
	NAT_ROUTE_NXDOMAIN,    /* 550 5.1.2: RFC 3974 §3 step 1 */
	NAT_ROUTE_NULLMX,      /* 556 5.1.10: RFC 7505 §3.2 */
	NAT_ROUTE_NOADDRESS,   /* 550 5.1.2: no address of the family the
	                          gateway translates into (RFC 3974 §3) */
	NAT_ROUTE_TEMPFAIL,    /* 451 4.4.3: SERVFAIL or no answer (RFC 3463
	                          X.4.3, directory server failure) */
	NAT_ROUTE_SELF,        /* 554 5.4.6: only the gateway itself */
	NAT_ROUTE_UNREACHABLE, /* 451 4.4.1: every address tried, none
	                          answered (RFC 3974 §3 step 8) */
	NAT_ROUTE_OTHER,       /* 452 4.5.3: served by another server than
	                          this transaction's; send it again later */
	NAT_ROUTE_NRC
};

/* A short static token per code for log lines ("not-served", ...). */
const char *nat_dest_route_name(enum nat_route_rc rc);

/* The RCPT reply for rc: "550 5.7.1" in *code_enh and its text in *text,
 * both static. */
void nat_dest_route_reply(
    enum nat_route_rc rc, const char **code_enh, const char **text);

/*
 * The servers for a recipient at domain[0..len) reached through route r
 * on a local address of family local_family, from the DNS answer ans:
 * authorises the domain (see struct nat_dest_route), then orders the
 * addresses with nat_mx_select (RFC 3974 §3 steps 2-6, §5) using only the
 * family the gateway translates into (the one that is not local_family:
 * every hop through the gateway crosses families), never one of r->own,
 * never one nat_scope_dest_refused refuses.  Writes up to cap targets to
 * out, their count to *n (0 unless NAT_ROUTE_OK).
 */
enum nat_route_rc nat_dest_route(const struct nat_dest_route *r,
    int local_family, const char *domain, size_t len,
    const struct nat_mx_answer *ans, uint32_t seed, struct nat_mx_target *out,
    size_t cap, size_t *n);

/* 1 if a recipient at domain b may join a transaction whose servers were
 * chosen for domain a (the same domain, without regard to ASCII case and
 * a trailing dot), else 0: RFC 5321 §3.3 lets one transaction go to one
 * server only. */
int nat_dest_route_same(const char *a, size_t alen, const char *b, size_t blen);

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
