/* Workloads: register (read / write / cas on /v1/kv keys), set (adds, final
 * read) and mesh (read / write / cas on clusters and routes). `run` drives
 * concurrent client processes for a while; `final` does the final reads
 * after the nemesis healed the cluster.
 *
 * Outcome rules (docs/api.md 1.8): 2xx ok; 4xx fail (412 = CAS did not
 * apply; 404 on a read = nil); 503 no_leader fail; any other 5xx, and any
 * timeout or connection loss after the request was (partly) sent, is info
 * for writes. Reads that fail in any way are fail (they have no effect).
 * A process whose op ended in info never invokes again.
 * 401 is a fail (nothing ran) that is not counted as unexpected here but
 * in "unauthenticated": jepsen/run accepts it only from a node catching up
 * after --join (a wiped node judges tokens before it has the state that
 * holds them). */
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jc.h"

#define MAX_NODES 16
#define LEARN 16
#define FINAL_PROCESS_BASE 10000000L
#define SETUP_PROCESS_BASE 9000000L

enum {
	W_REGISTER,
	W_SET,
	W_MESH
};

struct key {
	char name[64]; /* history key: "k7", "clusters.c1", "set0" */
	char path[96]; /* item path: "/v1/kv/k7", "/v1/clusters/c1" */
	int kind;      /* mesh: 0 cluster, 1 route */
	int index;     /* mesh: i of c<i> / r<i> */
	long ops;
	/* value -> version pairs learned from ok answers (values are unique) */
	int n, pos;
	int64_t val[LEARN];
	uint64_t ver[LEARN];
};

static struct {
	int workload;
	char *nodes[MAX_NODES];
	int n_nodes;
	int time_s, concurrency, keys, ops_per_key, timeout_ms, final_timeout_s;
	double rate;
	uint64_t seed;
	const char *out;
	const char *edge2_nodes;

	struct jc_hist h;
	volatile sig_atomic_t stop;
	pthread_mutex_t mu;
	long next_process;
	int64_t next_value;
	struct key **keys_all;
	int n_keys_all, cap_keys_all;
	struct key **slot; /* register/set: the key each slot uses now */
	int next_key_id;
	long n_ok, n_fail, n_info, n_unexpected, n_unauth;
	int64_t t_end;
} g;

static void on_signal(int sig)
{
	(void)sig;
	g.stop = 1;
}

static struct key *new_key(const char *name, const char *path)
{
	struct key *k = calloc(1, sizeof *k);
	if (!k)
		jc_die("out of memory");
	snprintf(k->name, sizeof k->name, "%s", name);
	snprintf(k->path, sizeof k->path, "%s", path);
	if (g.n_keys_all == g.cap_keys_all) {
		g.cap_keys_all = g.cap_keys_all ? 2 * g.cap_keys_all : 64;
		g.keys_all = realloc(g.keys_all, (size_t)g.cap_keys_all * sizeof *g.keys_all);
		if (!g.keys_all)
			jc_die("out of memory");
	}
	g.keys_all[g.n_keys_all++] = k;
	return k;
}

static struct key *new_register_key(void)
{
	char name[32], path[64];
	int id = g.next_key_id++;
	snprintf(name, sizeof name, "k%d", id);
	snprintf(path, sizeof path, "/v1/kv/k%d", id);
	return new_key(name, path);
}

/* under g.mu */
static void learn(struct key *k, int64_t v, uint64_t ver)
{
	for (int i = 0; i < k->n; i++)
		if (k->val[i] == v)
			return;
	k->val[k->pos] = v;
	k->ver[k->pos] = ver;
	k->pos = (k->pos + 1) % LEARN;
	if (k->n < LEARN)
		k->n++;
}

/* under g.mu: the known value with the highest version */
static int latest(struct key *k, int64_t *v, uint64_t *ver)
{
	int best = -1;
	for (int i = 0; i < k->n; i++)
		if (best < 0 || k->ver[i] > k->ver[best])
			best = i;
	if (best < 0)
		return 0;
	*v = k->val[best];
	*ver = k->ver[best];
	return 1;
}

