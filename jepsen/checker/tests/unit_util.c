/* Helpers shared by the checker unit tests. */
#include "unit_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checker/parse.h"
#include "checker/report.h"

int ut_load(struct ut_run *r, const char *text, bool etcd)
{
	FILE *f;

	memset(r, 0, sizeof *r);
	rp_history_init(&r->h);
	f = fmemopen((void *)text, strlen(text), "r");
	if (f == NULL) {
		return r->rv = RP_CHK_EIO;
	}
	r->rv = etcd ? rp_parse_etcd(f, &r->h, r->errmsg) : rp_parse_jsonl(f, &r->h, r->errmsg);
	fclose(f);
	if (r->rv == RP_CHK_OK) {
		r->rv = rp_ops_build(&r->h, &r->ops, r->errmsg);
	}
	return r->rv;
}

int ut_register(struct ut_run *r, const char *text, const struct rp_lin_options *opt)
{
	struct rp_lin_options def = rp_lin_options_default();

	if (ut_load(r, text, false) != RP_CHK_OK) {
		return -1;
	}
	r->rv = rp_register_check(&r->h, &r->ops, opt ? opt : &def, &r->reg, r->errmsg);
	return r->rv == RP_CHK_OK ? (int)r->reg.verdict : -1;
}

int ut_set(struct ut_run *r, const char *text)
{
	if (ut_load(r, text, false) != RP_CHK_OK) {
		return -1;
	}
	r->rv = rp_set_check(&r->h, &r->ops, &r->set, r->errmsg);
	return r->rv == RP_CHK_OK ? (int)r->set.verdict : -1;
}

const struct rp_key_result *ut_key(const struct ut_run *r, const char *name)
{
	for (size_t i = 0; i < r->reg.n_keys; i++) {
		if (strcmp(rp_history_key(&r->h, r->reg.keys[i].key), name) == 0) {
			return &r->reg.keys[i];
		}
	}
	return NULL;
}

char *ut_register_text(const struct ut_run *r)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (f == NULL) {
		return NULL;
	}
	rp_report_register_text(f, &r->h, &r->ops, &r->reg);
	fclose(f);
	return buf;
}

void ut_free(struct ut_run *r)
{
	rp_register_report_free(&r->reg);
	rp_set_report_free(&r->set);
	rp_ops_free(&r->ops);
	rp_history_close(&r->h);
}
