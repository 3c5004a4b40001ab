/* raftplane-server: command line, start-up, join and shutdown. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/sha.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api.h"
#include "auth.h"
#include "apitls.h"
#include "client.h"
#include "fdbudget.h"
#include "node.h"
#include "raftplane/err.h"
#include "raftplane/log.h"
#include "raftplane/version.h"
#include "reset_term.h"
#include "restore.h"
#include "security.h"
#include "transport.h"

static const char usage[] =
	"usage: raftplane-server --id N --data-dir DIR --raft IP:PORT --http IP:PORT\n"
	"                        [--bootstrap ID=RAFT@HTTP,... | --join HTTPADDR]\n"
	"  --id N                    this node's id (>= 1), fixed for the data dir's life\n"
	"  --data-dir DIR            raft log, snapshots and identity (created if missing)\n"
	"  --raft IP:PORT            raft TCP address (peers connect here)\n"
	"  --http IP:PORT            REST API address\n"
	"  --bootstrap LIST          initial voters ID=RAFTADDR@HTTPADDR,...; ignored when\n"
	"                            the data dir already holds state\n"
	"  --join HTTPADDR           ask the member at HTTPADDR to add this node as a voter\n"
	"  --join-role ROLE          voter (default), standby or spare\n"
	"  --snapshot-threshold N    log entries between snapshots (default 1024)\n"
	"  --snapshot-trailing N     entries kept after a snapshot (default 128)\n"
	"  --snapshot-bytes N        also snapshot once N bytes of commands (or the size of\n"
	"                            the last snapshot, if larger) were applied since the\n"
	"                            last one; 0: by entries only (default 33554432)\n"
	"  --snapshot-trailing-bytes N  keep at most N bytes of entries after a snapshot\n"
	"                            (at least one entry); 0: by entries only (default 8388608)\n"
	"  --election-timeout-ms N   raft election timeout (default 1000)\n"
	"  --heartbeat-ms N          raft heartbeat interval (default 100)\n"
	"  --install-snapshot-timeout-ms N  retry an unanswered snapshot install after N ms\n"
	"                            (default 3000)\n"
	"  --leader-wait-ms N        how long a request waits for a leader (default 3000)\n"
	"  --forward-timeout-ms N    timeout of a request forwarded to the leader (default 5000)\n"
	"  --max-subscribers N       proxy polls parked at once; more get 503 (default 20000)\n"
	"  --max-subscriptions-per-node N  parked polls of one node id; more get 429\n"
	"                            (default 4); 0: unlimited\n"
	"  --report-interval-ms N    how often proxies report telemetry (sent to them on every\n"
	"                            subscription answer; 100..600000, default 10000)\n"
	"  --max-reporters N         reporting node ids kept by this server; more get 503\n"
	"                            (default 100000)\n"
	"  --telemetry-retention-ms N  for tests: keep telemetry N ms instead of 15 minutes\n"
	"  --history-revisions N     keep N revisions of change history (watch, history,\n"
	"                            point-in-time reads, rollback; 100 to 1000000; default\n"
	"                            10000); replicated: the ready leader's flags apply\n"
	"  --history-max-age SECONDS also drop history older than this (0: no limit)\n"
	"  --max-conns-per-ip N      API connections from one address (IPv6: one /64), loopback\n"
	"                            included; more are closed at accept (default 256); members'\n"
	"                            addresses may exceed it; 0: unlimited\n"
	"  --max-conns N             API connections in all; more are closed at accept\n"
	"                            (default: --max-subscribers + 4096); 0: unlimited\n"
	"  --max-header-bytes N      request line and headers; more get 431 (default 16384)\n"
	"  --max-headers N           header lines of a request; more get 431 (default 64)\n"
	"  --restore FILE            with --bootstrap: start the new cluster from FILE (a\n"
	"                            GET /v1/backup file): its items, versions, revision and\n"
	"                            tokens; a new cluster id and the --bootstrap members\n"
	"  --restore-checksum sha256=HEX  refuse FILE unless its SHA-256 is HEX\n"
	"  --bootstrap-token-file F  require API tokens; F (mode 0600) holds an admin token\n"
	"                            (rpt_...): the cluster's first token when it has none,\n"
	"                            and this node's credential for --join\n"
	"  --max-writes-per-token N  writes per second per token a node accepts (default\n"
	"                            1000); 0: unlimited. Given, it also limits each client\n"
	"                            IP of a cluster without tokens\n"
	"  --raft-handshake-timeout-ms N  a raft peer must connect and complete its handshake\n"
	"                            within N ms (default 3000)\n"
	"  --raft-max-pending N      raft connections not yet past the handshake, at once;\n"
	"                            more are refused (default 32)\n"
	"  --raft-relay-outbound     copy outbound raft traffic through the transport's relay\n"
	"                            too (the path mutual TLS will take; costs CPU)\n"
	"  --no-commit-push          do not append a barrier after writes to tell followers\n"
	"                            the commit index at once (they learn it with the next\n"
	"                            heartbeat instead)\n"
	"  --unsafe-stale-reads      TEST ONLY: serve linearizable reads from local state\n"
	"                            without a barrier (lets the checker prove it notices)\n"
	"  --version                 the release and the format versions, then exit\n"
	"  --help                    this text\n"
	"TLS (docs/security.md):\n"
	"%s"
	"offline (node stopped; see docs/operations.md):\n"
	"  raftplane-server --data-dir DIR --show-term      print term, vote, highest log term\n"
	"  raftplane-server --data-dir DIR --reset-term T   persist term T (above every log\n"
	"                            term of every node), no vote\n";

struct options {
	struct rp_node_config node;
	struct rp_api_options api;
	const char *join;
	int join_role;
	struct rp_server_tls tls;
	char join_auth[96]; /* "authorization: Bearer ...\r\n" from the token file, or "" */
	const char *restore, *restore_checksum; /* --restore FILE, --restore-checksum */
};

