#define _POSIX_C_SOURCE 200809L
#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../adapters/fanout.h"
#include "../cache/entry.h"
#include "../core/buf.h"
#include "../core/clock.h"
#include "../core/log.h"
#include "lookup.h"

#define REFRESH_QUEUE 1024
#define LOCK_WAIT_MAX_MS 100
#define LOCK_POLL_MS 2
#define KEY_PREFIX "mdmgw:v1:"

struct lookup {
	struct lookup_config cfg;
	struct lookup_stats stats;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	struct ident queue[REFRESH_QUEUE];
	size_t qhead, qlen;
};

static int plain_key_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f;
}

enum mdm_err lookup_cache_key(const struct ident *id, char *out, size_t outsz)
{
	const char *kind = ident_kind_name(id->kind);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char hex[2 * EVP_MAX_MD_SIZE + 1];
	bool plain = id->len <= 128;
	int n;

	for (size_t i = 0; plain && i < id->len; i++)
		plain = plain_key_char((unsigned char)id->value[i]);
	if (plain) {
		n = snprintf(out, outsz, KEY_PREFIX "%s:%s", kind, id->value);
		return n > 0 && (size_t)n < outsz ? MDM_OK : MDM_ERR_TOOBIG;
	}
	if (!EVP_Digest(id->value, id->len, md, &mdlen, EVP_sha256(), NULL))
		return MDM_ERR_INTERNAL;
	for (unsigned i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	n = snprintf(out, outsz, KEY_PREFIX "%s:sha256:%s", kind, hex);
	return n > 0 && (size_t)n < outsz ? MDM_OK : MDM_ERR_TOOBIG;
}

/* --- talking to the adapters --------------------------------------------------------------- */

/* Asks every adapter about ids[0..n) and merges each identifier's outcomes into results. */
static enum mdm_err ask_adapters(struct lookup *l, const struct ident *ids, size_t n,
				 struct merge_result *results)
{
	struct fanout *f;
	int64_t deadline = clock_mono_ms() + l->cfg.timeout_ms;
	enum mdm_err e = MDM_OK;

