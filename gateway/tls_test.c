/*
 * gateway/tls_test.c: gateway/tls.c over socket pairs.
 *
 * A throwaway CA and three certificates are made in memory and written to
 * a temporary directory; both legs run in this process over a
 * non-blocking AF_UNIX socket pair, stepped alternately the way the event
 * loop would step them.
 */
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "gateway/buf.h"
#include "gateway/tls.h"

static char dir[64];

struct pem {
	const char *name; /* file stem */
	const char *cn;
	const char *san; /* "DNS:a,DNS:b"; NULL for the CA */
	int rsa;         /* RSA-2048 instead of P-256 */
};

static EVP_PKEY *ca_key;
static X509 *ca_cert;

static void
path(char *dst, size_t cap, const char *stem, const char *ext)
{
	(void)snprintf(dst, cap, "%s/%s.%s", dir, stem, ext);
}

static void
add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	assert_non_null(e);
	assert_int_equal(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
}

/* Makes a P-256 (or RSA) key and a certificate signed by the CA (or
 * itself). */
static void
make_cert(const struct pem *p, long serial)
{
	char kp[128], cp[128];
	EVP_PKEY *key;
	X509 *x;
	FILE *fp;

	key = p->rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
	assert_non_null(key);
	x = X509_new();
	assert_non_null(x);
	assert_int_equal(X509_set_version(x, 2), 1);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	assert_int_equal(X509_set_pubkey(x, key), 1);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	    (const unsigned char *)p->cn, -1, -1, 0);
	if (p->san == NULL) {
		X509_set_issuer_name(x, X509_get_subject_name(x));
		add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
		assert_true(X509_sign(x, key, EVP_sha256()) > 0);
		ca_key = key;
		ca_cert = x;
	} else {
		X509_set_issuer_name(x, X509_get_subject_name(ca_cert));
		add_ext(x, ca_cert, NID_basic_constraints, "CA:FALSE");
		add_ext(x, ca_cert, NID_subject_alt_name, p->san);
		add_ext(x, ca_cert, NID_ext_key_usage, "serverAuth");
		assert_true(X509_sign(x, ca_key, EVP_sha256()) > 0);
	}
	path(kp, sizeof(kp), p->name, "key");
	path(cp, sizeof(cp), p->name, "crt");
	fp = fopen(kp, "w");
	assert_non_null(fp);
	assert_int_equal(
	    PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL), 1);
	fclose(fp);
	fp = fopen(cp, "w");
	assert_non_null(fp);
	assert_int_equal(PEM_write_X509(fp, x), 1);
	fclose(fp);
	if (p->san != NULL) {
		X509_free(x);
		EVP_PKEY_free(key);
	}
}

static int
setup(void **state)
{
	static const struct pem pems[] = {
	    {"ca", "smtp64 test CA", NULL, 0},
	    {"gw", "gw.example.net", "DNS:gw.example.net", 0},
	    {"other", "mx.example.org", "DNS:mx.example.org,DNS:*.example.org",
	        0},
	    {"gw2", "gw.example.net", "DNS:gw.example.net", 0},
	    {"gwrsa", "gw.example.net", "DNS:gw.example.net", 1},
	};
	size_t i;

	(void)state;
	(void)snprintf(dir, sizeof(dir), "/tmp/smtp64-tlstest.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	for (i = 0; i < sizeof(pems) / sizeof(pems[0]); i++)
		make_cert(&pems[i], (long)i + 1);
	return 0;
}

static int
teardown(void **state)
{
	static const char *const stems[] = {
	    "ca", "gw", "other", "gw2", "gwrsa"};
	char p[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(stems) / sizeof(stems[0]); i++) {
		path(p, sizeof(p), stems[i], "key");
		unlink(p);
		path(p, sizeof(p), stems[i], "crt");
		unlink(p);
	}
	rmdir(dir);
	X509_free(ca_cert);
	EVP_PKEY_free(ca_key);
	return 0;
}

/* Loads certificate STEM; returns its index. */
static int
add(struct gw_tls *t, const char *stem)
{
	char cp[128], kp[128], err[256];
	int idx;

	path(cp, sizeof(cp), stem, "crt");
	path(kp, sizeof(kp), stem, "key");
	idx = gw_tls_add_cert(t, cp, kp, err, sizeof(err));
	if (idx < 0)
		fail_msg("%s: %s", stem, err);
	return idx;
}

struct pair {
	int fd[2];             /* 0: client side (ours, accepting) */
	struct gw_tls_leg srv; /* leg towards "the client": TLS server */
	struct gw_tls_leg cli; /* leg towards "the server": TLS client */
};

static void
pair_open(struct pair *p)
{
	assert_int_equal(
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p->fd), 0);
	gw_tls_leg_init(&p->srv, p->fd[0]);
	gw_tls_leg_init(&p->cli, p->fd[1]);
}

static void
pair_close(struct pair *p)
{
	gw_tls_leg_free(&p->srv);
	gw_tls_leg_free(&p->cli);
	close(p->fd[0]);
	close(p->fd[1]);
}

