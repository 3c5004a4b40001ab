/* Checks of untrusted protobuf bytes: see wire.h. */
#include "wire.h"

#include <stdio.h>
#include <string.h>

static int varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	*v = 0;
	for (int shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;
		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return 0;
	}
	return -1;
}

int rp_pb_check_strings(const uint8_t *buf, size_t len, uint64_t string_fields, size_t max_len,
			char *msg, size_t msglen)
{
	const uint8_t *p = buf, *end = buf + len;
	while (p < end) {
		uint64_t tag, n;
		if (varint(&p, end, &tag) != 0)
			goto malformed;
		uint64_t field = tag >> 3;
		switch (tag & 7) {
		case 0:
			if (varint(&p, end, &n) != 0)
				goto malformed;
			break;
		case 1:
		case 5: {
			size_t w = (tag & 7) == 1 ? 8 : 4;
			if ((size_t)(end - p) < w)
				goto malformed;
			p += w;
			break;
		}
		case 2:
			if (varint(&p, end, &n) != 0 || n > (uint64_t)(end - p))
				goto malformed;
			if (field < 64 && (string_fields >> field & 1)) {
				if (n > max_len) {
					snprintf(msg, msglen, "field %u over %zu bytes",
						 (unsigned)field, max_len);
					return -1;
				}
				if (memchr(p, 0, (size_t)n) ||
				    rp_utf8_prefix((const char *)p, (size_t)n) != n) {
					snprintf(msg, msglen,
						 "field %u is not UTF-8 text without NUL",
						 (unsigned)field);
					return -1;
				}
			}
			p += n;
			break;
		default: goto malformed;
		}
	}
	return 0;
malformed:
	snprintf(msg, msglen, "malformed protobuf");
	return -1;
}

int rp_cluster_id_valid(const char *id)
{
	size_t i = 0;
	for (; id[i]; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
			return 0;
	return i == 32;
}
