/*
 * smtpfix/front.c: route mode's own dialogue with the client until a
 * recipient names the destination.  See smtpfix/front.h.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "smtpfix/chars.h"
#include "smtpfix/front.h"
#include "smtpfix/helo.h"
#include "smtpfix/identity.h"
#include "smtpfix/path.h"

/* Static replies, RFC 5321 §4.2 codes with RFC 3463 enhanced codes. */
#define R_OK "250 2.0.0 Ok\r\n"
#define R_MAIL_OK "250 2.1.0 Ok\r\n"
#define R_BYE "221 2.0.0 Bye\r\n"
#define R_VRFY "252 2.5.0 Cannot VRFY user, send mail and see\r\n"
#define R_HELP "214 2.0.0 See RFC 5321\r\n"
#define R_TLS_GO "220 2.0.0 Ready to start TLS\r\n"
#define R_SEQ_HELO "503 5.5.1 Send EHLO or HELO first\r\n"
#define R_SEQ_MAIL "503 5.5.1 Send MAIL first\r\n"
#define R_SEQ_NESTED "503 5.5.1 Nested MAIL command\r\n"
#define R_SEQ_RCPT "503 5.5.1 Send RCPT first\r\n"
#define R_TLS_AGAIN "503 5.5.1 TLS already active\r\n"
#define R_NOT_OFFERED "502 5.5.1 Command not implemented\r\n"
#define R_UNKNOWN "500 5.5.1 Command unrecognized\r\n"
#define R_BAD_LINE "500 5.5.2 Line has bare CR, LF or NUL\r\n"
#define R_TOO_LONG "500 5.5.2 Line too long\r\n"
#define R_SYNTAX "501 5.5.4 Syntax error\r\n"
#define R_HELO_ARG "501 5.5.4 HELO/EHLO needs a domain or address\r\n"
#define R_PARAM "555 5.5.4 Parameter not recognized or not implemented\r\n"
#define R_SIZE "552 5.3.4 Message size exceeds fixed limit\r\n"
#define R_NOT_SERVED "550 5.7.1 Relay access denied: no domain given\r\n"
#define R_LITERAL                                                              \
	"550 5.7.1 Address literals are not routed by this gateway\r\n"
#define R_BDAT "503 5.5.1 CHUNKING was not offered; closing\r\n"

void
smtpfix_front_init(struct smtpfix_front *f,
    const struct smtpfix_front_policy *pol, char *mail, size_t mail_cap)
{
	memset(f, 0, sizeof(*f));
	f->pol = pol;
	f->mail = mail;
	f->mail_cap = mail_cap;
}

