#!/usr/bin/env bash
# tests/bench/w7.sh: W7 of make bench (issue 22), STARTTLS sessions.  A
# v4-only client sends sessions of EHLO, STARTTLS, EHLO, MAIL, RCPT,
# DATA (300 octets), QUIT (tests/bench/tlsload.c) to 192.0.2.30:25, where
# the middle under test listens, in front of a v6-only Postfix 3.7 with
# STARTTLS (RSA-2048 certificate, TLS 1.3, discarding what it accepts):
#
#   smtp64d-terminate   tls = terminate, RSA-2048 certificate, upstream
#                       opportunistic (two handshakes per session)
#   smtp64d-term-ecdsa  the same with an ECDSA P-256 certificate beside
#                       the RSA one (tls_cert2_file): OpenSSL's client
#                       lists ECDSA first, so it gets that one
#   smtp64d-passthrough tls = passthrough (TLS end to end with Postfix)
#   nginx-mail          nginx's mail proxy, starttls on, RSA-2048, the
#                       upstream in clear text (one handshake a session;
#                       its auth_http answered by nginx itself)
#   haproxy             HAProxy in TCP mode (TLS end to end with Postfix)
#   direct              the client in the gateway namespace, straight to
#                       Postfix over IPv6: the load client's ceiling
#
# For each, with full client handshakes (every session a new one) and
# resumed ones (-r: each client process offers its last session again):
#   rate      sessions/s with 8 client processes;
#   cpu       CPU of the middle per session (utime + stime of its process
#             tree, bench.py tree), in ms;
#   resumed   the share of client handshakes that resumed, and for
#             smtp64d-terminate the share of upstream handshakes that
#             resumed (its counter smtp64_tls_resumed_total); end to end for passthrough and
#             HAProxy, none upstream for nginx (clear text);
#   latency   median session time with one client process (no queueing),
#             and what the middle adds to direct's.
# Rounds interleave the configurations (each round another order).  Rows
# go to a TSV in make bench's format
#
#   round config workload metric value unit status detail
#
# and bench.py w7 prints the table (medians over rounds, min-max).
#
#   SMTP64D=... bash tests/bench/w7.sh [--quick] [--rounds N]
#                                      [--tsv FILE] [--meta FILE] [--keep]
#                                      [--perf CONFIG]
#
# W7_CONFIGS="CFG ..." runs only those configurations (an A/B of two
# builds, say); W7_N and W7_LAT_N set the sessions of a rate and a
# latency cell; W7_LOG_LEVEL=info lets an older binary without
# smtp64_tls_resumed_total have its upstream resumption counted from its
# log (at a CPU cost).
# --perf CONFIG: instead of the rounds, one rate cell of CONFIG with
# resumed client handshakes while `perf record -g` samples the middle's
# processes; prints where the time went (by library, by symbol).
# --strace CONFIG: likewise under `strace -c -f`, with full and then
# resumed client handshakes; prints the middle's system calls per session.
#
# Needs root; namespaces are made and removed here (tests/lab/lib.sh),
# documentation addresses only, no veth end in the root namespace; every
# process started here is stopped by its PID.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
. "$ROOT/tests/lab/lib.sh"

ROUNDS=2 QUICK=0 TSV="" META="" PERF="" STRACE=""
# W7_LOG_LEVEL=info: for a binary without smtp64_tls_resumed_total (an
# older one, to compare), the upstream resumption is counted from its
# log instead (the log lines cost CPU: say so beside such figures).
LOG_LEVEL=${W7_LOG_LEVEL:-warning}
while [ $# -gt 0 ]; do
	case $1 in
	--quick) QUICK=1 ;;
	--rounds) ROUNDS=${2:-}; shift ;;
	--tsv) TSV=${2:-}; shift ;;
	--meta) META=${2:-}; shift ;;
	--keep) export LAB_KEEP=1 ;;
	--perf) PERF=${2:-}; shift ;;
	--strace) STRACE=${2:-}; shift ;;
	-h|--help) sed -n '2,50p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
	*) echo "w7: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
case $ROUNDS in ''|*[!0-9]*) exit 2 ;; esac
[ "$ROUNDS" -ge 1 ] && [ "$ROUNDS" -le 10 ] || exit 2
if [ "$QUICK" -eq 1 ]; then
	ROUNDS=1 N=300 LAT_N=30
else
	N=1000 LAT_N=80
