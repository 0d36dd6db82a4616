/*
 * smtpfix/stream_test.c: unit tests of smtpfix/stream.c.
 *
 * A small driver plays whole sessions through both step functions the
 * way the gateway does: client bytes and server bytes arrive in chunks
 * of any size, every action is performed, and the bytes that reach the
 * server and the client are compared byte for byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "smtpfix/identity.h"
#include "smtpfix/stream.h"
#include "smtpfix/tlspolicy.h"

#define S(x) (x), (sizeof(x) - 1)
#define FQDN "gw.example.net"
#define BUFMAX (256 * 1024)
#define LOGMAX 4096

#define GREET "220 mx.example.org ESMTP\r\n"
#define R500BAD "500 5.5.2 " FQDN " bare CR, LF or NUL in command\r\n"
#define R500LONG "500 5.5.2 " FQDN " line too long\r\n"
#define R502BDAT                                                               \
	"502 5.5.1 " FQDN " BDAT not offered (CHUNKING not advertised)\r\n"
#define R501BDAT "501 5.5.4 " FQDN " bad BDAT syntax, closing\r\n"
#define R554                                                                   \
	"554 5.6.0 " FQDN                                                      \
	" message refused: bare CR, LF or NUL in message data\r\n"
#define R421 "421 4.4.2 " FQDN " upstream protocol error, closing\r\n"
#define R554SYNC "554 5.5.0 " FQDN " Error: SMTP protocol synchronization\r\n"

struct logent {
	int s2c;
	enum smtpfix_act act;
	enum smtpfix_event event;
	int secret;
	const char *verb;
	size_t consumed;
};

struct sim {
	struct smtpfix_policy pol;
	struct smtpfix_tlspolicy tls;
	struct smtpfix_stream s;
	char cin[BUFMAX]; /* unread client bytes */
	size_t cin_len;
	char sin[BUFMAX]; /* unread server bytes */
	size_t sin_len;
	char srv[BUFMAX]; /* what reached the server */
	size_t srv_len;
	char cli[BUFMAX]; /* what reached the client */
	size_t cli_len;
	size_t srv_clear; /* srv bytes before TLS */
	size_t cli_clear;
	int aborted, closed, opaque;
	int front;             /* ACT_FRONT seen (route mode) */
	int route_same;        /* verdict given to ACT_ROUTE_CHECK */
	int checks;            /* ACT_ROUTE_CHECK seen */
	int tls_up, tls_cli;   /* ACT_TLS_UPSTREAM, ACT_TLS_CLIENT seen */
	const char *detail;    /* of the last EV_STARTTLS */
	const char *id_detail; /* of the last EV_IDENTITY */
	struct smtpfix_identity id;
	unsigned events[32];
	char helo_in[600], helo_out[600];
	size_t helo_in_len, helo_out_len;
	struct logent log[LOGMAX];
	size_t nlog;
};

/* One segment of a session: bytes from the client or from the server. */
struct seg {
	int srv;
	const char *p;
	size_t len;
};

#define C(x)                                                                   \
	{                                                                      \
		0, (x), sizeof(x) - 1                                          \
	}
#define SV(x)                                                                  \
	{                                                                      \
		1, (x), sizeof(x) - 1                                          \
	}
#define NSEG(a) (sizeof(a) / sizeof((a)[0]))

static struct sim sim;

static void
sim_init(struct sim *m, enum smtpfix_helo_mode mode)
{
	memset(m, 0, sizeof(*m));
	m->pol.fqdn = FQDN;
	m->pol.fqdn_len = sizeof(FQDN) - 1;
	m->pol.helo = mode;
	m->pol.cmd_max = 512;
	m->pol.reply_max = 512;
	smtpfix_stream_init(&m->s, &m->pol);
}

static void
append(char *dst, size_t *dlen, const char *p, size_t n)
{
	assert_true(*dlen + n <= BUFMAX);
	memcpy(dst + *dlen, p, n);
	*dlen += n;
}

static void
drop(char *buf, size_t *len, size_t n)
{
	assert_true(n <= *len);
	memmove(buf, buf + n, *len - n);
	*len -= n;
}

static void
logstep(struct sim *m, int s2c, const struct smtpfix_step *st)
{
	struct logent *e;

	if (st->event < sizeof(m->events) / sizeof(m->events[0]))
		m->events[st->event]++;
	if (st->event == SMTPFIX_EV_STARTTLS)
		m->detail = st->detail;
	if (st->event == SMTPFIX_EV_IDENTITY)
		m->id_detail = st->detail;
	if (m->nlog >= LOGMAX)
		return;
	e = &m->log[m->nlog++];
	e->s2c = s2c;
	e->act = st->act;
	e->event = st->event;
	e->secret = st->secret;
	e->verb = st->verb;
	e->consumed = st->consumed;
}

/* Checks what every step must satisfy, whatever the input. */
static void
check_step(const struct smtpfix_step *st, size_t len)
{
	assert_true(st->consumed <= len);
	assert_true(st->emit_len <= SMTPFIX_EMIT_MAX);
	switch (st->act) {
	case SMTPFIX_ACT_NONE:
		assert_int_equal(st->consumed, 0);
		assert_int_equal(st->emit_len, 0);
		break;
	case SMTPFIX_ACT_FORWARD:
	case SMTPFIX_ACT_OPAQUE:
		/* Never more than offered (checked above): the caller
		 * offers what its output can hold. */
		assert_true(st->consumed > 0);
		break;
	case SMTPFIX_ACT_EMIT:
	case SMTPFIX_ACT_CLOSE:
		assert_non_null(st->emit);
		assert_true(st->emit_len > 0);
		break;
	case SMTPFIX_ACT_DISCARD:
		assert_true(st->consumed > 0);
		break;
	case SMTPFIX_ACT_ABORT:
		assert_int_equal(st->consumed, 0);
		break;
	case SMTPFIX_ACT_TLS_UPSTREAM:
		assert_true(st->consumed > 0);
		assert_int_equal(st->emit_len, 0);
		break;
	case SMTPFIX_ACT_TLS_CLIENT:
		assert_int_equal(st->consumed, 0);
		assert_non_null(st->emit);
		assert_true(st->emit_len > 0);
		break;
	case SMTPFIX_ACT_FRONT:
	case SMTPFIX_ACT_ROUTE_CHECK:
		assert_int_equal(st->consumed, 0);
		assert_int_equal(st->emit_len, 0);
		break;
	default:
		fail();
	}
}

static int
c2s_once(struct sim *m)
{
	struct smtpfix_step st;

	smtpfix_c2s_step(&m->s, m->cin, m->cin_len, &st);
	check_step(&st, m->cin_len);
	logstep(m, 0, &st);
	switch (st.act) {
	case SMTPFIX_ACT_NONE:
		return 0;
	case SMTPFIX_ACT_FRONT:
		m->front++;
		return 0;
	case SMTPFIX_ACT_ROUTE_CHECK:
		/* The gateway's DNS answers at once here. */
		m->checks++;
		smtpfix_stream_route_verdict(&m->s, m->route_same);
		return 1;
	case SMTPFIX_ACT_FORWARD:
		assert_false(m->aborted);
		append(m->srv, &m->srv_len, m->cin, st.consumed);
		break;
	case SMTPFIX_ACT_EMIT:
		assert_false(m->aborted);
		append(m->srv, &m->srv_len, st.emit, st.emit_len);
		break;
	case SMTPFIX_ACT_DISCARD:
		break;
	case SMTPFIX_ACT_ABORT:
		assert_false(m->aborted);
		m->aborted = 1;
		/* The upstream connection is reset: its bytes are gone. */
		m->sin_len = 0;
		break;
	default:
		fail_msg("c2s act %d", st.act);
	}
	if (st.event == SMTPFIX_EV_HELO) {
		assert_true(st.helo_in_len < sizeof(m->helo_in));
		assert_true(st.helo_out_len < sizeof(m->helo_out));
		memcpy(m->helo_in, st.helo_in, st.helo_in_len);
		m->helo_in_len = st.helo_in_len;
		memcpy(m->helo_out, st.helo_out, st.helo_out_len);
		m->helo_out_len = st.helo_out_len;
	}
	drop(m->cin, &m->cin_len, st.consumed);
	return 1;
}

static int
s2c_once(struct sim *m)
{
	struct smtpfix_step st;

	smtpfix_s2c_step(&m->s, m->sin, m->sin_len, &st);
	check_step(&st, m->sin_len);
	logstep(m, 1, &st);
	switch (st.act) {
	case SMTPFIX_ACT_NONE:
		return 0;
	case SMTPFIX_ACT_FORWARD:
		append(m->cli, &m->cli_len, m->sin, st.consumed);
		break;
	case SMTPFIX_ACT_EMIT:
		append(m->cli, &m->cli_len, st.emit, st.emit_len);
		break;
	case SMTPFIX_ACT_DISCARD:
		break;
	case SMTPFIX_ACT_CLOSE:
		append(m->cli, &m->cli_len, st.emit, st.emit_len);
		m->closed = 1;
		break;
	case SMTPFIX_ACT_OPAQUE:
		assert_false(m->opaque);
		append(m->cli, &m->cli_len, m->sin, st.consumed);
		m->opaque = 1;
		m->srv_clear = m->srv_len;
		m->cli_clear = m->cli_len;
		/* CVE-2011-0411, CVE-2021-38371: nothing read before the
		 * TLS handshake may count after it. */
		m->sin_len = 0;
		m->cin_len = 0;
		return 1;
	case SMTPFIX_ACT_TLS_UPSTREAM:
		/* The 220 is ours; what follows it in clear text is not the
		 * server's TLS (CVE-2021-38371 class): dropped. */
		m->tls_up++;
		m->sin_len = 0;
		return 1;
	case SMTPFIX_ACT_TLS_CLIENT:
		/* Our 220; the client's clear text before the handshake is
		 * dropped (CVE-2011-0411 class). */
		m->tls_cli++;
		append(m->cli, &m->cli_len, st.emit, st.emit_len);
		m->cin_len = 0;
		return 1;
	default:
		fail_msg("s2c act %d", st.act);
	}
	drop(m->sin, &m->sin_len, st.consumed);
	return 1;
}

static void
pump(struct sim *m)
{
	int n, a, b;

	for (n = 0; !m->closed; n++) {
		assert_true(n < 1000000);
		a = c2s_once(m);
		if (m->closed)
			break;
		b = s2c_once(m);
		if (!a && !b)
			break;
	}
}

static void
feed(struct sim *m, int srv, const char *p, size_t len)
{
	if (m->closed)
		return;
	if (srv) {
		if (m->aborted)
			return;
		append(m->sin, &m->sin_len, p, len);
	} else
		append(m->cin, &m->cin_len, p, len);
	pump(m);
}

/*
 * Plays the segments in order, each cut in chunks of chunk bytes (0: in
 * one piece); segment split_seg is instead cut once, at split_at.
 */
static void
play(struct sim *m, const struct seg *segs, size_t n, size_t chunk,
    size_t split_seg, size_t split_at)
{
	size_t i, off, k;

	for (i = 0; i < n; i++) {
		if (i == split_seg) {
			feed(m, segs[i].srv, segs[i].p, split_at);
			feed(m, segs[i].srv, segs[i].p + split_at,
			    segs[i].len - split_at);
			continue;
		}
		if (chunk == 0) {
			feed(m, segs[i].srv, segs[i].p, segs[i].len);
			continue;
		}
		for (off = 0; off < segs[i].len; off += k) {
			k = segs[i].len - off < chunk ? segs[i].len - off
			                              : chunk;
			feed(m, segs[i].srv, segs[i].p + off, k);
		}
	}
}

static void
escape(const char *p, size_t n, char *dst, size_t cap)
{
	size_t i, o;

	o = 0;
	for (i = 0; i < n && o + 5 < cap; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '\r') {
			dst[o++] = '\\';
			dst[o++] = 'r';
		} else if (c == '\n') {
			dst[o++] = '\\';
			dst[o++] = 'n';
		} else if (c < 0x20 || c >= 0x7f) {
			o += (size_t)snprintf(dst + o, cap - o, "\\x%02x", c);
		} else
			dst[o++] = (char)c;
	}
	dst[o] = '\0';
}

static void
expect_bytes(const char *what, const char *got, size_t glen, const char *want,
    size_t wlen)
{
	static char a[8192], b[8192];

	if (glen == wlen && memcmp(got, want, wlen) == 0)
		return;
	escape(got, glen, a, sizeof(a));
	escape(want, wlen, b, sizeof(b));
	print_error("%s:\n  got  \"%s\"\n  want \"%s\"\n", what, a, b);
	fail();
}

#define EXPECT_SRV(m, x) expect_bytes("server", (m)->srv, (m)->srv_len, S(x))
#define EXPECT_CLI(m, x) expect_bytes("client", (m)->cli, (m)->cli_len, S(x))

/* 1 if p[0..n) has a CR not followed by LF, an LF not after a CR, or a
 * NUL. */
static int
has_bare(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (p[i] == '\0')
			return 1;
		if (p[i] == '\r' && (i + 1 >= n || p[i + 1] != '\n'))
			return 1;
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
			return 1;
	}
	return 0;
}

static const char *
find_mem(const char *h, size_t hn, const char *nd, size_t nn)
{
	size_t i;

	for (i = 0; i + nn <= hn; i++)
		if (memcmp(h + i, nd, nn) == 0)
			return h + i;
	return NULL;
}

/* Whatever happened, the server got CRLF-clean bytes before TLS. */
static void
check_clean(const struct sim *m)
{
	size_t n = m->opaque ? m->srv_clear : m->srv_len;

	assert_false(has_bare(m->srv, n));
	n = m->opaque ? m->cli_clear : m->cli_len;
	assert_false(has_bare(m->cli, n));
}

static const struct logent *
last_c2s(const struct sim *m, enum smtpfix_act act)
{
	size_t i;

	for (i = m->nlog; i > 0; i--)
		if (!m->log[i - 1].s2c && m->log[i - 1].act == act)
			return &m->log[i - 1];
	fail();
	return NULL;
}

/* A session up to the end of the EHLO exchange. */
static void
open_session(struct sim *m, enum smtpfix_helo_mode mode)
{
	sim_init(m, mode);
	feed(m, 1, S(GREET));
	feed(m, 0, S("EHLO client.example.org\r\n"));
	feed(m, 1, S("250-mx.example.org\r\n250 PIPELINING\r\n"));
	m->srv_len = 0;
	m->cli_len = 0;
	m->nlog = 0;
	memset(m->events, 0, sizeof(m->events));
}

/*
 * Greeting.
 */

static void
test_greeting_hold(void **state)
{
	struct sim *m = &sim;

	(void)state;
	sim_init(m, SMTPFIX_HELO_ALWAYS);
	assert_int_equal(smtpfix_stream_upstream_gone(&m->s), 1);
	/* The greeting in pieces: the client waits for its last line. */
	feed(m, 1, S("220-mx.example.org ESMTP\r\n"));
	feed(m, 1, S("220 "));
	feed(m, 1, S("ready\r"));
	feed(m, 1, S("\n"));
	feed(m, 0, S("EHLO [192.0.2.1]\r\n"));
	EXPECT_SRV(m, "EHLO " FQDN "\r\n");
	EXPECT_CLI(m, "220-mx.example.org ESMTP\r\n220 ready\r\n");
	check_clean(m);
}

#define R554PRE                                                                \
	"554 5.5.1 " FQDN                                                      \
	" protocol error: client sent data before the greeting\r\n"

/* RFC 5321 §3.1, §4.3.1: the server speaks first.  A client that does
 * not wait (a PROXY header, a script) is refused, and none of its bytes
 * reach the server, then or later. */
static void
test_pregreet(void **state)
{
	static const char *const early[] = {
	    "PROXY TCP4 192.0.2.99 192.0.2.30 4711 25\r\n",
	    "EHLO [192.0.2.1]\r\n",
	    "E",
	    "\r\n",
	};
	struct sim *m = &sim;
	size_t i;

	(void)state;
	for (i = 0; i < NSEG(early); i++) {
		sim_init(m, SMTPFIX_HELO_ALWAYS);
		feed(m, 0, early[i], strlen(early[i]));
		assert_true(m->aborted);
		assert_true(m->closed);
		assert_int_equal(m->events[SMTPFIX_EV_PREGREET], 1);
		EXPECT_CLI(m, R554PRE);
		feed(m, 1, S(GREET));
		feed(m, 0, S("MAIL FROM:<a@example.net>\r\n"));
		assert_int_equal(m->srv_len, 0);
		EXPECT_CLI(m, R554PRE);
	}
	/* Inside a multi-line greeting: still before the greeting. */
	sim_init(m, SMTPFIX_HELO_ALWAYS);
	feed(m, 1, S("220-mx.example.org ESMTP\r\n"));
	feed(m, 0, S("EHLO x\r\n"));
	assert_true(m->closed);
	EXPECT_CLI(m, "220-mx.example.org ESMTP\r\n" R554PRE);
	assert_int_equal(m->srv_len, 0);
}

static void
test_greeting_554(void **state)
{
	struct sim *m = &sim;

	(void)state;
	/* RFC 5321 §3.1: a 554 greeting still ends the greeting. */
	sim_init(m, SMTPFIX_HELO_ALWAYS);
	feed(m, 1, S("554 go away\r\n"));
	feed(m, 0, S("QUIT\r\n"));
	EXPECT_SRV(m, "QUIT\r\n");
	feed(m, 1, S("221 bye\r\n"));
	EXPECT_CLI(m, "554 go away\r\n221 bye\r\n");
	assert_int_equal(smtpfix_stream_upstream_gone(&m->s), 0);
}

/*
 * HELO/EHLO rewrite.
 */

struct helo_case {
	enum smtpfix_helo_mode mode;
	const char *arg;
	int rewritten;
};

static void
test_helo_modes(void **state)
{
	static const struct helo_case cases[] = {
	    {SMTPFIX_HELO_ALWAYS, "[192.0.2.1]", 1},
	    {SMTPFIX_HELO_ALWAYS, "[IPv6:2001:db8::1]", 1},
	    {SMTPFIX_HELO_ALWAYS, "[tag:x]", 1},
	    {SMTPFIX_HELO_ALWAYS, "client.example.org", 1},
	    {SMTPFIX_HELO_ALWAYS, "", 0},
	    {SMTPFIX_HELO_LITERALS, "[192.0.2.1]", 1},
	    {SMTPFIX_HELO_LITERALS, "[IPv6:2001:db8::1]", 1},
	    {SMTPFIX_HELO_LITERALS, "[tag:x]", 1},
	    {SMTPFIX_HELO_LITERALS, "client.example.org", 0},
	    {SMTPFIX_HELO_LITERALS, "", 0},
	    {SMTPFIX_HELO_OFF, "[192.0.2.1]", 0},
	    {SMTPFIX_HELO_OFF, "[IPv6:2001:db8::1]", 0},
	    {SMTPFIX_HELO_OFF, "[tag:x]", 0},
	    {SMTPFIX_HELO_OFF, "client.example.org", 0},
	    {SMTPFIX_HELO_OFF, "", 0},
	};
	struct sim *m = &sim;
	char line[128], want[128];
	size_t i, v, n, wn;
	static const char *const vb[] = {"EHLO", "HELO"};

	(void)state;
	for (i = 0; i < NSEG(cases); i++) {
		for (v = 0; v < 2; v++) {
			sim_init(m, cases[i].mode);
			feed(m, 1, S(GREET));
			if (cases[i].arg[0] != '\0')
				n = (size_t)snprintf(line, sizeof(line),
				    "%s %s\r\n", vb[v], cases[i].arg);
			else
				n = (size_t)snprintf(
				    line, sizeof(line), "%s\r\n", vb[v]);
			feed(m, 0, line, n);
			if (cases[i].rewritten)
				wn = (size_t)snprintf(want, sizeof(want),
				    "%s %s\r\n", vb[v], FQDN);
			else
				wn = (size_t)snprintf(
				    want, sizeof(want), "%s", line);
			expect_bytes("server", m->srv, m->srv_len, want, wn);
			assert_int_equal(m->events[SMTPFIX_EV_HELO], 1);
			expect_bytes("helo_in", m->helo_in, m->helo_in_len,
			    cases[i].arg, strlen(cases[i].arg));
			if (cases[i].rewritten)
				expect_bytes("helo_out", m->helo_out,
				    m->helo_out_len, S(FQDN));
			else
				expect_bytes("helo_out", m->helo_out,
				    m->helo_out_len, cases[i].arg,
				    strlen(cases[i].arg));
			assert_string_equal(
			    last_c2s(m, cases[i].rewritten
			                    ? SMTPFIX_ACT_EMIT
			                    : SMTPFIX_ACT_FORWARD)
			        ->verb,
			    vb[v]);
		}
	}
}

