/*
 * gateway/config_test.c: smtp64.conf parsing and validation.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <cmocka.h>

#include "gateway/config.h"
#include "gateway/tls.h"
#include "smtpfix/identity.h"

static char path[64];

static const char *
write_conf(const char *text)
{
	FILE *fp;

	(void)snprintf(
	    path, sizeof(path), "/tmp/smtp64-cfgtest.%d", (int)getpid());
	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	fclose(fp);
	return path;
}

static int
load(const char *text, struct gw_config *c, char *err, size_t cap)
{
	int rc = gw_config_load(write_conf(text), c, err, cap);

	unlink(path);
	return rc;
}

static const char good[] = "# comment\n"
                           "[gateway]\n"
                           "  fqdn = gw.example.net\n"
                           "listen = 192.0.2.30:25, [2001:db8:1::25]:2525\n"
                           "helo_rewrite = literals   # only literals\n"
                           "connect_timeout_s = 5\n"
                           "buffer_bytes = 32768\n"
                           "\n"
                           "[pair mx6]\n"
                           "ipv4 = 192.0.2.30\n"
                           "ipv6 = 2001:db8::25\n"
                           "[pair mx4]\n"
                           "ipv6 = 2001:db8:1::25\n"
                           "ipv4 = 198.51.100.25\n"
                           "[pairs]\n"
                           "pair = 192.0.2.31 2001:db8::26\n"
                           "pair = 2001:db8::27 192.0.2.32\n";

static void
test_good(void **state)
{
	struct gw_config c;
	char err[512];
	struct in_addr v4;
	struct in6_addr v6;
	const struct nat_pair *p;

	(void)state;
	assert_int_equal(load(good, &c, err, sizeof(err)), 0);
	assert_string_equal(c.fqdn, "gw.example.net");
	assert_int_equal(c.pol.fqdn_len, strlen("gw.example.net"));
	assert_ptr_equal(c.pol.fqdn, c.fqdn);
	assert_int_equal(c.pol.helo, SMTPFIX_HELO_LITERALS);
	assert_int_equal(c.nlisten, 2);
	assert_int_equal(c.listen[0].port, 25);
	assert_int_equal(c.listen[1].addr.family, AF_INET6);
	assert_int_equal(c.listen[1].port, 2525);
	assert_int_equal(c.connect_timeout_s, 5);
	assert_int_equal(c.greeting_timeout_s, 300); /* RFC default */
	assert_int_equal(c.buffer_bytes, 32768);
	assert_int_equal(c.workers, 1); /* default */
	assert_int_equal(c.pairs.n, 4);

	inet_pton(AF_INET, "198.51.100.25", &v4);
	p = nat_pairs_by_v4(&c.pairs, &v4);
	assert_non_null(p);
	inet_pton(AF_INET6, "2001:db8:1::25", &v6);
	assert_memory_equal(&p->v6, &v6, sizeof(v6));
	assert_string_equal(c.pair_opt[p->user].name, "mx4");

	inet_pton(AF_INET6, "2001:db8::27", &v6);
	p = nat_pairs_by_v6(&c.pairs, &v6);
	assert_non_null(p);
	inet_pton(AF_INET, "192.0.2.32", &v4);
	assert_memory_equal(&p->v4, &v4, sizeof(v4));
	gw_config_free(&c);
}

static void
test_defaults(void **state)
{
	struct gw_config c;
	char err[512];

	(void)state;
	assert_int_equal(load("[gateway]\nfqdn = a.example\n[pair x]\n"
	                      "ipv4 = 192.0.2.1\nipv6 = 2001:db8::1\n",
	                     &c, err, sizeof(err)),
	    0);
	assert_int_equal(c.pol.helo, SMTPFIX_HELO_ALWAYS);
	/* RFC 5321 §4.1.1.4: a bare LF is text, never an end. */
	assert_int_equal(c.pol.bare, SMTPFIX_BARE_INLINE);
	assert_int_equal(c.nlisten, 2); /* 0.0.0.0:25 and [::]:25 */
	assert_int_equal(c.upstream_port, 25);
	/* RFC 5321 §4.5.3.2 */
	assert_int_equal(c.command_timeout_s, 300);
	assert_int_equal(c.data_init_timeout_s, 120);
	assert_int_equal(c.data_timeout_s, 180);
	assert_int_equal(c.data_end_timeout_s, 600);
	/* A server whose TLS failed is remembered for an hour. */
	assert_int_equal(c.tls_fallback_remember_s, 3600);
	/* IPv6-to-IPv4 fallback: off per pair; its spool. */
	assert_int_equal(c.pair_opt[0].fallback4.family, 0);
	assert_int_equal(c.fallback_remember_s, 3600);
	assert_string_equal(c.spool_dir, "/var/spool/smtp64");
	assert_int_equal(c.spool_memory_bytes, 1U << 20);
	assert_int_equal(c.spool_max_bytes, 64U << 20);
	gw_config_free(&c);
	assert_int_equal(load("[gateway]\nfqdn = a.example\n"
	                      "spool_dir = /tmp/x\nspool_max_bytes = 1000\n"
	                      "[pair x]\nipv4 = 192.0.2.1\nipv6 = 2001:db8::1\n"
	                      "fallback_ipv4 = 203.0.113.25\n",
	                     &c, err, sizeof(err)),
	    0);
	assert_int_equal(c.pair_opt[0].fallback4.family, AF_INET);
	assert_string_equal(c.spool_dir, "/tmp/x");
	assert_int_equal(c.spool_max_bytes, 1000);
	gw_config_free(&c);
	assert_int_equal(load("[gateway]\nfqdn = a.example\n"
	                      "tls_fallback_remember_s = 0\n[pair x]\n"
	                      "ipv4 = 192.0.2.1\nipv6 = 2001:db8::1\n",
	                     &c, err, sizeof(err)),
	    0);
	assert_int_equal(c.tls_fallback_remember_s, 0);
	gw_config_free(&c);
}

struct bad {
	const char *text;
	const char *want; /* substring of the message, with line */
};

