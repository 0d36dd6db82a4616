/*
 * smtpfix/tlspolicy_test.c: unit tests of smtpfix/tlspolicy.c.
 *
 * Every combination of the inputs is listed with its expected answer,
 * written out by hand (not computed from the same rules), so a change of
 * policy shows up here as a changed row.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "smtpfix/stream.h"
#include "smtpfix/tlspolicy.h"

#define PT SMTPFIX_TLS_PASSTHROUGH
#define TE SMTPFIX_TLS_TERMINATE
#define ST SMTPFIX_TLS_STRIP
#define OPP SMTPFIX_TLSUP_OPPORTUNISTIC
#define VER SMTPFIX_TLSUP_VERIFY
#define REQ SMTPFIX_TLSUP_REQUIRE
#define FWD SMTPFIX_TLSA_FORWARD
#define UPS SMTPFIX_TLSA_UPSTREAM
#define CLI SMTPFIX_TLSA_CLIENT_ONLY
#define RPL SMTPFIX_TLSA_REPLY
#define REL SMTPFIX_TLSA_RELAY

/* One row: the inputs, the EHLO filter, the answer to STARTTLS. */
struct row {
	enum smtpfix_tls_mode mode;
	enum smtpfix_tls_upstream up;
	int cert, offered, ctls;
	int drop, offer;
	enum smtpfix_tls_act act;
	const char *code; /* REPLY only */
};

