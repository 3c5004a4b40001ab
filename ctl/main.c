/* raftplanectl: commands other than apply/diff, global flags, output. */
#include "ctl.h"

#include <errno.h>
#include <getopt.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- output -------------------------------------------------------------- */

char *ctl_pretty(json_t *v)
{
	return json_dumps(v, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}

static int yaml_plain_ok(const char *s)
{
	if (!*s)
		return 0;
	static const char *reserved[] = {"true", "false", "null", "yes", "no", "on", "off", "~"};
	for (size_t i = 0; i < sizeof reserved / sizeof *reserved; i++)
		if (strcasecmp(s, reserved[i]) == 0)
			return 0;
	if (strchr("-?:,[]{}#&*!|>'\"%@` 0123456789.+", s[0]))
		return 0;
	for (const char *p = s; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c < 0x20 || c >= 0x7f || c == ':' || c == '#' || c == '"' || c == '\'')
			return 0;
	}
	return s[strlen(s) - 1] != ' ';
}

static void yaml_scalar(FILE *f, json_t *v)
{
	if (json_is_string(v) && yaml_plain_ok(json_string_value(v))) {
		fputs(json_string_value(v), f);
		return;
	}
	/* a JSON scalar is a valid YAML flow scalar */
	char *s = json_dumps(v, JSON_ENCODE_ANY);
	fputs(s ? s : "null", f);
	free(s);
}

static int yaml_is_scalar(json_t *v)
{
	return !(json_is_object(v) && json_object_size(v)) &&
	       !(json_is_array(v) && json_array_size(v));
}

/* What follows "key:" or "-": a scalar (or an empty mapping or list) on the
 * same line, else a nested block on the next lines. */
static void yaml_item(FILE *f, json_t *c, int indent)
{
	if (!yaml_is_scalar(c)) {
		fputc('\n', f);
		ctl_yaml_emit(f, c, indent + 2);
		return;
	}
	fputc(' ', f);
	if (json_is_object(c))
		fputs("{}", f);
	else if (json_is_array(c))
		fputs("[]", f);
	else
		yaml_scalar(f, c);
	fputc('\n', f);
}

void ctl_yaml_emit(FILE *f, json_t *v, int indent)
{
	if (json_is_object(v) && json_object_size(v)) {
		void *it;
		const char **keys = malloc(json_object_size(v) * sizeof *keys);
		size_t n = 0;
		for (it = json_object_iter(v); it; it = json_object_iter_next(v, it))
			keys[n++] = json_object_iter_key(it);
		/* stable order */
		for (size_t i = 1; i < n; i++)
			for (size_t j = i; j > 0 && strcmp(keys[j - 1], keys[j]) > 0; j--) {
				const char *t = keys[j];
				keys[j] = keys[j - 1];
				keys[j - 1] = t;
			}
		for (size_t i = 0; i < n; i++) {
			json_t *c = json_object_get(v, keys[i]);
			fprintf(f, "%*s", indent, "");
			json_t *k = json_string(keys[i]);
			yaml_scalar(f, k);
			json_decref(k);
			fputc(':', f);
			yaml_item(f, c, indent);
		}
		free(keys);
	} else if (json_is_array(v) && json_array_size(v)) {
		size_t i;
		json_t *c;
		json_array_foreach(v, i, c)
		{
			fprintf(f, "%*s-", indent, "");
			yaml_item(f, c, indent);
		}
	} else {
		fprintf(f, "%*s", indent, "");
		if (json_is_object(v))
			fputs("{}", f);
		else if (json_is_array(v))
			fputs("[]", f);
		else
			yaml_scalar(f, v);
		fputc('\n', f);
	}
}

void ctl_print_value(json_t *v)
{
	if (g_opts.out == CTL_OUT_YAML) {
		ctl_yaml_emit(stdout, v, 0);
		return;
	}
	char *s = ctl_pretty(v);
	puts(s ? s : "null");
	free(s);
}

json_t *ctl_json_body(const struct ctl_resp *r)
{
	if (!r->body)
		return NULL;
	return json_loadb(r->body, r->len, 0, NULL);
}

int ctl_exit_for_status(long status)
{
	if (status >= 200 && status < 300)
		return CTL_OK;
	if (status == 409 || status == 412)
		return CTL_EXIT_CONFLICT;
	if (status == 404)
		return CTL_EXIT_NOT_FOUND;
	if (status == 503)
		return CTL_EXIT_UNAVAILABLE;
	return CTL_EXIT_FAIL;
}

int ctl_http_error(const struct ctl_resp *r, const char *what)
{
	json_t *j = ctl_json_body(r);
	json_t *e = json_object_get(j, "error");
	const char *code = json_string_value(json_object_get(e, "code"));
	const char *msg = json_string_value(json_object_get(e, "message"));
	if (code)
		fprintf(stderr, "raftplanectl: %s: %ld %s: %s\n", what, r->status, code,
			msg ? msg : "");
	else
		fprintf(stderr, "raftplanectl: %s: HTTP %ld from %s\n", what, r->status, r->server);
	int ex = ctl_exit_for_status(r->status);
	if (code && strcmp(code, "outcome_unknown") == 0)
		fprintf(stderr,
			"raftplanectl: the outcome is unknown: the change may or may not be "
			"applied; it was NOT resent. Check with status/get/history.\n");
	json_decref(j);
	return ex;
}

/* ---- small helpers --------------------------------------------------------- */

static void usage_error(const char *fmt, const char *arg)
{
	fputs("raftplanectl: ", stderr);
	fprintf(stderr, fmt, arg);
	fputs(" (see raftplanectl --help)\n", stderr);
}

int ctl_parse_duration_ms(const char *s, long *ms)
{
	char *end;
	errno = 0;
	if (!s || !*s || !strchr("0123456789", s[0]))
		return -1;
	double v = strtod(s, &end);
	if (errno || end == s)
		return -1;
	double mul = 1000;
	if (strcmp(end, "ms") == 0)
		mul = 1;
	else if (strcmp(end, "s") == 0 || *end == 0)
		mul = 1000;
	else if (strcmp(end, "m") == 0)
		mul = 60000;
	else
		return -1;
	v *= mul;
	if (v < 0 || v > 3600.0 * 1000 * 24)
		return -1;
	*ms = (long)v;
	return 0;
}

static int parse_u64(const char *s, long long *out)
{
	if (!s || !*s || strlen(s) > 18)
		return -1;
	for (const char *p = s; *p; p++)
		if (*p < '0' || *p > '9')
			return -1;
	*out = atoll(s);
	return 0;
}

const char *ctl_kind_plural(const char *k)
{
	if (!k)
		return NULL;
	if (!strcmp(k, "kv"))
		return "kv";
	if (!strcmp(k, "cluster") || !strcmp(k, "clusters"))
		return "clusters";
	if (!strcmp(k, "route") || !strcmp(k, "routes"))
		return "routes";
	if (!strcmp(k, "listener") || !strcmp(k, "listeners"))
		return "listeners";
	return NULL;
}

static int want_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			return 0;
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return 1;
	}
	return 0;
}

