/*
 * smtpfix/fuzz_sim.h: the gateway as the stream fuzzers see it (shared by
 * smtpfix/c2s_fuzz.c and smtpfix/s2c_fuzz.c; test code, not part of the
 * library).  It performs every step action as gateway/session.c does and
 * aborts on any broken invariant:
 *  - a step consumes no more than it was given and emits at most
 *    SMTPFIX_EMIT_MAX bytes;
 *  - steps always make progress (a bound on steps per input byte);
 *  - before STARTTLS, the server gets CRLF-clean bytes only: no bare CR,
 *    bare LF or NUL, and never a CR without its LF;
 *  - before STARTTLS, the client gets well-formed reply lines only
 *    (RFC 5321 §4.2), multi-line replies never interleaved;
 *  - after ABORT nothing more reaches the server;
 *  - with a STARTTLS policy of the gateway's own (fs_set_tls), the
 *    handshakes the stream asks for succeed or fail at random, and the
 *    checks above go on inside TLS (the decrypted streams are still SMTP);
 *    the client's 220 comes at a reply boundary, never inside a reply.
 */
#ifndef SMTPFIX_FUZZ_SIM_H
#define SMTPFIX_FUZZ_SIM_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpfix/stream.h"
#include "smtpfix/tlspolicy.h"

#define FS_BUF (1 << 20)

/* Checks a reply stream line by line. */
struct fs_replies {
	size_t pos;      /* bytes into the current line */
	int prev_cr;     /* last byte was CR */
	unsigned code;   /* code of the line so far */
	unsigned mcode;  /* inside a multi-line reply: its code */
	char head[16];   /* first bytes of the line */
	int no_chunking; /* abort on a CHUNKING or BINARYMIME line */
	uint64_t finals; /* final lines seen */
};

struct fsim {
	struct smtpfix_policy pol;
	struct smtpfix_tlspolicy tls;
	struct smtpfix_stream s;
	/* What reached each peer (counted; checked as it goes). */
	uint64_t srv_bytes, cli_bytes;
	int srv_cr; /* last byte to the server was CR */
	struct fs_replies replies;
	int aborted, closed, opaque, full;
	int tls_up, tls_cli; /* handshakes asked for */
	uint64_t steps, bytes_in;
	uint32_t rng;
	/* Called with every byte written to the server (fake server). */
	void (*on_srv)(struct fsim *, const char *, size_t);
	size_t cin_len, sin_len;
	size_t cpend_off, cpend_len, spend_off, spend_len;
	/* Unread input of each direction, and what is yet to arrive. */
	char cin[FS_BUF], sin[FS_BUF];
	char cpend[FS_BUF], spend[FS_BUF];
};

static uint32_t
fs_rand(struct fsim *m)
{
	/* xorshift32: chunk sizes only need to vary. */
	m->rng ^= m->rng << 13;
	m->rng ^= m->rng >> 17;
	m->rng ^= m->rng << 5;
	return m->rng;
}

static void
fs_init(struct fsim *m, enum smtpfix_helo_mode mode, uint32_t seed)
{
	/* The buffers come last and need no clearing: fast runs. */
	memset(m, 0, offsetof(struct fsim, cin));
	m->pol.fqdn = "gw.example.net";
	m->pol.fqdn_len = strlen(m->pol.fqdn);
	m->pol.helo = mode;
	m->pol.cmd_max = 512;
	m->pol.reply_max = 512;
	m->rng = seed | 1;
	smtpfix_stream_init(&m->s, &m->pol);
}

/* A STARTTLS policy for the session: 0 none (passthrough), 1 terminate
 * opportunistic, 2 terminate require, 3 strip. */
