/*
 * nat/mx.c: the dual-stack sender's choice of servers, RFC 3974 §3, from
 * DNS answers collected by the caller.  See nat/mx.h.
 *
 *   nat_mx_select        §3 steps 1-6, §5; RFC 5321 §5.1; RFC 7505 §3
 *   nat_mx_names_gateway  draft-mrosenau-email-ipv4-to-6 §3
 *   nat_mx_domain_listed  the configured domains
 */
#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "nat/mx.h"

/* At most this many MX hosts are considered; a zone with more is cut
 * (RFC 5321 §5.1 leaves the limit to the sender; real domains use a
 * handful). */
#define MAXHOSTS 64

static const char *const rc_names[NAT_MX_NRC] = {
    [NAT_MX_OK] = "ok",
    [NAT_MX_NXDOMAIN] = "nxdomain",
    [NAT_MX_NULLMX] = "null-mx",
    [NAT_MX_NOADDRESS] = "no-address",
    [NAT_MX_TEMPFAIL] = "dns-tempfail",
    [NAT_MX_SELF] = "self",
};

const char *
nat_mx_rc_name(enum nat_mx_rc rc)
{
	if ((unsigned)rc >= NAT_MX_NRC)
		return "unknown";
	return rc_names[rc];
}

static unsigned char
lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/* Length without one trailing dot. */
static size_t
undot(const char *s, size_t len)
{
	return len > 0 && s[len - 1] == '.' ? len - 1 : len;
}

static int
name_eq(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t i;

	alen = undot(a, alen);
	blen = undot(b, blen);
	if (alen != blen)
		return 0;
	for (i = 0; i < alen; i++)
		if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
			return 0;
	return 1;
}

static int
is_own(const struct nat_mx_policy *p, const struct nat_addr *a)
{
	size_t i;

	for (i = 0; i < p->nown; i++)
		if (nat_addr_eq(&p->own[i], a))
			return 1;
	return 0;
}

/* A null MX (RFC 7505 §3): the root name, written "" or ".". */
static int
is_null(const struct nat_mx_host *h)
{
	return undot(h->name, h->name_len) == 0;
}

static int
temporary(enum nat_dns_rc rc)
{
	return rc == NAT_DNS_SERVFAIL || rc == NAT_DNS_TIMEOUT ||
	       rc == NAT_DNS_NOTASKED;
}

/* xorshift32: the seed is the only chance, so tests are repeatable. */
static uint32_t
next(uint32_t *st)
{
	uint32_t x = *st;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*st = x;
	return x;
}

static void
shuffle(struct nat_mx_target *t, size_t n, uint32_t *st)
{
	struct nat_mx_target tmp;
	size_t i, j;

	for (i = n; i > 1; i--) {
		j = next(st) % i;
		tmp = t[i - 1];
		t[i - 1] = t[j];
		t[j] = tmp;
	}
}

static int
listed(const struct nat_mx_target *t, size_t n, const struct nat_addr *a)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (nat_addr_eq(&t[i].addr, a))
			return 1;
	return 0;
}

/* The usable hosts' indices, sorted by ascending preference (stable, so
 * the DNS order stays within a preference until shuffled). */
static size_t
sort_hosts(const struct nat_mx_answer *ans, unsigned maxpref, size_t *idx)
{
	size_t i, j, n = 0;

	for (i = 0; i < ans->nhosts && n < MAXHOSTS; i++) {
		if (is_null(&ans->hosts[i]) || ans->hosts[i].pref >= maxpref)
			continue;
		for (j = n;
		     j > 0 && ans->hosts[idx[j - 1]].pref > ans->hosts[i].pref;
		     j--)
			idx[j] = idx[j - 1];
		idx[j] = i;
		n++;
	}
	return n;
}

