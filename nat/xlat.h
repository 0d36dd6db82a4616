/*
 * nat/xlat.h: stateless IP/ICMP translation of one packet, IPv4 to IPv6
 * and back (SIIT, RFC 7915), with explicit address mappings (the pair
 * table as an EAM table, RFC 7757) and RFC 6052 prefixes.  Pure: no
 * state, no allocation, no clock; the caller owns every buffer.
 *
 * Addresses (RFC 7757 §3.2 order): an address in the pair table maps to
 * its partner; otherwise an IPv4 address is embedded under the first
 * prefix and an IPv6 address under any prefix gives back the IPv4
 * address it embeds (RFC 6052 §2.2).  An IPv4 address recovered from a
 * prefix that belongs to a pair is refused: only the pair's own IPv6
 * address may stand for it.  An IPv6 source under a prefix is refused
 * unless that prefix's sources flag says otherwise.  Under a prefix
 * marked global_only (the
 * well-known prefix) non-global IPv4 addresses are refused (RFC 6052
 * §3.1).  Multicast, broadcast, loopback and "this network" IPv4
 * addresses never map.
 *
 * Fragments are translated (RFC 7915 §4.1, §5.1.1: Fragment header <->
 * IPv4 fragment fields), except fragmented ICMP (its checksum needs the
 * whole message: NAT_XLAT_R_ICMP_FRAG), a first fragment of UDP with a
 * zero checksum (RFC 7915 §4.5: NAT_XLAT_R_FRAG_UDP0), an IPv6 fragment
 * whose Fragment header is followed by another extension header (§5.1.1:
 * NAT_XLAT_R_FRAG_EXTHDR) and first fragments too short to hold the
 * transport header (RFC 1858).
 *
 * Sizes (RFC 7915 §4, §4.1): an IPv4 packet without DF is cut to fit
 * mtu6, the lowest IPv6 MTU of the paths; one with DF (a fragment too) is
 * judged against link6, the MTU of the IPv6 next hop, and answered with
 * Fragmentation Needed when over it.  IPv6 packets are judged against
 * mtu4, the MTU of the IPv4 next hop (§5.1).
 */
#ifndef NAT_XLAT_H
#define NAT_XLAT_H

#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

#include "nat/pair.h"

/* RFC 7915 §4: without configuration, IPv6 packets are kept to the
 * minimum IPv6 MTU (RFC 8200 §5). */
#define NAT_XLAT_MTU6_DEFAULT 1280
#define NAT_XLAT_MTU4_DEFAULT 1500
/* The IPv6 next hop's MTU when none is configured: Ethernet's. */
#define NAT_XLAT_LINK6_DEFAULT 1500

/* A translated packet is at most this much longer than its input: IPv6
 * header (20 more than IPv4 without options) plus a Fragment header.  A
 * dst of len + NAT_XLAT_GROWTH bytes always suffices; an ICMP error needs
 * at most 1280. */
#define NAT_XLAT_GROWTH 28

struct nat_xlat_prefix {
	struct in6_addr prefix;
	unsigned plen;   /* 32, 40, 48, 56, 64 or 96 */
	int global_only; /* RFC 6052 §3.1: 64:ff9b::/96 */
	/* 0: an IPv6 packet whose source lies under the prefix is dropped
	 * (NAT_XLAT_R_SRC_PREFIX): the prefix stands for IPv4 hosts, so
	 * such a source claims to be one of them, and translating it would
	 * hand any IPv6 sender the IPv4 source of its choice.  1: it is
	 * translated to the IPv4 address it embeds, which is only safe
	 * where ingress filtering (BCP 38, RFC 2827) keeps such sources
	 * from arriving on the IPv6 side. */
	int sources;
};

