/*
 * smtpfix/replay_test.c: unit tests of smtpfix/replay.c, alone and as
 * smtpfix/stream.c drives it (draft-martin-smtp-ipv6-to-ipv4-fallback §3).
 *
 * The stream tests play whole sessions against scripted servers, one per
 * upstream leg: the IPv6 one refuses with 4.4.8 at a chosen point, the
 * IPv4 one answers as told.  Client and server bytes arrive in chunks of
 * every size from 1 up, and every session checks the promises of the
 * fallback: the client gets one reply per command, 250 for the message
 * only if a server accepted it, and no server ever accepts a message
 * twice.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "smtpfix/replay.h"
#include "smtpfix/stream.h"

#define S(x) (x), (sizeof(x) - 1)
#define FQDN "gw.example.net"
#define BUFMAX 65536

/* ---------------------------------------------------------------- record */

static char arena[4096];
static struct smtpfix_replay rec;

static void
rec_cmd(struct smtpfix_replay *r, enum smtpfix_replay_class c, const char *line)
{
	smtpfix_replay_push(r, c, 0, 0);
	smtpfix_replay_line(r, line, strlen(line));
}

static void
test_is_448(void **state)
{
	static const struct {
		const char *line;
		unsigned code;
		int neg, want;
	} v[] = {
	    /* draft-martin §3.2, Appendix A.1, A.3.2 */
	    {"421 4.4.8 message with no SPF or DKIM and over IPv6\r\n", 421, 0,
	        1},
	    {"451 4.4.8 Come back on IPv4 as I told you before\r\n", 451, 0, 1},
	    {"451-4.4.8 first line of two\r\n", 451, 0, 1},
	    {"421 4.4.8\r\n", 421, 0, 1},
	    /* §3.1: 456 only once the extension was negotiated */
	    {"456 4.4.8 please retry immediately the message over IPv4\r\n",
	        456, 1, 1},
	    {"456 4.4.8 please retry immediately the message over IPv4\r\n",
	        456, 0, 0},
	    /* other codes, other enhanced codes */
	    {"450 4.4.8 not this code\r\n", 450, 0, 0},
	    {"554 4.4.8 not this code\r\n", 554, 0, 0},
	    {"421 4.4.2 lost connection\r\n", 421, 0, 0},
	    {"421 4.4.80 not 4.4.8\r\n", 421, 0, 0},
	    {"451 4.4.8x\r\n", 451, 0, 0},
	    {"451 text 4.4.8\r\n", 451, 0, 0},
	    {"451\r\n", 451, 0, 0},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if (smtpfix_replay_is_448(v[i].line, strlen(v[i].line),
		        v[i].code, v[i].neg) != v[i].want)
			fail_msg("vector %zu: %s", i, v[i].line);
}

/* RFC 5321 §4.1.4, §4.1.1.4-5: what a transaction keeps. */
static void
test_keep_rules(void **state)
{
	struct smtpfix_replay *r = &rec;

	(void)state;
	smtpfix_replay_init(r, arena, sizeof(arena));
	smtpfix_replay_push(r, SMTPFIX_RC_GREETING, 0, 0);
	assert_int_equal(smtpfix_replay_pop(r, 220), SMTPFIX_RC_GREETING);
	assert_int_equal(r->n, 0);
	rec_cmd(r, SMTPFIX_RC_HELO, "EHLO gw.example.net\r\n");
	rec_cmd(r, SMTPFIX_RC_OTHER, "MAIL FROM:<a@example.net>\r\n");
	rec_cmd(r, SMTPFIX_RC_OTHER, "RCPT TO:<b@example.org>\r\n");
	rec_cmd(r, SMTPFIX_RC_OTHER, "RCPT TO:<c@example.org>\r\n");
	rec_cmd(r, SMTPFIX_RC_OTHER, "NOOP\r\n");
	assert_int_equal(smtpfix_replay_head(r), SMTPFIX_RC_HELO);
	assert_int_equal(smtpfix_replay_pop(r, 250), SMTPFIX_RC_HELO);
	assert_int_equal(smtpfix_replay_pop(r, 250), SMTPFIX_RC_MAIL);
	assert_int_equal(smtpfix_replay_pop(r, 550), SMTPFIX_RC_RCPT);
	assert_int_equal(smtpfix_replay_pop(r, 250), SMTPFIX_RC_RCPT);
	assert_int_equal(smtpfix_replay_pop(r, 250), SMTPFIX_RC_OTHER);
	/* EHLO, MAIL and the accepted RCPT stay, in order. */
	assert_int_equal(r->n, 3);
	assert_memory_equal(r->buf + r->e[2].off, "RCPT TO:<c@", 11);
	assert_false(smtpfix_replay_holds_message(r));
	smtpfix_replay_push(r, SMTPFIX_RC_DATA, 0, 0);
	smtpfix_replay_line(r, S("DATA\r\n"));
	assert_false(smtpfix_replay_holds_message(r));
	assert_int_equal(smtpfix_replay_pop(r, 354), SMTPFIX_RC_DATA);
	assert_true(smtpfix_replay_holds_message(r));
	smtpfix_replay_push(r, SMTPFIX_RC_DATA_END, 0, 0);
	assert_int_equal(smtpfix_replay_pop(r, 250), SMTPFIX_RC_DATA_END);
	/* The transaction is over: the EHLO alone stays. */
	assert_int_equal(r->n, 1);
	assert_int_equal(r->e[0].cls, SMTPFIX_RC_HELO);
	assert_false(smtpfix_replay_holds_message(r));
	assert_int_equal(r->used, strlen("EHLO gw.example.net\r\n"));
	/* RSET ends a transaction; a new EHLO replaces the old one. */
	rec_cmd(r, SMTPFIX_RC_OTHER, "MAIL FROM:<>\r\n");
	rec_cmd(r, SMTPFIX_RC_OTHER, "RSET\r\n");
	(void)smtpfix_replay_pop(r, 250);
	assert_int_equal(smtpfix_replay_pop(r, 250), SMTPFIX_RC_RSET);
	assert_int_equal(r->n, 1);
	rec_cmd(r, SMTPFIX_RC_HELO, "HELO other.example.net\r\n");
	(void)smtpfix_replay_pop(r, 250);
	assert_int_equal(r->n, 1);
	assert_memory_equal(r->buf, "HELO other", 10);
	/* A RCPT without a MAIL is not kept. */
	rec_cmd(r, SMTPFIX_RC_OTHER, "RCPT TO:<b@example.org>\r\n");
	(void)smtpfix_replay_pop(r, 250);
	assert_int_equal(r->n, 1);
	assert_null(smtpfix_replay_broken(r));
	/* A reply nothing waits for: the record lost step. */
	assert_int_equal(smtpfix_replay_pop(r, 250), SMTPFIX_RC_COUNT);
	assert_non_null(smtpfix_replay_broken(r));
}

/* The replay plan: kept entries quiet, outstanding ones relayed, a
 * greeting in front, the gateway's own commands left out. */
static void
test_rewind_plan(void **state)
{
	struct smtpfix_replay *r = &rec;
	const struct smtpfix_replay_ent *e;
	const char *line;
	size_t len;
	unsigned code;
	static const struct {
		enum smtpfix_replay_class cls;
		int quiet;
	} want[] = {
	    {SMTPFIX_RC_GREETING, 1},
	    {SMTPFIX_RC_HELO, 1},
	    {SMTPFIX_RC_MAIL, 1},
	    {SMTPFIX_RC_RCPT, 0},
	    {SMTPFIX_RC_LOCAL, 0},
	    {SMTPFIX_RC_DATA, 0},
	};
	size_t i;

	(void)state;
	smtpfix_replay_init(r, arena, sizeof(arena));
	assert_int_equal(smtpfix_replay_rewind(r, S("421 4.4.8 x\r\n")), -1);
	rec_cmd(r, SMTPFIX_RC_HELO, "EHLO gw.example.net\r\n");
	(void)smtpfix_replay_pop(r, 250);
	rec_cmd(r, SMTPFIX_RC_OWN, "IPV6-IPV4-FALLBACK\r\n");
	rec_cmd(r, SMTPFIX_RC_OTHER, "MAIL FROM:<a@example.net>\r\n");
	rec_cmd(r, SMTPFIX_RC_OTHER, "RCPT TO:<b@example.org>\r\n");
	smtpfix_replay_push(r, SMTPFIX_RC_LOCAL, 0, 7);
	rec_cmd(r, SMTPFIX_RC_OTHER, "DATA\r\n");
	(void)smtpfix_replay_pop(r, 250); /* the verb */
	(void)smtpfix_replay_pop(r, 250); /* MAIL */
	assert_int_equal(smtpfix_replay_head(r), SMTPFIX_RC_RCPT);
	assert_int_equal(smtpfix_replay_rewind(r,
	                     S("421 4.4.8 mx.example.org retry over IPv4\r\n")),
	    0);
	assert_int_equal(r->why_len, strlen("421 4.4.8 mx.example.org retry "
	                                    "over IPv4"));
	assert_int_equal(r->first_cls, SMTPFIX_RC_RCPT);
	assert_true(smtpfix_replay_pending(r));
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		e = smtpfix_replay_next(r, &line, &len);
		assert_non_null(e);
		assert_int_equal(e->cls, want[i].cls);
		assert_int_equal(e->quiet, want[i].quiet);
		if (e->cls == SMTPFIX_RC_LOCAL)
			assert_int_equal(e->local, 7);
		if (e->cls == SMTPFIX_RC_MAIL)
			assert_memory_equal(
			    line, "MAIL FROM:<a@example.net>\r\n", len);
	}
	assert_null(smtpfix_replay_next(r, &line, &len));
	assert_false(smtpfix_replay_pending(r));
	/* The new leg answers: the outcome is the RCPT's reply. */
	(void)smtpfix_replay_pop(r, 220);
	(void)smtpfix_replay_pop(r, 250);
	(void)smtpfix_replay_pop(r, 250);
	assert_false(smtpfix_replay_outcome(r, &code));
	(void)smtpfix_replay_pop(r, 250);
	assert_true(smtpfix_replay_outcome(r, &code));
	assert_int_equal(code, 250);
	assert_false(smtpfix_replay_outcome(r, &code)); /* once */
	(void)smtpfix_replay_pop(r, 0);
	(void)smtpfix_replay_pop(r, 354);
	assert_true(smtpfix_replay_holds_message(r));
	assert_null(smtpfix_replay_broken(r));
}

