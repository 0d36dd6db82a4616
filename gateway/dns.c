/*
 * gateway/dns.c: MX and address lookups on c-ares inside libev.  See
 * gateway/dns.h.
 *
 * c-ares owns its sockets and tells us through the socket-state callback
 * which to watch; every readiness and every timeout goes back to it with
 * ares_process_fd.  One lookup is a tree of queries: MX, then A and AAAA
 * per host; it completes when the last one has answered.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ares.h>
#include <ev.h>

#include "gateway/dns.h"

#define MAXH 16     /* MX hosts per lookup (opts.max_hosts caps lower) */
#define MAXA 8      /* addresses kept per host and family */
#define MAXSOCK 16  /* c-ares sockets watched at once */
#define NCACHE 64   /* cached domains */
#define NEG_TTL 60  /* seconds an NXDOMAIN or NODATA answer is kept */
#define NAMECAP 256 /* a domain name of at most 253 bytes, NUL */

/* One domain's answers, owned: the form both a lookup and the cache keep,
 * turned into a struct nat_mx_answer by view(). */
struct store {
	enum nat_dns_rc mx_rc;
	size_t nhosts;
	struct {
		uint16_t pref;
		char name[NAMECAP];
		enum nat_dns_rc a_rc, aaaa_rc;
		struct nat_addr addrs[2 * MAXA];
		size_t naddrs;
	} h[MAXH];
	unsigned ttl; /* seconds the whole answer may be kept */
};

struct sub {
	struct gw_dns_query *q;
	unsigned host;
	int af;
};

struct gw_dns_query {
	struct gw_dns *d;
	gw_dns_cb *cb;
	void *arg;
	int cancelled;
	unsigned pending; /* c-ares queries not yet answered */
	char name[NAMECAP];
	struct store st;
	struct sub subs[2 * MAXH];
	struct gw_dns_query *next; /* on d->ready */
};

struct cache_ent {
	char name[NAMECAP];
	ev_tstamp expires; /* 0: free */
	struct store st;
};

struct sockw {
	ev_io w;
	struct gw_dns *d;
	int used;
};

struct gw_dns {
	ares_channel ch;
	struct ev_loop *loop;
	struct gw_dns_opts o;
	ev_timer timer; /* c-ares' next timeout */
	ev_timer kick;  /* delivers d->ready from the loop */
	struct sockw socks[MAXSOCK];
	struct gw_dns_query *ready;
	struct cache_ent *cache; /* NCACHE entries, made on first use */
	int dying;
	struct gw_dns_stats stats;
};

static void rearm(struct gw_dns *d);

static enum nat_dns_rc
map_status(int status)
{
	switch (status) {
	case ARES_SUCCESS:
		return NAT_DNS_OK;
	case ARES_ENODATA:
		return NAT_DNS_NODATA;
	case ARES_ENOTFOUND:
		return NAT_DNS_NXDOMAIN;
	case ARES_ETIMEOUT:
	case ARES_ECONNREFUSED:
		return NAT_DNS_TIMEOUT;
	default: /* SERVFAIL, REFUSED, FORMERR, bad reply...: retry later */
		return NAT_DNS_SERVFAIL;
	}
}

static unsigned
min_u(unsigned a, unsigned b)
{
	return a < b ? a : b;
}

/* The view nat/mx.c reads; hosts has MAXH entries. */
static void
view(const struct store *st, struct nat_mx_host *hosts,
    struct nat_mx_answer *ans)
{
	size_t i;

	for (i = 0; i < st->nhosts; i++) {
		hosts[i].pref = st->h[i].pref;
		hosts[i].name = st->h[i].name;
		hosts[i].name_len = strlen(st->h[i].name);
		hosts[i].a_rc = st->h[i].a_rc;
		hosts[i].aaaa_rc = st->h[i].aaaa_rc;
		hosts[i].addrs = st->h[i].addrs;
		hosts[i].naddrs = st->h[i].naddrs;
	}
	ans->mx_rc = st->mx_rc;
	ans->hosts = hosts;
	ans->nhosts = st->nhosts;
}

/* ------------------------------------------------------------ cache */

static struct cache_ent *
cache_find(struct gw_dns *d, const char *name)
{
	size_t i;

	if (d->cache == NULL)
		return NULL;
	for (i = 0; i < NCACHE; i++)
		if (d->cache[i].expires > ev_now(d->loop) &&
		    strcasecmp(d->cache[i].name, name) == 0)
			return &d->cache[i];
	return NULL;
}

/* Keeps an answer for min(its TTL, cache_max_s); temporary failures are
 * never kept (the next session asks again). */
