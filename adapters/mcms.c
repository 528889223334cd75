/* mcms: see mcms.h. */
#include "mcms.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../core/buf.h"
#include "../core/clock.h"
#include "../core/log.h"
#include "pages.h"
#include "remote.h"

#define BASE_MAX 512
#define INSTANCE_MAX 255
#define DEF_LIST_MS 30000
#define DEF_MAX_BODY (1024 * 1024) /* the HTTP engine's own default cap */
#define NEGOTIATE_MS 10000	   /* one negotiation, shared by whoever waits for it */
#define ACTION_MS 30000		   /* an action's request, queueing and any hold included */
#define TEST_MS 10000
#define LIST_DEVS_MAX 1000000 /* devices one listing accepts: bounds memory */
#define WALK_PAGES_MAX 100000 /* pages one query follows */
#define THROTTLE_DEF_MS 5000  /* a 429 or 503 without a readable Retry-After */
#define HOP_VIA_HDR "X-Mdmgw-Via: "
#define HOP_COUNT_HDR "X-Mdmgw-Hops: "

/* A negotiation waiter: told the info, or why there is none. */
typedef void (*info_cb)(void *arg, const struct mcms_info *info, unsigned gen, enum fail_kind fail,
			const char *why);

struct info_wait {
	struct info_wait *next;
	info_cb cb;
	void *arg;
};

struct mcms {
	struct adapter base;
	struct http_client *http;
	char origin[BASE_MAX + 1];	 /* url without trailing slashes */
	char instance[INSTANCE_MAX + 1]; /* "" for none */
	char ca_file[1024];
	size_t max_body;
	int64_t list_timeout_ms;
	enum mcms_listing mode;
	adapter_hops_fn hops;
	void *hops_arg;
	pthread_mutex_t mu; /* guards everything below but pages and health (their own locks) */
	/* negotiation */
	bool have_info, negotiating;
	struct mcms_info info;
	unsigned info_gen; /* bumped by every negotiation that succeeds */
	struct info_wait *waiters;
	/* throttling: no request starts before hold_until (clock_mono_ms) */
	int64_t hold_until;
	char hold_why[128];
	/* listing */
	bool noncompliant_only; /* the effective mode ("auto" may have switched) */
	struct pages pages;	/* the latest listing, served in pages by cursor */
	struct ident *prev_nc;	/* the previous non-compliant listing's devices, by one key each */
	size_t nprev_nc;
	/* health */
	struct http_health health; /* last success and failure, for the health op */
};

/* --- throttling ------------------------------------------------------------------------------- */

/* hold: no request to this MDM starts for delay_ms from now (a longer hold is kept). */
static void mcms_hold(struct mcms *s, int64_t delay_ms, const char *what)
{
	int64_t until = clock_mono_ms() + delay_ms;
	bool longer;

	pthread_mutex_lock(&s->mu);
	longer = until > s->hold_until;
	if (longer) {
		s->hold_until = until;
		err_why(s->hold_why, sizeof(s->hold_why), "%s", what);
	}
	pthread_mutex_unlock(&s->mu);
	if (longer)
		log_info("mcms %s: %s: holding requests for %lld ms", s->base.name, what,
			 (long long)delay_ms);
}

/*
 * throttled: a 429, or a 503 that says when to come back. A bare 503 is "unavailable" (what a
 * gateway upstream answers when no source could answer): a failure, not a reason to wait.
 */
static bool throttled(const struct http_result *res)
{
	return res->fail == FAIL_NONE &&
	       (res->status == 429 || (res->status == 503 && res->retry_after[0]));
}

/* note_throttle: a throttled answer holds further requests for its Retry-After (else 5 s). */
static void note_throttle(struct mcms *s, const struct http_result *res)
{
	int64_t delay = THROTTLE_DEF_MS;
	char what[96];

	if (!throttled(res))
		return;
	if (!res->retry_after[0] ||
	    mcms_retry_after_parse(res->retry_after, clock_wall_ms(), &delay) != MDM_OK)
		delay = THROTTLE_DEF_MS;
	err_why(what, sizeof(what), "HTTP %ld, Retry-After %s", res->status,
		res->retry_after[0] ? res->retry_after : "(none)");
	mcms_hold(s, delay, what);
}

/* hold_state: the current hold's end (0: none) and its reason. */
static int64_t hold_state(struct mcms *s, char *why, size_t whysz)
{
	int64_t until;

	pthread_mutex_lock(&s->mu);
	until = s->hold_until > clock_mono_ms() ? s->hold_until : 0;
	if (why)
		str_copy(why, whysz, s->hold_why);
	pthread_mutex_unlock(&s->mu);
	return until;
}

/* --- requests --------------------------------------------------------------------------------- */

/* A request's hop headers: their storage and the NULL-terminated list of lines. */
struct hop_lines {
	char via[sizeof(HOP_VIA_HDR) + MCMS_VIA_MAX];
	char count[48];
	const char *list[3];
};

static const char *const *hop_headers(struct mcms *s, struct hop_lines *h)
{
	char via[MCMS_VIA_MAX] = "";
	unsigned n = 0;

	if (!s->hops)
		return NULL;
	s->hops(s->hops_arg, via, sizeof(via), &n);
	snprintf(h->via, sizeof(h->via), "%s%s", HOP_VIA_HDR, via);
	snprintf(h->count, sizeof(h->count), "%s%u", HOP_COUNT_HDR, n);
	h->list[0] = h->via;
	h->list[1] = h->count;
	h->list[2] = NULL;
	return h->list;
}

/*
 * send_req: one request to the MDM, held until the current hold ends. FAIL_NONE when it is on
 * its way (cb comes once); else the fail kind and why (cb never comes): FAIL_THROTTLED when
 * the hold outlasts the deadline, FAIL_INTERNAL when the engine refused the request.
 */
static enum fail_kind send_req(struct mcms *s, enum http_method m, const char *url,
			       const char *body, size_t len, int64_t deadline, http_done_cb cb,
			       void *arg, char *why, size_t whysz)
{
	struct hop_lines hl;
	struct http_request rq = {m, url, NULL, body, len, 0};
	char hwhy[128];
	int64_t until = hold_state(s, hwhy, sizeof(hwhy));
	enum mdm_err e;

	if (until && until >= deadline) {
		err_why(why, whysz,
			"the MDM asked to wait %lld ms more (%s), past this request's deadline",
			(long long)(until - clock_mono_ms()), hwhy);
		return FAIL_THROTTLED;
	}
	rq.headers = hop_headers(s, &hl);
	rq.not_before_ms = until;
	e = http_request(s->http, &rq, deadline, cb, arg);
	if (e == MDM_OK)
		return FAIL_NONE;
	err_why(why, whysz, "request not sent (%s)", err_str(e));
	return FAIL_INTERNAL;
}

