/* Worker threads: loop, h2o context, listeners, pools, timeouts. */
#include "worker.h"
#include "accept.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "raftplane/log.h"
#include "stats.h"

#define DRAIN_POLL_MS 20

/* ---- pools and timeouts -------------------------------------------------- */

static size_t bucket_of(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return (size_t)(h % RP_POOL_BUCKETS);
}

struct rp_pool *rp_worker_pool(struct rp_worker *w, const struct rp_endpoint *e)
{
	size_t b = bucket_of(e->hostport);
	for (struct rp_pool *p = w->pools[b]; p; p = p->next)
		if (strcmp(p->hostport, e->hostport) == 0)
			return p;
	struct rp_pool *p = malloc(sizeof *p);
	if (!p)
		return NULL;
	struct rp_pool_opts o = {
		.hostport = e->hostport,
		.sa = (const struct sockaddr *)&e->sa,
		.salen = e->salen,
		.max_idle = w->proxy->opts.pool_max_idle,
		.idle_timeout = rp_worker_timeout(w, w->proxy->opts.pool_idle_timeout_ms),
	};
	rp_pool_init(p, &w->loop, &o);
	if (w->stopping)
		rp_pool_stop(p);
	p->next = w->pools[b];
	w->pools[b] = p;
	return p;
}

/* Dispose the pools no endpoint of @g uses and no attempt holds. */
static void gc_pools(struct rp_worker *w, struct rp_generation *g, int all)
{
	static const uint64_t keep = 1;
	for (size_t b = 0; b < RP_POOL_BUCKETS; b++)
		for (struct rp_pool *p = w->pools[b]; p; p = p->next)
			p->mark = 0;
	for (size_t i = 0; g && !all && i < g->n_clusters; i++) {
		for (size_t j = 0; j < g->clusters[i].n_eps; j++) {
			const struct rp_endpoint *e = &g->clusters[i].eps[j];
			for (struct rp_pool *p = w->pools[bucket_of(e->hostport)]; p; p = p->next)
				if (strcmp(p->hostport, e->hostport) == 0)
					p->mark = keep;
		}
	}
	for (size_t b = 0; b < RP_POOL_BUCKETS; b++) {
		struct rp_pool **pp = &w->pools[b];
		while (*pp) {
			struct rp_pool *p = *pp;
			if (p->mark == keep || p->busy) {
				pp = &p->next;
				continue;
			}
			*pp = p->next;
			rp_pool_close_idle(p);
			free(p);
		}
	}
}

h2o_timeout_t *rp_worker_timeout(struct rp_worker *w, uint64_t ms)
{
	for (struct rp_wtimeout *t = w->timeouts; t; t = t->next)
		if (t->ms == ms)
			return &t->timeout;
	struct rp_wtimeout *t = calloc(1, sizeof *t);
	if (!t)
		abort(); /* a few bytes per distinct timeout value: nothing to fall back to */
	t->ms = ms;
	h2o_timeout_init(&w->loop, &t->timeout, ms);
	t->next = w->timeouts;
	w->timeouts = t;
	return &t->timeout;
}

/* ---- listeners ----------------------------------------------------------- */

/* An admitted client connection closed (net/accept.c calls it). */
static void on_conn_closed(void *arg)
{
	struct rp_worker *w = arg;
	w->conns--;
	rp_dec(&rp_gstats.downstream_cx_active);
}

static void on_accept(uv_stream_t *listener, int status)
{
	struct rp_wlistener *wl = listener->data;
	struct rp_worker *w = wl->w;
	struct rp_accept_opts o = {.limits = &w->proxy->traffic_conns,
				   .on_close = on_conn_closed,
				   .close_arg = w};
	/* on_close runs in a later loop phase, never within the accept */
	if (status != 0 || rp_accept_http(listener, &w->accept_ctx, &o) != 0)
		return;
	rp_inc(&rp_gstats.downstream_cx_total);
	rp_inc(&rp_gstats.downstream_cx_active);
	w->conns++;
}

static void adopt(struct rp_worker *w, struct rp_lsock *ls)
{
	int fd = atomic_exchange(&ls->fds[w->id], -1);
	if (fd < 0)
		return; /* never ours, or already adopted */
	struct rp_wlistener *wl = calloc(1, sizeof *wl);
	int rv = wl ? uv_tcp_init(&w->loop, &wl->tcp) : UV_ENOMEM;
	if (rv != 0) {
		free(wl);
		close(fd);
		rp_log_error("worker %u: cannot adopt listener %s: %s", w->id, ls->key,
			     uv_strerror(rv));
		return;
	}
	wl->tcp.data = wl;
	wl->sock = ls;
	wl->w = w;
	if ((rv = uv_tcp_open(&wl->tcp, fd)) != 0)
		close(fd); /* the handle did not take it */
	else
		rv = uv_listen((uv_stream_t *)&wl->tcp, 1024, on_accept);
	if (rv != 0) {
		rp_log_error("worker %u: cannot listen on %s: %s", w->id, ls->key, uv_strerror(rv));
		uv_close((uv_handle_t *)&wl->tcp, (uv_close_cb)free);
		return;
	}
	wl->next = w->listeners;
	w->listeners = wl;
}

static int gen_has_lsock(const struct rp_generation *g, const struct rp_lsock *ls)
{
	for (size_t i = 0; g && i < g->n_listeners; i++)
		if (g->listeners[i].sock == ls)
			return 1;
	return 0;
}

