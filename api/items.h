/* /v1/kv and /v1/{clusters,routes,listeners}: single items and lists
 * (items.c). Each handler validates its input and answers. */
#ifndef RP_API_ITEMS_H
#define RP_API_ITEMS_H

#include "call.h"

/** GET/HEAD, PUT or DELETE of the kv key @name (@name_len bytes, decoded,
 * not yet checked). */
void rp_route_kv(struct rp_call *c, const char *method, const char *name, size_t name_len);
/** GET/HEAD /v1/kv?prefix=. */
void rp_route_kv_list(struct rp_call *c);
/** GET/HEAD, PUT or DELETE of the mesh object @name of RP_KIND_* @kind. */
void rp_route_mesh(struct rp_call *c, int kind, const char *method, const char *name,
		   size_t name_len);
/** GET/HEAD of the list of mesh objects of @kind (?prefix=). */
void rp_route_mesh_list(struct rp_call *c, int kind);

#endif
