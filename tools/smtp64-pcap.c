/*
 * tools/smtp64-pcap.c: what the SMTP sessions in a packet capture mean to
 * smtp64d.  Reads a capture file (or a live interface), puts each TCP
 * connection to the SMTP port back together in sequence order, replays
 * both directions through the gateway's own state machine
 * (smtpfix/stream.h) and prints one line per session: the HELO/EHLO
 * arguments and whether each is an address literal of the other family
 * (RFC 3974 Appendix A), STARTTLS, the messages sent, and every input
 * the state machine refuses (SMTP smuggling, over-long lines, BDAT, ...).
 *
 * The replay only observes: the policy never rewrites the HELO.  Where
 * the state machine answers a line itself (a 500 for a bare LF, a 502
 * for BDAT), the captured peer answered that line too, with the
 * gateway's reply or the server's own; that captured reply is skipped, so
 * the reply queue stays in step with the capture.
 *
 * Memory is bounded: at most -n sessions, and per direction one buffer
 * of -m bytes for bytes the state machine has not consumed plus at most
 * -m bytes of out-of-order segments.  A direction that loses bytes (a
 * hole that never fills, a segment cut by the snap length) ends the
 * analysis of its session with a note; counting goes on.
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <netinet/in.h>

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <pcap/pcap.h>

#include "nat/addr.h"
#include "smtpfix/helo.h"
#include "smtpfix/line.h"
#include "smtpfix/stream.h"

#ifndef SMTP64_VERSION
#define SMTP64_VERSION "0.1.0"
#endif

#define PC_SNAPLEN 262144
#define PC_HASH_SIZE 4096      /* buckets; a power of two */
#define PC_HELO_KEEP 4         /* HELO/EHLO arguments kept a session */
#define PC_HELO_ARG_KEEP 255   /* bytes of each argument shown */
#define PC_SEG_OVERHEAD 64     /* bytes charged per held segment */
#define PC_ZERO_STEPS_MAX 1024 /* steps in a row that consume nothing */
#define PC_BUF_MIN (2 * SMTPFIX_EMIT_MAX)
#define PC_BUF_START 4096 /* first size of a direction's buffer */
#define PC_BUF_DEFAULT (64 * 1024)
#define PC_BUF_MAX (64 * 1024 * 1024)
#define PC_SESS_DEFAULT 4096
#define PC_SESS_MAX 10000000
#define PC_IDLE_DEFAULT 600
#define PC_CMD_DEFAULT 2048 /* smtp64d's command_line_max_bytes */
#define PC_REPLY_MAX 2048   /* smtp64d's reply line cap */
#define PC_IPV6_EXT_MAX 8   /* extension headers followed */

/* TCP flags (RFC 9293 §3.1). */
#define PC_TH_FIN 0x01
#define PC_TH_SYN 0x02
#define PC_TH_RST 0x04
#define PC_TH_ACK 0x10

enum pc_dirn {
	PC_C2S = 0,
	PC_S2C = 1,
};

/* Input the state machine refuses, counted per session. */
enum pc_hostile {
	PC_H_SMUGGLE_CMD = 0, /* bare CR, LF or NUL in a command */
	PC_H_SMUGGLE_DATA,    /* the same in message data */
	PC_H_LONG_LINE,       /* command over the line cap */
	PC_H_BDAT,            /* BDAT (RFC 3030) */
	PC_H_PATH,            /* source route or scoped literal */
	PC_H_BAD_REPLY,       /* malformed or over-long server reply */
	PC_H_FLOOD,           /* more pipelined commands than replies kept */
	PC_H_SYNC,            /* sent on past DATA, STARTTLS or AUTH before
	                         the reply (RFC 2920 §3.1) */
	PC_H_COUNT,
};

static const char *const pc_hostile_name[PC_H_COUNT] = {
    [PC_H_SMUGGLE_CMD] = "smuggle_cmd",
    [PC_H_SMUGGLE_DATA] = "smuggle_data",
    [PC_H_LONG_LINE] = "long_line",
    [PC_H_BDAT] = "bdat",
    [PC_H_PATH] = "path",
    [PC_H_BAD_REPLY] = "bad_reply",
    [PC_H_FLOOD] = "flood",
    [PC_H_SYNC] = "sync",
};

/* Notes on a session, a bit each; the names in pc_note_name. */
enum pc_note {
	PC_N_MIDSTREAM = 0, /* no handshake seen: not replayed */
	PC_N_GAP_C2S,       /* client bytes missing: replay stopped */
	PC_N_GAP_S2C,       /* server bytes missing: replay stopped */
	PC_N_SNAPLEN,       /* a segment cut by the snap length */
	PC_N_OVERFLOW,      /* more unconsumed input than -m */
	PC_N_TLS,           /* STARTTLS accepted: the rest is opaque */
	PC_N_WOULD_CLOSE,   /* smtp64d would close the session here */
	PC_N_HELO_MORE,     /* more HELO/EHLO than PC_HELO_KEEP */
	PC_N_STUCK,         /* the state machine stopped moving */
	PC_N_COUNT,
};

static const char *const pc_note_name[PC_N_COUNT] = {
    [PC_N_MIDSTREAM] = "midstream",
    [PC_N_GAP_C2S] = "gap_c2s",
    [PC_N_GAP_S2C] = "gap_s2c",
    [PC_N_SNAPLEN] = "snaplen",
    [PC_N_OVERFLOW] = "overflow",
    [PC_N_TLS] = "tls",
    [PC_N_WOULD_CLOSE] = "would_close",
    [PC_N_HELO_MORE] = "helo_more",
    [PC_N_STUCK] = "stuck",
};

/* What a HELO/EHLO argument is, seen from the transport (RFC 3974
 * Appendix A: receivers check it against the connecting address). */
enum pc_hk {
	PC_HK_EMPTY = 0,
	PC_HK_DOMAIN,
	PC_HK_TAG, /* General-address-literal, RFC 5321 §4.1.3 */
	PC_HK_BAD, /* "[...]" that is no address */
	PC_HK_V4_CLIENT,
	PC_HK_V4_OTHER,
	PC_HK_V4_CROSS,
	PC_HK_V6_CLIENT,
	PC_HK_V6_OTHER,
	PC_HK_V6_CROSS,
	PC_HK_COUNT,
};

static const char *const pc_hk_name[PC_HK_COUNT] = {
    [PC_HK_EMPTY] = "empty",
    [PC_HK_DOMAIN] = "domain",
    [PC_HK_TAG] = "tag-literal",
    [PC_HK_BAD] = "bad-literal",
    [PC_HK_V4_CLIENT] = "v4-literal-client",
    [PC_HK_V4_OTHER] = "v4-literal-other",
    [PC_HK_V4_CROSS] = "v4-literal-cross",
    [PC_HK_V6_CLIENT] = "v6-literal-client",
    [PC_HK_V6_OTHER] = "v6-literal-other",
    [PC_HK_V6_CROSS] = "v6-literal-cross",
};

/* A segment that arrived before the bytes in front of it. */
struct pc_seg {
	TAILQ_ENTRY(pc_seg) entry;
	uint32_t seq;
	size_t len;
	uint8_t data[];
};
TAILQ_HEAD(pc_segq, pc_seg);

