#!/usr/bin/env bash
# e2e: upstream TLS session reuse with a real Postfix 3.7 (which issues a
# ticket after a full handshake and none after a resumed one), and the
# client's path under tls = terminate.  A v4-only client (c4) sends mail
# with swaks --tls through the gateway to the v6-only Postfix MX (s6).
# Proves:
#  - tls_upstream = opportunistic: of N sessions in a row, sessions 2..N
#    resume upstream: the gateway logs resumed=yes on each server leg and
#    Postfix (smtpd_tls_loglevel = 2) logs "Reusing old session" for each
#    of them;
#  - tls_upstream = verify (lab CA, the MX's name): the same, each
#    resumed leg still logged verify=ok;
#  - with a resumable session cached, require still stops the client's
#    mail when the server no longer offers STARTTLS (454 4.7.0, swaks
#    gives up, nothing delivered), and when the upstream handshake fails
#    (Postfix speaks no protocol the strict context accepts: 421 4.7.0,
#    nothing delivered); the refused session is dropped, so once Postfix
#    is back the next session runs a full handshake and the ones after it
#    resume again;
#  - opportunistic answers the client's STARTTLS at once and runs the
#    upstream STARTTLS beside the client's handshake (event=starttls
#    action=upstream_parallel), mail is still delivered over TLS on both
#    legs; the time from the client's STARTTLS to its 220 and of a whole
#    session (tests/lab/starttls_time.py, medians of 10 sessions, two
#    interleaved rounds) is printed for opportunistic (side by side) and
#    require (in series), and the 220 comes sooner side by side;
#  - an RSA and an ECDSA certificate on the listener (tls_cert2_file): a
#    client that accepts only RSA signatures and one that accepts only
#    ECDSA both deliver a message, each shown the certificate it accepts.
set -u
. "$(dirname "$0")/../lab/lib.sh"
HELO='[IPv6:2001:db8::1]'
N=6

. "$LAB_LIB_DIR/tls_helpers.sh"
tls_lab_up "Postfix with STARTTLS starts on s6"
PFDIR=${LAB_PF_DIR[s6]}/etc
count() { grep -cE "$1" || true; }
show() {
	printf '    --- %s\n' "$1"
	sed 's/^/    | /' "$2" | tail -n "${3:-25}"
}
# metric NAME_AND_LABELS: its value from smtp64d's /metrics.
metric() {
	ip netns exec "$NS_GW" python3 -c '
import sys, urllib.request
body = urllib.request.urlopen("http://%s/metrics" % sys.argv[1], timeout=5).read().decode()
for line in body.splitlines():
    if line.startswith(sys.argv[2] + " "):
        print(line.split()[-1])
' "$MET" "$1"
}
# pf_set "KEY = VALUE": changes the running Postfix and waits for its reload.
pf_set() {
	local n
	postconf -c "$PFDIR" -e "$1" || return 1
	n=$(lab_pf_reloads "$MAILLOG")
	ip netns exec "${LAB_PF_NS[s6]}" postfix -c "$PFDIR" reload \
	    >/dev/null 2>&1 || return 1
	wait_for 100 lab_pf_reloaded "$MAILLOG" "$n"
}
# series TAG [COUNT]: COUNT (N) sessions one after the other; all must be
# delivered.
series() {
	local tag=$1 n=${2:-$N} i ok=0
	for ((i = 1; i <= n; i++)); do
		tsw "$tag$i-$LAB_TAG" "$LAB_DIR/sw-$tag$i.out" --tls
		delivered "$tag$i-$LAB_TAG" && ok=$((ok + 1))
	done
	[ "$ok" -eq "$n" ]
}

echo "# 1: opportunistic: sessions 2..$N resume upstream"
MET=127.0.0.1:9125
lab_gw_conf_tls "$conf" terminate "" "metrics_listen = $MET"
lab_smtp64d_start "$conf" || { fail "smtp64d start"; lab_summary; exit 1; }
m=$(log_mark) p=$(pf_mark)
check "Postfix logs session resumption (smtpd_tls_loglevel = 2)" \
    pf_set "smtpd_tls_loglevel = 2"
check "opportunistic: $N sessions delivered over TLS" series opp
srv=$(log_since "$m" | grep -E 'event=tls leg=server ')
full=$(count 'resumed=no' <<<"$srv") res=$(count 'resumed=yes' <<<"$srv")
echo "    gateway: server legs full=$full resumed=$res"
check "opportunistic: the gateway resumed $((N - 1)) of $N upstream sessions (got $res, full $full)" \
    test "$full" -eq 1 -a "$res" -eq $((N - 1))
