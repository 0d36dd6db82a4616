/*
 * tools/smtp64-rtt.c: per-command SMTP round-trip times, for make bench
 * (issue 5, W4).  Opens one session, then runs N transactions
 *
 *	EHLO, MAIL FROM, RCPT TO, DATA, <small body> ".", RSET
 *
 * one command at a time (no pipelining), timing each from the write of
 * the command to the last line of its reply (RFC 5321 §4.2.1: a reply
 * ends with the line whose code is followed by a space).  Prints p50 and
 * p99 per command in microseconds.  Every reply code is checked; any
 * surprise ends the run with exit status 1, so a relay that answers
 * wrongly yields no figure.
 *
 * Standalone C11 on purpose: it links nothing of smtp64, so it times any
 * relay (or none) the same way.
 */
#include <sys/socket.h>
#include <sys/time.h>

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* RFC 5321 §4.5.3.1.5: 512 for a reply line; twice that tolerates
 * extensions. */
#define RTT_LINE_MAX 1024
#define RTT_REPLY_LINES 64 /* an EHLO reply longer than this is bogus */
#define RTT_N_MAX 1000000
#define RTT_BODY_MAX (1 << 20)
#define RTT_TIMEOUT_S 10

#ifndef SMTP64_VERSION
#define SMTP64_VERSION "0.1.0"
#endif

enum rtt_cmd {
	RTT_EHLO,
	RTT_MAIL,
	RTT_RCPT,
	RTT_DATA,
	RTT_END, /* the body's final "." line: DATA-end */
	RTT_RSET,
	RTT_NCMD
};

static const char *const rtt_name[RTT_NCMD] = {
    "EHLO", "MAIL", "RCPT", "DATA", "END", "RSET"};

/* What each command must get: RFC 5321 §4.3.2. */
static const int rtt_want[RTT_NCMD] = {250, 250, 250, 354, 250, 250};

struct rtt_conn {
	int fd;
	char buf[8192]; /* bytes read, not yet consumed */
	size_t off, len;
};

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* -h: on stdout, exit 0; a wrong command line: on stderr, exit 2. */
static void
usage(FILE *f, int status)
{
	fprintf(f,
	    "usage: smtp64-rtt [-n transactions] [-w warmup] "
	    "[-b body_bytes]\n"
	    "                  [-H helo] [-f from] [-t to] host [port]\n"
	    "       smtp64-rtt -h | -V\n"
	    "\n"
	    "  host [port]      the SMTP server (numeric address; port 25)\n"
	    "  -n transactions  timed transactions (default 2000)\n"
	    "  -w warmup        untimed transactions first (default 50)\n"
	    "  -b body_bytes    message body size (default 200)\n"
	    "  -H helo          EHLO argument (default client.example.net)\n"
	    "  -f from          MAIL FROM address (default "
	    "bench@example.net)\n"
	    "  -t to            RCPT TO address (default user@example.org)\n"
	    "  -h               this help (also --help)\n"
	    "  -V               print the version (also --version)\n"
	    "\n"
	    "Prints p50 and p99 per command in microseconds.  Exit status: "
	    "0 every\n"
	    "reply was the expected one, 1 a reply or the connection "
	    "failed,\n"
	    "2 usage error.\n");
	exit(status);
}

static int
num_arg(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || n < min || n > max)
		return -1;
	*out = n;
	return 0;
}

static int
dial(const char *host, const char *port)
{
	struct addrinfo hints, *res, *ai;
	struct timeval tv = {RTT_TIMEOUT_S, 0};
	int fd = -1, on = 1, rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
		fprintf(stderr, "smtp64-rtt: %s: %s\n", host, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
		if (fd < 0)
			continue;
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		/* Commands are single small writes: never let Nagle hold
		 * one back waiting for an ACK. */
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -1;
	}
	if (fd < 0)
		fprintf(stderr, "smtp64-rtt: connect %s port %s: %s\n", host,
		    port, strerror(errno));
	freeaddrinfo(res);
	return fd;
}

static int
send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			fprintf(
			    stderr, "smtp64-rtt: send: %s\n", strerror(errno));
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * Reads one reply line into line (NUL-terminated, CRLF removed).  0, or
 * -1 on timeout, EOF, error or an overlong line.
 */
