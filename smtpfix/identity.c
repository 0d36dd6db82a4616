/*
 * smtpfix/identity.c: XCLIENT commands and PROXY protocol headers.  See
 * smtpfix/identity.h.
 *
 *   smtpfix_xclient_offer   the EHLO keyword line (RFC 5321 §4.1.1.1)
 *   smtpfix_xclient_build   XCLIENT, values in xtext (RFC 3461 §4)
 *   smtpfix_proxy_v1/v2     HAProxy's PROXY protocol, sections 2.1, 2.2
 */
#include <sys/socket.h>

#include <arpa/inet.h>

#include <stdio.h>
#include <string.h>

#include "smtpfix/chars.h"
#include "smtpfix/identity.h"

static const struct {
	const char *name;
	int bit;
} attrs[] = {
    {"NAME", SMTPFIX_XC_NAME},
    {"ADDR", SMTPFIX_XC_ADDR},
    {"PORT", SMTPFIX_XC_PORT},
    {"PROTO", SMTPFIX_XC_PROTO},
    {"HELO", SMTPFIX_XC_HELO},
    {"DESTADDR", SMTPFIX_XC_DESTADDR},
    {"DESTPORT", SMTPFIX_XC_DESTPORT},
};
#define NATTRS (sizeof(attrs) / sizeof(attrs[0]))

int
smtpfix_xclient_offer(const char *line, size_t len)
{
	size_t i, s, a;
	int mask = 0;

	/* "250-" or "250 ", the keyword, then blank-separated params. */
	if (len < 4 + 7 || memcmp(line, "250", 3) != 0 ||
	    (line[3] != '-' && line[3] != ' '))
		return -1;
	if (len >= 2 && line[len - 2] == '\r')
		len -= 2;
	for (i = 4; i < len && !smtpfix_is_wsp((unsigned char)line[i]); i++)
		;
	if (!smtpfix_word_eq(line + 4, i - 4, "XCLIENT"))
		return -1;
	while (i < len) {
		while (i < len && smtpfix_is_wsp((unsigned char)line[i]))
			i++;
		s = i;
		while (i < len && !smtpfix_is_wsp((unsigned char)line[i]))
			i++;
		for (a = 0; a < NATTRS; a++)
			if (smtpfix_word_eq(line + s, i - s, attrs[a].name))
				mask |= attrs[a].bit;
	}
	return mask;
}

/* Appends text; 0, or -1 when it does not fit (dst[*n] stays as is). */
static int
put(char *dst, size_t cap, size_t *n, const char *s, size_t len)
{
	if (len >= cap - *n)
		return -1;
	memcpy(dst + *n, s, len);
	*n += len;
	return 0;
}

/* RFC 3461 §4: xtext is "+" and two upper-case hex digits for any octet
 * outside 33-126, and for "+" and "=". */
static int
put_xtext(char *dst, size_t cap, size_t *n, const char *s, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i;
	char e[3];

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 33 && c <= 126 && c != '+' && c != '=') {
			if (put(dst, cap, n, s + i, 1) != 0)
				return -1;
			continue;
		}
		e[0] = '+';
		e[1] = hex[c >> 4];
		e[2] = hex[c & 15];
		if (put(dst, cap, n, e, 3) != 0)
			return -1;
	}
	return 0;
}

/* XCLIENT's address form: IPv4 dotted, IPv6 with the "IPV6:" tag. */
static int
put_addr(char *dst, size_t cap, size_t *n, const struct nat_addr *a)
{
	char buf[INET6_ADDRSTRLEN + 8];
	int l;

	if (a->family == AF_INET6 && put(dst, cap, n, "IPV6:", 5) != 0)
		return -1;
	l = nat_addr_fmt(a, buf, sizeof(buf));
	return l < 0 ? -1 : put(dst, cap, n, buf, (size_t)l);
}

static int
put_port(char *dst, size_t cap, size_t *n, unsigned port)
{
	char buf[8];
	int l = snprintf(buf, sizeof(buf), "%u", port & 0xffff);

	return l < 0 ? -1 : put(dst, cap, n, buf, (size_t)l);
}

static const char *const mode_names[] = {
    [SMTPFIX_ID_NONE] = "none",
    [SMTPFIX_ID_XCLIENT] = "xclient",
    [SMTPFIX_ID_PROXY_V1] = "proxy-v1",
    [SMTPFIX_ID_PROXY_V2] = "proxy-v2",
};
#define NMODES (sizeof(mode_names) / sizeof(mode_names[0]))

int
smtpfix_identity_mode_parse(const char *s, enum smtpfix_identity_mode *out)
{
	size_t i;

	for (i = 0; i < NMODES; i++)
		if (strcmp(s, mode_names[i]) == 0) {
			*out = (enum smtpfix_identity_mode)i;
			return 0;
		}
	return -1;
}

