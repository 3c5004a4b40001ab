/* Error message table and errmsg formatting helpers. */
#include "error.h"

#include <stdio.h>
#include <string.h>

static const char *const messages[RP_CHK_ERR_COUNT] = {
	[RP_CHK_OK] = "ok",
	[RP_CHK_ENOMEM] = "out of memory",
	[RP_CHK_EIO] = "i/o error",
	[RP_CHK_EPARSE] = "parse error",
	[RP_CHK_ELIMIT] = "input too large",
	[RP_CHK_EHISTORY] = "inconsistent history",
	[RP_CHK_EINVAL] = "invalid argument",
};

const char *rp_chk_strerror(int err)
{
	if (err < 0 || err >= RP_CHK_ERR_COUNT) {
		return "unknown error";
	}
	return messages[err];
}

/* Appends @src to @dst (RP_CHK_ERRMSG_SIZE bytes) at offset @at, truncating;
 * returns the new length. */
static size_t append(char *dst, size_t at, const char *src)
{
	size_t n = strlen(src);

	if (at >= RP_CHK_ERRMSG_SIZE - 1) {
		return at;
	}
	if (n > RP_CHK_ERRMSG_SIZE - 1 - at) {
		n = RP_CHK_ERRMSG_SIZE - 1 - at;
	}
	memcpy(dst + at, src, n);
	dst[at + n] = '\0';
	return at + n;
}

int rp_chk_errorf(char *errmsg, int err, const char *fmt, ...)
{
	size_t at;
	va_list ap;

	at = append(errmsg, 0, rp_chk_strerror(err));
	at = append(errmsg, at, ": ");
	va_start(ap, fmt);
	vsnprintf(errmsg + at, RP_CHK_ERRMSG_SIZE - at, fmt, ap);
	va_end(ap);
	return err;
}

void rp_chk_err_prefix(char *errmsg, const char *fmt, ...)
{
	char old[RP_CHK_ERRMSG_SIZE];
	size_t at;
	va_list ap;

	memcpy(old, errmsg, RP_CHK_ERRMSG_SIZE);
	old[RP_CHK_ERRMSG_SIZE - 1] = '\0';
	va_start(ap, fmt);
	vsnprintf(errmsg, RP_CHK_ERRMSG_SIZE, fmt, ap);
	va_end(ap);
	at = append(errmsg, strlen(errmsg), ": ");
	append(errmsg, at, old);
}
