/* The proxy subscription protocol, server side (docs/protocol.md).
 *
 * A proxy POSTs a SubscribeRequest (protobuf) naming its node id and the
 * version it holds (its ACK) or could not apply (its NACK); the answer is its
 * Snapshot as soon as a newer version exists on this server, or 304 when the
 * wait ends. Every server answers from its own applied state.
 *
 * Invariants
 * 1. One rp_sub_node per node id holds the encoding of its snapshot at its
 *    current version, shared (refcounted) by every answer in flight; an
 *    answer never copies the bytes. The encoding leaves node_id out: an
 *    answer is the node's node_id field (rp_snapshot_node_prefix) followed
 *    by it, so nodes with the same listeners at the same version (the same
 *    rp_node_key) share one encoding per mesh (the class cache), and a
 *    fleet under "*" listeners costs one encoding per change, not one per
 *    node.
 * 2. A server never answers with a version older than the one the proxy
 *    reports: when the proxy claims a version above this server's revision
 *    the request waits for the server to catch up (or gets 503 behind).
 * 3. A parked request is on its node's waiting list exactly while it is
 *    parked on `sub_wait` (call.h invariant 5), and counted in
 *    n->n_parked and api->subscribers; every revision change re-evaluates
 *    the waiting lists of nodes whose version may have moved. Its state
 *    (struct sub_call, c->ctx) is in the request pool.
 * 4. Fleet entries (soft state, not replicated) age out proxy_ttl_ms after
 *    the last request ended, unless a request is parked. An entry is shown
 *    (n->known) only once a request carrying an ACK, a NACK or another
 *    cluster's id passed every check: first contacts and rejected requests
 *    record nothing (docs/protocol.md, "fleet state").
 * 5. At most opts.max_subscribers polls are parked at once; beyond that a
 *    poll that would wait gets 503 (memory stays bounded when a fleet
 *    reconnects at once). At most opts.max_subscriptions_per_node (when
 *    set) of them for one node id; beyond that 429 rate_limited with
 *    Retry-After (a proxy holds one poll, two or three while a restart
 *    overlaps: more is a client looping or a forged id). Both refusals are
 *    counted. A parked poll whose client leaves is released at once
 *    (park.c), slot and `connected` included.
 * 6. NACK rule: a NACK of version N stays until an ACK of a version > N, or
 *    an ACK of N itself after this server sent N to the node again (a proxy
 *    that restarted). An ACK that would not clear a NACK it is not above is
 *    not recorded, so ACKs of older attempts never mask a later NACK.
 *    Ordering uses api->sub_seq (local), exported as wall times for merging.
 * 7. Cluster id: the first ready leader proposes SET_CLUSTER_ID (random 128
 *    bits); every snapshot carries the store's id. A request whose versions
 *    refer to another cluster (cluster_id set and different) is answered as
 *    a first contact, its versions ignored.
 * 8. Protocol version (include/raftplane/version.h): every answer carries
 *    x-raftplane-protocol with the highest version this server speaks; a
 *    request's x-raftplane-protocol is the subscriber's highest (absent:
 *    1). Both sides speak the lower of the two; with only version 1 there
 *    is nothing to choose, and a value this server does not know is
 *    ignored like any other unknown header. */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/time.h>

#include "accept.h"
#include "apitls.h"
#include "json.h"
#include "park.h"
#include "raftplane/err.h"
#include "raftplane/log.h"
#include "raftplane/version.h"
#include "snapshot.h"
#include "subscribe.h"
#include "watch.h"
#include "wire.h"

#define BUCKETS 4096
#define MAX_REQUEST (64 * 1024)
#define MAX_WAIT_MS (600 * 1000)
#define BEHIND_WAIT_MS 5000
#define MAX_NACK_ERROR 511
#define CLUSTER_ID_TICK_MS 200
/* string fields of SubscribeRequest: node_id, nack_error, cluster_id */
#define REQUEST_STRINGS ((1u << 1) | (1u << 4) | (1u << 8))

struct sbuf {
	int refs;
	size_t len;
	unsigned char data[];
};

