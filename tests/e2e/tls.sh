#!/usr/bin/env bash
# e2e: STARTTLS terminated on both legs (issue 7).  A v4-only client (c4)
# sends EHLO [IPv6:2001:db8::1] over IPv4 to 192.0.2.30; the gateway offers
# STARTTLS with its own certificate, runs STARTTLS upstream with the
# v6-only Postfix MX (s6: smtpd_tls_security_level = may, strict HELO
# checks), and rewrites the EHLO the client sends inside TLS.  Proves:
#  - tls = terminate: swaks --tls delivers; Postfix logs a TLS session
#    from the gateway and the Received header says "from gw.example.net"
#    with ESMTPS; swaks shows the gateway's certificate; both legs are
#    logged (protocol, cipher, client certificate offered or not); the
#    upstream session and the client's are resumed on the next connection;
#  - a client that sends STARTTLS before EHLO still gets the server leg in
#    TLS (the gateway sends its own EHLO upstream first);
#  - tls_upstream = verify: the MX's certificate is checked against the
#    lab CA and the configured name; a wrong name gives 421 4.7.0;
#  - tls = passthrough: the same client is refused by the strict MX, since
#    the post-TLS EHLO reaches it unchanged; tls = strip: STARTTLS is not
#    offered and the clear-text session is rewritten and delivered;
#  - the certificate is reloaded on SIGHUP (new sessions see the new one),
#    and a reload with a broken key keeps the old one;
#  - against a scripted server with TLS, with the upstream leg first
#    (require) and side by side with the client's (opportunistic): bytes
#    the client pipelines after STARTTLS and bytes the server pipelines
#    after its 220 are dropped
#    (CVE-2011-0411 and CVE-2021-38371 classes); a client that sends clear
#    text after the 220 is disconnected with no clear-text reply; require
#    with a failed upstream handshake gives 421 4.7.0 naming it; require
#    with a server that offers no STARTTLS gives 454 4.7.0; opportunistic
#    gives the client TLS over a clear-text upstream; a client that never
#    starts its handshake is closed at command_timeout_s with its
#    descriptors released.
set -u
. "$(dirname "$0")/../lab/lib.sh"
HELO='[IPv6:2001:db8::1]'

. "$LAB_LIB_DIR/tls_helpers.sh"
tls_lab_up "Postfix with STARTTLS (smtpd_tls_security_level = may) starts on s6"
show() {
	printf '    --- %s\n' "$1"
	sed 's/^/    | /' "$2" | tail -n "${3:-25}"
}

echo "# 1: tls = terminate, upstream opportunistic (the default)"
lab_gw_conf_tls "$conf" terminate
lab_smtp64d_start "$conf" || { fail "smtp64d start"; lab_summary; exit 1; }
id=term-$LAB_TAG out=$LAB_DIR/sw-term.out
m=$(log_mark) p=$(pf_mark)
tsw "$id" "$out" --tls
rc=$?
check "terminate: swaks --tls, EHLO $HELO over IPv4: accepted (rc=$rc)" \
    test "$rc" -eq 0 || show swaks "$out"
check "terminate: the gateway offers STARTTLS before TLS" \
    grep -qE '^<-  250[ -]STARTTLS' "$out"
check "terminate: and not again inside TLS (RFC 3207 §4.2)" \
    bash -c "! grep -qE '^<~  250[ -]STARTTLS' '$out'"
check "terminate: swaks sees the gateway's certificate (gw.example.net)" \
    grep -qE '^=== TLS peer DN=".*CN=gw\.example\.net"' "$out"
check "terminate: client leg is TLS 1.2 or 1.3" \
    grep -qE '^=== TLS started with cipher TLSv1\.[23]' "$out"
check "terminate: the message is delivered" delivered "$id"
f=$(maildir_find s6 "X-Lab-Id: $id")
hdr=$(received_header "${f:-/dev/null}" 2>/dev/null)
check "terminate: Received: from gw.example.net (the post-TLS EHLO rewritten)" \
    grep -qE '^Received: from gw\.example\.net ' <<<"$hdr"
