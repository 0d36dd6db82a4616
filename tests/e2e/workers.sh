#!/usr/bin/env bash
# e2e: workers = 2.  Two processes accept on the same sockets, each runs its
# own sessions; the supervisor forwards SIGHUP, restarts a worker that
# dies, and stops them all on SIGTERM.  Real Postfix behind (c4 -> gw ->
# v6-only s6), every message must land.
set -u
. "$(dirname "$0")/../lab/lib.sh"

lab_init
lab_topology c4 gw s6 || { fail "lab topology"; lab_summary; exit 1; }
lab_postfix_start s6 || { fail "postfix on s6"; lab_summary; exit 1; }
conf=$LAB_DIR/gw.conf
lab_gw_conf "$conf" always "workers = 2"
lab_smtp64d_start "$conf" || { fail "smtp64d start"; lab_summary; exit 1; }

workers() { pgrep -P "$SMTP64D_PID" | sort; }
count_workers() { workers | wc -l; }
check "two worker processes under the supervisor" test "$(count_workers)" -eq 2

send() { # send N TAG: N sessions at once, one message each
	local i pids=()
	for ((i = 1; i <= $1; i++)); do
		ip netns exec "$NS_C4" swaks --server "$MX6_V4" \
		    --helo '[IPv6:2001:db8::1]' --from a@example.net \
		    --to user@example.org --header "Subject: workers-$2-$i" \
		    --timeout 10 >"$LAB_DIR/swaks-$2-$i.out" 2>&1 &
		pids+=($!)
	done
	# Only these: a bare wait would also wait for smtp64d.
	wait "${pids[@]}"
}
# SO_REUSEPORT hashes each connection to one worker's socket: with 16
# sessions, both workers serve some (all 16 on one: odds 2^-15).
send 16 a
delivered() { test "$(maildir_count s6)" -ge "$1"; }
wait_for 100 delivered 16
check "16 sessions through two workers: 16 messages in the Maildir" \
    test "$(maildir_count s6)" -eq 16
check "session ids of both workers in the log (00xxxxxx and 01xxxxxx)" \
    bash -c "grep -q 'session=00[0-9a-f]* event=open' '$SMTP64D_LOG' &&
	grep -q 'session=01[0-9a-f]* event=open' '$SMTP64D_LOG'"

kill -HUP "$SMTP64D_PID"
reloaded() { test "$(grep -c 'event=reload result=ok' "$SMTP64D_LOG")" -ge 2; }
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
# Worker 1 listens on sockets of its own (SO_REUSEPORT); worker 0 on the
# main process's, so its lines name the main process too.
own_worker() {
	local p
	for p in $(workers); do
		ip netns exec "$NS_GW" ss -Hltnp | grep "pid=$p," |
		    grep -qv "pid=$sup," && { echo "$p"; return 0; }
	done
	return 1
}
both_listening() { test "$(held_by)" = "$want" && own_worker; }
wait_for 50 both_listening
check "two listeners, in the main process and both workers" \
    test "$(held_by)" = "$want"
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
