#!/usr/bin/env bash
# e2e: source pairing and per-pair HELO names, judged by a real Postfix
# that checks names in DNS.  The IPv6-only client c6 reaches the IPv4-only
# MX s4 through pair mx4 (2001:db8:1::25 -> 198.51.100.25).  The MX's
# namespace resolves through dnsmasq in a namespace of its own (dns,
# 203.0.113.53, linked to s4), which publishes:
#   gw.example.net     A 198.51.100.1, A 198.51.100.2  (+ PTRs)
#   c6.gw.example.net  A 198.51.100.10                 (+ PTR)  pair c6
#   c7.gw.example.net  A 198.51.100.11                 (+ PTR)  pair c7
# and nothing else under example.net (NXDOMAIN).  Postfix on s4 adds
# reject_unknown_client_hostname (forward-confirmed reverse DNS of the
# address it sees) and reject_unknown_helo_hostname.
#  - source_pairing = yes: client 2001:db8:1::10 (pair c6) arrives from
#    198.51.100.10 with HELO c6.gw.example.net: accepted, and the HELO
#    name resolves to the very address the MX saw (what Exim's
#    verify = helo demands);
#  - client 2001:db8:1::11 (pair c7, helo_name not published) arrives from
#    198.51.100.11, whose reverse DNS is fine, and is refused for its HELO
#    name alone: the check is live;
#  - a client with no pair (2001:db8:1::12) uses source_ipv4 = 198.51.100.2
#    (not the kernel's choice, 198.51.100.1) and the gateway FQDN;
#  - source_pairing = no: the c6 client arrives from source_ipv4 as
#    gw.example.net.
set -u
. "$(dirname "$0")/../lab/lib.sh"

lab_init
lab_topology c6 gw s4 || { fail "lab topology"; lab_summary; exit 1; }
lab_ns dns || { fail "dns namespace"; lab_summary; exit 1; }
NS_DNS=$(lab_nsname dns)
DNS_ADDR=203.0.113.53
lab_link "$NS_S4" to-dns "$NS_DNS" eth0 || { fail "dns link"; lab_summary; exit 1; }
lab_addr "$NS_S4" to-dns 203.0.113.1/24
lab_addr "$NS_DNS" eth0 "$DNS_ADDR/24"

# Paired and configured source addresses live on the gateway's MX-side
# link, so the MX's replies reach them (198.51.100.1 stays the primary).
C6_PAIR_V4=198.51.100.10 C7_PAIR_V4=198.51.100.11 SRC4=198.51.100.2
C7_ADDR=2001:db8:1::11 NOPAIR_ADDR=2001:db8:1::12
for a in $C6_PAIR_V4 $C7_PAIR_V4 $SRC4; do lab_addr "$NS_GW" to-s4 "$a/24"; done
lab_addr "$NS_C6" eth0 "$C7_ADDR/64"
lab_addr "$NS_C6" eth0 "$NOPAIR_ADDR/64"

if ! lab_dnsmasq_start dns "$DNS_ADDR" \
	--local=/example.net/ --local=/example.org/ \
	--local=/100.51.198.in-addr.arpa/ \
	"--host-record=gw.example.net,$GW_S4_ADDR,$GW_S6_ADDR" \
	"--host-record=gw.example.net,$SRC4" \
	"--host-record=c6.gw.example.net,$C6_PAIR_V4" \
	"--host-record=c7.gw.example.net,$C7_PAIR_V4"; then
	fail "dnsmasq starts in $NS_DNS"; lab_summary; exit 1
fi
pass "dnsmasq serves example.net on $DNS_ADDR"
lab_resolver s4 "$DNS_ADDR"

check "DNS from s4: c6.gw.example.net A $C6_PAIR_V4" \
	test "$(lab_resolve s4 ahostsv4 c6.gw.example.net)" = "$C6_PAIR_V4"
check "DNS from s4: PTR $C6_PAIR_V4 -> c6.gw.example.net" \
	test "$(lab_resolve s4 hosts $C6_PAIR_V4)" = c6.gw.example.net
check "DNS from s4: c7-unpublished.gw.example.net does not resolve" \
	test -z "$(lab_resolve s4 ahostsv4 c7-unpublished.gw.example.net)"

