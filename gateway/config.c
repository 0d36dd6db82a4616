/*
 * gateway/config.c: smtp64.conf with libinih.
 *
 * libinih does the INI syntax (sections, comments); this file only gives
 * each key its meaning and checks every value.  The file is read whole
 * (with a size bound) and handed to libinih line by line by our own
 * reader, which counts lines (Debian's libinih is built without
 * INI_HANDLER_LINENO), refuses NUL and control bytes and overlong lines
 * with the line they are on, and strips indentation, so that libinih's
 * continuation lines never happen.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <ini.h>

#include "gateway/config.h"
#include "gateway/tls.h"
#include "nat/rfc6052.h"
#include "nat/scope.h"
#include "smtpfix/identity.h"

/* TLS keys as written in one section; resolved by resolve_tls. */
struct tls_raw {
	int mode;           /* smtpfix_tls_mode, -1 */
	int upstream;       /* smtpfix_tls_upstream, -1 */
	char *cert, *key;   /* owned; NULL: unset */
	char *cert2, *key2; /* a second pair of another key type */
	char *ca, *name;    /* owned; NULL: unset */
	unsigned cert_line; /* of the cert or key key */
};

struct pending_pair {
	struct nat_addr v4, v6;
	int have4, have6;
	unsigned line4, line6; /* of each address */
	struct gw_pair_opt opt;
	struct tls_raw tls;
};

/* A configuration file is small: more than this is not one. */
#define CONF_MAX_BYTES (1024 * 1024)

struct parse {
	struct gw_config *cfg;
	const char *buf;       /* the whole file, len bytes */
	size_t len, pos;       /* pos: the next line's start */
	unsigned line;         /* line just read */
	unsigned section_line; /* line of the last [header] */
	unsigned gateway_line; /* line of [gateway], if any */
	char err[700];         /* first error */
	int listen_set;
	unsigned listen_line[GW_LISTEN_MAX]; /* of each cfg->listen */
	struct pending_pair *pp;             /* [pair] sections and pair = */
	size_t npp, ppcap;
	unsigned pp_section;    /* section_line of pp[npp-1] */
	unsigned nat64_section; /* section_line of the last */
	size_t aclcap;
	struct tls_raw gtls;               /* of [gateway] */
	unsigned route_section;            /* section_line of the last */
	struct tls_raw rtls[GW_ROUTE_MAX]; /* of each [route] */
};

static void perr(struct parse *p, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Copies src into dst (capacity cap) with every byte but printable ASCII
 * written as \xNN: messages echo values and names from the file, and
 * they reach a terminal or the log.
 */
static void
escape_msg(char *dst, size_t cap, const char *src)
{
	size_t o = 0;

	for (; *src != '\0' && o + 5 < cap; src++) {
		unsigned char ch = (unsigned char)*src;

		if (ch >= 0x20 && ch < 0x7f)
			dst[o++] = (char)ch;
		else
			o += (size_t)snprintf(dst + o, cap - o, "\\x%02x", ch);
	}
	dst[o] = '\0';
}

static void
perr(struct parse *p, unsigned line, const char *fmt, ...)
{
	char msg[384], raw[sizeof(p->err)];
	va_list ap;

	if (p->err[0] != '\0')
		return; /* the first error is the one to fix */
	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0)
		(void)snprintf(
		    raw, sizeof(raw), "%s:%u: %s", p->cfg->path, line, msg);
	else
		(void)snprintf(raw, sizeof(raw), "%s: %s", p->cfg->path, msg);
	escape_msg(p->err, sizeof(p->err), raw);
}

static struct pending_pair *new_pair(struct parse *);

/* Copies the NAME of "[kind NAME]" (rest starts after "kind"). */
static int
section_name(struct parse *p, const char *rest, char *dst, size_t cap)
{
	size_t n;

	while (*rest == ' ' || *rest == '\t')
		rest++;
	n = strcspn(rest, "]");
	while (n > 0 && (rest[n - 1] == ' ' || rest[n - 1] == '\t'))
		n--;
	if (n == 0 || n >= cap) {
		perr(p, p->line, "section name empty or longer than %zu",
		    cap - 1);
		return -1;
	}
	memcpy(dst, rest, n);
	dst[n] = '\0';
	return 0;
}

/* "[nat64 NAME]": a new prefix entry. */
static void
nat64_section(struct parse *p, const char *rest)
{
	struct gw_config *c = p->cfg;
	struct gw_nat64 *n;

	if (c->nnat64 == GW_NAT64_MAX) {
		perr(p, p->line, "more than %d [nat64] sections", GW_NAT64_MAX);
		return;
	}
	n = &c->nat64[c->nnat64++];
	memset(n, 0, sizeof(*n));
	n->line = p->line;
	n->clients.flags = NAT_ACL_NONE;
	n->dests.flags = NAT_ACL_NONE;
	n->identity.mode = n->identity.required = -1;
	if (section_name(p, rest, n->name, sizeof(n->name)) == 0)
		p->nat64_section = p->line;
}

/* "[route NAME]": a new route. */
static void
route_section(struct parse *p, const char *rest)
{
	struct gw_config *c = p->cfg;
	struct gw_route *r;

	if (c->nroutes == GW_ROUTE_MAX) {
		perr(p, p->line, "more than %d [route] sections", GW_ROUTE_MAX);
		return;
	}
	p->rtls[c->nroutes].mode = p->rtls[c->nroutes].upstream = -1;
	r = &c->routes[c->nroutes++];
	memset(r, 0, sizeof(*r));
	r->line = p->line;
	r->clients.flags = NAT_ACL_NONE;
	r->identity.mode = r->identity.required = -1;
	if (section_name(p, rest, r->name, sizeof(r->name)) == 0)
		p->route_section = p->line;
}

/* "[pair NAME]": starts a pending pair named NAME. */
static void
pair_section(struct parse *p, const char *rest)
{
	struct pending_pair *pp;

	if ((pp = new_pair(p)) == NULL)
		return;
	pp->opt.acl = -1;
	if (section_name(p, rest, pp->opt.name, sizeof(pp->opt.name)) == 0)
		p->pp_section = p->line;
}

/*
 * Hands libinih the next line of the file in str (capacity num), and
 * notes where each section starts.  A NUL or control byte (all below
 * 0x20 but TAB, and DEL; CR only before LF) or a line over num - 1
 * characters is an error on its own line, and ends the parse: read
 * with fgets, NUL would cut the value short and a long line would
 * come back as two.
 */
static char *
reader(char *str, int num, void *stream)
{
	struct parse *p = stream;
	const char *b, *nl;
	char *r = str;
	const char *s;
	size_t n, i;

	if (p->err[0] != '\0' || p->pos >= p->len || num < 2)
		return NULL;
	b = p->buf + p->pos;
	nl = memchr(b, '\n', p->len - p->pos);
	n = nl != NULL ? (size_t)(nl - b) : p->len - p->pos;
	p->pos += nl != NULL ? n + 1 : n;
	p->line++;
	if (n > 0 && b[n - 1] == '\r')
		n--;
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)b[i];

		if (ch == '\0') {
			perr(p, p->line,
			    "NUL byte at column %zu (not a text file?)", i + 1);
			return NULL;
		}
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
			perr(p, p->line,
			    "control character \\x%02x at column %zu", ch,
			    i + 1);
			return NULL;
		}
	}
	if (n > (size_t)num - 1) {
		perr(p, p->line, "line too long (at most %d characters)",
		    num - 1);
		return NULL;
	}
	memcpy(r, b, n);
	r[n] = '\0';
	/* Leading blanks are dropped, so an indented line is a line of its
	 * own and never a silent continuation of the value above. */
	for (s = r; *s == ' ' || *s == '\t'; s++)
		;
	if (s != r)
		memmove(r, s, strlen(s) + 1);
	if (*r == '[') {
		p->section_line = p->line;
		/* A [pair NAME] section exists even with no keys in it, so
		 * an empty one is reported rather than ignored. */
		if (strncmp(r, "[pair", 5) == 0 &&
		    (r[5] == ' ' || r[5] == '\t'))
			pair_section(p, r + 5);
		else if (strncmp(r, "[nat64", 6) == 0 &&
		         (r[6] == ' ' || r[6] == '\t'))
			nat64_section(p, r + 6);
		else if (strncmp(r, "[route", 6) == 0 &&
		         (r[6] == ' ' || r[6] == '\t'))
			route_section(p, r + 6);
		else if (strncmp(r, "[packet]", 8) == 0)
			p->cfg->packet.line = p->line;
	}
	/* libinih only knows ';' for comments after a value; '#' after a
	 * blank is a comment too here, as in most Unix configs.  No value
	 * of ours contains '#'. */
	for (char *c = r; *c != '\0'; c++) {
		if (*c == '#' && c > r && (c[-1] == ' ' || c[-1] == '\t')) {
			*c = '\0';
			break;
		}
	}
	return r;
}

static int
parse_uint(
    const char *v, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long n;

	if (*v < '0' || *v > '9')
		return -1;
	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno != 0 || *end != '\0' || n < min || n > max)
		return -1;
	*out = n;
	return 0;
}

/*
 * RFC 1035 §2.3.1 / RFC 1123 §2.1 host name: dot-separated labels of
 * letters, digits and hyphens, no hyphen at either end of a label, at
 * least two labels (a receiver's reject_non_fqdn_helo_hostname wants a
 * dot), 253 octets at most.
 */
