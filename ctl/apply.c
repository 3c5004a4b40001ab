/* raftplanectl apply / diff: manifest files (YAML or JSON, several documents)
 * to one transaction. */
#include "ctl.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

int ctl_show_rollout(long long rev, long wait_ms);

struct doc {
	char file[1024];
	int line;
	const char *kind; /* plural */
	char *name;
	json_t *spec;
};

struct docs {
	struct doc *v;
	size_t n, cap;
};

static void docs_free(struct docs *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->v[i].name);
		json_decref(d->v[i].spec);
	}
	free(d->v);
}

static int is_int(const char *s)
{
	const char *p = s;
	if (*p == '-' || *p == '+')
		p++;
	if (!*p)
		return 0;
	for (; *p; p++)
		if (*p < '0' || *p > '9')
			return 0;
	return 1;
}

static int is_float(const char *s)
{
	char *end;
	if (!*s || !strchr("+-.0123456789", s[0]))
		return 0;
	strtod(s, &end);
	return *end == 0;
}

/* A YAML node to JSON; plain scalars get YAML core-schema types. */
static json_t *node_to_json(yaml_document_t *d, yaml_node_t *n, const char *file, char *err,
			    size_t errsz, int depth)
{
	if (depth > 64) {
		snprintf(err, errsz, "%s:%zu: nesting too deep", file, n->start_mark.line + 1);
		return NULL;
	}
	switch (n->type) {
	case YAML_SCALAR_NODE: {
		const char *s = (const char *)n->data.scalar.value;
		size_t len = n->data.scalar.length;
		if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
			return json_stringn(s, len);
		if (!strcmp(s, "null") || !strcmp(s, "~") || !*s)
			return json_null();
		if (!strcmp(s, "true") || !strcmp(s, "True"))
			return json_true();
		if (!strcmp(s, "false") || !strcmp(s, "False"))
			return json_false();
		if (is_int(s) && strlen(s) < 19)
			return json_integer(strtoll(s, NULL, 10));
		if (is_float(s))
			return json_real(strtod(s, NULL));
		json_t *j = json_stringn(s, len);
		if (!j)
			snprintf(err, errsz, "%s:%zu: invalid string", file,
				 n->start_mark.line + 1);
		return j;
	}
	case YAML_SEQUENCE_NODE: {
		json_t *a = json_array();
		for (yaml_node_item_t *it = n->data.sequence.items.start;
		     it < n->data.sequence.items.top; it++) {
			json_t *c = node_to_json(d, yaml_document_get_node(d, *it), file, err,
						 errsz, depth + 1);
			if (!c) {
				json_decref(a);
				return NULL;
			}
			json_array_append_new(a, c);
		}
		return a;
	}
	case YAML_MAPPING_NODE: {
		json_t *o = json_object();
		for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
		     p < n->data.mapping.pairs.top; p++) {
			yaml_node_t *k = yaml_document_get_node(d, p->key);
			if (k->type != YAML_SCALAR_NODE) {
				snprintf(err, errsz, "%s:%zu: a mapping key must be a string", file,
					 k->start_mark.line + 1);
				json_decref(o);
				return NULL;
			}
			const char *ks = (const char *)k->data.scalar.value;
			if (json_object_get(o, ks)) {
				snprintf(err, errsz, "%s:%zu: duplicate key \"%s\"", file,
					 k->start_mark.line + 1, ks);
				json_decref(o);
				return NULL;
			}
			json_t *c = node_to_json(d, yaml_document_get_node(d, p->value), file, err,
						 errsz, depth + 1);
			if (!c) {
				json_decref(o);
				return NULL;
			}
			json_object_set_new(o, ks, c);
		}
		return o;
	}
	default:
		snprintf(err, errsz, "%s:%zu: empty node", file, n->start_mark.line + 1);
		return NULL;
	}
}

static yaml_node_t *map_get(yaml_document_t *d, yaml_node_t *m, const char *key)
{
	for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = yaml_document_get_node(d, p->key);
		if (k->type == YAML_SCALAR_NODE && !strcmp((char *)k->data.scalar.value, key))
			return yaml_document_get_node(d, p->value);
	}
	return NULL;
}

