/*
 * nat/dest.c: the destination and source of a session (nat/dest.h).
 *
 *   nat_dest_find    pairs (draft-mrosenau-email-ipv4-to-6 §2.1: one
 *                    address stands for a server of the other family),
 *                    RFC 6052 §2.2 extraction, §3.1 well-known prefix
 *                    scope
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

enum nat_dest_rc
nat_dest_find(const struct nat_dest_conf *c, const struct nat_addr *local,
    const struct nat_addr *client, struct nat_dest *out)
{
	const struct nat_pair *p = NULL;
	size_t i;

	memset(out, 0, sizeof(*out));
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