struct rp_sub_node {
	char id[RP_MAX_NAME + 1];
	struct rp_sub_node *next; /* hash chain */
	/* snapshot cache */
	uint64_t version;
	uint64_t checked_rev; /* mesh revision version was computed at */
	struct sbuf *buf;
	int buf_cid; /* buf was encoded with a cluster id */
	/* waiting requests */
	struct sub_call *waiting;
	unsigned n_parked;
	/* fleet entry (invariant 6) */
	uint64_t sent_version, acked_version, nack_version;
	int has_nack, has_acked, has_sent;
	uint64_t sent_seq, nack_seq;      /* api->sub_seq when recorded */
	uint64_t acked_at_ms, nack_at_ms; /* wall clock, for the merge */
	uint64_t acked_since_ms; /* wall clock of the first ACK of acked_version (rollouts) */
	int ack_backed;          /* the acked version was sent by this server after any NACK */
	char nack_error[MAX_NACK_ERROR + 1]; /* valid UTF-8 (checked on input) */
	char cluster_id[33];                 /* what the proxy's versions refer to */
	int foreign;                         /* ... another cluster's */
	uint64_t last_seen_ms;               /* wall clock, shown in the fleet view */
	uint64_t last_seen_mono;             /* uv_now(), for ageing out (a clock step must not) */
	int known; /* has made at least one valid ACK/NACK/foreign request */
};

/* One subscription poll (c->ctx), in the request pool. */
struct sub_call {
	struct rp_call *c;
	struct rp_sub_node *node;
	struct sub_call *prev, *next; /* on node->waiting while parked */
	uint64_t held, nack_version;
	int has_held, has_nack, validated;
	uint64_t deadline;      /* uv_now() ms when the poll ends with 304 */
	const char *nack_error; /* validated NACK text (request pool) */
	char cluster[33];       /* cluster id the request's versions refer to */
	int foreign;            /* versions are another cluster's: ignored */
};

static void unpark(struct rp_call *c);
static const struct rp_park sub_wait = {"subscription", unpark};

static void sbuf_unref(struct sbuf *b)
{
	if (b && --b->refs == 0)
		free(b);
}

/* ---- the class cache (invariant 1) ----------------------------------------- */

#define CLASS_BUCKETS 1024

struct sub_class {
	struct rp_node_key key;
	struct sbuf *buf; /* one ref */
	struct sub_class *next;
};

struct rp_sub_classes {
	const struct rp_mesh *mesh; /* the mesh the encodings are of */
	struct sub_class *b[CLASS_BUCKETS];
};

static void classes_clear(struct rp_sub_classes *cl)
{
	for (size_t i = 0; i < CLASS_BUCKETS; i++) {
		while (cl->b[i]) {
			struct sub_class *x = cl->b[i];
			cl->b[i] = x->next;
			rp_node_key_release(&x->key);
			sbuf_unref(x->buf);
			free(x);
		}
	}
	cl->mesh = NULL;
}

/* The encoding of key @k in mesh @m, with a ref for the caller; takes @k
 * (kept in the cache or released). NULL when out of memory. */
static struct sbuf *class_get(struct rp_api *api, const struct rp_mesh *m, struct rp_node_key *k)
{
	if (!api->sub_classes && !(api->sub_classes = calloc(1, sizeof *api->sub_classes))) {
		rp_node_key_release(k);
		return NULL;
	}
	struct rp_sub_classes *cl = api->sub_classes;
	if (cl->mesh != m)
		classes_clear(cl);
	cl->mesh = m;
	struct sub_class **head = &cl->b[k->hash % CLASS_BUCKETS];
	for (struct sub_class *x = *head; x; x = x->next)
		if (rp_node_key_equal(&x->key, k)) {
			rp_node_key_release(k);
			x->buf->refs++;
			return x->buf;
		}
	void *data;
	size_t len;
	struct sub_class *x = calloc(1, sizeof *x);
	if (!x || rp_mesh_key_snapshot(m, k, &data, &len) != RP_OK) {
		free(x);
		rp_node_key_release(k);
		return NULL;
	}
	struct sbuf *b = malloc(sizeof *b + len);
	if (!b) {
		free(data);
		free(x);
		rp_node_key_release(k);
		return NULL;
	}
	b->refs = 2; /* the cache's and the caller's */
	b->len = len;
	memcpy(b->data, data, len);
	free(data);
	x->key = *k;
	x->buf = b;
	x->next = *head;
	*head = x;
	api->snapshots_encoded++;
	return b;
}

static uint64_t wall_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

static unsigned hash(const char *s)
{
	unsigned h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % BUCKETS;
}

static struct rp_sub_node *node_get(struct rp_api *api, const char *id, int create)
{
	unsigned h = hash(id);
	for (struct rp_sub_node *n = api->sub_buckets[h]; n; n = n->next)
		if (strcmp(n->id, id) == 0)
			return n;
	if (!create)
		return NULL;
	struct rp_sub_node *n = calloc(1, sizeof *n);
	if (!n)
		return NULL;
	snprintf(n->id, sizeof n->id, "%s", id);
	n->next = api->sub_buckets[h];
	api->sub_buckets[h] = n;
	api->n_sub_nodes++;
	return n;
}