static void
test_helo_verb_case(void **state)
{
	struct sim *m = &sim;

	(void)state;
	sim_init(m, SMTPFIX_HELO_ALWAYS);
	feed(m, 1, S(GREET));
	feed(m, 0, S("ehlo [192.0.2.1]\r\n"));
	EXPECT_SRV(m, "ehlo " FQDN "\r\n");
	feed(m, 1, S("250 mx\r\n"));
	feed(m, 0, S("Helo client.example.org\r\n"));
	EXPECT_SRV(m, "ehlo " FQDN "\r\nHelo " FQDN "\r\n");
	feed(m, 1, S("250 mx\r\n"));
	/* Leading blanks and a tab, as a lenient server reads them. */
	feed(m, 0, S(" eHlO\t[IPv6:2001:db8::1] trailing\r\n"));
	EXPECT_SRV(m, "ehlo " FQDN "\r\nHelo " FQDN "\r\neHlO " FQDN "\r\n");
	EXPECT_CLI(m, GREET "250 mx\r\n250 mx\r\n");
}

/*
 * Pipelining.
 */

#define GROUP_SRV                                                              \
	"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\n"             \
	"RCPT TO:<c@example.com>\r\nDATA\r\n"                                  \
	"Subject: hi\r\n\r\nbody\r\n.\r\n"
#define GROUP_CLI                                                              \
	"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 no such user\r\n"           \
	"354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 queued\r\n"

static void
test_pipeline_group(void **state)
{
	static const struct seg segs[] = {
	    C("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\n"
	      "RCPT TO:<c@example.com>\r\nDATA\r\n"),
	    SV("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 no such user\r\n"
	       "354 End data with <CR><LF>.<CR><LF>\r\n"),
	    C("Subject: hi\r\n\r\nbody\r\n.\r\n"),
	    SV("250 2.0.0 queued\r\n"),
	};
	struct sim *m = &sim;
	size_t chunk, seg, at;

	(void)state;
	for (chunk = 0; chunk < 40; chunk++) {
		open_session(m, SMTPFIX_HELO_ALWAYS);
		play(m, segs, NSEG(segs), chunk, (size_t)-1, 0);
		EXPECT_SRV(m, GROUP_SRV);
		EXPECT_CLI(m, GROUP_CLI);
		assert_int_equal(m->events[SMTPFIX_EV_DATA_END], 1);
		assert_int_equal(smtpfix_stream_upstream_gone(&m->s), 0);
		check_clean(m);
	}
	for (seg = 0; seg < NSEG(segs); seg++) {
		for (at = 0; at <= segs[seg].len; at++) {
			open_session(m, SMTPFIX_HELO_ALWAYS);
			play(m, segs, NSEG(segs), 0, seg, at);
			EXPECT_SRV(m, GROUP_SRV);
			EXPECT_CLI(m, GROUP_CLI);
		}
	}
}

static void
test_pipeline_local_order(void **state)
{
	struct sim *m = &sim;

	(void)state;
	/* A local reply in the middle of a group keeps its place. */
	open_session(m, SMTPFIX_HELO_ALWAYS);
	feed(m, 0,
	    S("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\nX\r\nRCPT TO:<c@y>\r\n"
	      "BDAT 3 LAST\r\nabcDATA\r\n"));
	EXPECT_SRV(m, "MAIL FROM:<a@x>\r\nRCPT TO:<c@y>\r\nDATA\r\n");
	assert_int_equal(m->cli_len, 0);
	feed(m, 1, S("250 ok\r\n"));
	EXPECT_CLI(m, "250 ok\r\n" R500BAD);
	feed(m, 1, S("250 ok\r\n"));
	EXPECT_CLI(m, "250 ok\r\n" R500BAD "250 ok\r\n" R502BDAT);
	feed(m, 1, S("554 no valid recipients\r\n"));
	EXPECT_CLI(m, "250 ok\r\n" R500BAD "250 ok\r\n" R502BDAT
	              "554 no valid recipients\r\n");
	check_clean(m);
}

static void
test_data_then_mail(void **state)
{
	static const struct seg segs[] = {
	    C("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"),
	    SV("250 ok\r\n250 ok\r\n354 go\r\n"),
	    C("Subject: one\r\n\r\nfirst\r\n.\r\nMAIL FROM:<c@x>\r\n"
	      "RCPT TO:<d@y>\r\nDATA\r\n"),
	    SV("250 queued 1\r\n250 ok\r\n250 ok\r\n354 go\r\n"),
	    C("Subject: two\r\n\r\nsecond\r\n.\r\nQUIT\r\n"),
	    SV("250 queued 2\r\n221 bye\r\n"),
	};
	struct sim *m = &sim;
	size_t chunk;

	(void)state;
	for (chunk = 0; chunk < 30; chunk++) {
		open_session(m, SMTPFIX_HELO_ALWAYS);
		play(m, segs, NSEG(segs), chunk, (size_t)-1, 0);
		EXPECT_SRV(m, "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"
		              "Subject: one\r\n\r\nfirst\r\n.\r\n"
		              "MAIL FROM:<c@x>\r\nRCPT TO:<d@y>\r\nDATA\r\n"
		              "Subject: two\r\n\r\nsecond\r\n.\r\nQUIT\r\n");
		EXPECT_CLI(m, "250 ok\r\n250 ok\r\n354 go\r\n250 queued 1\r\n"
		              "250 ok\r\n250 ok\r\n354 go\r\n250 queued 2\r\n"
		              "221 bye\r\n");
		assert_int_equal(m->events[SMTPFIX_EV_DATA_END], 2);
		assert_int_equal(m->s.messages, 2);
		assert_int_equal(smtpfix_stream_upstream_gone(&m->s), 0);
	}
}

static void
test_queue_full(void **state)
{
	struct sim *m = &sim;
	size_t i, n;

	(void)state;
	open_session(m, SMTPFIX_HELO_ALWAYS);
	for (i = 0; i < 1000; i++)
		append(m->cin, &m->cin_len, S("NOOP\r\n"));
	pump(m);
	/* Held once the queue is full; told once. */
	assert_int_equal(m->srv_len, 6 * SMTPFIX_QUEUE_LEN);
	assert_int_equal(m->events[SMTPFIX_EV_QUEUE_FULL], 1);
	assert_int_equal(m->cin_len, 6 * (1000 - SMTPFIX_QUEUE_LEN));
	for (i = 0; i < 1000; i++) {
		feed(m, 1, S("250 2.0.0 Ok\r\n"));
		n = i + 1 + SMTPFIX_QUEUE_LEN < 1000 ? i + 1 + SMTPFIX_QUEUE_LEN
		                                     : 1000;
		assert_int_equal(m->srv_len, 6 * n);
		assert_int_equal(m->cli_len, 14 * (i + 1));
	}
	assert_int_equal(m->cin_len, 0);
	assert_int_equal(m->events[SMTPFIX_EV_QUEUE_FULL], 1);
	assert_int_equal(smtpfix_stream_upstream_gone(&m->s), 0);
	check_clean(m);
}

/*
 * DATA.
 */

static void
test_data_refused(void **state)
{
	struct sim *m = &sim;

	(void)state;
	open_session(m, SMTPFIX_HELO_ALWAYS);
	/* Held after DATA: what follows is data only after a 354. */
	feed(m, 0, S("DATA\r\n"));
	EXPECT_SRV(m, "DATA\r\n");
	feed(m, 1, S("554 5.5.1 Error: no valid recipients\r\n"));
	feed(m, 0, S("RSET\r\nSubject: x\r\n"));
	EXPECT_SRV(m, "DATA\r\nRSET\r\n");
	feed(m, 1, S("250 2.0.0 Ok\r\n"));
	EXPECT_CLI(m, "554 5.5.1 Error: no valid recipients\r\n"
	              "250 2.0.0 Ok\r\n"
	              "500 5.5.1 " FQDN " command unrecognized\r\n");
	assert_int_equal(m->events[SMTPFIX_EV_DATA_END], 0);
	assert_int_equal(smtpfix_stream_upstream_gone(&m->s), 0);
	/* 503 to DATA: still commands. */
	feed(m, 0, S("DATA\r\n"));
	feed(m, 1, S("503 5.5.1 Error: need RCPT command\r\n"));
	feed(m, 0, S(".\r\n"));
	EXPECT_SRV(m, "DATA\r\nRSET\r\nDATA\r\n");
	assert_int_equal(m->s.cmode, SMTPFIX_C_CMD);
	assert_int_equal(m->events[SMTPFIX_EV_SYNC], 0);
	/* RFC 2920 §3.1: sent on before the reply to DATA, whatever the
	 * reply: the hardened server's answer, nothing relayed. */
	open_session(m, SMTPFIX_HELO_ALWAYS);
	feed(m, 0, S("DATA\r\nRSET\r\nSubject: x\r\n"));
	feed(m, 1, S("554 5.5.1 Error: no valid recipients\r\n"));
	EXPECT_SRV(m, "DATA\r\n");
	EXPECT_CLI(m, R554SYNC);
	assert_true(m->closed);
	assert_int_equal(m->events[SMTPFIX_EV_SYNC], 1);
}

/* Runs DATA then data bytes d, split at every position and in every
 * chunk size; the server must get want. */
static void
data_exact(
    const char *d, size_t dlen, const char *want, size_t wlen, unsigned ends)
{
	struct sim *m = &sim;
	struct seg segs[4];
	size_t at, chunk;

	segs[0] = (struct seg){0, S("MAIL FROM:<a@x>\r\nDATA\r\n")};
	segs[1] = (struct seg){1, S("250 ok\r\n354 go\r\n")};
	segs[2] = (struct seg){0, d, dlen};
	segs[3] = (struct seg){1, S("250 queued\r\n250 ok\r\n")};
	for (at = 0; at <= dlen; at++) {
		open_session(m, SMTPFIX_HELO_ALWAYS);
		play(m, segs, 4, 0, 2, at);
		expect_bytes("server", m->srv, m->srv_len, want, wlen);
		assert_int_equal(m->events[SMTPFIX_EV_DATA_END], ends);
		assert_int_equal(m->events[SMTPFIX_EV_SMUGGLE], 0);
		check_clean(m);
	}
	for (chunk = 1; chunk <= 8; chunk++) {
		open_session(m, SMTPFIX_HELO_ALWAYS);
		play(m, segs, 4, chunk, (size_t)-1, 0);
		expect_bytes("server", m->srv, m->srv_len, want, wlen);
		assert_int_equal(m->events[SMTPFIX_EV_DATA_END], ends);
	}
}

#define DATA_EXACT(d, tail, ends)                                              \
	data_exact(S(d tail), S("MAIL FROM:<a@x>\r\nDATA\r\n" d tail), ends)

static void
test_data_end_splits(void **state)
{
	(void)state;
	DATA_EXACT("Subject: x\r\n\r\nbody line\r\n.\r\n", "NOOP\r\n", 1);
	DATA_EXACT("a\r\n.\r\n", "", 1);
	DATA_EXACT("\r\n.\r\n", "NOOP\r\n", 1);
	/* The DATA line's CRLF is the first CRLF of the terminator. */
	DATA_EXACT(".\r\n", "NOOP\r\n", 1);
}

static void
test_data_transparency(void **state)
{
	(void)state;
	/* RFC 5321 §4.5.2: stuffed dots and command-like lines are data;
	 * nothing is changed or parsed inside. */
	DATA_EXACT("..\r\n.foo\r\n..\r\nEHLO [192.0.2.1]\r\nDATA\r\n"
	           "QUIT\r\n...\r\n. \r\n .\r\n.\t\r\nx.\r\n\r\n"
	           "BDAT 5\r\nSTARTTLS\r\n.\r\n",
	    "NOOP\r\n", 1);
	DATA_EXACT("..\r\n.\r\n", "", 1);
	DATA_EXACT("...\r\n.\r\n", "", 1);
	/* 8-bit bytes pass. */
	DATA_EXACT("\xc3\xa9t\xc3\xa9\r\n\xff\x01\x7f\r\n.\r\n", "", 1);
}

static void
test_data_large(void **state)
{
	struct sim *m = &sim;
	static char big[100000];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(big); i++)
		big[i] = (i % 77 == 75) ? '\r' : (i % 77 == 76) ? '\n' : 'x';
	open_session(m, SMTPFIX_HELO_ALWAYS);
	feed(m, 0, S("MAIL FROM:<a@x>\r\nDATA\r\n"));
	feed(m, 1, S("250 ok\r\n354 go\r\n"));
	append(m->cin, &m->cin_len, big, sizeof(big));
	append(m->cin, &m->cin_len, S("\r\n.\r\n"));
	pump(m);
	assert_int_equal(m->srv_len, 23 + sizeof(big) + 5);
	assert_memory_equal(m->srv + 23, big, sizeof(big));
	assert_int_equal(m->events[SMTPFIX_EV_DATA_END], 1);
	assert_int_equal(smtpfix_stream_upstream_gone(&m->s), 1);
	feed(m, 1, S("250 queued\r\n"));
	assert_int_equal(smtpfix_stream_upstream_gone(&m->s), 0);
}

/*
 * SMTP smuggling.
 */

static const struct {
	const char *p;
	size_t len;
} smuggles[] = {
    {S("\n.\n")},
    {S("\n.\r\n")},
    {S("\r.\n")},
    {S("\n.\r")},
    {S("\r.\r")},
    {S("\r.\r\n")},
    {S("\r\n.\n")},
    {S("\r\n.\r")},
    {S("\r\n\0.\r\n")},
    {S("\r\n.\0\r\n")},
    {S("\r\r\n")},
    {S("\n")},
    {S("\r")},
    {S("\0")},
};

#define EVIL "MAIL FROM:<evil@x>\r\nRCPT TO:<v@y>\r\nDATA\r\n"
#define EVIL_DATA "From: ceo@example.org\r\n\r\nsmuggled\r\n.\r\n"
#define PRE "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"

/* The server side after DATA must hold no end of data (the DATA line's
 * CRLF counts), nothing from the smuggled message, no bad byte. */
static void
check_smuggled(const struct sim *m)
{
	const char *d;
	size_t n;

	assert_true(m->srv_len >= sizeof(PRE) - 1);
	expect_bytes("server prefix", m->srv, sizeof(PRE) - 1, S(PRE));
	d = m->srv + sizeof(PRE) - 1;
	n = m->srv_len - (sizeof(PRE) - 1);
	assert_false(has_bare(m->srv, m->srv_len));
	assert_null(find_mem(d, n, S("\r\n.\r\n")));
	assert_false(n >= 3 && memcmp(d, ".\r\n", 3) == 0);
	assert_null(find_mem(d, n, S("evil")));
	assert_null(find_mem(d, n, S("smuggled")));
	assert_true(m->aborted);
	assert_true(m->closed);
	assert_int_equal(m->events[SMTPFIX_EV_SMUGGLE], 1);
	assert_int_equal(m->events[SMTPFIX_EV_DATA_END], 0);
	assert_true(m->cli_len >= sizeof(R554) - 1);
	expect_bytes("client tail", m->cli + m->cli_len - (sizeof(R554) - 1),
	    sizeof(R554) - 1, S(R554));
}

static void
smuggle_one(const char *head, size_t hlen, const char *v, size_t vlen)
{
	static char d[512];
	struct sim *m = &sim;
	struct seg segs[3];
	size_t dlen, at, chunk;

	dlen = 0;
	memcpy(d + dlen, head, hlen);
	dlen += hlen;
	memcpy(d + dlen, v, vlen);
	dlen += vlen;
	memcpy(d + dlen, S(EVIL EVIL_DATA "QUIT\r\n"));
	dlen += sizeof(EVIL EVIL_DATA "QUIT\r\n") - 1;
	segs[0] = (struct seg){0, S(PRE)};
	segs[1] = (struct seg){1, S("250 ok\r\n250 ok\r\n354 go\r\n")};
	segs[2] = (struct seg){0, d, dlen};
	for (at = 0; at <= dlen; at++) {
		open_session(m, SMTPFIX_HELO_ALWAYS);
		play(m, segs, 3, 0, 2, at);
		check_smuggled(m);
		EXPECT_CLI(m, "250 ok\r\n250 ok\r\n354 go\r\n" R554);
		assert_int_equal(smtpfix_stream_upstream_gone(&m->s), 0);
	}
	for (chunk = 1; chunk <= 7; chunk++) {
		open_session(m, SMTPFIX_HELO_ALWAYS);
		play(m, segs, 3, chunk, (size_t)-1, 0);
		check_smuggled(m);
	}
	/* Everything at once, the server replies after: the client did
	 * not wait for the 354 (RFC 2920 §3.1), nothing after DATA goes. */
	open_session(m, SMTPFIX_HELO_ALWAYS);
	feed(m, 0, S(PRE));
	feed(m, 0, d, dlen);
	feed(m, 1, S("250 ok\r\n250 ok\r\n354 go\r\n"));
	EXPECT_SRV(m, PRE);
	EXPECT_CLI(m, "250 ok\r\n250 ok\r\n" R554SYNC);
	assert_true(m->closed);
	assert_int_equal(m->events[SMTPFIX_EV_SYNC], 1);
	assert_int_equal(m->events[SMTPFIX_EV_SMUGGLE], 0);
}

static void
test_smuggling(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < NSEG(smuggles); i++) {
		smuggle_one(S("Subject: hi\r\n\r\nbody"), smuggles[i].p,
		    smuggles[i].len);
		/* Right after the DATA line's CRLF. */
		smuggle_one(S(""), smuggles[i].p, smuggles[i].len);
		/* After an empty line. */
		smuggle_one(
		    S("Subject: hi\r\n\r\n"), smuggles[i].p, smuggles[i].len);
		/* After a stuffed dot line. */
		smuggle_one(S("Subject: hi\r\n\r\n..\r\nx"), smuggles[i].p,
		    smuggles[i].len);
	}
}

/* A server that is sent CRLF.CRLF by a clean client after a smuggling
 * attempt still never gets it. */
static void
test_smuggle_dead(void **state)
{
	struct sim *m = &sim;

	(void)state;
	open_session(m, SMTPFIX_HELO_ALWAYS);
	feed(m, 0, S(PRE));
	feed(m, 1, S("250 ok\r\n250 ok\r\n354 go\r\n"));
	feed(m, 0, S("Subject: x\r\n\r\nab\n"));
	assert_true(m->aborted);
	feed(m, 0, S("\r\n.\r\nQUIT\r\n"));
	check_smuggled(m);
	assert_int_equal(m->s.cmode, SMTPFIX_C_DEAD);
}

/* Lines of "x" over n bytes, a CRLF every 40 bytes. */
static size_t
wide_head(char *dst, size_t n)
{
	size_t k;

	for (k = 0; k < n; k++)
		dst[k] = k % 40 == 38 ? '\r' : k % 40 == 39 ? '\n' : 'x';
	if (n > 0 && dst[n - 1] == '\r') /* no bare CR of its own */
		dst[n - 1] = 'x';
	return n;
}

/* Long data, where the scanner passes clean 64-byte blocks at once: a bad
 * byte, a stuffed dot and the end of data around each block's edges. */
static void
test_data_blocks(void **state)
{
	static const char pre[] = "MAIL FROM:<a@x>\r\nDATA\r\n";
	static const char tail[] = "\r\n..y\r\n.\r\n";
	static char head[200], want[300];
	size_t n, i, hl;

	(void)state;
	for (n = 58; n <= 70; n++) {
		hl = wide_head(head, n);
		for (i = 0; i < NSEG(smuggles); i++)
			smuggle_one(head, hl, smuggles[i].p, smuggles[i].len);
	}
	for (n = 56; n <= 136; n++) {
		hl = wide_head(head, n);
		memcpy(head + hl, tail, sizeof(tail) - 1);
		hl += sizeof(tail) - 1;
		memcpy(want, pre, sizeof(pre) - 1);
		memcpy(want + sizeof(pre) - 1, head, hl);
		data_exact(head, hl, want, sizeof(pre) - 1 + hl, 1);
	}
}

/*
 * bare_line_endings = inline (RFC 5321 §2.3.8, §4.1.1.4): the bad byte
 * stays text of its line, the server gets CRLF-clean data that ends only
 * where the gateway saw it end.
 */

