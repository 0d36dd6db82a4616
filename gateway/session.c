/*
 * gateway/session.c: relays one SMTP session between a client and the
 * server its local address stands for (nat/dest.h decides which).
 *
 * A session has two sides of one type (struct gw_side): the client's and
 * the server's, each a socket, a TLS leg, an input buffer (read from that
 * peer, not yet parsed) and an output buffer (to write to it), of
 * buffer_bytes each.  smtpfix decides what moves from one side's input to
 * the other side's output; this file only moves bytes and keeps each
 * socket's interest in step with its buffers: read a peer only while its
 * input buffer has room, so one side can never make the gateway hold more
 * than it can pass on (backpressure).  One read, one write and one
 * handshake path serve both sides; where the peers differ (a client that
 * fails ends the session, a server that fails is reported to the client)
 * the side's direction says so.
 *
 * Each side is a TLS leg (gateway/tls.h): clear text until a STARTTLS
 * the gateway terminates, then TLS.  A TLS leg may need the opposite
 * readiness (a read that must write first, a write that must read), so
 * the watchers follow what the leg asks for, and bytes that OpenSSL has
 * already decrypted are fed to the loop by hand, since poll(2) cannot see
 * them.
 */
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/queue.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "gateway/buf.h"
#include "gateway/dns.h"
#include "gateway/listener.h"
#include "gateway/log.h"
#include "gateway/metrics.h"
#include "gateway/selfdst.h"
#include "gateway/session.h"
#include "gateway/spool.h"
#include "gateway/tls.h"
#include "gateway/uptable.h"
#include "nat/addr.h"
#include "nat/dest.h"
#include "nat/fallback.h"
#include "nat/scope.h"
#include "smtpfix/identity.h"
#include "smtpfix/front.h"
#include "smtpfix/line.h"
#include "smtpfix/opener.h"
#include "smtpfix/path.h"
#include "smtpfix/refuse.h"
#include "smtpfix/replay.h"
#include "smtpfix/stream.h"

#define PUMP_ROUNDS 64     /* steps per wake-up before yielding */
#define CLOSE_GRACE_S 10.  /* flushing a last reply at most this long */
#define DRAIN_MAX 64       /* reads when discarding pre-TLS bytes */
#define ROUTE_TARGETS 16   /* addresses tried per recipient domain */
#define ROUTE_FB_TARGETS 8 /* IPv4 addresses kept for a 4.4.8 retry */
/* A message's data, client to server, in steps of up to this many bytes:
 * a quarter of the read(2)/send(2) calls and wake-ups per megabyte of
 * 64 KiB steps, a sixteenth of 16 KiB ones. */
#define DATA_BUF_BYTES (256 * 1024)
/* Grown buffers a worker holds at once: 16 MiB, whatever stalls. */
#define DATA_GROWN_MAX 64

enum gw_dir {
	GW_CLIENT = 0,
	GW_SERVER = 1,
};

/* One peer of a session: the client's side or the server's. */
struct gw_side {
	struct gw_tls_leg tls; /* clear text, or TLS the gateway runs */
	struct gw_buf in;      /* read from this peer, not yet parsed */
	struct gw_buf out;     /* parsed, to write to this peer */
	ev_io rd, wr;          /* data: this side */
	uint64_t bytes;        /* read from this peer */
	int fd;                /* -1: not open (the server's, at times) */
	unsigned dir : 1,      /* enum gw_dir */
	    eof : 1,           /* nothing more to read from this peer */
	    shut : 1,          /* our write end is shut */
	    hs : 1,            /* TLS handshake running */
	    hs_wait : 1,       /* our 220 to STARTTLS first, then TLS */
	    connecting : 1;    /* connect(2) in progress */
};

/*
 * One per client connection, held for as long as it lasts: most of a
 * gateway's sessions are idle at any moment, so what only some sessions
 * use lives outside, allocated on first use and freed with the session
 * (session_end): the TLS state of an upstream leg (gateway/tls.c), the
 * IPv6-to-IPv4 fallback (struct gw_fallback), the client's identity
 * (with identity configured), route mode (struct gw_routed).  Fields
 * are ordered so the compiler inserts no padding.
 */
struct gw_session {
	TAILQ_ENTRY(gw_session) entry;
	struct gw_ctx *ctx;
	struct gw_config *cfg;  /* held until the end */
	struct gw_side side[2]; /* by enum gw_dir */
	ev_timer timer;
	ev_tstamp start, last;
	ev_tstamp up_t0;              /* upstream connect began */
	const struct gw_tls_sel *tls; /* pair's, in cfg */
	size_t up_slot;     /* in the workers' shared table (uptable.h) */
	const char *reason; /* how it ended */
	/* IPv6-to-IPv4 fallback: NULL without an IPv4 target. */
	struct gw_fallback *fb;
	/* Who connected, for servers that trust the gateway: owned, NULL
	 * when the server is not told (identity off). */
	struct smtpfix_identity *ident;
	struct gw_routed *rt;      /* route mode; NULL for pairs */
	struct smtpfix_policy pol; /* cfg's, HELO name per pair */
	/* The upstream leg's destination (its name in logs and memos is
	 * up_name's) and source, kept to connect again after a failed
	 * upstream handshake. */
	struct nat_addr up_dst, up_src;
	struct nat_addr up_local; /* our end of the upstream */
	struct nat_addr client;
	unsigned up_port;
	uint32_t id;
	uint32_t inl[3]; /* this message: bare CR, LF, NUL inlined */
	unsigned ncmds;  /* refusing: commands seen */
	enum smtpfix_identity_mode id_mode;
	unsigned closing : 1, opaque : 1, told : 1, refusing : 1,
	    counted : 1,           /* in ctx->clients */
	    up_counted : 1,        /* up_local in ctx->ups */
	    id_required : 1;       /* identity_required */
	struct smtpfix_stream fix; /* last: the largest part */
};

/*
 * IPv6-to-IPv4 fallback (draft-martin §3) of a session whose upstream
 * leg has an IPv4 target: the transaction's record, the message held
 * until a final reply, and where the IPv4 leg goes.  One allocation
 * (fallback_arm), the record's arena after it; fallback_free.
 */
struct gw_fallback {
	struct gw_spool spool;
	struct gw_spool_opts spool_opts; /* spool's */
	uint64_t spool_off;              /* replaying: bytes of the spool
	                                    sent */
	struct nat_addr dst, src;
	unsigned spool_send : 1, spool_err : 1;
	struct smtpfix_replay rp;
	char arena[]; /* rp's, REPLAY_ARENA bytes */
};

/*
 * Route mode (smtp64.conf(5) ROUTE MODE): the phases of a session whose
 * server is chosen per transaction.  FRONT: smtpfix/front answers the
 * client; RESOLVE: the recipient's domain is being looked up; CONNECT: a
 * target is being connected (the next on failure, RFC 3974 §3 step 8);
 * OPEN: smtpfix/opener greets the server and replays MAIL; RELAY: the
 * stream machine relays, as in a pair's session, until the transaction
 * ends and the client goes back to FRONT.
 */
enum gw_phase {
	PH_RELAY = 0,
	PH_FRONT,
	PH_RESOLVE,
	PH_CONNECT,
	PH_OPEN,
};

struct gw_routed {
	size_t route; /* index into cfg->routes */
	enum gw_phase phase;
	int local_family;
	struct smtpfix_front_policy fpol;
	struct smtpfix_front front;
	struct smtpfix_opener op;
	enum smtpfix_opener_tls optls;
	struct gw_dns_query *q; /* RESOLVE: the lookup */
	char dom[256];          /* the transaction's domain, lower case */
	size_t dom_len;
	char cdom[256]; /* a RCPT's other domain, being checked */
	/* The targets to try, [0, nt), in the family the route translates
	 * into; after them, [nt, nt + n4), the domain's IPv4 addresses for
	 * a 4.4.8 retry when those are IPv6 (draft-martin §3.2). */
	struct nat_mx_target t[ROUTE_TARGETS + ROUTE_FB_TARGETS];
	size_t nt, ti;   /* targets, the next to try */
	size_t n4;       /* IPv4 addresses after the targets */
	size_t cur;      /* the target of the leg being opened or used */
	int clear_retry; /* this target again, without STARTTLS */
	/* draft-martin §3 in route mode, one fallback a transaction: the
	 * IPv4 target of the IPv6 one (nat/fallback.h, -1: none); fb_open:
	 * the leg being opened is the IPv4 retry of a refusal the opener
	 * met; fb_leg: ...of a refusal the relay met (ACT_FALLBACK), whose
	 * transaction the stream replays once the opener is done. */
	long fb_pick;
	int fb_used, fb_open, fb_leg;
	char mail[]; /* the MAIL line, cmd_max bytes */
};

#define CL(s) (&(s)->side[GW_CLIENT])
/* The session a side belongs to: side[d->dir] of it (a side keeps no
 * pointer back, as every session has two). */
static struct gw_session *
side_session(struct gw_side *d)
{
	return (struct gw_session *)((char *)(d - d->dir) -
	                             offsetof(struct gw_session, side));
}
/* RFC 3463 X.4.2: the connection broke while the leg was being opened. */
#define S_ROUTE_LOST "451 4.4.2 The destination server did not answer\r\n"
#define UP(s) (&(s)->side[GW_SERVER])

static void session_end(struct gw_session *);
static void session_update(struct gw_session *);
static void upstream_connect(
    struct gw_session *, const struct nat_addr *, const struct nat_addr *);
static void pump_route(struct gw_session *);
static void route_to_front(struct gw_session *);
static void route_check_start(struct gw_session *);
static int route_connect_failed(struct gw_session *, int);
static void route_connected(struct gw_session *);
static void route_upstream_tls_done(struct gw_session *, int);
static void route_target_failed(
    struct gw_session *, const char *, size_t, const char *);
static void route_connect_target(struct gw_session *, size_t);

/* 1 while the stream machine relays (every pair session; a route-mode
 * session between its first RCPT and the end of its transaction). */
static int
relaying(const struct gw_session *s)
{
	return s->rt == NULL || s->rt->phase == PH_RELAY;
}

/*
 * 1 while a message's data flows from the client to the server.  The two
 * buffers it passes through (the client's input, the server's output)
 * then grow to DATA_BUF_BYTES once a read fills them (data_grow), and are
 * kept between reads; after the data they are returned as soon as they are
 * empty (session_update), so an idle session still holds none.  Small messages
 * never fill buffer_bytes and never grow.
 */
static int
data_flowing(const struct gw_session *s)
{
	return relaying(s) && !s->closing && s->fb == NULL &&
	       smtpfix_stream_wait(&s->fix) == SMTPFIX_WAIT_DATA;
}

static size_t
data_cap(const struct gw_session *s)
{
	return s->cfg->buffer_bytes > DATA_BUF_BYTES ? s->cfg->buffer_bytes
	                                             : DATA_BUF_BYTES;
}

/* Grows b for a message's data, within the worker's budget; without the
 * memory or the budget the smaller buffer does, in smaller steps. */
static void
data_grow(struct gw_session *s, struct gw_buf *b)
{
	if (b->cap >= data_cap(s) || s->ctx->data_grown >= DATA_GROWN_MAX)
		return;
	if (gw_buf_grow(b, data_cap(s)) == 0)
		s->ctx->data_grown++;
}

/* Frees b's storage (with empty_only, only when it holds nothing), and
 * gives a grown buffer back to the budget. */
static void
buf_return(struct gw_session *s, struct gw_buf *b, int empty_only)
{
	if (b->data == NULL || (empty_only && b->len > 0))
		return;
	if (b->cap > s->cfg->buffer_bytes)
		s->ctx->data_grown--;
	gw_buf_free(b);
}

void
gw_ctx_init(struct gw_ctx *ctx, struct ev_loop *loop, struct gw_config *cfg)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->loop = loop;
	ctx->cfg = cfg;
	TAILQ_INIT(&ctx->sessions);
	gw_tally_init(&ctx->clients);
	gw_tally_init(&ctx->ups);
	smtpfix_tlsmemo_init(&ctx->tls_failed);
	smtpfix_tlsmemo_init(&ctx->v4_wanted);
}

void
gw_ctx_log_stats(const struct gw_ctx *ctx)
{
	const struct gw_fallback_stats *f = &ctx->fb;

	gw_log(LOG_INFO,
	    "event=stats sessions=%u tls_fallbacks=%llu fallback_448=%llu "
	    "fallback_448_accepted=%llu fallback_448_refused=%llu "
	    "fallback_448_failed=%llu fallback_448_remembered=%llu "
	    "fallback_spool_files=%llu fallback_spool_errors=%llu",
	    ctx->nsessions, (unsigned long long)ctx->tls_fallbacks,
	    (unsigned long long)f->started, (unsigned long long)f->accepted,
	    (unsigned long long)f->refused, (unsigned long long)f->failed,
	    (unsigned long long)f->remembered,
	    (unsigned long long)f->spool_files,
	    (unsigned long long)f->spool_errors);
}

void
gw_ctx_set_config(struct gw_ctx *ctx, struct gw_config *cfg)
{
	struct gw_config *old = ctx->cfg;

	ctx->cfg = cfg;
	gw_config_release(old);
}

/* sockaddr to nat_addr + port; IPv4-mapped IPv6 (a v4 client on a
 * dual-stack socket, e.g. under TPROXY) counts as IPv4. */
static void
sa_to_addr(
    const struct sockaddr_storage *ss, struct nat_addr *a, unsigned *port)
{
	memset(a, 0, sizeof(*a));
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)ss;

		a->family = AF_INET;
		a->u.v4 = s4->sin_addr;
		*port = ntohs(s4->sin_port);
	} else {
		const struct sockaddr_in6 *s6 = (const void *)ss;

		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			a->family = AF_INET;
			memcpy(&a->u.v4, &s6->sin6_addr.s6_addr[12], 4);
		} else {
			a->family = AF_INET6;
			a->u.v6 = s6->sin6_addr;
		}
		*port = ntohs(s6->sin6_port);
	}
}

static void
addr_str(const struct nat_addr *a, unsigned port, char *dst, size_t cap)
{
	char t[INET6_ADDRSTRLEN];

	if (nat_addr_fmt(a, t, sizeof(t)) < 0)
		(void)snprintf(t, sizeof(t), "?");
	if (a->family == AF_INET6)
		(void)snprintf(dst, cap, "[%s]:%u", t, port);
	else
		(void)snprintf(dst, cap, "%s:%u", t, port);
}

#define UP_NAME_MAX 64

/* The upstream destination as logs and the servers' memos (tlsmemo) name
 * it, "[2001:db8::25]:25", or "" while a route-mode session has none,
 * into dst of UP_NAME_MAX bytes; returns dst.  Formatted from up_dst when
 * needed rather than kept in every session. */
static const char *
up_name(const struct gw_session *s, char *dst)
{
	if (s->up_dst.family == 0)
		dst[0] = '\0';
	else
		addr_str(&s->up_dst, s->cfg->upstream_port, dst, UP_NAME_MAX);
	return dst;
}

/*
 * A reply to a client we will not relay (no pair, too many sessions): one
 * short line on a fresh socket fits its send buffer, so a single
 * non-blocking send suffices; then close.
 */
