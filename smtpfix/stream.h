/*
 * smtpfix/stream.h: the SMTP session state machine of the gateway, both
 * directions.  Pure: no I/O, no allocation, no clock, no globals.
 *
 * The gateway owns two input buffers (bytes read from the client, bytes
 * read from the server) and calls a step function on whatever is unread.
 * Each step looks at the front of that input and returns one action
 * (struct smtpfix_step) that says how many input bytes it consumed and
 * what to write to the other side.  The gateway performs the action,
 * drops the consumed bytes and steps again, until a step returns
 * SMTPFIX_ACT_NONE (nothing to do until more bytes arrive or the other
 * direction makes progress).  After any step in one direction the
 * gateway steps the other direction too, since a server reply can
 * release held client bytes and a client command can queue a local reply.
 *
 * Framing is driven by the server's replies, never by the client's
 * commands alone (so the gateway and the server can never disagree on
 * where a message ends):
 *  - every client command line queues one expected reply; the reply
 *    queue pairs each server reply with the command it answers, which is
 *    what keeps RFC 2920 pipelining in order;
 *  - after DATA, STARTTLS or AUTH (and each AUTH continuation) the
 *    client side is held (not parsed) until the server's reply to that
 *    command arrives; DATA mode starts only on 354 (RFC 5321 §4.1.1.4),
 *    the opaque TLS relay only on 220 (RFC 3207 §4); any other reply
 *    leaves the client side in command mode, exactly as the server sees
 *    it; a 354 that answers anything but DATA closes the session (the
 *    server would read data where we relay commands);
 *  - BDAT is never relayed: CHUNKING is never offered, so BDAT is
 *    answered locally and its chunk skipped (RFC 3030 §2);
 *  - the client must wait for the server's final greeting line
 *    (RFC 5321 §3.1, §4.3.1): a byte before it ends the session with
 *    554 5.5.1, and nothing it sent is ever relayed;
 *  - the EHLO reply the client sees is an allowlist (smtpfix/ehlo.h), and
 *    a verb the gateway does not relay is answered here (500 or 502
 *    5.5.1) and never reaches the server.
 *
 * Synchronisation (RFC 2920 §3.1: DATA, and extension commands such as
 * STARTTLS and AUTH, end a pipelined group; the client waits for their
 * reply).  Holding the client after these commands hides from the server
 * that the client did not wait, and so defeats the server's own defence
 * (a hardened server answers "554 5.5.0" to input pending after DATA).
 * The gateway therefore defends in its place: any client byte that
 * arrives while the client is held after DATA, STARTTLS, AUTH or a SASL
 * response is remembered (c2s steps see it in their input; the gateway
 * reports bytes still in its socket with smtpfix_stream_client_early),
 * and when the reply that releases the client comes, the client instead
 * gets "554 5.5.0" and the session closes (ACT_CLOSE, EV_SYNC): nothing
 * of the early bytes is ever relayed.  RFC 4954 §4 lets an AUTH with an
 * initial response be followed at once when it completes in one round
 * trip, so that AUTH is a violation only if the server asks for more
 * (334).  EHLO, NOOP and the other commands RFC 2920 §3.1 names are not
 * held: what follows them goes upstream at once, and the server judges.
 *
 * STARTTLS (RFC 3207) follows the pair's TLS policy (smtpfix/tlspolicy.h,
 * set with smtpfix_stream_set_tls; none means passthrough):
 *  - passthrough: the server's 220 makes the session opaque (ACT_OPAQUE);
 *  - strip: the server's STARTTLS keyword is removed from the EHLO reply
 *    and the command is answered 502 here;
 *  - terminate: the EHLO reply offers the gateway's own STARTTLS.  The
 *    client's STARTTLS is decided once every earlier reply is in (so the
 *    server's offer is known; a client that sends STARTTLS before EHLO,
 *    as RFC 3207 allows, makes the gateway send an EHLO of its own first,
 *    whose reply is not relayed): it goes upstream, and on the server's 220
 *    (not relayed) the gateway runs the upstream handshake
 *    (ACT_TLS_UPSTREAM); then, or at once when the client leg alone is
 *    to be encrypted, the client gets "220 2.0.0" and the gateway runs the
 *    client handshake (ACT_TLS_CLIENT).  Where every upstream outcome
 *    leaves the client in TLS (smtpfix_tlspolicy_parallel: opportunistic)
 *    the client gets its 220 at once instead, the two handshakes run side
 *    by side, and the client's first command inside TLS waits until the
 *    upstream leg is settled (in TLS, refused and clear, or reconnected in
 *    clear).  The gateway reports each outcome
 *    with smtpfix_stream_tls_done.  Nothing either side sent before its
 *    handshake is relayed after it (RFC 3207 §4, the CVE-2011-0411 and
 *    CVE-2021-38371 classes), and once the client leg is up the session
 *    starts again from the greeting's state (RFC 3207 §4.2: the client
 *    must EHLO again), so the new EHLO is rewritten like any other.
 *
 * Client identity (smtpfix/identity.h, set with smtpfix_stream_set_identity).
 * Under XCLIENT, before the first client command that goes upstream on
 * each upstream connection (and on a new connection after a failed
 * handshake; inside the upstream TLS the gateway runs only if it was not
 * accepted before: the server keeps it for the whole connection), the
 * gateway sends an EHLO of its own, reads the
 * XCLIENT offer from its reply, sends XCLIENT with the offered attributes
 * (HELO is the client's argument when that command is HELO or EHLO) and
 * absorbs the server's new greeting; only then is the client's command
 * relayed.  None of these replies reaches the client: it sees only the
 * replies to its own commands.  A server that does not offer XCLIENT, or
 * refuses it, is reported (EV_IDENTITY) and the session goes on, or,
 * when the identity is required, the client gets "421 4.7.0" and the
 * session closes.  Once the server knows the client's address (XCLIENT
 * accepted with ADDR, or a PROXY header sent), the client's HELO/EHLO
 * argument is relayed as its own when it is a plain printable word: the
 * server judges it against the client's address (the reason for
 * helo_rewrite, RFC 3974 Appendix A, is gone).
 *
 * Local replies (errors the gateway answers itself) are queued in the
 * same reply queue, so they reach the client in command order even in a
 * pipelined group; smtpfix_s2c_step emits them when they reach the head
 * (never inside a server's multi-line reply, unless the reply is fatal).
 *
 * A FORWARD or OPAQUE step consumes at most the len it was given: the
 * caller offers no more input than its output buffer has room for (and at
 * least SMTPFIX_EMIT_MAX), so a message body moves in large steps.  ABORT
 * consumes nothing: the offending bytes stay unread and are discarded by the
 * next steps.  SMTPFIX_EV_QUEUE_FULL is reported once per session.
 */
