/*
 * gateway/bpf.h: the packet path's fast path ([packet] engine = bpf).
 * Loads the tc program nat/bpf/xlat.bpf.c (a libbpf skeleton), writes the
 * translation settings into its maps, and attaches it, direct action, to
 * the ingress of every Ethernet interface of the host.  It translates the
 * common case and forwards it itself; everything else goes on untouched to
 * the NFQUEUE rules, so gateway/nfq must run beside it.
 *
 * The program forwards with bpf_fib_lookup, which refuses where the
 * receiving interface does not forward: with forwarding off every packet
 * goes to the slow path (counted as fib).
 *
 * One instance per process.  Counters are per verdict (enum nat_bpf_count
 * of nat/bpf/xlat_bpf.h).
 */
#ifndef GW_BPF_H
#define GW_BPF_H

#include <stddef.h>
#include <stdint.h>

#include "nat/bpf/xlat_bpf.h"
#include "nat/xlat.h"

/* gw_bpf_start flags */
/* Load and fill the maps, attach nowhere; the program translates but
 * neither routes nor forwards (BPF_PROG_TEST_RUN, gateway/bpf_test.c). */
#define GW_BPF_TEST 1u

/* Interfaces attached to, at most. */
#define GW_BPF_IF_MAX 64

struct gw_bpf_stats {
	uint64_t count[NAT_BPF_C_MAX]; /* summed over CPUs, since start */
};

/*
 * Loads the program, fills its maps from xc (copied: no pointer is
 * kept) and, unless flags has GW_BPF_TEST, attaches it to every Ethernet
 * interface.  0, or -1 with a message in err (capacity errcap) and
 * nothing left loaded or attached: the kernel refused it, or xc has more
 * than NAT_BPF_PREFIX_MAX prefixes.  Needs CAP_BPF (or CAP_SYS_ADMIN) and
 * CAP_NET_ADMIN.
 */
int gw_bpf_start(
    const struct nat_xlat_conf *xc, unsigned flags, char *err, size_t errcap);

/*
 * New translation settings (a reload): the program hands every packet to
 * the slow path while its maps are rewritten, then is attached to the
 * Ethernet interfaces that came since it started.  0, or -1 with a
 * message in err, the program stopped.
 */
int gw_bpf_reconf(const struct nat_xlat_conf *xc, char *err, size_t errcap);

/* Detaches from every interface (removing the clsact qdiscs it made) and
 * unloads.  Safe when not started. */
void gw_bpf_stop(void);

/* 1 while started. */
int gw_bpf_running(void);

/* The program's file descriptor (BPF_PROG_TEST_RUN), or -1. */
int gw_bpf_prog_fd(void);

/* Interfaces attached to, and their names, comma-separated, into buf. */
size_t gw_bpf_ifaces(char *buf, size_t cap);

/* Copies the counters into *st; zero when not started. */
void gw_bpf_stats(struct gw_bpf_stats *st);

/* A counter's name ("xlat46", "fib", ...), static; "unknown" out of
 * range. */
const char *gw_bpf_count_name(unsigned i);

/* Logs the counters as one key=value line. */
void gw_bpf_log_stats(int level);

/*
 * The engine for smtp64d's packet path, logged: want 1 starts it (or
 * takes xc, if it runs), 0 stops it, with its counters logged.  A start
 * the kernel refuses is logged (event=packet_bpf result=refused
 * fallback=nfqueue) and leaves the NFQUEUE path alone to translate.
 */
void gw_bpf_engine(int want, const struct nat_xlat_conf *xc);

#endif
