/*
 * nat/bpf/xlat.bpf.c: the fast path, a tc (cls_bpf, direct-action)
 * program on the gateway's interfaces' ingress.  It translates the
 * common case of RFC 7915 (SIIT) statelessly, byte for byte as
 * nat/xlat.c does, with the pair table as EAM (RFC 7757) and the RFC 6052
 * prefixes from its maps, and forwards the result itself
 * (bpf_fib_lookup, then bpf_redirect or bpf_redirect_neigh).
 *
 * It takes only what the NFQUEUE rules would queue (docs/operations.md):
 * IPv4 packets to a pair's address, IPv6 packets to a pair's address or
 * under a prefix; the rest of the host's traffic goes by untouched.
 *
 * Everything else goes on untouched (TC_ACT_OK) to netfilter, where the
 * NFQUEUE rules hand it to the slow path, gateway/nfq.c over nat/xlat.c,
 * which stays the reference: a packet is only rewritten once every check
 * below passed and the route is known, so "pass" never depends on how far
 * the program got.  Handed on: ICMP errors and ICMP other than echo,
 * fragments, IPv4 options and IPv6 extension headers, TTL or hop limit
 * that would expire, anything over the MTU RFC 7915 judges it by (those
 * the slow path cuts or answers), TCP to or from the proxy's port, a UDP
 * checksum of zero, an unmapped, illegal or spoofed source, and whatever
 * has no route.
 *
 *	addresses	map46, map64		RFC 7757 §3.2, RFC 6052 §2.2;
 *						map64 of a source: src6_spoofed
 *	IPv4 -> IPv6	xlat46			RFC 7915 §4.1, §4.2 (echo), §4.5
 *	IPv6 -> IPv4	xlat64			RFC 7915 §5.1, §5.2 (echo), §5.5
 *	forwarding	route, forward		RFC 7915 §4.1, §5.1: as a
 *						router (RFC 1812 §5.3.1)
 *
 * Checksums: transport checksums are adjusted for the pseudo-header
 * (RFC 1624) with bpf_l4_csum_replace, which also keeps a partial
 * checksum (GSO, veth) or a complete one (skb->csum) right; like
 * nat/xlat.c, a TCP or ICMP result of 0x0000 is written 0xffff (the same
 * ones'-complement zero) and a UDP one too (RFC 768).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <linux/udp.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "nat/bpf/xlat_bpf.h"

#define AF_INET 2
#define AF_INET6 10

#define ETH_LEN 14
#define IP4_HLEN 20
#define IP6_HLEN 40
/* RFC 7915 §5.1: DF is set on translated packets over 1260 octets. */
#define DF_THRESHOLD 1260
/* The most Ethernet pads: a 60-octet frame of a 14-octet header. */
#define ETH_PAD_MAX 46
/* Linear octets the checks read: Ethernet, IPv6, a TCP header. */
#define PULL_LEN (ETH_LEN + IP6_HLEN + 60)

/* ICMPv4 (RFC 792) and ICMPv6 (RFC 4443) echo */
#define I4_ECHOREPLY 0
#define I4_ECHO 8
#define I6_ECHO 128
#define I6_ECHOREPLY 129

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct nat_bpf_conf);
} conf SEC(".maps");

/* The pair table both ways; the loader sizes them. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, union nat_bpf_in6);
} pair4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, union nat_bpf_in6);
	__type(value, __u32);
} pair6 SEC(".maps");

/* nat/scope.c's IPv4 table, longest prefix first. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 64);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct nat_bpf_lpm4);
	__type(value, __u32);
} scope4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NAT_BPF_C_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

static __always_inline void
count(__u32 c)
{
	__u64 *v = bpf_map_lookup_elem(&counts, &c);

	if (v != NULL)
		*v += 1;
}

/* Hands the packet on, untouched, counted under c. */
static __always_inline int
pass(__u32 c)
{
	count(c);
	return TC_ACT_OK;
}

/* ------------------------------------------------------- addresses */

