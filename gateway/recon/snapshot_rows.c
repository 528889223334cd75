/*
 * snapshot_rows: the snapshot's allocation accounting, its rows and rowsets (one adapter's
 * listing in compact form, interned strings, shared when unchanged) and the listing of an
 * adapter into a rowset.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../core/buf.h"
#include "../../core/clock.h"
#include "snapshot.h"
#include "snapshot_int.h"

/* --- allocation accounting ------------------------------------------------------------------- */

/* Every allocation carries its size in front, so the module knows what it holds (the memory
 * test asserts bytes per device from this counter, independent of the allocator). */
#define HDR 16
static atomic_size_t mem_bytes;

void *snap_alloc(size_t n)
{
	unsigned char *p = malloc(HDR + n);

	if (!p)
		return NULL;
	memcpy(p, &n, sizeof(n));
	atomic_fetch_add(&mem_bytes, n + HDR);
	return p + HDR;
}

void *snap_calloc(size_t n, size_t size)
{
	void *p;

	if (size && n > ((size_t)-1 - HDR) / size)
		return NULL;
	p = snap_alloc(n * size);
	if (p)
		memset(p, 0, n * size);
	return p;
}

void snap_free(void *q)
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

void *snap_realloc(void *q, size_t n)
{
	unsigned char *p, *np;
	size_t old;

	if (!q)
		return snap_alloc(n);
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

/* snap_grow: makes room for need elements of size in *arr (capacity *cap), doubling. */
enum mdm_err snap_grow(void *arr, size_t *cap, size_t need, size_t size, size_t first)
{
	void **pa = arr;
	size_t ncap = *cap ? *cap : first;
	void *p;

	if (need <= *cap)
		return MDM_OK;
	while (ncap < need)
		ncap *= 2;
	p = snap_realloc(*pa, ncap * size);
	if (!p)
		return MDM_ERR_NOMEM;
	*pa = p;
	*cap = ncap;
	return MDM_OK;
}

/* Gives back what doubling over-allocated: a finished rowset lives a whole cycle or more. */
void snap_shrink(void *arr, size_t *cap, size_t n, size_t size)
{
	void **pa = arr;
	void *p;

	if (!n) {
		snap_free(*pa);
		*pa = NULL;
		*cap = 0;
		return;
	}
	if (n == *cap || !(p = snap_realloc(*pa, n * size)))
		return;
	*pa = p;
	*cap = n;
}

size_t snapshot_mem_bytes(void)
{
	return atomic_load(&mem_bytes);
}

uint64_t snap_fnv(const void *data, size_t len, uint64_t h)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

/* --- rows ------------------------------------------------------------------------------------ */

#define FLD(f)                                                                                     \
	{                                                                                          \
		offsetof(struct device, f), sizeof(((struct device *)0)->f)                        \
	}
const struct snap_field SNAP_FIELDS[F_COUNT] = {
    FLD(vendor_id),    FLD(guid),     FLD(udid),       FLD(imei),	    FLD(meid),
    FLD(serial),       FLD(hostname), FLD(username),   FLD(failure_reason), FLD(remediation),
    FLD(manufacturer), FLD(model),    FLD(os_version), FLD(phone_number),
};

/* The row field an identifier kind lives in (MAC: the MAC list; -1: none). */
int snap_field_of(enum ident_kind k)
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
	snap_free(d->rows);
	snap_free(d->macs);
	snap_free(d->pool);
	snap_free(d);
}

static struct rowdata *rowdata_new(const char *adapter)
{
	struct rowdata *d = snap_calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->refs = 1;
	str_copyn(d->adapter, sizeof(d->adapter), adapter,
		  strnlen(adapter, sizeof(d->adapter) - 1));
	d->pool = snap_alloc(1);
	if (!d->pool) {
		rowdata_free(d);
		return NULL;
	}
	d->pool[0] = '\0';
	d->poollen = d->cappool = 1;
	return d;
}

void snap_rowdata_ref(struct rowdata *d)
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
		snap_free(reg);
		reg = NULL;
		capreg = 0;
	}
}

