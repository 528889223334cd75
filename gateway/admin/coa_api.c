#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/clock.h"
#include "../../core/ident.h"
#include "../../core/jout.h"
#include "../../core/log.h"
#include "../coa/coa.h"
#include "coa_api.h"
#include "reply.h"

static json_t *delivery_json(const struct coa_delivery *d, bool *bad)
{
	json_t *o = json_object();

	jout_set(o, "event_id", jout_str(d->event_id), bad);
	jout_set(o, "epoch", json_integer((json_int_t)d->epoch), bad);
	jout_set(o, "sink", jout_str(d->sink), bad);
	jout_set(o, "mac", jout_str(d->mac), bad);
	jout_set(o, "session", jout_str(d->session), bad);
	jout_set(o, "from", jout_str(d->from), bad);
	jout_set(o, "to", jout_str(d->to), bad);
	jout_set(o, "attempts", json_integer(d->attempts), bad);
	jout_set(o, "outcome", jout_str(d->outcome), bad);
	jout_set(o, "detail", jout_str(d->detail), bad);
	jout_set(o, "at", jout_time(d->at_ms), bad);
	return o;
}

static void list(struct coa *coa, const struct route *r, struct http_response *res)
{
	enum coa_list_which w = strcmp(r->state, "failed") == 0 ? COA_LIST_FAILED
				: strcmp(r->state, "sent") == 0 ? COA_LIST_SENT
								: COA_LIST_ALL;
	struct coa_delivery *ds = calloc(COA_KEEP, sizeof(*ds));
	json_t *root = json_object(), *arr = json_array();
	bool bad = !ds;
	size_t n = ds ? coa_list(coa, w, ds, COA_KEEP) : 0;

	for (size_t i = 0; i < n && !bad; i++)
		if (json_array_append_new(arr, delivery_json(&ds[i], &bad)) != 0)
			bad = true;
	free(ds);
	jout_set(root, "deliveries", arr, &bad);
	reply_json(res, 200, root, bad);
}

static void test(struct coa *coa, const char *body, size_t len, struct http_response *res)
{
	json_error_t jerr;
	json_t *in = body && len ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
	json_t *mac = json_object_get(in, "mac"), *kind = json_object_get(in, "kind");
	const char *k = json_is_string(kind) ? json_string_value(kind) : "reauth";
	struct transition ev;
	char why[128];
	bool local;
	enum mdm_err e;

	memset(&ev, 0, sizeof(ev));
	if (!json_is_object(in) || !json_is_string(mac) ||
	    mac_parse(json_string_value(mac), strlen(json_string_value(mac)), ev.mac, &local, why,
		      sizeof(why)) != MDM_OK) {
		json_decref(in);
		return reply_error(res, 400, "the body must be {\"mac\": \"<a MAC address>\"}");
	}
	if ((kind && !json_is_string(kind)) ||
	    (strcmp(k, "reauth") != 0 && strcmp(k, "disconnect") != 0)) {
		json_decref(in);
		return reply_error(res, 400, "kind must be \"reauth\" or \"disconnect\"");
	}
	ev.kind = strcmp(k, "disconnect") == 0 ? TRANSITION_DISCONNECT : TRANSITION_REAUTH;
	json_decref(in);
	ev.at_ms = clock_wall_ms();
	snprintf(ev.id, sizeof(ev.id), "manual:%s@%lld", ev.mac, (long long)ev.at_ms);
	str_copy(ev.from, sizeof(ev.from), "unknown");
	str_copy(ev.to, sizeof(ev.to), "unknown");
	str_copy(ev.reason, sizeof(ev.reason), "manual test from the admin API");
	e = coa_submit(coa, &ev);
	if (e == MDM_ERR_BUSY)
		return reply_error(res, 503, "the CoA queue is full");
	if (e != MDM_OK)
		return reply_error(res, 503, err_str(e));
	log_info("coa: manual event %s submitted", ev.id);
	reply_json(res, 202, json_pack("{s:o}", "event_id", jout_str(ev.id)), false);
}

/* --- the handler table ----------------------------------------------------------------------- */

static void answer_now(void *ctx, const struct handler_request *rq, struct http_response *res)
{
	struct coa *coa = ctx;

	if (!coa)
		reply_error(res, 503, "no CoA sink is configured (coa.mnt, coa.webhook)");
	else if (rq->route->kind == ROUTE_COA_LIST)
		list(coa, rq->route, res);
	else
		test(coa, rq->body, rq->len, res);
}

static const struct handler_spec coa_specs[] = {
    {.kind = ROUTE_COA_LIST, .roles = ROLE_ADMIN, .answer = answer_now},
    {.kind = ROUTE_COA_TEST, .roles = ROLE_ADMIN, .answer = answer_now},
};

struct handler_group coa_api_routes(struct coa *coa)
{
	return (struct handler_group){coa_specs, sizeof(coa_specs) / sizeof(coa_specs[0]), coa,
				      reply_error};
}

void coa_api_metrics(struct coa *coa, struct prom *b)
{
	struct coa_stats *st;

	if (!coa || !(st = malloc(sizeof(*st))))
		return;
	coa_get_stats(coa, st);
	prom_head(b, "mdmgw_coa_attempts_total", "counter", "CoA attempts by sink and outcome.");
	for (size_t i = 0; i < st->nsinks; i++)
		for (int o = COA_OK; o <= COA_NO_SESSION; o++)
			prom_addf(b, "mdmgw_coa_attempts_total{sink=\"%s\",outcome=\"%s\"} %llu\n",
				  st->sink_names[i], coa_outcome_name((enum coa_outcome)o),
				  (unsigned long long)st->attempts[i][o]);
	prom_addf(b,
		  "# HELP mdmgw_coa_events_total CoA events by what became of them.\n"
		  "# TYPE mdmgw_coa_events_total counter\n"
		  "mdmgw_coa_events_total{result=\"submitted\"} %llu\n"
		  "mdmgw_coa_events_total{result=\"queue_full\"} %llu\n"
		  "mdmgw_coa_events_total{result=\"skipped\"} %llu\n"
		  "# HELP mdmgw_coa_deliveries_total CoA deliveries ended other than by an "
		  "attempt's answer.\n"
		  "# TYPE mdmgw_coa_deliveries_total counter\n"
		  "mdmgw_coa_deliveries_total{result=\"superseded\"} %llu\n"
		  "mdmgw_coa_deliveries_total{result=\"no_session\"} %llu\n"
		  "mdmgw_coa_deliveries_total{result=\"failed\"} %llu\n"
		  "# HELP mdmgw_coa_queued CoA events waiting.\n# TYPE mdmgw_coa_queued gauge\n"
		  "mdmgw_coa_queued %zu\n"
		  "# HELP mdmgw_coa_pending CoA deliveries not finished.\n"
		  "# TYPE mdmgw_coa_pending gauge\nmdmgw_coa_pending %zu\n",
		  (unsigned long long)st->submitted, (unsigned long long)st->queue_full,
		  (unsigned long long)st->skipped, (unsigned long long)st->superseded,
		  (unsigned long long)st->no_session, (unsigned long long)st->failed, st->queued,
		  st->jobs);
	free(st);
}