static void
cache_put(struct gw_dns *d, const char *name, const struct store *st)
{
	struct cache_ent *e, *victim = NULL;
	unsigned ttl;
	size_t i;

	if (d->o.cache_max_s == 0 || st->mx_rc == NAT_DNS_SERVFAIL ||
	    st->mx_rc == NAT_DNS_TIMEOUT)
		return;
	for (i = 0; i < st->nhosts; i++)
		if (st->h[i].a_rc == NAT_DNS_SERVFAIL ||
		    st->h[i].a_rc == NAT_DNS_TIMEOUT ||
		    st->h[i].aaaa_rc == NAT_DNS_SERVFAIL ||
		    st->h[i].aaaa_rc == NAT_DNS_TIMEOUT)
			return;
	ttl = min_u(st->ttl, d->o.cache_max_s);
	if (ttl == 0)
		return;
	if (d->cache == NULL) {
		d->cache = calloc(NCACHE, sizeof(*d->cache));
		if (d->cache == NULL)
			return;
	}
	/* A free or expired slot, else the one that expires first. */
	for (i = 0; i < NCACHE; i++) {
		e = &d->cache[i];
		if (e->expires <= ev_now(d->loop)) {
			victim = e;
			break;
		}
		if (victim == NULL || e->expires < victim->expires)
			victim = e;
	}
	memcpy(victim->name, name, strlen(name) + 1);
	victim->st = *st;
	victim->expires = ev_now(d->loop) + ttl;
}

/* ------------------------------------------------------------ completion */

static void
deliver(struct gw_dns_query *q)
{
	struct nat_mx_host hosts[MAXH];
	struct nat_mx_answer ans;

	view(&q->st, hosts, &ans);
	if (ans.mx_rc == NAT_DNS_SERVFAIL || ans.mx_rc == NAT_DNS_TIMEOUT)
		q->d->stats.tempfails++;
	q->cb(q->arg, &ans);
}

/* The last query of a lookup answered. */
static void
finish(struct gw_dns_query *q)
{
	if (!q->cancelled && !q->d->dying) {
		cache_put(q->d, q->name, &q->st);
		deliver(q);
	}
	free(q);
}

static void
sub_done(struct gw_dns_query *q)
{
	if (--q->pending == 0)
		finish(q);
}

/* Keeps one address record of host h with its TTL. */
static void
keep(struct store *st, unsigned h, int af, const void *addr, int ttl)
{
	struct nat_addr *a = &st->h[h].addrs[st->h[h].naddrs++];

	a->family = af;
	if (af == AF_INET)
		memcpy(&a->u.v4, addr, 4);
	else
		memcpy(&a->u.v6, addr, 16);
	st->ttl = min_u(st->ttl, ttl > 0 ? (unsigned)ttl : 0);
}

/* Parses an A or AAAA reply into host h: the count kept, or -1 if
 * c-ares cannot parse it. */
static int
parse_addrs(
    struct store *st, unsigned h, int af, const unsigned char *abuf, int alen)
{
	struct ares_addrttl t4[MAXA];
	struct ares_addr6ttl t6[MAXA];
	int i, n = MAXA;

	if (af == AF_INET) {
		if (ares_parse_a_reply(abuf, alen, NULL, t4, &n) !=
		    ARES_SUCCESS)
			return -1;
		for (i = 0; i < n; i++)
			keep(st, h, af, &t4[i].ipaddr, t4[i].ttl);
	} else {
		if (ares_parse_aaaa_reply(abuf, alen, NULL, t6, &n) !=
		    ARES_SUCCESS)
			return -1;
		for (i = 0; i < n; i++)
			keep(st, h, af, &t6[i].ip6addr, t6[i].ttl);
	}
	return n;
}

static void
addr_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct sub *s = arg;
	struct gw_dns_query *q = s->q;
	struct store *st = &q->st;
	enum nat_dns_rc rc = map_status(status);
	int n;

	(void)timeouts;
	if (rc == NAT_DNS_OK && !q->cancelled && !q->d->dying) {
		n = parse_addrs(st, s->host, s->af, abuf, alen);
		/* A reply c-ares cannot parse is as good as no answer. */
		if (n < 0)
			rc = NAT_DNS_SERVFAIL;
		else if (n == 0)
			rc = NAT_DNS_NODATA;
	}
	if (s->af == AF_INET)
		st->h[s->host].a_rc = rc;
	else
		st->h[s->host].aaaa_rc = rc;
	sub_done(q);
}

