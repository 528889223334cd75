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

/*
 * Layout. A rowset is a small header (adapter, listed_at, failure) over a refcounted rowdata:
 * fixed 72-byte rows whose strings are offsets into one pool where every distinct string is
 * stored once (offset 0 is ""), and MAC lists as offsets in a side array. A snapshot is a header
 * (generation, sets, stale flags) over a refcounted core: 12-byte merged records that point at
 * their rows (set << 24 | row), the three lists and open-addressing indexes of record numbers.
 * Nothing holds a struct device or a copied string; snapshot_get rebuilds a device on demand.
 */

#define ROWS_MAX ((1u << 24) - 1) /* a row reference keeps 24 bits for the row */
#define SETS_MAX 255		  /* and 8 for the set; 0xff marks a key in the core's pool */
#define KEY_OWN 0xffu
#define GROUP_MAX 65535 /* rows of one merged device (rec.nrefs) */

/* --- allocation accounting ------------------------------------------------------------------- */

/* Every allocation carries its size in front, so the module knows what it holds (the memory
 * test asserts bytes per device from this counter, independent of the allocator). */
#define HDR 16
static atomic_size_t mem_bytes;

static void *sm_alloc(size_t n)
{
	unsigned char *p = malloc(HDR + n);

	if (!p)
		return NULL;
	memcpy(p, &n, sizeof(n));
	atomic_fetch_add(&mem_bytes, n + HDR);
	return p + HDR;
}

static void *sm_calloc(size_t n, size_t size)
{
	void *p;

	if (size && n > ((size_t)-1 - HDR) / size)
		return NULL;
	p = sm_alloc(n * size);
	if (p)
		memset(p, 0, n * size);
	return p;
}

static void sm_free(void *q)
{
	unsigned char *p;
	size_t n;

	if (!q)
		return;
	p = (unsigned char *)q - HDR;
	memcpy(&n, p, sizeof(n));
	atomic_fetch_sub(&mem_bytes, n + HDR);
	free(p);
}

static void *sm_realloc(void *q, size_t n)
{
	unsigned char *p, *np;
	size_t old;

	if (!q)
		return sm_alloc(n);
	p = (unsigned char *)q - HDR;
	memcpy(&old, p, sizeof(old));
	np = realloc(p, HDR + n);
	if (!np)
		return NULL;
	memcpy(np, &n, sizeof(n));
	atomic_fetch_add(&mem_bytes, n);
	atomic_fetch_sub(&mem_bytes, old);
	return np + HDR;
}

/* grow: makes room for need elements of size in *arr (capacity *cap), doubling. */
static enum mdm_err grow(void *arr, size_t *cap, size_t need, size_t size, size_t first)
{
	void **pa = arr;
	size_t ncap = *cap ? *cap : first;
	void *p;

	if (need <= *cap)
		return MDM_OK;
	while (ncap < need)
		ncap *= 2;
	p = sm_realloc(*pa, ncap * size);
	if (!p)
		return MDM_ERR_NOMEM;
	*pa = p;
	*cap = ncap;
	return MDM_OK;
}

size_t snapshot_mem_bytes(void)
{
	return atomic_load(&mem_bytes);
}

static uint64_t fnv(const void *data, size_t len, uint64_t h)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}
#define FNV_INIT 1469598103934665603ull

/* --- rows ------------------------------------------------------------------------------------ */

enum {
	F_VENDOR_ID = 0,
	F_GUID,
	F_UDID,
	F_IMEI,
	F_MEID,
	F_SERIAL,
	F_HOSTNAME,
	F_USERNAME,
	F_REASON,
	F_REMEDIATION,
	F_MANUFACTURER,
	F_MODEL,
	F_OS,
	F_PHONE,
	F_COUNT
};

#define FLD(f)                                                                                     \
	{                                                                                          \
		offsetof(struct device, f), sizeof(((struct device *)0)->f)                        \
	}
static const struct {
	size_t off, size;
} FIELDS[F_COUNT] = {
    FLD(vendor_id),    FLD(guid),     FLD(udid),       FLD(imei),	    FLD(meid),
    FLD(serial),       FLD(hostname), FLD(username),   FLD(failure_reason), FLD(remediation),
    FLD(manufacturer), FLD(model),    FLD(os_version), FLD(phone_number),
};

/* The row field an identifier kind lives in (MAC: the MAC list; -1: none). */
static int field_of(enum ident_kind k)
{
	switch (k) {
	case IDENT_GUID:
		return F_GUID;
	case IDENT_UDID:
		return F_UDID;
	case IDENT_IMEI:
		return F_IMEI;
	case IDENT_MEID:
		return F_MEID;
	case IDENT_SERIAL:
		return F_SERIAL;
	case IDENT_HOSTNAME:
		return F_HOSTNAME;
	case IDENT_USERNAME:
		return F_USERNAME;
	default:
		return -1;
	}
}

