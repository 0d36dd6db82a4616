/*
 * nat/xlat.c: stateless IP/ICMP translation, RFC 7915 (SIIT), one packet
 * at a time, with the pair table as an explicit address mapping table
 * (RFC 7757) and RFC 6052 prefixes.
 *
 * Split by direction, then by header; every step returns a verdict and
 * names the section it follows:
 *
 *	addresses	map46, map64		RFC 7757 §3.2, RFC 6052 §2.2
 *			src6_spoofed		RFC 6052 §2.2, BCP 38
 *	sizes		mtu4, mtu6, link6	§4, §4.1, §5.1
 *	IPv4 -> IPv6	parse4, nat_xlat_4to6	RFC 7915 §4.1
 *			icmp46_map, icmp46_err	§4.2, §4.3
 *			ext4884			§4.3 with RFC 4884 §4, §5
 *			body46			§4, §4.1, §4.5
 *			err4			§4.4 (our ICMPv4 errors)
 *	IPv6 -> IPv4	parse6, nat_xlat_6to4	§5.1, §5.1.1
 *			icmp64_map, icmp64_err	§5.2, §5.3
 *			frag_ident		§5.1.1
 *			body64			§5.1, §5.5
 *			err6			§5.4 (our ICMPv6 errors)
 *	fragments	nat_xlat_split		§4 (IPv6), RFC 791 §3.2 (IPv4)
 *
 * A header is validated whole before anything is written; dst is only
 * written once the verdict is known to be OK, SPLIT or ICMP and the
 * output length is known to fit.  All multi-octet fields are read and
 * written octet by octet, so nothing depends on alignment.
 */
#include <sys/socket.h>

#include <netinet/in.h>

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "nat/pair.h"
#include "nat/rfc6052.h"
#include "nat/scope.h"
#include "nat/xlat.h"

#define IP4_HLEN 20
#define IP6_HLEN 40
#define FRAG_HLEN 8
#define ICMP_HLEN 8

/* RFC 1812 §4.3.2.3: an ICMPv4 error is at most 576 octets. */
#define ICMP4_ERR_MAX 576
/* RFC 4443 §2.4 (c): an ICMPv6 error fits the minimum IPv6 MTU. */
#define ICMP6_ERR_MAX 1280
/* RFC 7915 §5.1: DF is set on translated packets over 1260 octets. */
#define DF_THRESHOLD 1260
/* RFC 8200 §4: a sanity bound on the extension header chain we walk. */
#define EXTHDR_MAX 8

#define TTL_OURS 64 /* of the ICMP errors we build */

/* ICMPv4 (RFC 792) and ICMPv6 (RFC 4443) types we translate. */
#define I4_ECHOREPLY 0
#define I4_UNREACH 3
#define I4_ECHO 8
#define I4_TIMXCEED 11
#define I4_PARAMPROB 12
#define I6_UNREACH 1
#define I6_PKTTOOBIG 2
#define I6_TIMXCEED 3
#define I6_PARAMPROB 4
#define I6_ECHO 128
#define I6_ECHOREPLY 129

#define IPPROTO_DCCP_ 33 /* RFC 4340: pseudo-header checksum */

/* Everything one translation needs to hand around. */
struct xl {
	const struct nat_xlat_conf *c;
	uint8_t *dst;
	size_t cap;
	struct nat_xlat_out *out;
};

/* A validated IPv4 header (outer, or inner of an ICMP error). */
struct ip4 {
	const uint8_t *h;
	size_t hlen;       /* IHL * 4 */
	size_t tot;        /* Total Length field */
	const uint8_t *l4; /* payload */
	size_t l4len;      /* payload octets present */
	uint8_t proto;
	unsigned foff; /* Fragment Offset, 8-octet units */
	int mf, df;
};

/* A validated IPv6 header and its extension header chain. */
struct ip6 {
	const uint8_t *h;
	size_t hlen; /* 40 + extension headers walked */
	/* upper-layer length the header claims: 40 + payload - hlen */
	size_t ulen;
	const uint8_t *l4;
	size_t l4len;  /* upper-layer octets present */
	uint8_t proto; /* upper-layer protocol */
	int frag;      /* a Fragment header was seen */
	int fragext;   /* an extension header follows it (§5.1.1) */
	unsigned foff;
	int mf;
	uint32_t fid;
	size_t segleft; /* offset of a non-zero Segments Left, or 0 */
};

#define FRAG4(ip) ((ip)->mf || (ip)->foff != 0)
#define FRAG6(ip) ((ip)->frag && ((ip)->mf || (ip)->foff != 0))

/* ------------------------------------------------------------ octets */

static uint16_t
rd16(const uint8_t *p)
{
	return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static uint32_t
rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static void
wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void
wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static size_t
min_sz(size_t a, size_t b)
{
	return a < b ? a : b;
}

/* --------------------------------------------------------- checksums */

/* RFC 1071: sum of big-endian 16-bit words, an odd last octet padded
 * with zero.  64 bits: 64 KiB of 0xffff cannot overflow it. */
static uint64_t
sum16(uint64_t acc, const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i + 1 < n; i += 2)
		acc += rd16(p + i);
	if (n & 1)
		acc += (uint64_t)p[n - 1] << 8;
	return acc;
}

static uint16_t
fold(uint64_t acc)
{
	while (acc >> 16)
		acc = (acc & 0xffff) + (acc >> 16);
	return (uint16_t)acc;
}

/*
 * RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), where m is the sum of what
 * left the checksummed data and m' the sum of what came in.  The sum
 * inside is never +0 (x + ~x is -0), so the result is never 0xffff even
 * where it must be: an ICMPv4 message of all zeros sums to +0 and needs
 * 0xffff.  0xffff is right wherever 0x0000 is (-0 added to a non-zero
 * sum changes nothing), so zero is never returned.
 */
static uint16_t
csum_adjust(uint16_t hc, uint64_t m, uint64_t m1)
{
	uint64_t acc;
	uint16_t r;

	acc = (uint16_t)~hc;
	acc += (uint16_t)~fold(m);
	acc += fold(m1);
	r = (uint16_t)~fold(acc);
	return r == 0 ? 0xffff : r;
}

/* The IPv6 pseudo-header, RFC 8200 §8.1. */
static uint64_t
pseudo6(const uint8_t *src, const uint8_t *dst, uint8_t nh, size_t len)
{
	return sum16(sum16(0, src, 16), dst, 16) + (len >> 16) +
	       (len & 0xffff) + nh;
}

/* Sum of the two addresses alone: what changes in a pseudo-header. */
static uint64_t
addrs4(const uint8_t *ip)
{
	return sum16(0, ip + 12, 8);
}

static uint64_t
addrs6(const uint8_t *ip)
{
	return sum16(0, ip + 8, 32);
}

/* Fills in an IPv4 header checksum (RFC 791 §3.1). */
static void
ip4_csum(uint8_t *h, size_t hlen)
{
	wr16(h + 10, 0);
	wr16(h + 10, (uint16_t)~fold(sum16(0, h, hlen)));
}

/* --------------------------------------------------------- addresses */

/* IPv4 addresses that never cross: "this network" 0/8, loopback 127/8,
 * multicast 224/4, reserved 240/4 with the limited broadcast. */
static int
v4_martian(const uint8_t *a)
{
	return a[0] == 0 || a[0] == 127 || a[0] >= 224;
}

static int
v6_unspec(const uint8_t *a)
{
	static const uint8_t zero[16];

	return memcmp(a, zero, 16) == 0;
}

static int
v4_zero(const struct in_addr *a)
{
	return a->s_addr == 0;
}

/* RFC 7757 §3.2: the EAM table (our pairs) first, then RFC 6052 with the
 * first prefix.  0, or -1 if a4 maps to nothing. */
static int
map46(const struct nat_xlat_conf *c, const uint8_t *a4, uint8_t *a6)
{
	const struct nat_pair *p;
	const struct nat_xlat_prefix *x;
	struct in_addr v4;
	struct in6_addr v6;

	if (v4_martian(a4))
		return -1;
	memcpy(&v4, a4, 4);
	if (c->pairs != NULL && (p = nat_pairs_by_v4(c->pairs, &v4)) != NULL) {
		memcpy(a6, &p->v6, 16);
		return 0;
	}
	if (c->nprefixes == 0)
		return -1;
	x = &c->prefixes[0];
	/* RFC 6052 §3.1: the well-known prefix carries global IPv4 only. */
	if (x->global_only && !nat_scope_v4_global(&v4))
		return -1;
	if (nat_6052_embed(&x->prefix, x->plen, &v4, &v6) != 0)
		return -1;
	memcpy(a6, &v6, 16);
	return 0;
}

/* RFC 7757 §3.2 the other way: the pairs, then every prefix.  An IPv4
 * address recovered from a prefix that belongs to a pair is refused: a
 * host under the prefix must not stand in for the pair's IPv6 side. */