static void count(const char *type, int unexpected, int status)
{
	pthread_mutex_lock(&g.mu);
	if (status == 401)
		g.n_unauth++;
	if (!strcmp(type, "ok"))
		g.n_ok++;
	else if (!strcmp(type, "fail"))
		g.n_fail++;
	else
		g.n_info++;
	if (unexpected)
		g.n_unexpected++;
	pthread_mutex_unlock(&g.mu);
}

/* The outcome of a write-like request. */
static const char *write_outcome(int rc, const struct jc_resp *r, int *unexpected)
{
	*unexpected = 0;
	if (rc == JC_NOT_SENT)
		return "fail";
	if (rc == JC_UNKNOWN)
		return "info";
	if (r->status >= 200 && r->status < 300)
		return "ok";
	if (r->status == 503 && !strcmp(r->code, "no_leader"))
		return "fail";
	if (r->status >= 500)
		return "info";
	if (r->status != 412 && r->status != 401)
		*unexpected = 1;
	return "fail";
}

static void extra_for(char *buf, size_t len, int node, int rc, const struct jc_resp *r)
{
	if (rc == JC_DONE)
		snprintf(buf, len, ",\"node\":\"n%d\",\"status\":%d%s%s%s", node + 1, r->status,
			 r->code[0] ? ",\"err\":\"" : "", r->code, r->code[0] ? "\"" : "");
	else
		snprintf(buf, len, ",\"node\":\"n%d\",\"err\":\"%s: %s\"", node + 1,
			 rc == JC_NOT_SENT ? "not sent" : "unknown", r->why);
}

/* Parse the register value of a read answer. 1 ok, 0 malformed. */
static int read_value(const struct key *k, const struct jc_resp *r, int64_t *v)
{
	if (g.workload != W_MESH) {
		char *end;
		if (!r->body || !r->body_len)
			return 0;
		long long x = strtoll(r->body, &end, 10);
		if (*end)
			return 0;
		*v = x;
		return 1;
	}
	json_t *j = json_loadb(r->body ? r->body : "", r->body_len, 0, NULL);
	json_t *f = json_object_get(j, k->kind == 0 ? "connect_timeout_ms" : "timeout_ms");
	int ok = json_is_integer(f);
	if (ok)
		*v = json_integer_value(f);
	json_decref(j);
	return ok;
}

static int write_body(const struct key *k, int64_t v, uint64_t *rng, char *buf, size_t len)
{
	if (g.workload != W_MESH)
		return snprintf(buf, len, "%" PRId64, v);
	if (k->kind == 0)
		return snprintf(buf, len,
				"{\"connect_timeout_ms\":%" PRId64 ",\"endpoints\":[{\"address\":"
				"\"10.99.0.%d\",\"port\":%d,\"weight\":1}]}",
				v, 1 + k->index % 250, 9000 + k->index);
	int c = (int)jc_randn(rng, (uint64_t)g.keys);
	return snprintf(buf, len,
			"{\"listener\":\"%s\",\"match\":{\"prefix\":\"/r%d\"},\"cluster\":\"c%d\","
			"\"timeout_ms\":%" PRId64 "}",
			k->index % 2 ? "edge2" : "edge", k->index, c, v);
}

