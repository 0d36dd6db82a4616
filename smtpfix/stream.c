/*
 * smtpfix/stream.c: the SMTP session state machine of the gateway, both
 * directions (see stream.h for the model).  Pure: no I/O, no allocation,
 * no clock, no globals other than constant tables.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "smtpfix/helo.h"
#include "smtpfix/chars.h"
#include "smtpfix/ehlo.h"
#include "smtpfix/identity.h"
#include "smtpfix/line.h"
#include "smtpfix/path.h"
#include "smtpfix/replay.h"
#include "smtpfix/stream.h"
#include "smtpfix/tlspolicy.h"

/* struct smtpfix_stream keeps queue indices and lengths in 16 bits. */
_Static_assert(SMTPFIX_QUEUE_LEN <= UINT16_MAX, "queue index width");

/* What an entry of the reply queue waits for (struct smtpfix_pending). */
enum smtpfix_kind {
	KIND_NONE = 0,
	KIND_GREETING,
	KIND_EHLO,
	KIND_HELO,
	KIND_DATA,
	KIND_DATA_END,
	KIND_BDAT, /* unused: BDAT is answered locally */
	KIND_STARTTLS,
	KIND_AUTH,
	KIND_QUIT,
	KIND_OTHER,
	KIND_LOCAL,
	KIND_EHLO_PROBE, /* the gateway's own EHLO: its reply is not
	                    relayed, only its STARTTLS offer noted */
	KIND_REGREET,    /* the greeting of a new clear-text connection
	                    after a failed upstream handshake: not relayed */
	KIND_XC_EHLO,    /* the gateway's EHLO before XCLIENT: its reply
	                    gives the offer, and is not relayed */
	KIND_XCLIENT,    /* the gateway's XCLIENT: its 220 is not relayed */
	KIND_REPLAY,     /* a kept command sent again on the IPv4 leg
	                    (smtpfix/replay.h): not relayed; local holds the
	                    first digit of the reply it needs */
	KIND_FB_VERB,    /* our IPV6-IPV4-FALLBACK (draft-martin §3.1): not
	                    relayed */
};

/* Where XCLIENT stands on the current upstream transport
 * (struct smtpfix_stream.xc_phase). */
enum smtpfix_xc_phase {
	XC_OFF = 0,
	XC_DUE,   /* before the next command that goes upstream */
	XC_PROBE, /* our EHLO sent, its reply awaited */
	XC_READY, /* offer known: XCLIENT goes next */
	XC_SENT,  /* XCLIENT sent, its reply awaited */
	XC_DONE,  /* nothing more on this transport */
};

/* The gateway's own replies; struct smtpfix_pending.local indexes this. */
enum smtpfix_local {
	LOCAL_NONE = 0,
	LOCAL_BAD_LINE,
	LOCAL_TOO_LONG,
	LOCAL_BDAT,
	LOCAL_BDAT_SYNTAX,
	LOCAL_SMUGGLE,
	LOCAL_ROUTE,
	LOCAL_SCOPED_MAIL,
	LOCAL_SCOPED_RCPT,
	LOCAL_TLS_READY, /* our 220 to STARTTLS: ACT_TLS_CLIENT */
	LOCAL_TLS_REPLY, /* the policy's answer (s->tls_code, s->tls_text) */
	LOCAL_SYNC,      /* client did not wait: emitted with ACT_CLOSE */
	LOCAL_PREGREET,
	LOCAL_NOT_OFFERED,
	LOCAL_UNRECOGNIZED,
	LOCAL_IDENTITY, /* identity required, not accepted: close */
	LOCAL_OTHER_SERVER,
};

/* Route mode: a RCPT of another domain waits for the gateway's verdict
 * (stream.rcheck). */
enum smtpfix_rcheck {
	RCHECK_NONE = 0,
	RCHECK_ASKED, /* ACT_ROUTE_CHECK returned */
	RCHECK_SAME,  /* the same server: relay it */
	RCHECK_OTHER, /* another server: 452 4.5.3 */
};

/* Commands whose reply the client must wait for (stream.sync). */
enum smtpfix_sync {
	SYNC_NONE = 0,
	SYNC_DATA,
	SYNC_STARTTLS,
	SYNC_AUTH,
};

static const char *const sync_names[] = {
    [SYNC_NONE] = "none",
    [SYNC_DATA] = "data",
    [SYNC_STARTTLS] = "starttls",
    [SYNC_AUTH] = "auth",
};

/* Handshakes of the gateway's own (struct smtpfix_stream.tls_phase). */
enum smtpfix_tls_phase {
	TLSP_NONE = 0,
	TLSP_UP,     /* ACT_TLS_UPSTREAM returned, result not yet in */
	TLSP_CLIENT, /* ACT_TLS_CLIENT returned, result not yet in */
};

struct smtpfix_local_reply {
	const char *code_enh;
	const char *text;
	int fatal; /* emitted with ACT_CLOSE */
};

static const struct smtpfix_local_reply local_replies[] = {
    [LOCAL_NONE] = {"451 4.3.0", "internal error", 1},
    /* RFC 5321 §2.3.8: CR and LF only as the CRLF pair. */
    [LOCAL_BAD_LINE] = {"500 5.5.2", "bare CR, LF or NUL in command", 0},
    /* RFC 5321 §4.5.3.1.4, §4.2.2: 500 for a line too long. */
    [LOCAL_TOO_LONG] = {"500 5.5.2", "line too long", 0},
    /* RFC 3030 §2: BDAT only after CHUNKING was offered, and we strip
     * CHUNKING from every EHLO reply. */
    [LOCAL_BDAT] = {"502 5.5.1", "BDAT not offered (CHUNKING not advertised)",
        0},
    /* A chunk we cannot size cannot be skipped: framing is lost. */
    [LOCAL_BDAT_SYNTAX] = {"501 5.5.4", "bad BDAT syntax, closing", 1},
    /* RFC 5321 §2.3.8, §4.1.1.4: "SMTP smuggling" hides a second
     * message behind a non-CRLF end of data. */
    [LOCAL_SMUGGLE] = {"554 5.6.0",
        "message refused: bare CR, LF or NUL in message data", 1},
    /* RFC 3974 §7 (and RFC 5321 §4.1.2: source routes are obsolete):
     * a route-addr may cross scope zones. */
    [LOCAL_ROUTE] = {"553 5.1.0",
        "source routes are not accepted (RFC 3974 section 7)", 0},
    /* RFC 3974 §6: a scoped or zoned literal names a different host on
     * each side of the gateway.  RFC 3463: X.1.8 bad sender's system
     * address, X.1.2 bad destination system address. */
    [LOCAL_SCOPED_MAIL] = {"553 5.1.8",
        "scoped address literals are not accepted (RFC 3974 section 6)", 0},
    [LOCAL_SCOPED_RCPT] = {"553 5.1.2",
        "scoped address literals are not accepted (RFC 3974 section 6)", 0},
    /* RFC 3207 §4: "220 Ready to start TLS". */
    [LOCAL_TLS_READY] = {"220 2.0.0", "Ready to start TLS", 0},
    /* Replaced by s->tls_code and s->tls_text when emitted. */
    [LOCAL_TLS_REPLY] = {"454 4.7.0", "TLS not available", 0},
    /* RFC 2920 §3.1: the client sent on past a command that ends a
     * pipelined group; the words hardened servers use. */
    [LOCAL_SYNC] = {"554 5.5.0", "Error: SMTP protocol synchronization", 1},
    /* RFC 5321 §3.1, §4.3.1: the server speaks first; a client that
     * talks before the greeting is not an SMTP client (a proxy header,
     * a script that does not wait).  Refused as postscreen(8) does. */
    [LOCAL_PREGREET] = {"554 5.5.1",
        "protocol error: client sent data before the greeting", 1},
    /* RFC 5321 §4.2.4: 502 for a known command that is not
     * implemented here (the gateway never offered its extension). */
    [LOCAL_NOT_OFFERED] = {"502 5.5.1", "command not implemented", 0},
    /* RFC 5321 §4.2.4: 500 for a command not recognized. */
    [LOCAL_UNRECOGNIZED] = {"500 5.5.1", "command unrecognized", 0},
    /* RFC 3463 X.7.0: other security status; a 4xx, so that the sender
     * keeps the message while the server's trust is put right. */
    [LOCAL_IDENTITY] = {"421 4.7.0",
        "the server did not accept the client's identity, try again later", 1},
    /* RFC 5321 §3.3: one transaction, one server; RFC 5321 §4.5.3.1.10
     * lets the client send a 452'd recipient again later. */
    [LOCAL_OTHER_SERVER] = {"452 4.5.3",
        "that domain goes to another server: send it again in a new "
        "transaction",
        0},
};

#define LOCAL_COUNT (sizeof(local_replies) / sizeof(local_replies[0]))

/* Command verbs named in step.verb; the index is enum smtpfix_verb. */
enum smtpfix_verb {
	VERB_HELO = 0,
	VERB_EHLO,
	VERB_MAIL,
	VERB_RCPT,
	VERB_DATA,
	VERB_BDAT,
	VERB_RSET,
	VERB_NOOP,
	VERB_QUIT,
	VERB_VRFY,
	VERB_EXPN,
	VERB_HELP,
	VERB_STARTTLS,
	VERB_AUTH,
	VERB_COUNT,
	VERB_UNKNOWN = VERB_COUNT,
};

static const char *const verbs[VERB_COUNT] = {
    [VERB_HELO] = "HELO",
    [VERB_EHLO] = "EHLO",
    [VERB_MAIL] = "MAIL",
    [VERB_RCPT] = "RCPT",
    [VERB_DATA] = "DATA",
    [VERB_BDAT] = "BDAT",
    [VERB_RSET] = "RSET",
    [VERB_NOOP] = "NOOP",
    [VERB_QUIT] = "QUIT",
    [VERB_VRFY] = "VRFY",
    [VERB_EXPN] = "EXPN",
    [VERB_HELP] = "HELP",
    [VERB_STARTTLS] = "STARTTLS",
    [VERB_AUTH] = "AUTH",
};

/* DATA scanner states (struct smtpfix_stream.dstate). */
enum smtpfix_dstate {
	DS_LINE = 0, /* inside a line */
	DS_BOL,      /* just after a CRLF */
	DS_DOT,      /* after CRLF "." */
	DS_NEW,      /* bare_line_endings inline: after a CRLF of ours that
	                split the client's line; a "." here is text */
};

/* Clears the result fields of a step, not its emit space: zeroing 4 KiB
 * at every step would double the memory traffic of DATA. */
static void
step_reset(struct smtpfix_step *out)
{
	out->act = SMTPFIX_ACT_NONE;
	out->consumed = 0;
	out->emit = NULL;
	out->emit_len = 0;
	out->event = SMTPFIX_EV_NONE;
	out->helo_in = out->helo_out = NULL;
	out->helo_in_len = out->helo_out_len = 0;
	out->secret = 0;
	out->verb = NULL;
	out->detail = NULL;
}