#ifndef SMTPFIX_STREAM_H
#define SMTPFIX_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "smtpfix/helo.h"

struct smtpfix_tlspolicy; /* smtpfix/tlspolicy.h */
struct smtpfix_replay;    /* smtpfix/replay.h */

/* RFC 5321 §4.5.3.1.4: 512 octets for a command line, CRLF included;
 * extensions (RFC 4954 §4 AUTH) need more, so the cap is a policy with
 * this as its floor. */
#define SMTPFIX_CMD_MIN 512
/* RFC 5321 §4.5.3.1.5: 512 octets for a reply line, CRLF included. */
#define SMTPFIX_REPLY_MIN 512
/* Room a step needs in its destination; the gateway never steps with
 * less free space in the output buffer of that direction. */
#define SMTPFIX_EMIT_MAX (SMTPFIX_CMD_MAX_CAP + 64)
#define SMTPFIX_CMD_MAX_CAP 4096 /* largest cmd_max accepted */
#define SMTPFIX_QUEUE_LEN 128    /* replies outstanding at once */
/* Dropped EHLO keyword lines looked past before a reply is judged
 * malformed (a server that sends pages of CHUNKING lines). */
#define SMTPFIX_EHLO_SKIP_MAX 16

/*
 * A bare CR, a bare LF or a NUL inside message data (RFC 5321 §2.3.8: CR
 * and LF only as the CRLF pair; §4.1.1.4: only CRLF "." CRLF ends the
 * data).  Either way the server gets CRLF-clean data whose only end is the
 * one the gateway saw, so no server can find a second message in it.
 *  - reject: the message is refused (554 5.6.0) and the upstream
 *    connection reset (the SMTP smuggling defence, no message at all);
 *  - inline: the byte stays text of the line it is in: a bare CR or LF is
 *    sent as CRLF, and when the client's line goes on with a ".", that
 *    "." is stuffed (RFC 5321 §4.5.2) so the new line cannot end the
 *    data; a NUL is removed (a "." it leaves at the start of a line is
 *    stuffed the same way).  The message is delivered with the text.
 */
