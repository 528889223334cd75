/*
 * action_api: the admin JSON API of actions and blocks (contract: docs and the shared brief):
 *   POST /api/v1/devices/{id}/actions          an action through the pipeline (asynchronous)
 *   GET  /api/v1/actions/{action_id}           one action
 *   GET  /api/v1/actions?device=&state=        actions, oldest first
 *   POST /api/v1/actions/{action_id}/resolve   an operator settles an `unknown` action
 *   PUT / DELETE /api/v1/devices/{id}/block    block / unblock a device for the NAC
 *   GET  /api/v1/blocks                        the blocked devices
 * Roles are checked by the server (the action's own role by the pipeline).
 */
#ifndef MDM_ACTION_API_H
#define MDM_ACTION_API_H

#include <stdbool.h>
#include <stddef.h>

#include "../ise/ise_api.h"
#include "../server/route.h"

#define ACTION_API_BODY_MAX 4096 /* JSON bodies of these routes */

/* Who is asking: the account, its roles, its address. */
struct action_api_caller {
	const char *user;
	unsigned roles;
	const char *addr;
};

/* action_api_route: whether r is one of the routes above. */
bool action_api_route(enum route_kind k);

/*
 * action_api_start: answers route r. true: res holds the answer now (done is never called).
 * false: done(arg, answer) is called exactly once, possibly before this returns.
 * idem_key is the Idempotency-Key header (NULL when absent).
 */
bool action_api_start(struct ise_ctx *ctx, const struct route *r, const char *body, size_t len,
		      const struct action_api_caller *who, const char *idem_key,
		      struct ise_response *res, ise_done_cb done, void *arg);

#endif
