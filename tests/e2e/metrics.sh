#!/usr/bin/env bash
# e2e: the Prometheus endpoint (metrics_listen), with workers = 2.
#  - off by default: nothing listens on 9425 without the key;
#  - GET /metrics answers 200 with text/plain; version=0.0.4, another
#    path 404;
#  - `promtool check metrics` finds nothing to say about the exposition;
#  - after a known workload the values match it: 4 messages from two
#    client addresses (so both workers serve some, and worker 0 sums
#    them), one unpaired address (554), one session over
#    max_sessions_per_client (421), two sessions held open (the gauge),
#    one reload; bytes and the connect histogram's count equal what the
#    close and open lines of the log add up to.
set -u
. "$(dirname "$0")/../lab/lib.sh"

lab_init
command -v promtool >/dev/null || { fail "promtool installed (prometheus)"; lab_summary; exit 1; }
lab_topology c4 gw s6 || { fail "lab topology"; lab_summary; exit 1; }
lab_postfix_start s6 || { fail "postfix on s6"; lab_summary; exit 1; }
C4_ADDR2=192.0.2.11
lab_addr "$NS_C4" eth0 "$C4_ADDR2/24"
lab_addr "$NS_GW" to-c4 192.0.2.40/24
conf=$LAB_DIR/gw.conf
M=127.0.0.1:9425

lab_gw_conf "$conf" always "workers = 2"
lab_smtp64d_start "$conf" "$LAB_DIR/off.log" || { fail "start"; lab_summary; exit 1; }
check "no metrics_listen: nothing on 9425" \
    bash -c "! ip netns exec '$NS_GW' ss -Hltn | grep -q ':9425 '"
lab_smtp64d_stop

lab_gw_conf "$conf" always "workers = 2
max_sessions_per_client = 2
metrics_listen = $M"
lab_smtp64d_start "$conf" || { fail "start"; lab_summary; exit 1; }
log=$SMTP64D_LOG
scrape() { # scrape PATH OUT: the whole HTTP response
	ip netns exec "$NS_GW" python3 - "$M" "$1" >"$2" <<'PY'
import socket, sys
h, p = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((h, int(p)), timeout=5)
s.sendall(b"GET " + sys.argv[2].encode() + b" HTTP/1.0\r\n\r\n")
buf = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    buf += d
sys.stdout.write(buf.decode())
PY
}
body() { sed '1,/^\r$/d' "$1"; }
# val FILE SAMPLE: the value of the sample line starting with SAMPLE.
val() { body "$1" | awk -v k="$2" 'index($0, k " ") == 1 {print $NF}'; }

for i in 1 2; do
	lab_swaks "$NS_C4" "$MX6_V4" '[IPv6:2001:db8::1]' m-a$i "$LAB_DIR/sw-a$i.out"
	lab_swaks "$NS_C4" "$MX6_V4" '[IPv6:2001:db8::1]' m-b$i "$LAB_DIR/sw-b$i.out" \
	    --local-interface "$C4_ADDR2"
done
lab_chat "$NS_C4" nopair 192.0.2.40 'e:554 5.4.4' 's:QUIT\r\n' 'e:221'
# Three at once from one address, the limit two: one gets 421; the
# other two stay open while the endpoint is read.
ip netns exec "$NS_C4" python3 - "$MX6_V4" >"$LAB_DIR/hold.out" 2>&1 <<'PY' &
import socket, sys, time
socks = [socket.create_connection((sys.argv[1], 25), timeout=5) for _ in range(3)]
print(sorted(s.recv(512)[:3].decode() for s in socks))
sys.stdout.flush()
time.sleep(4)
PY
holder=$!
LAB_PIDS+=("$holder")
wait_for 50 grep -q 421 "$LAB_DIR/hold.out"
kill -HUP "$SMTP64D_PID"
reloaded() { test "$(grep -c 'event=reload result=ok' "$log")" -ge 2; }
wait_for 50 reloaded
sleep 0.5
scrape /metrics "$LAB_DIR/m1.txt"
check "200 with the exposition's content type" \
    bash -c "head -n 1 '$LAB_DIR/m1.txt' | grep -q '^HTTP/1.0 200' &&
	grep -qi '^Content-Type: text/plain; version=0.0.4' '$LAB_DIR/m1.txt'"
body "$LAB_DIR/m1.txt" >"$LAB_DIR/m1.prom"
if promtool check metrics <"$LAB_DIR/m1.prom" >"$LAB_DIR/promtool.out" 2>&1; then
	pass "promtool check metrics: no problem"
else
	fail "promtool check metrics"; sed 's/^/    | /' "$LAB_DIR/promtool.out" | head
fi
m=$LAB_DIR/m1.txt
check "sessions_open = 2 (the two held), summed over both workers" \
    test "$(val "$m" smtp64_sessions_open)" = 2
check "sessions_opened_total = 6 (4 messages, 2 held)" \
    test "$(val "$m" smtp64_sessions_opened_total)" = 6
check "sessions_closed_total{reason=\"quit\"} = 4" \
    test "$(val "$m" 'smtp64_sessions_closed_total{reason="quit"}')" = 4
check "messages_total = 4" test "$(val "$m" smtp64_messages_total)" = 4
check "refusals: no_pair 554 = 1, max_sessions_per_client 421 = 1" \
    test "$(val "$m" 'smtp64_refusals_total{reason="no_pair",code="554"}')" = 1 -a \
    "$(val "$m" 'smtp64_refusals_total{reason="max_sessions_per_client",code="421"}')" = 1
check "rewrites_total{kind=\"helo\"} = 4" \
    test "$(val "$m" 'smtp64_rewrites_total{kind="helo"}')" = 4
c2s=$(grep -o 'c2s_bytes=[0-9]*' "$log" | awk -F= '{t += $2} END {print t + 0}')
s2c=$(grep -o 's2c_bytes=[0-9]*' "$log" | awk -F= '{t += $2} END {print t + 0}')
check "bytes client_to_server = the close lines' sum ($c2s)" \
    test "$(val "$m" 'smtp64_bytes_total{direction="client_to_server"}')" = "$c2s"
check "bytes server_to_client = the close lines' sum ($s2c)" \
    test "$(val "$m" 'smtp64_bytes_total{direction="server_to_client"}')" = "$s2c"
check "connect histogram: count 6, +Inf bucket 6" \
    test "$(val "$m" smtp64_upstream_connect_seconds_count)" = 6 -a \
    "$(val "$m" 'smtp64_upstream_connect_seconds_bucket{le="+Inf"}')" = 6
check "config_reloads_total{result=\"ok\"} = 2 (one per worker)" \
    test "$(val "$m" 'smtp64_config_reloads_total{result="ok"}')" = 2
check "both workers served: sessions of 00 and 01 in the log" \
    bash -c "grep -q 'session=00[0-9a-f]* event=open' '$log' && grep -q 'session=01[0-9a-f]* event=open' '$log'"
scrape /other "$LAB_DIR/m2.txt"
check "another path: 404" bash -c "head -n 1 '$LAB_DIR/m2.txt' | grep -q '^HTTP/1.0 404'"
wait "$holder"
gauge0() { scrape /metrics "$LAB_DIR/m3.txt"; test "$(val "$LAB_DIR/m3.txt" smtp64_sessions_open)" = 0; }
check "the gauge returns to 0 when the held sessions close" wait_for 50 gauge0
lab_smtp64d_stop

if [ "$FAIL" -gt 0 ]; then lab_dump_logs 20; fi
lab_summary
