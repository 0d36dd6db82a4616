#!/usr/bin/env bash
# e2e: the real client's identity in route mode (issue 15).  A lab
# dnsmasq publishes a.example's MX host, an IPv6-only Postfix (sa,
# 2001:db8:a::25) with an access rule on the client's IPv4 address (a
# PREPEND header, so the rule is seen applied in the delivered message).
# An IPv4-only client (c4, 192.0.2.10) sends through the route address
# 192.0.2.40; the gateway resolves the MX and connects from
# 2001:db8:a::1.  Proves, with [route] identity keys:
#  - identity = xclient: the opener reads the offer from the server's
#    EHLO reply, sends XCLIENT before MAIL, absorbs the new 220 and says
#    EHLO again (also inside the upstream TLS the opener takes); Postfix
#    logs and writes in Received: the client's own IPv4 address and HELO,
#    and applies its access rule on that address;
#  - identity = proxy-v1 and proxy-v2 (smtpd_upstream_proxy_protocol =
#    haproxy): the same, from the header written first on the leg;
#  - identity off (the default): Postfix logs the gateway's address;
#  - xclient against a Postfix that does not trust the gateway: delivered
#    as the gateway, and logged; with identity_required = yes the client's
#    RCPT gets 451 4.7.0 and nothing is delivered.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null
. "$here/../lab/lib.sh"

ROUTE4=192.0.2.40 DNS4=192.0.2.53 C4=192.0.2.10
SA=2001:db8:a::25 GW6=2001:db8:a::1

lab_init
ns() { lab_nsname "$1"; }
if ! lab_route_front "$ROUTE4" "$DNS4" "$C4" sa ||
	! lab_link "$NS_GW" to-sa "$(ns sa)" eth0 ||
	! lab_addr "$NS_GW" to-sa $GW6/64 || ! lab_addr "$(ns sa)" eth0 $SA/64; then
	fail "links and addresses"
	lab_summary
	exit 1
fi
if ! lab_dnsmasq_start gw "$DNS4" --local=/example/ --local-ttl=300 \
	--mx-host=a.example,mx.a.example,10 --host-record=mx.a.example,$SA; then
	fail "dnsmasq starts"
	lab_summary
	exit 1
fi
pass "dnsmasq publishes a.example's IPv6-only MX host"
lab_tls_certs || { fail "certificates"; lab_summary; exit 1; }

RULE_HDR="X-Lab-Client-Rule: matched $C4"
XC_TRUST="smtpd_authorized_xclient_hosts = [$GW6]/128"
MAILLOG=""
# mx_start EXTRA: (re)starts a.example's Postfix with the client access
# rule, IPv4 enabled (XCLIENT ADDR and PROXY TCP4 carry an IPv4 address,
# which Postfix takes only with inet_protocols including ipv4), and EXTRA.
mx_start() {
	lab_postfix_stop sa
	mkdir -p "$LAB_DIR/postfix-sa/etc"
	printf '%s PREPEND %s\n' "$C4" "$RULE_HDR" >"$LAB_DIR/postfix-sa/etc/client_access"
	lab_postfix_at sa sa $SA a.example mx.a.example "inet_protocols = all
smtpd_client_restrictions = check_client_access cidr:$LAB_DIR/postfix-sa/etc/client_access, permit
$1" || return 1
	MAILLOG=${LAB_PF_DIR[sa]}/maillog
}

conf=$LAB_DIR/gw.conf
# gw_start IDENTITY_LINES [ROUTE_LINES]: (re)starts smtp64d with one
# [route]; the identity keys go into the route's own section.
gw_start() {
	lab_smtp64d_stop
	cat >"$conf" <<EOF
[gateway]
fqdn = gw.example.net
listen = 0.0.0.0:25
dns_servers = $DNS4
dns_timeout_ms = 1000
connect_timeout_s = 5
log_level = debug

[route tunnel]
address = $ROUTE4
domains = a.example
$1
${2:-}
EOF
	lab_smtp64d_start "$conf"
}

send() { # ID [SWAKS-ARGS]
	local id=$1
	shift
	ip netns exec "$(ns c4)" swaks --server $ROUTE4 --port 25 \
		--helo client.example.net --from a@example.net --to user@a.example \
		--header "X-Lab-Id: $id" --timeout 20 "$@" </dev/null \
		>"$LAB_DIR/swaks-$id.out" 2>&1
}
delivered() { wait_for 100 maildir_find_a "$1" && maildir_find_a "$1"; }
maildir_find_a() {
	grep -rlF -- "X-Lab-Id: $1" "$(maildir_dir sa a.example)"/new 2>/dev/null | head -n 1 | grep .
}

# identity_case NAME IDENTITY MX_EXTRA [SWAKS-ARGS]: one message through
# the route; Postfix must see 192.0.2.10.
identity_case() {
	local name=$1 idm=$2 mx=$3 mark f rcv
	shift 3
	echo "# $name"
	mx_start "$mx" || { fail "$name: Postfix starts"; lab_dump_logs; return 1; }
	gw_start "identity = $idm" || { fail "$name: smtp64d starts"; return 1; }
	mark=$(lab_pf_mark sa)
	check "$name: message delivered" send "$name" "$@"
	f=$(delivered "$name") || { fail "$name: in the Maildir"; return 1; }
	rcv=$(received_header "$f")
	echo "    $rcv"
	check "$name: Received: header names $C4" grep -qF "[$C4])" <<<"$rcv"
	check "$name: Received: header does not name the gateway" \
		test -z "$(grep -F "$GW6" <<<"$rcv")"
	check "$name: the client's own HELO reached Postfix" \
		grep -qF "from client.example.net " <<<"$rcv"
	check "$name: the access rule on $C4 applied" grep -qF "$RULE_HDR" "$f"
	check "$name: Postfix logs client=unknown[$C4]" \
		grep -qF "client=unknown[$C4]" <(lab_pf_since sa "$mark")
	check "$name: Postfix never logs the gateway as the client" \
		test -z "$(lab_pf_since sa "$mark" | grep -F "client=unknown[$GW6]")"
	check "$name: smtp64d names the mode at open" \
		grep -q "via=route:tunnel tls=none identity=$idm" "$SMTP64D_LOG"
}

