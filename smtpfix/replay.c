/*
 * smtpfix/replay.c: the record of a transaction and its replay over a new
 * upstream leg (see replay.h for the model).  Pure.
 *
 *   smtpfix_replay_is_448   draft-martin §3.1 (456), §3.2 (421, 451);
 *                           RFC 3463 §2 (enhanced code first in the text)
 *   smtpfix_replay_pop      RFC 5321 §4.1.4 (EHLO resets), §4.1.1.4-5
 *                           (the end of data and RSET end a transaction)
 *   smtpfix_replay_rewind   draft-martin §3: retry at once over IPv4
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "smtpfix/chars.h"
#include "smtpfix/replay.h"

static const char *const class_names[SMTPFIX_RC_COUNT] = {
    [SMTPFIX_RC_GREETING] = "greeting",
    [SMTPFIX_RC_HELO] = "helo",
    [SMTPFIX_RC_MAIL] = "mail",
    [SMTPFIX_RC_RCPT] = "rcpt",
    [SMTPFIX_RC_DATA] = "data",
    [SMTPFIX_RC_DATA_END] = "data_end",
    [SMTPFIX_RC_RSET] = "rset",
    [SMTPFIX_RC_OTHER] = "other",
    [SMTPFIX_RC_LOCAL] = "local",
    [SMTPFIX_RC_OWN] = "own",
};

const char *
smtpfix_replay_class_name(enum smtpfix_replay_class c)
{
	return (unsigned)c < SMTPFIX_RC_COUNT ? class_names[c] : "none";
}

void
smtpfix_replay_init(struct smtpfix_replay *r, char *buf, size_t cap)
{
	memset(r, 0, sizeof(*r));
	r->buf = buf;
	r->cap = cap;
}

void
smtpfix_replay_break(struct smtpfix_replay *r, const char *why)
{
	if (r->broken == NULL)
		r->broken = why != NULL ? why : "broken";
}

const char *
smtpfix_replay_broken(const struct smtpfix_replay *r)
{
	return r->broken;
}

/* Removes entry i and its line (later lines move down). */
static void
drop(struct smtpfix_replay *r, unsigned i)
{
	struct smtpfix_replay_ent *e = &r->e[i];
	size_t off = e->off, len = e->len;
	unsigned k;

	if (len > 0) {
		memmove(r->buf + off, r->buf + off + len, r->used - off - len);
		r->used -= len;
		/* Lines need not be in entry order (smtpfix_replay_keep). */
		for (k = 0; k < r->n; k++)
			if (k != i && r->e[k].len > 0 && r->e[k].off > off)
				r->e[k].off -= (uint32_t)len;
	}
	memmove(&r->e[i], &r->e[i + 1], (r->n - i - 1) * sizeof(r->e[0]));
	r->n--;
}

/* Index of the first entry in state st, or r->n. */
static unsigned
find_state(const struct smtpfix_replay *r, enum smtpfix_replay_state st)
{
	unsigned i;

	for (i = 0; i < r->n; i++)
		if (r->e[i].st == st)
			return i;
	return r->n;
}

void
smtpfix_replay_push(struct smtpfix_replay *r, enum smtpfix_replay_class cls,
    uint8_t tag, uint8_t local)
{
	struct smtpfix_replay_ent *e;

	if (r->broken != NULL)
		return;
	if (r->n >= SMTPFIX_REPLAY_ENTS) {
		smtpfix_replay_break(r, "too_many_commands");
		return;
	}
	e = &r->e[r->n++];
	memset(e, 0, sizeof(*e));
	e->cls = (uint8_t)cls;
	e->st = SMTPFIX_RS_SENT;
	e->tag = tag;
	e->local = local;
}

/* The class a command line's verb gives (RFC 5321 §4.1.1). */
static enum smtpfix_replay_class
verb_class(const char *line, size_t len, enum smtpfix_replay_class dflt)
{
	static const struct {
		const char *w;
		enum smtpfix_replay_class c;
	} v[] = {
	    {"HELO", SMTPFIX_RC_HELO},
	    {"EHLO", SMTPFIX_RC_HELO},
	    {"MAIL", SMTPFIX_RC_MAIL},
	    {"RCPT", SMTPFIX_RC_RCPT},
	    {"RSET", SMTPFIX_RC_RSET},
	    {"DATA", SMTPFIX_RC_DATA},
	};
	size_t i, a, b;

	if (dflt != SMTPFIX_RC_OTHER && dflt != SMTPFIX_RC_HELO)
		return dflt;
	for (a = 0; a < len && smtpfix_is_wsp(line[a]); a++)
		continue;
	for (b = a; b < len && !smtpfix_is_wsp(line[b]) && line[b] != '\r'; b++)
		continue;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if (smtpfix_word_eq(line + a, b - a, v[i].w))
			return v[i].c;
	return dflt;
}

