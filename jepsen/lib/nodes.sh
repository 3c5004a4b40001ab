# jepsen/lib/nodes.sh: the raftplane-server processes.
#
# Per node I (1..NODES):
#   PID[I]     pid of the running process (started by this shell)
#   ST[I]      up | paused | down
#   MEMBER[I]  yes | no   (no: removed from the raft configuration)
#   JOIN[I]    "" while the node uses its --bootstrap command line; the
#              HTTP address it joins through once it was removed and re-added
#              (then its command line is --join ADDR, with which a restart
#              resumes)
#   JOINING[I] 1 while a --join is not yet confirmed in the configuration
# Node logs: $OUT/nodes/nI.log (every start appends a "=== rpj" line).

# The client tool in the hub, over HTTPS and with the admin token when the
# run has them (HUB_OPTS, lib/security.sh).
hub() {
	ip netns exec "$NS_HUB" "$TMP/rpj-client" "${HUB_OPTS[@]}" "$@"
}

all_http() {
	local i s=""
	for ((i = 1; i <= NODES; i++)); do s+="${HTTP[i]},"; done
	echo "${s%,}"
}

start_node() {
	local i=$1
	local args=(--id "$i" --data-dir "$TMP/n$i" --raft "${RAFT[i]}" --http "${HTTP[i]}")
	if [[ -n ${JOIN[i]} ]]; then
		args+=(--join "${JOIN[i]}")
		echo "n$i $(now_ns)" >>"$OUT/raw/joins.txt" # for check_unauth
	else
		args+=(--bootstrap "$BOOTSTRAP")
	fi
	node_tls_args "$i"
	args+=("${NODE_TLS[@]}" "${SERVER_ARGS_ALL[@]}")
	echo "=== rpj $(date '+%F %T'): start n$i: ${args[*]}" >>"$OUT/nodes/n$i.log"
	# exitcode=23: a sanitizer report at exit is told apart from the
	# server's own exit 1 (ASan's default exitcode is 1), so that the log
	# check can accept the known libraft leak's status (checks.sh)
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=23} \
		UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
		ip netns exec "${NS[i]}" "$TMP/rpj-node" "${args[@]}" </dev/null >>"$OUT/nodes/n$i.log" 2>&1 &
	PID[i]=$!
	track_pid "${PID[i]}"
	ST[i]=up
	STARTS[i]=$((${STARTS[i]:-0} + 1))
}

# Reap a node process that is gone; returns its exit status.
reap() {
	local rc=0
	wait "$1" 2>/dev/null || rc=$?
	return "$rc"
}

kill_node() {
	local i=$1
	[[ ${ST[i]} == down ]] && return 0
	disk_note_kill "$i"
	kill -KILL "${PID[i]}" 2>/dev/null
	reap "${PID[i]}"
	ST[i]=down
	echo "=== rpj $(date '+%F %T'): n$i killed (SIGKILL)" >>"$OUT/nodes/n$i.log"
}

pause_node() {
	local i=$1
	kill -STOP "${PID[i]}" 2>/dev/null && ST[i]=paused
}

resume_node() {
	local i=$1
	[[ ${ST[i]} == paused ]] || return 0
	kill -CONT "${PID[i]}" 2>/dev/null
	ST[i]=up
}

# SIGTERM and wait up to $2 s (default 20). A node that does not exit
# cleanly in time is SIGKILLed and reported in $OUT/shutdown-problems.txt.
stop_node() {
	local i=$1 limit=${2:-20} t rc
	[[ ${ST[i]} == down ]] && return 0
	kill -CONT "${PID[i]}" 2>/dev/null
	kill -TERM "${PID[i]}" 2>/dev/null
	for ((t = 0; t < limit * 10; t++)); do
		kill -0 "${PID[i]}" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "${PID[i]}" 2>/dev/null; then
		echo "n$i: did not exit within ${limit}s of SIGTERM (SIGKILLed)" >>"$OUT/shutdown-problems.txt"
		kill -KILL "${PID[i]}" 2>/dev/null
	fi
	rc=0
	reap "${PID[i]}" || rc=$?
	if ((rc != 0 && rc != 137)); then
		echo "n$i: exited with $(status_text "$rc") after SIGTERM" >>"$OUT/shutdown-problems.txt"
	fi
	ST[i]=down
	echo "=== rpj $(date '+%F %T'): n$i stopped (SIGTERM), status $rc" >>"$OUT/nodes/n$i.log"
}