/* Steps both handshakes until neither is in progress; returns the
 * client side's result, the server side's in *srv_rc. */
static enum gw_tls_rc
handshake(struct pair *p, enum gw_tls_rc *srv_rc, char *err, size_t cap)
{
	enum gw_tls_rc a = GW_TLS_AGAIN, b = GW_TLS_AGAIN;
	char e2[256];
	int i;

	err[0] = '\0';
	for (i = 0; i < 100 && (a == GW_TLS_AGAIN || b == GW_TLS_AGAIN); i++) {
		if (a == GW_TLS_AGAIN)
			a = gw_tls_handshake(&p->cli, err, cap);
		if (b == GW_TLS_AGAIN)
			b = gw_tls_handshake(&p->srv, e2, sizeof(e2));
		if (a == GW_TLS_AGAIN)
			assert_int_not_equal(p->cli.hs_want, GW_TLS_WANT_NONE);
		/* One side failed: the other sees the alert or the close. */
		if (a < 0 && b == GW_TLS_AGAIN)
			shutdown(p->fd[1], SHUT_RDWR);
		if (b < 0 && a == GW_TLS_AGAIN)
			shutdown(p->fd[0], SHUT_RDWR);
	}
	*srv_rc = b;
	return a;
}

/* Reads exactly n bytes from leg l (the peer has written them). */
static void
read_all(struct gw_tls_leg *l, char *buf, size_t n)
{
	size_t got = 0;
	ssize_t r;
	int i;

	for (i = 0; i < 1000 && got < n; i++) {
		r = gw_tls_read(l, buf + got, n - got);
		if (r > 0)
			got += (size_t)r;
		else
			assert_int_equal(errno, EAGAIN);
	}
	assert_int_equal(got, n);
}

static void
test_load_errors(void **state)
{
	struct gw_tls *t;
	char cp[128], kp[128], err[256];

	(void)state;
	t = gw_tls_new(err, sizeof(err));
	assert_non_null(t);
	assert_int_equal(add(t, "gw"), 0);
	/* The same files are loaded once. */
	assert_int_equal(add(t, "gw"), 0);
	assert_int_equal(add(t, "other"), 1);
	assert_int_equal(gw_tls_cert_count(t), 2);

	/* A key that belongs to another certificate. */
	path(cp, sizeof(cp), "gw", "crt");
	path(kp, sizeof(kp), "other", "key");
	assert_int_equal(gw_tls_add_cert(t, cp, kp, err, sizeof(err)), -1);
	assert_non_null(strstr(err, kp));
	/* A missing file is named. */
	path(cp, sizeof(cp), "missing", "crt");
	assert_int_equal(gw_tls_add_cert(t, cp, kp, err, sizeof(err)), -1);
	assert_non_null(strstr(err, cp));
	/* A key file that is a certificate. */
	path(cp, sizeof(cp), "gw", "crt");
	assert_int_equal(gw_tls_add_cert(t, cp, cp, err, sizeof(err)), -1);
	assert_int_equal(gw_tls_cert_count(t), 2);
	/* A CA file that does not exist. */
	path(cp, sizeof(cp), "missing", "crt");
	assert_int_equal(gw_tls_add_client(t, 1, 0, cp, err, sizeof(err)), -1);
	assert_non_null(strstr(err, cp));

	gw_tls_cert_describe(t, 0, err, sizeof(err));
	assert_non_null(strstr(err, "subject_cn=gw.example.net"));
	assert_non_null(strstr(err, "not_after="));
	gw_tls_cert_describe(t, 7, err, sizeof(err));
	assert_string_equal(err, "cert=?");
	gw_tls_free(t);
}