pres=$(pf_since "$p" | count 'Reusing old session')
pfull=$(pf_since "$p" | count 'TLS connection established from')
echo "    Postfix: reused=$pres established=$pfull"
check "opportunistic: Postfix logs $((N - 1)) resumed of $N TLS connections (reusing $pres, established $pfull)" \
    test "$pres" -eq $((N - 1)) -a "$pfull" -eq "$N"
mres=$(metric 'smtp64_tls_resumed_total{leg="server"}')
mok=$(metric 'smtp64_tls_handshakes_total{leg="server",result="ok"}')
echo "    counters: server handshakes ok=$mok resumed=$mres"
check "opportunistic: the counters say $((N - 1)) of $N upstream handshakes resumed (got $mres of $mok)" \
    test "$mres" = $((N - 1)) -a "$mok" = "$N"
check "opportunistic: the client's STARTTLS ran beside the upstream one" \
    grep -q 'event=starttls mode=terminate upstream=opportunistic action=upstream_parallel' <(log_since "$m")

echo "# 2: verify: the same, each resumed leg verified"
lab_gw_conf_tls "$conf" terminate "tls_upstream = verify
tls_ca_file = $CRT/ca.crt
tls_server_name = mx6.example.org" "metrics_listen = $MET"
check "verify: reload accepted" gw_reload ok
m=$(log_mark) p=$(pf_mark)
check "verify: $N sessions delivered over TLS" series ver
srv=$(log_since "$m" | grep -E 'event=tls leg=server ')
res=$(count 'resumed=yes verify=ok|resumed=yes peer_cert=[a-z]+ verify=ok' <<<"$srv")
full=$(count 'resumed=no' <<<"$srv")
echo "    gateway: server legs full=$full resumed+verified=$res"
check "verify: $((N - 1)) of $N upstream sessions resumed with verify=ok (got $res, full $full)" \
    test "$full" -eq 1 -a "$res" -eq $((N - 1))
pres=$(pf_since "$p" | count 'Reusing old session')
check "verify: Postfix logs $((N - 1)) reused TLS connections (got $pres)" \
    test "$pres" -eq $((N - 1))

echo "# 3: require with a session cached: a refused or failed upstream TLS stops the mail"
lab_gw_conf_tls "$conf" terminate "tls_upstream = require" "metrics_listen = $MET"
check "require: reload accepted" gw_reload ok
check "require: 2 sessions delivered (a session is cached)" series req 2
check "require: Postfix stops offering STARTTLS" \
    pf_set "smtpd_tls_security_level = none"
id=refused-$LAB_TAG m=$(log_mark)
tsw "$id" "$LAB_DIR/sw-refused.out" --tls
rc=$?
check "require, no STARTTLS upstream: swaks --tls fails (rc=$rc)" test "$rc" -ne 0
check "require, no STARTTLS upstream: STARTTLS not offered or 454 4.7.0" \
    grep -qE 'did not advertise STARTTLS|454 4\.7\.0' "$LAB_DIR/sw-refused.out" ||
    show swaks "$LAB_DIR/sw-refused.out"
sleep 1
check "require, no STARTTLS upstream: nothing delivered" \
    test -z "$(maildir_find s6 "X-Lab-Id: $id")"
check "Postfix speaks TLS 1.0 and 1.1 only" \
    pf_set 'smtpd_tls_protocols = <=TLSv1.1'
check "Postfix offers STARTTLS again" \
    pf_set 'smtpd_tls_security_level = may'
id=failed-$LAB_TAG m=$(log_mark)
tsw "$id" "$LAB_DIR/sw-failed.out" --tls
rc=$?
check "require, failed upstream handshake: the client gets 421 4.7.0 (rc=$rc)" \
    grep -qE '^<\*\* 421 4\.7\.0 ' "$LAB_DIR/sw-failed.out" ||
    show swaks "$LAB_DIR/sw-failed.out"
sleep 1
check "require, failed upstream handshake: nothing delivered" \
    test -z "$(maildir_find s6 "X-Lab-Id: $id")"
check "require, failed upstream handshake: logged (tls_failed leg=server)" \
    grep -q 'event=tls_failed leg=server' <(log_since "$m")
check "Postfix back to TLS 1.2 and up" pf_set 'smtpd_tls_protocols = >=TLSv1.2'
m=$(log_mark)
check "require: 3 sessions delivered again" series again 3
srv=$(log_since "$m" | grep -E 'event=tls leg=server ')
full=$(count 'resumed=no' <<<"$srv") res=$(count 'resumed=yes' <<<"$srv")
echo "    gateway: server legs full=$full resumed=$res"
check "require: the refused session was dropped: 1 full handshake, then 2 resumed (full $full, resumed $res)" \
    test "$full" -eq 1 -a "$res" -eq 2

