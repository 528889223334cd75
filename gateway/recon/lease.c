/*
 * lease: the reconciler's leader lease and the once-claim of transition ids (see lease.h).
 *
 * Taking over: the lease entry must be absent; the epoch entry is bumped by cas (or added when
 * there is none) first, then the lease is added with that epoch. Two contenders both bumping
 * get different epochs, and only one add wins; an epoch bumped by a loser is simply skipped, so
 * epochs are unique and grow, with gaps. Renewing: gets + cas of the lease, which must still
 * name this holder and epoch; anything else (changed, gone, another holder) is a loss.
 * Leadership is judged by time since the last success, measured before the request went out,
 * so it ends before memcached can let the entry lapse (memcached's clock ticks in seconds: an
 * item may go up to a second early, hence a margin of at least a second).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "../../core/buf.h"
#include "../../core/clock.h"
#include "../../core/log.h"
#include "lease.h"

#define HOLDER_MAX 64
#define VALUE_MAX 256

struct lease {
	struct cache *cache;
	bool shared, no_thread;
	char holder[HOLDER_MAX];
	char lease_key[CACHE_KEY_MAX + 1];
	char epoch_key[CACHE_KEY_MAX + 1];
	char ns[CACHE_KEY_MAX + 1];
	int64_t ttl_ms, valid_ms; /* valid_ms: how long a success counts: ttl less the margin */

	pthread_mutex_t mu; /* guards everything below */
	pthread_cond_t cv;  /* on CLOCK_MONOTONIC: wakes the thread to stop */
	bool leader;
	uint64_t epoch;
	int64_t renewed_mono; /* when the last successful take or renewal was sent */
	char seen_holder[HOLDER_MAX];
	uint64_t seen_epoch; /* highest epoch seen here: epochs keep growing even when
			      * memcached lost the epoch entry (restart, eviction) */
	unsigned long changes;
	bool paused, stop;
	pthread_t thread;
	bool thread_started;
};

/* --- values ---------------------------------------------------------------------------------- */

/* {"holder","epoch","expires"} into out (VALUE_MAX bytes). */
static enum mdm_err value_make(const struct lease *l, uint64_t epoch, char *out, size_t *len)
{
	json_t *v = json_pack("{s:s,s:I,s:I}", "holder", l->holder, "epoch", (json_int_t)epoch,
			      "expires", (json_int_t)(clock_wall_ms() + l->ttl_ms));
	size_t n;

	if (!v)
		return MDM_ERR_NOMEM;
	n = json_dumpb(v, out, VALUE_MAX, JSON_COMPACT);
	json_decref(v);
	if (n == 0 || n >= VALUE_MAX)
		return MDM_ERR_TOOBIG;
	*len = n;
	return MDM_OK;
}

/* holder and epoch of a lease value; MDM_ERR_PARSE when it is not one. */
static enum mdm_err value_read(const char *val, size_t len, char holder[HOLDER_MAX],
			       uint64_t *epoch)
{
	json_t *v = json_loadb(val, len, 0, NULL);
	const char *h = NULL;
	json_int_t e = 0;
	enum mdm_err err = MDM_ERR_PARSE;

	if (v && json_unpack(v, "{s:s,s:I}", "holder", &h, "epoch", &e) == 0 && e > 0 &&
	    str_copy(holder, HOLDER_MAX, h) == MDM_OK) {
		*epoch = (uint64_t)e;
		err = MDM_OK;
	}
	json_decref(v);
	return err;
}

/* --- state changes (called with l->mu held) -------------------------------------------------- */

static void become_leader(struct lease *l, uint64_t epoch, int64_t t0)
{
	l->leader = true;
	l->epoch = epoch;
	if (epoch > l->seen_epoch)
		l->seen_epoch = epoch;
	l->renewed_mono = t0;
	l->changes++;
	str_copy(l->seen_holder, sizeof(l->seen_holder), l->holder);
	log_info("lease: %s now leads the reconciler, epoch %" PRIu64, l->holder, epoch);
}

static void lose(struct lease *l, const char *why)
{
	if (!l->leader)
		return;
	l->leader = false;
	l->changes++;
	log_warn("lease: %s no longer leads the reconciler (epoch %" PRIu64 "): %s", l->holder,
		 l->epoch, why);
}

static bool leading(struct lease *l, int64_t now);

/* --- take and renew -------------------------------------------------------------------------- */

/* The next epoch, reserved by a cas on the epoch entry: MDM_ERR_EXISTS when a rival was first. */
static enum mdm_err epoch_bump(struct lease *l, uint64_t *next)
{
	struct cache_entry e;
	uint64_t cas = 0, cur = 0;
	char val[32];
	int n;
	enum mdm_err err = cache_get_cas(l->cache, l->epoch_key, &e, &cas);

