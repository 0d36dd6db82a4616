#!/usr/bin/env bash
# tests/bench/w6.sh: W6 of make bench (issue 5), the packet path.  iperf3
# TCP Mbit/s and UDP 64-octet packets/s, and UDP 64-octet packets/s from
# tests/bench/udpblast.c (sendmmsg, one flow and two), from an IPv4-only
# client to an IPv6-only server through
#
#   smtp64d  the NFQUEUE translator (gateway/nfq.c + nat/xlat.c): smtp64d
#            with [packet] when it has that section, else
#            tests/e2e/nfq_driver.c built here with -O2 (the same code)
#   bpf      smtp64d with [packet] engine = bpf, in a gateway namespace of
#            its own: the tc program (nat/bpf/xlat.bpf.c) translates and
#            forwards in the kernel, the NFQUEUE path behind it takes
#            what it hands on (the first Fragmentation Needed of a TCP
#            connection, for one)
#   tayga    TAYGA (Debian package), in its own namespace, a TUN device,
#            the network-specific prefix 2001:db8:46::/96, a static map
#   direct   no translation: the client's IPv6 address, routed by the
#            kernel (IPv6 forwarding) through the gateway namespace
#
# interleaved over rounds (each round another order), and prints the
# median and min-max per cell, the ratio of each to direct and smtp64d's
# and bpf's to TAYGA's (targets for bpf: >= 2x TAYGA's UDP packets/s,
# >= 0.5x direct's TCP Mbit/s; for smtp64d: no slower than before).
# Why three UDP loads: iperf3 -u makes one system call a datagram, and on
# two cores its sender, which also carries the path's softirq work, caps
# even plain kernel forwarding near TAYGA's rate; udpblast with one flow
# shows one core's path, with two flows what both cores forward (TAYGA,
# one thread, cannot use the second).  The bpf target is judged on two
# flows, the rows of all three are kept.  Rows go to a TSV in make
# bench's format:
#
#   round config workload metric value unit status detail
#
# UDP cells run with a 4 MB socket buffer at the sink (iperf3 -w 4M).
#
#   SMTP64D=... SMTP64D_NFQ=... (smtp64d's binary; its build for the
#   smtp64d configuration, default the same)
#   bash tests/bench/w6.sh [--quick] [--rounds N] [--seconds S]
#                          [--tsv FILE] [--meta FILE] [--keep] [--perf]
#
# --tsv appends (writing the header first if FILE is new or empty), so
# tests/bench/run can hand over its own rows file; --meta appends
# "key<TAB>value" rows (versions).  --quick: one round of 2 s cells.
# --perf (tests/bench/profile W6): instead of the rounds, one UDP and one
# TCP cell through each translator while `perf record -a -g` samples the
# whole machine (the kernel does much of the work, in softirq, outside
# the translator's process); prints where the time went, by command and
# by symbol, and keeps the work folder.
# Needs root; namespaces are made and removed here, documentation
# addresses only, no veth end in the root namespace.
#
# Topology:
#   c  192.0.2.10/24, 2001:db8:1::10/64 --- [gw] 192.0.2.1 192.0.2.30
#                                              2001:db8:1::1
#                                           [gw] 2001:db8::1 --- 2001:db8::25 s
#   c  203.0.113.10/24 --- [tg] 203.0.113.1, TAYGA on nat64
#                           [tg] 2001:db8:2::1 --- 2001:db8:2::25 s
#   c  198.51.100.138/25 --- [gb] 198.51.100.129 198.51.100.140
#                            [gb] 2001:db8:3::1 --- 2001:db8:3::25 s
#   smtp64d: pair 192.0.2.30 = 2001:db8::25, prefix 2001:db8:64::/96
#   bpf:     pair 198.51.100.140 = 2001:db8:3::25, prefix 2001:db8:65::/96
#   TAYGA:   map 198.51.100.30 = 2001:db8:2::25, prefix 2001:db8:46::/96
#   direct:  2001:db8:1::10 -> 2001:db8::25
# The translators are told the IPv6 MTU is 1500 (smtp64d: mtu6; TAYGA:
# its TUN MTU), so TCP runs at MSS 1440 through each.  gb forwards (the
# program's bpf_fib_lookup needs it) with FORWARD policies of DROP.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

