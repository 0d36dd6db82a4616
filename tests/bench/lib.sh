# tests/bench/lib.sh: namespaces, peers and process control for make bench
# (bash, sourced by tests/bench/run).
#
# Topology (documentation addresses only; no veth end in the root ns):
#
#   c   192.0.2.10/24          ---  to-c  192.0.2.1/24, 192.0.2.30/24  [gw]
#       2001:db8:1::10/64            2001:db8:1::1/64
#                                    to-s  2001:db8::1/64  --- 2001:db8::25  s
#
# Every relay listens on 192.0.2.30:25 in gw and forwards to
# [2001:db8::25]:25, where smtp-sink runs.  "direct" is the same client
# reaching the sink over IPv6 through gw, which routes (IPv6 forwarding on
# in gw, never IPv4), so the two legs differ only by the relay.
#
# Background processes are started with `ip netns exec NS cmd &` in the
# current shell (never in a subshell), so $! is the command itself; every
# PID is recorded and only recorded PIDs (and their descendants) are ever
# signalled.

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH_PY="$BENCH_ROOT/tests/bench/bench.py"
BENCH_LOCK=/run/smtp64-lab.lock	# shared with tests/lab: main.cf edits
BENCH_MAIN_CF=/etc/postfix/main.cf

C_V4=192.0.2.10
C_V6=2001:db8:1::10
GW_C_V4=192.0.2.1
GW_C_V6=2001:db8:1::1
GW_PAIR_V4=192.0.2.30		# stands for the v6-only MX
GW_S_V6=2001:db8::1
S_V6=2001:db8::25

TAG="" WORK="" NS_C="" NS_GW="" NS_S=""
SMTP64D_BIN=$BENCH_ROOT/build/smtp64d	# run copies it: see tests/bench/run
PIDS=()			# every background PID we started
PF_ALT=""		# our entry in alternate_config_directories
PF_UP=0
CLEANED=0

say() { printf '%s\n' "$*"; }
err() { printf 'bench: %s\n' "$*" >&2; }
now() { printf '%s' "$EPOCHREALTIME"; }

# ---------------------------------------------------------------- setup
bench_init() {
	TAG=$(printf 'b64-%x%03x' "$$" "$((RANDOM % 4096))")
	WORK=$(mktemp -d "/tmp/smtp64-bench.$TAG.XXXXXX") || exit 2
	chmod 755 "$WORK"
	NS_C=$TAG-c NS_GW=$TAG-gw NS_S=$TAG-s
	trap 'bench_cleanup' EXIT
	trap 'bench_cleanup; trap - EXIT; exit 130' INT
	trap 'bench_cleanup; trap - EXIT; exit 143' TERM
}

ns_sysctl() { ip netns exec "$1" sysctl -q -w "$2" >/dev/null; }

mk_ns() {
	ip netns add "$1" || return 1
	NSES+=("$1")
	ip -n "$1" link set lo up
	ns_sysctl "$1" net.ipv6.conf.all.accept_dad=0
	ns_sysctl "$1" net.ipv6.conf.default.accept_dad=0
	# Thousands of sessions a cell from one client address: use the
	# whole port range and let connect() reuse TIME_WAIT ports.
	ns_sysctl "$1" net.ipv4.ip_local_port_range="1024 65535"
	ns_sysctl "$1" net.ipv4.tcp_tw_reuse=1
	ns_sysctl "$1" net.core.somaxconn=4096
	ns_sysctl "$1" net.ipv4.tcp_max_syn_backlog=4096
}

