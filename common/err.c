/* The one table of error codes, messages and HTTP statuses. */
#include "raftplane/err.h"

static const struct {
	const char *code;
	const char *message;
	int status;
} table[RP_ERR__COUNT] = {
	[RP_OK] = {"ok", "success", 200},
	[RP_ERR_NOMEM] = {"out_of_memory", "out of memory", 500},
	[RP_ERR_INVALID] = {"invalid_argument", "invalid input", 400},
	[RP_ERR_NOT_FOUND] = {"not_found", "no such item", 404},
	[RP_ERR_PRECONDITION] = {"precondition_failed", "precondition failed", 412},
	[RP_ERR_CONFLICT] = {"conflict", "conflicting change", 409},
	[RP_ERR_DANGLING] = {"dangling_reference", "refers to a missing item", 409},
	[RP_ERR_IN_USE] = {"in_use", "still referred to by another item", 409},
	[RP_ERR_TOO_LARGE] = {"too_large", "request too large", 413},
	[RP_ERR_NO_LEADER] = {"no_leader", "no leader available", 503},
	[RP_ERR_UNKNOWN_OUTCOME] = {"outcome_unknown",
				    "the change may or may not have been applied", 503},
	[RP_ERR_UNAVAILABLE] = {"unavailable", "service unavailable", 503},
	[RP_ERR_STORAGE] = {"storage_error", "storage failure", 500},
	[RP_ERR_CORRUPT] = {"corrupt", "corrupt data", 500},
	[RP_ERR_GONE] = {"compacted", "revision compacted", 410},
	[RP_ERR_TIMEOUT] = {"timeout", "operation timed out", 504},
	[RP_ERR_INTERNAL] = {"internal", "internal error", 500},
	[RP_ERR_METHOD] = {"method_not_allowed", "method not allowed", 405},
	[RP_ERR_NO_ROUTE] = {"no_such_endpoint", "no such endpoint", 404},
	[RP_ERR_UNAUTHENTICATED] = {"unauthenticated", "a valid API token is required", 401},
	[RP_ERR_PERMISSION] = {"permission_denied", "the token's role does not allow this", 403},
	[RP_ERR_RATE_LIMITED] = {"rate_limited", "too many writes: retry later", 429},
	[RP_ERR_HEADER_TOO_LARGE] = {"header_too_large", "request header fields too large", 431},
	[RP_ERR_NEWER_FORMAT] = {"newer_format", "written by a newer release", 500},
};

static int valid(int err)
{
	return err >= 0 && err < RP_ERR__COUNT;
}

const char *rp_err_code(int err)
{
	return valid(err) ? table[err].code : "internal";
}

const char *rp_err_message(int err)
{
	return valid(err) ? table[err].message : "internal error";
}

int rp_err_http_status(int err)
{
	return valid(err) ? table[err].status : 500;
}
