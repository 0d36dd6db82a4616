/*
 * gateway/rlimit.c: see rlimit.h.
 */
#include <sys/resource.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "gateway/rlimit.h"

unsigned long
gw_rlimit_need(unsigned max_sessions)
{
	return 2UL * max_sessions + GW_RLIMIT_RESERVE;
}

int
gw_rlimit_raise(
    unsigned max_sessions, unsigned long *now, char *err, size_t errcap)
{
	unsigned long need = gw_rlimit_need(max_sessions);
	struct rlimit rl, want;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		(void)snprintf(err, errcap, "getrlimit(RLIMIT_NOFILE): %s",
		    strerror(errno));
		return -1;
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
		want.rlim_cur = need;
		want.rlim_max = rl.rlim_max;
		if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need)
			want.rlim_max = need; /* only with CAP_SYS_RESOURCE */
		if (setrlimit(RLIMIT_NOFILE, &want) != 0) {
			(void)snprintf(err, errcap,
			    "open-file limit (RLIMIT_NOFILE) is %llu soft, "
			    "%llu hard; max_sessions = %u needs %lu "
			    "(2 a session + %d): raise the hard limit "
			    "(LimitNOFILE=, ulimit -Hn) or lower max_sessions",
			    (unsigned long long)rl.rlim_cur,
			    (unsigned long long)rl.rlim_max, max_sessions, need,
			    GW_RLIMIT_RESERVE);
			return -1;
		}
		rl.rlim_cur = want.rlim_cur;
	}
	*now = rl.rlim_cur == RLIM_INFINITY ? (unsigned long)-1
	                                    : (unsigned long)rl.rlim_cur;
	return 0;
}
