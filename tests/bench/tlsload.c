/*
 * tests/bench/tlsload.c: the load client of W7 (make bench, issue 22):
 * STARTTLS sessions as an MTA sends them, from C processes at once.
 *
 *	tlsload -a ADDR [-p PORT] [-n SESSIONS] [-c PROCS] [-r] [-s SNI]
 *
 * Each of PROCS processes runs its share of SESSIONS one after the other:
 * greeting, EHLO, STARTTLS, TLS handshake (no certificate check: a
 * benchmark, not a trust decision), EHLO, MAIL, RCPT, DATA, a 300-octet
 * message, QUIT (RFC 5321, RFC 3207).  -r resumes: each process keeps
 * the last session the server gave it and offers it to its next
 * handshake, again and again (as smtp64d's upstream leg does), taking a
 * newer one when the server sends it, dropping it when the server does
 * not resume it.  Without -r every handshake is full.
 *
 * Prints one line of key=value: sessions, ok, failed, elapsed_s, rate
 * (completed sessions per second of wall time), median_ms and p90_ms
 * (connect to the reply to QUIT), resumed (handshakes that resumed),
 * client_cpu_ms_per_session (this client's own CPU, to show whether it
 * is the bottleneck).  Exit 0 only if every session completed.
 *
 * Every read and write has a 15 s timeout; every loop is bounded by the
 * session count and the reply length.
 */
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define PROCS_MAX 64
#define SESS_MAX 1000000
#define LINE_MAX_B 1024
#define REPLY_LINES_MAX 64