/* The parsed mesh of the current revision, rebuilt at most once per
 * revision. NULL only when out of memory. */
static struct rp_mesh *current_mesh(struct rp_api *api)
{
	struct rp_store *s = rp_node_store(api->node);
	if (api->mesh && rp_mesh_revision(api->mesh) == rp_store_revision(s) &&
	    strcmp(rp_mesh_cluster_id(api->mesh), rp_store_cluster_id(s)) == 0)
		return api->mesh;
	if (api->sub_classes) /* before the pointer can be reused by the next mesh */
		classes_clear(api->sub_classes);
	rp_mesh_destroy(api->mesh);
	api->mesh = NULL;
	rp_mesh_build(s, &api->mesh);
	return api->mesh;
}

/* Make n->buf the encoding of n's current version (invariant 1). */
static int refresh_node(struct rp_api *api, struct rp_sub_node *n, struct rp_mesh *m)
{
	int cid = rp_mesh_cluster_id(m)[0] != '\0';
	if (n->buf && n->checked_rev == rp_mesh_revision(m) && n->buf_cid == cid)
		return RP_OK;
	struct rp_node_key k;
	if (rp_mesh_node_key(m, n->id, &k) != RP_OK)
		return RP_ERR_NOMEM;
	n->checked_rev = rp_mesh_revision(m);
	if (n->buf && k.version == n->version && n->buf_cid == cid) {
		rp_node_key_release(&k);
		return RP_OK;
	}
	uint64_t v = k.version;
	struct sbuf *b = class_get(api, m, &k);
	if (!b)
		return RP_ERR_NOMEM;
	sbuf_unref(n->buf);
	n->buf = b;
	n->buf_cid = cid;
	n->version = v;
	return RP_OK;
}

/* ---- answers ------------------------------------------------------------ */

/* Every 200 and 304 tells the proxy how often to report (telemetry.c sets
 * the default into the options). */
static void add_interval_header(struct rp_call *c)
{
	char buf[16];
	int n = snprintf(buf, sizeof buf, "%u", c->api->opts.report_interval_ms);
	h2o_iovec_t v = h2o_strdup(&c->req->pool, buf, (size_t)n);
	h2o_add_header_by_str(&c->req->pool, &c->req->res.headers,
			      H2O_STRLIT("x-raftplane-report-interval-ms"), 0, NULL, v.base, v.len);
}

static void on_sbuf_dispose(void *p)
{
	sbuf_unref(*(struct sbuf **)p);
}

static void send_snapshot(struct rp_call *c)
{
	char ver[24];
	if (!rp_call_begin_response(c, 200)) /* off the waiting list, timer stopped */
		return;
	struct sub_call *sc = c->ctx;
	struct rp_sub_node *n = sc->node;
	h2o_req_t *req = c->req;
	/* the request pool keeps a reference until the response is written */
	struct sbuf **slot = h2o_mem_alloc_shared(&req->pool, sizeof *slot, on_sbuf_dispose);
	*slot = n->buf;
	n->buf->refs++;
	int len = snprintf(ver, sizeof ver, "%" PRIu64, n->version);
	h2o_iovec_t v = h2o_strdup(&req->pool, ver, (size_t)len);
	h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
		       H2O_STRLIT("application/x-protobuf"));
	h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-raftplane-version"), 0,
			      NULL, v.base, v.len);
	add_interval_header(c);
	unsigned char *prefix = h2o_mem_alloc_pool(&req->pool, RP_SNAPSHOT_PREFIX_MAX);
	size_t plen = rp_snapshot_node_prefix(n->id, prefix);
	req->res.content_length = plen + n->buf->len;
	static h2o_generator_t generator = {NULL, NULL};
	h2o_iovec_t body[2] = {h2o_iovec_init(prefix, plen),
			       h2o_iovec_init(n->buf->data, n->buf->len)};
	h2o_start_response(req, &generator);
	h2o_send(req, body, 2, H2O_SEND_STATE_FINAL);
	n->sent_version = n->version;
	n->has_sent = 1;
	n->sent_seq = ++c->api->sub_seq;
	c->api->snapshots_sent++;
}

