/*
 * gateway/tls.c: TLS contexts and non-blocking TLS legs (see tls.h).
 */
#include <sys/socket.h>
#include <sys/types.h>

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "gateway/buf.h"
#include "gateway/log.h"
#include "gateway/tls.h"

#define PATH_CAP 256
/* Server-side session cache (TLS 1.2 clients without tickets): bounded
 * so that a flood of handshakes cannot grow it. */
#define SCACHE_MAX 4096
/* Client-side cache: the last sessions of each upstream destination, in
 * a fixed table (a collision replaces the older entry).  Two per
 * destination: the newest is offered, the other is kept in case the
 * newest is refused.  A session is reused until it expires (its ticket
 * lifetime, RFC 8446 §4.6.1, or the server's certificate), or until a
 * server does not resume it; see resume_from for why a TLS 1.3 ticket
 * may be offered more than once here. */
#define CCACHE_SLOTS 256
#define CCACHE_DEPTH 2
/* RFC 8446 §4.6.1: "Clients MUST NOT cache tickets for longer than 7
 * days, regardless of the ticket_lifetime"; the same cap for TLS 1.2. */
#define CCACHE_MAX_AGE_S (7L * 24 * 3600)
/* What the gateway says its TLS session IDs belong to (RFC 5246 §7.4.1.2
 * sessions are resumed only within the same context). */
#define SID_CTX "smtp64d"

struct gw_tls_cert {
	SSL_CTX *ctx;
	char cert_file[PATH_CAP];
	char key_file[PATH_CAP];
	char cert2_file[PATH_CAP]; /* "" when none */
	char key2_file[PATH_CAP];
};

#define KEY_MAX 320 /* "[address]:port/server.name" */

struct ccache_slot {
	char key[KEY_MAX];
	size_t keylen;
	SSL_SESSION *sess[CCACHE_DEPTH]; /* newest first */
};

struct gw_tls_client {
	SSL_CTX *ctx;
	int verify;
	int legacy; /* TLS 1.0 and up, the cipher floor of a "may" MTA */
	char ca_file[PATH_CAP]; /* "" for the default store */
	struct ccache_slot slot[CCACHE_SLOTS];
};

struct gw_tls {
	struct gw_tls_cert *cert;
	size_t ncert;
	struct gw_tls_client **cli;
	size_t ncli;
};

/* The leg of an SSL object, for the new-session callback. */
static int leg_index = -1;

/* An upstream leg's own state (tls.h): the client context and session
 * cache it uses, the names that key that cache, and the session offered
 * until the handshake ends.  One allocation with the copy of peer. */
struct gw_tls_up {
	struct gw_tls_client *cli;
	const char *name;               /* SNI and name checked; the caller's */
	struct ssl_session_st *offered; /* a reference, until the handshake
	                                   ends */
	int verify;                     /* the certificate must verify */
	int has_peer; /* peer keys the cache (else not cached) */
	char peer[];  /* the upstream address, a copy */
};

/* First error of OpenSSL's queue (or fallback) into err; clears it. */
static void
ssl_err(char *err, size_t errcap, const char *what, const char *fallback)
{
	unsigned long e;
	char buf[256];

	e = ERR_get_error();
	if (e != 0 && ERR_reason_error_string(e) != NULL)
		(void)snprintf(
		    buf, sizeof(buf), "%s", ERR_reason_error_string(e));
	else if (e != 0)
		ERR_error_string_n(e, buf, sizeof(buf));
	else
		(void)snprintf(buf, sizeof(buf), "%s", fallback);
	ERR_clear_error();
	if (what != NULL)
		(void)snprintf(err, errcap, "%s: %s", what, buf);
	else
		(void)snprintf(err, errcap, "%s", buf);
}

static int
copy_path(char *dst, const char *src)
{
	size_t n = strlen(src);

	if (n >= PATH_CAP)
		return -1;
	memcpy(dst, src, n + 1);
	return 0;
}

#define TLS13_SUITES                                                           \
	"TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:"                 \
	"TLS_AES_256_GCM_SHA384"

