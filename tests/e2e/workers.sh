#!/usr/bin/env bash
# e2e: workers = 2.  Two processes accept on the same sockets, each runs its
# own sessions; the supervisor forwards SIGHUP, restarts a worker that
# dies, and stops them all on SIGTERM.  Real Postfix behind (c4 -> gw ->
# v6-only s6), every message must land.  The kernel steers each client
# address to one worker (SO_ATTACH_REUSEPORT_CBPF), so
# max_sessions_per_client holds for the daemon, and a routing loop to the
# gateway's own listener is refused before any connection.
set -u
. "$(dirname "$0")/../lab/lib.sh"

lab_init
lab_topology c4 gw s6 || { fail "lab topology"; lab_summary; exit 1; }
lab_postfix_start s6 || { fail "postfix on s6"; lab_summary; exit 1; }
# A second client address, and a pair whose both ends are the gateway's
# own (a routing loop, as in refuse_reload.sh).
C4_ADDR2=192.0.2.11
lab_addr "$NS_C4" eth0 "$C4_ADDR2/24"
lab_addr "$NS_GW" to-c4 192.0.2.41/24
lab_addr "$NS_GW" to-s6 2001:db8::41/64
conf=$LAB_DIR/gw.conf
write_conf() { # write_conf [EXTRA_GATEWAY_LINES]
	lab_gw_conf "$conf" always "workers = 2${1:+
$1}"
	printf '\n[pair loop]\nipv4 = 192.0.2.41\nipv6 = 2001:db8::41\n' >>"$conf"
}
write_conf
lab_smtp64d_start "$conf" || { fail "smtp64d start"; lab_summary; exit 1; }

workers() { pgrep -P "$SMTP64D_PID" | sort; }
count_workers() { workers | wc -l; }
check "two worker processes under the supervisor" test "$(count_workers)" -eq 2

send() { # send N TAG [SWAKS-ARGS]: N sessions at once, one message each
	local i pids=() n=$1 tag=$2
	shift 2
	for ((i = 1; i <= n; i++)); do
		ip netns exec "$NS_C4" swaks --server "$MX6_V4" \
		    --helo '[IPv6:2001:db8::1]' --from a@example.net \
		    --to user@example.org --header "Subject: workers-$tag-$i" \
		    --timeout 10 "$@" >"$LAB_DIR/swaks-$tag-$i.out" 2>&1 &
		pids+=($!)
	done
	# Only these: a bare wait would also wait for smtp64d.
	wait "${pids[@]}"
}
# A classic BPF program on the SO_REUSEPORT group picks the worker from
# the client's address (the IPv4 source modulo 2): 192.0.2.10 always
# meets worker 0, 192.0.2.11 worker 1.
send 8 a
send 8 a2 --local-interface "$C4_ADDR2"
delivered() { test "$(maildir_count s6)" -ge "$1"; }
wait_for 100 delivered 16
check "16 sessions through two workers: 16 messages in the Maildir" \
    test "$(maildir_count s6)" -eq 16
# worker_of CLIENT: the worker numbers (top byte of the session id) that
# opened sessions of CLIENT, one a line.
worker_of() {
	grep -o "session=[0-9a-f]\{2\}[0-9a-f]* event=open client=$1:" \
	    "$SMTP64D_LOG" | cut -c9-10 | sort -u
}
check "all 8 sessions of $C4_ADDR on one worker (00)" \
    test "$(worker_of "$C4_ADDR")" = 00
check "all 8 sessions of $C4_ADDR2 on the other worker (01)" \
    test "$(worker_of "$C4_ADDR2")" = 01

# hold N: opens N connections from $C4_ADDR at once, holds them, and
# prints each one's first reply code on a line.
hold() {
	ip netns exec "$NS_C4" python3 - "$MX6_V4" "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[2])):
    s = socket.create_connection((sys.argv[1], 25), timeout=5)
    socks.append(s)
for s in socks:
    try:
        print(s.recv(512)[:3].decode())
    except OSError:
        print("none")
for s in socks:
    s.close()
PY
}
if lab_chat "$NS_C4" loop 192.0.2.41 'e:554 5.4.6' 's:QUIT\r\n' 'c'; then
	pass "routing loop caught with workers = 2: 554 5.4.6"
else
	fail "routing loop with workers = 2"; lab_chat_show loop
fi
# The destination is the gateway's own listener: refused before any
# connection is made, so no session comes back from the gateway's IPv6
# side, whichever worker it would reach.
check "... before connecting: no session opened from the gateway's IPv6 side" \
    bash -c "grep -q 'event=refuse client=$C4_ADDR:[0-9]* local=192.0.2.41:25 reason=loop reply=554' '$SMTP64D_LOG' &&
	! grep -q 'event=open client=\[2001:db8::' '$SMTP64D_LOG' &&
	test \"\$(grep -c 'event=refuse .*reason=loop' '$SMTP64D_LOG')\" -eq 1"

kill -HUP "$SMTP64D_PID"
reloaded_n() { test "$(grep -c 'event=reload result=ok' "$SMTP64D_LOG")" -ge "$1"; }
reloaded() { reloaded_n 2; }
if wait_for 50 reloaded; then
	pass "SIGHUP forwarded: both workers reloaded"
else
	fail "SIGHUP: want two reload lines"
fi

victim=$(workers | head -n 1)
kill -KILL "$victim"
restarted() {
	test "$(count_workers)" -eq 2 && ! workers | grep -qx "$victim"
}
if wait_for 50 restarted; then
	pass "a killed worker is restarted by the supervisor"
else
	fail "worker not restarted"
fi
check "the restart is logged" grep -q 'event=worker_exit' "$SMTP64D_LOG"
send 4 b
wait_for 100 delivered 20
check "4 more messages after the restart: 20 in the Maildir" \
    test "$(maildir_count s6)" -eq 20

