#!/usr/bin/env bash
# e2e: `smtp64d -t -c FILE` accepts good configurations (exit 0) and
# rejects broken ones with a non-zero exit and a `FILE:LINE: ...` message
# on stderr naming the offending line.  Needs no namespaces and no root.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null
. "$here/../lab/lib.sh"

if [ ! -x "$SMTP64D" ]; then
	fail "$SMTP64D is built (run make)"
	lab_summary
	exit 1
fi

tmp=$(mktemp -d /tmp/smtp64-cfg.XXXXXX) || exit 2
trap 'rm -rf "$tmp"' EXIT
trap 'rm -rf "$tmp"; trap - EXIT; exit 130' INT
trap 'rm -rf "$tmp"; trap - EXIT; exit 143' TERM

# The good configuration; line numbers matter below.
good=$tmp/good.conf
cat >"$good" <<'CONF'
[gateway]
fqdn = gw.example.net
listen = 0.0.0.0:25, [::]:25
helo_rewrite = always

[pair mx6]
ipv4 = 192.0.2.30
ipv6 = 2001:db8::25

[pair mx4]
ipv4 = 198.51.100.25
ipv6 = 2001:db8:1::25
CONF

# variant NAME SED_SCRIPT: a copy of the good config edited by sed.
variant() {
	sed "$2" "$good" >"$tmp/$1.conf"
	printf '%s' "$tmp/$1.conf"
}

# accepts DESC FILE
accepts() {
	local err rc
	err=$("$SMTP64D" -t -c "$2" 2>&1 >/dev/null)
	rc=$?
	if ! check "accepts $1 (exit $rc)" test "$rc" -eq 0; then
		printf '%s\n' "$err" | head -n 5 | sed 's/^/    | /'
	fi
}

# rejects DESC FILE [LINE]: exit non-zero and "FILE:LINE: msg" on stderr;
# when LINE is given the message must name exactly that line.
rejects() {
	local desc=$1 file=$2 want=${3:-} err rc msg num
	err=$("$SMTP64D" -t -c "$file" 2>&1 >/dev/null)
	rc=$?
	printf '    | %s\n' "$(printf '%s\n' "$err" | head -n 1)"
	check "rejects $desc (exit $rc)" test "$rc" -ne 0
	# The first stderr line that starts with the file name.
	msg=$(printf '%s\n' "$err" | while IFS= read -r l; do
		case $l in "$file:"*) printf '%s\n' "$l"; break ;; esac
	done)
	num=${msg#"$file:"}
	num=${num%%:*}
	if check "rejects $desc: message is '$(basename "$file"):LINE: ...'" \
		grep -qE '^[0-9]+: .' <<<"${msg#"$file:"}"; then
		if [ -n "$want" ]; then
			check "rejects $desc: names line $want (got $num)" \
				test "$num" = "$want"
		fi
	elif [ -n "$want" ]; then
		fail "rejects $desc: names line $want"
	fi
}

accepts "the standard config" "$good"
accepts "helo_rewrite = literals" "$(variant literals 's/^helo_rewrite = .*/helo_rewrite = literals/')"
accepts "helo_rewrite = off" "$(variant off 's/^helo_rewrite = .*/helo_rewrite = off/')"
accepts "connect_timeout_s = 3" "$(variant timeout '4a connect_timeout_s = 3')"
accepts "bare_line_endings = reject" "$(variant bare '4a bare_line_endings = reject')"
accepts "comment lines" "$(variant comments '1i # smtp64 test\n; other comment style')"
if [ -r "$LAB_ROOT/tests/lab/demo.conf" ]; then
	accepts "tests/lab/demo.conf" "$LAB_ROOT/tests/lab/demo.conf"
fi

rejects "an unknown key" "$(variant unknown '2a frobnicate = yes')" 3
rejects "a bad IPv6 address" "$(variant badv6 's/^ipv6 = 2001:db8::25$/ipv6 = 2001:db8::zz/')" 8
rejects "a bad IPv4 address" "$(variant badv4 's/^ipv4 = 192.0.2.30$/ipv4 = 192.0.2.300/')" 7
rejects "an IPv6 address as ipv4" "$(variant family 's/^ipv4 = 198.51.100.25$/ipv4 = 2001:db8::30/')" 11
rejects "a missing fqdn" "$(variant nofqdn '/^fqdn = /d')"
rejects "helo_rewrite = maybe" "$(variant maybe 's/^helo_rewrite = .*/helo_rewrite = maybe/')" 4
rejects "bare_line_endings = accept" "$(variant bareno '4a bare_line_endings = accept')" 5

