/*
 * session_api: the admin JSON API of network sessions (role admin), next to what RADIUS
 * accounting reports, for NAS that do not copy accounting to the gateway:
 *   PUT    /api/v1/sessions/{mac}   body {"nas_ip", "nas_id", "acct_session_id", "user_name",
 *                                   "nas_port"}: puts (upserts) one session of the MAC
 *   DELETE /api/v1/sessions/{mac}   drops every session of the MAC (404 when it has none)
 *   GET    /api/v1/sessions/{mac}   {"count", "sessions"} of the MAC
 *   GET    /api/v1/sessions?limit=N {"count", "sessions": the first N (default 100)}
 * The MAC may be written in any usual form; answers show it as 12 upper-case hex.
 */
#ifndef MDM_SESSION_API_H
#define MDM_SESSION_API_H

#include <stdbool.h>
#include <stddef.h>

#include "../ise/ise_api.h"
#include "../server/route.h"

#define SESSION_API_BODY_MAX 4096
#define SESSION_API_LIMIT_DEFAULT 100

/* session_api_route: whether k is one of the routes above. */
bool session_api_route(enum route_kind k);

/* session_api_handle: answers route r (synchronously) into res. */
void session_api_handle(struct ise_ctx *ctx, const struct route *r, const char *body, size_t len,
			const char *user, const char *addr, struct ise_response *res);

#endif