static int
map64(const struct nat_xlat_conf *c, const uint8_t *a6, uint8_t *a4)
{
	const struct nat_pair *p;
	const struct nat_xlat_prefix *x;
	struct in6_addr v6;
	struct in_addr v4;
	struct nat_addr a;
	size_t i;

	memcpy(&v6, a6, 16);
	if (c->pairs != NULL && (p = nat_pairs_by_v6(c->pairs, &v6)) != NULL) {
		memcpy(a4, &p->v4, 4);
		return 0;
	}
	for (i = 0; i < c->nprefixes; i++) {
		x = &c->prefixes[i];
		if (nat_6052_extract(&x->prefix, x->plen, &v6, &v4) != 0)
			continue;
		if (v4_martian((const uint8_t *)&v4.s_addr))
			return -1;
		/* Never the gateway host, its link or a group, whatever
		 * the prefix (nat/scope.h). */
		a.family = AF_INET;
		a.u.v4 = v4;
		if (nat_scope_dest_refused(&a) != NULL)
			return -1;
		if (x->global_only && !nat_scope_v4_global(&v4))
			return -1;
		if (c->pairs != NULL && nat_pairs_by_v4(c->pairs, &v4) != NULL)
			return -1;
		memcpy(a4, &v4, 4);
		return 0;
	}
	return -1;
}

/*
 * 1 if the IPv6 source a6 lies under a prefix that does not translate
 * sources.  A prefix stands for IPv4 hosts (RFC 6052 §2.2), none of which
 * sends from the IPv6 side: such a source is spoofed, and translating it
 * would let any IPv6 sender pick its IPv4 source (BCP 38, RFC 2827).
 * The pairs come first (RFC 7757 §3.2), as in map64.
 */
static int
src6_spoofed(const struct nat_xlat_conf *c, const uint8_t *a6)
{
	const struct nat_xlat_prefix *x;
	struct in6_addr v6;
	struct in_addr v4;
	size_t i;

	memcpy(&v6, a6, 16);
	if (c->pairs != NULL && nat_pairs_by_v6(c->pairs, &v6) != NULL)
		return 0;
	for (i = 0; i < c->nprefixes; i++) {
		x = &c->prefixes[i];
		if (nat_6052_extract(&x->prefix, x->plen, &v6, &v4) == 0)
			return !x->sources;
	}
	return 0;
}

static unsigned
clamp6(unsigned m)
{
	/* RFC 8200 §5: no IPv6 link is smaller. */
	if (m < 1280)
		return 1280;
	return m > 65535 ? 65535 : m;
}

/* RFC 7915 §4.1: the MTU of the IPv6 next hop, for packets with DF and
 * as MTU_of_IPv6_nexthop in §4.2 and §5.2. */
static unsigned
link6(const struct nat_xlat_conf *c)
{
	unsigned m = c->link6;

	if (m == 0) {
		m = NAT_XLAT_LINK6_DEFAULT;
		if (c->mtu6 > m)
			m = c->mtu6;
	}
	return clamp6(m);
}

/* RFC 7915 §4: the lowest IPv6 MTU, which packets without DF are cut to
 * fit; never more than the next hop takes. */
static unsigned
mtu6(const struct nat_xlat_conf *c)
{
	unsigned m = c->mtu6 == 0 ? NAT_XLAT_MTU6_DEFAULT : clamp6(c->mtu6);

	return m > link6(c) ? link6(c) : m;
}

static unsigned
mtu4(const struct nat_xlat_conf *c)
{
	if (c->mtu4 == 0)
		return NAT_XLAT_MTU4_DEFAULT;
	/* RFC 791 §3.2: every IPv4 module takes 68 octets whole. */
	if (c->mtu4 < 68)
		return 68;
	return c->mtu4 > 65535 ? 65535 : c->mtu4;
}

/* ---------------------------------------------------------- verdicts */

static enum nat_xlat_verdict
drop(struct xl *x, enum nat_xlat_reason r)
{
	x->out->reason = r;
	return NAT_XLAT_DROP;
}

static enum nat_xlat_verdict
not_ours(struct xl *x, enum nat_xlat_reason r)
{
	x->out->reason = r;
	return NAT_XLAT_NOT_OURS;
}

static enum nat_xlat_verdict
done(struct xl *x, int family, size_t len)
{
	x->out->family = family;
	x->out->len = len;
	return NAT_XLAT_OK;
}

/* Protocol numbers that mean an IPv6 header (or ICMPv6) and so have no
 * IPv4 meaning (RFC 7045 §4 lists the extension headers). */
static int
proto_v6_only(uint8_t p)
{
	switch (p) {
	case IPPROTO_HOPOPTS:
	case IPPROTO_ROUTING:
	case IPPROTO_FRAGMENT:
	case IPPROTO_ICMPV6:
	case IPPROTO_DSTOPTS:
	case 135: /* Mobility, RFC 6275 */
	case 139: /* HIP, RFC 7401 */
	case 140: /* Shim6, RFC 5533 */
		return 1;
	default:
		return 0;
	}
}

/* The transport ports sit in the first four octets of TCP; SMTP stays
 * with the proxy even if a rule queued it by mistake. */
static int
proxied(const struct nat_xlat_conf *c, uint8_t proto, unsigned foff,
    const uint8_t *l4, size_t l4len)
{
	if (c->proxy_port == 0 || proto != IPPROTO_TCP || foff != 0 ||
	    l4len < 4)
		return 0;
	return rd16(l4) == c->proxy_port || rd16(l4 + 2) == c->proxy_port;
}

/* ============================================================ parse */

/*
 * Validates an IPv4 header: RFC 791 §3.1.  An inner header (in an ICMP
 * error) may be cut short after its options; an outer one must hold all
 * of Total Length and a good header checksum.
 */
static enum nat_xlat_reason
parse4(const uint8_t *p, size_t len, int inner, struct ip4 *ip)
{
	uint16_t fl;

	if (len < IP4_HLEN)
		return NAT_XLAT_R_TRUNCATED;
	if (p[0] >> 4 != 4)
		return NAT_XLAT_R_VERSION;
	ip->hlen = (size_t)(p[0] & 0x0f) * 4;
	if (ip->hlen < IP4_HLEN)
		return NAT_XLAT_R_IHL;
	if (ip->hlen > len)
		return NAT_XLAT_R_TRUNCATED;
	ip->tot = rd16(p + 2);
	if (ip->tot < ip->hlen)
		return NAT_XLAT_R_LENGTH;
	if (!inner) {
		if (ip->tot > len)
			return NAT_XLAT_R_TRUNCATED;
		/* RFC 1071: a good header sums to all ones. */
		if (fold(sum16(0, p, ip->hlen)) != 0xffff)
			return NAT_XLAT_R_IP_CSUM;
	}
	ip->l4len = min_sz(ip->tot, len) - ip->hlen;
	fl = rd16(p + 6);
	ip->df = (fl >> 14) & 1;
	ip->mf = (fl >> 13) & 1;
	ip->foff = fl & 0x1fff;
	/* RFC 791 §3.2: no datagram ends past 65535 octets. */
	if ((size_t)ip->foff * 8 + (ip->tot - ip->hlen) > 65535)
		return NAT_XLAT_R_LENGTH;
	ip->h = p;
	ip->l4 = p + ip->hlen;
	ip->proto = p[9];
	return NAT_XLAT_R_NONE;
}

/*
 * RFC 7915 §4.1: options are not translated, but an unexpired source
 * route (RFC 791 §3.1: LSRR 131, SSRR 137, pointer not past the length)
 * stops the packet.  0, 1 for such a route, -1 if the options are
 * malformed.
 */
static int
opts4(const uint8_t *o, size_t n)
{
	size_t i = 0, ol;

	while (i < n) {
		if (o[i] == 0) /* end of option list */
			break;
		if (o[i] == 1) { /* no operation */
			i++;
			continue;
		}
		if (n - i < 2)
			return -1;
		ol = o[i + 1];
		if (ol < 2 || ol > n - i)
			return -1;
		if (o[i] == 131 || o[i] == 137) {
			if (ol < 3)
				return -1;
			if (o[i + 2] <= ol)
				return 1;
		}
		i += ol;
	}
	return 0;
}

/*
 * IPv6 extension headers (RFC 7045 §4, the IANA list it points to) other
 * than ESP: RFC 7915 §5.1.1 drops a fragment whose Fragment header is
 * followed by one of them (AH included), since only the first fragment
 * would carry it (RFC 8200 §4.5).
 */
static int
exthdr_not_esp(uint8_t nh)
{
	switch (nh) {
	case IPPROTO_HOPOPTS:
	case IPPROTO_ROUTING:
	case IPPROTO_FRAGMENT:
	case IPPROTO_DSTOPTS:
	case 51:  /* AH, RFC 4302 */
	case 135: /* Mobility, RFC 6275 */
	case 139: /* HIP, RFC 7401 */
	case 140: /* Shim6, RFC 5533 */
	case 253: /* experimentation, RFC 3692 */
	case 254:
		return 1;
	default:
		return 0;
	}
}

/*
 * Validates an IPv6 header and walks its extension headers (RFC 8200
 * §4): Hop-by-Hop only first, then Routing and Destination Options, up
 * to the upper layer or a Fragment header.  After the Fragment header
 * the chain ends: what its Next Header names is the upper layer, unless
 * it is another extension header (ip->fragext, RFC 7915 §5.1.1).  An
 * inner header may be cut short after the chain.
 */
