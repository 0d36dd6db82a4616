/*
 * gateway/nfq.c: NFQUEUE in, raw sockets out, nat/xlat in between.
 *
 * One wake-up reads up to BATCH netlink messages with recvmmsg (copy
 * mode: each holds one packet), translates them into per-slot buffers,
 * sends the results per family with sendmmsg, then answers the kernel
 * in one netlink write: ACCEPT for each packet that is not ours, then a
 * single batch DROP (NFQNL_MSG_VERDICT_BATCH) for every id up to the
 * highest one seen, which also frees packets whose message an ENOBUFS
 * overrun lost.  Individual verdicts go first: a batch verdict covers
 * every lower id still queued.
 *
 * Without NFQA_CFG_F_GSO the kernel segments GSO packets and completes
 * partial checksums before copying (net/netfilter/nfnetlink_queue.c), so
 * every packet read is a whole, checksummed IP packet.
 */
#define _GNU_SOURCE /* recvmmsg, sendmmsg */
#include <sys/socket.h>
#include <sys/types.h>

#include <netinet/in.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink_queue.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

#include "gateway/log.h"
#include "gateway/nfq.h"
#include "nat/xlat.h"

#define BATCH 64                /* messages per recvmmsg */
#define ROUNDS 8                /* recvmmsg calls per wake-up, for fairness */
#define PKT_MAX 65535           /* copy range: whole packets */
#define MSG_ROOM (65536 + 4096) /* netlink headers, attrs; aligned */
#define OUT_ROOM (PKT_MAX + NAT_XLAT_GROWTH + 64)
#define RCVBUF_BYTES (8 * 1024 * 1024)
#define SNDBUF_BYTES (4 * 1024 * 1024)
#define QUEUE_MAXLEN 4096
#define CFG_BUF 8192 /* a configuration message, its ACK */

struct slot {
	uint8_t out[OUT_ROOM];
	size_t len;
	int family; /* 0: nothing to send */
	int icmp;   /* our error, not a translation */
	union {
		struct sockaddr_in sin;
		struct sockaddr_in6 sin6;
	} to;
	union { /* IPV6_PKTINFO: the packet's source */
		uint8_t buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
		struct cmsghdr align;
	} cmsg;
};

struct nfq {
	int running;
	struct gw_nfq_conf conf;
	struct mnl_socket *nl;
	unsigned portid;
	int fd4, fd6;
	int pktinfo6; /* fd6 takes any source */
	ev_io io;
	/* recvmmsg */
	uint8_t *rx; /* BATCH * MSG_ROOM */
	struct mmsghdr rmsg[BATCH];
	struct iovec riov[BATCH];
	struct slot *slots; /* BATCH */
	/* sendmmsg, per family */
	struct mmsghdr smsg[BATCH];
	struct iovec siov[BATCH];
	/* verdicts: BATCH accepts and one batch drop */
	uint8_t *vbuf;
	uint32_t accept_id[BATCH];
	size_t naccept;
	uint32_t drop_max;
	int have_drop;
	/* a second packet in one datagram; the pieces of SPLIT */
	struct slot *spare, *piece;
	uint16_t ident;
	/* ICMP error tokens */
	double icmp_tokens;
	ev_tstamp icmp_last;
	struct gw_nfq_stats st;
};

static struct nfq q = {.fd4 = -1, .fd6 = -1};

#define VBUF_ROOM ((BATCH + 1) * 128)

/* --------------------------------------------------------- netlink */

/* Sends one configuration message and waits for its acknowledgement.
 * 0, or -1 with errno. */
