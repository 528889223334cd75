/*
 * recon_api: the reconciler's admin routes (role admin, checked by the server):
 *   POST /api/v1/reconciler/run   asks for a cycle now: 202 {"queued": true, "generation": N}
 *                                 (N: the generation current when asked; a cycle that is then
 *                                 skipped, e.g. not the leader, says why in the status)
 *   GET  /api/v1/reconciler       the status (recon_status_json)
 */
#ifndef MDM_RECON_API_H
#define MDM_RECON_API_H

#include "../recon/recon.h"
#include "../server/handler.h"

/* recon_api_routes: the rows above for the handler table (role admin; JSON errors; 503 when
 * the reconciler is not running, rc NULL). */
struct handler_group recon_api_routes(struct recon *rc);

#endif