/* One manifest document (a mapping kind/name/spec) to @out. */
static int add_doc(struct docs *out, yaml_document_t *d, yaml_node_t *n, const char *file,
		   char *err, size_t errsz)
{
	size_t line = n->start_mark.line + 1;
	if (n->type != YAML_MAPPING_NODE) {
		snprintf(err, errsz, "%s:%zu: a document must be a mapping with kind, name, spec",
			 file, line);
		return -1;
	}
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = yaml_document_get_node(d, p->key);
		const char *ks = k->type == YAML_SCALAR_NODE ? (char *)k->data.scalar.value : "";
		if (strcmp(ks, "kind") && strcmp(ks, "name") && strcmp(ks, "spec")) {
			snprintf(err, errsz, "%s:%zu: unknown field \"%s\" (kind, name, spec)",
				 file, k->start_mark.line + 1, ks);
			return -1;
		}
	}
	yaml_node_t *k = map_get(d, n, "kind"), *nm = map_get(d, n, "name"),
		    *sp = map_get(d, n, "spec");
	if (!k || !nm || !sp) {
		snprintf(err, errsz, "%s:%zu: missing \"%s\"", file, line,
			 !k    ? "kind"
			 : !nm ? "name"
			       : "spec");
		return -1;
	}
	const char *kind = k->type == YAML_SCALAR_NODE
				   ? ctl_kind_plural((char *)k->data.scalar.value)
				   : NULL;
	if (!kind) {
		snprintf(err, errsz, "%s:%zu: unknown kind (route, cluster, listener or kv)", file,
			 k->start_mark.line + 1);
		return -1;
	}
	const char *name = nm->type == YAML_SCALAR_NODE ? (char *)nm->data.scalar.value : "";
	size_t nl = strlen(name);
	int ok = nl >= 1 && nl <= 128 && strcmp(name, ".") && strcmp(name, "..");
	for (const char *p = name; ok && *p; p++)
		ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		     (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-';
	if (!ok) {
		snprintf(err, errsz, "%s:%zu: \"name\" must match [A-Za-z0-9._-]{1,128}", file,
			 nm->start_mark.line + 1);
		return -1;
	}
	json_t *spec = node_to_json(d, sp, file, err, errsz, 0);
	if (!spec)
		return -1;
	if (!strcmp(kind, "kv") ? !json_is_string(spec) : !json_is_object(spec)) {
		snprintf(err, errsz, "%s:%zu: \"spec\" of a %s must be %s", file,
			 sp->start_mark.line + 1, kind,
			 !strcmp(kind, "kv") ? "a string" : "a mapping");
		json_decref(spec);
		return -1;
	}
	for (size_t i = 0; i < out->n; i++)
		if (out->v[i].kind == kind && !strcmp(out->v[i].name, name)) {
			snprintf(err, errsz, "%s:%zu: %s/%s is also defined at %.400s:%d", file,
				 line, kind, name, out->v[i].file, out->v[i].line);
			json_decref(spec);
			return -1;
		}
	if (out->n == 128) {
		snprintf(err, errsz, "%s:%zu: more than 128 documents (one transaction)", file,
			 line);
		json_decref(spec);
		return -1;
	}
	if (out->n == out->cap) {
		out->cap = out->cap ? out->cap * 2 : 16;
		out->v = realloc(out->v, out->cap * sizeof *out->v);
	}
	struct doc *dc = &out->v[out->n++];
	snprintf(dc->file, sizeof dc->file, "%s", file);
	dc->line = (int)line;
	dc->kind = kind;
	dc->name = strdup(name);
	dc->spec = spec;
	return 0;
}

