#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/clock.h"
#include "../core/log.h"
#include "../core/xml.h"
#include "admin.h"
#include "ise_api.h"
#include "reqxml.h"

#define XML_TYPE "application/xml; charset=utf-8"
#define NO_ACTION_MDM "no MDM that accepts actions manages this device"

void ise_response_init(struct ise_response *res)
{
	memset(res, 0, sizeof(*res));
	res->status = 500;
	res->content_type = XML_TYPE;
	buf_init(&res->body, ISE_RESPONSE_MAX);
	buf_reserve(&res->body, 4096); /* one device's answer fits: no regrowth on the hot path */
}

void ise_response_clear(struct ise_response *res)
{
	buf_free(&res->body);
}

static void finish(struct ise_response *res, struct xml_writer *w, int status)
{
	if (xml_end(w) != MDM_OK) {
		/* Only a response past ISE_RESPONSE_MAX or no memory gets here. */
		buf_reset(&res->body);
		res->status = 500;
		res->content_type = "text/plain; charset=utf-8";
		buf_addstr(&res->body, "response could not be built\n");
		return;
	}
	res->status = status;
	res->content_type = XML_TYPE;
}

void ise_error(struct ise_response *res, int status, const char *message)
{
	struct xml_writer w;

	buf_reset(&res->body);
	xml_begin(&w, &res->body);
	xml_open(&w, "ise_api");
	xml_text(&w, "name", "error");
	xml_int(&w, "status", status);
	xml_text(&w, "message", message);
	xml_close(&w, "ise_api");
	finish(res, &w, status);
}

static void api_path(const struct config *cfg, int version, char *out, size_t sz)
{
	if (cfg->listen.instance[0])
		snprintf(out, sz, "/%s/ciscoise/mdmapi/v%d", cfg->listen.instance, version);
	else
		snprintf(out, sz, "/ciscoise/mdmapi/v%d", version);
}

static void handle_mdminfo(struct ise_ctx *ctx, const struct route *r, struct ise_response *res)
{
	const struct config_api *api = &ctx->cfg->api;
	struct xml_writer w;
	char path[128];

	api_path(ctx->cfg, r->api_version, path, sizeof(path));
	xml_begin(&w, &res->body);
	xml_open(&w, "ise_api");
	xml_text(&w, "name", "mdminfo");
	xml_int(&w, "api_version", r->api_version);
	xml_text(&w, "api_path", path);
	xml_text(&w, "redirect_url", api->redirect_url);
	xml_int(&w, "query_max_size", api->query_max_size);
	xml_bool(&w, "messaging_support", false);
	xml_text(&w, "vendor", api->vendor);
	xml_text(&w, "product_name", api->product_name);
	xml_text(&w, "product_version", api->product_version);
	xml_close(&w, "ise_api");
	finish(res, &w, 200);
}

/* --- device rendering ---------------------------------------------------------------------- */

static void text_if(struct xml_writer *w, const char *tag, const char *v)
{
	if (*v)
		xml_text(w, tag, v);
}

static void tri_if(struct xml_writer *w, const char *tag, enum tri v)
{
	if (v != TRI_UNSET)
		xml_bool(w, tag, v == TRI_TRUE);
}

static void render_attributes(struct xml_writer *w, const struct device *d, int version)
{
	xml_open(w, "attributes");
	tri_if(w, "register_status", d->registered);
	if (d->compliant != TRI_UNSET) {
		xml_open(w, "compliance");
		xml_bool(w, "status", d->compliant == TRI_TRUE);
		text_if(w, "failure_reason", d->failure_reason);
		text_if(w, "remediation", d->remediation);
		xml_close(w, "compliance");
	}
	tri_if(w, "disk_encryption_on", d->disk_encrypted);
	tri_if(w, "pin_lock_on", d->pin_lock);
	tri_if(w, "jail_broken", d->jail_broken);
	text_if(w, "manufacturer", d->manufacturer);
	text_if(w, "model", d->model);
	text_if(w, "imei", d->imei);
	text_if(w, "meid", d->meid);
	text_if(w, "udid", d->udid);
	text_if(w, "serial_number", d->serial);
	text_if(w, "os_version", d->os_version);
	text_if(w, "phone_number", d->phone_number);
	if (version >= 3) {
		char macs[DEVICE_MACS_MAX * (MAC_STR_LEN + 1)] = "";
		size_t len = 0;

		if (d->last_checkin_ms > 0)
			xml_int(w, "lastCheckinTimeStamp", d->last_checkin_ms);
		text_if(w, "guid", d->guid);
		for (unsigned i = 0; i < d->nmacs; i++)
			len += (size_t)snprintf(macs + len, sizeof(macs) - len, "%s%s",
						i ? "," : "", d->macs[i]);
		text_if(w, "macaddresses", macs);
	}
	xml_close(w, "attributes");
}

