/*
 * tests/bench/idlehold.c: opens N SMTP sessions, waits for each greeting,
 * then holds them all idle (make bench, issue 5, W3).
 *
 *	idlehold -n N [-p inflight] [-t open_s] [-T hold_s] -r file host port
 *
 * At most `inflight` sessions are between connect(2) and their 220 at
 * any time, so the relay's accept backlog is never overrun (6tunnel's is
 * 100).  When every session is greeted, failed or open_s has passed, it
 * writes "greeted=G failed=F" to file, then holds until SIGTERM, SIGINT
 * or hold_s; on the way out it prints "alive=A lost=L" (sessions the peer
 * closed while held are lost) and closes everything.
 *
 * Built by tests/bench/run; C11 plus epoll, no smtp64 code.
 */
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <netdb.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define IH_MAX 200000
#define IH_GREET_MAX 512 /* bytes of greeting we look at */

enum ih_state {
	IH_FREE = 0,
	IH_CONNECTING,
	IH_GREETING,
	IH_HELD,
	IH_DONE, /* failed or lost; fd closed */
};

struct ih_conn {
	int fd;
	enum ih_state st;
	uint16_t got;  /* greeting bytes seen */
	uint16_t lpos; /* bytes of the current greeting line */
	char line4[4]; /* its first four bytes */
};

static volatile sig_atomic_t ih_stop;

static void
on_signal(int sig)
{
	(void)sig;
	ih_stop = 1;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
usage(void)
{
	fprintf(stderr, "usage: idlehold -n N [-p inflight] [-t open_s] "
	                "[-T hold_s] -r file host port\n");
	exit(2);
}

static unsigned long
num(const char *s, unsigned long min, unsigned long max)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || n < min || n > max)
		usage();
	return n;
}

static int
start_one(struct ih_conn *c, int ep, const struct addrinfo *ai, size_t idx)
{
	struct epoll_event ev;
	int fd;

	fd = socket(
	    ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 &&
	    errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	c->fd = fd;
	c->st = IH_CONNECTING;
	c->got = 0;
	c->lpos = 0;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP;
	ev.data.u64 = idx;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
		close(fd);
		c->fd = -1;
		c->st = IH_DONE;
		return -1;
	}
	return 0;
}

static void
finish(struct ih_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->st = IH_DONE;
}

int
main(int argc, char *argv[])
{
	unsigned long n = 0, inflight = 32, open_s = 120, hold_s = 300;
	const char *ready = NULL;
	struct addrinfo hints, *ai;
	struct ih_conn *conns;
	struct epoll_event evs[256];
	struct rlimit rl;
	size_t next = 0, busy = 0, greeted = 0, failed = 0, lost = 0, i;
	double t0, t_ready = 0;
	int ch, ep, rc, wrote = 0;
	FILE *f;

	while ((ch = getopt(argc, argv, "n:p:r:t:T:")) != -1) {
		switch (ch) {
		case 'n':
			n = num(optarg, 1, IH_MAX);
			break;
		case 'p':
			inflight = num(optarg, 1, 10000);
			break;
		case 'r':
			ready = optarg;
			break;
		case 't':
			open_s = num(optarg, 1, 3600);
			break;
		case 'T':
			hold_s = num(optarg, 1, 3600);
			break;
		default:
			usage();
		}
	}
	if (n == 0 || ready == NULL || argc - optind != 2)
		usage();

	/* One descriptor a session plus a few: the caller raised the hard
	 * limit; take it. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < n + 64) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	if ((rc = getaddrinfo(argv[optind], argv[optind + 1], &hints, &ai)) !=
	    0) {
		fprintf(stderr, "idlehold: %s: %s\n", argv[optind],
		    gai_strerror(rc));
		return 2;
	}
	if ((conns = calloc(n, sizeof(*conns))) == NULL ||
	    (ep = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		perror("idlehold");
		return 2;
	}
	for (i = 0; i < n; i++)
		conns[i].fd = -1;
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);

	t0 = now_s();
	while (!ih_stop) {
		double t = now_s();
		int k, m;

		if (!wrote && (greeted + failed == n || t - t0 > open_s)) {
			if ((f = fopen(ready, "w")) != NULL) {
				fprintf(f,
				    "greeted=%zu failed=%zu "
				    "pending=%zu open_s=%.2f\n",
				    greeted, failed, busy, t - t0);
				fclose(f);
			}
			wrote = 1;
			t_ready = t;
		}
		if (wrote && t - t_ready > hold_s)
			break;
		while (!wrote && next < n && busy < inflight) {
			if (start_one(&conns[next], ep, ai, next) == 0)
				busy++;
			else {
				conns[next].st = IH_DONE;
				failed++;
			}
			next++;
		}
		m = epoll_wait(ep, evs, 256, 100);
		if (m < 0 && errno != EINTR) {
			perror("idlehold: epoll_wait");
			break;
		}
		for (k = 0; k < m; k++) {
			struct ih_conn *c = &conns[evs[k].data.u64];
			char buf[IH_GREET_MAX];
			ssize_t r, j;

			if (c->st == IH_CONNECTING) {
				int err = 0;
				socklen_t el = sizeof(err);
				struct epoll_event ev;

				if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR,
				        &err, &el) != 0 ||
				    err != 0) {
					finish(c);
					busy--;
					failed++;
					continue;
				}
				c->st = IH_GREETING;
				memset(&ev, 0, sizeof(ev));
				ev.events = EPOLLIN | EPOLLRDHUP;
				ev.data.u64 = evs[k].data.u64;
				(void)epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
			}
			if (!(evs[k].events &
			        (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
				continue;
			r = recv(c->fd, buf, sizeof(buf), 0);
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (r <= 0) {
				if (c->st == IH_GREETING) {
					busy--;
					failed++;
				} else if (c->st == IH_HELD) {
					greeted--;
					lost++;
				}
				finish(c);
				continue;
			}
			if (c->st != IH_GREETING)
				continue; /* held: ignore chatter */
			/* RFC 5321 §4.2: "220-" lines continue a greeting,
			 * the "220 " line ends it; any other code (421, 554)
			 * is a refusal.  Lines may arrive in pieces: keep the
			 * first four bytes of the current line. */
			for (j = 0; j < r && c->st == IH_GREETING; j++) {
				if (c->lpos < 4)
					c->line4[c->lpos] = buf[j];
				if (c->lpos < UINT16_MAX)
					c->lpos++;
				if (buf[j] != '\n')
					continue;
				if (c->lpos < 5 || memcmp(c->line4, "220", 3)) {
					c->st = IH_DONE; /* refused */
				} else if (c->line4[3] == ' ') {
					c->st = IH_HELD;
					busy--;
					greeted++;
				}
				c->lpos = 0;
			}
			if (c->st == IH_DONE) {
				finish(c);
				busy--;
				failed++;
				continue;
			}
			c->got = (uint16_t)(c->got + (size_t)r > 60000
			                        ? 60000
			                        : c->got + (size_t)r);
			if (c->st == IH_GREETING && c->got > IH_GREET_MAX) {
				finish(c);
				busy--;
				failed++;
			}
		}
	}
	if (!wrote && (f = fopen(ready, "w")) != NULL) {
		fprintf(f, "greeted=%zu failed=%zu pending=%zu interrupted\n",
		    greeted, failed, busy);
		fclose(f);
	}
	printf("alive=%zu lost=%zu failed=%zu\n", greeted, lost, failed);
	fflush(stdout);
	for (i = 0; i < n; i++)
		if (conns[i].fd >= 0)
			close(conns[i].fd);
	freeaddrinfo(ai);
	free(conns);
	return 0;
}