/* One direction of a TCP connection. */
struct pc_dir {
	int have_next; /* next is known */
	uint32_t next; /* next sequence number in order */
	int syn;       /* SYN seen; isn is its sequence number */
	uint32_t isn;
	int fin_seen; /* FIN seen, at fin_seq */
	uint32_t fin_seq;
	int fin;            /* every byte up to the FIN is in */
	int gap;            /* bytes lost: nothing more is replayed */
	char *buf;          /* in order, not consumed by smtpfix yet */
	size_t len, cap;    /* cap grows up to -m */
	struct pc_segq ooo; /* out of order, by sequence number */
	size_t ooo_bytes;
	uint64_t bytes; /* payload bytes in order */
	uint64_t used;  /* of which consumed by smtpfix */
};

struct pc_helo {
	int ehlo;
	char arg[PC_HELO_ARG_KEEP];
	size_t len;
	int cut;
	enum pc_hk kind;
};

struct pc_sess {
	TAILQ_ENTRY(pc_sess) lru; /* by last packet, oldest first */
	struct pc_sess *hnext;
	uint64_t id;
	int family;
	uint8_t caddr[16], saddr[16];
	uint16_t cport, sport;
	struct timeval first, last;
	struct pc_dir d[2];
	int replay;    /* feeding smtpfix */
	unsigned skip; /* captured replies to skip */
	unsigned zero_steps;
	struct pc_helo helo[PC_HELO_KEEP];
	unsigned nhelo;
	int starttls; /* 0 no, 1 asked, 2 accepted */
	unsigned hostile[PC_H_COUNT];
	unsigned notes; /* 1 << enum pc_note */
	struct smtpfix_stream sm;
};
TAILQ_HEAD(pc_sessq, pc_sess);

struct pc_opts {
	const char *file;   /* -r */
	const char *iface;  /* -i */
	const char *filter; /* -f */
	unsigned port;      /* -p */
	size_t buf_max;     /* -m */
	size_t cmd_max;     /* -l */
	unsigned sess_max;  /* -n */
	unsigned idle_s;    /* -t */
	uint64_t count;     /* -c; 0: no limit */
	int promisc;        /* -P */
	int summary;        /* 0: -q, 1: lines and summary, 2: -s only */
	int verbose;        /* -v */
};

struct pc_stats {
	uint64_t packets, ignored, fragments, malformed, retrans;
	/* ignored: not IP, not TCP, or not to or from the SMTP port */
	uint64_t sessions, v4, v6, replayed, midstream, gaps;
	uint64_t helo_sess, helo_domain, helo_literal, helo_cross;
	uint64_t starttls, messages, hostile_sess;
	uint64_t hostile[PC_H_COUNT];
};

struct pc_ctx {
	struct pc_opts o;
	struct smtpfix_policy pol;
	struct pc_sess *hash[PC_HASH_SIZE];
	struct pc_sessq lru;
	unsigned nsess;
	uint64_t next_id;
	uint64_t ended;
	struct pc_stats st;
	int dlt;
	struct timeval now;
};

/* One TCP segment, as parsed from a packet. */
struct pc_pkt {
	int family;
	uint8_t src[16], dst[16];
	uint16_t sport, dport;
	uint32_t seq, ack;
	unsigned flags;
	const uint8_t *data;
	size_t len;      /* payload captured */
	size_t real_len; /* payload length the IP header gives */
};

enum pc_parse {
	PC_P_OK = 0,
	PC_P_NOT_TCP, /* not IP, or not TCP */
	PC_P_FRAG,    /* an IP fragment: not reassembled */
	PC_P_BAD,     /* malformed or cut short */
};

/* For the signal handler: stop a live capture. */
static pcap_t *pc_live;
static volatile sig_atomic_t pc_stop;

static const char pc_empty[1];

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: smtp64-pcap [-Pqsv] [-c count] [-f filter] "
	    "[-l line_bytes] [-m bytes]\n"
	    "                   [-n sessions] [-p port] [-t seconds] "
	    "-r file | -i interface\n"
	    "\n"
	    "  -r file       read a capture file (pcap or pcapng; - is "
	    "stdin)\n"
	    "  -i interface  capture live (any: every interface) until "
	    "SIGINT\n"
	    "  -f filter     BPF filter (default \"tcp port PORT\")\n"
	    "  -p port       the SMTP server port (default 25)\n"
	    "  -c count      stop after count sessions have ended\n"
	    "  -l bytes      command line cap, as smtp64d's\n"
	    "                command_line_max_bytes (512..4096, default "
	    "2048)\n"
	    "  -m bytes      per direction: unconsumed input, and again "
	    "out-of-order\n"
	    "                segments (default 65536, at least 8320)\n"
	    "  -n sessions   sessions followed at once (default 4096)\n"
	    "  -t seconds    a session idle this long ends (default 600)\n"
	    "  -P            promiscuous mode (-i)\n"
	    "  -q            session lines only, no summary\n"
	    "  -s            summary only\n"
	    "  -v            also one line per event (HELO, hostile input, "
	    "end of data)\n"
	    "  -h            this help (also --help)\n"
	    "  -V            print the version (also --version)\n"
	    "\n"
	    "Exit status: 0 the capture was read to its end (or to SIGINT), "
	    "1 it could\n"
	    "not be opened or read to the end (what was read is still "
	    "reported),\n"
	    "2 usage error.\n");
}

/* Parses a decimal option value in lo..hi; -1 if malformed. */
static int
opt_num(const char *s, unsigned long lo, unsigned long hi, unsigned long *out)
{
	char *end;
	unsigned long v;
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (s[i] < '0' || s[i] > '9')
			return -1;
	if (i == 0)
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

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

/* a - b in sequence space (RFC 9293 §3.4: arithmetic modulo 2^32). */
static int32_t
seq_diff(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b);
}

static int
pc_dlt_ok(int dlt)
{
	switch (dlt) {
	case DLT_EN10MB:
	case DLT_LINUX_SLL:
#ifdef DLT_LINUX_SLL2
	case DLT_LINUX_SLL2:
#endif
	case DLT_NULL:
	case DLT_LOOP:
	case DLT_RAW:
#ifdef DLT_IPV4
	case DLT_IPV4:
#endif
#ifdef DLT_IPV6
	case DLT_IPV6:
#endif
		return 1;
	default:
		return 0;
	}
}

/* Skips the link-layer header; *off is where the IP header starts. */
static enum pc_parse
pc_link(int dlt, const uint8_t *p, size_t n, size_t *off)
{
	uint16_t et = 0;
	size_t o = 0;
	int i;

	switch (dlt) {
	case DLT_EN10MB:
		if (n < 14)
			return PC_P_BAD;
		et = rd16(p + 12);
		o = 14;
		/* IEEE 802.1Q and 802.1ad tags, one or two. */
		for (i = 0; i < 2 && (et == 0x8100 || et == 0x88a8); i++) {
			if (n < o + 4)
				return PC_P_BAD;
			et = rd16(p + o + 2);
			o += 4;
		}
		break;
	case DLT_LINUX_SLL:
		if (n < 16)
			return PC_P_BAD;
		et = rd16(p + 14);
		o = 16;
		break;
#ifdef DLT_LINUX_SLL2
	case DLT_LINUX_SLL2:
		if (n < 20)
			return PC_P_BAD;
		et = rd16(p);
		o = 20;
		break;
#endif
	case DLT_NULL:
	case DLT_LOOP:
		/* The address family, in an order that varies: the IP
		 * version nibble decides instead. */
		o = 4;
		break;
	default:
		o = 0;
		break;
	}
	if (et != 0 && et != 0x0800 && et != 0x86dd)
		return PC_P_NOT_TCP;
	if (n <= o)
		return PC_P_BAD;
	*off = o;
	return PC_P_OK;
}

