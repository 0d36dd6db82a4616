/*
 * smtpfix/opener.h: route mode's opening of the upstream leg.  Once a
 * recipient's domain has given a server, the gateway connects and, on its
 * own, reads the greeting, says EHLO with its own name, takes STARTTLS
 * when the policy asks and the server offers it (RFC 3207), and replays
 * the client's MAIL line; the client meanwhile waits for its RCPT reply.
 * When the server accepts MAIL the session passes to smtpfix/stream.h
 * (smtpfix_stream_init_routed), which relays the client's RCPT.  If the
 * server refuses anything on the way, the client gets, as the answer to
 * that RCPT, the server's own reply to MAIL, or a gateway reply naming
 * the step that failed.  Pure: no I/O, no allocation, no clock.
 *
 * Two steps are optional, both after the last EHLO reply (inside TLS
 * when the leg takes it) and before MAIL:
 *  - XCLIENT (smtpfix/identity.h, smtpfix_opener_set_xclient): when that
 *    reply offers it, XCLIENT with the offered attributes; the server's
 *    new 220 is absorbed and EHLO said again (Postfix's XCLIENT_README);
 *  - IPV6-IPV4-FALLBACK (draft-martin-smtp-ipv6-to-ipv4-fallback §3.1,
 *    smtpfix_opener_set_fallback): when that reply lists the keyword, the
 *    verb, so that the server may refuse one message with 456 4.4.8.
 * A refusal that asks for a retry over IPv4 (421 or 451 4.4.8, §3.2) is
 * never answered with HELO or another step: the opener fails at once and
 * says so (smtpfix_opener_refusal_448), so that the gateway can open the
 * leg again to the destination's IPv4 host.
 */
#ifndef SMTPFIX_OPENER_H
#define SMTPFIX_OPENER_H

#include <stddef.h>
#include <stdint.h>

struct smtpfix_identity; /* smtpfix/identity.h */

/* What the opener does about STARTTLS on the upstream leg. */
enum smtpfix_opener_tls {
	SMTPFIX_OPENER_TLS_NO = 0, /* never */
	SMTPFIX_OPENER_TLS_MAY,    /* if the server offers it (RFC 7435) */
	SMTPFIX_OPENER_TLS_MUST,   /* refuse a server that does not offer it */
};

enum smtpfix_opener_act {
	SMTPFIX_OPENER_NONE = 0, /* need more bytes from the server */
	SMTPFIX_OPENER_SEND,     /* write emit to the server */
	SMTPFIX_OPENER_TLS,      /* run the upstream handshake (nothing of
	                            the server's unread bytes is kept, RFC
	                            3207 §4), then smtpfix_opener_tls_done */
	SMTPFIX_OPENER_DONE,     /* the server accepted MAIL: relay */
	SMTPFIX_OPENER_FAIL,     /* write emit to the client as the answer
	                            to its RCPT; close the upstream leg */
};

enum smtpfix_opener_state {
	SMTPFIX_OP_GREETING = 0,
	SMTPFIX_OP_EHLO,
	SMTPFIX_OP_HELO,
	SMTPFIX_OP_STARTTLS,
	SMTPFIX_OP_HANDSHAKE,
	SMTPFIX_OP_POSTTLS, /* handshake done: EHLO goes out next */
	SMTPFIX_OP_TLSFAIL, /* handshake failed: FAIL next */
	SMTPFIX_OP_MAIL,
	SMTPFIX_OP_DONE,
	SMTPFIX_OP_XCLIENT, /* XCLIENT sent: its 220 awaited */
	SMTPFIX_OP_FBVERB,  /* IPV6-IPV4-FALLBACK sent: its reply awaited */
};

/* Where XCLIENT stands on this leg (smtpfix_opener_xclient). */
enum smtpfix_opener_xc {
	SMTPFIX_OPENER_XC_OFF = 0,  /* not asked for */
	SMTPFIX_OPENER_XC_PENDING,  /* asked for, not yet decided */
	SMTPFIX_OPENER_XC_ACCEPTED, /* the server answered 220 */
	SMTPFIX_OPENER_XC_NOT_OFFERED,
	SMTPFIX_OPENER_XC_REFUSED,
};

