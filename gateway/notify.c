/*
 * gateway/notify.c: see notify.h.  The protocol is that of
 * sd_notify(3): the socket path may start with '@' for the abstract
 * namespace (unix(7)); WATCHDOG_PID, when set, names the process the
 * watchdog belongs to.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "gateway/log.h"
#include "gateway/notify.h"

static struct sockaddr_un addr;
static socklen_t addrlen;
static unsigned long long watchdog_usec;
static int warned;
static ev_timer wd;

void
gw_notify_init(void)
{
	const char *p = getenv("NOTIFY_SOCKET"), *w, *pid;
	size_t n;

	if (p != NULL && (n = strlen(p)) > 0 && n < sizeof(addr.sun_path) &&
	    (p[0] == '/' || p[0] == '@')) {
		memset(&addr, 0, sizeof(addr));
		addr.sun_family = AF_UNIX;
		memcpy(addr.sun_path, p, n);
		if (p[0] == '@')
			addr.sun_path[0] = '\0';
		addrlen =
		    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	}
	w = getenv("WATCHDOG_USEC");
	pid = getenv("WATCHDOG_PID");
	if (w != NULL &&
	    (pid == NULL || strtol(pid, NULL, 10) == (long)getpid()))
		watchdog_usec = strtoull(w, NULL, 10);
	(void)unsetenv("NOTIFY_SOCKET");
	(void)unsetenv("WATCHDOG_USEC");
	(void)unsetenv("WATCHDOG_PID");
}

int
gw_notify(const char *text)
{
	int fd;
	ssize_t n;

	if (addrlen == 0)
		return 0;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	n = sendto(fd, text, strlen(text), MSG_NOSIGNAL,
	    (struct sockaddr *)&addr, addrlen);
	close(fd);
	if (n == (ssize_t)strlen(text))
		return 0;
fail:
	if (!warned)
		gw_log(LOG_WARNING, "event=notify_failed error=\"%s\"",
		    strerror(errno));
	warned = 1;
	return -1;
}

int
gw_notifyf(const char *fmt, ...)
{
	char text[512];
	va_list ap;
	int n;

	if (addrlen == 0)
		return 0;
	va_start(ap, fmt);
	n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(text))
		return -1;
	return gw_notify(text);
}

int
gw_notify_reloading(void)
{
	struct timespec ts;

	/* systemd.service(5), Type=notify-reload: MONOTONIC_USEC is
	 * CLOCK_MONOTONIC when the reload began. */
	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return gw_notify("RELOADING=1");
	return gw_notifyf("RELOADING=1\nMONOTONIC_USEC=%llu",
	    (unsigned long long)ts.tv_sec * 1000000ULL +
	        (unsigned long long)ts.tv_nsec / 1000ULL);
}

unsigned long long
gw_notify_watchdog_usec(void)
{
	return addrlen == 0 ? 0 : watchdog_usec;
}

static void
wd_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	(void)gw_notify("WATCHDOG=1");
}

void
gw_notify_watchdog(struct ev_loop *loop)
{
	double half;

	if (addrlen == 0 || watchdog_usec == 0)
		return;
	half = (double)watchdog_usec / 2e6;
	ev_timer_init(&wd, wd_cb, half, half);
	ev_timer_start(loop, &wd);
	ev_unref(loop); /* the watchdog alone keeps no loop running */
}
