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

if [ "$FAIL" -gt 0 ]; then lab_dump_logs 20; fi
lab_summary
