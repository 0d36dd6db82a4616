#!/usr/bin/env bash
# tests/lab/demo.sh (make demo): a v4-only MTA (Postfix) delivers to a
# v6-only MX (Postfix with strict HELO checks) through smtp64d, in a lab
# built by smtp64-lab: the sender's log (MX lookup, relay through the
# gateway), the gateway's log and the delivered message's Received
# header; then the same with STARTTLS (a throwaway certificate, the
# gateway terminating TLS on both legs and rewriting the EHLO sent inside
# TLS); then both legs of each session side by side (smtp64-lab trace).
# Then it removes everything (smtp64-lab down).
#
#   SMTP64_LAB=path  the lab program (default build/smtp64-lab)
#   DEMO_CONF=path   smtp64d configuration (default: the one smtp64-lab
#                    generates, tests/lab/demo.conf plus the certificate)
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
LAB=${SMTP64_LAB:-$root/build/smtp64-lab}
HELO='[IPv6:2001:db8::1]'
NAME=demo$(printf '%x' "$$" | cut -c1-8)

say() { printf '\n==> %s\n' "$*"; }
indent() { sed 's/^/    /'; }
die() {
	printf '\ndemo: FAILED: %s\n' "$*" >&2
	"$LAB" --name "$NAME" status >&2 2>/dev/null
	exit 1
}
lab() { "$LAB" --name "$NAME" "$@"; }

bash "$here/preflight.sh" || { echo "demo: FAILED: preflight" >&2; exit 1; }
[ -x "$LAB" ] || { echo "demo: $LAB not built (run make)" >&2; exit 1; }
trap 'lab down >/dev/null 2>&1' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "Building the lab: smtp64-lab --name $NAME up${DEMO_CONF:+ --config $DEMO_CONF}"
lab up ${DEMO_CONF:+--config "$DEMO_CONF"} >"/tmp/smtp64-demo.$NAME.up" 2>&1
rc=$?
indent <"/tmp/smtp64-demo.$NAME.up"
rm -f "/tmp/smtp64-demo.$NAME.up"
[ "$rc" -eq 0 ] || die "smtp64-lab up failed"
echo "    (no IP forwarding in gw: only the SMTP relay connects the two families)"
# What the lab made: its folders, logs and namespaces.
# shellcheck source=/dev/null
. "/run/smtp64-lab/$NAME/state" || die "no state for lab $NAME"
pf=${LAB_PF_DIR[s6]}

say "Postfix on s6 ([2001:db8::25]:25) has strict HELO checks"
postconf -c "$pf/etc" -h smtpd_helo_restrictions | tr -s ' \n' ' ' |
	sed 's/^/    smtpd_helo_restrictions = /; s/ *$//'
echo
sed 's/^/    helo_access: /' "$pf/etc/helo_access"
echo "    mynetworks = $(postconf -c "$pf/etc" -h mynetworks) (the gateway is not trusted)"

say "smtp64d runs in gw with $CONF"
grep -vE '^[[:space:]]*([#;]|$)' "$CONF" | sed "s|$LAB_DIR|\$LAB_DIR|" | indent

say "A v4-only MTA, Postfix on c4, relays a message for user@example.org with HELO $HELO"
echo "    (smtp_helo_name = $HELO: an address literal, which this MX refuses from any direct"
echo "    client; its MX lookup in the lab DNS finds mx6.example.org, A 192.0.2.30: the gateway)"
out=$(lab send --helo "$HELO" 2>&1)
rc=$?
indent <<<"$out"
[ "$rc" -eq 0 ] || die "smtp64-lab send exited $rc: the message was not accepted"
grep -qE 'postfix/smtp\[[0-9]+\]: .*relay=mx6\.example\.org\[192\.0\.2\.30\]:25, .*status=sent' <<<"$out" ||
	die "Postfix on c4 did not relay through 192.0.2.30"
found=$(sed -n 's/^send: delivered on s6: //p' <<<"$out")

say "For contrast: the same HELO sent straight to the MX (from gw, over IPv6)"
ip netns exec "$NS_GW" swaks --server 2001:db8::25 --helo "$HELO" \
	--from a@example.net --to user@example.org --timeout 15 \
	</dev/null >"$LAB_DIR/direct.out" 2>&1
echo "    swaks exit $?; the MX's answer to RCPT TO:"
awk '/^ -> RCPT TO:/{getline; print; exit}' "$LAB_DIR/direct.out" | indent

say "What smtp64d logged (the HELO argument was rewritten on the way)"
lab logs gw | indent
lab logs gw | grep -F 'event=helo' | grep -qF "helo_in=$HELO" ||
	die "no 'event=helo helo_in=$HELO' line in the smtp64d log"
