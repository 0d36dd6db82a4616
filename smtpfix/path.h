/*
 * smtpfix/path.h: MAIL FROM and RCPT TO path checks (RFC 5321 §4.1.1.2,
 * §4.1.1.3, §4.1.2) for address hygiene across the gateway: no source
 * routes (RFC 3974 §7), no address literals of host or link scope
 * (RFC 3974 §6).  Pure: spans point into the caller's line, nothing is
 * allocated, the line is never written.
 */
#ifndef SMTPFIX_PATH_H
#define SMTPFIX_PATH_H

#include <stddef.h>

#include "smtpfix/line.h"

/*
 * What smtpfix_path_check found.  When a path has more than one fault
 * the first in this order is returned: SYNTAX, BAD_LITERAL,
 * SCOPED_LITERAL, SOURCE_ROUTE.  So SOURCE_ROUTE means "a route, and
 * nothing else wrong": a caller whose policy lets routes through may
 * treat it as OK.  A caller that lets scoped literals through but not
 * routes checks adl.len as well.
 */
enum smtpfix_path_class {
	SMTPFIX_PATH_OK = 0,
	SMTPFIX_PATH_NOT_PATH,       /* not MAIL or RCPT: nothing to check */
	SMTPFIX_PATH_SYNTAX,         /* no "<...>" path, or a broken one */
	SMTPFIX_PATH_SOURCE_ROUTE,   /* "<@a,@b:user@c>" (an A-d-l) */
	SMTPFIX_PATH_SCOPED_LITERAL, /* [IPv6:fe80::1], a zone id, [127.0.0.1]
	                              */
	SMTPFIX_PATH_BAD_LITERAL, /* "[...]" that is no IPv4 or IPv6 address */
};

struct smtpfix_path {
	int is_mail;                 /* 1: MAIL FROM, 0: RCPT TO */
	struct smtpfix_span path;    /* "<" ... ">", brackets included */
	struct smtpfix_span adl;     /* "@a,@b" without the ":"; or empty */
	struct smtpfix_span mailbox; /* "local@domain"; empty for "<>" */
	struct smtpfix_span domain;  /* domain or "[literal]"; empty for "<>"
	                                and "<postmaster>" */
	struct smtpfix_span culprit; /* the literal, or the A-d-l, that set
	                                the class; empty for OK */
	struct smtpfix_span params;  /* ESMTP parameters after the path, up
	                                to the CRLF; may be empty */
	size_t used;                 /* bytes up to and including CRLF */
};

/*
 * Checks one complete line (CRLF included, as smtpfix_line_find found
 * it) from line[0..len).  The command is "MAIL FROM:" or "RCPT TO:" in
 * any case; blanks may lead the line and surround the colon, as servers
 * allow.  RFC 5321 §4.1.2: Path = "<" [ A-d-l ":" ] Mailbox ">"; the
 * null path "<>" is OK for MAIL, "<postmaster>" (any case) for RCPT.
 * SMTPUTF8 octets (RFC 6531) pass in local parts and domains.  Domain
 * names are not judged, only address literals (RFC 5321 §4.1.3).
 *
 * Always fills *out (all empty for NOT_PATH); the spans stay valid as
 * long as the caller's buffer does.  Reads line[0..len) only.
 */
enum smtpfix_path_class smtpfix_path_check(
    const char *line, size_t len, struct smtpfix_path *out);

/*
 * The whole reply line, CRLF included, that the gateway sends instead of
 * relaying a line of class c, e.g. "553 5.1.0 Source routes are not
 * accepted (RFC 3974 section 7)\r\n"; is_mail picks the sender or
 * recipient enhanced code (RFC 3463).  Static; NULL for OK and
 * NOT_PATH.
 *
 *	class		MAIL		RCPT
 *	SYNTAX		501 5.5.4	501 5.5.4
 *	SOURCE_ROUTE	553 5.1.0	553 5.1.0
 *	SCOPED_LITERAL	553 5.1.8	553 5.1.2
 *	BAD_LITERAL	553 5.1.7	553 5.1.3
 */
const char *smtpfix_path_reply(enum smtpfix_path_class c, int is_mail);

/* A static token for log lines: "ok", "not-path", "syntax",
 * "source-route", "scoped-literal", "bad-literal"; "unknown" else. */
const char *smtpfix_path_reason(enum smtpfix_path_class c);

#endif
