/*
 * gateway/main.c: smtp64d, the SMTP-aware IPv4/IPv6 translator gateway.
 */
#include <sys/socket.h>

#include <sys/types.h>
#include <sys/wait.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "gateway/config.h"
#include "gateway/listener.h"
#include "gateway/log.h"
#include "gateway/nfq.h"
#include "gateway/session.h"
#include "gateway/tls.h"

#ifndef SMTP64_VERSION
#define SMTP64_VERSION "0.1.0"
#endif
#ifndef SMTP64_CONF
#define SMTP64_CONF "/usr/local/etc/smtp64/smtp64.conf"
#endif

static void
usage(void)
{
	fprintf(stderr, "usage: smtp64d [-dftV] [-c file]\n"
	                "  -c file  configuration (default " SMTP64_CONF ")\n"
	                "  -d       debug logging (one line per command)\n"
	                "  -f       stay in the foreground, log to stderr\n"
	                "  -t       check the configuration and exit\n"
	                "  -V       print the version and exit\n");
	exit(2);
}

static const char *conf_path;
static int debug_flag;
/* With workers > 1 the NFQUEUE has one reader: worker 0. */
static int packet_owner = 1;

static int
same_listeners(const struct gw_config *a, const struct gw_config *b)
{
	size_t i;

	if (a->nlisten != b->nlisten)
		return 0;
	for (i = 0; i < a->nlisten; i++)
		if (a->listen[i].port != b->listen[i].port ||
		    !nat_addr_eq(&a->listen[i].addr, &b->listen[i].addr))
			return 0;
	return 1;
}

/* One line per certificate loaded, so that the operator sees which one
 * a start or a reload put in service. */
static void
log_certs(const struct gw_config *cfg)
{
	char d[600];
	size_t i;

	if (cfg->tls == NULL)
		return;
	for (i = 0; i < gw_tls_cert_count(cfg->tls); i++)
		gw_log(LOG_INFO, "event=tls_cert %s",
		    gw_tls_cert_describe(cfg->tls, (int)i, d, sizeof(d)));
}

/* The packet path's settings, pointing into cfg (which must outlive
 * them: gw_nfq_reconf or gw_nfq_stop before cfg is released). */
static void
packet_conf(const struct gw_config *cfg, struct gw_nfq_conf *nc)
{
	memset(nc, 0, sizeof(*nc));
	nc->queue = cfg->packet.queue;
	nc->queue_maxlen = cfg->packet.queue_max_packets;
	nc->xlat.pairs = &cfg->pairs;
	nc->xlat.prefixes = cfg->xlat_prefix;
	nc->xlat.nprefixes = cfg->nnat64;
	nc->xlat.mtu4 = cfg->packet.ipv4_mtu_bytes;
	nc->xlat.mtu6 = cfg->packet.ipv6_mtu_bytes;
	nc->xlat.link6 = cfg->packet.ipv6_link_mtu_bytes;
	/* The MX port: SMTP stays with the proxy even if a rule queued
	 * it by mistake. */
	nc->xlat.proxy_port = (uint16_t)cfg->upstream_port;
	nc->xlat.icmp_errors = cfg->packet.icmp_errors;
	/* RFC 6791: the gateway's own addresses name it in ICMP errors. */
	if (cfg->source4.family == AF_INET)
		nc->xlat.self4 = cfg->source4.u.v4;
	if (cfg->source6.family == AF_INET6)
		nc->xlat.self6 = cfg->source6.u.v6;
}

