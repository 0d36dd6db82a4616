#!/usr/bin/env bash
# e2e: smtp64d without -f, as an init system other than systemd runs it.
#  - started with a relative -c path from another directory, it detaches
#    (daemon(3) changes to /) and a SIGHUP still reads the file: a new
#    fqdn shows in the gateway's own 554 reply;
#  - a relative certificate path in the file is refused with a message
#    that says so (there is no working directory to resolve it against);
#  - -p FILE: the PID file holds the PID of the process that serves,
#    written once the listeners are up; a second daemon with the same
#    file refuses to start and names the first; a stale file (no daemon)
#    is taken over; SIGTERM removes it; with workers, a worker that ends
#    leaves it alone;
#  - a reload that changes listen and workers keeps the running ones and
#    says so, once per reload, compared with what runs;
#  - a descriptor the starter left open (fd 7 here) is not kept.
# Without syslog in the lab, what the daemon does is observed from the
# outside: the replies it gives, ss, and the PID file.
set -u
. "$(dirname "$0")/../lab/lib.sh"

lab_init
lab_topology c4 gw || { fail "lab topology"; lab_summary; exit 1; }
# 192.0.2.1 (the gateway's own address on the c4 link) is in no pair: a
# client there gets "554 5.4.4 FQDN ...", which names the fqdn in force.
write_conf() { # write_conf FILE FQDN [EXTRA_GATEWAY_LINES]
	{
		printf '[gateway]\nfqdn = %s\nlisten = %s:25\n' "$2" "$GW_C4_ADDR"
		[ -z "${3:-}" ] || printf '%s\n' "$3"
		printf '\n[pair mx6]\nipv4 = %s\nipv6 = %s\n' "$MX6_V4" "$S6_ADDR"
	} >"$1"
}
# holder: the PIDs holding the listener in gw, one a line.
holder() {
	ip netns exec "$NS_GW" ss -Hltnp "sport = :25" |
	    grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u
}
listening() { test -n "$(holder)"; }
not_listening() { test -z "$(holder)"; }
# greets NAME FQDN: the 554 greeting at 192.0.2.1 names FQDN.
greets() {
	lab_chat "$NS_C4" "$1" "$GW_C4_ADDR" 'e:554 5.4.4' 's:QUIT\r\n' \
	    'e:221' && grep -q "554 5.4.4 $2" "$LAB_DIR/chat-$1.out"
}
# remember PID: cleanup stops it even though it is not our child.
remember() { [ -n "$1" ] && LAB_PIDS+=("$1"); }

mkdir -p "$LAB_DIR/etc" "$LAB_DIR/elsewhere" "$LAB_DIR/run"
write_conf "$LAB_DIR/etc/gw.conf" gw-a.example.net

echo "# daemon mode, relative -c, SIGHUP"
: >"$LAB_DIR/inherited.marker"
(cd "$LAB_DIR/elsewhere" &&
    ip netns exec "$NS_GW" "$SMTP64D" -c ../etc/gw.conf </dev/null \
    7<"$LAB_DIR/inherited.marker" >"$LAB_DIR/start1.out" 2>&1)
check "smtp64d -c ../etc/gw.conf detaches with exit 0" test $? -eq 0
wait_for 50 listening
d=$(holder)
remember "$d"
check "the detached daemon listens on $GW_C4_ADDR:25 (pid ${d:-none})" \
    test -n "$d"
check "... and does not keep the descriptor its starter left open" \
    bash -c "[ -d /proc/${d:-0}/fd ] && ! ls -l /proc/${d:-0}/fd | grep -q inherited.marker"
if greets before gw-a.example.net; then
	pass "before the reload: 554 5.4.4 gw-a.example.net"
else
	fail "before the reload: greeting"; lab_chat_show before
fi
write_conf "$LAB_DIR/etc/gw.conf" gw-b.example.net
kill -HUP "$d"
if wait_for 50 greets after gw-b.example.net; then
	pass "SIGHUP in daemon mode read the relative -c file: gw-b.example.net"
else
	fail "SIGHUP in daemon mode: the new fqdn is not in force"
	lab_chat_show after
fi
check "the daemon survived the reload" kill -0 "$d"
kill -TERM "$d"
check "SIGTERM stops the daemon" wait_gone "$d" 50

echo "# relative certificate paths"
write_conf "$LAB_DIR/etc/tls.conf" gw.example.net \
    "tls_cert_file = gw.crt
tls_key_file = /etc/smtp64/gw.key"
err=$(cd "$LAB_DIR/etc" && "$SMTP64D" -t -c tls.conf 2>&1)
rc=$?
printf '    | %s\n' "$err"
check "a relative tls_cert_file is refused (exit $rc)" test "$rc" -eq 1
check "... with FILE:LINE and the word relative" \
    bash -c "printf '%s' \"\$1\" | grep -q 'tls.conf:4: tls_cert_file: .*relative'" _ "$err"

echo "# PID file"
pidf=$LAB_DIR/run/smtp64d.pid
(cd "$LAB_DIR" &&
    ip netns exec "$NS_GW" "$SMTP64D" -c etc/gw.conf -p run/smtp64d.pid \
    </dev/null >"$LAB_DIR/start2.out" 2>&1)