enum smtpfix_bare {
	SMTPFIX_BARE_REJECT = 0,
	SMTPFIX_BARE_INLINE,
};

struct smtpfix_policy {
	const char *fqdn; /* gateway FQDN: HELO value, replies */
	size_t fqdn_len;
	enum smtpfix_helo_mode helo; /* always | literals | off */
	size_t cmd_max;              /* command line cap, CRLF included,
	                                SMTPFIX_CMD_MIN..SMTPFIX_CMD_MAX_CAP */
	size_t reply_max;            /* reply line cap, CRLF included,
	                                SMTPFIX_REPLY_MIN..SMTPFIX_CMD_MAX_CAP */
	int hygiene;            /* refuse source routes and scoped literals in
	                           MAIL/RCPT (RFC 3974 §6, §7) */
	enum smtpfix_bare bare; /* bare CR, LF, NUL in message data */
};

enum smtpfix_act {
	SMTPFIX_ACT_NONE = 0,     /* nothing to do now; consumed == 0 */
	SMTPFIX_ACT_FORWARD,      /* write in[0..consumed) to the other side */
	SMTPFIX_ACT_EMIT,         /* consumed input; write emit[0..emit_len)
	                             to the other side instead */
	SMTPFIX_ACT_DISCARD,      /* consumed input; write nothing */
	SMTPFIX_ACT_ABORT,        /* c2s: reset the upstream connection now
	                             (RST, so the server sees no clean end of
	                             a transaction); a local reply has been
	                             queued for the client */
	SMTPFIX_ACT_CLOSE,        /* s2c: write emit[0..emit_len) to the client,
	                             then close both connections (after
	                             EV_SYNC the upstream one with a reset:
	                             it may be reading message data) */
	SMTPFIX_ACT_OPAQUE,       /* s2c: write in[0..consumed) to the client
	                             (the 220 to STARTTLS); discard everything
	                             else unread from either peer; from now on
	                             relay both directions as opaque bytes */
	SMTPFIX_ACT_TLS_UPSTREAM, /* s2c: in[0..consumed) was the server's
	                         220 to our STARTTLS (not relayed); discard
	                         everything else unread from the server, run
	                         the TLS handshake with it, and report with
	                         smtpfix_stream_tls_done */
	SMTPFIX_ACT_TLS_CLIENT,   /* s2c: write emit[0..emit_len) (our 220) to
	                           the client; discard everything unread from
	                           the client; once the 220 is flushed, run
	                           the TLS handshake with the client, and
	                           report with smtpfix_stream_tls_done */
	SMTPFIX_ACT_ROUTE_CHECK,  /* c2s, routed: the next line is a RCPT of
	                             another domain; nothing consumed: find
	                             whether that domain's servers include
	                             this leg's and report with
	                             smtpfix_stream_route_verdict (steps
	                             return NONE meanwhile) */
	SMTPFIX_ACT_FRONT,        /* c2s, routed: the transaction is over (a
	                             MAIL, RSET, HELO, EHLO or STARTTLS with
	                             every reply in); nothing consumed: close
	                             the upstream leg and give the client's
	                             input back to smtpfix/front.h */
	SMTPFIX_ACT_FALLBACK,     /* s2c: in[0..consumed) ended a 4.4.8
	                             refusal (not relayed): reset the upstream
	                             connection, discard what it sent, and
	                             connect to the IPv4 target; the next c2s
	                             steps replay the transaction on it */
	SMTPFIX_ACT_REPLAY_DATA,  /* c2s: consumed nothing; write the held
	                             message (its bytes as relayed, the end
	                             of data included) to the server before
	                             any further c2s step */
};