static int load_file(struct docs *out, const char *path, char *err, size_t errsz)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	const char *shown = strcmp(path, "-") ? path : "<stdin>";
	if (!f) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return -1;
	}
	yaml_parser_t p;
	yaml_parser_initialize(&p);
	yaml_parser_set_input_file(&p, f);
	int rc = 0;
	for (;;) {
		yaml_document_t d;
		if (!yaml_parser_load(&p, &d)) {
			snprintf(err, errsz, "%s:%zu: %s%s%s", shown, p.problem_mark.line + 1,
				 p.problem ? p.problem : "YAML syntax error", p.context ? " " : "",
				 p.context ? p.context : "");
			rc = -1;
			break;
		}
		yaml_node_t *root = yaml_document_get_root_node(&d);
		if (!root) {
			yaml_document_delete(&d);
			break; /* end of stream */
		}
		if (root->type == YAML_SEQUENCE_NODE) {
			for (yaml_node_item_t *it = root->data.sequence.items.start;
			     rc == 0 && it < root->data.sequence.items.top; it++)
				rc = add_doc(out, &d, yaml_document_get_node(&d, *it), shown, err,
					     errsz);
		} else {
			rc = add_doc(out, &d, root, shown, err, errsz);
		}
		yaml_document_delete(&d);
		if (rc)
			break;
	}
	yaml_parser_delete(&p);
	if (f != stdin)
		fclose(f);
	return rc;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int load_path(struct docs *out, const char *path, char *err, size_t errsz)
{
	struct stat st;
	if (strcmp(path, "-") && stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		DIR *dir = opendir(path);
		if (!dir) {
			snprintf(err, errsz, "%s: %s", path, strerror(errno));
			return -1;
		}
		char **names = NULL;
		size_t n = 0;
		struct dirent *e;
		while ((e = readdir(dir))) {
			const char *dot = strrchr(e->d_name, '.');
			if (e->d_name[0] == '.' || !dot ||
			    (strcmp(dot, ".yaml") && strcmp(dot, ".yml") && strcmp(dot, ".json")))
				continue;
			names = realloc(names, (n + 1) * sizeof *names);
			names[n++] = strdup(e->d_name);
		}
		closedir(dir);
		qsort(names, n, sizeof *names, cmp_str);
		int rc = 0;
		for (size_t i = 0; i < n; i++) {
			char full[2048];
			snprintf(full, sizeof full, "%s/%s", path, names[i]);
			if (!rc)
				rc = load_file(out, full, err, errsz);
			free(names[i]);
		}
		free(names);
		return rc;
	}
	return load_file(out, path, err, errsz);
}

json_t *ctl_yaml_to_json_file(const char *path, char *err, size_t errsz)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	if (!f) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return NULL;
	}
	yaml_parser_t p;
	yaml_parser_initialize(&p);
	yaml_parser_set_input_file(&p, f);
	yaml_document_t d;
	json_t *j = NULL;
	if (!yaml_parser_load(&p, &d)) {
		snprintf(err, errsz, "%s:%zu: %s", path, p.problem_mark.line + 1,
			 p.problem ? p.problem : "YAML syntax error");
	} else {
		yaml_node_t *root = yaml_document_get_root_node(&d);
		if (root)
			j = node_to_json(&d, root, path, err, errsz, 0);
		else
			snprintf(err, errsz, "%s: empty", path);
		yaml_document_delete(&d);
	}
	yaml_parser_delete(&p);
	if (f != stdin)
		fclose(f);
	return j;
}

/* ---- shared option parsing ------------------------------------------------ */

struct apply_opts {
	const char *paths[64];
	int npaths;
	int prune, dry_run, wait;
	const char *prune_prefix;
	long wait_ms;
};

static int parse_opts(int argc, char **argv, struct apply_opts *o, int is_diff)
{
	memset(o, 0, sizeof *o);
	o->wait_ms = 30000;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-f") || !strcmp(a, "--filename")) {
			if (i + 1 >= argc || o->npaths == 64) {
				fprintf(stderr, "raftplanectl: -f needs FILE, DIR or -\n");
				return -1;
			}
			o->paths[o->npaths++] = argv[++i];
		} else if (!strcmp(a, "--prune")) {
			o->prune = 1;
		} else if (!strcmp(a, "--prune-prefix")) {
			if (i + 1 >= argc || !*argv[i + 1]) {
				fprintf(stderr,
					"raftplanectl: --prune-prefix needs a non-empty prefix\n");
				return -1;
			}
			o->prune_prefix = argv[++i];
		} else if (!is_diff && !strcmp(a, "--dry-run")) {
			o->dry_run = 1;
		} else if (!is_diff && !strcmp(a, "--wait")) {
			o->wait = 1;
			if (i + 1 < argc && argv[i + 1][0] >= '0' && argv[i + 1][0] <= '9') {
				if (ctl_parse_duration_ms(argv[++i], &o->wait_ms) ||
				    o->wait_ms > 600000) {
					fprintf(stderr,
						"raftplanectl: --wait must be like 30s or "
						"500ms, at most 10m: %s\n",
						argv[i]);
					return -1;
				}
			}
		} else {
			fprintf(stderr, "raftplanectl: %s: unknown argument %s\n",
				is_diff ? "diff" : "apply", a);
			return -1;
		}
	}
	if (!o->npaths) {
		fprintf(stderr, "raftplanectl: -f FILE|DIR|- is required\n");
		return -1;
	}
	if (o->prune != (o->prune_prefix != NULL)) {
		fprintf(stderr, "raftplanectl: --prune and --prune-prefix P go together (the "
				"prefix limits what a prune may delete)\n");
		return -1;
	}
	if (o->dry_run && o->wait) {
		fprintf(stderr, "raftplanectl: --dry-run and --wait exclude each other\n");
		return -1;
	}
	return 0;
}

