/*
 * gateway/main.c: smtp64d, the SMTP-aware IPv4/IPv6 translator gateway.
 */
#include <sys/socket.h>

#include <sys/file.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "gateway/bpf.h"
#include "gateway/config.h"
#include "gateway/drain.h"
#include "gateway/listener.h"
#include "gateway/log.h"
#include "gateway/metrics.h"
#include "gateway/nfq.h"
#include "gateway/notify.h"
#include "gateway/privs.h"
#include "gateway/rlimit.h"
#include "gateway/session.h"
#include "gateway/spool.h"
#include "gateway/tls.h"
#include "gateway/uptable.h"

#ifndef SMTP64_VERSION
#define SMTP64_VERSION "0.1.0"
#endif
#ifndef SMTP64_CONF
#define SMTP64_CONF "/usr/local/etc/smtp64/smtp64.conf"
#endif

#define PATH_CAP 4096 /* Linux's PATH_MAX */

/* -h prints on stdout and exits 0; a wrong command line on stderr, 2. */
static void
usage(FILE *f, int status)
{
	fprintf(f, "usage: smtp64d [-dfhtV] [-c file] [-p file]\n"
	           "  -c file  configuration (default " SMTP64_CONF ")\n"
	           "  -d       debug logging (one line per command)\n"
	           "  -f       stay in the foreground, log to stderr\n"
	           "  -h       print this help and exit (also --help)\n"
	           "  -p file  write the PID to file once listening; refuse "
	           "to start\n"
	           "           while another smtp64d holds it\n"
	           "  -t       check the configuration and exit\n"
	           "  -V       print the version and exit (also --version)\n");
	exit(status);
}

/* Absolute: daemon(3) changes to / before any reload reads it. */
static char conf_path[PATH_CAP];
static int debug_flag;
/* With workers > 1 the NFQUEUE has one reader: worker 0. */
static int packet_owner = 1;

/*
 * What a reload cannot change, as the daemon runs it: the listeners
 * opened at start (every worker serves these, a restarted one too), their
 * IP_TRANSPARENT, and the number of workers.  Set once, before any fork.
 */
static struct {
	struct gw_listen listen[GW_LISTEN_MAX];
	size_t nlisten;
	int transparent;
	unsigned workers;
} running;

/* Workers 1.. : their members of the listeners' SO_REUSEPORT groups,
 * opened at start with the listeners (Linux admits to a group only
 * sockets of the same owner: once privileges are dropped none could
 * join).  Worker 0 uses the listeners themselves. */
#define WORKERS_MAX 64
static struct gw_listener wsock[WORKERS_MAX][GW_LISTEN_MAX];

/* Appended to a worker's own log lines: "" or " worker=N". */
static char worker_tag[24];

/* metrics_listen's socket, opened at start (-1: off); worker 0 serves
 * it.  Like the listeners, a reload does not move it. */
static int metrics_fd = -1;

/* The main process speaks to the service manager (NotifyAccess=main):
 * the single process, or the supervisor of workers. */
static int notify_main = 1;

#define STATUS_S 5. /* STATUS= every so often */

/* -p: the PID file, locked from before the first bind to the exit. */
static char pid_path[PATH_CAP];
static int pid_fd = -1;
static pid_t pid_owner;

/*
 * dst (capacity cap) gets path made absolute against the working
 * directory.  Symbolic links are left alone, so a reload reads the name
 * given, even where a link is swapped for a new file (as Kubernetes
 * mounts a ConfigMap).  0, or -1 with errno set.
 */
static int
abs_path(const char *path, char *dst, size_t cap)
{
	char cwd[PATH_CAP];
	int n;

	if (path[0] == '/')
		n = snprintf(dst, cap, "%s", path);
	else {
		if (getcwd(cwd, sizeof(cwd)) == NULL)
			return -1;
		n = snprintf(
		    dst, cap, "%s/%s", strcmp(cwd, "/") == 0 ? "" : cwd, path);
	}
	if (n < 0 || (size_t)n >= cap) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

static int
listen_has(const struct gw_listen *set, size_t n, const struct gw_listen *l)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (set[i].port == l->port &&
		    nat_addr_eq(&set[i].addr, &l->addr))
			return 1;
	return 0;
}

/*
 * Writes into dst (capacity cap) the keys of cfg, comma-separated, that
 * differ from what runs and that only a restart applies; returns how
 * many.  listen compares as a set: order does not matter.
 */