static void
test_handshake_and_data(void **state)
{
	struct gw_tls *t;
	struct pair p;
	enum gw_tls_rc a, b;
	char err[256], d[256], buf[32];
	int cli;

	(void)state;
	t = gw_tls_new(err, sizeof(err));
	assert_int_equal(add(t, "gw"), 0);
	cli = gw_tls_add_client(t, 0, 0, NULL, err, sizeof(err));
	assert_int_equal(cli, 0);
	/* Opportunistic contexts are shared whatever the CA file. */
	assert_int_equal(
	    gw_tls_add_client(t, 0, 0, "/nonexistent", err, sizeof(err)), 0);
	pair_open(&p);
	gw_tls_describe(&p.srv, d, sizeof(d));
	assert_string_equal(d, "tls=no");
	assert_int_equal(gw_tls_leg_accept(&p.srv, t, 0, err, sizeof(err)), 0);
	assert_int_equal(gw_tls_leg_connect(&p.cli, t, cli, NULL,
	                     "[2001:db8::25]:25", err, sizeof(err)),
	    0);
	a = handshake(&p, &b, err, sizeof(err));
	assert_int_equal(a, GW_TLS_OK);
	assert_int_equal(b, GW_TLS_OK);

	gw_tls_describe(&p.srv, d, sizeof(d));
	assert_non_null(strstr(d, "tls=TLSv1.3 "));
	/* Both ends ours: AES-128-GCM, our first suite (gateway/tls.c). */
	assert_non_null(strstr(d, "cipher=TLS_AES_128_GCM_SHA256"));
	assert_non_null(strstr(d, "resumed=no"));
	assert_non_null(strstr(d, "peer_cert=no")); /* we send none */
	assert_null(strstr(d, "sni="));
	gw_tls_describe(&p.cli, d, sizeof(d));
	assert_non_null(strstr(d, "peer_cert=yes"));
	assert_non_null(strstr(d, "verify=none"));

	assert_int_equal(gw_tls_write(&p.srv, "220 hello\r\n", 11), 11);
	read_all(&p.cli, buf, 11);
	assert_memory_equal(buf, "220 hello\r\n", 11);
	assert_int_equal(gw_tls_write(&p.cli, "EHLO x\r\n", 8), 8);
	read_all(&p.srv, buf, 8);
	assert_memory_equal(buf, "EHLO x\r\n", 8);
	/* Nothing more: EAGAIN, waiting for readability. */
	assert_int_equal(gw_tls_read(&p.srv, buf, sizeof(buf)), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(p.srv.rd_want, GW_TLS_WANT_READ);

	/* close_notify reads as the end of the stream. */
	gw_tls_shutdown(&p.cli);
	assert_int_equal(gw_tls_read(&p.srv, buf, sizeof(buf)), 0);
	pair_close(&p);
	gw_tls_free(t);
}

/* Bytes in the socket's receive queue, not yet read. */
static int
socket_unread(int fd)
{
	int n = -1;

	assert_int_equal(ioctl(fd, FIONREAD, &n), 0);
	return n;
}

static int tickets_seen;

static int
count_ticket_cb(SSL *ssl, SSL_SESSION *sess)
{
	(void)ssl;
	(void)sess;
	tickets_seen++;
	return 0; /* not kept */
}

/*
 * What a client of the listener gets after a full handshake: one TLS 1.3
 * ticket, not OpenSSL's default two (gateway/tls.c), and the suite the
 * listener prefers even when the client lists AES-256 first.
 */
static void
test_listener_tickets(void **state)
{
	struct gw_tls *t;
	struct gw_tls_leg srv;
	SSL_CTX *cctx;
	SSL *c;
	char err[256], d[256], buf[16];
	int fd[2], i, r;

	(void)state;
	t = gw_tls_new(err, sizeof(err));
	assert_int_equal(add(t, "gw"), 0);
	assert_int_equal(
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fd), 0);
	gw_tls_leg_init(&srv, fd[0]);
	assert_int_equal(gw_tls_leg_accept(&srv, t, 0, err, sizeof(err)), 0);
	cctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(cctx);
	assert_int_equal(SSL_CTX_set_ciphersuites(cctx,
	                     "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256"),
	    1);
	SSL_CTX_set_session_cache_mode(cctx, SSL_SESS_CACHE_CLIENT);
	SSL_CTX_sess_set_new_cb(cctx, count_ticket_cb);
	c = SSL_new(cctx);
	assert_non_null(c);
	assert_int_equal(SSL_set_fd(c, fd[1]), 1);
	SSL_set_connect_state(c);
	tickets_seen = 0;
	for (i = 0, r = 0; i < 100 && r != 1; i++) {
		r = SSL_do_handshake(c);
		(void)gw_tls_handshake(&srv, err, sizeof(err));
	}
	assert_int_equal(r, 1);
	for (i = 0; i < 100 && !srv.done; i++)
		(void)gw_tls_handshake(&srv, err, sizeof(err));
	assert_true(srv.done);
	/* The tickets follow the server's Finished; a write of ours and
	 * the client's read of it bring them in. */
	assert_int_equal(gw_tls_write(&srv, "220 ok\r\n", 8), 8);
	for (i = 0, r = 0; i < 100 && r <= 0; i++)
		r = SSL_read(c, buf, sizeof(buf));
	assert_int_equal(r, 8);
	assert_int_equal(tickets_seen, 1);
	gw_tls_describe(&srv, d, sizeof(d));
	assert_non_null(strstr(d, "cipher=TLS_AES_128_GCM_SHA256"));
	SSL_free(c);
	SSL_CTX_free(cctx);
	gw_tls_leg_free(&srv);
	close(fd[0]);
	close(fd[1]);
	gw_tls_free(t);
}

/* A record bigger than the read: the rest waits inside OpenSSL, where
 * poll(2) cannot see it. */
