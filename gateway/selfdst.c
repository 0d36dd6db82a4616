/*
 * gateway/selfdst.c: see selfdst.h.
 */
#include <sys/socket.h>

#include <netinet/in.h>

#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gateway/selfdst.h"

static int
is_any(const struct nat_addr *a)
{
	return a->family == AF_INET ? a->u.v4.s_addr == INADDR_ANY
	                            : IN6_IS_ADDR_UNSPECIFIED(&a->u.v6);
}

int
gw_selfdst_match(const struct gw_listen *listen, size_t n,
    const struct nat_addr *dst, unsigned port, int *wild)
{
	size_t i;
	int any = -1;

	*wild = 0;
	for (i = 0; i < n; i++) {
		if (listen[i].port != port ||
		    listen[i].addr.family != dst->family)
			continue;
		if (nat_addr_eq(&listen[i].addr, dst))
			return (int)i;
		if (is_any(&listen[i].addr) && any < 0)
			any = (int)i;
	}
	if (any >= 0)
		*wild = 1;
	return any;
}

/* 1 if a is an address of this host: bind(2) takes only those (no
 * IP_FREEBIND, no IP_TRANSPARENT). */
static int
is_local(const struct nat_addr *a)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, ok;

	memset(&ss, 0, sizeof(ss));
	if (a->family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_addr = a->u.v4;
		sl = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_addr = a->u.v6;
		sl = sizeof(*s6);
	}
	if ((fd = socket(a->family, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return 0;
	ok = bind(fd, (struct sockaddr *)&ss, sl) == 0;
	close(fd);
	return ok;
}

/*
 * is_local costs three system calls (socket, bind, close) and a wildcard
 * listener asks it for every session, though a host's addresses change
 * rarely: the last answers are kept for LOCAL_CACHE_S.  An address added
 * within that time and used as a destination at once is still caught as
 * a loop when the connection comes back (gateway/uptable: our own
 * upstream ends, across workers).
 */
#define LOCAL_CACHE_N 8
#define LOCAL_CACHE_S 1
static struct {
	struct nat_addr a;
	time_t t;
	int local;
} cache[LOCAL_CACHE_N];
static unsigned cache_next;

static int
is_local_cached(const struct nat_addr *a)
{
	struct timespec ts;
	size_t i;
	int local;

	if (clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) != 0)
		return is_local(a);
	for (i = 0; i < LOCAL_CACHE_N; i++)
		if (cache[i].a.family != 0 && nat_addr_eq(&cache[i].a, a) &&
		    ts.tv_sec - cache[i].t < LOCAL_CACHE_S)
			return cache[i].local;
	local = is_local(a);
	i = cache_next++ % LOCAL_CACHE_N;
	cache[i].a = *a;
	cache[i].t = ts.tv_sec;
	cache[i].local = local;
	return local;
}

int
gw_selfdst(
    const struct gw_config *cfg, const struct nat_addr *dst, unsigned port)
{
	int wild;

	if (gw_selfdst_match(cfg->listen, cfg->nlisten, dst, port, &wild) < 0)
		return 0;
	return !wild || is_local_cached(dst);
}