fi
# W7_N, W7_LAT_N: other cell sizes (an A/B of latency wants more
# sessions a latency cell than a run of make bench can spend).
N=${W7_N:-$N} LAT_N=${W7_LAT_N:-$LAT_N}
case $N$LAT_N in *[!0-9]*) echo "w7: W7_N and W7_LAT_N are counts" >&2; exit 2 ;; esac
PROCS=8
CONFIGS=(direct smtp64d-terminate smtp64d-term-ecdsa smtp64d-passthrough
	nginx-mail haproxy)
# W7_CONFIGS="a b": only these (an A/B of two builds, for one).
[ -z "${W7_CONFIGS:-}" ] || read -r -a CONFIGS <<<"$W7_CONFIGS"

for p in nginx haproxy postfix; do
	command -v "$p" >/dev/null 2>&1 ||
		{ echo "w7: $p missing (bash tools/install-deps bench)" >&2; exit 1; }
done
[ -r /usr/lib/nginx/modules/ngx_mail_module.so ] ||
	{ echo "w7: nginx mail module missing (libnginx-mod-mail)" >&2; exit 1; }

lab_init
W=$LAB_DIR
[ -n "$TSV" ] || TSV=$W/rows.tsv
[ -s "$TSV" ] ||
	printf 'round\tconfig\tworkload\tmetric\tvalue\tunit\tstatus\tdetail\n' >"$TSV"
row() {
	printf '%s\t%s\tW7\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" \
	    "$6" "${7:-}" >>"$TSV"
}
meta() { [ -z "$META" ] || printf '%s\t%s\n' "$1" "$2" >>"$META"; }

CFLAGS_B="-std=c11 -D_DEFAULT_SOURCE -O2 -g -Wall -Wextra -Wshadow
	-Wmissing-prototypes -Wstrict-prototypes -Wformat=2 -Wvla"
# shellcheck disable=SC2086
cc $CFLAGS_B -o "$W/tlsload" "$HERE/tlsload.c" -lssl -lcrypto ||
	{ echo "w7: cannot build tlsload" >&2; exit 1; }
# A private copy: a rebuild in build/ during the run must not change it.
cp "$SMTP64D" "$W/smtp64d" || exit 1
SMTP64D=$W/smtp64d

lab_topology c4 gw s6 || { echo "w7: topology failed" >&2; exit 1; }
lab_tls_certs || exit 1
lab_tls_leaf_rsa mxrsa mx6.example.org || exit 1
lab_tls_leaf_rsa gwrsa gw.example.net || exit 1
CRT=$LAB_TLS_DIR

# Postfix 3.7 as the server: STARTTLS with RSA-2048, what it accepts is
# discarded (the sink's cost is not what W7 measures; direct shows its
# ceiling), no limits on one client's rate.
if ! lab_postfix_start s6 mx6.example.org || ! lab_postfix_tls s6; then
	echo "w7: Postfix did not start" >&2
	lab_dump_logs
	exit 1
fi
PFDIR=${LAB_PF_DIR[s6]}/etc
for line in "smtpd_tls_cert_file = $CRT/mxrsa.crt" \
    "smtpd_tls_key_file = $CRT/mxrsa.key" "smtpd_tls_loglevel = 0" \
    "smtpd_tls_received_header = no" "local_transport = discard" \
    "default_process_limit = 100" "smtpd_client_connection_count_limit = 0" \
    "smtpd_client_connection_rate_limit = 0" "smtpd_client_message_rate_limit = 0" \
    "in_flow_delay = 0" "smtpd_helo_restrictions =" "smtpd_delay_reject = no"; do
	postconf -c "$PFDIR" -e "$line" || exit 1
done
grep -q '^discard' "$PFDIR/master.cf" ||
	printf 'discard   unix  -       -       n       -       -       discard\n' >>"$PFDIR/master.cf"
n=$(lab_pf_reloads "${LAB_PF_DIR[s6]}/maillog")
ip netns exec "$NS_S6" postfix -c "$PFDIR" reload >/dev/null 2>&1 || exit 1
wait_for 100 lab_pf_reloaded "${LAB_PF_DIR[s6]}/maillog" "$n" || exit 1

