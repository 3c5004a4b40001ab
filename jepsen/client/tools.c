/* Small tools for the shell side of the suite: raw requests, leader and
 * member lookup, readiness and convergence waits, history merge and
 * summary, and the subscriber check. */
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "jc.h"

#define MAX_NODES 16

static json_t *get_json(const char *addr, const char *path, int timeout_ms, int *status)
{
	struct jc_resp r;
	int rc = jc_http(addr, "GET", path, NULL, NULL, 0, timeout_ms, &r);
	json_t *j = NULL;
	*status = rc == JC_DONE ? r.status : -1;
	if (rc == JC_DONE)
		j = json_loadb(r.body, r.body_len, 0, NULL);
	jc_resp_free(&r);
	return j;
}

static void free_split(char **v, int n)
{
	for (int i = 0; i < n; i++)
		free(v[i]);
}

/* http METHOD ADDR PATH [BODY] [--timeout-ms N] [--header "Name: v"]
 * prints "STATUS\nBODY"; exit 0 answered, 3 not sent, 4 unknown outcome. */
int cmd_http(int argc, char **argv)
{
	const char *pos[4] = {0};
	int npos = 0, timeout = 5000;
	char headers[1024] = "";
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--timeout-ms") && i + 1 < argc) {
			timeout = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--header") && i + 1 < argc) {
			strncat(headers, argv[++i], sizeof headers - strlen(headers) - 3);
			strcat(headers, "\r\n");
		} else if (npos < 4) {
			pos[npos++] = argv[i];
		}
	}
	if (npos < 3)
		jc_die("usage: http METHOD ADDR PATH [BODY] [--timeout-ms N] [--header H]");
	if (pos[3])
		strncat(headers, "Content-Type: application/json\r\n",
			sizeof headers - strlen(headers) - 1);
	struct jc_resp r;
	int rc = jc_http(pos[1], pos[0], pos[2], headers, pos[3], pos[3] ? strlen(pos[3]) : 0,
			 timeout, &r);
	if (rc == JC_DONE) {
		printf("%d\n%s", r.status, r.body ? r.body : "");
		if (r.body_len && r.body[r.body_len - 1] != '\n')
			putchar('\n');
	} else {
		printf("%s\n%s\n", rc == JC_NOT_SENT ? "000" : "999", r.why);
	}
	jc_resp_free(&r);
	return rc == JC_DONE ? 0 : rc == JC_NOT_SENT ? 3 : 4;
}

struct status {
	int ok;
	long id, leader;
	int ready, leader_ready;
	long long term, revision, commit, applied;
	char leader_http[64];
};

static void get_status(const char *addr, int timeout_ms, struct status *s)
{
	int st;
	memset(s, 0, sizeof *s);
	json_t *j = get_json(addr, "/v1/status", timeout_ms, &st);
	if (st == 200 && json_is_object(j)) {
		s->ok = 1;
		s->id = (long)json_integer_value(json_object_get(j, "id"));
		json_t *l = json_object_get(j, "leader");
		if (json_is_object(l)) {
			s->leader = (long)json_integer_value(json_object_get(l, "id"));
			const char *h = json_string_value(json_object_get(l, "http"));
			snprintf(s->leader_http, sizeof s->leader_http, "%s", h ? h : "");
		}
		s->leader_ready = json_is_true(json_object_get(j, "leader_ready"));
		s->term = json_integer_value(json_object_get(j, "term"));
		s->revision = json_integer_value(json_object_get(j, "revision"));
		s->commit = json_integer_value(json_object_get(j, "commit_index"));
		s->applied = json_integer_value(json_object_get(j, "applied_index"));
	}
	json_decref(j);
}

/* leader ADDR,... : print "ID HTTP" of the ready leader with the highest
 * term (a stale leader in a minority may still call itself leader). */
int cmd_leader(int argc, char **argv)
{
	char *nodes[MAX_NODES];
	if (argc < 2)
		jc_die("usage: leader ADDR,...");
	int n = jc_split(argv[1], nodes, MAX_NODES), best = -1;
	struct status s[MAX_NODES];
	for (int i = 0; i < n; i++) {
		get_status(nodes[i], 1000, &s[i]);
		if (s[i].ok && s[i].leader_ready && (best < 0 || s[i].term > s[best].term))
			best = i;
	}
	if (best >= 0)
		printf("%ld %s\n", s[best].id, nodes[best]);
	free_split(nodes, n);
	return best < 0;
}