/* What a step saw, for the gateway's log line (never message content). */
enum smtpfix_event {
	SMTPFIX_EV_NONE = 0,
	SMTPFIX_EV_HELO,         /* HELO/EHLO seen: helo_in, helo_out set */
	SMTPFIX_EV_BAD_LINE,     /* bare CR/LF or NUL in a command: 500 */
	SMTPFIX_EV_TOO_LONG,     /* command over cmd_max: 500 */
	SMTPFIX_EV_SMUGGLE,      /* bare CR/LF or NUL in message data */
	SMTPFIX_EV_BDAT,         /* BDAT refused locally (CHUNKING not
	                            offered, RFC 3030 §2) */
	SMTPFIX_EV_TLS,          /* STARTTLS accepted: opaque from now on;
	                            the post-TLS EHLO cannot be rewritten */
	SMTPFIX_EV_BAD_REPLY,    /* malformed or over-long server reply */
	SMTPFIX_EV_DATA_END,     /* end of message data relayed */
	SMTPFIX_EV_QUEUE_FULL,   /* client outran the reply queue: held */
	SMTPFIX_EV_PATH,         /* MAIL/RCPT refused: detail says why */
	SMTPFIX_EV_STARTTLS,     /* STARTTLS handled by the gateway (terminate
	                            or strip): detail says how ("upstream",
	                            "client_only", "already_active", ...) */
	SMTPFIX_EV_SYNC,         /* the client sent more before the reply to
	                            DATA, STARTTLS or AUTH (RFC 2920 §3.1):
	                            554 5.5.0 and close; detail names the
	                            command ("data", "starttls", "auth") */
	SMTPFIX_EV_INLINE,       /* bare_line_endings inline: one bare CR, LF
	                            or NUL made text of its line; detail says
	                            which ("bare_cr", "bare_lf", "nul") */
	SMTPFIX_EV_PREGREET,     /* the client spoke before the greeting:
	                            ABORT, then 554 5.5.1 and close */
	SMTPFIX_EV_VERB,         /* a verb answered here, never relayed
	                            (smtpfix/ehlo.h): verb names it if known,
	                            detail is "not_offered" (502) or
	                            "unrecognized" (500) */
	SMTPFIX_EV_REPLY_CODE,   /* a server reply code the client must not
	                            see was changed (456 to 451) */
	SMTPFIX_EV_IDENTITY,     /* XCLIENT: detail is "ehlo_upstream_first"
	                            (our EHLO sent), "sent" (XCLIENT sent),
	                            "accepted", "not_offered" or "refused";
	                            with ACT_CLOSE, the identity was required */
	SMTPFIX_EV_OTHER_SERVER, /* routed: a RCPT of another domain than
	                            the transaction's got 452 4.5.3 */
	SMTPFIX_EV_FALLBACK,     /* ACT_FALLBACK: detail names the phase
	                            (smtpfix_replay_class_name) */
	SMTPFIX_EV_FALLBACK_FAILED, /* the new server refused a replayed
	                               command: 421 4.4.8 and close; detail
	                               names it */
	SMTPFIX_EV_FALLBACK_VERB,   /* IPV6-IPV4-FALLBACK sent upstream
	                               (draft-martin §3.1) */
};

struct smtpfix_step {
	enum smtpfix_act act;
	size_t consumed;  /* input bytes used */
	const char *emit; /* into the session or the
	                     input; valid until the
	                     next step or compaction */
	size_t emit_len;
	enum smtpfix_event event;
	const char *helo_in; /* EV_HELO: argument as sent */
	size_t helo_in_len;
	const char *helo_out; /* EV_HELO: argument relayed */
	size_t helo_out_len;
	int secret;         /* line is an AUTH exchange:
	                       never log it */
	const char *verb;   /* command verb, upper case,
	                       static; NULL if none */
	const char *detail; /* EV_PATH, EV_BDAT: why, static */
	/* Emit space.  The step, not the session, owns it: the caller
	 * copies emit out before the next step, so an idle session needs
	 * no room for a line it is not writing. */
	char buf[SMTPFIX_EMIT_MAX];
};

enum smtpfix_cmode {            /* client side */
	SMTPFIX_C_CMD = 0,      /* command lines */
	SMTPFIX_C_DATA,         /* message data after 354 */
	SMTPFIX_C_BDAT_DISCARD, /* discarding a refused chunk */
	SMTPFIX_C_DISCARD_LINE, /* discarding an over-long line */
	SMTPFIX_C_DEAD,         /* nothing more is relayed */
	SMTPFIX_C_OPAQUE,       /* after STARTTLS 220 */
};

