#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../../core/clock.h"
#include "../../core/jout.h"
#include "../../core/log.h"
#include "../../core/prom.h"
#include "../coa/acct.h"
#include "../recon/snapshot.h"
#include "../recon/trans.h"
#include "../server/hops.h"
#include "admin.h"
#include "coa_api.h"
#include "reply.h"

#define TEXT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define ADAPTER_TEST_WAIT_MS 30000 /* an adapter's own test ends by 10 s */

static void counter(struct prom *b, const char *name, const char *help, const atomic_ulong *v)
{
	prom_value(b, name, "counter", help, atomic_load(v));
}

static void cache_metrics(struct prom *b, struct cache *c)
{
	struct cache_stats s;

	memset(&s, 0, sizeof(s));
	cache_stats(c, &s);
	prom_value(b, "mdmgw_cache_l1_hits_total", "counter", "In-process cache hits (fresh).",
		   s.l1_hits);
	prom_value(b, "mdmgw_cache_l1_stale_hits_total", "counter", "In-process cache stale hits.",
		   s.l1_stale_hits);
	prom_value(b, "mdmgw_cache_l1_misses_total", "counter", "In-process cache misses.",
		   s.l1_misses);
	prom_value(b, "mdmgw_cache_l1_evictions_total", "counter", "In-process entries evicted.",
		   s.l1_evictions);
	prom_value(b, "mdmgw_cache_l2_hits_total", "counter", "memcached hits (fresh).", s.l2_hits);
	prom_value(b, "mdmgw_cache_l2_stale_hits_total", "counter", "memcached stale hits.",
		   s.l2_stale_hits);
	prom_value(b, "mdmgw_cache_l2_misses_total", "counter", "memcached misses.", s.l2_misses);
	prom_value(b, "mdmgw_cache_l2_errors_total", "counter", "memcached operations that failed.",
		   s.l2_errors);
	prom_value(b, "mdmgw_cache_bad_values_total", "counter",
		   "Values with a bad HMAC tag or that did not decode (read as misses).",
		   s.l2_bad_values);
	prom_value(b, "mdmgw_cache_l2_operations_total", "counter", "Operations sent to memcached.",
		   s.l2_ops);
	prom_value(b, "mdmgw_cache_l2_latency_microseconds_total", "counter",
		   "Time spent in memcached operations.", s.l2_latency_us);
	prom_value(b, "mdmgw_cache_lock_busy_total", "counter",
		   "Refresh locks found held by another request or instance.", s.lock_busy);
	prom_value(b, "mdmgw_cache_breaker_opens_total", "counter",
		   "Times every memcached server failed and memcached was skipped.",
		   s.breaker_opens);
	prom_value(b, "mdmgw_cache_breaker_open", "gauge", "1 while memcached is being skipped.",
		   (unsigned long)s.breaker_open);
}

