# tests/lab/lib.sh: shared shell library of the smtp64 lab (bash, sourced).
#
# Builds a private set of network namespaces (uniquely tagged per run),
# joins them with veth pairs (never with an end in the root namespace),
# runs private Postfix instances with strict HELO checks inside them, starts
# smtp64d, and tears everything down again from a trap on EXIT/INT/TERM.
#
# Only documentation addresses are used: 192.0.2.0/24, 198.51.100.0/24,
# 203.0.113.0/24 and 2001:db8::/32.  Every wait loop is bounded.
#
# Typical use:
#   . "$(dirname "$0")/../lab/lib.sh"
#   lab_init
#   lab_topology c4 gw s6
#   lab_postfix_start s6
#   lab_smtp64d_start "$conf" || ...
#   check "mail delivered" test "$(maildir_count s6)" -eq 1
#   lab_summary

# ---------------------------------------------------------------- globals
# Globals below are read by the scripts that source this file.
# shellcheck disable=SC2034
# LAB_LIB_DIR: this file's folder, with master.cf, mkcert.sh and
# smtpchat.py (tests/lab in the tree, $(PREFIX)/share/smtp64/lab once
# installed); LAB_ROOT: the source tree (in-tree runs only).
LAB_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB_ROOT=$(cd "$LAB_LIB_DIR/../.." && pwd)
SMTP64D=${SMTP64D:-$LAB_ROOT/build/smtp64d}
LAB_MAIN_CF=/etc/postfix/main.cf
LAB_LOCK=/run/smtp64-lab.lock

LAB_TAG=""            # per-run tag, prefix of every namespace name
LAB_DIR=""            # per-run temporary directory
LAB_NS=()             # namespaces made by this run
LAB_PIDS=()           # background processes started by this run
LAB_PF=()             # Postfix instances (short names) started by this run
LAB_PF_ALT=()         # config dirs added to alternate_config_directories
LAB_NETNS_ETC=()      # /etc/netns/<ns> folders (and /etc/netns) made by this run
LAB_LAST_PID=""
SMTP64D_PID=""
SMTP64D_LOG=""
LAB_CLEANED=0
declare -A LAB_PF_DIR=() LAB_PF_NS=() LAB_PF_ADDR=()
PASS=0
FAIL=0

# Names of the namespaces of the issue-3 topology (set by lab_topology).
NS_C4="" NS_GW="" NS_S6="" NS_C6="" NS_S4=""

# Addresses of the issue-3 topology.
C4_ADDR=192.0.2.10
GW_C4_ADDR=192.0.2.1
MX6_V4=192.0.2.30          # IPv4 address that stands for the v6-only MX
S6_ADDR=2001:db8::25
GW_S6_ADDR=2001:db8::1
C6_ADDR=2001:db8:1::10
GW_C6_ADDR=2001:db8:1::1
MX4_V6=2001:db8:1::25      # IPv6 address that stands for the v4-only MX
S4_ADDR=198.51.100.25
GW_S4_ADDR=198.51.100.1

lab_log() { printf '%s\n' "$*"; }
lab_err() { printf 'lab: %s\n' "$*" >&2; }

# ---------------------------------------------------------------- checks
# check DESCRIPTION COMMAND...: runs COMMAND, prints "ok"/"FAIL" and counts.
check() {
	local desc=$1
	shift
	if "$@" >/dev/null 2>&1; then
		PASS=$((PASS + 1))
		printf 'ok   - %s\n' "$desc"
		return 0
	fi
	FAIL=$((FAIL + 1))
	printf 'FAIL - %s\n' "$desc"
	return 1
}

# pass DESC / fail DESC: record a result decided by the caller.
pass() { PASS=$((PASS + 1)); printf 'ok   - %s\n' "$1"; }
fail() { FAIL=$((FAIL + 1)); printf 'FAIL - %s\n' "$1"; }

# lab_summary: prints "N passed, N failed"; returns 0 only when nothing
# failed and at least one check ran.
lab_summary() {
	printf '%d passed, %d failed\n' "$PASS" "$FAIL"
	[ "$FAIL" -eq 0 ] && [ "$PASS" -gt 0 ]
}

# ---------------------------------------------------------------- setup
# lab_init: per-run tag, temp dir and the cleanup trap.  Needs root.
lab_init() {
	if [ "$(id -u)" -ne 0 ]; then
		lab_err "must run as root (network namespaces)"
		exit 2
	fi
	local t
	for t in ip postfix postconf swaks ss flock; do
		command -v "$t" >/dev/null 2>&1 || {
			lab_err "missing tool: $t (run tools/install-deps)"
			exit 2
		}
	done
	LAB_TAG=$(printf 's64-%x%03x' "$$" "$((RANDOM % 4096))")
	LAB_DIR=$(mktemp -d "/tmp/smtp64-lab.$LAB_TAG.XXXXXX") || exit 2
	chmod 755 "$LAB_DIR"
	printf '# lab %s (namespaces %s-*, files %s)\n' "$LAB_TAG" "$LAB_TAG" "$LAB_DIR"
	trap 'lab_cleanup' EXIT
	trap 'lab_cleanup; trap - EXIT; exit 130' INT
	trap 'lab_cleanup; trap - EXIT; exit 143' TERM
}

