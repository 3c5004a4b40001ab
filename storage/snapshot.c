/* Per-node proxy snapshots.
 *
 * Invariants
 * 1. A node's snapshot = listeners whose "nodes" name it or "*", the routes
 *    on those listeners, the clusters those routes use; nothing else.
 * 2. Its version = max(versions of those items, epochs of those listeners,
 *    the node's epoch, the "*" epoch). Epochs are written by the FSM when a
 *    route or listener leaves a snapshot (distribution.c), so the version is a pure
 *    function of the applied state: every server computes the same one, and
 *    a change that concerns no part of a node's snapshot leaves it alone.
 * 3. A struct rp_mesh is immutable once built; the protobuf messages in it
 *    point into the parsed JSON it owns.
 * 4. Stored values passed apply's structural decode (storage/validate.h),
 *    not necessarily the schema: what this file reads beyond the decoded
 *    fields is read defensively (a missing or mistyped field reads as "" or
 *    0, arrays are bounded). A stored value that does not parse fails the
 *    build instead of being left out, which would give a node a snapshot
 *    without it under the version of the one with it. */
#include "snapshot.h"

#include <assert.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "distribution.h"
#include "raftplane/err.h"

struct m_listener {
	Raftplane__Listener pb;
	json_t *json;
	json_t *nodes;
	int star;
	uint64_t epoch;
};

/* The i-th string of JSON array @a, "" when it is not one. */
static const char *jarr_str(json_t *a, size_t i)
{
	const char *s = json_string_value(json_array_get(a, i));
	return s ? s : "";
}

struct m_route {
	Raftplane__Route pb;
	json_t *json;
	int listener; /* index into listeners, -1 when missing */
	Raftplane__HeaderMatch *headers;
	Raftplane__HeaderMatch **header_ptrs;
	Raftplane__WeightedCluster *wc;
	Raftplane__WeightedCluster **wc_ptrs;
	int clusters[RP_MAX_WEIGHTED + 1]; /* indexes into clusters */
	unsigned n_clusters;
};

struct m_cluster {
	Raftplane__Cluster pb;
	json_t *json;
	Raftplane__Endpoint *eps;
	Raftplane__Endpoint **ep_ptrs;
	Raftplane__HealthCheck hc;
};

struct m_epoch {
	char *node;
	uint64_t rev;
};

struct rp_mesh {
	uint64_t revision;
	char cluster_id[33]; /* the store's cluster id when built ("" if none yet) */
	struct m_listener *listeners;
	size_t n_listeners;
	struct m_route *routes;
	size_t n_routes;
	struct m_cluster *clusters;
	size_t n_clusters;
	struct m_epoch *node_epochs; /* sorted by node (strcmp) */
	size_t n_node_epochs;
	uint64_t star_epoch;
	/* node ids some listener names (sorted, unique), and what every other
	 * node gets: the "*" listeners, at star_version before its node epoch */
	char **named;
	size_t n_named;
	char *star_sel;
	uint64_t star_version;
	int oom;
};

/* ---- building ----------------------------------------------------------- */

static const char *jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

static uint32_t juint(json_t *o, const char *key)
{
	return (uint32_t)json_integer_value(json_object_get(o, key));
}

static void *grow(struct rp_mesh *m, void *arr, size_t n, size_t size)
{
	/* capacity is 4, then doubles: grow when n is 0 or a power of two >= 4 */
	if (n != 0 && (n < 4 || (n & (n - 1))))
		return arr;
	void *p = realloc(arr, (n ? n * 2 : 4) * size);
	if (!p)
		m->oom = 1;
	return p;
}

static int add_listener(void *arg, const struct rp_item *it)
{
	struct rp_mesh *m = arg;
	struct m_listener *arr = grow(m, m->listeners, m->n_listeners, sizeof *arr);
	if (!arr)
		return 1;
	m->listeners = arr;
	struct m_listener *l = &arr[m->n_listeners];
	memset(l, 0, sizeof *l);
	l->json = json_loadb(it->value, it->value_len, 0, NULL);
	if (!l->json) {
		m->oom = 1; /* invariant 4 */
		return 1;
	}
	raftplane__listener__init(&l->pb);
	json_object_set_new(l->json, "#name", json_string(it->name)); /* keeps the name alive */
	l->pb.name = (char *)jstr(l->json, "#name");
	l->pb.version = it->version;
	l->pb.address = (char *)jstr(l->json, "address");
	l->pb.port = juint(l->json, "port");
	l->nodes = json_object_get(l->json, "nodes");
	l->star = json_array_size(l->nodes) == 1 && strcmp(jarr_str(l->nodes, 0), "*") == 0;
	l->epoch = it->version;
	m->n_listeners++;
	return 0;
}