static void render_metrics(struct admin_api *ctx, struct prom *b)
{
	const struct lookup_stats *ls = lookup_stats(ctx->lookup);

	const struct ise_stats *is = ctx->ise_stats;

	counter(b, "mdmgw_requests_total", "ISE API requests received.", &is->requests);
	counter(b, "mdmgw_answer_cache_hits_total",
		"Single-device answers sent as rendered before (in-process tier).",
		&is->answer_hits);
	counter(b, "mdmgw_bad_requests_total", "ISE API requests refused as malformed.",
		&is->bad_requests);
	counter(b, "mdmgw_unavailable_total", "Answers of 503: no source could answer.",
		&is->unavailable);
	counter(b, "mdmgw_actions_total", "Action requests received.", &is->actions);
	counter(b, "mdmgw_local_mac_queries_total",
		"Queries for locally administered (randomised) MACs.", &is->local_macs);
	counter(b, "mdmgw_header_deadline_cuts_total",
		"Connections cut for not sending headers in time.", &ctx->server_stats->cut_header);
	counter(b, "mdmgw_body_deadline_cuts_total",
		"Connections cut for not sending the body in time.", &ctx->server_stats->cut_body);
	counter(b, "mdmgw_lookup_fresh_hits_total",
		"(identifier, adapter) answers served fresh from the cache.", &ls->fresh_hits);
	counter(b, "mdmgw_lookup_stale_hits_total",
		"(identifier, adapter) answers served stale while refreshing.", &ls->stale_hits);
	counter(b, "mdmgw_lookup_misses_total", "(identifier, adapter) answers not in the cache.",
		&ls->misses);
	counter(b, "mdmgw_lookup_refreshes_total", "Background refreshes of stale answers.",
		&ls->refreshes);
	counter(b, "mdmgw_lookup_refresh_dropped_total",
		"Stale answers not refreshed because the queue was full.", &ls->refresh_dropped);
	counter(b, "mdmgw_lookup_lock_waits_total",
		"Misses that waited for another request or instance filling them.",
		&ls->lock_waits);
	counter(b, "mdmgw_lookup_partial_total",
		"Answers given while another applicable adapter failed.", &ls->partial);
	counter(b, "mdmgw_lookup_bad_entries_total", "Cache values that did not decode.",
		&ls->bad_entries);
	counter(b, "mdmgw_lookup_guid_routed_total",
		"(GUID, adapter) pairs not asked because another adapter issued the GUID.",
		&ls->guid_routed);
	prom_value(
	    b, "mdmgw_hops_refused_total", "counter",
	    "ISE API requests refused with 508: a loop through this gateway, or too many hops.",
	    (unsigned long)hops_refused(ctx->hops));
	prom_head(b, "mdmgw_adapter_lookups_total", "counter",
		  "Identifiers asked of each adapter.");
	for (size_t j = 0; j < ctx->nads && j < LOOKUP_MAX_ADAPTERS; j++)
		prom_addf(b, "mdmgw_adapter_lookups_total{adapter=\"%s\"} %lu\n", ctx->ads[j]->name,
			  atomic_load(&ls->adapter_lookups[j]));
	cache_metrics(b, ctx->cache);
	coa_api_metrics(ctx->coa, b); /* nothing without a CoA sink */
	if (ctx->sessions)
		sessions_metrics(ctx->sessions, b);
	if (ctx->acct)
		acct_metrics(ctx->acct, b);
	/* The two structures that grow with the fleet, for the memory budget (~1 KiB a device). */
	prom_value(b, "mdmgw_snapshot_bytes", "gauge",
		   "Heap held by the device snapshot (every generation still readable).",
		   (unsigned long)snapshot_mem_bytes());
	if (ctx->trans)
		prom_value(b, "mdmgw_trans_bytes", "gauge",
			   "Heap held by the last known device states (transitions engine).",
			   (unsigned long)trans_memory(ctx->trans));
}

/* The identifier of a purge: a MAC in any form, else a GUID. */
static enum mdm_err purge_ident(const char *v, struct ident *id, char *why, size_t whysz)
{
	if (ident_parse(IDENT_MAC, v, strlen(v), id, NULL, 0) == MDM_OK)
		return MDM_OK;
	return ident_parse(IDENT_GUID, v, strlen(v), id, why, whysz);
}

static void handle_purge(struct admin_api *ctx, const struct route *r, struct http_response *res)
{
	struct ident id;
	char why[192];
	size_t removed = 0;
	enum mdm_err e;
	bool bad = false;
	json_t *o;

	if (purge_ident(r->value, &id, why, sizeof(why)) != MDM_OK)
		return reply_error(res, 400, why);
	e = lookup_purge(ctx->lookup, &id, &removed);
	if (e)
		return reply_error(res, 500, err_str(e));
	log_info("admin: purged %s %s from the cache (%zu entries)", ident_kind_name(id.kind),
		 id.value, removed);
	o = json_object();
	jout_set(o, "identifier", jout_str(id.value), &bad);
	jout_set(o, "kind", json_string(ident_kind_name(id.kind)), &bad);
	jout_set(o, "removed", json_integer((json_int_t)removed), &bad);
	reply_json(res, 200, o, bad);
}

/* --- adapters ------------------------------------------------------------------------------- */

static json_t *adapter_json(struct adapter *a, bool *bad)
{
	struct adapter_health h;
	json_t *o = json_object(), *err = json_null();

	adapter_health(a, &h);
	if (h.last_error_ms > 0) {
		err = json_object();
		jout_set(err, "at", jout_time(h.last_error_ms), bad);
		jout_set(err, "message", jout_str(h.last_error), bad);
	}
	jout_set(o, "name", jout_str(a->name), bad);
	jout_set(o, "type", jout_str(a->ops->type), bad);
	jout_set(o, "healthy", json_boolean(h.healthy), bad);
	jout_set(o, "breaker", json_string(adapter_breaker_name(h.breaker)), bad);
	jout_set(o, "requests", json_integer((json_int_t)h.requests), bad);
	jout_set(o, "failures", json_integer((json_int_t)h.failures), bad);
	jout_set(o, "last_ok", jout_time(h.last_ok_ms), bad);
	jout_set(o, "last_error", err, bad);
	return o;
}

static void handle_adapters(struct admin_api *ctx, struct http_response *res)
{
	json_t *list = json_array(), *root = json_object();
	bool bad = !list;

	for (size_t i = 0; i < ctx->nads; i++)
		if (json_array_append_new(list, adapter_json(ctx->ads[i], &bad)) != 0)
			bad = true;
	jout_set(root, "adapters", list, &bad);
	reply_json(res, 200, root, bad);
}