/* As data_exact, under the inline policy; events: inline steps. */
static void
inline_exact(
    const char *d, size_t dlen, const char *want, size_t wlen, unsigned events)
{
	struct sim *m = &sim;
	struct seg segs[4];
	size_t at, chunk;

	segs[0] = (struct seg){0, S("MAIL FROM:<a@x>\r\nDATA\r\n")};
	segs[1] = (struct seg){1, S("250 ok\r\n354 go\r\n")};
	segs[2] = (struct seg){0, d, dlen};
	segs[3] = (struct seg){1, S("250 queued\r\n250 ok\r\n")};
	for (at = 0; at <= dlen; at++) {
		open_session(m, SMTPFIX_HELO_ALWAYS);
		m->pol.bare = SMTPFIX_BARE_INLINE;
		play(m, segs, 4, 0, 2, at);
		expect_bytes("server", m->srv, m->srv_len, want, wlen);
		assert_int_equal(m->events[SMTPFIX_EV_DATA_END], 1);
		assert_int_equal(m->events[SMTPFIX_EV_SMUGGLE], 0);
		assert_int_equal(m->events[SMTPFIX_EV_INLINE], events);
		assert_false(m->aborted);
		check_clean(m);
	}
	for (chunk = 1; chunk <= 8; chunk++) {
		open_session(m, SMTPFIX_HELO_ALWAYS);
		m->pol.bare = SMTPFIX_BARE_INLINE;
		play(m, segs, 4, chunk, (size_t)-1, 0);
		expect_bytes("server", m->srv, m->srv_len, want, wlen);
		assert_int_equal(m->events[SMTPFIX_EV_INLINE], events);
	}
}

#define INLINE_EXACT(d, w, n)                                                  \
	inline_exact(                                                          \
	    S(d "NOOP\r\n"), S("MAIL FROM:<a@x>\r\nDATA\r\n" w "NOOP\r\n"), n)

static void
test_inline_exact(void **state)
{
	(void)state;
	/* Client data (after DATA's CRLF), then what the server gets. */
	INLINE_EXACT("a\nb\r\n.\r\n", "a\r\nb\r\n.\r\n", 1);
	INLINE_EXACT("a\rb\r\n.\r\n", "a\r\nb\r\n.\r\n", 1);
	INLINE_EXACT("a\0b\r\n.\r\n", "ab\r\n.\r\n", 1);
	INLINE_EXACT("a\n\n\r\n.\r\n", "a\r\n\r\n\r\n.\r\n", 2);
	/* RFC 5321 §4.5.2: a "." that starts a line of ours is text. */
	INLINE_EXACT("\n.\nx\r\n.\r\n", "\r\n..\r\nx\r\n.\r\n", 2);
	INLINE_EXACT("a\r.\r\n.\r\n", "a\r\n..\r\n.\r\n", 1);
	INLINE_EXACT("a\n..\r\n.\r\n", "a\r\n...\r\n.\r\n", 1);
	/* A line that is "." so far is stuffed before its break. */
	INLINE_EXACT(".\n.\r\n.\r\n", "..\r\n..\r\n.\r\n", 1);
	INLINE_EXACT("x\r\n.\rx\r\n.\r\n", "x\r\n..\r\nx\r\n.\r\n", 1);
	/* NUL: removed; a "." it leaves first on a line is stuffed. */
	INLINE_EXACT("\r\n\0.\r\n.\r\n", "\r\n..\r\n.\r\n", 1);
	INLINE_EXACT("x\r\n.\0\r\n.\r\n", "x\r\n..\r\n.\r\n", 1);
	INLINE_EXACT("\0\0.\0.\r\n.\r\n", "...\r\n.\r\n", 3);
	/* CR CR LF: the bare CR is a line break of its own. */
	INLINE_EXACT("\r\r\n.\r\n", "\r\n\r\n.\r\n", 1);
	INLINE_EXACT("a\r\r\n.\r\r\n.\r\n", "a\r\n\r\n..\r\n\r\n.\r\n", 2);
	/* Clean data goes as it is. */
	INLINE_EXACT("..\r\n.x\r\n\r\n.\r\n", "..\r\n.x\r\n\r\n.\r\n", 0);
}

/* The end-of-data variants of test_smuggling and of the end-to-end
 * hostile client: 16 in all. */
static const struct {
	const char *p;
	size_t len;
} endings[] = {
    {S("\n.\n")},
    {S("\n.\r\n")},
    {S("\r.\n")},
    {S("\n.\r")},
    {S("\r.\r")},
    {S("\r.\r\n")},
    {S("\r\n.\n")},
    {S("\r\n.\r")},
    {S("\r\n\0.\r\n")},
    {S("\r\n.\0\r\n")},
    {S("\r\r\n.\r\r\n")},
    {S("\r\n.\r\r\n")},
    {S("\r\r\n")},
    {S("\n")},
    {S("\r")},
    {S("\0")},
};

/* Inline: one message, the smuggled one inside it as text, then QUIT. */
static void
check_inlined(const struct sim *m)
{
	const char *d, *end;
	size_t n;

	assert_true(m->srv_len >= sizeof(PRE) - 1);
	expect_bytes("server prefix", m->srv, sizeof(PRE) - 1, S(PRE));
	d = m->srv + sizeof(PRE) - 1;
	n = m->srv_len - (sizeof(PRE) - 1);
	assert_false(has_bare(m->srv, m->srv_len));
	assert_false(n >= 3 && memcmp(d, ".\r\n", 3) == 0);
	/* The one end of data is the smuggled message's own, last. */
	end = find_mem(d, n, S("\r\n.\r\n"));
	assert_non_null(end);
	expect_bytes(
	    "server tail", end, (size_t)(d + n - end), S("\r\n.\r\nQUIT\r\n"));
	assert_non_null(find_mem(d, n, S("MAIL FROM:<evil@x>\r\n")));
	assert_non_null(find_mem(d, n, S("\r\nsmuggled")));
	assert_false(m->aborted);
	assert_false(m->closed);
	assert_int_equal(m->events[SMTPFIX_EV_SMUGGLE], 0);
	assert_true(m->events[SMTPFIX_EV_INLINE] >= 1);
	assert_int_equal(m->events[SMTPFIX_EV_DATA_END], 1);
	assert_int_equal(m->s.messages, 1);
}

static void
inline_one(const char *head, size_t hlen, const char *v, size_t vlen)
{
	static char d[512];
	struct sim *m = &sim;
	struct seg segs[4];
	size_t dlen, at, chunk;

	dlen = 0;
	memcpy(d + dlen, head, hlen);
	dlen += hlen;
	memcpy(d + dlen, v, vlen);
	dlen += vlen;
	memcpy(d + dlen, S(EVIL EVIL_DATA "QUIT\r\n"));
	dlen += sizeof(EVIL EVIL_DATA "QUIT\r\n") - 1;
	segs[0] = (struct seg){0, S(PRE)};
	segs[1] = (struct seg){1, S("250 ok\r\n250 ok\r\n354 go\r\n")};
	segs[2] = (struct seg){0, d, dlen};
	segs[3] = (struct seg){1, S("250 queued\r\n221 bye\r\n")};
	for (at = 0; at <= dlen; at++) {
		open_session(m, SMTPFIX_HELO_ALWAYS);
		m->pol.bare = SMTPFIX_BARE_INLINE;
		play(m, segs, 4, 0, 2, at);
		check_inlined(m);
		EXPECT_CLI(m, "250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n"
		              "221 bye\r\n");
	}
	for (chunk = 1; chunk <= 7; chunk++) {
		open_session(m, SMTPFIX_HELO_ALWAYS);
		m->pol.bare = SMTPFIX_BARE_INLINE;
		play(m, segs, 4, chunk, (size_t)-1, 0);
		check_inlined(m);
	}
}

static void
test_inline_smuggling(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < NSEG(endings); i++) {
		inline_one(
		    S("Subject: hi\r\n\r\nbody"), endings[i].p, endings[i].len);
		inline_one(S(""), endings[i].p, endings[i].len);
		inline_one(
		    S("Subject: hi\r\n\r\n"), endings[i].p, endings[i].len);
		inline_one(S("Subject: hi\r\n\r\n..\r\nx"), endings[i].p,
		    endings[i].len);
		inline_one(
		    S("Subject: hi\r\n\r\n.x"), endings[i].p, endings[i].len);
	}
}

/* Reject (the policy's zero value) refuses all 16. */
static void
test_reject_endings(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < NSEG(endings); i++)
		smuggle_one(
		    S("Subject: hi\r\n\r\nbody"), endings[i].p, endings[i].len);
}

/*
 * Synchronisation (RFC 2920 §3.1): DATA, STARTTLS and AUTH end a group;
 * a client that sends on before their reply gets 554 5.5.0.
 */

#define ONE_WRITE                                                              \
	"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"                         \
	"Subject: one\r\n\r\nfirst\r\n.\r\n"                                   \
	"MAIL FROM:<c@x>\r\nRCPT TO:<d@y>\r\nDATA\r\n"                         \
	"Subject: two\r\n\r\nsecond\r\n.\r\nQUIT\r\n"

static void
check_sync(const struct sim *m, const char *srv, size_t slen, const char *cli,
    size_t clen)
{
	expect_bytes("server", m->srv, m->srv_len, srv, slen);
	expect_bytes("client", m->cli, m->cli_len, cli, clen);
	assert_true(m->closed);
	assert_int_equal(m->events[SMTPFIX_EV_SYNC], 1);
	assert_int_equal(m->events[SMTPFIX_EV_DATA_END], 0);
	assert_int_equal(m->s.messages, 0);
	check_clean(m);
}

/* Every split of every segment, and every chunk size up to 40. */
static void
sync_splits(const struct seg *segs, size_t n, enum smtpfix_bare bare,
    const char *srv, size_t slen, const char *cli, size_t clen)
{
	struct sim *m = &sim;
	size_t chunk, seg, at;

	for (chunk = 0; chunk < 40; chunk++) {
		open_session(m, SMTPFIX_HELO_ALWAYS);
		m->pol.bare = bare;
		play(m, segs, n, chunk, (size_t)-1, 0);
		check_sync(m, srv, slen, cli, clen);
	}
	for (seg = 0; seg < n; seg++) {
		for (at = 0; at <= segs[seg].len; at++) {
			open_session(m, SMTPFIX_HELO_ALWAYS);
			m->pol.bare = bare;
			play(m, segs, n, 0, seg, at);
			check_sync(m, srv, slen, cli, clen);
		}
	}
}

static void
test_sync_data(void **state)
{
	/* Two transactions in one write: the server's 354 finds the
	 * first message already waiting. */
	static const struct seg one[] = {
	    C(ONE_WRITE),
	    SV("250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n"),
	};
	/* The replies before the 354 come first. */
	static const struct seg two[] = {
	    C("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"),
	    SV("250 ok\r\n250 ok\r\n"),
	    C("Subject: one\r\n\r\nfirst\r\n.\r\n"),
	    SV("354 go\r\n"),
	};
	/* A refusal of DATA too: the client did not wait for it. */
	static const struct seg three[] = {
	    C("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\nRSET\r\n"),
	    SV("250 ok\r\n550 no\r\n554 5.5.1 no valid recipients\r\n"),
	};
	/* A multi-line 354: its first line is not relayed either. */
	static const struct seg four[] = {
	    C("DATA\r\nx\r\n.\r\n"),
	    SV("354-go\r\n354 on\r\n"),
	};
	enum smtpfix_bare b;

	(void)state;
	for (b = SMTPFIX_BARE_REJECT; b <= SMTPFIX_BARE_INLINE; b++) {
		sync_splits(one, NSEG(one), b,
		    S("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"),
		    S("250 ok\r\n250 ok\r\n" R554SYNC));
		sync_splits(two, NSEG(two), b,
		    S("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"),
		    S("250 ok\r\n250 ok\r\n" R554SYNC));
		sync_splits(three, NSEG(three), b,
		    S("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"),
		    S("250 ok\r\n550 no\r\n" R554SYNC));
		sync_splits(four, NSEG(four), b, S("DATA\r\n"), S(R554SYNC));
	}
}

/* A client that waits for each reply RFC 2920 makes it wait for is
 * unaffected, with everything RFC 2920 §3.1 lets it pipeline pipelined:
 * RSET and the envelope up to DATA, the message with the next envelope
 * behind its end, NOOP as the last of a group.  (NOOP, EHLO, QUIT in the
 * middle of a group are not held here: the server judges them.) */
static void
test_sync_waits(void **state)
{
	static const struct seg segs[] = {
	    C("RSET\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n"
	      "RCPT TO:<c@y>\r\nDATA\r\n"),
	    SV("250 ok\r\n250 ok\r\n250 ok\r\n550 no\r\n354 go\r\n"),
	    C("Subject: one\r\n\r\nfirst\r\n.\r\nMAIL FROM:<d@x>\r\n"
	      "RCPT TO:<e@y>\r\nDATA\r\n"),
	    SV("250 queued 1\r\n250 ok\r\n250 ok\r\n354 go\r\n"),
	    C("Subject: two\r\n\r\nsecond\r\n.\r\nNOOP\r\n"),
	    SV("250 queued 2\r\n250 ok\r\n"),
	    C("QUIT\r\n"),
	    SV("221 bye\r\n"),
	};
	static const char srv[] =
	    "RSET\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nRCPT TO:<c@y>\r\n"
	    "DATA\r\nSubject: one\r\n\r\nfirst\r\n.\r\nMAIL FROM:<d@x>\r\n"
	    "RCPT TO:<e@y>\r\nDATA\r\nSubject: two\r\n\r\nsecond\r\n.\r\n"
	    "NOOP\r\nQUIT\r\n";
	static const char cli[] =
	    "250 ok\r\n250 ok\r\n250 ok\r\n550 no\r\n354 go\r\n"
	    "250 queued 1\r\n250 ok\r\n250 ok\r\n354 go\r\n"
	    "250 queued 2\r\n250 ok\r\n221 bye\r\n";
	struct sim *m = &sim;
	size_t chunk, seg, at;
	enum smtpfix_bare b;

	(void)state;
	for (b = SMTPFIX_BARE_REJECT; b <= SMTPFIX_BARE_INLINE; b++) {
		for (chunk = 0; chunk < 40; chunk++) {
			open_session(m, SMTPFIX_HELO_ALWAYS);
			m->pol.bare = b;
			play(m, segs, NSEG(segs), chunk, (size_t)-1, 0);
			EXPECT_SRV(m, srv);
			EXPECT_CLI(m, cli);
			assert_int_equal(m->events[SMTPFIX_EV_SYNC], 0);
			assert_int_equal(m->s.messages, 2);
		}
		for (seg = 0; seg < NSEG(segs); seg++) {
			for (at = 0; at <= segs[seg].len; at++) {
				open_session(m, SMTPFIX_HELO_ALWAYS);
				m->pol.bare = b;
				play(m, segs, NSEG(segs), 0, seg, at);
				EXPECT_SRV(m, srv);
				EXPECT_CLI(m, cli);
				assert_int_equal(m->events[SMTPFIX_EV_SYNC], 0);
			}
		}
	}
}

/* Bytes the gateway still has in its socket count as early too. */
static void
test_sync_client_early(void **state)
{
	struct sim *m = &sim;

	(void)state;
	open_session(m, SMTPFIX_HELO_ALWAYS);
	assert_int_equal(smtpfix_stream_sync_wait(&m->s), 0);
	smtpfix_stream_client_early(&m->s); /* not held: no effect */
	feed(m, 0, S("NOOP\r\nDATA\r\n"));
	assert_int_equal(smtpfix_stream_sync_wait(&m->s), 1);
	feed(m, 1, S("250 ok\r\n"));
	smtpfix_stream_client_early(&m->s);
	feed(m, 1, S("354 go\r\n"));
	EXPECT_SRV(m, "NOOP\r\nDATA\r\n");
	EXPECT_CLI(m, "250 ok\r\n" R554SYNC);
	assert_int_equal(m->events[SMTPFIX_EV_SYNC], 1);
	assert_int_equal(smtpfix_stream_sync_wait(&m->s), 0);
	/* Released by the reply: no longer early. */
	open_session(m, SMTPFIX_HELO_ALWAYS);
	smtpfix_stream_client_early(&m->s);
	feed(m, 0, S("DATA\r\n"));
	feed(m, 1, S("354 go\r\n"));
	assert_int_equal(smtpfix_stream_sync_wait(&m->s), 0);
	feed(m, 0, S(".\r\n"));
	assert_int_equal(m->events[SMTPFIX_EV_DATA_END], 1);
}

static void
test_sync_auth(void **state)
{
	/* No initial response: the client must wait for the 334. */
	static const struct seg login[] = {
	    C("AUTH LOGIN\r\ndXNlcg==\r\ncGFzcw==\r\n"),
	    SV("334 VXNlcm5hbWU6\r\n"),
	};
	/* A SASL response is a line the client waits after as well. */
	static const struct seg resp[] = {
	    C("AUTH LOGIN\r\n"),
	    SV("334 VXNlcm5hbWU6\r\n"),
	    C("dXNlcg==\r\ncGFzcw==\r\n"),
	    SV("334 UGFzc3dvcmQ6\r\n"),
	};
	/* An initial response the server wants more after. */
	static const struct seg more[] = {
	    C("AUTH LOGIN dXNlcg==\r\ncGFzcw==\r\n"),
	    SV("334 UGFzc3dvcmQ6\r\n"),
	};
	struct sim *m = &sim;

	(void)state;
	sync_splits(login, NSEG(login), SMTPFIX_BARE_REJECT,
	    S("AUTH LOGIN\r\n"), S(R554SYNC));
	sync_splits(resp, NSEG(resp), SMTPFIX_BARE_REJECT,
	    S("AUTH LOGIN\r\ndXNlcg==\r\n"),
	    S("334 VXNlcm5hbWU6\r\n" R554SYNC));
	sync_splits(more, NSEG(more), SMTPFIX_BARE_REJECT,
	    S("AUTH LOGIN dXNlcg==\r\n"), S(R554SYNC));
	/* RFC 4954 §4: an initial response that completes in one round
	 * trip may be followed at once, whatever the outcome. */
	open_session(m, SMTPFIX_HELO_ALWAYS);
	feed(m, 0, S("AUTH PLAIN AHVzZXIAcGFzcw==\r\nMAIL FROM:<a@x>\r\n"));
	EXPECT_SRV(m, "AUTH PLAIN AHVzZXIAcGFzcw==\r\n");
	feed(m, 1, S("235 2.7.0 ok\r\n250 ok\r\n"));
	EXPECT_SRV(m, "AUTH PLAIN AHVzZXIAcGFzcw==\r\nMAIL FROM:<a@x>\r\n");
	EXPECT_CLI(m, "235 2.7.0 ok\r\n250 ok\r\n");
	open_session(m, SMTPFIX_HELO_ALWAYS);
	feed(m, 0, S("AUTH PLAIN AHVzZXIAcGFzcw==\r\nMAIL FROM:<a@x>\r\n"));
	feed(m, 1, S("535 5.7.8 no\r\n503 auth first\r\n"));
	EXPECT_CLI(m, "535 5.7.8 no\r\n503 auth first\r\n");
	assert_int_equal(m->events[SMTPFIX_EV_SYNC], 0);
	assert_false(m->closed);
}

/*
 * Command line errors.
 */

static void
test_bad_command_chars(void **state)
{
	static const struct {
		const char *p;
		size_t len;
	} bad[] = {
	    {S("MAIL FROM:<a@x>\nRCPT TO:<b@y>\r\n")},
	    {S("NOOP\rRSET\r\n")},
	    {S("NO\0OP\r\n")},
	    {S("\n\r\n")},
	    {S("\r\r\n")},
	    {S("EHLO a\nDATA\r\n")},
	    {S("DATA\n.\nMAIL FROM:<x@y>\r\n")},
	};
	struct sim *m = &sim;
	struct seg segs[2];
	size_t i, at;

	(void)state;
	for (i = 0; i < NSEG(bad); i++) {
		for (at = 0; at <= bad[i].len; at++) {
			open_session(m, SMTPFIX_HELO_ALWAYS);
			segs[0] = (struct seg){0, bad[i].p, bad[i].len};
			segs[1] = (struct seg){0, S("NOOP\r\n")};
			play(m, segs, 2, 0, 0, at);
			EXPECT_SRV(m, "NOOP\r\n");
			feed(m, 1, S("250 ok\r\n"));
			EXPECT_CLI(m, R500BAD "250 ok\r\n");
			assert_int_equal(m->events[SMTPFIX_EV_BAD_LINE], 1);
		}
	}
}

