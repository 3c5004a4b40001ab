# jepsen/lib/nemesis.sh: faults, the nemesis schedule, and healing.
#
# --nemesis is a comma list of KIND or KIND:VARIANT:
#   partition  halves | one | leader | ring | bridge
#   kill       one | leader | minority | all          (SIGKILL, restart)
#   pause      one | leader | minority | all          (SIGSTOP, SIGCONT)
#   member     transfer | remove                       (leadership transfer;
#              remove a member, wipe it, re-add it with --join)
#   link       delay | loss | oneway | leader | bandwidth | flaky
#              (slow and lossy links through rp-relay, lib/link.sh)
#   disk       one | leader | minority | majority      (fill the data dir's
#              tmpfs, delete the filler after the hold, lib/disk.sh)
# A bare KIND draws a random variant each time. Every cycle waits
# --interval seconds, starts one fault (or, with probability 1/3 when
# several kinds are enabled, two of different kinds at once), holds it for
# --interval seconds and undoes it. Events go to $OUT/nemesis.log and, as
# "process":"nemesis" entries, into the history.

declare -A FAULTS=()   # "kind:variant" -> times injected
declare -A BUSY=()     # node -> 1 while a fault of this cycle holds it
declare -A GRUDGE=()
UNDO=()

VARIANTS_partition="halves one leader ring bridge"
VARIANTS_kill="one leader minority all"
VARIANTS_pause="one leader minority all"
VARIANTS_member="transfer remove"

nemesis_parse() {
	NEM_ENTRIES=()
	[[ $NEMESIS == none || -z $NEMESIS ]] && return 0
	local e kind var vs
	IFS=',' read -r -a list <<<"$NEMESIS"
	for e in "${list[@]}"; do
		kind=${e%%:*}
		var=""
		[[ $e == *:* ]] && var=${e#*:}
		vs="VARIANTS_$kind"
		[[ -n ${!vs:-} ]] || die "unknown nemesis kind '$kind' (partition, kill, pause, member, link, disk, none)"
		if [[ -n $var && " ${!vs} " != *" $var "* ]]; then
			die "unknown variant '$var' of nemesis $kind (${!vs})"
		fi
		NEM_ENTRIES+=("$e")
	done
}

nem_event() {
	local f=$1 v=$2
	printf '{"time":%s,"process":"nemesis","type":"info","f":"%s","value":"%s"}\n' \
		"$(now_ns)" "$f" "${v//\"/\'}" >>"$OUT/raw/nemesis.jsonl"
	echo "$(date '+%F %T') $f $v" >>"$OUT/nemesis.log"
	say "nemesis: $f $v"
}

count_fault() {
	FAULTS[$1]=$((${FAULTS[$1]:-0} + 1))
}

# Nodes a new fault may take: running, members, not joining, not busy.
eligible() {
	local i out=()
	for ((i = 1; i <= NODES; i++)); do
		[[ ${ST[i]} == up && ${MEMBER[i]} == yes && ${JOINING[i]:-0} == 0 && -z ${BUSY[$i]:-} ]] &&
			out+=("$i")
	done
	echo "${out[@]}"
}

# Clear JOINING for nodes that made it into the configuration.
update_joining() {
	local i l=""
	for ((i = 1; i <= NODES; i++)); do
		[[ ${JOINING[i]:-0} == 1 ]] || continue
		[[ -n $l ]] || l=$(leader_id)
		[[ -n $l ]] || return 0
		is_voter "$i" "$l" && JOINING[i]=0
	done
	return 0
}

# ---- partition --------------------------------------------------------------

fault_partition() {
	local v=$1 x
	GRUDGE=()
	case $v in
	halves) part_halves ;;
	one)
		pick $(seq 1 "$NODES")
		part_isolate "$PICKED"
		;;
	leader)
		x=$(leader_id)
		if [[ -z $x ]]; then
			pick $(seq 1 "$NODES")
			x=$PICKED
			part_isolate "$x"
			PART_DESC="leader (none found, random) $PART_DESC"
		else
			part_isolate "$x"
			PART_DESC="leader $PART_DESC"
		fi
		;;
	ring) part_ring ;;
	bridge) part_bridge ;;
	esac
	net_apply_grudges
	count_fault "partition:$v"
	nem_event start-partition "$PART_DESC"
	UNDO+=("undo_partition")
}

