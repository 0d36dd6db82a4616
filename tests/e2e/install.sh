#!/usr/bin/env bash
# e2e: building and installing.
#  - the objects that compile in the configuration path rebuild when
#    PREFIX (or SYSCONFDIR) changes: `make` then `make PREFIX=/usr`
#    recompiles main.o, and a third run recompiles nothing;
#  - `make`, then `make install PREFIX=/usr`, installs a daemon that reads
#    /etc/smtp64/smtp64.conf, every man page (smtp64-rtt(1) included), the
#    example configuration and the systemd unit with the paths of that
#    install; `make uninstall` removes all of it.
# Builds in a directory of its own (B=...), never in build/.  Needs no
# namespaces and no root.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null
. "$here/../lab/lib.sh"

tmp=$(mktemp -d /tmp/smtp64-install.XXXXXX) || exit 2
trap 'rm -rf "$tmp"' EXIT
trap 'rm -rf "$tmp"; trap - EXIT; exit 130' INT
trap 'rm -rf "$tmp"; trap - EXIT; exit 143' TERM
b=$tmp/build
root=$tmp/root
# A make of its own: nothing from a calling make (make check PREFIX=...)
# or from the environment may set the paths under test.
mk() {
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u PREFIX -u SYSCONFDIR \
	    -u DESTDIR make --no-print-directory -C "$LAB_ROOT" B="$b" "$@"
}
obj=$b/obj/gateway/main.o
has() { grep -qaF "$2" "$1"; }

echo "# the build stamp"
mk "$obj" >"$tmp/make1.out" 2>&1
check "make main.o (default PREFIX)" test $? -eq 0
check "... compiles in /usr/local/etc/smtp64/smtp64.conf" \
    has "$obj" /usr/local/etc/smtp64/smtp64.conf
check "... and records it in the stamp" \
    grep -qx 'VERSION=.* SYSCONFDIR=/usr/local/etc' "$b/build.stamp"
mk PREFIX=/usr "$obj" >"$tmp/make2.out" 2>&1
check "make PREFIX=/usr recompiles main.o" grep -q 'gateway/main.c' "$tmp/make2.out"
check "... which now reads /etc/smtp64/smtp64.conf" \
    has "$obj" /etc/smtp64/smtp64.conf
check "... and no longer /usr/local/etc" bash -c "! grep -qaF /usr/local/etc '$obj'"
before=$(stat -c %Y.%y "$obj")
sleep 1
mk PREFIX=/usr "$obj" >"$tmp/make3.out" 2>&1
check "the same PREFIX again recompiles nothing" \
    test "$(stat -c %Y.%y "$obj")" = "$before"
mk SYSCONFDIR=/opt/etc "$obj" >"$tmp/make4.out" 2>&1
check "SYSCONFDIR=/opt/etc alone recompiles main.o too" \
    has "$obj" /opt/etc/smtp64/smtp64.conf

echo "# make, then make install PREFIX=/usr"
mk -j2 all >"$tmp/all.out" 2>&1
check "make all (default PREFIX)" test $? -eq 0
mk -j2 install PREFIX=/usr DESTDIR="$root" >"$tmp/install.out" 2>&1
rc=$?
check "make install PREFIX=/usr DESTDIR=... (exit $rc)" test "$rc" -eq 0
[ "$rc" -eq 0 ] || tail -n 5 "$tmp/install.out" | sed 's/^/    | /'
d=$root/usr/sbin/smtp64d
check "the installed daemon reads /etc/smtp64/smtp64.conf" \
    bash -c "'$d' -h | grep -qF '(default /etc/smtp64/smtp64.conf)'"
for f in usr/bin/smtp64-addr usr/bin/smtp64-pcap usr/bin/smtp64-rtt \
    usr/share/man/man1/smtp64-addr.1 usr/share/man/man1/smtp64-pcap.1 \
    usr/share/man/man1/smtp64-rtt.1 usr/share/man/man5/smtp64.conf.5 \
    usr/share/man/man8/smtp64d.8 etc/smtp64/smtp64.conf.example \
    usr/lib/systemd/system/smtp64d.service; do
	check "installed: /$f" test -s "$root/$f"
done
unit=$root/usr/lib/systemd/system/smtp64d.service
check "the unit runs /usr/sbin/smtp64d -f -c /etc/smtp64/smtp64.conf" \
    grep -qx 'ExecStart=/usr/sbin/smtp64d -f -c /etc/smtp64/smtp64.conf' "$unit"
check "... and names no /usr/local path" bash -c "! grep -q /usr/local '$unit'"
check "the unit is mode 644" test "$(stat -c %a "$unit")" = 644
mk uninstall PREFIX=/usr DESTDIR="$root" >"$tmp/uninstall.out" 2>&1
left=$(find "$root" -type f | sed "s|^$root||")
check "make uninstall removes every file installed${left:+ (left: $left)}" \
    test -z "$left"

lab_summary