static void
test_too_long(void **state)
{
	static char line[2048];
	struct sim *m = &sim;
	struct seg segs[3];
	size_t n, at, chunk;

	(void)state;
	n = 0;
	memcpy(line, "NOOP ", 5);
	n = 5;
	memset(line + n, 'x', 700);
	n += 700;
	/* Bare LFs and CRs inside do not end it. */
	line[100] = '\n';
	line[600] = '\r';
	memcpy(line + n, "\r\n", 2);
	n += 2;
	segs[0] = (struct seg){0, line, n};
	segs[1] = (struct seg){0, S("NOOP\r\n")};
	segs[2] = (struct seg){1, S("250 ok\r\n")};
	for (at = 0; at <= n; at++) {
		open_session(m, SMTPFIX_HELO_ALWAYS);
		play(m, segs, 3, 0, 0, at);
		EXPECT_SRV(m, "NOOP\r\n");
		EXPECT_CLI(m, R500LONG "250 ok\r\n");
		assert_int_equal(m->events[SMTPFIX_EV_TOO_LONG], 1);
	}
	for (chunk = 1; chunk < 20; chunk++) {
		open_session(m, SMTPFIX_HELO_ALWAYS);
		play(m, segs, 3, chunk, (size_t)-1, 0);
		EXPECT_SRV(m, "NOOP\r\n");
		EXPECT_CLI(m, R500LONG "250 ok\r\n");
	}
	/* The cap counts the CRLF: 512 passes, 513 does not. */
	open_session(m, SMTPFIX_HELO_ALWAYS);
	memset(line, 'y', sizeof(line));
	memcpy(line, "NOOP ", 5);
	memcpy(line + 510, "\r\n", 2);
	feed(m, 0, line, 512);
	assert_int_equal(m->srv_len, 512);
	memcpy(line + 510, "y\r\n", 3);
	feed(m, 0, line, 513);
	assert_int_equal(m->srv_len, 512);
	feed(m, 1, S("250 ok\r\n"));
	EXPECT_CLI(m, "250 ok\r\n" R500LONG);
	/* Two long lines back to back: two replies. */
	open_session(m, SMTPFIX_HELO_ALWAYS);
	feed(m, 0, line, 513);
	feed(m, 0, line, 513);
	EXPECT_CLI(m, R500LONG R500LONG);
	assert_int_equal(m->srv_len, 0);
}

/*
 * BDAT (RFC 3030): never offered, so always refused locally.
 */

static void
test_bdat_refused(void **state)
{
	static const struct seg segs[] = {
	    C("BDAT 10 LAST\r\n0123456789NOOP\r\n"),
	    SV("250 ok\r\n"),
	    C("NOOP\r\nBDAT 3\r\nabcBDAT 0 last\r\nNOOP\r\n"),
	    SV("250 ok\r\n250 ok\r\n"),
	};
	struct sim *m = &sim;
	size_t seg, at;

	(void)state;
	for (seg = 0; seg < NSEG(segs); seg++) {
		for (at = 0; at <= segs[seg].len; at++) {
			open_session(m, SMTPFIX_HELO_ALWAYS);
			play(m, segs, NSEG(segs), 0, seg, at);
			EXPECT_SRV(m, "NOOP\r\nNOOP\r\nNOOP\r\n");
			EXPECT_CLI(m,
			    R502BDAT "250 ok\r\n250 ok\r\n" R502BDAT R502BDAT
			             "250 ok\r\n");
			assert_int_equal(m->events[SMTPFIX_EV_BDAT], 3);
			assert_false(m->closed);
		}
	}
	/* A chunk that holds a whole SMTP transaction is skipped. */
	open_session(m, SMTPFIX_HELO_ALWAYS);
	feed(m, 0,
	    S("BDAT 38\r\nMAIL FROM:<e@x>\r\nRCPT TO:<v@y>\r\nDATA\r\n"
	      "RSET\r\n"));
	EXPECT_SRV(m, "RSET\r\n");
	/* The largest size there is parses. */
	open_session(m, SMTPFIX_HELO_ALWAYS);
	feed(m, 0, S("BDAT 18446744073709551615 LAST\r\nRSET\r\n"));
	assert_int_equal(m->srv_len, 0);
	EXPECT_CLI(m, R502BDAT);
	assert_int_equal(m->s.cmode, SMTPFIX_C_BDAT_DISCARD);
}

static void
test_bdat_syntax(void **state)
{
	static const struct {
		const char *p;
		size_t len;
	} bad[] = {
	    {S("BDAT\r\n")},
	    {S("BDAT \r\n")},
	    {S("BDAT x\r\n")},
	    {S("BDAT -1\r\n")},
	    {S("BDAT 10 LASTX\r\n")},
	    {S("BDAT 10 FIRST\r\n")},
	    {S("BDAT  10\r\n")},
	    {S("BDAT 10 \r\n")},
	    {S("BDAT\t10\r\n")},
	    {S("BDAT 18446744073709551616\r\n")},
	    {S("BDAT 99999999999999999999999\r\n")},
	};
	struct sim *m = &sim;
	size_t i;

	(void)state;
	for (i = 0; i < NSEG(bad); i++) {
		open_session(m, SMTPFIX_HELO_ALWAYS);
		feed(m, 0, S("NOOP\r\n"));
		feed(m, 0, bad[i].p, bad[i].len);
		feed(m, 0, S("NOOP\r\n"));
		EXPECT_SRV(m, "NOOP\r\n");
		assert_false(m->closed);
		feed(m, 1, S("250 ok\r\n"));
		EXPECT_CLI(m, "250 ok\r\n" R501BDAT);
		assert_true(m->closed);
		assert_int_equal(m->events[SMTPFIX_EV_BDAT], 1);
	}
}

/*
 * EHLO reply filter (RFC 3030: no CHUNKING, no BINARYMIME).
 */

static void
ehlo_filter(const char *in, size_t ilen, const char *want, size_t wlen)
{
	struct sim *m = &sim;
	struct seg segs[3];
	size_t at, chunk;

	segs[0] = (struct seg){0, S("EHLO client.example.org\r\n")};
	segs[1] = (struct seg){1, in, ilen};
	segs[2] = (struct seg){0, S("NOOP\r\n")};
	for (at = 0; at <= ilen; at++) {
		sim_init(m, SMTPFIX_HELO_ALWAYS);
		feed(m, 1, S(GREET));
		m->cli_len = 0;
		play(m, segs, 3, 0, 1, at);
		expect_bytes("client", m->cli, m->cli_len, want, wlen);
		check_clean(m);
	}
	for (chunk = 1; chunk < 10; chunk++) {
		sim_init(m, SMTPFIX_HELO_ALWAYS);
		feed(m, 1, S(GREET));
		m->cli_len = 0;
		play(m, segs, 3, chunk, (size_t)-1, 0);
		expect_bytes("client", m->cli, m->cli_len, want, wlen);
	}
	/* A local reply queued meanwhile comes after the whole reply. */
	sim_init(m, SMTPFIX_HELO_ALWAYS);
	feed(m, 1, S(GREET));
	m->cli_len = 0;
	feed(m, 0, S("EHLO client.example.org\r\nNO\nOP\r\n"));
	feed(m, 1, in, ilen);
	assert_true(m->cli_len == wlen + sizeof(R500BAD) - 1);
	expect_bytes("client", m->cli, wlen, want, wlen);
}

#define EHLO_FILTER(in, want) ehlo_filter(S(in), S(want))

static void
test_ehlo_filter(void **state)
{
	(void)state;
	/* Postfix 3.x as shipped: CHUNKING is the last line. */
	EHLO_FILTER("250-mx.example.org\r\n250-PIPELINING\r\n"
	            "250-SIZE 10240000\r\n250-VRFY\r\n250-ETRN\r\n"
	            "250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n"
	            "250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n"
	            "250 CHUNKING\r\n",
	    "250-mx.example.org\r\n250-PIPELINING\r\n"
	    "250-SIZE 10240000\r\n250-VRFY\r\n"
	    "250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n"
	    "250-8BITMIME\r\n250-DSN\r\n250 SMTPUTF8\r\n");
	EHLO_FILTER("250-mx.example.org\r\n250-PIPELINING\r\n250-CHUNKING\r\n"
	            "250-8BITMIME\r\n250-BINARYMIME\r\n250 CHUNKING\r\n",
	    "250-mx.example.org\r\n250-PIPELINING\r\n250 8BITMIME\r\n");
	EHLO_FILTER("250-mx\r\n250-chunking\r\n250 SIZE 100\r\n",
	    "250-mx\r\n250 SIZE 100\r\n");
	EHLO_FILTER("250-mx\r\n250 CHUNKING\r\n", "250 mx\r\n");
	EHLO_FILTER(
	    "250-mx\r\n250-BinaryMime\r\n250 chunking\r\n", "250 mx\r\n");
	EHLO_FILTER("250 mx\r\n", "250 mx\r\n");
	EHLO_FILTER("250 CHUNKING\r\n", "250 CHUNKING\r\n");
	EHLO_FILTER(
	    "250-mx\r\n250-CHUNKINGX\r\n250 BINARYMIME\r\n", "250 mx\r\n");
	EHLO_FILTER("250-mx\r\n250-CHUNKING extra\r\n250 DSN\r\n",
	    "250-mx\r\n250 DSN\r\n");
	EHLO_FILTER(
	    "250-mx\r\n250-X CHUNKING\r\n250 DSN\r\n", "250-mx\r\n250 DSN\r\n");
	/* An allowlist: what the gateway cannot keep never reaches the
	 * client (the identity of XCLIENT and XFORWARD, the loop of
	 * IPV6-IPV4-FALLBACK, anything unknown). */
	EHLO_FILTER("250-mx.example.org\r\n250-PIPELINING\r\n"
	            "250-XCLIENT NAME ADDR PROTO HELO REVERSE_NAME PORT\r\n"
	            "250-XFORWARD NAME ADDR PROTO HELO SOURCE PORT IDENT\r\n"
	            "250-IPV6-IPV4-FALLBACK\r\n250-ETRN\r\n"
	            "250-AUTH=LOGIN PLAIN\r\n250-AUTH LOGIN PLAIN\r\n"
	            "250-REQUIRETLS\r\n250-X-FUTURE\r\n250-xclient ADDR\r\n"
	            "250 DSN\r\n",
	    "250-mx.example.org\r\n250-PIPELINING\r\n"
	    "250-AUTH LOGIN PLAIN\r\n250 DSN\r\n");
	EHLO_FILTER("250-mx\r\n250-SIZE 1000\r\n250 XCLIENT ADDR NAME\r\n",
	    "250-mx\r\n250 SIZE 1000\r\n");
	EHLO_FILTER("250-mx\r\n250-IPV6-IPV4-FALLBACK\r\n250 XFORWARD\r\n",
	    "250 mx\r\n");
	EHLO_FILTER("250-mx\r\n250-8bitmime\r\n250-Help\r\n250 smtputf8\r\n",
	    "250-mx\r\n250-8bitmime\r\n250-Help\r\n250 smtputf8\r\n");
	/* Not 2xx: as it is. */
	EHLO_FILTER("550-no\r\n550 CHUNKING\r\n", "550-no\r\n550 CHUNKING\r\n");
	EHLO_FILTER("421 4.3.2 busy\r\n", "421 4.3.2 busy\r\n");
}

/* RFC 3974 §6-7: scoped literals and source routes answered here. */
static void
test_path_hygiene(void **state)
{
	struct sim *m = &sim;

	(void)state;
	open_session(m, SMTPFIX_HELO_ALWAYS);
	m->pol.hygiene = 1;
	feed(m, 0,
	    S("MAIL FROM:<@a.example,@b.example:u@example.org>\r\n"
	      "MAIL FROM:<u@[IPv6:fe80::1%eth0]>\r\n"
	      "MAIL FROM:<u@example.org>\r\n"
	      "RCPT TO:<v@[IPv6:fe80::1]>\r\n"
	      "RCPT TO:<v@[IPv6:2001:db8::1]>\r\n"));
	/* Only the clean commands reach the server ... */
	EXPECT_SRV(m, "MAIL FROM:<u@example.org>\r\n"
	              "RCPT TO:<v@[IPv6:2001:db8::1]>\r\n");
	assert_int_equal(m->events[SMTPFIX_EV_PATH], 3);
	/* ... and the replies keep command order. */
	feed(m, 1, S("250 ok\r\n250 ok\r\n"));
	EXPECT_CLI(m, "553 5.1.0 " FQDN " source routes are not accepted "
	              "(RFC 3974 section 7)\r\n"
	              "553 5.1.8 " FQDN " scoped address literals are not "
	              "accepted (RFC 3974 section 6)\r\n"
	              "250 ok\r\n"
	              "553 5.1.2 " FQDN " scoped address literals are not "
	              "accepted (RFC 3974 section 6)\r\n"
	              "250 ok\r\n");
	check_clean(m);

	/* Policy off: the server judges. */
	open_session(m, SMTPFIX_HELO_ALWAYS);
	m->pol.hygiene = 0;
	feed(m, 0, S("RCPT TO:<v@[IPv6:fe80::1%eth0]>\r\n"));
	EXPECT_SRV(m, "RCPT TO:<v@[IPv6:fe80::1%eth0]>\r\n");
}

/* A server that pads its EHLO reply with dropped lines past the
 * look-ahead bound is cut off rather than followed forever. */
static void
test_ehlo_many_dropped(void **state)
{
	static char reply[4096];
	struct sim *m = &sim;
	size_t n = 0;
	int i;

	(void)state;
	sim_init(m, SMTPFIX_HELO_ALWAYS);
	feed(m, 1, S(GREET));
	feed(m, 0, S("EHLO client.example.org\r\n"));
	m->cli_len = 0;
	memcpy(reply + n, "250-mx\r\n", 8);
	n += 8;
	for (i = 0; i < SMTPFIX_EHLO_SKIP_MAX + 4; i++) {
		memcpy(reply + n, "250-CHUNKING\r\n", 14);
		n += 14;
	}
	memcpy(reply + n, "250 CHUNKING\r\n", 14);
	n += 14;
	feed(m, 1, reply, n);
	assert_true(m->closed);
	EXPECT_CLI(m, "421 4.4.2 " FQDN " upstream protocol error, "
	              "closing\r\n");
}

static void
test_helo_reply_unfiltered(void **state)
{
	struct sim *m = &sim;

	(void)state;
	sim_init(m, SMTPFIX_HELO_ALWAYS);
	feed(m, 1, S(GREET));
	feed(m, 0, S("HELO x\r\nNOOP\r\n"));
	feed(m, 1, S("250-mx\r\n250 CHUNKING\r\n250-a\r\n250 CHUNKING\r\n"));
	EXPECT_CLI(
	    m, GREET "250-mx\r\n250 CHUNKING\r\n250-a\r\n250 CHUNKING\r\n");
}

static void
test_ehlo_reply_long_lines(void **state)
{
	static char reply[8192], want[8192];
	struct sim *m = &sim;
	size_t n, w;

	(void)state;
	sim_init(m, SMTPFIX_HELO_ALWAYS);
	m->pol.reply_max = SMTPFIX_CMD_MAX_CAP;
	feed(m, 1, S(GREET));
	m->cli_len = 0;
	n = 0;
	memcpy(reply, "250-", 4);
	memset(reply + 4, 'a', 4000);
	memcpy(reply + 4004, "\r\n", 2);
	n = 4006;
	memcpy(want, reply, n);
	w = n;
	memcpy(reply + n, "250-", 4);
	memset(reply + n + 4, 'b', 4000);
	memcpy(reply + n + 4, "SIZE ", 5);
	memcpy(reply + n + 4004, "\r\n", 2);
	memcpy(want + w, reply + n, 4006);
	want[w + 3] = ' ';
	w += 4006;
	n += 4006;
	memcpy(reply + n, S("250 CHUNKING\r\n"));
	n += sizeof("250 CHUNKING\r\n") - 1;
	feed(m, 0, S("EHLO x\r\n"));
	feed(m, 1, reply, n);
	expect_bytes("client", m->cli, m->cli_len, want, w);
}

/*
 * STARTTLS (RFC 3207).
 */

static void
test_starttls_opaque(void **state)
{
	struct sim *m = &sim;

	(void)state;
	open_session(m, SMTPFIX_HELO_ALWAYS);
	feed(m, 0, S("STARTTLS\r\n"));
	EXPECT_SRV(m, "STARTTLS\r\n");
	/* CVE-2021-38371: a reply pipelined behind the 220. */
	feed(m, 1, S("220 2.0.0 Ready to start TLS\r\n250 injected\r\n"));
	assert_true(m->opaque);
	EXPECT_SRV(m, "STARTTLS\r\n");
	EXPECT_CLI(m, "220 2.0.0 Ready to start TLS\r\n");
	assert_int_equal(m->events[SMTPFIX_EV_TLS], 1);
	assert_int_equal(m->s.cmode, SMTPFIX_C_OPAQUE);
	/* From now on: bytes, both ways, not parsed. */
	feed(m, 0, S("\x16\x03\x01\x00\x05\r\n.\r\n\0\n"));
	feed(m, 1, S("\x16\x03\x03\x00\x02\n\0"));
	EXPECT_SRV(m, "STARTTLS\r\n\x16\x03\x01\x00\x05\r\n.\r\n\0\n");
	EXPECT_CLI(m, "220 2.0.0 Ready to start TLS\r\n"
	              "\x16\x03\x03\x00\x02\n\0");
	assert_int_equal(smtpfix_stream_upstream_gone(&m->s), 0);
	check_clean(m);
}

static void
test_starttls_multiline(void **state)
{
	struct sim *m = &sim;

	(void)state;
	open_session(m, SMTPFIX_HELO_ALWAYS);
	feed(m, 0, S("STARTTLS\r\n"));
	feed(m, 1, S("220-a\r\n"));
	assert_false(m->opaque);
	feed(m, 1, S("220 b\r\n"));
	assert_true(m->opaque);
	EXPECT_CLI(m, "220-a\r\n220 b\r\n");
}

static void
test_starttls_refused(void **state)
{
	struct sim *m = &sim;

	(void)state;
	open_session(m, SMTPFIX_HELO_ALWAYS);
	feed(m, 0, S("STARTTLS\r\n"));
	EXPECT_SRV(m, "STARTTLS\r\n");
	feed(m, 1, S("454 4.7.0 TLS not available\r\n"));
	feed(m, 0, S("MAIL FROM:<a@x>\r\n"));
	EXPECT_SRV(m, "STARTTLS\r\nMAIL FROM:<a@x>\r\n");
	feed(m, 1, S("250 ok\r\n"));
	EXPECT_CLI(m, "454 4.7.0 TLS not available\r\n250 ok\r\n");
	assert_false(m->opaque);
	assert_int_equal(m->s.cmode, SMTPFIX_C_CMD);
}

/*
 * STARTTLS terminated by the gateway (RFC 3207, smtpfix/tlspolicy.h).
 */

#define R220TLS "220 2.0.0 " FQDN " Ready to start TLS\r\n"
#define EHLO_LIT "EHLO [IPv6:2001:db8::1]\r\n"
#define EHLO_GW "EHLO " FQDN "\r\n"

static void
sim_init_tls(
    struct sim *m, enum smtpfix_tls_mode mode, enum smtpfix_tls_upstream up)
{
	sim_init(m, SMTPFIX_HELO_ALWAYS);
	m->tls.mode = mode;
	m->tls.upstream = up;
	m->tls.have_cert = 1;
	smtpfix_stream_set_tls(&m->s, &m->tls);
}

/* Greeting and a first EHLO with the literal; clears the transcripts. */
static void
open_tls(struct sim *m, enum smtpfix_tls_mode mode,
    enum smtpfix_tls_upstream up, const char *reply, size_t rlen)
{
	sim_init_tls(m, mode, up);
	feed(m, 1, S(GREET));
	feed(m, 0, S(EHLO_LIT));
	EXPECT_SRV(m, EHLO_GW);
	feed(m, 1, reply, rlen);
	m->srv_len = 0;
	m->cli_len = 0;
}

/* The EHLO reply as the client sees it, under a policy, with the server's
 * reply cut at every position and in chunks. */
static void
ehlo_tls(enum smtpfix_tls_mode mode, enum smtpfix_tls_upstream up,
    const char *in, size_t ilen, const char *want, size_t wlen)
{
	struct sim *m = &sim;
	struct seg segs[3];
	size_t at, chunk;

	segs[0] = (struct seg){0, S("EHLO client.example.org\r\n")};
	segs[1] = (struct seg){1, in, ilen};
	segs[2] = (struct seg){0, S("NOOP\r\n")};
	for (at = 0; at <= ilen; at++) {
		sim_init_tls(m, mode, up);
		feed(m, 1, S(GREET));
		m->cli_len = 0;
		play(m, segs, 3, 0, 1, at);
		expect_bytes("client", m->cli, m->cli_len, want, wlen);
		check_clean(m);
	}
	for (chunk = 1; chunk < 10; chunk++) {
		sim_init_tls(m, mode, up);
		feed(m, 1, S(GREET));
		m->cli_len = 0;
		play(m, segs, 3, chunk, (size_t)-1, 0);
		expect_bytes("client", m->cli, m->cli_len, want, wlen);
	}
	/* A local reply queued meanwhile comes after the whole reply, our
	 * STARTTLS line included. */
	sim_init_tls(m, mode, up);
	feed(m, 1, S(GREET));
	m->cli_len = 0;
	feed(m, 0, S("EHLO client.example.org\r\nNO\nOP\r\n"));
	feed(m, 1, in, ilen);
	assert_true(m->cli_len == wlen + sizeof(R500BAD) - 1);
	expect_bytes("client", m->cli, wlen, want, wlen);
	expect_bytes("client", m->cli + wlen, m->cli_len - wlen, S(R500BAD));
}

