#!/usr/bin/env bash
# Hostile client against the real daemon and a real Postfix (v4 client ->
# smtp64d -> v6-only Postfix with strict HELO checks).  Proves:
#  - every SMTP smuggling end-of-data variant is refused with a 5xx and no
#    message (let alone a second, smuggled one) reaches the Maildir;
#  - bare LF / NUL in a command and over-long commands get 500 5.5.2 and
#    the session stays in step with the server;
#  - 1000 pipelined commands are answered in order;
#  - BDAT is answered 502 and CHUNKING is never offered;
#  - a client that vanishes mid-DATA leaves no message behind;
#  - a slow-drip client is cut at the command timeout;
#  - AUTH payloads never reach the log;
#  - a 10 MB message with hostile-looking lines arrives byte for byte.
set -u
. "$(dirname "$0")/../lab/lib.sh"
CHAT="python3 $LAB_ROOT/tests/lab/smtpchat.py"

lab_init
# has_mail PATTERN: re-evaluated at every try of wait_for.
has_mail() { test -n "$(maildir_find s6 "$1")"; }
lab_topology c4 gw s6 || { fail "lab topology"; lab_summary; exit 1; }
lab_postfix_start s6 || { fail "postfix on s6"; lab_summary; exit 1; }
conf=$LAB_DIR/gw.conf
# The smuggling section checks the refusal: reject, not the default
# inline (tests/e2e/data_sync.sh covers inline).
lab_gw_conf "$conf" always "command_timeout_s = 3
bare_line_endings = reject
log_level = debug"
lab_smtp64d_start "$conf" || { fail "smtp64d start"; lab_summary; exit 1; }

chat() { # chat NAME STEP...: one client session from c4, transcript kept
	local name=$1
	shift
	ip netns exec "$NS_C4" $CHAT client "$MX6_V4" 25 "$@" \
	    >"$LAB_DIR/chat-$name.out" 2>&1
}
show_fail() { sed 's/^/    /' "$LAB_DIR/chat-$1.out" | tail -n 12; }

HELLO='s:EHLO client.example.net\r\n'
ENV='s:MAIL FROM:<a@example.net>\r\nRCPT TO:<user@example.org>\r\nDATA\r\n'

# --- smuggling: each end-of-data variant, with a second message behind it
variants=('\n.\n' '\n.\r\n' '\r.\n' '\n.\r' '\r.\r' '\r.\r\n' '\r\n.\n'
	'\r\n.\r' '\r\n\x00.\r\n' '\r\n.\x00\r\n' '\r\r\n.\r\r\n' '\r\n.\r\r\n')
i=0
for v in "${variants[@]}"; do
	i=$((i + 1))
	smuggled="MAIL FROM:<evil@example.net>\r\nRCPT TO:<user@example.org>\r\nDATA\r\nSubject: smuggled-$i\r\n\r\nsmuggled\r\n.\r\n"
	if chat "smuggle$i" 'e:220' "$HELLO" 'e:250' "$ENV" 'e:250' 'e:250' \
	    'e:354' "s:Subject: first-$i\r\n\r\nbody$v$smuggled" 'e:554 5.6.0' 'c'; then
		pass "smuggling variant $i ($v): 554 5.6.0 and closed"
	else
		fail "smuggling variant $i ($v)"; show_fail "smuggle$i"
	fi
done
# Postfix may still be writing a message that somehow passed: give it a moment.
sleep 1
check "no message of any smuggling session reached the Maildir" \
    test "$(maildir_count s6)" -eq 0
check "no smuggled message in the Maildir" \
    test -z "$(maildir_find s6 smuggled-)"

# --- commands with bare LF, NUL; over-long; resync afterwards
if chat cmdlf 'e:220' "$HELLO" 'e:250' \
    's:MAIL FROM:<a@example.net>\nRCPT TO:<user@example.org>\r\n' \
    'e:500 5.5.2' 's:RSET\r\n' 'e:250' 's:QUIT\r\n' 'e:221' 'c'; then
	pass "bare LF in a command: 500 5.5.2, session goes on"
else
	fail "bare LF in a command"; show_fail cmdlf
fi
if chat cmdnul 'e:220' "$HELLO" 'e:250' 's:NOOP\x00\r\n' 'e:500 5.5.2' \
    's:NOOP\rNOOP\r\n' 'e:500 5.5.2' 's:NOOP\r\n' 'e:250' 's:QUIT\r\n' \
    'e:221'; then
	pass "NUL and bare CR in a command: 500 5.5.2, session goes on"
else
	fail "NUL / bare CR in a command"; show_fail cmdnul
fi
if chat toolong 'e:220' "$HELLO" 'e:250' 's:NOOP ' 'S:5000:x' 's:\r\n' \
    'e:500 5.5.2' 's:NOOP\r\n' 'e:250' 's:QUIT\r\n' 'e:221'; then
	pass "over-long command: one 500 5.5.2, then back in step"
else
	fail "over-long command"; show_fail toolong
fi