static const struct row rows[] = {
    /* passthrough: the server's offer is relayed, STARTTLS forwarded */
    {PT, OPP, 0, 0, 0, 0, 0, FWD, NULL},
    {PT, OPP, 0, 0, 1, 0, 0, FWD, NULL},
    {PT, OPP, 0, 1, 0, 0, 0, FWD, NULL},
    {PT, OPP, 0, 1, 1, 0, 0, FWD, NULL},
    {PT, OPP, 1, 0, 0, 0, 0, FWD, NULL},
    {PT, OPP, 1, 0, 1, 0, 0, FWD, NULL},
    {PT, OPP, 1, 1, 0, 0, 0, FWD, NULL},
    {PT, OPP, 1, 1, 1, 0, 0, FWD, NULL},
    {PT, VER, 0, 0, 0, 0, 0, FWD, NULL},
    {PT, VER, 0, 0, 1, 0, 0, FWD, NULL},
    {PT, VER, 0, 1, 0, 0, 0, FWD, NULL},
    {PT, VER, 0, 1, 1, 0, 0, FWD, NULL},
    {PT, VER, 1, 0, 0, 0, 0, FWD, NULL},
    {PT, VER, 1, 0, 1, 0, 0, FWD, NULL},
    {PT, VER, 1, 1, 0, 0, 0, FWD, NULL},
    {PT, VER, 1, 1, 1, 0, 0, FWD, NULL},
    {PT, REQ, 0, 0, 0, 0, 0, FWD, NULL},
    {PT, REQ, 0, 0, 1, 0, 0, FWD, NULL},
    {PT, REQ, 0, 1, 0, 0, 0, FWD, NULL},
    {PT, REQ, 0, 1, 1, 0, 0, FWD, NULL},
    {PT, REQ, 1, 0, 0, 0, 0, FWD, NULL},
    {PT, REQ, 1, 0, 1, 0, 0, FWD, NULL},
    {PT, REQ, 1, 1, 0, 0, 0, FWD, NULL},
    {PT, REQ, 1, 1, 1, 0, 0, FWD, NULL},
    /* strip: never offered, refused locally */
    {ST, OPP, 0, 0, 0, 1, 0, RPL, "502 5.5.1"},
    {ST, OPP, 0, 0, 1, 1, 0, RPL, "502 5.5.1"},
    {ST, OPP, 0, 1, 0, 1, 0, RPL, "502 5.5.1"},
    {ST, OPP, 0, 1, 1, 1, 0, RPL, "502 5.5.1"},
    {ST, OPP, 1, 0, 0, 1, 0, RPL, "502 5.5.1"},
    {ST, OPP, 1, 0, 1, 1, 0, RPL, "502 5.5.1"},
    {ST, OPP, 1, 1, 0, 1, 0, RPL, "502 5.5.1"},
    {ST, OPP, 1, 1, 1, 1, 0, RPL, "502 5.5.1"},
    {ST, VER, 0, 0, 0, 1, 0, RPL, "502 5.5.1"},
    {ST, VER, 0, 0, 1, 1, 0, RPL, "502 5.5.1"},
    {ST, VER, 0, 1, 0, 1, 0, RPL, "502 5.5.1"},
    {ST, VER, 0, 1, 1, 1, 0, RPL, "502 5.5.1"},
    {ST, VER, 1, 0, 0, 1, 0, RPL, "502 5.5.1"},
    {ST, VER, 1, 0, 1, 1, 0, RPL, "502 5.5.1"},
    {ST, VER, 1, 1, 0, 1, 0, RPL, "502 5.5.1"},
    {ST, VER, 1, 1, 1, 1, 0, RPL, "502 5.5.1"},
    {ST, REQ, 0, 0, 0, 1, 0, RPL, "502 5.5.1"},
    {ST, REQ, 0, 0, 1, 1, 0, RPL, "502 5.5.1"},
    {ST, REQ, 0, 1, 0, 1, 0, RPL, "502 5.5.1"},
    {ST, REQ, 0, 1, 1, 1, 0, RPL, "502 5.5.1"},
    {ST, REQ, 1, 0, 0, 1, 0, RPL, "502 5.5.1"},
    {ST, REQ, 1, 0, 1, 1, 0, RPL, "502 5.5.1"},
    {ST, REQ, 1, 1, 0, 1, 0, RPL, "502 5.5.1"},
    {ST, REQ, 1, 1, 1, 1, 0, RPL, "502 5.5.1"},
    /* terminate without a certificate: as passthrough */
    {TE, OPP, 0, 0, 0, 0, 0, FWD, NULL},
    {TE, OPP, 0, 0, 1, 0, 0, FWD, NULL},
    {TE, OPP, 0, 1, 0, 0, 0, FWD, NULL},
    {TE, OPP, 0, 1, 1, 0, 0, FWD, NULL},
    {TE, VER, 0, 0, 0, 0, 0, FWD, NULL},
    {TE, VER, 0, 0, 1, 0, 0, FWD, NULL},
    {TE, VER, 0, 1, 0, 0, 0, FWD, NULL},
    {TE, VER, 0, 1, 1, 0, 0, FWD, NULL},
    {TE, REQ, 0, 0, 0, 0, 0, FWD, NULL},
    {TE, REQ, 0, 0, 1, 0, 0, FWD, NULL},
    {TE, REQ, 0, 1, 0, 0, 0, FWD, NULL},
    {TE, REQ, 0, 1, 1, 0, 0, FWD, NULL},
    /* terminate, opportunistic: TLS for the client even when the
     * server offers none */
    {TE, OPP, 1, 0, 0, 1, 1, CLI, NULL},
    {TE, OPP, 1, 0, 1, 1, 0, RPL, "503 5.5.1"},
    {TE, OPP, 1, 1, 0, 1, 1, UPS, NULL},
    {TE, OPP, 1, 1, 1, 1, 0, RPL, "503 5.5.1"},
    /* terminate, verify and require: both legs or neither */
    {TE, VER, 1, 0, 0, 1, 0, RPL, "454 4.7.0"},
    {TE, VER, 1, 0, 1, 1, 0, RPL, "503 5.5.1"},
    {TE, VER, 1, 1, 0, 1, 1, UPS, NULL},
    {TE, VER, 1, 1, 1, 1, 0, RPL, "503 5.5.1"},
    {TE, REQ, 1, 0, 0, 1, 0, RPL, "454 4.7.0"},
    {TE, REQ, 1, 0, 1, 1, 0, RPL, "503 5.5.1"},
    {TE, REQ, 1, 1, 0, 1, 1, UPS, NULL},
    {TE, REQ, 1, 1, 1, 1, 0, RPL, "503 5.5.1"},
};

