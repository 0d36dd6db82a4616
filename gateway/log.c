/*
 * gateway/log.c: the daemon's only writer of log lines.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/log.h"

static int log_foreground;
static int log_level = LOG_INFO;

void
gw_log_init(int foreground, int level)
{
	log_foreground = foreground;
	log_level = level;
	if (!foreground)
		openlog("smtp64d", LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void
gw_log_set_level(int level)
{
	log_level = level;
}

int
gw_log_enabled(int level)
{
	return level <= log_level;
}

static void
gw_vlog(int level, const char *fmt, va_list ap)
{
	char line[1024];

	if (level > log_level)
		return;
	/* Truncation is fine here: a cut log line is still one line. */
	(void)vsnprintf(line, sizeof(line), fmt, ap);
	if (log_foreground) {
		fprintf(stderr, "smtp64d: %s\n", line);
		fflush(stderr);
	} else
		syslog(level, "%s", line);
}

void
gw_log(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	gw_vlog(level, fmt, ap);
	va_end(ap);
}

void
gw_fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	gw_vlog(LOG_ERR, fmt, ap);
	va_end(ap);
	exit(1);
}

char *
gw_log_escape(char *dst, size_t cap, const char *src, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, o = 0;

	if (cap == 0)
		return dst;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)src[i];
		int plain =
		    c > 0x20 && c < 0x7f && c != '\\' && c != '"' && c != '=';

		if (o + (plain ? 1 : 4) + 4 > cap) {
			if (o + 4 <= cap) {
				memcpy(dst + o, "...", 3);
				o += 3;
			}
			break;
		}
		if (plain)
			dst[o++] = (char)c;
		else {
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 15];
		}
	}
	dst[o] = '\0';
	return dst;
}
