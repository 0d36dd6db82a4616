/*
 * smtpfix/front.h: route mode's own side of the dialogue with the client.
 * In route mode no server is known when the client connects: the gateway
 * greets, answers EHLO and MAIL itself, and only the first RCPT names the
 * domain whose servers the message goes to (draft-mrosenau-email-ipv4-to-6
 * §3: the tunnel server forwards each mail to the server really
 * responsible for it).  This module is that dialogue, up to the moment a
 * recipient's domain has to be resolved; the gateway then opens the
 * upstream leg, replays the MAIL line stored here and hands the session
 * to smtpfix/stream.h.  Pure: no I/O, no allocation, no clock.
 *
 * The EHLO reply offers only what the gateway can keep whatever server
 * the recipient's domain turns out to have (RFC 5321 §4.1.1.1):
 *  - PIPELINING (RFC 2920): the gateway answers in order here, and
 *    the relay keeps order with its reply queue;
 *  - SIZE with the configured limit (RFC 1870): checked here at MAIL,
 *    and replayed upstream, where a smaller limit refuses it at RCPT;
 *  - STARTTLS (RFC 3207) when a certificate is configured: the client
 *    leg is the gateway's own;
 *  - never 8BITMIME, SMTPUTF8, DSN, CHUNKING, AUTH, XCLIENT or XFORWARD:
 *    a server behind the gateway may lack them (RFC 6152 forbids
 *    relaying 8-bit data to a server that lacks 8BITMIME, RFC 6531 §3.7
 *    the same for SMTPUTF8), and the others would let the client speak
 *    for the gateway.  Their MAIL and RCPT parameters get 555 5.5.4
 *    (RFC 5321 §4.1.1.11).
 */
#ifndef SMTPFIX_FRONT_H
#define SMTPFIX_FRONT_H

#include <stddef.h>
#include <stdint.h>

#include "smtpfix/line.h"

struct smtpfix_front_policy {
	const char *fqdn; /* the gateway's name, in every reply */
	size_t fqdn_len;
	uint64_t size_max; /* SIZE value offered and enforced (RFC 1870);
	                      0: SIZE not offered, no limit here */
	int starttls;      /* offer STARTTLS (a certificate exists) */
	size_t cmd_max;    /* command line cap, CRLF included (at least
	                      RFC 5321 §4.5.3.1.4's 512) */
	int hygiene;       /* refuse source routes and scoped literals
	                      (RFC 3974 §6, §7) */
};

enum smtpfix_front_act {
	SMTPFIX_FRONT_NONE = 0, /* need more bytes; consumed == 0 */
	SMTPFIX_FRONT_REPLY,    /* write emit to the client */
	SMTPFIX_FRONT_TLS,      /* write emit (220), discard the client's
	                           unread bytes (RFC 3207 §4), run the
	                           handshake, then smtpfix_front_tls_done */
	SMTPFIX_FRONT_ROUTE,    /* a RCPT names domain: nothing consumed;
	                           resolve it and open the upstream leg (the
	                           RCPT line stays unread for the relay) */
	SMTPFIX_FRONT_CLOSE,    /* write emit, then close the session */
};

struct smtpfix_front_step {
	enum smtpfix_front_act act;
	size_t consumed;
	const char *emit; /* static text, or buf; valid until the next
	                     step */
	size_t emit_len;
	const char *verb;            /* upper case, static; NULL if none */
	const char *reason;          /* why a command was refused, static
	                                token for the log; NULL if not */
	struct smtpfix_span domain;  /* ROUTE: the recipient's domain, into
	                                the input */
	struct smtpfix_span mailbox; /* ROUTE: the whole recipient */
	char buf[512];
};

struct smtpfix_front {
	const struct smtpfix_front_policy *pol;
	char *mail;      /* caller's storage for the MAIL line */
	size_t mail_cap; /* at least pol->cmd_max */
	size_t mail_len; /* 0: no transaction open */
	uint8_t helo;    /* 0 none, 1 HELO, 2 EHLO */
	uint8_t tls;     /* client leg in TLS */
	uint8_t closed;
	/* The client's HELO/EHLO argument, for XCLIENT's HELO attribute
	 * (smtpfix/identity.h); kept only when it may be passed on
	 * (smtpfix_identity_helo_ok), else empty. */
	uint8_t helo_len;
	char helo_arg[255];
};

/*
 * Prepares f for a new client.  mail/mail_cap is the caller's storage for
 * the MAIL line to replay (at least pol->cmd_max bytes); it and pol must
 * outlive f.
 */
void smtpfix_front_init(struct smtpfix_front *f,
    const struct smtpfix_front_policy *pol, char *mail, size_t mail_cap);

/* The greeting the gateway sends at once: "220 <fqdn> ESMTP ...". */
size_t smtpfix_front_greeting(
    const struct smtpfix_front *f, char *dst, size_t cap);

/*
 * One step over the unread client input in[0..len).  Always fills *out.
 * Commands are answered one at a time, in order: a pipelined group is
 * answered line by line as the caller steps again.
 */
void smtpfix_front_step(struct smtpfix_front *f, const char *in, size_t len,
    struct smtpfix_front_step *out);

/* The client's handshake after FRONT_TLS ended; ok == 0 closes. RFC 3207
 * §4.2: the client starts again with EHLO, so the state goes back to the
 * greeting's. */
void smtpfix_front_tls_done(struct smtpfix_front *f, int ok);

/* The stored MAIL line (CRLF included) of the open transaction, to
 * replay upstream; *len 0 if none. */
const char *smtpfix_front_mail(const struct smtpfix_front *f, size_t *len);

/* 1 once the client said EHLO (not HELO): the relay may pass ESMTP
 * parameters. */
int smtpfix_front_esmtp(const struct smtpfix_front *f);

/* The client's HELO/EHLO argument as sent, when it is one XCLIENT may
 * pass on (1 to 255 printable octets, no blanks); NULL and *len 0 if
 * none was given since the greeting (or the TLS handshake), or it was
 * not such a word. */
const char *smtpfix_front_helo(const struct smtpfix_front *f, size_t *len);

/* A transaction ended (its data was answered, or the relay saw RSET):
 * the next MAIL is the front's again. */
void smtpfix_front_reset(struct smtpfix_front *f);

#endif
