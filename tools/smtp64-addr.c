/*
 * tools/smtp64-addr.c: RFC 6052 and address-scope calculator for
 * operators and lab setup.
 *
 *	smtp64-addr embed PREFIX/LEN IPV4...	IPv4-embedded IPv6 address
 *	smtp64-addr extract PREFIX/LEN IPV6...	the IPv4 address inside
 *	smtp64-addr check ADDRESS...		global, or which range
 *
 * The arithmetic is the daemon's own (nat/rfc6052.c, nat/scope.c), so
 * what this prints is what smtp64d computes.  Exit status: 0 every
 * answer was "yes" (embedded, extracted, global); 1 at least one was
 * "no" (not under the prefix, non-zero u octet, not global or scoped);
 * 2 usage error or malformed input.  See smtp64-addr(1).
 */
#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nat/addr.h"
#include "nat/rfc6052.h"
#include "nat/scope.h"

#ifndef SMTP64_VERSION
#define SMTP64_VERSION "0.1.0"
#endif

enum addr_rc {
	ADDR_YES = 0, /* the answer is yes */
	ADDR_NO = 1,  /* a well-formed question, answered no */
	ADDR_BAD = 2, /* usage error, malformed input */
};

struct addr_opts {
	int mixed; /* -m: /96 results with a dotted-quad tail */
	int quiet; /* -q: exit status only */
};

/* "64:ff9b::/96 192.0.2.33" and friends need no more. */
#define ADDR_PREFIX_TEXT_MAX (INET6_ADDRSTRLEN + 4)
/* RFC 5952 §5 mixed form: six groups and a dotted quad. */
#define ADDR_MIXED_MAX (6 * 5 + 1 + INET_ADDRSTRLEN)

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: smtp64-addr [-mq] embed PREFIX/LEN IPV4...\n"
	    "       smtp64-addr [-q] extract PREFIX/LEN IPV6...\n"
	    "       smtp64-addr [-q] check ADDRESS...\n"
	    "       smtp64-addr -h | -V\n"
	    "\n"
	    "  embed    print the IPv4-embedded IPv6 address of each IPV4\n"
	    "           (RFC 6052 section 2.2; LEN is 32, 40, 48, 56, 64 or "
	    "96)\n"
	    "  extract  print the IPv4 address embedded in each IPV6\n"
	    "  check    say whether each address is global, or which\n"
	    "           non-global range holds it (RFC 6052 section 3.1,\n"
	    "           RFC 6890, RFC 3974 section 6)\n"
	    "\n"
	    "  -m  with a /96 prefix, print the IPv4 part in dotted form\n"
	    "      (64:ff9b::192.0.2.33, as RFC 6052 section 2.4 does)\n"
	    "  -q  print nothing; the exit status answers\n"
	    "  -h  this help (also --help)\n"
	    "  -V  print the version (also --version)\n"
	    "\n"
	    "Exit status: 0 yes, 1 no (not under the prefix, u octet not "
	    "zero,\n"
	    "not global), 2 usage error or malformed input.\n");
}

static int
worst(int a, int b)
{
	return a > b ? a : b;
}

/*
 * Parses "PREFIX/LEN" into *prefix and *plen and checks it against
 * RFC 6052 §2.2.  0, or -1 after a message on stderr.
 */
