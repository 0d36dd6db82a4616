/*
 * smtpfix/refuse.c: see refuse.h.
 */
#include <string.h>

#include "smtpfix/line.h"
#include "smtpfix/refuse.h"

static int
is_quit(const char *p, size_t n)
{
	static const char q[] = "QUIT";
	size_t i;

	/* RFC 5321 §4.1.1.10: "QUIT" CRLF; verbs are case-insensitive. */
	if (n != 6)
		return 0;
	for (i = 0; i < 4; i++)
		if ((p[i] & ~0x20) != q[i])
			return 0;
	return 1;
}

void
smtpfix_refuse_step(const char *in, size_t len, size_t cap, unsigned *ncmds,
    struct smtpfix_refuse_step *out)
{
	size_t used = 0;
	enum smtpfix_rc rc;

	memset(out, 0, sizeof(*out));
	rc = smtpfix_line_find(in, len, cap, &used);
	switch (rc) {
	case SMTPFIX_PARTIAL:
		return;
	case SMTPFIX_TOOLONG:
		out->act = SMTPFIX_REFUSE_CLOSE;
		out->consumed = len;
		out->code_enh = "500 5.5.2";
		out->text = "line too long, closing";
		return;
	case SMTPFIX_BADCHAR:
	case SMTPFIX_SYNTAX:
		out->act = SMTPFIX_REFUSE_REPLY;
		out->consumed = used;
		out->code_enh = "500 5.5.2";
		out->text = "bare CR, LF or NUL in command";
		break;
	case SMTPFIX_OK:
		out->consumed = used;
		if (is_quit(in, used)) {
			out->act = SMTPFIX_REFUSE_CLOSE;
			out->code_enh = "221 2.0.0";
			out->text = "closing";
			return;
		}
		out->act = SMTPFIX_REFUSE_REPLY;
		out->code_enh = "503 5.5.1";
		out->text = "refused at connect, only QUIT is accepted";
		break;
	}
	if (++*ncmds >= SMTPFIX_REFUSE_MAX_CMDS) {
		out->act = SMTPFIX_REFUSE_CLOSE;
		out->code_enh = "421 4.7.0";
		out->text = "too many commands after a refusal, closing";
	}
}
