# jepsen/lib/disk.sh: the "disk" nemesis: data dirs that fill up.
#
# With "disk" in --nemesis (and only then), every node's data dir
# $TMP/nI is its own tmpfs of DISK_MB MiB (source name "$RUN_ID-nI"),
# mounted before the first start. A fault fills the victims' tmpfs with a
# file raft ignores ($TMP/nI/zz-filler) that takes all the free space, and
# keeps it that way while held: every 0.25 s the filler grows by whatever
# more than 64 KiB the node freed, as if another program kept writing.
# Not "1 MiB left": raft_uv finalizes its open segment at every snapshot
# (every ~128 entries here), which frees most of 8 MiB, and with 1 MiB left
# the next segment would fit again; with nothing left, the freed space is
# less than a segment, and within about three segment rolls (a few seconds
# of writes) the node cannot create its next segment, holds its raft log
# writes and reports raftplane_disk_state 1 (docs/operations.md, "Disk
# full"). Small frees (a rewritten metadata page) are left to the node.
# Undoing it deletes the filler; the node must recover in the same process.
#
# Invariants
#
# 1. A tmpfs is mounted only when the disk nemesis is selected, and every
#    mount under $TMP is unmounted at teardown (disk_unmount_all, also run
#    by the guardian): the mount table, not our state, says what to undo.
# 2. A disk fault starts (start-disk, and the cycle's hold) only once every
#    victim reported a full disk on /metrics, at most DISK_WAIT_S after the
#    fill. One that never took effect fails the check, unless the workload
#    ended meanwhile or a victim that did not report applied fewer than
#    DISK_ROLL_ENTRIES entries in the wait (a partition or kill of the
#    cycle left too few writes to need a new segment: "starved", noted). A
#    run in which no disk fault took effect fails.
# 3. Victims of a held disk fault are not removed from the membership (the
#    wipe would free their disk) but may be killed, paused or partitioned
#    by the cycle's other fault. Killing one ends the fault's "majority
#    full" window (a restarted node frees its prepared segments).
# 4. Within a majority fault's window (every victim seen full, until the
#    filler is deleted, a victim is killed or one is seen persisting
#    again), a write invoked and acknowledged is one acknowledged without a
#    majority that stored it.
# 5. A victim must persist again (raftplane_disk_state 0, nothing held):
#    in the process that was filled, or after a kill by the other fault.

# Sizing: raft_uv keeps an open segment and two prepared ones (3 x 8 MiB),
# one more while a finalized one is closing, and two snapshots; the suite's
# --snapshot-threshold 128 keeps the log and the snapshots small (the state
# of a 60 s run is well under 1 MiB). 64 MiB cannot fill in normal
# operation and costs RAM only for what is written.

DISK_ON=0
DISK_MB=64
DISK_LEFT=0            # bytes left after a fill (see the header)
DISK_WAIT_S=20         # longest wait for the victims to report a full disk
DISK_ROLL_ENTRIES=512  # entries a filled node applies before it must be full
VARIANTS_disk="one leader minority majority"

# Per disk fault F (0, 1, ...): variant, victims, fill/all-full/free times
# (ns), victims seen full, each victim's STARTS at the fill, recovery notes.
declare -a DF_VAR=() DF_NODES=() DF_T0=() DF_TALL=() DF_TEND=() DF_TFREE=() DF_SEEN=() DF_STARTS=() DF_REC=()
declare -A DF_CUT=()    # fault -> 1: the workload ended before it took effect
declare -A DF_STARVED=() # fault -> note: too few writes reached a victim to fill it
declare -A DISK_BUSY=() # node -> 1 while a disk fault holds it (invariant 3)
DISK_HELD=()    # faults whose filler is in place
DISK_PENDING=() # freed faults whose victims have not all recovered

disk_wanted() {
	local e
	for e in "${NEM_ENTRIES[@]}"; do [[ ${e%%:*} == disk ]] && return 0; done
	return 1
}