/* body_message: the <message> of an ISE XML error body, for reasons ("" when none). */
static void body_message(const struct http_result *res, char *out, size_t outsz)
{
	const char *b = buf_str(&res->body), *p, *q;

	out[0] = '\0';
	if (!b || !(p = strstr(b, "<message>")))
		return;
	p += 9;
	q = strstr(p, "</message>");
	if (q)
		str_copyn(out, outsz, p, (size_t)(q - p) < outsz - 1 ? (size_t)(q - p) : outsz - 1);
}

/* status_fail: an HTTP status other than 200 as a fail kind and a reason naming what. */
static enum fail_kind status_fail(const struct http_result *res, const char *what, char *why,
				  size_t whysz)
{
	char msg[160];

	switch (res->status) {
	case 401:
		err_why(why, whysz,
			"%s: the MDM refused the credentials (401): wrong user name or password",
			what);
		return FAIL_AUTH;
	case 403:
		err_why(why, whysz, "%s: the API account lacks the REST API MDM role (403)", what);
		return FAIL_AUTH;
	case 404:
		err_why(why, whysz, "%s: not found (404): wrong instance or api_path", what);
		return FAIL_PROTOCOL;
	case 429:
	case 503:
		err_why(why, whysz, "%s: the MDM is throttling or overloaded (%ld, Retry-After %s)",
			what, res->status, res->retry_after[0] ? res->retry_after : "none");
		return FAIL_THROTTLED;
	case 508:
		body_message(res, msg, sizeof(msg));
		err_why(why, whysz, "loop: %s: the upstream gateway refused the request (508)%s%s",
			what, msg[0] ? ": " : "", msg);
		return FAIL_PROTOCOL;
	default:
		break;
	}
	if (res->status >= 500) {
		err_why(why, whysz, "%s: the MDM answered %ld", what, res->status);
		return FAIL_UNREACHABLE;
	}
	err_why(why, whysz, "%s: unexpected HTTP status %ld", what, res->status);
	return FAIL_PROTOCOL;
}

/* --- negotiation ------------------------------------------------------------------------------ */

static void negotiate_done(struct mcms *s, const struct mcms_info *info, enum fail_kind fail,
			   const char *why)
{
	struct info_wait *w, *next;
	struct mcms_info copy;
	unsigned gen;

	pthread_mutex_lock(&s->mu);
	if (fail == FAIL_NONE) {
		s->info = *info;
		s->have_info = true;
		s->info_gen++;
	}
	copy = s->info;
	gen = s->info_gen;
	w = s->waiters;
	s->waiters = NULL;
	s->negotiating = false;
	pthread_mutex_unlock(&s->mu);
	if (fail == FAIL_NONE)
		log_info("mcms %s: negotiated API version %d at %s (query_max_size %u)",
			 s->base.name, copy.api_version, copy.api_path, copy.query_max_size);
	else
		log_warn("mcms %s: negotiation failed: %s", s->base.name, why);
	for (; w; w = next) {
		next = w->next;
		w->cb(w->arg, fail == FAIL_NONE ? &copy : NULL, gen, fail, why);
		free(w);
	}
}

/* info_from: the mdminfo answer read; FAIL_NONE and info, or the fail kind and why. */
static enum fail_kind info_from(struct mcms *s, const struct http_result *res,
				struct mcms_info *info, char *why, size_t whysz)
{
	char pwhy[200] = "";
	enum mdm_err e;

	if (res->fail != FAIL_NONE) {
		err_why(why, whysz, "mdminfo: %s", res->why);
		return res->fail;
	}
	if (res->status != 200)
		return status_fail(res, "mdminfo", why, whysz);
	e = mcms_mdminfo_parse(res->body.mem ? res->body.mem : "", res->body.len, s->max_body, info,
			       pwhy, sizeof(pwhy));
	if (e == MDM_OK)
		return FAIL_NONE;
	err_why(why, whysz, "mdminfo: %s", pwhy);
	return e == MDM_ERR_NOMEM ? FAIL_INTERNAL : FAIL_PROTOCOL;
}

static void negotiate_on_answer(struct http_result *res, void *arg)
{
	struct mcms *s = arg;
	struct mcms_info info;
	char why[256] = "";
	enum fail_kind f;

	note_throttle(s, res);
	f = info_from(s, res, &info, why, sizeof(why));
	buf_free(&res->body);
	negotiate_done(s, &info, f, why);
}

/* mdminfo_send: GET mdminfo?ise_api_version=3 to cb. */
static enum fail_kind mdminfo_send(struct mcms *s, int64_t deadline, http_done_cb cb, void *arg,
				   char *why, size_t whysz)
{
	char url[MCMS_URL_MAX];

	if (mcms_url_mdminfo(s->origin, s->instance, 3, url, sizeof(url)) != MDM_OK) {
		err_why(why, whysz, "mdminfo URL too long");
		return FAIL_INTERNAL;
	}
	return send_req(s, HTTP_GET, url, NULL, 0, deadline, cb, arg, why, whysz);
}

/*
 * get_info: cb gets the negotiated info: at once when cached, else when the negotiation under
 * way (started here if none is) ends. stale_gen: a generation the caller saw fail with 404;
 * when it is still the cached one, the cache is dropped first (0: keep).
 */
static void get_info(struct mcms *s, unsigned stale_gen, info_cb cb, void *arg)
{
	struct info_wait *w;
	struct mcms_info copy;
	unsigned gen;
	bool start;
	char why[256];
	enum fail_kind f;

	pthread_mutex_lock(&s->mu);
	if (stale_gen && s->info_gen == stale_gen && s->have_info) {
		s->have_info = false;
		log_info("mcms %s: 404 from %s: negotiating again", s->base.name, s->info.api_path);
	}
	if (s->have_info) {
		copy = s->info;
		gen = s->info_gen;
		pthread_mutex_unlock(&s->mu);
		cb(arg, &copy, gen, FAIL_NONE, NULL);
		return;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		pthread_mutex_unlock(&s->mu);
		cb(arg, NULL, 0, FAIL_INTERNAL, "out of memory");
		return;
	}
	w->cb = cb;
	w->arg = arg;
	w->next = s->waiters;
	s->waiters = w;
	start = !s->negotiating;
	s->negotiating = true;
	pthread_mutex_unlock(&s->mu);
	if (!start)
		return;
	f = mdminfo_send(s, clock_mono_ms() + NEGOTIATE_MS, negotiate_on_answer, s, why,
			 sizeof(why));
	if (f != FAIL_NONE)
		negotiate_done(s, NULL, f, why);
}