static int
valid_fqdn(const char *s)
{
	size_t len = strlen(s), label = 0, i;
	int dots = 0;

	if (len == 0 || len > GW_FQDN_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			dots++;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		        (c >= '0' && c <= '9') || c == '-'))
			return 0;
		if (c == '-' && label == 0)
			return 0;
		if (++label > 63)
			return 0;
	}
	if (dots == 0 || label == 0 || s[len - 1] == '-')
		return 0;
	/* RFC 3696 §2: a top-level label is never all digits, so "1.2.3.4"
	 * is an address, not a host name a receiver could check. */
	for (i = len - label; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return 1;
	return 0;
}

static int
listen_is_any(const struct gw_listen *l)
{
	return l->addr.family == AF_INET
	           ? l->addr.u.v4.s_addr == INADDR_ANY
	           : IN6_IS_ADDR_UNSPECIFIED(&l->addr.u.v6);
}

static void
listen_str(const struct gw_listen *l, char *dst, size_t cap)
{
	char a[INET6_ADDRSTRLEN];

	(void)nat_addr_fmt(&l->addr, a, sizeof(a));
	(void)snprintf(dst, cap,
	    l->addr.family == AF_INET6 ? "[%s]:%u" : "%s:%u", a, l->port);
}

/*
 * The listener just added (the last) against the others, as Linux
 * binds them (gateway/listener.c: SO_REUSEADDR, IPv6 sockets
 * IPV6_V6ONLY): the same address and port twice, or a wildcard and a
 * specific address of one family on one port, fail with EADDRINUSE; an
 * IPv4-mapped address fails on an IPv6-only socket with EINVAL.  The two
 * families never collide.  1 if it may stay, else 0 after perr.
 */
static int
check_listen(struct parse *p)
{
	struct gw_config *c = p->cfg;
	const struct gw_listen *l = &c->listen[c->nlisten - 1];
	char a[80], b[80];
	size_t i;

	listen_str(l, a, sizeof(a));
	if (l->addr.family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&l->addr.u.v6)) {
		perr(p, p->line,
		    "listen: '%s' is an IPv4-mapped address: IPv6 listeners "
		    "take IPv6 only; write the IPv4 address",
		    a);
		return 0;
	}
	for (i = 0; i + 1 < c->nlisten; i++) {
		const struct gw_listen *o = &c->listen[i];

		if (o->addr.family != l->addr.family || o->port != l->port)
			continue;
		listen_str(o, b, sizeof(b));
		if (nat_addr_eq(&o->addr, &l->addr)) {
			perr(p, p->line,
			    "listen: '%s' is given twice (line %u)", a,
			    p->listen_line[i]);
			return 0;
		}
		if (listen_is_any(o) || listen_is_any(l)) {
			perr(p, p->line,
			    "listen: '%s' overlaps '%s' (line %u): a wildcard "
			    "takes every address of its family on that port, "
			    "and the two cannot both be bound",
			    a, b, p->listen_line[i]);
			return 0;
		}
	}
	p->listen_line[c->nlisten - 1] = p->line;
	return 1;
}

static int
add_listen(struct parse *p, const char *v)
{
	struct gw_config *c = p->cfg;
	char item[128];
	const char *s = v;

	/* The first listen line replaces the default list. */
	if (!p->listen_set) {
		c->nlisten = 0;
		p->listen_set = 1;
	}
	while (*s != '\0') {
		size_t n;

		while (*s == ' ' || *s == '\t' || *s == ',')
			s++;
		n = strcspn(s, " \t,");
		if (n == 0)
			break;
		if (n >= sizeof(item)) {
			perr(p, p->line, "listen: address too long");
			return 0;
		}
		memcpy(item, s, n);
		item[n] = '\0';
		if (c->nlisten == GW_LISTEN_MAX) {
			perr(p, p->line, "listen: more than %d addresses",
			    GW_LISTEN_MAX);
			return 0;
		}
		if (nat_addr_parse_port(item, n, 25,
		        &c->listen[c->nlisten].addr,
		        &c->listen[c->nlisten].port) != 0) {
			perr(p, p->line,
			    "listen: '%s' is not ADDRESS[:PORT] (IPv6 as "
			    "[ADDR]:PORT)",
			    item);
			return 0;
		}
		c->nlisten++;
		if (!check_listen(p))
			return 0;
		s += n;
	}
	if (c->nlisten == 0) {
		perr(p, p->line, "listen: no address given");
		return 0;
	}
	return 1;
}

/* user, group: a name or a number, checked against the account
 * database when the daemon starts (gateway/privs.c), not here: -t may
 * run where the account does not exist. */
static int
set_account(struct parse *p, const char *name, const char *v)
{
	char *dst = name[0] == 'u' ? p->cfg->user : p->cfg->group;
	size_t n = strlen(v), i;

	if (n == 0 || n >= GW_NAME_MAX) {
		perr(p, p->line, "%s: want a name of 1..%d characters", name,
		    GW_NAME_MAX - 1);
		return 0;
	}
	for (i = 0; i < n; i++)
		if (!(v[i] >= 'a' && v[i] <= 'z') &&
		    !(v[i] >= 'A' && v[i] <= 'Z') &&
		    !(v[i] >= '0' && v[i] <= '9') && v[i] != '_' &&
		    v[i] != '-' && v[i] != '.') {
			perr(p, p->line, "%s: '%s' is not an account name",
			    name, v);
			return 0;
		}
	memcpy(dst, v, n + 1);
	return 1;
}

/* metrics_listen = ADDRESS:PORT: the Prometheus endpoint.  Loopback or
 * another local address only in spirit; a port is required, since no
 * port is the metrics port by default. */
static int
set_metrics(struct parse *p, const char *v)
{
	struct gw_config *c = p->cfg;
	unsigned port = 0;

	if (nat_addr_parse_port(v, strlen(v), 0, &c->metrics.addr, &port) !=
	        0 ||
	    port == 0) {
		perr(p, p->line,
		    "metrics_listen: '%s' is not ADDRESS:PORT (IPv6 as "
		    "[ADDR]:PORT)",
		    v);
		return 0;
	}
	c->metrics.port = port;
	c->metrics_set = 1;
	return 1;
}

/* bare_line_endings, in [gateway] or [pair NAME]: RFC 5321 §2.3.8,
 * §4.1.1.4 (smtpfix/stream.h). */
static int
parse_bare(struct parse *p, const char *v, int *out)
{
	if (strcmp(v, "reject") == 0)
		*out = SMTPFIX_BARE_REJECT;
	else if (strcmp(v, "inline") == 0)
		*out = SMTPFIX_BARE_INLINE;
	else {
		perr(p, p->line,
		    "bare_line_endings: '%s': want reject or inline", v);
		return 0;
	}
	return 1;
}

static struct pending_pair *
new_pair(struct parse *p)
{
	struct pending_pair *pp;

	if (p->npp == p->ppcap) {
		size_t ncap = p->ppcap ? p->ppcap * 2 : 16;

		pp = realloc(p->pp, ncap * sizeof(*pp));
		if (pp == NULL) {
			perr(p, p->line, "out of memory");
			return NULL;
		}
		p->pp = pp;
		p->ppcap = ncap;
	}
	pp = &p->pp[p->npp++];
	memset(pp, 0, sizeof(*pp));
	pp->opt.line = p->line;
	pp->opt.acl = -1;
	pp->opt.bare = -1;
	pp->opt.identity.mode = pp->opt.identity.required = -1;
	pp->tls.mode = pp->tls.upstream = -1;
	return pp;
}

static int
set_pair_addr(struct parse *p, struct pending_pair *pp, const char *v)
{
	struct nat_addr a;
	const char *why;

	if (nat_addr_parse(v, strlen(v), &a) != 0) {
		perr(p, p->line, "'%s' is not an IPv4 or IPv6 address", v);
		return 0;
	}
	/* Either address of a pair is the destination of clients that
	 * reach the other: neither may be the gateway host itself, its
	 * link, a group or no host (nat/scope.h).  Loopback alone can be
	 * the gateway's own side (a local MTA connects to it); whether it
	 * could also be a destination depends on the listeners, so
	 * build_pairs judges it once they are all known. */
	if ((why = nat_scope_dest_refused(&a)) != NULL &&
	    strcmp(why, "loopback") != 0) {
		perr(p, p->line,
		    "pair %s: '%s' is not a host the gateway may relay to "
		    "(%s)",
		    pp->opt.name, v, why);
		return 0;
	}
	if (a.family == AF_INET) {
		if (pp->have4) {
			perr(p, p->line, "pair has two IPv4 addresses");
			return 0;
		}
		pp->v4 = a;
		pp->have4 = 1;
		pp->line4 = p->line;
	} else {
		if (pp->have6) {
			perr(p, p->line, "pair has two IPv6 addresses");
			return 0;
		}
		pp->v6 = a;
		pp->have6 = 1;
		pp->line6 = p->line;
	}
	return 1;
}

static int
parse_yesno(struct parse *p, const char *name, const char *v, int *out)
{
	if (strcmp(v, "yes") == 0)
		*out = 1;
	else if (strcmp(v, "no") == 0)
		*out = 0;
	else {
		perr(p, p->line, "%s: '%s': want yes or no", name, v);
		return 0;
	}
	return 1;
}

/*
 * identity and identity_required, in [gateway], [pair NAME], [nat64
 * NAME] or [route NAME].  Returns 1 if set, 0 on error, -1 if NAME is neither.
 */
