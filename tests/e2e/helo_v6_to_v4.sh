#!/usr/bin/env bash
# e2e: a v6-only client (c6) reaches the v4-only Postfix MX (s4) through
# smtp64d at 2001:db8:1::25.  With helo_rewrite = always every HELO (IPv6
# literal, IPv4 literal, FQDN) is delivered as "from gw.example.net"; with
# helo_rewrite = off the literal HELO is refused by the strict MX.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null
. "$here/../lab/lib.sh"
# shellcheck source=/dev/null
. "$here/../lab/helo_suite.sh"

lab_init
lab_topology c6 gw s4 || { echo "lab setup failed"; exit 1; }
if ! lab_postfix_start s4; then
	fail "Postfix starts on s4"
	lab_dump_logs
	lab_summary
	exit 1
fi
pass "Postfix starts on s4 ($S4_ADDR)"

helo_suite c6 s4 "$MX4_V6" "$GW_S4_ADDR" \
	'[IPv6:2001:db8:1::10]' '[198.51.100.10]' mta.example.com

lab_summary
