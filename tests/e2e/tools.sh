#!/usr/bin/env bash
# e2e: the operator tools.
#  - smtp64-addr against the example table of RFC 6052 §2.4 (embed and
#    extract for every prefix length), its refusals and exit codes;
#  - smtp64-pcap on captures taken in the gateway namespace (tcpdump on
#    every interface, and on the client link alone) while swaks sends
#    EHLO [IPv6:2001:db8::1] over IPv4 through smtp64d, and a raw client
#    tries a bare LF in a command and SMTP smuggling in message data:
#    the client leg shows the IPv6 literal over IPv4 and both smuggling
#    attempts, the server leg the rewritten HELO and nothing hostile;
#  - smtp64-pcap capturing live (-i) gives the same verdicts;
#  - a truncated capture is reported, not crashed on.
#   SMTP64_TOOLS  directory of the built tools (default build/)
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null
. "$here/../lab/lib.sh"
TOOLS_DIR=${SMTP64_TOOLS:-$LAB_ROOT/build}
PCAP=$TOOLS_DIR/smtp64-pcap
ADDR=$TOOLS_DIR/smtp64-addr
CHAT="python3 $LAB_ROOT/tests/lab/smtpchat.py"

lab_init
for t in "$PCAP" "$ADDR"; do
	[ -x "$t" ] || { fail "$t is built (run make)"; lab_summary; exit 1; }
done
command -v tcpdump >/dev/null 2>&1 ||
	{ fail "tcpdump installed (tools/install-deps)"; lab_summary; exit 1; }

# ------------------------------------------------------------ smtp64-addr
echo "# smtp64-addr: RFC 6052 section 2.4, the example table"
# prefix, IPv4, IPv4-embedded IPv6 address as the RFC writes it
rows=(
	"2001:db8::/32 192.0.2.33 2001:db8:c000:221::"
	"2001:db8:100::/40 192.0.2.33 2001:db8:1c0:2:21::"
	"2001:db8:122::/48 192.0.2.33 2001:db8:122:c000:2:2100::"
	"2001:db8:122:300::/56 192.0.2.33 2001:db8:122:3c0:0:221::"
	"2001:db8:122:344::/64 192.0.2.33 2001:db8:122:344:c0:2:2100:0"
	"2001:db8:122:344::/96 192.0.2.33 2001:db8:122:344::192.0.2.33"
	"64:ff9b::/96 192.0.2.33 64:ff9b::192.0.2.33"
)
for row in "${rows[@]}"; do
	read -r pfx v4 v6 <<<"$row"
	# -m: /96 results with the dotted tail, as the RFC prints them.
	got=$("$ADDR" -m embed "$pfx" "$v4" 2>/dev/null)
	check "embed $pfx $v4 = $v6 (got $got)" test "$got" = "$v6"
	got=$("$ADDR" extract "$pfx" "$v6")
	check "extract $pfx $v6 = $v4 (got $got)" test "$got" = "$v4"
done
got=$("$ADDR" embed 2001:db8:122:344::/96 192.0.2.33)
check "embed without -m prints RFC 5952 hex ($got)" \
	test "$got" = 2001:db8:122:344::c000:221
"$ADDR" embed 64:ff9b::/96 192.0.2.33 >/dev/null 2>"$LAB_DIR/addr.err"
check "embed under 64:ff9b::/96 warns that 192.0.2.33 is not global" \
	grep -q 'not global (documentation, RFC 5737).*RFC 6052 section 3.1' \
	"$LAB_DIR/addr.err"

addr_rc() { # addr_rc WANT ARGS...: smtp64-addr ARGS exits WANT
	local want=$1 rc
	shift
	"$ADDR" "$@" >"$LAB_DIR/addr.out" 2>&1
	rc=$?
	check "smtp64-addr $* exits $want (got $rc: $(head -n1 "$LAB_DIR/addr.out"))" \
		test "$rc" -eq "$want"
}
addr_rc 2 embed 2001:db8::/41 192.0.2.33          # not a §2.2 length
addr_rc 2 embed 2001:db8::1/32 192.0.2.33         # bits past the length
addr_rc 2 embed 2001:db8:0:0:100::/96 192.0.2.33  # u octet set
addr_rc 2 embed 2001:db8::/32 192.0.2.333         # not an address
addr_rc 1 extract 2001:db8:100::/40 2001:db9:1c0:2:21::   # other prefix
addr_rc 1 extract 2001:db8:100::/40 2001:db8:1c0:2:121::  # u octet set
addr_rc 0 check 192.0.3.1
addr_rc 1 check 192.0.2.33
addr_rc 1 check 64:ff9b::c000:221
addr_rc 1 check fe80::1
addr_rc 2 frobnicate
got=$("$ADDR" check 192.0.2.33 127.0.0.1)
check "check names the range and its RFC" \
	grep -q '^192.0.2.33: not global: documentation (RFC 5737)$' <<<"$got"