static void
test_bad(void **state)
{
	static const struct bad cases[] = {
	    {"[gateway]\nfqdn = gw.example.net\nfrobnicate = 1\n",
	        ":3: unknown key 'frobnicate'"},
	    {"[gateway]\nfqdn = localhost\n", ":2: fqdn: 'localhost'"},
	    {"[gateway]\nfqdn = -x.example\n", ":2: fqdn"},
	    {"[gateway]\nhelo_rewrite = maybe\n", ":2: helo_rewrite: 'maybe'"},
	    {"[gateway]\nfqdn = a.example\n[pair x]\nipv4 = 2001:db8::1\n",
	        ":4: ipv4: '2001:db8::1' is not an IPv4"},
	    {"[gateway]\nfqdn = a.example\n[pair x]\nipv6 = 192.0.2.300\n",
	        ":4: ipv6"},
	    {"[gateway]\nfqdn = a.example\n[pair x]\nipv4 = 192.0.2.1\n",
	        ":3: pair x needs ipv4 and ipv6"},
	    {"[gateway]\nfqdn = a.example\n[pair x]\nipv4 = 192.0.2.1\n"
	     "ipv6 = 2001:db8::1\n[pair y]\nipv4 = 192.0.2.1\n"
	     "ipv6 = 2001:db8::2\n",
	        ":6: pair y: an address of it is already"},
	    {"[gateway]\nfqdn = a.example\n", ":2: no pairs"},
	    {"[gateway]\n[pair x]\nipv4 = 192.0.2.1\nipv6 = 2001:db8::1\n",
	        ":1: fqdn is required"},
	    {"[pair x]\nipv4 = 192.0.2.1\nipv6 = 2001:db8::1\n",
	        ":1: fqdn is required"},
	    {"[gateway]\nfqdn = a.example\nlisten = 192.0.2.1:99999\n",
	        ":3: listen: '192.0.2.1:99999'"},
	    {"[gateway]\nfqdn = a.example\nconnect_timeout_s = 0\n",
	        ":3: connect_timeout_s"},
	    {"[gateway]\nfqdn = a.example\ntls_fallback_remember_s = 604801\n",
	        ":3: tls_fallback_remember_s"},
	    /* draft-martin §3: the IPv4 address of the same destination. */
	    {"[gateway]\nfqdn = a.example\n[pair x]\nipv4 = 192.0.2.1\n"
	     "ipv6 = 2001:db8::1\nfallback_ipv4 = 2001:db8::2\n",
	        ":6: fallback_ipv4: '2001:db8::2' is not an IPv4"},
	    {"[gateway]\nfqdn = a.example\n[pair x]\nipv4 = 192.0.2.1\n"
	     "ipv6 = 2001:db8::1\nfallback_ipv4 = 224.0.0.1\n",
	        ":6: fallback_ipv4: '224.0.0.1' is not a host"},
	    {"[gateway]\nfqdn = a.example\nspool_dir = var/spool\n",
	        ":3: spool_dir: 'var/spool': want an absolute path"},
	    {"[gateway]\nfqdn = a.example\nspool_max_bytes = 0\n",
	        ":3: spool_max_bytes"},
	    {"[gateway]\nfqdn = a.example\nfallback_remember_s = 604801\n",
	        ":3: fallback_remember_s"},
	    {"[gateway]\nfqdn = a.example\nconnect_timeout_s = 5s\n",
	        ":3: connect_timeout_s"},
	    {"[gateway]\nfqdn = a.example\nbuffer_bytes = 100\n",
	        ":3: buffer_bytes"},
	    {"[gateway]\nfqdn = a.example\nuser = a b\n",
	        ":3: user: 'a b' is not an account name"},
	    {"[gateway]\nfqdn = a.example\ngroup = \n", ":3: group: want"},
	    {"[gateway]\nfqdn = a.example\nmetrics_listen = 127.0.0.1\n",
	        ":3: metrics_listen: '127.0.0.1' is not ADDRESS:PORT"},
	    {"[gateway]\nfqdn = a.example\nmetrics_listen = [::1]:0\n",
	        ":3: metrics_listen"},
	    {"[gateway]\nfqdn = a.example\ndrain_timeout_s = 86401\n",
	        ":3: drain_timeout_s"},
	    {"[gateway]\nfqdn = a.example\n[nonsense]\nx = 1\n",
	        ":3: unknown section [nonsense]"},
	    {"[gateway]\nfqdn = a.example\nthis line has no equals\n",
	        ":3: syntax error"},
	    {"[pairs]\npair = 192.0.2.1\n", ":2: pair:"},
	    {"[gateway]\nfqdn = 192.0.2.1\n", ":2: fqdn"},
	    {"[gateway]\nfqdn = a.example\nlisten =\n", ":3: listen: no"},
	    {"fqdn = a.example\n", ":1: 'fqdn' outside any section"},
	    {"[gateway]\nfqdn = a.example\n[pair x]\n[pair y]\n"
	     "ipv4 = 192.0.2.1\nipv6 = 2001:db8::1\n",
	        ":3: pair x needs ipv4 and ipv6"},
	    {"[gateway]\nfqdn = a.example\n[pair ]\n",
	        ":3: section name empty"},
	    {"[gateway]\nfqdn = a.example\n[nat64 w]\nprefix = 64:ff9b::/96\n",
	        ":3: [nat64 w] needs allow_clients"},
	    {"[gateway]\nfqdn = a.example\n[nat64 w]\nallow_clients = any\n",
	        ":3: [nat64 w] needs prefix"},
	    {"[gateway]\nfqdn = a.example\n[nat64 w]\nprefix = 2001:db8::/33\n",
	        ":4: prefix: '2001:db8::/33'"},
	    {"[gateway]\nfqdn = a.example\n[nat64 w]\n"
	     "prefix = 2001:db8:0:0:ff00::/64\n",
	        ":4: prefix"}, /* u octet set */
	    {"[gateway]\nfqdn = a.example\n[nat64 w]\n"
	     "allow_clients = 192.0.2.1/24\n",
	        ":4: allow_clients"},
	    {"[gateway]\nfqdn = a.example\nworkers = 0\n", ":3: workers"},
	    {"[gateway]\nfqdn = a.example\nworkers = 65\n", ":3: workers"},
	    {"[gateway]\nfqdn = a.example\ntransparent = maybe\n",
	        ":3: transparent: 'maybe'"},
	    {"[gateway]\nfqdn = a.example\nsource_ipv4 = 2001:db8::1\n",
	        ":3: source_ipv4"},
	    {"[gateway]\nfqdn = a.example\naddress_hygiene = lax\n",
	        ":3: address_hygiene"},
	    {"[gateway]\nfqdn = a.example\nbare_line_endings = accept\n",
	        ":3: bare_line_endings: 'accept': want reject or inline"},
	    {"[gateway]\nfqdn = a.example\n[pair x]\n"
	     "bare_line_endings = lf\n",
	        ":4: bare_line_endings: 'lf'"},
	    {"[gateway]\nfqdn = a.example\n[pair x]\nhelo_name = bad_name\n",
	        ":4: helo_name"},
	    {"[gateway]\nfqdn = a.example\nidentity = xforward\n",
	        ":3: identity: 'xforward': want xclient, proxy-v1, proxy-v2 "
	        "or none"},
	    {"[gateway]\nfqdn = a.example\n[pair x]\nidentity = proxy\n",
	        ":4: identity: 'proxy'"},
	    {"[gateway]\nfqdn = a.example\n[nat64 n]\n"
	     "identity_required = maybe\n",
	        ":4: identity_required: 'maybe'"},
	    {"[pairs]\npair = 192.0.2.1 192.0.2.2\n", ":2: pair has two IPv4"},
	    {"[gateway]\nfqdn = a.example\n[packet]\nenable = on\n",
	        ":4: enable: 'on'"},
	    {"[gateway]\nfqdn = a.example\n[packet]\nqueue = 65536\n",
	        ":4: queue: want a whole number 0..65535"},
	    {"[gateway]\nfqdn = a.example\n[packet]\n"
	     "ipv6_mtu_bytes = 1200\n",
	        ":4: ipv6_mtu_bytes"},
	    {"[gateway]\nfqdn = a.example\n[packet]\n"
	     "ipv4_mtu_bytes = 67\n",
	        ":4: ipv4_mtu_bytes"},
	    {"[gateway]\nfqdn = a.example\n[packet]\n"
	     "ipv6_link_mtu_bytes = 1279\n",
	        ":4: ipv6_link_mtu_bytes"},
	    {"[gateway]\nfqdn = a.example\n[packet]\n"
	     "ipv6_mtu_bytes = 9000\nipv6_link_mtu_bytes = 1500\n",
	        ":3: ipv6_mtu_bytes 9000 is over ipv6_link_mtu_bytes 1500"},
	    {"[gateway]\nfqdn = a.example\n[nat64 w]\n"
	     "prefix = 2001:db8:64::/96\nallow_clients = any\n"
	     "translate_sources = maybe\n",
	        ":6: translate_sources: 'maybe': want yes or no"},
	    {"[gateway]\nfqdn = a.example\n[packet]\nmtu = 1500\n",
	        ":4: unknown key 'mtu' in [packet]"},
	    {"[gateway]\nfqdn = a.example\n[packet]\nengine = xdp\n",
	        ":4: engine: want nfqueue or bpf"},
	    /* Two prefixes that overlap: the second's allow_clients would
	     * never apply.  Both lines named. */
	    {"[gateway]\nfqdn = a.example\n[nat64 a]\n"
	     "prefix = 2001:db8:64::/96\nallow_clients = 2001:db8::/64\n"
	     "[nat64 b]\nprefix = 2001:db8:64::/96\nallow_clients = any\n",
	        ":7: [nat64 b] prefix 2001:db8:64::/96 overlaps "
	        "2001:db8:64::/96 of [nat64 a] (line 4)"},
	    {"[gateway]\nfqdn = a.example\n[nat64 a]\n"
	     "allow_clients = any\nprefix = 2001:db8:64::/96\n"
	     "[nat64 b]\nallow_clients = any\nprefix = 2001:db8::/32\n",
	        ":8: [nat64 b] prefix 2001:db8::/32 overlaps "
	        "2001:db8:64::/96 of [nat64 a] (line 5)"},
	    {"[gateway]\nfqdn = a.example\n[nat64 a]\n"
	     "prefix = 2001:db8::/32\nallow_clients = any\n"
	     "[nat64 b]\nprefix = 2001:db8:64::/64\nallow_clients = any\n",
	        ":7: [nat64 b] prefix 2001:db8:64::/64 overlaps"},
	    {"[gateway]\nfqdn = a.example\n[nat64 w]\n"
	     "prefix = ::ffff:0:0/96\n",
	        ":4: prefix: '::ffff:0:0/96' lies in ipv4-mapped space"},
	    {"[gateway]\nfqdn = a.example\n[nat64 w]\nprefix = ::/96\n",
	        ":4: prefix: '::/96' lies in unspecified space"},
	    {"[gateway]\nfqdn = a.example\n[nat64 w]\nprefix = fe80::/64\n",
	        ":4: prefix: 'fe80::/64' lies in link-local space"},
	    {"[gateway]\nfqdn = a.example\n[nat64 w]\n"
	     "prefix = ff0e::/96\n",
	        ":4: prefix: 'ff0e::/96' lies in multicast space"},
	    /* listen: what bind(2) would refuse at start */
	    {"[gateway]\nfqdn = a.example\n"
	     "listen = 192.0.2.1:25, 192.0.2.1\n",
	        ":3: listen: '192.0.2.1:25' is given twice (line 3)"},
	    {"[gateway]\nfqdn = a.example\nlisten = [2001:db8::1]:2525\n"
	     "listen = [2001:db8::1]:2525\n",
	        ":4: listen: '[2001:db8::1]:2525' is given twice (line 3)"},
	    {"[gateway]\nfqdn = a.example\nlisten = 0.0.0.0:25\n"
	     "listen = 192.0.2.1:25\n",
	        ":4: listen: '192.0.2.1:25' overlaps '0.0.0.0:25' (line 3)"},
	    {"[gateway]\nfqdn = a.example\nlisten = [2001:db8::1]:25\n"
	     "listen = [::]:25\n",
	        ":4: listen: '[::]:25' overlaps '[2001:db8::1]:25' (line 3)"},
	    {"[gateway]\nfqdn = a.example\nlisten = [::ffff:192.0.2.1]:25\n",
	        ":3: listen: '[::ffff:192.0.2.1]:25' is an IPv4-mapped"},
	    /* A pair's addresses are destinations: never the host itself,
	     * its link, a group or no host (nat_scope_dest_refused). */
	    {"[gateway]\nfqdn = a.example\n[pair x]\nipv4 = 192.0.2.1\n"
	     "ipv6 = ::\n",
	        ":5: pair x: '::' is not a host the gateway may relay to "
	        "(unspecified)"},
	    {"[gateway]\nfqdn = a.example\n[pair x]\nipv6 = ::1\n"
	     "ipv4 = 192.0.2.1\n",
	        ":4: pair x: '::1' is not a host the gateway may relay to "
	        "(loopback): clients that reach 192.0.2.1 (see listen) would "
	        "be relayed to the gateway host itself"},
	    /* loopback as the gateway's side, but its partner reachable */
	    {"[gateway]\nfqdn = a.example\nlisten = 127.0.0.30:2525\n"
	     "listen = [2001:db8::25]:25\n[pair x]\nipv4 = 127.0.0.30\n"
	     "ipv6 = 2001:db8::25\n",
	        ":6: pair x: '127.0.0.30' is not a host the gateway may "
	        "relay to (loopback): clients that reach 2001:db8::25"},
	    {"[gateway]\nfqdn = a.example\nlisten = 127.0.0.30:2525\n"
	     "transparent = yes\n[pair x]\nipv4 = 127.0.0.30\n"
	     "ipv6 = 2001:db8::25\n",
	        ":6: pair x: '127.0.0.30' is not a host the gateway may relay "
	        "to (loopback): clients that reach 2001:db8::25 (transparent "
	        "= yes)"},
	    {"[gateway]\nfqdn = a.example\n[pair x]\nipv4 = 0.0.0.0\n"
	     "ipv6 = 2001:db8::1\n",
	        ":4: pair x: '0.0.0.0' is not a host the gateway may relay "
	        "to (this-network)"},
	    {"[gateway]\nfqdn = a.example\n[pair x]\nipv4 = 127.0.0.1\n"
	     "ipv6 = 2001:db8::1\n",
	        ":4: pair x: '127.0.0.1' is not a host"},
	    {"[gateway]\nfqdn = a.example\n[pair x]\nipv4 = 169.254.1.1\n"
	     "ipv6 = 2001:db8::1\n",
	        ":4: pair x: '169.254.1.1' is not a host"},
	    {"[gateway]\nfqdn = a.example\n[pair x]\nipv4 = 224.0.0.1\n"
	     "ipv6 = 2001:db8::1\n",
	        "(multicast)"},
	    {"[gateway]\nfqdn = a.example\n[pair x]\nipv4 = 192.0.2.1\n"
	     "ipv6 = ff02::1\n",
	        ":5: pair x: 'ff02::1' is not a host"},
	    {"[gateway]\nfqdn = a.example\n[pair x]\nipv4 = 192.0.2.1\n"
	     "ipv6 = fe80::1\n",
	        "(link-local)"},
	    {"[gateway]\nfqdn = a.example\n[pair x]\nipv4 = 192.0.2.1\n"
	     "ipv6 = ::ffff:127.0.0.1\n",
	        ":5: pair x: '::ffff:127.0.0.1' is not a host the gateway "
	        "may relay to (ipv4-mapped)"},
	    {"[gateway]\nfqdn = a.example\n[pair x]\nipv4 = 192.0.2.1\n"
	     "ipv6 = ::ffff:192.0.2.2\n",
	        "(ipv4-mapped)"},
	    {"[gateway]\nfqdn = a.example\n[pairs]\n"
	     "pair = 192.0.2.1 ::\n",
	        ":4: pair line4: '::' is not a host"},
	    {"[gateway]\nfqdn = a.example\n[pairs]\n"
	     "pair = 127.0.0.1 2001:db8::1\n",
	        ":4: pair line4: '127.0.0.1' is not a host"},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct gw_config c;
		char err[512];

		err[0] = '\0';
		assert_int_equal(load(cases[i].text, &c, err, sizeof(err)), -1);
		if (strstr(err, cases[i].want) == NULL)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, err,
			    cases[i].want);
		assert_non_null(strstr(err, "/tmp/smtp64-cfgtest."));
	}
}

