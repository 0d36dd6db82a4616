# tests/lab/helo_suite.sh: the HELO-rewrite end-to-end checks shared by
# tests/e2e/helo_v4_to_v6.sh and tests/e2e/helo_v6_to_v4.sh (sourced after
# lib.sh).
#
# helo_suite CLIENT SERVER GW_ADDR GW_SRC HELO...
#   CLIENT   short name of the client namespace (c4 or c6)
#   SERVER   short name of the Postfix MX namespace (s6 or s4)
#   GW_ADDR  the gateway address the client connects to (stands for the MX)
#   GW_SRC   the gateway's own address on the MX link (source of the relay)
#   HELO...  HELO arguments to try; the first must be an address literal
#
# 1. Straight to the MX from the gateway namespace (no smtp64d): a literal
#    HELO is refused at RCPT, an FQDN accepted, so the MX really is strict.
# 2. smtp64d with helo_rewrite = always: every HELO is delivered, the
#    Received header says "from gw.example.net" and names GW_SRC, and the
#    daemon logs the helo event.
# 3. smtp64d with helo_rewrite = off: the literal HELO is refused with 5xx
#    at RCPT and nothing is delivered, while an FQDN still passes.

SWAKS_TIMEOUT=15

# hs_swaks NS SERVER HELO ID OUTFILE: one SMTP transaction; returns swaks' rc.
hs_swaks() {
	ip netns exec "$1" swaks --server "$2" --port 25 --helo "$3" \
		--from a@example.net --to user@example.org \
		--header "X-Lab-Id: $4" --timeout "$SWAKS_TIMEOUT" \
		</dev/null >"$5" 2>&1
}

# hs_rcpt_reply FILE: the server's reply to RCPT TO in a swaks transcript.
hs_rcpt_reply() {
	awk '/^ -> RCPT TO:/{getline; print; exit}' "$1"
}

# hs_delivered SERVER ID: waits (5 s) for the message with X-Lab-Id ID.
hs_found() { [ -n "$(maildir_find "$1" "X-Lab-Id: $2")" ]; }
hs_delivered() { wait_for 50 hs_found "$1" "$2"; }

# hs_log_has_helo LOG HELO_IN HELO_OUT: the daemon logged this rewrite.
hs_log_has_helo() {
	grep -F 'event=helo' "$1" | grep -F -- "helo_in=$2" |
		grep -qF -- "helo_out=$3"
}

hs_show() {
	printf '    --- %s\n' "$1"
	sed 's/^/    | /' "$2" | tail -n "${3:-25}"
}