struct smtpfix_pending { /* one expected reply */
	uint8_t kind;    /* enum smtpfix_kind (stream.c) */
	uint8_t local;   /* local reply code index, or 0 */
};

/*
 * The whole state of one session.  The caller owns it (embed it in the
 * session object); smtpfix_stream_init fills it.  About 400 bytes, most
 * of them the reply queue; every idle session holds one, so the fields
 * are as small as their values allow (flags and small enums in a byte,
 * reply codes and queue indices in 16 bits) and ordered pointers first,
 * so the compiler inserts no padding.  All fields are private to
 * stream.c.
 */
struct smtpfix_stream {
	const struct smtpfix_policy *pol;
	/* STARTTLS handled by the gateway (terminate, strip). */
	const struct smtpfix_tlspolicy *tls; /* NULL: passthrough */
	const char *tls_code; /* LOCAL_TLS_REPLY: what to answer */
	const char *tls_text;
	/* Client identity (smtpfix_stream_set_identity); xc_id is what
	 * XCLIENT states, NULL when it is off. */
	const struct smtpfix_identity *xc_id;
	/* Route mode (smtpfix_stream_init_routed): the domain whose servers
	 * this upstream leg reaches; the caller's storage. */
	const char *rdom;
	size_t rdom_len;
	/* IPv6-to-IPv4 fallback (draft-martin §3; smtpfix/replay.h). */
	struct smtpfix_replay *rp; /* NULL: no fallback target */
	uint64_t bdat_left;        /* octets of a refused chunk */
	uint64_t messages;         /* DATA ends relayed */
	/* Reply queue: ring of outstanding replies, head answered next. */
	struct smtpfix_pending q[SMTPFIX_QUEUE_LEN];
	uint16_t qhead, qlen;
	/* Server side: inside a multi-line reply? (its code, or 0) */
	uint16_t rcode;
	uint8_t cmode;       /* enum smtpfix_cmode */
	uint8_t hold;        /* c2s waits for a reply */
	uint8_t secret_next; /* next line answers a 334 */
	uint8_t closed;      /* CLOSE returned: all done */
	uint8_t quit_ok;     /* QUIT answered 221 */
	uint8_t qfull_told;  /* EV_QUEUE_FULL reported */
	uint8_t dl_cr;       /* discarded line: CR last */
	/* DATA scanner: bytes of CRLF "." CRLF matched so far (the line
	 * start after DATA's own CRLF counts as already matched CRLF). */
	uint8_t dstate;
	uint8_t rfirst;       /* next line starts a reply */
	uint8_t rbound;       /* reply answers the queue head */
	uint8_t rkind;        /* kind of that head */
	uint8_t rfilter;      /* 2xx to EHLO: filtered */
	uint8_t tls_phase;    /* a handshake of ours in progress */
	uint8_t tls_close;    /* LOCAL_TLS_REPLY ends the session */
	uint8_t tls_client;   /* client leg in TLS */
	uint8_t tls_server;   /* server leg in TLS */
	uint8_t tls_ours;     /* the pending STARTTLS is the gateway's */
	uint8_t tls_fallback; /* refused upstream: client leg only */
	uint8_t srv_tls;      /* the last EHLO reply offered STARTTLS */
	uint8_t srv_known;    /* srv_tls comes from an EHLO reply of this
	                         server session (else EHLO is sent first) */
	uint8_t up_clear;     /* the server's TLS failed (in this session
	                         or lately): opportunistic stays clear */
	uint8_t rdrop_tls;    /* this EHLO reply loses its STARTTLS */
	uint8_t rswallow;     /* this reply is not relayed */
	uint8_t ehlo_tail;    /* our STARTTLS line still ends the reply */

