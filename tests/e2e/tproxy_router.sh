#!/usr/bin/env bash
# e2e: smtp64d on an edge router, fed by TPROXY (transparent = yes), with
# real Postfix on both sides.  The router namespace r forwards like any
# router; the MTAs are untouched.
#
#   c4 203.0.113.10 ---- 203.0.113.1 [r] 2001:db8::1 ---- 2001:db8::25 s6
#   c6 2001:db8:1::10 -- 2001:db8:1::1 [r] 198.51.100.1 -- 198.51.100.25 s4
#
#  - v4 -> v6: c4 sends to 192.0.2.30, the A record of the IPv6-only MX.
#    No host has that address; r routes 192.0.2.0/24 towards the server
#    LAN, and TPROXY hands TCP/25 for it to smtp64d, which relays to
#    [2001:db8::25] (pair mx6);
#  - v6 -> v4: c6 sends to 64:ff9b::198.51.100.25; r has no route for the
#    prefix at all, TPROXY hands TCP/25 to smtp64d, which relays to the
#    embedded 198.51.100.25 ([nat64 wkp]);
#  - both with a literal HELO that the strict MXes refuse unless rewritten;
#  - source pairing across the router: client 2001:db8:1::11 is paired
#    with 192.0.2.11, an address configured nowhere; smtp64d binds it
#    (IP_TRANSPARENT), the MX's replies come back through the "socket
#    transparent" rule, and the MX sees 192.0.2.11 and the pair's HELO name.
# Two recipes, as in docs/edge-router.md: iptables/ip6tables TPROXY
# targets (xt) with wildcard listeners on port 25, then a native nftables
# ruleset (tproxy statement) with listeners on loopback port 10025 only,
# behind an input firewall whose policy is drop.
# Before the rules exist the same connections fail: the interception is
# what carries them.
set -u
. "$(dirname "$0")/../lab/lib.sh"

lab_init
for n in r c4 c6 s6 s4; do
	lab_ns "$n" || { fail "namespace $n"; lab_summary; exit 1; }
done
NS_GW=$(lab_nsname r) NS_C4=$(lab_nsname c4) NS_C6=$(lab_nsname c6)
NS_S6=$(lab_nsname s6) NS_S4=$(lab_nsname s4)
C4=203.0.113.10 R_C4=203.0.113.1
MTA1=2001:db8:1::11 MTA1_V4=192.0.2.11
setup() {
	lab_sysctl "$NS_C4" net.ipv6.conf.all.disable_ipv6=1 &&
	lab_sysctl "$NS_S4" net.ipv6.conf.all.disable_ipv6=1 &&
	lab_link "$NS_GW" to-c4 "$NS_C4" eth0 &&
	lab_link "$NS_GW" to-c6 "$NS_C6" eth0 &&
	lab_link "$NS_GW" to-s6 "$NS_S6" eth0 &&
	lab_link "$NS_GW" to-s4 "$NS_S4" eth0 &&
	lab_addr "$NS_GW" to-c4 "$R_C4/24" &&
	lab_addr "$NS_GW" to-c6 "$GW_C6_ADDR/64" &&
	lab_addr "$NS_GW" to-s6 "$GW_S6_ADDR/64" &&
	lab_addr "$NS_GW" to-s4 "$GW_S4_ADDR/24" &&
	lab_addr "$NS_C4" eth0 "$C4/24" &&
	lab_addr "$NS_C6" eth0 "$C6_ADDR/64" &&
	lab_addr "$NS_C6" eth0 "$MTA1/64" &&
	lab_addr "$NS_S6" eth0 "$S6_ADDR/64" &&
	lab_addr "$NS_S4" eth0 "$S4_ADDR/24" &&
	lab_route "$NS_C4" default via "$R_C4" &&
	lab_route "$NS_C6" default via "$GW_C6_ADDR" &&
	lab_route "$NS_S6" default via "$GW_S6_ADDR" &&
	lab_route "$NS_S4" default via "$GW_S4_ADDR" &&
	# The site's IPv4 block is routed towards the server LAN, where the
	# IPv6-only MX has no IPv4 address: 192.0.2.30 is nobody's.
	ip -n "$NS_GW" -4 route add 192.0.2.0/24 dev to-s6 &&
	# A router: forwarding on (the gateway of the other tests keeps it off).
	lab_sysctl "$NS_GW" net.ipv4.ip_forward=1 &&
	lab_sysctl "$NS_GW" net.ipv6.conf.all.forwarding=1 &&
	# Policy routing for TPROXY: marked packets are delivered locally.
	ip -n "$NS_GW" -4 rule add fwmark 0x1/0x1 lookup 100 &&
	ip -n "$NS_GW" -4 route add local 0.0.0.0/0 dev lo table 100 &&
	ip -n "$NS_GW" -6 rule add fwmark 0x1/0x1 lookup 100 &&
	ip -n "$NS_GW" -6 route add local ::/0 dev lo table 100
}
setup || { fail "router topology"; lab_summary; exit 1; }
pass "router topology: c4, c6 | r (forwarding on) | s6, s4"
for t in iptables ip6tables nft; do
	command -v "$t" >/dev/null ||
		{ fail "$t installed (tools/install-deps)"; lab_summary; exit 1; }