struct nat_xlat_conf {
	const struct nat_pairs *pairs; /* NULL: none */
	/* nprefixes entries; IPv4 addresses are embedded under [0] */
	const struct nat_xlat_prefix *prefixes;
	size_t nprefixes;
	unsigned mtu4; /* IPv4 next-hop MTU; 0: 1500 */
	/* RFC 7915 §4: the lowest IPv6 MTU of the paths, which IPv4 packets
	 * without DF are cut to fit (at most link6); 0: 1280, never below */
	unsigned mtu6;
	/* RFC 7915 §4.1: the MTU of the IPv6 next hop, which IPv4 packets
	 * with DF must fit; MTU_of_IPv6_nexthop of §4.2 and §5.2.  0: 1500,
	 * or mtu6 if that is larger; never below 1280. */
	unsigned link6;
	/* The TCP port the SMTP proxy serves, left to the host; 0: none */
	uint16_t proxy_port;
	/* 1: build ICMP errors for the sender (RFC 7915 §4.4, §5.4) */
	int icmp_errors;
	/* Source of ICMP errors we build, and of translated ICMP errors
	 * from an unmapped router (RFC 6791); unset (all zero): the
	 * original packet's destination, and no RFC 6791 fallback. */
	struct in_addr self4;
	struct in6_addr self6;
	/* 1: the output cannot carry IPv4 Identification 0 (a Linux raw
	 * socket with IP_HDRINCL writes a fresh one into each packet that
	 * has it, RFC 6864 §4.1 leaves that to the sender), so an IPv6
	 * fragment whose Identification has zero low-order 16 bits takes
	 * the high-order 16 bits instead (0xffff if those are zero too):
	 * every fragment of the datagram gets the same one, where RFC 7915
	 * §5.1.1's zero would become one per packet.  0: §5.1.1 as written. */
	int ident_nonzero;
};

enum nat_xlat_verdict {
	NAT_XLAT_OK = 0,   /* dst holds the translated packet */
	NAT_XLAT_SPLIT,    /* dst holds it, longer than out->mtu: send
	                      the pieces nat_xlat_split cuts */
	NAT_XLAT_ICMP,     /* dropped for out->reason; dst holds an ICMP
	                      error for the sender, in its family */
	NAT_XLAT_DROP,     /* dropped for out->reason */
	NAT_XLAT_NOT_OURS, /* not translatable here (out->reason): let
	                      the host have it */
};

/* Why a packet was not translated.  Keep nat_xlat_reason_name in step. */
enum nat_xlat_reason {
	NAT_XLAT_R_NONE = 0,
	/* not ours */
	NAT_XLAT_R_DST_UNMAPPED, /* destination maps to nothing */
	NAT_XLAT_R_SRC_UNMAPPED, /* source maps to nothing */
	NAT_XLAT_R_PROXIED,      /* TCP to/from proxy_port */
	NAT_XLAT_R_LOCAL_ICMP6,  /* ND, MLD...: for the host itself */
	/* malformed */
	NAT_XLAT_R_TRUNCATED, /* shorter than its IP header says */
	NAT_XLAT_R_VERSION,   /* not IPv4 or IPv6 */
	NAT_XLAT_R_IHL,       /* IPv4 header length < 20 */
	NAT_XLAT_R_LENGTH,    /* total / payload length field */
	NAT_XLAT_R_IP_CSUM,   /* IPv4 header checksum */
	NAT_XLAT_R_OPTIONS,   /* malformed IPv4 options */
	NAT_XLAT_R_EXTHDR,    /* IPv6 extension header chain */
	NAT_XLAT_R_JUMBO,     /* IPv6 jumbogram (RFC 2675) */
	NAT_XLAT_R_PROTO,     /* protocol with no meaning across */
	NAT_XLAT_R_L4_SHORT,  /* TCP/UDP/ICMP header cut short */
	NAT_XLAT_R_UDP_LEN,   /* UDP length field */
	NAT_XLAT_R_UDP_ZERO6, /* IPv6 UDP without checksum */
	NAT_XLAT_R_ICMP_CSUM, /* ICMP error with a bad checksum */
	/* untranslatable */
	NAT_XLAT_R_ICMP_TYPE,   /* no counterpart (§4.2, §5.2) */
	NAT_XLAT_R_ICMP_INNER,  /* bad or unmappable inner packet */
	NAT_XLAT_R_ICMP_FRAG,   /* fragmented ICMP */
	NAT_XLAT_R_FRAG_UDP0,   /* §4.5: fragmented, UDP checksum 0 */
	NAT_XLAT_R_FRAG_SHORT,  /* first fragment, transport header
	                           incomplete; or RFC 1858 offset 1 */
	NAT_XLAT_R_FRAG_EXTHDR, /* §5.1.1: extension header after the
	                           Fragment header */
	/* router duties */
	NAT_XLAT_R_TTL,       /* TTL / hop limit expired */
	NAT_XLAT_R_SRC_ROUTE, /* §4.1: unexpired source route */
	NAT_XLAT_R_SEG_LEFT,  /* §5.1: Segments Left not zero */
	NAT_XLAT_R_TOO_BIG,   /* over the MTU and not to be cut */
	/* policy */
	NAT_XLAT_R_SRC_PREFIX,  /* IPv6 source under a prefix: spoofed */
	NAT_XLAT_R_SRC_ILLEGAL, /* §4.1: IPv4 source 0/8, 127/8, class D
	                           or E (RFC 1812 §5.3.7) */
	/* caller */
	NAT_XLAT_R_NO_ROOM, /* dst too small */
	NAT_XLAT_R_MAX
};

