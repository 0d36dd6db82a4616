/*
 * smtpfix/tlsmemo.h: servers whose TLS failed lately, so that the next
 * session to them goes to clear text at once instead of failing first
 * (RFC 7435 §1: opportunistic security falls back to clear text; an MTA
 * that has just failed a handshake with a server does not retry TLS with
 * it for a while).  Pure: a fixed table the caller owns (one per process),
 * no allocation, no clock (now is an argument).
 *
 * The table knows nothing of TLS: the gateway keeps a second one for
 * servers that asked for a retry over IPv4 (draft-martin-smtp-ipv6-to-
 * ipv4-fallback, Appendix A.3: such refusals persist).
 *
 * Keys are the caller's bytes (the gateway uses "[address]:port"); a key
 * longer than SMTPFIX_TLSMEMO_KEY_MAX is never stored.  The table holds at
 * most SMTPFIX_TLSMEMO_SLOTS entries: when the probed slots are full, the
 * entry that expires first goes.
 */
#ifndef SMTPFIX_TLSMEMO_H
#define SMTPFIX_TLSMEMO_H

#include <stddef.h>
#include <stdint.h>

#define SMTPFIX_TLSMEMO_SLOTS 256
#define SMTPFIX_TLSMEMO_KEY_MAX 64
#define SMTPFIX_TLSMEMO_PROBE 8 /* slots looked at per key */

struct smtpfix_tlsmemo_ent {
	uint64_t until; /* 0: empty */
	uint8_t len;
	char key[SMTPFIX_TLSMEMO_KEY_MAX];
};

struct smtpfix_tlsmemo {
	struct smtpfix_tlsmemo_ent e[SMTPFIX_TLSMEMO_SLOTS];
};

/* Empties m. */
void smtpfix_tlsmemo_init(struct smtpfix_tlsmemo *m);

/* Remembers key[0..len) until now + ttl_s (seconds); ttl_s 0 does
 * nothing.  A key already there gets the new time. */
void smtpfix_tlsmemo_note(struct smtpfix_tlsmemo *m, const char *key,
    size_t len, uint64_t now, uint64_t ttl_s);

/* 1 if key[0..len) was noted and has not expired at now. */
int smtpfix_tlsmemo_known(
    const struct smtpfix_tlsmemo *m, const char *key, size_t len, uint64_t now);

#endif