#define NROWS (sizeof(rows) / sizeof(rows[0]))

static void
row_name(const struct row *r, char *buf, size_t cap)
{
	(void)snprintf(buf, cap, "mode=%s up=%s cert=%d offered=%d ctls=%d",
	    smtpfix_tlspolicy_mode_name(r->mode),
	    smtpfix_tlspolicy_upstream_name(r->up), r->cert, r->offered,
	    r->ctls);
}

/* The table covers each combination exactly once. */
static void
test_table_complete(void **state)
{
	unsigned seen[3][3][2][2][2];
	size_t i;

	(void)state;
	memset(seen, 0, sizeof(seen));
	for (i = 0; i < NROWS; i++) {
		const struct row *r = &rows[i];

		seen[r->mode][r->up][r->cert][r->offered][r->ctls]++;
	}
	assert_int_equal(NROWS, 3 * 3 * 2 * 2 * 2);
	for (i = 0; i < 72; i++)
		assert_int_equal(((unsigned *)seen)[i], 1);
}

static void
test_ehlo(void **state)
{
	struct smtpfix_tlspolicy pol;
	struct smtpfix_tls_state st;
	struct smtpfix_tls_ehlo e;
	char name[128];
	size_t i;

	(void)state;
	for (i = 0; i < NROWS; i++) {
		const struct row *r = &rows[i];

		pol.mode = r->mode;
		pol.upstream = r->up;
		pol.have_cert = r->cert;
		st.server_offered = r->offered;
		st.client_tls = r->ctls;
		st.server_failed = 0;
		smtpfix_tlspolicy_ehlo(&pol, &st, &e);
		row_name(r, name, sizeof(name));
		if (e.drop_server != r->drop || e.offer != r->offer)
			fail_msg("%s: drop=%d offer=%d, want %d %d", name,
			    e.drop_server, e.offer, r->drop, r->offer);
	}
}

static void
test_starttls(void **state)
{
	struct smtpfix_tlspolicy pol;
	struct smtpfix_tls_state st;
	struct smtpfix_tls_decision d;
	char name[128], line[512];
	size_t i;

	(void)state;
	for (i = 0; i < NROWS; i++) {
		const struct row *r = &rows[i];

		pol.mode = r->mode;
		pol.upstream = r->up;
		pol.have_cert = r->cert;
		st.server_offered = r->offered;
		st.client_tls = r->ctls;
		st.server_failed = 0;
		smtpfix_tlspolicy_starttls(&pol, &st, &d);
		row_name(r, name, sizeof(name));
		if (d.act != r->act)
			fail_msg("%s: act=%d, want %d", name, d.act, r->act);
		/* Every decision names itself for the log, in one token. */
		assert_non_null(d.why);
		assert_null(strpbrk(d.why, " =\"\r\n"));
		if (r->act != RPL) {
			assert_null(d.code_enh);
			assert_int_equal(d.close, 0);
			continue;
		}
		assert_non_null(d.code_enh);
		assert_non_null(d.text);
		if (strcmp(d.code_enh, r->code) != 0)
			fail_msg("%s: %s, want %s", name, d.code_enh, r->code);
		/* None of these ends the session: the client may go on in
		 * clear text, as RFC 3207 §4 allows after 454. */
		assert_int_equal(d.close, 0);
		/* RFC 5321 §4.5.3.1.5: the reply fits a 512-octet line
		 * with the longest FQDN the configuration accepts. */
		assert_true(smtpfix_reply_fmt(line, SMTPFIX_REPLY_MIN,
		                "a.example.net", 13, d.code_enh, d.text) > 0);
		assert_true(strlen(d.code_enh) + strlen(d.text) + 253 + 4 <=
		            SMTPFIX_REPLY_MIN);
	}
}