# ---------------------------------------------------------------- middles
mk_confs() {
	{
		printf '[gateway]\nfqdn = gw.example.net\n'
		# As make bench runs it (log_level warning); the resumption
		# counts come from its counters (smtp64_tls_resumed_total).
		printf 'listen = %s:25\nworkers = 2\nlog_level = %s\n' "$MX6_V4" "$LOG_LEVEL"
		printf 'metrics_listen = 127.0.0.1:9125\n'
		printf 'tls = terminate\n'
		printf 'tls_cert_file = %s/gwrsa.crt\ntls_key_file = %s/gwrsa.key\n' "$CRT" "$CRT"
		printf '\n[pair mx6]\nipv4 = %s\nipv6 = %s\n' "$MX6_V4" "$S6_ADDR"
	} >"$W/terminate.conf"
	sed 's/^tls_key_file = .*/&\ntls_cert2_file = '"${CRT//\//\\/}"'\/gw.crt\ntls_key2_file = '"${CRT//\//\\/}"'\/gw.key/' \
	    "$W/terminate.conf" >"$W/term-ecdsa.conf"
	sed 's/^tls = terminate/tls = passthrough/; /^tls_cert_file/d; /^tls_key_file/d' \
	    "$W/terminate.conf" >"$W/passthrough.conf"
	mkdir -p "$W/nginx"
	cat >"$W/nginx/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_mail_module.so;
user root;
worker_processes 2;
daemon off;
master_process on;
pid $W/nginx/nginx.pid;
error_log $W/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $W/nginx/body;
    proxy_temp_path $W/nginx/proxy;
    fastcgi_temp_path $W/nginx/fastcgi;
    uwsgi_temp_path $W/nginx/uwsgi;
    scgi_temp_path $W/nginx/scgi;
    # The mail proxy asks where each session goes: always the MX.
    server {
        listen 127.0.0.1:8025;
        location = /auth {
            add_header Auth-Status OK;
            add_header Auth-Server $S6_ADDR;
            add_header Auth-Port 25;
            return 204;
        }
    }
}
mail {
    server_name gw.example.net;
    auth_http 127.0.0.1:8025/auth;
    ssl_certificate $CRT/gwrsa.crt;
    ssl_certificate_key $CRT/gwrsa.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:MAIL:10m;
    server {
        listen $MX6_V4:25;
        protocol smtp;
        smtp_auth none;
        starttls on;
        xclient off;
    }
}
EOF
	cat >"$W/haproxy.cfg" <<EOF
global
    maxconn 4096
    nbthread 2
defaults
    mode tcp
    timeout connect 5s
    timeout client 300s
    timeout server 300s
frontend smtp
    bind $MX6_V4:25
    default_backend mx
backend mx
    server mx6 [$S6_ADDR]:25
EOF
}
mk_confs

MID_PID="" MID_LOG=""
# mid_pids: the middle's process and its descendants, one a line.
mid_pids() {
	echo "$MID_PID"
	python3 "$HERE/bench.py" descendants "$MID_PID" | tr ' ' '\n' | grep .
	return 0
}
# start CFG: starts the middle of CFG in gw (none for direct); checks that
# 192.0.2.30:25 is held by that very process.
start() {
	MID_LOG=$W/mid-$1.log
	: >"$MID_LOG"
	case $1 in
	direct) MID_PID=""; return 0 ;;
	smtp64d-terminate) lab_smtp64d_start "$W/terminate.conf" "$MID_LOG" "$MX6_V4" || return 1; MID_PID=$SMTP64D_PID ;;
	smtp64d-term-ecdsa) lab_smtp64d_start "$W/term-ecdsa.conf" "$MID_LOG" "$MX6_V4" || return 1; MID_PID=$SMTP64D_PID ;;
	smtp64d-passthrough) lab_smtp64d_start "$W/passthrough.conf" "$MID_LOG" "$MX6_V4" || return 1; MID_PID=$SMTP64D_PID ;;
	nginx-mail)
		ip netns exec "$NS_GW" nginx -p "$W/nginx" -c "$W/nginx/nginx.conf" </dev/null >>"$MID_LOG" 2>&1 &
		MID_PID=$!
		LAB_PIDS+=("$MID_PID")
		wait_port "$NS_GW" "$MX6_V4" 25 || return 1
		;;
	haproxy)
		ip netns exec "$NS_GW" haproxy -db -f "$W/haproxy.cfg" </dev/null >>"$MID_LOG" 2>&1 &
		MID_PID=$!
		LAB_PIDS+=("$MID_PID")
		wait_port "$NS_GW" "$MX6_V4" 25 || return 1
		;;
	esac
	local pids
	pids=" $(mid_pids | tr '\n' ' ') "
	ip netns exec "$NS_GW" ss -Hltnp "sport = :25" | grep -o 'pid=[0-9]*' |
	    cut -d= -f2 | while read -r p; do
		case $pids in *" $p "*) ;; *) echo "w7: port 25 held by $p, not $1" >&2; exit 1 ;; esac
	done
}
stop() {
	[ -n "$MID_PID" ] || return 0
	lab_kill "$MID_PID"
	MID_PID=""
	SMTP64D_PID=""
	wait_for 50 bash -c "! ip netns exec '$NS_GW' ss -Hltn 'sport = :25' | grep -q ."
}
# metric NAME_AND_LABELS: its value from smtp64d's /metrics (in gw).
metric() {
	ip netns exec "$NS_GW" python3 -c '
import sys, urllib.request
body = urllib.request.urlopen("http://127.0.0.1:9125/metrics", timeout=5).read().decode()
for line in body.splitlines():
    if line.startswith(sys.argv[1] + " "):
        print(line.split()[-1])
' "$1"
}
cpu_us() { [ -n "$MID_PID" ] && python3 "$HERE/bench.py" tree "$MID_PID" | cut -d' ' -f1; }
field() { sed -n "s/.*\\b$2=\\([0-9.]*\\).*/\\1/p" <<<"$1"; }

