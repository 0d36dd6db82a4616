/*
 * gateway/selfdst.c: see selfdst.h.
 */
#include <sys/socket.h>

#include <netinet/in.h>

#include <string.h>
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

int
gw_selfdst(
    const struct gw_config *cfg, const struct nat_addr *dst, unsigned port)
{
	int wild;

	if (gw_selfdst_match(cfg->listen, cfg->nlisten, dst, port, &wild) < 0)
		return 0;
	return !wild || is_local(dst);
}