done

lab_postfix_start s6 || { fail "Postfix on s6"; lab_dump_logs; lab_summary; exit 1; }
lab_postfix_start s4 || { fail "Postfix on s4"; lab_dump_logs; lab_summary; exit 1; }
pass "Postfix on s6 ($S6_ADDR) and s4 ($S4_ADDR)"

A_WKP=$(rfc6052_embed 64:ff9b::/96 "$S4_ADDR")
PAIR_V4=$MX6_V4
echo "# v4 -> v6 via $PAIR_V4, v6 -> v4 via $A_WKP"

conf=$LAB_DIR/smtp64.conf
write_conf() { # write_conf LISTEN
	cat >"$conf" <<EOF
[gateway]
fqdn = gw.example.net
listen = $1
transparent = yes
connect_timeout_s = 5

[pair mx6]
ipv4 = $PAIR_V4
ipv6 = $S6_ADDR

# A client of ours, paired with an address that no host has; a source
# only: nobody may reach the client through it (docs/edge-router.md).
[pair mta1]
ipv6 = $MTA1
ipv4 = $MTA1_V4
helo_name = mta1.gw.example.net
allow_clients = none

[nat64 wkp]
prefix = 64:ff9b::/96
allow_clients = 2001:db8:1::/48
# The lab's IPv4 server has a documentation address, which RFC 6052 §3.1
# keeps out of the well-known prefix unless allowed here.
allow_destinations = 198.51.100.0/24
EOF
}

# tcp_open NS ADDR PORT: a TCP connection opens within 2 s
tcp_open() {
	# shellcheck disable=SC2016 # expanded by the inner bash
	ip netns exec "$1" timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$2" "$3" \
		2>/dev/null
}
out=$LAB_DIR/swaks.out
delivered() { [ -n "$(maildir_find "$1" "X-Lab-Id: $2")" ]; }
logged() {
	local l p
	l=$(cat "$SMTP64D_LOG")
	for p in "$@"; do l=$(grep -F -- "$p" <<<"$l"); done
	[ -n "$l" ]
}
# relay TAG CLIENT_NS DEST HELO SERVER SRC_RE [SWAKS-ARGS...]: deliver
# and check
relay() {
	local tag=$1 cns=$2 dest=$3 helo=$4 server=$5 src_re=$6 id rc f hdr
	shift 6
	id="$tag-$LAB_TAG"
	lab_swaks "$cns" "$dest" "$helo" "$id" "$out" "$@"
	rc=$?
	check "$tag: swaks to $dest with HELO $helo succeeds (rc=$rc)" test "$rc" -eq 0 ||
		sed 's/^/    | /' "$out" | tail -n 8
	if check "$tag: the message lands on $server" wait_for 50 delivered "$server" "$id"; then
		f=$(maildir_find "$server" "X-Lab-Id: $id")
		hdr=$(received_header "$f")
		echo "    ${hdr:0:140}"
		check "$tag: HELO rewritten: Received: from gw.example.net (... $src_re)" \
			grep -qE "^Received: from gw\\.example\\.net \\([^)]*$src_re\\)" <<<"$hdr"
	else
		fail "$tag: HELO rewritten"
	fi
	check "$tag: smtp64d logged helo_in=$helo helo_out=gw.example.net" \
		logged "event=helo" "helo_in=$helo" "helo_out=gw.example.net"
}
# paired TAG: mta1 through the prefix, from its paired source 192.0.2.11
paired() {
	local tag=$1 id="$1-$LAB_TAG" rc f hdr mark
	mark=$(lab_pf_mark s4)
	lab_swaks "$NS_C6" "$A_WKP" "[IPv6:$MTA1]" "$id" "$out" --local-interface "$MTA1"
	rc=$?
	check "$tag: mta1 ($MTA1) through $A_WKP succeeds (rc=$rc)" test "$rc" -eq 0 ||
		sed 's/^/    | /' "$out" | tail -n 8
	check "$tag: the MX saw the paired source, configured nowhere: [$MTA1_V4]" \
		grep -qF "connect from unknown[$MTA1_V4]" <(lab_pf_since s4 "$mark")
	if check "$tag: the message lands on s4" wait_for 50 delivered s4 "$id"; then
		f=$(maildir_find s4 "X-Lab-Id: $id")
		hdr=$(received_header "$f")
		echo "    ${hdr:0:140}"
		check "$tag: Received: from mta1.gw.example.net (unknown [$MTA1_V4])" \
			grep -qF "Received: from mta1.gw.example.net (unknown [$MTA1_V4])" <<<"$hdr"
	else
		fail "$tag: Received: from mta1.gw.example.net"
	fi
	check "$tag: smtp64d logged source=$MTA1_V4 helo_name=mta1.gw.example.net" \
		logged "event=open" "client=[$MTA1]:" "source=$MTA1_V4" "helo_name=mta1.gw.example.net"
}

