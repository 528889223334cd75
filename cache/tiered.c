/*
 * tiered: an in-process cache (l1) in front of memcached (l2), as one cache. l1 answers what it
 * has; the rest goes to l2 in one get_many, and what l2 had is copied into l1 with the times l2
 * had (l1's max_hold_ms caps how long l1 keeps it, so a refresh by another instance reaches this
 * one within that time). Without l1 every call goes straight to l2.
 */
#include <stdlib.h>
#include <string.h>

#include "cache.h"

struct tiered {
	struct cache base;
	struct cache *l1; /* may be NULL */
	struct cache *l2;
};

/* Copies the l2 hits into l1. A refusal (too big for l1, no memory) only costs a later l2 read. */
static void fill_l1(struct cache *l1, const char *const *keys, const struct cache_entry *e,
		    size_t n)
{
	for (size_t j = 0; j < n; j++) {
		struct cache_times t = {e[j].fetched_at, e[j].fresh_until, e[j].stale_until};

		if (e[j].state != CACHE_MISS)
			(void)l1->ops->put(l1, keys[j], e[j].val, e[j].len, &t);
	}
}

/* Asks l2 for the l1 misses of out and moves its answers into out. */
static enum mdm_err get_l2(struct tiered *t, const char *const *keys, size_t n,
			   struct cache_entry *out)
{
	const char **mk = NULL;
	size_t *mi = NULL, nm = 0;
	struct cache_entry *me = NULL;
	enum mdm_err err = MDM_ERR_NOMEM;

	for (size_t i = 0; i < n; i++)
		nm += out[i].state == CACHE_MISS;
	if (nm == 0)
		return MDM_OK;
	mk = malloc(nm * sizeof(*mk));
	mi = malloc(nm * sizeof(*mi));
	me = calloc(nm, sizeof(*me));
	if (!mk || !mi || !me)
		goto out;
	nm = 0;
	for (size_t i = 0; i < n; i++) {
		if (out[i].state != CACHE_MISS)
			continue;
		mk[nm] = keys[i];
		mi[nm++] = i;
	}
	err = t->l2->ops->get_many(t->l2, mk, nm, me);
	if (err)
		goto out;
	fill_l1(t->l1, mk, me, nm);
	for (size_t j = 0; j < nm; j++) {
		out[mi[j]] = me[j]; /* the value moves: me[j] no longer owns it */
		memset(&me[j], 0, sizeof(me[j]));
	}
out:
	free(mk);
	free(mi);
	free(me);
	return err;
}

static enum mdm_err tiered_get_many(struct cache *c, const char *const *keys, size_t n,
				    struct cache_entry *out)
{
	struct tiered *t = c->priv;
	enum mdm_err err;

	if (!t->l1)
		return t->l2->ops->get_many(t->l2, keys, n, out);
	err = t->l1->ops->get_many(t->l1, keys, n, out);
	if (err)
		return err;
	err = get_l2(t, keys, n, out);
	if (err) {
		/* All or nothing, as each tier does. */
		for (size_t i = 0; i < n; i++)
			cache_entry_clear(&out[i]);
	}
	return err;
}

static enum mdm_err tiered_put(struct cache *c, const char *key, const void *val, size_t len,
			       const struct cache_times *tm)
{
	struct tiered *t = c->priv;
	enum mdm_err e1 = MDM_OK, e2;

	if (t->l1)
		e1 = t->l1->ops->put(t->l1, key, val, len, tm);
	e2 = t->l2->ops->put(t->l2, key, val, len, tm);
	return e1 ? e1 : e2;
}

static enum mdm_err tiered_del(struct cache *c, const char *key)
{
	struct tiered *t = c->priv;
	enum mdm_err e1 = MDM_OK, e2;

	if (t->l1)
		e1 = t->l1->ops->del(t->l1, key);
	e2 = t->l2->ops->del(t->l2, key);
	return e1 ? e1 : e2;
}

/*
 * l1 first: the threads of this process queue on it without a round trip to memcached, and
 * only its winner asks l2, which settles the race between processes.
 */
static enum mdm_err tiered_lock(struct cache *c, const char *key, int64_t ttl_ms)
{
	struct tiered *t = c->priv;
	enum mdm_err err;

	if (t->l1) {
		err = t->l1->ops->lock(t->l1, key, ttl_ms);
		if (err)
			return err;
	}
	err = t->l2->ops->lock(t->l2, key, ttl_ms);
	if (err && t->l1)
		t->l1->ops->unlock(t->l1, key);
	return err;
}

static void tiered_unlock(struct cache *c, const char *key)
{
	struct tiered *t = c->priv;

	t->l2->ops->unlock(t->l2, key);
	if (t->l1)
		t->l1->ops->unlock(t->l1, key);
}

static void tiered_stats(struct cache *c, struct cache_stats *out)
{
	struct tiered *t = c->priv;

	if (t->l1)
		t->l1->ops->stats(t->l1, out);
	t->l2->ops->stats(t->l2, out);
}

static void tiered_destroy(struct cache *c)
{
	struct tiered *t = c->priv;

	cache_destroy(t->l1);
	cache_destroy(t->l2);
	free(t);
}

/*
 * The coordination primitives are l2's alone: l1 holds no say across processes. l1's copy of
 * the key is dropped on a store, so that a get does not answer an older value.
 */
static enum mdm_err tiered_add(struct cache *c, const char *key, const void *val, size_t len,
			       int64_t ttl_ms)
{
	struct tiered *t = c->priv;
	enum mdm_err err =
	    t->l2->ops->add ? t->l2->ops->add(t->l2, key, val, len, ttl_ms) : MDM_ERR_UNAVAILABLE;

	if (!err && t->l1)
		(void)t->l1->ops->del(t->l1, key);
	return err;
}

static enum mdm_err tiered_get_cas(struct cache *c, const char *key, struct cache_entry *out,
				   uint64_t *cas)
{
	struct tiered *t = c->priv;

	return t->l2->ops->get_cas ? t->l2->ops->get_cas(t->l2, key, out, cas)
				   : MDM_ERR_UNAVAILABLE;
}

static enum mdm_err tiered_cas(struct cache *c, const char *key, const void *val, size_t len,
			       int64_t ttl_ms, uint64_t cas)
{
	struct tiered *t = c->priv;
	enum mdm_err err = t->l2->ops->cas ? t->l2->ops->cas(t->l2, key, val, len, ttl_ms, cas)
					   : MDM_ERR_UNAVAILABLE;

	if (!err && t->l1)
		(void)t->l1->ops->del(t->l1, key);
	return err;
}

static const struct cache_ops tiered_ops = {
    .get_many = tiered_get_many,
    .put = tiered_put,
    .del = tiered_del,
    .lock = tiered_lock,
    .unlock = tiered_unlock,
    .stats = tiered_stats,
    .destroy = tiered_destroy,
    .add = tiered_add,
    .get_cas = tiered_get_cas,
    .cas = tiered_cas,
};

struct cache *cache_tiered_create(struct cache *l1, struct cache *l2)
{
	struct tiered *t = l2 ? calloc(1, sizeof(*t)) : NULL;

	if (!t) {
		/* Ownership was passed: nothing is left for the caller to free. */
		cache_destroy(l1);
		cache_destroy(l2);
		return NULL;
	}
	t->l1 = l1;
	t->l2 = l2;
	t->base.ops = &tiered_ops;
	t->base.priv = t;
	return &t->base;
}