PF_EXTRA="smtpd_peername_lookup = yes
smtpd_client_restrictions = reject_unknown_client_hostname
smtpd_helo_restrictions = reject_invalid_helo_hostname, reject_non_fqdn_helo_hostname, reject_unknown_helo_hostname, check_helo_access regexp:\$config_directory/helo_access
unknown_client_reject_code = 550
unknown_hostname_reject_code = 550"
if ! lab_postfix_start s4 "" "$PF_EXTRA"; then
	fail "Postfix starts on s4"; lab_dump_logs; lab_summary; exit 1
fi
pass "Postfix on s4 with reject_unknown_client_hostname, reject_unknown_helo_hostname"

out=$LAB_DIR/swaks.out
delivered() { [ -n "$(maildir_find s4 "X-Lab-Id: $1")" ]; }
rcpt_reply() { awk '/^ -> RCPT TO:/{getline; print; exit}' "$1"; }

echo "# the MX's checks are live (straight from the gateway namespace, no smtp64d)"
lab_swaks "$NS_GW" "$S4_ADDR" nothere.example.net direct-bad "$out"
rc=$?
reply=$(rcpt_reply "$out")
check "direct: HELO nothere.example.net refused (rc=$rc)" test "$rc" -ne 0
check "direct: ... 550 Helo command rejected: Host not found ($reply)" \
	grep -qE '^<\*\* 550 .*Helo command rejected: Host not found' <<<"$reply"
lab_swaks "$NS_GW" "$S4_ADDR" gw.example.net direct-ok "$out"
rc=$?
check "direct: HELO gw.example.net from $GW_S4_ADDR accepted (rc=$rc)" test "$rc" -eq 0

conf=$LAB_DIR/smtp64.conf
write_conf() { # write_conf yes|no
	cat >"$conf" <<EOF
[gateway]
fqdn = gw.example.net
listen = 0.0.0.0:25, [::]:25
source_pairing = $1
source_ipv4 = $SRC4

[pair mx4]
ipv4 = $S4_ADDR
ipv6 = $MX4_V6

[pair c6]
ipv6 = $C6_ADDR
ipv4 = $C6_PAIR_V4
helo_name = c6.gw.example.net

[pair c7]
ipv6 = $C7_ADDR
ipv4 = $C7_PAIR_V4
helo_name = c7-unpublished.gw.example.net
EOF
}

# via NAME CLIENT_ADDR: a delivery from c6, source CLIENT_ADDR, literal HELO
via() {
	lab_swaks "$NS_C6" "$MX4_V6" "[IPv6:$2]" "$1" "$out" --local-interface "$2"
}
# pf_saw MARK NAME ADDR: the MX logged "connect from NAME[ADDR]"
pf_saw() { lab_pf_since s4 "$1" | grep -qF "connect from $2[$3]"; }
# received_is ID HELO RDNS ADDR: the message's Received header says
# "from HELO (RDNS [ADDR])"; printed for the record.
received_is() {
	local f hdr
	f=$(maildir_find s4 "X-Lab-Id: $1")
	[ -n "$f" ] || return 1
	hdr=$(received_header "$f")
	echo "    ${hdr:0:150}" >&3
	grep -qF "Received: from $2 ($3 [$4])" <<<"$hdr"
}
exec 3>&1
logged() {
	local l p
	l=$(cat "$SMTP64D_LOG")
	for p in "$@"; do l=$(grep -F -- "$p" <<<"$l"); done
	[ -n "$l" ]
}

echo "# source_pairing = yes"
write_conf yes
lab_smtp64d_start "$conf" "$LAB_DIR/smtp64d-yes.log" ||
	{ fail "smtp64d starts"; lab_dump_logs; lab_summary; exit 1; }
pass "smtp64d starts (source_pairing = yes)"

mark=$(lab_pf_mark s4)
via pair-c6 "$C6_ADDR"
rc=$?
check "c6 ($C6_ADDR): delivery through $MX4_V6 succeeds (rc=$rc)" test "$rc" -eq 0 ||
	sed 's/^/    | /' "$out" | tail -n 6
check "c6: the message lands" wait_for 50 delivered pair-c6
check "c6: the MX saw the paired source: connect from c6.gw.example.net[$C6_PAIR_V4]" \
	pf_saw "$mark" c6.gw.example.net "$C6_PAIR_V4"