NSES=()
bench_topology() {
	mk_ns "$NS_C" && mk_ns "$NS_GW" && mk_ns "$NS_S" || return 1
	# veth pairs created inside gw with the peer moved straight into
	# the other namespace: the root namespace never holds an end.
	ip -n "$NS_GW" link add to-c type veth peer name eth0 netns "$NS_C" ||
		return 1
	ip -n "$NS_GW" link add to-s type veth peer name eth0 netns "$NS_S" ||
		return 1
	ip -n "$NS_GW" link set to-c up
	ip -n "$NS_GW" link set to-s up
	ip -n "$NS_C" link set eth0 up
	ip -n "$NS_S" link set eth0 up

	ip -n "$NS_C" -4 addr add "$C_V4/24" dev eth0
	ip -n "$NS_C" -6 addr add "$C_V6/64" dev eth0 nodad
	ip -n "$NS_C" -4 route add default via "$GW_C_V4"
	ip -n "$NS_C" -6 route add default via "$GW_C_V6"

	ip -n "$NS_GW" -4 addr add "$GW_C_V4/24" dev to-c
	ip -n "$NS_GW" -4 addr add "$GW_PAIR_V4/24" dev to-c
	ip -n "$NS_GW" -6 addr add "$GW_C_V6/64" dev to-c nodad
	ip -n "$NS_GW" -6 addr add "$GW_S_V6/64" dev to-s nodad
	ns_sysctl "$NS_GW" net.ipv4.ip_forward=0
	ns_sysctl "$NS_GW" net.ipv6.conf.all.forwarding=1

	ip -n "$NS_S" -6 addr add "$S_V6/64" dev eth0 nodad
	ip -n "$NS_S" -6 route add default via "$GW_S_V6"
}

# ---------------------------------------------------------------- processes
# bg VAR LOG NS CMD...: starts CMD in NS; its PID goes to VAR and PIDS.
bg() {
	local var=$1 log=$2 ns=$3
	shift 3
	ip netns exec "$ns" "$@" </dev/null >"$log" 2>&1 &
	printf -v "$var" '%s' "$!"
	PIDS+=("$!")
}

# descendants PID: the PIDs below PID (children, grandchildren...).
descendants() {
	python3 "$BENCH_PY" descendants "$1"
}

