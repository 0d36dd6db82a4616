#!/usr/bin/env bash
# Pipelining synchronisation and bare line endings in DATA, against two
# real Postfix instances through the daemon:
#   c4 -> smtp64d -> s6: Postfix with smtpd_forbid_unauth_pipelining = yes
#   c6 -> smtp64d -> s4: Postfix as shipped
# Proves:
#  - RFC 2920 §3.1: a client that writes DATA, the message, CRLF.CRLF and
#    a second transaction in one write (never waiting for the 354) gets
#    554 5.5.0 from the gateway and no message at all is delivered, on
#    both servers; the gateway logs it and counts it (SIGUSR1);
#  - the same after STARTTLS; after EHLO (not held by the gateway) the
#    hardened server's own 554 5.5.0 reaches the client;
#  - a client that waits for each 354, pipelining everything RFC 2920
#    allows (RSET and the envelope, the next envelope behind the end of
#    data, NOOP as the last of a group), has both its messages delivered
#    on both servers (NOOP in the middle of a group is refused by the
#    hardened server itself: RFC 2920 §3.1 makes it end a group);
#  - bare_line_endings = inline (the default): each of 16 malformed
#    end-of-data variants (bare LF or CR, NUL, CR CR LF, around the dot)
#    delivers exactly one message, with the would-be second message inside
#    it as text, on both servers; each normalisation is logged with its
#    reason and counted;
#  - a pair's own bare_line_endings wins over [gateway]'s.
set -u
. "$(dirname "$0")/../lab/lib.sh"

lab_init
lab_topology c4 gw s6 c6 s4 || { fail "lab topology"; lab_summary; exit 1; }
lab_postfix_start s6 mx-s6.example.org "smtpd_forbid_unauth_pipelining = yes" ||
	{ fail "hardened postfix on s6"; lab_summary; exit 1; }
lab_postfix_start s4 || { fail "postfix on s4"; lab_summary; exit 1; }
conf=$LAB_DIR/gw.conf
lab_gw_conf "$conf" always "command_timeout_s = 5
log_level = debug"
lab_smtp64d_start "$conf" || { fail "smtp64d start"; lab_summary; exit 1; }

# The two ways in: server name, client namespace, address the client dials.
SRV=(s6 s4)
declare -A VIA_NS=([s6]=$NS_C4 [s4]=$NS_C6) VIA_HOST=([s6]=$MX6_V4 [s4]=$MX4_V6)
declare -A KIND=([s6]="hardened Postfix" [s4]="default Postfix")

chat() { # chat SERVER NAME STEP...
	local srv=$1 name=$2
	shift 2
	lab_chat "${VIA_NS[$srv]}" "$name" "${VIA_HOST[$srv]}" "$@"
}
has_mail() { maildir_find "$1" "$2" >/dev/null; }
# settle SERVER: waits until the instance's queue is empty (bounded), so
# that counting its Maildir counts everything it accepted.
settle() {
	local i
	for i in $(seq 1 50); do
		[ -z "$(find "${LAB_PF_DIR[$1]}/queue/incoming" \
		    "${LAB_PF_DIR[$1]}/queue/active" \
		    "${LAB_PF_DIR[$1]}/queue/maildrop" -type f 2>/dev/null)" ] &&
			return 0
		sleep 0.1
	done
	return 1
}

HELLO='s:EHLO client.example.net\r\n'
ENV='MAIL FROM:<a@example.net>\r\nRCPT TO:<user@example.org>\r\nDATA\r\n'

# --- RFC 2920 §3.1: two transactions in one write, no wait for the 354
for s in "${SRV[@]}"; do
	before=$(maildir_count "$s")
	one="${ENV}Subject: sync-first-$s\r\n\r\nfirst\r\n.\r\n"
	two="${ENV}Subject: sync-second-$s\r\n\r\nsecond\r\n.\r\nQUIT\r\n"
	if chat "$s" "sync-$s" 'e:220' "$HELLO" 'e:250' "s:$one$two" \
	    'e:250' 'e:250' 'e:554 5.5.0' 'c'; then
		pass "${KIND[$s]}: one-write double transaction refused with 554 5.5.0"
	else
		fail "${KIND[$s]}: one-write double transaction"
		lab_chat_show "sync-$s"
	fi
	sleep 0.5
	settle "$s"
	check "${KIND[$s]}: no message of the one-write session delivered" \
	    test "$(maildir_count "$s")" -eq "$before"
	check "${KIND[$s]}: no sync-second message" \
	    test -z "$(maildir_find "$s" "sync-second-$s")"
