/*
 * snapshot_io: the snapshot's versioned, checksummed binary format (snapshot_write, and
 * snapshot_read, which validates everything it is given).
 */
#include <stdlib.h>
#include <string.h>

#include "../../core/buf.h"
#include "../../core/clock.h"
#include "snapshot.h"
#include "snapshot_int.h"

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
	struct merge_policy p = snap_policy(s);
	unsigned policy =
	    (p.compliant_requires_all ? 1u : 0u) | (p.partial_is_unavailable ? 2u : 0u);
	enum mdm_err e;

	if ((e = buf_add(out, SNAP_MAGIC, 8)) || (e = put_u(out, SNAP_VERSION, 4)) ||
	    (e = put_u(out, policy, 4)) || (e = put_u(out, s->gen, 8)) ||
	    (e = put_u(out, (uint64_t)s->made_at, 8)) || (e = put_u(out, s->nsets, 4)))
		goto fail;
	for (size_t i = 0; i < s->nsets; i++)
		if ((e = put_set(out, s->sets[i], s->stale[i])) != MDM_OK)
			goto fail;
	if ((e = put_u(out, snap_fnv(out->mem + start, out->len - start, SNAP_FNV_INIT), 8)) !=
	    MDM_OK)
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
			if (!pool_str_ok(d, r->str[f], SNAP_FIELDS[f].size))
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
	d->rows = snap_calloc(d->nrows ? d->nrows : 1, sizeof(*d->rows));
	d->macs = snap_calloc(d->nmacs ? d->nmacs : 1, sizeof(*d->macs));
	snap_free(d->pool);
	d->pool = snap_alloc(d->poollen ? d->poollen : 1);
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

		if (get_u(&sum, 8) != snap_fnv(data, len - 8, SNAP_FNV_INIT))
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
	sets = snap_calloc(nsets ? nsets : 1, sizeof(*sets));
	stale = snap_calloc(nsets ? nsets : 1, sizeof(*stale));
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
	snap_free(sets);
	snap_free(stale);
	return e;
}