/* Tri-states packed two bits each, in this order. */
enum { T_REGISTERED = 0, T_COMPLIANT, T_ENCRYPTED, T_PIN, T_JAIL, T_COUNT };

struct row {
	uint32_t str[F_COUNT]; /* pool offsets */
	int64_t last_checkin_ms;
	uint32_t mac_off; /* into rowdata.macs */
	uint8_t nmacs;
	uint8_t bits;  /* bit 0: mac_local; bits 1-2: ownership */
	uint16_t tris; /* T_* two bits each */
};

static enum tri tri_at(unsigned packed, int i)
{
	return (enum tri)((packed >> (2 * i)) & 3u);
}

struct rowdata {
	int refs; /* under reg_mu */
	bool registered;
	char adapter[64];
	struct row *rows;
	size_t nrows, caprows;
	uint32_t *macs; /* pool offsets of MAC strings */
	size_t nmacs, capmacs;
	char *pool;
	size_t poollen, cappool;
	uint64_t digest;
};

struct rowset {
	atomic_int refs;
	bool finished, failed;
	char adapter[64];
	char why[256];
	int64_t listed_at;
	struct rowdata *d;
	uint32_t *itab; /* interning table while building: pool offsets, 0 empty */
	size_t icap, icount;
};

/*
 * The last finished rowdata of each adapter (weak: a rowdata leaves when freed), so a listing
 * that equals the previous one shares its memory. Rowdata refcounts move under this lock too;
 * they change a few times a cycle only.
 */
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct rowdata **reg;
static size_t nreg, capreg;

static void rowdata_free(struct rowdata *d)
{
	if (!d)
		return;
	sm_free(d->rows);
	sm_free(d->macs);
	sm_free(d->pool);
	sm_free(d);
}

static struct rowdata *rowdata_new(const char *adapter)
{
	struct rowdata *d = sm_calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->refs = 1;
	str_copyn(d->adapter, sizeof(d->adapter), adapter,
		  strnlen(adapter, sizeof(d->adapter) - 1));
	d->pool = sm_alloc(1);
	if (!d->pool) {
		rowdata_free(d);
		return NULL;
	}
	d->pool[0] = '\0';
	d->poollen = d->cappool = 1;
	return d;
}

static void rowdata_ref(struct rowdata *d)
{
	pthread_mutex_lock(&reg_mu);
	d->refs++;
	pthread_mutex_unlock(&reg_mu);
}

static void reg_remove_locked(struct rowdata *d)
{
	for (size_t i = 0; i < nreg; i++)
		if (reg[i] == d) {
			reg[i] = reg[--nreg];
			break;
		}
	d->registered = false;
	if (!nreg) {
		sm_free(reg);
		reg = NULL;
		capreg = 0;
	}
}

static void rowdata_unref(struct rowdata *d)
{
	int last;

	if (!d)
		return;
	pthread_mutex_lock(&reg_mu);
	last = --d->refs == 0;
	if (last && d->registered)
		reg_remove_locked(d);
	pthread_mutex_unlock(&reg_mu);
	if (last)
		rowdata_free(d);
}

static bool rowdata_equal(const struct rowdata *a, const struct rowdata *b)
{
	return a->digest == b->digest && a->nrows == b->nrows && a->nmacs == b->nmacs &&
	       a->poollen == b->poollen &&
	       (!a->nrows || memcmp(a->rows, b->rows, a->nrows * sizeof(*a->rows)) == 0) &&
	       (!a->nmacs || memcmp(a->macs, b->macs, a->nmacs * sizeof(*a->macs)) == 0) &&
	       memcmp(a->pool, b->pool, a->poollen) == 0;
}

/* Shares an equal registered rowdata of the same adapter, or registers d as the latest. */
static struct rowdata *rowdata_publish(struct rowdata *d)
{
	struct rowdata *same = NULL;

	d->digest = fnv(d->pool, d->poollen, FNV_INIT);
	if (d->nrows)
		d->digest = fnv(d->rows, d->nrows * sizeof(*d->rows), d->digest);
	if (d->nmacs)
		d->digest = fnv(d->macs, d->nmacs * sizeof(*d->macs), d->digest);
	pthread_mutex_lock(&reg_mu);
	for (size_t i = 0; i < nreg; i++) {
		if (strcmp(reg[i]->adapter, d->adapter) != 0)
			continue;
		if (rowdata_equal(reg[i], d)) {
			same = reg[i];
			same->refs++;
		} else {
			reg_remove_locked(reg[i]);
		}
		break;
	}
	if (!same && grow(&reg, &capreg, nreg + 1, sizeof(*reg), 8) == MDM_OK) {
		reg[nreg++] = d;
		d->registered = true;
	}
	pthread_mutex_unlock(&reg_mu);
	if (!same)
		return d;
	rowdata_free(d); /* never registered, only ours */
	return same;
}