/* Prints @usage on stdout when --help or -h is among the arguments. */
static int help_asked(int argc, char **argv, const char *usage)
{
	if (!want_help(argc, argv))
		return 0;
	fputs(usage, stdout);
	return 1;
}

static int get_json(const char *path, json_t **out, const char *what)
{
	struct ctl_resp r = {0};
	int ex = ctl_request("GET", path, NULL, 0, NULL, 0, 0, &r);
	if (ex)
		return ex;
	if (r.status != 200) {
		ex = ctl_http_error(&r, what);
		ctl_resp_free(&r);
		return ex;
	}
	*out = ctl_json_body(&r);
	ctl_resp_free(&r);
	if (!*out) {
		fprintf(stderr, "raftplanectl: %s: the answer is not JSON\n", what);
		return CTL_EXIT_FAIL;
	}
	return CTL_OK;
}

static const char *jstr(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

static void jnum(char *buf, size_t n, json_t *v)
{
	if (json_is_integer(v))
		snprintf(buf, n, "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		snprintf(buf, n, "%g", json_real_value(v));
	else if (json_is_true(v))
		snprintf(buf, n, "true");
	else if (json_is_false(v))
		snprintf(buf, n, "false");
	else if (json_is_string(v))
		snprintf(buf, n, "%s", json_string_value(v));
	else
		snprintf(buf, n, "-");
}

/* ---- status ---------------------------------------------------------------- */

static const char *status_help =
	"usage: raftplanectl status\n"
	"Shows every member's view: role, leader, term, commit/applied index,\n"
	"revision and readiness. Members come from GET /v1/members of the first\n"
	"server that answers; each member's HTTP address is then asked for\n"
	"GET /v1/status.\n";

static json_t *status_of(const char *http)
{
	const char *saved[CTL_MAX_SERVERS];
	int n = g_opts.nservers;
	memcpy(saved, g_opts.servers, sizeof saved);
	g_opts.servers[0] = http;
	g_opts.nservers = 1;
	struct ctl_resp r = {0};
	json_t *j = NULL;
	FILE *old = stderr;
	(void)old;
	long to = g_opts.timeout_ms;
	if (g_opts.timeout_ms > 3000)
		g_opts.timeout_ms = 3000;
	/* a member that does not answer is shown as unreachable: quiet */
	int fd = dup(2);
	FILE *devnull = freopen("/dev/null", "w", stderr);
	(void)devnull;
	if (ctl_request("GET", "/v1/status", NULL, 0, NULL, 0, 0, &r) == CTL_OK && r.status == 200)
		j = ctl_json_body(&r);
	fflush(stderr);
	dup2(fd, 2);
	close(fd);
	ctl_resp_free(&r);
	g_opts.timeout_ms = to;
	memcpy(g_opts.servers, saved, sizeof saved);
	g_opts.nservers = n;
	return j;
}

static int cmd_status(int argc, char **argv)
{
	if (help_asked(argc, argv, status_help))
		return 0;
	if (argc > 1) {
		usage_error("status takes no argument: %s", argv[1]);
		return CTL_EXIT_USAGE;
	}
	json_t *m = NULL;
	int ex = get_json("/v1/members", &m, "GET /v1/members");
	if (ex)
		return ex;
	json_t *out = json_object();
	json_t *arr = json_array();
	json_object_set_new(out, "members", arr);
	size_t i;
	json_t *mem;
	long long leader = 0, term = 0, revision = -1;
	int healthy = 0, total = 0;
	json_array_foreach(json_object_get(m, "members"), i, mem)
	{
		json_t *e = json_object();
		json_object_set(e, "id", json_object_get(mem, "id"));
		json_object_set(e, "role", json_object_get(mem, "role"));
		json_object_set(e, "http", json_object_get(mem, "http"));
		json_object_set(e, "raft", json_object_get(mem, "raft"));
		json_t *st = *jstr(mem, "http") ? status_of(jstr(mem, "http")) : NULL;
		total++;
		if (st) {
			const char *keys[] = {"state",         "term",     "commit_index",
					      "applied_index", "revision", "leader_ready",
					      "release"};
			for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
				if (json_object_get(st, keys[k]))
					json_object_set(e, keys[k], json_object_get(st, keys[k]));
			json_t *l = json_object_get(st, "leader");
			if (json_is_object(l)) {
				json_object_set(e, "leader", json_object_get(l, "id"));
				if (json_integer_value(json_object_get(st, "term")) >= term) {
					term = json_integer_value(json_object_get(st, "term"));
					leader = json_integer_value(json_object_get(l, "id"));
				}
			} else {
				json_object_set_new(e, "leader", json_null());
			}
			long long rv = json_integer_value(json_object_get(st, "revision"));
			if (rv > revision)
				revision = rv;
			json_object_set_new(e, "reachable", json_true());
			if (strcmp(jstr(st, "state"), "unavailable") != 0)
				healthy++;
			if (!json_object_get(out, "cluster_id") &&
			    json_is_string(json_object_get(st, "cluster_id")))
				json_object_set(out, "cluster_id",
						json_object_get(st, "cluster_id"));
			json_decref(st);
		} else {
			json_object_set_new(e, "reachable", json_false());
		}
		json_array_append_new(arr, e);
	}
	json_decref(m);
	json_object_set_new(out, "leader", leader ? json_integer(leader) : json_null());
	json_object_set_new(out, "term", json_integer(term));
	json_object_set_new(out, "revision", revision >= 0 ? json_integer(revision) : json_null());
	json_object_set_new(out, "reachable", json_integer(healthy));
	json_object_set_new(out, "members_total", json_integer(total));
	json_object_set_new(out, "healthy", json_boolean(leader && healthy * 2 > total));
	if (g_opts.out != CTL_OUT_TABLE) {
		ctl_print_value(out);
	} else {
		printf("%-4s %-8s %-10s %-22s %-6s %-6s %-8s %-8s %-8s %s\n", "ID", "ROLE", "STATE",
		       "HTTP", "LEADER", "TERM", "COMMIT", "APPLIED", "REV", "READY");
		json_array_foreach(arr, i, mem)
		{
			char id[32], term_s[32], c[32], a[32], rv[32], ld[32], rd[32];
			jnum(id, sizeof id, json_object_get(mem, "id"));
			jnum(term_s, sizeof term_s, json_object_get(mem, "term"));
			jnum(c, sizeof c, json_object_get(mem, "commit_index"));
			jnum(a, sizeof a, json_object_get(mem, "applied_index"));
			jnum(rv, sizeof rv, json_object_get(mem, "revision"));
			jnum(ld, sizeof ld, json_object_get(mem, "leader"));
			jnum(rd, sizeof rd, json_object_get(mem, "leader_ready"));
			int reach = json_is_true(json_object_get(mem, "reachable"));
			printf("%-4s %-8s %-10s %-22s %-6s %-6s %-8s %-8s %-8s %s\n", id,
			       jstr(mem, "role"), reach ? jstr(mem, "state") : "unreachable",
			       jstr(mem, "http"), ld, term_s, c, a, rv, rd);
		}
		char lds[32] = "none";
		if (leader)
			snprintf(lds, sizeof lds, "%lld", leader);
		printf("\nleader: %s  term: %lld  revision: %lld  reachable: %d/%d  health: %s\n",
		       lds, term, revision, healthy, total,
		       json_is_true(json_object_get(out, "healthy")) ? "ok" : "DEGRADED");
	}
	int ok = json_is_true(json_object_get(out, "healthy"));
	json_decref(out);
	return ok ? CTL_OK : CTL_EXIT_UNAVAILABLE;
}

/* ---- members --------------------------------------------------------------- */

static const char *members_help =
	"usage: raftplanectl members list\n"
	"       raftplanectl members add ID --raft IP:PORT --http IP:PORT [--role "
	"voter|standby|spare]\n"
	"       raftplanectl members remove ID\n"
	"       raftplanectl members transfer ID     (hand leadership to member ID)\n";

static int print_write_result(struct ctl_resp *r, const char *what)
{
	if (r->status < 200 || r->status >= 300)
		return ctl_http_error(r, what);
	json_t *j = ctl_json_body(r);
	if (g_opts.out == CTL_OUT_TABLE) {
		char *s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
		printf("%s: %s\n", what, s ? s : "ok");
		free(s);
	} else if (j) {
		ctl_print_value(j);
	}
	json_decref(j);
	return CTL_OK;
}

static int cmd_members(int argc, char **argv)
{
	if (want_help(argc, argv) || argc < 2) {
		fputs(members_help, argc < 2 ? stderr : stdout);
		return argc < 2 ? CTL_EXIT_USAGE : 0;
	}
	const char *sub = argv[1];
	if (!strcmp(sub, "list")) {
		if (argc != 2) {
			usage_error("members list takes no argument: %s", argv[2]);
			return CTL_EXIT_USAGE;
		}
		json_t *m = NULL;
		int ex = get_json("/v1/members", &m, "GET /v1/members");
		if (ex)
			return ex;
		if (g_opts.out != CTL_OUT_TABLE) {
			ctl_print_value(m);
		} else {
			printf("%-4s %-8s %-22s %s\n", "ID", "ROLE", "HTTP", "RAFT");
			size_t i;
			json_t *e;
			json_array_foreach(json_object_get(m, "members"), i, e)
			{
				char id[32];
				jnum(id, sizeof id, json_object_get(e, "id"));
				printf("%-4s %-8s %-22s %s\n", id, jstr(e, "role"), jstr(e, "http"),
				       jstr(e, "raft"));
			}
		}
		json_decref(m);
		return 0;
	}
	long long id;
	if (argc < 3 || parse_u64(argv[2], &id) || id < 1) {
		usage_error("members %s needs a member ID (an integer >= 1)", sub);
		return CTL_EXIT_USAGE;
	}
	char path[128];
	struct ctl_resp r = {0};
	int ex;
	if (!strcmp(sub, "add")) {
		const char *raft = NULL, *http = NULL, *role = "voter";
		for (int i = 3; i < argc; i++) {
			const char **dst = !strcmp(argv[i], "--raft")   ? &raft
					   : !strcmp(argv[i], "--http") ? &http
					   : !strcmp(argv[i], "--role") ? &role
									: NULL;
			if (!dst || i + 1 >= argc) {
				usage_error("members add: bad or incomplete flag %s", argv[i]);
				return CTL_EXIT_USAGE;
			}
			*dst = argv[++i];
		}
		if (!raft || !http) {
			usage_error("members add needs --raft and --http%s", "");
			return CTL_EXIT_USAGE;
		}
		if (strcmp(role, "voter") && strcmp(role, "standby") && strcmp(role, "spare")) {
			usage_error("--role must be voter, standby or spare, not %s", role);
			return CTL_EXIT_USAGE;
		}
		json_t *b = json_pack("{sI ss ss ss}", "id", (json_int_t)id, "raft", raft, "http",
				      http, "role", role);
		char *s = json_dumps(b, JSON_COMPACT);
		json_decref(b);
		ex = ctl_request("POST", "/v1/members", s, strlen(s), "application/json", 1, 0, &r);
		free(s);
	} else if (!strcmp(sub, "remove") || !strcmp(sub, "transfer")) {
		if (argc != 3) {
			usage_error("too many arguments: %s", argv[3]);
			return CTL_EXIT_USAGE;
		}
		if (!strcmp(sub, "remove")) {
			snprintf(path, sizeof path, "/v1/members/%lld", id);
			ex = ctl_request("DELETE", path, NULL, 0, NULL, 1, 0, &r);
		} else {
			snprintf(path, sizeof path, "/v1/members/%lld/leadership", id);
			ex = ctl_request("POST", path, NULL, 0, NULL, 1, 0, &r);
		}
	} else {
		usage_error("unknown members subcommand %s", sub);
		return CTL_EXIT_USAGE;
	}
	if (ex)
		return ex;
	ex = print_write_result(&r, sub);
	ctl_resp_free(&r);
	return ex;
}

/* ---- get / put / delete ------------------------------------------------------ */

static const char *get_help =
	"usage: raftplanectl get KIND [NAME]\n"
	"KIND: kv, cluster(s), route(s), listener(s). Without NAME, lists the kind.\n"
	"get kv NAME prints the raw value in table mode (JSON/YAML: key, version, value).\n";
static const char *put_help =
	"usage: raftplanectl put KIND NAME (-f FILE | VALUE) [--if-version N]\n"
	"kv: VALUE (or the bytes of FILE, - for stdin) is the raw value.\n"
	"mesh kinds: VALUE or FILE is the object as JSON or YAML.\n";
static const char *delete_help = "usage: raftplanectl delete KIND NAME [--if-version N]\n";

static int valid_name(const char *n)
{
	size_t l = strlen(n);
	if (l < 1 || l > 128)
		return 0;
	for (const char *p = n; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-'))
			return 0;
	return strcmp(n, ".") && strcmp(n, "..");
}

static int cmd_get(int argc, char **argv)
{
	if (help_asked(argc, argv, get_help))
		return 0;
	if (argc < 2 || argc > 3) {
		usage_error("get needs KIND [NAME]%s", "");
		return CTL_EXIT_USAGE;
	}
	const char *kind = ctl_kind_plural(argv[1]);
	if (!kind) {
		usage_error("unknown kind %s (kv, cluster, route, listener)", argv[1]);
		return CTL_EXIT_USAGE;
	}
	if (argc == 3 && !valid_name(argv[2])) {
		usage_error("invalid name %s: must match [A-Za-z0-9._-]{1,128}", argv[2]);
		return CTL_EXIT_USAGE;
	}
	char path[512];
	if (argc == 2) {
		snprintf(path, sizeof path, "/v1/%s", kind);
		json_t *j = NULL;
		int ex = get_json(path, &j, "list");
		if (ex)
			return ex;
		if (g_opts.out != CTL_OUT_TABLE) {
			ctl_print_value(j);
		} else {
			printf("%-32s %-8s %s\n", !strcmp(kind, "kv") ? "KEY" : "NAME", "VERSION",
			       "VALUE");
			size_t i;
			json_t *e;
			json_array_foreach(json_object_get(j, "items"), i, e)
			{
				json_t *c = json_deep_copy(e);
				char ver[32];
				jnum(ver, sizeof ver, json_object_get(e, "version"));
				const char *name = !strcmp(kind, "kv") ? jstr(e, "key")
								       : jstr(e, "name");
				json_object_del(c, "name");
				json_object_del(c, "key");
				json_object_del(c, "version");
				char *s = !strcmp(kind, "kv") && json_object_get(c, "value")
						  ? strdup(jstr(c, "value"))
						  : json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS);
				printf("%-32s %-8s %s\n", name, ver, s ? s : "");
				free(s);
				json_decref(c);
			}
			char rv[32];
			jnum(rv, sizeof rv, json_object_get(j, "revision"));
			printf("(revision %s)\n", rv);
		}
		json_decref(j);
		return 0;
	}
	char *esc = ctl_escape(argv[2]);
	snprintf(path, sizeof path, "/v1/%s/%s", kind, esc);
	free(esc);
	struct ctl_resp r = {0};
	int ex = ctl_request("GET", path, NULL, 0, NULL, 0, 0, &r);
	if (ex)
		return ex;
	if (r.status != 200) {
		ex = ctl_http_error(&r, argv[2]);
		ctl_resp_free(&r);
		return ex;
	}
	if (!strcmp(kind, "kv")) {
		if (g_opts.out == CTL_OUT_TABLE) {
			fwrite(r.body ? r.body : "", 1, r.len, stdout);
		} else {
			json_t *o = json_object();
			json_object_set_new(o, "key", json_string(argv[2]));
			json_object_set_new(o, "version",
					    json_integer(atoll(r.etag + (r.etag[0] == '"'))));
			json_t *v = r.len ? json_stringn(r.body, r.len) : json_string("");
			if (v) {
				json_object_set_new(o, "value", v);
			} else {
				/* not UTF-8: base64 */
				size_t olen = 4 * ((r.len + 2) / 3) + 1;
				unsigned char *b64 = malloc(olen);
				EVP_EncodeBlock(b64, (unsigned char *)r.body, (int)r.len);
				json_object_set_new(o, "value_base64", json_string((char *)b64));
				free(b64);
			}
			ctl_print_value(o);
			json_decref(o);
		}
	} else {
		json_t *j = ctl_json_body(&r);
		ctl_print_value(j);
		json_decref(j);
	}
	ctl_resp_free(&r);
	return 0;
}

static char *read_all(const char *path, size_t *len)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	if (!f)
		return NULL;
	size_t cap = 65536, n = 0;
	char *b = malloc(cap);
	for (;;) {
		if (n + 4096 > cap) {
			if (cap > (8u << 20)) {
				free(b);
				b = NULL;
				errno = EFBIG;
				break;
			}
			cap *= 2;
			b = realloc(b, cap);
		}
		size_t k = fread(b + n, 1, cap - n - 1, f);
		n += k;
		if (k == 0)
			break;
	}
	if (b)
		b[n] = 0;
	if (f != stdin)
		fclose(f);
	*len = n;
	return b;
}

static int parse_if_version(int *argc, char **argv, long long *ifv)
{
	*ifv = -1;
	for (int i = 1; i < *argc; i++) {
		if (strcmp(argv[i], "--if-version"))
			continue;
		if (i + 1 >= *argc || parse_u64(argv[i + 1], ifv)) {
			usage_error("--if-version needs a version number%s", "");
			return -1;
		}
		memmove(argv + i, argv + i + 2, (*argc - i - 2) * sizeof *argv);
		*argc -= 2;
		i--;
	}
	return 0;
}

static int cmd_put(int argc, char **argv)
{
	if (help_asked(argc, argv, put_help))
		return 0;
	long long ifv;
	if (parse_if_version(&argc, argv, &ifv))
		return CTL_EXIT_USAGE;
	const char *file = NULL, *value = NULL;
	if (argc == 5 && !strcmp(argv[3], "-f"))
		file = argv[4];
	else if (argc == 4 && strcmp(argv[3], "-f"))
		value = argv[3];
	else {
		usage_error("put needs KIND NAME (-f FILE | VALUE)%s", "");
		return CTL_EXIT_USAGE;
	}
	const char *kind = ctl_kind_plural(argv[1]);
	if (!kind) {
		usage_error("unknown kind %s (kv, cluster, route, listener)", argv[1]);
		return CTL_EXIT_USAGE;
	}
	if (!valid_name(argv[2])) {
		usage_error("invalid name %s: must match [A-Za-z0-9._-]{1,128}", argv[2]);
		return CTL_EXIT_USAGE;
	}
	char *body = NULL;
	size_t blen = 0;
	if (!strcmp(kind, "kv")) {
		if (file) {
			body = read_all(file, &blen);
			if (!body) {
				fprintf(stderr, "raftplanectl: %s: %s\n", file, strerror(errno));
				return CTL_EXIT_FAIL;
			}
		} else {
			body = strdup(value);
			blen = strlen(value);
		}
	} else {
		char err[512];
		json_t *j;
		if (file) {
			j = ctl_yaml_to_json_file(file, err, sizeof err);
		} else {
			json_error_t je;
			j = json_loads(value, 0, &je);
			if (!j)
				snprintf(err, sizeof err, "VALUE:%d:%d: %s", je.line, je.column,
					 je.text);
		}
		if (!j) {
			fprintf(stderr, "raftplanectl: %s\n", err);
			return CTL_EXIT_USAGE;
		}
		if (!json_is_object(j)) {
			fprintf(stderr, "raftplanectl: the %s value must be an object\n", kind);
			json_decref(j);
			return CTL_EXIT_USAGE;
		}
		body = json_dumps(j, JSON_COMPACT);
		blen = strlen(body);
		json_decref(j);
	}
	char path[512], hdr[64];
	char *esc = ctl_escape(argv[2]);
	snprintf(path, sizeof path, "/v1/%s/%s", kind, esc);
	free(esc);
	(void)hdr;
	struct ctl_resp r = {0};
	int ex;
	if (ifv >= 0) {
		/* preconditions go in the txn form: one op, if_version */
		json_t *op = json_pack("{ss ss ss}", "op", "put", "kind", kind, "name", argv[2]);
		if (!strcmp(kind, "kv")) {
			json_t *v = json_stringn(body, blen);
			if (!v) {
				fprintf(stderr,
					"raftplanectl: --if-version needs a text kv value\n");
				free(body);
				json_decref(op);
				return CTL_EXIT_USAGE;
			}
			json_object_set_new(op, "value", v);
		} else {
			json_object_set_new(op, "value", json_loads(body, 0, NULL));
		}
		json_object_set_new(op, "if_version", json_integer(ifv));
		json_t *t = json_pack("{s[o]}", "ops", op);
		char *s = json_dumps(t, JSON_COMPACT);
		json_decref(t);
		ex = ctl_request("POST", "/v1/txn", s, strlen(s), "application/json", 1, 0, &r);
		free(s);
	} else {
		ex = ctl_request("PUT", path, body, blen,
				 strcmp(kind, "kv") ? "application/json"
						    : "application/octet-stream",
				 1, 0, &r);
	}
	free(body);
	if (ex)
		return ex;
	ex = print_write_result(&r, "put");
	ctl_resp_free(&r);
	return ex;
}

static int cmd_delete(int argc, char **argv)
{
	if (help_asked(argc, argv, delete_help))
		return 0;
	long long ifv;
	if (parse_if_version(&argc, argv, &ifv))
		return CTL_EXIT_USAGE;
	if (argc != 3) {
		usage_error("delete needs KIND NAME%s", "");
		return CTL_EXIT_USAGE;
	}
	const char *kind = ctl_kind_plural(argv[1]);
	if (!kind) {
		usage_error("unknown kind %s (kv, cluster, route, listener)", argv[1]);
		return CTL_EXIT_USAGE;
	}
	if (!valid_name(argv[2])) {
		usage_error("invalid name %s: must match [A-Za-z0-9._-]{1,128}", argv[2]);
		return CTL_EXIT_USAGE;
	}
	struct ctl_resp r = {0};
	int ex;
	if (ifv >= 0) {
		json_t *t = json_pack("{s[{ss ss ss sI}]}", "ops", "op", "delete", "kind", kind,
				      "name", argv[2], "if_version", (json_int_t)ifv);
		char *s = json_dumps(t, JSON_COMPACT);
		json_decref(t);
		ex = ctl_request("POST", "/v1/txn", s, strlen(s), "application/json", 1, 0, &r);
		free(s);
	} else {
		char path[512];
		char *esc = ctl_escape(argv[2]);
		snprintf(path, sizeof path, "/v1/%s/%s", kind, esc);
		free(esc);
		ex = ctl_request("DELETE", path, NULL, 0, NULL, 1, 0, &r);
	}
	if (ex)
		return ex;
	ex = print_write_result(&r, "delete");
	ctl_resp_free(&r);
	return ex;
}

/* ---- proxies / rollout / watch / history ------------------------------------------- */

static int cmd_proxies(int argc, char **argv)
{
	if (help_asked(argc, argv,
		       "usage: raftplanectl proxies\nThe proxy fleet: node id, attached server, "
		       "versions, ACK/NACK/stale state, last seen; request and error rates "
		       "when telemetry is present.\n"))
		return 0;
	if (argc != 1) {
		usage_error("proxies takes no argument: %s", argv[1]);
		return CTL_EXIT_USAGE;
	}
	json_t *p = NULL;
	int ex = get_json("/v1/proxies", &p, "GET /v1/proxies");
	if (ex)
		return ex;
	size_t i;
	json_t *e;
	int bad = 0;
	json_array_foreach(json_object_get(p, "proxies"), i, e)
	{
		json_int_t cur = json_integer_value(json_object_get(e, "current_version"));
		json_t *ack = json_object_get(e, "acked_version");
		json_t *nack = json_object_get(e, "nack");
		const char *state;
		if (json_is_object(nack))
			state = "NACKED";
		else if (json_is_integer(ack) && json_integer_value(ack) >= cur)
			state = "SYNCED";
		else
			state = "STALE";
		if (strcmp(state, "SYNCED"))
			bad = 1;
		json_object_set_new(e, "state", json_string(state));
		char tp[512];
		char *esc = ctl_escape(jstr(e, "node_id"));
		snprintf(tp, sizeof tp, "/v1/telemetry/proxies/%s", esc);
		free(esc);
		struct ctl_resp r = {0};
		int fd = dup(2);
		FILE *dn = freopen("/dev/null", "w", stderr);
		(void)dn;
		if (ctl_request("GET", tp, NULL, 0, NULL, 0, 0, &r) == CTL_OK && r.status == 200) {
			json_t *t = ctl_json_body(&r);
			if (t)
				json_object_set_new(e, "telemetry", t);
		}
		fflush(stderr);
		dup2(fd, 2);
		close(fd);
		ctl_resp_free(&r);
	}
	if (g_opts.out != CTL_OUT_TABLE) {
		ctl_print_value(p);
	} else {
		printf("%-20s %-22s %-8s %-8s %-8s %-7s %-20s %s\n", "NODE", "SERVER", "SENT",
		       "ACKED", "CURRENT", "STATE", "LAST SEEN", "DETAIL");
		json_array_foreach(json_object_get(p, "proxies"), i, e)
		{
			char sv[32], av[32], cv[32], ts[64] = "-";
			jnum(sv, sizeof sv, json_object_get(e, "snapshot_version"));
			jnum(av, sizeof av, json_object_get(e, "acked_version"));
			jnum(cv, sizeof cv, json_object_get(e, "current_version"));
			json_int_t ls = json_integer_value(json_object_get(e, "last_seen"));
			if (ls > 0) {
				time_t t = (time_t)(ls / 1000);
				struct tm tm;
				gmtime_r(&t, &tm);
				strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
			}
			char detail[600] = "";
			json_t *nack = json_object_get(e, "nack");
			if (json_is_object(nack))
				snprintf(detail, sizeof detail, "v%lld: %s",
					 (long long)json_integer_value(
						 json_object_get(nack, "version")),
					 jstr(nack, "error"));
			json_t *t = json_object_get(e, "telemetry");
			if (t && !*detail) {
				char *s = json_dumps(t, JSON_COMPACT | JSON_SORT_KEYS);
				snprintf(detail, sizeof detail, "%.200s", s ? s : "");
				free(s);
			}
			printf("%-20s %-22s %-8s %-8s %-8s %-7s %-20s %s\n", jstr(e, "node_id"),
			       jstr(e, "server"), sv, av, cv, jstr(e, "state"), ts, detail);
		}
		size_t nu = json_array_size(json_object_get(p, "unreachable"));
		if (nu)
			printf("(%zu server(s) unreachable)\n", nu);
	}
	json_decref(p);
	return bad ? CTL_EXIT_FAIL : CTL_OK;
}

/* Prints a rollout; returns 0 when every proxy ACKed, else 1. */
int ctl_show_rollout(long long rev, long wait_ms)
{
	char path[128];
	long w = wait_ms > 600000 ? 600000 : wait_ms;
	snprintf(path, sizeof path, "/v1/rollouts/%lld?wait=%ldms", rev, w);
	struct ctl_resp r = {0};
	int ex = ctl_request("GET", path, NULL, 0, NULL, 0, w + g_opts.timeout_ms, &r);
	if (ex)
		return ex;
	if (r.status != 200) {
		ex = ctl_http_error(&r, "rollout");
		ctl_resp_free(&r);
		return ex;
	}
	json_t *j = ctl_json_body(&r);
	ctl_resp_free(&r);
	json_int_t total = json_integer_value(json_object_get(j, "proxies"));
	json_int_t acked = json_integer_value(json_object_get(j, "acked"));
	if (g_opts.out != CTL_OUT_TABLE) {
		ctl_print_value(j);
	} else {
		printf("rollout of revision %lld: %lld/%lld ACK, %lld NACK, %lld pending\n", rev,
		       (long long)acked, (long long)total,
		       (long long)json_integer_value(json_object_get(j, "nacked")),
		       (long long)json_integer_value(json_object_get(j, "pending")));
		size_t i;
		json_t *e;
		json_array_foreach(json_object_get(j, "nacks"), i, e)
			printf("  NACK %s (version %lld): %s\n", jstr(e, "node_id"),
			       (long long)json_integer_value(json_object_get(e, "version")),
			       jstr(e, "error"));
		json_array_foreach(json_object_get(j, "pending_nodes"), i, e)
			printf("  PENDING %s\n", json_string_value(e));
	}
	json_decref(j);
	return acked == total ? CTL_OK : CTL_EXIT_FAIL;
}

static int cmd_rollout(int argc, char **argv)
{
	if (help_asked(argc, argv,
		       "usage: raftplanectl rollout REV [--wait DURATION]\nHow far revision REV "
		       "reached the proxies (ACK, NACK with error, pending). Exit 1 unless all "
		       "ACKed.\n"))
		return 0;
	long long rev;
	long wait = 0;
	if (argc < 2 || parse_u64(argv[1], &rev) || rev < 1) {
		usage_error("rollout needs a revision number%s", "");
		return CTL_EXIT_USAGE;
	}
	if (argc == 4 && !strcmp(argv[2], "--wait")) {
		if (ctl_parse_duration_ms(argv[3], &wait) || wait > 600000) {
			usage_error("--wait must be like 30s or 500ms, at most 10m: %s", argv[3]);
			return CTL_EXIT_USAGE;
		}
	} else if (argc != 2) {
		usage_error("unexpected argument %s", argv[2]);
		return CTL_EXIT_USAGE;
	}
	return ctl_show_rollout(rev, wait);
}

#define g_stop ctl_interrupted
static void on_sigint(int s)
{
	(void)s;
	ctl_interrupted = 1;
}

static int cmd_watch(int argc, char **argv)
{
	if (help_asked(argc, argv,
		       "usage: raftplanectl watch [KIND] [--after REV]\nPrints every change "
		       "(long poll) until Ctrl-C. KIND: kv, cluster(s), route(s), listener(s), "
		       "members.\n"))
		return 0;
	const char *kind = NULL;
	long long after = -1;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--after")) {
			if (i + 1 >= argc || parse_u64(argv[i + 1], &after)) {
				usage_error("--after needs a revision%s", "");
				return CTL_EXIT_USAGE;
			}
			i++;
		} else if (!kind) {
			kind = !strcmp(argv[i], "members") ? "members" : ctl_kind_plural(argv[i]);
			if (!kind) {
				usage_error("unknown kind %s", argv[i]);
				return CTL_EXIT_USAGE;
			}
		} else {
			usage_error("unexpected argument %s", argv[i]);
			return CTL_EXIT_USAGE;
		}
	}
	signal(SIGINT, on_sigint);
	signal(SIGTERM, on_sigint);
	while (!g_stop) {
		char path[256];
		int n = snprintf(path, sizeof path, "/v1/watch?wait=20s");
		if (after >= 0)
			n += snprintf(path + n, sizeof path - n, "&after=%lld", after);
		if (kind)
			snprintf(path + n, sizeof path - n, "&kinds=%s", kind);
		struct ctl_resp r = {0};
		int ex = ctl_request("GET", path, NULL, 0, NULL, 0, 20000 + g_opts.timeout_ms, &r);
		if (g_stop)
			break;
		if (ex)
			return ex;
		if (r.status != 200) {
			ex = ctl_http_error(&r, "watch");
			ctl_resp_free(&r);
			return ex;
		}
		json_t *j = ctl_json_body(&r);
		ctl_resp_free(&r);
		size_t i;
		json_t *c;
		json_array_foreach(json_object_get(j, "changes"), i, c)
		{
			if (g_opts.out == CTL_OUT_TABLE) {
				printf("%-8lld %-7s %-10s %s\n",
				       (long long)json_integer_value(json_object_get(c, "version")),
				       jstr(c, "op"), jstr(c, "kind"), jstr(c, "name"));
			} else if (g_opts.out == CTL_OUT_JSON) {
				char *s = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS);
				puts(s);
				free(s);
			} else {
				json_t *a = json_pack("[O]", c);
				ctl_yaml_emit(stdout, a, 0);
				json_decref(a);
			}
		}
		fflush(stdout);
		after = json_integer_value(json_object_get(j, "revision"));
		json_decref(j);
	}
	return 0;
}