/* Bounds: a full arena or table breaks the record, never overflows. */
static void
test_bounds(void **state)
{
	struct smtpfix_replay *r = &rec;
	char small[64];
	unsigned i;

	(void)state;
	smtpfix_replay_init(r, small, sizeof(small));
	rec_cmd(r, SMTPFIX_RC_OTHER, "MAIL FROM:<a@example.net>\r\n");
	assert_null(smtpfix_replay_broken(r));
	rec_cmd(
	    r, SMTPFIX_RC_OTHER, "RCPT TO:<a-long-recipient@example.org>\r\n");
	assert_string_equal(smtpfix_replay_broken(r), "record_full");
	assert_true(r->used <= sizeof(small));
	assert_int_equal(smtpfix_replay_rewind(r, S("451 4.4.8 x\r\n")), -1);
	assert_false(smtpfix_replay_holds_message(r));

	smtpfix_replay_init(r, arena, sizeof(arena));
	for (i = 0; i < SMTPFIX_REPLAY_ENTS + 5; i++)
		smtpfix_replay_push(r, SMTPFIX_RC_LOCAL, 0, 1);
	assert_int_equal(r->n, SMTPFIX_REPLAY_ENTS);
	assert_string_equal(smtpfix_replay_broken(r), "too_many_commands");
}

/* Route mode: the opener's EHLO and MAIL seed the record as kept, in
 * front of what the stream relays after them. */
