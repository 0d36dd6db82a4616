/*
 * smtpfix/identity.h: telling a server that trusts the gateway who really
 * connected.  Behind a translator every session comes from the gateway's
 * address (RFC 3974 Appendix A), so the server's SPF, blocklist and
 * access checks judge the gateway; a server configured to trust it can be
 * given the client's identity by one of two means:
 *  - XCLIENT (Postfix's SMTP extension): a command sent after the
 *    server's EHLO reply lists XCLIENT, carrying only the attributes that
 *    reply names, each value xtext-encoded (RFC 3461 §4);
 *  - the PROXY protocol, version 1 (text) or 2 (binary), HAProxy's
 *    specification: a header written before any SMTP byte on the
 *    upstream leg.
 * Pure: writers fill the caller's buffer; nothing is allocated.
 */
#ifndef SMTPFIX_IDENTITY_H
#define SMTPFIX_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#include "nat/addr.h"

/* How a session tells the server who connected (per pair or prefix). */
enum smtpfix_identity_mode {
	SMTPFIX_ID_NONE = 0,
	SMTPFIX_ID_XCLIENT,  /* Postfix's XCLIENT, if offered */
	SMTPFIX_ID_PROXY_V1, /* PROXY protocol header, text form */
	SMTPFIX_ID_PROXY_V2, /* PROXY protocol header, binary form */
};

/* "none", "xclient", "proxy-v1", "proxy-v2" to a mode: 0, or -1. */
int smtpfix_identity_mode_parse(const char *s, enum smtpfix_identity_mode *out);
/* The mode's name as the configuration writes it (static). */
const char *smtpfix_identity_mode_name(enum smtpfix_identity_mode m);

/* XCLIENT attributes, as bits of a mask. */
#define SMTPFIX_XC_NAME 0x01
#define SMTPFIX_XC_ADDR 0x02
#define SMTPFIX_XC_PORT 0x04
#define SMTPFIX_XC_PROTO 0x08
#define SMTPFIX_XC_HELO 0x10
#define SMTPFIX_XC_DESTADDR 0x20
#define SMTPFIX_XC_DESTPORT 0x40

/* Who connected, as the gateway saw it. */
struct smtpfix_identity {
	struct nat_addr client;
	unsigned client_port;
	struct nat_addr dest; /* the address the client reached */
	unsigned dest_port;
	const char *helo; /* the client's own HELO/EHLO argument, as sent;
	                     NULL or empty if none yet */
	size_t helo_len;
	const char *name; /* verified client host name, or NULL:
	                     "[UNAVAILABLE]" is sent */
	size_t name_len;
	int esmtp; /* the client said EHLO (PROTO=ESMTP) */
};

/*
 * The attributes an EHLO reply line offers: line[0..len) is one reply
 * line ("250-XCLIENT NAME ADDR PORT\r\n" or its "250 " form).  Returns
 * the mask of known attributes listed (unknown ones are ignored), or -1
 * if the line is not the XCLIENT keyword.
 */
int smtpfix_xclient_offer(const char *line, size_t len);

/*
 * Writes "XCLIENT attr=value ...\r\n" with the attributes in mask (only
 * those; the offer decides), values xtext-encoded (RFC 3461 §4), into
 * dst of capacity cap.  A HELO argument that would not fit, or holds
 * bytes outside printable ASCII, is sent as "[UNAVAILABLE]" rather than
 * cut.  Returns the length, or 0 if even that does not fit in cap
 * (512 always suffices: RFC 5321 §4.5.3.1.4).
 */
size_t smtpfix_xclient_build(
    const struct smtpfix_identity *id, int mask, char *dst, size_t cap);

/* 1 if a HELO argument arg[0..len) may be passed on as the client's
 * own: 1 to 255 octets (RFC 1035 §2.3.4, Postfix's limit for the
 * XCLIENT HELO value), printable ASCII without blanks. */
int smtpfix_identity_helo_ok(const char *arg, size_t len);

/* "PROXY TCP4 src dst sport dport\r\n" (TCP6 for IPv6); both addresses
 * must be of one family (the caller maps them).  Returns the length, or
 * 0 if cap is too small (108 always suffices) or the families differ. */
size_t smtpfix_proxy_v1(
    const struct smtpfix_identity *id, char *dst, size_t cap);

/* The binary version 2 header, command PROXY, TCP over IPv4 or IPv6, no
 * TLVs.  Returns its length (28 or 52), or 0 as above. */
size_t smtpfix_proxy_v2(
    const struct smtpfix_identity *id, uint8_t *dst, size_t cap);

#endif
