#!/usr/bin/env bash
# e2e: smtp64-lab, the lab between commands.
#  - it refuses to run without root, and makes nothing;
#  - up (v4-to-v6) builds the lab; send injects into the IPv4-only site's
#    own Postfix (sendmail), whose smtp client finds the MX in the lab DNS
#    and relays through smtp64d to Postfix on the IPv6-only MX with strict
#    HELO checks (plain, --tls, --file with --helo); --swaks sends one
#    session straight from the site; status and logs report it;
#  - trace pairs each client leg with its upstream leg and shows both
#    HELOs (the client's IPv6 literal over IPv4 and the rewritten one),
#    in text and in JSON; a bare LF answered by the gateway and SMTP
#    smuggling show as such; smtp64-pcap -T gives the same pairs from one
#    capture per leg, pairs by the config alone, and captures live;
#  - a second lab exists beside the first; its `up`, killed with SIGKILL
#    half-way (a crash), is still removed by `down` from its state on disk;
#  - after down nothing is left: no namespace of the lab, no process it
#    started, no temporary folder, no state, no Postfix config entry;
#  - the other topologies: tunnel (route mode: send to each of four
#    domains lands on that domain's MX, two IPv6-only behind one IPv4
#    address, two IPv4-only behind one IPv6 address; trace pairs them by
#    timing); helo_rewrite = off
#    (a user's --config) in front of the strict MX, which refuses the
#    literal so that the sender bounces, and in front of an --lax MX,
#    which takes it; edge-router (TPROXY); sidecar.
#   SMTP64_LAB  the program (default build/smtp64-lab)
# e2e-limit: 240
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null
. "$here/../lab/lib.sh" # check, pass, fail, lab_summary, wait_for
LAB=${SMTP64_LAB:-$LAB_ROOT/build/smtp64-lab}

[ "$(id -u)" -eq 0 ] || { fail "runs as root"; lab_summary; exit 1; }
[ -x "$LAB" ] || { fail "$LAB is built (run make)"; lab_summary; exit 1; }