ROUNDS=3 SECS=5 QUICK=0 TSV="" META="" KEEP=0 PERF=0
usage() { sed -n '2,40p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
	case $1 in
	--quick) QUICK=1 ;;
	--rounds) ROUNDS=${2:-}; shift ;;
	--seconds) SECS=${2:-}; shift ;;
	--tsv) TSV=${2:-}; shift ;;
	--meta) META=${2:-}; shift ;;
	--keep) KEEP=1 ;;
	--perf) PERF=1 KEEP=1 TSV="" META="" ;;
	-h | --help) usage ;;
	*) echo "w6: unknown argument $1" >&2; usage ;;
	esac
	shift
done
case $ROUNDS$SECS in '' | *[!0-9]*) usage ;; esac
if [ "$ROUNDS" -lt 1 ] || [ "$ROUNDS" -gt 20 ] || [ "$SECS" -lt 1 ] ||
	[ "$SECS" -gt 60 ]; then
	usage
fi
[ "$QUICK" -eq 1 ] && ROUNDS=1 SECS=2
if [ "$(id -u)" -ne 0 ]; then
	echo "w6: must run as root (network namespaces)" >&2
	exit 2
fi

# ------------------------------------------------------------- peers
need=()
for p in tayga iperf3 iptables iproute2 python3 libnetfilter-queue-dev \
	libmnl-dev libev-dev; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[ "$st" = "install ok installed" ] || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
	echo "w6: installing ${need[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
		"${need[@]}" >/dev/null || { echo "w6: apt-get failed" >&2; exit 2; }
fi

TAG=$(printf 'w6-%x%03x' "$$" "$((RANDOM % 4096))")
WORK=$(mktemp -d "/tmp/smtp64-w6.$TAG.XXXXXX") || exit 2
NS_C=$TAG-c NS_GW=$TAG-gw NS_TG=$TAG-tg NS_S=$TAG-s NS_GB=$TAG-gb
NSES=() PIDS=()
CLEANED=0

cleanup() {
	local i
	[ "$CLEANED" -eq 0 ] || return 0
	CLEANED=1
	trap '' INT TERM
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		kill "${PIDS[$i]}" 2>/dev/null
	done
	for i in 1 2 3 4 5 6 7 8 9 10; do
		local alive=0 p
		for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ "$alive" -eq 0 ] && break
		sleep 0.2
	done
	for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
	for ns in "${NSES[@]}"; do ip netns del "$ns" 2>/dev/null; done
	if [ "$KEEP" -eq 1 ]; then echo "w6: kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'cleanup; trap - EXIT; exit 130' INT
trap 'cleanup; trap - EXIT; exit 143' TERM

# Background processes are started with "ip netns exec" itself, never
# through this function: $! must be the process (LAB-NOTES).
ns() { ip netns exec "$@"; }
mkns() {
	ip netns add "$1" || exit 2
	NSES+=("$1")
	ip -n "$1" link set lo up
	ns "$1" sysctl -qw net.ipv6.conf.all.accept_dad=0 \
		net.ipv6.conf.default.accept_dad=0 >/dev/null
}
link() { # NS1 IF1 NS2 IF2
	ip -n "$1" link add "$2" type veth peer name "$4" netns "$3" || exit 2
	ip -n "$1" link set "$2" up
	ip -n "$3" link set "$4" up
}
addr() { case $3 in *:*) ip -n "$1" -6 addr add "$3" dev "$2" nodad ;; *) ip -n "$1" addr add "$3" dev "$2" ;; esac; }