/* As nat/xlat.c v4_martian: 0/8, 127/8, 224/4 and 240/4. */
static __always_inline int
v4_martian(__u32 a)
{
	const __u8 *b = (const __u8 *)&a;

	return b[0] == 0 || b[0] == 127 || b[0] >= 224;
}

static __always_inline __u32
scope(__u32 a)
{
	struct nat_bpf_lpm4 k = {.plen = 32, .addr = a};
	__u32 *v = bpf_map_lookup_elem(&scope4, &k);

	return v != NULL ? *v : 0;
}

/* RFC 7757 §3.2: the pairs, then RFC 6052 with the first prefix. */
static __always_inline int
map46(const struct nat_bpf_conf *c, __u32 a4, union nat_bpf_in6 *a6)
{
	const struct nat_bpf_prefix *x = &c->prefix[0];
	const __u8 *b = (const __u8 *)&a4;
	union nat_bpf_in6 *p;

	if (v4_martian(a4))
		return -1;
	p = bpf_map_lookup_elem(&pair4, &a4);
	if (p != NULL) {
		*a6 = *p;
		return 0;
	}
	if (c->nprefixes == 0)
		return -1;
	/* RFC 6052 §3.1: the well-known prefix carries global IPv4 only. */
	if (x->global_only && (scope(a4) & NAT_BPF_SCOPE_NONGLOBAL))
		return -1;
	*a6 = x->prefix;
	a6->a[x->pos[0] & 15] = b[0];
	a6->a[x->pos[1] & 15] = b[1];
	a6->a[x->pos[2] & 15] = b[2];
	a6->a[x->pos[3] & 15] = b[3];
	return 0;
}

/* RFC 6052 §2.2: the IPv4 address under x, or -1 if a6 is not under it
 * or its u octet is not zero. */
static __always_inline int
extract(const struct nat_bpf_prefix *x, const union nat_bpf_in6 *a6, __u32 *a4)
{
	__u8 *b = (__u8 *)a4;

	if ((a6->w[0] & x->mask.w[0]) != x->prefix.w[0] ||
	    (a6->w[1] & x->mask.w[1]) != x->prefix.w[1] ||
	    (a6->w[2] & x->mask.w[2]) != x->prefix.w[2] ||
	    (a6->w[3] & x->mask.w[3]) != x->prefix.w[3])
		return -1;
	b[0] = a6->a[x->pos[0] & 15];
	b[1] = a6->a[x->pos[1] & 15];
	b[2] = a6->a[x->pos[2] & 15];
	b[3] = a6->a[x->pos[3] & 15];
	return 0;
}

/*
 * RFC 7757 §3.2 the other way (nat/xlat.c map64): the pairs, then the
 * first prefix a6 lies under.  src: a6 is a source, refused under a
 * prefix that does not translate sources (nat/xlat.c src6_spoofed).
 * 0 with *a4 set, or -1.
 */
static __always_inline int
map64(const struct nat_bpf_conf *c, const union nat_bpf_in6 *a6, int src,
    __u32 *a4)
{
	const struct nat_bpf_prefix *x;
	__u32 *p, v4 = 0, s, i;

	p = bpf_map_lookup_elem(&pair6, a6);
	if (p != NULL) {
		*a4 = *p;
		return 0;
	}
	for (i = 0; i < NAT_BPF_PREFIX_MAX; i++) {
		if (i >= c->nprefixes)
			break;
		x = &c->prefix[i];
		if (extract(x, a6, &v4) != 0)
			continue;
		if (src && !x->sources)
			return -1;
		if (v4_martian(v4))
			return -1;
		/* Never the gateway host, its link or a group
		 * (nat_scope_dest_refused), whatever the prefix. */
		s = scope(v4);
		if (s & NAT_BPF_SCOPE_REFUSED)
			return -1;
		if (x->global_only && (s & NAT_BPF_SCOPE_NONGLOBAL))
			return -1;
		/* Only the pair's own IPv6 address stands for it. */
		if (bpf_map_lookup_elem(&pair4, &v4) != NULL)
			return -1;
		*a4 = v4;
		return 0;
	}
	return -1;
}

