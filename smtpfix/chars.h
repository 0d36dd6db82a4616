/*
 * smtpfix/chars.h: the few character tests SMTP parsing needs.  ASCII
 * only, whatever the C locale says: RFC 5321 §2.4 makes verbs and
 * keywords case-insensitive in ASCII, and §4.1.1 separates words with SP
 * (tabs are tolerated because real servers do).
 */
#ifndef SMTPFIX_CHARS_H
#define SMTPFIX_CHARS_H

#include <stddef.h>

static inline int
smtpfix_is_wsp(int c)
{
	return c == ' ' || c == '\t';
}

static inline int
smtpfix_upper(int c)
{
	return c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c;
}

/* 1 if p[0..n) equals the upper-case, NUL-terminated word w, ignoring
 * the case of p. */
static inline int
smtpfix_word_eq(const char *p, size_t n, const char *w)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (w[i] == '\0' || smtpfix_upper((unsigned char)p[i]) != w[i])
			return 0;
	return w[n] == '\0';
}

#endif
