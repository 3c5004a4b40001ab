/* Reading a REST request: query parameters, percent-decoding, headers,
 * numbers and durations (contracts in params.h). */
#include <stdint.h>
#include <string.h>

#include "httpcheck.h"
#include "params.h"

/* Percent-decode @len bytes of @v into @out (NUL-terminated, *outlen bytes);
 * @plus: '+' means a space (query strings). -1 on bad escapes, NUL or overflow. */
static int url_decode(const char *v, size_t len, char *out, size_t outcap, int plus, size_t *outlen)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		char ch = v[i];
		if (ch == '%') {
			int hi, lo;
			if (i + 2 >= len || (hi = rp_http_hexval(v[i + 1])) < 0 ||
			    (lo = rp_http_hexval(v[i + 2])) < 0)
				return -1;
			ch = (char)(hi * 16 + lo);
			i += 2;
		} else if (ch == '+' && plus) {
			ch = ' ';
		}
		if (ch == '\0' || o + 1 >= outcap)
			return -1;
		out[o++] = ch;
	}
	out[o] = '\0';
	if (outlen)
		*outlen = o;
	return 0;
}

int rp_path_decode(const char *v, size_t len, char *out, size_t outcap, size_t *outlen)
{
	return url_decode(v, len, out, outcap, 0, outlen);
}

int rp_query_param(h2o_req_t *req, const char *name, char *out, size_t outlen)
{
	if (req->query_at == SIZE_MAX)
		return 0;
	const char *q = req->path.base + req->query_at + 1;
	const char *end = req->path.base + req->path.len;
	size_t nlen = strlen(name);
	int found = 0;
	while (q < end) {
		const char *amp = memchr(q, '&', (size_t)(end - q));
		if (!amp)
			amp = end;
		const char *eq = memchr(q, '=', (size_t)(amp - q));
		const char *kend = eq ? eq : amp;
		if ((size_t)(kend - q) == nlen && memcmp(q, name, nlen) == 0) {
			const char *v = eq ? eq + 1 : amp;
			if (found++ || url_decode(v, (size_t)(amp - v), out, outlen, 1, NULL) != 0)
				return -1; /* a repeated parameter is ambiguous: refused */
		}
		q = amp + 1;
	}
	return found;
}

int rp_parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	if (len == 0 || len > 20)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* DIGITS[.DIGITS] then ms, s, m or nothing (seconds); nothing else (no sign,
 * space, hex, exponent, inf or nan). Integer arithmetic: exact, no overflow. */
int rp_parse_wait(const char *s, uint64_t max_ms, uint64_t *ms)
{
	size_t i = 0, int_len, frac_len = 0;
	uint64_t whole, frac = 0, scale = 1, unit;
	while (s[i] >= '0' && s[i] <= '9')
		i++;
	int_len = i;
	if (int_len == 0 || int_len > 9 || rp_parse_u64(s, int_len, &whole) != 0)
		return -1;
	if (s[i] == '.') {
		size_t f0 = ++i;
		while (s[i] >= '0' && s[i] <= '9')
			i++;
		frac_len = i - f0;
		if (frac_len == 0 || frac_len > 6 || rp_parse_u64(s + f0, frac_len, &frac) != 0)
			return -1;
		for (size_t k = 0; k < frac_len; k++)
			scale *= 10;
	}
	if (strcmp(s + i, "ms") == 0)
		unit = 1;
	else if (strcmp(s + i, "s") == 0 || s[i] == '\0')
		unit = 1000;
	else if (strcmp(s + i, "m") == 0)
		unit = 60000;
	else
		return -1;
	*ms = whole * unit + frac * unit / scale;
	return *ms <= max_ms ? 0 : -1;
}

const char *rp_header(h2o_req_t *req, const h2o_token_t *token)
{
	ssize_t i = h2o_find_header(&req->headers, token, -1);
	if (i < 0)
		return NULL;
	h2o_iovec_t v = req->headers.entries[i].value;
	return h2o_strdup(&req->pool, v.base, v.len).base;
}

const char *rp_header_list(h2o_req_t *req, const h2o_token_t *token)
{
	size_t total = 0, n = 0;
	for (ssize_t i = -1; (i = h2o_find_header(&req->headers, token, i)) >= 0; n++)
		total += req->headers.entries[i].value.len + 2;
	if (n == 0)
		return NULL;
	char *out = h2o_mem_alloc_pool(&req->pool, total + 1), *o = out;
	for (ssize_t i = -1; (i = h2o_find_header(&req->headers, token, i)) >= 0;) {
		h2o_iovec_t v = req->headers.entries[i].value;
		if (o != out)
			*o++ = ',', *o++ = ' ';
		memcpy(o, v.base, v.len);
		o += v.len;
	}
	*o = '\0';
	return out;
}
