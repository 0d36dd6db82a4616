# tests/lab/tls_helpers.sh: what the TLS suites (tls.sh, tls_reuse.sh)
# share, sourced after lab/lib.sh once the lab is up.  Uses HELO (the
# client's EHLO argument), MAILLOG (s6's Postfix log), NS_C4 and MX6_V4,
# SMTP64D_LOG and SMTP64D_PID.
# shellcheck shell=bash

# tsw ID OUT [SWAKS ARGS]: one transaction from c4 through the gateway.
tsw() {
	local id=$1 out=$2
	shift 2
	ip netns exec "$NS_C4" swaks --server "$MX6_V4" --port 25 \
	    --helo "$HELO" --from a@example.net --to user@example.org \
	    --header "X-Lab-Id: $id" --timeout 15 "$@" </dev/null >"$out" 2>&1
}
found() { [ -n "$(maildir_find s6 "X-Lab-Id: $1")" ]; }
delivered() { wait_for 50 found "$1"; }
reloads() { grep -c "event=reload result=$1" "$SMTP64D_LOG" || true; }
reloaded() { [ "$(reloads "$1")" -gt "$2" ]; }
# gw_reload RESULT: SIGHUP, then wait for "event=reload result=RESULT".
gw_reload() {
	local n
	n=$(reloads "$1")
	kill -HUP "$SMTP64D_PID"
	wait_for 50 reloaded "$1" "$n"
}
# log_since MARK: the daemon's log lines after line MARK.
log_mark() { wc -l <"$SMTP64D_LOG"; }
log_since() { tail -n "+$(($1 + 1))" "$SMTP64D_LOG"; }
pf_mark() { wc -l <"$MAILLOG"; }
pf_since() { tail -n "+$(($1 + 1))" "$MAILLOG"; }