static struct {
	uv_loop_t *loop;
	struct rp_node *node;
	struct rp_api api;
	uv_signal_t sigterm, sigint;
	uv_timer_t notify;
	int notify_pending;
	struct options opt;
	/* join */
	uv_timer_t join_timer;
	struct rp_http_req *join_req; /* the join request in flight, if any */
	int stopping;                 /* SIGTERM/SIGINT seen: no more joining */
	int join_attempts;
	uint64_t join_conflict_at;
} srv;

static struct rp_api_tls api_tls; /* the API's view of srv.opt.tls */

static void die(const char *fmt, const char *arg)
{
	fprintf(stderr, "raftplane-server: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n");
	exit(2);
}

static unsigned parse_uint(const char *flag, const char *s, unsigned lo, unsigned hi)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	/* digits only: strtoul alone also takes spaces, '+' and '-' (wrapping) */
	if (errno || *end || end == s || s[0] < '0' || s[0] > '9' || v < lo || v > hi) {
		fprintf(stderr, "raftplane-server: %s must be an integer in [%u, %u], got \"%s\"\n",
			flag, lo, hi, s);
		exit(2);
	}
	return (unsigned)v;
}

/* Fail early, with the address in the message, when a port is taken (raft's
 * own error for this is an empty "I/O error", and it comes after bootstrap
 * has already written to the data dir). */
static void check_bindable(const char *flag, const char *s)
{
	struct sockaddr_storage sa;
	int fd, one = 1;
	if (rp_parse_hostport(s, &sa) != 0)
		return;
	fd = socket(sa.ss_family, SOCK_STREAM, 0);
	if (fd < 0)
		return;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	socklen_t len = sa.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						 : sizeof(struct sockaddr_in);
	if (bind(fd, (struct sockaddr *)&sa, len) != 0) {
		fprintf(stderr, "raftplane-server: %s %s: %s\n", flag, s, strerror(errno));
		close(fd);
		exit(2);
	}
	close(fd);
}

static void check_addr(const char *flag, const char *s)
{
	struct sockaddr_storage sa;
	if (strlen(s) >= 64 || rp_parse_hostport(s, &sa) != 0) {
		fprintf(stderr, "raftplane-server: %s must be IP:PORT, got \"%s\"\n", flag, s);
		exit(2);
	}
}