	/* STARTTLS side by side (smtpfix_tlspolicy_parallel): the client's
	 * 220 goes out at once and its handshake runs while the upstream
	 * STARTTLS, handshake or clear reconnection goes on. */
	uint8_t tls_par;     /* the upstream leg is not settled yet: the
	                        client's commands wait */
	uint8_t tls_par_220; /* our 220 is due (next s2c step) */
	uint8_t cli_hs;      /* that client handshake is running */
	/* RFC 2920 §3.1: held after a command whose reply the client must
	 * wait for (enum smtpfix_sync in stream.c), and whether client
	 * bytes arrived meanwhile. */
	uint8_t sync;
	uint8_t sync_ir; /* that AUTH carried an initial response */
	uint8_t early;
	uint8_t xc_required; /* not accepted: 421 and close */
	uint8_t xc_phase;    /* enum smtpfix_xc_phase (stream.c) */
	uint8_t xc_mask;     /* attributes offered, then sent */
	uint8_t xc_ok;       /* accepted on this upstream connection */
	uint8_t id_known;    /* the server knows the client's address */
	uint8_t id_proxy;    /* a PROXY header precedes every connection */
	uint8_t routed;
	uint8_t rcheck;        /* enum smtpfix_rcheck (stream.c) */
	uint8_t fb_armed;      /* a 4.4.8 may still be followed */
	uint8_t fb_active;     /* replaying on the new leg */
	uint8_t fb_done;       /* the one fallback took place */
	uint8_t fb_swallow;    /* this reply is the refusal */
	uint8_t fb_offered;    /* this EHLO reply lists the keyword */
	uint8_t fb_verb_due;   /* IPV6-IPV4-FALLBACK goes up next */
	uint8_t fb_negotiated; /* ...and the server said 250 */
	uint8_t fb_fail;       /* a quiet replayed command failed */
	uint8_t fb_fail_cls;   /* its enum smtpfix_replay_class */
	uint8_t rec_pushed;    /* this c2s step queued a command */
};

/* Prepares s for a new session; pol must outlive s.  The greeting is the
 * first expected reply. */
void smtpfix_stream_init(
    struct smtpfix_stream *s, const struct smtpfix_policy *pol);

struct smtpfix_identity; /* smtpfix/identity.h */

/*
 * Sets how the server learns who connected (before the first step):
 * SMTPFIX_ID_XCLIENT sends XCLIENT with id's addresses and ports (id must
 * outlive s; its helo fields are ignored: the client's own command gives
 * them); required makes a server that does not accept it end the
 * session.  SMTPFIX_ID_PROXY_V1/V2 only tell the stream that the
 * gateway writes a PROXY header on every upstream connection.  The mode
 * is an enum smtpfix_identity_mode.
 */
void smtpfix_stream_set_identity(struct smtpfix_stream *s, int mode,
    const struct smtpfix_identity *id, int required);

/* The XCLIENT attributes the server offered (SMTPFIX_XC_* bits), for the
 * log line of EV_IDENTITY. */
int smtpfix_stream_xclient_mask(const struct smtpfix_stream *s);
/*
 * Prepares s for route mode's relay (smtpfix/front.h, smtpfix/opener.h):
 * the gateway greeted the client and answered its EHLO and MAIL itself,
 * opened the upstream leg and the server accepted MAIL; the client's
 * first RCPT, for a recipient at domain[0..len), is the next command.
 * From here on commands are relayed as in smtpfix_stream_init's sessions,
 * except that (RFC 5321 §3.3: one transaction goes to one server):
 *  - a RCPT whose domain is not `domain` waits (ACT_ROUTE_CHECK) for the
 *    gateway to say whether that domain's servers include this leg's; if
 *    not it gets "452 4.5.3" here (EV_OTHER_SERVER) and is never relayed:
 *    the client sends it again in a later transaction, which may go to
 *    another server;
 *  - MAIL, RSET, HELO, EHLO and STARTTLS end the relay: once every reply
 *    is in, the step returns ACT_FRONT and consumes nothing;
 *  - AUTH gets 502 (never offered by the front).
 * pol and domain must outlive s.
 */
void smtpfix_stream_init_routed(struct smtpfix_stream *s,
    const struct smtpfix_policy *pol, const char *domain, size_t len);

/* The verdict on the RCPT that ACT_ROUTE_CHECK asked about: same = 1 if
 * its domain has this leg's server among its own, else 0. */
void smtpfix_stream_route_verdict(struct smtpfix_stream *s, int same);

/* Sets the STARTTLS policy of the session (before the first step); tls
 * must outlive s.  NULL (the default) is passthrough. */
