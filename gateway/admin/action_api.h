/*
 * action_api: the admin JSON API of actions and blocks (contract: docs/actions-api.md):
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

#include "../server/handler.h"

#define ACTION_API_BODY_MAX 4096 /* JSON bodies of these routes */

struct actions;
struct block;
struct journal;
struct lookup;

/* What these routes act on. Filled by whoever wires the gateway; read-only afterwards. */
struct action_api {
	struct actions *actions; /* NULL: actions answer 503 */
	struct journal *journal; /* NULL: no action is known */
	struct block *blocks;	 /* NULL: blocking answers 503 */
	struct lookup *lookup;	 /* a block change purges the device from it (NULL: nothing) */
	/* called after a block (true) or unblock (false) is saved, so transitions see it */
	void (*on_block)(void *arg, const char *device, bool blocked);
	void *on_block_arg;
};

/*
 * action_api_routes: the rows above for the handler table. Reading actions needs the admin or
 * the action role, settling one and blocking the admin role; an action's own role is checked
 * by the pipeline (it depends on the action). Errors are JSON (admin/reply.h).
 */
struct handler_group action_api_routes(struct action_api *a);

#endif