	if (n == 0)
		return MDM_OK;
	f = fanout_create(l->cfg.ads, l->cfg.nads, n);
	if (!f)
		return MDM_ERR_NOMEM;
	fanout_start(f, ids, deadline);
	fanout_wait(f, deadline);
	for (size_t i = 0; i < n && !e; i++) {
		struct outcome *ocs = fanout_outcomes(f, i);

		e = merge_outcomes(&l->cfg.policy, ocs, l->cfg.nads, &results[i]);
		for (size_t j = 0; j < l->cfg.nads; j++)
			if (ocs[j].kind == OUTCOME_FAILED)
				log_warn("lookup %s: adapter %s failed: %s: %s",
					 ident_kind_name(ids[i].kind), l->cfg.ads[j]->name,
					 fail_kind_name(ocs[j].fail), ocs[j].why);
	}
	fanout_release(f);
	return e;
}

/* Writes an answer back; failures and partial answers are never cached. */
static void store(struct lookup *l, const char *key, const struct merge_result *r)
{
	struct buf b;
	enum mdm_err e;

	if (r->verdict == MERGE_UNAVAILABLE || r->partial)
		return;
	buf_init(&b, ENTRY_MAX_LEN + 1);
	e = entry_encode(r->verdict == MERGE_FOUND ? ENTRY_FOUND : ENTRY_NOT_ENROLLED, r->devs,
			 r->ndevs, &b);
	if (!e) {
		if (r->verdict == MERGE_FOUND)
			e = cache_put(l->cfg.cache, key, b.mem, b.len, l->cfg.fresh_ttl_ms,
				      l->cfg.stale_ttl_ms);
		else
			e = cache_put(l->cfg.cache, key, b.mem, b.len, l->cfg.negative_ttl_ms, 0);
	}
	if (e)
		log_warn("cache: cannot store %s: %s", key, err_str(e));
	buf_free(&b);
}

static void count_verdict(struct lookup *l, const struct merge_result *r)
{
	if (r->verdict == MERGE_UNAVAILABLE)
		atomic_fetch_add(&l->stats.unavailable, 1);
	else if (r->partial)
		atomic_fetch_add(&l->stats.partial, 1);
}

/* --- background refresh of stale entries --------------------------------------------------- */

static void refresh_one(struct lookup *l, const struct ident *id)
{
	struct merge_result r;
	char key[CACHE_KEY_MAX + 1];

	memset(&r, 0, sizeof(r));
	if (lookup_cache_key(id, key, sizeof(key)) != MDM_OK)
		return;
	if (ask_adapters(l, id, 1, &r) == MDM_OK) {
		count_verdict(l, &r);
		store(l, key, &r);
	}
	merge_result_clear(&r);
	cache_unlock(l->cfg.cache, key);
	atomic_fetch_add(&l->stats.refreshes, 1);
}

static void *refresh_main(void *arg)
{
	struct lookup *l = arg;

	pthread_mutex_lock(&l->mu);
	for (;;) {
		struct ident id;

		while (!l->stop && l->qlen == 0)
			pthread_cond_wait(&l->cv, &l->mu);
		if (l->stop)
			break;
		id = l->queue[l->qhead];
		l->qhead = (l->qhead + 1) % REFRESH_QUEUE;
		l->qlen--;
		pthread_mutex_unlock(&l->mu);
		refresh_one(l, &id);
		pthread_mutex_lock(&l->mu);
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

/* Queues a refresh of a stale key the caller has locked; a full queue lets the lock go. */
static void refresh_later(struct lookup *l, const struct ident *id, const char *key)
{
	bool queued = false;

	pthread_mutex_lock(&l->mu);
	if (!l->stop && l->qlen < REFRESH_QUEUE) {
		l->queue[(l->qhead + l->qlen) % REFRESH_QUEUE] = *id;
		l->qlen++;
		queued = true;
		pthread_cond_signal(&l->cv);
	}
	pthread_mutex_unlock(&l->mu);
	if (!queued) {
		atomic_fetch_add(&l->stats.refresh_dropped, 1);
		cache_unlock(l->cfg.cache, key);
	}
}

/* --- the request path ---------------------------------------------------------------------- */

static int64_t lock_ttl(const struct lookup *l)
{
	return 2 * l->cfg.timeout_ms + 1000;
}

/* Decodes a cache value into a result; a corrupt value counts and reads as a miss. */
static bool from_entry(struct lookup *l, const char *key, const struct cache_entry *ce,
		       struct merge_result *r)
{
	enum entry_verdict v;

	memset(r, 0, sizeof(*r));
	if (entry_decode(ce->val, ce->len, &v, &r->devs, &r->ndevs) != MDM_OK) {
		atomic_fetch_add(&l->stats.bad_entries, 1);
		log_warn("cache: entry %s does not decode; treated as a miss", key);
		cache_del(l->cfg.cache, key);
		return false;
	}
	r->verdict = v == ENTRY_FOUND ? MERGE_FOUND : MERGE_NOT_ENROLLED;
	return true;
}

/* Another request is filling key: wait a little for its answer before asking ourselves. */
static bool wait_for_other(struct lookup *l, const char *key, struct merge_result *r)
{
	int64_t until = clock_mono_ms() + (l->cfg.timeout_ms < LOCK_WAIT_MAX_MS ? l->cfg.timeout_ms
										: LOCK_WAIT_MAX_MS);
	struct timespec ts = {0, LOCK_POLL_MS * 1000000L};

	atomic_fetch_add(&l->stats.lock_waits, 1);
	while (clock_mono_ms() < until) {
		struct cache_entry ce;
		bool ok = false;

		nanosleep(&ts, NULL);
		if (cache_get(l->cfg.cache, key, &ce) == MDM_OK && ce.state != CACHE_MISS)
			ok = from_entry(l, key, &ce, r);
		cache_entry_clear(&ce);
		if (ok)
			return true;
	}
	return false;
}

struct miss {
	size_t index; /* into the caller's ids */
	bool locked;
};

struct keyed {
	const char *key;
	size_t index;
};

static int cmp_keyed(const void *a, const void *b)
{
	const struct keyed *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	return c ? c : (x->index < y->index ? -1 : x->index > y->index);
}

/*
 * dup[i] = the first index asking for the same key as i (i itself when first). A batch may
 * name one device many times; it is looked up once, or the later copies would wait on the
 * first copy's lock. Sorting keeps this O(n log n) for a batch of query_max_size.
 */
static enum mdm_err find_duplicates(const char *const *keys, size_t n, size_t *dup)
{
	struct keyed *order = malloc((n ? n : 1) * sizeof(*order));

	if (!order)
		return MDM_ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		order[i].key = keys[i];
		order[i].index = dup[i] = i;
	}
	qsort(order, n, sizeof(*order), cmp_keyed);
	for (size_t k = 1; k < n; k++)
		if (strcmp(order[k].key, order[k - 1].key) == 0)
			dup[order[k].index] = dup[order[k - 1].index];
	free(order);
	return MDM_OK;
}

static enum mdm_err copy_result(const struct merge_result *src, struct merge_result *dst)
{
	*dst = *src;
	dst->devs = NULL;
	if (!src->ndevs)
		return MDM_OK;
	dst->devs = malloc(src->ndevs * sizeof(*dst->devs));
	if (!dst->devs)
		return MDM_ERR_NOMEM;
	memcpy(dst->devs, src->devs, src->ndevs * sizeof(*dst->devs));
	return MDM_OK;
}

enum mdm_err lookup_many(struct lookup *l, const struct ident *ids, size_t n,
			 struct merge_result *results)
{
	char(*keys)[CACHE_KEY_MAX + 1] = NULL;
	const char **keyp = NULL;
	struct cache_entry *ce = NULL;
	struct miss *miss = NULL;
	struct ident *mids = NULL;
	struct merge_result *mres = NULL;
	size_t *dup = NULL;
	size_t nmiss = 0;
	enum mdm_err e = MDM_ERR_NOMEM;

	if (n > l->cfg.max_batch)
		return MDM_ERR_TOOBIG;
	memset(results, 0, n * sizeof(*results));
	keys = calloc(n ? n : 1, sizeof(*keys));
	keyp = calloc(n ? n : 1, sizeof(*keyp));
	ce = calloc(n ? n : 1, sizeof(*ce));
	miss = calloc(n ? n : 1, sizeof(*miss));
	dup = calloc(n ? n : 1, sizeof(*dup));
	if (!keys || !keyp || !ce || !miss || !dup)
		goto out;
	for (size_t i = 0; i < n; i++) {
		e = lookup_cache_key(&ids[i], keys[i], sizeof(keys[i]));
		if (e)
			goto out;
		keyp[i] = keys[i];
	}
	e = find_duplicates(keyp, n, dup);
	if (e)
		goto out;
	e = cache_get_many(l->cfg.cache, keyp, n, ce);
	if (e) /* the cache failing is a miss for every key, never an error for the client */
		for (size_t i = 0; i < n; i++)
			cache_entry_clear(&ce[i]);
	for (size_t i = 0; i < n; i++) {
		if (dup[i] != i)
			continue;
		if (ce[i].state != CACHE_MISS && from_entry(l, keys[i], &ce[i], &results[i])) {
			if (ce[i].state == CACHE_FRESH) {
				atomic_fetch_add(&l->stats.fresh_hits, 1);
				continue;
			}
			atomic_fetch_add(&l->stats.stale_hits, 1);
			if (cache_lock(l->cfg.cache, keys[i], lock_ttl(l)) == MDM_OK)
				refresh_later(l, &ids[i], keys[i]);
			continue;
		}
		atomic_fetch_add(&l->stats.misses, 1);
		miss[nmiss].index = i;
		miss[nmiss].locked = cache_lock(l->cfg.cache, keys[i], lock_ttl(l)) == MDM_OK;
		if (!miss[nmiss].locked && wait_for_other(l, keys[i], &results[i]))
			continue;
		nmiss++;
	}
	e = MDM_ERR_NOMEM;
	mids = calloc(nmiss ? nmiss : 1, sizeof(*mids));
	mres = calloc(nmiss ? nmiss : 1, sizeof(*mres));
	if (!mids || !mres)
		goto unlock;
	for (size_t m = 0; m < nmiss; m++)
		mids[m] = ids[miss[m].index];
	e = ask_adapters(l, mids, nmiss, mres);
	for (size_t m = 0; m < nmiss && !e; m++) {
		results[miss[m].index] = mres[m];
		memset(&mres[m], 0, sizeof(mres[m]));
		count_verdict(l, &results[miss[m].index]);
		store(l, keys[miss[m].index], &results[miss[m].index]);
	}
	for (size_t i = 0; i < n && !e; i++)
		if (dup[i] != i)
			e = copy_result(&results[dup[i]], &results[i]);
unlock:
	for (size_t m = 0; m < nmiss; m++)
		if (miss[m].locked)
			cache_unlock(l->cfg.cache, keys[miss[m].index]);
	for (size_t m = 0; mres && m < nmiss; m++)
		merge_result_clear(&mres[m]);
out:
	for (size_t i = 0; ce && i < n; i++)
		cache_entry_clear(&ce[i]);
	if (e)
		for (size_t i = 0; i < n; i++)
			merge_result_clear(&results[i]);
	free(keys);
	free(keyp);
	free(ce);
	free(miss);
	free(dup);
	free(mids);
	free(mres);
	return e;
}

struct lookup *lookup_create(const struct lookup_config *cfg)
{
	struct lookup *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->cfg = *cfg;
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv, NULL);
	if (pthread_create(&l->thread, NULL, refresh_main, l) != 0) {
		pthread_mutex_destroy(&l->mu);
		pthread_cond_destroy(&l->cv);
		free(l);
		return NULL;
	}
	return l;
}

void lookup_destroy(struct lookup *l)
{
	if (!l)
		return;
	pthread_mutex_lock(&l->mu);
	l->stop = true;
	pthread_cond_signal(&l->cv);
	pthread_mutex_unlock(&l->mu);
	pthread_join(l->thread, NULL);
	pthread_mutex_destroy(&l->mu);
	pthread_cond_destroy(&l->cv);
	free(l);
}

const struct lookup_stats *lookup_stats(const struct lookup *l)
{
	return &l->stats;
}