/* The park's cancel: off the node's waiting list (invariant 3). */
static void unpark(struct rp_call *c)
{
	struct sub_call *sc = c->ctx;
	struct rp_sub_node *n = sc->node;
	assert(n->n_parked > 0 && c->api->subscribers > 0);
	assert(sc->prev || n->waiting == sc);
	if (sc->prev)
		sc->prev->next = sc->next;
	else
		n->waiting = sc->next;
	if (sc->next)
		sc->next->prev = sc->prev;
	sc->prev = sc->next = NULL;
	n->n_parked--;
	n->last_seen_ms = wall_ms();
	n->last_seen_mono = uv_now(c->api->loop);
	c->api->subscribers--;
	if (!sc->validated) {
		assert(c->api->subscribers_behind > 0);
		c->api->subscribers_behind--;
	}
}

static void park(struct rp_call *c)
{
	struct sub_call *sc = c->ctx;
	struct rp_sub_node *n = sc->node;
	if (c->park == &sub_wait)
		return;
	if (c->api->subscribers >= c->api->opts.max_subscribers) {
		/* bounded memory when a whole fleet reconnects at once: the
		 * client backs off with jitter and tries again or elsewhere */
		c->api->sub_refused_full++;
		rp_respond_error(c, RP_ERR_UNAVAILABLE, "too many subscribers on this server", -1);
		return;
	}
	unsigned per_node = c->api->opts.max_subscriptions_per_node;
	if (per_node && n->n_parked >= per_node) {
		char msg[RP_MAX_NAME + 96];
		snprintf(msg, sizeof msg, "node %s already has %u parked polls on this server",
			 n->id, n->n_parked);
		c->api->sub_refused_per_node++;
		h2o_add_header(&c->req->pool, &c->req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL,
			       H2O_STRLIT("1"));
		rp_respond_error(c, RP_ERR_RATE_LIMITED, msg, -1);
		return;
	}
	rp_call_park(c, &sub_wait);
	sc->next = n->waiting;
	sc->prev = NULL;
	if (n->waiting)
		n->waiting->prev = sc;
	n->waiting = sc;
	n->n_parked++;
	c->api->subscribers++;
	if (!sc->validated)
		c->api->subscribers_behind++;
	rp_call_watch_close(c);
}

/* ---- fleet entry updates (invariant 6) ----------------------------------- */

static void record_ack(struct rp_sub_node *n, uint64_t a)
{
	/* sent again after the NACK was recorded (or no NACK known) */
	int backed = n->has_sent && n->sent_version == a &&
		     (!n->has_nack || n->sent_seq > n->nack_seq);
	if (n->has_nack && a <= n->nack_version && !(a == n->nack_version && backed))
		return;  /* an older attempt's ACK: the NACK stands, nothing recorded */
	if (n->has_nack) /* a > nack_version, or the re-sent version applied */
		n->has_nack = 0;
	if (!n->has_acked || n->acked_version != a)
		n->acked_since_ms = wall_ms();
	n->acked_version = a;
	n->has_acked = 1;
	n->ack_backed = backed;
	n->acked_at_ms = wall_ms();
}

static void record_nack(struct rp_api *api, struct rp_sub_node *n, uint64_t v, const char *text)
{
	if (n->has_acked && v <= n->acked_version)
		return; /* refusing what it already runs, or older: stale */
	if (n->has_nack && v < n->nack_version)
		return; /* an older attempt */
	n->nack_version = v;
	n->has_nack = 1;
	n->nack_seq = ++api->sub_seq;
	n->nack_at_ms = wall_ms();
	snprintf(n->nack_error, sizeof n->nack_error, "%s", text);
}

/* The request passed every check: record what it reports. */
static void record_request(struct rp_call *c)
{
	struct sub_call *sc = c->ctx;
	struct rp_sub_node *n = sc->node;
	if (sc->has_held || sc->has_nack || sc->foreign)
		n->known = 1;
	n->last_seen_ms = wall_ms();
	n->last_seen_mono = uv_now(c->api->loop);
	n->foreign = sc->foreign;
	snprintf(n->cluster_id, sizeof n->cluster_id, "%s", sc->cluster);
	if (sc->has_held)
		record_ack(n, sc->held);
	if (sc->has_nack)
		record_nack(c->api, n, sc->nack_version, sc->nack_error);
}

/* ---- evaluation ----------------------------------------------------------- */

static void on_sub_timer(struct rp_call *c);

/* A request about another cluster's versions: they mean nothing here, so
 * answer as on a first contact (invariant 7). Decided once this server
 * knows its own id. */
static void check_foreign(struct rp_call *c)
{
	struct sub_call *sc = c->ctx;
	const char *ours = rp_store_cluster_id(rp_node_store(c->api->node));
	if (sc->validated || sc->foreign || !sc->cluster[0] || !ours[0] ||
	    strcmp(ours, sc->cluster) == 0)
		return;
	sc->foreign = 1;
	sc->has_held = sc->has_nack = 0;
	sc->held = sc->nack_version = 0;
}

