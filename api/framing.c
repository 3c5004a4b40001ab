/* Message framing checks of an HTTP/1 request head (RFC 9112), which h2o
 * 2.2 does not make.
 *
 * h2o takes the first Content-Length and ignores the others, lets
 * Transfer-Encoding win over Content-Length silently, keeps the last Host
 * and accepts none: behind any intermediary that frames the message
 * differently, the bytes after what h2o took as the body are parsed as a
 * second, smuggled request. h2o also removes these headers from
 * req->headers, so the check reads the raw head, which h2o keeps at the
 * start of the connection's input buffer until the request is done.
 *
 * Refused (400, then the connection is closed so that nothing after the
 * head is read as another request): two Content-Length values that differ
 * or one that is not digits; Transfer-Encoding together with
 * Content-Length; Transfer-Encoding in more than one line; an HTTP/1.1
 * request with no Host or more than one; a folded (obs-fold) header line. */
#include <string.h>

#include "api.h"

struct head_counts {
	int cl, te, host;
	const char *cl_val;
	size_t cl_len;
};

static int name_is(const char *p, size_t len, const char *name)
{
	return len == strlen(name) && h2o_lcstris(p, len, name, len);
}

static void trim(const char **v, size_t *len)
{
	while (*len && (**v == ' ' || **v == '\t'))
		(*v)++, (*len)--;
	while (*len && ((*v)[*len - 1] == ' ' || (*v)[*len - 1] == '\t'))
		(*len)--;
}

/* One header line (without its line end); NULL when fine, else the reason. */
static const char *check_line(const char *p, size_t len, struct head_counts *k)
{
	if (p[0] == ' ' || p[0] == '\t')
		return "folded header lines (obs-fold) are not accepted";
	const char *colon = memchr(p, ':', len);
	if (!colon)
		return NULL; /* h2o refused the head already if it mattered */
	size_t nlen = (size_t)(colon - p);
	const char *v = colon + 1;
	size_t vlen = len - nlen - 1;
	trim(&v, &vlen);
	if (name_is(p, nlen, "host")) {
		k->host++;
	} else if (name_is(p, nlen, "transfer-encoding")) {
		k->te++;
	} else if (name_is(p, nlen, "content-length")) {
		for (size_t i = 0; i < vlen; i++)
			if (v[i] < '0' || v[i] > '9')
				return "Content-Length must be decimal digits";
		if (vlen == 0)
			return "Content-Length must be decimal digits";
		if (k->cl++ && (vlen != k->cl_len || memcmp(v, k->cl_val, vlen) != 0))
			return "two different Content-Length values";
		k->cl_val = v, k->cl_len = vlen;
	}
	return NULL;
}

const char *rp_framing_check(h2o_req_t *req)
{
	if (req->version >= 0x200 || !req->conn->callbacks->get_socket)
		return NULL; /* HTTP/2 frames messages itself */
	h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
	if (!sock || !sock->input)
		return NULL;
	const char *p = sock->input->bytes, *end = p + sock->input->size;
	struct head_counts k = {0, 0, 0, NULL, 0};
	const char *nl = memchr(p, '\n', (size_t)(end - p)); /* skip the request line */
	while (nl && nl + 1 < end) {
		const char *line = nl + 1;
		nl = memchr(line, '\n', (size_t)(end - line));
		size_t len = (size_t)((nl ? nl : end) - line);
		if (len && line[len - 1] == '\r')
			len--;
		if (len == 0)
			break; /* end of the head */
		const char *why = check_line(line, len, &k);
		if (why)
			return why;
	}
	if (k.te && k.cl)
		return "Transfer-Encoding and Content-Length together";
	if (k.te > 1)
		return "Transfer-Encoding in more than one line";
	if (k.host > 1)
		return "more than one Host";
	if (k.host == 0 && req->version >= 0x101)
		return "HTTP/1.1 requires a Host header";
	return NULL;
}