void
smtpfix_replay_line(struct smtpfix_replay *r, const char *line, size_t len)
{
	struct smtpfix_replay_ent *e;

	if (r->broken != NULL || r->n == 0)
		return;
	e = &r->e[r->n - 1];
	if (len > UINT16_MAX || len > r->cap - r->used) {
		smtpfix_replay_break(r, "record_full");
		return;
	}
	memcpy(r->buf + r->used, line, len);
	e->off = (uint32_t)r->used;
	e->len = (uint16_t)len;
	r->used += len;
	e->cls =
	    (uint8_t)verb_class(line, len, (enum smtpfix_replay_class)e->cls);
}

/* RFC 5321 §4.1.1.4, §4.1.1.5, §4.1.4: the transaction ends; what was
 * kept for it goes (a HELO stays unless a new one replaces it). */
static void
drop_kept(struct smtpfix_replay *r, int helo_too)
{
	unsigned i = 0;

	while (i < r->n) {
		const struct smtpfix_replay_ent *e = &r->e[i];

		if (e->st == SMTPFIX_RS_KEPT &&
		    (helo_too || e->cls != SMTPFIX_RC_HELO))
			drop(r, i);
		else
			i++;
	}
}

/* 1 if a kept entry of class c is there. */
static int
kept(const struct smtpfix_replay *r, enum smtpfix_replay_class c)
{
	unsigned i;

	for (i = 0; i < r->n; i++)
		if (r->e[i].st == SMTPFIX_RS_KEPT && r->e[i].cls == c)
			return 1;
	return 0;
}

enum smtpfix_replay_class
smtpfix_replay_pop(struct smtpfix_replay *r, unsigned code)
{
	struct smtpfix_replay_ent *e;
	enum smtpfix_replay_class c;
	unsigned i;
	int keep = 0;

	if (r->broken != NULL)
		return SMTPFIX_RC_COUNT;
	i = find_state(r, SMTPFIX_RS_SENT);
	if (i >= r->n || find_state(r, SMTPFIX_RS_UNSENT) < i) {
		smtpfix_replay_break(r, "lost_step");
		return SMTPFIX_RC_COUNT;
	}
	e = &r->e[i];
	c = (enum smtpfix_replay_class)e->cls;
	if (e->first) {
		r->outcome = 1;
		r->outcome_code = code;
	}
	switch (c) {
	case SMTPFIX_RC_HELO:
		if (code / 100 == 2) {
			drop_kept(r, 1);
			keep = 1;
		}
		break;
	case SMTPFIX_RC_MAIL:
		keep = code / 100 == 2;
		break;
	case SMTPFIX_RC_RCPT:
		keep = code / 100 == 2 && kept(r, SMTPFIX_RC_MAIL);
		break;
	case SMTPFIX_RC_DATA:
		keep = code == 354;
		break;
	case SMTPFIX_RC_DATA_END:
	case SMTPFIX_RC_RSET:
		if (c == SMTPFIX_RC_DATA_END || code / 100 == 2)
			drop_kept(r, 0);
		break;
	default:
		break;
	}
	/* drop_kept may have moved the entry down. */
	i = find_state(r, SMTPFIX_RS_SENT);
	if (keep) {
		r->e[i].st = SMTPFIX_RS_KEPT;
		r->e[i].quiet = 0;
		r->e[i].first = 0;
	} else
		drop(r, i);
	return c;
}

void
smtpfix_replay_keep(struct smtpfix_replay *r, enum smtpfix_replay_class cls,
    const char *line, size_t len)
{
	struct smtpfix_replay_ent e;
	unsigned at;

	smtpfix_replay_push(r, cls, 0, 0);
	smtpfix_replay_line(r, line, len);
	if (r->broken != NULL)
		return;
	/* The new entry goes after the kept ones: [kept][outstanding]. */
	e = r->e[r->n - 1];
	e.st = SMTPFIX_RS_KEPT;
	at = find_state(r, SMTPFIX_RS_SENT);
	memmove(&r->e[at + 1], &r->e[at], (r->n - 1 - at) * sizeof(r->e[0]));
	r->e[at] = e;
}

