/* Error codes and message formatting for the history checker. */
#ifndef RP_CHECKER_ERROR_H
#define RP_CHECKER_ERROR_H

#include <stdarg.h>

/** Error codes of the checker library; messages come from one table. */
enum rp_chk_err {
	RP_CHK_OK = 0,
	RP_CHK_ENOMEM,   /* allocation failed */
	RP_CHK_EIO,      /* reading the input failed */
	RP_CHK_EPARSE,   /* a line is not in the expected format */
	RP_CHK_ELIMIT,   /* input exceeds a size bound */
	RP_CHK_EHISTORY, /* well-formed lines that do not form a history */
	RP_CHK_EINVAL,   /* bad argument from the caller */
	RP_CHK_ERR_COUNT
};

/** Size of every caller-owned errmsg buffer passed to this library. */
#define RP_CHK_ERRMSG_SIZE 512

/** Static message for @err; never NULL. */
const char *rp_chk_strerror(int err);

/**
 * Writes "<strerror(err)>: <fmt...>" into @errmsg (caller-owned,
 * RP_CHK_ERRMSG_SIZE bytes) and returns @err, so callers can
 * `return rp_chk_errorf(...)`.
 */
int rp_chk_errorf(char *errmsg, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/**
 * Prepends context ("<fmt...>: ") to the message already in @errmsg, as an
 * error travels up. Truncates silently when the buffer is full.
 */
void rp_chk_err_prefix(char *errmsg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif /* RP_CHECKER_ERROR_H */
