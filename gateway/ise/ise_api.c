#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/clock.h"
#include "../../core/log.h"
#include "../../core/xml.h"
#include "../actions/actions.h"
#include "../verdict/block.h"
#include "ise_api.h"
#include "reqxml.h"

#define XML_TYPE "application/xml; charset=utf-8"

static void finish(struct http_response *res, struct xml_writer *w, int status)
{
	if (xml_end(w) != MDM_OK) {
		/* Only a response past ISE_RESPONSE_MAX or no memory gets here. */
		buf_reset(&res->body);
		res->status = 500;
		res->content_type = "text/plain; charset=utf-8";
		if (buf_addstr(&res->body, "response could not be built\n") != MDM_OK)
			buf_reset(&res->body); /* the status says it alone */
		return;
	}
	res->status = status;
	res->content_type = XML_TYPE;
}

void ise_error(struct http_response *res, int status, const char *message)
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

static void api_path(const char *instance, int version, char *out, size_t sz)
{
	if (instance && instance[0])
		snprintf(out, sz, "/%s/ciscoise/mdmapi/v%d", instance, version);
	else
		snprintf(out, sz, "/ciscoise/mdmapi/v%d", version);
}

static void handle_mdminfo(struct ise_api *ctx, const struct route *r, struct http_response *res)
{
	const struct config_api *api = ctx->api;
	struct xml_writer w;
	char path[128];

	api_path(ctx->instance, r->api_version, path, sizeof(path));
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

/*
 * Paging cursors point into the generation the walk started in: paging_info = offset << 10 |
 * (generation mod 1024), offset >= 1 (0 is "first page" / "no more"). The store keeps fewer
 * than 1024 generations, so the newest kept generation with those low bits is the walk's own;
 * once it is gone the cursor is refused, never served from another list. Offsets stay below
 * 2^21, so the value stays below 2^31 (clients parse it as a signed int).
 */
#define PAGE_GEN_BITS 10
#define PAGE_GEN_MASK ((1u << PAGE_GEN_BITS) - 1)
#define PAGE_OFFSET_MAX ((1u << (31 - PAGE_GEN_BITS)) - 1)

/*
 * The listing `which` with blocked devices moved: a compliance=false listing includes them, a
 * compliance=true one leaves them out (in the snapshot's order). Only with blocks set; NULL:
 * no memory. Offsets into it are stable while the blocks and the snapshot are.
 */
static uint32_t *blocked_list(struct ise_api *ctx, const struct snapshot *s,
			      enum snapshot_list which, size_t *n)
{
	size_t count = snapshot_count(s);
	uint32_t *out = malloc((count ? count : 1) * sizeof(*out));
	unsigned char *in = calloc(count ? count : 1, 1);
	struct device *ids = malloc(sizeof(*ids));
	const uint32_t *list;
	size_t nlist = snapshot_list(s, which, &list);

	*n = 0;
	if (!out || !in || !ids) {
		free(out);
		free(in);
		free(ids);
		return NULL;
	}
	for (size_t i = 0; i < nlist; i++)
		in[list[i]] = 1;
	for (size_t d = 0; d < count; d++) {
		bool blocked;

		snapshot_ids(s, d, ids);
		blocked = block_device(ctx->blocks, ids);
		if (which == SNAP_NONCOMPLIANT ? (in[d] || blocked) : (in[d] && !blocked))
			out[(*n)++] = (uint32_t)d;
	}
	free(in);
	free(ids);
	return out;
}

/*
 * The generation a request's cursor walks: the current one for the first page, else the one
 * the cursor names (a new reference). NULL when there is none; *bad then tells whether the
 * cursor was at fault (res filled) rather than the snapshot missing.
 */
static struct snapshot *walk_generation(struct ise_api *ctx, uint32_t paging,
					struct http_response *res, bool *bad)
{
	struct snapshot *cur = ctx->snaps ? snapstore_current(ctx->snaps) : NULL;
	struct snapshot *s;
	uint64_t g, back;

	*bad = false;
	if (!cur || paging == 0)
		return cur;
	g = snapshot_generation(cur);
	back = (g - (paging & PAGE_GEN_MASK)) & PAGE_GEN_MASK;
	snapshot_unref(cur);
	*bad = true;
	if ((paging >> PAGE_GEN_BITS) == 0 || back > g) {
		ise_error(res, 400, "paging is not a paging_info value this server returned");
		return NULL;
	}
	s = snapstore_get(ctx->snaps, g - back);
	if (!s)
		ise_error(res, 400, "paging cursor expired: start the walk again");
	*bad = s == NULL;
	return s;
}

/* The generation a bulk answer walks; NULL with res answered when there is none to walk. */
static struct snapshot *bulk_generation(struct ise_api *ctx, const struct route *r,
					struct http_response *res)
{
	bool bad;
	struct snapshot *s = walk_generation(ctx, r->paging, res, &bad);

	if (bad)
		return NULL; /* res says what is wrong with the cursor */
	if (s && snapshot_why(s)) {
		/* an adapter that never listed: a walk would miss its devices */
		log_warn("bulk query unavailable: %s", snapshot_why(s));
		snapshot_unref(s);
		s = NULL;
	} else if (!s) {
		log_warn("bulk query unavailable: no device snapshot yet");
	}
	if (!s) {
		atomic_fetch_add(&ctx->stats.unavailable, 1);
		ise_error(res, 503, "device state is not available from every MDM right now");
	}
	return s;
}

/* One page of a bulk walk: the listing it pages through and where the page lies in it. */
struct bulk_page {
	struct snapshot *s;
	const uint32_t *list;
	uint32_t *moved; /* the listing with blocked devices moved (owned), or NULL */
	size_t start, end;
	uint32_t next; /* the cursor of the next page; 0: none */
};

/* Where r's page lies in its listing; false with res answered when it has none. */
static bool bulk_bounds(struct ise_api *ctx, const struct route *r, struct bulk_page *pg,
			struct http_response *res)
{
	enum snapshot_list which = SNAP_ALL;
	size_t n;

	if (r->crit == CRIT_COMPLIANCE)
		which = r->compliant_value ? SNAP_COMPLIANT : SNAP_NONCOMPLIANT;
	n = snapshot_list(pg->s, which, &pg->list);
	if (block_count(ctx->blocks) > 0 && which != SNAP_ALL) {
		pg->moved = blocked_list(ctx, pg->s, which, &n);
		if (!pg->moved) {
			ise_error(res, 500, "out of memory");
			return false;
		}
		pg->list = pg->moved;
	}
	pg->start = r->paging >> PAGE_GEN_BITS;
	if (pg->start > n) {
		ise_error(res, 400, "paging is not a paging_info value this server returned");
		return false;
	}
	pg->end = pg->start + ctx->api->query_max_size;
	if (pg->end > n)
		pg->end = n;
	if (pg->end < n && pg->end > PAGE_OFFSET_MAX) {
		ise_error(res, 500, "listing too long to page through");
		return false;
	}
	pg->next = pg->end < n ? (uint32_t)pg->end << PAGE_GEN_BITS |
				     (uint32_t)(snapshot_generation(pg->s) & PAGE_GEN_MASK)
			       : 0;
	return true;
}

/* Renders the page's devices (d is scratch); returns how many could be named. */
static size_t bulk_render(struct ise_api *ctx, const struct route *r, const struct bulk_page *pg,
			  struct xml_writer *w, struct device *d)
{
	bool any_blocked = block_count(ctx->blocks) > 0;
	size_t emitted = 0;

	for (size_t i = pg->start; i < pg->end; i++) {
		struct device_key k;

		snapshot_get(pg->s, pg->list[i], d);
		k = bulk_key(d, r->api_version, r->key_by_guid);
		/* A device with no identifier this answer can carry cannot be named. */
		if (!k.tag)
			continue;
		if (any_blocked)
			block_apply(ctx->blocks, d);
		render_device(w, d, r->api_version, k);
		emitted++;
	}
	return emitted;
}

static void handle_bulk(struct ise_api *ctx, const struct route *r, struct http_response *res)
{
	struct bulk_page pg = {.s = bulk_generation(ctx, r, res)};
	struct device *d = NULL;
	struct xml_writer w;
	size_t emitted = 0;

	if (!pg.s)
		return;
	if (!bulk_bounds(ctx, r, &pg, res))
		goto out;
	d = malloc(sizeof(*d));
	if (!d) {
		ise_error(res, 500, "out of memory");
		goto out;
	}
	open_attributes_doc(&w, &res->body, r->api_version, pg.next);
	if (pg.start == pg.end) {
		xml_empty(&w, "deviceList");
	} else {
		xml_open(&w, "deviceList");
		emitted = bulk_render(ctx, r, &pg, &w, d);
		xml_close(&w, "deviceList");
	}
	xml_close(&w, "ise_api");
	finish(res, &w, 200);
	log_debug("bulk %s page at %zu of generation %llu: %zu devices, next %u",
		  criterion_name(r->crit), pg.start, (unsigned long long)snapshot_generation(pg.s),
		  emitted, pg.next);
out:
	free(d);
	free(pg.moved);
	snapshot_unref(pg.s);
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

/* Renders the verdicts; blocked devices among them are marked so first (block_apply). */
static void render_answers(struct ise_api *ctx, const struct route *r, const struct asked *asked,
			   struct merge_result *mr, size_t n, struct http_response *res)
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
		for (size_t i = 0; i < n; i++) {
			for (size_t j = 0; mr[i].verdict == MERGE_FOUND && j < mr[i].ndevs; j++) {
				block_apply(ctx->blocks, &mr[i].devs[j]);
				render_device(
				    &w, &mr[i].devs[j], r->api_version,
				    single_key(&asked[i], &mr[i].devs[j], r->api_version));
			}
		}
		xml_close(&w, "deviceList");
	}
	xml_close(&w, "ise_api");
	finish(res, &w, 200);
}

