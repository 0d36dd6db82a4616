/*
 * smtpfix/line.c: SMTP line framing (RFC 5321 §2.3.8).  Pure.
 */
#include <stddef.h>

#include "smtpfix/line.h"

enum smtpfix_rc
smtpfix_line_find(const char *buf, size_t len, size_t cap, size_t *used)
{
	size_t i, lim;
	int bad;

	*used = 0;
	/* Only the first cap bytes can hold a line; a CRLF whose LF lies
	 * at index cap would make the line cap + 1 bytes long. */
	lim = len < cap ? len : cap;
	bad = 0;
	for (i = 0; i < lim; i++) {
		switch (buf[i]) {
		case '\r':
			if (i + 1 >= lim) {
				/* The byte after this CR is unknown, or lies
				 * past the cap. */
				if (len >= cap)
					return SMTPFIX_TOOLONG;
				return SMTPFIX_PARTIAL;
			}
			if (buf[i + 1] == '\n') {
				*used = i + 2;
				return bad ? SMTPFIX_BADCHAR : SMTPFIX_OK;
			}
			/* RFC 5321 §2.3.8: a CR alone is not a line end. */
			bad = 1;
			break;
		case '\n':
			/* RFC 5321 §2.3.8: nor is an LF alone. */
			bad = 1;
			break;
		case '\0':
			bad = 1;
			break;
		default:
			break;
		}
	}
	if (len >= cap)
		return SMTPFIX_TOOLONG;
	return SMTPFIX_PARTIAL;
}
