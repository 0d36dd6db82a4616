/*
 * smtpfix/c2s_fuzz.c: libFuzzer target for the client side of the stream
 * machine.  The input is a client's byte stream (after two control
 * bytes); a fake Postfix-like server answers whatever reaches it, and
 * reads lines the lenient way (a bare LF ends a line, as in servers open
 * to SMTP smuggling).  Besides the invariants of smtpfix/fuzz_sim.h, the
 * gateway and that server must agree at all times: same number of
 * messages, same idea of when message data is being sent, no BDAT ever
 * reaching the server, no command line over the cap.
 *
 * Input: [flags] [seed] client bytes...
 *  flags bit 0: DATA refused (554); bit 1: STARTTLS accepted (220);
 *  bit 2: AUTH asks twice (334, 334); bits 3-4: HELO mode;
 *  bit 5: multi-line greeting; bit 6: bare_line_endings inline.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpfix/fuzz_sim.h"
#include "smtpfix/stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum fake_mode {
	FAKE_CMD = 0,
	FAKE_DATA,
	FAKE_AUTH,
	FAKE_TLS,
	FAKE_QUIT,
};

struct fake {
	unsigned flags;
	enum fake_mode mode;
	int rcpts;
	int auth_asked;
	uint64_t messages;
	char line[600]; /* head of the current line */
	size_t llen;    /* its full length so far */
};

static struct fsim sim;
static struct fake fake;

static void
say(struct fsim *m, const char *r)
{
	fs_later(m, 1, r, strlen(r));
}

/* First word of line (NUL-terminated), ignoring leading blanks, matches
 * w ignoring case; *rest is what follows it. */
static int
verb_is(const char *line, const char *w, const char **rest)
{
	while (*line == ' ' || *line == '\t')
		line++;
	if (!fs_word(line, w))
		return 0;
	*rest = line + strlen(w);
	return 1;
}

static void
fake_command(struct fsim *m, struct fake *f, const char *l, size_t len)
{
	const char *rest;

	/* The gateway never relays a command line over its cap. */
	if (len + 1 > m->pol.cmd_max)
		abort();
	if (verb_is(l, "EHLO", &rest)) {
		say(m, "250-fake.example.org\r\n250-PIPELINING\r\n"
		       "250-CHUNKING\r\n250-SIZE 10240000\r\n"
		       "250-BINARYMIME\r\n250-STARTTLS\r\n"
		       "250-AUTH PLAIN LOGIN\r\n250 CHUNKING\r\n");
	} else if (verb_is(l, "HELO", &rest)) {
		say(m, "250 fake.example.org\r\n");
	} else if (verb_is(l, "MAIL", &rest)) {
		f->rcpts = 0;
		say(m, "250 2.1.0 Ok\r\n");
	} else if (verb_is(l, "RCPT", &rest)) {
		f->rcpts++;
		say(m, "250 2.1.5 Ok\r\n");
	} else if (verb_is(l, "DATA", &rest)) {
		if ((f->flags & 1) || f->rcpts == 0) {
			say(m, "554 5.5.1 Error: no valid recipients\r\n");
		} else {
			say(m, "354 End data with <CR><LF>.<CR><LF>\r\n");
			f->mode = FAKE_DATA;
		}
	} else if (verb_is(l, "BDAT", &rest)) {
		/* CHUNKING is never offered: BDAT must never arrive. */
		abort();
	} else if (verb_is(l, "STARTTLS", &rest)) {
		if (f->flags & 2) {
			say(m, "220 2.0.0 Ready to start TLS\r\n");
			f->mode = FAKE_TLS;
		} else
			say(m, "454 4.7.0 TLS not available\r\n");
	} else if (verb_is(l, "AUTH", &rest)) {
		while (*rest == ' ' || *rest == '\t')
			rest++;
		while (*rest != '\0' && *rest != ' ' && *rest != '\t' &&
		       *rest != '\r')
			rest++;
		while (*rest == ' ' || *rest == '\t')
			rest++;
		if (*rest != '\0' && *rest != '\r') {
			say(m, "235 2.7.0 Authentication successful\r\n");
		} else {
			say(m, "334 VXNlcm5hbWU6\r\n");
			f->mode = FAKE_AUTH;
			f->auth_asked = 0;
		}
	} else if (verb_is(l, "QUIT", &rest)) {
		say(m, "221 2.0.0 Bye\r\n");
		f->mode = FAKE_QUIT;
	} else if (verb_is(l, "NOOP", &rest) || verb_is(l, "RSET", &rest)) {
		say(m, "250 2.0.0 Ok\r\n");
	} else {
		say(m, "502 5.5.2 Error: command not recognized\r\n");
	}
}