static void
test_keep_seed(void **state)
{
	struct smtpfix_replay *r = &rec;
	const struct smtpfix_replay_ent *e;
	const char *line;
	size_t len;

	(void)state;
	smtpfix_replay_init(r, arena, sizeof(arena));
	rec_cmd(r, SMTPFIX_RC_OTHER, "RCPT TO:<b@example.org>\r\n");
	smtpfix_replay_keep(r, SMTPFIX_RC_HELO, S("EHLO gw.example.net\r\n"));
	smtpfix_replay_keep(
	    r, SMTPFIX_RC_MAIL, S("MAIL FROM:<a@example.net>\r\n"));
	assert_int_equal(r->n, 3);
	assert_int_equal(r->e[0].cls, SMTPFIX_RC_HELO);
	assert_int_equal(r->e[1].cls, SMTPFIX_RC_MAIL);
	assert_int_equal(r->e[2].cls, SMTPFIX_RC_RCPT);
	/* Dropping an entry whose line is first in the arena moves the
	 * others' lines, whatever their order. */
	assert_int_equal(smtpfix_replay_pop(r, 550), SMTPFIX_RC_RCPT);
	assert_memory_equal(r->buf + r->e[0].off, "EHLO gw", 7);
	assert_memory_equal(r->buf + r->e[1].off, "MAIL FROM", 9);
	rec_cmd(r, SMTPFIX_RC_OTHER, "RCPT TO:<c@example.org>\r\n");
	assert_int_equal(smtpfix_replay_rewind(r, S("451 4.4.8 v4\r\n")), 0);
	e = smtpfix_replay_next(r, &line, &len); /* greeting */
	assert_int_equal(e->cls, SMTPFIX_RC_GREETING);
	e = smtpfix_replay_next(r, &line, &len);
	assert_int_equal(e->cls, SMTPFIX_RC_HELO);
	assert_memory_equal(line, "EHLO gw.example.net\r\n", len);
	e = smtpfix_replay_next(r, &line, &len);
	assert_memory_equal(line, "MAIL FROM:<a@example.net>\r\n", len);
	e = smtpfix_replay_next(r, &line, &len);
	assert_memory_equal(line, "RCPT TO:<c@example.org>\r\n", len);
	assert_false(e->quiet);
}

/* ---------------------------------------------------------------- stream */

/* One scripted server leg: its replies by command. */
struct srv_script {
	const char *greeting;
	const char *ehlo;
	const char *mail, *rcpt, *data, *end, *other, *verb;
};

/* The IPv6 server's reply to the end of data from its second message on
 * (NULL: as to the first). */
static const char *v6_end2;

struct leg {
	char in[BUFMAX]; /* what reached this server */
	size_t in_len, used;
	int data;         /* reading message data */
	size_t data_from; /* where it started */
	unsigned stored;  /* messages it accepted */
	unsigned refused; /* message ends it refused */
	unsigned verbs;   /* IPV6-IPV4-FALLBACK seen */
	unsigned greeted;
};

struct fsim {
	struct smtpfix_policy pol;
	struct smtpfix_stream s;
	struct smtpfix_replay *rp;
	const struct srv_script *script[2];
	struct leg legs[2];
	int leg;          /* 0: IPv6, 1: IPv4 */
	char sin[BUFMAX]; /* server bytes not yet stepped */
	size_t sin_len;
	char sout[BUFMAX]; /* server bytes yet to arrive */
	size_t sout_len;
	char cli[BUFMAX]; /* what reached the client */
	size_t cli_len;
	char cin[BUFMAX]; /* client bytes not yet stepped */
	size_t cin_len;
	char held[BUFMAX]; /* the message as the gateway holds it */
	size_t held_len;
	int closed, fallbacks, failed;
	int routed; /* route mode: an opener says EHLO and MAIL */
	size_t chunk;
};

static char fs_arena[16384];
static struct smtpfix_replay fs_rec;
static struct fsim fs;

static void
put(char *dst, size_t *dlen, const char *p, size_t n)
{
	assert_true(*dlen + n <= BUFMAX);
	memcpy(dst + *dlen, p, n);
	*dlen += n;
}

/* What both kinds of session share: the policy, the two servers' scripts
 * and the chunk size. */
static void
fs_setup(struct fsim *m, const struct srv_script *v6,
    const struct srv_script *v4, size_t chunk)
{
	memset(m, 0, sizeof(*m));
	m->pol.fqdn = FQDN;
	m->pol.fqdn_len = sizeof(FQDN) - 1;
	m->pol.helo = SMTPFIX_HELO_ALWAYS;
	m->pol.cmd_max = 512;
	m->pol.reply_max = 512;
	m->script[0] = v6;
	m->script[1] = v4;
	m->chunk = chunk;
}

static void
fs_init(struct fsim *m, const struct srv_script *v6,
    const struct srv_script *v4, int fallback, size_t chunk)
{
	fs_setup(m, v6, v4, chunk);
	smtpfix_stream_init(&m->s, &m->pol);
	if (fallback) {
		smtpfix_replay_init(&fs_rec, fs_arena, sizeof(fs_arena));
		m->rp = &fs_rec;
		smtpfix_stream_set_fallback(&m->s, m->rp);
	}
	put(m->sout, &m->sout_len, v6->greeting, strlen(v6->greeting));
}

/* The scripted server of the current leg answers every whole line that
 * reached it. */
static void
fs_server(struct fsim *m)
{
	struct leg *l = &m->legs[m->leg];
	const struct srv_script *sc = m->script[m->leg];
	const char *p, *r;
	size_t n;

	for (;;) {
		p = l->in + l->used;
		n = l->in_len - l->used;
		if (l->data) {
			const char *end = NULL;
			size_t k;

			for (k = 0; k + 5 <= l->in_len - l->data_from; k++)
				if (memcmp(l->in + l->data_from + k,
				        "\r\n.\r\n", 5) == 0) {
					end = l->in + l->data_from + k + 5;
					break;
				}
			/* The data starts after DATA's CRLF. */
			if (end == NULL && n >= 3 && memcmp(p, ".\r\n", 3) == 0)
				end = p + 3;
			if (end == NULL)
				return;
			l->used = (size_t)(end - l->in);
			l->data = 0;
			r = m->leg == 0 && v6_end2 != NULL &&
			            l->stored + l->refused > 0
			        ? v6_end2
			        : sc->end;
			if (r[0] == '2')
				l->stored++;
			else
				l->refused++;
			put(m->sout, &m->sout_len, r, strlen(r));
			continue;
		}
		r = memchr(p, '\n', n);
		if (r == NULL)
			return;
		n = (size_t)(r - p) + 1;
		l->used += n;
		if (strncmp(p, "EHLO", 4) == 0 || strncmp(p, "HELO", 4) == 0)
			r = sc->ehlo;
		else if (strncmp(p, "MAIL", 4) == 0)
			r = sc->mail;
		else if (strncmp(p, "RCPT", 4) == 0)
			r = sc->rcpt;
		else if (strncmp(p, "DATA", 4) == 0) {
			r = sc->data;
			if (r[0] == '3') {
				l->data = 1;
				l->data_from = l->used - 2;
			}
		} else if (strncmp(p, "IPV6-IPV4-FALLBACK", 18) == 0) {
			l->verbs++;
			r = sc->verb;
		} else
			r = sc->other;
		put(m->sout, &m->sout_len, r, strlen(r));
	}
}

