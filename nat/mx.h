/*
 * nat/mx.h: which servers a message for a domain goes to, decided from DNS
 * answers the caller has already collected.  RFC 3974 §3 (the dual-stack
 * sender's steps 1-9), §5 (a server that answers AAAA queries with
 * SERVFAIL must not stop delivery over IPv4), RFC 5321 §5.1 (implicit MX,
 * randomising equal preferences) and RFC 7505 (null MX).
 *
 * Pure: no resolver, no sockets, no clock, no allocation.  The resolver
 * (gateway/) fills a struct nat_mx_answer; this module orders the
 * addresses to try, or says why there are none, and whether the domain's
 * DNS names the gateway itself (how a tunnel server is published,
 * draft-mrosenau-email-ipv4-to-6 §3).
 */
#ifndef NAT_MX_H
#define NAT_MX_H

#include <stddef.h>
#include <stdint.h>

#include "nat/addr.h"

/* The outcome of one DNS query, as the resolver reports it. */
enum nat_dns_rc {
	NAT_DNS_OK = 0,   /* NOERROR with records */
	NAT_DNS_NODATA,   /* NOERROR, empty answer: the name exists */
	NAT_DNS_NXDOMAIN, /* RCODE 3: no such name (permanent) */
	NAT_DNS_SERVFAIL, /* RCODE 2, or a refusal: try again later */
	NAT_DNS_TIMEOUT,  /* no answer at all: try again later */
	NAT_DNS_NOTASKED, /* the caller did not query this (family unused) */
};

/* One MX host with the answers to its A and AAAA queries.  Pointers are
 * the caller's and are only read. */
struct nat_mx_host {
	uint16_t pref;
	const char *name; /* host name, no trailing dot; "" for a null MX */
	size_t name_len;
	enum nat_dns_rc a_rc, aaaa_rc;
	const struct nat_addr *addrs; /* A and AAAA records, any order */
	size_t naddrs;
};

/*
 * The answers for one domain.  mx_rc is the MX query's outcome.  With
 * NAT_DNS_OK, hosts are the MX records (any order).  With NAT_DNS_NODATA
 * the domain has no MX record and RFC 5321 §5.1 makes it its own MX
 * ("implicit MX"): hosts then holds one entry, the domain itself with its
 * own A and AAAA answers.
 */
struct nat_mx_answer {
	enum nat_dns_rc mx_rc;
	const struct nat_mx_host *hosts;
	size_t nhosts;
};

/* Which families the upstream leg may use. */
#define NAT_MX_V4 0x1
#define NAT_MX_V6 0x2

struct nat_mx_policy {
	unsigned families; /* NAT_MX_V4 | NAT_MX_V6; at least one */
	/* The gateway's own addresses: never a destination (a message sent
	 * to one would come straight back: a loop). */
	const struct nat_addr *own;
	size_t nown;
	/* The gateway's own host name, for RFC 3974 §3 step 2 (NULL: none). */
	const char *own_name;
	size_t own_name_len;
};

/* One address to try, in order. */
struct nat_mx_target {
	struct nat_addr addr;
	uint16_t pref;
	size_t host; /* index into answer->hosts */
};

enum nat_mx_rc {
	NAT_MX_OK = 0,    /* at least one target */
	NAT_MX_NXDOMAIN,  /* no such domain: 550 5.1.2 (RFC 3974 §3 step 1) */
	NAT_MX_NULLMX,    /* the domain accepts no mail: 556 5.1.10 (RFC 7505
	                     §3.2) */
	NAT_MX_NOADDRESS, /* MX hosts exist, none has an address of a usable
	                     family: 550 5.1.2 (RFC 3974 §3: fail as an MX
	                     without address records does) */
	NAT_MX_TEMPFAIL,  /* SERVFAIL or timeout left the answer unknown:
	                     451 4.4.3 (RFC 3463 §3.5, directory failure) */
	NAT_MX_SELF,      /* only the gateway itself is left (step 2, or
	                     every address is its own): 554 5.4.6, a loop */
	NAT_MX_NRC
};

/* A short static token per code for log lines ("nxdomain", ...). */
const char *nat_mx_rc_name(enum nat_mx_rc rc);

/*
 * Orders the addresses to connect to, RFC 3974 §3 steps 2-6: MX hosts at
 * or above the preference of one named like the gateway are dropped; by
 * ascending preference, within one preference AAAA before A (§3 step 5
 * note), each family shuffled on its own (never mixed) with seed as the
 * only source of chance; addresses of unusable families and the gateway's
 * own addresses left out; a host that repeats an address already listed
 * is not listed twice.  Writes up to cap targets to out and their count
 * to *n (the rest are dropped: cap bounds the work a hostile zone can
 * cause).  Returns NAT_MX_OK with *n >= 1, or the reason there is no
 * target (then *n = 0).  A SERVFAIL or timeout on one family or one host
 * does not stop the others (§5); it only turns "no address" into
 * NAT_MX_TEMPFAIL, since the missing answer might have held one.
 */
enum nat_mx_rc nat_mx_select(const struct nat_mx_answer *answer,
    const struct nat_mx_policy *policy, uint32_t seed,
    struct nat_mx_target *out, size_t cap, size_t *n);

/*
 * 1 if an MX host of the answer (the implicit one included) has one of
 * the gateway's own addresses among its A or AAAA records: the DNS
 * publishes the gateway as that domain's tunnel server
 * (draft-mrosenau-email-ipv4-to-6 §3).  Else 0.
 */
int nat_mx_names_gateway(
    const struct nat_mx_answer *answer, const struct nat_mx_policy *policy);

/*
 * 1 if domain[0..len) is served by the list (each entry "example.org"
 * matches that name only, ".example.org" any name below it), compared
 * without regard to ASCII case and to one trailing dot.  Else 0.
 */
int nat_mx_domain_listed(
    const char *domain, size_t len, const char *const *list, size_t nlist);

#endif
