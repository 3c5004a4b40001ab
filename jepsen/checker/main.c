/* rp-checker: checks a Jepsen-style history file.
 *   rp-checker [--format etcd|jsonl] [--model register|set] [--budget-ms N]
 *              [--global-budget-ms N] [--memo-limit-mb N] [--no-window]
 *              [--json] FILE
 * Exit: 0 valid, 1 invalid, 2 usage or parse error, 3 unknown. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ops.h"
#include "parse.h"
#include "register_check.h"
#include "report.h"
#include "set_check.h"

#define EXIT_USAGE 2

enum format {
	FORMAT_AUTO,
	FORMAT_ETCD,
	FORMAT_JSONL
};
enum model {
	MODEL_REGISTER,
	MODEL_SET
};

struct cli {
	enum format format;
	enum model model;
	bool json;
	struct rp_lin_options lin;
	const char *path;
};

static void usage(FILE *out)
{
	fprintf(out, "usage: rp-checker [--format etcd|jsonl] [--model register|set]\n"
		     "                  [--budget-ms N] [--global-budget-ms N]\n"
		     "                  [--memo-limit-mb N] [--no-window] [--json] "
		     "FILE\n"
		     "  --format     input format (default: etcd for *.log, else "
		     "jsonl)\n"
		     "  --model      register: linearizability per key (default);\n"
		     "               set: lost acknowledged adds vs the final read\n"
		     "  --budget-ms  search budget per key (default 10000; 0 = none)\n"
		     "  --global-budget-ms  budget for all keys (default none)\n"
		     "  --no-window  skip the shortest failing window search\n"
		     "  --json       print a JSON summary instead of text\n"
		     "exit: 0 valid, 1 invalid, 2 usage/parse error, 3 unknown\n");
}

/* Non-negative decimal int64 option value; -1 on error. */
static int64_t parse_count(const char *s)
{
	int64_t v;

	if (rp_parse_int64(s, strlen(s), &v) != 0 || v < 0) {
		return -1;
	}
	return v;
}

static int set_option(struct cli *c, int opt, const char *arg)
{
	int64_t v = arg ? parse_count(arg) : 0;

	switch (opt) {
	case 'f':
		c->format = strcmp(arg, "etcd") == 0    ? FORMAT_ETCD
			    : strcmp(arg, "jsonl") == 0 ? FORMAT_JSONL
							: (enum format) - 1;
		return (int)c->format < 0 ? -1 : 0;
	case 'm':
		c->model = strcmp(arg, "register") == 0 ? MODEL_REGISTER
			   : strcmp(arg, "set") == 0    ? MODEL_SET
							: (enum model) - 1;
		return (int)c->model < 0 ? -1 : 0;
	case 'b': c->lin.key_budget_ms = v; return v < 0 ? -1 : 0;
	case 'g': c->lin.global_budget_ms = v; return v < 0 ? -1 : 0;
	case 'M':
		c->lin.memo_limit_bytes = (size_t)v << 20;
		return v < 0 || v > ((int64_t)1 << 40) ? -1 : 0;
	case 'w': c->lin.find_window = false; return 0;
	case 'j': c->json = true; return 0;
	default: return -1;
	}
}

static int parse_args(int argc, char **argv, struct cli *c)
{
	static const struct option longopts[] = {{"format", required_argument, NULL, 'f'},
						 {"model", required_argument, NULL, 'm'},
						 {"budget-ms", required_argument, NULL, 'b'},
						 {"global-budget-ms", required_argument, NULL, 'g'},
						 {"memo-limit-mb", required_argument, NULL, 'M'},
						 {"no-window", no_argument, NULL, 'w'},
						 {"json", no_argument, NULL, 'j'},
						 {"help", no_argument, NULL, 'h'},
						 {NULL, 0, NULL, 0}};
	int opt;

	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (opt == 'h') {
			usage(stdout);
			exit(0);
		}
		if (set_option(c, opt, optarg) != 0) {
			fprintf(stderr, "rp-checker: bad option or value\n");
			return -1;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "rp-checker: expected exactly one FILE\n");
		return -1;
	}
	c->path = argv[optind];
	if (c->format == FORMAT_AUTO) {
		size_t len = strlen(c->path);
		c->format = len > 4 && strcmp(c->path + len - 4, ".log") == 0 ? FORMAT_ETCD
									      : FORMAT_JSONL;
	}
	return 0;
}