/* Settings both kinds of context share. */
static int
ctx_common(SSL_CTX *ctx)
{
	/* RFC 8996: TLS 1.0 and 1.1 are deprecated; RFC 7525 §3.1. */
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1)
		return -1;
	/* No renegotiation (a client could make us redo handshakes at
	 * will), no compression (RFC 7457 §2.6, CRIME).  A peer that
	 * closes without close_notify reads as the end of the stream: SMTP
	 * has its own end (QUIT, and "." for a message), so truncation
	 * cannot pass a message off as complete. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	                             SSL_OP_NO_COMPRESSION |
	                             SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* Our buffers compact (the pending bytes may move between retries)
	 * and a write may go out in parts; idle legs return their record
	 * buffers. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	                          SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
	                          SSL_MODE_RELEASE_BUFFERS);
	/* Read what the socket holds in one call, not a record's 5-byte
	 * header and then its body: half the read(2)s of a session.  What
	 * is read ahead stays inside OpenSSL, and gw_tls_pending (which
	 * the watchers and RFC 2920's early check ask) counts it. */
	SSL_CTX_set_read_ahead(ctx, 1);
	/* TLS 1.3 suites, AES-128-GCM first (RFC 8446 §9.1's mandatory
	 * one): the key exchange (X25519, P-256) gives 128-bit security,
	 * which AES-256 does not raise, and its SHA-256 key schedule costs
	 * less than AES-256's SHA-384 (two handshakes a session here).
	 * The other two stay for peers that want them. */
	if (SSL_CTX_set_ciphersuites(ctx, TLS13_SUITES) != 1)
		return -1;
	return 0;
}

struct gw_tls *
gw_tls_new(char *err, size_t errcap)
{
	struct gw_tls *t;

	if (leg_index < 0) {
		leg_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
		if (leg_index < 0) {
			ssl_err(err, errcap, "tls", "no ex_data index");
			return NULL;
		}
	}
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		(void)snprintf(err, errcap, "tls: out of memory");
		return NULL;
	}
	return t;
}

static void
client_free(struct gw_tls_client *c)
{
	size_t i, k;

	if (c == NULL)
		return;
	for (i = 0; i < CCACHE_SLOTS; i++)
		for (k = 0; k < CCACHE_DEPTH; k++)
			SSL_SESSION_free(c->slot[i].sess[k]);
	SSL_CTX_free(c->ctx);
	free(c);
}

void
gw_tls_free(struct gw_tls *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->ncert; i++)
		SSL_CTX_free(t->cert[i].ctx);
	for (i = 0; i < t->ncli; i++)
		client_free(t->cli[i]);
	free(t->cert);
	free(t->cli);
	free(t);
}

size_t
gw_tls_cert_count(const struct gw_tls *t)
{
	return t->ncert;
}

/* The client asked for a certificate we were not configured for. */
static int
cert_matches(SSL_CTX *ctx, const char *name)
{
	X509 *x = SSL_CTX_get0_certificate(ctx);

	/* RFC 6125 §6.4: DNS names of the certificate, wildcards only as
	 * a whole left-most label. */
	return x != NULL &&
	       X509_check_host(x, name, strlen(name),
	           X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL) == 1;
}

/*
 * RFC 6066 §3: the client names the host it wants.  The certificate
 * chosen by the local address stays if it covers the name, or if no
 * loaded certificate does (the server may go on without one, and MTAs
 * rarely check names anyway); else the first loaded one that does.
 */
static int
sni_cb(SSL *ssl, int *alert, void *arg)
{
	struct gw_tls *t = arg;
	const char *name;
	size_t i;

	(void)alert;
	name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	if (name == NULL || t == NULL)
		return SSL_TLSEXT_ERR_NOACK;
	if (cert_matches(SSL_get_SSL_CTX(ssl), name))
		return SSL_TLSEXT_ERR_OK;
	for (i = 0; i < t->ncert; i++) {
		if (cert_matches(t->cert[i].ctx, name)) {
			if (SSL_set_SSL_CTX(ssl, t->cert[i].ctx) == NULL)
				return SSL_TLSEXT_ERR_ALERT_FATAL;
			return SSL_TLSEXT_ERR_OK;
		}
	}
	return SSL_TLSEXT_ERR_OK;
}

/* We ask for the client's certificate only to log whether it offered
 * one; any certificate, or none, is accepted. */
static int
accept_any_cb(int ok, X509_STORE_CTX *store)
{
	(void)ok;
	(void)store;
	return 1;
}

/* Loads one certificate chain and its key into ctx; 0, or -1 with err. */
static int
load_pair(SSL_CTX *ctx, const char *cert_file, const char *key_file, char *err,
    size_t errcap)
{
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		ssl_err(err, errcap, cert_file, "cannot load the certificate");
		return -1;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
		ssl_err(err, errcap, key_file, "cannot load the private key");
		return -1;
	}
	/* Checks the key of the certificate just loaded. */
	if (SSL_CTX_check_private_key(ctx) != 1) {
		ssl_err(err, errcap, key_file,
		    "the key does not match the certificate");
		return -1;
	}
	return 0;
}

