/*
 * gateway/session.c: relays one SMTP session between a client and the
 * server its local address is paired with.
 *
 * Four buffers of buffer_bytes each: cin (read from the client, not yet
 * parsed), sout (parsed, to the server), sin (read from the server, not
 * yet parsed), cout (to the client).  smtpfix decides what moves from an
 * input buffer to the opposite output buffer; this file only moves bytes
 * and keeps the sockets' interest in step with the buffers: read a peer
 * only while its input buffer has room, so one side can never make the
 * gateway hold more than it can pass on (backpressure).
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "gateway/buf.h"
#include "gateway/log.h"
#include "gateway/metrics.h"
#include "gateway/selfdst.h"
#include "gateway/session.h"
#include "gateway/tls.h"
#include "gateway/uptable.h"
#include "nat/addr.h"
#include "nat/pair.h"
#include "nat/rfc6052.h"
#include "nat/scope.h"
#include "smtpfix/refuse.h"
#include "smtpfix/stream.h"

#define PUMP_ROUNDS 64    /* steps per wake-up before yielding */
#define CLOSE_GRACE_S 10. /* flushing a last reply at most this long */
#define DRAIN_MAX 64      /* reads when discarding pre-TLS bytes */

struct gw_session {
	TAILQ_ENTRY(gw_session) entry;
	struct gw_ctx *ctx;
	struct gw_config *cfg; /* held until the end */
	uint32_t id;
	int cfd, sfd;
	ev_io crd, cwr, srd, swr;
	ev_timer timer;
	ev_tstamp start, last;
	struct gw_buf cin, sout, sin, cout;
	unsigned connecting : 1, c_eof : 1, s_eof : 1, s_shut : 1, closing : 1,
	    opaque : 1, told : 1, refusing : 1;
	unsigned c_hs_wait : 1,       /* our 220 out: then TLS */
	    c_hs : 1,                 /* client handshake running */
	    s_hs : 1;                 /* upstream handshake running */
	struct gw_tls_leg cl, sl;     /* client and server legs */
	const struct gw_tls_sel *tls; /* pair's, in cfg */
	char up_name[64];             /* "[a]:port" */
	unsigned ncmds;               /* refusing: commands seen */
	unsigned counted : 1,         /* in ctx->clients */
	    up_counted : 1;           /* up_local in ctx->ups */
	struct nat_addr up_local;     /* our end of the upstream */
	unsigned up_port;
	size_t up_slot;  /* in the workers' shared table (uptable.h) */
	ev_tstamp up_t0; /* upstream connect began */
	/* Where to connect again after a failed upstream handshake. */
	struct nat_addr up_dst, up_src;
	uint64_t c2s, s2c;  /* bytes read from each peer */
	uint32_t inl[3];    /* this message: bare CR, LF, NUL inlined */
	const char *reason; /* how it ended */
	struct nat_addr client;
	struct smtpfix_policy pol; /* cfg's, HELO name per pair */
	struct smtpfix_stream fix; /* last: the largest part */
};

static void session_end(struct gw_session *);
static void session_update(struct gw_session *);
static void upstream_connect(
    struct gw_session *, const struct nat_addr *, const struct nat_addr *);

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
}

