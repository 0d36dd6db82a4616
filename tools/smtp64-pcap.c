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
#include "nat/pkt.h"
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
	const char *end;      /* how it ended (-T) */
	struct pc_trace *tr;  /* the dialogue (-T) */
	struct pc_sess *peer; /* the other leg (-T) */
};
TAILQ_HEAD(pc_sessq, pc_sess);

struct pc_opts {
	const char *file;   /* -r */
	const char *file2;  /* a second -r (-T) */
	const char *conf;   /* -C: smtp64.conf with the pairs (-T) */
	const char *log;    /* -L: smtp64d's log (-T) */
	int trace;          /* -T: pair the two legs */
	int json;           /* -j */
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
	int link; /* enum nat_pkt_link of the packet at hand */
	struct timeval now;
	struct pc_sessq done; /* ended sessions kept for -T */
	unsigned ndone;
	uint64_t dropped;     /* ended sessions over -n, not kept */
	struct pc_gwmap *map; /* -C and -L (-T) */
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
	    "       smtp64-pcap -T [-j] [-C smtp64.conf] [-L smtp64d.log] "
	    "[options]\n"
	    "                   -r file [-r file] | -i interface\n"
	    "       smtp64-pcap -h | -V\n"
	    "\n"
	    "  -T            two-leg trace: pair each client leg with its "
	    "upstream leg\n"
	    "                and print the two dialogues side by side (-r "
	    "twice: one\n"
	    "                capture per leg)\n"
	    "  -C file       -T: the gateway's smtp64.conf (its [pair] "
	    "sections)\n"
	    "  -L file       -T: smtp64d's log (event=open lines: session "
	    "ids)\n"
	    "  -j            -T: JSON, one object a line\n"
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

/* a - b in sequence space (RFC 9293 §3.4: arithmetic modulo 2^32). */
static int32_t
seq_diff(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b);
}

/* The link framing of a libpcap link type; -1 if not supported. */
static int
pc_dlt_link(int dlt)
{
	switch (dlt) {
	case DLT_EN10MB:
		return NAT_PKT_LINK_ETHER;
	case DLT_LINUX_SLL:
		return NAT_PKT_LINK_SLL;
#ifdef DLT_LINUX_SLL2
	case DLT_LINUX_SLL2:
		return NAT_PKT_LINK_SLL2;
#endif
	case DLT_NULL:
	case DLT_LOOP:
		return NAT_PKT_LINK_NULL;
	case DLT_RAW:
#ifdef DLT_IPV4
	case DLT_IPV4:
#endif
#ifdef DLT_IPV6
	case DLT_IPV6:
#endif
		return NAT_PKT_LINK_RAW;
	default:
		return -1;
	}
}

/*
 * Output.
 */

/* "addr:port" or "[addr]:port" of a captured endpoint into dst. */
static void
pc_ep_text(int family, const uint8_t *a, uint16_t port, char *dst, size_t cap)
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
	snprintf(dst, cap, family == AF_INET6 ? "[%s]:%u" : "%s:%u", buf, port);
}