/* Upstream failures, after an UPSTREAM decision (and, defensively, in
 * every other mode too). */
struct frow {
	enum smtpfix_tls_mode mode;
	enum smtpfix_tls_upstream up;
	int cert;
	enum smtpfix_tls_fail why;
	enum smtpfix_tls_act act;
	const char *code;
	int close;
};

#define RF SMTPFIX_TLSF_REFUSED
#define HS SMTPFIX_TLSF_HANDSHAKE
#define VF SMTPFIX_TLSF_VERIFY

static const struct frow frows[] = {
    {PT, OPP, 0, RF, REL, NULL, 0},
    {PT, OPP, 0, HS, RPL, "421 4.7.0", 1},
    {PT, OPP, 0, VF, RPL, "421 4.7.0", 1},
    {PT, OPP, 1, RF, REL, NULL, 0},
    {PT, OPP, 1, HS, RPL, "421 4.7.0", 1},
    {PT, OPP, 1, VF, RPL, "421 4.7.0", 1},
    {PT, VER, 0, RF, REL, NULL, 0},
    {PT, VER, 0, HS, RPL, "421 4.7.0", 1},
    {PT, VER, 0, VF, RPL, "421 4.7.0", 1},
    {PT, VER, 1, RF, REL, NULL, 0},
    {PT, VER, 1, HS, RPL, "421 4.7.0", 1},
    {PT, VER, 1, VF, RPL, "421 4.7.0", 1},
    {PT, REQ, 0, RF, REL, NULL, 0},
    {PT, REQ, 0, HS, RPL, "421 4.7.0", 1},
    {PT, REQ, 0, VF, RPL, "421 4.7.0", 1},
    {PT, REQ, 1, RF, REL, NULL, 0},
    {PT, REQ, 1, HS, RPL, "421 4.7.0", 1},
    {PT, REQ, 1, VF, RPL, "421 4.7.0", 1},
    {ST, OPP, 0, RF, REL, NULL, 0},
    {ST, OPP, 0, HS, RPL, "421 4.7.0", 1},
    {ST, OPP, 0, VF, RPL, "421 4.7.0", 1},
    {ST, OPP, 1, RF, REL, NULL, 0},
    {ST, OPP, 1, HS, RPL, "421 4.7.0", 1},
    {ST, OPP, 1, VF, RPL, "421 4.7.0", 1},
    {ST, VER, 0, RF, REL, NULL, 0},
    {ST, VER, 0, HS, RPL, "421 4.7.0", 1},
    {ST, VER, 0, VF, RPL, "421 4.7.0", 1},
    {ST, VER, 1, RF, REL, NULL, 0},
    {ST, VER, 1, HS, RPL, "421 4.7.0", 1},
    {ST, VER, 1, VF, RPL, "421 4.7.0", 1},
    {ST, REQ, 0, RF, REL, NULL, 0},
    {ST, REQ, 0, HS, RPL, "421 4.7.0", 1},
    {ST, REQ, 0, VF, RPL, "421 4.7.0", 1},
    {ST, REQ, 1, RF, REL, NULL, 0},
    {ST, REQ, 1, HS, RPL, "421 4.7.0", 1},
    {ST, REQ, 1, VF, RPL, "421 4.7.0", 1},
    {TE, OPP, 0, RF, REL, NULL, 0},
    {TE, OPP, 0, HS, RPL, "421 4.7.0", 1},
    {TE, OPP, 0, VF, RPL, "421 4.7.0", 1},
    /* opportunistic: a server that says no to STARTTLS still leaves the
     * client its TLS, over a clear-text upstream */
    {TE, OPP, 1, RF, CLI, NULL, 0},
    /* opportunistic: a failed handshake falls back to clear text on a
     * new connection (RFC 7435 §1) */
    {TE, OPP, 1, HS, SMTPFIX_TLSA_RECONNECT, NULL, 0},
    {TE, OPP, 1, VF, RPL, "421 4.7.0", 1},
    {TE, VER, 0, RF, REL, NULL, 0},
    {TE, VER, 0, HS, RPL, "421 4.7.0", 1},
    {TE, VER, 0, VF, RPL, "421 4.7.0", 1},
    {TE, VER, 1, RF, REL, NULL, 0},
    {TE, VER, 1, HS, RPL, "421 4.7.0", 1},
    {TE, VER, 1, VF, RPL, "421 4.7.0", 1},
    {TE, REQ, 0, RF, REL, NULL, 0},
    {TE, REQ, 0, HS, RPL, "421 4.7.0", 1},
    {TE, REQ, 0, VF, RPL, "421 4.7.0", 1},
    {TE, REQ, 1, RF, REL, NULL, 0},
    {TE, REQ, 1, HS, RPL, "421 4.7.0", 1},
    {TE, REQ, 1, VF, RPL, "421 4.7.0", 1},
};