static int
read_line(struct rtt_conn *c, char *line, size_t cap)
{
	for (;;) {
		char *nl = memchr(c->buf + c->off, '\n', c->len);
		ssize_t r;

		if (nl != NULL) {
			size_t n = (size_t)(nl - (c->buf + c->off));

			if (n > 0 && c->buf[c->off + n - 1] == '\r')
				n--;
			if (n >= cap)
				return -1;
			memcpy(line, c->buf + c->off, n);
			line[n] = '\0';
			n = (size_t)(nl - (c->buf + c->off)) + 1;
			c->off += n;
			c->len -= n;
			return 0;
		}
		if (c->len >= RTT_LINE_MAX) {
			fprintf(stderr, "smtp64-rtt: reply line too long\n");
			return -1;
		}
		if (c->off > 0) {
			memmove(c->buf, c->buf + c->off, c->len);
			c->off = 0;
		}
		r = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			fprintf(stderr, "smtp64-rtt: recv: %s\n",
			    r == 0 ? "connection closed" : strerror(errno));
			return -1;
		}
		c->len += (size_t)r;
	}
}

/*
 * Reads a whole reply (RFC 5321 §4.2.1: "NNN-" continues, "NNN " ends)
 * and returns its code, or -1.  last (capacity cap) gets the final line.
 */
static int
read_reply(struct rtt_conn *c, char *last, size_t cap)
{
	int i, code;

	for (i = 0; i < RTT_REPLY_LINES; i++) {
		if (read_line(c, last, cap) != 0)
			return -1;
		if (strlen(last) < 3 || last[0] < '2' || last[0] > '5' ||
		    last[1] < '0' || last[1] > '9' || last[2] < '0' ||
		    last[2] > '9' ||
		    (last[3] != ' ' && last[3] != '-' && last[3] != '\0')) {
			fprintf(stderr, "smtp64-rtt: bad reply line\n");
			return -1;
		}
		code = (last[0] - '0') * 100 + (last[1] - '0') * 10 +
		       (last[2] - '0');
		if (last[3] != '-')
			return code;
	}
	fprintf(stderr, "smtp64-rtt: reply of more than %d lines\n",
	    RTT_REPLY_LINES);
	return -1;
}

/* Sends p/n, reads the reply, checks its code; the round trip in ns. */
static int
exchange(
    struct rtt_conn *c, enum rtt_cmd cmd, const char *p, size_t n, uint64_t *ns)
{
	char last[RTT_LINE_MAX];
	uint64_t t0;
	int code;