/* How a listed device is named in <device>: its tag and value (NULL tag: none fits). */
struct device_key {
	const char *tag;
	const char *value;
};

static struct device_key bulk_key(const struct device *d, int version, bool by_guid)
{
	struct device_key k = {NULL, NULL};

	if (by_guid || (!d->nmacs && version >= 3)) {
		if (d->guid[0]) {
			k.tag = "guid";
			k.value = d->guid;
		}
	} else if (d->nmacs) {
		k.tag = "macaddress";
		k.value = d->macs[0];
	}
	return k;
}

static void render_device(struct xml_writer *w, const struct device *d, int version,
			  struct device_key k)
{
	xml_open(w, "device");
	if (k.tag)
		xml_text(w, k.tag, k.value);
	render_attributes(w, d, version);
	xml_close(w, "device");
}

static void open_attributes_doc(struct xml_writer *w, struct buf *out, int version,
				uint32_t paging_info)
{
	xml_begin(w, out);
	xml_open(w, "ise_api");
	xml_text(w, "name", "attributes");
	xml_int(w, "api_version", version);
	xml_int(w, "paging_info", paging_info);
	if (version >= 3)
		xml_int(w, "server_busy_wait_seconds", 0);
}

/* --- bulk answers from the snapshot -------------------------------------------------------- */

static void handle_bulk(struct ise_ctx *ctx, const struct route *r, struct ise_response *res)
{
	const struct snapshot *s = ctx->snap;
	enum snapshot_list which = SNAP_ALL;
	struct xml_writer w;
	size_t n, end, emitted = 0;
	uint32_t next;

	if (!s || !s->complete) {
		atomic_fetch_add(&ctx->stats.unavailable, 1);
		log_warn("bulk query unavailable: %s", s ? s->why : "no device snapshot yet");
		return ise_error(res, 503,
				 "device state is not available from every MDM right now");
	}
	if (r->crit == CRIT_COMPLIANCE)
		which = r->compliant_value ? SNAP_COMPLIANT : SNAP_NONCOMPLIANT;
	n = s->nlist[which];
	if (r->paging > n)
		return ise_error(res, 400,
				 "paging is not a paging_info value this server returned");
	end = r->paging + ctx->cfg->api.query_max_size;
	if (end > n)
		end = n;
	next = end < n ? (uint32_t)end : 0;
	open_attributes_doc(&w, &res->body, r->api_version, next);
	if (r->paging == end) {
		xml_empty(&w, "deviceList");
	} else {
		xml_open(&w, "deviceList");
		for (size_t i = r->paging; i < end; i++) {
			const struct device *d = &s->devs[s->list[which][i]];
			struct device_key k = bulk_key(d, r->api_version, r->key_by_guid);

			/* A device with no identifier this answer can carry cannot be named. */
			if (!k.tag)
				continue;
			render_device(&w, d, r->api_version, k);
			emitted++;
		}
		xml_close(&w, "deviceList");
	}
	xml_close(&w, "ise_api");
	finish(res, &w, 200);
	log_debug("bulk %s page at %u: %zu devices, next %u", criterion_name(r->crit), r->paging,
		  emitted, next);
}

/* --- answers by identifier ----------------------------------------------------------------- */

struct asked {
	struct ident id;
	char as_sent[IDENT_VALUE_MAX + 1]; /* the client's own spelling of the key */
};

