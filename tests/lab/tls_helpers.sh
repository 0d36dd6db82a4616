# tests/lab/tls_helpers.sh: what the TLS suites (tls.sh, tls_reuse.sh)
# share, sourced after lab/lib.sh; tls_lab_up brings their lab up.  Uses HELO (the
# client's EHLO argument), MAILLOG (s6's Postfix log), NS_C4 and MX6_V4,
# SMTP64D_LOG and SMTP64D_PID.
# shellcheck shell=bash

# tls_lab_up PASS-TEXT: the TLS suites' lab: c4, gw, s6 with certificates
# and a Postfix offering STARTTLS on s6 (PASS-TEXT names it); exits the
# suite when any of it fails.  Sets MAILLOG, conf and CRT.
tls_lab_up() {
	lab_init
	lab_topology c4 gw s6 || { fail "lab topology"; lab_summary; exit 1; }
	lab_tls_certs || { fail "certificates"; lab_summary; exit 1; }
	if ! lab_postfix_start_tls s6 mx6.example.org; then
		fail "Postfix with STARTTLS starts on s6"
		lab_dump_logs
		lab_summary
		exit 1
	fi
	pass "$1"
	MAILLOG=${LAB_PF_DIR[s6]}/maillog
	conf=$LAB_DIR/gw.conf
	CRT=$LAB_TLS_DIR
}

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