static int cmd_history(int argc, char **argv)
{
	if (help_asked(argc, argv,
		       "usage: raftplanectl history [KIND [NAME]] [--limit N]\nThe audit trail, "
		       "newest first.\n"))
		return 0;
	const char *kind = NULL, *name = NULL;
	long long limit = 100;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--limit")) {
			if (i + 1 >= argc || parse_u64(argv[i + 1], &limit) || limit < 1 ||
			    limit > 1000) {
				usage_error("--limit needs 1-1000%s", "");
				return CTL_EXIT_USAGE;
			}
			i++;
		} else if (!kind) {
			kind = !strcmp(argv[i], "members") || !strcmp(argv[i], "tokens")
				       ? argv[i]
				       : ctl_kind_plural(argv[i]);
			if (!kind) {
				usage_error("unknown kind %s", argv[i]);
				return CTL_EXIT_USAGE;
			}
		} else if (!name) {
			name = argv[i];
			if (!valid_name(name)) {
				usage_error("invalid name %s", name);
				return CTL_EXIT_USAGE;
			}
		} else {
			usage_error("unexpected argument %s", argv[i]);
			return CTL_EXIT_USAGE;
		}
	}
	char path[512];
	int n = snprintf(path, sizeof path, "/v1/history?limit=%lld", limit);
	if (kind)
		n += snprintf(path + n, sizeof path - n, "&kind=%s", kind);
	if (name)
		snprintf(path + n, sizeof path - n, "&name=%s", name);
	json_t *j = NULL;
	int ex = get_json(path, &j, "history");
	if (ex)
		return ex;
	if (g_opts.out != CTL_OUT_TABLE) {
		ctl_print_value(j);
	} else {
		printf("%-8s %-20s %-24s %s\n", "REV", "TIME", "ACTOR", "CHANGES");
		size_t i, k;
		json_t *h, *c;
		json_array_foreach(json_object_get(j, "history"), i, h)
		{
			char ts[64] = "-";
			json_int_t ms = json_integer_value(json_object_get(h, "time"));
			time_t t = (time_t)(ms / 1000);
			struct tm tm;
			gmtime_r(&t, &tm);
			strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
			printf("%-8lld %-20s %-24s",
			       (long long)json_integer_value(json_object_get(h, "revision")), ts,
			       jstr(h, "actor"));
			json_array_foreach(json_object_get(h, "changes"), k, c)
				printf(" %s %s/%s", jstr(c, "type"), jstr(c, "kind"),
				       jstr(c, "name"));
			putchar('\n');
		}
	}
	json_decref(j);
	return 0;
}