static size_t
clamp(size_t v, size_t lo, size_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

static size_t
cmd_cap(const struct smtpfix_stream *s)
{
	return clamp(s->pol->cmd_max, SMTPFIX_CMD_MIN, SMTPFIX_CMD_MAX_CAP);
}

static size_t
reply_cap(const struct smtpfix_stream *s)
{
	return clamp(s->pol->reply_max, SMTPFIX_REPLY_MIN, SMTPFIX_CMD_MAX_CAP);
}

static struct smtpfix_pending *
q_head(struct smtpfix_stream *s)
{
	return s->qlen > 0 ? &s->q[s->qhead] : NULL;
}

static void
q_pop(struct smtpfix_stream *s)
{
	if (s->qlen == 0)
		return;
	s->qhead = (s->qhead + 1) % SMTPFIX_QUEUE_LEN;
	s->qlen--;
}

/* Callers check for room first (a command is parsed only when the queue
 * has room, and each parsed line pushes at most one entry). */
static void
q_push_raw(
    struct smtpfix_stream *s, enum smtpfix_kind kind, enum smtpfix_local local)
{
	struct smtpfix_pending *p;

	if (s->qlen >= SMTPFIX_QUEUE_LEN)
		return;
	p = &s->q[(s->qhead + s->qlen) % SMTPFIX_QUEUE_LEN];
	p->kind = (uint8_t)kind;
	p->local = (uint8_t)local;
	s->qlen++;
}

/* The record of smtpfix/replay.h mirrors the queue: the class of each
 * kind, or RC_COUNT for what the record cannot replay. */
static enum smtpfix_replay_class
rec_class(enum smtpfix_kind kind)
{
	switch (kind) {
	case KIND_GREETING:
		return SMTPFIX_RC_GREETING;
	case KIND_EHLO:
	case KIND_HELO:
		return SMTPFIX_RC_HELO;
	case KIND_DATA:
		return SMTPFIX_RC_DATA;
	case KIND_DATA_END:
		return SMTPFIX_RC_DATA_END;
	case KIND_OTHER:
	case KIND_QUIT:
		return SMTPFIX_RC_OTHER;
	case KIND_LOCAL:
		return SMTPFIX_RC_LOCAL;
	case KIND_EHLO_PROBE:
	case KIND_FB_VERB:
		return SMTPFIX_RC_OWN;
	default: /* STARTTLS, AUTH, REGREET: not replayable */
		return SMTPFIX_RC_COUNT;
	}
}

/* Why a kind that cannot be replayed ends the record: the word the
 * fallback's log line gives. */
static const char *
rec_break_reason(enum smtpfix_kind kind)
{
	switch (kind) {
	case KIND_AUTH:
		return "auth";
	case KIND_XC_EHLO:
	case KIND_XCLIENT:
		return "xclient";
	case KIND_REGREET:
		return "tls_fallback";
	default:
		return "starttls_upstream";
	}
}

static void
q_push(
    struct smtpfix_stream *s, enum smtpfix_kind kind, enum smtpfix_local local)
{
	enum smtpfix_replay_class c;

	if (s->qlen >= SMTPFIX_QUEUE_LEN)
		return;
	q_push_raw(s, kind, local);
	if (s->rp == NULL)
		return;
	if ((c = rec_class(kind)) == SMTPFIX_RC_COUNT) {
		smtpfix_replay_break(s->rp, rec_break_reason(kind));
		return;
	}
	smtpfix_replay_push(s->rp, c, (uint8_t)kind, (uint8_t)local);
	if (kind != KIND_LOCAL)
		s->rec_pushed = 1;
}

/* The reply to the queue head was consumed (code 0: one of ours). */
static void
rec_pop(struct smtpfix_stream *s, unsigned code)
{
	if (s->rp != NULL)
		(void)smtpfix_replay_pop(s->rp, code);
}

static void
q_local(struct smtpfix_stream *s, enum smtpfix_local local)
{
	q_push(s, KIND_LOCAL, local);
}

/* RFC 2920 §3.1: the client is held until the reply to a command that
 * ends a pipelined group; whatever it sends meanwhile is early. */
static void
hold_sync(struct smtpfix_stream *s, enum smtpfix_sync kind, int ir)
{
	s->hold = 1;
	s->sync = (uint8_t)kind;
	s->sync_ir = (uint8_t)(ir != 0);
	s->early = 0;
}

/* The reply the client waited for is out: it may talk again. */
static void
release(struct smtpfix_stream *s)
{
	s->hold = 0;
	s->sync = SYNC_NONE;
	s->early = 0;
}

/* Side by side STARTTLS: the upstream leg is settled (in TLS, refused and
 * still clear, or reconnected in clear), so the client's commands inside
 * its TLS may go up.  RFC 3207 §4.2: the server forgets what it offered
 * (a new EHLO asks again). */
static void
par_settle(struct smtpfix_stream *s)
{
	s->tls_par = 0;
	s->srv_tls = 0;
	s->srv_known = 0;
}

/* 1 if the reply code (0: a reply of ours) to the held command finds
 * client bytes that were sent before it.  RFC 4954 §4: an AUTH with an
 * initial response may be followed at once if it completes in one round
 * trip, i.e. unless the server asks for more with 334. */
static int
sync_broken(const struct smtpfix_stream *s, unsigned code)
{
	if (s->sync == SYNC_NONE || !s->early)
		return 0;
	return !(s->sync == SYNC_AUTH && s->sync_ir && code != 334);
}

size_t
smtpfix_reply_fmt(char *dst, size_t cap, const char *fqdn, size_t fqdn_len,
    const char *code_enh, const char *text)
{
	size_t clen, tlen, need, off;

	clen = strlen(code_enh);
	tlen = strlen(text);
	need = clen + 1 + fqdn_len + 1 + tlen + 2;
	if (need > cap || need < clen)
		return 0;
	off = 0;
	memcpy(dst + off, code_enh, clen);
	off += clen;
	dst[off++] = ' ';
	memcpy(dst + off, fqdn, fqdn_len);
	off += fqdn_len;
	dst[off++] = ' ';
	memcpy(dst + off, text, tlen);
	off += tlen;
	dst[off++] = '\r';
	dst[off++] = '\n';
	return off;
}

/* Formats a reply of ours as the step's emit; never empty (an absurd
 * FQDN that does not fit is left out rather than the reply). */
static void
emit_local(const struct smtpfix_stream *s, struct smtpfix_step *out,
    const char *code_enh, const char *text)
{
	size_t n;

	n = smtpfix_reply_fmt(out->buf, sizeof(out->buf), s->pol->fqdn,
	    s->pol->fqdn_len, code_enh, text);
	if (n == 0)
		n = smtpfix_reply_fmt(
		    out->buf, sizeof(out->buf), "", 0, code_enh, text);
	out->emit = out->buf;
	out->emit_len = n;
}

void
smtpfix_stream_init(struct smtpfix_stream *s, const struct smtpfix_policy *pol)
{
	memset(s, 0, sizeof(*s));
	s->pol = pol;
	s->cmode = SMTPFIX_C_CMD;
	/* RFC 5321 §4.3.1: the client waits for the greeting. */
	s->hold = 1;
	s->rfirst = 1;
	q_push(s, KIND_GREETING, LOCAL_NONE);
}

void
smtpfix_stream_init_routed(struct smtpfix_stream *s,
    const struct smtpfix_policy *pol, const char *domain, size_t len)
{
	memset(s, 0, sizeof(*s));
	s->pol = pol;
	s->cmode = SMTPFIX_C_CMD;
	s->rfirst = 1;
	s->routed = 1;
	s->rdom = domain;
	s->rdom_len = len;
}

void
smtpfix_stream_route_verdict(struct smtpfix_stream *s, int same)
{
	if (s->rcheck == RCHECK_ASKED)
		s->rcheck = same ? RCHECK_SAME : RCHECK_OTHER;
}

void
smtpfix_stream_set_tls(
    struct smtpfix_stream *s, const struct smtpfix_tlspolicy *tls)
{
	s->tls = tls;
}

void
smtpfix_stream_set_identity(struct smtpfix_stream *s, int mode,
    const struct smtpfix_identity *id, int required)
{
	s->xc_id = NULL;
	s->xc_phase = XC_OFF;
	s->id_proxy = 0;
	switch (mode) {
	case SMTPFIX_ID_XCLIENT:
		if (id == NULL)
			break;
		s->xc_id = id;
		s->xc_required = (uint8_t)(required != 0);
		s->xc_phase = XC_DUE;
		break;
	case SMTPFIX_ID_PROXY_V1:
	case SMTPFIX_ID_PROXY_V2:
		s->id_proxy = 1;
		break;
	default:
		break;
	}
	s->id_known = s->id_proxy;
}

int
smtpfix_stream_xclient_mask(const struct smtpfix_stream *s)
{
	return s->xc_mask;
}

/*
 * A new upstream transport: on a new connection (conn), XCLIENT again
 * before the next command, and the server knows only what a PROXY header
 * told it.  Inside the upstream TLS of the same connection, an XCLIENT
 * the server accepted stands: XCLIENT_README gives its attributes "the
 * entire duration of an SMTP session", and Postfix keeps them across
 * STARTTLS (and offers XCLIENT no more); one that was not accepted is
 * tried again, since a server may offer it inside TLS only.
 */
static void
xc_restart(struct smtpfix_stream *s, int conn)
{
	if (conn)
		s->xc_ok = 0;
	if (s->xc_ok)
		return;
	if (s->xc_id != NULL)
		s->xc_phase = XC_DUE;
	s->id_known = s->id_proxy;
}

/* 1 if the gateway, not the server, answers STARTTLS. */
static int
tls_local(const struct smtpfix_stream *s)
{
	return s->tls != NULL &&
	       smtpfix_tlspolicy_mode(s->tls) != SMTPFIX_TLS_PASSTHROUGH;
}

/*
 * Client to server.
 */

/* Finds the verb of line[0..end): leading blanks skipped, up to the next
 * blank.  Servers split on white space, so this is as wide as they are. */
static enum smtpfix_verb
verb_find(const char *line, size_t end, size_t *vend)
{
	size_t i, v;
	int k;

	for (i = 0; i < end && smtpfix_is_wsp(line[i]); i++)
		continue;
	v = i;
	while (i < end && !smtpfix_is_wsp(line[i]))
		i++;
	*vend = i;
	for (k = 0; k < VERB_COUNT; k++)
		if (smtpfix_word_eq(line + v, i - v, verbs[k]))
			return (enum smtpfix_verb)k;
	return VERB_UNKNOWN;
}

/*
 * RFC 3030 §2: bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ] CR LF,
 * chunk-size = 1*DIGIT, end-marker = "LAST".  p[0..n) is what follows
 * the verb, CRLF excluded.  0 and *size on success, -1 if malformed or
 * over 2^64 - 1.
 */
static int
bdat_parse(const char *p, size_t n, uint64_t *size)
{
	uint64_t v;
	size_t i;
	unsigned d;

	if (n < 2 || p[0] != ' ')
		return -1;
	v = 0;
	for (i = 1; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
		d = (unsigned)(p[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (i == 1)
		return -1;
	if (i != n && !(n - i == 5 && p[i] == ' ' &&
	                  smtpfix_word_eq(p + i + 1, 4, "LAST")))
		return -1;
	*size = v;
	return 0;
}

static void
c2s_helo(struct smtpfix_stream *s, const char *in, size_t used,
    struct smtpfix_step *out)
{
	const struct smtpfix_policy *pol = s->pol;
	struct smtpfix_helo h;
	size_t n;

	out->consumed = used;
	out->act = SMTPFIX_ACT_FORWARD;
	if (smtpfix_helo_parse(in, used, &h) != SMTPFIX_OK) {
		/* Unreachable: verb_find saw HELO or EHLO. */
		q_push(s, KIND_OTHER, LOCAL_NONE);
		return;
	}
	out->event = SMTPFIX_EV_HELO;
	out->verb = h.ehlo ? verbs[VERB_EHLO] : verbs[VERB_HELO];
	out->helo_in = h.arg.p;
	out->helo_in_len = h.arg.len;
	out->helo_out = h.arg.p;
	out->helo_out_len = h.arg.len;
	/* The server knows the client's address (XCLIENT ADDR, a PROXY
	 * header): it judges the client's own name against it. */
	if (s->id_known && smtpfix_identity_helo_ok(h.arg.p, h.arg.len)) {
		q_push(s, h.ehlo ? KIND_EHLO : KIND_HELO, LOCAL_NONE);
		return;
	}
	/* RFC 3974 Appendix A: the server sees the gateway's name, not
	 * the client's (whose address family it cannot reach). */
	if (smtpfix_helo_rewrite(&h, pol->helo, pol->fqdn, pol->fqdn_len,
	        out->buf, sizeof(out->buf), &n) == SMTPFIX_OK &&
	    n > 0) {
		out->act = SMTPFIX_ACT_EMIT;
		out->emit = out->buf;
		out->emit_len = n;
		out->helo_out = pol->fqdn;
		out->helo_out_len = pol->fqdn_len;
	}
	q_push(s, h.ehlo ? KIND_EHLO : KIND_HELO, LOCAL_NONE);
}

/*
 * RFC 3974 §6 and §7: MAIL/RCPT with a source route or a scoped or zoned
 * address literal is answered here and never reaches the server.
 * Returns 1 if it refused the line.
 */
static int
c2s_path(struct smtpfix_stream *s, const char *in, size_t used,
    struct smtpfix_step *out)
{
	struct smtpfix_path path;
	enum smtpfix_path_class c;

	c = smtpfix_path_check(in, used, &path);
	if (c != SMTPFIX_PATH_SOURCE_ROUTE && c != SMTPFIX_PATH_SCOPED_LITERAL)
		return 0; /* the server judges everything else */
	out->act = SMTPFIX_ACT_DISCARD;
	out->event = SMTPFIX_EV_PATH;
	out->detail = smtpfix_path_reason(c);
	q_local(s, c == SMTPFIX_PATH_SOURCE_ROUTE ? LOCAL_ROUTE
	           : path.is_mail                 ? LOCAL_SCOPED_MAIL
	                                          : LOCAL_SCOPED_RCPT);
	return 1;
}

static void
c2s_discard_line(struct smtpfix_stream *s, const char *in, size_t len,
    struct smtpfix_step *out)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (s->dl_cr && in[i] == '\n') {
			/* One reply for the whole line, now that it ended
			 * (RFC 5321 §4.5.3.1.4). */
			out->act = SMTPFIX_ACT_DISCARD;
			out->consumed = i + 1;
			out->event = SMTPFIX_EV_TOO_LONG;
			s->dl_cr = 0;
			s->cmode = SMTPFIX_C_CMD;
			q_local(s, LOCAL_TOO_LONG);
			return;
		}
		s->dl_cr = in[i] == '\r';
	}
	if (len > 0) {
		out->act = SMTPFIX_ACT_DISCARD;
		out->consumed = len;
	}
}

/*
 * RFC 3207 §4 lets a client send STARTTLS before EHLO (and after HELO),
 * when the server's offer is not known yet; the decision depends on it
 * under terminate, so the gateway asks with an EHLO of its own first
 * (its reply is not relayed: the client sent no EHLO).  The STARTTLS line
 * stays unread until that reply is in.  Returns 1 if it sent the EHLO.
 */
static int
c2s_probe(struct smtpfix_stream *s, struct smtpfix_step *out)
{
	const struct smtpfix_policy *pol = s->pol;

	if (s->srv_known || s->tls_client ||
	    smtpfix_tlspolicy_mode(s->tls) != SMTPFIX_TLS_TERMINATE ||
	    pol->fqdn_len + 7 > sizeof(out->buf))
		return 0;
	s->hold = 0; /* the STARTTLS line is read again */
	memcpy(out->buf, "EHLO ", 5);
	memcpy(out->buf + 5, pol->fqdn, pol->fqdn_len);
	memcpy(out->buf + 5 + pol->fqdn_len, "\r\n", 2);
	out->act = SMTPFIX_ACT_EMIT;
	out->consumed = 0;
	out->emit = out->buf;
	out->emit_len = pol->fqdn_len + 7;
	out->verb = NULL;
	out->detail = "ehlo_upstream_first";
	q_push(s, KIND_EHLO_PROBE, LOCAL_NONE);
	return 1;
}

/*
 * STARTTLS under terminate or strip: the line in[0..used) (verb ending at
 * vend) is answered by the gateway or sent upstream on its behalf.  The
 * decision waits until every earlier reply is in, so that the server's
 * EHLO offer is known and ours comes in command order; until then the
 * line stays unread.
 */
static void
c2s_starttls(struct smtpfix_stream *s, const char *in, size_t used, size_t vend,
    struct smtpfix_step *out)
{
	struct smtpfix_tls_state st;
	struct smtpfix_tls_decision d;
	size_t i;

	if (s->qlen > 0) {
		out->act = SMTPFIX_ACT_NONE;
		out->consumed = 0;
		out->verb = NULL;
		return;
	}
	out->event = SMTPFIX_EV_STARTTLS;
	/* RFC 2920 §3.1, RFC 3207 §4.2: STARTTLS ends a pipelined group
	 * and nothing after it counts: hold until it is answered. */
	hold_sync(s, SYNC_STARTTLS, 0);
	for (i = vend; i + 2 < used && smtpfix_is_wsp(in[i]); i++)
		continue;
	if (i + 2 >= used && c2s_probe(s, out))
		return;
	if (i + 2 < used) {
		/* RFC 3207 §4: "501 Syntax error (no parameters allowed)". */
		d.act = SMTPFIX_TLSA_REPLY;
		d.code_enh = "501 5.5.4";
		d.text = "Syntax error (no parameters allowed)";
		d.close = 0;
		d.why = "syntax";
	} else {
		st.server_offered = s->srv_tls;
		st.client_tls = s->tls_client;
		st.server_failed = s->up_clear;
		smtpfix_tlspolicy_starttls(s->tls, &st, &d);
	}
	out->detail = d.why;
	switch (d.act) {
	case SMTPFIX_TLSA_UPSTREAM:
		/* The client's own line goes up: it is a valid STARTTLS. */
		s->tls_ours = 1;
		q_push(s, KIND_STARTTLS, LOCAL_NONE);
		if (smtpfix_tlspolicy_parallel(s->tls)) {
			/* Every upstream outcome leaves the client in TLS:
			 * its 220 need not wait for the server's. */
			s->tls_par = 1;
			s->tls_par_220 = 1;
			out->detail = "upstream_parallel";
		}
		return;
	case SMTPFIX_TLSA_CLIENT_ONLY:
		out->act = SMTPFIX_ACT_DISCARD;
		q_local(s, LOCAL_TLS_READY);
		return;
	case SMTPFIX_TLSA_REPLY:
		out->act = SMTPFIX_ACT_DISCARD;
		s->tls_code = d.code_enh;
		s->tls_text = d.text;
		s->tls_close = (uint8_t)(d.close != 0);
		q_local(s, LOCAL_TLS_REPLY);
		return;
	case SMTPFIX_TLSA_FORWARD:
	case SMTPFIX_TLSA_RELAY:
	default:
		/* Passthrough: the server's 220 makes the session opaque. */
		q_push(s, KIND_STARTTLS, LOCAL_NONE);
		return;
	}
}

/* RFC 4954 §4: "AUTH" SP sasl-mech [SP initial-response]; 1 if
 * line[0..end) (the verb ends at vend) has the initial response. */
static int
auth_ir(const char *line, size_t end, size_t vend)
{
	size_t i = vend;

	while (i < end && smtpfix_is_wsp(line[i]))
		i++;
	while (i < end && !smtpfix_is_wsp(line[i]))
		i++;
	while (i < end && smtpfix_is_wsp(line[i]))
		i++;
	return i < end;
}

/* 1 while the server's greeting has not been relayed in full. */
static int
greeting_pending(struct smtpfix_stream *s)
{
	const struct smtpfix_pending *p = q_head(s);

	return p != NULL && p->kind == KIND_GREETING;
}

/*
 * RFC 5321 §3.1, §4.3.1: the client spoke before the greeting.  Nothing
 * it sent is relayed (not even after the greeting: a PROXY header or a
 * pipelined script would reach the server as commands); the upstream
 * connection is reset and the client gets 554 and a close.
 */
static void
c2s_pregreet(struct smtpfix_stream *s, struct smtpfix_step *out)
{
	out->act = SMTPFIX_ACT_ABORT;
	out->consumed = 0;
	out->event = SMTPFIX_EV_PREGREET;
	out->detail = "client_spoke_first";
	s->cmode = SMTPFIX_C_DEAD;
	s->qhead = s->qlen = 0;
	if (s->rp != NULL)
		smtpfix_replay_break(s->rp, "pregreet");
	q_local(s, LOCAL_PREGREET);
}

/*
 * A verb the gateway does not relay (smtpfix/ehlo.h): answered here, so
 * that it never reaches the server.  Returns 1 if it answered.
 */
static int
c2s_verb_refused(struct smtpfix_stream *s, const char *in, size_t used,
    struct smtpfix_step *out)
{
	const char *name;

	switch (smtpfix_ehlo_verb(in, used - 2, &name)) {
	case SMTPFIX_VERB_RELAY:
		return 0;
	case SMTPFIX_VERB_NOT_OFFERED:
		out->detail = "not_offered";
		q_local(s, LOCAL_NOT_OFFERED);
		break;
	case SMTPFIX_VERB_UNRECOGNIZED:
	default:
		out->detail = "unrecognized";
		q_local(s, LOCAL_UNRECOGNIZED);
		break;
	}
	out->act = SMTPFIX_ACT_DISCARD;
	out->event = SMTPFIX_EV_VERB;
	out->verb = name;
	return 1;
}

/* 1 if the command line in[0..used), verb v, goes upstream (so that
 * XCLIENT must precede it): not QUIT, and not a verb answered here. */
static int
xc_relayed(const struct smtpfix_stream *s, enum smtpfix_verb v, const char *in,
    size_t used)
{
	const char *name;

	switch (v) {
	case VERB_QUIT:
	case VERB_BDAT:
		return 0;
	case VERB_STARTTLS:
		return !tls_local(s) ||
		       smtpfix_tlspolicy_mode(s->tls) == SMTPFIX_TLS_TERMINATE;
	case VERB_UNKNOWN:
		return smtpfix_ehlo_verb(in, used - 2, &name) ==
		       SMTPFIX_VERB_RELAY;
	default:
		return 1;
	}
}

/*
 * XCLIENT (Postfix's XCLIENT_README) before the command in[0..used),
 * verb v: the gateway's EHLO (the offer), then XCLIENT with the offered
 * attributes, each once every earlier reply is in; the command stays
 * unread meanwhile.  Returns 1 if it set *out (an EMIT, or NONE to wait),
 * 0 when the command goes on as usual.
 */
static int
c2s_xclient(struct smtpfix_stream *s, const char *in, size_t used,
    enum smtpfix_verb v, struct smtpfix_step *out)
{
	const struct smtpfix_policy *pol = s->pol;
	struct smtpfix_identity id;
	struct smtpfix_helo h;
	size_t n;

	if (s->xc_id == NULL || s->xc_phase == XC_DONE ||
	    s->xc_phase == XC_OFF || !xc_relayed(s, v, in, used))
		return 0;
	out->act = SMTPFIX_ACT_NONE;
	out->consumed = 0;
	if (s->qlen > 0)
		return 1; /* in command order: earlier replies first */
	switch (s->xc_phase) {
	case XC_DUE:
		if (pol->fqdn_len + 7 > sizeof(out->buf))
			break;
		memcpy(out->buf, "EHLO ", 5);
		memcpy(out->buf + 5, pol->fqdn, pol->fqdn_len);
		memcpy(out->buf + 5 + pol->fqdn_len, "\r\n", 2);
		out->emit_len = pol->fqdn_len + 7;
		out->detail = "ehlo_upstream_first";
		s->xc_phase = XC_PROBE;
		s->xc_mask = 0;
		q_push(s, KIND_XC_EHLO, LOCAL_NONE);
		goto emit;
	case XC_READY:
		/* The client's own HELO argument and protocol, when this
		 * command is HELO or EHLO; else "[UNAVAILABLE]" and SMTP. */
		id = *s->xc_id;
		id.helo = NULL;
		id.helo_len = 0;
		id.esmtp = 0;
		if ((v == VERB_HELO || v == VERB_EHLO) &&
		    smtpfix_helo_parse(in, used, &h) == SMTPFIX_OK) {
			id.helo = h.arg.p;
			id.helo_len = h.arg.len;
			id.esmtp = h.ehlo;
		}
		n = smtpfix_xclient_build(
		    &id, s->xc_mask, out->buf, sizeof(out->buf));
		if (n == 0)
			break;
		out->emit_len = n;
		out->detail = "sent";
		s->xc_phase = XC_SENT;
		q_push(s, KIND_XCLIENT, LOCAL_NONE);
		goto emit;
	default:
		break;
	}
	/* Unreachable (a phase that waits has a reply queued): go on. */
	s->xc_phase = XC_DONE;
	return 0;

emit:
	out->act = SMTPFIX_ACT_EMIT;
	out->emit = out->buf;
	out->event = SMTPFIX_EV_IDENTITY;
	return 1;
}

/* 1 if domain a[0..alen) and b[0..blen) are the same name (ASCII case
 * and one trailing dot aside). */
static int
domain_eq(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t i;

	if (alen > 0 && a[alen - 1] == '.')
		alen--;
	if (blen > 0 && b[blen - 1] == '.')
		blen--;
	if (alen != blen)
		return 0;
	for (i = 0; i < alen; i++) {
		unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];

		if (x >= 'A' && x <= 'Z')
			x = (unsigned char)(x + 32);
		if (y >= 'A' && y <= 'Z')
			y = (unsigned char)(y + 32);
		if (x != y)
			return 0;
	}
	return 1;
}

/*
 * Route mode (smtpfix_stream_init_routed): what a complete command line
 * in[0..used) means before it is relayed.  Returns 1 if it set *out.
 */
static int
c2s_routed(struct smtpfix_stream *s, const char *in, size_t used,
    struct smtpfix_step *out)
{
	struct smtpfix_path pa;
	enum smtpfix_verb v;
	size_t vend;

	v = verb_find(in, used - 2, &vend);
	switch (v) {
	case VERB_MAIL:
	case VERB_RSET:
	case VERB_HELO:
	case VERB_EHLO:
	case VERB_STARTTLS:
		/* The transaction is over; the front takes the line once
		 * every reply of this one is in (in order, RFC 2920 §3.1). */
		out->verb = verbs[v];
		if (s->qlen == 0) {
			out->act = SMTPFIX_ACT_FRONT;
			out->consumed = 0;
		}
		return 1;
	case VERB_AUTH:
		out->act = SMTPFIX_ACT_DISCARD;
		out->consumed = used;
		out->event = SMTPFIX_EV_VERB;
		out->verb = verbs[v];
		out->detail = "not_offered";
		out->secret = 1;
		q_local(s, LOCAL_NOT_OFFERED);
		return 1;
	case VERB_RCPT:
		if (smtpfix_path_check(in, used, &pa) !=
		        SMTPFIX_PATH_NOT_PATH &&
		    !pa.is_mail && pa.domain.len > 0 && pa.domain.p[0] != '[' &&
		    !domain_eq(
		        pa.domain.p, pa.domain.len, s->rdom, s->rdom_len)) {
			/* Another domain may still have the same server: the
			 * gateway asks its DNS (smtpfix_stream_route_verdict)
			 * while the line waits. */
			if (s->rcheck == RCHECK_NONE) {
				s->rcheck = RCHECK_ASKED;
				out->act = SMTPFIX_ACT_ROUTE_CHECK;
				out->consumed = 0;
				out->verb = verbs[v];
				return 1;
			}
			if (s->rcheck == RCHECK_ASKED)
				return 1; /* NONE: the answer is not in */
			if (s->rcheck == RCHECK_SAME) {
				s->rcheck = RCHECK_NONE;
				return 0;
			}
			s->rcheck = RCHECK_NONE;
		} else if (pa.domain.len > 0 && pa.domain.p[0] != '[') {
			return 0;
		}
		out->act = SMTPFIX_ACT_DISCARD;
		out->consumed = used;
		out->event = SMTPFIX_EV_OTHER_SERVER;
		out->verb = verbs[v];
		q_local(s, LOCAL_OTHER_SERVER);
		return 1;
	default:
		return 0;
	}
}

static void
c2s_cmd(struct smtpfix_stream *s, const char *in, size_t len,
    struct smtpfix_step *out)
{
	enum smtpfix_verb v;
	uint64_t size;
	size_t used, vend;

	if (len > 0 && greeting_pending(s)) {
		c2s_pregreet(s, out);
		return;
	}
	if (s->hold || len == 0)
		return;
	/* RFC 2920 §3.1: the client may send a whole group before any
	 * reply; it waits here (backpressure) until replies drain.  Told
	 * once per session, not at every refill. */
	if (s->qlen >= SMTPFIX_QUEUE_LEN) {
		if (!s->qfull_told) {
			s->qfull_told = 1;
			out->event = SMTPFIX_EV_QUEUE_FULL;
		}
		return;
	}
	switch (smtpfix_line_find(in, len, cmd_cap(s), &used)) {
	case SMTPFIX_OK:
		break;
	case SMTPFIX_TOOLONG:
		/* Never truncate and relay: drop the whole line. */
		s->cmode = SMTPFIX_C_DISCARD_LINE;
		s->dl_cr = 0;
		c2s_discard_line(s, in, len, out);
		return;
	case SMTPFIX_BADCHAR:
		/* RFC 5321 §2.3.8: a server may read a bare LF as a line
		 * end and see two commands where we see one. */
		out->act = SMTPFIX_ACT_DISCARD;
		out->consumed = used;
		out->event = SMTPFIX_EV_BAD_LINE;
		q_local(s, LOCAL_BAD_LINE);
		return;
	case SMTPFIX_PARTIAL:
	default:
		return;
	}
	if (s->routed && !s->secret_next && c2s_routed(s, in, used, out))
		return;
	out->act = SMTPFIX_ACT_FORWARD;
	out->consumed = used;

	if (s->secret_next) {
		/* RFC 4954 §4: the line after a 334 is a SASL response (or
		 * "*"), not a command; the next reply says what follows. */
		s->secret_next = 0;
		out->secret = 1;
		hold_sync(s, SYNC_AUTH, 0);
		q_push(s, KIND_AUTH, LOCAL_NONE);
		return;
	}

	v = verb_find(in, used - 2, &vend);
	if (c2s_xclient(s, in, used, v, out))
		return;
	out->verb = v == VERB_UNKNOWN ? NULL : verbs[v];
	switch (v) {
	case VERB_HELO:
	case VERB_EHLO:
		c2s_helo(s, in, used, out);
		break;
	case VERB_DATA:
		/* RFC 5321 §4.1.1.4: data follows only after a 354; until
		 * the reply nothing more is parsed. */
		hold_sync(s, SYNC_DATA, 0);
		q_push(s, KIND_DATA, LOCAL_NONE);
		break;
	case VERB_BDAT:
		out->act = SMTPFIX_ACT_DISCARD;
		out->event = SMTPFIX_EV_BDAT;
		out->detail = "bdat_not_offered";
		if (bdat_parse(in + vend, used - 2 - vend, &size) != 0) {
			out->detail = "bdat_syntax";
			s->cmode = SMTPFIX_C_DEAD;
			q_local(s, LOCAL_BDAT_SYNTAX);
			break;
		}
		q_local(s, LOCAL_BDAT);
		/* RFC 3030 §2: the chunk follows the command at once,
		 * whatever the reply; skip exactly its octets. */
		if (size > 0) {
			s->bdat_left = size;
			s->cmode = SMTPFIX_C_BDAT_DISCARD;
		}
		break;
	case VERB_STARTTLS:
		if (tls_local(s)) {
			c2s_starttls(s, in, used, vend, out);
			break;
		}
		/* RFC 2920 §3.1: STARTTLS ends a pipelined group; RFC 3207
		 * §4.2: nothing sent before the handshake counts after it
		 * (CVE-2011-0411).  Wait for the reply. */
		hold_sync(s, SYNC_STARTTLS, 0);
		q_push(s, KIND_STARTTLS, LOCAL_NONE);
		break;
	case VERB_AUTH:
		/* RFC 2920 §3.1: an extension's command ends a pipelined
		 * group; wait for the reply so that a 334 (RFC 4954 §4)
		 * marks the next line as secret. */
		out->secret = 1;
		hold_sync(s, SYNC_AUTH, auth_ir(in, used - 2, vend));
		q_push(s, KIND_AUTH, LOCAL_NONE);
		break;
	case VERB_QUIT:
		q_push(s, KIND_QUIT, LOCAL_NONE);
		break;
	case VERB_MAIL:
	case VERB_RCPT:
		if (s->pol->hygiene && c2s_path(s, in, used, out))
			break;
		q_push(s, KIND_OTHER, LOCAL_NONE);
		break;
	case VERB_UNKNOWN:
		if (c2s_verb_refused(s, in, used, out))
			break;
		q_push(s, KIND_OTHER, LOCAL_NONE);
		break;
	default:
		q_push(s, KIND_OTHER, LOCAL_NONE);
		break;
	}
}

/*
 * The first index from i on whose 8-byte word holds a byte below 14 (any
 * of NUL, LF, CR and a few other controls), or where fewer than eight
 * bytes are left.  The word test is the classic "has a byte less than n":
 * (w - 0x0e0e...) & ~w & 0x8080... is non-zero iff some byte is < 0x0e.
 */
static size_t
skip_plain(const char *in, size_t i, size_t lim)
{
	const uint64_t ones = UINT64_C(0x0101010101010101);
	uint64_t w;

	while (lim - i >= sizeof(w)) {
		memcpy(&w, in + i, sizeof(w));
		if (((w - ones * 0x0e) & ~w & ones * 0x80) != 0)
			break;
		i += sizeof(w);
	}
	return i;
}

#if defined(__SSE2__)
/* Bit k set where byte k of the 64 in v equals the byte of c (written
 * out: a loop here is not unrolled at -O2 and costs a third more). */
static inline uint64_t
eq64(const __m128i *v, __m128i c)
{
	uint64_t m0, m1, m2, m3;

	m0 = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v[0], c));
	m1 = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v[1], c));
	m2 = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v[2], c));
	m3 = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v[3], c));
	return m0 | m1 << 16 | m2 << 32 | m3 << 48;
}
#endif