static void
refuse(
    const struct gw_config *cfg, int fd, const char *code_enh, const char *text)
{
	char line[512];
	size_t n;

	n = smtpfix_reply_fmt(line, sizeof(line), cfg->pol.fqdn,
	    cfg->pol.fqdn_len, code_enh, text);
	if (n > 0)
		(void)send(fd, line, n, MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
}

/* Queues a reply of our own for the client, if the buffer takes it. */
static void
say(struct gw_session *s, const char *code_enh, const char *text)
{
	const struct smtpfix_policy *pol = &s->cfg->pol;
	char line[512];
	size_t n;

	if (gw_buf_alloc(&CL(s)->out, s->cfg->buffer_bytes) != 0)
		return;
	n = smtpfix_reply_fmt(
	    line, sizeof(line), pol->fqdn, pol->fqdn_len, code_enh, text);
	if (n > 0 && gw_buf_room(&CL(s)->out) >= n)
		gw_buf_put(&CL(s)->out, line, n);
	s->told = 1;
}

static void
upstream_close(struct gw_session *s, int reset)
{
	struct gw_side *u = UP(s);
	struct linger lg = {1, 0};

	if (u->fd < 0)
		return;
	ev_io_stop(s->ctx->loop, &u->rd);
	ev_io_stop(s->ctx->loop, &u->wr);
	/* SO_LINGER 0 makes close send RST: the server then knows the
	 * transaction was cut, and never sees a clean end of data. */
	if (reset)
		(void)setsockopt(u->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	else
		gw_tls_shutdown(&u->tls);
	gw_tls_leg_free(&u->tls);
	u->hs = 0;
	u->connecting = 0;
	close(u->fd);
	u->fd = -1;
	if (s->up_counted) {
		gw_tally_sub(&s->ctx->ups, &s->up_local, s->up_port);
		s->up_counted = 0;
	}
	gw_uptable_del(s->up_slot);
	s->up_slot = 0;
	u->eof = 1;
	u->out.len = 0;
}

/* Stop relaying; flush what the client is owed, then end. */
static void
begin_close(struct gw_session *s, const char *reason, int reset_upstream)
{
	if (s->reason == NULL)
		s->reason = reason;
	s->closing = 1;
	upstream_close(s, reset_upstream);
	ev_io_stop(s->ctx->loop, &CL(s)->rd);
}

/* bare_line_endings inline: every normalisation is counted and logged
 * with its reason, the first of its kind in a message at info, the rest
 * at debug (a client that ends every line with LF would flood the log). */
static void
log_inline(struct gw_session *s, const struct smtpfix_step *st)
{
	static const char *const names[3] = {"bare_cr", "bare_lf", "nul"};
	uint64_t *count[3] = {&s->ctx->stats.inline_bare_cr,
	    &s->ctx->stats.inline_bare_lf, &s->ctx->stats.inline_nul};
	unsigned k;

	for (k = 0; k < 2; k++)
		if (st->detail != NULL && strcmp(st->detail, names[k]) == 0)
			break;
	(*count[k])++;
	gw_metrics_count(GW_M_INLINE_BARE_CR + k, 1);
	if (s->inl[k] < UINT32_MAX)
		s->inl[k]++;
	if (s->inl[k] > 1 && !gw_log_enabled(LOG_DEBUG))
		return;
	gw_log(s->inl[k] == 1 ? LOG_INFO : LOG_DEBUG,
	    "session=%08x event=inline reason=%s action=%s message=%llu", s->id,
	    names[k], k == 2 ? "removed" : "crlf",
	    (unsigned long long)smtpfix_stream_messages(&s->fix) + 1);
}

/* The XCLIENT attributes of mask (SMTPFIX_XC_* bits) as "NAME,ADDR,...",
 * or "-" when none, for the log. */
static const char *
xclient_attrs(int mask, char *dst, size_t cap)
{
	static const char *const names[] = {
	    "NAME", "ADDR", "PORT", "PROTO", "HELO", "DESTADDR", "DESTPORT"};
	size_t n = 0, i;

	dst[0] = '\0';
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int k;

		if (!(mask & (1 << i)))
			continue;
		k = snprintf(
		    dst + n, cap - n, "%s%s", n > 0 ? "," : "", names[i]);
		if (k < 0 || (size_t)k >= cap - n)
			break;
		n += (size_t)k;
	}
	return n > 0 ? dst : "-";
}

/* XCLIENT's progress at debug; its outcome once per transport, at
 * info when accepted, else warning (the server judges the gateway). */
static void
log_identity(struct gw_session *s, const struct smtpfix_step *st)
{
	const char *d = st->detail != NULL ? st->detail : "?";
	int mask = smtpfix_stream_xclient_mask(&s->fix);
	char attrs[80];

	if (strcmp(d, "accepted") != 0 && strcmp(d, "not_offered") != 0 &&
	    strcmp(d, "refused") != 0 && strcmp(d, "required") != 0) {
		gw_log(LOG_DEBUG,
		    "session=%08x event=identity mode=xclient "
		    "step=%s",
		    s->id, d);
		return;
	}
	if (strcmp(d, "required") == 0) {
		gw_log(LOG_WARNING,
		    "session=%08x event=identity mode=xclient "
		    "result=not_accepted action=close reply=421",
		    s->id);
		return;
	}
	gw_log(strcmp(d, "accepted") == 0 ? LOG_INFO : LOG_WARNING,
	    "session=%08x event=identity mode=xclient result=%s attrs=%s "
	    "tls=%s action=%s",
	    s->id, d, xclient_attrs(mask, attrs, sizeof(attrs)),
	    smtpfix_stream_tls_server(&s->fix) ? "yes" : "no",
	    strcmp(d, "accepted") == 0 ? "none"
	    : s->id_required           ? "close"
	                               : "continue_as_gateway");
}

static void
log_step(struct gw_session *s, const struct smtpfix_step *st)
{
	char un[UP_NAME_MAX];
	char in[160], out[300];

	switch (st->event) {
	case SMTPFIX_EV_NONE:
		if (st->verb != NULL && gw_log_enabled(LOG_DEBUG))
			gw_log(LOG_DEBUG,
			    "session=%08x event=command verb=%s%s", s->id,
			    st->verb, st->secret ? " secret=yes" : "");
		return;
	case SMTPFIX_EV_HELO:
		if (st->act == SMTPFIX_ACT_EMIT)
			gw_metrics_count(GW_M_REWRITE_HELO, 1);
		gw_log(LOG_INFO,
		    "session=%08x event=helo verb=%s helo_in=%s "
		    "helo_out=%s rewritten=%s",
		    s->id, st->verb != NULL ? st->verb : "?",
		    gw_log_escape(in, sizeof(in), st->helo_in, st->helo_in_len),
		    gw_log_escape(
		        out, sizeof(out), st->helo_out, st->helo_out_len),
		    st->act == SMTPFIX_ACT_EMIT ? "yes" : "no");
		return;
	case SMTPFIX_EV_BAD_LINE:
		gw_log(LOG_WARNING,
		    "session=%08x event=reject reason=bare_cr_lf_nul "
		    "reply=500",
		    s->id);
		return;
	case SMTPFIX_EV_TOO_LONG:
		gw_log(LOG_WARNING,
		    "session=%08x event=reject "
		    "reason=line_too_long reply=500",
		    s->id);
		return;
	case SMTPFIX_EV_SMUGGLE:
		gw_log(LOG_WARNING,
		    "session=%08x event=reject reason=smuggling "
		    "detail=bare_cr_lf_nul_in_data action=abort_upstream "
		    "reply=554",
		    s->id);
		return;
	case SMTPFIX_EV_BDAT:
		gw_log(LOG_INFO, "session=%08x event=reject reason=%s reply=%s",
		    s->id, st->detail != NULL ? st->detail : "bdat",
		    st->detail != NULL && strcmp(st->detail, "bdat_syntax") == 0
		        ? "501 action=close"
		        : "502");
		return;
	case SMTPFIX_EV_TLS:
		gw_log(LOG_INFO,
		    "session=%08x event=starttls mode=passthrough "
		    "note=post_tls_helo_not_rewritten",
		    s->id);
		return;
	case SMTPFIX_EV_BAD_REPLY:
		gw_log(LOG_WARNING,
		    "session=%08x event=server_protocol_error "
		    "reply=421",
		    s->id);
		return;
	case SMTPFIX_EV_DATA_END:
		gw_log(LOG_DEBUG, "session=%08x event=data_end", s->id);
		if (s->inl[0] + s->inl[1] + s->inl[2] > 0) {
			s->ctx->stats.inline_messages++;
			gw_log(LOG_INFO,
			    "session=%08x event=inline_summary message=%llu "
			    "bare_cr=%u bare_lf=%u nul=%u",
			    s->id,
			    (unsigned long long)smtpfix_stream_messages(
			        &s->fix),
			    s->inl[0], s->inl[1], s->inl[2]);
			memset(s->inl, 0, sizeof(s->inl));
		}
		return;
	case SMTPFIX_EV_SYNC:
		s->ctx->stats.sync_violations++;
		gw_log(LOG_WARNING,
		    "session=%08x event=reject reason=sync_violation "
		    "after=%s reply=554 action=close_reset_upstream",
		    s->id, st->detail != NULL ? st->detail : "?");
		return;
	case SMTPFIX_EV_INLINE:
		log_inline(s, st);
		return;
	case SMTPFIX_EV_PATH:
		gw_log(LOG_INFO,
		    "session=%08x event=reject verb=%s reason=%s "
		    "reply=553",
		    s->id, st->verb != NULL ? st->verb : "?",
		    st->detail != NULL ? st->detail : "?");
		return;
	case SMTPFIX_EV_QUEUE_FULL:
		gw_log(LOG_DEBUG, "session=%08x event=pipeline_full", s->id);
		return;
	case SMTPFIX_EV_PREGREET:
		gw_log(LOG_WARNING,
		    "session=%08x event=reject reason=pregreet "
		    "detail=%s action=abort_upstream reply=554",
		    s->id, st->detail != NULL ? st->detail : "?");
		return;
	case SMTPFIX_EV_VERB:
		gw_log(LOG_WARNING,
		    "session=%08x event=reject reason=verb_%s verb=%s "
		    "reply=%s",
		    s->id, st->detail != NULL ? st->detail : "?",
		    st->verb != NULL ? st->verb : "unknown",
		    st->detail != NULL && strcmp(st->detail, "not_offered") == 0
		        ? "502"
		        : "500");
		return;
	case SMTPFIX_EV_OTHER_SERVER:
		gw_log(LOG_INFO,
		    "session=%08x event=reject verb=RCPT reason=other_server "
		    "reply=452",
		    s->id);
	case SMTPFIX_EV_FALLBACK:
		return; /* fallback_start logs it, with the server's words */
	case SMTPFIX_EV_FALLBACK_FAILED:
		s->ctx->fb.failed++;
		gw_log(LOG_WARNING,
		    "session=%08x event=fallback_448_outcome server=%s "
		    "outcome=failed reason=replay_refused command=%s "
		    "reply=421",
		    s->id, up_name(s, un),
		    st->detail != NULL ? st->detail : "?");
		return;
	case SMTPFIX_EV_FALLBACK_VERB:
		gw_log(LOG_DEBUG,
		    "session=%08x event=fallback_verb server=%s "
		    "note=ipv6_ipv4_fallback_offered",
		    s->id, up_name(s, un));
		return;
	case SMTPFIX_EV_REPLY_CODE:
		gw_log(LOG_INFO,
		    "session=%08x event=reply_recoded from=456 to=451 "
		    "reason=ipv6_ipv4_fallback_not_negotiated",
		    s->id);
		return;
	case SMTPFIX_EV_IDENTITY:
		log_identity(s, st);
		return;
	case SMTPFIX_EV_STARTTLS:
		gw_log(LOG_INFO,
		    "session=%08x event=starttls mode=%s "
		    "upstream=%s action=%s",
		    s->id,
		    s->tls != NULL ? smtpfix_tlspolicy_mode_name(
		                         smtpfix_tlspolicy_mode(&s->tls->pol))
		                   : "passthrough",
		    s->tls != NULL
		        ? smtpfix_tlspolicy_upstream_name(s->tls->pol.upstream)
		        : "-",
		    st->detail != NULL ? st->detail : "?");
		return;
	}
}

/* One log line for a leg whose handshake ended (RFC 3207 §4.1: the
 * client's certificate, if offered, is named by peer_cert). */
static void
log_tls(struct gw_session *s, const char *leg, const struct gw_tls_leg *l)
{
	char d[300];

	gw_metrics_count(
	    leg[0] == 'c' ? GW_M_TLS_CLIENT_OK : GW_M_TLS_SERVER_OK, 1);
	if (gw_tls_resumed(l))
		gw_metrics_count(leg[0] == 'c' ? GW_M_TLS_CLIENT_RESUMED
		                               : GW_M_TLS_SERVER_RESUMED,
		    1);
	gw_log(LOG_INFO, "session=%08x event=tls leg=%s %s", s->id, leg,
	    gw_tls_describe(l, d, sizeof(d)));
}

static void
log_tls_failed(
    struct gw_session *s, const char *leg, const char *why, const char *err)
{
	char e[200];

	gw_metrics_count(
	    leg[0] == 'c' ? GW_M_TLS_CLIENT_FAILED : GW_M_TLS_SERVER_FAILED, 1);
	gw_log(LOG_WARNING,
	    "session=%08x event=tls_failed leg=%s reason=%s "
	    "error=\"%s\"",
	    s->id, leg, why, gw_log_escape(e, sizeof(e), err, strlen(err)));
}

/* After STARTTLS's 220: nothing the client sent before it may reach the
 * server (RFC 3207 §4, CVE-2011-0411 class). */
static void
drain_client(struct gw_session *s)
{
	struct gw_side *c = CL(s);
	char junk[4096];
	int i;

	c->in.len = c->in.off = 0;
	for (i = 0; i < DRAIN_MAX; i++) {
		ssize_t n = recv(c->fd, junk, sizeof(junk), MSG_DONTWAIT);

		if (n <= 0)
			break;
	}
}

/*
 * RFC 7435 §1: the upstream handshake failed under opportunistic; the
 * stream wants a new clear-text connection to the same server.  The old
 * one goes with everything read from it, the server is remembered for
 * tls_fallback_remember_s (so the next session does not fail first), and
 * the client, still waiting for its 220, gets its TLS once the new
 * greeting is in.
 */
static void
upstream_fallback(struct gw_session *s, const char *why)
{
	struct gw_side *u = UP(s);
	unsigned ttl = s->cfg->tls_fallback_remember_s;
	char un[UP_NAME_MAX];

	s->ctx->tls_fallbacks++;
	gw_metrics_count(GW_M_TLS_FALLBACK, 1);
	(void)up_name(s, un);
	smtpfix_tlsmemo_note(&s->ctx->tls_failed, un, strlen(un),
	    (uint64_t)ev_now(s->ctx->loop), ttl);
	gw_log(LOG_WARNING,
	    "session=%08x event=tls_fallback leg=server dest=%s reason=%s "
	    "action=reconnect_clear remember_s=%u fallbacks=%llu",
	    s->id, un, why, ttl, (unsigned long long)s->ctx->tls_fallbacks);
	upstream_close(s, 1);
	u->in.len = u->in.off = 0;
	u->out.len = u->out.off = 0;
	u->eof = 0;
	u->shut = 0;
	upstream_connect(s, &s->up_dst, &s->up_src);
}

/*
 * ---- IPv6-to-IPv4 fallback on 4.4.8 -------------------------------------
 * draft-martin-smtp-ipv6-to-ipv4-fallback §3: a server that refuses mail
 * over IPv6 with 421/451 4.4.8 (or 456 4.4.8 after IPV6-IPV4-FALLBACK)
 * asks for an immediate retry over IPv4.  smtpfix/replay.h records the
 * transaction and smtpfix/stream.h decides; here the I/O: a new leg to
 * the IPv4 address, and the message held (gateway/spool.h) from DATA's
 * 354 until the reply to its end, to send it again.  The client is
 * answered only by the server that decides: it never gets 250 for a
 * message no server accepted, and a message is never sent to the IPv4
 * server unless the IPv6 one refused it (its leg is reset first).
 */
#define REPLAY_ARENA 16384 /* command lines kept: MAIL, RCPTs, ... */

/*
 * Arms the fallback of a session whose upstream leg is IPv6: v4 is the
 * same destination's IPv4 address (a pair's fallback_ipv4; in route mode
 * an IPv4 host of the same or the next MX preference, §3.2 and Appendix
 * A.3.1).  Call before the first step.  Returns 0, or -1 without memory
 * (the session then relays a 4.4.8 as it is).
 */
static int
fallback_arm(struct gw_session *s, const struct nat_addr *v4)
{
	const struct gw_config *cfg = s->cfg;
	struct gw_fallback *fb;
	uint32_t pair;

	if ((fb = malloc(sizeof(*fb) + REPLAY_ARENA)) == NULL)
		return -1;
	/* The arena is the record's to fill: only the rest starts zero. */
	memset(fb, 0, sizeof(*fb));
	smtpfix_replay_init(&fb->rp, fb->arena, REPLAY_ARENA);
	fb->dst = *v4;
	(void)nat_dest_source(&cfg->dest, &s->client, AF_INET, &fb->src, &pair);
	fb->spool_opts.dir = cfg->spool_dir;
	fb->spool_opts.mem_max = cfg->spool_memory_bytes;
	fb->spool_opts.total_max = cfg->spool_max_bytes;
	gw_spool_init(&fb->spool, &fb->spool_opts);
	s->fb = fb;
	smtpfix_stream_set_fallback(&s->fix, &fb->rp);
	return 0;
}

/* Frees the fallback block and what it holds (the spool's memory or
 * file): at the end of a session, or of a route-mode transaction. */
static void
fallback_free(struct gw_session *s)
{
	if (s->fb == NULL)
		return;
	gw_spool_clear(&s->fb->spool);
	free(s->fb);
	s->fb = NULL;
}

/* Message bytes that went to the server, held for a replay.  A message
 * that cannot be held (over spool_max_bytes, a full disk) is relayed
 * all the same; only its fallback is lost (the 4.4.8 then reaches the
 * client, whose queue retries). */
static void
fallback_hold(struct gw_session *s, const char *p, size_t n)
{
	struct gw_fallback *fb = s->fb;
	int disk = gw_spool_on_disk(&fb->spool);

	if (fb->spool_err || smtpfix_replay_broken(&fb->rp) != NULL)
		return;
	if (gw_spool_append(&fb->spool, p, n) != 0) {
		fb->spool_err = 1;
		s->ctx->fb.spool_errors++;
		gw_log(LOG_WARNING,
		    "session=%08x event=fallback_hold_failed held_bytes=%llu "
		    "error=\"%s\" note=no_fallback_for_this_session",
		    s->id, (unsigned long long)gw_spool_size(&fb->spool),
		    strerror(errno));
		smtpfix_replay_break(&fb->rp, "spool");
		gw_spool_clear(&fb->spool);
		return;
	}
	if (!disk && gw_spool_on_disk(&fb->spool)) {
		s->ctx->fb.spool_files++;
		gw_log(LOG_DEBUG,
		    "session=%08x event=fallback_hold to=file dir=%s", s->id,
		    fb->spool_opts.dir);
	}
}

/* After each server reply: the held message goes once its outcome is
 * known, and the outcome of a fallback is logged and counted. */
static void
fallback_after_reply(struct gw_session *s)
{
	struct gw_fallback *fb = s->fb;
	char un[UP_NAME_MAX];
	unsigned code;

	if (gw_spool_size(&fb->spool) > 0 && !fb->spool_send &&
	    !smtpfix_replay_holds_message(&fb->rp))
		gw_spool_clear(&fb->spool);
	if (!smtpfix_replay_outcome(&fb->rp, &code))
		return;
	if (code / 100 == 2 || code / 100 == 3)
		s->ctx->fb.accepted++;
	else
		s->ctx->fb.refused++;
	gw_log(LOG_INFO,
	    "session=%08x event=fallback_448_outcome server=%s phase=%s "
	    "code=%u outcome=%s",
	    s->id, up_name(s, un),
	    smtpfix_replay_class_name(
	        (enum smtpfix_replay_class)fb->rp.first_cls),
	    code, code / 100 == 2 || code / 100 == 3 ? "accepted" : "refused");
}

/* ACT_FALLBACK: the IPv6 leg goes (reset: the server never sees a clean
 * end of anything more), the server is remembered, the IPv4 leg opens. */
static void
fallback_start(struct gw_session *s, const struct smtpfix_step *st)
{
	struct gw_side *u = UP(s);
	struct gw_fallback *fb = s->fb;
	unsigned ttl = s->cfg->fallback_remember_s;
	char why[SMTPFIX_REPLAY_WHY_MAX * 4 + 1], to[64], un[UP_NAME_MAX];

	s->ctx->fb.started++;
	(void)up_name(s, un);
	smtpfix_tlsmemo_note(&s->ctx->v4_wanted, un, strlen(un),
	    (uint64_t)ev_now(s->ctx->loop), ttl);
	addr_str(&fb->dst, s->cfg->upstream_port, to, sizeof(to));
	gw_log(LOG_WARNING,
	    "session=%08x event=fallback_448 server=%s code=%.3s "
	    "phase=%s reply=\"%s\" action=retry_ipv4 target=%s "
	    "held_bytes=%llu remember_s=%u fallbacks=%llu",
	    s->id, un, fb->rp.why_len >= 3 ? fb->rp.why : "?",
	    st->detail != NULL ? st->detail : "?",
	    gw_log_escape(why, sizeof(why), fb->rp.why, fb->rp.why_len), to,
	    (unsigned long long)gw_spool_size(&fb->spool), ttl,
	    (unsigned long long)s->ctx->fb.started);
	upstream_close(s, 1);
	u->in.len = u->in.off = 0;
	u->out.len = u->out.off = 0;
	u->eof = 0;
	u->shut = 0;
	if (s->rt != NULL && s->rt->fb_pick >= 0) {
		/* Route mode: the opener opens the IPv4 leg (its greeting,
		 * EHLO, STARTTLS and XCLIENT as configured, MAIL), then the
		 * stream replays the rest (smtpfix_stream_fallback_opened). */
		s->rt->fb_leg = 1;
		s->rt->fb_used = 1;
		route_connect_target(s, (size_t)s->rt->fb_pick);
		return;
	}
	s->up_dst = fb->dst;
	s->up_src = fb->src;
	upstream_connect(s, &s->up_dst, &s->up_src);
}

/* The IPv4 leg could not be opened: the client gets a 4xx that carries
 * the IPv6 server's words, so its queue retries.  Returns 1 if it
 * answered. */
static int
fallback_connect_failed(struct gw_session *s, const char *err)
{
	char text[400], un[UP_NAME_MAX];
	int n;

	if (s->fb == NULL || !smtpfix_stream_fell_back(&s->fix))
		return 0;
	s->ctx->fb.failed++;
	n = (int)s->fb->rp.why_len;
	if (n > 200)
		n = 200;
	(void)snprintf(text, sizeof(text),
	    "retry over IPv4 failed (%s); the IPv6 server said: %.*s", err, n,
	    s->fb->rp.why);
	say(s, "421 4.4.8", text);
	gw_log(LOG_WARNING,
	    "session=%08x event=fallback_448_outcome server=%s "
	    "outcome=failed reason=connect error=\"%s\" reply=421",
	    s->id, up_name(s, un), err);
	return 1;
}

/* ACT_REPLAY_DATA: the held message goes to the new server, as room
 * allows; no other c2s step runs until all of it is queued.  Returns 1 if
 * anything moved. */
static int
fallback_send_held(struct gw_session *s)
{
	struct gw_buf *out = &UP(s)->out;
	struct gw_fallback *fb = s->fb;
	uint64_t total = gw_spool_size(&fb->spool);
	char un[UP_NAME_MAX];
	size_t room;
	ssize_t n;

	if (fb->spool_off >= total) {
		fb->spool_send = 0;
		gw_spool_clear(&fb->spool);
		return 1;
	}
	if (out->data == NULL && gw_buf_alloc(out, s->cfg->buffer_bytes) != 0)
		return 0;
	if ((room = gw_buf_room(out)) == 0)
		return 0;
	n = gw_spool_read(
	    &fb->spool, fb->spool_off, out->data + out->off + out->len, room);
	if (n <= 0) {
		gw_log(LOG_ERR,
		    "session=%08x event=fallback_448_outcome server=%s "
		    "outcome=failed reason=spool_read error=\"%s\"",
		    s->id, up_name(s, un), n < 0 ? strerror(errno) : "short");
		s->ctx->fb.failed++;
		say(s, "421 4.3.0", "cannot read the held message, try later");
		begin_close(s, "fallback_spool", 1);
		return 0;
	}
	out->len += (size_t)n;
	fb->spool_off += (uint64_t)n;
	s->last = ev_now(s->ctx->loop);
	return 1;
}
/*
 * A new session whose upstream leg would be IPv6, with v4 for the same
 * destination: a server that asked for IPv4 lately (Appendix A.3: such
 * refusals persist) gets IPv4 at once, else the fallback is armed.
 */
static void
fallback_session(struct gw_session *s, const struct nat_addr *v4)
{
	struct gw_ctx *ctx = s->ctx;
	char to[64], un[UP_NAME_MAX];
	uint32_t pair;

	(void)up_name(s, un);
	if (smtpfix_tlsmemo_known(
	        &ctx->v4_wanted, un, strlen(un), (uint64_t)ev_now(ctx->loop))) {
		ctx->fb.remembered++;
		addr_str(v4, s->cfg->upstream_port, to, sizeof(to));
		gw_log(LOG_INFO,
		    "session=%08x event=fallback_448_remembered server=%s "
		    "action=ipv4_first target=%s",
		    s->id, un, to);
		s->up_dst = *v4;
		(void)nat_dest_source(
		    &s->cfg->dest, &s->client, AF_INET, &s->up_src, &pair);
		return;
	}
	if (fallback_arm(s, v4) != 0)
		gw_log(LOG_WARNING,
		    "session=%08x event=fallback_unavailable reason=no_memory",
		    s->id);
}
/* ---- end of IPv6-to-IPv4 fallback ------------------------------------ */

/* Puts TLS on the upstream leg after the server's 220 to our STARTTLS. */
static void
upstream_tls_start(struct gw_session *s)
{
	struct gw_side *u = UP(s);
	char err[300], un[UP_NAME_MAX];

	if (s->tls == NULL || s->cfg->tls == NULL ||
	    gw_tls_leg_connect(&u->tls, s->cfg->tls, s->tls->cli,
	        s->tls->server_name, up_name(s, un), err, sizeof(err)) != 0) {
		if (s->tls == NULL || s->cfg->tls == NULL)
			(void)snprintf(err, sizeof(err), "no TLS context");
		log_tls_failed(s, "server", "setup", err);
		if (smtpfix_stream_tls_done(&s->fix, SMTPFIX_TLSR_UP_FAIL))
			upstream_fallback(s, "setup");
		else if (s->reason == NULL)
			s->reason = "tls_server_failed";
		return;
	}
	u->hs = 1;
}

/* One step from side `from` to the other; returns 1 if anything moved. */
static int
step(struct gw_session *s, enum gw_dir from)
{
	struct gw_buf *in = &s->side[from].in;
	struct gw_buf *out = &s->side[!from].out;
	struct smtpfix_step st;
	size_t cap = s->cfg->buffer_bytes, len, room;
	int hold;

	/* A replayed message goes whole before anything else upstream. */
	if (from == GW_CLIENT && s->fb != NULL && s->fb->spool_send)
		return fallback_send_held(s);
	/* Data that the server's buffer cannot take whole: a larger one
	 * (data_flowing); without the memory, the smaller one will do. */
	if (from == GW_CLIENT && out->data != NULL && out->cap < in->len &&
	    data_flowing(s))
		data_grow(s, out);
	room = out->data != NULL ? gw_buf_room(out) : cap;
	if (room < SMTPFIX_EMIT_MAX)
		return 0;
	len = in->len < room ? in->len : room;
	hold = from == GW_CLIENT && s->fb != NULL &&
	       !smtpfix_stream_fell_back(&s->fix) &&
	       smtpfix_stream_wait(&s->fix) == SMTPFIX_WAIT_DATA;
	if (from == GW_CLIENT)
		smtpfix_c2s_step(
		    &s->fix, in->data ? gw_buf_head(in) : "", len, &st);
	else
		smtpfix_s2c_step(
		    &s->fix, in->data ? gw_buf_head(in) : "", len, &st);
	if (st.act == SMTPFIX_ACT_NONE)
		return 0;
	/* Output storage only once there is output: idle sessions hold no
	 * buffers at all. */
	if (out->data == NULL && gw_buf_alloc(out, cap) != 0) {
		s->reason = "no_memory";
		begin_close(s, s->reason, 1);
		return 0;
	}
	log_step(s, &st);
	switch (st.act) {
	case SMTPFIX_ACT_NONE:
		break;
	case SMTPFIX_ACT_FORWARD:
		gw_buf_put(out, gw_buf_head(in), st.consumed);
		break;
	case SMTPFIX_ACT_EMIT:
	case SMTPFIX_ACT_CLOSE:
		gw_buf_put(out, st.emit, st.emit_len);
		break;
	case SMTPFIX_ACT_DISCARD:
		break;
	case SMTPFIX_ACT_ABORT:
		upstream_close(s, 1);
		if (s->reason == NULL)
			s->reason = st.event == SMTPFIX_EV_PREGREET
			                ? "pregreet"
			                : "smuggling";
		break;
	case SMTPFIX_ACT_OPAQUE:
		gw_buf_put(out, gw_buf_head(in), st.consumed);
		gw_buf_drop(in, st.consumed);
		st.consumed = 0;
		UP(s)->in.len = UP(s)->in.off = 0; /* after its 220 */
		drain_client(s);
		s->opaque = 1;
		break;
	case SMTPFIX_ACT_TLS_UPSTREAM:
		/* RFC 3207 §4: what the server sent after its 220 is not
		 * TLS (the CVE-2021-38371 class): dropped.  The handshake
		 * starts when the socket is writable (session_update). */
		gw_buf_drop(in, st.consumed);
		st.consumed = 0;
		UP(s)->in.len = UP(s)->in.off = 0;
		upstream_tls_start(s);
		break;
	case SMTPFIX_ACT_TLS_CLIENT:
		/* RFC 3207 §4.2: what the client sent before our 220 is
		 * not TLS and never a command (the CVE-2011-0411 class). */
		drain_client(s);
		gw_buf_put(out, st.emit, st.emit_len);
		CL(s)->hs_wait = 1;
		break;
	case SMTPFIX_ACT_FRONT:
		route_to_front(s);
		break;
	case SMTPFIX_ACT_ROUTE_CHECK:
		route_check_start(s);
		break;
	case SMTPFIX_ACT_FALLBACK:
		/* draft-martin §3: nothing more of the IPv6 leg counts. */
		st.consumed = 0;
		fallback_start(s, &st);
		break;
	case SMTPFIX_ACT_REPLAY_DATA:
		/* Only a stream with a record (fallback_arm) replays. */
		if (s->fb != NULL) {
			s->fb->spool_send = 1;
			s->fb->spool_off = 0;
		}
		break;
	}
	if (hold &&
	    (st.act == SMTPFIX_ACT_FORWARD || st.act == SMTPFIX_ACT_EMIT))
		fallback_hold(s,
		    st.act == SMTPFIX_ACT_FORWARD ? gw_buf_head(in) : st.emit,
		    st.act == SMTPFIX_ACT_FORWARD ? st.consumed : st.emit_len);
	if (from == GW_SERVER && s->fb != NULL)
		fallback_after_reply(s);
	if (st.consumed > 0)
		gw_buf_drop(in, st.consumed);
	if (st.act == SMTPFIX_ACT_CLOSE)
		begin_close(s,
		    st.event == SMTPFIX_EV_BAD_REPLY  ? "server_protocol_error"
		    : st.event == SMTPFIX_EV_SYNC     ? "sync_violation"
		    : st.event == SMTPFIX_EV_IDENTITY ? "identity_refused"
		    : st.event == SMTPFIX_EV_FALLBACK_FAILED ? "fallback_failed"
		                                             : "refused",
		    st.event == SMTPFIX_EV_SYNC ||
		        st.event == SMTPFIX_EV_FALLBACK_FAILED);
	s->last = ev_now(s->ctx->loop);
	return 1;
}

/* A session refused at the greeting: answer 503 until QUIT (RFC 5321
 * §3.1), never connecting anywhere. */
static void
pump_refusing(struct gw_session *s)
{
	struct gw_buf *in = &CL(s)->in;
	struct smtpfix_refuse_step st;

	while (!s->closing && in->len > 0) {
		smtpfix_refuse_step(gw_buf_head(in), in->len,
		    s->cfg->pol.cmd_max, &s->ncmds, &st);
		if (st.act == SMTPFIX_REFUSE_NONE)
			break;
		gw_buf_drop(in, st.consumed);
		say(s, st.code_enh, st.text);
		s->last = ev_now(s->ctx->loop);
		if (st.act == SMTPFIX_REFUSE_CLOSE)
			begin_close(s, s->reason, 0);
	}
}

/*
 * RFC 2920 §3.1: while the client must wait for a reply, bytes already in
 * its socket (or decrypted inside its TLS leg) were sent before that
 * reply, even if not yet read: the stream counts them as early.
 */
static void
sync_peek(struct gw_session *s)
{
	struct gw_side *c = CL(s);
	int n = 0;

	if (!smtpfix_stream_sync_wait(&s->fix) || c->fd < 0)
		return;
	if (gw_tls_pending(&c->tls) ||
	    (ioctl(c->fd, FIONREAD, &n) == 0 && n > 0))
		smtpfix_stream_client_early(&s->fix);
}

static void
pump_relay(struct gw_session *s)
{
	int i, moved;

	sync_peek(s);
	for (i = 0; i < PUMP_ROUNDS && !s->closing && relaying(s); i++) {
		moved = 0;
		while (!s->closing && relaying(s) && step(s, GW_CLIENT))
			moved = 1;
		while (!s->closing && relaying(s) && step(s, GW_SERVER))
			moved = 1;
		if (!moved)
			break;
	}
}

static void
pump(struct gw_session *s)
{
	int i;

	if (s->refusing) {
		pump_refusing(s);
		return;
	}
	/* Route mode moves between its own dialogue and the relay; a few
	 * rounds let a phase change take effect at once. */
	for (i = 0; i < 4 && !s->closing; i++) {
		if (!relaying(s)) {
			pump_route(s);
			if (!relaying(s))
				return;
		}
		pump_relay(s);
		if (relaying(s))
			return;
	}
}

static int
sock_error(int e)
{
	return e != EAGAIN && e != EWOULDBLOCK && e != EINTR;
}

/* 1 while the session may take more bytes from this peer. */
static int
side_wants_read(const struct gw_session *s, struct gw_side *d)
{
	return d->fd >= 0 && !s->closing && !d->connecting && !d->eof &&
	       !d->hs && !d->hs_wait &&
	       (d->in.data == NULL || gw_buf_room(&d->in) > 0);
}

/*
 * The client's socket failed.  After the server's 221 to QUIT that is just
 * an abrupt goodbye (smtp-source resets at once) and the server leg closes
 * normally; otherwise a message may be in progress, and the server gets a
 * reset so that it can never complete it.
 */
static void
client_gone(struct gw_session *s, const char *why)
{
	int done = smtpfix_stream_quit_answered(&s->fix);

	if (s->reason == NULL)
		s->reason = done ? "quit" : why;
	upstream_close(s, !done);
	session_end(s);
}

/*
 * A side's socket failed (errno says how).  The client vanished or broke
 * TLS: a message in progress must not be completed, so the server gets a
 * reset and the session ends (-1).  The server: its leg ends; reading
 * keeps what it sent, to relay it first (session_update then tells the
 * client), writing closes the leg at once (0).
 */
static int
side_failed(struct gw_session *s, struct gw_side *d, int reading, int e)
{
	if (d->dir == GW_CLIENT) {
		client_gone(s, reading && e == EPROTO ? "client_tls_error"
		                                      : "client_reset");
		return -1;
	}
	if (s->reason == NULL)
		s->reason = reading && e == EPROTO ? "server_tls_error"
		                                   : "server_reset";
	d->eof = 1;
	if (reading)
		ev_io_stop(s->ctx->loop, &d->rd);
	else
		upstream_close(s, 0);
	return 0;
}

/* Reads what a peer sent; returns -1 if the session ended. */
static int
side_read(struct gw_session *s, struct gw_side *d)
{
	ssize_t n;

	if (gw_buf_alloc(&d->in, s->cfg->buffer_bytes) != 0) {
		if (d->dir == GW_CLIENT) {
			s->reason = "no_memory";
			upstream_close(s, 1);
			session_end(s);
			return -1;
		}
		say(s, "421 4.3.0", "out of memory, try later");
		begin_close(s, "no_memory", 1);
		return 0;
	}
	n = gw_tls_buf_read(&d->tls, &d->in);
	if (n > 0) {
		d->bytes += (uint64_t)n;
		/* A message's data that fills the buffer: larger steps
		 * (data_flowing); without the memory, the same ones. */
		if (d->dir == GW_CLIENT && d->in.off + d->in.len == d->in.cap &&
		    data_flowing(s))
			data_grow(s, &d->in);
	} else if (n == 0) {
		d->eof = 1;
		ev_io_stop(s->ctx->loop, &d->rd);
	} else if (!sock_error(errno)) {
		return 0;
	} else if (side_failed(s, d, 1, errno) != 0) {
		return -1;
	}
	pump(s);
	return 0;
}

/* Writes what a peer is owed; returns -1 if the session ended. */
static int
side_write(struct gw_session *s, struct gw_side *d)
{
	ssize_t n;

	n = gw_tls_buf_write(&d->tls, &d->out);
	if (n < 0 && sock_error(errno))
		return side_failed(s, d, 0, errno);
	if (n > 0) {
		s->last = ev_now(s->ctx->loop);
		pump(s);
	}
	return 0;
}

/*
 * One step of a side's handshake; returns -1 if the session ended.  The
 * client's failure closes its connection without a word: it expects TLS,
 * so anything in clear text now would be a continuation it did not ask
 * for.  The server's failure gives the client, still in clear text, the
 * policy's reply (421 4.7.0), or a clear-text retry (RFC 7435 §1).
 */
static int
side_handshake(struct gw_session *s, struct gw_side *d)
{
	int client = d->dir == GW_CLIENT;
	enum gw_tls_rc rc;
	char err[256];

	rc = gw_tls_handshake(&d->tls, err, sizeof(err));
	if (rc == GW_TLS_AGAIN)
		return 0;
	d->hs = 0;
	if (rc == GW_TLS_OK) {
		s->last = ev_now(s->ctx->loop);
		log_tls(s, client ? "client" : "server", &d->tls);
		if (s->rt != NULL && client)
			smtpfix_front_tls_done(&s->rt->front, 1);
		else if (s->rt != NULL && s->rt->phase == PH_OPEN)
			route_upstream_tls_done(s, 1);
		else
			smtpfix_stream_tls_done(
			    &s->fix, client ? SMTPFIX_TLSR_CLIENT_OK
			                    : SMTPFIX_TLSR_UP_OK);
		pump(s);
		return 0;
	}
	if (client) {
		log_tls_failed(s, "client", "handshake", err);
		smtpfix_stream_tls_done(&s->fix, SMTPFIX_TLSR_CLIENT_FAIL);
		if (s->reason == NULL)
			s->reason = "tls_client_failed";
		d->out.len = 0;
		upstream_close(s, 0);
		session_end(s);
		return -1;
	}
	log_tls_failed(s, "server",
	    rc == GW_TLS_FAIL_VERIFY ? "verify" : "handshake", err);
	if (s->rt != NULL && s->rt->phase == PH_OPEN) {
		route_upstream_tls_done(s, 0);
		pump(s);
		return 0;
	}
	if (smtpfix_stream_tls_done(&s->fix, rc == GW_TLS_FAIL_VERIFY
	                                         ? SMTPFIX_TLSR_UP_VERIFY
	                                         : SMTPFIX_TLSR_UP_FAIL)) {
		upstream_fallback(s, "handshake");
		return 0;
	}
	if (s->reason == NULL)
		s->reason = rc == GW_TLS_FAIL_VERIFY
		                ? "tls_server_verify_failed"
		                : "tls_server_failed";
	pump(s);
	return 0;
}

/* A side's socket is readable: a handshake step, a write that waited to
 * read, or a read. */
static void
side_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct gw_side *d = w->data;
	struct gw_session *s = side_session(d);

	(void)loop;
	(void)revents;
	if (d->hs) {
		if (side_handshake(s, d) != 0)
			return;
	} else {
		if (d->out.len > 0 && d->tls.wr_want == GW_TLS_WANT_READ &&
		    side_write(s, d) != 0)
			return;
		if (side_wants_read(s, d) && side_read(s, d) != 0)
			return;
	}
	session_update(s);
}