/* The key type of ctx's current certificate (EVP_PKEY_RSA, ...). */
static int
cert_type(SSL_CTX *ctx)
{
	X509 *x = SSL_CTX_get0_certificate(ctx);
	EVP_PKEY *k = x != NULL ? X509_get0_pubkey(x) : NULL;

	return k != NULL ? EVP_PKEY_get_base_id(k) : 0;
}

int
gw_tls_add_cert(struct gw_tls *t, const char *cert_file, const char *key_file,
    char *err, size_t errcap)
{
	return gw_tls_add_cert_pair(
	    t, cert_file, key_file, NULL, NULL, err, errcap);
}

int
gw_tls_add_cert_pair(struct gw_tls *t, const char *cert_file,
    const char *key_file, const char *cert2_file, const char *key2_file,
    char *err, size_t errcap)
{
	struct gw_tls_cert *c, *nc;
	const char *c2 = cert2_file != NULL ? cert2_file : "";
	const char *k2 = key2_file != NULL ? key2_file : "";
	SSL_CTX *ctx;
	size_t i;
	int type1;

	if ((c2[0] == '\0') != (k2[0] == '\0')) {
		(void)snprintf(err, errcap,
		    "tls: a second certificate needs "
		    "its key, and the reverse");
		return -1;
	}
	for (i = 0; i < t->ncert; i++)
		if (strcmp(t->cert[i].cert_file, cert_file) == 0 &&
		    strcmp(t->cert[i].key_file, key_file) == 0 &&
		    strcmp(t->cert[i].cert2_file, c2) == 0 &&
		    strcmp(t->cert[i].key2_file, k2) == 0)
			return (int)i;
	if (t->ncert >= INT_MAX) {
		(void)snprintf(err, errcap, "tls: too many certificates");
		return -1;
	}
	nc = realloc(t->cert, (t->ncert + 1) * sizeof(*nc));
	if (nc == NULL) {
		(void)snprintf(err, errcap, "tls: out of memory");
		return -1;
	}
	t->cert = nc;
	c = &t->cert[t->ncert];
	memset(c, 0, sizeof(*c));
	if (copy_path(c->cert_file, cert_file) != 0 ||
	    copy_path(c->key_file, key_file) != 0 ||
	    copy_path(c->cert2_file, c2) != 0 ||
	    copy_path(c->key2_file, k2) != 0) {
		(void)snprintf(err, errcap, "%s: path too long", cert_file);
		return -1;
	}
	ERR_clear_error();
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		ssl_err(err, errcap, "tls", "cannot create a context");
		return -1;
	}
	if (ctx_common(ctx) != 0) {
		ssl_err(err, errcap, "tls", "cannot set the protocol versions");
		goto fail;
	}
	if (load_pair(ctx, cert_file, key_file, err, errcap) != 0)
		goto fail;
	type1 = cert_type(ctx);
	if (c2[0] != '\0') {
		if (load_pair(ctx, c2, k2, err, errcap) != 0)
			goto fail;
		/* OpenSSL keeps one certificate per key type: a second of
		 * the same type would silently replace the first. */
		if (cert_type(ctx) == type1) {
			(void)snprintf(err, errcap,
			    "%s: same key type as %s (want ECDSA beside RSA)",
			    c2, cert_file);
			goto fail;
		}
		/* A current certificate for the log and the SNI match
		 * (OpenSSL's first slot: RSA before ECDSA; both should
		 * carry the same names). */
		if (SSL_CTX_set_current_cert(ctx, SSL_CERT_SET_FIRST) != 1) {
			ssl_err(err, errcap, "tls", "no certificate");
			goto fail;
		}
	}
	/* RFC 3207 §4.1 leaves client certificates optional; we request one
	 * only to tell in the log whether the client offered one. */
	SSL_CTX_set_verify(
	    ctx, SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE, accept_any_cb);
	/* Resumption: session IDs within our own context, and tickets
	 * (OpenSSL's default, keys made per context). */
	if (SSL_CTX_set_session_id_context(ctx, (const unsigned char *)SID_CTX,
	        sizeof(SID_CTX) - 1) != 1) {
		ssl_err(err, errcap, "tls", "cannot set the session context");
		goto fail;
	}
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_sess_set_cache_size(ctx, SCACHE_MAX);
	/* One TLS 1.3 ticket after a full handshake, not OpenSSL's two: an
	 * SMTP client keeps one session per server, and a resumed session
	 * gets a fresh ticket anyway (RFC 8446 §4.6.1).  Our order of the
	 * suites (ctx_common) is the one chosen from. */
	if (SSL_CTX_set_num_tickets(ctx, 1) != 1) {
		ssl_err(err, errcap, "tls", "cannot set the tickets");
		goto fail;
	}
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_tlsext_servername_callback(ctx, sni_cb);
	SSL_CTX_set_tlsext_servername_arg(ctx, t);
	c->ctx = ctx;
	t->ncert++;
	return (int)(t->ncert - 1);
