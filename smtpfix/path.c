/*
 * smtpfix/path.c: MAIL FROM / RCPT TO path checks (RFC 5321 §4.1.1.2,
 * §4.1.1.3, §4.1.2, §4.1.3; RFC 3974 §6, §7).  Pure.
 *
 * Only as much of the grammar is parsed as finding the literals needs:
 * the local part is skipped with its quoting honoured (a quoted "@" or
 * ">" must not end it), domain names are taken as runs of name
 * characters, and every "[...]" literal, in the mailbox or in a source
 * route, is checked.
 */
#include <sys/socket.h>

#include <netinet/in.h>

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "nat/addr.h"
#include "nat/scope.h"
#include "smtpfix/chars.h"
#include "smtpfix/path.h"

/* RFC 5321 §4.1.3: the tag of an IPv6 literal. */
#define V6_TAG "IPv6:"
#define V6_TAG_LEN (sizeof(V6_TAG) - 1)

/* What a parsing step left behind; the worst literal seen wins. */
struct path_state {
	enum smtpfix_path_class lit; /* OK, SCOPED_LITERAL or BAD_LITERAL */
	struct smtpfix_span culprit;
};

static int
is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

/* RFC 5322 §3.2.3 atext, and RFC 6531 §3.3 UTF-8 octets. */
static int
is_atext(unsigned char c)
{
	/* c != 0: strchr finds the terminating NUL too */
	return is_alnum(c) || c >= 0x80 ||
	       (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* RFC 5321 §4.1.2 qtextSMTP = %d32-33 / %d35-91 / %d93-126, plus
 * RFC 6531 §3.3 UTF-8 octets. */
static int
is_qtext(unsigned char c)
{
	return (c >= 32 && c <= 126 && c != '"' && c != '\\') || c >= 0x80;
}

/* RFC 5321 §4.1.2 Let-dig / "-" / ".", "_" as real hosts have it, and
 * RFC 6531 §3.3 U-labels. */
static int
is_namec(unsigned char c)
{
	return is_alnum(c) || c == '-' || c == '.' || c == '_' || c >= 0x80;
}

/* RFC 5321 §4.1.3 dcontent = %d33-90 / %d94-126 */
static int
is_dcontent(unsigned char c)
{
	return c >= 33 && c <= 126 && c != '[' && c != '\\' && c != ']';
}

/* RFC 6874 §2 ZoneID characters (unreserved, and "%" of "%25"). */
static int
is_zonec(unsigned char c)
{
	return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~' ||
	       c == '%';
}

/*
 * RFC 5321 §4.1.3 IPv4-address-literal = Snum 3("." Snum), Snum = 1*3DIGIT
 * of value 0..255.  Parsed here rather than by inet_pton(3), which turns
 * away the leading zeros Snum allows ("127.000.000.001").
 */
static int
v4_literal(const char *s, size_t len, struct in_addr *out)
{
	uint8_t b[4];
	size_t i = 0, d;
	unsigned v, k;

	for (k = 0; k < 4; k++) {
		if (k > 0) {
			if (i >= len || s[i] != '.')
				return -1;
			i++;
		}
		v = 0;
		for (d = 0; i < len && d < 3 && s[i] >= '0' && s[i] <= '9';
		     d++, i++)
			v = v * 10 + (unsigned)(s[i] - '0');
		if (d == 0 || v > 255)
			return -1;
		b[k] = (uint8_t)v;
	}
	if (i != len)
		return -1;
	memcpy(&out->s_addr, b, sizeof(b));
	return 0;
}

/*
 * An IPv6 address whose meaning is an IPv4 address's: IPv4-mapped
 * ::ffff:0:0/96 (RFC 4291 §2.5.5.2) or the well-known prefix
 * 64:ff9b::/96 (RFC 6052 §2.1).  Copies that IPv4 address to *v4.
 */
static int
v6_embeds_v4(const struct in6_addr *a, struct in_addr *v4)
{
	static const uint8_t mapped[12] = {
	    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	static const uint8_t wkp[12] = {0, 0x64, 0xff, 0x9b};

	if (memcmp(a->s6_addr, mapped, 12) != 0 &&
	    memcmp(a->s6_addr, wkp, 12) != 0)
		return 0;
	memcpy(&v4->s_addr, a->s6_addr + 12, 4);
	return 1;
}

/* Classifies the content of one literal, s[0..len) between "[" and "]". */
static enum smtpfix_path_class
literal_class(const char *s, size_t len)
{
	struct nat_addr a;
	struct in_addr v4;
	const char *pct;
	size_t alen, i;

	if (len > V6_TAG_LEN && smtpfix_word_eq(s, V6_TAG_LEN, "IPV6:")) {
		s += V6_TAG_LEN;
		len -= V6_TAG_LEN;
		/* RFC 4007 §11: "addr%zone"; RFC 5321 has no zones, but an
		 * MTA fed one may resolve it on its own link (RFC 3974 §6). */
		pct = memchr(s, '%', len);
		alen = pct == NULL ? len : (size_t)(pct - s);
		if (nat_addr_parse(s, alen, &a) != 0 || a.family != AF_INET6)
			return SMTPFIX_PATH_BAD_LITERAL;
		if (pct != NULL) {
			if (alen + 1 == len)
				return SMTPFIX_PATH_BAD_LITERAL;
			for (i = alen + 1; i < len; i++)
				if (!is_zonec((unsigned char)s[i]))
					return SMTPFIX_PATH_BAD_LITERAL;
			return SMTPFIX_PATH_SCOPED_LITERAL;
		}
		/* RFC 3974 §6: link-local and site-local literals mean a
		 * different host on each side of the gateway. */
		if (nat_scope_v6_scoped(&a.u.v6))
			return SMTPFIX_PATH_SCOPED_LITERAL;
		if (v6_embeds_v4(&a.u.v6, &v4) && nat_scope_v4_local(&v4))
			return SMTPFIX_PATH_SCOPED_LITERAL;
		return SMTPFIX_PATH_OK;
	}
	/* RFC 5321 §4.1.3: any other "tag:" is a General-address-literal,
	 * and IANA has registered no tag but "IPv6": nothing can deliver
	 * to it, and its scope cannot be judged. */
	if (memchr(s, ':', len) != NULL)
		return SMTPFIX_PATH_BAD_LITERAL;
	if (v4_literal(s, len, &v4) != 0)
		return SMTPFIX_PATH_BAD_LITERAL;
	if (nat_scope_v4_local(&v4))
		return SMTPFIX_PATH_SCOPED_LITERAL;
	return SMTPFIX_PATH_OK;
}

/* Records a literal's class if it is worse than what was seen. */
static void
note_literal(
    struct path_state *st, const char *p, size_t len, enum smtpfix_path_class c)
{
	if (c == SMTPFIX_PATH_OK || st->lit == SMTPFIX_PATH_BAD_LITERAL ||
	    st->lit == c)
		return;
	st->lit = c;
	st->culprit.p = p;
	st->culprit.len = len;
}

/*
 * Domain / address-literal at line[*i..end); on success *i is just past
 * it and *dom spans it.  -1 if there is none or it is malformed.
 */
static int
domain_parse(const char *line, size_t end, size_t *i, struct path_state *st,
    struct smtpfix_span *dom)
{
	size_t k = *i;

	if (k >= end)
		return -1;
	if (line[k] == '[') {
		for (k++; k < end && line[k] != ']'; k++)
			if (!is_dcontent((unsigned char)line[k]))
				return -1;
		if (k >= end)
			return -1;
		k++;
		note_literal(st, line + *i, k - *i,
		    literal_class(line + *i + 1, k - *i - 2));
	} else {
		while (k < end && is_namec((unsigned char)line[k]))
			k++;
		if (k == *i)
			return -1;
	}
	dom->p = line + *i;
	dom->len = k - *i;
	*i = k;
	return 0;
}

/* RFC 5321 §4.1.2 Local-part = Dot-string / Quoted-string, skipped. */
static int
local_parse(const char *line, size_t end, size_t *i, int *quoted)
{
	size_t k = *i;

	*quoted = 0;
	if (k < end && line[k] == '"') {
		*quoted = 1;
		for (k++; k < end && line[k] != '"'; k++) {
			/* quoted-pairSMTP = %d92 %d32-126 */
			if (line[k] == '\\') {
				if (k + 1 >= end ||
				    (!is_qtext((unsigned char)line[k + 1]) &&
				        line[k + 1] != '"' &&
				        line[k + 1] != '\\'))
					return -1;
				k++;
			} else if (!is_qtext((unsigned char)line[k]))
				return -1;
		}
		if (k >= end)
			return -1;
		k++;
	} else {
		while (k < end &&
		       (is_atext((unsigned char)line[k]) || line[k] == '.'))
			k++;
		if (k == *i)
			return -1;
	}
	*i = k;
	return 0;
}

/*
 * Path at line[i..end), line[i] == '<'.  Fills out's spans; returns the
 * class.
 */
static enum smtpfix_path_class
path_parse(const char *line, size_t end, size_t i, struct smtpfix_path *out)
{
	struct path_state st;
	struct smtpfix_span dom;
	size_t start = i, k, lp;
	int quoted;

	memset(&st, 0, sizeof(st));
	k = i + 1;
	if (k < end && line[k] == '>') {
		/* RFC 5321 §4.1.1.2: Reverse-path = Path / "<>" */
		if (!out->is_mail)
			return SMTPFIX_PATH_SYNTAX;
		goto close;
	}

	/* RFC 5321 §4.1.2: A-d-l = At-domain *( "," At-domain ) */
	if (k < end && line[k] == '@') {
		for (;;) {
			k++;
			if (domain_parse(line, end, &k, &st, &dom) != 0)
				return SMTPFIX_PATH_SYNTAX;
			if (k < end && line[k] == ',') {
				k++;
				if (k >= end || line[k] != '@')
					return SMTPFIX_PATH_SYNTAX;
				continue;
			}
			if (k < end && line[k] == ':')
				break;
			return SMTPFIX_PATH_SYNTAX;
		}
		out->adl.p = line + i + 1;
		out->adl.len = k - i - 1;
		k++;
	}

	/* Mailbox = Local-part "@" ( Domain / address-literal ) */
	lp = k;
	if (local_parse(line, end, &k, &quoted) != 0)
		return SMTPFIX_PATH_SYNTAX;
	if (k < end && line[k] == '>') {
		/* RFC 5321 §4.1.1.3: "<Postmaster>" needs no domain. */
		if (out->is_mail || quoted || out->adl.len != 0 ||
		    !smtpfix_word_eq(line + lp, k - lp, "POSTMASTER"))
			return SMTPFIX_PATH_SYNTAX;
		out->mailbox.p = line + lp;
		out->mailbox.len = k - lp;
		goto close;
	}
	if (k >= end || line[k] != '@')
		return SMTPFIX_PATH_SYNTAX;
	k++;
	if (domain_parse(line, end, &k, &st, &out->domain) != 0)
		return SMTPFIX_PATH_SYNTAX;
	if (k >= end || line[k] != '>')
		return SMTPFIX_PATH_SYNTAX;
	out->mailbox.p = line + lp;
	out->mailbox.len = k - lp;

close:
	k++;
	out->path.p = line + start;
	out->path.len = k - start;
	/* RFC 5321 §4.1.1.2: Reverse-path [SP Mail-parameters] */
	if (k < end && !smtpfix_is_wsp((unsigned char)line[k]))
		return SMTPFIX_PATH_SYNTAX;
	while (k < end && smtpfix_is_wsp((unsigned char)line[k]))
		k++;
	out->params.p = line + k;
	out->params.len = end - k;

	if (st.lit != SMTPFIX_PATH_OK) {
		out->culprit = st.culprit;
		return st.lit;
	}
	if (out->adl.len != 0) {
		/* RFC 5321 §4.1.2 says accept and ignore a source route;
		 * RFC 3974 §7: across scope zones, refuse it. */
		out->culprit = out->adl;
		return SMTPFIX_PATH_SOURCE_ROUTE;
	}
	return SMTPFIX_PATH_OK;
}

enum smtpfix_path_class
smtpfix_path_check(const char *line, size_t len, struct smtpfix_path *out)
{
	size_t i, v, end;
	int crlf;

	memset(out, 0, sizeof(*out));
	if (line == NULL)
		return SMTPFIX_PATH_NOT_PATH;
	crlf = len >= 2 && line[len - 2] == '\r' && line[len - 1] == '\n';
	end = crlf ? len - 2 : len;

	/* The verb as widely as servers read it (see smtpfix/helo.c): a
	 * line a server takes for MAIL must not slip by unchecked. */
	for (i = 0; i < end && smtpfix_is_wsp((unsigned char)line[i]); i++)
		continue;
	v = i;
	while (i < end && !smtpfix_is_wsp((unsigned char)line[i]))
		i++;
	if (smtpfix_word_eq(line + v, i - v, "MAIL"))
		out->is_mail = 1;
	else if (!smtpfix_word_eq(line + v, i - v, "RCPT"))
		return SMTPFIX_PATH_NOT_PATH;
	out->used = len;
	if (!crlf)
		return SMTPFIX_PATH_SYNTAX;

	/* RFC 5321 §4.1.1.2 "MAIL FROM:", §4.1.1.3 "RCPT TO:"; blanks
	 * around the colon are tolerated, as by most servers. */
	while (i < end && smtpfix_is_wsp((unsigned char)line[i]))
		i++;
	v = i;
	while (i < end && is_alnum((unsigned char)line[i]))
		i++;
	if (!smtpfix_word_eq(line + v, i - v, out->is_mail ? "FROM" : "TO"))
		return SMTPFIX_PATH_SYNTAX;
	while (i < end && smtpfix_is_wsp((unsigned char)line[i]))
		i++;
	if (i >= end || line[i] != ':')
		return SMTPFIX_PATH_SYNTAX;
	i++;
	while (i < end && smtpfix_is_wsp((unsigned char)line[i]))
		i++;
	/* RFC 5321 §4.1.2: Path = "<" ... ">"; a bare mailbox is what
	 * some servers take, but then the gateway could not tell where
	 * the address ends. */
	if (i >= end || line[i] != '<')
		return SMTPFIX_PATH_SYNTAX;
	return path_parse(line, end, i, out);
}

const char *
smtpfix_path_reply(enum smtpfix_path_class c, int is_mail)
{
	/*
	 * RFC 5321 §4.2.2: 501 syntax error in arguments, 553 mailbox name
	 * not allowed.  RFC 3463 §3.2: X.1.0 other address status, X.1.2
	 * and X.1.8 destination / sender system address (the part after
	 * "@") unusable, X.1.3 and X.1.7 destination / sender mailbox
	 * syntax; §3.6: X.5.4 invalid command arguments.  A source route is
	 * legal syntax refused by policy, hence X.1.0.
	 */
	switch (c) {
	case SMTPFIX_PATH_SYNTAX:
		return "501 5.5.4 Syntax error in path, expected <mailbox> "
		       "(RFC 5321 section 4.1.2)\r\n";
	case SMTPFIX_PATH_SOURCE_ROUTE:
		return "553 5.1.0 Source routes are not accepted "
		       "(RFC 3974 section 7)\r\n";
	case SMTPFIX_PATH_SCOPED_LITERAL:
		return is_mail
		           ? "553 5.1.8 Link- or host-scoped address literal "
		             "not accepted (RFC 3974 section 6)\r\n"
		           : "553 5.1.2 Link- or host-scoped address literal "
		             "not accepted (RFC 3974 section 6)\r\n";
	case SMTPFIX_PATH_BAD_LITERAL:
		return is_mail ? "553 5.1.7 Address literal is not an IPv4 or "
		                 "IPv6 address (RFC 5321 section 4.1.3)\r\n"
		               : "553 5.1.3 Address literal is not an IPv4 or "
		                 "IPv6 address (RFC 5321 section 4.1.3)\r\n";
	case SMTPFIX_PATH_OK:
	case SMTPFIX_PATH_NOT_PATH:
	default:
		return NULL;
	}
}

const char *
smtpfix_path_reason(enum smtpfix_path_class c)
{
	switch (c) {
	case SMTPFIX_PATH_OK:
		return "ok";
	case SMTPFIX_PATH_NOT_PATH:
		return "not-path";
	case SMTPFIX_PATH_SYNTAX:
		return "syntax";
	case SMTPFIX_PATH_SOURCE_ROUTE:
		return "source-route";
	case SMTPFIX_PATH_SCOPED_LITERAL:
		return "scoped-literal";
	case SMTPFIX_PATH_BAD_LITERAL:
		return "bad-literal";
	default:
		return "unknown";
	}
}
