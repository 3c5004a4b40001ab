/* Telemetry intake and store: POST /v1/report (docs/telemetry.md).
 *
 * A proxy POSTs a Report (report.h checks the bytes) with CUMULATIVE
 * counters of one process (its `instance`), numbered by `seq`. This server
 * keeps, per node id and instance, a short history of samples; the fleet
 * view (telemetry_query.c) merges every member's samples and derives
 * window deltas from them. Soft state: never in the raft log, lost on
 * restart, rebuilt by the next reports.
 *
 * Invariants
 * 1. A refused report changes nothing: every check (size, wire, values,
 *    identity, seq order, rate, counters, table space) runs before the
 *    store is touched; the only write is the final insert.
 * 2. Within an instance, samples are ordered by seq and by t (this
 *    server's wall clock at receipt), and every cumulative counter of a
 *    route, cluster or endpoint present in two consecutive samples never
 *    decreases (a report that would break it is refused: 409).
 * 3. Consecutive samples of an instance are at least half a report
 *    interval apart, except the newest, which is always kept: a report
 *    closer than that to the previous kept sample replaces the newest one
 *    (the 429 rule already keeps one server's reports of a node id that
 *    far apart; this holds it when the wall clock stepped). A proxy that
 *    reports at the interval costs retention/interval + 2 samples, one
 *    that pushes the limit at most twice that. t never decreases within an
 *    instance (a wall clock stepping back is clamped).
 * 4. Retention: the oldest sample is dropped once the next one is itself
 *    at least retention old (so a window of the full retention still has
 *    a base); an instance silent for the retention is dropped, and a node
 *    id with no instance left. A node id holds at most MAX_INSTANCES
 *    instances (a restarting proxy has two); a new one evicts the one
 *    silent longest.
 * 5. Labels stay bounded: only routes and clusters that exist in the
 *    store's current mesh are kept (the rest are ignored and counted), and
 *    endpoints only of such clusters.
 * 6. tl->bytes is the sum of every allocation the store holds (reporters,
 *    instances, rings, samples), kept exact by tl_alloc/tl_free. */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "raftplane/err.h"
#include "raftplane/limits.h"
#include "report.h"
#include "store.h"
#include "subscribe.h"
#include "telemetry.h"
#include "validate.h"

#define BUCKETS 4096
#define MAX_INSTANCES 4
#define GC_MS 1000

const char *const rp_tl_result_names[RP_TL_RESULT__N] = {
	[RP_TL_ACCEPTED] = "accepted",
	[RP_TL_DUPLICATE] = "duplicate",
	[RP_TL_MALFORMED] = "malformed",
	[RP_TL_TOO_LARGE] = "too_large",
	[RP_TL_UNAUTHENTICATED] = "unauthenticated",
	[RP_TL_FORBIDDEN] = "forbidden",
	[RP_TL_CONFLICT] = "conflict",
	[RP_TL_RATE_LIMITED] = "rate_limited",
	[RP_TL_FULL] = "full",
};

struct tl_endpoint {
	const char *cluster, *address, *reason; /* in the block of struct tl_eps */
	uint64_t since_ms;                      /* unix ms (receipt - since_ms) */
	uint64_t requests, errors;
	int state;
};

/* The endpoints of a report: one allocation, strings after the array. */
struct tl_eps {
	size_t bytes, n;
	struct tl_endpoint e[]; /* sorted by cluster, address */
};

/* One report as kept: one allocation. The routes, then the clusters, each
 * sorted by name, are packed as varints (most counters are small, most
 * latency buckets 0): per entry the name's length, its bytes, then the
 * RP_TV__N counters. Only the newest sample of an instance keeps its
 * endpoints (no query reads older ones). */
struct tl_sample {
	size_t bytes; /* this allocation */
	uint64_t t, seq, version;
	uint32_t n_routes, n_clusters;
	struct tl_eps *eps; /* NULL once a newer sample came */
	size_t len;         /* of enc */
	uint8_t enc[];
};

/* Walking a sample's packed entries. */
struct tl_iter {
	const uint8_t *p, *end;
	uint32_t left; /* entries of the current kind */
};

struct tl_instance {
	struct tl_instance *next;
	uint64_t id;
	uint64_t last;           /* wall ms of the last accepted report */
	uint64_t started;        /* wall ms it started: min(receipt - uptime_ms) */
	struct tl_sample **ring; /* oldest first */
	size_t n, cap;
};

struct tl_reporter {
	struct tl_reporter *next; /* hash chain */
	char node_id[RP_MAX_NAME + 1];
	struct tl_instance *instances;
	unsigned n_instances;
	uint64_t last_accept; /* uv_now() of the last accepted report */
};

/* The names of routes and clusters in the store at names_rev, sorted. */
struct tl_names {
	char **v;
	size_t n, cap;
};

