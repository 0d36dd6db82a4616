#!/usr/bin/env bash
# tests/lab/preflight.sh: checks, before the demo or any test suite starts,
# that every program and capability the lab relies on is there.  The first
# one missing ends the run with one line naming the Debian package that
# provides it; otherwise one "preflight: ok" line.  Exit 0 or 1.
#
# The lab runs as root in network namespaces and calls these programs; a
# package that is only Recommended by another (swaks' Perl modules) is
# absent after `apt-get install --no-install-recommends`, so capabilities
# are probed, not only the presence of a command.
#
#   preflight.sh [-q]     -q: print nothing on success
set -u
quiet=0
[ "${1:-}" = -q ] && quiet=1
n=0

missing() {
	printf 'preflight: %s: install %s (bash tools/install-deps does)\n' \
	    "$1" "$2" >&2
	exit 1
}

# need COMMAND PACKAGE
need() {
	n=$((n + 1))
	command -v "$1" >/dev/null 2>&1 || missing "no $1 command" "$2"
}

# Programs, each with the package that provides it on Debian 12.
while read -r cmd pkg; do
	need "$cmd" "$pkg"
done <<'EOF'
ip iproute2
ss iproute2
sysctl procps
unshare util-linux
flock util-linux
setpriv util-linux
prlimit util-linux
timeout coreutils
python3 python3
openssl openssl
postfix postfix
postconf postfix
smtp-source postfix
smtp-sink postfix
swaks swaks
dnsmasq dnsmasq-base
iptables iptables
ip6tables iptables
nft nftables
tcpdump tcpdump
ping iputils-ping
iperf3 iperf3
clang clang
clang-format clang-format
scdoc scdoc
promtool prometheus
systemd-analyze systemd
EOF

# swaks prints one "=== X supported" or "*** X not available" line per
# optional feature; IPv6 and TLS each come from a Perl module swaks only
# recommends.
sup=$(swaks --support 2>&1)
n=$((n + 1))
grep -q '^=== IPv6 supported' <<<"$sup" ||
	missing "swaks cannot speak IPv6 (Perl IO::Socket::INET6)" \
	    libio-socket-inet6-perl
n=$((n + 1))
grep -q '^=== TLS supported' <<<"$sup" ||
	missing "swaks cannot speak TLS (Perl Net::SSLeay)" libnet-ssleay-perl

# The lab's scripted peers use Python's ssl module.
n=$((n + 1))
python3 -c 'import ssl' 2>/dev/null ||
	missing "python3 has no ssl module" "python3 (Debian's, with ssl)"

# make fuzz and make sanitize link clang's libFuzzer and sanitizer runtimes.
n=$((n + 1))
tmp=$(mktemp -d /tmp/smtp64-preflight.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)' \
    '{ (void)d; (void)n; return 0; }' >"$tmp/f.c"
clang -fsanitize=fuzzer,address,undefined -o "$tmp/f" "$tmp/f.c" \
    >/dev/null 2>&1 ||
	missing "clang cannot link libFuzzer and the sanitizers" \
	    libclang-rt-14-dev

# The lab's namespaces.
n=$((n + 1))
[ "$(id -u)" -eq 0 ] ||
	{ echo "preflight: the lab needs root (network namespaces)" >&2; exit 1; }

[ "$quiet" -eq 1 ] || echo "preflight: ok ($n checks)"
exit 0