static int
identity_key(
    struct parse *p, const char *name, const char *v, struct gw_identity *id)
{
	enum smtpfix_identity_mode m;

	if (strcmp(name, "identity") == 0) {
		if (smtpfix_identity_mode_parse(v, &m) != 0) {
			perr(p, p->line,
			    "identity: '%s': want xclient, proxy-v1, "
			    "proxy-v2 or none",
			    v);
			return 0;
		}
		id->mode = (int)m;
		return 1;
	}
	if (strcmp(name, "identity_required") == 0)
		return parse_yesno(p, name, v, &id->required);
	return -1;
}

static int
parse_acl(struct parse *p, const char *name, const char *v, struct nat_acl *out)
{
	int rc = nat_acl_parse(v, strlen(v), out);

	if (rc != 0) {
		perr(p, p->line,
		    "%s: '%s': %s (want CIDR prefixes, 'any' or "
		    "'none')",
		    name, v, nat_acl_error(rc));
		return 0;
	}
	return 1;
}

/* A per-pair list lives in cfg->acls, so pairs without one cost
 * nothing. */
static int
add_acl(struct parse *p, const char *name, const char *v)
{
	struct gw_config *c = p->cfg;
	struct nat_acl *a;

	if (c->nacls == p->aclcap) {
		size_t ncap = p->aclcap ? p->aclcap * 2 : 4;

		if ((a = realloc(c->acls, ncap * sizeof(*a))) == NULL) {
			perr(p, p->line, "out of memory");
			return -1;
		}
		c->acls = a;
		p->aclcap = ncap;
	}
	if (!parse_acl(p, name, v, &c->acls[c->nacls]))
		return -1;
	return (int)c->nacls++;
}

static int
parse_source(struct parse *p, const char *name, const char *v, int family,
    struct nat_addr *out)
{
	if (nat_addr_parse(v, strlen(v), out) != 0 || out->family != family) {
		perr(p, p->line, "%s: '%s' is not an %s address", name, v,
		    family == AF_INET ? "IPv4" : "IPv6");
		out->family = 0;
		return 0;
	}
	return 1;
}

static void
tls_raw_free(struct tls_raw *t)
{
	free(t->cert);
	free(t->key);
	free(t->cert2);
	free(t->key2);
	free(t->ca);
	free(t->name);
	t->cert = t->key = t->ca = t->name = NULL;
}

static int
set_str(struct parse *p, const char *name, const char *v, char **dst)
{
	if (*v == '\0') {
		perr(p, p->line, "%s: empty", name);
		return 0;
	}
	if (strlen(v) >= 256) {
		perr(p, p->line, "%s: longer than 255 characters", name);
		return 0;
	}
	free(*dst);
	if ((*dst = strdup(v)) == NULL) {
		perr(p, p->line, "out of memory");
		return 0;
	}
	return 1;
}

/*
 * The STARTTLS keys (RFC 3207), in [gateway] (pair = 0) or [pair NAME].
 * Returns 1 if set, 0 on error, -1 if NAME is not a TLS key.  Files are
 * read later, once the whole file is known (resolve_tls).
 */
static int
tls_key(struct parse *p, struct tls_raw *t, int pair, const char *name,
    const char *v)
{
	enum smtpfix_tls_mode m;
	enum smtpfix_tls_upstream u;

	if (strcmp(name, "tls") == 0) {
		if (smtpfix_tlspolicy_mode_parse(v, &m) != 0) {
			perr(p, p->line,
			    "tls: '%s': want terminate, "
			    "passthrough or strip",
			    v);
			return 0;
		}
		t->mode = (int)m;
		return 1;
	}
	if (strcmp(name, "tls_upstream") == 0) {
		if (smtpfix_tlspolicy_upstream_parse(v, &u) != 0) {
			perr(p, p->line,
			    "tls_upstream: '%s': want "
			    "opportunistic, verify or require",
			    v);
			return 0;
		}
		t->upstream = (int)u;
		return 1;
	}
	/* A relative name would be read against / once detached, and
	 * against the working directory with -f: refused, never guessed. */
	if ((strcmp(name, "tls_cert_file") == 0 ||
	        strcmp(name, "tls_key_file") == 0 ||
	        strcmp(name, "tls_cert2_file") == 0 ||
	        strcmp(name, "tls_key2_file") == 0 ||
	        strcmp(name, "tls_ca_file") == 0) &&
	    *v != '\0' && *v != '/') {
		perr(p, p->line,
		    "%s: '%s' is a relative path: give the full path "
		    "(from /)",
		    name, v);
		return 0;
	}
	if (strcmp(name, "tls_cert_file") == 0 ||
	    strcmp(name, "tls_key_file") == 0) {
		t->cert_line = p->line;
		return set_str(p, name, v, name[4] == 'c' ? &t->cert : &t->key);
	}
	if (strcmp(name, "tls_cert2_file") == 0 ||
	    strcmp(name, "tls_key2_file") == 0) {
		t->cert_line = p->line;
		return set_str(
		    p, name, v, name[4] == 'c' ? &t->cert2 : &t->key2);
	}
	if (strcmp(name, "tls_ca_file") == 0)
		return set_str(p, name, v, &t->ca);
	if (strcmp(name, "tls_server_name") == 0) {
		if (!pair) {
			perr(p, p->line,
			    "tls_server_name: set it per [pair]: "
			    "it names that pair's server");
			return 0;
		}
		/* RFC 6125 §6.4: a DNS name to match the certificate. */
		if (!valid_fqdn(v)) {
			perr(p, p->line,
			    "tls_server_name: '%s' is not a fully "
			    "qualified host name",
			    v);
			return 0;
		}
		return set_str(p, name, v, &t->name);
	}
	return -1;
}

/* [pair NAME]: ipv4 = and ipv6 = (either order). */
static int
pair_key(
    struct parse *p, const char *section, const char *name, const char *value)
{
	struct pending_pair *pp;
	int rc;

	(void)section;
	if (p->npp == 0 || p->pp_section != p->section_line)
		return 0; /* the reader failed to start it: error set */
	pp = &p->pp[p->npp - 1];
	if (strcmp(name, "ipv4") == 0 || strcmp(name, "ipv6") == 0) {
		struct nat_addr a;
		int want = name[3] == '4' ? AF_INET : AF_INET6;

		if (nat_addr_parse(value, strlen(value), &a) != 0 ||
		    a.family != want) {
			perr(p, p->line, "%s: '%s' is not an %s address", name,
			    value, want == AF_INET ? "IPv4" : "IPv6");
			return 0;
		}
		return set_pair_addr(p, pp, value);
	}
	if (strcmp(name, "helo_name") == 0) {
		if (!valid_fqdn(value)) {
			perr(p, p->line,
			    "helo_name: '%s' is not a fully "
			    "qualified host name",
			    value);
			return 0;
		}
		free(pp->opt.helo_name);
		if ((pp->opt.helo_name = strdup(value)) == NULL) {
			perr(p, p->line, "out of memory");
			return 0;
		}
		return 1;
	}
	if (strcmp(name, "fallback_ipv4") == 0) {
		const char *why;

		if (!parse_source(p, name, value, AF_INET, &pp->opt.fallback4))
			return 0;
		if ((why = nat_scope_dest_refused(&pp->opt.fallback4)) !=
		    NULL) {
			perr(p, p->line,
			    "fallback_ipv4: '%s' is not a host "
			    "address (%s)",
			    value, why);
			pp->opt.fallback4.family = 0;
			return 0;
		}
		return 1;
	}
	if (strcmp(name, "allow_clients") == 0)
		return (pp->opt.acl = add_acl(p, name, value)) >= 0;
	if (strcmp(name, "bare_line_endings") == 0)
		return parse_bare(p, value, &pp->opt.bare);
	if ((rc = identity_key(p, name, value, &pp->opt.identity)) >= 0)
		return rc;
	if ((rc = tls_key(p, &pp->tls, 1, name, value)) >= 0)
		return rc;
	perr(p, p->line, "unknown key '%s' in [%s]", name, section);
	return 0;
}

/* [nat64 NAME]: prefix, allow_clients, allow_destinations. */
static int
nat64_key(
    struct parse *p, const char *section, const char *name, const char *value)
{
	struct gw_nat64 *n;
	struct nat_cidr cidr;
	struct in6_addr wkp;
	const char *why;
	int rc;

	if (p->cfg->nnat64 == 0 || p->nat64_section != p->section_line)
		return 0; /* the reader reported the section already */
	n = &p->cfg->nat64[p->cfg->nnat64 - 1];
	if (strcmp(name, "prefix") == 0) {
		if (nat_cidr_parse(value, strlen(value), &cidr) != 0 ||
		    cidr.addr.family != AF_INET6 ||
		    nat_6052_prefix_valid(&cidr.addr.u.v6, cidr.plen) != 0) {
			perr(p, p->line,
			    "prefix: '%s': want an IPv6 prefix of "
			    "length 32, 40, 48, 56, 64 or 96 with a zero u "
			    "octet (RFC 6052 section 2.2)",
			    value);
			return 0;
		}
		/* IPv4 addresses are embedded under it as destinations of
		 * packets (RFC 6052 §2.2): not in host-local, link or
		 * group space (nat/scope.h). */
		if ((why = nat_scope_dest_refused(&cidr.addr)) != NULL) {
			perr(p, p->line,
			    "prefix: '%s' lies in %s space: the addresses "
			    "under it would not be hosts",
			    value, why);
			return 0;
		}
		n->prefix = cidr.addr.u.v6;
		n->plen = cidr.plen;
		n->prefix_line = p->line;
		(void)inet_pton(AF_INET6, NAT_6052_WKP, &wkp);
		n->wkp = cidr.plen == 96 &&
		         memcmp(&wkp, &n->prefix, sizeof(wkp)) == 0;
		return 1;
	}
	if (strcmp(name, "allow_clients") == 0) {
		n->clients_set = 1;
		return parse_acl(p, name, value, &n->clients);
	}
	if (strcmp(name, "allow_destinations") == 0)
		return parse_acl(p, name, value, &n->dests);
	if (strcmp(name, "translate_sources") == 0)
		return parse_yesno(p, name, value, &n->translate_sources);
	if ((rc = identity_key(p, name, value, &n->identity)) >= 0)
		return rc;
	perr(p, p->line, "unknown key '%s' in [%s]", name, section);
	return 0;
}