/* Asks A and AAAA for host i. */
static void
ask_addresses(struct gw_dns_query *q, unsigned i)
{
	struct sub *s4 = &q->subs[2 * i], *s6 = &q->subs[2 * i + 1];

	*s4 = (struct sub){q, i, AF_INET};
	*s6 = (struct sub){q, i, AF_INET6};
	q->pending += 2;
	ares_query(q->d->ch, q->st.h[i].name, ns_c_in, ns_t_a, addr_cb, s4);
	ares_query(q->d->ch, q->st.h[i].name, ns_c_in, ns_t_aaaa, addr_cb, s6);
}

static void
mx_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct gw_dns_query *q = arg;
	struct ares_mx_reply *mx = NULL, *m;
	struct store *st = &q->st;
	unsigned i, max = q->d->o.max_hosts ? q->d->o.max_hosts : 8;
	size_t len;

	(void)timeouts;
	if (max > MAXH)
		max = MAXH;
	st->mx_rc = map_status(status);
	if (st->mx_rc == NAT_DNS_OK && !q->cancelled && !q->d->dying) {
		if (ares_parse_mx_reply(abuf, alen, &mx) != ARES_SUCCESS)
			st->mx_rc = NAT_DNS_SERVFAIL;
		for (m = mx; m != NULL && st->nhosts < max; m = m->next) {
			len = strlen(m->host);
			if (len >= NAMECAP)
				continue;
			i = (unsigned)st->nhosts++;
			st->h[i].pref = m->priority;
			memcpy(st->h[i].name, m->host, len + 1);
			st->h[i].a_rc = st->h[i].aaaa_rc = NAT_DNS_NOTASKED;
		}
		ares_free_data(mx);
		if (st->mx_rc == NAT_DNS_OK && st->nhosts == 0)
			st->mx_rc = NAT_DNS_NODATA;
	}
	if (st->mx_rc == NAT_DNS_NODATA && st->nhosts == 0) {
		/* RFC 5321 §5.1: no MX, the domain is its own MX. */
		st->nhosts = 1;
		st->h[0].pref = 0;
		memcpy(st->h[0].name, q->name, strlen(q->name) + 1);
		st->h[0].a_rc = st->h[0].aaaa_rc = NAT_DNS_NOTASKED;
	}
	if (st->mx_rc == NAT_DNS_NXDOMAIN || st->mx_rc == NAT_DNS_NODATA)
		st->ttl = min_u(st->ttl, NEG_TTL);
	if ((st->mx_rc == NAT_DNS_OK || st->mx_rc == NAT_DNS_NODATA) &&
	    !q->cancelled && !q->d->dying)
		for (i = 0; i < st->nhosts; i++)
			if (st->h[i].name[0] != '\0') /* not a null MX */
				ask_addresses(q, i);
	sub_done(q);
}

/* ------------------------------------------------------------ libev */

static void
io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct sockw *s = (struct sockw *)w;

	(void)loop;
	ares_process_fd(s->d->ch, (revents & EV_READ) ? w->fd : ARES_SOCKET_BAD,
	    (revents & EV_WRITE) ? w->fd : ARES_SOCKET_BAD);
	rearm(s->d);
}

static void
timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct gw_dns *d = w->data;

	(void)loop;
	(void)revents;
	ares_process_fd(d->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	rearm(d);
}

/* Restarts the timer for c-ares' next deadline, if any. */
static void
rearm(struct gw_dns *d)
{
	struct timeval tv, *t;

	if (d->dying)
		return;
	ev_timer_stop(d->loop, &d->timer);
	t = ares_timeout(d->ch, NULL, &tv);
	if (t == NULL)
		return;
	ev_timer_set(&d->timer, (double)t->tv_sec + t->tv_usec / 1e6, 0.);
	ev_timer_start(d->loop, &d->timer);
}

static void
sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
	struct gw_dns *d = data;
	struct sockw *s = NULL;
	size_t i;

	for (i = 0; i < MAXSOCK; i++)
		if (d->socks[i].used && d->socks[i].w.fd == fd)
			s = &d->socks[i];
	if (s != NULL) {
		ev_io_stop(d->loop, &s->w);
		if (!readable && !writable) {
			s->used = 0;
			return;
		}
	} else {
		if (!readable && !writable)
			return;
		for (i = 0; i < MAXSOCK && s == NULL; i++)
			if (!d->socks[i].used)
				s = &d->socks[i];
		if (s == NULL) /* cannot watch it: c-ares times it out */
			return;
		s->used = 1;
		s->d = d;
	}
	ev_io_init(&s->w, io_cb, fd,
	    (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));
	ev_io_start(d->loop, &s->w);
}

/* Answers from the cache, delivered from the loop, never from inside
 * gw_dns_mx (the caller may not be ready for its callback yet). */