check "smtp64d -p run/smtp64d.pid (relative) starts, exit 0" test $? -eq 0
wait_for 50 test -s "$pidf"
p=$(tr -dc 0-9 <"$pidf" 2>/dev/null)
remember "$p"
check "the PID file names the daemon ($p)" test -n "$p" -a "$p" = "$(holder)"
check "... and ends with a newline" test "$(tail -c 1 "$pidf" | od -An -c | tr -d ' ')" = '\n'
write_conf "$LAB_DIR/etc/other.conf" gw.example.net "listen = $GW_C4_ADDR:2525"
ip netns exec "$NS_GW" "$SMTP64D" -c "$LAB_DIR/etc/other.conf" -p "$pidf" \
    </dev/null >"$LAB_DIR/start3.out" 2>&1
rc=$?
sed 's/^/    | /' "$LAB_DIR/start3.out"
check "a second daemon with the same PID file refuses to start (exit $rc)" \
    test "$rc" -eq 1
check "... naming the file and the running PID" \
    grep -q "$pidf.*$p" "$LAB_DIR/start3.out"
check "... and binds nothing" bash -c \
    "! ip netns exec '$NS_GW' ss -Hltn | grep -q ':2525 '"
check "the first daemon still runs and the file still names it" \
    bash -c "kill -0 $p && test \"\$(tr -dc 0-9 <'$pidf')\" = $p"
kill -TERM "$p"
wait_gone "$p" 50
check "SIGTERM removes the PID file" test ! -e "$pidf"

printf '99999\n' >"$pidf"
ip netns exec "$NS_GW" "$SMTP64D" -c "$LAB_DIR/etc/gw.conf" -p "$pidf" \
    </dev/null >"$LAB_DIR/start4.out" 2>&1
check "a stale PID file (no daemon holds it) is taken over" test $? -eq 0
wait_for 50 listening
q=$(holder)
remember "$q"
check "... and then names the new daemon ($q)" \
    test -n "$q" -a "$(tr -dc 0-9 <"$pidf")" = "$q"
kill -TERM "$q"
wait_gone "$q" 50
wait_for 20 not_listening

ln -s "$LAB_DIR/run/target" "$LAB_DIR/run/link.pid"
ip netns exec "$NS_GW" "$SMTP64D" -c "$LAB_DIR/etc/gw.conf" \
    -p "$LAB_DIR/run/link.pid" </dev/null >"$LAB_DIR/start5.out" 2>&1
rc=$?
sed 's/^/    | /' "$LAB_DIR/start5.out"
check "a PID file that is a symbolic link is refused (exit $rc)" \
    test "$rc" -eq 1 -a ! -e "$LAB_DIR/run/target"

echo "# a reload that asks for what only a restart gives (workers = 1)"
rconf=$LAB_DIR/etc/r.conf
rlog=$LAB_DIR/r.log
write_conf "$rconf" gw.example.net
lab_bg "$rlog" "$NS_GW" "$SMTP64D" -f -c "$rconf"
r=$LAB_LAST_PID
wait_for 50 listening
# A second listen line adds to the first: 192.0.2.1 and 192.0.2.30.
write_conf "$rconf" gw.example.net "listen = $MX6_V4:25
workers = 2"
reloads() { test "$(grep -c 'event=reload result=ok' "$rlog")" -ge "$1"; }
warned() { grep -c 'event=reload needs_restart=listen,workers note=running_values_kept' "$rlog"; }
kill -HUP "$r"
wait_for 50 reloads 1
check "listen and workers changed: one warning names both" test "$(warned)" -eq 1
check "... the listeners stay as they were ($GW_C4_ADDR:25 only)" \
    test "$(ip netns exec "$NS_GW" ss -Hltn | awk '{print $4}' | sort -u)" = "$GW_C4_ADDR:25"
check "... and no worker was forked" test -z "$(pgrep -P "$r")"
kill -HUP "$r"
wait_for 50 reloads 2
check "the same file again: warned again (compared with what runs)" \
    test "$(warned)" -eq 2
write_conf "$rconf" gw.example.net
kill -HUP "$r"
wait_for 50 reloads 3
check "back to the running values: no warning" test "$(warned)" -eq 2
check "no other needs_restart line" \
    test "$(grep -c needs_restart "$rlog")" -eq 2
lab_kill "$r"
wait_for 20 not_listening

echo "# PID file with workers"
write_conf "$LAB_DIR/etc/w.conf" gw.example.net "workers = 2"
lab_bg "$LAB_DIR/w.log" "$NS_GW" "$SMTP64D" -f -c "$LAB_DIR/etc/w.conf" \
    -p "$pidf"
sup=$LAB_LAST_PID
kids() { pgrep -P "$sup" | sort; }
two() { test "$(kids | wc -l)" -eq 2 && test -s "$pidf"; }
wait_for 50 two
check "workers = 2: the PID file names the main process" \
    test "$(tr -dc 0-9 <"$pidf" 2>/dev/null)" = "$sup"
k=$(kids | head -n 1)
kill -TERM "$k"
wait_gone "$k" 50
back() { test "$(kids | wc -l)" -eq 2 && ! kids | grep -qx "$k"; }
wait_for 50 back
check "a worker that exits leaves the PID file in place" \
    test "$(tr -dc 0-9 <"$pidf" 2>/dev/null)" = "$sup"
lab_kill "$sup"
check "the main process removes it at exit" test ! -e "$pidf"

if [ "$FAIL" -gt 0 ]; then lab_dump_logs 20; fi
lab_summary
