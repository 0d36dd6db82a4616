/*
 * gateway/bpf.c: loads and attaches the fast path (nat/bpf/xlat.bpf.c)
 * with libbpf, from the skeleton bpftool made of it, and fills its maps:
 *
 *	conf	the sizes (nat_xlat_mtus), the proxy's port, the RFC 6052
 *		prefixes ready to match (prefix, mask, octet positions)
 *	pair4, pair6	the pair table both ways (RFC 7757 EAM)
 *	scope4	nat/scope.c's IPv4 table (nat_scope_v4_range) as an LPM trie
 *	counts	per-CPU counters, read back by gw_bpf_stats
 *
 * A reload turns the program off (conf.enabled = 0: every packet to the
 * slow path, which already has the new settings), rewrites the maps and
 * turns it on again, so no packet meets half of each configuration.
 *
 * Attaching: a clsact qdisc on each Ethernet interface (kept if it was
 * there, removed at stop if we made it) and our filter, handle
 * GW_BPF_HANDLE at priority GW_BPF_PRIO, replacing one a previous run
 * left behind.
 */
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf/xlat.skel.h"
#include "gateway/bpf.h"
#include "gateway/log.h"
#include "nat/pair.h"
#include "nat/scope.h"
#include "nat/xlat.h"

#define GW_BPF_HANDLE 0x6464
#define GW_BPF_PRIO 1
/* Room in the pair maps, at least; a reload past it loads afresh. */
#define PAIR_MIN 256

struct attached {
	int ifindex;
	int made_qdisc; /* the clsact qdisc is ours to remove */
	char name[IF_NAMESIZE];
};

static struct {
	int running;
	unsigned flags;
	struct smtp64_xlat *skel;
	uint32_t pair_cap;
	struct attached ifs[GW_BPF_IF_MAX];
	size_t nifs;
	int ncpus;
} b;

static const char *const names[NAT_BPF_C_MAX] = {
    [NAT_BPF_C_XLAT46] = "xlat46",
    [NAT_BPF_C_XLAT64] = "xlat64",
    [NAT_BPF_C_NOT_IP] = "not_ip",
    [NAT_BPF_C_NOT_OURS] = "not_ours",
    [NAT_BPF_C_PAUSED] = "paused",
    [NAT_BPF_C_PROXIED] = "proxied",
    [NAT_BPF_C_SOURCE] = "source",
    [NAT_BPF_C_HEADER] = "header",
    [NAT_BPF_C_FRAGMENT] = "fragment",
    [NAT_BPF_C_TTL] = "ttl",
    [NAT_BPF_C_PROTO] = "proto",
    [NAT_BPF_C_L4] = "l4",
    [NAT_BPF_C_TOO_BIG] = "too_big",
    [NAT_BPF_C_GSO] = "gso",
    [NAT_BPF_C_FIB] = "fib",
    [NAT_BPF_C_FIB_MTU] = "fib_mtu",
    [NAT_BPF_C_ERROR] = "error",
};

const char *
gw_bpf_count_name(unsigned i)
{
	if (i >= NAT_BPF_C_MAX || names[i] == NULL)
		return "unknown";
	return names[i];
}

/* libbpf's own messages (the verifier's log among them): debug lines. */
__attribute__((format(printf, 2, 0))) static int
print_cb(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char line[512];
	size_t n;

	if (level == LIBBPF_DEBUG || !gw_log_enabled(LOG_DEBUG))
		return 0;
	(void)vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n > 0 && line[n - 1] == '\n')
		line[--n] = '\0';
	gw_log(LOG_DEBUG, "event=libbpf message=\"%s\"", line);
	return 0;
}

/* ------------------------------------------------------------- maps */

/* RFC 6052 §2.2: the octets holding the IPv4 address under plen, the
 * u octet (bits 64-71) skipped, as nat/rfc6052.c places them. */