static int
cfg_send(struct nlmsghdr *nlh)
{
	uint8_t buf[CFG_BUF];
	ssize_t n;
	unsigned seq;

	nlh->nlmsg_flags |= NLM_F_ACK;
	seq = nlh->nlmsg_seq = (unsigned)time(NULL);
	if (mnl_socket_sendto(q.nl, nlh, nlh->nlmsg_len) < 0)
		return -1;
	for (;;) {
		n = mnl_socket_recvfrom(q.nl, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		/* MNL_CB_STOP on the ACK; -1 with errno on an error. */
		n = mnl_cb_run(buf, (size_t)n, seq, q.portid, NULL, NULL);
		if (n < 0)
			return -1;
		if (n == MNL_CB_STOP)
			return 0;
	}
}

static int
cfg_cmd(uint8_t cmd)
{
	char buf[CFG_BUF];
	struct nlmsghdr *nlh;

	nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, q.conf.queue);
	nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, cmd);
	return cfg_send(nlh);
}

static int
cfg_params(void)
{
	char buf[CFG_BUF];
	struct nlmsghdr *nlh;
	unsigned maxlen;

	nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, q.conf.queue);
	nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, PKT_MAX);
	maxlen = q.conf.queue_maxlen ? q.conf.queue_maxlen : QUEUE_MAXLEN;
	nfq_nlmsg_cfg_put_qmaxlen(nlh, maxlen);
	return cfg_send(nlh);
}

/* Appends a verdict message for id to the verdict buffer at *off. */
static void
verdict_put(size_t *off, int type, uint32_t id, int verdict)
{
	struct nlmsghdr *nlh;

	nlh = nfq_nlmsg_put((char *)q.vbuf + *off, type, q.conf.queue);
	nfq_nlmsg_verdict_put(nlh, (int)id, verdict);
	*off += NLMSG_ALIGN(nlh->nlmsg_len);
}

/* The kernel's answers, in one write: accepts first (see the top). */
static void
verdicts_flush(void)
{
	size_t off = 0, i;

	for (i = 0; i < q.naccept; i++)
		verdict_put(&off, NFQNL_MSG_VERDICT, q.accept_id[i], NF_ACCEPT);
	if (q.have_drop)
		verdict_put(&off, NFQNL_MSG_VERDICT_BATCH, q.drop_max, NF_DROP);
	q.naccept = 0;
	q.have_drop = 0;
	if (off == 0)
		return;
	while (mnl_socket_sendto(q.nl, q.vbuf, off) < 0) {
		if (errno == EINTR)
			continue;
		/* The packets stay queued until a later batch verdict
		 * (a higher id) covers them. */
		gw_log(LOG_ERR,
		    "event=packet_verdict result=failed "
		    "error=\"%s\"",
		    strerror(errno));
		break;
	}
}

/* ------------------------------------------------------------ send */

static void
set_dst(struct slot *s)
{
	memset(&s->to, 0, sizeof(s->to));
	if (s->family == AF_INET) {
		s->to.sin.sin_family = AF_INET;
		memcpy(&s->to.sin.sin_addr, s->out + 16, 4);
	} else {
		s->to.sin6.sin6_family = AF_INET6;
		memcpy(&s->to.sin6.sin6_addr, s->out + 24, 16);
	}
}

/*
 * The message for slot s.  An IPv6 raw socket routes by the flow's
 * source too, and with none it runs source address selection for every
 * packet (ip6_dst_lookup_tail): IPV6_PKTINFO names the packet's own
 * source, which IPV6_FREEBIND lets be any address.
 */
static void
set_msg(struct msghdr *m, struct iovec *iov, struct slot *s)
{
	struct cmsghdr *c;
	struct in6_pktinfo pi;

	memset(m, 0, sizeof(*m));
	iov->iov_base = s->out;
	iov->iov_len = s->len;
	m->msg_iov = iov;
	m->msg_iovlen = 1;
	m->msg_name = &s->to;
	if (s->family == AF_INET) {
		m->msg_namelen = sizeof(s->to.sin);
		return;
	}
	m->msg_namelen = sizeof(s->to.sin6);
	if (!q.pktinfo6)
		return;
	memset(&s->cmsg, 0, sizeof(s->cmsg));
	m->msg_control = s->cmsg.buf;
	m->msg_controllen = sizeof(s->cmsg.buf);
	c = CMSG_FIRSTHDR(m);
	c->cmsg_level = IPPROTO_IPV6;
	c->cmsg_type = IPV6_PKTINFO;
	c->cmsg_len = CMSG_LEN(sizeof(pi));
	memset(&pi, 0, sizeof(pi));
	memcpy(&pi.ipi6_addr, s->out + 8, 16);
	memcpy(CMSG_DATA(c), &pi, sizeof(pi));
}