/* The TCP header at p[0..avail), whose segment has real bytes per the
 * IP header (avail <= real). */
static enum pc_parse
pc_tcp(const uint8_t *p, size_t avail, size_t real, struct pc_pkt *k)
{
	size_t doff;

	if (avail < 20 || real < 20)
		return PC_P_BAD;
	doff = (size_t)(p[12] >> 4) * 4;
	if (doff < 20 || doff > avail)
		return PC_P_BAD;
	k->sport = rd16(p);
	k->dport = rd16(p + 2);
	k->seq = rd32(p + 4);
	k->ack = rd32(p + 8);
	k->flags = p[13];
	k->data = p + doff;
	k->len = avail - doff;
	k->real_len = real - doff;
	return PC_P_OK;
}

/* One IP packet at p[0..n); fills *k for a TCP segment. */
static enum pc_parse
pc_ip(const uint8_t *p, size_t n, struct pc_pkt *k)
{
	size_t ihl, tot, off, avail;
	unsigned nh, i;

	if (n < 1)
		return PC_P_BAD;
	switch (p[0] >> 4) {
	case 4:
		if (n < 20)
			return PC_P_BAD;
		ihl = (size_t)(p[0] & 0x0f) * 4;
		tot = rd16(p + 2);
		/* A segmentation-offloaded packet may say 0. */
		if (tot == 0)
			tot = n;
		if (ihl < 20 || ihl > n || tot < ihl)
			return PC_P_BAD;
		/* RFC 791 §3.1: MF flag and fragment offset. */
		if ((rd16(p + 6) & 0x3fff) != 0)
			return PC_P_FRAG;
		if (p[9] != IPPROTO_TCP)
			return PC_P_NOT_TCP;
		k->family = AF_INET;
		memset(k->src, 0, sizeof(k->src));
		memset(k->dst, 0, sizeof(k->dst));
		memcpy(k->src, p + 12, 4);
		memcpy(k->dst, p + 16, 4);
		/* Ethernet pads short frames: the IP length rules. */
		avail = (n < tot ? n : tot) - ihl;
		return pc_tcp(p + ihl, avail, tot - ihl, k);
	case 6:
		if (n < 40)
			return PC_P_BAD;
		tot = 40 + (size_t)rd16(p + 4);
		if (tot == 40)
			tot = n; /* jumbogram or offloaded: trust the capture */
		nh = p[6];
		off = 40;
		/* RFC 8200 §4: extension headers before the TCP header. */
		for (i = 0; nh != IPPROTO_TCP; i++) {
			if (i >= PC_IPV6_EXT_MAX)
				return PC_P_NOT_TCP;
			switch (nh) {
			case 0:  /* hop-by-hop options */
			case 43: /* routing */
			case 60: /* destination options */
				if (off + 8 > n || off + 8 > tot)
					return PC_P_BAD;
				nh = p[off];
				off += ((size_t)p[off + 1] + 1) * 8;
				break;
			case 44:
				return PC_P_FRAG;
			default:
				return PC_P_NOT_TCP;
			}
		}
		if (off > tot || off > n)
			return PC_P_BAD;
		k->family = AF_INET6;
		memcpy(k->src, p + 8, 16);
		memcpy(k->dst, p + 24, 16);
		avail = (n < tot ? n : tot) - off;
		return pc_tcp(p + off, avail, tot - off, k);
	default:
		return PC_P_NOT_TCP;
	}
}

/*
 * Output.
 */

static void
pc_addr_put(int family, const uint8_t *a, uint16_t port)
{
	struct nat_addr na;
	char buf[INET6_ADDRSTRLEN];

	memset(&na, 0, sizeof(na));
	na.family = family;
	if (family == AF_INET)
		memcpy(&na.u.v4, a, 4);
	else
		memcpy(&na.u.v6, a, 16);
	if (nat_addr_fmt(&na, buf, sizeof(buf)) < 0)
		buf[0] = '\0';
	if (family == AF_INET6)
		printf("[%s]:%u", buf, port);
	else
		printf("%s:%u", buf, port);
}

/* Peer bytes, escaped: never a blank, comma or control character in an
 * output field. */
static void
pc_esc_put(const char *p, size_t n)
{
	size_t i;
	unsigned char c;

	for (i = 0; i < n; i++) {
		c = (unsigned char)p[i];
		if (c > 0x20 && c < 0x7f && c != '\\' && c != ',')
			putchar(c);
		else
			printf("\\x%02x", c);
	}
}

static void
pc_time_put(const struct timeval *tv)
{
	struct tm tm;
	time_t t = tv->tv_sec;
	char buf[32];

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
		printf("-");
		return;
	}
	printf("%s.%03ldZ", buf, (long)(tv->tv_usec / 1000));
}

/* -v: one line per event, with the stream offset where it was seen. */
static void
pc_event_put(const struct pc_ctx *c, const struct pc_sess *s, int dir,
    const char *what, const char *arg, size_t arg_len)
{
	if (!c->o.verbose)
		return;
	printf("event session=%llu time=", (unsigned long long)s->id);
	pc_time_put(&c->now);
	printf(" dir=%s offset=%llu event=%s", dir == PC_C2S ? "c2s" : "s2c",
	    (unsigned long long)s->d[dir].used, what);
	if (arg != NULL) {
		printf(" arg=");
		pc_esc_put(arg,
		    arg_len > PC_HELO_ARG_KEEP ? PC_HELO_ARG_KEEP : arg_len);
		if (arg_len > PC_HELO_ARG_KEEP)
			printf("...");
	}
	printf("\n");
}

/*
 * HELO/EHLO arguments.
 */

static int
pc_ieq(const char *a, const char *b, size_t n)
{
	size_t i;
	int x, y;

	for (i = 0; i < n; i++) {
		x = (unsigned char)a[i];
		y = (unsigned char)b[i];
		if (x >= 'A' && x <= 'Z')
			x += 'a' - 'A';
		if (y >= 'A' && y <= 'Z')
			y += 'a' - 'A';
		if (x != y)
			return 0;
	}
	return 1;
}

/* RFC 5321 §4.1.3 address literals, judged against the transport
 * (RFC 3974 Appendix A). */
static enum pc_hk
pc_helo_kind(const struct pc_sess *s, const char *arg, size_t len)
{
	struct nat_addr a;
	const char *in;
	size_t n;
	int same;

	if (len == 0)
		return PC_HK_EMPTY;
	if (!smtpfix_helo_is_literal(arg, len))
		return PC_HK_DOMAIN;
	in = arg + 1;
	n = len - 2;
	/* ABNF strings are case-insensitive (RFC 5234 §2.3). */
	if (n >= 5 && pc_ieq(in, "IPv6:", 5)) {
		if (nat_addr_parse(in + 5, n - 5, &a) != 0 ||
		    a.family != AF_INET6)
			return PC_HK_BAD;
	} else if (memchr(in, ':', n) != NULL) {
		return PC_HK_TAG;
	} else if (nat_addr_parse(in, n, &a) != 0 || a.family != AF_INET) {
		return PC_HK_BAD;
	}
	if (a.family != s->family)
		return a.family == AF_INET ? PC_HK_V4_CROSS : PC_HK_V6_CROSS;
	if (a.family == AF_INET)
		same = memcmp(&a.u.v4, s->caddr, 4) == 0;
	else
		same = memcmp(&a.u.v6, s->caddr, 16) == 0;
	if (a.family == AF_INET)
		return same ? PC_HK_V4_CLIENT : PC_HK_V4_OTHER;
	return same ? PC_HK_V6_CLIENT : PC_HK_V6_OTHER;
}