/* --- device queries, every page --------------------------------------------------------------- */

struct walk;
/* walk_done_fn: the query is over: fail FAIL_NONE with w->acc (or w->not_applicable). */
typedef void (*walk_done_fn)(struct walk *w, enum fail_kind fail, const char *why);

struct walk {
	struct mcms *s;
	enum mcms_criterion crit;
	char value[IDENT_VALUE_MAX + 1];
	bool listing;	   /* per-page deadlines of list_timeout, throttled pages wait */
	int64_t deadline;  /* lookups: the caller's; listings: the current page's */
	int64_t page_t0;   /* listings: the current page's first try */
	bool renegotiated; /* once per query */
	bool not_applicable;
	long status; /* the last HTTP status (for "auto" mode) */
	uint32_t paging;
	unsigned pages;
	struct mcms_info info;
	unsigned info_gen;
	struct outcome acc;
	char url[MCMS_URL_MAX];
	walk_done_fn done;
	void *ctx;
};

static void walk_send(struct walk *w);

static void walk_on_info(void *arg, const struct mcms_info *info, unsigned gen, enum fail_kind fail,
			 const char *why)
{
	struct walk *w = arg;

	if (fail != FAIL_NONE) {
		w->done(w, fail, why);
		return;
	}
	w->info = *info;
	w->info_gen = gen;
	if (mcms_criterion_version(w->crit) > info->api_version) {
		w->not_applicable = true;
		w->done(w, FAIL_NONE, NULL);
		return;
	}
	walk_send(w);
}

/* walk_begin: from the first page, (re)negotiating first when stale_gen says so. */
static void walk_begin(struct walk *w, unsigned stale_gen)
{
	w->paging = 0;
	w->pages = 0;
	outcome_clear(&w->acc);
	get_info(w->s, stale_gen, walk_on_info, w);
}

static void walk_on_answer(struct http_result *res, void *arg);

static void walk_send(struct walk *w)
{
	const char *what = w->crit == MCMS_BY_NONE ? "all" : mcms_criterion_name(w->crit);
	char why[256];
	enum fail_kind f;

	if (mcms_url_devices(w->s->origin, w->info.api_path, w->info.api_version, w->crit, w->value,
			     w->paging, w->url, sizeof(w->url)) != MDM_OK) {
		err_why(why, sizeof(why), "devices by %s: cannot build the URL (bad value?)", what);
		w->done(w, FAIL_INTERNAL, why);
		return;
	}
	if (w->listing) {
		w->page_t0 = clock_mono_ms();
		w->deadline = w->page_t0 + w->s->list_timeout_ms;
	}
	f = send_req(w->s, HTTP_GET, w->url, NULL, 0, w->deadline, walk_on_answer, w, why,
		     sizeof(why));
	if (f != FAIL_NONE)
		w->done(w, f, why);
}

/* walk_retry: a listing page throttled: the same page again once the hold ends, if it ends
 * within list_timeout of the page's first try. false: give up. */
static bool walk_retry(struct walk *w)
{
	char why[256];
	int64_t until = hold_state(w->s, NULL, 0);

	if (!w->listing || !until || until >= w->page_t0 + w->s->list_timeout_ms)
		return false;
	w->deadline = until + w->s->list_timeout_ms;
	if (send_req(w->s, HTTP_GET, w->url, NULL, 0, w->deadline, walk_on_answer, w, why,
		     sizeof(why)) != FAIL_NONE)
		return false;
	return true;
}

/* walk_page: a 200 page into w->acc; FAIL_NONE and *more, or the fail kind and why. */
static enum fail_kind walk_page(struct walk *w, const struct http_result *res, bool *more,
				char *why, size_t whysz)
{
	struct outcome page;
	uint32_t next = 0;
	int busy = 0;
	size_t dropped = 0;
	char pwhy[200] = "";
	enum mdm_err e;

	*more = false;
	outcome_init(&page);
	e = mcms_devices_parse(res->body.mem ? res->body.mem : "", res->body.len, w->s->max_body,
			       w->info.query_max_size, w->s->base.name, &page, &next, &busy,
			       &dropped, pwhy, sizeof(pwhy));
	if (e != MDM_OK) {
		outcome_clear(&page);
		err_why(why, whysz, "devices: %s", pwhy);
		return e == MDM_ERR_NOMEM ? FAIL_INTERNAL : FAIL_PROTOCOL;
	}
	if (busy > 0) {
		char what[64];

		err_why(what, sizeof(what), "server_busy_wait_seconds %d", busy);
		mcms_hold(w->s, (int64_t)busy * 1000, what);
	}
	if (dropped)
		log_debug("mcms %s: %zu values dropped from a page (not valid)", w->s->base.name,
			  dropped);
	if (page.ndevs > LIST_DEVS_MAX - w->acc.ndevs) {
		outcome_clear(&page);
		err_why(why, whysz, "devices: more than %d devices: refused to bound memory",
			LIST_DEVS_MAX);
		return FAIL_PROTOCOL;
	}
	for (size_t i = 0; i < page.ndevs && e == MDM_OK; i++)
		e = outcome_add(&w->acc, &page.devs[i]);
	outcome_clear(&page);
	if (e != MDM_OK) {
		err_why(why, whysz, "out of memory");
		return FAIL_INTERNAL;
	}
	if (next == 0)
		return FAIL_NONE;
	if (next == w->paging || ++w->pages >= WALK_PAGES_MAX) {
		err_why(why, whysz, "devices: paging_info %u does not move on", next);
		return FAIL_PROTOCOL;
	}
	w->paging = next;
	*more = true;
	return FAIL_NONE;
}

static void walk_on_answer(struct http_result *res, void *arg)
{
	struct walk *w = arg;
	const char *what = w->crit == MCMS_BY_NONE ? "all devices" : mcms_criterion_name(w->crit);
	char why[256] = "";
	enum fail_kind f;
	bool more = false;

	note_throttle(w->s, res);
	w->status = res->fail == FAIL_NONE ? res->status : 0;
	if (res->fail != FAIL_NONE) {
		err_why(why, sizeof(why), "devices by %s: %s", what, res->why);
		f = res->fail;
	} else if (res->status == 404 && !w->renegotiated) {
		buf_free(&res->body);
		w->renegotiated = true;
		walk_begin(w, w->info_gen);
		return;
	} else if (throttled(res) && walk_retry(w)) {
		buf_free(&res->body);
		return;
	} else if (res->status != 200) {
		f = status_fail(res, what, why, sizeof(why));
	} else {
		f = walk_page(w, res, &more, why, sizeof(why));
	}
	buf_free(&res->body);
	if (f == FAIL_NONE && more)
		walk_send(w);
	else
		w->done(w, f, why);
}