check "terminate: Received: the gateway's own address, over TLS (ESMTPS)" \
    grep -qE "\[IPv6:$GW_S6_ADDR\]\).*using TLSv1\.[23] with cipher .* with ESMTPS " <<<"$hdr"
check "terminate: Postfix logs a TLS session from the gateway" \
    grep -qE "TLS connection established from unknown\[$GW_S6_ADDR\]: TLSv1\.[23] with cipher" <(pf_since "$p")
check "terminate: Postfix saw no address literal (no HELO reject)" \
    bash -c "! grep -q 'Helo command rejected' <(tail -n +$((p + 1)) '$MAILLOG')"
check "terminate: both EHLOs rewritten (before and inside TLS)" \
    test "$(log_since "$m" | grep -F 'event=helo' | grep -F "helo_in=$HELO" |
        grep -cF 'helo_out=gw.example.net rewritten=yes')" -eq 2
check "terminate: client leg logged (protocol, cipher, no client certificate)" \
    grep -qE 'event=tls leg=client tls=TLSv1\.[23] cipher=[A-Z0-9_-]+ resumed=no peer_cert=no' <(log_since "$m")
check "terminate: server leg logged (protocol, cipher, not verified)" \
    grep -qE 'event=tls leg=server tls=TLSv1\.[23] cipher=[A-Z0-9_-]+ resumed=no peer_cert=yes verify=none' <(log_since "$m")
[ "$FAIL" -eq 0 ] || log_since "$m" | sed 's/^/    | /'

echo "# 1b: a large message over both TLS legs (backpressure, buffered records)"
big=$LAB_DIR/big.txt
python3 -c '
import random, string, sys
r = random.Random(7)
with open(sys.argv[1], "w") as f:
    for i in range(60000):
        f.write("".join(r.choice(string.ascii_letters + ". ") for _ in range(r.randint(0, 76))) + "\n")
' "$big"
id=big-$LAB_TAG
tsw "$id" "$LAB_DIR/sw-big.out" --tls --body @"$big" --silent 2
rc=$?
check "large: a $(($(wc -c <"$big") / 1024)) KiB message over TLS accepted (rc=$rc)" \
    test "$rc" -eq 0
check "large: delivered" delivered "$id"
f=$(maildir_find s6 "X-Lab-Id: $id")
check "large: the body arrived byte for byte (dot-stuffing undone)" \
    cmp -s <(awk 'b{print} /^$/{b=1}' "${f:-/dev/null}" | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}') \
    <(sed -e :a -e '/^\n*$/{$d;N;ba' -e '}' "$big")

echo "# 1c: STARTTLS before EHLO (RFC 3207 allows it): the server leg gets TLS too"
id=first-$LAB_TAG m=$(log_mark) p=$(pf_mark)
if lab_chat "$NS_C4" tlsfirst "$MX6_V4" 'e:220' 's:STARTTLS\r\n' 'e:220' 't' \
    "s:EHLO $HELO\r\n" 'e:250' 's:MAIL FROM:<a@example.net>\r\n' 'e:250' \
    's:RCPT TO:<user@example.org>\r\n' 'e:250' 's:DATA\r\n' 'e:354' \
    "s:X-Lab-Id: $id\r\n\r\nSTARTTLS before EHLO\r\n.\r\n" 'e:250' \
    's:QUIT\r\n' 'e:221'; then
	pass "STARTTLS first: the client gets TLS and delivers"
else
	fail "STARTTLS first"; lab_chat_show tlsfirst
fi
check "STARTTLS first: delivered" delivered "$id"
check "STARTTLS first: the gateway asked the server with its own EHLO first" \
    grep -q 'action=ehlo_upstream_first' <(log_since "$m")
check "STARTTLS first: STARTTLS went upstream (action=upstream)" \
    grep -q 'event=starttls mode=terminate upstream=opportunistic action=upstream' <(log_since "$m")