void smtpfix_stream_set_tls(
    struct smtpfix_stream *s, const struct smtpfix_tlspolicy *tls);

/* How a handshake the gateway ran after ACT_TLS_UPSTREAM or
 * ACT_TLS_CLIENT ended. */
enum smtpfix_tls_result {
	SMTPFIX_TLSR_UP_OK = 0,
	SMTPFIX_TLSR_UP_FAIL,   /* the upstream handshake failed */
	SMTPFIX_TLSR_UP_VERIFY, /* the server's certificate did not verify */
	SMTPFIX_TLSR_CLIENT_OK,
	SMTPFIX_TLSR_CLIENT_FAIL, /* the gateway closes: nothing more */
};

/*
 * Reports a handshake's outcome.  UP_OK queues the client's 220 (the next
 * s2c step returns ACT_TLS_CLIENT); UP_FAIL and UP_VERIFY queue the reply
 * the policy gives (421 4.7.0 and a close) and return 0, or, when the
 * policy falls back to clear text (opportunistic, RFC 7435 §1), return 1:
 * the gateway then closes the upstream connection, discards what it read
 * from it and connects again; the new greeting is not relayed, and the
 * client gets its 220 and TLS after it.  CLIENT_OK resets the session to
 * the state after the greeting (RFC 3207 §4.2).  A result that does not
 * match the handshake in progress is ignored (0).
 */
int smtpfix_stream_tls_done(
    struct smtpfix_stream *s, enum smtpfix_tls_result r);

/*
 * IPv6-to-IPv4 fallback (draft-martin-smtp-ipv6-to-ipv4-fallback §3): the
 * upstream leg is IPv6 and the gateway has an IPv4 address for the same
 * destination.  rp (initialised by the caller with smtpfix_replay_init,
 * outliving s) records the transaction from now on; call before the first
 * step.  Then:
 *  - when the server's EHLO reply lists IPV6-IPV4-FALLBACK, the gateway
 *    sends the verb (its reply is not relayed) and a 456 4.4.8 counts as
 *    a refusal too; the keyword never reaches the client (smtpfix/ehlo.h);
 *  - a reply 421 or 451 (or negotiated 456) with enhanced code 4.4.8 to
 *    the greeting, HELO/EHLO, MAIL, RCPT, DATA, the end of data or another
 *    command of a transaction is not relayed: an s2c step returns
 *    ACT_FALLBACK, and the following c2s steps replay, one command at a
 *    time, what the new server needs (its greeting, swallowed if the client
 *    had one; the kept HELO/EHLO, MAIL, RCPTs and DATA, swallowed; then
 *    every command still unanswered, relayed as usual; the message via
 *    ACT_REPLAY_DATA).  Client input waits meanwhile.  A swallowed reply
 *    that is not positive ends the session with 421 4.4.8
 *    (EV_FALLBACK_FAILED): the client never learns of a recipient the new
 *    server refused after the old one took it;
 *  - only one fallback a session: on the new leg a 4.4.8 is relayed.
 * Nothing is followed while the upstream leg is in TLS or the record is
 * broken (smtpfix_replay_broken): the refusal is relayed as it is.
 */
void smtpfix_stream_set_fallback(
    struct smtpfix_stream *s, struct smtpfix_replay *rp);

/* Route mode: the opener (smtpfix/opener.h) said IPV6-IPV4-FALLBACK on
 * this leg and the server accepted it (draft-martin §3.1): a 456 4.4.8
 * is followed too.  Call after smtpfix_stream_set_fallback. */
void smtpfix_stream_set_fallback_negotiated(struct smtpfix_stream *s);

/*
 * Route mode after ACT_FALLBACK: the gateway opened the IPv4 leg with
 * smtpfix/opener.h, which had the greeting and said its EHLO (XCLIENT,
 * STARTTLS as configured) and the MAIL itself, so those are not replayed
 * (smtpfix_replay_opened); the next c2s steps replay what followed MAIL:
 * the RCPTs, DATA and the message.  Seed the record with the first leg's
 * EHLO and MAIL (smtpfix_replay_keep) when arming the fallback.
 */
void smtpfix_stream_fallback_opened(struct smtpfix_stream *s);

/* 1 once a fallback took place in this session (the leg is the IPv4
 * one). */