static int
packet_start(struct ev_loop *loop, const struct gw_config *cfg)
{
	struct gw_nfq_conf nc;
	char err[256];

	packet_conf(cfg, &nc);
	if (gw_nfq_start(loop, &nc, err, sizeof(err)) != 0) {
		gw_log(LOG_ERR, "event=packet_start result=failed error=\"%s\"",
		    err);
		return -1;
	}
	gw_log(LOG_INFO,
	    "event=packet_start queue=%u pairs=%zu prefixes=%zu "
	    "ipv4_mtu=%u ipv6_mtu=%u ipv6_link_mtu=%u icmp_errors=%s",
	    nc.queue, cfg->pairs.n, cfg->nnat64, cfg->packet.ipv4_mtu_bytes,
	    cfg->packet.ipv6_mtu_bytes, cfg->packet.ipv6_link_mtu_bytes,
	    cfg->packet.icmp_errors ? "yes" : "no");
	return 0;
}

static void
packet_stop(struct ev_loop *loop, const char *why)
{
	if (!gw_nfq_running())
		return;
	gw_nfq_log_stats(LOG_INFO);
	gw_nfq_stop(loop);
	gw_log(LOG_INFO, "event=packet_stop reason=%s", why);
}

/*
 * The packet path under a reloaded cfg, before the old one is let go:
 * new settings, or stopped, or started, or moved to another queue.
 */
static void
packet_reload(struct ev_loop *loop, const struct gw_config *old,
    const struct gw_config *cfg)
{
	struct gw_nfq_conf nc;

	if (gw_nfq_running() && cfg->packet.enable &&
	    cfg->packet.queue == old->packet.queue) {
		packet_conf(cfg, &nc);
		gw_nfq_reconf(&nc);
		return;
	}
	packet_stop(loop, "reload");
	if (cfg->packet.enable && packet_owner)
		(void)packet_start(loop, cfg);
}

/* SIGUSR1: the packet path's counters, one line. */
static void
stats_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	if (gw_nfq_running())
		gw_nfq_log_stats(LOG_INFO);
}

/*
 * SIGHUP: the new file serves new sessions only if it validates whole;
 * sessions already running finish under the config they started with.
 * TLS certificates and keys are read again with it, so a renewed
 * certificate is served to new sessions without a restart, and one that
 * fails to load keeps the old configuration in service.
 */
static void
reload_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct gw_ctx *ctx = w->data;
	struct gw_config *cfg;
	char err[512];

	(void)revents;
	if ((cfg = gw_config_new(conf_path, err, sizeof(err))) == NULL) {
		gw_log(LOG_ERR,
		    "event=reload result=failed error=\"%s\" "
		    "note=old_config_kept",
		    err);
		return;
	}
	if (!same_listeners(ctx->cfg, cfg) ||
	    ctx->cfg->transparent != cfg->transparent)
		gw_log(LOG_WARNING, "event=reload note=listen_changed_"
		                    "needs_restart");
	packet_reload(loop, ctx->cfg, cfg);
	gw_ctx_set_config(ctx, cfg);
	if (!debug_flag)
		gw_log_set_level(cfg->log_level);
	gw_log(LOG_INFO, "event=reload result=ok pairs=%zu", cfg->pairs.n);
	log_certs(cfg);
}

static void
stop_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)revents;
	gw_log(LOG_INFO, "event=stop signal=%d", w->signum);
	ev_break(loop, EVBREAK_ALL);
}

/*
 * One event loop: the listeners, their sessions, and (worker 0 only) the
 * packet path.  Returns the exit status.
 */