static int load_all(struct apply_opts *o, struct docs *d)
{
	char err[1024];
	for (int i = 0; i < o->npaths; i++)
		if (load_path(d, o->paths[i], err, sizeof err)) {
			fprintf(stderr, "%s\n", err);
			return -1;
		}
	if (!d->n) {
		fprintf(stderr, "raftplanectl: no documents in the given files\n");
		return -1;
	}
	return 0;
}

/* names of @kind on the server, for prune */
struct prune_item {
	const char *kind;
	char *name;
};

static int kind_rank(const char *k, int del)
{
	/* puts: clusters, listeners, routes, kv; deletes the other way */
	int r = !strcmp(k, "clusters")    ? 0
		: !strcmp(k, "listeners") ? 1
		: !strcmp(k, "routes")    ? 2
					  : 3;
	return del ? 3 - r : r;
}

static int collect_prune(struct apply_opts *o, struct docs *d, struct prune_item **out,
			 size_t *nout)
{
	static const char *kinds[] = {"clusters", "listeners", "routes"};
	*out = NULL;
	*nout = 0;
	if (!o->prune)
		return 0;
	for (int order = 2; order >= 0; order--) {
		const char *k = kinds[order];
		int mentioned = 0;
		for (size_t i = 0; i < d->n; i++)
			mentioned |= d->v[i].kind == k || !strcmp(d->v[i].kind, k);
		if (!mentioned)
			continue;
		char path[64];
		snprintf(path, sizeof path, "/v1/%s", k);
		struct ctl_resp r = {0};
		int ex = ctl_request("GET", path, NULL, 0, NULL, 0, 0, &r);
		if (ex)
			return ex;
		if (r.status != 200) {
			ex = ctl_http_error(&r, path);
			ctl_resp_free(&r);
			return ex;
		}
		json_t *j = ctl_json_body(&r);
		ctl_resp_free(&r);
		size_t i;
		json_t *e;
		json_array_foreach(json_object_get(j, "items"), i, e)
		{
			const char *n = json_string_value(json_object_get(e, "name"));
			if (!n || strncmp(n, o->prune_prefix, strlen(o->prune_prefix)))
				continue;
			int named = 0;
			for (size_t x = 0; x < d->n; x++)
				named |= !strcmp(d->v[x].kind, k) && !strcmp(d->v[x].name, n);
			if (named)
				continue;
			*out = realloc(*out, (*nout + 1) * sizeof **out);
			(*out)[*nout].kind = k;
			(*out)[(*nout)++].name = strdup(n);
		}
		json_decref(j);
	}
	return 0;
}

/* Which proxies a dry run says would get a new snapshot version. */
void ctl_print_dry_proxies(json_t *j)
{
	size_t i;
	json_t *e, *others = json_object_get(j, "other_nodes");
	json_array_foreach(json_object_get(j, "proxies"), i, e)
		printf("  proxy %s: version %lld -> %lld%s\n",
		       json_string_value(json_object_get(e, "node_id")),
		       (long long)json_integer_value(json_object_get(e, "version")),
		       (long long)json_integer_value(json_object_get(e, "new_version")),
		       json_is_true(json_object_get(e, "attached")) ? "" : " (not attached)");
	if (json_is_object(others))
		printf("  any other node id: version %lld -> %lld\n",
		       (long long)json_integer_value(json_object_get(others, "version")),
		       (long long)json_integer_value(json_object_get(others, "new_version")));
	printf("  %lld proxies unchanged\n",
	       (long long)json_integer_value(json_object_get(j, "unchanged_proxies")));
}

static int cmp_doc(const void *a, const void *b)
{
	const struct doc *const *x = a, *const *y = b;
	int d = kind_rank((*x)->kind, 0) - kind_rank((*y)->kind, 0);
	return d ? d : (int)((*x) - (*y));
}

