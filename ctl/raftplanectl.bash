# bash completion for raftplanectl
_raftplanectl() {
	local cur prev cmd i
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD - 1]}
	cmd=
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		--servers | --cacert | --cert | --key | --token | -o | --output | --timeout) ((i++)) ;;
		-*) ;;
		*) cmd=${COMP_WORDS[i]}; break ;;
		esac
	done
	case $prev in
	-o | --output) COMPREPLY=($(compgen -W "table json yaml" -- "$cur")); return ;;
	--cacert | --cert | --key | -f) COMPREPLY=($(compgen -f -- "$cur")); return ;;
	esac
	if [[ -z $cmd ]]; then
		COMPREPLY=($(compgen -W "status members get put delete apply diff proxies rollout watch history rollback backup restore --servers --cacert --cert --key --token -o --timeout --help" -- "$cur"))
		return
	fi
	case $cmd in
	members) COMPREPLY=($(compgen -W "list add remove transfer --raft --http --role" -- "$cur")) ;;
	get | put | delete | watch | history) COMPREPLY=($(compgen -W "kv cluster route listener --if-version --limit --after" -- "$cur")) ;;
	apply) COMPREPLY=($(compgen -W "-f --prune --prune-prefix --wait --dry-run" -- "$cur")) ;;
	diff) COMPREPLY=($(compgen -W "-f --prune --prune-prefix" -- "$cur")) ;;
	rollout) COMPREPLY=($(compgen -W "--wait" -- "$cur")) ;;
	rollback) COMPREPLY=($(compgen -W "--dry-run --wait" -- "$cur")) ;;
	backup | restore) COMPREPLY=($(compgen -f -- "$cur")) ;;
	esac
}
complete -F _raftplanectl raftplanectl