static int
serve(struct gw_config *cfg, struct gw_listener *listeners, size_t nlisten,
    unsigned worker)
{
	struct gw_ctx ctx;
	struct ev_loop *loop;
	ev_signal sigterm, sigint, sighup, sigusr1;
	size_t i;

	packet_owner = worker == 0;
	loop = ev_default_loop(EVFLAG_AUTO);
	if (loop == NULL)
		gw_fatal("event=start error=\"cannot initialise libev\"");
	gw_ctx_init(&ctx, loop, cfg);
	/* Session ids stay unique across workers: the worker number is the
	 * top byte. */
	ctx.next_id = (uint32_t)worker << 24;
	for (i = 0; i < nlisten; i++)
		gw_listener_start(&listeners[i], &ctx);
	ev_signal_init(&sigterm, stop_cb, SIGTERM);
	ev_signal_init(&sigint, stop_cb, SIGINT);
	ev_signal_init(&sighup, reload_cb, SIGHUP);
	sighup.data = &ctx;
	ev_signal_init(&sigusr1, stats_cb, SIGUSR1);
	ev_signal_start(loop, &sigterm);
	ev_signal_start(loop, &sigint);
	ev_signal_start(loop, &sighup);
	ev_signal_start(loop, &sigusr1);
	/* After daemon(): the queue belongs to the process that reads it.
	 * With -f a failure is on the terminal; else in the log. */
	if (cfg->packet.enable && packet_owner && packet_start(loop, cfg) != 0)
		gw_fatal("event=start error=\"packet path: see above\"");
	gw_log(LOG_INFO,
	    "event=start version=%s fqdn=%s pairs=%zu "
	    "helo_rewrite=%s",
	    SMTP64_VERSION, cfg->fqdn, cfg->pairs.n,
	    cfg->pol.helo == SMTPFIX_HELO_ALWAYS     ? "always"
	    : cfg->pol.helo == SMTPFIX_HELO_LITERALS ? "literals"
	                                             : "off");
	log_certs(cfg);

	ev_run(loop, 0);

	packet_stop(loop, "exit");
	for (i = 0; i < nlisten; i++)
		gw_listener_stop(&listeners[i]);
	gw_session_close_all(&ctx);
	gw_config_release(ctx.cfg);
	return 0;
}

static volatile sig_atomic_t sup_term, sup_hup, sup_usr1, sup_chld;

static void
sup_signal(int sig)
{
	if (sig == SIGTERM || sig == SIGINT)
		sup_term = sig;
	else if (sig == SIGHUP)
		sup_hup = 1;
	else if (sig == SIGUSR1)
		sup_usr1 = 1;
	else if (sig == SIGCHLD)
		sup_chld = 1;
}

static pid_t
spawn(struct gw_config *cfg, struct gw_listener *listeners, size_t nlisten,
    unsigned worker, const sigset_t *orig)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	/* The child: default dispositions, libev installs its own. */
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGUSR1, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	sigprocmask(SIG_SETMASK, orig, NULL);
	/* Worker 0 accepts on the sockets opened at start; the others join
	 * their SO_REUSEPORT groups with sockets of their own. */
	for (size_t i = 0; worker > 0 && i < nlisten; i++) {
		struct gw_listener own;
		char err[256];

		if (gw_listener_open(&own, &cfg->listen[i], cfg->transparent, 1,
		        err, sizeof(err)) != 0) {
			gw_log(LOG_ERR,
			    "event=worker_listen worker=%u "
			    "error=\"%s\" note=sharing_the_first_socket",
			    worker, err);
			continue;
		}
		close(listeners[i].fd);
		listeners[i] = own;
	}
	_exit(serve(cfg, listeners, nlisten, worker));
}

/*
 * workers > 1: N processes accept on the same listening sockets (the
 * kernel hands each connection to one of them), so sessions use every
 * core.  This process only watches them: it forwards SIGHUP and SIGUSR1,
 * stops them on SIGTERM, and restarts one that dies (at most once a
 * second, so a crash loop cannot spin).  Limits such as
 * max_sessions_per_client then hold per worker.
 */