const char *
smtpfix_identity_mode_name(enum smtpfix_identity_mode m)
{
	return (unsigned)m < NMODES ? mode_names[m] : "?";
}

/* A HELO argument goes only if it is printable ASCII (it is the client's
 * own bytes, bound for another peer) and not empty. */
int
smtpfix_identity_helo_ok(const char *arg, size_t len)
{
	size_t i;

	if (arg == NULL || len == 0 || len > 255)
		return 0;
	for (i = 0; i < len; i++)
		if ((unsigned char)arg[i] <= 32 || (unsigned char)arg[i] > 126)
			return 0;
	return 1;
}

size_t
smtpfix_xclient_build(
    const struct smtpfix_identity *id, int mask, char *dst, size_t cap)
{
	static const char unav[] = "[UNAVAILABLE]";
	size_t n = 0, a;
	int rc = 0;

	if (cap < 2 || put(dst, cap, &n, "XCLIENT", 7) != 0)
		return 0;
	for (a = 0; a < NATTRS && rc == 0; a++) {
		if (!(mask & attrs[a].bit))
			continue;
		rc |= put(dst, cap, &n, " ", 1);
		rc |= put(dst, cap, &n, attrs[a].name, strlen(attrs[a].name));
		rc |= put(dst, cap, &n, "=", 1);
		if (rc != 0)
			break;
		switch (attrs[a].bit) {
		case SMTPFIX_XC_NAME:
			if (id->name != NULL && id->name_len > 0)
				rc = put_xtext(
				    dst, cap, &n, id->name, id->name_len);
			else
				rc = put(dst, cap, &n, unav, sizeof(unav) - 1);
			break;
		case SMTPFIX_XC_ADDR:
			rc = put_addr(dst, cap, &n, &id->client);
			break;
		case SMTPFIX_XC_PORT:
			rc = put_port(dst, cap, &n, id->client_port);
			break;
		case SMTPFIX_XC_PROTO:
			rc = id->esmtp ? put(dst, cap, &n, "ESMTP", 5)
			               : put(dst, cap, &n, "SMTP", 4);
			break;
		case SMTPFIX_XC_HELO:
			if (smtpfix_identity_helo_ok(id->helo, id->helo_len)) {
				size_t mark = n;

				if (put_xtext(dst, cap, &n, id->helo,
				        id->helo_len) == 0)
					break;
				n = mark;
			}
			rc = put(dst, cap, &n, unav, sizeof(unav) - 1);
			break;
		case SMTPFIX_XC_DESTADDR:
			rc = put_addr(dst, cap, &n, &id->dest);
			break;
		case SMTPFIX_XC_DESTPORT:
			rc = put_port(dst, cap, &n, id->dest_port);
			break;
		}
	}
	if (rc != 0 || put(dst, cap, &n, "\r\n", 2) != 0)
		return 0;
	return n;
}

size_t
smtpfix_proxy_v1(const struct smtpfix_identity *id, char *dst, size_t cap)
{
	char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
	int n;

	if (id->client.family != id->dest.family ||
	    nat_addr_fmt(&id->client, s, sizeof(s)) < 0 ||
	    nat_addr_fmt(&id->dest, d, sizeof(d)) < 0)
		return 0;
	n = snprintf(dst, cap, "PROXY %s %s %s %u %u\r\n",
	    id->client.family == AF_INET ? "TCP4" : "TCP6", s, d,
	    id->client_port & 0xffff, id->dest_port & 0xffff);
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

size_t
smtpfix_proxy_v2(const struct smtpfix_identity *id, uint8_t *dst, size_t cap)
{
	static const uint8_t sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
	    0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
	size_t alen, n;

	if (id->client.family != id->dest.family)
		return 0;
	alen = id->client.family == AF_INET ? 4 : 16;
	n = 16 + 2 * alen + 4;
	if (cap < n)
		return 0;
	memcpy(dst, sig, 12);
	dst[12] = 0x21; /* version 2, command PROXY */
	dst[13] = id->client.family == AF_INET ? 0x11 : 0x21; /* TCP over
	                                                         v4/v6 */
	dst[14] = (uint8_t)((n - 16) >> 8);
	dst[15] = (uint8_t)(n - 16);
	memcpy(dst + 16,
	    alen == 4 ? (const void *)&id->client.u.v4
	              : (const void *)&id->client.u.v6,
	    alen);
	memcpy(dst + 16 + alen,
	    alen == 4 ? (const void *)&id->dest.u.v4
	              : (const void *)&id->dest.u.v6,
	    alen);
	dst[16 + 2 * alen] = (uint8_t)(id->client_port >> 8);
	dst[16 + 2 * alen + 1] = (uint8_t)id->client_port;
	dst[16 + 2 * alen + 2] = (uint8_t)(id->dest_port >> 8);
	dst[16 + 2 * alen + 3] = (uint8_t)id->dest_port;
	return n;
}
