/*
 * ise_api: the ISE MDM API answers (mdminfo, devices, batchdevices, action), rendered as XML
 * in the version the path belongs to. Its routes are rows of the server's handler table
 * (ise_api_routes); it takes a routed request and fills a response, so tests drive it directly.
 * The verdict comes from verdict/ (lookup, merge, blocks) and recon/'s snapshot; this module
 * only renders it. Threading: every function may be called from many threads at once.
 */
#ifndef MDM_ISE_API_H
#define MDM_ISE_API_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "../../core/buf.h"
#include "../../core/role.h"
#include "../recon/snapshot.h"
#include "../server/handler.h"
#include "../server/route.h"
#include "../verdict/lookup.h"

struct actions;
struct block;
struct config_action_roles;

struct config_api {
	unsigned query_max_size;     /* 1..5000; default 5000 */
	char redirect_url[512];	     /* default "" */
	char vendor[64];	     /* default "mdmgw" */
	char product_name[64];	     /* default "mdmgw MDM compliance gateway" */
	char product_version[32];    /* default the build's version string */
	int64_t lookup_timeout_ms;   /* deadline for a device lookup; default 150ms, 10ms..60s */
	bool compliant_requires_all; /* true: compliant only if every source that found it says so
				      * (key "compliance_rule": "all" | "any"); default all */
	bool partial_is_unavailable; /* key "partial_answer": "answer" (default) | "unavailable" */
	/* hops (gateway in front of gateway): see gateway/server/hops.h */
	char gateway_id[64]; /* [A-Za-z0-9._:-], 1..63; default "<hostname>:<listen.port>" */
	unsigned max_hops; /* a request that passed this many gateways is refused; 1..16, def. 4 */
};

struct ise_stats {
	atomic_ulong answer_hits; /* single-device answers sent as rendered before */
	atomic_ulong requests;
	atomic_ulong bad_requests;
	atomic_ulong unavailable;
	atomic_ulong actions;
	atomic_ulong local_macs; /* queries for locally administered (randomised) MACs */
};

/* What the ISE API answers from. Filled by whoever wires the gateway; read-only afterwards. */
struct ise_api {
	const struct config_api *api;
	const char *instance; /* the path prefix ("" for none), for mdminfo's api_path */
	const struct config_action_roles *action_roles; /* who may send each action */
	struct lookup *lookup;
	/*
	 * Rendered single-device answers (NULL: none), part of the in-process tier: an entry is
	 * stored only when every source's part was fresh, under the lookup generation read before
	 * the lookup (so any write since makes it unreachable), and lives no longer than the
	 * earliest fresh_until of its parts (and l1_ttl, which the cache's max_hold_ms enforces).
	 */
	struct cache *answers;
	struct snapstore *snaps; /* generations for bulk answers and indexed lookups (NULL: none) */
	struct actions *actions; /* the action pipeline (NULL: every action is refused) */
	struct block *blocks;	 /* devices blocked by an administrator (NULL: none) */
	struct ise_stats stats;
};

/*
 * ise_api_routes: the ISE API's rows of the handler table: mdminfo, devices and batchdevices
 * (role query), action (the roles configured for its kind), sendmessage, and the routes the
 * router refused or did not know (any account; XML errors). Every row but the last three is
 * hop-checked. Errors are written with ise_error.
 */
struct handler_group ise_api_routes(struct ise_api *ise);

/*
 * ise_start: answers rq (route kind MDMINFO, DEVICES, BATCH, ACTION, SENDMESSAGE, BAD or
 * NOT_FOUND) without waiting for a vendor, as a handler does (server/http.h): true: res holds
 * the answer; false: done(arg, answer) comes exactly once, possibly before this returns.
 */
bool ise_start(struct ise_api *ise, const struct handler_request *rq, struct http_response *res,
	       handler_done_cb done, void *arg);

/* ise_handle: ise_start, waiting for the answer (tests and tools; never on a server thread). */
void ise_handle(struct ise_api *ise, const struct handler_request *rq, struct http_response *res);

/* ise_error: an XML error document with status and message (the API's error form). */
void ise_error(struct http_response *res, int status, const char *message);

#endif