static void
pc_helo_add(struct pc_ctx *c, struct pc_sess *s, const struct smtpfix_step *st)
{
	struct pc_helo *h;
	size_t n;

	pc_event_put(c, s, PC_C2S,
	    st->verb != NULL && st->verb[0] == 'E' ? "ehlo" : "helo",
	    st->helo_in, st->helo_in_len);
	if (s->nhelo >= PC_HELO_KEEP) {
		s->notes |= 1u << PC_N_HELO_MORE;
		return;
	}
	h = &s->helo[s->nhelo++];
	h->ehlo = st->verb != NULL && st->verb[0] == 'E';
	n = st->helo_in_len;
	h->cut = n > sizeof(h->arg);
	if (h->cut)
		n = sizeof(h->arg);
	if (n > 0)
		memcpy(h->arg, st->helo_in, n);
	h->len = n;
	h->kind = pc_helo_kind(s, st->helo_in, st->helo_in_len);
}

/*
 * Sessions.
 */

static unsigned
pc_hash(
    int family, const uint8_t *ca, uint16_t cp, const uint8_t *sa, uint16_t sp)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	size_t i;

	for (i = 0; i < 16; i++)
		h = (h ^ ca[i]) * 16777619u;
	for (i = 0; i < 16; i++)
		h = (h ^ sa[i]) * 16777619u;
	h = (h ^ (uint32_t)cp) * 16777619u;
	h = (h ^ (uint32_t)sp) * 16777619u;
	h = (h ^ (uint32_t)family) * 16777619u;
	return h & (PC_HASH_SIZE - 1);
}

static struct pc_sess *
pc_find(struct pc_ctx *c, int family, const uint8_t *ca, uint16_t cp,
    const uint8_t *sa, uint16_t sp)
{
	struct pc_sess *s;

	for (s = c->hash[pc_hash(family, ca, cp, sa, sp)]; s != NULL;
	     s = s->hnext)
		if (s->family == family && s->cport == cp && s->sport == sp &&
		    memcmp(s->caddr, ca, 16) == 0 &&
		    memcmp(s->saddr, sa, 16) == 0)
			return s;
	return NULL;
}

static void
pc_dir_drop(struct pc_dir *d)
{
	struct pc_seg *g;

	while ((g = TAILQ_FIRST(&d->ooo)) != NULL) {
		TAILQ_REMOVE(&d->ooo, g, entry);
		free(g);
	}
	d->ooo_bytes = 0;
	free(d->buf);
	d->buf = NULL;
	d->len = d->cap = 0;
}

/* Stops the replay of s: what follows is only counted. */
static void
pc_replay_stop(struct pc_sess *s, enum pc_note why)
{
	s->notes |= 1u << why;
	s->replay = 0;
	free(s->d[PC_C2S].buf);
	free(s->d[PC_S2C].buf);
	s->d[PC_C2S].buf = s->d[PC_S2C].buf = NULL;
	s->d[PC_C2S].len = s->d[PC_S2C].len = 0;
	s->d[PC_C2S].cap = s->d[PC_S2C].cap = 0;
}

static void
pc_gap(struct pc_sess *s, int dir, enum pc_note why)
{
	struct pc_dir *d = &s->d[dir];

	if (d->gap)
		return;
	d->gap = 1;
	s->notes |= 1u << (dir == PC_C2S ? PC_N_GAP_C2S : PC_N_GAP_S2C);
	pc_dir_drop(d);
	pc_replay_stop(s, why);
}

static void
pc_hostile_add(struct pc_ctx *c, struct pc_sess *s, int dir, enum pc_hostile h)
{
	s->hostile[h]++;
	pc_event_put(c, s, dir, pc_hostile_name[h], NULL, 0);
}

/* Records what a step saw. */
static void
pc_step_event(
    struct pc_ctx *c, struct pc_sess *s, int dir, const struct smtpfix_step *st)
{
	if (dir == PC_C2S && st->verb != NULL &&
	    strcmp(st->verb, "STARTTLS") == 0 && s->starttls == 0)
		s->starttls = 1;
	switch (st->event) {
	case SMTPFIX_EV_HELO:
		pc_helo_add(c, s, st);
		break;
	case SMTPFIX_EV_BAD_LINE:
		pc_hostile_add(c, s, dir, PC_H_SMUGGLE_CMD);
		break;
	case SMTPFIX_EV_TOO_LONG:
		pc_hostile_add(c, s, dir, PC_H_LONG_LINE);
		break;
	case SMTPFIX_EV_SMUGGLE:
		pc_hostile_add(c, s, dir, PC_H_SMUGGLE_DATA);
		break;
	case SMTPFIX_EV_BDAT:
		pc_hostile_add(c, s, dir, PC_H_BDAT);
		break;
	case SMTPFIX_EV_PATH:
		pc_hostile_add(c, s, dir, PC_H_PATH);
		break;
	case SMTPFIX_EV_BAD_REPLY:
		pc_hostile_add(c, s, dir, PC_H_BAD_REPLY);
		break;
	case SMTPFIX_EV_QUEUE_FULL:
		pc_hostile_add(c, s, dir, PC_H_FLOOD);
		break;
	case SMTPFIX_EV_SYNC:
		pc_hostile_add(c, s, dir, PC_H_SYNC);
		break;
	case SMTPFIX_EV_TLS:
		s->starttls = 2;
		pc_event_put(c, s, dir, "starttls", NULL, 0);
		break;
	case SMTPFIX_EV_DATA_END:
		pc_event_put(c, s, dir, "data_end", NULL, 0);
		break;
	default:
		break;
	}
}

static void
pc_consume(struct pc_dir *d, size_t n)
{
	if (n > d->len)
		n = d->len;
	memmove(d->buf, d->buf + n, d->len - n);
	d->len -= n;
	d->used += n;
}

/*
 * Skips one captured reply (RFC 5321 §4.2.1: lines "NNN-" up to the line
 * "NNN " or "NNN"): the answer to a line the state machine answered
 * itself.  1 skipped, 0 need more bytes, -1 not a reply.
 */
static int
pc_skip_reply(struct pc_sess *s)
{
	struct pc_dir *d = &s->d[PC_S2C];
	size_t used;
	const char *l;

	for (;;) {
		if (d->len == 0)
			return 0;
		switch (
		    smtpfix_line_find(d->buf, d->len, PC_REPLY_MAX, &used)) {
		case SMTPFIX_OK:
			break;
		case SMTPFIX_PARTIAL:
			return 0;
		default:
			return -1;
		}
		l = d->buf;
		if (used < 5 || l[0] < '2' || l[0] > '5' || l[1] < '0' ||
		    l[1] > '9' || l[2] < '0' || l[2] > '9')
			return -1;
		pc_consume(d, used);
		if (l[3] != '-')
			break;
	}
	s->skip--;
	return 1;
}