# One tmpfs per data dir, before the nodes start.
disk_setup() {
	disk_wanted || return 0
	local tool
	for tool in mount umount mountpoint fallocate stat; do
		command -v "$tool" >/dev/null || die "the disk nemesis needs '$tool'"
	done
	DISK_ON=1
	local i
	for ((i = 1; i <= NODES; i++)); do
		mkdir -p "$TMP/n$i"
		mount -t tmpfs -o "size=${DISK_MB}m,mode=0700" "$RUN_ID-n$i" "$TMP/n$i" 2>>"$OUT/run.log" ||
			die "cannot mount a tmpfs on $TMP/n$i (the disk nemesis needs it; see run.log)"
	done
	say "disk: every data dir is its own ${DISK_MB} MiB tmpfs"
}

# Unmount everything mounted under $TMP (teardown and guardian; invariant 1).
disk_unmount_all() {
	[[ -n ${TMP:-} && $TMP == /tmp/rpj-* ]] || return 0
	local m
	for m in $(awk -v p="$TMP/" 'substr($5, 1, length(p)) == p {print $5}' /proc/self/mountinfo | sort -r); do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
	return 0
}

# Empty node I's data dir (a removed or re-added member): a mount point
# itself cannot be removed, its content can.
wipe_data() {
	local d=${TMP:?}/n$1
	if ((DISK_ON)) && mountpoint -q "$d"; then
		find "$d" -mindepth 1 -delete
	else
		rm -rf "$d"
	fi
}

