/*
 * smtpfix/helo.h: HELO/EHLO parsing and the rewrite of its argument to
 * the gateway's FQDN (RFC 3974 Appendix A).  Pure.
 */
#ifndef SMTPFIX_HELO_H
#define SMTPFIX_HELO_H

#include <stddef.h>

#include "smtpfix/line.h"

enum smtpfix_helo_mode {
	SMTPFIX_HELO_ALWAYS = 0, /* every argument becomes the FQDN */
	SMTPFIX_HELO_LITERALS,   /* only address literals */
	SMTPFIX_HELO_OFF,        /* relay unchanged */
};

struct smtpfix_helo {
	int ehlo;                 /* 1 for EHLO, 0 for HELO */
	struct smtpfix_span verb; /* as sent: case is kept */
	struct smtpfix_span arg;  /* domain or address literal; may be
	                             empty (the server answers 501) */
	size_t used;              /* bytes up to and including CRLF */
};

/*
 * Parses one complete line (CRLF included, as smtpfix_line_find found
 * it).  SMTPFIX_OK if it is HELO or EHLO (any case), SMTPFIX_SYNTAX if it
 * is another command.  Allocates nothing, keeps no state.
 */
enum smtpfix_rc smtpfix_helo_parse(
    const char *line, size_t len, struct smtpfix_helo *out);

/* 1 if arg is an address literal: "[" ... "]" (RFC 5321 §4.1.3: IPv4,
 * "IPv6:" and general "tag:" forms alike). */
int smtpfix_helo_is_literal(const char *arg, size_t len);

/*
 * Applies the policy: writes "<verb as sent> SP fqdn CRLF" into dst of
 * capacity cap and sets *dst_len, or sets *dst_len = 0 when the line is to
 * be relayed unchanged (mode off, a domain under "literals", or no
 * argument).  SMTPFIX_TOOLONG if dst is too small.
 */
enum smtpfix_rc smtpfix_helo_rewrite(const struct smtpfix_helo *h,
    enum smtpfix_helo_mode mode, const char *fqdn, size_t fqdn_len, char *dst,
    size_t cap, size_t *dst_len);

#endif
