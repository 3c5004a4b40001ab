/* Helpers shared by the checker unit tests. */
#ifndef RP_CHECKER_UNIT_UTIL_H
#define RP_CHECKER_UNIT_UTIL_H

#include "checker/error.h"
#include "checker/history.h"
#include "checker/ops.h"
#include "checker/register_check.h"
#include "checker/set_check.h"

/* One JSON-lines event; index is implied by line order. */
#define EV(p, type, f, key, val)                                                   \
	"{\"process\":" #p ",\"type\":\"" type "\",\"f\":\"" f "\",\"key\":\"" key \
	"\",\"value\":" val "}\n"

/** A parsed history with its ops and check results; all owned. */
struct ut_run {
	struct rp_history h;
	struct rp_ops ops;
	struct rp_register_report reg;
	struct rp_set_report set;
	int rv; /* first error, RP_CHK_OK if none */
	char errmsg[RP_CHK_ERRMSG_SIZE];
};

/** Parses @text (jsonl, or etcd if @etcd) and builds ops into @r. */
int ut_load(struct ut_run *r, const char *text, bool etcd);

/** ut_load + register check with @opt (NULL: defaults); returns verdict
 * or -1 on error. */
int ut_register(struct ut_run *r, const char *text, const struct rp_lin_options *opt);

/** ut_load + set check; returns verdict or -1 on error. */
int ut_set(struct ut_run *r, const char *text);

/** Result for key @name, NULL if absent. */
const struct rp_key_result *ut_key(const struct ut_run *r, const char *name);

/** Text report of the register check; caller frees. */
char *ut_register_text(const struct ut_run *r);

void ut_free(struct ut_run *r);

#endif /* RP_CHECKER_UNIT_UTIL_H */
