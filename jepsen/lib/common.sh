# jepsen/lib/common.sh: logging, sleeping, randomness, process tracking and
# cleanup for jepsen/run. Sourced; all state is in globals set by jepsen/run.
#
# Every process the suite starts is launched through a symlink under $TMP
# (rpj-node, rpj-client, rpj-sub) and its pid is appended to $TMP/pids.
# Cleanup kills exactly those pids, and only while /proc/PID/cmdline still
# names a program under $TMP (so a recycled pid is never hit).

say() {
	local m
	m="[$(date +%H:%M:%S)] $*"
	echo "$m"
	if [[ -n ${OUT:-} && -d ${OUT:-} ]]; then echo "$m" >>"$OUT/run.log"; fi
}

# Setup problems: the run could not even start (exit 2).
die() {
	say "ERROR: $*"
	exit 2
}

# Sleep that lets the INT/TERM traps run at once.
nap() {
	sleep "$1" &
	local p=$!
	wait "$p" 2>/dev/null
	return 0
}

now_ns() {
	local t=$EPOCHREALTIME
	echo "${t/./}000"
}

now_s() {
	local t=$EPOCHREALTIME
	echo "${t%.*}"
}

# Random choices set globals instead of printing, because a $(...) subshell
# reseeds $RANDOM and the draws would not follow --seed.
# pick WORD...: PICKED = one of the words at random ("" when none)
pick() {
	PICKED=""
	(($# == 0)) && return 0
	local a=("$@")
	PICKED=${a[RANDOM % $#]}
}

# shuffle WORD...: SHUFFLED = the words in random order (an array)
shuffle() {
	local i j t
	SHUFFLED=("$@")
	for ((i = ${#SHUFFLED[@]} - 1; i > 0; i--)); do
		j=$((RANDOM % (i + 1)))
		t=${SHUFFLED[i]}
		SHUFFLED[i]=${SHUFFLED[j]}
		SHUFFLED[j]=$t
	done
}

track_pid() {
	echo "$1" >>"$TMP/pids"
}

# Is PID one of ours (a program started from under $TMP) and alive?
ours_alive() {
	local pid=$1 cmd
	[[ -r /proc/$pid/cmdline ]] || return 1
	cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
	[[ $cmd == "$TMP/"* ]]
}

# Kill every tracked process (by pid), waiting up to 10 s for them to go.
kill_tracked() {
	[[ -n ${TMP:-} && -f $TMP/pids ]] || return 0
	local pid left=()
	while read -r pid; do
		[[ $pid =~ ^[0-9]+$ ]] || continue
		if ours_alive "$pid"; then
			kill -CONT "$pid" 2>/dev/null
			kill -KILL "$pid" 2>/dev/null
			left+=("$pid")
		fi
	done <"$TMP/pids"
	local t
	for ((t = 0; t < 100; t++)); do
		local any=0
		for pid in "${left[@]}"; do
			[[ -e /proc/$pid ]] && ours_alive "$pid" && any=1
		done
		((any)) || break
		sleep 0.1
	done
	# reap our children quietly (no "Killed" job messages)
	for pid in "${left[@]}"; do wait "$pid" 2>/dev/null; done
	return 0
}

# Delete this run's namespaces (the veths and the bridge go with them).
delete_netns() {
	[[ -n ${RUN_ID:-} ]] || return 0
	local ns
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
		[[ $ns == "$RUN_ID"-* ]] && ip netns del "$ns" 2>/dev/null
	done
	return 0
}

# Used by the trap in jepsen/run and by the guardian.
teardown() {
	{ kill_tracked; } 2>/dev/null
	disk_unmount_all # before rm -rf: the data dirs may be tmpfs mounts
	delete_netns
	if [[ -n ${TMP:-} && -d $TMP && $TMP == /tmp/rpj-* ]]; then
		rm -rf "$TMP"
	fi
}

# A guardian process: if jepsen/run dies without cleaning up (SIGKILL), it
# tears everything down. It ignores INT/TERM so Ctrl-C reaches only the
# main script, whose trap does the cleanup itself.
start_guardian() {
	local main=$$
	(
		trap '' INT TERM HUP
		exec </dev/null >/dev/null 2>&1
		while kill -0 "$main" 2>/dev/null; do sleep 1; done
		[[ -e $TMP/.cleaned ]] || teardown
	) &
	GUARDIAN=$!
}