	if (err && err != MDM_ERR_NOTFOUND)
		return err;
	if (!err) {
		char *end;

		errno = 0;
		cur = strtoull(e.val, &end, 10);
		if (errno || end == e.val || *end)
			cur = 0; /* tagged with our key, so only a bug writes this: start over */
		cache_entry_clear(&e);
	}
	pthread_mutex_lock(&l->mu);
	if (l->seen_epoch > cur)
		cur = l->seen_epoch;
	pthread_mutex_unlock(&l->mu);
	*next = cur + 1;
	n = snprintf(val, sizeof(val), "%" PRIu64, *next);
	if (n < 0 || (size_t)n >= sizeof(val))
		return MDM_ERR_INTERNAL;
	if (err == MDM_ERR_NOTFOUND)
		return cache_add(l->cache, l->epoch_key, val, (size_t)n, 0);
	return cache_cas(l->cache, l->epoch_key, val, (size_t)n, 0, cas);
}

/* The lease is absent: try to take it. */
static enum mdm_err take(struct lease *l)
{
	char val[VALUE_MAX];
	size_t len = 0;
	uint64_t epoch = 0;
	int64_t t0;
	enum mdm_err err = epoch_bump(l, &epoch);

	if (err == MDM_ERR_EXISTS || err == MDM_ERR_NOTFOUND)
		return MDM_OK; /* a rival moved the epoch first: it is taking the lease */
	if (err)
		return err;
	err = value_make(l, epoch, val, &len);
	if (err)
		return err;
	t0 = clock_mono_ms();
	err = cache_add(l->cache, l->lease_key, val, len, l->ttl_ms);
	if (err == MDM_ERR_EXISTS)
		return MDM_OK;
	if (err)
		return err;
	pthread_mutex_lock(&l->mu);
	become_leader(l, epoch, t0);
	pthread_mutex_unlock(&l->mu);
	return MDM_OK;
}

/* The lease holds (holder, epoch) at version cas: renew it when it is this leader's. */
static enum mdm_err renew(struct lease *l, const char *holder, uint64_t epoch, uint64_t cas)
{
	char val[VALUE_MAX];
	size_t len = 0;
	int64_t t0;
	bool mine;
	enum mdm_err err;

	pthread_mutex_lock(&l->mu);
	str_copy(l->seen_holder, sizeof(l->seen_holder), holder);
	if (epoch > l->seen_epoch)
		l->seen_epoch = epoch;
	mine = leading(l, clock_mono_ms()) && l->epoch == epoch && strcmp(holder, l->holder) == 0;
	if (!mine)
		lose(l, "the lease names another holder or epoch");
	pthread_mutex_unlock(&l->mu);
	if (!mine)
		return MDM_OK;
	err = value_make(l, epoch, val, &len);
	if (err)
		return err;
	t0 = clock_mono_ms();
	err = cache_cas(l->cache, l->lease_key, val, len, l->ttl_ms, cas);
	pthread_mutex_lock(&l->mu);
	if (!err)
		l->renewed_mono = t0;
	else if (err == MDM_ERR_EXISTS || err == MDM_ERR_NOTFOUND)
		lose(l, "the lease changed under its renewal");
	pthread_mutex_unlock(&l->mu);
	return err == MDM_ERR_EXISTS || err == MDM_ERR_NOTFOUND ? MDM_OK : err;
}

enum mdm_err lease_tick(struct lease *l)
{
	struct cache_entry e;
	char holder[HOLDER_MAX];
	uint64_t cas = 0, epoch = 0;
	enum mdm_err err;

	if (!l || !l->shared)
		return MDM_OK;
	err = cache_get_cas(l->cache, l->lease_key, &e, &cas);
	if (err == MDM_ERR_NOTFOUND) {
		pthread_mutex_lock(&l->mu);
		l->seen_holder[0] = '\0';
		lose(l, "the lease lapsed or is not ours");
		pthread_mutex_unlock(&l->mu);
		return take(l);
	}
	if (err)
		return err; /* unrenewed: leadership ends by time in lease_is_leader */
	err = value_read(e.val, e.len, holder, &epoch);
	cache_entry_clear(&e);
	if (err) {
		/* Tagged with our key but not a lease: a bug elsewhere; wait for it to lapse. */
		log_warn("lease: %s holds something that is not a lease", l->lease_key);
		return MDM_OK;
	}
	return renew(l, holder, epoch, cas);
}

/* --- the thread ------------------------------------------------------------------------------ */

