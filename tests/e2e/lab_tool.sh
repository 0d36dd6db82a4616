#!/usr/bin/env bash
# e2e: smtp64-lab, the lab between commands.
#  - it refuses to run without root, and makes nothing;
#  - up (v4-to-v6) builds the lab; send (plain, --tls, --file) delivers
#    through smtp64d to Postfix on the IPv6-only MX with strict HELO
#    checks; status and logs report it;
#  - trace pairs each client leg with its upstream leg and shows both
#    HELOs (the client's IPv6 literal over IPv4 and the rewritten one),
#    in text and in JSON; a bare LF answered by the gateway and SMTP
#    smuggling show as such; smtp64-pcap -T gives the same pairs from one
#    capture per leg, pairs by the config alone, and captures live;
#  - a second lab exists beside the first; its `up`, killed with SIGKILL
#    half-way (a crash), is still removed by `down` from its state on disk;
#  - after down nothing is left: no namespace of the lab, no process it
#    started, no temporary folder, no state, no Postfix config entry.
#   SMTP64_LAB  the program (default build/smtp64-lab)
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
T=$(mktemp -d /tmp/smtp64-labtool.XXXXXX)
cleanup() {
	"$LAB" --name "$N1" down >/dev/null 2>&1
	"$LAB" --name "$N2" down >/dev/null 2>&1
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
delivered_file() { sed -n 's/^send: delivered on s6: //p' "$1"; }
echo "# send (plain)"
"$LAB" --name "$N1" send >"$T/send1.out" 2>&1
rc=$?
check "send exits 0 (got $rc)" test "$rc" -eq 0
f1=$(delivered_file "$T/send1.out")
check "the message is in s6's Maildir" test -s "$f1"
check "... received from gw.example.net, HELO rewritten for the strict MX" \
    grep -qE '^Received: from gw\.example\.net \(unknown \[IPv6:2001:db8::1\]\)' "$f1"
check "the client said EHLO [IPv6:2001:db8::1] over IPv4" \
    grep -qF -- '-> EHLO [IPv6:2001:db8::1]' "$T/send1.out"

echo "# send --tls"
"$LAB" --name "$N1" send --tls >"$T/send2.out" 2>&1
rc=$?
check "send --tls exits 0 (got $rc)" test "$rc" -eq 0
check "... the client's TLS session ends at the gateway" \
    grep -q '^  === TLS peer DN=.*CN=gw.example.net' "$T/send2.out"
f2=$(delivered_file "$T/send2.out")
check "the TLS message is in the Maildir" test -s "$f2"
check "... and came over TLS on the upstream leg (ESMTPS)" \
    grep -qE 'with ESMTPS id' "$f2"

echo "# send --file"
printf 'Subject: lab tool %s\r\n\r\nbody of the file\r\n' "$N1" >"$T/msg.eml"
"$LAB" --name "$N1" send --from c4 --to user@example.org --helo client.example.net \
    --file "$T/msg.eml" >"$T/send3.out" 2>&1
rc=$?
check "send --file exits 0 (got $rc)" test "$rc" -eq 0
f3=$(delivered_file "$T/send3.out")
check "the file's message was delivered" grep -q "^Subject: lab tool $N1" "$f3"

# ------------------------------------------------------------ status, logs
"$LAB" --name "$N1" status >"$T/status.out" 2>&1
check "status: smtp64d running, 3 sessions closed" \
    grep -qE '^smtp64d: running .*3 opened, 3 closed' "$T/status.out"
check "status: s6 empty queue, 3 delivered" \
    grep -q '^postfix s6: queue 0 message(s), delivered 3' "$T/status.out"
"$LAB" --name "$N1" logs gw >"$T/logs.out" 2>&1
check "logs gw: smtp64d's HELO rewrites" \
    grep -q 'event=helo verb=EHLO helo_in=\[IPv6:2001:db8::1\] helo_out=gw.example.net rewritten=yes' "$T/logs.out"
"$LAB" --name "$N1" logs s6 >"$T/logs6.out" 2>&1
check "logs s6: Postfix delivered" grep -q 'status=sent' "$T/logs6.out"

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
grep -E '^(trace:|pair=4 )' "$T/trace.out" | sed 's/^/    | /'
grep -A16 '^pair=4 ' "$T/trace.out" | tail -n 14 | sed 's/^/    | /'
check "trace exits 0 (got $rc)" test "$rc" -eq 0
check "trace: 4 pairs, nothing unpaired, one command answered by the gateway, no divergence" \
    grep -q '^trace: sessions=8 pairs=4 unpaired=0 helo_rewritten=4 gateway_answered=1 diverged=0 ' "$T/trace.out"
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
check "trace --json: every line is JSON, 4 pairs with both HELOs" \
    python3 - "$T/trace.json" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
pairs = [r for r in rows if "pair" in r]
assert len(pairs) == 4, pairs
for p in pairs:
    assert p["paired_by"] == "log"
    assert p["upstream"]["helo"] == "gw.example.net"
    assert p["helo_rewritten"] is True
assert pairs[0]["client"]["helo"] == "[IPv6:2001:db8::1]"
assert rows[-1]["summary"]["pairs"] == 4
assert pairs[3]["diverge"] is None and pairs[3]["gateway_answered"] == 1
PY

# ------------------------------------------------------------ smtp64-pcap -T
PCAP=${SMTP64_PCAP:-$(dirname "$LAB")/smtp64-pcap}
echo "# smtp64-pcap -T: two captures, the config alone, live"
tcpdump -r "$labdir/trace.pcap" -w "$T/v4.pcap" ip >/dev/null 2>&1
tcpdump -r "$labdir/trace.pcap" -w "$T/v6.pcap" ip6 >/dev/null 2>&1
"$PCAP" -T -C "$labdir/smtp64.conf" -L "$labdir/smtp64d.log" \
    -r "$T/v4.pcap" -r "$T/v6.pcap" >"$T/two.out" 2>&1
check "one capture per leg (-r twice) gives the same pairs" \
    grep -q '^trace: sessions=8 pairs=4 unpaired=0 helo_rewritten=4 gateway_answered=1 diverged=0 ' "$T/two.out"
"$PCAP" -T -C "$labdir/smtp64.conf" -r "$labdir/trace.pcap" >"$T/conf.out" 2>&1
check "without the log, the config's pairs pair the legs" \
    bash -c "[ \$(grep -c '^pair=[0-9]* session=- paired_by=config ' '$T/conf.out') -eq 4 ]"
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

lab_summary
