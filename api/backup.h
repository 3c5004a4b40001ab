/* GET /v1/backup: a consistent copy of the state machine (backup.c). */
#ifndef RP_API_BACKUP_H
#define RP_API_BACKUP_H

#include "call.h"

/** The GET /v1/backup handler (admin; a linearizable read). */
void rp_route_backup(struct rp_call *c);

#endif
