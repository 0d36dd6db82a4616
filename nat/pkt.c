/*
 * nat/pkt.c: link, IP and TCP headers of a captured packet.
 *
 *   nat_pkt_link_skip  Ethernet II with IEEE 802.1Q/802.1ad tags, Linux
 *                      cooked captures v1 and v2, BSD loopback, raw IP
 *   nat_pkt_ip         RFC 791 §3.1 (IPv4 header, fragments),
 *                      RFC 8200 §3-§4 (IPv6 header, extension headers)
 *   tcp                RFC 9293 §3.1 (TCP header, data offset)
 */
#include <sys/socket.h>

#include <netinet/in.h>

#include <string.h>

#include "nat/pkt.h"

static uint16_t
rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t
rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

enum nat_pkt_rc
nat_pkt_link_skip(
    enum nat_pkt_link link, const uint8_t *p, size_t n, size_t *off)
{
	uint16_t et = 0;
	size_t o = 0;
	int i;

	switch (link) {
	case NAT_PKT_LINK_ETHER:
		if (n < 14)
			return NAT_PKT_BAD;
		et = rd16(p + 12);
		o = 14;
		/* IEEE 802.1Q and 802.1ad tags, one or two. */
		for (i = 0; i < 2 && (et == 0x8100 || et == 0x88a8); i++) {
			if (n < o + 4)
				return NAT_PKT_BAD;
			et = rd16(p + o + 2);
			o += 4;
		}
		break;
	case NAT_PKT_LINK_SLL:
		if (n < 16)
			return NAT_PKT_BAD;
		et = rd16(p + 14);
		o = 16;
		break;
	case NAT_PKT_LINK_SLL2:
		if (n < 20)
			return NAT_PKT_BAD;
		et = rd16(p);
		o = 20;
		break;
	case NAT_PKT_LINK_NULL:
		/* The address family, in an order that varies: the IP
		 * version nibble decides instead. */
		o = 4;
		break;
	case NAT_PKT_LINK_RAW:
		o = 0;
		break;
	default:
		return NAT_PKT_NOT_TCP;
	}
	if (et != 0 && et != 0x0800 && et != 0x86dd)
		return NAT_PKT_NOT_TCP;
	if (n <= o)
		return NAT_PKT_BAD;
	*off = o;
	return NAT_PKT_OK;
}

/* The TCP header at p[0..avail), whose segment has real bytes per the
 * IP header (avail <= real). */
static enum nat_pkt_rc
tcp(const uint8_t *p, size_t avail, size_t real, struct nat_pkt_tcp *k)
{
	size_t doff;

	if (avail < 20 || real < 20)
		return NAT_PKT_BAD;
	/* RFC 9293 §3.1: the data offset counts 32-bit words. */
	doff = (size_t)(p[12] >> 4) * 4;
	if (doff < 20 || doff > avail)
		return NAT_PKT_BAD;
	k->sport = rd16(p);
	k->dport = rd16(p + 2);
	k->seq = rd32(p + 4);
	k->ack = rd32(p + 8);
	k->flags = p[13];
	k->data = p + doff;
	k->len = avail - doff;
	k->real_len = real - doff;
	return NAT_PKT_OK;
}

static enum nat_pkt_rc
ipv4(const uint8_t *p, size_t n, struct nat_pkt_tcp *out)
{
	struct nat_pkt_tcp k;
	size_t ihl, tot, avail;
	enum nat_pkt_rc rc;

	if (n < 20)
		return NAT_PKT_BAD;
	ihl = (size_t)(p[0] & 0x0f) * 4;
	tot = rd16(p + 2);
	/* A segmentation-offloaded packet may say 0. */
	if (tot == 0)
		tot = n;
	if (ihl < 20 || ihl > n || tot < ihl)
		return NAT_PKT_BAD;
	/* RFC 791 §3.1: MF flag and fragment offset. */
	if ((rd16(p + 6) & 0x3fff) != 0)
		return NAT_PKT_FRAG;
	if (p[9] != IPPROTO_TCP)
		return NAT_PKT_NOT_TCP;
	memset(&k, 0, sizeof(k));
	k.family = AF_INET;
	memcpy(k.src, p + 12, 4);
	memcpy(k.dst, p + 16, 4);
	/* Ethernet pads short frames: the IP length rules. */
	avail = (n < tot ? n : tot) - ihl;
	rc = tcp(p + ihl, avail, tot - ihl, &k);
	if (rc == NAT_PKT_OK)
		*out = k;
	return rc;
}

static enum nat_pkt_rc
ipv6(const uint8_t *p, size_t n, struct nat_pkt_tcp *out)
{
	struct nat_pkt_tcp k;
	size_t tot, off, avail;
	unsigned nh, i;
	enum nat_pkt_rc rc;

	if (n < 40)
		return NAT_PKT_BAD;
	tot = 40 + (size_t)rd16(p + 4);
	if (tot == 40)
		tot = n; /* jumbogram or offloaded: trust the capture */
	nh = p[6];
	off = 40;
	/* RFC 8200 §4: extension headers before the TCP header. */
	for (i = 0; nh != IPPROTO_TCP; i++) {
		if (i >= NAT_PKT_IPV6_EXT_MAX)
			return NAT_PKT_NOT_TCP;
		switch (nh) {
		case 0:  /* hop-by-hop options */
		case 43: /* routing */
		case 60: /* destination options */
			if (off + 8 > n || off + 8 > tot)
				return NAT_PKT_BAD;
			nh = p[off];
			/* RFC 8200 §4.3: length in 8-octet units, not
			 * counting the first 8. */
			off += ((size_t)p[off + 1] + 1) * 8;
			break;
		case 44:
			return NAT_PKT_FRAG;
		default:
			return NAT_PKT_NOT_TCP;
		}
	}
	if (off > tot || off > n)
		return NAT_PKT_BAD;
	memset(&k, 0, sizeof(k));
	k.family = AF_INET6;
	memcpy(k.src, p + 8, 16);
	memcpy(k.dst, p + 24, 16);
	avail = (n < tot ? n : tot) - off;
	rc = tcp(p + off, avail, tot - off, &k);
	if (rc == NAT_PKT_OK)
		*out = k;
	return rc;
}

enum nat_pkt_rc
nat_pkt_ip(const uint8_t *p, size_t n, struct nat_pkt_tcp *out)
{
	if (n < 1)
		return NAT_PKT_BAD;
	switch (p[0] >> 4) {
	case 4:
		return ipv4(p, n, out);
	case 6:
		return ipv6(p, n, out);
	default:
		return NAT_PKT_NOT_TCP;
	}
}

enum nat_pkt_rc
nat_pkt_parse(
    enum nat_pkt_link link, const uint8_t *p, size_t n, struct nat_pkt_tcp *out)
{
	enum nat_pkt_rc rc;
	size_t off = 0;

	rc = nat_pkt_link_skip(link, p, n, &off);
	if (rc != NAT_PKT_OK)
		return rc;
	return nat_pkt_ip(p + off, n - off, out);
}