void
gw_ctx_log_stats(const struct gw_ctx *ctx)
{
	gw_log(LOG_INFO, "event=stats sessions=%u tls_fallbacks=%llu",
	    ctx->nsessions, (unsigned long long)ctx->tls_fallbacks);
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

static socklen_t
addr_to_sa(const struct nat_addr *a, unsigned port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (a->family == AF_INET) {
		struct sockaddr_in *s4 = (void *)ss;

		s4->sin_family = AF_INET;
		s4->sin_addr = a->u.v4;
		s4->sin_port = htons((uint16_t)port);
		return sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (void *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_addr = a->u.v6;
		s6->sin6_port = htons((uint16_t)port);
		return sizeof(*s6);
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

	if (gw_buf_alloc(&s->cout, s->cfg->buffer_bytes) != 0)
		return;
	n = smtpfix_reply_fmt(
	    line, sizeof(line), pol->fqdn, pol->fqdn_len, code_enh, text);
	if (n > 0 && gw_buf_room(&s->cout) >= n)
		gw_buf_put(&s->cout, line, n);
	s->told = 1;
}

static void
upstream_close(struct gw_session *s, int reset)
{
	struct linger lg = {1, 0};

	if (s->sfd < 0)
		return;
	ev_io_stop(s->ctx->loop, &s->srd);
	ev_io_stop(s->ctx->loop, &s->swr);
	/* SO_LINGER 0 makes close send RST: the server then knows the
	 * transaction was cut, and never sees a clean end of data. */
	if (reset)
		(void)setsockopt(
		    s->sfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	else
		gw_tls_shutdown(&s->sl);
	gw_tls_leg_free(&s->sl);
	s->s_hs = 0;
	close(s->sfd);
	s->sfd = -1;
	if (s->up_counted) {
		gw_tally_sub(&s->ctx->ups, &s->up_local, s->up_port);
		s->up_counted = 0;
	}
	gw_uptable_del(s->up_slot);
	s->up_slot = 0;
	s->s_eof = 1;
	s->sout.len = 0;
}

/* Stop relaying; flush what the client is owed, then end. */
static void
begin_close(struct gw_session *s, const char *reason, int reset_upstream)
{
	if (s->reason == NULL)
		s->reason = reason;
	s->closing = 1;
	upstream_close(s, reset_upstream);
	ev_io_stop(s->ctx->loop, &s->crd);
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

static void
log_step(struct gw_session *s, const struct smtpfix_step *st)
{
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
	case SMTPFIX_EV_REPLY_CODE:
		gw_log(LOG_INFO,
		    "session=%08x event=reply_recoded from=456 to=451 "
		    "reason=ipv6_ipv4_fallback_not_negotiated",
		    s->id);
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
	char junk[4096];
	int i;

	s->cin.len = s->cin.off = 0;
	for (i = 0; i < DRAIN_MAX; i++) {
		ssize_t n = recv(s->cfd, junk, sizeof(junk), MSG_DONTWAIT);

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
	unsigned ttl = s->cfg->tls_fallback_remember_s;

	s->ctx->tls_fallbacks++;
	gw_metrics_count(GW_M_TLS_FALLBACK, 1);
	smtpfix_tlsmemo_note(&s->ctx->tls_failed, s->up_name,
	    strlen(s->up_name), (uint64_t)ev_now(s->ctx->loop), ttl);
	gw_log(LOG_WARNING,
	    "session=%08x event=tls_fallback leg=server dest=%s reason=%s "
	    "action=reconnect_clear remember_s=%u fallbacks=%llu",
	    s->id, s->up_name, why, ttl,
	    (unsigned long long)s->ctx->tls_fallbacks);
	upstream_close(s, 1);
	s->sin.len = s->sin.off = 0;
	s->sout.len = s->sout.off = 0;
	s->s_eof = 0;
	s->s_shut = 0;
	upstream_connect(s, &s->up_dst, &s->up_src);
}

/* Puts TLS on the upstream leg after the server's 220 to our STARTTLS. */
static void
upstream_tls_start(struct gw_session *s)
{
	char err[300];

	if (s->tls == NULL || s->cfg->tls == NULL ||
	    gw_tls_leg_connect(&s->sl, s->cfg->tls, s->tls->cli,
	        s->tls->server_name, s->up_name, err, sizeof(err)) != 0) {
		if (s->tls == NULL || s->cfg->tls == NULL)
			(void)snprintf(err, sizeof(err), "no TLS context");
		log_tls_failed(s, "server", "setup", err);
		if (smtpfix_stream_tls_done(&s->fix, SMTPFIX_TLSR_UP_FAIL))
			upstream_fallback(s, "setup");
		else if (s->reason == NULL)
			s->reason = "tls_server_failed";
		return;
	}
	s->s_hs = 1;
}

/* One step in one direction; returns 1 if anything moved. */
static int
step(struct gw_session *s, int c2s)
{
	struct gw_buf *in = c2s ? &s->cin : &s->sin;
	struct gw_buf *out = c2s ? &s->sout : &s->cout;
	struct smtpfix_step st;
	size_t cap = s->cfg->buffer_bytes, len;
	size_t room = out->data != NULL ? gw_buf_room(out) : cap;

	if (room < SMTPFIX_EMIT_MAX)
		return 0;
	len = in->len < room ? in->len : room;
	if (c2s)
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
		s->sin.len = s->sin.off = 0; /* server bytes after its 220 */
		drain_client(s);
		s->opaque = 1;
		break;
	case SMTPFIX_ACT_TLS_UPSTREAM:
		/* RFC 3207 §4: what the server sent after its 220 is not
		 * TLS (the CVE-2021-38371 class): dropped.  The handshake
		 * starts when the socket is writable (session_update). */
		gw_buf_drop(in, st.consumed);
		st.consumed = 0;
		s->sin.len = s->sin.off = 0;
		upstream_tls_start(s);
		break;
	case SMTPFIX_ACT_TLS_CLIENT:
		/* RFC 3207 §4.2: what the client sent before our 220 is
		 * not TLS and never a command (the CVE-2011-0411 class). */
		drain_client(s);
		gw_buf_put(out, st.emit, st.emit_len);
		s->c_hs_wait = 1;
		break;
	}
	if (st.consumed > 0)
		gw_buf_drop(in, st.consumed);
	if (st.act == SMTPFIX_ACT_CLOSE)
		begin_close(s,
		    st.event == SMTPFIX_EV_BAD_REPLY ? "server_protocol_error"
		    : st.event == SMTPFIX_EV_SYNC    ? "sync_violation"
		                                     : "refused",
		    st.event == SMTPFIX_EV_SYNC);
	s->last = ev_now(s->ctx->loop);
	return 1;
}

/* A session refused at the greeting: answer 503 until QUIT (RFC 5321
 * §3.1), never connecting anywhere. */
static void
pump_refusing(struct gw_session *s)
{
	struct smtpfix_refuse_step st;

	while (!s->closing && s->cin.len > 0) {
		smtpfix_refuse_step(gw_buf_head(&s->cin), s->cin.len,
		    s->cfg->pol.cmd_max, &s->ncmds, &st);
		if (st.act == SMTPFIX_REFUSE_NONE)
			break;
		gw_buf_drop(&s->cin, st.consumed);
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
	int n = 0;

	if (!smtpfix_stream_sync_wait(&s->fix) || s->cfd < 0)
		return;
	if (gw_tls_pending(&s->cl) ||
	    (ioctl(s->cfd, FIONREAD, &n) == 0 && n > 0))
		smtpfix_stream_client_early(&s->fix);
}

static void
pump(struct gw_session *s)
{
	int i, moved;

	if (s->refusing) {
		pump_refusing(s);
		return;
	}
	sync_peek(s);

	for (i = 0; i < PUMP_ROUNDS && !s->closing; i++) {
		moved = 0;
		while (!s->closing && step(s, 1))
			moved = 1;
		while (!s->closing && step(s, 0))
			moved = 1;
		if (!moved)
			break;
	}
}

static int
sock_error(int e)
{
	return e != EAGAIN && e != EWOULDBLOCK && e != EINTR;
}

/* 1 while the session may take more bytes from the client. */
static int
client_wants_read(struct gw_session *s)
{
	return !s->c_eof && !s->closing && !s->c_hs_wait && !s->c_hs &&
	       (s->cin.data == NULL || gw_buf_room(&s->cin) > 0);
}

static int
server_wants_read(struct gw_session *s)
{
	return s->sfd >= 0 && !s->connecting && !s->s_eof && !s->s_hs &&
	       (s->sin.data == NULL || gw_buf_room(&s->sin) > 0);
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

/* Reads what the client sent; returns -1 if the session ended. */
static int
client_read(struct gw_session *s)
{
	ssize_t n;

	if (gw_buf_alloc(&s->cin, s->cfg->buffer_bytes) != 0) {
		s->reason = "no_memory";
		upstream_close(s, 1);
		session_end(s);
		return -1;
	}
	n = gw_tls_buf_read(&s->cl, &s->cin);
	if (n > 0) {
		s->c2s += (uint64_t)n;
		pump(s);
	} else if (n == 0) {
		s->c_eof = 1;
		ev_io_stop(s->ctx->loop, &s->crd);
		pump(s);
	} else if (sock_error(errno)) {
		/* The client vanished (or broke TLS): a message in progress
		 * must not be completed, so the server gets a reset. */
		client_gone(
		    s, errno == EPROTO ? "client_tls_error" : "client_reset");
		return -1;
	}
	return 0;
}

/* Writes what the client is owed; returns -1 if the session ended. */
static int
client_write(struct gw_session *s)
{
	ssize_t n;

	n = gw_tls_buf_write(&s->cl, &s->cout);
	if (n < 0 && sock_error(errno)) {
		client_gone(s, "client_reset");
		return -1;
	}
	if (n > 0) {
		s->last = ev_now(s->ctx->loop);
		pump(s);
	}
	return 0;
}

static void
server_read(struct gw_session *s)
{
	ssize_t n;

	if (gw_buf_alloc(&s->sin, s->cfg->buffer_bytes) != 0) {
		say(s, "421 4.3.0", "out of memory, try later");
		begin_close(s, "no_memory", 1);
		return;
	}
	n = gw_tls_buf_read(&s->sl, &s->sin);
	if (n > 0) {
		s->s2c += (uint64_t)n;
		pump(s);
	} else if (n == 0 || sock_error(errno)) {
		s->s_eof = 1;
		ev_io_stop(s->ctx->loop, &s->srd);
		if (n < 0 && s->reason == NULL)
			s->reason = errno == EPROTO ? "server_tls_error"
			                            : "server_reset";
		pump(s);
	}
}

static void
server_write(struct gw_session *s)
{
	ssize_t n;

	n = gw_tls_buf_write(&s->sl, &s->sout);
	if (n < 0 && sock_error(errno)) {
		s->s_eof = 1;
		if (s->reason == NULL)
			s->reason = "server_reset";
		upstream_close(s, 0);
	} else if (n > 0) {
		s->last = ev_now(s->ctx->loop);
		pump(s);
	}
}

/*
 * One step of the client's handshake.  A failure closes the connection
 * without a word: the client expects TLS, so anything in clear text now
 * would be a continuation it did not ask for.  Returns -1 if the session
 * ended.
 */
static int
client_handshake(struct gw_session *s)
{
	char err[256];

	switch (gw_tls_handshake(&s->cl, err, sizeof(err))) {
	case GW_TLS_AGAIN:
		return 0;
	case GW_TLS_OK:
		s->c_hs = 0;
		s->last = ev_now(s->ctx->loop);
		log_tls(s, "client", &s->cl);
		smtpfix_stream_tls_done(&s->fix, SMTPFIX_TLSR_CLIENT_OK);
		pump(s);
		return 0;
	case GW_TLS_FAIL:
	case GW_TLS_FAIL_VERIFY:
	default:
		s->c_hs = 0;
		log_tls_failed(s, "client", "handshake", err);
		smtpfix_stream_tls_done(&s->fix, SMTPFIX_TLSR_CLIENT_FAIL);
		if (s->reason == NULL)
			s->reason = "tls_client_failed";
		s->cout.len = 0;
		upstream_close(s, 0);
		session_end(s);
		return -1;
	}
}

/* One step of the upstream handshake; a failure gives the client, still
 * in clear text, the policy's reply (421 4.7.0). */
static void
server_handshake(struct gw_session *s)
{
	enum gw_tls_rc rc;
	char err[256];

	rc = gw_tls_handshake(&s->sl, err, sizeof(err));
	switch (rc) {
	case GW_TLS_AGAIN:
		return;
	case GW_TLS_OK:
		s->s_hs = 0;
		s->last = ev_now(s->ctx->loop);
		log_tls(s, "server", &s->sl);
		smtpfix_stream_tls_done(&s->fix, SMTPFIX_TLSR_UP_OK);
		pump(s);
		return;
	case GW_TLS_FAIL:
	case GW_TLS_FAIL_VERIFY:
	default:
		s->s_hs = 0;
		log_tls_failed(s, "server",
		    rc == GW_TLS_FAIL_VERIFY ? "verify" : "handshake", err);
		if (smtpfix_stream_tls_done(&s->fix,
		        rc == GW_TLS_FAIL_VERIFY ? SMTPFIX_TLSR_UP_VERIFY
		                                 : SMTPFIX_TLSR_UP_FAIL)) {
			upstream_fallback(s, "handshake");
			return;
		}
		if (s->reason == NULL)
			s->reason = rc == GW_TLS_FAIL_VERIFY
			                ? "tls_server_verify_failed"
			                : "tls_server_failed";
		pump(s);
		return;
	}
}

/* The client's socket is readable: a handshake step, a write that
 * waited to read, or a read. */
static void
client_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct gw_session *s = w->data;

	(void)loop;
	(void)revents;
	if (s->c_hs) {
		if (client_handshake(s) != 0)
			return;
	} else {
		if (s->cout.len > 0 && s->cl.wr_want == GW_TLS_WANT_READ &&
		    client_write(s) != 0)
			return;
		if (client_wants_read(s) && client_read(s) != 0)
			return;
	}
	session_update(s);
}

static void
client_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct gw_session *s = w->data;

	(void)loop;
	(void)revents;
	if (s->c_hs) {
		if (client_handshake(s) != 0)
			return;
	} else {
		if (s->cout.len > 0 && client_write(s) != 0)
			return;
		if (s->cl.rd_want == GW_TLS_WANT_WRITE &&
		    client_wants_read(s) && client_read(s) != 0)
			return;
	}
	session_update(s);
}

static void
server_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct gw_session *s = w->data;

	(void)loop;
	(void)revents;
	if (s->s_hs) {
		server_handshake(s);
	} else {
		if (s->sout.len > 0 && s->sl.wr_want == GW_TLS_WANT_READ)
			server_write(s);
		if (server_wants_read(s))
			server_read(s);
	}
	session_update(s);
}

static void
connect_failed(struct gw_session *s, int err)
{
	char d[64];

	/* Keith Moore's review / RFC 3463: 4.4.1 no answer from host,
	 * 4.4.2 bad connection (here: refused or reset while connecting). */
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

static void
server_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct gw_session *s = w->data;

	(void)loop;
	(void)revents;
	if (s->connecting) {
		int err = 0;
		socklen_t el = sizeof(err);

		if (getsockopt(s->sfd, SOL_SOCKET, SO_ERROR, &err, &el) != 0)
			err = errno;
		if (err != 0) {
			connect_failed(s, err);
			session_update(s);
			return;
		}
		s->connecting = 0;
		s->last = ev_now(s->ctx->loop);
		gw_metrics_connect(ev_time() - s->up_t0);
		gw_log(LOG_DEBUG, "session=%08x event=connected", s->id);
		session_update(s);
		return;
	}
	if (s->s_hs) {
		server_handshake(s);
	} else {
		if (s->sout.len > 0)
			server_write(s);
		if (s->sfd >= 0 && s->sl.rd_want == GW_TLS_WANT_WRITE &&
		    server_wants_read(s))
			server_read(s);
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
	if (s->connecting)
		return c->connect_timeout_s;
	if (s->refusing)
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
	if (s->connecting) {
		connect_failed(s, ETIMEDOUT);
	} else if (s->opaque || s->refusing || s->c_hs_wait || s->c_hs) {
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
 * The watchers of one leg: during a handshake, what it waits for;
 * otherwise a read (wanted while the input buffer has room) and a write
 * (while output is pending), each on the readiness its last EAGAIN asked
 * for.  Bytes already decrypted inside OpenSSL are fed as a read event.
 */
static void
watch(struct gw_session *s, struct gw_tls_leg *l, ev_io *rd, ev_io *wr, int hs,
    int want_read, int want_write)
{
	struct ev_loop *loop = s->ctx->loop;
	int r = 0, w = 0;

	if (hs) {
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
		ev_io_start(loop, rd);
	else
		ev_io_stop(loop, rd);
	if (w)
		ev_io_start(loop, wr);
	else
		ev_io_stop(loop, wr);
	if (!hs && want_read && gw_tls_pending(l))
		ev_feed_event(loop, rd, EV_READ);
}

/*
 * Brings watchers, half-closes and the end of the session in line with
 * the buffers.  Called after every event.
 */
static void
session_update(struct gw_session *s)
{
	struct ev_loop *loop = s->ctx->loop;
	enum smtpfix_wait wt;

	/* Try the writes now: usually the socket has room, saving a trip
	 * through the loop. */
	if (s->cout.len > 0 && !s->c_hs &&
	    gw_tls_buf_write(&s->cl, &s->cout) < 0 && sock_error(errno)) {
		client_gone(s, "client_reset");
		return;
	}
	if (s->sfd >= 0 && !s->connecting && !s->s_hs && s->sout.len > 0 &&
	    gw_tls_buf_write(&s->sl, &s->sout) < 0 && sock_error(errno)) {
		if (s->reason == NULL)
			s->reason = "server_reset";
		upstream_close(s, 0);
	}
	if (!s->closing)
		pump(s);
	/* RFC 3207 §4: our 220 is out; the client's next bytes are its
	 * ClientHello. */
	if (s->c_hs_wait && s->cout.len == 0 && !s->closing) {
		char err[256];

		s->c_hs_wait = 0;
		if (s->tls == NULL || s->cfg->tls == NULL ||
		    gw_tls_leg_accept(&s->cl, s->cfg->tls, s->tls->cert, err,
		        sizeof(err)) != 0) {
			if (s->tls == NULL || s->cfg->tls == NULL)
				(void)snprintf(
				    err, sizeof(err), "no TLS context");
			log_tls_failed(s, "client", "setup", err);
			smtpfix_stream_tls_done(
			    &s->fix, SMTPFIX_TLSR_CLIENT_FAIL);
			if (s->reason == NULL)
				s->reason = "tls_client_failed";
			upstream_close(s, 0);
			session_end(s);
			return;
		}
		s->c_hs = 1;
	}

	wt = smtpfix_stream_wait(&s->fix);
	/* Client done sending and all of it passed on: half-close. */
	if (s->c_eof && !s->s_shut && s->sfd >= 0 && !s->connecting &&
	    !s->s_hs && s->sout.len == 0 &&
	    (s->cin.len == 0 || wt == SMTPFIX_WAIT_COMMAND ||
	        wt == SMTPFIX_WAIT_DATA || wt == SMTPFIX_WAIT_OPAQUE)) {
		/* RFC 8446 §6.1: close_notify first on a TLS leg. */
		gw_tls_shutdown(&s->sl);
		(void)shutdown(s->sfd, SHUT_WR);
		s->s_shut = 1;
	}
	if (s->refusing && s->c_eof && !s->closing)
		begin_close(s, s->reason, 0);
	/* Server gone and its last bytes relayed: tell the client if it
	 * was owed a reply, then close. */
	if (s->s_eof && !s->closing &&
	    (s->sin.len == 0 || s->opaque || s->sfd < 0)) {
		if (!s->opaque && !s->told &&
		    smtpfix_stream_upstream_gone(&s->fix))
			say(s, "421 4.4.2", "connection to the server lost");
		begin_close(s,
		    smtpfix_stream_quit_answered(&s->fix) ? "quit"
		                                          : "server_closed",
		    0);
	}
	if (s->closing && s->cout.len == 0) {
		session_end(s);
		return;
	}
	/* Return the storage of empty buffers: an idle session costs only
	 * its struct. */
	gw_buf_release(&s->cin);
	gw_buf_release(&s->sin);
	gw_buf_release(&s->cout);
	gw_buf_release(&s->sout);

	/* Interest follows room (no storage yet counts as room), and on a
	 * TLS leg what OpenSSL asks for. */
	watch(s, &s->cl, &s->crd, &s->cwr, s->c_hs, client_wants_read(s),
	    s->cout.len > 0);
	if (s->sfd >= 0) {
		if (s->connecting) {
			ev_io_stop(loop, &s->srd);
			ev_io_start(loop, &s->swr);
		} else
			watch(s, &s->sl, &s->srd, &s->swr, s->s_hs,
			    server_wants_read(s), s->sout.len > 0);
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

	gw_log(LOG_INFO,
	    "session=%08x event=close reason=%s c2s_bytes=%llu "
	    "s2c_bytes=%llu messages=%llu duration_ms=%lld",
	    s->id, s->reason != NULL ? s->reason : "done",
	    (unsigned long long)s->c2s, (unsigned long long)s->s2c,
	    (unsigned long long)smtpfix_stream_messages(&s->fix),
	    (long long)((ev_now(loop) - s->start) * 1000.));
	upstream_close(s, 0);
	ev_io_stop(loop, &s->crd);
	ev_io_stop(loop, &s->cwr);
	ev_timer_stop(loop, &s->timer);
	gw_tls_shutdown(&s->cl);
	gw_tls_leg_free(&s->cl);
	/* Unread input makes close() send RST, and an RST can destroy our
	 * last reply (a 421 or 554) before the client reads it: drop what
	 * has arrived, so the close is a FIN. */
	if (!s->c_eof)
		drain_client(s);
	close(s->cfd);
	gw_buf_free(&s->cin);
	gw_buf_free(&s->cout);
	gw_buf_free(&s->sin);
	gw_buf_free(&s->sout);
	if (s->counted)
		gw_tally_sub(&s->ctx->clients, &s->client, 0);
	TAILQ_REMOVE(&s->ctx->sessions, s, entry);
	s->ctx->nsessions--;
	gw_metrics_label(
	    GW_MF_CLOSE, s->reason != NULL ? s->reason : "done", NULL);
	gw_metrics_count(GW_M_BYTES_C2S, s->c2s);
	gw_metrics_count(GW_M_BYTES_S2C, s->s2c);
	gw_metrics_count(GW_M_MESSAGES, smtpfix_stream_messages(&s->fix));
	gw_metrics_open(s->ctx->nsessions);
	gw_config_release(s->cfg);
	free(s);
}

enum route_verdict {
	ROUTE_OK = 0,
	ROUTE_NO_MAPPING, /* 554 5.4.4: nothing stands behind it */
	ROUTE_CLIENT,     /* 554 5.7.1: client not allowed */
	ROUTE_NONGLOBAL,  /* 554 5.4.4: RFC 6052 §3.1 */
	ROUTE_NOT_HOST,   /* 554 5.4.4: the host itself, its link, a
	                     group (nat_scope_dest_refused) */
};

struct route {
	struct nat_addr dst;
	const struct gw_tls_sel *tls; /* the pair's STARTTLS policy */
	int bare;                     /* the pair's bare_line_endings, -1 */
	const char *kind;             /* "pair" or "nat64" */
	const char *name;             /* its section name */
	const char *why;              /* refused: the range's name */
};

/*
 * Where a client that reached `local` goes: the partner of a paired
 * address, else the IPv4 address embedded in a [nat64] prefix (RFC 6052
 * §2.2).  Keith Moore's review: a cross-realm relay is never open, so
 * nothing else is ever reached, and only listed clients may use it.
 */
static enum route_verdict
route_find(const struct gw_config *cfg, const struct nat_addr *local,
    const struct nat_addr *client, struct route *r)
{
	const struct nat_pair *p;
	const struct nat_acl *acl;
	size_t i;

	memset(r, 0, sizeof(*r));
	r->bare = -1;
	p = local->family == AF_INET
	        ? nat_pairs_by_v4(&cfg->pairs, &local->u.v4)
	        : nat_pairs_by_v6(&cfg->pairs, &local->u.v6);
	if (p != NULL) {
		const struct gw_pair_opt *o = &cfg->pair_opt[p->user];

		r->kind = "pair";
		r->name = o->name;
		r->tls = &o->tls;
		r->bare = o->bare;
		acl = o->acl >= 0 ? &cfg->acls[o->acl] : &cfg->clients;
		if (!nat_acl_match(acl, client))
			return ROUTE_CLIENT;
		if (local->family == AF_INET) {
			r->dst.family = AF_INET6;
			r->dst.u.v6 = p->v6;
		} else {
			r->dst.family = AF_INET;
			r->dst.u.v4 = p->v4;
		}
		/* The configuration refuses such a pair; checked again
		 * where the destination is used, whatever produced it. */
		if ((r->why = nat_scope_dest_refused(&r->dst)) != NULL)
			return ROUTE_NOT_HOST;
		return ROUTE_OK;
	}
	if (local->family != AF_INET6)
		return ROUTE_NO_MAPPING;
	for (i = 0; i < cfg->nnat64; i++) {
		const struct gw_nat64 *n = &cfg->nat64[i];

		if (nat_6052_extract(
		        &n->prefix, n->plen, &local->u.v6, &r->dst.u.v4) != 0)
			continue;
		r->dst.family = AF_INET;
		r->kind = "nat64";
		r->name = n->name;
		r->tls = &cfg->tls_default;
		if (!nat_acl_match(&n->clients, client))
			return ROUTE_CLIENT;
		/* "This host" and "this link" (0/8, 127/8, 169.254/16,
		 * broadcast) would reach the gateway host itself, where a
		 * local MTA may trust loopback, and a group is no host:
		 * never, under any prefix (nat/scope.h). */
		if ((r->why = nat_scope_dest_refused(&r->dst)) != NULL)
			return ROUTE_NOT_HOST;
		/* RFC 6052 §3.1: the well-known prefix must not carry
		 * non-global IPv4 addresses, unless the operator says so. */
		if (n->wkp && !nat_scope_v4_global(&r->dst.u.v4) &&
		    !nat_acl_match(&n->dests, &r->dst)) {
			r->why = nat_scope_v4_reason(&r->dst.u.v4);
			return ROUTE_NONGLOBAL;
		}
		return ROUTE_OK;
	}
	return ROUTE_NO_MAPPING;
}

/*
 * The upstream source: the partner of the client's own address when it
 * has a pair (so the server sees one stable address per client that it
 * can reverse-resolve), else the configured source of that family, else
 * the kernel's choice (family 0).  Returns that pair's HELO name, or NULL
 * for the gateway FQDN.
 */
static const char *
source_for(const struct gw_config *cfg, const struct nat_addr *client,
    int family, struct nat_addr *src)
{
	const struct nat_pair *p = NULL;

	memset(src, 0, sizeof(*src));
	if (cfg->source_pairing)
		p = client->family == AF_INET
		        ? nat_pairs_by_v4(&cfg->pairs, &client->u.v4)
		        : nat_pairs_by_v6(&cfg->pairs, &client->u.v6);
	if (p != NULL && family != client->family) {
		src->family = family;
		if (family == AF_INET)
			src->u.v4 = p->v4;
		else
			src->u.v6 = p->v6;
		return cfg->pair_opt[p->user].helo_name;
	}
	*src = family == AF_INET ? cfg->source4 : cfg->source6;
	return NULL;
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
	s->cfd = cfd;
	s->sfd = -1;
	gw_tls_leg_init(&s->cl, cfd);
	gw_tls_leg_init(&s->sl, -1);
	s->client = *client;
	s->counted = gw_tally_add(&ctx->clients, client, 0) == 0;
	s->start = s->last = ev_now(ctx->loop);
	s->pol = s->cfg->pol;
	smtpfix_stream_init(&s->fix, &s->pol);
	TAILQ_INSERT_TAIL(&ctx->sessions, s, entry);
	ctx->nsessions++;
	gw_metrics_open(ctx->nsessions);
	ev_io_init(&s->crd, client_read_cb, cfd, EV_READ);
	ev_io_init(&s->cwr, client_write_cb, cfd, EV_WRITE);
	ev_timer_init(&s->timer, timer_cb, 0., 1.);
	s->crd.data = s->cwr.data = s->timer.data = s;
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
	socklen_t sl = addr_to_sa(src, 0, &ss);
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

static void
upstream_connect(struct gw_session *s, const struct nat_addr *dst,
    const struct nat_addr *src)
{
	struct sockaddr_storage ds, ls;
	socklen_t dl, ll = sizeof(ls);
	int on = 1, fd;

	dl = addr_to_sa(dst, s->cfg->upstream_port, &ds);
	s->up_t0 = ev_time();
	fd = socket(dst->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		connect_failed(s, errno);
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
	s->sfd = fd;
	gw_tls_leg_init(&s->sl, fd);
	ev_io_init(&s->srd, server_read_cb, fd, EV_READ);
	ev_io_init(&s->swr, server_write_cb, fd, EV_WRITE);
	s->srd.data = s->swr.data = s;
	s->connecting = 1;
	if (connect(fd, (struct sockaddr *)&ds, dl) != 0 &&
	    errno != EINPROGRESS) {
		int e = errno;

		upstream_close(s, 0);
		connect_failed(s, e);
		return;
	}
	/* Our own end, to recognise it if it ever comes back to us. */
	if (getsockname(fd, (struct sockaddr *)&ls, &ll) == 0) {
		sa_to_addr(&ls, &s->up_local, &s->up_port);
		s->up_counted =
		    gw_tally_add(&s->ctx->ups, &s->up_local, s->up_port) == 0;
		s->up_slot = gw_uptable_add(&s->up_local, s->up_port);
	}
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
	struct route r;
	const char *helo;
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
	switch (route_find(cfg, &local, &client, &r)) {
	case ROUTE_OK:
		break;
	case ROUTE_NO_MAPPING:
		refusing(s, cs, lsb, "no_pair", "554 5.4.4",
		    "no route: this "
		    "address stands for no server");
		return;
	case ROUTE_CLIENT:
		refusing(s, cs, lsb, "client_not_allowed", "554 5.7.1",
		    "relaying denied: your address may not use this gateway");
		return;
	case ROUTE_NONGLOBAL:
		gw_log(LOG_INFO,
		    "session=%08x event=refuse_detail "
		    "destination_scope=%s",
		    s->id, r.why != NULL ? r.why : "?");
		refusing(s, cs, lsb, "nonglobal_destination", "554 5.4.4",
		    "no route: a non-global IPv4 address is not reachable "
		    "through the well-known prefix (RFC 6052 section 3.1)");
		return;
	case ROUTE_NOT_HOST:
		(void)nat_addr_fmt(&r.dst, ssb, sizeof(ssb));
		gw_log(LOG_INFO,
		    "session=%08x event=refuse_detail dest=%s "
		    "destination_scope=%s",
		    s->id, ssb, r.why != NULL ? r.why : "?");
		refusing(s, cs, lsb, "destination_not_host", "554 5.4.4",
		    "no route: the destination is the gateway host, its "
		    "link or no single host");
		return;
	}
	/* RFC 3463 X.4.6: the destination is our own listener. */
	if (gw_selfdst(cfg, &r.dst, cfg->upstream_port)) {
		refusing(s, cs, lsb, "loop", "554 5.4.6",
		    "routing loop: the gateway reached itself");
		return;
	}
	if (r.bare >= 0)
		s->pol.bare = (enum smtpfix_bare)r.bare;
	helo = source_for(cfg, &client, r.dst.family, &src);
	if (helo != NULL) {
		s->pol.fqdn = helo;
		s->pol.fqdn_len = strlen(helo);
	}
	addr_str(&r.dst, cfg->upstream_port, dsb, sizeof(dsb));
	(void)snprintf(s->up_name, sizeof(s->up_name), "%s", dsb);
	/* The pair's STARTTLS policy (terminate needs its contexts). */
	s->tls = r.tls;
	if (s->tls != NULL &&
	    (s->tls->pol.mode != SMTPFIX_TLS_TERMINATE || cfg->tls != NULL))
		smtpfix_stream_set_tls(&s->fix, &s->tls->pol);
	else
		s->tls = NULL;
	/* RFC 7435 §1: a server whose TLS failed lately gets clear text at
	 * once (the policy decides whether that applies). */
	if (s->tls != NULL &&
	    smtpfix_tlsmemo_known(&ctx->tls_failed, s->up_name,
	        strlen(s->up_name), (uint64_t)ev_now(ctx->loop)))
		smtpfix_stream_set_upstream_clear(&s->fix);
	if (src.family != 0)
		(void)nat_addr_fmt(&src, ssb, sizeof(ssb));
	else
		(void)snprintf(ssb, sizeof(ssb), "auto");
	gw_log(LOG_INFO,
	    "session=%08x event=open client=%s local=%s dest=%s "
	    "via=%s:%s source=%s helo_name=%s tls=%s",
	    s->id, cs, lsb, dsb, r.kind, r.name, ssb, s->pol.fqdn,
	    s->tls != NULL ? smtpfix_tlspolicy_mode_name(
	                         smtpfix_tlspolicy_mode(&s->tls->pol))
	                   : "passthrough");
	gw_metrics_count(GW_M_SESSIONS_OPENED, 1);
	s->up_dst = r.dst;
	s->up_src = src;
	upstream_connect(s, &r.dst, &src);
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
}
