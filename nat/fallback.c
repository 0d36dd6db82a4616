/*
 * nat/fallback.c: the IPv4 target after a 4.4.8 refusal over IPv6 (see
 * nat/fallback.h; draft-martin §3.2, Appendix A.3.1).
 */
#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>

#include "nat/fallback.h"

long
nat_fallback_pick(const struct nat_mx_target *t, size_t n, size_t cur)
{
	uint32_t next = UINT32_MAX;
	size_t i;

	if (cur >= n || t[cur].addr.family != AF_INET6)
		return -1;
	/* §3.2: "for same MX RR preference ... a MX RR pointing to an
	 * hostname with an A RR". */
	for (i = 0; i < n; i++)
		if (t[i].addr.family == AF_INET && t[i].pref == t[cur].pref)
			return (long)i;
	/* Else the next preference that has any. */
	for (i = 0; i < n; i++)
		if (t[i].addr.family == AF_INET && t[i].pref > t[cur].pref &&
		    t[i].pref < next)
			next = t[i].pref;
	for (i = 0; i < n; i++)
		if (t[i].addr.family == AF_INET && t[i].pref == next)
			return (long)i;
	return -1;
}