check "STARTTLS first: the server leg is TLS (the gateway's log)" \
    grep -qE 'event=tls leg=server tls=TLSv1\.[23]' <(log_since "$m")
check "STARTTLS first: Postfix logs a TLS session from the gateway" \
    grep -qE "TLS connection established from unknown\[$GW_S6_ADDR\]" <(pf_since "$p")
f=$(maildir_find s6 "X-Lab-Id: $id")
hdr=$(received_header "${f:-/dev/null}" 2>/dev/null)
check "STARTTLS first: Received: over TLS (ESMTPS)" \
    grep -qE 'using TLSv1\.[23] with cipher .* with ESMTPS ' <<<"$hdr"

echo "# 2: resumption on both legs"
m=$(log_mark)
tsw "resume-$LAB_TAG" "$LAB_DIR/sw-resume.out" --tls
# Postfix sends one ticket per full handshake and none when resuming, and
# a ticket is used once (RFC 8446 §C.4): every other session resumes.
check "resumption: upstream sessions with Postfix resume (one ticket each)" \
    grep -qE 'event=tls leg=server .*resumed=yes' "$SMTP64D_LOG"
sess=$LAB_DIR/client.sess
for i in 1 2; do
	if [ "$i" -eq 1 ]; then a=(-sess_out "$sess"); else a=(-sess_in "$sess"); fi
	(sleep 1; printf 'QUIT\r\n') | ip netns exec "$NS_C4" timeout 15 \
	    openssl s_client -starttls smtp -name client.example.com \
	    -ign_eof -connect "$MX6_V4:25" "${a[@]}" \
	    >"$LAB_DIR/s_client$i.out" 2>&1
done
check "resumption: a client's session ticket is accepted (openssl s_client: Reused)" \
    grep -q '^Reused, TLSv1\.[23]' "$LAB_DIR/s_client2.out"
check "resumption: the gateway logs the resumed client leg" \
    grep -qE 'event=tls leg=client .*resumed=yes' <(log_since "$m")

echo "# 3: tls_upstream = verify (lab CA, tls_server_name)"
lab_gw_conf_tls "$conf" terminate "tls_upstream = verify
tls_ca_file = $CRT/ca.crt
tls_server_name = mx6.example.org"
check "verify: reload accepted" gw_reload ok
id=verify-$LAB_TAG m=$(log_mark)
tsw "$id" "$LAB_DIR/sw-verify.out" --tls
rc=$?
check "verify: MX certificate verified, mail delivered (rc=$rc)" delivered "$id"
check "verify: logged verify=ok" \
    grep -qE 'event=tls leg=server .*verify=ok' <(log_since "$m")
lab_gw_conf_tls "$conf" terminate "tls_upstream = verify
tls_ca_file = $CRT/ca.crt
tls_server_name = wrong.example.org"
check "verify: reload with a wrong server name accepted" gw_reload ok
id=badname-$LAB_TAG m=$(log_mark)
tsw "$id" "$LAB_DIR/sw-badname.out" --tls
rc=$?
check "verify: wrong name: the client gets 421 4.7.0 (rc=$rc)" \
    grep -qE '^<\*\* 421 4\.7\.0 ' "$LAB_DIR/sw-badname.out" ||
    show swaks "$LAB_DIR/sw-badname.out"
sleep 1
check "verify: wrong name: nothing delivered" test -z "$(maildir_find s6 "X-Lab-Id: $id")"
check "verify: wrong name: logged as a failed server leg" \
    grep -qE 'event=tls_failed leg=server .*verify' <(log_since "$m")

echo "# 4: tls = passthrough: the post-TLS EHLO is not rewritten"
lab_gw_conf_tls "$conf" passthrough
check "passthrough: reload accepted" gw_reload ok
id=pass-$LAB_TAG out=$LAB_DIR/sw-pass.out m=$(log_mark)
tsw "$id" "$out" --tls
rc=$?
check "passthrough: the strict MX refuses the literal it now sees (rc=$rc)" \
    test "$rc" -ne 0