struct rowset *rowset_new(const char *adapter)
{
	struct rowset *rs = sm_calloc(1, sizeof(*rs));

	if (!rs)
		return NULL;
	atomic_init(&rs->refs, 1);
	str_copyn(rs->adapter, sizeof(rs->adapter), adapter,
		  strnlen(adapter, sizeof(rs->adapter) - 1));
	rs->d = rowdata_new(rs->adapter);
	if (!rs->d) {
		sm_free(rs);
		return NULL;
	}
	return rs;
}

static enum mdm_err itab_grow(struct rowset *rs)
{
	size_t ncap = rs->icap ? rs->icap * 2 : 1024;
	uint32_t *t = sm_calloc(ncap, sizeof(*t));

	if (!t)
		return MDM_ERR_NOMEM;
	for (size_t i = 0; i < rs->icap; i++) {
		uint32_t off = rs->itab[i];
		const char *s = rs->d->pool + off;
		size_t j;

		if (!off)
			continue;
		for (j = fnv(s, strlen(s), FNV_INIT) & (ncap - 1); t[j]; j = (j + 1) & (ncap - 1))
			;
		t[j] = off;
	}
	sm_free(rs->itab);
	rs->itab = t;
	rs->icap = ncap;
	return MDM_OK;
}

/* intern: the pool offset of s (len bytes), stored once per rowset. */
static enum mdm_err intern(struct rowset *rs, const char *s, size_t len, uint32_t *off)
{
	struct rowdata *d = rs->d;
	size_t i;
	enum mdm_err e;

	*off = 0;
	if (!len)
		return MDM_OK;
	if ((rs->icount + 1) * 2 > rs->icap && (e = itab_grow(rs)) != MDM_OK)
		return e;
	for (i = fnv(s, len, FNV_INIT) & (rs->icap - 1); rs->itab[i];
	     i = (i + 1) & (rs->icap - 1)) {
		const char *p = d->pool + rs->itab[i];

		if (strncmp(p, s, len) == 0 && p[len] == '\0') {
			*off = rs->itab[i];
			return MDM_OK;
		}
	}
	if (d->poollen + len + 1 > UINT32_MAX)
		return MDM_ERR_TOOBIG;
	if ((e = grow(&d->pool, &d->cappool, d->poollen + len + 1, 1, 4096)) != MDM_OK)
		return e;
	memcpy(d->pool + d->poollen, s, len);
	d->pool[d->poollen + len] = '\0';
	*off = (uint32_t)d->poollen;
	rs->itab[i] = *off;
	rs->icount++;
	d->poollen += len + 1;
	return MDM_OK;
}

static const char *field_ptr(const struct device *dev, int f)
{
	return (const char *)dev + FIELDS[f].off;
}

static enum mdm_err add_one(struct rowset *rs, const struct device *dev)
{
	struct rowdata *d = rs->d;
	struct row r;
	unsigned nm = dev->nmacs < DEVICE_MACS_MAX ? dev->nmacs : DEVICE_MACS_MAX;
	enum mdm_err e;

	memset(&r, 0, sizeof(r)); /* no stray bytes: rows are compared and hashed whole */
	for (int f = 0; f < F_COUNT; f++) {
		const char *s = field_ptr(dev, f);

		if ((e = intern(rs, s, strnlen(s, FIELDS[f].size - 1), &r.str[f])) != MDM_OK)
			return e;
	}
	if ((e = grow(&d->macs, &d->capmacs, d->nmacs + nm, sizeof(*d->macs), 1024)) != MDM_OK)
		return e;
	r.mac_off = (uint32_t)d->nmacs;
	for (unsigned m = 0; m < nm; m++) {
		if ((e = intern(rs, dev->macs[m], strnlen(dev->macs[m], MAC_STR_LEN),
				&d->macs[d->nmacs + r.nmacs])) != MDM_OK)
			return e;
		if (d->macs[d->nmacs + r.nmacs])
			r.nmacs++;
	}
	d->nmacs += r.nmacs;
	r.last_checkin_ms = dev->last_checkin_ms;
	r.bits = (uint8_t)((dev->mac_local ? 1u : 0u) | ((unsigned)(dev->ownership & 3) << 1));
	r.tris = (uint16_t)((dev->registered & 3) | (dev->compliant & 3) << 2 |
			    (dev->disk_encrypted & 3) << 4 | (dev->pin_lock & 3) << 6 |
			    (dev->jail_broken & 3) << 8);
	d->rows[d->nrows++] = r;
	return MDM_OK;
}

