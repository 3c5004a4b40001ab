/* UTF-8 for text that came from the network and goes into JSON or logs
 * (jansson refuses invalid UTF-8, so one bad byte would empty a body). */
#ifndef RP_NET_UTF8_H
#define RP_NET_UTF8_H

#include <stddef.h>

/** Length of the longest prefix of @s (@len bytes) that is well-formed
 * UTF-8 (no overlongs, surrogates or code points above U+10FFFF). */
size_t rp_utf8_prefix(const char *s, size_t len);

/** Copy @src into @dst (@dstlen bytes with the NUL) as valid UTF-8 without
 * control characters: bad bytes become '?', and the cut at @dstlen never
 * splits a character. */
void rp_utf8_sanitize(char *dst, size_t dstlen, const char *src);

#endif