struct rp_telemetry {
	struct tl_reporter **buckets;
	struct rp_tl_stats st;
	uv_timer_t gc;
	uint64_t names_rev;
	int names_ok;
	struct tl_names names[2]; /* [0] routes, [1] clusters */
};

/* ---- memory (invariant 6) ------------------------------------------------ */

static void *tl_alloc(struct rp_telemetry *tl, size_t n)
{
	void *p = calloc(1, n);
	if (p)
		tl->st.bytes += n;
	return p;
}

static void tl_free(struct rp_telemetry *tl, void *p, size_t n)
{
	if (!p)
		return;
	assert(tl->st.bytes >= n);
	tl->st.bytes -= n;
	free(p);
}

static void drop_endpoints(struct rp_telemetry *tl, struct tl_sample *s)
{
	if (s->eps) {
		tl_free(tl, s->eps, s->eps->bytes);
		s->eps = NULL;
	}
}

static void free_sample(struct rp_telemetry *tl, struct tl_sample *s)
{
	if (s) {
		drop_endpoints(tl, s);
		tl->st.samples--;
		tl_free(tl, s, s->bytes);
	}
}

/* ---- packing -------------------------------------------------------------------- */

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

/* The data is ours (packed by put_varint): no bounds to distrust. */
static uint64_t get_varint(const uint8_t **p)
{
	uint64_t v = 0;
	for (int shift = 0;; shift += 7) {
		uint8_t b = *(*p)++;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return v;
	}
}

/* The next entry into @name (NUL-terminated) and @v; 0 at the end. */
static int iter_next(struct tl_iter *it, char name[RP_MAX_NAME + 1], uint64_t v[RP_TV__N])
{
	if (!it->left)
		return 0;
	size_t n = (size_t)get_varint(&it->p);
	assert(n <= RP_MAX_NAME && it->p + n <= it->end);
	memcpy(name, it->p, n);
	name[n] = '\0';
	it->p += n;
	for (int k = 0; k < RP_TV__N; k++)
		v[k] = get_varint(&it->p);
	it->left--;
	return 1;
}

static void free_instance(struct rp_telemetry *tl, struct tl_instance *in)
{
	for (size_t i = 0; i < in->n; i++)
		free_sample(tl, in->ring[i]);
	tl_free(tl, in->ring, in->cap * sizeof *in->ring);
	tl_free(tl, in, sizeof *in);
	tl->st.instances--;
}

static unsigned hash(const char *s)
{
	unsigned h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % BUCKETS;
}

static struct tl_reporter *find_reporter(struct rp_telemetry *tl, const char *id)
{
	for (struct tl_reporter *r = tl->buckets[hash(id)]; r; r = r->next)
		if (strcmp(r->node_id, id) == 0)
			return r;
	return NULL;
}

static struct tl_instance *find_instance(struct tl_reporter *r, uint64_t id)
{
	for (struct tl_instance *in = r ? r->instances : NULL; in; in = in->next)
		if (in->id == id)
			return in;
	return NULL;
}

/* Start walking the routes (@kind 0) or the clusters (1) of @s. */
static void iter_init(struct tl_iter *it, const struct tl_sample *s, int kind)
{
	char name[RP_MAX_NAME + 1];
	uint64_t v[RP_TV__N];
	it->p = s->enc;
	it->end = s->enc + s->len;
	it->left = s->n_routes;
	if (kind == 1) {
		while (iter_next(it, name, v)) /* skip the routes */
			;
		it->left = s->n_clusters;
	}
}

/* ---- the mesh's names (invariant 5) ---------------------------------------- */

static int add_name(void *arg, const struct rp_item *it)
{
	struct tl_names *ns = arg;
	if (ns->n == ns->cap) {
		size_t cap = ns->cap ? 2 * ns->cap : 16;
		char **v = realloc(ns->v, cap * sizeof *v);
		if (!v)
			return -1;
		ns->v = v;
		ns->cap = cap;
	}
	if (!(ns->v[ns->n] = strdup(it->name)))
		return -1;
	ns->n++;
	return 0;
}

static void clear_names(struct tl_names *ns)
{
	for (size_t i = 0; i < ns->n; i++)
		free(ns->v[i]);
	ns->n = 0;
}

/* Refresh the name lists when the store moved; 0, or -1 out of memory.
 * rp_store_list yields them by name, so they are sorted (strcmp order). */
static int refresh_names(struct rp_api *api)
{
	struct rp_telemetry *tl = api->tele;
	if (!tl)
		return -1; /* closed (shutting down): no names */
	struct rp_store *s = rp_node_store(api->node);
	uint64_t rev = rp_store_revision(s);
	if (tl->names_ok && tl->names_rev == rev)
		return 0;
	tl->names_ok = 0;
	const int kinds[2] = {RP_KIND_ROUTES, RP_KIND_CLUSTERS};
	for (int k = 0; k < 2; k++) {
		clear_names(&tl->names[k]);
		if (rp_store_list(s, kinds[k], "", add_name, &tl->names[k]) != 0)
			return -1;
	}
	tl->names_rev = rev;
	tl->names_ok = 1;
	return 0;
}