static enum nat_xlat_reason
parse6(const uint8_t *p, size_t len, int inner, struct ip6 *ip)
{
	size_t plen, end, off = IP6_HLEN, hl;
	uint16_t fo;
	uint8_t nh;
	int n;

	if (len < IP6_HLEN)
		return NAT_XLAT_R_TRUNCATED;
	if (p[0] >> 4 != 6)
		return NAT_XLAT_R_VERSION;
	plen = rd16(p + 4);
	/* RFC 2675 §3: a jumbogram has Payload Length 0 and a Jumbo Payload
	 * option, which only a Hop-by-Hop Options header carries (never on
	 * our links).  Payload Length 0 with any other Next Header is an
	 * empty payload, No Next Header (RFC 8200 §4.7) or a header cut
	 * short, judged as any other. */
	if (plen == 0 && p[6] == IPPROTO_HOPOPTS)
		return NAT_XLAT_R_JUMBO;
	if (!inner && IP6_HLEN + plen > len)
		return NAT_XLAT_R_TRUNCATED;
	end = min_sz(IP6_HLEN + plen, len);
	ip->frag = 0;
	ip->fragext = 0;
	ip->foff = 0;
	ip->mf = 0;
	ip->fid = 0;
	ip->segleft = 0;
	nh = p[6];
	for (n = 0;; n++) {
		if (n > EXTHDR_MAX)
			return NAT_XLAT_R_EXTHDR;
		switch (nh) {
		case IPPROTO_HOPOPTS:
			/* RFC 8200 §4.3: only right after the header. */
			if (off != IP6_HLEN)
				return NAT_XLAT_R_EXTHDR;
			/* FALLTHROUGH */
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
			if (end - off < 8)
				return NAT_XLAT_R_EXTHDR;
			hl = ((size_t)p[off + 1] + 1) * 8;
			if (hl > end - off)
				return NAT_XLAT_R_EXTHDR;
			/* RFC 8200 §4.4: octet 3 is Segments Left. */
			if (nh == IPPROTO_ROUTING && p[off + 3] != 0 &&
			    ip->segleft == 0)
				ip->segleft = off + 3;
			nh = p[off];
			off += hl;
			continue;
		case IPPROTO_FRAGMENT:
			if (ip->frag || end - off < FRAG_HLEN)
				return NAT_XLAT_R_EXTHDR;
			/* RFC 8200 §4.5 */
			ip->frag = 1;
			fo = rd16(p + off + 2);
			ip->foff = fo >> 3;
			ip->mf = fo & 1;
			ip->fid = rd32(p + off + 4);
			nh = p[off];
			off += FRAG_HLEN;
			/* RFC 7915 §5.1.1: the upper layer must follow the
			 * Fragment header; an extension header there is
			 * refused by the caller. */
			ip->fragext = exthdr_not_esp(nh);
			break;
		default:
			break;
		}
		break;
	}
	ip->h = p;
	ip->hlen = off;
	ip->ulen = IP6_HLEN + plen - off;
	ip->l4 = p + off;
	ip->l4len = end - off;
	ip->proto = nh;
	return NAT_XLAT_R_NONE;
}

/*
 * Transport header checks shared by both directions, for a packet that
 * starts its transport header here (first fragment or whole).  frag:
 * it is a first fragment, so the header must merely be present.
 */
static enum nat_xlat_reason
check_l4(uint8_t proto, const uint8_t *l4, size_t l4len, int frag)
{
	size_t doff, ulen;

	switch (proto) {
	case IPPROTO_TCP:
		/* RFC 1858 §3: a first fragment holds the whole header. */
		if (l4len < 20)
			return frag ? NAT_XLAT_R_FRAG_SHORT
			            : NAT_XLAT_R_L4_SHORT;
		doff = (size_t)(l4[12] >> 4) * 4;
		if (doff < 20 || (!frag && doff > l4len))
			return NAT_XLAT_R_L4_SHORT;
		return NAT_XLAT_R_NONE;
	case IPPROTO_UDP:
		if (l4len < 8)
			return frag ? NAT_XLAT_R_FRAG_SHORT
			            : NAT_XLAT_R_L4_SHORT;
		ulen = rd16(l4 + 4);
		/* RFC 768: the length counts the header; a datagram is
		 * never longer than what carries it. */
		if (!frag && (ulen < 8 || ulen > l4len))
			return NAT_XLAT_R_UDP_LEN;
		return NAT_XLAT_R_NONE;
	case IPPROTO_DCCP_:
		if (l4len < 8)
			return frag ? NAT_XLAT_R_FRAG_SHORT
			            : NAT_XLAT_R_L4_SHORT;
		return NAT_XLAT_R_NONE;
	default:
		return NAT_XLAT_R_NONE;
	}
}

/* Offset of the pseudo-header checksum of a transport protocol, or 0. */
static size_t
l4_csum_off(uint8_t proto)
{
	switch (proto) {
	case IPPROTO_TCP:
		return 16;
	case IPPROTO_UDP:
		return 6;
	case IPPROTO_DCCP_:
		return 6;
	default:
		return 0;
	}
}

/*
 * RFC 7915 §4.5, §5.5: only the pseudo-header changes (the addresses;
 * length and protocol sum the same in both), so the checksum is
 * adjusted (RFC 1624), never recomputed: a bad one stays bad.  Works on
 * a truncated inner header too, if the field is present.  A UDP zero
 * checksum ("none", inside an ICMP error) stays zero.
 */
static void
l4_adjust(uint8_t proto, uint8_t *l4, size_t l4len, uint64_t m, uint64_t m1)
{
	size_t off = l4_csum_off(proto);
	uint16_t ck;

	if (off == 0 || l4len < off + 2)
		return;
	ck = rd16(l4 + off);
	if (proto == IPPROTO_UDP && ck == 0)
		return;
	ck = csum_adjust(ck, m, m1);
	/* RFC 768: a computed zero is sent as all ones. */
	if (proto == IPPROTO_UDP && ck == 0)
		ck = 0xffff;
	wr16(l4 + off, ck);
}

/* ===================================================== IPv4 -> IPv6 */

/* ICMPv4 types that are errors (RFC 792): their payload is a packet. */
static int
icmp4_is_error(uint8_t type)
{
	return type == I4_UNREACH || type == 4 || type == 5 ||
	       type == I4_TIMXCEED || type == I4_PARAMPROB;
}

/*
 * RFC 7915 §4.4: an ICMPv4 error for the sender of ip, built into dst
 * (when conf allows), for reason r.  RFC 1812 §4.3.2.7: never about an
 * ICMP error, a non-first fragment, or a martian source.
 */
static enum nat_xlat_verdict
err4(struct xl *x, const struct ip4 *ip, enum nat_xlat_reason r, uint8_t type,
    uint8_t code, uint32_t rest)
{
	uint8_t *d = x->dst;
	size_t body, n;

	x->out->reason = r;
	if (!x->c->icmp_errors || ip->foff != 0)
		return NAT_XLAT_DROP;
	if (ip->proto == IPPROTO_ICMP &&
	    (ip->l4len < 1 || icmp4_is_error(ip->l4[0])))
		return NAT_XLAT_DROP;
	if (v4_martian(ip->h + 12) || v4_martian(ip->h + 16))
		return NAT_XLAT_DROP;
	body = min_sz(ip->tot, ICMP4_ERR_MAX - IP4_HLEN - ICMP_HLEN);
	n = IP4_HLEN + ICMP_HLEN + body;
	if (n > x->cap)
		return NAT_XLAT_DROP;
	memset(d, 0, IP4_HLEN + ICMP_HLEN);
	d[0] = 0x45;
	wr16(d + 2, (uint16_t)n);
	d[8] = TTL_OURS;
	d[9] = IPPROTO_ICMP;
	if (!v4_zero(&x->c->self4))
		memcpy(d + 12, &x->c->self4, 4);
	else
		memcpy(d + 12, ip->h + 16, 4);
	memcpy(d + 16, ip->h + 12, 4);
	ip4_csum(d, IP4_HLEN);
	d[20] = type;
	d[21] = code;
	wr32(d + 24, rest);
	memcpy(d + 28, ip->h, body);
	wr16(d + 22, (uint16_t)~fold(sum16(0, d + 20, ICMP_HLEN + body)));
	x->out->family = AF_INET;
	x->out->len = n;
	return NAT_XLAT_ICMP;
}

/*
 * RFC 7915 §4.1: the IPv6 header for ip, with a Fragment header if
 * fraghdr, into d.  upper: upper-layer octets the header announces.
 * Returns the octets written (40 or 48).
 */
static size_t
hdr46(const struct ip4 *ip, const uint8_t *s6, const uint8_t *d6, int fraghdr,
    size_t upper, uint8_t hop, uint8_t *d)
{
	uint8_t tos = ip->h[1];
	uint8_t nh = ip->proto == IPPROTO_ICMP ? IPPROTO_ICMPV6 : ip->proto;

	/* Version 6; Traffic Class = TOS; Flow Label 0. */
	d[0] = (uint8_t)(0x60 | tos >> 4);
	d[1] = (uint8_t)(tos << 4);
	d[2] = 0;
	d[3] = 0;
	wr16(d + 4, (uint16_t)(upper + (fraghdr ? FRAG_HLEN : 0)));
	d[6] = fraghdr ? IPPROTO_FRAGMENT : nh;
	d[7] = hop;
	memcpy(d + 8, s6, 16);
	memcpy(d + 24, d6, 16);
	if (!fraghdr)
		return IP6_HLEN;
	/* Fragment header: offset and M copied, the Identification's low
	 * 16 bits from IPv4, high 16 zero. */
	d[40] = nh;
	d[41] = 0;
	wr16(d + 42, (uint16_t)(ip->foff << 3 | (unsigned)ip->mf));
	wr32(d + 44, rd16(ip->h + 4));
	return IP6_HLEN + FRAG_HLEN;
}

