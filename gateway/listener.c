/*
 * gateway/listener.c: accept loop.
 */
#define _GNU_SOURCE /* accept4 */
#include <sys/socket.h>

#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "gateway/listener.h"
#include "gateway/log.h"
#include "gateway/metrics.h"

#define ACCEPT_BATCH 64   /* per wake-up, so one listener can't starve */
#define ACCEPT_PAUSE_S 1. /* out of descriptors: retry after this */

int
gw_listener_open(struct gw_listener *gl, const struct gw_listen *l,
    int transparent, int reuseport, char *err, size_t errcap)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	char a[INET6_ADDRSTRLEN];
	int fd, on = 1;

	(void)nat_addr_fmt(&l->addr, a, sizeof(a));
	sl = nat_addr_sockaddr(&l->addr, l->port, &ss);
	if (l->addr.family == AF_INET)
		(void)snprintf(gl->name, sizeof(gl->name), "%s:%u", a, l->port);
	else
		(void)snprintf(
		    gl->name, sizeof(gl->name), "[%s]:%u", a, l->port);
	fd = socket(
	    l->addr.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		(void)snprintf(err, errcap, "listen %s: socket: %s", gl->name,
		    strerror(errno));
		return -1;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	/* Always in a SO_REUSEPORT group: workers hold one socket each, so
	 * the kernel spreads connections over them instead of waking every
	 * worker for each one, and a new daemon can bind beside one that
	 * drains (with net.ipv4.tcp_migrate_req, connections queued on a
	 * socket that closes move to another of its group).  Linux admits
	 * to a group only sockets of the same effective user.  reuseport
	 * 0 makes a failure to join fatal only for workers. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0 &&
	    reuseport) {
		(void)snprintf(err, errcap, "listen %s: SO_REUSEPORT: %s",
		    gl->name, strerror(errno));
		close(fd);
		return -1;
	}
	/* Replies are small and pipelined groups are latency bound; Linux
	 * hands TCP_NODELAY on to every accepted socket, saving a call per
	 * session. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	/* Edge-router mode: TPROXY hands us connections to any address;
	 * the original destination is then the socket's local address. */
	if (transparent &&
	    (l->addr.family == AF_INET
	            ? setsockopt(
	                  fd, IPPROTO_IP, IP_TRANSPARENT, &on, sizeof(on))
	            : setsockopt(fd, IPPROTO_IPV6, IPV6_TRANSPARENT, &on,
	                  sizeof(on))) != 0) {
		(void)snprintf(err, errcap,
		    "listen %s: IP_TRANSPARENT: %s "
		    "(needs CAP_NET_ADMIN)",
		    gl->name, strerror(errno));
		close(fd);
		return -1;
	}
	if (l->addr.family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) != 0) {
		(void)snprintf(err, errcap, "listen %s: IPV6_V6ONLY: %s",
		    gl->name, strerror(errno));
		close(fd);
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&ss, sl) != 0 ||
	    listen(fd, 1024) != 0) {
		(void)snprintf(
		    err, errcap, "listen %s: %s", gl->name, strerror(errno));
		close(fd);
		return -1;
	}
	gl->fd = fd;
	gl->ctx = NULL; /* until gw_listener_start */
	memcpy(&gl->local, &ss, sizeof(ss));
	gl->fixed =
	    !transparent && (l->addr.family == AF_INET
	                            ? l->addr.u.v4.s_addr != INADDR_ANY
	                            : !IN6_IS_ADDR_UNSPECIFIED(&l->addr.u.v6));
	return 0;
}

/*
 * Classic BPF for SO_ATTACH_REUSEPORT_CBPF.  The program sees the packet
 * after its TCP header; SKF_NET_OFF reaches back to the IP header, whose
 * source address (IPv4 offset 12, IPv6 offset 8, RFC 791 §3.1 and RFC
 * 8200 §3) is folded to one word and reduced modulo the group's size.
 * The kernel falls back to its own hash if the index is out of range.
 */