/* ---- rollback / backup / restore ---------------------------------------------------- */

static int cmd_rollback(int argc, char **argv)
{
	if (help_asked(argc, argv,
		       "usage: raftplanectl rollback REV [--dry-run] [--wait [DURATION]]\n"
		       "Makes one new revision in which every cluster, route and listener is as it "
		       "was at\nrevision REV (POST /v1/rollback; kv keys are not rolled back). It "
		       "fails as a whole\n(exit 3) when a change lands meanwhile.\n"
		       "  --dry-run  show what it would change and which proxies would get a new "
		       "version\n  --wait     wait (default 30s) for every proxy to ACK it\n"))
		return 0;
	long long rev;
	long wait_ms = 30000;
	int dry_run = 0, wait = 0;
	if (argc < 2 || parse_u64(argv[1], &rev) || rev < 1) {
		usage_error("rollback needs one revision number%s", "");
		return CTL_EXIT_USAGE;
	}
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--dry-run")) {
			dry_run = 1;
		} else if (!strcmp(argv[i], "--wait")) {
			wait = 1;
			if (i + 1 < argc && argv[i + 1][0] >= '0' && argv[i + 1][0] <= '9' &&
			    (ctl_parse_duration_ms(argv[++i], &wait_ms) || wait_ms > 600000)) {
				usage_error("--wait must be like 30s or 500ms, at most 10m: %s",
					    argv[i]);
				return CTL_EXIT_USAGE;
			}
		} else {
			usage_error("rollback: unknown argument %s", argv[i]);
			return CTL_EXIT_USAGE;
		}
	}
	if (dry_run && wait) {
		usage_error("rollback: --dry-run and --wait exclude each other%s", "");
		return CTL_EXIT_USAGE;
	}
	char body[64];
	snprintf(body, sizeof body, "{\"revision\":%lld}", rev);
	struct ctl_resp r = {0};
	int ex = ctl_request("POST", dry_run ? "/v1/rollback?dry_run=true" : "/v1/rollback", body,
			     strlen(body), "application/json", !dry_run, 0, &r);
	if (ex)
		return ex;
	if (r.status < 200 || r.status >= 300) {
		ex = ctl_http_error(&r, dry_run ? "rollback --dry-run" : "rollback");
		ctl_resp_free(&r);
		return r.status == 410 ? CTL_EXIT_NOT_FOUND : ex;
	}
	json_t *j = ctl_json_body(&r);
	ctl_resp_free(&r);
	long long now = json_integer_value(json_object_get(j, "revision"));
	if (g_opts.out != CTL_OUT_TABLE) {
		ctl_print_value(j);
	} else if (json_is_true(json_object_get(j, "unchanged"))) {
		printf("nothing to roll back: the mesh is as at revision %lld (now %lld)\n", rev,
		       now);
	} else {
		if (dry_run)
			printf("dry run: nothing changed; rolling back to revision %lld would make "
			       "revision %lld (now %lld)\n",
			       rev,
			       (long long)json_integer_value(
				       json_object_get(j, "would_be_revision")),
			       now);
		else
			printf("rolled back to revision %lld as revision %lld\n", rev, now);
		size_t i;
		json_t *e;
		json_array_foreach(json_object_get(j, "results"), i, e)
			printf("  %s %s/%s\n", json_string_value(json_object_get(e, "op")),
			       json_string_value(json_object_get(e, "kind")),
			       json_string_value(json_object_get(e, "name")));
		if (dry_run)
			ctl_print_dry_proxies(j);
	}
	int changed = !json_is_true(json_object_get(j, "unchanged"));
	json_decref(j);
	if (wait && changed)
		ex = ctl_show_rollout(now, wait_ms);
	return ex;
}