# load CFG ARGS...: tlsload from the client's namespace (direct: from the
# gateway's, to the MX's IPv6 address).
load() {
	local cfg=$1
	shift
	if [ "$cfg" = direct ]; then
		ip netns exec "$NS_GW" timeout 300 "$W/tlsload" -a "$S6_ADDR" "$@"
	else
		ip netns exec "$NS_C4" timeout 300 "$W/tlsload" -a "$MX6_V4" "$@"
	fi
}

# cell ROUND CFG MODE: a rate cell and a latency cell.
cell() {
	local rd=$1 cfg=$2 mode=$3 r=() out c0 c1 ok up_all up_res
	[ "$mode" = resumed ] && r=(-r)
	local u0=0 r0=0 u1 r1 term=0 m0
	m0=$(wc -l <"$MID_LOG")
	[ "${cfg#smtp64d-term}" != "$cfg" ] && term=1
	if [ "$term" -eq 1 ]; then
		u0=$(metric 'smtp64_tls_handshakes_total{leg="server",result="ok"}')
		r0=$(metric 'smtp64_tls_resumed_total{leg="server"}')
	fi
	c0=$(cpu_us)
	if ! out=$(load "$cfg" -n "$N" -c "$PROCS" "${r[@]}" 2>&1); then
		row "$rd" "$cfg" "rate_$mode" "" sessions/s FAILED "$(tail -n1 <<<"$out")"
		echo "  $cfg $mode: FAILED: $(tail -n 3 <<<"$out" | tr '\n' ' ')"
		return 1
	fi
	c1=$(cpu_us)
	ok=$(field "$out" ok)
	row "$rd" "$cfg" "rate_$mode" "$(field "$out" rate)" sessions/s ok
	row "$rd" "$cfg" "client_cpu_$mode" "$(field "$out" client_cpu_ms_per_session)" ms ok
	row "$rd" "$cfg" "client_resumed_$mode" \
	    "$(awk -v a="$(field "$out" resumed)" -v b="$ok" 'BEGIN { printf "%.1f", 100 * a / b }')" % ok
	if [ -n "$c0" ] && [ -n "$c1" ]; then
		row "$rd" "$cfg" "cpu_$mode" \
		    "$(awk -v a="$c0" -v b="$c1" -v n="$ok" 'BEGIN { printf "%.3f", (b - a) / 1000 / n }')" ms ok
	fi
	if [ "$term" -eq 1 ]; then
		u1=$(metric 'smtp64_tls_handshakes_total{leg="server",result="ok"}')
		r1=$(metric 'smtp64_tls_resumed_total{leg="server"}')
		# A binary without the counter: from its log (log_level info).
		if [ -n "$u0" ] && [ -n "$u1" ] && [ -n "$r0" ] && [ -n "$r1" ]; then
			up_all=$((u1 - u0)) up_res=$((r1 - r0))
		else
			up_all=$(tail -n "+$((m0 + 1))" "$MID_LOG" | grep -c 'event=tls leg=server ' || true)
			up_res=$(tail -n "+$((m0 + 1))" "$MID_LOG" | grep -c 'event=tls leg=server .*resumed=yes' || true)
		fi
		[ "$up_all" -gt 0 ] && row "$rd" "$cfg" "upstream_resumed_$mode" \
		    "$(awk -v a="$up_res" -v b="$up_all" 'BEGIN { printf "%.1f", 100 * a / b }')" % ok \
		    "$up_res of $up_all upstream handshakes"
	fi
	printf '  %-20s %-7s %s\n' "$cfg" "$mode" "$out"
	if ! out=$(load "$cfg" -n "$LAT_N" -c 1 "${r[@]}" 2>&1); then
		row "$rd" "$cfg" "lat_$mode" "" ms FAILED "$(tail -n1 <<<"$out")"
		return 1
	fi
	row "$rd" "$cfg" "lat_$mode" "$(field "$out" median_ms)" ms ok
	printf '  %-20s %-7s latency: %s\n' "$cfg" "$mode" "$out"
}

