#!/usr/bin/env bash
# e2e: IPv6-to-IPv4 fallback on 4.4.8 (draft-martin-smtp-ipv6-to-ipv4-
# fallback §3).  The MX on s6 is dual-stack: the gateway reaches it over
# IPv6 (2001:db8::25, the pair's partner) and over IPv4 (203.0.113.25, a
# link of its own, the pair's fallback_ipv4).  An IPv4-only client on c4
# sends through the gateway with swaks.  Proves:
#  - a real Postfix whose access table answers "421 4.4.8" to the
#    gateway's IPv6 address (at RCPT: smtpd_client_restrictions under the
#    default smtpd_delay_reject) gets the message once, over IPv4, and the
#    client sees one 250; a real Postfix as the client (it pipelines MAIL,
#    RCPT, DATA) logs status=sent without a deferral;
#  - the same with the 421 at connection time (smtpd_delay_reject = no):
#    the client's greeting is the IPv4 leg's;
#  - the same with "451 4.4.8" after the end of data
#    (smtpd_end_of_data_restrictions), for a message large enough to be
#    held in a spool file; the file leaves no trace;
#  - without fallback_ipv4 the client gets the server's 4xx and nothing
#    is delivered; with an IPv4 address that cannot be reached, a 421
#    4.4.8 that carries the IPv6 server's words;
#  - a server that demanded IPv4 is remembered: the next session goes over
#    IPv4 at once; SIGUSR1 counts it all;
#  - a scripted server that advertises IPV6-IPV4-FALLBACK gets the verb
#    and answers 456 4.4.8 after DATA: the retry happens, the message
#    arrives once, and the client never sees 456 nor the keyword;
#  - at start the spool directory is made 0700 and a crash's leftover is
#    swept (a link named like one stays).
set -u
. "$(dirname "$0")/../lab/lib.sh"

S6_V4=203.0.113.25 GW_S6_V4=203.0.113.1

lab_init
lab_topology c4 gw s6 || { fail "lab topology"; lab_summary; exit 1; }
# The server's second family: an IPv4 link of its own to the gateway.
if ! lab_link "$NS_GW" to-s6v4 "$NS_S6" eth1 ||
	! lab_addr "$NS_GW" to-s6v4 "$GW_S6_V4/24" ||
	! lab_addr "$NS_S6" eth1 "$S6_V4/24"; then
	fail "dual-stack server link"; lab_summary; exit 1
fi
pass "dual-stack server: $S6_ADDR and $S6_V4"

DENY=$LAB_DIR/deny-v6.cidr
printf '%s/128 421 4.4.8 mail over IPv6 needs SPF or DKIM, retry over IPv4\n' \
    "$GW_S6_ADDR" >"$DENY"
DENY_EOD=$LAB_DIR/deny-v6-eod.cidr
printf '%s/128 451 4.4.8 message over IPv6 fails SPF and DKIM, retry over IPv4\n' \
    "$GW_S6_ADDR" >"$DENY_EOD"
if ! lab_postfix_start s6 mx.example.org "inet_protocols = all
inet_interfaces = $S6_ADDR, $S6_V4
smtpd_client_restrictions = check_client_access cidr:$DENY"; then
	fail "dual-stack Postfix starts on s6"; lab_dump_logs; lab_summary; exit 1
fi
wait_port "$NS_S6" "$S6_V4" 25 || fail "Postfix listens on $S6_V4"
pass "dual-stack Postfix starts on s6 (421 4.4.8 to $GW_S6_ADDR)"
PFDIR=${LAB_PF_DIR[s6]}/etc