static int cmp_cstr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int known(struct rp_telemetry *tl, int k, const char *name)
{
	return tl->names[k].n &&
	       bsearch(&name, tl->names[k].v, tl->names[k].n, sizeof(char *), cmp_cstr) != NULL;
}

int rp_telemetry_mesh_names(struct rp_api *api, int kind, char *const **v, size_t *n)
{
	if (refresh_names(api) != 0)
		return -1;
	struct tl_names *ns = &api->tele->names[kind == RP_KIND_ROUTES ? 0 : 1];
	*v = ns->v;
	*n = ns->n;
	return 0;
}

int rp_telemetry_in_mesh(struct rp_api *api, int kind, const char *name)
{
	if (refresh_names(api) != 0)
		return 0;
	return known(api->tele, kind == RP_KIND_ROUTES ? 0 : 1, name);
}

json_t *rp_telemetry_cluster_endpoints(struct rp_api *api, const char *name)
{
	void *value;
	size_t len;
	uint64_t version;
	if (rp_store_get(rp_node_store(api->node), RP_KIND_CLUSTERS, name, &value, &len,
			 &version) != RP_OK)
		return NULL;
	json_t *j = json_loadb(value, len, 0, NULL);
	free(value);
	json_t *arr = json_array(), *e;
	size_t i;
	json_array_foreach(json_object_get(j, "endpoints"), i, e)
	{
		const char *a = json_string_value(json_object_get(e, "address"));
		json_int_t port = json_integer_value(json_object_get(e, "port"));
		char buf[96];
		if (!a)
			continue;
		snprintf(buf, sizeof buf,
			 strchr(a, ':') ? "[%s]:%" JSON_INTEGER_FORMAT : "%s:%" JSON_INTEGER_FORMAT,
			 a, port);
		json_array_append_new(arr, json_string(buf));
	}
	json_decref(j);
	return arr;
}

/* ---- building a sample ------------------------------------------------------ */

static int cmp_pb_traffic(const void *a, const void *b)
{
	return strcmp((*(Raftplane__TrafficStats *const *)a)->name,
		      (*(Raftplane__TrafficStats *const *)b)->name);
}

static int cmp_pb_ep(const void *a, const void *b)
{
	const Raftplane__EndpointStats *x = *(Raftplane__EndpointStats *const *)a;
	const Raftplane__EndpointStats *y = *(Raftplane__EndpointStats *const *)b;
	int c = strcmp(x->cluster, y->cluster);
	return c ? c : strcmp(x->address, y->address);
}

/* Move the entries of @v whose name the mesh has to its front, sorted (a
 * permutation: protobuf-c still frees every entry); returns how many,
 * counts the rest in *ignored. */
static size_t filter_traffic(struct rp_telemetry *tl, int k, Raftplane__TrafficStats **v, size_t n,
			     uint64_t *ignored)
{
	size_t kept = 0;
	for (size_t i = 0; i < n; i++) {
		if (known(tl, k, v[i]->name)) {
			Raftplane__TrafficStats *t = v[kept];
			v[kept++] = v[i];
			v[i] = t;
		} else
			(*ignored)++;
	}
	if (kept)
		qsort(v, kept, sizeof *v, cmp_pb_traffic);
	return kept;
}

static char *put_str(char **p, const char *s)
{
	size_t l = strlen(s) + 1;
	char *d = memcpy(*p, s, l);
	*p += l;
	return d;
}

static struct tl_eps *build_endpoints(struct rp_telemetry *tl, Raftplane__Report *r, size_t n,
				      uint64_t now)
{
	size_t strs = 0;
	for (size_t i = 0; i < n; i++)
		strs += strlen(r->endpoints[i]->cluster) + strlen(r->endpoints[i]->address) +
			strlen(r->endpoints[i]->reason) + 3;
	size_t bytes = sizeof(struct tl_eps) + n * sizeof(struct tl_endpoint) + strs;
	struct tl_eps *eps = tl_alloc(tl, bytes);
	if (!eps)
		return NULL;
	eps->bytes = bytes;
	eps->n = n;
	char *p = (char *)(eps->e + n);
	for (size_t i = 0; i < n; i++) {
		const Raftplane__EndpointStats *e = r->endpoints[i];
		struct tl_endpoint *d = &eps->e[i];
		d->cluster = put_str(&p, e->cluster);
		d->address = put_str(&p, e->address);
		d->reason = put_str(&p, e->reason);
		d->state = (int)e->state;
		d->since_ms = e->since_ms < now ? now - e->since_ms : 0;
		d->requests = e->requests;
		d->errors = e->errors;
	}
	assert(p == (char *)eps + bytes);
	return eps;
}