# Addresses that are no host: a pair must never lead to the gateway host
# itself, its link or a group.
rejects "ipv6 = :: (unspecified)" "$(variant unspec 's/^ipv6 = 2001:db8::25$/ipv6 = ::/')" 8
rejects "ipv6 = ::1 (loopback)" "$(variant lo6 's/^ipv6 = 2001:db8::25$/ipv6 = ::1/')" 8
rejects "ipv4 = 0.0.0.0" "$(variant any4 's/^ipv4 = 192.0.2.30$/ipv4 = 0.0.0.0/')" 7
rejects "ipv4 = 127.0.0.1" "$(variant lo4 's/^ipv4 = 198.51.100.25$/ipv4 = 127.0.0.1/')" 11
rejects "ipv4 = 224.0.0.1 (multicast)" "$(variant mc4 's/^ipv4 = 198.51.100.25$/ipv4 = 224.0.0.1/')" 11
rejects "ipv6 = ::ffff:127.0.0.1 (IPv4-mapped)" "$(variant mapped 's/^ipv6 = 2001:db8::25$/ipv6 = ::ffff:127.0.0.1/')" 8
rejects "ipv6 = fe80::1 (link-local)" "$(variant ll6 's/^ipv6 = 2001:db8::25$/ipv6 = fe80::1/')" 8
# What bind(2) would refuse at start.
rejects "a listen address given twice" "$(variant duplisten '3a listen = 0.0.0.0:25')" 4
rejects "a specific listen address beside the wildcard" "$(variant overlisten '3a listen = 192.0.2.30')" 4
# Overlapping prefixes: the second section's allow_clients would never apply.
rejects "overlapping [nat64] prefixes" "$(variant nat64dup '$a [nat64 a]\nprefix = 2001:db8:64::/96\nallow_clients = 2001:db8::/64\n[nat64 b]\nprefix = 2001:db8:64::/64\nallow_clients = any')" 17
# Bytes that are no text, and lines too long for the parser.
printf '[gateway]\nfqdn = gw.exa\000mple.net\n[pair a]\nipv4 = 192.0.2.30\nipv6 = 2001:db8::25\n' >"$tmp/nul.conf"
rejects "a NUL byte (used to cut the value short)" "$tmp/nul.conf" 2
printf '[gateway]\nfqdn = gw.example.net\nlisten = \033[31m\n' >"$tmp/esc.conf"
rejects "a terminal escape sequence" "$tmp/esc.conf" 3
err=$("$SMTP64D" -t -c "$tmp/esc.conf" 2>&1)
check "  ... and the message escapes it (\\x1b, no raw ESC)" \
	eval '[[ $err == *"\\x1b"* && $err != *$'"'"'\033'"'"'* ]]'
{ printf '[gateway]\nfqdn = gw.example.net\n# '; printf 'x%.0s' $(seq 250); printf '\n[pair a]\nipv4 = 192.0.2.30\nipv6 = 2001:db8::25\n'; } >"$tmp/long.conf"
rejects "a line over 199 characters (named on its own line)" "$tmp/long.conf" 3
check "  ... as 'line too long'" \
	eval '"$SMTP64D" -t -c "$tmp/long.conf" 2>&1 | grep -q "line too long"'
mkdir "$tmp/dir.conf"
err=$("$SMTP64D" -t -c "$tmp/dir.conf" 2>&1)
rc=$?
check "rejects a directory (exit $rc)" test "$rc" -ne 0
check "  ... saying it is a directory: $err" grep -q "is a directory" <<<"$err"

err=$("$SMTP64D" -t -c "$tmp/does-not-exist.conf" 2>&1)
rc=$?
check "rejects a missing file (exit $rc)" test "$rc" -ne 0

lab_summary