static bool parse_asked(struct ise_api *ctx, enum ident_kind kind, const char *value,
			struct asked *a, struct http_response *res)
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

/* The key of a rendered answer: generation, version, criterion and the value as sent. */
static bool answer_key(const struct route *r, unsigned long gen, char *out, size_t outsz)
{
	int n = snprintf(out, outsz, "answer:%lu:%d:%s:%s", gen, r->api_version,
			 criterion_name(r->crit), r->value);

	return n > 0 && (size_t)n < outsz && cache_key_valid(out);
}

static bool answer_from_cache(struct ise_api *ctx, const char *key, struct http_response *res)
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

static void answer_to_cache(struct ise_api *ctx, const char *key, const struct merge_result *mr,
			    const struct http_response *res)
{
	struct cache_times t;

	if (res->status != 200 || mr->fresh_until <= 0 || mr->partial)
		return;
	t.fetched_at = clock_wall_ms();
	t.fresh_until = t.stale_until = mr->fresh_until;
	if (t.fresh_until > t.fetched_at)
		cache_put(ctx->answers, key, res->body.mem, res->body.len, &t);
}

/*
 * A lookup on its way: what its answer needs to be rendered. The answer always comes through
 * done (the server's pending answer is the one place that knows whether it came before the
 * handler returned).
 */