enum mdm_err rowset_add(struct rowset *rs, const struct device *devs, size_t n)
{
	struct rowdata *d = rs->d;
	enum mdm_err e;

	if (rs->finished || rs->failed)
		return MDM_ERR_INVALID;
	if (n > ROWS_MAX - d->nrows)
		return MDM_ERR_TOOBIG;
	if ((e = grow(&d->rows, &d->caprows, d->nrows + n, sizeof(*d->rows), 256)) != MDM_OK)
		return e;
	for (size_t i = 0; i < n; i++)
		if ((e = add_one(rs, &devs[i])) != MDM_OK)
			return e;
	return MDM_OK;
}

void rowset_fail(struct rowset *rs, const char *why)
{
	if (rs->finished)
		return;
	rs->failed = true;
	str_copyn(rs->why, sizeof(rs->why), why ? why : "failed",
		  strnlen(why ? why : "failed", sizeof(rs->why) - 1));
	rs->d->nrows = 0;
	rs->d->nmacs = 0;
}

/* Gives back what doubling over-allocated: a finished rowset lives a whole cycle or more. */
static void shrink(void *arr, size_t *cap, size_t n, size_t size)
{
	void **pa = arr;
	void *p;

	if (!n) {
		sm_free(*pa);
		*pa = NULL;
		*cap = 0;
		return;
	}
	if (n == *cap || !(p = sm_realloc(*pa, n * size)))
		return;
	*pa = p;
	*cap = n;
}

void rowset_finish(struct rowset *rs, int64_t listed_at_ms)
{
	struct rowdata *d = rs->d;

	if (rs->finished)
		return;
	sm_free(rs->itab);
	rs->itab = NULL;
	rs->icap = rs->icount = 0;
	shrink(&d->rows, &d->caprows, d->nrows, sizeof(*d->rows));
	shrink(&d->macs, &d->capmacs, d->nmacs, sizeof(*d->macs));
	shrink(&d->pool, &d->cappool, d->poollen, 1);
	rs->listed_at = listed_at_ms;
	rs->finished = true;
	if (!rs->failed)
		rs->d = rowdata_publish(d);
}

struct rowset *rowset_ref(struct rowset *rs)
{
	if (rs)
		atomic_fetch_add(&rs->refs, 1);
	return rs;
}

void rowset_unref(struct rowset *rs)
{
	if (!rs || atomic_fetch_sub(&rs->refs, 1) != 1)
		return;
	sm_free(rs->itab);
	rowdata_unref(rs->d);
	sm_free(rs);
}

size_t rowset_count(const struct rowset *rs)
{
	return rs->d->nrows;
}

int64_t rowset_listed_at(const struct rowset *rs)
{
	return rs->listed_at;
}

const char *rowset_adapter(const struct rowset *rs)
{
	return rs->adapter;
}

const char *rowset_why(const struct rowset *rs)
{
	return rs->failed ? rs->why : NULL;
}

/* Expands row i of d into out (source and fetched_at from the caller). */
static void row_expand(const struct rowdata *d, size_t i, int64_t fetched_at, struct device *out)
{
	const struct row *r = &d->rows[i];

	memset(out, 0, sizeof(*out));
	str_copy(out->source, sizeof(out->source), d->adapter);
	for (int f = 0; f < F_COUNT; f++)
		str_copy((char *)out + FIELDS[f].off, FIELDS[f].size, d->pool + r->str[f]);
	for (unsigned m = 0; m < r->nmacs && m < DEVICE_MACS_MAX; m++)
		str_copy(out->macs[m], sizeof(out->macs[m]), d->pool + d->macs[r->mac_off + m]);
	out->nmacs = r->nmacs;
	out->mac_local = r->bits & 1u;
	out->ownership = (enum ownership)((r->bits >> 1) & 3u);
	out->registered = tri_at(r->tris, T_REGISTERED);
	out->compliant = tri_at(r->tris, T_COMPLIANT);
	out->disk_encrypted = tri_at(r->tris, T_ENCRYPTED);
	out->pin_lock = tri_at(r->tris, T_PIN);
	out->jail_broken = tri_at(r->tris, T_JAIL);
	out->last_checkin_ms = r->last_checkin_ms;
	out->fetched_at_ms = fetched_at;
}

void rowset_get(const struct rowset *rs, size_t i, struct device *out)
{
	row_expand(rs->d, i, rs->listed_at, out);
}

/* --- listing an adapter ---------------------------------------------------------------------- */

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

enum mdm_err snapshot_list_adapter(struct adapter *ad, int64_t deadline_ms, struct rowset **out)
{
	struct rowset *rs = rowset_new(ad->name);
	char cursor[64] = "";
	enum mdm_err e = MDM_OK;