SPOOL=$LAB_DIR/spool
# gw_conf FILE FALLBACK(yes|no|ADDRESS) REMEMBER_S [EXTRA]
gw_conf() {
	{
		printf '[gateway]\nfqdn = gw.example.net\n'
		printf 'listen = 0.0.0.0:25\nlog_level = debug\n'
		printf 'fallback_remember_s = %s\nspool_dir = %s\n' "$3" "$SPOOL"
		printf 'spool_memory_bytes = 4096\n'
		[ -z "${4:-}" ] || printf '%s\n' "$4"
		printf '\n[pair mx6]\nipv4 = %s\nipv6 = %s\n' "$MX6_V4" "$S6_ADDR"
		case $2 in
		no) ;;
		yes) printf 'fallback_ipv4 = %s\n' "$S6_V4" ;;
		*) printf 'fallback_ipv4 = %s\n' "$2" ;;
		esac
	} >"$1"
}
conf=$LAB_DIR/gw.conf

# A crash's leftover, and a link that only looks like one.
mkdir -p "$SPOOL" && chmod 700 "$SPOOL"
echo leftover >"$SPOOL/smtp64-4242-1.spool"
ln -s /etc/passwd "$SPOOL/smtp64-4242-2.spool"
gw_conf "$conf" yes 0
lab_smtp64d_start "$conf" || { fail "smtp64d start"; lab_summary; exit 1; }
check "start: the leftover spool file is swept" test ! -e "$SPOOL/smtp64-4242-1.spool"
check "start: a link named like one stays (never followed)" test -L "$SPOOL/smtp64-4242-2.spool"
check "start: the sweep is logged" grep -q "event=spool_sweep dir=$SPOOL removed=1" "$SMTP64D_LOG"
check "start: the spool directory is 0700" test "$(stat -c %a "$SPOOL")" = 700
rm -f "$SPOOL/smtp64-4242-2.spool"

log_mark() { wc -l <"$SMTP64D_LOG"; }
log_since() { tail -n "+$(($1 + 1))" "$SMTP64D_LOG"; }
# send ID [SWAKS-ARGS]: one message from c4 through the gateway.
send() {
	local id=$1
	shift
	lab_swaks "$NS_C4" "$MX6_V4" client.example.net "$id" \
	    "$LAB_DIR/swaks-$id.out" "$@"
}
pfcount() { grep -rlF -- "X-Lab-Id: $1" "$(maildir_dir s6)"/new 2>/dev/null | wc -l; }
arrived() { [ "$(pfcount "$1")" -ge 1 ]; }
# finals_250 ID: the 250 replies swaks saw to the end of data.
data_250() { grep -c '^<-  250 .*queued as' "$LAB_DIR/swaks-$1.out"; }

echo "# 1: 421 4.4.8 at RCPT over IPv6, accepted over IPv4"
id=rcpt-$LAB_TAG m=$(log_mark) p=$(lab_pf_mark s6)
send "$id" && pass "rcpt: swaks succeeded" || { fail "rcpt: swaks succeeded"; tail -n 20 "$LAB_DIR/swaks-$id.out"; }
check "rcpt: the message reached the Maildir" wait_for 100 arrived "$id"
sleep 1
check "rcpt: exactly once" test "$(pfcount "$id")" -eq 1
check "rcpt: the client saw one 250 for its message" test "$(data_250 "$id")" -eq 1
check "rcpt: the client never saw the 421" bash -c "! grep -qF '4.4.8' '$LAB_DIR/swaks-$id.out'"
check "rcpt: Postfix refused the IPv6 leg with 421 4.4.8" \
    grep -q "NOQUEUE: reject: RCPT from .*\[$GW_S6_ADDR\]: 421 4.4.8" <(lab_pf_since s6 "$p")
check "rcpt: it came over IPv4 (Received: from [$GW_S6_V4])" \
    grep -q "($GW_S6_V4\]\|\[$GW_S6_V4\])" <(received_header "$(maildir_find s6 "$id")")
check "rcpt: the gateway logs the fallback (server, code, phase)" \
    grep -qE "event=fallback_448 server=\[$S6_ADDR\]:25 code=421 phase=rcpt reply=\"421.x204.4.8.x20.*\" action=retry_ipv4 target=$S6_V4:25" <(log_since "$m")
check "rcpt: ... and its outcome" \
    grep -qE "event=fallback_448_outcome server=$S6_V4:25 phase=rcpt code=250 outcome=accepted" <(log_since "$m")