struct pend {
	struct ise_api *ctx;
	struct route r;
	struct asked *asked; /* n of them, owned */
	size_t n;
	bool keyed;
	char key[CACHE_KEY_MAX + 1];
	handler_done_cb done;
	void *arg;
};

static void on_lookup(void *arg, enum mdm_err e, struct merge_result *mr, size_t n)
{
	struct pend *p = arg;
	struct http_response res;

	http_response_init(&res);
	if (e == MDM_OK) {
		render_answers(p->ctx, &p->r, p->asked, mr, n, &res);
		if (p->keyed && n == 1)
			answer_to_cache(p->ctx, p->key, &mr[0], &res);
	} else {
		ise_error(&res, e == MDM_ERR_TOOBIG ? 400 : 500,
			  e == MDM_ERR_TOOBIG ? "too many values in one request" : err_str(e));
	}
	p->done(p->arg, &res);
	http_response_clear(&res);
	free(p->asked);
	free(p);
}

/*
 * Starts the lookup of asked[0..n) (taken over, freed here). true: res holds the answer now
 * (the lookup could not start); false: done will be called.
 */
static bool start_lookup(struct ise_api *ctx, const struct route *r, struct asked *asked, size_t n,
			 const char *key, struct http_response *res, handler_done_cb done,
			 void *arg)
{
	struct pend *p = calloc(1, sizeof(*p));
	struct ident *ids = calloc(n ? n : 1, sizeof(*ids));
	enum mdm_err e = MDM_ERR_NOMEM;

	if (!p || !ids) {
		free(p);
		free(ids);
		free(asked);
		ise_error(res, 500, "out of memory");
		return true;
	}
	*p = (struct pend){.ctx = ctx,
			   .r = *r,
			   .asked = asked,
			   .n = n,
			   .keyed = key != NULL,
			   .done = done,
			   .arg = arg};
	if (key)
		str_copy(p->key, sizeof(p->key), key);
	for (size_t i = 0; i < n; i++)
		ids[i] = asked[i].id;
	e = lookup_start(ctx->lookup, ids, n, on_lookup, p);
	free(ids);
	if (e) {
		ise_error(res, e == MDM_ERR_TOOBIG ? 400 : 500,
			  e == MDM_ERR_TOOBIG ? "too many values in one request" : err_str(e));
		free(p->asked);
		free(p);
		return true;
	}
	return false;
}

