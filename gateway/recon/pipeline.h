/*
 * pipeline: what the reconciler's generations do next, wired in one call. It owns the snapstore,
 * the reconciler and (with a lease) the follower of the leader's generations, and the hooks
 * between them:
 *   - each generation of the leader: every device's state to the transitions engine (trans.h),
 *     whose confirmed transitions leave through its sink; then, with a lease, the generation is
 *     published for the followers (publish.h);
 *   - a follower (with a lease, while it does not lead): each generation of the leader goes into
 *     the snapstore (served to the NAC's poll) and to trans under the leader's generation number,
 *     so the transitions and their ids are the leader's (their CoA claims fail here: nothing is
 *     sent twice) while this instance's last known states stay current for the day it leads;
 *   - leading: the lease's word (no lease: always, epoch 1; lease_is_leader);
 *   - GET /api/v1/reconciler: trans's change guard ("guard") and the lease ("ha") added;
 *   - an admin block or unblock: trans_block under the current epoch (pipeline_block).
 * Thread-safe as its parts are; the hooks run on the reconciler's and the follower's threads.
 */
#ifndef MDM_PIPELINE_H
#define MDM_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../adapters/adapter.h"
#include "../../cache/cache.h"
#include "../verdict/lookup.h"
#include "../verdict/merge.h"
#include "lease.h"
#include "recon.h"
#include "snapshot.h"
#include "trans.h"

/* The leader keeps published generations this long in the cache (followers keep their own). */
#define PIPELINE_PUBLISH_TTL_MS (60LL * 60 * 1000)

struct pipeline_config {
	/* the reconciler (recon.h); everything pointed at is kept and must outlive the pipeline */
	const struct config_reconciler *cfg;
	const char *cfg_path;
	struct adapter *const *ads;
	size_t nads;
	struct lookup *lookup; /* write-through target; NULL: none */
	struct merge_policy policy;
	int64_t retain_ms; /* replaced generations stay readable this long (snapstore) */
	/* what a generation does next */
	struct trans *trans; /* NULL: no transitions */
	struct lease *lease; /* NULL: alone, always the leader; nothing published or followed */
	struct cache *cache; /* where generations are published and followed (with a lease) */
	const char *ns;
	size_t max_snapshot;	    /* the largest generation published or taken */
	int64_t follow_interval_ms; /* how often a follower looks for a newer generation */
	int64_t first_wait_ms;	    /* pipeline_start waits this long for the first cycle */
};

struct pipeline;

/*
 * pipeline_start: the snapstore, the reconciler (its first cycle queued at once, on its own
 * thread) and, with a lease, the follower; then waits up to first_wait_ms for the first cycle
 * (most starts list in well under a second; a slow vendor does not hold the start longer: bulk
 * answers say 503 until its cycle publishes, logged). NULL with why when memory or a thread
 * cannot be had.
 */
struct pipeline *pipeline_start(const struct pipeline_config *cfg, char *why, size_t whysz);

/* pipeline_store / pipeline_recon: the pipeline's snapstore and reconciler (borrowed). */
struct snapstore *pipeline_store(struct pipeline *p);
struct recon *pipeline_recon(struct pipeline *p);

/* pipeline_block: an admin block (blocked) or unblock of device, for trans (arg: the pipeline).
 * The ISE API's on_block hook. */
void pipeline_block(void *arg, const char *device, bool blocked);

/*
 * pipeline_stop: stops the follower, then the reconciler (between pages), then drops the store
 * (readers' own references stay valid) and frees the pipeline. NULL is fine. trans, the lease
 * and the cache are the caller's, and outlive this call.
 */
void pipeline_stop(struct pipeline *p);

#endif
