#!/usr/bin/env bash
# e2e: tls_upstream = opportunistic means for the upstream leg what it
# means for an MTA (RFC 7435).  A real Postfix on the client side (c4,
# smtp_tls_security_level = may, relayhost = the gateway's address for the
# v6-only MX) always takes the gateway's STARTTLS.  The MX on s6 is a
# scripted server (tests/lab/tlsmx.py, Python's ssl module), not an MTA:
# it offers STARTTLS, takes a message into a Maildir, and has broken or
# old TLS on purpose.  Proves:
#  - a TLS-1.0-only server gets the mail over TLS 1.0 (the opportunistic
#    upstream accepts what a "may" MTA accepts);
#  - a server whose STARTTLS always fails gets the mail once, over a new
#    clear-text connection, while the sender's leg stays TLS; the fallback
#    is logged and counted, and the next session to that server skips
#    STARTTLS upstream at once (remembered);
#  - a server whose handshake ends with an alert gets the mail the same way;
#  - tls_upstream = require still refuses, with a reply naming the cause.
set -u
. "$(dirname "$0")/../lab/lib.sh"

lab_init
lab_topology c4 gw s6 || { fail "lab topology"; lab_summary; exit 1; }
lab_tls_certs || { fail "certificates"; lab_summary; exit 1; }
CRT=$LAB_TLS_DIR
if ! lab_postfix_start c4 mta.example.net "relayhost = [$MX6_V4]:25
default_transport = smtp
relay_transport = smtp
virtual_mailbox_domains =
virtual_mailbox_maps =
smtp_tls_security_level = may
smtp_tls_loglevel = 1"; then
	fail "sending Postfix (smtp_tls_security_level = may) starts on c4"
	lab_dump_logs
	lab_summary
	exit 1
fi
# Its smtp client needs the tlsmgr service (else "no entropy for TLS key
# generation: disabling TLS support").
lab_postfix_tls c4 || { fail "tlsmgr for the sending Postfix"; lab_summary; exit 1; }
pass "sending Postfix (smtp_tls_security_level = may) starts on c4"
SENDLOG=${LAB_PF_DIR[c4]}/maillog
conf=$LAB_DIR/gw.conf
lab_gw_conf_tls "$conf" terminate "" "log_level = debug"
lab_smtp64d_start "$conf" || { fail "smtp64d start"; lab_summary; exit 1; }

