/*
 * smtpfix/tlspolicy.h: what the gateway does about STARTTLS (RFC 3207),
 * decided from the per-pair policy and what the session has seen.  Pure:
 * no OpenSSL, no I/O, no state; every answer is a function of its inputs.
 *
 * Three modes per pair (or listener):
 *  - terminate: the gateway is the TLS server for the client and the TLS
 *    client for the server, so it sees (and rewrites) the EHLO the client
 *    sends inside TLS (RFC 3207 §4.2: the client must EHLO again);
 *  - passthrough: STARTTLS and its 220 are relayed and the rest of the
 *    session is opaque (the post-TLS EHLO is not rewritten);
 *  - strip: STARTTLS is never offered to the client, so the whole
 *    session stays in clear text and is rewritten (a downgrade the
 *    operator chooses).
 *
 * In terminate mode the upstream leg is:
 *  - opportunistic: STARTTLS upstream when the server offers it, no
 *    certificate check (as MTAs do, RFC 7435); a client that asks for
 *    TLS still gets it when the server offers none (the upstream leg then
 *    stays in clear text).  When the upstream handshake fails, the
 *    gateway connects to the server again and goes on in clear text
 *    upstream (RFC 7435 §1: "it is better to fall back to cleartext than
 *    to not communicate"), and a server remembered for that skips
 *    STARTTLS for a while;
 *  - verify: as require, and the server's certificate must verify against
 *    the configured CA and name;
 *  - require: what the client sends inside TLS never travels upstream in
 *    clear text: STARTTLS is offered to the client only when the server
 *    offers it too, and a client's STARTTLS gets a 4xx when it does not.
 */
#ifndef SMTPFIX_TLSPOLICY_H
#define SMTPFIX_TLSPOLICY_H

enum smtpfix_tls_mode {
	SMTPFIX_TLS_PASSTHROUGH = 0,
	SMTPFIX_TLS_TERMINATE,
	SMTPFIX_TLS_STRIP,
};

enum smtpfix_tls_upstream {
	SMTPFIX_TLSUP_OPPORTUNISTIC = 0,
	SMTPFIX_TLSUP_VERIFY,
	SMTPFIX_TLSUP_REQUIRE,
};

/* The policy of one pair, from the configuration. */
struct smtpfix_tlspolicy {
	enum smtpfix_tls_mode mode;
	enum smtpfix_tls_upstream upstream;
	int have_cert; /* a certificate is loaded for this pair */
};

/* What the session knows when it asks. */
struct smtpfix_tls_state {
	int server_offered; /* the server's last EHLO reply had STARTTLS */
	int client_tls;     /* the client leg is already inside TLS */
	int server_failed;  /* its TLS failed lately (the gateway keeps a
	                       note for a while): opportunistic skips it */
};

/*
 * The mode in force: terminate needs a certificate; without one it falls
 * back to passthrough, so that a client asking for TLS still gets it
 * end to end (the configuration refuses that case; this is the pure
 * answer should it ever be asked).
 */
enum smtpfix_tls_mode smtpfix_tlspolicy_mode(
    const struct smtpfix_tlspolicy *pol);

/* The default mode of a pair: terminate where a certificate is
 * configured, else passthrough (today's behaviour). */
enum smtpfix_tls_mode smtpfix_tlspolicy_default_mode(int have_cert);

/* The STARTTLS keyword in the EHLO reply to the client. */
struct smtpfix_tls_ehlo {
	int drop_server; /* remove the server's own STARTTLS line */
	int offer;       /* add the gateway's STARTTLS line */
};

/*
 * Fills *out for a 2xx reply to EHLO.  drop_server depends on the policy
 * only, so a filter can apply it line by line; offer needs
 * st->server_offered, known once the reply's last line has been seen.
 */
void smtpfix_tlspolicy_ehlo(const struct smtpfix_tlspolicy *pol,
    const struct smtpfix_tls_state *st, struct smtpfix_tls_ehlo *out);

enum smtpfix_tls_act {
	SMTPFIX_TLSA_FORWARD = 0, /* relay the line; on the server's 220
	                             the session becomes opaque */
	SMTPFIX_TLSA_UPSTREAM,    /* send STARTTLS upstream; on its 220
	                             handshake upstream, then answer the
	                             client 220 and handshake with it */
	SMTPFIX_TLSA_CLIENT_ONLY, /* answer the client 220 and handshake
	                             with it; the upstream leg stays clear */
	SMTPFIX_TLSA_REPLY,       /* answer code_enh/text ourselves; close
	                             after it when close is set */
	SMTPFIX_TLSA_RELAY,       /* relay the server's reply unchanged;
	                             the session goes on in clear text */
	SMTPFIX_TLSA_RECONNECT,   /* after a failed upstream handshake:
	                             connect to the server again, in clear
	                             text, and give the client its TLS */
};

struct smtpfix_tls_decision {
	enum smtpfix_tls_act act;
	const char *code_enh; /* REPLY: "454 4.7.0" etc., static */
	const char *text;     /* REPLY: reply text, static */
	int close;            /* REPLY: close both legs after it */
	const char *why;      /* for the log: a static token such as
	                         "upstream" or "already_active" */
};

/* The client sent STARTTLS (without parameters: RFC 3207 §4 answers a
 * STARTTLS with parameters 501 whatever the policy). */
void smtpfix_tlspolicy_starttls(const struct smtpfix_tlspolicy *pol,
    const struct smtpfix_tls_state *st, struct smtpfix_tls_decision *out);

/* Why the upstream leg could not enter TLS after an UPSTREAM decision. */
enum smtpfix_tls_fail {
	SMTPFIX_TLSF_REFUSED = 0, /* the server answered STARTTLS with
	                             something other than 220 */
	SMTPFIX_TLSF_HANDSHAKE,   /* the TLS handshake with it failed */
	SMTPFIX_TLSF_VERIFY,      /* its certificate did not verify */
};

/* What the client gets when the upstream leg failed as said. */
void smtpfix_tlspolicy_upstream_fail(const struct smtpfix_tlspolicy *pol,
    enum smtpfix_tls_fail why, struct smtpfix_tls_decision *out);

/*
 * 1 if the client may get its 220 to STARTTLS at once, its handshake
 * running beside the upstream STARTTLS and handshake (no round trip to
 * the server on the client's path): only when no outcome of the
 * upstream leg needs a word to the client in clear text, i.e. a refusal
 * leaves the client in TLS over a clear upstream and a failed handshake
 * reconnects in clear (opportunistic).  Under require and verify the
 * upstream outcome is known before the client's 220, so a refusal is
 * said before anything of the client's is encrypted (RFC 3207 §4).
 */
int smtpfix_tlspolicy_parallel(const struct smtpfix_tlspolicy *pol);

/* Names for configuration and logs ("terminate", "opportunistic"...);
 * static strings.  The parsers return 0 and set *out, or -1. */
const char *smtpfix_tlspolicy_mode_name(enum smtpfix_tls_mode m);
const char *smtpfix_tlspolicy_upstream_name(enum smtpfix_tls_upstream u);
int smtpfix_tlspolicy_mode_parse(const char *s, enum smtpfix_tls_mode *out);
int smtpfix_tlspolicy_upstream_parse(
    const char *s, enum smtpfix_tls_upstream *out);

#endif
