/* sccm: see sccm.h. */
#include "sccm.h"

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
#define DEF_PAGE_ROWS 10000
#define DEF_LIST_MS 30000
#define DEF_MAX_BODY (1024 * 1024) /* the HTTP engine's own default cap */
#define CLASS_ROWS_MAX 1000000	   /* rows of one class a listing accepts: bounds memory */
#define TEST_MS 10000
#define NCLASSES 4
/* A GUID SCCM never hands out: the connection test's query answers zero rows, cheaply. */
#define TEST_GUID "GUID:00000000-0000-0000-0000-000000000000"

/* The joined bulk listing, before it is held as a generation (pages.h). */
struct listing {
	struct device *devs;
	size_t n;
};

struct sccm {
	struct adapter base;
	struct http_client *http;
	char base_url[BASE_MAX + 1];
	char origin[BASE_MAX + 8]; /* "https://host:port", lower case: nextLinks must stay on it */
	char host[BASE_MAX + 1];   /* "host[:port]" as configured, for messages */
	char ca_file[1024];
	char **only_ci;
	size_t nonly_ci;
	bool no_rows_compliant;
	size_t page_rows, max_body;
	int64_t list_timeout_ms;
	struct pages pages;	   /* the latest listing; older generations are gone */
	struct http_health health; /* last success and failure, for the health op */
};

/* --- answers into pages ----------------------------------------------------------------------- */

/* An HTTP status other than 200 as a fail kind and a reason naming the class. */
static enum fail_kind status_fail(long status, const char *what, char *why, size_t whysz)
{
	switch (status) {
	case 401:
		err_why(why, whysz,
			"%s: SCCM refused the credentials (401): wrong user name or password",
			what);
		return FAIL_AUTH;
	case 403:
		err_why(why, whysz, "%s: account lacks a ConfigMgr administrative role (403)",
			what);
		return FAIL_AUTH;
	case 404:
		err_why(why, whysz, "%s: no AdminService at this path (404)", what);
		return FAIL_PROTOCOL;
	case 429:
	case 503:
		err_why(why, whysz, "%s: SCCM is throttling or overloaded (%ld)", what, status);
		return FAIL_THROTTLED;
	default:
		break;
	}
	if (status >= 500) {
		err_why(why, whysz, "%s: SCCM answered %ld", what, status);
		return FAIL_UNREACHABLE;
	}
	err_why(why, whysz, "%s: unexpected HTTP status %ld", what, status);
	return FAIL_PROTOCOL;
}

/*
 * sccm_take_page: res (an answer for class cls) parsed into page; FAIL_NONE, or the fail kind with
 * a reason naming the class. The body stays the caller's to free.
 */
static enum fail_kind sccm_take_page(const struct sccm *s, const struct http_result *res,
				     enum sccm_class cls, struct sccm_page *page, char *why,
				     size_t whysz)
{
	const char *what = sccm_class_name(cls);
	char pwhy[224] = "";
	enum mdm_err e;

	if (res->fail != FAIL_NONE) {
		err_why(why, whysz, "%s: %s", what, res->why);
		return res->fail;
	}
	if (res->status != 200)
		return status_fail(res->status, what, why, whysz);
	e = sccm_odata_page(res->body.mem ? res->body.mem : "", res->body.len, cls, s->max_body,
			    s->page_rows, page, pwhy, sizeof(pwhy));
	if (e == MDM_OK)
		return FAIL_NONE;
	if (e == MDM_ERR_NOMEM) {
		err_why(why, whysz, "%s: out of memory", what);
		return FAIL_INTERNAL;
	}
	/* The parser names the class in row errors; say it once. */
	if (strncmp(pwhy, what, strlen(what)) == 0)
		err_why(why, whysz, "%s", pwhy);
	else
		err_why(why, whysz, "%s: %s", what, pwhy);
	return FAIL_PROTOCOL;
}

/* --- URLs ------------------------------------------------------------------------------------ */

/*
 * origin_of: "https://host:port" of url in lower case, the port made explicit (443), and the
 * "host[:port]" part as written into host (may be NULL). MDM_ERR_INVALID for anything but an
 * https URL with a host and no user info.
 */
static enum mdm_err origin_of(const char *url, char *out, size_t outsz, char *host, size_t hostsz)
{
	const char *auth, *end, *close;
	size_t n;

