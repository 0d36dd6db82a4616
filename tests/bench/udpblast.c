/*
 * tests/bench/udpblast.c: W6's UDP load, a sender that is not the
 * bottleneck.  iperf3 -u sends one datagram per system call, so on two
 * cores its own sendto() cost caps every path at about the same rate
 * (kernel forwarding measured 1.48x TAYGA with it, so no translator could
 * show more); this sender hands the kernel 64 datagrams a call
 * (sendmmsg(2)) and the sink takes them 64 at a time (recvmmsg(2)).
 *
 *   udpblast send ADDR PORT SECONDS LEN [FLOWS]
 *                                         prints "sent=N seconds=S"
 *   udpblast recv PORT SECONDS            prints "received=N seconds=S
 *                                         first_to_last=S"
 *
 * The sink binds [::]:PORT (IPv6 and IPv4), counts datagrams from the
 * first one for at most SECONDS + 3 s, and stops one second after the
 * last: received / first_to_last is the rate the path delivered.
 * Payload: a 64-bit sequence number, then zeroes (LEN >= 8).
 * FLOWS (default 1, at most 8) senders run as processes of their own, each
 * from its own source port: on a router many flows arrive at once, and the
 * kernel forwards each on the core that sent it, so one flow measures one
 * core's path and two measure what both cores can forward.
 */
#define _GNU_SOURCE
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define LEN_MAX 1472

static double
now(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
num(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *s == '\0' || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int
blast(const char *addr, const char *port, long secs, long len)
{
	static unsigned char buf[BATCH][LEN_MAX];
	struct mmsghdr m[BATCH];
	struct iovec iov[BATCH];
	struct addrinfo hints, *ai;
	uint64_t seq = 0, sent = 0;
	double t0, t1;
	int fd, i, n;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_DGRAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	if (getaddrinfo(addr, port, &hints, &ai) != 0) {
		fprintf(stderr, "udpblast: bad address %s port %s\n", addr, port);
		return 2;
	}
	fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		perror("udpblast: socket/connect");
		freeaddrinfo(ai);
		return 2;
	}
	freeaddrinfo(ai);
	memset(m, 0, sizeof(m));
	for (i = 0; i < BATCH; i++) {
		iov[i].iov_base = buf[i];
		iov[i].iov_len = (size_t)len;
		m[i].msg_hdr.msg_iov = &iov[i];
		m[i].msg_hdr.msg_iovlen = 1;
	}
	t0 = now();
	t1 = t0 + (double)secs;
	while (now() < t1) {
		for (i = 0; i < BATCH; i++) {
			uint64_t s = seq + (uint64_t)i;

			memcpy(buf[i], &s, sizeof(s));
		}
		n = sendmmsg(fd, m, BATCH, 0);
		if (n < 0) {
			/* A full device queue (ENOBUFS) or a refused
			 * datagram (ECONNREFUSED from an ICMP error) loses
			 * this batch: that is the path's loss to count. */
			if (errno == ENOBUFS || errno == ECONNREFUSED ||
			    errno == EAGAIN || errno == EINTR)
				continue;
			perror("udpblast: sendmmsg");
			close(fd);
			return 1;
		}
		seq += (uint64_t)n;
		sent += (uint64_t)n;
	}
	printf("sent=%llu seconds=%.3f\n", (unsigned long long)sent, now() - t0);
	close(fd);
	return 0;
}

static int
sink(const char *port, long secs)
{
	static unsigned char buf[BATCH][LEN_MAX];
	struct mmsghdr m[BATCH];
	struct iovec iov[BATCH];
	struct sockaddr_in6 sa;
	struct timeval tv = {0, 200000};
	uint64_t got = 0;
	double first = 0, last = 0, start = now();
	int fd, i, n, zero = 0, rcvbuf = 4 << 20;
	long p;

	if (num(port, 1, 65535, &p) != 0)
		return 2;
	fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin6_family = AF_INET6;
	sa.sin6_port = htons((uint16_t)p);
	if (fd < 0 ||
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf,
	        sizeof(rcvbuf)) ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		perror("udpblast: sink socket");
		return 2;
	}
	memset(m, 0, sizeof(m));
	for (i = 0; i < BATCH; i++) {
		iov[i].iov_base = buf[i];
		iov[i].iov_len = LEN_MAX;
		m[i].msg_hdr.msg_iov = &iov[i];
		m[i].msg_hdr.msg_iovlen = 1;
	}
	/* Ready: the caller waits for this line before it sends. */
	printf("listening\n");
	(void)fflush(stdout);
	for (;;) {
		double t = now();

		/* Bounded: SECONDS + 3 s from the first datagram, or 30 s
		 * of waiting for one; 1 s of silence ends a run. */
		if (first > 0 && (t - first > (double)secs + 3. || t - last > 1.))
			break;
		if (first == 0 && t - start > 30.)
			break;
		n = recvmmsg(fd, m, BATCH, MSG_WAITFORONE, NULL);
		if (n <= 0)
			continue;
		last = now();
		if (first == 0)
			first = last;
		got += (uint64_t)n;
	}
	printf("received=%llu seconds=%.3f first_to_last=%.3f\n",
	    (unsigned long long)got, now() - start, last - first);
	close(fd);
	return got > 0 ? 0 : 1;
}

/* FLOWS senders, each a child that writes "sent=N" to the pipe; the
 * sums are printed as one line. */
static int
blast_flows(const char *addr, const char *port, long secs, long len, long n)
{
	unsigned long long sent = 0, v;
	double t0 = now();
	int p[2], rc = 0, st;
	long i;
	FILE *f;

	if (pipe(p) != 0)
		return 2;
	for (i = 0; i < n; i++) {
		pid_t pid = fork();

		if (pid < 0)
			return 2;
		if (pid == 0) {
			close(p[0]);
			if (dup2(p[1], 1) < 0)
				_exit(2);
			rc = blast(addr, port, secs, len);
			/* _exit does not flush stdio: the pipe would
			 * stay empty. */
			(void)fflush(stdout);
			_exit(rc);
		}
	}
	close(p[1]);
	f = fdopen(p[0], "r");
	if (f == NULL)
		return 2;
	while (fscanf(f, "sent=%llu seconds=%*f\n", &v) == 1)
		sent += v;
	fclose(f);
	for (i = 0; i < n; i++)
		if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			rc = 1;
	printf("sent=%llu seconds=%.3f flows=%ld\n", sent, now() - t0, n);
	return rc;
}

int
main(int argc, char **argv)
{
	long secs, len, flows = 1;

	if ((argc == 6 || argc == 7) && strcmp(argv[1], "send") == 0 &&
	    num(argv[4], 1, 600, &secs) == 0 &&
	    num(argv[5], 8, LEN_MAX, &len) == 0 &&
	    (argc == 6 || num(argv[6], 1, 8, &flows) == 0))
		return flows == 1 ? blast(argv[2], argv[3], secs, len)
		                  : blast_flows(
		                        argv[2], argv[3], secs, len, flows);
	if (argc == 4 && strcmp(argv[1], "recv") == 0 &&
	    num(argv[3], 1, 600, &secs) == 0)
		return sink(argv[2], secs);
	fprintf(stderr, "usage: udpblast send ADDR PORT SECONDS LEN [FLOWS]\n"
	                "       udpblast recv PORT SECONDS\n");
	return 2;
}
