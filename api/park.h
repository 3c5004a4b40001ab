/* A parked request notices its client leaving (close watch + TCP
 * keepalive), so that nothing waits minutes for a client that is gone. */
#ifndef RP_API_PARK_H
#define RP_API_PARK_H

#include "call.h"

/** Watch @c's connection while it is parked: when the client closes (or TCP
 * keepalive finds it dead) the call answers 499, which fails to write, so
 * h2o disposes the request and every parked resource goes. Also turns on
 * TCP keepalive with short probes on the socket. The watch starts once the
 * call has waited PARK_WATCH_DELAY_MS (a poll answered sooner costs no
 * descriptor and no syscall); a client already gone by then is seen when it
 * starts. Idempotent; the watch (pending or started) is stopped by the
 * call's first answer or its dispose (call.h invariant 5).
 * Nothing happens for a call that is not live. */
void rp_call_watch_close(struct rp_call *c);

#define PARK_WATCH_DELAY_MS 200

/** Close the deferred watches' timer (API shutdown). */
void rp_park_close(struct rp_api *api);

#endif