static int
restart_keys(const struct gw_config *cfg, char *dst, size_t cap)
{
	const char *key[3];
	size_t i, o = 0;
	int n = 0, same = cfg->nlisten == running.nlisten;

	for (i = 0; same && i < cfg->nlisten; i++)
		same =
		    listen_has(
		        running.listen, running.nlisten, &cfg->listen[i]) &&
		    listen_has(cfg->listen, cfg->nlisten, &running.listen[i]);
	if (!same)
		key[n++] = "listen";
	if (cfg->transparent != running.transparent)
		key[n++] = "transparent";
	if (cfg->workers != running.workers)
		key[n++] = "workers";
	dst[0] = '\0';
	for (i = 0; i < (size_t)n; i++) {
		int w = snprintf(
		    dst + o, cap - o, "%s%s", i > 0 ? "," : "", key[i]);

		if (w < 0 || (size_t)w >= cap - o)
			break;
		o += (size_t)w;
	}
	return n;
}

/* One line per reload that asks for what only a restart gives. */
static void
warn_restart(const struct gw_config *cfg)
{
	char keys[64];

	if (restart_keys(cfg, keys, sizeof(keys)) > 0)
		gw_log(LOG_WARNING,
		    "event=reload needs_restart=%s note=running_values_kept",
		    keys);
}

/*
 * -p, before anything is bound: opens and locks FILE (flock, so the lock
 * dies with its last holder and a stale file from a crash is simply
 * taken over).  If another smtp64d holds it, says so in err (capacity
 * errcap) with the PID the file names; -1.  0 when locked.
 */
static int
pidfile_lock(const char *path, char *err, size_t errcap)
{
	char held[24];
	ssize_t n;
	int fd;

	if (abs_path(path, pid_path, sizeof(pid_path)) != 0) {
		(void)snprintf(
		    err, errcap, "pid file %s: %s", path, strerror(errno));
		return -1;
	}
	/* Not through a link: root writes it, often in a shared folder. */
	fd = open(pid_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		(void)snprintf(
		    err, errcap, "pid file %s: %s", pid_path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;

		n = -1;
		if (e == EWOULDBLOCK)
			n = pread(fd, held, sizeof(held) - 1, 0);
		held[n > 0 ? (size_t)n : 0] = '\0';
		held[strcspn(held, "\n")] = '\0';
		if (e == EWOULDBLOCK)
			(void)snprintf(err, errcap,
			    "pid file %s: held by a running smtp64d "
			    "(pid %s); not starting",
			    pid_path, held[0] != '\0' ? held : "unknown");
		else
			(void)snprintf(err, errcap, "pid file %s: lock: %s",
			    pid_path, strerror(e));
		close(fd);
		return -1;
	}
	pid_fd = fd;
	return 0;
}

static void
pidfile_remove(void)
{
	/* Workers inherit the lock, never the file: only its writer
	 * removes it. */
	if (pid_fd >= 0 && getpid() == pid_owner)
		(void)unlink(pid_path);
}

/*
 * A drain starts: the PID file goes now, so that a new daemon given the
 * same -p can start while this one finishes its sessions.
 */
static void
pidfile_release(void)
{
	if (pid_fd < 0)
		return;
	pidfile_remove();
	close(pid_fd);
	pid_fd = -1;
}

/* -p, once listening and detached: the PID of the process to signal,
 * which removes the file at exit (atexit(pidfile_remove) in main). */
static int
pidfile_write(char *err, size_t errcap)
{
	char line[24];
	int n;

	if (pid_fd < 0)
		return 0;
	n = snprintf(line, sizeof(line), "%ld\n", (long)getpid());
	if (ftruncate(pid_fd, 0) != 0 ||
	    pwrite(pid_fd, line, (size_t)n, 0) != (ssize_t)n) {
		(void)snprintf(
		    err, errcap, "pid file %s: %s", pid_path, strerror(errno));
		return -1;
	}
	pid_owner = getpid();
	return 0;
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
	gw_bpf_engine(cfg->packet.engine == GW_PACKET_BPF, &nc.xlat);
	return 0;
}

static void
packet_stop(struct ev_loop *loop, const char *why)
{
	if (!gw_nfq_running())
		return;
	gw_bpf_engine(0, NULL);
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
		gw_bpf_engine(cfg->packet.engine == GW_PACKET_BPF, &nc.xlat);
		return;
	}
	packet_stop(loop, "reload");
	if (cfg->packet.enable && packet_owner)
		(void)packet_start(loop, cfg);
}