/* Decide what to do with a subscription now; re-run on every change. */
static void evaluate(struct rp_call *c)
{
	struct rp_api *api = c->api;
	struct sub_call *sc = c->ctx;
	struct rp_sub_node *n = sc->node;
	check_foreign(c);
	uint64_t rev = rp_store_revision(rp_node_store(api->node));
	uint64_t claimed = sc->held > sc->nack_version ? sc->held : sc->nack_version;
	if (claimed > rev) { /* the proxy has seen more than this server */
		park(c);
		return;
	}
	struct rp_mesh *m = current_mesh(api);
	if (!m || refresh_node(api, n, m) != RP_OK) {
		rp_respond_error(c, RP_ERR_NOMEM, "cannot build the snapshot", -1);
		return;
	}
	if (!sc->validated) {
		if (claimed > n->version) {
			char msg[320];
			snprintf(msg, sizeof msg,
				 "version %" PRIu64 " of node %s was never sent (current %" PRIu64
				 ")",
				 claimed, n->id, n->version);
			rp_respond_error(c, RP_ERR_INVALID, msg, -1);
			return;
		}
		sc->validated = 1;
		if (c->park == &sub_wait) /* parked while this server was behind */
			api->subscribers_behind--;
		record_request(c);
		uint64_t now = uv_now(api->loop);
		rp_call_set_timer(c, sc->deadline > now ? sc->deadline - now : 0, on_sub_timer);
	}
	/* a NACKed version is not sent again: wait for a newer one */
	if ((!sc->has_held && !sc->has_nack) || claimed < n->version) {
		send_snapshot(c);
		return;
	}
	park(c);
}

static void on_sub_timer(struct rp_call *c)
{
	struct sub_call *sc = c->ctx;
	if (!sc->validated) {
		rp_respond_error(c, RP_ERR_UNAVAILABLE,
				 "this server is behind the version you hold; try another", -1);
		return;
	}
	rp_call_unpark(c);
	if (c->req && !c->responded)
		add_interval_header(c);
	rp_respond_raw(c, 304, "application/x-protobuf", "", 0, 0);
}

static void evaluate_all(struct rp_api *api, int only_behind)
{
	if (only_behind && !api->subscribers_behind)
		return; /* a kv write with 10,000 polls parked: no walk over them */
	for (size_t b = 0; b < BUCKETS; b++) {
		for (struct rp_sub_node *n = api->sub_buckets[b]; n; n = n->next) {
			struct sub_call *sc = n->waiting;
			while (sc) {
				struct sub_call *next = sc->next;
				assert(sc->c->park == &sub_wait);
				if (!only_behind || !sc->validated)
					evaluate(sc->c); /* answering unlinks sc */
				sc = next;
			}
		}
	}
}

/* A revision that changed no listener, route or cluster (a kv write, a
 * member record) moves no node's version: only polls waiting for this
 * server to catch up need a look (counted in subscribers_behind, so that
 * without any such poll a kv write costs parked proxies nothing at all). */
void rp_subscribe_notify(struct rp_api *api)
{
	const unsigned mesh = 1u << RP_KIND_LISTENERS | 1u << RP_KIND_ROUTES |
			      1u << RP_KIND_CLUSTERS;
	unsigned changed = rp_changed_kinds(api, &api->sub_seen_rev);
	evaluate_all(api, !(changed & mesh));
}

/* The cluster id arrived (no revision marks it): look at every poll. */
static void notify_cluster_id(struct rp_api *api)
{
	evaluate_all(api, 0);
}

/* ---- request ------------------------------------------------------------ */

/* Check a decoded request; 0 or RP_ERR_INVALID with @msg. Strings were
 * checked for NUL/UTF-8 on the wire already. */
static int check_request(const Raftplane__SubscribeRequest *r, char *msg, size_t msglen)
{
	if (!rp_name_valid(r->node_id, strlen(r->node_id)))
		snprintf(msg, msglen, "node_id must match [A-Za-z0-9._-]{1,128}");
	else if (r->wait_ms > MAX_WAIT_MS)
		snprintf(msg, msglen, "wait_ms at most %d", MAX_WAIT_MS);
	else if (strlen(r->nack_error) > MAX_NACK_ERROR)
		snprintf(msg, msglen, "nack_error over %d bytes", MAX_NACK_ERROR);
	else if (r->has_nack && !r->nack_error[0])
		snprintf(msg, msglen, "a NACK needs nack_error");
	else if (!r->has_nack && (r->nack_version || r->nack_error[0]))
		snprintf(msg, msglen, "nack_version/nack_error given without has_nack");
	else if (!r->has_version && r->version)
		snprintf(msg, msglen, "version given without has_version");
	else if (r->cluster_id[0] && !rp_cluster_id_valid(r->cluster_id))
		snprintf(msg, msglen, "cluster_id must be empty or 32 lowercase hex digits");
	else
		return RP_OK;
	return RP_ERR_INVALID;
}

