#!/usr/bin/env bash
# e2e: route mode.  A lab dnsmasq publishes the tunnel-server layout of
# draft-mrosenau-email-ipv4-to-6 §2.1: the MX hosts of a.example and
# b.example are IPv6-only Postfix servers whose A record is the gateway's
# one route address (192.0.2.40).  A real IPv4-only Postfix sends one
# message to recipients in both domains through that address: each goes
# to its own server, the second after a 452 4.5.3 that the sender's queue
# retries in a later transaction.  The reverse: an IPv6-only Postfix with
# the gateway as relayhost (smarthost) reaches two IPv4-only domains found
# by MX lookup; a client outside allow_clients gets 554 5.7.1.  Refusals:
# an unserved domain (550 5.7.1), NXDOMAIN (550 5.1.2), a resolver that
# does not answer (451 4.4.3) while another session flows.  Also: a
# domain with the same server joins the transaction, and the client leg
# in TLS through the route's own STARTTLS.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null
. "$here/../lab/lib.sh"

ROUTE4=192.0.2.40     # the tunnel server's IPv4 address (A of both MX)
ROUTE6=2001:db8:1::40 # the smarthost address for IPv6-only MTAs
DNS4=192.0.2.53       # dnsmasq, in the gateway's namespace
DNS6=2001:db8:1::53
DEAD=203.0.113.99     # a resolver that never answers (slow.example)
C4=192.0.2.10 C6=2001:db8:1::10 C6_OUT=2001:db8:1::99
SA=2001:db8:a::25 SB=2001:db8:b::25       # IPv6-only MX of a, b
SC=198.51.100.25 SD=203.0.113.25          # IPv4-only MX of c, d

lab_init
NS_GW=$(lab_nsname gw)
for n in gw c4 c6 sa sb sc sd; do
	lab_ns "$n" || { fail "namespace $n"; lab_summary; exit 1; }
done
lab_sysctl "$NS_GW" net.ipv4.ip_forward=0
lab_sysctl "$NS_GW" net.ipv6.conf.all.forwarding=0
ns() { lab_nsname "$1"; }
link() { # SHORT GW-ADDR/LEN PEER-ADDR/LEN
	lab_link "$NS_GW" "to-$1" "$(ns "$1")" eth0 &&
		lab_addr "$NS_GW" "to-$1" "$2" &&
		lab_addr "$(ns "$1")" eth0 "$3" &&
		lab_route "$(ns "$1")" default via "${2%/*}"
}
lab_sysctl "$(ns c4)" net.ipv6.conf.all.disable_ipv6=1
lab_sysctl "$(ns sc)" net.ipv6.conf.all.disable_ipv6=1
lab_sysctl "$(ns sd)" net.ipv6.conf.all.disable_ipv6=1
link c4 192.0.2.1/24 $C4/24 &&
	lab_addr "$NS_GW" to-c4 $ROUTE4/24 && lab_addr "$NS_GW" to-c4 $DNS4/24 &&
	link c6 2001:db8:1::1/64 $C6/64 &&
	lab_addr "$NS_GW" to-c6 $ROUTE6/64 && lab_addr "$NS_GW" to-c6 $DNS6/64 &&
	lab_addr "$(ns c6)" eth0 $C6_OUT/64 &&
	link sa 2001:db8:a::1/64 $SA/64 && link sb 2001:db8:b::1/64 $SB/64 &&
	link sc 198.51.100.1/24 $SC/24 && link sd 203.0.113.1/24 $SD/24 ||
	{ fail "links and addresses"; lab_summary; exit 1; }

# NS_GW is where lab_dnsmasq_start puts it too (short name gw).
if ! lab_dnsmasq_start gw "$DNS4" --listen-address="$DNS6" \
	--local=/example/ --local-ttl=300 \
	--mx-host=a.example,mx.a.example,10 \
	--host-record=mx.a.example,$ROUTE4,$SA \
	--mx-host=b.example,mx.b.example,10 \
	--mx-host=e.example,mx.a.example,10 \
	--host-record=mx.b.example,$ROUTE4,$SB \
	--mx-host=c.example,mx.c.example,10 --host-record=mx.c.example,$SC \
	--mx-host=d.example,mx.d.example,10 --host-record=mx.d.example,$SD \
	--host-record=mail-tunnel.example,$ROUTE4 \
	--server=/slow.example/$DEAD; then
	fail "dnsmasq starts"
	lab_summary
	exit 1