/* Lookups the snapshot's indexes answer (MACs stay on the live, cached path). */
static bool indexed_kind(enum ident_kind k)
{
	return k == IDENT_USERNAME || k == IDENT_UDID || k == IDENT_IMEI || k == IDENT_MEID ||
	       k == IDENT_GUID || k == IDENT_HOSTNAME;
}

#define SNAP_ANSWER_MAX 64 /* devices one indexed answer names (a user's devices) */

/*
 * Answers asked from the current generation when its index knows the identifier: true with
 * res filled. false: not there (or no snapshot), the live lookup answers.
 */
static bool answer_from_snapshot(struct ise_api *ctx, const struct route *r, const struct asked *a,
				 struct http_response *res)
{
	struct snapshot *s;
	struct merge_result mr = {0};
	uint32_t hits[SNAP_ANSWER_MAX];
	size_t n;

	if (!ctx->snaps || !indexed_kind(a->id.kind) || !(s = snapstore_current(ctx->snaps)))
		return false;
	n = snapshot_find(s, &a->id, hits, SNAP_ANSWER_MAX);
	if (n > SNAP_ANSWER_MAX)
		n = SNAP_ANSWER_MAX;
	if (n && (mr.devs = calloc(n, sizeof(*mr.devs))) != NULL) {
		for (size_t i = 0; i < n; i++)
			snapshot_get(s, hits[i], &mr.devs[i]);
		mr.ndevs = n;
		mr.verdict = MERGE_FOUND;
		render_answers(ctx, r, a, &mr, 1, res);
	}
	snapshot_unref(s);
	merge_result_clear(&mr);
	return n > 0 && res->status == 200;
}

static bool handle_devices(struct ise_api *ctx, const struct route *r, struct http_response *res,
			   handler_done_cb done, void *arg)
{
	struct asked *a;
	enum ident_kind kind;
	char key[CACHE_KEY_MAX + 1];
	bool keyed = false;

	if (r->crit == CRIT_NONE || r->crit == CRIT_COMPLIANCE) {
		handle_bulk(ctx, r, res);
		return true;
	}
	if (!criterion_ident_kind(r->crit, &kind)) {
		ise_error(res, 400, "unsupported querycriteria");
		return true;
	}
	/* The generation is read before the lookup: a write during it makes this key stale. */
	if (ctx->answers) {
		keyed = answer_key(r, lookup_generation(ctx->lookup), key, sizeof(key));
		if (keyed && answer_from_cache(ctx, key, res))
			return true;
	}
	a = calloc(1, sizeof(*a));
	if (!a) {
		ise_error(res, 500, "out of memory");
		return true;
	}
	if (!parse_asked(ctx, kind, r->value, a, res)) {
		free(a);
		return true;
	}
	if (answer_from_snapshot(ctx, r, a, res)) {
		free(a);
		return true;
	}
	return start_lookup(ctx, r, a, 1, keyed ? key : NULL, res, done, arg);
}