disk_avail() { # bytes available on node I's data dir
	local a
	a=$(stat -f -c '%a %S' "$TMP/n$1" 2>/dev/null) || { echo 0; return; }
	echo $((${a% *} * ${a#* }))
}

# Grow node I's filler until less than DISK_LEFT bytes are free.
disk_fill() {
	local i=$1 f=$TMP/n$1/zz-filler avail cur k
	# the node may allocate (a segment, 8 MiB) between the two steps, and a
	# failed fallocate allocates nothing: measure again and retry
	for ((k = 0; k < 4; k++)); do
		avail=$(disk_avail "$i")
		((avail > DISK_LEFT + 65536)) || return 0
		cur=0
		[[ -f $f ]] && cur=$(stat -c %s "$f")
		fallocate -l $((cur + avail - DISK_LEFT)) "$f" 2>/dev/null && return 0
	done
	return 0
}

# disk_applied I: node I's applied index ("" if no answer).
disk_applied() {
	local applied
	read -r _ _ _ _ _ applied _ <<<"$(hub status "${HTTP[$1]}" 2>/dev/null)"
	[[ $applied =~ ^[0-9]+$ ]] && echo "$applied"
}

# disk_metric I NAME: the value of gauge NAME on node I ("" if no answer).
disk_metric() {
	hub http GET "${HTTP[$1]}" /metrics --timeout-ms 1500 2>/dev/null |
		awk -v n="$2" '$1 == n {print $2; exit}'
}

fault_disk() {
	local v=$1 el k f i t
	if [[ $v == majority ]]; then
		read -r -a el <<<"$(eligible)"
		k=$((NODES / 2 + 1))
		if ((${#el[@]} < k)); then
			nem_event info-disk "majority skipped: only ${#el[@]} eligible nodes"
			return 0
		fi
		shuffle "${el[@]}"
		TARGETS=("${SHUFFLED[@]:0:k}")
	else
		targets "$v"
	fi
	((${#TARGETS[@]})) || {
		nem_event info-disk "skipped: no eligible node"
		return 0
	}
	f=${#DF_VAR[@]}
	DF_VAR[f]=$v DF_NODES[f]="${TARGETS[*]}" DF_T0[f]=$(now_ns) DF_TALL[f]="" DF_TEND[f]=""
	DF_TFREE[f]="" DF_SEEN[f]="" DF_STARTS[f]="" DF_REC[f]=""
	for i in "${TARGETS[@]}"; do
		disk_fill "$i"
		DISK_BUSY[$i]=1
		DF_STARTS[f]+="${STARTS[i]} "
	done
	local applied0=()
	for i in "${TARGETS[@]}"; do applied0+=("$(disk_applied "$i")"); done
	DISK_HELD+=("$f")
	count_fault "disk:$v"
	UNDO+=("undo_disk $f")
	nem_event info-disk "$v: filled $(for i in "${TARGETS[@]}"; do printf 'n%s (%d KiB left) ' "$i" $(($(disk_avail "$i") / 1024)); done)"
	t=$(($(now_s) + DISK_WAIT_S))
	while (($(now_s) < t)); do
		disk_poll
		[[ -n ${DF_TALL[f]} ]] && break
		if (($(now_s) >= NEM_END)); then # no more writes to fill it
			DF_CUT[$f]=1
			break
		fi
		nap 0.25
	done
	if [[ -z ${DF_TALL[f]} && -z ${DF_CUT[$f]:-} ]]; then
		local k=0 a most=0 who=""
		for i in "${TARGETS[@]}"; do
			a=$(disk_applied "$i")
			if [[ " ${DF_SEEN[f]} " != *" n$i "* && -n $a && -n ${applied0[k]} ]]; then
				((a - applied0[k] >= most)) && most=$((a - applied0[k])) who=n$i
			fi
			k=$((k + 1))
		done
		((most < DISK_ROLL_ENTRIES)) &&
			DF_STARVED[$f]="$who applied only $most entries in ${DISK_WAIT_S} s"
	fi
	if [[ -n ${DF_TALL[f]} ]]; then
		nem_event start-disk "$v: $(printf 'n%s ' "${TARGETS[@]}")full (all reported raftplane_disk_state 1 within $(((DF_TALL[f] - DF_T0[f]) / 1000000)) ms)"
	elif [[ -n ${DF_CUT[$f]:-} ]]; then
		nem_event start-disk "$v: $(printf 'n%s ' "${TARGETS[@]}")filled, but the workload ended before all reported a full disk (reported: ${DF_SEEN[f]:-none})"
	elif [[ -n ${DF_STARVED[$f]:-} ]]; then
		nem_event start-disk "$v: $(printf 'n%s ' "${TARGETS[@]}")filled, but not all reported a full disk within ${DISK_WAIT_S} s: too few writes (${DF_STARVED[$f]}; reported: ${DF_SEEN[f]:-none})"
	else
		nem_event start-disk "$v: $(printf 'n%s ' "${TARGETS[@]}")filled, but not all reported a full disk within ${DISK_WAIT_S} s (reported: ${DF_SEEN[f]:-none})"
	fi
}

undo_disk() {
	local f=$1 i x rest=()
	for i in ${DF_NODES[f]}; do
		rm -f "$TMP/n$i/zz-filler"
		unset "DISK_BUSY[$i]"
	done
	DF_TFREE[f]=$(now_ns)
	[[ -n ${DF_TEND[f]} ]] || DF_TEND[f]=${DF_TFREE[f]}
	for x in "${DISK_HELD[@]}"; do [[ $x != "$f" ]] && rest+=("$x"); done
	DISK_HELD=("${rest[@]}")
	DISK_PENDING+=("$f")
	nem_event stop-disk "${DF_VAR[f]}: freed $(printf 'n%s ' ${DF_NODES[f]})"
}

# kill_node calls this: a held victim's kill ends its fault's window.
disk_note_kill() {
	((DISK_ON)) || return 0
	local f i
	for f in "${DISK_HELD[@]}"; do
		for i in ${DF_NODES[f]}; do
			[[ $i == "$1" && -z ${DF_TEND[f]} ]] && DF_TEND[f]=$(now_ns)
		done
	done
	return 0
}

# One poll: top up the held fillers, note victims that report full, note
# freed victims that persist again (state 0, nothing held), and whether
# they were restarted since the fill.
disk_poll() {
	local f i j s held rest=() st starts how
	for f in "${DISK_HELD[@]}"; do
		for i in ${DF_NODES[f]}; do
			disk_fill "$i"
			[[ ${ST[i]} == up ]] || continue
			s=$(disk_metric "$i" raftplane_disk_state)
			if [[ " ${DF_SEEN[f]} " == *" n$i "* ]]; then
				# seen full, and persisting again while held: the filler
				# did not keep up; the majority window ends here
				if [[ $s == 0 && -n ${DF_TALL[f]} && -z ${DF_TEND[f]} ]]; then
					DF_TEND[f]=$(now_ns)
					nem_event info-disk "n$i persists again while its disk is held full (it freed space faster than the filler grew)"
				fi
				continue
			fi
			if [[ $s == 1 ]]; then
				DF_SEEN[f]+="n$i "
				nem_event info-disk "n$i reports a full disk (raftplane_disk_state 1) $((($(now_ns) - DF_T0[f]) / 1000000)) ms after the fill"
			elif [[ $s == 2 ]]; then
				DF_SEEN[f]+="n$i "
				nem_event info-disk "n$i reports a FAILED disk (raftplane_disk_state 2)"
			fi
		done
		if [[ -z ${DF_TALL[f]} ]] && disk_all_seen "$f"; then DF_TALL[f]=$(now_ns); fi
	done
	for f in "${DISK_PENDING[@]}"; do
		j=0
		read -r -a starts <<<"${DF_STARTS[f]}"
		for i in ${DF_NODES[f]}; do
			st=${starts[j]}
			j=$((j + 1))
			[[ " ${DF_REC[f]} " == *" n$i:"* || ${ST[i]} != up ]] && continue
			s=$(disk_metric "$i" raftplane_disk_state)
			held=$(disk_metric "$i" raftplane_disk_held_writes)
			if [[ $s == 0 && $held == 0 ]]; then
				how=""
				((STARTS[i] != st)) && how="restarted,"
				DF_REC[f]+="n$i:$how$((($(now_ns) - DF_TFREE[f]) / 1000000))ms "
				nem_event info-disk "n$i persists again (raftplane_disk_state 0, nothing held) $((($(now_ns) - DF_TFREE[f]) / 1000000)) ms after the free${how:+ (it was restarted by another fault)}"
			fi
		done
		[[ $(wc -w <<<"${DF_REC[f]}") == $(wc -w <<<"${DF_NODES[f]}") ]] || rest+=("$f")
	done
	DISK_PENDING=("${rest[@]}")
}

disk_all_seen() {
	local i
	for i in ${DF_NODES[$1]}; do [[ " ${DF_SEEN[$1]} " == *" n$i "* ]] || return 1; done
	return 0
}

# nem_sleep S: sleep S seconds; while disk faults are held or freed
# victims have not persisted again yet, poll them every 0.25 s.
nem_sleep() {
	local s=$1 end
	if ((!DISK_ON)) || ((${#DISK_HELD[@]} == 0 && ${#DISK_PENDING[@]} == 0)); then
		nap "$s"
		return 0
	fi
	end=$((${EPOCHREALTIME/./} + s * 1000000))
	while ((${EPOCHREALTIME/./} < end)); do
		disk_poll
		nap 0.25
	done
}

# After healing, with every node up: the freed victims get 30 s more to
# persist again.
disk_wait_recovered() {
	((DISK_ON)) || return 0
	local t=$(($(now_s) + 30))
	while ((${#DISK_PENDING[@]})) && (($(now_s) < t)); do
		disk_poll
		nap 0.25
	done
}

# The disk check, on the merged history: every fault took effect (each
# victim reported a full disk while held), every victim persisted again in
# the same process, no "disk failed" line, and no add acknowledged while a
# majority was full (invariant 3).
check_disk() {
	((DISK_ON)) || return 0
	local n=${#DF_VAR[@]} f i bad=() eff=0 maxrec=0 r x y acked=0 tried=0 maj=0 failed inplace=0 restarted=0 cut=0 starved=()
	for ((f = 0; f < n; f++)); do
		if disk_all_seen "$f"; then
			eff=$((eff + 1))
		elif [[ -n ${DF_CUT[$f]:-} ]]; then
			cut=$((cut + 1))
		elif [[ -n ${DF_STARVED[$f]:-} ]]; then
			starved+=("${DF_VAR[f]} on $(printf 'n%s ' ${DF_NODES[f]}| sed 's/ $//'): ${DF_STARVED[$f]}")
		else
			bad+=("${DF_VAR[f]} fault on $(printf 'n%s ' ${DF_NODES[f]})had no effect (reported full: ${DF_SEEN[f]:-none})")
		fi
		for i in ${DF_NODES[f]}; do
			r=$(grep -o "n$i:[^ ]*" <<<"${DF_REC[f]}")
			case $r in
			*:restarted,*ms) restarted=$((restarted + 1)) ;;
			*ms)
				x=${r#*:}
				x=${x%ms}
				((x > maxrec)) && maxrec=$x
				inplace=$((inplace + 1))
				;;
			*) bad+=("n$i did not persist again after the ${DF_VAR[f]} fault was freed") ;;
			esac
		done
		if [[ ${DF_VAR[f]} == majority && -n ${DF_TALL[f]} ]]; then
			read -r x y <<<"$(disk_acked_between "${DF_TALL[f]}" "${DF_TEND[f]}")"
			acked=$((acked + x)) tried=$((tried + y)) maj=$((maj + 1))
			((x)) && bad+=("$x writes acknowledged while the majority $(printf 'n%s ' ${DF_NODES[f]})was full")
		fi
	done
	failed=$(grep -l "disk failed:" "$OUT"/nodes/*.log 2>/dev/null | xargs -r -n1 basename | tr '\n' ' ')
	[[ -n $failed ]] && bad+=("'disk failed' (not full) on: $failed")
	# a victim killed by the other fault is restarted on its full disk:
	# docs/operations.md says it starts and holds writes again
	failed=$(grep -l "raft init: .*not enough space" "$OUT"/nodes/*.log 2>/dev/null | xargs -r -n1 basename | tr '\n' ' ')
	[[ -n $failed ]] && bad+=("restarted on a full disk, exited at once ('raft init: ... not enough space'): $failed")
	local full_lines
	full_lines=$(cat "$OUT"/nodes/*.log 2>/dev/null | grep -c "disk full:")
	local note="$eff of $n disk faults took effect (every victim reported raftplane_disk_state 1); every victim persisted again: $inplace in the same process (slowest ${maxrec} ms after the free), $restarted after a kill by the other fault; $full_lines 'disk full' log lines"
	((cut)) && note+="; $cut not counted (the workload ended before the victims filled up)"
	((${#starved[@]})) && note+="; ${#starved[@]} not counted, too few writes to fill the victims ($(printf '%s; ' "${starved[@]:0:2}" | sed 's/; $//'))"
	((maj)) && note+="; $maj majority faults: $acked of $tried writes invoked while the majority was full were acknowledged before the free"
	if ((eff == 0)); then
		verdict disk FAIL "no disk fault took effect ($n injected, $cut cut short by the end of the workload, ${#starved[@]} with too few writes): the disk nemesis did nothing"
	elif ((${#bad[@]})); then
		verdict disk FAIL "$(printf '%s; ' "${bad[@]:0:4}")(see nemesis.log)"
	else
		verdict disk PASS "$note"
	fi
}

# "N M": N ok writes (adds, writes, cas) invoked after T1 and acknowledged
# before T2 (ns) in the merged history, of M writes invoked between them.
disk_acked_between() {
	awk -v t1="$1" -v t2="$2" '
		/"process":"nemesis"/ { next }
		{
			match($0, /"process":[0-9]+/); p = substr($0, RSTART + 10, RLENGTH - 10)
			match($0, /"time":[0-9]+/); t = substr($0, RSTART + 7, RLENGTH - 7) + 0
			match($0, /"type":"[a-z]+"/); ty = substr($0, RSTART + 8, RLENGTH - 9)
			match($0, /"f":"[a-z-]+"/); fn = substr($0, RSTART + 5, RLENGTH - 6)
			if (fn != "add" && fn != "write" && fn != "cas") next
			if (ty == "invoke") { inv[p] = t; if (t > t1 && t < t2) tried++; next }
			if (ty == "ok" && (p in inv) && inv[p] > t1 && t < t2) n++
			delete inv[p]
		}
		END { print n + 0, tried + 0 }' "$OUT/history.jsonl"
}