	if (strncasecmp(url, "https://", 8) != 0)
		return MDM_ERR_INVALID;
	auth = url + 8;
	end = auth + strcspn(auth, "/?#");
	n = (size_t)(end - auth);
	if (n == 0 || memchr(auth, '@', n) || n + 16 > outsz)
		return MDM_ERR_INVALID;
	if (host && str_copyn(host, hostsz, auth, n) != MDM_OK)
		return MDM_ERR_TOOBIG;
	close = memchr(auth, ']', n); /* an IPv6 literal holds colons of its own */
	snprintf(out, outsz, "https://%.*s", (int)n, auth);
	if (!memchr(close ? close : auth, ':', (size_t)(end - (close ? close : auth))))
		snprintf(out + 8 + n, outsz - 8 - n, ":443");
	for (char *p = out; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return MDM_OK;
}

/* Whether a nextLink stays on the configured scheme, host and port (credentials go with it). */
static bool same_origin(const struct sccm *s, const char *link)
{
	char o[BASE_MAX + 8];

	return origin_of(link, o, sizeof(o), NULL, 0) == MDM_OK && strcmp(o, s->origin) == 0;
}

/* --- parallel requests ----------------------------------------------------------------------- */

/*
 * A step's requests sent side by side (a lookup's classes, a listing's classes): the first
 * failure of any of them is kept, and whichever ends last carries on. Its own mutex.
 */
struct inflight {
	pthread_mutex_t mu;
	unsigned pending;    /* requests not over yet, +1 while they are being started */
	enum fail_kind fail; /* the first failure of any request */
	char why[256];
};

/* inflight_end: one request is over (fail FAIL_NONE: fine); true for the last one, whose caller
 * owns what the requests shared from then on. */
static bool inflight_end(struct inflight *r, enum fail_kind fail, const char *why)
{
	bool last;

	pthread_mutex_lock(&r->mu);
	if (fail != FAIL_NONE && r->fail == FAIL_NONE) {
		r->fail = fail;
		str_copy(r->why, sizeof(r->why), why);
	}
	last = --r->pending == 0;
	pthread_mutex_unlock(&r->mu);
	return last;
}

/* --- lookup ---------------------------------------------------------------------------------- */

struct sccm_query;

/* One request of a lookup; its page lands in pages[cls]. */
struct sub {
	struct sccm_query *lk;
	enum sccm_class cls;
};

struct sccm_query {
	struct sccm *s;
	adapter_lookup_cb cb;
	void *arg;
	int64_t deadline;
	struct ident id;
	int step;	      /* 1: which resource; 2: its baselines and check-in */
	long long rid;	      /* the chosen resource */
	int sys_idx;	      /* its row in pages[SCCM_SYSTEM], -1 when known by NIC rows only */
	struct inflight reqs; /* the requests of this step */
	struct sccm_page pages[NCLASSES];
	struct sub subs[NCLASSES];
};

static void sccm_query_step_done(struct sccm_query *lk);

static void sccm_query_free(struct sccm_query *lk)
{
	for (int i = 0; i < NCLASSES; i++)
		sccm_page_free(&lk->pages[i]);
	pthread_mutex_destroy(&lk->reqs.mu);
	free(lk);
}

/* sccm_query_release: one request of the step is over (fail FAIL_NONE: fine); the last one moves
 * the lookup on. Whoever drops the count to zero owns the lookup from then on. */
static void sccm_query_release(struct sccm_query *lk, enum fail_kind fail, const char *why)
{
	if (inflight_end(&lk->reqs, fail, why))
		sccm_query_step_done(lk);
}

static void sccm_query_on_answer(struct http_result *res, void *arg)
{
	struct sub *sb = arg;
	struct sccm_query *lk = sb->lk;
	struct sccm_page *page = &lk->pages[sb->cls];
	char why[256] = "";
	enum fail_kind f = sccm_take_page(lk->s, res, sb->cls, page, why, sizeof(why));

	buf_free(&res->body);
	/* One MAC or GUID is a handful of rows: a paged answer means something is wrong. */
	if (f == FAIL_NONE && page->next_link[0]) {
		err_why(why, sizeof(why), "%s: answer unexpectedly paged",
			sccm_class_name(sb->cls));
		f = FAIL_PROTOCOL;
	}
	sccm_query_release(lk, f, why);
}

/* sccm_query_send: one request of the step; a request that cannot be queued counts as failed. */
static void sccm_query_send(struct sccm_query *lk, enum sccm_class cls, const char *url,
			    enum mdm_err built)
{
	struct http_request rq = {HTTP_GET, url, NULL, NULL, 0, 0};
	char why[256];
	enum mdm_err e = built;

