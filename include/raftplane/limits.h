/* Size limits enforced on every input, in one place. */
#ifndef RAFTPLANE_LIMITS_H
#define RAFTPLANE_LIMITS_H

#define RP_MAX_BODY (1024 * 1024) /* request body, and kv value */
#define RP_MAX_NAME 128           /* key and object names */
#define RP_MAX_TXN_OPS 128        /* ops in one transaction */
#define RP_MAX_ENDPOINTS 1024     /* endpoints in one cluster */
#define RP_MAX_NODES 1024         /* node ids named by a listener */
#define RP_MAX_ROUTE_HEADERS 16   /* header matches on one route */
#define RP_MAX_WEIGHTED 16        /* weighted_clusters entries */
#define RP_MAX_REFS (RP_MAX_WEIGHTED + 1)
#define RP_HISTORY_REVS 10000   /* watch history retained, in revisions (default) */
#define RP_HISTORY_REVS_MIN 100 /* SET_HISTORY bounds (--history-revisions) */
#define RP_HISTORY_REVS_MAX 1000000
#define RP_HISTORY_AGE_MIN_MS 1000 /* --history-max-age: 1 s to 3650 days, or 0 (none) */
#define RP_HISTORY_AGE_MAX_MS 315360000000ULL
#define RP_MAX_WATCH_CHANGES 10000 /* changes returned by one watch answer */
#define RP_MAX_LIST_ITEMS 100000   /* items in one list answer */
#define RP_MAX_ERROR_MESSAGE 512   /* bytes of an error message, cut at a character */

#endif
