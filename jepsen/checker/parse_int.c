/* Overflow-checked decimal integer parsing. */
#include <stdbool.h>
#include <stdint.h>

#include "parse.h"

int rp_parse_int64(const char *s, size_t len, int64_t *out)
{
	bool neg = false;
	uint64_t limit, acc = 0;
	size_t i = 0;

	if (len > 0 && (s[0] == '-' || s[0] == '+')) {
		neg = s[0] == '-';
		i = 1;
	}
	if (i == len) {
		return -1;
	}
	limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; i < len; i++) {
		unsigned d = (unsigned char)s[i] - '0';
		if (d > 9 || acc > (limit - d) / 10) {
			return -1;
		}
		acc = acc * 10 + d;
	}
	*out = neg ? (int64_t)(0 - acc) : (int64_t)acc;
	return 0;
}
