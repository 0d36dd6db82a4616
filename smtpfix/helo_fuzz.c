/*
 * smtpfix/helo_fuzz.c: libFuzzer target for smtpfix_line_find,
 * smtpfix_helo_parse and smtpfix_helo_rewrite.  Spans must stay inside
 * the line, the rewritten line must be exactly "verb SP fqdn CRLF", and
 * the policy must be applied as documented.
 *
 * Input: [fqdn length] bytes...: the first bytes (up to 255) are the
 * FQDN, the rest the client's line(s).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpfix/helo.h"
#include "smtpfix/line.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
inside(const struct smtpfix_span *sp, const char *p, size_t n)
{
	if (sp->len > n || sp->p < p || sp->p > p + n ||
	    (size_t)(sp->p - p) > n - sp->len)
		abort();
}

static void
check(
    const char *line, size_t len, const char *fqdn, size_t fqdn_len, int framed)
{
	static char dst[1024];
	struct smtpfix_helo h;
	size_t n, i;
	int m, lit;

	if (smtpfix_helo_parse(line, len, &h) != SMTPFIX_OK)
		return;
	inside(&h.verb, line, len);
	inside(&h.arg, line, len);
	if (h.verb.len != 4 || h.used != len)
		abort();
	/* The argument is one word; on a framed line it holds no CR/LF. */
	for (i = 0; i < h.arg.len; i++)
		if (h.arg.p[i] == ' ' || h.arg.p[i] == '\t' ||
		    (framed && (h.arg.p[i] == '\r' || h.arg.p[i] == '\n')))
			abort();
	lit = smtpfix_helo_is_literal(h.arg.p, h.arg.len);
	for (m = SMTPFIX_HELO_ALWAYS; m <= SMTPFIX_HELO_OFF; m++) {
		if (smtpfix_helo_rewrite(&h, (enum smtpfix_helo_mode)m, fqdn,
		        fqdn_len, dst, sizeof(dst), &n) != SMTPFIX_OK)
			abort();
		if (n == 0) {
			if (h.arg.len > 0 &&
			    (m == SMTPFIX_HELO_ALWAYS ||
			        (m == SMTPFIX_HELO_LITERALS && lit)))
				abort();
			continue;
		}
		if (m == SMTPFIX_HELO_OFF || h.arg.len == 0 ||
		    (m == SMTPFIX_HELO_LITERALS && !lit))
			abort();
		if (n != 4 + 1 + fqdn_len + 2 ||
		    memcmp(dst, h.verb.p, 4) != 0 || dst[4] != ' ' ||
		    memcmp(dst + 5, fqdn, fqdn_len) != 0 ||
		    memcmp(dst + n - 2, "\r\n", 2) != 0)
			abort();
		/* Too small a buffer is an error, never a truncation. */
		if (smtpfix_helo_rewrite(&h, (enum smtpfix_helo_mode)m, fqdn,
		        fqdn_len, dst, n - 1, &n) != SMTPFIX_TOOLONG ||
		    n != 0)
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p;
	size_t fl, len, used, off;
	enum smtpfix_rc rc;

	if (size < 1)
		return 0;
	fl = data[0];
	if (fl > size - 1)
		fl = size - 1;
	p = (const char *)data + 1 + fl;
	len = size - 1 - fl;
	/* Any bytes at all, as if they were a line. */
	check(p, len, (const char *)data + 1, fl, 0);
	/* Lines as the gateway frames them. */
	for (off = 0; off < len; off += used) {
		rc = smtpfix_line_find(p + off, len - off, 512, &used);
		if (rc == SMTPFIX_PARTIAL || rc == SMTPFIX_TOOLONG) {
			if (used != 0)
				abort();
			break;
		}
		if (used < 2 || used > 512 || used > len - off ||
		    p[off + used - 2] != '\r' || p[off + used - 1] != '\n')
			abort();
		if (rc == SMTPFIX_OK) {
			if (memchr(p + off, '\0', used) != NULL ||
			    memchr(p + off, '\n', used - 1) != NULL ||
			    memchr(p + off, '\r', used - 2) != NULL)
				abort();
			check(p + off, used, (const char *)data + 1, fl, 1);
		} else if (rc != SMTPFIX_BADCHAR)
			abort();
	}
	return 0;
}
