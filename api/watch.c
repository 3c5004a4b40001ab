/* GET /v1/watch?after=REV&wait=30s&kinds=a,b: long poll on the change log.
 *
 * Served from this node's applied state (like etcd watches): it answers as
 * soon as a change with revision > after and a matching kind is applied
 * here, or with no changes when the wait ends. A parked watch sits on the
 * api's watcher list (its park, call.h invariant 5) until it answers or its
 * client goes away (a close watch notices that at once, park.c); either
 * takes it off the list. Its state (struct rp_watcher) is in the request
 * pool.
 *
 * Cost per write: rp_watch_notify reads the changes since the revision it
 * last looked at once (api->watch_seen_rev) and wakes only the watchers
 * whose kinds changed, so a parked watcher costs a mask test per write, not
 * a query of its whole history. Invariant: a parked watcher has no change
 * of its kinds in (after, revision at which it parked]. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "params.h"
#include "park.h"
#include "raftplane/err.h"
#include "raftplane/limits.h"
#include "watch.h"

#define MAX_WAIT_MS (600 * 1000)

/* A watch call's state (c->ctx), linked on api->watchers while parked. */
struct rp_watcher {
	struct rp_call *c;
	struct rp_watcher *prev, *next;
	uint64_t after;
	unsigned mask;
};

static void unlink_watcher(struct rp_call *c);
static const struct rp_park watch_list = {"watch", unlink_watcher};

struct collect {
	json_t *changes;
	uint64_t last;
};

static int add_change(void *arg, const struct rp_change *ch)
{
	struct collect *col = arg;
	if (json_array_size(col->changes) >= RP_MAX_WATCH_CHANGES)
		return 1;
	json_array_append_new(col->changes,
			      json_pack("{s:s,s:s,s:s,s:I}", "kind", rp_kind_name(ch->kind), "name",
					ch->name, "op", ch->deleted ? "delete" : "put", "version",
					(json_int_t)ch->version));
	col->last = ch->revision;
	return 0;
}

/* Answer if there is something to say (or @force); 1 when answered. */
static int try_answer(struct rp_call *c, int force)
{
	struct rp_watcher *w = c->ctx;
	struct rp_store *s = rp_node_store(c->api->node);
	struct collect col = {json_array(), 0};
	int rv = rp_store_changes(s, w->after, w->mask, add_change, &col);
	if (rv == RP_ERR_GONE) {
		json_decref(col.changes);
		char msg[128];
		snprintf(msg, sizeof msg, "revision %llu is compacted; history starts after %llu",
			 (unsigned long long)w->after, (unsigned long long)rp_store_compacted(s));
		rp_respond_error(c, RP_ERR_GONE, msg, -1);
		return 1;
	}
	if (json_array_size(col.changes) == 0 && !force) {
		json_decref(col.changes);
		return 0;
	}
	/* When the answer was cut at the limit, drop the changes of the last,
	 * possibly incomplete revision and answer the one before it, so that
	 * after=revision resumes without a gap. (A revision has at most
	 * RP_MAX_TXN_OPS changes, far below the limit.) */
	uint64_t rev = rp_store_revision(s);
	if (json_array_size(col.changes) >= RP_MAX_WATCH_CHANGES) {
		size_t n = json_array_size(col.changes);
		while (n > 0 && (uint64_t)json_integer_value(json_object_get(
					json_array_get(col.changes, n - 1), "version")) == col.last)
			json_array_remove(col.changes, --n);
		rev = col.last - 1;
	}
	rp_respond_json(c, 200,
			json_pack("{s:I,s:o}", "revision", (json_int_t)rev, "changes", col.changes),
			0);
	return 1;
}

/* The park's cancel: off api->watchers (answered, or the request went). */
static void unlink_watcher(struct rp_call *c)
{
	struct rp_api *api = c->api;
	struct rp_watcher *w = c->ctx;
	assert(w->prev || api->watchers == w); /* parked means linked */
	if (w->prev)
		w->prev->next = w->next;
	else
		api->watchers = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->prev = w->next = NULL;
}