# Without steering each worker would count its own share of the client's
# sessions, and 6 could pass a limit of 3.
write_conf "max_sessions_per_client = 3"
kill -HUP "$SMTP64D_PID"
wait_for 50 reloaded_n 4
codes=$(hold 6 | sort | uniq -c | awk '{print $2 "x" $1}' | tr '\n' ' ')
check "max_sessions_per_client = 3 holds across both workers: 3 x 220, 3 x 421 (got $codes)" \
    test "$codes" = "220x3 421x3 "

kids=$(workers)
lab_smtp64d_stop
rc=$?
check "SIGTERM stops the supervisor without SIGKILL" test "$rc" -eq 0
gone() { for p in $kids; do kill -0 "$p" 2>/dev/null && return 1; done; return 0; }
check "no worker outlives the supervisor" wait_for 50 gone

# A worker restarted after a reload binds what the daemon runs: the
# listeners opened at start, not the reloaded file's list (which only a
# restart applies) and never the defaults.  Listen on two addresses,
# shrink the list to one (and ask for 3 workers), SIGHUP, then kill -9
# worker 1: its successor must hold both listeners again and no
# wildcard may appear.
echo "# reload that shrinks listen, then a worker restart"
conf2=$LAB_DIR/gw2.conf
log2=$LAB_DIR/smtp64d-2.log
write2() { # write2 LISTEN WORKERS
	printf '[gateway]\nfqdn = gw.example.net\nlisten = %s\n' "$1" >"$conf2"
	printf 'workers = %s\nhelo_rewrite = always\n' "$2" >>"$conf2"
	printf '\n[pair mx6]\nipv4 = %s\nipv6 = %s\n' "$MX6_V4" "$S6_ADDR" \
	    >>"$conf2"
}
write2 "$GW_C4_ADDR:25, $MX6_V4:25" 2
lab_smtp64d_start "$conf2" "$log2" "$MX6_V4" 25 ||
	{ fail "smtp64d start (two listeners)"; lab_summary; exit 1; }
sup=$SMTP64D_PID
want="$GW_C4_ADDR:25 $MX6_V4:25"
# held_by [PID]: the sorted addresses listening in gw (held by PID).
held_by() {
	ip netns exec "$NS_GW" ss -Hltnp |
	    { if [ -n "${1:-}" ]; then grep "pid=$1,"; else cat; fi; } |
	    awk '{print $4}' | sort -u | tr '\n' ' ' | sed 's/ $//'
}
# Worker 1 listens on sockets of its own (SO_REUSEPORT), which the main
# process opened at start and keeps for a restart; worker 0 on the main
# process's listeners.  own_worker: worker 1's PID (its last start line),
# once it holds sockets that worker 0 does not.
own_worker() {
	local p w0
	p=$(grep -o 'event=start .* worker=1 pid=[0-9]*' "$log2" | tail -n 1 |
	    sed 's/.*pid=//')
	w0=$(grep -o 'event=start .* worker=0 pid=[0-9]*' "$log2" | tail -n 1 |
	    sed 's/.*pid=//')
	[ -n "$p" ] && kill -0 "$p" 2>/dev/null || return 1
	ip netns exec "$NS_GW" ss -Hltnp | grep "pid=$p," |
	    grep -qv "pid=$w0," && echo "$p"
}
both_listening() { test "$(held_by)" = "$want" && own_worker; }
wait_for 50 both_listening
check "two listeners, in the main process and both workers" \
    test "$(held_by)" = "$want"
check "two sockets in each SO_REUSEPORT group, one a worker" \
    test "$(ip netns exec "$NS_GW" ss -Hltn | wc -l)" -eq 4
w1=$(own_worker)
check "worker 1 has its own sockets on both addresses" \
    test -n "$w1" -a "$(held_by "$w1")" = "$want"
check "the start and listen lines name the worker (worker=1 pid=$w1)" \
    bash -c "grep -q 'worker=1 pid=$w1 .*event=start\|event=start.* worker=1 pid=$w1' '$log2' &&
	grep -q 'event=listen.* worker=1' '$log2'"

write2 "$MX6_V4:25" 3
kill -HUP "$sup"
two_reloads() { test "$(grep -c 'event=reload result=ok' "$log2")" -ge 2; }
check "SIGHUP with a shorter listen list: both workers reloaded" \
    wait_for 50 two_reloads
check "the reload says listen and workers need a restart, once" \
    test "$(grep -c 'event=reload .*needs_restart=listen,workers' "$log2")" -eq 1
check "still two workers after asking for three" test "$(count_workers)" -eq 2

kill -KILL "$w1"
w1_back() {
	test "$(count_workers)" -eq 2 && ! workers | grep -qx "$w1" &&
	    test -n "$(own_worker)" && test "$(held_by "$(own_worker)")" = "$want"
}
wait_for 50 w1_back
nw1=$(own_worker)
ip netns exec "$NS_GW" ss -Hltnp | sed 's/^/    | /'
check "worker 1 restarted (pid $w1 -> ${nw1:-none})" \
    test -n "$nw1" -a "$nw1" != "$w1"
check "the restarted worker holds exactly the running listeners ($want)" \
    test "$(held_by "$nw1")" = "$want"
check "exactly the running listeners exist in gw, no [::]:25, no 0.0.0.0:25" \
    test "$(held_by)" = "$want"
send 1 c
wait_for 100 delivered 21
check "a message through the restarted daemon: 21 in the Maildir" \
    test "$(maildir_count s6)" -eq 21
lab_smtp64d_stop
check "SIGTERM stops the second supervisor" test $? -eq 0

if [ "$FAIL" -gt 0 ]; then lab_dump_logs 20; fi
lab_summary
