/*
 * snapshot: the merged core of a generation (rows of one device grouped across sets by the
 * merge rule, records ordered and keyed, the lists and the identifier indexes), the snapshot
 * over it and the snapstore of generations. Rows: snapshot_rows.c; the format: snapshot_io.c.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../../core/buf.h"
#include "../../core/clock.h"
#include "snapshot.h"
#include "snapshot_int.h"

/* --- the merged core ------------------------------------------------------------------------- */

struct rec {
	uint32_t ref_off; /* first of its row references in core.refs */
	uint32_t key_off; /* the key: in the pool of set key_set, or in core.keys (KEY_OWN) */
	uint16_t nrefs;
	uint8_t state; /* merged registered, compliant, jail_broken: two bits each */
	uint8_t key_set;
};

/* Indexes: one per identifier kind (in enum ident_kind order), then the device key. */
#define IX_KEY IDENT_KIND_COUNT
#define IX_COUNT (IDENT_KIND_COUNT + 1)

struct itab {
	uint32_t *slot; /* record + 1; 0 empty */
	size_t cap;	/* a power of two */
};

struct core {
	int refs; /* under core_mu */
	struct merge_policy p;
	struct rowdata **data; /* one per set, referenced */
	size_t nsets;
	struct rec *recs;
	size_t nrecs;
	uint32_t *refs_; /* set << 24 | row, grouped by record */
	size_t nrefs;
	char *keys; /* keys that are not a MAC */
	size_t keyslen, capkeys;
	uint32_t *list[SNAP_LISTS];
	size_t nlist[SNAP_LISTS];
	struct itab ix[IX_COUNT];
};

/*
 * The last core made (weak: cleared when it is freed). A cycle whose every set has the same
 * rowdata as the previous cycle's (nothing changed anywhere) shares its core: an unchanged
 * generation costs a header.
 */
static pthread_mutex_t core_mu = PTHREAD_MUTEX_INITIALIZER;
static struct core *last_core;

static void core_free(struct core *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nsets; i++)
		snap_rowdata_unref(c->data[i]);
	snap_free(c->data);
	snap_free(c->recs);
	snap_free(c->refs_);
	snap_free(c->keys);
	for (int l = 0; l < SNAP_LISTS; l++)
		snap_free(c->list[l]);
	for (int k = 0; k < IX_COUNT; k++)
		snap_free(c->ix[k].slot);
	snap_free(c);
}

static void core_unref(struct core *c)
{
	int last;

	if (!c)
		return;
	pthread_mutex_lock(&core_mu);
	last = --c->refs == 0;
	if (last && last_core == c)
		last_core = NULL;
	pthread_mutex_unlock(&core_mu);
	if (last)
		core_free(c);
}

static const struct rowdata *ref_data(const struct core *c, uint32_t ref)
{
	return c->data[ref >> 24];
}

static const struct row *ref_row(const struct core *c, uint32_t ref)
{
	return &c->data[ref >> 24]->rows[ref & ROWS_MAX];
}

static const char *ref_str(const struct core *c, uint32_t ref, int f)
{
	return ref_data(c, ref)->pool + ref_row(c, ref)->str[f];
}

static const char *ref_mac(const struct core *c, uint32_t ref, unsigned m)
{
	const struct rowdata *d = ref_data(c, ref);

	return d->pool + d->macs[ref_row(c, ref)->mac_off + m];
}

static bool row_has_mac(const struct core *c, uint32_t ref, const char *mac)
{
	for (unsigned m = 0; m < ref_row(c, ref)->nmacs; m++)
		if (strcmp(ref_mac(c, ref, m), mac) == 0)
			return true;
	return false;
}

/* Whether a row carries identifier value of kind, with device_matches' case rules. */
static bool row_matches(const struct core *c, uint32_t ref, enum ident_kind kind, const char *v)
{
	int f = snap_field_of(kind);
	const char *s;

	if (kind == IDENT_MAC)
		return row_has_mac(c, ref, v);
	if (f < 0)
		return false;
	s = ref_str(c, ref, f);
	if (!*s)
		return false;
	if (kind == IDENT_GUID || kind == IDENT_IMEI)
		return strcmp(s, v) == 0;
	return strcasecmp(s, v) == 0;
}

