/*
 * nat/dest.c: the destination and source of a session (nat/dest.h).
 *
 *   nat_dest_find    pairs (draft-mrosenau-email-ipv4-to-6 §2.1: one
 *                    address stands for a server of the other family),
 *                    RFC 6052 §2.2 extraction, §3.1 well-known prefix
 *                    scope
 *   nat_dest_route   route mode: which domains are served (never open,
 *                    seed 002; draft-mrosenau-email-ipv4-to-6 §2.1), then
 *                    RFC 3974 §3 and §5 through nat/mx.c
 *   nat_dest_source  source pairing
 */
#include <sys/socket.h>

#include <string.h>

#include "nat/dest.h"
#include "nat/rfc6052.h"
#include "nat/scope.h"

static enum nat_dest_rc
from_pair(const struct nat_dest_conf *c, const struct nat_pair *p,
    const struct nat_addr *local, const struct nat_addr *client,
    struct nat_dest *out)
{
	const struct nat_acl *acl = c->pair_clients[p->user];

	out->kind = NAT_DEST_PAIR;
	out->index = p->user;
	if (local->family == AF_INET) {
		out->dst.family = AF_INET6;
		out->dst.u.v6 = p->v6;
	} else {
		out->dst.family = AF_INET;
		out->dst.u.v4 = p->v4;
	}
	if (acl == NULL || !nat_acl_match(acl, client))
		return NAT_DEST_CLIENT;
	/* The configuration refuses such a pair; checked again here,
	 * where the destination is used. */
	if ((out->why = nat_scope_dest_refused(&out->dst)) != NULL)
		return NAT_DEST_NOT_HOST;
	return NAT_DEST_OK;
}

/* The route that answers on local, or -1. */
static long
route_of(const struct nat_dest_conf *c, const struct nat_addr *local)
{
	size_t i, j;

	for (i = 0; i < c->nroutes; i++)
		for (j = 0; j < c->routes[i].naddrs; j++)
			if (nat_addr_eq(&c->routes[i].addrs[j], local))
				return (long)i;
	return -1;
}

enum nat_dest_rc
nat_dest_find(const struct nat_dest_conf *c, const struct nat_addr *local,
    const struct nat_addr *client, struct nat_dest *out)
{
	const struct nat_pair *p = NULL;
	size_t i;
	long r;

	memset(out, 0, sizeof(*out));
	if ((r = route_of(c, local)) >= 0) {
		const struct nat_dest_route *rt = &c->routes[r];

		out->kind = NAT_DEST_ROUTE;
		out->index = (uint32_t)r;
		/* A smarthost serves only the clients it names. */
		if ((rt->smarthost || rt->clients != NULL) &&
		    (rt->clients == NULL ||
		        !nat_acl_match(rt->clients, client)))
			return NAT_DEST_CLIENT;
		return NAT_DEST_OK;
	}
	if (c->pairs != NULL)
		p = local->family == AF_INET
		        ? nat_pairs_by_v4(c->pairs, &local->u.v4)
		        : nat_pairs_by_v6(c->pairs, &local->u.v6);
	if (p != NULL)
		return from_pair(c, p, local, client, out);
	if (local->family != AF_INET6)
		return NAT_DEST_NO_MAPPING;
	for (i = 0; i < c->nprefixes; i++) {
		const struct nat_dest_prefix *n = &c->prefixes[i];
		struct in_addr v4;

		if (nat_6052_extract(&n->prefix, n->plen, &local->u.v6, &v4) !=
		    0)
			continue;
		out->kind = NAT_DEST_NAT64;
		out->index = (uint32_t)i;
		out->dst.family = AF_INET;
		out->dst.u.v4 = v4;
		if (n->clients == NULL || !nat_acl_match(n->clients, client))
			return NAT_DEST_CLIENT;
		/* "This host" and "this link" would reach the gateway host
		 * itself, where a local MTA may trust loopback, and a group
		 * is no host: never, under any prefix. */
		if ((out->why = nat_scope_dest_refused(&out->dst)) != NULL)
			return NAT_DEST_NOT_HOST;
		/* RFC 6052 §3.1: the well-known prefix must not carry
		 * non-global IPv4 addresses, unless the operator says so. */
		if (n->wkp && !nat_scope_v4_global(&v4) &&
		    (n->dests == NULL || !nat_acl_match(n->dests, &out->dst))) {
			out->why = nat_scope_v4_reason(&v4);
			return NAT_DEST_NONGLOBAL;
		}
		return NAT_DEST_OK;
	}
	return NAT_DEST_NO_MAPPING;
}

int
nat_dest_source(const struct nat_dest_conf *c, const struct nat_addr *client,
    int family, struct nat_addr *src, uint32_t *pair)
{
	const struct nat_pair *p = NULL;

	memset(src, 0, sizeof(*src));
	if (c->source_pairing && c->pairs != NULL)
		p = client->family == AF_INET
		        ? nat_pairs_by_v4(c->pairs, &client->u.v4)
		        : nat_pairs_by_v6(c->pairs, &client->u.v6);
	if (p != NULL && family != client->family) {
		src->family = family;
		if (family == AF_INET)
			src->u.v4 = p->v4;
		else
			src->u.v6 = p->v6;
		*pair = p->user;
		return 1;
	}
	*src = family == AF_INET ? c->source4 : c->source6;
	return 0;
}

