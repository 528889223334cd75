/*
 * lookup: the answer for one or more identifiers, from the cache when it can and from the
 * adapters when it must.
 *
 * What is cached is what each source said, never the merged verdict, so one adapter's refresh
 * never erases another's data and the merge is computed on read:
 *   <ns>:v1:<adapter>:dev:<vendor id>      one device record of one source
 *   <ns>:v1:<adapter>:<kind>:<value>       a pointer: the vendor ids this identifier maps to at
 *                                          that source, or "not enrolled" there
 * (values longer than 128 bytes or not plain printable ASCII are replaced by "sha256:<hex>").
 * A pointer and the records it names are read with one get_many each, for every identifier and
 * adapter of a request at once. A pair (identifier, adapter) whose pointer or records are
 * missing is asked of that adapter only; fresh answers are written back (found: fresh_ttl then
 * stale_ttl; not enrolled: negative_ttl; failures never). A stale pair is served at once while
 * one background refresh per pointer runs. A pointer being filled by someone else is waited
 * for (polled by the lookup's loop thread, never on the caller's) as long as that fill may take
 * (timeout_ms, or lock_wait_ms if longer): its answer is read from the cache, its failure
 * (remembered in-process) is taken as this request's too, and a lock let go with nothing
 * stored is taken over by one waiter, which asks. Past the wait, the adapter is asked directly.
 * A GUID some adapter reported in an answer is asked of that adapter only (guidroute.h): the
 * MDM that issued a device's certificate is the one that knows its GUID.
 */
#ifndef MDM_LOOKUP_H
#define MDM_LOOKUP_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "../../adapters/adapter.h"
#include "../../cache/cache.h"
#include "merge.h"

#define LOOKUP_MAX_ADAPTERS 32
#define LOOKUP_GUID_ROUTES 65536 /* GUID routes kept (3 MiB); see guidroute.h */

struct lookup_config {
	struct adapter *const *ads;
	size_t nads; /* at most LOOKUP_MAX_ADAPTERS */
	struct cache *cache;
	struct merge_policy policy;
	const char *ns;	      /* key namespace, e.g. "mdmgw" */
	int64_t timeout_ms;   /* per lookup */
	int64_t lock_wait_ms; /* wait for another filler before asking ourselves */
	int64_t fresh_ttl_ms;
	int64_t stale_ttl_ms;
	int64_t negative_ttl_ms;
	size_t max_batch; /* most identifiers in one call */
};

struct lookup_stats {
	atomic_ulong fresh_hits; /* (identifier, adapter) pairs answered from the cache */
	atomic_ulong stale_hits;
	atomic_ulong misses;
	atomic_ulong refreshes;
	atomic_ulong refresh_dropped;
	atomic_ulong lock_waits;
	atomic_ulong partial;
	atomic_ulong unavailable;
	atomic_ulong bad_entries;
	atomic_ulong adapter_lookups[LOOKUP_MAX_ADAPTERS]; /* identifiers asked of each adapter */
	atomic_ulong writes; /* answers written or purged: anything derived before is outdated */
	atomic_ulong guid_routed; /* (GUID, adapter) pairs not asked: another adapter issued it */
};

struct lookup;

/* lookup_create: starts the refresh thread. NULL on bad config or no memory. */
struct lookup *lookup_create(const struct lookup_config *cfg);
/*
 * lookup_destroy: answers every request still out (their adapters' parts FAIL_TIMEOUT), stops
 * the threads (dropping queued refreshes) and frees. No lookup_start during or after it.
 */
void lookup_destroy(struct lookup *l);

/*
 * lookup_done_cb: the answer of lookup_start. On MDM_OK results[i] answers ids[i]; results and
 * their devices are the callee's, valid during the call only (move out what you keep: copy the
 * struct and set devs NULL, ndevs 0). On an error results is NULL and n 0.
 */
typedef void (*lookup_done_cb)(void *arg, enum mdm_err e, struct merge_result *results, size_t n);

/*
 * lookup_start: the asynchronous lookup. The cache is read on the calling thread; nothing
 * waits for a vendor or for another request's fill on it. When every pair was in the cache,
 * or every adapter asked answered at once, cb runs before lookup_start returns; otherwise
 * later, on the lookup's own thread. cb is called exactly once when MDM_OK is returned, never
 * otherwise (MDM_ERR_TOOBIG past max_batch, MDM_ERR_NOMEM). It always comes: adapters asked
 * get timeout_ms, after which their part is FAIL_TIMEOUT; a pair waited for waits at most
 * max(timeout_ms, lock_wait_ms) first, so the answer comes within twice that at worst;
 * lookup_destroy answers whatever is still out. ids are copied.
 */
enum mdm_err lookup_start(struct lookup *l, const struct ident *ids, size_t n, lookup_done_cb cb,
			  void *arg);

/*
 * lookup_many: lookup_start, waiting for the answer (tools and tests; never on a server
 * thread). results[i] answers ids[i] (merge_result_clear each). MDM_ERR_TOOBIG past
 * max_batch, MDM_ERR_NOMEM; a vendor failure is not an error but a MERGE_UNAVAILABLE verdict.
 */
enum mdm_err lookup_many(struct lookup *l, const struct ident *ids, size_t n,
			 struct merge_result *results);

/*
 * lookup_purge: removes from the cache what every adapter said about id, and the device
 * records it pointed to, so the next query asks the vendors. *removed counts keys deleted.
 */
enum mdm_err lookup_purge(struct lookup *l, const struct ident *id, size_t *removed);

/*
 * lookup_store_listed: stores what a live MAC lookup of adapter (by name) would have stored for
 * each MAC of dev, a record from that adapter's bulk listing: the device record and a pointer
 * per MAC naming it (found: fresh_ttl then stale_ttl), counted as a write. A device without a
 * MAC stores nothing. MDM_ERR_INVALID for an adapter the lookup does not know, MDM_ERR_NOMEM.
 * Cache trouble is logged, as for live answers, not returned.
 */
enum mdm_err lookup_store_listed(struct lookup *l, const char *adapter, const struct device *dev);

/* lookup_pointer_key / lookup_device_key: the cache keys described above. */
enum mdm_err lookup_pointer_key(const char *ns, const char *adapter, const struct ident *id,
				char *out, size_t outsz);
enum mdm_err lookup_device_key(const char *ns, const char *adapter, const char *vendor_id,
			       char *out, size_t outsz);

const struct lookup_stats *lookup_stats(const struct lookup *l);

/*
 * lookup_answer_bound_ms: the longest a started lookup's answer may take: a pair waited for
 * waits for the other filler first, then asks itself (twice the timeout, and the lock wait),
 * plus a second of slack. A caller waiting for the answer gives up past it.
 */
int64_t lookup_answer_bound_ms(const struct lookup *l);

/*
 * lookup_generation: changes whenever this process writes or purges an answer. Something
 * derived from lookup results (a rendered reply) read the generation before the lookup and is
 * still current while it has not changed; other instances' writes reach this one through the
 * in-process tier's l1_ttl, so such derived data must not be kept longer than that either.
 */
unsigned long lookup_generation(const struct lookup *l);

#endif