/* The identifiers of a row, as the same-device rule (merge.h) compares them. */
static void row_ids(const struct core *c, uint32_t ref, struct merge_ids *out)
{
	out->nmacs = ref_row(c, ref)->nmacs;
	for (unsigned m = 0; m < out->nmacs; m++)
		out->macs[m] = ref_mac(c, ref, m);
	out->guid = ref_str(c, ref, F_GUID);
	out->udid = ref_str(c, ref, F_UDID);
	out->imei = ref_str(c, ref, F_IMEI);
	out->meid = ref_str(c, ref, F_MEID);
	out->serial = ref_str(c, ref, F_SERIAL);
}

/* The identifiers that may make two rows one device (hashes): a cheap filter before the rule. */
static size_t row_keys(const struct merge_ids *ids, uint64_t *keys)
{
	const struct {
		const char *v;
		enum ident_kind k;
	} text[] = {{ids->guid, IDENT_GUID},
		    {ids->udid, IDENT_UDID},
		    {ids->imei, IDENT_IMEI},
		    {ids->meid, IDENT_MEID},
		    {ids->serial, IDENT_SERIAL}};
	size_t n = 0;

	for (unsigned m = 0; m < ids->nmacs; m++)
		keys[n++] = ident_hash(IDENT_MAC, ids->macs[m]);
	for (size_t i = 0; i < sizeof(text) / sizeof(*text); i++)
		if (*text[i].v)
			keys[n++] = ident_hash((int)text[i].k, text[i].v);
	return n;
}

/* --- grouping rows of one device across sets ------------------------------------------------ */

struct gmap {
	uint64_t *hash;
	uint32_t *row; /* the row (index into all) that put this key */
	size_t cap;
};

static uint32_t group_root(uint32_t *parent, uint32_t g)
{
	while (parent[g] != g) {
		parent[g] = parent[parent[g]];
		g = parent[g];
	}
	return g;
}

/*
 * The group of row i: every earlier group holding a row that really shares an identifier with
 * it (hashes may collide) is united into one, so a row that bridges two groups joins them.
 * Returns -1 when the row shares nothing with any earlier one.
 */
