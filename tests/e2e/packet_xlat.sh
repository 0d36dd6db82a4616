#!/usr/bin/env bash
# e2e: the packet path.  Everything but SMTP between paired addresses is
# translated per packet (RFC 7915, pairs as RFC 7757 EAM, an RFC 6052
# prefix) through NFQUEUE, both directions, while TCP/25 still goes to
# the proxy.
#
#   c4 192.0.2.10 --- [gw] 192.0.2.30 = 2001:db8::25 --- s6
#                          192.0.2.10 = 2001:db8:64::c000:20a (prefix /96)
#   c6 2001:db8:1::10 = 198.51.100.110 [gw] 2001:db8:1::25 = 198.51.100.25 s4
#
# gw keeps IP forwarding off: a packet that crosses has been translated.
# Its raw table sends packets to the paired addresses and the prefix to
# NFQUEUE 3, except TCP with port 25 either end (the proxy's, as
# docs/operations.md writes them).  The translator is smtp64d itself when
# it knows the [packet] section, else tests/e2e/nfq_driver.c (the same
# gateway/nfq.c), built here (NFQ_CFLAGS: its compiler flags, e.g. the
# sanitizers).
#
# Checked: ICMP echo both ways on both pairs of hosts (reply TTL 63: it
# came through, the gateway's own would say 64); UDP and TCP both ways
# (the far end sees the translated source and the bytes intact); iperf3
# TCP both ways and UDP 64-octet; a 3000-octet UDP datagram without DF
# (IPv4 fragments -> Fragment headers, cut again to 1280); a 1328-octet
# ping with DF through whole (RFC 7915 §4.1: DF packets are held to the
# IPv6 link's MTU, 1500, not to ipv6_mtu_bytes); Fragmentation Needed with
# MTU 1480 (DF set, 1500 octets, 1520 translated); Time Exceeded at
# TTL 1; a fragmented ping dropped and counted; SMTP relayed by the proxy
# (the MX sees the gateway, not the client's prefix address); an IPv6
# source under the prefix dropped as spoofed; the counters.
#
# PACKET_ENGINE=bpf (tests/e2e/packet_xlat_bpf.sh) runs it all again with
# [packet] engine = bpf: the tc program translates the common case and
# forwards it itself, everything else takes the NFQUEUE path as before.
# Its routing (bpf_fib_lookup) needs forwarding on in gw, so there the
# FORWARD chains drop everything instead: still nothing crosses
# untranslated.  Checked besides: the program attached, and both ways
# counted by it; the cases above that it must hand on (TTL, too big,
# fragments, spoofed) still answered or counted by the NFQUEUE path.
set -u
ENGINE=${PACKET_ENGINE:-nfqueue}
USER_AS=${PACKET_USER:-}	# user = (packet_xlat_bpf.sh: nobody)
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null
. "$here/../lab/lib.sh"

QUEUE=3
PFX=2001:db8:64::/96
C4_V6=2001:db8:64::c000:20a	# c4 under the prefix
C6_V4=198.51.100.110		# stands for c6
PEER=$here/peer.py

lab_init
for t in iptables ip6tables ping iperf3 python3 cc pkg-config; do
	command -v "$t" >/dev/null 2>&1 || {
		fail "tool $t present (tools/install-deps)"
		lab_summary
		exit 1
	}
done
lab_topology c4 gw s6 c6 s4 || { fail "lab topology"; lab_summary; exit 1; }
lab_addr "$NS_GW" to-s4 "$C6_V4/24"
if [ "$ENGINE" = bpf ]; then
	for t in iptables ip6tables; do
		ip netns exec "$NS_GW" "$t" -P FORWARD DROP
	done
	lab_sysctl "$NS_GW" net.ipv4.ip_forward=1
	lab_sysctl "$NS_GW" net.ipv6.conf.all.forwarding=1
fi

