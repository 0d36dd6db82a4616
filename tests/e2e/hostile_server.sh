#!/usr/bin/env bash
# Hostile server: a scripted peer on the v6 side plays what a broken or
# malicious MX might send, and a scripted client on the v4 side checks
# what smtp64d passes on.  Proves:
#  - a server that closes mid-transaction: the client gets 421 4.4.2;
#  - malformed, over-long or bare-LF replies: 421 4.4.2 and a close,
#    never a relayed fragment;
#  - STARTTLS in pass-through: bytes the server pipelines after its 220
#    (CVE-2021-38371 class) and bytes the client pipelines after STARTTLS
#    (CVE-2011-0411 class) are dropped, and the stream is opaque after;
#  - an unsolicited 421 is relayed; a silent server times out with 421.
set -u
. "$(dirname "$0")/../lab/lib.sh"

lab_init
lab_topology c4 gw s6 || { fail "lab topology"; lab_summary; exit 1; }
conf=$LAB_DIR/gw.conf
lab_gw_conf "$conf" always "reply_timeout_s = 3
greeting_timeout_s = 3"
# Listen on the paired address itself (the other tests use wildcards):
# the local address then comes from the listener, not from getsockname.
sed -i 's/^listen = .*/listen = 192.0.2.30:25/' "$conf"
lab_smtp64d_start "$conf" "" 192.0.2.30 || { fail "smtp64d start"; lab_summary; exit 1; }

scene() { lab_scene "$@"; }

G='s:220\x20mx.example.org\x20ESMTP\r\n'
E='l:EHLO\x20gw.example.net s:250-mx.example.org\r\n250-PIPELINING\r\n250\x208BITMIME\r\n'
H='s:EHLO [IPv6:2001:db8::1]\r\n'

# Server closes in the middle of a transaction (after 354 and some data).
if scene midtx "$G $E l:MAIL l:RCPT l:DATA s:250\x20ok\r\n250\x20ok\r\n354\x20go\r\n l:Subject q" \
    'e:220' "$H" 'e:250' \
    's:MAIL FROM:<a@example.net>\r\nRCPT TO:<u@example.org>\r\nDATA\r\n' \
    'e:250' 'e:250' 'e:354' 's:Subject: x\r\n' 'e:421 4.4.2' 'c'; then
	pass "server closed mid-transaction: client told 421 4.4.2"
else
	fail "server closed mid-transaction"
fi

# Malformed greeting.
if scene badgreet 's:2x0\x20what\r\n w:1' 'e:421 4.4.2' 'c'; then
	pass "malformed greeting: 421 4.4.2 and close"
else
	fail "malformed greeting"
fi

# Bare LF inside a multi-line reply: the client must not see any of it.
if scene barelf "$G l:EHLO s:250-mx.example.org\n250-INJECTED\r\n250\x20OK\r\n w:1" \
    'e:220' "$H" 'e:421 4.4.2' 'c'; then
	pass "bare LF in a reply: 421 4.4.2, nothing relayed"
else
	fail "bare LF in a reply"
fi
check "no fragment of the bare-LF reply reached the client" \
    bash -c "! grep -q INJECTED '$LAB_DIR/cli-barelf.out'"

# Over-long reply line (RFC 5321 §4.5.3.1.5).
long=$(printf 'x%.0s' $(seq 1 5000))
if scene longreply "$G l:EHLO s:250\x20$long\r\n w:1" \
    'e:220' "$H" 'e:421 4.4.2' 'c'; then
	pass "over-long reply: 421 4.4.2 and close"
else
	fail "over-long reply"
fi

# STARTTLS: the server pipelines a fake reply after its 220 (the
# CVE-2021-38371 class); the client then sends what stands for its TLS
# ClientHello and must get the server's next bytes, not the injection.
if scene tls_srv "$G $E l:STARTTLS s:220\x20go\x20ahead\r\n250\x20INJECTED\r\n l:CLIENTHELLO s:SERVERHELLO\r\n" \
    'e:220' "$H" 'e:250' 's:STARTTLS\r\n' 'e:220' \
    's:CLIENTHELLO\r\n' 'l:SERVERHELLO'; then
	pass "STARTTLS: server bytes after its 220 dropped, then opaque"
else
	fail "STARTTLS server-side injection"
fi

# STARTTLS: the client pipelines a command after STARTTLS (the
# CVE-2011-0411 class): a synchronisation error (RFC 2920 §3.1), 554 5.5.0
# and both legs closed; the server must never see it.
if scene tls_cli "$G $E l:STARTTLS s:220\x20go\x20ahead\r\n c" \
    'e:220' "$H" 'e:250' 's:STARTTLS\r\nMAIL FROM:<injected@example.net>\r\n' \
    'e:554 5.5.0' 'c'; then
	pass "STARTTLS: client bytes pipelined after STARTTLS: 554 5.5.0, closed"
else
	fail "STARTTLS client-side injection"
fi
check "the injected MAIL never reached the server" \
    bash -c "! grep -q injected '$LAB_DIR/srv-tls_cli.out'"
check "daemon logged that the post-TLS EHLO is not rewritten" \
    grep -q 'event=starttls mode=passthrough note=post_tls_helo_not_rewritten' "$SMTP64D_LOG"

# STARTTLS refused: the session goes on in plain text.
if scene tls_no "$G $E l:STARTTLS s:454\x20not\x20now\r\n l:NOOP s:250\x20ok\r\n" \
    'e:220' "$H" 'e:250' 's:STARTTLS\r\n' 'e:454' 's:NOOP\r\n' 'e:250'; then
	pass "STARTTLS refused (454): session continues as commands"
else
	fail "STARTTLS refused"
fi

# Unsolicited 421 (a server shutting down) is relayed, then the close.
if scene unsol "$G w:0.5 s:421\x20mx.example.org\x20shutting\x20down\r\n q" \
    'e:220' 'e:421 mx.example.org' 'c'; then
	pass "unsolicited 421 relayed"
else
	fail "unsolicited 421"
fi

# A server that accepts but never greets: 421 after greeting_timeout_s.
if scene silent 'w:5' 'e:421 4.4.2' 'c'; then
	pass "silent server: 421 4.4.2 after the greeting timeout"
else
	fail "silent server"
fi

check "daemon survived everything" kill -0 "$SMTP64D_PID"
if [ "$FAIL" -gt 0 ]; then lab_dump_logs 20; fi
lab_summary