static uint8_t *pack_traffic(uint8_t *p, Raftplane__TrafficStats **v, size_t n)
{
	uint64_t vec[RP_TV__N];
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(v[i]->name);
		p = put_varint(p, l);
		memcpy(p, v[i]->name, l);
		p += l;
		rp_report_vector(v[i], vec);
		for (int k = 0; k < RP_TV__N; k++)
			p = put_varint(p, vec[k]);
	}
	return p;
}

/* The sample of report @r received at wall @now (its repeated fields were
 * filtered and sorted in place); NULL when out of memory. */
static struct tl_sample *build_sample(struct rp_telemetry *tl, Raftplane__Report *r,
				      size_t n_routes, size_t n_clusters, size_t n_eps,
				      uint64_t now)
{
	size_t max = 0;
	for (size_t i = 0; i < n_routes; i++)
		max += strlen(r->routes[i]->name) + 2 + 10 * RP_TV__N;
	for (size_t i = 0; i < n_clusters; i++)
		max += strlen(r->clusters[i]->name) + 2 + 10 * RP_TV__N;
	uint8_t *tmp = malloc(max ? max : 1);
	if (!tmp)
		return NULL;
	uint8_t *end = pack_traffic(tmp, r->routes, n_routes);
	end = pack_traffic(end, r->clusters, n_clusters);
	size_t len = (size_t)(end - tmp);
	struct tl_sample *s = tl_alloc(tl, sizeof *s + len);
	if (!s || !(s->eps = build_endpoints(tl, r, n_eps, now))) {
		if (s)
			tl_free(tl, s, sizeof *s + len);
		free(tmp);
		return NULL;
	}
	tl->st.samples++;
	s->bytes = sizeof *s + len;
	s->t = now;
	s->seq = r->seq;
	s->version = r->version;
	s->n_routes = (uint32_t)n_routes;
	s->n_clusters = (uint32_t)n_clusters;
	s->len = len;
	if (len)
		memcpy(s->enc, tmp, len);
	free(tmp);
	return s;
}

/* ---- invariant 2: counters never go backwards -------------------------------- */

/* Both samples hold their entries sorted by name: one merge walk. */
static int traffic_backwards(const struct tl_sample *old, const struct tl_sample *cur, int kind,
			     char *msg, size_t msglen)
{
	struct tl_iter io, ic;
	char on[RP_MAX_NAME + 1], cn[RP_MAX_NAME + 1];
	uint64_t ov[RP_TV__N], cv[RP_TV__N];
	iter_init(&io, old, kind);
	iter_init(&ic, cur, kind);
	int have_o = iter_next(&io, on, ov);
	while (have_o && iter_next(&ic, cn, cv)) {
		int c;
		while (have_o && (c = strcmp(on, cn)) < 0)
			have_o = iter_next(&io, on, ov);
		if (!have_o || c != 0)
			continue;
		for (int k = 0; k < RP_TV__N; k++)
			if (k != RP_TV_ACTIVE && cv[k] < ov[k]) {
				snprintf(msg, msglen,
					 "%s %s: a cumulative counter went backwards (%" PRIu64
					 " after %" PRIu64 ")",
					 kind ? "cluster" : "route", cn, cv[k], ov[k]);
				return 1;
			}
	}
	return 0;
}

static int endpoints_backwards(const struct tl_sample *old, const struct tl_sample *cur, char *msg,
			       size_t msglen)
{
	size_t j = 0;
	const struct tl_eps *oe = old->eps, *ce = cur->eps;
	for (size_t i = 0; oe && i < ce->n; i++) {
		const struct tl_endpoint *e = &ce->e[i];
		while (j < oe->n) {
			const struct tl_endpoint *o = &oe->e[j];
			int c = strcmp(o->cluster, e->cluster);
			if (c == 0)
				c = strcmp(o->address, e->address);
			if (c >= 0)
				break;
			j++;
		}
		if (j == oe->n)
			break;
		const struct tl_endpoint *o = &oe->e[j];
		if (strcmp(o->cluster, e->cluster) || strcmp(o->address, e->address))
			continue;
		if (e->requests < o->requests || e->errors < o->errors) {
			snprintf(msg, msglen, "endpoint %s %s: a cumulative counter went backwards",
				 e->cluster, e->address);
			return 1;
		}
	}
	return 0;
}

static int backwards(const struct tl_sample *old, const struct tl_sample *cur, char *msg,
		     size_t msglen)
{
	return traffic_backwards(old, cur, 0, msg, msglen) ||
	       traffic_backwards(old, cur, 1, msg, msglen) ||
	       endpoints_backwards(old, cur, msg, msglen);
}

