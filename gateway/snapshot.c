#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/buf.h"
#include "../core/clock.h"
#include "snapshot.h"

/*
 * A page arrives through a callback that may run on another thread, possibly after we gave up
 * waiting: the waiter is shared (two references) and freed by whichever side lets go last.
 */
struct page_wait {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done;
	int refs;
	struct adapter_page page;
};

static void page_wait_unref(struct page_wait *w)
{
	int last;

	pthread_mutex_lock(&w->mu);
	last = --w->refs == 0;
	pthread_mutex_unlock(&w->mu);
	if (!last)
		return;
	outcome_clear(&w->page.oc);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	free(w);
}

static void on_page(void *arg, struct adapter_page *page)
{
	struct page_wait *w = arg;

	pthread_mutex_lock(&w->mu);
	outcome_move(&w->page.oc, &page->oc);
	memcpy(w->page.next_cursor, page->next_cursor, sizeof(w->page.next_cursor));
	w->done = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	page_wait_unref(w);
}

static enum mdm_err list_page(struct adapter *a, const char *cursor, int64_t deadline_ms,
			      struct adapter_page *out)
{
	struct page_wait *w = calloc(1, sizeof(*w));
	enum mdm_err e;

	if (!w)
		return MDM_ERR_NOMEM;
	outcome_init(&w->page.oc);
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->refs = 2;
	e = adapter_list(a, cursor, on_page, w);
	if (e) {
		w->refs = 1; /* no callback will come */
		page_wait_unref(w);
		return e;
	}
	pthread_mutex_lock(&w->mu);
	while (!w->done) {
		struct timespec ts;
		int64_t left = deadline_ms - clock_mono_ms();

		if (left <= 0) {
			e = MDM_ERR_TIMEOUT;
			break;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += left / 1000 + 1;
		pthread_cond_timedwait(&w->cv, &w->mu, &ts);
	}
	if (!e) {
		*out = w->page;
		outcome_init(&w->page.oc);
	}
	pthread_mutex_unlock(&w->mu);
	page_wait_unref(w);
	return e;
}

struct collect {
	struct device *recs;
	size_t n, cap;
};

static enum mdm_err collect_add(struct collect *c, const struct device *d, size_t n)
{
	if (n == 0) /* an empty page may carry no array at all */
		return MDM_OK;
	if (c->n + n > c->cap) {
		size_t ncap = c->cap ? c->cap : 1024;
		struct device *p;

		while (ncap < c->n + n)
			ncap *= 2;
		p = realloc(c->recs, ncap * sizeof(*p));
		if (!p)
			return MDM_ERR_NOMEM;
		c->recs = p;
		c->cap = ncap;
	}
	memcpy(c->recs + c->n, d, n * sizeof(*d));
	c->n += n;
	return MDM_OK;
}

static void note_failure(struct snapshot *s, const char *adapter, const char *what)
{
	size_t len = strlen(s->why);

	s->complete = false;
	snprintf(s->why + len, sizeof(s->why) - len, "%s%s: %s", len ? "; " : "", adapter, what);
}

static enum mdm_err list_adapter(struct adapter *a, int64_t deadline_ms, struct collect *c,
				 struct snapshot *s)
{
	char cursor[64] = "";
	enum mdm_err e;

