/*
 * smtpfix/opener.c: route mode's opening of the upstream leg.  See
 * smtpfix/opener.h.
 *
 *   greeting  RFC 5321 §4.3.1: 220, or the server refuses the session
 *   EHLO      §4.1.1.1, HELO when EHLO is refused (§3.2)
 *   STARTTLS  RFC 3207 §4, EHLO again after it (§4.2)
 *   XCLIENT   Postfix's XCLIENT_README: 220 on success, EHLO again
 *   IPV6-IPV4-FALLBACK  draft-martin §3.1: the verb when offered
 *   4.4.8     draft-martin §3.2: a refusal asking for IPv4 ends the leg
 *   MAIL      §4.1.1.2, the client's line replayed byte for byte
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "smtpfix/chars.h"
#include "smtpfix/identity.h"
#include "smtpfix/line.h"
#include "smtpfix/opener.h"
#include "smtpfix/replay.h"

void
smtpfix_opener_init(struct smtpfix_opener *o, const char *fqdn, size_t fqdn_len,
    const char *mail, size_t mail_len, enum smtpfix_opener_tls tls,
    size_t reply_max)
{
	memset(o, 0, sizeof(*o));
	o->fqdn = fqdn;
	o->fqdn_len = fqdn_len;
	o->mail = mail;
	o->mail_len = mail_len;
	o->tls = tls;
	o->reply_max = reply_max;
}

static int
fail(struct smtpfix_opener *o, struct smtpfix_opener_step *s, const char *reply,
    const char *why)
{
	o->st = SMTPFIX_OP_DONE;
	o->why = why;
	s->act = SMTPFIX_OPENER_FAIL;
	s->emit = reply;
	s->emit_len = strlen(reply);
	return 0;
}

static int
send_ehlo(struct smtpfix_opener *o, struct smtpfix_opener_step *s, int ehlo)
{
	/* Once the server knows who connected, the client's own name. */
	int own = o->cl_known && o->cl_helo_len > 0;
	int n = snprintf(s->buf, sizeof(s->buf), "%s %.*s\r\n",
	    ehlo ? "EHLO" : "HELO", (int)(own ? o->cl_helo_len : o->fqdn_len),
	    own ? o->cl_helo : o->fqdn);

	o->st = ehlo ? SMTPFIX_OP_EHLO : SMTPFIX_OP_HELO;
	o->offers_tls = 0;
	o->xc_mask = 0;
	o->fb_offered = 0;
	s->act = SMTPFIX_OPENER_SEND;
	s->emit = s->buf;
	s->emit_len = n > 0 && (size_t)n < sizeof(s->buf) ? (size_t)n : 0;
	return 0;
}

static int
send_mail(struct smtpfix_opener *o, struct smtpfix_opener_step *s)
{
	o->st = SMTPFIX_OP_MAIL;
	s->act = SMTPFIX_OPENER_SEND;
	s->emit = o->mail;
	s->emit_len = o->mail_len;
	return 0;
}

/*
 * The server's refusal of MAIL, passed to the client as its RCPT reply:
 * the last line's code and text, kept only if it is a well-formed 4xx or
 * 5xx line of printable ASCII (it crosses to another peer); else the
 * gateway's own words with the same class.
 */
static int
relay_refusal(struct smtpfix_opener *o, struct smtpfix_opener_step *s,
    const char *line, size_t len)
{
	size_t i, body = len - 2;
	int ok = body >= 3 && body + 2 <= sizeof(s->buf);

	for (i = 0; ok && i < body; i++)
		if ((unsigned char)line[i] < 0x20 ||
		    (unsigned char)line[i] > 0x7e)
			ok = 0;
	if (ok && (line[0] == '4' || line[0] == '5')) {
		memcpy(s->buf, line, body);
		if (body > 3)
			s->buf[3] = ' '; /* the last line: "ddd " */
		/* draft-martin §3.1: 456 is between the gateway and the
		 * server; the client never negotiated it. */
		if (memcmp(s->buf, "456", 3) == 0)
			s->buf[2] = '1';
		memcpy(s->buf + body, "\r\n", 2);
		o->st = SMTPFIX_OP_DONE;
		o->why = "mail-refused";
		s->act = SMTPFIX_OPENER_FAIL;
		s->emit = s->buf;
		s->emit_len = body + 2;
		return 0;
	}
	return fail(o, s,
	    line[0] == '5' ? "550 5.7.1 The destination server refused the "
	                     "sender\r\n"
	                   : "451 4.4.2 The destination server refused the "
	                     "sender\r\n",
	    "mail-refused");
}

