/*
 * nat/pkt_test.c: unit tests of nat/pkt.c.  Packets are hex rows:
 * Ethernet, IPv4 (RFC 791 §3.1), IPv6 (RFC 8200 §3) and TCP (RFC 9293
 * §3.1) headers as they sit on the wire.
 */
#include <sys/socket.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "nat/pkt.h"

/* Parses hex (blanks ignored) into buf; returns the length. */
static size_t
hex(const char *s, uint8_t *buf, size_t cap)
{
	size_t n = 0;
	int hi = -1, v = 0;

	for (; *s != '\0'; s++) {
		if (*s == ' ')
			continue;
		if (*s >= '0' && *s <= '9')
			v = *s - '0';
		else if (*s >= 'a' && *s <= 'f')
			v = *s - 'a' + 10;
		else
			fail();
		if (hi < 0) {
			hi = v;
			continue;
		}
		assert_true(n < cap);
		buf[n++] = (uint8_t)(hi << 4 | v);
		hi = -1;
	}
	assert_int_equal(hi, -1);
	return n;
}

/* Ethernet II, IPv4 192.0.2.10 -> 192.0.2.30, TCP 40000 -> 25 with
 * PSH|ACK and the 6 payload bytes "EHLO x". */
static const char eth_v4[] = "0200 0000 0001 0200 0000 0002 0800"
                             "4500 002e 0001 4000 4006 0000 c000 020a c000 021e"
                             "9c40 0019 0000 0064 0000 00c8 5018 ffff 0000 0000"
                             "4548 4c4f 2078";

/* Raw IPv6 2001:db8::1 -> 2001:db8::25 with one destination options
 * header (8 bytes) before TCP, SYN only, no payload. */
static const char raw_v6_dstopt[] =
    "6000 0000 001c 3c40"
    "2001 0db8 0000 0000 0000 0000 0000 0001"
    "2001 0db8 0000 0000 0000 0000 0000 0025"
    "0600 0000 0000 0000"
    "c350 0019 0000 0001 0000 0000 5002 ffff 0000 0000";

static void
test_ether_v4(void **state)
{
	uint8_t b[256];
	struct nat_pkt_tcp k;
	size_t n;

	(void)state;
	n = hex(eth_v4, b, sizeof(b));
	assert_int_equal(
	    nat_pkt_parse(NAT_PKT_LINK_ETHER, b, n, &k), NAT_PKT_OK);
	assert_int_equal(k.family, AF_INET);
	assert_memory_equal(k.src, "\xc0\x00\x02\x0a", 4);
	assert_memory_equal(k.dst, "\xc0\x00\x02\x1e", 4);
	assert_int_equal(k.sport, 40000);
	assert_int_equal(k.dport, 25);
	assert_int_equal(k.seq, 100);
	assert_int_equal(k.ack, 200);
	assert_int_equal(k.flags, NAT_PKT_TH_ACK | 0x08);
	assert_int_equal(k.len, 6);
	assert_int_equal(k.real_len, 6);
	assert_memory_equal(k.data, "EHLO x", 6);
	/* Ethernet padding past the IP total length is not payload. */
	memset(b + n, 0, 8);
	assert_int_equal(
	    nat_pkt_parse(NAT_PKT_LINK_ETHER, b, n + 8, &k), NAT_PKT_OK);
	assert_int_equal(k.len, 6);
	/* Cut by the snap length: 2 payload bytes captured of 6. */
	assert_int_equal(
	    nat_pkt_parse(NAT_PKT_LINK_ETHER, b, n - 4, &k), NAT_PKT_OK);
	assert_int_equal(k.len, 2);
	assert_int_equal(k.real_len, 6);
}