/* "1=127.0.0.1:7001@127.0.0.1:8001,2=..." */
static void parse_bootstrap(struct rp_node_config *cfg, const char *list)
{
	char *copy = strdup(list), *save = NULL;
	if (!copy)
		die("%s", "out of memory");
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '='), *at = eq ? strchr(eq, '@') : NULL;
		if (!eq || !at)
			die("--bootstrap entry \"%s\" is not ID=RAFTADDR@HTTPADDR", tok);
		if (cfg->n_bootstrap >= RP_MAX_PEERS)
			die("--bootstrap lists too many nodes (max %s)", "16");
		*eq = *at = '\0';
		struct rp_peer *p = &cfg->bootstrap[cfg->n_bootstrap];
		p->id = parse_uint("--bootstrap id", tok, 1, 1u << 31);
		check_addr("--bootstrap raft address", eq + 1);
		check_addr("--bootstrap http address", at + 1);
		snprintf(p->raft, sizeof p->raft, "%s", eq + 1);
		snprintf(p->http, sizeof p->http, "%s", at + 1);
		for (unsigned i = 0; i < cfg->n_bootstrap; i++)
			if (cfg->bootstrap[i].id == p->id ||
			    !strcmp(cfg->bootstrap[i].raft, p->raft) ||
			    !strcmp(cfg->bootstrap[i].http, p->http))
				die("--bootstrap: duplicate id or address in \"%s\"", list);
		cfg->n_bootstrap++;
	}
	free(copy);
	if (cfg->n_bootstrap == 0)
		die("--bootstrap: empty list%s", "");
}

static const char *need(int argc, char **argv, int *i)
{
	if (*i + 1 >= argc)
		die("%s needs a value", argv[*i]);
	return argv[++*i];
}

/* --restore FILE: read, check (--restore-checksum, rp_restore_prepare) and
 * hand the database to the node, before anything is written to the data
 * dir: a refused file leaves it as it was. */
static void load_restore(struct options *o)
{
	char err[512], want[72] = "";
	FILE *f = fopen(o->restore, "rb");
	if (!f)
		die("--restore: cannot open %s", o->restore);
	if (o->restore_checksum) {
		const char *c = o->restore_checksum;
		int ok = strncmp(c, "sha256=", 7) == 0 && strlen(c) == 7 + 64;
		for (size_t i = 7; ok && c[i]; i++)
			ok = (c[i] >= '0' && c[i] <= '9') || (c[i] >= 'a' && c[i] <= 'f');
		if (!ok)
			die("--restore-checksum must be sha256= and 64 lowercase hex digits, got "
			    "\"%s\"",
			    c);
		snprintf(want, sizeof want, "%s", c + 7);
	}
	size_t cap = 1 << 20, len = 0;
	unsigned char *buf = malloc(cap);
	size_t got;
	while (buf && (got = fread(buf + len, 1, cap - len, f)) > 0) {
		len += got;
		if (len == cap) {
			unsigned char *nb = cap < ((size_t)1 << 38) ? realloc(buf, cap * 2) : NULL;
			if (!nb) {
				free(buf);
				buf = NULL;
			}
			buf = nb;
			cap *= 2;
		}
	}
	int rerr = ferror(f);
	fclose(f);
	if (!buf)
		die("--restore: %s is too large to load", o->restore);
	if (rerr)
		die("--restore: reading %s failed", o->restore);
	if (want[0]) {
		unsigned char md[SHA256_DIGEST_LENGTH];
		char hex[2 * SHA256_DIGEST_LENGTH + 1];
		SHA256(buf, len, md);
		for (size_t i = 0; i < sizeof md; i++)
			snprintf(hex + 2 * i, 3, "%02x", md[i]);
		if (strcmp(hex, want) != 0) {
			fprintf(stderr,
				"raftplane-server: --restore: %s has checksum sha256=%s, not the "
				"sha256=%s of --restore-checksum: refused\n",
				o->restore, hex, want);
			exit(2);
		}
	}
	void *image;
	size_t image_len;
	uint64_t rev;
	int rv = rp_restore_prepare(buf, len, &image, &image_len, &rev, err, sizeof err);
	free(buf);
	if (rv != 0) {
		fprintf(stderr, "raftplane-server: --restore: %s refused: %s\n", o->restore, err);
		exit(2);
	}
	o->node.restore_image = image; /* for the life of the process */
	o->node.restore_len = image_len;
	fprintf(stderr,
		"raftplane-server: --restore: %s checked: revision %" PRIu64 ", %zu bytes\n",
		o->restore, rev, image_len);
}

