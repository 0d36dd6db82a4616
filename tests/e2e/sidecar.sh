#!/usr/bin/env bash
# e2e: smtp64d as a sidecar, as in a pod: one network namespace shared by
# an IPv6-only Postfix and smtp64d, which runs as a non-root user (65534)
# granted only CAP_NET_BIND_SERVICE (setpriv, as a container runtime
# grants an ambient capability), reads its configuration from a read-only
# file and logs on standard error.  Mail goes both ways:
#
#   outside (IPv4 only)                 pod
#   198.51.100.25 Postfix  <---  [2001:db8:1::25]:25 smtp64d <-- Postfix
#   192.0.2.10 client  --->  192.0.2.30:25 smtp64d --> [2001:db8::25]:25
#
# In the pod Postfix speaks IPv6 only (inet_protocols = ipv6) and relays
# outbound mail to [2001:db8:1::25], the address that stands for the
# IPv4 MTA outside.  Once listening, the daemon holds no capability.
set -u
. "$(dirname "$0")/../lab/lib.sh"

lab_init
# The pod is this lab's "s6" and the outside "s4", so that
# lab_postfix_start's instances of those names run in them.
lab_ns s6 || { fail "namespaces"; lab_summary; exit 1; }
lab_ns s4 || { fail "namespaces"; lab_summary; exit 1; }
POD=$(lab_nsname s6) OUT=$(lab_nsname s4)
lab_sysctl "$OUT" net.ipv6.conf.all.disable_ipv6=1
lab_link "$POD" eth0 "$OUT" eth0 || { fail "link"; lab_summary; exit 1; }
lab_addr "$POD" eth0 192.0.2.30/24
lab_addr "$POD" eth0 198.51.100.1/24
lab_addr "$OUT" eth0 192.0.2.10/24
lab_addr "$OUT" eth0 "$S4_ADDR/24"
# The pod's IPv6 addresses: Postfix's, and the one standing for the
# outside MTA (smtp64d listens there).
lab_addr "$POD" lo "$S6_ADDR/128"
lab_addr "$POD" lo 2001:db8:1::25/128

lab_postfix_start s4 "" "virtual_mailbox_domains = example.org, example.net
virtual_mailbox_maps = inline:{ user@example.org=example.org/user/, user@example.net=example.org/user/ }" ||
	{ fail "postfix outside"; lab_summary; exit 1; }
lab_postfix_start s6 mx.pod.example.org "relayhost = [2001:db8:1::25]
default_transport = smtp
relay_transport = smtp" || { fail "postfix in the pod"; lab_summary; exit 1; }

# The configuration: root's, read-only, in a read-only folder.
etc=$LAB_DIR/etc
mkdir -p "$etc"
cat >"$etc/smtp64.conf" <<EOF
[gateway]
fqdn = gw.pod.example.net
listen = 192.0.2.30:25, [2001:db8:1::25]:25
source_ipv6 = 2001:db8:1::25
helo_rewrite = always

[pair inbound]
ipv4 = 192.0.2.30
ipv6 = $S6_ADDR

[pair outbound]
ipv4 = $S4_ADDR
ipv6 = 2001:db8:1::25
EOF
chmod 444 "$etc/smtp64.conf"
chmod 555 "$etc"
log=$LAB_DIR/sidecar.stderr
ip netns exec "$POD" setpriv --reuid=65534 --regid=65534 --clear-groups \
    --inh-caps=-all,+net_bind_service --ambient-caps=-all,+net_bind_service \
    --bounding-set=-all,+net_bind_service \
    "$SMTP64D" -f -c "$etc/smtp64.conf" </dev/null >"$LAB_DIR/sidecar.stdout" 2>"$log" &
p=$!
LAB_PIDS+=("$p")
SMTP64D_PID=$p SMTP64D_LOG=$log
wait_port "$POD" 192.0.2.30 25 || { fail "smtp64d listening"; cat "$log"; lab_summary; exit 1; }
wait_port "$POD" 2001:db8:1::25 25
st() { awk -v f="$1:" '$1 == f {print $2}' "/proc/$p/status"; }
check "runs as 65534 (uid $(st Uid), gid $(st Gid))" \
    test "$(st Uid)" = 65534 -a "$(st Gid)" = 65534
check "granted CAP_NET_BIND_SERVICE only (bounding set $(st CapBnd))" \
    test "$(st CapBnd)" = 0000000000000400
check "holds no capability once listening (effective $(st CapEff))" \
    test "$(st CapEff)" = 0000000000000000 -a "$(st CapPrm)" = 0000000000000000
check "the configuration is read-only to it" \
    ip netns exec "$POD" setpriv --reuid=65534 --regid=65534 --clear-groups \
    bash -c "! : >>'$etc/smtp64.conf'" 2>/dev/null
check "its log lines are on standard error" \
    grep -q 'event=start version=' "$log"

echo "# inbound: the IPv4 world to the pod's IPv6-only Postfix"
lab_swaks "$OUT" 192.0.2.30 client.example.net in-1 "$LAB_DIR/swaks-in.out"
rc=$?
check "swaks to 192.0.2.30 (exit $rc)" test "$rc" -eq 0
in_ok() { test "$(maildir_count s6)" -ge 1; }
check "delivered in the pod's Maildir" wait_for 100 in_ok
check "... through smtp64d" grep -q 'event=open client=192.0.2.10:[0-9]* local=192.0.2.30:25 dest=\[2001:db8::25\]:25' "$log"

echo "# outbound: the pod's IPv6-only Postfix to the IPv4 world"
ip netns exec "$POD" swaks --server "$S6_ADDR" --port 25 \
    --helo mx.pod.example.org --from user@example.org --to user@example.net \
    --header "X-Lab-Id: out-1" --timeout 15 </dev/null >"$LAB_DIR/swaks-out.out" 2>&1
rc=$?
check "submitted to the pod's Postfix (exit $rc)" test "$rc" -eq 0
out_ok() { test "$(maildir_count s4)" -ge 1; }
if wait_for 200 out_ok; then
	pass "delivered to the IPv4-only MTA outside"
else
	fail "outbound delivery"; tail -n 8 "${LAB_PF_DIR[s6]}/maillog" | sed 's/^/    | /'
fi
check "... through smtp64d, from the pod's Postfix over IPv6" \
    grep -q 'event=open client=\[2001:db8::25\]:[0-9]* local=\[2001:db8:1::25\]:25 dest=198.51.100.25:25' "$log"
check "nothing on standard output" test ! -s "$LAB_DIR/sidecar.stdout"
lab_smtp64d_stop
check "SIGTERM: it drains and exits" grep -q 'event=drain_done' "$log"

if [ "$FAIL" -gt 0 ]; then lab_dump_logs 20; sed 's/^/    | /' "$log"; fi
lab_summary