static int
fs_c2s(struct fsim *m)
{
	struct smtpfix_step st;
	struct leg *l = &m->legs[m->leg];
	int data = smtpfix_stream_wait(&m->s) == SMTPFIX_WAIT_DATA;

	smtpfix_c2s_step(&m->s, m->cin, m->cin_len, &st);
	assert_true(st.consumed <= m->cin_len);
	switch (st.act) {
	case SMTPFIX_ACT_NONE:
		return 0;
	case SMTPFIX_ACT_FORWARD:
		put(l->in, &l->in_len, m->cin, st.consumed);
		if (data)
			put(m->held, &m->held_len, m->cin, st.consumed);
		break;
	case SMTPFIX_ACT_EMIT:
		put(l->in, &l->in_len, st.emit, st.emit_len);
		if (data)
			put(m->held, &m->held_len, st.emit, st.emit_len);
		break;
	case SMTPFIX_ACT_DISCARD:
		break;
	case SMTPFIX_ACT_REPLAY_DATA:
		assert_int_equal(st.consumed, 0);
		assert_int_equal(m->leg, 1);
		put(l->in, &l->in_len, m->held, m->held_len);
		break;
	default:
		fail_msg("c2s act %d", st.act);
	}
	memmove(m->cin, m->cin + st.consumed, m->cin_len - st.consumed);
	m->cin_len -= st.consumed;
	return 1;
}

static int
fs_s2c(struct fsim *m)
{
	struct smtpfix_step st;

	smtpfix_s2c_step(&m->s, m->sin, m->sin_len, &st);
	assert_true(st.consumed <= m->sin_len);
	switch (st.act) {
	case SMTPFIX_ACT_NONE:
		return 0;
	case SMTPFIX_ACT_FORWARD:
		put(m->cli, &m->cli_len, m->sin, st.consumed);
		break;
	case SMTPFIX_ACT_EMIT:
		put(m->cli, &m->cli_len, st.emit, st.emit_len);
		break;
	case SMTPFIX_ACT_DISCARD:
		break;
	case SMTPFIX_ACT_CLOSE:
		put(m->cli, &m->cli_len, st.emit, st.emit_len);
		m->closed = 1;
		if (st.event == SMTPFIX_EV_FALLBACK_FAILED)
			m->failed = 1;
		return 1;
	case SMTPFIX_ACT_FALLBACK:
		/* The IPv6 leg is reset: nothing more of it counts. */
		assert_int_equal(st.event, SMTPFIX_EV_FALLBACK);
		assert_int_equal(m->leg, 0);
		m->fallbacks++;
		m->leg = 1;
		m->sin_len = m->sout_len = 0;
		if (m->routed) {
			/* Route mode: the opener had the new leg's greeting
			 * and said EHLO and MAIL (both answered 2xx). */
			smtpfix_stream_fallback_opened(&m->s);
			return 1;
		}
		put(m->sout, &m->sout_len, m->script[1]->greeting,
		    strlen(m->script[1]->greeting));
		return 1;
	default:
		fail_msg("s2c act %d", st.act);
	}
	memmove(m->sin, m->sin + st.consumed, m->sin_len - st.consumed);
	m->sin_len -= st.consumed;
	/* As gateway/session.c: the message goes once its outcome is in. */
	if (m->rp != NULL && !smtpfix_replay_holds_message(m->rp))
		m->held_len = 0;
	return 1;
}

/* Final reply lines the client got so far. */
static unsigned
finals(const struct fsim *m)
{
	unsigned n = 0;
	size_t i = 0;

	while (i < m->cli_len) {
		const char *e = memchr(m->cli + i, '\n', m->cli_len - i);

		if (e == NULL)
			break;
		if (m->cli_len - i >= 4 && m->cli[i + 3] != '-')
			n++;
		i = (size_t)(e - m->cli) + 1;
	}
	return n;
}

/*
 * Runs a session: client steps are (bytes, replies to wait for before
 * the next step).  Client bytes arrive chunk bytes at a time; so do the
 * server's.  Stops when nothing moves.
 */
struct cstep {
	const char *send;
	unsigned wait; /* final replies expected before the next */
};

static void
fs_run(struct fsim *m, const struct cstep *cs, size_t ncs)
{
	size_t next = 0, k, rounds;
	unsigned want = m->routed ? 0 : 1; /* the greeting */
	const char *pend = NULL;
	size_t pend_len = 0;

	for (rounds = 0; rounds < 100000 && !m->closed; rounds++) {
		int moved = 0;

		if (pend_len == 0 && next < ncs && finals(m) >= want) {
			pend = cs[next].send;
			pend_len = strlen(pend);
			want += cs[next].wait;
			next++;
		}
		if (pend_len > 0) {
			k = pend_len < m->chunk ? pend_len : m->chunk;
			put(m->cin, &m->cin_len, pend, k);
			pend += k;
			pend_len -= k;
			moved = 1;
		}
		if (m->sout_len > 0) {
			k = m->sout_len < m->chunk ? m->sout_len : m->chunk;
			put(m->sin, &m->sin_len, m->sout, k);
			memmove(m->sout, m->sout + k, m->sout_len - k);
			m->sout_len -= k;
			moved = 1;
		}
		while (!m->closed && (fs_c2s(m) || fs_s2c(m)))
			moved = 1;
		fs_server(m);
		if (!moved && m->sout_len == 0 && pend_len == 0 &&
		    (next >= ncs || finals(m) < want))
			break;
	}
}

#define GREET6 "220 mx6.example.org ESMTP\r\n"
#define GREET4 "220 mx4.example.org ESMTP\r\n"
#define EHLO6 "250-mx6.example.org\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
#define EHLO6X                                                                 \
	"250-mx6.example.org\r\n250-IPV6-IPV4-FALLBACK\r\n250 8BITMIME\r\n"