	for (;;) {
		struct adapter_page page;

		e = list_page(a, cursor, deadline_ms, &page);
		if (e) {
			note_failure(s, a->name, err_str(e));
			return MDM_OK;
		}
		if (page.oc.kind == OUTCOME_FAILED) {
			note_failure(s, a->name, page.oc.why);
			outcome_clear(&page.oc);
			return MDM_OK;
		}
		e = collect_add(c, page.oc.devs, page.oc.ndevs);
		outcome_clear(&page.oc);
		if (e || !page.next_cursor[0])
			return e;
		memcpy(cursor, page.next_cursor, sizeof(cursor));
	}
}

/* --- grouping records of one device across adapters ---------------------------------------- */

struct gmap {
	uint64_t *hash;
	uint32_t *rec; /* the record that put this key */
	size_t cap;
};

/* The identifiers that make two records one device, as merge_same_device compares them. */
static size_t device_keys(const struct device *d, uint64_t *keys)
{
	size_t n = 0;

	for (unsigned i = 0; i < d->nmacs; i++)
		keys[n++] = ident_hash(IDENT_MAC, d->macs[i]);
	if (*d->guid)
		keys[n++] = ident_hash(IDENT_GUID, d->guid);
	if (*d->udid)
		keys[n++] = ident_hash(IDENT_UDID, d->udid);
	if (*d->imei)
		keys[n++] = ident_hash(IDENT_IMEI, d->imei);
	if (*d->meid)
		keys[n++] = ident_hash(IDENT_MEID, d->meid);
	if (*d->serial)
		keys[n++] = ident_hash(IDENT_SERIAL, d->serial);
	return n;
}

static uint32_t group_root(uint32_t *parent, uint32_t g)
{
	while (parent[g] != g) {
		parent[g] = parent[parent[g]];
		g = parent[g];
	}
	return g;
}

/*
 * The group of d: every earlier group holding a record that really shares an identifier with d
 * (hashes may collide) is united into one, so a record that bridges two groups joins them.
 * Returns -1 when d shares nothing with any earlier record.
 */
static long gmap_join(const struct gmap *m, const uint64_t *keys, size_t nkeys,
		      const struct device *recs, const uint32_t *of, uint32_t *parent,
		      const struct device *d)
{
	long grp = -1;

	for (size_t k = 0; k < nkeys; k++) {
		for (size_t i = keys[k] & (m->cap - 1); m->hash[i]; i = (i + 1) & (m->cap - 1)) {
			uint32_t g;

			if (m->hash[i] != keys[k] || !merge_same_device(&recs[m->rec[i]], d))
				continue;
			g = group_root(parent, of[m->rec[i]]);
			if (grp < 0)
				grp = (long)g;
			else if ((long)g != grp)
				parent[g > (uint32_t)grp ? g : (uint32_t)grp] =
				    g < (uint32_t)grp ? g : (uint32_t)grp;
			grp = (long)group_root(parent, (uint32_t)grp);
		}
	}
	return grp;
}

static void gmap_put(struct gmap *m, const uint64_t *keys, size_t nkeys, uint32_t rec)
{
	for (size_t k = 0; k < nkeys; k++) {
		size_t i;

		for (i = keys[k] & (m->cap - 1); m->hash[i]; i = (i + 1) & (m->cap - 1))
			;
		m->hash[i] = keys[k];
		m->rec[i] = rec;
	}
}

static int cmp_device(const void *pa, const void *pb)
{
	const struct device *a = pa, *b = pb;
	int c = strcmp(a->nmacs ? a->macs[0] : "~", b->nmacs ? b->macs[0] : "~");

	if (c)
		return c;
	if ((c = strcmp(a->guid, b->guid)) != 0)
		return c;
	return strcmp(a->vendor_id, b->vendor_id);
}

struct grouping {
	uint32_t *of;	  /* record -> group */
	uint32_t *parent; /* group -> the group it was united into (union-find) */
	size_t ngroups;
};

static enum mdm_err group_records(const struct collect *c, struct grouping *g)
{
	struct gmap m = {0};
	uint64_t keys[DEVICE_MACS_MAX + 5];
	size_t n = c->n ? c->n : 1;
	enum mdm_err e = MDM_ERR_NOMEM;

	m.cap = 16;
	while (m.cap < c->n * (DEVICE_MACS_MAX + 5) * 2)
		m.cap *= 2;
	m.hash = calloc(m.cap, sizeof(*m.hash));
	m.rec = calloc(m.cap, sizeof(*m.rec));
	g->of = calloc(n, sizeof(*g->of));
	g->parent = calloc(n, sizeof(*g->parent));
	if (!m.hash || !m.rec || !g->of || !g->parent)
		goto out;
	for (size_t i = 0; i < c->n; i++) {
		size_t nk = device_keys(&c->recs[i], keys);
		long grp = gmap_join(&m, keys, nk, c->recs, g->of, g->parent, &c->recs[i]);

		if (grp < 0) {
			grp = (long)g->ngroups++;
			g->parent[grp] = (uint32_t)grp;
		}
		g->of[i] = (uint32_t)grp;
		gmap_put(&m, keys, nk, (uint32_t)i);
	}
	/* Renumber the surviving roots densely so each merged device is one slot. */
	{
		uint32_t *dense = calloc(g->ngroups ? g->ngroups : 1, sizeof(*dense));
		size_t roots = 0;

		if (!dense)
			goto out;
		for (size_t k = 0; k < g->ngroups; k++)
			if (group_root(g->parent, (uint32_t)k) == k)
				dense[k] = (uint32_t)roots++;
		for (size_t i = 0; i < c->n; i++)
			g->of[i] = dense[group_root(g->parent, g->of[i])];
		free(dense);
		g->ngroups = roots;
	}
	e = MDM_OK;
out:
	free(m.hash);
	free(m.rec);
	return e;
}

static enum mdm_err merge_all(const struct collect *c, const struct merge_policy *p,
			      struct snapshot *s)
{
	struct grouping g = {0};
	struct device *tmp = NULL;
	size_t *count = NULL, *start = NULL, *fill = NULL;
	enum mdm_err e = group_records(c, &g);

