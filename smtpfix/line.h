/*
 * smtpfix/line.h: SMTP line framing (RFC 5321 §2.3.8: lines end in CRLF).
 * Pure: spans point into the caller's buffer, nothing is allocated.
 */
#ifndef SMTPFIX_LINE_H
#define SMTPFIX_LINE_H

#include <stddef.h>

enum smtpfix_rc {
	SMTPFIX_OK = 0,
	SMTPFIX_PARTIAL, /* no CRLF yet: read more */
	SMTPFIX_TOOLONG, /* no CRLF within the cap */
	SMTPFIX_BADCHAR, /* bare CR, bare LF or NUL before the CRLF */
	SMTPFIX_SYNTAX,  /* a whole line that does not parse */
};

struct smtpfix_span {
	const char *p; /* into the caller's buffer */
	size_t len;
};

/*
 * Finds the line at the front of buf[0..len).  cap is the longest line
 * accepted, CRLF included.
 *  SMTPFIX_OK:       *used = line length including CRLF.
 *  SMTPFIX_PARTIAL:  no CRLF in buf and len < cap; *used = 0.
 *  SMTPFIX_TOOLONG:  no CRLF within cap bytes; *used = 0.
 *  SMTPFIX_BADCHAR:  a CRLF ends the line but a bare CR, bare LF or NUL
 *                    comes before it (RFC 5321 §2.3.8 forbids them; they
 *                    are how SMTP smuggling hides a second command);
 *                    *used = length up to and including that CRLF.
 */
enum smtpfix_rc smtpfix_line_find(
    const char *buf, size_t len, size_t cap, size_t *used);

#endif