undo_partition() {
	net_heal
	nem_event stop-partition "network healed"
}

# ---- kill and pause ------------------------------------------------------------

# targets VARIANT: TARGETS = node indices for a kill or pause
targets() {
	local v=$1 el l k
	TARGETS=()
	read -r -a el <<<"$(eligible)"
	((${#el[@]})) || return 0
	case $v in
	one)
		pick "${el[@]}"
		TARGETS=("$PICKED")
		;;
	leader)
		l=$(leader_id)
		if [[ -n $l && " ${el[*]} " == *" $l "* ]]; then
			TARGETS=("$l")
		else
			pick "${el[@]}"
			TARGETS=("$PICKED")
		fi
		;;
	minority)
		k=$((1 + RANDOM % ((NODES - 1) / 2 > 0 ? (NODES - 1) / 2 : 1)))
		shuffle "${el[@]}"
		TARGETS=("${SHUFFLED[@]:0:k}")
		;;
	all) TARGETS=("${el[@]}") ;;
	esac
}

fault_kill() {
	local v=$1 t i
	targets "$v"
	t=("${TARGETS[@]}")
	((${#t[@]})) || {
		nem_event info-kill "skipped: no eligible node"
		return 0
	}
	for i in "${t[@]}"; do
		kill_node "$i"
		BUSY[$i]=1
	done
	count_fault "kill:$v"
	nem_event start-kill "$v: SIGKILL $(printf 'n%s ' "${t[@]}")"
	UNDO+=("undo_kill ${t[*]}")
}

undo_kill() {
	local i s=""
	for i in "$@"; do
		if [[ ${MEMBER[i]} == yes && ${ST[i]} == down ]]; then
			start_node "$i"
			s+="n$i "
		fi
	done
	nem_event stop-kill "restarted $s"
}

fault_pause() {
	local v=$1 t i
	targets "$v"
	t=("${TARGETS[@]}")
	((${#t[@]})) || {
		nem_event info-pause "skipped: no eligible node"
		return 0
	}
	for i in "${t[@]}"; do
		pause_node "$i"
		BUSY[$i]=1
	done
	count_fault "pause:$v"
	nem_event start-pause "$v: SIGSTOP $(printf 'n%s ' "${t[@]}")"
	UNDO+=("undo_pause ${t[*]}")
}

undo_pause() {
	local i
	for i in "$@"; do resume_node "$i"; done
	nem_event stop-pause "SIGCONT $(printf 'n%s ' "$@")"
}

# ---- membership ------------------------------------------------------------------

# transfer L T: ask leader L to hand leadership to T. Prints the answer.
transfer() {
	hub http POST "${HTTP[$1]}" "/v1/members/$2/leadership" --timeout-ms 15000 2>/dev/null |
		tr '\n' ' ' | cut -c1-200
}

fault_member() {
	local v=$1 l t el r x
	l=$(leader_id)
	if [[ -z $l ]]; then
		nem_event info-member "$v skipped: no leader"
		return 0
	fi
	read -r -a el <<<"$(eligible)"
	if [[ $v == transfer ]]; then
		local cands=()
		for x in "${el[@]}"; do ((x != l)) && cands+=("$x"); done
		pick "${cands[@]}"
		t=$PICKED
		[[ -n $t ]] || {
			nem_event info-member "transfer skipped: no eligible target"
			return 0
		}
		count_fault "member:transfer"
		nem_event start-member "transfer leadership n$l -> n$t"
		r=$(transfer "$l" "$t")
		nem_event stop-member "transfer n$l -> n$t answered: $r"
		return 0
	fi
	# remove, later re-add; not a node whose disk is held full (its wipe
	# would free it; lib/disk.sh)
	local keep=()
	for x in "${el[@]}"; do [[ -z ${DISK_BUSY[$x]:-} ]] && keep+=("$x"); done
	el=("${keep[@]}")
	pick "${el[@]}"
	x=$PICKED
	[[ -n $x ]] || {
		nem_event info-member "remove skipped: no eligible node"
		return 0
	}
	if ((x == l)); then
		local cands=()
		for t in "${el[@]}"; do ((t != l)) && cands+=("$t"); done
		pick "${cands[@]}"
		t=$PICKED
		[[ -n $t ]] || {
			nem_event info-member "remove skipped: leader n$l and no target to transfer to"
			return 0
		}
		r=$(transfer "$l" "$t")
		nem_event info-member "remove the leader n$l: transfer to n$t first: $r"
		local k
		for ((k = 0; k < 20; k++)); do
			l=$(leader_id)
			[[ -n $l && $l != "$x" ]] && break
			nap 0.5
		done
		if [[ -z $l || $l == "$x" ]]; then
			nem_event info-member "remove n$x skipped: leadership did not move"
			return 0
		fi
	fi
	BUSY[$x]=1
	count_fault "member:remove"
	nem_event start-member "remove n$x (leader n$l)"
	local done_=0 ans="" how="" t_end
	t_end=$(($(now_s) + 12))
	while (($(now_s) < t_end)); do
		l=$(leader_id)
		if [[ -n $l ]]; then
			local inc=0
			in_config "$x" "$l" || inc=$?
			if ((inc == 1)) && config_committed "$l"; then
				done_=1
				how="not in the committed configuration of leader n$l${ans:+ (last answer: $ans)}"
				break
			fi
			if ((inc == 2)); then
				nap 1
				continue
			fi
			ans=$(hub http DELETE "${HTTP[$l]}" "/v1/members/$x" --timeout-ms 5000 2>/dev/null |
				tr '\n' ' ' | cut -c1-160)
			if [[ $ans == 200* ]]; then
				done_=1
				how="answer $ans"
				break
			fi
		fi
		nap 1
	done
	if ((!done_)); then
		BUSY[$x]=""
		nem_event info-member "remove n$x did not complete (last answer: ${ans:-no leader}); left as is"
		return 0
	fi
	# the removed node keeps running: stop it, wipe it
	stop_node "$x" 15
	wipe_data "$x"
	MEMBER[x]=no
	nem_event info-member "n$x removed ($how), stopped and wiped"
	UNDO+=("undo_remove $x")
}

undo_remove() {
	local x=$1 l k via
	for ((k = 0; k < 20; k++)); do
		l=$(leader_id)
		[[ -n $l ]] && break
		nap 0.5
	done
	if [[ -n $l ]]; then
		via=${HTTP[l]}
	else
		# no leader now: join through any other member (it forwards, and
		# --join retries on 503)
		for ((k = 1; k <= NODES; k++)); do
			[[ $k != "$x" && ${MEMBER[k]} == yes ]] && { via=${HTTP[k]}; break; }
		done
	fi
	JOIN[x]=$via
	MEMBER[x]=yes
	JOINING[x]=1
	start_node "$x"
	local ok=0
	for ((k = 0; k < 30; k++)); do
		nap 0.5
		if is_voter "$x"; then
			ok=1
			break
		fi
		[[ ${ST[x]} == up ]] && ! kill -0 "${PID[x]}" 2>/dev/null && break
	done
	if ((ok)); then
		JOINING[x]=0
		nem_event stop-member "re-added n$x (--join $via): voter"
	else
		nem_event stop-member "re-adding n$x (--join $via): not a voter yet"
	fi
}

# ---- schedule --------------------------------------------------------------------

run_undo() {
	local k
	for ((k = ${#UNDO[@]} - 1; k >= 0; k--)); do
		eval "${UNDO[k]}"
	done
	UNDO=()
	BUSY=()
}

start_fault() {
	local e=$1 kind var vs
	kind=${e%%:*}
	var=""
	[[ $e == *:* ]] && var=${e#*:}
	if [[ -z $var ]]; then
		vs="VARIANTS_$kind"
		pick ${!vs}
		var=$PICKED
	fi
	"fault_$kind" "$var"
}

# Between faults every member should run: restart nodes that died on
# their own (already reported by check_exits) so the run goes on.
restart_crashed() {
	local i
	for ((i = 1; i <= NODES; i++)); do
		if [[ ${MEMBER[i]} == yes && ${ST[i]} == down ]]; then
			nem_event info-restart "restarting n$i, which exited on its own"
			start_node "$i"
		fi
	done
}

# nemesis_loop END_S CLIENT_PID
nemesis_loop() {
	local end=$1 client=$2 e1 e2 k1
	NEM_END=$end
	while :; do
		nem_sleep "$INTERVAL"
		check_exits
		(($(now_s) + 1 < end)) && kill -0 "$client" 2>/dev/null || break
		restart_crashed
		((${#NEM_ENTRIES[@]})) || continue
		update_joining
		pick "${NEM_ENTRIES[@]}"
		e1=$PICKED
		start_fault "$e1"
		if ((${#NEM_ENTRIES[@]} > 1 && RANDOM % 3 == 0)); then
			k1=${e1%%:*}
			local others=()
			for e2 in "${NEM_ENTRIES[@]}"; do [[ ${e2%%:*} != "$k1" ]] && others+=("$e2"); done
			if ((${#others[@]})); then
				pick "${others[@]}"
				e2=$PICKED
				start_fault "$e2"
			fi
		fi
		nem_sleep "$INTERVAL"
		check_exits
		run_undo
	done
	run_undo
}

# Undo everything, restart what is down, put every node back into the
# configuration as a voter, and wait for a ready leader known to all.
# Sets HEAL_OK (1/0) and HEAL_NOTE.
heal_all() {
	HEAL_OK=0
	HEAL_NOTE=""
	run_undo
	net_heal
	local i
	for ((i = 1; i <= NODES; i++)); do resume_node "$i"; done
	check_exits
	for ((i = 1; i <= NODES; i++)); do
		[[ ${MEMBER[i]} == yes && ${ST[i]} == down ]] && start_node "$i"
	done
	nem_event heal "network healed, all nodes resumed and running"
	# membership repair
	local t0 l all_voters=0
	t0=$(now_s)
	declare -A rejoin_at=()
	while (($(now_s) - t0 < 90)); do
		check_exits
		for ((i = 1; i <= NODES; i++)); do
			[[ ${MEMBER[i]} == yes && ${ST[i]} == down ]] && start_node "$i"
		done
		l=$(leader_id)
		if [[ -z $l ]]; then
			nap 1
			continue
		fi
		if ! member_list "$l"; then
			nap 1
			continue
		fi
		local mem=$MEMBERS
		all_voters=1
		for ((i = 1; i <= NODES; i++)); do
			grep -qx "$i voter" <<<"$mem" && {
				JOINING[i]=0
				continue
			}
			all_voters=0
			if [[ ${JOINING[i]:-0} == 1 && ${ST[i]} == up ]]; then
				# a join in progress gets 30 s after healing before it is redone
				[[ -n ${rejoin_at[$i]:-} ]] || rejoin_at[$i]=$(now_s)
				(($(now_s) - rejoin_at[$i] < 30)) && continue
			fi
			# not a voter and not joining (or the join is stuck): re-add it
			if grep -q "^$i " <<<"$mem"; then
				local ans
				ans=$(hub http DELETE "${HTTP[$l]}" "/v1/members/$i" --timeout-ms 10000 2>/dev/null | head -1)
				[[ $ans == 200 ]] || continue # retried in the next round
			elif ! config_committed "$l"; then
				continue
			fi
			kill_node "$i"
			wipe_data "$i"
			JOIN[i]=${HTTP[l]}
			MEMBER[i]=yes
			JOINING[i]=1
			rejoin_at[$i]=$(now_s)
			nem_event heal "n$i is not a voter: wiped and re-added with --join ${HTTP[l]}"
			start_node "$i"
		done
		((all_voters)) && break
		nap 1
	done
	if ((!all_voters)); then
		HEAL_NOTE="not every node is a voter after 90 s"
	fi
	local out
	if out=$(hub wait-ready "$(all_http)" 60 2>&1); then
		((all_voters)) && HEAL_OK=1
		nem_event heal "cluster ready, leader n$out"
	else
		HEAL_NOTE="${HEAL_NOTE:+$HEAL_NOTE; }no ready leader known to all nodes within 60 s ($out)"
		diagnose_nodes
	fi
}

# Explain nodes that do not answer (for the report).
diagnose_nodes() {
	local i ans
	for ((i = 1; i <= NODES; i++)); do
		[[ ${ST[i]} == down ]] && {
			HEAL_NOTE+="; n$i is down"
			continue
		}
		ans=$(hub http GET "${HTTP[i]}" /v1/status --timeout-ms 2000 2>/dev/null | tr '\n' ' ')
		if [[ $ans != 200* ]]; then
			HEAL_NOTE+="; n$i (pid ${PID[i]}) does not answer /v1/status (${ans:0:60}), CPU used $(cpu_of "${PID[i]}") s"
		else
			HEAL_NOTE+="; n$i: ${ans:4:220}"
		fi
	done
	say "heal problem: $HEAL_NOTE"
}