void
smtpfix_replay_opened(struct smtpfix_replay *r)
{
	unsigned i = 0;

	while (i < r->n) {
		struct smtpfix_replay_ent *e = &r->e[i];

		if (e->st != SMTPFIX_RS_UNSENT || !e->quiet) {
			i++;
			continue;
		}
		if (e->cls == SMTPFIX_RC_GREETING) {
			drop(r, i);
			continue;
		}
		if (e->cls == SMTPFIX_RC_HELO || e->cls == SMTPFIX_RC_MAIL) {
			e->st = SMTPFIX_RS_KEPT;
			e->quiet = 0;
		}
		i++;
	}
}

void
smtpfix_replay_flush(struct smtpfix_replay *r)
{
	unsigned i = 0;

	while (i < r->n) {
		if (r->e[i].st != SMTPFIX_RS_KEPT)
			drop(r, i);
		else
			i++;
	}
}

enum smtpfix_replay_class
smtpfix_replay_head(const struct smtpfix_replay *r)
{
	unsigned i = find_state(r, SMTPFIX_RS_SENT);

	return i < r->n ? (enum smtpfix_replay_class)r->e[i].cls
	                : SMTPFIX_RC_COUNT;
}

int
smtpfix_replay_is_448(
    const char *line, size_t len, unsigned code, int negotiated)
{
	size_t i = 4;

	if (code != 421 && code != 451 && !(code == 456 && negotiated))
		return 0;
	/* RFC 5321 §4.2: code, then "-" or SP; RFC 3463 §2: the enhanced
	 * code opens the text. */
	if (len < 9 || (line[3] != ' ' && line[3] != '-'))
		return 0;
	if (memcmp(line + i, "4.4.8", 5) != 0)
		return 0;
	i += 5;
	return i >= len || line[i] == ' ' || line[i] == '\r' || line[i] == '\t';
}

int
smtpfix_replay_rewind(struct smtpfix_replay *r, const char *line, size_t len)
{
	unsigned i, head;

	if (r->broken != NULL)
		return -1;
	head = find_state(r, SMTPFIX_RS_SENT);
	if (head >= r->n || find_state(r, SMTPFIX_RS_UNSENT) < r->n)
		return -1;
	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	if (len > sizeof(r->why))
		len = sizeof(r->why);
	memcpy(r->why, line, len);
	r->why_len = len;
	r->first_cls = r->e[head].cls;
	r->outcome = 0;
	r->e[head].first = 1;
	/* The gateway's own commands are its business on each leg. */
	i = 0;
	while (i < r->n) {
		if (r->e[i].cls == SMTPFIX_RC_OWN)
			drop(r, i);
		else
			i++;
	}
	/* A new leg starts with a greeting: relayed if the client still
	 * waits for one, else swallowed. */
	if (r->n == 0 || r->e[0].cls != SMTPFIX_RC_GREETING) {
		if (r->n >= SMTPFIX_REPLAY_ENTS) {
			smtpfix_replay_break(r, "too_many_commands");
			return -1;
		}
		memmove(&r->e[1], &r->e[0], r->n * sizeof(r->e[0]));
		memset(&r->e[0], 0, sizeof(r->e[0]));
		r->e[0].cls = SMTPFIX_RC_GREETING;
		r->e[0].st = SMTPFIX_RS_KEPT; /* quiet below */
		r->n++;
	}
	for (i = 0; i < r->n; i++) {
		r->e[i].quiet = r->e[i].st == SMTPFIX_RS_KEPT;
		r->e[i].st = SMTPFIX_RS_UNSENT;
	}
	return 0;
}

const struct smtpfix_replay_ent *
smtpfix_replay_next(struct smtpfix_replay *r, const char **line, size_t *len)
{
	unsigned i = find_state(r, SMTPFIX_RS_UNSENT);

	if (r->broken != NULL || i >= r->n)
		return NULL;
	r->e[i].st = SMTPFIX_RS_SENT;
	*line = r->e[i].len > 0 ? r->buf + r->e[i].off : NULL;
	*len = r->e[i].len;
	return &r->e[i];
}

int
smtpfix_replay_pending(const struct smtpfix_replay *r)
{
	return r->broken == NULL && find_state(r, SMTPFIX_RS_UNSENT) < r->n;
}

int
smtpfix_replay_holds_message(const struct smtpfix_replay *r)
{
	unsigned i;

	if (r->broken != NULL)
		return 0;
	for (i = 0; i < r->n; i++)
		if ((r->e[i].cls == SMTPFIX_RC_DATA &&
		        r->e[i].st != SMTPFIX_RS_SENT) ||
		    r->e[i].cls == SMTPFIX_RC_DATA_END)
			return 1;
	return 0;
}

int
smtpfix_replay_outcome(struct smtpfix_replay *r, unsigned *code)
{
	if (!r->outcome)
		return 0;
	r->outcome = 0;
	*code = r->outcome_code;
	return 1;
}
