/*
 * smtpfix/replay.h: the record of an SMTP transaction as it passes the
 * gateway, and the plan to replay it on a new upstream leg over IPv4 when
 * the server refuses the IPv6 one with 4.4.8
 * (draft-martin-smtp-ipv6-to-ipv4-fallback §3: 421 or 451 4.4.8 without
 * the service extension, 456 4.4.8 with IPV6-IPV4-FALLBACK).  Pure: the
 * caller owns the struct and the arena the command lines are kept in; no
 * allocation, no I/O, no clock.
 *
 * Model.  The record mirrors the reply queue of smtpfix/stream.h: every
 * entry the stream pushes (a relayed command, a reply of the gateway's
 * own, the end of a message's data) is pushed here too, with the bytes
 * that went upstream, and every reply pops the head.  A popped entry
 * either goes or is KEPT, because a new server needs it before the
 * commands still outstanding make sense:
 *  - the last HELO/EHLO answered 2xx (RFC 5321 §4.1.4: it also ends any
 *    transaction, so MAIL, RCPT and DATA kept before it go);
 *  - MAIL answered 2xx, each RCPT answered 2xx after it;
 *  - DATA answered 354, until the end of data is answered;
 *  - RSET answered 2xx, and any reply to the end of data, end the
 *    transaction (RFC 5321 §4.1.1.5, §4.1.1.4): what it kept goes.
 * So the record is always  [kept...][outstanding...]  in command order.
 *
 * Replay (smtpfix_replay_rewind): every entry becomes UNSENT; the kept
 * ones are sent again with their reply swallowed (it must be positive,
 * else the replay fails), the outstanding ones are sent again and their
 * replies relayed: the client sees one reply per command, as if there had
 * been one server.  A greeting the client already had is replayed as a
 * swallowed greeting.  The gateway's own commands (its EHLO probe, the
 * IPV6-IPV4-FALLBACK verb) are not replayed.  The message itself is not
 * here: the gateway holds it (gateway/spool.h) and sends it again when
 * the end-of-data entry comes up.
 *
 * The record refuses what it cannot replay faithfully, and is then
 * BROKEN for the rest of the session (the 4.4.8 is relayed as it is and
 * the client's queue retries later): an arena or entry table too small,
 * AUTH (its exchange is not kept: secrets), STARTTLS upstream (the new
 * leg would need its own), or a queue reset the record cannot follow.
 */
#ifndef SMTPFIX_REPLAY_H
#define SMTPFIX_REPLAY_H

#include <stddef.h>
#include <stdint.h>

/* Entries at once: RFC 5321 §4.5.3.1.8 asks for at least 100 recipients
 * a transaction, and RFC 2920 lets the client have a queue's worth of
 * commands outstanding (SMTPFIX_QUEUE_LEN). */
#define SMTPFIX_REPLAY_ENTS 384
/* The first line of the refusal kept for logs and the client's reply. */
#define SMTPFIX_REPLAY_WHY_MAX 256

/* What an entry is, for replay and logs. */
enum smtpfix_replay_class {
	SMTPFIX_RC_GREETING = 0, /* the server's greeting (no line) */
	SMTPFIX_RC_HELO,         /* HELO or EHLO */
	SMTPFIX_RC_MAIL,
	SMTPFIX_RC_RCPT,
	SMTPFIX_RC_DATA,
	SMTPFIX_RC_DATA_END, /* the message: the gateway's spool */
	SMTPFIX_RC_RSET,
	SMTPFIX_RC_OTHER, /* NOOP, VRFY, QUIT...: replayed if outstanding */
	SMTPFIX_RC_LOCAL, /* a reply of the gateway's own (no line) */
	SMTPFIX_RC_OWN,   /* a command of the gateway's own: not replayed */
	SMTPFIX_RC_COUNT,
};

enum smtpfix_replay_state {
	SMTPFIX_RS_SENT = 0, /* waits for its reply */
	SMTPFIX_RS_KEPT,     /* answered, needed by a new server */
	SMTPFIX_RS_UNSENT,   /* replay: not yet on the new leg */
};

struct smtpfix_replay_ent {
	uint32_t off;  /* line in the arena */
	uint16_t len;  /* 0: no line */
	uint8_t cls;   /* enum smtpfix_replay_class */
	uint8_t st;    /* enum smtpfix_replay_state */
	uint8_t tag;   /* the caller's kind of reply, given back on replay */
	uint8_t local; /* the caller's local reply index */
	uint8_t quiet; /* replay: swallow its reply (it was kept) */
	uint8_t first; /* the command the refusal answered */
};

struct smtpfix_replay {
	char *buf; /* the caller's arena, cap bytes */
	size_t cap, used;
	struct smtpfix_replay_ent e[SMTPFIX_REPLAY_ENTS];
	unsigned n;
	const char *broken; /* static reason, NULL while usable */
	/* The refusal being followed, and how it ended. */
	char why[SMTPFIX_REPLAY_WHY_MAX];
	size_t why_len;
	uint8_t first_cls; /* enum smtpfix_replay_class of that command */
	uint8_t outcome;   /* 1 once the replayed command was answered */
	unsigned outcome_code;
};