enum nat_mx_rc
nat_mx_select(const struct nat_mx_answer *ans, const struct nat_mx_policy *p,
    uint32_t seed, struct nat_mx_target *out, size_t cap, size_t *n)
{
	static const struct {
		int af;
		unsigned bit;
	} fams[] = {{AF_INET6, NAT_MX_V6}, {AF_INET, NAT_MX_V4}};
	size_t idx[MAXHOSTS], nh, g, e, i, k, f, start, nnull = 0;
	unsigned maxpref = 0x10000;
	uint32_t st = seed ? seed : 0x9e3779b9u;
	int temp = 0, self = 0;

	*n = 0;
	/* §3 step 1: the MX query itself. */
	switch (ans->mx_rc) {
	case NAT_DNS_OK:
		break;
	case NAT_DNS_NODATA:
		/* RFC 5321 §5.1: no MX, the domain is its own (implicit)
		 * MX; the caller put it in hosts. */
		break;
	case NAT_DNS_NXDOMAIN:
		return NAT_MX_NXDOMAIN;
	default:
		return NAT_MX_TEMPFAIL;
	}
	if (ans->nhosts == 0)
		return NAT_MX_NOADDRESS;
	for (i = 0; i < ans->nhosts; i++)
		nnull += is_null(&ans->hosts[i]);
	/* RFC 7505 §3: a null MX is the domain saying it takes no mail;
	 * one published beside real MX records is ignored (§3 forbids the
	 * mix, so the real ones are taken as meant). */
	if (nnull == ans->nhosts)
		return NAT_MX_NULLMX;

	/* §3 step 2: drop MX records at or above the lowest preference of
	 * one naming the gateway itself. */
	if (p->own_name != NULL && p->own_name_len > 0)
		for (i = 0; i < ans->nhosts; i++)
			if (ans->hosts[i].pref < maxpref &&
			    name_eq(ans->hosts[i].name, ans->hosts[i].name_len,
			        p->own_name, p->own_name_len))
				maxpref = ans->hosts[i].pref;
	nh = sort_hosts(ans, maxpref, idx);
	if (nh == 0)
		return NAT_MX_SELF;

	/* Steps 3-6 per preference group; §3 step 5 note: AAAA first,
	 * each family shuffled apart from the other. */
	k = 0;
	for (g = 0; g < nh; g = e) {
		for (e = g + 1; e < nh && ans->hosts[idx[e]].pref ==
		                              ans->hosts[idx[g]].pref;
		     e++)
			;
		for (f = 0; f < sizeof(fams) / sizeof(fams[0]); f++) {
			if (!(p->families & fams[f].bit))
				continue;
			start = k;
			for (i = g; i < e; i++) {
				const struct nat_mx_host *h =
				    &ans->hosts[idx[i]];
				enum nat_dns_rc rc = fams[f].af == AF_INET6
				                         ? h->aaaa_rc
				                         : h->a_rc;
				size_t a;

				/* §5: a failed query of one family
				 * leaves the other usable. */
				if (temporary(rc))
					temp = 1;
				if (rc != NAT_DNS_OK)
					continue;
				for (a = 0; a < h->naddrs; a++) {
					const struct nat_addr *ad =
					    &h->addrs[a];

					if (ad->family != fams[f].af)
						continue;
					if (is_own(p, ad)) {
						self = 1;
						continue;
					}
					if (k == cap || listed(out, k, ad))
						continue;
					out[k].addr = *ad;
					out[k].pref = h->pref;
					out[k].host = idx[i];
					k++;
				}
			}
			shuffle(out + start, k - start, &st);
		}
	}
	*n = k;
	if (k > 0)
		return NAT_MX_OK;
	if (temp)
		return NAT_MX_TEMPFAIL;
	return self ? NAT_MX_SELF : NAT_MX_NOADDRESS;
}

int
nat_mx_names_gateway(
    const struct nat_mx_answer *ans, const struct nat_mx_policy *p)
{
	size_t i, a;

	if (ans->mx_rc != NAT_DNS_OK && ans->mx_rc != NAT_DNS_NODATA)
		return 0;
	for (i = 0; i < ans->nhosts; i++)
		for (a = 0; a < ans->hosts[i].naddrs; a++)
			if (is_own(p, &ans->hosts[i].addrs[a]))
				return 1;
	return 0;
}

int
nat_mx_domain_listed(
    const char *domain, size_t len, const char *const *list, size_t nlist)
{
	size_t i, el, dl = undot(domain, len);

	if (dl == 0)
		return 0;
	for (i = 0; i < nlist; i++) {
		const char *e = list[i];

		el = undot(e, strlen(e));
		if (el > 1 && e[0] == '.') {
			/* ".example.org": any name strictly below it. */
			if (dl > el && domain[dl - el] == '.' &&
			    name_eq(
			        domain + dl - el + 1, el - 1, e + 1, el - 1))
				return 1;
		} else if (name_eq(domain, dl, e, el)) {
			return 1;
		}
	}
	return 0;
}