/* One client-to-server step; 1 if it did something. */
static int
pc_step_c2s(struct pc_ctx *c, struct pc_sess *s, struct smtpfix_step *st)
{
	struct pc_dir *d = &s->d[PC_C2S];

	smtpfix_c2s_step(
	    &s->sm, d->buf != NULL ? d->buf : pc_empty, d->len, st);
	pc_step_event(c, s, PC_C2S, st);
	switch (st->act) {
	case SMTPFIX_ACT_NONE:
		return 0;
	case SMTPFIX_ACT_ABORT:
		/* Consumes nothing: the next steps discard. */
		return 1;
	default:
		pc_consume(d, st->consumed);
		return 1;
	}
}

/* One server-to-client step; 1 if it did something. */
static int
pc_step_s2c(struct pc_ctx *c, struct pc_sess *s, struct smtpfix_step *st)
{
	struct pc_dir *d = &s->d[PC_S2C];
	int r;

	if (s->skip > 0) {
		r = pc_skip_reply(s);
		if (r > 0)
			return 1;
		if (r == 0)
			return 0;
		s->skip = 0; /* not a reply: let the state machine judge */
	}
	smtpfix_s2c_step(
	    &s->sm, d->buf != NULL ? d->buf : pc_empty, d->len, st);
	pc_step_event(c, s, PC_S2C, st);
	switch (st->act) {
	case SMTPFIX_ACT_NONE:
		return 0;
	case SMTPFIX_ACT_EMIT:
		/* A reply of the gateway's own (consumed nothing): the
		 * capture holds the peer's answer to the same line. */
		if (st->consumed == 0)
			s->skip++;
		else
			pc_consume(d, st->consumed);
		return 1;
	case SMTPFIX_ACT_CLOSE:
		pc_replay_stop(s, PC_N_WOULD_CLOSE);
		return 0;
	case SMTPFIX_ACT_OPAQUE:
		/* RFC 3207 §4: TLS from here; nothing more to read. */
		pc_consume(d, st->consumed);
		pc_replay_stop(s, PC_N_TLS);
		return 0;
	default:
		pc_consume(d, st->consumed);
		return 1;
	}
}

/*
 * Steps the client direction until it stops, then the server direction
 * once, and again, until neither moves (as smtp64d does: a reply can
 * release held client bytes, a command can queue a local reply).
 */
static void
pc_pump(struct pc_ctx *c, struct pc_sess *s)
{
	struct smtpfix_step st;
	uint64_t before;
	int moved;

	while (s->replay) {
		before = s->d[PC_C2S].used + s->d[PC_S2C].used;
		moved = pc_step_c2s(c, s, &st);
		if (!moved && s->replay)
			moved = pc_step_s2c(c, s, &st);
		if (!moved)
			return;
		/* Steps that consume nothing (local replies, ABORT) are
		 * finite; a run of them this long is a bug. */
		if (s->d[PC_C2S].used + s->d[PC_S2C].used != before)
			s->zero_steps = 0;
		else if (++s->zero_steps > PC_ZERO_STEPS_MAX)
			pc_replay_stop(s, PC_N_STUCK);
	}
}

/* Makes room for n more bytes in d's buffer, growing it up to max;
 * returns the room there is (0 when full). */
static size_t
pc_room(struct pc_dir *d, size_t n, size_t max)
{
	size_t cap;
	char *b;

	if (d->cap - d->len >= n || d->cap >= max)
		return d->cap - d->len;
	for (cap = d->cap > 0 ? d->cap : PC_BUF_START;
	     cap - d->len < n && cap < max; cap *= 2)
		continue;
	if (cap > max)
		cap = max;
	b = realloc(d->buf, cap);
	if (b == NULL)
		return d->cap - d->len;
	d->buf = b;
	d->cap = cap;
	return cap - d->len;
}

/* Bytes that arrived in order: count them, and replay them. */
static void
pc_inorder(
    struct pc_ctx *c, struct pc_sess *s, int dir, const uint8_t *p, size_t n)
{
	struct pc_dir *d = &s->d[dir];
	size_t room;

	d->bytes += n;
	while (n > 0 && s->replay) {
		room = pc_room(d, n, c->o.buf_max);
		if (room == 0) {
			/* smtp64d would stop reading this peer here; a
			 * capture cannot, so the replay ends. */
			pc_replay_stop(s, PC_N_OVERFLOW);
			return;
		}
		if (room > n)
			room = n;
		memcpy(d->buf + d->len, p, room);
		d->len += room;
		p += room;
		n -= room;
		pc_pump(c, s);
	}
	/* Return an empty buffer: an idle session holds none. */
	if (d->buf != NULL && d->len == 0) {
		free(d->buf);
		d->buf = NULL;
		d->cap = 0;
	}
}

/* Moves held segments that are now in order. */
static void
pc_drain(struct pc_ctx *c, struct pc_sess *s, int dir)
{
	struct pc_dir *d = &s->d[dir];
	struct pc_seg *g;
	int32_t off;
	size_t skip;

	while ((g = TAILQ_FIRST(&d->ooo)) != NULL) {
		off = seq_diff(g->seq, d->next);
		if (off > 0)
			break;
		TAILQ_REMOVE(&d->ooo, g, entry);
		d->ooo_bytes -= g->len + PC_SEG_OVERHEAD;
		skip = (size_t) - (int64_t)off;
		if (skip < g->len) {
			d->next += (uint32_t)(g->len - skip);
			pc_inorder(c, s, dir, g->data + skip, g->len - skip);
		}
		free(g);
		if (d->gap)
			return;
	}
}

/* Holds a segment that arrived ahead of a hole. */
static void
pc_hold(struct pc_ctx *c, struct pc_sess *s, int dir, uint32_t seq,
    const uint8_t *p, size_t n)
{
	struct pc_dir *d = &s->d[dir];
	struct pc_seg *g, *at;

	if (d->ooo_bytes + n + PC_SEG_OVERHEAD > c->o.buf_max) {
		pc_gap(s, dir, dir == PC_C2S ? PC_N_GAP_C2S : PC_N_GAP_S2C);
		return;
	}
	g = malloc(sizeof(*g) + n);
	if (g == NULL) {
		pc_gap(s, dir, dir == PC_C2S ? PC_N_GAP_C2S : PC_N_GAP_S2C);
		return;
	}
	g->seq = seq;
	g->len = n;
	memcpy(g->data, p, n);
	d->ooo_bytes += n + PC_SEG_OVERHEAD;
	/* Usually the newest: look from the tail. */
	TAILQ_FOREACH_REVERSE(at, &d->ooo, pc_segq, entry)
	if (seq_diff(at->seq, seq) <= 0)
		break;
	if (at == NULL)
		TAILQ_INSERT_HEAD(&d->ooo, g, entry);
	else
		TAILQ_INSERT_AFTER(&d->ooo, at, g, entry);
}

