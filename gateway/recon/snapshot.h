/*
 * snapshot: the generational device store that answers bulk questions (no criterion, and the
 * NAC's compliance poll) without fanning out to the vendors at request time.
 *
 * - rowset: one adapter's full listing in compact form (fixed-size rows, strings interned in a
 *   pool of the rowset), immutable once finished, refcounted so a generation whose adapter
 *   failed can share the previous generation's rows. A finished rowset whose rows equal the
 *   last finished rowset of the same adapter shares that one's memory (an unchanged listing
 *   costs nothing).
 * - snapshot: one generation, the rowsets merged (records of one device across adapters become
 *   one record that points at its rows; no strings copied), with lists (all, compliant,
 *   non-compliant) and indexes by every identifier. Immutable, refcounted. A generation made
 *   from the very same rows as the previous one shares its merged core.
 * - snapstore: the current generation and the replaced ones still readable for retain_ms, so a
 *   paging walk sees one generation from start to end.
 *
 * Device key (also the prefix of transition ids): the merged device's first MAC (12 upper hex)
 * when it has one, else "guid:<GUID>", else "<adapter>:<vendor_id>".
 *
 * All functions are thread-safe on distinct objects; finished rowsets, snapshots and the store
 * may be read from any number of threads at once.
 */
#ifndef MDM_SNAPSHOT_H
#define MDM_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../adapters/adapter.h"
#include "../../core/buf.h"
#include "../../core/device.h"
#include "../../core/ident.h"
#include "../verdict/merge.h"

enum snapshot_list { SNAP_ALL = 0, SNAP_COMPLIANT, SNAP_NONCOMPLIANT, SNAP_LISTS };

/* Longest device key: "<adapter>:<vendor_id>" with the NUL. */
#define SNAPSHOT_KEY_MAX (64 + 1 + GUID_MAX + 1)

/* --- rowset ---------------------------------------------------------------------------------- */

struct rowset;

/* rowset_new: an empty, unfinished rowset for the adapter (name copied). NULL: no memory. */
struct rowset *rowset_new(const char *adapter);
/*
 * rowset_add: appends n records (copied and interned; fetched_at_ms is not kept, listed_at
 * stands for it). Only on an unfinished rowset. MDM_ERR_NOMEM, MDM_ERR_TOOBIG past 16M rows.
 */
enum mdm_err rowset_add(struct rowset *rs, const struct device *devs, size_t n);
/* rowset_fail: marks the listing failed (why copied); a failed rowset holds no rows. */
void rowset_fail(struct rowset *rs, const char *why);
/* rowset_finish: freezes the rowset; listed_at_ms (wall ms) is when its listing completed. */
void rowset_finish(struct rowset *rs, int64_t listed_at_ms);
/* rowset_ref / rowset_unref: one more reference / drop one (NULL: nothing). */
struct rowset *rowset_ref(struct rowset *rs);
void rowset_unref(struct rowset *rs);
size_t rowset_count(const struct rowset *rs);
int64_t rowset_listed_at(const struct rowset *rs);
const char *rowset_adapter(const struct rowset *rs);
/* rowset_why: why the listing failed, or NULL when it did not. */
const char *rowset_why(const struct rowset *rs);
/* rowset_get: expands row i (< rowset_count) into out. */
void rowset_get(const struct rowset *rs, size_t i, struct device *out);

/*
 * snapshot_list_adapter: lists adapter ad to the end (each page by deadline_ms, mono ms) into
 * a finished rowset *out. A failed page gives a failed rowset (rowset_why says how), still
 * MDM_OK. MDM_ERR_NOMEM only (then *out is NULL).
 */
enum mdm_err snapshot_list_adapter(struct adapter *ad, int64_t deadline_ms, struct rowset **out);

/* --- snapshot -------------------------------------------------------------------------------- */

struct snapshot;

/*
 * snapshot_make: merges sets (finished rowsets, one per adapter; stale[i]: kept from an earlier
 * cycle because this cycle's listing failed; stale may be NULL for none) into generation gen;
 * takes its own references on the sets. A failed set makes the snapshot incomplete
 * (snapshot_why). MDM_ERR_NOMEM, MDM_ERR_INVALID (an unfinished set, more than 255 sets).
 */
