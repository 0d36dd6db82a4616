/*
 * smtpfix/path_fuzz.c: libFuzzer target for smtpfix_path_check.  Spans
 * must stay inside the line and nest (mailbox in path, domain ending the
 * mailbox), replies must match the class, an OK literal must really be
 * global, and the verdict must not depend on bytes past len.
 *
 * Input: client bytes, checked once whole and then split after each
 * CRLF, each line in a buffer of its own size so that ASan sees any read
 * past it.  (Bare CR, LF and NUL are left in: smtpfix_line_find would
 * refuse them, but the checks must hold for any bytes.)
 */
#include <sys/socket.h>

#include <netinet/in.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nat/addr.h"
#include "nat/scope.h"
#include "smtpfix/path.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
inside(const struct smtpfix_span *sp, const char *p, size_t n)
{
	if (sp->len == 0)
		return;
	if (sp->p == NULL || sp->len > n || sp->p < p || sp->p > p + n ||
	    (size_t)(sp->p - p) > n - sp->len)
		abort();
}

/* sub lies within outer */
static void
within(const struct smtpfix_span *sub, const struct smtpfix_span *outer)
{
	if (sub->len == 0)
		return;
	inside(sub, outer->p, outer->len);
}

static void
check_ok_literal(const struct smtpfix_span *d)
{
	struct nat_addr a;

	if (d->len < 2 || d->p[0] != '[')
		return;
	if (memchr(d->p, '%', d->len) != NULL)
		abort();
	if (d->len > 7 && (d->p[1] == 'I' || d->p[1] == 'i')) {
		if (nat_addr_parse(d->p + 6, d->len - 7, &a) != 0 ||
		    a.family != AF_INET6 || nat_scope_v6_scoped(&a.u.v6))
			abort();
	}
}

static void
check(const char *line, size_t len)
{
	struct smtpfix_path p, q;
	enum smtpfix_path_class c;
	const char *r;
	size_t rl;

	c = smtpfix_path_check(line, len, &p);
	if (smtpfix_path_check(line, len, &q) != c ||
	    memcmp(&p, &q, sizeof(p)) != 0)
		abort();
	if (c < SMTPFIX_PATH_OK || c > SMTPFIX_PATH_BAD_LITERAL)
		abort();
	r = smtpfix_path_reply(c, p.is_mail);
	if ((r == NULL) != (c == SMTPFIX_PATH_OK || c == SMTPFIX_PATH_NOT_PATH))
		abort();
	if (r != NULL) {
		rl = strlen(r);
		if (rl < 12 || memcmp(r + rl - 2, "\r\n", 2) != 0 ||
		    (memcmp(r, "501 5.", 6) != 0 &&
		        memcmp(r, "553 5.", 6) != 0))
			abort();
	}
	if (c == SMTPFIX_PATH_NOT_PATH) {
		if (p.used != 0 || p.path.len != 0 || p.mailbox.len != 0 ||
		    p.is_mail != 0)
			abort();
		return;
	}
	if (p.used != len)
		abort();
	inside(&p.path, line, len);
	inside(&p.adl, line, len);
	inside(&p.mailbox, line, len);
	inside(&p.domain, line, len);
	inside(&p.culprit, line, len);
	inside(&p.params, line, len);
	if (c == SMTPFIX_PATH_SYNTAX)
		return;

	/* A whole path was found. */
	if (p.path.len < 2 || p.path.p[0] != '<' ||
	    p.path.p[p.path.len - 1] != '>')
		abort();
	if (len < 2 || line[len - 2] != '\r' || line[len - 1] != '\n')
		abort();
	within(&p.adl, &p.path);
	within(&p.mailbox, &p.path);
	within(&p.domain, &p.mailbox);
	within(&p.culprit, &p.path);
	if (p.domain.len > 0 &&
	    p.domain.p + p.domain.len != p.mailbox.p + p.mailbox.len)
		abort();
	if (p.mailbox.len == 0 && (!p.is_mail || p.path.len != 2))
		abort();
	if (p.adl.len > 0 && p.adl.p[0] != '@')
		abort();
	if (p.params.p != NULL &&
	    (p.params.p < p.path.p + p.path.len ||
	        p.params.p + p.params.len != line + len - 2))
		abort();

	switch (c) {
	case SMTPFIX_PATH_OK:
		if (p.adl.len != 0 || p.culprit.len != 0)
			abort();
		check_ok_literal(&p.domain);
		break;
	case SMTPFIX_PATH_SOURCE_ROUTE:
		if (p.adl.len == 0 || p.culprit.p != p.adl.p ||
		    p.culprit.len != p.adl.len)
			abort();
		check_ok_literal(&p.domain);
		break;
	case SMTPFIX_PATH_SCOPED_LITERAL:
	case SMTPFIX_PATH_BAD_LITERAL:
		if (p.culprit.len < 2 || p.culprit.p[0] != '[' ||
		    p.culprit.p[p.culprit.len - 1] != ']')
			abort();
		break;
	default:
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	char *copy;
	size_t off, i;

	check(p, size);
	for (off = 0, i = 1; i < size; i++) {
		if (p[i - 1] != '\r' || p[i] != '\n')
			continue;
		if ((copy = malloc(i + 1 - off)) == NULL)
			return 0;
		memcpy(copy, p + off, i + 1 - off);
		check(copy, i + 1 - off);
		free(copy);
		off = i + 1;
	}
	return 0;
}