/* RFC 1191 §7: plateaus, for a router that sent MTU zero. */
static unsigned
plateau(size_t tot)
{
	static const unsigned p[] = {
	    32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68};
	size_t i;

	for (i = 0; i < sizeof(p) / sizeof(p[0]); i++)
		if (p[i] < tot)
			return p[i];
	return 68;
}

/*
 * RFC 7915 §4.2: the ICMPv6 type, code and rest-of-header for an ICMPv4
 * message o (8 octets present).  inner_tot: Total Length of the packet
 * in error (for the MTU plateau).  0, or -1 if there is no counterpart
 * (the message is silently dropped).
 */
static int
icmp46_map(const struct nat_xlat_conf *c, const uint8_t *o, size_t inner_tot,
    uint8_t *t6, uint8_t *c6, uint32_t *rest6)
{
	/* §4.2 Figure 3: Parameter Problem pointers, -1 for n/a. */
	static const int8_t ptr[20] = {0, 1, 4, 4, -1, -1, -1, -1, 7, 6, -1, -1,
	    8, 8, 8, 8, 24, 24, 24, 24};
	unsigned mtu;

	*rest6 = 0;
	switch (o[0]) {
	case I4_ECHO:
	case I4_ECHOREPLY:
		*t6 = o[0] == I4_ECHO ? I6_ECHO : I6_ECHOREPLY;
		*c6 = 0;
		*rest6 = rd32(o + 4);
		return 0;
	case I4_UNREACH:
		*t6 = I6_UNREACH;
		switch (o[1]) {
		case 0: /* net */
		case 1: /* host */
		case 5: /* source route failed */
		case 6:
		case 7:
		case 8:
		case 11:
		case 12:
			*c6 = 0; /* no route to destination */
			return 0;
		case 2: /* protocol: Parameter Problem, pointer
		           to Next Header */
			*t6 = I6_PARAMPROB;
			*c6 = 1;
			*rest6 = 6;
			return 0;
		case 3:
			*c6 = 4; /* port unreachable */
			return 0;
		case 4: /* fragmentation needed: Packet Too Big */
			*t6 = I6_PKTTOOBIG;
			*c6 = 0;
			mtu = rd16(o + 6);
			if (mtu == 0)
				mtu = plateau(inner_tot);
			/* minimum(advertised MTU + 20, MTU_of_IPv6_nexthop,
			 * MTU_of_IPv4_nexthop + 20); §6: never below the
			 * IPv6 minimum (RFC 8200 §5), which IPv6 hosts
			 * behind filters do not heed. */
			mtu += 20;
			if (mtu > link6(c))
				mtu = link6(c);
			if (mtu > mtu4(c) + 20)
				mtu = mtu4(c) + 20;
			*rest6 = mtu < 1280 ? 1280 : mtu;
			return 0;
		case 9:
		case 10:
		case 13:
		case 15:
			*c6 = 1; /* administratively prohibited */
			return 0;
		default: /* 14: host precedence violation, others */
			return -1;
		}
	case I4_TIMXCEED:
		*t6 = I6_TIMXCEED;
		*c6 = o[1];
		return 0;
	case I4_PARAMPROB:
		if (o[1] != 0 && o[1] != 2)
			return -1; /* 1: missing a required option */
		if (o[4] >= sizeof(ptr) || ptr[o[4]] < 0)
			return -1;
		*t6 = I6_PARAMPROB;
		*c6 = 0;
		*rest6 = (uint32_t)ptr[o[4]];
		return 0;
	default:
		/* Information, timestamp, address mask, router discovery,
		 * redirect, source quench: obsolete or single-hop. */
		return -1;
	}
}

/*
 * RFC 4884 §4: an ICMP error (o, olen octets with its 8-octet header) of
 * a type with a length attribute (octet at, in units of unit octets)
 * that is not zero has an ICMP Extension Structure after the original
 * datagram field of that length.  Returns the field's length and sets
 * *extlen to the octets after it.  No attribute, or one that leaves less
 * than the 128 octets §4 asks for or no room for the 4-octet extension
 * header (§7): the whole rest is the datagram and *extlen is 0, as a
 * receiver without extensions reads it (§5).
 */
static size_t
ext4884(const uint8_t *o, size_t olen, size_t at, size_t unit, size_t *extlen)
{
	size_t l = (size_t)o[at] * unit;

	*extlen = 0;
	if (l < 128 || ICMP_HLEN + l + 4 > olen)
		return olen - ICMP_HLEN;
	*extlen = olen - ICMP_HLEN - l;
	return l;
}

/*
 * RFC 4884 §4: with an extension kept, the original datagram field is
 * zero-padded to a multiple of unit octets (4 in ICMPv4, 8 in ICMPv6) and
 * to at least 128, and the whole message, fixed octets of IP and ICMP
 * header before the field and extlen after it, stays within max (RFC
 * 1812 §4.3.2.3, RFC 4443 §2.4 (c)): the datagram (*dgram octets) is cut
 * to make room.  Returns the field's padded length, or 0 if less than 128
 * octets would be left for it: the extension is then left out.
 */
static size_t
pad4884(size_t *dgram, size_t fixed, size_t extlen, size_t unit, size_t max)
{
	size_t room, field;

	if (fixed + extlen + 128 > max)
		return 0;
	/* 128 is a multiple of the unit: room stays at least 128. */
	room = (max - fixed - extlen) / unit * unit;
	if (*dgram > room)
		*dgram = room;
	field = (*dgram + unit - 1) / unit * unit;
	return field < 128 ? 128 : field;
}

/*
 * Transport fix-ups after the addresses changed, for the upper layer at
 * l4 (l4len octets present, ulen the whole upper-layer length).  Used
 * for the packet itself and for the one inside an ICMP error.  ICMP
 * echo changes type and gains (46) or loses (64) the pseudo-header.
 */
static void
fix46(uint8_t proto, uint8_t *l4, size_t l4len, size_t ulen,
    const uint8_t *ip4h, const uint8_t *ip6h)
{
	uint16_t ck;
	uint8_t t;

	if (proto != IPPROTO_ICMP) {
		l4_adjust(proto, l4, l4len, addrs4(ip4h), addrs6(ip6h));
		return;
	}
	if (l4len < 4 || (l4[0] != I4_ECHO && l4[0] != I4_ECHOREPLY))
		return;
	t = l4[0] == I4_ECHO ? I6_ECHO : I6_ECHOREPLY;
	ck = csum_adjust(rd16(l4 + 2), (uint64_t)l4[0] << 8 | l4[1],
	    ((uint64_t)t << 8) +
	        pseudo6(ip6h + 8, ip6h + 24, IPPROTO_ICMPV6, ulen));
	l4[0] = t;
	l4[1] = 0;
	wr16(l4 + 2, ck);
}

/*
 * RFC 7915 §4.3: an ICMPv4 error becomes an ICMPv6 error whose payload
 * is the packet in error translated the same way (no TTL decrement),
 * cut so the whole stays within the IPv6 minimum MTU.  The ICMPv4
 * checksum is checked first: the ICMPv6 one is computed afresh and must
 * not bless corruption.  An RFC 4884 extension of Destination
 * Unreachable or Time Exceeded is kept, after the translated datagram,
 * with the length attribute recounted in 64-bit words (§4.2, RFC 4884
 * §4); Packet Too Big and Parameter Problem have no attribute in ICMPv6,
 * so theirs is left out.
 */