enum mdm_err snapshot_make(struct rowset *const *sets, const bool *stale, size_t n,
			   const struct merge_policy *p, uint64_t gen, struct snapshot **out);
uint64_t snapshot_generation(const struct snapshot *s);
/* snapshot_made_at: wall ms when snapshot_make (or snapshot_read) produced it. */
int64_t snapshot_made_at(const struct snapshot *s);
/* snapshot_why: NULL when every set listed fully (stale ones count), else which failed, how. */
const char *snapshot_why(const struct snapshot *s);
/* snapshot_sets: the number of sets; snapshot_set: set i and whether it is stale. */
size_t snapshot_sets(const struct snapshot *s);
const struct rowset *snapshot_set(const struct snapshot *s, size_t i, bool *stale);
/* snapshot_count: merged devices, sorted by first MAC, then GUID, then vendor id. */
size_t snapshot_count(const struct snapshot *s);
/* snapshot_list: the record indexes of list which (in record order) in *idx; their number. */
size_t snapshot_list(const struct snapshot *s, enum snapshot_list which, const uint32_t **idx);
/* snapshot_get: expands (merges) record i (< snapshot_count) into out. */
void snapshot_get(const struct snapshot *s, size_t i, struct device *out);
/* snapshot_ids: only out's MACs (nmacs, macs: every row's, in order) and GUID (the first), the
 * rest untouched: what a block check needs, without merging the whole record. */
void snapshot_ids(const struct snapshot *s, size_t i, struct device *out);

/* The compact state of one merged device, for transitions. Strings live as long as s; "" when
 * the device has none. stale: some row of it comes from a stale set; listed_at_ms: the oldest
 * listing among its rows. */
struct snapshot_state {
	const char *key, *mac, *guid, *source;
	enum tri registered, compliant, jail_broken;
	bool stale;
	int64_t listed_at_ms;
};
void snapshot_state(const struct snapshot *s, size_t i, struct snapshot_state *out);

/*
 * snapshot_find: the records (at most max into out, ascending) carrying identifier id in any of
 * their rows (index lookups, no scan; case rules as in ident.h). Returns how many there are
 * (may exceed max).
 */
size_t snapshot_find(const struct snapshot *s, const struct ident *id, uint32_t *out, size_t max);
/* snapshot_find_key: the record whose device key is key, or -1. */
long snapshot_find_key(const struct snapshot *s, const char *key);

struct snapshot *snapshot_ref(struct snapshot *s);
void snapshot_unref(struct snapshot *s);

/*
 * snapshot_write: appends s in the versioned, checksummed binary format to out (the sets with
 * their rows, stale flags, generation and merge policy; indexes are rebuilt on read).
 * snapshot_read: validates every length, offset and value of data (it may come from the
 * network) and rebuilds the snapshot. MDM_ERR_PARSE on anything malformed, MDM_ERR_NOMEM.
 */
enum mdm_err snapshot_write(const struct snapshot *s, struct buf *out);
enum mdm_err snapshot_read(const void *data, size_t len, struct snapshot **out);

/* snapshot_mem_bytes: bytes this module holds allocated right now (rowsets, snapshots, stores). */
size_t snapshot_mem_bytes(void);

/* --- snapstore ------------------------------------------------------------------------------- */

struct snapstore;

/* snapstore_create: an empty store keeping replaced generations retain_ms (>= 10 min in
 * production). NULL: no memory. */
struct snapstore *snapstore_create(int64_t retain_ms);
/* snapstore_publish: makes s current (takes the caller's reference); the previous current one
 * stays readable for retain_ms. At most SNAPSTORE_KEEP_MAX replaced generations are kept. */
#define SNAPSTORE_KEEP_MAX 1000
void snapstore_publish(struct snapstore *st, struct snapshot *s);
/* snapstore_current: a new reference to the current generation, or NULL before any publish. */
struct snapshot *snapstore_current(struct snapstore *st);
/* snapstore_get: a new reference to generation gen while it is kept, else NULL. */
struct snapshot *snapstore_get(struct snapstore *st, uint64_t gen);
/* snapstore_destroy: drops the store's references (readers' own references stay valid). */
void snapstore_destroy(struct snapstore *st);

#endif