/* Copy the checked request into the call (nothing recorded yet). */
static int take_request(struct rp_call *c, const Raftplane__SubscribeRequest *r)
{
	struct sub_call *sc = c->ctx;
	sc->node = node_get(c->api, r->node_id, 1); /* snapshot cache; not yet a fleet entry */
	if (!sc->node)
		return RP_ERR_NOMEM;
	sc->held = r->version;
	sc->has_held = r->has_version;
	sc->nack_version = r->nack_version;
	sc->has_nack = r->has_nack;
	sc->nack_error = h2o_strdup(&c->req->pool, r->nack_error, SIZE_MAX).base;
	snprintf(sc->cluster, sizeof sc->cluster, "%s", r->cluster_id);
	/* a NACK waits like an ACK: its version is not sent again (item 5) */
	uint64_t now = uv_now(c->api->loop);
	sc->deadline = now + (r->has_version || r->has_nack ? r->wait_ms : 0);
	return RP_OK;
}

/* Decode and check the request body @e: RP_OK with *out (free with
 * raftplane__subscribe_request__free_unpacked), else an error with @msg.
 * Bytes only, no call state (tests/fuzz/fuzz_subscribe_request.c). */
static int decode_request(h2o_iovec_t e, Raftplane__SubscribeRequest **out, char *msg,
			  size_t msglen)
{
	*out = NULL;
	if (!e.base || e.len == 0) {
		snprintf(msg, msglen, "body must be a SubscribeRequest (protobuf)");
		return RP_ERR_INVALID;
	}
	if (e.len > MAX_REQUEST) {
		snprintf(msg, msglen, "SubscribeRequest over %d bytes", MAX_REQUEST);
		return RP_ERR_TOO_LARGE;
	}
	if (rp_pb_check_strings((const uint8_t *)e.base, e.len, REQUEST_STRINGS, MAX_REQUEST, msg,
				msglen) != 0)
		return RP_ERR_INVALID;
	Raftplane__SubscribeRequest *r =
		raftplane__subscribe_request__unpack(NULL, e.len, (const uint8_t *)e.base);
	if (!r) {
		snprintf(msg, msglen, "malformed SubscribeRequest");
		return RP_ERR_INVALID;
	}
	int rv = check_request(r, msg, msglen);
	if (rv != RP_OK) {
		raftplane__subscribe_request__free_unpacked(r, NULL);
		return rv;
	}
	*out = r;
	return RP_OK;
}

/* ---- who may subscribe (TLS on) ------------------------------------------ */

static const char *const refuse_names[RP_SUB_REFUSE__N] = {"no_cert", "wrong_node"};

const char *rp_sub_refuse_name(int why)
{
	return why >= 0 && why < RP_SUB_REFUSE__N ? refuse_names[why] : "?";
}

/* Count and log a refusal: at most one line a second. */
static void refused(struct rp_call *c, enum rp_sub_refuse why, const char *what)
{
	static uint64_t last_ms;
	static unsigned suppressed;
	c->api->opts.tls->sub_refused[why]++;
	uint64_t now = uv_now(c->api->loop);
	if (last_ms != 0 && now - last_ms < 1000) {
		suppressed++;
		return;
	}
	char peer[64] = "?";
	struct sockaddr_storage sa;
	socklen_t n = c->req->conn->callbacks->get_peername(c->req->conn, (struct sockaddr *)&sa);
	if (n > 0)
		h2o_socket_getnumerichost((struct sockaddr *)&sa, n, peer);
	char more[64] = "";
	if (suppressed)
		snprintf(more, sizeof more, " (%u more since the last line)", suppressed);
	rp_log_warn("subscribe refused (%s) from %s: %s%s", refuse_names[why], peer, what, more);
	last_ms = now;
	suppressed = 0;
}

/* A connection without a client certificate may not subscribe (nor
 * report, telemetry.c): 401. */