/* One read, write or cas on @k by @process. Returns the completion type. */
static const char *reg_op(long process, struct key *k, const char *f, int64_t a, int64_t b,
			  uint64_t ver_a, int node, uint64_t *rng)
{
	char value[64], extra[256], body[512], hdr[64];
	const char *type;
	int unexpected = 0;
	struct jc_resp r;
	int rc;
	if (!strcmp(f, "read")) {
		jc_hist_event(&g.h, process, "invoke", f, k->name, "null", NULL);
		rc = jc_http(g.nodes[node], "GET", k->path, NULL, NULL, 0, g.timeout_ms, &r);
		int64_t v;
		if (rc == JC_DONE && r.status == 200 && read_value(k, &r, &v)) {
			type = "ok";
			snprintf(value, sizeof value, "%" PRId64, v);
			if (r.has_etag) {
				pthread_mutex_lock(&g.mu);
				learn(k, v, r.etag);
				pthread_mutex_unlock(&g.mu);
			}
		} else if (rc == JC_DONE && r.status == 404 && !strcmp(r.code, "not_found")) {
			type = "ok";
			snprintf(value, sizeof value, "null");
		} else {
			type = "fail";
			snprintf(value, sizeof value, "null");
			if (rc == JC_DONE && r.status != 503 && r.status != 401)
				unexpected = 1;
		}
	} else {
		int64_t nv = !strcmp(f, "cas") ? b : a;
		if (!strcmp(f, "cas"))
			snprintf(value, sizeof value, "[%" PRId64 ",%" PRId64 "]", a, b);
		else
			snprintf(value, sizeof value, "%" PRId64, a);
		int bl = write_body(k, nv, rng, body, sizeof body);
		hdr[0] = 0;
		if (!strcmp(f, "cas"))
			snprintf(hdr, sizeof hdr, "If-Match: \"%" PRIu64 "\"\r\n", ver_a);
		if (g.workload != W_REGISTER)
			strcat(hdr, "Content-Type: application/json\r\n");
		jc_hist_event(&g.h, process, "invoke", f, k->name, value, NULL);
		rc = jc_http(g.nodes[node], "PUT", k->path, hdr, body, (size_t)bl, g.timeout_ms,
			     &r);
		type = write_outcome(rc, &r, &unexpected);
		if (!strcmp(type, "ok") && r.has_etag) {
			pthread_mutex_lock(&g.mu);
			learn(k, nv, r.etag);
			pthread_mutex_unlock(&g.mu);
		}
	}
	extra_for(extra, sizeof extra, node, rc, &r);
	if (unexpected)
		jc_log("unexpected answer: %s %s on n%d: %d %.200s", f, k->name, node + 1,
		       rc == JC_DONE ? r.status : -1, r.body ? r.body : r.why);
	jc_hist_event(&g.h, process, type, f, k->name, value, extra);
	jc_resp_free(&r);
	count(type, unexpected, rc == JC_DONE ? r.status : 0);
	return type;
}

static const char *set_add(long process, struct key *k, int64_t e, int node)
{
	char value[32], extra[256], path[128], body[32];
	int unexpected;
	struct jc_resp r;
	snprintf(value, sizeof value, "%" PRId64, e);
	snprintf(path, sizeof path, "/v1/kv/%s.e%" PRId64, k->name, e);
	int bl = snprintf(body, sizeof body, "%" PRId64, e);
	jc_hist_event(&g.h, process, "invoke", "add", k->name, value, NULL);
	int rc = jc_http(g.nodes[node], "PUT", path, "If-None-Match: *\r\n", body, (size_t)bl,
			 g.timeout_ms, &r);
	const char *type = write_outcome(rc, &r, &unexpected);
	if (rc == JC_DONE && r.status == 412)
		unexpected = 1; /* each element is added once: it cannot exist yet */
	extra_for(extra, sizeof extra, node, rc, &r);
	if (unexpected)
		jc_log("unexpected answer: add %s on n%d: %d %.200s", path, node + 1, r.status,
		       r.body ? r.body : "");
	jc_hist_event(&g.h, process, type, "add", k->name, value, extra);
	jc_resp_free(&r);
	count(type, unexpected, rc == JC_DONE ? r.status : 0);
	return type;
}

static long fresh_process(void)
{
	pthread_mutex_lock(&g.mu);
	long p = g.next_process++;
	pthread_mutex_unlock(&g.mu);
	return p;
}

struct worker {
	pthread_t t;
	int id;
	long process;
	uint64_t rng;
};