struct nat_xlat_out {
	size_t len;                  /* bytes written to dst */
	int family;                  /* AF_INET or AF_INET6, of dst */
	enum nat_xlat_reason reason; /* for ICMP, DROP, NOT_OURS */
	unsigned mtu;                /* for SPLIT: the piece size */
};

/*
 * Translates the IPv4 or IPv6 packet pkt[0..len) (the version nibble
 * decides) into dst of capacity cap.  Reads nothing past len; bytes past
 * the IP total/payload length are ignored.  Writes dst only for OK,
 * SPLIT and ICMP, and *out always.  Keeps no pointer.
 */
enum nat_xlat_verdict nat_xlat(const struct nat_xlat_conf *conf,
    const uint8_t *pkt, size_t len, uint8_t *dst, size_t cap,
    struct nat_xlat_out *out);
/* The same, one direction: a packet of the other version is dropped
 * (NAT_XLAT_R_VERSION). */
enum nat_xlat_verdict nat_xlat_4to6(const struct nat_xlat_conf *conf,
    const uint8_t *pkt, size_t len, uint8_t *dst, size_t cap,
    struct nat_xlat_out *out);
enum nat_xlat_verdict nat_xlat_6to4(const struct nat_xlat_conf *conf,
    const uint8_t *pkt, size_t len, uint8_t *dst, size_t cap,
    struct nat_xlat_out *out);

/*
 * Cuts pkt[0..len), a packet nat_xlat returned with NAT_XLAT_SPLIT, into
 * fragments of at most mtu bytes: IPv6 ones by its Fragment header
 * (RFC 7915 §4), IPv4 ones by RFC 791 §3.2 (with ident as their
 * Identification if pkt's is zero).  *pos is 0 before the first call;
 * each call writes the next fragment into dst (cap bytes, mtu suffice)
 * and returns 1 with its length in *outlen, then 0 when none is left.
 * -1 if pkt is not such a packet or mtu is too small.
 */
int nat_xlat_split(const uint8_t *pkt, size_t len, unsigned mtu, uint16_t ident,
    size_t *pos, uint8_t *dst, size_t cap, size_t *outlen);

/*
 * The sizes conf stands for, defaults and clamps applied: *mtu4 the IPv4
 * next hop's MTU (§5.1), *mtu6 the lowest IPv6 MTU that IPv4 packets
 * without DF are cut to fit (§4), *link6 the IPv6 next hop's MTU that
 * packets with DF must fit (§4.1).  For a fast path that must judge
 * sizes as nat_xlat does.
 */
void nat_xlat_mtus(const struct nat_xlat_conf *conf, unsigned *mtu4,
    unsigned *mtu6, unsigned *link6);

/* A short static token for a reason ("dst_unmapped", ...), for counters
 * and log lines; "unknown" out of range.  Never free it. */
const char *nat_xlat_reason_name(enum nat_xlat_reason r);

#endif