/* Payload of one segment: n bytes captured of real. */
static void
pc_data(struct pc_ctx *c, struct pc_sess *s, int dir, uint32_t seq,
    const uint8_t *p, size_t n, size_t real)
{
	struct pc_dir *d = &s->d[dir];
	int32_t off;
	size_t skip;

	if (d->gap || real == 0)
		return;
	if (!d->have_next) {
		d->next = seq;
		d->have_next = 1;
	}
	off = seq_diff(seq, d->next);
	if (off < 0) {
		skip = (size_t) - (int64_t)off;
		if (skip >= real) {
			c->st.retrans++; /* every byte seen before */
			return;
		}
		if (skip >= n) {
			pc_gap(s, dir, PC_N_SNAPLEN);
			return;
		}
		p += skip;
		n -= skip;
		real -= skip;
		seq = d->next;
		off = 0;
	}
	if (off > 0) {
		if (n < real)
			pc_gap(s, dir, PC_N_SNAPLEN);
		else
			pc_hold(c, s, dir, seq, p, n);
		return;
	}
	d->next += (uint32_t)n;
	pc_inorder(c, s, dir, p, n);
	if (n < real) {
		pc_gap(s, dir, PC_N_SNAPLEN);
		return;
	}
	pc_drain(c, s, dir);
}

static void
pc_print(struct pc_ctx *c, struct pc_sess *s, const char *end)
{
	unsigned i, n;

	if (c->o.summary == 2)
		return;
	printf("session=%llu start=", (unsigned long long)s->id);
	pc_time_put(&s->first);
	printf(" family=%s client=", s->family == AF_INET ? "ipv4" : "ipv6");
	pc_addr_put(s->family, s->caddr, s->cport);
	printf(" server=");
	pc_addr_put(s->family, s->saddr, s->sport);
	printf(" helo=");
	for (i = 0; i < s->nhelo; i++) {
		printf("%s%s:", i > 0 ? "," : "",
		    s->helo[i].ehlo ? "EHLO" : "HELO");
		pc_esc_put(s->helo[i].arg, s->helo[i].len);
		if (s->helo[i].cut)
			printf("...");
	}
	if (s->nhelo == 0)
		printf("-");
	printf(" helo_kind=");
	for (i = 0; i < s->nhelo; i++)
		printf("%s%s", i > 0 ? "," : "", pc_hk_name[s->helo[i].kind]);
	if (s->nhelo == 0)
		printf("-");
	printf(" starttls=%s", s->starttls == 2   ? "yes"
	                       : s->starttls == 1 ? "refused"
	                                          : "no");
	if (s->notes & (1u << PC_N_MIDSTREAM))
		printf(" messages=-");
	else
		printf(" messages=%llu",
		    (unsigned long long)smtpfix_stream_messages(&s->sm));
	printf(" hostile=");
	for (i = 0, n = 0; i < PC_H_COUNT; i++)
		if (s->hostile[i] > 0)
			printf("%s%s:%u", n++ > 0 ? "," : "",
			    pc_hostile_name[i], s->hostile[i]);
	if (n == 0)
		printf("-");
	printf(" end=%s c2s_bytes=%llu s2c_bytes=%llu notes=", end,
	    (unsigned long long)s->d[PC_C2S].bytes,
	    (unsigned long long)s->d[PC_S2C].bytes);
	for (i = 0, n = 0; i < PC_N_COUNT; i++)
		if (s->notes & (1u << i))
			printf("%s%s", n++ > 0 ? "," : "", pc_note_name[i]);
	if (n == 0)
		printf("-");
	printf("\n");
}

static void
pc_count(struct pc_ctx *c, const struct pc_sess *s)
{
	struct pc_stats *t = &c->st;
	unsigned i;
	int dom = 0, lit = 0, cross = 0, bad = 0;

	t->sessions++;
	if (s->family == AF_INET)
		t->v4++;
	else
		t->v6++;
	if (s->notes & (1u << PC_N_MIDSTREAM))
		t->midstream++;
	else {
		t->replayed++;
		t->messages += smtpfix_stream_messages(&s->sm);
	}
	if (s->notes & (1u << PC_N_GAP_C2S | 1u << PC_N_GAP_S2C))
		t->gaps++;
	for (i = 0; i < s->nhelo; i++) {
		switch (s->helo[i].kind) {
		case PC_HK_EMPTY:
			break;
		case PC_HK_DOMAIN:
			dom = 1;
			break;
		case PC_HK_V4_CROSS:
		case PC_HK_V6_CROSS:
			cross = 1;
			lit = 1;
			break;
		default:
			lit = 1;
			break;
		}
	}
	t->helo_sess += s->nhelo > 0;
	t->helo_domain += dom;
	t->helo_literal += lit;
	t->helo_cross += cross;
	t->starttls += s->starttls == 2;
	for (i = 0; i < PC_H_COUNT; i++) {
		t->hostile[i] += s->hostile[i];
		bad |= s->hostile[i] > 0;
	}
	t->hostile_sess += bad;
}

/* Reports s and forgets it. */
static void
pc_finish(struct pc_ctx *c, struct pc_sess *s, const char *end)
{
	struct pc_sess **pp;
	int i;

	for (i = 0; i < 2; i++)
		if (!TAILQ_EMPTY(&s->d[i].ooo))
			pc_gap(s, i, i == PC_C2S ? PC_N_GAP_C2S : PC_N_GAP_S2C);
	/* Both sides closed, but a hole kept the end out of order. */
	if (strcmp(end, "open") == 0 && s->d[PC_C2S].fin_seen &&
	    s->d[PC_S2C].fin_seen)
		end = "fin";
	pc_print(c, s, end);
	pc_count(c, s);
	pp = &c->hash[pc_hash(
	    s->family, s->caddr, s->cport, s->saddr, s->sport)];
	while (*pp != NULL && *pp != s)
		pp = &(*pp)->hnext;
	if (*pp == s)
		*pp = s->hnext;
	TAILQ_REMOVE(&c->lru, s, lru);
	c->nsess--;
	c->ended++;
	pc_dir_drop(&s->d[PC_C2S]);
	pc_dir_drop(&s->d[PC_S2C]);
	free(s);
}

static struct pc_sess *
pc_new(
    struct pc_ctx *c, const struct pc_pkt *k, int client_is_src, int midstream)
{
	struct pc_sess *s;
	unsigned h;

	if (c->nsess >= c->o.sess_max)
		pc_finish(c, TAILQ_FIRST(&c->lru), "evicted");
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->id = ++c->next_id;
	s->family = k->family;
	memcpy(s->caddr, client_is_src ? k->src : k->dst, 16);
	memcpy(s->saddr, client_is_src ? k->dst : k->src, 16);
	s->cport = client_is_src ? k->sport : k->dport;
	s->sport = client_is_src ? k->dport : k->sport;
	s->first = s->last = c->now;
	TAILQ_INIT(&s->d[PC_C2S].ooo);
	TAILQ_INIT(&s->d[PC_S2C].ooo);
	smtpfix_stream_init(&s->sm, &c->pol);
	if (midstream)
		s->notes |= 1u << PC_N_MIDSTREAM;
	else
		s->replay = 1;
	h = pc_hash(s->family, s->caddr, s->cport, s->saddr, s->sport);
	s->hnext = c->hash[h];
	c->hash[h] = s;
	TAILQ_INSERT_TAIL(&c->lru, s, lru);
	c->nsess++;
	return s;
}

static int
pc_done(const struct pc_dir *d)
{
	return d->fin || (d->gap && d->fin_seen);
}

