/* Rendering of checker results: human-readable text and JSON. */
#ifndef RP_CHECKER_REPORT_H
#define RP_CHECKER_REPORT_H

#include <jansson.h>
#include <stdio.h>

#include "history.h"
#include "ops.h"
#include "register_check.h"
#include "set_check.h"

/** Writes "3", "nil", "[1 2]" or "(5 elements)" for @op into @buf. */
void rp_format_op_value(const struct rp_op *op, char *buf, size_t size);

/** Per-key lines (and failing windows) of a register check. */
void rp_report_register_text(FILE *out, const struct rp_history *h, const struct rp_ops *ops,
			     const struct rp_register_report *r);

/** Per-key lines of a set check. */
void rp_report_set_text(FILE *out, const struct rp_history *h, const struct rp_set_report *r);

/** The closing "overall: VERDICT ..." line. */
void rp_report_overall_text(FILE *out, enum rp_verdict v, const struct rp_ops *ops);

/**
 * {"valid":true|false|"unknown","model":"register","keys":{...},
 *  "ops":{"ok":N,"fail":N,"info":N}}. Returns a new reference owned by the
 * caller, or NULL if out of memory.
 */
json_t *rp_report_register_json(const struct rp_history *h, const struct rp_ops *ops,
				const struct rp_register_report *r);

/** Same shape for a set check ("model":"set"). */
json_t *rp_report_set_json(const struct rp_history *h, const struct rp_ops *ops,
			   const struct rp_set_report *r);

#endif /* RP_CHECKER_REPORT_H */