	if (e)
		goto out;
	e = MDM_ERR_NOMEM;
	count = calloc(g.ngroups + 1, sizeof(*count));
	start = calloc(g.ngroups + 1, sizeof(*start));
	fill = calloc(g.ngroups + 1, sizeof(*fill));
	tmp = malloc((c->n ? c->n : 1) * sizeof(*tmp));
	s->devs = malloc((g.ngroups ? g.ngroups : 1) * sizeof(*s->devs));
	if (!count || !start || !fill || !tmp || !s->devs)
		goto out;
	/* Counting sort by group keeps each group's records contiguous and in adapter order. */
	for (size_t i = 0; i < c->n; i++)
		count[g.of[i]]++;
	for (size_t k = 1; k <= g.ngroups; k++)
		start[k] = start[k - 1] + count[k - 1];
	for (size_t i = 0; i < c->n; i++)
		tmp[start[g.of[i]] + fill[g.of[i]]++] = c->recs[i];
	for (size_t k = 0; k < g.ngroups; k++)
		merge_devices(p, tmp + start[k], count[k], &s->devs[k]);
	s->ndevs = g.ngroups;
	qsort(s->devs, s->ndevs, sizeof(*s->devs), cmp_device);
	e = MDM_OK;
out:
	free(g.of);
	free(g.parent);
	free(count);
	free(start);
	free(fill);
	free(tmp);
	return e;
}

static enum mdm_err build_lists(struct snapshot *s)
{
	for (int l = 0; l < SNAP_LISTS; l++) {
		s->list[l] = malloc((s->ndevs ? s->ndevs : 1) * sizeof(uint32_t));
		if (!s->list[l])
			return MDM_ERR_NOMEM;
	}
	for (size_t i = 0; i < s->ndevs; i++) {
		enum tri c = s->devs[i].compliant;

		s->list[SNAP_ALL][s->nlist[SNAP_ALL]++] = (uint32_t)i;
		if (c == TRI_TRUE)
			s->list[SNAP_COMPLIANT][s->nlist[SNAP_COMPLIANT]++] = (uint32_t)i;
		else if (c == TRI_FALSE)
			s->list[SNAP_NONCOMPLIANT][s->nlist[SNAP_NONCOMPLIANT]++] = (uint32_t)i;
	}
	return MDM_OK;
}

enum mdm_err snapshot_build(struct adapter *const *ads, size_t nads, const struct merge_policy *p,
			    int64_t deadline_ms, struct snapshot **out)
{
	struct snapshot *s = calloc(1, sizeof(*s));
	struct collect c = {0};
	enum mdm_err e = MDM_ERR_NOMEM;

	*out = NULL;
	if (!s)
		return e;
	s->complete = true;
	for (size_t i = 0; i < nads; i++) {
		e = list_adapter(ads[i], deadline_ms, &c, s);
		if (e)
			goto fail;
	}
	e = merge_all(&c, p, s);
	if (!e)
		e = build_lists(s);
	if (e)
		goto fail;
	free(c.recs);
	s->built_at = clock_wall_ms();
	*out = s;
	return MDM_OK;
fail:
	free(c.recs);
	snapshot_free(s);
	return e;
}

void snapshot_free(struct snapshot *s)
{
	if (!s)
		return;
	for (int l = 0; l < SNAP_LISTS; l++)
		free(s->list[l]);
	free(s->devs);
	free(s);
}