/* One segment of session s in direction dir.  Returns 1 if s ended. */
static int
pc_segment(struct pc_ctx *c, struct pc_sess *s, int dir, const struct pc_pkt *k)
{
	struct pc_dir *d = &s->d[dir], *o = &s->d[!dir];
	uint32_t seq = k->seq;

	if (k->flags & PC_TH_RST) {
		pc_finish(c, s, "rst");
		return 1;
	}
	if (k->flags & PC_TH_SYN) {
		if (!d->syn) {
			d->syn = 1;
			d->isn = seq;
			if (!d->have_next) {
				d->next = seq + 1;
				d->have_next = 1;
			}
		}
		seq++; /* the SYN takes one sequence number */
	}
	/* The peer's next byte, from an ACK, if its SYN was missed. */
	if ((k->flags & PC_TH_ACK) && !o->have_next &&
	    !(s->notes & (1u << PC_N_MIDSTREAM))) {
		o->next = k->ack;
		o->have_next = 1;
	}
	pc_data(c, s, dir, seq, k->data, k->len, k->real_len);
	if ((k->flags & PC_TH_FIN) && !d->fin_seen) {
		d->fin_seen = 1;
		d->fin_seq = seq + (uint32_t)k->real_len;
		/* Nothing was ever seen of this direction. */
		if (!d->have_next) {
			d->next = d->fin_seq;
			d->have_next = 1;
		}
	}
	if (d->fin_seen && d->have_next && !d->gap && d->next == d->fin_seq &&
	    TAILQ_EMPTY(&d->ooo))
		d->fin = 1;
	if (pc_done(&s->d[PC_C2S]) && pc_done(&s->d[PC_S2C])) {
		pc_finish(c, s, "fin");
		return 1;
	}
	return 0;
}

static void
pc_expire(struct pc_ctx *c)
{
	struct pc_sess *s;

	while ((s = TAILQ_FIRST(&c->lru)) != NULL &&
	       c->now.tv_sec - s->last.tv_sec > (time_t)c->o.idle_s)
		pc_finish(c, s, "idle");
}

static void
pc_packet(struct pc_ctx *c, const struct pcap_pkthdr *h, const uint8_t *p)
{
	struct pc_pkt k;
	struct pc_sess *s;
	size_t off;
	int dir, syn, ack, client_is_src;

	c->st.packets++;
	c->now = h->ts;
	pc_expire(c);
	switch (pc_link(c->dlt, p, h->caplen, &off)) {
	case PC_P_OK:
		break;
	case PC_P_NOT_TCP:
		c->st.ignored++;
		return;
	default:
		c->st.malformed++;
		return;
	}
	memset(&k, 0, sizeof(k));
	switch (pc_ip(p + off, h->caplen - off, &k)) {
	case PC_P_OK:
		break;
	case PC_P_NOT_TCP:
		c->st.ignored++;
		return;
	case PC_P_FRAG:
		c->st.fragments++;
		return;
	default:
		c->st.malformed++;
		return;
	}
	syn = (k.flags & PC_TH_SYN) != 0;
	ack = (k.flags & PC_TH_ACK) != 0;
	dir = PC_C2S;
	s = pc_find(c, k.family, k.src, k.sport, k.dst, k.dport);
	if (s == NULL) {
		dir = PC_S2C;
		s = pc_find(c, k.family, k.dst, k.dport, k.src, k.sport);
	}
	/* A new SYN on a known pair of ports: the old connection is over
	 * (its ports were reused). */
	if (s != NULL && dir == PC_C2S && syn && !ack && s->d[PC_C2S].syn &&
	    s->d[PC_C2S].isn != k.seq) {
		pc_finish(c, s, "reused");
		s = NULL;
	}
	if (s == NULL) {
		/* Pure ACKs, FINs and RSTs of connections never seen (or
		 * already reported) open nothing. */
		if (!syn && k.real_len == 0)
			return;
		if (syn)
			client_is_src = !ack;
		else if (k.dport == c->o.port)
			client_is_src = 1;
		else if (k.sport == c->o.port)
			client_is_src = 0;
		else {
			c->st.ignored++;
			return;
		}
		if ((client_is_src ? k.dport : k.sport) != c->o.port) {
			c->st.ignored++;
			return;
		}
		s = pc_new(c, &k, client_is_src, !syn);
		if (s == NULL) {
			fprintf(stderr, "smtp64-pcap: out of memory\n");
			return;
		}
		dir = client_is_src ? PC_C2S : PC_S2C;
	}
	s->last = c->now;
	TAILQ_REMOVE(&c->lru, s, lru);
	TAILQ_INSERT_TAIL(&c->lru, s, lru);
	pc_segment(c, s, dir, &k);
}

static void
pc_summary(const struct pc_ctx *c)
{
	const struct pc_stats *t = &c->st;
	unsigned i;

	if (c->o.summary == 0)
		return;
	printf("summary: sessions=%llu ipv4=%llu ipv6=%llu replayed=%llu "
	       "midstream=%llu gaps=%llu helo=%llu helo_domain=%llu "
	       "helo_literal=%llu helo_cross=%llu starttls=%llu "
	       "messages=%llu hostile_sessions=%llu",
	    (unsigned long long)t->sessions, (unsigned long long)t->v4,
	    (unsigned long long)t->v6, (unsigned long long)t->replayed,
	    (unsigned long long)t->midstream, (unsigned long long)t->gaps,
	    (unsigned long long)t->helo_sess,
	    (unsigned long long)t->helo_domain,
	    (unsigned long long)t->helo_literal,
	    (unsigned long long)t->helo_cross, (unsigned long long)t->starttls,
	    (unsigned long long)t->messages,
	    (unsigned long long)t->hostile_sess);
	for (i = 0; i < PC_H_COUNT; i++)
		printf(" %s=%llu", pc_hostile_name[i],
		    (unsigned long long)t->hostile[i]);
	printf(" packets=%llu ignored=%llu fragments=%llu malformed=%llu "
	       "retransmissions=%llu\n",
	    (unsigned long long)t->packets, (unsigned long long)t->ignored,
	    (unsigned long long)t->fragments, (unsigned long long)t->malformed,
	    (unsigned long long)t->retrans);
	/* RFC 3974 Appendix A: what a strict receiver behind smtp64d
	 * would see. */
	if (t->helo_cross > 0)
		printf("advice: %llu session(s) sent an address literal of "
		       "the other family (RFC 3974 Appendix A); behind "
		       "smtp64d use helo_rewrite = literals or always\n",
		    (unsigned long long)t->helo_cross);
	if (t->helo_literal > t->helo_cross)
		printf("advice: %llu session(s) sent an address literal of "
		       "their own family; relayed, it would not match "
		       "the gateway's address: helo_rewrite = literals or "
		       "always\n",
		    (unsigned long long)(t->helo_literal - t->helo_cross));
	if (t->helo_domain > 0)
		printf("advice: %llu session(s) sent a domain name; a "
		       "server that checks it against the connecting "
		       "address needs helo_rewrite = always\n",
		    (unsigned long long)t->helo_domain);
}

static void
pc_on_signal(int sig)
{
	(void)sig;
	pc_stop = 1;
	if (pc_live != NULL)
		pcap_breakloop(pc_live);
}

