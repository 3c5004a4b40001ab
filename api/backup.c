/* GET /v1/backup (docs/api.md): the state machine as one SQLite file.
 *
 * Read on the ready leader after a barrier, like a linearizable GET. The
 * image is rp_store_serialize's (sqlite3_serialize: a real SQLite database
 * file), taken in one step on the loop thread, so it is consistent at the
 * revision sent in x-raftplane-revision.
 *
 * Invariants
 * 1. The image is not copied: it is owned by the call (freed when the
 *    request goes) and handed to h2o in CHUNK-sized slices by a generator,
 *    one slice per proceed, so that h2o never holds a second copy of it.
 * 2. The checksum header is the SHA-256 of exactly the bytes of the body. */
#include <inttypes.h>
#include <openssl/sha.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "backup.h"
#include "leader.h"
#include "raftplane/err.h"

#define CHUNK ((size_t)1 << 20)

struct backup_call {
	h2o_generator_t gen; /* first: h2o hands it back to the callbacks */
	unsigned char *data; /* the image, sqlite3_malloc'd (invariant 1) */
	size_t len, sent;
	h2o_req_t *req;
};

static void backup_dispose(void *p)
{
	struct backup_call *b = p;
	sqlite3_free(b->data);
}

static void send_next(struct backup_call *b)
{
	size_t n = b->len - b->sent < CHUNK ? b->len - b->sent : CHUNK;
	h2o_iovec_t v = h2o_iovec_init(b->data + b->sent, n);
	b->sent += n;
	h2o_send(b->req, &v, 1,
		 b->sent == b->len ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void on_proceed(h2o_generator_t *g, h2o_req_t *req)
{
	(void)req;
	send_next((struct backup_call *)g);
}

static void on_stop(h2o_generator_t *g, h2o_req_t *req)
{
	(void)g;
	(void)req; /* the image is freed with the request (invariant 1) */
}

static void add_header(h2o_req_t *req, const char *name, const char *value)
{
	h2o_iovec_t v = h2o_strdup(&req->pool, value, SIZE_MAX);
	h2o_add_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 0, NULL, v.base,
			      v.len);
}

static void backup_reader(struct rp_call *c)
{
	struct backup_call *b = c->ctx;
	struct rp_store *s = rp_node_store(c->api->node);
	void *buf = NULL;
	size_t len = 0;
	char num[32], sum[7 + 2 * SHA256_DIGEST_LENGTH + 1] = "sha256=";
	unsigned char md[SHA256_DIGEST_LENGTH];
	int rv = rp_store_serialize(s, &buf, &len);
	if (rv != RP_OK || len == 0) {
		sqlite3_free(buf);
		rp_respond_error(c, rv != RP_OK ? rv : RP_ERR_INTERNAL,
				 "could not copy the database", -1);
		return;
	}
	b->data = buf;
	b->len = len;
	SHA256(b->data, len, md);
	for (size_t i = 0; i < sizeof md; i++)
		snprintf(sum + 7 + 2 * i, 3, "%02x", md[i]);
	if (!rp_call_begin_response(c, 200))
		return;
	h2o_req_t *req = c->req;
	b->req = req;
	snprintf(num, sizeof num, "%" PRIu64, rp_store_revision(s));
	h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
		       H2O_STRLIT("application/vnd.sqlite3"));
	add_header(req, "x-raftplane-revision", num);
	add_header(req, "x-raftplane-cluster-id", rp_store_cluster_id(s));
	add_header(req, "x-raftplane-checksum", sum);
	add_header(req, "content-disposition", "attachment; filename=\"raftplane-backup.db\"");
	req->res.content_length = len;
	b->gen.proceed = on_proceed;
	b->gen.stop = on_stop;
	h2o_start_response(req, &b->gen);
	if (h2o_memis(req->input.method.base, req->input.method.len, H2O_STRLIT("HEAD"))) {
		h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
		return;
	}
	send_next(b);
}

void rp_route_backup(struct rp_call *c)
{
	struct backup_call *b = rp_call_alloc(c, sizeof *b, backup_dispose);
	memset(b, 0, sizeof *b);
	c->ctx = b;
	if (c->req->query_at != SIZE_MAX) {
		rp_respond_error(c, RP_ERR_INVALID, "/v1/backup takes no query parameters", -1);
		return;
	}
	rp_leader_read(c, backup_reader);
}