for n in "$NS_C" "$NS_GW" "$NS_TG" "$NS_S" "$NS_GB"; do mkns "$n"; done
# gb forwards, for bpf_fib_lookup, but routes nothing untranslated.
ns "$NS_GB" sysctl -qw net.ipv6.conf.all.forwarding=1 net.ipv4.ip_forward=1 >/dev/null
ns "$NS_GB" iptables -P FORWARD DROP
ns "$NS_GB" ip6tables -P FORWARD DROP
link "$NS_C" eth-gb "$NS_GB" to-c
link "$NS_GB" to-s "$NS_S" eth-gb
link "$NS_C" eth-gw "$NS_GW" to-c
link "$NS_GW" to-s "$NS_S" eth-gw
link "$NS_C" eth-tg "$NS_TG" to-c
link "$NS_TG" to-s "$NS_S" eth-tg
addr "$NS_C" eth-gw 192.0.2.10/24
addr "$NS_C" eth-gw 2001:db8:1::10/64
addr "$NS_GW" to-c 192.0.2.1/24
addr "$NS_GW" to-c 192.0.2.30/24
addr "$NS_GW" to-c 2001:db8:1::1/64
addr "$NS_GW" to-s 2001:db8::1/64
addr "$NS_S" eth-gw 2001:db8::25/64
addr "$NS_C" eth-tg 203.0.113.10/24
addr "$NS_TG" to-c 203.0.113.1/24
addr "$NS_TG" to-s 2001:db8:2::1/64
addr "$NS_S" eth-tg 2001:db8:2::25/64
addr "$NS_C" eth-gb 198.51.100.138/25
addr "$NS_GB" to-c 198.51.100.129/25
addr "$NS_GB" to-c 198.51.100.140/25
addr "$NS_GB" to-s 2001:db8:3::1/64
addr "$NS_S" eth-gb 2001:db8:3::25/64
ip -n "$NS_S" -6 route add 2001:db8:65::/96 via 2001:db8:3::1
ip -n "$NS_C" -6 route add 2001:db8::/64 via 2001:db8:1::1
ip -n "$NS_C" route add 198.51.100.30/32 via 203.0.113.1
ip -n "$NS_S" -6 route add 2001:db8:1::/64 via 2001:db8::1
ip -n "$NS_S" -6 route add 2001:db8:64::/96 via 2001:db8::1
ip -n "$NS_S" -6 route add 2001:db8:46::/96 via 2001:db8:2::1
ns "$NS_GW" sysctl -qw net.ipv6.conf.all.forwarding=1 net.ipv4.ip_forward=0 >/dev/null
ns "$NS_TG" sysctl -qw net.ipv6.conf.all.forwarding=1 net.ipv4.ip_forward=1 >/dev/null

# ------------------------------------------------------ smtp64d (nfq)
QUEUE=6
for t in iptables ip6tables; do
	ns "$NS_GW" $t -t raw -N SMTP64
	ns "$NS_GW" $t -t raw -A SMTP64 -p tcp --dport 25 -j RETURN
	ns "$NS_GW" $t -t raw -A SMTP64 -p tcp --sport 25 -j RETURN
	ns "$NS_GW" $t -t raw -A SMTP64 -j NFQUEUE --queue-num $QUEUE
done
ns "$NS_GW" iptables -t raw -A PREROUTING -d 192.0.2.30 -j SMTP64
ns "$NS_GW" ip6tables -t raw -A PREROUTING -d 2001:db8:64::/96 -j SMTP64

SMTP64D=${SMTP64D:-$ROOT/build/smtp64d}
# The smtp64d configuration's binary may be another build (an earlier
# version, to compare the NFQUEUE engine with itself); bpf's is SMTP64D.
SMTP64D_NFQ=${SMTP64D_NFQ:-$SMTP64D}
conf=$WORK/smtp64.conf
cat >"$conf" <<EOF
[gateway]
fqdn = gw.example.net
listen = 192.0.2.30:25

[pair mx]
ipv4 = 192.0.2.30
ipv6 = 2001:db8::25

[nat64 bench]
prefix = 2001:db8:64::/96
allow_clients = 2001:db8::/64

[packet]
enable = yes
queue = $QUEUE
ipv6_mtu_bytes = 1500
EOF
XLAT_KIND=""
if [ -x "$SMTP64D_NFQ" ] && "$SMTP64D_NFQ" -t -c "$conf" >/dev/null 2>&1; then
	ip netns exec "$NS_GW" "$SMTP64D_NFQ" -f -c "$conf" </dev/null \
		>"$WORK/xlat.log" 2>&1 &
	XLAT_PID=$!
	XLAT_KIND="$("$SMTP64D_NFQ" -V 2>&1 | head -n 1) with [packet] (NFQUEUE queue $QUEUE, ipv6_mtu_bytes 1500), single process"