#define NFROWS (sizeof(frows) / sizeof(frows[0]))

static void
test_upstream_fail(void **state)
{
	struct smtpfix_tlspolicy pol;
	struct smtpfix_tls_decision d;
	unsigned seen[3][3][2][3];
	size_t i;

	(void)state;
	memset(seen, 0, sizeof(seen));
	for (i = 0; i < NFROWS; i++) {
		const struct frow *r = &frows[i];

		seen[r->mode][r->up][r->cert][r->why]++;
		pol.mode = r->mode;
		pol.upstream = r->up;
		pol.have_cert = r->cert;
		smtpfix_tlspolicy_upstream_fail(&pol, r->why, &d);
		if (d.act != r->act || d.close != r->close)
			fail_msg("row %zu: act=%d close=%d, want %d %d", i,
			    d.act, d.close, r->act, r->close);
		assert_non_null(d.why);
		if (r->code == NULL) {
			assert_null(d.code_enh);
			continue;
		}
		assert_non_null(d.code_enh);
		assert_string_equal(d.code_enh, r->code);
		assert_non_null(d.text);
		assert_true(strlen(d.code_enh) + strlen(d.text) + 253 + 4 <=
		            SMTPFIX_REPLY_MIN);
	}
	assert_int_equal(NFROWS, 3 * 3 * 2 * 3);
	for (i = 0; i < NFROWS; i++)
		assert_int_equal(((unsigned *)seen)[i], 1);
}

/* Side by side only where every upstream outcome leaves the client in
 * TLS: terminate with a certificate, opportunistic upstream. */
static void
test_parallel(void **state)
{
	struct smtpfix_tlspolicy pol;
	unsigned mode, up, cert;
	int want;

	(void)state;
	for (mode = 0; mode < 3; mode++)
		for (up = 0; up < 3; up++)
			for (cert = 0; cert < 2; cert++) {
				pol.mode = (enum smtpfix_tls_mode)mode;
				pol.upstream = (enum smtpfix_tls_upstream)up;
				pol.have_cert = (int)cert;
				want = mode == TE && up == OPP && cert == 1;
				if (smtpfix_tlspolicy_parallel(&pol) != want)
					fail_msg("mode %u upstream %u cert %u",
					    mode, up, cert);
			}
}

/* A server remembered for a failed handshake: opportunistic gives the
 * client its TLS over clear text upstream; require and verify still try
 * (and refuse when it fails). */
static void
test_remembered(void **state)
{
	struct smtpfix_tlspolicy pol = {TE, OPP, 1};
	struct smtpfix_tls_state st = {1, 0, 1};
	struct smtpfix_tls_decision d;

	(void)state;
	smtpfix_tlspolicy_starttls(&pol, &st, &d);
	assert_int_equal(d.act, CLI);
	assert_string_equal(d.why, "client_only_remembered");
	pol.upstream = REQ;
	smtpfix_tlspolicy_starttls(&pol, &st, &d);
	assert_int_equal(d.act, UPS);
	pol.upstream = VER;
	smtpfix_tlspolicy_starttls(&pol, &st, &d);
	assert_int_equal(d.act, UPS);
	/* Inside TLS already: the same answer as without the note. */
	pol.upstream = OPP;
	st.client_tls = 1;
	smtpfix_tlspolicy_starttls(&pol, &st, &d);
	assert_int_equal(d.act, RPL);
	assert_string_equal(d.code_enh, "503 5.5.1");
}

