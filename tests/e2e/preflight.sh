#!/usr/bin/env bash
# e2e: tests/lab/preflight.sh passes on this machine, and stops at once with
# one line naming the package when a capability is missing: a swaks whose
# --support says IPv6 or TLS is not available, or a PATH without iperf3.
# Needs no namespaces.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null
. "$here/../lab/lib.sh"
pre=$here/../lab/preflight.sh

tmp=$(mktemp -d /tmp/smtp64-pre.XXXXXX) || exit 2
trap 'rm -rf "$tmp"' EXIT
trap 'rm -rf "$tmp"; trap - EXIT; exit 130' INT
trap 'rm -rf "$tmp"; trap - EXIT; exit 143' TERM

check "preflight passes on this machine" bash "$pre" -q

# expect_fail NAME PATTERN PATH: preflight exits 1 with exactly one line on
# stderr, matching PATTERN, when run with PATH.
expect_fail() {
	local name=$1 pat=$2 path=$3 rc
	PATH=$path bash "$pre" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ "$rc" -eq 1 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] &&
	    grep -q -- "$pat" "$tmp/err" && [ ! -s "$tmp/out" ]; then
		pass "$name: $(cat "$tmp/err")"
	else
		fail "$name (rc=$rc: $(head -c 300 "$tmp/err"))"
	fi
}

# A swaks that lacks the Perl module for IPv6, as --no-install-recommends
# leaves it: the real one's --support output with the IPv6 line turned.
real=$(command -v swaks)
mkdir -p "$tmp/no6" "$tmp/notls"
cat >"$tmp/no6/swaks" <<STUB
#!/bin/sh
"$real" "\$@" 2>&1 | sed 's/^=== IPv6 supported.*/*** IPv6 not available: requires IO::Socket::INET6.  Exiting/'
STUB
cat >"$tmp/notls/swaks" <<STUB
#!/bin/sh
"$real" "\$@" 2>&1 | sed 's/^=== TLS supported.*/*** TLS not available: requires Net::SSLeay.  Exiting/'
STUB
chmod +x "$tmp/no6/swaks" "$tmp/notls/swaks"
expect_fail "swaks without IPv6 names its package" \
    'install libio-socket-inet6-perl' "$tmp/no6:$PATH"
expect_fail "swaks without TLS names its package" \
    'install libnet-ssleay-perl' "$tmp/notls:$PATH"

# A PATH that has every program but iperf3.
mkdir -p "$tmp/bin"
IFS=: read -ra dirs <<<"$PATH"
for d in "${dirs[@]}"; do
	[ -d "$d" ] || continue
	for f in "$d"/*; do
		b=${f##*/}
		[ "$b" = iperf3 ] && continue
		[ -e "$tmp/bin/$b" ] || ln -s "$f" "$tmp/bin/$b" 2>/dev/null
	done
done
expect_fail "no iperf3 names its package" 'no iperf3 command: install iperf3' \
    "$tmp/bin"

lab_summary
