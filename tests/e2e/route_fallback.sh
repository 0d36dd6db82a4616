#!/usr/bin/env bash
# e2e: IPv6-to-IPv4 fallback on 4.4.8 in route mode (draft-martin-smtp-
# ipv6-to-ipv4-fallback §3, issue 14).  A lab dnsmasq publishes the
# draft's DNS layout (Appendix A.3.1): each domain has single-stack MX
# hosts, an IPv6 one and an IPv4 one, both on one dual-stack server (s).
# An IPv4-only client (c4) sends through the route address 192.0.2.40;
# the gateway resolves the recipient's domain and connects over IPv6.
# Proves:
#  - a scripted server (tests/lab/fallbackmx.py) that advertises
#    IPV6-IPV4-FALLBACK: the gateway says the verb (there is an IPv4 host
#    to go to), the server answers 456 4.4.8 after the data, the gateway
#    opens the domain's IPv4 host of the same preference, replays the
#    transaction and the message (held in a spool file, gone after):
#    stored once and whole, over IPv4; the client sees one 250 and never
#    456, 4.4.8 or the keyword;
#  - a domain whose MX set has no IPv4 host: no verb, the server's
#    451 4.4.8 reaches the client as a temporary failure, nothing stored;
#    one whose IPv4 host cannot be reached: 421 4.4.8 with the IPv6
#    server's words, nothing stored;
#  - a real Postfix whose access table answers 421 4.4.8 to the gateway's
#    IPv6 address, at RCPT (the relay's refusal) and at connection time
#    (smtpd_delay_reject = no, the opener's), with the IPv4 host at the
#    next preference: the message arrives once, over IPv4, the client
#    sees one 250; log lines name server, code, phase and outcome;
#  - fallback_remember_s: the next transaction goes to the IPv4 host at
#    once; SIGUSR1 counts it all;
#  - with identity = xclient the IPv4 leg, opened like any route leg,
#    states the client's address too (Postfix's Received: names it).
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null
. "$here/../lab/lib.sh"

ROUTE4=192.0.2.40 DNS4=192.0.2.53 C4=192.0.2.10
S6=2001:db8:a::25 S4=203.0.113.25       # the server's two addresses
GW6=2001:db8:a::1 GW4=203.0.113.1       # the gateway's ends of its link
DEAD4=203.0.113.99                      # on that link, no host

lab_init
ns() { lab_nsname "$1"; }
if ! lab_route_front "$ROUTE4" "$DNS4" "$C4" s ||
	! lab_link "$NS_GW" to-s "$(ns s)" eth0 ||
	! lab_addr "$NS_GW" to-s $GW6/64 || ! lab_addr "$NS_GW" to-s $GW4/24 ||
	! lab_addr "$(ns s)" eth0 $S6/64 || ! lab_addr "$(ns s)" eth0 $S4/24; then
	fail "links and addresses"
	lab_summary
	exit 1
fi
pass "dual-stack server: $S6 and $S4"

# f.example, p.example: the draft's layout (an IPv6-only and an IPv4-only
# MX host; same preference for f, the IPv4 one next for p); n.example has
# only the IPv6 host.
if ! lab_dnsmasq_start gw "$DNS4" --local=/example/ --local-ttl=300 \
	--mx-host=f.example,mx6.f.example,10 --mx-host=f.example,mx4.f.example,10 \
	--host-record=mx6.f.example,$S6 --host-record=mx4.f.example,$S4 \
	--mx-host=p.example,mx6.p.example,10 --mx-host=p.example,mx4.p.example,20 \
	--host-record=mx6.p.example,$S6 --host-record=mx4.p.example,$S4 \
	--mx-host=n.example,mx6.n.example,10 --host-record=mx6.n.example,$S6 \
	--mx-host=u.example,mx6.u.example,10 --mx-host=u.example,mx4.u.example,10 \
	--host-record=mx6.u.example,$S6 --host-record=mx4.u.example,$DEAD4; then
	fail "dnsmasq starts"
	lab_summary
	exit 1