check "check marks host scope (RFC 3974 section 6)" \
	grep -q '^127.0.0.1: not global: loopback (RFC 1122); host or link scope' \
	<<<"$got"
got=$("$ADDR" -q check 192.0.2.33)
check "-q prints nothing" test -z "$got"

# ------------------------------------------------------------ the lab
lab_topology c4 gw s6 || { fail "lab topology"; lab_summary; exit 1; }
lab_postfix_start s6 || { fail "Postfix on s6"; lab_summary; exit 1; }
conf=$LAB_DIR/gw.conf
# Session 2 shows the refusal of smuggling: reject, not the default inline.
lab_gw_conf "$conf" always "bare_line_endings = reject"
lab_smtp64d_start "$conf" || { fail "smtp64d starts"; lab_summary; exit 1; }

# tcpdump_start NAME IFACE: a capture in the gateway namespace into
# $LAB_DIR/NAME.pcap; -Z root: the run's directory is root's, -U: every
# packet is written at once.  Sets CAP_PID.
CAP_PID=""
tcpdump_start() {
	lab_bg "$LAB_DIR/tcpdump-$1.log" "$NS_GW" tcpdump -n -U --immediate-mode -B 16384 -Z root -s 0 \
		-i "$2" -w "$LAB_DIR/$1.pcap" 'tcp port 25'
	CAP_PID=$LAB_LAST_PID
	wait_for 100 grep -q 'listening on' "$LAB_DIR/tcpdump-$1.log"
}
tcpdump_start any any || fail "tcpdump -i any starts"
pid_any=$CAP_PID
tcpdump_start eth to-c4 || fail "tcpdump -i to-c4 starts"
pid_eth=$CAP_PID
# "listening on" comes before a packet socket on "any" sees every
# interface's traffic; a loaded machine lost the first session's packets.
sleep 3
# The same analysis live, on the client link, for the two sessions.
lab_bg "$LAB_DIR/live.out" "$NS_GW" "$PCAP" -i to-c4 -c 2
pid_live=$LAB_LAST_PID
wait_for 100 grep -q 'smtp64-pcap: listening on to-c4' "$LAB_DIR/live.out" ||
	fail "smtp64-pcap -i to-c4 starts"

echo "# session 1: swaks, EHLO [IPv6:2001:db8::1] over IPv4 via smtp64d"
id=tools-$LAB_TAG
ip netns exec "$NS_C4" swaks --server "$MX6_V4" --port 25 \
	--helo '[IPv6:2001:db8::1]' --from a@example.net --to user@example.org \
	--header "X-Lab-Id: $id" --timeout 15 </dev/null \
	>"$LAB_DIR/swaks.out" 2>&1
rc=$?
check "swaks sends through the gateway (rc=$rc)" test "$rc" -eq 0
delivered() { [ -n "$(maildir_find s6 "X-Lab-Id: $id")" ]; }
wait_for 50 delivered
check "the message is in the Maildir" delivered

echo "# session 2: bare LF in a command, then SMTP smuggling in the data"
smuggled='MAIL FROM:<evil@example.net>\r\nRCPT TO:<user@example.org>\r\nDATA\r\nSubject: smuggled\r\n\r\nx\r\n.\r\n'
if ip netns exec "$NS_C4" $CHAT client "$MX6_V4" 25 'e:220' \
	's:EHLO client.example.net\r\n' 'e:250' \
	's:MAIL FROM:<a@example.net>\nRCPT TO:<user@example.org>\r\n' \
	'e:500 5.5.2' \
	's:MAIL FROM:<a@example.net>\r\nRCPT TO:<user@example.org>\r\nDATA\r\n' \
	'e:250' 'e:250' 'e:354' \
	"s:Subject: first\\r\\n\\r\\nbody\\n.\\n$smuggled" 'e:554 5.6.0' 'c' \
	>"$LAB_DIR/chat.out" 2>&1; then
	pass "the gateway answers 500 5.5.2, then 554 5.6.0 and closes"
else
	fail "smuggling session"
	sed 's/^/    | /' "$LAB_DIR/chat.out" | tail -n 12
fi

wait_gone "$pid_live" 100 ||
	fail "smtp64-pcap -i -c 2 exits after the two sessions"
lab_kill "$pid_live"
sleep 1 # the last ACKs (--immediate-mode: no ring-buffer delay)
lab_kill "$pid_any"
lab_kill "$pid_eth"

