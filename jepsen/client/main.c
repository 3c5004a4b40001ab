/* rp-jepsen-client: see jepsen/README.md. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "jc.h"

static const char usage[] =
	"usage: rp-jepsen-client [--ca FILE] [--token-file FILE] COMMAND ...\n"
	"  --ca FILE                    HTTPS: verify the servers against this CA (PEM);\n"
	"                               their certificate must name the node's IP\n"
	"  --token-file FILE            send Authorization: Bearer <the rpt_ token in FILE>\n"
	"  run    --workload register|set|mesh --nodes A,B,.. --out FILE [--time S]\n"
	"         [--concurrency N] [--keys N] [--ops-per-key N] [--rate OPS/S] [--seed N]\n"
	"         [--timeout-ms N] [--final-timeout S] [--edge2-nodes ID,..]\n"
	"                               run the workload, append the history to FILE\n"
	"  final  (same flags)          final reads after healing, appended to FILE\n"
	"  http METHOD ADDR PATH [BODY] [--timeout-ms N] [--header H]\n"
	"                               one request; prints status and body\n"
	"  leader A,B,..                print \"ID ADDR\" of the ready leader (highest term)\n"
	"  members ADDR                 print \"ID ROLE HTTP\" per member\n"
	"  status ADDR                  print \"ID STATE TERM COMMIT LAST APPLIED READY LEADER\"\n"
	"  wait-ready A,B,.. SECONDS    wait for a ready leader known to all, /readyz 200\n"
	"  converge A,B,.. SECONDS      wait for equal revisions, compare local data\n"
	"  merge OUT IN..               merge histories by time, add indices\n"
	"  summary HISTORY              ops per f: ok / fail / info\n"
	"  check-subs A,B,.. SECONDS FILE..\n"
	"                               check raftplane-subscriber output\n";

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} cmds[] = {{"run", cmd_run},
		    {"final", cmd_final},
		    {"http", cmd_http},
		    {"leader", cmd_leader},
		    {"members", cmd_members},
		    {"status", cmd_status},
		    {"wait-ready", cmd_wait_ready},
		    {"converge", cmd_converge},
		    {"merge", cmd_merge},
		    {"summary", cmd_summary},
		    {"check-subs", cmd_check_subs}};
	const char *ca = NULL, *token = NULL;
	while (argc >= 3 && (!strcmp(argv[1], "--ca") || !strcmp(argv[1], "--token-file"))) {
		if (!strcmp(argv[1], "--ca"))
			ca = argv[2];
		else
			token = argv[2];
		argv[2] = argv[0];
		argc -= 2;
		argv += 2;
	}
	if (ca || token) {
		char err[512];
		if (jc_http_setup(ca, token, err, sizeof err) != 0) {
			fprintf(stderr, "rp-jepsen-client: %s\n", err);
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN); /* a peer gone under a TLS write */
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "rp-jepsen-client: unknown command %s\n%s", argv[1], usage);
	return 2;
}