static int
prefix_parse(const char *s, struct in6_addr *prefix, unsigned *plen)
{
	struct nat_addr a;
	const char *slash;
	char *end;
	unsigned long v;
	size_t i;

	slash = strchr(s, '/');
	if (slash == NULL) {
		fprintf(stderr, "smtp64-addr: %s: want PREFIX/LEN\n", s);
		return -1;
	}
	if (nat_addr_parse(s, (size_t)(slash - s), &a) != 0 ||
	    a.family != AF_INET6) {
		fprintf(stderr, "smtp64-addr: %s: not an IPv6 prefix\n", s);
		return -1;
	}
	/* strtoul would take blanks, signs and "0x": digits only. */
	for (i = 1; slash[i] != '\0'; i++)
		if (slash[i] < '0' || slash[i] > '9')
			break;
	errno = 0;
	v = strtoul(slash + 1, &end, 10);
	if (i == 1 || slash[i] != '\0' || errno != 0 || *end != '\0' ||
	    v > 128) {
		fprintf(stderr, "smtp64-addr: %s: bad prefix length\n", s);
		return -1;
	}
	*prefix = a.u.v6;
	*plen = (unsigned)v;
	if (nat_6052_prefix_valid(prefix, *plen) == 0)
		return 0;
	/* Say which rule of RFC 6052 §2.2 failed. */
	switch (*plen) {
	case 32:
	case 40:
	case 48:
	case 56:
	case 64:
	case 96:
		break;
	default:
		fprintf(stderr,
		    "smtp64-addr: %s: the length must be 32, 40, 48, 56, 64 "
		    "or 96 (RFC 6052 section 2.2)\n",
		    s);
		return -1;
	}
	for (i = *plen / 8; i < sizeof(prefix->s6_addr); i++)
		if (prefix->s6_addr[i] != 0)
			break;
	if (i < sizeof(prefix->s6_addr))
		fprintf(
		    stderr, "smtp64-addr: %s: bits set past /%u\n", s, *plen);
	else
		fprintf(stderr,
		    "smtp64-addr: %s: bits 64-71 (the u octet) must be zero "
		    "(RFC 6052 section 2.2)\n",
		    s);
	return -1;
}

static int
v4_parse(const char *s, struct in_addr *out)
{
	struct nat_addr a;

	if (nat_addr_parse(s, strlen(s), &a) != 0 || a.family != AF_INET) {
		fprintf(stderr, "smtp64-addr: %s: not an IPv4 address\n", s);
		return -1;
	}
	*out = a.u.v4;
	return 0;
}

static int
v6_parse(const char *s, struct in6_addr *out)
{
	struct nat_addr a;

	if (nat_addr_parse(s, strlen(s), &a) != 0 || a.family != AF_INET6) {
		fprintf(stderr, "smtp64-addr: %s: not an IPv6 address\n", s);
		return -1;
	}
	*out = a.u.v6;
	return 0;
}

/* Writes a as text into dst (INET6_ADDRSTRLEN). */
static void
v6_fmt(const struct in6_addr *a, char *dst, size_t cap)
{
	struct nat_addr n;

	memset(&n, 0, sizeof(n));
	n.family = AF_INET6;
	n.u.v6 = *a;
	if (nat_addr_fmt(&n, dst, cap) < 0 && cap > 0)
		dst[0] = '\0';
}

static void
v4_fmt(const struct in_addr *a, char *dst, size_t cap)
{
	struct nat_addr n;

	memset(&n, 0, sizeof(n));
	n.family = AF_INET;
	n.u.v4 = *a;
	if (nat_addr_fmt(&n, dst, cap) < 0 && cap > 0)
		dst[0] = '\0';
}

/*
 * RFC 5952 §5 (and the /96 rows of RFC 6052 §2.4): the first six groups
 * in RFC 5952 §4 form, then the last 32 bits as a dotted quad.  dst has
 * ADDR_MIXED_MAX bytes.
 */
static void
v6_fmt_mixed(const struct in6_addr *a, char *dst, size_t cap)
{
	unsigned g[6], i, bs, bl, rs, rl;
	size_t off;
	int n;
	struct in_addr v4;
	char q[INET_ADDRSTRLEN];

	for (i = 0; i < 6; i++)
		g[i] = (unsigned)a->s6_addr[2 * i] << 8 | a->s6_addr[2 * i + 1];
	/* RFC 5952 §4.2: "::" for the longest run of two zero groups or
	 * more, the first such run on a tie. */
	bs = bl = 0;
	for (i = 0; i < 6; i = rs + rl + 1) {
		rs = i;
		for (rl = 0; rs + rl < 6 && g[rs + rl] == 0; rl++)
			continue;
		if (rl >= 2 && rl > bl) {
			bs = rs;
			bl = rl;
		}
	}
	off = 0;
	dst[0] = '\0';
	for (i = 0; i < 6; i++) {
		if (bl > 0 && i == bs) {
			n = snprintf(dst + off, cap - off, "::");
			i += bl - 1;
		} else {
			n = snprintf(dst + off, cap - off, "%s%x",
			    off > 0 && dst[off - 1] != ':' ? ":" : "", g[i]);
		}
		if (n < 0 || (size_t)n >= cap - off)
			return;
		off += (size_t)n;
	}
	memcpy(&v4.s_addr, a->s6_addr + 12, 4);
	v4_fmt(&v4, q, sizeof(q));
	snprintf(
	    dst + off, cap - off, "%s%s", dst[off - 1] == ':' ? "" : ":", q);
}

