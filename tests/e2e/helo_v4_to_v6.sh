#!/usr/bin/env bash
# e2e: a v4-only client (c4) reaches the v6-only Postfix MX (s6) through
# smtp64d at 192.0.2.30.  With helo_rewrite = always every HELO (IPv6
# literal, IPv4 literal, FQDN) is delivered as "from gw.example.net"; with
# helo_rewrite = off the literal HELO is refused by the strict MX.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null
. "$here/../lab/lib.sh"
# shellcheck source=/dev/null
. "$here/../lab/helo_suite.sh"

lab_init
lab_topology c4 gw s6 || { echo "lab setup failed"; exit 1; }
if ! lab_postfix_start s6; then
	fail "Postfix starts on s6"
	lab_dump_logs
	lab_summary
	exit 1
fi
pass "Postfix starts on s6 ($S6_ADDR)"

helo_suite c4 s6 "$MX6_V4" "$GW_S6_ADDR" \
	'[IPv6:2001:db8::1]' '[192.0.2.10]' mta.example.com

lab_summary