fi
pass "dnsmasq publishes mx.a.example and mx.b.example with A $ROUTE4"

lab_tls_certs || { fail "certificates"; lab_summary; exit 1; }
conf=$LAB_DIR/route.conf
cat >"$conf" <<EOF
[gateway]
fqdn = gw.example.net
listen = 0.0.0.0:25, [::]:25
dns_servers = $DNS4
dns_timeout_ms = 1000
connect_timeout_s = 5
log_level = debug

[route tunnel]
address = $ROUTE4
serve_published = yes
domains = .slow.example, nx.example
tls = terminate
tls_cert_file = $LAB_TLS_DIR/gw.crt
tls_key_file = $LAB_TLS_DIR/gw.key

[route smarthost]
address = $ROUTE6
smarthost = yes
allow_clients = $C6/128
EOF
lab_smtp64d_start "$conf" || { fail "smtp64d starts"; lab_summary; exit 1; }
pass "smtp64d runs with [route tunnel] and [route smarthost]"

fast="minimal_backoff_time = 2s
maximal_backoff_time = 4s
queue_run_delay = 2s"
lab_postfix_at sa sa $SA a.example mx.a.example || fail "postfix a.example"
lab_postfix_at sb sb $SB b.example mx.b.example || fail "postfix b.example"
lab_postfix_at sc sc $SC c.example mx.c.example || fail "postfix c.example"
lab_postfix_at sd sd $SD d.example mx.d.example || fail "postfix d.example"
# The senders: an IPv4-only MTA whose relay is the published tunnel server,
# an IPv6-only MTA whose relayhost is the gateway's smarthost address.
lab_resolver c4 $DNS4
lab_postfix_at c4 c4 $C4 c4.example.net mta4.example.net "$fast
smtp_dns_support_level = enabled
default_transport = smtp
relay_transport = smtp
relayhost = [mail-tunnel.example]" || fail "postfix sender (IPv4)"
lab_postfix_at c6 c6 $C6 c6.example.net mta6.example.net "$fast
default_transport = smtp
relay_transport = smtp
relayhost = [$ROUTE6]" || fail "postfix sender (IPv6)"

send() { # NAME TO... : one message, both recipients, from instance NAME
	local name=$1
	shift
	printf 'Subject: route %s\nX-Lab-Id: route-%s\n\nbody\n' "$name" "$name" |
		ip netns exec "$(ns "$name")" sendmail -C "${LAB_PF_DIR[$name]}/etc" \
			-f "sender@$name.example.net" "$@"
}
send c4 user@a.example user@b.example
send c6 user@c.example user@d.example
got() { [ "$(maildir_count "$1" "$2")" -ge 1 ]; }
wait_for 300 got sa a.example
check "IPv4 MTA -> tunnel address -> a.example's IPv6-only MX" got sa a.example
wait_for 300 got sb b.example
check "the same message -> b.example's own IPv6-only MX" got sb b.example
check "b.example's servers are not a.example's: 452 4.5.3" \
	grep -q 'domain=b.example result=ok same_server=no' "$SMTP64D_LOG"
check "the gateway answered b.example's RCPT with 452 4.5.3" \
	grep -q 'reason=other_server reply=452' "$SMTP64D_LOG"
check "the IPv4 MTA's queue retried b.example in a later transaction" \
	grep -q 'to=<user@b.example>.*status=sent' "${LAB_PF_DIR[c4]}/maillog"
check "b.example was deferred once with 4.5.3 by the sender" \
	grep -q 'to=<user@b.example>.*dsn=4.5.3' "${LAB_PF_DIR[c4]}/maillog"
wait_for 300 got sc c.example
check "IPv6 MTA -> smarthost -> c.example's IPv4-only MX (MX lookup)" \
	got sc c.example
wait_for 300 got sd d.example
check "the same message -> d.example's IPv4-only MX" got sd d.example
check "a.example went to $SA" \
	grep -q "domain=a.example dest=\[$SA\]:25" "$SMTP64D_LOG"
