# jepsen/lib/link.sh: slow and lossy links (the "link" nemesis), in user
# space: this kernel has no netem qdisc.
#
# With "link" in --nemesis, every node I runs an rp-relay (jepsen/relay) in
# its own namespace, and an nftables DNAT rule there (table ip rpjlink,
# output hook) sends the node's own connections to a peer's raft port
# 10.77.0.J:7000 to the relay at 10.77.0.I:(7100+J), which connects on to
# the peer from 10.77.0.I (so partitions, which drop by source address,
# still cut relayed traffic). The relay's own sockets carry mark 0x524c and
# are not redirected. Every raft connection (a node connects to each peer
# it sends to) so passes through exactly one relay: the sender's. The HTTP
# traffic between nodes (forwarding to the leader, joins) is not relayed.
#
# Direction I->J (bytes from node I to node J) is "peer J out" on I's relay
# plus "peer I in" on J's relay. Parameters change at run time through each
# relay's control socket $TMP/relay-nI.sock; the nodes are never restarted.
# Relay logs and their final counters: $OUT/relays/.

LINK_ON=0
declare -a RELAY_PID=() RELAY_SOCK=()
RELAY_MARK=0x524c
FAILOVER_LINES=()

link_wanted() {
	local e
	for e in "${NEM_ENTRIES[@]}"; do [[ ${e%%:*} == link ]] && return 0; done
	return 1
}

# relay_ctl I WORD...: one control command to node I's relay.
relay_ctl() {
	local i=$1
	shift
	"$RELAY_BIN" ctl "${RELAY_SOCK[i]}" "$@" 2>&1
}