/* SIGUSR1: the packet path's counters, the SMTP path's and the
 * sessions', a line each. */
static void
stats_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)loop;
	(void)revents;
	if (gw_nfq_running())
		gw_nfq_log_stats(LOG_INFO);
	if (gw_bpf_running())
		gw_bpf_log_stats(LOG_INFO);
	if (w->data != NULL) {
		gw_session_log_stats(w->data, LOG_INFO);
		gw_ctx_log_stats(w->data);
	}
}

/* 1 if a pair has fallback_ipv4, or a [route] has an IPv4 address (its
 * mail leaves over IPv6, and the domain's IPv4 hosts take a refusal's
 * retry): draft-martin §3, a spool is needed. */
static int
uses_fallback(const struct gw_config *cfg)
{
	size_t i, k;

	for (i = 0; i < cfg->pairs.n; i++)
		if (cfg->pair_opt[i].fallback4.family != 0)
			return 1;
	for (i = 0; i < cfg->nroutes; i++)
		for (k = 0; k < cfg->routes[i].naddrs; k++)
			if (cfg->routes[i].addrs[k].family == AF_INET)
				return 1;
	return 0;
}

/*
 * The spool of draft-martin fallbacks (gateway/spool.h), when a pair has
 * fallback_ipv4 or a route an IPv4 address: made 0700 if absent, and swept of
 * what a crash left. 0, or -1 with err.
 */
static int
spool_prepare(const struct gw_config *cfg, char *err, size_t errcap)
{
	int n;

	if (!uses_fallback(cfg))
		return 0;
	if ((n = gw_spool_dir_prepare(cfg->spool_dir, err, errcap)) < 0)
		return -1;
	gw_log(n > 0 ? LOG_WARNING : LOG_INFO,
	    "event=spool_sweep dir=%s removed=%d", cfg->spool_dir, n);
	return 0;
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

	unsigned long nofile;

	(void)revents;
	if (notify_main)
		(void)gw_notify_reloading();
	if ((cfg = gw_config_new(conf_path, err, sizeof(err))) != NULL &&
	    gw_rlimit_raise(cfg->max_sessions, &nofile, err, sizeof(err)) !=
	        0) {
		gw_config_release(cfg);
		cfg = NULL;
	}
	if (cfg == NULL) {
		gw_metrics_count(GW_M_RELOAD_FAILED, 1);
		gw_log(LOG_ERR,
		    "event=reload result=failed error=\"%s\" "
		    "note=old_config_kept%s",
		    err, worker_tag);
		if (notify_main)
			(void)gw_notify("READY=1\nSTATUS=reload failed, old "
			                "configuration kept");
		return;
	}
	/* With workers the main process says it, once. */
	if (running.workers <= 1)
		warn_restart(cfg);
	/* A spool directory new to this process is made and swept like at
	 * start; one in use is left alone (its files have no names). */
	if (uses_fallback(cfg) &&
	    (!uses_fallback(ctx->cfg) ||
	        strcmp(cfg->spool_dir, ctx->cfg->spool_dir) != 0) &&
	    spool_prepare(cfg, err, sizeof(err)) != 0)
		gw_log(LOG_ERR,
		    "event=reload spool_error=\"%s\" "
		    "note=messages_not_held_until_fixed%s",
		    err, worker_tag);
	packet_reload(loop, ctx->cfg, cfg);
	gw_ctx_set_config(ctx, cfg);
	if (!debug_flag)
		gw_log_set_level(cfg->log_level);
	gw_metrics_count(GW_M_RELOAD_OK, 1);
	gw_log(LOG_INFO, "event=reload result=ok pairs=%zu%s", cfg->pairs.n,
	    worker_tag);
	log_certs(cfg);
	if (notify_main)
		(void)gw_notifyf(
		    "READY=1\nSTATUS=reloaded; sessions=%u", ctx->nsessions);
}

/* What a stopping serve() needs: its listeners and its drain. */
struct serving {
	struct gw_ctx *ctx;
	struct gw_listener *listeners;
	size_t nlisten;
	struct gw_drain drain;
};