else
	drv=$WORK/nfq_driver
	natsrc=()
	for f in "$ROOT"/nat/*.c; do
		case $f in *_test.c | *_fuzz.c) ;; *) natsrc+=("$f") ;; esac
	done
	# shellcheck disable=SC2046
	cc -std=c11 -D_DEFAULT_SOURCE -O2 -g -I"$ROOT" -o "$drv" \
		"$ROOT/tests/e2e/nfq_driver.c" "$ROOT/gateway/nfq.c" \
		"$ROOT/gateway/log.c" \
		"${natsrc[@]}" \
		$(pkg-config --cflags --libs libnetfilter_queue libmnl) -lev ||
		{ echo "w6: nfq_driver does not build" >&2; exit 1; }
	ip netns exec "$NS_GW" "$drv" -q $QUEUE -6 1500 -e \
		-p 2001:db8:64::/96 192.0.2.30=2001:db8::25 </dev/null \
		>"$WORK/xlat.log" 2>&1 &
	XLAT_PID=$!
	XLAT_KIND="tests/e2e/nfq_driver.c over gateway/nfq.c and nat/xlat.c, built here with -O2 ($SMTP64D does not accept [packet])"
fi
PIDS+=("$XLAT_PID")

# ------------------------------------------------------ smtp64d (bpf)
QUEUE_B=7
for t in iptables ip6tables; do
	ns "$NS_GB" $t -t raw -N SMTP64
	ns "$NS_GB" $t -t raw -A SMTP64 -p tcp --dport 25 -j RETURN
	ns "$NS_GB" $t -t raw -A SMTP64 -p tcp --sport 25 -j RETURN
	ns "$NS_GB" $t -t raw -A SMTP64 -j NFQUEUE --queue-num $QUEUE_B
done
ns "$NS_GB" iptables -t raw -A PREROUTING -d 198.51.100.140 -j SMTP64
ns "$NS_GB" ip6tables -t raw -A PREROUTING -d 2001:db8:65::/96 -j SMTP64
confb=$WORK/smtp64-bpf.conf
cat >"$confb" <<EOF
[gateway]
fqdn = gb.example.net
listen = 198.51.100.140:25

[pair mx]
ipv4 = 198.51.100.140
ipv6 = 2001:db8:3::25

[nat64 bench]
prefix = 2001:db8:65::/96
allow_clients = 2001:db8:3::/64

[packet]
enable = yes
queue = $QUEUE_B
ipv6_mtu_bytes = 1500
engine = bpf
EOF
BPF_PID=""
BPF_KIND=""
if [ -x "$SMTP64D" ] && "$SMTP64D" -t -c "$confb" >/dev/null 2>&1; then
	ip netns exec "$NS_GB" "$SMTP64D" -f -c "$confb" </dev/null \
		>"$WORK/bpf.log" 2>&1 &
	BPF_PID=$!
	PIDS+=("$BPF_PID")
	BPF_KIND="$("$SMTP64D" -V 2>&1 | head -n 1) with [packet] engine = bpf (tc ingress on to-c and to-s; NFQUEUE queue $QUEUE_B behind it)"
	for i in $(seq 50); do
		grep -q 'event=packet_bpf result=' "$WORK/bpf.log" && break
		sleep 0.1
	done
	grep -q 'event=packet_bpf result=ok' "$WORK/bpf.log" ||
		{ echo "w6: the bpf engine did not start" >&2; cat "$WORK/bpf.log" >&2; exit 1; }
else
	echo "w6: $SMTP64D does not take [packet] engine = bpf" >&2
	exit 1
fi

# ------------------------------------------------------------- TAYGA
mkdir -p "$WORK/tayga"
cat >"$WORK/tayga.conf" <<EOF
tun-device nat64
ipv4-addr 198.51.100.2
prefix 2001:db8:46::/96
map 198.51.100.30 2001:db8:2::25
data-dir $WORK/tayga
EOF
ns "$NS_TG" tayga -c "$WORK/tayga.conf" --mktun >/dev/null 2>&1 ||
	{ echo "w6: tayga --mktun failed" >&2; exit 1; }
ip -n "$NS_TG" link set nat64 up mtu 1500
ip -n "$NS_TG" route add 198.51.100.30/32 dev nat64
ip -n "$NS_TG" -6 route add 2001:db8:46::/96 dev nat64
ip netns exec "$NS_TG" tayga -n -c "$WORK/tayga.conf" </dev/null \
	>"$WORK/tayga.log" 2>&1 &
TAYGA_PID=$!
PIDS+=("$TAYGA_PID")

# ------------------------------------------------------------ server
ip netns exec "$NS_S" iperf3 -s -p 5201 </dev/null >"$WORK/iperf3-s.log" 2>&1 &
SRV_PID=$!
PIDS+=("$SRV_PID")

up() { # CONFIG: the path answers a ping
	case $1 in
	direct) ns "$NS_C" ping -c 1 -W 1 2001:db8::25 ;;
	smtp64d) ns "$NS_C" ping -c 1 -W 1 192.0.2.30 ;;
	bpf) ns "$NS_C" ping -c 1 -W 1 198.51.100.140 ;;
	tayga) ns "$NS_C" ping -c 1 -W 1 198.51.100.30 ;;
	esac >/dev/null 2>&1
}
for i in $(seq 50); do
	up direct && up smtp64d && up bpf && up tayga && break
	sleep 0.2
done
for c in direct smtp64d bpf tayga; do
	up "$c" || { echo "w6: $c path does not answer" >&2; tail "$WORK"/*.log >&2; exit 1; }
done
ours() { ns "$NS_S" ss -Hltnp sport = :5201 | grep -q "pid=$SRV_PID,"; }
for i in $(seq 50); do ours && break; sleep 0.1; done
ours || { echo "w6: iperf3 server is not ours" >&2; exit 1; }

# The UDP load that is not the bottleneck (tests/bench/udpblast.c).
BLAST=$WORK/udpblast
cc -std=c11 -O2 -o "$BLAST" "$HERE/udpblast.c" ||
	{ echo "w6: udpblast does not build" >&2; exit 1; }

target() {
	case $1 in
	direct) echo 2001:db8::25 ;;
	smtp64d) echo 192.0.2.30 ;;
	bpf) echo 198.51.100.140 ;;
	tayga) echo 198.51.100.30 ;;
	esac
}
xlat_pid() {
	case $1 in
	smtp64d) echo "$XLAT_PID" ;;
	bpf) echo "$BPF_PID" ;;
	tayga) echo "$TAYGA_PID" ;;
	*) echo "" ;;
	esac
}
# CPU seconds (user + system) of PID and its descendants so far (the
# process tree, as make bench counts a relay: smtp64d's workers too).
cpu_s() {
	[ -n "$1" ] || { echo 0; return; }
	python3 "$HERE/bench.py" tree "$1" |
		awk '{ printf "%.3f\n", $1 / 1e6 }'
}

[ -n "$TSV" ] || TSV=$WORK/w6.tsv
[ -s "$TSV" ] || printf 'round\tconfig\tworkload\tmetric\tvalue\tunit\tstatus\tdetail\n' >"$TSV"
ROWS=$WORK/rows.tsv
: >"$ROWS"
row() { printf '%s\t%s\tW6\t%s\t%s\t%s\t%s\t%s\n' "$@" | tee -a "$ROWS" >>"$TSV"; }

# xq CONFIG: the kernel's counters of the translator's queue, "in
# dropped_full dropped_other": for smtp64d, our NFQUEUE in the gateway
# namespace (/proc/net/netfilter/nfnetlink_queue: id_sequence, which
# counts the packets that got into the queue, plus queue_dropped, those
# that did not because it was full; user_dropped, those the reader's
# socket buffer could not take); for TAYGA, its TUN device (tx_packets,
# read by TAYGA, plus tx_dropped, dropped because TAYGA's queue was
# full).
xq() {
	case $1 in
	smtp64d)
		ns "$NS_GW" cat /proc/net/netfilter/nfnetlink_queue 2>/dev/null |
			awk -v q="$QUEUE" '$1 == q { print $8 + $6, $6, $7 }' ;;
	tayga)
		# tun counts tx_packets when TAYGA reads a packet.
		ns "$NS_TG" sh -c 'cd /sys/class/net/nat64/statistics &&
			echo $(($(cat tx_packets) + $(cat tx_dropped))) \
			    $(cat tx_dropped) 0' 2>/dev/null ;;
	esac
}

# blast_cell ROUND CONFIG TARGET XLAT_PID CPU0 QUEUE0 FLOWS: SECS of
# 64-byte datagrams from udpblast (64 a sendmmsg call, FLOWS senders) to
# its sink in s; the rate is what arrived, over the sink's first-to-last
# time.
blast_cell() {
	local r=$1 c=$2 t=$3 pid=$4 c0=$5 flows=${7:-1} spid i
	local out=$WORK/$1-$2-mmsg$flows metric=udp64_mmsg_pps
	[ "$flows" -eq 1 ] || metric=udp64_mmsg${flows}_pps
	ip netns exec "$NS_S" "$BLAST" recv 5301 "$SECS" >"$out.recv" 2>&1 &
	spid=$!
	PIDS+=("$spid")
	for ((i = 0; i < 50; i++)); do
		grep -q listening "$out.recv" && break
		sleep 0.1
	done
	ns "$NS_C" timeout $((SECS + 20)) "$BLAST" send "$t" 5301 "$SECS" 64 \
		"$flows" >"$out.send" 2>&1
	local rc=$?
	wait "$spid"
	local rrc=$?
	local c1 q1
	c1=$(cpu_s "$pid")
	q1=$(xq "$c")
	python3 - "$out" "$rc" "$rrc" "$c0" "$c1" "$6" "$q1" "$metric" <<'EOF2' | while IFS=$'\t' read -r m v u st d; do row "$r" "$c" "$m" "$v" "$u" "$st" "$d"; done
import re, sys
out, rc, rrc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
c0, c1 = float(sys.argv[4]), float(sys.argv[5])
def kv(path):
    try:
        return dict(re.findall(r"(\w+)=([0-9.]+)", open(path).read()))
    except OSError:
        return {}
s, r = kv(out + ".send"), kv(out + ".recv")
sent, got = int(s.get("sent", 0)), int(r.get("received", 0))
span = float(r.get("first_to_last", 0))
extra = ""
q0, q1 = sys.argv[6].split(), sys.argv[7].split()
if len(q0) == 3 and len(q1) == 3:
    d = [int(b) - int(a) for a, b in zip(q0, q1)]
    extra = " xlat_queued=%d xlat_queue_full=%d xlat_other_drop=%d" \
        " handled=%d" % (d[0], d[1], d[2], d[0] - d[1] - d[2])
ok = rc == 0 and rrc == 0 and got > 0 and got <= sent and span > 0
print("\t".join([sys.argv[8], "%.0f" % (got / span) if ok else "",
    "pkt/s", "ok" if ok else "FAILED",
    "sent=%d received=%d lost=%d seconds=%.2f xlat_cpu_s=%.2f%s" % (
        sent, got, sent - got, span, c1 - c0, extra)]))
EOF2
}

# cell ROUND CONFIG KIND(tcp|udp|mmsg)
cell() {
	local r=$1 c=$2 k=$3 t pid c0 c1 json rc
	t=$(target "$c")
	pid=$(xlat_pid "$c")
	json=$WORK/$r-$c-$k.json
	c0=$(cpu_s "$pid")
	q0=$(xq "$c")
	if [ "$k" = mmsg ] || [ "$k" = mmsg2 ]; then
		blast_cell "$r" "$c" "$t" "$pid" "$c0" "$q0" "${k#mmsg}"
		return
	elif [ "$k" = tcp ]; then
		ns "$NS_C" timeout $((SECS + 20)) iperf3 -c "$t" -p 5201 -t "$SECS" \
			--json >"$json" 2>&1
	else
		# -w: a 4 MB socket buffer at the sink (iperf3 hands it to
		# the server), so that what is counted lost is lost on the
		# path, not in bursts the server, sharing two cores with the
		# client and the path, reads late.
		ns "$NS_C" timeout $((SECS + 20)) iperf3 -c "$t" -p 5201 -t "$SECS" \
			-u -l 64 -b 0 -w 4M --json >"$json" 2>&1
	fi
	rc=$?
	c1=$(cpu_s "$pid")
	q1=$(xq "$c")
	python3 - "$json" "$k" "$rc" "$c0" "$c1" "$q0" "$q1" <<'EOF' | while IFS=$'\t' read -r m v u st d; do row "$r" "$c" "$m" "$v" "$u" "$st" "$d"; done
import json, sys
path, kind, rc, c0, c1 = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
cpu = "xlat_cpu_s=%.2f" % (c1 - c0)
q0, q1 = sys.argv[6].split(), sys.argv[7].split()
if len(q0) == 3 and len(q1) == 3:
    # What the kernel handed the translator (handled = queued minus
    # dropped because its queue or socket buffer was full).
    d = [int(b) - int(a) for a, b in zip(q0, q1)]
    cpu += " xlat_queued=%d xlat_queue_full=%d xlat_other_drop=%d" \
        " handled=%d" % (d[0], d[1], d[2], d[0] - d[1] - d[2])
try:
    j = json.load(open(path))
    e = j["end"]
except Exception as ex:
    m = "tcp_mbit_s" if kind == "tcp" else "udp64_pps"
    print("\t".join([m, "", "Mbit/s" if kind == "tcp" else "pkt/s", "FAILED", "iperf3 rc=%d no result" % rc]))
    sys.exit(0)
if kind == "tcp":
    rcv = e["sum_received"]
    snd = e["sum_sent"]
    v = rcv["bits_per_second"] / 1e6
    st = "ok" if rc == 0 and rcv["bytes"] > 0 else "FAILED"
    print("\t".join(["tcp_mbit_s", "%.1f" % v, "Mbit/s", st,
        "sent_bytes=%d received_bytes=%d retransmits=%d seconds=%.2f %s" % (
            snd["bytes"], rcv["bytes"], snd.get("retransmits", 0),
            rcv.get("seconds") or 0, cpu)]))
else:
    # Packets the client sent (sum_sent); the server's count of the
    # stream (received + lost, by sequence number), loss and reordering.
    s = e.get("sum_received") or e["sum"]
    sent = e.get("sum_sent", e["sum"]).get("packets", 0)
    pk = s.get("packets", 0)
    lost = s.get("lost_packets", 0)
    ooo = sum(x.get("udp", {}).get("out_of_order", 0)
              for x in e.get("streams", []))
    secs = s.get("seconds") or 1
    got = pk - lost
    st = "ok" if rc == 0 and got > 0 and got <= sent else "FAILED"
    print("\t".join(["udp64_pps", "%.0f" % (got / secs), "pkt/s", st,
        "sent=%d received=%d lost=%d out_of_order=%d seconds=%.2f %s" % (
            sent, got, lost, ooo, secs, cpu)]))
EOF
}

if [ "$PERF" -eq 1 ]; then
	command -v perf >/dev/null || { echo "w6: perf not installed" >&2; exit 2; }
	for c in smtp64d bpf tayga; do
		for k in udp tcp; do
			pd=$WORK/perf.$c.$k.data
			perf record -a -g -F 999 -o "$pd" -- sleep "$SECS" \
				>"$pd.out" 2>&1 &
			PERF_PID=$!
			PIDS+=("$PERF_PID")
			cell 0 "$c" "$k" >/dev/null
			wait "$PERF_PID"
			echo "== $c $k: $(tail -n 1 "$ROWS" | cut -f4,5,8)"
			echo "-- by command (whole machine, $SECS s, 2 CPUs)"
			perf report -i "$pd" --no-children --sort comm --stdio \
				-g none 2>/dev/null | grep '%' | head -n 8
			echo "-- by symbol"
			perf report -i "$pd" --no-children --sort comm,dso,symbol \
				--stdio -g none 2>/dev/null | grep '%' | head -n 25
		done
	done
	kill -USR1 "$XLAT_PID" "$BPF_PID" 2>/dev/null
	sleep 0.3
	grep -h event=packet_stats "$WORK/xlat.log" | tail -n 1
	grep -h event=packet_bpf_stats "$WORK/bpf.log" | tail -n 1
	exit 0
fi

ORDERS=("direct smtp64d bpf tayga" "tayga bpf direct smtp64d"
	"bpf smtp64d tayga direct")
T0=$SECONDS
echo "w6: $ROUNDS round(s) of ${SECS} s cells; translator: $XLAT_KIND; tayga $(dpkg-query -W -f='${Version}' tayga)"
for ((r = 1; r <= ROUNDS; r++)); do
	order=${ORDERS[$(((r - 1) % 3))]}
	for c in $order; do
		# Every cell gets a live path and our own server.
		if ! kill -0 "$XLAT_PID" 2>/dev/null ||
			! kill -0 "$BPF_PID" 2>/dev/null ||
			! kill -0 "$TAYGA_PID" 2>/dev/null; then
			echo "w6: a translator died" >&2
			tail "$WORK"/*.log >&2
			exit 1
		fi
		cell "$r" "$c" tcp >/dev/null
		cell "$r" "$c" udp >/dev/null
		cell "$r" "$c" mmsg >/dev/null
		cell "$r" "$c" mmsg2 >/dev/null
	done
done

kill -USR1 "$XLAT_PID" "$BPF_PID" 2>/dev/null
sleep 0.3
STATS=$(grep -h event=packet_stats "$WORK/xlat.log" | tail -n 1 |
	sed 's/^smtp64d: //')
BSTATS=$(grep -h -e event=packet_bpf_stats -e event=packet_stats \
	"$WORK/bpf.log" | tail -n 2 | sed 's/^smtp64d: //' | tr '\n' ' ')
if [ -n "$META" ]; then
	{
		printf 'W6 translator\t%s\n' "$XLAT_KIND"
		printf 'W6 TAYGA\tTAYGA %s (Debian package), own namespace, TUN device nat64 (MTU 1500), prefix 2001:db8:46::/96, static map 198.51.100.30 = 2001:db8:2::25\n' "$(dpkg-query -W -f='${Version}' tayga)"
		printf 'W6 iperf3\t%s; %s s cells, %s round(s): TCP (one stream) and UDP -l 64 -b 0 -w 4M\n' "$(iperf3 --version | head -n1 | cut -d' ' -f1-2)" "$SECS" "$ROUNDS"
		printf 'W6 udpblast\ttests/bench/udpblast.c: 64-byte datagrams, 64 a sendmmsg call, 1 and 2 flows (processes), sink recvmmsg with a 4 MB buffer; %s s cells\n' "$SECS"
		[ -z "$STATS" ] || printf 'W6 smtp64d counters\t%s\n' "$STATS"
		printf 'W6 bpf\t%s\n' "$BPF_KIND"
		[ -z "$BSTATS" ] || printf 'W6 bpf counters\t%s\n' "$BSTATS"
	} >>"$META"
fi

[ -z "$STATS" ] || echo "# smtp64d: $STATS"
[ -z "$BSTATS" ] || echo "# bpf: $BSTATS"

python3 - "$ROWS" <<'EOF'
import sys, statistics as st
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
cells = {}
bad = set()
for r in rows:
    _, cfg, _, metric, val, unit, status, _ = r
    if status != "ok":
        bad.add((cfg, metric))
        continue
    cells.setdefault((cfg, metric, unit), []).append(float(val))
med = {}
print("%-8s %-12s %12s %22s %9s" % ("config", "metric", "median", "min-max", "x direct"))
for metric in ("tcp_mbit_s", "udp64_pps", "udp64_mmsg_pps",
               "udp64_mmsg2_pps"):
    for cfg in ("direct", "smtp64d", "bpf", "tayga"):
        k = [c for c in cells if c[0] == cfg and c[1] == metric]
        if (cfg, metric) in bad or not k:
            print("%-8s %-12s %12s" % (cfg, metric, "FAILED"))
            continue
        v = cells[k[0]]
        med[(cfg, metric)] = st.median(v)
    for cfg in ("direct", "smtp64d", "bpf", "tayga"):
        if (cfg, metric) not in med:
            continue
        k = [c for c in cells if c[0] == cfg and c[1] == metric][0]
        v = cells[k]
        d = med.get(("direct", metric))
        print("%-8s %-12s %12.1f %10.1f-%-11.1f %9s" % (cfg, metric, med[(cfg, metric)],
              min(v), max(v), ("%.2f" % (med[(cfg, metric)] / d)) if d else "-"))
for x in ("smtp64d", "bpf"):
    for metric in ("tcp_mbit_s", "udp64_pps", "udp64_mmsg_pps",
                   "udp64_mmsg2_pps"):
        a, b = med.get((x, metric)), med.get(("tayga", metric))
        if a and b:
            print("%-7s / tayga  %-14s %.2f%s" % (x, metric, a / b,
                  "  (target >= 2)" if metric == "udp64_mmsg2_pps" and x == "bpf"
                  else ""))
a, b = med.get(("bpf", "tcp_mbit_s")), med.get(("direct", "tcp_mbit_s"))
if a and b:
    print("bpf     / direct tcp_mbit_s   %.2f  (target >= 0.5)" % (a / b))
EOF
if [ "$TSV" = "$WORK/w6.tsv" ] && [ "$KEEP" -eq 0 ]; then
	# No --tsv: the rows go with the work folder, so show them.
	cat "$ROWS"
	echo "w6: done in $((SECONDS - T0)) s"
else
	echo "w6: done in $((SECONDS - T0)) s; rows in $TSV"
fi