static void walk_init(struct walk *w, struct mcms *s, enum mcms_criterion crit, const char *value,
		      bool listing, int64_t deadline, walk_done_fn done, void *ctx)
{
	memset(w, 0, sizeof(*w));
	w->s = s;
	w->crit = crit;
	str_copy(w->value, sizeof(w->value), value ? value : "");
	w->listing = listing;
	w->deadline = deadline;
	w->done = done;
	w->ctx = ctx;
	outcome_init(&w->acc);
}

/* criterion_of: the query criterion for an identifier kind; MCMS_BY_NONE when none has it. */
static enum mcms_criterion criterion_of(enum ident_kind k)
{
	switch (k) {
	case IDENT_MAC:
		return MCMS_BY_MAC;
	case IDENT_GUID:
		return MCMS_BY_GUID;
	case IDENT_UDID:
		return MCMS_BY_UDID;
	case IDENT_IMEI:
		return MCMS_BY_IMEI;
	case IDENT_MEID:
		return MCMS_BY_MEID;
	case IDENT_HOSTNAME:
		return MCMS_BY_HOSTNAME;
	case IDENT_USERNAME:
		return MCMS_BY_USERNAME;
	default:
		return MCMS_BY_NONE;
	}
}

/* --- lookup ----------------------------------------------------------------------------------- */

struct mcms_query {
	struct walk w;
	struct ident id;
	adapter_lookup_cb cb;
	void *arg;
};

/*
 * carry_ident: the record answered for id carries id. Single answers may leave the key out
 * (Intune does); the MDM matched it, so writing it back invents nothing. A GUID so written is
 * the MDM's own (it answered for it), and becomes the vendor id as it is for listed records.
 */
static void carry_ident(struct device *d, const struct ident *id)
{
	switch (id->kind) {
	case IDENT_MAC:
		if (device_has_mac(d, id->value))
			break;
		if (d->nmacs == DEVICE_MACS_MAX)
			d->nmacs--; /* the asked MAC matters more than a fifth other one */
		device_add_mac(d, id->value);
		if (d->nmacs == 1)
			d->mac_local = id->mac_local;
		break;
	case IDENT_GUID:
		if (!d->guid[0]) {
			str_copy(d->guid, sizeof(d->guid), id->value);
			str_copy(d->vendor_id, sizeof(d->vendor_id), id->value);
		}
		break;
	case IDENT_UDID:
		if (!d->udid[0])
			str_copy(d->udid, sizeof(d->udid), id->value);
		break;
	case IDENT_IMEI:
		if (!d->imei[0])
			str_copy(d->imei, sizeof(d->imei), id->value);
		break;
	case IDENT_MEID:
		if (!d->meid[0])
			str_copy(d->meid, sizeof(d->meid), id->value);
		break;
	case IDENT_HOSTNAME:
		if (!d->hostname[0])
			str_copy(d->hostname, sizeof(d->hostname), id->value);
		break;
	default:
		break;
	}
	if (!d->vendor_id[0] && d->nmacs)
		str_copy(d->vendor_id, sizeof(d->vendor_id), d->macs[0]);
}

static void mcms_query_done(struct walk *w, enum fail_kind fail, const char *why)
{
	struct mcms_query *lk = w->ctx;
	struct outcome oc;
	int64_t now = clock_wall_ms();

	outcome_init(&oc);
	if (fail != FAIL_NONE) {
		outcome_set(&oc, OUTCOME_FAILED, fail, why);
		log_warn("mcms %s: lookup of %s %s failed: %s", w->s->base.name,
			 ident_kind_name(lk->id.kind), lk->id.value, why);
		http_health_fail(&w->s->health, why);
	} else if (w->not_applicable) {
		outcome_set(&oc, OUTCOME_NOT_APPLICABLE, FAIL_NONE, NULL);
		http_health_ok(&w->s->health);
	} else {
		outcome_move(&oc, &w->acc);
		for (size_t i = 0; i < oc.ndevs; i++) {
			if (lk->id.kind != IDENT_USERNAME)
				carry_ident(&oc.devs[i], &lk->id);
			oc.devs[i].fetched_at_ms = now;
		}
		http_health_ok(&w->s->health);
	}
	lk->cb(lk->arg, &oc);
	outcome_clear(&oc);
	outcome_clear(&w->acc);
	free(lk);
}

static enum mdm_err mcms_lookup(struct adapter *a, const struct ident *id, int64_t deadline_ms,
				adapter_lookup_cb cb, void *arg)
{
	struct mcms *s = a->priv;
	enum mcms_criterion crit;
	struct mcms_query *lk;

	if (!id || !cb)
		return MDM_ERR_INVALID;
	crit = criterion_of(id->kind);
	if (crit == MCMS_BY_NONE) {
		/* The API has no criterion for it (serial numbers). */
		adapter_not_applicable(cb, arg);
		return MDM_OK;
	}
	lk = calloc(1, sizeof(*lk));
	if (!lk)
		return MDM_ERR_NOMEM;
	lk->id = *id;
	lk->cb = cb;
	lk->arg = arg;
	walk_init(&lk->w, s, crit, id->value, false, deadline_ms, mcms_query_done, lk);
	walk_begin(&lk->w, 0);
	return MDM_OK;
}

/* --- action ----------------------------------------------------------------------------------- */

struct act {
	struct mcms *s;
	adapter_action_cb cb;
	void *arg;
	enum action_kind kind;
	char vendor_id[GUID_MAX + 1];
	bool renegotiated;
	unsigned info_gen;
	int64_t deadline;
	char url[MCMS_URL_MAX];
	struct buf body;
};

