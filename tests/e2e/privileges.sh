#!/usr/bin/env bash
# e2e: who smtp64d runs as, read from /proc/PID/status.
#  - user = nobody, group = nogroup, started as root: after the listeners
#    open, the daemon (and each worker, a restarted one too) runs as
#    65534:65534 with no supplementary group and no capability at all
#    (every socket, a restarted worker's too, is bound before), nothing
#    inheritable, ambient or in the bounding set; mail still flows and a
#    reload still reads the file;
#  - with [packet], CAP_NET_ADMIN and CAP_NET_RAW are kept, worker 0
#    binds its NFQUEUE after the change, and a reload works; with
#    engine = bpf CAP_BPF and CAP_PERFMON too: the tc program loads after
#    the change (the verifier needs CAP_PERFMON for its packet arithmetic),
#    a reload rewrites its maps, and it translates;
#  - smtp64d -t names the account and the capabilities a file needs
#    (transparent: CAP_NET_ADMIN; [packet]: CAP_NET_ADMIN, CAP_NET_RAW);
#  - started unprivileged with ambient capabilities (as a container
#    runtime grants them), it keeps only those it needs: with
#    transparent = yes, CAP_NET_ADMIN alone;
#  - user = another account when not root: refused with a message.
set -u
. "$(dirname "$0")/../lab/lib.sh"

lab_init
lab_topology c4 gw s6 || { fail "lab topology"; lab_summary; exit 1; }
lab_postfix_start s6 || { fail "postfix on s6"; lab_summary; exit 1; }
NONE=0000000000000000
ADMIN=0000000000001000     # bit 12: CAP_NET_ADMIN
ADMIN_RAW=0000000000003000 # and bit 13: CAP_NET_RAW
ADMIN_RAW_BPF=000000c000003000 # and bits 38, 39: CAP_PERFMON, CAP_BPF
# status PID FIELD: the value(s) of FIELD in /proc/PID/status.
status() {
	awk -v f="$2:" '$1 == f {$1 = ""; sub(/^[ \t]+/, ""); sub(/[ \t]+$/, ""); print}' \
	    "/proc/$1/status"
}
# runs_as PID UID GID [CAPS]: every id is that, no groups, CAPS (default
# none) effective and permitted, none inheritable or ambient.
runs_as() {
	local want=${4:-$NONE}
	test "$(status "$1" Uid)" = "$2 $2 $2 $2" &&
	    test "$(status "$1" Gid)" = "$3 $3 $3 $3" &&
	    test -z "$(status "$1" Groups)" &&
	    test "$(status "$1" CapEff)" = "$want" &&
	    test "$(status "$1" CapPrm)" = "$want" &&
	    test "$(status "$1" CapInh)" = $NONE &&
	    test "$(status "$1" CapAmb)" = $NONE
}
show() {
	grep -E '^(Uid|Gid|Groups|Cap[A-Za-z]+):' "/proc/$1/status" | sed 's/^/    | /'
}
delivered() { test "$(maildir_count s6)" -ge "$1"; }
conf=$LAB_DIR/gw.conf

echo "# user = nobody, group = nogroup, started as root"
lab_gw_conf "$conf" always "user = nobody
group = nogroup"
chmod 644 "$conf"
lab_smtp64d_start "$conf" || { fail "smtp64d start"; lab_summary; exit 1; }
p=$SMTP64D_PID
if runs_as "$p" 65534 65534 && test "$(status "$p" CapBnd)" = $NONE; then
	pass "runs as 65534:65534, no groups, no capability, empty bounding set"
else
	fail "ids and capabilities of $p"; show "$p"
fi
check "the start line says so" \
    grep -q 'event=privileges uid=65534 gid=65534 capabilities=none' "$SMTP64D_LOG"
lab_swaks "$NS_C4" "$MX6_V4" '[IPv6:2001:db8::1]' p1 "$LAB_DIR/swaks-p1.out"
check "a message is delivered through it" wait_for 100 delivered 1
kill -HUP "$p"
check "a reload reads the file as nobody" \
    wait_for 50 grep -q 'event=reload result=ok' "$SMTP64D_LOG"
lab_smtp64d_stop

echo "# the same with workers = 2, one killed and restarted"
lab_gw_conf "$conf" always "user = nobody
group = nogroup
workers = 2"
lab_smtp64d_start "$conf" "$LAB_DIR/smtp64d-w.log" ||
	{ fail "smtp64d start (workers)"; lab_summary; exit 1; }