static enum nat_xlat_verdict
icmp46_err(struct xl *x, const struct ip4 *ip, const uint8_t *s6,
    const uint8_t *d6, uint8_t hop)
{
	const uint8_t *o = ip->l4;
	struct ip4 in;
	uint8_t is6[16], id6[16], t6, c6, *d = x->dst, *q;
	uint32_t rest6;
	size_t n, ihl, body, msg, orig, extlen = 0, dgram, field = 0;
	int ifh;

	if (fold(sum16(0, o, ip->l4len)) != 0xffff)
		return drop(x, NAT_XLAT_R_ICMP_CSUM);
	/* RFC 4884 §4: in ICMPv4, octet 5, in 32-bit words. */
	if (o[0] == I4_UNREACH || o[0] == I4_TIMXCEED || o[0] == I4_PARAMPROB)
		orig = ext4884(o, ip->l4len, 5, 4, &extlen);
	else
		orig = ip->l4len - ICMP_HLEN;
	if (parse4(o + ICMP_HLEN, orig, 1, &in) != NAT_XLAT_R_NONE)
		return drop(x, NAT_XLAT_R_ICMP_INNER);
	/* An error about the proxy's own TCP belongs to its socket. */
	if (proxied(x->c, in.proto, in.foff, in.l4, in.l4len))
		return not_ours(x, NAT_XLAT_R_PROXIED);
	if (icmp46_map(x->c, o, in.tot, &t6, &c6, &rest6) != 0)
		return drop(x, NAT_XLAT_R_ICMP_TYPE);
	if (proto_v6_only(in.proto) || map46(x->c, in.h + 12, is6) != 0 ||
	    map46(x->c, in.h + 16, id6) != 0)
		return drop(x, NAT_XLAT_R_ICMP_INNER);
	ifh = FRAG4(&in);
	ihl = IP6_HLEN + (ifh ? FRAG_HLEN : 0);
	dgram = ihl + in.l4len;
	if (extlen != 0 && (t6 == I6_UNREACH || t6 == I6_TIMXCEED))
		field = pad4884(
		    &dgram, IP6_HLEN + ICMP_HLEN, extlen, 8, ICMP6_ERR_MAX);
	if (field == 0) {
		extlen = 0;
		dgram = min_sz(dgram, ICMP6_ERR_MAX - IP6_HLEN - ICMP_HLEN);
		field = dgram;
	}
	body = dgram - ihl;
	msg = ICMP_HLEN + field + extlen;
	n = IP6_HLEN + msg;
	if (n > x->cap)
		return drop(x, NAT_XLAT_R_NO_ROOM);
	(void)hdr46(ip, s6, d6, 0, msg, hop, d);
	q = d + IP6_HLEN;
	q[0] = t6;
	q[1] = c6;
	wr16(q + 2, 0);
	wr32(q + 4, rest6);
	/* The inner header announces its whole length, not what is left
	 * of it. */
	(void)hdr46(
	    &in, is6, id6, ifh, in.tot - in.hlen, in.h[8], q + ICMP_HLEN);
	memcpy(q + ICMP_HLEN + ihl, in.l4, body);
	if (in.foff == 0)
		fix46(in.proto, q + ICMP_HLEN + ihl, body, in.tot - in.hlen,
		    in.h, q + ICMP_HLEN);
	if (extlen != 0) {
		/* RFC 4884 §4: in ICMPv6, octet 4, in 64-bit words. */
		q[4] = (uint8_t)(field / 8);
		memset(q + ICMP_HLEN + dgram, 0, field - dgram);
		memcpy(q + ICMP_HLEN + field, o + ICMP_HLEN + orig, extlen);
	}
	wr16(q + 2, (uint16_t)~fold(
	                sum16(pseudo6(s6, d6, IPPROTO_ICMPV6, msg), q, msg)));
	return done(x, AF_INET6, n);
}

/*
 * RFC 7915 §4.1 and §4.5 for everything but ICMP errors: header, then
 * the payload copied whole, then the transport checksum.
 *
 * Sizes, §4 and §4.1: with DF set the sender does path MTU discovery, so
 * the packet is judged against the IPv6 next hop's MTU (link6), not the
 * lowest IPv6 MTU meant for packets without DF, and goes whole without a
 * Fragment header if it fits.  Over it, a fragment with DF included, it
 * gets Fragmentation Needed (RFC 1191 §4) with the largest IPv4 packet
 * that fits: link6 less the 20 octets the IPv6 header adds, less 8 more
 * for the Fragment header a fragment gets.  With DF clear and over the
 * lowest IPv6 MTU (mtu6): a Fragment header and SPLIT.
 */
static enum nat_xlat_verdict
body46(struct xl *x, const struct ip4 *ip, const uint8_t *s6, const uint8_t *d6,
    uint8_t hop)
{
	uint8_t *d = x->dst, *l4;
	size_t hl, n;
	int fh = FRAG4(ip), split = 0;
	unsigned mtu = mtu6(x->c), link = link6(x->c);
	uint16_t ck;

	n = IP6_HLEN + (fh ? FRAG_HLEN : 0) + ip->l4len;
	if (ip->df && n > link)
		return err4(x, ip, NAT_XLAT_R_TOO_BIG, I4_UNREACH, 4,
		    link - 20 - (fh ? FRAG_HLEN : 0));
	if (!ip->df && n > mtu) {
		if (!fh)
			n += FRAG_HLEN;
		fh = 1;
		split = 1;
	}
	if (n > x->cap)
		return drop(x, NAT_XLAT_R_NO_ROOM);
	hl = hdr46(ip, s6, d6, fh, ip->l4len, hop, d);
	l4 = d + hl;
	memcpy(l4, ip->l4, ip->l4len);
	if (ip->foff == 0) {
		/* RFC 7915 §4.5: an IPv4 UDP checksum of zero is computed
		 * (IPv6 has none optional, RFC 8200 §8.1); check_l4 made
		 * sure the datagram is whole. */
		if (ip->proto == IPPROTO_UDP && rd16(ip->l4 + 6) == 0) {
			size_t ulen = rd16(ip->l4 + 4);

			ck = (uint16_t)~fold(sum16(
			    pseudo6(s6, d6, IPPROTO_UDP, ulen), l4, ulen));
			wr16(l4 + 6, ck == 0 ? 0xffff : ck);
		} else
			fix46(ip->proto, l4, ip->l4len, ip->l4len, ip->h, d);
	}
	x->out->family = AF_INET6;
	x->out->len = n;
	if (split) {
		x->out->mtu = mtu;
		return NAT_XLAT_SPLIT;
	}
	return NAT_XLAT_OK;
}

enum nat_xlat_verdict
nat_xlat_4to6(const struct nat_xlat_conf *c, const uint8_t *pkt, size_t len,
    uint8_t *dst, size_t cap, struct nat_xlat_out *out)
{
	struct xl x = {c, dst, cap, out};
	struct ip4 ip;
	enum nat_xlat_reason r;
	uint8_t s6[16], d6[16];
	int is_err, so;
	uint8_t t6, c6;
	uint32_t rest6;

	memset(out, 0, sizeof(*out));
	if ((r = parse4(pkt, len, 0, &ip)) != NAT_XLAT_R_NONE)
		return drop(&x, r);
	if (map46(c, ip.h + 16, d6) != 0)
		return not_ours(&x, NAT_XLAT_R_DST_UNMAPPED);
	if (proxied(c, ip.proto, ip.foff, ip.l4, ip.l4len))
		return not_ours(&x, NAT_XLAT_R_PROXIED);
	/* RFC 7915 §4.1: an illegal source (RFC 1812 §5.3.7: 0/8, 127/8,
	 * class D and E, the broadcast) is silently dropped; an ICMP error
	 * from one too: no router sends from there, so it is neither
	 * embedded under the prefix nor sent on from self6 (RFC 6791 is for
	 * routers with addresses that are merely not mapped). */
	if (v4_martian(ip.h + 12))
		return drop(&x, NAT_XLAT_R_SRC_ILLEGAL);
	is_err = ip.proto == IPPROTO_ICMP && ip.foff == 0 && ip.l4len >= 1 &&
	         icmp4_is_error(ip.l4[0]);
	if (map46(c, ip.h + 12, s6) != 0) {
		/* RFC 6791: an error from a router we cannot name still
		 * tells the IPv6 host something; it comes from us. */
		if (!is_err || v6_unspec(c->self6.s6_addr))
			return not_ours(&x, NAT_XLAT_R_SRC_UNMAPPED);
		memcpy(s6, &c->self6, 16);
	}
	/* RFC 7915 §4.1: a translator is a router (RFC 1812 §5.3.1). */
	if (ip.h[8] <= 1)
		return err4(&x, &ip, NAT_XLAT_R_TTL, I4_TIMXCEED, 0, 0);
	if (ip.hlen > IP4_HLEN) {
		so = opts4(ip.h + IP4_HLEN, ip.hlen - IP4_HLEN);
		if (so < 0)
			return drop(&x, NAT_XLAT_R_OPTIONS);
		if (so > 0) /* §4.1: Source Route Failed */
			return err4(
			    &x, &ip, NAT_XLAT_R_SRC_ROUTE, I4_UNREACH, 5, 0);
	}
	if (proto_v6_only(ip.proto))
		return drop(&x, NAT_XLAT_R_PROTO);
	if (ip.proto == IPPROTO_ICMP) {
		/* The ICMPv6 checksum covers a pseudo-header with the
		 * whole message length: no fragment can be rewritten. */
		if (FRAG4(&ip))
			return drop(&x, NAT_XLAT_R_ICMP_FRAG);
		if (ip.l4len < ICMP_HLEN)
			return drop(&x, NAT_XLAT_R_L4_SHORT);
		if (is_err)
			return icmp46_err(
			    &x, &ip, s6, d6, (uint8_t)(ip.h[8] - 1));
		if (icmp46_map(c, ip.l4, 0, &t6, &c6, &rest6) != 0)
			return drop(&x, NAT_XLAT_R_ICMP_TYPE);
		return body46(&x, &ip, s6, d6, (uint8_t)(ip.h[8] - 1));
	}
	if (ip.foff == 0) {
		if ((r = check_l4(ip.proto, ip.l4, ip.l4len, FRAG4(&ip))) !=
		    NAT_XLAT_R_NONE)
			return drop(&x, r);
		/* RFC 7915 §4.5: a stateless translator cannot compute
		 * the checksum of a fragmented datagram, so drops it; §4.4:
		 * Destination Unreachable, Communication Administratively
		 * Prohibited (3/13) to the sender, from the first fragment
		 * (RFC 1812 §4.3.2.7: never about a later one). */
		if (ip.proto == IPPROTO_UDP && ip.mf && rd16(ip.l4 + 6) == 0)
			return err4(
			    &x, &ip, NAT_XLAT_R_FRAG_UDP0, I4_UNREACH, 13, 0);
	} else if (ip.proto == IPPROTO_TCP && ip.foff == 1)
		/* RFC 1858 §4: offset 1 only serves to overwrite flags. */
		return drop(&x, NAT_XLAT_R_FRAG_SHORT);
	return body46(&x, &ip, s6, d6, (uint8_t)(ip.h[8] - 1));
}