static void parse_args(int argc, char **argv, struct options *o)
{
	const char *bootstrap = NULL, *role = "voter";
	o->node = (struct rp_node_config){.snapshot_threshold = 1024,
					  .snapshot_trailing = 128,
					  .snapshot_bytes = 32u << 20,
					  .snapshot_trailing_bytes = 8u << 20,
					  .election_timeout_ms = 1000,
					  .heartbeat_ms = 100,
					  .install_snapshot_timeout_ms = 3000,
					  .commit_push = 1};
	o->api = (struct rp_api_options){.leader_wait_ms = 3000,
					 .forward_timeout_ms = 5000,
					 .max_subscribers = 20000,
					 .max_subscriptions_per_node = 4,
					 .max_conns_per_ip = 256,
					 .max_header_bytes = 16384,
					 .max_headers = 64,
					 .max_writes_per_token = 1000,
					 .report_interval_ms = 10000,
					 .max_reporters = 100000,
					 .telemetry_retention_ms = 15 * 60 * 1000,
					 .history_revisions = RP_HISTORY_REVS};
	int max_conns_given = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		char terr[256];
		int took = rp_server_tls_flag(&o->tls, argc, argv, &i, terr, sizeof terr);
		if (took < 0)
			die("%s", terr);
		if (took > 0)
			continue;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			printf(usage, rp_server_tls_usage);
			exit(0);
		} else if (!strcmp(a, "--version")) {
			rp_print_version("raftplane-server");
			exit(0);
		} else if (!strcmp(a, "--id")) {
			o->node.id = parse_uint(a, need(argc, argv, &i), 1, 1u << 31);
		} else if (!strcmp(a, "--data-dir")) {
			o->node.data_dir = need(argc, argv, &i);
		} else if (!strcmp(a, "--raft")) {
			o->node.raft_addr = need(argc, argv, &i);
		} else if (!strcmp(a, "--http")) {
			o->node.http_addr = need(argc, argv, &i);
		} else if (!strcmp(a, "--bootstrap")) {
			bootstrap = need(argc, argv, &i);
		} else if (!strcmp(a, "--join")) {
			o->join = need(argc, argv, &i);
		} else if (!strcmp(a, "--join-role")) {
			role = need(argc, argv, &i);
		} else if (!strcmp(a, "--snapshot-threshold")) {
			o->node.snapshot_threshold = parse_uint(a, need(argc, argv, &i), 2,
								1u << 24);
		} else if (!strcmp(a, "--snapshot-trailing")) {
			o->node.snapshot_trailing = parse_uint(a, need(argc, argv, &i), 1,
							       1u << 24);
		} else if (!strcmp(a, "--snapshot-bytes")) {
			o->node.snapshot_bytes = parse_uint(a, need(argc, argv, &i), 0, UINT32_MAX);
		} else if (!strcmp(a, "--snapshot-trailing-bytes")) {
			o->node.snapshot_trailing_bytes = parse_uint(a, need(argc, argv, &i), 0,
								     UINT32_MAX);
		} else if (!strcmp(a, "--election-timeout-ms")) {
			o->node.election_timeout_ms = parse_uint(a, need(argc, argv, &i), 50,
								 60000);
		} else if (!strcmp(a, "--heartbeat-ms")) {
			o->node.heartbeat_ms = parse_uint(a, need(argc, argv, &i), 10, 10000);
		} else if (!strcmp(a, "--leader-wait-ms")) {
			o->api.leader_wait_ms = parse_uint(a, need(argc, argv, &i), 0, 600000);
		} else if (!strcmp(a, "--forward-timeout-ms")) {
			o->api.forward_timeout_ms = parse_uint(a, need(argc, argv, &i), 10, 600000);
		} else if (!strcmp(a, "--install-snapshot-timeout-ms")) {
			o->node.install_snapshot_timeout_ms = parse_uint(a, need(argc, argv, &i),
									 100, 600000);
		} else if (!strcmp(a, "--report-interval-ms")) {
			o->api.report_interval_ms = parse_uint(a, need(argc, argv, &i), 100,
							       600000);
		} else if (!strcmp(a, "--max-reporters")) {
			o->api.max_reporters = parse_uint(a, need(argc, argv, &i), 1, 10000000);
		} else if (!strcmp(a, "--history-revisions")) {
			o->api.history_revisions = parse_uint(a, need(argc, argv, &i),
							      RP_HISTORY_REVS_MIN,
							      RP_HISTORY_REVS_MAX);
			o->api.history_given = 1;
		} else if (!strcmp(a, "--history-max-age")) {
			o->api.history_max_age_ms =
				1000ull * parse_uint(a, need(argc, argv, &i), 0,
						     (unsigned)(RP_HISTORY_AGE_MAX_MS / 1000));
			o->api.history_given = 1;
		} else if (!strcmp(a, "--telemetry-retention-ms")) {
			o->api.telemetry_retention_ms = parse_uint(a, need(argc, argv, &i), 1000,
								   15 * 60 * 1000);
		} else if (!strcmp(a, "--max-subscribers")) {
			o->api.max_subscribers = parse_uint(a, need(argc, argv, &i), 1, 1000000);
		} else if (!strcmp(a, "--max-subscriptions-per-node")) {
			o->api.max_subscriptions_per_node = parse_uint(a, need(argc, argv, &i), 0,
								       1000000);
		} else if (!strcmp(a, "--max-conns-per-ip")) {
			o->api.max_conns_per_ip = parse_uint(a, need(argc, argv, &i), 0, 10000000);
		} else if (!strcmp(a, "--max-conns")) {
			o->api.max_conns = parse_uint(a, need(argc, argv, &i), 0, 10000000);
			max_conns_given = 1;
		} else if (!strcmp(a, "--max-header-bytes")) {
			/* above h2o's own cap, a limit would mean nothing */
			o->api.max_header_bytes = parse_uint(a, need(argc, argv, &i), 1024,
							     H2O_MAX_REQLEN);
		} else if (!strcmp(a, "--max-headers")) {
			o->api.max_headers = parse_uint(a, need(argc, argv, &i), 1,
							H2O_MAX_HEADERS);
		} else if (!strcmp(a, "--raft-handshake-timeout-ms")) {
			o->node.raft_handshake_timeout_ms = parse_uint(a, need(argc, argv, &i), 100,
								       60000);
		} else if (!strcmp(a, "--raft-max-pending")) {
			o->node.raft_max_pending = parse_uint(a, need(argc, argv, &i), 1, 10000);
		} else if (!strcmp(a, "--raft-relay-outbound")) {
			o->node.raft_relay_outbound = 1;
		} else if (!strcmp(a, "--no-commit-push")) {
			o->node.commit_push = 0;
		} else if (!strcmp(a, "--bootstrap-token-file")) {
			char token[RP_TOKEN_STRLEN + 1], err[PATH_MAX + 160];
			if (rp_token_file_load(need(argc, argv, &i), token, o->api.bootstrap_hash,
					       err, sizeof err) != 0)
				die("%s", err);
			o->api.tokens_required = o->api.have_bootstrap_token = 1;
			snprintf(o->join_auth, sizeof o->join_auth, "authorization: Bearer %s\r\n",
				 token);
		} else if (!strcmp(a, "--max-writes-per-token")) {
			o->api.max_writes_per_token = parse_uint(a, need(argc, argv, &i), 0,
								 10000000);
			o->api.max_writes_given = 1;
		} else if (!strcmp(a, "--restore")) {
			o->restore = need(argc, argv, &i);
		} else if (!strcmp(a, "--restore-checksum")) {
			o->restore_checksum = need(argc, argv, &i);
		} else if (!strcmp(a, "--unsafe-stale-reads")) {
			o->api.unsafe_reads = o->node.unsafe_reads = 1;
		} else {
			die("unknown flag \"%s\" (see --help)", a);
		}
	}
	if (!o->node.id || !o->node.data_dir || !o->node.raft_addr || !o->node.http_addr)
		die("%s", "--id, --data-dir, --raft and --http are required (see --help)");
	check_addr("--raft", o->node.raft_addr);
	check_addr("--http", o->node.http_addr);
	if (bootstrap && o->join)
		die("%s", "--bootstrap and --join exclude each other");
	if (bootstrap)
		parse_bootstrap(&o->node, bootstrap);
	if (o->join)
		check_addr("--join", o->join);
	if (o->restore && !bootstrap)
		die("%s", "--restore needs --bootstrap: it starts a new cluster from the backup");
	if (o->restore_checksum && !o->restore)
		die("%s", "--restore-checksum needs --restore");
	if (o->node.snapshot_trailing >= o->node.snapshot_threshold)
		die("%s", "--snapshot-trailing must be below --snapshot-threshold");
	if (o->node.heartbeat_ms * 2 > o->node.election_timeout_ms)
		die("%s", "--heartbeat-ms must be at most half of --election-timeout-ms");
	/* every parked poll holds a connection: room for them and the rest */
	if (!max_conns_given)
		o->api.max_conns = o->api.max_subscribers + 4096;
	else if (o->api.max_conns && o->api.max_conns <= o->api.max_subscribers) {
		fprintf(stderr,
			"raftplane-server: --max-conns (%u) must be 0 or above --max-subscribers "
			"(%u): each parked poll holds a connection\n",
			o->api.max_conns, o->api.max_subscribers);
		exit(2);
	}
	o->join_role = !strcmp(role, "voter")     ? 1
		       : !strcmp(role, "standby") ? 0
		       : !strcmp(role, "spare")   ? 2
						  : -1;
	if (o->join_role < 0)
		die("--join-role must be voter, standby or spare, got \"%s\"", role);
	/* secure by default: every address we serve or call must be loopback
	 * unless TLS is on or --insecure is given */
	const char *addrs[3 + 2 * RP_MAX_PEERS] = {o->node.raft_addr, o->node.http_addr, o->join};
	size_t n = 3;
	for (unsigned k = 0; k < o->node.n_bootstrap; k++) {
		addrs[n++] = o->node.bootstrap[k].raft;
		addrs[n++] = o->node.bootstrap[k].http;
	}
	char terr[512];
	o->tls.self_id = o->node.id;
	if (rp_server_tls_check(&o->tls, addrs, n, terr, sizeof terr) != 0)
		die("%s", terr);
}