/* The two failures a client is told about say which one it was. */
static void
test_fail_texts_differ(void **state)
{
	struct smtpfix_tlspolicy pol = {TE, VER, 1};
	struct smtpfix_tls_decision a, b;

	(void)state;
	smtpfix_tlspolicy_upstream_fail(&pol, HS, &a);
	smtpfix_tlspolicy_upstream_fail(&pol, VF, &b);
	assert_string_not_equal(a.text, b.text);
}

static void
test_mode(void **state)
{
	struct smtpfix_tlspolicy pol;

	(void)state;
	pol.upstream = OPP;
	pol.mode = PT;
	pol.have_cert = 0;
	assert_int_equal(smtpfix_tlspolicy_mode(&pol), PT);
	pol.have_cert = 1;
	assert_int_equal(smtpfix_tlspolicy_mode(&pol), PT);
	pol.mode = ST;
	pol.have_cert = 0;
	assert_int_equal(smtpfix_tlspolicy_mode(&pol), ST);
	pol.have_cert = 1;
	assert_int_equal(smtpfix_tlspolicy_mode(&pol), ST);
	pol.mode = TE;
	pol.have_cert = 0;
	assert_int_equal(smtpfix_tlspolicy_mode(&pol), PT);
	pol.have_cert = 1;
	assert_int_equal(smtpfix_tlspolicy_mode(&pol), TE);
	/* An out-of-range value is never taken for terminate. */
	pol.mode = (enum smtpfix_tls_mode)7;
	assert_int_equal(smtpfix_tlspolicy_mode(&pol), PT);

	assert_int_equal(smtpfix_tlspolicy_default_mode(0), PT);
	assert_int_equal(smtpfix_tlspolicy_default_mode(1), TE);
}

static void
test_names(void **state)
{
	static const char *const modes[] = {
	    "passthrough", "terminate", "strip"};
	static const char *const ups[] = {"opportunistic", "verify", "require"};
	static const char *const bad[] = {"", "Terminate", "terminate ", "none",
	    "pass", "stripped", "verify\n"};
	enum smtpfix_tls_mode m;
	enum smtpfix_tls_upstream u;
	size_t i;

	(void)state;
	for (i = 0; i < 3; i++) {
		assert_int_equal(smtpfix_tlspolicy_mode_parse(modes[i], &m), 0);
		assert_int_equal(m, i);
		assert_string_equal(smtpfix_tlspolicy_mode_name(m), modes[i]);
		assert_int_equal(
		    smtpfix_tlspolicy_upstream_parse(ups[i], &u), 0);
		assert_int_equal(u, i);
		assert_string_equal(smtpfix_tlspolicy_upstream_name(u), ups[i]);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		m = PT;
		u = OPP;
		assert_int_equal(smtpfix_tlspolicy_mode_parse(bad[i], &m), -1);
		assert_int_equal(
		    smtpfix_tlspolicy_upstream_parse(bad[i], &u), -1);
		assert_int_equal(m, PT);
		assert_int_equal(u, OPP);
	}
	assert_string_equal(
	    smtpfix_tlspolicy_mode_name((enum smtpfix_tls_mode)9), "?");
	assert_string_equal(
	    smtpfix_tlspolicy_upstream_name((enum smtpfix_tls_upstream)9), "?");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table_complete),
	    cmocka_unit_test(test_ehlo),
	    cmocka_unit_test(test_starttls),
	    cmocka_unit_test(test_parallel),
	    cmocka_unit_test(test_upstream_fail),
	    cmocka_unit_test(test_fail_texts_differ),
	    cmocka_unit_test(test_remembered),
	    cmocka_unit_test(test_mode),
	    cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
