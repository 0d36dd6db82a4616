#!/usr/bin/env bash
# e2e: NAT64 prefixes (RFC 6052) and cross-realm policy, with real Postfix.
# An IPv6-only client (c6) reaches the IPv4-only Postfix MX s4
# (198.51.100.25) through IPv4-embedded IPv6 addresses; the gateway
# receives connections to every address under a prefix through an AnyIP
# route (ip -6 route add local PREFIX dev lo), no TPROXY needed.
#  - network-specific prefixes of length 96, 64 and 40 (the u octet, bits
#    64..71, splits the IPv4 address at /40): delivered, HELO rewritten;
#  - the well-known prefix 64:ff9b::/96 refuses non-global IPv4 (RFC 6052
#    §3.1) with 554 5.4.4: the lab's own 198.51.100.25 (documentation,
#    RFC 5737), 10.0.0.25 (RFC 1918), 127.0.0.1 (loopback); nothing
#    reaches the MX, then 503 until QUIT;
#  - with allow_destinations = 198.51.100.0/24, 10.0.0.0/8 the first is
#    delivered and the second is attempted (a blackhole route in gw, so
#    nothing leaves: 421 4.4.x instead of 554 5.4.4); loopback stays
#    refused, listed or not;
#  - under any prefix, a destination that is the gateway host itself, its
#    link or a group (127.0.0.2, 0.0.0.0, 169.254.1.1, 224.0.0.25) is
#    refused at connect time with 554 5.4.4, reason=destination_not_host
#    and an event=refuse_detail line naming dest and its range
#    (nat_scope_dest_refused, the test every destination passes);
#  - a client outside a prefix's or a pair's allow_clients: 554 5.7.1,
#    503 until QUIT, 221; a [nat64] section without allow_clients is a
#    configuration error (the prefix direction is never open).
# No address outside the documentation ranges is ever configured on an
# interface; 10.0.0.0/8 only appears in a blackhole route.
set -u
. "$(dirname "$0")/../lab/lib.sh"

lab_init
lab_topology c6 gw s4 || { fail "lab topology"; lab_summary; exit 1; }
lab_postfix_start s4 || { fail "Postfix starts on s4"; lab_dump_logs; lab_summary; exit 1; }
pass "Postfix starts on s4 ($S4_ADDR)"

WKP=64:ff9b::/96
NSP96=2001:db8:64::/96
NSP64=2001:db8:64:1::/64
NSP40=2001:db8:100::/40
NSP_OTHERS=2001:db8:46::/96        # allow_clients excludes c6
PRIV=10.0.0.25                     # RFC 1918: blackholed in gw, never configured