/* status ADDR: "ID STATE TERM COMMIT LAST APPLIED LEADER_READY LEADER_ID" */
int cmd_status(int argc, char **argv)
{
	int st;
	if (argc < 2)
		jc_die("usage: status ADDR");
	json_t *j = get_json(argv[1], "/v1/status", 2000, &st);
	if (st != 200 || !json_is_object(j)) {
		json_decref(j);
		return 1;
	}
	const char *state = json_string_value(json_object_get(j, "state"));
	json_t *l = json_object_get(j, "leader");
	printf("%" JSON_INTEGER_FORMAT " %s %" JSON_INTEGER_FORMAT " %" JSON_INTEGER_FORMAT
	       " %" JSON_INTEGER_FORMAT " %" JSON_INTEGER_FORMAT " %d %" JSON_INTEGER_FORMAT "\n",
	       json_integer_value(json_object_get(j, "id")), state ? state : "?",
	       json_integer_value(json_object_get(j, "term")),
	       json_integer_value(json_object_get(j, "commit_index")),
	       json_integer_value(json_object_get(j, "last_index")),
	       json_integer_value(json_object_get(j, "applied_index")),
	       json_is_true(json_object_get(j, "leader_ready")),
	       json_is_object(l) ? json_integer_value(json_object_get(l, "id")) : 0);
	json_decref(j);
	return 0;
}

/* members ADDR: "ID ROLE HTTP" lines */
int cmd_members(int argc, char **argv)
{
	int st;
	if (argc < 2)
		jc_die("usage: members ADDR");
	json_t *j = get_json(argv[1], "/v1/members", 2000, &st);
	if (st != 200 || !j) {
		json_decref(j);
		return 1;
	}
	size_t i;
	json_t *m;
	json_array_foreach(json_object_get(j, "members"), i, m)
	{
		const char *role = json_string_value(json_object_get(m, "role"));
		const char *http = json_string_value(json_object_get(m, "http"));
		printf("%" JSON_INTEGER_FORMAT " %s %s\n",
		       json_integer_value(json_object_get(m, "id")), role ? role : "?",
		       http && *http ? http : "-");
	}
	json_decref(j);
	return 0;
}

/* wait-ready ADDR,... TIMEOUT_S: a ready leader that every listed node
 * knows, and /readyz 200 on each. */
int cmd_wait_ready(int argc, char **argv)
{
	char *nodes[MAX_NODES];
	if (argc < 3)
		jc_die("usage: wait-ready ADDR,... TIMEOUT_S");
	int n = jc_split(argv[1], nodes, MAX_NODES);
	int64_t deadline = jc_mono_ms() + 1000L * atoi(argv[2]);
	char last[256] = "nothing tried";
	for (;;) {
		struct status s[MAX_NODES];
		long lead = -1;
		long long term = -1;
		for (int i = 0; i < n; i++) {
			get_status(nodes[i], 1000, &s[i]);
			if (s[i].ok && s[i].leader_ready && s[i].term > term)
				lead = s[i].id, term = s[i].term;
		}
		int ok = lead > 0;
		if (!ok)
			snprintf(last, sizeof last, "no ready leader");
		for (int i = 0; ok && i < n; i++) {
			if (!s[i].ok || s[i].leader != lead) {
				snprintf(last, sizeof last, "%s does not know leader %ld", nodes[i],
					 lead);
				ok = 0;
				break;
			}
			struct jc_resp r;
			int rc = jc_http(nodes[i], "GET", "/readyz", NULL, NULL, 0, 1000, &r);
			if (rc != JC_DONE || r.status != 200) {
				snprintf(last, sizeof last, "%s not ready", nodes[i]);
				ok = 0;
			}
			jc_resp_free(&r);
		}
		if (ok) {
			printf("%ld\n", lead);
			free_split(nodes, n);
			return 0;
		}
		if (jc_mono_ms() > deadline) {
			fprintf(stderr, "wait-ready: %s\n", last);
			free_split(nodes, n);
			return 1;
		}
		jc_sleep_ms(200);
	}
}