static void
count_sent(int family, int icmp)
{
	if (icmp)
		q.st.icmp_sent++;
	else if (family == AF_INET6)
		q.st.sent46++;
	else
		q.st.sent64++;
}

/* One packet now (SPLIT pieces, a spare slot's), from s->out. */
static int
send_one(struct slot *s)
{
	struct msghdr m;
	struct iovec iov;
	ssize_t n;
	int fd = s->family == AF_INET ? q.fd4 : q.fd6;

	set_dst(s);
	set_msg(&m, &iov, s);
	do
		n = sendmsg(fd, &m, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		q.st.send_errors++;
		return -1;
	}
	return 0;
}

/* sendmmsg of every slot of one family; a refused packet is counted
 * and skipped. */
static void
send_family(int family, size_t nslots)
{
	size_t i, n = 0, done;
	int fd = family == AF_INET ? q.fd4 : q.fd6, r;

	for (i = 0; i < nslots; i++) {
		struct slot *s = &q.slots[i];

		if (s->family != family)
			continue;
		set_msg(&q.smsg[n].msg_hdr, &q.siov[n], s);
		q.smsg[n].msg_len = 0;
		n++;
	}
	for (done = 0; done < n;) {
		r = sendmmsg(fd, q.smsg + done, (unsigned)(n - done), 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			/* EMSGSIZE (a route MTU under ours), EAGAIN (send
			 * buffer full), ENETUNREACH: this one is lost. */
			if (gw_log_enabled(LOG_DEBUG))
				gw_log(LOG_DEBUG,
				    "event=packet_send "
				    "result=failed family=%d error=\"%s\"",
				    family == AF_INET ? 4 : 6, strerror(errno));
			q.st.send_errors++;
			done++;
			continue;
		}
		done += (size_t)r;
	}
}

/* ----------------------------------------------------------- packet */

/* Token bucket for the ICMP errors we build (RFC 1812 §4.3.2.8, RFC
 * 4443 §2.4 (f): rate-limited). */
static int
icmp_allowed(struct ev_loop *loop)
{
	ev_tstamp now = ev_now(loop);

	q.icmp_tokens += (now - q.icmp_last) * GW_NFQ_ICMP_PER_S;
	q.icmp_last = now;
	if (q.icmp_tokens > GW_NFQ_ICMP_PER_S)
		q.icmp_tokens = GW_NFQ_ICMP_PER_S;
	if (q.icmp_tokens < 1) {
		q.st.icmp_limited++;
		return 0;
	}
	q.icmp_tokens -= 1;
	return 1;
}

/* Packet ids wrap; the kernel compares them as serial numbers
 * (nfq_id_after), so do we. */
static void
verdict_drop(uint32_t id)
{
	if (!q.have_drop || (int32_t)(id - q.drop_max) > 0)
		q.drop_max = id;
	q.have_drop = 1;
}

/* SPLIT: each piece goes out at once, from the piece slot. */
static void
send_split(struct slot *s, unsigned mtu)
{
	size_t pos = 0, len;
	int r;

	q.ident++;
	q.piece->family = s->family;
	q.piece->icmp = 0;
	while ((r = nat_xlat_split(s->out, s->len, mtu, q.ident, &pos,
	            q.piece->out, sizeof(q.piece->out), &len)) == 1) {
		q.piece->len = len;
		if (send_one(q.piece) == 0)
			q.st.fragments++;
	}
	if (r < 0)
		q.st.send_errors++;
	else
		count_sent(s->family, 0);
	s->family = 0;
}