struct admin_test {
	handler_done_cb done;
	void *arg;
	char name[64];
};

static void test_reply(struct admin_test *at, struct http_response *res)
{
	at->done(at->arg, res);
	http_response_clear(res);
}

static void on_test(void *arg, struct adapter_test *t)
{
	struct admin_test *at = arg;
	struct http_response res;
	json_t *o = json_object(), *msg = jout_str(t->message); /* as UTF-8, for the log too */
	bool bad = false;

	http_response_init(&res);
	log_info("admin: adapter %s test: %s: %s", at->name, t->ok ? "ok" : "failed",
		 msg ? json_string_value(msg) : "(out of memory)");
	jout_set(o, "adapter", jout_str(at->name), &bad);
	jout_set(o, "ok", json_boolean(t->ok), &bad);
	jout_set(o, "message", msg, &bad);
	reply_json(&res, t->ok ? 200 : 502, o, bad);
	test_reply(at, &res);
	free(at);
}

static struct adapter *find_adapter(struct admin_api *ctx, const char *name)
{
	for (size_t i = 0; i < ctx->nads; i++)
		if (strcmp(ctx->ads[i]->name, name) == 0)
			return ctx->ads[i];
	return NULL;
}

enum mdm_err admin_test_adapter(struct admin_api *ctx, const char *name, handler_done_cb done,
				void *arg)
{
	struct admin_test stack = {.done = done, .arg = arg}, *at;
	struct adapter *a = find_adapter(ctx, name);
	struct http_response res;
	char msg[160];
	enum mdm_err e;

	http_response_init(&res);
	if (!a) {
		snprintf(msg, sizeof(msg), "no adapter named %.63s", name);
		reply_error(&res, 404, msg);
		e = MDM_ERR_NOTFOUND;
		goto answer;
	}
	at = malloc(sizeof(*at));
	if (!at) {
		reply_error(&res, 500, "out of memory");
		e = MDM_ERR_NOMEM;
		goto answer;
	}
	*at = stack;
	str_copy(at->name, sizeof(at->name), a->name);
	e = adapter_test_connection(a, on_test, at);
	if (e == MDM_OK) {
		http_response_clear(&res); /* on_test answers with its own and frees at */
		return MDM_OK;
	}
	free(at);
	snprintf(msg, sizeof(msg), "the test could not start: %s", err_str(e));
	reply_error(&res, 500, msg);
answer:
	test_reply(&stack, &res);
	return e;
}

void admin_handle(struct admin_api *ctx, const struct route *r, struct http_response *res)
{
	switch (r->kind) {
	case ROUTE_PURGE:
		return handle_purge(ctx, r, res);
	case ROUTE_ADAPTERS:
		return handle_adapters(ctx, res);
	case ROUTE_METRICS: {
		struct prom p = prom_init(&res->body);

		buf_reset(&res->body);
		render_metrics(ctx, &p);
		if (p.e)
			return reply_error(res, 500, "the metrics could not be rendered");
		res->status = 200;
		res->content_type = TEXT_TYPE;
		return;
	}
	default:
		return reply_error(res, 404, "no such resource");
	}
}

/* --- the handler table ----------------------------------------------------------------------- */

/* Answered through done even when the test ends at once (an unknown name, a refusal). */
static bool test_adapter(void *ctx, const struct handler_request *rq, struct http_response *res,
			 handler_done_cb done, void *arg)
{
	(void)res;
	admin_test_adapter(ctx, rq->route->value, done, arg);
	return false;
}

static int64_t test_wait(void *ctx, const struct route *r)
{
	(void)ctx;
	(void)r;
	return ADAPTER_TEST_WAIT_MS;
}

static void answer_now(void *ctx, const struct handler_request *rq, struct http_response *res)
{
	admin_handle(ctx, rq->route, res);
}

static const struct handler_spec admin_specs[] = {
    {.kind = ROUTE_METRICS, .roles = ROLE_ADMIN, .answer = answer_now},
    {.kind = ROUTE_PURGE, .roles = ROLE_ADMIN, .answer = answer_now},
    {.kind = ROUTE_ADAPTERS, .roles = ROLE_ADMIN, .answer = answer_now},
    {.kind = ROUTE_ADAPTER_TEST, .roles = ROLE_ADMIN, .handle = test_adapter, .wait_ms = test_wait},
};

struct handler_group admin_api_routes(struct admin_api *a)
{
	return (struct handler_group){admin_specs, sizeof(admin_specs) / sizeof(admin_specs[0]), a,
				      reply_error};
}
