/*
 * nat/pkt.h: the link, IP and TCP headers of a captured packet, parsed
 * for the capture tools (tools/smtp64-pcap.c).  Pure: no allocation, no
 * state; the packet is hostile input and every length is checked before
 * it is read.
 */
#ifndef NAT_PKT_H
#define NAT_PKT_H

#include <stddef.h>
#include <stdint.h>

/* Link-layer framings a capture may use (libpcap's DLT_* values are
 * mapped to these by the caller, so this module needs no libpcap). */
enum nat_pkt_link {
	NAT_PKT_LINK_ETHER = 0, /* Ethernet II, up to two 802.1Q/ad tags */
	NAT_PKT_LINK_SLL,       /* Linux cooked capture v1 (16 bytes) */
	NAT_PKT_LINK_SLL2,      /* Linux cooked capture v2 (20 bytes) */
	NAT_PKT_LINK_NULL,      /* BSD loopback: 4-byte family */
	NAT_PKT_LINK_RAW,       /* the IP header first */
};

enum nat_pkt_rc {
	NAT_PKT_OK = 0,
	NAT_PKT_NOT_TCP, /* not IP, or not TCP */
	NAT_PKT_FRAG,    /* an IP fragment: not reassembled */
	NAT_PKT_BAD,     /* malformed or cut short */
};

/* TCP flags (RFC 9293 §3.1). */
#define NAT_PKT_TH_FIN 0x01
#define NAT_PKT_TH_SYN 0x02
#define NAT_PKT_TH_RST 0x04
#define NAT_PKT_TH_ACK 0x10

/* Extension headers followed before giving up (RFC 8200 §4). */
#define NAT_PKT_IPV6_EXT_MAX 8

/* One TCP segment.  data points into the caller's packet. */
struct nat_pkt_tcp {
	int family;               /* AF_INET or AF_INET6 */
	uint8_t src[16], dst[16]; /* IPv4 in the first 4 bytes, rest 0 */
	uint16_t sport, dport;
	uint32_t seq, ack;
	unsigned flags;
	const uint8_t *data;
	size_t len;      /* payload bytes captured */
	size_t real_len; /* payload length the IP header gives */
};

/*
 * Skips the link-layer header of p[0..n); *off is where the IP header
 * starts (NAT_PKT_OK), and then n > *off.  NAT_PKT_NOT_TCP for a frame
 * that carries neither IPv4 nor IPv6, NAT_PKT_BAD if it is cut short.
 */
enum nat_pkt_rc nat_pkt_link_skip(
    enum nat_pkt_link link, const uint8_t *p, size_t n, size_t *off);

/*
 * Parses the IPv4 or IPv6 packet p[0..n) (n: bytes captured, which may
 * be fewer than the IP header says, or more when a frame was padded) and
 * fills *out for a TCP segment.  *out is written only on NAT_PKT_OK;
 * out->data then points into p, and len <= real_len, len <= n.
 */
enum nat_pkt_rc nat_pkt_ip(const uint8_t *p, size_t n, struct nat_pkt_tcp *out);

/* nat_pkt_link_skip, then nat_pkt_ip on the rest. */
enum nat_pkt_rc nat_pkt_parse(enum nat_pkt_link link, const uint8_t *p,
    size_t n, struct nat_pkt_tcp *out);

#endif /* NAT_PKT_H */
