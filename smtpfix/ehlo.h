/*
 * smtpfix/ehlo.h: which SMTP service extensions (RFC 5321 §2.2) and
 * which command verbs pass between the two legs of the gateway.  Pure: a
 * few constant tables and comparisons.
 *
 * The EHLO reply the client sees is an allowlist: a keyword stays only if
 * the gateway keeps its promise for the whole session (it relays the
 * extension's parameters and data unchanged and frames its commands
 * itself).  Everything else is dropped, and notably:
 *  - CHUNKING, BINARYMIME (RFC 3030): BDAT cannot be framed safely;
 *  - XCLIENT, XFORWARD: they let the client set the identity the server
 *    logs and trusts for the gateway's connection;
 *  - IPV6-IPV4-FALLBACK (draft-martin-smtp-ipv6-to-ipv4-fallback §3.1):
 *    the client already came over the other family, so following it
 *    loops back through the gateway;
 *  - any keyword the gateway does not know.
 * STARTTLS is decided by the TLS policy (smtpfix/tlspolicy.h), not here.
 *
 * A verb is relayed only when it belongs to RFC 5321 itself or to a kept
 * extension; the gateway answers every other verb itself.
 */
#ifndef SMTPFIX_EHLO_H
#define SMTPFIX_EHLO_H

#include <stddef.h>

enum smtpfix_ehlo_kw {
	SMTPFIX_KW_KEEP = 0, /* relayed to the client */
	SMTPFIX_KW_DROP,     /* removed from the reply */
	SMTPFIX_KW_STARTTLS, /* the TLS policy decides */
};

/*
 * Classifies one line of a 2xx EHLO reply after the first (RFC 5321
 * §4.1.1.1: ehlo-line = ehlo-keyword *( SP ehlo-param )).  line[0..len)
 * is the text after the code and its separator, CRLF excluded; the
 * keyword ends at the first blank (or '=', the pre-standard
 * "AUTH=LOGIN" form, which is dropped: the standard AUTH line stays).
 */
enum smtpfix_ehlo_kw smtpfix_ehlo_keyword(const char *line, size_t len);

enum smtpfix_verb_class {
	SMTPFIX_VERB_RELAY = 0,    /* RFC 5321 or a kept extension */
	SMTPFIX_VERB_NOT_OFFERED,  /* a known extension we never offer:
	                              502 5.5.1 (RFC 5321 §4.2.4) */
	SMTPFIX_VERB_UNRECOGNIZED, /* 500 5.5.1 (RFC 5321 §4.2.4) */
};

/*
 * Classifies the verb of command line[0..len) (CRLF excluded; leading
 * blanks skipped).  *name is set to a static upper-case name for a
 * known verb, NULL otherwise (peer bytes are never returned).
 */
enum smtpfix_verb_class smtpfix_ehlo_verb(
    const char *line, size_t len, const char **name);

/*
 * The reply code the client gets for a server's code.  456 is defined
 * only for a client that negotiated IPV6-IPV4-FALLBACK (draft-martin
 * §3.1, §3.2: "it is not sure that sender-SMTP without this service
 * extension would behave as expected"), which the gateway never offers:
 * it becomes 451 (RFC 5321 §4.2.2, local error, try again later).
 */
unsigned smtpfix_ehlo_reply_code(unsigned code);

#endif