struct conn {
	int fd;
	SSL *ssl; /* NULL: clear text */
	char buf[4096];
	size_t off, len;
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
c_write(struct conn *c, const char *s, size_t n)
{
	size_t done = 0;
	ssize_t w;
	int k;

	while (done < n) {
		if (c->ssl != NULL) {
			k = SSL_write(c->ssl, s + done, (int)(n - done));
			if (k <= 0)
				return -1;
			done += (size_t)k;
			continue;
		}
		w = send(c->fd, s + done, n - done, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		done += (size_t)w;
	}
	return 0;
}

static int
c_fill(struct conn *c)
{
	ssize_t r;
	int k;

	if (c->off > 0 && c->len > 0)
		memmove(c->buf, c->buf + c->off, c->len);
	c->off = 0;
	if (c->len >= sizeof(c->buf))
		return -1;
	if (c->ssl != NULL) {
		k = SSL_read(c->ssl, c->buf + c->len,
		    (int)(sizeof(c->buf) - c->len));
		if (k <= 0)
			return -1;
		c->len += (size_t)k;
		return 0;
	}
	do
		r = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
	while (r < 0 && errno == EINTR);
	if (r <= 0)
		return -1;
	c->len += (size_t)r;
	return 0;
}

/* Reads one whole reply; returns its code, or -1. */
static int
reply(struct conn *c)
{
	int lines, code = -1;
	size_t i;
	char *p;

	for (lines = 0; lines < REPLY_LINES_MAX; lines++) {
		for (;;) {
			p = memchr(c->buf + c->off, '\n', c->len);
			if (p != NULL)
				break;
			if (c->len > LINE_MAX_B || c_fill(c) != 0)
				return -1;
		}
		i = (size_t)(p - (c->buf + c->off)) + 1;
		if (i < 4)
			return -1;
		code = (c->buf[c->off] - '0') * 100 +
		       (c->buf[c->off + 1] - '0') * 10 +
		       (c->buf[c->off + 2] - '0');
		if (c->buf[c->off + 3] != '-') {
			c->off += i;
			c->len -= i;
			return code;
		}
		c->off += i;
		c->len -= i;
	}
	return -1;
}

static int
cmd(struct conn *c, const char *s, int want)
{
	if (c_write(c, s, strlen(s)) != 0)
		return -1;
	return reply(c) == want ? 0 : -1;
}

static const char MSG[] =
    "From: <a@example.net>\r\n"
    "To: <user@example.org>\r\n"
    "Subject: W7\r\n"
    "\r\n"
    "A short message: the cost measured here is the session and its two\r\n"
    "TLS handshakes, not the transfer of the body, which W2 measures.\r\n"
    "0123456789012345678901234567890123456789012345678901234567890123\r\n"
    ".\r\n";

/* One session; 0 when it completed.  *keep: the session to offer (in),
 * the one to offer next (out; -r). */
static int
session(const struct sockaddr_storage *sa, socklen_t salen, SSL_CTX *ctx,
    const char *sni, int resume, SSL_SESSION **keep, int *resumed)
{
	struct timeval tv = {15, 0};
	struct conn c;
	SSL_SESSION *s;
	int one = 1, rc = -1;

	memset(&c, 0, sizeof(c));
	*resumed = 0;
	c.fd = socket(sa->ss_family, SOCK_STREAM, 0);
	if (c.fd < 0)
		return -1;
	(void)setsockopt(c.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(c.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	(void)setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c.fd, (const struct sockaddr *)sa, salen) != 0)
		goto out;
	if (reply(&c) != 220 || cmd(&c, "EHLO client.example.net\r\n", 250) ||
	    cmd(&c, "STARTTLS\r\n", 220) || c.len != 0)
		goto out;
	if ((c.ssl = SSL_new(ctx)) == NULL || SSL_set_fd(c.ssl, c.fd) != 1)
		goto out;
	if (sni != NULL)
		(void)SSL_set_tlsext_host_name(c.ssl, sni);
	if (resume && *keep != NULL)
		(void)SSL_set_session(c.ssl, *keep);
	if (SSL_connect(c.ssl) != 1)
		goto out;
	*resumed = SSL_session_reused(c.ssl);
	if (cmd(&c, "EHLO client.example.net\r\n", 250) ||
	    cmd(&c, "MAIL FROM:<a@example.net>\r\n", 250) ||
	    cmd(&c, "RCPT TO:<user@example.org>\r\n", 250) ||
	    cmd(&c, "DATA\r\n", 354) || cmd(&c, MSG, 250) ||
	    cmd(&c, "QUIT\r\n", 221))
		goto out;
	rc = 0;
	if (resume) {
		/* TLS 1.3 tickets come after the handshake, read with the
		 * replies: the newest is the session now; a session that
		 * did not resume is replaced by the new full one. */
		s = SSL_get1_session(c.ssl);
		if (s != NULL && SSL_SESSION_is_resumable(s)) {
			SSL_SESSION_free(*keep);
			*keep = s;
		} else {
			SSL_SESSION_free(s);
			if (!*resumed) {
				SSL_SESSION_free(*keep);
				*keep = NULL;
			}
		}
	}
out:
	if (c.ssl != NULL) {
		(void)SSL_shutdown(c.ssl);
		SSL_free(c.ssl);
	}
	close(c.fd);
	ERR_clear_error();
	return rc;
}

/* A child: n sessions; writes "ok resumed ms ms ..." to fd. */
static void
child(int fd, int n, const struct sockaddr_storage *sa, socklen_t salen,
    const char *sni, int resume)
{
	SSL_SESSION *keep = NULL;
	SSL_CTX *ctx;
	double t0;
	int i, ok = 0, res = 0, r;
	char line[64];
	FILE *f;

	ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL)
		_exit(2);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	/* Sessions stay with this process (SSL_get1_session), never in
	 * OpenSSL's store, which would make a TLS 1.3 one single use. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	f = fdopen(fd, "w");
	if (f == NULL)
		_exit(2);
	for (i = 0; i < n; i++) {
		t0 = now_s();
		if (session(sa, salen, ctx, sni, resume, &keep, &r) == 0) {
			ok++;
			res += r;
			(void)snprintf(line, sizeof(line), "t %.3f\n",
			    (now_s() - t0) * 1000.0);
			fputs(line, f);
		}
	}
	fprintf(f, "n %d %d\n", ok, res);
	fclose(f);
	SSL_SESSION_free(keep);
	SSL_CTX_free(ctx);
	_exit(ok == n ? 0 : 1);
}

static int
cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	struct sockaddr_storage sa;
	struct rusage ru;
	socklen_t salen;
	const char *addr = NULL, *sni = NULL;
	int port = 25, n = 100, procs = 4, resume = 0, o, i, st;
	int ok = 0, res = 0, bad = 0, a, b;
	pid_t pid[PROCS_MAX];
	FILE *in[PROCS_MAX];
	int fds[2];
	double t0, el, *lat, cpu;
	size_t nlat = 0;
	char line[128];

	while ((o = getopt(argc, argv, "a:p:n:c:rs:")) != -1) {
		switch (o) {
		case 'a': addr = optarg; break;
		case 'p': port = (int)strtol(optarg, NULL, 10); break;
		case 'n': n = (int)strtol(optarg, NULL, 10); break;
		case 'c': procs = (int)strtol(optarg, NULL, 10); break;
		case 'r': resume = 1; break;
		case 's': sni = optarg; break;
		default: goto usage;
		}
	}
	if (addr == NULL || port < 1 || port > 65535 || n < 1 ||
	    n > SESS_MAX || procs < 1 || procs > PROCS_MAX || procs > n)
		goto usage;
	memset(&sa, 0, sizeof(sa));
	if (inet_pton(AF_INET, addr, &((struct sockaddr_in *)&sa)->sin_addr) ==
	    1) {
		((struct sockaddr_in *)&sa)->sin_family = AF_INET;
		((struct sockaddr_in *)&sa)->sin_port = htons((uint16_t)port);
		salen = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, addr,
	               &((struct sockaddr_in6 *)&sa)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)&sa)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)&sa)->sin6_port = htons((uint16_t)port);
		salen = sizeof(struct sockaddr_in6);
	} else
		goto usage;
	lat = calloc((size_t)n, sizeof(*lat));
	if (lat == NULL)
		return 2;
	t0 = now_s();
	for (i = 0; i < procs; i++) {
		if (pipe(fds) != 0)
			return 2;
		pid[i] = fork();
		if (pid[i] < 0)
			return 2;
		if (pid[i] == 0) {
			close(fds[0]);
			child(fds[1], n / procs + (i < n % procs), &sa, salen,
			    sni, resume);
		}
		close(fds[1]);
		in[i] = fdopen(fds[0], "r");
		if (in[i] == NULL)
			return 2;
	}
	for (i = 0; i < procs; i++) {
		while (fgets(line, sizeof(line), in[i]) != NULL) {
			if (line[0] == 't' && nlat < (size_t)n)
				lat[nlat++] = strtod(line + 2, NULL);
			else if (line[0] == 'n' &&
			         sscanf(line + 2, "%d %d", &a, &b) == 2) {
				ok += a;
				res += b;
			}
		}
		fclose(in[i]);
		if (waitpid(pid[i], &st, 0) < 0 || !WIFEXITED(st) ||
		    WEXITSTATUS(st) != 0)
			bad++;
	}
	el = now_s() - t0;
	qsort(lat, nlat, sizeof(*lat), cmp_d);
	(void)getrusage(RUSAGE_CHILDREN, &ru);
	cpu = (double)ru.ru_utime.tv_sec * 1e3 + ru.ru_utime.tv_usec / 1e3 +
	      (double)ru.ru_stime.tv_sec * 1e3 + ru.ru_stime.tv_usec / 1e3;
	printf("sessions=%d ok=%d failed=%d elapsed_s=%.3f rate=%.1f "
	       "median_ms=%.3f p90_ms=%.3f resumed=%d "
	       "client_cpu_ms_per_session=%.3f\n",
	    n, ok, n - ok, el, el > 0 ? ok / el : 0.0,
	    nlat ? lat[nlat / 2] : 0.0, nlat ? lat[nlat * 9 / 10] : 0.0, res,
	    ok > 0 ? cpu / ok : 0.0);
	free(lat);
	return ok == n && bad == 0 ? 0 : 1;
usage:
	fprintf(stderr, "usage: tlsload -a ADDR [-p PORT] [-n SESSIONS] "
	                "[-c PROCS] [-r] [-s SNI]\n");
	return 2;
}