/*
 * Data as mail is mostly made of: whole 64-byte blocks with no NUL, every
 * CR followed by LF and every LF preceded by CR, no "." starting a line.
 * Such a block changes nothing but the scanner's state at its end (DS_BOL
 * after a final CRLF, else DS_LINE), so it passes in one test of four
 * byte masks instead of a loop over its lines.  Starts at i in state *st
 * (DS_LINE or DS_BOL only: DS_DOT and DS_NEW need the byte loop) and
 * returns where the first block that is not clean begins, or where fewer
 * than 64 bytes are left; the byte loop (c2s_data) then takes over, and
 * decides everything these blocks do not.  A CR as a block's last byte
 * makes it not clean: which CR that is shows only in the next block.
 */
static size_t
skip_clean(const char *in, size_t i, size_t lim, unsigned *st)
{
#if defined(__SSE2__)
	const __m128i vcr = _mm_set1_epi8('\r'), vlf = _mm_set1_epi8('\n'),
	              vnul = _mm_setzero_si128(), vdot = _mm_set1_epi8('.');
	uint64_t cr, lf, nul, dot, bol;
	__m128i v[4];

	while (lim - i >= 64 && (*st == DS_LINE || *st == DS_BOL)) {
		v[0] = _mm_loadu_si128((const __m128i *)(const void *)(in + i));
		v[1] = _mm_loadu_si128(
		    (const __m128i *)(const void *)(in + i + 16));
		v[2] = _mm_loadu_si128(
		    (const __m128i *)(const void *)(in + i + 32));
		v[3] = _mm_loadu_si128(
		    (const __m128i *)(const void *)(in + i + 48));
		cr = eq64(v, vcr);
		lf = eq64(v, vlf);
		nul = eq64(v, vnul);
		dot = eq64(v, vdot);
		/* Where a line starts: after each LF, and at the block's
		 * first byte after a CRLF. */
		bol = lf << 1 | (*st == DS_BOL ? 1 : 0);
		if (nul != 0 || lf != cr << 1 || (cr >> 63) != 0 ||
		    (bol & dot) != 0)
			break;
		*st = (lf >> 63) != 0 ? DS_BOL : DS_LINE;
		i += 64;
	}
#else
	(void)in;
	(void)lim;
	(void)st;
#endif
	return i;
}