int cmd_apply(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			fputs("usage: raftplanectl apply -f FILE|DIR|- [-f ...] [--prune "
			      "--prune-prefix P] [--wait [DURATION]] [--dry-run]\n"
			      "Documents: {kind: route|cluster|listener|kv, name: N, spec: ...}, "
			      "YAML or JSON, several per file (--- or a top-level list).\n"
			      "Everything is sent as ONE transaction: all or nothing.\n"
			      "--prune deletes mesh items of the kinds the files mention whose "
			      "names start with P and that the files do not name.\n"
			      "--wait: wait (default 30s) for every proxy to ACK the revision; "
			      "exit 1 on a NACK or a timeout.\n",
			      stdout);
			return 0;
		}
	struct apply_opts o;
	if (parse_opts(argc, argv, &o, 0))
		return CTL_EXIT_USAGE;
	struct docs d = {0};
	if (load_all(&o, &d)) {
		docs_free(&d);
		return CTL_EXIT_USAGE;
	}
	struct prune_item *pr;
	size_t npr;
	int ex = collect_prune(&o, &d, &pr, &npr);
	if (ex) {
		docs_free(&d);
		return ex;
	}
	if (d.n + npr > 128) {
		fprintf(stderr,
			"raftplanectl: %zu operations: more than the 128 of one transaction\n",
			d.n + npr);
		ex = CTL_EXIT_USAGE;
		goto out;
	}
	/* op i -> document (or NULL for a prune delete) */
	struct doc **order = malloc((d.n ? d.n : 1) * sizeof *order);
	for (size_t i = 0; i < d.n; i++)
		order[i] = &d.v[i];
	qsort(order, d.n, sizeof *order, cmp_doc);
	json_t *ops = json_array();
	for (size_t i = 0; i < d.n; i++)
		json_array_append_new(ops, json_pack("{ss ss ss sO}", "op", "put", "kind",
						     order[i]->kind, "name", order[i]->name,
						     "value", order[i]->spec));
	for (size_t i = 0; i < npr; i++)
		json_array_append_new(ops, json_pack("{ss ss ss}", "op", "delete", "kind",
						     pr[i].kind, "name", pr[i].name));
	json_t *txn = json_pack("{so}", "ops", ops);
	char *body = json_dumps(txn, JSON_COMPACT);
	json_decref(txn);
	struct ctl_resp r = {0};
	ex = ctl_request("POST", o.dry_run ? "/v1/txn?dry_run=true" : "/v1/txn", body, strlen(body),
			 "application/json", !o.dry_run, 0, &r);
	free(body);
	if (ex)
		goto out2;
	json_t *j = ctl_json_body(&r);
	if (r.status != 200) {
		json_t *idx = json_object_get(json_object_get(j, "error"), "index");
		if (json_is_integer(idx)) {
			json_int_t i = json_integer_value(idx);
			const char *msg = json_string_value(
				json_object_get(json_object_get(j, "error"), "message"));
			if (i >= 0 && (size_t)i < d.n)
				fprintf(stderr, "%s:%d: %s/%s: %s\n", order[i]->file,
					order[i]->line, order[i]->kind, order[i]->name,
					msg ? msg : "");
			else if (i >= 0 && (size_t)i < d.n + npr)
				fprintf(stderr, "raftplanectl: prune of %s/%s: %s\n",
					pr[i - d.n].kind, pr[i - d.n].name, msg ? msg : "");
		}
		ex = ctl_http_error(&r, o.dry_run ? "apply --dry-run" : "apply");
		if (r.status == 503 && !o.dry_run) {
			const char *code = json_string_value(
				json_object_get(json_object_get(j, "error"), "code"));
			if (code && !strcmp(code, "outcome_unknown"))
				fprintf(stderr, "raftplanectl: check `raftplanectl history` for a "
						"revision with these changes\n");
		}
		json_decref(j);
		ctl_resp_free(&r);
		goto out2;
	}
	ctl_resp_free(&r);
	long long rev = json_integer_value(json_object_get(j, "revision"));
	if (o.dry_run && !json_is_true(json_object_get(j, "dry_run"))) {
		/* a server without dry_run support ignores the parameter */
		fprintf(stderr,
			"raftplanectl: the server does not support dry runs: the changes WERE "
			"APPLIED as revision %lld (raftplanectl rollback %lld undoes them)\n",
			rev, rev - 1);
		ex = CTL_EXIT_FAIL;
		o.dry_run = 0;
		o.wait = 0;
	}
	if (g_opts.out != CTL_OUT_TABLE) {
		ctl_print_value(j);
	} else {
		if (o.dry_run)
			printf("dry run: nothing changed; would be revision %lld (now %lld)\n",
			       (long long)json_integer_value(
				       json_object_get(j, "would_be_revision")),
			       rev);
		else
			printf("applied as revision %lld\n", rev);
		size_t i;
		json_t *e;
		json_array_foreach(json_object_get(j, o.dry_run ? "changes" : "results"), i, e)
		{
			const char *what = json_string_value(json_object_get(e, "change"));
			printf("  %s %s/%s%s%s\n", json_string_value(json_object_get(e, "op")),
			       json_string_value(json_object_get(e, "kind")),
			       json_string_value(json_object_get(e, "name")), what ? ": " : "",
			       what ? what : "");
		}
		if (o.dry_run)
			ctl_print_dry_proxies(j);
	}
	json_decref(j);
	if (o.wait && !o.dry_run)
		ex = ctl_show_rollout(rev, o.wait_ms);