static void act_finish(struct act *t, bool accepted, enum fail_kind fail, const char *reason)
{
	struct action_result res;

	memset(&res, 0, sizeof(res));
	res.accepted = accepted;
	res.fail = fail;
	str_copyn(res.reason, sizeof(res.reason), reason ? reason : "",
		  strnlen(reason ? reason : "", sizeof(res.reason) - 1));
	if (fail != FAIL_NONE) {
		log_warn("mcms %s: %s of %s not sent or not answered: %s", t->s->base.name,
			 action_kind_name(t->kind), t->vendor_id, res.reason);
		http_health_fail(&t->s->health, res.reason);
	} else {
		log_info("mcms %s: %s of %s: %s%s%s", t->s->base.name, action_kind_name(t->kind),
			 t->vendor_id, accepted ? "accepted" : "refused", res.reason[0] ? ": " : "",
			 res.reason);
		http_health_ok(&t->s->health);
	}
	t->cb(t->arg, &res);
	buf_free(&t->body);
	free(t);
}

/* action_ident: vendor_id as the identifier the MDM knows it by, for version v. */
static enum mdm_err action_ident(const char *vid, int v, struct ident *id)
{
	static const enum ident_kind others[] = {IDENT_UDID, IDENT_IMEI, IDENT_MEID, IDENT_SERIAL};
	size_t len = strlen(vid);

	memset(id, 0, sizeof(*id));
	if (mac_parse(vid, len, id->value, &id->mac_local, NULL, 0) == MDM_OK) {
		id->kind = IDENT_MAC;
		id->len = MAC_STR_LEN;
		return MDM_OK;
	}
	if (v >= 3)
		return ident_parse(IDENT_GUID, vid, len, id, NULL, 0);
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
		if (ident_parse(others[i], vid, len, id, NULL, 0) == MDM_OK)
			return MDM_OK;
	return MDM_ERR_INVALID;
}

static void act_on_answer(struct http_result *res, void *arg);

static void act_on_info(void *arg, const struct mcms_info *info, unsigned gen, enum fail_kind fail,
			const char *why)
{
	struct act *t = arg;
	struct ident id;
	char msg[256];
	enum fail_kind f;

	if (fail != FAIL_NONE) {
		act_finish(t, false, fail, why);
		return;
	}
	t->info_gen = gen;
	buf_reset(&t->body);
	if (action_ident(t->vendor_id, info->api_version, &id) != MDM_OK ||
	    mcms_action_body(&id, &t->body) != MDM_OK) {
		err_why(msg, sizeof(msg), "device id %s cannot name the device to this MDM (v%d)",
			t->vendor_id, info->api_version);
		act_finish(t, false, FAIL_INTERNAL, msg);
		return;
	}
	if (mcms_url_action(t->s->origin, info->api_path, t->kind, t->url, sizeof(t->url)) !=
	    MDM_OK) {
		act_finish(t, false, FAIL_INTERNAL, "action URL cannot be built");
		return;
	}
	f = send_req(t->s, HTTP_POST, t->url, buf_str(&t->body), t->body.len, t->deadline,
		     act_on_answer, t, msg, sizeof(msg));
	if (f != FAIL_NONE)
		act_finish(t, false, f, msg);
}

static void act_on_answer(struct http_result *res, void *arg)
{
	struct act *t = arg;
	char why[256] = "", reason[256] = "", pwhy[200] = "";
	bool accepted = false;
	enum fail_kind f = FAIL_NONE;

	note_throttle(t->s, res);
	if (res->fail != FAIL_NONE) {
		err_why(why, sizeof(why), "action: %s", res->why);
		f = res->fail;
	} else if (res->status == 404 && !t->renegotiated) {
		/* Nothing was executed at a path that does not exist: negotiate, try again. */
		buf_free(&res->body);
		t->renegotiated = true;
		get_info(t->s, t->info_gen, act_on_info, t);
		return;
	} else if (res->status != 200) {
		f = status_fail(res, "action", why, sizeof(why));
	} else if (mcms_action_parse(res->body.mem ? res->body.mem : "", res->body.len,
				     t->s->max_body, &accepted, reason, sizeof(reason), pwhy,
				     sizeof(pwhy)) != MDM_OK) {
		err_why(why, sizeof(why), "action: %s", pwhy);
		f = FAIL_PROTOCOL;
	}
	buf_free(&res->body);
	if (f != FAIL_NONE)
		act_finish(t, false, f, why);
	else
		act_finish(t, accepted, FAIL_NONE, reason);
}

static enum mdm_err mcms_action(struct adapter *a, const char *vendor_id, enum action_kind kind,
				adapter_action_cb cb, void *arg)
{
	struct mcms *s = a->priv;
	struct act *t;

	if (!vendor_id || !cb || kind >= ACTION_COUNT || strlen(vendor_id) > GUID_MAX)
		return MDM_ERR_INVALID;
	t = calloc(1, sizeof(*t));
	if (!t)
		return MDM_ERR_NOMEM;
	t->s = s;
	t->cb = cb;
	t->arg = arg;
	t->kind = kind;
	str_copy(t->vendor_id, sizeof(t->vendor_id), vendor_id);
	t->deadline = clock_mono_ms() + ACTION_MS;
	buf_init(&t->body, 4096);
	get_info(s, 0, act_on_info, t);
	return MDM_OK;
}

/* --- bulk listing ----------------------------------------------------------------------------- */

struct list_job {
	struct walk w;
	adapter_list_cb cb;
	void *arg;
	bool noncompliant;     /* this listing asks compliance=false */
	struct outcome all;    /* the listing so far */
	struct ident *leavers; /* previous non-compliant devices not listed now */
	size_t nleavers, at;
	struct ident *keys; /* this listing's non-compliant devices: the next one's previous */
	size_t nkeys;
};

static void job_free(struct list_job *job)
{
	outcome_clear(&job->all);
	outcome_clear(&job->w.acc);
	free(job->leavers);
	free(job->keys);
	free(job);
}

/* key_of: the one identifier a device is confirmed by: its MAC, else GUID, UDID, IMEI, MEID. */
static bool mcms_key_of(const struct device *d, struct ident *id)
{
	struct {
		enum ident_kind k;
		const char *v;
	} order[] = {{IDENT_MAC, d->nmacs ? d->macs[0] : ""},
		     {IDENT_GUID, d->guid},
		     {IDENT_UDID, d->udid},
		     {IDENT_IMEI, d->imei},
		     {IDENT_MEID, d->meid}};

	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		if (order[i].v[0] &&
		    ident_parse(order[i].k, order[i].v, strlen(order[i].v), id, NULL, 0) == MDM_OK)
			return true;
	return false;
}