/*
 * bare_line_endings inline: in[0], seen in scanner state st, is a bare CR
 * or LF, a NUL, or a "." that starts a line of ours (DS_NEW).  One step
 * makes it text of the client's line; a line it leaves starting with "."
 * is stuffed (RFC 5321 §4.5.2), so that no line of ours is "." alone.
 */
static void
c2s_inline(struct smtpfix_stream *s, const char *in, unsigned st,
    struct smtpfix_step *out)
{
	char *b = out->buf;
	size_t n = 0;

	out->consumed = 1;
	switch (in[0]) {
	case '\r':
	case '\n':
		/* RFC 5321 §2.3.8: to the server, a line break is CRLF.  A
		 * line that is "." so far gets its stuffing dot first. */
		out->event = SMTPFIX_EV_INLINE;
		out->detail = in[0] == '\r' ? "bare_cr" : "bare_lf";
		if (st == DS_DOT)
			b[n++] = '.';
		b[n++] = '\r';
		b[n++] = '\n';
		s->dstate = DS_NEW;
		break;
	case '\0':
		out->event = SMTPFIX_EV_INLINE;
		out->detail = "nul";
		if (st == DS_DOT) {
			b[n++] = '.';
			s->dstate = DS_LINE;
		} else if (st == DS_BOL)
			s->dstate = DS_NEW;
		break;
	default: /* "." at the start of a line of ours */
		b[n++] = '.';
		b[n++] = '.';
		s->dstate = DS_LINE;
		break;
	}
	if (n == 0) {
		out->act = SMTPFIX_ACT_DISCARD;
		return;
	}
	out->act = SMTPFIX_ACT_EMIT;
	out->emit = b;
	out->emit_len = n;
}

