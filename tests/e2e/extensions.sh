#!/usr/bin/env bash
# e2e: what passes between the two legs.  A v4-only client (c4) reaches
# the v6-only Postfix MX (s6) through smtp64d; the MX trusts the gateway's
# address for XCLIENT and XFORWARD (smtpd_authorized_xclient_hosts,
# smtpd_authorized_xforward_hosts), as a site behind the gateway might.
# Proves:
#  - the MX does offer XCLIENT and XFORWARD to the gateway, but the EHLO
#    reply the client sees has neither;
#  - a client's XCLIENT and XFORWARD are answered 502 5.5.1 by the gateway
#    and never reach the MX: its log has no trace of the forged identity,
#    and the message is logged with the gateway's own address;
#  - bytes a client sends before the greeting (a PROXY header) get
#    554 5.5.1 and a close, and never reach the MX;
#  - an unknown verb is answered 500 5.5.1 by the gateway (the MX counts
#    no unknown command);
#  - against a scripted server: IPV6-IPV4-FALLBACK, XCLIENT, XFORWARD and
#    unknown keywords are absent from the EHLO reply, and a 456 4.4.8
#    reaches the client as 451 4.4.8.
set -u
. "$(dirname "$0")/../lab/lib.sh"

lab_init
lab_topology c4 gw s6 || { fail "lab topology"; lab_summary; exit 1; }
# The MX greets after 1 s (a "sleep" client restriction evaluated at
# connect time), so a client that does not wait is sure to speak first.
if ! lab_postfix_start s6 mx6.example.org "smtpd_authorized_xclient_hosts = [$GW_S6_ADDR]/128
smtpd_authorized_xforward_hosts = [$GW_S6_ADDR]/128
smtpd_delay_reject = no
smtpd_client_restrictions = sleep 1, permit"; then
	fail "Postfix trusting the gateway for XCLIENT starts on s6"
	lab_dump_logs
	lab_summary
	exit 1
fi
pass "Postfix trusting the gateway for XCLIENT and XFORWARD starts on s6"
MAILLOG=${LAB_PF_DIR[s6]}/maillog
conf=$LAB_DIR/gw.conf
lab_gw_conf "$conf" always "source_ipv6 = $GW_S6_ADDR"
lab_smtp64d_start "$conf" || { fail "smtp64d start"; lab_summary; exit 1; }

has_mail() { test -n "$(maildir_find s6 "$1")"; }
pf_mark() { wc -l <"$MAILLOG"; }
pf_since() { tail -n "+$(($1 + 1))" "$MAILLOG"; }
# disconnected MARK: Postfix logged the end of a session after MARK.
disconnected() { pf_since "$1" | grep -q 'disconnect from'; }

# The MX offers both to the gateway's address (so the test means something).
ip netns exec "$NS_GW" python3 "$LAB_ROOT/tests/lab/smtpchat.py" client \
    "$S6_ADDR" 25 'e:220' 's:EHLO gw.example.net\r\n' 'e:250' \
    's:QUIT\r\n' 'e:221' >"$LAB_DIR/chat-direct.out" 2>&1
check "the MX offers XCLIENT to the gateway's address" \
    grep -q "^<< '250-XCLIENT" "$LAB_DIR/chat-direct.out"
check "the MX offers XFORWARD to the gateway's address" \
    grep -q "^<< '250-XFORWARD" "$LAB_DIR/chat-direct.out"

HELLO='s:EHLO client.example.net\r\n'
ENV='s:MAIL FROM:<a@example.net>\r\nRCPT TO:<user@example.org>\r\nDATA\r\n'

echo "# 1: the EHLO reply the client sees"
if lab_chat "$NS_C4" ehlo "$MX6_V4" 'e:220' "$HELLO" 'e:250' 's:QUIT\r\n' 'e:221'; then
	pass "EHLO through the gateway"
else
	fail "EHLO through the gateway"; lab_chat_show ehlo
fi
check "EHLO reply: no XCLIENT" bash -c "! grep -qi 'XCLIENT' '$LAB_DIR/chat-ehlo.out'"
check "EHLO reply: no XFORWARD" bash -c "! grep -qi 'XFORWARD' '$LAB_DIR/chat-ehlo.out'"
check "EHLO reply: no ETRN, no CHUNKING" \
    bash -c "! grep -qiE 'ETRN|CHUNKING' '$LAB_DIR/chat-ehlo.out'"
check "EHLO reply: PIPELINING, SIZE, 8BITMIME kept" \
    bash -c "grep -q PIPELINING '$LAB_DIR/chat-ehlo.out' && grep -q 'SIZE' '$LAB_DIR/chat-ehlo.out' && grep -q 8BITMIME '$LAB_DIR/chat-ehlo.out'"