	t0 = now_ns();
	if (send_all(c->fd, p, n) != 0)
		return -1;
	code = read_reply(c, last, sizeof(last));
	*ns = now_ns() - t0;
	if (code != rtt_want[cmd]) {
		fprintf(stderr, "smtp64-rtt: %s: want %d, got: %s\n",
		    rtt_name[cmd], rtt_want[cmd], code < 0 ? "(none)" : last);
		return -1;
	}
	return 0;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The q-quantile (nearest rank) of sorted v[n], in microseconds. */
static double
quantile_us(const uint64_t *v, size_t n, double q)
{
	size_t k = (size_t)(q * (double)n + 0.999999);

	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return (double)v[k - 1] / 1000.;
}

int
main(int argc, char *argv[])
{
	const char *helo = "client.example.net", *from = "bench@example.net";
	const char *to = "user@example.org", *port = "25";
	unsigned long n = 2000, warm = 50, body = 200;
	struct rtt_conn c;
	uint64_t *t[RTT_NCMD], ns;
	char cmd[RTT_NCMD][600], *msg, last[RTT_LINE_MAX];
	size_t clen[RTT_NCMD], mlen, i, k;
	static const struct option longopts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	int ch, rc = 1;

	while ((ch = getopt_long(
	            argc, argv, "b:f:hH:n:t:Vw:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'b':
			if (num_arg(optarg, 0, RTT_BODY_MAX, &body) != 0)
				usage(stderr, 2);
			break;
		case 'f':
			from = optarg;
			break;
		case 'h':
			usage(stdout, 0);
			break;
		case 'H':
			helo = optarg;
			break;
		case 'n':
			if (num_arg(optarg, 1, RTT_N_MAX, &n) != 0)
				usage(stderr, 2);
			break;
		case 't':
			to = optarg;
			break;
		case 'V':
			printf("smtp64-rtt %s\n", SMTP64_VERSION);
			return 0;
		case 'w':
			if (num_arg(optarg, 0, RTT_N_MAX, &warm) != 0)
				usage(stderr, 2);
			break;
		default:
			usage(stderr, 2);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1 || argc > 2)
		usage(stderr, 2);
	if (argc == 2)
		port = argv[1];
	if (strlen(helo) > 255 || strlen(from) > 255 || strlen(to) > 255)
		usage(stderr, 2);

	clen[RTT_EHLO] = (size_t)snprintf(
	    cmd[RTT_EHLO], sizeof(cmd[0]), "EHLO %s\r\n", helo);
	clen[RTT_MAIL] = (size_t)snprintf(
	    cmd[RTT_MAIL], sizeof(cmd[0]), "MAIL FROM:<%s>\r\n", from);
	clen[RTT_RCPT] = (size_t)snprintf(
	    cmd[RTT_RCPT], sizeof(cmd[0]), "RCPT TO:<%s>\r\n", to);
	clen[RTT_DATA] =
	    (size_t)snprintf(cmd[RTT_DATA], sizeof(cmd[0]), "DATA\r\n");
	clen[RTT_RSET] =
	    (size_t)snprintf(cmd[RTT_RSET], sizeof(cmd[0]), "RSET\r\n");
	clen[RTT_END] = 0;

	/* The message: a few headers, then body lines of 70 'x' and CRLF
	 * (never a lone "."), then "." CRLF (RFC 5321 §4.1.1.4). */
	if ((msg = malloc(body + (body / 70 + 1) * 2 + 603)) == NULL) {
		perror("smtp64-rtt: malloc");
		return 1;
	}
	mlen = (size_t)snprintf(msg, 600,
	    "From: <%s>\r\nTo: <%s>\r\n"
	    "Subject: smtp64-rtt\r\n\r\n",
	    from, to);
	for (k = 0; k < body; k += 70) {
		size_t w = body - k < 70 ? body - k : 70;

		memset(msg + mlen, 'x', w);
		mlen += w;
		msg[mlen++] = '\r';
		msg[mlen++] = '\n';
	}
	memcpy(msg + mlen, ".\r\n", 3);
	mlen += 3;

	for (k = 0; k < RTT_NCMD; k++)
		if ((t[k] = calloc(n, sizeof(uint64_t))) == NULL) {
			perror("smtp64-rtt: calloc");
			return 1;
		}

	memset(&c, 0, sizeof(c));
	if ((c.fd = dial(argv[0], port)) < 0)
		return 1;
	if (read_reply(&c, last, sizeof(last)) != 220) {
		fprintf(stderr, "smtp64-rtt: no 220 greeting\n");
		goto out;
	}
	for (i = 0; i < warm + n; i++) {
		size_t slot = i < warm ? 0 : i - warm;
		uint64_t got[RTT_NCMD];

		for (k = 0; k < RTT_NCMD; k++) {
			const char *p = k == RTT_END ? msg : cmd[k];
			size_t len = k == RTT_END ? mlen : clen[k];

			if (exchange(&c, (enum rtt_cmd)k, p, len, &ns) != 0)
				goto out;
			got[k] = ns;
		}
		if (i >= warm)
			for (k = 0; k < RTT_NCMD; k++)
				t[k][slot] = got[k];
	}
	if (send_all(c.fd, "QUIT\r\n", 6) == 0)
		(void)read_reply(&c, last, sizeof(last));

	printf("# smtp64-rtt host=%s port=%s transactions=%lu warmup=%lu "
	       "body_bytes=%lu\n",
	    argv[0], port, n, warm, body);
	printf("cmd\tn\tp50_us\tp99_us\tmin_us\tmax_us\n");
	for (k = 0; k < RTT_NCMD; k++) {
		qsort(t[k], n, sizeof(uint64_t), cmp_u64);
		printf("%s\t%lu\t%.1f\t%.1f\t%.1f\t%.1f\n", rtt_name[k], n,
		    quantile_us(t[k], n, 0.50), quantile_us(t[k], n, 0.99),
		    (double)t[k][0] / 1000., (double)t[k][n - 1] / 1000.);
	}
	printf("messages\t%lu\n", warm + n);
	rc = 0;
out:
	close(c.fd);
	for (k = 0; k < RTT_NCMD; k++)
		free(t[k]);
	free(msg);
	return rc;
}