static void one_op(struct worker *w)
{
	int node = (int)jc_randn(&w->rng, (uint64_t)g.n_nodes);
	const char *type;
	if (g.workload == W_SET) {
		pthread_mutex_lock(&g.mu);
		struct key *k = g.slot[jc_randn(&w->rng, (uint64_t)g.keys)];
		int64_t e = ++g.next_value;
		pthread_mutex_unlock(&g.mu);
		type = set_add(w->process, k, e, node);
	} else {
		pthread_mutex_lock(&g.mu);
		struct key *k;
		if (g.workload == W_REGISTER) {
			int s = (int)jc_randn(&w->rng, (uint64_t)g.keys);
			k = g.slot[s];
			if (++k->ops >= g.ops_per_key)
				g.slot[s] = new_register_key();
		} else {
			k = g.keys_all[jc_randn(&w->rng, (uint64_t)g.n_keys_all)];
			k->ops++;
		}
		unsigned dice = (unsigned)jc_randn(&w->rng, 4);
		const char *f = dice < 2 ? "read" : dice == 2 ? "write" : "cas";
		int64_t a = 0, b = 0;
		uint64_t ver = 0;
		if (!strcmp(f, "cas") && !latest(k, &a, &ver))
			f = "write";
		if (!strcmp(f, "cas"))
			b = ++g.next_value;
		else if (!strcmp(f, "write"))
			a = ++g.next_value;
		pthread_mutex_unlock(&g.mu);
		type = reg_op(w->process, k, f, a, b, ver, node, &w->rng);
	}
	if (!strcmp(type, "info"))
		w->process = fresh_process();
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	double mean_ms = g.rate > 0 ? 1000.0 * g.concurrency / g.rate : 0;
	while (!g.stop && jc_mono_ms() < g.t_end) {
		one_op(w);
		if (mean_ms > 0)
			jc_sleep_ms((int64_t)(jc_randn(&w->rng, 1000) * 2 * mean_ms / 1000));
	}
	return NULL;
}

/* Mesh setup: the two listeners (not in the history), then every cluster
 * and route written once (recorded), each retried until it is ok. */
static int mesh_setup(uint64_t *rng)
{
	char edge2[1024], body[1200];
	int64_t deadline = jc_mono_ms() + 1000L * g.final_timeout_s;
	char *ids[64];
	int n = jc_split(g.edge2_nodes, ids, 64), off = 0;
	edge2[0] = 0;
	for (int i = 0; i < n; i++) {
		off += snprintf(edge2 + off, sizeof edge2 - (size_t)off, "%s\"%s\"", i ? "," : "",
				ids[i]);
		free(ids[i]);
	}
	const char *paths[2] = {"/v1/listeners/edge", "/v1/listeners/edge2"};
	for (int l = 0; l < 2; l++) {
		if (l == 0)
			snprintf(body, sizeof body,
				 "{\"address\":\"0.0.0.0\",\"port\":10000,\"nodes\":[\"*\"]}");
		else
			snprintf(body, sizeof body,
				 "{\"address\":\"0.0.0.0\",\"port\":10001,\"nodes\":[%s]}", edge2);
		for (int attempt = 0;; attempt++) {
			struct jc_resp r;
			int rc = jc_http(g.nodes[attempt % g.n_nodes], "PUT", paths[l],
					 "Content-Type: application/json\r\n", body, strlen(body),
					 g.timeout_ms, &r);
			int st = rc == JC_DONE ? r.status : 0;
			jc_resp_free(&r);
			if (st == 200)
				break;
			if (st >= 400 && st < 500) {
				jc_log("mesh setup: PUT %s answered %d", paths[l], st);
				return -1;
			}
			if (g.stop || jc_mono_ms() > deadline) {
				jc_log("mesh setup: could not write %s", paths[l]);
				return -1;
			}
			jc_sleep_ms(300);
		}
	}
	long process = SETUP_PROCESS_BASE;
	for (int i = 0; i < g.n_keys_all; i++) {
		struct key *k = g.keys_all[i];
		for (int attempt = 0;; attempt++) {
			pthread_mutex_lock(&g.mu);
			int64_t v = ++g.next_value;
			pthread_mutex_unlock(&g.mu);
			const char *type = reg_op(process, k, "write", v, 0, 0, attempt % g.n_nodes,
						  rng);
			if (!strcmp(type, "info"))
				process++;
			if (!strcmp(type, "ok"))
				break;
			if (g.stop || jc_mono_ms() > deadline) {
				jc_log("mesh setup: could not write %s", k->name);
				return -1;
			}
			jc_sleep_ms(300);
		}
	}
	return 0;
}