/* Descriptors the API's limits may need: a parked poll holds two (its close
 * watch), any other connection one; raft, the data dir and the loop a few
 * dozen. Raise the soft limit toward the hard one. Whatever it ends at,
 * clients may hold all but a reserve (net/fdbudget.h): past that budget a
 * connection is refused at accept and a poll parks without its close watch,
 * so that client load never leaves raft without a descriptor for its next
 * segment (which would stop the node's log). */
static void check_fd_limit(const struct rp_api_options *o)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
		return;
	rlim_t need = (rlim_t)o->max_conns + o->max_subscribers + 256;
	if (o->max_conns && rl.rlim_cur < need) {
		rlim_t want = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > need ? need
										 : rl.rlim_max;
		if (want > rl.rlim_cur) {
			struct rlimit up = {want, rl.rlim_max};
			if (setrlimit(RLIMIT_NOFILE, &up) == 0)
				rl.rlim_cur = want;
		}
	}
	size_t budget = rp_fd_budget_for(rl.rlim_cur);
	rp_fd_budget_set(budget);
	if (o->max_conns && rl.rlim_cur < need)
		rp_log_warn("open file limit %llu is below the %llu descriptors --max-conns %u and "
			    "--max-subscribers %u may need: clients may hold %zu of them (the rest "
			    "is kept for raft and the data dir); past that connections are refused "
			    "at accept and polls park without a close watch; raise the limit "
			    "(ulimit -n) or lower the flags",
			    (unsigned long long)rl.rlim_cur, (unsigned long long)need, o->max_conns,
			    o->max_subscribers, budget);
}