	lk->subs[cls].lk = lk;
	lk->subs[cls].cls = cls;
	if (e == MDM_OK)
		e = http_request(lk->s->http, &rq, lk->deadline, sccm_query_on_answer,
				 &lk->subs[cls]);
	if (e == MDM_OK)
		return;
	err_why(why, sizeof(why), "%s: request not sent (%s)", sccm_class_name(cls), err_str(e));
	sccm_query_release(lk, FAIL_INTERNAL, why);
}

/* sccm_query_start: the step's requests at once. The extra count held meanwhile keeps an early
 * answer from finishing the step before every request is out. */
static void sccm_query_start(struct sccm_query *lk, int step)
{
	char url[SCCM_URL_MAX];
	const char *base = lk->s->base_url;
	enum mdm_err e;

	bool fetch_system = step == 2 && lk->sys_idx < 0;

	lk->step = step;
	pthread_mutex_lock(&lk->reqs.mu);
	lk->reqs.pending = (step == 1 && lk->id.kind == IDENT_GUID) ? 2 : 3;
	lk->reqs.pending += fetch_system;
	pthread_mutex_unlock(&lk->reqs.mu);
	if (step == 2) {
		/* Found through a NIC row only: ISE's join still has the system record (name,
		 * GUID, every MAC); fetch it beside the baselines. */
		if (fetch_system) {
			sccm_page_free(&lk->pages[SCCM_SYSTEM]);
			e = sccm_url_system_by_resource(base, lk->rid, url, sizeof(url));
			sccm_query_send(lk, SCCM_SYSTEM, url, e);
		}
		e = sccm_url_ci_by_resource(base, lk->rid, url, sizeof(url));
		sccm_query_send(lk, SCCM_CI_STATE, url, e);
		e = sccm_url_summary_by_resource(base, lk->rid, url, sizeof(url));
		sccm_query_send(lk, SCCM_CLIENT_SUMMARY, url, e);
	} else if (lk->id.kind == IDENT_GUID) {
		e = sccm_url_system_by_guid(base, lk->id.value, url, sizeof(url));
		sccm_query_send(lk, SCCM_SYSTEM, url, e);
	} else {
		e = sccm_url_system_by_mac(base, lk->id.value, url, sizeof(url));
		sccm_query_send(lk, SCCM_SYSTEM, url, e);
		e = sccm_url_nic_by_mac(base, lk->id.value, url, sizeof(url));
		sccm_query_send(lk, SCCM_NIC, url, e);
	}
	sccm_query_release(lk, FAIL_NONE, NULL);
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return (x > y) - (x < y);
}

/* Logs the resources the identifier also matched, besides the chosen one (spec: log it). */
static void sccm_query_log_ambiguity(const struct sccm_query *lk)
{
	const struct sccm_page *sys = &lk->pages[SCCM_SYSTEM], *nic = &lk->pages[SCCM_NIC];
	size_t n = 0, shown = 0, len = 0;
	long long *ids = malloc((sys->nrows + nic->nrows + 1) * sizeof(*ids));
	char others[160] = "";

	if (!ids)
		return;
	for (size_t i = 0; i < sys->nrows; i++)
		ids[n++] = sys->systems[i].resource_id;
	for (size_t i = 0; i < nic->nrows; i++)
		ids[n++] = nic->nics[i].resource_id;
	qsort(ids, n, sizeof(*ids), cmp_ll);
	for (size_t i = 0; i < n; i++) {
		if (ids[i] == lk->rid || (i > 0 && ids[i] == ids[i - 1]))
			continue;
		if (len < sizeof(others) - 24)
			len += (size_t)snprintf(others + len, sizeof(others) - len, "%s%lld",
						shown ? ", " : "", ids[i]);
		shown++;
	}
	free(ids);
	if (shown)
		log_info("sccm %s: %s %s matches %zu resources: chose %lld (%s), others: %s%s",
			 lk->s->base.name, ident_kind_name(lk->id.kind), lk->id.value, shown + 1,
			 lk->rid,
			 lk->sys_idx >= 0 ? "preferred SMS_R_System record"
					  : "highest ResourceID of NIC-only records",
			 others, len >= sizeof(others) - 24 ? ", ..." : "");
}

/* The resource the identifier means; false when it matched none. */
static bool sccm_query_choose(struct sccm_query *lk)
{
	const struct sccm_page *sys = &lk->pages[SCCM_SYSTEM], *nic = &lk->pages[SCCM_NIC];

	lk->sys_idx = -1;
	if (sys->nrows > 0) {
		lk->sys_idx = sccm_pick_resource(sys->systems, sys->nrows);
		lk->rid = sys->systems[lk->sys_idx].resource_id;
	} else if (nic->nrows > 0) {
		/* No SMS_R_System row for the MAC: the newest (highest) resource NICs name. */
		lk->rid = nic->nics[0].resource_id;
		for (size_t i = 1; i < nic->nrows; i++)
			if (nic->nics[i].resource_id > lk->rid)
				lk->rid = nic->nics[i].resource_id;
	} else {
		return false;
	}
	sccm_query_log_ambiguity(lk);
	return true;
}

/* The answer: the callback, the health record, then the lookup is gone. */
static void sccm_query_finish(struct sccm_query *lk, struct outcome *oc)
{
	if (oc->kind == OUTCOME_FAILED) {
		log_warn("sccm %s: lookup of %s %s failed: %s", lk->s->base.name,
			 ident_kind_name(lk->id.kind), lk->id.value, oc->why);
		http_health_fail(&lk->s->health, oc->why);
	} else {
		http_health_ok(&lk->s->health);
	}
	lk->cb(lk->arg, oc);
	outcome_clear(oc); /* in case the callback kept nothing */
	sccm_query_free(lk);
}

/* The device record of the chosen resource from the four pages. */
static enum mdm_err sccm_query_device(const struct sccm_query *lk, struct outcome *oc)
{
	const struct sccm_page *p = lk->pages;
	const struct sccm_system *sys =
	    lk->sys_idx >= 0 ? &p[SCCM_SYSTEM].systems[lk->sys_idx] : NULL;
	struct device d;
	enum mdm_err e;

	/* NIC-only: the system record fetched by ResourceId in step 2, when there is one. */
	for (size_t i = 0; !sys && i < p[SCCM_SYSTEM].nrows; i++)
		if (p[SCCM_SYSTEM].systems[i].resource_id == lk->rid)
			sys = &p[SCCM_SYSTEM].systems[i];

