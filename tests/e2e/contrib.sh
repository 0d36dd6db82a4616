#!/usr/bin/env bash
# e2e: the files in contrib/.
#  - contrib/smtp64d.service is Type=notify and hardened (no new
#    privileges, a bounding set, a read-only system, AF_NETLINK for
#    NFQUEUE), and passes `systemd-analyze verify` without a
#    single warning (a copy whose ExecStart is the built binary: verify
#    wants it to exist; the man pages it names are found in docs/), and
#    the check does see a broken copy;
#  - its paths are those of the default install, and docs/operations.md
#    points at it instead of carrying a copy;
#  - contrib/Containerfile builds a target that exists, copies files that
#    exist, and starts the daemon on the configuration path a PREFIX=/usr
#    build compiles in.
# Needs no namespaces and no root.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null
. "$here/../lab/lib.sh"
UNIT=$LAB_ROOT/contrib/smtp64d.service
CF=$LAB_ROOT/contrib/Containerfile
OPS=$LAB_ROOT/docs/operations.md

tmp=$(mktemp -d /tmp/smtp64-contrib.XXXXXX) || exit 2
trap 'rm -rf "$tmp"' EXIT
trap 'rm -rf "$tmp"; trap - EXIT; exit 130' INT
trap 'rm -rf "$tmp"; trap - EXIT; exit 143' TERM

echo "# contrib/smtp64d.service"
if [ ! -x "$SMTP64D" ]; then
	fail "$SMTP64D is built (run make)"
elif ! command -v systemd-analyze >/dev/null 2>&1; then
	fail "systemd-analyze installed"
else
	mkdir -p "$tmp/man/man8" "$tmp/man/man5"
	cp "$LAB_ROOT/docs/smtp64d.8" "$tmp/man/man8/"
	cp "$LAB_ROOT/docs/smtp64.conf.5" "$tmp/man/man5/"
	: >"$tmp/smtp64.conf"
	# verify UNIT: exit 0 and not one line of output.
	verify() {
		MANPATH=$tmp/man systemd-analyze verify "$1" >"$tmp/verify.out" 2>&1 &&
		    ! [ -s "$tmp/verify.out" ]
	}
	sed -e "s|/usr/local/sbin/smtp64d|$SMTP64D|g" \
	    -e "s|/usr/local/etc/smtp64/smtp64.conf|$tmp/smtp64.conf|g" \
	    "$UNIT" >"$tmp/smtp64d.service"
	if verify "$tmp/smtp64d.service"; then
		pass "systemd-analyze verify: no error, no warning"
	else
		fail "systemd-analyze verify"
		sed 's/^/    | /' "$tmp/verify.out"
	fi
	sed 's/^Type=notify/Type=notfy/' "$tmp/smtp64d.service" >"$tmp/broken.service"
	check "... and it speaks up on a broken copy (Type=notfy)" \
	    bash -c "MANPATH='$tmp/man' systemd-analyze verify \
	    '$tmp/broken.service' 2>&1 | grep -q 'service type'"
fi
check "the unit runs /usr/local/sbin/smtp64d -f on the default configuration" \
    grep -qx 'ExecStart=/usr/local/sbin/smtp64d -f -c /usr/local/etc/smtp64/smtp64.conf' "$UNIT"
check "it checks the file before a start (-t)" \
    grep -qx 'ExecStartPre=/usr/local/sbin/smtp64d -t -c /usr/local/etc/smtp64/smtp64.conf' "$UNIT"
check "reload is SIGHUP to the main process" \
    grep -qx 'ExecReload=/bin/kill -HUP $MAINPID' "$UNIT"
check "Type=notify, from the main process only" \
    bash -c "grep -qx 'Type=notify' '$UNIT' && grep -qx 'NotifyAccess=main' '$UNIT'"
for k in NoNewPrivileges=yes CapabilityBoundingSet=CAP_NET_BIND_SERVICE \
    ProtectSystem=strict PrivateTmp=yes 'TimeoutStopSec=60s' \
    'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK'; do
	check "hardened: $k" grep -qx "$k" "$UNIT"
done
check "docs/operations.md points at contrib/smtp64d.service" \
    grep -q 'contrib/smtp64d.service' "$OPS"
check "... and carries no copy of the unit" bash -c "! grep -q '^ExecStart=' '$OPS'"

echo "# contrib/Containerfile"
check "contrib/Containerfile exists" test -s "$CF"
# Every COPY from the build context names a file of the tree.
while read -r src; do
	check "COPY $src: in the tree" test -e "$LAB_ROOT/$src"
done < <(awk '$1 == "COPY" && $2 !~ /^--from/ && $2 != "." {print $2}' "$CF")
# make without what a calling make or the environment would pass down.
mk() {
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u PREFIX -u SYSCONFDIR \
	    make --no-print-directory "$@"
}
export -f mk
target=$(sed -n 's/.*make -C \/src PREFIX=\/usr \([^ ]*\).*/\1/p' "$CF")
check "it builds with PREFIX=/usr a target make knows (${target:-none})" \
    bash -c "test -n '$target' && mk -n -C '$LAB_ROOT' B='$tmp/b' PREFIX=/usr '$target' >/dev/null 2>&1"
conf=$(mk -n -C "$LAB_ROOT" B="$tmp/b" PREFIX=/usr "$tmp/b/obj/gateway/main.o" 2>/dev/null |
    sed -n "s/.*-DSMTP64_CONF='\"\([^\"]*\)\"'.*/\1/p" | head -n 1)
check "its ENTRYPOINT reads what PREFIX=/usr compiles in (${conf:-?})" \
    grep -qF "ENTRYPOINT [\"/usr/sbin/smtp64d\", \"-f\", \"-c\", \"$conf\"]" "$CF"
check "it copies the daemon to the ENTRYPOINT's path" \
    grep -qx 'COPY --from=build /src/build/smtp64d /usr/sbin/smtp64d' "$CF"
check "it runs unprivileged (USER)" grep -q '^USER [1-9]' "$CF"
check "docs/operations.md points at contrib/Containerfile" \
    grep -q 'contrib/Containerfile' "$OPS"

lab_summary