/* ---- change notification: coalesced, once per loop iteration ------------ */

static void on_notify(uv_timer_t *t)
{
	(void)t;
	srv.notify_pending = 0;
	rp_watch_notify(&srv.api);
	rp_subscribe_notify(&srv.api);
}

static void on_change(void *arg, const struct rp_change *c)
{
	(void)arg;
	(void)c;
	if (!srv.notify_pending) {
		srv.notify_pending = 1;
		uv_timer_start(&srv.notify, on_notify, 0, 0);
	}
}

/* ---- join --------------------------------------------------------------- */

static int self_in_config(void)
{
	return rp_node_is_member(srv.node, srv.opt.node.id);
}

static void join_again(unsigned ms);

static void on_join_answer(void *arg, int err, const struct rp_http_response *res)
{
	(void)arg;
	srv.join_req = NULL;
	if (srv.stopping || self_in_config())
		return;
	if (err || res->status == 503) {
		join_again(500);
		return;
	}
	if (res->status == 201) {
		rp_log_info("joined the cluster via %s", srv.opt.join);
		return;
	}
	if (res->status == 409 && !srv.join_conflict_at) {
		/* maybe an earlier attempt succeeded and only its answer was lost */
		srv.join_conflict_at = uv_now(srv.loop);
		join_again(3000);
		return;
	}
	rp_log_fatal("join via %s refused (%d): %.*s", srv.opt.join, res->status,
		     (int)res->body_len, res->body);
	exit(1);
}

/* The raft transport accepts only members of our configuration, and a node
 * that joins has none until the leader replicated it: until then it accepts
 * the members the cluster lists now (the leader among them). */