# --- 1000 pipelined commands, replies in order, then a message
if chat pipe1000 'e:220' "$HELLO" 'e:250' \
    's:MAIL FROM:<a@example.net>\r\n' 'S:998:RCPT TO:<user@example.org>\r\n' \
    's:DATA\r\n' 'E:999:250' 'e:354' \
    's:Subject: pipelined\r\n\r\nhello\r\n.\r\nQUIT\r\n' 'e:250' 'e:221'; then
	pass "1000 pipelined commands answered in order, message accepted"
else
	fail "1000 pipelined commands"; show_fail pipe1000
fi
wait_for 50 has_mail 'Subject: pipelined'
check "the pipelined message is in the Maildir" \
    test -n "$(maildir_find s6 'Subject: pipelined')"

# --- BDAT: CHUNKING is never offered; BDAT gets 502 and its chunk is eaten
if chat bdat 'e:220' "$HELLO" 'e:250' 's:MAIL FROM:<a@example.net>\r\n' \
    'e:250' 's:BDAT 12 LAST\r\nRSET\r\nRSET\r\n' 'e:502 5.5.1' 's:NOOP\r\n' \
    'e:250' 's:QUIT\r\n' 'e:221'; then
	pass "BDAT answered 502 5.5.1, its chunk (RSET lines) not run"
else
	fail "BDAT"; show_fail bdat
fi
check "EHLO reply relayed without CHUNKING" \
    bash -c "grep -q \"^<< '250-\" '$LAB_DIR/chat-bdat.out' &&
	! grep -qiE \"^<< '250.(CHUNKING|BINARYMIME)\" '$LAB_DIR/chat-bdat.out'"

# --- client vanishes mid-DATA
before=$(maildir_count s6)
if chat vanish 'e:220' "$HELLO" 'e:250' "$ENV" 'e:250' 'e:250' 'e:354' \
    's:Subject: vanished\r\n\r\nhalf a message\r\n' 'w:0.3' 'x'; then
	pass "client reset mid-DATA"
else
	fail "client reset mid-DATA"; show_fail vanish
fi
sleep 1
check "no message from the vanished client" \
    test -z "$(maildir_find s6 'Subject: vanished')"
check "daemon still running after the reset" kill -0 "$SMTP64D_PID"

# --- slow drip: a partial command never resets the command timeout (3 s)
start=$(date +%s)
if chat drip 'e:220' "$HELLO" 'e:250' 'd:0.5:NOOP xxxxxxxxxxxxxxxx' \
    'e:421 4.4.2' 'c'; then
	pass "slow-drip client cut with 421 4.4.2"
else
	fail "slow-drip client"; show_fail drip
fi
took=$(($(date +%s) - start))
check "slow-drip client held the session under 8 s (took ${took}s)" \
    test "$took" -lt 8

# --- AUTH payload never logged (Postfix here offers no AUTH: 503)
if chat auth 'e:220' "$HELLO" 'e:250' 's:AUTH PLAIN c2VjcmV0AHNlY3JldABzZWNyZXQ=\r\n' \
    'e:5' 's:QUIT\r\n' 'e:221'; then
	pass "AUTH relayed"
else
	fail "AUTH relayed"; show_fail auth
fi
check "AUTH payload not in the daemon's log" \
    bash -c "! grep -q c2VjcmV0 '$SMTP64D_LOG'"

# --- 10 MB, byte-exact: lines that look like commands, dots, 1000 octets
msg=$LAB_DIR/big.eml
python3 - "$msg" <<'EOF'
import sys
out = [b"Subject: exact-10mb", b"X-Test: byte-exact", b""]
tricky = [b"EHLO evil.example", b".", b"..", b"...", b".hidden", b"DATA",
          b"MAIL FROM:<x@example.net>", b"QUIT", b"\t.", b" ."]
size = 0
n = 0
while size < 10 * 1000 * 1000:
    if n % 7 == 0:
        ln = b"%07d" % n + b"y" * 991          # 998 octets + CRLF = 1000
    else:
        ln = tricky[n % len(tricky)] + b" %d" % n if n % 3 else tricky[n % len(tricky)]
    out.append(ln)
    size += len(ln) + 2
    n += 1
open(sys.argv[1], "wb").write(b"\r\n".join(out) + b"\r\n")
EOF
if chat big 'e:220' "$HELLO" 'e:250' "$ENV" 'e:250' 'e:250' 'e:354' \
    "F:$msg" 'e:250' 's:QUIT\r\n' 'e:221'; then
	pass "10 MB message accepted"
else
	fail "10 MB message"; show_fail big
fi
wait_for 100 has_mail 'Subject: exact-10mb'
got=$(maildir_find s6 'Subject: exact-10mb')
if [ -n "$got" ]; then
	# The Maildir copy has LF line ends and Postfix's headers on top: the
	# original, with LF ends, must be its exact tail.
	tr -d '\r' <"$msg" >"$LAB_DIR/big.lf"
	n=$(stat -c %s "$LAB_DIR/big.lf")
	if tail -c "$n" "$got" | cmp -s - "$LAB_DIR/big.lf"; then
		pass "10 MB message arrived byte for byte ($n octets)"
	else
		fail "10 MB message differs from what was sent"
	fi
else
	fail "10 MB message not in the Maildir"
fi

check "daemon survived everything" kill -0 "$SMTP64D_PID"
if [ "$FAIL" -gt 0 ]; then lab_dump_logs 20; fi
lab_summary