static void
test_pending(void **state)
{
	static char big[8192], got[8192];
	struct gw_tls *t;
	struct pair p;
	enum gw_tls_rc b;
	char err[256];

	(void)state;
	memset(big, 'x', sizeof(big));
	t = gw_tls_new(err, sizeof(err));
	add(t, "gw");
	gw_tls_add_client(t, 0, 0, NULL, err, sizeof(err));
	pair_open(&p);
	gw_tls_leg_accept(&p.srv, t, 0, err, sizeof(err));
	gw_tls_leg_connect(&p.cli, t, 0, NULL, NULL, err, sizeof(err));
	assert_int_equal(handshake(&p, &b, err, sizeof(err)), GW_TLS_OK);
	assert_int_equal(gw_tls_write(&p.srv, big, sizeof(big)), sizeof(big));
	assert_int_equal(gw_tls_pending(&p.cli), 0);
	read_all(&p.cli, got, 100);
	assert_int_equal(gw_tls_pending(&p.cli), 1);
	read_all(&p.cli, got + 100, sizeof(got) - 100);
	assert_memory_equal(big, got, sizeof(big));
	assert_int_equal(gw_tls_pending(&p.cli), 0);
	/* Read ahead: two records arrive together; reading the first
	 * takes both off the socket, so the second is seen only as
	 * pending inside OpenSSL (the watchers rely on that). */
	assert_int_equal(gw_tls_write(&p.srv, "first\r\n", 7), 7);
	assert_int_equal(gw_tls_write(&p.srv, "second\r\n", 8), 8);
	read_all(&p.cli, got, 7);
	assert_memory_equal(got, "first\r\n", 7);
	assert_int_equal(socket_unread(p.fd[1]), 0);
	assert_int_equal(gw_tls_pending(&p.cli), 1);
	read_all(&p.cli, got, 8);
	assert_memory_equal(got, "second\r\n", 8);
	assert_int_equal(gw_tls_pending(&p.cli), 0);
	/* A FIN without close_notify is the end of the stream too. */
	shutdown(p.fd[0], SHUT_WR);
	assert_int_equal(gw_tls_read(&p.cli, got, sizeof(got)), 0);
	pair_close(&p);
	gw_tls_free(t);
}

/* The buffer helpers move bytes in and out of struct gw_buf. */
static void
test_buf_io(void **state)
{
	struct gw_buf in = {0}, out = {0};
	struct gw_tls *t;
	struct pair p;
	enum gw_tls_rc b;
	char err[256];
	int i;

	(void)state;
	t = gw_tls_new(err, sizeof(err));
	add(t, "gw");
	gw_tls_add_client(t, 0, 0, NULL, err, sizeof(err));
	pair_open(&p);
	gw_tls_leg_accept(&p.srv, t, 0, err, sizeof(err));
	gw_tls_leg_connect(&p.cli, t, 0, NULL, NULL, err, sizeof(err));
	assert_int_equal(handshake(&p, &b, err, sizeof(err)), GW_TLS_OK);
	assert_int_equal(gw_buf_alloc(&out, 64), 0);
	assert_int_equal(gw_buf_alloc(&in, 16), 0);
	gw_buf_put(&out, "250-a\r\n250 b\r\n", 14);
	assert_int_equal(gw_tls_buf_write(&p.srv, &out), 14);
	assert_int_equal(out.len, 0);
	for (i = 0; i < 100 && in.len < 14; i++)
		(void)gw_tls_buf_read(&p.cli, &in);
	assert_int_equal(in.len, 14);
	assert_memory_equal(gw_buf_head(&in), "250-a\r\n250 b\r\n", 14);
	/* Full buffer: ENOBUFS, never a short overwrite. */
	gw_buf_put(&in, "xx", 2);
	assert_int_equal(gw_tls_buf_read(&p.cli, &in), -1);
	assert_int_equal(errno, ENOBUFS);
	gw_buf_free(&in);
	gw_buf_free(&out);
	pair_close(&p);
	gw_tls_free(t);
}

/* RFC 6066 §3: the client's SNI picks the certificate that covers it;
 * an unknown name keeps the one chosen by address. */
static void
test_sni(void **state)
{
	static const struct {
		const char *sni;
		const char *want; /* a name the served certificate has */
	} cases[] = {
	    {"mx.example.org", "mx.example.org"},
	    {"relay.example.org", "mx.example.org"}, /* wildcard */
	    {"gw.example.net", "gw.example.net"},
	    {"unknown.example.com", "gw.example.net"},
	    {NULL, "gw.example.net"},
	};
	struct gw_tls *t;
	struct pair p;
	enum gw_tls_rc b;
	char err[256], d[256];
	size_t i;
	X509 *x;

	(void)state;
	t = gw_tls_new(err, sizeof(err));
	assert_int_equal(add(t, "gw"), 0);
	assert_int_equal(add(t, "other"), 1);
	gw_tls_add_client(t, 0, 0, NULL, err, sizeof(err));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		pair_open(&p);
		gw_tls_leg_accept(&p.srv, t, 0, err, sizeof(err));
		gw_tls_leg_connect(
		    &p.cli, t, 0, cases[i].sni, NULL, err, sizeof(err));
		assert_int_equal(
		    handshake(&p, &b, err, sizeof(err)), GW_TLS_OK);
		assert_int_equal(b, GW_TLS_OK);
		x = SSL_get0_peer_certificate(p.cli.ssl);
		assert_non_null(x);
		if (X509_check_host(x, cases[i].want, 0, 0, NULL) != 1)
			fail_msg("sni %s: served the wrong certificate",
			    cases[i].sni ? cases[i].sni : "(none)");
		gw_tls_describe(&p.srv, d, sizeof(d));
		if (cases[i].sni != NULL)
			assert_non_null(strstr(d, cases[i].sni));
		pair_close(&p);
	}
	gw_tls_free(t);
}