/* converge ADDR,... TIMEOUT_S: wait until every node has applied the same
 * revision, then compare each node's local (stale) view of all data. */
int cmd_converge(int argc, char **argv)
{
	char *nodes[MAX_NODES];
	if (argc < 3)
		jc_die("usage: converge ADDR,... TIMEOUT_S");
	int n = jc_split(argv[1], nodes, MAX_NODES);
	int64_t deadline = jc_mono_ms() + 1000L * atoi(argv[2]);
	struct status s[MAX_NODES];
	for (;;) {
		int same = 1;
		for (int i = 0; i < n; i++) {
			get_status(nodes[i], 1000, &s[i]);
			if (!s[i].ok || s[i].applied < s[i].commit ||
			    s[i].revision != s[0].revision)
				same = 0;
		}
		if (same)
			break;
		if (jc_mono_ms() > deadline) {
			printf("replicas did not converge in %s s:", argv[2]);
			for (int i = 0; i < n; i++)
				printf(" %s:%s", nodes[i], s[i].ok ? "" : "unreachable");
			for (int i = 0; i < n; i++)
				if (s[i].ok)
					printf(" [n%d rev %lld commit %lld applied %lld]", i + 1,
					       s[i].revision, s[i].commit, s[i].applied);
			printf("\n");
			free_split(nodes, n);
			return 1;
		}
		jc_sleep_ms(250);
	}
	static const char *paths[] = {"/v1/kv?consistency=stale", "/v1/clusters?consistency=stale",
				      "/v1/routes?consistency=stale",
				      "/v1/listeners?consistency=stale", "/v1/members"};
	int bad = 0;
	for (size_t p = 0; p < sizeof paths / sizeof *paths; p++) {
		char *first = NULL;
		for (int i = 0; i < n; i++) {
			struct jc_resp r;
			int rc = jc_http(nodes[i], "GET", paths[p], NULL, NULL, 0, 10000, &r);
			if (rc != JC_DONE || r.status != 200) {
				printf("n%d: GET %s failed\n", i + 1, paths[p]);
				bad = 1;
			} else if (!first) {
				first = strdup(r.body);
			} else if (strcmp(first, r.body) != 0) {
				printf("n%d differs from n1 on GET %s (n1 %zu bytes, n%d %zu "
				       "bytes)\n",
				       i + 1, paths[p], strlen(first), i + 1, r.body_len);
				bad = 1;
			}
			jc_resp_free(&r);
		}
		free(first);
	}
	if (!bad)
		printf("replicas converged: %d nodes at revision %lld, identical data\n", n,
		       s[0].revision);
	free_split(nodes, n);
	return bad;
}

/* ---- merge and summary --------------------------------------------------- */

struct src {
	FILE *f;
	char *line;
	size_t cap;
	long long t;
	int eof;
};

static void advance(struct src *s)
{
	ssize_t k;
	for (;;) {
		k = getline(&s->line, &s->cap, s->f);
		if (k < 0) {
			s->eof = 1;
			return;
		}
		if (k > 1)
			break;
	}
	const char *p = strstr(s->line, "\"time\":");
	s->t = p ? strtoll(p + 7, NULL, 10) : 0;
}

/* merge OUT IN...: merge time-sorted JSON-lines files by "time", numbering
 * the events with "index". */
int cmd_merge(int argc, char **argv)
{
	if (argc < 3)
		jc_die("usage: merge OUT IN...");
	int n = argc - 2;
	struct src *s = calloc((size_t)n, sizeof *s);
	FILE *out = fopen(argv[1], "w");
	if (!out)
		jc_die("cannot write %s", argv[1]);
	for (int i = 0; i < n; i++) {
		s[i].f = fopen(argv[i + 2], "r");
		if (!s[i].f) {
			s[i].eof = 1;
			continue;
		}
		advance(&s[i]);
	}
	long index = 0;
	for (;;) {
		int b = -1;
		for (int i = 0; i < n; i++)
			if (!s[i].eof && (b < 0 || s[i].t < s[b].t))
				b = i;
		if (b < 0)
			break;
		char *l = s[b].line;
		while (*l == ' ')
			l++;
		if (*l == '{')
			fprintf(out, "{\"index\":%ld,%s", index++, l + 1);
		advance(&s[b]);
	}
	for (int i = 0; i < n; i++) {
		if (s[i].f)
			fclose(s[i].f);
		free(s[i].line);
	}
	free(s);
	fclose(out);
	return 0;
}