static void
c2s_data(struct smtpfix_stream *s, const char *in, size_t len,
    struct smtpfix_step *out)
{
	size_t i, lim, wide;
	unsigned st;
	char c;

	/* FORWARD copies from the input, so a step may take all the caller
	 * offers (it offers no more than its output can hold). */
	lim = len;
	st = s->dstate;
	wide = 0;
	for (i = 0; i < lim; i++) {
		/* Clean 64-byte blocks at once; after a block that is not,
		 * the byte loop walks past it before the next try, so odd
		 * data costs one block test per 64 bytes at most. */
		if (i >= wide && (st == DS_LINE || st == DS_BOL)) {
			i = skip_clean(in, i, lim, &st);
			wide = i + 64;
		}
		/* Inside a line only CR, LF and NUL matter: skip eight bytes
		 * at a time while none of them is below 14. */
		if (st == DS_LINE)
			i = skip_plain(in, i, lim);
		if (i >= lim)
			break;
		c = in[i];
		if (c == '\r') {
			/* Which CR this is shows only with the next byte. */
			if (i + 1 >= lim)
				break;
			if (in[i + 1] != '\n')
				goto bare;
			if (st == DS_DOT) {
				/* RFC 5321 §4.1.1.4: CRLF "." CRLF ends the
				 * data. */
				out->act = SMTPFIX_ACT_FORWARD;
				out->consumed = i + 2;
				out->event = SMTPFIX_EV_DATA_END;
				s->cmode = SMTPFIX_C_CMD;
				s->dstate = DS_LINE;
				s->messages++;
				q_push(s, KIND_DATA_END, LOCAL_NONE);
				return;
			}
			st = DS_BOL;
			i++;
			continue;
		}
		/* RFC 5321 §2.3.8, §4.1.1.4: a bare LF (or NUL) is how one
		 * message hides the end of data from us but not from a
		 * lenient server ("SMTP smuggling"). */
		if (c == '\n' || c == '\0')
			goto bare;
		/* A line of ours the client did not start: its "." is text. */
		if (c == '.' && st == DS_NEW)
			goto bare;
		/* RFC 5321 §4.5.2: a leading "." may be transparency
		 * stuffing; only "." alone on a line ends the data. */
		st = c == '.' && st == DS_BOL ? DS_DOT : DS_LINE;
	}
	s->dstate = st;
	if (i > 0) {
		out->act = SMTPFIX_ACT_FORWARD;
		out->consumed = i;
	}
	return;

bare:
	if (s->pol->bare == SMTPFIX_BARE_INLINE) {
		/* What comes before goes as it is; then the byte alone. */
		if (i > 0) {
			s->dstate = st;
			out->act = SMTPFIX_ACT_FORWARD;
			out->consumed = i;
			return;
		}
		c2s_inline(s, in, st, out);
		return;
	}
	out->act = SMTPFIX_ACT_ABORT;
	out->consumed = 0;
	out->event = SMTPFIX_EV_SMUGGLE;
	s->cmode = SMTPFIX_C_DEAD;
	q_local(s, LOCAL_SMUGGLE);
}

/* 1 while a reply of the server's is awaited. */
static int
q_server_owes(const struct smtpfix_stream *s)
{
	unsigned i;

	for (i = 0; i < s->qlen; i++)
		if (s->q[(s->qhead + i) % SMTPFIX_QUEUE_LEN].kind != KIND_LOCAL)
			return 1;
	return 0;
}

/*
 * draft-martin §3: the replay on the IPv4 leg, one entry of the record a
 * step, each command once the reply to the one before is in (the new
 * server's PIPELINING is not known).  Returns 1 while the replay holds
 * the c2s direction (*out set, maybe to NONE), 0 once it is done.
 */
static int
c2s_replay(struct smtpfix_stream *s, struct smtpfix_step *out)
{
	const struct smtpfix_replay_ent *e;
	const char *line;
	size_t len;
	unsigned guard;

	/* Entries without a line (replies of ours, the greeting) go into
	 * the queue at once; one a step for the others. */
	for (guard = 0; guard <= SMTPFIX_REPLAY_ENTS; guard++) {
		if (!smtpfix_replay_pending(s->rp)) {
			s->fb_active = 0;
			return 0;
		}
		if (q_server_owes(s) || s->qlen >= SMTPFIX_QUEUE_LEN)
			return 1;
		if ((e = smtpfix_replay_next(s->rp, &line, &len)) == NULL)
			return 1;
		switch (e->cls) {
		case SMTPFIX_RC_LOCAL:
			q_push_raw(s, KIND_LOCAL, (enum smtpfix_local)e->local);
			continue;
		case SMTPFIX_RC_GREETING:
			if (e->quiet)
				q_push_raw(
				    s, KIND_REPLAY, (enum smtpfix_local)2);
			else
				q_push_raw(s, KIND_GREETING, LOCAL_NONE);
			continue;
		case SMTPFIX_RC_DATA_END:
			q_push_raw(s, KIND_DATA_END, LOCAL_NONE);
			out->act = SMTPFIX_ACT_REPLAY_DATA;
			return 1;
		default:
			break;
		}
		if (e->quiet)
			q_push_raw(s, KIND_REPLAY,
			    (enum smtpfix_local)(
			        e->cls == SMTPFIX_RC_DATA ? 3 : 2));
		else
			q_push_raw(s, (enum smtpfix_kind)e->tag,
			    (enum smtpfix_local)e->local);
		if (len == 0) /* unreachable: a command has its line */
			continue;
		out->act = SMTPFIX_ACT_EMIT;
		out->emit = line;
		out->emit_len = len;
		return 1;
	}
	return 1;
}

/* draft-martin §3.1: the verb, once the server offered the keyword. */
static int
c2s_fb_verb(struct smtpfix_stream *s, struct smtpfix_step *out)
{
	static const char verb[] = "IPV6-IPV4-FALLBACK\r\n";

	if (!s->fb_verb_due || !s->fb_armed || s->cmode != SMTPFIX_C_CMD ||
	    s->sync != SYNC_NONE || s->qlen >= SMTPFIX_QUEUE_LEN)
		return 0;
	s->fb_verb_due = 0;
	memcpy(out->buf, verb, sizeof(verb) - 1);
	out->act = SMTPFIX_ACT_EMIT;
	out->emit = out->buf;
	out->emit_len = sizeof(verb) - 1;
	out->event = SMTPFIX_EV_FALLBACK_VERB;
	q_push(s, KIND_FB_VERB, LOCAL_NONE);
	return 1;
}

void
smtpfix_c2s_step(struct smtpfix_stream *s, const char *in, size_t len,
    struct smtpfix_step *out)
{
	size_t n;
	int was_cmd;

