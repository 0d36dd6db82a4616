#!/usr/bin/env bash
# e2e: the real client's identity for servers that trust the gateway.
# A v4-only client (c4, 192.0.2.10) reaches the v6-only Postfix MX (s6)
# through smtp64d, which connects from 2001:db8::1.  The MX has an access
# rule on the client's IPv4 address (a PREPEND header), so the rule is
# seen applied in the delivered message.  Proves, separately for XCLIENT,
# PROXY v1 and PROXY v2:
#  - the client appears in Postfix's log and in the Received: header with
#    its own IPv4 address, not the gateway's IPv6 one, and Postfix's
#    access rule on that address is applied;
# and, for XCLIENT:
#  - a server that does not trust the gateway offers no XCLIENT: the
#    message is still delivered (as from the gateway) and the gateway logs
#    it, or with identity_required = yes the client gets 421 4.7.0 and
#    nothing is delivered;
#  - a server that offers XCLIENT but refuses it (a scripted server): the
#    client never sees the refusal and its EHLO is answered as usual;
#  - a client's own XCLIENT, or PROXY header, gets a clear refusal and
#    nothing of it reaches the server.
set -u
. "$(dirname "$0")/../lab/lib.sh"

lab_init
lab_topology c4 gw s6 || { fail "lab topology"; lab_summary; exit 1; }

MAILLOG=""
conf=$LAB_DIR/gw.conf
RULE_HDR="X-Lab-Client-Rule: matched 192.0.2.10"

# mx_start EXTRA: (re)starts the s6 Postfix with the client access rule,
# IPv4 enabled (XCLIENT ADDR and PROXY TCP4 carry an IPv4 address, which
# Postfix accepts only with inet_protocols including ipv4), and EXTRA.
mx_start() {
	lab_postfix_stop s6
	mkdir -p "$LAB_DIR/postfix-s6/etc"
	printf '%s PREPEND %s\n' "$C4_ADDR" "$RULE_HDR" \
	    >"$LAB_DIR/postfix-s6/etc/client_access"
	lab_postfix_start s6 mx6.example.org "inet_protocols = all
smtpd_client_restrictions = check_client_access cidr:$LAB_DIR/postfix-s6/etc/client_access, permit
$1" || return 1
	MAILLOG=${LAB_PF_DIR[s6]}/maillog
}

# gw_start IDENTITY [EXTRA]: (re)starts smtp64d, with identity set in the
# pair's own section (the per-pair key) and EXTRA in [gateway].
gw_start() {
	lab_smtp64d_stop
	lab_gw_conf "$conf" always "source_ipv6 = $GW_S6_ADDR
${2:-}"
	sed -i "/^\[pair mx6\]/a identity = $1" "$conf"
	lab_smtp64d_start "$conf"
}

# delivered ID: the Maildir file of message ID (waits up to 10 s).
delivered() { wait_for 100 maildir_find s6 "$1" && maildir_find s6 "$1"; }

# identity_case NAME IDENTITY MX_EXTRA: one message through the gateway;
# Postfix must see 192.0.2.10.
identity_case() {
	local name=$1 id=$2 mark f rcv
	echo "# $name"
	if ! mx_start "$3"; then
		fail "$name: Postfix starts"
		lab_dump_logs
		return
	fi
	gw_start "$id" || { fail "$name: smtp64d starts"; return; }
	mark=$(lab_pf_mark s6)
	check "$name: message delivered" lab_swaks "$NS_C4" "$MX6_V4" \
	    client.example.net "$name" "$LAB_DIR/swaks-$name.out"
	f=$(delivered "$name") || { fail "$name: in the Maildir"; return; }
	rcv=$(received_header "$f")
	echo "    $rcv"
	check "$name: Received: header names 192.0.2.10" \
	    grep -qF "[$C4_ADDR])" <<<"$rcv"
	check "$name: Received: header does not name the gateway" \
	    test -z "$(grep -F "$GW_S6_ADDR" <<<"$rcv")"
	check "$name: the client's own HELO reached Postfix" \
	    grep -qF "from client.example.net " <<<"$rcv"
	check "$name: the access rule on 192.0.2.10 applied" \
	    grep -qF "$RULE_HDR" "$f"
	check "$name: Postfix logs client=unknown[192.0.2.10]" \
	    grep -qF "client=unknown[$C4_ADDR]" <(lab_pf_since s6 "$mark")
	check "$name: Postfix never logs the gateway as the client" \
	    test -z "$(lab_pf_since s6 "$mark" | grep -F "client=unknown[$GW_S6_ADDR]")"
}