/* ===================================================== IPv6 -> IPv4 */

/*
 * ICMPv6 messages for the host itself, whatever its addresses: Neighbor
 * Discovery (RFC 4861), MLD (RFC 2710, RFC 3810), Inverse ND (RFC 3122),
 * SEND (RFC 3971), Multicast Router Discovery (RFC 4286), RPL (RFC
 * 6550).  A pair's IPv6 address on the gateway's link must answer
 * Neighbor Solicitations like any other.
 */
static int
icmp6_local(uint8_t type)
{
	switch (type) {
	case 130:
	case 131:
	case 132:
	case 133:
	case 134:
	case 135:
	case 136:
	case 137:
	case 141:
	case 142:
	case 143:
	case 148:
	case 149:
	case 151:
	case 152:
	case 153:
	case 155:
		return 1;
	default:
		return 0;
	}
}

/*
 * RFC 7915 §5.4: an ICMPv6 error for the sender of ip, for reason r,
 * when conf allows.  RFC 4443 §2.4 (e): never about an ICMPv6 error, to
 * or from a multicast or unspecified address.
 */
static enum nat_xlat_verdict
err6(struct xl *x, const struct ip6 *ip, enum nat_xlat_reason r, uint8_t type,
    uint8_t code, uint32_t rest)
{
	uint8_t *d = x->dst;
	size_t body, n, msg;

	x->out->reason = r;
	if (!x->c->icmp_errors)
		return NAT_XLAT_DROP;
	if (ip->proto == IPPROTO_ICMPV6 && ip->foff == 0 &&
	    (ip->l4len < 1 || ip->l4[0] < 128))
		return NAT_XLAT_DROP;
	if (ip->h[8] == 0xff || ip->h[24] == 0xff || v6_unspec(ip->h + 8))
		return NAT_XLAT_DROP;
	body = min_sz(IP6_HLEN + (size_t)rd16(ip->h + 4),
	    ICMP6_ERR_MAX - IP6_HLEN - ICMP_HLEN);
	msg = ICMP_HLEN + body;
	n = IP6_HLEN + msg;
	if (n > x->cap)
		return NAT_XLAT_DROP;
	memset(d, 0, IP6_HLEN + ICMP_HLEN);
	d[0] = 0x60;
	wr16(d + 4, (uint16_t)msg);
	d[6] = IPPROTO_ICMPV6;
	d[7] = TTL_OURS;
	if (!v6_unspec(x->c->self6.s6_addr))
		memcpy(d + 8, &x->c->self6, 16);
	else
		memcpy(d + 8, ip->h + 24, 16);
	memcpy(d + 24, ip->h + 8, 16);
	d[40] = type;
	d[41] = code;
	wr32(d + 44, rest);
	memcpy(d + 48, ip->h, body);
	wr16(d + 42,
	    (uint16_t)~fold(sum16(
	        pseudo6(d + 8, d + 24, IPPROTO_ICMPV6, msg), d + 40, msg)));
	x->out->family = AF_INET6;
	x->out->len = n;
	return NAT_XLAT_ICMP;
}

/*
 * RFC 7915 §5.1.1: the IPv4 Identification of a fragment is the
 * low-order 16 bits of its Fragment header's.  Where the output cannot
 * send 0 (nat_xlat_conf ident_nonzero: a Linux raw socket with
 * IP_HDRINCL writes a fresh Identification into every packet that has
 * 0, so the fragments of one datagram would no longer match), a zero
 * takes the high-order 16 bits, or 0xffff if they are zero too: the
 * same for every fragment of the datagram, as reassembly needs (RFC 791
 * §3.2).
 */
static uint16_t
frag_ident(uint32_t fid, int nonzero)
{
	uint16_t id = (uint16_t)fid;

	if (id == 0 && nonzero) {
		id = (uint16_t)(fid >> 16);
		if (id == 0)
			id = 0xffff;
	}
	return id;
}

/*
 * RFC 7915 §5.1 and §5.1.1: the IPv4 header for ip into d (20 octets,
 * no options).  upper: upper-layer octets it announces.  Identification:
 * from the Fragment header (frag_ident; nonzero for a packet the output
 * sends, 0 for one inside an ICMP error, which is only data); else zero,
 * which RFC 6864 §4.1 allows for atomic datagrams (DF set), and for the
 * rest a Linux raw socket with IP_HDRINCL fills in (nat_xlat_split
 * takes one from its caller).
 */
static void
hdr64(const struct ip6 *ip, const uint8_t *s4, const uint8_t *d4, size_t upper,
    uint8_t ttl, int nonzero, uint8_t *d)
{
	size_t tot = IP4_HLEN + upper;
	uint16_t fl;

	d[0] = 0x45;
	/* Type of Service = Traffic Class */
	d[1] = (uint8_t)((ip->h[0] & 0x0f) << 4 | ip->h[1] >> 4);
	wr16(d + 2, (uint16_t)tot);
	wr16(d + 4, ip->frag ? frag_ident(ip->fid, nonzero) : 0);
	if (ip->frag)
		fl = (uint16_t)((ip->mf ? 0x2000 : 0) | ip->foff);
	else
		fl = tot > DF_THRESHOLD ? 0x4000 : 0;
	wr16(d + 6, fl);
	d[8] = ttl;
	d[9] = ip->proto == IPPROTO_ICMPV6 ? IPPROTO_ICMP : ip->proto;
	memcpy(d + 12, s4, 4);
	memcpy(d + 16, d4, 4);
	ip4_csum(d, IP4_HLEN);
}

/*
 * RFC 7915 §5.2: the ICMPv4 type, code and rest-of-header for an ICMPv6
 * message o.  inner_frag: the packet in error had a Fragment header
 * (Packet Too Big then counts 8 more octets).  0, or -1 if there is no
 * counterpart.
 */
static int
icmp64_map(const struct nat_xlat_conf *c, const uint8_t *o, int inner_frag,
    uint8_t *t4, uint8_t *c4, uint32_t *rest4)
{
	uint32_t v, mtu;

	*rest4 = 0;
	switch (o[0]) {
	case I6_ECHO:
	case I6_ECHOREPLY:
		*t4 = o[0] == I6_ECHO ? I4_ECHO : I4_ECHOREPLY;
		*c4 = 0;
		*rest4 = rd32(o + 4);
		return 0;
	case I6_UNREACH:
		*t4 = I4_UNREACH;
		switch (o[1]) {
		case 0:          /* no route */
		case 2:          /* beyond scope of source */
		case 3:          /* address unreachable */
			*c4 = 1; /* host unreachable */
			return 0;
		case 1: /* administratively prohibited */
			*c4 = 10;
			return 0;
		case 4:
			*c4 = 3; /* port unreachable */
			return 0;
		default:
			return -1;
		}
	case I6_PKTTOOBIG:
		*t4 = I4_UNREACH;
		*c4 = 4;
		/* minimum(advertised MTU - 20, MTU_of_IPv4_nexthop,
		 * MTU_of_IPv6_nexthop - 20), each IPv6 figure 8 less if the
		 * packet in error has a Fragment header (we added it). */
		v = rd32(o + 4);
		mtu = v > 65535 ? 65535 : v;
		mtu = mtu > 28 ? mtu - 20 - (inner_frag ? FRAG_HLEN : 0) : 0;
		if (mtu > mtu4(c))
			mtu = mtu4(c);
		if (mtu > link6(c) - 20 - (inner_frag ? FRAG_HLEN : 0))
			mtu = link6(c) - 20 - (inner_frag ? FRAG_HLEN : 0);
		/* RFC 791 §3.2: every IPv4 link takes 68. */
		*rest4 = mtu < 68 ? 68 : mtu;
		return 0;
	case I6_TIMXCEED:
		*t4 = I4_TIMXCEED;
		*c4 = o[1];
		return 0;
	case I6_PARAMPROB:
		if (o[1] == 1) { /* unrecognised Next Header */
			*t4 = I4_UNREACH;
			*c4 = 2; /* protocol unreachable */
			return 0;
		}
		if (o[1] != 0)
			return -1;
		/* §5.2 Figure 6 */
		v = rd32(o + 4);
		*t4 = I4_PARAMPROB;
		*c4 = 0;
		if (v == 0 || v == 1)
			*rest4 = v << 24;
		else if (v == 4 || v == 5)
			*rest4 = 2u << 24; /* Total Length */
		else if (v == 6)
			*rest4 = 9u << 24; /* Protocol */
		else if (v == 7)
			*rest4 = 8u << 24; /* TTL */
		else if (v >= 8 && v <= 23)
			*rest4 = 12u << 24; /* Source Address */
		else if (v >= 24 && v <= 39)
			*rest4 = 16u << 24; /* Destination Address */
		else
			return -1;
		return 0;
	default:
		return -1;
	}
}

