/*
 * gateway/notify.h: the service manager's notification protocol
 * (sd_notify(3)): one datagram of "KEY=VALUE\n" lines to the AF_UNIX
 * socket named by $NOTIFY_SOCKET.  Without that variable every call does
 * nothing.  Written here in a few lines rather than linking libsystemd.
 */
#ifndef GW_NOTIFY_H
#define GW_NOTIFY_H

#include <ev.h>

/* Reads $NOTIFY_SOCKET and $WATCHDOG_USEC (then unsets both, so nothing
 * the daemon may run inherits them). */
void gw_notify_init(void);
/* Sends text (e.g. "READY=1\nSTATUS=..."); 0, or -1 (logged once). */
int gw_notify(const char *text);
/* printf form of gw_notify. */
int gw_notifyf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* RELOADING=1 with MONOTONIC_USEC (a SIGHUP began). */
int gw_notify_reloading(void);
/* WatchdogSec= in microseconds, 0 when none was asked for. */
unsigned long long gw_notify_watchdog_usec(void);
/* If the manager asked for a watchdog (WatchdogSec=), sends WATCHDOG=1
 * from loop at half its interval. */
void gw_notify_watchdog(struct ev_loop *loop);

#endif