# ------------------------------------------------------------ rules
# raw PREROUTING: before conntrack and routing (forwarding is off).
rules() {
	local t=$1 p
	shift
	ip netns exec "$NS_GW" "$t" -t raw -N SMTP64 || return 1
	ip netns exec "$NS_GW" "$t" -t raw -A SMTP64 -p tcp --dport 25 -j RETURN
	ip netns exec "$NS_GW" "$t" -t raw -A SMTP64 -p tcp --sport 25 -j RETURN
	ip netns exec "$NS_GW" "$t" -t raw -A SMTP64 -j NFQUEUE --queue-num "$QUEUE"
	for p in "$@"; do
		ip netns exec "$NS_GW" "$t" -t raw -A PREROUTING -d "$p" -j SMTP64 ||
			return 1
	done
}
if rules iptables "$MX6_V4" "$C6_V4" && rules ip6tables "$PFX" "$MX4_V6"; then
	pass "NFQUEUE rules in gw (raw PREROUTING, TCP/25 excluded)"
else
	fail "NFQUEUE rules in gw"
	lab_summary
	exit 1
fi

# ------------------------------------------------------- translator
conf=$LAB_DIR/smtp64.conf
write_conf() {
	{
		printf '[gateway]\nfqdn = gw.example.net\n'
		printf 'listen = 0.0.0.0:25, [::]:25\n'
		[ -z "$USER_AS" ] || printf 'user = %s\n' "$USER_AS"
		printf '\n[pair mx6]\nipv4 = %s\nipv6 = %s\n' "$MX6_V4" "$S6_ADDR"
		printf '\n[pair mx4]\nipv4 = %s\nipv6 = %s\n' "$S4_ADDR" "$MX4_V6"
		printf '\n[pair c6]\nipv4 = %s\nipv6 = %s\n' "$C6_V4" "$C6_ADDR"
		printf '\n[nat64 lab]\nprefix = %s\nallow_clients = %s\n' \
			"$PFX" 2001:db8::/64
		[ "${1:-}" = packet ] &&
			printf '\n[packet]\nenable = yes\nqueue = %s\nicmp_errors = yes\nengine = %s\n' \
				"$QUEUE" "$ENGINE"
	} >"$conf"
}
XLAT_LOG=""
XLAT_PID=""
write_conf packet
if [ -x "$SMTP64D" ] && "$SMTP64D" -t -c "$conf" >/dev/null 2>&1; then
	# smtp64d translates itself; its log holds the counters.
	lab_smtp64d_start "$conf" || { fail "smtp64d starts"; lab_summary; exit 1; }
	XLAT_LOG=$SMTP64D_LOG
	XLAT_PID=$SMTP64D_PID
	pass "smtp64d starts with [packet] enable = yes (queue $QUEUE)"
elif [ "$ENGINE" = bpf ]; then
	fail "smtp64d -t takes [packet] engine = bpf"
	lab_summary
	exit 1