/*
 * Connects once to the same upstream: the client side from t, the server
 * side from srv (another struct gw_tls has other ticket keys, like
 * another server).  tickets >= 0: how many tickets the server issues
 * (RFC 8446 §4.6.1; OpenSSL's default is 2 after a full handshake, 1
 * after a resumed one; Postfix 3.7 issues none after a resumed one).
 * life_s > 0: the ticket lifetime it states.  Returns 1 if it resumed.
 */
static int
session_with(struct gw_tls *t, struct gw_tls *srv, int tickets, long life_s,
    int cli, const char *name, const char *peer)
{
	struct pair p;
	enum gw_tls_rc b;
	char err[256], d[256], buf[8];
	SSL_CTX *sctx;
	long old_life = 0;
	int resumed;

	pair_open(&p);
	assert_int_equal(
	    gw_tls_leg_accept(&p.srv, srv, 0, err, sizeof(err)), 0);
	if (tickets >= 0)
		assert_int_equal(
		    SSL_set_num_tickets(p.srv.ssl, (size_t)tickets), 1);
	sctx = SSL_get_SSL_CTX(p.srv.ssl);
	if (life_s > 0)
		old_life = SSL_CTX_set_timeout(sctx, life_s);
	assert_int_equal(
	    gw_tls_leg_connect(&p.cli, t, cli, name, peer, err, sizeof(err)),
	    0);
	if (handshake(&p, &b, err, sizeof(err)) != GW_TLS_OK)
		fail_msg("handshake: %s", err);
	assert_int_equal(b, GW_TLS_OK);
	if (life_s > 0)
		(void)SSL_CTX_set_timeout(sctx, old_life);
	/* TLS 1.3 tickets arrive after the handshake (RFC 8446 §4.6.1):
	 * the client reads them with the first data. */
	assert_int_equal(gw_tls_write(&p.srv, "220 x\r\n", 7), 7);
	read_all(&p.cli, buf, 7);
	gw_tls_describe(&p.cli, d, sizeof(d));
	resumed = strstr(d, "resumed=yes") != NULL;
	gw_tls_describe(&p.srv, d, sizeof(d));
	assert_int_equal(resumed, strstr(d, "resumed=yes") != NULL);
	gw_tls_shutdown(&p.cli);
	gw_tls_shutdown(&p.srv);
	pair_close(&p);
	return resumed;
}

/* Connects once to the same upstream; returns 1 if it resumed. */
static int
one_session(struct gw_tls *t, int cli, const char *name, const char *peer)
{
	return session_with(t, t, -1, 0, cli, name, peer);
}

/*
 * A server that issues tickets after a full handshake only (Postfix 3.7):
 * the session is reused, so every later connection resumes; a server
 * that does not resume it (other ticket keys) gets a full handshake and
 * its new ticket replaces the refused one; a ticket past the lifetime
 * the server stated is never offered.
 */
static void
test_ticket_reuse(void **state)
{
	static const char *const peer = "[2001:db8::25]:25";
	struct gw_tls *t, *other;
	char err[256];
	int i;

	(void)state;
	t = gw_tls_new(err, sizeof(err));
	other = gw_tls_new(err, sizeof(err));
	add(t, "gw");
	add(other, "gw");
	gw_tls_add_client(t, 0, 0, NULL, err, sizeof(err));
	/* One ticket after the full handshake, none after. */
	assert_int_equal(session_with(t, t, 1, 0, 0, NULL, peer), 0);
	for (i = 0; i < 6; i++)
		if (session_with(t, t, 0, 0, 0, NULL, peer) != 1)
			fail_msg(
			    "session %d after the first did not resume", i + 1);
	/* Another server behind the same address: full handshake, its
	 * ticket is kept, ours dropped; then it resumes. */
	assert_int_equal(session_with(t, other, 1, 0, 0, NULL, peer), 0);
	assert_int_equal(session_with(t, other, 0, 0, 0, NULL, peer), 1);
	assert_int_equal(session_with(t, other, 0, 0, 0, NULL, peer), 1);
	/* RFC 8446 §4.6.1: a ticket is not used past its lifetime. */
	assert_int_equal(
	    session_with(t, t, 1, 1, 0, NULL, "198.51.100.25:25"), 0);
	assert_int_equal(
	    session_with(t, t, 0, 0, 0, NULL, "198.51.100.25:25"), 1);
	(void)sleep(2);
	assert_int_equal(
	    session_with(t, t, 0, 0, 0, NULL, "198.51.100.25:25"), 0);
	gw_tls_free(other);
	gw_tls_free(t);
}

