/* Known-answer test: runs the register checker (with failing windows, as
 * rp-checker does) over every etcd_*.log in the given directory and
 * compares with its VERDICTS file. Fails on any disagreement, any UNKNOWN,
 * any file slower than MAX_FILE_MS, or a missing/empty corpus. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checker/clock.h"
#include "checker/error.h"
#include "checker/ops.h"
#include "checker/parse.h"
#include "checker/register_check.h"

#define MAX_FILE_MS 10000.0
#define MAX_LOGS 1024

/* expected[n]: -1 unknown, 0 false, 1 true */
static int load_verdicts(const char *dir, int *expected)
{
	char path[4096], line[256];
	FILE *f;
	int n, count = 0;

	snprintf(path, sizeof path, "%s/VERDICTS", dir);
	f = fopen(path, "r");
	if (f == NULL) {
		return -1;
	}
	while (fgets(line, sizeof line, f) != NULL) {
		char word[16];
		if (line[0] == '#' || sscanf(line, "%d %15s", &n, word) != 2 || n < 0 ||
		    n >= MAX_LOGS) {
			continue;
		}
		expected[n] = strcmp(word, "true") == 0 ? 1 : 0;
		count++;
	}
	fclose(f);
	return count;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted etcd_*.log names (owned by caller); -1 if the dir is unreadable. */
static int list_logs(const char *dir, char **names)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (d == NULL) {
		return -1;
	}
	while ((e = readdir(d)) != NULL && n < MAX_LOGS) {
		size_t len = strlen(e->d_name);
		if (strncmp(e->d_name, "etcd_", 5) == 0 && len > 4 &&
		    strcmp(e->d_name + len - 4, ".log") == 0) {
			names[n++] = strdup(e->d_name);
		}
	}
	closedir(d);
	qsort(names, (size_t)n, sizeof *names, cmp_str);
	return n;
}

/* Checks one file; returns its verdict or -1 on error. */
static int check_file(const char *path, double *ms, double *window_ms)
{
	char errmsg[RP_CHK_ERRMSG_SIZE];
	struct rp_lin_options opt = rp_lin_options_default();
	struct rp_register_report rep = {0};
	struct rp_history h;
	struct rp_ops ops = {0};
	int64_t t0 = rp_clock_now_ns();
	int verdict = -1;
	FILE *f = fopen(path, "r");

	rp_history_init(&h);
	if (f == NULL) {
		fprintf(stderr, "cannot open %s\n", path);
		goto out;
	}
	if (rp_parse_etcd(f, &h, errmsg) != RP_CHK_OK ||
	    rp_ops_build(&h, &ops, errmsg) != RP_CHK_OK ||
	    rp_register_check(&h, &ops, &opt, &rep, errmsg) != RP_CHK_OK) {
		fprintf(stderr, "%s: %s\n", path, errmsg);
		goto out;
	}
	verdict = (int)rep.verdict;
	*window_ms = 0;
	for (size_t i = 0; i < rep.n_keys; i++) {
		*window_ms += rep.keys[i].window_ms;
	}
out:
	*ms = rp_clock_ms_since(t0);
	if (f != NULL) {
		fclose(f);
	}
	rp_register_report_free(&rep);
	rp_ops_free(&ops);
	rp_history_close(&h);
	return verdict;
}

static const char *expect_name(int e)
{
	return e < 0 ? "(none)" : e ? "VALID" : "INVALID";
}

int main(int argc, char **argv)
{
	static int expected[MAX_LOGS];
	char *names[MAX_LOGS];
	double total = 0, max = 0;
	int n, n_verdicts, failures = 0, matched = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s TESTDATA_DIR\n", argv[0]);
		return 2;
	}
	memset(expected, -1, sizeof expected);
	n_verdicts = load_verdicts(argv[1], expected);
	n = list_logs(argv[1], names);
	if (n_verdicts <= 0 || n <= 0) {
		fprintf(stderr,
			"FAIL: etcd corpus missing or empty at %s (need etcd_*.log "
			"and VERDICTS; set RP_TESTDATA_DIR)\n",
			argv[1]);
		return 1;
	}
	for (int i = 0; i < n; i++) {
		char path[4096];
		double ms, wms = 0;
		int num = atoi(names[i] + 5);
		int want = num >= 0 && num < MAX_LOGS ? expected[num] : -1;
		int got;
		bool ok;
		snprintf(path, sizeof path, "%s/%s", argv[1], names[i]);
		got = check_file(path, &ms, &wms);
		ok = got >= 0 && got != RP_VERDICT_UNKNOWN && ms <= MAX_FILE_MS &&
		     (want < 0 || (got == RP_VERDICT_VALID) == (want == 1));
		printf("%-14s %-8s expected %-8s %9.2f ms (window %8.2f ms)%s\n", names[i],
		       got < 0 ? "ERROR" : rp_verdict_name(got), expect_name(want), ms, wms,
		       ok ? "" : "  <-- FAIL");
		failures += !ok;
		matched += want >= 0;
		total += ms;
		max = ms > max ? ms : max;
		free(names[i]);
	}
	if (matched != n_verdicts) {
		printf("FAIL: VERDICTS lists %d histories, found %d of them\n", n_verdicts,
		       matched);
		failures++;
	}
	printf("%d files, %d failures; total %.1f ms, max %.1f ms\n", n, failures, total, max);
	return failures ? 1 : 0;
}