static long gmap_join(const struct core *c, const struct gmap *m, const struct merge_ids *ids,
		      const uint64_t *keys, size_t nkeys, const uint32_t *all, const uint32_t *of,
		      uint32_t *parent)
{
	long grp = -1;

	for (size_t k = 0; k < nkeys; k++) {
		for (size_t j = keys[k] & (m->cap - 1); m->hash[j]; j = (j + 1) & (m->cap - 1)) {
			struct merge_ids other;
			uint32_t g;

			if (m->hash[j] != keys[k])
				continue;
			row_ids(c, all[m->row[j]], &other);
			if (!merge_same_ids(&other, ids))
				continue;
			g = group_root(parent, of[m->row[j]]);
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

static void gmap_put(struct gmap *m, const uint64_t *keys, size_t nkeys, uint32_t row)
{
	for (size_t k = 0; k < nkeys; k++) {
		size_t j;

		for (j = keys[k] & (m->cap - 1); m->hash[j]; j = (j + 1) & (m->cap - 1))
			;
		m->hash[j] = keys[k];
		m->row[j] = row;
	}
}

/* group_rows: of[i] = the dense group number of row all[i]; *ngroups their number. */
static enum mdm_err group_rows(const struct core *c, const uint32_t *all, size_t n, uint32_t *of,
			       size_t *ngroups)
{
	struct gmap m = {0};
	struct merge_ids ids;
	uint64_t keys[DEVICE_MACS_MAX + 5];
	uint32_t *parent = snap_calloc(n ? n : 1, sizeof(*parent));
	uint32_t *dense = snap_calloc(n ? n : 1, sizeof(*dense));
	size_t nkeys = 0, groups = 0, roots = 0;
	enum mdm_err e = MDM_ERR_NOMEM;

	for (size_t i = 0; i < n; i++) {
		row_ids(c, all[i], &ids);
		nkeys += row_keys(&ids, keys);
	}
	m.cap = 16;
	while (m.cap < nkeys * 2)
		m.cap *= 2;
	m.hash = snap_calloc(m.cap, sizeof(*m.hash));
	m.row = snap_calloc(m.cap, sizeof(*m.row));
	if (!m.hash || !m.row || !parent || !dense)
		goto out;
	for (size_t i = 0; i < n; i++) {
		size_t nk;
		long grp;

		row_ids(c, all[i], &ids);
		nk = row_keys(&ids, keys);
		grp = gmap_join(c, &m, &ids, keys, nk, all, of, parent);

		if (grp < 0) {
			grp = (long)groups++;
			parent[grp] = (uint32_t)grp;
		}
		of[i] = (uint32_t)grp;
		gmap_put(&m, keys, nk, (uint32_t)i);
	}
	/* Renumber the surviving roots densely so each merged device is one slot. */
	for (size_t k = 0; k < groups; k++)
		if (group_root(parent, (uint32_t)k) == k)
			dense[k] = (uint32_t)roots++;
	for (size_t i = 0; i < n; i++)
		of[i] = dense[group_root(parent, of[i])];
	*ngroups = roots;
	e = MDM_OK;
out:
	snap_free(m.hash);
	snap_free(m.row);
	snap_free(parent);
	snap_free(dense);
	return e;
}

/* --- building the core ----------------------------------------------------------------------- */

/* What orders the records, and what the key is: the merged device's first MAC (from the first
 * row with any), first GUID, and the first row's vendor id. */
struct order {
	const char *mac, *guid, *vendor;
	uint32_t mac_ref; /* the row the MAC comes from */
	uint32_t group;
};

static int cmp_order(const void *pa, const void *pb)
{
	const struct order *a = pa, *b = pb;
	int c = strcmp(a->mac ? a->mac : "~", b->mac ? b->mac : "~");

	if (c)
		return c;
	if ((c = strcmp(a->guid, b->guid)) != 0)
		return c;
	if ((c = strcmp(a->vendor, b->vendor)) != 0)
		return c;
	return a->group < b->group ? -1 : a->group > b->group;
}

static void order_of(const struct core *c, const uint32_t *refs, size_t n, uint32_t group,
		     struct order *o)
{
	o->mac = NULL;
	o->guid = "";
	o->vendor = ref_str(c, refs[0], F_VENDOR_ID);
	o->group = group;
	for (size_t i = 0; i < n; i++) {
		if (!o->mac && ref_row(c, refs[i])->nmacs) {
			o->mac = ref_mac(c, refs[i], 0);
			o->mac_ref = refs[i];
		}
		if (!*o->guid)
			o->guid = ref_str(c, refs[i], F_GUID);
	}
}

/* The merged tri-states of a group, by the merge rule (merge.h) over the rows' packed ones. */
static uint8_t merged_state(const struct core *c, const uint32_t *refs, size_t n)
{
	struct merge_tally t;
	struct merge_tris m;

	memset(&t, 0, sizeof(t));
	for (size_t i = 0; i < n; i++) {
		unsigned p = ref_row(c, refs[i])->tris;
		struct merge_tris r = {tri_at(p, T_REGISTERED), tri_at(p, T_COMPLIANT),
				       tri_at(p, T_ENCRYPTED), tri_at(p, T_PIN), tri_at(p, T_JAIL)};

		merge_tally_add(&t, &r);
	}
	merge_tally_result(&c->p, &t, &m);
	return (uint8_t)((unsigned)m.registered | (unsigned)m.compliant << 2 |
			 (unsigned)m.jail_broken << 4);
}

static enum mdm_err add_key(struct core *c, struct rec *r, const struct order *o)
{
	const char *adapter = ref_data(c, c->refs_[r->ref_off])->adapter;
	size_t need;
	enum mdm_err e;

	if (o->mac) {
		r->key_set = (uint8_t)(o->mac_ref >> 24);
		r->key_off = (uint32_t)(o->mac - ref_data(c, o->mac_ref)->pool);
		return MDM_OK;
	}
	need = *o->guid ? 5 + strlen(o->guid) + 1 : strlen(adapter) + 1 + strlen(o->vendor) + 1;
	if (c->keyslen + need > UINT32_MAX)
		return MDM_ERR_TOOBIG;
	if ((e = snap_grow(&c->keys, &c->capkeys, c->keyslen + need, 1, 1024)) != MDM_OK)
		return e;
	if (*o->guid)
		snprintf(c->keys + c->keyslen, need, "guid:%s", o->guid);
	else
		snprintf(c->keys + c->keyslen, need, "%s:%s", adapter, o->vendor);
	r->key_set = KEY_OWN;
	r->key_off = (uint32_t)c->keyslen;
	c->keyslen += need;
	return MDM_OK;
}

static const char *rec_key(const struct core *c, const struct rec *r)
{
	return r->key_set == KEY_OWN ? c->keys + r->key_off
				     : c->data[r->key_set]->pool + r->key_off;
}

/*
 * The records: rows grouped by device (counting sort: each group keeps its rows in set, then
 * listing order, as merge_devices expects), then ordered, merged state and key computed.
 */
static enum mdm_err build_records(struct core *c, const uint32_t *all, const uint32_t *of,
				  size_t ngroups)
{
	size_t *start = snap_calloc(ngroups + 1, sizeof(*start));
	size_t *fill = snap_calloc(ngroups + 1, sizeof(*fill));
	struct order *ord = snap_calloc(ngroups ? ngroups : 1, sizeof(*ord));
	enum mdm_err e = MDM_ERR_NOMEM;

	c->refs_ = snap_calloc(c->nrefs ? c->nrefs : 1, sizeof(*c->refs_));
	c->recs = snap_calloc(ngroups ? ngroups : 1, sizeof(*c->recs));
	if (!start || !fill || !ord || !c->refs_ || !c->recs)
		goto out;
	for (size_t i = 0; i < c->nrefs; i++)
		start[of[i] + 1]++;
	for (size_t k = 1; k <= ngroups; k++)
		start[k] += start[k - 1];
	for (size_t i = 0; i < c->nrefs; i++)
		c->refs_[start[of[i]] + fill[of[i]]++] = all[i];
	e = MDM_ERR_TOOBIG;
	for (size_t k = 0; k < ngroups; k++) {
		if (fill[k] > GROUP_MAX)
			goto out;
		order_of(c, c->refs_ + start[k], fill[k], (uint32_t)k, &ord[k]);
	}
	qsort(ord, ngroups, sizeof(*ord), cmp_order);
	for (size_t i = 0; i < ngroups; i++) {
		struct rec *r = &c->recs[i];
		uint32_t k = ord[i].group;

		r->ref_off = (uint32_t)start[k];
		r->nrefs = (uint16_t)fill[k];
		r->state = merged_state(c, c->refs_ + start[k], fill[k]);
		if ((e = add_key(c, r, &ord[i])) != MDM_OK)
			goto out;
	}
	c->nrecs = ngroups;
	e = MDM_OK;
out:
	snap_free(start);
	snap_free(fill);
	snap_free(ord);
	return e;
}

static enum mdm_err build_lists(struct core *c)
{
	for (int l = 0; l < SNAP_LISTS; l++) {
		c->list[l] = snap_alloc((c->nrecs ? c->nrecs : 1) * sizeof(uint32_t));
		if (!c->list[l])
			return MDM_ERR_NOMEM;
	}
	for (size_t i = 0; i < c->nrecs; i++) {
		enum tri comp = tri_at(c->recs[i].state, 1);

		c->list[SNAP_ALL][c->nlist[SNAP_ALL]++] = (uint32_t)i;
		if (comp == TRI_TRUE)
			c->list[SNAP_COMPLIANT][c->nlist[SNAP_COMPLIANT]++] = (uint32_t)i;
		else if (comp == TRI_FALSE)
			c->list[SNAP_NONCOMPLIANT][c->nlist[SNAP_NONCOMPLIANT]++] = (uint32_t)i;
	}
	for (int l = SNAP_COMPLIANT; l < SNAP_LISTS; l++)
		snap_shrink(&c->list[l], &(size_t){c->nrecs ? c->nrecs : 1}, c->nlist[l],
			    sizeof(uint32_t));
	return MDM_OK;
}

/* --- indexes --------------------------------------------------------------------------------- */

/* Calls put(c, ix, hash, rec, arg) for every identifier of every row of record rec, and the key. */
typedef void (*ident_fn)(struct core *c, int ix, uint64_t h, uint32_t rec, void *arg);

static void each_ident(struct core *c, uint32_t rec, ident_fn fn, void *arg)
{
	const struct rec *r = &c->recs[rec];

	for (uint32_t j = 0; j < r->nrefs; j++) {
		uint32_t ref = c->refs_[r->ref_off + j];

		for (unsigned m = 0; m < ref_row(c, ref)->nmacs; m++)
			fn(c, IDENT_MAC, ident_hash(IDENT_MAC, ref_mac(c, ref, m)), rec, arg);
		for (int k = IDENT_GUID; k < IDENT_KIND_COUNT; k++) {
			const char *s = ref_str(c, ref, snap_field_of((enum ident_kind)k));

			if (*s)
				fn(c, k, ident_hash(k, s), rec, arg);
		}
	}
	fn(c, IX_KEY, ident_hash(IX_KEY, rec_key(c, r)), rec, arg);
}

static void count_ident(struct core *c, int ix, uint64_t h, uint32_t rec, void *arg)
{
	size_t *counts = arg;

	(void)c;
	(void)h;
	(void)rec;
	counts[ix]++;
}

static void put_ident(struct core *c, int ix, uint64_t h, uint32_t rec, void *arg)
{
	struct itab *t = &c->ix[ix];
	size_t j;

	(void)arg;
	for (j = h & (t->cap - 1); t->slot[j]; j = (j + 1) & (t->cap - 1))
		if (t->slot[j] == rec + 1)
			return; /* the same record under a colliding or repeated value */
	t->slot[j] = rec + 1;
}

static enum mdm_err build_indexes(struct core *c)
{
	size_t counts[IX_COUNT] = {0};

	for (size_t i = 0; i < c->nrecs; i++)
		each_ident(c, (uint32_t)i, count_ident, counts);
	for (int k = 0; k < IX_COUNT; k++) {
		/* load at most 2/3: short probe chains for the NAC's lookups */
		c->ix[k].cap = 8;
		while (c->ix[k].cap * 2 < counts[k] * 3)
			c->ix[k].cap *= 2;
		c->ix[k].slot = snap_calloc(c->ix[k].cap, sizeof(uint32_t));
		if (!c->ix[k].slot)
			return MDM_ERR_NOMEM;
	}
	for (size_t i = 0; i < c->nrecs; i++)
		each_ident(c, (uint32_t)i, put_ident, NULL);
	return MDM_OK;
}

static enum mdm_err core_build(struct rowset *const *sets, size_t n, const struct merge_policy *p,
			       struct core **out)
{
	struct core *c = snap_calloc(1, sizeof(*c));
	uint32_t *all = NULL, *of = NULL;
	size_t ngroups = 0, k = 0;
	enum mdm_err e = MDM_ERR_NOMEM;

	*out = NULL;
	if (!c || !(c->data = snap_calloc(n ? n : 1, sizeof(*c->data))))
		goto fail;
	c->refs = 1;
	c->p = *p;
	c->nsets = n;
	for (size_t i = 0; i < n; i++) {
		snap_rowdata_ref(sets[i]->d);
		c->data[i] = sets[i]->d;
		c->nrefs += sets[i]->d->nrows;
	}
	all = snap_calloc(c->nrefs ? c->nrefs : 1, sizeof(*all));
	of = snap_calloc(c->nrefs ? c->nrefs : 1, sizeof(*of));
	if (!all || !of)
		goto fail;
	for (size_t i = 0; i < n; i++)
		for (size_t r = 0; r < c->data[i]->nrows; r++)
			all[k++] = (uint32_t)(i << 24 | r);
	if ((e = group_rows(c, all, c->nrefs, of, &ngroups)) != MDM_OK ||
	    (e = build_records(c, all, of, ngroups)) != MDM_OK || (e = build_lists(c)) != MDM_OK ||
	    (e = build_indexes(c)) != MDM_OK)
		goto fail;
	snap_shrink(&c->keys, &c->capkeys, c->keyslen, 1);
	snap_free(all);
	snap_free(of);
	*out = c;
	return MDM_OK;
fail:
	snap_free(all);
	snap_free(of);
	core_free(c);
	return e;
}

/* The last core when it was made from exactly these rows under the same policy. */
static struct core *core_reuse(struct rowset *const *sets, size_t n, const struct merge_policy *p)
{
	struct core *c;

	pthread_mutex_lock(&core_mu);
	c = last_core;
	if (c && (c->nsets != n || c->p.compliant_requires_all != p->compliant_requires_all ||
		  c->p.partial_is_unavailable != p->partial_is_unavailable))
		c = NULL;
	for (size_t i = 0; c && i < n; i++)
		if (c->data[i] != sets[i]->d)
			c = NULL;
	if (c)
		c->refs++;
	pthread_mutex_unlock(&core_mu);
	return c;
}

static void core_remember(struct core *c)
{
	pthread_mutex_lock(&core_mu);
	last_core = c;
	pthread_mutex_unlock(&core_mu);
}

/* --- snapshots ------------------------------------------------------------------------------- */

static void snapshot_free(struct snapshot *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nsets; i++)
		rowset_unref(s->sets[i]);
	snap_free(s->sets);
	snap_free(s->stale);
	snap_free(s->why);
	core_unref(s->core);
	snap_free(s);
}

/* "adapter: why; ..." for the failed sets, or NULL. */
static enum mdm_err compose_why(struct snapshot *s)
{
	struct buf b;
	enum mdm_err e = MDM_OK;

	buf_init(&b, 4096);
	for (size_t i = 0; i < s->nsets && !e; i++)
		if (rowset_why(s->sets[i]))
			e = buf_addf(&b, "%s%s: %s", b.len ? "; " : "", s->sets[i]->adapter,
				     s->sets[i]->why);
	if (e == MDM_ERR_TOOBIG)
		e = MDM_OK; /* cut, still says enough */
	if (!e && b.len && (s->why = snap_alloc(b.len + 1)) == NULL)
		e = MDM_ERR_NOMEM;
	if (!e && b.len)
		memcpy(s->why, b.mem, b.len + 1);
	buf_free(&b);
	return e;
}

enum mdm_err snapshot_make(struct rowset *const *sets, const bool *stale, size_t n,
			   const struct merge_policy *p, uint64_t gen, struct snapshot **out)
{
	struct snapshot *s;
	enum mdm_err e = MDM_ERR_NOMEM;

	*out = NULL;
	if (n > SETS_MAX)
		return MDM_ERR_INVALID;
	for (size_t i = 0; i < n; i++)
		if (!sets[i] || !sets[i]->finished)
			return MDM_ERR_INVALID;
	s = snap_calloc(1, sizeof(*s));
	if (!s)
		return e;
	atomic_init(&s->refs, 1);
	s->gen = gen;
	s->sets = snap_calloc(n ? n : 1, sizeof(*s->sets));
	s->stale = snap_calloc(n ? n : 1, sizeof(*s->stale));
	if (!s->sets || !s->stale)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		s->sets[i] = rowset_ref(sets[i]);
		s->stale[i] = stale && stale[i];
	}
	s->nsets = n;
	if ((e = compose_why(s)) != MDM_OK)
		goto fail;
	s->core = core_reuse(sets, n, p);
	if (!s->core) {
		if ((e = core_build(sets, n, p, &s->core)) != MDM_OK)
			goto fail;
		core_remember(s->core);
	}
	s->made_at = clock_wall_ms();
	*out = s;
	return MDM_OK;
fail:
	snapshot_free(s);
	return e;
}

struct snapshot *snapshot_ref(struct snapshot *s)
{
	if (s)
		atomic_fetch_add(&s->refs, 1);
	return s;
}

void snapshot_unref(struct snapshot *s)
{
	if (s && atomic_fetch_sub(&s->refs, 1) == 1)
		snapshot_free(s);
}

struct merge_policy snap_policy(const struct snapshot *s)
{
	return s->core->p;
}

uint64_t snapshot_generation(const struct snapshot *s)
{
	return s->gen;
}

int64_t snapshot_made_at(const struct snapshot *s)
{
	return s->made_at;
}

const char *snapshot_why(const struct snapshot *s)
{
	return s->why;
}

size_t snapshot_sets(const struct snapshot *s)
{
	return s->nsets;
}

const struct rowset *snapshot_set(const struct snapshot *s, size_t i, bool *stale)
{
	if (stale)
		*stale = s->stale[i];
	return s->sets[i];
}

size_t snapshot_count(const struct snapshot *s)
{
	return s->core->nrecs;
}

size_t snapshot_list(const struct snapshot *s, enum snapshot_list which, const uint32_t **idx)
{
	*idx = s->core->list[which];
	return s->core->nlist[which];
}

void snapshot_get(const struct snapshot *s, size_t i, struct device *out)
{
	const struct core *c = s->core;
	const struct rec *r = &c->recs[i];
	struct device *devs;
	size_t n = r->nrefs;

	/* One row (most devices): no merge. Several, or no memory for them: merged / the first. */
	if (n == 1 || !(devs = malloc(n * sizeof(*devs)))) {
		uint32_t ref = c->refs_[r->ref_off];

		snap_row_expand(ref_data(c, ref), ref & ROWS_MAX, s->sets[ref >> 24]->listed_at,
				out);
		return;
	}
	for (size_t j = 0; j < n; j++) {
		uint32_t ref = c->refs_[r->ref_off + j];

		snap_row_expand(ref_data(c, ref), ref & ROWS_MAX, s->sets[ref >> 24]->listed_at,
				&devs[j]);
	}
	merge_devices(&c->p, devs, n, out);
	free(devs);
}

void snapshot_ids(const struct snapshot *s, size_t i, struct device *out)
{
	const struct core *c = s->core;
	const struct rec *r = &c->recs[i];

	out->nmacs = 0;
	out->guid[0] = '\0';
	for (uint32_t j = 0; j < r->nrefs; j++) {
		uint32_t ref = c->refs_[r->ref_off + j];

		for (unsigned m = 0; m < ref_row(c, ref)->nmacs; m++)
			if (out->nmacs < DEVICE_MACS_MAX &&
			    !device_has_mac(out, ref_mac(c, ref, m)))
				str_copy(out->macs[out->nmacs++], sizeof(out->macs[0]),
					 ref_mac(c, ref, m));
		if (!out->guid[0])
			str_copy(out->guid, sizeof(out->guid), ref_str(c, ref, F_GUID));
	}
}

void snapshot_state(const struct snapshot *s, size_t i, struct snapshot_state *out)
{
	const struct core *c = s->core;
	const struct rec *r = &c->recs[i];

	out->key = rec_key(c, r);
	out->mac = r->key_set != KEY_OWN ? out->key : "";
	out->guid = "";
	out->source = s->sets[c->refs_[r->ref_off] >> 24]->adapter;
	out->registered = tri_at(r->state, 0);
	out->compliant = tri_at(r->state, 1);
	out->jail_broken = tri_at(r->state, 2);
	out->stale = false;
	out->listed_at_ms = INT64_MAX;
	for (uint32_t j = 0; j < r->nrefs; j++) {
		uint32_t ref = c->refs_[r->ref_off + j];
		size_t set = ref >> 24;

		if (!*out->guid)
			out->guid = ref_str(c, ref, F_GUID);
		out->stale = out->stale || s->stale[set];
		if (s->sets[set]->listed_at < out->listed_at_ms)
			out->listed_at_ms = s->sets[set]->listed_at;
	}
}

static bool rec_matches(const struct core *c, uint32_t rec, const struct ident *id)
{
	const struct rec *r = &c->recs[rec];

	for (uint32_t j = 0; j < r->nrefs; j++)
		if (row_matches(c, c->refs_[r->ref_off + j], id->kind, id->value))
			return true;
	return false;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

size_t snapshot_find(const struct snapshot *s, const struct ident *id, uint32_t *out, size_t max)
{
	const struct core *c = s->core;
	const struct itab *t;
	uint32_t stack[64], *hits = stack;
	size_t n = 0, cap = 64, uniq = 0;

	if ((unsigned)id->kind >= IDENT_KIND_COUNT)
		return 0;
	t = &c->ix[id->kind];
	for (size_t j = ident_hash((int)id->kind, id->value) & (t->cap - 1); t->slot[j];
	     j = (j + 1) & (t->cap - 1)) {
		uint32_t rec = t->slot[j] - 1;

		if (!rec_matches(c, rec, id))
			continue;
		if (n == cap) {
			uint32_t *p = malloc(cap * 2 * sizeof(*p));

			if (!p)
				break; /* no memory: the hits so far */
			memcpy(p, hits, n * sizeof(*p));
			if (hits != stack)
				free(hits);
			hits = p;
			cap *= 2;
		}
		hits[n++] = rec;
	}
	qsort(hits, n, sizeof(*hits), cmp_u32);
	for (size_t i = 0; i < n; i++) {
		if (i && hits[i] == hits[i - 1])
			continue;
		if (uniq < max)
			out[uniq] = hits[i];
		uniq++;
	}
	if (hits != stack)
		free(hits);
	return uniq;
}

long snapshot_find_key(const struct snapshot *s, const char *key)
{
	const struct core *c = s->core;
	const struct itab *t = &c->ix[IX_KEY];

	for (size_t j = ident_hash(IX_KEY, key) & (t->cap - 1); t->slot[j];
	     j = (j + 1) & (t->cap - 1))
		if (strcmp(rec_key(c, &c->recs[t->slot[j] - 1]), key) == 0)
			return (long)(t->slot[j] - 1);
	return -1;
}

/* --- the store ------------------------------------------------------------------------------- */

struct kept {
	struct snapshot *s;
	int64_t until; /* mono ms */
};

struct snapstore {
	pthread_mutex_t mu;
	int64_t retain_ms;
	struct snapshot *cur;
	struct kept *old; /* oldest first */
	size_t nold, capold;
};

struct snapstore *snapstore_create(int64_t retain_ms)
{
	struct snapstore *st = snap_calloc(1, sizeof(*st));

	if (!st)
		return NULL;
	pthread_mutex_init(&st->mu, NULL);
	st->retain_ms = retain_ms;
	return st;
}

/* Moves the expired and the surplus generations to drop[] (unref'd by the caller, unlocked). */
static size_t prune_locked(struct snapstore *st, struct snapshot **drop, size_t max)
{
	int64_t now = clock_mono_ms();
	size_t k = 0, n = 0;

	while (k < st->nold && n < max &&
	       (st->old[k].until <= now || st->nold - k > SNAPSTORE_KEEP_MAX))
		drop[n++] = st->old[k++].s;
	if (k) {
		memmove(st->old, st->old + k, (st->nold - k) * sizeof(*st->old));
		st->nold -= k;
	}
	return n;
}

#define DROP_MAX 16

void snapstore_publish(struct snapstore *st, struct snapshot *s)
{
	struct snapshot *drop[DROP_MAX + 1];
	size_t n;

	pthread_mutex_lock(&st->mu);
	n = prune_locked(st, drop, DROP_MAX);
	if (st->cur) {
		if (snap_grow(&st->old, &st->capold, st->nold + 1, sizeof(*st->old), 16) ==
		    MDM_OK) {
			st->old[st->nold].s = st->cur;
			st->old[st->nold++].until = clock_mono_ms() + st->retain_ms;
		} else {
			drop[n++] = st->cur; /* no memory: the old one just goes */
		}
	}
	st->cur = s;
	pthread_mutex_unlock(&st->mu);
	for (size_t i = 0; i < n; i++)
		snapshot_unref(drop[i]);
}

struct snapshot *snapstore_current(struct snapstore *st)
{
	struct snapshot *s;

	pthread_mutex_lock(&st->mu);
	s = snapshot_ref(st->cur);
	pthread_mutex_unlock(&st->mu);
	return s;
}

struct snapshot *snapstore_get(struct snapstore *st, uint64_t gen)
{
	struct snapshot *drop[DROP_MAX], *s = NULL;
	size_t n;

	pthread_mutex_lock(&st->mu);
	n = prune_locked(st, drop, DROP_MAX);
	if (st->cur && st->cur->gen == gen)
		s = snapshot_ref(st->cur);
	for (size_t i = st->nold; !s && i > 0; i--)
		if (st->old[i - 1].s->gen == gen)
			s = snapshot_ref(st->old[i - 1].s);
	pthread_mutex_unlock(&st->mu);
	for (size_t i = 0; i < n; i++)
		snapshot_unref(drop[i]);
	return s;
}

void snapstore_destroy(struct snapstore *st)
{
	if (!st)
		return;
	for (size_t i = 0; i < st->nold; i++)
		snapshot_unref(st->old[i].s);
	snapshot_unref(st->cur);
	snap_free(st->old);
	pthread_mutex_destroy(&st->mu);
	snap_free(st);
}