static void
fs_set_tls(struct fsim *m, unsigned which)
{
	static const enum smtpfix_tls_mode modes[] = {SMTPFIX_TLS_PASSTHROUGH,
	    SMTPFIX_TLS_TERMINATE, SMTPFIX_TLS_TERMINATE, SMTPFIX_TLS_STRIP};

	if (which % 4 == 0)
		return;
	m->tls.mode = modes[which % 4];
	m->tls.upstream = which % 4 == 2 ? SMTPFIX_TLSUP_REQUIRE
	                                 : SMTPFIX_TLSUP_OPPORTUNISTIC;
	m->tls.have_cert = 1;
	smtpfix_stream_set_tls(&m->s, &m->tls);
}

static int
fs_upper(int c)
{
	return c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c;
}

/* 1 if p (NUL-terminated head of a line) starts with word w, ignoring
 * case, followed by SP, CR or the end. */
static int
fs_word(const char *p, const char *w)
{
	size_t i;

	for (i = 0; w[i] != '\0'; i++)
		if (fs_upper((unsigned char)p[i]) != w[i])
			return 0;
	return p[i] == '\0' || p[i] == ' ' || p[i] == '\r' || p[i] == '\t';
}

static void
fs_reply_byte(struct fs_replies *r, char c)
{
	size_t k = r->pos;

	if (c == '\0')
		abort();
	if (r->prev_cr && c != '\n')
		abort();
	if (c == '\n' && !r->prev_cr)
		abort();
	r->prev_cr = c == '\r';
	if (k < sizeof(r->head) - 1)
		r->head[k] = c;
	r->pos++;
	if (k < 3) {
		if (c < (k == 0 ? '2' : '0') || c > (k == 0 ? '5' : '9'))
			abort();
		r->code = r->code * 10 + (unsigned)(c - '0');
		return;
	}
	if (k == 3) {
		if (c != ' ' && c != '-' && c != '\r')
			abort();
		if (r->mcode != 0 && r->code != r->mcode)
			abort();
		return;
	}
	if (c != '\n')
		return;
	/* A whole line. */
	r->head[r->pos < sizeof(r->head) ? r->pos : sizeof(r->head) - 1] = '\0';
	if (r->head[3] == '-') {
		r->mcode = r->code;
	} else {
		r->mcode = 0;
		r->finals++;
	}
	if (r->no_chunking && (fs_word(r->head + 4, "CHUNKING") ||
	                          fs_word(r->head + 4, "BINARYMIME")))
		abort();
	r->pos = 0;
	r->code = 0;
}

static void
fs_to_client(struct fsim *m, const char *p, size_t n)
{
	size_t i;

	m->cli_bytes += n;
	if (m->opaque)
		return;
	for (i = 0; i < n; i++)
		fs_reply_byte(&m->replies, p[i]);
}

static void
fs_to_server(struct fsim *m, const char *p, size_t n)
{
	size_t i;

	if (m->aborted)
		abort();
	m->srv_bytes += n;
	if (!m->opaque) {
		for (i = 0; i < n; i++) {
			if (p[i] == '\0')
				abort();
			if (m->srv_cr != (p[i] == '\n'))
				abort();
			m->srv_cr = p[i] == '\r';
		}
		/* A CR goes with its LF, never alone at the end. */
		if (m->srv_cr)
			abort();
	}
	if (m->on_srv != NULL)
		m->on_srv(m, p, n);
}

static void
fs_check(const struct smtpfix_step *st, size_t len)
{
	if (st->consumed > len || st->emit_len > SMTPFIX_EMIT_MAX)
		abort();
	switch (st->act) {
	case SMTPFIX_ACT_NONE:
		if (st->consumed != 0 || st->emit_len != 0)
			abort();
		break;
	case SMTPFIX_ACT_FORWARD:
	case SMTPFIX_ACT_OPAQUE:
		if (st->consumed == 0)
			abort();
		break;
	case SMTPFIX_ACT_TLS_UPSTREAM:
		if (st->consumed == 0 || st->emit_len != 0)
			abort();
		break;
	case SMTPFIX_ACT_TLS_CLIENT:
		if (st->consumed != 0 || st->emit == NULL || st->emit_len == 0)
			abort();
		break;
	case SMTPFIX_ACT_EMIT:
	case SMTPFIX_ACT_CLOSE:
		if (st->emit == NULL || st->emit_len == 0)
			abort();
		break;
	case SMTPFIX_ACT_DISCARD:
		if (st->consumed == 0)
			abort();
		break;
	case SMTPFIX_ACT_ABORT:
		if (st->consumed != 0)
			abort();
		break;
	default:
		abort();
	}
	if (st->event == SMTPFIX_EV_HELO &&
	    (st->helo_in_len > SMTPFIX_CMD_MAX_CAP ||
	        st->helo_out_len > SMTPFIX_CMD_MAX_CAP))
		abort();
}