static void
test_policy(void **state)
{
	static const char text[] =
	    "[gateway]\n"
	    "fqdn = gw.example.net\n"
	    "transparent = yes\n"
	    "source_pairing = no\n"
	    "address_hygiene = pass\n"
	    "bare_line_endings = reject\n"
	    "identity = proxy-v2\n"
	    "source_ipv4 = 198.51.100.1\n"
	    "source_ipv6 = 2001:db8::1\n"
	    "allow_clients = 192.0.2.0/24\n"
	    "[pair a]\n"
	    "ipv4 = 192.0.2.30\n"
	    "ipv6 = 2001:db8::25\n"
	    "helo_name = a.gw.example.net\n"
	    "allow_clients = 198.51.100.0/24, 2001:db8::/32\n"
	    "bare_line_endings = inline\n"
	    "identity = xclient\n"
	    "identity_required = yes\n"
	    "[pair b]\n"
	    "ipv4 = 192.0.2.31\n"
	    "ipv6 = 2001:db8::26\n"
	    "[nat64 wkp]\n"
	    "prefix = 64:ff9b::/96\n"
	    "allow_clients = 2001:db8:1::/48\n"
	    "allow_destinations = 10.0.0.0/8\n"
	    "identity = none\n"
	    "[nat64 nsp]\n"
	    "prefix = 2001:db8:64::/48\n"
	    "allow_clients = any\n";
	struct gw_config c;
	char err[512];
	struct in_addr v4;
	const struct nat_pair *p;

	(void)state;
	assert_int_equal(load(text, &c, err, sizeof(err)), 0);
	assert_int_equal(c.transparent, 1);
	assert_int_equal(c.source_pairing, 0);
	assert_int_equal(c.hygiene, 0);
	assert_int_equal(c.pol.bare, SMTPFIX_BARE_REJECT);
	assert_int_equal(c.source4.family, AF_INET);
	assert_int_equal(c.source6.family, AF_INET6);
	assert_int_equal(c.clients.n, 1);
	assert_int_equal(c.nnat64, 2);
	assert_int_equal(c.nat64[0].wkp, 1);
	assert_int_equal(c.nat64[0].plen, 96);
	assert_int_equal(c.nat64[0].dests.n, 1);
	assert_int_equal(c.nat64[1].wkp, 0);
	assert_int_equal(c.nat64[1].plen, 48);
	assert_int_equal(c.nat64[1].clients.flags, NAT_ACL_ANY);
	/* identity: [gateway]'s, and each section's own or -1 (inherit). */
	assert_int_equal(c.identity.mode, SMTPFIX_ID_PROXY_V2);
	assert_int_equal(c.identity.required, 0);
	assert_int_equal(c.nat64[0].identity.mode, SMTPFIX_ID_NONE);
	assert_int_equal(c.nat64[0].identity.required, -1);
	assert_int_equal(c.nat64[1].identity.mode, -1);
	inet_pton(AF_INET, "192.0.2.30", &v4);
	p = nat_pairs_by_v4(&c.pairs, &v4);
	assert_non_null(p);
	assert_string_equal(c.pair_opt[p->user].helo_name, "a.gw.example.net");
	assert_int_equal(c.pair_opt[p->user].acl, 0);
	assert_int_equal(c.pair_opt[p->user].bare, SMTPFIX_BARE_INLINE);
	assert_int_equal(c.pair_opt[p->user].identity.mode, SMTPFIX_ID_XCLIENT);
	assert_int_equal(c.pair_opt[p->user].identity.required, 1);
	assert_int_equal(c.acls[0].n, 2);
	inet_pton(AF_INET, "192.0.2.31", &v4);
	p = nat_pairs_by_v4(&c.pairs, &v4);
	assert_non_null(p);
	assert_null(c.pair_opt[p->user].helo_name);
	assert_int_equal(c.pair_opt[p->user].acl, -1);
	assert_int_equal(c.pair_opt[p->user].bare, -1); /* [gateway]'s */
	assert_int_equal(c.pair_opt[p->user].identity.mode, -1);
	assert_int_equal(c.pair_opt[p->user].identity.required, -1);
	gw_config_free(&c);
}

