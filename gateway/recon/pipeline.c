/*
 * pipeline: the reconciler's generations to the transitions engine and to the followers, and
 * a follower's copies of the leader's generations to the snapstore and to trans; see pipeline.h.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../core/buf.h"
#include "../../core/log.h"
#include "pipeline.h"
#include "publish.h"

struct pipeline {
	struct pipeline_config cfg;
	struct snapstore *store;
	struct recon *recon;
	struct publish_follow *follow;
};

/*
 * feed_trans: every device's state of generation s, compared by trans with the last known one;
 * confirmed transitions leave through trans's sink. complete: every adapter listed fully
 * (absence from a complete generation counts).
 */
static void feed_trans(struct pipeline *p, struct snapshot *s, uint64_t gen, bool complete,
		       uint64_t epoch)
{
	size_t n = snapshot_count(s), ntrans = 0;
	struct trans_dev *devs;
	enum mdm_err rc;

	if (!p->cfg.trans)
		return;
	devs = calloc(n ? n : 1, sizeof(*devs));
	if (!devs) {
		log_err("generation %llu: no memory to compare %zu devices; no CoA this cycle",
			(unsigned long long)gen, n);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct snapshot_state st;

		snapshot_state(s, i, &st);
		devs[i] = (struct trans_dev){st.key,	    st.mac,	  st.guid,	  st.source,
					     st.registered, st.compliant, st.jail_broken, st.stale};
		complete = complete && !st.stale;
	}
	rc = trans_cycle(p->cfg.trans, gen, devs, n, complete, epoch, &ntrans);
	free(devs);
	if (rc != MDM_OK)
		log_err("generation %llu: transitions not computed: %s", (unsigned long long)gen,
			err_str(rc));
}

/* publish_generation: the leader's generation s for the followers (HA only). */
static void publish_generation(struct pipeline *p, struct snapshot *s, uint64_t gen)
{
	struct buf b;
	enum mdm_err rc;

	buf_init(&b, p->cfg.max_snapshot + 1);
	rc = snapshot_write(s, &b);
	if (rc == MDM_OK)
		rc = publish_put(p->cfg.cache, p->cfg.ns, gen, b.mem, b.len,
				 PIPELINE_PUBLISH_TTL_MS, p->cfg.max_snapshot);
	if (rc == MDM_OK && gen > 2)
		(void)publish_drop(p->cfg.cache, p->cfg.ns, gen - 2);
	if (rc != MDM_OK)
		log_warn("ha: generation %llu not published for the followers: %s",
			 (unsigned long long)gen, err_str(rc));
	buf_free(&b);
}

/* on_generation: the leader's new generation: transitions, then the followers' copy. */
static void on_generation(void *arg, struct snapshot *s, const struct recon_cycle *c)
{
	struct pipeline *p = arg;

	feed_trans(p, s, c->generation, c->complete, c->epoch);
	if (p->cfg.lease)
		publish_generation(p, s, c->generation);
}

/* on_status: trans's change guard ("guard") and the lease ("ha") in GET /api/v1/reconciler. */
static void on_status(void *arg, json_t *status)
{
	struct pipeline *p = arg;
	struct buf b;
	json_t *guard, *ha;

	if (p->cfg.lease && (ha = lease_status_json(p->cfg.lease)) != NULL)
		json_object_set_new(status, "ha", ha);
	if (!p->cfg.trans)
		return;
	buf_init(&b, 1 << 16);
	if (trans_status_json(p->cfg.trans, &b) == MDM_OK &&
	    (guard = json_loadb(b.mem, b.len, 0, NULL)) != NULL)
		json_object_set_new(status, "guard", guard);
	buf_free(&b);
}

/* follow_skip: the leader has its own generations. */
static bool follow_skip(void *arg)
{
	struct pipeline *p = arg;

	return lease_is_leader(p->cfg.lease, NULL);
}

/* follow_generation: a follower's copy of the leader's generation (pipeline.h says why). */
static void follow_generation(void *arg, uint64_t gen, const void *bytes, size_t len)
{
	struct pipeline *p = arg;
	struct snapshot *s = NULL;
	enum mdm_err rc = snapshot_read(bytes, len, &s);

	if (rc != MDM_OK) {
		log_warn("ha: generation %llu from the leader refused: %s", (unsigned long long)gen,
			 err_str(rc));
		return;
	}
	log_info("ha: following generation %llu (%zu devices)", (unsigned long long)gen,
		 snapshot_count(s));
	snapstore_publish(p->store, snapshot_ref(s));
	feed_trans(p, s, gen, snapshot_why(s) == NULL, 0);
	snapshot_unref(s);
}

void pipeline_block(void *arg, const char *device, bool blocked)
{
	struct pipeline *p = arg;
	uint64_t epoch = 0;

	if (!p->cfg.trans)
		return;
	(void)lease_is_leader(p->cfg.lease, &epoch);
	trans_block(p->cfg.trans, device, blocked, epoch);
}

/* is_leader: alone, always (epoch 1); with a lease, while it holds. */
static bool is_leader(void *arg, uint64_t *epoch)
{
	struct pipeline *p = arg;

	return lease_is_leader(p->cfg.lease, epoch);
}

static bool start_recon(struct pipeline *p)
{
	const struct pipeline_config *c = &p->cfg;
	struct recon_params rp = {.cfg = c->cfg,
				  .cfg_path = c->cfg_path,
				  .ads = c->ads,
				  .nads = c->nads,
				  .store = p->store,
				  .lookup = c->lookup,
				  .policy = c->policy,
				  .hooks = {.on_generation = on_generation,
					    .is_leader = is_leader,
					    .status = on_status,
					    .arg = p},
				  .run_at_start = true};

	p->recon = recon_create(&rp);
	return p->recon != NULL;
}

static bool start_follow(struct pipeline *p)
{
	const struct pipeline_config *c = &p->cfg;
	struct publish_follow_config fc = {
	    c->cache, c->ns,	  c->follow_interval_ms, c->max_snapshot, follow_generation,
	    p,	      follow_skip};

	p->follow = publish_follow_start(&fc);
	return p->follow != NULL;
}

struct pipeline *pipeline_start(const struct pipeline_config *cfg, char *why, size_t whysz)
{
	struct pipeline *p = calloc(1, sizeof(*p));

	if (!p || !(p->store = snapstore_create(cfg->retain_ms))) {
		snprintf(why, whysz, "cannot start the reconciler: out of memory");
		free(p);
		return NULL;
	}
	p->cfg = *cfg;
	if (!start_recon(p)) {
		snprintf(why, whysz, "cannot start the reconciler: out of memory");
		pipeline_stop(p);
		return NULL;
	}
	if (cfg->lease && !start_follow(p)) {
		snprintf(why, whysz, "ha: cannot start following the leader's generations");
		pipeline_stop(p);
		return NULL;
	}
	if (!recon_wait(p->recon, 1, cfg->first_wait_ms))
		log_warn("reconciler: first cycle still running after %lld ms: serving; bulk "
			 "queries answer 503 until it publishes",
			 (long long)cfg->first_wait_ms);
	return p;
}

struct snapstore *pipeline_store(struct pipeline *p)
{
	return p->store;
}

struct recon *pipeline_recon(struct pipeline *p)
{
	return p->recon;
}

void pipeline_stop(struct pipeline *p)
{
	if (!p)
		return;
	publish_follow_stop(p->follow); /* first: it publishes into the store and feeds trans */
	recon_destroy(p->recon);	/* it lists the adapters, writes through, feeds trans */
	snapstore_destroy(p->store);
	free(p);
}