echo "# phase 1: iptables/ip6tables TPROXY, listeners on port 25"
write_conf "0.0.0.0:25, [::]:25"
lab_smtp64d_start "$conf" "$LAB_DIR/smtp64d-xt.log" ||
	{ fail "smtp64d starts (transparent = yes)"; lab_dump_logs; lab_summary; exit 1; }
pass "smtp64d starts in r (transparent = yes)"
if tcp_open "$NS_C4" "$PAIR_V4" 25; then
	fail "control: without TPROXY rules $PAIR_V4:25 must not answer"
else
	pass "control: without TPROXY rules $PAIR_V4:25 does not answer"
fi
if tcp_open "$NS_C6" "$A_WKP" 25; then
	fail "control: without TPROXY rules [$A_WKP]:25 must not answer"
else
	pass "control: without TPROXY rules [$A_WKP]:25 does not answer"
fi

xt_rules() {
	local t
	for t in iptables ip6tables; do
		ip netns exec "$NS_GW" $t -t mangle -N DIVERT &&
		ip netns exec "$NS_GW" $t -t mangle -A PREROUTING -p tcp -m socket --transparent -j DIVERT &&
		ip netns exec "$NS_GW" $t -t mangle -A DIVERT -j MARK --set-mark 0x1/0x1 &&
		ip netns exec "$NS_GW" $t -t mangle -A DIVERT -j ACCEPT || return 1
	done
	ip netns exec "$NS_GW" iptables -t mangle -A PREROUTING -p tcp -d "$PAIR_V4/32" \
		--dport 25 -j TPROXY --on-port 25 --tproxy-mark 0x1/0x1 &&
	ip netns exec "$NS_GW" ip6tables -t mangle -A PREROUTING -p tcp -d 64:ff9b::/96 \
		--dport 25 -j TPROXY --on-port 25 --tproxy-mark 0x1/0x1
}
if xt_rules; then
	pass "xt TPROXY rules loaded in r"
else
	fail "xt TPROXY rules"; lab_summary; exit 1
fi

relay xt-v4-to-v6 "$NS_C4" "$PAIR_V4" "[$C4]" s6 "\\[IPv6:$GW_S6_ADDR\\]"
check "xt-v4-to-v6: logged open client=$C4 local=$PAIR_V4:25 (the original destination) dest=[$S6_ADDR]:25" \
	logged "event=open" "client=$C4:" "local=$PAIR_V4:25" "dest=[$S6_ADDR]:25" "via=pair:mx6"
relay xt-v6-to-v4 "$NS_C6" "$A_WKP" "[IPv6:$C6_ADDR]" s4 "\\[$GW_S4_ADDR\\]" \
	--local-interface "$C6_ADDR"
check "xt-v6-to-v4: logged open client=[$C6_ADDR] local=[$A_WKP]:25 dest=$S4_ADDR:25" \
	logged "event=open" "client=[$C6_ADDR]:" "local=[$A_WKP]:25" "dest=$S4_ADDR:25" "via=nat64:wkp"