/* 1 if prefix/plen is the well-known prefix 64:ff9b::/96 (RFC 6052
 * §2.1). */
static int
is_wkp(const struct in6_addr *prefix, unsigned plen)
{
	struct in6_addr w;

	if (plen != 96 || inet_pton(AF_INET6, NAT_6052_WKP, &w) != 1)
		return 0;
	return memcmp(prefix->s6_addr, w.s6_addr, 12) == 0;
}

static int
cmd_embed(const struct addr_opts *o, char **argv, int argc)
{
	struct in6_addr prefix, out;
	struct in_addr v4;
	unsigned plen;
	char buf[ADDR_MIXED_MAX + INET6_ADDRSTRLEN], q[INET_ADDRSTRLEN];
	int i, rc = ADDR_YES;

	if (argc < 2) {
		usage(stderr);
		return ADDR_BAD;
	}
	if (prefix_parse(argv[0], &prefix, &plen) != 0)
		return ADDR_BAD;
	for (i = 1; i < argc; i++) {
		if (v4_parse(argv[i], &v4) != 0) {
			rc = worst(rc, ADDR_BAD);
			continue;
		}
		if (nat_6052_embed(&prefix, plen, &v4, &out) != 0) {
			rc = worst(rc, ADDR_BAD); /* checked above */
			continue;
		}
		/* RFC 6052 §3.1: never a non-global IPv4 address under the
		 * well-known prefix; smtp64d refuses such destinations. */
		if (is_wkp(&prefix, plen) && !nat_scope_v4_global(&v4)) {
			v4_fmt(&v4, q, sizeof(q));
			fprintf(stderr,
			    "smtp64-addr: warning: %s is not global (%s, %s): "
			    "RFC 6052 section 3.1 keeps it out of %s/96 and "
			    "smtp64d refuses it there\n",
			    q, nat_scope_v4_reason(&v4),
			    nat_scope_v4_source(&v4), NAT_6052_WKP);
		}
		if (o->quiet)
			continue;
		if (o->mixed && plen == 96)
			v6_fmt_mixed(&out, buf, sizeof(buf));
		else
			v6_fmt(&out, buf, sizeof(buf));
		printf("%s\n", buf);
	}
	return rc;
}

static int
cmd_extract(const struct addr_opts *o, char **argv, int argc)
{
	struct in6_addr prefix, a;
	struct in_addr v4;
	unsigned plen;
	char buf[INET_ADDRSTRLEN];
	int i, rc = ADDR_YES;

	if (argc < 2) {
		usage(stderr);
		return ADDR_BAD;
	}
	if (prefix_parse(argv[0], &prefix, &plen) != 0)
		return ADDR_BAD;
	for (i = 1; i < argc; i++) {
		if (v6_parse(argv[i], &a) != 0) {
			rc = worst(rc, ADDR_BAD);
			continue;
		}
		if (nat_6052_extract(&prefix, plen, &a, &v4) != 0) {
			/* Tell the two refusals apart for the operator. */
			if (memcmp(a.s6_addr, prefix.s6_addr, plen / 8) != 0)
				fprintf(stderr,
				    "smtp64-addr: %s: not under %s\n", argv[i],
				    argv[0]);
			else
				fprintf(stderr,
				    "smtp64-addr: %s: bits 64-71 (the u "
				    "octet) are not zero (RFC 6052 section "
				    "2.2)\n",
				    argv[i]);
			rc = worst(rc, ADDR_NO);
			continue;
		}
		if (o->quiet)
			continue;
		v4_fmt(&v4, buf, sizeof(buf));
		printf("%s\n", buf);
	}
	return rc;
}