XC_TRUST="smtpd_authorized_xclient_hosts = [$GW_S6_ADDR]/128"

identity_case xclient xclient "$XC_TRUST"
check "xclient: smtp64d logs the accepted identity" \
    grep -q 'event=identity mode=xclient result=accepted attrs=NAME,ADDR,PORT,PROTO,HELO,DESTADDR,DESTPORT' "$SMTP64D_LOG"
identity_case proxy-v1 proxy-v1 "smtpd_upstream_proxy_protocol = haproxy"
identity_case proxy-v2 proxy-v2 "smtpd_upstream_proxy_protocol = haproxy"

# tls_case MODE: XCLIENT with STARTTLS under tls = MODE; the message goes
# inside TLS on both legs.
tls_case() {
	local mode=$1 f rcv n
	echo "# xclient, tls = $mode"
	lab_smtp64d_stop
	lab_gw_conf_tls "$conf" "$mode" "identity = xclient" \
	    "source_ipv6 = $GW_S6_ADDR"
	lab_smtp64d_start "$conf" || { fail "tls $mode: smtp64d starts"; return; }
	n=$(wc -l <"$SMTP64D_LOG")
	check "tls $mode: message delivered (swaks --tls)" lab_swaks "$NS_C4" \
	    "$MX6_V4" client.example.net "tls-$mode" "$LAB_DIR/swaks-tls-$mode.out" \
	    --tls
	f=$(delivered "tls-$mode") && rcv=$(received_header "$f") || rcv=""
	echo "    $rcv"
	check "tls $mode: the server's leg was TLS" grep -q 'with ESMTPS' <<<"$rcv"
	check "tls $mode: Received: header names 192.0.2.10" \
	    grep -qF "[$C4_ADDR])" <<<"$rcv"
	check "tls $mode: the access rule on 192.0.2.10 applied" \
	    grep -qF "$RULE_HDR" "$f"
	check "tls $mode: the client's own post-TLS HELO reached Postfix" \
	    grep -qF "from client.example.net " <<<"$rcv"
	# Postfix keeps XCLIENT's attributes across STARTTLS (and offers
	# XCLIENT no more inside TLS): accepted once, before it, it stands.
	check "tls $mode: XCLIENT accepted once, in clear text" \
	    test "$(tail -n "+$((n + 1))" "$SMTP64D_LOG" |
	        grep -c 'result=accepted.* tls=no')" -eq 1
	check "tls $mode: no XCLIENT failure logged" \
	    test -z "$(tail -n "+$((n + 1))" "$SMTP64D_LOG" |
	        grep -E 'result=(not_offered|refused|accepted.* tls=yes)')"
}

if mx_start "$XC_TRUST" && lab_tls_certs && lab_postfix_tls s6; then
	tls_case terminate
	tls_case passthrough
else
	fail "Postfix with TLS trusting the gateway starts"
fi

echo "# xclient with a server that does not trust the gateway"
if mx_start ""; then
	gw_start xclient || fail "smtp64d starts"
	check "untrusted: message still delivered" lab_swaks "$NS_C4" \
	    "$MX6_V4" client.example.net untrusted "$LAB_DIR/swaks-untrusted.out"
	f=$(delivered untrusted) && rcv=$(received_header "$f") || rcv=""
	echo "    $rcv"
	check "untrusted: delivered as from the gateway" \
	    grep -qF "[IPv6:$GW_S6_ADDR])" <<<"$rcv"
	check "untrusted: the access rule for 192.0.2.10 did not apply" \
	    test -z "$(grep -F "$RULE_HDR" "$f" 2>/dev/null)"
	check "untrusted: smtp64d logs that XCLIENT was not offered" \
	    grep -q 'event=identity mode=xclient result=not_offered .*action=continue_as_gateway' "$SMTP64D_LOG"

	gw_start xclient "identity_required = yes" || fail "smtp64d starts"
	mark=$(lab_pf_mark s6)
	lab_swaks "$NS_C4" "$MX6_V4" client.example.net required \
	    "$LAB_DIR/swaks-required.out"
	check "required: the client gets 421 4.7.0" \
	    grep -q '<\*\* *421 4.7.0 .*identity' "$LAB_DIR/swaks-required.out"
	sleep 1
	check "required: nothing delivered" test -z "$(maildir_find s6 required)"
	check "required: the client's EHLO never reached Postfix" \
	    test -z "$(lab_pf_since s6 "$mark" | grep -F client.example.net)"
	check "required: smtp64d logs the close" \
	    grep -q 'event=identity mode=xclient result=not_accepted action=close reply=421' "$SMTP64D_LOG"