/* ------------------------------------------------------- transport */

/* What the transport checks found, for both directions. */
struct l4info {
	__u32 csum_off; /* of the checksum in the transport header */
	__u32 thl;      /* TCP header length */
	__u16 oldw;     /* ICMP type and code, as they are */
	__u16 neww;     /* ... as they become */
};

/*
 * The checks nat/xlat.c makes (proxied, check_l4, the UDP zero checksum,
 * the ICMP echo types) on the transport header at l4, l4len octets by
 * the IP header.  icmp: the ICMP protocol number of this family.  0, or
 * the counter to pass the packet under.
 */
static __always_inline __u32
check_l4(const struct nat_bpf_conf *c, void *l4, void *end, __u8 proto,
    __u32 l4len, struct l4info *li)
{
	struct tcphdr *th = l4;
	struct udphdr *uh = l4;
	__u8 *ic = l4;
	__u32 ulen;

	switch (proto) {
	case IPPROTO_TCP:
		if ((void *)(th + 1) > end || l4len < sizeof(*th))
			return NAT_BPF_C_L4;
		if (c->proxy_port != 0 &&
		    (bpf_ntohs(th->source) == c->proxy_port ||
		        bpf_ntohs(th->dest) == c->proxy_port))
			return NAT_BPF_C_PROXIED;
		li->thl = (__u32)th->doff * 4;
		if (li->thl < sizeof(*th) || li->thl > l4len)
			return NAT_BPF_C_L4;
		li->csum_off = 16;
		return 0;
	case IPPROTO_UDP:
		if ((void *)(uh + 1) > end || l4len < sizeof(*uh))
			return NAT_BPF_C_L4;
		ulen = bpf_ntohs(uh->len);
		if (ulen < sizeof(*uh) || ulen > l4len)
			return NAT_BPF_C_L4;
		/* RFC 7915 §4.5: the slow path computes a zero one; RFC
		 * 8200 §8.1: IPv6 never carries one. */
		if (uh->check == 0)
			return NAT_BPF_C_L4;
		li->csum_off = 6;
		return 0;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		if ((void *)(ic + 8) > end || l4len < 8)
			return NAT_BPF_C_L4;
		/* RFC 7915 §4.2, §5.2: echo and echo reply change type
		 * and get code 0; anything else is the slow path's. */
		if (proto == IPPROTO_ICMP && ic[0] == I4_ECHO)
			li->neww = bpf_htons(I6_ECHO << 8);
		else if (proto == IPPROTO_ICMP && ic[0] == I4_ECHOREPLY)
			li->neww = bpf_htons(I6_ECHOREPLY << 8);
		else if (proto == IPPROTO_ICMPV6 && ic[0] == I6_ECHO)
			li->neww = bpf_htons(I4_ECHO << 8);
		else if (proto == IPPROTO_ICMPV6 && ic[0] == I6_ECHOREPLY)
			li->neww = bpf_htons(I4_ECHOREPLY << 8);
		else
			return NAT_BPF_C_PROTO;
		li->oldw = *(__u16 *)ic;
		li->csum_off = 2;
		return 0;
	default:
		return NAT_BPF_C_PROTO;
	}
}

/* RFC 1071: the ones'-complement sum of the 20-octet header at h. */
static __always_inline __u16
sum20(const void *h)
{
	const __u16 *w = h;
	__u32 s = 0;
	int i;

#pragma unroll
	for (i = 0; i < 10; i++)
		s += w[i];
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

/* nat/xlat.c csum_adjust never writes 0x0000 where 0xffff is the same
 * sum; neither do we.  0, or -1 if the field is out of reach. */
static __always_inline int
csum_nonzero(struct __sk_buff *skb, __u32 off)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	__u16 *ck = data + off;

	if (off > 0xffff || (void *)(ck + 1) > end)
		return -1;
	if (*ck == 0)
		*ck = 0xffff;
	return 0;
}

/*
 * The transport checksum at l4 (offset from the packet's start) after
 * the addresses changed by the pseudo-header difference pdiff, and, for
 * ICMP echo, the type and code from li->oldw to li->neww.
 */