	e = sccm_fill_device(lk->rid, sys, p[SCCM_NIC].nics, p[SCCM_NIC].nrows,
			     p[SCCM_CLIENT_SUMMARY].summaries, p[SCCM_CLIENT_SUMMARY].nrows,
			     lk->s->base.name, &d);
	if (e != MDM_OK)
		return e;
	sccm_compliance(p[SCCM_CI_STATE].ci_states, p[SCCM_CI_STATE].nrows, lk->rid,
			(const char *const *)lk->s->only_ci, lk->s->nonly_ci,
			lk->s->no_rows_compliant, &d);
	d.fetched_at_ms = clock_wall_ms();
	return outcome_add(oc, &d);
}

static void sccm_query_step_done(struct sccm_query *lk)
{
	struct outcome oc;
	enum mdm_err e;

	outcome_init(&oc);
	if (lk->reqs.fail != FAIL_NONE) {
		outcome_set(&oc, OUTCOME_FAILED, lk->reqs.fail, lk->reqs.why);
	} else if (lk->step == 1) {
		if (sccm_query_choose(lk)) {
			sccm_query_start(lk, 2);
			return;
		}
		/* outcome_init's NOT_ENROLLED: no resource has this identifier. */
	} else {
		e = sccm_query_device(lk, &oc);
		if (e != MDM_OK) {
			outcome_clear(&oc);
			outcome_set(&oc, OUTCOME_FAILED, FAIL_INTERNAL, err_str(e));
		}
	}
	sccm_query_finish(lk, &oc);
}

static enum mdm_err sccm_lookup(struct adapter *a, const struct ident *id, int64_t deadline_ms,
				adapter_lookup_cb cb, void *arg)
{
	struct sccm *s = a->priv;
	struct sccm_query *lk;

	if (!id || !cb)
		return MDM_ERR_INVALID;
	if (id->kind != IDENT_MAC && id->kind != IDENT_GUID) {
		/* SCCM keys domain PCs by MAC and SMSUniqueIdentifier only. */
		adapter_not_applicable(cb, arg);
		return MDM_OK;
	}
	lk = calloc(1, sizeof(*lk));
	if (!lk)
		return MDM_ERR_NOMEM;
	if (pthread_mutex_init(&lk->reqs.mu, NULL) != 0) {
		free(lk);
		return MDM_ERR_NOMEM;
	}
	lk->s = s;
	lk->cb = cb;
	lk->arg = arg;
	lk->deadline = deadline_ms;
	lk->id = *id;
	sccm_query_start(lk, 1);
	return MDM_OK;
}

/* --- action ---------------------------------------------------------------------------------- */

static enum mdm_err sccm_action(struct adapter *a, const char *vendor_id, enum action_kind kind,
				adapter_action_cb cb, void *arg)
{
	struct action_result res;

	(void)a;
	(void)vendor_id;
	(void)kind;
	memset(&res, 0, sizeof(res));
	res.accepted = false;
	res.fail = FAIL_NONE;
	str_copy(res.reason, sizeof(res.reason),
		 "SCCM does not wipe or PIN-lock domain PCs; use the MDM that manages this device");
	cb(arg, &res);
	return MDM_OK;
}

/* --- bulk listing: fetch ---------------------------------------------------------------------- */

struct list_job;

/* Every page of one class, fetched in sequence, rows appended. */
struct class_fetch {
	struct list_job *job;
	enum sccm_class cls;
	char *rows; /* array of the class's row struct */
	size_t n, cap, elsz;
	char url[SCCM_URL_MAX];
};

struct list_job {
	struct sccm *s;
	adapter_list_cb cb;
	void *arg;
	struct inflight reqs; /* the classes still fetching */
	struct class_fetch f[NCLASSES];
};

static void job_done(struct list_job *job);

static const void *page_rows(const struct sccm_page *p, size_t *elsz)
{
	switch (p->cls) {
	case SCCM_SYSTEM:
		*elsz = sizeof(*p->systems);
		return p->systems;
	case SCCM_NIC:
		*elsz = sizeof(*p->nics);
		return p->nics;
	case SCCM_CI_STATE:
		*elsz = sizeof(*p->ci_states);
		return p->ci_states;
	default:
		*elsz = sizeof(*p->summaries);
		return p->summaries;
	}
}

/* Appends a page's rows to the class's array, within CLASS_ROWS_MAX. */
static enum fail_kind fetch_append(struct class_fetch *f, const struct sccm_page *p, char *why,
				   size_t whysz)
{
	size_t elsz;
	const void *rows = page_rows(p, &elsz);
	char *grown;
	size_t cap;

	if (p->nrows == 0)
		return FAIL_NONE;
	if (p->nrows > CLASS_ROWS_MAX - f->n) {
		err_why(why, whysz, "%s: more than %d rows: refused to bound memory",
			sccm_class_name(f->cls), CLASS_ROWS_MAX);
		return FAIL_PROTOCOL;
	}
	if (f->n + p->nrows > f->cap) {
		cap = f->cap ? f->cap : 256;
		while (cap < f->n + p->nrows)
			cap *= 2;
		grown = realloc(f->rows, cap * elsz);
		if (!grown) {
			err_why(why, whysz, "%s: out of memory", sccm_class_name(f->cls));
			return FAIL_INTERNAL;
		}
		f->rows = grown;
		f->cap = cap;
	}
	f->elsz = elsz;
	memcpy(f->rows + f->n * elsz, rows, p->nrows * elsz);
	f->n += p->nrows;
	return FAIL_NONE;
}

/* job_release: one class is over; the last one joins and answers. */
static void job_release(struct list_job *job, enum fail_kind fail, const char *why)
{
	if (inflight_end(&job->reqs, fail, why))
		job_done(job);
}

static bool job_failed(struct list_job *job)
{
	bool failed;

	pthread_mutex_lock(&job->reqs.mu);
	failed = job->reqs.fail != FAIL_NONE;
	pthread_mutex_unlock(&job->reqs.mu);
	return failed;
}

static void fetch_on_page(struct http_result *res, void *arg);

/* fetch_send: the request for f->url; FAIL_NONE when it is on its way. */
static enum fail_kind fetch_send(struct class_fetch *f, char *why, size_t whysz)
{
	struct sccm *s = f->job->s;
	struct http_request rq = {HTTP_GET, f->url, NULL, NULL, 0, 0};
	enum mdm_err e =
	    http_request(s->http, &rq, clock_mono_ms() + s->list_timeout_ms, fetch_on_page, f);

