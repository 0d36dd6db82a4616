/*
 * gateway/dns.h: asynchronous MX and address lookups for route mode, on
 * c-ares inside the worker's libev loop.  A slow or dead resolver holds up
 * only the sessions waiting for it: c-ares never blocks, and its sockets
 * and timeouts are libev watchers like any other.
 *
 * One lookup asks for a domain's MX records, then for the A and AAAA
 * records of each MX host (of the domain itself when it has no MX: the
 * implicit MX of RFC 5321 §5.1), and hands the caller a struct
 * nat_mx_answer that nat/mx.c turns into the servers to try.  Answers are
 * cached (see gw_dns_mx).
 */
#ifndef GW_DNS_H
#define GW_DNS_H

#include <stddef.h>

#include <ev.h>

#include "nat/mx.h"

struct gw_dns;
struct gw_dns_query;

struct gw_dns_opts {
	const char *servers;  /* "ADDR[:PORT],..." (c-ares CSV form) or NULL:
	                         the system's /etc/resolv.conf */
	unsigned timeout_ms;  /* per try; 0: 2000 */
	unsigned tries;       /* per server; 0: 2 */
	unsigned cache_max_s; /* upper bound on a cached answer's life; 0:
	                         no cache */
	unsigned max_hosts;   /* MX hosts whose addresses are looked up; 0:
	                         8 */
};

/*
 * The answer for one lookup.  ans and everything it points to stay valid
 * only during the callback; copy what is kept.  A cancelled query's
 * callback is never called.
 */
typedef void gw_dns_cb(void *arg, const struct nat_mx_answer *ans);

/* Makes a resolver on loop.  0, or -1 with a message in err (cap bytes). */
int gw_dns_new(struct gw_dns **out, struct ev_loop *loop,
    const struct gw_dns_opts *o, char *err, size_t cap);

/* Cancels every query (their callbacks are not called), frees all. */
void gw_dns_free(struct gw_dns *d);

/*
 * Looks up domain[0..len) (at most 253 bytes, without a trailing dot):
 * its MX records, then the A and AAAA records of its hosts.  cb(arg, ...)
 * is called once, later, from the loop (never from inside gw_dns_mx);
 * an answer within its time to live comes from the cache, still through
 * the loop.  Returns a handle the caller may pass to gw_dns_cancel until
 * the callback runs, or NULL on a bad name or no memory (then cb is never
 * called).
 */
struct gw_dns_query *gw_dns_mx(
    struct gw_dns *d, const char *domain, size_t len, gw_dns_cb *cb, void *arg);

/* The caller no longer wants the answer (its session ended): cb will not
 * be called; the query's memory is freed when c-ares is done with it. */
void gw_dns_cancel(struct gw_dns_query *q);

/* Counters since start, for the SIGUSR1 line. */
struct gw_dns_stats {
	unsigned long lookups, cache_hits, tempfails;
};
void gw_dns_stats(const struct gw_dns *d, struct gw_dns_stats *out);

#endif