check "passthrough: refused with 5xx inside TLS" \
    grep -qE '^<~\* 5[0-9][0-9] ' "$out"
check "passthrough: swaks sees the MX's certificate, not the gateway's" \
    grep -qE '^=== TLS peer DN=".*CN=mx6\.example\.org"' "$out"
check "passthrough: the daemon says the post-TLS EHLO was not rewritten" \
    grep -q 'event=starttls mode=passthrough note=post_tls_helo_not_rewritten' <(log_since "$m")

echo "# 5: tls = strip: no STARTTLS, clear text, rewritten"
lab_gw_conf_tls "$conf" strip
check "strip: reload accepted" gw_reload ok
id=strip-$LAB_TAG out=$LAB_DIR/sw-strip.out
tsw "$id" "$out" --tls-optional
rc=$?
check "strip: STARTTLS not offered" \
    bash -c "! grep -qE '^<-  250[ -]STARTTLS' '$out'"
check "strip: delivered in clear text (rc=$rc)" delivered "$id"
f=$(maildir_find s6 "X-Lab-Id: $id")
hdr=$(received_header "${f:-/dev/null}" 2>/dev/null)
check "strip: Received: from gw.example.net" \
    grep -qE '^Received: from gw\.example\.net ' <<<"$hdr"
check "strip: upstream in clear text (no TLS in Received)" \
    bash -c '! grep -q "using TLS"' <<<"$hdr"

echo "# 6: certificate reload on SIGHUP"
lab_gw_conf_tls "$conf" terminate
check "reload: back to terminate" gw_reload ok
tsw "cert1-$LAB_TAG" "$LAB_DIR/sw-cert1.out" --tls
check "reload: before: the first certificate (no OU)" \
    bash -c "grep -E '^=== TLS peer DN=' '$LAB_DIR/sw-cert1.out' | grep -v 'OU=second' | grep -q 'CN=gw.example.net'"
lab_tls_leaf gw2 gw.example.net second
cp "$CRT/gw2.crt" "$CRT/gw.crt"
cp "$CRT/gw2.key" "$CRT/gw.key"
check "reload: SIGHUP after swapping the files" gw_reload ok
tsw "cert2-$LAB_TAG" "$LAB_DIR/sw-cert2.out" --tls
check "reload: new sessions see the new certificate (OU=second)" \
    grep -qE '^=== TLS peer DN=".*OU=second.*CN=gw\.example\.net"' "$LAB_DIR/sw-cert2.out"
printf 'not a key\n' >"$CRT/gw.key"
check "reload: a broken key is refused (old configuration kept)" gw_reload failed
tsw "cert3-$LAB_TAG" "$LAB_DIR/sw-cert3.out" --tls
rc=$?
check "reload: still serving the last good certificate (rc=$rc)" \
    grep -qE '^=== TLS peer DN=".*OU=second' "$LAB_DIR/sw-cert3.out"
cp "$CRT/gw2.key" "$CRT/gw.key"

echo "# 7: scripted server with TLS (Postfix stopped)"
lab_postfix_stop s6
wait_for 50 bash -c "! ip netns exec '$NS_S6' ss -Hltn | grep -q ':25 '"

scene() { lab_scene "$@"; }

G='s:220\x20mx.example.org\x20ESMTP\r\n'
ET='l:EHLO\x20gw.example.net s:250-mx.example.org\r\n250-STARTTLS\r\n250\x208BITMIME\r\n'
EN='l:EHLO\x20gw.example.net s:250-mx.example.org\r\n250\x208BITMIME\r\n'
TS="T:$CRT/mx.crt:$CRT/mx.key"
H="s:EHLO $HELO\r\n"
# After both handshakes: the client must EHLO again (RFC 3207 §4.2).
POST="l:EHLO\x20gw.example.net s:250-mx.example.org\r\n250\x208BITMIME\r\n l:QUIT s:221\x20bye\r\n"
CPOST=("$H" 'e:250' 's:QUIT\r\n' 'e:221')