static void init_keys(void)
{
	if (g.workload == W_MESH) {
		for (int kind = 0; kind < 2; kind++)
			for (int i = 0; i < g.keys; i++) {
				char name[64], path[96];
				snprintf(name, sizeof name, "%s.%c%d", kind ? "routes" : "clusters",
					 kind ? 'r' : 'c', i);
				snprintf(path, sizeof path, "/v1/%s/%c%d",
					 kind ? "routes" : "clusters", kind ? 'r' : 'c', i);
				struct key *k = new_key(name, path);
				k->kind = kind;
				k->index = i;
			}
		return;
	}
	g.slot = calloc((size_t)g.keys, sizeof *g.slot);
	for (int i = 0; i < g.keys; i++) {
		if (g.workload == W_REGISTER) {
			g.slot[i] = new_register_key();
		} else {
			char name[32];
			snprintf(name, sizeof name, "set%d", i);
			g.slot[i] = new_key(name, "");
		}
	}
}

static void free_all(void)
{
	for (int i = 0; i < g.n_keys_all; i++)
		free(g.keys_all[i]);
	free(g.keys_all);
	free(g.slot);
	for (int i = 0; i < g.n_nodes; i++)
		free(g.nodes[i]);
}

static void usage_run(void)
{
	fputs("usage: rp-jepsen-client run|final --workload register|set|mesh --nodes IP:PORT,...\n"
	      "         --out FILE [--time S] [--concurrency N] [--keys N] [--ops-per-key N]\n"
	      "         [--rate OPS_PER_S] [--seed N] [--timeout-ms N] [--final-timeout S]\n"
	      "         [--edge2-nodes ID,...]\n",
	      stderr);
	exit(2);
}

static void parse_opts(int argc, char **argv)
{
	const char *workload = NULL, *nodes = NULL;
	g.time_s = 10;
	g.concurrency = 10;
	g.keys = 5;
	g.ops_per_key = 200;
	g.rate = 100;
	g.timeout_ms = 5000;
	g.final_timeout_s = 60;
	g.seed = (uint64_t)jc_now_ns();
	g.edge2_nodes = "sub-1,sub-3,sub-5";
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v)
			usage_run();
		if (!strcmp(a, "--workload"))
			workload = v;
		else if (!strcmp(a, "--nodes"))
			nodes = v;
		else if (!strcmp(a, "--out"))
			g.out = v;
		else if (!strcmp(a, "--time"))
			g.time_s = atoi(v);
		else if (!strcmp(a, "--concurrency"))
			g.concurrency = atoi(v);
		else if (!strcmp(a, "--keys"))
			g.keys = atoi(v);
		else if (!strcmp(a, "--ops-per-key"))
			g.ops_per_key = atoi(v);
		else if (!strcmp(a, "--rate"))
			g.rate = atof(v);
		else if (!strcmp(a, "--seed"))
			g.seed = strtoull(v, NULL, 10);
		else if (!strcmp(a, "--timeout-ms"))
			g.timeout_ms = atoi(v);
		else if (!strcmp(a, "--final-timeout"))
			g.final_timeout_s = atoi(v);
		else if (!strcmp(a, "--edge2-nodes"))
			g.edge2_nodes = v;
		else
			usage_run();
		i++;
	}
	if (!workload || !nodes || !g.out)
		usage_run();
	if (!strcmp(workload, "register"))
		g.workload = W_REGISTER;
	else if (!strcmp(workload, "set"))
		g.workload = W_SET;
	else if (!strcmp(workload, "mesh"))
		g.workload = W_MESH;
	else
		jc_die("unknown workload %s", workload);
	g.n_nodes = jc_split(nodes, g.nodes, MAX_NODES);
	if (g.n_nodes < 1 || g.concurrency < 1 || g.concurrency > 1000 || g.keys < 1 ||
	    g.keys > 1000 || g.ops_per_key < 1 || g.timeout_ms < 100)
		jc_die("bad options (see --help)");
	pthread_mutex_init(&g.mu, NULL);
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

