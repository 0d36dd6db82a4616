#!/usr/bin/env bash
# e2e: the service manager's notifications (sd_notify(3)), received by a
# test listener on $NOTIFY_SOCKET, in order and from the main process:
#   READY=1 once listening (with MAINPID and STATUS=), WATCHDOG=1 when
#   WATCHDOG_USEC asks for it, STATUS= with the session count,
#   RELOADING=1 then READY=1 around SIGHUP, STOPPING=1 on SIGTERM.
# With workers = 2 only the supervisor (the main process) speaks.
set -u
. "$(dirname "$0")/../lab/lib.sh"

lab_init
lab_topology c4 gw s6 || { fail "lab topology"; lab_summary; exit 1; }
conf=$LAB_DIR/gw.conf

# listen SOCK OUT: records each datagram as "PID|TEXT" (newlines as ';').
listen() {
	python3 - "$1" "$2" <<'PY' &
import os, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.settimeout(30)
with open(sys.argv[2], "a", buffering=1) as out:
    while True:
        try:
            data, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
        except socket.timeout:
            break
        pid = 0
        for level, kind, val in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", val[:12])[0]
        out.write("%d|%s\n" % (pid, data.decode().replace("\n", ";")))
        if data.startswith(b"STOPPING=1"):
            break
PY
	listener=$!
	LAB_PIDS+=("$listener")
	wait_for 30 test -S "$1"
}
# got PATTERN: a recorded message matches (grep -E).
got() { grep -qE "$1" "$out"; }
# order: the first line numbers of each pattern, ascending.
order() {
	local prev=0 n p
	for p in "$@"; do
		n=$(grep -nE "$p" "$out" | awk -F: -v a="$prev" '$1 > a {print $1; exit}')
		[ -n "$n" ] || return 1
		prev=$n
	done
}

for w in 1 2; do
	echo "# workers = $w"
	sock=$LAB_DIR/notify-$w.sock out=$LAB_DIR/notify-$w.out
	: >"$out"
	listen "$sock" "$out"
	lab_gw_conf "$conf" always "workers = $w"
	NOTIFY_SOCKET=$sock WATCHDOG_USEC=1000000 \
	    lab_smtp64d_start "$conf" "$LAB_DIR/smtp64d-$w.log" ||
		{ fail "smtp64d start"; break; }
	p=$SMTP64D_PID
	check "READY=1 with MAINPID=$p and a STATUS=" \
	    wait_for 30 got "^$p\|READY=1;MAINPID=$p;STATUS="
	check "WATCHDOG=1 within 2 s (WATCHDOG_USEC = 1 s)" \
	    wait_for 20 got "^$p\|WATCHDOG=1$"
	check "STATUS= with the session count within 6 s" \
	    wait_for 60 got "^$p\|STATUS=.*sessions=[0-9]+"
	kill -HUP "$p"
	wait_for 30 order 'READY=1;MAINPID' 'RELOADING=1' '^[0-9]+\|READY=1'
	check "SIGHUP: RELOADING=1 (with MONOTONIC_USEC) then READY=1" \
	    order 'READY=1;MAINPID' '\|RELOADING=1;MONOTONIC_USEC=[0-9]+$' '^[0-9]+\|READY=1'
	lab_smtp64d_stop
	wait "$listener"
	check "SIGTERM: STOPPING=1, last" \
	    bash -c "tail -n 1 '$out' | grep -q '^$p|STOPPING=1'"
	check "every message came from the main process ($p)" \
	    bash -c "! grep -v '^$p|' '$out'"
	sed 's/^/    | /' "$out" | head -n 8
done

lab_summary
