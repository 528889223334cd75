/*
 * admin: the gateway's own API for operators (role admin), in JSON and Prometheus text:
 *   GET /metrics                                  counters of the server, cache and adapters
 *   DELETE /api/v1/cache/devices/{identifier}     forget one device on every cache tier
 *   GET /api/v1/adapters                          each adapter's health, breaker and counters
 *   POST /api/v1/adapters/{name}/test             test one adapter's connection (asynchronous)
 * {identifier} is a MAC in any form mac_parse accepts, or else a GUID.
 */
#ifndef MDM_ADMIN_H
#define MDM_ADMIN_H

#include <stddef.h>

#include "../../adapters/adapter.h"
#include "../../cache/cache.h"
#include "../ise/ise_api.h"
#include "../server/handler.h"
#include "../server/server.h"

struct acct;
struct coa;
struct hops;
struct lookup;
struct sessions;
struct trans;

/*
 * What these routes report on and act on; /metrics reads every part's counters. Filled by
 * whoever wires the gateway; read-only afterwards. Optional parts are NULL when off.
 */
struct admin_api {
	struct adapter *const *ads;
	size_t nads;
	struct lookup *lookup;
	struct cache *cache;
	struct hops *hops;
	const struct ise_stats *ise_stats;
	const struct server_stats *server_stats;
	struct coa *coa;	   /* optional */
	struct sessions *sessions; /* optional */
	struct acct *acct;	   /* optional */
	struct trans *trans;	   /* optional */
};

/* admin_api_routes: the rows above for the handler table (role admin; JSON errors). */
struct handler_group admin_api_routes(struct admin_api *a);

/*
 * admin_handle: answers ROUTE_METRICS, ROUTE_PURGE and ROUTE_ADAPTERS into res, at once.
 * GET /api/v1/adapters: {"adapters": [{"name", "type", "healthy", "breaker" ("closed", "open",
 * "probing"), "requests", "failures", "last_ok" (ISO 8601 or null), "last_error" ({"at",
 * "message"} or null)}]}. Anything else (ROUTE_ADAPTER_TEST included) is a 404.
 */
void admin_handle(struct admin_api *ctx, const struct route *r, struct http_response *res);

/*
 * admin_test_adapter: POST /api/v1/adapters/{name}/test. Runs adapter name's connection test
 * and calls done exactly once with the answer: 200 {"adapter", "ok": true, "message"}, 502 the
 * same with "ok": false, 404 {"error": "no adapter named X"}, 500 {"error"} when the test could
 * not start. done runs on the adapter's thread, or on this one before admin_test_adapter
 * returns (unknown name, an adapter that answers from memory). res lives for the call only:
 * done may move res->body out (buf_take), which leaves nothing for the caller to free.
 * Returns MDM_OK once tested, MDM_ERR_NOTFOUND for an unknown name, else why the test could
 * not start; done is called in every case.
 */
enum mdm_err admin_test_adapter(struct admin_api *ctx, const char *name, handler_done_cb done,
				void *arg);

#endif