fi
pass "dnsmasq publishes f.example and p.example with single-stack MX hosts"

SPOOL=$LAB_DIR/spool
conf=$LAB_DIR/gw.conf
gw_conf() { # REMEMBER_S
	cat >"$conf" <<EOF
[gateway]
fqdn = gw.example.net
listen = 0.0.0.0:25
dns_servers = $DNS4
dns_timeout_ms = 1000
connect_timeout_s = 5
log_level = debug
fallback_remember_s = $1
spool_dir = $SPOOL
spool_memory_bytes = 4096

[route tunnel]
address = $ROUTE4
domains = f.example, n.example, p.example, u.example
EOF
}
gw_conf 0
lab_smtp64d_start "$conf" || { fail "smtp64d starts"; lab_summary; exit 1; }
pass "smtp64d runs with [route tunnel]"
check "start: the route's spool directory is made 0700 and swept" \
	bash -c "test \"\$(stat -c %a '$SPOOL')\" = 700 &&
	    grep -q 'event=spool_sweep dir=$SPOOL removed=0' '$SMTP64D_LOG'"

log_mark() { wc -l <"$SMTP64D_LOG"; }
log_since() { tail -n "+$(($1 + 1))" "$SMTP64D_LOG"; }
send() { # ID DOMAIN [SWAKS-ARGS]
	local id=$1 dom=$2
	shift 2
	ip netns exec "$(ns c4)" swaks --server $ROUTE4 --port 25 \
		--helo client.example.net --from a@example.net --to "user@$dom" \
		--header "X-Lab-Id: $id" --timeout 20 "$@" </dev/null \
		>"$LAB_DIR/swaks-$id.out" 2>&1
}

echo "# 1: IPV6-IPV4-FALLBACK negotiated, 456 4.4.8 after the data"
FBMX=$LAB_DIR/fbmx
lab_bg "$LAB_DIR/fbmx.log" "$(ns s)" python3 "$LAB_ROOT/tests/lab/fallbackmx.py" \
	25 "$FBMX" --idle=60