struct backup_sink {
	FILE *f;
	EVP_MD_CTX *md;
};

static int backup_write(void *ud, const char *p, size_t n)
{
	struct backup_sink *b = ud;
	if (fwrite(p, 1, n, b->f) != n)
		return -1;
	return EVP_DigestUpdate(b->md, p, n) == 1 ? 0 : -1;
}

static int cmd_backup(int argc, char **argv)
{
	if (help_asked(argc, argv,
		       "usage: raftplanectl backup FILE\nStreams GET /v1/backup to FILE.tmp, "
		       "checks the x-raftplane-checksum (sha256), then renames it to FILE.\n"))
		return 0;
	if (argc != 2 || !*argv[1]) {
		usage_error("backup needs one FILE%s", "");
		return CTL_EXIT_USAGE;
	}
	char tmp[4096];
	if (snprintf(tmp, sizeof tmp, "%s.tmp", argv[1]) >= (int)sizeof tmp) {
		usage_error("file name too long%s", "");
		return CTL_EXIT_USAGE;
	}
	struct backup_sink b = {fopen(tmp, "wb"), EVP_MD_CTX_new()};
	if (!b.f) {
		fprintf(stderr, "raftplanectl: %s: %s\n", tmp, strerror(errno));
		EVP_MD_CTX_free(b.md);
		return CTL_EXIT_FAIL;
	}
	EVP_DigestInit_ex(b.md, EVP_sha256(), NULL);
	struct ctl_resp r = {0};
	r.sink = backup_write;
	r.sink_ud = &b;
	int ex = ctl_request("GET", "/v1/backup", NULL, 0, NULL, 0, 600000, &r);
	int closed = fclose(b.f);
	unsigned char dig[32];
	unsigned int dl = 0;
	EVP_DigestFinal_ex(b.md, dig, &dl);
	EVP_MD_CTX_free(b.md);
	if (!ex && r.status != 200) {
		fprintf(stderr, "raftplanectl: backup: HTTP %ld\n", r.status);
		ex = ctl_exit_for_status(r.status);
	}
	char hex[65];
	for (int i = 0; i < 32; i++)
		sprintf(hex + 2 * i, "%02x", dig[i]);
	if (!ex && closed) {
		fprintf(stderr, "raftplanectl: %s: write failed\n", tmp);
		ex = CTL_EXIT_FAIL;
	}
	if (!ex && (strncmp(r.checksum_hdr, "sha256=", 7) || strcasecmp(r.checksum_hdr + 7, hex))) {
		fprintf(stderr,
			"raftplanectl: backup: checksum mismatch (server %s, got sha256=%s)\n",
			r.checksum_hdr[0] ? r.checksum_hdr : "none", hex);
		ex = CTL_EXIT_FAIL;
	}
	if (!ex && rename(tmp, argv[1])) {
		fprintf(stderr, "raftplanectl: rename to %s: %s\n", argv[1], strerror(errno));
		ex = CTL_EXIT_FAIL;
	}
	if (ex)
		unlink(tmp);
	else
		printf("backup of revision %s written to %s (%zu bytes, sha256=%s)\n",
		       r.revision_hdr[0] ? r.revision_hdr : "?", argv[1], r.len, hex);
	ctl_resp_free(&r);
	return ex;
}