static int set_join_peers(const struct rp_http_response *res)
{
	struct rp_transport_peer peers[64];
	unsigned n = 0;
	json_t *root = json_loadb(res->body, res->body_len, 0, NULL), *arr, *m;
	size_t i;
	arr = json_object_get(root, "members");
	json_array_foreach(arr, i, m)
	{
		json_t *id = json_object_get(m, "id");
		const char *raft = json_string_value(json_object_get(m, "raft"));
		if (n < 64 && json_is_integer(id) && json_integer_value(id) > 0 && raft &&
		    strlen(raft) < sizeof peers[n].raft) {
			peers[n].id = (uint64_t)json_integer_value(id);
			snprintf(peers[n].raft, sizeof peers[n].raft, "%s", raft);
			n++;
		}
	}
	json_decref(root);
	if (n > 0)
		rp_transport_set_join_peers(rp_node_transport(srv.node), peers, n);
	return n > 0 ? 0 : -1;
}

static void post_join(void);

static void on_join_members(void *arg, int err, const struct rp_http_response *res)
{
	(void)arg;
	srv.join_req = NULL;
	if (srv.stopping || self_in_config())
		return;
	if (err || res->status != 200 || set_join_peers(res) != 0) {
		join_again(500);
		return;
	}
	post_join();
}

static void on_join_timer(uv_timer_t *t)
{
	(void)t;
	if (srv.stopping || self_in_config())
		return;
	if (++srv.join_attempts > 240) {
		rp_log_fatal("could not join via %s", srv.opt.join);
		exit(1);
	}
	if (rp_http_request(srv.loop, srv.opt.join, "GET", "/v1/members", srv.opt.join_auth, NULL,
			    0, 10000, on_join_members, NULL, &srv.join_req) != 0) {
		srv.join_req = NULL;
		join_again(500);
	}
}

static void post_join(void)
{
	char body[256];
	static const char *roles[] = {"standby", "voter", "spare"};
	snprintf(body, sizeof body,
		 "{\"id\":%" PRIu64 ",\"raft\":\"%s\",\"http\":\"%s\",\"role\":\"%s\"}",
		 srv.opt.node.id, srv.opt.node.raft_addr, srv.opt.node.http_addr,
		 roles[srv.opt.join_role]);
	char headers[160];
	snprintf(headers, sizeof headers, "Content-Type: application/json\r\n%s",
		 srv.opt.join_auth);
	if (rp_http_request(srv.loop, srv.opt.join, "POST", "/v1/members", headers, body,
			    strlen(body), 30000, on_join_answer, NULL, &srv.join_req) != 0) {
		srv.join_req = NULL;
		join_again(500);
	}
}

static void join_again(unsigned ms)
{
	uv_timer_start(&srv.join_timer, on_join_timer, ms, 0);
}

/* ---- offline term repair ------------------------------------------------ */

/* --show-term / --reset-term T: run instead of the server, then exit. */
static void offline_term(int argc, char **argv)
{
	const char *dir = NULL, *reset = NULL;
	int show = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--show-term"))
			show = 1;
		else if (!strcmp(argv[i], "--reset-term"))
			reset = need(argc, argv, &i);
		else if (!strcmp(argv[i], "--data-dir"))
			dir = need(argc, argv, &i);
	}
	if (!show && !reset)
		return;
	if (!dir)
		die("%s", "--show-term and --reset-term need --data-dir");
	uint64_t term = 0;
	if (reset) {
		char *end;
		errno = 0;
		term = strtoull(reset, &end, 10);
		if (errno || *end || end == reset || reset[0] == '-' || term == 0 ||
		    term >= RP_TERM_CEILING)
			die("--reset-term must be an integer in [1, 2^62), got \"%s\"", reset);
	}
	struct rp_term_info info;
	char err[512];
	if (rp_term_repair(dir, term, &info, err, sizeof err) != 0)
		die("%s", err);
	printf("term=%" PRIu64 " voted_for=%" PRIu64 " max_log_term=%" PRIu64 " last_index=%" PRIu64
	       " entries=%" PRIu64 " snapshot_index=%" PRIu64 "\n",
	       reset ? term : info.term, reset ? 0 : info.voted_for, info.max_log_term,
	       info.last_index, info.n_entries, info.snapshot_index);
	if (reset)
		fprintf(stderr, "raftplane-server: %s: term %" PRIu64 " -> %" PRIu64 "\n", dir,
			info.term, term);
	exit(0);
}

/* ---- shutdown ----------------------------------------------------------- */

static void on_node_closed(void *arg)
{
	(void)arg;
	uv_stop(srv.loop);
}

