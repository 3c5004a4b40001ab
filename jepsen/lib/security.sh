# jepsen/lib/security.sh: --tls and --tokens.
#
# Everything lives in $SEC (= $TMP/sec, mode 0700, removed at teardown):
#   ca.pem, ca.key                   the run's own CA (tests/lib/tlscerts.py)
#   server-I.pem, server-I.key       node I: URI SAN spiffe://raftplane/server/I,
#                                    IP SAN = its namespace address 10.77.0.(10+I)
#   node-sub-K.pem, node-sub-K.key   mesh subscriber sub-K: spiffe://raftplane/node/sub-K
#   admin.token                      --tokens: every server's --bootstrap-token-file
#                                    (the cluster's first admin token, and each
#                                    node's credential for --join)
#   client.token                     --tokens: a write token created through the API
#                                    once the cluster is ready; the workload's token
# The certificates (not the keys or tokens) are copied to $OUT/tls/.
#
# HUB_OPTS: rp-jepsen-client global flags of the scripts' own requests
# (nemesis, checks: the admin token); RUN_OPTS: those of the workload.

HUB_OPTS=()
RUN_OPTS=()

security_note() {
	((TLS)) && printf ', TLS'
	((TOKENS)) && printf ', tokens'
	return 0
}

# A token string: rpt_ + the unpadded base64url of 32 random bytes.
new_token() {
	local b
	b=$(head -c 32 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=') || return 1
	[[ ${#b} == 43 ]] || return 1
	echo "rpt_$b"
}

make_security() {
	((TLS || TOKENS)) || return 0
	(umask 077 && mkdir -p "$SEC") || return 1
	if ((TLS)); then
		local args=() i k
		for ((i = 1; i <= NODES; i++)); do args+=(server "$i" --ip "${IP[i]}"); done
		if [[ $WORKLOAD == mesh ]]; then
			for ((k = 0; k < 6; k++)); do args+=(node "sub-$k"); done
		fi
		if ! python3 "$HERE/../tests/lib/tlscerts.py" "$SEC" "${args[@]}" >"$SEC/certs.txt" 2>"$SEC/certs.err"; then
			say "tlscerts.py failed: $(head -3 "$SEC/certs.err" | tr '\n' ' ')"
			return 1
		fi
		mkdir -p "$OUT/tls" && cp "$SEC"/*.pem "$OUT/tls/"
		HUB_OPTS+=(--ca "$SEC/ca.pem")
		RUN_OPTS+=(--ca "$SEC/ca.pem")
	fi
	if ((TOKENS)); then
		local t
		t=$(new_token) || { say "could not make a token"; return 1; }
		(umask 077 && echo "$t" >"$SEC/admin.token") || return 1
		HUB_OPTS+=(--token-file "$SEC/admin.token")
	fi
	return 0
}

# node_tls_args I: NODE_TLS = the TLS flags of node I (none without --tls).
node_tls_args() {
	NODE_TLS=()
	((TLS)) || return 0
	NODE_TLS=(--tls-cert "$SEC/server-$1.pem" --tls-key "$SEC/server-$1.key" --tls-client-ca "$SEC/ca.pem")
}

# sub_tls_args ID: SUB_TLS = the flags of subscriber ID (sub-K): its node
# certificate with --tls, --insecure without (namespace addresses).
sub_tls_args() {
	if ((TLS)); then
		SUB_TLS=(--tls-cert "$SEC/node-$1.pem" --tls-key "$SEC/node-$1.key" --tls-ca "$SEC/ca.pem")
	else
		SUB_TLS=(--insecure)
	fi
}

# With --tokens, once the cluster is ready (which needs the bootstrap admin
# token on every node: wait-ready reads /v1/status with it): create the
# workload's write token and wait until every node accepts it. Then
# RUN_OPTS carries it. Returns 1 (with TOKEN_NOTE) when that fails.
make_client_token() {
	TOKEN_NOTE=""
	((TOKENS)) || return 0
	local k l ans tok i ok
	for ((k = 0; k < 10; k++)); do
		l=$(leader_id)
		if [[ -n $l ]]; then
			# a new name per attempt: one whose answer was lost may exist
			ans=$(hub http POST "${HTTP[l]}" /v1/tokens "{\"name\":\"jepsen-client-$k\",\"role\":\"write\"}" --timeout-ms 5000 2>&1)
			tok=$(sed -n 's/.*"token":"\(rpt_[A-Za-z0-9_-]*\)".*/\1/p' <<<"$ans")
			[[ -n $tok ]] && break
		fi
		nap 1
	done
	[[ -n $tok ]] || { TOKEN_NOTE="could not create the client token: $(head -2 <<<"$ans" | tr '\n' ' ')"; return 1; }
	(umask 077 && echo "$tok" >"$SEC/client.token") || return 1
	RUN_OPTS+=(--token-file "$SEC/client.token")
	for ((k = 0; k < 100; k++)); do
		ok=1
		for ((i = 1; i <= NODES; i++)); do
			ans=$(ip netns exec "$NS_HUB" "$TMP/rpj-client" "${RUN_OPTS[@]}" http GET "${HTTP[i]}" /v1/status --timeout-ms 2000 2>/dev/null | head -1)
			[[ $ans == 200 ]] || { ok=0; break; }
		done
		((ok)) && return 0
		nap 0.1
	done
	TOKEN_NOTE="n$i does not accept the client token within 10 s (last answer $ans)"
	return 1
}

# The `tls` check (--tls), with every node up after healing: each node's
# API port refuses plain HTTP (no answer in plain text), and its raft port
# speaks TLS with a certificate that verifies against the run's CA and names
# the node's IP (our client, which has no certificate, completes the
# handshake and is then refused: exit 4; a plain raft port fails the
# handshake: exit 3). Each node's /metrics goes to $OUT/tls/metrics-nI.txt;
# the TLS failures counted there (timeouts of paused nodes, our probe) are
# reported, not judged.
check_tls() {
	((TLS)) || return 0
	local i rc ans bad="" fails=0 f
	for ((i = 1; i <= NODES; i++)); do
		[[ ${ST[i]} == up ]] || continue
		ans=$(ip netns exec "$NS_HUB" "$TMP/rpj-client" http GET "${HTTP[i]}" /readyz --timeout-ms 3000 2>&1)
		rc=$?
		((rc == 0)) && bad+="n$i API answered plain HTTP ($(head -1 <<<"$ans")); "
		ans=$(ip netns exec "$NS_HUB" "$TMP/rpj-client" --ca "$SEC/ca.pem" http GET "${RAFT[i]}" / --timeout-ms 3000 2>&1)
		rc=$?
		((rc == 4)) || bad+="n$i raft port: no TLS handshake with its certificate (exit $rc: $(tail -1 <<<"$ans" | cut -c1-100)); "
		hub http GET "${HTTP[i]}" /metrics --timeout-ms 5000 >"$OUT/tls/metrics-n$i.txt" 2>&1
		f=$(awk '/^raftplane_(raft_tls_failures|tls_handshake_failures)_total/ {s += $NF} END {print s + 0}' "$OUT/tls/metrics-n$i.txt")
		fails=$((fails + f))
	done
	if [[ -z $bad ]]; then
		verdict tls PASS "API ports refuse plain HTTP; raft ports speak TLS with the nodes' certificates ($fails TLS failures counted in /metrics, see tls/metrics-n*.txt)"
	else
		verdict tls FAIL "$bad"
	fi
}