echo "# 1c: the same with a real Postfix as the client (it pipelines)"
if lab_postfix_start c4 mta.example.net "relayhost = [$MX6_V4]:25
default_transport = smtp
relay_transport = smtp
virtual_mailbox_domains =
virtual_mailbox_maps ="; then
	SENDLOG=${LAB_PF_DIR[c4]}/maillog
	id=pf-$LAB_TAG m=$(log_mark) p=$(wc -l <"$SENDLOG")
	ip netns exec "$NS_C4" swaks --server "$C4_ADDR" --port 25 \
	    --helo mta.example.net --from a@example.net --to user@example.org \
	    --header "X-Lab-Id: $id" --timeout 15 </dev/null >"$LAB_DIR/swaks-$id.out" 2>&1 ||
		fail "postfix client: the sending Postfix took the message"
	check "postfix client: the message reached the Maildir" wait_for 150 arrived "$id"
	sleep 1
	check "postfix client: exactly once" test "$(pfcount "$id")" -eq 1
	check "postfix client: the sender logs status=sent, with no deferral" \
	    bash -c "tail -n +$((p + 1)) '$SENDLOG' | grep -q 'status=sent' &&
	        ! tail -n +$((p + 1)) '$SENDLOG' | grep -q 'status=deferred'"
	check "postfix client: the gateway followed the refusal" \
	    grep -q "event=fallback_448 server=\[$S6_ADDR\]:25 code=421 phase=rcpt" <(log_since "$m")
	lab_postfix_stop c4
else
	fail "sending Postfix starts on c4"
fi

echo "# 1b: 421 4.4.8 at connection time (smtpd_delay_reject = no)"
postconf -c "$PFDIR" -e "smtpd_delay_reject = no"
r=$(lab_pf_reloads "${LAB_PF_DIR[s6]}/maillog")
ip netns exec "$NS_S6" postfix -c "$PFDIR" reload >/dev/null 2>&1
check "greeting: Postfix reloaded" wait_for 50 lab_pf_reloaded "${LAB_PF_DIR[s6]}/maillog" "$r"
sleep 1
id=greet-$LAB_TAG m=$(log_mark) p=$(lab_pf_mark s6)
send "$id" && pass "greeting: swaks succeeded" || { fail "greeting: swaks succeeded"; tail -n 20 "$LAB_DIR/swaks-$id.out"; }
check "greeting: the message reached the Maildir" wait_for 100 arrived "$id"
sleep 1
check "greeting: exactly once" test "$(pfcount "$id")" -eq 1
check "greeting: the client's greeting is the IPv4 leg's 220, no 4.4.8" \
    bash -c "grep -q '^<-  220 ' '$LAB_DIR/swaks-$id.out' && ! grep -qF '4.4.8' '$LAB_DIR/swaks-$id.out'"
check "greeting: the gateway logs code=421 phase=greeting" \
    grep -qE "event=fallback_448 server=\[$S6_ADDR\]:25 code=421 phase=greeting" <(log_since "$m")
postconf -c "$PFDIR" -e "smtpd_delay_reject = yes"

echo "# 2: 451 4.4.8 after the end of data, a message held in a file"
postconf -c "$PFDIR" -e "smtpd_client_restrictions =" \
    "smtpd_end_of_data_restrictions = check_client_access cidr:$DENY_EOD"
r=$(lab_pf_reloads "${LAB_PF_DIR[s6]}/maillog")
ip netns exec "$NS_S6" postfix -c "$PFDIR" reload >/dev/null 2>&1
check "eod: Postfix reloaded" wait_for 50 lab_pf_reloaded "${LAB_PF_DIR[s6]}/maillog" "$r"
sleep 1
body=$LAB_DIR/body.txt
python3 -c '
import sys
for i in range(3000):
    sys.stdout.write("line %05d of a message that outgrows the memory bound\n" % i)