#define EHLO4 "250-mx4.example.org\r\n250 8BITMIME\r\n"
#define R448C "421 4.4.8 mx6.example.org not over IPv6, use IPv4\r\n"
#define R448 "451 4.4.8 mx6.example.org SPF or DKIM required on IPv6\r\n"
#define R456 "456 4.4.8 please retry immediately the message over IPv4\r\n"

static const struct srv_script v4_ok = {GREET4, EHLO4, "250 2.1.0 ok\r\n",
    "250 2.1.5 ok\r\n", "354 go\r\n", "250 2.0.0 queued as V4\r\n",
    "250 2.0.0 ok\r\n", "502 5.5.1 no\r\n"};

static const struct cstep session[] = {
    {"EHLO client.example.net\r\n", 1},
    {"MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\n"
     "RCPT TO:<c@example.org>\r\nDATA\r\n",
        4},
    {"Subject: t\r\n\r\nline one\r\n..dot\r\n.\r\n", 1},
    {"QUIT\r\n", 1},
};

#define NS(a) (sizeof(a) / sizeof((a)[0]))

/* The client's view: one reply per command, in order, from the session
 * that decided; never anything of the refusal. */
static void
expect_client(const struct fsim *m, const char *want)
{
	if (m->cli_len != strlen(want) || memcmp(m->cli, want, m->cli_len) != 0)
		fail_msg("client got:\n%.*s\nwanted:\n%s", (int)m->cli_len,
		    m->cli, want);
}

#define CLIENT_OK_V4                                                           \
	GREET6 EHLO6 "250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.1.5 ok\r\n"        \
	             "354 go\r\n250 2.0.0 queued as V4\r\n250 2.0.0 ok\r\n"

/* 451 4.4.8 after the end of data (draft-martin §3.2, Appendix A.1):
 * the message goes again over IPv4; the client sees the IPv4 server's
 * 250 once, at every split of both streams. */
static void
test_after_data(void **state)
{
	static const struct srv_script v6 = {GREET6, EHLO6, "250 2.1.0 ok\r\n",
	    "250 2.1.5 ok\r\n", "354 go\r\n", R448, "250 2.0.0 ok\r\n",
	    "250 ok\r\n"};
	struct fsim *m = &fs;
	size_t chunk;

	(void)state;
	for (chunk = 1; chunk <= 80; chunk++) {
		fs_init(m, &v6, &v4_ok, 1, chunk);
		fs_run(m, session, NS(session));
		assert_int_equal(m->fallbacks, 1);
		assert_int_equal(m->legs[0].refused, 1);
		assert_int_equal(m->legs[0].stored, 0);
		if (m->legs[1].stored != 1)
			fail_msg("leg1:\n%.*s\nclient:\n%.*s\nheld %zu",
			    (int)m->legs[1].in_len, m->legs[1].in,
			    (int)m->cli_len, m->cli, m->held_len);
		/* The IPv4 server got the same message, byte for byte. */
		assert_memory_equal(m->legs[1].in + m->legs[1].in_len -
		                        m->held_len - strlen("QUIT\r\n"),
		    m->held, m->held_len);
		expect_client(m, CLIENT_OK_V4);
		/* Its EHLO is the gateway's, then MAIL and both RCPTs. */
		assert_memory_equal(m->legs[1].in,
		    "EHLO " FQDN "\r\nMAIL FROM:<a@example.net>\r\n"
		    "RCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\n"
		    "DATA\r\nSubject: t\r\n",
		    strlen("EHLO " FQDN "\r\nMAIL FROM:<a@example.net>\r\n"
		           "RCPT TO:<b@example.org>\r\nRCPT "
		           "TO:<c@example.org>\r\nDATA\r\nSubject: t\r\n"));
		assert_true(smtpfix_stream_fell_back(&m->s));
		assert_false(smtpfix_replay_holds_message(m->rp));
	}
}

/* 421 4.4.8 to a RCPT (Postfix's access table at RCPT time), with MAIL,
 * RCPT, RCPT, DATA pipelined: the outstanding commands go again. */
static void
test_at_rcpt(void **state)
{
	static const struct srv_script v6 = {GREET6, EHLO6, "250 2.1.0 ok\r\n",
	    R448C, "354 go\r\n", "250 2.0.0 V6\r\n", "250 2.0.0 ok\r\n",
	    "250 ok\r\n"};
	struct fsim *m = &fs;
	size_t chunk;

	(void)state;
	for (chunk = 1; chunk <= 80; chunk += 3) {
		fs_init(m, &v6, &v4_ok, 1, chunk);
		fs_run(m, session, NS(session));
		assert_int_equal(m->fallbacks, 1);
		assert_int_equal(m->legs[0].stored, 0);
		assert_int_equal(m->legs[1].stored, 1);
		expect_client(m, CLIENT_OK_V4);
	}
}

/* 421 4.4.8 at connection time: the client's greeting is the IPv4
 * server's, and the session runs there. */
static void
test_at_greeting(void **state)
{
	static const struct srv_script v6 = {
	    R448C, EHLO6, "", "", "", "", "", ""};
	struct fsim *m = &fs;
	size_t chunk;

	(void)state;
	for (chunk = 1; chunk <= 60; chunk += 7) {
		fs_init(m, &v6, &v4_ok, 1, chunk);
		fs_run(m, session, NS(session));
		assert_int_equal(m->fallbacks, 1);
		assert_int_equal(m->legs[0].in_len, 0);
		assert_int_equal(m->legs[1].stored, 1);
		expect_client(m, GREET4 EHLO4
		    "250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.1.5 ok\r\n"
		    "354 go\r\n250 2.0.0 queued as V4\r\n250 2.0.0 ok\r\n");
	}
}

/* draft-martin §3.1: the server offers IPV6-IPV4-FALLBACK, the gateway
 * says the verb (not relayed), and 456 4.4.8 after data is followed. */