static void
prefix_fill(const struct nat_xlat_prefix *x, struct nat_bpf_prefix *p)
{
	unsigned i, o = x->plen / 8;

	memset(p, 0, sizeof(*p));
	memcpy(p->prefix.a, x->prefix.s6_addr, x->plen / 8);
	memset(p->mask.a, 0xff, x->plen / 8);
	/* RFC 6052 §2.2: the u octet must be zero (with a /96 it is
	 * inside the prefix, and zero there). */
	p->mask.a[8] = 0xff;
	p->prefix.a[8] = 0;
	for (i = 0; i < 4; i++) {
		if (o == 8)
			o++;
		p->pos[i] = (uint8_t)o++;
	}
	p->global_only = x->global_only ? 1 : 0;
	p->sources = x->sources ? 1 : 0;
}

static int
conf_write(
    const struct nat_xlat_conf *xc, int enabled, char *err, size_t errcap)
{
	struct nat_bpf_conf c;
	uint32_t zero = 0;
	unsigned m4, m6, l6;
	size_t i;

	memset(&c, 0, sizeof(c));
	c.enabled = (uint32_t)enabled;
	c.flags = (b.flags & GW_BPF_TEST) ? NAT_BPF_F_NOFWD : 0;
	c.nprefixes = (uint32_t)xc->nprefixes;
	nat_xlat_mtus(xc, &m4, &m6, &l6);
	c.mtu4 = m4;
	c.mtu6 = m6;
	c.link6 = l6;
	c.proxy_port = xc->proxy_port;
	for (i = 0; i < xc->nprefixes && i < NAT_BPF_PREFIX_MAX; i++)
		prefix_fill(&xc->prefixes[i], &c.prefix[i]);
	if (bpf_map__update_elem(b.skel->maps.conf, &zero, sizeof(zero), &c,
	        sizeof(c), BPF_ANY) != 0) {
		(void)snprintf(
		    err, errcap, "packet: bpf conf map: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* Empties a hash map, key by key. */
static void
map_clear(struct bpf_map *m)
{
	uint8_t key[16];
	int fd = bpf_map__fd(m), i;

	/* Bounded: the map holds at most max_entries keys. */
	for (i = 0; i <= (int)bpf_map__max_entries(m); i++) {
		if (bpf_map_get_next_key(fd, NULL, key) != 0)
			break;
		(void)bpf_map_delete_elem(fd, key);
	}
}

static int
pairs_write(const struct nat_xlat_conf *xc, char *err, size_t errcap)
{
	const struct nat_pair *p;
	union nat_bpf_in6 v6;
	uint32_t v4;
	size_t i;

	map_clear(b.skel->maps.pair4);
	map_clear(b.skel->maps.pair6);
	if (xc->pairs == NULL)
		return 0;
	for (i = 0; i < xc->pairs->n; i++) {
		p = &xc->pairs->pairs[i];
		v4 = p->v4.s_addr;
		memcpy(v6.a, p->v6.s6_addr, 16);
		if (bpf_map__update_elem(b.skel->maps.pair4, &v4, sizeof(v4),
		        &v6, sizeof(v6), BPF_ANY) != 0 ||
		    bpf_map__update_elem(b.skel->maps.pair6, &v6, sizeof(v6),
		        &v4, sizeof(v4), BPF_ANY) != 0) {
			(void)snprintf(err, errcap, "packet: bpf pair maps: %s",
			    strerror(errno));
			return -1;
		}
	}
	return 0;
}

static int
scope_write(char *err, size_t errcap)
{
	struct nat_bpf_lpm4 k;
	struct in_addr net;
	unsigned plen;
	uint32_t v;
	size_t i;
	int refused;

	for (i = 0; nat_scope_v4_range(i, &net, &plen, &refused) == 0; i++) {
		k.plen = plen;
		k.addr = net.s_addr;
		v = NAT_BPF_SCOPE_NONGLOBAL |
		    (refused ? NAT_BPF_SCOPE_REFUSED : 0);
		if (bpf_map__update_elem(b.skel->maps.scope4, &k, sizeof(k), &v,
		        sizeof(v), BPF_ANY) != 0) {
			(void)snprintf(err, errcap, "packet: bpf scope map: %s",
			    strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* -------------------------------------------------------- attaching */

static void
detach_all(void)
{
	size_t i;

	for (i = 0; i < b.nifs; i++) {
		LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = b.ifs[i].ifindex,
		    .attach_point = BPF_TC_INGRESS);
		LIBBPF_OPTS(bpf_tc_opts, opts, .handle = GW_BPF_HANDLE,
		    .priority = GW_BPF_PRIO);

		(void)bpf_tc_detach(&hook, &opts);
		if (b.ifs[i].made_qdisc) {
			hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
			(void)bpf_tc_hook_destroy(&hook);
		}
	}
	b.nifs = 0;
}

/* 1 if the interface called name carries Ethernet frames (what the
 * program parses) and is not the loopback. */
static int
is_ether(int fd, const char *name)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	if (strlen(name) >= sizeof(ifr.ifr_name))
		return 0;
	memcpy(ifr.ifr_name, name, strlen(name));
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) != 0 ||
	    (ifr.ifr_flags & IFF_LOOPBACK))
		return 0;
	if (ioctl(fd, SIOCGIFHWADDR, &ifr) != 0)
		return 0;
	return ifr.ifr_hwaddr.sa_family == ARPHRD_ETHER;
}

static int
attach_one(int ifindex, const char *name, char *err, size_t errcap)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
	    .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = GW_BPF_HANDLE,
	    .priority = GW_BPF_PRIO, .flags = BPF_TC_F_REPLACE,
	    .prog_fd = bpf_program__fd(b.skel->progs.smtp64_xlat));
	struct attached *a = &b.ifs[b.nifs];
	int rc;

	rc = bpf_tc_hook_create(&hook);
	if (rc != 0 && rc != -EEXIST) {
		(void)snprintf(err, errcap, "packet: bpf: clsact on %s: %s",
		    name, strerror(-rc));
		return -1;
	}
	a->ifindex = ifindex;
	a->made_qdisc = rc == 0;
	(void)snprintf(a->name, sizeof(a->name), "%s", name);
	b.nifs++;
	rc = bpf_tc_attach(&hook, &opts);
	if (rc != 0) {
		(void)snprintf(err, errcap, "packet: bpf: tc filter on %s: %s",
		    name, strerror(-rc));
		return -1;
	}
	return 0;
}

static int
attached(unsigned ifindex)
{
	size_t i;

	for (i = 0; i < b.nifs; i++)
		if (b.ifs[i].ifindex == (int)ifindex)
			return 1;
	return 0;
}

/* Attaches to every Ethernet interface not attached to yet.  On failure
 * everything is detached. */
static int
attach_all(char *err, size_t errcap)
{
	struct if_nameindex *ifs, *i;
	int fd, rc = 0;

	if ((ifs = if_nameindex()) == NULL) {
		(void)snprintf(err, errcap, "packet: bpf: interfaces: %s",
		    strerror(errno));
		return -1;
	}
	if ((fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0) {
		(void)snprintf(
		    err, errcap, "packet: bpf: socket: %s", strerror(errno));
		if_freenameindex(ifs);
		return -1;
	}
	for (i = ifs; i->if_index != 0 && i->if_name != NULL; i++) {
		if (attached(i->if_index) || !is_ether(fd, i->if_name))
			continue;
		if (b.nifs == GW_BPF_IF_MAX) {
			(void)snprintf(err, errcap,
			    "packet: bpf: more than %d interfaces",
			    GW_BPF_IF_MAX);
			rc = -1;
			break;
		}
		if ((rc = attach_one(
		         (int)i->if_index, i->if_name, err, errcap)) != 0)
			break;
	}
	close(fd);
	if_freenameindex(ifs);
	if (rc == 0 && b.nifs == 0) {
		(void)snprintf(
		    err, errcap, "packet: bpf: no Ethernet interface");
		rc = -1;
	}
	if (rc != 0)
		detach_all();
	return rc;
}

/* ------------------------------------------------------------- API */

static void
unload(void)
{
	detach_all();
	if (b.skel != NULL)
		smtp64_xlat__destroy(b.skel);
	b.skel = NULL;
	b.running = 0;
}

static size_t
npairs(const struct nat_xlat_conf *xc)
{
	return xc->pairs == NULL ? 0 : xc->pairs->n;
}

int
gw_bpf_start(
    const struct nat_xlat_conf *xc, unsigned flags, char *err, size_t errcap)
{
	size_t n = npairs(xc);
	int rc;

	if (b.running) {
		(void)snprintf(err, errcap, "packet: bpf: already started");
		return -1;
	}
	if (xc->nprefixes > NAT_BPF_PREFIX_MAX) {
		(void)snprintf(err, errcap,
		    "packet: bpf: %zu prefixes, the program takes %d",
		    xc->nprefixes, NAT_BPF_PREFIX_MAX);
		return -1;
	}
	(void)libbpf_set_print(print_cb);
	b.flags = flags;
	b.ncpus = libbpf_num_possible_cpus();
	if (b.ncpus <= 0) {
		(void)snprintf(err, errcap, "packet: bpf: cannot count CPUs");
		return -1;
	}
	b.pair_cap = (uint32_t)(n * 2 > PAIR_MIN ? n * 2 : PAIR_MIN);
	if ((b.skel = smtp64_xlat__open()) == NULL) {
		(void)snprintf(
		    err, errcap, "packet: bpf: open: %s", strerror(errno));
		return -1;
	}
	if (bpf_map__set_max_entries(b.skel->maps.pair4, b.pair_cap) != 0 ||
	    bpf_map__set_max_entries(b.skel->maps.pair6, b.pair_cap) != 0) {
		(void)snprintf(
		    err, errcap, "packet: bpf: map size: %s", strerror(errno));
		unload();
		return -1;
	}
	if ((rc = smtp64_xlat__load(b.skel)) != 0) {
		(void)snprintf(err, errcap,
		    "packet: bpf: the kernel refused the program: %s%s",
		    strerror(rc < 0 ? -rc : errno),
		    (rc == -EPERM || errno == EPERM)
		        ? " (needs CAP_BPF and CAP_NET_ADMIN)"
		        : "");
		unload();
		return -1;
	}
	if (conf_write(xc, 0, err, errcap) != 0 ||
	    pairs_write(xc, err, errcap) != 0 ||
	    scope_write(err, errcap) != 0 ||
	    conf_write(xc, 1, err, errcap) != 0) {
		unload();
		return -1;
	}
	if (!(flags & GW_BPF_TEST) && attach_all(err, errcap) != 0) {
		unload();
		return -1;
	}
	b.running = 1;
	return 0;
}

int
gw_bpf_reconf(const struct nat_xlat_conf *xc, char *err, size_t errcap)
{
	unsigned flags = b.flags;

	if (!b.running) {
		(void)snprintf(err, errcap, "packet: bpf: not started");
		return -1;
	}
	if (npairs(xc) > b.pair_cap || xc->nprefixes > NAT_BPF_PREFIX_MAX) {
		/* The maps cannot grow in place: load afresh. */
		unload();
		return gw_bpf_start(xc, flags, err, errcap);
	}
	if (conf_write(xc, 0, err, errcap) != 0 ||
	    pairs_write(xc, err, errcap) != 0 ||
	    conf_write(xc, 1, err, errcap) != 0) {
		unload();
		return -1;
	}
	/* Interfaces that came since the start. */
	if (!(flags & GW_BPF_TEST) && attach_all(err, errcap) != 0) {
		unload();
		return -1;
	}
	return 0;
}

void
gw_bpf_stop(void)
{
	if (b.skel == NULL)
		return;
	unload();
}

int
gw_bpf_running(void)
{
	return b.running;
}

int
gw_bpf_prog_fd(void)
{
	if (b.skel == NULL)
		return -1;
	return bpf_program__fd(b.skel->progs.smtp64_xlat);
}

size_t
gw_bpf_ifaces(char *buf, size_t cap)
{
	size_t i, off = 0;
	int n;

	if (cap > 0)
		buf[0] = '\0';
	for (i = 0; i < b.nifs && off < cap; i++) {
		n = snprintf(
		    buf + off, cap - off, "%s%s", i ? "," : "", b.ifs[i].name);
		if (n < 0 || (size_t)n >= cap - off)
			break;
		off += (size_t)n;
	}
	return b.nifs;
}

void
gw_bpf_stats(struct gw_bpf_stats *st)
{
	uint64_t v[512];
	uint32_t k;
	int c;

	memset(st, 0, sizeof(*st));
	if (b.skel == NULL || b.ncpus > (int)(sizeof(v) / sizeof(v[0])))
		return;
	for (k = 0; k < NAT_BPF_C_MAX; k++) {
		if (bpf_map__lookup_elem(b.skel->maps.counts, &k, sizeof(k), v,
		        sizeof(v[0]) * (size_t)b.ncpus, 0) != 0)
			continue;
		for (c = 0; c < b.ncpus; c++)
			st->count[k] += v[c];
	}
}

void
gw_bpf_log_stats(int level)
{
	struct gw_bpf_stats st;
	char line[1024];
	size_t off;
	unsigned k;
	int n;

	gw_bpf_stats(&st);
	n = snprintf(
	    line, sizeof(line), "event=packet_bpf_stats ifaces=%zu", b.nifs);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	off = (size_t)n;
	for (k = 0; k < NAT_BPF_C_MAX; k++) {
		n = snprintf(line + off, sizeof(line) - off, " %s=%llu",
		    gw_bpf_count_name(k), (unsigned long long)st.count[k]);
		if (n < 0 || (size_t)n >= sizeof(line) - off)
			break;
		off += (size_t)n;
	}
	gw_log(level, "%s", line);
}

/* 1 if /proc says forwarding is on for family's "all" interfaces. */
static int
forwarding(const char *path)
{
	FILE *f = fopen(path, "r");
	int c;

	if (f == NULL)
		return 0;
	c = fgetc(f);
	fclose(f);
	return c == '1';
}

void
gw_bpf_engine(int want, const struct nat_xlat_conf *xc)
{
	char err[256], ifs[512];
	int f4, f6;

	if (!want) {
		if (!b.running)
			return;
		gw_bpf_log_stats(LOG_INFO);
		gw_bpf_stop();
		gw_log(LOG_INFO, "event=packet_bpf result=stopped");
		return;
	}
	if (b.running) {
		if (gw_bpf_reconf(xc, err, sizeof(err)) != 0)
			gw_log(LOG_ERR,
			    "event=packet_bpf result=refused error=\"%s\" "
			    "fallback=nfqueue",
			    err);
		return;
	}
	if (gw_bpf_start(xc, 0, err, sizeof(err)) != 0) {
		gw_log(LOG_ERR,
		    "event=packet_bpf result=refused error=\"%s\" "
		    "fallback=nfqueue",
		    err);
		return;
	}
	(void)gw_bpf_ifaces(ifs, sizeof(ifs));
	f4 = forwarding("/proc/sys/net/ipv4/conf/all/forwarding");
	f6 = forwarding("/proc/sys/net/ipv6/conf/all/forwarding");
	gw_log(LOG_INFO,
	    "event=packet_bpf result=ok ifaces=%s ipv4_forwarding=%d "
	    "ipv6_forwarding=%d",
	    ifs, f4, f6);
	if (!f4 || !f6)
		gw_log(LOG_WARNING,
		    "event=packet_bpf warning=forwarding_off "
		    "note=\"packets of the family without forwarding take "
		    "the NFQUEUE path\"");
}