static void cluster_pb(struct rp_mesh *m, struct m_cluster *c)
{
	json_t *eps = json_object_get(c->json, "endpoints");
	size_t n = json_array_size(eps);
	c->eps = calloc(n ? n : 1, sizeof *c->eps);
	c->ep_ptrs = calloc(n ? n : 1, sizeof *c->ep_ptrs);
	if (!c->eps || !c->ep_ptrs) {
		m->oom = 1;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(eps, i);
		raftplane__endpoint__init(&c->eps[i]);
		c->eps[i].address = (char *)jstr(e, "address");
		c->eps[i].port = juint(e, "port");
		c->eps[i].weight = juint(e, "weight");
		c->ep_ptrs[i] = &c->eps[i];
	}
	c->pb.endpoints = c->ep_ptrs;
	c->pb.n_endpoints = n;
	c->pb.lb_policy = (char *)jstr(c->json, "lb_policy");
	c->pb.hash_on = (char *)jstr(c->json, "hash_on");
	c->pb.connect_timeout_ms = juint(c->json, "connect_timeout_ms");
	json_t *hc = json_object_get(c->json, "health_check");
	if (hc) {
		raftplane__health_check__init(&c->hc);
		c->hc.path = (char *)jstr(hc, "path");
		c->hc.interval_ms = juint(hc, "interval_ms");
		c->hc.timeout_ms = juint(hc, "timeout_ms");
		c->hc.unhealthy_threshold = juint(hc, "unhealthy_threshold");
		c->hc.healthy_threshold = juint(hc, "healthy_threshold");
		c->pb.health_check = &c->hc;
	}
}

static int add_cluster(void *arg, const struct rp_item *it)
{
	struct rp_mesh *m = arg;
	struct m_cluster *arr = grow(m, m->clusters, m->n_clusters, sizeof *arr);
	if (!arr)
		return 1;
	m->clusters = arr;
	struct m_cluster *c = &arr[m->n_clusters];
	memset(c, 0, sizeof *c);
	c->json = json_loadb(it->value, it->value_len, 0, NULL);
	if (!c->json) {
		m->oom = 1; /* invariant 4 */
		return 1;
	}
	json_object_set_new(c->json, "#name", json_string(it->name));
	raftplane__cluster__init(&c->pb);
	c->pb.name = (char *)jstr(c->json, "#name");
	c->pb.version = it->version;
	m->n_clusters++;
	return 0;
}