	if (e == MDM_OK)
		return FAIL_NONE;
	err_why(why, whysz, "%s: request not sent (%s)", sccm_class_name(f->cls), err_str(e));
	return FAIL_INTERNAL;
}

/* After a good page: the next one when there is one (same origin only), else FAIL_NONE and
 * *more false. */
static enum fail_kind fetch_next(struct class_fetch *f, const char *link, bool *more, char *why,
				 size_t whysz)
{
	*more = false;
	if (!link[0] || job_failed(f->job))
		return FAIL_NONE; /* done, or another class failed: the listing is lost anyway */
	if (!same_origin(f->job->s, link)) {
		err_why(why, whysz, "%s: nextLink leaves %s: %.120s", sccm_class_name(f->cls),
			f->job->s->origin, link);
		return FAIL_PROTOCOL;
	}
	str_copy(f->url, sizeof(f->url), link);
	*more = true;
	return fetch_send(f, why, whysz);
}

static void fetch_on_page(struct http_result *res, void *arg)
{
	struct class_fetch *f = arg;
	struct sccm_page page;
	char why[256] = "";
	bool more = false;
	enum fail_kind fail;

	memset(&page, 0, sizeof(page));
	fail = sccm_take_page(f->job->s, res, f->cls, &page, why, sizeof(why));
	buf_free(&res->body);
	if (fail == FAIL_NONE)
		fail = fetch_append(f, &page, why, sizeof(why));
	if (fail == FAIL_NONE)
		fail = fetch_next(f, page.next_link, &more, why, sizeof(why));
	sccm_page_free(&page);
	if (fail != FAIL_NONE || !more)
		job_release(f->job, fail, why);
}

static void job_free(struct list_job *job)
{
	for (int i = 0; i < NCLASSES; i++)
		free(job->f[i].rows);
	pthread_mutex_destroy(&job->reqs.mu);
	free(job);
}

/* --- bulk listing: join and pages ------------------------------------------------------------- */

/* A row's ResourceID and position: sorted by both, each resource's rows keep their order. */
struct rkey {
	long long id;
	size_t idx;
};

static int rkey_cmp(const void *a, const void *b)
{
	const struct rkey *x = a, *y = b;

	if (x->id != y->id)
		return (x->id > y->id) - (x->id < y->id);
	return (x->idx > y->idx) - (x->idx < y->idx);
}

static long long row_id(const struct class_fetch *f, size_t i)
{
	const char *row = f->rows + i * f->elsz;

	/* resource_id is the first member of every row struct. */
	switch (f->cls) {
	case SCCM_SYSTEM:
		return ((const struct sccm_system *)(const void *)row)->resource_id;
	case SCCM_NIC:
		return ((const struct sccm_nic *)(const void *)row)->resource_id;
	case SCCM_CI_STATE:
		return ((const struct sccm_ci_state *)(const void *)row)->resource_id;
	default:
		return ((const struct sccm_client_summary *)(const void *)row)->resource_id;
	}
}

/* Walks one class's rows in ResourceID order, copying a resource's rows into scratch. */
struct group {
	const struct class_fetch *f;
	struct rkey *keys;
	size_t at;
	char *scratch;
	size_t cap, n; /* rows of the current group in scratch */
};

static enum mdm_err group_init(struct group *g, const struct class_fetch *f)
{
	memset(g, 0, sizeof(*g));
	g->f = f;
	g->keys = malloc((f->n ? f->n : 1) * sizeof(*g->keys));
	if (!g->keys)
		return MDM_ERR_NOMEM;
	for (size_t i = 0; i < f->n; i++) {
		g->keys[i].id = row_id(f, i);
		g->keys[i].idx = i;
	}
	qsort(g->keys, f->n, sizeof(*g->keys), rkey_cmp);
	return MDM_OK;
}

static void group_free(struct group *g)
{
	free(g->keys);
	free(g->scratch);
}

/* The lowest ResourceID not consumed yet; false when none is left. */
static bool group_head(const struct group *g, long long *id)
{
	if (g->at >= g->f->n)
		return false;
	*id = g->keys[g->at].id;
	return true;
}

/* group_take: skips rows below id, copies those of id (in their original order) to scratch. */
static enum mdm_err group_take(struct group *g, long long id)
{
	size_t elsz = g->f->elsz;

	g->n = 0;
	while (g->at < g->f->n && g->keys[g->at].id < id)
		g->at++;
	for (; g->at < g->f->n && g->keys[g->at].id == id; g->at++) {
		if (g->n == g->cap) {
			size_t cap = g->cap ? g->cap * 2 : 8;
			char *p = realloc(g->scratch, cap * elsz);

			if (!p)
				return MDM_ERR_NOMEM;
			g->scratch = p;
			g->cap = cap;
		}
		memcpy(g->scratch + g->n * elsz, g->f->rows + g->keys[g->at].idx * elsz, elsz);
		g->n++;
	}
	return MDM_OK;
}

/* The distinct ResourceIDs named by SMS_R_System or NETWORK_ADAPTER rows. */
static size_t count_resources(const struct group *sys, const struct group *nic)
{
	size_t i = 0, j = 0, n = 0;
	long long last = -1;

	while (i < sys->f->n || j < nic->f->n) {
		long long id;

		if (j >= nic->f->n || (i < sys->f->n && sys->keys[i].id <= nic->keys[j].id))
			id = sys->keys[i++].id;
		else
			id = nic->keys[j++].id;
		if (n == 0 || id != last)
			n++;
		last = id;
	}
	return n;
}

/* One device from the current groups of the four classes. */
static enum mdm_err join_one(const struct sccm *s, long long id, struct group g[NCLASSES],
			     int64_t now, struct device *d)
{
	const struct sccm_system *sys =
	    g[SCCM_SYSTEM].n ? (const void *)g[SCCM_SYSTEM].scratch : NULL;
	enum mdm_err e;

	e = sccm_fill_device(id, sys, (const void *)g[SCCM_NIC].scratch, g[SCCM_NIC].n,
			     (const void *)g[SCCM_CLIENT_SUMMARY].scratch, g[SCCM_CLIENT_SUMMARY].n,
			     s->base.name, d);
	if (e != MDM_OK)
		return e;
	sccm_compliance((const void *)g[SCCM_CI_STATE].scratch, g[SCCM_CI_STATE].n, id,
			(const char *const *)s->only_ci, s->nonly_ci, s->no_rows_compliant, d);
	d->fetched_at_ms = now;
	return MDM_OK;
}

/* join: every resource of SMS_R_System or NETWORK_ADAPTER, in ResourceID order. */
static enum mdm_err join(const struct sccm *s, struct class_fetch f[NCLASSES], struct listing *out)
{
	struct group g[NCLASSES];
	int64_t now = clock_wall_ms();
	enum mdm_err e = MDM_OK;
	int ninit;
	size_t n;