static void park_watcher(struct rp_call *c)
{
	struct rp_api *api = c->api;
	struct rp_watcher *w = c->ctx;
	rp_call_park(c, &watch_list);
	w->next = api->watchers;
	w->prev = NULL;
	if (w->next)
		w->next->prev = w;
	api->watchers = w;
}

static int add_kind(void *arg, const struct rp_change *ch)
{
	unsigned *mask = arg;
	*mask |= 1u << ch->kind;
	return 0;
}

unsigned rp_changed_kinds(struct rp_api *api, uint64_t *seen_rev)
{
	struct rp_store *s = rp_node_store(api->node);
	uint64_t rev = rp_store_revision(s);
	unsigned changed = 0;
	if (rev == *seen_rev)
		return 0;
	/* after a restored snapshot the history may start later: say all */
	if (rev < *seen_rev || rp_store_changes(s, *seen_rev, ~0u, add_kind, &changed) != RP_OK)
		changed = ~0u;
	*seen_rev = rev;
	return changed;
}

void rp_watch_notify(struct rp_api *api)
{
	unsigned changed = rp_changed_kinds(api, &api->watch_seen_rev);
	if (!changed)
		return;
	uint64_t compacted = rp_store_compacted(rp_node_store(api->node));
	struct rp_watcher *w = api->watchers;
	while (w) {
		struct rp_watcher *next = w->next;
		assert(w->c->park == &watch_list);
		if ((w->mask & changed) || w->after < compacted)
			try_answer(w->c, 0); /* answering unlinks w (unlink_watcher) */
		w = next;
	}
}

static void on_watch_timeout(struct rp_call *c)
{
	try_answer(c, 1);
}

static int parse_kinds(const char *s, unsigned *mask)
{
	*mask = 0;
	while (*s) {
		const char *comma = strchr(s, ',');
		size_t len = comma ? (size_t)(comma - s) : strlen(s);
		int k = rp_kind_parse(s, len);
		if (k < 0 || (comma && comma[1] == '\0')) /* "kv," has an empty element */
			return -1;
		*mask |= 1u << k;
		s += len + (comma ? 1 : 0);
	}
	return *mask ? 0 : -1;
}

void rp_route_watch(struct rp_call *c)
{
	char after[32], wait[32], kinds[128];
	uint64_t wait_ms = 30000;
	struct rp_watcher *w = rp_call_alloc(c, sizeof *w, NULL);
	w->c = c;
	c->ctx = w;
	if (strncmp(c->req->method.base, "GET", c->req->method.len) != 0) {
		rp_respond_error(c, RP_ERR_METHOD, "use GET", -1);
		return;
	}
	int ha = rp_query_param(c->req, "after", after, sizeof after);
	int hw = rp_query_param(c->req, "wait", wait, sizeof wait);
	int hk = rp_query_param(c->req, "kinds", kinds, sizeof kinds);
	w->mask = ~0u;
	w->after = rp_store_revision(rp_node_store(c->api->node));
	uint64_t after_rev = 0;
	if (ha < 0 || (ha == 1 && (rp_parse_u64(after, strlen(after), &after_rev) != 0 ||
				   after_rev > INT64_MAX))) {
		rp_respond_error(c, RP_ERR_INVALID, "after must be a revision number", -1);
		return;
	}
	if (hw < 0 || (hw == 1 && rp_parse_wait(wait, MAX_WAIT_MS, &wait_ms) != 0)) {
		rp_respond_error(c, RP_ERR_INVALID, "wait must be like 30s or 500ms, at most 10m",
				 -1);
		return;
	}
	if (hk < 0 || (hk == 1 && parse_kinds(kinds, &w->mask) != 0)) {
		rp_respond_error(
			c, RP_ERR_INVALID,
			"kinds is a comma list of kv, clusters, routes, listeners, members", -1);
		return;
	}
	if (ha == 1)
		w->after = after_rev;
	if (try_answer(c, wait_ms == 0))
		return;
	park_watcher(c);
	rp_call_set_timer(c, wait_ms, on_watch_timeout);
	rp_call_watch_close(c);
}