static int
supervise(struct gw_config *cfg, struct gw_listener *listeners, size_t nlisten)
{
	pid_t pid[64];
	time_t born[64];
	unsigned n = cfg->workers, i, alive = 0;
	int stopping = 0;
	sigset_t block, orig;
	struct sigaction sa;
	int status;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sup_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGCHLD);
	sigprocmask(SIG_BLOCK, &block, &orig);
	for (i = 0; i < n; i++) {
		pid[i] = spawn(cfg, listeners, nlisten, i, &orig);
		born[i] = time(NULL);
		alive += pid[i] > 0;
	}
	gw_log(
	    LOG_INFO, "event=start workers=%u version=%s", n, SMTP64_VERSION);
	while (alive > 0) {
		sigsuspend(&orig);
		if (sup_hup || sup_usr1) {
			int sig = sup_hup ? SIGHUP : SIGUSR1;

			sup_hup = sup_usr1 = 0;
			for (i = 0; i < n; i++)
				if (pid[i] > 0)
					kill(pid[i], sig);
			if (sig == SIGHUP) {
				char err[512];
				struct gw_config *c2 =
				    gw_config_new(conf_path, err, sizeof(err));

				/* A worker restarted later starts from the
				 * newest valid file. */
				if (c2 != NULL) {
					gw_config_release(cfg);
					cfg = c2;
				}
			}
		}
		if (sup_term && !stopping) {
			stopping = 1;
			gw_log(LOG_INFO, "event=stop signal=%d workers=%u",
			    (int)sup_term, n);
			for (i = 0; i < n; i++)
				if (pid[i] > 0)
					kill(pid[i], SIGTERM);
		}
		if (sup_chld) {
			pid_t p;

			sup_chld = 0;
			while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
				for (i = 0; i < n && pid[i] != p; i++)
					continue;
				if (i == n)
					continue;
				pid[i] = 0;
				alive--;
				if (sup_term)
					continue;
				gw_log(LOG_ERR,
				    "event=worker_exit worker=%u "
				    "status=%d note=restarting",
				    i, status);
				if (time(NULL) - born[i] < 1)
					sleep(1);
				pid[i] =
				    spawn(cfg, listeners, nlisten, i, &orig);
				born[i] = time(NULL);
				alive += pid[i] > 0;
			}
		}
	}
	gw_config_release(cfg);
	return 0;
}

int
main(int argc, char *argv[])
{
	const char *conf = SMTP64_CONF;
	struct gw_listener listeners[GW_LISTEN_MAX];
	struct gw_config *cfg;
	char err[512];
	int ch, foreground = 0, check = 0, debug = 0;
	size_t i, nlisten;

	while ((ch = getopt(argc, argv, "c:dftV")) != -1) {
		switch (ch) {
		case 'c':
			conf = optarg;
			break;
		case 'd':
			debug = 1;
			break;
		case 'f':
			foreground = 1;
			break;
		case 't':
			check = 1;
			break;
		case 'V':
			printf("smtp64d %s\n", SMTP64_VERSION);
			return 0;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();

	conf_path = conf;
	debug_flag = debug;
	if ((cfg = gw_config_new(conf, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (check) {
		printf("%s: ok (%zu pairs, %zu listeners, %u worker%s%s)\n",
		    conf, cfg->pairs.n, cfg->nlisten, cfg->workers,
		    cfg->workers == 1 ? "" : "s",
		    cfg->packet.enable ? ", packet path" : "");
		gw_config_release(cfg);
		return 0;
	}
	gw_log_init(foreground, debug ? LOG_DEBUG : cfg->log_level);
	signal(SIGPIPE, SIG_IGN);

	/* Bind before daemonising so that a port in use is reported on the
	 * terminal and the exit status. */
	nlisten = cfg->nlisten; /* reload keeps these listeners */
	for (i = 0; i < nlisten; i++) {
		if (gw_listener_open(&listeners[i], &cfg->listen[i],
		        cfg->transparent, cfg->workers > 1, err,
		        sizeof(err)) != 0) {
			fprintf(stderr, "smtp64d: %s\n", err);
			return 1;
		}
	}
	if (!foreground && daemon(0, 0) != 0) {
		perror("smtp64d: daemon");
		return 1;
	}
	if (cfg->workers > 1)
		return supervise(cfg, listeners, nlisten);
	return serve(cfg, listeners, nlisten, 0);
}
