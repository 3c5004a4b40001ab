/* UTF-8 checks: see utf8.h. */
#include "utf8.h"

#include <string.h>

/* Length of the UTF-8 character at @p (at most @n bytes), 0 if invalid. */
static size_t utf8_char(const unsigned char *p, size_t n)
{
	unsigned c = p[0];
	size_t len;
	unsigned min, cp;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2, min = 0x80, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, min = 0x800, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, min = 0x10000, cp = c & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

size_t rp_utf8_prefix(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < len) {
		size_t k = utf8_char(p + i, len - i);
		if (!k)
			break;
		i += k;
	}
	return i;
}

void rp_utf8_sanitize(char *dst, size_t dstlen, const char *src)
{
	const unsigned char *p = (const unsigned char *)src;
	size_t o = 0, n = strlen(src);
	if (dstlen == 0)
		return;
	while (*p) {
		size_t k = utf8_char(p, n);
		int bad = k == 0 || (k == 1 && (*p < 0x20 || *p == 0x7f));
		size_t out = bad ? 1 : k;
		if (o + out >= dstlen)
			break;
		if (bad)
			dst[o++] = '?';
		else
			memcpy(dst + o, p, k), o += k;
		p += bad ? 1 : k;
		n -= bad ? 1 : k;
	}
	dst[o] = '\0';
}
