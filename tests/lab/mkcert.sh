#!/usr/bin/env bash
# tests/lab/mkcert.sh: throwaway certificates for the smtp64 lab.
#
#   mkcert.sh DIR
#       makes, in DIR (created if needed):
#         ca.crt  ca.key    a CA that lives as long as DIR
#         gw.crt  gw.key    the gateway: CN and SAN gw.example.net
#         mx.crt  mx.key    the lab's Postfix servers: CN mx6.example.org,
#                           SAN mx6, mx4, mx-s6 and mx-s4 .example.org
#   mkcert.sh DIR leaf NAME CN [DNSNAME...]
#       one more certificate NAME.crt/NAME.key signed by DIR's CA (which
#       must exist), with CN and the DNS names given (default: CN);
#       MKCERT_OU=TEXT adds an OU to the subject (to tell two
#       certificates for one name apart, as in a reload test);
#       MKCERT_KEY=rsa makes an RSA-2048 key instead.
#
# Keys are ECDSA P-256 (unless MKCERT_KEY=rsa); certificates are valid for two days.  Private keys
# are mode 600; everything is for tests only.
set -eu

die() { printf 'mkcert: %s\n' "$*" >&2; exit 1; }
command -v openssl >/dev/null 2>&1 || die "openssl not installed"

[ $# -ge 1 ] || die "usage: mkcert.sh DIR [leaf NAME CN [DNSNAME...]]"
dir=$1
shift
mkdir -p "$dir"

# key FILE: a fresh P-256 private key (RSA-2048 with MKCERT_KEY=rsa).
key() {
	if [ "${MKCERT_KEY:-ec}" = rsa ]; then
		(umask 077 && openssl genpkey -algorithm RSA \
		    -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null) ||
			die "cannot make key $1"
		return
	fi
	(umask 077 && openssl genpkey -algorithm EC \
	    -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null) ||
		die "cannot make key $1"
}

# leaf NAME CN DNSNAME...: NAME.crt/NAME.key signed by the CA.
leaf() {
	local name=$1 cn=$2 san="" n subj
	shift 2
	[ $# -gt 0 ] || set -- "$cn"
	for n in "$@"; do san="${san:+$san,}DNS:$n"; done
	[ -r "$dir/ca.crt" ] && [ -r "$dir/ca.key" ] || die "no CA in $dir"
	subj="/O=smtp64 lab${MKCERT_OU:+/OU=$MKCERT_OU}/CN=$cn"
	key "$dir/$name.key"
	openssl req -new -key "$dir/$name.key" -subj "$subj" \
	    -out "$dir/$name.csr" 2>/dev/null || die "cannot make $name.csr"
	printf '%s\n' \
	    "basicConstraints = critical, CA:FALSE" \
	    "keyUsage = critical, digitalSignature" \
	    "extendedKeyUsage = serverAuth, clientAuth" \
	    "subjectAltName = $san" >"$dir/$name.ext"
	# -set_serial with random bits: two certificates for one name
	# (a reload test) never share a serial.
	openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.crt" \
	    -CAkey "$dir/ca.key" -set_serial "0x$(openssl rand -hex 8)" \
	    -days 2 -sha256 -extfile "$dir/$name.ext" \
	    -out "$dir/$name.crt" 2>/dev/null || die "cannot sign $name.crt"
	rm -f "$dir/$name.csr" "$dir/$name.ext"
	chmod 644 "$dir/$name.crt"
}

if [ $# -gt 0 ]; then
	[ "$1" = leaf ] && [ $# -ge 3 ] ||
		die "usage: mkcert.sh DIR leaf NAME CN [DNSNAME...]"
	shift
	leaf "$@"
	exit 0
fi

key "$dir/ca.key"
openssl req -x509 -new -key "$dir/ca.key" -sha256 -days 2 \
    -subj "/O=smtp64 lab/CN=smtp64 lab CA" \
    -addext "basicConstraints = critical, CA:TRUE" \
    -addext "keyUsage = critical, keyCertSign, cRLSign" \
    -out "$dir/ca.crt" 2>/dev/null || die "cannot make the CA"
chmod 644 "$dir/ca.crt"
leaf gw gw.example.net gw.example.net
leaf mx mx6.example.org mx6.example.org mx4.example.org \
    mx-s6.example.org mx-s4.example.org