struct fcount {
	char f[32];
	long invoke, ok, fail, info;
};

/* summary HISTORY: ops per f and completion type; invocations that never
 * completed are counted as info. */
int cmd_summary(int argc, char **argv)
{
	if (argc < 2)
		jc_die("usage: summary HISTORY");
	FILE *in = fopen(argv[1], "r");
	if (!in)
		jc_die("cannot read %s", argv[1]);
	struct fcount fc[16];
	int nf = 0;
	long nemesis = 0, lines = 0;
	char *line = NULL;
	size_t cap = 0;
	while (getline(&line, &cap, in) > 0) {
		json_t *j = json_loads(line, 0, NULL);
		if (!j)
			continue;
		lines++;
		const char *type = json_string_value(json_object_get(j, "type"));
		const char *f = json_string_value(json_object_get(j, "f"));
		if (json_is_string(json_object_get(j, "process"))) {
			nemesis++;
		} else if (type && f) {
			int k;
			for (k = 0; k < nf; k++)
				if (!strcmp(fc[k].f, f))
					break;
			if (k == nf && nf < 16) {
				memset(&fc[nf], 0, sizeof fc[nf]);
				snprintf(fc[nf].f, sizeof fc[nf].f, "%s", f);
				nf++;
			}
			if (k < nf) {
				if (!strcmp(type, "invoke"))
					fc[k].invoke++;
				else if (!strcmp(type, "ok"))
					fc[k].ok++;
				else if (!strcmp(type, "fail"))
					fc[k].fail++;
				else
					fc[k].info++;
			}
		}
		json_decref(j);
	}
	free(line);
	fclose(in);
	long tot[4] = {0};
	for (int k = 0; k < nf; k++) {
		long pending = fc[k].invoke - fc[k].ok - fc[k].fail - fc[k].info;
		printf("  %-11s %7ld ops: %7ld ok %7ld fail %7ld info", fc[k].f, fc[k].invoke,
		       fc[k].ok, fc[k].fail, fc[k].info + pending);
		if (pending)
			printf(" (%ld never completed)", pending);
		printf("\n");
		tot[0] += fc[k].invoke, tot[1] += fc[k].ok, tot[2] += fc[k].fail;
		tot[3] += fc[k].info + pending;
	}
	printf("  %-11s %7ld ops: %7ld ok %7ld fail %7ld info\n", "total", tot[0], tot[1], tot[2],
	       tot[3]);
	printf("  (%ld history lines, %ld nemesis events)\n", lines, nemesis);
	return 0;
}

/* ---- subscribers ------------------------------------------------------------ */

struct sub {
	char node[64];
	long long last_version;
	json_t *last; /* last snapshot line */
	long snapshots;
	int backwards;
};

struct seen { /* (scope, version) -> names, to compare subscribers */
	char scope[16];
	long long version;
	char *names;
	char node[64];
};

static int in_nodes(json_t *nodes, const char *id)
{
	size_t i;
	json_t *v;
	json_array_foreach(nodes, i, v)
	{
		const char *s = json_string_value(v);
		if (s && (!strcmp(s, "*") || !strcmp(s, id)))
			return 1;
	}
	return 0;
}

static int has_name(json_t *arr, const char *name)
{
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v) if (!strcmp(json_string_value(v) ? json_string_value(v) : "",
						  name)) return 1;
	return 0;
}

static void add_name(json_t *arr, const char *name)
{
	if (!has_name(arr, name))
		json_array_append_new(arr, json_string(name));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(json_string_value(*(json_t *const *)a),
		      json_string_value(*(json_t *const *)b));
}

static void sort_names(json_t *arr)
{
	size_t n = json_array_size(arr);
	json_t **v = calloc(n + 1, sizeof *v);
	for (size_t i = 0; i < n; i++)
		v[i] = json_incref(json_array_get(arr, i));
	qsort(v, n, sizeof *v, cmp_str);
	json_array_clear(arr);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, v[i]);
	free(v);
}

