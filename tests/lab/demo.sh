#!/usr/bin/env bash
# tests/lab/demo.sh (make demo): a v4-only MTA delivers to a v6-only MX with
# strict HELO checks, through smtp64d.  Builds the lab in private network
# namespaces, shows the SMTP transcript, the gateway's log and the
# delivered message's Received header, then removes everything.
#
#   SMTP64D=path   daemon to run (default build/smtp64d)
#   DEMO_CONF=path configuration (default tests/lab/demo.conf)
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null
. "$here/lib.sh"

DEMO_CONF=${DEMO_CONF:-$here/demo.conf}
HELO='[IPv6:2001:db8::1]'

say() { printf '\n==> %s\n' "$*"; }
die() {
	printf '\ndemo: FAILED: %s\n' "$*" >&2
	lab_dump_logs 20 >&2
	exit 1
}
indent() { sed 's/^/    /'; }

[ -x "$SMTP64D" ] || { echo "demo: $SMTP64D not built (run make)" >&2; exit 1; }
[ -r "$DEMO_CONF" ] || { echo "demo: no config $DEMO_CONF" >&2; exit 1; }
"$SMTP64D" -t -c "$DEMO_CONF" || die "smtp64d -t rejects $DEMO_CONF"

lab_init

say "Building the lab: namespaces $(lab_nsname c4), $(lab_nsname gw), $(lab_nsname s6)"
lab_topology c4 gw s6 || die "cannot build the namespaces"
cat <<EOF
    c4  v4-only MTA   $C4_ADDR/24, default via $GW_C4_ADDR
    gw  smtp64d       $GW_C4_ADDR and $MX6_V4 (stands for the MX) | $GW_S6_ADDR/64
    s6  v6-only MX    $S6_ADDR/64, default via $GW_S6_ADDR
    (no IP forwarding in gw: only the SMTP relay connects the two families)
EOF

say "Starting Postfix on s6 ([$S6_ADDR]:25) with strict HELO checks"
lab_postfix_start s6 mx6.example.org || die "Postfix did not start on s6"
postconf -c "${LAB_PF_DIR[s6]}/etc" -h smtpd_helo_restrictions | tr -s ' \n' ' ' |
	sed 's/^/    smtpd_helo_restrictions = /; s/ *$//'
echo
sed 's/^/    helo_access: /' "${LAB_PF_DIR[s6]}/etc/helo_access"
echo "    mynetworks = $(postconf -c "${LAB_PF_DIR[s6]}/etc" -h mynetworks) (the gateway is not trusted)"

say "Starting smtp64d in gw with $DEMO_CONF"
grep -vE '^[[:space:]]*([#;]|$)' "$DEMO_CONF" | indent
lab_smtp64d_start "$DEMO_CONF" || die "smtp64d did not start"
echo "    smtp64d running as PID $SMTP64D_PID, listening on port 25"

say "A v4-only MTA in c4 sends mail over IPv4 to $MX6_V4 with HELO $HELO"
echo "    (that HELO is an address literal: this MX refuses it from any direct client)"
out=$LAB_DIR/swaks.out
ip netns exec "$NS_C4" swaks --server "$MX6_V4" --helo "$HELO" \
	--from a@example.net --to user@example.org \
	--header "Subject: smtp64 demo" --header "X-Lab-Id: demo-$LAB_TAG" \
	--timeout 15 </dev/null >"$out" 2>&1
rc=$?
indent <"$out"
[ "$rc" -eq 0 ] || die "swaks exited $rc: the message was not accepted"

say "For contrast: the same HELO sent straight to the MX (from gw, over IPv6)"
ip netns exec "$NS_GW" swaks --server "$S6_ADDR" --helo "$HELO" \
	--from a@example.net --to user@example.org --timeout 15 \
	</dev/null >"$LAB_DIR/direct.out" 2>&1
echo "    swaks exit $?; the MX's answer to RCPT TO:"
awk '/^ -> RCPT TO:/{getline; print; exit}' "$LAB_DIR/direct.out" | indent

say "What smtp64d logged (the HELO argument was rewritten on the way)"
found=""
for ((i = 0; i < 50; i++)); do
	grep -q 'event=close' "$SMTP64D_LOG" && break
	sleep 0.1
done
indent <"$SMTP64D_LOG"
grep -F 'event=helo' "$SMTP64D_LOG" | grep -qF "helo_in=$HELO" ||
	die "no 'event=helo helo_in=$HELO' line in the smtp64d log"
grep -F 'event=helo' "$SMTP64D_LOG" | sed -n 's/.*helo_in=\([^ ]*\) helo_out=\([^ ]*\).*/    HELO \1  ->  HELO \2/p'

say "The message in the MX's Maildir"
for ((i = 0; i < 50; i++)); do
	found=$(maildir_find s6 "X-Lab-Id: demo-$LAB_TAG")
	[ -n "$found" ] && break
	sleep 0.1
done
[ -n "$found" ] || die "the message did not reach the Maildir"
echo "    ${found#"$LAB_DIR"/}"
awk '/^$/{exit} /^Received:/{p=1; print; next} p && /^[ \t]/{print; next} {p=0}' "$found" | indent
hdr=$(received_header "$found")
grep -qE '^Received: from gw\.example\.net ' <<<"$hdr" ||
	die "the Received header does not show 'from gw.example.net'"
echo
echo "    The MX saw HELO gw.example.net from [IPv6:$GW_S6_ADDR] and accepted the mail."
echo "    Postfix log:"
grep -E 'client=|status=sent' "${LAB_PF_DIR[s6]}/maillog" | indent

say "Cleaning up (Postfix, smtp64d, namespaces, temporary files)"
lab_cleanup
echo
echo "demo: OK: a v4-only MTA delivered to a v6-only MX with strict HELO checks through smtp64d"
exit 0