static const struct {
	const char *name, *code_enh, *text;
} route_replies[NAT_ROUTE_NRC] = {
    [NAT_ROUTE_OK] = {"ok", "250 2.1.5", "Ok"},
    [NAT_ROUTE_NOT_SERVED] = {"not-served", "550 5.7.1",
        "relay access denied: this gateway does not serve that domain"},
    [NAT_ROUTE_NXDOMAIN] = {"nxdomain", "550 5.1.2",
        "no such domain (RFC 3974 section 3)"},
    [NAT_ROUTE_NULLMX] = {"null-mx", "556 5.1.10",
        "the domain accepts no mail (null MX, RFC 7505)"},
    [NAT_ROUTE_NOADDRESS] = {"no-address", "550 5.1.2",
        "no server of the domain is reachable through this gateway"},
    [NAT_ROUTE_TEMPFAIL] = {"tempfail", "451 4.4.3",
        "DNS lookup failed, try again later"},
    [NAT_ROUTE_SELF] = {"self", "554 5.4.6",
        "routing loop: the domain's server is this gateway"},
    [NAT_ROUTE_UNREACHABLE] = {"unreachable", "451 4.4.1",
        "no answer from the domain's servers, try again later"},
    [NAT_ROUTE_OTHER] = {"other-server", "452 4.5.3",
        "that domain goes to another server: send it again in a new "
        "transaction"},
};

const char *
nat_dest_route_name(enum nat_route_rc rc)
{
	return (unsigned)rc < NAT_ROUTE_NRC ? route_replies[rc].name : "?";
}

void
nat_dest_route_reply(
    enum nat_route_rc rc, const char **code_enh, const char **text)
{
	if ((unsigned)rc >= NAT_ROUTE_NRC)
		rc = NAT_ROUTE_TEMPFAIL;
	*code_enh = route_replies[rc].code_enh;
	*text = route_replies[rc].text;
}

static enum nat_route_rc
from_mx(enum nat_mx_rc rc)
{
	switch (rc) {
	case NAT_MX_OK:
		return NAT_ROUTE_OK;
	case NAT_MX_NXDOMAIN:
		return NAT_ROUTE_NXDOMAIN;
	case NAT_MX_NULLMX:
		return NAT_ROUTE_NULLMX;
	case NAT_MX_NOADDRESS:
		return NAT_ROUTE_NOADDRESS;
	case NAT_MX_SELF:
		return NAT_ROUTE_SELF;
	case NAT_MX_TEMPFAIL:
	default:
		return NAT_ROUTE_TEMPFAIL;
	}
}

enum nat_route_rc
nat_dest_route(const struct nat_dest_route *r, int local_family,
    const char *domain, size_t len, const struct nat_mx_answer *ans,
    uint32_t seed, struct nat_mx_target *out, size_t cap, size_t *n)
{
	struct nat_mx_policy pol;
	enum nat_mx_rc mrc;
	size_t i, k;

	*n = 0;
	memset(&pol, 0, sizeof(pol));
	pol.families = local_family == AF_INET ? NAT_MX_V6 : NAT_MX_V4;
	pol.own = r->own;
	pol.nown = r->nown;
	pol.own_name = r->own_name;
	pol.own_name_len = r->own_name_len;
	if (!r->smarthost &&
	    !nat_mx_domain_listed(domain, len, r->domains, r->ndomains)) {
		/* Published: only the DNS can say, and a DNS that did not
		 * answer says nothing yet. */
		if (!r->serve_published)
			return NAT_ROUTE_NOT_SERVED;
		if (!nat_mx_names_gateway(ans, &pol))
			return ans->mx_rc == NAT_DNS_SERVFAIL ||
			               ans->mx_rc == NAT_DNS_TIMEOUT
			           ? NAT_ROUTE_TEMPFAIL
			           : NAT_ROUTE_NOT_SERVED;
	}
	mrc = nat_mx_select(ans, &pol, seed, out, cap, n);
	if (mrc != NAT_MX_OK) {
		*n = 0;
		return from_mx(mrc);
	}
	/* Whatever the DNS says, never the host itself, its link or a
	 * group (nat/scope.h). */
	for (i = k = 0; i < *n; i++)
		if (nat_scope_dest_refused(&out[i].addr) == NULL)
			out[k++] = out[i];
	*n = k;
	return k > 0 ? NAT_ROUTE_OK : NAT_ROUTE_NOADDRESS;
}

int
nat_dest_route_same(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t i;

	if (alen > 0 && a[alen - 1] == '.')
		alen--;
	if (blen > 0 && b[blen - 1] == '.')
		blen--;
	if (alen != blen)
		return 0;
	for (i = 0; i < alen; i++) {
		unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];

		if (x >= 'A' && x <= 'Z')
			x = (unsigned char)(x - 'A' + 'a');
		if (y >= 'A' && y <= 'Z')
			y = (unsigned char)(y - 'A' + 'a');
		if (x != y)
			return 0;
	}
	return 1;
}
