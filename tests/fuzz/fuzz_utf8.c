/* net/utf8.c: the longest valid UTF-8 prefix and the sanitiser that makes
 * network text safe for JSON and logs. Checked against jansson, which
 * refuses invalid UTF-8: every prefix rp_utf8_prefix accepts, and every
 * sanitised string, must be accepted by jansson, and the sanitised string
 * must hold no control character. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	size_t n = rp_utf8_prefix(s, size);
	if (n > size)
		abort();
	json_t *j = json_stringn(s, n);
	if (!j)
		abort();
	json_decref(j);
	if (n < size && n + 4 <= size && rp_utf8_prefix(s, n + 4) != n)
		abort(); /* the prefix is the longest one */
	char *src = malloc(size + 1);
	memcpy(src, data, size);
	src[size] = '\0';
	size_t cap = size ? (size_t)data[0] % 64 + 1 : 1;
	char *dst = malloc(cap);
	rp_utf8_sanitize(dst, cap, src);
	size_t dl = strnlen(dst, cap);
	if (dl >= cap || rp_utf8_prefix(dst, dl) != dl)
		abort();
	for (size_t i = 0; i < dl; i++)
		if ((unsigned char)dst[i] < 0x20 || dst[i] == 0x7f)
			abort();
	free(dst);
	free(src);
	return 0;
}
