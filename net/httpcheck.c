/* HTTP request checks and the safe request target: see httpcheck.h. */
#include "httpcheck.h"

#include <string.h>
#include <strings.h>

/* picohttpparser, as exported by libh2o (its header is not installed) */
struct rp_phr_header {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};
int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len,
		      const char **path, size_t *path_len, int *minor_version,
		      struct rp_phr_header *headers, size_t *num_headers, size_t last_len);

/* ---- character classes ------------------------------------------------------ */

enum {
	C_UNRESERVED = 1, /* ALPHA DIGIT - . _ ~ */
	C_PATH = 2,       /* allowed raw in a path: pchar, '/', '%' */
	C_QUERY = 4,      /* allowed raw in a query: C_PATH and '?' */
	C_TOKEN = 8,      /* tchar */
	C_HOST = 16,      /* uri-host [":" port]: reg-name, IP-literal, '%' */
};

static unsigned char cls[256];

__attribute__((constructor)) static void init_classes(void)
{
	static const char sub_delims[] = "!$&'()*+,;=";
	static const char tchar_extra[] = "!#$%&'*+-.^_`|~";
	for (int c = 0; c < 256; c++) {
		int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9');
		unsigned char v = 0;
		if (alnum || (c && strchr("-._~", c)))
			v |= C_UNRESERVED;
		if ((v & C_UNRESERVED) || (c && strchr(sub_delims, c)) || c == ':' || c == '@' ||
		    c == '/' || c == '%')
			v |= C_PATH | C_QUERY;
		if (c == '?')
			v |= C_QUERY;
		if (alnum || (c && strchr(tchar_extra, c)))
			v |= C_TOKEN;
		if ((v & C_UNRESERVED) || (c && strchr(sub_delims, c)) || c == ':' || c == '[' ||
		    c == ']' || c == '%')
			v |= C_HOST;
		cls[c] = v;
	}
}

int rp_http_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static const char HEX[] = "0123456789ABCDEF";

int rp_http_is_token(const char *s, size_t len)
{
	if (len == 0)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!(cls[(unsigned char)s[i]] & C_TOKEN))
			return 0;
	return 1;
}

int rp_http_valid_authority(const char *s, size_t len)
{
	if (len == 0 || len > 255 + 6)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!(cls[(unsigned char)s[i]] & C_HOST))
			return 0;
	return 1;
}

int rp_http_has_token(const char *list, size_t len, const char *tok, size_t toklen)
{
	size_t i = 0;
	while (i < len) {
		while (i < len && (list[i] == ' ' || list[i] == '\t' || list[i] == ','))
			i++;
		size_t start = i;
		while (i < len && list[i] != ',')
			i++;
		size_t end = i;
		while (end > start && (list[end - 1] == ' ' || list[end - 1] == '\t'))
			end--;
		if (end - start == toklen && strncasecmp(list + start, tok, toklen) == 0)
			return 1;
	}
	return 0;
}

/* ---- the request head --------------------------------------------------------- */

static int name_is(const struct rp_phr_header *h, const char *name, size_t len)
{
	return h->name_len == len && strncasecmp(h->name, name, len) == 0;
}

const char *rp_http_check_request(h2o_req_t *req, struct rp_http_head *out)
{
	out->no_host = 0;
	if (req->version >= 0x200) /* framing is h2o's; the authority is ours to check */
		return rp_http_valid_authority(req->input.authority.base, req->input.authority.len)
			       ? NULL
			       : "invalid :authority";
	h2o_socket_t *sock = req->conn->callbacks->get_socket
				     ? req->conn->callbacks->get_socket(req->conn)
				     : NULL;
	if (!sock || !sock->input)
		return "request head not available";
	return rp_http_check_head(sock->input->bytes, sock->input->size, out);
}

const char *rp_http_check_head(const char *buf, size_t len, struct rp_http_head *out)
{
	out->no_host = 0;
	struct rp_phr_header h[H2O_MAX_HEADERS];
	size_t n = H2O_MAX_HEADERS, mlen, plen;
	const char *m, *p;
	int minor;
	if (phr_parse_request(buf, len, &m, &mlen, &p, &plen, &minor, h, &n, 0) <= 0)
		return "request head not available";
	unsigned cl = 0, te = 0, host = 0;
	for (size_t i = 0; i < n; i++) {
		if (h[i].name == NULL || h[i].name_len == 0)
			return "obsolete line folding in the header";
		if (name_is(&h[i], "content-length", 14)) {
			cl++;
		} else if (name_is(&h[i], "transfer-encoding", 17)) {
			te++;
		} else if (name_is(&h[i], "host", 4)) {
			if (++host == 1 && !rp_http_valid_authority(h[i].value, h[i].value_len))
				return "invalid Host header";
		}
	}
	if (cl > 1)
		return "more than one Content-Length header";
	if (te > 1)
		return "more than one Transfer-Encoding header";
	if (te && cl)
		return "both Transfer-Encoding and Content-Length";
	if (te && minor == 0)
		return "Transfer-Encoding in an HTTP/1.0 request";
	if (host > 1)
		return "more than one Host header";
	if (host == 0) {
		if (minor >= 1)
			return "missing Host header";
		out->no_host = 1;
	}
	return NULL;
}