static void
fs_drop(char *buf, size_t *len, size_t n)
{
	memmove(buf, buf + n, *len - n);
	*len -= n;
}

static void
fs_count_step(struct fsim *m)
{
	/* Every step that acts consumes a byte, or emits a reply owed for
	 * a line already consumed: a few steps per input byte at most. */
	m->steps++;
	if (m->steps > 4 * m->bytes_in + 1024)
		abort();
}

static int
fs_c2s(struct fsim *m)
{
	struct smtpfix_step st;

	smtpfix_c2s_step(&m->s, m->cin, m->cin_len, &st);
	fs_check(&st, m->cin_len);
	switch (st.act) {
	case SMTPFIX_ACT_NONE:
		return 0;
	case SMTPFIX_ACT_FORWARD:
		fs_to_server(m, m->cin, st.consumed);
		break;
	case SMTPFIX_ACT_EMIT:
		fs_to_server(m, st.emit, st.emit_len);
		break;
	case SMTPFIX_ACT_DISCARD:
		break;
	case SMTPFIX_ACT_ABORT:
		if (m->aborted)
			abort();
		m->aborted = 1;
		/* The upstream connection is reset. */
		m->sin_len = 0;
		m->spend_len = m->spend_off = 0;
		break;
	default:
		abort();
	}
	fs_count_step(m);
	fs_drop(m->cin, &m->cin_len, st.consumed);
	return 1;
}

static int
fs_s2c(struct fsim *m)
{
	struct smtpfix_step st;

	smtpfix_s2c_step(&m->s, m->sin, m->sin_len, &st);
	fs_check(&st, m->sin_len);
	switch (st.act) {
	case SMTPFIX_ACT_NONE:
		return 0;
	case SMTPFIX_ACT_FORWARD:
		fs_to_client(m, m->sin, st.consumed);
		break;
	case SMTPFIX_ACT_EMIT:
		fs_to_client(m, st.emit, st.emit_len);
		break;
	case SMTPFIX_ACT_DISCARD:
		break;
	case SMTPFIX_ACT_CLOSE:
		/* Ours may end a server's multi-line reply early. */
		if (!m->opaque && m->replies.pos != 0)
			abort();
		m->replies.mcode = 0;
		fs_to_client(m, st.emit, st.emit_len);
		if (!m->opaque && m->replies.mcode != 0)
			abort();
		m->closed = 1;
		break;
	case SMTPFIX_ACT_OPAQUE:
		if (m->opaque)
			abort();
		fs_to_client(m, m->sin, st.consumed);
		if (m->replies.pos != 0 || m->replies.mcode != 0)
			abort();
		m->opaque = 1;
		/* CVE-2011-0411 / CVE-2021-38371: drop all unread bytes. */
		m->sin_len = 0;
		m->cin_len = 0;
		fs_count_step(m);
		return 1;
	case SMTPFIX_ACT_TLS_UPSTREAM:
		/* The 220 was ours; what follows it unread is dropped, and
		 * what arrives later stands for the decrypted server. */
		if (m->opaque || m->tls_up++ > 64)
			abort();
		fs_drop(m->sin, &m->sin_len, st.consumed);
		m->sin_len = 0;
		fs_count_step(m);
		switch (fs_rand(m) % 8) {
		case 0:
			/* 1: a new clear-text connection (RFC 7435 §1);
			 * the old one's bytes are gone. */
			if (smtpfix_stream_tls_done(
			        &m->s, SMTPFIX_TLSR_UP_FAIL))
				m->sin_len = 0;
			break;
		case 1:
			smtpfix_stream_tls_done(&m->s, SMTPFIX_TLSR_UP_VERIFY);
			break;
		default:
			smtpfix_stream_tls_done(&m->s, SMTPFIX_TLSR_UP_OK);
			break;
		}
		return 1;
	case SMTPFIX_ACT_TLS_CLIENT:
		/* Our 220, at a reply boundary; the client's unread clear
		 * text is dropped. */
		if (m->opaque || m->tls_cli++ > 64)
			abort();
		if (m->replies.pos != 0 || m->replies.mcode != 0)
			abort();
		fs_to_client(m, st.emit, st.emit_len);
		if (memcmp(st.emit, "220 ", 4) != 0)
			abort();
		m->cin_len = 0;
		fs_count_step(m);
		if (fs_rand(m) % 8 == 0) {
			smtpfix_stream_tls_done(
			    &m->s, SMTPFIX_TLSR_CLIENT_FAIL);
			m->closed = 1;
		} else
			smtpfix_stream_tls_done(&m->s, SMTPFIX_TLSR_CLIENT_OK);
		return 1;
	default:
		abort();
	}
	fs_count_step(m);
	fs_drop(m->sin, &m->sin_len, st.consumed);
	return 1;
}

