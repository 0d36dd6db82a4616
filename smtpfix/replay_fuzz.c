/*
 * smtpfix/replay_fuzz.c: libFuzzer target for the IPv6-to-IPv4 fallback
 * (smtpfix/replay.c as smtpfix/stream.c drives it; draft-martin §3).  The
 * input holds a client's bytes and the bytes of two servers: the IPv6 one
 * until the stream asks to fall back, then the IPv4 one.  They arrive in
 * random chunks; every step is performed as gateway/session.c does, and
 * the target aborts on any broken invariant:
 *  - a step consumes no more than it was given, emits at most
 *    SMTPFIX_EMIT_MAX bytes, and steps make progress;
 *  - ACT_FALLBACK comes at most once, ACT_REPLAY_DATA only after it, and
 *    the replay sends nothing but whole command lines and the held
 *    message;
 *  - the record stays [kept][sent][unsent], within its arena;
 *  - the client gets well-formed reply lines only, and never a 456 (it
 *    never negotiated IPV6-IPV4-FALLBACK).
 *
 * Input: [seed] [client length, 2 bytes] [IPv6 server length, 2 bytes]
 * client bytes, IPv6 server bytes, IPv4 server bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpfix/replay.h"
#include "smtpfix/stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BUF (1 << 16)

struct peer {
	const char *p; /* bytes yet to arrive */
	size_t len;
};

static struct {
	struct smtpfix_policy pol;
	struct smtpfix_stream s;
	struct smtpfix_replay rp;
	char arena[4096];
	char cin[BUF], sin[BUF], held[BUF];
	size_t cin_len, sin_len, held_len;
	struct peer cli, srv[2];
	int leg, fell, closed;
	uint32_t rng;
	uint64_t steps, bytes;
	/* Client-bound reply checker: position in the line, and its start. */
	size_t rpos;
	char rhead[4];
} f;

static uint32_t
rnd(void)
{
	f.rng = f.rng * 1103515245u + 12345u;
	return f.rng >> 8;
}

static void
check_record(void)
{
	unsigned i, st = SMTPFIX_RS_KEPT;

	if (f.rp.used > f.rp.cap || f.rp.n > SMTPFIX_REPLAY_ENTS)
		abort();
	if (smtpfix_replay_broken(&f.rp) != NULL)
		return;
	/* KEPT (1) then SENT (0) then UNSENT (2): ranks 0, 1, 2. */
	for (i = 0; i < f.rp.n; i++) {
		static const unsigned rank[] = {1, 0, 2};
		unsigned r = rank[f.rp.e[i].st];

		if (r < rank[st] && i > 0)
			abort();
		st = f.rp.e[i].st;
		if ((size_t)f.rp.e[i].off + f.rp.e[i].len > f.rp.used)
			abort();
	}
}

static void
to_client(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (f.rpos < 4)
			f.rhead[f.rpos] = p[i];
		if (f.rpos < 3 && (p[i] < '0' || p[i] > '9'))
			abort();
		if (f.rpos == 3 && p[i] != ' ' && p[i] != '-' && p[i] != '\r')
			abort();
		if (f.rpos == 3 && memcmp(f.rhead, "456", 3) == 0)
			abort();
		f.rpos = p[i] == '\n' ? 0 : f.rpos + 1;
	}
}

static void
check_step(const struct smtpfix_step *st, size_t len)
{
	if (st->consumed > len || st->emit_len > SMTPFIX_EMIT_MAX)
		abort();
	if (++f.steps > 8 * f.bytes + 4096)
		abort();
}

static int
c2s(void)
{
	struct smtpfix_step st;
	int data = smtpfix_stream_wait(&f.s) == SMTPFIX_WAIT_DATA;

	smtpfix_c2s_step(&f.s, f.cin, f.cin_len, &st);
	check_step(&st, f.cin_len);
	switch (st.act) {
	case SMTPFIX_ACT_NONE:
		return 0;
	case SMTPFIX_ACT_FORWARD:
	case SMTPFIX_ACT_EMIT:
		if (st.act == SMTPFIX_ACT_EMIT &&
		    (st.emit_len < 2 || st.emit[st.emit_len - 1] != '\n') &&
		    !data)
			abort();
		if (data && !f.fell) {
			const char *p =
			    st.act == SMTPFIX_ACT_FORWARD ? f.cin : st.emit;
			size_t n = st.act == SMTPFIX_ACT_FORWARD ? st.consumed
			                                         : st.emit_len;

			if (f.held_len + n <= BUF) {
				memcpy(f.held + f.held_len, p, n);
				f.held_len += n;
			}
		}
		break;
	case SMTPFIX_ACT_DISCARD:
	case SMTPFIX_ACT_ABORT:
		if (st.act == SMTPFIX_ACT_ABORT)
			f.closed = 1;
		break;
	case SMTPFIX_ACT_REPLAY_DATA:
		if (!f.fell || f.leg != 1 || st.consumed != 0)
			abort();
		break;
	default:
		abort();
	}
	memmove(f.cin, f.cin + st.consumed, f.cin_len - st.consumed);
	f.cin_len -= st.consumed;
	check_record();
	return 1;
}