link_setup() {
	link_wanted || return 0
	[[ -x $RELAY_BIN ]] || die "$RELAY_BIN is not an executable (build rp-relay, or use --relay-bin)"
	LINK_ON=1
	mkdir -p "$OUT/relays"
	rm -f "$OUT"/relays/*.txt "$OUT"/relays/*.log
	ln -sf "$RELAY_BIN" "$TMP/rpj-relay"
	local i j peers rules
	for ((i = 1; i <= NODES; i++)); do
		peers=() rules=""
		for ((j = 1; j <= NODES; j++)); do
			((j == i)) && continue
			peers+=(--peer "$j=$((7100 + j))=${IP[j]}:7000")
			rules+="		meta mark != $RELAY_MARK ip daddr ${IP[j]} tcp dport 7000 dnat to ${IP[i]}:$((7100 + j))
"
		done
		((${#peers[@]})) || continue
		RELAY_SOCK[i]=$TMP/relay-n$i.sock
		ip netns exec "${NS[i]}" "$TMP/rpj-relay" serve --ctl "${RELAY_SOCK[i]}" --listen "${IP[i]}" \
			"${peers[@]}" --mark "$((RELAY_MARK))" --seed $(((SEED + i) % 2147483647)) \
			</dev/null >>"$OUT/relays/n$i.log" 2>&1 &
		RELAY_PID[i]=$!
		track_pid "${RELAY_PID[i]}"
		ip netns exec "${NS[i]}" nft -f - <<EOF || die "netns ${NS[i]}: cannot install the relay's DNAT rules"
table ip rpjlink {
	chain out {
		type nat hook output priority -100; policy accept;
$rules	}
}
EOF
	done
	local k
	for ((i = 1; i <= NODES; i++)); do
		[[ -n ${RELAY_SOCK[i]:-} ]] || continue
		for ((k = 0; k < 50; k++)); do
			relay_ctl "$i" ping >/dev/null && break
			kill -0 "${RELAY_PID[i]}" 2>/dev/null || die "the relay of n$i exited: $(tail -2 "$OUT/relays/n$i.log")"
			nap 0.1
		done
		((k < 50)) || die "the relay of n$i does not answer on ${RELAY_SOCK[i]}"
	done
	say "link relays up: every raft connection between nodes goes through rp-relay (results in $OUT/relays)"
}

# link_set_dir I J PARAMS...: bytes from node I to node J get PARAMS.
link_set_dir() {
	local i=$1 j=$2
	shift 2
	relay_ctl "$i" set "$j" out "$@" >/dev/null || say "relay n$i: set $j out $* failed"
	relay_ctl "$j" set "$i" in "$@" >/dev/null || say "relay n$j: set $i in $* failed"
}

# link_set_all PARAMS...: every direction of every pair.
link_set_all() {
	local i
	for ((i = 1; i <= NODES; i++)); do
		[[ -n ${RELAY_SOCK[i]:-} ]] || continue
		relay_ctl "$i" set '*' both "$@" >/dev/null || say "relay n$i: set * both $* failed"
	done
}

link_clear() {
	local i
	((LINK_ON)) || return 0
	for ((i = 1; i <= NODES; i++)); do
		[[ -n ${RELAY_SOCK[i]:-} ]] || continue
		relay_ctl "$i" clear >/dev/null || say "relay n$i: clear failed"
	done
}

# A relay that died is a failure of the run (logs check), like a node's.
link_check_exits() {
	((LINK_ON)) || return 0
	local i rc
	for ((i = 1; i <= NODES; i++)); do
		[[ -n ${RELAY_PID[i]:-} ]] || continue
		if ! kill -0 "${RELAY_PID[i]}" 2>/dev/null; then
			rc=0
			wait "${RELAY_PID[i]}" 2>/dev/null || rc=$?
			echo "relay of n$i (pid ${RELAY_PID[i]}) exited on its own with $(status_text "$rc") at $(date +%T)" \
				>>"$OUT/unexpected-exits.txt"
			say "!!! the relay of n$i exited on its own with $(status_text "$rc")"
			RELAY_PID[i]=""
		fi
	done
}

# The link check: every relay carried raft traffic (so the redirection
# worked), then SIGTERM, and each must exit 0. Counters: relays/stats-nI.txt.
link_stop_and_check() {
	((LINK_ON)) || return 0
	link_check_exits
	local i conns=0 bytes=0 lost=0 resets=0 idle="" bad="" st c b t rc
	for ((i = 1; i <= NODES; i++)); do
		[[ -n ${RELAY_PID[i]:-} ]] || continue
		st=$(relay_ctl "$i" stats)
		echo "$st" >"$OUT/relays/stats-n$i.txt"
		c=$(awk '$1 == "peer" { s += $4 } END { print s + 0 }' <<<"$st")
		b=$(grep -o ' bytes=[0-9]*' <<<"$st" | awk -F= '{ s += $2 } END { print s + 0 }')
		conns=$((conns + c)) bytes=$((bytes + b))
		lost=$((lost + $(grep -o ' lost=[0-9]*' <<<"$st" | awk -F= '{ s += $2 } END { print s + 0 }')))
		resets=$((resets + $(grep -o ' resets=[0-9]*' <<<"$st" | awk -F= '{ s += $2 } END { print s + 0 }')))
		((c > 0 && b > 0)) || idle+=" n$i"
		kill -TERM "${RELAY_PID[i]}" 2>/dev/null
		for ((t = 0; t < 50; t++)); do
			kill -0 "${RELAY_PID[i]}" 2>/dev/null || break
			sleep 0.1
		done
		rc=0
		wait "${RELAY_PID[i]}" 2>/dev/null || rc=$?
		((rc == 0)) || bad+=" n$i($(status_text "$rc"))"
		RELAY_PID[i]=""
	done
	if [[ -z $idle && -z $bad ]]; then
		verdict link PASS "every relay carried raft traffic ($conns connections, $((bytes / 1024)) KiB, $lost chunks lost, $resets resets) and stopped cleanly"
	else
		verdict link FAIL "${idle:+relays that carried no traffic:$idle }${bad:+relays that did not exit 0:$bad}"
	fi
}

# ---- the nemesis -------------------------------------------------------------

VARIANTS_link="delay loss oneway leader bandwidth flaky"

fault_link() {
	local v=$1 d desc i j l
	case $v in
	delay)
		pick 50 100 200 300
		d=$PICKED
		link_set_all delay="$d" jitter=$((d / 4))
		desc="every link +${d} ms (jitter 0-$((d / 4)) ms) each way"
		;;
	loss)
		pick 5 10 20
		link_set_all loss="$PICKED"
		desc="every link loses ${PICKED}% of chunks (each a 200 ms+ retransmission stall)"
		;;
	oneway)
		shuffle $(seq 1 "$NODES")
		i=${SHUFFLED[0]} j=${SHUFFLED[1]:-}
		if [[ -z $j ]]; then
			nem_event info-link "oneway skipped: one node"
			return 0
		fi
		link_set_dir "$i" "$j" loss=100
		desc="one-way loss: n$i -> n$j held (n$j -> n$i flows)"
		;;
	leader)
		l=$(leader_id)
		if [[ -z $l ]]; then
			pick $(seq 1 "$NODES")
			l=$PICKED
		fi
		for ((j = 1; j <= NODES; j++)); do ((j != l)) && link_set_dir "$l" "$j" loss=100; done
		desc="one-way loss: everything n$l (leader) sends is held, it still receives"
		;;
	bandwidth)
		pick 16000 64000
		link_set_all rate="$PICKED"
		desc="every link capped at $PICKED bytes/s each way"
		;;
	flaky)
		link_set_all delay=20 jitter=40 loss=10 reset=1
		desc="every link: +20 ms, jitter 40 ms, 10% chunk loss, 1% of chunks reset the connection"
		;;
	esac
	count_fault "link:$v"
	nem_event start-link "$desc"
	UNDO+=("undo_link")
}

undo_link() {
	link_clear
	nem_event stop-link "every link plain again (held bytes released)"
}

# ---- failover under latency ----------------------------------------------------

# Every node's term and state from /v1/status: "n1:3l n2:3f n3:-".
terms_now() {
	local i s="" id state term rest
	for ((i = 1; i <= NODES; i++)); do
		if [[ ${ST[i]} != up ]]; then
			s+="n$i:- "
			continue
		fi
		read -r id state term rest <<<"$(hub status "${HTTP[i]}" 2>/dev/null)"
		s+="n$i:${term:-?}${state:0:1} "
	done
	echo "${s% }"
}

max_term() { grep -o ':[0-9]*' <<<"$1" | tr -d : | grep . | sort -n | tail -1; }

# write_once X V: one write through node X; 0 when it was acknowledged.
write_once() {
	local ans
	ans=$(hub http PUT "${HTTP[$1]}" "/v1/kv/rpj-failover" "$2" --timeout-ms 3000 2>/dev/null | head -1)
	[[ $ans == 2* ]]
}

ms_between() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%d", (b - a) * 1000 }'; }

# failover_probe D: with every link +D ms each way, SIGKILL the leader and
# time until another node acknowledges a write. Appends to FAILOVER_LINES.
failover_probe() {
	local d=$1 i l t0 t1 k x w0 wl terms0 terms1 terms2 el ms new seq
	seq=$((d * 1000))
	for ((i = 1; i <= NODES; i++)); do
		[[ ${MEMBER[i]} == yes && ${ST[i]} == down ]] && start_node "$i"
	done
	if ! hub wait-ready "$(all_http)" 60 >/dev/null 2>&1; then
		FAILOVER_LINES+=("failover under +${d}ms: not measured (no ready cluster)")
		return 0
	fi
	link_set_all delay="$d"
	# steady state under the delay: do elections churn?
	terms0=$(terms_now)
	nap 5
	terms1=$(terms_now)
	el=$(($(max_term "$terms1") - $(max_term "$terms0")))
	l=$(leader_id)
	if [[ -z $l ]]; then
		FAILOVER_LINES+=("failover under +${d}ms: not measured (no leader after 5 s at +${d}ms, terms $terms0 -> $terms1)")
		link_clear
		return 0
	fi
	x=$(((l % NODES) + 1))
	w0=$EPOCHREALTIME
	write_once "$x" "$((++seq))"
	wl=$(ms_between "$w0" "$EPOCHREALTIME")
	kill_node "$l"
	nem_event start-failover "+${d}ms on every link: SIGKILL leader n$l"
	t0=$EPOCHREALTIME t1=""
	for ((k = 0; k < 600; k++)); do
		x=$(((x % NODES) + 1))
		((x == l)) && x=$(((x % NODES) + 1))
		if write_once "$x" "$((++seq))"; then
			t1=$EPOCHREALTIME
			break
		fi
		(($(ms_between "$t0" "$EPOCHREALTIME") > 30000)) && break
		nap 0.05
	done
	new=$(leader_id)
	terms2=$(terms_now)
	if [[ -n $t1 ]]; then
		ms=$(ms_between "$t0" "$t1")
		FAILOVER_LINES+=("failover under +${d}ms: $ms ms (leader n$l killed, write acknowledged via n$x, new leader n${new:-?}, term $(max_term "$terms1") -> $(max_term "$terms2"); a write before the kill took $wl ms; elections in 5 s of steady +${d}ms: $el)")
	else
		ms=none
		FAILOVER_LINES+=("failover under +${d}ms: no write acknowledged within 30 s of killing leader n$l (terms $terms2)")
	fi
	nem_event stop-failover "+${d}ms: new leader n${new:-?} served a write after $ms ms; terms before $terms1, after $terms2"
	link_clear
	start_node "$l"
	hub wait-ready "$(all_http)" 60 >/dev/null 2>&1
}

# Kill the leader twice: with plain links, then with +200 ms on every link
# each way. The summary prints both.
link_failover() {
	((LINK_ON)) || return 0
	((NODES >= 3)) || return 0
	say "measuring failover: leader SIGKILLed with plain links, then with +200 ms on every link"
	failover_probe 0
	failover_probe 200
	local f
	for f in "${FAILOVER_LINES[@]}"; do say "$f"; done
}