static void
fs_pump(struct fsim *m)
{
	int a, b;

	while (!m->closed) {
		a = fs_c2s(m);
		if (m->closed)
			break;
		b = fs_s2c(m);
		if (!a && !b)
			break;
	}
}

/* Queues bytes that will arrive from a peer later, by chunks. */
static void
fs_later(struct fsim *m, int srv, const char *p, size_t n)
{
	char *buf = srv ? m->spend : m->cpend;
	size_t *len = srv ? &m->spend_len : &m->cpend_len;

	if (*len + n > FS_BUF) {
		m->full = 1;
		return;
	}
	memcpy(buf + *len, p, n);
	*len += n;
}

/* Lets up to n pending bytes of one peer arrive; returns how many. */
static size_t
fs_arrive(struct fsim *m, int srv, size_t n)
{
	char *pend = srv ? m->spend : m->cpend;
	size_t *off = srv ? &m->spend_off : &m->cpend_off;
	size_t *plen = srv ? &m->spend_len : &m->cpend_len;
	char *in = srv ? m->sin : m->cin;
	size_t *ilen = srv ? &m->sin_len : &m->cin_len;

	if (n > *plen - *off)
		n = *plen - *off;
	if (*ilen + n > FS_BUF) {
		m->full = 1;
		n = FS_BUF - *ilen;
	}
	if (!m->closed && !(srv && m->aborted)) {
		memcpy(in + *ilen, pend + *off, n);
		*ilen += n;
		m->bytes_in += n;
	}
	*off += n;
	if (*off == *plen)
		*off = *plen = 0;
	return n;
}

/* A chunk size: mostly small, sometimes everything. */
static size_t
fs_chunk(struct fsim *m)
{
	uint32_t r = fs_rand(m);

	if (r % 8 == 0)
		return FS_BUF;
	return 1 + (r >> 8) % 64;
}

/* Plays both peers' pending bytes to the end, in random chunks. */
static void
fs_run(struct fsim *m)
{
	size_t a, b;
	int idle;

	for (idle = 0; idle < 2 && !m->full;) {
		a = fs_arrive(m, 0, fs_chunk(m));
		b = fs_arrive(m, 1, fs_chunk(m));
		fs_pump(m);
		idle = a == 0 && b == 0 ? idle + 1 : 0;
	}
	if (m->full)
		return;
	/* Nothing left to arrive: the last CR of the client may only be
	 * unread, never relayed alone (checked by fs_to_server). */
	if (!m->opaque && m->replies.pos != 0)
		abort();
}

#endif