log_mark() { wc -l <"$SMTP64D_LOG"; }
log_since() { tail -n "+$(($1 + 1))" "$SMTP64D_LOG"; }
snd_mark() { wc -l <"$SENDLOG"; }
snd_since() { tail -n "+$(($1 + 1))" "$SENDLOG"; }
# mx_start MODE: the scripted MX on s6 ([2001:db8::25]:25), Maildir
# $LAB_DIR/mx-MODE, log $LAB_DIR/mx-MODE.log; sets MX_PID.
MX_PID=""
mx_start() {
	lab_bg "$LAB_DIR/mx-$1.log" "$NS_S6" python3 "$LAB_ROOT/tests/lab/tlsmx.py" \
	    "$1" "$S6_ADDR" 25 "$CRT/mx.crt" "$CRT/mx.key" "$LAB_DIR/mx-$1" --idle=60
	MX_PID=$LAB_LAST_PID
	wait_port "$NS_S6" "$S6_ADDR" 25
}
mx_stop() {
	lab_kill "$MX_PID"
	wait_for 50 bash -c "! ip netns exec '$NS_S6' ss -Hltn | grep -q ':25 '"
}
# send ID: one message into the sending Postfix (swaks to its own smtpd);
# the Postfix then relays it through the gateway.
send() {
	ip netns exec "$NS_C4" swaks --server "$C4_ADDR" --port 25 \
	    --helo mta.example.net --from a@example.net --to user@example.org \
	    --header "X-Lab-Id: $1" --timeout 15 </dev/null \
	    >"$LAB_DIR/swaks-$1.out" 2>&1
}
# count MODE ID: messages with ID in that MX's Maildir.
count() { grep -lF -- "X-Lab-Id: $2" "$LAB_DIR/mx-$1"/new/* 2>/dev/null | wc -l; }
arrived() { [ "$(count "$1" "$2")" -ge 1 ]; }
sent() { snd_since "$1" | grep -q "status=sent"; }

echo "# 1: a TLS-1.0-only server"
mx_start tls10 || fail "scripted TLS 1.0 MX starts"
id=tls10-$LAB_TAG m=$(log_mark) p=$(snd_mark)
send "$id" || fail "message accepted by the sending Postfix"
check "TLS 1.0: the message reaches the Maildir" wait_for 150 arrived tls10 "$id"
sleep 1
check "TLS 1.0: exactly once" test "$(count tls10 "$id")" -eq 1
check "TLS 1.0: it came over TLS 1.0 (the MX's header)" \
    grep -q '^X-Tlsmx: conn=[0-9]* tls=TLSv1' "$LAB_DIR/mx-tls10"/new/*
check "TLS 1.0: the gateway logs the server leg as TLSv1" \
    grep -qE 'event=tls leg=server tls=TLSv1 ' <(log_since "$m")
check "TLS 1.0: the sending Postfix logs status=sent" wait_for 50 sent "$p"
check "TLS 1.0: the sender's own leg was TLS (Postfix's log)" \
    grep -qE "TLS connection established to .*\[$MX6_V4\]:25" <(snd_since "$p")
mx_stop

echo "# 2: a server whose STARTTLS always fails"
mx_start fail || fail "scripted failing MX starts"
id=fail-$LAB_TAG m=$(log_mark) p=$(snd_mark)
send "$id" || fail "message accepted by the sending Postfix"
check "fails: the message reaches the Maildir" wait_for 150 arrived fail "$id"
sleep 1
check "fails: exactly once" test "$(count fail "$id")" -eq 1
check "fails: over clear text, on a second connection (the MX's log)" \
    bash -c "grep -q 'conn=1 event=starttls_broken' '$LAB_DIR/mx-fail.log' &&
        grep -q 'conn=2 event=stored tls=no' '$LAB_DIR/mx-fail.log'"
check "fails: the gateway logs the fallback (event=tls_fallback)" \
    grep -qE "event=tls_fallback leg=server dest=\[$S6_ADDR\]:25 reason=handshake action=reconnect_clear remember_s=3600 fallbacks=1" <(log_since "$m")
check "fails: the sender's leg stayed TLS (Postfix's log)" \
    grep -qE "TLS connection established to .*\[$MX6_V4\]:25" <(snd_since "$p")
check "fails: the sending Postfix logs status=sent" wait_for 50 sent "$p"
check "fails: no 421 reached the sender" \
    bash -c "! grep -q '421 4.7.0' <(tail -n +$((p + 1)) '$SENDLOG')"

id=again-$LAB_TAG m=$(log_mark) p=$(snd_mark)
send "$id" || fail "second message accepted by the sending Postfix"
check "remembered: the next message arrives" wait_for 150 arrived fail "$id"
check "remembered: no STARTTLS upstream this time" \
    grep -q 'action=client_only_remembered' <(log_since "$m")
check "remembered: the MX saw one connection for it (no failed handshake first)" \
    test "$(grep -c 'event=starttls_broken' "$LAB_DIR/mx-fail.log")" -eq 1
check "remembered: the sender's leg is still TLS" \
    grep -qE "TLS connection established to .*\[$MX6_V4\]:25" <(snd_since "$p")
kill -USR1 "$SMTP64D_PID"
check "counted: SIGUSR1 logs tls_fallbacks=1" \
    wait_for 30 grep -q 'event=stats sessions=[0-9]* tls_fallbacks=1' "$SMTP64D_LOG"
mx_stop

echo "# 3: a server whose handshake ends with an alert (fresh gateway)"
lab_smtp64d_stop
lab_smtp64d_start "$conf" || { fail "smtp64d restart"; lab_summary; exit 1; }
mx_start alert || fail "scripted alerting MX starts"
id=alert-$LAB_TAG m=$(log_mark) p=$(snd_mark)
send "$id" || fail "message accepted by the sending Postfix"
check "alert: the message reaches the Maildir" wait_for 150 arrived alert "$id"
sleep 1
check "alert: exactly once" test "$(count alert "$id")" -eq 1
check "alert: the MX's handshake failed, then a clear-text delivery" \
    bash -c "grep -q 'conn=1 event=handshake_failed' '$LAB_DIR/mx-alert.log' &&
        grep -q 'conn=2 event=stored tls=no' '$LAB_DIR/mx-alert.log'"
check "alert: the gateway logs the fallback" \
    grep -q 'event=tls_fallback leg=server' <(log_since "$m")

echo "# 4: tls_upstream = require still refuses, and says why"
lab_gw_conf_tls "$conf" terminate "tls_upstream = require"
lab_smtp64d_stop
lab_smtp64d_start "$conf" || { fail "smtp64d restart"; lab_summary; exit 1; }
m=$(log_mark)
if lab_chat "$NS_C4" require "$MX6_V4" 'e:220' 's:EHLO mta.example.net\r\n' \
    'e:250' 's:STARTTLS\r\n' 'e:421 4.7.0' 'c'; then
	pass "require: 421 4.7.0 and a close"
else
	fail "require: 421 4.7.0 and a close"; lab_chat_show require
fi
check "require: the reply names the cause (the TLS handshake with the server)" \
    grep -q "421 4.7.0 gw.example.net TLS handshake with the server failed" "$LAB_DIR/chat-require.out"
check "require: no fallback" bash -c "! grep -q event=tls_fallback <(tail -n +$((m + 1)) '$SMTP64D_LOG')"
mx_stop

check "daemon survived everything" kill -0 "$SMTP64D_PID"
if [ "$FAIL" -gt 0 ]; then lab_dump_logs 30; fi
lab_summary