/* ---- inserting (invariants 3 and 4) ------------------------------------------- */

static struct tl_reporter *new_reporter(struct rp_telemetry *tl, const char *id)
{
	struct tl_reporter *r = tl_alloc(tl, sizeof *r);
	if (!r)
		return NULL;
	snprintf(r->node_id, sizeof r->node_id, "%s", id);
	unsigned h = hash(id);
	r->next = tl->buckets[h];
	tl->buckets[h] = r;
	tl->st.reporters++;
	return r;
}

/* Unlink and free @r (it holds no instance). */
static void drop_reporter(struct rp_telemetry *tl, struct tl_reporter *r)
{
	struct tl_reporter **pp = &tl->buckets[hash(r->node_id)];
	while (*pp != r)
		pp = &(*pp)->next;
	*pp = r->next;
	tl_free(tl, r, sizeof *r);
	tl->st.reporters--;
}

static struct tl_instance *new_instance(struct rp_telemetry *tl, struct tl_reporter *r, uint64_t id)
{
	struct tl_instance *in = tl_alloc(tl, sizeof *in);
	if (!in)
		return NULL;
	in->id = id;
	tl->st.instances++;
	if (r->n_instances == MAX_INSTANCES) { /* evict the one silent longest */
		struct tl_instance **pp = &r->instances, **old = pp;
		for (; *pp; pp = &(*pp)->next)
			if ((*pp)->last < (*old)->last)
				old = pp;
		struct tl_instance *o = *old;
		*old = o->next;
		free_instance(tl, o);
		r->n_instances--;
	}
	in->next = r->instances;
	r->instances = in;
	r->n_instances++;
	return in;
}

static int grow_ring(struct rp_telemetry *tl, struct tl_instance *in)
{
	size_t cap = in->cap ? 2 * in->cap : 4;
	struct tl_sample **ring = tl_alloc(tl, cap * sizeof *ring);
	if (!ring)
		return -1;
	if (in->n)
		memcpy(ring, in->ring, in->n * sizeof *ring);
	tl_free(tl, in->ring, in->cap * sizeof *in->ring);
	in->ring = ring;
	in->cap = cap;
	return 0;
}

/* Add @s as @in's newest sample. -1 out of memory (then @s is freed by the
 * caller and nothing changed). */
static int push_sample(struct rp_telemetry *tl, struct tl_instance *in, struct tl_sample *s,
		       unsigned interval)
{
	if (in->n >= 2 && in->ring[in->n - 1]->t - in->ring[in->n - 2]->t < interval / 2) {
		free_sample(tl, in->ring[in->n - 1]); /* invariant 3: replace the newest */
		in->ring[in->n - 1] = s;
		return 0;
	}
	if (in->n == in->cap && grow_ring(tl, in) != 0)
		return -1;
	if (in->n)
		drop_endpoints(tl, in->ring[in->n - 1]); /* only the newest keeps them */
	in->ring[in->n++] = s;
	return 0;
}

/* Invariant 4 for one instance: 1 when it is to be dropped. */
static int trim_instance(struct rp_telemetry *tl, struct tl_instance *in, uint64_t now,
			 unsigned retention)
{
	if (now - in->last > retention)
		return 1;
	size_t drop = 0;
	while (drop + 1 < in->n && now - in->ring[drop + 1]->t >= retention)
		drop++;
	for (size_t i = 0; i < drop; i++)
		free_sample(tl, in->ring[i]);
	memmove(in->ring, in->ring + drop, (in->n - drop) * sizeof *in->ring);
	in->n -= drop;
	return 0;
}

static void on_gc(uv_timer_t *t)
{
	struct rp_api *api = t->data;
	struct rp_telemetry *tl = api->tele;
	uint64_t now = rp_wall_ms();
	unsigned retention = api->opts.telemetry_retention_ms;
	for (size_t b = 0; b < BUCKETS; b++) {
		struct tl_reporter *r = tl->buckets[b];
		while (r) {
			struct tl_reporter *next = r->next;
			struct tl_instance **pp = &r->instances;
			while (*pp) {
				struct tl_instance *in = *pp;
				if (trim_instance(tl, in, now, retention)) {
					*pp = in->next;
					free_instance(tl, in);
					r->n_instances--;
				} else {
					pp = &in->next;
				}
			}
			if (!r->instances)
				drop_reporter(tl, r);
			r = next;
		}
	}
}

/* ---- POST /v1/report ------------------------------------------------------------ */

static void refuse(struct rp_call *c, enum rp_tl_result why, int err, const char *msg)
{
	if (c->api->tele)
		c->api->tele->st.reports[why]++;
	rp_respond_error(c, err, msg, -1);
}

