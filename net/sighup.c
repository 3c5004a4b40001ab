/* SIGHUP watch (sighup.h). */
#include <signal.h>

#include "sighup.h"

static void on_sighup(uv_signal_t *h, int signum)
{
	(void)signum;
	struct rp_sighup *w = h->data;
	w->fn(w->arg);
}

void rp_sighup_start(struct rp_sighup *w, uv_loop_t *loop, void (*fn)(void *arg), void *arg)
{
	w->fn = fn;
	w->arg = arg;
	uv_signal_init(loop, &w->sig);
	w->sig.data = w;
	uv_signal_start(&w->sig, on_sighup, SIGHUP);
	w->active = 1;
}

void rp_sighup_stop(struct rp_sighup *w)
{
	if (w->active && !uv_is_closing((uv_handle_t *)&w->sig))
		uv_close((uv_handle_t *)&w->sig, NULL);
	w->active = 0;
}