static int cmd_restore(int argc, char **argv)
{
	if (want_help(argc, argv) || argc != 2) {
		fputs("usage: raftplanectl restore FILE\nPrints the server command that "
		      "restores FILE: a restore is done by a server process, not over the API.\n",
		      argc != 2 && !want_help(argc, argv) ? stderr : stdout);
		return argc != 2 && !want_help(argc, argv) ? CTL_EXIT_USAGE : 0;
	}
	printf("Stop every member, then on a fresh data directory run:\n"
	       "  raftplane-server --restore %s --bootstrap ID=RAFT_ADDR,... --id 1 "
	       "--data-dir DIR --http ADDR --raft ADDR\n"
	       "and start the other members empty with the same --bootstrap.\n",
	       argv[1]);
	return 0;
}

/* ---- main ---------------------------------------------------------------------------- */

static const char *main_help =
	"usage: raftplanectl [GLOBAL FLAGS] COMMAND [ARGS]\n"
	"\n"
	"Commands:\n"
	"  status                      members, roles, leader, term, indexes, revision, health\n"
	"  members list|add|remove|transfer\n"
	"  get KIND [NAME]             KIND: kv, cluster, route, listener\n"
	"  put KIND NAME (-f FILE | VALUE)\n"
	"  delete KIND NAME\n"
	"  apply -f FILE|DIR|- [--prune --prune-prefix P] [--wait [DUR]] [--dry-run]\n"
	"  diff -f FILE|DIR|-          exit 0: no changes, 1: changes\n"
	"  proxies                     proxy fleet status\n"
	"  rollout REV [--wait DUR]\n"
	"  watch [KIND]\n"
	"  history [KIND [NAME]]\n"
	"  rollback REV [--dry-run] [--wait [DUR]]\n"
	"  backup FILE\n"
	"  restore FILE\n"
	"\n"
	"Global flags:\n"
	"  --servers A,B,C   servers to try in turn (env RAFTPLANE_SERVERS; default "
	"127.0.0.1:8080)\n"
	"  --cacert FILE     speak https, verify the server with this CA\n"
	"  --cert FILE --key FILE   client certificate\n"
	"  --token T         API token (env RAFTPLANE_TOKEN)\n"
	"  -o table|json|yaml   output (default: table on a terminal, json otherwise)\n"
	"  --timeout DUR     per request (default 10s)\n"
	"\n"
	"Exit codes: 0 ok, 1 failure, 2 usage, 3 precondition/conflict, 4 not found,\n"
	"5 unavailable or outcome unknown.\n";