static bool handle_batch(struct ise_api *ctx, const struct route *r, const char *body, size_t len,
			 const char *content_type, struct http_response *res, handler_done_cb done,
			 void *arg)
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
	    (r->crit != CRIT_NONE && !criterion_ident_kind(r->crit, &kind))) {
		ise_error(res, 400, "batchdevices takes identifiers, not a compliance query");
		return true;
	}
	if (multipart_first_part(content_type, body ? body : "", len, &part, &plen) != MDM_OK) {
		ise_error(res, 400, "the multipart body is malformed");
		return true;
	}
	e = reqxml_values(part, plen, ctx->api->query_max_size, &items, &n, why, sizeof(why));
	if (e) {
		free(items);
		ise_error(res, 400, why);
		return true;
	}
	asked = calloc(n ? n : 1, sizeof(*asked));
	if (!asked) {
		free(items);
		ise_error(res, 500, "out of memory");
		return true;
	}
	for (size_t i = 0; i < n; i++) {
		if (!parse_asked(ctx, kind, items[i].value, &asked[i], res)) {
			free(items);
			free(asked);
			return true;
		}
	}
	free(items);
	return start_lookup(ctx, r, asked, n, NULL, res, done, arg);
}

/* --- actions ------------------------------------------------------------------------------- */

static void render_action(const struct route *r, const struct reqxml_item *id, bool ok,
			  const char *reason, struct http_response *res)
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

/* An action on its way through the pipeline: what the answer needs to name the device. */
struct action_pend {
	struct route r;
	struct reqxml_item item; /* the identifier as the client sent it (trimmed) */
	handler_done_cb done;
	void *arg;
};

/* The ISE API always answers 200 XML: action_status says whether the MDM accepted it. */
static void on_action(void *arg, const struct action_answer *ans)
{
	struct action_pend *ap = arg;
	struct http_response res;
	char reason[JOURNAL_TEXT_MAX + 128] = "";
	bool ok = false;

	http_response_init(&res);
	if (!ans->has_action) {
		str_copy(reason, sizeof(reason), ans->error);
	} else if (ans->status == 409) {
		snprintf(reason, sizeof(reason),
			 "the device has an action in progress or in doubt (%s %s, %s)",
			 action_kind_name(ans->act.action), ans->act.id,
			 journal_state_name(ans->act.state));
	} else {
		ok = ans->act.state == JOURNAL_SENT || ans->act.state == JOURNAL_RESOLVED_SENT;
		str_copy(reason, sizeof(reason), ok ? "" : ans->act.detail);
	}
	render_action(&ap->r, &ap->item, ok, reason, &res);
	ap->done(ap->arg, &res);
	http_response_clear(&res);
	free(ap);
}

static bool handle_action(struct ise_api *ctx, const struct handler_request *hr,
			  struct http_response *res, handler_done_cb done, void *arg)
{
	const struct route *r = hr->route;
	struct action_request rq;
	struct action_pend *ap;
	struct asked a;
	enum ident_kind kind;
	const char *part;
	size_t plen;
	char why[192];

	atomic_fetch_add(&ctx->stats.actions, 1);
	ap = calloc(1, sizeof(*ap));
	if (!ap) {
		ise_error(res, 500, "out of memory");
		return true;
	}
	if (multipart_first_part(hr->content_type, hr->body ? hr->body : "", hr->len, &part,
				 &plen) != MDM_OK) {
		ise_error(res, 400, "the multipart body is malformed");
	} else if (reqxml_action(part, plen, &ap->item, why, sizeof(why)) != MDM_OK) {
		ise_error(res, 400, why);
	} else if (!action_ident_kind(ap->item.tag, &kind)) {
		ise_error(res, 400, "unsupported identifier in the action body");
	} else if (parse_asked(ctx, kind, ap->item.value, &a, res)) {
		str_copy(ap->item.value, sizeof(ap->item.value), a.as_sent);
		if (!ctx->actions) {
			render_action(r, &ap->item, false,
				      "actions are not enabled on this gateway", res);
			free(ap);
			return true;
		}
		ap->r = *r;
		ap->done = done;
		ap->arg = arg;
		memset(&rq, 0, sizeof(rq));
		rq.user = hr->user ? hr->user : "";
		rq.roles = hr->roles;
		rq.addr = hr->addr ? hr->addr : "-";
		rq.kind = r->action;
		rq.device = a.id;
		rq.key = NULL; /* derived from account, device, action and the time window */
		actions_start(ctx->actions, &rq, on_action, ap);
		return false;
	}
	free(ap);
	return true;
}