int rp_subscribe_check_cert(struct rp_call *c)
{
	const struct rp_api_tls *t = c->api->opts.tls;
	if (!t || !t->api)
		return RP_OK;
	const struct rp_peer_id *id = rp_conn_identity(c->req);
	if (id && id->kind != RP_PEER_NONE)
		return RP_OK;
	refused(c, RP_SUB_REFUSE_NO_CERT, "no client certificate");
	rp_respond_error(c, RP_ERR_UNAUTHENTICATED,
			 strncmp(c->req->path_normalized.base, "/v1/report",
				 c->req->path_normalized.len) == 0
				 ? "reporting needs a client certificate naming the node "
				   "(spiffe://TRUST-DOMAIN/node/NODE-ID)"
				 : "subscribing needs a client certificate naming the node "
				   "(spiffe://TRUST-DOMAIN/node/NODE-ID)",
			 -1);
	return RP_ERR_UNAUTHENTICATED;
}

/* The certificate must name the node subscribed (or reported) for: 403
 * otherwise. */
int rp_subscribe_check_node(struct rp_call *c, const char *node_id, char *msg, size_t msglen)
{
	const struct rp_api_tls *t = c->api->opts.tls;
	if (!t || !t->api)
		return RP_OK;
	const struct rp_peer_id *id = rp_conn_identity(c->req);
	if (id && id->kind == RP_PEER_NODE && strcmp(id->node, node_id) == 0)
		return RP_OK;
	char who[400];
	if (id)
		rp_peer_id_str(id, who, sizeof who);
	else
		snprintf(who, sizeof who, "none");
	snprintf(msg, msglen, "the client certificate names %.120s, not node %.128s", who, node_id);
	refused(c, RP_SUB_REFUSE_WRONG_NODE, msg);
	return RP_ERR_PERMISSION;
}

static int parse_request(struct rp_call *c, char *msg, size_t msglen)
{
	Raftplane__SubscribeRequest *r;
	int rv = decode_request(c->req->entity, &r, msg, msglen);
	if (rv != RP_OK)
		return rv;
	if ((rv = rp_subscribe_check_node(c, r->node_id, msg, msglen)) != RP_OK) {
		raftplane__subscribe_request__free_unpacked(r, NULL);
		return rv;
	}
	if ((rv = take_request(c, r)) != RP_OK)
		snprintf(msg, msglen, "out of memory");
	raftplane__subscribe_request__free_unpacked(r, NULL);
	return rv;
}

void rp_route_subscribe(struct rp_call *c)
{
	char msg[400];
	struct sub_call *sc = rp_call_alloc(c, sizeof *sc, NULL);
	sc->c = c;
	c->ctx = sc;
	/* invariant 8: on every answer, refusals included */
	h2o_add_header_by_str(&c->req->pool, &c->req->res.headers, H2O_STRLIT(RP_PROTOCOL_HEADER),
			      0, NULL, H2O_STRLIT(RP_FORMAT_PROTOCOL_TEXT));
	if (strncmp(c->req->method.base, "POST", c->req->method.len) != 0) {
		rp_respond_error(c, RP_ERR_METHOD, "use POST", -1);
		return;
	}
	if (rp_subscribe_check_cert(c) != RP_OK)
		return;
	int rv = parse_request(c, msg, sizeof msg);
	if (rv != RP_OK) {
		rp_respond_error(c, rv, msg, -1);
		return;
	}
	uint64_t rev = rp_store_revision(rp_node_store(c->api->node));
	uint64_t claimed = sc->held > sc->nack_version ? sc->held : sc->nack_version;
	if (claimed > rev) /* wait for this server to catch up, bounded */
		rp_call_set_timer(c, BEHIND_WAIT_MS, on_sub_timer);
	evaluate(c);
}

/* ---- fleet entries ------------------------------------------------------ */

static json_t *entry_json(struct rp_sub_node *n, const char *http, struct rp_mesh *m, uint64_t rev)
{
	json_t *nack = n->has_nack
			       ? json_pack("{s:I,s:s,s:I}", "version", (json_int_t)n->nack_version,
					   "error", n->nack_error, "at", (json_int_t)n->nack_at_ms)
			       : json_null();
	json_t *e = json_pack("{s:s,s:s,s:I,s:o,s:o,s:I,s:b,s:I,s:I}", "node_id", n->id, "server",
			      http, "snapshot_version", (json_int_t)n->sent_version,
			      "acked_version",
			      n->has_acked ? rp_json_u64((uint64_t)n->acked_version) : json_null(),
			      "nack", nack, "last_seen",
			      (json_int_t)(n->n_parked ? wall_ms() : n->last_seen_ms), "connected",
			      n->n_parked > 0, "current_version",
			      (json_int_t)(m ? rp_mesh_node_version(m, n->id) : n->version),
			      "server_revision", (json_int_t)rev);
	if (!e) /* never hide a proxy: every string above is checked, but be safe */
		e = json_pack("{s:s,s:s}", "node_id", n->id, "server", http);
	json_object_set_new(e, "acked_at", rp_json_u64((uint64_t)n->acked_at_ms));
	json_object_set_new(e, "acked_since", rp_json_u64((uint64_t)n->acked_since_ms));
	json_object_set_new(e, "ack_backed", json_boolean(n->ack_backed));
	json_object_set_new(e, "cluster_id",
			    n->cluster_id[0] ? json_string(n->cluster_id) : json_null());
	json_object_set_new(e, "foreign_cluster", json_boolean(n->foreign));
	return e;
}