paired xt-paired
n=$(ip netns exec "$NS_GW" iptables -t mangle -L PREROUTING -v -n -x | awk '/TPROXY/{print $1}')
check "the IPv4 TPROXY rule counted packets (${n:-none})" test "${n:-0}" -gt 0
n=$(ip netns exec "$NS_GW" ip6tables -t mangle -L PREROUTING -v -n -x | awk '/TPROXY/{print $1}')
check "the IPv6 TPROXY rule counted packets (${n:-none})" test "${n:-0}" -gt 0

echo "# phase 2: nftables tproxy statement, listeners on loopback port 10025"
lab_smtp64d_stop
for t in iptables ip6tables; do
	ip netns exec "$NS_GW" $t -t mangle -F
	ip netns exec "$NS_GW" $t -t mangle -X DIVERT
done
if ip netns exec "$NS_GW" nft -f - <<'NFT'
table inet smtp64 {
	chain prerouting {
		type filter hook prerouting priority mangle; policy accept;
		meta l4proto tcp socket transparent 1 meta mark set 0x1 accept
		ip daddr { 192.0.2.30, 192.0.2.31 } tcp dport 25 counter tproxy ip to 127.0.0.1:10025 meta mark set 0x1 accept
		ip6 daddr 64:ff9b::/96 tcp dport 25 counter tproxy ip6 to [::1]:10025 meta mark set 0x1 accept
	}
}
NFT
then
	pass "nftables tproxy ruleset loaded in r"
else
	fail "nftables tproxy ruleset"
fi
# The router's own firewall, input policy drop, as in docs/edge-router.md:
# intercepted packets pass the input hook with their original destination.
if ip netns exec "$NS_GW" nft -f - <<'NFT'
table inet filter {
	chain input {
		type filter hook input priority filter; policy drop;
		ct state established,related accept
		iif "lo" accept
		meta l4proto { icmp, ipv6-icmp } accept
		meta mark & 0x1 == 0x1 tcp dport 25 accept
	}
}
NFT
then
	pass "router input firewall (policy drop) loaded"
else
	fail "router input firewall"
fi
write_conf "127.0.0.1:10025, [::1]:10025"
lab_smtp64d_start "$conf" "$LAB_DIR/smtp64d-nft.log" 127.0.0.1 10025 ||
	{ fail "smtp64d restarts on loopback"; lab_dump_logs; lab_summary; exit 1; }
pass "smtp64d restarts, listening on 127.0.0.1:10025 and [::1]:10025 only"
wait_port "$NS_GW" ::1 10025 >/dev/null 2>&1
relay nft-v4-to-v6 "$NS_C4" "$PAIR_V4" "[$C4]" s6 "\\[IPv6:$GW_S6_ADDR\\]"
check "nft-v4-to-v6: logged local=$PAIR_V4:25 dest=[$S6_ADDR]:25" \
	logged "event=open" "client=$C4:" "local=$PAIR_V4:25" "dest=[$S6_ADDR]:25"
relay nft-v6-to-v4 "$NS_C6" "$A_WKP" "[IPv6:$C6_ADDR]" s4 "\\[$GW_S4_ADDR\\]" \
	--local-interface "$C6_ADDR"
check "nft-v6-to-v4: logged local=[$A_WKP]:25 dest=$S4_ADDR:25" \
	logged "event=open" "client=[$C6_ADDR]:" "local=[$A_WKP]:25" "dest=$S4_ADDR:25"
paired nft-paired
# "counter packets N" of the two tproxy rules, in rule order
n=$(ip netns exec "$NS_GW" nft list table inet smtp64 |
	awk '/tproxy/{for(i=1;i<NF;i++) if($i=="packets") printf "%s ", $(i+1)}')
echo "    nft tproxy rule packet counts: $n"
# shellcheck disable=SC2016 # an awk program
check "both nftables tproxy rules counted packets ($n)" \
	awk '{exit !($1 > 0 && $2 > 0)}' <<<"$n"
if tcp_open "$NS_C4" "$R_C4" 25; then
	fail "the router's own address $R_C4 must not answer on port 25"
else
	pass "the router's own address $R_C4 has no SMTP listener (only intercepted traffic reaches smtp64d)"
fi
check "smtp64d still running" kill -0 "$SMTP64D_PID"

[ "$FAIL" -eq 0 ] || lab_dump_logs 20
lab_summary