/* Starts an empty record over buf[0..cap) (the caller's, outliving r). */
void smtpfix_replay_init(struct smtpfix_replay *r, char *buf, size_t cap);

/* The record cannot be replayed from now on (why: static). */
void smtpfix_replay_break(struct smtpfix_replay *r, const char *why);

/* NULL while the record can be replayed, else why not (static). */
const char *smtpfix_replay_broken(const struct smtpfix_replay *r);

/*
 * An entry of the reply queue: cls as far as the caller knows it (a
 * command's verb refines it in smtpfix_replay_line), tag and local its
 * own values, given back on replay.  Breaks the record when it is full.
 */
void smtpfix_replay_push(struct smtpfix_replay *r,
    enum smtpfix_replay_class cls, uint8_t tag, uint8_t local);

/*
 * The bytes that went upstream for the entry pushed last (a whole command
 * line, CRLF included).  MAIL, RCPT, RSET, HELO and EHLO are told apart
 * by the verb.  Breaks the record when the arena is full.
 */
void smtpfix_replay_line(
    struct smtpfix_replay *r, const char *line, size_t len);

/*
 * The head of the outstanding entries was answered with code (0: a reply
 * of the gateway's own); keeps or drops it (see the model above).  Returns
 * the class of the entry answered, or SMTPFIX_RC_COUNT if none was
 * outstanding (the record is then broken: it lost step).
 */
enum smtpfix_replay_class smtpfix_replay_pop(
    struct smtpfix_replay *r, unsigned code);

/*
 * Adds a KEPT entry for a command sent upstream by someone else than the
 * stream, in front of the outstanding ones: route mode's opener
 * (smtpfix/opener.h) says EHLO and MAIL itself before the stream takes
 * over, and seeds the record with both (cls SMTPFIX_RC_HELO, then
 * SMTPFIX_RC_MAIL) so that a later refusal replays them.  Breaks the
 * record when it is full.
 */
void smtpfix_replay_keep(struct smtpfix_replay *r,
    enum smtpfix_replay_class cls, const char *line, size_t len);

/*
 * Route mode after a rewind: the new leg's opener (smtpfix/opener.h) has
 * had the server's greeting and said its own EHLO and the MAIL itself, so
 * the unsent quiet greeting goes, and the unsent quiet HELO and MAIL
 * entries are KEPT again without being sent twice; the replay goes on
 * with what follows them (the RCPTs, DATA, the message).
 */
void smtpfix_replay_opened(struct smtpfix_replay *r);

/* Drops every outstanding entry, keeps the kept ones (the client's leg
 * starts over after its own TLS handshake, RFC 3207 §4.2). */
void smtpfix_replay_flush(struct smtpfix_replay *r);

/* The class of the head of the outstanding entries, or SMTPFIX_RC_COUNT. */
enum smtpfix_replay_class smtpfix_replay_head(const struct smtpfix_replay *r);

/*
 * 1 if reply line line[0..len) (its code already parsed as code) asks for
 * a retry over IPv4: 421 or 451 with enhanced status 4.4.8, or 456 4.4.8
 * when IPV6-IPV4-FALLBACK was negotiated (draft-martin §3.1, §3.2; RFC
 * 3463 §2: the enhanced code starts the text).
 */
int smtpfix_replay_is_448(
    const char *line, size_t len, unsigned code, int negotiated);

/*
 * Starts a replay after the head outstanding entry was refused with
 * line[0..len) (kept as the reason, CRLF dropped): every entry becomes
 * UNSENT, kept ones quiet; the gateway's own commands go; a greeting the
 * client already had is added, quiet, in front.  Returns 0, or -1 if the
 * record is broken or has nothing outstanding (no replay).
 */
int smtpfix_replay_rewind(
    struct smtpfix_replay *r, const char *line, size_t len);

/* The next UNSENT entry, now SENT; NULL when the replay is done.  The
 * line is *line, *len (len 0: none). */
const struct smtpfix_replay_ent *smtpfix_replay_next(
    struct smtpfix_replay *r, const char **line, size_t *len);

/* 1 while entries are UNSENT. */
int smtpfix_replay_pending(const struct smtpfix_replay *r);

/* 1 while a message's data is part of the record (DATA kept, or its end
 * outstanding or unsent): the gateway must hold the message. */
int smtpfix_replay_holds_message(const struct smtpfix_replay *r);

/*
 * Once: 1 and the reply code when the command the refusal answered got
 * its reply on the new leg (the outcome of the fallback); 0 otherwise.
 */
int smtpfix_replay_outcome(struct smtpfix_replay *r, unsigned *code);

/* Static lower-case names of the classes ("greeting", "rcpt", ...). */
const char *smtpfix_replay_class_name(enum smtpfix_replay_class c);

#endif
