/* A SIGHUP watch on a libuv loop that calls one reload function: the TLS
 * certificate reload of the server, the proxy and the subscriber. */
#ifndef RP_SIGHUP_H
#define RP_SIGHUP_H

#include <uv.h>

struct rp_sighup {
	uv_signal_t sig;
	int active; /* started and not yet closed */
	void (*fn)(void *arg);
	void *arg;
};

/** Call @fn(@arg) on every SIGHUP delivered to @loop. */
void rp_sighup_start(struct rp_sighup *w, uv_loop_t *loop, void (*fn)(void *arg), void *arg);

/** Stop and close the watch (no-op when not started or already stopped). */
void rp_sighup_stop(struct rp_sighup *w);

#endif