fail:
	SSL_CTX_free(ctx);
	return -1;
}

/* Hash of a cache key (FNV-1a, 32 bits): spreads addresses well enough
 * for a table this small. */
static size_t
key_slot(const char *key, size_t len)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)key[i];
		h *= 16777619u;
	}
	return h % CCACHE_SLOTS;
}

/* The cache key of an upstream leg into key[KEY_MAX]; its length, or 0
 * when the leg is not cached. */
static size_t
leg_key(const struct gw_tls_up *u, char *key)
{
	int n;

	if (!u->has_peer)
		return 0;
	n = snprintf(
	    key, KEY_MAX, "%s/%s", u->peer, u->name != NULL ? u->name : "");
	return n > 0 && n < KEY_MAX ? (size_t)n : 0;
}

/*
 * A new session from the server (at the end of a TLS 1.2 handshake, or
 * each TLS 1.3 ticket, RFC 8446 §4.6.1): kept for the next connection to
 * the same address.  Returns 1 when it keeps the reference.
 */
static int
new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
	struct gw_tls_up *u = SSL_get_ex_data(ssl, leg_index);
	struct ccache_slot *s;
	char key[KEY_MAX];
	size_t k, n;

	if (u == NULL || u->cli == NULL || (n = leg_key(u, key)) == 0)
		return 0;
	if (u->verify && SSL_get_verify_result(ssl) != X509_V_OK)
		return 0;
	s = &u->cli->slot[key_slot(key, n)];
	for (k = 0; k < CCACHE_DEPTH; k++)
		if (s->sess[k] == sess)
			return 0; /* already kept */
	if (s->keylen != n || memcmp(s->key, key, n) != 0) {
		/* Another address had this slot: its sessions go. */
		for (k = 0; k < CCACHE_DEPTH; k++) {
			SSL_SESSION_free(s->sess[k]);
			s->sess[k] = NULL;
		}
		memcpy(s->key, key, n);
		s->keylen = n;
	}
	SSL_SESSION_free(s->sess[CCACHE_DEPTH - 1]);
	for (k = CCACHE_DEPTH - 1; k > 0; k--)
		s->sess[k] = s->sess[k - 1];
	s->sess[0] = sess;
	return 1;
}

/*
 * RFC 7435 §1, RFC 7672 §8.2-like practice of MTAs at security level
 * "may": an unauthenticated channel is better than clear text, so the
 * opportunistic upstream accepts what such an MTA accepts.  TLS 1.0 and
 * up (RFC 8996 deprecates 1.0 and 1.1 for authenticated use; clear text
 * is the alternative here), and Postfix's "medium" cipher grade with
 * anonymous suites last; OpenSSL 3 refuses all of that above security
 * level 0 (SHA-1 signatures, small keys).
 */
#define LEGACY_CIPHERS "aNULL:-aNULL:HIGH:MEDIUM:!eNULL:@SECLEVEL=0"

static int
client_legacy(SSL_CTX *ctx)
{
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(ctx, LEGACY_CIPHERS) != 1)
		return -1;
	return 0;
}