/* SIGTERM, SIGINT: drain (a second one stops at once); SIGQUIT: stop. */
static void
stop_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct serving *sv = w->data;

	(void)revents;
	gw_log(LOG_INFO, "event=stop signal=%d%s", w->signum, worker_tag);
	if (w->signum == SIGQUIT || sv->ctx->cfg->drain_timeout_s == 0) {
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	if (!sv->drain.active) {
		if (notify_main)
			(void)gw_notifyf("STOPPING=1\nSTATUS=draining %u "
			                 "sessions",
			    sv->ctx->nsessions);
		pidfile_release();
		gw_metrics_stop(loop);
	}
	gw_drain_start(&sv->drain, sv->ctx, sv->listeners, sv->nlisten,
	    sv->ctx->cfg->drain_timeout_s);
}

/*
 * Every TRIM_S: once the sessions are all gone after a busy spell, the
 * heap's free pages go back to the kernel (malloc_trim(3)), so that RSS
 * returns to its idle size instead of keeping the peak's.
 */
#define TRIM_S 10.
static void
trim_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct gw_ctx *ctx = w->data;
	static uint32_t last_id;

	(void)loop;
	(void)revents;
	if (ctx->nsessions == 0 && ctx->next_id != last_id) {
		last_id = ctx->next_id;
		(void)malloc_trim(0);
	}
}

static void
status_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct gw_ctx *ctx = w->data;

	(void)loop;
	(void)revents;
	(void)gw_notifyf("STATUS=sessions=%u", ctx->nsessions);
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
	struct serving sv;
	struct ev_loop *loop;
	ev_signal sigterm, sigint, sigquit, sighup, sigusr1;
	ev_timer status, trim;
	size_t i;

	packet_owner = worker == 0;
	gw_metrics_worker(worker);
	gw_uptable_owner(worker);
	if (running.workers > 1)
		(void)snprintf(
		    worker_tag, sizeof(worker_tag), " worker=%u", worker);
	loop = ev_default_loop(EVFLAG_AUTO);
	if (loop == NULL)
		gw_fatal("event=start error=\"cannot initialise libev\"");
	gw_ctx_init(&ctx, loop, cfg);
	/* Session ids stay unique across workers: the worker number is the
	 * top byte. */
	ctx.next_id = (uint32_t)worker << 24;
	ctx.listeners = listeners;
	ctx.nlisten = nlisten;
	for (i = 0; i < nlisten; i++) {
		gw_listener_start(&listeners[i], &ctx);
		gw_log(LOG_INFO, "event=listen address=%s%s", listeners[i].name,
		    worker_tag);
	}
	memset(&sv, 0, sizeof(sv));
	sv.ctx = &ctx;
	sv.listeners = listeners;
	sv.nlisten = nlisten;
	ev_signal_init(&sigterm, stop_cb, SIGTERM);
	ev_signal_init(&sigint, stop_cb, SIGINT);
	ev_signal_init(&sigquit, stop_cb, SIGQUIT);
	sigterm.data = sigint.data = sigquit.data = &sv;
	ev_signal_start(loop, &sigquit);
	ev_signal_init(&sighup, reload_cb, SIGHUP);
	sighup.data = &ctx;
	ev_signal_init(&sigusr1, stats_cb, SIGUSR1);
	sigusr1.data = &ctx;
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
	    "helo_rewrite=%s bare_line_endings=%s%s pid=%ld",
	    SMTP64_VERSION, cfg->fqdn, cfg->pairs.n,
	    cfg->pol.helo == SMTPFIX_HELO_ALWAYS     ? "always"
	    : cfg->pol.helo == SMTPFIX_HELO_LITERALS ? "literals"
	                                             : "off",
	    cfg->pol.bare == SMTPFIX_BARE_INLINE ? "inline" : "reject",
	    worker_tag, (long)getpid());
	log_certs(cfg);
	if (worker == 0 && metrics_fd >= 0)
		gw_metrics_serve(loop, metrics_fd);
	ev_timer_init(&trim, trim_cb, TRIM_S, TRIM_S);
	trim.data = &ctx;
	ev_timer_start(loop, &trim);
	ev_unref(loop);
	if (notify_main) {
		(void)gw_notifyf(
		    "READY=1\nMAINPID=%ld\nSTATUS=sessions=0", (long)getpid());
		gw_notify_watchdog(loop);
		ev_timer_init(&status, status_cb, STATUS_S, STATUS_S);
		status.data = &ctx;
		ev_timer_start(loop, &status);
		ev_unref(loop);
	}

	ev_run(loop, 0);

	gw_metrics_stop(loop);
	packet_stop(loop, "exit");
	for (i = 0; i < nlisten; i++)
		gw_listener_stop(&listeners[i]);
	gw_session_close_all(&ctx);
	gw_config_release(ctx.cfg);
	return 0;
}

