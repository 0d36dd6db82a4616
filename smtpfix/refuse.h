/*
 * smtpfix/refuse.h: the dialogue of a session the gateway refuses at the
 * greeting (RFC 5321 §3.1: after a 554 greeting the server "MUST wait for
 * the client to send a QUIT command before closing the connection, and
 * SHOULD respond to any intervening commands with 503").  Pure.
 */
#ifndef SMTPFIX_REFUSE_H
#define SMTPFIX_REFUSE_H

#include <stddef.h>

/* Commands answered 503 before the gateway gives up and closes. */
#define SMTPFIX_REFUSE_MAX_CMDS 16

enum smtpfix_refuse_act {
	SMTPFIX_REFUSE_NONE = 0, /* need a whole line */
	SMTPFIX_REFUSE_REPLY,    /* send *reply, go on */
	SMTPFIX_REFUSE_CLOSE,    /* send *reply, then close */
};

struct smtpfix_refuse_step {
	enum smtpfix_refuse_act act;
	size_t consumed;
	const char *code_enh; /* e.g. "503 5.5.1" */
	const char *text;
};

/*
 * Looks at the client's unread bytes in[0..len).  *ncmds counts the
 * commands answered so far (the caller keeps it, starting at 0).  Lines
 * longer than cap are answered 500 and the session closes: a refused
 * client gets no buffer to fill.
 */
void smtpfix_refuse_step(const char *in, size_t len, size_t cap,
    unsigned *ncmds, struct smtpfix_refuse_step *out);

#endif