done
check "gateway logged the violation with its reason" \
    grep -q 'event=reject reason=sync_violation after=data' "$SMTP64D_LOG"
check "gateway closed those sessions with reason=sync_violation" \
    grep -q 'event=close reason=sync_violation' "$SMTP64D_LOG"
# The server answered 354 and then lost the connection: nothing of the
# early bytes reached it, and it saw no end of data.
for s in "${SRV[@]}"; do
	check "${KIND[$s]}: its log shows the connection lost after DATA" \
	    grep -q 'lost connection after DATA' "${LAB_PF_DIR[$s]}/maillog"
done

# --- after STARTTLS (held by the gateway; these servers offer no TLS)
for s in "${SRV[@]}"; do
	if chat "$s" "tls-$s" 'e:220' "$HELLO" 'e:250' \
	    's:STARTTLS\r\nMAIL FROM:<a@example.net>\r\n' 'e:554 5.5.0' 'c'; then
		pass "${KIND[$s]}: command pipelined behind STARTTLS: 554 5.5.0"
	else
		fail "${KIND[$s]}: command pipelined behind STARTTLS"
		lab_chat_show "tls-$s"
	fi
done
check "gateway logged the STARTTLS violation" \
    grep -q 'reason=sync_violation after=starttls' "$SMTP64D_LOG"

# --- after EHLO (not held): the hardened server's own refusal arrives
if chat s6 ehlo-s6 'e:220' \
    's:EHLO client.example.net\r\nMAIL FROM:<a@example.net>\r\n' \
    'e:554 5.5.0' 'c'; then
	pass "hardened Postfix: its own 554 5.5.0 to pipelined EHLO reaches the client"
else
	fail "hardened Postfix: pipelined EHLO"; lab_chat_show ehlo-s6
fi

# --- a client that waits for each 354: both messages, both servers
for s in "${SRV[@]}"; do
	before=$(maildir_count "$s")
	if chat "$s" "wait-$s" 'e:220' "$HELLO" 'e:250' "s:RSET\r\n$ENV" \
	    'e:250' 'e:250' 'e:250' 'e:354' \
	    "s:Subject: wait-one-$s\r\n\r\nfirst\r\n.\r\n$ENV" \
	    'e:250' 'e:250' 'e:250' 'e:354' \
	    "s:Subject: wait-two-$s\r\n\r\nsecond\r\n.\r\nNOOP\r\n" \
	    'e:250' 'e:250' 's:QUIT\r\n' 'e:221'; then
		pass "${KIND[$s]}: a client that waits for 354 is unaffected"
	else
		fail "${KIND[$s]}: a client that waits for 354"
		lab_chat_show "wait-$s"
	fi
	wait_for 50 has_mail "$s" "Subject: wait-two-$s"
	settle "$s"
	check "${KIND[$s]}: both messages of the waiting client delivered" \
	    test "$(maildir_count "$s")" -eq $((before + 2))
done

# --- bare_line_endings = inline: 16 malformed endings, one message each
variants=('\n.\n' '\n.\r\n' '\r.\n' '\n.\r' '\r.\r' '\r.\r\n' '\r\n.\n'
	'\r\n.\r' '\r\n\x00.\r\n' '\r\n.\x00\r\n' '\r\r\n.\r\r\n' '\r\n.\r\r\n'
	'\r\r\n' '\n' '\r' '\x00')
