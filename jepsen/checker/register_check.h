/* Linearizability check of register histories, key by key. */
#ifndef RP_CHECKER_REGISTER_CHECK_H
#define RP_CHECKER_REGISTER_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "history.h"
#include "ops.h"
#include "verdict.h"
#include "window.h"

struct rp_lin_options {
	int64_t key_budget_ms;    /* per key search; <= 0 unlimited */
	int64_t global_budget_ms; /* whole check; <= 0 unlimited */
	size_t memo_limit_bytes;  /* per search; 0 unlimited */
	bool find_window;         /* compute the failing window when INVALID */
};

/** Defaults: 10 s per key, no global budget, 1 GiB memo, windows on. */
struct rp_lin_options rp_lin_options_default(void);

/** Result for one key. window is owned (freed with the report). */
struct rp_key_result {
	uint32_t key;
	enum rp_verdict verdict;
	const char *reason; /* static, for UNKNOWN; NULL otherwise */
	size_t n_ops;       /* register ops on the key, any outcome */
	size_t n_required;  /* ok ops the search must place */
	size_t n_optional;  /* open (info) writes/cas searched */
	size_t n_pruned;    /* open ops dropped as unobservable */
	size_t configs;     /* memoised configurations */
	double check_ms, window_ms;
	struct rp_window window; /* found only if INVALID and find_window */
};

/** Per-key results in key-id order; keys owned. */
struct rp_register_report {
	struct rp_key_result *keys;
	size_t n_keys;
	enum rp_verdict verdict;
	double total_ms;
};

/**
 * Checks every key of @h that has register ops (read/write/cas in @ops),
 * independently. Fills *out (free with rp_register_report_free, also after
 * an error). Returns RP_CHK_OK or an error with @errmsg set.
 */
int rp_register_check(const struct rp_history *h, const struct rp_ops *ops,
		      const struct rp_lin_options *opt, struct rp_register_report *out,
		      char *errmsg);

void rp_register_report_free(struct rp_register_report *r);

#endif /* RP_CHECKER_REGISTER_CHECK_H */
