#!/usr/bin/env bash
# e2e: SIGTERM drains, and a restart refuses no connection.
#  - daemon A serves; a client opens a transaction and is in the middle
#    of its message data;
#  - daemon B starts on the same addresses while A runs (the listeners
#    are SO_REUSEPORT; net.ipv4.tcp_migrate_req hands connections queued
#    on a closing listener to another of its group);
#  - A gets SIGTERM: it closes its listeners at once, the open
#    transaction finishes through it (250, then the message is in the
#    Maildir), and A exits once its last session has closed;
#  - a client connecting every 25 ms throughout is never refused: each
#    gets its 220 and 221, from A or from B;
#  - drain_timeout_s ends a session that is still open with 421 4.3.2;
#  - SIGQUIT, or a second SIGTERM, stops at once.
set -u
. "$(dirname "$0")/../lab/lib.sh"
CHAT="python3 $LAB_ROOT/tests/lab/smtpchat.py"

lab_init
lab_topology c4 gw s6 || { fail "lab topology"; lab_summary; exit 1; }
lab_postfix_start s6 || { fail "postfix on s6"; lab_summary; exit 1; }
lab_sysctl "$NS_GW" net.ipv4.tcp_migrate_req=1
conf=$LAB_DIR/gw.conf
lab_gw_conf "$conf" always "drain_timeout_s = 20"
delivered() { test "$(maildir_count s6)" -ge "$1"; }
# start NAME: a daemon in gw, its PID in $started.
start() {
	ip netns exec "$NS_GW" "$SMTP64D" -f -c "$conf" </dev/null \
	    >"$LAB_DIR/$1.log" 2>&1 &
	started=$!
	LAB_PIDS+=("$started")
}
holds() { ip netns exec "$NS_GW" ss -Hltnp | grep -q "pid=$1,"; }

echo "# restart while a transaction is open"
start a
A=$started
wait_for 50 holds "$A" || { fail "daemon A listening"; lab_summary; exit 1; }
# The probe: connect, 220, QUIT, 221, every 25 ms for 9 s.
ip netns exec "$NS_C4" python3 - "$MX6_V4" >"$LAB_DIR/probe.out" 2>&1 <<'PY' &
import socket, sys, time
ok = bad = 0
end = time.monotonic() + 9
while time.monotonic() < end:
    try:
        s = socket.create_connection((sys.argv[1], 25), timeout=5)
        f = s.makefile("rb")
        if not f.readline().startswith(b"220"):
            raise OSError("no 220")
        s.sendall(b"QUIT\r\n")
        if not f.readline().startswith(b"221"):
            raise OSError("no 221")
        s.close()
        ok += 1
    except OSError as e:
        bad += 1
        print("failed:", e)
    time.sleep(0.025)
print("ok", ok, "failed", bad)
PY
probe=$!
LAB_PIDS+=("$probe")
# The transaction: its data arrives in two parts, 10 s apart (long
# enough that B's start and A's drain happen inside it on a loaded machine).
ip netns exec "$NS_C4" $CHAT --timeout=15 client "$MX6_V4" 25 'e:220' \
    's:EHLO c.example.net\r\n' 'e:250' 's:MAIL FROM:<a@example.net>\r\n' \
    'e:250' 's:RCPT TO:<user@example.org>\r\n' 'e:250' 's:DATA\r\n' \
    'e:354' 's:Subject: drain-open\r\n\r\nfirst part\r\n' 'w:10' \
    's:second part\r\n.\r\n' 'e:250' 's:QUIT\r\n' 'e:221' \
    >"$LAB_DIR/chat-open.out" 2>&1 &