static void
connect_failed(struct gw_session *s, int err)
{
	char d[64];

	if (route_connect_failed(s, err))
		return;
	if (fallback_connect_failed(s, strerror(err))) {
		begin_close(s, "fallback_connect_failed", 0);
		return;
	}
	/* Seed 002 / RFC 3463: 4.4.1 no answer from host, 4.4.2 bad
	 * connection (here: refused or reset while connecting). */
	if (err == ECONNREFUSED || err == ECONNRESET) {
		say(s, "421 4.4.2",
		    "connection to the server refused, "
		    "try another MX");
		s->reason = "connect_refused";
	} else if (err == ENETUNREACH || err == EHOSTUNREACH || err == EINVAL) {
		/* No route (EINVAL: a blackhole route): still "no answer"
		 * for the sender, which then tries its next MX. */
		say(s, "421 4.4.1",
		    "server unreachable (no route), try "
		    "another MX");
		s->reason = "connect_no_route";
	} else {
		say(s, "421 4.4.1",
		    "no answer from the server, try "
		    "another MX");
		s->reason =
		    err == ETIMEDOUT ? "connect_timeout" : "connect_failed";
	}
	(void)snprintf(d, sizeof(d), "%s", strerror(err));
	gw_log(LOG_WARNING, "session=%08x event=connect_failed error=\"%s\"",
	    s->id, d);
	begin_close(s, s->reason, 0);
}