# lab_nsname SHORT: the full name of this run's namespace SHORT.
lab_nsname() { printf '%s-%s' "$LAB_TAG" "$1"; }

# lab_ns SHORT: makes namespace <tag>-SHORT with lo up; prints nothing.
lab_ns() {
	local ns
	ns=$(lab_nsname "$1")
	ip netns add "$ns" || return 1
	LAB_NS+=("$ns")
	ip -n "$ns" link set lo up
	lab_sysctl "$ns" net.ipv6.conf.all.accept_dad=0
	lab_sysctl "$ns" net.ipv6.conf.default.accept_dad=0
}

# lab_sysctl NS KEY=VALUE
lab_sysctl() {
	ip netns exec "$1" sysctl -q -w "$2" >/dev/null
}

# lab_link NS1 IF1 NS2 IF2: a veth pair with one end in each namespace.
# The pair is created inside NS1 with its peer directly in NS2, so the
# root namespace never holds an end.
lab_link() {
	ip -n "$1" link add name "$2" type veth peer name "$4" netns "$3" ||
		return 1
	ip -n "$1" link set "$2" up
	ip -n "$3" link set "$4" up
}

# lab_addr NS IF ADDR/LEN: IPv6 addresses get nodad.
lab_addr() {
	case $3 in
	*:*) ip -n "$1" -6 addr add "$3" dev "$2" nodad ;;
	*) ip -n "$1" -4 addr add "$3" dev "$2" ;;
	esac
}

# lab_route NS ARGS...: ip route add ARGS in NS (family from the args).
lab_route() {
	local ns=$1
	shift
	case "$*" in
	*:*) ip -n "$ns" -6 route add "$@" ;;
	*) ip -n "$ns" -4 route add "$@" ;;
	esac
}

# lab_topology [c4] [gw] [s6] [c6] [s4]: the issue-3 topology, or the part
# of it named (gw is always made).  Sets NS_C4, NS_GW, NS_S6, NS_C6, NS_S4.
#
#   c4 192.0.2.10 --- 192.0.2.1, 192.0.2.30 [gw] 2001:db8::1 --- 2001:db8::25 s6
#   c6 2001:db8:1::10 --- 2001:db8:1::1, 2001:db8:1::25 [gw]
#                                       [gw] 198.51.100.1 --- 198.51.100.25 s4
#
# lab_route_front ROUTE4 DNS4 C4 NS...: the front of a route-mode lab:
# namespaces gw, c4 and each NS; IP forwarding off in gw; c4 IPv4-only on
# a link to gw, which holds 192.0.2.1 (c4's default route), ROUTE4 (the
# route's address) and DNS4 (the lab DNS).  Sets NS_GW; the caller links
# its servers.  0, or 1 with a message.
lab_route_front() {
	local route4=$1 dns4=$2 c4=$3 n nsc
	shift 3
	NS_GW=$(lab_nsname gw)
	for n in gw c4 "$@"; do
		lab_ns "$n" || return 1
	done
	nsc=$(lab_nsname c4)
	lab_sysctl "$NS_GW" net.ipv4.ip_forward=0
	lab_sysctl "$NS_GW" net.ipv6.conf.all.forwarding=0
	lab_sysctl "$nsc" net.ipv6.conf.all.disable_ipv6=1
	lab_link "$NS_GW" to-c4 "$nsc" eth0 &&
	    lab_addr "$NS_GW" to-c4 192.0.2.1/24 &&
	    lab_addr "$NS_GW" to-c4 "$route4/24" &&
	    lab_addr "$NS_GW" to-c4 "$dns4/24" &&
	    lab_addr "$nsc" eth0 "$c4/24" &&
	    lab_route "$nsc" default via 192.0.2.1
}

# The gateway relays at the application level: IP forwarding stays off on
# gw, so no packet is ever routed between the families or the links.
lab_topology() {
	local want=" $* " n
	[ $# -gt 0 ] || want=" c4 gw s6 c6 s4 "
	NS_GW=$(lab_nsname gw)
	lab_ns gw || return 1
	lab_sysctl "$NS_GW" net.ipv4.ip_forward=0
	lab_sysctl "$NS_GW" net.ipv6.conf.all.forwarding=0
	for n in c4 s6 c6 s4; do
		case $want in *" $n "*) ;; *) continue ;; esac
		lab_ns "$n" || return 1
	done
	case $want in *" c4 "*)
		NS_C4=$(lab_nsname c4)
		lab_sysctl "$NS_C4" net.ipv6.conf.all.disable_ipv6=1
		lab_link "$NS_GW" to-c4 "$NS_C4" eth0 || return 1
		lab_addr "$NS_GW" to-c4 "$GW_C4_ADDR/24"
		lab_addr "$NS_GW" to-c4 "$MX6_V4/24"
		lab_addr "$NS_C4" eth0 "$C4_ADDR/24"
		lab_route "$NS_C4" default via "$GW_C4_ADDR"
		;;
	esac
	case $want in *" s6 "*)
		NS_S6=$(lab_nsname s6)
		lab_link "$NS_GW" to-s6 "$NS_S6" eth0 || return 1
		lab_addr "$NS_GW" to-s6 "$GW_S6_ADDR/64"
		lab_addr "$NS_S6" eth0 "$S6_ADDR/64"
		lab_route "$NS_S6" default via "$GW_S6_ADDR"
		;;
	esac
	case $want in *" c6 "*)
		NS_C6=$(lab_nsname c6)
		lab_link "$NS_GW" to-c6 "$NS_C6" eth0 || return 1
		lab_addr "$NS_GW" to-c6 "$GW_C6_ADDR/64"
		lab_addr "$NS_GW" to-c6 "$MX4_V6/64"
		lab_addr "$NS_C6" eth0 "$C6_ADDR/64"
		lab_route "$NS_C6" default via "$GW_C6_ADDR"
		;;
	esac
	case $want in *" s4 "*)
		NS_S4=$(lab_nsname s4)
		lab_sysctl "$NS_S4" net.ipv6.conf.all.disable_ipv6=1
		lab_link "$NS_GW" to-s4 "$NS_S4" eth0 || return 1
		lab_addr "$NS_GW" to-s4 "$GW_S4_ADDR/24"
		lab_addr "$NS_S4" eth0 "$S4_ADDR/24"
		lab_route "$NS_S4" default via "$GW_S4_ADDR"
		;;
	esac
}