static void
test_v4_fragment_and_udp(void **state)
{
	uint8_t b[256];
	struct nat_pkt_tcp k;
	size_t n;

	(void)state;
	n = hex(eth_v4, b, sizeof(b));
	/* RFC 791 §3.1: MF set. */
	b[14 + 6] = 0x20;
	assert_int_equal(
	    nat_pkt_parse(NAT_PKT_LINK_ETHER, b, n, &k), NAT_PKT_FRAG);
	b[14 + 6] = 0x40;
	b[14 + 9] = 17; /* UDP */
	assert_int_equal(
	    nat_pkt_parse(NAT_PKT_LINK_ETHER, b, n, &k), NAT_PKT_NOT_TCP);
	b[14 + 9] = 6;
	b[12] = 0x08;
	b[13] = 0x06; /* ARP */
	assert_int_equal(
	    nat_pkt_parse(NAT_PKT_LINK_ETHER, b, n, &k), NAT_PKT_NOT_TCP);
}

static void
test_bad_lengths(void **state)
{
	uint8_t b[256];
	struct nat_pkt_tcp k;
	size_t n, i;

	(void)state;
	n = hex(eth_v4, b, sizeof(b));
	/* Every cut inside the headers is malformed, never read past. */
	for (i = 0; i < 14 + 20 + 20; i++)
		assert_int_equal(
		    nat_pkt_parse(NAT_PKT_LINK_ETHER, b, i, &k), NAT_PKT_BAD);
	/* IHL of 4 words is under the minimum of 5. */
	b[14] = 0x44;
	assert_int_equal(
	    nat_pkt_parse(NAT_PKT_LINK_ETHER, b, n, &k), NAT_PKT_BAD);
	b[14] = 0x45;
	/* TCP data offset 15 words: past the segment. */
	b[14 + 20 + 12] = 0xf0;
	assert_int_equal(
	    nat_pkt_parse(NAT_PKT_LINK_ETHER, b, n, &k), NAT_PKT_BAD);
}

static void
test_raw_v6_ext(void **state)
{
	uint8_t b[256];
	struct nat_pkt_tcp k;
	size_t n;

	(void)state;
	n = hex(raw_v6_dstopt, b, sizeof(b));
	assert_int_equal(nat_pkt_parse(NAT_PKT_LINK_RAW, b, n, &k), NAT_PKT_OK);
	assert_int_equal(k.family, AF_INET6);
	assert_int_equal(k.dst[15], 0x25);
	assert_int_equal(k.sport, 50000);
	assert_int_equal(k.flags, NAT_PKT_TH_SYN);
	assert_int_equal(k.len, 0);
	/* A fragment header (44) instead. */
	b[6] = 44;
	assert_int_equal(
	    nat_pkt_parse(NAT_PKT_LINK_RAW, b, n, &k), NAT_PKT_FRAG);
	/* An options header whose length runs past the packet. */
	b[6] = 60;
	b[41] = 0xff;
	assert_int_equal(
	    nat_pkt_parse(NAT_PKT_LINK_RAW, b, n, &k), NAT_PKT_BAD);
}

static void
test_cooked(void **state)
{
	uint8_t b[256];
	struct nat_pkt_tcp k;
	size_t n;

	(void)state;
	/* SLL v1: 14 bytes of packet type, address etc., then the
	 * protocol; the IPv4 packet of eth_v4 follows. */
	memset(b, 0, 16);
	b[14] = 0x08;
	n = hex(eth_v4, b + 2, sizeof(b) - 2); /* overwrites b[2..15] */
	memset(b, 0, 14);
	b[14] = 0x08;
	b[15] = 0x00;
	assert_int_equal(
	    nat_pkt_parse(NAT_PKT_LINK_SLL, b, n + 2, &k), NAT_PKT_OK);
	assert_int_equal(k.dport, 25);
	assert_int_equal(
	    nat_pkt_parse(NAT_PKT_LINK_SLL, b, 16, &k), NAT_PKT_BAD);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ether_v4),
	    cmocka_unit_test(test_v4_fragment_and_udp),
	    cmocka_unit_test(test_bad_lengths),
	    cmocka_unit_test(test_raw_v6_ext),
	    cmocka_unit_test(test_cooked),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
