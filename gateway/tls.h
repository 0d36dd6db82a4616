/*
 * gateway/tls.h: TLS on the two legs of a session, with OpenSSL 3.
 *
 * One struct gw_tls holds every TLS context of one configuration: a
 * server context per certificate (the leg towards the client) and a
 * client context per way of checking servers (the leg towards the
 * server).  It is built when the configuration is loaded and freed with
 * it, so a reload (SIGHUP) that fails to load a certificate keeps the old
 * configuration and its contexts, and sessions already running keep the
 * contexts they started with.
 *
 * A leg (struct gw_tls_leg) is one socket, in clear text or with an SSL
 * object on it.  Its read and write calls return like read(2) and
 * write(2); -1 with errno EAGAIN means "try again when the socket is
 * ready", and the leg says for what: TLS may need to write in order to
 * read (a key update) or to read in order to write, so the caller's
 * watchers follow rd_want / wr_want / hs_want rather than the direction
 * of the data.  Nothing here blocks, logs, or keeps global state other
 * than one OpenSSL ex_data index.
 *
 * Protocols: TLS 1.2 and 1.3 only (RFC 8996 deprecates 1.0 and 1.1),
 * except on an opportunistic upstream leg (legacy client context), where
 * the alternative to old TLS is clear text.
 * Renegotiation and compression are off.  Sessions resume: the server
 * side keeps a bounded session cache and issues tickets (RFC 5077,
 * RFC 8446 §4.6.1); the client side keeps the last sessions of each
 * upstream destination (address, server name and client context) in a
 * fixed-size table and reuses them until they expire or the server stops
 * resuming them (docs/design.md, "Upstream TLS session reuse").
 */
#ifndef GW_TLS_H
#define GW_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct ssl_st;         /* OpenSSL's SSL */
struct ssl_session_st; /* OpenSSL's SSL_SESSION */
struct gw_tls;
struct gw_tls_client;

enum gw_tls_want {
	GW_TLS_WANT_NONE = 0,
	GW_TLS_WANT_READ,  /* retry when the socket is readable */
	GW_TLS_WANT_WRITE, /* retry when the socket is writable */
};

/* gw_tls_handshake's results. */
enum gw_tls_rc {
	GW_TLS_OK = 0,           /* handshake complete */
	GW_TLS_AGAIN = 1,        /* in progress: wait for hs_want */
	GW_TLS_FAIL = -1,        /* failed (protocol, peer gone, ...) */
	GW_TLS_FAIL_VERIFY = -2, /* the server's certificate did not
	                            verify (client side, verify mode) */
};

/* What only an upstream leg in TLS needs (its context, the names that
 * key its session cache, the session offered): tls.c's, allocated by
 * gw_tls_leg_connect, so a clear-text leg and a client's TLS leg do not
 * carry it. */
struct gw_tls_up;

/*
 * Every side of every session embeds one leg, mostly in clear text: the
 * leg is kept to what both kinds of leg use, ordered so the compiler
 * inserts no padding.
 */
struct gw_tls_leg {
	struct ssl_st *ssl;   /* NULL: clear text */
	struct gw_tls_up *up; /* owned; NULL unless we are the TLS client
	                         (upstream) */
	int fd;
	uint8_t rd_want; /* enum gw_tls_want: the last read returned
	                    EAGAIN */
	uint8_t wr_want; /* ...the last write returned EAGAIN */
	uint8_t hs_want; /* ...the handshake waits for this */
	uint8_t done;    /* handshake complete */
};

/* Creates an empty set of contexts; NULL with a message in err. */
struct gw_tls *gw_tls_new(char *err, size_t errcap);
void gw_tls_free(struct gw_tls *t);

/*
 * Loads a certificate chain (PEM, leaf first) and its private key into a
 * new server context, or finds the context already loaded from the same
 * two files.  Returns its index (>= 0), or -1 with "FILE: reason" in err.
 * The files are read now and never again: reloading means building a new
 * struct gw_tls.
 */
int gw_tls_add_cert(struct gw_tls *t, const char *cert_file,
    const char *key_file, char *err, size_t errcap);

/*
 * The same with a second pair cert2_file/key2_file (NULL: none) of
 * another key type in the same context (ECDSA beside RSA): OpenSSL
 * answers each client with the one its signature algorithms accept
 * (RFC 8446 §4.2.3, RFC 5246 §7.4.1.4.1), the first when both do.  Two
 * pairs of the same key type are refused (the second would replace the
 * first).
 */