static void
test_nat64_only(void **state)
{
	struct gw_config c;
	char err[512];

	(void)state;
	assert_int_equal(load("[gateway]\nfqdn = a.example\n[nat64 w]\n"
	                      "prefix = 64:ff9b::/96\nallow_clients = any\n",
	                     &c, err, sizeof(err)),
	    0);
	assert_int_equal(c.pairs.n, 0);
	gw_config_free(&c);
	/* Loopback as the gateway's own side of a pair (a local MTA
	 * connects to it; docs/operations.md): fine while no client can
	 * reach the partner, so loopback is never a destination. */
	assert_int_equal(load("[gateway]\nfqdn = a.example\n"
	                      "listen = 127.0.0.30:2525\n"
	                      "[pair partner]\nipv4 = 127.0.0.30\n"
	                      "ipv6 = 2001:db8::25\n"
	                      "[pair self6]\nipv6 = ::1\n"
	                      "ipv4 = 198.51.100.25\n",
	                     &c, err, sizeof(err)),
	    0);
	assert_int_equal(c.pairs.n, 2);
	gw_config_free(&c);
	/* Neighbouring prefixes do not overlap; listeners of the two
	 * families, and of two ports, never collide. */
	assert_int_equal(load("[gateway]\nfqdn = a.example\n"
	                      "listen = 0.0.0.0:25, [::]:25, 192.0.2.1:2525\n"
	                      "listen = 192.0.2.2:2525, [2001:db8::1]:2525\n"
	                      "[nat64 a]\nprefix = 2001:db8:64::/96\n"
	                      "allow_clients = any\n"
	                      "[nat64 b]\nprefix = 2001:db8:65::/96\n"
	                      "allow_clients = any\n"
	                      "[nat64 w]\nprefix = 64:ff9b::/96\n"
	                      "allow_clients = any\n",
	                     &c, err, sizeof(err)),
	    0);
	assert_int_equal(c.nlisten, 5);
	assert_int_equal(c.nnat64, 3);
	gw_config_free(&c);
}