int smtpfix_stream_fell_back(const struct smtpfix_stream *s);

/* 1 while a refusal is being read or the replay still has commands to
 * send: the upstream leg must not be half-closed yet, even if the client
 * has finished. */
int smtpfix_stream_fallback_busy(const struct smtpfix_stream *s);

/* The server's TLS failed lately (the gateway remembers it): under
 * opportunistic, a client's STARTTLS gets TLS on its own leg only, and no
 * STARTTLS goes upstream.  Call before the first step. */
void smtpfix_stream_set_upstream_clear(struct smtpfix_stream *s);

/* 1 once the client leg, resp. the server leg, is in TLS under the
 * gateway's own handshake. */
int smtpfix_stream_tls_client(const struct smtpfix_stream *s);
int smtpfix_stream_tls_server(const struct smtpfix_stream *s);

/*
 * Client to server.  in/len is the unread client input (not NUL
 * terminated).  Returns the next action in *out (always filled).  Never
 * consumes a partial command line; in DATA mode consumes what is safe to
 * forward (a trailing CR is left unread until the next byte shows what
 * follows it).
 */
void smtpfix_c2s_step(struct smtpfix_stream *s, const char *in, size_t len,
    struct smtpfix_step *out);

/*
 * Server to client.  First emits local replies at the head of the queue
 * (consumed == 0), then relays server reply lines one at a time, with the
 * EHLO reply filtered (the allowlist of smtpfix/ehlo.h) and a 456 sent
 * as 451 (the client never negotiated IPV6-IPV4-FALLBACK).
 */
void smtpfix_s2c_step(struct smtpfix_stream *s, const char *in, size_t len,
    struct smtpfix_step *out);

/*
 * The server closed its side.  Returns 1 when the client should be told
 * (a reply was outstanding or a message was in progress): the gateway then
 * sends "421 4.4.2" and closes; 0 when the close was expected (after
 * QUIT's 221, or with nothing outstanding).
 */
/* 1 while the client is held after DATA, STARTTLS, AUTH or a SASL
 * response and must send nothing until the reply (RFC 2920 §3.1). */
int smtpfix_stream_sync_wait(const struct smtpfix_stream *s);

/* The gateway knows of client bytes not in the c2s input (in its socket,
 * or decrypted inside TLS) while smtpfix_stream_sync_wait is 1: they
 * count as sent before the reply, like bytes a c2s step was offered. */
void smtpfix_stream_client_early(struct smtpfix_stream *s);

/* Messages whose end of data was relayed so far. */
uint64_t smtpfix_stream_messages(const struct smtpfix_stream *s);

/* 1 once the server answered QUIT with 221: its close is the end. */
int smtpfix_stream_quit_answered(const struct smtpfix_stream *s);

int smtpfix_stream_upstream_gone(const struct smtpfix_stream *s);

/* What the session waits for now, so the gateway can pick the RFC 5321
 * §4.5.3.2 timeout that applies. */
enum smtpfix_wait {
	SMTPFIX_WAIT_COMMAND = 0, /* client's next command (§4.5.3.2.7) */
	SMTPFIX_WAIT_GREETING,    /* server's 220 (§4.5.3.2.1) */
	SMTPFIX_WAIT_REPLY,       /* a server reply (§4.5.3.2.2-3) */
	SMTPFIX_WAIT_DATA_INIT,   /* reply to DATA (§4.5.3.2.4) */
	SMTPFIX_WAIT_DATA,        /* client's message data (§4.5.3.2.5) */
	SMTPFIX_WAIT_DATA_END,    /* reply to end of data (§4.5.3.2.6) */
	SMTPFIX_WAIT_OPAQUE,      /* after STARTTLS: either side */
	SMTPFIX_WAIT_HANDSHAKE,   /* the client's TLS handshake */
};
enum smtpfix_wait smtpfix_stream_wait(const struct smtpfix_stream *s);

/* Formats the gateway's own reply line "<code> <enh> <fqdn> <text>\r\n"
 * into dst of capacity cap; returns its length, or 0 if it does not fit. */
size_t smtpfix_reply_fmt(char *dst, size_t cap, const char *fqdn,
    size_t fqdn_len, const char *code_enh, const char *text);

#endif