else
	write_conf
	drv=$LAB_DIR/nfq_driver
	natsrc=()
	for f in "$LAB_ROOT"/nat/*.c; do
		case $f in *_test.c | *_fuzz.c) ;; *) natsrc+=("$f") ;; esac
	done
	# shellcheck disable=SC2046
	# NFQ_CFLAGS="-O1 -g -fsanitize=address,undefined" runs it under
	# the sanitizers.
	# shellcheck disable=SC2086
	if ! cc -std=c11 -D_DEFAULT_SOURCE ${NFQ_CFLAGS:--O2} -I"$LAB_ROOT" -o "$drv" \
		"$here/nfq_driver.c" "$LAB_ROOT/gateway/nfq.c" \
		"$LAB_ROOT/gateway/log.c" \
		"${natsrc[@]}" \
		$(pkg-config --cflags --libs libnetfilter_queue libmnl) -lev \
		>"$LAB_DIR/cc.log" 2>&1; then
		fail "nfq_driver builds"
		cat "$LAB_DIR/cc.log"
		lab_summary
		exit 1
	fi
	XLAT_LOG=$LAB_DIR/nfq_driver.log
	lab_bg "$XLAT_LOG" "$NS_GW" "$drv" -e -q "$QUEUE" -p "$PFX" \
		"$MX6_V4=$S6_ADDR" "$S4_ADDR=$MX4_V6" "$C6_V4=$C6_ADDR"
	XLAT_PID=$LAB_LAST_PID
	if wait_for 50 grep -q event=packet_start "$XLAT_LOG"; then
		pass "nfq_driver runs (smtp64d has no [packet] yet)"
	else
		fail "nfq_driver runs"
		cat "$XLAT_LOG"
		lab_summary
		exit 1
	fi
	lab_smtp64d_start "$conf" || { fail "smtp64d starts"; lab_summary; exit 1; }
fi

if [ "$ENGINE" = bpf ]; then
	check "the tc program attached (event=packet_bpf result=ok)" \
		wait_for 30 grep -q 'event=packet_bpf result=ok' "$XLAT_LOG"
fi
if [ -n "$USER_AS" ]; then
	# /proc/PID/status: 65534 (nobody) four times over; effective
	# capabilities NET_ADMIN (12), NET_RAW (13), PERFMON (38), BPF (39).
	st() { awk -v f="$2:" '$1 == f {$1 = ""; sub(/^ /, ""); print}' "/proc/$1/status"; }
	want_caps=0000000000003000
	[ "$ENGINE" = bpf ] && want_caps=000000c000003000
	check "runs as $USER_AS (uid $(st "$XLAT_PID" Uid)) with capabilities $want_caps only" \
		test "$(st "$XLAT_PID" Uid)" = "65534 65534 65534 65534" \
		-a "$(st "$XLAT_PID" CapEff)" = "$want_caps"
fi

# ------------------------------------------------------------ echo
# ping_ttl NS ADDR: three replies, all TTL (hop limit) 63.
ping_ttl() {
	local out
	out=$(ip netns exec "$1" ping -c 3 -i 0.2 -W 2 "$2" 2>&1) || return 1
	[ "$(grep -c 'ttl=63' <<<"$out")" -eq 3 ]
}
check "ping c4 -> $MX6_V4 (s6 answers, TTL 63)" ping_ttl "$NS_C4" "$MX6_V4"
check "ping s6 -> $C4_V6 (c4 answers)" ping_ttl "$NS_S6" "$C4_V6"
check "ping c6 -> $MX4_V6 (s4 answers, pair to pair)" ping_ttl "$NS_C6" "$MX4_V6"
check "ping s4 -> $C6_V4 (c6 answers)" ping_ttl "$NS_S4" "$C6_V4"
# RFC 7915 §4.1: a packet with DF is judged against the IPv6 link's MTU
# (ipv6_link_mtu_bytes, default 1500), not ipv6_mtu_bytes (1280, for
# packets without DF): 1328 octets (1348 translated) go through whole.
df_fits() {
	ip netns exec "$NS_C4" ping -c 2 -i 0.3 -W 2 -M "do" -s 1300 \
		"$MX6_V4" >>"$LAB_DIR/pmtu.log" 2>&1
}
check "DF set, 1328 octets: through whole (within the IPv6 link's 1500)" df_fits
# Before any TCP teaches c4 the path MTU: the first 1500-octet ping with
# DF (1520 translated) meets our Fragmentation Needed with 1500 - 20
# (RFC 1191), the next one c4 refuses itself, with the MTU it learnt.
pmtu() {
	local out
	out=$(ip netns exec "$NS_C4" ping -c 2 -i 0.3 -W 2 -M "do" -s 1472 \
		"$MX6_V4" 2>&1)
	printf '%s\n' "$out" >>"$LAB_DIR/pmtu.log"
	grep -q 'Frag needed.*mtu = 1480' <<<"$out" &&
		grep -q 'mtu=1480' <<<"$out"
}
check "DF set, 1500 octets: Fragmentation Needed, MTU 1480" pmtu

# ------------------------------------------------------ UDP and TCP
for s in "s6 $NS_S6 $S6_ADDR" "c4 $NS_C4 $C4_ADDR" "s4 $NS_S4 $S4_ADDR" \
	"c6 $NS_C6 $C6_ADDR"; do
	read -r name ns addr <<<"$s"
	lab_bg "$LAB_DIR/udp-$name.log" "$ns" python3 "$PEER" udp-server "$addr" 7007
	lab_bg "$LAB_DIR/tcp-$name.log" "$ns" python3 "$PEER" tcp-server "$addr" 7008
done
listening() { ip netns exec "$1" ss -Hln "sport = :$2" | grep -q .; }
for ns in "$NS_S6" "$NS_C4" "$NS_S4" "$NS_C6"; do
	if ! wait_for 50 listening "$ns" 7008 || ! wait_for 50 listening "$ns" 7007; then
		fail "peers listening in $ns"
	fi
done

# peer_says NS MODE ADDR PORT SIZE WANT [nodf]: the far end saw WANT.
peer_says() {
	local ns=$1 mode=$2 addr=$3 port=$4 size=$5 want=$6 out
	out=$(ip netns exec "$ns" timeout 20 python3 "$PEER" "$mode" "$addr" \
		"$port" "$size" "${7:-}" 2>&1)
	printf '%s\n' "$out" >>"$LAB_DIR/clients.log"
	[ "$out" = "$want" ]
}
check "UDP c4 -> $MX6_V4: s6 sees $C4_V6" \
	peer_says "$NS_C4" udp-client "$MX6_V4" 7007 100 "peer=$C4_V6 len=100 ok=1"
check "UDP s6 -> $C4_V6: c4 sees $MX6_V4" \
	peer_says "$NS_S6" udp-client "$C4_V6" 7007 100 "peer=$MX6_V4 len=100 ok=1"
check "UDP c6 -> $MX4_V6: s4 sees $C6_V4" \
	peer_says "$NS_C6" udp-client "$MX4_V6" 7007 100 "peer=$C6_V4 len=100 ok=1"
check "UDP s4 -> $C6_V4: c6 sees $MX4_V6" \
	peer_says "$NS_S4" udp-client "$C6_V4" 7007 100 "peer=$MX4_V6 len=100 ok=1"
check "TCP c4 -> $MX6_V4, 200 kB: s6 sees $C4_V6, bytes intact" \
	peer_says "$NS_C4" tcp-client "$MX6_V4" 7008 200000 "peer=$C4_V6 len=200000 ok=1"
check "TCP s6 -> $C4_V6, 200 kB: c4 sees $MX6_V4" \
	peer_says "$NS_S6" tcp-client "$C4_V6" 7008 200000 "peer=$MX6_V4 len=200000 ok=1"
check "TCP c6 -> $MX4_V6, 200 kB: s4 sees $C6_V4" \
	peer_says "$NS_C6" tcp-client "$MX4_V6" 7008 200000 "peer=$C6_V4 len=200000 ok=1"
check "TCP s4 -> $C6_V4, 200 kB: c6 sees $MX4_V6" \
	peer_says "$NS_S4" tcp-client "$C6_V4" 7008 200000 "peer=$MX4_V6 len=200000 ok=1"
# RFC 7915 §4: DF clear -> IPv4 fragments (1500) -> Fragment headers,
# each cut again to fit 1280; s6 reassembles.
check "UDP 3000 octets without DF c4 -> $MX6_V4: reassembled on s6" \
	peer_says "$NS_C4" udp-client "$MX6_V4" 7007 3000 "peer=$C4_V6 len=3000 ok=1" nodf
# RFC 7915 §5.1.1: IPv6 fragments whose Identification ends in 16 zero
# bits.  IPv4 Identification 0 on the raw socket would become a fresh
# value per fragment (raw_send_hdrinc) and c4 could not reassemble; the
# gateway sends the high 16 bits (0x1234), or 0xffff for 0 whole.
frag6() { # FID
	local out
	out=$(ip netns exec "$NS_S6" timeout 20 python3 "$PEER" udp6-frag \
		"$S6_ADDR" "$C4_V6" 7007 2000 "$1" 2>&1)
	printf '%s\n' "$out" >>"$LAB_DIR/clients.log"
	[ "$out" = "peer=$MX6_V4 len=2000 ok=1" ]
}
check "IPv6 fragments, Identification 0x12340000 s6 -> $C4_V6: reassembled on c4" \
	frag6 12340000
check "IPv6 fragments, Identification 0 s6 -> $C4_V6: reassembled on c4" \
	frag6 0

# A source under the prefix claims to be an IPv4 host: spoofed.  s6 sends
# from 2001:db8:64::808:808; translated, it would reach c4 as IPv4 from
# 8.8.8.8.  Dropped and counted (src_under_prefix).
SPOOF=2001:db8:64::808:808
ip -n "$NS_S6" addr add "$SPOOF/128" dev lo nodad
ip netns exec "$NS_S6" python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 0))
for _ in range(3):
    s.sendto(b"spoofed", (sys.argv[2], 7007))
' "$SPOOF" "$C4_V6" || fail "s6 sends from $SPOOF"

# ----------------------------------------------------------- iperf3
iperf_ok() { # NS_SERVER ADDR_SERVER NS_CLIENT ADDR ARGS...
	local nss=$1 as=$2 nsc=$3 ac=$4 pid rc
	shift 4
	ip netns exec "$nss" iperf3 -s -1 -B "$as" -p 5201 >"$LAB_DIR/iperf-s.log" 2>&1 &
	pid=$!
	LAB_PIDS+=("$pid")
	wait_for 50 listening "$nss" 5201 || true
	ip netns exec "$nsc" timeout 30 iperf3 -c "$ac" -p 5201 "$@" \
		>"$LAB_DIR/iperf-c.log" 2>&1
	rc=$?
	wait "$pid" 2>/dev/null
	cat "$LAB_DIR/iperf-c.log" >>"$LAB_DIR/iperf.log"
	[ "$rc" -eq 0 ] && grep -q receiver "$LAB_DIR/iperf-c.log"
}
check "iperf3 TCP c4 -> $MX6_V4 (2 s)" iperf_ok "$NS_S6" "$S6_ADDR" "$NS_C4" "$MX6_V4" -t 2
check "iperf3 TCP s6 -> c4, reverse mode (2 s)" iperf_ok "$NS_S6" "$S6_ADDR" "$NS_C4" "$MX6_V4" -t 2 -R
check "iperf3 UDP 64-octet c4 -> $MX6_V4 (1 s, 20 Mbit/s)" \
	iperf_ok "$NS_S6" "$S6_ADDR" "$NS_C4" "$MX6_V4" -t 1 -u -l 64 -b 20M

# ---------------------------------------------------- router duties
ttl1() {
	ip netns exec "$NS_C4" ping -c 1 -W 2 -t 1 "$MX6_V4" 2>&1 |
		grep -q 'Time to live exceeded'
}
check "TTL 1: Time Exceeded from $MX6_V4" ttl1
fragping() {
	! ip netns exec "$NS_C4" ping -c 1 -W 1 -M dont -s 2000 "$MX6_V4" >/dev/null 2>&1
}
check "fragmented ping: not translated (ICMP checksum needs it whole)" fragping

# ------------------------------------------------------------- SMTP
if lab_postfix_start s6; then
	pass "Postfix starts on s6"
	out=$LAB_DIR/swaks.out
	lab_swaks "$NS_C4" "$MX6_V4" mta.example.com pkt1 "$out"
	# maildir_find succeeds even when it finds nothing: test its output.
	has_pkt1() { test -n "$(maildir_find s6 pkt1)"; }
	if wait_for 100 has_pkt1; then
		pass "SMTP c4 -> $MX6_V4:25 delivered on s6"
		msg=$(maildir_find s6 pkt1)
		rcv=$(received_header "$msg")
		echo "# $rcv"
		check "the MX saw the proxy ($GW_S6_ADDR), not $C4_V6" \
			grep -q "$GW_S6_ADDR" <<<"$rcv"
		check "... and never the prefix address" \
			bash -c "! grep -q '$C4_V6' <<<'$rcv'"
	else
		fail "SMTP c4 -> $MX6_V4:25 delivered on s6"
		cat "$out"
	fi
else
	fail "Postfix starts on s6"
fi

# --------------------------------------------------------- counters
kill -USR1 "$XLAT_PID" 2>/dev/null
wait_for 30 grep -q event=packet_stats "$XLAT_LOG"
stats=$(grep event=packet_stats "$XLAT_LOG" | tail -n 1)
echo "# $stats"
counter() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$stats"; }
positive() { [ "${1:-0}" -gt 0 ]; }
check "counted: translated 4->6" positive "$(counter sent46)"
check "counted: translated 6->4" positive "$(counter sent64)"
check "counted: IPv6 fragments cut from SPLIT packets" positive "$(counter fragments)"
check "counted: ICMP errors sent (too_big, ttl_expired)" positive "$(counter icmp_sent)"
check "counted: too_big" positive "$(counter too_big)"
check "counted: ttl_expired" positive "$(counter ttl_expired)"
check "counted: icmp_fragment" positive "$(counter icmp_fragment)"
check "counted: src_under_prefix (IPv6 source under the prefix, dropped)" \
	positive "$(counter src_under_prefix)"
check "no SMTP reached the queue (proxied=0)" test -z "$(counter proxied)"
check "no send errors" test "$(counter send_errors)" = 0
check "no sanitizer report from the translator" \
	bash -c "! grep -qE 'runtime error|Sanitizer' '$XLAT_LOG'"

if [ "$ENGINE" = bpf ]; then
	bstats=$(grep event=packet_bpf_stats "$XLAT_LOG" | tail -n 1)
	echo "# $bstats"
	bcounter() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$bstats"; }
	check "fast path: translated 4->6 in the kernel" positive "$(bcounter xlat46)"
	check "fast path: translated 6->4 in the kernel" positive "$(bcounter xlat64)"
	check "fast path: handed on TTL 1 (the NFQUEUE path answered)" positive "$(bcounter ttl)"
	check "fast path: handed on what is too big" positive "$(bcounter too_big)"
	check "fast path: handed on fragments" positive "$(bcounter fragment)"
	check "fast path: handed on the spoofed source" positive "$(bcounter source)"
	check "fast path: no helper failed" test "$(bcounter error)" = 0
fi

# ----------------------------------------------------------- reload
# smtp64d only: SIGHUP takes new [packet] settings (same queue: in
# place), stops the path (enable = no: the queue has no reader, its
# packets are dropped) and starts it again.
reloaded() { # N: the Nth "event=reload result=ok" is in the log
	[ "$(grep -c 'event=reload result=ok' "$XLAT_LOG")" -ge "$1" ]
}
no_ping() { ! ip netns exec "$NS_C4" ping -c 2 -i 0.3 -W 1 "$MX6_V4" >/dev/null 2>&1; }
if [ "$XLAT_PID" = "${SMTP64D_PID:-}" ]; then
	if [ "$ENGINE" = bpf ]; then
		# An interface that comes after the start is covered from the
		# next reload on (both ends in gw: none in the root namespace).
		ip -n "$NS_GW" link add xtra0 type veth peer name xtra1
		ip -n "$NS_GW" link set xtra0 up
	fi
	write_conf packet
	kill -HUP "$XLAT_PID"
	wait_for 50 reloaded 1
	check "SIGHUP, [packet] unchanged: still translated" ping_ttl "$NS_C4" "$MX6_V4"
	tc_ours() { ip netns exec "$NS_GW" tc filter show dev "$1" ingress | grep -q 'handle 0x6464'; }
	if [ "$ENGINE" = bpf ]; then
		check "... and the tc program is on an interface added since" tc_ours xtra0
	fi
	write_conf
	kill -HUP "$XLAT_PID"
	wait_for 50 reloaded 2
	check "SIGHUP, [packet] gone: the path stops (logged)" \
		grep -q 'event=packet_stop reason=reload' "$XLAT_LOG"
	if [ "$ENGINE" = bpf ]; then
		no_tc() { ! tc_ours to-c4 && ! tc_ours xtra0; }
		check "... the tc program detached from every interface" no_tc
	fi
	check "... and nothing is translated" no_ping
	check "... while SMTP is still relayed" \
		lab_swaks "$NS_C4" "$MX6_V4" mta.example.com pkt2 "$LAB_DIR/swaks2.out"
	write_conf packet
	kill -HUP "$XLAT_PID"
	wait_for 50 reloaded 3
	check "SIGHUP, [packet] back: translated again" ping_ttl "$NS_C4" "$MX6_V4"
fi

lab_summary