static void accepted(struct rp_call *c, enum rp_tl_result why, uint64_t ignored)
{
	char buf[24];
	if (c->api->tele)
		c->api->tele->st.reports[why]++;
	if (!rp_call_begin_response(c, 204))
		return;
	int n = snprintf(buf, sizeof buf, "%" PRIu64, ignored);
	h2o_iovec_t v = h2o_strdup(&c->req->pool, buf, (size_t)n);
	h2o_add_header_by_str(&c->req->pool, &c->req->res.headers,
			      H2O_STRLIT("x-raftplane-report-ignored"), 0, NULL, v.base, v.len);
	static h2o_generator_t generator = {NULL, NULL};
	h2o_start_response(c->req, &generator);
	h2o_send(c->req, NULL, 0, H2O_SEND_STATE_FINAL);
}

/* The checks that need the store (invariant 1), then the insert. */
static void take_report(struct rp_call *c, Raftplane__Report *r)
{
	struct rp_api *api = c->api;
	struct rp_telemetry *tl = api->tele;
	unsigned interval = api->opts.report_interval_ms;
	char msg[400];
	struct tl_reporter *rep = find_reporter(tl, r->node_id);
	struct tl_instance *in = find_instance(rep, r->instance);
	struct tl_sample *newest = in && in->n ? in->ring[in->n - 1] : NULL;
	if (newest && r->seq == newest->seq) {
		accepted(c, RP_TL_DUPLICATE, 0); /* a repeated report: nothing new */
		return;
	}
	if (newest && r->seq < newest->seq) {
		snprintf(msg, sizeof msg,
			 "seq %" PRIu64 " of instance %" PRIu64 " after %" PRIu64
			 ": seq goes backwards",
			 r->seq, r->instance, newest->seq);
		refuse(c, RP_TL_CONFLICT, RP_ERR_CONFLICT, msg);
		return;
	}
	uint64_t mono = uv_now(api->loop);
	if (rep && mono - rep->last_accept < interval / 2) {
		uint64_t wait = interval / 2 - (mono - rep->last_accept);
		int n = snprintf(msg, sizeof msg, "%" PRIu64, (wait + 999) / 1000);
		h2o_iovec_t v = h2o_strdup(&c->req->pool, msg, (size_t)n);
		h2o_add_header(&c->req->pool, &c->req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL,
			       v.base, v.len);
		snprintf(msg, sizeof msg, "node %s reports more often than every %u ms", r->node_id,
			 interval / 2);
		refuse(c, RP_TL_RATE_LIMITED, RP_ERR_RATE_LIMITED, msg);
		return;
	}
	if (!rep && tl->st.reporters >= api->opts.max_reporters) {
		refuse(c, RP_TL_FULL, RP_ERR_UNAVAILABLE,
		       "too many reporting node ids on this server (--max-reporters)");
		return;
	}
	if (refresh_names(api) != 0) {
		refuse(c, RP_TL_FULL, RP_ERR_NOMEM, "out of memory");
		return;
	}
	uint64_t ignored = 0;
	size_t nr = filter_traffic(tl, 0, r->routes, r->n_routes, &ignored);
	size_t nc = filter_traffic(tl, 1, r->clusters, r->n_clusters, &ignored);
	size_t ne = 0;
	for (size_t i = 0; i < r->n_endpoints; i++) {
		if (known(tl, 1, r->endpoints[i]->cluster)) {
			Raftplane__EndpointStats *t = r->endpoints[ne];
			r->endpoints[ne++] = r->endpoints[i];
			r->endpoints[i] = t;
		} else
			ignored++;
	}
	if (ne)
		qsort(r->endpoints, ne, sizeof *r->endpoints, cmp_pb_ep);
	uint64_t now = rp_wall_ms();
	if (newest && now < newest->t) /* invariant 3: the wall clock stepped back */
		now = newest->t;
	struct tl_sample *s = build_sample(tl, r, nr, nc, ne, now);
	if (!s) {
		refuse(c, RP_TL_FULL, RP_ERR_NOMEM, "out of memory");
		return;
	}
	if (newest && backwards(newest, s, msg, sizeof msg)) {
		free_sample(tl, s);
		refuse(c, RP_TL_CONFLICT, RP_ERR_CONFLICT, msg);
		return;
	}
	/* the insert: only out of memory can fail it, and undoes itself */
	int fresh_rep = !rep, fresh_in = !in;
	if (!rep && !(rep = new_reporter(tl, r->node_id)))
		goto nomem;
	if (!in && !(in = new_instance(tl, rep, r->instance)))
		goto nomem;
	if (push_sample(tl, in, s, interval) != 0)
		goto nomem;
	in->last = now;
	uint64_t started = now > r->uptime_ms ? now - r->uptime_ms : 1;
	if (!in->started || started < in->started)
		in->started = started;
	rep->last_accept = mono;
	tl->st.ignored_names += ignored;
	accepted(c, RP_TL_ACCEPTED, ignored);
	return;
nomem:
	free_sample(tl, s);
	if (fresh_in && in) {
		rep->instances = in->next;
		rep->n_instances--;
		free_instance(tl, in);
	}
	if (fresh_rep && rep && !rep->instances)
		drop_reporter(tl, rep);
	refuse(c, RP_TL_FULL, RP_ERR_NOMEM, "out of memory");
}

