/*
 * gateway/session.h: one relayed SMTP session, client leg and server leg,
 * driven by libev and by the smtpfix state machine.
 */
#ifndef GW_SESSION_H
#define GW_SESSION_H

#include <sys/queue.h>
#include <sys/socket.h>

#include <stdint.h>

#include <ev.h>

#include "gateway/config.h"
#include "gateway/tally.h"
#include "smtpfix/tlsmemo.h"

struct gw_session;
struct gw_dns;

/* Counters of the SMTP path since start (SIGUSR1 logs them). */
struct gw_smtp_stats {
	uint64_t sync_violations; /* RFC 2920 §3.1: 554 5.5.0, closed */
	uint64_t inline_bare_cr;  /* bare_line_endings inline: bytes */
	uint64_t inline_bare_lf;  /*   made text of their line */
	uint64_t inline_nul;
	uint64_t inline_messages; /* messages relayed with any of them */
};

struct gw_listener;

/* What all sessions share; owned by main. */
struct gw_ctx {
	struct ev_loop *loop;
	/* This loop's listeners (main's array), paused when a session
	 * runs out of descriptors. */
	struct gw_listener *listeners;
	size_t nlisten;
	struct gw_config *cfg; /* current; held */
	unsigned nsessions;
	unsigned data_grown;     /* buffers grown for data (session.c) */
	struct gw_tally clients; /* sessions per client address */
	struct gw_tally ups;     /* our upstream local ends */
	uint32_t next_id;
	struct gw_smtp_stats stats;
	TAILQ_HEAD(, gw_session) sessions;
	/* Servers whose TLS failed lately (per process, bounded), and how
	 * many sessions fell back to clear text upstream. */
	struct smtpfix_tlsmemo tls_failed;
	uint64_t tls_fallbacks;
	/* Route mode's resolver, made at the first route session with
	 * that config's dns_* keys (later changes need a restart). */
	struct gw_dns *dns;
	uint64_t routed; /* route-mode transactions handed to a server */
	/* draft-martin-smtp-ipv6-to-ipv4-fallback, Appendix A.3: servers
	 * that asked for IPv4 lately get it first (per process, bounded,
	 * advisory: the same table type as tls_failed); and the counts of
	 * fallbacks, by how they ended. */
	struct smtpfix_tlsmemo v4_wanted;
	struct gw_fallback_stats {
		uint64_t started;      /* a 4.4.8 refusal followed */
		uint64_t accepted;     /* the IPv4 server took the command */
		uint64_t refused;      /* ...answered it otherwise */
		uint64_t failed;       /* no IPv4 leg, or the replay failed */
		uint64_t remembered;   /* sessions sent over IPv4 first */
		uint64_t spool_files;  /* messages that outgrew memory */
		uint64_t spool_errors; /* messages that could not be held */
	} fb;
};

/* One log line with the session counters (SIGUSR1). */
void gw_ctx_log_stats(const struct gw_ctx *ctx);

void gw_ctx_init(
    struct gw_ctx *ctx, struct ev_loop *loop, struct gw_config *cfg);
/* New sessions use cfg (its reference passes to ctx); running sessions
 * keep the config they started with. */
void gw_ctx_set_config(struct gw_ctx *ctx, struct gw_config *cfg);

/*
 * Takes ownership of the accepted, non-blocking socket cfd: finds the
 * destination from the local address the client reached (local, or NULL
 * to ask the socket), connects to it and relays.  Failures are answered on cfd
 * and logged; nothing returned.
 */
void gw_session_start(struct gw_ctx *ctx, int cfd,
    const struct sockaddr_storage *peer, const struct sockaddr_storage *local);

/* Logs ctx->stats as one line (event=smtp_stats). */
void gw_session_log_stats(const struct gw_ctx *ctx, int level);

/* A drain timed out: 421 4.3.2 to every session's client, then each
 * closes once that is flushed (session_update's close grace). */
void gw_session_drain_close(struct gw_ctx *ctx);

/* Ends every session (shutdown). */
void gw_session_close_all(struct gw_ctx *ctx);

#endif