static int split_servers(char *list)
{
	g_opts.nservers = 0;
	for (char *s = strtok(list, ","); s; s = strtok(NULL, ",")) {
		if (g_opts.nservers == CTL_MAX_SERVERS) {
			usage_error("at most 32 servers in --servers%s", "");
			return -1;
		}
		if (!*s || (strchr(s, '/') && strncmp(s, "http", 4))) {
			usage_error("bad server address %s (HOST:PORT)", s);
			return -1;
		}
		if (!strchr(s, ':')) {
			usage_error("bad server address %s: HOST:PORT needed", s);
			return -1;
		}
		g_opts.servers[g_opts.nservers++] = s;
	}
	if (!g_opts.nservers) {
		usage_error("--servers is empty%s", "");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct option lo[] = {
		{"servers", required_argument, 0, 's'},
		{"cacert", required_argument, 0, 'C'},
		{"cert", required_argument, 0, 'c'},
		{"key", required_argument, 0, 'k'},
		{"token", required_argument, 0, 't'},
		{"output", required_argument, 0, 'o'},
		{"timeout", required_argument, 0, 'T'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	char *servers = getenv("RAFTPLANE_SERVERS");
	g_opts.token = getenv("RAFTPLANE_TOKEN");
	if (g_opts.token && !*g_opts.token)
		g_opts.token = NULL;
	g_opts.out = isatty(1) ? CTL_OUT_TABLE : CTL_OUT_JSON;
	g_opts.color = isatty(1);
	g_opts.timeout_ms = 10000;
	int c;
	opterr = 0;
	/* "+": stop at the first non-option (the command) */
	while ((c = getopt_long(argc, argv, "+o:h", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			if (!*optarg) {
				usage_error("--servers is empty%s", "");
				return CTL_EXIT_USAGE;
			}
			servers = optarg;
			break;
		case 'C': g_opts.cacert = optarg; break;
		case 'c': g_opts.cert = optarg; break;
		case 'k': g_opts.key = optarg; break;
		case 't': g_opts.token = optarg; break;
		case 'o':
			if (!strcmp(optarg, "table"))
				g_opts.out = CTL_OUT_TABLE;
			else if (!strcmp(optarg, "json"))
				g_opts.out = CTL_OUT_JSON;
			else if (!strcmp(optarg, "yaml"))
				g_opts.out = CTL_OUT_YAML;
			else {
				usage_error("-o must be table, json or yaml, not %s", optarg);
				return CTL_EXIT_USAGE;
			}
			break;
		case 'T':
			if (ctl_parse_duration_ms(optarg, &g_opts.timeout_ms) ||
			    g_opts.timeout_ms < 1) {
				usage_error("--timeout must be like 10s or 500ms: %s", optarg);
				return CTL_EXIT_USAGE;
			}
			break;
		case 'h': fputs(main_help, stdout); return 0;
		default:
			usage_error("unknown or incomplete global flag %s", argv[optind - 1]);
			return CTL_EXIT_USAGE;
		}
	}
	if ((g_opts.cert != NULL) != (g_opts.key != NULL)) {
		usage_error("--cert and --key go together%s", "");
		return CTL_EXIT_USAGE;
	}
	if ((g_opts.cert || g_opts.key) && !g_opts.cacert) {
		usage_error("--cert/--key need --cacert (https)%s", "");
		return CTL_EXIT_USAGE;
	}
	const char *files[] = {g_opts.cacert, g_opts.cert, g_opts.key};
	for (int i = 0; i < 3; i++)
		if (files[i] && access(files[i], R_OK)) {
			fprintf(stderr, "raftplanectl: %s: %s\n", files[i], strerror(errno));
			return CTL_EXIT_USAGE;
		}
	if (g_opts.token) {
		for (const char *p = g_opts.token; *p; p++)
			if (*p <= ' ' || *p >= 0x7f) {
				usage_error("--token must be printable ASCII without spaces%s", "");
				return CTL_EXIT_USAGE;
			}
		if (strlen(g_opts.token) > 200) {
			usage_error("--token is too long%s", "");
			return CTL_EXIT_USAGE;
		}
	}
	char *sv = strdup(servers && *servers ? servers : "127.0.0.1:8080");
	if (split_servers(sv))
		return CTL_EXIT_USAGE;
	if (optind >= argc) {
		fputs(main_help, stderr);
		return CTL_EXIT_USAGE;
	}
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} cmds[] = {
		{"status", cmd_status}, {"members", cmd_members}, {"get", cmd_get},
		{"put", cmd_put},       {"delete", cmd_delete},   {"apply", cmd_apply},
		{"diff", cmd_diff},     {"proxies", cmd_proxies}, {"rollout", cmd_rollout},
		{"watch", cmd_watch},   {"history", cmd_history}, {"rollback", cmd_rollback},
		{"backup", cmd_backup}, {"restore", cmd_restore},
	};
	curl_global_init(CURL_GLOBAL_DEFAULT);
	int ex = -1;
	for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++)
		if (!strcmp(argv[optind], cmds[i].name))
			ex = cmds[i].fn(argc - optind, argv + optind);
	if (ex < 0) {
		usage_error("unknown command %s", argv[optind]);
		ex = CTL_EXIT_USAGE;
	}
	fflush(stdout);
	curl_global_cleanup();
	free(sv);
	return ex;
}