void rp_route_report(struct rp_call *c)
{
	char msg[400];
	if (!c->api->tele) { /* closed: the node is shutting down */
		rp_respond_error(c, RP_ERR_UNAVAILABLE, "this node is shutting down", -1);
		return;
	}
	if (rp_subscribe_check_cert(c) != RP_OK) { /* 401 answered, as /v1/subscribe */
		c->api->tele->st.reports[RP_TL_UNAUTHENTICATED]++;
		return;
	}
	Raftplane__Report *r;
	int too_large;
	h2o_iovec_t e = c->req->entity;
	if (rp_report_decode((const uint8_t *)e.base, e.base ? e.len : 0, &r, &too_large, msg,
			     sizeof msg) != 0) {
		refuse(c, too_large ? RP_TL_TOO_LARGE : RP_TL_MALFORMED,
		       too_large ? RP_ERR_TOO_LARGE : RP_ERR_INVALID, msg);
		return;
	}
	if (rp_subscribe_check_node(c, r->node_id, msg, sizeof msg) != RP_OK)
		refuse(c, RP_TL_FORBIDDEN, RP_ERR_PERMISSION, msg);
	else
		take_report(c, r);
	raftplane__report__free_unpacked(r, NULL);
}

/* ---- the local view ------------------------------------------------------------- */

static json_t *vec_json(const uint64_t *v)
{
	json_t *a = json_array();
	for (int k = 0; k < RP_TV__N; k++)
		json_array_append_new(a, rp_json_u64(v[k]));
	return a;
}

static json_t *traffic_json(const struct tl_sample *s, int kind, const char *only)
{
	json_t *o = json_object();
	struct tl_iter it;
	char name[RP_MAX_NAME + 1];
	uint64_t v[RP_TV__N];
	iter_init(&it, s, kind);
	while (iter_next(&it, name, v))
		if (!only || strcmp(only, name) == 0)
			json_object_set_new(o, name, vec_json(v));
	return o;
}

static json_t *sample_json(const struct tl_sample *s, const struct rp_tl_query *q)
{
	json_t *o = json_pack("{s:o,s:o,s:o}", "seq", rp_json_u64(s->seq), "t", rp_json_u64(s->t),
			      "version", rp_json_u64(s->version));
	if (q->kinds & RP_TLQ_ROUTES)
		json_object_set_new(o, "routes", traffic_json(s, 0, q->name));
	if (q->kinds & RP_TLQ_CLUSTERS)
		json_object_set_new(o, "clusters", traffic_json(s, 1, q->name));
	return o;
}

static json_t *endpoints_json(const struct tl_sample *s, const char *cluster)
{
	json_t *a = json_array();
	for (size_t i = 0; s->eps && i < s->eps->n; i++) {
		const struct tl_endpoint *e = &s->eps->e[i];
		if (cluster && strcmp(cluster, e->cluster) != 0)
			continue;
		json_array_append_new(a,
				      json_pack("[s,s,i,s,o,o,o]", e->cluster, e->address, e->state,
						e->reason, rp_json_u64(e->since_ms),
						rp_json_u64(e->requests), rp_json_u64(e->errors)));
	}
	return a;
}

/* Index in in->ring of the newest sample with t <= @at, or -1. */
static long at_or_before(const struct tl_instance *in, uint64_t at)
{
	long i = (long)in->n - 1;
	while (i >= 0 && in->ring[i]->t > at)
		i--;
	return i;
}

static void add_points(const struct tl_instance *in, const struct rp_tl_query *q, json_t *points,
		       json_t *samples, long *used, json_t *at_list, const uint64_t *at,
		       size_t n_at)
{
	size_t n = at ? n_at : json_array_size(at_list);
	for (size_t p = 0; p < n; p++) {
		json_t *jt = at ? NULL : json_array_get(at_list, p);
		json_int_t jv = jt ? json_integer_value(jt) : 0;
		long i;
		if (jv < 0) { /* -T: the oldest sample after T */
			i = at_or_before(in, (uint64_t)-jv) + 1;
			i = (size_t)i < in->n ? i : -1;
		} else {
			i = at_or_before(in, at ? at[p] : (uint64_t)jv);
		}
		if (i >= 0 && used[i] < 0) {
			used[i] = (long)json_array_size(samples);
			json_array_append_new(samples, sample_json(in->ring[i], q));
		}
		json_array_append_new(points, json_integer(i >= 0 ? used[i] : -1));
	}
}