#define EHLO_TLS(mode, up, in, want) ehlo_tls(mode, up, S(in), S(want))
#define TE SMTPFIX_TLS_TERMINATE
#define OPP SMTPFIX_TLSUP_OPPORTUNISTIC
#define REQ SMTPFIX_TLSUP_REQUIRE

static void
test_tls_ehlo_offer(void **state)
{
	(void)state;
	/* Terminate: the server's STARTTLS goes, ours ends the reply. */
	EHLO_TLS(TE, OPP,
	    "250-mx\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n",
	    "250-mx\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 STARTTLS\r\n");
	/* Postfix 3.7 as shipped. */
	EHLO_TLS(TE, OPP,
	    "250-mx.example.org\r\n250-PIPELINING\r\n"
	    "250-SIZE 10240000\r\n250-VRFY\r\n250-ETRN\r\n"
	    "250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n"
	    "250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n"
	    "250 CHUNKING\r\n",
	    "250-mx.example.org\r\n250-PIPELINING\r\n"
	    "250-SIZE 10240000\r\n250-VRFY\r\n"
	    "250-ENHANCEDSTATUSCODES\r\n"
	    "250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n"
	    "250 STARTTLS\r\n");
	EHLO_TLS(TE, OPP, "250 mx\r\n", "250-mx\r\n250 STARTTLS\r\n");
	EHLO_TLS(TE, OPP, "250\r\n", "250-\r\n250 STARTTLS\r\n");
	EHLO_TLS(TE, OPP, "250-mx\r\n250 STARTTLS\r\n",
	    "250-mx\r\n250 STARTTLS\r\n");
	EHLO_TLS(TE, OPP, "250-mx\r\n250-starttls\r\n250 CHUNKING\r\n",
	    "250-mx\r\n250 STARTTLS\r\n");
	EHLO_TLS(TE, OPP, "250-mx\r\n250-STARTTLSX\r\n250 DSN\r\n",
	    "250-mx\r\n250-DSN\r\n250 STARTTLS\r\n");
	/* Not 2xx: as it is. */
	EHLO_TLS(TE, OPP, "550 5.7.1 no\r\n", "550 5.7.1 no\r\n");
	/* Require: offered only when the server offers it too. */
	EHLO_TLS(TE, REQ, "250-mx\r\n250-STARTTLS\r\n250 DSN\r\n",
	    "250-mx\r\n250-DSN\r\n250 STARTTLS\r\n");
	EHLO_TLS(TE, REQ, "250-mx\r\n250 DSN\r\n", "250-mx\r\n250 DSN\r\n");
	EHLO_TLS(TE, REQ, "250-mx\r\n250 STARTTLS\r\n",
	    "250-mx\r\n250 STARTTLS\r\n");
	EHLO_TLS(TE, REQ, "250-mx\r\n250-DSN\r\n250 CHUNKING\r\n",
	    "250-mx\r\n250 DSN\r\n");
	/* Strip: never offered. */
	EHLO_TLS(SMTPFIX_TLS_STRIP, OPP,
	    "250-mx\r\n250-STARTTLS\r\n250 8BITMIME\r\n",
	    "250-mx\r\n250 8BITMIME\r\n");
	EHLO_TLS(
	    SMTPFIX_TLS_STRIP, OPP, "250-mx\r\n250 STARTTLS\r\n", "250 mx\r\n");
	EHLO_TLS(SMTPFIX_TLS_STRIP, OPP,
	    "250-mx\r\n250-STARTTLS\r\n250-CHUNKING\r\n250 BINARYMIME\r\n",
	    "250 mx\r\n");
	/* Passthrough: the server's own offer. */
	EHLO_TLS(SMTPFIX_TLS_PASSTHROUGH, OPP,
	    "250-mx\r\n250-STARTTLS\r\n250 CHUNKING\r\n",
	    "250-mx\r\n250 STARTTLS\r\n");
}

/* The whole dance: both legs, the post-TLS EHLO rewritten.  Require: the
 * upstream leg first, then the client's 220 (in series). */
static void
tls_terminate_flow(size_t chunk)
{
	static const char ehlo_reply[] =
	    "250-mx.example.org\r\n250-STARTTLS\r\n250 8BITMIME\r\n";
	struct sim *m = &sim;
	struct seg seg;

	sim_init_tls(m, TE, REQ);
	feed(m, 1, S(GREET));
	feed(m, 0, S(EHLO_LIT));
	EXPECT_SRV(m, EHLO_GW);
	seg = (struct seg){1, S(ehlo_reply)};
	play(m, &seg, 1, chunk, (size_t)-1, 0);
	EXPECT_CLI(m, GREET "250-mx.example.org\r\n250-8BITMIME\r\n"
	                    "250 STARTTLS\r\n");
	m->srv_len = m->cli_len = 0;

	/* (A command pipelined behind STARTTLS, the CVE-2011-0411 class,
	 * is a synchronisation error: test_sync_starttls.) */
	seg = (struct seg){0, S("STARTTLS\r\n")};
	play(m, &seg, 1, chunk, (size_t)-1, 0);
	EXPECT_SRV(m, "STARTTLS\r\n");
	assert_string_equal(m->detail, "upstream");
	assert_int_equal(smtpfix_stream_wait(&m->s), SMTPFIX_WAIT_REPLY);
	/* CVE-2021-38371: a reply pipelined behind the 220; the 220 itself
	 * is for the gateway, not the client. */
	seg = (struct seg){1, S("220 2.0.0 Ready\r\n250 injected\r\n")};
	play(m, &seg, 1, chunk, (size_t)-1, 0);
	assert_int_equal(m->tls_up, 1);
	assert_int_equal(m->tls_cli, 0);
	assert_int_equal(m->cli_len, 0);
	/* In one read, the injection goes with the 220; in later ones it
	 * waits unread (the real gateway hands it to TLS, which fails). */
	if (chunk == 0)
		assert_int_equal(m->sin_len, 0);
	assert_int_equal(smtpfix_stream_wait(&m->s), SMTPFIX_WAIT_REPLY);
	/* Nothing moves during the handshake. */
	feed(m, 1, S("250 more\r\n"));
	assert_int_equal(m->cli_len, 0);
	EXPECT_SRV(m, "STARTTLS\r\n");
	m->sin_len = m->cin_len = 0;

	smtpfix_stream_tls_done(&m->s, SMTPFIX_TLSR_CLIENT_OK); /* ignored */
	smtpfix_stream_tls_done(&m->s, SMTPFIX_TLSR_UP_OK);
	assert_int_equal(smtpfix_stream_tls_server(&m->s), 1);
	pump(m);
	assert_int_equal(m->tls_cli, 1);
	EXPECT_CLI(m, R220TLS);
	assert_int_equal(smtpfix_stream_wait(&m->s), SMTPFIX_WAIT_HANDSHAKE);
	smtpfix_stream_tls_done(&m->s, SMTPFIX_TLSR_CLIENT_OK);
	assert_int_equal(smtpfix_stream_tls_client(&m->s), 1);
	assert_int_equal(smtpfix_stream_wait(&m->s), SMTPFIX_WAIT_COMMAND);
	m->srv_len = m->cli_len = 0;

	/* RFC 3207 §4.2: EHLO again, rewritten like the first. */
	seg = (struct seg){0, S(EHLO_LIT)};
	play(m, &seg, 1, chunk, (size_t)-1, 0);
	EXPECT_SRV(m, EHLO_GW);
	assert_int_equal(m->events[SMTPFIX_EV_HELO], 2);
	assert_memory_equal(m->helo_out, FQDN, sizeof(FQDN) - 1);
	seg = (struct seg){1, S("250-mx.example.org\r\n250 8BITMIME\r\n")};
	play(m, &seg, 1, chunk, (size_t)-1, 0);
	/* Not offered again inside TLS. */
	EXPECT_CLI(m, "250-mx.example.org\r\n250 8BITMIME\r\n");
	m->cli_len = 0;
	feed(m, 0, S("STARTTLS\r\n"));
	EXPECT_CLI(m, "503 5.5.1 " FQDN " TLS already active\r\n");
	assert_string_equal(m->detail, "already_active");
	feed(m, 0, S("MAIL FROM:<a@x>\r\n"));
	EXPECT_SRV(m, EHLO_GW "MAIL FROM:<a@x>\r\n");
	assert_null(find_mem(m->srv, m->srv_len, S("evil")));
	check_clean(m);
}

static void
test_tls_terminate(void **state)
{
	size_t chunk;

	(void)state;
	for (chunk = 0; chunk < 8; chunk++)
		tls_terminate_flow(chunk);
}

/* A multi-line 220 is not relayed either. */
static void
test_tls_multiline_220(void **state)
{
	struct sim *m = &sim;

	(void)state;
	open_tls(m, TE, REQ, S("250-mx\r\n250 STARTTLS\r\n"));
	feed(m, 0, S("STARTTLS\r\n"));
	feed(m, 1, S("220-a\r\n"));
	assert_int_equal(m->tls_up, 0);
	feed(m, 1, S("220 b\r\n"));
	assert_int_equal(m->tls_up, 1);
	assert_int_equal(m->cli_len, 0);
}

/* Opportunistic and no STARTTLS at the server: TLS on the client leg
 * only; the server's later offer (in clear text) is not passed on. */
static void
test_tls_client_only(void **state)
{
	struct sim *m = &sim;

	(void)state;
	open_tls(m, TE, OPP, S("250-mx\r\n250 8BITMIME\r\n"));
	feed(m, 0, S("STARTTLS\r\n"));
	assert_int_equal(m->srv_len, 0);
	assert_int_equal(m->tls_up, 0);
	assert_int_equal(m->tls_cli, 1);
	assert_string_equal(m->detail, "client_only");
	EXPECT_CLI(m, R220TLS);
	smtpfix_stream_tls_done(&m->s, SMTPFIX_TLSR_CLIENT_OK);
	assert_int_equal(smtpfix_stream_tls_server(&m->s), 0);
	m->cli_len = 0;
	feed(m, 0, S(EHLO_LIT));
	EXPECT_SRV(m, EHLO_GW);
	feed(m, 1, S("250-mx\r\n250-STARTTLS\r\n250 8BITMIME\r\n"));
	EXPECT_CLI(m, "250-mx\r\n250 8BITMIME\r\n");
}

/* RFC 3207 §4: STARTTLS before EHLO (or after HELO).  The gateway asks
 * the server with an EHLO of its own first, so that the upstream leg
 * gets STARTTLS whenever the server offers it, whatever the client's
 * order; that reply is not the client's. */
static void
test_tls_starttls_first(void **state)
{
	static const char offer[] =
	    "250-mx.example.org\r\n250-PIPELINING\r\n250-STARTTLS\r\n"
	    "250 8BITMIME\r\n";
	struct sim *m = &sim;
	struct seg seg;
	size_t chunk;

	(void)state;
	for (chunk = 0; chunk < 8; chunk++) {
		sim_init_tls(m, TE, REQ);
		feed(m, 1, S(GREET));
		m->cli_len = 0;
		feed(m, 0, S("STARTTLS\r\n"));
		EXPECT_SRV(m, EHLO_GW);
		assert_string_equal(m->detail, "ehlo_upstream_first");
		seg = (struct seg){1, S(offer)};
		play(m, &seg, 1, chunk, (size_t)-1, 0);
		/* The server offers it: our STARTTLS goes upstream. */
		EXPECT_SRV(m, EHLO_GW "STARTTLS\r\n");
		assert_int_equal(m->cli_len, 0);
		assert_string_equal(m->detail, "upstream");
		feed(m, 1, S("220 go\r\n"));
		assert_int_equal(m->tls_up, 1);
		smtpfix_stream_tls_done(&m->s, SMTPFIX_TLSR_UP_OK);
		pump(m);
		EXPECT_CLI(m, R220TLS);
		assert_int_equal(m->tls_cli, 1);
		smtpfix_stream_tls_done(&m->s, SMTPFIX_TLSR_CLIENT_OK);
		assert_int_equal(smtpfix_stream_tls_server(&m->s), 1);
		m->srv_len = m->cli_len = 0;
		feed(m, 0, S(EHLO_LIT));
		EXPECT_SRV(m, EHLO_GW);
	}

	/* A command pipelined after that STARTTLS (CVE-2011-0411) never
	 * goes anywhere: RFC 2920 §3.1, the client gets 554 5.5.0. */
	sim_init_tls(m, TE, OPP);
	feed(m, 1, S(GREET));
	m->cli_len = 0;
	feed(m, 0, S("STARTTLS\r\nMAIL FROM:<evil@x>\r\n"));
	feed(m, 1, S(offer));
	feed(m, 1, S("220 go\r\n"));
	if (m->tls_up)
		smtpfix_stream_tls_done(&m->s, SMTPFIX_TLSR_UP_OK);
	pump(m);
	assert_null(find_mem(m->srv, m->srv_len, S("evil")));
	EXPECT_CLI(m, R554SYNC);
	assert_true(m->closed);

	/* After HELO too. */
	sim_init_tls(m, TE, OPP);
	feed(m, 1, S(GREET));
	feed(m, 0, S("HELO client.example.org\r\n"));
	feed(m, 1, S("250 mx\r\n"));
	m->srv_len = 0;
	feed(m, 0, S("STARTTLS\r\n"));
	EXPECT_SRV(m, EHLO_GW);
	feed(m, 1, S(offer));
	EXPECT_SRV(m, EHLO_GW "STARTTLS\r\n");

	/* The server offers none: the client leg alone, as before. */
	sim_init_tls(m, TE, OPP);
	feed(m, 1, S(GREET));
	m->cli_len = 0;
	feed(m, 0, S("STARTTLS\r\n"));
	feed(m, 1, S("250-mx\r\n250 8BITMIME\r\n"));
	EXPECT_SRV(m, EHLO_GW);
	assert_string_equal(m->detail, "client_only");
	EXPECT_CLI(m, R220TLS);

	/* Require: refused only when the server really offers nothing. */
	sim_init_tls(m, TE, REQ);
	feed(m, 1, S(GREET));
	m->cli_len = 0;
	feed(m, 0, S("STARTTLS\r\n"));
	feed(m, 1, S(offer));
	EXPECT_SRV(m, EHLO_GW "STARTTLS\r\n");
	sim_init_tls(m, TE, REQ);
	feed(m, 1, S(GREET));
	m->cli_len = 0;
	feed(m, 0, S("STARTTLS\r\n"));
	feed(m, 1, S("502 5.5.1 no EHLO here\r\n"));
	EXPECT_SRV(m, EHLO_GW);
	EXPECT_CLI(m, "454 4.7.0 " FQDN
	              " TLS not available: the server does not offer it\r\n");

	/* Passthrough and strip never ask. */
	sim_init_tls(m, SMTPFIX_TLS_STRIP, OPP);
	feed(m, 1, S(GREET));
	feed(m, 0, S("STARTTLS\r\n"));
	assert_int_equal(m->srv_len, 0);
	sim_init_tls(m, SMTPFIX_TLS_PASSTHROUGH, OPP);
	feed(m, 1, S(GREET));
	feed(m, 0, S("STARTTLS\r\n"));
	EXPECT_SRV(m, "STARTTLS\r\n");
}

/* The server offered STARTTLS but refuses ours. */
static void
test_tls_server_refuses(void **state)
{
	struct sim *m = &sim;

	(void)state;
	/* Opportunistic: the client still gets TLS, not the 454. */
	open_tls(m, TE, OPP, S("250-mx\r\n250 STARTTLS\r\n"));
	feed(m, 0, S("STARTTLS\r\n"));
	EXPECT_SRV(m, "STARTTLS\r\n");
	feed(m, 1, S("454-4.7.0 not\r\n454 4.7.0 now\r\n"));
	assert_int_equal(m->tls_up, 0);
	assert_int_equal(m->tls_cli, 1);
	assert_string_equal(m->detail, "server_refused_client_only");
	EXPECT_CLI(m, R220TLS);

	/* Require: the refusal is the client's answer; clear text goes on. */
	open_tls(m, TE, REQ, S("250-mx\r\n250 STARTTLS\r\n"));
	feed(m, 0, S("STARTTLS\r\n"));
	feed(m, 1, S("454 4.7.0 not now\r\n"));
	assert_int_equal(m->tls_cli, 0);
	assert_string_equal(m->detail, "server_refused");
	EXPECT_CLI(m, "454 4.7.0 not now\r\n");
	feed(m, 0, S("NOOP\r\n"));
	feed(m, 1, S("250 ok\r\n"));
	EXPECT_SRV(m, "STARTTLS\r\nNOOP\r\n");
	EXPECT_CLI(m, "454 4.7.0 not now\r\n250 ok\r\n");
	assert_int_equal(smtpfix_stream_wait(&m->s), SMTPFIX_WAIT_COMMAND);
}

/* Require, and the server offers nothing: 454 here, clear text goes on. */
static void
test_tls_require_no_offer(void **state)
{
	struct sim *m = &sim;

	(void)state;
	open_tls(m, TE, REQ, S("250-mx\r\n250 8BITMIME\r\n"));
	feed(m, 0, S("STARTTLS\r\n"));
	EXPECT_CLI(m, "454 4.7.0 " FQDN
	              " TLS not available: the server does not offer it\r\n");
	assert_string_equal(m->detail, "no_upstream_tls");
	feed(m, 0, S("NOOP\r\n"));
	EXPECT_SRV(m, "NOOP\r\n");
	feed(m, 1, S("250 ok\r\n"));
	assert_int_equal(m->tls_cli, 0);
	assert_false(m->closed);
}

/* The upstream handshake fails: the client, still in clear text, gets
 * 421 4.7.0 and the session ends. */
static void
test_tls_upstream_fail(void **state)
{
	struct sim *m = &sim;
	int v;

	(void)state;
	/* Require and verify refuse, and the reply names the cause. */
	for (v = 0; v < 2; v++) {
		open_tls(m, TE, v ? SMTPFIX_TLSUP_VERIFY : REQ,
		    S("250-mx\r\n250 STARTTLS\r\n"));
		feed(m, 0, S("STARTTLS\r\n"));
		feed(m, 1, S("220 go\r\n"));
		assert_int_equal(m->tls_up, 1);
		assert_int_equal(
		    smtpfix_stream_tls_done(&m->s,
		        v ? SMTPFIX_TLSR_UP_VERIFY : SMTPFIX_TLSR_UP_FAIL),
		    0);
		pump(m);
		assert_true(m->closed);
		assert_int_equal(m->tls_cli, 0);
		if (v)
			EXPECT_CLI(m, "421 4.7.0 " FQDN " server certificate "
			              "not verified, try again later\r\n");
		else
			EXPECT_CLI(m,
			    "421 4.7.0 " FQDN " TLS handshake with the "
			    "server failed, try again later\r\n");
	}
}

/* RFC 7435 §1: under opportunistic, a failed upstream handshake is not
 * the end: the gateway connects again, in clear text, the client keeps
 * the TLS it got at once, and its EHLO inside TLS goes to the new
 * connection. */
