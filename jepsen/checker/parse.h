/* Parsers from history files into struct rp_history. */
#ifndef RP_CHECKER_PARSE_H
#define RP_CHECKER_PARSE_H

#include <stdio.h>

#include "history.h"

/**
 * Parses a Jepsen etcd log ("INFO  jepsen.util - P :type :f VALUE" per
 * line; blank lines skipped) from @f (borrowed) into @h, which must be
 * freshly initialised; every event gets the empty key "". On error @h holds
 * the events parsed so far (caller still closes it) and @errmsg names the
 * line. Returns RP_CHK_OK, RP_CHK_EPARSE, RP_CHK_ELIMIT, RP_CHK_EIO or
 * RP_CHK_ENOMEM.
 */
int rp_parse_etcd(FILE *f, struct rp_history *h, char *errmsg);

/**
 * Parses our JSON-lines format (one event object per line, see README.md)
 * from @f (borrowed) into @h. Same contract as rp_parse_etcd.
 */
int rp_parse_jsonl(FILE *f, struct rp_history *h, char *errmsg);

/**
 * Parses a decimal int64 from exactly @len bytes at @s. Returns 0 on
 * success, -1 on syntax error or overflow (*out untouched).
 */
int rp_parse_int64(const char *s, size_t len, int64_t *out);

#endif /* RP_CHECKER_PARSE_H */
