#!/usr/bin/env bash
# e2e: what the gateway answers itself, and live reconfiguration.
#  - an address of the gateway that is not paired: 554 5.4.4, then 503 to
#    everything but QUIT (RFC 5321 §3.1), QUIT gets 221;
#  - a pair that points back at the gateway: the loop is caught (554 5.4.6)
#    instead of a storm of sessions;
#  - SIGHUP: a valid new config serves the next session (helo_rewrite off
#    -> always turns a refused delivery into an accepted one); a broken one
#    is rejected with a log line and the old config keeps serving.
set -u
. "$(dirname "$0")/../lab/lib.sh"
CHAT="python3 $LAB_ROOT/tests/lab/smtpchat.py"

lab_init
# has_mail PATTERN: re-evaluated at every try of wait_for.
has_mail() { test -n "$(maildir_find s6 "$1")"; }
lab_topology c4 gw s6 || { fail "lab topology"; lab_summary; exit 1; }
lab_postfix_start s6 || { fail "postfix on s6"; lab_summary; exit 1; }
# 192.0.2.40: a gateway address with no pair.  192.0.2.41 <-> 2001:db8::41,
# both on the gateway: a misconfigured pair that loops.
lab_addr "$NS_GW" to-c4 192.0.2.40/24
lab_addr "$NS_GW" to-c4 192.0.2.41/24
lab_addr "$NS_GW" to-s6 2001:db8::41/64
conf=$LAB_DIR/gw.conf
write_conf() {
	lab_gw_conf "$conf" "$1" "${2:-}"
	printf '\n[pair loop]\nipv4 = 192.0.2.41\nipv6 = 2001:db8::41\n' >>"$conf"
}
write_conf off
lab_smtp64d_start "$conf" || { fail "smtp64d start"; lab_summary; exit 1; }

chat() {
	local name=$1 addr=$2
	shift 2
	ip netns exec "$NS_C4" $CHAT client "$addr" 25 "$@" \
	    >"$LAB_DIR/chat-$name.out" 2>&1
}
show() { sed 's/^/    /' "$LAB_DIR/chat-$1.out" | tail -n 10; }

if chat nopair 192.0.2.40 'e:554 5.4.4' 's:EHLO c.example.net\r\n' \
    'e:503 5.5.1' 's:MAIL FROM:<a@example.net>\r\n' 'e:503' 's:QUIT\r\n' \
    'e:221' 'c'; then
	pass "unpaired address: 554 5.4.4, 503 until QUIT, 221"
else
	fail "unpaired address dialogue"; show nopair
fi

if chat loop 192.0.2.41 'e:554 5.4.6' 's:QUIT\r\n' 'c'; then
	pass "pair pointing at the gateway itself: 554 5.4.6 (loop caught)"
else
	fail "loop detection"; show loop
fi
check "loop logged once, not a storm of sessions" \
    test "$(grep -c 'event=refuse .*reason=loop' "$SMTP64D_LOG")" -eq 1

swaks_literal() { # rc of one delivery with a literal HELO through the gateway
	ip netns exec "$NS_C4" swaks --server "$MX6_V4" --helo '[192.0.2.10]' \
	    --from a@example.net --to user@example.org \
	    --header "Subject: reload-$1" --timeout 10 >"$LAB_DIR/swaks-$1.out" 2>&1
}
if swaks_literal before; then
	fail "helo_rewrite = off: literal HELO should be refused"
else
	pass "helo_rewrite = off: literal HELO refused by the MX"
fi

write_conf always
kill -HUP "$SMTP64D_PID"
if wait_for 50 grep -q 'event=reload result=ok' "$SMTP64D_LOG"; then
	pass "SIGHUP: new config loaded"
else
	fail "SIGHUP: no reload logged"
fi
if swaks_literal after; then
	pass "after reload (always): literal HELO delivered"
else
	fail "after reload: delivery failed"; tail -n 5 "$LAB_DIR/swaks-after.out"
fi
wait_for 50 has_mail 'reload-after'
check "the message sent after the reload is in the Maildir" \
    test -n "$(maildir_find s6 'reload-after')"

printf '[gateway]\nfqdn = gw.example.net\nhelo_rewrite = sometimes\n' >"$conf"
kill -HUP "$SMTP64D_PID"
if wait_for 50 grep -q 'event=reload result=failed.*helo_rewrite' "$SMTP64D_LOG"; then
	pass "SIGHUP with a broken config: refused with the reason logged"
else
	fail "broken reload not reported"
fi
check "daemon still running after the broken reload" kill -0 "$SMTP64D_PID"
if swaks_literal kept; then
	pass "old config (always) still serves after the broken reload"
else
	fail "delivery after a broken reload"
fi

if [ "$FAIL" -gt 0 ]; then lab_dump_logs 20; fi
lab_summary