static __always_inline int
fix_l4(struct __sk_buff *skb, __u32 l4, __u8 proto, const struct l4info *li,
    __s64 pdiff)
{
	__u32 off = l4 + li->csum_off;

	if (pdiff < 0)
		return -1;
	if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6) {
		/* The type's change and the field's cancel out in a
		 * complete checksum (skb->csum); the pseudo-header's does
		 * not, which BPF_F_PSEUDO_HDR tells the helper. */
		if (bpf_skb_store_bytes(skb, l4, &li->neww, 2, 0) != 0 ||
		    bpf_l4_csum_replace(skb, off, li->oldw, li->neww, 2) != 0)
			return -1;
	}
	if (bpf_l4_csum_replace(skb, off, 0, (__u32)pdiff,
	        BPF_F_PSEUDO_HDR |
	            (proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0)) != 0)
		return -1;
	if (proto != IPPROTO_UDP)
		return csum_nonzero(skb, off);
	return 0;
}

/* ------------------------------------------------------- forwarding */

/*
 * RFC 7915 §4.1, §5.1: the translated packet is routed as a router would
 * route it (RFC 1812 §5.3.1, with TTL and hop limit already less one): the
 * route is looked up before anything is rewritten, so a packet without
 * one still goes on untouched.  0, or the counter to pass it under.
 */
static __always_inline __u32
route(struct __sk_buff *skb, const struct nat_bpf_conf *c,
    struct bpf_fib_lookup *f, int *rc)
{
	*rc = BPF_FIB_LKUP_RET_SUCCESS;
	if (c->flags & NAT_BPF_F_NOFWD)
		return 0;
	f->ifindex = skb->ingress_ifindex;
	*rc = bpf_fib_lookup(skb, f, sizeof(*f), 0);
	if (*rc == BPF_FIB_LKUP_RET_SUCCESS || *rc == BPF_FIB_LKUP_RET_NO_NEIGH)
		return 0;
	if (*rc == BPF_FIB_LKUP_RET_FRAG_NEEDED)
		return NAT_BPF_C_FIB_MTU;
	return NAT_BPF_C_FIB;
}

/* Sends the rewritten packet where route() found. */
static __always_inline int
forward(struct __sk_buff *skb, const struct nat_bpf_conf *c,
    const struct bpf_fib_lookup *f, int rc, __u16 eth_proto)
{
	struct bpf_redir_neigh nh = {};
	struct ethhdr eth;

	if (c->flags & NAT_BPF_F_NOFWD) {
		if (bpf_skb_store_bytes(skb, 12, &eth_proto, 2, 0) != 0)
			goto err;
		return TC_ACT_REDIRECT;
	}
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		/* The kernel resolves the neighbour and writes the
		 * Ethernet header. */
		nh.nh_family = f->family;
		if (f->family == AF_INET6)
			__builtin_memcpy(nh.ipv6_nh, f->ipv6_dst, 16);
		else
			nh.ipv4_nh = f->ipv4_dst;
		return bpf_redirect_neigh(f->ifindex, &nh, sizeof(nh), 0);
	}
	__builtin_memcpy(eth.h_dest, f->dmac, ETH_ALEN);
	__builtin_memcpy(eth.h_source, f->smac, ETH_ALEN);
	eth.h_proto = eth_proto;
	if (bpf_skb_store_bytes(skb, 0, &eth, sizeof(eth), 0) != 0)
		goto err;
	return bpf_redirect(f->ifindex, 0);
err:
	count(NAT_BPF_C_ERROR);
	return TC_ACT_SHOT;
}

/* ===================================================== IPv4 -> IPv6 */