/* domains = a, .b, c: stored one by one (nat_mx_domain_listed). */
static int
route_domains(struct parse *p, struct gw_route *r, const char *v)
{
	const char *q = v;

	while (*q != '\0') {
		size_t n;
		char one[GW_FQDN_MAX + 2];

		while (*q == ' ' || *q == '\t' || *q == ',')
			q++;
		if (*q == '\0')
			break;
		n = strcspn(q, " \t,");
		if (n >= sizeof(one)) {
			perr(p, p->line, "domains: an entry is too long");
			return 0;
		}
		memcpy(one, q, n);
		one[n] = '\0';
		if (!valid_fqdn(one[0] == '.' ? one + 1 : one)) {
			perr(p, p->line,
			    "domains: '%s' is not a domain name (write "
			    "example.org, or .example.org for the names "
			    "below it)",
			    one);
			return 0;
		}
		if (r->ndomains == GW_ROUTE_DOMAINS) {
			perr(p, p->line, "domains: more than %d entries",
			    GW_ROUTE_DOMAINS);
			return 0;
		}
		if ((r->domains[r->ndomains] = strdup(one)) == NULL) {
			perr(p, p->line, "out of memory");
			return 0;
		}
		r->ndomains++;
		q += n;
	}
	return 1;
}

/* [route NAME]: address, domains, serve_published, smarthost,
 * allow_clients, size_max_bytes, identity, identity_required and the TLS
 * keys. */
static int
route_key(
    struct parse *p, const char *section, const char *name, const char *value)
{
	struct gw_config *c = p->cfg;
	struct gw_route *r;
	int rc;

	if (c->nroutes == 0 || p->route_section != p->section_line)
		return 0; /* the reader reported the section already */
	r = &c->routes[c->nroutes - 1];
	if (strcmp(name, "address") == 0) {
		struct nat_addr a;
		const char *why;

		if (nat_addr_parse(value, strlen(value), &a) != 0) {
			perr(p, p->line, "address: '%s' is not an address",
			    value);
			return 0;
		}
		if ((why = nat_scope_dest_refused(&a)) != NULL) {
			perr(p, p->line,
			    "address: '%s' lies in %s space: clients could "
			    "not reach it",
			    value, why);
			return 0;
		}
		if (r->naddrs == GW_ROUTE_ADDRS) {
			perr(p, p->line, "more than %d address = in [%s]",
			    GW_ROUTE_ADDRS, section);
			return 0;
		}
		r->addrs[r->naddrs++] = a;
		return 1;
	}
	if (strcmp(name, "domains") == 0)
		return route_domains(p, r, value);
	if (strcmp(name, "serve_published") == 0)
		return parse_yesno(p, name, value, &r->serve_published);
	if (strcmp(name, "smarthost") == 0)
		return parse_yesno(p, name, value, &r->smarthost);
	if (strcmp(name, "allow_clients") == 0) {
		r->clients_set = 1;
		return parse_acl(p, name, value, &r->clients);
	}
	if (strcmp(name, "size_max_bytes") == 0) {
		unsigned long n;

		/* RFC 1870 §4: a decimal count of octets; 0 offers no
		 * SIZE. */
		if (parse_uint(value, 0, 4294967295UL, &n) != 0) {
			perr(p, p->line, "size_max_bytes: want 0..4294967295");
			return 0;
		}
		r->size_max = n;
		return 1;
	}
	if ((rc = identity_key(p, name, value, &r->identity)) >= 0)
		return rc;
	if (strcmp(name, "tls_server_name") != 0 &&
	    (rc = tls_key(p, &p->rtls[c->nroutes - 1], 0, name, value)) >= 0)
		return rc;
	perr(p, p->line, "unknown key '%s' in [%s]", name, section);
	return 0;
}

/* [packet]: the per-packet translator (gateway/nfq). */
/* A whole-number key: name, where it goes, its range. */
struct uint_key {
	const char *key;
	size_t off; /* of an unsigned in the struct */
	unsigned long min, max;
};

/* Sets the key of tab[0..n) called name in base; -1 if none is. */
static int
uint_key(struct parse *p, const struct uint_key *tab, size_t n, void *base,
    const char *name, const char *v)
{
	unsigned long x;
	size_t i;

	for (i = 0; i < n; i++) {
		if (strcmp(name, tab[i].key) != 0)
			continue;
		if (parse_uint(v, tab[i].min, tab[i].max, &x) != 0) {
			perr(p, p->line, "%s: want a whole number %lu..%lu",
			    name, tab[i].min, tab[i].max);
			return 0;
		}
		*(unsigned *)(void *)((char *)base + tab[i].off) = (unsigned)x;
		return 1;
	}
	return -1;
}

static int
packet_key(struct parse *p, const char *name, const char *v)
{
	struct gw_packet *k = &p->cfg->packet;
	int rc;
	static const struct uint_key uints[] = {
	    {"queue", offsetof(struct gw_packet, queue), 0, 65535},
	    {"queue_max_packets", offsetof(struct gw_packet, queue_max_packets),
	        1, 1000000},
	    /* RFC 791 §3.2: 68; RFC 8200 §5: 1280. */
	    {"ipv4_mtu_bytes", offsetof(struct gw_packet, ipv4_mtu_bytes), 68,
	        65535},
	    {"ipv6_mtu_bytes", offsetof(struct gw_packet, ipv6_mtu_bytes), 1280,
	        65535},
	    {"ipv6_link_mtu_bytes",
	        offsetof(struct gw_packet, ipv6_link_mtu_bytes), 1280, 65535},
	};

	if ((rc = uint_key(
	         p, uints, sizeof(uints) / sizeof(uints[0]), k, name, v)) >= 0)
		return rc;
	if (strcmp(name, "enable") == 0)
		return parse_yesno(p, name, v, &k->enable);
	if (strcmp(name, "icmp_errors") == 0)
		return parse_yesno(p, name, v, &k->icmp_errors);
	if (strcmp(name, "engine") == 0) {
		if (strcmp(v, "nfqueue") == 0 || strcmp(v, "bpf") == 0) {
			k->engine =
			    v[0] == 'b' ? GW_PACKET_BPF : GW_PACKET_NFQUEUE;
			return 1;
		}
		perr(p, p->line, "engine: want nfqueue or bpf");
		return 0;
	}
	perr(p, p->line, "unknown key '%s' in [packet]", name);
	return 0;
}

/* [pairs]: any number of "pair = IPV4 IPV6" lines (either order). */
static int
pairs_key(struct parse *p, const char *name, const char *value)
{
	struct pending_pair *pp;
	char a[64];
	size_t n;

	if (strcmp(name, "pair") != 0) {
		perr(p, p->line, "unknown key '%s' in [pairs]", name);
		return 0;
	}
	if ((pp = new_pair(p)) == NULL)
		return 0;
	p->pp_section = 0;
	(void)snprintf(pp->opt.name, sizeof(pp->opt.name), "line%u", p->line);
	for (int i = 0; i < 2; i++) {
		while (*value == ' ' || *value == '\t')
			value++;
		n = strcspn(value, " \t");
		if (n == 0 || n >= sizeof(a)) {
			perr(p, p->line, "pair: want 'IPV4 IPV6'");
			return 0;
		}
		memcpy(a, value, n);
		a[n] = '\0';
		if (!set_pair_addr(p, pp, a))
			return 0;
		value += n;
	}
	while (*value == ' ' || *value == '\t')
		value++;
	if (*value != '\0' || !pp->have4 || !pp->have6) {
		perr(p, p->line, "pair: want one IPv4 and one IPv6 address");
		return 0;
	}
	return 1;
}