sup=$SMTP64D_PID
two() { test "$(pgrep -P "$sup" | wc -l)" -eq 2; }
wait_for 50 two
all_ok() {
	local k
	runs_as "$sup" 65534 65534 || return 1
	for k in $(pgrep -P "$sup"); do runs_as "$k" 65534 65534 || return 1; done
}
check "supervisor and both workers run as nobody with no capability" all_ok
victim=$(pgrep -P "$sup" | tail -n 1)
kill -KILL "$victim"
back() { two && ! pgrep -P "$sup" | grep -qx "$victim"; }
check "a killed worker comes back (on its socket, kept by the supervisor)" wait_for 50 back
check "... with the same ids and no capability" all_ok
lab_swaks "$NS_C4" "$MX6_V4" '[IPv6:2001:db8::1]' p2 "$LAB_DIR/swaks-p2.out"
check "a message is delivered through the workers" wait_for 100 delivered 2
lab_smtp64d_stop

echo "# the packet path as nobody: worker 0 binds NFQUEUE after the change"
pconf=$LAB_DIR/pkt-nobody.conf
lab_gw_conf "$pconf" always "user = nobody
group = nogroup"
printf '\n[packet]\nenable = yes\nqueue = 61\n' >>"$pconf"
chmod 644 "$pconf"
lab_smtp64d_start "$pconf" "$LAB_DIR/smtp64d-pkt.log" ||
	{ fail "smtp64d start (packet path)"; lab_summary; exit 1; }
check "the packet path started (event=packet_start queue=61)" \
    wait_for 50 grep -q 'event=packet_start queue=61' "$LAB_DIR/smtp64d-pkt.log"
if runs_as "$SMTP64D_PID" 65534 65534 $ADMIN_RAW; then
	pass "runs as nobody with CAP_NET_ADMIN and CAP_NET_RAW only"
else
	fail "ids and capabilities with [packet]"; show "$SMTP64D_PID"
fi
kill -HUP "$SMTP64D_PID"
check "a reload keeps the packet path (as nobody)" \
    wait_for 50 grep -q 'event=reload result=ok' "$LAB_DIR/smtp64d-pkt.log"
lab_smtp64d_stop

echo "# a fallback spool as nobody: made by root, given to nobody"
sconf=$LAB_DIR/spool-nobody.conf
spool=$LAB_DIR/spool-nobody
lab_gw_conf "$sconf" always "user = nobody
group = nogroup
spool_dir = $spool"
sed -i "/^\[pair mx6\]\$/a fallback_ipv4 = $S4_ADDR" "$sconf"
chmod 644 "$sconf"
lab_smtp64d_start "$sconf" "$LAB_DIR/smtp64d-spool.log" ||
	{ fail "smtp64d start (spool as nobody)"; lab_summary; exit 1; }
check "the spool directory is nobody's, mode 700 ($(stat -c '%u:%g %a' "$spool" 2>&1))" \
    test "$(stat -c '%u:%g %a' "$spool")" = "65534:65534 700"
check "the sweep ran as nobody (event=spool_sweep)" \
    grep -q "event=spool_sweep dir=$spool removed=0" "$LAB_DIR/smtp64d-spool.log"
lab_smtp64d_stop
# One that exists and is root's stays root's: refused, saying why.
rm -rf "$spool"
mkdir -m 700 "$spool"
out=$(ip netns exec "$NS_GW" "$SMTP64D" -f -c "$sconf" </dev/null 2>&1 | tail -n 1)
printf '    | %s\n' "$out"
check "a root-owned spool is refused with a message naming it" \
    bash -c "printf '%s' \"\$1\" | grep -q 'spool_dir $spool: not a directory of this user'" _ "$out"

echo "# the bpf engine as nobody: the tc program loads after the change"
bconf=$LAB_DIR/bpf-nobody.conf
lab_gw_conf "$bconf" always "user = nobody
group = nogroup"
printf '\n[packet]\nenable = yes\nqueue = 62\nengine = bpf\n' >>"$bconf"
chmod 644 "$bconf"
# bpf_fib_lookup needs forwarding on in gw (see packet_xlat.sh).
lab_sysctl "$NS_GW" net.ipv4.ip_forward=1
lab_sysctl "$NS_GW" net.ipv6.conf.all.forwarding=1
blog=$LAB_DIR/smtp64d-bpf.log
lab_smtp64d_start "$bconf" "$blog" ||
	{ fail "smtp64d start (bpf engine)"; lab_summary; exit 1; }