# The test's own RFC 6052 arithmetic must reproduce RFC 6052 §2.4 (the
# /64 row in RFC 5952 form: "::" never stands for a single zero field).
table_ok() {
	local row p want
	for row in "2001:db8::/32 2001:db8:c000:221::" \
		"2001:db8:100::/40 2001:db8:1c0:2:21::" \
		"2001:db8:122::/48 2001:db8:122:c000:2:2100::" \
		"2001:db8:122:300::/56 2001:db8:122:3c0:0:221::" \
		"2001:db8:122:344::/64 2001:db8:122:344:c0:2:2100:0" \
		"2001:db8:122:344::/96 2001:db8:122:344::c000:221" \
		"64:ff9b::/96 64:ff9b::c000:221"; do
		p=${row% *} want=${row#* }
		[ "$(rfc6052_embed "$p" 192.0.2.33)" = "$want" ] || return 1
	done
}
check "lab helper rfc6052_embed reproduces the RFC 6052 §2.4 table" table_ok

A_WKP=$(rfc6052_embed "$WKP" "$S4_ADDR")         # 64:ff9b::c633:6419
A_96=$(rfc6052_embed "$NSP96" "$S4_ADDR")        # 2001:db8:64::c633:6419
A_64=$(rfc6052_embed "$NSP64" "$S4_ADDR")        # 2001:db8:64:1:c6:3364:1900:0
A_40=$(rfc6052_embed "$NSP40" "$S4_ADDR")        # 2001:db8:1c6:3364:19::
A_OTHERS=$(rfc6052_embed "$NSP_OTHERS" "$S4_ADDR")
A_WKP_PRIV=$(rfc6052_embed "$WKP" "$PRIV")       # 64:ff9b::a00:19
A_WKP_LO=$(rfc6052_embed "$WKP" 127.0.0.1)     # 64:ff9b::7f00:1
A_96_PRIV=$(rfc6052_embed "$NSP96" "$PRIV")
check "64:ff9b::198.51.100.25 is $A_WKP" test "$A_WKP" = 64:ff9b::c633:6419
echo "# /96 $A_96, /64 $A_64, /40 $A_40"

# AnyIP: every address under each prefix is local to gw.
for p in $WKP $NSP96 $NSP64 $NSP40 $NSP_OTHERS; do
	ip -n "$NS_GW" -6 route add local "$p" dev lo ||
		fail "AnyIP route for $p"
done
ip -n "$NS_GW" -4 route add blackhole 10.0.0.0/8
# A pair that nobody may use.
CLOSED_V6=2001:db8:1::26
lab_addr "$NS_GW" to-c6 "$CLOSED_V6/64"

conf=$LAB_DIR/smtp64.conf
write_conf() { # write_conf WKP_ALLOW_DESTINATIONS
	cat >"$conf" <<EOF
[gateway]
fqdn = gw.example.net
listen = 0.0.0.0:25, [::]:25
connect_timeout_s = 3

[nat64 wkp]
prefix = $WKP
allow_clients = 2001:db8:1::/48
${1:+allow_destinations = $1}

[nat64 nsp96]
prefix = $NSP96
allow_clients = 2001:db8:1::/48

[nat64 nsp64]
prefix = $NSP64
allow_clients = 2001:db8:1::/48

[nat64 nsp40]
prefix = $NSP40
allow_clients = 2001:db8:1::/48

[nat64 others]
prefix = $NSP_OTHERS
allow_clients = 2001:db8:9::/48, 203.0.113.0/24

[pair closed]
ipv4 = 198.51.100.26
ipv6 = $CLOSED_V6
allow_clients = none
EOF
}

# Safe default: a prefix section that names no clients does not load.
printf '[gateway]\nfqdn = gw.example.net\n\n[nat64 open]\nprefix = %s\n' \
	"$NSP96" >"$LAB_DIR/open.conf"
"$SMTP64D" -t -c "$LAB_DIR/open.conf" >"$LAB_DIR/open.out" 2>&1
rc=$?
if check "smtp64d -t: [nat64] without allow_clients is refused (rc=$rc)" \
	test "$rc" -ne 0; then
	check "  ... and the message names allow_clients" \
		grep -q allow_clients "$LAB_DIR/open.out"
else
	sed 's/^/    | /' "$LAB_DIR/open.out"
fi

write_conf ""
lab_smtp64d_start "$conf" "$LAB_DIR/smtp64d-1.log" ||
	{ fail "smtp64d starts"; lab_dump_logs; lab_summary; exit 1; }
pass "smtp64d starts (WKP without allow_destinations)"

out=$LAB_DIR/swaks.out
delivered() { [ -n "$(maildir_find s4 "X-Lab-Id: $1")" ]; }
# deliver NAME ADDR: a literal HELO (refused by the MX when it arrives
# unchanged) through ADDR must land, "from gw.example.net".
deliver() {
	local name=$1 addr=$2 id="$1-$LAB_TAG" rc f hdr
	lab_swaks "$NS_C6" "$addr" '[IPv6:2001:db8:1::10]' "$id" "$out"
	rc=$?
	check "$name: swaks via $addr succeeds (rc=$rc)" test "$rc" -eq 0 ||
		sed 's/^/    | /' "$out" | tail -n 8
	if check "$name: the message lands on the IPv4-only MX" \
		wait_for 50 delivered "$id"; then
		f=$(maildir_find s4 "X-Lab-Id: $id")
		hdr=$(received_header "$f")
		echo "    ${hdr:0:140}"
		check "$name: Received: from gw.example.net ([$GW_S4_ADDR])" \
			grep -qE "^Received: from gw\.example\.net \([^)]*\[$GW_S4_ADDR\]\)" <<<"$hdr"
	else
		fail "$name: Received: from gw.example.net"
	fi
}
# logged PATTERN...: every fixed string is on one line of the daemon log.
logged() {
	local l
	l=$(cat "$SMTP64D_LOG")
	for p in "$@"; do l=$(grep -F -- "$p" <<<"$l"); done
	[ -n "$l" ]
}
wait_logged() { wait_for 30 logged "$@"; }

echo "# network-specific prefixes: /96, /64 (u octet), /40 (u octet inside the IPv4 address)"
deliver nsp96 "$A_96"
check "nsp96: logged open local=[$A_96]:25 dest=$S4_ADDR:25 via nat64:nsp96" \
	wait_logged "event=open" "local=[$A_96]:25" "dest=$S4_ADDR:25" "via=nat64:nsp96"
check "nsp96: helo rewritten to gw.example.net" \
	wait_logged "event=helo" "helo_in=[IPv6:2001:db8:1::10]" "helo_out=gw.example.net"
deliver nsp64 "$A_64"
check "nsp64: logged dest=$S4_ADDR:25 via nat64:nsp64" \
	wait_logged "event=open" "local=[$A_64]:25" "dest=$S4_ADDR:25" "via=nat64:nsp64"
deliver nsp40 "$A_40"
check "nsp40: logged dest=$S4_ADDR:25 via nat64:nsp40" \
	wait_logged "event=open" "local=[$A_40]:25" "dest=$S4_ADDR:25" "via=nat64:nsp40"

echo "# the well-known prefix refuses non-global IPv4 (RFC 6052 §3.1)"
mark=$(lab_pf_mark s4)
if lab_chat "$NS_C6" wkp-doc "$A_WKP" 'e:554 5.4.4' 's:EHLO c6.example.net\r\n' \
	'e:503' 's:MAIL FROM:<a@example.net>\r\n' 'e:503' 's:QUIT\r\n' 'e:221' 'c'; then
	pass "WKP + 198.51.100.25 (documentation range): 554 5.4.4, 503 until QUIT, 221"
else
	fail "WKP + 198.51.100.25: 554 5.4.4 dialogue"; lab_chat_show wkp-doc
fi
check "  ... logged reason=nonglobal_destination for local=[$A_WKP]:25" \
	wait_logged "event=refuse" "local=[$A_WKP]:25" "reason=nonglobal_destination"
check "  ... the scope is named (destination_scope=documentation)" \
	wait_logged "destination_scope=documentation"
if lab_chat "$NS_C6" wkp-priv "$A_WKP_PRIV" 'e:554 5.4.4' 's:QUIT\r\n' 'e:221' 'c'; then
	pass "WKP + $PRIV (RFC 1918): 554 5.4.4"
else
	fail "WKP + $PRIV: 554 5.4.4"; lab_chat_show wkp-priv
fi
check "  ... logged reason=nonglobal_destination for local=[$A_WKP_PRIV]:25" \
	wait_logged "event=refuse" "local=[$A_WKP_PRIV]:25" "reason=nonglobal_destination"
if lab_chat "$NS_C6" wkp-lo "$A_WKP_LO" 'e:554 5.4.4' 's:QUIT\r\n' 'e:221' 'c'; then
	pass "WKP + 127.0.0.1 (loopback): 554 5.4.4"
else
	fail "WKP + 127.0.0.1: 554 5.4.4"; lab_chat_show wkp-lo
fi
check "  ... logged reason=destination_not_host for local=[$A_WKP_LO]:25" \
	wait_logged "event=refuse" "local=[$A_WKP_LO]:25" "reason=destination_not_host"
sleep 0.5
check "no refused session reached the MX (no 'connect from' in its log)" \
	test -z "$(lab_pf_since s4 "$mark" | grep 'connect from')"

echo "# a network-specific prefix may carry non-global IPv4 (only the WKP may not)"
if lab_chat "$NS_C6" nsp-priv "$A_96_PRIV" 'e:421 4.4.' 'c'; then
	pass "nsp96 + $PRIV: attempted (421 4.4.x from the blackhole), not 554"
else
	fail "nsp96 + $PRIV: want 421 4.4.x"; lab_chat_show nsp-priv
fi
check "  ... logged open dest=$PRIV:25" \
	wait_logged "event=open" "local=[$A_96_PRIV]:25" "dest=$PRIV:25"
# ... but never "this host" or "this link": 127.0.0.2 under a network-
# specific prefix would reach an MTA on the gateway host that trusts
# loopback.
A_96_LO=$(rfc6052_embed "$NSP96" 127.0.0.2)
if lab_chat "$NS_C6" nsp-lo "$A_96_LO" 'e:554 5.4.4' 's:QUIT\r\n' 'e:221' 'c'; then
	pass "nsp96 + 127.0.0.2 (loopback): 554 5.4.4 under any prefix"
else
	fail "nsp96 + 127.0.0.2: want 554 5.4.4"; lab_chat_show nsp-lo
fi
check "  ... logged reason=destination_not_host for local=[$A_96_LO]:25" \
	wait_logged "event=refuse" "local=[$A_96_LO]:25" "reason=destination_not_host"
check "  ... refuse_detail names dest=127.0.0.2 destination_scope=loopback" \
	wait_logged "event=refuse_detail" "dest=127.0.0.2" "destination_scope=loopback"
# The same test for "this network", the link and a group.
for row in 0.0.0.0:this-network 169.254.1.1:link-local 224.0.0.25:multicast; do
	v4=${row%%:*} scope=${row#*:}
	a=$(rfc6052_embed "$NSP96" "$v4")
	if lab_chat "$NS_C6" "nsp-$scope" "$a" 'e:554 5.4.4' 's:EHLO c6.example.net\r\n' \
		'e:503' 's:QUIT\r\n' 'e:221' 'c'; then
		pass "nsp96 + $v4 ($scope): 554 5.4.4, 503 until QUIT"
	else
		fail "nsp96 + $v4: want 554 5.4.4"; lab_chat_show "nsp-$scope"
	fi
	check "  ... logged reason=destination_not_host for local=[$a]:25" \
		wait_logged "event=refuse" "local=[$a]:25" "reason=destination_not_host"
	check "  ... refuse_detail dest=$v4 destination_scope=$scope" \
		wait_logged "event=refuse_detail" "dest=$v4" "destination_scope=$scope"
done
sleep 0.5
check "no host-local destination was connected to (no event=open for them)" \
	test -z "$(grep -F 'event=open' "$SMTP64D_LOG" | grep -E 'dest=(127\.|0\.0\.0\.0|169\.254\.|224\.)')"

echo "# clients that may not use a mapping: 554 5.7.1"
if lab_chat "$NS_C6" others "$A_OTHERS" 'e:554 5.7.1' 's:EHLO c6.example.net\r\n' \
	'e:503' 's:MAIL FROM:<a@example.net>\r\n' 'e:503' \
	's:RCPT TO:<user@example.org>\r\n' 'e:503' 's:QUIT\r\n' 'e:221' 'c'; then
	pass "prefix whose allow_clients excludes c6: 554 5.7.1, 503 until QUIT, 221"
else
	fail "prefix allow_clients refusal"; lab_chat_show others
fi
check "  ... logged reason=client_not_allowed client=[$C6_ADDR]" \
	wait_logged "event=refuse" "client=[$C6_ADDR]:" "local=[$A_OTHERS]:25" \
	"reason=client_not_allowed"
if lab_chat "$NS_C6" closed "$CLOSED_V6" 'e:554 5.7.1' 's:HELO c6.example.net\r\n' \
	'e:503' 's:QUIT\r\n' 'e:221' 'c'; then
	pass "pair with allow_clients = none: 554 5.7.1, 503, 221"
else
	fail "pair allow_clients refusal"; lab_chat_show closed
fi
check "  ... logged reason=client_not_allowed for local=[$CLOSED_V6]:25" \
	wait_logged "event=refuse" "local=[$CLOSED_V6]:25" "reason=client_not_allowed"
if lab_chat "$NS_C6" nomap "$GW_C6_ADDR" 'e:554 5.4.4' 's:QUIT\r\n' 'e:221' 'c'; then
	pass "a gateway address in no pair and no prefix: 554 5.4.4"
else
	fail "unmapped address"; lab_chat_show nomap
fi
check "  ... logged reason=no_pair" \
	wait_logged "event=refuse" "local=[$GW_C6_ADDR]:25" "reason=no_pair"

echo "# allow_destinations = 198.51.100.0/24, 10.0.0.0/8, 127.0.0.0/8 under the well-known prefix"
lab_smtp64d_stop
write_conf "198.51.100.0/24, 10.0.0.0/8, 127.0.0.0/8"
lab_smtp64d_start "$conf" "$LAB_DIR/smtp64d-2.log" ||
	{ fail "smtp64d restarts"; lab_dump_logs; lab_summary; exit 1; }
pass "smtp64d restarts with allow_destinations"
deliver wkp "$A_WKP"
check "wkp: logged open local=[$A_WKP]:25 dest=$S4_ADDR:25 via nat64:wkp" \
	wait_logged "event=open" "local=[$A_WKP]:25" "dest=$S4_ADDR:25" "via=nat64:wkp"
if lab_chat "$NS_C6" wkp-priv2 "$A_WKP_PRIV" 'e:421 4.4.' 'c'; then
	pass "WKP + $PRIV allowed: attempted (421 4.4.x from the blackhole), not 554 5.4.4"
else
	fail "WKP + $PRIV allowed: want 421 4.4.x"; lab_chat_show wkp-priv2
fi
check "  ... logged open dest=$PRIV:25, no refusal" \
	wait_logged "event=open" "local=[$A_WKP_PRIV]:25" "dest=$PRIV:25"
check "  ... no nonglobal_destination refusal this time" \
	test -z "$(grep -F 'reason=nonglobal_destination' "$SMTP64D_LOG")"
if lab_chat "$NS_C6" wkp-lo2 "$A_WKP_LO" 'e:554 5.4.4' 's:QUIT\r\n' 'e:221' 'c'; then
	pass "WKP + 127.0.0.1 still refused (listed in allow_destinations or not)"
else
	fail "WKP + 127.0.0.1 after allow_destinations"; lab_chat_show wkp-lo2
fi
check "  ... logged reason=destination_not_host for local=[$A_WKP_LO]:25" \
	wait_logged "event=refuse" "local=[$A_WKP_LO]:25" "reason=destination_not_host"
check "smtp64d still running" kill -0 "$SMTP64D_PID"

[ "$FAIL" -eq 0 ] || lab_dump_logs 25
lab_summary