	memset(g, 0, sizeof(g));
	for (ninit = 0; ninit < NCLASSES && e == MDM_OK; ninit++)
		e = group_init(&g[ninit], &f[ninit]);
	if (e != MDM_OK)
		goto out;
	n = count_resources(&g[SCCM_SYSTEM], &g[SCCM_NIC]);
	out->devs = calloc(n ? n : 1, sizeof(*out->devs));
	if (!out->devs) {
		e = MDM_ERR_NOMEM;
		goto out;
	}
	for (out->n = 0; out->n < n && e == MDM_OK; out->n++) {
		long long id = 0, nid = 0;
		bool has = group_head(&g[SCCM_SYSTEM], &id);

		if (group_head(&g[SCCM_NIC], &nid) && (!has || nid < id))
			id = nid;
		for (int c = 0; c < NCLASSES && e == MDM_OK; c++)
			e = group_take(&g[c], id);
		if (e == MDM_OK)
			e = join_one(s, id, g, now, &out->devs[out->n]);
	}
out:
	for (int c = 0; c < ninit; c++)
		group_free(&g[c]);
	return e;
}

static void listing_free(struct listing *l)
{
	if (!l)
		return;
	free(l->devs);
	free(l);
}

static void job_answer(struct list_job *job, struct adapter_page *pg)
{
	if (pg->oc.kind == OUTCOME_FAILED) {
		log_warn("sccm %s: listing failed: %s", job->s->base.name, pg->oc.why);
		http_health_fail(&job->s->health, pg->oc.why);
	} else {
		http_health_ok(&job->s->health);
	}
	job->cb(job->arg, pg);
	outcome_clear(&pg->oc);
	job_free(job);
}

static void job_done(struct list_job *job)
{
	struct adapter_page pg;
	struct listing *l;
	enum mdm_err e = MDM_ERR_NOMEM;

	memset(&pg, 0, sizeof(pg));
	outcome_init(&pg.oc);
	if (job->reqs.fail != FAIL_NONE) {
		outcome_set(&pg.oc, OUTCOME_FAILED, job->reqs.fail, job->reqs.why);
		job_answer(job, &pg);
		return;
	}
	l = calloc(1, sizeof(*l));
	if (l)
		e = join(job->s, job->f, l);
	if (e != MDM_OK) {
		listing_free(l);
		outcome_set(&pg.oc, OUTCOME_FAILED, FAIL_INTERNAL, err_str(e));
		job_answer(job, &pg);
		return;
	}
	log_info("sccm %s: listing of %zu devices (%zu systems, %zu NIC, %zu baseline and %zu "
		 "client summary rows)",
		 job->s->base.name, l->n, job->f[SCCM_SYSTEM].n, job->f[SCCM_NIC].n,
		 job->f[SCCM_CI_STATE].n, job->f[SCCM_CLIENT_SUMMARY].n);
	pages_page(&job->s->pages, pages_hold(&job->s->pages, l->devs, l->n), 0, &pg);
	free(l); /* its records are the store's now */
	job_answer(job, &pg);
}

/* Starts the four classes' fetches; every class answers through job_release. */
static void job_start(struct list_job *job)
{
	char why[256];
	enum fail_kind fail;

	job->reqs.pending = NCLASSES + 1;
	for (int c = 0; c < NCLASSES; c++) {
		struct class_fetch *f = &job->f[c];

		f->job = job;
		f->cls = (enum sccm_class)c;
		if (sccm_url_list(job->s->base_url, f->cls, f->url, sizeof(f->url)) != MDM_OK) {
			err_why(why, sizeof(why), "%s: URL too long", sccm_class_name(f->cls));
			fail = FAIL_INTERNAL;
		} else {
			fail = fetch_send(f, why, sizeof(why));
		}
		if (fail != FAIL_NONE)
			job_release(job, fail, why);
	}
	job_release(job, FAIL_NONE, NULL);
}

static enum mdm_err sccm_list(struct adapter *a, const char *cursor, adapter_list_cb cb, void *arg)
{
	struct sccm *s = a->priv;
	struct list_job *job;