# Under require the upstream leg comes first (in series); under
# opportunistic the client's 220 goes with the upstream STARTTLS (side by
# side).  The pipelining and handshake scenes run in both.
lab_gw_conf_tls "$conf" terminate "tls_upstream = require"
check "in series (require): reload accepted" gw_reload ok

# A synchronisation error (RFC 2920 §3.1): found when the client's 220
# is due, after the upstream handshake; 554 5.5.0, both legs closed.
if scene inj_cli "$G $ET l:STARTTLS s:220\x20go\x20ahead\r\n $TS c" \
    'e:220' "$H" 'e:250' 's:STARTTLS\r\nMAIL FROM:<injected@example.net>\r\n' \
    'e:554 5.5.0' 'c'; then
	pass "inject: client bytes pipelined after STARTTLS: 554 5.5.0, closed"
else
	fail "inject: client bytes pipelined after STARTTLS"
fi
check "inject: the injected MAIL never reached the server" \
    bash -c "! grep -q injected '$LAB_DIR/srv-inj_cli.out'"
check "inject: the client saw the gateway's STARTTLS offer, once" \
    test "$(grep -c "^<< '250.STARTTLS" "$LAB_DIR/cli-inj_cli.out")" -eq 1

if scene inj_srv "$G $ET l:STARTTLS s:220\x20go\x20ahead\r\n250\x20INJECTED\r\n $TS $POST" \
    'e:220' "$H" 'e:250' 's:STARTTLS\r\n' 'e:220' 't' "${CPOST[@]}"; then
	pass "inject: server bytes after its 220 dropped, then TLS both legs"
else
	fail "inject: server bytes after its 220"
fi
check "inject: the client never saw the injected reply" \
    bash -c "! grep -q INJECTED '$LAB_DIR/cli-inj_srv.out'"

m=$(log_mark)
if scene badcli "$G $ET l:STARTTLS s:220\x20go\r\n $TS c" \
    'e:220' "$H" 'e:250' 's:STARTTLS\r\n' 'e:220' \
    's:EHLO [IPv6:2001:db8::1]\r\n' 'N'; then
	pass "client handshake fails (clear text after 220): closed, no clear-text reply"
else
	fail "client handshake failure"
fi
check "client handshake failure logged" \
    grep -q 'event=tls_failed leg=client' <(log_since "$m")

lab_gw_conf_tls "$conf" terminate
check "side by side (opportunistic): reload accepted" gw_reload ok
# The 554 comes at once (the client's 220 is due at once); the server may
# or may not see the STARTTLS line before the gateway closes: it only
# waits for the close.
if scene inj_cli_par "$G $ET c" \
    'e:220' "$H" 'e:250' 's:STARTTLS\r\nMAIL FROM:<injected@example.net>\r\n' \
    'e:554 5.5.0' 'c'; then
	pass "inject, side by side: client bytes pipelined after STARTTLS: 554 5.5.0, closed"
else
	fail "inject, side by side: client bytes pipelined after STARTTLS"
fi
check "inject, side by side: the injected MAIL never reached the server" \
    bash -c "! grep -q injected '$LAB_DIR/srv-inj_cli_par.out'"
if scene inj_srv_par "$G $ET l:STARTTLS s:220\x20go\x20ahead\r\n250\x20INJECTED\r\n $TS $POST" \
    'e:220' "$H" 'e:250' 's:STARTTLS\r\n' 'e:220' 't' "${CPOST[@]}"; then
	pass "inject, side by side: server bytes after its 220 dropped, then TLS both legs"
else
	fail "inject, side by side: server bytes after its 220"
fi
check "inject, side by side: the client never saw the injected reply" \
    bash -c "! grep -q INJECTED '$LAB_DIR/cli-inj_srv_par.out'"