/* The upstream connect(2) finished, one way or the other. */
static void
upstream_connected(struct gw_session *s)
{
	struct gw_side *u = UP(s);
	int err = 0;
	socklen_t el = sizeof(err);

	if (getsockopt(u->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0)
		err = errno;
	if (err != 0) {
		connect_failed(s, err);
		return;
	}
	u->connecting = 0;
	s->last = ev_now(s->ctx->loop);
	gw_metrics_connect(ev_time() - s->up_t0);
	gw_log(LOG_DEBUG, "session=%08x event=connected", s->id);
	if (s->rt != NULL && s->rt->phase == PH_CONNECT)
		route_connected(s);
}

/* A side's socket is writable: a connect that ended, a handshake step, a
 * write, or a read that waited to write. */
static void
side_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct gw_side *d = w->data;
	struct gw_session *s = side_session(d);

	(void)loop;
	(void)revents;
	if (d->connecting) {
		upstream_connected(s);
	} else if (d->hs) {
		if (side_handshake(s, d) != 0)
			return;
	} else {
		if (d->out.len > 0 && side_write(s, d) != 0)
			return;
		if (d->tls.rd_want == GW_TLS_WANT_WRITE &&
		    side_wants_read(s, d) && side_read(s, d) != 0)
			return;
	}
	session_update(s);
}

/* The RFC 5321 §4.5.3.2 timeout for what the session waits on now. */
static ev_tstamp
current_timeout(const struct gw_session *s)
{
	const struct gw_config *c = s->cfg;

	if (s->closing)
		return CLOSE_GRACE_S;
	if (UP(s)->connecting)
		return c->connect_timeout_s;
	if (s->refusing)
		return c->command_timeout_s;
	if (s->rt != NULL && s->rt->phase == PH_OPEN)
		return c->reply_timeout_s;
	if (!relaying(s))
		return c->command_timeout_s;
	switch (smtpfix_stream_wait(&s->fix)) {
	case SMTPFIX_WAIT_GREETING:
		return c->greeting_timeout_s;
	case SMTPFIX_WAIT_REPLY:
		return c->reply_timeout_s;
	case SMTPFIX_WAIT_DATA_INIT:
		return c->data_init_timeout_s;
	case SMTPFIX_WAIT_DATA:
		return c->data_timeout_s;
	case SMTPFIX_WAIT_DATA_END:
		return c->data_end_timeout_s;
	case SMTPFIX_WAIT_OPAQUE:
	case SMTPFIX_WAIT_COMMAND:
	case SMTPFIX_WAIT_HANDSHAKE:
		break;
	}
	return c->command_timeout_s;
}