	step_reset(out);
	/* RFC 2920 §3.1: bytes while held for a reply were sent early. */
	if (s->sync != SYNC_NONE && len > 0)
		s->early = 1;
	if (s->tls_phase != TLSP_NONE || s->cli_hs || s->tls_par)
		return; /* the client's bytes wait for the handshakes */
	/* The client waits while a refusal is read and its replay runs. */
	if (s->fb_swallow || (s->fb_active && c2s_replay(s, out)))
		return;
	if (s->rp != NULL && c2s_fb_verb(s, out))
		return;
	was_cmd = s->cmode == SMTPFIX_C_CMD;
	s->rec_pushed = 0;
	switch ((enum smtpfix_cmode)s->cmode) {
	case SMTPFIX_C_CMD:
		c2s_cmd(s, in, len, out);
		break;
	case SMTPFIX_C_DATA:
		c2s_data(s, in, len, out);
		break;
	case SMTPFIX_C_BDAT_DISCARD:
		if (len == 0)
			break;
		n = (uint64_t)len < s->bdat_left ? len : (size_t)s->bdat_left;
		out->act = SMTPFIX_ACT_DISCARD;
		out->consumed = n;
		s->bdat_left -= n;
		if (s->bdat_left == 0)
			s->cmode = SMTPFIX_C_CMD;
		break;
	case SMTPFIX_C_DISCARD_LINE:
		c2s_discard_line(s, in, len, out);
		break;
	case SMTPFIX_C_OPAQUE:
		if (len == 0)
			break;
		out->act = SMTPFIX_ACT_FORWARD;
		out->consumed = len;
		break;
	case SMTPFIX_C_DEAD:
	default:
		if (len == 0)
			break;
		out->act = SMTPFIX_ACT_DISCARD;
		out->consumed = len;
		break;
	}
	/* What follows a command that now holds the client came with it,
	 * before its reply, whichever direction the caller steps next. */
	if (s->sync != SYNC_NONE && out->consumed < len)
		s->early = 1;
	/* smtpfix/replay.h: the record keeps what went upstream. */
	if (s->rp != NULL && was_cmd && s->rec_pushed) {
		if (out->act == SMTPFIX_ACT_FORWARD)
			smtpfix_replay_line(s->rp, in, out->consumed);
		else if (out->act == SMTPFIX_ACT_EMIT)
			smtpfix_replay_line(s->rp, out->emit, out->emit_len);
	}
	s->rec_pushed = 0;
}

/*
 * Server to client.
 */

/*
 * RFC 5321 §4.2: Reply-line = *( Reply-code "-" [ textstring ] CRLF )
 * Reply-code [ SP textstring ] CRLF.  line[0..used) is a whole line.
 * 0 with *code and *final set, -1 if malformed.
 */
static int
reply_parse(const char *line, size_t used, unsigned *code, int *final)
{
	if (used < 5)
		return -1;
	if (line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
	    line[2] < '0' || line[2] > '9')
		return -1;
	*code = (unsigned)(line[0] - '0') * 100 +
	        (unsigned)(line[1] - '0') * 10 + (unsigned)(line[2] - '0');
	switch (line[3]) {
	case '-':
		*final = 0;
		return 0;
	case ' ':
		*final = 1;
		return 0;
	case '\r':
		*final = 1;
		return used == 5 ? 0 : -1;
	default:
		return -1;
	}
}

/* The EHLO reply the client sees is an allowlist (smtpfix/ehlo.h): what
 * the gateway cannot keep goes, and STARTTLS goes when the gateway
 * answers it itself (RFC 3207 §4: the offer is the gateway's) or strips
 * it.  line[0..used) is a 250 line after the first.  Notes the server's
 * STARTTLS offer. */
static int
ehlo_dropped(struct smtpfix_stream *s, const char *line, size_t used)
{
	size_t n = used >= 6 ? used - 6 : 0, k;

	/* draft-martin §3.1: the server can refuse one message with 456. */
	for (k = 0; k < n && !smtpfix_is_wsp(line[4 + k]); k++)
		continue;
	if (smtpfix_word_eq(line + 4, k, "IPV6-IPV4-FALLBACK"))
		s->fb_offered = 1;
	switch (smtpfix_ehlo_keyword(line + 4, n)) {
	case SMTPFIX_KW_STARTTLS:
		s->srv_tls = 1;
		return s->rdrop_tls;
	case SMTPFIX_KW_KEEP:
		return 0;
	case SMTPFIX_KW_DROP:
	default:
		return 1;
	}
}

/* 1 if the EHLO reply now ending gets the gateway's own STARTTLS line. */
static int
ehlo_offer(const struct smtpfix_stream *s)
{
	struct smtpfix_tls_state st;
	struct smtpfix_tls_ehlo e;

	if (s->tls == NULL)
		return 0;
	st.server_offered = s->srv_tls;
	st.client_tls = s->tls_client;
	st.server_failed = s->up_clear;
	smtpfix_tlspolicy_ehlo(s->tls, &st, &e);
	return e.offer;
}

/* Reply line line[0..used) as a line that is not the last
 * (RFC 5321 §4.2.1: "250-"), into dst; returns its length. */
static size_t
ehlo_cont(char *dst, const char *line, size_t used)
{
	memcpy(dst, line, 3);
	dst[3] = '-';
	if (line[3] == '\r') { /* "250" CRLF: no text */
		dst[4] = '\r';
		dst[5] = '\n';
		return 6;
	}
	memcpy(dst + 4, line + 4, used - 4);
	return used;
}

static void
s2c_close(struct smtpfix_stream *s, struct smtpfix_step *out,
    const char *code_enh, const char *text)
{
	out->act = SMTPFIX_ACT_CLOSE;
	out->consumed = 0;
	emit_local(s, out, code_enh, text);
	s->closed = 1;
	s->cmode = SMTPFIX_C_DEAD;
}

/* RFC 2920 §3.1: the client sent on before the reply it had to wait
 * for; it gets the hardened server's answer instead, and nothing it sent
 * early is relayed.  The upstream leg may be reading data: the gateway
 * resets it. */
static void
sync_close(struct smtpfix_stream *s, struct smtpfix_step *out)
{
	const struct smtpfix_local_reply *lr = &local_replies[LOCAL_SYNC];

	out->event = SMTPFIX_EV_SYNC;
	out->detail = s->sync < sizeof(sync_names) / sizeof(sync_names[0])
	                  ? sync_names[s->sync]
	                  : "?";
	s2c_close(s, out, lr->code_enh, lr->text);
}

/* 1 if a reply of kind answers the command the client is held for. */
static int
sync_reply(const struct smtpfix_stream *s, unsigned kind)
{
	switch (s->sync) {
	case SYNC_DATA:
		return kind == KIND_DATA;
	case SYNC_STARTTLS:
		return kind == KIND_STARTTLS;
	case SYNC_AUTH:
		return kind == KIND_AUTH;
	default:
		return 0;
	}
}

/* XCLIENT not offered or refused on this transport: reported, and the
 * session goes on, unless the identity is required. */
static void
xc_failed(struct smtpfix_stream *s, struct smtpfix_step *out, const char *why)
{
	s->xc_phase = XC_DONE;
	out->event = SMTPFIX_EV_IDENTITY;
	out->detail = why;
	if (s->xc_required) {
		/* Nothing of the client's goes on: its command gets the
		 * 421 (emitted with ACT_CLOSE). */
		s->cmode = SMTPFIX_C_DEAD;
		q_local(s, LOCAL_IDENTITY);
	}
}

/* The final line of a reply was consumed: pop what it answers and act
 * on the code. */
static void
reply_end(struct smtpfix_stream *s, unsigned code, struct smtpfix_step *out)
{
	struct smtpfix_pending *p;
	enum smtpfix_kind kind;
	unsigned need;

	s->rfirst = 1;
	s->rcode = 0;
	s->rfilter = 0;
	if (!s->rbound)
		return;
	s->rbound = 0;
	p = q_head(s);
	kind = p != NULL ? (enum smtpfix_kind)p->kind : KIND_NONE;
	need = p != NULL ? p->local : 0;
	q_pop(s);
	if (s->rp != NULL && kind != KIND_NONE) {
		enum smtpfix_replay_class c = smtpfix_replay_pop(s->rp, code);

		/* A kept command the new server refuses: the client was told
		 * it was accepted, so nothing may go on without it. */
		if (kind == KIND_REPLAY && code / 100 != need) {
			s->fb_fail = 1;
			s->fb_fail_cls = (uint8_t)c;
		}
	}
	switch (kind) {
	case KIND_GREETING:
		s->hold = 0;
		break;
	case KIND_EHLO:
		s->srv_known = code / 100 == 2;
		/* draft-martin §3.1: the sender-SMTP answers the keyword with
		 * the verb; the gateway does, when it can follow a 456. */
		if (code / 100 == 2 && s->fb_offered && s->fb_armed &&
		    s->rp != NULL)
			s->fb_verb_due = 1;
		s->fb_offered = 0;
		break;
	case KIND_FB_VERB:
		s->fb_negotiated = code / 100 == 2;
		break;
	case KIND_HELO:
		s->srv_known = 0; /* a HELO session: the offer is unknown */
		break;
	case KIND_EHLO_PROBE:
		s->srv_known = 1;
		break;
	case KIND_XC_EHLO:
		s->srv_known = code / 100 == 2;
		if (code / 100 == 2 && s->xc_mask != 0)
			s->xc_phase = XC_READY;
		else
			xc_failed(s, out, "not_offered");
		break;
	case KIND_XCLIENT:
		/* XCLIENT_README: success is a new 220 greeting. */
		if (code != 220) {
			xc_failed(s, out, "refused");
			break;
		}
		s->xc_phase = XC_DONE;
		s->xc_ok = 1;
		s->id_known = (s->xc_mask & SMTPFIX_XC_ADDR) != 0;
		out->event = SMTPFIX_EV_IDENTITY;
		out->detail = "accepted";
		break;
	case KIND_REGREET:
		/* The new connection after a failed upstream handshake
		 * (RFC 7435 §1): the client, held since its STARTTLS, gets
		 * its TLS; its EHLO inside TLS goes to the new connection,
		 * in clear text. */
		out->event = SMTPFIX_EV_STARTTLS;
		if (code == 220) {
			out->detail = "fallback_clear_upstream";
			if (s->tls_par)
				par_settle(s);
			else
				q_local(s, LOCAL_TLS_READY);
			break;
		}
		out->detail = "fallback_refused";
		s->tls_code = "421 4.7.0";
		s->tls_text = "TLS with the server failed and it refused a "
		              "new connection, try again later";
		s->tls_close = 1;
		q_local(s, LOCAL_TLS_REPLY);
		break;
	case KIND_DATA:
		release(s);
		/* RFC 5321 §4.1.1.4: only 354 starts the data; the DATA
		 * line's CRLF is the first CRLF of CRLF "." CRLF. */
		if (code == 354 && s->cmode == SMTPFIX_C_CMD) {
			s->cmode = SMTPFIX_C_DATA;
			s->dstate = DS_BOL;
		}
		break;
	case KIND_STARTTLS:
		if (s->tls_ours) {
			/* Our STARTTLS upstream (terminate): the client is
			 * still held, its 220 not yet given. */
			s->tls_ours = 0;
			out->event = SMTPFIX_EV_STARTTLS;
			out->detail = "server_refused";
			if (code == 220) {
				out->act = SMTPFIX_ACT_TLS_UPSTREAM;
				out->detail = "upstream_handshake";
				s->tls_phase = TLSP_UP;
			} else if (s->tls_fallback) {
				s->tls_fallback = 0;
				out->detail = "server_refused_client_only";
				if (s->tls_par)
					par_settle(s);
				else
					q_local(s, LOCAL_TLS_READY);
			} else
				release(s); /* its refusal was relayed */
			break;
		}
		release(s);
		/* RFC 3207 §4: 220 starts the TLS negotiation. */
		if (code == 220 && s->cmode == SMTPFIX_C_CMD) {
			out->act = SMTPFIX_ACT_OPAQUE;
			out->event = SMTPFIX_EV_TLS;
			s->cmode = SMTPFIX_C_OPAQUE;
		}
		break;
	case KIND_AUTH:
		release(s);
		/* RFC 4954 §4: 334 asks for one more line. */
		if (code == 334)
			s->secret_next = 1;
		break;
	case KIND_QUIT:
		if (code == 221)
			s->quit_ok = 1;
		break;
	default:
		break;
	}
}

