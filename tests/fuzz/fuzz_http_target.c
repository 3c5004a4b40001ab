/* net/httpcheck.c rp_http_parse_target: the request target the proxy
 * normalises and forwards. Whatever the input, an accepted target must come
 * out as bytes that cannot end the request line or start a header, with a
 * path that starts with '/' and holds no dot-segment, and normalising it
 * again must change nothing. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/httpcheck.h"

static void check_safe(h2o_iovec_t v)
{
	for (size_t i = 0; i < v.len; i++) {
		unsigned char c = (unsigned char)v.base[i];
		if (c <= ' ' || c >= 0x7f || strchr("\"#<>[\\]^`{|}", c))
			abort();
	}
}

static int has_dot_segment(h2o_iovec_t p)
{
	for (size_t i = 0; i < p.len; i++) {
		if (p.base[i] != '/')
			continue;
		size_t j = i + 1, k = j;
		while (k < p.len && p.base[k] != '/')
			k++;
		if ((k - j == 1 && p.base[j] == '.') ||
		    (k - j == 2 && p.base[j] == '.' && p.base[j + 1] == '.'))
			return 1;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	h2o_mem_pool_t pool;
	h2o_mem_init_pool(&pool);
	struct rp_http_target t;
	if (rp_http_parse_target(&pool, h2o_iovec_init(data, size), &t) == NULL) {
		if (!t.path.len || t.path.base[0] != '/' || has_dot_segment(t.path))
			abort();
		check_safe(t.path);
		if (t.query.len && t.query.base[0] != '?')
			abort();
		check_safe(h2o_iovec_init(t.query.base + (t.query.len ? 1 : 0),
					  t.query.len ? t.query.len - 1 : 0));
		/* idempotent: the normalised origin-form target is a fixed point */
		size_t n = t.path.len + t.query.len;
		char *again = h2o_mem_alloc_pool(&pool, n);
		memcpy(again, t.path.base, t.path.len);
		memcpy(again + t.path.len, t.query.base, t.query.len);
		struct rp_http_target u;
		if (rp_http_parse_target(&pool, h2o_iovec_init(again, n), &u) != NULL ||
		    !h2o_memis(u.path.base, u.path.len, t.path.base, t.path.len) ||
		    !h2o_memis(u.query.base, u.query.len, t.query.base, t.query.len))
			abort();
	}
	h2o_mem_clear_pool(&pool);
	return 0;
}