static void
test_tls_upstream_fallback(void **state)
{
	struct sim *m = &sim;

	(void)state;
	open_tls(m, TE, OPP, S("250-mx\r\n250 STARTTLS\r\n"));
	feed(m, 0, S("STARTTLS\r\n"));
	EXPECT_SRV(m, "STARTTLS\r\n");
	EXPECT_CLI(m, R220TLS);
	assert_int_equal(m->tls_cli, 1);
	m->cli_len = 0;
	feed(m, 1, S("220 go\r\n"));
	assert_int_equal(m->tls_up, 1);
	assert_int_equal(
	    smtpfix_stream_tls_done(&m->s, SMTPFIX_TLSR_UP_FAIL), 1);
	/* The gateway's part: the old connection and its bytes are gone. */
	m->sin_len = 0;
	m->srv_len = 0;
	pump(m);
	assert_int_equal(m->cli_len, 0);
	assert_int_equal(smtpfix_stream_wait(&m->s), SMTPFIX_WAIT_HANDSHAKE);
	smtpfix_stream_tls_done(&m->s, SMTPFIX_TLSR_CLIENT_OK);
	assert_int_equal(smtpfix_stream_wait(&m->s), SMTPFIX_WAIT_GREETING);
	/* The client's EHLO waits for the new connection's greeting. */
	feed(m, 0, S(EHLO_LIT));
	assert_int_equal(m->srv_len, 0);
	/* The new greeting is not relayed: the client had its 220. */
	feed(m, 1, S("220-mx.example.org ESMTP\r\n220 again\r\n"));
	assert_string_equal(m->detail, "fallback_clear_upstream");
	assert_int_equal(smtpfix_stream_tls_server(&m->s), 0);
	pump(m);
	EXPECT_SRV(m, EHLO_GW);
	assert_int_equal(m->cli_len, 0);
	/* The server's STARTTLS is not offered again (RFC 3207 §4.2). */
	feed(m, 1, S("250-mx\r\n250-STARTTLS\r\n250 8BITMIME\r\n"));
	EXPECT_CLI(m, "250-mx\r\n250 8BITMIME\r\n");
	feed(m, 0, S("MAIL FROM:<a@example.net>\r\n"));
	feed(m, 1, S("250 ok\r\n"));
	EXPECT_SRV(m, EHLO_GW "MAIL FROM:<a@example.net>\r\n");
	assert_false(m->closed);

	/* The new connection is refused: the client is told why, inside
	 * its TLS once its handshake is over, and the session ends. */
	open_tls(m, TE, OPP, S("250-mx\r\n250 STARTTLS\r\n"));
	feed(m, 0, S("STARTTLS\r\n"));
	m->cli_len = 0;
	feed(m, 1, S("220 go\r\n"));
	assert_int_equal(
	    smtpfix_stream_tls_done(&m->s, SMTPFIX_TLSR_UP_FAIL), 1);
	m->sin_len = 0;
	feed(m, 1, S("554 5.7.1 go away\r\n"));
	assert_int_equal(m->cli_len, 0);
	smtpfix_stream_tls_done(&m->s, SMTPFIX_TLSR_CLIENT_OK);
	pump(m);
	assert_true(m->closed);
	EXPECT_CLI(m, "421 4.7.0 " FQDN " TLS with the server failed and it "
	              "refused a new connection, try again later\r\n");
}

/*
 * Side by side (opportunistic, smtpfix_tlspolicy_parallel): the client's
 * 220 goes out with the STARTTLS upstream, and its first command inside
 * TLS waits until the upstream leg is settled, whichever handshake ends
 * first; a server that refuses leaves a clear upstream, the client in
 * TLS; bytes pipelined behind STARTTLS still close the session.
 */
static void
test_tls_parallel(void **state)
{
	struct sim *m = &sim;
	int order;

	(void)state;
	for (order = 0; order < 2; order++) {
		open_tls(m, TE, OPP, S("250-mx\r\n250 STARTTLS\r\n"));
		feed(m, 0, S("STARTTLS\r\n"));
		EXPECT_SRV(m, "STARTTLS\r\n");
		EXPECT_CLI(m, R220TLS);
		assert_string_equal(m->detail, "upstream_parallel");
		assert_int_equal(m->tls_cli, 1);
		assert_int_equal(m->tls_up, 0);
		m->srv_len = m->cli_len = 0;
		if (order == 0) {
			/* The client first: its EHLO waits. */
			smtpfix_stream_tls_done(&m->s, SMTPFIX_TLSR_CLIENT_OK);
			feed(m, 0, S(EHLO_LIT));
			assert_int_equal(m->srv_len, 0);
			assert_int_equal(
			    smtpfix_stream_wait(&m->s), SMTPFIX_WAIT_REPLY);
		}
		feed(m, 1, S("220 2.0.0 Ready\r\n"));
		assert_int_equal(m->tls_up, 1);
		assert_int_equal(m->cli_len, 0);
		smtpfix_stream_tls_done(&m->s, SMTPFIX_TLSR_UP_OK);
		assert_int_equal(smtpfix_stream_tls_server(&m->s), 1);
		if (order == 1) {
			/* The server first: nothing moves until the
			 * client's handshake is over. */
			pump(m);
			assert_int_equal(m->cli_len, 0);
			assert_int_equal(
			    smtpfix_stream_wait(&m->s), SMTPFIX_WAIT_HANDSHAKE);
			smtpfix_stream_tls_done(&m->s, SMTPFIX_TLSR_CLIENT_OK);
			feed(m, 0, S(EHLO_LIT));
		}
		pump(m);
		assert_int_equal(smtpfix_stream_tls_client(&m->s), 1);
		EXPECT_SRV(m, EHLO_GW);
		feed(m, 1, S("250-mx\r\n250 8BITMIME\r\n"));
		EXPECT_CLI(m, "250-mx\r\n250 8BITMIME\r\n");
		assert_false(m->closed);
	}

	/* Refused upstream: the client keeps TLS, the upstream is clear,
	 * the refusal is not relayed. */
	open_tls(m, TE, OPP, S("250-mx\r\n250 STARTTLS\r\n"));
	feed(m, 0, S("STARTTLS\r\n"));
	m->srv_len = m->cli_len = 0;
	feed(m, 1, S("454 4.7.0 not now\r\n"));
	assert_string_equal(m->detail, "server_refused_client_only");
	assert_int_equal(m->cli_len, 0);
	smtpfix_stream_tls_done(&m->s, SMTPFIX_TLSR_CLIENT_OK);
	feed(m, 0, S(EHLO_LIT));
	EXPECT_SRV(m, EHLO_GW);
	assert_int_equal(smtpfix_stream_tls_server(&m->s), 0);
	feed(m, 1, S("250-mx\r\n250-STARTTLS\r\n250 8BITMIME\r\n"));
	EXPECT_CLI(m, "250-mx\r\n250 8BITMIME\r\n");

	/* RFC 2920 §3.1: a command pipelined behind STARTTLS (the
	 * CVE-2011-0411 class): 554 in clear, nothing relayed. */
	open_tls(m, TE, OPP, S("250-mx\r\n250 STARTTLS\r\n"));
	m->srv_len = m->cli_len = 0;
	feed(m, 0, S("STARTTLS\r\nMAIL FROM:<evil@x>\r\n"));
	EXPECT_CLI(m, R554SYNC);
	assert_int_equal(m->tls_cli, 0);
	assert_true(m->closed);
	assert_null(find_mem(m->srv, m->srv_len, S("evil")));

	/* Require and verify stay in series. */
	open_tls(m, TE, REQ, S("250-mx\r\n250 STARTTLS\r\n"));
	m->cli_len = 0;
	feed(m, 0, S("STARTTLS\r\n"));
	assert_string_equal(m->detail, "upstream");
	assert_int_equal(m->cli_len, 0);
	assert_int_equal(m->tls_cli, 0);
}

/* A server remembered for a failed handshake: no STARTTLS upstream under
 * opportunistic (the next session does not fail first). */
static void
test_tls_remembered(void **state)
{
	struct sim *m = &sim;

	(void)state;
	sim_init_tls(m, TE, OPP);
	smtpfix_stream_set_upstream_clear(&m->s);
	feed(m, 1, S(GREET));
	feed(m, 0, S(EHLO_LIT));
	feed(m, 1, S("250-mx\r\n250 STARTTLS\r\n"));
	/* Still offered to the client: its leg gets TLS. */
	EXPECT_CLI(m, GREET "250-mx\r\n250 STARTTLS\r\n");
	m->srv_len = m->cli_len = 0;
	feed(m, 0, S("STARTTLS\r\n"));
	assert_int_equal(m->srv_len, 0);
	assert_string_equal(m->detail, "client_only_remembered");
	EXPECT_CLI(m, R220TLS);
	/* Require does not skip it. */
	sim_init_tls(m, TE, REQ);
	smtpfix_stream_set_upstream_clear(&m->s);
	feed(m, 1, S(GREET));
	feed(m, 0, S(EHLO_LIT));
	feed(m, 1, S("250-mx\r\n250 STARTTLS\r\n"));
	m->srv_len = 0;
	feed(m, 0, S("STARTTLS\r\n"));
	EXPECT_SRV(m, "STARTTLS\r\n");
}

/* A failed client handshake ends everything: no more steps act. */
static void
test_tls_client_fail(void **state)
{
	struct sim *m = &sim;
	struct smtpfix_step st;

	(void)state;
	open_tls(m, TE, OPP, S("250 mx\r\n"));
	feed(m, 0, S("STARTTLS\r\n"));
	assert_int_equal(m->tls_cli, 1);
	smtpfix_stream_tls_done(&m->s, SMTPFIX_TLSR_CLIENT_FAIL);
	smtpfix_c2s_step(&m->s, S("EHLO x\r\n"), &st);
	assert_true(
	    st.act == SMTPFIX_ACT_NONE || st.act == SMTPFIX_ACT_DISCARD);
	smtpfix_s2c_step(&m->s, S("250 x\r\n"), &st);
	assert_int_equal(st.act, SMTPFIX_ACT_NONE);
}

/* Strip: answered here, never relayed; parameters: 501 (RFC 3207 §4). */
static void
test_tls_strip_and_syntax(void **state)
{
	struct sim *m = &sim;

	(void)state;
	open_tls(m, SMTPFIX_TLS_STRIP, OPP, S("250-mx\r\n250 STARTTLS\r\n"));
	feed(m, 0, S("STARTTLS\r\n"));
	EXPECT_CLI(m, "502 5.5.1 " FQDN " STARTTLS not offered\r\n");
	feed(m, 0, S("NOOP\r\n"));
	EXPECT_SRV(m, "NOOP\r\n");
	assert_string_equal(m->detail, "not_offered");
	/* STARTTLS ends a group (RFC 2920 §3.1) even when refused here. */
	open_tls(m, SMTPFIX_TLS_STRIP, OPP, S("250-mx\r\n250 STARTTLS\r\n"));
	feed(m, 0, S("STARTTLS\r\nNOOP\r\n"));
	EXPECT_CLI(m, R554SYNC);
	assert_int_equal(m->srv_len, 0);
	assert_true(m->closed);

	open_tls(m, TE, REQ, S("250-mx\r\n250 STARTTLS\r\n"));
	feed(m, 0, S("STARTTLS now\r\n"));
	EXPECT_CLI(
	    m, "501 5.5.4 " FQDN " Syntax error (no parameters allowed)\r\n");
	assert_int_equal(m->srv_len, 0);
	m->cli_len = 0;
	feed(m, 0, S("starttls \t\r\n"));
	EXPECT_SRV(m, "starttls \t\r\n");
	assert_string_equal(m->detail, "upstream");
}

/* A STARTTLS pipelined behind EHLO (RFC 2920 forbids it; some clients
 * do it anyway) is decided only once the EHLO reply says whether the
 * server offers STARTTLS. */
static void
test_tls_pipelined_ehlo(void **state)
{
	struct sim *m = &sim;

	(void)state;
	sim_init_tls(m, TE, REQ);
	feed(m, 1, S(GREET));
	feed(m, 0, S(EHLO_LIT "STARTTLS\r\n"));
	EXPECT_SRV(m, EHLO_GW);
	feed(m, 1, S("250-mx\r\n250 STARTTLS\r\n"));
	EXPECT_SRV(m, EHLO_GW "STARTTLS\r\n");
	assert_string_equal(m->detail, "upstream");

	sim_init_tls(m, TE, REQ);
	feed(m, 1, S(GREET));
	feed(m, 0, S(EHLO_LIT "STARTTLS\r\n"));
	feed(m, 1, S("250-mx\r\n250 DSN\r\n"));
	EXPECT_SRV(m, EHLO_GW);
	EXPECT_CLI(m, GREET "250-mx\r\n250 DSN\r\n454 4.7.0 " FQDN
	                    " TLS not available: the server does not "
	                    "offer it\r\n");
}

/* Passthrough as a policy is exactly the old behaviour. */
static void
test_tls_passthrough_policy(void **state)
{
	struct sim *m = &sim;

	(void)state;
	open_tls(
	    m, SMTPFIX_TLS_PASSTHROUGH, OPP, S("250-mx\r\n250 STARTTLS\r\n"));
	feed(m, 0, S("STARTTLS\r\n"));
	feed(m, 1, S("220 go\r\n250 injected\r\n"));
	assert_true(m->opaque);
	assert_int_equal(m->tls_up + m->tls_cli, 0);
	EXPECT_SRV(m, "STARTTLS\r\n");
	EXPECT_CLI(m, "220 go\r\n");
	/* Terminate without a certificate falls back to it too. */
	sim_init_tls(m, TE, OPP);
	m->tls.have_cert = 0;
	feed(m, 1, S(GREET));
	feed(m, 0, S("EHLO x\r\n"));
	feed(m, 1, S("250-mx\r\n250 STARTTLS\r\n"));
	EXPECT_CLI(m, GREET "250-mx\r\n250 STARTTLS\r\n");
}

static void
test_sync_starttls(void **state)
{
	static const struct seg pass[] = {
	    C("STARTTLS\r\nMAIL FROM:<evil@x>\r\n"),
	    SV("220 2.0.0 Ready to start TLS\r\n"),
	};
	static const struct seg refused[] = {
	    C("STARTTLS\r\nMAIL FROM:<a@x>\r\n"),
	    SV("454 4.7.0 TLS not available\r\n"),
	};
	struct sim *m = &sim;
	size_t chunk;

	(void)state;
	/* Passthrough: CVE-2011-0411's pipelined command. */
	sync_splits(pass, NSEG(pass), SMTPFIX_BARE_REJECT, S("STARTTLS\r\n"),
	    S(R554SYNC));
	assert_false(m->opaque);
	sync_splits(refused, NSEG(refused), SMTPFIX_BARE_REJECT,
	    S("STARTTLS\r\n"), S(R554SYNC));
	/* Terminate, upstream in TLS too: caught at our 220 (require: in
	 * series; side by side in test_tls_parallel). */
	for (chunk = 0; chunk < 12; chunk++) {
		struct seg seg;

		open_tls(m, TE, REQ, S("250-mx\r\n250 STARTTLS\r\n"));
		seg = (struct seg){0, S("STARTTLS\r\nMAIL FROM:<evil@x>\r\n")};
		play(m, &seg, 1, chunk, (size_t)-1, 0);
		EXPECT_SRV(m, "STARTTLS\r\n");
		feed(m, 1, S("220 2.0.0 Ready\r\n"));
		assert_int_equal(m->tls_up, 1);
		smtpfix_stream_tls_done(&m->s, SMTPFIX_TLSR_UP_OK);
		pump(m);
		assert_int_equal(m->tls_cli, 0);
		EXPECT_CLI(m, R554SYNC);
		assert_true(m->closed);
		assert_int_equal(m->events[SMTPFIX_EV_SYNC], 1);
	}
	/* Terminate, client leg only (the server offers no TLS). */
	open_tls(m, TE, OPP, S("250-mx\r\n250 DSN\r\n"));
	feed(m, 0, S("STARTTLS\r\nNOOP\r\n"));
	assert_int_equal(m->tls_cli, 0);
	EXPECT_SRV(m, "");
	EXPECT_CLI(m, R554SYNC);
	assert_int_equal(m->events[SMTPFIX_EV_SYNC], 1);
	/* The same client waiting: TLS as usual. */
	open_tls(m, TE, OPP, S("250-mx\r\n250 DSN\r\n"));
	feed(m, 0, S("STARTTLS\r\n"));
	assert_int_equal(m->tls_cli, 1);
	EXPECT_CLI(m, R220TLS);
	assert_int_equal(m->events[SMTPFIX_EV_SYNC], 0);
}

/*
 * AUTH (RFC 4954).
 */

static void
test_auth_secret(void **state)
{
	struct sim *m = &sim;

	(void)state;
	open_session(m, SMTPFIX_HELO_ALWAYS);
	feed(m, 0, S("AUTH LOGIN\r\n"));
	assert_int_equal(last_c2s(m, SMTPFIX_ACT_FORWARD)->secret, 1);
	assert_string_equal(last_c2s(m, SMTPFIX_ACT_FORWARD)->verb, "AUTH");
	feed(m, 1, S("334 VXNlcm5hbWU6\r\n"));
	/* A continuation that looks like a verb is still a continuation. */
	feed(m, 0, S("DATA\r\n"));
	assert_int_equal(last_c2s(m, SMTPFIX_ACT_FORWARD)->secret, 1);
	assert_null(last_c2s(m, SMTPFIX_ACT_FORWARD)->verb);
	feed(m, 1, S("334 UGFzc3dvcmQ6\r\n"));
	feed(m, 0, S("cGFzcw==\r\n"));
	assert_int_equal(last_c2s(m, SMTPFIX_ACT_FORWARD)->secret, 1);
	feed(m, 1, S("235 2.7.0 Authentication successful\r\n"));
	feed(m, 0, S("MAIL FROM:<a@x>\r\n"));
	assert_int_equal(last_c2s(m, SMTPFIX_ACT_FORWARD)->secret, 0);
	assert_string_equal(last_c2s(m, SMTPFIX_ACT_FORWARD)->verb, "MAIL");
	feed(m, 1, S("250 ok\r\n"));
	EXPECT_SRV(m, "AUTH LOGIN\r\nDATA\r\ncGFzcw==\r\nMAIL FROM:<a@x>\r\n");
	EXPECT_CLI(m, "334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n"
	              "235 2.7.0 Authentication successful\r\n250 ok\r\n");
	assert_int_equal(m->s.cmode, SMTPFIX_C_CMD);
}

static void
test_auth_cancel(void **state)
{
	struct sim *m = &sim;

	(void)state;
	open_session(m, SMTPFIX_HELO_ALWAYS);
	/* Each line waits for the reply before it. */
	feed(m, 0, S("AUTH PLAIN\r\n"));
	EXPECT_SRV(m, "AUTH PLAIN\r\n");
	feed(m, 1, S("334 \r\n"));
	feed(m, 0, S("*\r\n"));
	EXPECT_SRV(m, "AUTH PLAIN\r\n*\r\n");
	assert_int_equal(last_c2s(m, SMTPFIX_ACT_FORWARD)->secret, 1);
	feed(m, 1, S("501 5.7.0 Authentication aborted\r\n"));
	feed(m, 0, S("NOOP\r\n"));
	EXPECT_SRV(m, "AUTH PLAIN\r\n*\r\nNOOP\r\n");
	assert_int_equal(last_c2s(m, SMTPFIX_ACT_FORWARD)->secret, 0);
	assert_string_equal(last_c2s(m, SMTPFIX_ACT_FORWARD)->verb, "NOOP");
	/* With an initial response: no 334, the next line is a command. */
	feed(m, 1, S("250 ok\r\n"));
	feed(m, 0, S("AUTH PLAIN AHVzZXIAcGFzcw==\r\n"));
	feed(m, 1, S("235 ok\r\n"));
	feed(m, 0, S("RSET\r\n"));
	assert_int_equal(last_c2s(m, SMTPFIX_ACT_FORWARD)->secret, 0);
}

/*
 * Server replies.
 */

static void
test_bad_reply(void **state)
{
	static const struct {
		const char *p;
		size_t len;
	} bad[] = {
	    {S("abc\r\n")},
	    {S("25\r\n")},
	    {S("250x\r\n")},
	    {S("2500\r\n")},
	    {S("650 x\r\n")},
	    {S("150 x\r\n")},
	    {S("25a ok\r\n")},
	    {S("\r\n")},
	    {S("250 ok\nfoo\r\n")},
	    {S("250 a\rb\r\n")},
	    {S("250 a\0b\r\n")},
	    {S("250-a\r\n251 b\r\n")},
	    {S("250-a\r\n354 b\r\n")},
	};
	struct sim *m = &sim;
	static char big[1024];
	size_t i;

	(void)state;
	for (i = 0; i < NSEG(bad); i++) {
		open_session(m, SMTPFIX_HELO_ALWAYS);
		feed(m, 0, S("NOOP\r\nNOOP\r\n"));
		feed(m, 1, bad[i].p, bad[i].len);
		assert_true(m->closed);
		assert_int_equal(m->events[SMTPFIX_EV_BAD_REPLY], 1);
		assert_true(m->cli_len >= sizeof(R421) - 1);
		expect_bytes("client tail",
		    m->cli + m->cli_len - (sizeof(R421) - 1), sizeof(R421) - 1,
		    S(R421));
		check_clean(m);
	}
	/* Over reply_max (CRLF included), even before the CRLF comes. */
	open_session(m, SMTPFIX_HELO_ALWAYS);
	feed(m, 0, S("NOOP\r\n"));
	memset(big, 'x', sizeof(big));
	memcpy(big, "250 ", 4);
	feed(m, 1, big, 512);
	EXPECT_CLI(m, R421);
	/* 512 with the CRLF is fine. */
	open_session(m, SMTPFIX_HELO_ALWAYS);
	feed(m, 0, S("NOOP\r\n"));
	memcpy(big + 510, "\r\n", 2);
	feed(m, 1, big, 512);
	assert_false(m->closed);
	assert_int_equal(m->cli_len, 512);
	/* A bad greeting. */
	sim_init(m, SMTPFIX_HELO_ALWAYS);
	feed(m, 1, S("SSH-2.0-OpenSSH_9.2\r\n"));
	EXPECT_CLI(m, R421);
	assert_int_equal(m->srv_len, 0);
	/* The code alone is a reply (RFC 5321 §4.2: text is optional). */
	open_session(m, SMTPFIX_HELO_ALWAYS);
	feed(m, 0, S("NOOP\r\n"));
	feed(m, 1, S("250\r\n"));
	EXPECT_CLI(m, "250\r\n");
	assert_false(m->closed);
}