/* fix46 the other way; ip6h is the IPv6 header the data came with. */
static void
fix64(uint8_t proto, uint8_t *l4, size_t l4len, size_t ulen,
    const uint8_t *ip6h, const uint8_t *ip4h)
{
	uint16_t ck;
	uint8_t t;

	if (proto != IPPROTO_ICMPV6) {
		l4_adjust(proto, l4, l4len, addrs6(ip6h), addrs4(ip4h));
		return;
	}
	if (l4len < 4 || (l4[0] != I6_ECHO && l4[0] != I6_ECHOREPLY))
		return;
	t = l4[0] == I6_ECHO ? I4_ECHO : I4_ECHOREPLY;
	ck = csum_adjust(rd16(l4 + 2),
	    ((uint64_t)l4[0] << 8 | l4[1]) +
	        pseudo6(ip6h + 8, ip6h + 24, IPPROTO_ICMPV6, ulen),
	    (uint64_t)t << 8);
	l4[0] = t;
	l4[1] = 0;
	wr16(l4 + 2, ck);
}

/*
 * RFC 7915 §5.3: the ICMPv6 error's packet translated too, the whole
 * cut to 576 octets (RFC 1812 §4.3.2.3).  An RFC 4884 extension of
 * Destination Unreachable or Time Exceeded is kept after the translated
 * datagram, the length attribute recounted in 32-bit words (§5.2, RFC
 * 4884 §4).
 */
static enum nat_xlat_verdict
icmp64_err(struct xl *x, const struct ip6 *ip, const uint8_t *s4,
    const uint8_t *d4, uint8_t ttl)
{
	const uint8_t *o = ip->l4;
	struct ip6 in;
	uint8_t is4[4], id4[4], t4, c4, *d = x->dst, *q;
	uint32_t rest4;
	size_t n, body, msg, orig, extlen = 0, dgram, field = 0;

	if (fold(
	        sum16(pseudo6(ip->h + 8, ip->h + 24, IPPROTO_ICMPV6, ip->l4len),
	            o, ip->l4len)) != 0xffff)
		return drop(x, NAT_XLAT_R_ICMP_CSUM);
	/* RFC 4884 §4: in ICMPv6, octet 4, in 64-bit words. */
	if (o[0] == I6_UNREACH || o[0] == I6_TIMXCEED)
		orig = ext4884(o, ip->l4len, 4, 8, &extlen);
	else
		orig = ip->l4len - ICMP_HLEN;
	if (parse6(o + ICMP_HLEN, orig, 1, &in) != NAT_XLAT_R_NONE ||
	    in.fragext)
		return drop(x, NAT_XLAT_R_ICMP_INNER);
	if (proxied(x->c, in.proto, in.foff, in.l4, in.l4len))
		return not_ours(x, NAT_XLAT_R_PROXIED);
	if (icmp64_map(x->c, o, in.frag, &t4, &c4, &rest4) != 0)
		return drop(x, NAT_XLAT_R_ICMP_TYPE);
	if (in.proto == IPPROTO_ICMP ||
	    (proto_v6_only(in.proto) && in.proto != IPPROTO_ICMPV6) ||
	    map64(x->c, in.h + 8, is4) != 0 || map64(x->c, in.h + 24, id4) != 0)
		return drop(x, NAT_XLAT_R_ICMP_INNER);
	dgram = IP4_HLEN + in.l4len;
	if (extlen != 0 && (t4 == I4_UNREACH || t4 == I4_TIMXCEED))
		field = pad4884(
		    &dgram, IP4_HLEN + ICMP_HLEN, extlen, 4, ICMP4_ERR_MAX);
	if (field == 0) {
		extlen = 0;
		dgram = min_sz(dgram, ICMP4_ERR_MAX - IP4_HLEN - ICMP_HLEN);
		field = dgram;
	}
	body = dgram - IP4_HLEN;
	msg = ICMP_HLEN + field + extlen;
	n = IP4_HLEN + msg;
	if (n > x->cap)
		return drop(x, NAT_XLAT_R_NO_ROOM);
	hdr64(ip, s4, d4, msg, ttl, x->c->ident_nonzero, d);
	q = d + IP4_HLEN;
	q[0] = t4;
	q[1] = c4;
	wr16(q + 2, 0);
	wr32(q + 4, rest4);
	hdr64(&in, is4, id4, in.ulen, in.h[7], 0, q + ICMP_HLEN);
	memcpy(q + ICMP_HLEN + IP4_HLEN, in.l4, body);
	if (in.foff == 0)
		fix64(in.proto, q + ICMP_HLEN + IP4_HLEN, body, in.ulen, in.h,
		    q + ICMP_HLEN);
	if (extlen != 0) {
		/* RFC 4884 §4: in ICMPv4, octet 5, in 32-bit words. */
		q[5] = (uint8_t)(field / 4);
		memset(q + ICMP_HLEN + dgram, 0, field - dgram);
		memcpy(q + ICMP_HLEN + field, o + ICMP_HLEN + orig, extlen);
	}
	wr16(q + 2, (uint16_t)~fold(sum16(0, q, msg)));
	return done(x, AF_INET, n);
}

/*
 * RFC 7915 §5.1 and §5.5 for everything but ICMPv6 errors.  Over the
 * IPv4 MTU: a fragment or a packet sent without DF is cut (SPLIT);
 * one with DF gets Packet Too Big back (RFC 4443 §3.2).
 */
static enum nat_xlat_verdict
body64(struct xl *x, const struct ip6 *ip, const uint8_t *s4, const uint8_t *d4,
    uint8_t ttl)
{
	uint8_t *d = x->dst;
	size_t n = IP4_HLEN + ip->l4len;
	unsigned mtu = mtu4(x->c), pmtu;
	int split = 0;

	if (n > mtu) {
		if (!ip->frag && n > DF_THRESHOLD) {
			pmtu = mtu + 20;
			return err6(x, ip, NAT_XLAT_R_TOO_BIG, I6_PKTTOOBIG, 0,
			    pmtu < 1280 ? 1280 : pmtu);
		}
		split = 1;
	}
	/* A Total Length past 16 bits cannot be written; RFC 791 §3.2: no
	 * fragment may end past octet 65535 of its datagram either. */
	if (n > 65535)
		return drop(x, NAT_XLAT_R_TOO_BIG);
	if ((size_t)ip->foff * 8 + n > 65535)
		return drop(x, NAT_XLAT_R_LENGTH);
	if (n > x->cap)
		return drop(x, NAT_XLAT_R_NO_ROOM);
	hdr64(ip, s4, d4, ip->l4len, ttl, x->c->ident_nonzero, d);
	memcpy(d + IP4_HLEN, ip->l4, ip->l4len);
	if (ip->foff == 0)
		fix64(ip->proto, d + IP4_HLEN, ip->l4len, ip->ulen, ip->h, d);
	x->out->family = AF_INET;
	x->out->len = n;
	if (split) {
		x->out->mtu = mtu;
		return NAT_XLAT_SPLIT;
	}
	return NAT_XLAT_OK;
}

enum nat_xlat_verdict
nat_xlat_6to4(const struct nat_xlat_conf *c, const uint8_t *pkt, size_t len,
    uint8_t *dst, size_t cap, struct nat_xlat_out *out)
{
	struct xl x = {c, dst, cap, out};
	struct ip6 ip;
	enum nat_xlat_reason r;
	uint8_t s4[4], d4[4], t4, c4;
	uint32_t rest4;
	int is_icmp, is_err;

	memset(out, 0, sizeof(*out));
	if ((r = parse6(pkt, len, 0, &ip)) != NAT_XLAT_R_NONE)
		return drop(&x, r);
	is_icmp = ip.proto == IPPROTO_ICMPV6 && ip.foff == 0 && ip.l4len >= 1;
	if (is_icmp && icmp6_local(ip.l4[0]))
		return not_ours(&x, NAT_XLAT_R_LOCAL_ICMP6);
	if (map64(c, ip.h + 24, d4) != 0)
		return not_ours(&x, NAT_XLAT_R_DST_UNMAPPED);
	if (proxied(c, ip.proto, ip.foff, ip.l4, ip.l4len))
		return not_ours(&x, NAT_XLAT_R_PROXIED);
	is_err = is_icmp && ip.l4[0] < 128;
	if (src6_spoofed(c, ip.h + 8))
		return drop(&x, NAT_XLAT_R_SRC_PREFIX);
	if (map64(c, ip.h + 8, s4) != 0) {
		/* RFC 6791, as in nat_xlat_4to6 */
		if (!is_err || v4_zero(&c->self4))
			return not_ours(&x, NAT_XLAT_R_SRC_UNMAPPED);
		memcpy(s4, &c->self4, 4);
	}
	/* RFC 7915 §5.1: Hop Limit, as a router does (RFC 8200 §3). */
	if (ip.h[7] <= 1)
		return err6(&x, &ip, NAT_XLAT_R_TTL, I6_TIMXCEED, 0, 0);
	/* §5.1: a Routing header with Segments Left is not ours to skip;
	 * the pointer names the field. */
	if (ip.segleft != 0)
		return err6(&x, &ip, NAT_XLAT_R_SEG_LEFT, I6_PARAMPROB, 0,
		    (uint32_t)ip.segleft);
	/* §5.1.1: an extension header after the Fragment header: dropped.
	 * §5.4: Destination Unreachable, Communication Administratively
	 * Prohibited (1/1) to the sender, once, for the first fragment,
	 * the one that carries the header; the others are only counted. */
	if (ip.fragext) {
		if (ip.foff != 0)
			return drop(&x, NAT_XLAT_R_FRAG_EXTHDR);
		return err6(&x, &ip, NAT_XLAT_R_FRAG_EXTHDR, I6_UNREACH, 1, 0);
	}
	if (ip.proto == IPPROTO_ICMP ||
	    (proto_v6_only(ip.proto) && ip.proto != IPPROTO_ICMPV6))
		return drop(&x, NAT_XLAT_R_PROTO);
	if (ip.proto == IPPROTO_ICMPV6) {
		if (FRAG6(&ip))
			return drop(&x, NAT_XLAT_R_ICMP_FRAG);
		if (ip.l4len < ICMP_HLEN)
			return drop(&x, NAT_XLAT_R_L4_SHORT);
		if (is_err)
			return icmp64_err(
			    &x, &ip, s4, d4, (uint8_t)(ip.h[7] - 1));
		if (icmp64_map(c, ip.l4, 0, &t4, &c4, &rest4) != 0)
			return drop(&x, NAT_XLAT_R_ICMP_TYPE);
		return body64(&x, &ip, s4, d4, (uint8_t)(ip.h[7] - 1));
	}
	if (ip.foff == 0) {
		if ((r = check_l4(ip.proto, ip.l4, ip.l4len, FRAG6(&ip))) !=
		    NAT_XLAT_R_NONE)
			return drop(&x, r);
		/* RFC 8200 §8.1: IPv6 UDP always carries a checksum. */
		if (ip.proto == IPPROTO_UDP && rd16(ip.l4 + 6) == 0)
			return drop(&x, NAT_XLAT_R_UDP_ZERO6);
	} else if (ip.proto == IPPROTO_TCP && ip.foff == 1)
		return drop(&x, NAT_XLAT_R_FRAG_SHORT);
	return body64(&x, &ip, s4, d4, (uint8_t)(ip.h[7] - 1));
}