/* [packet]: defaults, keys, and the prefixes as nat/xlat takes them. */
static void
test_packet(void **state)
{
	struct gw_config c;
	struct in6_addr wkp;
	char err[512];

	(void)state;
	assert_int_equal(
	    load("[gateway]\nfqdn = a.example\n"
	         "[pair x]\nipv4 = 192.0.2.1\nipv6 = 2001:db8::1\n",
	        &c, err, sizeof(err)),
	    0);
	assert_int_equal(c.packet.enable, 0);
	assert_int_equal(c.packet.queue, 0);
	assert_int_equal(c.packet.queue_max_packets, 4096);
	assert_int_equal(c.packet.icmp_errors, 1);
	assert_int_equal(c.packet.ipv4_mtu_bytes, 1500);
	assert_int_equal(c.packet.ipv6_mtu_bytes, 1280);
	assert_int_equal(c.packet.ipv6_link_mtu_bytes, 0);
	assert_int_equal(c.packet.engine, GW_PACKET_NFQUEUE);
	gw_config_free(&c);
	assert_int_equal(
	    load("[gateway]\nfqdn = a.example\n"
	         "[nat64 n]\nprefix = 2001:db8:64::/96\nallow_clients = any\n"
	         "[nat64 w]\nprefix = 64:ff9b::/96\nallow_clients = any\n"
	         "[packet]\nenable = yes\nqueue = 7\nicmp_errors = no\n"
	         "ipv4_mtu_bytes = 9000\nipv6_mtu_bytes = 1500\n"
	         "ipv6_link_mtu_bytes = 9000\nqueue_max_packets = 100\n"
	         "engine = bpf\n",
	        &c, err, sizeof(err)),
	    0);
	assert_int_equal(c.packet.engine, GW_PACKET_BPF);
	assert_int_equal(c.packet.enable, 1);
	assert_int_equal(c.packet.queue, 7);
	assert_int_equal(c.packet.queue_max_packets, 100);
	assert_int_equal(c.packet.icmp_errors, 0);
	assert_int_equal(c.packet.ipv4_mtu_bytes, 9000);
	assert_int_equal(c.packet.ipv6_mtu_bytes, 1500);
	assert_int_equal(c.packet.ipv6_link_mtu_bytes, 9000);
	assert_int_equal(c.packet.line, 9);
	/* File order; RFC 6052 §3.1 for the well-known prefix only. */
	assert_int_equal(c.xlat_prefix[0].plen, 96);
	assert_int_equal(c.xlat_prefix[0].global_only, 0);
	assert_int_equal(c.xlat_prefix[0].prefix.s6_addr[5], 0x64);
	assert_int_equal(inet_pton(AF_INET6, "64:ff9b::", &wkp), 1);
	assert_memory_equal(&c.xlat_prefix[1].prefix, &wkp, sizeof(wkp));
	assert_int_equal(c.xlat_prefix[1].global_only, 1);
	/* IPv6 sources under a prefix are spoofed unless said otherwise. */
	assert_int_equal(c.xlat_prefix[0].sources, 0);
	assert_int_equal(c.xlat_prefix[1].sources, 0);
	gw_config_free(&c);
	assert_int_equal(
	    load("[gateway]\nfqdn = a.example\n"
	         "[nat64 n]\nprefix = 2001:db8:64::/96\nallow_clients = any\n"
	         "translate_sources = yes\n"
	         "[nat64 w]\nprefix = 64:ff9b::/96\nallow_clients = any\n"
	         "translate_sources = no\n",
	        &c, err, sizeof(err)),
	    0);
	assert_int_equal(c.nat64[0].translate_sources, 1);
	assert_int_equal(c.xlat_prefix[0].sources, 1);
	assert_int_equal(c.xlat_prefix[1].sources, 0);
	gw_config_free(&c);
}

/* load() for bytes fputs cannot write (NUL). */
static int
load_bytes(const char *b, size_t n, struct gw_config *c, char *err, size_t cap)
{
	FILE *fp;
	int rc;

	(void)snprintf(
	    path, sizeof(path), "/tmp/smtp64-cfgtest.%d", (int)getpid());
	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(b, 1, n, fp), n);
	fclose(fp);
	rc = gw_config_load(path, c, err, cap);
	unlink(path);
	return rc;
}

static void
want_err(const char *err, const char *want)
{
	const unsigned char *e;

	if (strstr(err, want) == NULL)
		fail_msg("got \"%s\", want \"%s\"", err, want);
	/* Nothing from the file reaches the terminal unescaped. */
	for (e = (const unsigned char *)err; *e != '\0'; e++)
		if (*e < 0x20 || *e >= 0x7f)
			fail_msg("unescaped byte 0x%02x in \"%s\"", *e, err);
}

/* A NUL byte used to cut the value short ("fqdn = gw.exa" loaded). */
static void
test_nul_and_control(void **state)
{
	static const char nul[] = "[gateway]\nfqdn = gw.exa\0mple.net\n"
	                          "[pair x]\nipv4 = 192.0.2.1\n"
	                          "ipv6 = 2001:db8::1\n";
	static const struct {
		const char *text, *want;
	} cases[] = {
	    /* an escape sequence for the terminal */
	    {"[gateway]\nfqdn = a.example\nlisten = \x1b[31m\n",
	        ":3: control character \\x1b at column 10"},
	    {"[gateway]\nfqdn = a.example\n# a \x07 in a comment\n",
	        ":3: control character \\x07 at column 5"},
	    {"[gateway]\nfqdn = a.exa\rmple\n", ":2: control character \\x0d"},
	    {"[gateway]\nfqdn = a.example\x7f\n",
	        ":2: control character \\x7f"},
	    /* other bytes are echoed escaped */
	    {"[gateway]\nfqdn = a.ex\xc3\xa9mple\n",
	        ":2: fqdn: 'a.ex\\xc3\\xa9mple' is not"},
	    {"[gateway]\nfqdn = a.example\nfr\xffob = 1\n",
	        ":3: unknown key 'fr\\xffob'"},
	    {"[gateway]\nfqdn = a.example\n[p\xe2\x80\xaeq]\nx = 1\n",
	        ":3: unknown section [p\\xe2\\x80\\xaeq]"},
	};
	struct gw_config c;
	char err[512];
	size_t i;

	(void)state;
	err[0] = '\0';
	assert_int_equal(
	    load_bytes(nul, sizeof(nul) - 1, &c, err, sizeof(err)), -1);
	want_err(err, ":2: NUL byte at column 14");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		if (load(cases[i].text, &c, err, sizeof(err)) != -1)
			fail_msg("case %zu loaded", i);
		want_err(err, cases[i].want);
	}
	/* CRLF line ends are fine. */
	assert_int_equal(load("[gateway]\r\nfqdn = a.example\r\n"
	                      "[pair x]\r\nipv4 = 192.0.2.1\r\n"
	                      "ipv6 = 2001:db8::1\r\n",
	                     &c, err, sizeof(err)),
	    0);
	assert_string_equal(c.fqdn, "a.example");
	gw_config_free(&c);
}

/* A long line used to come back as two, the error on the next line. */
static void
test_long_line(void **state)
{
	char text[1024], err[512];
	struct gw_config c;
	int n;

	(void)state;
	/* 199 characters: the longest line libinih takes whole. */
	n = snprintf(text, sizeof(text),
	    "[gateway]\nfqdn = a.example\n# %0197d\n"
	    "[pair x]\nipv4 = 192.0.2.1\nipv6 = 2001:db8::1\n",
	    0);
	assert_true(n > 0 && (size_t)n < sizeof(text));
	assert_int_equal(load(text, &c, err, sizeof(err)), 0);
	gw_config_free(&c);
	(void)snprintf(text, sizeof(text),
	    "[gateway]\nfqdn = a.example\n# %0198d\n"
	    "[pair x]\nipv4 = 192.0.2.1\nipv6 = 2001:db8::1\n",
	    0);
	err[0] = '\0';
	assert_int_equal(load(text, &c, err, sizeof(err)), -1);
	want_err(err, ":3: line too long (at most 199 characters)");
	(void)snprintf(text, sizeof(text),
	    "[gateway]\nfqdn = a.example\ntls_cert_file = /%0300d\n", 0);
	err[0] = '\0';
	assert_int_equal(load(text, &c, err, sizeof(err)), -1);
	want_err(err, ":3: line too long");
}

static void
test_not_a_file(void **state)
{
	struct gw_config c;
	char err[512];

	(void)state;
	err[0] = '\0';
	assert_int_equal(gw_config_load("/tmp", &c, err, sizeof(err)), -1);
	want_err(err, "/tmp: is a directory");
	err[0] = '\0';
	assert_int_equal(gw_config_load("/dev/null", &c, err, sizeof(err)), -1);
	want_err(err, "/dev/null: not a regular file");
}

/* The table is the parser's whole list: each key of it is taken in its
 * section (whatever the value makes of it), and a key of another
 * section is refused with a pointer to where it belongs. */