# Received: from HELO (REVERSE-NAME [ADDRESS]), as Postfix writes it
check "c6: HELO c6.gw.example.net: Received: from c6.gw.example.net (c6.gw.example.net [$C6_PAIR_V4])" \
	received_is pair-c6 c6.gw.example.net c6.gw.example.net "$C6_PAIR_V4"
check "c6: the HELO name resolves to the very address the MX saw (Exim verify = helo)" \
	grep -qxF "$C6_PAIR_V4" <(lab_resolve s4 ahostsv4 c6.gw.example.net)
check "c6: smtp64d logged open source=$C6_PAIR_V4 helo_name=c6.gw.example.net" \
	logged "event=open" "client=[$C6_ADDR]:" "source=$C6_PAIR_V4" "helo_name=c6.gw.example.net"
check "c6: smtp64d logged helo_out=c6.gw.example.net" \
	logged "event=helo" "helo_in=[IPv6:$C6_ADDR]" "helo_out=c6.gw.example.net"

mark=$(lab_pf_mark s4)
via pair-c7 "$C7_ADDR"
rc=$?
reply=$(rcpt_reply "$out")
check "c7 (helo_name not in DNS): refused (rc=$rc)" test "$rc" -ne 0
check "c7: ... 550 Helo command rejected: Host not found ($reply)" \
	grep -qE '^<\*\* 550 .*<c7-unpublished\.gw\.example\.net>: Helo command rejected: Host not found' <<<"$reply"
check "c7: the MX saw the paired source with good reverse DNS: c7.gw.example.net[$C7_PAIR_V4]" \
	pf_saw "$mark" c7.gw.example.net "$C7_PAIR_V4"
sleep 0.5
check "c7: nothing delivered" test -z "$(maildir_find s4 'X-Lab-Id: pair-c7')"

mark=$(lab_pf_mark s4)
via nopair "$NOPAIR_ADDR"
rc=$?
check "unpaired client ($NOPAIR_ADDR): delivered (rc=$rc)" test "$rc" -eq 0
check "unpaired: the message lands" wait_for 50 delivered nopair
check "unpaired: source_ipv4 used: connect from gw.example.net[$SRC4]" \
	pf_saw "$mark" gw.example.net "$SRC4"
check "unpaired: HELO gw.example.net: Received: from gw.example.net (gw.example.net [$SRC4])" \
	received_is nopair gw.example.net gw.example.net "$SRC4"
check "unpaired: smtp64d logged source=$SRC4 helo_name=gw.example.net" \
	logged "event=open" "client=[$NOPAIR_ADDR]:" "source=$SRC4" "helo_name=gw.example.net"

echo "# source_pairing = no"
lab_smtp64d_stop
write_conf no
lab_smtp64d_start "$conf" "$LAB_DIR/smtp64d-no.log" ||
	{ fail "smtp64d restarts"; lab_dump_logs; lab_summary; exit 1; }
pass "smtp64d restarts (source_pairing = no)"
mark=$(lab_pf_mark s4)
via nopairing-c6 "$C6_ADDR"
rc=$?
check "c6 without pairing: delivered (rc=$rc)" test "$rc" -eq 0
check "c6 without pairing: the message lands" wait_for 50 delivered nopairing-c6
check "c6 without pairing: connect from gw.example.net[$SRC4]" \
	pf_saw "$mark" gw.example.net "$SRC4"
check "c6 without pairing: HELO gw.example.net: Received: from gw.example.net (gw.example.net [$SRC4])" \
	received_is nopairing-c6 gw.example.net gw.example.net "$SRC4"
check "c6 without pairing: smtp64d logged source=$SRC4 helo_out=gw.example.net" \
	logged "event=open" "client=[$C6_ADDR]:" "source=$SRC4" "helo_name=gw.example.net"
check "c6 without pairing: the MX never saw $C6_PAIR_V4" \
	test -z "$(lab_pf_since s4 "$mark" | grep -F "[$C6_PAIR_V4]")"
check "dnsmasq answered the MX's queries" grep -q 'query\[PTR\]' "$LAB_DIR/dnsmasq.log"

[ "$FAIL" -eq 0 ] || lab_dump_logs 20
lab_summary