enum nat_xlat_verdict
nat_xlat(const struct nat_xlat_conf *c, const uint8_t *pkt, size_t len,
    uint8_t *dst, size_t cap, struct nat_xlat_out *out)
{
	if (len >= 1 && pkt[0] >> 4 == 6)
		return nat_xlat_6to4(c, pkt, len, dst, cap, out);
	if (len >= 1 && pkt[0] >> 4 == 4)
		return nat_xlat_4to6(c, pkt, len, dst, cap, out);
	memset(out, 0, sizeof(*out));
	out->reason = len == 0 ? NAT_XLAT_R_TRUNCATED : NAT_XLAT_R_VERSION;
	return NAT_XLAT_DROP;
}

/* ======================================================== fragments */

/* RFC 7915 §4: IPv6 fragments, each with a copy of the Fragment header,
 * offsets counted on from the one the packet had. */
static int
split6(const uint8_t *p, size_t len, unsigned mtu, size_t *pos, uint8_t *dst,
    size_t cap, size_t *outlen)
{
	size_t data, room, n, hl = IP6_HLEN + FRAG_HLEN;
	unsigned fo, off;
	int last;

	if (len <= hl || p[6] != IPPROTO_FRAGMENT ||
	    IP6_HLEN + (size_t)rd16(p + 4) != len || mtu <= hl)
		return -1;
	room = (mtu - hl) & ~(size_t)7;
	data = len - hl;
	if (room == 0 || *pos > data)
		return -1;
	if (*pos == data)
		return 0;
	if ((*pos & 7) != 0)
		return -1;
	n = min_sz(data - *pos, room);
	last = *pos + n == data;
	fo = rd16(p + 42);
	off = (fo >> 3) + (unsigned)(*pos / 8);
	if (hl + n > cap || off > 0x1fff)
		return -1;
	memcpy(dst, p, hl);
	wr16(dst + 4, (uint16_t)(FRAG_HLEN + n));
	wr16(dst + 42, (uint16_t)(off << 3 | (last ? (fo & 1) : 1)));
	memcpy(dst + hl, p + hl + *pos, n);
	*pos += n;
	*outlen = hl + n;
	return 1;
}

/* RFC 791 §3.2: IPv4 fragments of our own 20-octet header shape. */
static int
split4(const uint8_t *p, size_t len, unsigned mtu, uint16_t ident, size_t *pos,
    uint8_t *dst, size_t cap, size_t *outlen)
{
	size_t data, room, n;
	unsigned fl, off;
	int last;

	if (len <= IP4_HLEN || p[0] != 0x45 || rd16(p + 2) != len ||
	    mtu <= IP4_HLEN)
		return -1;
	fl = rd16(p + 6);
	if (fl & 0x4000) /* DF: not ours to cut */
		return -1;
	room = (mtu - IP4_HLEN) & ~(size_t)7;
	data = len - IP4_HLEN;
	if (room == 0 || *pos > data)
		return -1;
	if (*pos == data)
		return 0;
	if ((*pos & 7) != 0)
		return -1;
	n = min_sz(data - *pos, room);
	last = *pos + n == data;
	off = (fl & 0x1fff) + (unsigned)(*pos / 8);
	if (IP4_HLEN + n > cap || off > 0x1fff)
		return -1;
	memcpy(dst, p, IP4_HLEN);
	wr16(dst + 2, (uint16_t)(IP4_HLEN + n));
	if (rd16(p + 4) == 0)
		wr16(dst + 4, ident);
	wr16(dst + 6, (uint16_t)(off | (last ? (fl & 0x2000) : 0x2000)));
	ip4_csum(dst, IP4_HLEN);
	memcpy(dst + IP4_HLEN, p + IP4_HLEN + *pos, n);
	*pos += n;
	*outlen = IP4_HLEN + n;
	return 1;
}

int
nat_xlat_split(const uint8_t *pkt, size_t len, unsigned mtu, uint16_t ident,
    size_t *pos, uint8_t *dst, size_t cap, size_t *outlen)
{
	if (len < 1)
		return -1;
	if (pkt[0] >> 4 == 6)
		return split6(pkt, len, mtu, pos, dst, cap, outlen);
	if (pkt[0] >> 4 == 4)
		return split4(pkt, len, mtu, ident, pos, dst, cap, outlen);
	return -1;
}

void
nat_xlat_mtus(
    const struct nat_xlat_conf *c, unsigned *m4, unsigned *m6, unsigned *l6)
{
	*m4 = mtu4(c);
	*m6 = mtu6(c);
	*l6 = link6(c);
}

const char *
nat_xlat_reason_name(enum nat_xlat_reason r)
{
	static const char *const names[NAT_XLAT_R_MAX] = {
	    [NAT_XLAT_R_NONE] = "none",
	    [NAT_XLAT_R_DST_UNMAPPED] = "dst_unmapped",
	    [NAT_XLAT_R_SRC_UNMAPPED] = "src_unmapped",
	    [NAT_XLAT_R_PROXIED] = "proxied",
	    [NAT_XLAT_R_LOCAL_ICMP6] = "local_icmp6",
	    [NAT_XLAT_R_TRUNCATED] = "truncated",
	    [NAT_XLAT_R_VERSION] = "version",
	    [NAT_XLAT_R_IHL] = "bad_ihl",
	    [NAT_XLAT_R_LENGTH] = "bad_length",
	    [NAT_XLAT_R_IP_CSUM] = "ip_checksum",
	    [NAT_XLAT_R_OPTIONS] = "bad_options",
	    [NAT_XLAT_R_EXTHDR] = "bad_ext_header",
	    [NAT_XLAT_R_JUMBO] = "jumbogram",
	    [NAT_XLAT_R_PROTO] = "bad_protocol",
	    [NAT_XLAT_R_L4_SHORT] = "l4_truncated",
	    [NAT_XLAT_R_UDP_LEN] = "udp_length",
	    [NAT_XLAT_R_UDP_ZERO6] = "udp6_zero_checksum",
	    [NAT_XLAT_R_ICMP_CSUM] = "icmp_checksum",
	    [NAT_XLAT_R_ICMP_TYPE] = "icmp_untranslatable",
	    [NAT_XLAT_R_ICMP_INNER] = "icmp_inner",
	    [NAT_XLAT_R_ICMP_FRAG] = "icmp_fragment",
	    [NAT_XLAT_R_FRAG_UDP0] = "fragment_udp_zero_checksum",
	    [NAT_XLAT_R_FRAG_SHORT] = "fragment_too_short",
	    [NAT_XLAT_R_FRAG_EXTHDR] = "fragment_ext_header",
	    [NAT_XLAT_R_TTL] = "ttl_expired",
	    [NAT_XLAT_R_SRC_ROUTE] = "source_route",
	    [NAT_XLAT_R_SEG_LEFT] = "segments_left",
	    [NAT_XLAT_R_TOO_BIG] = "too_big",
	    [NAT_XLAT_R_SRC_PREFIX] = "src_under_prefix",
	    [NAT_XLAT_R_SRC_ILLEGAL] = "src_illegal",
	    [NAT_XLAT_R_NO_ROOM] = "no_room",
	};

	if ((unsigned)r >= NAT_XLAT_R_MAX || names[r] == NULL)
		return "unknown";
	return names[r];
}