static void
test_456_negotiated(void **state)
{
	static const struct srv_script v6 = {GREET6, EHLO6X, "250 2.1.0 ok\r\n",
	    "250 2.1.5 ok\r\n", "354 go\r\n", R456, "250 2.0.0 ok\r\n",
	    "250 2.0.0 fallback noted\r\n"};
	struct fsim *m = &fs;

	(void)state;
	fs_init(m, &v6, &v4_ok, 1, 7);
	fs_run(m, session, NS(session));
	assert_int_equal(m->legs[0].verbs, 1);
	assert_int_equal(m->legs[1].verbs, 0);
	assert_int_equal(m->fallbacks, 1);
	assert_int_equal(m->legs[1].stored, 1);
	/* The keyword never reaches the client (smtpfix/ehlo.h). */
	expect_client(m,
	    GREET6 "250-mx6.example.org\r\n250 8BITMIME\r\n"
	           "250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.1.5 ok\r\n"
	           "354 go\r\n250 2.0.0 queued as V4\r\n"
	           "250 2.0.0 ok\r\n");
}

/* 456 from a server that was never told the verb (or refused it) is no
 * fallback: it reaches the client as 451. */
static void
test_456_not_negotiated(void **state)
{
	static const struct srv_script v6 = {GREET6, EHLO6X, "250 2.1.0 ok\r\n",
	    "250 2.1.5 ok\r\n", "354 go\r\n", R456, "250 2.0.0 ok\r\n",
	    "502 5.5.1 no\r\n"};
	struct fsim *m = &fs;

	(void)state;
	fs_init(m, &v6, &v4_ok, 1, 11);
	fs_run(m, session, NS(session));
	assert_int_equal(m->legs[0].verbs, 1);
	assert_int_equal(m->fallbacks, 0);
	assert_int_equal(m->legs[1].stored, 0);
	assert_non_null(strstr(m->cli, "451 4.4.8 please retry"));
	assert_null(strstr(m->cli, "250 2.0.0 queued"));
}

/* No IPv4 target: the refusal, with its words, reaches the client; no
 * verb is sent (the gateway could not follow a 456). */
static void
test_no_target(void **state)
{
	static const struct srv_script v6 = {GREET6, EHLO6X, "250 2.1.0 ok\r\n",
	    "250 2.1.5 ok\r\n", "354 go\r\n", R448, "250 2.0.0 ok\r\n",
	    "250 ok\r\n"};
	struct fsim *m = &fs;

	(void)state;
	fs_init(m, &v6, &v4_ok, 0, 5);
	fs_run(m, session, NS(session));
	assert_int_equal(m->fallbacks, 0);
	assert_int_equal(m->legs[0].verbs, 0);
	assert_int_equal(m->legs[0].stored, 0);
	assert_non_null(strstr(m->cli, R448));
	assert_null(strstr(m->cli, "250 2.0.0 queued"));
}

/* The IPv4 server refuses a recipient the IPv6 one took: the client,
 * told 250 for it, must not see the message accepted without it. */
static void
test_replay_refused(void **state)
{
	static const struct srv_script v6 = {GREET6, EHLO6, "250 2.1.0 ok\r\n",
	    "250 2.1.5 ok\r\n", "354 go\r\n", R448, "250 2.0.0 ok\r\n",
	    "250 ok\r\n"};
	static const struct srv_script v4 = {GREET4, EHLO4, "250 2.1.0 ok\r\n",
	    "550 5.1.1 no such user here\r\n", "354 go\r\n",
	    "250 2.0.0 queued as V4\r\n", "250 2.0.0 ok\r\n", "502 no\r\n"};
	struct fsim *m = &fs;

	(void)state;
	fs_init(m, &v6, &v4, 1, 9);
	fs_run(m, session, NS(session));
	assert_int_equal(m->fallbacks, 1);
	assert_true(m->failed);
	assert_int_equal(m->legs[1].stored, 0);
	assert_null(strstr(m->cli, "250 2.0.0 queued"));
	assert_non_null(strstr(m->cli, "421 4.4.8 " FQDN " retry over IPv4"));
}

/* One fallback a session: a 4.4.8 on the IPv4 leg is relayed. */
static void
test_once(void **state)
{
	static const struct srv_script v6 = {GREET6, EHLO6, "250 2.1.0 ok\r\n",
	    "250 2.1.5 ok\r\n", "354 go\r\n", R448, "250 2.0.0 ok\r\n",
	    "250 ok\r\n"};
	static const struct srv_script v4 = {GREET4, EHLO4, "250 2.1.0 ok\r\n",
	    "250 2.1.5 ok\r\n", "354 go\r\n", R448, "250 2.0.0 ok\r\n",
	    "502 no\r\n"};
	struct fsim *m = &fs;

	(void)state;
	fs_init(m, &v6, &v4, 1, 13);
	fs_run(m, session, NS(session));
	assert_int_equal(m->fallbacks, 1);
	assert_int_equal(m->legs[0].stored + m->legs[1].stored, 0);
	assert_non_null(strstr(m->cli, R448));
}

/*
 * A crash between the two legs: the IPv6 server refused, the IPv4 leg
 * has not answered the end of data.  Whatever point the session stopped
 * at, the client has no 250 for the message unless a server stored it
 * (so its queue keeps the message: nothing lost), and no server stored
 * it twice (nothing delivered twice).
 */
static void
test_crash_between_legs(void **state)
{
	static const struct srv_script v6 = {GREET6, EHLO6, "250 2.1.0 ok\r\n",
	    "250 2.1.5 ok\r\n", "354 go\r\n", R448, "250 2.0.0 ok\r\n",
	    "250 ok\r\n"};
	struct fsim *m = &fs;
	size_t stop, k;

	(void)state;
	for (stop = 0; stop < 400; stop += 3) {
		size_t next = 0, rounds, cut = stop;
		unsigned want = 1;
		int accepted;

		fs_init(m, &v6, &v4_ok, 1, 1);
		/* fs_run, cut short after `stop` rounds past the refusal. */
		for (rounds = 0; rounds < 20000; rounds++) {
			if (m->fallbacks > 0 && cut-- == 0)
				break;
			if (next < NS(session) && finals(m) >= want &&
			    m->cin_len == 0) {
				put(m->cin, &m->cin_len, session[next].send,
				    strlen(session[next].send));
				want += session[next].wait;
				next++;
			}
			if (m->sout_len > 0) {
				put(m->sin, &m->sin_len, m->sout, 1);
				memmove(m->sout, m->sout + 1, --m->sout_len);
			}
			while (!m->closed && (fs_c2s(m) || fs_s2c(m)))
				continue;
			fs_server(m);
		}
		accepted = strstr(m->cli, "250 2.0.0 queued") != NULL;
		k = m->legs[0].stored + m->legs[1].stored;
		assert_true(k <= 1);
		if (accepted)
			assert_int_equal(k, 1);
		assert_int_equal(m->legs[0].stored, 0);
	}
}

