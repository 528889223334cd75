/*
 * lease: which of several gateway instances sharing memcached runs the reconciler, and the
 * once-claim of transition ids so that a CoA is sent once across instances.
 *
 * The lease is a cache entry "<ns>:reconciler:lease" = {"holder","epoch","expires"} written by
 * add with a TTL and renewed by gets + cas every ttl/3 by a thread. Its epoch comes from a
 * never-lapsing entry "<ns>:reconciler:epoch", bumped by cas before each take-over, so epochs
 * only grow across leaders and no two leaders share one. Should memcached lose that entry
 * (restart, eviction), each instance still bumps from the highest epoch it has seen. Entries are
 * HMAC-tagged by the cache, so a forged lease is not taken for one (it is replaced). Without a
 * shared cache (no memcached) the instance is always leader with epoch 1; so is a NULL lease, which
 * every function below takes (claims then always succeed).
 */
#ifndef MDM_LEASE_H
#define MDM_LEASE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "../../cache/cache.h"

#define LEASE_TTL_MIN_MS 2000
#define LEASE_TTL_MAX_MS 600000
#define LEASE_CLAIM_TTL_MS (24LL * 3600 * 1000)

struct lease_config {
	struct cache *cache; /* the gateway's cache; NULL: claims are not remembered */
	bool shared;	     /* cache is shared with other instances (memcached servers set) */
	const char *ns;	     /* key namespace (cache.namespace) */
	const char *holder;  /* this instance's id (api.gateway_id) */
	int64_t ttl_ms;	     /* LEASE_TTL_MIN_MS..LEASE_TTL_MAX_MS */
	bool no_thread;	     /* tests: nothing renews unless lease_tick is called */
};

struct lease;

/*
 * lease_create: a lease for holder; when shared, starts the thread that takes and renews it
 * (the first attempt is made before returning, so an instance alone knows at once). NULL with a
 * reason in why on bad config or no memory. The cache is borrowed: it must outlive the lease.
 */
struct lease *lease_create(const struct lease_config *cfg, char *why, size_t whysz);

/* lease_destroy: stops the thread and, when leader, gives the lease up so another may take it
 * at once. NULL does nothing. */
void lease_destroy(struct lease *l);

/*
 * lease_is_leader: whether this instance leads now, and then its epoch in *epoch (may be NULL).
 * Cheap (no I/O): true only while the last successful take or renewal is younger than the TTL
 * less a safety margin, so a lease that could not be renewed stops counting before memcached
 * lets anyone else take it.
 */
bool lease_is_leader(struct lease *l, uint64_t *epoch);
/* lease_is_leader_cb: the same as the reconciler's is_leader callback (arg = the lease). */
bool lease_is_leader_cb(void *arg, uint64_t *epoch);

/*
 * lease_claim: claims transition_id before its CoA is sent: true for the first claimer only,
 * across instances and leadership changes (a cache add of "<ns>:coa:<id>" kept 24 hours; ids
 * too long or not fit for a key are hashed, sha256 hex). When the cache cannot answer, true
 * only while this instance leads (only the leader sends). Usable as the CoA dispatcher's claim
 * callback (arg = the lease).
 */
bool lease_claim(struct lease *l, const char *transition_id);
bool lease_claim_cb(void *arg, const char *transition_id);

/*
 * lease_tick: one take or renewal attempt, what the thread runs every ttl/3 (followers try
 * every ttl/6). For tests with no_thread; MDM_OK whether or not it leads afterwards, an error
 * only when the cache could not be asked.
 */
enum mdm_err lease_tick(struct lease *l);

/* lease_pause: tests: while paused the thread neither renews nor takes (a hung leader). */
void lease_pause(struct lease *l, bool paused);

/*
 * lease_status_json: {"shared","holder","leader","epoch","leader_holder","ttl_ms",
 * "renewed_ms_ago","changes"} for the reconciler status; leader_holder is the holder last seen
 * in the lease ("" when none), renewed_ms_ago -1 when this instance never led. A new
 * reference; NULL on no memory.
 */
json_t *lease_status_json(struct lease *l);

#endif