wait_gone() {
	local pid=$1 n=${2:-50} i
	for ((i = 0; i < n; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

# stop PID: TERM to PID and the descendants it had (fork-per-connection
# relays), bounded wait, then KILL.  Only for PIDs started here.
stop_pid() {
	local pid=$1 kids k
	[ -n "$pid" ] || return 0
	kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
	kids=$(descendants "$pid")
	kill -TERM "$pid" 2>/dev/null
	for k in $kids; do kill -TERM "$k" 2>/dev/null; done
	if ! wait_gone "$pid" 50; then
		err "pid $pid ignored SIGTERM: SIGKILL"
		kill -KILL "$pid" 2>/dev/null
	fi
	for k in $kids; do
		wait_gone "$k" 20 || kill -KILL "$k" 2>/dev/null
	done
	wait "$pid" 2>/dev/null
	return 0
}

# listener_ok NS ADDR:PORT PID [COUNT]: waits (10 s) until ADDR:PORT
# listens in NS on COUNT sockets (default 1; smtp64d's workers each have
# their own SO_REUSEPORT socket) and checks, with ss -ltnp, that every
# one is held by PID or its descendants and by no other process (no
# stale listener).
listener_ok() {
	local ns=$1 want=$2 pid=$3 count=${4:-1} i lines="" ours p bad n
	for ((i = 0; i < 100; i++)); do
		lines=$(ip netns exec "$ns" ss -Hltnp 2>/dev/null |
			awk -v w="$want" '$4 == w')
		n=$(grep -c . <<<"$lines")
		# ss lists a socket a moment before it can name its owner.
		if [ "$n" -ge "$count" ] && ! grep -qv 'pid=' <<<"$lines"; then
			ours=" $pid $(descendants "$pid") "
			bad=""
			for p in $(grep -o 'pid=[0-9]*' <<<"$lines" | cut -d= -f2); do
				case $ours in *" $p "*) ;; *) bad="$bad $p" ;; esac
			done
			[ -z "$bad" ] && return 0
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if [ -z "$lines" ]; then
		err "nothing listens on $want in $ns"
	elif [ -n "${bad:-}" ]; then
		err "$want in $ns is held by pids not of $pid:$bad: $lines"
	else
		err "$want in $ns: want $count sockets held by $pid: $lines"
	fi
	return 1
}

# ---------------------------------------------------------------- sink
SINK_PID="" SINK_OUT=""
sink_start() {
	SINK_OUT=$WORK/sink.$1.out
	# -c: running counters (sess= quit= mesg=) on stdout; -m: up to
	# 20000 concurrent sessions (W3 holds 10000).
	bg SINK_PID "$SINK_OUT" "$NS_S" smtp-sink -u nobody -c -m 20000 \
	    "[$S_V6]:25" 4096
	listener_ok "$NS_S" "[$S_V6]:25" "$SINK_PID"
}
sink_stop() { stop_pid "$SINK_PID"; SINK_PID=""; }
sink_count() { python3 "$BENCH_PY" sinkcount "$SINK_OUT"; }

# ---------------------------------------------------------------- relays
RELAY_PID="" RELAY_LOG="" ROUTE_DNS_PID=""
CONF_DIR=""

# relay_write_confs: every relay's configuration, once per run.
relay_write_confs() {
	CONF_DIR=$WORK/conf
	mkdir -p "$CONF_DIR"
	# workers: as many processes as HAProxy has threads (nbthread 2),
	# when the binary has the key (run sets SMTP64D_WORKERS).
	# max_sessions: smtp64d refuses to start unless the open-files limit
	# holds two descriptors a session plus 64; W3 needs no more than
	# 10000 sessions, so fit the limit rather than a fixed 20000.
	local maxs=$((($(ulimit -n) - 64) / 2))
	[ "$maxs" -gt 20000 ] && maxs=20000
	cat >"$CONF_DIR/smtp64d.conf" <<EOF
[gateway]
fqdn = gw.example.net
listen = $GW_PAIR_V4:25
max_sessions = $maxs
max_sessions_per_client = $maxs
log_level = warning
$([ "${SMTP64D_WORKERS:-1}" -gt 1 ] && printf 'workers = %s' "$SMTP64D_WORKERS")
[pair mx6]
ipv4 = $GW_PAIR_V4
ipv6 = $S_V6
EOF
	# Route mode: the same address as a [route], its domain's MX found
	# through a dnsmasq on the gateway's loopback (relay_start).
	cat >"$CONF_DIR/smtp64d-route.conf" <<EOF
[gateway]
fqdn = gw.example.net
listen = $GW_PAIR_V4:25
max_sessions = $maxs
max_sessions_per_client = $maxs
log_level = warning
dns_servers = 127.0.0.1:5353
$([ "${SMTP64D_WORKERS:-1}" -gt 1 ] && printf 'workers = %s' "$SMTP64D_WORKERS")
[route bench]
address = $GW_PAIR_V4
domains = example.org
EOF
	cat >"$CONF_DIR/haproxy.cfg" <<EOF
# HAProxy 2.6 as a careful operator would run it as an SMTP relay:
# plain TCP mode, both threads of the host, maxconn just above W3's
# idle sessions (HAProxy sizes its descriptors from it), SMTP timeouts
# (RFC 5321 §4.5.3.2: 5 min and more), kernel splicing allowed for bulk
# data with 256 pipes (plenty for a few bulk transfers at once; the
# default, maxconn/4, reserves descriptors for idle sessions).  HAProxy
# sets TCP_NODELAY on its sockets itself (MSG_MORE where it coalesces).
global
    nbthread 2
    maxconn ${HAPROXY_MAXCONN:-20050}
    maxpipes 256
    tune.bufsize 16384
defaults
    mode tcp
    timeout connect 10s
    timeout client 10m
    timeout server 10m
    option splice-auto
    maxconn ${HAPROXY_MAXCONN:-20050}
frontend smtp
    bind $GW_PAIR_V4:25 backlog 4096
    default_backend mx6
backend mx6
    server mx6 [$S_V6]:25
EOF
}

# smtp64d_workers BIN N: N when BIN accepts "workers = N" in [gateway]
# (smtp64d -t), else 1.  Sets SMTP64D_WORKERS.
smtp64d_workers() {
	local bin=$1 n=$2 f
	SMTP64D_WORKERS=1
	f=$(mktemp "${WORK:-/tmp}/workers.XXXXXX.conf") || return 0
	printf '[gateway]\nfqdn = gw.example.net\nlisten = %s:25\nworkers = %s\n[pair mx6]\nipv4 = %s\nipv6 = %s\n' \
	    "$GW_PAIR_V4" "$n" "$GW_PAIR_V4" "$S_V6" >"$f"
	"$bin" -t -c "$f" >/dev/null 2>&1 && SMTP64D_WORKERS=$n
	rm -f "$f"
}

relay_pf_dir() { printf '%s/postfix' "$WORK"; }

# Adds or removes our config folder in alternate_config_directories of
# /etc/postfix/main.cf, under the lock tests/lab uses too, so parallel
# runs never lose each other's entries.
pf_altdir() {
	local op=$1 dir=$2
	(
		flock -w 10 9 || { err "cannot lock $BENCH_LOCK"; exit 1; }
		[ -e "$BENCH_MAIN_CF" ] || : >"$BENCH_MAIN_CF"
		local cur d new=()
		cur=$(postconf -c /etc/postfix -h alternate_config_directories \
		    2>/dev/null)
		for d in ${cur//,/ }; do
			[ "$d" = "$dir" ] && continue
			new+=("$d")
		done
		[ "$op" = add ] && new+=("$dir")
		if [ ${#new[@]} -eq 0 ]; then
			postconf -c /etc/postfix -X alternate_config_directories
		else
			local IFS=,
			postconf -c /etc/postfix -e \
			    "alternate_config_directories = ${new[*]}"
		fi
	) 9>>"$BENCH_LOCK"
}

# pf_setup: the dual-stack relay Postfix (config written once).
pf_setup() {
	local top dir
	top=$(relay_pf_dir)
	dir=$top/etc
	mkdir -p "$dir" "$top/queue" "$top/data"
	chmod 755 "$top" "$dir" "$top/queue"
	chown postfix: "$top/data"
	cat >"$dir/main.cf" <<EOF
# Dual-stack store-and-forward relay (as RFC 3974 has mixed sites do):
# accepts on the IPv4 address, relays to the IPv6-only MX.  Tuned as an
# operator would for a relay of known peers: no DNS, no client lookups,
# no per-client connection cap, room for W3's idle sessions; queue on
# disk with Postfix's usual fsync, connection caching to the MX (the
# default).
compatibility_level = 3.6
queue_directory = $top/queue
data_directory = $top/data
maillog_file = $top/maillog
maillog_file_prefixes = /var, /tmp, $top
myhostname = gw.example.net
mydomain = example.net
mydestination =
local_recipient_maps =
inet_interfaces = $GW_PAIR_V4, $GW_S_V6
inet_protocols = all
mynetworks = 192.0.2.0/24
relay_domains = example.org
relayhost = [$S_V6]:25
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
smtp_address_preference = ipv6
message_size_limit = 52428800
default_process_limit = 600
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
default_destination_concurrency_limit = 20
smtpd_banner = \$myhostname ESMTP
biff = no
EOF
	# The lab's service list (all unchrooted).
	cp "$HERE/../lab/master.cf" "$dir/master.cf"
	pf_altdir add "$dir" || return 1
	PF_ALT=$dir
}

pf_master_pid() {
	local f
	f=$(relay_pf_dir)/queue/pid/master.pid
	[ -r "$f" ] && tr -dc 0-9 <"$f"
}

pf_start() {
	local top
	top=$(relay_pf_dir)
	if ! ip netns exec "$NS_GW" postfix -c "$top/etc" start \
	    >"$top/start.out" 2>&1; then
		err "postfix start failed"
		cat "$top/start.out" >&2
		tail -n 20 "$top/maillog" >&2 2>/dev/null
		return 1
	fi
	PF_UP=1
	RELAY_PID=$(pf_master_pid)
	[ -n "$RELAY_PID" ] || { err "no postfix master.pid"; return 1; }
}

pf_stop() {
	local top pid
	top=$(relay_pf_dir)
	[ "$PF_UP" -eq 1 ] || return 0
	pid=$(pf_master_pid)
	ip netns exec "$NS_GW" postfix -c "$top/etc" stop >/dev/null 2>&1
	# The master of our own instance only (from its own pid file).
	if [ -n "$pid" ] && ! wait_gone "$pid" 100; then
		kill -KILL "$pid" 2>/dev/null
		wait_gone "$pid" 20
	fi
	PF_UP=0
	# A fresh queue for the next cell: nothing may be left over.
	find "$top/queue" -mindepth 2 -type f \( -path '*/incoming/*' -o \
	    -path '*/active/*' -o -path '*/deferred/*' -o -path '*/maildrop/*' \
	    -o -path '*/hold/*' -o -path '*/corrupt/*' -o -path '*/defer/*' \
	    -o -path '*/bounce/*' \) -delete 2>/dev/null
	return 0
}

pf_queue_left() {
	local top
	top=$(relay_pf_dir)
	find "$top/queue/incoming" "$top/queue/active" "$top/queue/deferred" \
	    "$top/queue/maildrop" -type f 2>/dev/null | wc -l
}

# relay_start CFG ROUND: starts relay CFG in gw; sets RELAY_PID, checks
# that the listener on 192.0.2.30:25 is that very process.
relay_start() {
	local cfg=$1 tagname=$2
	RELAY_PID=""
	RELAY_LOG=$WORK/$cfg.$tagname.log
	case $cfg in
	direct)
		return 0 ;;
	smtp64d)
		bg RELAY_PID "$RELAY_LOG" "$NS_GW" "$SMTP64D_BIN" \
		    -f -c "$CONF_DIR/smtp64d.conf" ;;
	smtp64d-route)
		bg ROUTE_DNS_PID "$WORK/dnsmasq.$tagname.log" "$NS_GW" dnsmasq \
		    --keep-in-foreground --conf-file=/dev/null --no-resolv \
		    --no-hosts --no-poll --bind-interfaces \
		    --listen-address=127.0.0.1 --port=5353 --cache-size=0 \
		    --local=/example.org/ --local-ttl=300 \
		    --mx-host=example.org,mx.example.org,10 \
		    --host-record=mx.example.org,"$S_V6"
		bg RELAY_PID "$RELAY_LOG" "$NS_GW" "$SMTP64D_BIN" \
		    -f -c "$CONF_DIR/smtp64d-route.conf" ;;
	haproxy)
		bg RELAY_PID "$RELAY_LOG" "$NS_GW" haproxy -db \
		    -f "$CONF_DIR/haproxy.cfg" ;;
	6tunnel)
		# -d: stay in the foreground (so $! is the listener);
		# -f: no name resolution; -L: lift the 100-connection cap.
		bg RELAY_PID "$RELAY_LOG" "$NS_GW" 6tunnel -d -f -L 20000 \
		    -l "$GW_PAIR_V4" 25 "$S_V6" 25 ;;
	socat)
		bg RELAY_PID "$RELAY_LOG" "$NS_GW" socat \
		    "TCP4-LISTEN:25,bind=$GW_PAIR_V4,reuseaddr,fork,backlog=4096,nodelay" \
		    "TCP6:[$S_V6]:25,nodelay" ;;
	postfix-relay)
		: >"$(relay_pf_dir)/maillog"
		pf_start || return 1 ;;
	*)
		err "unknown configuration $cfg"
		return 1 ;;
	esac
	local socks=1
	case $cfg in smtp64d*) socks=${SMTP64D_WORKERS:-1} ;; esac
	listener_ok "$NS_GW" "$GW_PAIR_V4:25" "$RELAY_PID" "$socks" || {
		[ -s "$RELAY_LOG" ] && tail -n 20 "$RELAY_LOG" >&2
		return 1
	}
}

