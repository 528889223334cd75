/*
 * trans_api: the change guard's admin route (role admin, checked by the server):
 *   POST /api/v1/reconciler/release   emits the held CoA events: 200 {"released": n};
 *                                     409 {"error": "nothing held"} when none are held
 */
#ifndef MDM_TRANS_API_H
#define MDM_TRANS_API_H

#include "../server/handler.h"

struct trans;

/* trans_api_routes: the row above for the handler table (role admin; JSON errors; 503 when
 * the gateway has no transitions engine, t NULL). */
struct handler_group trans_api_routes(struct trans *t);

#endif