static int load(const struct cli *c, struct rp_history *h, struct rp_ops *ops, char *errmsg)
{
	bool is_stdin = strcmp(c->path, "-") == 0;
	FILE *f = is_stdin ? stdin : fopen(c->path, "r");
	int rv;

	if (f == NULL) {
		return rp_chk_errorf(errmsg, RP_CHK_EIO, "cannot open %s", c->path);
	}
	rv = c->format == FORMAT_ETCD ? rp_parse_etcd(f, h, errmsg) : rp_parse_jsonl(f, h, errmsg);
	if (!is_stdin) {
		fclose(f);
	}
	if (rv == RP_CHK_OK) {
		rv = rp_ops_build(h, ops, errmsg);
	}
	if (rv != RP_CHK_OK) {
		rp_chk_err_prefix(errmsg, "%s", c->path);
	}
	return rv;
}

/* A history with client ops but none the model checks is a usage error:
 * "valid" would only mean "wrong --model". */
static bool model_mismatch(const struct rp_ops *ops, enum model m)
{
	for (size_t i = 0; i < ops->n; i++) {
		enum rp_fn fn = ops->ops[i].fn;
		bool set_op = fn == RP_FN_ADD || fn == RP_FN_FINAL_READ;
		if (set_op == (m == MODEL_SET)) {
			return false;
		}
	}
	return ops->n > 0;
}

static int print_json(json_t *j)
{
	if (j == NULL || json_dumpf(j, stdout, JSON_COMPACT) != 0) {
		json_decref(j);
		fprintf(stderr, "rp-checker: cannot build JSON output\n");
		return -1;
	}
	json_decref(j);
	putchar('\n');
	return 0;
}

static int run_register(const struct cli *c, const struct rp_history *h, const struct rp_ops *ops,
			char *errmsg)
{
	struct rp_register_report rep;
	int code = EXIT_USAGE;

	if (rp_register_check(h, ops, &c->lin, &rep, errmsg) != RP_CHK_OK) {
		fprintf(stderr, "rp-checker: %s\n", errmsg);
		goto out;
	}
	if (c->json) {
		if (print_json(rp_report_register_json(h, ops, &rep)) != 0) {
			goto out;
		}
	} else {
		rp_report_register_text(stdout, h, ops, &rep);
		rp_report_overall_text(stdout, rep.verdict, ops);
	}
	code = rp_verdict_exit_code(rep.verdict);
out:
	rp_register_report_free(&rep);
	return code;
}

static int run_set(const struct cli *c, const struct rp_history *h, const struct rp_ops *ops,
		   char *errmsg)
{
	struct rp_set_report rep;
	int code = EXIT_USAGE;

	if (rp_set_check(h, ops, &rep, errmsg) != RP_CHK_OK) {
		fprintf(stderr, "rp-checker: %s\n", errmsg);
		goto out;
	}
	if (c->json) {
		if (print_json(rp_report_set_json(h, ops, &rep)) != 0) {
			goto out;
		}
	} else {
		rp_report_set_text(stdout, h, &rep);
		rp_report_overall_text(stdout, rep.verdict, ops);
	}
	code = rp_verdict_exit_code(rep.verdict);
out:
	rp_set_report_free(&rep);
	return code;
}

int main(int argc, char **argv)
{
	struct cli c = {.lin = rp_lin_options_default()};
	char errmsg[RP_CHK_ERRMSG_SIZE];
	struct rp_history h;
	struct rp_ops ops = {0};
	int code = EXIT_USAGE;

	if (parse_args(argc, argv, &c) != 0) {
		usage(stderr);
		return EXIT_USAGE;
	}
	rp_history_init(&h);
	if (load(&c, &h, &ops, errmsg) != RP_CHK_OK) {
		fprintf(stderr, "rp-checker: %s\n", errmsg);
		goto out;
	}
	if (model_mismatch(&ops, c.model)) {
		fprintf(stderr, "rp-checker: %s has no %s operations (wrong --model?)\n", c.path,
			c.model == MODEL_SET ? "add/final-read" : "read/write/cas");
		goto out;
	}
	code = c.model == MODEL_SET ? run_set(&c, &h, &ops, errmsg)
				    : run_register(&c, &h, &ops, errmsg);
out:
	rp_ops_free(&ops);
	rp_history_close(&h);
	return code;
}