static json_t *instance_json(const struct tl_reporter *r, const struct tl_instance *in,
			     const struct rp_tl_query *q)
{
	char id[24];
	snprintf(id, sizeof id, "%" PRIu64, in->id);
	long *used = malloc((in->n ? in->n : 1) * sizeof *used);
	if (!used)
		return NULL;
	for (size_t i = 0; i < in->n; i++)
		used[i] = -1;
	json_t *points = json_array(), *samples = json_array();
	add_points(in, q, points, samples, used, NULL, q->at, q->n_at);
	json_t *more = q->node_at ? json_object_get(q->node_at, r->node_id) : NULL;
	if (json_is_array(more))
		add_points(in, q, points, samples, used, more, NULL, 0);
	free(used);
	json_t *o = json_pack("{s:s,s:s,s:o,s:o,s:o,s:o,s:o}", "node_id", r->node_id, "instance",
			      id, "last", rp_json_u64(in->last), "started",
			      rp_json_u64(in->started), "first", sample_json(in->ring[0], q),
			      "points", points, "samples", samples);
	if (o && q->endpoints)
		json_object_set_new(o, "endpoints",
				    endpoints_json(in->ring[in->n - 1], q->cluster));
	json_t *v, *after = json_array(); /* positions of "first after" points */
	size_t j;
	json_array_foreach(json_is_array(more) ? more : NULL, j, v) if (json_integer_value(v) < 0)
		json_array_append_new(after, json_integer((json_int_t)(q->n_at + j)));
	if (o && json_array_size(after))
		json_object_set_new(o, "after", after);
	else
		json_decref(after);
	return o;
}

json_t *rp_telemetry_local(struct rp_api *api, const struct rp_tl_query *q)
{
	struct rp_telemetry *tl = api->tele;
	json_t *arr = json_array();
	for (size_t b = 0; tl && b < BUCKETS; b++) /* !tl: closed, nothing kept */
		for (struct tl_reporter *r = tl->buckets[b]; r; r = r->next) {
			if (q->node && strcmp(q->node, r->node_id) != 0)
				continue;
			if (q->n_at == 0 &&
			    (!q->node_at || !json_object_get(q->node_at, r->node_id)))
				continue; /* no point asked of this node */
			for (struct tl_instance *in = r->instances; in; in = in->next) {
				json_t *o = in->n ? instance_json(r, in, q) : NULL;
				if (o)
					json_array_append_new(arr, o);
			}
		}
	return json_pack("{s:o,s:I}", "instances", arr, "interval_ms",
			 (json_int_t)api->opts.report_interval_ms);
}

/* ---- lifecycle ---------------------------------------------------------------------- */

unsigned rp_telemetry_interval_ms(const struct rp_api *api)
{
	return api->opts.report_interval_ms;
}

const struct rp_tl_stats *rp_telemetry_stats(struct rp_api *api)
{
	static const struct rp_tl_stats closed; /* all zero once shut down */
	return api->tele ? &api->tele->st : &closed;
}

int rp_telemetry_init(struct rp_api *api)
{
	if (!api->opts.report_interval_ms)
		api->opts.report_interval_ms = 10000;
	if (!api->opts.telemetry_retention_ms)
		api->opts.telemetry_retention_ms = 15 * 60 * 1000;
	if (!api->opts.max_reporters)
		api->opts.max_reporters = 100000;
	struct rp_telemetry *tl = calloc(1, sizeof *tl);
	if (!tl || !(tl->buckets = calloc(BUCKETS, sizeof *tl->buckets))) {
		free(tl);
		return RP_ERR_NOMEM;
	}
	tl->st.bytes = sizeof *tl + BUCKETS * sizeof *tl->buckets;
	api->tele = tl;
	uv_timer_init(api->loop, &tl->gc);
	tl->gc.data = api;
	uv_timer_start(&tl->gc, on_gc, GC_MS, GC_MS);
	return RP_OK;
}

static void on_gc_closed(uv_handle_t *h)
{
	struct rp_api *api = h->data;
	struct rp_telemetry *tl = api->tele;
	for (size_t b = 0; b < BUCKETS; b++)
		while (tl->buckets[b]) {
			struct tl_reporter *r = tl->buckets[b];
			while (r->instances) {
				struct tl_instance *in = r->instances;
				r->instances = in->next;
				free_instance(tl, in);
			}
			drop_reporter(tl, r);
		}
	for (int k = 0; k < 2; k++) {
		clear_names(&tl->names[k]);
		free(tl->names[k].v);
	}
	free(tl->buckets);
	free(tl);
	api->tele = NULL;
}

void rp_telemetry_close(struct rp_api *api)
{
	if (!api->tele)
		return;
	uv_timer_stop(&api->tele->gc);
	uv_close((uv_handle_t *)&api->tele->gc, on_gc_closed);
}
