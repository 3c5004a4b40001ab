/* Set checker: lost acknowledged adds against a final read. */
#ifndef RP_CHECKER_SET_CHECK_H
#define RP_CHECKER_SET_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "history.h"
#include "ops.h"
#include "verdict.h"

/**
 * Result for one set (key). Element arrays are sorted, distinct and owned
 * (freed with the report).
 */
struct rp_set_key_result {
	uint32_t key;
	enum rp_verdict verdict;
	const char *reason; /* static, for UNKNOWN */
	size_t n_adds_ok, n_adds_fail, n_adds_info;
	size_t final_read_op; /* index into ops, SIZE_MAX if none */
	size_t read_size;     /* distinct elements in the final read */
	int64_t *lost;        /* ok add, done before the read began, absent */
	size_t n_lost;
	int64_t *unexpected; /* read but never added */
	size_t n_unexpected;
	int64_t *failed_present; /* only failed adds, yet read */
	size_t n_failed_present;
	size_t info_present, info_absent; /* elements whose adds were info */
	size_t concurrent_absent;         /* ok adds overlapping the read, absent */
};

struct rp_set_report {
	struct rp_set_key_result *keys; /* owned */
	size_t n_keys;
	enum rp_verdict verdict;
};

/**
 * Checks every key with add/final-read ops against its last ok final-read:
 * INVALID if an acknowledged add completed before that read was invoked
 * and is missing (lost), if the read holds an element never added
 * (unexpected), or an element whose adds all failed (fail is definite).
 * Info adds may be present or absent (counted only). UNKNOWN if a key has
 * no ok final-read. Fills *out (rp_set_report_free, also after an error);
 * returns RP_CHK_OK or RP_CHK_ENOMEM.
 */
int rp_set_check(const struct rp_history *h, const struct rp_ops *ops, struct rp_set_report *out,
		 char *errmsg);

void rp_set_report_free(struct rp_set_report *r);

#endif /* RP_CHECKER_SET_CHECK_H */
