/*
 * gateway/nfq.h: the packet path.  Packets of the paired addresses other
 * than the SMTP the proxy serves reach us through an iptables/ip6tables
 * NFQUEUE rule (libnetfilter_queue over libmnl, copy mode); each is
 * translated by nat/xlat and sent on through a raw socket (IPPROTO_RAW,
 * header included), and the original is dropped.  What is not ours goes
 * back to the kernel (ACCEPT).  Verdicts are sent in batches.
 *
 * One instance per process, driven by a libev loop.  Every packet that is
 * not translated is counted under its reason (nat_xlat_reason_name).
 */
#ifndef GW_NFQ_H
#define GW_NFQ_H

#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "nat/xlat.h"

/* ICMP errors we build (TTL, MTU, source route) per second, at most. */
#define GW_NFQ_ICMP_PER_S 100

struct gw_nfq_conf {
	unsigned queue;        /* NFQUEUE number, 0..65535 */
	unsigned queue_maxlen; /* kernel queue; 0: 4096 */
	/* The translation: pointers into the caller's configuration,
	 * which must outlive the packet path (or gw_nfq_reconf). */
	struct nat_xlat_conf xlat;
};

struct gw_nfq_stats {
	uint64_t received; /* packets read from the queue */
	/* recvmmsg calls that got some: received / reads is the batch */
	uint64_t reads;
	uint64_t sent46;                 /* translated IPv4 -> IPv6, sent */
	uint64_t sent64;                 /* translated IPv6 -> IPv4, sent */
	uint64_t fragments;              /* pieces of SPLIT packets sent */
	uint64_t icmp_sent;              /* our ICMP errors sent */
	uint64_t icmp_limited;           /* ... not sent: over the rate */
	uint64_t dropped;                /* verdict DROP, not translated */
	uint64_t accepted;               /* verdict ACCEPT: not ours */
	uint64_t send_errors;            /* raw socket refused (per packet) */
	uint64_t overruns;               /* ENOBUFS: the kernel lost messages */
	uint64_t truncated;              /* longer than the copy: dropped */
	uint64_t reason[NAT_XLAT_R_MAX]; /* DROP, ICMP, NOT_OURS */
};

/*
 * Binds NFQUEUE conf->queue (it must be free: one reader per queue),
 * opens the raw sockets and starts reading in loop.  conf is copied; the
 * pointers inside it are kept.  0, or -1 with a message in err (capacity
 * errcap), nothing left open.  Needs CAP_NET_ADMIN and CAP_NET_RAW.
 */
int gw_nfq_start(struct ev_loop *loop, const struct gw_nfq_conf *conf,
    char *err, size_t errcap);

/* Takes new translation settings (after a reload; the queue number is
 * not changed).  The old pointers are not used after it returns. */
void gw_nfq_reconf(const struct gw_nfq_conf *conf);

/* Stops reading, unbinds the queue (the kernel drops what is queued, or
 * accepts it with --queue-bypass) and closes everything.  Safe when not
 * started. */
void gw_nfq_stop(struct ev_loop *loop);

/* 1 while started. */
int gw_nfq_running(void);

/* Copies the counters (since start) into *st. */
void gw_nfq_stats(struct gw_nfq_stats *st);

/* Logs the counters as one key=value line (non-zero reasons only). */
void gw_nfq_log_stats(int level);

#endif