static void job_answer(struct list_job *job, enum fail_kind fail, const char *why)
{
	struct mcms *s = job->w.s;
	struct adapter_page pg;
	unsigned long long gen;
	size_t n;

	memset(&pg, 0, sizeof(pg));
	outcome_init(&pg.oc);
	if (fail != FAIL_NONE) {
		log_warn("mcms %s: listing failed: %s", s->base.name, why);
		http_health_fail(&s->health, why);
		outcome_set(&pg.oc, OUTCOME_FAILED, fail, why);
		job->cb(job->arg, &pg);
		outcome_clear(&pg.oc);
		job_free(job);
		return;
	}
	n = job->all.ndevs;
	gen = pages_hold(&s->pages, job->all.devs, n); /* the store takes the records */
	job->all.devs = NULL;
	job->all.ndevs = job->all.cap = 0;
	log_info("mcms %s: listing of %zu devices (%s)", s->base.name, n,
		 job->noncompliant ? "non-compliant only, leavers confirmed" : "all devices");
	http_health_ok(&s->health);
	pages_page(&s->pages, gen, 0, &pg);
	job->cb(job->arg, &pg);
	outcome_clear(&pg.oc);
	job_free(job);
}

/* The keys of this non-compliant listing's devices, remembered once it succeeds. */
static enum fail_kind noncompliant_keys(struct list_job *job)
{
	job->keys = calloc(job->all.ndevs ? job->all.ndevs : 1, sizeof(*job->keys));
	if (!job->keys)
		return FAIL_INTERNAL;
	for (size_t i = 0; i < job->all.ndevs; i++)
		if (mcms_key_of(&job->all.devs[i], &job->keys[job->nkeys]))
			job->nkeys++;
	return FAIL_NONE;
}

/* Only a listing that succeeded replaces the previous set: after a failure, the next listing
 * still confirms every device that left it. */
static void remember_noncompliant(struct list_job *job)
{
	struct mcms *s = job->w.s;

	pthread_mutex_lock(&s->mu);
	free(s->prev_nc);
	s->prev_nc = job->keys;
	s->nprev_nc = job->nkeys;
	job->keys = NULL;
	pthread_mutex_unlock(&s->mu);
}

static void confirm_next(struct list_job *job);

/* A leaver's individual answer: its record as the MDM gives it, or "not registered". */
static void confirm_done(struct walk *w, enum fail_kind fail, const char *why)
{
	struct list_job *job = w->ctx;
	const struct ident *id = &job->leavers[job->at];
	char msg[256];
	struct device d;
	enum mdm_err e = MDM_OK;

	if (fail != FAIL_NONE || w->not_applicable) {
		err_why(msg, sizeof(msg), "confirming %s %s (left the non-compliant list): %s",
			ident_kind_name(id->kind), id->value,
			fail != FAIL_NONE ? why : "the MDM cannot be asked by it");
		job_answer(job, fail != FAIL_NONE ? fail : FAIL_PROTOCOL, msg);
		return;
	}
	for (size_t i = 0; i < w->acc.ndevs && e == MDM_OK; i++) {
		carry_ident(&w->acc.devs[i], id);
		e = outcome_add(&job->all, &w->acc.devs[i]);
	}
	if (w->acc.ndevs == 0) {
		/* Absence is not compliance: gone from the MDM, it is reported unregistered. */
		memset(&d, 0, sizeof(d));
		str_copy(d.source, sizeof(d.source), w->s->base.name);
		carry_ident(&d, id);
		if (!d.vendor_id[0])
			str_copy(d.vendor_id, sizeof(d.vendor_id), id->value);
		d.registered = TRI_FALSE;
		e = outcome_add(&job->all, &d);
		log_info("mcms %s: %s %s left the non-compliant list and is no longer enrolled",
			 w->s->base.name, ident_kind_name(id->kind), id->value);
	}
	outcome_clear(&w->acc);
	if (e != MDM_OK) {
		job_answer(job, FAIL_INTERNAL, "out of memory");
		return;
	}
	job->at++;
	confirm_next(job);
}

static void confirm_next(struct list_job *job)
{
	const struct ident *id;

	if (job->at >= job->nleavers) {
		int64_t now = clock_wall_ms();

		for (size_t i = 0; i < job->all.ndevs; i++)
			job->all.devs[i].fetched_at_ms = now;
		remember_noncompliant(job);
		job_answer(job, FAIL_NONE, NULL);
		return;
	}
	id = &job->leavers[job->at];
	walk_init(&job->w, job->w.s, criterion_of(id->kind), id->value, true, 0, confirm_done, job);
	walk_begin(&job->w, 0);
}

/* find_leavers: the previous non-compliant devices no record of the new listing carries. */
static enum fail_kind find_leavers(struct list_job *job)
{
	struct mcms *s = job->w.s;

	pthread_mutex_lock(&s->mu);
	job->leavers = calloc(s->nprev_nc ? s->nprev_nc : 1, sizeof(*job->leavers));
	for (size_t i = 0; job->leavers && i < s->nprev_nc; i++) {
		bool listed = false;

		for (size_t j = 0; j < job->all.ndevs && !listed; j++)
			listed = device_matches(&job->all.devs[j], &s->prev_nc[i]);
		if (!listed)
			job->leavers[job->nleavers++] = s->prev_nc[i];
	}
	pthread_mutex_unlock(&s->mu);
	return job->leavers ? FAIL_NONE : FAIL_INTERNAL;
}

static void list_walk_done(struct walk *w, enum fail_kind fail, const char *why);

static void list_noncompliant(struct list_job *job)
{
	job->noncompliant = true;
	outcome_clear(&job->w.acc); /* what a refused full listing had gathered */
	walk_init(&job->w, job->w.s, MCMS_BY_COMPLIANCE, "false", true, 0, list_walk_done, job);
	walk_begin(&job->w, 0);
}

static void list_walk_done(struct walk *w, enum fail_kind fail, const char *why)
{
	struct list_job *job = w->ctx;
	struct mcms *s = w->s;

	if (fail != FAIL_NONE && !job->noncompliant && s->mode == MCMS_LIST_AUTO &&
	    (w->status == 403 || w->status == 400)) {
		pthread_mutex_lock(&s->mu);
		s->noncompliant_only = true;
		pthread_mutex_unlock(&s->mu);
		log_warn("mcms %s: the MDM refuses a full listing (%ld): listing non-compliant "
			 "devices only from now on, confirming each device that leaves that list",
			 s->base.name, w->status);
		list_noncompliant(job);
		return;
	}
	if (fail != FAIL_NONE) {
		job_answer(job, fail, why);
		return;
	}
	outcome_move(&job->all, &w->acc);
	if (!job->noncompliant) {
		int64_t now = clock_wall_ms();

		for (size_t i = 0; i < job->all.ndevs; i++)
			job->all.devs[i].fetched_at_ms = now;
		job_answer(job, FAIL_NONE, NULL);
		return;
	}
	if (find_leavers(job) != FAIL_NONE || noncompliant_keys(job) != FAIL_NONE) {
		job_answer(job, FAIL_INTERNAL, "out of memory");
		return;
	}
	if (job->nleavers)
		log_info("mcms %s: %zu devices left the non-compliant list: confirming each",
			 s->base.name, job->nleavers);
	job->at = 0;
	confirm_next(job);
}

