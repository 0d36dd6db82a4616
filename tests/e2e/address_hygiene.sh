#!/usr/bin/env bash
# e2e: address hygiene in MAIL FROM / RCPT TO (RFC 3974 §6 and §7), with
# the IPv4-only client c4 relayed to the IPv6-only Postfix MX s6 (pair mx6).
# The MX logs every command it receives (debug_peer_list = the gateway's
# source address), so "never reached the MX" is read from its own log.
#  - address_hygiene = reject (the default): a zoned IPv6 literal
#    [IPv6:fe80::1%eth0], a link-local literal, a host-scoped [127.0.0.1]
#    and source routes <@a,@b:user@c> in MAIL or RCPT get the gateway's
#    553 (5.1.0 route, 5.1.8/5.1.2 scoped literal), the session goes on
#    (a clean RCPT in the same transaction is delivered), and none of those
#    lines reaches Postfix;
#  - address_hygiene = pass: the same lines reach Postfix, which answers
#    them itself (it strips the source route and delivers).
set -u
. "$(dirname "$0")/../lab/lib.sh"

lab_init
lab_topology c4 gw s6 || { fail "lab topology"; lab_summary; exit 1; }
if ! lab_postfix_start s6 "" "debug_peer_list = [$GW_S6_ADDR]"; then
	fail "Postfix starts on s6"; lab_dump_logs; lab_summary; exit 1
fi
pass "Postfix starts on s6 ($S6_ADDR), logging every command from the gateway"

conf=$LAB_DIR/smtp64.conf
msg() { # msg ID: a small message file with CRLF lines
	printf 'From: a@example.net\r\nTo: user@example.org\r\nSubject: hygiene\r\nX-Lab-Id: %s\r\n\r\nbody\r\n' \
		"$1" >"$LAB_DIR/msg-$1"
}
delivered() { [ -n "$(maildir_find s6 "X-Lab-Id: $1")" ]; }
# seen_by_mx MARK TEXT: the MX received a command line containing TEXT.
seen_by_mx() { lab_pf_since s6 "$1" | grep -F ': < ' | grep -qF -- "$2"; }

# The hostile lines, each with the reply the gateway must give in reject
# mode (smtpfix/path.h).
BAD_MAIL_SCOPED='MAIL FROM:<a@[IPv6:fe80::1]>'
BAD_MAIL_ROUTE='MAIL FROM:<@relay.example:a@example.net>'
BAD_RCPT_ZONE='RCPT TO:<user@[IPv6:fe80::1%eth0]>'
BAD_RCPT_ROUTE='RCPT TO:<@a.example,@b.example:user@example.org>'
BAD_RCPT_HOST='RCPT TO:<user@[127.0.0.1]>'

echo "# address_hygiene = reject (default)"
lab_gw_conf "$conf" always
lab_smtp64d_start "$conf" "$LAB_DIR/smtp64d-reject.log" ||
	{ fail "smtp64d starts"; lab_dump_logs; lab_summary; exit 1; }
pass "smtp64d starts (address_hygiene unset: reject)"
msg reject
mark=$(lab_pf_mark s6)
if lab_chat "$NS_C4" reject "$MX6_V4" 'e:220' 's:EHLO c4.example.net\r\n' 'e:250' \
	"s:$BAD_MAIL_SCOPED\\r\\n" 'e:553 5.1.8' \
	"s:$BAD_MAIL_ROUTE\\r\\n" 'e:553 5.1.0' \
	's:MAIL FROM:<a@example.net>\r\n' 'e:250' \
	"s:$BAD_RCPT_ZONE\\r\\n" 'e:553 5.1.2' \
	"s:$BAD_RCPT_ROUTE\\r\\n" 'e:553 5.1.0' \
	"s:$BAD_RCPT_HOST\\r\\n" 'e:553 5.1.2' \
	's:RCPT TO:<user@example.org>\r\n' 'e:250' \
	's:DATA\r\n' 'e:354' "F:$LAB_DIR/msg-reject" 'e:250' 's:QUIT\r\n' 'e:221'; then
	pass "reject: scoped/zoned literals and source routes get 553 from the gateway, the session goes on"
else
	fail "reject: hygiene dialogue"; lab_chat_show reject 20
fi
check "reject: the clean recipient of that transaction is delivered" \
	wait_for 50 delivered reject