relay_stop() {
	local cfg=$1
	case $cfg in
	direct) ;;
	postfix-relay) pf_stop ;;
	smtp64d-route)
		stop_pid "$RELAY_PID"
		stop_pid "$ROUTE_DNS_PID"
		ROUTE_DNS_PID="" ;;
	*) stop_pid "$RELAY_PID" ;;
	esac
	RELAY_PID=""
}

# target CFG: where the client connects for configuration CFG.
target_host() {
	if [ "$1" = direct ]; then printf '%s' "$S_V6"; else printf '%s' "$GW_PAIR_V4"; fi
}

# ---------------------------------------------------------------- cleanup
bench_cleanup() {
	local rc=$? i ns
	[ "$CLEANED" -eq 0 ] || return "$rc"
	CLEANED=1
	pf_stop
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		kill -0 "${PIDS[$i]}" 2>/dev/null && stop_pid "${PIDS[$i]}"
	done
	for ns in "${NSES[@]}"; do
		ip netns del "$ns" 2>/dev/null
	done
	[ -z "$PF_ALT" ] || pf_altdir del "$PF_ALT"
	if [ -n "$WORK" ] && [ -d "$WORK" ]; then
		if [ -n "${BENCH_KEEP:-}" ]; then
			err "kept $WORK"
		else
			rm -rf "$WORK"
		fi
	fi
	return "$rc"
}