static void
test_keys_known(void **state)
{
	static const char *const hdr[][2] = {{"gateway", "[gateway]"},
	    {"pair", "[pair y]"}, {"pairs", "[pairs]"}, {"nat64", "[nat64 n]"},
	    {"packet", "[packet]"}, {"route", "[route r]"}};
	const struct gw_config_key *k;
	struct gw_config c;
	char text[512], err[512];
	size_t n, i, j;

	(void)state;
	k = gw_config_keys(&n);
	assert_true(n > 40);
	for (i = 0; i < n; i++) {
		const char *h = NULL;

		for (j = 0; j < sizeof(hdr) / sizeof(hdr[0]); j++)
			if (strcmp(hdr[j][0], k[i].section) == 0)
				h = hdr[j][1];
		if (h == NULL)
			fail_msg(
			    "key %s: section kind %s", k[i].name, k[i].section);
		(void)snprintf(text, sizeof(text),
		    "[gateway]\nfqdn = a.example\n[pair x]\n"
		    "ipv4 = 192.0.2.1\nipv6 = 2001:db8::1\n%s\n%s = @@\n",
		    h, k[i].name);
		err[0] = '\0';
		if (load(text, &c, err, sizeof(err)) == 0)
			gw_config_free(&c);
		else if (strstr(err, "unknown key") != NULL)
			fail_msg("[%s] %s: %s", k[i].section, k[i].name, err);
	}
	err[0] = '\0';
	assert_int_equal(load("[gateway]\nfqdn = a.example\n"
	                      "prefix = 64:ff9b::/96\n",
	                     &c, err, sizeof(err)),
	    -1);
	want_err(err, ":3: unknown key 'prefix' in [gateway] (it belongs in "
	              "[nat64 NAME])");
	assert_int_equal(load("[gateway]\nfqdn = a.example\n[pair x]\n"
	                      "fqdn = b.example\n",
	                     &c, err, sizeof(err)),
	    -1);
	want_err(err, ":4: unknown key 'fqdn' in [pair x] (it belongs in "
	              "[gateway])");
}

/* Keys as the docs write them: in smtp64.conf.example "key = value",
 * perhaps commented out, under its section header (perhaps commented
 * out too); in smtp64.conf(5) "*key*" under a heading naming the
 * section.  Collects "kind key" strings into seen. */
static char seen[2][8192];

static void
note_key(char *dst, const char *kind, const char *key, size_t klen)
{
	size_t o = strlen(dst);

	if (kind == NULL || o + strlen(kind) + klen + 3 >= sizeof(seen[0]))
		return;
	(void)snprintf(
	    dst + o, sizeof(seen[0]) - o, "|%s %.*s|", kind, (int)klen, key);
}

static const char *
doc_kind(const char *l)
{
	static const char *const kinds[][2] = {{"[gateway]", "gateway"},
	    {"[pair ", "pair"}, {"[pairs]", "pairs"}, {"[nat64", "nat64"},
	    {"[route", "route"}, {"[packet]", "packet"}};
	size_t i;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strstr(l, kinds[i][0]) != NULL)
			return kinds[i][1];
	return NULL;
}

static void
scan_example(FILE *fp)
{
	char l[512];
	const char *kind = NULL, *s;
	size_t n;

	while (fgets(l, sizeof(l), fp) != NULL) {
		for (s = l; *s == '#' || *s == ' ' || *s == '\t'; s++)
			;
		if (*s == '[' && doc_kind(s) != NULL) {
			kind = doc_kind(s);
			continue;
		}
		n = strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_");
		if (n > 0 && strncmp(s + n, " = ", 3) == 0)
			note_key(seen[0], kind, s, n);
	}
}

static void
scan_man(FILE *fp)
{
	char l[512];
	const char *kind = NULL, *s, *e;
	int code = 0;

	while (fgets(l, sizeof(l), fp) != NULL) {
		if (strncmp(l, "```", 3) == 0) {
			code = !code;
			continue;
		}
		if (code)
			continue;
		if (l[0] == '#') {
			/* "# SECTION [gateway]", "## Section [pair NAME]";
			 * another top heading ends the section. */
			if (doc_kind(l) != NULL)
				kind = doc_kind(l);
			else if (l[1] == ' ')
				kind = NULL;
			continue;
		}
		for (s = l; (s = strchr(s, '*')) != NULL; s = e + 1) {
			e = strchr(s + 1, '*');
			if (e == NULL)
				break;
			note_key(seen[1], kind, s + 1, (size_t)(e - s - 1));
		}
	}
}