/* One queued packet: translate into slot s, choose the verdict. */
static void
packet(struct ev_loop *loop, const struct nlmsghdr *nlh, struct slot *s)
{
	struct nlattr *attr[NFQA_MAX + 1] = {0};
	struct nfqnl_msg_packet_hdr *ph;
	struct nat_xlat_out res;
	enum nat_xlat_verdict v;
	const uint8_t *pkt;
	uint32_t id;
	size_t len;

	s->family = 0;
	s->icmp = 0;
	if (nfq_nlmsg_parse(nlh, attr) < 0 || attr[NFQA_PACKET_HDR] == NULL)
		return;
	ph = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
	id = ntohl(ph->packet_id);
	q.st.received++;
	if (attr[NFQA_PAYLOAD] == NULL) {
		q.st.truncated++;
		verdict_drop(id);
		return;
	}
	pkt = mnl_attr_get_payload(attr[NFQA_PAYLOAD]);
	len = mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]);
	if (attr[NFQA_CAP_LEN] != NULL &&
	    ntohl(mnl_attr_get_u32(attr[NFQA_CAP_LEN])) > len) {
		q.st.truncated++;
		verdict_drop(id);
		return;
	}
	v = nat_xlat(&q.conf.xlat, pkt, len, s->out, sizeof(s->out), &res);
	switch (v) {
	case NAT_XLAT_OK:
		s->family = res.family;
		s->len = res.len;
		set_dst(s);
		verdict_drop(id);
		return;
	case NAT_XLAT_SPLIT:
		s->family = res.family;
		s->len = res.len;
		send_split(s, res.mtu);
		verdict_drop(id);
		return;
	case NAT_XLAT_ICMP:
		q.st.reason[res.reason]++;
		q.st.dropped++;
		if (icmp_allowed(loop)) {
			s->family = res.family;
			s->len = res.len;
			s->icmp = 1;
			set_dst(s);
		}
		verdict_drop(id);
		return;
	case NAT_XLAT_NOT_OURS:
		q.st.reason[res.reason]++;
		q.st.accepted++;
		/* Only with several packets a datagram: answer early; every
		 * lower id has been read, and its translation is copied. */
		if (q.naccept == BATCH)
			verdicts_flush();
		q.accept_id[q.naccept++] = id;
		return;
	case NAT_XLAT_DROP:
	default:
		q.st.reason[res.reason]++;
		q.st.dropped++;
		if (gw_log_enabled(LOG_DEBUG))
			gw_log(LOG_DEBUG,
			    "event=packet_drop id=%u len=%zu "
			    "reason=%s",
			    id, len, nat_xlat_reason_name(res.reason));
		verdict_drop(id);
		return;
	}
}

/* Walks the netlink messages of one datagram. */
static void
datagram(struct ev_loop *loop, const uint8_t *buf, size_t len, struct slot *s)
{
	const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf;
	int left = (int)len;

	s->family = 0;
	for (; mnl_nlmsg_ok(nlh, left); nlh = mnl_nlmsg_next(nlh, &left)) {
		if (nlh->nlmsg_type == NLMSG_ERROR ||
		    nlh->nlmsg_type == NLMSG_DONE ||
		    nlh->nlmsg_type == NLMSG_NOOP)
			continue;
		if ((nlh->nlmsg_type & 0xff) != NFQNL_MSG_PACKET)
			continue;
		/* Copy mode sends one packet a datagram; should a second
		 * ever come, it is sent at once from the spare slot. */
		if (s->family != 0) {
			packet(loop, nlh, q.spare);
			if (q.spare->family != 0 && send_one(q.spare) == 0)
				count_sent(q.spare->family, q.spare->icmp);
			continue;
		}
		packet(loop, nlh, s);
	}
}

