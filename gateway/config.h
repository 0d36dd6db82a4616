/*
 * gateway/config.h: smtp64.conf, parsed with libinih into one struct and
 * validated whole at start-up.  Errors read "FILE:LINE: message".
 */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H

#include <stddef.h>

#include "nat/acl.h"
#include "nat/addr.h"
#include "nat/dest.h"
#include "nat/pair.h"
#include "nat/xlat.h"
#include "smtpfix/stream.h"
#include "smtpfix/tlspolicy.h"

#define GW_LISTEN_MAX 16
#define GW_FQDN_MAX 253 /* RFC 1035 §2.3.4, without the final dot */
#define GW_NAME_MAX 64
#define GW_NAT64_MAX 8
#define GW_ROUTE_MAX 8
#define GW_ROUTE_ADDRS 8    /* addresses per [route] */
#define GW_ROUTE_DOMAINS 64 /* domains = entries per [route] */
#define GW_OWN_MAX (GW_ROUTE_MAX * GW_ROUTE_ADDRS + GW_LISTEN_MAX)

struct gw_tls; /* gateway/tls.h: the loaded TLS contexts */

/* The TLS of one pair (or of [gateway], for [nat64] sessions), resolved
 * at load: the pair's own keys, else those of [gateway], else defaults. */
struct gw_tls_sel {
	struct smtpfix_tlspolicy pol; /* mode, upstream, have_cert */
	int cert;                     /* server context, -1: none */
	int cli;                      /* upstream context, -1: none */
	const char *server_name;      /* SNI, name to verify; NULL */
};

/* Who connected, told to servers that trust the gateway
 * (smtpfix/identity.h): in [gateway], [pair NAME] and [nat64 NAME]. */
struct gw_identity {
	int mode;     /* enum smtpfix_identity_mode; -1: [gateway]'s */
	int required; /* XCLIENT not accepted: 421, close; -1: [gateway]'s */
};

struct gw_listen {
	struct nat_addr addr;
	unsigned port;
};

/* Per-pair settings, indexed by struct nat_pair.user. */
struct gw_pair_opt {
	char name[GW_NAME_MAX]; /* from [pair NAME] */
	unsigned line;          /* where it was defined */
	int acl;                /* index into acls, -1: the default */
	char *helo_name;        /* owned; NULL: the gateway FQDN */
	struct gw_tls_sel tls;  /* STARTTLS (issue 7) */
	char *tls_name;         /* owned: tls.server_name */
	int bare;               /* enum smtpfix_bare; -1: [gateway]'s */
	struct gw_identity identity;
	/* draft-martin-smtp-ipv6-to-ipv4-fallback §3: where the IPv6
	 * server's mail goes over IPv4 when it asks; family 0: nowhere. */
	struct nat_addr fallback4;
};

/* [packet]: everything but SMTP between paired addresses, translated
 * per packet (RFC 7915) through NFQUEUE by gateway/nfq. */
struct gw_packet {
	int enable;
	unsigned line;  /* of [packet], 0 if absent */
	unsigned queue; /* NFQUEUE number */
	unsigned queue_max_packets;
	int icmp_errors; /* TTL, MTU, source route */
	unsigned ipv4_mtu_bytes;
	unsigned ipv6_mtu_bytes; /* RFC 7915 §4: 1280 */
	/* RFC 7915 §4.1: the IPv6 next hop's MTU, for packets with DF;
	 * 0: 1500, or ipv6_mtu_bytes if larger (nat_xlat_conf link6) */
	unsigned ipv6_link_mtu_bytes;
	int engine; /* GW_PACKET_NFQUEUE, or GW_PACKET_BPF (gateway/bpf) */
};

/* [packet] engine: NFQUEUE alone, or the tc fast path in front of it. */
#define GW_PACKET_NFQUEUE 0
#define GW_PACKET_BPF 1

/* [nat64 NAME]: IPv6 clients reach IPv4 servers through a prefix. */
struct gw_nat64 {
	char name[GW_NAME_MAX];
	unsigned line;
	struct in6_addr prefix;
	unsigned plen;          /* 32, 40, 48, 56, 64 or 96 */
	int wkp;                /* the well-known 64:ff9b::/96 */
	struct nat_acl clients; /* required: never open */
	int clients_set;
	struct nat_acl dests; /* non-global ranges allowed (WKP) */
	unsigned prefix_line; /* of its prefix = */
	/* [packet]: IPv6 sources under the prefix are translated (else
	 * dropped as spoofed: struct nat_xlat_prefix sources) */
	int translate_sources;
	struct gw_identity identity;
};

/* [route NAME]: route mode (the gateway answers the client itself and
 * chooses the server from the recipient's domain in DNS). */
struct gw_route {
	char name[GW_NAME_MAX];
	unsigned line;
	struct nat_addr addrs[GW_ROUTE_ADDRS]; /* address = */
	size_t naddrs;
	char *domains[GW_ROUTE_DOMAINS]; /* owned: domains = */
	size_t ndomains;
	int serve_published; /* MX host's A/AAAA is a route address */
	int smarthost;       /* any domain, allow_clients only */
	struct nat_acl clients;
	int clients_set;
	unsigned long long size_max; /* size_max_bytes; RFC 1870 SIZE */
	struct gw_tls_sel tls;       /* client leg (cert), upstream */
	struct gw_identity identity; /* -1: [gateway]'s */
};