/* Reads one reply line: 0 with its code and whether it is the last line
 * of the reply, or -1 if malformed. */
static int
reply_line(const char *p, size_t len, unsigned *code, int *last)
{
	if (len < 5 || p[0] < '2' || p[0] > '5' || p[1] < '0' || p[1] > '9' ||
	    p[2] < '0' || p[2] > '9' ||
	    (len > 5 && p[3] != ' ' && p[3] != '-') ||
	    (len == 5 && p[3] != '\r'))
		return -1;
	*code = (unsigned)(p[0] - '0') * 100 + (unsigned)(p[1] - '0') * 10 +
	        (unsigned)(p[2] - '0');
	*last = len == 5 || p[3] == ' ';
	return 0;
}

/* An EHLO keyword line "250-KW" or "250 KW", no parameters: STARTTLS
 * (RFC 3207 §4), IPV6-IPV4-FALLBACK (draft-martin §3.1). */
static int
is_keyword(const char *p, size_t len, const char *kw)
{
	size_t n;

	if (len < 4 + strlen(kw) + 2)
		return 0;
	n = len - 4 - 2;
	while (n > 0 && smtpfix_is_wsp((unsigned char)p[4 + n - 1]))
		n--;
	return smtpfix_word_eq(p + 4, n, kw);
}

/* What follows a positive EHLO (or HELO) reply, once TLS is settled:
 * XCLIENT if asked for, the fallback verb if offered, then MAIL. */
static int
after_ehlo(struct smtpfix_opener *o, struct smtpfix_opener_step *s)
{
	static const char verb[] = "IPV6-IPV4-FALLBACK\r\n";
	size_t n;

	if (o->xc == SMTPFIX_OPENER_XC_PENDING) {
		n = o->xc_mask != 0 ? smtpfix_xclient_build(o->xc_id,
		                          o->xc_mask, s->buf, sizeof(s->buf))
		                    : 0;
		if (n > 0) {
			o->xc_sent = o->xc_mask;
			o->st = SMTPFIX_OP_XCLIENT;
			s->act = SMTPFIX_OPENER_SEND;
			s->emit = s->buf;
			s->emit_len = n;
			return 0;
		}
		o->xc = SMTPFIX_OPENER_XC_NOT_OFFERED;
		if (o->xc_required)
			return fail(o, s,
			    "451 4.7.0 The destination server does not take "
			    "the client's identity\r\n",
			    "identity");
	}
	if (o->fb_want && o->fb_offered && !o->fb_sent) {
		o->fb_sent = 1;
		o->st = SMTPFIX_OP_FBVERB;
		s->act = SMTPFIX_OPENER_SEND;
		s->emit = verb;
		s->emit_len = sizeof(verb) - 1;
		return 0;
	}
	return send_mail(o, s);
}

/* draft-martin §3: the last line in[0..used) of a reply (code) asks for
 * a retry over IPv4; kept for the gateway's log and its decision. */
static void
note_448(struct smtpfix_opener *o, const char *in, size_t used, unsigned code)
{
	size_t n = used;

	if (!smtpfix_replay_is_448(in, used, code, o->fb_negotiated))
		return;
	while (n > 0 && (in[n - 1] == '\n' || in[n - 1] == '\r'))
		n--;
	if (n > sizeof(o->r448_line))
		n = sizeof(o->r448_line);
	memcpy(o->r448_line, in, n);
	o->r448_len = n;
	o->r448 = 1;
}

static int
step(struct smtpfix_opener *o, const char *in, size_t len,
    struct smtpfix_opener_step *s)
{
	enum smtpfix_rc rc;
	unsigned code;
	size_t used;
	int last;