static void
test_docs_keys(void **state)
{
	static const char *const docs[2] = {
	    "docs/smtp64.conf.example", "docs/smtp64.conf.5.scd"};
	const struct gw_config_key *k;
	struct gw_config c;
	char want[128], err[512];
	size_t n, i, d;
	FILE *fp;

	(void)state;
	for (d = 0; d < 2; d++) {
		seen[d][0] = '\0';
		if ((fp = fopen(docs[d], "r")) == NULL)
			fail_msg("%s: cannot open (run from the top of the "
			         "source tree, as make unit does)",
			    docs[d]);
		if (d == 0)
			scan_example(fp);
		else
			scan_man(fp);
		fclose(fp);
	}
	k = gw_config_keys(&n);
	for (i = 0; i < n; i++) {
		(void)snprintf(
		    want, sizeof(want), "|%s %s|", k[i].section, k[i].name);
		for (d = 0; d < 2; d++)
			if (strstr(seen[d], want) == NULL)
				fail_msg("%s: no key %s in [%s]", docs[d],
				    k[i].name, k[i].section);
	}
	/* The example is a configuration that loads. */
	err[0] = '\0';
	if (gw_config_load(docs[0], &c, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	gw_config_free(&c);
}

/* user, group, drain_timeout_s, metrics_listen: parsed, and defaults. */
static void
test_operations(void **state)
{
	struct gw_config c;
	char err[512], a[64];

	(void)state;
	gw_config_defaults(&c);
	assert_string_equal(c.user, "");
	assert_int_equal(c.drain_timeout_s, 30);
	assert_int_equal(c.metrics_set, 0);
	assert_int_equal(load("[gateway]\nfqdn = gw.example.net\n"
	                      "user = smtp64\ngroup = 65534\n"
	                      "drain_timeout_s = 0\n"
	                      "metrics_listen = [::1]:9425\n"
	                      "[pair x]\nipv4 = 192.0.2.1\n"
	                      "ipv6 = 2001:db8::1\n",
	                     &c, err, sizeof(err)),
	    0);
	assert_string_equal(c.user, "smtp64");
	assert_string_equal(c.group, "65534");
	assert_int_equal(c.drain_timeout_s, 0);
	assert_int_equal(c.metrics_set, 1);
	assert_int_equal(c.metrics.port, 9425);
	assert_int_equal(nat_addr_fmt(&c.metrics.addr, a, sizeof(a)) > 0, 1);
	assert_string_equal(a, "::1");
	gw_config_free(&c);
}

static void
test_missing_file(void **state)
{
	struct gw_config c;
	char err[512];

	(void)state;
	assert_int_equal(
	    gw_config_load("/nonexistent/smtp64.conf", &c, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "/nonexistent/smtp64.conf: "));
}

/*
 * STARTTLS keys (issue 7).  Throwaway certificates come from openssl(1),
 * which tools/install-deps installs.
 */
static char tdir[64];

static int
tls_setup(void **state)
{
	char cmd[1024];

	(void)state;
	(void)snprintf(tdir, sizeof(tdir), "/tmp/smtp64-cfgtls.XXXXXX");
	if (mkdtemp(tdir) == NULL)
		return -1;
	(void)snprintf(cmd, sizeof(cmd),
	    "cd %s && for n in gw mx; do openssl req -x509 -newkey ec "
	    "-pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
	    "-subj /CN=$n.example.net -keyout $n.key -out $n.crt "
	    ">/dev/null 2>&1 || exit 1; done",
	    tdir);
	return system(cmd) == 0 ? 0 : -1;
}

static int
tls_teardown(void **state)
{
	char cmd[128];

	(void)state;
	(void)snprintf(cmd, sizeof(cmd), "rm -rf %s", tdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* A config with [gateway] lines g and [pair mx6] lines pr; %D in either
 * is the certificate directory. */
static int
load_tls(
    const char *g, const char *pr, struct gw_config *c, char *err, size_t cap)
{
	char text[2048], g2[512], p2[512];
	const char *src[2] = {g, pr};
	char *dst[2] = {g2, p2};
	size_t i, o;

	for (i = 0; i < 2; i++) {
		const char *q;

		for (o = 0, q = src[i]; *q != '\0' && o + 70 < 512; q++) {
			if (q[0] == '%' && q[1] == 'D') {
				o += (size_t)snprintf(
				    dst[i] + o, 512 - o, "%s", tdir);
				q++;
			} else
				dst[i][o++] = *q;
		}
		dst[i][o] = '\0';
	}
	(void)snprintf(text, sizeof(text),
	    "[gateway]\nfqdn = gw.example.net\n%s\n"
	    "[pair mx6]\nipv4 = 192.0.2.30\nipv6 = 2001:db8::25\n%s\n"
	    "[pair mx4]\nipv4 = 198.51.100.25\nipv6 = 2001:db8:1::25\n",
	    g2, p2);
	return load(text, c, err, cap);
}

static const struct gw_tls_sel *
sel_of(const struct gw_config *c, const char *v4)
{
	struct in_addr a;
	const struct nat_pair *p;

	inet_pton(AF_INET, v4, &a);
	p = nat_pairs_by_v4(&c->pairs, &a);
	assert_non_null(p);
	return &c->pair_opt[p->user].tls;
}

static void
test_tls_defaults(void **state)
{
	struct gw_config c;
	const struct gw_tls_sel *t;
	char err[512];

	(void)state;
	/* No certificate: passthrough, nothing loaded (today's behaviour). */
	assert_int_equal(load_tls("", "", &c, err, sizeof(err)), 0);
	t = sel_of(&c, "192.0.2.30");
	assert_int_equal(t->pol.mode, SMTPFIX_TLS_PASSTHROUGH);
	assert_int_equal(t->cert, -1);
	assert_null(c.tls);
	gw_config_free(&c);

	/* A certificate in [gateway]: every pair terminates, opportunistic
	 * upstream; one context loaded, shared. */
	assert_int_equal(load_tls("tls_cert_file = %D/gw.crt\n"
	                          "tls_key_file = %D/gw.key\n",
	                     "", &c, err, sizeof(err)),
	    0);
	t = sel_of(&c, "192.0.2.30");
	assert_int_equal(t->pol.mode, SMTPFIX_TLS_TERMINATE);
	assert_int_equal(t->pol.upstream, SMTPFIX_TLSUP_OPPORTUNISTIC);
	assert_int_equal(t->pol.have_cert, 1);
	assert_int_equal(t->cert, 0);
	assert_int_equal(t->cli, 0);
	assert_null(t->server_name);
	assert_int_equal(sel_of(&c, "198.51.100.25")->cert, 0);
	assert_non_null(c.tls);
	assert_int_equal(gw_tls_cert_count(c.tls), 1);
	gw_config_free(&c);
}

static void
test_tls_per_pair(void **state)
{
	struct gw_config c;
	const struct gw_tls_sel *t;
	char err[512];

	(void)state;
	/* The pair's own certificate and verification; the other pair
	 * keeps [gateway]'s strip. */
	assert_int_equal(load_tls("tls = strip\n"
	                          "tls_cert_file = %D/gw.crt\n"
	                          "tls_key_file = %D/gw.key\n",
	                     "tls = terminate\ntls_cert_file = %D/mx.crt\n"
	                     "tls_key_file = %D/mx.key\ntls_upstream = verify\n"
	                     "tls_ca_file = %D/mx.crt\n"
	                     "tls_server_name = mx6.example.org\n",
	                     &c, err, sizeof(err)),
	    0);
	t = sel_of(&c, "192.0.2.30");
	assert_int_equal(t->pol.mode, SMTPFIX_TLS_TERMINATE);
	assert_int_equal(t->pol.upstream, SMTPFIX_TLSUP_VERIFY);
	assert_string_equal(t->server_name, "mx6.example.org");
	assert_int_equal(t->cert, 0); /* only mx.crt was needed */
	assert_int_equal(gw_tls_cert_count(c.tls), 1);
	t = sel_of(&c, "198.51.100.25");
	assert_int_equal(t->pol.mode, SMTPFIX_TLS_STRIP);
	assert_int_equal(t->cert, -1);
	gw_config_free(&c);

	/* Opportunistic and require do not share an upstream context: the
	 * first accepts TLS 1.0 and up, the second TLS 1.2 and up. */
	assert_int_equal(load_tls("tls_cert_file = %D/gw.crt\n"
	                          "tls_key_file = %D/gw.key\n",
	                     "tls_upstream = require\n", &c, err, sizeof(err)),
	    0);
	assert_int_not_equal(
	    sel_of(&c, "192.0.2.30")->cli, sel_of(&c, "198.51.100.25")->cli);
	gw_config_free(&c);

	/* Explicit passthrough beside a certificate. */
	assert_int_equal(load_tls("tls_cert_file = %D/gw.crt\n"
	                          "tls_key_file = %D/gw.key\n",
	                     "tls = passthrough\n", &c, err, sizeof(err)),
	    0);
	assert_int_equal(
	    sel_of(&c, "192.0.2.30")->pol.mode, SMTPFIX_TLS_PASSTHROUGH);
	assert_int_equal(
	    sel_of(&c, "198.51.100.25")->pol.mode, SMTPFIX_TLS_TERMINATE);
	gw_config_free(&c);
}

static void
test_tls_bad(void **state)
{
	static const struct {
		const char *g, *p, *want;
	} cases[] = {
	    {"tls = maybe\n", "", ":3: tls: 'maybe': want terminate"},
	    {"", "tls_upstream = strict\n", ":7: tls_upstream: 'strict'"},
	    {"tls = terminate\n", "",
	        ":5: pair mx6: tls = terminate needs tls_cert_file"},
	    {"", "tls = terminate\n",
	        ":4: pair mx6: tls = terminate needs tls_cert_file"},
	    {"tls_cert_file = %D/gw.crt\n", "",
	        ":3: tls_cert_file and tls_key_file go together"},
	    {"tls_cert_file = %D/gw.crt\ntls_key_file = %D/gw.key\n",
	        "tls_upstream = verify\n",
	        ":6: pair mx6: tls_upstream = verify needs tls_server_name"},
	    {"tls_server_name = mx.example.org\n", "",
	        ":3: unknown key 'tls_server_name' in [gateway] (it belongs "
	        "in [pair NAME])"},
	    {"", "tls_server_name = [192.0.2.1]\n",
	        ":7: tls_server_name: '[192.0.2.1]'"},
	    {"tls_cert_file = %D/gw.crt\ntls_key_file = %D/mx.key\n", "",
	        ":4: "},
	    {"tls_cert_file = %D/none.crt\ntls_key_file = %D/gw.key\n", "",
	        "none.crt"},
	    {"tls_cert_file = %D/gw.crt\ntls_key_file = %D/gw.key\n",
	        "tls_upstream = verify\ntls_server_name = mx.example.org\n"
	        "tls_ca_file = %D/none.crt\n",
	        "none.crt"},
	    {"tls_cert_file =\n", "", ":3: tls_cert_file: empty"},
	    /* Relative names: read against / once detached, so refused. */
	    {"tls_cert_file = gw.crt\ntls_key_file = %D/gw.key\n", "",
	        ":3: tls_cert_file: 'gw.crt' is a relative path"},
	    {"tls_cert_file = %D/gw.crt\ntls_key_file = ./gw.key\n", "",
	        ":4: tls_key_file: './gw.key' is a relative path"},
	    {"", "tls_ca_file = certs/ca.crt\n",
	        ":7: tls_ca_file: 'certs/ca.crt' is a relative path"},
	    /* A second pair: with its key, beside a first pair of the same
	     * section, of another key type. */
	    {"tls_cert_file = %D/gw.crt\ntls_key_file = %D/gw.key\n"
	     "tls_cert2_file = %D/mx.crt\n",
	        "", ":5: tls_cert2_file and tls_key2_file go together"},
	    {"tls_cert_file = %D/gw.crt\ntls_key_file = %D/gw.key\n",
	        "tls_cert2_file = %D/mx.crt\ntls_key2_file = %D/mx.key\n",
	        "beside tls_cert_file and tls_key_file of the same section"},
	    {"tls_cert_file = %D/gw.crt\ntls_key_file = %D/gw.key\n"
	     "tls_cert2_file = %D/mx.crt\ntls_key2_file = %D/mx.key\n",
	        "", "same key type"},
	    {"tls_cert_file = %D/gw.crt\ntls_key_file = %D/gw.key\n"
	     "tls_cert2_file = mx.crt\ntls_key2_file = %D/mx.key\n",
	        "", ":5: tls_cert2_file: 'mx.crt' is a relative path"},
	};
	struct gw_config c;
	char err[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		if (load_tls(cases[i].g, cases[i].p, &c, err, sizeof(err)) !=
		    -1)
			fail_msg("case %zu loaded", i);
		if (strstr(err, cases[i].want) == NULL)
			fail_msg(
			    "case %zu: '%s', want '%s'", i, err, cases[i].want);
	}
}

/* [route NAME]: route mode; never open, each address reachable and in
 * one place only. */
static void
test_route(void **state)
{
	static const char head[] =
	    "[gateway]\nfqdn = gw.example.net\n"
	    "dns_servers = 192.0.2.53, [2001:db8::53]:53\n"
	    "dns_timeout_ms = 1500\n";
	static const struct {
		const char *body, *err;
	} bad[] = {
	    {"[route t]\ndomains = example.org\n",
	        ":5: [route t] needs address"},
	    {"[route t]\naddress = 192.0.2.40\n",
	        ":5: [route t] serves no domain"},
	    {"[route t]\naddress = 192.0.2.40\nsmarthost = yes\n",
	        ":5: [route t] smarthost = yes needs allow_clients"},
	    {"[route t]\naddress = 192.0.2.40\nsmarthost = yes\n"
	     "allow_clients = any\n",
	        ":5: [route t] smarthost = yes needs allow_clients"},
	    {"[route t]\naddress = 127.0.0.1\n",
	        ":6: address: '127.0.0.1' lies"},
	    {"[route t]\naddress = 192.0.2.40\ndomains = example.org "
	     "mple..org\n",
	        ":7: domains: 'mple..org' is not a domain name"},
	    {"[route t]\naddress = 192.0.2.40\ndomains = example.org\n"
	     "[pair p]\nipv4 = 192.0.2.40\nipv6 = 2001:db8::25\n",
	        ":5: [route t]: 192.0.2.40 is also in a pair"},
	    {"[route t]\naddress = 192.0.2.40\ndomains = example.org\n"
	     "[route u]\naddress = 192.0.2.40\nserve_published = yes\n",
	        ":8: [route u]: 192.0.2.40 is in another [route]"},
	    {"[route t]\naddress = 192.0.2.40\ndomains = a.example\n"
	     "tls_server_name = mx.example\n",
	        ":8: unknown key 'tls_server_name' in [route t]"},
	    {"[route t]\naddress = 192.0.2.40\ndomains = a.example\n"
	     "identity = xforward\n",
	        ":8: identity: 'xforward': want xclient"},
	    {"[route t]\naddress = 192.0.2.40\ndomains = a.example\n"
	     "identity_required = maybe\n",
	        ":8: identity_required: 'maybe'"},
	};
	struct gw_config c;
	char text[1024], err[512];
	size_t i;

	(void)state;
	(void)snprintf(text, sizeof(text),
	    "%s[route tunnel]\naddress = 192.0.2.40\naddress = 2001:db8::40\n"
	    "serve_published = yes\ndomains = example.org, .example.com\n"
	    "size_max_bytes = 1000000\nidentity = proxy-v1\n"
	    "identity_required = yes\n"
	    "[route smart]\naddress = 2001:db8:1::40\nsmarthost = yes\n"
	    "allow_clients = 2001:db8:1::/64\n",
	    head);
	assert_int_equal(load(text, &c, err, sizeof(err)), 0);
	assert_int_equal(c.nroutes, 2);
	assert_int_equal(c.routes[0].naddrs, 2);
	assert_int_equal(c.routes[0].ndomains, 2);
	assert_string_equal(c.routes[0].domains[1], ".example.com");
	assert_int_equal(c.routes[0].size_max, 1000000);
	/* identity: the route's own, or -1 ([gateway]'s). */
	assert_int_equal(c.routes[0].identity.mode, SMTPFIX_ID_PROXY_V1);
	assert_int_equal(c.routes[0].identity.required, 1);
	assert_int_equal(c.routes[1].identity.mode, -1);
	assert_int_equal(c.routes[1].identity.required, -1);
	assert_int_equal(c.dest.nroutes, 2);
	assert_int_equal(c.dest_route[1].smarthost, 1);
	assert_non_null(c.dest_route[1].clients);
	assert_null(c.dest_route[0].clients);
	assert_int_equal(c.nown, 3);
	assert_string_equal(c.dns_servers, "192.0.2.53, [2001:db8::53]:53");
	assert_int_equal(c.dns_timeout_ms, 1500);
	assert_int_equal(c.dns_cache_max_s, 3600);
	gw_config_free(&c);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		(void)snprintf(text, sizeof(text), "%s%s", head, bad[i].body);
		err[0] = '\0';
		if (load(text, &c, err, sizeof(err)) == 0) {
			gw_config_free(&c);
			fail_msg("loaded: %s", bad[i].body);
		}
		if (strstr(err, bad[i].err) == NULL)
			fail_msg("want '%s', got '%s'", bad[i].err, err);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good),
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_bad),
	    cmocka_unit_test(test_policy),
	    cmocka_unit_test(test_nat64_only),
	    cmocka_unit_test(test_packet),
	    cmocka_unit_test(test_missing_file),
	    cmocka_unit_test(test_operations),
	    cmocka_unit_test(test_nul_and_control),
	    cmocka_unit_test(test_long_line),
	    cmocka_unit_test(test_not_a_file),
	    cmocka_unit_test(test_keys_known),
	    cmocka_unit_test(test_docs_keys),
	    cmocka_unit_test(test_route),
	    cmocka_unit_test_setup_teardown(
	        test_tls_defaults, tls_setup, tls_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_tls_per_pair, tls_setup, tls_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_tls_bad, tls_setup, tls_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