static int
s2c(void)
{
	struct smtpfix_step st;

	smtpfix_s2c_step(&f.s, f.sin, f.sin_len, &st);
	check_step(&st, f.sin_len);
	switch (st.act) {
	case SMTPFIX_ACT_NONE:
		return 0;
	case SMTPFIX_ACT_FORWARD:
		to_client(f.sin, st.consumed);
		break;
	case SMTPFIX_ACT_EMIT:
	case SMTPFIX_ACT_TLS_CLIENT:
		to_client(st.emit, st.emit_len);
		break;
	case SMTPFIX_ACT_DISCARD:
		break;
	case SMTPFIX_ACT_CLOSE:
		f.closed = 1;
		return 1;
	case SMTPFIX_ACT_FALLBACK:
		if (f.fell || st.consumed == 0 || f.rpos != 0)
			abort();
		f.fell = 1;
		f.leg = 1;
		f.sin_len = 0; /* the IPv6 leg is reset */
		check_record();
		return 1;
	default:
		/* No TLS policy is set: nothing else may come. */
		abort();
	}
	memmove(f.sin, f.sin + st.consumed, f.sin_len - st.consumed);
	f.sin_len -= st.consumed;
	check_record();
	return 1;
}

static void
arrive(struct peer *from, char *in, size_t *ilen)
{
	size_t n = rnd() % 8 == 0 ? from->len : 1 + rnd() % 48;

	if (n > from->len)
		n = from->len;
	if (n > BUF - *ilen)
		n = BUF - *ilen;
	memcpy(in + *ilen, from->p, n);
	*ilen += n;
	from->p += n;
	from->len -= n;
	f.bytes += n;
}

/* Mostly the client waits for its turn (RFC 5321 §4.3.1, RFC 2920
 * §3.1), then sends one line; at times it does not wait. */
static int
client_turn_now(void)
{
	enum smtpfix_wait w = smtpfix_stream_wait(&f.s);

	return w == SMTPFIX_WAIT_COMMAND || w == SMTPFIX_WAIT_DATA;
}

static int
client_turn(void)
{
	return client_turn_now() && f.cin_len == 0 && rnd() % 2 == 0;
}

static void
arrive_line(struct peer *from, char *in, size_t *ilen)
{
	const char *nl = memchr(from->p, '\n', from->len);
	size_t n = nl != NULL ? (size_t)(nl - from->p) + 1 : from->len;

	if (n > BUF - *ilen)
		n = BUF - *ilen;
	memcpy(in + *ilen, from->p, n);
	*ilen += n;
	from->p += n;
	from->len -= n;
	f.bytes += n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t clen, s6len, rounds;

	if (size < 5)
		return 0;
	memset(&f, 0, sizeof(f));
	clen = (size_t)data[1] << 8 | data[2];
	s6len = (size_t)data[3] << 8 | data[4];
	data += 5;
	size -= 5;
	if (clen > size)
		clen = size;
	if (s6len > size - clen)
		s6len = size - clen;
	f.rng = (uint32_t)data[-5] * 2654435761u + 1;
	f.pol.fqdn = "gw.example.net";
	f.pol.fqdn_len = 14;
	f.pol.helo = SMTPFIX_HELO_ALWAYS;
	f.pol.cmd_max = 512;
	f.pol.reply_max = 512;
	f.pol.bare = data[-5] & 1 ? SMTPFIX_BARE_INLINE : SMTPFIX_BARE_REJECT;
	smtpfix_stream_init(&f.s, &f.pol);
	smtpfix_replay_init(&f.rp, f.arena, sizeof(f.arena));
	smtpfix_stream_set_fallback(&f.s, &f.rp);
	f.cli.p = (const char *)data;
	f.cli.len = clen;
	f.srv[0].p = (const char *)data + clen;
	f.srv[0].len = s6len;
	f.srv[1].p = (const char *)data + clen + s6len;
	f.srv[1].len = size - clen - s6len;
	f.bytes = 1;
	for (rounds = 0; rounds < 100000 && !f.closed; rounds++) {
		int moved = 0;

		if (f.cli.len > 0 && client_turn()) {
			arrive_line(&f.cli, f.cin, &f.cin_len);
			moved = 1;
		} else if (f.cli.len > 0 && rnd() % 32 == 0) {
			arrive(&f.cli, f.cin, &f.cin_len); /* a client that
			                                      does not wait */
			moved = 1;
		}
		/* A server answers what it was sent, line by line; at times
		 * it runs ahead. */
		if (f.srv[f.leg].len > 0 && !client_turn_now() &&
		    rnd() % 2 == 0) {
			arrive_line(&f.srv[f.leg], f.sin, &f.sin_len);
			moved = 1;
		} else if (f.srv[f.leg].len > 0 && rnd() % 32 == 0) {
			arrive(&f.srv[f.leg], f.sin, &f.sin_len);
			moved = 1;
		}
		while (!f.closed && (c2s() || s2c()))
			moved = 1;
		if (!moved && ((f.cli.len == 0 && f.srv[f.leg].len == 0) ||
		                  rounds > 50000))
			break;
	}
	(void)smtpfix_stream_wait(&f.s);
	(void)smtpfix_stream_upstream_gone(&f.s);
	return 0;
}
