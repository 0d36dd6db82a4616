/*
 * smtpfix/tlspolicy.c: the STARTTLS policy of the gateway (see
 * tlspolicy.h for the modes).  Pure: a few tables and comparisons.
 */
#include <stddef.h>
#include <string.h>

#include "smtpfix/tlspolicy.h"

static const char *const mode_names[] = {
    [SMTPFIX_TLS_PASSTHROUGH] = "passthrough",
    [SMTPFIX_TLS_TERMINATE] = "terminate",
    [SMTPFIX_TLS_STRIP] = "strip",
};

static const char *const upstream_names[] = {
    [SMTPFIX_TLSUP_OPPORTUNISTIC] = "opportunistic",
    [SMTPFIX_TLSUP_VERIFY] = "verify",
    [SMTPFIX_TLSUP_REQUIRE] = "require",
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static void
reply(struct smtpfix_tls_decision *out, const char *code_enh, const char *text,
    int close, const char *why)
{
	out->act = SMTPFIX_TLSA_REPLY;
	out->code_enh = code_enh;
	out->text = text;
	out->close = close;
	out->why = why;
}

enum smtpfix_tls_mode
smtpfix_tlspolicy_mode(const struct smtpfix_tlspolicy *pol)
{
	switch (pol->mode) {
	case SMTPFIX_TLS_TERMINATE:
		return pol->have_cert ? SMTPFIX_TLS_TERMINATE
		                      : SMTPFIX_TLS_PASSTHROUGH;
	case SMTPFIX_TLS_STRIP:
		return SMTPFIX_TLS_STRIP;
	case SMTPFIX_TLS_PASSTHROUGH:
	default:
		return SMTPFIX_TLS_PASSTHROUGH;
	}
}

enum smtpfix_tls_mode
smtpfix_tlspolicy_default_mode(int have_cert)
{
	return have_cert ? SMTPFIX_TLS_TERMINATE : SMTPFIX_TLS_PASSTHROUGH;
}

/* Whether the upstream leg may stay in clear text while the client's is
 * in TLS. */
static int
clear_upstream_ok(const struct smtpfix_tlspolicy *pol)
{
	return pol->upstream == SMTPFIX_TLSUP_OPPORTUNISTIC;
}

void
smtpfix_tlspolicy_ehlo(const struct smtpfix_tlspolicy *pol,
    const struct smtpfix_tls_state *st, struct smtpfix_tls_ehlo *out)
{
	out->drop_server = 0;
	out->offer = 0;
	switch (smtpfix_tlspolicy_mode(pol)) {
	case SMTPFIX_TLS_PASSTHROUGH:
		/* The server's offer is the one the client takes up. */
		break;
	case SMTPFIX_TLS_STRIP:
		out->drop_server = 1;
		break;
	case SMTPFIX_TLS_TERMINATE:
		/* The gateway answers STARTTLS itself, so the offer is its
		 * own.  RFC 3207 §4.2: never offered again inside TLS. */
		out->drop_server = 1;
		out->offer = !st->client_tls &&
		             (st->server_offered || clear_upstream_ok(pol));
		break;
	}
}

void
smtpfix_tlspolicy_starttls(const struct smtpfix_tlspolicy *pol,
    const struct smtpfix_tls_state *st, struct smtpfix_tls_decision *out)
{
	memset(out, 0, sizeof(*out));
	switch (smtpfix_tlspolicy_mode(pol)) {
	case SMTPFIX_TLS_PASSTHROUGH:
		out->act = SMTPFIX_TLSA_FORWARD;
		out->why = "passthrough";
		return;
	case SMTPFIX_TLS_STRIP:
		/* Not offered, and relaying it would start a TLS session
		 * the gateway cannot see into. */
		reply(
		    out, "502 5.5.1", "STARTTLS not offered", 0, "not_offered");
		return;
	case SMTPFIX_TLS_TERMINATE:
		break;
	}
	if (st->client_tls) {
		/* RFC 3207 §4.2: no second STARTTLS inside TLS; RFC 5321
		 * §4.2.2: 503 bad sequence of commands. */
		reply(out, "503 5.5.1", "TLS already active", 0,
		    "already_active");
		return;
	}
	if (st->server_offered && st->server_failed && clear_upstream_ok(pol)) {
		/* RFC 7435 §1: a server whose TLS just failed is not made to
		 * fail first again; clear text upstream, as after a failed
		 * handshake. */
		out->act = SMTPFIX_TLSA_CLIENT_ONLY;
		out->why = "client_only_remembered";
		return;
	}
	if (st->server_offered) {
		out->act = SMTPFIX_TLSA_UPSTREAM;
		out->why = "upstream";
		return;
	}
	if (clear_upstream_ok(pol)) {
		out->act = SMTPFIX_TLSA_CLIENT_ONLY;
		out->why = "client_only";
		return;
	}
	/* RFC 3207 §4: 454 "TLS not available due to temporary reason";
	 * the client decides whether to go on in clear text. */
	reply(out, "454 4.7.0",
	    "TLS not available: the server does not offer it", 0,
	    "no_upstream_tls");
}

void
smtpfix_tlspolicy_upstream_fail(const struct smtpfix_tlspolicy *pol,
    enum smtpfix_tls_fail why, struct smtpfix_tls_decision *out)
{
	memset(out, 0, sizeof(*out));
	switch (why) {
	case SMTPFIX_TLSF_REFUSED:
		/* The server is still in clear-text command mode. */
		if (smtpfix_tlspolicy_mode(pol) == SMTPFIX_TLS_TERMINATE &&
		    clear_upstream_ok(pol))
			out->act = SMTPFIX_TLSA_CLIENT_ONLY;
		else
			out->act = SMTPFIX_TLSA_RELAY;
		out->why = "server_refused";
		return;
	case SMTPFIX_TLSF_VERIFY:
		/* RFC 3463 X.7.0: other security status; 421 closes
		 * (RFC 5321 §3.8), since the upstream connection is no
		 * longer usable after an aborted handshake. */
		reply(out, "421 4.7.0",
		    "server certificate not verified, try again later", 1,
		    "verify_failed");
		return;
	case SMTPFIX_TLSF_HANDSHAKE:
	default:
		/* RFC 7435 §1, §6: opportunistic means what it means for an
		 * MTA: a server with broken or old TLS still gets the mail,
		 * over a new clear-text connection. */
		if (smtpfix_tlspolicy_mode(pol) == SMTPFIX_TLS_TERMINATE &&
		    clear_upstream_ok(pol)) {
			out->act = SMTPFIX_TLSA_RECONNECT;
			out->why = "handshake_failed_fallback_clear";
			return;
		}
		reply(out, "421 4.7.0",
		    "TLS handshake with the server failed, try again later", 1,
		    "handshake_failed");
		return;
	}
}

int
smtpfix_tlspolicy_parallel(const struct smtpfix_tlspolicy *pol)
{
	struct smtpfix_tls_decision refused, failed;

	if (smtpfix_tlspolicy_mode(pol) != SMTPFIX_TLS_TERMINATE ||
	    pol->upstream == SMTPFIX_TLSUP_VERIFY)
		return 0;
	smtpfix_tlspolicy_upstream_fail(pol, SMTPFIX_TLSF_REFUSED, &refused);
	smtpfix_tlspolicy_upstream_fail(pol, SMTPFIX_TLSF_HANDSHAKE, &failed);
	return refused.act == SMTPFIX_TLSA_CLIENT_ONLY &&
	       failed.act == SMTPFIX_TLSA_RECONNECT;
}

const char *
smtpfix_tlspolicy_mode_name(enum smtpfix_tls_mode m)
{
	return (size_t)m < NELEM(mode_names) ? mode_names[m] : "?";
}

const char *
smtpfix_tlspolicy_upstream_name(enum smtpfix_tls_upstream u)
{
	return (size_t)u < NELEM(upstream_names) ? upstream_names[u] : "?";
}

int
smtpfix_tlspolicy_mode_parse(const char *s, enum smtpfix_tls_mode *out)
{
	size_t i;

	for (i = 0; i < NELEM(mode_names); i++) {
		if (strcmp(s, mode_names[i]) == 0) {
			*out = (enum smtpfix_tls_mode)i;
			return 0;
		}
	}
	return -1;
}

int
smtpfix_tlspolicy_upstream_parse(const char *s, enum smtpfix_tls_upstream *out)
{
	size_t i;

	for (i = 0; i < NELEM(upstream_names); i++) {
		if (strcmp(s, upstream_names[i]) == 0) {
			*out = (enum smtpfix_tls_upstream)i;
			return 0;
		}
	}
	return -1;
}
