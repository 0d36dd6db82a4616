/*
 * gateway/main.c: smtp64d, the SMTP-aware IPv4/IPv6 translator gateway.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "gateway/config.h"
#include "gateway/listener.h"
#include "gateway/log.h"
#include "gateway/session.h"

#ifndef SMTP64_VERSION
#define SMTP64_VERSION	"0.1.0"
#endif
#ifndef SMTP64_CONF
#define SMTP64_CONF	"/usr/local/etc/smtp64/smtp64.conf"
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

static void
stop_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)revents;
	gw_log(LOG_INFO, "event=stop signal=%d", w->signum);
	ev_break(loop, EVBREAK_ALL);
}

int
main(int argc, char *argv[])
{
	const char *conf = SMTP64_CONF;
	struct gw_listener listeners[GW_LISTEN_MAX];
	struct gw_config cfg;
	struct gw_ctx ctx;
	struct ev_loop *loop;
	ev_signal sigterm, sigint;
	char err[512];
	int ch, foreground = 0, check = 0, debug = 0;
	size_t i;

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

	if (gw_config_load(conf, &cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (check) {
		printf("%s: ok (%zu pairs, %zu listeners)\n", conf,
		    cfg.pairs.n, cfg.nlisten);
		gw_config_free(&cfg);
		return 0;
	}
	gw_log_init(foreground, debug ? LOG_DEBUG : cfg.log_level);
	signal(SIGPIPE, SIG_IGN);

	/* Bind before daemonising so that a port in use is reported on the
	 * terminal and the exit status. */
	for (i = 0; i < cfg.nlisten; i++) {
		if (gw_listener_open(&listeners[i], &cfg.listen[i], err,
			sizeof(err)) != 0) {
			fprintf(stderr, "smtp64d: %s\n", err);
			return 1;
		}
	}
	if (!foreground && daemon(0, 0) != 0) {
		perror("smtp64d: daemon");
		return 1;
	}
	loop = ev_default_loop(EVFLAG_AUTO);
	if (loop == NULL)
		gw_fatal("event=start error=\"cannot initialise libev\"");
	gw_ctx_init(&ctx, loop, &cfg);
	for (i = 0; i < cfg.nlisten; i++)
		gw_listener_start(&listeners[i], &ctx);
	ev_signal_init(&sigterm, stop_cb, SIGTERM);
	ev_signal_init(&sigint, stop_cb, SIGINT);
	ev_signal_start(loop, &sigterm);
	ev_signal_start(loop, &sigint);
	gw_log(LOG_INFO, "event=start version=%s fqdn=%s pairs=%zu "
	    "helo_rewrite=%s", SMTP64_VERSION, cfg.fqdn, cfg.pairs.n,
	    cfg.pol.helo == SMTPFIX_HELO_ALWAYS ? "always" :
	    cfg.pol.helo == SMTPFIX_HELO_LITERALS ? "literals" : "off");

	ev_run(loop, 0);

	for (i = 0; i < cfg.nlisten; i++)
		gw_listener_stop(&listeners[i]);
	gw_session_close_all(&ctx);
	gw_config_free(&cfg);
	return 0;
}