static __always_inline int
xlat46(struct __sk_buff *skb, const struct nat_bpf_conf *c)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + ETH_LEN;
	struct bpf_fib_lookup f = {};
	union nat_bpf_in6 s6, d6, *p6;
	struct l4info li = {};
	__u32 tot, len, l4len, n, r, old[2];
	__u8 h6[IP6_HLEN], tos, ttl, proto;
	__u16 fl;
	__s64 pdiff;
	int rc;

	if ((void *)(ip + 1) > end)
		return pass(NAT_BPF_C_HEADER);
	/* RFC 7915 §4.1: options are the slow path's. */
	if (ip->version != 4 || ip->ihl != 5)
		return pass(NAT_BPF_C_HEADER);
	tot = bpf_ntohs(ip->tot_len);
	len = skb->len - ETH_LEN;
	if (tot < IP4_HLEN || tot > len || (tot < len && len > ETH_PAD_MAX))
		return pass(NAT_BPF_C_HEADER);
	if (sum20(ip) != 0xffff)
		return pass(NAT_BPF_C_HEADER);
	fl = bpf_ntohs(ip->frag_off);
	if (fl & 0x3fff)
		return pass(NAT_BPF_C_FRAGMENT);
	/* Only a pair's IPv4 address as destination: the NFQUEUE rules
	 * (docs/operations.md) queue nothing else on the IPv4 side, and the
	 * program sees every packet of the host, its own and its transit
	 * traffic too; nat_xlat would embed any destination under the
	 * first prefix. */
	p6 = bpf_map_lookup_elem(&pair4, &ip->daddr);
	if (p6 == NULL)
		return pass(NAT_BPF_C_NOT_OURS);
	d6 = *p6;
	proto = ip->protocol;
	l4len = tot - IP4_HLEN;
	if ((r = check_l4(c, ip + 1, end, proto, l4len, &li)) != 0)
		return pass(r);
	/* RFC 7915 §4.1: an illegal source is dropped, an unmapped one
	 * may be an ICMP error's router: the slow path's. */
	if (map46(c, ip->saddr, &s6) != 0)
		return pass(NAT_BPF_C_SOURCE);
	if (ip->ttl <= 1)
		return pass(NAT_BPF_C_TTL);
	/* RFC 7915 §4, §4.1: DF, judged against the IPv6 next hop; no DF,
	 * against the lowest IPv6 MTU.  GSO: each segment is. */
	n = IP6_HLEN + l4len;
	if (skb->gso_size != 0) {
		if (proto != IPPROTO_TCP)
			return pass(NAT_BPF_C_GSO);
		n = IP6_HLEN + li.thl + skb->gso_size;
	}
	if ((fl & 0x4000) ? n > c->link6 : n > c->mtu6)
		return pass(NAT_BPF_C_TOO_BIG);

	tos = ip->tos;
	ttl = ip->ttl;
	f.family = AF_INET6;
	f.l4_protocol = proto == IPPROTO_ICMP ? IPPROTO_ICMPV6 : proto;
	f.tot_len = (__u16)n;
	f.flowinfo = bpf_htonl((__u32)tos << 20);
	__builtin_memcpy(f.ipv6_src, s6.a, 16);
	__builtin_memcpy(f.ipv6_dst, d6.a, 16);
	if ((r = route(skb, c, &f, &rc)) != 0)
		return pass(r);

	/* The pseudo-header difference, while the IPv4 header is here:
	 * RFC 7915 §4.5 (TCP, UDP: the addresses; lengths and protocol
	 * sum the same); §4.2 (ICMPv6 gains a pseudo-header). */
	if (proto == IPPROTO_ICMP) {
		__u32 ph[10];

		__builtin_memcpy(ph, s6.a, 16);
		__builtin_memcpy(ph + 4, d6.a, 16);
		ph[8] = bpf_htonl(l4len);
		ph[9] = bpf_htonl(IPPROTO_ICMPV6);
		pdiff = bpf_csum_diff(NULL, 0, ph, sizeof(ph), 0);
	} else {
		__u32 nw[8];

		old[0] = ip->saddr;
		old[1] = ip->daddr;
		__builtin_memcpy(nw, s6.a, 16);
		__builtin_memcpy(nw + 4, d6.a, 16);
		pdiff = bpf_csum_diff(old, sizeof(old), nw, sizeof(nw), 0);
	}

	/* RFC 7915 §4.1: Traffic Class = TOS, Flow Label 0, Hop Limit =
	 * TTL - 1, Next Header = Protocol (ICMPv6 for ICMP). */
	h6[0] = (__u8)(0x60 | tos >> 4);
	h6[1] = (__u8)(tos << 4);
	h6[2] = 0;
	h6[3] = 0;
	h6[4] = (__u8)(l4len >> 8);
	h6[5] = (__u8)l4len;
	h6[6] = (__u8)f.l4_protocol;
	h6[7] = (__u8)(ttl - 1);
	__builtin_memcpy(h6 + 8, s6.a, 16);
	__builtin_memcpy(h6 + 24, d6.a, 16);

	/* Nothing is rewritten before here. */
	if (tot < len && bpf_skb_change_tail(skb, ETH_LEN + tot, 0) != 0)
		return pass(NAT_BPF_C_ERROR);
	if (bpf_skb_change_proto(skb, bpf_htons(ETH_P_IPV6), 0) != 0)
		return pass(NAT_BPF_C_ERROR);
	if (bpf_skb_store_bytes(
	        skb, ETH_LEN, h6, sizeof(h6), BPF_F_RECOMPUTE_CSUM) != 0 ||
	    fix_l4(skb, ETH_LEN + IP6_HLEN, proto, &li, pdiff) != 0) {
		count(NAT_BPF_C_ERROR);
		return TC_ACT_SHOT;
	}
	count(NAT_BPF_C_XLAT46);
	return forward(skb, c, &f, rc, bpf_htons(ETH_P_IPV6));
}

