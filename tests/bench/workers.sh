#!/usr/bin/env bash
# tests/bench/workers.sh: W1 (sessions/s, one small message a session)
# through smtp64d with workers = 1 and 2, from 1 and from 8 client
# addresses.  Workers are steered by the client's address
# (SO_ATTACH_REUSEPORT_CBPF): one address always meets one worker, so a
# second worker helps only when there are several clients.  Client
# addresses are spread per connection by an nft "numgen inc" SNAT rule
# in the client namespace (smtp-source cannot bind an address).
#
#   bash tests/bench/workers.sh [--sessions N] [--rounds N]
#
# Prints one line per cell (median over the rounds) and a Markdown table
# on its last lines.  Namespaces come from tests/lab/lib.sh and are
# removed at exit; every loop is bounded.
set -u
. "$(dirname "$0")/../lab/lib.sh"
N=3000 ROUNDS=3 CONC=20
while [ $# -gt 0 ]; do
	case $1 in
	--sessions) N=$2; shift ;;
	--rounds) ROUNDS=$2; shift ;;
	*) echo "usage: $0 [--sessions N] [--rounds N]" >&2; exit 2 ;;
	esac
	shift
done
case "$N$ROUNDS" in *[!0-9]*) exit 2 ;; esac
[ "$N" -ge 100 ] && [ "$N" -le 100000 ] && [ "$ROUNDS" -ge 1 ] && [ "$ROUNDS" -le 10 ] || exit 2

lab_init
lab_topology c4 gw s6 || exit 1
for i in $(seq 11 17); do lab_addr "$NS_C4" eth0 "192.0.2.$i/24"; done
lab_bg "$LAB_DIR/sink.out" "$NS_S6" smtp-sink -u nobody -c -m 2000 \
    "[$S6_ADDR]:25" 4096
wait_port "$NS_S6" "$S6_ADDR" 25 || exit 1
sink_count() { python3 "$LAB_ROOT/tests/bench/bench.py" sinkcount "$LAB_DIR/sink.out"; }
spread() { # spread 1|8: the client's source addresses
	ip netns exec "$NS_C4" nft flush ruleset
	[ "$1" -gt 1 ] || return 0
	ip netns exec "$NS_C4" nft -f - <<NFT
table ip spread {
	chain post {
		type nat hook postrouting priority srcnat;
		ip daddr $MX6_V4 tcp dport 25 snat to numgen inc mod $1 map { 0 : 192.0.2.10, 1 : 192.0.2.11, 2 : 192.0.2.12, 3 : 192.0.2.13, 4 : 192.0.2.14, 5 : 192.0.2.15, 6 : 192.0.2.16, 7 : 192.0.2.17 }
	}
}
NFT
}
cpu_tree() { # utime+stime ticks of PID and its children
	local t=0 p
	for p in "$1" $(pgrep -P "$1"); do
		t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
	done
	echo "$t"
}
declare -A RES
hz=$(getconf CLK_TCK)
for r in $(seq 1 "$ROUNDS"); do
	for w in 1 2; do
		lab_gw_conf "$LAB_DIR/gw.conf" always "workers = $w
max_sessions_per_client = 1000"
		lab_smtp64d_start "$LAB_DIR/gw.conf" "$LAB_DIR/gw-$w.log" || exit 1
		for c in 1 8; do
			spread "$c"
			l0=$(wc -l <"$SMTP64D_LOG")
			s0=$(sink_count)
			c0=$(cpu_tree "$SMTP64D_PID")
			t0=$(date +%s.%N)
			timeout 300 ip netns exec "$NS_C4" smtp-source -s "$CONC" \
			    -m "$N" -f bench@example.net -t user@example.org \
			    "$MX6_V4:25" >"$LAB_DIR/src.out" 2>&1
			t1=$(date +%s.%N)
			sleep 0.3
			c1=$(cpu_tree "$SMTP64D_PID")
			got=$(($(sink_count) - s0))
			v=$(awk -v n="$N" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", n / (b - a)}')
			cpu=$(awk -v t=$((c1 - c0)) -v hz="$hz" -v n="$N" 'BEGIN {printf "%.0f", t * 1e6 / hz / n}')
			[ "$got" -eq "$N" ] || v="FAILED($got/$N)"
			seen=$(tail -n "+$((l0 + 1))" "$SMTP64D_LOG" |
			    grep -o 'event=open client=[0-9.]*' | sort -u | wc -l)
			ws=$(tail -n "+$((l0 + 1))" "$SMTP64D_LOG" |
			    grep -o 'session=[0-9a-f][0-9a-f]' | sort -u | wc -l)
			echo "round $r workers $w clients $c: $v sessions/s, $cpu us CPU/session ($seen client addresses seen, $ws workers served)"
			RES[$w.$c]="${RES[$w.$c]:-} $v"
			RES[cpu$w.$c]="${RES[cpu$w.$c]:-} $cpu"
		done
		lab_smtp64d_stop
	done
done
med() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
echo
echo "| workers | client addresses | sessions/s (median of $ROUNDS) | smtp64d CPU µs/session |"
echo "|---|---|---|---|"
for w in 1 2; do
	for c in 1 8; do
		echo "| $w | $c | $(med <<<"${RES[$w.$c]}") | $(med <<<"${RES[cpu$w.$c]}") |"
	done
done
lab_summary >/dev/null 2>&1 || true