check "reject: the MX saw the clean MAIL and RCPT" \
	seen_by_mx "$mark" 'RCPT TO:<user@example.org>'
for l in "$BAD_MAIL_SCOPED" "$BAD_MAIL_ROUTE" "$BAD_RCPT_ZONE" "$BAD_RCPT_ROUTE" \
	"$BAD_RCPT_HOST"; do
	if seen_by_mx "$mark" "$l"; then
		fail "reject: '$l' reached the MX"
	else
		pass "reject: '$l' never reached the MX"
	fi
done
check "reject: no fe80 or source route anywhere in the MX log" \
	test -z "$(lab_pf_since s6 "$mark" | grep -e 'fe80' -e '@a\.example' -e 'relay\.example')"
# logged PATTERN...: every fixed string is on one line of the daemon log.
logged() {
	local l p
	l=$(cat "$SMTP64D_LOG")
	for p in "$@"; do l=$(grep -F -- "$p" <<<"$l"); done
	[ -n "$l" ]
}
check "reject: logged event=reject verb=MAIL reason=scoped-literal reply=553" \
	logged "event=reject" "verb=MAIL" "reason=scoped-literal" "reply=553"
check "reject: logged event=reject verb=RCPT reason=source-route reply=553" \
	logged "event=reject" "verb=RCPT" "reason=source-route" "reply=553"
check "reject: the log names no address from those lines (peer bytes stay out)" \
	test -z "$(grep -e 'fe80' -e 'a\.example' "$SMTP64D_LOG")"

# Pipelined: the refusal keeps its place among the server's replies.
if lab_chat "$NS_C4" pipelined "$MX6_V4" 'e:220' 's:EHLO c4.example.net\r\n' 'e:250' \
	"s:MAIL FROM:<a@example.net>\\r\\n$BAD_RCPT_ZONE\\r\\nRCPT TO:<user@example.org>\\r\\n$BAD_RCPT_ROUTE\\r\\nRSET\\r\\nQUIT\\r\\n" \
	'e:250' 'e:553' 'e:250' 'e:553' 'e:250' 'e:221'; then
	pass "reject: pipelined group (RFC 2920): replies in command order"
else
	fail "reject: pipelined group"; lab_chat_show pipelined 20
fi

echo "# address_hygiene = pass"
lab_smtp64d_stop
lab_gw_conf "$conf" always "address_hygiene = pass"
lab_smtp64d_start "$conf" "$LAB_DIR/smtp64d-pass.log" ||
	{ fail "smtp64d restarts"; lab_dump_logs; lab_summary; exit 1; }
pass "smtp64d restarts with address_hygiene = pass"
msg pass
mark=$(lab_pf_mark s6)
# Postfix 3.7 accepts the scoped sender, refuses the zoned literal itself
# (501 5.1.3), refuses [127.0.0.1] as a relay (454) and strips the route.
if lab_chat "$NS_C4" pass "$MX6_V4" 'e:220' 's:EHLO c4.example.net\r\n' 'e:250' \
	"s:$BAD_MAIL_SCOPED\\r\\n" 'e:' 's:RSET\r\n' 'e:250' \
	's:MAIL FROM:<a@example.net>\r\n' 'e:250' \
	"s:$BAD_RCPT_ZONE\\r\\n" 'e:' "s:$BAD_RCPT_HOST\\r\\n" 'e:' \
	"s:$BAD_RCPT_ROUTE\\r\\n" 'e:250' \
	's:DATA\r\n' 'e:354' "F:$LAB_DIR/msg-pass" 'e:250' 's:QUIT\r\n' 'e:221'; then
	pass "pass: the dialogue completes with the MX's own answers"
else
	fail "pass: dialogue"; lab_chat_show pass 20
fi
for l in "$BAD_MAIL_SCOPED" "$BAD_RCPT_ZONE" "$BAD_RCPT_HOST" "$BAD_RCPT_ROUTE"; do
	check "pass: '$l' reached the MX" seen_by_mx "$mark" "$l"
done
check "pass: no 553 from the gateway in the transcript" \
	test -z "$(grep -F "<< '553" "$LAB_DIR/chat-pass.out")"
check "pass: the source-routed recipient is delivered (the MX strips the route)" \
	wait_for 50 delivered pass

[ "$FAIL" -eq 0 ] || lab_dump_logs 20
lab_summary