/*
 * One line of a 2xx reply to EHLO, minus CHUNKING and BINARYMIME.  A kept
 * line that is not the last goes out only once the next kept line (or
 * the end) is in view: when everything after it is dropped, it must end
 * the reply with "250 " (RFC 5321 §4.2.1).  The look-ahead reads the
 * caller's input, so the session copies nothing.  Returns 1 if it set
 * *out, 0 to relay the line as usual.
 */
static int
s2c_ehlo(struct smtpfix_stream *s, const char *in, size_t len, size_t used,
    int first, int final, unsigned code, struct smtpfix_step *out)
{
	size_t off, u2;
	unsigned c2, skipped;
	int f2;

	if (!first && ehlo_dropped(s, in, used)) {
		out->act = SMTPFIX_ACT_DISCARD;
		out->consumed = used;
		s->rfirst = 0;
		if (final && ehlo_offer(s))
			s->ehlo_tail = 1; /* our line ends the reply */
		else if (final)           /* only if a look-ahead missed it */
			reply_end(s, code, out);
		return 1;
	}
	if (final) {
		if (!ehlo_offer(s))
			return 0;
		/* RFC 5321 §4.2.1: our STARTTLS line becomes the last. */
		out->act = SMTPFIX_ACT_EMIT;
		out->emit = out->buf;
		out->emit_len = ehlo_cont(out->buf, in, used);
		out->consumed = used;
		s->rfirst = 0;
		s->ehlo_tail = 1;
		return 1;
	}
	for (off = used, skipped = 0;; off += u2, skipped++) {
		if (skipped > SMTPFIX_EHLO_SKIP_MAX)
			return -1;
		switch (
		    smtpfix_line_find(in + off, len - off, reply_cap(s), &u2)) {
		case SMTPFIX_PARTIAL:
			return 1; /* act NONE: wait for the next line */
		case SMTPFIX_OK:
			break;
		default:
			return 0; /* the bad line fails on its own turn */
		}
		if (reply_parse(in + off, u2, &c2, &f2) != 0 || c2 != code ||
		    !ehlo_dropped(s, in + off, u2))
			return 0; /* a kept (or bad) line follows */
		if (f2)
			break;
	}
	/* Every line after this one is dropped: this one ends the reply,
	 * unless our STARTTLS line does. */
	if (used > sizeof(out->buf))
		return -1;
	memcpy(out->buf, in, used);
	out->act = SMTPFIX_ACT_EMIT;
	out->emit = out->buf;
	out->emit_len = used;
	out->consumed = off + u2;
	if (ehlo_offer(s)) {
		s->rfirst = 0;
		s->ehlo_tail = 1;
		return 1;
	}
	out->buf[3] = ' ';
	reply_end(s, code, out);
	return 1;
}

/* Line line[0..used) relayed with reply code code instead of its own
 * (smtpfix_ehlo_reply_code); used fits out->buf. */
static void
s2c_recode(
    const char *line, size_t used, unsigned code, struct smtpfix_step *out)
{
	memcpy(out->buf, line, used);
	out->buf[0] = (char)('0' + code / 100 % 10);
	out->buf[1] = (char)('0' + code / 10 % 10);
	out->buf[2] = (char)('0' + code % 10);
	out->act = SMTPFIX_ACT_EMIT;
	out->emit = out->buf;
	out->emit_len = used;
	out->event = SMTPFIX_EV_REPLY_CODE;
}

/*
 * draft-martin §3: 1 if the first line in[0..used) of a reply (code) to
 * the queue head asks for a retry over IPv4 and the session can follow
 * it; the record is then rewound for the replay.
 */
static int
fb_refusal(struct smtpfix_stream *s, const char *in, size_t used, unsigned code)
{
	if (s->rp == NULL || !s->fb_armed || !s->rbound || s->tls_server ||
	    s->tls_phase != TLSP_NONE || s->tls_par ||
	    s->cmode == SMTPFIX_C_OPAQUE)
		return 0;
	switch (s->rkind) {
	case KIND_GREETING:
	case KIND_EHLO:
	case KIND_HELO:
	case KIND_DATA:
	case KIND_DATA_END:
	case KIND_OTHER:
		break;
	default:
		return 0;
	}
	if (!smtpfix_replay_is_448(in, used, code, s->fb_negotiated))
		return 0;
	return smtpfix_replay_rewind(s->rp, in, used) == 0;
}

/* A new upstream connection replaces the old one: nothing the old
 * server offered or owed counts (its replies, its EHLO offer, a reply
 * half read); its greeting is awaited again. */
static void
new_upstream(struct smtpfix_stream *s)
{
	s->srv_tls = 0;
	s->srv_known = 0;
	s->rcode = 0;
	s->rfirst = 1;
	s->rbound = 0;
	s->rkind = KIND_NONE;
	s->rfilter = 0;
	s->rswallow = 0;
	s->ehlo_tail = 0;
	s->qhead = s->qlen = 0;
}

/* The refusal is in whole: the old leg goes, with every reply it owed;
 * the replay starts on the new one (c2s_replay). */
static void
fb_begin(struct smtpfix_stream *s, struct smtpfix_step *out)
{
	s->fb_swallow = 0;
	s->fb_armed = 0;
	s->fb_active = 1;
	s->fb_done = 1;
	s->fb_offered = 0;
	s->fb_verb_due = 0;
	s->fb_negotiated = 0;
	new_upstream(s);
	out->act = SMTPFIX_ACT_FALLBACK;
	out->event = SMTPFIX_EV_FALLBACK;
	out->detail = smtpfix_replay_class_name(
	    (enum smtpfix_replay_class)s->rp->first_cls);
}

void
smtpfix_s2c_step(struct smtpfix_stream *s, const char *in, size_t len,
    struct smtpfix_step *out)
{
	const struct smtpfix_local_reply *lr;
	struct smtpfix_pending *p;
	unsigned code;
	size_t used;
	int final, first;

	step_reset(out);
	if (s->closed)
		return;
	if (s->ehlo_tail) {
		/* RFC 3207 §4: the gateway's own offer, as the last line of
		 * the EHLO reply (RFC 5321 §4.2.1). */
		code = s->rcode;
		s->ehlo_tail = 0;
		out->act = SMTPFIX_ACT_EMIT;
		out->emit = out->buf;
		out->emit_len = 0;
		out->buf[0] = (char)('0' + code / 100 % 10);
		out->buf[1] = (char)('0' + code / 10 % 10);
		out->buf[2] = (char)('0' + code % 10);
		memcpy(out->buf + 3, " STARTTLS\r\n", 11);
		out->emit_len = 14;
		reply_end(s, code, out);
		return;
	}
	if (s->tls_par_220) {
		/* RFC 3207 §4: our 220 to the client's STARTTLS, while the
		 * same STARTTLS goes upstream (smtpfix_tlspolicy_parallel). */
		s->tls_par_220 = 0;
		if (sync_broken(s, 0)) {
			sync_close(s, out);
			return;
		}
		emit_local(s, out, local_replies[LOCAL_TLS_READY].code_enh,
		    local_replies[LOCAL_TLS_READY].text);
		out->act = SMTPFIX_ACT_TLS_CLIENT;
		s->cli_hs = 1;
		s->sync = SYNC_NONE;
		s->early = 0;
		return;
	}
	if (s->tls_phase != TLSP_NONE)
		return; /* the server's bytes wait for the handshake */
	if (s->cmode == SMTPFIX_C_OPAQUE) {
		if (len > 0) {
			out->act = SMTPFIX_ACT_FORWARD;
			out->consumed = len;
		}
		return;
	}

	/* RFC 2920 §3.1: replies in command order, ours included; never
	 * inside a multi-line reply, unless ours ends the session. */
	p = q_head(s);
	if (p != NULL && p->kind == KIND_LOCAL && s->cli_hs)
		return; /* ours go out once the client is in TLS */
	if (p != NULL && p->kind == KIND_LOCAL) {
		unsigned local = p->local < LOCAL_COUNT ? p->local : 0;
		const char *code_enh, *text;
		int fatal;

		lr = &local_replies[local];
		code_enh = lr->code_enh;
		text = lr->text;
		fatal = lr->fatal;
		if (local == LOCAL_TLS_REPLY && s->tls_code != NULL) {
			code_enh = s->tls_code;
			text = s->tls_text;
			fatal = s->tls_close;
		}
		if ((local == LOCAL_TLS_READY || local == LOCAL_TLS_REPLY) &&
		    sync_broken(s, 0)) {
			/* Our answer to STARTTLS releases the client. */
			sync_close(s, out);
			return;
		}
		if (s->rfirst || fatal) {
			q_pop(s);
			rec_pop(s, 0);
			if (fatal) {
				s2c_close(s, out, code_enh, text);
				if (local == LOCAL_IDENTITY) {
					out->event = SMTPFIX_EV_IDENTITY;
					out->detail = "required";
				}
				return;
			}
			out->act = SMTPFIX_ACT_EMIT;
			emit_local(s, out, code_enh, text);
			if (local == LOCAL_TLS_READY) {
				/* RFC 3207 §4: the handshake follows our
				 * 220; the client stays held until then. */
				out->act = SMTPFIX_ACT_TLS_CLIENT;
				s->tls_phase = TLSP_CLIENT;
				s->sync = SYNC_NONE;
				s->early = 0;
			} else if (local == LOCAL_TLS_REPLY)
				release(s);
			return;
		}
	}
	if (len == 0)
		return;