static void
pc_addr_put(int family, const uint8_t *a, uint16_t port)
{
	char buf[INET6_ADDRSTRLEN + 8];

	pc_ep_text(family, a, port, buf, sizeof(buf));
	fputs(buf, stdout);
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

/*
 * The dialogue of a session, for -T: each command and each reply as one
 * line (RFC 5321 §4.2.1: a multiline reply is joined into one), message
 * data as one line that counts it, AUTH exchanges masked, and nothing
 * after a STARTTLS that the server accepted (RFC 3207 §4: TLS from
 * there).  Commands end at CRLF only, as smtp64d frames them, so a bare
 * LF shows inside its line.
 */

#define PC_TR_LINES 256 /* lines kept per session */
#define PC_TR_TEXT 200  /* bytes of each line kept */

enum pc_tl {
	PC_TL_CMD = 0, /* a command, "C:" */
	PC_TL_REPLY,   /* a reply, "S:" */
	PC_TL_DATA,    /* message data, counted */
	PC_TL_SECRET,  /* an AUTH response, masked */
	PC_TL_TLS,     /* STARTTLS accepted: opaque from here */
};

struct pc_tline {
	struct timeval t;
	unsigned char dir;
	unsigned char kind;  /* enum pc_tl */
	unsigned short code; /* replies: the code */
	char verb[12];       /* commands: the verb, upper case */
	size_t len;
	int cut;
	char text[PC_TR_TEXT];
};

struct pc_trace {
	struct pc_tline *l;
	size_t n, cap;
	int more;                 /* lines past PC_TR_LINES */
	char part[2][PC_TR_TEXT]; /* the line being received */
	size_t plen[2];           /* its length (counted past the cap) */
	int pcr[2];               /* its last byte was CR */
	int in_reply;             /* a multiline reply is open */
	int reply_kept;           /* ... and its first line was kept */
	size_t reply_at;          /* ... as this line */
	int greeted;
	unsigned cmds, replies; /* commands sent, final replies after the
	                           greeting */
	unsigned data_at, tls_at, auth_at; /* reply numbers awaited */
	int in_body, opaque, secret;
	uint64_t body_bytes, body_lines;
};

static struct pc_tline *
pc_tr_add(struct pc_ctx *c, struct pc_trace *t, int dir, enum pc_tl kind)
{
	struct pc_tline *l;
	size_t cap;

	if (t->n >= PC_TR_LINES) {
		t->more++;
		return NULL;
	}
	if (t->n == t->cap) {
		cap = t->cap == 0 ? 16 : t->cap * 2;
		if (cap > PC_TR_LINES)
			cap = PC_TR_LINES;
		l = realloc(t->l, cap * sizeof(*l));
		if (l == NULL) {
			t->more++;
			return NULL;
		}
		t->l = l;
		t->cap = cap;
	}
	l = &t->l[t->n++];
	memset(l, 0, sizeof(*l));
	l->t = c->now;
	l->dir = (unsigned char)dir;
	l->kind = (unsigned char)kind;
	return l;
}

static void
pc_tl_text(struct pc_tline *l, const char *p, size_t n)
{
	size_t room = sizeof(l->text) - l->len;

	if (n > room) {
		n = room;
		l->cut = 1;
	}
	memcpy(l->text + l->len, p, n);
	l->len += n;
}

/* The reply number (after the greeting) that answers the command just
 * counted. */
static unsigned
pc_tr_awaited(const struct pc_trace *t)
{
	return t->cmds;
}

static void
pc_tr_cmd(
    struct pc_ctx *c, struct pc_trace *t, const char *p, size_t n, size_t full)
{
	struct pc_tline *l;
	size_t v, i;

	if (t->in_body) {
		t->body_bytes += full + 2;
		if (n == 1 && p[0] == '.') {
			t->in_body = 0;
			l = pc_tr_add(c, t, PC_C2S, PC_TL_DATA);
			if (l != NULL)
				l->len =
				    (size_t)snprintf(l->text, sizeof(l->text),
				        "[message data: %llu lines]",
				        (unsigned long long)t->body_lines);
		} else {
			t->body_lines++;
		}
		return;
	}
	if (t->secret) {
		/* A response to a 334 (RFC 4954 §4): never shown. */
		t->secret = 0;
		l = pc_tr_add(c, t, PC_C2S, PC_TL_SECRET);
		if (l != NULL)
			pc_tl_text(l, "***", 3);
		return;
	}
	t->cmds++;
	l = pc_tr_add(c, t, PC_C2S, PC_TL_CMD);
	for (v = 0; v < n && v < sizeof(l->verb) - 1 && p[v] != ' '; v++)
		;
	if (l != NULL)
		for (i = 0; i < v; i++)
			l->verb[i] =
			    (char)(p[i] >= 'a' && p[i] <= 'z' ? p[i] - 'a' + 'A'
			                                      : p[i]);
	if (v == 4 && pc_ieq(p, "DATA", 4) && n == 4)
		t->data_at = pc_tr_awaited(t);
	else if (v == 8 && pc_ieq(p, "STARTTLS", 8) && n == 8)
		t->tls_at = pc_tr_awaited(t);
	else if (v == 4 && pc_ieq(p, "AUTH", 4)) {
		t->auth_at = pc_tr_awaited(t);
		/* RFC 4954 §4: an initial response follows the
		 * mechanism; keep the verb and the mechanism. */
		for (i = v + 1; i < n && p[i] != ' '; i++)
			;
		if (i < n) {
			if (l != NULL) {
				pc_tl_text(l, p, i);
				pc_tl_text(l, " ***", 4);
			}
			return;
		}
	}
	if (l != NULL) {
		pc_tl_text(l, p, n);
		l->cut |= full > n;
	}
}

static void
pc_tr_reply(
    struct pc_ctx *c, struct pc_trace *t, const char *p, size_t n, size_t full)
{
	struct pc_tline *l;
	unsigned code = 0, num;
	int last;

	if (n >= 3 && p[0] >= '1' && p[0] <= '5' && p[1] >= '0' &&
	    p[1] <= '9' && p[2] >= '0' && p[2] <= '9')
		code = (unsigned)(p[0] - '0') * 100 +
		       (unsigned)(p[1] - '0') * 10 + (unsigned)(p[2] - '0');
	last = !(n >= 4 && p[3] == '-');
	if (t->in_reply && t->reply_kept) {
		/* A continuation: its text after "NNN-" joins the line. */
		l = &t->l[t->reply_at];
		pc_tl_text(l, " | ", 3);
		if (n > 4)
			pc_tl_text(l, p + 4, n - 4);
	} else {
		l = pc_tr_add(c, t, PC_S2C, PC_TL_REPLY);
		t->reply_kept = l != NULL;
		t->reply_at = t->n - 1;
		if (l != NULL) {
			l->code = (unsigned short)code;
			pc_tl_text(l, p, n);
			l->cut |= full > n;
		}
	}
	t->in_reply = !last;
	if (!last)
		return;
	if (!t->greeted) {
		t->greeted = 1;
		return;
	}
	num = ++t->replies;
	if (t->data_at != 0 && num == t->data_at) {
		t->data_at = 0;
		/* RFC 5321 §4.1.1.4: data only after a 354. */
		if (code == 354) {
			t->in_body = 1;
			t->body_bytes = t->body_lines = 0;
		}
	}
	if (t->auth_at != 0 && num >= t->auth_at) {
		if (code == 334)
			t->secret = 1;
		else
			t->auth_at = 0;
		/* Each 334 awaits one more response line. */
		if (code == 334) {
			t->cmds++;
			t->auth_at = t->cmds;
		}
	}
	if (t->tls_at != 0 && num == t->tls_at) {
		t->tls_at = 0;
		if (code == 220) {
			t->opaque = 1;
			l = pc_tr_add(c, t, PC_S2C, PC_TL_TLS);
			if (l != NULL)
				pc_tl_text(
				    l, "[TLS from here: not readable]", 29);
		}
	}
}

/* In-order bytes of one direction, for the dialogue. */
static void
pc_tr_feed(
    struct pc_ctx *c, struct pc_sess *s, int dir, const uint8_t *p, size_t n)
{
	struct pc_trace *t = s->tr;
	size_t i, keep;
	int eol;

	for (i = 0; i < n && !t->opaque; i++) {
		eol = 0;
		if (p[i] == '\n' && (dir == PC_S2C || t->pcr[dir])) {
			/* The CR is not part of the line. */
			if (t->pcr[dir] && t->plen[dir] > 0)
				t->plen[dir]--;
			eol = 1;
		} else {
			if (t->plen[dir] < sizeof(t->part[dir]))
				t->part[dir][t->plen[dir]] = (char)p[i];
			t->plen[dir]++;
		}
		t->pcr[dir] = p[i] == '\r';
		if (!eol)
			continue;
		keep = t->plen[dir] < sizeof(t->part[dir])
		           ? t->plen[dir]
		           : sizeof(t->part[dir]);
		if (dir == PC_C2S)
			pc_tr_cmd(c, t, t->part[dir], keep, t->plen[dir]);
		else
			pc_tr_reply(c, t, t->part[dir], keep, t->plen[dir]);
		t->plen[dir] = 0;
		t->pcr[dir] = 0;
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
	if (s->tr != NULL)
		pc_tr_feed(c, s, dir, p, n);
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

/* Frees an ended session kept for -T, taking it off q. */
static void
pc_sess_free(struct pc_sess *s, struct pc_sessq *q)
{
	TAILQ_REMOVE(q, s, lru);
	if (s->tr != NULL)
		free(s->tr->l);
	free(s->tr);
	free(s);
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
	if (!c->o.trace)
		pc_print(c, s, end);
	pc_count(c, s);
	s->end = end;
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
	if (s->tr == NULL) {
		free(s);
		return;
	}
	/* -T: kept until the end, where the legs are paired; at most -n
	 * of them (the oldest go first). */
	if (c->ndone >= c->o.sess_max) {
		pc_sess_free(TAILQ_FIRST(&c->done), &c->done);
		c->ndone--;
		c->dropped++;
	}
	TAILQ_INSERT_TAIL(&c->done, s, lru);
	c->ndone++;
}

static struct pc_sess *
pc_new(struct pc_ctx *c, const struct nat_pkt_tcp *k, int client_is_src,
    int midstream)
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
	if (c->o.trace) {
		s->tr = calloc(1, sizeof(*s->tr));
		if (s->tr == NULL) {
			free(s);
			return NULL;
		}
	}
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
pc_segment(
    struct pc_ctx *c, struct pc_sess *s, int dir, const struct nat_pkt_tcp *k)
{
	struct pc_dir *d = &s->d[dir], *o = &s->d[!dir];
	uint32_t seq = k->seq;

	if (k->flags & NAT_PKT_TH_RST) {
		pc_finish(c, s, "rst");
		return 1;
	}
	if (k->flags & NAT_PKT_TH_SYN) {
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
	if ((k->flags & NAT_PKT_TH_ACK) && !o->have_next &&
	    !(s->notes & (1u << PC_N_MIDSTREAM))) {
		o->next = k->ack;
		o->have_next = 1;
	}
	pc_data(c, s, dir, seq, k->data, k->len, k->real_len);
	if ((k->flags & NAT_PKT_TH_FIN) && !d->fin_seen) {
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
	struct nat_pkt_tcp k;
	struct pc_sess *s;
	int dir, syn, ack, client_is_src;

	c->st.packets++;
	c->now = h->ts;
	pc_expire(c);
	memset(&k, 0, sizeof(k));
	switch (nat_pkt_parse((enum nat_pkt_link)c->link, p, h->caplen, &k)) {
	case NAT_PKT_OK:
		break;
	case NAT_PKT_NOT_TCP:
		c->st.ignored++;
		return;
	case NAT_PKT_FRAG:
		c->st.fragments++;
		return;
	default:
		c->st.malformed++;
		return;
	}
	syn = (k.flags & NAT_PKT_TH_SYN) != 0;
	ack = (k.flags & NAT_PKT_TH_ACK) != 0;
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

/*
 * -T: pairing each client leg with its upstream leg.  What is known of
 * the gateway comes from its config (-C: the [pair NAME] sections,
 * each an IPv4 and an IPv6 address standing for each other) and its log
 * (-L: "session=ID event=open client=C local=L dest=D" for each session).
 * Without either, legs are paired by timing alone: the gateway opens the
 * upstream connection right after it accepts the client's.
 */

#define PC_MAP_PAIRS 1024         /* pairs read from -C */
#define PC_MAP_OPENS 65536        /* open lines read from -L */
#define PC_PAIR_WINDOW_US 5000000 /* upstream SYN after the client's */
#define PC_COL 44                 /* width of a column of the side-by-side */

struct pc_ep {
	struct nat_addr a;
	unsigned port; /* 0: any */
};

struct pc_open {
	char id[12];
	struct pc_ep client, local, dest;
	int used;
};

struct pc_gwmap {
	struct nat_addr pair[PC_MAP_PAIRS][2]; /* [0] IPv4, [1] IPv6 */
	unsigned npairs;
	struct pc_open *open;
	unsigned nopen;
};

static int
pc_ep_match(const struct pc_ep *e, int family, const uint8_t *a, uint16_t port)
{
	if (e->a.family != family || (e->port != 0 && e->port != port))
		return 0;
	if (family == AF_INET)
		return memcmp(&e->a.u.v4, a, 4) == 0;
	return memcmp(&e->a.u.v6, a, 16) == 0;
}

static void
pc_trim(const char **p, size_t *n)
{
	while (*n > 0 && (**p == ' ' || **p == '\t')) {
		(*p)++;
		(*n)--;
	}
	while (*n > 0 && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t' ||
	                     (*p)[*n - 1] == '\r' || (*p)[*n - 1] == '\n'))
		(*n)--;
}

/* -C: the [pair NAME] sections of smtp64.conf(5).  Everything else is
 * smtp64d's to check (smtp64d -t); here a line that does not parse is
 * skipped. */
static int
pc_map_conf(struct pc_gwmap *m, const char *file)
{
	FILE *f;
	char line[1024], *eq;
	const char *k, *v;
	size_t kn, vn;
	int in_pair = 0, have[2] = {0, 0};
	struct nat_addr a;

	f = fopen(file, "r");
	if (f == NULL) {
		fprintf(stderr, "smtp64-pcap: %s: %s\n", file, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		k = line;
		kn = strlen(line);
		pc_trim(&k, &kn);
		if (kn == 0 || k[0] == '#' || k[0] == ';')
			continue;
		if (k[0] == '[') {
			if (in_pair && have[0] && have[1])
				m->npairs++;
			in_pair = kn > 6 && strncmp(k, "[pair ", 6) == 0 &&
			          m->npairs < PC_MAP_PAIRS;
			have[0] = have[1] = 0;
			continue;
		}
		eq = memchr(k, '=', kn);
		if (!in_pair || eq == NULL)
			continue;
		v = eq + 1;
		vn = kn - (size_t)(v - k);
		kn = (size_t)(eq - k);
		pc_trim(&k, &kn);
		pc_trim(&v, &vn);
		if (nat_addr_parse(v, vn, &a) != 0)
			continue;
		if (kn == 4 && memcmp(k, "ipv4", 4) == 0 &&
		    a.family == AF_INET) {
			m->pair[m->npairs][0] = a;
			have[0] = 1;
		} else if (kn == 4 && memcmp(k, "ipv6", 4) == 0 &&
		           a.family == AF_INET6) {
			m->pair[m->npairs][1] = a;
			have[1] = 1;
		}
	}
	if (in_pair && have[0] && have[1])
		m->npairs++;
	fclose(f);
	return 0;
}

/* The value of "key=" in line, as an endpoint. */
static int
pc_log_ep(const char *line, const char *key, struct pc_ep *e)
{
	const char *p, *end;

	p = strstr(line, key);
	if (p == NULL)
		return -1;
	p += strlen(key);
	for (end = p; *end != '\0' && *end != ' ' && *end != '\n'; end++)
		;
	e->port = 0;
	return nat_addr_parse_port(p, (size_t)(end - p), 0, &e->a, &e->port);
}

/* -L: smtp64d's "event=open" lines (syslog or -f). */
static int
pc_map_log(struct pc_gwmap *m, const char *file)
{
	FILE *f;
	char line[2048];
	const char *p;
	struct pc_open o;
	size_t n;

	f = fopen(file, "r");
	if (f == NULL) {
		fprintf(stderr, "smtp64-pcap: %s: %s\n", file, strerror(errno));
		return -1;
	}
	m->open = calloc(PC_MAP_OPENS, sizeof(*m->open));
	if (m->open == NULL) {
		fclose(f);
		fprintf(stderr, "smtp64-pcap: out of memory\n");
		return -1;
	}
	while (
	    fgets(line, sizeof(line), f) != NULL && m->nopen < PC_MAP_OPENS) {
		if (strstr(line, " event=open ") == NULL)
			continue;
		p = strstr(line, "session=");
		if (p == NULL)
			continue;
		p += 8;
		memset(&o, 0, sizeof(o));
		for (n = 0;
		     n < sizeof(o.id) - 1 && ((p[n] >= '0' && p[n] <= '9') ||
		                                 (p[n] >= 'a' && p[n] <= 'f'));
		     n++)
			o.id[n] = p[n];
		if (n == 0 || pc_log_ep(line, " client=", &o.client) != 0 ||
		    pc_log_ep(line, " local=", &o.local) != 0 ||
		    pc_log_ep(line, " dest=", &o.dest) != 0)
			continue;
		m->open[m->nopen++] = o;
	}
	fclose(f);
	return 0;
}

/* -C: the other address of the pair holding a; 0 if none. */
static int
pc_map_partner(
    const struct pc_gwmap *m, int family, const uint8_t *a, struct pc_ep *out)
{
	unsigned i;
	struct pc_ep e;
	int f;

	for (i = 0; i < m->npairs; i++)
		for (f = 0; f < 2; f++) {
			e.a = m->pair[i][f];
			e.port = 0;
			if (pc_ep_match(&e, family, a, 0)) {
				out->a = m->pair[i][!f];
				out->port = 0;
				return 1;
			}
		}
	return 0;
}

static long long
pc_us(const struct timeval *a, const struct timeval *b)
{
	return (long long)(a->tv_sec - b->tv_sec) * 1000000 +
	       (a->tv_usec - b->tv_usec);
}

/* How a, a client leg, was paired with b; NULL if b cannot be its
 * upstream leg. */
static const char *
pc_pair_test(const struct pc_gwmap *m, const struct pc_sess *a,
    const struct pc_sess *b, const struct pc_open *o)
{
	struct pc_ep want;
	long long d = pc_us(&b->first, &a->first);

	if (b->peer != NULL || b == a || d < 0 || d > PC_PAIR_WINDOW_US)
		return NULL;
	/* The upstream leg starts at the gateway, not at the client. */
	if (b->family == a->family && memcmp(b->caddr, a->caddr, 16) == 0)
		return NULL;
	if (o != NULL)
		return pc_ep_match(&o->dest, b->family, b->saddr, b->sport)
		           ? "log"
		           : NULL;
	if (m != NULL && m->npairs > 0) {
		if (!pc_map_partner(m, a->family, a->saddr, &want))
			return NULL;
		return pc_ep_match(&want, b->family, b->saddr, b->sport)
		           ? "config"
		           : NULL;
	}
	return "timing";
}

/* The log's open line of client leg a, if any. */
static struct pc_open *
pc_pair_open(struct pc_gwmap *m, const struct pc_sess *a)
{
	unsigned i;
	struct pc_open *o;

	if (m == NULL)
		return NULL;
	for (i = 0; i < m->nopen; i++) {
		o = &m->open[i];
		if (!o->used &&
		    pc_ep_match(&o->client, a->family, a->caddr, a->cport) &&
		    pc_ep_match(&o->local, a->family, a->saddr, a->sport))
			return o;
	}
	return NULL;
}

/*
 * Alignment of the two dialogues: a longest common subsequence over
 * lines that match by kind and verb (commands) or code (replies), so a
 * rewritten HELO argument still lines up.
 */
struct pc_row {
	const struct pc_tline *c, *u; /* either may be NULL */
	char mark;                    /* '=', '~', 'G', '+', '!' */
	const char *note;
};

static int
pc_tl_match(const struct pc_tline *a, const struct pc_tline *b)
{
	if (a->kind != b->kind)
		return 0;
	switch (a->kind) {
	case PC_TL_CMD:
		return strcmp(a->verb, b->verb) == 0;
	case PC_TL_REPLY:
		return a->code == b->code;
	default:
		return 1;
	}
}

static int
pc_tl_same(const struct pc_tline *a, const struct pc_tline *b)
{
	return a->len == b->len && memcmp(a->text, b->text, a->len) == 0;
}

static int
pc_is_helo(const struct pc_tline *l)
{
	return l->kind == PC_TL_CMD &&
	       (strcmp(l->verb, "HELO") == 0 || strcmp(l->verb, "EHLO") == 0);
}

/* How well two lines match: 0 not at all, 1 same verb or code, 2 the
 * same text (or a HELO/EHLO, whose argument the gateway rewrites).  The
 * best total pairs a relayed command with its copy, not with a lookalike
 * that the gateway refused. */
static unsigned
pc_tl_score(const struct pc_tline *a, const struct pc_tline *b)
{
	if (!pc_tl_match(a, b))
		return 0;
	return pc_tl_same(a, b) || pc_is_helo(a) ? 2 : 1;
}

/* Fills rows (capacity 2 * PC_TR_LINES); returns how many, and the
 * index of the first divergence in *div (-1: none). */
static size_t
pc_align(const struct pc_trace *ct, const struct pc_trace *ut,
    struct pc_row *rows, long *div)
{
	size_t n = ct->n, m = ut->n, i, j, r = 0;
	unsigned short *L;
	unsigned w, best;
	int gw = 0;

	*div = -1;
	L = calloc((n + 1) * (m + 1), sizeof(*L));
	if (L == NULL)
		return 0;
	/* L[i][j]: the best score of the dialogues from line i and j. */
	for (i = n; i-- > 0;)
		for (j = m; j-- > 0;) {
			w = pc_tl_score(&ct->l[i], &ut->l[j]);
			best = L[(i + 1) * (m + 1) + j];
			if (L[i * (m + 1) + j + 1] > best)
				best = L[i * (m + 1) + j + 1];
			if (w > 0 && L[(i + 1) * (m + 1) + j + 1] + w > best)
				best = L[(i + 1) * (m + 1) + j + 1] + w;
			L[i * (m + 1) + j] = (unsigned short)best;
		}
	i = j = 0;
	while (i < n || j < m) {
		memset(&rows[r], 0, sizeof(rows[r]));
		w = i < n && j < m ? pc_tl_score(&ct->l[i], &ut->l[j]) : 0;
		if (w > 0 &&
		    L[i * (m + 1) + j] == L[(i + 1) * (m + 1) + j + 1] + w) {
			rows[r].c = &ct->l[i++];
			rows[r].u = &ut->l[j++];
			gw = 0;
			if (pc_is_helo(rows[r].c) &&
			    !pc_tl_same(rows[r].c, rows[r].u)) {
				rows[r].mark = '~';
				rows[r].note = "HELO rewritten";
			} else if (!pc_tl_same(rows[r].c, rows[r].u)) {
				/* A command rewritten, or a reply of the
				 * gateway's own or edited (an EHLO list). */
				rows[r].mark = '~';
				rows[r].note = rows[r].c->kind == PC_TL_CMD
				                   ? "changed by the gateway"
				                   : "reply differs";
			} else {
				rows[r].mark = '=';
			}
		} else if (i < n && (j >= m || L[(i + 1) * (m + 1) + j] >=
		                                   L[i * (m + 1) + j + 1])) {
			rows[r].c = &ct->l[i++];
			if (rows[r].c->kind == PC_TL_CMD) {
				/* A command that never went upstream. */
				rows[r].mark = 'G';
				rows[r].note = "answered by the gateway";
				gw = 1;
			} else if (gw && rows[r].c->kind == PC_TL_REPLY) {
				rows[r].mark = 'G';
				rows[r].note = "the gateway's reply";
				gw = 0;
			} else {
				rows[r].mark = '!';
			}
		} else {
			rows[r].u = &ut->l[j++];
			rows[r].mark = '+';
			rows[r].note = "upstream only";
			gw = 0;
			/* A command of the gateway's own upstream is
			 * expected (e.g. its STARTTLS, its QUIT); any other
			 * lone line is a divergence. */
			if (rows[r].u->kind != PC_TL_CMD &&
			    !(r > 0 && rows[r - 1].mark == '+'))
				rows[r].mark = '!';
		}
		if (rows[r].mark == '!') {
			rows[r].note = "the legs diverge";
			if (*div < 0)
				*div = (long)r;
		}
		r++;
	}
	free(L);
	return r;
}

/* One line of a leg's dialogue as text: "C: ..." or "S: ...". */
static size_t
pc_tl_fmt(const struct pc_tline *l, char *dst, size_t cap)
{
	size_t o = 0, i;
	unsigned char ch;
	int n;

	if (l == NULL) {
		dst[0] = '\0';
		return 0;
	}
	n = snprintf(dst, cap, "%s",
	    l->kind == PC_TL_REPLY || l->kind == PC_TL_TLS ? "S: " : "C: ");
	o = n > 0 ? (size_t)n : 0;
	for (i = 0; i < l->len && o + 5 < cap; i++) {
		ch = (unsigned char)l->text[i];
		if (ch >= 0x20 && ch < 0x7f && ch != '\\') {
			dst[o++] = (char)ch;
		} else {
			n = snprintf(dst + o, cap - o, "\\x%02x", ch);
			o += n > 0 ? (size_t)n : 0;
		}
	}
	if (l->cut && o + 4 < cap) {
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	dst[o] = '\0';
	return o;
}

static void
pc_json_str(const char *p, size_t n)
{
	size_t i;
	unsigned char ch;

	putchar('"');
	for (i = 0; i < n; i++) {
		ch = (unsigned char)p[i];
		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20 || ch >= 0x7f)
			printf("\\u%04x", ch); /* bytes as Latin-1 */
		else
			putchar(ch);
	}
	putchar('"');
}

/* The first HELO/EHLO argument of a leg ("" if none). */
static void
pc_tr_helo(const struct pc_trace *t, const char **arg, size_t *len)
{
	size_t i;
	const struct pc_tline *l;

	*arg = "";
	*len = 0;
	for (i = 0; i < t->n; i++) {
		l = &t->l[i];
		if (pc_is_helo(l)) {
			*arg = l->len > 5 ? l->text + 5 : "";
			*len = l->len > 5 ? l->len - 5 : 0;
			return;
		}
	}
}

struct pc_tstats {
	uint64_t pairs, unpaired, rewritten, gw_answered, diverged;
};

static void
pc_leg_json(const char *name, const struct pc_sess *s)
{
	char src[64], dst[64];
	const char *h;
	size_t hn;

	pc_ep_text(s->family, s->caddr, s->cport, src, sizeof(src));
	pc_ep_text(s->family, s->saddr, s->sport, dst, sizeof(dst));
	pc_tr_helo(s->tr, &h, &hn);
	printf("\"%s\":{\"src\":\"%s\",\"dst\":\"%s\",\"start\":\"", name, src,
	    dst);
	pc_time_put(&s->first);
	printf("\",\"helo\":");
	pc_json_str(h, hn);
	printf(",\"end\":\"%s\",\"lines_dropped\":%d}", s->end, s->tr->more);
}

static void
pc_leg_text(const char *name, const struct pc_sess *s)
{
	char src[64], dst[64];

	pc_ep_text(s->family, s->caddr, s->cport, src, sizeof(src));
	pc_ep_text(s->family, s->saddr, s->sport, dst, sizeof(dst));
	printf(" %s=%s>%s %s_end=%s", name, src, dst, name, s->end);
}

/* Prints client leg a beside its upstream leg b. */
static void
pc_pair_print(struct pc_ctx *c, const struct pc_sess *a,
    const struct pc_sess *b, const char *how, const char *id, uint64_t no,
    struct pc_tstats *ts)
{
	struct pc_row *rows;
	size_t n, i, gw = 0;
	long div;
	int rew = 0;
	char lt[PC_TR_TEXT * 4 + 8], rt[PC_TR_TEXT * 4 + 8];
	const char *ha, *hb;
	size_t hna, hnb;

	rows = calloc(2 * PC_TR_LINES + 2, sizeof(*rows));
	if (rows == NULL) {
		fprintf(stderr, "smtp64-pcap: out of memory\n");
		return;
	}
	n = pc_align(a->tr, b->tr, rows, &div);
	for (i = 0; i < n; i++) {
		rew |= rows[i].note != NULL &&
		       strcmp(rows[i].note, "HELO rewritten") == 0;
		gw += rows[i].mark == 'G' && rows[i].c->kind == PC_TL_CMD;
	}
	ts->pairs++;
	ts->rewritten += rew;
	ts->gw_answered += gw;
	ts->diverged += div >= 0;
	pc_tr_helo(a->tr, &ha, &hna);
	pc_tr_helo(b->tr, &hb, &hnb);
	if (c->o.json) {
		printf("{\"pair\":%llu,\"session\":", (unsigned long long)no);
		if (id != NULL)
			printf("\"%s\"", id);
		else
			printf("null");
		printf(",\"paired_by\":\"%s\",", how);
		pc_leg_json("client", a);
		putchar(',');
		pc_leg_json("upstream", b);
		printf(",\"helo_rewritten\":%s,\"gateway_answered\":%zu,"
		       "\"diverge\":",
		    rew ? "true" : "false", gw);
		if (div >= 0)
			printf("%ld", div);
		else
			printf("null");
		printf(",\"rows\":[");
		for (i = 0; i < n; i++) {
			printf("%s{\"mark\":\"%c\",\"client\":",
			    i > 0 ? "," : "", rows[i].mark);
			if (rows[i].c != NULL) {
				pc_tl_fmt(rows[i].c, lt, sizeof(lt));
				pc_json_str(lt, strlen(lt));
			} else
				printf("null");
			printf(",\"upstream\":");
			if (rows[i].u != NULL) {
				pc_tl_fmt(rows[i].u, rt, sizeof(rt));
				pc_json_str(rt, strlen(rt));
			} else
				printf("null");
			if (rows[i].note != NULL)
				printf(",\"note\":\"%s\"", rows[i].note);
			putchar('}');
		}
		printf("]}\n");
		free(rows);
		return;
	}
	printf("pair=%llu session=%s paired_by=%s", (unsigned long long)no,
	    id != NULL ? id : "-", how);
	pc_leg_text("client", a);
	pc_leg_text("upstream", b);
	printf(
	    " delay_ms=%lld helo_client=", pc_us(&b->first, &a->first) / 1000);
	if (hna > 0)
		pc_esc_put(ha, hna);
	else
		printf("-");
	printf(" helo_upstream=");
	if (hnb > 0)
		pc_esc_put(hb, hnb);
	else
		printf("-");
	printf(" helo_rewritten=%s gateway_answered=%zu diverge=",
	    rew ? "yes" : "no", gw);
	if (div >= 0)
		printf("%ld\n", div + 1);
	else
		printf("-\n");
	printf("    %-*s   %s\n", PC_COL, "client leg", "upstream leg");
	for (i = 0; i < n; i++) {
		pc_tl_fmt(rows[i].c, lt, sizeof(lt));
		pc_tl_fmt(rows[i].u, rt, sizeof(rt));
		/* The left column is cut to its width, the right one
		 * is the end of the line. */
		if (strlen(lt) > PC_COL)
			memcpy(lt + PC_COL - 3, "...", 4);
		printf("  %c %-*s | %-*s%s%s\n", rows[i].mark, PC_COL, lt,
		    rows[i].note != NULL ? PC_COL : 0, rt,
		    rows[i].note != NULL ? "  <- " : "",
		    rows[i].note != NULL ? rows[i].note : "");
	}
	printf("\n");
	free(rows);
}

static void
pc_single_print(struct pc_ctx *c, const struct pc_sess *s, const char *leg,
    struct pc_tstats *ts)
{
	size_t i;
	char t[PC_TR_TEXT * 4 + 8];

	ts->unpaired++;
	if (c->o.json) {
		printf("{\"unpaired\":\"%s\",", leg);
		pc_leg_json("leg", s);
		printf(",\"lines\":[");
		for (i = 0; i < s->tr->n; i++) {
			pc_tl_fmt(&s->tr->l[i], t, sizeof(t));
			if (i > 0)
				putchar(',');
			pc_json_str(t, strlen(t));
		}
		printf("]}\n");
		return;
	}
	printf("unpaired leg=%s", leg);
	pc_leg_text("session", s);
	printf("\n");
	for (i = 0; i < s->tr->n; i++) {
		pc_tl_fmt(&s->tr->l[i], t, sizeof(t));
		printf("    %s\n", t);
	}
	printf("\n");
}

static int
pc_first_cmp(const void *x, const void *y)
{
	const struct pc_sess *a = *(const struct pc_sess *const *)x;
	const struct pc_sess *b = *(const struct pc_sess *const *)y;
	long long d = pc_us(&a->first, &b->first);

	if (d != 0)
		return d < 0 ? -1 : 1;
	return a->id < b->id ? -1 : a->id > b->id;
}

/* -T at the end: pairs every kept session and prints the pairs. */
static void
pc_trace_report(struct pc_ctx *c)
{
	struct pc_sess **v, *s;
	struct pc_open *o;
	struct pc_tstats ts;
	const char *how;
	size_t n = 0, i, j;
	uint64_t no = 0;

	memset(&ts, 0, sizeof(ts));
	v = calloc(c->ndone + 1, sizeof(*v));
	if (v == NULL) {
		fprintf(stderr, "smtp64-pcap: out of memory\n");
		return;
	}
	TAILQ_FOREACH(s, &c->done, lru)
	v[n++] = s;
	qsort(v, n, sizeof(*v), pc_first_cmp);
	if (!c->o.json)
		printf("marks: = same on both legs, ~ changed by the gateway, "
		       "G answered by the gateway, + upstream only, ! the "
		       "legs diverge\n\n");
	for (i = 0; i < n; i++) {
		if (v[i]->peer != NULL)
			continue;
		o = pc_pair_open(c->map, v[i]);
		/* With a log, a client leg is one the log names. */
		if (o == NULL && c->map != NULL && c->map->nopen > 0)
			continue;
		for (j = i + 1; j < n; j++) {
			how = pc_pair_test(c->map, v[i], v[j], o);
			if (how == NULL)
				continue;
			v[i]->peer = v[j];
			v[j]->peer = v[i];
			if (o != NULL)
				o->used = 1;
			pc_pair_print(c, v[i], v[j], how,
			    o != NULL ? o->id : NULL, ++no, &ts);
			break;
		}
	}
	for (i = 0; i < n; i++)
		if (v[i]->peer == NULL)
			pc_single_print(c, v[i], "unknown", &ts);
	if (c->o.json)
		printf("{\"summary\":{\"sessions\":%zu,\"pairs\":%llu,"
		       "\"unpaired\":%llu,\"helo_rewritten\":%llu,"
		       "\"gateway_answered\":%llu,\"diverged\":%llu,"
		       "\"dropped\":%llu}}\n",
		    n, (unsigned long long)ts.pairs,
		    (unsigned long long)ts.unpaired,
		    (unsigned long long)ts.rewritten,
		    (unsigned long long)ts.gw_answered,
		    (unsigned long long)ts.diverged,
		    (unsigned long long)c->dropped);
	else
		printf("trace: sessions=%zu pairs=%llu unpaired=%llu "
		       "helo_rewritten=%llu gateway_answered=%llu "
		       "diverged=%llu dropped=%llu\n",
		    n, (unsigned long long)ts.pairs,
		    (unsigned long long)ts.unpaired,
		    (unsigned long long)ts.rewritten,
		    (unsigned long long)ts.gw_answered,
		    (unsigned long long)ts.diverged,
		    (unsigned long long)c->dropped);
	for (i = 0; i < n; i++)
		pc_sess_free(v[i], &c->done);
	c->ndone = 0;
	free(v);
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
pc_open(const struct pc_opts *o, const char *file, char *errbuf)
{
	pcap_t *p;
	int rc;

	if (file != NULL)
		return pcap_open_offline(file, errbuf);
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
	while ((ch = getopt_long(argc, argv, "C:c:f:hi:jL:l:m:n:p:Pqr:sTt:vV",
	            longopts, NULL)) != -1) {
		switch (ch) {
		case 'C':
			o->conf = optarg;
			break;
		case 'j':
			o->json = 1;
			break;
		case 'L':
			o->log = optarg;
			break;
		case 'T':
			o->trace = 1;
			break;
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
			if (o->file != NULL && o->file2 != NULL)
				goto bad;
			if (o->file != NULL)
				o->file2 = optarg;
			else
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
	if (optind != argc || (o->file == NULL) == (o->iface == NULL) ||
	    (!o->trace && (o->file2 != NULL || o->conf != NULL ||
	                      o->log != NULL || o->json))) {
		usage(stderr);
		return -1;
	}
	return 0;
bad:
	fprintf(stderr, "smtp64-pcap: -%c %s: bad value\n", ch, optarg);
	return -1;
}

/* One capture being read: a file or a live interface. */
struct pc_src {
	pcap_t *p;
	const char *name;
	int link;
	struct pcap_pkthdr *h; /* the packet read ahead, if any */
	const u_char *data;
	int eof;
};

/* Opens a source, checks its link type and sets the filter; 0 ok, else
 * the exit status. */
static int
pc_src_open(struct pc_ctx *c, struct pc_src *sc, const char *file)
{
	struct bpf_program prog;
	char errbuf[PCAP_ERRBUF_SIZE], filter[64];
	const char *flt;
	int dlt, rc;

	memset(sc, 0, sizeof(*sc));
	sc->name = file != NULL ? file : c->o.iface;
	errbuf[0] = '\0';
	sc->p = pc_open(&c->o, file, errbuf);
	if (sc->p == NULL) {
		fprintf(stderr, "smtp64-pcap: %s: %s\n", sc->name, errbuf);
		return 1;
	}
	dlt = pcap_datalink(sc->p);
	sc->link = pc_dlt_link(dlt);
	if (sc->link < 0) {
		fprintf(stderr, "smtp64-pcap: %s: link type %s not supported\n",
		    sc->name,
		    pcap_datalink_val_to_name(dlt) != NULL
		        ? pcap_datalink_val_to_name(dlt)
		        : "unknown");
		return 1;
	}
	flt = c->o.filter;
	if (flt == NULL) {
		snprintf(filter, sizeof(filter), "tcp port %u", c->o.port);
		flt = filter;
	}
	if (pcap_compile(sc->p, &prog, flt, 1, PCAP_NETMASK_UNKNOWN) != 0) {
		fprintf(stderr, "smtp64-pcap: filter \"%s\": %s\n", flt,
		    pcap_geterr(sc->p));
		return 2;
	}
	rc = pcap_setfilter(sc->p, &prog);
	pcap_freecode(&prog);
	if (rc != 0) {
		fprintf(stderr, "smtp64-pcap: filter \"%s\": %s\n", flt,
		    pcap_geterr(sc->p));
		return 1;
	}
	if (c->o.iface != NULL)
		fprintf(stderr,
		    "smtp64-pcap: listening on %s, link-type %s, filter "
		    "\"%s\"\n",
		    c->o.iface, pcap_datalink_val_to_name(dlt), flt);
	return 0;
}

/* Reads ahead in sc; 0 ok or end of file, 1 a read error. */
static int
pc_src_fill(struct pc_src *sc)
{
	int rc;

	while (sc->h == NULL && !sc->eof && !pc_stop) {
		rc = pcap_next_ex(sc->p, &sc->h, &sc->data);
		if (rc == 1)
			return 0;
		sc->h = NULL;
		if (rc == 0)
			return 0; /* live: nothing for a while */
		sc->eof = 1;
		if (rc != PCAP_ERROR_BREAK && rc != PCAP_ERROR_NOT_ACTIVATED &&
		    rc != -2) {
			fprintf(stderr, "smtp64-pcap: %s: %s\n", sc->name,
			    pcap_geterr(sc->p));
			return 1;
		}
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct pc_ctx *c;
	struct pc_src src[2], *sc;
	struct sigaction sa;
	int i, nsrc, status = 0;

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
	TAILQ_INIT(&c->done);
	/* Observe only: HELO relayed unchanged, the gateway's caps; bare
	 * CR, LF and NUL in data flagged (bare_line_endings = reject). */
	c->pol.fqdn = "smtp64-pcap.invalid";
	c->pol.fqdn_len = strlen(c->pol.fqdn);
	c->pol.helo = SMTPFIX_HELO_OFF;
	c->pol.cmd_max = c->o.cmd_max;
	c->pol.reply_max = PC_REPLY_MAX;
	c->pol.hygiene = 1;
	memset(src, 0, sizeof(src));
	nsrc = 0;

	if (c->o.conf != NULL || c->o.log != NULL) {
		c->map = calloc(1, sizeof(*c->map));
		if (c->map == NULL) {
			fprintf(stderr, "smtp64-pcap: out of memory\n");
			status = 1;
			goto out;
		}
		if ((c->o.conf != NULL &&
		        pc_map_conf(c->map, c->o.conf) != 0) ||
		    (c->o.log != NULL && pc_map_log(c->map, c->o.log) != 0)) {
			status = 1;
			goto out;
		}
	}
	status = pc_src_open(c, &src[nsrc++], c->o.file);
	if (status == 0 && c->o.file2 != NULL)
		status = pc_src_open(c, &src[nsrc++], c->o.file2);
	if (status != 0)
		goto out;

	if (c->o.iface != NULL) {
		pc_live = src[0].p;
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
	}

	/* Packets in time order across the sources (two files of the two
	 * legs merge into one timeline). */
	/* -c counts sessions however they end: by FIN or RST in a packet,
	 * or idle (-t) while a live capture sees nothing, which is checked
	 * here too (a leg whose FIN the capture missed ended that way and
	 * the loop waited for a packet that never came). */
	while (!pc_stop && !(c->o.count > 0 && c->ended >= c->o.count)) {
		sc = NULL;
		for (i = 0; i < nsrc; i++) {
			if (pc_src_fill(&src[i]) != 0)
				status = 1;
			if (src[i].h != NULL &&
			    (sc == NULL ||
			        timercmp(&src[i].h->ts, &sc->h->ts, <)))
				sc = &src[i];
		}
		if (sc == NULL) {
			for (i = 0; i < nsrc && src[i].eof; i++)
				;
			if (i == nsrc)
				break;
			/* Live capture, nothing for a while: idle
			 * sessions still end. */
			gettimeofday(&c->now, NULL);
			pc_expire(c);
			continue;
		}
		c->link = sc->link;
		pc_packet(c, sc->h, sc->data);
		sc->h = NULL;
	}
	while (!TAILQ_EMPTY(&c->lru))
		pc_finish(c, TAILQ_FIRST(&c->lru), "open");
	/* The log again: a live capture has seen sessions that it logged
	 * after the start. */
	if (c->o.trace && c->o.iface != NULL && c->o.log != NULL) {
		free(c->map->open);
		c->map->open = NULL;
		c->map->nopen = 0;
		if (pc_map_log(c->map, c->o.log) != 0)
			status = 1;
	}
	if (c->o.trace)
		pc_trace_report(c);
	else
		pc_summary(c);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "smtp64-pcap: write error\n");
		status = 1;
	}
out:
	pc_live = NULL;
	for (i = 0; i < nsrc; i++)
		if (src[i].p != NULL)
			pcap_close(src[i].p);
	if (c->map != NULL)
		free(c->map->open);
	free(c->map);
	free(c);
	return status;
}