static volatile sig_atomic_t sup_term, sup_hup, sup_usr1, sup_chld, sup_quit,
    sup_alrm;

static void
sup_signal(int sig)
{
	if (sig == SIGTERM || sig == SIGINT)
		sup_term = sup_term == 0 ? sig : -sig; /* negative: again */
	else if (sig == SIGQUIT)
		sup_quit = 1;
	else if (sig == SIGALRM)
		sup_alrm = 1;
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
	signal(SIGQUIT, SIG_DFL);
	signal(SIGALRM, SIG_DFL);
	sigprocmask(SIG_SETMASK, orig, NULL);
	notify_main = 0;
	/* The lock stays the supervisor's alone, so that it can hand the
	 * PID file on when it drains. */
	if (pid_fd >= 0)
		close(pid_fd);
	pid_fd = -1;
	if (worker != 0 && metrics_fd >= 0) {
		close(metrics_fd);
		metrics_fd = -1;
	}
	/* Each worker accepts on its own member of each SO_REUSEPORT
	 * group, opened at start (the addresses that run, whatever a
	 * reload put in cfg since) and kept by this process, so that a
	 * restarted worker finds its socket, its place in the group (the
	 * steering program's index) and the connections that queued
	 * meanwhile.  It holds no other worker's socket: when it drains,
	 * its own close must leave none of its group's members open. */
	for (unsigned w = 0; w < running.workers; w++)
		for (size_t i = 0; i < nlisten; i++)
			if (w != worker)
				close(
				    w == 0 ? listeners[i].fd : wsock[w][i].fd);
	for (size_t i = 0; worker > 0 && i < nlisten; i++)
		listeners[i] = wsock[worker][i];
	_exit(serve(cfg, listeners, nlisten, worker));
}

/* The supervisor's clock: SIGALRM every second drives the watchdog and
 * STATUS=. */
static unsigned long long sup_wd_usec;

static void
sup_timer(void)
{
	struct itimerval it;

	memset(&it, 0, sizeof(it));
	it.it_interval.tv_sec = 1;
	/* WATCHDOG=1 at least twice per WatchdogSec=. */
	if (sup_wd_usec > 0 && sup_wd_usec < 2000000) {
		it.it_interval.tv_sec = 0;
		it.it_interval.tv_usec = (suseconds_t)(sup_wd_usec / 2);
	}
	it.it_value = it.it_interval;
	(void)setitimer(ITIMER_REAL, &it, NULL);
}