static void on_signal(uv_signal_t *s, int signum)
{
	(void)s;
	rp_log_info("signal %d, shutting down", signum);
	/* a join answer must not reach a closed node (nor exit(1) now) */
	srv.stopping = 1;
	uv_timer_stop(&srv.join_timer);
	if (srv.join_req) {
		rp_http_cancel(srv.join_req);
		srv.join_req = NULL;
	}
	uv_signal_stop(&srv.sigterm);
	uv_signal_stop(&srv.sigint);
	rp_api_close(&srv.api);
	rp_node_close(srv.node, on_node_closed, NULL);
}

/* The server id our HTTP client must find at @hostport: the member whose
 * HTTP address it is (leader forwarding, fleet fan-out), else 0: any
 * raftplane server (a --join target). */
static uint64_t member_at(void *arg, const char *hostport)
{
	(void)arg;
	struct rp_node_member *ms;
	unsigned n;
	uint64_t id = 0;
	if (!srv.node || rp_node_members(srv.node, &ms, &n) != RP_OK)
		return 0;
	for (unsigned i = 0; i < n && !id; i++)
		if (strcmp(ms[i].http, hostport) == 0)
			id = ms[i].id;
	free(ms);
	return id;
}

/* TLS on: the API accepts only TLS, and every request this process makes
 * (join, leader forwarding, fleet fan-out) is HTTPS to a server
 * certificate (net/client.h). */
static void wire_tls(void)
{
	struct rp_server_tls *t = &srv.opt.tls;
	if (!t->api)
		return;
	api_tls = (struct rp_api_tls){.api = t->api,
				      .client = t->client,
				      .peer = t->peer,
				      .trust_domain = t->trust_domain};
	srv.opt.api.tls = &api_tls;
	struct rp_http_tls cfg = {.tls = t->client,
				  .trust_domain = t->trust_domain,
				  .kind = RP_PEER_SERVER,
				  .expect = member_at,
				  .log = 1};
	rp_http_set_tls(srv.loop, &cfg);
}

int main(int argc, char **argv)
{
	char err[512];
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stderr, NULL, _IOLBF, 0);
	offline_term(argc, argv);
	parse_args(argc, argv, &srv.opt);
	if (srv.opt.restore)
		load_restore(&srv.opt);
	rp_log_init("raftplane-server");
	char node_name[24];
	snprintf(node_name, sizeof node_name, "%" PRIu64, srv.opt.node.id);
	rp_log_set_node(node_name);
	check_bindable("--raft", srv.opt.node.raft_addr);
	check_bindable("--http", srv.opt.node.http_addr);
	srv.loop = uv_default_loop();
	if (rp_server_tls_load(&srv.opt.tls, err, sizeof err) != 0)
		die("%s", err);
	rp_server_tls_watch(&srv.opt.tls, srv.loop);
	wire_tls();
	srv.opt.node.raft_tls_in = srv.opt.tls.peer; /* NULL without TLS: plain raft */
	srv.opt.node.raft_tls_out = srv.opt.tls.client;
	srv.opt.node.raft_trust_domain = srv.opt.tls.trust_domain;
	if (rp_node_create(srv.loop, &srv.opt.node, &srv.node, err, sizeof err) != 0)
		die("%s", err);
	rp_node_on_change(srv.node, on_change, NULL);
	uv_timer_init(srv.loop, &srv.notify);
	uv_timer_init(srv.loop, &srv.join_timer);
	if (rp_api_start(&srv.api, srv.loop, srv.node, srv.opt.node.http_addr, &srv.opt.api, err,
			 sizeof err) != 0)
		die("%s", err);
	if (rp_node_start(srv.node, err, sizeof err) != 0)
		die("%s", err);
	check_fd_limit(&srv.opt.api); /* once running: start-up errors stay one line */
	rp_log_info("serving HTTP on %s (release %s; formats: log %d, snapshot %d, protocol %d)",
		    srv.opt.node.http_addr, rp_release(), RP_FORMAT_LOG, RP_FORMAT_SNAPSHOT,
		    RP_FORMAT_PROTOCOL);
	if (srv.opt.join && !self_in_config())
		join_again(0);
	uv_signal_init(srv.loop, &srv.sigterm);
	uv_signal_init(srv.loop, &srv.sigint);
	uv_signal_start(&srv.sigterm, on_signal, SIGTERM);
	uv_signal_start(&srv.sigint, on_signal, SIGINT);
	uv_run(srv.loop, UV_RUN_DEFAULT);
	rp_server_tls_close(&srv.opt.tls);
	rp_log_info("stopped");
	return 0;
}
