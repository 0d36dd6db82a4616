/*
 * gateway/listener.h: the listening sockets.
 */
#ifndef GW_LISTENER_H
#define GW_LISTENER_H

#include <sys/socket.h>

#include <stddef.h>

#include <ev.h>

#include "gateway/config.h"
#include "gateway/session.h"

struct gw_listener {
	ev_io io;
	ev_timer pause; /* accepting stopped: out of descriptors */
	int fd;
	struct gw_ctx *ctx;
	char name[64]; /* "ADDR:PORT" for logs */
	/* Bound to one address (not a wildcard, not transparent): every
	 * connection's local address is this one, no getsockname needed. */
	int fixed;
	struct sockaddr_storage local;
};

/*
 * Opens, binds and listens on l (IPv6 sockets are IPv6-only, so each
 * family has its own listener and a v4 client is never seen as
 * ::ffff:a.b.c.d).  transparent sets IP_TRANSPARENT (TPROXY), reuseport
 * SO_REUSEPORT (one socket per worker).  0, or -1 with a message in err.
 */
int gw_listener_open(struct gw_listener *gl, const struct gw_listen *l,
    int transparent, int reuseport, char *err, size_t errcap);
/* Attaches a SO_ATTACH_REUSEPORT_CBPF program to gl's SO_REUSEPORT
 * group: a connection goes to the socket numbered by a hash of the
 * client's address modulo n, so one client always meets one worker.
 * 0, or -1 with a message in err. */
int gw_listener_steer(
    struct gw_listener *gl, unsigned n, char *err, size_t errcap);
void gw_listener_start(struct gw_listener *gl, struct gw_ctx *ctx);
/* Out of descriptors (err: EMFILE, ENFILE, ...), seen at cause
 * ("accept", "upstream_socket"): stops accepting for a second, with one
 * log line per pause, so that level-triggered polling does not spin on
 * a backlog it cannot take and no session is accepted only to fail. */
void gw_listener_pause(struct gw_listener *gl, int err, const char *cause);
/* Stops accepting and closes the socket (idempotent). */
void gw_listener_stop(struct gw_listener *gl);

#endif
