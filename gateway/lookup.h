/*
 * lookup: the answer for one or more identifiers, from the cache when it can and from the
 * adapters when it must. Fresh entries are served as they are; stale ones are served at once
 * while one background refresh per key runs; misses fan out to every adapter, are merged, and
 * written back (found: fresh + stale TTL; not enrolled: the negative TTL; failures never).
 * A key whose refresh is already running elsewhere is waited for briefly, then asked directly.
 */
#ifndef MDM_LOOKUP_H
#define MDM_LOOKUP_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "../adapters/adapter.h"
#include "../cache/cache.h"
#include "merge.h"

struct lookup_config {
	struct adapter *const *ads;
	size_t nads;
	struct cache *cache;
	struct merge_policy policy;
	int64_t timeout_ms; /* per lookup */
	int64_t fresh_ttl_ms;
	int64_t stale_ttl_ms;
	int64_t negative_ttl_ms;
	size_t max_batch; /* most identifiers in one call */
};

struct lookup_stats {
	atomic_ulong fresh_hits;
	atomic_ulong stale_hits;
	atomic_ulong misses;
	atomic_ulong refreshes;
	atomic_ulong refresh_dropped;
	atomic_ulong lock_waits;
	atomic_ulong partial;
	atomic_ulong unavailable;
	atomic_ulong bad_entries;
};

struct lookup;

/* lookup_create: starts the refresh thread. NULL on no memory. */
struct lookup *lookup_create(const struct lookup_config *cfg);
/* lookup_destroy: stops the refresh thread (dropping queued refreshes) and frees. */
void lookup_destroy(struct lookup *l);

/*
 * lookup_many: results[i] answers ids[i] (merge_result_clear each). MDM_ERR_TOOBIG past
 * max_batch, MDM_ERR_NOMEM; a vendor failure is not an error but a MERGE_UNAVAILABLE verdict.
 */
enum mdm_err lookup_many(struct lookup *l, const struct ident *ids, size_t n,
			 struct merge_result *results);

/* lookup_cache_key: the cache key of an identifier ("mdmgw:v1:mac:0026B424FEB4"); values
 * that are long or not plain printable ASCII are replaced by their SHA-256 in hex. */
enum mdm_err lookup_cache_key(const struct ident *id, char *out, size_t outsz);

const struct lookup_stats *lookup_stats(const struct lookup *l);

#endif
