/*
 * tests/e2e/dns_driver.c: runs gateway/dns.c and nat/mx.c on their own
 * against a lab DNS server, for tests/e2e/dns_route.sh.
 *
 *   dns_driver -s SERVER[:PORT] [-f 4|6|46] [-o OWNADDR]... [-t MS]
 *              [-c CACHE_S] DOMAIN...
 *
 * Starts every lookup at once on one libev loop, then prints one line per
 * domain as its answer arrives:
 *   DOMAIN rc=NAME gateway=0|1 targets=ADDR,ADDR... ticks=N
 * where ticks counts a 10 ms timer that ran while the loop waited (a
 * resolver that never answers must not stop it).  With -r, each domain is
 * looked up a second time after the first answers, and a final line
 * "stats lookups=N cache_hits=N tempfails=N" is printed.
 */
#include <sys/socket.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "gateway/dns.h"
#include "nat/mx.h"

#define MAXOWN 8

static struct gw_dns *dns;
static struct nat_mx_policy pol;
static struct nat_addr own[MAXOWN];
static unsigned long ticks;
static int outstanding, again;

struct item {
	const char *domain;
	int round;
};

static void answer_cb(void *arg, const struct nat_mx_answer *ans);

static void
tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	ticks++;
}

static void
ask(struct item *it)
{
	if (gw_dns_mx(dns, it->domain, strlen(it->domain), answer_cb, it) ==
	    NULL) {
		printf(
		    "%s rc=bad-name gateway=0 targets= ticks=0\n", it->domain);
		outstanding--;
	}
}

static void
answer_cb(void *arg, const struct nat_mx_answer *ans)
{
	struct item *it = arg;
	struct nat_mx_target t[16];
	enum nat_mx_rc rc;
	size_t n, i;
	char buf[64];

	rc = nat_mx_select(ans, &pol, 1, t, 16, &n);
	printf("%s rc=%s gateway=%d targets=", it->domain, nat_mx_rc_name(rc),
	    nat_mx_names_gateway(ans, &pol));
	for (i = 0; i < n; i++) {
		nat_addr_fmt(&t[i].addr, buf, sizeof(buf));
		printf("%s%s", i ? "," : "", buf);
	}
	printf(" ticks=%lu\n", ticks);
	fflush(stdout);
	if (again && it->round++ == 0) {
		ask(it);
		return;
	}
	outstanding--;
}

static void
check_done(struct ev_loop *loop, ev_prepare *w, int revents)
{
	(void)w;
	(void)revents;
	if (outstanding == 0)
		ev_break(loop, EVBREAK_ALL);
}

int
main(int argc, char **argv)
{
	struct ev_loop *loop = EV_DEFAULT;
	struct gw_dns_opts o = {
	    .timeout_ms = 500, .tries = 1, .cache_max_s = 300};
	struct item *items;
	struct gw_dns_stats st;
	ev_timer tick;
	ev_prepare prep;
	char err[256];
	int c, i;

	pol.families = NAT_MX_V4 | NAT_MX_V6;
	pol.own = own;
	while ((c = getopt(argc, argv, "s:f:o:t:c:r")) != -1) {
		switch (c) {
		case 's':
			o.servers = optarg;
			break;
		case 'f':
			pol.families = (strchr(optarg, '4') ? NAT_MX_V4 : 0) |
			               (strchr(optarg, '6') ? NAT_MX_V6 : 0);
			break;
		case 'o':
			if (pol.nown == MAXOWN ||
			    nat_addr_parse(
			        optarg, strlen(optarg), &own[pol.nown]) != 0) {
				fprintf(stderr, "bad -o %s\n", optarg);
				return 2;
			}
			pol.nown++;
			break;
		case 't':
			o.timeout_ms = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'c':
			o.cache_max_s = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'r':
			again = 1;
			break;
		default:
			return 2;
		}
	}
	if (optind == argc || pol.families == 0)
		return 2;
	if (gw_dns_new(&dns, loop, &o, err, sizeof(err)) != 0) {
		fprintf(stderr, "dns_driver: %s\n", err);
		return 1;
	}
	items = calloc((size_t)(argc - optind), sizeof(*items));
	if (items == NULL)
		return 1;
	ev_timer_init(&tick, tick_cb, 0.01, 0.01);
	ev_timer_start(loop, &tick);
	ev_prepare_init(&prep, check_done);
	ev_prepare_start(loop, &prep);
	outstanding = argc - optind;
	for (i = optind; i < argc; i++) {
		items[i - optind].domain = argv[i];
		ask(&items[i - optind]);
	}
	ev_run(loop, 0);
	gw_dns_stats(dns, &st);
	printf("stats lookups=%lu cache_hits=%lu tempfails=%lu\n", st.lookups,
	    st.cache_hits, st.tempfails);
	gw_dns_free(dns);
	free(items);
	return 0;
}