/* The snapshot a node should hold in the final state: names and version. */
static long long expected_for(const char *node, json_t *ls, json_t *rs, json_t *cs, char **names)
{
	json_t *L = json_array(), *R = json_array(), *C = json_array();
	long long v = 0;
	size_t i, k;
	json_t *it, *w;
	json_array_foreach(ls, i, it) if (in_nodes(json_object_get(it, "nodes"), node))
	{
		add_name(L, json_string_value(json_object_get(it, "name")));
		long long iv = json_integer_value(json_object_get(it, "version"));
		v = iv > v ? iv : v;
	}
	json_array_foreach(rs, i, it)
	{
		const char *l = json_string_value(json_object_get(it, "listener"));
		if (!l || !has_name(L, l))
			continue;
		add_name(R, json_string_value(json_object_get(it, "name")));
		long long iv = json_integer_value(json_object_get(it, "version"));
		v = iv > v ? iv : v;
		const char *c = json_string_value(json_object_get(it, "cluster"));
		if (c)
			add_name(C, c);
		json_array_foreach(json_object_get(it, "weighted_clusters"), k, w)
			add_name(C, json_string_value(json_object_get(w, "cluster")));
	}
	json_array_foreach(cs, i,
			   it) if (has_name(C, json_string_value(json_object_get(it, "name"))))
	{
		long long iv = json_integer_value(json_object_get(it, "version"));
		v = iv > v ? iv : v;
	}
	sort_names(L);
	sort_names(R);
	sort_names(C);
	json_t *o = json_pack("{s:o,s:o,s:o}", "listeners", L, "routes", R, "clusters", C);
	*names = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return v;
}

static json_t *sorted_line_names(json_t *line)
{
	json_t *o = json_object();
	const char *f[] = {"listeners", "routes", "clusters"};
	for (int i = 0; i < 3; i++) {
		json_t *a = json_deep_copy(json_object_get(line, f[i]));
		if (!a)
			a = json_array();
		sort_names(a);
		json_object_set_new(o, f[i], a);
	}
	return o;
}

/* check-subs ADDR,... TIMEOUT_S FILE...: every subscriber's versions only
 * grow; subscribers of the same scope saw the same names at the same
 * version; and within TIMEOUT_S every subscriber holds the final state
 * computed from linearizable lists (version and names). */