bool ise_start(struct ise_api *ctx, const struct handler_request *hr, struct http_response *res,
	       handler_done_cb done, void *arg)
{
	const struct route *r = hr->route;

	atomic_fetch_add(&ctx->stats.requests, 1);
	switch (r->kind) {
	case ROUTE_MDMINFO:
		handle_mdminfo(ctx, r, res);
		return true;
	case ROUTE_DEVICES:
		return handle_devices(ctx, r, res, done, arg);
	case ROUTE_BATCH:
		return handle_batch(ctx, r, hr->body, hr->len, hr->content_type, res, done, arg);
	case ROUTE_ACTION:
		return handle_action(ctx, hr, res, done, arg);
	case ROUTE_SENDMESSAGE:
		ise_error(res, 501, "messaging is not supported (messaging_support is false)");
		return true;
	case ROUTE_BAD:
		atomic_fetch_add(&ctx->stats.bad_requests, 1);
		ise_error(res, r->status, r->why);
		memcpy(res->allow, r->allow, sizeof(res->allow));
		return true;
	default: /* healthz: the server's; metrics and the admin routes: their modules' */
		break;
	}
	ise_error(res, 404, "no such resource");
	return true;
}

struct sync_answer {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	struct http_response *res;
};

static void sync_done(void *arg, struct http_response *res)
{
	struct sync_answer *sa = arg;

	pthread_mutex_lock(&sa->mu);
	http_response_move(sa->res, res);
	sa->done = true;
	pthread_cond_signal(&sa->cv);
	pthread_mutex_unlock(&sa->mu);
}

void ise_handle(struct ise_api *ctx, const struct handler_request *hr, struct http_response *res)
{
	struct sync_answer sa = {.res = res};

	pthread_mutex_init(&sa.mu, NULL);
	pthread_cond_init(&sa.cv, NULL);
	if (!ise_start(ctx, hr, res, sync_done, &sa)) {
		pthread_mutex_lock(&sa.mu);
		while (!sa.done)
			pthread_cond_wait(&sa.cv, &sa.mu);
		pthread_mutex_unlock(&sa.mu);
	}
	pthread_mutex_destroy(&sa.mu);
	pthread_cond_destroy(&sa.cv);
}

/* --- the handler table ----------------------------------------------------------------------- */

static bool ise_route(void *ctx, const struct handler_request *rq, struct http_response *res,
		      handler_done_cb done, void *arg)
{
	return ise_start(ctx, rq, res, done, arg);
}

/* An action needs a role configured for its kind (actions.roles). */
static unsigned action_roles(void *ctx, const struct route *r)
{
	const struct ise_api *ise = ctx;

	return ise->action_roles ? config_action_roles_of(ise->action_roles, (int)r->action) : 0;
}

/* A lookup's answer comes within the lookup's own bound (verdict/lookup.h). */
static int64_t lookup_wait(void *ctx, const struct route *r)
{
	const struct ise_api *ise = ctx;

	(void)r;
	return ise->lookup ? lookup_answer_bound_ms(ise->lookup) : HANDLER_WAIT_DEFAULT_MS;
}

/* An action's answer comes within the pipeline's bound (actions/actions.h). */
static int64_t action_wait(void *ctx, const struct route *r)
{
	const struct ise_api *ise = ctx;

	(void)r;
	return ise->actions ? actions_answer_bound_ms(ise->actions) : HANDLER_WAIT_DEFAULT_MS;
}

static const struct handler_spec ise_specs[] = {
    {.kind = ROUTE_MDMINFO, .roles = ROLE_QUERY, .handle = ise_route, .hop_checked = true},
    {.kind = ROUTE_DEVICES,
     .roles = ROLE_QUERY,
     .handle = ise_route,
     .wait_ms = lookup_wait,
     .hop_checked = true},
    {.kind = ROUTE_BATCH,
     .roles = ROLE_QUERY,
     .handle = ise_route,
     .wait_ms = lookup_wait,
     .hop_checked = true},
    {.kind = ROUTE_ACTION,
     .roles_of = action_roles,
     .handle = ise_route,
     .wait_ms = action_wait,
     .hop_checked = true},
    {.kind = ROUTE_SENDMESSAGE, .handle = ise_route},
    {.kind = ROUTE_BAD, .handle = ise_route},
    {.kind = ROUTE_NOT_FOUND, .handle = ise_route},
};

struct handler_group ise_api_routes(struct ise_api *ise)
{
	return (struct handler_group){ise_specs, sizeof(ise_specs) / sizeof(ise_specs[0]), ise,
				      ise_error};
}