int
gw_listener_steer(struct gw_listener *gl, unsigned n, char *err, size_t errcap)
{
	struct sock_filter v4[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)SKF_NET_OFF + 12),
	    BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, n),
	    BPF_STMT(BPF_RET | BPF_A, 0),
	};
	struct sock_filter v6[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)SKF_NET_OFF + 8),
	    BPF_STMT(BPF_MISC | BPF_TAX, 0),
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)SKF_NET_OFF + 12),
	    BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
	    BPF_STMT(BPF_MISC | BPF_TAX, 0),
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)SKF_NET_OFF + 16),
	    BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
	    BPF_STMT(BPF_MISC | BPF_TAX, 0),
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)SKF_NET_OFF + 20),
	    BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
	    BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, n),
	    BPF_STMT(BPF_RET | BPF_A, 0),
	};
	struct sock_fprog prog;

	if (gl->local.ss_family == AF_INET) {
		prog.len = sizeof(v4) / sizeof(v4[0]);
		prog.filter = v4;
	} else {
		prog.len = sizeof(v6) / sizeof(v6[0]);
		prog.filter = v6;
	}
	if (n < 2)
		return 0;
	if (setsockopt(gl->fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog,
	        sizeof(prog)) != 0) {
		(void)snprintf(err, errcap,
		    "listen %s: SO_ATTACH_REUSEPORT_CBPF: %s", gl->name,
		    strerror(errno));
		return -1;
	}
	return 0;
}

static void
resume_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct gw_listener *gl = w->data;

	(void)revents;
	if (gl->fd < 0)
		return;
	gw_log(LOG_INFO, "event=accept_resumed listener=%s", gl->name);
	ev_io_start(loop, &gl->io);
}

static void
accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct gw_listener *gl = w->data;
	int i;

	(void)loop;
	(void)revents;
	for (i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage peer;
		socklen_t pl = sizeof(peer);
		int fd;

		fd = accept4(gl->fd, (struct sockaddr *)&peer, &pl,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EAGAIN || errno == EINTR ||
			    errno == ECONNABORTED)
				return;
			/* EMFILE, ENFILE, ENOBUFS, ENOMEM: the connection
			 * stays in the backlog and the socket stays
			 * readable, so level-triggered polling would call
			 * us again at once. */
			gw_listener_pause(gl, errno, "accept");
			return;
		}
		gw_session_start(
		    gl->ctx, fd, &peer, gl->fixed ? &gl->local : NULL);
	}
}

void
gw_listener_pause(struct gw_listener *gl, int err, const char *cause)
{
	if (gl->ctx == NULL || gl->fd < 0 || ev_is_active(&gl->pause))
		return;
	gw_metrics_count(GW_M_ACCEPT_PAUSES, 1);
	gw_log(LOG_WARNING,
	    "event=accept_paused listener=%s cause=%s error=\"%s\" "
	    "pause_ms=%d",
	    gl->name, cause, strerror(err), (int)(ACCEPT_PAUSE_S * 1000));
	ev_io_stop(gl->ctx->loop, &gl->io);
	ev_timer_set(&gl->pause, ACCEPT_PAUSE_S, 0.);
	ev_timer_start(gl->ctx->loop, &gl->pause);
}

void
gw_listener_start(struct gw_listener *gl, struct gw_ctx *ctx)
{
	gl->ctx = ctx;
	ev_io_init(&gl->io, accept_cb, gl->fd, EV_READ);
	ev_timer_init(&gl->pause, resume_cb, ACCEPT_PAUSE_S, 0.);
	gl->io.data = gl->pause.data = gl;
	ev_io_start(ctx->loop, &gl->io);
}

void
gw_listener_stop(struct gw_listener *gl)
{
	if (gl->ctx != NULL) {
		ev_io_stop(gl->ctx->loop, &gl->io);
		ev_timer_stop(gl->ctx->loop, &gl->pause);
	}
	if (gl->fd >= 0)
		close(gl->fd);
	gl->fd = -1;
}