# pcap_run NAME: smtp64-pcap -r NAME.pcap into NAME.out; its exit status.
pcap_run() {
	"$PCAP" -r "$LAB_DIR/$1.pcap" >"$LAB_DIR/$1.out" 2>"$LAB_DIR/$1.err"
}
# has NAME ERE: a line of NAME.out matches.
has() { grep -qE -- "$2" "$LAB_DIR/$1.out"; }
show() { sed 's/^/    | /' "$LAB_DIR/$1.out"; }

C4=${C4_ADDR//./\\.}
GW=${MX6_V4//./\\.}
# The client leg of each session (shared by the three analyses).
re_c1="family=ipv4 client=$C4:[0-9]+ server=$GW:25 helo=EHLO:\\[IPv6:2001:db8::1\\] helo_kind=v6-literal-cross starttls=no messages=1 hostile=- end=fin "
re_c2="family=ipv4 client=$C4:[0-9]+ server=$GW:25 helo=EHLO:client\\.example\\.net helo_kind=domain starttls=no messages=0 hostile=smuggle_cmd:1,smuggle_data:1 end=[a-z]+ .*notes=would_close$"
client_legs() { # client_legs NAME WHAT
	check "$2: client leg names the IPv6 literal over IPv4" has "$1" "$re_c1"
	check "$2: client leg flags the bare LF command and the smuggling" \
		has "$1" "$re_c2"
}

echo "# smtp64-pcap on the capture of every interface (tcpdump -i any)"
pcap_run any
check "smtp64-pcap -r any.pcap exits 0" test $? -eq 0
client_legs any "any.pcap"
check "any.pcap: server leg of session 1 carries the rewritten HELO" \
	has any "family=ipv6 client=\\[$GW_S6_ADDR\\]:[0-9]+ server=\\[$S6_ADDR\\]:25 helo=EHLO:gw\\.example\\.net helo_kind=domain starttls=no messages=1 hostile=- end=fin "
check "any.pcap: server leg of session 2: rewritten HELO, nothing hostile, reset" \
	has any "family=ipv6 client=\\[$GW_S6_ADDR\\]:[0-9]+ server=\\[$S6_ADDR\\]:25 helo=EHLO:gw\\.example\\.net helo_kind=domain starttls=no messages=0 hostile=- end=rst "
check "any.pcap: summary counts 4 sessions, 1 cross-family literal, 1 hostile" \
	has any '^summary: sessions=4 ipv4=2 ipv6=2 replayed=4 midstream=0 gaps=0 helo=4 helo_domain=3 helo_literal=1 helo_cross=1 .*hostile_sessions=1 smuggle_cmd=1 smuggle_data=1 '
check "any.pcap: advice names helo_rewrite" \
	has any '^advice: 1 session\(s\) sent an address literal of the other family \(RFC 3974 Appendix A\)'
[ "$FAIL" -eq 0 ] || show any

echo "# smtp64-pcap on the client link alone (Ethernet, tcpdump -i to-c4)"
pcap_run eth
check "smtp64-pcap -r eth.pcap exits 0" test $? -eq 0
client_legs eth "eth.pcap"
check "eth.pcap: summary counts 2 sessions" has eth '^summary: sessions=2 ipv4=2 ipv6=0 '

echo "# smtp64-pcap -i to-c4 -c 2 (live)"
client_legs live "live"
check "live: summary counts 2 sessions" has live '^summary: sessions=2 ipv4=2 '

echo "# a capture cut short, and one from a pipe"
size=$(stat -c %s "$LAB_DIR/any.pcap")
head -c $((size * 2 / 3)) "$LAB_DIR/any.pcap" >"$LAB_DIR/cut.pcap"
pcap_run cut
rc=$?
check "a truncated capture exits 1 (got $rc)" test "$rc" -eq 1
check "... says why on stderr" grep -q 'smtp64-pcap: .*cut.pcap: ' "$LAB_DIR/cut.err"
check "... and still reports what it read" has cut '^summary: sessions=[1-9]'
"$PCAP" -s -r - <"$LAB_DIR/any.pcap" >"$LAB_DIR/pipe.out" 2>&1
check "-r - reads standard input, -s prints the summary only" \
	bash -c "[ \$(wc -l <'$LAB_DIR/pipe.out') -ge 1 ] &&
		! grep -q '^session=' '$LAB_DIR/pipe.out' &&
		grep -q '^summary: sessions=4 ' '$LAB_DIR/pipe.out'"
"$PCAP" -r "$LAB_DIR/any.pcap" -l 10 >/dev/null 2>&1
check "a bad option value exits 2" test $? -eq 2

[ "$FAIL" -eq 0 ] || lab_dump_logs
lab_summary