	if (!cb)
		return MDM_ERR_INVALID;
	if (cursor && cursor[0]) {
		pages_answer(&s->pages, cursor, cb, arg);
		return MDM_OK;
	}
	job = calloc(1, sizeof(*job));
	if (!job)
		return MDM_ERR_NOMEM;
	if (pthread_mutex_init(&job->reqs.mu, NULL) != 0) {
		free(job);
		return MDM_ERR_NOMEM;
	}
	job->s = s;
	job->cb = cb;
	job->arg = arg;
	job_start(job);
	return MDM_OK;
}

/* --- test_connection ------------------------------------------------------------------------- */

struct conn_test {
	struct sccm *s;
	adapter_test_cb cb;
	void *arg;
	int64_t deadline;
	int step; /* 1: $metadata; 2: a real query of SMS_R_System */
	char url[SCCM_URL_MAX];
};

/* A transport failure in words an admin can act on; the engine's reason is kept. */
static void test_transport_msg(const struct conn_test *t, const struct http_result *res, char *msg,
			       size_t sz)
{
	const struct sccm *s = t->s;

	switch (res->fail) {
	case FAIL_UNREACHABLE:
		if (strncmp(res->why, "connection refused", 18) == 0)
			err_why(msg, sz,
				"connection refused or filtered: check the host, port and firewall "
				"(%s: %s)",
				s->host, res->why);
		else
			err_why(msg, sz, "cannot reach %s: %s", s->host, res->why);
		break;
	case FAIL_TIMEOUT:
		err_why(msg, sz,
			"no answer before the deadline from %s: check the host, port, firewall and "
			"that IIS runs the AdminService (%s)",
			s->host, res->why);
		break;
	case FAIL_TLS:
		if (strncmp(res->why, "certificate not trusted", 23) == 0)
			err_why(msg, sz,
				"TLS certificate not trusted: import the site's SMS Issuing root "
				"(or the "
				"PKI CA) into %s (%s)",
				s->ca_file, res->why);
		else
			err_why(msg, sz, "TLS with %s failed: %s", s->host, res->why);
		break;
	default:
		err_why(msg, sz, "%s: %s", fail_kind_name(res->fail), res->why);
		break;
	}
}

/* test_result_msg: true when res is a usable 200; else the diagnosis in msg. */
static bool test_result_msg(const struct conn_test *t, const struct http_result *res, char *msg,
			    size_t sz)
{
	if (res->fail != FAIL_NONE) {
		test_transport_msg(t, res, msg, sz);
		return false;
	}
	switch (res->status) {
	case 200:
		return true;
	case 401:
		err_why(msg, sz,
			"401: SCCM refused the credentials: wrong user name or password (for NTLM "
			"give DOMAIN\\user)");
		break;
	case 403:
		err_why(msg, sz,
			"403: the account lacks a ConfigMgr administrative role (add it under "
			"Administration > Security > Administrative Users)");
		break;
	case 404:
		err_why(msg, sz, "404: no AdminService at %s (pre-1810 site, wrong host or path)",
			t->url);
		break;
	default:
		err_why(msg, sz, "%ld: SCCM answered HTTP %ld to %s", res->status, res->status,
			t->url);
		break;
	}
	return false;
}

static void test_finish(struct conn_test *t, bool ok, const char *msg)
{
	struct adapter_test res;

	memset(&res, 0, sizeof(res));
	res.ok = ok;
	str_copyn(res.message, sizeof(res.message), msg, strnlen(msg, sizeof(res.message) - 1));
	http_health_note(&t->s->health, ok, msg);
	t->cb(t->arg, &res);
	free(t);
}

static void test_on_answer(struct http_result *res, void *arg);

/* test_send: the request of the current step; false (msg set) when it cannot be sent. */
static bool test_send(struct conn_test *t, char *msg, size_t sz)
{
	struct http_request rq = {HTTP_GET, t->url, NULL, NULL, 0, 0};
	enum mdm_err e = http_request(t->s->http, &rq, t->deadline, test_on_answer, t);

	if (e == MDM_OK)
		return true;
	err_why(msg, sz, "request to %s not sent (%s)", t->url, err_str(e));
	return false;
}

/* The second step's answer must be a readable SMS_R_System page. */
static bool test_check_page(struct conn_test *t, const struct http_result *res, char *msg,
			    size_t sz)
{
	struct sccm_page page;
	char why[256] = "";
	enum fail_kind f;

	memset(&page, 0, sizeof(page));
	f = sccm_take_page(t->s, res, SCCM_SYSTEM, &page, why, sizeof(why));
	sccm_page_free(&page);
	if (f == FAIL_NONE)
		return true;
	err_why(msg, sz, "SMS_R_System answered but cannot be read: %s", why);
	return false;
}

static void test_on_answer(struct http_result *res, void *arg)
{
	struct conn_test *t = arg;
	char msg[512] = "";
	bool ok = test_result_msg(t, res, msg, sizeof(msg));

	if (ok && t->step == 2)
		ok = test_check_page(t, res, msg, sizeof(msg));
	buf_free(&res->body);
	if (ok && t->step == 1) {
		t->step = 2;
		if (sccm_url_system_by_guid(t->s->base_url, TEST_GUID, t->url, sizeof(t->url)) ==
			MDM_OK &&
		    test_send(t, msg, sizeof(msg)))
			return;
		ok = false;
		if (!msg[0])
			err_why(msg, sizeof(msg), "cannot build the SMS_R_System query URL");
	} else if (ok) {
		err_why(msg, sizeof(msg),
			"AdminService reachable at %s: $metadata answered, SMS_R_System readable",
			t->s->base_url);
	}
	test_finish(t, ok, msg);
}

static enum mdm_err sccm_test(struct adapter *a, adapter_test_cb cb, void *arg)
{
	struct sccm *s = a->priv;
	struct conn_test *t;
	char msg[512];
	size_t blen = strlen(s->base_url);