static int
gateway_key(struct parse *p, const char *name, const char *v)
{
	struct gw_config *c = p->cfg;
	unsigned long n;
	int rc;
	static const struct uint_key uints[] = {
	    {"upstream_port", offsetof(struct gw_config, upstream_port), 1,
	        65535},
	    {"max_sessions", offsetof(struct gw_config, max_sessions), 1,
	        1000000},
	    {"workers", offsetof(struct gw_config, workers), 1, 64},
	    {"max_sessions_per_client",
	        offsetof(struct gw_config, max_sessions_per_client), 1,
	        1000000},
	    {"connect_timeout_s", offsetof(struct gw_config, connect_timeout_s),
	        1, 3600},
	    {"greeting_timeout_s",
	        offsetof(struct gw_config, greeting_timeout_s), 1, 3600},
	    {"command_timeout_s", offsetof(struct gw_config, command_timeout_s),
	        1, 3600},
	    {"reply_timeout_s", offsetof(struct gw_config, reply_timeout_s), 1,
	        3600},
	    {"data_init_timeout_s",
	        offsetof(struct gw_config, data_init_timeout_s), 1, 3600},
	    {"data_timeout_s", offsetof(struct gw_config, data_timeout_s), 1,
	        3600},
	    {"data_end_timeout_s",
	        offsetof(struct gw_config, data_end_timeout_s), 1, 3600},
	    {"tls_fallback_remember_s",
	        offsetof(struct gw_config, tls_fallback_remember_s), 0, 604800},
	    {"dns_timeout_ms", offsetof(struct gw_config, dns_timeout_ms), 100,
	        60000},
	    {"dns_cache_max_s", offsetof(struct gw_config, dns_cache_max_s), 0,
	        86400},
	    {"fallback_remember_s",
	        offsetof(struct gw_config, fallback_remember_s), 0, 604800},
	    {"spool_memory_bytes",
	        offsetof(struct gw_config, spool_memory_bytes), 0, 1U << 30},
	    {"spool_max_bytes", offsetof(struct gw_config, spool_max_bytes), 1,
	        4294967295UL},
	    {"drain_timeout_s", offsetof(struct gw_config, drain_timeout_s), 0,
	        86400},
	};

	if ((rc = uint_key(
	         p, uints, sizeof(uints) / sizeof(uints[0]), c, name, v)) >= 0)
		return rc;
	if ((rc = tls_key(p, &p->gtls, 0, name, v)) >= 0)
		return rc;
	if ((rc = identity_key(p, name, v, &c->identity)) >= 0)
		return rc;
	if (strcmp(name, "fqdn") == 0) {
		if (!valid_fqdn(v)) {
			perr(p, p->line,
			    "fqdn: '%s' is not a fully qualified host name", v);
			return 0;
		}
		memcpy(c->fqdn, v, strlen(v) + 1);
	} else if (strcmp(name, "listen") == 0) {
		return add_listen(p, v);
	} else if (strcmp(name, "dns_servers") == 0) {
		/* c-ares's CSV form: ADDR, [ADDR]:PORT, ... */
		for (const char *q = v; *q != '\0'; q++)
			if (!((*q >= '0' && *q <= '9') ||
			        (*q >= 'a' && *q <= 'f') ||
			        (*q >= 'A' && *q <= 'F') || *q == '.' ||
			        *q == ':' || *q == '[' || *q == ']' ||
			        *q == ',' || *q == ' ')) {
				perr(p, p->line,
				    "dns_servers: '%s': want addresses "
				    "(ADDR or [ADDR]:PORT) separated by commas",
				    v);
				return 0;
			}
		if (strlen(v) >= sizeof(c->dns_servers)) {
			perr(p, p->line, "dns_servers: too long");
			return 0;
		}
		memcpy(c->dns_servers, v, strlen(v) + 1);
	} else if (strcmp(name, "spool_dir") == 0) {
		if (v[0] != '/' || strlen(v) >= sizeof(c->spool_dir)) {
			perr(p, p->line,
			    "spool_dir: '%s': want an absolute path shorter "
			    "than %zu characters",
			    v, sizeof(c->spool_dir));
			return 0;
		}
		memcpy(c->spool_dir, v, strlen(v) + 1);
	} else if (strcmp(name, "user") == 0 || strcmp(name, "group") == 0) {
		return set_account(p, name, v);
	} else if (strcmp(name, "metrics_listen") == 0) {
		return set_metrics(p, v);
	} else if (strcmp(name, "transparent") == 0) {
		return parse_yesno(p, name, v, &c->transparent);
	} else if (strcmp(name, "source_pairing") == 0) {
		return parse_yesno(p, name, v, &c->source_pairing);
	} else if (strcmp(name, "address_hygiene") == 0) {
		if (strcmp(v, "reject") == 0)
			c->hygiene = 1;
		else if (strcmp(v, "pass") == 0)
			c->hygiene = 0;
		else {
			perr(p, p->line,
			    "address_hygiene: '%s': want reject "
			    "or pass",
			    v);
			return 0;
		}
	} else if (strcmp(name, "bare_line_endings") == 0) {
		int b;

		if (!parse_bare(p, v, &b))
			return 0;
		c->pol.bare = (enum smtpfix_bare)b;
	} else if (strcmp(name, "source_ipv4") == 0) {
		return parse_source(p, name, v, AF_INET, &c->source4);
	} else if (strcmp(name, "source_ipv6") == 0) {
		return parse_source(p, name, v, AF_INET6, &c->source6);
	} else if (strcmp(name, "allow_clients") == 0) {
		return parse_acl(p, name, v, &c->clients);
	} else if (strcmp(name, "helo_rewrite") == 0) {
		if (strcmp(v, "always") == 0)
			c->pol.helo = SMTPFIX_HELO_ALWAYS;
		else if (strcmp(v, "literals") == 0)
			c->pol.helo = SMTPFIX_HELO_LITERALS;
		else if (strcmp(v, "off") == 0)
			c->pol.helo = SMTPFIX_HELO_OFF;
		else {
			perr(p, p->line,
			    "helo_rewrite: '%s': want always, literals or off",
			    v);
			return 0;
		}
	} else if (strcmp(name, "buffer_bytes") == 0) {
		/* Each buffer must hold a full step (smtpfix/stream.h). */
		if (parse_uint(v, 2 * SMTPFIX_EMIT_MAX, 16UL << 20, &n) != 0) {
			perr(p, p->line, "buffer_bytes: want %u..%lu",
			    2 * SMTPFIX_EMIT_MAX, 16UL << 20);
			return 0;
		}
		c->buffer_bytes = n;
	} else if (strcmp(name, "command_line_max_bytes") == 0) {
		if (parse_uint(v, SMTPFIX_CMD_MIN, SMTPFIX_CMD_MAX_CAP, &n) !=
		    0) {
			perr(p, p->line, "command_line_max_bytes: want %u..%u",
			    SMTPFIX_CMD_MIN, SMTPFIX_CMD_MAX_CAP);
			return 0;
		}
		c->pol.cmd_max = n;
	} else if (strcmp(name, "log_level") == 0) {
		if (strcmp(v, "err") == 0)
			c->log_level = LOG_ERR;
		else if (strcmp(v, "warning") == 0)
			c->log_level = LOG_WARNING;
		else if (strcmp(v, "info") == 0)
			c->log_level = LOG_INFO;
		else if (strcmp(v, "debug") == 0)
			c->log_level = LOG_DEBUG;
		else {
			perr(p, p->line,
			    "log_level: '%s': want err, warning, info or debug",
			    v);
			return 0;
		}
	} else {
		perr(p, p->line, "unknown key '%s' in [gateway]", name);
		return 0;
	}
	return 1;
}

/*
 * Every key of smtp64.conf, by kind of section.  The handler refuses any
 * other before the section's own function sees it, so this table is the
 * whole list: the docs test (config_test.c) checks each key is in
 * smtp64.conf(5) and smtp64.conf.example.  Keep it in step with the
 * *_key functions.
 */
static const struct gw_config_key keys[] = {
    {"gateway", "fqdn"},
    {"gateway", "listen"},
    {"gateway", "helo_rewrite"},
    {"gateway", "upstream_port"},
    {"gateway", "max_sessions"},
    {"gateway", "max_sessions_per_client"},
    {"gateway", "workers"},
    {"gateway", "buffer_bytes"},
    {"gateway", "command_line_max_bytes"},
    {"gateway", "log_level"},
    {"gateway", "connect_timeout_s"},
    {"gateway", "greeting_timeout_s"},
    {"gateway", "command_timeout_s"},
    {"gateway", "reply_timeout_s"},
    {"gateway", "data_init_timeout_s"},
    {"gateway", "data_timeout_s"},
    {"gateway", "data_end_timeout_s"},
    {"gateway", "transparent"},
    {"gateway", "source_pairing"},
    {"gateway", "address_hygiene"},
    {"gateway", "source_ipv4"},
    {"gateway", "source_ipv6"},
    {"gateway", "allow_clients"},
    {"gateway", "tls"},
    {"gateway", "tls_cert_file"},
    {"gateway", "tls_key_file"},
    {"gateway", "tls_cert2_file"},
    {"gateway", "tls_key2_file"},
    {"gateway", "tls_upstream"},
    {"gateway", "tls_ca_file"},
    {"gateway", "bare_line_endings"},
    {"gateway", "tls_fallback_remember_s"},
    {"gateway", "identity"},
    {"gateway", "identity_required"},
    {"gateway", "dns_servers"},
    {"gateway", "dns_timeout_ms"},
    {"gateway", "dns_cache_max_s"},
    {"gateway", "fallback_remember_s"},
    {"gateway", "spool_dir"},
    {"gateway", "spool_memory_bytes"},
    {"gateway", "spool_max_bytes"},
    {"gateway", "user"},
    {"gateway", "group"},
    {"gateway", "drain_timeout_s"},
    {"gateway", "metrics_listen"},
    {"pair", "ipv4"},
    {"pair", "ipv6"},
    {"pair", "helo_name"},
    {"pair", "allow_clients"},
    {"pair", "tls"},
    {"pair", "tls_cert_file"},
    {"pair", "tls_key_file"},
    {"pair", "tls_cert2_file"},
    {"pair", "tls_key2_file"},
    {"pair", "tls_upstream"},
    {"pair", "tls_ca_file"},
    {"pair", "tls_server_name"},
    {"pair", "bare_line_endings"},
    {"pair", "identity"},
    {"pair", "identity_required"},
    {"pair", "fallback_ipv4"},
    {"pairs", "pair"},
    {"nat64", "prefix"},
    {"nat64", "allow_clients"},
    {"nat64", "allow_destinations"},
    {"nat64", "translate_sources"},
    {"nat64", "identity"},
    {"nat64", "identity_required"},
    {"route", "address"},
    {"route", "domains"},
    {"route", "serve_published"},
    {"route", "smarthost"},
    {"route", "allow_clients"},
    {"route", "size_max_bytes"},
    {"route", "tls"},
    {"route", "tls_cert_file"},
    {"route", "tls_key_file"},
    {"route", "tls_cert2_file"},
    {"route", "tls_key2_file"},
    {"route", "tls_upstream"},
    {"route", "tls_ca_file"},
    {"route", "identity"},
    {"route", "identity_required"},
    {"packet", "enable"},
    {"packet", "queue"},
    {"packet", "queue_max_packets"},
    {"packet", "icmp_errors"},
    {"packet", "ipv4_mtu_bytes"},
    {"packet", "ipv6_mtu_bytes"},
    {"packet", "ipv6_link_mtu_bytes"},
    {"packet", "engine"},
};