/* The key the answer names a found device by: the client's own form of what it asked by. */
static struct device_key single_key(const struct asked *a, const struct device *d, int version)
{
	struct device_key k = {NULL, NULL};

	if (a->id.kind == IDENT_MAC) {
		k.tag = "macaddress";
		k.value = a->as_sent;
	} else if (a->id.kind == IDENT_GUID) {
		k.tag = "guid";
		k.value = a->as_sent;
	} else {
		k = bulk_key(d, version, false);
	}
	return k;
}

static void render_answers(struct ise_ctx *ctx, const struct route *r, const struct asked *asked,
			   const struct merge_result *mr, size_t n, struct ise_response *res)
{
	struct xml_writer w;
	size_t found = 0;

	for (size_t i = 0; i < n; i++) {
		if (mr[i].verdict == MERGE_UNAVAILABLE) {
			atomic_fetch_add(&ctx->stats.unavailable, 1);
			return ise_error(res, 503,
					 "no MDM that could know this device answered; try later");
		}
		if (mr[i].verdict == MERGE_FOUND)
			found += mr[i].ndevs;
	}
	open_attributes_doc(&w, &res->body, r->api_version, 0);
	if (!found) {
		xml_empty(&w, "deviceList");
	} else {
		xml_open(&w, "deviceList");
		for (size_t i = 0; i < n; i++)
			for (size_t j = 0; mr[i].verdict == MERGE_FOUND && j < mr[i].ndevs; j++)
				render_device(
				    &w, &mr[i].devs[j], r->api_version,
				    single_key(&asked[i], &mr[i].devs[j], r->api_version));
		xml_close(&w, "deviceList");
	}
	xml_close(&w, "ise_api");
	finish(res, &w, 200);
}

static bool parse_asked(struct ise_ctx *ctx, enum ident_kind kind, const char *value,
			struct asked *a, struct ise_response *res)
{
	char why[192], msg[256];

