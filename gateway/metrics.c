/*
 * gateway/metrics.c: see metrics.h.  The text format is Prometheus'
 * exposition format 0.0.4: "# HELP", "# TYPE", then one sample a line;
 * counters end in _total, a histogram has cumulative _bucket{le=...}
 * lines ending with le="+Inf", then _sum and _count.
 */
#define _GNU_SOURCE /* accept4 */
#include <sys/mman.h>
#include <sys/socket.h>

#include <netinet/in.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "gateway/log.h"
#include "gateway/metrics.h"
#include "gateway/nfq.h"
#include "nat/xlat.h"

#define BUCKETS 10
static const double bucket_le[BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5, 10};

struct label {
	uint32_t used; /* published (release) once a and b are written */
	char a[40];
	char b[16];
	uint64_t n;
};

struct block {
	uint64_t c[GW_M_MAX];
	uint64_t open;
	uint64_t hist[BUCKETS + 1]; /* the last: over every bound */
	uint64_t hist_n;
	uint64_t hist_sum_us;
	struct label lab[GW_MF_MAX][GW_METRICS_LABELS];
};

static struct block own;
static struct block *blocks = &own; /* nblocks of them */
static unsigned nblocks = 1;
static struct block *me = &own;

int
gw_metrics_init(unsigned workers)
{
	void *p;

	if (workers < 1)
		workers = 1;
	p = mmap(NULL, sizeof(struct block) * workers, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	blocks = me = p;
	nblocks = workers;
	return 0;
}

void
gw_metrics_worker(unsigned w)
{
	me = &blocks[w < nblocks ? w : 0];
	__atomic_store_n(&me->open, 0, __ATOMIC_RELAXED);
}

static void
add(uint64_t *v, uint64_t n)
{
	__atomic_store_n(
	    v, __atomic_load_n(v, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

static uint64_t
get(const uint64_t *v)
{
	return __atomic_load_n(v, __ATOMIC_RELAXED);
}

void
gw_metrics_count(enum gw_metric m, uint64_t n)
{
	if (m < GW_M_MAX)
		add(&me->c[m], n);
}

void
gw_metrics_open(unsigned n)
{
	__atomic_store_n(&me->open, n, __ATOMIC_RELAXED);
}

unsigned long long
gw_metrics_open_total(void)
{
	unsigned long long t = 0;
	unsigned w;

	for (w = 0; w < nblocks; w++)
		t += get(&blocks[w].open);
	return t;
}

void
gw_metrics_connect(double s)
{
	size_t i;

	if (s < 0)
		s = 0;
	for (i = 0; i < BUCKETS && s > bucket_le[i]; i++)
		continue;
	add(&me->hist[i], 1);
	add(&me->hist_n, 1);
	add(&me->hist_sum_us, (uint64_t)(s * 1e6));
}

void
gw_metrics_label(enum gw_metric_family f, const char *a, const char *b)
{
	struct label *l;
	size_t i;

	if (f >= GW_MF_MAX)
		return;
	if (b == NULL)
		b = "";
	for (i = 0; i < GW_METRICS_LABELS; i++) {
		l = &me->lab[f][i];
		if (!__atomic_load_n(&l->used, __ATOMIC_ACQUIRE)) {
			/* Only this process writes its block: no race. */
			(void)snprintf(l->a, sizeof(l->a), "%s", a);
			(void)snprintf(l->b, sizeof(l->b), "%.3s", b);
			__atomic_store_n(&l->used, 1, __ATOMIC_RELEASE);
		} else if (strcmp(l->a, a) != 0 || strncmp(l->b, b, 3) != 0)
			continue;
		add(&l->n, 1);
		return;
	}
}

/* The output buffer: appends stop (and are remembered) once it is full. */
struct out {
	char *p;
	size_t cap, len;
	int full;
};

static void put(struct out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->full)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->cap - o->len) {
		o->full = 1;
		return;
	}
	o->len += (size_t)n;
}

static void
head(struct out *o, const char *name, const char *type, const char *help)
{
	put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static uint64_t
sum(enum gw_metric m)
{
	uint64_t t = 0;
	unsigned w;

	for (w = 0; w < nblocks; w++)
		t += get(&blocks[w].c[m]);
	return t;
}

/* One family of labelled counters, summed over the blocks by label. */
static void
labelled(struct out *o, enum gw_metric_family f, const char *name,
    const char *ka, const char *kb)
{
	struct {
		const char *a, *b;
		uint64_t n;
	} seen[GW_METRICS_LABELS * 2];
	size_t ns = 0, i, k;
	unsigned w;

	for (w = 0; w < nblocks; w++)
		for (i = 0; i < GW_METRICS_LABELS; i++) {
			const struct label *l = &blocks[w].lab[f][i];

			if (!__atomic_load_n(&l->used, __ATOMIC_ACQUIRE))
				break;
			for (k = 0; k < ns; k++)
				if (strcmp(seen[k].a, l->a) == 0 &&
				    strcmp(seen[k].b, l->b) == 0)
					break;
			if (k == ns) {
				if (ns == sizeof(seen) / sizeof(seen[0]))
					continue;
				seen[ns].a = l->a;
				seen[ns].b = l->b;
				seen[ns++].n = 0;
			}
			seen[k].n += get(&l->n);
		}
	for (k = 0; k < ns; k++) {
		if (kb != NULL)
			put(o, "%s{%s=\"%s\",%s=\"%s\"} %llu\n", name, ka,
			    seen[k].a, kb, seen[k].b,
			    (unsigned long long)seen[k].n);
		else
			put(o, "%s{%s=\"%s\"} %llu\n", name, ka, seen[k].a,
			    (unsigned long long)seen[k].n);
	}
}

static void
packet(struct out *o)
{
	struct gw_nfq_stats st;
	int r;

	if (!gw_nfq_running())
		return;
	gw_nfq_stats(&st);
	head(o, "smtp64_packets_total", "counter",
	    "Packets of the packet path by verdict.");
	put(o,
	    "smtp64_packets_total{verdict=\"translated_4to6\"} %llu\n"
	    "smtp64_packets_total{verdict=\"translated_6to4\"} %llu\n"
	    "smtp64_packets_total{verdict=\"dropped\"} %llu\n"
	    "smtp64_packets_total{verdict=\"accepted\"} %llu\n"
	    "smtp64_packets_total{verdict=\"truncated\"} %llu\n",
	    (unsigned long long)st.sent46, (unsigned long long)st.sent64,
	    (unsigned long long)st.dropped, (unsigned long long)st.accepted,
	    (unsigned long long)st.truncated);
	head(o, "smtp64_packet_reasons_total", "counter",
	    "Packets not translated as such, by reason.");
	for (r = 1; r < NAT_XLAT_R_MAX; r++)
		put(o, "smtp64_packet_reasons_total{reason=\"%s\"} %llu\n",
		    nat_xlat_reason_name(r), (unsigned long long)st.reason[r]);
	head(o, "smtp64_packet_icmp_errors_total", "counter",
	    "ICMP errors built by the packet path, sent or rate limited.");
	put(o,
	    "smtp64_packet_icmp_errors_total{result=\"sent\"} %llu\n"
	    "smtp64_packet_icmp_errors_total{result=\"limited\"} %llu\n",
	    (unsigned long long)st.icmp_sent,
	    (unsigned long long)st.icmp_limited);
	head(o, "smtp64_packet_send_errors_total", "counter",
	    "Translated packets the raw socket refused.");
	put(o, "smtp64_packet_send_errors_total %llu\n",
	    (unsigned long long)st.send_errors);
}

size_t
gw_metrics_render(char *dst, size_t cap)
{
	struct out o = {dst, cap, 0, 0};
	uint64_t open = 0, hist[BUCKETS + 1] = {0}, hn = 0, hs = 0, cum = 0;
	unsigned w;
	size_t i;

	for (w = 0; w < nblocks; w++) {
		open += get(&blocks[w].open);
		for (i = 0; i <= BUCKETS; i++)
			hist[i] += get(&blocks[w].hist[i]);
		hn += get(&blocks[w].hist_n);
		hs += get(&blocks[w].hist_sum_us);
	}
	head(&o, "smtp64_sessions_open", "gauge", "SMTP sessions open now.");
	put(&o, "smtp64_sessions_open %llu\n", (unsigned long long)open);
	head(&o, "smtp64_sessions_opened_total", "counter",
	    "SMTP sessions accepted and routed.");
	put(&o, "smtp64_sessions_opened_total %llu\n",
	    (unsigned long long)sum(GW_M_SESSIONS_OPENED));
	head(&o, "smtp64_sessions_closed_total", "counter",
	    "SMTP sessions ended, by close reason.");
	labelled(
	    &o, GW_MF_CLOSE, "smtp64_sessions_closed_total", "reason", NULL);
	head(&o, "smtp64_refusals_total", "counter",
	    "Connections or sessions refused by the gateway, by reason and "
	    "reply code.");
	labelled(&o, GW_MF_REFUSE, "smtp64_refusals_total", "reason", "code");
	head(&o, "smtp64_messages_total", "counter",
	    "Messages relayed (end of data seen).");
	put(&o, "smtp64_messages_total %llu\n",
	    (unsigned long long)sum(GW_M_MESSAGES));
	head(&o, "smtp64_bytes_total", "counter", "Bytes read from each peer.");
	put(&o,
	    "smtp64_bytes_total{direction=\"client_to_server\"} %llu\n"
	    "smtp64_bytes_total{direction=\"server_to_client\"} %llu\n",
	    (unsigned long long)sum(GW_M_BYTES_C2S),
	    (unsigned long long)sum(GW_M_BYTES_S2C));
	head(&o, "smtp64_rewrites_total", "counter",
	    "Rewrites by kind: HELO arguments, bare CR, bare LF and NUL "
	    "made text of their line.");
	put(&o,
	    "smtp64_rewrites_total{kind=\"helo\"} %llu\n"
	    "smtp64_rewrites_total{kind=\"bare_cr\"} %llu\n"
	    "smtp64_rewrites_total{kind=\"bare_lf\"} %llu\n"
	    "smtp64_rewrites_total{kind=\"nul\"} %llu\n",
	    (unsigned long long)sum(GW_M_REWRITE_HELO),
	    (unsigned long long)sum(GW_M_INLINE_BARE_CR),
	    (unsigned long long)sum(GW_M_INLINE_BARE_LF),
	    (unsigned long long)sum(GW_M_INLINE_NUL));
	head(&o, "smtp64_tls_handshakes_total", "counter",
	    "TLS handshakes the gateway ran, by leg and result.");
	put(&o,
	    "smtp64_tls_handshakes_total{leg=\"client\",result=\"ok\"} %llu\n"
	    "smtp64_tls_handshakes_total{leg=\"client\",result=\"failed\"} "
	    "%llu\n"
	    "smtp64_tls_handshakes_total{leg=\"server\",result=\"ok\"} %llu\n"
	    "smtp64_tls_handshakes_total{leg=\"server\",result=\"failed\"} "
	    "%llu\n",
	    (unsigned long long)sum(GW_M_TLS_CLIENT_OK),
	    (unsigned long long)sum(GW_M_TLS_CLIENT_FAILED),
	    (unsigned long long)sum(GW_M_TLS_SERVER_OK),
	    (unsigned long long)sum(GW_M_TLS_SERVER_FAILED));
	head(&o, "smtp64_tls_resumed_total", "counter",
	    "Of those that succeeded, handshakes that resumed a session "
	    "(RFC 8446 §2.2), by leg.");
	put(&o,
	    "smtp64_tls_resumed_total{leg=\"client\"} %llu\n"
	    "smtp64_tls_resumed_total{leg=\"server\"} %llu\n",
	    (unsigned long long)sum(GW_M_TLS_CLIENT_RESUMED),
	    (unsigned long long)sum(GW_M_TLS_SERVER_RESUMED));
	head(&o, "smtp64_tls_fallbacks_total", "counter",
	    "Sessions whose upstream fell back to clear text (RFC 7435).");
	put(&o, "smtp64_tls_fallbacks_total %llu\n",
	    (unsigned long long)sum(GW_M_TLS_FALLBACK));
	head(&o, "smtp64_upstream_connect_seconds", "histogram",
	    "Time to connect to the server.");
	for (i = 0; i < BUCKETS; i++) {
		cum += hist[i];
		put(&o,
		    "smtp64_upstream_connect_seconds_bucket{le=\"%g\"} %llu\n",
		    bucket_le[i], (unsigned long long)cum);
	}
	put(&o,
	    "smtp64_upstream_connect_seconds_bucket{le=\"+Inf\"} %llu\n"
	    "smtp64_upstream_connect_seconds_sum %.6f\n"
	    "smtp64_upstream_connect_seconds_count %llu\n",
	    (unsigned long long)hn, (double)hs / 1e6, (unsigned long long)hn);
	head(&o, "smtp64_config_reloads_total", "counter",
	    "Configuration reloads by result (per process).");
	put(&o,
	    "smtp64_config_reloads_total{result=\"ok\"} %llu\n"
	    "smtp64_config_reloads_total{result=\"failed\"} %llu\n",
	    (unsigned long long)sum(GW_M_RELOAD_OK),
	    (unsigned long long)sum(GW_M_RELOAD_FAILED));
	head(&o, "smtp64_accept_pauses_total", "counter",
	    "Times accepting paused for want of file descriptors.");
	put(&o, "smtp64_accept_pauses_total %llu\n",
	    (unsigned long long)sum(GW_M_ACCEPT_PAUSES));
	head(&o, "smtp64_drain_closed_total", "counter",
	    "Sessions told 421 4.3.2 when a drain timed out.");
	put(&o, "smtp64_drain_closed_total %llu\n",
	    (unsigned long long)sum(GW_M_DRAIN_421));
	packet(&o);
	return o.full ? 0 : o.len;
}

/* ---------------------------------------------------------- endpoint */

#define REQ_MAX 2048
#define BODY_MAX (256 * 1024)
#define SCRAPE_TIMEOUT_S 5.

struct scraper {
	ev_io io;
	ev_timer timer;
	int fd;
	char req[REQ_MAX];
	size_t rlen;
	char *out; /* owned, once answering */
	size_t olen, off;
};

static struct {
	ev_io io;
	int fd;
	struct ev_loop *loop;
	struct scraper *s[GW_METRICS_SCRAPERS];
} ep = {.fd = -1};

static void
scraper_end(struct scraper *s)
{
	size_t i;

	ev_io_stop(ep.loop, &s->io);
	ev_timer_stop(ep.loop, &s->timer);
	close(s->fd);
	free(s->out);
	for (i = 0; i < GW_METRICS_SCRAPERS; i++)
		if (ep.s[i] == s)
			ep.s[i] = NULL;
	free(s);
}

static void
scraper_write(struct ev_loop *loop, ev_io *w, int revents)
{
	struct scraper *s = w->data;
	ssize_t n;

	(void)loop;
	(void)revents;
	n = send(s->fd, s->out + s->off, s->olen - s->off, MSG_NOSIGNAL);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		scraper_end(s);
		return;
	}
	s->off += (size_t)n;
	if (s->off == s->olen)
		scraper_end(s);
}

/* RFC 1945 §5: Request-Line = Method SP Request-URI SP HTTP-Version. */
static void
answer(struct scraper *s)
{
	static const char ok[] = "HTTP/1.0 200 OK\r\n"
	                         "Content-Type: text/plain; version=0.0.4; "
	                         "charset=utf-8\r\n"
	                         "Connection: close\r\n"
	                         "Content-Length: %zu\r\n\r\n";
	const char *status = NULL;
	char hdr[200];
	size_t body = 0;
	int h;

	if ((s->out = malloc(BODY_MAX)) == NULL) {
		scraper_end(s);
		return;
	}
	if (strncmp(s->req, "GET /metrics ", 13) == 0 ||
	    strncmp(s->req, "GET /metrics\r", 13) == 0) {
		/* Leave room for the header in front. */
		body = gw_metrics_render(
		    s->out + sizeof(hdr), BODY_MAX - sizeof(hdr));
		if (body == 0)
			status = "500 Internal Server Error";
	} else if (strncmp(s->req, "GET ", 4) == 0)
		status = "404 Not Found";
	else
		status = "400 Bad Request";
	if (status != NULL) {
		h = snprintf(s->out, BODY_MAX,
		    "HTTP/1.0 %s\r\nContent-Type: text/plain\r\n"
		    "Connection: close\r\nContent-Length: 0\r\n\r\n",
		    status);
		s->olen = (size_t)h;
	} else {
		h = snprintf(hdr, sizeof(hdr), ok, body);
		memmove(s->out + h, s->out + sizeof(hdr), body);
		memcpy(s->out, hdr, (size_t)h);
		s->olen = (size_t)h + body;
	}
	s->off = 0;
	ev_io_stop(ep.loop, &s->io);
	ev_io_set(&s->io, s->fd, EV_WRITE);
	ev_set_cb(&s->io, scraper_write);
	ev_io_start(ep.loop, &s->io);
}

static void
scraper_read(struct ev_loop *loop, ev_io *w, int revents)
{
	struct scraper *s = w->data;
	ssize_t n;

	(void)loop;
	(void)revents;
	n = recv(s->fd, s->req + s->rlen, sizeof(s->req) - 1 - s->rlen, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		scraper_end(s);
		return;
	}
	s->rlen += (size_t)n;
	s->req[s->rlen] = '\0';
	/* The request line is enough; a request too long to hold is
	 * answered 400 all the same. */
	if (strstr(s->req, "\r\n\r\n") != NULL ||
	    strstr(s->req, "\n\n") != NULL || s->rlen == sizeof(s->req) - 1)
		answer(s);
}

static void
scraper_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	scraper_end(w->data);
}

static void
ep_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct scraper *s;
	size_t i;
	int fd;

	(void)w;
	(void)revents;
	fd = accept4(ep.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	for (i = 0; i < GW_METRICS_SCRAPERS && ep.s[i] != NULL; i++)
		continue;
	if (i == GW_METRICS_SCRAPERS || (s = calloc(1, sizeof(*s))) == NULL) {
		close(fd);
		return;
	}
	ep.s[i] = s;
	s->fd = fd;
	ev_io_init(&s->io, scraper_read, fd, EV_READ);
	ev_timer_init(&s->timer, scraper_timeout, SCRAPE_TIMEOUT_S, 0.);
	s->io.data = s->timer.data = s;
	ev_io_start(loop, &s->io);
	ev_timer_start(loop, &s->timer);
}

int
gw_metrics_listen(const struct gw_listen *l, char *err, size_t errcap)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	char a[INET6_ADDRSTRLEN];
	int fd, on = 1;

	(void)nat_addr_fmt(&l->addr, a, sizeof(a));
	sl = nat_addr_sockaddr(&l->addr, l->port, &ss);
	fd = socket(
	    l->addr.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		(void)snprintf(err, errcap, "metrics_listen %s:%u: socket: %s",
		    a, l->port, strerror(errno));
		return -1;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on));
	if (l->addr.family == AF_INET6)
		(void)setsockopt(
		    fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 16) != 0) {
		(void)snprintf(err, errcap, "metrics_listen %s:%u: %s", a,
		    l->port, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

void
gw_metrics_serve(struct ev_loop *loop, int fd)
{
	ep.loop = loop;
	ep.fd = fd;
	ev_io_init(&ep.io, ep_accept, fd, EV_READ);
	ev_io_start(loop, &ep.io);
}

void
gw_metrics_stop(struct ev_loop *loop)
{
	size_t i;

	if (ep.fd < 0)
		return;
	ev_io_stop(loop, &ep.io);
	for (i = 0; i < GW_METRICS_SCRAPERS; i++)
		if (ep.s[i] != NULL)
			scraper_end(ep.s[i]);
	close(ep.fd);
	ep.fd = -1;
}