FBMX_PID=$LAB_LAST_PID
wait_port "$(ns s)" :: 25 || fail "scripted MX listens"
fbcount() { grep -lF -- "X-Lab-Id: $1" "$FBMX"/new/* 2>/dev/null | wc -l; }
body=$LAB_DIR/body.txt
python3 -c '
import sys
for i in range(3000):
    sys.stdout.write("line %05d of a message that outgrows the memory bound\n" % i)
' >"$body"
id=ext-$LAB_TAG m=$(log_mark)
send "$id" f.example --body "$body" && pass "ext: swaks succeeded" ||
	{ fail "ext: swaks succeeded"; tail -n 20 "$LAB_DIR/swaks-$id.out"; }
check "ext: the message arrives" wait_for 100 bash -c "[ \$(grep -lF -- 'X-Lab-Id: $id' '$FBMX'/new/* 2>/dev/null | wc -l) -ge 1 ]"
sleep 1
check "ext: exactly once" test "$(fbcount "$id")" -eq 1
check "ext: the route's IPv6 target first" \
	grep -q "domain=f.example dest=\[$S6\]:25 .*try=1/1" <(log_since "$m")
check "ext: the domain's IPv4 host kept for a fallback" \
	grep -q "event=route domain=f.example result=ok targets=1 ipv4_for_fallback=1" <(log_since "$m")
check "ext: the gateway said the verb over IPv6" grep -q 'family=6 event=verb' "$LAB_DIR/fbmx.log"
check "ext: the IPv6 leg refused it with 456" grep -q 'family=6 event=refused code=456' "$LAB_DIR/fbmx.log"
check "ext: stored over IPv4" grep -q 'family=4 event=stored' "$LAB_DIR/fbmx.log"
check "ext: the gateway logs the 456 (server, code, phase) and the IPv4 target" \
	grep -qE "event=fallback_448 server=\[$S6\]:25 code=456 phase=data_end reply=\"456.x204.4.8.*action=retry_ipv4 target=$S4:25" <(log_since "$m")
check "ext: the opener reopened the IPv4 host, the stream replayed" \
	grep -q "event=route_open domain=f.example dest=$S4:25 .*fallback=ipv4 action=replay" <(log_since "$m")
check "ext: ... and the outcome" \
	grep -qE "event=fallback_448_outcome server=$S4:25 phase=data_end code=250 outcome=accepted" <(log_since "$m")
check "ext: the client never saw 456, 4.4.8 or the keyword" \
	bash -c "! grep -E '^<' '$LAB_DIR/swaks-$id.out' | grep -qE '^<[^ ]* +456|4\.4\.8|IPV6-IPV4-FALLBACK'"
check "ext: the client saw one 250 for its message" \
	test "$(grep -c '^<-  250 2.0.0 queued' "$LAB_DIR/swaks-$id.out")" -eq 1
check "ext: whole (its last line is there)" \
	grep -q "line 02999 of a message" "$(grep -lF -- "X-Lab-Id: $id" "$FBMX"/new/* | head -n 1)"
check "ext: the message was held in a spool file" \
	grep -q "event=fallback_hold to=file" <(log_since "$m")
check "ext: no spool file is left" test -z "$(ls -A "$SPOOL" 2>/dev/null)"

echo "# 2: no IPv4 host in the MX set: a temporary failure, nothing stored"
id=nov4-$LAB_TAG m=$(log_mark) stored=$(grep -c 'event=stored' "$LAB_DIR/fbmx.log")
send "$id" n.example
rc=$?
check "nov4: swaks reports a failure" test "$rc" -ne 0
check "nov4: the client got a 4xx (the server's 451, never 456)" \
	grep -q '^<\*\* *451 4.4.8 ' "$LAB_DIR/swaks-$id.out"
check "nov4: no IPv4 host kept" \
	grep -q "event=route domain=n.example result=ok targets=1 ipv4_for_fallback=0" <(log_since "$m")
sleep 1
check "nov4: nothing stored" test "$(grep -c 'event=stored' "$LAB_DIR/fbmx.log")" -eq "$stored"
check "nov4: no verb said (the gateway could not follow a 456)" \
	test "$(grep -c 'event=verb' "$LAB_DIR/fbmx.log")" -eq 1
check "nov4: no fallback, and why" bash -c "! tail -n +$((m + 1)) '$SMTP64D_LOG' | grep -q 'event=fallback_448 '"

echo "# 2b: the IPv4 host cannot be reached: 421 4.4.8 with the server's words"
id=dead-$LAB_TAG m=$(log_mark) stored=$(grep -c 'event=stored' "$LAB_DIR/fbmx.log")
send "$id" u.example
rc=$?
check "dead: swaks reports a failure" test "$rc" -ne 0
check "dead: the client got 421 4.4.8 naming the IPv6 server's refusal" \
	grep -q '421 4.4.8 gw.example.net retry over IPv4 failed (.*); the IPv6 server said: 456 4.4.8' "$LAB_DIR/swaks-$id.out"
check "dead: the outcome is logged as failed" \
	grep -q "event=fallback_448_outcome server=$DEAD4:25 outcome=failed reason=connect" <(log_since "$m")
sleep 1
check "dead: nothing stored" test "$(grep -c 'event=stored' "$LAB_DIR/fbmx.log")" -eq "$stored"
lab_kill "$FBMX_PID"

echo "# 3: a real Postfix, 421 4.4.8 to the gateway's IPv6 address at RCPT"
wait_for 50 bash -c "! ip netns exec '$(ns s)' ss -Hltn | grep -q ':25 '"
DENY=$LAB_DIR/deny-v6.cidr
printf '%s/128 421 4.4.8 mail over IPv6 needs SPF or DKIM, retry over IPv4\n' \
	"$GW6" >"$DENY"
if ! lab_postfix_at srv s $S6 p.example mx.p.example "inet_protocols = all
inet_interfaces = $S6, $S4
smtpd_client_restrictions = check_client_access cidr:$DENY"; then
	fail "dual-stack Postfix starts"
	lab_dump_logs
	lab_summary
	exit 1
fi
wait_port "$(ns s)" "$S4" 25 || fail "Postfix listens on $S4"
pass "dual-stack Postfix for p.example (421 4.4.8 to $GW6)"
PFDIR=${LAB_PF_DIR[srv]}/etc
pfcount() { grep -rlF -- "X-Lab-Id: $1" "$(maildir_dir srv p.example)"/new 2>/dev/null | wc -l; }
arrived() { [ "$(pfcount "$1")" -ge 1 ]; }
id=rcpt-$LAB_TAG m=$(log_mark) p=$(lab_pf_mark srv)
send "$id" p.example && pass "rcpt: swaks succeeded" ||
	{ fail "rcpt: swaks succeeded"; tail -n 20 "$LAB_DIR/swaks-$id.out"; }
check "rcpt: the message reached the Maildir" wait_for 100 arrived "$id"
sleep 1
check "rcpt: exactly once" test "$(pfcount "$id")" -eq 1
check "rcpt: the client saw one 250 for its message" \
	test "$(grep -c '^<-  250 .*queued as' "$LAB_DIR/swaks-$id.out")" -eq 1
check "rcpt: the client never saw the 421" bash -c "! grep -qF '4.4.8' '$LAB_DIR/swaks-$id.out'"
check "rcpt: Postfix refused the IPv6 leg with 421 4.4.8" \
	grep -q "NOQUEUE: reject: RCPT from .*\[$GW6\]: 421 4.4.8" <(lab_pf_since srv "$p")
f=$(grep -rlF -- "X-Lab-Id: $id" "$(maildir_dir srv p.example)"/new 2>/dev/null | head -n 1)
check "rcpt: it came over IPv4 (Received: from [$GW4])" \
	grep -q "\[$GW4\]" <(received_header "${f:-/dev/null}")
check "rcpt: the IPv4 host is at the next preference (20)" \
	grep -q "event=route domain=p.example result=ok targets=1 ipv4_for_fallback=1" <(log_since "$m")
check "rcpt: the gateway logs the fallback (server, code, phase)" \
	grep -qE "event=fallback_448 server=\[$S6\]:25 code=421 phase=rcpt reply=\"421.x204.4.8.*action=retry_ipv4 target=$S4:25" <(log_since "$m")
check "rcpt: ... and its outcome" \
	grep -qE "event=fallback_448_outcome server=$S4:25 phase=rcpt code=250 outcome=accepted" <(log_since "$m")

echo "# 4: 421 4.4.8 at connection time (smtpd_delay_reject = no): the opener's"
postconf -c "$PFDIR" -e "smtpd_delay_reject = no"
r=$(lab_pf_reloads "${LAB_PF_DIR[srv]}/maillog")
ip netns exec "$(ns s)" postfix -c "$PFDIR" reload >/dev/null 2>&1
check "greeting: Postfix reloaded" wait_for 50 lab_pf_reloaded "${LAB_PF_DIR[srv]}/maillog" "$r"
sleep 1
id=greet-$LAB_TAG m=$(log_mark)
send "$id" p.example && pass "greeting: swaks succeeded" ||
	{ fail "greeting: swaks succeeded"; tail -n 20 "$LAB_DIR/swaks-$id.out"; }
check "greeting: the message reached the Maildir" wait_for 100 arrived "$id"
sleep 1
check "greeting: exactly once" test "$(pfcount "$id")" -eq 1
check "greeting: no 4.4.8 reached the client" bash -c "! grep -qF '4.4.8' '$LAB_DIR/swaks-$id.out'"
check "greeting: the gateway logs code=421 phase=greeting" \
	grep -qE "event=fallback_448 server=\[$S6\]:25 code=421 phase=greeting .*target=$S4:25" <(log_since "$m")
check "greeting: the IPv4 host took MAIL" \
	grep -qE "event=fallback_448_outcome server=$S4:25 phase=mail code=250 outcome=accepted" <(log_since "$m")

echo "# 5: remembered: the next transaction goes over IPv4 at once"
lab_smtp64d_stop
gw_conf 3600
lab_smtp64d_start "$conf" || { fail "smtp64d restart"; lab_summary; exit 1; }
id=mem1-$LAB_TAG
send "$id" p.example || fail "mem: first message accepted"
check "mem: first message arrives (after a fallback)" wait_for 100 arrived "$id"
id=mem2-$LAB_TAG m=$(log_mark) p=$(lab_pf_mark srv)
send "$id" p.example || fail "mem: second message accepted"
check "mem: second message arrives" wait_for 100 arrived "$id"
check "mem: the transaction went to the IPv4 host first" \
	grep -q "event=fallback_448_remembered server=\[$S6\]:25 action=ipv4_first target=$S4:25" <(log_since "$m")
check "mem: no IPv6 connection for it (Postfix's log)" \
	bash -c "! tail -n +$((p + 1)) '${LAB_PF_DIR[srv]}/maillog' | grep -q 'connect from .*\[$GW6\]'"
kill -USR1 "$SMTP64D_PID"
check "counted: SIGUSR1 logs one fallback (accepted) and one remembered" \
	wait_for 30 grep -qE 'event=stats .*fallback_448=1 fallback_448_accepted=1 fallback_448_refused=0 fallback_448_failed=0 fallback_448_remembered=1' "$SMTP64D_LOG"

echo "# 6: identity = xclient: the IPv4 leg states the client's identity too"
lab_smtp64d_stop
gw_conf 0
printf 'identity = xclient\n' >>"$conf"
lab_smtp64d_start "$conf" || { fail "smtp64d restart"; lab_summary; exit 1; }
postconf -c "$PFDIR" -e "smtpd_authorized_xclient_hosts = [$GW6]/128, $GW4/32"
r=$(lab_pf_reloads "${LAB_PF_DIR[srv]}/maillog")
ip netns exec "$(ns s)" postfix -c "$PFDIR" reload >/dev/null 2>&1
check "xclient: Postfix reloaded" wait_for 50 lab_pf_reloaded "${LAB_PF_DIR[srv]}/maillog" "$r"
sleep 1
id=xc-$LAB_TAG m=$(log_mark)
send "$id" p.example && pass "xclient: swaks succeeded" ||
	{ fail "xclient: swaks succeeded"; tail -n 20 "$LAB_DIR/swaks-$id.out"; }
check "xclient: the message reached the Maildir" wait_for 100 arrived "$id"
check "xclient: the IPv6 server refused at its greeting" \
	grep -qE "event=fallback_448 server=\[$S6\]:25 code=421 phase=greeting" <(log_since "$m")
check "xclient: XCLIENT accepted on the IPv4 leg" \
	grep -q "event=identity mode=xclient result=accepted .*dest=$S4:25" <(log_since "$m")
f=$(grep -rlF -- "X-Lab-Id: $id" "$(maildir_dir srv p.example)"/new 2>/dev/null | head -n 1)
rcv=$(received_header "${f:-/dev/null}")
echo "    $rcv"
check "xclient: Received: names the client ($C4)" grep -qF "[$C4])" <<<"$rcv"
check "xclient: Received: does not name the gateway" test -z "$(grep -F "$GW4" <<<"$rcv")"

check "daemon survived everything" kill -0 "$SMTP64D_PID"
if [ "$FAIL" -gt 0 ]; then
	lab_dump_logs 40
	tail -n 60 "$SMTP64D_LOG"
fi
lab_summary