int gw_tls_add_cert_pair(struct gw_tls *t, const char *cert_file,
    const char *key_file, const char *cert2_file, const char *key2_file,
    char *err, size_t errcap);

/*
 * A client context for upstream legs: verify = 0 checks nothing (RFC 7435
 * opportunistic TLS, as MTAs do); verify = 1 checks the chain against
 * ca_file (PEM; NULL: OpenSSL's default store) and, per leg, the server
 * name.  legacy = 1 (ignored with verify) accepts what an MTA at security
 * level "may" accepts: TLS 1.0 and up, medium ciphers and anonymous
 * suites, OpenSSL security level 0; otherwise TLS 1.2 and 1.3 only.
 * Contexts with the same settings are shared.  Returns its index or -1
 * with err.
 */
int gw_tls_add_client(struct gw_tls *t, int verify, int legacy,
    const char *ca_file, char *err, size_t errcap);

size_t gw_tls_cert_count(const struct gw_tls *t);

/* "subject=... not_after=..." of certificate idx, for the log; returns
 * dst (capacity cap, NUL terminated, cut if needed). */
char *gw_tls_cert_describe(
    const struct gw_tls *t, int idx, char *dst, size_t cap);

/* A clear-text leg on fd. */
void gw_tls_leg_init(struct gw_tls_leg *l, int fd);

/*
 * Puts the server side of TLS on leg l (towards the client), answering
 * with certificate cert unless the client's SNI names another loaded
 * certificate.  0, or -1 with err.  t must outlive the leg.
 */
int gw_tls_leg_accept(
    struct gw_tls_leg *l, struct gw_tls *t, int cert, char *err, size_t errcap);

/*
 * Puts the client side of TLS on leg l (towards the server) with client
 * context cli.  server_name (may be NULL) is sent as SNI and, in a verify
 * context, must match the certificate (RFC 6125).  peer names the upstream
 * address ("[2001:db8::25]:25"); with server_name it keys the session
 * cache (NULL: no cache).  The leg keeps a copy of peer; t and
 * server_name must outlive the leg (the caller's session holds them).
 * 0, or -1 with err (also when memory runs out).
 */
int gw_tls_leg_connect(struct gw_tls_leg *l, struct gw_tls *t, int cli,
    const char *server_name, const char *peer, char *err, size_t errcap);

/* Frees the SSL object and the upstream state, if any (the socket stays
 * open: the caller's); the leg is clear text again. */
void gw_tls_leg_free(struct gw_tls_leg *l);

/* One step of the handshake; see enum gw_tls_rc.  On failure err says
 * why (OpenSSL's reason, or the verification error). */
enum gw_tls_rc gw_tls_handshake(struct gw_tls_leg *l, char *err, size_t errcap);

/*
 * Like read(2) and send(2) with MSG_NOSIGNAL.  0 from read is the end of
 * the stream (TLS close_notify, or the peer's FIN: SMTP frames its own
 * end, RFC 5321 §4.1.1.10, so a missing close_notify loses nothing).
 * -1 with errno EAGAIN: retry when rd_want / wr_want is met; EPROTO: a TLS
 * error; other errno values as the socket gave them.
 */
ssize_t gw_tls_read(struct gw_tls_leg *l, void *buf, size_t n);
ssize_t gw_tls_write(struct gw_tls_leg *l, const void *buf, size_t n);

/* The same with a struct gw_buf: read into its free room, write from its
 * head (dropping what was written).  Read returns -1 with ENOBUFS when
 * the buffer is full. */
struct gw_buf;
ssize_t gw_tls_buf_read(struct gw_tls_leg *l, struct gw_buf *b);
ssize_t gw_tls_buf_write(struct gw_tls_leg *l, struct gw_buf *b);

/* 1 if the leg's completed handshake resumed a session. */
int gw_tls_resumed(const struct gw_tls_leg *l);

/* 1 if decrypted bytes wait inside the SSL object: a read will return
 * them even though the socket will not signal readability. */
int gw_tls_pending(const struct gw_tls_leg *l);

/*
 * Sends close_notify once (RFC 8446 §6.1), without waiting for the
 * peer's; also keeps the session resumable.  Best effort, never blocks.
 */
void gw_tls_shutdown(struct gw_tls_leg *l);

/*
 * "tls=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384 resumed=no peer_cert=yes"
 * (client side adds verify=ok|failed|none; server side sni=NAME when the
 * client sent one, escaped) for a log line; "tls=no" on a clear leg.
 * Returns dst.
 */
char *gw_tls_describe(const struct gw_tls_leg *l, char *dst, size_t cap);

#endif