/* ===================================================== IPv6 -> IPv4 */

static __always_inline int
xlat64(struct __sk_buff *skb, const struct nat_bpf_conf *c)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ipv6hdr *ip = data + ETH_LEN;
	struct bpf_fib_lookup f = {};
	union nat_bpf_in6 sd[2]; /* source, destination: one block */
	struct l4info li = {};
	struct iphdr h4 = {};
	__u32 len, l4len, n, r, s4 = 0, d4 = 0;
	__u8 proto, hop, tc;
	__s64 pdiff;
	int rc;

	if ((void *)(ip + 1) > end)
		return pass(NAT_BPF_C_HEADER);
	if (ip->version != 6)
		return pass(NAT_BPF_C_HEADER);
	l4len = bpf_ntohs(ip->payload_len);
	len = skb->len - ETH_LEN;
	/* IPv6 packets are never padded; a jumbogram has Payload Length 0
	 * (RFC 2675). */
	if (IP6_HLEN + l4len != len)
		return pass(NAT_BPF_C_HEADER);
	proto = ip->nexthdr;
	switch (proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
	case IPPROTO_ICMPV6:
		break;
	case IPPROTO_FRAGMENT:
		return pass(NAT_BPF_C_FRAGMENT);
	case IPPROTO_HOPOPTS:
	case IPPROTO_ROUTING:
	case IPPROTO_DSTOPTS:
	case IPPROTO_AH:
	case 135: /* Mobility, RFC 6275 */
	case 139: /* HIP, RFC 7401 */
	case 140: /* Shim6, RFC 5533 */
	case 253: /* experimentation, RFC 3692 */
	case 254:
		return pass(NAT_BPF_C_HEADER);
	default:
		return pass(NAT_BPF_C_PROTO);
	}
	if ((r = check_l4(c, ip + 1, end, proto, l4len, &li)) != 0)
		return pass(r);
	__builtin_memcpy(sd, &ip->saddr, 32);
	if (map64(c, &sd[1], 0, &d4) != 0)
		return pass(NAT_BPF_C_NOT_OURS);
	if (map64(c, &sd[0], 1, &s4) != 0)
		return pass(NAT_BPF_C_SOURCE);
	if (ip->hop_limit <= 1)
		return pass(NAT_BPF_C_TTL);
	/* RFC 7915 §5.1: over the IPv4 next hop's MTU, the slow path
	 * answers or cuts.  GSO: each segment is judged. */
	n = IP4_HLEN + l4len;
	if (skb->gso_size != 0) {
		if (proto != IPPROTO_TCP)
			return pass(NAT_BPF_C_GSO);
		n = IP4_HLEN + li.thl + skb->gso_size;
	}
	if (n > c->mtu4)
		return pass(NAT_BPF_C_TOO_BIG);

	hop = ip->hop_limit;
	tc = (__u8)(ip->priority << 4 | ip->flow_lbl[0] >> 4);
	f.family = AF_INET;
	f.l4_protocol = proto == IPPROTO_ICMPV6 ? IPPROTO_ICMP : proto;
	f.tot_len = (__u16)n;
	f.tos = tc;
	f.ipv4_src = s4;
	f.ipv4_dst = d4;
	if ((r = route(skb, c, &f, &rc)) != 0)
		return pass(r);

	if (proto == IPPROTO_ICMPV6) {
		/* RFC 7915 §5.2: ICMPv4 has no pseudo-header. */
		__u32 ph[10];

		__builtin_memcpy(ph, sd, 32);
		ph[8] = bpf_htonl(l4len);
		ph[9] = bpf_htonl(IPPROTO_ICMPV6);
		pdiff = bpf_csum_diff(ph, sizeof(ph), NULL, 0, 0);
	} else {
		__u32 nw[2] = {s4, d4};

		pdiff = bpf_csum_diff(sd[0].w, sizeof(sd), nw, sizeof(nw), 0);
	}

	/* RFC 7915 §5.1: TOS = Traffic Class, TTL = Hop Limit - 1, DF
	 * over 1260 octets.  Identification 0 goes with DF (RFC 6864
	 * §4.1: atomic); without DF, where the slow path's raw socket has
	 * the kernel choose one, a random one. */
	h4.version = 4;
	h4.ihl = 5;
	h4.tos = tc;
	h4.tot_len = bpf_htons(IP4_HLEN + l4len);
	if (n > DF_THRESHOLD)
		h4.frag_off = bpf_htons(0x4000);
	else
		h4.id = (__u16)(bpf_get_prandom_u32() | 1);
	h4.ttl = hop - 1;
	h4.protocol = (__u8)f.l4_protocol;
	h4.saddr = s4;
	h4.daddr = d4;
	h4.check = (__u16)~sum20(&h4);

	if (bpf_skb_change_proto(skb, bpf_htons(ETH_P_IP), 0) != 0)
		return pass(NAT_BPF_C_ERROR);
	if (bpf_skb_store_bytes(
	        skb, ETH_LEN, &h4, sizeof(h4), BPF_F_RECOMPUTE_CSUM) != 0 ||
	    fix_l4(skb, ETH_LEN + IP4_HLEN, proto, &li, pdiff) != 0) {
		count(NAT_BPF_C_ERROR);
		return TC_ACT_SHOT;
	}
	count(NAT_BPF_C_XLAT64);
	return forward(skb, c, &f, rc, bpf_htons(ETH_P_IP));
}

SEC("tc")
int
smtp64_xlat(struct __sk_buff *skb)
{
	const struct nat_bpf_conf *c;
	__u32 zero = 0, want;
	void *data, *end;
	struct ethhdr *eth;

	c = bpf_map_lookup_elem(&conf, &zero);
	if (c == NULL || !c->enabled)
		return pass(NAT_BPF_C_PAUSED);
	if (skb->vlan_present)
		return pass(NAT_BPF_C_NOT_IP);
	/* The headers the checks read, in the linear part. */
	want = skb->len < PULL_LEN ? skb->len : PULL_LEN;
	data = (void *)(long)skb->data;
	end = (void *)(long)skb->data_end;
	if (data + want > end)
		(void)bpf_skb_pull_data(skb, want);
	data = (void *)(long)skb->data;
	end = (void *)(long)skb->data_end;
	eth = data;
	if ((void *)(eth + 1) > end)
		return pass(NAT_BPF_C_NOT_IP);
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		return xlat46(skb, c);
	if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		return xlat64(skb, c);
	return pass(NAT_BPF_C_NOT_IP);
}
