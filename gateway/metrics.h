/*
 * gateway/metrics.h: counters of the whole daemon and the Prometheus
 * text endpoint that shows them (exposition format 0.0.4).
 *
 * Each process writes only its own block of counters; with workers the
 * blocks sit in one shared mapping made before the fork, and the process
 * that serves the endpoint (worker 0) sums them.  Counters are 64-bit and
 * written with relaxed atomics, so a scrape never sees a torn value.
 */
#ifndef GW_METRICS_H
#define GW_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "gateway/config.h"

enum gw_metric {
	GW_M_SESSIONS_OPENED = 0,
	GW_M_ACCEPT_PAUSES,
	GW_M_BYTES_C2S,
	GW_M_BYTES_S2C,
	GW_M_MESSAGES,
	GW_M_RELOAD_OK,
	GW_M_RELOAD_FAILED,
	GW_M_REWRITE_HELO,
	GW_M_INLINE_BARE_CR, /* in this order: session.c adds 0..2 */
	GW_M_INLINE_BARE_LF,
	GW_M_INLINE_NUL,
	GW_M_TLS_CLIENT_OK,
	GW_M_TLS_CLIENT_FAILED,
	GW_M_TLS_SERVER_OK,
	GW_M_TLS_SERVER_FAILED,
	GW_M_TLS_FALLBACK,
	GW_M_TLS_CLIENT_RESUMED, /* of the _OK ones, resumed sessions */
	GW_M_TLS_SERVER_RESUMED,
	GW_M_DRAIN_421, /* sessions told 421 4.3.2 when a drain ended */
	GW_M_MAX
};

/* Counters with labels: a name (up to 39 characters) and, for refusals,
 * the reply code (its first 3 characters: "554 5.4.4" counts as 554). */
enum gw_metric_family {
	GW_MF_CLOSE = 0, /* reason */
	GW_MF_REFUSE,    /* reason, code */
	GW_MF_MAX
};

#define GW_METRICS_LABELS 48 /* distinct label sets per family */
#define GW_METRICS_SCRAPERS 4

/* Makes one block per worker in a shared mapping (before any fork;
 * without it, one private block serves).  0, or -1 with errno. */
int gw_metrics_init(unsigned workers);
/* This process writes block w from now on; its gauge restarts at 0. */
void gw_metrics_worker(unsigned w);

void gw_metrics_count(enum gw_metric m, uint64_t n);
void gw_metrics_label(enum gw_metric_family f, const char *a, const char *b);
/* Sessions open in this process now. */
void gw_metrics_open(unsigned n);
/* Sessions open now over every block (the supervisor's STATUS=). */
unsigned long long gw_metrics_open_total(void);
/* One upstream connect that took s seconds. */
void gw_metrics_connect(double s);

/*
 * Writes the exposition into dst (capacity cap): every block summed, the
 * packet path's counters if it runs here.  Returns the length, or 0 if
 * cap was too small.
 */
size_t gw_metrics_render(char *dst, size_t cap);

/*
 * The endpoint: answers "GET /metrics" over HTTP/1.0 on the listening
 * socket fd (owned from then on), at most GW_METRICS_SCRAPERS at once,
 * each given 5 s.  Anything else gets 404 or 400.
 */
void gw_metrics_serve(struct ev_loop *loop, int fd);
void gw_metrics_stop(struct ev_loop *loop);

/* Opens the endpoint's listening socket for l.  fd, or -1 with a message
 * in err. */
int gw_metrics_listen(const struct gw_listen *l, char *err, size_t errcap);

#endif