int
gw_tls_add_client(struct gw_tls *t, int verify, int legacy, const char *ca_file,
    char *err, size_t errcap)
{
	struct gw_tls_client *c, **ncli;
	const char *ca = ca_file != NULL ? ca_file : "";
	size_t i;

	verify = verify != 0;
	/* A certificate that must verify gets the strict protocols. */
	legacy = legacy != 0 && !verify;
	for (i = 0; i < t->ncli; i++)
		if (t->cli[i]->verify == verify &&
		    t->cli[i]->legacy == legacy &&
		    (!verify || strcmp(t->cli[i]->ca_file, ca) == 0))
			return (int)i;
	if (t->ncli >= INT_MAX) {
		(void)snprintf(err, errcap, "tls: too many client contexts");
		return -1;
	}
	ncli = realloc(t->cli, (t->ncli + 1) * sizeof(*ncli));
	if (ncli == NULL) {
		(void)snprintf(err, errcap, "tls: out of memory");
		return -1;
	}
	t->cli = ncli;
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		(void)snprintf(err, errcap, "tls: out of memory");
		return -1;
	}
	c->verify = verify;
	c->legacy = legacy;
	if (verify && copy_path(c->ca_file, ca) != 0) {
		(void)snprintf(err, errcap, "%s: path too long", ca);
		free(c);
		return -1;
	}
	ERR_clear_error();
	if ((c->ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		ssl_err(err, errcap, "tls", "cannot create a context");
		goto fail;
	}
	if (ctx_common(c->ctx) != 0 || (legacy && client_legacy(c->ctx) != 0)) {
		ssl_err(err, errcap, "tls", "cannot set the protocol versions");
		goto fail;
	}
	if (verify) {
		if ((ca[0] != '\0'
		            ? SSL_CTX_load_verify_locations(c->ctx, ca, NULL)
		            : SSL_CTX_set_default_verify_paths(c->ctx)) != 1) {
			ssl_err(err, errcap, ca[0] != '\0' ? ca : "tls",
			    "cannot load the CA certificates");
			goto fail;
		}
		SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
	} else {
		/* RFC 7435 §3: opportunistic security encrypts without
		 * authenticating; the chain is still checked, for the log. */
		SSL_CTX_set_verify(c->ctx, SSL_VERIFY_NONE, NULL);
	}
	/* Sessions go to our table only (keyed by upstream address), never
	 * to OpenSSL's internal store. */
	SSL_CTX_set_session_cache_mode(
	    c->ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(c->ctx, new_session_cb);
	t->cli[t->ncli++] = c;
	return (int)(t->ncli - 1);
fail:
	client_free(c);
	return -1;
}

/* ASN1_TIME as "2026-11-28T07:23:04Z" (RFC 3339), "?" if unreadable. */
static void
time_str(const ASN1_TIME *tm, char *dst, size_t cap)
{
	struct tm t;

	if (tm == NULL || ASN1_TIME_to_tm(tm, &t) != 1 ||
	    strftime(dst, cap, "%Y-%m-%dT%H:%M:%SZ", &t) == 0)
		(void)snprintf(dst, cap, "?");
}

char *
gw_tls_cert_describe(const struct gw_tls *t, int idx, char *dst, size_t cap)
{
	char cn[256], esc[256], until[64];
	X509 *x;
	int n;

	if (idx < 0 || (size_t)idx >= t->ncert ||
	    (x = SSL_CTX_get0_certificate(t->cert[idx].ctx)) == NULL) {
		(void)snprintf(dst, cap, "cert=?");
		return dst;
	}
	n = X509_NAME_get_text_by_NID(
	    X509_get_subject_name(x), NID_commonName, cn, sizeof(cn));
	gw_log_escape(esc, sizeof(esc), cn, n > 0 ? (size_t)n : 0);
	time_str(X509_get0_notAfter(x), until, sizeof(until));
	(void)snprintf(dst, cap, "cert=%s subject_cn=%s not_after=%s",
	    t->cert[idx].cert_file, esc, until);
	return dst;
}

void
gw_tls_leg_init(struct gw_tls_leg *l, int fd)
{
	memset(l, 0, sizeof(*l));
	l->fd = fd;
}

int
gw_tls_leg_accept(
    struct gw_tls_leg *l, struct gw_tls *t, int cert, char *err, size_t errcap)
{
	SSL *ssl;

	if (l->ssl != NULL || cert < 0 || (size_t)cert >= t->ncert) {
		(void)snprintf(err, errcap, "tls: no such certificate");
		return -1;
	}
	ERR_clear_error();
	if ((ssl = SSL_new(t->cert[cert].ctx)) == NULL ||
	    SSL_set_fd(ssl, l->fd) != 1) {
		ssl_err(err, errcap, "tls", "cannot create a session");
		SSL_free(ssl);
		return -1;
	}
	SSL_set_accept_state(ssl);
	l->ssl = ssl;
	l->done = 0;
	l->hs_want = GW_TLS_WANT_READ; /* the ClientHello comes first */
	return 0;
}

/*
 * 1 if sess may still be offered at now: resumable, younger than the
 * lifetime the server gave (RFC 8446 §4.6.1 ticket_lifetime, which
 * OpenSSL keeps as the session's timeout; at most 7 days) and, when the
 * server authenticated with a certificate, not older than that
 * certificate's end: a resumed session inherits the authentication of
 * its full handshake (RFC 8446 §2.2), which must not outlive the
 * certificate it rested on.
 */
static int
sess_fresh(SSL_SESSION *sess, time_t now)
{
	long born = (long)SSL_SESSION_get_time(sess);
	long life = (long)SSL_SESSION_get_timeout(sess);
	X509 *x;

	if (!SSL_SESSION_is_resumable(sess))
		return 0;
	if (life <= 0 || life > CCACHE_MAX_AGE_S)
		life = CCACHE_MAX_AGE_S;
	if ((long)now < born || (long)now - born >= life)
		return 0;
	x = SSL_SESSION_get0_peer(sess);
	return x == NULL || X509_cmp_time(X509_get0_notAfter(x), &now) > 0;
}

/* Removes entry k of slot s (its reference goes), keeping the order. */
static void
slot_drop(struct ccache_slot *s, size_t k)
{
	size_t j;

	SSL_SESSION_free(s->sess[k]);
	for (j = k; j + 1 < CCACHE_DEPTH; j++)
		s->sess[j] = s->sess[j + 1];
	s->sess[CCACHE_DEPTH - 1] = NULL;
}

/*
 * Offers the newest fresh session of slot s, and keeps it there: it is
 * offered again to the next connection unless a newer one arrives or the
 * server does not resume it (gw_tls_handshake then forgets it).
 *
 * Reusing a TLS 1.3 ticket departs from RFC 8446 §C.4 ("Clients SHOULD
 * NOT reuse a ticket for multiple connections"), on purpose: its reason
 * is that a reused ticket, sent in clear in the ClientHello, lets a
 * passive observer link connections to one client.  Here the client is
 * the gateway, already linked by its source address and by the EHLO it
 * sends in clear before STARTTLS (RFC 3207 §4), to a server it names by
 * address and SNI; the ticket tells the observer nothing new.  Without
 * reuse, a server that sends no new ticket after a resumed handshake
 * (Postfix 3.7) gets a full handshake every other session.  What reuse
 * does not weaken: each resumed handshake still runs a fresh (EC)DHE
 * exchange (OpenSSL offers psk_dhe_ke only, RFC 8446 §4.2.9), so one
 * session's keys do not open another's; we send no early data, so the
 * replay risk of RFC 8446 §8 does not arise; and a server that refuses a
 * second use (single-use tickets, §8.1) just runs a full handshake,
 * after which the session it refused is dropped.
 */
static SSL_SESSION *
resume_from(SSL *ssl, struct ccache_slot *s, time_t now)
{
	SSL_SESSION *sess, *dup;
	size_t k = 0;

	while (k < CCACHE_DEPTH && (sess = s->sess[k]) != NULL) {
		if (!sess_fresh(sess, now)) {
			slot_drop(s, k);
			continue;
		}
		/* A copy: at the end of a TLS 1.3 handshake OpenSSL marks
		 * the session it used not resumable (its advice of single
		 * use); the cached one stays intact. */
		if ((dup = SSL_SESSION_dup(sess)) == NULL)
			return NULL;
		k = SSL_set_session(ssl, dup) == 1;
		SSL_SESSION_free(dup);
		return k ? sess : NULL;
	}
	return NULL;
}

/* The session leg l offered did not resume (or its handshake failed):
 * it is no longer offered. */
static void
offer_forget(struct gw_tls_leg *l)
{
	struct gw_tls_up *u = l->up;
	struct ccache_slot *s;
	char key[KEY_MAX];
	size_t k, n;

	if (u == NULL || u->offered == NULL)
		return;
	if (u->cli != NULL && (n = leg_key(u, key)) > 0) {
		s = &u->cli->slot[key_slot(key, n)];
		if (s->keylen == n && memcmp(s->key, key, n) == 0)
			for (k = 0; k < CCACHE_DEPTH; k++)
				if (s->sess[k] == u->offered) {
					slot_drop(s, k);
					break;
				}
	}
	SSL_SESSION_free(u->offered);
	u->offered = NULL;
}

int
gw_tls_leg_connect(struct gw_tls_leg *l, struct gw_tls *t, int cli,
    const char *server_name, const char *peer, char *err, size_t errcap)
{
	struct gw_tls_client *c;
	struct ccache_slot *s;
	struct gw_tls_up *u;
	char key[KEY_MAX];
	SSL *ssl;
	size_t n, plen = peer != NULL ? strlen(peer) + 1 : 1;

	if (l->ssl != NULL || cli < 0 || (size_t)cli >= t->ncli) {
		(void)snprintf(err, errcap, "tls: no such client context");
		return -1;
	}
	c = t->cli[cli];
	if (c->verify && (server_name == NULL || server_name[0] == '\0')) {
		/* RFC 6125 §6: without a reference name there is nothing to
		 * check the certificate against. */
		(void)snprintf(err, errcap, "tls: verify needs a server name");
		return -1;
	}
	if ((u = calloc(1, sizeof(*u) + plen)) == NULL) {
		(void)snprintf(err, errcap, "tls: out of memory");
		return -1;
	}
	u->cli = c;
	u->name = server_name;
	u->verify = c->verify;
	u->has_peer = peer != NULL;
	if (peer != NULL)
		memcpy(u->peer, peer, plen);
	ERR_clear_error();
	if ((ssl = SSL_new(c->ctx)) == NULL || SSL_set_fd(ssl, l->fd) != 1) {
		ssl_err(err, errcap, "tls", "cannot create a session");
		SSL_free(ssl);
		free(u);
		return -1;
	}
	if (server_name != NULL && server_name[0] != '\0') {
		/* RFC 6066 §3: SNI; RFC 6125 §6.4: the name to check. */
		if (SSL_set_tlsext_host_name(ssl, server_name) != 1 ||
		    (c->verify && SSL_set1_host(ssl, server_name) != 1)) {
			ssl_err(err, errcap, server_name, "bad server name");
			SSL_free(ssl);
			free(u);
			return -1;
		}
	}
	if (SSL_set_ex_data(ssl, leg_index, u) != 1) {
		ssl_err(err, errcap, "tls", "cannot attach the leg");
		SSL_free(ssl);
		free(u);
		return -1;
	}
	SSL_set_connect_state(ssl);
	l->ssl = ssl;
	l->up = u;
	l->done = 0;
	l->hs_want = GW_TLS_WANT_WRITE; /* the ClientHello goes first */
	if ((n = leg_key(u, key)) > 0) {
		s = &c->slot[key_slot(key, n)];
		if (s->keylen == n && memcmp(s->key, key, n) == 0 &&
		    (u->offered = resume_from(ssl, s, time(NULL))) != NULL)
			(void)SSL_SESSION_up_ref(u->offered);
	}
	return 0;
}

void
gw_tls_leg_free(struct gw_tls_leg *l)
{
	if (l->ssl != NULL) {
		SSL_set_ex_data(l->ssl, leg_index, NULL);
		SSL_free(l->ssl);
	}
	if (l->up != NULL) {
		SSL_SESSION_free(l->up->offered);
		free(l->up);
	}
	l->up = NULL;
	l->ssl = NULL;
	l->done = 0;
	l->rd_want = l->wr_want = l->hs_want = GW_TLS_WANT_NONE;
}

/* Maps SSL_get_error to errno and *want; returns -1 (or 0 at the end of
 * the stream).  what: the SSL_* call's return value. */
static ssize_t
io_error(struct gw_tls_leg *l, int r, uint8_t *want)
{
	int e = errno;

	switch (SSL_get_error(l->ssl, r)) {
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_WANT_READ:
		*want = GW_TLS_WANT_READ;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_WANT_WRITE:
		*want = GW_TLS_WANT_WRITE;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_SYSCALL:
		ERR_clear_error();
		/* With SSL_OP_IGNORE_UNEXPECTED_EOF an EOF is ZERO_RETURN;
		 * what is left is a socket error. */
		errno = e != 0 ? e : ECONNRESET;
		return -1;
	default:
		ERR_clear_error();
		errno = EPROTO;
		return -1;
	}
}

ssize_t
gw_tls_read(struct gw_tls_leg *l, void *buf, size_t n)
{
	ssize_t r;
	int k;

	if (n > INT_MAX)
		n = INT_MAX;
	if (l->ssl == NULL) {
		r = read(l->fd, buf, n);
		l->rd_want = r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)
		                 ? GW_TLS_WANT_READ
		                 : GW_TLS_WANT_NONE;
		return r;
	}
	l->rd_want = GW_TLS_WANT_NONE;
	ERR_clear_error();
	errno = 0;
	k = SSL_read(l->ssl, buf, (int)n);
	if (k > 0)
		return k;
	return io_error(l, k, &l->rd_want);
}