' >"$body"
id=eod-$LAB_TAG m=$(log_mark) p=$(lab_pf_mark s6)
send "$id" --body "$body" && pass "eod: swaks succeeded" || { fail "eod: swaks succeeded"; tail -n 20 "$LAB_DIR/swaks-$id.out"; }
check "eod: the message reached the Maildir" wait_for 100 arrived "$id"
sleep 1
check "eod: exactly once" test "$(pfcount "$id")" -eq 1
check "eod: whole (its last line is there)" \
    grep -q "line 02999 of a message" "$(maildir_find s6 "$id")"
check "eod: the client saw one 250 for its message" test "$(data_250 "$id")" -eq 1
check "eod: Postfix refused the IPv6 copy after its data (451 4.4.8)" \
    grep -qE "reject: END-OF-MESSAGE from .*\[$GW_S6_ADDR\]: 451 4.4.8" <(lab_pf_since s6 "$p")
check "eod: the gateway logs phase=data_end" \
    grep -qE "event=fallback_448 server=\[$S6_ADDR\]:25 code=451 phase=data_end reply=\"451.x204.4.8" <(log_since "$m")
check "eod: the message was held in a spool file" \
    grep -q "event=fallback_hold to=file" <(log_since "$m")
check "eod: no spool file is left" test -z "$(ls -A "$SPOOL")"

echo "# 3: no IPv4 address: the client gets the 4xx, nothing is delivered"
lab_smtp64d_stop
gw_conf "$conf" no 0
lab_smtp64d_start "$conf" || { fail "smtp64d restart"; lab_summary; exit 1; }
id=nov4-$LAB_TAG m=$(log_mark)
send "$id"
rc=$?
check "nov4: swaks reports a temporary failure" test "$rc" -ne 0
check "nov4: the client saw the server's 451 4.4.8 with its text" \
    grep -q '^<\*\{0,1\}[*]*  *451 4.4.8 .*retry over IPv4\|451 4.4.8 .*message over IPv6 fails SPF' "$LAB_DIR/swaks-$id.out"
sleep 2
check "nov4: nothing delivered" test "$(pfcount "$id")" -eq 0
check "nov4: no fallback logged" bash -c "! grep -q event=fallback_448 <(tail -n +$((m + 1)) '$SMTP64D_LOG')"

echo "# 3b: the IPv4 leg cannot be opened: a 4xx with the server's words"
# By reload, with a spool directory new to the daemon: made and swept.
m=$(log_mark)
SPOOL=$LAB_DIR/spool2
gw_conf "$conf" 203.0.113.99 0 "connect_timeout_s = 5"
kill -HUP "$SMTP64D_PID"
check "reload: ok" wait_for 50 bash -c "tail -n +$((m + 1)) '$SMTP64D_LOG' | grep -q 'event=reload result=ok'"
check "reload: the new spool directory is made 0700 and swept" \
    bash -c "test \"\$(stat -c %a '$SPOOL')\" = 700 &&
        grep -q 'event=spool_sweep dir=$SPOOL removed=0' '$SMTP64D_LOG'"
id=noconn-$LAB_TAG m=$(log_mark)
send "$id"
rc=$?
check "noconn: swaks reports a temporary failure" test "$rc" -ne 0
check "noconn: the client got 421 4.4.8 naming the IPv6 server's refusal" \
    grep -q '421 4.4.8 gw.example.net retry over IPv4 failed (.*); the IPv6 server said: 451 4.4.8' "$LAB_DIR/swaks-$id.out"
check "noconn: the outcome is logged as failed" \
    grep -q "event=fallback_448_outcome server=203.0.113.99:25 outcome=failed reason=connect" <(log_since "$m")
sleep 1
check "noconn: nothing delivered" test "$(pfcount "$id")" -eq 0