const struct gw_config_key *
gw_config_keys(size_t *n)
{
	*n = sizeof(keys) / sizeof(keys[0]);
	return keys;
}

/* How a section kind is written in the file, for messages. */
static const char *
kind_header(const char *kind)
{
	if (strcmp(kind, "pair") == 0)
		return "[pair NAME]";
	if (strcmp(kind, "nat64") == 0)
		return "[nat64 NAME]";
	if (strcmp(kind, "gateway") == 0)
		return "[gateway]";
	if (strcmp(kind, "pairs") == 0)
		return "[pairs]";
	if (strcmp(kind, "route") == 0)
		return "[route NAME]";
	return "[packet]";
}

/* The kind of a section header's text ("pair" for "pair mx6"), or NULL
 * if smtp64.conf has no such section. */
static const char *
section_kind(const char *section)
{
	if (strcmp(section, "gateway") == 0 || strcmp(section, "pairs") == 0 ||
	    strcmp(section, "packet") == 0)
		return section;
	if (strncmp(section, "pair", 4) == 0 &&
	    (section[4] == ' ' || section[4] == '\t'))
		return "pair";
	if (strncmp(section, "nat64", 5) == 0 &&
	    (section[5] == ' ' || section[5] == '\t'))
		return "nat64";
	if (strncmp(section, "route", 5) == 0 &&
	    (section[5] == ' ' || section[5] == '\t'))
		return "route";
	return NULL;
}

/* 1 if name is a key of sections of this kind; else 0 after perr, which
 * names the section the key belongs in, if any. */
static int
known_key(
    struct parse *p, const char *kind, const char *section, const char *name)
{
	const char *other = NULL;
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (strcmp(keys[i].name, name) != 0)
			continue;
		if (strcmp(keys[i].section, kind) == 0)
			return 1;
		if (other == NULL)
			other = keys[i].section;
	}
	if (other != NULL)
		perr(p, p->line, "unknown key '%s' in [%s] (it belongs in %s)",
		    name, section, kind_header(other));
	else
		perr(p, p->line, "unknown key '%s' in [%s]", name, section);
	return 0;
}

static int
handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse *p = user;
	const char *kind = section_kind(section);

	if (kind != NULL && !known_key(p, kind, section, name))
		return 0;
	if (strcmp(section, "gateway") == 0) {
		p->gateway_line = p->section_line;
		return gateway_key(p, name, value);
	}
	if (strcmp(section, "pairs") == 0)
		return pairs_key(p, name, value);
	if (strcmp(section, "packet") == 0)
		return packet_key(p, name, value);
	if (strncmp(section, "pair", 4) == 0 &&
	    (section[4] == ' ' || section[4] == '\t'))
		return pair_key(p, section, name, value);
	if (strncmp(section, "nat64", 5) == 0 &&
	    (section[5] == ' ' || section[5] == '\t'))
		return nat64_key(p, section, name, value);
	if (strncmp(section, "route", 5) == 0 &&
	    (section[5] == ' ' || section[5] == '\t'))
		return route_key(p, section, name, value);
	if (section[0] == '\0') {
		perr(p, p->line,
		    "'%s' outside any section: put it under "
		    "[gateway]",
		    name);
		return 0;
	}
	perr(p, p->section_line, "unknown section [%s]", section);
	return 0;
}

void
gw_config_defaults(struct gw_config *c)
{
	memset(c, 0, sizeof(*c));
	c->pol.fqdn = c->fqdn;
	c->tls_default.cert = c->tls_default.cli = -1;
	c->pol.helo = SMTPFIX_HELO_ALWAYS;
	c->pol.cmd_max = 2048;
	c->pol.reply_max = 2048;
	c->pol.bare = SMTPFIX_BARE_INLINE;
	c->source_pairing = 1;
	c->hygiene = 1;
	c->clients.flags = NAT_ACL_ANY;
	c->upstream_port = 25;
	c->max_sessions = 1000;
	c->max_sessions_per_client = 50;
	c->workers = 1;
	c->buffer_bytes = 16384;
	c->log_level = LOG_INFO;
	c->connect_timeout_s = 30;
	c->greeting_timeout_s = 300;
	c->command_timeout_s = 300;
	c->reply_timeout_s = 300;
	c->data_init_timeout_s = 120;
	c->data_timeout_s = 180;
	c->data_end_timeout_s = 600;
	c->tls_fallback_remember_s = 3600;
	c->dns_timeout_ms = 2000;
	c->dns_cache_max_s = 3600;
	c->fallback_remember_s = 3600;
	memcpy(c->spool_dir, "/var/spool/smtp64", sizeof("/var/spool/smtp64"));
	c->spool_memory_bytes = 1U << 20;
	c->spool_max_bytes = 64U << 20;
	c->drain_timeout_s = 30;
	c->packet.queue_max_packets = 4096;
	c->packet.icmp_errors = 1;
	c->packet.ipv4_mtu_bytes = NAT_XLAT_MTU4_DEFAULT;
	c->packet.ipv6_mtu_bytes = NAT_XLAT_MTU6_DEFAULT;
	/* Default listeners: every address, both families, port 25. */
	(void)nat_addr_parse("0.0.0.0", 7, &c->listen[0].addr);
	c->listen[0].port = 25;
	(void)nat_addr_parse("::", 2, &c->listen[1].addr);
	c->listen[1].port = 25;
	c->nlisten = 2;
}

/* 1 if a client can reach a on the gateway: a listener of its family
 * is a wildcard or a itself, or TPROXY hands us any address. */
static int
reachable(const struct gw_config *c, const struct nat_addr *a)
{
	size_t i;

	if (c->transparent)
		return 1;
	for (i = 0; i < c->nlisten; i++)
		if (c->listen[i].addr.family == a->family &&
		    (listen_is_any(&c->listen[i]) ||
		        nat_addr_eq(&c->listen[i].addr, a)))
			return 1;
	return 0;
}

/*
 * A pair address that nat_scope_dest_refused lets through only as the
 * gateway's own side (loopback): refused when clients can reach its
 * partner, since the session would then go to the gateway host itself.
 * 0, or -1 after perr.
 */
static int
check_pair_dest(struct parse *p, const struct pending_pair *pp)
{
	const struct nat_addr *a[2] = {&pp->v4, &pp->v6};
	const struct nat_addr *b[2] = {&pp->v6, &pp->v4};
	const unsigned line[2] = {pp->line4, pp->line6};
	char as[INET6_ADDRSTRLEN], bs[INET6_ADDRSTRLEN];
	const char *why;
	int i;

	for (i = 0; i < 2; i++) {
		if ((why = nat_scope_dest_refused(a[i])) == NULL ||
		    !reachable(p->cfg, b[i]))
			continue;
		(void)nat_addr_fmt(a[i], as, sizeof(as));
		(void)nat_addr_fmt(b[i], bs, sizeof(bs));
		perr(p, line[i],
		    "pair %s: '%s' is not a host the gateway may relay to "
		    "(%s): clients that reach %s%s would be relayed to the "
		    "gateway host itself",
		    pp->opt.name, as, why, bs,
		    p->cfg->transparent ? " (transparent = yes)"
		                        : " (see listen)");
		return -1;
	}
	return 0;
}

/* 1 if one prefix holds the other (RFC 4632 §3.1: equal, or the longer
 * one inside the shorter). */
static int
nat64_overlap(const struct gw_nat64 *a, const struct gw_nat64 *b)
{
	struct nat_cidr ca, cb;
	struct nat_addr xa, xb;

	memset(&ca, 0, sizeof(ca));
	memset(&cb, 0, sizeof(cb));
	ca.addr.family = cb.addr.family = AF_INET6;
	ca.addr.u.v6 = a->prefix;
	ca.plen = a->plen;
	cb.addr.u.v6 = b->prefix;
	cb.plen = b->plen;
	xa = ca.addr;
	xb = cb.addr;
	return nat_cidr_match(&ca, &xb) || nat_cidr_match(&cb, &xa);
}