else
	fail "untrusted Postfix starts"
fi

echo "# xclient offered but refused (scripted server)"
lab_postfix_stop s6
gw_start xclient || fail "smtp64d starts"
if lab_scene refused \
    's:220\x20mx6.example.org\x20ESMTP\r\n l:EHLO\x20gw.example.net s:250-mx6.example.org\r\n250-XCLIENT\x20ADDR\x20HELO\r\n250\x208BITMIME\r\n l:XCLIENT\x20ADDR=192.0.2.10\x20HELO=client.example.net s:550\x205.7.0\x20Error:\x20insufficient\x20authorization\r\n l:EHLO\x20gw.example.net s:250-mx6.example.org\r\n250\x208BITMIME\r\n l:QUIT s:221\x20bye\r\n' \
    'e:220' 's:EHLO client.example.net\r\n' 'e:250' \
    's:QUIT\r\n' 'e:221'; then
	pass "refused: the client sees only its EHLO's reply, the server got XCLIENT then the rewritten EHLO"
else
	fail "refused: scripted exchange"
fi
check "refused: smtp64d logs the refusal" \
    grep -q 'event=identity mode=xclient result=refused attrs=ADDR,HELO' "$SMTP64D_LOG"
check "refused: the 550 never reached the client" \
    test -z "$(grep -F 'insufficient' "$LAB_DIR/cli-refused.out")"

echo "# xclient to a Postfix whose inet_protocols lacks the client's family"
if mx_start "$XC_TRUST
inet_protocols = ipv6"; then
	gw_start xclient || fail "smtp64d starts"
	mark=$(lab_pf_mark s6)
	check "family: message still delivered" lab_swaks "$NS_C4" \
	    "$MX6_V4" client.example.net family "$LAB_DIR/swaks-family.out"
	check "family: Postfix refused XCLIENT ADDR=192.0.2.10 (smtp64d logs it)" \
	    test "$(grep -c 'result=refused attrs=NAME,ADDR' "$SMTP64D_LOG")" -ge 1
	f=$(delivered family) && rcv=$(received_header "$f") || rcv=""
	check "family: delivered as from the gateway" \
	    grep -qF "[IPv6:$GW_S6_ADDR])" <<<"$rcv"
else
	fail "Postfix with inet_protocols = ipv6 starts"
fi

echo "# a client that states its own identity"
# The MX greets after 1 s (a "sleep" client restriction evaluated at
# connect time), so a client that does not wait is sure to speak first.
if mx_start "$XC_TRUST
smtpd_delay_reject = no
smtpd_client_restrictions = sleep 1, permit"; then
	gw_start xclient || fail "smtp64d starts"
	mark=$(lab_pf_mark s6)
	lab_chat "$NS_C4" forged "$MX6_V4" 'e:220' \
	    's:XCLIENT ADDR=198.51.100.99 NAME=forged.example.net\r\n' 'e:502 5.5.1' \
	    's:XFORWARD ADDR=198.51.100.99\r\n' 'e:502 5.5.1' \
	    's:PROXY TCP4 198.51.100.99 192.0.2.30 1234 25\r\n' 'e:500 5.5.1' \
	    's:QUIT\r\n' 'e:221'
	check "forged: XCLIENT and XFORWARD get 502, PROXY gets 500" test $? -eq 0
	lab_chat_show forged 8
	lab_chat "$NS_C4" pregreet "$MX6_V4" \
	    's:PROXY TCP4 198.51.100.99 192.0.2.30 1234 25\r\n' 'e:554 5.5.1' 'c'
	check "forged: a PROXY header before the greeting gets 554 and a close" \
	    test $? -eq 0
	lab_chat "$NS_C4" pregreet2 "$MX6_V4" \
	    's:\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\xc6\x33\x64\x63\xc0\x00\x02\x1e\x04\xd2\x00\x19' \
	    'e:554 5.5.1' 'c'
	check "forged: a PROXY v2 header before the greeting gets 554 and a close" \
	    test $? -eq 0
	sleep 1
	check "forged: the forged address never reached Postfix" \
	    test -z "$(lab_pf_since s6 "$mark" | grep -F 198.51.100.99)"
	check "forged: Postfix saw no XCLIENT but the gateway's own" \
	    test -z "$(lab_pf_since s6 "$mark" | grep -iF forged.example.net)"
else
	fail "trusting Postfix starts again"
fi

if [ "$FAIL" -gt 0 ]; then
	lab_dump_logs
	tail -n 30 "$SMTP64D_LOG"
fi
lab_summary