static int find_by_name(const struct rp_mesh *m, int kind, const char *name)
{
	/* items come from the store sorted by name: binary search */
	size_t lo = 0, hi = kind == RP_KIND_LISTENERS ? m->n_listeners : m->n_clusters;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const char *n = kind == RP_KIND_LISTENERS ? m->listeners[mid].pb.name
							  : m->clusters[mid].pb.name;
		int c = strcmp(n, name);
		if (c == 0)
			return (int)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static void route_targets(struct rp_mesh *m, struct m_route *r)
{
	json_t *wc = json_object_get(r->json, "weighted_clusters");
	size_t n = json_array_size(wc);
	if (n > RP_MAX_WEIGHTED)
		n = RP_MAX_WEIGHTED; /* the schema's bound; invariant 4 */
	r->pb.cluster = (char *)jstr(r->json, "cluster");
	if (r->pb.cluster[0]) {
		int ci = find_by_name(m, RP_KIND_CLUSTERS, r->pb.cluster);
		if (ci >= 0)
			r->clusters[r->n_clusters++] = ci;
	}
	if (!n)
		return;
	r->wc = calloc(n, sizeof *r->wc);
	r->wc_ptrs = calloc(n, sizeof *r->wc_ptrs);
	if (!r->wc || !r->wc_ptrs) {
		m->oom = 1;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *w = json_array_get(wc, i);
		raftplane__weighted_cluster__init(&r->wc[i]);
		r->wc[i].cluster = (char *)jstr(w, "cluster");
		r->wc[i].weight = juint(w, "weight");
		r->wc_ptrs[i] = &r->wc[i];
		int ci = find_by_name(m, RP_KIND_CLUSTERS, r->wc[i].cluster);
		if (ci >= 0 && r->n_clusters < sizeof r->clusters / sizeof r->clusters[0])
			r->clusters[r->n_clusters++] = ci;
	}
	r->pb.weighted_clusters = r->wc_ptrs;
	r->pb.n_weighted_clusters = n;
}

static void route_pb(struct rp_mesh *m, struct m_route *r)
{
	json_t *match = json_object_get(r->json, "match");
	json_t *hs = json_object_get(r->json, "headers");
	json_t *retries = json_object_get(r->json, "retries");
	json_t *on = json_object_get(retries, "on");
	size_t nh = json_array_size(hs);
	r->pb.listener = (char *)jstr(r->json, "listener");
	r->pb.priority = juint(r->json, "priority");
	r->pb.prefix = (char *)jstr(match, "prefix");
	r->pb.path = (char *)jstr(match, "path");
	r->pb.timeout_ms = juint(r->json, "timeout_ms");
	r->pb.retry_attempts = juint(retries, "attempts");
	for (size_t i = 0; i < json_array_size(on); i++) {
		const char *s = jarr_str(on, i);
		r->pb.retry_connect_failure |= strcmp(s, "connect-failure") == 0;
		r->pb.retry_5xx |= strcmp(s, "5xx") == 0;
	}
	if (json_object_get(r->json, "prefix_rewrite")) {
		r->pb.has_prefix_rewrite = 1;
		r->pb.prefix_rewrite = (char *)jstr(r->json, "prefix_rewrite");
	}
	if (nh) {
		r->headers = calloc(nh, sizeof *r->headers);
		r->header_ptrs = calloc(nh, sizeof *r->header_ptrs);
		if (!r->headers || !r->header_ptrs) {
			m->oom = 1;
			return;
		}
		for (size_t i = 0; i < nh; i++) {
			raftplane__header_match__init(&r->headers[i]);
			r->headers[i].name = (char *)jstr(json_array_get(hs, i), "name");
			r->headers[i].exact = (char *)jstr(json_array_get(hs, i), "exact");
			r->header_ptrs[i] = &r->headers[i];
		}
		r->pb.headers = r->header_ptrs;
		r->pb.n_headers = nh;
	}
	route_targets(m, r);
	r->listener = find_by_name(m, RP_KIND_LISTENERS, r->pb.listener);
}

static int add_route(void *arg, const struct rp_item *it)
{
	struct rp_mesh *m = arg;
	struct m_route *arr = grow(m, m->routes, m->n_routes, sizeof *arr);
	if (!arr)
		return 1;
	m->routes = arr;
	struct m_route *r = &arr[m->n_routes];
	memset(r, 0, sizeof *r);
	r->json = json_loadb(it->value, it->value_len, 0, NULL);
	if (!r->json) {
		m->oom = 1; /* invariant 4 */
		return 1;
	}
	json_object_set_new(r->json, "#name", json_string(it->name));
	raftplane__route__init(&r->pb);
	r->pb.name = (char *)jstr(r->json, "#name");
	r->pb.version = it->version;
	m->n_routes++;
	return 0;
}

static int add_epoch(void *arg, int kind, const char *name, uint64_t rev)
{
	struct rp_mesh *m = arg;
	if (kind == RP_EPOCH_STAR) {
		m->star_epoch = rev;
	} else if (kind == RP_EPOCH_LISTENER) {
		int li = find_by_name(m, RP_KIND_LISTENERS, name);
		if (li >= 0 && rev > m->listeners[li].epoch)
			m->listeners[li].epoch = rev;
	} else if (kind == RP_EPOCH_NODE) {
		struct m_epoch *arr = grow(m, m->node_epochs, m->n_node_epochs, sizeof *arr);
		if (!arr)
			return 1;
		m->node_epochs = arr;
		arr[m->n_node_epochs].node = strdup(name);
		arr[m->n_node_epochs].rev = rev;
		if (!arr[m->n_node_epochs].node)
			m->oom = 1;
		else
			m->n_node_epochs++;
	}
	return m->oom;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_epoch(const void *a, const void *b)
{
	return strcmp(((const struct m_epoch *)a)->node, ((const struct m_epoch *)b)->node);
}

static uint64_t select_for(const struct rp_mesh *m, const char *node, char *lsel, char *csel);

/* The named node ids and the selection of all the others (rp_mesh_node_key's
 * fast path). */
static void index_nodes(struct rp_mesh *m)
{
	size_t n = 0;
	for (size_t i = 0; i < m->n_listeners; i++)
		n += json_array_size(m->listeners[i].nodes);
	m->named = calloc(n + 1, sizeof *m->named);
	m->star_sel = calloc(m->n_listeners + 1, 1);
	char *csel = calloc(m->n_clusters + 1, 1);
	if (!m->named || !m->star_sel || !csel) {
		free(csel);
		m->oom = 1;
		return;
	}
	for (size_t i = 0; i < m->n_listeners; i++)
		for (size_t j = 0; j < json_array_size(m->listeners[i].nodes); j++) {
			const char *id = jarr_str(m->listeners[i].nodes, j);
			if (id[0] && strcmp(id, "*") != 0)
				m->named[m->n_named++] =
					(char *)id; /* owned by the listener's JSON */
		}
	if (m->n_named > 1)
		qsort(m->named, m->n_named, sizeof *m->named, cmp_str);
	size_t u = 0;
	for (size_t i = 0; i < m->n_named; i++)
		if (u == 0 || strcmp(m->named[u - 1], m->named[i]) != 0)
			m->named[u++] = m->named[i];
	m->n_named = u;
	if (m->n_node_epochs > 1)
		qsort(m->node_epochs, m->n_node_epochs, sizeof *m->node_epochs, cmp_epoch);
	/* "" is named by no listener and has no epoch: what any other id gets */
	m->star_version = select_for(m, "", m->star_sel, csel);
	free(csel);
}

int rp_mesh_build(struct rp_store *s, struct rp_mesh **out)
{
	struct rp_mesh *m = calloc(1, sizeof *m);
	if (!m)
		return RP_ERR_NOMEM;
	m->revision = rp_store_revision(s);
	snprintf(m->cluster_id, sizeof m->cluster_id, "%s", rp_store_cluster_id(s));
	rp_store_list(s, RP_KIND_LISTENERS, "", add_listener, m);
	rp_store_list(s, RP_KIND_CLUSTERS, "", add_cluster, m);
	rp_store_list(s, RP_KIND_ROUTES, "", add_route, m);
	for (size_t i = 0; i < m->n_clusters && !m->oom; i++)
		cluster_pb(m, &m->clusters[i]);
	for (size_t i = 0; i < m->n_routes && !m->oom; i++)
		route_pb(m, &m->routes[i]);
	rp_store_epochs(s, add_epoch, m);
	if (!m->oom)
		index_nodes(m);
	if (m->oom) {
		rp_mesh_destroy(m);
		return RP_ERR_NOMEM;
	}
	*out = m;
	return RP_OK;
}

void rp_mesh_destroy(struct rp_mesh *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n_listeners; i++)
		json_decref(m->listeners[i].json);
	for (size_t i = 0; i < m->n_routes; i++) {
		json_decref(m->routes[i].json);
		free(m->routes[i].headers);
		free(m->routes[i].header_ptrs);
		free(m->routes[i].wc);
		free(m->routes[i].wc_ptrs);
	}
	for (size_t i = 0; i < m->n_clusters; i++) {
		json_decref(m->clusters[i].json);
		free(m->clusters[i].eps);
		free(m->clusters[i].ep_ptrs);
	}
	for (size_t i = 0; i < m->n_node_epochs; i++)
		free(m->node_epochs[i].node);
	free(m->listeners);
	free(m->routes);
	free(m->clusters);
	free(m->node_epochs);
	free(m->named);
	free(m->star_sel);
	free(m);
}

uint64_t rp_mesh_revision(const struct rp_mesh *m)
{
	return m->revision;
}

const char *rp_mesh_cluster_id(const struct rp_mesh *m)
{
	return m->cluster_id;
}

/* ---- per node ----------------------------------------------------------- */

static int listener_for(const struct m_listener *l, const char *node)
{
	if (l->star)
		return 1;
	for (size_t i = 0; i < json_array_size(l->nodes); i++)
		if (strcmp(jarr_str(l->nodes, i), node) == 0)
			return 1;
	return 0;
}

static uint64_t max64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/* @node's epoch, 0 when none. */
static uint64_t node_epoch(const struct rp_mesh *m, const char *node)
{
	struct m_epoch key = {.node = (char *)node};
	const struct m_epoch *e = m->n_node_epochs ? bsearch(&key, m->node_epochs, m->n_node_epochs,
							     sizeof key, cmp_epoch)
						   : NULL;
	return e ? e->rev : 0;
}

/* Mark (in @lsel, @csel) what @node gets; return its version. */
static uint64_t select_for(const struct rp_mesh *m, const char *node, char *lsel, char *csel)
{
	uint64_t v = max64(m->star_epoch, node_epoch(m, node));
	for (size_t i = 0; i < m->n_listeners; i++) {
		lsel[i] = (char)listener_for(&m->listeners[i], node);
		if (lsel[i])
			v = max64(v, max64(m->listeners[i].epoch, m->listeners[i].pb.version));
	}
	for (size_t i = 0; i < m->n_routes; i++) {
		const struct m_route *r = &m->routes[i];
		if (r->listener < 0 || !lsel[r->listener])
			continue;
		v = max64(v, r->pb.version);
		for (unsigned c = 0; c < r->n_clusters; c++) {
			csel[r->clusters[c]] = 1;
			v = max64(v, m->clusters[r->clusters[c]].pb.version);
		}
	}
	return v;
}

uint64_t rp_mesh_node_version(const struct rp_mesh *m, const char *node)
{
	char *lsel = calloc(m->n_listeners + 1, 1), *csel = calloc(m->n_clusters + 1, 1);
	uint64_t v = lsel && csel ? select_for(m, node, lsel, csel) : 0;
	assert(v <= m->revision); /* storage/store.h invariant 3 */
	free(lsel);
	free(csel);
	return v;
}

int rp_mesh_each_node(const struct rp_mesh *m, int (*cb)(void *arg, const char *node), void *arg)
{
	for (size_t i = 0; i < m->n_listeners; i++) {
		const struct m_listener *l = &m->listeners[i];
		for (size_t j = 0; j < json_array_size(l->nodes); j++) {
			const char *n = jarr_str(l->nodes, j);
			int rv = strcmp(n, "*") != 0 && n[0] ? cb(arg, n) : 0;
			if (rv)
				return rv;
		}
	}
	return 0;
}

static int route_order(const void *a, const void *b)
{
	const Raftplane__Route *x = *(Raftplane__Route *const *)a,
			       *y = *(Raftplane__Route *const *)b;
	if (x->priority != y->priority)
		return x->priority > y->priority ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* Encode the snapshot of the listeners marked in @lsel at @version for
 * @node ("": without node_id, see rp_mesh_key_snapshot). */
static int encode(const struct rp_mesh *m, const char *node, const char *lsel, uint64_t version,
		  void **buf, size_t *len)
{
	char *csel = calloc(m->n_clusters + 1, 1);
	Raftplane__Listener **ls = calloc(m->n_listeners + 1, sizeof *ls);
	Raftplane__Route **rs = calloc(m->n_routes + 1, sizeof *rs);
	Raftplane__Cluster **cs = calloc(m->n_clusters + 1, sizeof *cs);
	int rv = RP_ERR_NOMEM;
	if (!csel || !ls || !rs || !cs)
		goto out;
	Raftplane__Snapshot snap;
	raftplane__snapshot__init(&snap);
	snap.node_id = (char *)node;
	snap.revision = m->revision;
	snap.cluster_id = (char *)m->cluster_id;
	snap.version = version;
	for (size_t i = 0; i < m->n_listeners; i++)
		if (lsel[i])
			ls[snap.n_listeners++] = (Raftplane__Listener *)&m->listeners[i].pb;
	for (size_t i = 0; i < m->n_routes; i++) {
		const struct m_route *r = &m->routes[i];
		if (r->listener < 0 || !lsel[r->listener])
			continue;
		rs[snap.n_routes++] = (Raftplane__Route *)&r->pb;
		for (unsigned c = 0; c < r->n_clusters; c++)
			csel[r->clusters[c]] = 1;
	}
	for (size_t i = 0; i < m->n_clusters; i++)
		if (csel[i])
			cs[snap.n_clusters++] = (Raftplane__Cluster *)&m->clusters[i].pb;
	qsort(rs, snap.n_routes, sizeof *rs, route_order);
	snap.listeners = ls;
	snap.routes = rs;
	snap.clusters = cs;
	*len = raftplane__snapshot__get_packed_size(&snap);
	*buf = malloc(*len ? *len : 1);
	if (!*buf)
		goto out;
	raftplane__snapshot__pack(&snap, *buf);
	rv = RP_OK;
out:
	free(csel);
	free(ls);
	free(rs);
	free(cs);
	return rv;
}

int rp_mesh_node_snapshot(const struct rp_mesh *m, const char *node, void **buf, size_t *len,
			  uint64_t *version)
{
	char *lsel = calloc(m->n_listeners + 1, 1), *csel = calloc(m->n_clusters + 1, 1);
	int rv = RP_ERR_NOMEM;
	if (lsel && csel) {
		*version = select_for(m, node, lsel, csel);
		rv = encode(m, node, lsel, *version, buf, len);
	}
	free(lsel);
	free(csel);
	return rv;
}

/* ---- shared encodings ------------------------------------------------------ */

int rp_mesh_node_key(const struct rp_mesh *m, const char *node, struct rp_node_key *k)
{
	memset(k, 0, sizeof *k);
	const char *key = node;
	int named = m->n_named &&
		    bsearch(&key, m->named, m->n_named, sizeof *m->named, cmp_str) != NULL;
	char *lsel = calloc(m->n_listeners + 1, 1),
	     *csel = named ? calloc(m->n_clusters + 1, 1) : NULL;
	if (!lsel || (named && !csel)) {
		free(lsel);
		free(csel);
		return RP_ERR_NOMEM;
	}
	if (named) {
		k->version = select_for(m, node, lsel, csel);
	} else { /* only "*" listeners reach it: no walk over the mesh */
		memcpy(lsel, m->star_sel, m->n_listeners);
		k->version = max64(m->star_version, node_epoch(m, node));
	}
	free(csel);
	k->sel = lsel;
	k->n = m->n_listeners;
	uint64_t h = 14695981039346656037ull ^ k->version;
	for (size_t i = 0; i < k->n; i++)
		h = (h ^ (unsigned char)lsel[i]) * 1099511628211ull;
	k->hash = h;
	return RP_OK;
}

void rp_node_key_release(struct rp_node_key *k)
{
	free(k->sel);
	k->sel = NULL;
}

int rp_node_key_equal(const struct rp_node_key *a, const struct rp_node_key *b)
{
	return a->hash == b->hash && a->version == b->version && a->n == b->n &&
	       memcmp(a->sel, b->sel, a->n) == 0;
}

int rp_mesh_key_snapshot(const struct rp_mesh *m, const struct rp_node_key *k, void **buf,
			 size_t *len)
{
	assert(k->n == m->n_listeners);
	return encode(m, "", k->sel, k->version, buf, len);
}

size_t rp_snapshot_node_prefix(const char *node, unsigned char out[RP_SNAPSHOT_PREFIX_MAX])
{
	size_t n = strlen(node), i = 0;
	assert(n > 0 && n <= RP_MAX_NAME);
	out[i++] = 0x0a; /* field 1 (node_id), length-delimited */
	for (size_t v = n;; v >>= 7) {
		out[i++] = (unsigned char)(v < 0x80 ? v : (v & 0x7f) | 0x80);
		if (v < 0x80)
			break;
	}
	memcpy(out + i, node, n);
	return i + n;
}