/* Checks each [route] and builds the view nat/dest.h reads. */
static int
build_routes(struct parse *p)
{
	struct gw_config *c = p->cfg;
	size_t i, j, k;

	c->nown = 0;
	for (i = 0; i < c->nroutes; i++) {
		struct gw_route *r = &c->routes[i];

		if (r->naddrs == 0) {
			perr(p, r->line,
			    "[route %s] needs address = (where clients reach "
			    "it)",
			    r->name);
			return -1;
		}
		if (r->ndomains == 0 && !r->serve_published && !r->smarthost) {
			perr(p, r->line,
			    "[route %s] serves no domain: set domains =, "
			    "serve_published = yes or smarthost = yes",
			    r->name);
			return -1;
		}
		/* Seed 002: a cross-realm relay for any destination
		 * serves only its own customers. */
		if (r->smarthost &&
		    (!r->clients_set || (r->clients.flags & NAT_ACL_ANY))) {
			perr(p, r->line,
			    "[route %s] smarthost = yes needs allow_clients = "
			    "(the networks it relays for; never any)",
			    r->name);
			return -1;
		}
		for (j = 0; j < r->naddrs; j++) {
			char a[INET6_ADDRSTRLEN];

			(void)nat_addr_fmt(&r->addrs[j], a, sizeof(a));
			if (c->pairs.n > 0 &&
			    (r->addrs[j].family == AF_INET
			            ? nat_pairs_by_v4(
			                  &c->pairs, &r->addrs[j].u.v4) != NULL
			            : nat_pairs_by_v6(&c->pairs,
			                  &r->addrs[j].u.v6) != NULL)) {
				perr(p, r->line,
				    "[route %s]: %s is also in a pair", r->name,
				    a);
				return -1;
			}
			if (!reachable(c, &r->addrs[j])) {
				perr(p, r->line,
				    "[route %s]: no listener reaches %s (see "
				    "listen)",
				    r->name, a);
				return -1;
			}
			for (k = 0; k < c->nown; k++)
				if (nat_addr_eq(&c->own[k], &r->addrs[j])) {
					perr(p, r->line,
					    "[route %s]: %s is in another "
					    "[route]",
					    r->name, a);
					return -1;
				}
			c->own[c->nown++] = r->addrs[j];
		}
	}
	for (i = 0; i < c->nlisten; i++)
		if (!listen_is_any(&c->listen[i]))
			c->own[c->nown++] = c->listen[i].addr;
	for (i = 0; i < c->nroutes; i++) {
		struct gw_route *r = &c->routes[i];
		struct nat_dest_route *d = &c->dest_route[i];

		memset(d, 0, sizeof(*d));
		d->addrs = r->addrs;
		d->naddrs = r->naddrs;
		d->domains = (const char *const *)r->domains;
		d->ndomains = r->ndomains;
		d->serve_published = r->serve_published;
		d->smarthost = r->smarthost;
		d->clients = r->clients_set ? &r->clients : NULL;
		d->own = c->own;
		d->nown = c->nown;
		d->own_name = c->fqdn;
		d->own_name_len = strlen(c->fqdn);
	}
	return 0;
}

/* The view nat/dest.h decides from: pointers into c, which is loaded in
 * place and never copied. */
static int
build_dest(struct parse *p)
{
	struct gw_config *c = p->cfg;
	size_t i;

	if (c->pairs.n > 0 && (c->pair_clients = calloc(c->pairs.n,
	                           sizeof(*c->pair_clients))) == NULL) {
		perr(p, 0, "out of memory for %zu pairs", c->pairs.n);
		return -1;
	}
	for (i = 0; i < c->pairs.n; i++) {
		int acl = c->pair_opt[i].acl;

		c->pair_clients[i] = acl >= 0 ? &c->acls[acl] : &c->clients;
	}
	for (i = 0; i < c->nnat64; i++) {
		c->dest_prefix[i].prefix = c->nat64[i].prefix;
		c->dest_prefix[i].plen = c->nat64[i].plen;
		c->dest_prefix[i].wkp = c->nat64[i].wkp;
		c->dest_prefix[i].clients = &c->nat64[i].clients;
		c->dest_prefix[i].dests = &c->nat64[i].dests;
	}
	if (build_routes(p) != 0)
		return -1;
	c->dest.routes = c->dest_route;
	c->dest.nroutes = c->nroutes;
	c->dest.pairs = &c->pairs;
	c->dest.pair_clients = c->pair_clients;
	c->dest.prefixes = c->dest_prefix;
	c->dest.nprefixes = c->nnat64;
	c->dest.source_pairing = c->source_pairing;
	c->dest.source4 = c->source4;
	c->dest.source6 = c->source6;
	return 0;
}

static int
build_pairs(struct parse *p)
{
	struct gw_config *c = p->cfg;
	size_t i;

	for (i = 0; i < c->nnat64; i++) {
		const struct gw_nat64 *n = &c->nat64[i];

		if (n->plen == 0) {
			perr(p, n->line, "[nat64 %s] needs prefix =", n->name);
			return -1;
		}
		/* Keith Moore's review: a cross-realm relay only serves its
		 * own customers; the operator must name them. */
		if (!n->clients_set) {
			perr(p, n->line,
			    "[nat64 %s] needs allow_clients = "
			    "(who may relay through the prefix; never open)",
			    n->name);
			return -1;
		}
		/* An address under two prefixes would have two meanings,
		 * and the second section's allow_clients would never
		 * apply: the first prefix that holds it wins. */
		for (size_t j = 0; j < i; j++) {
			const struct gw_nat64 *o = &c->nat64[j];
			char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];

			if (!nat64_overlap(n, o))
				continue;
			(void)inet_ntop(AF_INET6, &n->prefix, a, sizeof(a));
			(void)inet_ntop(AF_INET6, &o->prefix, b, sizeof(b));
			perr(p, n->prefix_line,
			    "[nat64 %s] prefix %s/%u overlaps %s/%u of "
			    "[nat64 %s] (line %u): each address must be "
			    "under one prefix only",
			    n->name, a, n->plen, b, o->plen, o->name,
			    o->prefix_line);
			return -1;
		}
		/* RFC 6052 §3.1 holds for packets whatever
		 * allow_destinations lets SMTP reach. */
		c->xlat_prefix[i].prefix = n->prefix;
		c->xlat_prefix[i].plen = n->plen;
		c->xlat_prefix[i].global_only = n->wkp;
		c->xlat_prefix[i].sources = n->translate_sources;
	}
	if (p->npp == 0 && c->nnat64 == 0 && c->nroutes == 0) {
		perr(p, p->line > 0 ? p->line : 1,
		    "no pairs: add a [pair NAME] section with ipv4 = and "
		    "ipv6 =, a [nat64 NAME] or a [route NAME] section");
		return -1;
	}
	if (nat_pairs_init(&c->pairs, p->npp) != 0 ||
	    (p->npp > 0 &&
	        (c->pair_opt = calloc(p->npp, sizeof(*c->pair_opt))) == NULL)) {
		perr(p, 0, "out of memory for %zu pairs", p->npp);
		return -1;
	}
	for (i = 0; i < p->npp; i++) {
		struct pending_pair *pp = &p->pp[i];

		if (!pp->have4 || !pp->have6) {
			perr(p, pp->opt.line, "pair %s needs ipv4 and ipv6",
			    pp->opt.name);
			return -1;
		}
		if (check_pair_dest(p, pp) != 0)
			return -1;
		if (nat_pairs_add(&c->pairs, &pp->v4.u.v4, &pp->v6.u.v6,
		        (uint32_t)c->pairs.n) != 0) {
			perr(p, pp->opt.line,
			    errno == EEXIST ? "pair %s: an address of it is "
			                      "already in another pair"
			                    : "pair %s: cannot add",
			    pp->opt.name);
			return -1;
		}
		c->pair_opt[c->pairs.n - 1] = pp->opt;
		pp->opt.helo_name = NULL; /* moved */
	}
	return build_dest(p);
}

/*
 * The TLS a session under one pair gets: the pair's keys (pr; NULL for the
 * [gateway] default), else those of [gateway], else the defaults
 * (terminate where a certificate is configured, else passthrough;
 * opportunistic upstream).  Loads what terminate needs into cfg->tls.
 * line and what name the pair (or section) for messages.
 */