lab logs gw | grep -F 'event=helo' |
	sed -n 's/.*helo_in=\([^ ]*\) helo_out=\([^ ]*\).*/    HELO \1  ->  HELO \2/p'

say "The message in the MX's Maildir"
[ -n "$found" ] && [ -r "$found" ] || die "the message did not reach the Maildir"
echo "    ${found#"$LAB_DIR"/}"
awk '/^$/{exit} /^Received:/{p=1; print; next} p && /^[ \t]/{print; next} {p=0}' "$found" | indent
hdr=$(awk '/^Received:/{print; exit}' "$found")
grep -qE '^Received: from gw\.example\.net ' <<<"$hdr" ||
	die "the Received header does not show 'from gw.example.net'"
echo
echo "    The MX saw HELO gw.example.net from [IPv6:2001:db8::1] and accepted the mail."
echo "    Postfix log:"
grep -E 'client=|status=sent' "$pf/maillog" | indent

say "Now with STARTTLS: throwaway certificates (tests/lab/mkcert.sh, made by up)"
for c in gw mx; do
	openssl x509 -in "$LAB_TLS_DIR/$c.crt" -noout -subject -ext subjectAltName 2>/dev/null |
		tr -s ' \n' '  ' | sed "s|^|    $c.crt: |; s/X509v3 Subject Alternative Name: /SAN /; s/ *$//"
	echo
done
echo "    (gw.crt for the gateway, mx.crt for Postfix, both from a CA made for this lab)"
echo "    Postfix on s6 offers STARTTLS (smtpd_tls_security_level = $(postconf -c "$pf/etc" -h smtpd_tls_security_level));"
echo "    smtp64d has tls_cert_file, so tls = terminate (the default with a certificate)."

say "The v4-only MTA sends again, now with STARTTLS (smtp_tls_security_level = encrypt)"
mark=$(lab logs gw | wc -l)
pfmark=$(wc -l <"$pf/maillog")
out=$(lab send --tls --helo "$HELO" 2>&1)
rc=$?
indent <<<"$out"
[ "$rc" -eq 0 ] || die "smtp64-lab send --tls exited $rc: the message was not accepted"
grep -qE 'Trusted TLS connection established to mx6\.example\.org\[192\.0\.2\.30\]:25' <<<"$out" ||
	die "Postfix on c4 did not make TLS with the gateway"
found=$(sed -n 's/^send: delivered on s6: //p' <<<"$out")
echo
echo "    The sender's TLS session ends at the gateway (its certificate, gw.example.net, from"
echo "    the lab's CA: \"Trusted\"); the EHLO it sent inside TLS is the one rewritten below."

say "What smtp64d logged for the TLS session"
lab logs gw | tail -n "+$((mark + 1))" | indent
[ "$(lab logs gw | tail -n "+$((mark + 1))" | grep -F 'event=helo' |
	grep -cF "helo_in=$HELO helo_out=gw.example.net rewritten=yes")" -eq 2 ] ||
	die "the EHLO sent inside TLS was not rewritten"
echo
echo "    Two EHLOs rewritten: before STARTTLS, and inside TLS (RFC 3207 section 4.2)."

say "The message in the MX's Maildir, and Postfix's view of the session"
[ -n "$found" ] && [ -r "$found" ] || die "the TLS message did not reach the Maildir"
awk '/^$/{exit} /^Received:/{p=1; print; next} p && /^[ \t]/{print; next} {p=0}' "$found" |
	head -n 6 | indent
grep -qE 'using TLSv1\.[23].* with ESMTPS ' \
	<(awk '/^$/{exit} /^Received:/{n++} n==1' "$found" | tr -s '\n\t' '  ') ||
	die "the Received header does not show 'from gw.example.net' over TLS"
tail -n "+$((pfmark + 1))" "$pf/maillog" |
	grep -E 'TLS connection established|client=|status=sent' | indent
echo
echo "    The MX saw a TLS session from the gateway, HELO gw.example.net, and accepted the mail."

say "Both legs of each session side by side (smtp64-lab trace: tcpdump in gw, smtp64-pcap -T)"
out=$(lab trace 2>&1)
indent <<<"$out"
grep -q '^trace: sessions=5 pairs=2 unpaired=1 helo_rewritten=2 ' <<<"$out" ||
	die "the trace did not pair the two sessions' legs"
echo
echo "    Each session through the gateway is two TCP connections, paired here by smtp64d's"
echo "    session id; the one left unpaired is the direct contrast from gw, which has no"
echo "    client leg (and which the MX refused)."

say "Cleaning up: smtp64-lab --name $NAME down"
lab down | indent
trap - EXIT
echo
echo "demo: OK: a v4-only Postfix delivered to a v6-only Postfix with strict HELO checks through smtp64d,"
echo "demo: OK: in clear text and with STARTTLS terminated on both legs"
exit 0