# ---------------------------------------------------------------- waits
# wait_port NS ADDR PORT: waits (100 x 0.1 s) until something listens on
# ADDR:PORT (or the wildcard of ADDR's family) in NS.
wait_port() {
	local ns=$1 addr=$2 port=$3 i want wild
	case $addr in
	*:*) want="[$addr]:$port" wild="[::]:$port" ;;
	*) want="$addr:$port" wild="0.0.0.0:$port" ;;
	esac
	for ((i = 0; i < 100; i++)); do
		if ip netns exec "$ns" ss -Hltn 2>/dev/null | awk '{print $4}' |
			grep -qxF -e "$want" -e "$wild" -e "*:$port"; then
			return 0
		fi
		sleep 0.1
	done
	lab_err "nothing listens on $want in $ns after 10 s"
	return 1
}

# wait_gone PID [TENTHS]: waits until PID has exited (default 5 s).
wait_gone() {
	local pid=$1 n=${2:-50} i
	for ((i = 0; i < n; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

# wait_for TENTHS COMMAND...: retries COMMAND every 0.1 s, at most TENTHS times.
wait_for() {
	local n=$1 i
	shift
	for ((i = 0; i < n; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

# ---------------------------------------------------------------- processes
# lab_bg LOG NS CMD...: starts CMD in NS in the background, output to LOG.
# `ip netns exec` execs CMD in place, so $! is CMD's own PID; it is stored
# in LAB_LAST_PID and remembered for cleanup.
lab_bg() {
	local log=$1 ns=$2
	shift 2
	ip netns exec "$ns" "$@" </dev/null >"$log" 2>&1 &
	LAB_LAST_PID=$!
	LAB_PIDS+=("$LAB_LAST_PID")
}

# lab_kill PID: TERM, bounded wait (5 s), then KILL.  Only for PIDs we
# started.  Returns 2 when the process ignored TERM and had to be killed.
lab_kill() {
	local pid=$1 rc=0
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
	if ! wait_gone "$pid" 50; then
		kill -KILL "$pid" 2>/dev/null
		rc=2
	fi
	wait "$pid" 2>/dev/null
	return "$rc"
}

# ---------------------------------------------------------------- smtp64d
# lab_smtp64d_start CONF [LOG] [ADDR PORT]: runs smtp64d -f -c CONF in the
# gateway namespace; waits for a listener on ADDR:PORT (default 0.0.0.0
# 25: the IPv4 wildcard); sets SMTP64D_PID and SMTP64D_LOG.
lab_smtp64d_start() {
	local conf=$1 log=${2:-$LAB_DIR/smtp64d.log}
	local waddr=${3:-0.0.0.0} wport=${4:-25}
	if [ ! -x "$SMTP64D" ]; then
		lab_err "$SMTP64D not built (run make)"
		return 1
	fi
	SMTP64D_LOG=$log
	ip netns exec "$NS_GW" "$SMTP64D" -f -c "$conf" </dev/null >>"$log" 2>&1 &
	SMTP64D_PID=$!
	LAB_PIDS+=("$SMTP64D_PID")
	if ! wait_port "$NS_GW" "$waddr" "$wport"; then
		lab_err "smtp64d not listening; its log:"
		tail -n 20 "$log" >&2
		return 1
	fi
	if ! kill -0 "$SMTP64D_PID" 2>/dev/null; then
		lab_err "smtp64d exited; its log:"
		tail -n 20 "$log" >&2
		return 1
	fi
	# The listener must be this very process, not a leftover.
	if ! ip netns exec "$NS_GW" ss -Hltnp 2>/dev/null |
		grep -q "pid=$SMTP64D_PID,"; then
		lab_err "port $wport in $NS_GW is not held by smtp64d ($SMTP64D_PID)"
		ip netns exec "$NS_GW" ss -Hltnp >&2
		return 1
	fi
}

# lab_smtp64d_stop: SIGTERM, bounded wait; returns 2 if it needed SIGKILL.
lab_smtp64d_stop() {
	local rc
	[ -n "$SMTP64D_PID" ] || return 0
	lab_kill "$SMTP64D_PID"
	rc=$?
	SMTP64D_PID=""
	return "$rc"
}

# lab_gw_conf FILE HELO_REWRITE [EXTRA_GATEWAY_LINES]: writes the standard
# gateway config (pairs mx6 and mx4 of the issue-3 topology).
lab_gw_conf() {
	local file=$1 mode=$2 extra=${3:-}
	{
		printf '[gateway]\n'
		printf 'fqdn = gw.example.net\n'
		printf 'listen = 0.0.0.0:25, [::]:25\n'
		printf 'helo_rewrite = %s\n' "$mode"
		[ -z "$extra" ] || printf '%s\n' "$extra"
		printf '\n[pair mx6]\nipv4 = %s\nipv6 = %s\n' "$MX6_V4" "$S6_ADDR"
		printf '\n[pair mx4]\nipv4 = %s\nipv6 = %s\n' "$S4_ADDR" "$MX4_V6"
	} >"$file"
}

# lab_scene NAME "SERVER STEPS" CLIENT STEPS...: one session with a scripted
# server (tests/lab/smtpchat.py) on $S6_ADDR:25 in s6 and a scripted client
# from c4 to $MX6_V4:25, through the gateway.  Server steps are one string,
# split on blanks on purpose (steps write a blank as \x20).  Fails, with
# both transcripts, if either end's steps did not hold.
lab_scene() {
	local name=$1 srv=$2 chat="python3 $LAB_LIB_DIR/smtpchat.py"
	local spid rc_c rc_s
	shift 2
	# shellcheck disable=SC2086
	ip netns exec "$NS_S6" $chat --timeout=6 server "$S6_ADDR" 25 $srv \
	    >"$LAB_DIR/srv-$name.out" 2>&1 &
	spid=$!
	LAB_PIDS+=("$spid")
	wait_port "$NS_S6" "$S6_ADDR" 25 || return 1
	ip netns exec "$NS_C4" $chat --timeout=8 client "$MX6_V4" 25 "$@" \
	    >"$LAB_DIR/cli-$name.out" 2>&1
	rc_c=$?
	wait "$spid"
	rc_s=$?
	if [ "$rc_c" -ne 0 ] || [ "$rc_s" -ne 0 ]; then
		echo "    client ($rc_c):"
		sed 's/^/      /' "$LAB_DIR/cli-$name.out" | tail -n 12
		echo "    server ($rc_s):"
		sed 's/^/      /' "$LAB_DIR/srv-$name.out" | tail -n 12
		return 1
	fi
}

# ---------------------------------------------------------------- postfix
# Adds/removes a config directory in alternate_config_directories of the
# default /etc/postfix/main.cf (created if absent), under a lock so that
# parallel runs do not lose each other's entries.  Entries of earlier runs
# whose directory no longer exists are pruned.
# Several folders may be given at once (one read and one write of the
# file for all of them).
lab_pf_altdir() {
	local op=$1
	shift
	(
		flock -w 10 9 || { lab_err "cannot lock $LAB_LOCK"; exit 1; }
		[ -e "$LAB_MAIN_CF" ] || : >"$LAB_MAIN_CF"
		local cur d x new=()
		cur=$(postconf -c /etc/postfix -h alternate_config_directories 2>/dev/null)
		for d in ${cur//,/ }; do
			for x in "$@"; do
				[ "$d" = "$x" ] && continue 2
			done
			case $d in /tmp/smtp64-lab.*) [ -d "$d" ] || continue ;; esac
			new+=("$d")
		done
		[ "$op" = add ] && new+=("$@")
		if [ ${#new[@]} -eq 0 ]; then
			postconf -c /etc/postfix -X alternate_config_directories
		else
			local IFS=,
			postconf -c /etc/postfix -e "alternate_config_directories = ${new[*]}"
		fi
	) 9>>"$LAB_LOCK"
}

# lab_postfix_start NAME [MYHOSTNAME] [EXTRA]: starts a private Postfix in
# this run's namespace NAME (s6 or s4, or c4 as a sender), listening on the
# MX address there (c4: the client's address)
# and delivering mail for example.org to a Maildir.  Strict HELO checks;
# only its own address is in mynetworks.  EXTRA: main.cf settings, one
# "key = value" a line, applied with postconf -e over the defaults below
# before the start (e.g. "smtpd_peername_lookup = yes"); an empty
# MYHOSTNAME keeps the default name.
lab_postfix_start() {
	local name=$1 host=${2:-mx-$1.example.org} extra=${3:-}
	local addr
	case $name in
	s6) addr=$S6_ADDR ;;
	s4) addr=$S4_ADDR ;;
	# A sending MTA on the client side (give it a relayhost in EXTRA).
	c4) addr=$C4_ADDR ;;
	*) lab_err "lab_postfix_start: unknown server $name"; return 1 ;;
	esac
	lab_postfix_at "$name" "$name" "$addr" example.org "$host" "$extra"
}

# lab_postfix_at NAME NS-SHORT ADDR DOMAIN MYHOSTNAME [EXTRA]: the same as
# lab_postfix_start for any instance: NAME names it (LAB_PF_DIR...), it
# runs in this run's namespace NS-SHORT on ADDR (its family alone) and
# delivers mail for user@DOMAIN to its Maildir.
lab_postfix_at() {
	lab_postfix_prepare "$@" && lab_postfix_run "$1"
}

# lab_postfix_prepare NAME NS-SHORT ADDR DOMAIN MYHOSTNAME [EXTRA]: the
# first half of lab_postfix_at: the instance's folders and configuration,
# listed in alternate_config_directories, not started.  Several prepared
# instances can then start at once (lab_postfix_run NAME & ... wait, or
# one by one).
lab_postfix_prepare() {
	local name=$1 short=$2 addr=$3 domain=$4 host=$5 extra=${6:-}
	local ns proto mynet top dir line
	ns=$(lab_nsname "$short")
	case $addr in
	*:*) proto=ipv6 mynet="[$addr]/128" ;;
	*) proto=ipv4 mynet="$addr/32" ;;
	esac
	# Layout: $top/etc (config_directory), $top/queue, $top/data, $top/mail.
	top=$LAB_DIR/postfix-$name
	dir=$top/etc
	mkdir -p "$dir" "$top/queue" "$top/data" "$top/mail"
	chmod 755 "$top" "$dir" "$top/queue"
	chown postfix: "$top/data"
	chown nobody:nogroup "$top/mail"
	LAB_PF_DIR[$name]=$top LAB_PF_NS[$name]=$ns LAB_PF_ADDR[$name]=$addr
	rm -f "$top/start.rc"

	cat >"$dir/helo_access" <<'EOF'
/^\[/ REJECT address literals not accepted
EOF
	cat >"$dir/main.cf" <<EOF
# Private Postfix instance of the smtp64 lab ($LAB_TAG, $name).
compatibility_level = 3.6
queue_directory = $top/queue
data_directory = $top/data
maillog_file = $top/maillog
maillog_file_prefixes = /var, /tmp, $top
myhostname = $host
mydomain = $domain
myorigin = \$myhostname
mydestination =
local_recipient_maps =
inet_interfaces = $addr
inet_protocols = $proto
mynetworks = $mynet
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
default_transport = error:outbound mail is disabled in the lab
relay_transport = error:outbound mail is disabled in the lab
virtual_mailbox_domains = $domain
virtual_mailbox_base = $top/mail
virtual_mailbox_maps = inline:{ user@$domain=$domain/user/ }
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
smtpd_helo_required = yes
smtpd_helo_restrictions = reject_invalid_helo_hostname,
    reject_non_fqdn_helo_hostname,
    check_helo_access regexp:$dir/helo_access
smtpd_banner = \$myhostname ESMTP smtp64-lab
biff = no
EOF
	# Every service runs unchrooted (no copies of /etc files needed).
	cp "$LAB_LIB_DIR/master.cf" "$dir/master.cf"
	# One postconf for all of them: each run costs a fraction of a second.
	local sets=()
	while IFS= read -r line; do
		[ -n "${line//[[:space:]]/}" ] || continue
		sets+=("$line")
	done <<<"$extra"
	if [ ${#sets[@]} -gt 0 ] && ! postconf -c "$dir" -e "${sets[@]}"; then
		lab_err "lab_postfix_at: bad main.cf settings: ${sets[*]}"
		return 1
	fi
	# LAB_PF_ALT_LATER=1: the caller lists the folder itself, with
	# others (lab_pf_altdir add DIR...), before starting the instance.
	LAB_PF_ALT+=("$dir")
	[ "${LAB_PF_ALT_LATER:-0}" = 1 ] || lab_pf_altdir add "$dir"
}

# lab_postfix_start_bg NAME: `postfix start` of a prepared instance, its
# status in $top/start.rc; for starting several at once (then wait, then
# lab_postfix_run NAME for each, which only checks).
lab_postfix_start_bg() {
	local top=${LAB_PF_DIR[$1]}
	ip netns exec "${LAB_PF_NS[$1]}" postfix -c "$top/etc" start \
	    >"$top/start.out" 2>&1
	echo $? >"$top/start.rc"
}

# lab_postfix_run NAME: starts prepared instance NAME (unless
# lab_postfix_start_bg did) and waits for its listener.
lab_postfix_run() {
	local name=$1 top ns
	top=${LAB_PF_DIR[$name]} ns=${LAB_PF_NS[$name]}
	[ -e "$top/start.rc" ] || lab_postfix_start_bg "$name"
	# Stopped by the cleanup even if the start failed half-way.
	LAB_PF+=("$name")
	if [ "$(cat "$top/start.rc")" != 0 ]; then
		lab_err "postfix start failed in $ns"
		cat "$top/start.out" >&2
		tail -n 20 "$top/maillog" >&2 2>/dev/null
		return 1
	fi
	wait_port "$ns" "${LAB_PF_ADDR[$name]}" 25 ||
		{ tail -n 20 "$top/maillog" >&2; return 1; }
}

# lab_postfix_stop NAME: stops the instance and waits for its master.
lab_postfix_stop() {
	local name=$1 top ns pid=""
	top=${LAB_PF_DIR[$name]:-}
	ns=${LAB_PF_NS[$name]:-}
	[ -n "$top" ] || return 0
	[ -r "$top/queue/pid/master.pid" ] &&
		pid=$(tr -dc 0-9 <"$top/queue/pid/master.pid")
	ip netns exec "$ns" postfix -c "$top/etc" stop >/dev/null 2>&1
	if [ -n "$pid" ] && ! wait_gone "$pid" 50; then
		# The master of this instance only (read from its own pid file).
		kill -KILL "$pid" 2>/dev/null
		wait_gone "$pid" 20
	fi
	return 0
}

# maildir_dir NAME [DOMAIN]: the Maildir of user@DOMAIN (example.org) in
# instance NAME.
maildir_dir() { printf '%s/mail/%s/user' "${LAB_PF_DIR[$1]}" "${2:-example.org}"; }

# maildir_count NAME: the number of messages delivered there.
maildir_count() {
	local d
	d=$(maildir_dir "$1" "${2:-}")
	find "$d/new" "$d/cur" -type f 2>/dev/null | wc -l
}

# maildir_find NAME PATTERN: path of the delivered message containing the
# fixed string PATTERN (empty when none).
maildir_find() {
	local d f
	d=$(maildir_dir "$1")
	f=$(grep -rlF -- "$2" "$d/new" "$d/cur" 2>/dev/null | head -n 1)
	# Fails when nothing matches, so that wait_for can poll it.
	[ -n "$f" ] && printf '%s\n' "$f"
}

# received_header FILE: the first Received header of FILE, unfolded.
received_header() {
	awk 'BEGIN{h=""} /^$/{exit} h!="" && /^[ \t]/{sub(/^[ \t]+/," ");h=h $0;next}
	     h!=""{print h; exit} /^Received:/{h=$0} END{if(h!="")print h}' "$1" |
		head -n 1
}

# ---------------------------------------------------------------- logs
# lab_dump_logs [N]: a short excerpt of every log of this run, for failures.
lab_dump_logs() {
	local n=${1:-15} name f
	for name in "${LAB_PF[@]}"; do
		f=${LAB_PF_DIR[$name]}/maillog
		[ -s "$f" ] || continue
		printf -- '--- postfix %s maillog (last %d lines)\n' "$name" "$n"
		tail -n "$n" "$f"
	done
	for f in "$LAB_DIR"/*.log; do
		[ -s "$f" ] || continue
		printf -- '--- %s (last %d lines)\n' "${f#"$LAB_DIR"/}" "$n"
		tail -n "$n" "$f"
	done
}

# ---------------------------------------------------------------- helpers
# (issue 6: NAT64 prefixes, source pairing, DNS, edge router)

# rfc6052_embed PREFIX/LEN IPV4: the IPv4-embedded IPv6 address of RFC 6052
# §2.2 (LEN 32, 40, 48, 56, 64 or 96; bits 64..71, the "u" octet, stay
# zero; the suffix is zero), printed in RFC 5952 form.  Independent of the
# daemon's own nat/rfc6052.c, so the tests do not trust what they test.
rfc6052_embed() {
	python3 - "$1" "$2" <<'PY'
import ipaddress, sys
net = ipaddress.IPv6Network(sys.argv[1])
plen = net.prefixlen
if plen not in (32, 40, 48, 56, 64, 96):
    sys.exit("rfc6052_embed: bad prefix length %d" % plen)
out = bytearray(net.network_address.packed[:plen // 8]) + bytearray(16 - plen // 8)
i = plen // 8
for b in ipaddress.IPv4Address(sys.argv[2]).packed:
    if i == 8:
        i += 1          # the u octet (bits 64..71) is always zero
    out[i] = b
    i += 1
print(ipaddress.IPv6Address(bytes(out)))
PY
}

# lab_swaks NS SERVER HELO ID OUTFILE [SWAKS-ARGS...]: one transaction from
# NS to SERVER:25 (from a@example.net to user@example.org, header
# "X-Lab-Id: ID"); returns swaks' exit status.
lab_swaks() {
	local ns=$1 server=$2 helo=$3 id=$4 out=$5
	shift 5
	ip netns exec "$ns" swaks --server "$server" --port 25 --helo "$helo" \
		--from a@example.net --to user@example.org \
		--header "X-Lab-Id: $id" --timeout 15 "$@" </dev/null >"$out" 2>&1
}

# lab_chat NS NAME HOST STEP...: tests/lab/smtpchat.py as a client from NS
# to HOST:25; the transcript goes to $LAB_DIR/chat-NAME.out.  Returns
# smtpchat's status (0: every step held).
lab_chat() {
	local ns=$1 name=$2 host=$3
	shift 3
	ip netns exec "$ns" python3 "$LAB_LIB_DIR/smtpchat.py" \
		client "$host" 25 "$@" </dev/null >"$LAB_DIR/chat-$name.out" 2>&1
}

# lab_chat_show NAME [N]: the last N (12) lines of a lab_chat transcript.
lab_chat_show() {
	sed 's/^/    | /' "$LAB_DIR/chat-$1.out" | tail -n "${2:-12}"
}

# lab_pf_mark NAME: the number of lines in instance NAME's maillog now;
# lab_pf_since NAME MARK: the lines logged after that mark.
lab_pf_mark() { wc -l <"${LAB_PF_DIR[$1]}/maillog" 2>/dev/null || echo 0; }
lab_pf_since() { tail -n "+$(($2 + 1))" "${LAB_PF_DIR[$1]}/maillog" 2>/dev/null; }

# lab_resolver SHORT NAMESERVER: every later `ip netns exec` in this run's
# namespace SHORT (Postfix, getent, ...) resolves through NAMESERVER:
# ip-netns(8) bind-mounts /etc/netns/<ns>/resolv.conf over
# /etc/resolv.conf.  The folder is removed by lab_cleanup.  Start the
# processes that must use it after this call.
lab_resolver() {
	local ns dir
	ns=$(lab_nsname "$1")
	dir=/etc/netns/$ns
	# Labs come up side by side: another may make /etc/netns between a
	# test and a mkdir, or remove it (empty) as it goes.  mkdir alone
	# says who made it; -p makes the folder whatever happened meanwhile.
	if mkdir /etc/netns 2>/dev/null; then
		LAB_NETNS_ETC+=(/etc/netns)
	fi
	mkdir -p "$dir" || return 1
	LAB_NETNS_ETC+=("$dir")
	printf 'nameserver %s\noptions timeout:1 attempts:2\n' "$2" >"$dir/resolv.conf"
}

# lab_resolve SHORT DATABASE KEY: getent DATABASE KEY inside namespace
# SHORT (so through its lab_resolver), e.g. "ahostsv4 gw.example.net" or
# "hosts 198.51.100.1" (a PTR lookup); prints the addresses or the name.
lab_resolve() {
	local ns
	ns=$(lab_nsname "$1")
	case $2 in
	hosts) ip netns exec "$ns" timeout 5 getent hosts "$3" | awk '{print $2; exit}' ;;
	*) ip netns exec "$ns" timeout 5 getent "$2" "$3" | awk '{print $1}' | sort -u ;;
	esac
}

# lab_dnsmasq_start SHORT ADDR DNSMASQ-ARGS...: an authoritative-only
# dnsmasq in this run's namespace SHORT, on ADDR port 53 (UDP and TCP),
# reading no system file and forwarding nothing; pass the records as
# arguments (--host-record=NAME,ADDR... gives A/AAAA and the PTRs;
# --local=/DOMAIN/ makes every other name there NXDOMAIN).  Queries are
# logged to $LAB_DIR/dnsmasq.log.  Sets DNSMASQ_PID.
DNSMASQ_PID=""
lab_dnsmasq_start() {
	local short=$1 addr=$2 ns log
	shift 2
	command -v dnsmasq >/dev/null 2>&1 || {
		lab_err "missing tool: dnsmasq (run tools/install-deps)"
		return 1
	}
	ns=$(lab_nsname "$short")
	log=$LAB_DIR/dnsmasq.log
	lab_bg "$log" "$ns" dnsmasq --keep-in-foreground --conf-file=/dev/null \
		--no-resolv --no-hosts --no-poll --bind-interfaces \
		--listen-address="$addr" --port=53 --log-queries --log-facility=- \
		--pid-file="$LAB_DIR/dnsmasq.pid" --cache-size=0 "$@"
	DNSMASQ_PID=$LAB_LAST_PID
	if ! wait_port "$ns" "$addr" 53; then
		lab_err "dnsmasq did not start; its log:"
		tail -n 20 "$log" >&2
		return 1
	fi
}

# ---------------------------------------------------------------- cleanup
lab_cleanup() {
	local rc=$? pid name ns i
	[ "$LAB_CLEANED" -eq 0 ] || return "$rc"
	LAB_CLEANED=1
	# Finish the cleanup even if INT/TERM arrives now (every step is bounded).
	trap '' INT TERM
	for name in "${LAB_PF[@]}"; do
		lab_postfix_stop "$name"
	done
	for ((i = ${#LAB_PIDS[@]} - 1; i >= 0; i--)); do
		pid=${LAB_PIDS[$i]}
		kill -0 "$pid" 2>/dev/null && lab_kill "$pid"
	done
	for ns in "${LAB_NS[@]}"; do
		ip netns del "$ns" 2>/dev/null
	done
	[ ${#LAB_PF_ALT[@]} -eq 0 ] || lab_pf_altdir del "${LAB_PF_ALT[@]}"
	# Newest first, so /etc/netns itself (if this run made it) comes last
	# and is removed only when empty.
	for ((i = ${#LAB_NETNS_ETC[@]} - 1; i >= 0; i--)); do
		name=${LAB_NETNS_ETC[$i]}
		case $name in
		/etc/netns) rmdir /etc/netns 2>/dev/null ;;
		/etc/netns/"$LAB_TAG"-*) rm -rf -- "$name" ;;
		esac
	done
	if [ -n "$LAB_DIR" ] && [ -d "$LAB_DIR" ]; then
		if [ -n "${LAB_KEEP:-}" ]; then
			lab_err "kept $LAB_DIR"
		else
			rm -rf "$LAB_DIR"
		fi
	fi
	return "$rc"
}

# ---------------------------------------------------------------- tls
# (issue 7: STARTTLS on both legs.)  Certificates come from
# tests/lab/mkcert.sh, in this run's temporary directory.

LAB_TLS_DIR=""        # certificates of this run (lab_tls_certs)

# lab_tls_certs: makes the run's throwaway CA, the gateway's certificate
# (gw.crt/gw.key, gw.example.net) and the Postfix servers' (mx.crt/mx.key)
# in $LAB_DIR/tls; sets LAB_TLS_DIR.
lab_tls_certs() {
	LAB_TLS_DIR=$LAB_DIR/tls
	bash "$LAB_LIB_DIR/mkcert.sh" "$LAB_TLS_DIR"
}

# lab_tls_leaf NAME CN [OU]: one more certificate NAME.crt/NAME.key from
# the run's CA (OU tells two certificates for one name apart).
lab_tls_leaf() {
	MKCERT_OU=${3:-} bash "$LAB_LIB_DIR/mkcert.sh" "$LAB_TLS_DIR" \
	    leaf "$1" "$2"
}

# lab_tls_leaf_rsa NAME CN: the same with an RSA-2048 key.
lab_tls_leaf_rsa() {
	MKCERT_KEY=rsa bash "$LAB_LIB_DIR/mkcert.sh" "$LAB_TLS_DIR" \
	    leaf "$1" "$2"
}

# lab_pf_tls_settings: the main.cf lines that make a lab Postfix offer
# STARTTLS with mx.crt (smtpd_tls_loglevel 1 logs "... TLS connection
# established from ...: TLSv1.3 with cipher ..."; the Received header
# names the protocol and cipher).
lab_pf_tls_settings() {
	cat <<EOT
smtpd_tls_security_level = may
smtpd_tls_cert_file = $LAB_TLS_DIR/mx.crt
smtpd_tls_key_file = $LAB_TLS_DIR/mx.key
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes
EOT
}

# lab_pf_reloads FILE: how many times the master in maillog FILE reloaded.
lab_pf_reloads() { grep -c 'reload -- version' "$1" 2>/dev/null || true; }
lab_pf_reloaded() { [ "$(lab_pf_reloads "$1")" -gt "$2" ]; }

# lab_postfix_tls NAME: turns STARTTLS on in the running instance NAME
# (the certificates are made first if the run has none), adds the tlsmgr
# service, reloads, and waits (10 s at most) until the master has reloaded.
lab_postfix_tls() {
	local name=$1 top dir line n
	top=${LAB_PF_DIR[$name]:-}
	[ -n "$top" ] || { lab_err "lab_postfix_tls: no instance $name"; return 1; }
	dir=$top/etc
	if [ -z "$LAB_TLS_DIR" ] || [ ! -r "$LAB_TLS_DIR/mx.crt" ]; then
		lab_tls_certs || return 1
	fi
	while IFS= read -r line; do
		postconf -c "$dir" -e "$line" || return 1
	done < <(lab_pf_tls_settings)
	grep -q '^tlsmgr' "$dir/master.cf" ||
		printf 'tlsmgr    unix  -       -       n       1000?   1       tlsmgr\n' \
		    >>"$dir/master.cf"
	n=$(lab_pf_reloads "$top/maillog")
	ip netns exec "${LAB_PF_NS[$name]}" postfix -c "$dir" reload \
	    >"$top/reload.out" 2>&1 || { cat "$top/reload.out" >&2; return 1; }
	wait_for 100 lab_pf_reloaded "$top/maillog" "$n" || {
		lab_err "postfix $name did not reload"
		return 1
	}
}

# lab_postfix_start_tls NAME [MYHOSTNAME]: lab_postfix_start, then
# lab_postfix_tls.
lab_postfix_start_tls() {
	lab_postfix_start "$1" "${2:-}" && lab_postfix_tls "$1"
}

# lab_gw_conf_tls FILE MODE [PAIR_LINES] [GATEWAY_LINES]: the standard
# gateway config (lab_gw_conf, helo_rewrite = always) with tls = MODE and
# the run's gw.crt/gw.key in [gateway]; PAIR_LINES go into [pair mx6]
# (e.g. "tls_upstream = verify").
lab_gw_conf_tls() {
	local file=$1 mode=$2 pair=${3:-} extra=${4:-}
	{
		printf '[gateway]\n'
		printf 'fqdn = gw.example.net\n'
		printf 'listen = 0.0.0.0:25, [::]:25\n'
		printf 'helo_rewrite = always\n'
		printf 'tls = %s\n' "$mode"
		printf 'tls_cert_file = %s\n' "$LAB_TLS_DIR/gw.crt"
		printf 'tls_key_file = %s\n' "$LAB_TLS_DIR/gw.key"
		[ -z "$extra" ] || printf '%s\n' "$extra"
		printf '\n[pair mx6]\nipv4 = %s\nipv6 = %s\n' "$MX6_V4" "$S6_ADDR"
		[ -z "$pair" ] || printf '%s\n' "$pair"
		printf '\n[pair mx4]\nipv4 = %s\nipv6 = %s\n' "$S4_ADDR" "$MX4_V6"
	} >"$file"
}

# lab_pf_tls_count NAME: TLS sessions the instance logged.
lab_pf_tls_count() {
	grep -c 'TLS connection established from' \
	    "${LAB_PF_DIR[$1]}/maillog" 2>/dev/null || true
}