static void
read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	size_t i, n;
	int r, round;

	(void)w;
	(void)revents;
	for (round = 0; round < ROUNDS; round++) {
		for (i = 0; i < BATCH; i++) {
			q.riov[i].iov_base = q.rx + i * MSG_ROOM;
			q.riov[i].iov_len = MSG_ROOM;
			memset(&q.rmsg[i], 0, sizeof(q.rmsg[i]));
			q.rmsg[i].msg_hdr.msg_iov = &q.riov[i];
			q.rmsg[i].msg_hdr.msg_iovlen = 1;
		}
		r = recvmmsg(
		    mnl_socket_get_fd(q.nl), q.rmsg, BATCH, MSG_DONTWAIT, NULL);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ENOBUFS) {
				/* The socket overflowed; the packets stay
				 * queued and the next batch verdict drops
				 * them. */
				q.st.overruns++;
				continue;
			}
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				gw_log(LOG_ERR,
				    "event=packet_read "
				    "result=failed error=\"%s\"",
				    strerror(errno));
			break;
		}
		n = (size_t)r;
		if (n > 0)
			q.st.reads++;
		for (i = 0; i < n; i++) {
			if (q.rmsg[i].msg_hdr.msg_flags & MSG_TRUNC) {
				q.st.truncated++;
				q.slots[i].family = 0;
				continue;
			}
			datagram(loop, q.rx + i * MSG_ROOM, q.rmsg[i].msg_len,
			    &q.slots[i]);
		}
		send_family(AF_INET6, n);
		send_family(AF_INET, n);
		for (i = 0; i < n; i++)
			if (q.slots[i].family != 0)
				count_sent(q.slots[i].family, q.slots[i].icmp);
		verdicts_flush();
		if (n < BATCH)
			break;
	}
}

/* ------------------------------------------------------------- API */

static int
raw_socket(int family, char *err, size_t errcap)
{
	int fd, sz = SNDBUF_BYTES, on = 1;

	fd = socket(
	    family, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_RAW);
	if (fd < 0) {
		(void)snprintf(err, errcap,
		    "packet: raw IPv%d socket: %s "
		    "(needs CAP_NET_RAW)",
		    family == AF_INET ? 4 : 6, strerror(errno));
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) != 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	/* Linux 4.15; without it, sources are left to the kernel. */
	if (family == AF_INET6)
		q.pktinfo6 = setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &on,
		                 sizeof(on)) == 0;
	return fd;
}

static void
close_all(void)
{
	if (q.nl != NULL)
		mnl_socket_close(q.nl);
	q.nl = NULL;
	if (q.fd4 >= 0)
		close(q.fd4);
	if (q.fd6 >= 0)
		close(q.fd6);
	q.fd4 = q.fd6 = -1;
	free(q.rx);
	free(q.slots);
	free(q.vbuf);
	q.rx = NULL;
	q.slots = NULL;
	q.spare = NULL;
	q.piece = NULL;

	q.vbuf = NULL;
}

