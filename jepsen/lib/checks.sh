# jepsen/lib/checks.sh: the checks after a run, and the summary.
#
# Each check sets CHECK[name]=PASS|FAIL|UNKNOWN|SKIP and NOTE[name].

declare -A CHECK=()
declare -A NOTE=()
CHECK_ORDER=()

verdict() {
	CHECK[$1]=$2
	NOTE[$1]=$3
	[[ " ${CHECK_ORDER[*]} " == *" $1 "* ]] || CHECK_ORDER+=("$1")
}

# Memory errors, undefined behaviour, failed assertions, fatal errors,
# corruption, crashes; plus nodes that exited on their own or did not shut
# down cleanly. The disk nemesis' expected "ERROR ... disk full: ..." line
# (and the WARN about a snapshot it could not write) match none of these;
# a "disk failed:" line fails the disk check (lib/disk.sh).
LOG_PATTERNS='ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|Assertion|FATAL|CORRUPT|Segmentation fault|stack-overflow|double free|panic'

# A node whose only finding is the known libraft 0.15 leak at close (a
# pending log truncation, 48 bytes; docs/design.md, known risk 8; decided by
# lsan_known.py on the exact report) is listed in known-leaks.txt instead,
# and its sanitizer exit status after SIGTERM is not an unclean shutdown.
# Any other report, or anything else in that log, still fails.
check_logs() {
	local f findings n=0 node known=()
	: >"$OUT/log-findings.txt"
	: >"$OUT/known-leaks.txt"
	for f in "$OUT"/nodes/*.log; do
		[[ -f $f ]] || continue
		node=$(basename "$f" .log)
		if python3 "$HERE/lib/lsan_known.py" "$f" >/dev/null 2>&1 &&
			! grep -E "$LOG_PATTERNS" "$f" | grep -qv "ERROR: LeakSanitizer"; then
			echo "$node: libraft 0.15 leaked a pending truncation at close (known risk 8)" \
				>>"$OUT/known-leaks.txt"
			known+=("$node")
			continue
		fi
		grep -nE "$LOG_PATTERNS" "$f" | sed "s|^|$(basename "$f"):|" >>"$OUT/log-findings.txt"
	done
	n=$(wc -l <"$OUT/log-findings.txt")
	local exits=0 shut=0 k
	[[ -s $OUT/unexpected-exits.txt ]] && exits=$(wc -l <"$OUT/unexpected-exits.txt")
	if [[ -s $OUT/shutdown-problems.txt ]]; then
		cp "$OUT/shutdown-problems.txt" "$OUT/shutdown-problems.all.txt"
		for k in "${known[@]}"; do # their sanitizer exit status, nothing else
			grep -vE "^$k: exited with status (23|134) " "$OUT/shutdown-problems.txt" \
				>"$OUT/shutdown-problems.tmp" || true
			mv "$OUT/shutdown-problems.tmp" "$OUT/shutdown-problems.txt"
		done
		shut=$(grep -c . "$OUT/shutdown-problems.txt" || true)
	fi
	local note=""
	[[ -s $OUT/known-leaks.txt ]] && note=" (known libraft leak at close on: ${known[*]})"
	if ((n == 0 && exits == 0 && shut == 0)); then
		verdict logs PASS "no sanitizer/assertion/FATAL/CORRUPT lines, no unexpected exits, clean shutdowns$note"
	else
		findings="$n suspicious log lines, $exits unexpected exits, $shut unclean shutdowns"
		if ((n)); then findings+=": $(head -3 "$OUT/log-findings.txt" | cut -c1-160 | tr '\n' ' ')"; fi
		if ((exits)); then findings+=" | $(head -3 "$OUT/unexpected-exits.txt" | tr '\n' ' ')"; fi
		if ((shut)); then findings+=" | $(head -3 "$OUT/shutdown-problems.txt" | tr '\n' ' ')"; fi
		verdict logs FAIL "$findings"
	fi
}

# 401 answers in the history (the client counts them as fail, not as
# unexpected). The run's tokens are valid on every node that holds the
# replicated state; a node wiped and started with --join requires tokens
# at once but knows them only once its snapshot arrived (until then, and
# while it is not yet a member at all, it refuses them). So a 401 from node
# X is accepted only after X started with --join ($OUT/raw/joins.txt:
# "nI START_NS" lines) and before X's first 2xx answer since that start:
# once it has served the token, a later 401 is a failure. Sets UNAUTH_N
# (all 401s), UNAUTH_BAD (the others) and UNAUTH_FIRST (the first other one).
check_unauth() {
	local joins=$OUT/raw/joins.txt
	[[ -f $joins ]] || : >"$joins"
	read -r UNAUTH_N UNAUTH_BAD UNAUTH_FIRST < <(awk '
		FILENAME == ARGV[1] { nj[$1]++; js[$1, nj[$1]] = $2 + 0; next }
		!/"status":/ || !/"node":"n[0-9]+"/ { next }
		{
			match($0, /"node":"n[0-9]+"/); node = substr($0, RSTART + 8, RLENGTH - 9)
			match($0, /"time":[0-9]+/); t = substr($0, RSTART + 7, RLENGTH - 7) + 0
			match($0, /"status":[0-9]+/); st = substr($0, RSTART + 9, RLENGTH - 9) + 0
			if (st >= 200 && st < 300) { last2xx[node] = t; next }
			if (st != 401) next
			n++
			s = -1 # the latest --join start of node at or before t
			for (x = 1; x <= nj[node]; x++) if (js[node, x] <= t && js[node, x] > s) s = js[node, x]
			if (s >= 0 && !(node in last2xx && last2xx[node] >= s)) next
			bad++
			if (first == "") { match($0, /"index":[0-9]+/); first = node "@index" substr($0, RSTART + 8, RLENGTH - 8) }
		}
		END { printf "%d %d %s\n", n, bad, first == "" ? "-" : first }' "$joins" "$OUT/history.jsonl")
}

# rp-checker on the merged history.
check_history() {
	local model=$1 rc=0 name
	name=linearizability
	[[ $model == set ]] && name="set"
	"$CHECKER_BIN" --model "$model" --budget-ms "$CHECK_BUDGET_MS" "$OUT/history.jsonl" \
		>"$OUT/checker.txt" 2>&1 || rc=$?
	local valid invalid unknown
	if [[ $model == set ]]; then
		valid=$(grep -c '^set .*: VALID' "$OUT/checker.txt")
		invalid=$(grep -c '^set .*: INVALID' "$OUT/checker.txt")
		unknown=$(grep -c '^set .*: UNKNOWN' "$OUT/checker.txt")
	else
		valid=$(grep -c '^key .*: VALID' "$OUT/checker.txt")
		invalid=$(grep -c '^key .*: INVALID' "$OUT/checker.txt")
		unknown=$(grep -c '^key .*: UNKNOWN' "$OUT/checker.txt")
	fi
	local keys="$valid valid, $invalid invalid, $unknown unknown keys"
	local bad
	bad=$(grep -E '^(key|set) .*: (INVALID|UNKNOWN)' "$OUT/checker.txt" | head -5 | cut -d'(' -f1 | tr '\n' ' ')
	case $rc in
	0) verdict "$name" PASS "VALID ($keys)" ;;
	1) verdict "$name" FAIL "INVALID ($keys): $bad; see checker.txt" ;;
	3) verdict "$name" UNKNOWN "UNKNOWN, a search budget ran out ($keys): $bad" ;;
	*) verdict "$name" FAIL "checker error (exit $rc): $(tail -2 "$OUT/checker.txt" | tr '\n' ' ')" ;;
	esac
	CHECKER_RC=$rc
}

fault_summary() {
	local k s="" total=0
	for k in $(printf '%s\n' "${!FAULTS[@]}" | sort); do
		s+="$k=${FAULTS[$k]} "
		total=$((total + FAULTS[$k]))
	done
	echo "$total injected${s:+: $s}"
}

print_summary() {
	local final=$1 name
	{
		echo
		echo "===== jepsen summary: $WORKLOAD, $NODES nodes, ${TIME}s, nemesis $NEMESIS (interval ${INTERVAL}s), seed $SEED$(security_note) ====="
		echo "results: $OUT"
		echo "operations (history.jsonl):"
		hub_summary
		echo "client: $(cat "$OUT/raw/client-run.json" 2>/dev/null | tr -d '\n')"
		echo "faults: $(fault_summary)"
		local f
		for f in "${FAILOVER_LINES[@]}"; do echo "$f"; done
		echo "checks:"
		for name in "${CHECK_ORDER[@]}"; do
			printf '  %-16s %-7s %s\n' "$name" "${CHECK[$name]}" "${NOTE[$name]}"
		done
		echo "verdict: $final"
	} | tee "$OUT/summary.txt"
}

hub_summary() {
	"$CLIENT_BIN" summary "$OUT/history.jsonl" 2>/dev/null || echo "  (no history)"
}