static void
test_354_not_data(void **state)
{
	struct sim *m = &sim;

	(void)state;
	/* A server in message data mode that we think in command mode
	 * would be out of step with us: close. */
	open_session(m, SMTPFIX_HELO_ALWAYS);
	feed(m, 0, S("NOOP\r\n"));
	feed(m, 1, S("354 go\r\n"));
	EXPECT_CLI(m, R421);
	assert_int_equal(m->events[SMTPFIX_EV_BAD_REPLY], 1);
	open_session(m, SMTPFIX_HELO_ALWAYS);
	feed(m, 1, S("354 go\r\n"));
	EXPECT_CLI(m, R421);
	open_session(m, SMTPFIX_HELO_ALWAYS);
	feed(m, 0, S("HELP\r\n"));
	feed(m, 1, S("354-a\r\n354 b\r\n"));
	EXPECT_CLI(m, R421);
}

static void
test_unsolicited(void **state)
{
	struct sim *m = &sim;

	(void)state;
	open_session(m, SMTPFIX_HELO_ALWAYS);
	assert_int_equal(smtpfix_stream_upstream_gone(&m->s), 0);
	feed(m, 1, S("421 4.3.2 Service shutting down\r\n"));
	EXPECT_CLI(m, "421 4.3.2 Service shutting down\r\n");
	assert_false(m->closed);
	assert_int_equal(smtpfix_stream_upstream_gone(&m->s), 0);
	/* A local reply never lands inside an unsolicited multi-line one,
	 * and an unsolicited reply answers nothing. */
	open_session(m, SMTPFIX_HELO_ALWAYS);
	feed(m, 1, S("421-4.3.2 going\r\n"));
	feed(m, 0, S("NO\nOP\r\nNOOP\r\n"));
	EXPECT_CLI(m, "421-4.3.2 going\r\n");
	feed(m, 1, S("421 4.3.2 down\r\n"));
	EXPECT_CLI(m, "421-4.3.2 going\r\n421 4.3.2 down\r\n" R500BAD);
	assert_int_equal(smtpfix_stream_upstream_gone(&m->s), 1);
	feed(m, 1, S("250 ok\r\n"));
	EXPECT_CLI(
	    m, "421-4.3.2 going\r\n421 4.3.2 down\r\n" R500BAD "250 ok\r\n");
}

static void
test_upstream_gone(void **state)
{
	struct sim *m = &sim;
	struct smtpfix_step st;

	(void)state;
	sim_init(m, SMTPFIX_HELO_ALWAYS);
	assert_int_equal(smtpfix_stream_upstream_gone(&m->s), 1);
	feed(m, 1, S("220-mx\r\n"));
	assert_int_equal(smtpfix_stream_upstream_gone(&m->s), 1);
	feed(m, 1, S("220 mx\r\n"));
	assert_int_equal(smtpfix_stream_upstream_gone(&m->s), 0);
	feed(m, 0, S("EHLO x\r\n"));
	assert_int_equal(smtpfix_stream_upstream_gone(&m->s), 1);
	feed(m, 1, S("250-mx\r\n"));
	assert_int_equal(smtpfix_stream_upstream_gone(&m->s), 1);
	feed(m, 1, S("250 CHUNKING\r\n"));
	assert_int_equal(smtpfix_stream_upstream_gone(&m->s), 0);
	feed(m, 0, S("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"));
	assert_int_equal(smtpfix_stream_upstream_gone(&m->s), 1);
	feed(m, 1, S("250 ok\r\n250 ok\r\n354 go\r\n"));
	assert_int_equal(smtpfix_stream_upstream_gone(&m->s), 1);
	assert_int_equal(m->s.cmode, SMTPFIX_C_DATA);
	feed(m, 0, S("body\r\n.\r\n"));
	assert_int_equal(smtpfix_stream_upstream_gone(&m->s), 1);
	feed(m, 1, S("250 queued\r\n"));
	assert_int_equal(smtpfix_stream_upstream_gone(&m->s), 0);
	/* Only our own replies outstanding: nothing lost upstream. */
	smtpfix_c2s_step(&m->s, S("NO\0OP\r\n"), &st);
	assert_int_equal(st.act, SMTPFIX_ACT_DISCARD);
	assert_int_equal(smtpfix_stream_upstream_gone(&m->s), 0);
	feed(m, 0, S("QUIT\r\nNOOP\r\n"));
	assert_int_equal(smtpfix_stream_upstream_gone(&m->s), 1);
	feed(m, 1, S("221 2.0.0 Bye\r\n"));
	assert_int_equal(smtpfix_stream_upstream_gone(&m->s), 0);
	/* QUIT refused: nothing outstanding either. */
	open_session(m, SMTPFIX_HELO_ALWAYS);
	feed(m, 0, S("QUIT\r\n"));
	assert_int_equal(smtpfix_stream_upstream_gone(&m->s), 1);
	feed(m, 1, S("500 no\r\n"));
	assert_int_equal(smtpfix_stream_upstream_gone(&m->s), 0);
}

static void
test_wait(void **state)
{
	struct sim *m = &sim;
	struct smtpfix_step st;

	(void)state;
	sim_init(m, SMTPFIX_HELO_ALWAYS);
	assert_int_equal(smtpfix_stream_wait(&m->s), SMTPFIX_WAIT_GREETING);
	feed(m, 1, S(GREET));
	feed(m, 0, S("EHLO x\r\n"));
	assert_int_equal(smtpfix_stream_wait(&m->s), SMTPFIX_WAIT_REPLY);
	feed(m, 1, S("250 mx\r\n"));
	assert_int_equal(smtpfix_stream_wait(&m->s), SMTPFIX_WAIT_COMMAND);
	/* Our own replies owe nothing to the server. */
	smtpfix_c2s_step(&m->s, S("NO\nOP\r\n"), &st);
	assert_int_equal(smtpfix_stream_wait(&m->s), SMTPFIX_WAIT_COMMAND);
	feed(m, 0, S("MAIL FROM:<a@x>\r\nDATA\r\n"));
	assert_int_equal(smtpfix_stream_wait(&m->s), SMTPFIX_WAIT_REPLY);
	feed(m, 1, S("250 ok\r\n"));
	assert_int_equal(smtpfix_stream_wait(&m->s), SMTPFIX_WAIT_DATA_INIT);
	feed(m, 1, S("354 go\r\n"));
	assert_int_equal(smtpfix_stream_wait(&m->s), SMTPFIX_WAIT_DATA);
	feed(m, 0, S("x\r\n.\r\n"));
	assert_int_equal(smtpfix_stream_wait(&m->s), SMTPFIX_WAIT_DATA_END);
	feed(m, 1, S("250 queued\r\n"));
	assert_int_equal(smtpfix_stream_wait(&m->s), SMTPFIX_WAIT_COMMAND);
	feed(m, 0, S("STARTTLS\r\n"));
	assert_int_equal(smtpfix_stream_wait(&m->s), SMTPFIX_WAIT_REPLY);
	feed(m, 1, S("220 go\r\n"));
	assert_int_equal(smtpfix_stream_wait(&m->s), SMTPFIX_WAIT_OPAQUE);
}

static void
test_reply_fmt(void **state)
{
	char buf[128];
	size_t n;

	(void)state;
	n = smtpfix_reply_fmt(buf, sizeof(buf), S(FQDN), "421 4.4.2",
	    "upstream protocol error, closing");
	expect_bytes("reply", buf, n, S(R421));
	n = smtpfix_reply_fmt(buf, sizeof(R421) - 1, S(FQDN), "421 4.4.2",
	    "upstream protocol error, closing");
	assert_int_equal(n, sizeof(R421) - 1);
	n = smtpfix_reply_fmt(buf, sizeof(R421) - 2, S(FQDN), "421 4.4.2",
	    "upstream protocol error, closing");
	assert_int_equal(n, 0);
}

static void
test_verbs(void **state)
{
	static const struct {
		const char *line;
		const char *verb;
	} v[] = {
	    {"MAIL FROM:<a@x>\r\n", "MAIL"},
	    {"rcpt TO:<a@x>\r\n", "RCPT"},
	    {"RSET\r\n", "RSET"},
	    {"noop x\r\n", "NOOP"},
	    {"VRFY a\r\n", "VRFY"},
	    {"EXPN a\r\n", "EXPN"},
	    {"HELP\r\n", "HELP"},
	};
	struct sim *m = &sim;
	const struct logent *e;
	size_t i;

	(void)state;
	for (i = 0; i < NSEG(v); i++) {
		open_session(m, SMTPFIX_HELO_ALWAYS);
		feed(m, 0, v[i].line, strlen(v[i].line));
		expect_bytes(
		    "server", m->srv, m->srv_len, v[i].line, strlen(v[i].line));
		e = last_c2s(m, SMTPFIX_ACT_FORWARD);
		if (v[i].verb == NULL)
			assert_null(e->verb);
		else
			assert_string_equal(e->verb, v[i].verb);
		assert_int_equal(e->secret, 0);
	}
}

/* A verb the gateway did not advertise is answered here and never
 * reaches the server (RFC 5321 §4.2.4: 502 for a known command not
 * implemented, 500 for one not recognized). */
static void
test_verbs_refused(void **state)
{
	static const struct {
		const char *line;
		const char *verb;
		const char *reply;
	} v[] = {
	    {"XCLIENT ADDR=192.0.2.99 NAME=spoofed.example.net\r\n", "XCLIENT",
	        "502 5.5.1 " FQDN " command not implemented\r\n"},
	    {"xforward ADDR=192.0.2.99\r\n", "XFORWARD",
	        "502 5.5.1 " FQDN " command not implemented\r\n"},
	    {"ETRN example.org\r\n", "ETRN",
	        "502 5.5.1 " FQDN " command not implemented\r\n"},
	    {"MAILX\r\n", NULL, "500 5.5.1 " FQDN " command unrecognized\r\n"},
	    {"XEXCH50 1 2\r\n", NULL,
	        "500 5.5.1 " FQDN " command unrecognized\r\n"},
	    {"\r\n", NULL, "500 5.5.1 " FQDN " command unrecognized\r\n"},
	};
	struct sim *m = &sim;
	size_t i;

	(void)state;
	for (i = 0; i < NSEG(v); i++) {
		open_session(m, SMTPFIX_HELO_ALWAYS);
		/* In a pipelined group: the replies keep command order. */
		feed(m, 0, S("NOOP\r\n"));
		feed(m, 0, v[i].line, strlen(v[i].line));
		feed(m, 0, S("NOOP\r\n"));
		EXPECT_SRV(m, "NOOP\r\nNOOP\r\n");
		assert_int_equal(m->events[SMTPFIX_EV_VERB], 1);
		if (v[i].verb == NULL)
			assert_null(last_c2s(m, SMTPFIX_ACT_DISCARD)->verb);
		else
			assert_string_equal(
			    last_c2s(m, SMTPFIX_ACT_DISCARD)->verb, v[i].verb);
		feed(m, 1, S("250 a\r\n250 b\r\n"));
		assert_true(m->cli_len == 7 + strlen(v[i].reply) + 7);
		expect_bytes("client", m->cli, 7, S("250 a\r\n"));
		expect_bytes("client", m->cli + 7, strlen(v[i].reply),
		    v[i].reply, strlen(v[i].reply));
		expect_bytes("client", m->cli + 7 + strlen(v[i].reply), 7,
		    S("250 b\r\n"));
		assert_false(m->closed);
	}
}

/* draft-martin-smtp-ipv6-to-ipv4-fallback §3.1: 456 is only for a client
 * that negotiated IPV6-IPV4-FALLBACK, which the gateway never offers. */
static void
test_reply_456(void **state)
{
	struct sim *m = &sim;

	(void)state;
	open_session(m, SMTPFIX_HELO_ALWAYS);
	feed(m, 0, S("MAIL FROM:<a@example.net>\r\nNOOP\r\n"));
	feed(m, 1,
	    S("456-4.4.8 please retry immediately the message\r\n"
	      "456 4.4.8 over IPv4\r\n250 ok\r\n"));
	EXPECT_CLI(m, "451-4.4.8 please retry immediately the message\r\n"
	              "451 4.4.8 over IPv4\r\n250 ok\r\n");
	assert_int_equal(m->events[SMTPFIX_EV_REPLY_CODE], 1);
	assert_false(m->closed);
}

/* DATA with arguments, with a tab or leading blanks is still held:
 * holding more than the server needs is safe, less is not. */
static void
test_data_wide(void **state)
{
	static const char *const lines[] = {
	    "DATA\r\n",
	    "data\r\n",
	    "DATA x\r\n",
	    "DATA\tx\r\n",
	    " DATA\r\n",
	};
	struct sim *m = &sim;
	size_t i;

	(void)state;
	for (i = 0; i < NSEG(lines); i++) {
		open_session(m, SMTPFIX_HELO_ALWAYS);
		feed(m, 0, lines[i], strlen(lines[i]));
		feed(m, 0, S(".\r\nNOOP\r\n"));
		expect_bytes(
		    "server", m->srv, m->srv_len, lines[i], strlen(lines[i]));
		/* Held, and sent early (RFC 2920 §3.1): never relayed. */
		feed(m, 1, S("354 go\r\n"));
		assert_int_equal(m->events[SMTPFIX_EV_DATA_END], 0);
		assert_int_equal(m->events[SMTPFIX_EV_SYNC], 1);
		assert_int_equal(m->srv_len, strlen(lines[i]));
		/* A client that waits gets the data mode. */
		open_session(m, SMTPFIX_HELO_ALWAYS);
		feed(m, 0, lines[i], strlen(lines[i]));
		feed(m, 1, S("354 go\r\n"));
		feed(m, 0, S(".\r\nNOOP\r\n"));
		assert_int_equal(m->events[SMTPFIX_EV_DATA_END], 1);
		assert_int_equal(m->srv_len, strlen(lines[i]) + 9);
	}
}

/*
 * Client identity: XCLIENT (Postfix's XCLIENT_README) before the first
 * relayed command, values in xtext (RFC 3461 §4).
 */

#define XC_OFFER                                                               \
	"250-mx.example.org\r\n250-PIPELINING\r\n"                             \
	"250-XCLIENT NAME ADDR PORT PROTO HELO LOGIN DESTADDR DESTPORT\r\n"    \
	"250 8BITMIME\r\n"
#define XC_NO_OFFER "250-mx.example.org\r\n250 8BITMIME\r\n"
#define XC_LINE                                                                \
	"XCLIENT NAME=[UNAVAILABLE] ADDR=192.0.2.10 PORT=40000 PROTO=ESMTP "   \
	"HELO=client.example.org DESTADDR=192.0.2.30 DESTPORT=25\r\n"
#define XC_220 "220 mx.example.org ESMTP\r\n"
#define XC_550 "550 5.7.0 Error: insufficient authorization\r\n"
#define XC_EHLO "EHLO client.example.org\r\n"
#define XC_REPLY "250-mx.example.org\r\n250-XCLIENT ADDR\r\n250 8BITMIME\r\n"
#define XC_SEEN "250-mx.example.org\r\n250 8BITMIME\r\n"
#define R421ID                                                                 \
	"421 4.7.0 " FQDN " the server did not accept the client's "           \
	"identity, try again later\r\n"

static void
sim_init_xc(struct sim *m, int mode, int required)
{
	sim_init(m, SMTPFIX_HELO_ALWAYS);
	assert_int_equal(nat_addr_parse(S("192.0.2.10"), &m->id.client), 0);
	assert_int_equal(nat_addr_parse(S("192.0.2.30"), &m->id.dest), 0);
	m->id.client_port = 40000;
	m->id.dest_port = 25;
	smtpfix_stream_set_identity(&m->s, mode, &m->id, required);
}

/* The whole exchange, every segment cut at every position and in
 * chunks: the server gets our EHLO, XCLIENT, then the client's own EHLO
 * (its argument, not rewritten: the server now knows its address); the
 * client sees only the replies to its own commands. */
static void
test_xclient_flow(void **state)
{
	static const struct seg segs[] = {
	    SV(GREET),
	    C(XC_EHLO),
	    SV(XC_OFFER),
	    SV("220-mx.example.org\r\n220 ESMTP again\r\n"),
	    SV(XC_REPLY),
	    C("MAIL FROM:<a@x>\r\n"),
	    SV("250 2.1.0 Ok\r\n"),
	};
	static const char want_srv[] =
	    "EHLO " FQDN "\r\n" XC_LINE XC_EHLO "MAIL FROM:<a@x>\r\n";
	static const char want_cli[] = GREET XC_SEEN "250 2.1.0 Ok\r\n";
	struct sim *m = &sim;
	size_t i, at, chunk;

	(void)state;
	for (i = 0; i < NSEG(segs); i++)
		for (at = 0; at <= segs[i].len; at++) {
			sim_init_xc(m, SMTPFIX_ID_XCLIENT, 0);
			play(m, segs, NSEG(segs), 0, i, at);
			EXPECT_SRV(m, want_srv);
			EXPECT_CLI(m, want_cli);
			assert_string_equal(m->id_detail, "accepted");
			assert_int_equal(
			    smtpfix_stream_xclient_mask(&m->s), 0x7f);
			assert_false(m->closed);
		}
	for (chunk = 1; chunk < 10; chunk++) {
		sim_init_xc(m, SMTPFIX_ID_XCLIENT, 0);
		play(m, segs, NSEG(segs), chunk, (size_t)-1, 0);
		EXPECT_SRV(m, want_srv);
		EXPECT_CLI(m, want_cli);
	}
	/* Pipelined behind the EHLO: still in command order. */
	sim_init_xc(m, SMTPFIX_ID_XCLIENT, 0);
	feed(m, 1, S(GREET));
	feed(m, 0, S(XC_EHLO "MAIL FROM:<a@x>\r\n"));
	EXPECT_SRV(m, "EHLO " FQDN "\r\n");
	feed(m, 1, S(XC_OFFER XC_220 XC_REPLY "250 2.1.0 Ok\r\n"));
	EXPECT_SRV(m, want_srv);
	EXPECT_CLI(m, want_cli);
}

/* Only the offered attributes; the client's HELO in xtext, or
 * [UNAVAILABLE] when it is not a plain word (then rewritten as usual). */
static void
test_xclient_attrs(void **state)
{
	struct sim *m = &sim;

	(void)state;
	sim_init_xc(m, SMTPFIX_ID_XCLIENT, 0);
	feed(m, 1, S(GREET));
	feed(m, 0, S("HELO a+b=c\r\n"));
	feed(m, 1, S("250-mx\r\n250 XCLIENT ADDR HELO PROTO\r\n"));
	EXPECT_SRV(m, "EHLO " FQDN "\r\n"
	              "XCLIENT ADDR=192.0.2.10 PROTO=SMTP HELO=a+2Bb+3Dc\r\n");
	feed(m, 1, S(XC_220));
	EXPECT_SRV(m, "EHLO " FQDN "\r\n"
	              "XCLIENT ADDR=192.0.2.10 PROTO=SMTP HELO=a+2Bb+3Dc\r\n"
	              "HELO a+b=c\r\n");

	sim_init_xc(m, SMTPFIX_ID_XCLIENT, 0);
	feed(m, 1, S(GREET));
	feed(m, 0, S("EHLO caf\xc3\xa9.example\r\n"));
	feed(m, 1, S("250-mx\r\n250 XCLIENT HELO ADDR\r\n" XC_220));
	EXPECT_SRV(m, "EHLO " FQDN "\r\n"
	              "XCLIENT ADDR=192.0.2.10 HELO=[UNAVAILABLE]\r\n"
	              "EHLO " FQDN "\r\n");

	/* A first command that is not HELO/EHLO: no HELO to tell. */
	sim_init_xc(m, SMTPFIX_ID_XCLIENT, 0);
	feed(m, 1, S(GREET));
	feed(m, 0, S("MAIL FROM:<a@x>\r\n"));
	feed(m, 1, S(XC_OFFER XC_220));
	EXPECT_SRV(m, "EHLO " FQDN "\r\n"
	              "XCLIENT NAME=[UNAVAILABLE] ADDR=192.0.2.10 PORT=40000 "
	              "PROTO=SMTP HELO=[UNAVAILABLE] DESTADDR=192.0.2.30 "
	              "DESTPORT=25\r\n"
	              "MAIL FROM:<a@x>\r\n");

	/* IPv6: the "IPV6:" tag. */
	sim_init(m, SMTPFIX_HELO_ALWAYS);
	assert_int_equal(nat_addr_parse(S("2001:db8::10"), &m->id.client), 0);
	assert_int_equal(nat_addr_parse(S("2001:db8:1::25"), &m->id.dest), 0);
	smtpfix_stream_set_identity(&m->s, SMTPFIX_ID_XCLIENT, &m->id, 0);
	feed(m, 1, S(GREET));
	feed(m, 0, S("EHLO [IPv6:2001:db8::10]\r\n"));
	feed(m, 1, S("250-mx\r\n250 XCLIENT ADDR DESTADDR\r\n" XC_220));
	EXPECT_SRV(m, "EHLO " FQDN "\r\n"
	              "XCLIENT ADDR=IPV6:2001:db8::10 "
	              "DESTADDR=IPV6:2001:db8:1::25\r\n"
	              "EHLO [IPv6:2001:db8::10]\r\n");
}