int
gw_nfq_start(struct ev_loop *loop, const struct gw_nfq_conf *conf, char *err,
    size_t errcap)
{
	int sz = RCVBUF_BYTES, fd, fl;

	if (q.running) {
		(void)snprintf(err, errcap, "packet: already started");
		return -1;
	}
	if (conf->queue > 65535) {
		(void)snprintf(
		    err, errcap, "packet: queue %u: not 0..65535", conf->queue);
		return -1;
	}
	memset(&q.st, 0, sizeof(q.st));
	q.conf = *conf;
	/* raw_send_hdrinc (net/ipv4/raw.c) writes a fresh Identification
	 * into every packet with 0, so fragments of one datagram whose
	 * IPv6 Identification ends in 16 zero bits would each get their
	 * own: nat/xlat.h ident_nonzero keeps them together. */
	q.conf.xlat.ident_nonzero = 1;
	q.naccept = 0;
	q.have_drop = 0;
	q.rx = malloc((size_t)BATCH * MSG_ROOM);
	q.slots = calloc(BATCH + 2, sizeof(*q.slots));
	q.spare = q.slots + BATCH;
	q.piece = q.slots + BATCH + 1;
	q.vbuf = malloc(VBUF_ROOM);
	if (q.rx == NULL || q.slots == NULL || q.vbuf == NULL) {
		(void)snprintf(err, errcap, "packet: out of memory");
		close_all();
		return -1;
	}
	if ((q.fd4 = raw_socket(AF_INET, err, errcap)) < 0 ||
	    (q.fd6 = raw_socket(AF_INET6, err, errcap)) < 0) {
		close_all();
		return -1;
	}
	if ((q.nl = mnl_socket_open(NETLINK_NETFILTER)) == NULL ||
	    mnl_socket_bind(q.nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		(void)snprintf(err, errcap,
		    "packet: netfilter netlink "
		    "socket: %s",
		    strerror(errno));
		close_all();
		return -1;
	}
	q.portid = mnl_socket_get_portid(q.nl);
	fd = mnl_socket_get_fd(q.nl);
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) != 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	if (cfg_cmd(NFQNL_CFG_CMD_BIND) != 0) {
		(void)snprintf(err, errcap, "packet: bind NFQUEUE %u: %s%s",
		    conf->queue, strerror(errno),
		    errno == EBUSY   ? " (another program reads this queue)"
		    : errno == EPERM ? " (needs CAP_NET_ADMIN)"
		                     : "");
		close_all();
		return -1;
	}
	if (cfg_params() != 0) {
		(void)snprintf(err, errcap, "packet: NFQUEUE %u copy mode: %s",
		    conf->queue, strerror(errno));
		(void)cfg_cmd(NFQNL_CFG_CMD_UNBIND);
		close_all();
		return -1;
	}
	if ((fl = fcntl(fd, F_GETFL)) < 0 ||
	    fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
		(void)snprintf(
		    err, errcap, "packet: fcntl: %s", strerror(errno));
		(void)cfg_cmd(NFQNL_CFG_CMD_UNBIND);
		close_all();
		return -1;
	}
	q.icmp_tokens = GW_NFQ_ICMP_PER_S;
	q.icmp_last = ev_now(loop);
	ev_io_init(&q.io, read_cb, fd, EV_READ);
	ev_io_start(loop, &q.io);
	q.running = 1;
	return 0;
}

void
gw_nfq_reconf(const struct gw_nfq_conf *conf)
{
	unsigned queue = q.conf.queue;

	q.conf = *conf;
	q.conf.queue = queue;
	q.conf.xlat.ident_nonzero = 1; /* as in gw_nfq_start */
}

void
gw_nfq_stop(struct ev_loop *loop)
{
	if (!q.running)
		return;
	ev_io_stop(loop, &q.io);
	/* Answer what we hold before we go. */
	verdicts_flush();
	(void)cfg_cmd(NFQNL_CFG_CMD_UNBIND);
	close_all();
	q.running = 0;
}

int
gw_nfq_running(void)
{
	return q.running;
}

void
gw_nfq_stats(struct gw_nfq_stats *st)
{
	*st = q.st;
}

void
gw_nfq_log_stats(int level)
{
	char line[2048];
	size_t off;
	int n, r;

	n = snprintf(line, sizeof(line),
	    "event=packet_stats queue=%u "
	    "received=%llu reads=%llu sent46=%llu sent64=%llu fragments=%llu "
	    "icmp_sent=%llu icmp_limited=%llu dropped=%llu accepted=%llu "
	    "send_errors=%llu overruns=%llu truncated=%llu",
	    q.conf.queue, (unsigned long long)q.st.received,
	    (unsigned long long)q.st.reads, (unsigned long long)q.st.sent46,
	    (unsigned long long)q.st.sent64, (unsigned long long)q.st.fragments,
	    (unsigned long long)q.st.icmp_sent,
	    (unsigned long long)q.st.icmp_limited,
	    (unsigned long long)q.st.dropped, (unsigned long long)q.st.accepted,
	    (unsigned long long)q.st.send_errors,
	    (unsigned long long)q.st.overruns,
	    (unsigned long long)q.st.truncated);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	off = (size_t)n;
	for (r = 1; r < NAT_XLAT_R_MAX; r++) {
		if (q.st.reason[r] == 0)
			continue;
		n = snprintf(line + off, sizeof(line) - off, " %s=%llu",
		    nat_xlat_reason_name(r),
		    (unsigned long long)q.st.reason[r]);
		if (n < 0 || (size_t)n >= sizeof(line) - off)
			break;
		off += (size_t)n;
	}
	gw_log(level, "%s", line);
}