static enum mdm_err mcms_list(struct adapter *a, const char *cursor, adapter_list_cb cb, void *arg)
{
	struct mcms *s = a->priv;
	struct list_job *job;
	bool nc;

	if (!cb)
		return MDM_ERR_INVALID;
	if (cursor && cursor[0]) {
		pages_answer(&s->pages, cursor, cb, arg);
		return MDM_OK;
	}
	job = calloc(1, sizeof(*job));
	if (!job)
		return MDM_ERR_NOMEM;
	job->cb = cb;
	job->arg = arg;
	outcome_init(&job->all);
	pthread_mutex_lock(&s->mu);
	nc = s->mode == MCMS_LIST_NONCOMPLIANT || s->noncompliant_only;
	pthread_mutex_unlock(&s->mu);
	walk_init(&job->w, s, MCMS_BY_NONE, NULL, true, 0, list_walk_done, job);
	if (nc) {
		list_noncompliant(job);
		return MDM_OK;
	}
	walk_begin(&job->w, 0);
	return MDM_OK;
}

/* --- test_connection -------------------------------------------------------------------------- */

struct conn_test {
	struct mcms *s;
	adapter_test_cb cb;
	void *arg;
};

/* The host[:port] of the origin, for messages. */
static const char *host_of(const struct mcms *s)
{
	return s->origin + 8;
}

/* A transport failure in the seed's words; the engine's reason is kept. */
static void test_transport_msg(const struct mcms *s, const struct http_result *res, char *msg,
			       size_t sz)
{
	switch (res->fail) {
	case FAIL_UNREACHABLE:
	case FAIL_TIMEOUT:
		err_why(msg, sz,
			"cannot reach the MDM at %s: check routing and the firewall between the "
			"gateway and the MDM; outbound HTTPS to it must be allowed (%s)",
			host_of(s), res->why);
		break;
	case FAIL_TLS:
		if (strstr(res->why, "expired"))
			err_why(msg, sz,
				"the MDM's certificate has expired: the MDM must renew it, then "
				"import the new certificate (or its CA) into %s (%s)",
				s->ca_file, res->why);
		else if (strncmp(res->why, "certificate not trusted", 23) == 0)
			err_why(
			    msg, sz,
			    "the MDM's certificate is not trusted: import the MDM's certificate "
			    "or its CA into %s (see certs/README) (%s)",
			    s->ca_file, res->why);
		else
			err_why(msg, sz, "TLS with %s failed: %s", host_of(s), res->why);
		break;
	default:
		err_why(msg, sz, "%s: %s", fail_kind_name(res->fail), res->why);
		break;
	}
}

/* test_status_msg: the message for a status other than 200. */
static void test_status_msg(const struct mcms *s, const struct http_result *res, char *msg,
			    size_t sz)
{
	char m[160];

	switch (res->status) {
	case 401:
		err_why(
		    msg, sz,
		    "HTTP 401: wrong user name or password (or a valid MDM site that is not the "
		    "one the API account is on)");
		break;
	case 403:
		err_why(msg, sz, "HTTP 403: the API account lacks the REST API MDM role");
		break;
	case 404:
		err_why(
		    msg, sz,
		    "HTTP 404: an instance name was configured when not needed, or the instance "
		    "is wrong (instance: %s%s%s)",
		    s->instance[0] ? "\"" : "", s->instance[0] ? s->instance : "none",
		    s->instance[0] ? "\"" : "");
		break;
	case 508:
		body_message(res, m, sizeof(m));
		err_why(msg, sz,
			"HTTP 508: loop: the upstream gateway already saw this request (it passed "
			"through this gateway, or too many hops)%s%s",
			m[0] ? ": " : "", m);
		break;
	default:
		err_why(msg, sz, "HTTP %ld from the MDM's mdminfo at %s", res->status, host_of(s));
		break;
	}
}

static void test_on_answer(struct http_result *res, void *arg)
{
	struct conn_test *t = arg;
	struct mcms *s = t->s;
	struct adapter_test out;
	struct mcms_info info;
	char why[256] = "";

	note_throttle(s, res);
	memset(&out, 0, sizeof(out));
	if (res->fail != FAIL_NONE) {
		test_transport_msg(s, res, out.message, sizeof(out.message));
	} else if (res->status != 200) {
		test_status_msg(s, res, out.message, sizeof(out.message));
	} else if (info_from(s, res, &info, why, sizeof(why)) != FAIL_NONE) {
		err_why(out.message, sizeof(out.message),
			"the server answered, but not as an ISE MDM API server: %s", why);
	} else {
		size_t n;

		out.ok = true;
		n = (size_t)snprintf(out.message, sizeof(out.message),
				     "Connection to server is successful: API version %d, "
				     "query_max_size %u",
				     info.api_version, info.query_max_size);
		if (info.vendor[0] && n < sizeof(out.message))
			n += (size_t)snprintf(out.message + n, sizeof(out.message) - n,
					      ", vendor %s", info.vendor);
		if (info.product_name[0] && n < sizeof(out.message))
			snprintf(out.message + n, sizeof(out.message) - n, ", product %s%s%s",
				 info.product_name, info.product_version[0] ? " " : "",
				 info.product_version);
		pthread_mutex_lock(&s->mu);
		s->info = info;
		s->have_info = true;
		s->info_gen++;
		pthread_mutex_unlock(&s->mu);
	}
	buf_free(&res->body);
	http_health_note(&s->health, out.ok, out.message);
	t->cb(t->arg, &out);
	free(t);
}

static enum mdm_err mcms_test(struct adapter *a, adapter_test_cb cb, void *arg)
{
	struct mcms *s = a->priv;
	struct conn_test *t;
	struct adapter_test out;
	enum fail_kind f;

	if (!cb)
		return MDM_ERR_INVALID;
	t = calloc(1, sizeof(*t));
	if (!t)
		return MDM_ERR_NOMEM;
	t->s = s;
	t->cb = cb;
	t->arg = arg;
	memset(&out, 0, sizeof(out));
	f = mdminfo_send(s, clock_mono_ms() + TEST_MS, test_on_answer, t, out.message,
			 sizeof(out.message));
	if (f != FAIL_NONE) {
		http_health_fail(&s->health, out.message);
		cb(arg, &out);
		free(t);
	}
	return MDM_OK;
}