	switch (o->st) {
	case SMTPFIX_OP_DONE:
	case SMTPFIX_OP_HANDSHAKE:
		return 0;
	case SMTPFIX_OP_POSTTLS:
		/* RFC 3207 §4.2: the client speaks first after TLS. */
		return send_ehlo(o, s, 1);
	case SMTPFIX_OP_TLSFAIL:
		return fail(o, s,
		    "451 4.7.0 TLS handshake with the destination server "
		    "failed\r\n",
		    "tls-handshake");
	default:
		break;
	}
	rc = smtpfix_line_find(in, len, o->reply_max, &used);
	if (rc == SMTPFIX_PARTIAL)
		return 0;
	if (rc != SMTPFIX_OK || reply_line(in, used, &code, &last) != 0 ||
	    (o->code != 0 && code != o->code)) {
		/* RFC 5321 §4.2.1: every line of a reply has its code. */
		s->consumed =
		    rc == SMTPFIX_OK || rc == SMTPFIX_BADCHAR ? used : len;
		return fail(o, s,
		    "451 4.4.2 Bad reply from the destination server\r\n",
		    "bad-reply");
	}
	s->consumed = used;
	if (o->st == SMTPFIX_OP_EHLO && code == 250) {
		int m;

		if (is_keyword(in, used, "STARTTLS"))
			o->offers_tls = 1;
		else if (is_keyword(in, used, "IPV6-IPV4-FALLBACK"))
			o->fb_offered = 1;
		else if ((m = smtpfix_xclient_offer(in, used)) >= 0)
			o->xc_mask = m;
	}
	if (!last) {
		o->code = code;
		return 0; /* NONE: more lines of this reply */
	}
	o->code = 0;
	o->last = code;
	if (code >= 400)
		note_448(o, in, used, code);
	if (o->r448 && o->st != SMTPFIX_OP_MAIL)
		return fail(o, s,
		    "451 4.4.2 The destination server asked for a retry "
		    "over IPv4\r\n",
		    o->st == SMTPFIX_OP_GREETING ? "greeting"
		    : o->st == SMTPFIX_OP_EHLO || o->st == SMTPFIX_OP_HELO
		        ? "helo"
		        : "other");
	switch (o->st) {
	case SMTPFIX_OP_GREETING:
		if (code != 220)
			return fail(o, s,
			    code >= 500 ? "550 5.7.1 The destination server "
			                  "refused the session\r\n"
			                : "451 4.4.2 The destination server "
			                  "refused the session\r\n",
			    "greeting");
		return send_ehlo(o, s, 1);
	case SMTPFIX_OP_EHLO:
		if (code / 100 != 2)
			return send_ehlo(o, s, 0); /* RFC 5321 §3.2 */
		if (!o->in_tls && o->offers_tls &&
		    o->tls != SMTPFIX_OPENER_TLS_NO) {
			o->st = SMTPFIX_OP_STARTTLS;
			s->act = SMTPFIX_OPENER_SEND;
			s->emit = "STARTTLS\r\n";
			s->emit_len = 10;
			return 0;
		}
		if (!o->in_tls && o->tls == SMTPFIX_OPENER_TLS_MUST)
			return fail(o, s,
			    "451 4.7.5 The destination server does not offer "
			    "STARTTLS\r\n",
			    "no-starttls");
		return after_ehlo(o, s);
	case SMTPFIX_OP_HELO:
		if (code / 100 != 2)
			return fail(o, s,
			    code >= 500 ? "550 5.7.1 The destination server "
			                  "refused HELO\r\n"
			                : "451 4.4.2 The destination server "
			                  "refused HELO\r\n",
			    "helo");
		if (o->tls == SMTPFIX_OPENER_TLS_MUST)
			return fail(o, s,
			    "451 4.7.5 The destination server does not offer "
			    "STARTTLS\r\n",
			    "no-starttls");
		return after_ehlo(o, s); /* offers nothing: no XCLIENT */
	case SMTPFIX_OP_STARTTLS:
		if (code == 220) {
			o->st = SMTPFIX_OP_HANDSHAKE;
			s->act = SMTPFIX_OPENER_TLS;
			return 0;
		}
		if (o->tls == SMTPFIX_OPENER_TLS_MUST)
			return fail(o, s,
			    "451 4.7.0 The destination server refused "
			    "STARTTLS\r\n",
			    "starttls-refused");
		return after_ehlo(o, s); /* RFC 7435: go on in clear */
	case SMTPFIX_OP_XCLIENT:
		/* XCLIENT_README: success is a new greeting, and the
		 * client (here the gateway) says EHLO again. */
		if (code == 220) {
			o->xc = SMTPFIX_OPENER_XC_ACCEPTED;
			if (o->xc_sent & SMTPFIX_XC_ADDR)
				o->cl_known = 1;
			return send_ehlo(o, s, 1);
		}
		o->xc = SMTPFIX_OPENER_XC_REFUSED;
		if (o->xc_required || code == 421)
			return fail(o, s,
			    code == 421 ? "451 4.4.2 The destination server "
			                  "closed the session\r\n"
			                : "451 4.7.0 The destination server "
			                  "refused the client's identity\r\n",
			    "identity");
		return after_ehlo(o, s);
	case SMTPFIX_OP_FBVERB:
		o->fb_negotiated = code / 100 == 2;
		if (code == 421)
			return fail(o, s,
			    "451 4.4.2 The destination server closed the "
			    "session\r\n",
			    "fallback-verb");
		return send_mail(o, s);
	case SMTPFIX_OP_MAIL:
		if (code / 100 == 2) {
			o->st = SMTPFIX_OP_DONE;
			s->act = SMTPFIX_OPENER_DONE;
			return 0;
		}
		return relay_refusal(o, s, in, used);
	default:
		return 0;
	}
}