static void
test_resumption(void **state)
{
	struct gw_tls *t;
	char err[256];
	int i;

	(void)state;
	t = gw_tls_new(err, sizeof(err));
	add(t, "gw");
	gw_tls_add_client(t, 0, 0, NULL, err, sizeof(err));
	assert_int_equal(one_session(t, 0, NULL, "[2001:db8::25]:25"), 0);
	assert_int_equal(one_session(t, 0, NULL, "[2001:db8::25]:25"), 1);
	/* Another upstream address has its own (empty) entry. */
	assert_int_equal(one_session(t, 0, NULL, "198.51.100.25:25"), 0);
	assert_int_equal(one_session(t, 0, NULL, "[2001:db8::25]:25"), 1);
	/* No key, no cache. */
	assert_int_equal(one_session(t, 0, NULL, NULL), 0);
	assert_int_equal(one_session(t, 0, NULL, NULL), 0);
	/* Each resumption brings a new ticket: every later session to the
	 * same address resumes, one ticket each. */
	for (i = 0; i < 4; i++)
		assert_int_equal(
		    one_session(t, 0, NULL, "[2001:db8::25]:25"), 1);
	/* A server name is part of the key. */
	assert_int_equal(
	    one_session(t, 0, "gw.example.net", "[2001:db8::25]:25"), 0);
	assert_int_equal(
	    one_session(t, 0, "gw.example.net", "[2001:db8::25]:25"), 1);
	gw_tls_free(t);
	gw_tls_free(NULL);
}

/* The key type of the certificate a client restricted to sigalgs (NULL:
 * OpenSSL's default list) gets from certificate 0 of t. */
static int
served_type(struct gw_tls *t, const char *sigalgs)
{
	struct pair p;
	enum gw_tls_rc b;
	char err[256];
	X509 *x;
	int type;

	pair_open(&p);
	assert_int_equal(gw_tls_leg_accept(&p.srv, t, 0, err, sizeof(err)), 0);
	assert_int_equal(
	    gw_tls_leg_connect(&p.cli, t, 0, NULL, NULL, err, sizeof(err)), 0);
	if (sigalgs != NULL)
		assert_int_equal(SSL_set1_sigalgs_list(p.cli.ssl, sigalgs), 1);
	if (handshake(&p, &b, err, sizeof(err)) != GW_TLS_OK)
		fail_msg("handshake (%s): %s", sigalgs ? sigalgs : "-", err);
	x = SSL_get0_peer_certificate(p.cli.ssl);
	assert_non_null(x);
	type = EVP_PKEY_get_base_id(X509_get0_pubkey(x));
	pair_close(&p);
	return type;
}

/*
 * An RSA and an ECDSA certificate side by side (RFC 8446 §4.2.3): a client
 * that accepts only RSA signatures gets the RSA one, one that accepts
 * only ECDSA the ECDSA one; two of one key type are refused.
 */
static void
test_two_certs(void **state)
{
	char c1[128], k1[128], c2[128], k2[128], err[256];
	struct gw_tls *t;
	int idx;

	(void)state;
	path(c1, sizeof(c1), "gwrsa", "crt");
	path(k1, sizeof(k1), "gwrsa", "key");
	path(c2, sizeof(c2), "gw", "crt");
	path(k2, sizeof(k2), "gw", "key");
	t = gw_tls_new(err, sizeof(err));
	idx = gw_tls_add_cert_pair(t, c1, k1, c2, k2, err, sizeof(err));
	if (idx != 0)
		fail_msg("two certificates: %s", err);
	/* Loaded once: the same four files give the same context. */
	assert_int_equal(
	    gw_tls_add_cert_pair(t, c1, k1, c2, k2, err, sizeof(err)), 0);
	assert_int_equal(gw_tls_add_cert(t, c1, k1, err, sizeof(err)), 1);
	assert_int_equal(gw_tls_add_client(t, 0, 0, NULL, err, sizeof(err)), 0);
	assert_int_equal(
	    served_type(t, "RSA-PSS+SHA256:RSA+SHA256"), EVP_PKEY_RSA);
	assert_int_equal(served_type(t, "ECDSA+SHA256"), EVP_PKEY_EC);
	/* OpenSSL's own list starts with ECDSA. */
	assert_int_equal(served_type(t, NULL), EVP_PKEY_EC);
	/* Same key type twice; a certificate without its key. */
	path(c1, sizeof(c1), "gw2", "crt");
	path(k1, sizeof(k1), "gw2", "key");
	assert_int_equal(
	    gw_tls_add_cert_pair(t, c1, k1, c2, k2, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "same key type"));
	assert_int_equal(
	    gw_tls_add_cert_pair(t, c1, k1, c2, NULL, err, sizeof(err)), -1);
	gw_tls_free(t);
}