static int
resolve_tls(struct parse *p, const struct tls_raw *pr, unsigned line,
    const char *what, struct gw_tls_sel *sel)
{
	const struct tls_raw *g = &p->gtls;
	const struct tls_raw *src;
	struct gw_config *c = p->cfg;
	char e[400];
	int mode, up;

	memset(sel, 0, sizeof(*sel));
	sel->cert = sel->cli = -1;
	/* A certificate and its key come from the same section. */
	src = pr != NULL && (pr->cert != NULL || pr->key != NULL) ? pr : g;
	if ((src->cert == NULL) != (src->key == NULL)) {
		perr(p, src->cert_line,
		    "tls_cert_file and tls_key_file go "
		    "together");
		return -1;
	}
	/* The second pair comes with the first, from the same section. */
	if ((src->cert2 == NULL) != (src->key2 == NULL) ||
	    (src->cert2 != NULL && src->cert == NULL) ||
	    (pr != NULL && pr != src && pr->cert2 != NULL)) {
		perr(p, src->cert_line,
		    "tls_cert2_file and tls_key2_file go together, "
		    "beside tls_cert_file and tls_key_file of the same "
		    "section");
		return -1;
	}
	mode = pr != NULL && pr->mode >= 0 ? pr->mode
	       : g->mode >= 0
	           ? g->mode
	           : (int)smtpfix_tlspolicy_default_mode(src->cert != NULL);
	up = pr != NULL && pr->upstream >= 0 ? pr->upstream
	     : g->upstream >= 0              ? g->upstream
	                                     : SMTPFIX_TLSUP_OPPORTUNISTIC;
	sel->pol.mode = (enum smtpfix_tls_mode)mode;
	sel->pol.upstream = (enum smtpfix_tls_upstream)up;
	sel->server_name = pr != NULL ? pr->name : NULL;
	if (mode != SMTPFIX_TLS_TERMINATE)
		return 0;
	if (src->cert == NULL) {
		perr(p, line,
		    "%s: tls = terminate needs tls_cert_file and "
		    "tls_key_file (there or in [gateway])",
		    what);
		return -1;
	}
	/* RFC 6125 §6: verifying means checking a name. */
	if (up == SMTPFIX_TLSUP_VERIFY && sel->server_name == NULL) {
		perr(p, line,
		    "%s: tls_upstream = verify needs "
		    "tls_server_name%s",
		    what,
		    pr == NULL ? " (per [pair]; "
		                 "[nat64] sessions use [gateway]'s settings)"
		               : "");
		return -1;
	}
	if (c->tls == NULL && (c->tls = gw_tls_new(e, sizeof(e))) == NULL) {
		perr(p, line, "%s", e);
		return -1;
	}
	if ((sel->cert = gw_tls_add_cert_pair(c->tls, src->cert, src->key,
	         src->cert2, src->key2, e, sizeof(e))) < 0) {
		perr(p, src->cert_line, "%s", e);
		return -1;
	}
	src = pr != NULL && pr->ca != NULL ? pr : g;
	/* Opportunistic accepts what a "may" MTA accepts; require and
	 * verify keep TLS 1.2 and up. */
	if ((sel->cli = gw_tls_add_client(c->tls, up == SMTPFIX_TLSUP_VERIFY,
	         up == SMTPFIX_TLSUP_OPPORTUNISTIC, src->ca, e, sizeof(e))) <
	    0) {
		perr(p, line, "%s: %s", what, e);
		return -1;
	}
	sel->pol.have_cert = 1;
	return 0;
}

static int
build_tls(struct parse *p)
{
	struct gw_config *c = p->cfg;
	char what[GW_NAME_MAX + 8];
	size_t i;

	for (i = 0; i < p->npp && i < c->pairs.n; i++) {
		struct pending_pair *pp = &p->pp[i];
		struct gw_pair_opt *o = &c->pair_opt[i];

		(void)snprintf(what, sizeof(what), "pair %s", o->name);
		if (resolve_tls(p, &pp->tls, o->line, what, &o->tls) != 0)
			return -1;
		/* The name moves to the pair, which outlives the parse. */
		o->tls_name = pp->tls.name;
		o->tls.server_name = o->tls_name;
		pp->tls.name = NULL;
	}
	for (i = 0; i < c->nroutes; i++) {
		struct gw_route *r = &c->routes[i];

		(void)snprintf(what, sizeof(what), "route %s", r->name);
		if (resolve_tls(p, &p->rtls[i], r->line, what, &r->tls) != 0)
			return -1;
	}
	if (c->nnat64 == 0)
		return 0;
	return resolve_tls(p, NULL, p->gateway_line ? p->gateway_line : 1,
	    "[gateway] (for [nat64])", &c->tls_default);
}

/*
 * The whole of path, NUL-terminated, in a buffer the caller frees, its
 * length in *len; NULL after perr.  Only a regular file of at most
 * CONF_MAX_BYTES is a configuration.
 */
static char *
read_conf(struct parse *p, const char *path, size_t *len)
{
	struct stat st;
	char *buf = NULL;
	size_t n = 0;
	ssize_t got;
	int fd;

	/* O_NONBLOCK: a FIFO given by mistake must not hang -t. */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) <
	    0) {
		perr(p, 0, "%s", strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0) {
		perr(p, 0, "%s", strerror(errno));
		goto fail;
	}
	if (S_ISDIR(st.st_mode)) {
		perr(p, 0, "is a directory, not a configuration file");
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		perr(p, 0, "not a regular file");
		goto fail;
	}
	if (st.st_size > CONF_MAX_BYTES) {
		perr(p, 0, "larger than %d bytes: not a configuration file",
		    CONF_MAX_BYTES);
		goto fail;
	}
	if ((buf = malloc(CONF_MAX_BYTES + 1)) == NULL) {
		perr(p, 0, "out of memory");
		goto fail;
	}
	/* Read to the end: the file may have grown since fstat. */
	for (;;) {
		got = read(fd, buf + n, CONF_MAX_BYTES + 1 - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			perr(p, 0, "%s", strerror(errno));
			goto fail;
		}
		if (got == 0)
			break;
		n += (size_t)got;
		if (n > CONF_MAX_BYTES) {
			perr(p, 0,
			    "larger than %d bytes: not a configuration file",
			    CONF_MAX_BYTES);
			goto fail;
		}
	}
	close(fd);
	buf[n] = '\0';
	*len = n;
	return buf;
fail:
	free(buf);
	close(fd);
	return NULL;
}

int
gw_config_load(const char *path, struct gw_config *c, char *err, size_t errcap)
{
	struct parse p;
	char *buf;
	int rc;

	gw_config_defaults(c);
	memset(&p, 0, sizeof(p));
	p.cfg = c;
	p.gtls.mode = p.gtls.upstream = -1;
	if (strlen(path) >= sizeof(c->path)) {
		(void)snprintf(err, errcap, "%s: path too long", path);
		return -1;
	}
	memcpy(c->path, path, strlen(path) + 1);
	if ((buf = read_conf(&p, path, &p.len)) != NULL) {
		p.buf = buf;
		rc = ini_parse_stream(reader, &p, handler, &p);
		free(buf);
		if (rc > 0)
			perr(&p, (unsigned)rc,
			    "syntax error (want 'key = value' or "
			    "'[section]')");
		else if (rc < 0)
			perr(&p, 0, "cannot read");
	}
	/* A missing key has no line of its own: point at its section, or
	 * at the top of the file when the section is missing too. */
	if (p.err[0] == '\0' && c->fqdn[0] == '\0')
		perr(&p, p.gateway_line ? p.gateway_line : 1,
		    "fqdn is required in [gateway]: the name the gateway "
		    "gives in HELO and replies");
	/* RFC 7915 §4: no path is wider than its first link. */
	if (p.err[0] == '\0' && c->packet.ipv6_link_mtu_bytes != 0 &&
	    c->packet.ipv6_mtu_bytes > c->packet.ipv6_link_mtu_bytes)
		perr(&p, c->packet.line,
		    "ipv6_mtu_bytes %u is over ipv6_link_mtu_bytes %u (the "
		    "lowest IPv6 MTU of the paths, and the next hop's)",
		    c->packet.ipv6_mtu_bytes, c->packet.ipv6_link_mtu_bytes);
	if (p.err[0] == '\0')
		(void)build_pairs(&p);
	if (p.err[0] == '\0')
		(void)build_tls(&p);
	for (size_t i = 0; i < p.npp; i++) {
		free(p.pp[i].opt.helo_name);
		tls_raw_free(&p.pp[i].tls);
	}
	tls_raw_free(&p.gtls);
	for (size_t i = 0; i < GW_ROUTE_MAX; i++)
		tls_raw_free(&p.rtls[i]);
	free(p.pp);
	c->pol.fqdn = c->fqdn;
	c->pol.fqdn_len = strlen(c->fqdn);
	c->pol.hygiene = c->hygiene;
	if (p.err[0] != '\0') {
		(void)snprintf(err, errcap, "%s", p.err);
		gw_config_free(c);
		return -1;
	}
	return 0;
}

void
gw_config_free(struct gw_config *c)
{
	size_t i;

	if (c->pair_opt != NULL)
		for (i = 0; i < c->pairs.n; i++) {
			free(c->pair_opt[i].helo_name);
			free(c->pair_opt[i].tls_name);
		}
	gw_tls_free(c->tls);
	c->tls = NULL;
	nat_pairs_free(&c->pairs);
	free(c->pair_opt);
	c->pair_opt = NULL;
	free(c->pair_clients);
	c->pair_clients = NULL;
	for (i = 0; i < c->nroutes; i++)
		for (size_t j = 0; j < c->routes[i].ndomains; j++) {
			free(c->routes[i].domains[j]);
			c->routes[i].domains[j] = NULL;
		}
	free(c->acls);
	c->acls = NULL;
	c->nacls = 0;
}

struct gw_config *
gw_config_new(const char *path, char *err, size_t errcap)
{
	struct gw_config *c;

	if ((c = malloc(sizeof(*c))) == NULL) {
		(void)snprintf(err, errcap, "%s: out of memory", path);
		return NULL;
	}
	if (gw_config_load(path, c, err, errcap) != 0) {
		free(c);
		return NULL;
	}
	/* gw_config_load set pol.fqdn into this very struct. */
	c->refs = 1;
	return c;
}

struct gw_config *
gw_config_hold(struct gw_config *c)
{
	c->refs++;
	return c;
}

void
gw_config_release(struct gw_config *c)
{
	if (c == NULL || --c->refs > 0)
		return;
	gw_config_free(c);
	free(c);
}