	*out = NULL;
	if (!rs)
		return MDM_ERR_NOMEM;
	for (;;) {
		struct adapter_page page;

		e = list_page(ad, cursor, deadline_ms, &page);
		if (e == MDM_ERR_NOMEM)
			break;
		if (e) {
			rowset_fail(rs, err_str(e));
			e = MDM_OK;
			break;
		}
		if (page.oc.kind == OUTCOME_FAILED) {
			rowset_fail(rs, page.oc.why);
			outcome_clear(&page.oc);
			break;
		}
		/* an empty page may carry no array at all */
		e = page.oc.ndevs ? rowset_add(rs, page.oc.devs, page.oc.ndevs) : MDM_OK;
		outcome_clear(&page.oc);
		if (e || !page.next_cursor[0])
			break;
		memcpy(cursor, page.next_cursor, sizeof(cursor));
	}
	if (e == MDM_ERR_TOOBIG) {
		rowset_fail(rs, "listing larger than 16M devices");
		e = MDM_OK;
	}
	if (e) {
		rowset_unref(rs);
		return e;
	}
	rowset_finish(rs, clock_wall_ms());
	*out = rs;
	return MDM_OK;
}

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

struct snapshot {
	atomic_int refs;
	uint64_t gen;
	int64_t made_at;
	struct core *core;
	struct rowset **sets;
	bool *stale;
	size_t nsets;
	char *why; /* NULL: complete */
};

static void core_free(struct core *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nsets; i++)
		rowdata_unref(c->data[i]);
	sm_free(c->data);
	sm_free(c->recs);
	sm_free(c->refs_);
	sm_free(c->keys);
	for (int l = 0; l < SNAP_LISTS; l++)
		sm_free(c->list[l]);
	for (int k = 0; k < IX_COUNT; k++)
		sm_free(c->ix[k].slot);
	sm_free(c);
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
	int f = field_of(kind);
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
	uint32_t *parent = sm_calloc(n ? n : 1, sizeof(*parent));
	uint32_t *dense = sm_calloc(n ? n : 1, sizeof(*dense));
	size_t nkeys = 0, groups = 0, roots = 0;
	enum mdm_err e = MDM_ERR_NOMEM;

	for (size_t i = 0; i < n; i++) {
		row_ids(c, all[i], &ids);
		nkeys += row_keys(&ids, keys);
	}
	m.cap = 16;
	while (m.cap < nkeys * 2)
		m.cap *= 2;
	m.hash = sm_calloc(m.cap, sizeof(*m.hash));
	m.row = sm_calloc(m.cap, sizeof(*m.row));
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
	sm_free(m.hash);
	sm_free(m.row);
	sm_free(parent);
	sm_free(dense);
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
	if ((e = grow(&c->keys, &c->capkeys, c->keyslen + need, 1, 1024)) != MDM_OK)
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
	size_t *start = sm_calloc(ngroups + 1, sizeof(*start));
	size_t *fill = sm_calloc(ngroups + 1, sizeof(*fill));
	struct order *ord = sm_calloc(ngroups ? ngroups : 1, sizeof(*ord));
	enum mdm_err e = MDM_ERR_NOMEM;

	c->refs_ = sm_calloc(c->nrefs ? c->nrefs : 1, sizeof(*c->refs_));
	c->recs = sm_calloc(ngroups ? ngroups : 1, sizeof(*c->recs));
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
	sm_free(start);
	sm_free(fill);
	sm_free(ord);
	return e;
}