echo "# 4: the client's 220: side by side (opportunistic) against in series (require)"
# timed MODE ROUND: 10 timed sessions under tls_upstream = MODE.
timed() {
	lab_gw_conf_tls "$conf" terminate "tls_upstream = $1" "metrics_listen = $MET"
	gw_reload ok || return 1
	ip netns exec "$NS_C4" timeout 120 python3 "$LAB_LIB_DIR/starttls_time.py" \
	    "$MX6_V4" 25 10 "$HELO" >"$LAB_DIR/timed-$1-$2.out" 2>&1
}
field() { sed -n "s/.* $2=\([0-9.]*\).*/\1/p" "$LAB_DIR/timed-$1.out"; }
for r in 1 2; do
	check "timed: opportunistic, round $r: 10 sessions complete" timed opportunistic "$r"
	check "timed: require, round $r: 10 sessions complete" timed require "$r"
done
for f in "$LAB_DIR"/timed-*.out; do
	printf '    %s: %s\n' "$(basename "$f" .out)" "$(tail -n1 "$f")"
done
med() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print (v[int((NR+1)/2)]+v[int(NR/2)+1])/2}'; }
o220=$(med "$(field opportunistic-1 starttls_220_ms)" "$(field opportunistic-2 starttls_220_ms)")
r220=$(med "$(field require-1 starttls_220_ms)" "$(field require-2 starttls_220_ms)")
osess=$(med "$(field opportunistic-1 session_ms)" "$(field opportunistic-2 session_ms)")
rsess=$(med "$(field require-1 session_ms)" "$(field require-2 session_ms)")
echo "    STARTTLS to 220: side by side ${o220} ms, in series ${r220} ms; session: ${osess} ms, ${rsess} ms"
check "timed: the client's 220 comes sooner side by side (${o220} < ${r220} ms)" \
    awk -v a="$o220" -v b="$r220" 'BEGIN { exit !(a > 0 && b > 0 && a < b) }'

echo "# 5: RSA and ECDSA certificates side by side on the listener"
check "an RSA certificate for gw.example.net" lab_tls_leaf_rsa gwrsa gw.example.net
lab_gw_conf_tls "$conf" terminate "" "tls_cert2_file = $CRT/gw.crt
tls_key2_file = $CRT/gw.key
metrics_listen = $MET"
sed -i "s|^tls_cert_file = .*|tls_cert_file = $CRT/gwrsa.crt|; s|^tls_key_file = .*|tls_key_file = $CRT/gwrsa.key|" "$conf"
check "two certificates: reload accepted" gw_reload ok
# only SIGALGS TAG: one message with openssl s_client restricted to
# SIGALGS (-nocommands: RCPT and QUIT are not s_client commands).
only() {
	{
		sleep 1
		printf 'EHLO client.example.net\r\n'
		sleep 0.3
		printf 'MAIL FROM:<a@example.net>\r\n'
		sleep 0.3
		printf 'RCPT TO:<user@example.org>\r\n'
		sleep 0.3
		printf 'DATA\r\n'
		sleep 0.3
		printf 'X-Lab-Id: %s-%s\r\n\r\nhello\r\n.\r\n' "$2" "$LAB_TAG"
		sleep 0.5
		printf 'QUIT\r\n'
		sleep 0.5
	} | ip netns exec "$NS_C4" timeout 20 openssl s_client -starttls smtp \
	    -connect "$MX6_V4:25" -sigalgs "$1" -nocommands -ign_eof \
	    >"$LAB_DIR/only-$2.out" 2>&1
	delivered "$2-$LAB_TAG"
}
check "RSA-only client (rsa_pss_rsae, rsa_pkcs1): message delivered" \
    only 'RSA-PSS+SHA256:RSA+SHA256' rsa
check "RSA-only client: shown the RSA certificate (2048 bit)" \
    grep -q 'Server public key is 2048 bit' "$LAB_DIR/only-rsa.out"
check "ECDSA-only client (ecdsa_secp256r1_sha256): message delivered" \
    only 'ECDSA+SHA256' ecdsa
check "ECDSA-only client: shown the ECDSA certificate (256 bit)" \
    grep -q 'Server public key is 256 bit' "$LAB_DIR/only-ecdsa.out"

lab_summary