static void
test_verify(void **state)
{
	struct gw_tls *t;
	struct pair p;
	enum gw_tls_rc a, b;
	char err[256], d[256], ca[128];
	int v;

	(void)state;
	path(ca, sizeof(ca), "ca", "crt");
	t = gw_tls_new(err, sizeof(err));
	add(t, "gw");
	v = gw_tls_add_client(t, 1, 0, ca, err, sizeof(err));
	assert_int_equal(v, 0);
	assert_int_equal(gw_tls_add_client(t, 1, 0, ca, err, sizeof(err)), 0);
	assert_int_equal(gw_tls_add_client(t, 0, 0, NULL, err, sizeof(err)), 1);

	/* The right name: verified. */
	pair_open(&p);
	gw_tls_leg_accept(&p.srv, t, 0, err, sizeof(err));
	assert_int_equal(gw_tls_leg_connect(&p.cli, t, v, "gw.example.net",
	                     "[2001:db8::25]:25", err, sizeof(err)),
	    0);
	a = handshake(&p, &b, err, sizeof(err));
	if (a != GW_TLS_OK)
		fail_msg("verify: %s", err);
	gw_tls_describe(&p.cli, d, sizeof(d));
	assert_non_null(strstr(d, "verify=ok"));
	pair_close(&p);

	/* RFC 6125: another name fails, and says why. */
	pair_open(&p);
	gw_tls_leg_accept(&p.srv, t, 0, err, sizeof(err));
	gw_tls_leg_connect(&p.cli, t, v, "mx.example.org", "[2001:db8::25]:25",
	    err, sizeof(err));
	a = handshake(&p, &b, err, sizeof(err));
	assert_int_equal(a, GW_TLS_FAIL_VERIFY);
	assert_non_null(strstr(err, "certificate verify failed"));
	assert_int_not_equal(b, GW_TLS_OK);
	pair_close(&p);

	/* verify without a name to check is refused up front. */
	pair_open(&p);
	assert_int_equal(
	    gw_tls_leg_connect(&p.cli, t, v, NULL, "x", err, sizeof(err)), -1);
	pair_close(&p);
	gw_tls_free(t);

	/* Another CA: the chain fails. */
	t = gw_tls_new(err, sizeof(err));
	add(t, "gw");
	path(ca, sizeof(ca), "other", "crt");
	v = gw_tls_add_client(t, 1, 0, ca, err, sizeof(err));
	pair_open(&p);
	gw_tls_leg_accept(&p.srv, t, 0, err, sizeof(err));
	gw_tls_leg_connect(
	    &p.cli, t, v, "gw.example.net", NULL, err, sizeof(err));
	assert_int_equal(
	    handshake(&p, &b, err, sizeof(err)), GW_TLS_FAIL_VERIFY);
	pair_close(&p);
	gw_tls_free(t);
}

/* Plain text where a ClientHello belongs (a client pipelining after
 * STARTTLS, RFC 3207 §4): the handshake fails, nothing is read as data. */
static void
test_garbage(void **state)
{
	struct gw_tls *t;
	struct pair p;
	char err[256], buf[64];
	enum gw_tls_rc rc = GW_TLS_AGAIN;
	int i;

	(void)state;
	t = gw_tls_new(err, sizeof(err));
	add(t, "gw");
	pair_open(&p);
	gw_tls_leg_accept(&p.srv, t, 0, err, sizeof(err));
	assert_int_equal(
	    write(p.fd[1], "MAIL FROM:<a@example.net>\r\n", 27), 27);
	for (i = 0; i < 10 && rc == GW_TLS_AGAIN; i++)
		rc = gw_tls_handshake(&p.srv, err, sizeof(err));
	assert_int_equal(rc, GW_TLS_FAIL);
	assert_true(strlen(err) > 0);
	assert_int_equal(gw_tls_read(&p.srv, buf, sizeof(buf)), -1);
	pair_close(&p);

	/* The peer closes during the handshake. */
	pair_open(&p);
	gw_tls_leg_accept(&p.srv, t, 0, err, sizeof(err));
	rc = gw_tls_handshake(&p.srv, err, sizeof(err));
	assert_int_equal(rc, GW_TLS_AGAIN);
	assert_int_equal(p.srv.hs_want, GW_TLS_WANT_READ);
	shutdown(p.fd[1], SHUT_WR);
	rc = gw_tls_handshake(&p.srv, err, sizeof(err));
	assert_int_equal(rc, GW_TLS_FAIL);
	pair_close(&p);
	gw_tls_free(t);
}

/* RFC 8996: TLS 1.1 is refused; TLS 1.2 still works. */
/* The opportunistic upstream accepts what a "may" MTA accepts (a TLS
 * 1.0-only server, an anonymous-only one); the strict one does not. */