void
smtpfix_opener_step(struct smtpfix_opener *o, const char *in, size_t len,
    struct smtpfix_opener_step *s)
{
	memset(s, 0, offsetof(struct smtpfix_opener_step, buf));
	(void)step(o, in, len, s);
}

void
smtpfix_opener_tls_done(struct smtpfix_opener *o, int ok)
{
	if (o->st != SMTPFIX_OP_HANDSHAKE)
		return;
	if (ok) {
		o->in_tls = 1;
		/* RFC 3207 §4.2: forget what the server said before TLS; a
		 * new EHLO goes out on the next step. */
		o->st = SMTPFIX_OP_POSTTLS;
		o->code = 0;
		return;
	}
	o->st = SMTPFIX_OP_TLSFAIL;
}

int
smtpfix_opener_in_tls(const struct smtpfix_opener *o)
{
	return o->in_tls;
}

void
smtpfix_opener_set_xclient(
    struct smtpfix_opener *o, const struct smtpfix_identity *id, int required)
{
	o->xc_id = id;
	o->xc_required = id != NULL && required;
	o->xc = id != NULL ? SMTPFIX_OPENER_XC_PENDING : SMTPFIX_OPENER_XC_OFF;
	if (id != NULL && id->helo != NULL &&
	    smtpfix_identity_helo_ok(id->helo, id->helo_len)) {
		o->cl_helo = id->helo;
		o->cl_helo_len = id->helo_len;
	}
}

void
smtpfix_opener_set_client_helo(
    struct smtpfix_opener *o, const char *helo, size_t len)
{
	o->cl_known = 1;
	if (helo != NULL && smtpfix_identity_helo_ok(helo, len)) {
		o->cl_helo = helo;
		o->cl_helo_len = len;
	}
}

int
smtpfix_opener_xclient_sent(const struct smtpfix_opener *o)
{
	return o->xc_sent;
}

enum smtpfix_opener_xc
smtpfix_opener_xclient(const struct smtpfix_opener *o)
{
	return o->xc;
}

void
smtpfix_opener_set_fallback(struct smtpfix_opener *o)
{
	o->fb_want = 1;
}

int
smtpfix_opener_fallback_negotiated(const struct smtpfix_opener *o)
{
	return o->fb_negotiated;
}

int
smtpfix_opener_refusal_448(
    const struct smtpfix_opener *o, const char **line, size_t *len)
{
	if (!o->r448 || o->st != SMTPFIX_OP_DONE)
		return 0;
	*line = o->r448_line;
	*len = o->r448_len;
	return 1;
}
