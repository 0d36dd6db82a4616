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
 */
#ifndef SMTPFIX_OPENER_H
#define SMTPFIX_OPENER_H

#include <stddef.h>
#include <stdint.h>

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
	int offers_tls;   /* the EHLO reply listed STARTTLS */
	int in_tls;       /* the upstream leg is in TLS */
	const char *why;  /* FAIL: the step, static, for the log */
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

#endif