for s in "${SRV[@]}"; do
	i=0
	for v in "${variants[@]}"; do
		i=$((i + 1))
		id="$s-$i"
		smuggled="MAIL FROM:<evil@example.net>\r\nRCPT TO:<user@example.org>\r\nDATA\r\nSubject: smuggled-$id\r\n\r\nsmuggled\r\n.\r\n"
		before=$(maildir_count "$s")
		if ! chat "$s" "inline-$id" 'e:220' "$HELLO" 'e:250' "s:$ENV" \
		    'e:250' 'e:250' 'e:354' \
		    "s:Subject: inline-$id\r\n\r\nbody$v$smuggled" 'e:250' \
		    's:QUIT\r\n' 'e:221'; then
			fail "${KIND[$s]}: inline variant $i ($v): not accepted"
			lab_chat_show "inline-$id"
			continue
		fi
		wait_for 50 has_mail "$s" "Subject: inline-$id"
		settle "$s"
		f=$(maildir_find "$s" "Subject: inline-$id")
		if [ "$(maildir_count "$s")" -eq $((before + 1)) ] &&
		    [ -n "$f" ] && grep -qF "smuggled-$id" "$f" &&
		    grep -qF 'MAIL FROM:<evil@example.net>' "$f"; then
			pass "${KIND[$s]}: inline variant $i ($v): one message, the smuggled text inside"
		else
			fail "${KIND[$s]}: inline variant $i ($v)"
			[ -n "$f" ] && sed 's/^/    | /' "$f" | tail -n 12
		fi
	done
done
check "gateway logged a bare LF made text" \
    grep -q 'event=inline reason=bare_lf action=crlf' "$SMTP64D_LOG"
check "gateway logged a bare CR made text" \
    grep -q 'event=inline reason=bare_cr action=crlf' "$SMTP64D_LOG"
check "gateway logged a NUL removed" \
    grep -q 'event=inline reason=nul action=removed' "$SMTP64D_LOG"

# --- SIGUSR1: the counters
kill -USR1 "$SMTP64D_PID"
wait_for 30 grep -q 'event=smtp_stats' "$SMTP64D_LOG"
stats=$(grep 'event=smtp_stats' "$SMTP64D_LOG" | tail -n 1)
printf '    %s\n' "$stats"
num() { printf '%s\n' "$stats" | sed -n "s/.* $1=\([0-9]*\).*/\1/p"; }
check "SIGUSR1: sync_violation counts the 4 refused sessions" \
    test "$(num sync_violation)" = 4
check "SIGUSR1: inline_messages counts the 32 messages" \
    test "$(num inline_messages)" = 32
check "SIGUSR1: bare CR, bare LF and NUL counted" \
    test "$(num inline_bare_cr)" -gt 0 -a "$(num inline_bare_lf)" -gt 0 \
    -a "$(num inline_nul)" -gt 0

# --- per pair: [pair mx4] (the file's last section) takes reject, the
# other pair keeps [gateway]'s inline; put in service by a reload
printf 'bare_line_endings = reject\n' >>"$conf"
kill -HUP "$SMTP64D_PID"
wait_for 50 grep -q 'event=reload result=ok' "$SMTP64D_LOG" ||
	fail "reload with a per-pair bare_line_endings"
v='\n.\n'
smuggled="MAIL FROM:<evil@example.net>\r\nRCPT TO:<user@example.org>\r\nDATA\r\nSubject: smuggled-pair\r\n\r\nsmuggled\r\n.\r\n"
before=$(maildir_count s4)
if chat s4 pair-s4 'e:220' "$HELLO" 'e:250' "s:$ENV" 'e:250' 'e:250' \
    'e:354' "s:Subject: pair-reject\r\n\r\nbody$v$smuggled" \
    'e:554 5.6.0' 'c'; then
	pass "[pair mx4] bare_line_endings = reject: 554 5.6.0"
else
	fail "[pair mx4] bare_line_endings = reject"; lab_chat_show pair-s4
fi
sleep 0.5
settle s4
check "[pair mx4] reject: nothing delivered" \
    test "$(maildir_count s4)" -eq "$before"
if chat s6 pair-s6 'e:220' "$HELLO" 'e:250' "s:$ENV" 'e:250' 'e:250' \
    'e:354' "s:Subject: pair-inline\r\n\r\nbody$v$smuggled" 'e:250' \
    's:QUIT\r\n' 'e:221'; then
	pass "[pair mx6] keeps [gateway]'s inline: message accepted"
else
	fail "[pair mx6] inline after the reload"; lab_chat_show pair-s6
fi

check "daemon survived everything" kill -0 "$SMTP64D_PID"
if [ "$FAIL" -gt 0 ]; then lab_dump_logs 20; fi
lab_summary
