/*
 * gateway/log.h: one line per event, key=value, to syslog (mail facility)
 * or to stderr in the foreground.  Pure code never logs: it returns codes
 * and the gateway logs once, at the boundary.
 */
#ifndef GW_LOG_H
#define GW_LOG_H

#include <stddef.h>
#include <syslog.h>

/* Levels are syslog's: LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG. */
void gw_log_init(int foreground, int level);
void gw_log_set_level(int level);
int gw_log_enabled(int level);
void gw_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Start-up failures only: logs and exits 1.  Never on peer input. */
void gw_fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

/*
 * Copies peer bytes src[0..len) into dst (capacity cap, NUL terminated)
 * for a log line: printable ASCII other than '\\', '"' and '=' is kept,
 * everything else becomes \xNN; output is cut at cap with "..." so one
 * line stays one line.  Returns dst.
 */
char *gw_log_escape(char *dst, size_t cap, const char *src, size_t len);

#endif
