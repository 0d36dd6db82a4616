/*
 * tests/e2e/nfq_driver.c: runs gateway/nfq alone, for the packet-path
 * lab and the W6 benchmark, without smtp64d's configuration.
 *
 *   nfq_driver [-e] [-q QUEUE] [-4 MTU4] [-6 MTU6] [-S SELF4] [-s SELF6]
 *              [-p PREFIX/LEN] ... [-w PREFIX/LEN] ... V4=V6 ...
 *
 *   -e   build ICMP errors (TTL, MTU, source route)
 *   -p   RFC 6052 prefix (the first is used IPv4 -> IPv6)
 *   -w   the same, global IPv4 only (RFC 6052 §3.1: 64:ff9b::/96)
 *   V4=V6  a pair
 *
 * Runs in the foreground until SIGTERM or SIGINT, then logs the counters
 * (gw_nfq_log_stats) to stderr; SIGUSR1 logs them at once.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "gateway/log.h"
#include "gateway/nfq.h"
#include "nat/pair.h"
#include "nat/rfc6052.h"
#include "nat/xlat.h"

#define PFX_MAX 8

static void
usage(void)
{
	fprintf(stderr, "usage: nfq_driver [-e] [-q queue] [-4 mtu4] "
	                "[-6 mtu6] [-S self4] [-s self6] [-p prefix/len] "
	                "[-w prefix/len] v4=v6 ...\n");
	exit(2);
}

static unsigned
num(const char *s, unsigned max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v > max)
		usage();
	return (unsigned)v;
}

static void
prefix(struct nat_xlat_prefix *p, const char *arg, int global_only)
{
	char buf[INET6_ADDRSTRLEN + 4], *slash;

	if (snprintf(buf, sizeof(buf), "%s", arg) >= (int)sizeof(buf) ||
	    (slash = strchr(buf, '/')) == NULL)
		usage();
	*slash = '\0';
	if (inet_pton(AF_INET6, buf, &p->prefix) != 1)
		usage();
	p->plen = num(slash + 1, 128);
	p->global_only = global_only;
	if (nat_6052_prefix_valid(&p->prefix, p->plen) != 0) {
		fprintf(
		    stderr, "nfq_driver: %s: not an RFC 6052 prefix\n", arg);
		exit(2);
	}
}

static void
stop_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

static void
usr1_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	gw_nfq_log_stats(LOG_INFO);
}

int
main(int argc, char **argv)
{
	static struct nat_pairs pairs;
	static struct nat_xlat_prefix pfx[PFX_MAX];
	struct gw_nfq_conf conf;
	struct ev_loop *loop = EV_DEFAULT;
	ev_signal sterm, sint, susr1;
	char err[256], *eq;
	struct in_addr v4;
	struct in6_addr v6;
	size_t npfx = 0;
	int c, i;

	memset(&conf, 0, sizeof(conf));
	conf.xlat.proxy_port = 25;
	while ((c = getopt(argc, argv, "e4:6:q:S:s:p:w:")) != -1) {
		switch (c) {
		case 'e':
			conf.xlat.icmp_errors = 1;
			break;
		case '4':
			conf.xlat.mtu4 = num(optarg, 65535);
			break;
		case '6':
			conf.xlat.mtu6 = num(optarg, 65535);
			break;
		case 'q':
			conf.queue = num(optarg, 65535);
			break;
		case 'S':
			if (inet_pton(AF_INET, optarg, &conf.xlat.self4) != 1)
				usage();
			break;
		case 's':
			if (inet_pton(AF_INET6, optarg, &conf.xlat.self6) != 1)
				usage();
			break;
		case 'p':
		case 'w':
			if (npfx == PFX_MAX)
				usage();
			prefix(&pfx[npfx++], optarg, c == 'w');
			break;
		default:
			usage();
		}
	}
	if (nat_pairs_init(&pairs, (size_t)(argc - optind)) != 0) {
		perror("nfq_driver: pairs");
		return 1;
	}
	for (i = optind; i < argc; i++) {
		if ((eq = strchr(argv[i], '=')) == NULL)
			usage();
		*eq = '\0';
		if (inet_pton(AF_INET, argv[i], &v4) != 1 ||
		    inet_pton(AF_INET6, eq + 1, &v6) != 1)
			usage();
		if (nat_pairs_add(&pairs, &v4, &v6, 0) != 0) {
			fprintf(stderr, "nfq_driver: pair %s: %s\n", argv[i],
			    strerror(errno));
			return 1;
		}
	}
	conf.xlat.pairs = &pairs;
	conf.xlat.prefixes = pfx;
	conf.xlat.nprefixes = npfx;

	gw_log_init(1, LOG_INFO);
	signal(SIGPIPE, SIG_IGN);
	if (gw_nfq_start(loop, &conf, err, sizeof(err)) != 0) {
		fprintf(stderr, "nfq_driver: %s\n", err);
		return 1;
	}
	gw_log(LOG_INFO, "event=packet_start queue=%u pairs=%zu prefixes=%zu",
	    conf.queue, pairs.n, npfx);
	ev_signal_init(&sterm, stop_cb, SIGTERM);
	ev_signal_init(&sint, stop_cb, SIGINT);
	ev_signal_init(&susr1, usr1_cb, SIGUSR1);
	ev_signal_start(loop, &sterm);
	ev_signal_start(loop, &sint);
	ev_signal_start(loop, &susr1);
	ev_run(loop, 0);
	gw_nfq_log_stats(LOG_INFO);
	gw_nfq_stop(loop);
	nat_pairs_free(&pairs);
	return 0;
}
