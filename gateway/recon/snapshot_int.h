/*
 * snapshot_int: what the snapshot's files (snapshot_rows.c: allocation accounting, rows and
 * rowsets, listing an adapter; snapshot.c: the merged core, snapshots and the store;
 * snapshot_io.c: the binary format) share. Private to gateway/recon/snapshot*.c.
 */
#ifndef MDM_SNAPSHOT_INT_H
#define MDM_SNAPSHOT_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../core/device.h"
#include "../../core/err.h"
#include "../verdict/merge.h"

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

/* --- allocation accounting (snapshot_rows.c) -------------------------------------------------- */

/* Every allocation of the module goes through these, so snapshot_mem_bytes knows what it holds. */
void *snap_alloc(size_t n);
void *snap_calloc(size_t n, size_t size);
void snap_free(void *q);
void *snap_realloc(void *q, size_t n);
/* snap_grow: makes room for need elements of size in *arr (capacity *cap), doubling. */
enum mdm_err snap_grow(void *arr, size_t *cap, size_t need, size_t size, size_t first);
/* snap_shrink: gives back what doubling over-allocated (n elements kept). */
void snap_shrink(void *arr, size_t *cap, size_t n, size_t size);
/* snap_fnv: FNV-1a of data over h (start with SNAP_FNV_INIT). */
uint64_t snap_fnv(const void *data, size_t len, uint64_t h);
#define SNAP_FNV_INIT 1469598103934665603ull

/* --- rows (snapshot_rows.c) ------------------------------------------------------------------ */

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

/* Where each F_* string lives in struct device, and its array size. */
struct snap_field {
	size_t off, size;
};
extern const struct snap_field SNAP_FIELDS[F_COUNT];

/* The row field an identifier kind lives in (MAC: the MAC list; -1: none). */
int snap_field_of(enum ident_kind k);

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

static inline enum tri tri_at(unsigned packed, int i)
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

void snap_rowdata_ref(struct rowdata *d);
void snap_rowdata_unref(struct rowdata *d);
/* snap_row_expand: row i of d into out (source and fetched_at from the caller). */
void snap_row_expand(const struct rowdata *d, size_t i, int64_t fetched_at, struct device *out);

/* --- snapshots (snapshot.c) ------------------------------------------------------------------ */

struct core;

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

/* snap_policy: the merge policy s was made under. */
struct merge_policy snap_policy(const struct snapshot *s);

#endif