# Lab names of this run: unique, so parallel runs never meet.
N1=$(printf 'e%x' "$$" | cut -c1-10)a
N2=$(printf 'e%x' "$$" | cut -c1-10)b
N3=$(printf 'e%x' "$$" | cut -c1-10)c N4=$(printf 'e%x' "$$" | cut -c1-10)d
N5=$(printf 'e%x' "$$" | cut -c1-10)e N6=$(printf 'e%x' "$$" | cut -c1-10)f
N7=$(printf 'e%x' "$$" | cut -c1-10)g
T=$(mktemp -d /tmp/smtp64-labtool.XXXXXX)
cleanup() {
	local n
	for n in "$N1" "$N2" "$N3" "$N4" "$N5" "$N6" "$N7"; do
		"$LAB" --name "$n" down >/dev/null 2>&1
	done
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------ no root
if command -v setpriv >/dev/null 2>&1; then
	# A copy the unprivileged user can read (the clone may sit under a
	# home folder it cannot enter, as /root is).
	nr=$(mktemp -d /tmp/smtp64-lab-noroot.XXXXXX)
	cp "$LAB" "$nr/smtp64-lab" && cp -r "$LAB_LIB_DIR" "$nr/lab" &&
		chmod -R a+rX "$nr"
	SMTP64_LAB_LIB=$nr/lab setpriv --reuid=65534 --regid=65534 \
	    --clear-groups "$nr/smtp64-lab" --name "$N1" up \
	    >"$T/noroot.out" 2>&1
	rc=$?
	rm -rf "$nr"
	check "without root, up exits non-zero (got $rc)" test "$rc" -ne 0
	check "... and says it must run as root" \
	    grep -q 'must run as root' "$T/noroot.out"
	check "... and made no namespace" \
	    bash -c "! ip netns list | grep -q '^s64lab-$N1-'"
else
	fail "setpriv installed (util-linux)"
fi

# ------------------------------------------------------------ up
echo "# smtp64-lab --name $N1 up"
"$LAB" --name "$N1" up >"$T/up.out" 2>&1
rc=$?
sed 's/^/    | /' "$T/up.out"
check "up exits 0 (got $rc)" test "$rc" -eq 0
[ "$rc" -eq 0 ] || { lab_summary; exit 1; }
check "up prints the namespaces and addresses" \
    grep -qE "^  gw  s64lab-$N1-gw .*192\.0\.2\.30/24.*2001:db8::1/64" "$T/up.out"
check "up prints the logs" grep -q '^  logs     smtp64d /tmp/smtp64-lab\.' "$T/up.out"
state=/run/smtp64-lab/$N1/state
check "its state is on disk ($state)" test -s "$state"
labdir=$(sed -n 's/^  config   \(.*\)\/smtp64.conf$/\1/p' "$T/up.out")
check "its folder exists ($labdir)" test -d "$labdir"
"$LAB" --name "$N1" up >"$T/up-again.out" 2>&1
check "a second up of the same lab is refused" \
    bash -c "[ $? -ne 0 ] && grep -q 'exists' '$T/up-again.out'"

# ------------------------------------------------------------ a second lab
# Started now, killed with SIGKILL half-way through its up: a crash.
"$LAB" --name "$N2" up --topology v6-to-v4 --no-capture >"$T/up2.out" 2>&1 &
up2=$!

# ------------------------------------------------------------ send
# delivered_file OUT: the Maildir file that `send` reported.
delivered_file() { sed -n 's/^send: delivered on [a-z0-9]*: //p' "$1"; }
# smtp_line OUT: the sending Postfix's smtp client line that `send` showed.
smtp_line() { grep -E '^  .* postfix/smtp\[[0-9]+\]: [0-9A-F]+: to=<' "$1"; }
c4log=$labdir/postfix-c4/maillog
echo "# send (plain): into c4's Postfix, relayed by its smtp client"
"$LAB" --name "$N1" send >"$T/send1.out" 2>&1
rc=$?
sed 's/^/    | /' "$T/send1.out"
check "send exits 0 (got $rc)" test "$rc" -eq 0
check "c4's Postfix took it from sendmail (pickup)" \
    grep -qE 'postfix/pickup\[[0-9]+\]: [0-9A-F]+: uid=0 from=<user@c4\.example\.net>' "$T/send1.out"
check "c4's smtp client relayed it by MX lookup to the gateway's 192.0.2.30: status=sent" \
    grep -qE 'postfix/smtp\[[0-9]+\]: [0-9A-F]+: to=<user@example\.org>, relay=mx6\.example\.org\[192\.0\.2\.30\]:25, .*status=sent \(250 2\.0\.0 Ok: queued as' "$T/send1.out"
check "... the MX looked up in the lab DNS (dnsmasq answered MX example.org)" \
    grep -qE 'query\[MX\] example\.org from 192\.0\.2\.10' "$labdir/dnsmasq.log"
f1=$(delivered_file "$T/send1.out")
check "the message is in s6's Maildir" test -s "$f1"
check "... received from gw.example.net, HELO rewritten for the strict MX" \
    grep -qE '^Received: from gw\.example\.net \(unknown \[IPv6:2001:db8::1\]\)' "$f1"
check "... and by mta4.example.net before (Postfix on c4)" \
    grep -qE '^Received: by mta4\.example\.net \(Postfix' "$f1"
check "c4's Postfix said EHLO [IPv6:2001:db8::1] over IPv4 (smtp64d's log)" \
    grep -qF 'session=00000001 event=helo verb=EHLO helo_in=[IPv6:2001:db8::1] helo_out=gw.example.net rewritten=yes' "$labdir/smtp64d.log"

echo "# send --tls"
"$LAB" --name "$N1" send --tls >"$T/send2.out" 2>&1
rc=$?
check "send --tls exits 0 (got $rc)" test "$rc" -eq 0
check "... c4's smtp client made TLS with the gateway (its certificate, from the lab CA)" \
    grep -qE 'postfix/smtp\[[0-9]+\]: Trusted TLS connection established to mx6\.example\.org\[192\.0\.2\.30\]:25: TLSv1\.[23]' "$T/send2.out"
check "... which terminated it (smtp64d: event=tls leg=client)" \
    grep -qE 'session=00000002 event=tls leg=client tls=TLSv1\.[23]' "$labdir/smtp64d.log"
f2=$(delivered_file "$T/send2.out")
check "the TLS message is in the Maildir" test -s "$f2"
check "... and came over TLS on the upstream leg (ESMTPS)" \
    grep -qE 'with ESMTPS id' "$f2"

echo "# send --file --helo"
printf 'Subject: lab tool %s\r\n\r\nbody of the file\r\n' "$N1" >"$T/msg.eml"
"$LAB" --name "$N1" send --from c4 --to user@example.org --helo client.example.net \
    --file "$T/msg.eml" >"$T/send3.out" 2>&1
rc=$?
check "send --file exits 0 (got $rc)" test "$rc" -eq 0
f3=$(delivered_file "$T/send3.out")
check "the file's message was delivered" grep -q "^Subject: lab tool $N1" "$f3"
check "... c4's Postfix said the --helo name (smtp_helo_name)" \
    grep -qF 'session=00000003 event=helo verb=EHLO helo_in=client.example.net helo_out=gw.example.net' "$labdir/smtp64d.log"

echo "# send --swaks: one session straight from c4, no Postfix"
"$LAB" --name "$N1" send --swaks >"$T/send4.out" 2>&1
rc=$?
check "send --swaks exits 0 (got $rc)" test "$rc" -eq 0
check "... swaks said EHLO [IPv6:2001:db8::1] to 192.0.2.30" \
    grep -qF -- '-> EHLO [IPv6:2001:db8::1]' "$T/send4.out"
f4=$(delivered_file "$T/send4.out")
check "... and the message is in the Maildir" test -s "$f4"
check "c4's Postfix relayed 3 messages (its log)" \
    test "$(grep -cE 'postfix/smtp\[[0-9]+\]: .*relay=mx6\.example\.org\[192\.0\.2\.30\]:25, .*status=sent' "$c4log")" -eq 3

# ------------------------------------------------------------ status, logs
"$LAB" --name "$N1" status >"$T/status.out" 2>&1
check "status: smtp64d running, 4 sessions closed" \
    grep -qE '^smtp64d: running .*4 opened, 4 closed' "$T/status.out"
check "status: c4's queue empty, 3 sent, no bounce" \
    grep -q '^postfix c4 (sender): queue 0 message(s), sent 3, bounces received 0' "$T/status.out"
check "status: s6 empty queue, 4 delivered" \
    grep -q '^postfix s6: queue 0 message(s), delivered 4' "$T/status.out"
"$LAB" --name "$N1" logs gw >"$T/logs.out" 2>&1
check "logs gw: smtp64d's HELO rewrites" \
    grep -q 'event=helo verb=EHLO helo_in=\[IPv6:2001:db8::1\] helo_out=gw.example.net rewritten=yes' "$T/logs.out"
"$LAB" --name "$N1" logs s6 >"$T/logs6.out" 2>&1
check "logs s6: Postfix delivered" grep -q 'status=sent' "$T/logs6.out"
"$LAB" --name "$N1" logs c4 >"$T/logs4.out" 2>&1
check "logs c4: the sending Postfix's log, then the swaks session" \
    bash -c "grep -q 'relay=mx6.example.org\[192.0.2.30\]:25' '$T/logs4.out' && grep -qF -- '-> EHLO [IPv6:2001:db8::1]' '$T/logs4.out'"

# ------------------------------------------------------------ hostile
# A bare LF in a command (the gateway answers 500 itself), then SMTP
# smuggling in the data: under the default bare_line_endings = inline the
# bare LFs become line ends inside the one message, the smuggled commands
# stay text of it, and the server answers the client's own end of data.
echo "# a hostile session: bare LF, then smuggling"
smuggled='MAIL FROM:<evil@example.net>\r\nRCPT TO:<user@example.org>\r\nDATA\r\nSubject: smuggled\r\n\r\nx\r\n.\r\n'
ip netns exec "s64lab-$N1-c4" python3 "$LAB_LIB_DIR/smtpchat.py" client 192.0.2.30 25 \
    'e:220' 's:EHLO client.example.net\r\n' 'e:250' \
    's:MAIL FROM:<a@example.net>\nRCPT TO:<user@example.org>\r\n' 'e:500 5.5.2' \
    's:MAIL FROM:<a@example.net>\r\nRCPT TO:<user@example.org>\r\nDATA\r\n' \
    'e:250' 'e:250' 'e:354' \
    "s:Subject: first\\r\\n\\r\\nbody\\n.\\n$smuggled" 'e:250' \
    's:QUIT\r\n' 'e:221' 'c' \
    >"$T/chat.out" 2>&1
check "the gateway answers 500 5.5.2, then the one message is accepted" test $? -eq 0

# ------------------------------------------------------------ trace
echo "# trace"
"$LAB" --name "$N1" trace >"$T/trace.out" 2>&1
rc=$?
sed 's/^/    | /' "$T/trace.out" | head -n 24
grep -E '^(trace:|pair=5 )' "$T/trace.out" | sed 's/^/    | /'
grep -A16 '^pair=5 ' "$T/trace.out" | tail -n 14 | sed 's/^/    | /'
check "trace exits 0 (got $rc)" test "$rc" -eq 0
check "trace: 5 pairs, nothing unpaired, one command answered by the gateway, no divergence" \
    grep -q '^trace: sessions=10 pairs=5 unpaired=0 helo_rewritten=5 gateway_answered=1 diverged=0 ' "$T/trace.out"
check "trace: the pair carries smtp64d's session id and both HELOs" \
    grep -qE '^pair=1 session=00000001 paired_by=log client=192\.0\.2\.10:[0-9]+>192\.0\.2\.30:25 .*upstream=\[2001:db8::1\]:[0-9]+>\[2001:db8::25\]:25 .*helo_client=\[IPv6:2001:db8::1\] helo_upstream=gw\.example\.net helo_rewritten=yes' "$T/trace.out"
check "trace: the EHLO rows side by side, the rewrite marked" \
    grep -qE '^  ~ C: EHLO \[IPv6:2001:db8::1\] +\| C: EHLO gw\.example\.net +<- HELO rewritten$' "$T/trace.out"
check "trace: the bare-LF command is marked as answered by the gateway" \
    grep -qE '^  G C: MAIL FROM:<a@example\.net>\\x0aRCPT TO:.* \| +<- answered by the gateway$' "$T/trace.out"
check "trace: ... its 500 too, and the relayed MAIL FROM lines up after it" \
    bash -c "grep -A1 '^  G S: 500 5.5.2' '$T/trace.out' | grep -q '^  = C: MAIL FROM:<a@example.net> *| C: MAIL FROM:<a@example.net>'"
check "trace: the smuggled data is marked as changed by the gateway (inline: 8 client lines, 10 upstream)" \
    grep -qE '^  ~ C: \[message data: 8 lines\] +\| C: \[message data: 10 lines\]' "$T/trace.out"
check "trace: the TLS session is shown up to STARTTLS on both legs" \
    grep -qE '^  = S: \[TLS from here: not readable\] +\| S: \[TLS from here' "$T/trace.out"
"$LAB" --name "$N1" trace --json >"$T/trace.json" 2>&1
check "trace --json: every line is JSON, 5 pairs with both HELOs" \
    python3 - "$T/trace.json" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
pairs = [r for r in rows if "pair" in r]
assert len(pairs) == 5, pairs
for p in pairs:
    assert p["paired_by"] == "log"
    assert p["upstream"]["helo"] == "gw.example.net"
    assert p["helo_rewritten"] is True
assert pairs[0]["client"]["helo"] == "[IPv6:2001:db8::1]"
assert rows[-1]["summary"]["pairs"] == 5
assert pairs[4]["diverge"] is None and pairs[4]["gateway_answered"] == 1
PY

# ------------------------------------------------------------ smtp64-pcap -T
PCAP=${SMTP64_PCAP:-$(dirname "$LAB")/smtp64-pcap}
echo "# smtp64-pcap -T: two captures, the config alone, live"
tcpdump -r "$labdir/trace.pcap" -w "$T/v4.pcap" ip >/dev/null 2>&1
tcpdump -r "$labdir/trace.pcap" -w "$T/v6.pcap" ip6 >/dev/null 2>&1
"$PCAP" -T -C "$labdir/smtp64.conf" -L "$labdir/smtp64d.log" \
    -r "$T/v4.pcap" -r "$T/v6.pcap" >"$T/two.out" 2>&1
check "one capture per leg (-r twice) gives the same pairs" \
    grep -q '^trace: sessions=10 pairs=5 unpaired=0 helo_rewritten=5 gateway_answered=1 diverged=0 ' "$T/two.out"
"$PCAP" -T -C "$labdir/smtp64.conf" -r "$labdir/trace.pcap" >"$T/conf.out" 2>&1
check "without the log, the config's pairs pair the legs" \
    bash -c "[ \$(grep -c '^pair=[0-9]* session=- paired_by=config ' '$T/conf.out') -eq 5 ]"
ip netns exec "s64lab-$N1-gw" "$PCAP" -T -C "$labdir/smtp64.conf" \
    -L "$labdir/smtp64d.log" -i any -c 2 -t 5 >"$T/live.out" 2>"$T/live.err" &
live=$!
wait_for 300 grep -q 'listening on any' "$T/live.err" ||
	fail "smtp64-pcap -T -i any starts"
# "listening on" comes before a packet socket on "any" sees every
# interface: a SYN missed then leaves a leg unpaired (seen on a loaded
# machine), so give it a second.
sleep 1
"$LAB" --name "$N1" send >/dev/null 2>&1
if ! wait_gone "$live" 300; then
	fail "smtp64-pcap -T -i any -c 2 ends after one pair"
	sed 's/^/    | out: /' "$T/live.out" | tail -n 20
	sed 's/^/    | err: /' "$T/live.err" | tail -n 5
fi
lab_kill "$live"
check "live (-i any -c 2): the new session's legs paired by its log line" \
    grep -qE '^pair=1 session=0000000[0-9a-f] paired_by=log .*helo_upstream=gw\.example\.net helo_rewritten=yes' "$T/live.out"

# ------------------------------------------------------------ the crash
# Two labs at once: kill the second's up half-way (it has made
# namespaces and perhaps started processes by now).
for ((i = 0; i < 100; i++)); do
	ip netns list | grep -q "^s64lab-$N2-" && break
	sleep 0.1
done
sleep 2
kill -KILL "$up2" 2>/dev/null
wait "$up2" 2>/dev/null
check "the second lab existed beside the first" test -s "/run/smtp64-lab/$N2/state"

# gone NAME LABDIR PIDS...: nothing of lab NAME is left.
gone() {
	local name=$1 dir=$2 p
	shift 2
	if ip netns list | grep -q "^s64lab-$name-"; then
		echo "    namespaces left: $(ip netns list | grep "^s64lab-$name-" | tr '\n' ' ')"
		return 1
	fi
	for p in "$@"; do
		if kill -0 "$p" 2>/dev/null; then
			echo "    process left: $p ($(tr '\0' ' ' </proc/"$p"/cmdline 2>/dev/null))"
			return 1
		fi
	done
	[ -z "$dir" ] || [ ! -e "$dir" ] || { echo "    folder left: $dir"; return 1; }
	[ ! -e "/run/smtp64-lab/$name" ] || { echo "    state left"; return 1; }
	! ls -d /etc/netns/"s64lab-$name-"* >/dev/null 2>&1 ||
		{ echo "    /etc/netns entries left"; return 1; }
	! postconf -c /etc/postfix -h alternate_config_directories 2>/dev/null |
		grep -q "smtp64-lab.s64lab-$name\." ||
		{ echo "    alternate_config_directories entry left"; return 1; }
}

# lab_pids NAME: every process the lab recorded, and every process in its
# namespaces, now.
lab_pids() {
	local ns
	grep -oE '\[[0-9]+\]="[0-9]+:[0-9]+"' "/run/smtp64-lab/$1/state" 2>/dev/null |
		sed 's/.*="\([0-9]*\):.*/\1/'
	for ns in $(ip netns list | awk '{print $1}' | grep "^s64lab-$1-"); do
		ip netns pids "$ns"
	done
	cat /tmp/smtp64-lab.s64lab-"$1".*/postfix-*/queue/pid/master.pid 2>/dev/null
}

echo "# down (the crashed second lab)"
pids2=$(lab_pids "$N2" | tr -s ' \n' ' ')
dir2=$(ls -d /tmp/smtp64-lab.s64lab-"$N2".* 2>/dev/null | head -n 1)
echo "    its processes: ${pids2:-none}; its folder: ${dir2:-none}"
"$LAB" --name "$N2" down >"$T/down2.out" 2>&1
check "down of the crashed lab exits 0" test $? -eq 0
# shellcheck disable=SC2086
if gone "$N2" "$dir2" $pids2; then
	pass "nothing of the crashed lab is left (namespaces, processes, folder, state)"
else
	fail "nothing of the crashed lab is left"
fi

echo "# down"
pids1=$(lab_pids "$N1" | tr -s ' \n' ' ')
echo "    its processes: $pids1"
check "the lab recorded smtp64d, dnsmasq, tcpdump and Postfix" \
    test "$(wc -w <<<"$pids1")" -ge 4
"$LAB" --name "$N1" down >"$T/down.out" 2>&1
rc=$?
cat "$T/down.out" | sed 's/^/    | /'
check "down exits 0 (got $rc)" test "$rc" -eq 0
# shellcheck disable=SC2086
if gone "$N1" "$labdir" $pids1; then
	pass "nothing is left: no namespace, no process, no temp folder, no state"
else
	fail "nothing is left after down"
fi
"$LAB" --name "$N1" down >"$T/down-again.out" 2>&1
check "down of a lab that is gone says so and exits 0" \
    bash -c "[ $? -eq 0 ] && grep -q 'nothing to remove' '$T/down-again.out'"

# ------------------------------------------------------------ other topologies
# Five more labs, brought up at once (most of an `up` is waiting for
# Postfix): route mode's tunnel server, the gateway with helo_rewrite =
# off in front of a strict MX and of a lax one, the edge router, the
# sidecar.
cat >"$T/off.conf" <<'EOF'
[gateway]
fqdn = gw.example.net
listen = 0.0.0.0:25, [::]:25
helo_rewrite = off

[pair mx6]
ipv4 = 192.0.2.30
ipv6 = 2001:db8::25
EOF
echo "# up: $N3 tunnel, $N4 rewrite off + strict, $N5 rewrite off + --lax, $N6 edge-router, $N7 sidecar"
ups=()
"$LAB" --name "$N3" up --topology tunnel >"$T/up3.out" 2>&1 &
ups+=($!)
"$LAB" --name "$N4" up --config "$T/off.conf" --no-capture >"$T/up4.out" 2>&1 &
ups+=($!)
"$LAB" --name "$N5" up --config "$T/off.conf" --lax --no-capture >"$T/up5.out" 2>&1 &
ups+=($!)
"$LAB" --name "$N6" up --topology edge-router --no-capture >"$T/up6.out" 2>&1 &
ups+=($!)
"$LAB" --name "$N7" up --topology sidecar --no-capture >"$T/up7.out" 2>&1 &
ups+=($!)
i=3
for p in "${ups[@]}"; do
	wait "$p"
	rc=$?
	check "up of lab $i exits 0 (got $rc)" test "$rc" -eq 0 ||
		sed 's/^/    | /' "$T/up$i.out"
	i=$((i + 1))
done

# lab_dir NAME: the lab's folder, from its state.
lab_dir() { sed -n 's/^declare -g LAB_DIR="\(.*\)"$/\1/p' "/run/smtp64-lab/$1/state"; }

echo "# tunnel: one IPv4 address for two IPv6-only MX, one IPv6 address for two IPv4-only MX"
sed 's/^/    | /' "$T/up3.out"
check "up prints the route addresses and the published MX" \
    grep -qE '^  dns .*MX a\.example\.org -> mx\.a\.example\.org; mx\.a\.example\.org 192\.0\.2\.40,2001:db8:a::25' "$T/up3.out"
d3=$(lab_dir "$N3")
# tsend SITE RCPT MX-SITE RELAY: send from SITE to RCPT lands in MX-SITE,
# relayed by SITE's Postfix to RELAY (the route address); that it lands
# nowhere else is checked below (one message per MX).
tsend() {
	local from=$1 rcpt=$2 mx=$3 relay=$4 out=$T/t-$1-${2%%.*}.out f
	"$LAB" --name "$N3" send --from "$from" --to "$rcpt" >"$out" 2>&1
	check "tunnel: $from -> $rcpt: send exits 0" test $? -eq 0 ||
		sed 's/^/    | /' "$out"
	check "... $from's smtp client relayed it to ${rcpt#*@}'s MX at the gateway's $relay" \
	    grep -qE "postfix/smtp\[[0-9]+\]: [0-9A-F]+: to=<$rcpt>, relay=mx\.${rcpt#*@}\[$relay\]:25, .*status=sent" "$out"
	f=$(delivered_file "$out")
	check "... delivered on $mx, in ${rcpt#*@}'s Maildir" \
	    bash -c "grep -q '^send: delivered on $mx: ' '$out' && [ -s '$f' ] && grep -q '^Received: from gw\.example\.net ' '$f'"
}
tsend c4 user@a.example.org sa 192.0.2.40
tsend c4 user@b.example.org sb 192.0.2.40
tsend c6 user@c.example.org sc 2001:db8:1::40
tsend c6 user@d.example.org sd 2001:db8:1::40
check "tunnel: smtp64d chose each domain's own server (route mode, MX lookup)" \
    bash -c "grep -q 'event=route_connect domain=a.example.org dest=\[2001:db8:a::25\]:25' '$d3/smtp64d.log' &&
	grep -q 'event=route_connect domain=b.example.org dest=\[2001:db8:b::25\]:25' '$d3/smtp64d.log' &&
	grep -q 'event=route_connect domain=c.example.org dest=198.51.100.25:25' '$d3/smtp64d.log' &&
	grep -q 'event=route_connect domain=d.example.org dest=203.0.113.25:25' '$d3/smtp64d.log'"
for s in sa sb sc sd; do
	n=$(find "$d3/postfix-$s/mail" -type f -path '*/new/*' | wc -l)
	check "tunnel: $s holds exactly one message (got $n)" test "$n" -eq 1
done
"$LAB" --name "$N3" trace >"$T/trace3.out" 2>&1
check "tunnel: trace pairs the four route sessions (by timing), both HELOs shown" \
    grep -q '^trace: sessions=8 pairs=4 unpaired=0 helo_rewritten=4 ' "$T/trace3.out"
check "... c4's session to 192.0.2.40 beside the gateway's to a.example.org's MX" \
    grep -qE '^pair=1 session=- paired_by=timing client=192\.0\.2\.10:[0-9]+>192\.0\.2\.40:25 .*upstream=\[2001:db8:a::1\]:[0-9]+>\[2001:db8:a::25\]:25 .*helo_client=\[IPv6:2001:db8::1\] helo_upstream=gw\.example\.net' "$T/trace3.out"

echo "# helo_rewrite = off, strict MX: the MX refuses the literal, c4's Postfix bounces"
"$LAB" --name "$N4" send >"$T/send-off.out" 2>&1
rc=$?
sed 's/^/    | /' "$T/send-off.out"
check "send exits non-zero (got $rc)" test "$rc" -ne 0
check "... c4's smtp client: bounced, the MX said 'Helo command rejected'" \
    grep -qE 'postfix/smtp\[[0-9]+\]: [0-9A-F]+: to=<user@example\.org>, relay=mx6\.example\.org\[192\.0\.2\.30\]:25, .*status=bounced \(host mx6\.example\.org\[192\.0\.2\.30\] said: 554 5\.7\.1 <\[IPv6:2001:db8::1\]>: Helo command rejected' "$T/send-off.out"
check "... smtp64d passed the HELO unchanged (rewritten=no)" \
    grep -qF 'event=helo verb=EHLO helo_in=[IPv6:2001:db8::1] helo_out=[IPv6:2001:db8::1] rewritten=no' "$(lab_dir "$N4")/smtp64d.log"
"$LAB" --name "$N4" status >"$T/status4.out" 2>&1
check "... nothing delivered on s6, the bounce in c4's own mailbox" \
    bash -c "grep -q '^postfix s6: queue 0 message(s), delivered 0' '$T/status4.out' &&
	grep -q '^postfix c4 (sender): queue 0 message(s), sent 0, bounces received 1' '$T/status4.out'"

echo "# helo_rewrite = off, MX with --lax: the literal is accepted"
"$LAB" --name "$N5" send >"$T/send-lax.out" 2>&1
check "send exits 0" test $? -eq 0 || sed 's/^/    | /' "$T/send-lax.out"
f5=$(delivered_file "$T/send-lax.out")
check "... received with the client's own HELO, the literal" \
    grep -qE '^Received: from \[IPv6:2001:db8::1\] \(unknown \[IPv6:2001:db8::1\]\)' "$f5"

echo "# edge-router: TPROXY hands c4's connection to 192.0.2.30 to smtp64d"
"$LAB" --name "$N6" send >"$T/send-edge.out" 2>&1
check "send exits 0" test $? -eq 0 || sed 's/^/    | /' "$T/send-edge.out"
check "... c4's smtp client relayed to 192.0.2.30, which no interface has" \
    grep -qE 'relay=mx6\.example\.org\[192\.0\.2\.30\]:25, .*status=sent' "$T/send-edge.out"
check "... smtp64d took it transparently (client 203.0.113.10, local 192.0.2.30)" \
    grep -qE 'event=open client=203\.0\.113\.10:[0-9]+ local=192\.0\.2\.30:25 dest=\[2001:db8::25\]:25' "$(lab_dir "$N6")/smtp64d.log"
f6=$(delivered_file "$T/send-edge.out")
check "... delivered on s6, HELO rewritten" \
    grep -qE '^Received: from gw\.example\.net \(unknown \[IPv6:2001:db8::1\]\)' "$f6"

echo "# sidecar: smtp64d beside Postfix in s6"
"$LAB" --name "$N7" send >"$T/send-side.out" 2>&1
check "send exits 0" test $? -eq 0 || sed 's/^/    | /' "$T/send-side.out"
check "... c4's smtp client relayed to 192.0.2.30 (smtp64d in s6)" \
    grep -qE 'relay=mx6\.example\.org\[192\.0\.2\.30\]:25, .*status=sent' "$T/send-side.out"
f7=$(delivered_file "$T/send-side.out")
check "... Postfix in the same namespace got it over IPv6, HELO rewritten" \
    grep -qE '^Received: from gw\.example\.net \(unknown \[IPv6:2001:db8::25\]\)' "$f7"

echo "# down: $N3 .. $N7, at once"
declare -A lpids=() ldirs=() downs=()
for n in "$N3" "$N4" "$N5" "$N6" "$N7"; do
	lpids[$n]=$(lab_pids "$n" | tr -s ' \n' ' ')
	ldirs[$n]=$(lab_dir "$n")
	"$LAB" --name "$n" down >"$T/down-$n.out" 2>&1 &
	downs[$n]=$!
done
for n in "$N3" "$N4" "$N5" "$N6" "$N7"; do
	wait "${downs[$n]}"
	check "down of $n exits 0" test $? -eq 0
	# shellcheck disable=SC2086
	if gone "$n" "${ldirs[$n]}" ${lpids[$n]}; then
		pass "nothing of $n is left"
	else
		fail "nothing of $n is left"
	fi
done
check "no Postfix folder of any lab of this run is still listed in main.cf" \
    bash -c "! postconf -c /etc/postfix -h alternate_config_directories 2>/dev/null | grep -q 'smtp64-lab.s64lab-e$(printf '%x' "$$" | cut -c1-10)'"

lab_summary
