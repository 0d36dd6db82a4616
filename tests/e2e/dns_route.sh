#!/usr/bin/env bash
# e2e: route mode's DNS lookups (gateway/dns.c on c-ares, nat/mx.c's
# choice) against a lab dnsmasq that publishes the tunnel-server layout of
# draft-mrosenau-email-ipv4-to-6 §3: the MX hosts of two IPv6-only domains
# both have the gateway's IPv4 address as their A record.  Also RFC 3974
# §3's dual-stack example, an implicit MX (RFC 5321 §5.1), NXDOMAIN, and a
# resolver that never answers (a temporary failure, and the event loop
# keeps running meanwhile).  Run by build/test/dns_driver, one process.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null
. "$here/../lab/lib.sh"

DRV=$LAB_ROOT/build/test/dns_driver
GW_ADDR=203.0.113.1
DNS_ADDR=203.0.113.53
DEAD_ADDR=203.0.113.99 # nobody answers there
GW_V4=192.0.2.30       # the gateway's route address (the tunnel server)

[ -x "$DRV" ] || { fail "$DRV is built (make build/test/dns_driver)"; lab_summary; exit 1; }

lab_init
lab_ns gw && lab_ns dns || { fail "namespaces"; lab_summary; exit 1; }
NS_GWD=$(lab_nsname gw)
NS_DNS=$(lab_nsname dns)
lab_link "$NS_GWD" to-dns "$NS_DNS" eth0 || { fail "link"; lab_summary; exit 1; }
ip -n "$NS_GWD" addr add "$GW_ADDR/24" dev to-dns &&
	ip -n "$NS_DNS" addr add "$DNS_ADDR/24" dev eth0 ||
	{ fail "addresses"; lab_summary; exit 1; }

if ! lab_dnsmasq_start dns "$DNS_ADDR" --local=/example/ --local-ttl=300 \
	--mx-host=a.example,mx.a.example,10 \
	--host-record=mx.a.example,$GW_V4,2001:db8:a::25 \
	--mx-host=b.example,mx.b.example,10 \
	--host-record=mx.b.example,$GW_V4,2001:db8:b::25 \
	--mx-host=v4only.example,mx.v4only.example,10 \
	--host-record=mx.v4only.example,198.51.100.25 \
	--mx-host=dual.example,mx1.dual.example,1 \
	--mx-host=dual.example,mx10.dual.example,10 \
	--host-record=mx1.dual.example,192.0.2.1,2001:db8:ffff::1 \
	--host-record=mx10.dual.example,2001:db8:ffff::2 \
	--host-record=implicit.example,198.51.100.26,2001:db8:c::26 \
	--mx-host=noaddr.example,mx.noaddr.example,10 \
	--mx-host=nullmx.example,.,0 \
	--host-record=other.example,198.51.100.27; then
	fail "dnsmasq starts"
	lab_summary
	exit 1
fi
pass "dnsmasq publishes the lab zone on $DNS_ADDR"

out=$LAB_DIR/drv.out
# An IPv4 client reaches the gateway: only IPv6 servers, never its own
# address.
ip netns exec "$NS_GWD" timeout 20 "$DRV" -s "$DNS_ADDR" -f 6 -o "$GW_V4" \
	a.example b.example v4only.example dual.example implicit.example \
	nx.example noaddr.example nullmx.example >"$out" 2>&1
line() { grep "^$1 " "$out"; }
check "a.example: tunnel-server layout, to its IPv6 MX" \
	grep -qx 'a.example rc=ok gateway=1 targets=2001:db8:a::25 ticks=[0-9]*' "$out"
check "b.example: same gateway address, its own IPv6 MX" \
	grep -qx 'b.example rc=ok gateway=1 targets=2001:db8:b::25 ticks=[0-9]*' "$out"
check "v4only.example from IPv4 to IPv6: no usable address (550 5.1.2)" \
	grep -qx 'v4only.example rc=no-address gateway=0 targets= ticks=[0-9]*' "$out"
check "dual.example (RFC 3974 §3 example): IPv6 of MX 1, then MX 10" \
	grep -qx 'dual.example rc=ok gateway=0 targets=2001:db8:ffff::1,2001:db8:ffff::2 ticks=[0-9]*' "$out"
check "implicit.example: no MX, its own AAAA (RFC 5321 §5.1)" \
	grep -qx 'implicit.example rc=ok gateway=0 targets=2001:db8:c::26 ticks=[0-9]*' "$out"
check "nx.example: NXDOMAIN (550 5.1.2)" \
	grep -qx 'nx.example rc=nxdomain gateway=0 targets= ticks=[0-9]*' "$out"
check "nullmx.example: RFC 7505 null MX (556 5.1.10)" \
	grep -qx 'nullmx.example rc=null-mx gateway=0 targets= ticks=[0-9]*' "$out"
check "noaddr.example: MX host without addresses (550 5.1.2)" \
	grep -qx 'noaddr.example rc=no-address gateway=0 targets= ticks=[0-9]*' "$out"

# An IPv6 client: IPv4 servers; both families: AAAA first (§3 step 5).
ip netns exec "$NS_GWD" timeout 20 "$DRV" -s "$DNS_ADDR" -f 4 -o "$GW_V4" \
	v4only.example a.example >"$out" 2>&1
check "v4only.example from IPv6 to IPv4: its A record" \
	grep -qx 'v4only.example rc=ok gateway=0 targets=198.51.100.25 ticks=[0-9]*' "$out"
check "a.example over IPv4: only the gateway itself (loop, 554 5.4.6)" \
	grep -qx 'a.example rc=self gateway=1 targets= ticks=[0-9]*' "$out"
ip netns exec "$NS_GWD" timeout 20 "$DRV" -s "$DNS_ADDR" -f 46 \
	dual.example >"$out" 2>&1
check "dual.example, both families: AAAA then A of MX 1, then MX 10" \
	grep -qx 'dual.example rc=ok gateway=0 targets=2001:db8:ffff::1,192.0.2.1,2001:db8:ffff::2 ticks=[0-9]*' "$out"

# The cache: a second lookup within the TTL asks dnsmasq nothing.
ip netns exec "$NS_GWD" timeout 20 "$DRV" -s "$DNS_ADDR" -f 6 -r \
	a.example >"$out" 2>&1
check "a second lookup is answered from the cache" \
	grep -qx 'stats lookups=2 cache_hits=1 tempfails=0' "$out"
check "and gives the same answer" \
	test "$(grep -c '^a.example rc=ok gateway=0 targets=2001:db8:a::25' "$out")" -eq 2

# A resolver that never answers: 451 4.4.3 after c-ares' timeout (500 ms
# here), while the loop goes on (its 10 ms timer kept ticking).
ip netns exec "$NS_GWD" timeout 20 "$DRV" -s "$DEAD_ADDR" -t 500 -f 6 \
	a.example b.example >"$out" 2>&1
check "dead resolver: a.example is a temporary failure (451 4.4.3)" \
	grep -q '^a.example rc=dns-tempfail ' "$out"
check "dead resolver: b.example too" grep -q '^b.example rc=dns-tempfail ' "$out"
ticks=$(sed -n 's/^a.example .* ticks=\([0-9]*\)$/\1/p' "$out")
check "the loop ran during the wait (${ticks:-0} ticks of 10 ms)" \
	test "${ticks:-0}" -ge 20
check "tempfails counted" grep -q 'tempfails=2$' "$out"
[ "$FAIL" -eq 0 ] || { echo "last driver output:"; cat "$out"; }
lab_summary