static pcap_t *
pc_open(const struct pc_opts *o, char *errbuf)
{
	pcap_t *p;
	int rc;

	if (o->file != NULL)
		return pcap_open_offline(o->file, errbuf);
	p = pcap_create(o->iface, errbuf);
	if (p == NULL)
		return NULL;
	if (pcap_set_snaplen(p, PC_SNAPLEN) != 0 ||
	    pcap_set_promisc(p, o->promisc) != 0 ||
	    pcap_set_timeout(p, 1000) != 0 ||
	    pcap_set_immediate_mode(p, 1) != 0) {
		snprintf(errbuf, PCAP_ERRBUF_SIZE, "%s", pcap_geterr(p));
		pcap_close(p);
		return NULL;
	}
	rc = pcap_activate(p);
	if (rc < 0) {
		snprintf(errbuf, PCAP_ERRBUF_SIZE, "%s",
		    rc == PCAP_ERROR ? pcap_geterr(p) : pcap_statustostr(rc));
		pcap_close(p);
		return NULL;
	}
	if (rc > 0)
		fprintf(stderr, "smtp64-pcap: %s: warning: %s\n", o->iface,
		    pcap_statustostr(rc));
	return p;
}

static int
pc_opts_parse(int argc, char **argv, struct pc_opts *o)
{
	static const struct option longopts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	unsigned long v;
	int ch;

	memset(o, 0, sizeof(*o));
	o->port = 25;
	o->buf_max = PC_BUF_DEFAULT;
	o->cmd_max = PC_CMD_DEFAULT;
	o->sess_max = PC_SESS_DEFAULT;
	o->idle_s = PC_IDLE_DEFAULT;
	o->summary = 1;
	while ((ch = getopt_long(argc, argv, "c:f:hi:l:m:n:p:Pqr:st:vV",
	            longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			if (opt_num(optarg, 1, UINT32_MAX, &v) != 0)
				goto bad;
			o->count = v;
			break;
		case 'f':
			o->filter = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'i':
			o->iface = optarg;
			break;
		case 'l':
			if (opt_num(optarg, SMTPFIX_CMD_MIN,
			        SMTPFIX_CMD_MAX_CAP, &v) != 0)
				goto bad;
			o->cmd_max = v;
			break;
		case 'm':
			if (opt_num(optarg, PC_BUF_MIN, PC_BUF_MAX, &v) != 0)
				goto bad;
			o->buf_max = v;
			break;
		case 'n':
			if (opt_num(optarg, 1, PC_SESS_MAX, &v) != 0)
				goto bad;
			o->sess_max = (unsigned)v;
			break;
		case 'p':
			if (opt_num(optarg, 1, 65535, &v) != 0)
				goto bad;
			o->port = (unsigned)v;
			break;
		case 'P':
			o->promisc = 1;
			break;
		case 'q':
			o->summary = 0;
			break;
		case 'r':
			o->file = optarg;
			break;
		case 's':
			o->summary = 2;
			break;
		case 't':
			if (opt_num(optarg, 1, 86400 * 365, &v) != 0)
				goto bad;
			o->idle_s = (unsigned)v;
			break;
		case 'v':
			o->verbose = 1;
			break;
		case 'V':
			printf("smtp64-pcap %s\n", SMTP64_VERSION);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind != argc || (o->file == NULL) == (o->iface == NULL)) {
		usage(stderr);
		return -1;
	}
	return 0;
bad:
	fprintf(stderr, "smtp64-pcap: -%c %s: bad value\n", ch, optarg);
	return -1;
}

int
main(int argc, char **argv)
{
	struct pc_ctx *c;
	struct pcap_pkthdr *h;
	const u_char *data;
	struct bpf_program prog;
	struct sigaction sa;
	char errbuf[PCAP_ERRBUF_SIZE], filter[64];
	const char *src, *flt;
	pcap_t *p;
	int rc, status = 0;

	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		fprintf(stderr, "smtp64-pcap: out of memory\n");
		return 1;
	}
	if (pc_opts_parse(argc, argv, &c->o) != 0) {
		free(c);
		return 2;
	}
	TAILQ_INIT(&c->lru);
	/* Observe only: HELO relayed unchanged, the gateway's caps; bare
	 * CR, LF and NUL in data flagged (bare_line_endings = reject). */
	c->pol.fqdn = "smtp64-pcap.invalid";
	c->pol.fqdn_len = strlen(c->pol.fqdn);
	c->pol.helo = SMTPFIX_HELO_OFF;
	c->pol.cmd_max = c->o.cmd_max;
	c->pol.reply_max = PC_REPLY_MAX;
	c->pol.hygiene = 1;

	src = c->o.file != NULL ? c->o.file : c->o.iface;
	errbuf[0] = '\0';
	p = pc_open(&c->o, errbuf);
	if (p == NULL) {
		fprintf(stderr, "smtp64-pcap: %s: %s\n", src, errbuf);
		free(c);
		return 1;
	}
	c->dlt = pcap_datalink(p);
	if (!pc_dlt_ok(c->dlt)) {
		fprintf(stderr, "smtp64-pcap: %s: link type %s not supported\n",
		    src,
		    pcap_datalink_val_to_name(c->dlt) != NULL
		        ? pcap_datalink_val_to_name(c->dlt)
		        : "unknown");
		status = 1;
		goto out;
	}
	flt = c->o.filter;
	if (flt == NULL) {
		snprintf(filter, sizeof(filter), "tcp port %u", c->o.port);
		flt = filter;
	}
	if (pcap_compile(p, &prog, flt, 1, PCAP_NETMASK_UNKNOWN) != 0) {
		fprintf(stderr, "smtp64-pcap: filter \"%s\": %s\n", flt,
		    pcap_geterr(p));
		status = 2;
		goto out;
	}
	rc = pcap_setfilter(p, &prog);
	pcap_freecode(&prog);
	if (rc != 0) {
		fprintf(stderr, "smtp64-pcap: filter \"%s\": %s\n", flt,
		    pcap_geterr(p));
		status = 1;
		goto out;
	}

	if (c->o.iface != NULL) {
		pc_live = p;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = pc_on_signal;
		sigemptyset(&sa.sa_mask);
		if (sigaction(SIGINT, &sa, NULL) != 0 ||
		    sigaction(SIGTERM, &sa, NULL) != 0) {
			fprintf(stderr, "smtp64-pcap: sigaction: %s\n",
			    strerror(errno));
			status = 1;
			goto out;
		}
		setvbuf(stdout, NULL, _IOLBF, 0);
		fprintf(stderr,
		    "smtp64-pcap: listening on %s, link-type %s, filter "
		    "\"%s\"\n",
		    c->o.iface, pcap_datalink_val_to_name(c->dlt), flt);
	}

	while (!pc_stop) {
		rc = pcap_next_ex(p, &h, &data);
		if (rc == 1) {
			pc_packet(c, h, data);
			if (c->o.count > 0 && c->ended >= c->o.count)
				break;
		} else if (rc == 0) {
			/* Live capture, nothing for a while: idle
			 * sessions still end. */
			gettimeofday(&c->now, NULL);
			pc_expire(c);
		} else if (rc == PCAP_ERROR_BREAK) {
			break;
		} else {
			fprintf(stderr, "smtp64-pcap: %s: %s\n", src,
			    pcap_geterr(p));
			status = 1;
			break;
		}
	}
	while (!TAILQ_EMPTY(&c->lru))
		pc_finish(c, TAILQ_FIRST(&c->lru), "open");
	pc_summary(c);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "smtp64-pcap: write error\n");
		status = 1;
	}
out:
	pc_live = NULL;
	pcap_close(p);
	free(c);
	return status;
}