void snap_rowdata_unref(struct rowdata *d)
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

	d->digest = snap_fnv(d->pool, d->poollen, SNAP_FNV_INIT);
	if (d->nrows)
		d->digest = snap_fnv(d->rows, d->nrows * sizeof(*d->rows), d->digest);
	if (d->nmacs)
		d->digest = snap_fnv(d->macs, d->nmacs * sizeof(*d->macs), d->digest);
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
	if (!same && snap_grow(&reg, &capreg, nreg + 1, sizeof(*reg), 8) == MDM_OK) {
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
	struct rowset *rs = snap_calloc(1, sizeof(*rs));

	if (!rs)
		return NULL;
	atomic_init(&rs->refs, 1);
	str_copyn(rs->adapter, sizeof(rs->adapter), adapter,
		  strnlen(adapter, sizeof(rs->adapter) - 1));
	rs->d = rowdata_new(rs->adapter);
	if (!rs->d) {
		snap_free(rs);
		return NULL;
	}
	return rs;
}

static enum mdm_err itab_grow(struct rowset *rs)
{
	size_t ncap = rs->icap ? rs->icap * 2 : 1024;
	uint32_t *t = snap_calloc(ncap, sizeof(*t));

	if (!t)
		return MDM_ERR_NOMEM;
	for (size_t i = 0; i < rs->icap; i++) {
		uint32_t off = rs->itab[i];
		const char *s = rs->d->pool + off;
		size_t j;

		if (!off)
			continue;
		for (j = snap_fnv(s, strlen(s), SNAP_FNV_INIT) & (ncap - 1); t[j];
		     j = (j + 1) & (ncap - 1))
			;
		t[j] = off;
	}
	snap_free(rs->itab);
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
	for (i = snap_fnv(s, len, SNAP_FNV_INIT) & (rs->icap - 1); rs->itab[i];
	     i = (i + 1) & (rs->icap - 1)) {
		const char *p = d->pool + rs->itab[i];

		if (strncmp(p, s, len) == 0 && p[len] == '\0') {
			*off = rs->itab[i];
			return MDM_OK;
		}
	}
	if (d->poollen + len + 1 > UINT32_MAX)
		return MDM_ERR_TOOBIG;
	if ((e = snap_grow(&d->pool, &d->cappool, d->poollen + len + 1, 1, 4096)) != MDM_OK)
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
	return (const char *)dev + SNAP_FIELDS[f].off;
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

		if ((e = intern(rs, s, strnlen(s, SNAP_FIELDS[f].size - 1), &r.str[f])) != MDM_OK)
			return e;
	}
	if ((e = snap_grow(&d->macs, &d->capmacs, d->nmacs + nm, sizeof(*d->macs), 1024)) != MDM_OK)
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
	if ((e = snap_grow(&d->rows, &d->caprows, d->nrows + n, sizeof(*d->rows), 256)) != MDM_OK)
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

void rowset_finish(struct rowset *rs, int64_t listed_at_ms)
{
	struct rowdata *d = rs->d;

	if (rs->finished)
		return;
	snap_free(rs->itab);
	rs->itab = NULL;
	rs->icap = rs->icount = 0;
	snap_shrink(&d->rows, &d->caprows, d->nrows, sizeof(*d->rows));
	snap_shrink(&d->macs, &d->capmacs, d->nmacs, sizeof(*d->macs));
	snap_shrink(&d->pool, &d->cappool, d->poollen, 1);
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
	snap_free(rs->itab);
	snap_rowdata_unref(rs->d);
	snap_free(rs);
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
void snap_row_expand(const struct rowdata *d, size_t i, int64_t fetched_at, struct device *out)
{
	const struct row *r = &d->rows[i];

	memset(out, 0, sizeof(*out));
	str_copy(out->source, sizeof(out->source), d->adapter);
	for (int f = 0; f < F_COUNT; f++)
		str_copy((char *)out + SNAP_FIELDS[f].off, SNAP_FIELDS[f].size,
			 d->pool + r->str[f]);
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
	snap_row_expand(rs->d, i, rs->listed_at, out);
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
	clock_cond_init(&w->cv);
	w->refs = 2;
	e = adapter_list(a, cursor, on_page, w);
	if (e) {
		w->refs = 1; /* no callback will come */
		page_wait_unref(w);
		return e;
	}
	pthread_mutex_lock(&w->mu);
	while (!w->done) {
		if (clock_mono_ms() >= deadline_ms) {
			e = MDM_ERR_TIMEOUT;
			break;
		}
		clock_cond_wait_until(&w->cv, &w->mu, deadline_ms);
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