/* --- health, destroy, create ------------------------------------------------------------------ */

static void mcms_health(struct adapter *a, struct adapter_health *out)
{
	struct mcms *s = a->priv;

	http_health_report(&s->health, s->http, out);
}

/* mcms_free: the client first (remote.h), then the rest; also what a failed create undoes. */
static void mcms_free(struct mcms *s)
{
	remote_close(&s->http, &s->pages, &s->health);
	free(s->prev_nc);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

static void mcms_destroy(struct adapter *a)
{
	mcms_free(a->priv);
}

static const struct adapter_ops mcms_ops = {
    .type = "mcms",
    .lookup = mcms_lookup,
    .list = mcms_list,
    .action = mcms_action,
    .test_connection = mcms_test,
    .health = mcms_health,
    .destroy = mcms_destroy,
};

/* An origin: "https://host[:port]", nothing after it but slashes. */
static bool is_origin(const char *url)
{
	const char *auth, *end;

	if (!url || strncasecmp(url, "https://", 8) != 0 || strlen(url) > BASE_MAX)
		return false;
	auth = url + 8;
	end = auth + strcspn(auth, "/?#@ ");
	if (end == auth || *end == '?' || *end == '#' || *end == '@' || *end == ' ')
		return false;
	while (*end == '/')
		end++;
	return *end == '\0';
}

static bool instance_ok(const char *in)
{
	if (!in)
		return true;
	if (strlen(in) > INSTANCE_MAX)
		return false;
	for (; *in; in++)
		if (!isalnum((unsigned char)*in) && !strchr("-._~/", *in))
			return false;
	return true;
}

static enum mdm_err check_config(const struct mcms_config *cfg, char *why, size_t whysz)
{
	if (!cfg->name || !cfg->name[0] ||
	    strlen(cfg->name) >= sizeof(((struct adapter *)0)->name)) {
		err_why(why, whysz, "mcms: a name of 1 to 63 bytes is required");
		return MDM_ERR_CONFIG;
	}
	if (!is_origin(cfg->url)) {
		err_why(why, whysz,
			"mcms %s: url must be an https:// origin (scheme, host, optional port; no "
			"path) of at most %d bytes",
			cfg->name, BASE_MAX);
		return MDM_ERR_CONFIG;
	}
	if (!instance_ok(cfg->instance)) {
		err_why(why, whysz,
			"mcms %s: instance may hold only A-Z a-z 0-9 - . _ ~ / (at most %d bytes)",
			cfg->name, INSTANCE_MAX);
		return MDM_ERR_CONFIG;
	}
	if (cfg->http.ca_file && strlen(cfg->http.ca_file) >= 1024) {
		err_why(why, whysz, "mcms %s: ca_file path too long", cfg->name);
		return MDM_ERR_CONFIG;
	}
	if (cfg->listing > MCMS_LIST_NONCOMPLIANT) {
		err_why(why, whysz, "mcms %s: unknown listing mode", cfg->name);
		return MDM_ERR_CONFIG;
	}
	return MDM_OK;
}

static void copy_config(struct mcms *s, const struct mcms_config *cfg)
{
	size_t n;
	const char *in = cfg->instance ? cfg->instance : "";

	str_copy(s->base.name, sizeof(s->base.name), cfg->name);
	str_copy(s->origin, sizeof(s->origin), cfg->url);
	for (n = strlen(s->origin); n > 8 && s->origin[n - 1] == '/'; n--)
		s->origin[n - 1] = '\0';
	while (*in == '/')
		in++;
	str_copy(s->instance, sizeof(s->instance), in);
	for (n = strlen(s->instance); n > 0 && s->instance[n - 1] == '/'; n--)
		s->instance[n - 1] = '\0';
	str_copy(s->ca_file, sizeof(s->ca_file), cfg->http.ca_file ? cfg->http.ca_file : "");
	s->max_body = cfg->http.max_body ? cfg->http.max_body : DEF_MAX_BODY;
	s->list_timeout_ms = cfg->list_timeout_ms > 0 ? cfg->list_timeout_ms : DEF_LIST_MS;
	s->mode = cfg->listing;
	s->hops = cfg->hops;
	s->hops_arg = cfg->hops_arg;
}

enum mdm_err mcms_create(struct http_engine *e, const struct mcms_config *cfg, struct adapter **out,
			 char *why, size_t whysz)
{
	struct http_client_config cc;
	struct mcms *s;
	char hwhy[256] = "";

	if (!out)
		return MDM_ERR_INVALID;
	*out = NULL;
	if (!e || !cfg) {
		err_why(why, whysz, "mcms: no engine or no configuration");
		return MDM_ERR_INVALID;
	}
	if (check_config(cfg, why, whysz) != MDM_OK)
		return MDM_ERR_CONFIG;
	s = calloc(1, sizeof(*s));
	if (!s || pthread_mutex_init(&s->mu, NULL) != 0) {
		free(s);
		err_why(why, whysz, "mcms %s: out of memory", cfg->name);
		return MDM_ERR_NOMEM;
	}
	if (remote_open(&s->pages, &s->health) != MDM_OK) {
		pthread_mutex_destroy(&s->mu);
		free(s);
		err_why(why, whysz, "mcms %s: out of memory", cfg->name);
		return MDM_ERR_NOMEM;
	}
	s->base.ops = &mcms_ops;
	s->base.priv = s;
	copy_config(s, cfg);
	cc = cfg->http;
	cc.name = cfg->name;
	cc.auth = cc.user ? HTTP_AUTH_BASIC : HTTP_AUTH_NONE; /* the API is Basic only */
	s->http = http_client_create(e, &cc, hwhy, sizeof(hwhy));
	if (!s->http) {
		err_why(why, whysz, "mcms %s: %s", cfg->name, hwhy);
		mcms_free(s);
		return MDM_ERR_CONFIG;
	}
	log_info("mcms %s: ISE MDM API at %s%s%s (listing: %s)", s->base.name, s->origin,
		 s->instance[0] ? " instance " : "", s->instance,
		 s->mode == MCMS_LIST_ALL	     ? "all"
		 : s->mode == MCMS_LIST_NONCOMPLIANT ? "noncompliant_only"
						     : "auto");
	*out = &s->base;
	return MDM_OK;
}