out2:
	free(order);
out:
	for (size_t i = 0; i < npr; i++)
		free(pr[i].name);
	free(pr);
	docs_free(&d);
	return ex;
}

/* ---- diff ------------------------------------------------------------------- */

/* @server projected on the keys @local has: the server fills in defaults, a
 * key absent from the file is not a change. */
static json_t *project(json_t *server, json_t *local)
{
	if (json_is_object(server) && json_is_object(local)) {
		json_t *o = json_object();
		const char *k;
		json_t *v;
		json_object_foreach(server, k, v)
		{
			json_t *l = json_object_get(local, k);
			if (l)
				json_object_set_new(o, k, project(v, l));
		}
		return o;
	}
	if (json_is_array(server) && json_is_array(local)) {
		json_t *a = json_array();
		size_t i;
		json_t *v;
		json_array_foreach(server, i, v)
		{
			json_t *l = json_array_get(local, i);
			json_array_append_new(a, l ? project(v, l) : json_incref(v));
		}
		return a;
	}
	return json_incref(server);
}

static char **split_lines(char *s, size_t *n)
{
	char **v = NULL;
	*n = 0;
	if (!s)
		return NULL;
	for (char *p = s; *p;) {
		char *nl = strchr(p, '\n');
		v = realloc(v, (*n + 1) * sizeof *v);
		v[(*n)++] = p;
		if (!nl)
			break;
		*nl = 0;
		p = nl + 1;
	}
	return v;
}

/* unified diff with up to 3 lines of context, from an LCS table */
static void udiff(const char *label, char *a, char *b)
{
	size_t na, nb;
	char **la = split_lines(a, &na), **lb = split_lines(b, &nb);
	size_t w = nb + 1;
	unsigned *t = calloc((na + 1) * w, sizeof *t);
	for (size_t i = na; i-- > 0;)
		for (size_t j = nb; j-- > 0;)
			t[i * w + j] = !strcmp(la[i], lb[j]) ? t[(i + 1) * w + j + 1] + 1
				       : t[(i + 1) * w + j] > t[i * w + j + 1] ? t[(i + 1) * w + j]
									       : t[i * w + j + 1];
	const char *red = g_opts.color ? "\033[31m" : "", *green = g_opts.color ? "\033[32m" : "",
		   *cyan = g_opts.color ? "\033[36m" : "", *off = g_opts.color ? "\033[0m" : "";
	printf("--- %s (server)\n+++ %s (files)\n", label, label);
	/* edit script: 0 same, 1 delete, 2 insert; on a tie the delete goes
	 * first, so a changed line reads "-old" then "+new" as in diff(1) */
	size_t cap = na + nb + 1, n = 0;
	int *op = malloc(cap * sizeof *op);
	size_t *ia = malloc(cap * sizeof *ia), *ib = malloc(cap * sizeof *ib);
	size_t i = 0, j = 0;
	while (i < na || j < nb) {
		if (i < na && j < nb && !strcmp(la[i], lb[j])) {
			op[n] = 0, ia[n] = i++, ib[n++] = j++;
		} else if (i < na && (j == nb || t[(i + 1) * w + j] >= t[i * w + j + 1])) {
			op[n] = 1, ia[n] = i++, ib[n++] = j;
		} else {
			op[n] = 2, ia[n] = i, ib[n++] = j++;
		}
	}
	for (size_t k = 0; k < n;) {
		if (op[k] == 0) {
			k++;
			continue;
		}
		size_t s = k >= 3 ? k - 3 : 0, e = k;
		/* extend the hunk while changes are within 6 lines */
		for (;;) {
			while (e < n && op[e] != 0)
				e++;
			size_t same = 0;
			while (e + same < n && op[e + same] == 0 && same < 7)
				same++;
			if (e + same < n && same < 7) {
				e += same;
				continue;
			}
			e += same < 3 ? same : 3;
			break;
		}
		size_t ca = 0, cb = 0;
		for (size_t x = s; x < e; x++) {
			ca += op[x] != 2;
			cb += op[x] != 1;
		}
		printf("%s@@ -%zu,%zu +%zu,%zu @@%s\n", cyan, ca ? ia[s] + 1 : ia[s], ca,
		       cb ? ib[s] + 1 : ib[s], cb, off);
		for (size_t x = s; x < e; x++) {
			if (op[x] == 0)
				printf(" %s\n", la[ia[x]]);
			else if (op[x] == 1)
				printf("%s-%s%s\n", red, la[ia[x]], off);
			else
				printf("%s+%s%s\n", green, lb[ib[x]], off);
		}
		k = e;
	}
	free(op);
	free(ia);
	free(ib);
	free(t);
	free(la);
	free(lb);
}