echo "# 4: remembered: the next session goes over IPv4 at once"
lab_smtp64d_stop
gw_conf "$conf" yes 3600
lab_smtp64d_start "$conf" || { fail "smtp64d restart"; lab_summary; exit 1; }
id=mem1-$LAB_TAG m=$(log_mark)
send "$id" || fail "mem: first message accepted"
check "mem: first message arrives (after a fallback)" wait_for 100 arrived "$id"
check "mem: the fallback says remember_s=3600" grep -q "event=fallback_448 .*remember_s=3600" <(log_since "$m")
id=mem2-$LAB_TAG m=$(log_mark) p=$(lab_pf_mark s6)
send "$id" || fail "mem: second message accepted"
check "mem: second message arrives" wait_for 100 arrived "$id"
check "mem: the session went over IPv4 first" \
    grep -q "event=fallback_448_remembered server=\[$S6_ADDR\]:25 action=ipv4_first target=$S6_V4:25" <(log_since "$m")
check "mem: no IPv6 connection for it (Postfix's log)" \
    bash -c "! grep -q 'connect from .*\[$GW_S6_ADDR\]' <(tail -n +$((p + 1)) '${LAB_PF_DIR[s6]}/maillog')"
kill -USR1 "$SMTP64D_PID"
check "counted: SIGUSR1 logs fallback_448=1 (accepted) and one remembered" \
    wait_for 30 grep -qE 'event=stats .*fallback_448=1 fallback_448_accepted=1 fallback_448_refused=0 fallback_448_failed=0 fallback_448_remembered=1' "$SMTP64D_LOG"
lab_postfix_stop s6

echo "# 5: IPV6-IPV4-FALLBACK negotiated, 456 4.4.8 after DATA"
lab_smtp64d_stop
gw_conf "$conf" yes 0
lab_smtp64d_start "$conf" || { fail "smtp64d restart"; lab_summary; exit 1; }
wait_for 50 bash -c "! ip netns exec '$NS_S6' ss -Hltn | grep -q ':25 '"
lab_bg "$LAB_DIR/fbmx.log" "$NS_S6" python3 "$LAB_ROOT/tests/lab/fallbackmx.py" \
    25 "$LAB_DIR/fbmx" --idle=60
FBMX_PID=$LAB_LAST_PID
wait_port "$NS_S6" :: 25 || fail "scripted MX listens"
id=ext-$LAB_TAG m=$(log_mark)
send "$id" && pass "ext: swaks succeeded" || { fail "ext: swaks succeeded"; tail -n 20 "$LAB_DIR/swaks-$id.out"; }
fbcount() { grep -lF -- "X-Lab-Id: $1" "$LAB_DIR/fbmx"/new/* 2>/dev/null | wc -l; }
check "ext: the message arrives" wait_for 100 bash -c "[ \$(grep -lF -- 'X-Lab-Id: $id' '$LAB_DIR/fbmx'/new/* 2>/dev/null | wc -l) -ge 1 ]"
sleep 1
check "ext: exactly once" test "$(fbcount "$id")" -eq 1
check "ext: the gateway said the verb over IPv6" grep -q 'family=6 event=verb' "$LAB_DIR/fbmx.log"
check "ext: the IPv6 leg refused it with 456" grep -q 'family=6 event=refused code=456' "$LAB_DIR/fbmx.log"
check "ext: stored over IPv4" grep -q 'family=4 event=stored' "$LAB_DIR/fbmx.log"
check "ext: the gateway logs the 456" \
    grep -qE "event=fallback_448 server=\[$S6_ADDR\]:25 code=456 phase=data_end reply=\"456.x204.4.8" <(log_since "$m")
check "ext: the client never saw 456, 4.4.8 or the keyword" \
    bash -c "! grep -qE '456|4\.4\.8|IPV6-IPV4-FALLBACK' '$LAB_DIR/swaks-$id.out'"
check "ext: the client saw one 250 for its message" \
    test "$(grep -c '^<-  250 2.0.0 queued' "$LAB_DIR/swaks-$id.out")" -eq 1
lab_kill "$FBMX_PID"

check "daemon survived everything" kill -0 "$SMTP64D_PID"
if [ "$FAIL" -gt 0 ]; then lab_dump_logs 40; fi
lab_summary