static void
test_legacy_client(void **state)
{
	struct gw_tls *t;
	struct pair p;
	enum gw_tls_rc a, b;
	char err[256], d[256];
	int strict, legacy, i;

	(void)state;
	t = gw_tls_new(err, sizeof(err));
	add(t, "gw");
	strict = gw_tls_add_client(t, 0, 0, NULL, err, sizeof(err));
	legacy = gw_tls_add_client(t, 0, 1, NULL, err, sizeof(err));
	assert_true(strict >= 0 && legacy >= 0 && strict != legacy);
	/* Shared like the others; verify is never legacy. */
	assert_int_equal(
	    gw_tls_add_client(t, 0, 1, NULL, err, sizeof(err)), legacy);
	for (i = 0; i < 4; i++) {
		pair_open(&p);
		assert_int_equal(
		    gw_tls_leg_accept(&p.srv, t, 0, err, sizeof(err)), 0);
		/* The server side as an old or anonymous-only server. */
		SSL_set_security_level(p.srv.ssl, 0);
		if (i < 2) {
			SSL_set_min_proto_version(p.srv.ssl, TLS1_VERSION);
			SSL_set_max_proto_version(p.srv.ssl, TLS1_VERSION);
		} else {
			SSL_set_max_proto_version(p.srv.ssl, TLS1_2_VERSION);
			assert_int_equal(
			    SSL_set_cipher_list(p.srv.ssl, "aNULL:@SECLEVEL=0"),
			    1);
		}
		assert_int_equal(
		    gw_tls_leg_connect(&p.cli, t, i % 2 ? legacy : strict, NULL,
		        NULL, err, sizeof(err)),
		    0);
		a = handshake(&p, &b, err, sizeof(err));
		if (i % 2 == 0) {
			assert_int_equal(a, GW_TLS_FAIL);
		} else {
			assert_int_equal(a, GW_TLS_OK);
			assert_int_equal(b, GW_TLS_OK);
			gw_tls_describe(&p.cli, d, sizeof(d));
			if (i == 1)
				assert_non_null(strstr(d, "tls=TLSv1 "));
			else
				assert_non_null(strstr(d, "peer_cert=no"));
		}
		pair_close(&p);
	}
	gw_tls_free(t);
}

static void
test_versions(void **state)
{
	struct gw_tls *t;
	struct pair p;
	SSL_CTX *ctx;
	SSL *ssl;
	char err[256], d[256];
	enum gw_tls_rc b;
	int i, r = -1;

	(void)state;
	t = gw_tls_new(err, sizeof(err));
	add(t, "gw");
	for (i = 0; i < 2; i++) {
		ctx = SSL_CTX_new(TLS_client_method());
		assert_non_null(ctx);
		SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0");
		SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION);
		SSL_CTX_set_max_proto_version(
		    ctx, i == 0 ? TLS1_1_VERSION : TLS1_2_VERSION);
		pair_open(&p);
		gw_tls_leg_accept(&p.srv, t, 0, err, sizeof(err));
		ssl = SSL_new(ctx);
		SSL_set_fd(ssl, p.fd[1]);
		SSL_set_connect_state(ssl);
		b = GW_TLS_AGAIN;
		for (int k = 0; k < 50; k++) {
			r = SSL_do_handshake(ssl);
			if (b == GW_TLS_AGAIN)
				b = gw_tls_handshake(&p.srv, err, sizeof(err));
			if (r == 1 && b != GW_TLS_AGAIN)
				break;
			if (r <= 0 &&
			    SSL_get_error(ssl, r) != SSL_ERROR_WANT_READ &&
			    SSL_get_error(ssl, r) != SSL_ERROR_WANT_WRITE &&
			    b != GW_TLS_AGAIN)
				break;
		}
		if (i == 0) {
			assert_int_equal(b, GW_TLS_FAIL);
		} else {
			assert_int_equal(b, GW_TLS_OK);
			assert_int_equal(r, 1);
			gw_tls_describe(&p.srv, d, sizeof(d));
			assert_non_null(strstr(d, "tls=TLSv1.2 "));
		}
		SSL_free(ssl);
		SSL_CTX_free(ctx);
		pair_close(&p);
	}
	gw_tls_free(t);
}

/* A clear-text leg behaves as read(2) and send(2). */
static void
test_clear_leg(void **state)
{
	struct pair p;
	char buf[16];

	(void)state;
	pair_open(&p);
	assert_int_equal(gw_tls_read(&p.srv, buf, sizeof(buf)), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(p.srv.rd_want, GW_TLS_WANT_READ);
	assert_int_equal(gw_tls_write(&p.cli, "NOOP\r\n", 6), 6);
	assert_int_equal(gw_tls_read(&p.srv, buf, sizeof(buf)), 6);
	assert_int_equal(p.srv.rd_want, GW_TLS_WANT_NONE);
	assert_int_equal(gw_tls_pending(&p.srv), 0);
	close(p.fd[1]);
	p.fd[1] = -1;
	assert_int_equal(gw_tls_read(&p.srv, buf, sizeof(buf)), 0);
	assert_int_equal(gw_tls_write(&p.srv, "x", 1), -1);
	assert_int_equal(errno, EPIPE);
	pair_close(&p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_load_errors),
	    cmocka_unit_test(test_handshake_and_data),
	    cmocka_unit_test(test_pending),
	    cmocka_unit_test(test_listener_tickets),
	    cmocka_unit_test(test_buf_io),
	    cmocka_unit_test(test_sni),
	    cmocka_unit_test(test_resumption),
	    cmocka_unit_test(test_ticket_reuse),
	    cmocka_unit_test(test_two_certs),
	    cmocka_unit_test(test_verify),
	    cmocka_unit_test(test_garbage),
	    cmocka_unit_test(test_versions),
	    cmocka_unit_test(test_legacy_client),
	    cmocka_unit_test(test_clear_leg),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
