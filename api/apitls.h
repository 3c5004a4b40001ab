/* TLS as the API sees it (plain types, no .c): the contexts the server made
 * (server/security.h), for accepting (api.c), checking proxies' identities
 * (subscribe.c) and /metrics (metrics.c). NULL in rp_api_options.tls, or
 * api == NULL, means plain HTTP. */
#ifndef RP_APITLS_H
#define RP_APITLS_H

#include <stdint.h>

#include "tls.h"

/* Why POST /v1/subscribe was refused (metric label names in subscribe.c). */
enum rp_sub_refuse {
	RP_SUB_REFUSE_NO_CERT,    /* "no_cert": 401, no client certificate */
	RP_SUB_REFUSE_WRONG_NODE, /* "wrong_node": 403, not this node's certificate */
	RP_SUB_REFUSE__N,
};

struct rp_api_tls {
	struct rp_tls *api;                     /* server side of the API listener */
	struct rp_tls *client;                  /* our side towards other servers (metrics only) */
	struct rp_tls *peer;                    /* server side of the raft port (metrics only) */
	const char *trust_domain;               /* of every identity */
	uint64_t sub_refused[RP_SUB_REFUSE__N]; /* subscribe.c */
};

#endif
