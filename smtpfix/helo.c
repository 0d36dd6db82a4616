/*
 * smtpfix/helo.c: HELO/EHLO parsing and rewriting (RFC 5321 §4.1.1.1,
 * RFC 3974 Appendix A).  Pure.
 */
#include <stddef.h>
#include <string.h>

#include "smtpfix/chars.h"
#include "smtpfix/helo.h"

enum smtpfix_rc
smtpfix_helo_parse(const char *line, size_t len, struct smtpfix_helo *out)
{
	size_t i, end, v, a;

	memset(out, 0, sizeof(*out));
	/* The line ends in CRLF; anything else is not a whole line. */
	if (len < 2 || line[len - 2] != '\r' || line[len - 1] != '\n')
		return SMTPFIX_SYNTAX;
	end = len - 2;

	/* Servers split commands on white space (and some skip leading
	 * blanks); take the verb as widely as they do, so a line a server
	 * reads as EHLO is never relayed unrewritten. */
	for (i = 0; i < end && smtpfix_is_wsp(line[i]); i++)
		continue;
	v = i;
	while (i < end && !smtpfix_is_wsp(line[i]))
		i++;
	if (i - v != 4)
		return SMTPFIX_SYNTAX;
	if (smtpfix_upper(line[v + 2]) != 'L' ||
	    smtpfix_upper(line[v + 3]) != 'O')
		return SMTPFIX_SYNTAX;
	if (smtpfix_upper(line[v]) == 'E' && smtpfix_upper(line[v + 1]) == 'H')
		out->ehlo = 1;
	else if (smtpfix_upper(line[v]) == 'H' &&
	         smtpfix_upper(line[v + 1]) == 'E')
		out->ehlo = 0;
	else
		return SMTPFIX_SYNTAX;
	out->verb.p = line + v;
	out->verb.len = 4;

	/* RFC 5321 §4.1.1.1: "EHLO" SP ( Domain / address-literal ).  The
	 * argument is the first word; the server judges the rest. */
	while (i < end && smtpfix_is_wsp(line[i]))
		i++;
	a = i;
	while (i < end && !smtpfix_is_wsp(line[i]))
		i++;
	out->arg.p = line + a;
	out->arg.len = i - a;
	out->used = len;
	return SMTPFIX_OK;
}

int
smtpfix_helo_is_literal(const char *arg, size_t len)
{
	/* RFC 5321 §4.1.3: address-literal = "[" ( IPv4-address-literal /
	 * IPv6-address-literal / General-address-literal ) "]". */
	return len >= 2 && arg[0] == '[' && arg[len - 1] == ']';
}

enum smtpfix_rc
smtpfix_helo_rewrite(const struct smtpfix_helo *h, enum smtpfix_helo_mode mode,
    const char *fqdn, size_t fqdn_len, char *dst, size_t cap, size_t *dst_len)
{
	size_t need;

	*dst_len = 0;
	switch (mode) {
	case SMTPFIX_HELO_ALWAYS:
		break;
	case SMTPFIX_HELO_LITERALS:
		if (!smtpfix_helo_is_literal(h->arg.p, h->arg.len))
			return SMTPFIX_OK;
		break;
	case SMTPFIX_HELO_OFF:
	default:
		return SMTPFIX_OK;
	}
	/* No argument: relay as is and let the server answer 501
	 * (RFC 5321 §4.1.1.1 makes the argument mandatory). */
	if (h->arg.len == 0)
		return SMTPFIX_OK;

	need = h->verb.len + 1 + fqdn_len + 2;
	if (need > cap)
		return SMTPFIX_TOOLONG;
	memcpy(dst, h->verb.p, h->verb.len);
	dst[h->verb.len] = ' ';
	memcpy(dst + h->verb.len + 1, fqdn, fqdn_len);
	dst[need - 2] = '\r';
	dst[need - 1] = '\n';
	*dst_len = need;
	return SMTPFIX_OK;
}