m=$(log_mark)
if scene badcli_par "$G $ET c" \
    'e:220' "$H" 'e:250' 's:STARTTLS\r\n' 'e:220' \
    's:EHLO [IPv6:2001:db8::1]\r\n' 'N'; then
	pass "side by side: client handshake fails: closed, no clear-text reply"
else
	fail "side by side: client handshake failure"
fi
check "side by side: client handshake failure logged" \
    grep -q 'event=tls_failed leg=client' <(log_since "$m")

if scene cli_only "$G $EN l:EHLO\x20gw.example.net s:250\x20ok\r\n l:QUIT s:221\x20bye\r\n" \
    'e:220' "$H" 'e:250' 's:STARTTLS\r\n' 'e:220' 't' "${CPOST[@]}"; then
	pass "opportunistic, server without STARTTLS: TLS for the client, clear upstream"
else
	fail "opportunistic without server STARTTLS"
fi
check "opportunistic: the gateway offered STARTTLS the server did not" \
    grep -q '250 STARTTLS' "$LAB_DIR/cli-cli_only.out"

lab_gw_conf_tls "$conf" terminate "tls_upstream = require"
check "require: reload accepted" gw_reload ok
if scene require "$G $EN l:NOOP s:250\x20ok\r\n l:QUIT s:221\x20bye\r\n" \
    'e:220' "$H" 'e:250' 's:STARTTLS\r\n' 'e:454 4.7.0' 's:NOOP\r\n' 'e:250' \
    's:QUIT\r\n' 'e:221'; then
	pass "require, server without STARTTLS: 454 4.7.0, session goes on in clear"
else
	fail "require without server STARTTLS"
fi
check "require: STARTTLS not offered to the client" \
    bash -c "! grep -q STARTTLS <(grep '^<<' '$LAB_DIR/cli-require.out')"

# Under opportunistic a failed upstream handshake falls back to clear text
# (tests/e2e/tls_fallback.sh); require refuses, naming the cause.
if scene badsrv "$G $ET l:STARTTLS s:220\x20go\r\n w:0.3 s:this\x20is\x20not\x20TLS\r\n c" \
    'e:220' "$H" 'e:250' 's:STARTTLS\r\n' 'e:421 4.7.0' 'c'; then
	pass "require, upstream handshake fails: client gets 421 4.7.0 in clear text"
else
	fail "require, upstream handshake failure"
fi
check "require: the 421 names the failed handshake with the server" \
    grep -q 'TLS handshake with the server failed' "$LAB_DIR/cli-badsrv.out"

# A client that takes our 220 and never starts its handshake is closed at
# command_timeout_s, without a clear-text reply, and every descriptor of
# the session is released.
lab_gw_conf_tls "$conf" terminate "" "command_timeout_s = 3"
check "stall: reload accepted" gw_reload ok
nfd() { ls "/proc/$SMTP64D_PID/fd" | wc -l; }
fds=$(nfd) m=$(log_mark)
if scene stall "$G $ET l:STARTTLS s:220\x20go\r\n $TS c" \
    'e:220' "$H" 'e:250' 's:STARTTLS\r\n' 'e:220' 'N'; then
	pass "stall: a client that never starts its handshake is closed, no reply"
else
	fail "stall: a client that never starts its handshake"
fi
check "stall: closed after the 3 s timeout (reason=client_tls_timeout)" \
    grep -qE 'event=close reason=client_tls_timeout .*duration_ms=(2[5-9][0-9][0-9]|[3-4][0-9][0-9][0-9])$' <(log_since "$m")
fd_back() { [ "$(nfd)" -eq "$fds" ]; }
check "stall: descriptors back to where they were ($fds)" wait_for 30 fd_back

check "daemon survived everything" kill -0 "$SMTP64D_PID"
if [ "$FAIL" -gt 0 ]; then lab_dump_logs 30; fi
lab_summary