static void
timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	char un[UP_NAME_MAX];
	struct gw_session *s = w->data;
	ev_tstamp left;

	(void)revents;
	left = s->last + current_timeout(s) - ev_now(loop);
	if (left > 0.001) {
		w->repeat = left;
		ev_timer_again(loop, w);
		return;
	}
	if (s->closing) {
		if (s->reason == NULL)
			s->reason = "close_timeout";
		session_end(s);
		return;
	}
	if (UP(s)->connecting) {
		connect_failed(s, ETIMEDOUT);
	} else if (s->rt != NULL && s->rt->phase == PH_OPEN) {
		gw_log(LOG_WARNING,
		    "session=%08x event=route_open_failed dest=%s "
		    "reason=server_timeout",
		    s->id, up_name(s, un));
		route_target_failed(s, S_ROUTE_LOST, sizeof(S_ROUTE_LOST) - 1,
		    "server_timeout");
	} else if (!relaying(s)) {
		say(s, "421 4.4.2", "timeout waiting for the client, closing");
		begin_close(s, "client_timeout", 0);
	} else if (s->opaque || s->refusing || CL(s)->hs_wait || CL(s)->hs) {
		/* Inside TLS a plain-text reply would only corrupt the
		 * stream; a refused client has had its answer; a client
		 * in its handshake can take no reply at all. */
		begin_close(s,
		    s->refusing ? s->reason
		    : s->opaque ? "timeout_opaque"
		                : "client_tls_timeout",
		    0);
	} else {
		enum smtpfix_wait wt = smtpfix_stream_wait(&s->fix);
		int on_client =
		    wt == SMTPFIX_WAIT_COMMAND || wt == SMTPFIX_WAIT_DATA;

		say(s, "421 4.4.2",
		    on_client ? "timeout waiting for the "
		                "client, closing"
		              : "timeout waiting for the server, "
		                "closing");
		begin_close(s, on_client ? "client_timeout" : "server_timeout",
		    wt == SMTPFIX_WAIT_DATA);
	}
	session_update(s);
}

/*
 * The watchers of one side: while connecting, writability; during a
 * handshake, what it waits for; otherwise a read (wanted while the input
 * buffer has room) and a write (while output is pending), each on the
 * readiness its last EAGAIN asked for.  Bytes already decrypted inside
 * OpenSSL are fed as a read event.
 */
static void
watch(struct gw_session *s, struct gw_side *d)
{
	struct ev_loop *loop = s->ctx->loop;
	const struct gw_tls_leg *l = &d->tls;
	int want_read = side_wants_read(s, d), want_write = d->out.len > 0;
	int r = 0, w = 0;

	if (d->connecting) {
		w = 1;
	} else if (d->hs) {
		r = l->hs_want == GW_TLS_WANT_READ;
		w = l->hs_want == GW_TLS_WANT_WRITE;
	} else {
		if (want_read) {
			if (l->rd_want == GW_TLS_WANT_WRITE)
				w = 1;
			else
				r = 1;
		}
		if (want_write) {
			if (l->wr_want == GW_TLS_WANT_READ)
				r = 1;
			else
				w = 1;
		}
	}
	if (r)
		ev_io_start(loop, &d->rd);
	else
		ev_io_stop(loop, &d->rd);
	if (w)
		ev_io_start(loop, &d->wr);
	else
		ev_io_stop(loop, &d->wr);
	if (!d->connecting && !d->hs && want_read && gw_tls_pending(l))
		ev_feed_event(loop, &d->rd, EV_READ);
}

/* RFC 3207 §4: our 220 is out; the client's next bytes are its
 * ClientHello.  Returns -1 if the session ended. */
static int
client_tls_start(struct gw_session *s)
{
	struct gw_side *c = CL(s);
	char err[256];

	c->hs_wait = 0;
	if (s->tls == NULL || s->cfg->tls == NULL ||
	    gw_tls_leg_accept(
	        &c->tls, s->cfg->tls, s->tls->cert, err, sizeof(err)) != 0) {
		if (s->tls == NULL || s->cfg->tls == NULL)
			(void)snprintf(err, sizeof(err), "no TLS context");
		log_tls_failed(s, "client", "setup", err);
		smtpfix_stream_tls_done(&s->fix, SMTPFIX_TLSR_CLIENT_FAIL);
		if (s->reason == NULL)
			s->reason = "tls_client_failed";
		upstream_close(s, 0);
		session_end(s);
		return -1;
	}
	c->hs = 1;
	return 0;
}

/*
 * Brings watchers, half-closes and the end of the session in line with
 * the buffers.  Called after every event.
 */
static void
session_update(struct gw_session *s)
{
	char un[UP_NAME_MAX];
	struct ev_loop *loop = s->ctx->loop;
	struct gw_side *c = CL(s), *u = UP(s);
	enum smtpfix_wait wt;
	int i, flowing;

	/* Try the writes now: usually the socket has room, saving a trip
	 * through the loop. */
	for (i = 0; i < 2; i++) {
		struct gw_side *d = &s->side[i];

		if (d->fd >= 0 && !d->connecting && !d->hs && d->out.len > 0 &&
		    gw_tls_buf_write(&d->tls, &d->out) < 0 &&
		    sock_error(errno) && side_failed(s, d, 0, errno) != 0)
			return;
	}
	if (!s->closing)
		pump(s);
	if (c->hs_wait && c->out.len == 0 && !s->closing &&
	    client_tls_start(s) != 0)
		return;

	wt = smtpfix_stream_wait(&s->fix);
	/* Route mode: a server that went away while its leg was being
	 * opened is a failed target; a client that went away in the front's
	 * dialogue is the end (there is no message in progress). */
	if (s->rt != NULL && s->rt->phase == PH_OPEN && u->eof && !s->closing) {
		gw_log(LOG_WARNING,
		    "session=%08x event=route_open_failed dest=%s "
		    "reason=server_closed",
		    s->id, up_name(s, un));
		route_target_failed(
		    s, S_ROUTE_LOST, sizeof(S_ROUTE_LOST) - 1, "server_closed");
		pump(s);
	}
	if (s->rt != NULL && s->rt->phase == PH_FRONT && c->eof &&
	    !s->closing && c->in.len == 0)
		begin_close(s, "client_closed", 0);
	/* Client done sending and all of it passed on: half-close. */
	if (relaying(s) && c->eof && !u->shut && u->fd >= 0 && !u->connecting &&
	    !u->hs && u->out.len == 0 &&
	    (s->fb == NULL || !s->fb->spool_send) &&
	    !smtpfix_stream_fallback_busy(&s->fix) &&
	    (c->in.len == 0 || wt == SMTPFIX_WAIT_COMMAND ||
	        wt == SMTPFIX_WAIT_DATA || wt == SMTPFIX_WAIT_OPAQUE)) {
		/* RFC 8446 §6.1: close_notify first on a TLS leg. */
		gw_tls_shutdown(&u->tls);
		(void)shutdown(u->fd, SHUT_WR);
		u->shut = 1;
	}
	if (s->refusing && c->eof && !s->closing)
		begin_close(s, s->reason, 0);
	/* Server gone and its last bytes relayed: tell the client if it
	 * was owed a reply, then close. */
	if (relaying(s) && u->eof && !s->closing &&
	    (u->in.len == 0 || s->opaque || u->fd < 0)) {
		if (!s->opaque && !s->told &&
		    smtpfix_stream_upstream_gone(&s->fix))
			say(s, "421 4.4.2", "connection to the server lost");
		begin_close(s,
		    smtpfix_stream_quit_answered(&s->fix) ? "quit"
		                                          : "server_closed",
		    0);
	}
	if (s->closing && c->out.len == 0) {
		session_end(s);
		return;
	}
	/* Return the storage of empty buffers: an idle session costs only
	 * its struct.  Interest follows room (no storage yet counts as
	 * room), and on a TLS leg what OpenSSL asks for. */
	flowing = data_flowing(s);
	for (i = 0; i < 2; i++) {
		struct gw_side *d = &s->side[i];

		if (!flowing || i == GW_SERVER)
			buf_return(s, &d->in, 1);
		if (!flowing || i == GW_CLIENT)
			buf_return(s, &d->out, 1);
		if (d->fd >= 0)
			watch(s, d);
	}
	s->timer.repeat = s->last + current_timeout(s) - ev_now(loop);
	if (s->timer.repeat < 0.001)
		s->timer.repeat = 0.001;
	ev_timer_again(loop, &s->timer);
}

static void
session_end(struct gw_session *s)
{
	struct ev_loop *loop = s->ctx->loop;
	struct gw_side *c = CL(s);
	int i;

	gw_log(LOG_INFO,
	    "session=%08x event=close reason=%s c2s_bytes=%llu "
	    "s2c_bytes=%llu messages=%llu duration_ms=%lld",
	    s->id, s->reason != NULL ? s->reason : "done",
	    (unsigned long long)c->bytes, (unsigned long long)UP(s)->bytes,
	    (unsigned long long)smtpfix_stream_messages(&s->fix),
	    (long long)((ev_now(loop) - s->start) * 1000.));
	upstream_close(s, 0);
	ev_io_stop(loop, &c->rd);
	ev_io_stop(loop, &c->wr);
	ev_timer_stop(loop, &s->timer);
	gw_tls_shutdown(&c->tls);
	gw_tls_leg_free(&c->tls);
	/* Unread input makes close() send RST, and an RST can destroy our
	 * last reply (a 421 or 554) before the client reads it: drop what
	 * has arrived, so the close is a FIN. */
	if (!c->eof)
		drain_client(s);
	close(c->fd);
	for (i = 0; i < 2; i++) {
		buf_return(s, &s->side[i].in, 0);
		buf_return(s, &s->side[i].out, 0);
	}
	if (s->counted)
		gw_tally_sub(&s->ctx->clients, &s->client, 0);
	if (s->rt != NULL) {
		if (s->rt->q != NULL)
			gw_dns_cancel(s->rt->q);
		free(s->rt);
	}
	fallback_free(s);
	free(s->ident);
	TAILQ_REMOVE(&s->ctx->sessions, s, entry);
	s->ctx->nsessions--;
	gw_metrics_label(
	    GW_MF_CLOSE, s->reason != NULL ? s->reason : "done", NULL);
	gw_metrics_count(GW_M_BYTES_C2S, CL(s)->bytes);
	gw_metrics_count(GW_M_BYTES_S2C, UP(s)->bytes);
	gw_metrics_count(GW_M_MESSAGES, smtpfix_stream_messages(&s->fix));
	gw_metrics_open(s->ctx->nsessions);
	gw_config_release(s->cfg);
	free(s);
}

static void
side_init(struct gw_session *s, enum gw_dir dir, int fd)
{
	struct gw_side *d = &s->side[dir];

	d->dir = dir;
	d->fd = fd;
	gw_tls_leg_init(&d->tls, fd);
	ev_io_init(&d->rd, side_read_cb, fd, EV_READ);
	ev_io_init(&d->wr, side_write_cb, fd, EV_WRITE);
	d->rd.data = d->wr.data = d;
}

static struct gw_session *
session_new(struct gw_ctx *ctx, int cfd, const struct nat_addr *client)
{
	struct gw_session *s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->ctx = ctx;
	s->cfg = gw_config_hold(ctx->cfg);
	s->id = ++ctx->next_id;
	side_init(s, GW_CLIENT, cfd);
	side_init(s, GW_SERVER, -1);
	s->client = *client;
	s->counted = gw_tally_add(&ctx->clients, client, 0) == 0;
	s->start = s->last = ev_now(ctx->loop);
	s->pol = s->cfg->pol;
	smtpfix_stream_init(&s->fix, &s->pol);
	TAILQ_INSERT_TAIL(&ctx->sessions, s, entry);
	ctx->nsessions++;
	gw_metrics_open(ctx->nsessions);
	ev_timer_init(&s->timer, timer_cb, 0., 1.);
	s->timer.data = s;
	return s;
}

/*
 * Binds fd to src.  IP_FREEBIND lets the source be an address that is
 * routed to the gateway without being configured on it; in transparent
 * mode IP_TRANSPARENT lets it be any address at all.
 */
static int
bind_source(int fd, const struct nat_addr *src, int transparent)
{
	struct sockaddr_storage ss;
	socklen_t sl = nat_addr_sockaddr(src, 0, &ss);
	int on = 1;

	if (src->family == AF_INET) {
		(void)setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &on, sizeof(on));
		if (transparent)
			(void)setsockopt(
			    fd, IPPROTO_IP, IP_TRANSPARENT, &on, sizeof(on));
	} else {
		(void)setsockopt(
		    fd, IPPROTO_IPV6, IPV6_FREEBIND, &on, sizeof(on));
		if (transparent)
			(void)setsockopt(fd, IPPROTO_IPV6, IPV6_TRANSPARENT,
			    &on, sizeof(on));
	}
	return bind(fd, (struct sockaddr *)&ss, sl);
}

/*
 * identity = proxy-v1 or proxy-v2: the header is the first thing queued
 * on a new upstream connection, written once it is up, before any SMTP
 * byte (HAProxy's proxy-protocol.txt §2: the receiver reads it before
 * anything else, and Postfix wants it whole in one read).  0, or -1 if
 * it cannot be built.
 */
static int
proxy_header(struct gw_session *s)
{
	struct gw_buf *out = &UP(s)->out;
	uint8_t h[128];
	size_t n;

	if (s->id_mode != SMTPFIX_ID_PROXY_V1 &&
	    s->id_mode != SMTPFIX_ID_PROXY_V2)
		return 0;
	n = s->id_mode == SMTPFIX_ID_PROXY_V1
	        ? smtpfix_proxy_v1(s->ident, (char *)h, sizeof(h))
	        : smtpfix_proxy_v2(s->ident, h, sizeof(h));
	if (n == 0 || gw_buf_alloc(out, s->cfg->buffer_bytes) != 0 ||
	    gw_buf_room(out) < n) {
		gw_log(LOG_ERR,
		    "session=%08x event=identity mode=%s result=no_header",
		    s->id, smtpfix_identity_mode_name(s->id_mode));
		return -1;
	}
	gw_buf_put(out, h, n);
	gw_log(LOG_DEBUG, "session=%08x event=identity mode=%s step=header",
	    s->id, smtpfix_identity_mode_name(s->id_mode));
	return 0;
}

