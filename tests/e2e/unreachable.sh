#!/usr/bin/env bash
# e2e: smtp64d answers 421 and closes when the paired server cannot be
# reached.
#   192.0.2.30 -> [2001:db8::25]:25     s6 is up but nothing listens (RST)
#                                       -> 421 4.4.2
#   192.0.2.31 -> [2001:db8:99::25]:25  routed via s6, which does not forward
#                                       and drops silently: no answer at all
#                                       -> 421 4.4.1 after connect_timeout_s
#   192.0.2.32 -> [2001:db8:98::25]:25  blackhole route in gw: connect fails
#                                       at once -> some 421 4.4.x
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null
. "$here/../lab/lib.sh"

CONNECT_TIMEOUT=3

# banner CLIENT_NS ADDR: connects, prints the first line the gateway sends,
# then "eof" if the gateway closes within 5 s or "open" if it does not,
# then the elapsed milliseconds until the first line.
banner() {
	# shellcheck disable=SC2016 # expanded by the inner bash
	ip netns exec "$1" timeout 30 bash -c '
		t0=$(date +%s%N)
		exec 3<>"/dev/tcp/$1/25" || { echo "connect-failed"; exit 1; }
		IFS= read -r -t 20 line <&3; rc=$?
		t1=$(date +%s%N)
		printf "%s\n" "$line" | tr -d "\r"
		if [ $rc -eq 0 ]; then
			# Send nothing; the gateway must close on its own.
			IFS= read -r -t 5 more <&3; rc2=$?
			if [ $rc2 -eq 1 ] && [ -z "$more" ]; then echo eof
			elif [ $rc2 -gt 128 ]; then echo open
			else echo "more:$more"; fi
		else
			echo "no-line rc=$rc"
		fi
		echo $(( (t1 - t0) / 1000000 ))
	' _ "$2"
}

lab_init
lab_topology c4 gw s6 || { echo "lab setup failed"; exit 1; }
lab_addr "$NS_GW" to-c4 192.0.2.31/24
lab_addr "$NS_GW" to-c4 192.0.2.32/24
# No answer: s6 has forwarding off and drops what is not for it, silently.
lab_route "$NS_GW" 2001:db8:99::/64 via "$S6_ADDR"
# Blackhole: the kernel refuses the connect at once (EINVAL).
ip -n "$NS_GW" -6 route add blackhole 2001:db8:98::/64

conf=$LAB_DIR/smtp64.conf
lab_gw_conf "$conf" always "connect_timeout_s = $CONNECT_TIMEOUT"
cat >>"$conf" <<'CONF'

[pair dead]
ipv4 = 192.0.2.31
ipv6 = 2001:db8:99::25

[pair hole]
ipv4 = 192.0.2.32
ipv6 = 2001:db8:98::25
CONF

if ! lab_smtp64d_start "$conf"; then
	fail "smtp64d starts"
	lab_dump_logs
	lab_summary
	exit 1
fi
pass "smtp64d starts"

# check_421 WHAT ADDR CODE MAX_MS MIN_MS: CODE like 4.4.2; x matches any digit.
check_421() {
	local what=$1 addr=$2 code=$3 max_ms=$4 min_ms=$5 out line state ms code_re
	code_re=${code//./\\.}
	code_re=${code_re//x/[0-9]}
	out=$(banner "$NS_C4" "$addr")
	line=$(sed -n 1p <<<"$out")
	state=$(sed -n 2p <<<"$out")
	ms=$(sed -n 3p <<<"$out")
	echo "    $addr: '$line' then $state after ${ms:-?} ms"
	check "$what: client gets '421 $code' ($line)" \
		grep -qE "^421 $code_re( |$)" <<<"$line"
	check "$what: the gateway closes the connection after the 421" \
		test "$state" = eof
	check "$what: reply within $min_ms..$max_ms ms (${ms:-?} ms)" \
		test "${ms:-999999}" -le "$max_ms" -a "${ms:-0}" -ge "$min_ms"
}

echo "# nothing listens on [$S6_ADDR]:25 (RST)"
check_421 "refused" "$MX6_V4" 4.4.2 2000 0
echo "# [2001:db8:99::25] never answers (connect_timeout_s = $CONNECT_TIMEOUT)"
check_421 "no answer" 192.0.2.31 4.4.1 $(((CONNECT_TIMEOUT + 2) * 1000)) \
	$(((CONNECT_TIMEOUT - 1) * 1000))
echo "# [2001:db8:98::25] is blackholed in gw"
check_421 "blackhole" 192.0.2.32 4.4.x 2000 0

echo "# the same through swaks"
out=$LAB_DIR/swaks.out
ip netns exec "$NS_C4" swaks --server "$MX6_V4" --helo mta.example.com \
	--from a@example.net --to user@example.org --timeout 10 \
	</dev/null >"$out" 2>&1
rc=$?
check "swaks to the refused pair fails (rc=$rc)" test "$rc" -ne 0
check "swaks shows the 421 4.4.2 banner" grep -qE '^<\*\* +421 4\.4\.2' "$out"
check "smtp64d still running after the failures" kill -0 "$SMTP64D_PID"
check "smtp64d logged a close for every session" \
	test "$(grep -c 'event=close' "$SMTP64D_LOG")" -ge 4

[ "$FAIL" -eq 0 ] || lab_dump_logs
lab_summary