int cmd_run(int argc, char **argv)
{
	parse_opts(argc, argv);
	if (jc_hist_open(&g.h, g.out, 1) != 0)
		jc_die("cannot open %s", g.out);
	uint64_t rng = g.seed ^ 0x5bd1e995u;
	g.next_process = g.concurrency;
	g.next_value = 0;
	init_keys();
	int64_t t0 = jc_mono_ms();
	if (g.workload == W_MESH && mesh_setup(&rng) != 0) {
		jc_hist_close(&g.h);
		free_all();
		return 1;
	}
	g.t_end = t0 + 1000L * g.time_s;
	struct worker *w = calloc((size_t)g.concurrency, sizeof *w);
	for (int i = 0; i < g.concurrency; i++) {
		w[i].id = i;
		w[i].process = i;
		w[i].rng = g.seed * 2654435761u + (uint64_t)i * 0x9e3779b97f4a7c15ull + 1;
		if (pthread_create(&w[i].t, NULL, worker_main, &w[i]) != 0)
			jc_die("pthread_create failed");
	}
	for (int i = 0; i < g.concurrency; i++)
		pthread_join(w[i].t, NULL);
	free(w);
	jc_hist_close(&g.h);
	printf("{\"ok\":%ld,\"fail\":%ld,\"info\":%ld,\"unexpected\":%ld,\"unauthenticated\":%ld,"
	       "\"keys\":%d,\"seconds\":%.1f}\n",
	       g.n_ok, g.n_fail, g.n_info, g.n_unexpected, g.n_unauth, g.n_keys_all,
	       (double)(jc_mono_ms() - t0) / 1000.0);
	free_all();
	return 0;
}

/* ---- final reads ---------------------------------------------------------- */

/* GET @path (linearizable), retried over the nodes until ok or the deadline.
 * Returns the parsed JSON and the invocation time, or NULL. */
