/*
 * recon_api: the reconciler's admin routes (role admin, checked by the server):
 *   POST /api/v1/reconciler/run   asks for a cycle now: 202 {"queued": true, "generation": N}
 *                                 (N: the generation current when asked; a cycle that is then
 *                                 skipped, e.g. not the leader, says why in the status)
 *   GET  /api/v1/reconciler       the status (recon_status_json)
 */
#ifndef MDM_RECON_API_H
#define MDM_RECON_API_H

#include <stdbool.h>

#include "../ise/ise_api.h"
#include "../recon/recon.h"
#include "../server/route.h"

/* recon_api_route: whether k is one of the routes above. */
bool recon_api_route(enum route_kind k);

/* recon_api_handle: answers r at once (never blocks). r NULL (no reconciler): 503. */
void recon_api_handle(struct recon *rc, const struct route *r, struct ise_response *res);

#endif
