/* The REST admin API of a node, as the server program sees it: start and
 * close it on the node's loop, tell it about applied changes. The top of
 * api/ (api.c); nothing in api/ includes this header. */
#ifndef RP_API_H
#define RP_API_H

#include "call.h"      /* struct rp_api, struct rp_api_options */
#include "subscribe.h" /* rp_subscribe_notify */
#include "watch.h"     /* rp_watch_notify */

/** Start the API of @node on @loop, listening on @addr ("IP:port"), with
 * @opts copied. @api is the caller's, uninitialised. 0, or -1 with a
 * sentence in @errmsg (bad address, out of memory, listen failure). */
int rp_api_start(struct rp_api *api, uv_loop_t *loop, struct rp_node *node, const char *addr,
		 const struct rp_api_options *opts, char *errmsg, size_t errlen);
/** Stop listening and stop the API's timers; the handles close on the
 * loop (run it to let them go). */
void rp_api_close(struct rp_api *api);

#endif