check "the tc program attached as nobody (event=packet_bpf result=ok)" \
    wait_for 50 grep -q 'event=packet_bpf result=ok' "$blog"
check "... and was not refused" bash -c "! grep -q 'event=packet_bpf result=refused' '$blog'" ||
	grep -E 'event=(packet_bpf|libbpf)' "$blog" | head -n 5 | sed 's/^/    | /'
if runs_as "$SMTP64D_PID" 65534 65534 $ADMIN_RAW_BPF; then
	pass "runs as nobody with CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF and CAP_PERFMON only"
else
	fail "ids and capabilities with engine = bpf"; show "$SMTP64D_PID"
fi
kill -HUP "$SMTP64D_PID"
check "a reload rewrites the maps (as nobody)" \
    wait_for 50 grep -q 'event=reload result=ok' "$blog"
check "... without refusal" bash -c "! grep -q 'result=refused' '$blog'"
# That it translates as nobody is packet_xlat_bpf's part: that suite
# runs the whole packet test with user = nobody.
lab_smtp64d_stop
lab_sysctl "$NS_GW" net.ipv4.ip_forward=0
lab_sysctl "$NS_GW" net.ipv6.conf.all.forwarding=0

echo "# smtp64d -t"
out=$("$SMTP64D" -t -c "$conf" 2>&1)
printf '    | %s\n' "$out"
check "-t names the account, no capability, the open files" \
    bash -c "printf '%s' \"\$1\" | grep -q 'runs as nobody:nogroup, capabilities none, open files 2064'" _ "$out"
{ cat "$conf"; printf '\n[packet]\nenable = yes\n'; } >"$LAB_DIR/pkt.conf"
out=$("$SMTP64D" -t -c "$LAB_DIR/pkt.conf" 2>&1)
check "-t with [packet]: CAP_NET_ADMIN and CAP_NET_RAW" \
    bash -c "printf '%s' \"\$1\" | grep -q 'capabilities cap_net_admin,cap_net_raw'" _ "$out"
{ cat "$conf"; printf '\n[packet]\nenable = yes\nengine = bpf\n'; } >"$LAB_DIR/bpf.conf"
out=$("$SMTP64D" -t -c "$LAB_DIR/bpf.conf" 2>&1)
check "-t with engine = bpf: CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF, CAP_PERFMON" \
    bash -c "printf '%s' \"\$1\" | grep -q 'capabilities cap_net_admin,cap_net_raw,cap_bpf,cap_perfmon'" _ "$out"

echo "# started unprivileged with ambient capabilities"
lab_gw_conf "$conf" always "transparent = yes"
log=$LAB_DIR/smtp64d-amb.log
ip netns exec "$NS_GW" setpriv --reuid=65534 --regid=65534 --clear-groups \
    --inh-caps=+net_bind_service,+net_admin,+net_raw \
    --ambient-caps=+net_bind_service,+net_admin,+net_raw \
    "$SMTP64D" -f -c "$conf" </dev/null >"$log" 2>&1 &
a=$!
LAB_PIDS+=("$a")
wait_port "$NS_GW" 0.0.0.0 25
if runs_as "$a" 65534 65534 $ADMIN; then
	# The bounding set stays: emptying it needs CAP_SETPCAP.
	pass "granted three ambient capabilities, keeps CAP_NET_ADMIN alone (transparent)"
else
	fail "ids and capabilities of $a"; show "$a"
fi
lab_swaks "$NS_C4" "$MX6_V4" '[IPv6:2001:db8::1]' p3 "$LAB_DIR/swaks-p3.out"
check "a message is delivered through it" wait_for 100 delivered 3
lab_kill "$a"

echo "# user = nobody, started as another user"
printf '[gateway]\nfqdn = gw.example.net\nlisten = 192.0.2.1:2525\nuser = nobody\n[pair mx6]\nipv4 = %s\nipv6 = %s\n' \
    "$MX6_V4" "$S6_ADDR" >"$conf"
ip netns exec "$NS_GW" setpriv --reuid=1 --regid=1 --clear-groups \
    "$SMTP64D" -f -c "$conf" </dev/null >"$LAB_DIR/other.out" 2>&1
rc=$?
sed 's/^/    | /' "$LAB_DIR/other.out"
check "refused (exit $rc) with a message" \
    bash -c "test $rc -eq 1 && grep -q 'user = nobody: only root can change to it' '$LAB_DIR/other.out'"

if [ "$FAIL" -gt 0 ]; then lab_dump_logs 20; fi
lab_summary