/* A second message in the session: the first went over IPv6; only the
 * second transaction is replayed (the first ended with its 250). */
static void
test_second_message(void **state)
{
	static const struct srv_script v6 = {GREET6, EHLO6, "250 2.1.0 ok\r\n",
	    "250 2.1.5 ok\r\n", "354 go\r\n", "250 2.0.0 queued as V6\r\n",
	    "250 2.0.0 ok\r\n", "250 ok\r\n"};
	static const struct cstep two[] = {
	    {"EHLO client.example.net\r\n", 1},
	    {"MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\n"
	     "DATA\r\n",
	        3},
	    {"first\r\n.\r\n", 1},
	    {"MAIL FROM:<z@example.net>\r\nRCPT TO:<y@example.org>\r\n"
	     "DATA\r\n",
	        3},
	    {"second\r\n.\r\n", 1},
	    {"QUIT\r\n", 1},
	};
	struct fsim *m = &fs;
	size_t chunk;

	(void)state;
	v6_end2 = R448;
	for (chunk = 1; chunk <= 40; chunk += 3) {
		fs_init(m, &v6, &v4_ok, 1, chunk);
		fs_run(m, two, NS(two));
		assert_int_equal(m->fallbacks, 1);
		assert_int_equal(m->legs[0].stored, 1);
		assert_int_equal(m->legs[1].stored, 1);
		assert_memory_equal(m->legs[1].in,
		    "EHLO " FQDN "\r\nMAIL FROM:<z@example.net>\r\n"
		    "RCPT TO:<y@example.org>\r\nDATA\r\nsecond\r\n.\r\n",
		    strlen("EHLO " FQDN "\r\nMAIL FROM:<z@example.net>\r\n"
		           "RCPT TO:<y@example.org>\r\nDATA\r\nsecond\r\n."
		           "\r\n"));
		expect_client(m,
		    GREET6 EHLO6 "250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n"
		                 "250 2.0.0 queued as V6\r\n"
		                 "250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n"
		                 "250 2.0.0 queued as V4\r\n250 2.0.0 ok\r\n");
	}
	v6_end2 = NULL;
}

/* 451 4.4.8 to DATA, with a reply of the gateway's own among the
 * pipelined commands (RFC 3974 §6: a scoped literal is refused here):
 * on the new leg the replies come in the client's order, ours included. */
static void
test_at_data_with_local(void **state)
{
	static const struct srv_script v6 = {GREET6, EHLO6, "250 2.1.0 ok\r\n",
	    "250 2.1.5 ok\r\n", R448, "250 2.0.0 V6\r\n", "250 2.0.0 ok\r\n",
	    "250 ok\r\n"};
	static const struct cstep pipe[] = {
	    {"EHLO client.example.net\r\n", 1},
	    {"MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\n"
	     "RCPT TO:<x@[IPv6:fe80::1%eth0]>\r\nRCPT TO:<c@example.org>\r\n"
	     "DATA\r\n",
	        5},
	    {"body\r\n.\r\n", 1},
	    {"QUIT\r\n", 1},
	};
	struct fsim *m = &fs;
	size_t chunk;

	(void)state;
	for (chunk = 1; chunk <= 60; chunk += 5) {
		fs_init(m, &v6, &v4_ok, 1, chunk);
		m->pol.hygiene = 1;
		fs_run(m, pipe, NS(pipe));
		assert_int_equal(m->fallbacks, 1);
		assert_int_equal(m->legs[1].stored, 1);
		expect_client(m,
		    GREET6 EHLO6 "250 2.1.0 ok\r\n250 2.1.5 ok\r\n"
		                 "553 5.1.2 " FQDN
		                 " scoped address literals are not accepted "
		                 "(RFC 3974 section 6)\r\n"
		                 "250 2.1.5 ok\r\n354 go\r\n"
		                 "250 2.0.0 queued as V4\r\n250 2.0.0 ok\r\n");
	}
}

/* ----------------------------------------------------------- route mode */

/* Route mode: the front answered EHLO and MAIL, the opener said EHLO and
 * MAIL to the IPv6 server (seeding the record), and the stream relays
 * from the first RCPT (gateway/session.c, route_open). */
static void
fs_init_routed(struct fsim *m, const struct srv_script *v6,
    const struct srv_script *v4, int negotiated, size_t chunk)
{
	fs_setup(m, v6, v4, chunk);
	m->routed = 1;
	smtpfix_stream_init_routed(&m->s, &m->pol, "example.org", 11);
	smtpfix_replay_init(&fs_rec, fs_arena, sizeof(fs_arena));
	m->rp = &fs_rec;
	smtpfix_replay_keep(m->rp, SMTPFIX_RC_HELO, S("EHLO " FQDN "\r\n"));
	smtpfix_replay_keep(
	    m->rp, SMTPFIX_RC_MAIL, S("MAIL FROM:<a@example.net>\r\n"));
	smtpfix_stream_set_fallback(&m->s, m->rp);
	if (negotiated)
		smtpfix_stream_set_fallback_negotiated(&m->s);
}

static const struct cstep routed_session[] = {
    {"RCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n", 3},
    {"Subject: t\r\n\r\nline one\r\n..dot\r\n.\r\n", 1},
    {"QUIT\r\n", 1},
};

#define ROUTED_V4_IN                                                           \
	"RCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n"       \
	"Subject: t\r\n\r\nline one\r\n..dot\r\n.\r\nQUIT\r\n"
#define ROUTED_CLIENT                                                          \
	"250 2.1.5 ok\r\n250 2.1.5 ok\r\n354 go\r\n"                           \
	"250 2.0.0 queued as V4\r\n250 2.0.0 ok\r\n"

/* Route mode, draft-martin §3 at every point the relay sees: 421 4.4.8
 * to a RCPT, 451 4.4.8 after the end of data, 456 4.4.8 once the opener
 * negotiated the verb.  The IPv4 leg's opener said EHLO and MAIL, so
 * the replay starts with the RCPTs (nothing twice), the message arrives
 * once, and the client sees one outcome, never the refusal. */