open_pid=$!
LAB_PIDS+=("$open_pid")
in_data() { grep -q 'first part' "$LAB_DIR/chat-open.out"; }
wait_for 50 in_data
sleep 1
start b
B=$started
check "daemon B binds the same addresses while A runs" wait_for 50 holds "$B"
kill -TERM "$A"
check "A logs the drain" wait_for 20 grep -q 'event=drain sessions=' "$LAB_DIR/a.log"
check "A's listeners are closed at once" wait_for 10 bash -c "! ip netns exec '$NS_GW' ss -Hltnp | grep -q 'pid=$A,'"
check "A still runs while its transaction is open" kill -0 "$A"
wait "$open_pid"
rc=$?
sed 's/^/    | /' "$LAB_DIR/chat-open.out" | tail -n 4
check "the open transaction finished through A: 250, then 221 (exit $rc)" test "$rc" -eq 0
has_mail() { test -n "$(maildir_find s6 "$1")"; }
wait_for 100 has_mail drain-open
check "... and its message is in the Maildir" has_mail drain-open
check "A exits once its last session has closed" wait_gone "$A" 50
check "A said the drain was done" grep -q 'event=drain_done sessions=0' "$LAB_DIR/a.log"
wait "$probe"
sed 's/^/    | /' "$LAB_DIR/probe.out" | tail -n 3
ok=$(awk '/^ok/ {print $2}' "$LAB_DIR/probe.out")
bad=$(awk '/^ok/ {print $4}' "$LAB_DIR/probe.out")
check "the restart refused no connection ($ok answered, ${bad:-?} failed)" \
    test "${bad:-1}" -eq 0 -a "${ok:-0}" -gt 50
check "B served some of them" grep -q 'event=open' "$LAB_DIR/b.log"
lab_kill "$B"

echo "# drain_timeout_s = 2: a session still open gets 421 4.3.2"
lab_gw_conf "$conf" always "drain_timeout_s = 2"
start c
C=$started
wait_for 50 holds "$C"
ip netns exec "$NS_C4" $CHAT --timeout=10 client "$MX6_V4" 25 'e:220' \
    's:EHLO c.example.net\r\n' 'e:250' 'e:421 4.3.2' 'c' \
    >"$LAB_DIR/chat-idle.out" 2>&1 &
idle=$!
LAB_PIDS+=("$idle")
sleep 1
kill -TERM "$C"
wait "$idle"
rc=$?
sed 's/^/    | /' "$LAB_DIR/chat-idle.out" | tail -n 3
check "the idle session got 421 4.3.2 and was closed (exit $rc)" test "$rc" -eq 0
check "C exits after it" wait_gone "$C" 50
check "C logged the timeout" grep -q 'event=drain_timeout sessions=1 reply=421' "$LAB_DIR/c.log"

echo "# workers = 2: the main process passes SIGTERM on, each worker drains"
lab_gw_conf "$conf" always "workers = 2
drain_timeout_s = 20"
start w
W=$started
wait_for 50 holds "$W"
ip netns exec "$NS_C4" $CHAT --timeout=15 client "$MX6_V4" 25 'e:220' \
    's:EHLO c.example.net\r\n' 'e:250' 's:MAIL FROM:<a@example.net>\r\n' \
    'e:250' 's:RCPT TO:<user@example.org>\r\n' 'e:250' 's:DATA\r\n' \
    'e:354' 's:Subject: drain-workers\r\n\r\nfirst part\r\n' 'w:3' \
    's:second part\r\n.\r\n' 'e:250' 's:QUIT\r\n' 'e:221' \
    >"$LAB_DIR/chat-w.out" 2>&1 &
wchat=$!
LAB_PIDS+=("$wchat")
in_data_w() { grep -q 'first part' "$LAB_DIR/chat-w.out"; }
wait_for 50 in_data_w
kill -TERM "$W"
check "every listening socket of the daemon is closed at once" \
    wait_for 10 bash -c "! ip netns exec '$NS_GW' ss -Hltn | grep -q ':25 '"
wait "$wchat"
check "the open transaction finished through its worker (exit $?)" \
    grep -q '^<< .250 2.0.0 Ok: queued' "$LAB_DIR/chat-w.out"
check "... its message is in the Maildir" wait_for 100 has_mail drain-workers
check "the daemon and its workers exit" wait_gone "$W" 50

echo "# SIGQUIT and a second SIGTERM stop at once"
for how in QUIT TERM2; do
	start "d-$how"
	D=$started
	wait_for 50 holds "$D"
	ip netns exec "$NS_C4" $CHAT --timeout=10 client "$MX6_V4" 25 'e:220' \
	    'w:5' >/dev/null 2>&1 &
	LAB_PIDS+=("$!")
	sleep 0.5
	if [ "$how" = QUIT ]; then
		kill -QUIT "$D"
	else
		kill -TERM "$D"
		sleep 0.3
		kill -TERM "$D"
	fi
	check "$how: the daemon exits within 1 s, a session open" wait_gone "$D" 10
done

if [ "$FAIL" -gt 0 ]; then lab_dump_logs 20; fi
lab_summary
