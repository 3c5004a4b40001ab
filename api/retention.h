/* The change history's retention follows the ready leader's flags
 * (--history-revisions, --history-max-age), behind the upgrade gate
 * (retention.c). */
#ifndef RP_API_RETENTION_H
#define RP_API_RETENTION_H

#include "call.h"

/* Listed in GET /healthz "features" by the releases that apply SET_HISTORY. */
#define RP_FEATURE_HISTORY "history_retention"

/** Start following the flags (nothing when none was given). */
int rp_retention_init(struct rp_api *api);
void rp_retention_close(struct rp_api *api);

#endif