static void
test_routed(void **state)
{
	static const struct srv_script v6_rcpt = {GREET6, EHLO6,
	    "250 2.1.0 ok\r\n", R448C, "354 go\r\n", "250 2.0.0 V6\r\n",
	    "250 2.0.0 ok\r\n", "250 ok\r\n"};
	static const struct srv_script v6_end = {GREET6, EHLO6,
	    "250 2.1.0 ok\r\n", "250 2.1.5 ok\r\n", "354 go\r\n", R448,
	    "250 2.0.0 ok\r\n", "250 ok\r\n"};
	static const struct srv_script v6_456 = {GREET6, EHLO6X,
	    "250 2.1.0 ok\r\n", "250 2.1.5 ok\r\n", "354 go\r\n", R456,
	    "250 2.0.0 ok\r\n", "250 ok\r\n"};
	const struct srv_script *v6[] = {&v6_rcpt, &v6_end, &v6_456};
	struct fsim *m = &fs;
	size_t chunk, k;

	(void)state;
	for (k = 0; k < 3; k++)
		for (chunk = 1; chunk <= 80; chunk += 1 + k) {
			fs_init_routed(m, v6[k], &v4_ok, k == 2, chunk);
			fs_run(m, routed_session, NS(routed_session));
			assert_int_equal(m->fallbacks, 1);
			assert_int_equal(m->legs[0].stored, 0);
			assert_int_equal(m->legs[1].stored, 1);
			if (m->legs[1].in_len != strlen(ROUTED_V4_IN) ||
			    memcmp(m->legs[1].in, ROUTED_V4_IN,
			        m->legs[1].in_len) != 0)
				fail_msg("leg1 got:\n%.*s",
				    (int)m->legs[1].in_len, m->legs[1].in);
			expect_client(m, ROUTED_CLIENT);
			assert_false(smtpfix_replay_holds_message(m->rp));
		}
}

/* Route mode, 456 without the verb (the opener did not negotiate it):
 * not followed, and the client sees 451 (never 456). */
static void
test_routed_456_not_negotiated(void **state)
{
	static const struct srv_script v6 = {GREET6, EHLO6X, "250 2.1.0 ok\r\n",
	    "250 2.1.5 ok\r\n", "354 go\r\n", R456, "250 2.0.0 ok\r\n",
	    "250 ok\r\n"};
	struct fsim *m = &fs;

	(void)state;
	fs_init_routed(m, &v6, &v4_ok, 0, 7);
	fs_run(m, routed_session, NS(routed_session));
	assert_int_equal(m->fallbacks, 0);
	expect_client(m, "250 2.1.5 ok\r\n250 2.1.5 ok\r\n354 go\r\n"
	                 "451 4.4.8 please retry immediately the message "
	                 "over IPv4\r\n250 2.0.0 ok\r\n");
}

/* smtpfix_replay_opened: the greeting goes, EHLO and MAIL are kept
 * without being sent, the rest is replayed as planned. */
static void
test_opened(void **state)
{
	struct smtpfix_replay *r = &rec;
	const struct smtpfix_replay_ent *e;
	const char *line;
	size_t len;

	(void)state;
	smtpfix_replay_init(r, arena, sizeof(arena));
	smtpfix_replay_keep(r, SMTPFIX_RC_HELO, S("EHLO gw.example.net\r\n"));
	smtpfix_replay_keep(
	    r, SMTPFIX_RC_MAIL, S("MAIL FROM:<a@example.net>\r\n"));
	rec_cmd(r, SMTPFIX_RC_OTHER, "RCPT TO:<b@example.org>\r\n");
	assert_int_equal(smtpfix_replay_pop(r, 250), SMTPFIX_RC_RCPT);
	rec_cmd(r, SMTPFIX_RC_OTHER, "DATA\r\n");
	assert_int_equal(smtpfix_replay_pop(r, 354), SMTPFIX_RC_DATA);
	smtpfix_replay_push(r, SMTPFIX_RC_DATA_END, 0, 0);
	assert_int_equal(smtpfix_replay_rewind(r, S("451 4.4.8 v4\r\n")), 0);
	smtpfix_replay_opened(r);
	e = smtpfix_replay_next(r, &line, &len);
	assert_int_equal(e->cls, SMTPFIX_RC_RCPT);
	assert_true(e->quiet);
	e = smtpfix_replay_next(r, &line, &len);
	assert_int_equal(e->cls, SMTPFIX_RC_DATA);
	e = smtpfix_replay_next(r, &line, &len);
	assert_int_equal(e->cls, SMTPFIX_RC_DATA_END);
	assert_false(e->quiet);
	assert_null(smtpfix_replay_next(r, &line, &len));
	/* The RCPT's 250 keeps it, after the MAIL kept again. */
	assert_int_equal(smtpfix_replay_pop(r, 250), SMTPFIX_RC_RCPT);
	assert_int_equal(r->e[0].cls, SMTPFIX_RC_HELO);
	assert_int_equal(r->e[0].st, SMTPFIX_RS_KEPT);
	assert_int_equal(r->e[1].cls, SMTPFIX_RC_MAIL);
	assert_int_equal(r->e[1].st, SMTPFIX_RS_KEPT);
	assert_int_equal(r->e[2].st, SMTPFIX_RS_KEPT);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_is_448),
	    cmocka_unit_test(test_keep_rules),
	    cmocka_unit_test(test_rewind_plan),
	    cmocka_unit_test(test_bounds),
	    cmocka_unit_test(test_keep_seed),
	    cmocka_unit_test(test_after_data),
	    cmocka_unit_test(test_at_rcpt),
	    cmocka_unit_test(test_at_greeting),
	    cmocka_unit_test(test_456_negotiated),
	    cmocka_unit_test(test_456_not_negotiated),
	    cmocka_unit_test(test_no_target),
	    cmocka_unit_test(test_replay_refused),
	    cmocka_unit_test(test_once),
	    cmocka_unit_test(test_crash_between_legs),
	    cmocka_unit_test(test_second_message),
	    cmocka_unit_test(test_at_data_with_local),
	    cmocka_unit_test(test_routed),
	    cmocka_unit_test(test_routed_456_not_negotiated),
	    cmocka_unit_test(test_opened),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