static enum mdm_err build_lists(struct core *c)
{
	for (int l = 0; l < SNAP_LISTS; l++) {
		c->list[l] = sm_alloc((c->nrecs ? c->nrecs : 1) * sizeof(uint32_t));
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
		shrink(&c->list[l], &(size_t){c->nrecs ? c->nrecs : 1}, c->nlist[l],
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
			const char *s = ref_str(c, ref, field_of((enum ident_kind)k));

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
		c->ix[k].slot = sm_calloc(c->ix[k].cap, sizeof(uint32_t));
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
	struct core *c = sm_calloc(1, sizeof(*c));
	uint32_t *all = NULL, *of = NULL;
	size_t ngroups = 0, k = 0;
	enum mdm_err e = MDM_ERR_NOMEM;

	*out = NULL;
	if (!c || !(c->data = sm_calloc(n ? n : 1, sizeof(*c->data))))
		goto fail;
	c->refs = 1;
	c->p = *p;
	c->nsets = n;
	for (size_t i = 0; i < n; i++) {
		rowdata_ref(sets[i]->d);
		c->data[i] = sets[i]->d;
		c->nrefs += sets[i]->d->nrows;
	}
	all = sm_calloc(c->nrefs ? c->nrefs : 1, sizeof(*all));
	of = sm_calloc(c->nrefs ? c->nrefs : 1, sizeof(*of));
	if (!all || !of)
		goto fail;
	for (size_t i = 0; i < n; i++)
		for (size_t r = 0; r < c->data[i]->nrows; r++)
			all[k++] = (uint32_t)(i << 24 | r);
	if ((e = group_rows(c, all, c->nrefs, of, &ngroups)) != MDM_OK ||
	    (e = build_records(c, all, of, ngroups)) != MDM_OK || (e = build_lists(c)) != MDM_OK ||
	    (e = build_indexes(c)) != MDM_OK)
		goto fail;
	shrink(&c->keys, &c->capkeys, c->keyslen, 1);
	sm_free(all);
	sm_free(of);
	*out = c;
	return MDM_OK;
fail:
	sm_free(all);
	sm_free(of);
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
	sm_free(s->sets);
	sm_free(s->stale);
	sm_free(s->why);
	core_unref(s->core);
	sm_free(s);
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
	if (!e && b.len && (s->why = sm_alloc(b.len + 1)) == NULL)
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
	s = sm_calloc(1, sizeof(*s));
	if (!s)
		return e;
	atomic_init(&s->refs, 1);
	s->gen = gen;
	s->sets = sm_calloc(n ? n : 1, sizeof(*s->sets));
	s->stale = sm_calloc(n ? n : 1, sizeof(*s->stale));
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

		row_expand(ref_data(c, ref), ref & ROWS_MAX, s->sets[ref >> 24]->listed_at, out);
		return;
	}
	for (size_t j = 0; j < n; j++) {
		uint32_t ref = c->refs_[r->ref_off + j];

		row_expand(ref_data(c, ref), ref & ROWS_MAX, s->sets[ref >> 24]->listed_at,
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

/* --- serialization --------------------------------------------------------------------------- */

/*
 * Format, little-endian throughout:
 *   "MDMSNAP\0", u32 version (1), u32 policy bits, u64 generation, i64 made_at, u32 nsets,
 *   per set: u16 adapter length + bytes, u8 stale, u8 failed, u16 why length + bytes,
 *            i64 listed_at, u32 rows, u32 macs, u32 pool bytes,
 *            rows (14 x u32 string offsets, i64 last check-in, u32 mac offset, u8 MACs,
 *            u8 bits, u16 tri-states), macs (u32 pool offsets), pool,
 *   u64 FNV-1a of everything before.
 * The reader trusts nothing: the checksum first, then every count against the bytes left,
 * every offset against its pool, every string against its field's bound, every value's range.
 */
#define SNAP_MAGIC "MDMSNAP"
#define SNAP_VERSION 1u

static enum mdm_err put_u(struct buf *b, uint64_t v, size_t bytes)
{
	unsigned char le[8];

	for (size_t i = 0; i < bytes; i++)
		le[i] = (unsigned char)(v >> (8 * i));
	return buf_add(b, le, bytes);
}

static enum mdm_err put_str16(struct buf *b, const char *s)
{
	size_t len = strlen(s);
	enum mdm_err e = put_u(b, len, 2);

	return e ? e : buf_add(b, s, len);
}

static enum mdm_err put_set(struct buf *b, const struct rowset *rs, bool stale)
{
	const struct rowdata *d = rs->d;
	enum mdm_err e = MDM_OK;

	if ((e = put_str16(b, rs->adapter)) || (e = put_u(b, stale, 1)) ||
	    (e = put_u(b, rs->failed, 1)) || (e = put_str16(b, rs->failed ? rs->why : "")) ||
	    (e = put_u(b, (uint64_t)rs->listed_at, 8)) || (e = put_u(b, d->nrows, 4)) ||
	    (e = put_u(b, d->nmacs, 4)) || (e = put_u(b, d->poollen, 4)))
		return e;
	for (size_t i = 0; i < d->nrows && !e; i++) {
		const struct row *r = &d->rows[i];

		for (int f = 0; f < F_COUNT && !e; f++)
			e = put_u(b, r->str[f], 4);
		if (!e && !(e = put_u(b, (uint64_t)r->last_checkin_ms, 8)) &&
		    !(e = put_u(b, r->mac_off, 4)) && !(e = put_u(b, r->nmacs, 1)) &&
		    !(e = put_u(b, r->bits, 1)))
			e = put_u(b, r->tris, 2);
	}
	for (size_t i = 0; i < d->nmacs && !e; i++)
		e = put_u(b, d->macs[i], 4);
	return e ? e : buf_add(b, d->pool, d->poollen);
}

enum mdm_err snapshot_write(const struct snapshot *s, struct buf *out)
{
	size_t start = out->len;
	unsigned policy = (s->core->p.compliant_requires_all ? 1u : 0u) |
			  (s->core->p.partial_is_unavailable ? 2u : 0u);
	enum mdm_err e;

	if ((e = buf_add(out, SNAP_MAGIC, 8)) || (e = put_u(out, SNAP_VERSION, 4)) ||
	    (e = put_u(out, policy, 4)) || (e = put_u(out, s->gen, 8)) ||
	    (e = put_u(out, (uint64_t)s->made_at, 8)) || (e = put_u(out, s->nsets, 4)))
		goto fail;
	for (size_t i = 0; i < s->nsets; i++)
		if ((e = put_set(out, s->sets[i], s->stale[i])) != MDM_OK)
			goto fail;
	if ((e = put_u(out, fnv(out->mem + start, out->len - start, FNV_INIT), 8)) != MDM_OK)
		goto fail;
	return MDM_OK;
fail:
	out->len = start; /* nothing half-written */
	if (out->mem)
		out->mem[start] = '\0';
	return e;
}

struct reader {
	const unsigned char *p;
	size_t left;
	bool bad;
};

static uint64_t get_u(struct reader *r, size_t bytes)
{
	uint64_t v = 0;

	if (r->bad || r->left < bytes) {
		r->bad = true;
		return 0;
	}
	for (size_t i = 0; i < bytes; i++)
		v |= (uint64_t)r->p[i] << (8 * i);
	r->p += bytes;
	r->left -= bytes;
	return v;
}

/* A length-prefixed string into dst (size bytes); bad when it does not fit or holds a NUL. */
static void get_str16(struct reader *r, char *dst, size_t size)
{
	size_t len = (size_t)get_u(r, 2);

	if (r->bad || len >= size || r->left < len || memchr(r->p, '\0', len)) {
		r->bad = true;
		dst[0] = '\0';
		return;
	}
	memcpy(dst, r->p, len);
	dst[len] = '\0';
	r->p += len;
	r->left -= len;
}

static bool is_mac(const char *s)
{
	for (int i = 0; i < MAC_STR_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'F')))
			return false;
	return s[MAC_STR_LEN] == '\0';
}

/* A pool string at off, shorter than size (its field's array). */
static bool pool_str_ok(const struct rowdata *d, uint32_t off, size_t size)
{
	return off < d->poollen && strnlen(d->pool + off, d->poollen - off) < size;
}

static bool rowdata_valid(const struct rowdata *d)
{
	if (!d->poollen || d->pool[0] != '\0' || d->pool[d->poollen - 1] != '\0')
		return false;
	for (size_t i = 0; i < d->nmacs; i++)
		if (!pool_str_ok(d, d->macs[i], MAC_STR_LEN + 1) || !is_mac(d->pool + d->macs[i]))
			return false;
	for (size_t i = 0; i < d->nrows; i++) {
		const struct row *r = &d->rows[i];

		for (int f = 0; f < F_COUNT; f++)
			if (!pool_str_ok(d, r->str[f], FIELDS[f].size))
				return false;
		if (r->nmacs > DEVICE_MACS_MAX || r->mac_off > d->nmacs ||
		    r->nmacs > d->nmacs - r->mac_off || (r->bits & ~7u) ||
		    ((r->bits >> 1) & 3u) > 2 || (r->tris >> (2 * T_COUNT)))
			return false;
		for (int t = 0; t < T_COUNT; t++)
			if (tri_at(r->tris, t) > TRI_TRUE)
				return false;
	}
	return true;
}

static enum mdm_err read_rows(struct reader *r, struct rowdata *d)
{
	d->rows = sm_calloc(d->nrows ? d->nrows : 1, sizeof(*d->rows));
	d->macs = sm_calloc(d->nmacs ? d->nmacs : 1, sizeof(*d->macs));
	sm_free(d->pool);
	d->pool = sm_alloc(d->poollen ? d->poollen : 1);
	if (!d->rows || !d->macs || !d->pool)
		return MDM_ERR_NOMEM;
	d->caprows = d->nrows;
	d->capmacs = d->nmacs;
	d->cappool = d->poollen;
	for (size_t i = 0; i < d->nrows && !r->bad; i++) {
		struct row *w = &d->rows[i];

		for (int f = 0; f < F_COUNT; f++)
			w->str[f] = (uint32_t)get_u(r, 4);
		w->last_checkin_ms = (int64_t)get_u(r, 8);
		w->mac_off = (uint32_t)get_u(r, 4);
		w->nmacs = (uint8_t)get_u(r, 1);
		w->bits = (uint8_t)get_u(r, 1);
		w->tris = (uint16_t)get_u(r, 2);
	}
	for (size_t i = 0; i < d->nmacs; i++)
		d->macs[i] = (uint32_t)get_u(r, 4);
	if (r->bad || r->left < d->poollen)
		return MDM_ERR_PARSE;
	memcpy(d->pool, r->p, d->poollen);
	r->p += d->poollen;
	r->left -= d->poollen;
	return rowdata_valid(d) ? MDM_OK : MDM_ERR_PARSE;
}

/* One set from the reader into a finished rowset. */
static enum mdm_err read_set(struct reader *r, struct rowset **out, bool *stale)
{
	char adapter[64];
	struct rowset *rs;
	struct rowdata *d;
	unsigned failed;
	int64_t listed_at;
	enum mdm_err e;

	*out = NULL;
	get_str16(r, adapter, sizeof(adapter));
	*stale = get_u(r, 1) != 0;
	failed = (unsigned)get_u(r, 1);
	if (r->bad || failed > 1 || !(rs = rowset_new(adapter)))
		return r->bad || failed > 1 ? MDM_ERR_PARSE : MDM_ERR_NOMEM;
	d = rs->d;
	get_str16(r, rs->why, sizeof(rs->why));
	listed_at = (int64_t)get_u(r, 8);
	d->nrows = (size_t)get_u(r, 4);
	d->nmacs = (size_t)get_u(r, 4);
	d->poollen = (size_t)get_u(r, 4);
	/* every count against the bytes left before allocating anything for it */
	if (r->bad || d->nrows > ROWS_MAX || d->nrows > r->left / 72 ||
	    d->nmacs > d->nrows * DEVICE_MACS_MAX || d->nmacs > r->left / 4 ||
	    d->poollen > r->left || (failed && d->nrows)) {
		d->nrows = d->nmacs = 0;
		d->poollen = 1;
		rowset_unref(rs);
		return MDM_ERR_PARSE;
	}
	e = read_rows(r, d);
	if (e) {
		rowset_unref(rs);
		return e;
	}
	rs->failed = failed;
	rowset_finish(rs, listed_at);
	*out = rs;
	return MDM_OK;
}

enum mdm_err snapshot_read(const void *data, size_t len, struct snapshot **out)
{
	struct reader r = {data, len, false};
	struct rowset **sets = NULL;
	bool *stale = NULL;
	struct merge_policy p;
	unsigned policy;
	uint64_t gen;
	int64_t made_at;
	size_t nsets = 0, got = 0;
	enum mdm_err e = MDM_ERR_PARSE;

	*out = NULL;
	if (len < 8 + 8 + 8 + 8 + 4 + 8 || memcmp(data, SNAP_MAGIC, 8) != 0)
		return MDM_ERR_PARSE;
	r.left -= 8;
	{
		struct reader sum = {(const unsigned char *)data + len - 8, 8, false};

		if (get_u(&sum, 8) != fnv(data, len - 8, FNV_INIT))
			return MDM_ERR_PARSE;
	}
	r.p += 8;
	r.left -= 8; /* the checksum is not content */
	if (get_u(&r, 4) != SNAP_VERSION)
		return MDM_ERR_PARSE;
	policy = (unsigned)get_u(&r, 4);
	gen = get_u(&r, 8);
	made_at = (int64_t)get_u(&r, 8);
	nsets = (size_t)get_u(&r, 4);
	if (r.bad || policy > 3 || nsets > SETS_MAX)
		return MDM_ERR_PARSE;
	p.compliant_requires_all = policy & 1u;
	p.partial_is_unavailable = (policy & 2u) != 0;
	sets = sm_calloc(nsets ? nsets : 1, sizeof(*sets));
	stale = sm_calloc(nsets ? nsets : 1, sizeof(*stale));
	if (!sets || !stale) {
		e = MDM_ERR_NOMEM;
		goto out;
	}
	for (got = 0; got < nsets; got++)
		if ((e = read_set(&r, &sets[got], &stale[got])) != MDM_OK)
			goto out;
	if (r.left) {
		e = MDM_ERR_PARSE; /* trailing bytes: not what a writer wrote */
		goto out;
	}
	e = snapshot_make(sets, stale, nsets, &p, gen, out);
	if (!e)
		(*out)->made_at = made_at;
out:
	for (size_t i = 0; i < got; i++)
		rowset_unref(sets[i]);
	sm_free(sets);
	sm_free(stale);
	return e;
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
	struct snapstore *st = sm_calloc(1, sizeof(*st));

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
		if (grow(&st->old, &st->capold, st->nold + 1, sizeof(*st->old), 16) == MDM_OK) {
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
	sm_free(st->old);
	pthread_mutex_destroy(&st->mu);
	sm_free(st);
}