ssize_t
gw_tls_write(struct gw_tls_leg *l, const void *buf, size_t n)
{
	ssize_t r;
	int k;

	if (n > INT_MAX)
		n = INT_MAX;
	if (l->ssl == NULL) {
		/* MSG_NOSIGNAL: a peer gone is an error, not a signal. */
		r = send(l->fd, buf, n, MSG_NOSIGNAL);
		l->wr_want = r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)
		                 ? GW_TLS_WANT_WRITE
		                 : GW_TLS_WANT_NONE;
		return r;
	}
	l->wr_want = GW_TLS_WANT_NONE;
	if (n == 0)
		return 0;
	ERR_clear_error();
	errno = 0;
	k = SSL_write(l->ssl, buf, (int)n);
	if (k > 0)
		return k;
	r = io_error(l, k, &l->wr_want);
	if (r == 0) {
		/* The peer's close_notify while we write: it reads no more. */
		errno = EPIPE;
		r = -1;
	}
	return r;
}

ssize_t
gw_tls_buf_read(struct gw_tls_leg *l, struct gw_buf *b)
{
	size_t room = gw_buf_room(b);
	ssize_t n;

	if (room == 0) {
		errno = ENOBUFS;
		return -1;
	}
	n = gw_tls_read(l, b->data + b->off + b->len, room);
	if (n > 0)
		b->len += (size_t)n;
	return n;
}