if [ -n "$PERF" ]; then
	command -v perf >/dev/null 2>&1 || { echo "w7: perf missing" >&2; exit 1; }
	start "$PERF" || { echo "w7: $PERF did not start" >&2; exit 1; }
	[ -n "$MID_PID" ] || { echo "w7: no middle to sample in $PERF" >&2; exit 1; }
	load "$PERF" -n 200 -c "$PROCS" -r >/dev/null 2>&1 # warm: sessions cached
	pids=$(mid_pids | paste -sd,)
	perf record -q -g -o "$W/perf.data" -p "$pids" >"$W/perf.out" 2>&1 &
	ppid=$!
	LAB_PIDS+=("$ppid")
	sleep 1
	load "$PERF" -n "$N" -c "$PROCS" -r
	kill -INT "$ppid"
	wait "$ppid"
	perf report -i "$W/perf.data" --no-children --sort dso --stdio 2>/dev/null |
	    grep -v '^#' | grep . | head -n 12
	perf report -i "$W/perf.data" --no-children --sort dso,symbol --stdio \
	    -g none 2>/dev/null | grep -v '^#' | grep . | head -n 40
	stop
	exit 0
fi

if [ -n "$STRACE" ]; then
	command -v strace >/dev/null 2>&1 || { echo "w7: strace missing" >&2; exit 1; }
	for mode in full resumed; do
		r=()
		[ "$mode" = resumed ] && r=(-r)
		start "$STRACE" || { echo "w7: $STRACE did not start" >&2; exit 1; }
		[ -n "$MID_PID" ] || { echo "w7: no middle to trace in $STRACE" >&2; exit 1; }
		load "$STRACE" -n 200 -c "$PROCS" "${r[@]}" >/dev/null 2>&1 # warm
		sargs=()
		for p in $(mid_pids); do
			sargs+=(-p "$p")
		done
		strace -c -f -o "$W/strace-$mode.txt" "${sargs[@]}" 2>/dev/null &
		spid=$!
		LAB_PIDS+=("$spid")
		sleep 1
		out=$(load "$STRACE" -n "$N" -c "$PROCS" "${r[@]}")
		ok=$(field "$out" ok)
		kill -INT "$spid"
		wait "$spid"
		echo "# $STRACE, $mode client handshakes: system calls per session ($ok sessions)"
		awk -v n="$ok" '$1 ~ /^[0-9.]+$/ && NF >= 5 {
			calls = $4; name = $NF
			if (name == "total") { printf "  %-16s %7.1f\n", "total", calls / n; next }
			printf "  %-16s %7.1f\n", name, calls / n }' "$W/strace-$mode.txt"
		stop
	done
	exit 0
fi

meta "W7" "$N STARTTLS sessions per rate cell ($PROCS client processes), $LAT_N per latency cell (one process); $ROUNDS round(s); Postfix $(postconf -d -h mail_version 2>/dev/null) with RSA-2048 as the server; nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), $(haproxy -v 2>&1 | head -n1 | sed 's/ - https.*//')"
echo "W7: ${CONFIGS[*]}; $ROUNDS round(s), $N sessions a rate cell, $LAT_N a latency cell"
for ((rd = 1; rd <= ROUNDS; rd++)); do
	# Each round another order (rotated by the round number).
	order=()
	for ((i = 0; i < ${#CONFIGS[@]}; i++)); do
		order+=("${CONFIGS[$(((i + rd - 1) % ${#CONFIGS[@]}))]}")
	done
	echo "# round $rd: ${order[*]}"
	for cfg in "${order[@]}"; do
		if ! start "$cfg"; then
			row "$rd" "$cfg" rate_full "" sessions/s FAILED "did not start"
			echo "  $cfg: did not start"; tail -n 5 "$MID_LOG"
			stop
			continue
		fi
		cell "$rd" "$cfg" full
		cell "$rd" "$cfg" resumed
		stop
	done
done
python3 "$HERE/bench.py" w7 "$TSV"