static void *lease_thread(void *arg)
{
	struct lease *l = arg;
	int64_t wait_ms, deadline;
	bool paused;

	pthread_mutex_lock(&l->mu);
	while (!l->stop) {
		paused = l->paused;
		pthread_mutex_unlock(&l->mu);
		if (!paused) {
			enum mdm_err err = lease_tick(l);

			if (err)
				log_debug("lease: memcached could not be asked: %s", err_str(err));
		}
		pthread_mutex_lock(&l->mu);
		/* A follower looks more often, so that it takes over soon after a lapse. */
		wait_ms = l->leader ? l->ttl_ms / 3 : l->ttl_ms / 6;
		deadline = clock_mono_ms() + wait_ms;
		while (!l->stop && !clock_cond_wait_until(&l->cv, &l->mu, deadline))
			;
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

/* --- creation -------------------------------------------------------------------------------- */

static enum mdm_err keys_make(struct lease *l, const char *ns)
{
	int a = snprintf(l->lease_key, sizeof(l->lease_key), "%s:reconciler:lease", ns);
	int b = snprintf(l->epoch_key, sizeof(l->epoch_key), "%s:reconciler:epoch", ns);

	if (a < 0 || b < 0 || (size_t)a >= sizeof(l->lease_key) ||
	    (size_t)b >= sizeof(l->epoch_key) || !cache_key_valid(l->lease_key) ||
	    !cache_key_valid(l->epoch_key))
		return MDM_ERR_INVALID;
	return str_copy(l->ns, sizeof(l->ns), ns);
}

static enum mdm_err sync_init(struct lease *l)
{
	if (clock_cond_init(&l->cv) != MDM_OK)
		return MDM_ERR_NOMEM;
	if (pthread_mutex_init(&l->mu, NULL) != 0) {
		pthread_cond_destroy(&l->cv);
		return MDM_ERR_NOMEM;
	}
	return MDM_OK;
}

struct lease *lease_create(const struct lease_config *cfg, char *why, size_t whysz)
{
	struct lease *l;

	if (!cfg || !cfg->holder || !cfg->ns || (cfg->shared && !cfg->cache) ||
	    cfg->ttl_ms < LEASE_TTL_MIN_MS || cfg->ttl_ms > LEASE_TTL_MAX_MS) {
		err_why(why, whysz, "lease: a holder, a namespace and a TTL of %d ms..%d ms needed",
			LEASE_TTL_MIN_MS, LEASE_TTL_MAX_MS);
		return NULL;
	}
	l = calloc(1, sizeof(*l));
	if (!l || sync_init(l) != MDM_OK) {
		free(l);
		err_why(why, whysz, "lease: no memory");
		return NULL;
	}
	l->cache = cfg->cache;
	l->shared = cfg->shared;
	l->no_thread = cfg->no_thread;
	l->ttl_ms = cfg->ttl_ms;
	/* Counts at most ttl less max(ttl/4, 1 s), and never less than half the TTL. */
	l->valid_ms = cfg->ttl_ms - (cfg->ttl_ms / 4 > 1000 ? cfg->ttl_ms / 4 : 1000);
	if (l->valid_ms < cfg->ttl_ms / 2)
		l->valid_ms = cfg->ttl_ms / 2;
	if (str_copy(l->holder, sizeof(l->holder), cfg->holder) != MDM_OK || !cfg->holder[0] ||
	    keys_make(l, cfg->ns) != MDM_OK) {
		err_why(why, whysz, "lease: holder or namespace too long or not fit for a key");
		lease_destroy(l);
		return NULL;
	}
	if (!l->shared) {
		/* Alone: always leader, epoch 1, nothing to renew. */
		l->leader = true;
		l->epoch = 1;
		str_copy(l->seen_holder, sizeof(l->seen_holder), l->holder);
		return l;
	}
	(void)lease_tick(l);
	if (!l->no_thread) {
		if (pthread_create(&l->thread, NULL, lease_thread, l) != 0) {
			err_why(why, whysz, "lease: cannot start its thread");
			lease_destroy(l);
			return NULL;
		}
		l->thread_started = true;
	}
	return l;
}

/* Gives the lease up when this instance still holds it, so a follower need not wait a TTL. */
static void release(struct lease *l)
{
	struct cache_entry e;
	char holder[HOLDER_MAX];
	uint64_t cas = 0, epoch = 0;
	bool mine;

	pthread_mutex_lock(&l->mu);
	mine = l->shared && l->leader;
	pthread_mutex_unlock(&l->mu);
	if (!mine || cache_get_cas(l->cache, l->lease_key, &e, &cas) != MDM_OK)
		return;
	if (value_read(e.val, e.len, holder, &epoch) == MDM_OK && epoch == l->epoch &&
	    strcmp(holder, l->holder) == 0)
		(void)cache_del(l->cache, l->lease_key);
	cache_entry_clear(&e);
	pthread_mutex_lock(&l->mu);
	lose(l, "shutting down; the lease is given up");
	pthread_mutex_unlock(&l->mu);
}

void lease_destroy(struct lease *l)
{
	if (!l)
		return;
	if (l->thread_started) {
		pthread_mutex_lock(&l->mu);
		l->stop = true;
		pthread_cond_signal(&l->cv);
		pthread_mutex_unlock(&l->mu);
		pthread_join(l->thread, NULL);
	}
	release(l);
	pthread_mutex_destroy(&l->mu);
	pthread_cond_destroy(&l->cv);
	free(l);
}

/* --- queries --------------------------------------------------------------------------------- */

/*
 * Called with l->mu held. A leader not renewed in time stops leading for good, logged once: a
 * later renewal of the same entry does not make it leader again, a new take (a new epoch) must.
 */
static bool leading(struct lease *l, int64_t now)
{
	if (!l->shared)
		return true;
	if (l->leader && now - l->renewed_mono >= l->valid_ms)
		lose(l, "not renewed in time");
	return l->leader;
}

bool lease_is_leader(struct lease *l, uint64_t *epoch)
{
	int64_t now = clock_mono_ms();
	bool yes;

	if (!l) {
		if (epoch)
			*epoch = 1;
		return true;
	}
	pthread_mutex_lock(&l->mu);
	yes = leading(l, now);
	if (yes && epoch)
		*epoch = l->epoch;
	pthread_mutex_unlock(&l->mu);
	return yes;
}

bool lease_is_leader_cb(void *arg, uint64_t *epoch)
{
	return lease_is_leader(arg, epoch);
}

/* "<ns>:coa:<id>", or "<ns>:coa:sha256:<hex>" when id does not make a valid key. */
static enum mdm_err claim_key(const struct lease *l, const char *id, char out[CACHE_KEY_MAX + 1])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char hex[2 * 32 + 1];
	int n = snprintf(out, CACHE_KEY_MAX + 1, "%s:coa:%s", l->ns, id);

	if (n > 0 && (size_t)n <= CACHE_KEY_MAX && cache_key_valid(out))
		return MDM_OK;
	if (EVP_Digest(id, strlen(id), md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
		return MDM_ERR_INTERNAL;
	for (unsigned i = 0; i < 32; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[64] = '\0';
	n = snprintf(out, CACHE_KEY_MAX + 1, "%s:coa:sha256:%s", l->ns, hex);
	return n > 0 && (size_t)n <= CACHE_KEY_MAX ? MDM_OK : MDM_ERR_INTERNAL;
}

bool lease_claim(struct lease *l, const char *transition_id)
{
	char key[CACHE_KEY_MAX + 1], val[VALUE_MAX];
	size_t len = 0;
	uint64_t epoch = 0;
	enum mdm_err err;

	if (!transition_id || !transition_id[0])
		return false;
	if (!l || !l->cache)
		return true;
	if (claim_key(l, transition_id, key) != MDM_OK)
		return false;
	pthread_mutex_lock(&l->mu);
	epoch = l->epoch;
	pthread_mutex_unlock(&l->mu);
	err = value_make(l, epoch, val, &len);
	if (!err)
		err = cache_add(l->cache, key, val, len, LEASE_CLAIM_TTL_MS);
	if (err == MDM_OK)
		return true;
	if (err == MDM_ERR_EXISTS)
		return false;
	/* The cache cannot say: only the leader sends, so it alone may go ahead. */
	log_warn("lease: claim of %s not recorded (%s); %s", transition_id, err_str(err),
		 lease_is_leader(l, NULL) ? "sent as leader" : "not sent: not the leader");
	return lease_is_leader(l, NULL);
}

bool lease_claim_cb(void *arg, const char *transition_id)
{
	return lease_claim(arg, transition_id);
}

void lease_pause(struct lease *l, bool paused)
{
	if (!l)
		return;
	pthread_mutex_lock(&l->mu);
	l->paused = paused;
	pthread_mutex_unlock(&l->mu);
}

json_t *lease_status_json(struct lease *l)
{
	int64_t now = clock_mono_ms();
	json_t *j;

	if (!l)
		return json_pack("{s:b,s:b,s:I}", "shared", 0, "leader", 1, "epoch", (json_int_t)1);
	pthread_mutex_lock(&l->mu);
	j = json_pack("{s:b,s:s,s:b,s:I,s:s,s:I,s:I,s:I}", "shared", l->shared, "holder", l->holder,
		      "leader", leading(l, now), "epoch", (json_int_t)l->epoch, "leader_holder",
		      l->seen_holder, "ttl_ms", (json_int_t)l->ttl_ms, "renewed_ms_ago",
		      (json_int_t)(l->shared && l->renewed_mono ? now - l->renewed_mono : -1),
		      "changes", (json_int_t)l->changes);
	pthread_mutex_unlock(&l->mu);
	return j;
}