struct gw_config {
	char path[256];
	char fqdn[GW_FQDN_MAX + 1];
	struct smtpfix_policy pol; /* points into fqdn */
	struct gw_listen listen[GW_LISTEN_MAX];
	size_t nlisten;
	unsigned upstream_port;
	unsigned max_sessions;
	unsigned max_sessions_per_client;
	unsigned workers;    /* processes sharing the listeners */
	size_t buffer_bytes; /* per buffer, 4 a session */
	int log_level;       /* syslog level */
	/* Timeouts, seconds.  Defaults from RFC 5321 §4.5.3.2. */
	unsigned connect_timeout_s;
	unsigned greeting_timeout_s;  /* §4.5.3.2.1: 5 min */
	unsigned command_timeout_s;   /* §4.5.3.2.7: 5 min */
	unsigned reply_timeout_s;     /* §4.5.3.2.2-3: 5 min */
	unsigned data_init_timeout_s; /* §4.5.3.2.4: 2 min */
	unsigned data_timeout_s;      /* §4.5.3.2.5: 3 min */
	unsigned data_end_timeout_s;  /* §4.5.3.2.6: 10 min */
	/* How long a server whose TLS failed (tls_upstream = opportunistic)
	 * gets no STARTTLS; 0: never remembered. */
	unsigned tls_fallback_remember_s;
	/* IPv6-to-IPv4 fallback on 4.4.8 (draft-martin §3, Appendix A.3):
	 * how long a server that asked for IPv4 gets IPv4 first (0: not
	 * remembered), and where a message is held until a server's final
	 * reply (gateway/spool.h). */
	unsigned fallback_remember_s;
	char spool_dir[256];         /* absolute */
	unsigned spool_memory_bytes; /* in memory before a file */
	unsigned spool_max_bytes;    /* a message held at most */
	/* Operation: the account to run as once the sockets are open (""
	 * keeps the one started with), how long SIGTERM lets sessions
	 * finish, and the Prometheus endpoint (metrics_set 0: off). */
	char user[GW_NAME_MAX];
	char group[GW_NAME_MAX];
	unsigned drain_timeout_s;
	struct gw_listen metrics;
	int metrics_set;
	/* Cross-realm policy and source addresses (issue 6). */
	int transparent; /* IP_TRANSPARENT listeners */
	int source_pairing;
	int hygiene;                      /* refuse scoped literals and
	                                     source routes in MAIL/RCPT */
	struct nat_addr source4, source6; /* family 0: unset */
	struct nat_acl clients;           /* default for pairs: any */
	struct gw_identity identity;      /* default: none, not required */
	struct gw_nat64 nat64[GW_NAT64_MAX];
	size_t nnat64;
	/* The same prefixes as nat/xlat takes them, in file order: IPv4
	 * addresses are embedded under the first (nat_xlat_conf). */
	struct nat_xlat_prefix xlat_prefix[GW_NAT64_MAX];
	struct gw_packet packet;
	struct nat_acl *acls; /* owned: per-pair lists */
	size_t nacls;
	/* STARTTLS: the contexts every pair's gw_tls_sel indexes, loaded
	 * with the configuration (so a reload that cannot load a key
	 * keeps the old ones); NULL when no pair terminates TLS. */
	struct gw_tls *tls;
	struct gw_tls_sel tls_default; /* [nat64] sessions */
	struct nat_pairs pairs;
	struct gw_pair_opt *pair_opt; /* owned, pairs.n entries */
	/* The destination decision's view of the above (nat/dest.h),
	 * built at load; points into this struct. */
	struct nat_dest_conf dest;
	struct nat_dest_prefix dest_prefix[GW_NAT64_MAX];
	struct nat_dest_route dest_route[GW_ROUTE_MAX];
	struct nat_addr own[GW_OWN_MAX]; /* never a destination */
	size_t nown;
	/* Route mode. */
	struct gw_route routes[GW_ROUTE_MAX];
	size_t nroutes;
	char dns_servers[256]; /* c-ares CSV; "" the system's */
	unsigned dns_timeout_ms;
	unsigned dns_cache_max_s;
	const struct nat_acl **pair_clients; /* owned, by pair */
	unsigned refs;                       /* holders: the daemon and each
	                                        session started under it */
};

/*
 * Reads and validates FILE into *cfg (which it initialises).  On error
 * returns -1 with "FILE:LINE: message" (or "FILE: message") in err of
 * capacity errcap; *cfg then holds nothing to free.  0 on success; free
 * with gw_config_free.
 */
int gw_config_load(
    const char *path, struct gw_config *cfg, char *err, size_t errcap);
void gw_config_free(struct gw_config *cfg);

/* Heap copies for reload: a new config serves new sessions while the
 * old one lives until its last session ends. */
struct gw_config *gw_config_new(const char *path, char *err, size_t errcap);
struct gw_config *gw_config_hold(struct gw_config *cfg);
void gw_config_release(struct gw_config *cfg);

/* A key smtp64.conf may hold: the kind of its section ("gateway",
 * "pair" for [pair NAME], "pairs", "nat64" for [nat64 NAME], "route" for
 * [route NAME], "packet")
 * and its name. */
struct gw_config_key {
	const char *section;
	const char *name;
};

/* Every key the parser knows, n of them (a static table: the parser
 * refuses any other key).  For tests and tools that check the docs. */
const struct gw_config_key *gw_config_keys(size_t *n);

/* Fills *cfg with every default (no pairs, no fqdn). */
void gw_config_defaults(struct gw_config *cfg);

#endif