struct smtpfix_opener {
	const char *fqdn;
	size_t fqdn_len;
	const char *mail; /* the client's MAIL line, CRLF included;
	                     the caller's, read only */
	size_t mail_len;
	enum smtpfix_opener_tls tls;
	enum smtpfix_opener_state st;
	size_t reply_max; /* reply line cap */
	unsigned code;    /* code of the reply being read, 0 between */
	unsigned last;    /* code of the last whole reply read */
	int offers_tls;   /* the EHLO reply listed STARTTLS */
	int in_tls;       /* the upstream leg is in TLS */
	const char *why;  /* FAIL: the step, static, for the log */
	/* XCLIENT (smtpfix_opener_set_xclient). */
	const struct smtpfix_identity *xc_id; /* NULL: off */
	int xc_required;
	int xc_mask; /* attributes the last EHLO reply offered */
	int xc_sent; /* attributes XCLIENT carried */
	enum smtpfix_opener_xc xc;
	/* The client's own HELO argument, said in EHLO once the server
	 * knows the client's address (cl_known). */
	const char *cl_helo;
	size_t cl_helo_len;
	int cl_known;
	/* IPV6-IPV4-FALLBACK (smtpfix_opener_set_fallback). */
	int fb_want;       /* say the verb when offered */
	int fb_offered;    /* the last EHLO reply lists the keyword */
	int fb_sent;       /* the verb went out */
	int fb_negotiated; /* ...and the server answered 2xx */
	/* FAIL after a 4.4.8 refusal: its last line, CRLF dropped. */
	int r448;
	char r448_line[256];
	size_t r448_len;
};

struct smtpfix_opener_step {
	enum smtpfix_opener_act act;
	size_t consumed; /* server bytes used */
	const char *emit;
	size_t emit_len;
	char buf[600];
};

/*
 * Starts opening a leg: fqdn is the gateway's EHLO name, mail the stored
 * MAIL line (both must outlive o), reply_max the server reply line cap
 * (at least 512, RFC 5321 §4.5.3.1.5).
 */
void smtpfix_opener_init(struct smtpfix_opener *o, const char *fqdn,
    size_t fqdn_len, const char *mail, size_t mail_len,
    enum smtpfix_opener_tls tls, size_t reply_max);

/* One step over the server's unread bytes in[0..len).  Always fills *out. */
void smtpfix_opener_step(struct smtpfix_opener *o, const char *in, size_t len,
    struct smtpfix_opener_step *out);

/* The handshake after OPENER_TLS ended.  ok: the next step sends EHLO
 * again (RFC 3207 §4.2), without input.  Not ok: the next step is FAIL
 * with why "tls-handshake"; under MAY the caller may instead reconnect
 * and open the leg again with TLS_NO (RFC 7435: clear text is better
 * than no delivery). */
void smtpfix_opener_tls_done(struct smtpfix_opener *o, int ok);

/* 1 once the upstream leg is in TLS. */
int smtpfix_opener_in_tls(const struct smtpfix_opener *o);

/*
 * Asks for XCLIENT on this leg (call after init): id says who connected
 * (its helo fields the client's own HELO/EHLO argument, or NULL; id must
 * outlive o).  Only the attributes the server offers are sent, xtext-
 * encoded (smtpfix_xclient_build).  required: a server that does not
 * offer it, or refuses it, fails the leg ("451 4.7.0", why "identity");
 * otherwise the leg goes on as the gateway.
 */
void smtpfix_opener_set_xclient(
    struct smtpfix_opener *o, const struct smtpfix_identity *id, int required);

/*
 * The server knows the client's address from a PROXY header written
 * before the greeting: every EHLO of the opener says the client's own
 * HELO argument helo[0..len) (a word smtpfix_identity_helo_ok accepts;
 * it must outlive o), so that the server judges it against that address,
 * as it does for a pair's session.  With XCLIENT the same holds once an
 * XCLIENT carrying ADDR was accepted (the argument comes from its id).
 * A NULL or unfit argument leaves the gateway's name.
 */
void smtpfix_opener_set_client_helo(
    struct smtpfix_opener *o, const char *helo, size_t len);

/* The XCLIENT attributes sent (SMTPFIX_XC_* bits), for the log. */
int smtpfix_opener_xclient_sent(const struct smtpfix_opener *o);

/* Where XCLIENT stands (after DONE or FAIL: its outcome). */
enum smtpfix_opener_xc smtpfix_opener_xclient(const struct smtpfix_opener *o);

/* The gateway can follow a 456 4.4.8 on this leg (an IPv6 leg with an
 * IPv4 host to retry on): the verb is said when offered. */
void smtpfix_opener_set_fallback(struct smtpfix_opener *o);

/* 1 once the server accepted IPV6-IPV4-FALLBACK on this leg. */
int smtpfix_opener_fallback_negotiated(const struct smtpfix_opener *o);

/*
 * After FAIL: 1 if the server's refusal asked for a retry over IPv4
 * (draft-martin §3: 421 or 451 with enhanced code 4.4.8, or 456 4.4.8
 * once the verb was accepted), with its last line in *line, *len (CRLF
 * dropped, into o); else 0.
 */
int smtpfix_opener_refusal_448(
    const struct smtpfix_opener *o, const char **line, size_t *len);

#endif