/* Not offered, or refused: logged, and the session goes on as the
 * gateway (HELO rewritten); the client never sees those replies. */
static void
test_xclient_not_accepted(void **state)
{
	struct sim *m = &sim;

	(void)state;
	sim_init_xc(m, SMTPFIX_ID_XCLIENT, 0);
	feed(m, 1, S(GREET));
	feed(m, 0, S(XC_EHLO));
	feed(m, 1, S(XC_NO_OFFER));
	assert_string_equal(m->id_detail, "not_offered");
	EXPECT_SRV(m, "EHLO " FQDN "\r\n"
	              "EHLO " FQDN "\r\n");
	feed(m, 1, S(XC_NO_OFFER));
	EXPECT_CLI(m, GREET XC_NO_OFFER);

	sim_init_xc(m, SMTPFIX_ID_XCLIENT, 0);
	feed(m, 1, S(GREET));
	feed(m, 0, S(XC_EHLO));
	feed(m, 1, S(XC_OFFER));
	feed(m, 1, S(XC_550));
	assert_string_equal(m->id_detail, "refused");
	EXPECT_SRV(m, "EHLO " FQDN "\r\n" XC_LINE "EHLO " FQDN "\r\n");
	feed(m, 1, S(XC_REPLY));
	EXPECT_CLI(m, GREET XC_SEEN);
	assert_false(m->closed);

	/* A server that knows no EHLO at all. */
	sim_init_xc(m, SMTPFIX_ID_XCLIENT, 0);
	feed(m, 1, S(GREET));
	feed(m, 0, S(XC_EHLO));
	feed(m, 1, S("502 5.5.2 Error: command not recognized\r\n"));
	assert_string_equal(m->id_detail, "not_offered");
	EXPECT_SRV(m, "EHLO " FQDN "\r\n"
	              "EHLO " FQDN "\r\n");
}

/* identity_required: the client's command is answered 421 4.7.0 and the
 * session closes; nothing of the client's reaches the server. */
static void
test_xclient_required(void **state)
{
	struct sim *m = &sim;
	size_t at;

	(void)state;
	for (at = 0; at <= sizeof(XC_550) - 1; at++) {
		sim_init_xc(m, SMTPFIX_ID_XCLIENT, 1);
		feed(m, 1, S(GREET));
		feed(m, 0, S(XC_EHLO "MAIL FROM:<a@x>\r\n"));
		feed(m, 1, S(XC_OFFER));
		feed(m, 1, XC_550, at);
		feed(m, 1, XC_550 + at, sizeof(XC_550) - 1 - at);
		EXPECT_SRV(m, "EHLO " FQDN "\r\n" XC_LINE);
		EXPECT_CLI(m, GREET R421ID);
		assert_true(m->closed);
		assert_string_equal(m->id_detail, "required");
	}
	sim_init_xc(m, SMTPFIX_ID_XCLIENT, 1);
	feed(m, 1, S(GREET));
	feed(m, 0, S(XC_EHLO));
	feed(m, 1, S(XC_NO_OFFER));
	EXPECT_SRV(m, "EHLO " FQDN "\r\n");
	EXPECT_CLI(m, GREET R421ID);
	assert_true(m->closed);
}

/* A client cannot state an identity: its XCLIENT, XFORWARD and PROXY
 * lines are answered here and never trigger ours; QUIT needs none. */
static void
test_xclient_client_forged(void **state)
{
	static const char v2[] = "\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c"
	                         "\xc6\x33\x64\x01\xc0\x00\x02\x1e"
	                         "\x9c\x40\x00\x19";
	struct sim *m = &sim;

	(void)state;
	sim_init_xc(m, SMTPFIX_ID_XCLIENT, 0);
	feed(m, 1, S(GREET));
	m->cli_len = 0;
	feed(m, 0, S("XCLIENT ADDR=198.51.100.1\r\n"));
	feed(m, 0, S("XFORWARD ADDR=198.51.100.1\r\n"));
	feed(m, 0, S("PROXY TCP4 198.51.100.1 192.0.2.30 1 25\r\n"));
	feed(m, 0, v2, sizeof(v2) - 1);
	feed(m, 0, S("\r\n"));
	assert_int_equal(m->srv_len, 0);
	assert_null(find_mem(m->cli, m->cli_len, S("250")));
	assert_non_null(find_mem(m->cli, m->cli_len, S("502 5.5.1")));
	assert_non_null(find_mem(m->cli, m->cli_len, S("500 5.5.1")));
	feed(m, 0, S("QUIT\r\n"));
	EXPECT_SRV(m, "QUIT\r\n");
}

/* STARTTLS terminated: XCLIENT in clear text; once accepted it stands
 * inside the upstream TLS (the server keeps it for the connection, and
 * Postfix offers it no more), so the client's post-TLS EHLO goes at once,
 * as its own. */
static void
test_xclient_tls(void **state)
{
	static const char offer_tls[] =
	    "250-mx.example.org\r\n250-STARTTLS\r\n"
	    "250-XCLIENT NAME ADDR PORT PROTO HELO LOGIN DESTADDR DESTPORT\r\n"
	    "250 8BITMIME\r\n";
	struct sim *m = &sim;
	size_t chunk;

	(void)state;
	for (chunk = 0; chunk < 6; chunk++) {
		struct seg seg;

		sim_init_xc(m, SMTPFIX_ID_XCLIENT, 0);
		m->tls.mode = TE;
		m->tls.upstream = OPP;
		m->tls.have_cert = 1;
		smtpfix_stream_set_tls(&m->s, &m->tls);
		feed(m, 1, S(GREET));
		feed(m, 0, S(XC_EHLO));
		seg = (struct seg){1, S(offer_tls)};
		play(m, &seg, 1, chunk, (size_t)-1, 0);
		seg = (struct seg){1, S(XC_220)};
		play(m, &seg, 1, chunk, (size_t)-1, 0);
		seg = (struct seg){1, S(offer_tls)};
		play(m, &seg, 1, chunk, (size_t)-1, 0);
		EXPECT_SRV(m, "EHLO " FQDN "\r\n" XC_LINE XC_EHLO);
		EXPECT_CLI(m, GREET "250-mx.example.org\r\n250-8BITMIME\r\n"
		                    "250 STARTTLS\r\n");
		m->srv_len = m->cli_len = 0;
		feed(m, 0, S("STARTTLS\r\n"));
		EXPECT_SRV(m, "STARTTLS\r\n");
		feed(m, 1, S("220 2.0.0 Ready\r\n"));
		assert_int_equal(m->tls_up, 1);
		smtpfix_stream_tls_done(&m->s, SMTPFIX_TLSR_UP_OK);
		pump(m);
		EXPECT_CLI(m, R220TLS);
		smtpfix_stream_tls_done(&m->s, SMTPFIX_TLSR_CLIENT_OK);
		m->srv_len = m->cli_len = 0;
		seg = (struct seg){0, S(XC_EHLO)};
		play(m, &seg, 1, chunk, (size_t)-1, 0);
		EXPECT_SRV(m, XC_EHLO);
		seg = (struct seg){1, S(XC_SEEN)};
		play(m, &seg, 1, chunk, (size_t)-1, 0);
		EXPECT_CLI(m, XC_SEEN);
	}

	/* Not offered in clear text: asked again inside TLS, where this
	 * server offers it. */
	sim_init_xc(m, SMTPFIX_ID_XCLIENT, 0);
	m->tls.mode = TE;
	m->tls.upstream = OPP;
	m->tls.have_cert = 1;
	smtpfix_stream_set_tls(&m->s, &m->tls);
	feed(m, 1, S(GREET));
	feed(m, 0, S("STARTTLS\r\n"));
	feed(m, 1, S("250-mx\r\n250 STARTTLS\r\n"));
	assert_string_equal(m->id_detail, "not_offered");
	EXPECT_SRV(m, "EHLO " FQDN "\r\nSTARTTLS\r\n");
	feed(m, 1, S("220 2.0.0 Ready\r\n"));
	smtpfix_stream_tls_done(&m->s, SMTPFIX_TLSR_UP_OK);
	pump(m);
	smtpfix_stream_tls_done(&m->s, SMTPFIX_TLSR_CLIENT_OK);
	m->srv_len = m->cli_len = 0;
	feed(m, 0, S(XC_EHLO));
	EXPECT_SRV(m, "EHLO " FQDN "\r\n");
	feed(m, 1, S(XC_OFFER XC_220 XC_REPLY));
	EXPECT_SRV(m, "EHLO " FQDN "\r\n" XC_LINE XC_EHLO);
	EXPECT_CLI(m, XC_SEEN);
	assert_string_equal(m->id_detail, "accepted");
}

/* A clear-text fallback after a failed upstream handshake is a new
 * connection: XCLIENT again before the client's post-TLS EHLO. */
static void
test_xclient_reconnect(void **state)
{
	struct sim *m = &sim;

	(void)state;
	sim_init_xc(m, SMTPFIX_ID_XCLIENT, 0);
	m->tls.mode = TE;
	m->tls.upstream = OPP;
	m->tls.have_cert = 1;
	smtpfix_stream_set_tls(&m->s, &m->tls);
	feed(m, 1, S(GREET));
	feed(m, 0, S(XC_EHLO));
	feed(m, 1, S(XC_OFFER XC_220 "250-mx\r\n250 STARTTLS\r\n"));
	feed(m, 0, S("STARTTLS\r\n"));
	/* Opportunistic: the client's 220 at once, side by side. */
	assert_int_equal(m->tls_cli, 1);
	feed(m, 1, S("220 2.0.0 Ready\r\n"));
	assert_int_equal(m->tls_up, 1);
	assert_int_equal(
	    smtpfix_stream_tls_done(&m->s, SMTPFIX_TLSR_UP_FAIL), 1);
	m->srv_len = m->cli_len = 0;
	m->sin_len = 0;
	feed(m, 1, S(GREET));
	assert_int_equal(m->cli_len, 0);
	smtpfix_stream_tls_done(&m->s, SMTPFIX_TLSR_CLIENT_OK);
	m->cli_len = 0;
	feed(m, 0, S(XC_EHLO));
	EXPECT_SRV(m, "EHLO " FQDN "\r\n");
	feed(m, 1, S(XC_OFFER XC_220 XC_REPLY));
	EXPECT_SRV(m, "EHLO " FQDN "\r\n" XC_LINE XC_EHLO);
	EXPECT_CLI(m, XC_SEEN);
}

/* PROXY header modes: the stream sends nothing of its own, and the
 * client's HELO goes as it is (the server knows its address). */
static void
test_identity_proxy(void **state)
{
	struct sim *m = &sim;

	(void)state;
	sim_init_xc(m, SMTPFIX_ID_PROXY_V2, 0);
	feed(m, 1, S(GREET));
	feed(m, 0, S(XC_EHLO));
	EXPECT_SRV(m, XC_EHLO);
	feed(m, 1, S(XC_REPLY));
	EXPECT_CLI(m, GREET XC_SEEN);
	/* A literal too. */
	sim_init_xc(m, SMTPFIX_ID_PROXY_V1, 0);
	feed(m, 1, S(GREET));
	feed(m, 0, S("EHLO [192.0.2.10]\r\n"));
	EXPECT_SRV(m, "EHLO [192.0.2.10]\r\n");
	/* none: as before. */
	sim_init_xc(m, SMTPFIX_ID_NONE, 0);
	feed(m, 1, S(GREET));
	feed(m, 0, S(XC_EHLO));
	EXPECT_SRV(m, "EHLO " FQDN "\r\n");
}

/*
 * Route mode: the front answered EHLO and MAIL, the opener gave MAIL to
 * the server; the relay takes the RCPTs.  One transaction, one server
 * (RFC 5321 §3.3): a recipient of another domain gets 452 4.5.3 and never
 * reaches the server; the next MAIL goes back to the front, once every
 * reply of this transaction is in.
 */
static void
test_routed(void **state)
{
	static const struct seg segs[] = {
	    C("RCPT TO:<a@example.org>\r\n"
	      "RCPT TO:<b@example.com>\r\n"
	      "RCPT TO:<c@EXAMPLE.ORG.>\r\n"
	      "DATA\r\n"),
	    SV("250 2.1.5 a\r\n250 2.1.5 c\r\n354 go\r\n"),
	    C("Subject: x\r\n\r\nbody\r\n.\r\nMAIL FROM:<d@example.net>\r\n"),
	    SV("250 2.0.0 queued\r\n"),
	};
	static const char srv[] = "RCPT TO:<a@example.org>\r\n"
	                          "RCPT TO:<c@EXAMPLE.ORG.>\r\n"
	                          "DATA\r\n"
	                          "Subject: x\r\n\r\nbody\r\n.\r\n";
	static const char cli[] =
	    "250 2.1.5 a\r\n"
	    "452 4.5.3 " FQDN " that domain goes to another server: send it "
	    "again in a new transaction\r\n"
	    "250 2.1.5 c\r\n354 go\r\n250 2.0.0 queued\r\n";
	size_t chunk;

	(void)state;
	for (chunk = 0; chunk < 8; chunk += 7) {
		sim_init(&sim, SMTPFIX_HELO_ALWAYS);
		smtpfix_stream_init_routed(&sim.s, &sim.pol, S("example.org"));
		play(&sim, segs, NSEG(segs), chunk, (size_t)-1, 0);
		expect_bytes("server", sim.srv, sim.srv_len, S(srv));
		expect_bytes("client", sim.cli, sim.cli_len, S(cli));
		assert_int_equal(sim.events[SMTPFIX_EV_OTHER_SERVER], 1);
		assert_int_equal(sim.checks, 1);
		assert_true(sim.front > 0);
		/* The MAIL line stays for the front. */
		assert_int_equal(sim.cin_len, 27);
		assert_memory_equal(
		    sim.cin, "MAIL FROM:<d@example.net>\r\n", 27);
		assert_int_equal(
		    smtpfix_stream_wait(&sim.s), SMTPFIX_WAIT_COMMAND);
	}
}

/* A RCPT of another domain whose servers include this leg's joins the
 * transaction (the gateway's DNS says so). */
static void
test_routed_same_server(void **state)
{
	static const struct seg segs[] = {
	    C("RCPT TO:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n"),
	    SV("250 2.1.5 a\r\n250 2.1.5 b\r\n"),
	};
	static const char srv[] = "RCPT TO:<a@example.org>\r\n"
	                          "RCPT TO:<b@example.net>\r\n";

	(void)state;
	sim_init(&sim, SMTPFIX_HELO_ALWAYS);
	smtpfix_stream_init_routed(&sim.s, &sim.pol, S("example.org"));
	sim.route_same = 1;
	play(&sim, segs, NSEG(segs), 0, (size_t)-1, 0);
	expect_bytes("server", sim.srv, sim.srv_len, S(srv));
	assert_int_equal(sim.checks, 1);
	assert_int_equal(sim.events[SMTPFIX_EV_OTHER_SERVER], 0);
}

/* RSET ends the relay too, but only after the replies it follows; AUTH
 * was never offered. */
static void
test_routed_rset(void **state)
{
	static const struct seg segs[] = {
	    C("RCPT TO:<a@example.org>\r\nAUTH PLAIN AGFAYg==\r\nRSET\r\n"),
	};
	static const char cli[] =
	    "250 2.1.5 a\r\n"
	    "502 5.5.1 " FQDN " command not implemented\r\n";

	(void)state;
	sim_init(&sim, SMTPFIX_HELO_ALWAYS);
	smtpfix_stream_init_routed(&sim.s, &sim.pol, S("example.org"));
	play(&sim, segs, NSEG(segs), 0, (size_t)-1, 0);
	/* The RCPT's reply is still owed: RSET waits. */
	assert_int_equal(sim.front, 0);
	expect_bytes(
	    "server", sim.srv, sim.srv_len, S("RCPT TO:<a@example.org>\r\n"));
	feed(&sim, 1, S("250 2.1.5 a\r\n"));
	expect_bytes("client", sim.cli, sim.cli_len, S(cli));
	assert_true(sim.front > 0);
	assert_int_equal(sim.cin_len, 6);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_greeting_hold),
	    cmocka_unit_test(test_greeting_554),
	    cmocka_unit_test(test_helo_modes),
	    cmocka_unit_test(test_helo_verb_case),
	    cmocka_unit_test(test_pipeline_group),
	    cmocka_unit_test(test_pipeline_local_order),
	    cmocka_unit_test(test_data_then_mail),
	    cmocka_unit_test(test_queue_full),
	    cmocka_unit_test(test_data_refused),
	    cmocka_unit_test(test_data_end_splits),
	    cmocka_unit_test(test_data_transparency),
	    cmocka_unit_test(test_data_large),
	    cmocka_unit_test(test_smuggling),
	    cmocka_unit_test(test_smuggle_dead),
	    cmocka_unit_test(test_data_blocks),
	    cmocka_unit_test(test_inline_exact),
	    cmocka_unit_test(test_inline_smuggling),
	    cmocka_unit_test(test_reject_endings),
	    cmocka_unit_test(test_sync_data),
	    cmocka_unit_test(test_sync_waits),
	    cmocka_unit_test(test_sync_client_early),
	    cmocka_unit_test(test_sync_starttls),
	    cmocka_unit_test(test_sync_auth),
	    cmocka_unit_test(test_bad_command_chars),
	    cmocka_unit_test(test_too_long),
	    cmocka_unit_test(test_bdat_refused),
	    cmocka_unit_test(test_bdat_syntax),
	    cmocka_unit_test(test_ehlo_filter),
	    cmocka_unit_test(test_pregreet),
	    cmocka_unit_test(test_tls_starttls_first),
	    cmocka_unit_test(test_tls_upstream_fallback),
	    cmocka_unit_test(test_tls_parallel),
	    cmocka_unit_test(test_tls_remembered),
	    cmocka_unit_test(test_verbs_refused),
	    cmocka_unit_test(test_reply_456),
	    cmocka_unit_test(test_path_hygiene),
	    cmocka_unit_test(test_ehlo_many_dropped),
	    cmocka_unit_test(test_helo_reply_unfiltered),
	    cmocka_unit_test(test_ehlo_reply_long_lines),
	    cmocka_unit_test(test_starttls_opaque),
	    cmocka_unit_test(test_starttls_multiline),
	    cmocka_unit_test(test_starttls_refused),
	    cmocka_unit_test(test_tls_ehlo_offer),
	    cmocka_unit_test(test_tls_terminate),
	    cmocka_unit_test(test_tls_multiline_220),
	    cmocka_unit_test(test_tls_client_only),
	    cmocka_unit_test(test_tls_server_refuses),
	    cmocka_unit_test(test_tls_require_no_offer),
	    cmocka_unit_test(test_tls_upstream_fail),
	    cmocka_unit_test(test_tls_client_fail),
	    cmocka_unit_test(test_tls_strip_and_syntax),
	    cmocka_unit_test(test_tls_pipelined_ehlo),
	    cmocka_unit_test(test_tls_passthrough_policy),
	    cmocka_unit_test(test_auth_secret),
	    cmocka_unit_test(test_auth_cancel),
	    cmocka_unit_test(test_bad_reply),
	    cmocka_unit_test(test_354_not_data),
	    cmocka_unit_test(test_unsolicited),
	    cmocka_unit_test(test_upstream_gone),
	    cmocka_unit_test(test_wait),
	    cmocka_unit_test(test_reply_fmt),
	    cmocka_unit_test(test_verbs),
	    cmocka_unit_test(test_data_wide),
	    cmocka_unit_test(test_xclient_flow),
	    cmocka_unit_test(test_xclient_attrs),
	    cmocka_unit_test(test_xclient_not_accepted),
	    cmocka_unit_test(test_xclient_required),
	    cmocka_unit_test(test_xclient_client_forged),
	    cmocka_unit_test(test_xclient_tls),
	    cmocka_unit_test(test_xclient_reconnect),
	    cmocka_unit_test(test_identity_proxy),
	    cmocka_unit_test(test_routed),
	    cmocka_unit_test(test_routed_rset),
	    cmocka_unit_test(test_routed_same_server),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