	if (!cb)
		return MDM_ERR_INVALID;
	t = calloc(1, sizeof(*t));
	if (!t)
		return MDM_ERR_NOMEM;
	t->s = s;
	t->cb = cb;
	t->arg = arg;
	t->step = 1;
	t->deadline = clock_mono_ms() + TEST_MS;
	while (blen > 0 && s->base_url[blen - 1] == '/')
		blen--;
	snprintf(t->url, sizeof(t->url), "%.*s/wmi/$metadata", (int)blen, s->base_url);
	if (!test_send(t, msg, sizeof(msg)))
		test_finish(t, false, msg);
	return MDM_OK;
}

/* --- health, destroy, create ----------------------------------------------------------------- */

static void sccm_health(struct adapter *a, struct adapter_health *out)
{
	struct sccm *s = a->priv;

	http_health_report(&s->health, s->http, out);
}

/* sccm_free: the client first (remote.h), then the rest; also what a failed create undoes. */
static void sccm_free(struct sccm *s)
{
	remote_close(&s->http, &s->pages, &s->health);
	for (size_t i = 0; i < s->nonly_ci; i++)
		free(s->only_ci[i]);
	free(s->only_ci);
	free(s);
}

static void sccm_destroy(struct adapter *a)
{
	sccm_free(a->priv);
}

static const struct adapter_ops sccm_ops = {
    .type = "sccm",
    .lookup = sccm_lookup,
    .list = sccm_list,
    .action = sccm_action,
    .test_connection = sccm_test,
    .health = sccm_health,
    .destroy = sccm_destroy,
};

/* The checks of sccm_create that need no allocation. */
static enum mdm_err check_config(const struct sccm_config *cfg, char *why, size_t whysz)
{
	char origin[BASE_MAX + 8];

	if (!cfg->name || !cfg->name[0] ||
	    strlen(cfg->name) >= sizeof(((struct adapter *)0)->name)) {
		err_why(why, whysz, "sccm: a name of 1 to 63 bytes is required");
		return MDM_ERR_CONFIG;
	}
	if (!cfg->base_url || strlen(cfg->base_url) > BASE_MAX ||
	    origin_of(cfg->base_url, origin, sizeof(origin), NULL, 0) != MDM_OK) {
		err_why(why, whysz, "sccm %s: base_url must be an https:// URL of at most %d bytes",
			cfg->name, BASE_MAX);
		return MDM_ERR_CONFIG;
	}
	if (cfg->nonly_ci > SCCM_MAX_ONLY_CI || (cfg->nonly_ci && !cfg->only_ci)) {
		err_why(why, whysz, "sccm %s: at most %d only_ci baselines", cfg->name,
			SCCM_MAX_ONLY_CI);
		return MDM_ERR_CONFIG;
	}
	for (size_t i = 0; i < cfg->nonly_ci; i++) {
		if (!cfg->only_ci[i] || !cfg->only_ci[i][0] ||
		    strlen(cfg->only_ci[i]) > SCCM_CI_ID_MAX) {
			err_why(why, whysz,
				"sccm %s: only_ci[%zu] must be a CI_UniqueID of 1 to %d "
				"bytes",
				cfg->name, i, SCCM_CI_ID_MAX);
			return MDM_ERR_CONFIG;
		}
	}
	if (cfg->http.ca_file && strlen(cfg->http.ca_file) >= 1024) {
		err_why(why, whysz, "sccm %s: ca_file path too long", cfg->name);
		return MDM_ERR_CONFIG;
	}
	return MDM_OK;
}

/* Copies the configuration's strings and settings into s. */
static enum mdm_err copy_config(struct sccm *s, const struct sccm_config *cfg)
{
	str_copy(s->base.name, sizeof(s->base.name), cfg->name);
	str_copy(s->base_url, sizeof(s->base_url), cfg->base_url);
	origin_of(cfg->base_url, s->origin, sizeof(s->origin), s->host, sizeof(s->host));
	str_copy(s->ca_file, sizeof(s->ca_file), cfg->http.ca_file ? cfg->http.ca_file : "");
	s->no_rows_compliant = cfg->no_rows_compliant;
	s->page_rows = cfg->page_rows ? cfg->page_rows : DEF_PAGE_ROWS;
	s->max_body = cfg->http.max_body ? cfg->http.max_body : DEF_MAX_BODY;
	s->list_timeout_ms = cfg->list_timeout_ms > 0 ? cfg->list_timeout_ms : DEF_LIST_MS;
	if (cfg->nonly_ci) {
		s->only_ci = calloc(cfg->nonly_ci, sizeof(*s->only_ci));
		if (!s->only_ci)
			return MDM_ERR_NOMEM;
	}
	for (; s->nonly_ci < cfg->nonly_ci; s->nonly_ci++) {
		s->only_ci[s->nonly_ci] = strdup(cfg->only_ci[s->nonly_ci]);
		if (!s->only_ci[s->nonly_ci])
			return MDM_ERR_NOMEM;
	}
	return MDM_OK;
}

struct adapter *sccm_create(struct http_engine *e, const struct sccm_config *cfg, char *why,
			    size_t whysz)
{
	struct http_client_config cc;
	struct sccm *s;
	char hwhy[256] = "";

	if (!e || !cfg) {
		err_why(why, whysz, "sccm: no engine or no configuration");
		return NULL;
	}
	if (check_config(cfg, why, whysz) != MDM_OK)
		return NULL;
	s = calloc(1, sizeof(*s));
	if (!s || remote_open(&s->pages, &s->health) != MDM_OK) {
		free(s);
		err_why(why, whysz, "sccm %s: out of memory", cfg->name);
		return NULL;
	}
	s->base.ops = &sccm_ops;
	s->base.priv = s;
	if (copy_config(s, cfg) != MDM_OK) {
		err_why(why, whysz, "sccm %s: out of memory", cfg->name);
		sccm_free(s);
		return NULL;
	}
	cc = cfg->http;
	cc.name = cfg->name;
	s->http = http_client_create(e, &cc, hwhy, sizeof(hwhy));
	if (!s->http) {
		err_why(why, whysz, "sccm %s: %s", cfg->name, hwhy);
		sccm_free(s);
		return NULL;
	}
	log_info("sccm %s: AdminService at %s", s->base.name, s->base_url);
	return &s->base;
}