size_t
smtpfix_front_greeting(const struct smtpfix_front *f, char *dst, size_t cap)
{
	int n = snprintf(dst, cap, "220 %.*s ESMTP smtp64\r\n",
	    (int)f->pol->fqdn_len, f->pol->fqdn);

	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* Sets a reply step; returns 0 so that callers can end with it. */
static int
reply(struct smtpfix_front_step *o, enum smtpfix_front_act act,
    const char *text, const char *reason)
{
	o->act = act;
	o->emit = text;
	o->emit_len = strlen(text);
	o->reason = reason;
	return 0;
}

/* RFC 5321 §4.1.2 syntax and broken literals are always refused; source
 * routes (RFC 3974 §7) and scoped literals (§6) when hygiene is on. */
static int
path_refused(enum smtpfix_path_class c, int hygiene)
{
	switch (c) {
	case SMTPFIX_PATH_OK:
		return 0;
	case SMTPFIX_PATH_SOURCE_ROUTE:
	case SMTPFIX_PATH_SCOPED_LITERAL:
		return hygiene;
	default:
		return 1;
	}
}

/* The verb: the first word, up to SP or the CRLF. */
static size_t
verb_len(const char *line, size_t len)
{
	size_t i;

	for (i = 0; i < len && line[i] != ' ' && line[i] != '\r'; i++)
		;
	return i;
}

static const char *const verbs[] = {"HELO", "EHLO", "MAIL", "RCPT", "DATA",
    "RSET", "NOOP", "QUIT", "VRFY", "EXPN", "HELP", "STARTTLS", "BDAT", "AUTH",
    "TURN", "ETRN", "XCLIENT", "XFORWARD", NULL};

static const char *
verb_of(const char *line, size_t len)
{
	size_t n = verb_len(line, len), i;

	for (i = 0; verbs[i] != NULL; i++)
		if (smtpfix_word_eq(line, n, verbs[i]))
			return verbs[i];
	return NULL;
}

/* Only blanks between the verb and the CRLF. */
static int
no_args(const char *line, size_t len)
{
	size_t i = verb_len(line, len);

	for (; i + 2 < len; i++)
		if (!smtpfix_is_wsp((unsigned char)line[i]))
			return 0;
	return 1;
}

static int
ehlo_reply(struct smtpfix_front *f, struct smtpfix_front_step *o)
{
	const struct smtpfix_front_policy *p = f->pol;
	size_t n = 0;
	int w;

	w = snprintf(o->buf, sizeof(o->buf), "250-%.*s\r\n250-PIPELINING\r\n",
	    (int)p->fqdn_len, p->fqdn);
	if (w > 0)
		n = (size_t)w;
	if (p->size_max > 0 && n < sizeof(o->buf)) {
		w = snprintf(o->buf + n, sizeof(o->buf) - n,
		    "250-SIZE %llu\r\n", (unsigned long long)p->size_max);
		if (w > 0)
			n += (size_t)w;
	}
	if (p->starttls && !f->tls && n < sizeof(o->buf)) {
		w = snprintf(
		    o->buf + n, sizeof(o->buf) - n, "250-STARTTLS\r\n");
		if (w > 0)
			n += (size_t)w;
	}
	/* The last line: "250 " ends the multi-line reply (RFC 5321
	 * §4.2.1).  Rewrite the final "250-" we wrote, then close it. */
	if (n >= sizeof(o->buf))
		return reply(o, SMTPFIX_FRONT_REPLY, R_OK, NULL);
	/* Find the start of the last line and turn its '-' into ' '. */
	{
		size_t s = n - 2;

		while (s > 0 && o->buf[s - 1] != '\n')
			s--;
		o->buf[s + 3] = ' ';
	}
	o->act = SMTPFIX_FRONT_REPLY;
	o->emit = o->buf;
	o->emit_len = n;
	return 0;
}

/* RFC 1870 §3: SIZE=<digits>; the only MAIL parameter offered.  Returns
 * NULL if params are acceptable, else the reply. */
static const char *
mail_params(const struct smtpfix_front *f, const char *p, size_t len)
{
	size_t i = 0, s, v;
	uint64_t size;
	int seen = 0;

	while (i < len) {
		while (i < len && smtpfix_is_wsp((unsigned char)p[i]))
			i++;
		if (i == len)
			break;
		s = i;
		while (i < len && !smtpfix_is_wsp((unsigned char)p[i]))
			i++;
		if (f->helo != 2 || f->pol->size_max == 0 || seen ||
		    i - s < 6 || !smtpfix_word_eq(p + s, 5, "SIZE=") ||
		    i - s > 5 + 20)
			return R_PARAM;
		size = 0;
		for (v = s + 5; v < i; v++) {
			if (p[v] < '0' || p[v] > '9')
				return R_SYNTAX;
			if (size > (UINT64_MAX - 9) / 10)
				return R_SIZE;
			size = size * 10 + (uint64_t)(p[v] - '0');
		}
		if (size > f->pol->size_max)
			return R_SIZE;
		seen = 1;
	}
	return NULL;
}

static int
do_mail(struct smtpfix_front *f, const char *line, size_t len,
    struct smtpfix_front_step *o)
{
	struct smtpfix_path pa;
	enum smtpfix_path_class c = smtpfix_path_check(line, len, &pa);
	const char *r;

	if (f->helo == 0)
		return reply(o, SMTPFIX_FRONT_REPLY, R_SEQ_HELO, "sequence");
	if (f->mail_len > 0)
		return reply(o, SMTPFIX_FRONT_REPLY, R_SEQ_NESTED, "sequence");
	if (c == SMTPFIX_PATH_NOT_PATH || !pa.is_mail)
		return reply(o, SMTPFIX_FRONT_REPLY, R_SYNTAX, "syntax");
	if (path_refused(c, f->pol->hygiene))
		return reply(o, SMTPFIX_FRONT_REPLY, smtpfix_path_reply(c, 1),
		    smtpfix_path_reason(c));
	if ((r = mail_params(f, pa.params.p, pa.params.len)) != NULL)
		return reply(o, SMTPFIX_FRONT_REPLY, r, "parameter");
	if (len > f->mail_cap)
		return reply(o, SMTPFIX_FRONT_REPLY, R_TOO_LONG, "too-long");
	memcpy(f->mail, line, len);
	f->mail_len = len;
	return reply(o, SMTPFIX_FRONT_REPLY, R_MAIL_OK, NULL);
}

static int
do_rcpt(struct smtpfix_front *f, const char *line, size_t len,
    struct smtpfix_front_step *o)
{
	struct smtpfix_path pa;
	enum smtpfix_path_class c = smtpfix_path_check(line, len, &pa);
	size_t i;

	if (f->mail_len == 0)
		return reply(o, SMTPFIX_FRONT_REPLY, R_SEQ_MAIL, "sequence");
	if (c == SMTPFIX_PATH_NOT_PATH || pa.is_mail)
		return reply(o, SMTPFIX_FRONT_REPLY, R_SYNTAX, "syntax");
	if (path_refused(c, f->pol->hygiene))
		return reply(o, SMTPFIX_FRONT_REPLY, smtpfix_path_reply(c, 0),
		    smtpfix_path_reason(c));
	for (i = 0; i < pa.params.len; i++)
		if (!smtpfix_is_wsp((unsigned char)pa.params.p[i]))
			return reply(
			    o, SMTPFIX_FRONT_REPLY, R_PARAM, "parameter");
	/* "<postmaster>" names no domain: it is the gateway's own, and the
	 * gateway stores no mail (RFC 5321 §4.5.1 asks a host that accepts
	 * mail to take postmaster's; this one only relays). */
	if (pa.domain.len == 0)
		return reply(o, SMTPFIX_FRONT_REPLY, R_NOT_SERVED, "no-domain");
	if (pa.domain.p[0] == '[')
		return reply(o, SMTPFIX_FRONT_REPLY, R_LITERAL, "literal");
	o->act = SMTPFIX_FRONT_ROUTE;
	o->consumed = 0;
	o->domain = pa.domain;
	o->mailbox = pa.mailbox;
	return 0;
}

static int
step(struct smtpfix_front *f, const char *in, size_t len,
    struct smtpfix_front_step *o)
{
	struct smtpfix_helo h;
	size_t used = 0;
	enum smtpfix_rc rc;
	const char *v;

	if (f->closed || len == 0)
		return 0;
	rc = smtpfix_line_find(in, len, f->pol->cmd_max, &used);
	if (rc == SMTPFIX_PARTIAL)
		return 0;
	if (rc == SMTPFIX_TOOLONG) {
		/* Never resynchronise on a line we could not see whole:
		 * its tail would be read as a command (RFC 5321 §4.5.3.1.4
		 * sets the floor; past our cap the session ends). */
		f->closed = 1;
		o->consumed = len;
		return reply(o, SMTPFIX_FRONT_CLOSE,
		    "500 5.5.2 Line too long; closing\r\n", "too-long");
	}
	o->consumed = used;
	if (rc == SMTPFIX_BADCHAR)
		return reply(o, SMTPFIX_FRONT_REPLY, R_BAD_LINE, "bad-line");
	v = verb_of(in, used);
	o->verb = v;
	if (v == NULL)
		return reply(o, SMTPFIX_FRONT_REPLY, R_UNKNOWN, "unknown");
	if (v == verbs[0] || v == verbs[1]) { /* HELO, EHLO */
		if (smtpfix_helo_parse(in, used, &h) != SMTPFIX_OK ||
		    h.arg.len == 0)
			return reply(
			    o, SMTPFIX_FRONT_REPLY, R_HELO_ARG, "syntax");
		/* RFC 5321 §4.1.4: EHLO or HELO also resets the state. */
		f->mail_len = 0;
		f->helo = h.ehlo ? 2 : 1;
		f->helo_len = 0;
		if (smtpfix_identity_helo_ok(h.arg.p, h.arg.len) &&
		    h.arg.len <= sizeof(f->helo_arg)) {
			memcpy(f->helo_arg, h.arg.p, h.arg.len);
			f->helo_len = (uint8_t)h.arg.len;
		}
		if (!h.ehlo) {
			int n = snprintf(o->buf, sizeof(o->buf), "250 %.*s\r\n",
			    (int)f->pol->fqdn_len, f->pol->fqdn);

			o->act = SMTPFIX_FRONT_REPLY;
			o->emit = o->buf;
			o->emit_len = n > 0 ? (size_t)n : 0;
			return 0;
		}
		return ehlo_reply(f, o);
	}
	if (!strcmp(v, "MAIL"))
		return do_mail(f, in, used, o);
	if (!strcmp(v, "RCPT"))
		return do_rcpt(f, in, used, o);
	if (!strcmp(v, "DATA"))
		return reply(o, SMTPFIX_FRONT_REPLY,
		    f->mail_len ? R_SEQ_RCPT : R_SEQ_MAIL, "sequence");
	if (!strcmp(v, "RSET")) {
		f->mail_len = 0;
		return reply(o, SMTPFIX_FRONT_REPLY, R_OK, NULL);
	}
	if (!strcmp(v, "NOOP"))
		return reply(o, SMTPFIX_FRONT_REPLY, R_OK, NULL);
	if (!strcmp(v, "QUIT")) {
		f->closed = 1;
		return reply(o, SMTPFIX_FRONT_CLOSE, R_BYE, NULL);
	}
	if (!strcmp(v, "VRFY"))
		return reply(o, SMTPFIX_FRONT_REPLY, R_VRFY, NULL);
	if (!strcmp(v, "HELP"))
		return reply(o, SMTPFIX_FRONT_REPLY, R_HELP, NULL);
	if (!strcmp(v, "STARTTLS")) {
		if (!f->pol->starttls)
			return reply(o, SMTPFIX_FRONT_REPLY, R_NOT_OFFERED,
			    "not-offered");
		if (f->tls)
			return reply(
			    o, SMTPFIX_FRONT_REPLY, R_TLS_AGAIN, "sequence");
		if (!no_args(in, used))
			return reply(
			    o, SMTPFIX_FRONT_REPLY, R_SYNTAX, "syntax");
		return reply(o, SMTPFIX_FRONT_TLS, R_TLS_GO, NULL);
	}
	if (!strcmp(v, "BDAT")) {
		/* RFC 3030 §2: its chunk follows at once and would be read
		 * as commands: end the session instead. */
		f->closed = 1;
		return reply(o, SMTPFIX_FRONT_CLOSE, R_BDAT, "not-offered");
	}
	/* EXPN, AUTH, TURN, ETRN, XCLIENT, XFORWARD: never offered here. */
	return reply(o, SMTPFIX_FRONT_REPLY, R_NOT_OFFERED, "not-offered");
}

void
smtpfix_front_step(struct smtpfix_front *f, const char *in, size_t len,
    struct smtpfix_front_step *o)
{
	memset(o, 0, offsetof(struct smtpfix_front_step, buf));
	(void)step(f, in, len, o);
}

void
smtpfix_front_tls_done(struct smtpfix_front *f, int ok)
{
	if (!ok) {
		f->closed = 1;
		return;
	}
	f->tls = 1;
	f->helo = 0;
	f->helo_len = 0;
	f->mail_len = 0;
}

const char *
smtpfix_front_mail(const struct smtpfix_front *f, size_t *len)
{
	*len = f->mail_len;
	return f->mail_len ? f->mail : NULL;
}

const char *
smtpfix_front_helo(const struct smtpfix_front *f, size_t *len)
{
	*len = f->helo != 0 ? f->helo_len : 0;
	return *len > 0 ? f->helo_arg : NULL;
}

int
smtpfix_front_esmtp(const struct smtpfix_front *f)
{
	return f->helo == 2;
}

void
smtpfix_front_reset(struct smtpfix_front *f)
{
	f->mail_len = 0;
}