	switch (smtpfix_line_find(in, len, reply_cap(s), &used)) {
	case SMTPFIX_OK:
		break;
	case SMTPFIX_PARTIAL:
		return;
	default:
		goto bad;
	}
	if (reply_parse(in, used, &code, &final) != 0)
		goto bad;
	first = s->rfirst;
	if (first) {
		/* A reply with nothing outstanding (a 421 before closing)
		 * is relayed and answers nothing. */
		p = q_head(s);
		/* RFC 5321 §4.3.2: 354 answers DATA and nothing else; a
		 * server that sends it otherwise reads message data where
		 * we relay commands. */
		if (code == 354 && (p == NULL || p->kind != KIND_DATA) &&
		    !(p != NULL && p->kind == KIND_REPLAY && p->local == 3))
			goto bad;
		s->rbound = p != NULL;
		s->rkind = p != NULL ? p->kind : KIND_NONE;
		s->rcode = code;
		s->rfilter = s->rkind == KIND_EHLO && code / 100 == 2;
		if (s->rkind == KIND_EHLO || s->rkind == KIND_HELO ||
		    s->rkind == KIND_EHLO_PROBE || s->rkind == KIND_XC_EHLO) {
			struct smtpfix_tls_state ts = {0, s->tls_client, 0};
			struct smtpfix_tls_ehlo e;

			/* A new EHLO reply: the server's offer starts
			 * over. */
			s->srv_tls = 0;
			s->fb_offered = 0;
			e.drop_server = 0;
			if (s->tls != NULL)
				smtpfix_tlspolicy_ehlo(s->tls, &ts, &e);
			s->rdrop_tls = (uint8_t)e.drop_server;
		}
		if (s->rkind == KIND_STARTTLS && s->tls_ours && code != 220) {
			struct smtpfix_tls_decision d;

			smtpfix_tlspolicy_upstream_fail(
			    s->tls, SMTPFIX_TLSF_REFUSED, &d);
			s->tls_fallback =
			    (uint8_t)(d.act == SMTPFIX_TLSA_CLIENT_ONLY);
		}
		/* Our own STARTTLS: its 220 is for us, and a refusal the
		 * client does not see when it gets TLS anyway. */
		s->rswallow =
		    (s->rkind == KIND_STARTTLS && s->tls_ours &&
		        (code == 220 || s->tls_fallback)) ||
		    s->rkind == KIND_EHLO_PROBE || s->rkind == KIND_REGREET ||
		    s->rkind == KIND_XC_EHLO || s->rkind == KIND_XCLIENT ||
		    s->rkind == KIND_REPLAY || s->rkind == KIND_FB_VERB;
		if (s->rkind == KIND_XC_EHLO)
			s->xc_mask = 0;
		/* draft-martin §3: a refusal to be followed over IPv4 is
		 * never relayed. */
		if (fb_refusal(s, in, used, code)) {
			s->fb_swallow = 1;
			s->rswallow = 1;
		}
	} else if (code != s->rcode) {
		/* RFC 5321 §4.2.1: every line of a reply has its code. */
		goto bad;
	}
	out->secret = s->rkind == KIND_AUTH;
	/* Any line of the reply that releases a held client, before it is
	 * relayed (a reply swallowed here releases nothing). */
	if (s->rbound && !s->rswallow && sync_reply(s, s->rkind) &&
	    sync_broken(s, code)) {
		sync_close(s, out);
		return;
	}
	if (s->rswallow) {
		/* RFC 3207 §4: the offer, from our own EHLO's reply. */
		if ((s->rkind == KIND_EHLO_PROBE || s->rkind == KIND_XC_EHLO) &&
		    code / 100 == 2 && !first &&
		    smtpfix_ehlo_keyword(in + 4, used >= 6 ? used - 6 : 0) ==
		        SMTPFIX_KW_STARTTLS)
			s->srv_tls = 1;
		/* The XCLIENT offer, from our own EHLO's reply. */
		if (s->rkind == KIND_XC_EHLO && code / 100 == 2 && !first) {
			int m = smtpfix_xclient_offer(in, used);

			if (m > 0)
				s->xc_mask |= (uint8_t)m;
		}
		out->act = SMTPFIX_ACT_DISCARD;
		out->consumed = used;
		if (!final) {
			s->rfirst = 0;
			return;
		}
		s->rswallow = 0;
		if (s->fb_swallow) {
			fb_begin(s, out);
			return;
		}
		reply_end(s, code, out);
		if (s->fb_fail) {
			out->event = SMTPFIX_EV_FALLBACK_FAILED;
			out->detail = smtpfix_replay_class_name(
			    (enum smtpfix_replay_class)s->fb_fail_cls);
			s2c_close(s, out, "421 4.4.8",
			    "retry over IPv4 failed: the IPv4 server refused "
			    "a command it needed, try again later");
			out->consumed = used;
		}
		return;
	}
	if (s->rfilter) {
		int r = s2c_ehlo(s, in, len, used, first, final, code, out);

		if (r < 0)
			goto bad;
		if (r > 0) {
			if (first && out->act == SMTPFIX_ACT_NONE)
				s->rfirst = 1; /* read again next time */
			return;
		}
	}
	out->act = SMTPFIX_ACT_FORWARD;
	out->consumed = used;
	if (smtpfix_ehlo_reply_code(code) != code && used <= sizeof(out->buf)) {
		s2c_recode(in, used, smtpfix_ehlo_reply_code(code), out);
		if (!first)
			out->event = SMTPFIX_EV_NONE; /* one log line a reply */
	}
	if (!final) {
		s->rfirst = 0;
		return;
	}
	reply_end(s, code, out);
	return;

bad:
	out->event = SMTPFIX_EV_BAD_REPLY;
	s2c_close(s, out, "421 4.4.2", "upstream protocol error, closing");
}

/*
 * The upstream handshake failed and the policy falls back to clear text
 * (RFC 7435 §1): the gateway opens a new connection; its greeting is
 * awaited, not relayed (the client, held since its STARTTLS, had its
 * own), and nothing of the old connection counts.
 */
static void
tls_reconnect(struct smtpfix_stream *s)
{
	s->up_clear = 1;
	new_upstream(s);
	xc_restart(s, 1);
	if (s->rp != NULL)
		smtpfix_replay_break(s->rp, "tls_reconnect");
	q_push(s, KIND_REGREET, LOCAL_NONE);
}

int
smtpfix_stream_tls_done(struct smtpfix_stream *s, enum smtpfix_tls_result r)
{
	struct smtpfix_tls_decision d;

	switch (r) {
	case SMTPFIX_TLSR_UP_OK:
		if (s->tls_phase != TLSP_UP)
			return 0;
		s->tls_phase = TLSP_NONE;
		s->tls_server = 1;
		/* RFC 3207 §4.2: the server forgets what it learned. */
		xc_restart(s, 0);
		if (s->tls_par)
			par_settle(s);
		else
			q_local(s, LOCAL_TLS_READY);
		return 0;
	case SMTPFIX_TLSR_UP_FAIL:
	case SMTPFIX_TLSR_UP_VERIFY:
		if (s->tls_phase != TLSP_UP)
			return 0;
		s->tls_phase = TLSP_NONE;
		smtpfix_tlspolicy_upstream_fail(s->tls,
		    r == SMTPFIX_TLSR_UP_VERIFY ? SMTPFIX_TLSF_VERIFY
		                                : SMTPFIX_TLSF_HANDSHAKE,
		    &d);
		if (d.act == SMTPFIX_TLSA_RECONNECT) {
			tls_reconnect(s);
			return 1;
		}
		/* The client is still in clear text: it can be told. */
		s->tls_code = d.code_enh != NULL ? d.code_enh : "421 4.7.0";
		s->tls_text = d.text != NULL ? d.text : "TLS failed";
		s->tls_close = (uint8_t)(d.code_enh == NULL || d.close);
		q_local(s, LOCAL_TLS_REPLY);
		return 0;
	case SMTPFIX_TLSR_CLIENT_OK:
		if (s->tls_phase != TLSP_CLIENT && !s->cli_hs)
			return 0;
		/* RFC 3207 §4.2: "the SMTP protocol is reset to the initial
		 * state (the state in SMTP after a server issues a 220
		 * service ready greeting)"; no new greeting is sent, and
		 * nothing learned before counts. */
		s->tls_client = 1;
		s->cmode = SMTPFIX_C_CMD;
		release(s);
		s->secret_next = 0;
		s->dl_cr = 0;
		s->dstate = DS_LINE;
		if (s->rp != NULL)
			smtpfix_replay_flush(s->rp);
		if (s->cli_hs) {
			/* Side by side: the upstream leg keeps its queue
			 * and the reply it may be reading (par_settle
			 * resets what the server knew). */
			s->cli_hs = 0;
			s->srv_tls = 0;
			s->srv_known = 0;
			return 0;
		}
		s->tls_phase = TLSP_NONE;
		s->qhead = s->qlen = 0;
		s->rcode = 0;
		s->rfirst = 1;
		s->rbound = 0;
		s->rkind = KIND_NONE;
		s->rfilter = 0;
		s->srv_tls = 0;
		s->srv_known = 0;
		s->rswallow = 0;
		s->ehlo_tail = 0;
		return 0;
	case SMTPFIX_TLSR_CLIENT_FAIL:
	default:
		s->tls_phase = TLSP_NONE;
		s->closed = 1;
		s->cmode = SMTPFIX_C_DEAD;
		return 0;
	}
}

void
smtpfix_stream_set_fallback(struct smtpfix_stream *s, struct smtpfix_replay *rp)
{
	unsigned i;

	s->rp = rp;
	s->fb_armed = rp != NULL;
	if (rp == NULL)
		return;
	/* The record starts as the queue is (the greeting awaited). */
	for (i = 0; i < s->qlen; i++) {
		const struct smtpfix_pending *p =
		    &s->q[(s->qhead + i) % SMTPFIX_QUEUE_LEN];
		enum smtpfix_replay_class c =
		    rec_class((enum smtpfix_kind)p->kind);

		if (c == SMTPFIX_RC_COUNT)
			smtpfix_replay_break(rp, "late");
		else
			smtpfix_replay_push(rp, c, p->kind, p->local);
	}
}

void
smtpfix_stream_set_fallback_negotiated(struct smtpfix_stream *s)
{
	if (s->rp != NULL && s->fb_armed)
		s->fb_negotiated = 1;
}

void
smtpfix_stream_fallback_opened(struct smtpfix_stream *s)
{
	if (s->rp != NULL && s->fb_active)
		smtpfix_replay_opened(s->rp);
}

int
smtpfix_stream_fell_back(const struct smtpfix_stream *s)
{
	return s->fb_done;
}

int
smtpfix_stream_fallback_busy(const struct smtpfix_stream *s)
{
	return s->fb_swallow ||
	       (s->fb_active && s->rp != NULL && smtpfix_replay_pending(s->rp));
}

void
smtpfix_stream_set_upstream_clear(struct smtpfix_stream *s)
{
	s->up_clear = 1;
}

int
smtpfix_stream_tls_client(const struct smtpfix_stream *s)
{
	return s->tls_client;
}

int
smtpfix_stream_tls_server(const struct smtpfix_stream *s)
{
	return s->tls_server;
}

int
smtpfix_stream_sync_wait(const struct smtpfix_stream *s)
{
	return s->sync != SYNC_NONE && !s->closed;
}

void
smtpfix_stream_client_early(struct smtpfix_stream *s)
{
	if (s->sync != SYNC_NONE)
		s->early = 1;
}

uint64_t
smtpfix_stream_messages(const struct smtpfix_stream *s)
{
	return s->messages;
}

int
smtpfix_stream_quit_answered(const struct smtpfix_stream *s)
{
	return s->quit_ok;
}

int
smtpfix_stream_upstream_gone(const struct smtpfix_stream *s)
{
	unsigned i;

	if (s->quit_ok)
		return 0;
	if (s->cmode == SMTPFIX_C_DATA)
		return 1;
	for (i = 0; i < s->qlen; i++)
		if (s->q[(s->qhead + i) % SMTPFIX_QUEUE_LEN].kind != KIND_LOCAL)
			return 1;
	return 0;
}

enum smtpfix_wait
smtpfix_stream_wait(const struct smtpfix_stream *s)
{
	unsigned i;

	if (s->cmode == SMTPFIX_C_OPAQUE)
		return SMTPFIX_WAIT_OPAQUE;
	if (s->cli_hs)
		return SMTPFIX_WAIT_HANDSHAKE;
	/* Upstream handshake: the client still waits for its reply. */
	if (s->tls_phase == TLSP_UP)
		return SMTPFIX_WAIT_REPLY;
	if (s->tls_phase == TLSP_CLIENT)
		return SMTPFIX_WAIT_HANDSHAKE;
	if (s->cmode == SMTPFIX_C_DATA)
		return SMTPFIX_WAIT_DATA;
	/* The oldest reply the server still owes decides (RFC 5321
	 * §4.5.3.2 gives each command's reply its own timeout). */
	for (i = 0; i < s->qlen; i++) {
		const struct smtpfix_pending *p =
		    &s->q[(s->qhead + i) % SMTPFIX_QUEUE_LEN];

		switch (p->kind) {
		case KIND_LOCAL:
			continue;
		case KIND_GREETING:
		case KIND_REGREET:
			return SMTPFIX_WAIT_GREETING;
		case KIND_DATA:
			return SMTPFIX_WAIT_DATA_INIT;
		case KIND_DATA_END:
			return SMTPFIX_WAIT_DATA_END;
		default:
			return SMTPFIX_WAIT_REPLY;
		}
	}
	return SMTPFIX_WAIT_COMMAND;
}
