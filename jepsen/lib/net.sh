# jepsen/lib/net.sh: network namespaces and partitions.
#
# Layout (names are unique per run: RUN_ID=rpj-<pid>):
#   $RUN_ID-hub   holds the bridge br0 (10.77.0.1/24) and one veth end per
#                 node (v1..vN); the workload client and the subscribers run
#                 here. Nothing is created in the root namespace.
#   $RUN_ID-nI    node I: lo and eth0 = 10.77.0.(10+I)/24, the peer of vI.
# Partitions are nftables rules inside the node namespaces: node I drops
# every packet from the nodes it holds a grudge against (Jepsen's model; a
# symmetric partition is a pair of grudges). The hub (client) is never cut.

net_setup() {
	ip netns add "$NS_HUB" || die "cannot create network namespace $NS_HUB"
	ip -n "$NS_HUB" link set lo up || die "netns $NS_HUB: lo"
	ip -n "$NS_HUB" link add br0 type bridge || die "netns $NS_HUB: bridge"
	ip -n "$NS_HUB" addr add "$HUB_IP/24" dev br0 || die "netns $NS_HUB: address"
	ip -n "$NS_HUB" link set br0 up || die "netns $NS_HUB: bridge up"
	local i
	for ((i = 1; i <= NODES; i++)); do
		ip netns add "${NS[i]}" || die "cannot create network namespace ${NS[i]}"
		ip -n "${NS[i]}" link set lo up || die "netns ${NS[i]}: lo"
		ip -n "$NS_HUB" link add "v$i" type veth peer name eth0 netns "${NS[i]}" ||
			die "netns ${NS[i]}: veth"
		ip -n "$NS_HUB" link set "v$i" master br0 up || die "netns $NS_HUB: v$i"
		ip -n "${NS[i]}" addr add "${IP[i]}/24" dev eth0 || die "netns ${NS[i]}: address"
		ip -n "${NS[i]}" link set eth0 up || die "netns ${NS[i]}: eth0 up"
	done
	# nftables must work inside the namespaces
	ip netns exec "${NS[1]}" nft list ruleset >/dev/null 2>&1 ||
		die "nft does not work inside network namespaces"
}

# grudge I J...: node I drops every packet from nodes J...
net_grudge() {
	local i=$1 j ips=""
	shift
	(($# == 0)) && return 0
	for j in "$@"; do ips+="${IP[j]}, "; done
	# replace only our own table: the link nemesis' DNAT table stays
	ip netns exec "${NS[i]}" nft -f - <<EOF
table inet rpj {}
delete table inet rpj
table inet rpj {
	chain input {
		type filter hook input priority 0; policy accept;
		ip saddr { ${ips%, } } drop
	}
}
EOF
}

net_heal() {
	local i
	for ((i = 1; i <= NODES; i++)); do
		ip netns exec "${NS[i]}" nft delete table inet rpj 2>/dev/null
	done
	return 0
}

# Apply the grudges in the associative array GRUDGE (node -> "j k ...").
net_apply_grudges() {
	local i
	for ((i = 1; i <= NODES; i++)); do
		# shellcheck disable=SC2086
		[[ -n ${GRUDGE[$i]:-} ]] && net_grudge "$i" ${GRUDGE[$i]}
	done
	return 0
}

# Partition shapes. Each fills GRUDGE and sets PART_DESC.
# complete grudges between two groups given as "a b|c d e"
grudge_groups() {
	local left=${1%%|*} right=${1#*|} i
	for i in $left; do GRUDGE[$i]="${GRUDGE[$i]:-} $right"; done
	for i in $right; do GRUDGE[$i]="${GRUDGE[$i]:-} $left"; done
}

part_halves() {
	local all half
	shuffle $(seq 1 "$NODES")
	all=("${SHUFFLED[@]}")
	half=$((NODES / 2))
	grudge_groups "${all[*]:0:half}|${all[*]:half}"
	PART_DESC="halves ${all[*]:0:half} | ${all[*]:half}"
}

part_isolate() {
	local x=$1 rest="" i
	for ((i = 1; i <= NODES; i++)); do ((i != x)) && rest+=" $i"; done
	grudge_groups "$x|$rest"
	PART_DESC="isolate n$x | $rest"
}

# Majorities ring: node k (in a random ring order) sees the majority
# centred on itself; no two nodes see the same majority. With 3 nodes the
# grudges are one-way (Jepsen's construction).
part_ring() {
	local ring m k d
	shuffle $(seq 1 "$NODES")
	ring=("${SHUFFLED[@]}")
	m=$((NODES / 2 + 1))
	PART_DESC="ring ${ring[*]}:"
	for ((k = 0; k < NODES; k++)); do
		local sees=() drop=()
		for ((d = 0; d < m; d++)); do sees+=("${ring[(k + d - (m - 1) / 2 + NODES) % NODES]}"); done
		local j
		for j in "${ring[@]}"; do
			[[ " ${sees[*]} " == *" $j "* ]] || drop+=("$j")
		done
		GRUDGE[${ring[k]}]="${drop[*]}"
		PART_DESC+=" n${ring[k]} sees {${sees[*]}}"
	done
}

# Bridge: two halves that cannot talk, and one node that talks to both.
part_bridge() {
	local all b half
	shuffle $(seq 1 "$NODES")
	all=("${SHUFFLED[@]}")
	b=${all[0]}
	all=("${all[@]:1}")
	half=$((${#all[@]} / 2))
	grudge_groups "${all[*]:0:half}|${all[*]:half}"
	PART_DESC="bridge ${all[*]:0:half} | ${all[*]:half} via n$b"
}
