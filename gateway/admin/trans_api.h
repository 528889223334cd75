/*
 * trans_api: the change guard's admin route (role admin, checked by the server):
 *   POST /api/v1/reconciler/release   emits the held CoA events: 200 {"released": n};
 *                                     409 {"error": "nothing held"} when none are held
 */
#ifndef MDM_TRANS_API_H
#define MDM_TRANS_API_H

#include <stdbool.h>

#include "../ise/ise_api.h"
#include "../server/route.h"

/* trans_api_route: whether k is the route above. */
bool trans_api_route(enum route_kind k);

/* trans_api_handle: answers r into res now (503 when the gateway has no transitions engine). */
void trans_api_handle(struct ise_ctx *ctx, const struct route *r, struct ise_response *res);

#endif