ssize_t
gw_tls_buf_write(struct gw_tls_leg *l, struct gw_buf *b)
{
	ssize_t n;

	if (b->len == 0)
		return 0;
	n = gw_tls_write(l, gw_buf_head(b), b->len);
	if (n > 0)
		gw_buf_drop(b, (size_t)n);
	return n;
}

int
gw_tls_resumed(const struct gw_tls_leg *l)
{
	return l->ssl != NULL && l->done && SSL_session_reused(l->ssl);
}

int
gw_tls_pending(const struct gw_tls_leg *l)
{
	/* Records read from the socket but not yet returned count too. */
	return l->ssl != NULL && SSL_has_pending(l->ssl);
}

enum gw_tls_rc
gw_tls_handshake(struct gw_tls_leg *l, char *err, size_t errcap)
{
	long vr;
	int r, e;

	if (l->ssl == NULL) {
		(void)snprintf(err, errcap, "no TLS on this leg");
		return GW_TLS_FAIL;
	}
	if (l->done)
		return GW_TLS_OK;
	ERR_clear_error();
	errno = 0;
	r = SSL_do_handshake(l->ssl);
	if (r == 1) {
		l->done = 1;
		l->hs_want = GW_TLS_WANT_NONE;
		if (l->up != NULL && l->up->offered != NULL) {
			if (!SSL_session_reused(l->ssl))
				offer_forget(l); /* refused: a full handshake
				                    ran */
			SSL_SESSION_free(l->up->offered);
			l->up->offered = NULL;
		}
		return GW_TLS_OK;
	}
	e = errno;
	switch (SSL_get_error(l->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		l->hs_want = GW_TLS_WANT_READ;
		return GW_TLS_AGAIN;
	case SSL_ERROR_WANT_WRITE:
		l->hs_want = GW_TLS_WANT_WRITE;
		return GW_TLS_AGAIN;
	case SSL_ERROR_SYSCALL:
		ERR_clear_error();
		(void)snprintf(err, errcap, "%s",
		    e != 0 ? strerror(e) : "connection closed in handshake");
		break;
	case SSL_ERROR_ZERO_RETURN:
		ERR_clear_error();
		(void)snprintf(err, errcap, "connection closed in handshake");
		break;
	default:
		vr = SSL_get_verify_result(l->ssl);
		if (l->up != NULL && l->up->verify && vr != X509_V_OK) {
			ERR_clear_error();
			(void)snprintf(err, errcap,
			    "certificate verify failed: %s",
			    X509_verify_cert_error_string(vr));
			l->hs_want = GW_TLS_WANT_NONE;
			offer_forget(l);
			return GW_TLS_FAIL_VERIFY;
		}
		ssl_err(err, errcap, NULL, "handshake failed");
		break;
	}
	l->hs_want = GW_TLS_WANT_NONE;
	offer_forget(l);
	return GW_TLS_FAIL;
}

void
gw_tls_shutdown(struct gw_tls_leg *l)
{
	if (l->ssl == NULL || !l->done)
		return;
	if ((SSL_get_shutdown(l->ssl) & SSL_SENT_SHUTDOWN) != 0)
		return;
	ERR_clear_error();
	/* The first call sends our close_notify (or queues it if the socket
	 * is full); we never wait for the peer's. */
	(void)SSL_shutdown(l->ssl);
	ERR_clear_error();
}

char *
gw_tls_describe(const struct gw_tls_leg *l, char *dst, size_t cap)
{
	const char *sni, *verify = "";
	char esc[96];
	int n;

	if (l->ssl == NULL) {
		(void)snprintf(dst, cap, "tls=no");
		return dst;
	}
	if (l->up != NULL)
		verify = !l->up->verify ? " verify=none"
		         : SSL_get_verify_result(l->ssl) == X509_V_OK
		             ? " verify=ok"
		             : " verify=failed";
	n = snprintf(dst, cap, "tls=%s cipher=%s resumed=%s peer_cert=%s%s",
	    SSL_get_version(l->ssl),
	    SSL_CIPHER_get_name(SSL_get_current_cipher(l->ssl)),
	    SSL_session_reused(l->ssl) ? "yes" : "no",
	    SSL_get0_peer_certificate(l->ssl) != NULL ? "yes" : "no", verify);
	if (l->up == NULL && n > 0 && (size_t)n < cap &&
	    (sni = SSL_get_servername(l->ssl, TLSEXT_NAMETYPE_host_name)) !=
	        NULL) {
		gw_log_escape(esc, sizeof(esc), sni, strlen(sni));
		(void)snprintf(dst + n, cap - (size_t)n, " sni=%s", esc);
	}
	return dst;
}