static void
upstream_connect(struct gw_session *s, const struct nat_addr *dst,
    const struct nat_addr *src)
{
	struct sockaddr_storage ds, ls;
	socklen_t dl, ll = sizeof(ls);
	int on = 1, fd;

	dl = nat_addr_sockaddr(dst, s->cfg->upstream_port, &ds);
	s->up_t0 = ev_time();
	fd = socket(dst->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		int e = errno;
		size_t i;

		if (e == EMFILE || e == ENFILE) {
			/* The client's descriptor was the last one: accept
			 * works and every session fails here, so the
			 * listeners pause as they do when accept fails. */
			for (i = 0; i < s->ctx->nlisten; i++)
				gw_listener_pause(&s->ctx->listeners[i], e,
				    "upstream_socket");
			/* RFC 3463 X.3.2: system not accepting messages. */
			say(s, "421 4.3.2",
			    "gateway out of resources, try later");
			begin_close(s, "no_descriptors", 0);
			return;
		}
		connect_failed(s, e);
		return;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	if (src->family != 0 &&
	    bind_source(fd, src, s->cfg->transparent) != 0) {
		char a[INET6_ADDRSTRLEN];

		(void)nat_addr_fmt(src, a, sizeof(a));
		gw_log(LOG_ERR,
		    "session=%08x event=bind_failed source=%s "
		    "error=\"%s\"",
		    s->id, a, strerror(errno));
		close(fd);
		say(s, "421 4.3.0", "source address unavailable, try later");
		begin_close(s, "bind_failed", 0);
		return;
	}
	side_init(s, GW_SERVER, fd);
	UP(s)->connecting = 1;
	if (proxy_header(s) != 0) {
		upstream_close(s, 0);
		say(s, "421 4.3.0", "cannot state the client's identity");
		begin_close(s, "identity_header", 0);
		return;
	}
	if (connect(fd, (struct sockaddr *)&ds, dl) != 0 &&
	    errno != EINPROGRESS) {
		int e = errno;

		upstream_close(s, 0);
		connect_failed(s, e);
		return;
	}
	/* Our own end, to recognise it if it ever comes back to us.  The
	 * loop check asks both tables, so an end the workers' shared table
	 * holds needs no copy in this worker's tally: only one that table
	 * left out (none with one worker, a full window) is counted here,
	 * which spares every session of a worker a tally slot. */
	if (getsockname(fd, (struct sockaddr *)&ls, &ll) == 0) {
		sa_to_addr(&ls, &s->up_local, &s->up_port);
		s->up_slot = gw_uptable_add(&s->up_local, s->up_port);
		if (s->up_slot == 0)
			s->up_counted = gw_tally_add(&s->ctx->ups, &s->up_local,
			                    s->up_port) == 0;
	}
}

/* The client's identity as the gateway saw it: its address and port and
 * the address it reached (one socket: one family), for XCLIENT or a
 * PROXY header, as the section says.  Kept (s->ident, freed in
 * session_end) only when the server is told.  0, or -1 without memory. */
static int
session_identity(struct gw_session *s, const struct gw_identity *idc,
    const struct nat_addr *client, unsigned cport, const struct nat_addr *local,
    unsigned lport)
{
	s->id_mode = idc->mode > 0 ? (enum smtpfix_identity_mode)idc->mode
	                           : SMTPFIX_ID_NONE;
	s->id_required = idc->required > 0;
	if (s->id_mode != SMTPFIX_ID_NONE) {
		if ((s->ident = calloc(1, sizeof(*s->ident))) == NULL)
			return -1;
		s->ident->client = *client;
		s->ident->client_port = cport;
		s->ident->dest = *local;
		s->ident->dest_port = lport;
	}
	smtpfix_stream_set_identity(
	    &s->fix, (int)s->id_mode, s->ident, idc->required > 0);
	return 0;
}

/*
 * Route mode.  The RCPT that named the domain is still unread in the
 * client's input: the gateway's own reply to it takes its place.
 */
static void
route_rcpt_reply(struct gw_session *s, const char *line, size_t len)
{
	struct gw_side *c = CL(s);
	size_t used = 0;

	if (c->in.len > 0 && smtpfix_line_find(gw_buf_head(&c->in), c->in.len,
	                         s->cfg->pol.cmd_max, &used) == SMTPFIX_OK)
		gw_buf_drop(&c->in, used);
	if (gw_buf_alloc(&c->out, s->cfg->buffer_bytes) == 0 &&
	    gw_buf_room(&c->out) >= len)
		gw_buf_put(&c->out, line, len);
	s->rt->phase = PH_FRONT;
	s->last = ev_now(s->ctx->loop);
}

/* The same with one of nat/dest.h's replies. */
static void
route_refuse(struct gw_session *s, enum nat_route_rc rc)
{
	const struct smtpfix_policy *pol = &s->cfg->pol;
	const char *code, *text;
	char line[512];
	size_t n;

	nat_dest_route_reply(rc, &code, &text);
	n = smtpfix_reply_fmt(
	    line, sizeof(line), pol->fqdn, pol->fqdn_len, code, text);
	route_rcpt_reply(s, line, n);
}

/* Connects to target k of the recipient's domain. */
static void
route_connect_target(struct gw_session *s, size_t k)
{
	char un[UP_NAME_MAX];
	struct gw_routed *rt = s->rt;
	struct gw_side *u = UP(s);
	struct nat_addr src;
	char ssb[INET6_ADDRSTRLEN];
	uint32_t pair;

	if (!nat_addr_eq(&rt->t[k].addr, &s->up_dst))
		rt->clear_retry = 0;
	rt->cur = k;
	s->up_dst = rt->t[k].addr;
	(void)nat_dest_source(
	    &s->cfg->dest, &s->client, s->up_dst.family, &src, &pair);
	s->up_src = src;
	if (src.family != 0)
		(void)nat_addr_fmt(&src, ssb, sizeof(ssb));
	else
		(void)snprintf(ssb, sizeof(ssb), "auto");
	gw_log(LOG_INFO,
	    "session=%08x event=route_connect domain=%s dest=%s source=%s "
	    "try=%zu/%zu%s",
	    s->id, rt->dom, up_name(s, un), ssb, rt->ti, rt->nt,
	    rt->fb_open || rt->fb_leg ? " fallback=ipv4" : "");
	u->in.len = u->in.off = 0;
	u->out.len = u->out.off = 0;
	u->eof = u->shut = 0;
	rt->phase = PH_CONNECT;
	s->last = ev_now(s->ctx->loop);
	upstream_connect(s, &s->up_dst, &s->up_src);
}

/* The IPv4 target to retry on after target k (IPv6) asked for IPv4
 * (draft-martin §3.2, Appendix A.3.1), or -1. */
static long
route_fallback_pick(const struct gw_session *s, size_t k)
{
	const struct gw_routed *rt = s->rt;

	if (rt->fb_used || k >= rt->nt || rt->t[k].addr.family != AF_INET6)
		return -1;
	return nat_fallback_pick(rt->t, rt->nt + rt->n4, k);
}

/* The next target of the recipient's domain, RFC 3974 §3 steps 6-8; a
 * server that asked for IPv4 lately gets its IPv4 peer at once
 * (draft-martin Appendix A.3: such refusals persist). */
static void
route_connect_next(struct gw_session *s)
{
	struct gw_routed *rt = s->rt;
	struct gw_ctx *ctx = s->ctx;
	char name[64], to[64];
	size_t k;
	long v4;

	if (rt->ti >= rt->nt) {
		gw_log(LOG_WARNING,
		    "session=%08x event=route_failed domain=%s "
		    "reason=unreachable tried=%zu reply=451",
		    s->id, rt->dom, rt->nt);
		route_refuse(s, NAT_ROUTE_UNREACHABLE);
		return;
	}
	k = rt->ti++;
	addr_str(&rt->t[k].addr, s->cfg->upstream_port, name, sizeof(name));
	if ((v4 = route_fallback_pick(s, k)) >= 0 &&
	    smtpfix_tlsmemo_known(&ctx->v4_wanted, name, strlen(name),
	        (uint64_t)ev_now(ctx->loop))) {
		ctx->fb.remembered++;
		addr_str(
		    &rt->t[v4].addr, s->cfg->upstream_port, to, sizeof(to));
		gw_log(LOG_INFO,
		    "session=%08x event=fallback_448_remembered server=%s "
		    "action=ipv4_first target=%s",
		    s->id, name, to);
		k = (size_t)v4;
	}
	route_connect_target(s, k);
}

/* A target failed while connecting: the next one.  1 if route mode took
 * the failure. */
static int
route_connect_failed(struct gw_session *s, int err)
{
	char un[UP_NAME_MAX];
	struct gw_routed *rt = s->rt;

	/* The relay's fallback leg: fallback_connect_failed answers. */
	if (rt == NULL || rt->phase != PH_CONNECT || rt->fb_leg)
		return 0;
	gw_log(LOG_WARNING,
	    "session=%08x event=connect_failed dest=%s error=\"%s\"", s->id,
	    up_name(s, un), strerror(err));
	if (rt->fb_open) {
		rt->fb_open = 0;
		s->ctx->fb.failed++;
		gw_log(LOG_WARNING,
		    "session=%08x event=fallback_448_outcome server=%s "
		    "outcome=failed reason=connect error=\"%s\"",
		    s->id, up_name(s, un), strerror(err));
	}
	upstream_close(s, 0);
	route_connect_next(s);
	return 1;
}

/* XCLIENT's outcome on a route leg, once (as log_identity does for a
 * pair's): info when accepted, else a warning. */
static void
route_log_identity(struct gw_session *s, int failed)
{
	char un[UP_NAME_MAX];
	const struct smtpfix_opener *o = &s->rt->op;
	enum smtpfix_opener_xc xc = smtpfix_opener_xclient(o);
	char attrs[80];

	if (xc == SMTPFIX_OPENER_XC_OFF || xc == SMTPFIX_OPENER_XC_PENDING)
		return;
	gw_log(xc == SMTPFIX_OPENER_XC_ACCEPTED ? LOG_INFO : LOG_WARNING,
	    "session=%08x event=identity mode=xclient result=%s attrs=%s "
	    "dest=%s tls=%s action=%s",
	    s->id,
	    xc == SMTPFIX_OPENER_XC_ACCEPTED      ? "accepted"
	    : xc == SMTPFIX_OPENER_XC_NOT_OFFERED ? "not_offered"
	                                          : "refused",
	    xclient_attrs(smtpfix_opener_xclient_sent(o), attrs, sizeof(attrs)),
	    up_name(s, un), smtpfix_opener_in_tls(o) ? "yes" : "no",
	    xc == SMTPFIX_OPENER_XC_ACCEPTED ? "none"
	    : failed                         ? "next_target"
	                                     : "continue_as_gateway");
}

/*
 * The opener met a refusal asking for IPv4 (draft-martin §3.2: 421 at
 * the greeting, 451 to EHLO or MAIL, or a negotiated 456 to MAIL) on an
 * IPv6 target: if the domain has an IPv4 host of the same or the next
 * preference, the leg goes (reset), the server is remembered, and that
 * host is opened at once.  1 if it did so.
 */
static int
route_fallback_open(struct gw_session *s)
{
	char un[UP_NAME_MAX];
	struct gw_routed *rt = s->rt;
	struct gw_ctx *ctx = s->ctx;
	unsigned ttl = s->cfg->fallback_remember_s;
	const char *line;
	size_t len;
	long v4;
	char why[SMTPFIX_REPLAY_WHY_MAX * 4 + 1], to[64];

	if (rt->fb_leg || rt->fb_open ||
	    !smtpfix_opener_refusal_448(&rt->op, &line, &len))
		return 0;
	if ((v4 = route_fallback_pick(s, rt->cur)) < 0) {
		gw_log(LOG_WARNING,
		    "session=%08x event=fallback_448_unavailable server=%s "
		    "code=%.3s phase=%s reason=%s",
		    s->id, up_name(s, un), line,
		    rt->op.why != NULL ? rt->op.why : "?",
		    rt->fb_used ? "once_a_transaction" : "no_ipv4_target");
		return 0;
	}
	ctx->fb.started++;
	(void)up_name(s, un);
	smtpfix_tlsmemo_note(
	    &ctx->v4_wanted, un, strlen(un), (uint64_t)ev_now(ctx->loop), ttl);
	addr_str(&rt->t[v4].addr, s->cfg->upstream_port, to, sizeof(to));
	gw_log(LOG_WARNING,
	    "session=%08x event=fallback_448 server=%s code=%.3s "
	    "phase=%s reply=\"%s\" action=retry_ipv4 target=%s "
	    "held_bytes=0 remember_s=%u fallbacks=%llu",
	    s->id, up_name(s, un), line,
	    rt->op.why == NULL                        ? "?"
	    : strcmp(rt->op.why, "mail-refused") == 0 ? "mail"
	                                              : rt->op.why,
	    gw_log_escape(why, sizeof(why), line, len), to, ttl,
	    (unsigned long long)ctx->fb.started);
	rt->fb_used = 1;
	rt->fb_open = 1;
	upstream_close(s, 1);
	route_connect_target(s, (size_t)v4);
	return 1;
}

/* The relay's fallback leg could not be opened (its server refused a
 * step, went away or timed out): the client, told nothing yet of the
 * refusal, gets a 4xx with the IPv6 server's words, as a pair's does. */
static void
route_fallback_leg_failed(struct gw_session *s, const char *why)
{
	char un[UP_NAME_MAX];
	char text[400];
	int n;

	s->ctx->fb.failed++;
	n = s->fb != NULL ? (int)s->fb->rp.why_len : 0;
	if (n > 200)
		n = 200;
	(void)snprintf(text, sizeof(text),
	    "retry over IPv4 failed (%s); the IPv6 server said: %.*s", why, n,
	    s->fb != NULL ? s->fb->rp.why : "");
	say(s, "421 4.4.8", text);
	gw_log(LOG_WARNING,
	    "session=%08x event=fallback_448_outcome server=%s "
	    "outcome=failed reason=open step=%s reply=421",
	    s->id, up_name(s, un), why);
	begin_close(s, "fallback_failed", 0);
}

/*
 * A target failed after connecting (its greeting, EHLO, STARTTLS or MAIL
 * was refused, or it went away): a transient failure before MAIL tries
 * the next target (RFC 3974 §3 step 9); otherwise reply, the answer to
 * the client's RCPT, goes to the client.
 */
static void
route_target_failed(
    struct gw_session *s, const char *reply, size_t len, const char *why)
{
	char un[UP_NAME_MAX];
	struct gw_routed *rt = s->rt;

	/* XCLIENT's outcome, if it was decided before the leg failed. */
	if (rt->phase == PH_OPEN)
		route_log_identity(s, strcmp(why, "identity") == 0);
	if (rt->fb_leg) {
		route_fallback_leg_failed(s, why);
		return;
	}
	if (rt->phase == PH_OPEN && route_fallback_open(s))
		return;
	if (rt->fb_open) {
		rt->fb_open = 0;
		s->ctx->fb.refused++;
		gw_log(LOG_INFO,
		    "session=%08x event=fallback_448_outcome server=%s "
		    "phase=%s code=%.3s outcome=refused",
		    s->id, up_name(s, un), why, reply);
	}
	upstream_close(s, 0);
	if (len > 0 && reply[0] == '4' && strcmp(why, "mail-refused") != 0 &&
	    rt->ti < rt->nt) {
		route_connect_next(s);
		return;
	}
	gw_log(LOG_INFO,
	    "session=%08x event=route_failed domain=%s dest=%s reason=%s "
	    "reply=%.3s",
	    s->id, rt->dom, up_name(s, un), why, reply);
	route_rcpt_reply(s, reply, len);
}

static void
route_connected(struct gw_session *s)
{
	struct gw_routed *rt = s->rt;
	size_t ml;
	const char *m = smtpfix_front_mail(&rt->front, &ml);

	rt->phase = PH_OPEN;
	smtpfix_opener_init(&rt->op, s->cfg->pol.fqdn, s->cfg->pol.fqdn_len,
	    m != NULL ? m : "", ml,
	    rt->clear_retry ? SMTPFIX_OPENER_TLS_NO : rt->optls,
	    s->cfg->pol.reply_max);
	/* XCLIENT: the client's own HELO argument, as the front kept it
	 * (said in EHLO too once XCLIENT with ADDR was accepted). */
	if (s->id_mode == SMTPFIX_ID_XCLIENT) {
		s->ident->helo =
		    smtpfix_front_helo(&rt->front, &s->ident->helo_len);
		s->ident->esmtp = smtpfix_front_esmtp(&rt->front);
		smtpfix_opener_set_xclient(&rt->op, s->ident, s->id_required);
	} else if (s->id_mode == SMTPFIX_ID_PROXY_V1 ||
	           s->id_mode == SMTPFIX_ID_PROXY_V2) {
		/* The header told the server who connected: the client's
		 * own HELO is said, for the server to judge (pair mode
		 * relays it the same way). */
		const char *h;
		size_t hl;

		h = smtpfix_front_helo(&rt->front, &hl);
		smtpfix_opener_set_client_helo(&rt->op, h, hl);
	}
	/* draft-martin §3.1: a 456 can be followed only with somewhere to
	 * go over IPv4. */
	rt->fb_pick = rt->fb_leg ? -1 : route_fallback_pick(s, rt->cur);
	if (rt->fb_pick >= 0)
		smtpfix_opener_set_fallback(&rt->op);
}

/*
 * The server took MAIL on a leg the opener opened.  On the relay's
 * fallback leg the stream goes on with its replay; otherwise it starts
 * relaying from the client's RCPT, with the fallback armed when the leg
 * is IPv6 and the domain has an IPv4 host to retry on: the record is
 * seeded with the opener's EHLO and MAIL (smtpfix_replay_keep).
 */
static void
route_open(struct gw_session *s)
{
	char un[UP_NAME_MAX];
	struct gw_routed *rt = s->rt;
	const struct smtpfix_policy *pol = &s->cfg->pol;
	char ehlo[600];
	const char *m;
	size_t ml;
	int n;

	route_log_identity(s, 0);
	rt->phase = PH_RELAY;
	if (rt->fb_leg) {
		smtpfix_stream_fallback_opened(&s->fix);
		return;
	}
	if (rt->fb_open) {
		rt->fb_open = 0;
		s->ctx->fb.accepted++;
		gw_log(LOG_INFO,
		    "session=%08x event=fallback_448_outcome server=%s "
		    "phase=mail code=%u outcome=accepted",
		    s->id, up_name(s, un), rt->op.last);
	}
	smtpfix_stream_init_routed(&s->fix, &s->pol, rt->dom, rt->dom_len);
	fallback_free(s);
	if (rt->fb_pick < 0)
		return;
	m = smtpfix_front_mail(&rt->front, &ml);
	n = snprintf(
	    ehlo, sizeof(ehlo), "EHLO %.*s\r\n", (int)pol->fqdn_len, pol->fqdn);
	if (m == NULL || n <= 0 || (size_t)n >= sizeof(ehlo) ||
	    fallback_arm(s, &rt->t[rt->fb_pick].addr) != 0) {
		gw_log(LOG_WARNING,
		    "session=%08x event=fallback_unavailable reason=no_memory",
		    s->id);
		rt->fb_pick = -1;
		return;
	}
	smtpfix_replay_keep(&s->fb->rp, SMTPFIX_RC_HELO, ehlo, (size_t)n);
	smtpfix_replay_keep(&s->fb->rp, SMTPFIX_RC_MAIL, m, ml);
	if (smtpfix_opener_fallback_negotiated(&rt->op))
		smtpfix_stream_set_fallback_negotiated(&s->fix);
}

/*
 * The upstream handshake after the opener's STARTTLS ended.  A failure
 * under tls_upstream = opportunistic connects to the same server again in
 * clear text (RFC 7435 §1: clear text is better than no delivery), once.
 */
static void
route_upstream_tls_done(struct gw_session *s, int ok)
{
	char un[UP_NAME_MAX];
	struct gw_routed *rt = s->rt;

	/* A fallback's IPv4 leg is opened once, as the policy says. */
	if (ok || rt->optls != SMTPFIX_OPENER_TLS_MAY || rt->clear_retry ||
	    rt->fb_leg || rt->fb_open) {
		smtpfix_opener_tls_done(&rt->op, ok);
		return;
	}
	s->ctx->tls_fallbacks++;
	gw_log(LOG_WARNING,
	    "session=%08x event=tls_fallback leg=server dest=%s "
	    "action=reconnect_clear",
	    s->id, up_name(s, un));
	upstream_close(s, 1);
	rt->clear_retry = 1;
	route_connect_target(s, rt->cur); /* the same address again */
}

/* The opener asked for TLS on the upstream leg (RFC 3207 §4). */
static void
route_upstream_tls(struct gw_session *s)
{
	char un[UP_NAME_MAX];
	const struct gw_tls_sel *sel = &s->cfg->routes[s->rt->route].tls;
	struct gw_side *u = UP(s);
	char err[300];

	u->in.len = u->in.off = 0;
	if (s->cfg->tls == NULL || sel->cli < 0 ||
	    gw_tls_leg_connect(&u->tls, s->cfg->tls, sel->cli, NULL,
	        up_name(s, un), err, sizeof(err)) != 0) {
		if (s->cfg->tls == NULL || sel->cli < 0)
			(void)snprintf(err, sizeof(err), "no TLS context");
		log_tls_failed(s, "server", "setup", err);
		smtpfix_opener_tls_done(&s->rt->op, 0);
		return;
	}
	u->hs = 1;
}

/* The recipient's domain is known: authorise it, choose its servers. */
static void
route_dns_cb(void *arg, const struct nat_mx_answer *ans)
{
	struct gw_session *s = arg;
	struct gw_routed *rt = s->rt;
	enum nat_route_rc rc;
	uint32_t seed;

	rt->q = NULL;
	if (s->closing) {
		session_update(s);
		return;
	}
	/* RFC 5321 §5.1: randomised among equal preferences; the order
	 * need not be unpredictable, only spread. */
	seed = s->id * 2654435761u ^ (uint32_t)(ev_now(s->ctx->loop) * 1e6);
	rc = nat_dest_route(&s->cfg->dest_route[rt->route], rt->local_family,
	    rt->dom, rt->dom_len, ans, seed, rt->t, ROUTE_TARGETS, &rt->nt);
	/* An IPv4 client's mail leaves over IPv6; the domain's IPv4 hosts
	 * (never the gateway's own addresses) are kept only for a server
	 * that refuses it over IPv6 with 4.4.8 (draft-martin §3.2). */
	rt->n4 = 0;
	if (rc == NAT_ROUTE_OK && rt->local_family == AF_INET &&
	    nat_dest_route(&s->cfg->dest_route[rt->route], AF_INET6, rt->dom,
	        rt->dom_len, ans, seed, rt->t + rt->nt, ROUTE_FB_TARGETS,
	        &rt->n4) != NAT_ROUTE_OK)
		rt->n4 = 0;
	rt->ti = 0;
	rt->clear_retry = 0;
	rt->fb_used = rt->fb_open = rt->fb_leg = 0;
	rt->fb_pick = -1;
	gw_log(LOG_INFO,
	    "session=%08x event=route domain=%s result=%s targets=%zu "
	    "ipv4_for_fallback=%zu",
	    s->id, rt->dom, nat_dest_route_name(rc), rt->nt, rt->n4);
	if (rc != NAT_ROUTE_OK)
		route_refuse(s, rc);
	else
		route_connect_next(s);
	session_update(s);
}

/* The front's RCPT named a domain: look it up (never blocking). */
static void
route_resolve(struct gw_session *s, const struct smtpfix_span *dom)
{
	struct gw_routed *rt = s->rt;
	struct gw_ctx *ctx = s->ctx;
	size_t i, n = dom->len;

	if (n > 0 && dom->p[n - 1] == '.')
		n--;
	if (n == 0 || n > 253) {
		route_refuse(s, NAT_ROUTE_NXDOMAIN);
		return;
	}
	for (i = 0; i < n; i++) {
		char ch = dom->p[i];

		rt->dom[i] = ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
	}
	rt->dom[n] = '\0';
	rt->dom_len = n;
	if (ctx->dns == NULL) {
		const struct gw_config *cfg = s->cfg;
		struct gw_dns_opts o = {
		    .servers =
		        cfg->dns_servers[0] != '\0' ? cfg->dns_servers : NULL,
		    .timeout_ms = cfg->dns_timeout_ms,
		    .cache_max_s = cfg->dns_cache_max_s,
		};
		char err[256];

		if (gw_dns_new(&ctx->dns, ctx->loop, &o, err, sizeof(err)) !=
		    0) {
			ctx->dns = NULL;
			gw_log(LOG_ERR, "event=dns_failed error=\"%s\"", err);
			route_refuse(s, NAT_ROUTE_TEMPFAIL);
			return;
		}
	}
	rt->phase = PH_RESOLVE;
	if ((rt->q = gw_dns_mx(ctx->dns, rt->dom, n, route_dns_cb, s)) ==
	    NULL) {
		route_refuse(s, NAT_ROUTE_TEMPFAIL);
		return;
	}
}

/*
 * RFC 5321 §3.3: a RCPT of another domain may join the transaction only
 * if that domain's servers include the one this leg reached.
 */
static void
route_check_cb(void *arg, const struct nat_mx_answer *ans)
{
	struct gw_session *s = arg;
	struct gw_routed *rt = s->rt;
	struct nat_mx_target t[ROUTE_TARGETS];
	enum nat_route_rc rc;
	size_t n = 0, i;
	int same = 0;

	rt->q = NULL;
	rc = nat_dest_route(&s->cfg->dest_route[rt->route], rt->local_family,
	    rt->cdom, strlen(rt->cdom), ans, 0, t, ROUTE_TARGETS, &n);
	for (i = 0; rc == NAT_ROUTE_OK && i < n; i++)
		if (nat_addr_eq(&t[i].addr, &s->up_dst))
			same = 1;
	gw_log(LOG_INFO,
	    "session=%08x event=route_check domain=%s result=%s "
	    "same_server=%s",
	    s->id, rt->cdom, nat_dest_route_name(rc), same ? "yes" : "no");
	smtpfix_stream_route_verdict(&s->fix, same);
	session_update(s);
}

static void
route_check_start(struct gw_session *s)
{
	struct gw_routed *rt = s->rt;
	struct gw_buf *in = &CL(s)->in;
	struct smtpfix_path pa;
	size_t used = 0, n, i;

	if (smtpfix_line_find(gw_buf_head(in), in->len, s->cfg->pol.cmd_max,
	        &used) != SMTPFIX_OK ||
	    smtpfix_path_check(gw_buf_head(in), used, &pa) ==
	        SMTPFIX_PATH_NOT_PATH ||
	    (n = pa.domain.len) == 0 || n > 254 || s->ctx->dns == NULL) {
		smtpfix_stream_route_verdict(&s->fix, 0);
		return;
	}
	if (pa.domain.p[n - 1] == '.')
		n--;
	for (i = 0; i < n; i++) {
		char ch = pa.domain.p[i];

		rt->cdom[i] = ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
	}
	rt->cdom[n] = '\0';
	if (n == 0 || (rt->q = gw_dns_mx(s->ctx->dns, rt->cdom, n,
	                   route_check_cb, s)) == NULL)
		smtpfix_stream_route_verdict(&s->fix, 0);
}

/* The transaction is over: the upstream leg goes (with QUIT, best
 * effort) and the client talks to the front again. */
static void
route_to_front(struct gw_session *s)
{
	struct gw_side *u = UP(s);

	if (u->fd >= 0 && !u->hs)
		(void)gw_tls_write(&u->tls, "QUIT\r\n", 6);
	upstream_close(s, 0);
	smtpfix_front_reset(&s->rt->front);
	s->rt->phase = PH_FRONT;
	/* The transaction's record and held message go with it. */
	fallback_free(s);
	s->rt->fb_used = s->rt->fb_open = s->rt->fb_leg = 0;
}

/* Route mode outside the relay: the front's dialogue with the client,
 * or the opener's with the server. */
static void
pump_route(struct gw_session *s)
{
	char un[UP_NAME_MAX];
	struct gw_routed *rt = s->rt;
	struct gw_side *c = CL(s), *u = UP(s);
	int i;

	for (i = 0; i < PUMP_ROUNDS && !s->closing; i++) {
		if (rt->phase == PH_FRONT) {
			struct smtpfix_front_step st;

			if (gw_buf_alloc(&c->out, s->cfg->buffer_bytes) != 0 ||
			    gw_buf_room(&c->out) < sizeof(st.buf) + 64 ||
			    c->hs_wait || c->hs)
				return;
			smtpfix_front_step(&rt->front,
			    c->in.data != NULL ? gw_buf_head(&c->in) : "",
			    c->in.len, &st);
			if (st.act == SMTPFIX_FRONT_NONE)
				return;
			s->last = ev_now(s->ctx->loop);
			if (st.reason != NULL)
				gw_log(LOG_DEBUG,
				    "session=%08x event=front_refuse verb=%s "
				    "reason=%s",
				    s->id, st.verb != NULL ? st.verb : "?",
				    st.reason);
			if (st.act == SMTPFIX_FRONT_ROUTE) {
				route_resolve(s, &st.domain);
				continue;
			}
			gw_buf_drop(&c->in, st.consumed);
			gw_buf_put(&c->out, st.emit, st.emit_len);
			if (st.act == SMTPFIX_FRONT_TLS) {
				drain_client(s);
				c->hs_wait = 1;
				return;
			}
			if (st.act == SMTPFIX_FRONT_CLOSE) {
				begin_close(s,
				    st.verb != NULL &&
				            strcmp(st.verb, "QUIT") == 0
				        ? "quit"
				        : "refused",
				    0);
				return;
			}
			continue;
		}
		if (rt->phase == PH_OPEN) {
			struct smtpfix_opener_step st;

			if (u->hs)
				return;
			smtpfix_opener_step(&rt->op,
			    u->in.data != NULL ? gw_buf_head(&u->in) : "",
			    u->in.len, &st);
			if (st.consumed > 0)
				gw_buf_drop(&u->in, st.consumed);
			if (st.act != SMTPFIX_OPENER_NONE)
				gw_log(LOG_DEBUG,
				    "session=%08x event=opener act=%d "
				    "consumed=%zu",
				    s->id, (int)st.act, st.consumed);
			switch (st.act) {
			case SMTPFIX_OPENER_NONE:
				/* A line of a multi-line reply was used:
				 * the next one may be here already. */
				if (st.consumed == 0)
					return;
				break;
			case SMTPFIX_OPENER_SEND:
				if (gw_buf_alloc(
				        &u->out, s->cfg->buffer_bytes) != 0 ||
				    gw_buf_room(&u->out) < st.emit_len) {
					route_target_failed(s, S_ROUTE_LOST,
					    sizeof(S_ROUTE_LOST) - 1,
					    "no_memory");
					return;
				}
				gw_buf_put(&u->out, st.emit, st.emit_len);
				break;
			case SMTPFIX_OPENER_TLS:
				route_upstream_tls(s);
				break;
			case SMTPFIX_OPENER_DONE:
				/* RFC 5321 §3.3: the server took MAIL; the
				 * client's RCPT is next, relayed. */
				if (!rt->fb_leg)
					s->ctx->routed++;
				gw_log(LOG_INFO,
				    "session=%08x event=route_open domain=%s "
				    "dest=%s tls=%s identity=%s%s",
				    s->id, rt->dom, up_name(s, un),
				    smtpfix_opener_in_tls(&rt->op) ? "yes"
				                                   : "no",
				    smtpfix_identity_mode_name(s->id_mode),
				    rt->fb_leg ? " fallback=ipv4 action=replay"
				               : "");
				route_open(s);
				return;
			case SMTPFIX_OPENER_FAIL:
				route_target_failed(s, st.emit, st.emit_len,
				    rt->op.why != NULL ? rt->op.why : "?");
				break;
			}
			s->last = ev_now(s->ctx->loop);
			continue;
		}
		return; /* RESOLVE, CONNECT: an event comes */
	}
}

/* A session on a route address: the gateway greets (RFC 5321 §4.3.1). */
static int
route_start(struct gw_session *s, size_t route, const struct nat_addr *local)
{
	const struct gw_config *cfg = s->cfg;
	const struct gw_route *r = &cfg->routes[route];
	struct gw_routed *rt;
	struct gw_side *c = CL(s);
	char g[600];
	size_t n;

	if ((rt = calloc(1, sizeof(*rt) + cfg->pol.cmd_max)) == NULL)
		return -1;
	s->rt = rt;
	rt->route = route;
	rt->phase = PH_FRONT;
	rt->fb_pick = -1;
	rt->local_family = local->family;
	rt->fpol.fqdn = cfg->pol.fqdn;
	rt->fpol.fqdn_len = cfg->pol.fqdn_len;
	rt->fpol.size_max = r->size_max;
	rt->fpol.cmd_max = cfg->pol.cmd_max;
	rt->fpol.hygiene = cfg->hygiene;
	/* STARTTLS towards the client when a certificate is loaded for the
	 * route; towards the servers by tls_upstream (RFC 7435: opportunistic
	 * takes what is offered). */
	if (r->tls.pol.mode == SMTPFIX_TLS_TERMINATE && r->tls.cert >= 0 &&
	    cfg->tls != NULL) {
		rt->fpol.starttls = 1;
		s->tls = &r->tls;
	}
	rt->optls = r->tls.cli < 0 ? SMTPFIX_OPENER_TLS_NO
	            : r->tls.pol.upstream == SMTPFIX_TLSUP_OPPORTUNISTIC
	                ? SMTPFIX_OPENER_TLS_MAY
	                : SMTPFIX_OPENER_TLS_MUST;
	smtpfix_front_init(&rt->front, &rt->fpol, rt->mail, cfg->pol.cmd_max);
	n = smtpfix_front_greeting(&rt->front, g, sizeof(g));
	if (gw_buf_alloc(&c->out, cfg->buffer_bytes) == 0 &&
	    gw_buf_room(&c->out) >= n)
		gw_buf_put(&c->out, g, n);
	return 0;
}

/* Greets with a refusal and answers 503 until QUIT (RFC 5321 §3.1). */
static void
refusing(struct gw_session *s, const char *cs, const char *lsb, const char *why,
    const char *code_enh, const char *text)
{
	gw_log(LOG_WARNING,
	    "session=%08x event=refuse client=%s local=%s "
	    "reason=%s reply=%.3s",
	    s->id, cs, lsb, why, code_enh);
	s->refusing = 1;
	s->reason = why;
	gw_metrics_label(GW_MF_REFUSE, why, code_enh);
	say(s, code_enh, text);
	session_update(s);
}

void
gw_session_start(struct gw_ctx *ctx, int cfd,
    const struct sockaddr_storage *peer, const struct sockaddr_storage *lsa)
{
	const struct gw_config *cfg = ctx->cfg;
	struct sockaddr_storage ls;
	socklen_t ll = sizeof(ls);
	struct nat_addr client, local, src;
	unsigned cport, lport, n;
	char cs[64], lsb[64], dsb[64], ssb[INET6_ADDRSTRLEN];
	struct gw_session *s;
	struct nat_dest d;
	const struct gw_tls_sel *tls;
	const struct gw_identity *idp;
	struct gw_identity idc;
	const char *kind, *name;
	uint32_t pair;
	int loop;

	sa_to_addr(peer, &client, &cport);
	addr_str(&client, cport, cs, sizeof(cs));
	if (lsa == NULL) {
		if (getsockname(cfd, (struct sockaddr *)&ls, &ll) != 0) {
			close(cfd);
			return;
		}
		lsa = &ls;
	}
	sa_to_addr(lsa, &local, &lport);
	addr_str(&local, lport, lsb, sizeof(lsb));
	/* RFC 5321 §3.1: a 421 greeting may close at once. */
	if (ctx->nsessions >= cfg->max_sessions) {
		gw_log(LOG_WARNING,
		    "event=refuse client=%s local=%s "
		    "reason=max_sessions",
		    cs, lsb);
		gw_metrics_label(GW_MF_REFUSE, "max_sessions", "421");
		refuse(cfg, cfd, "421 4.3.2", "too many sessions, try later");
		return;
	}
	/* RFC 3463 X.4.6: a connection from one of our own upstream
	 * sockets means a destination is the gateway itself. */
	loop = gw_tally_get(&ctx->ups, &client, cport) > 0 ||
	       gw_uptable_has(&client, cport);
	n = gw_tally_get(&ctx->clients, &client, 0);
	if (loop) {
		gw_log(LOG_ERR,
		    "event=refuse client=%s local=%s reason=loop "
		    "note=a_destination_is_the_gateway_itself",
		    cs, lsb);
		gw_metrics_label(GW_MF_REFUSE, "loop", "554");
		refuse(cfg, cfd, "554 5.4.6",
		    "routing loop: the gateway "
		    "reached itself");
		return;
	}
	if (n >= cfg->max_sessions_per_client) {
		gw_log(LOG_WARNING,
		    "event=refuse client=%s local=%s "
		    "reason=max_sessions_per_client",
		    cs, lsb);
		gw_metrics_label(
		    GW_MF_REFUSE, "max_sessions_per_client", "421");
		refuse(cfg, cfd, "421 4.7.0",
		    "too many sessions from your "
		    "address, try later");
		return;
	}
	if ((s = session_new(ctx, cfd, &client)) == NULL) {
		gw_log(LOG_ERR,
		    "event=refuse client=%s local=%s "
		    "reason=no_memory",
		    cs, lsb);
		gw_metrics_label(GW_MF_REFUSE, "no_memory", "421");
		refuse(cfg, cfd, "421 4.3.0", "out of memory, try later");
		return;
	}
	switch (nat_dest_find(&cfg->dest, &local, &client, &d)) {
	case NAT_DEST_OK:
		break;
	case NAT_DEST_NO_MAPPING:
		refusing(s, cs, lsb, "no_pair", "554 5.4.4",
		    "no route: this "
		    "address stands for no server");
		return;
	case NAT_DEST_CLIENT:
		refusing(s, cs, lsb, "client_not_allowed", "554 5.7.1",
		    "relaying denied: your address may not use this gateway");
		return;
	case NAT_DEST_NONGLOBAL:
		gw_log(LOG_INFO,
		    "session=%08x event=refuse_detail "
		    "destination_scope=%s",
		    s->id, d.why != NULL ? d.why : "?");
		refusing(s, cs, lsb, "nonglobal_destination", "554 5.4.4",
		    "no route: a non-global IPv4 address is not reachable "
		    "through the well-known prefix (RFC 6052 section 3.1)");
		return;
	case NAT_DEST_NOT_HOST:
		(void)nat_addr_fmt(&d.dst, ssb, sizeof(ssb));
		gw_log(LOG_INFO,
		    "session=%08x event=refuse_detail dest=%s "
		    "destination_scope=%s",
		    s->id, ssb, d.why != NULL ? d.why : "?");
		refusing(s, cs, lsb, "destination_not_host", "554 5.4.4",
		    "no route: the destination is the gateway host, its "
		    "link or no single host");
		return;
	}
	if (d.kind == NAT_DEST_ROUTE) {
		const struct gw_identity *rid = &cfg->routes[d.index].identity;

		if (route_start(s, d.index, &local) != 0) {
			refusing(s, cs, lsb, "no_memory", "421 4.3.0",
			    "out of memory, try later");
			return;
		}
		/* The route's identity keys, else [gateway]'s: a PROXY
		 * header on every upstream connection (upstream_connect),
		 * XCLIENT through the opener (route_connected). */
		idc = cfg->identity;
		if (rid->mode >= 0)
			idc.mode = rid->mode;
		if (rid->required >= 0)
			idc.required = rid->required;
		if (session_identity(s, &idc, &client, cport, &local, lport) !=
		    0) {
			refusing(s, cs, lsb, "no_memory", "421 4.3.0",
			    "out of memory, try later");
			return;
		}
		gw_log(LOG_INFO,
		    "session=%08x event=open client=%s local=%s via=route:%s "
		    "tls=%s identity=%s",
		    s->id, cs, lsb, cfg->routes[d.index].name,
		    s->tls != NULL ? "terminate" : "none",
		    smtpfix_identity_mode_name(s->id_mode));
		session_update(s);
		return;
	}
	/* RFC 3463 X.4.6: the destination is our own listener. */
	if (gw_selfdst(cfg, &d.dst, cfg->upstream_port)) {
		refusing(s, cs, lsb, "loop", "554 5.4.6",
		    "routing loop: the gateway reached itself");
		return;
	}
	idc = cfg->identity;
	if (d.kind == NAT_DEST_PAIR) {
		const struct gw_pair_opt *o = &cfg->pair_opt[d.index];

		kind = "pair";
		name = o->name;
		tls = &o->tls;
		if (o->bare >= 0)
			s->pol.bare = (enum smtpfix_bare)o->bare;
		idp = &o->identity;
	} else {
		kind = "nat64";
		name = cfg->nat64[d.index].name;
		tls = &cfg->tls_default;
		idp = &cfg->nat64[d.index].identity;
	}
	/* The section's own identity keys, else [gateway]'s. */
	if (idp->mode >= 0)
		idc.mode = idp->mode;
	if (idp->required >= 0)
		idc.required = idp->required;
	if (session_identity(s, &idc, &client, cport, &local, lport) != 0) {
		refusing(s, cs, lsb, "no_memory", "421 4.3.0",
		    "out of memory, try later");
		return;
	}
	if (nat_dest_source(&cfg->dest, &client, d.dst.family, &src, &pair) &&
	    cfg->pair_opt[pair].helo_name != NULL) {
		s->pol.fqdn = cfg->pair_opt[pair].helo_name;
		s->pol.fqdn_len = strlen(s->pol.fqdn);
	}
	addr_str(&d.dst, cfg->upstream_port, dsb, sizeof(dsb));
	s->up_dst = d.dst;
	s->up_src = src;
	/* The pair's STARTTLS policy (terminate needs its contexts). */
	s->tls = tls;
	if (s->tls != NULL &&
	    (s->tls->pol.mode != SMTPFIX_TLS_TERMINATE || cfg->tls != NULL))
		smtpfix_stream_set_tls(&s->fix, &s->tls->pol);
	else
		s->tls = NULL;
	/* RFC 7435 §1: a server whose TLS failed lately gets clear text at
	 * once (the policy decides whether that applies). */
	if (s->tls != NULL && smtpfix_tlsmemo_known(&ctx->tls_failed, dsb,
	                          strlen(dsb), (uint64_t)ev_now(ctx->loop)))
		smtpfix_stream_set_upstream_clear(&s->fix);
	if (src.family != 0)
		(void)nat_addr_fmt(&src, ssb, sizeof(ssb));
	else
		(void)snprintf(ssb, sizeof(ssb), "auto");
	gw_log(LOG_INFO,
	    "session=%08x event=open client=%s local=%s dest=%s "
	    "via=%s:%s source=%s helo_name=%s tls=%s identity=%s",
	    s->id, cs, lsb, dsb, kind, name, ssb, s->pol.fqdn,
	    s->tls != NULL ? smtpfix_tlspolicy_mode_name(
	                         smtpfix_tlspolicy_mode(&s->tls->pol))
	                   : "passthrough",
	    smtpfix_identity_mode_name(s->id_mode));
	gw_metrics_count(GW_M_SESSIONS_OPENED, 1);
	if (d.kind == NAT_DEST_PAIR && d.dst.family == AF_INET6 &&
	    cfg->pair_opt[d.index].fallback4.family == AF_INET)
		fallback_session(s, &cfg->pair_opt[d.index].fallback4);
	upstream_connect(s, &s->up_dst, &s->up_src);
	session_update(s);
}

void
gw_session_log_stats(const struct gw_ctx *ctx, int level)
{
	const struct gw_smtp_stats *st = &ctx->stats;

	gw_log(level,
	    "event=smtp_stats sync_violation=%llu inline_bare_cr=%llu "
	    "inline_bare_lf=%llu inline_nul=%llu inline_messages=%llu",
	    (unsigned long long)st->sync_violations,
	    (unsigned long long)st->inline_bare_cr,
	    (unsigned long long)st->inline_bare_lf,
	    (unsigned long long)st->inline_nul,
	    (unsigned long long)st->inline_messages);
}

/*
 * A drain's end (RFC 5321 §3.8: a server that must shut down answers
 * 421): each session still open is told "421 4.3.2" (unless its bytes
 * are opaque, TLS the gateway does not terminate), its server leg is
 * reset so no half transaction is delivered, and it closes once the
 * reply is flushed.
 */
void
gw_session_drain_close(struct gw_ctx *ctx)
{
	struct gw_session *s, *next;

	for (s = TAILQ_FIRST(&ctx->sessions); s != NULL; s = next) {
		/* session_update may free s. */
		next = TAILQ_NEXT(s, entry);
		if (s->closing)
			continue;
		if (!s->opaque)
			say(s, "421 4.3.2", "service shutting down, try later");
		gw_metrics_count(GW_M_DRAIN_421, 1);
		begin_close(s, "drain_timeout", 1);
		session_update(s);
	}
}

void
gw_session_close_all(struct gw_ctx *ctx)
{
	struct gw_session *s;

	while ((s = TAILQ_FIRST(&ctx->sessions)) != NULL) {
		if (s->reason == NULL)
			s->reason = "shutdown";
		session_end(s);
	}
	gw_tally_free(&ctx->clients);
	gw_tally_free(&ctx->ups);
	if (ctx->dns != NULL) {
		gw_dns_free(ctx->dns);
		ctx->dns = NULL;
	}
}