/* Open the listeners of @g this worker lacks, close those @g lacks. */
static void reconcile_listeners(struct rp_worker *w, struct rp_generation *g)
{
	for (size_t i = 0; g && i < g->n_listeners; i++) {
		int have = 0;
		for (struct rp_wlistener *wl = w->listeners; wl && !have; wl = wl->next)
			have = wl->sock == g->listeners[i].sock;
		if (!have)
			adopt(w, g->listeners[i].sock);
	}
	struct rp_wlistener **pp = &w->listeners;
	while (*pp) {
		struct rp_wlistener *wl = *pp;
		if (gen_has_lsock(g, wl->sock)) {
			pp = &wl->next;
			continue;
		}
		*pp = wl->next;
		uv_close((uv_handle_t *)&wl->tcp, (uv_close_cb)free);
	}
}

/* ---- generation hand-over and stop ---------------------------------------- */

static void on_drain(uv_timer_t *t)
{
	struct rp_worker *w = t->data;
	uint64_t now = uv_now(&w->loop);
	if ((w->active == 0 && w->conns == 0) || now - w->drain_started >= w->proxy->opts.drain_ms)
		uv_stop(&w->loop);
}

static void begin_stop(struct rp_worker *w)
{
	if (w->stopping)
		return;
	w->stopping = 1;
	for (size_t b = 0; b < RP_POOL_BUCKETS; b++)
		for (struct rp_pool *pl = w->pools[b]; pl; pl = pl->next)
			rp_pool_stop(pl);
	reconcile_listeners(w, NULL);
	h2o_context_request_shutdown(&w->ctx);
	w->drain_started = uv_now(&w->loop);
	uv_timer_start(&w->drain, on_drain, 0, DRAIN_POLL_MS);
}

static void on_wake(uv_async_t *a)
{
	struct rp_worker *w = a->data;
	struct rp_proxy *p = w->proxy;
	uv_mutex_lock(&p->publish_lock);
	struct rp_generation *g = p->published;
	uint64_t epoch = p->epoch;
	int stop = p->stopping;
	if (g)
		rp_gen_ref(g);
	uv_mutex_unlock(&p->publish_lock);
	if (stop) {
		if (g)
			rp_gen_unref(g);
		begin_stop(w);
		return;
	}
	if (g != w->gen) {
		reconcile_listeners(w, g);
		struct rp_generation *old = w->gen;
		w->gen = g; /* holds the reference taken above */
		if (old)
			rp_gen_unref(old);
		gc_pools(w, g, 0);
	} else if (g) {
		rp_gen_unref(g);
	}
	atomic_store(&w->adopted_epoch, epoch);
	uv_async_send(&p->adopted);
}

static void close_walk(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static int worker_init(struct rp_proxy *p, struct rp_worker *w);

static void worker_main(void *arg)
{
	struct rp_worker *w = arg;
	/* the loop and the h2o context are created by the thread that runs them */
	w->init_failed = worker_init(w->proxy, w) != 0;
	uv_sem_post(&w->started);
	if (w->init_failed)
		return;
	uv_run(&w->loop, UV_RUN_DEFAULT);
	/* stopped: drop what we hold; connections still open are cut */
	if (w->gen) {
		rp_gen_unref(w->gen);
		w->gen = NULL;
	}
	gc_pools(w, NULL, 1);
	/* h2o 2.2.5 cannot dispose a context whose internal timeouts are still
	 * linked, which they are for as long as the loop ran; like h2o's own
	 * server we leave it to the process exit (see __lsan_default_suppressions
	 * in main.c). Our own handles close below. */
	uv_run(&w->loop, UV_RUN_NOWAIT);
	uv_walk(&w->loop, close_walk, NULL);
	uv_run(&w->loop, UV_RUN_DEFAULT);
}

static int worker_init(struct rp_proxy *p, struct rp_worker *w)
{
	unsigned id = w->id;
	w->rng = (uv_hrtime() ^ ((uint64_t)id << 32) ^ (uint64_t)getpid()) | 1;
	atomic_init(&w->adopted_epoch, 0);
	if (uv_loop_init(&w->loop) != 0)
		return -1;
	uv_async_init(&w->loop, &w->wake, on_wake);
	w->wake.data = w;
	uv_timer_init(&w->loop, &w->drain);
	w->drain.data = w;
	h2o_context_init(&w->ctx, &w->loop, &p->h2o_config);
	w->accept_ctx.ctx = &w->ctx;
	w->accept_ctx.hosts = p->h2o_config.hosts;
	return 0;
}

int rp_workers_start(struct rp_proxy *p)
{
	p->workers = calloc(p->n_workers, sizeof *p->workers);
	if (!p->workers)
		return -1;
	for (unsigned i = 0; i < p->n_workers; i++) {
		struct rp_worker *w = &p->workers[i];
		w->id = i;
		w->proxy = p;
		uv_sem_init(&w->started, 0);
		if (uv_thread_create(&w->thread, worker_main, w) != 0) {
			rp_log_error("worker %u: cannot start its thread", i);
			return -1;
		}
		uv_sem_wait(&w->started);
		uv_sem_destroy(&w->started);
		if (w->init_failed) {
			rp_log_error("worker %u: cannot create its loop", i);
			return -1;
		}
	}
	return 0;
}

void rp_workers_wake(struct rp_proxy *p)
{
	for (unsigned i = 0; i < p->n_workers; i++)
		uv_async_send(&p->workers[i].wake);
}

void rp_workers_stop(struct rp_proxy *p)
{
	rp_workers_wake(p);
	for (unsigned i = 0; i < p->n_workers; i++)
		uv_thread_join(&p->workers[i].thread);
	for (unsigned i = 0; i < p->n_workers; i++) {
		struct rp_worker *w = &p->workers[i];
		while (w->timeouts) {
			struct rp_wtimeout *t = w->timeouts;
			w->timeouts = t->next;
			free(t);
		}
		uv_loop_close(&w->loop);
	}
	free(p->workers);
	p->workers = NULL;
}