int cmd_diff(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			fputs("usage: raftplanectl diff -f FILE|DIR|- [--prune --prune-prefix P]\n"
			      "Unified diff of the server's values against the files (JSON, keys "
			      "sorted). A field the files leave out is not compared (the server "
			      "fills in defaults). Exit 0: no changes, 1: changes, >1: error.\n",
			      stdout);
			return 0;
		}
	struct apply_opts o;
	if (parse_opts(argc, argv, &o, 1))
		return CTL_EXIT_USAGE;
	struct docs d = {0};
	if (load_all(&o, &d)) {
		docs_free(&d);
		return CTL_EXIT_USAGE;
	}
	int changed = 0, ex = 0;
	for (size_t i = 0; i < d.n && !ex; i++) {
		struct doc *dc = &d.v[i];
		char path[512];
		char *esc = ctl_escape(dc->name);
		snprintf(path, sizeof path, "/v1/%s/%s", dc->kind, esc);
		free(esc);
		struct ctl_resp r = {0};
		ex = ctl_request("GET", path, NULL, 0, NULL, 0, 0, &r);
		if (ex)
			break;
		json_t *server = NULL;
		if (r.status == 200) {
			if (!strcmp(dc->kind, "kv")) {
				server = json_stringn(r.body ? r.body : "", r.len);
				if (!server)
					server = json_string("<binary value>");
			} else {
				server = ctl_json_body(&r);
				json_object_del(server, "name");
				json_object_del(server, "version");
			}
		} else if (r.status != 404) {
			ex = ctl_http_error(&r, path);
			ctl_resp_free(&r);
			break;
		}
		ctl_resp_free(&r);
		json_t *proj = server ? project(server, dc->spec) : NULL;
		char *a = proj ? ctl_pretty(proj) : strdup("");
		char *b = ctl_pretty(dc->spec);
		if (strcmp(a, b)) {
			changed = 1;
			char label[300];
			snprintf(label, sizeof label, "%s/%s", dc->kind, dc->name);
			udiff(label, a, b);
		}
		free(a);
		free(b);
		json_decref(proj);
		json_decref(server);
	}
	if (!ex) {
		struct prune_item *pr;
		size_t npr;
		ex = collect_prune(&o, &d, &pr, &npr);
		for (size_t i = 0; !ex && i < npr; i++) {
			changed = 1;
			printf("--- %s/%s (server)\n+++ %s/%s (pruned)\n@@ deleted @@\n",
			       pr[i].kind, pr[i].name, pr[i].kind, pr[i].name);
		}
		if (!ex)
			for (size_t i = 0; i < npr; i++)
				free(pr[i].name);
		if (!ex)
			free(pr);
	}
	docs_free(&d);
	if (ex)
		return ex == CTL_EXIT_FAIL ? 2 : ex;
	return changed ? 1 : 0;
}