/* ---- the request target ------------------------------------------------------- */

/* Remove the segment out[seg..n) if it is "." or ".."; returns the new end,
 * or SIZE_MAX when the segment is a normal one. out[0] is '/' and out[seg-1]
 * the slash before the segment. */
static size_t drop_dot_segment(const char *out, size_t n, size_t seg)
{
	size_t len = n - seg;
	if (len == 1 && out[seg] == '.')
		return seg;
	if (len == 2 && out[seg] == '.' && out[seg + 1] == '.') {
		if (seg <= 1)
			return 1;
		size_t k = seg - 2; /* last byte of the previous segment, or its slash */
		while (out[k] != '/')
			k--;
		return k + 1;
	}
	return SIZE_MAX;
}

static size_t put_escaped(char *out, size_t n, unsigned char c)
{
	out[n++] = '%';
	out[n++] = HEX[c >> 4];
	out[n++] = HEX[c & 15];
	return n;
}

/* One pass over the path @s (@len bytes, s[0] == '/') into @out (room for
 * 3 * len bytes). Returns the length, or SIZE_MAX on a malformed escape. */
static size_t normalize_path(const char *s, size_t len, char *out)
{
	size_t n = 1, seg = 1;
	out[0] = '/';
	for (size_t i = 1; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '/') {
			size_t cut = drop_dot_segment(out, n, seg);
			if (cut != SIZE_MAX) {
				n = seg = cut;
				continue;
			}
			out[n++] = '/';
			seg = n;
		} else if (c == '%') {
			int hi = i + 2 < len ? rp_http_hexval(s[i + 1]) : -1;
			int lo = i + 2 < len ? rp_http_hexval(s[i + 2]) : -1;
			if (hi < 0 || lo < 0)
				return SIZE_MAX;
			unsigned char d = (unsigned char)(hi << 4 | lo);
			i += 2;
			if (cls[d] & C_UNRESERVED)
				out[n++] = (char)d;
			else
				n = put_escaped(out, n, d);
		} else if (cls[c] & C_PATH) {
			out[n++] = (char)c;
		} else {
			n = put_escaped(out, n, c);
		}
	}
	size_t cut = drop_dot_segment(out, n, seg);
	return cut != SIZE_MAX ? cut : n;
}

/* Split an absolute-form target into authority and the rest. */
static const char *split_absolute(h2o_iovec_t *raw, h2o_iovec_t *authority)
{
	size_t skip;
	if (raw->len >= 7 && strncasecmp(raw->base, "http://", 7) == 0)
		skip = 7;
	else if (raw->len >= 8 && strncasecmp(raw->base, "https://", 8) == 0)
		skip = 8;
	else
		return "request target is not origin-form or http absolute-form";
	size_t end = skip;
	while (end < raw->len && raw->base[end] != '/' && raw->base[end] != '?')
		end++;
	*authority = h2o_iovec_init(raw->base + skip, end - skip);
	if (!rp_http_valid_authority(authority->base, authority->len))
		return "invalid authority in the request target";
	*raw = h2o_iovec_init(raw->base + end, raw->len - end);
	return NULL;
}

const char *rp_http_parse_target(h2o_mem_pool_t *pool, h2o_iovec_t raw, struct rp_http_target *out)
{
	out->authority = h2o_iovec_init(NULL, 0);
	if (raw.len == 0 || raw.base[0] != '/') {
		const char *why = split_absolute(&raw, &out->authority);
		if (why)
			return why;
	}
	size_t q = 0;
	while (q < raw.len && raw.base[q] != '?')
		q++;
	/* the path (or "/" for "http://host" and "http://host?q"), then the query */
	char *buf = h2o_mem_alloc_pool(pool, 3 * raw.len + 2);
	size_t n = q ? normalize_path(raw.base, q, buf) : (buf[0] = '/', 1);
	if (n == SIZE_MAX)
		return "malformed %-escape in the path";
	out->path = h2o_iovec_init(buf, n);
	char *qs = buf + n;
	size_t m = 0;
	for (size_t i = q; i < raw.len; i++) {
		unsigned char c = (unsigned char)raw.base[i];
		if (cls[c] & C_QUERY)
			qs[m++] = (char)c;
		else
			m = put_escaped(qs, m, c);
	}
	out->query = h2o_iovec_init(qs, m);
	return NULL;
}
