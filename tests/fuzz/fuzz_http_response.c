/* The HTTP/1.1 client's response parser (net/client.c try_parse: status
 * line, framing by Content-Length, chunked or close, 1xx skipping, chunked
 * decoding in place, keep-alive decision), on what a server or anything
 * listening on its address sends back. client.c is included to drive its
 * static parser without sockets: the input arrives in slices (sizes from
 * its first byte), as reads would deliver it, then the stream ends.
 * Bit 6 of the first byte sets a body limit of 64 bytes (else the default).
 * A response handed to the callback has a status in 200-599 and a body
 * inside the bytes received and within the limit; the request ends exactly
 * once, and a failure always has a reason (rp_http_last_error). */
#include "net/client.c"

static int calls;
static size_t received, limit;

static void on_done(void *arg, int err, const struct rp_http_response *res)
{
	const char *in = arg;
	calls++;
	if (getenv("RP_FUZZ_VERBOSE")) /* what the seeds reach */
		fprintf(stderr, "http_response: err %d status %d body %zu of %zu received\n", err,
			res ? res->status : 0, res ? res->body_len : 0, received);
	if (err == 0) {
		if (!res || res->status < 200 || res->status > 599 || !res->content_type ||
		    !res->etag || !res->retry_after || res->body_len > received ||
		    res->body_len > limit || (res->body_len && !res->body))
			abort();
		(void)in;
		/* rp_http_header (the subscription's report interval): bounded, NUL-terminated */
		char v[32];
		if (!res->head || res->head_len > received ||
		    (rp_http_header(res, "x-raftplane-report-interval-ms", v, sizeof v) == 0 &&
		     v[0]) ||
		    strlen(v) >= sizeof v)
			abort();
		volatile char sink = 0;
		for (size_t i = 0; i < res->body_len; i++)
			sink ^= res->body[i]; /* every body byte is readable */
		(void)sink;
	} else if (res || (err != RP_HTTP_ERR_CONNECT && !rp_http_err_sent(err)) ||
		   !rp_http_last_error()[0]) {
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uv_loop_t loop;
	static int init;
	if (!init) {
		uv_loop_init(&loop);
		init = 1;
	}
	if (size < 1)
		return 0;
	size_t step = (size_t)(data[0] & 0x3f) + 1;
	limit = data[0] & 0x40 ? 64 : RP_CLIENT_MAX_RESPONSE;
	data++, size--;
	calls = 0;
	received = 0;
	struct rp_http_req *r = calloc(1, sizeof *r);
	struct conn *c = calloc(1, sizeof *c);
	r->loop = &loop;
	r->cb = on_done;
	r->sent = 1;
	r->max_body = limit;
	uv_timer_init(&loop, &r->timer);
	r->timer.data = r;
	uv_tcp_init(&loop, &c->tcp);
	c->tcp.data = c;
	c->req = r;
	r->conn = c;
	size_t pos = 0;
	while (!r->done && pos < size) {
		uv_buf_t b;
		on_alloc((uv_handle_t *)&c->tcp, 65536, &b);
		size_t k = size - pos < step ? size - pos : step;
		if (k > b.len)
			k = b.len;
		memcpy(b.base, data + pos, k);
		pos += k;
		received += k;
		on_read((uv_stream_t *)&c->tcp, (ssize_t)k, &b);
	}
	if (!r->done) {
		uv_buf_t b = uv_buf_init(NULL, 0);
		on_read((uv_stream_t *)&c->tcp, UV_EOF, &b);
	}
	if (calls != 1)
		abort();
	while (idle_head) /* a reusable connection went idle: close it */
		conn_close(idle_head);
	uv_run(&loop, UV_RUN_NOWAIT);
	return 0;
}