echo "# 2: XCLIENT and XFORWARD from the client"
# The MX is IPv6-only, so the forged address is one it would take.
for verb in XCLIENT XFORWARD; do
	id=$verb-$LAB_TAG p=$(pf_mark)
	# Whatever the reply, the client goes on to send a message: the
	# MX's log then shows which identity it believed.
	if lab_chat "$NS_C4" "$verb" "$MX6_V4" 'e:220' "$HELLO" 'e:250' \
	    "s:$verb ADDR=IPV6:2001:db8:99::99 NAME=spoofed.example.net\r\n" 'e:' \
	    "$HELLO" 'e:250' "$ENV" 'e:250' 'e:250' 'e:354' \
	    "s:X-Lab-Id: $id\r\n\r\nforged identity?\r\n.\r\n" 'e:250' \
	    's:QUIT\r\n' 'e:221'; then
		pass "$verb: the session goes on after it"
	else
		fail "$verb: the session goes on after it"; lab_chat_show "$verb"
	fi
	check "$verb: answered 502 5.5.1 by the gateway (names gw.example.net)" \
	    grep -q "^<< '502 5.5.1 gw.example.net" "$LAB_DIR/chat-$verb.out"
	check "$verb: the message is delivered" wait_for 50 has_mail "X-Lab-Id: $id"
	wait_for 50 disconnected "$p"
	check "$verb: the MX never logs the forged identity" \
	    bash -c "! grep -qE 'spoofed|2001:db8:99::99' <(tail -n +$((p + 1)) '$MAILLOG')"
	check "$verb: the MX logs the message from the gateway's address" \
	    grep -qE "client=unknown\[$GW_S6_ADDR\]" <(pf_since "$p")
done
check "the daemon logged both refusals" \
    test "$(grep -cE 'event=reject reason=verb_not_offered verb=(XCLIENT|XFORWARD) reply=502' "$SMTP64D_LOG")" -eq 2

echo "# 3: bytes before the greeting"
p=$(pf_mark)
if lab_chat "$NS_C4" pregreet "$MX6_V4" \
    's:PROXY TCP4 192.0.2.99 192.0.2.30 4711 25\r\nEHLO spoofed.example.net\r\n' \
    'e:554 5.5.1' 'c'; then
	pass "pre-greeting bytes: 554 5.5.1 and closed"
else
	fail "pre-greeting bytes"; lab_chat_show pregreet
fi
check "pre-greeting: the client never saw the MX's greeting" \
    bash -c "! grep -q '^<< .220' '$LAB_DIR/chat-pregreet.out'"
sleep 1
check "pre-greeting: nothing the client sent reached the MX" \
    bash -c "! grep -qE 'PROXY|spoofed|192\.0\.2\.99' <(tail -n +$((p + 1)) '$MAILLOG')"
check "pre-greeting: logged" grep -q 'event=reject reason=pregreet' "$SMTP64D_LOG"

echo "# 4: an unknown verb"
p=$(pf_mark)
if lab_chat "$NS_C4" unknown "$MX6_V4" 'e:220' "$HELLO" 'e:250' \
    's:FROBNICATE now\r\n' 'e:500 5.5.1' 's:NOOP\r\n' 'e:250' \
    's:QUIT\r\n' 'e:221'; then
	pass "unknown verb: 500 5.5.1, session goes on"
else
	fail "unknown verb"; lab_chat_show unknown
fi
check "unknown verb: answered by the gateway (names gw.example.net)" \
    grep -q "^<< '500 5.5.1 gw.example.net" "$LAB_DIR/chat-unknown.out"
wait_for 50 disconnected "$p"
check "unknown verb: the MX counted no unknown command" \
    bash -c "pf=\$(tail -n +$((p + 1)) '$MAILLOG' | grep 'disconnect from'); [ -n \"\$pf\" ] && ! grep -q unknown= <<<\"\$pf\""

echo "# 5: scripted server (Postfix stopped)"
lab_postfix_stop s6
wait_for 50 bash -c "! ip netns exec '$NS_S6' ss -Hltn | grep -q ':25 '"
G='s:220\x20mx.example.org\x20ESMTP\r\n'
E='l:EHLO\x20gw.example.net s:250-mx.example.org\r\n250-PIPELINING\r\n250-IPV6-IPV4-FALLBACK\r\n250-XCLIENT\x20NAME\x20ADDR\r\n250-XFORWARD\x20NAME\x20ADDR\r\n250-X-NEW-THING\r\n250\x208BITMIME\r\n'
if lab_scene fallback "$G $E l:MAIL s:456\x204.4.8\x20please\x20retry\x20immediately\x20over\x20IPv4\r\n l:QUIT s:221\x20bye\r\n" \
    'e:220' "$HELLO" 'e:250' 's:MAIL FROM:<a@example.net>\r\n' 'e:451 4.4.8' \
    's:QUIT\r\n' 'e:221'; then
	pass "456 4.4.8 from the server reaches the client as 451 4.4.8"
else
	fail "456 4.4.8 from the server"
fi
check "scripted: IPV6-IPV4-FALLBACK absent from the client's EHLO reply" \
    bash -c "! grep -q 'IPV6-IPV4-FALLBACK' '$LAB_DIR/cli-fallback.out'"
check "scripted: XCLIENT, XFORWARD and the unknown keyword absent" \
    bash -c "! grep -qE 'XCLIENT|XFORWARD|X-NEW-THING' '$LAB_DIR/cli-fallback.out'"
check "scripted: the reply still ends properly (250 8BITMIME)" \
    grep -q "^<< '250 8BITMIME" "$LAB_DIR/cli-fallback.out"
check "scripted: the client never saw a 456" \
    bash -c "! grep -q \"^<< '456\" '$LAB_DIR/cli-fallback.out'"

check "daemon survived everything" kill -0 "$SMTP64D_PID"
if [ "$FAIL" -gt 0 ]; then lab_dump_logs 30; fi
lab_summary