check "d.example went to $SD" \
	grep -q "domain=d.example dest=$SD:25" "$SMTP64D_LOG"

chat() { local n=$1; shift; lab_chat "$(ns "$n")" "$@"; }
# A client outside the smarthost's allow_clients.
ip netns exec "$(ns c6)" python3 "$LAB_LIB_DIR/smtpchat.py" --bind="$C6_OUT" \
	client "$ROUTE6" 25 e:554 s:'QUIT\r\n' e:221 \
	>"$LAB_DIR/chat-outside.out" 2>&1
check "a client outside allow_clients gets 554 5.7.1" \
	grep -q '554 5.7.1' "$LAB_DIR/chat-outside.out"

rcpt_reply() { # NAME RCPT-DOMAIN CODE
	chat c4 "$1" $ROUTE4 e:220 s:'EHLO mta4.example.net\r\n' e:250 \
		s:'MAIL FROM:<s@c4.example.net>\r\n' e:250 \
		s:"RCPT TO:<user@$2>\\r\\n" e:"$3" s:'QUIT\r\n' e:221
}
rcpt_reply unserved c.example 550
check "an unserved domain (its MX is not the gateway): 550 5.7.1" \
	grep -q '550 5.7.1' "$LAB_DIR/chat-unserved.out"
rcpt_reply nx nx.example 550
check "a served domain that does not exist: 550 5.1.2" \
	grep -q '550 5.1.2' "$LAB_DIR/chat-nx.out"

# Another domain whose MX is the server this transaction already reached
# joins it (RFC 5321 §3.3 asks one server per transaction, not one domain):
# the RCPT goes to that server, which answers it itself.
chat c4 same $ROUTE4 e:220 s:'EHLO mta4.example.net\r\n' e:250 \
	s:'MAIL FROM:<s@c4.example.net>\r\n' e:250 \
	s:'RCPT TO:<user@a.example>\r\n' e:250 \
	s:'RCPT TO:<user@e.example>\r\n' e:5 s:'QUIT\r\n' e:221
check "a domain with the same server joins the transaction (no 452)" \
	grep -q 'domain=e.example result=ok same_server=yes' "$SMTP64D_LOG"
check "and the server answered that RCPT itself" \
	grep -q 'Relay access denied' "$LAB_DIR/chat-same.out"

# The client leg in TLS (RFC 3207): the route's own STARTTLS, then the
# same dialogue inside TLS, relayed to the domain's server.
chat c4 tls $ROUTE4 e:220 s:'EHLO mta4.example.net\r\n' e:250 \
	s:'STARTTLS\r\n' e:220 t:mx.a.example s:'EHLO mta4.example.net\r\n' \
	e:250 s:'MAIL FROM:<s@c4.example.net>\r\n' e:250 \
	s:'RCPT TO:<user@a.example>\r\n' e:250 s:'QUIT\r\n' e:221
check "STARTTLS on the client leg, then relayed (RCPT 250 from the MX)" \
	grep -q 'event=tls leg=client tls=TLSv1.3' "$SMTP64D_LOG"
check "the route's EHLO reply offers STARTTLS" \
	grep -q '250-STARTTLS\|250 STARTTLS' "$LAB_DIR/chat-tls.out"

# A resolver that does not answer holds up only its own session.
start=$SECONDS
rcpt_reply slow mx.slow.example 451 &
slow=$!
sleep 0.5
lab_swaks "$(ns c4)" $ROUTE4 mta4.example.net route-fast "$LAB_DIR/fast.out" \
	--from s@c4.example.net --to user@a.example
fast_rc=$?
fast_s=$((SECONDS - start))
check "meanwhile another session delivers to a.example" test "$fast_rc" -eq 0
wait "$slow"
check "the resolver that does not answer: 451 4.4.3" \
	grep -q '451 4.4.3' "$LAB_DIR/chat-slow.out"
check "the other session was not held up (${fast_s} s)" test "$fast_s" -lt 3
wait_for 100 test "$(maildir_count sa a.example)" -ge 2
check "and its message arrived" test "$(maildir_count sa a.example)" -ge 2

if [ "$FAIL" -gt 0 ]; then
	lab_dump_logs 40
fi
lab_summary