static void
sup_tick(unsigned n)
{
	static unsigned ticks;

	ticks++;
	if (sup_wd_usec > 0)
		(void)gw_notify("WATCHDOG=1");
	if (ticks % 5 == 0) /* about every 5 s (more with a short watchdog) */
		(void)gw_notifyf("STATUS=workers=%u sessions=%llu", n,
		    (unsigned long long)gw_metrics_open_total());
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
	sigaction(SIGQUIT, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGQUIT);
	sigaddset(&block, SIGALRM);
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
	gw_log(LOG_INFO, "event=start workers=%u version=%s pid=%ld", n,
	    SMTP64_VERSION, (long)getpid());
	(void)gw_notifyf(
	    "READY=1\nMAINPID=%ld\nSTATUS=workers=%u", (long)getpid(), n);
	sup_timer();
	while (alive > 0) {
		sigsuspend(&orig);
		if (sup_alrm) {
			sup_alrm = 0;
			sup_tick(n);
		}
		if (sup_quit == 1) {
			/* Also during a drain: the workers stop at once. */
			sup_quit = 2;
			if (sup_term == 0)
				sup_term = SIGQUIT;
			stopping = 2;
			gw_log(LOG_INFO, "event=stop signal=%d workers=%u",
			    SIGQUIT, n);
			for (i = 0; i < n; i++)
				if (pid[i] > 0)
					kill(pid[i], SIGQUIT);
		}
		if (sup_term < 0 && stopping == 1) {
			/* A second SIGTERM: the workers stop at once. */
			stopping = 2;
			for (i = 0; i < n; i++)
				if (pid[i] > 0)
					kill(pid[i], SIGTERM);
		}
		if (sup_hup || sup_usr1) {
			int sig = sup_hup ? SIGHUP : SIGUSR1;

			sup_hup = sup_usr1 = 0;
			for (i = 0; i < n; i++)
				if (pid[i] > 0)
					kill(pid[i], sig);
			if (sig == SIGHUP)
				(void)gw_notify_reloading();
			if (sig == SIGHUP) {
				char err[512];
				struct gw_config *c2 =
				    gw_config_new(conf_path, err, sizeof(err));

				/* A worker restarted later starts from the
				 * newest valid file (with the listeners that
				 * run: see spawn).  The workers log a failure
				 * themselves. */
				if (c2 != NULL) {
					warn_restart(c2);
					gw_config_release(cfg);
					cfg = c2;
				}
				(void)gw_notify("READY=1");
			}
		}
		if (sup_term && !stopping) {
			stopping = 1;
			gw_log(LOG_INFO, "event=stop signal=%d workers=%u",
			    (int)sup_term, n);
			(void)gw_notify("STOPPING=1");
			/* The workers drain; this process's copies of the
			 * sockets must go too, or the kernel keeps queueing
			 * connections on them. */
			for (i = 0; i < nlisten; i++) {
				unsigned w;

				gw_listener_stop(&listeners[i]);
				for (w = 1; w < n; w++)
					gw_listener_stop(&wsock[w][i]);
			}
			if (metrics_fd >= 0)
				close(metrics_fd);
			metrics_fd = -1;
			pidfile_release();
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
				gw_uptable_forget(i);
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

/*
 * Descriptors the starter left open (a shell's, a test harness's) are not
 * the daemon's: they count against the open-files limit that max_sessions
 * is checked against, change which descriptor numbers the daemon gets,
 * and would keep someone else's pipe or socket open for the daemon's
 * lifetime.  0-2 stay: stderr is the log until the daemon detaches.
 */
static void
close_inherited(void)
{
	struct rlimit rl;
	long fd, top = 65536;

#ifdef SYS_close_range
	if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0)
		return;
#endif
	/* Kernels before 5.9: one by one, up to the limit. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)top)
		top = (long)rl.rlim_cur;
	for (fd = 3; fd < top; fd++)
		(void)close((int)fd);
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	const char *conf = SMTP64_CONF, *pidfile = NULL;
	struct gw_listener listeners[GW_LISTEN_MAX];
	struct gw_config *cfg;
	char err[PATH_CAP + 128];
	int ch, foreground = 0, check = 0, debug = 0;
	size_t i, nlisten;

	while (
	    (ch = getopt_long(argc, argv, "c:dfhp:tV", longopts, NULL)) != -1) {
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
		case 'h':
			usage(stdout, 0);
			break;
		case 'p':
			pidfile = optarg;
			break;
		case 't':
			check = 1;
			break;
		case 'V':
			printf("smtp64d %s\n", SMTP64_VERSION);
			return 0;
		default:
			usage(stderr, 2);
		}
	}
	if (optind != argc)
		usage(stderr, 2);

	debug_flag = debug;
	if (check) {
		if ((cfg = gw_config_new(conf, err, sizeof(err))) == NULL) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		char caps[128];

		printf("%s: ok (%zu pairs, %zu listeners, %u worker%s%s)\n",
		    conf, cfg->pairs.n, cfg->nlisten, cfg->workers,
		    cfg->workers == 1 ? "" : "s",
		    cfg->packet.enable ? ", packet path" : "");
		/* What an operator grants: the account, the capabilities
		 * kept after start, the open-file limit. */
		printf("%s: runs as %s%s%s, capabilities %s, open files %lu\n",
		    conf,
		    cfg->user[0] != '\0' ? cfg->user : "the starting user",
		    cfg->group[0] != '\0' ? ":" : "", cfg->group,
		    gw_privs_names(gw_privs_needed(cfg), caps, sizeof(caps)),
		    gw_rlimit_need(cfg->max_sessions));
		gw_config_release(cfg);
		return 0;
	}
	close_inherited();
	/* Every reload reads this name, from / once detached. */
	if (abs_path(conf, conf_path, sizeof(conf_path)) != 0) {
		fprintf(stderr, "smtp64d: %s: %s\n", conf, strerror(errno));
		return 1;
	}
	if ((cfg = gw_config_new(conf_path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (pidfile != NULL) {
		if (pidfile_lock(pidfile, err, sizeof(err)) != 0) {
			fprintf(stderr, "smtp64d: %s\n", err);
			return 1;
		}
		/* Until the daemon writes it: a failed start removes it. */
		pid_owner = getpid();
		if (atexit(pidfile_remove) != 0) {
			fprintf(stderr, "smtp64d: atexit failed\n");
			return 1;
		}
	}
	gw_log_init(foreground, debug ? LOG_DEBUG : cfg->log_level);
	signal(SIGPIPE, SIG_IGN);
	gw_notify_init();
	sup_wd_usec = gw_notify_watchdog_usec();
	{
		unsigned long nofile;

		/* Before any privilege goes: raising the hard limit needs
		 * CAP_SYS_RESOURCE. */
		if (gw_rlimit_raise(
		        cfg->max_sessions, &nofile, err, sizeof(err)) != 0) {
			fprintf(stderr, "smtp64d: %s\n", err);
			return 1;
		}
	}
	if (gw_metrics_init(cfg->workers) != 0 ||
	    (cfg->workers > 1 && gw_uptable_init((size_t)cfg->max_sessions *
	                                         cfg->workers) != 0)) {
		fprintf(
		    stderr, "smtp64d: shared memory: %s\n", strerror(errno));
		return 1;
	}
	if (cfg->metrics_set && (metrics_fd = gw_metrics_listen(
	                             &cfg->metrics, err, sizeof(err))) < 0) {
		fprintf(stderr, "smtp64d: %s\n", err);
		return 1;
	}

	/* Bind before daemonising so that a port in use is reported on the
	 * terminal and the exit status.  These stay for the process's
	 * life: a reload does not change them (restart_keys). */
	nlisten = cfg->nlisten;
	memcpy(running.listen, cfg->listen, sizeof(running.listen));
	running.nlisten = cfg->nlisten;
	running.transparent = cfg->transparent;
	running.workers = cfg->workers;
	for (i = 0; i < nlisten; i++) {
		if (gw_listener_open(&listeners[i], &cfg->listen[i],
		        cfg->transparent, cfg->workers > 1, err,
		        sizeof(err)) != 0) {
			fprintf(stderr, "smtp64d: %s\n", err);
			return 1;
		}
		for (unsigned w = 1; w < cfg->workers; w++)
			if (gw_listener_open(&wsock[w][i], &cfg->listen[i],
			        cfg->transparent, 1, err, sizeof(err)) != 0) {
				fprintf(
				    stderr, "smtp64d: worker %u: %s\n", w, err);
				return 1;
			}
		/* One client, one worker: per-client limits and the loop
		 * check then see all of a client's sessions. */
		if (cfg->workers > 1 &&
		    gw_listener_steer(
		        &listeners[i], cfg->workers, err, sizeof(err)) != 0)
			gw_log(LOG_WARNING,
			    "event=steer error=\"%s\" "
			    "note=kernel_hash_per_connection",
			    err);
	}
	/* The spool directory, made as root, belongs to the user the daemon
	 * becomes (spool_prepare then checks and sweeps it as that user). */
	if (uses_fallback(cfg) &&
	    gw_privs_own_dir(cfg, cfg->spool_dir, err, sizeof(err)) != 0) {
		fprintf(
		    stderr, "smtp64d: spool_dir %s: %s\n", cfg->spool_dir, err);
		return 1;
	}
	/* Every socket is open (the packet path's are opened by worker 0
	 * with the capabilities kept for it): from here on, the configured
	 * user and only the capabilities still needed. */
	if (gw_privs_drop(cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "smtp64d: %s\n", err);
		return 1;
	}
	{
		char caps[128];

		gw_log(LOG_INFO,
		    "event=privileges uid=%ld gid=%ld capabilities=%s",
		    (long)getuid(), (long)getgid(),
		    gw_privs_names(gw_privs_current(), caps, sizeof(caps)));
	}
	/* gateway/spool.h: a crash's leftovers go before any session. */
	if (spool_prepare(cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "smtp64d: %s\n", err);
		return 1;
	}
	if (!foreground && daemon(0, 0) != 0) {
		perror("smtp64d: daemon");
		return 1;
	}
	if (pidfile_write(err, sizeof(err)) != 0)
		gw_fatal("event=start error=\"%s\"", err);
	if (cfg->workers > 1)
		return supervise(cfg, listeners, nlisten);
	return serve(cfg, listeners, nlisten, 0);
}