identity_case xclient xclient "$XC_TRUST"
check "xclient: smtp64d logs the accepted identity (every attribute)" \
	grep -q "event=identity mode=xclient result=accepted attrs=NAME,ADDR,PORT,PROTO,HELO,DESTADDR,DESTPORT dest=\[$SA\]:25 tls=no action=none" "$SMTP64D_LOG"
check "xclient: XCLIENT went before MAIL, then EHLO again (Postfix's log)" \
	grep -q "connect from unknown\[$GW6\]" "$MAILLOG"
identity_case proxy-v1 proxy-v1 "smtpd_upstream_proxy_protocol = haproxy"
identity_case proxy-v2 proxy-v2 "smtpd_upstream_proxy_protocol = haproxy"

echo "# xclient inside the upstream TLS the opener takes"
if mx_start "$XC_TRUST" && lab_postfix_tls sa; then
	gw_start "identity = xclient" "tls = terminate
tls_cert_file = $LAB_TLS_DIR/gw.crt
tls_key_file = $LAB_TLS_DIR/gw.key" || fail "tls: smtp64d starts"
	check "tls: message delivered" send tls
	f=$(delivered tls) && rcv=$(received_header "$f") || rcv=""
	echo "    $rcv"
	check "tls: the server's leg was TLS" grep -q 'with ESMTPS' <<<"$rcv"
	check "tls: Received: header names $C4" grep -qF "[$C4])" <<<"$rcv"
	check "tls: the access rule applied" grep -qF "$RULE_HDR" "${f:-/dev/null}"
	check "tls: XCLIENT accepted inside TLS" \
		grep -q "event=identity mode=xclient result=accepted .*tls=yes action=none" "$SMTP64D_LOG"
else
	fail "Postfix with TLS trusting the gateway starts"
fi

echo "# identity off: Postfix sees the gateway"
if mx_start "$XC_TRUST
smtpd_upstream_proxy_protocol ="; then
	gw_start "" || fail "off: smtp64d starts"
	mark=$(lab_pf_mark sa) m=$(wc -l <"$SMTP64D_LOG")
	check "off: message delivered" send off
	f=$(delivered off) && rcv=$(received_header "$f") || rcv=""
	echo "    $rcv"
	check "off: smtp64d opens with identity=none" \
		grep -q "via=route:tunnel tls=none identity=none" "$SMTP64D_LOG"
	check "off: Postfix logs the gateway's address" \
		grep -qF "client=unknown[$GW6]" <(lab_pf_since sa "$mark")
	check "off: Received: names the gateway" grep -qF "[IPv6:$GW6])" <<<"$rcv"
	check "off: the access rule on $C4 did not apply" \
		test -z "$(grep -F "$RULE_HDR" "${f:-/dev/null}" 2>/dev/null)"
	check "off: no XCLIENT, no PROXY header" \
		test -z "$(tail -n "+$((m + 1))" "$SMTP64D_LOG" | grep 'event=identity')"
else
	fail "off: Postfix starts"
fi

echo "# xclient with a server that does not trust the gateway"
if mx_start ""; then
	gw_start "identity = xclient" || fail "untrusted: smtp64d starts"
	check "untrusted: message still delivered" send untrusted
	f=$(delivered untrusted) && rcv=$(received_header "$f") || rcv=""
	echo "    $rcv"
	check "untrusted: delivered as from the gateway" grep -qF "[IPv6:$GW6])" <<<"$rcv"
	check "untrusted: smtp64d logs that XCLIENT was not offered" \
		grep -q 'event=identity mode=xclient result=not_offered .*action=continue_as_gateway' "$SMTP64D_LOG"

	gw_start "identity = xclient
identity_required = yes" || fail "required: smtp64d starts"
	mark=$(lab_pf_mark sa)
	send required
	rc=$?
	check "required: swaks reports a failure" test "$rc" -ne 0
	check "required: the client's RCPT gets 451 4.7.0" \
		grep -q '^<\*\* *451 4.7.0 .*identity' "$LAB_DIR/swaks-required.out"
	sleep 1
	check "required: nothing delivered" test -z "$(maildir_find_a required)"
	check "required: no MAIL reached Postfix" \
		test -z "$(lab_pf_since sa "$mark" | grep -F 'from=<a@example.net>')"
	check "required: smtp64d logs it" \
		grep -q 'event=identity mode=xclient result=not_offered .*action=next_target' "$SMTP64D_LOG"
else
	fail "untrusted Postfix starts"
fi

check "daemon survived everything" kill -0 "$SMTP64D_PID"
if [ "$FAIL" -gt 0 ]; then
	lab_dump_logs 40
	tail -n 40 "$SMTP64D_LOG"
fi
lab_summary