int cmd_check_subs(int argc, char **argv)
{
	char *nodes[MAX_NODES];
	if (argc < 4)
		jc_die("usage: check-subs ADDR,... TIMEOUT_S FILE...");
	int n = jc_split(argv[1], nodes, MAX_NODES);
	int64_t deadline = jc_mono_ms() + 1000L * atoi(argv[2]);
	json_t *lists[3] = {0};
	static const char *lp[3] = {"/v1/listeners", "/v1/routes", "/v1/clusters"};
	for (int attempt = 0; !lists[2]; attempt++) {
		int ok = 1;
		for (int k = 0; k < 3 && ok; k++) {
			int st;
			json_decref(lists[k]);
			lists[k] = get_json(nodes[attempt % n], lp[k], 5000, &st);
			if (st != 200 || !lists[k]) {
				json_decref(lists[k]);
				lists[k] = NULL;
				ok = 0;
			}
		}
		if (!ok) {
			for (int k = 0; k < 3; k++) {
				json_decref(lists[k]);
				lists[k] = NULL;
			}
			if (jc_mono_ms() > deadline) {
				printf("subscribers: could not read the mesh lists\n");
				free_split(nodes, n);
				return 1;
			}
			jc_sleep_ms(500);
		}
	}
	json_t *ls = json_object_get(lists[0], "items"), *rs = json_object_get(lists[1], "items"),
	       *cs = json_object_get(lists[2], "items");
	int bad = 0;
	struct sub subs[512];
	int ns;
	for (;;) {
		ns = 0;
		struct seen *seen = NULL;
		size_t nseen = 0;
		int inconsistent = 0, backwards = 0;
		for (int a = 3; a < argc; a++) {
			FILE *f = fopen(argv[a], "r");
			if (!f)
				continue;
			char *line = NULL;
			size_t cap = 0;
			while (getline(&line, &cap, f) > 0) {
				json_t *j = json_loads(line, 0, NULL);
				const char *node = json_string_value(json_object_get(j, "node"));
				json_t *ver = json_object_get(j, "version");
				if (!node || !json_is_integer(ver)) {
					json_decref(j);
					continue;
				}
				long long v = json_integer_value(ver);
				int s;
				for (s = 0; s < ns; s++)
					if (!strcmp(subs[s].node, node))
						break;
				if (s == ns && ns < 512) {
					memset(&subs[ns], 0, sizeof subs[ns]);
					snprintf(subs[ns].node, sizeof subs[ns].node, "%s", node);
					subs[ns].last_version = -1;
					ns++;
				}
				if (s == ns) {
					json_decref(j);
					continue;
				}
				if (v <= subs[s].last_version) {
					static int said;
					if (!said++)
						printf("subscriber %s: version %lld after %lld\n",
						       node, v, subs[s].last_version);
					subs[s].backwards = 1;
					backwards = 1;
				}
				subs[s].last_version = v;
				subs[s].snapshots++;
				json_decref(subs[s].last);
				subs[s].last = json_incref(j);
				/* scope: which listeners name this node */
				char scope[16] = "";
				size_t i;
				json_t *it;
				json_array_foreach(ls, i, it) if (i + 1 < sizeof scope)
					strcat(scope, in_nodes(json_object_get(it, "nodes"), node)
							      ? "1"
							      : "0");
				json_t *sn = sorted_line_names(j);
				char *names = json_dumps(sn, JSON_COMPACT | JSON_SORT_KEYS);
				json_decref(sn);
				size_t q;
				for (q = 0; q < nseen; q++)
					if (seen[q].version == v && !strcmp(seen[q].scope, scope))
						break;
				if (q == nseen) {
					seen = realloc(seen, (nseen + 1) * sizeof *seen);
					snprintf(seen[q].scope, sizeof seen[q].scope, "%s", scope);
					seen[q].version = v;
					seen[q].names = names;
					snprintf(seen[q].node, sizeof seen[q].node, "%s", node);
					nseen++;
				} else {
					static int said;
					if (strcmp(seen[q].names, names) != 0 && !inconsistent) {
						if (!said++)
							printf("version %lld: %s got %s but %s got "
							       "%s\n",
							       v, node, names, seen[q].node,
							       seen[q].names);
						inconsistent = 1;
					}
					free(names);
				}
				json_decref(j);
			}
			free(line);
			fclose(f);
		}
		for (size_t q = 0; q < nseen; q++)
			free(seen[q].names);
		free(seen);
		/* final state */
		int converged = ns > 0;
		for (int s = 0; s < ns; s++) {
			char *exp_names;
			long long ev = expected_for(subs[s].node, ls, rs, cs, &exp_names);
			json_t *sn = sorted_line_names(subs[s].last);
			char *got = json_dumps(sn, JSON_COMPACT | JSON_SORT_KEYS);
			json_decref(sn);
			if (subs[s].last_version != ev || strcmp(got, exp_names) != 0) {
				converged = 0;
				if (jc_mono_ms() > deadline)
					printf("subscriber %s: holds version %lld %s, expected "
					       "%lld %s\n",
					       subs[s].node, subs[s].last_version, got, ev,
					       exp_names);
			}
			free(got);
			free(exp_names);
		}
		bad = backwards || inconsistent;
		if (converged || jc_mono_ms() > deadline) {
			if (!converged) {
				if (!ns)
					printf("no subscriber output\n");
				bad = 1;
			}
			break;
		}
		for (int s = 0; s < ns; s++)
			json_decref(subs[s].last);
		jc_sleep_ms(500);
	}
	long snaps = 0;
	for (int s = 0; s < ns; s++) {
		snaps += subs[s].snapshots;
		json_decref(subs[s].last);
	}
	printf("subscribers: %d subscribers, %ld snapshots; %s\n", ns, snaps,
	       bad ? "FAILED" : "versions only grew, same version = same content, all converged");
	for (int k = 0; k < 3; k++)
		json_decref(lists[k]);
	free_split(nodes, n);
	return bad;
}