static void
kick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct gw_dns *d = w->data;
	struct gw_dns_query *q;

	(void)loop;
	(void)revents;
	while ((q = d->ready) != NULL) {
		d->ready = q->next;
		if (!q->cancelled)
			deliver(q);
		free(q);
	}
}

/* ------------------------------------------------------------ API */

int
gw_dns_new(struct gw_dns **out, struct ev_loop *loop,
    const struct gw_dns_opts *o, char *err, size_t cap)
{
	struct ares_options ao;
	struct gw_dns *d;
	int rc, mask;

	*out = NULL;
	if ((rc = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS) {
		snprintf(err, cap, "c-ares: %s", ares_strerror(rc));
		return -1;
	}
	if ((d = calloc(1, sizeof(*d))) == NULL) {
		snprintf(err, cap, "out of memory");
		return -1;
	}
	d->loop = loop;
	d->o = *o;
	memset(&ao, 0, sizeof(ao));
	ao.timeout = o->timeout_ms ? (int)o->timeout_ms : 2000;
	ao.tries = o->tries ? (int)o->tries : 2;
	ao.sock_state_cb = sock_state_cb;
	ao.sock_state_cb_data = d;
	mask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB;
	if ((rc = ares_init_options(&d->ch, &ao, mask)) != ARES_SUCCESS) {
		snprintf(err, cap, "c-ares: %s", ares_strerror(rc));
		free(d);
		return -1;
	}
	if (o->servers != NULL && (rc = ares_set_servers_ports_csv(
	                               d->ch, o->servers)) != ARES_SUCCESS) {
		snprintf(
		    err, cap, "resolver %s: %s", o->servers, ares_strerror(rc));
		ares_destroy(d->ch);
		free(d);
		return -1;
	}
	ev_timer_init(&d->timer, timer_cb, 0., 0.);
	d->timer.data = d;
	ev_timer_init(&d->kick, kick_cb, 0., 0.);
	d->kick.data = d;
	*out = d;
	return 0;
}

void
gw_dns_free(struct gw_dns *d)
{
	struct gw_dns_query *q;
	size_t i;

	if (d == NULL)
		return;
	d->dying = 1;
	ev_timer_stop(d->loop, &d->timer);
	ev_timer_stop(d->loop, &d->kick);
	/* Every outstanding query is called back with ARES_EDESTRUCTION:
	 * finish() frees its lookup without calling the caller. */
	ares_destroy(d->ch);
	for (i = 0; i < MAXSOCK; i++)
		if (d->socks[i].used)
			ev_io_stop(d->loop, &d->socks[i].w);
	while ((q = d->ready) != NULL) {
		d->ready = q->next;
		free(q);
	}
	free(d->cache);
	free(d);
}

/* RFC 1035 §2.3.1 and RFC 5321 §4.1.2: letters, digits, hyphens, dots;
 * no empty label, none over 63 bytes; at most 253 bytes. */
static int
name_ok(const char *s, size_t len)
{
	size_t i, lab = 0;

	if (len == 0 || len > 253)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (lab == 0)
				return 0;
			lab = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		        (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return 0;
		if (++lab > 63)
			return 0;
	}
	return lab > 0;
}

struct gw_dns_query *
gw_dns_mx(
    struct gw_dns *d, const char *domain, size_t len, gw_dns_cb *cb, void *arg)
{
	struct gw_dns_query *q;
	struct cache_ent *e;

	if (!name_ok(domain, len))
		return NULL;
	if ((q = calloc(1, sizeof(*q))) == NULL)
		return NULL;
	q->d = d;
	q->cb = cb;
	q->arg = arg;
	memcpy(q->name, domain, len);
	q->name[len] = '\0';
	d->stats.lookups++;
	if ((e = cache_find(d, q->name)) != NULL) {
		d->stats.cache_hits++;
		q->st = e->st;
		q->next = d->ready;
		d->ready = q;
		ev_timer_start(d->loop, &d->kick);
		return q;
	}
	q->st.ttl = ~0u;
	/* One count for the MX query, one held across ares_query: c-ares
	 * may answer at once (no server, no memory), and the answer must
	 * still reach the caller from the loop, not from in here. */
	q->pending = 2;
	ares_query(d->ch, q->name, ns_c_in, ns_t_mx, mx_cb, q);
	if (--q->pending == 0) {
		cache_put(d, q->name, &q->st);
		q->next = d->ready;
		d->ready = q;
		ev_timer_start(d->loop, &d->kick);
		return q;
	}
	rearm(d);
	return q;
}

void
gw_dns_cancel(struct gw_dns_query *q)
{
	if (q != NULL)
		q->cancelled = 1;
}

void
gw_dns_stats(const struct gw_dns *d, struct gw_dns_stats *out)
{
	*out = d->stats;
}