helo_suite() {
	local client=$1 server=$2 gwaddr=$3 gwsrc=$4
	shift 4
	local helos=("$@") literal=$1
	local cns saddr conf out f hdr before i helo id rc reply
	cns=$(lab_nsname "$client")
	saddr=${LAB_PF_ADDR[$server]}
	conf=$LAB_DIR/smtp64.conf
	out=$LAB_DIR/swaks.out
	local src_re=${gwsrc//./\\.}
	case $gwsrc in *:*) src_re="\\[IPv6:$gwsrc\\]" ;; *) src_re="\\[$src_re\\]" ;; esac

	echo "# step 1: the MX ($saddr) enforces strict HELO checks (direct, no gateway)"
	before=$(maildir_count "$server")
	hs_swaks "$NS_GW" "$saddr" "$literal" "direct-literal-$LAB_TAG" "$out"
	rc=$?
	reply=$(hs_rcpt_reply "$out")
	check "direct: HELO $literal refused by the MX (swaks rc=$rc)" test "$rc" -ne 0
	check "direct: refusal is 5xx at RCPT ($reply)" \
		grep -qE '^<\*\* 5[0-9][0-9] ' <<<"$reply"
	hs_swaks "$NS_GW" "$saddr" mta.example.com "direct-fqdn-$LAB_TAG" "$out"
	rc=$?
	check "direct: HELO mta.example.com accepted by the MX (swaks rc=$rc)" \
		test "$rc" -eq 0
	check "direct: that message is delivered" \
		hs_delivered "$server" "direct-fqdn-$LAB_TAG"

	echo "# step 2: smtp64d with helo_rewrite = always; client $client -> $gwaddr"
	lab_gw_conf "$conf" always
	if ! lab_smtp64d_start "$conf"; then
		fail "smtp64d starts (helo_rewrite = always)"
		lab_dump_logs
		return 1
	fi
	pass "smtp64d starts (helo_rewrite = always)"
	i=0
	for helo in "${helos[@]}"; do
		i=$((i + 1))
		id="always-$i-$LAB_TAG"
		hs_swaks "$cns" "$gwaddr" "$helo" "$id" "$out"
		rc=$?
		if ! check "always: HELO $helo: swaks via $gwaddr succeeds (rc=$rc)" \
			test "$rc" -eq 0; then
			hs_show "swaks transcript" "$out"
		fi
		if check "always: HELO $helo: message lands in the Maildir" \
			hs_delivered "$server" "$id"; then
			f=$(maildir_find "$server" "X-Lab-Id: $id")
			hdr=$(received_header "$f")
			echo "    $hdr" | cut -c1-150
			check "always: HELO $helo: Received says 'from gw.example.net'" \
				grep -qE '^Received: from gw\.example\.net ' <<<"$hdr"
			check "always: HELO $helo: Received names the gateway source $gwsrc" \
				grep -qE "^Received: from [^ ]+ \\([^)]*$src_re\\)" <<<"$hdr"
		else
			fail "always: HELO $helo: Received says 'from gw.example.net'"
			fail "always: HELO $helo: Received names the gateway source $gwsrc"
		fi
		check "always: HELO $helo: smtp64d logs helo_in=$helo helo_out=gw.example.net" \
			hs_log_has_helo "$SMTP64D_LOG" "$helo" gw.example.net
	done

	echo "# step 3: smtp64d restarted with helo_rewrite = off"
	lab_smtp64d_stop
	check "smtp64d exits within 5 s of SIGTERM" test "$?" -eq 0
	lab_gw_conf "$conf" off
	if ! lab_smtp64d_start "$conf" "$LAB_DIR/smtp64d-off.log"; then
		fail "smtp64d starts (helo_rewrite = off)"
		lab_dump_logs
		return 1
	fi
	pass "smtp64d starts (helo_rewrite = off)"
	before=$(maildir_count "$server")
	local mlines
	mlines=$(wc -l <"${LAB_PF_DIR[$server]}/maillog")
	id="off-literal-$LAB_TAG"
	hs_swaks "$cns" "$gwaddr" "$literal" "$id" "$out"
	rc=$?
	reply=$(hs_rcpt_reply "$out")
	check "off: HELO $literal: swaks fails (rc=$rc)" test "$rc" -ne 0
	if ! check "off: HELO $literal: 5xx at RCPT ($reply)" \
		grep -qE '^<\*\* 5[0-9][0-9] ' <<<"$reply"; then
		hs_show "swaks transcript" "$out"
	fi
	sleep 1
	check "off: HELO $literal: no new message in the Maildir" \
		test "$(maildir_count "$server")" -eq "$before"
	check "off: the MX saw the unmodified HELO $literal" \
		grep -qF -- "helo=<$literal>" \
		<(tail -n "+$((mlines + 1))" "${LAB_PF_DIR[$server]}/maillog")
	# Control: off mode still relays, so the refusal above is the HELO's.
	id="off-fqdn-$LAB_TAG"
	hs_swaks "$cns" "$gwaddr" mta.example.com "$id" "$out"
	rc=$?
	check "off: HELO mta.example.com still relayed (rc=$rc)" test "$rc" -eq 0
	if check "off: HELO mta.example.com: message lands in the Maildir" \
		hs_delivered "$server" "$id"; then
		f=$(maildir_find "$server" "X-Lab-Id: $id")
		hdr=$(received_header "$f")
		check "off: Received keeps 'from mta.example.com'" \
			grep -qE '^Received: from mta\.example\.com ' <<<"$hdr"
	else
		fail "off: Received keeps 'from mta.example.com'"
	fi
	[ "$FAIL" -eq 0 ] || lab_dump_logs
	return 0
}