/* Judges one IPv4 address; text is how the caller names it. */
static int
check_v4(const struct addr_opts *o, const char *text, const struct in_addr *v4)
{
	if (nat_scope_v4_global(v4)) {
		if (!o->quiet)
			printf("%s: global\n", text);
		return ADDR_YES;
	}
	if (!o->quiet)
		printf("%s: not global: %s (%s)%s\n", text,
		    nat_scope_v4_reason(v4), nat_scope_v4_source(v4),
		    nat_scope_v4_local(v4)
		        ? "; host or link scope: refused in address "
		          "literals (RFC 3974 section 6)"
		        : "");
	return ADDR_NO;
}

static int
cmd_check(const struct addr_opts *o, char **argv, int argc)
{
	struct nat_addr a;
	struct in6_addr wkp;
	struct in_addr v4;
	char text[2 * INET6_ADDRSTRLEN + 32], q[INET_ADDRSTRLEN];
	int i, rc = ADDR_YES, r;

	if (argc < 1) {
		usage(stderr);
		return ADDR_BAD;
	}
	if (inet_pton(AF_INET6, NAT_6052_WKP, &wkp) != 1)
		return ADDR_BAD;
	for (i = 0; i < argc; i++) {
		if (nat_addr_parse(argv[i], strlen(argv[i]), &a) != 0) {
			fprintf(stderr, "smtp64-addr: %s: not an address\n",
			    argv[i]);
			rc = worst(rc, ADDR_BAD);
			continue;
		}
		if (a.family == AF_INET) {
			rc = worst(rc, check_v4(o, argv[i], &a.u.v4));
			continue;
		}
		/* Under the well-known prefix the IPv4 address decides
		 * (RFC 6052 §3.1). */
		if (nat_6052_extract(&wkp, 96, &a.u.v6, &v4) == 0) {
			v4_fmt(&v4, q, sizeof(q));
			snprintf(text, sizeof(text),
			    "%s: well-known prefix, embeds %s", argv[i], q);
			r = check_v4(o, text, &v4);
			if (r != ADDR_YES && !o->quiet)
				printf("%s: RFC 6052 section 3.1 forbids it; "
				       "smtp64d refuses it\n",
				    argv[i]);
			rc = worst(rc, r);
			continue;
		}
		if (nat_scope_v6_scoped(&a.u.v6)) {
			if (!o->quiet)
				printf("%s: scoped (not of global scope, RFC "
				       "4291): refused in address literals "
				       "(RFC 3974 section 6)\n",
				    argv[i]);
			rc = worst(rc, ADDR_NO);
			continue;
		}
		if (!o->quiet)
			printf("%s: global scope\n", argv[i]);
	}
	return rc;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	struct addr_opts o;
	int ch, rc;

	memset(&o, 0, sizeof(o));
	while ((ch = getopt_long(argc, argv, "hmqV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'h':
			usage(stdout);
			return ADDR_YES;
		case 'V':
			printf("smtp64-addr %s\n", SMTP64_VERSION);
			return ADDR_YES;
		case 'm':
			o.mixed = 1;
			break;
		case 'q':
			o.quiet = 1;
			break;
		default:
			usage(stderr);
			return ADDR_BAD;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1) {
		usage(stderr);
		return ADDR_BAD;
	}
	if (strcmp(argv[0], "embed") == 0)
		rc = cmd_embed(&o, argv + 1, argc - 1);
	else if (strcmp(argv[0], "extract") == 0)
		rc = cmd_extract(&o, argv + 1, argc - 1);
	else if (strcmp(argv[0], "check") == 0)
		rc = cmd_check(&o, argv + 1, argc - 1);
	else {
		fprintf(stderr, "smtp64-addr: unknown command %s\n", argv[0]);
		usage(stderr);
		return ADDR_BAD;
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "smtp64-addr: write error\n");
		return ADDR_BAD;
	}
	return rc;
}
