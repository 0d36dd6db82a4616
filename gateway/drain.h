/*
 * gateway/drain.h: a graceful stop.  The first SIGTERM closes the
 * listeners (another daemon may already hold sockets of the same
 * SO_REUSEPORT groups and takes every new connection), lets the sessions
 * run for up to drain_timeout_s, then tells those left "421 4.3.2"
 * (gw_session_drain_close) and stops once they have closed.  SIGQUIT, or
 * a second SIGTERM, stops at once.
 */
#ifndef GW_DRAIN_H
#define GW_DRAIN_H

#include <stddef.h>

#include <ev.h>

#include "gateway/listener.h"
#include "gateway/session.h"

struct gw_drain {
	ev_timer poll;    /* sessions left? */
	ev_timer timeout; /* drain_timeout_s, then the close grace */
	struct gw_ctx *ctx;
	int active;
	int told; /* 421 sent: only the close grace is left */
};

/* Starts draining ctx's sessions: closes the n listeners, ends the loop
 * when no session is left or when timeout_s plus the close grace have
 * passed.  A second call (a second SIGTERM) ends the loop at once. */
void gw_drain_start(struct gw_drain *d, struct gw_ctx *ctx,
    struct gw_listener *l, size_t n, unsigned timeout_s);

#endif