# "status 1" or "status 139 (SIGSEGV)"
status_text() {
	if (($1 > 128)); then
		echo "status $1 (SIG$(kill -l $(($1 - 128)) 2>/dev/null || echo ?))"
	else
		echo "status $1"
	fi
}

# Nodes that died on their own: record them (logs check) and mark down.
check_exits() {
	local i rc st
	for ((i = 1; i <= NODES; i++)); do
		[[ ${ST[i]} == down ]] && continue
		if ! kill -0 "${PID[i]}" 2>/dev/null; then
			rc=0
			reap "${PID[i]}" || rc=$?
			ST[i]=down
			st=$(status_text "$rc")
			echo "n$i (pid ${PID[i]}) exited on its own with $st at $(date +%T)" \
				>>"$OUT/unexpected-exits.txt"
			say "!!! n$i exited on its own with $st"
			echo "=== rpj $(date '+%F %T'): n$i exited on its own, $st" >>"$OUT/nodes/n$i.log"
		fi
	done
	link_check_exits
}

# The ready leader's node index ("" when none).
leader_id() {
	local l
	l=$(hub leader "$(all_http)" 2>/dev/null) || return 0
	echo "${l%% *}"
}

# member_list L: MEMBERS = "id role" lines of the configuration as node L
# (the leader) sees it. Fails (status 1) when the list cannot be read or
# does not even contain L: never act on a list that is not known to be good.
member_list() {
	local l=$1 out
	MEMBERS=""
	out=$(hub members "${HTTP[$l]}" 2>/dev/null) || return 1
	out=$(awk '{print $1, $2}' <<<"$out")
	grep -q "^$l " <<<"$out" || return 1
	MEMBERS=$out
}

# is_voter I [L]: I is a voter in the configuration seen by leader L.
is_voter() {
	local i=$1 at=${2:-$(leader_id)}
	[[ -n $at ]] || return 1
	member_list "$at" || return 1
	grep -qx "$i voter" <<<"$MEMBERS"
}

# in_config I L: 0 in the configuration, 1 not in it, 2 unknown.
in_config() {
	local i=$1 at=$2
	member_list "$at" || return 2
	grep -q "^$i " <<<"$MEMBERS"
}

# config_committed L: the configuration leader L reports now is committed.
# Call it after reading the configuration: the configuration entry is then
# at or below L's last index, so once L commits up to that index in the
# same term, the configuration is durable. Before a node is wiped, its
# removal must be durable: wiping a voter's state could break Raft itself.
config_committed() {
	local l=$1 id state term commit last applied ready lid t0 last0 k
	read -r id state term commit last applied ready lid <<<"$(hub status "${HTTP[$l]}" 2>/dev/null)"
	[[ $state == leader && $ready == 1 ]] || return 1
	t0=$term
	last0=$last
	for ((k = 0; k < 50; k++)); do
		((commit >= last0)) && return 0
		nap 0.1
		read -r id state term commit last applied ready lid <<<"$(hub status "${HTTP[$l]}" 2>/dev/null)"
		[[ $state == leader && $term == "$t0" ]] || return 1
	done
	return 1
}

# CPU seconds used by a pid (for diagnosing a node that does not answer).
cpu_of() {
	local f
	f=$(awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null) || return 0
	echo "$((f / $(getconf CLK_TCK)))"
}
