/*
 * gateway/rlimit.h: the open-file limit a configuration needs.
 */
#ifndef GW_RLIMIT_H
#define GW_RLIMIT_H

#include <stddef.h>

/* Descriptors beyond the sessions': listeners, the loop's own, the
 * packet path's netlink and raw sockets, the metrics endpoint, the log,
 * a refusal's accepted socket, certificate files being read. */
#define GW_RLIMIT_RESERVE 64

/* What max_sessions needs: two descriptors a session (client and
 * upstream) plus GW_RLIMIT_RESERVE. */
unsigned long gw_rlimit_need(unsigned max_sessions);

/*
 * Raises RLIMIT_NOFILE's soft limit to gw_rlimit_need(max_sessions) (and
 * the hard limit too where the process may: CAP_SYS_RESOURCE).  Never
 * lowers it.  0 when the limit now suffices, with the soft limit in
 * *now; -1 with a message in err (capacity errcap) that names both
 * numbers and what to change.
 */
int gw_rlimit_raise(
    unsigned max_sessions, unsigned long *now, char *err, size_t errcap);

#endif
