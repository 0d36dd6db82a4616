#!/usr/bin/env bash
# e2e: the command lines of smtp64d and the tools, and their man pages.
#  - -h and --help print the usage on standard output and exit 0; -V and
#    --version print "NAME VERSION" and exit 0; an unknown option prints
#    the usage on standard error and exits 2;
#  - smtp64d's usage line is the SYNOPSIS of smtp64d(8);
#  - every tool has a man page, and every roff page is what scdoc makes
#    of its .scd source today.
# Needs no namespaces and no root.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null
. "$here/../lab/lib.sh"
BUILD=$LAB_ROOT/build
DOCS=$LAB_ROOT/docs

tmp=$(mktemp -d /tmp/smtp64-cli.XXXXXX) || exit 2
trap 'rm -rf "$tmp"' EXIT
trap 'rm -rf "$tmp"; trap - EXIT; exit 130' INT
trap 'rm -rf "$tmp"; trap - EXIT; exit 143' TERM

version=$(sed -n 's/^VERSION[[:space:]]*:=[[:space:]]*//p' "$LAB_ROOT/Makefile")

# run NAME ARGS...: runs build/NAME, sets rc, out and err.
run() {
	local bin=$BUILD/$1
	shift
	"$bin" "$@" </dev/null >"$tmp/out" 2>"$tmp/err"
	rc=$?
	out=$(cat "$tmp/out")
	err=$(cat "$tmp/err")
}

for prog in smtp64d smtp64-addr smtp64-pcap smtp64-rtt; do
	if [ ! -x "$BUILD/$prog" ]; then
		fail "$BUILD/$prog is built (run make)"
		continue
	fi
	for h in -h --help; do
		run "$prog" "$h"
		check "$prog $h: exit 0 (got $rc)" test "$rc" -eq 0
		check "$prog $h: usage on stdout, nothing on stderr" \
		    test -z "$err" -a "${out#usage: "$prog" }" != "$out"
	done
	for v in -V --version; do
		run "$prog" "$v"
		check "$prog $v: '$prog $version' (got '$out', exit $rc)" \
		    test "$rc" -eq 0 -a "$out" = "$prog $version"
	done
	run "$prog" -Z
	check "$prog -Z: exit 2 (got $rc), usage on stderr" \
	    test "$rc" -eq 2 -a -z "$out" -a "${err#*usage: }" != "$err"
	check "$prog has a man page (docs/$prog.[18].scd)" \
	    bash -c "ls '$DOCS/$prog'.[18].scd"
done

run smtp64d -f extra-argument
check "smtp64d with an operand: exit 2" test "$rc" -eq 2

# The usage line and the SYNOPSIS of smtp64d(8), markup removed.
run smtp64d -h
u=$(printf '%s\n' "$out" | head -n 1 | sed 's/^usage: //')
s=$(sed -n '/^# SYNOPSIS/,/^# /{/^\*smtp64d\*/p}' "$DOCS/smtp64d.8.scd" |
    tr -d '*_')
check "smtp64d -h matches the SYNOPSIS of smtp64d(8) ('$u' / '$s')" \
    test -n "$u" -a "$u" = "$s"
# Each option in the usage text is described in OPTIONS.
for o in $(printf '%s\n' "$out" | sed -n 's/^  \(-[a-zA-Z]\).*/\1/p'); do
	check "smtp64d(8) describes $o" grep -q "^\*$o\*" "$DOCS/smtp64d.8.scd"
done

# nodate: a page without the date scdoc writes into .TH.
nodate() { sed -E 's/^(\.TH "[^"]*" "[^"]*") "[^"]*"/\1/'; }
if command -v scdoc >/dev/null 2>&1; then
	for src in "$DOCS"/*.scd; do
		page=${src%.scd}
		scdoc <"$src" 2>/dev/null | nodate >"$tmp/new"
		nodate <"$page" >"$tmp/old"
		check "docs/$(basename "$page") is scdoc's output of its source" \
		    cmp -s "$tmp/new" "$tmp/old"
	done
else
	fail "scdoc installed (tools/install-deps)"
fi

lab_summary