static json_t *final_get(const char *path, int64_t deadline, int64_t *t_invoke)
{
	for (int attempt = 0;; attempt++) {
		int node = attempt % g.n_nodes;
		struct jc_resp r;
		int64_t t = jc_now_ns();
		int rc = jc_http(g.nodes[node], "GET", path, NULL, NULL, 0, g.timeout_ms, &r);
		if (rc == JC_DONE && r.status == 200) {
			json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
			jc_resp_free(&r);
			if (j) {
				*t_invoke = t;
				return j;
			}
		} else {
			jc_log("final read %s on n%d: %s", path, node + 1,
			       rc == JC_DONE ? (r.code[0] ? r.code : "http error") : r.why);
			jc_resp_free(&r);
		}
		if (g.stop || jc_mono_ms() > deadline)
			return NULL;
		jc_sleep_ms(500);
	}
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* Record one ok read per item of a list answer (the list is one
 * linearizable snapshot, so every key was read within [t_inv, now]). */
static int final_register(const char *path, const char *prefix, const char *field, long *process,
			  int64_t deadline)
{
	int64_t t_inv;
	json_t *j = final_get(path, deadline, &t_inv);
	if (!j)
		return -1;
	int64_t t_done = jc_now_ns();
	json_t *items = json_object_get(j, "items");
	size_t i;
	json_t *it;
	long p0 = *process;
	int bad = 0;
	json_array_foreach(items, i, it)
	{
		const char *name = json_string_value(json_object_get(it, field ? "name" : "key"));
		if (!name)
			continue;
		char key[160];
		snprintf(key, sizeof key, "%s%s", prefix, name);
		jc_hist_event_at(&g.h, t_inv, (*process)++, "invoke", "read", key, "null", NULL);
	}
	*process = p0;
	json_array_foreach(items, i, it)
	{
		const char *name = json_string_value(json_object_get(it, field ? "name" : "key"));
		if (!name)
			continue;
		char key[160], value[32];
		json_t *v = field ? json_object_get(it, field) : NULL;
		if (field) {
			if (!json_is_integer(v))
				snprintf(value, sizeof value, "null");
			else
				snprintf(value, sizeof value, "%" JSON_INTEGER_FORMAT,
					 json_integer_value(v));
		} else {
			const char *s = json_string_value(json_object_get(it, "value"));
			char *end = NULL;
			long long x = s ? strtoll(s, &end, 10) : 0;
			if (!s || !*s || *end) {
				jc_log("final read: %s%s has no integer value", prefix, name);
				bad = 1;
				snprintf(key, sizeof key, "%s%s", prefix, name);
				jc_hist_event_at(&g.h, t_done, (*process)++, "fail", "read", key,
						 "null", ",\"final\":true");
				continue;
			}
			snprintf(value, sizeof value, "%lld", x);
		}
		snprintf(key, sizeof key, "%s%s", prefix, name);
		jc_hist_event_at(&g.h, t_done, (*process)++, "ok", "read", key, value,
				 ",\"final\":true");
	}
	json_decref(j);
	return bad;
}

static int final_set(long *process, int64_t deadline)
{
	int64_t t_inv;
	json_t *j = final_get("/v1/kv?prefix=set", deadline, &t_inv);
	if (!j)
		return -1;
	int64_t t_done = jc_now_ns();
	json_t *items = json_object_get(j, "items");
	int rc = 0;
	for (int s = 0; s < g.keys; s++) {
		char name[32], pfx[40];
		snprintf(name, sizeof name, "set%d", s);
		int pl = snprintf(pfx, sizeof pfx, "set%d.e", s);
		size_t n = json_array_size(items), m = 0, i;
		int64_t *els = calloc(n + 1, sizeof *els);
		json_t *it;
		json_array_foreach(items, i, it)
		{
			const char *k = json_string_value(json_object_get(it, "key"));
			const char *v = json_string_value(json_object_get(it, "value"));
			if (!k || strncmp(k, pfx, (size_t)pl))
				continue;
			char *end;
			long long e = strtoll(k + pl, &end, 10);
			if (*end || !v || strtoll(v, NULL, 10) != e) {
				jc_log("final read: set item %s has value %s", k, v ? v : "(none)");
				rc = 1;
			}
			els[m++] = e;
		}
		qsort(els, m, sizeof *els, cmp_i64);
		size_t cap = 16 + m * 21, off = 0;
		char *val = malloc(cap);
		off += (size_t)snprintf(val + off, cap - off, "[");
		for (size_t x = 0; x < m; x++)
			off += (size_t)snprintf(val + off, cap - off, "%s%" PRId64, x ? "," : "",
						els[x]);
		snprintf(val + off, cap - off, "]");
		jc_hist_event_at(&g.h, t_inv, *process, "invoke", "final-read", name, "null", NULL);
		jc_hist_event_at(&g.h, t_done, *process, "ok", "final-read", name, val, NULL);
		(*process)++;
		free(val);
		free(els);
	}
	json_decref(j);
	return rc;
}

int cmd_final(int argc, char **argv)
{
	parse_opts(argc, argv);
	if (jc_hist_open(&g.h, g.out, 1) != 0)
		jc_die("cannot open %s", g.out);
	int64_t deadline = jc_mono_ms() + 1000L * g.final_timeout_s;
	long process = FINAL_PROCESS_BASE;
	int rc;
	if (g.workload == W_REGISTER)
		rc = final_register("/v1/kv?prefix=k", "", NULL, &process, deadline);
	else if (g.workload == W_SET)
		rc = final_set(&process, deadline);
	else {
		rc = final_register("/v1/clusters", "clusters.", "connect_timeout_ms", &process,
				    deadline);
		if (rc == 0)
			rc = final_register("/v1/routes", "routes.", "timeout_ms", &process,
					    deadline);
	}
	jc_hist_close(&g.h);
	if (rc < 0)
		fprintf(stderr, "rp-jepsen-client: final reads did not succeed in %d s\n",
			g.final_timeout_s);
	printf("{\"final_reads\":%ld,\"ok\":%s}\n", process - FINAL_PROCESS_BASE,
	       rc == 0 ? "true" : "false");
	free_all();
	return rc == 0 ? 0 : 1;
}