json_t *rp_subscribe_local_fleet(struct rp_api *api)
{
	json_t *arr = json_array();
	char http[64];
	rp_node_member_http(api->node, rp_node_config(api->node)->id, http, sizeof http);
	uint64_t rev = rp_store_revision(rp_node_store(api->node));
	struct rp_mesh *m = current_mesh(api);
	for (size_t b = 0; b < BUCKETS; b++)
		for (struct rp_sub_node *n = api->sub_buckets[b]; n; n = n->next)
			if (n->known)
				json_array_append_new(arr, entry_json(n, http, m, rev));
	return arr;
}

/* Drop fleet entries idle for longer than the TTL, and at once the snapshot
 * caches of node ids that never became fleet entries. */
static void on_gc(uv_timer_t *t)
{
	struct rp_api *api = t->data;
	uint64_t now = uv_now(api->loop);
	for (size_t b = 0; b < BUCKETS; b++) {
		struct rp_sub_node **pp = &api->sub_buckets[b];
		while (*pp) {
			struct rp_sub_node *n = *pp;
			if (n->n_parked == 0 &&
			    (!n->known || now - n->last_seen_mono > api->proxy_ttl_ms)) {
				*pp = n->next;
				sbuf_unref(n->buf);
				free(n);
				api->n_sub_nodes--;
			} else {
				pp = &n->next;
			}
		}
	}
}

/* ---- cluster id (invariant 7) --------------------------------------------- */

static void on_cid_proposed(void *arg, int status, const struct rp_apply_result *res)
{
	struct rp_api *api = arg;
	(void)status;
	(void)res;
	api->cid_inflight = 0;
}

static void propose_cluster_id(struct rp_api *api)
{
	unsigned char rnd[16];
	char hex[33];
	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
		return; /* tried again on the next tick */
	for (int i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
	Raftplane__Command cmd;
	raftplane__command__init(&cmd);
	cmd.type = RAFTPLANE__COMMAND__TYPE__SET_CLUSTER_ID;
	cmd.cluster_id = hex;
	if (rp_node_propose(api->node, &cmd, on_cid_proposed, api) == RP_OK)
		api->cid_inflight = 1;
}

/* The first ready leader proposes the id (applied only if none is set, so
 * racing leaders agree); every node wakes its subscriptions once it learns
 * the id (no revision marks that change). */
static void on_cid_tick(uv_timer_t *t)
{
	struct rp_api *api = t->data;
	const char *cid = rp_store_cluster_id(rp_node_store(api->node));
	if (!cid[0] && !api->cid_inflight && rp_node_leader_ready(api->node))
		propose_cluster_id(api);
	if (strcmp(cid, api->cid_seen) != 0) {
		snprintf(api->cid_seen, sizeof api->cid_seen, "%s", cid);
		notify_cluster_id(api);
	}
}

int rp_subscribe_init(struct rp_api *api)
{
	api->sub_buckets = calloc(BUCKETS, sizeof *api->sub_buckets);
	if (!api->sub_buckets)
		return RP_ERR_NOMEM;
	if (!api->proxy_ttl_ms)
		api->proxy_ttl_ms = 60000;
	uv_timer_init(api->loop, &api->sub_gc);
	api->sub_gc.data = api;
	uv_timer_start(&api->sub_gc, on_gc, 1000, 1000);
	uv_timer_init(api->loop, &api->sub_cid);
	api->sub_cid.data = api;
	uv_timer_start(&api->sub_cid, on_cid_tick, 0, CLUSTER_ID_TICK_MS);
	return RP_OK;
}

void rp_subscribe_close(struct rp_api *api)
{
	uv_timer_stop(&api->sub_gc);
	uv_close((uv_handle_t *)&api->sub_gc, NULL);
	uv_timer_stop(&api->sub_cid);
	uv_close((uv_handle_t *)&api->sub_cid, NULL);
}
