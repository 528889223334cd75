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

#include "../server/handler.h"

#define SESSION_API_BODY_MAX 4096
#define SESSION_API_LIMIT_DEFAULT 100

struct sessions;

/* session_api_routes: the rows above for the handler table (role admin; JSON errors; 503 when
 * sessions are off, sessions NULL). */
struct handler_group session_api_routes(struct sessions *sessions);

#endif
