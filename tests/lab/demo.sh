#!/usr/bin/env bash
# tests/lab/demo.sh (make demo): a v4-only MTA delivers to a v6-only MX with
# strict HELO checks, through smtp64d.  Builds the lab in private network
# namespaces, shows the SMTP transcript, the gateway's log and the
# delivered message's Received header; then the same with STARTTLS: a
# throwaway certificate, the gateway terminating TLS on both legs and
# rewriting the EHLO sent inside TLS.  Then it removes everything.
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

bash "$here/preflight.sh" || { echo "demo: FAILED: preflight" >&2; exit 1; }
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
# A copy, so that the TLS part below can edit it and send SIGHUP.
conf=$LAB_DIR/smtp64.conf
cp "$DEMO_CONF" "$conf"
lab_smtp64d_start "$conf" || die "smtp64d did not start"
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

say "Now with STARTTLS: throwaway certificates (tests/lab/mkcert.sh)"
lab_tls_certs || die "cannot make the certificates"
for c in gw mx; do
	openssl x509 -in "$LAB_TLS_DIR/$c.crt" -noout -subject -ext subjectAltName 2>/dev/null |
		tr -s ' \n' '  ' | sed "s|^|    $c.crt: |; s/X509v3 Subject Alternative Name: /SAN /; s/ *$//"
	echo
done
echo "    (gw.crt for the gateway, mx.crt for Postfix, both from a CA made for this run)"

say "Postfix on s6 offers STARTTLS too (smtpd_tls_security_level = may)"
lab_postfix_tls s6 || die "Postfix did not reload with TLS"
lab_pf_tls_settings | sed "s|$LAB_TLS_DIR|\$LAB_TLS_DIR|" | indent

say "smtp64d gets the certificate (tls = terminate is the default with one) and SIGHUP"
sed -i "/^\[gateway\]/a tls_cert_file = $LAB_TLS_DIR/gw.crt\ntls_key_file = $LAB_TLS_DIR/gw.key" "$conf"
grep -E '^tls_' "$conf" | sed "s|$LAB_TLS_DIR|\$LAB_TLS_DIR|" | indent
mark=$(wc -l <"$SMTP64D_LOG")
kill -HUP "$SMTP64D_PID"
for ((i = 0; i < 50; i++)); do
	tail -n "+$((mark + 1))" "$SMTP64D_LOG" | grep -q 'event=reload result=' && break
	sleep 0.1
done
tail -n "+$((mark + 1))" "$SMTP64D_LOG" | indent
tail -n "+$((mark + 1))" "$SMTP64D_LOG" | grep -q 'event=reload result=ok' ||
	die "smtp64d did not reload with the certificate"

say "The v4-only MTA sends again, now with swaks --tls and the same HELO $HELO"
out=$LAB_DIR/swaks-tls.out
mark=$(wc -l <"$SMTP64D_LOG")
pfmark=$(wc -l <"${LAB_PF_DIR[s6]}/maillog")
ip netns exec "$NS_C4" swaks --server "$MX6_V4" --helo "$HELO" --tls \
	--from a@example.net --to user@example.org \
	--header "Subject: smtp64 demo over TLS" --header "X-Lab-Id: demo-tls-$LAB_TAG" \
	--timeout 15 </dev/null >"$out" 2>&1
rc=$?
indent <"$out"
[ "$rc" -eq 0 ] || die "swaks --tls exited $rc: the message was not accepted"
grep -q '^=== TLS peer DN=.*CN=gw.example.net' "$out" ||
	die "swaks did not see the gateway's certificate"
echo
echo "    The client's TLS session ends at the gateway (its certificate, gw.example.net);"
echo "    the EHLO it sent inside TLS (the \"<~\" lines) is the one rewritten below."

say "What smtp64d logged for the TLS session"
for ((i = 0; i < 50; i++)); do
	tail -n "+$((mark + 1))" "$SMTP64D_LOG" | grep -q 'event=close' && break
	sleep 0.1
done
tail -n "+$((mark + 1))" "$SMTP64D_LOG" | indent
[ "$(tail -n "+$((mark + 1))" "$SMTP64D_LOG" | grep -F 'event=helo' |
	grep -cF "helo_in=$HELO helo_out=gw.example.net rewritten=yes")" -eq 2 ] ||
	die "the EHLO sent inside TLS was not rewritten"
echo
echo "    Two EHLOs rewritten: before STARTTLS, and inside TLS (RFC 3207 section 4.2)."

say "The message in the MX's Maildir, and Postfix's view of the session"
found=""
for ((i = 0; i < 50; i++)); do
	found=$(maildir_find s6 "X-Lab-Id: demo-tls-$LAB_TAG")
	[ -n "$found" ] && break
	sleep 0.1
done
[ -n "$found" ] || die "the TLS message did not reach the Maildir"
awk '/^$/{exit} /^Received:/{p=1; print; next} p && /^[ \t]/{print; next} {p=0}' "$found" |
	head -n 6 | indent
hdr=$(received_header "$found")
grep -qE '^Received: from gw\.example\.net .*using TLSv1\.[23].* with ESMTPS ' <<<"$hdr" ||
	die "the Received header does not show 'from gw.example.net' over TLS"
tail -n "+$((pfmark + 1))" "${LAB_PF_DIR[s6]}/maillog" |
	grep -E 'TLS connection established|client=|status=sent' | indent
echo
echo "    The MX saw a TLS session from the gateway, HELO gw.example.net, and accepted the mail."

say "Cleaning up (Postfix, smtp64d, namespaces, temporary files)"
lab_cleanup
echo
echo "demo: OK: a v4-only MTA delivered to a v6-only MX with strict HELO checks through smtp64d,"
echo "demo: OK: in clear text and with STARTTLS terminated on both legs"
exit 0