	if (ident_parse(kind, value, strlen(value), &a->id, why, sizeof(why)) != MDM_OK) {
		atomic_fetch_add(&ctx->stats.bad_requests, 1);
		snprintf(msg, sizeof(msg), "%s: %s", ident_kind_name(kind), why);
		ise_error(res, 400, msg);
		return false;
	}
	str_copy(a->as_sent, sizeof(a->as_sent), value);
	/* Trim what ident_parse trimmed, so the echo is the value itself. */
	if (kind == IDENT_MAC) {
		char *s = a->as_sent, *e;

		while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
			s++;
		memmove(a->as_sent, s, strlen(s) + 1);
		e = a->as_sent + strlen(a->as_sent);
		while (e > a->as_sent &&
		       (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
			*--e = '\0';
		if (a->id.mac_local) {
			atomic_fetch_add(&ctx->stats.local_macs, 1);
			log_info("query for locally administered (randomised) MAC %s", a->id.value);
		}
	}
	return true;
}

static void answer_lookup(struct ise_ctx *ctx, const struct route *r, struct asked *asked, size_t n,
			  struct ise_response *res)
{
	struct merge_result *mr = calloc(n ? n : 1, sizeof(*mr));
	struct ident *ids = calloc(n ? n : 1, sizeof(*ids));
	enum mdm_err e = MDM_ERR_NOMEM;

	if (mr && ids) {
		for (size_t i = 0; i < n; i++)
			ids[i] = asked[i].id;
		e = lookup_many(ctx->lookup, ids, n, mr);
	}
	if (e == MDM_OK)
		render_answers(ctx, r, asked, mr, n, res);
	else if (e == MDM_ERR_TOOBIG)
		ise_error(res, 400, "too many values in one request");
	else
		ise_error(res, 500, err_str(e));
	for (size_t i = 0; mr && i < n; i++)
		merge_result_clear(&mr[i]);
	free(mr);
	free(ids);
}

/* The key of a rendered answer: generation, version, criterion and the value as sent. */
static bool answer_key(const struct route *r, unsigned long gen, char *out, size_t outsz)
{
	int n = snprintf(out, outsz, "answer:%lu:%d:%s:%s", gen, r->api_version,
			 criterion_name(r->crit), r->value);

	return n > 0 && (size_t)n < outsz && cache_key_valid(out);
}

static bool answer_from_cache(struct ise_ctx *ctx, const char *key, struct ise_response *res)
{
	struct cache_entry ce;
	bool hit = false;

	if (cache_get(ctx->answers, key, &ce) == MDM_OK && ce.state == CACHE_FRESH) {
		buf_reset(&res->body);
		hit = buf_add(&res->body, ce.val, ce.len) == MDM_OK;
		res->status = 200;
		res->content_type = XML_TYPE;
	}
	cache_entry_clear(&ce);
	if (hit)
		atomic_fetch_add(&ctx->stats.answer_hits, 1);
	return hit;
}

static void answer_to_cache(struct ise_ctx *ctx, const char *key, const struct merge_result *mr,
			    const struct ise_response *res)
{
	struct cache_times t;

	if (res->status != 200 || mr->fresh_until <= 0 || mr->partial)
		return;
	t.fetched_at = clock_wall_ms();
	t.fresh_until = t.stale_until = mr->fresh_until;
	if (t.fresh_until > t.fetched_at)
		cache_put(ctx->answers, key, res->body.mem, res->body.len, &t);
}

static void handle_devices(struct ise_ctx *ctx, const struct route *r, struct ise_response *res)
{
	struct asked a;
	struct merge_result mr;
	enum ident_kind kind;
	char key[CACHE_KEY_MAX + 1];
	bool keyed = false;
	enum mdm_err e;

	if (r->crit == CRIT_NONE || r->crit == CRIT_COMPLIANCE)
		return handle_bulk(ctx, r, res);
	if (!criterion_ident_kind(r->crit, &kind))
		return ise_error(res, 400, "unsupported querycriteria");
	/* The generation is read before the lookup: a write during it makes this key stale. */
	if (ctx->answers) {
		keyed = answer_key(r, lookup_generation(ctx->lookup), key, sizeof(key));
		if (keyed && answer_from_cache(ctx, key, res))
			return;
	}
	if (!parse_asked(ctx, kind, r->value, &a, res))
		return;
	e = lookup_many(ctx->lookup, &a.id, 1, &mr);
	if (e) {
		ise_error(res, e == MDM_ERR_TOOBIG ? 400 : 500, err_str(e));
		return;
	}
	render_answers(ctx, r, &a, &mr, 1, res);
	if (keyed)
		answer_to_cache(ctx, key, &mr, res);
	merge_result_clear(&mr);
}

static void handle_batch(struct ise_ctx *ctx, const struct route *r, const char *body, size_t len,
			 const char *content_type, struct ise_response *res)
{
	struct reqxml_item *items = NULL;
	struct asked *asked = NULL;
	size_t n = 0;
	enum ident_kind kind = IDENT_MAC;
	const char *part;
	size_t plen;
	char why[192];
	enum mdm_err e;

	if (r->crit == CRIT_COMPLIANCE ||
	    (r->crit != CRIT_NONE && !criterion_ident_kind(r->crit, &kind)))
		return ise_error(res, 400,
				 "batchdevices takes identifiers, not a compliance query");
	if (multipart_first_part(content_type, body ? body : "", len, &part, &plen) != MDM_OK)
		return ise_error(res, 400, "the multipart body is malformed");
	e = reqxml_values(part, plen, ctx->cfg->api.query_max_size, &items, &n, why, sizeof(why));
	if (e) {
		free(items);
		return ise_error(res, 400, why);
	}
	asked = calloc(n ? n : 1, sizeof(*asked));
	if (!asked) {
		free(items);
		return ise_error(res, 500, "out of memory");
	}
	for (size_t i = 0; i < n; i++)
		if (!parse_asked(ctx, kind, items[i].value, &asked[i], res))
			goto out;
	answer_lookup(ctx, r, asked, n, res);
out:
	free(items);
	free(asked);
}

/* --- actions ------------------------------------------------------------------------------- */

static void render_action(const struct route *r, const struct reqxml_item *id, bool ok,
			  const char *reason, struct ise_response *res)
{
	struct xml_writer w;

	xml_begin(&w, &res->body);
	xml_open(&w, "ise_api");
	xml_text(&w, "name", "action");
	xml_int(&w, "api_version", r->api_version);
	xml_open(&w, "deviceList");
	xml_open(&w, "device");
	xml_text(&w, id->tag, id->value);
	xml_open(&w, "result");
	xml_bool(&w, "action_status", ok);
	xml_text(&w, "failure_reason", reason);
	xml_close(&w, "result");
	xml_close(&w, "device");
	xml_close(&w, "deviceList");
	xml_close(&w, "ise_api");
	finish(res, &w, 200);
}

static bool action_ident_kind(const char *tag, enum ident_kind *kind)
{
	if (strcmp(tag, "macaddress") == 0)
		*kind = IDENT_MAC;
	else if (strcmp(tag, "serial_number") == 0)
		*kind = IDENT_SERIAL;
	else
		return ident_kind_parse(tag, kind) == MDM_OK;
	return true;
}

static void handle_action(struct ise_ctx *ctx, const struct route *r, const char *body, size_t len,
			  const char *content_type, const char *user, struct ise_response *res)
{
	struct reqxml_item item;
	struct asked a;
	enum ident_kind kind;
	const char *part;
	size_t plen;
	char why[192];

	atomic_fetch_add(&ctx->stats.actions, 1);
	if (multipart_first_part(content_type, body ? body : "", len, &part, &plen) != MDM_OK)
		return ise_error(res, 400, "the multipart body is malformed");
	if (reqxml_action(part, plen, &item, why, sizeof(why)) != MDM_OK)
		return ise_error(res, 400, why);
	if (!action_ident_kind(item.tag, &kind))
		return ise_error(res, 400, "unsupported identifier in the action body");
	if (!parse_asked(ctx, kind, item.value, &a, res))
		return;
	/* Actions reach a vendor only through the journalled pipeline, which no adapter offers
	 * yet: refuse plainly rather than pretend. */
	log_info("action %s for %s %s by %s: refused: %s", action_kind_name(r->action),
		 ident_kind_name(kind), a.id.value, user ? user : "-", NO_ACTION_MDM);
	str_copy(item.value, sizeof(item.value), a.as_sent);
	render_action(r, &item, false, NO_ACTION_MDM, res);
}

void ise_handle(struct ise_ctx *ctx, const struct route *r, const char *body, size_t len,
		const char *content_type, const char *user, struct ise_response *res)
{
	/*
	 * The server hands admin_handle only /metrics and purges; until its dispatch names the
	 * adapter listing too, it arrives here and goes on, uncounted as an ISE request.
	 */
	if (r->kind == ROUTE_ADAPTERS)
		return admin_handle(ctx, r, res);
	atomic_fetch_add(&ctx->stats.requests, 1);
	switch (r->kind) {
	case ROUTE_MDMINFO:
		return handle_mdminfo(ctx, r, res);
	case ROUTE_DEVICES:
		return handle_devices(ctx, r, res);
	case ROUTE_BATCH:
		return handle_batch(ctx, r, body, len, content_type, res);
	case ROUTE_ACTION:
		return handle_action(ctx, r, body, len, content_type, user, res);
	case ROUTE_SENDMESSAGE:
		return ise_error(res, 501,
				 "messaging is not supported (messaging_support is false)");
	case ROUTE_BAD:
		atomic_fetch_add(&ctx->stats.bad_requests, 1);
		ise_error(res, r->status, r->why);
		memcpy(res->allow, r->allow, sizeof(res->allow));
		return;
	case ROUTE_ADAPTER_TEST: /* asynchronous: admin_test_adapter, once the server can wait */
		return ise_error(res, 501,
				 "adapter tests over HTTP are not served yet; use "
				 "`mdmgw test-connection`");
	case ROUTE_HEALTHZ: /* answered by the server itself */
	case ROUTE_METRICS: /* answered by admin_handle */
	case ROUTE_PURGE:
	case ROUTE_ADAPTERS:
	case ROUTE_NOT_FOUND:
		break;
	}
	ise_error(res, 404, "no such resource");
}
