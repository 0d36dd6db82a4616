/*
 * smtpfix/ehlo.c: the extensions and verbs that pass between the legs
 * (see ehlo.h).  Pure: constant tables.
 */
#include <stddef.h>

#include "smtpfix/chars.h"
#include "smtpfix/ehlo.h"

/*
 * Kept keywords, each with why the gateway can keep it (smtp64.conf(5)
 * lists the same table).
 */
static const char *const kept[] = {
    /* RFC 2920: the reply queue pairs every reply with its command. */
    "PIPELINING",
    /* RFC 1870: the parameter is relayed and the data is not altered. */
    "SIZE",
    /* RFC 6152, RFC 6531: the data path is 8-bit transparent. */
    "8BITMIME",
    "SMTPUTF8",
    /* RFC 3461: MAIL and RCPT parameters are relayed unchanged. */
    "DSN",
    /* RFC 2034: the gateway's own replies carry enhanced codes too. */
    "ENHANCEDSTATUSCODES",
    /* RFC 4954: 334 exchanges are followed and kept out of the logs. */
    "AUTH",
    /* RFC 5321 §3.5, §4.1.1.6-8: base verbs, relayed. */
    "VRFY",
    "EXPN",
    "HELP",
};

/* Verbs relayed to the server (BDAT is answered by stream.c itself). */
static const char *const relayed[] = {
    "HELO",
    "EHLO",
    "MAIL",
    "RCPT",
    "DATA",
    "RSET",
    "NOOP",
    "QUIT",
    "VRFY",
    "EXPN",
    "HELP",
    "STARTTLS",
    "AUTH",
    "BDAT",
};

/* Extension verbs the gateway knows and never offers. */
static const char *const not_offered[] = {
    "XCLIENT",  /* the server would log the client's chosen identity */
    "XFORWARD", /* the same, for the next hop's logs */
    "ETRN",     /* RFC 1985: a queue run the gateway does not relay */
    "ATRN",     /* RFC 2645 */
    "TURN",     /* RFC 5321 §4.1.1: obsolete, role reversal */
    "BURL",     /* RFC 4468 */
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static int
in_table(const char *const *tab, size_t n, const char *p, size_t len,
    const char **name)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (smtpfix_word_eq(p, len, tab[i])) {
			if (name != NULL)
				*name = tab[i];
			return 1;
		}
	}
	return 0;
}

enum smtpfix_ehlo_kw
smtpfix_ehlo_keyword(const char *line, size_t len)
{
	size_t i;

	for (i = 0; i < len && !smtpfix_is_wsp(line[i]) && line[i] != '='; i++)
		continue;
	if (i < len && line[i] == '=')
		return SMTPFIX_KW_DROP;
	if (smtpfix_word_eq(line, i, "STARTTLS"))
		return SMTPFIX_KW_STARTTLS;
	return in_table(kept, NELEM(kept), line, i, NULL) ? SMTPFIX_KW_KEEP
	                                                  : SMTPFIX_KW_DROP;
}

enum smtpfix_verb_class
smtpfix_ehlo_verb(const char *line, size_t len, const char **name)
{
	size_t i, v;

	*name = NULL;
	for (i = 0; i < len && smtpfix_is_wsp(line[i]); i++)
		continue;
	v = i;
	while (i < len && !smtpfix_is_wsp(line[i]))
		i++;
	if (in_table(relayed, NELEM(relayed), line + v, i - v, name))
		return SMTPFIX_VERB_RELAY;
	if (in_table(not_offered, NELEM(not_offered), line + v, i - v, name))
		return SMTPFIX_VERB_NOT_OFFERED;
	return SMTPFIX_VERB_UNRECOGNIZED;
}

unsigned
smtpfix_ehlo_reply_code(unsigned code)
{
	return code == 456 ? 451 : code;
}
