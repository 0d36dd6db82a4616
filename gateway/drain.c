/*
 * gateway/drain.c: see drain.h.
 */
#include <ev.h>

#include "gateway/drain.h"
#include "gateway/log.h"

#define POLL_S 0.1
#define GRACE_S 10. /* after the 421s: flushing them, at most */

static void
poll_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct gw_drain *d = w->data;

	(void)revents;
	if (d->ctx->nsessions > 0)
		return;
	gw_log(LOG_INFO, "event=drain_done sessions=0");
	ev_break(loop, EVBREAK_ALL);
}

static void
timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct gw_drain *d = w->data;

	(void)revents;
	if (d->told) {
		gw_log(LOG_WARNING,
		    "event=drain_done sessions=%u "
		    "note=closed_after_grace",
		    d->ctx->nsessions);
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	gw_log(LOG_INFO, "event=drain_timeout sessions=%u reply=421",
	    d->ctx->nsessions);
	d->told = 1;
	gw_session_drain_close(d->ctx);
	ev_timer_set(&d->timeout, GRACE_S, 0.);
	ev_timer_start(loop, &d->timeout);
}

void
gw_drain_start(struct gw_drain *d, struct gw_ctx *ctx, struct gw_listener *l,
    size_t n, unsigned timeout_s)
{
	struct ev_loop *loop = ctx->loop;
	size_t i;

	if (d->active) {
		gw_log(LOG_INFO, "event=stop note=second_signal sessions=%u",
		    ctx->nsessions);
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	d->active = 1;
	d->ctx = ctx;
	for (i = 0; i < n; i++)
		gw_listener_stop(&l[i]);
	gw_log(LOG_INFO, "event=drain sessions=%u timeout_s=%u", ctx->nsessions,
	    timeout_s);
	ev_timer_init(&d->poll, poll_cb, 0., POLL_S);
	ev_timer_init(&d->timeout, timeout_cb, (double)timeout_s, 0.);
	d->poll.data = d->timeout.data = d;
	ev_timer_start(loop, &d->poll);
	ev_timer_start(loop, &d->timeout);
}