/* A whole line as a lenient server sees it: up to a LF, without it and
 * without one CR before it. */
static void
fake_line(struct fsim *m, struct fake *f)
{
	size_t n =
	    f->llen < sizeof(f->line) - 1 ? f->llen : sizeof(f->line) - 1;

	f->line[n] = '\0';
	if (n > 0 && f->line[n - 1] == '\r')
		f->line[n - 1] = '\0';
	switch (f->mode) {
	case FAKE_CMD:
		fake_command(m, f, f->line, f->llen);
		break;
	case FAKE_DATA:
		if (strcmp(f->line, ".") == 0 && f->llen <= 2) {
			f->messages++;
			f->mode = FAKE_CMD;
			f->rcpts = 0;
			say(m, "250 2.0.0 Ok: queued as 4Xyz\r\n");
		}
		break;
	case FAKE_AUTH:
		if (strcmp(f->line, "*") == 0) {
			say(m, "501 5.7.0 Authentication aborted\r\n");
			f->mode = FAKE_CMD;
		} else if ((f->flags & 4) && !f->auth_asked) {
			f->auth_asked = 1;
			say(m, "334 UGFzc3dvcmQ6\r\n");
		} else {
			say(m, "235 2.7.0 Authentication successful\r\n");
			f->mode = FAKE_CMD;
		}
		break;
	case FAKE_TLS:
	case FAKE_QUIT:
		break;
	}
}

static void
fake_input(struct fsim *m, const char *p, size_t n)
{
	struct fake *f = &fake;
	size_t i;

	if (f->mode == FAKE_QUIT)
		return;
	if (f->mode == FAKE_TLS) {
		/* Stands for the TLS handshake: opaque bytes back. */
		say(m, "\x16\x03\x03\x00\x02\n\0");
		return;
	}
	for (i = 0; i < n; i++) {
		if (f->llen < sizeof(f->line))
			f->line[f->llen] = p[i];
		f->llen++;
		if (p[i] == '\n') {
			f->llen--;
			fake_line(m, f);
			f->llen = 0;
			if (f->mode == FAKE_TLS || f->mode == FAKE_QUIT)
				return;
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fsim *m = &sim;
	struct fake *f = &fake;
	enum smtpfix_helo_mode mode;

	if (size < 2)
		return 0;
	memset(f, 0, sizeof(*f));
	f->flags = data[0];
	mode = (enum smtpfix_helo_mode)((data[0] >> 3) % 3);
	fs_init(m, mode, (uint32_t)data[1] * 2654435761u);
	m->pol.bare = f->flags & 64 ? SMTPFIX_BARE_INLINE : SMTPFIX_BARE_REJECT;
	m->on_srv = fake_input;
	m->replies.no_chunking = 1;
	if (f->flags & 32)
		say(m, "220-fake.example.org ESMTP\r\n220 Postfix\r\n");
	else
		say(m, "220 fake.example.org ESMTP Postfix\r\n");
	fs_later(m, 0, (const char *)data + 2, size - 2);
	fs_run(m);
	if (m->full)
		return 0;
	/* Both ends agree on what was delivered... */
	if (f->messages != m->s.messages)
		abort();
	if (m->aborted || m->closed)
		return 0;
	/* ...and, once all is said, on what comes next. */
	if ((f->mode == FAKE_DATA) != (m->s.cmode == SMTPFIX_C_DATA))
		abort();
	if ((f->mode == FAKE_TLS) != (m->s.cmode == SMTPFIX_C_OPAQUE))
		abort();
	if (f->mode != FAKE_TLS &&
	    (f->mode == FAKE_AUTH) != (m->s.secret_next != 0))
		abort();
	/* Every command got its reply, nothing is held. */
	if (f->mode != FAKE_TLS && f->mode != FAKE_QUIT &&
	    (m->s.qlen != 0 || m->s.hold != 0))
		abort();
	return 0;
}
