#include <stdlib.h>
#include <string.h>

#include "cache.h"

enum mdm_err cache_get(struct cache *c, const char *key, struct cache_entry *out)
{
	/* One key is a batch of one: implementations only have to get get_many right. */
	return c->ops->get_many(c, &key, 1, out);
}

enum mdm_err cache_get_many(struct cache *c, const char *const *keys, size_t n,
			    struct cache_entry *out)
{
	return c->ops->get_many(c, keys, n, out);
}

enum mdm_err cache_put(struct cache *c, const char *key, const void *val, size_t len,
		       const struct cache_times *t)
{
	return c->ops->put(c, key, val, len, t);
}

enum mdm_err cache_del(struct cache *c, const char *key)
{
	return c->ops->del(c, key);
}

enum mdm_err cache_lock(struct cache *c, const char *key, int64_t ttl_ms)
{
	return c->ops->lock(c, key, ttl_ms);
}

void cache_unlock(struct cache *c, const char *key)
{
	c->ops->unlock(c, key);
}

enum mdm_err cache_add(struct cache *c, const char *key, const void *val, size_t len,
		       int64_t ttl_ms)
{
	if (!c->ops->add)
		return MDM_ERR_UNAVAILABLE;
	if (ttl_ms < 0)
		return MDM_ERR_INVALID;
	return c->ops->add(c, key, val, len, ttl_ms);
}

enum mdm_err cache_get_cas(struct cache *c, const char *key, struct cache_entry *out, uint64_t *cas)
{
	memset(out, 0, sizeof(*out));
	*cas = 0;
	if (!c->ops->get_cas)
		return MDM_ERR_UNAVAILABLE;
	return c->ops->get_cas(c, key, out, cas);
}

enum mdm_err cache_cas(struct cache *c, const char *key, const void *val, size_t len,
		       int64_t ttl_ms, uint64_t cas)
{
	if (!c->ops->cas)
		return MDM_ERR_UNAVAILABLE;
	if (ttl_ms < 0)
		return MDM_ERR_INVALID;
	return c->ops->cas(c, key, val, len, ttl_ms, cas);
}

void cache_stats(struct cache *c, struct cache_stats *out)
{
	/* The op adds, so that a composition can sum its tiers into one struct. */
	memset(out, 0, sizeof(*out));
	if (c)
		c->ops->stats(c, out);
}

void cache_destroy(struct cache *c)
{
	if (c)
		c->ops->destroy(c);
}

void cache_entry_clear(struct cache_entry *e)
{
	free(e->val);
	memset(e, 0, sizeof(*e));
	e->state = CACHE_MISS;
}

int cache_key_valid(const char *key)
{
	size_t i;

	if (!key)
		return 0;
	/* Stop one past the limit so an over-long key is never scanned to its end. */
	for (i = 0; i <= CACHE_KEY_MAX && key[i]; i++) {
		unsigned char ch = (unsigned char)key[i];

		if (ch <= ' ' || ch > '~')
			return 0;
	}
	return i >= 1 && i <= CACHE_KEY_MAX;
}

int cache_times_valid(int64_t fetched_at, int64_t fresh_until, int64_t stale_until)
{
	return fetched_at >= 0 && fetched_at <= fresh_until && fresh_until <= stale_until;
}

enum mdm_err cache_put_check(const char *key, const void *val, size_t len,
			     const struct cache_times *t, size_t max_value, int64_t now, bool *dead)
{
	*dead = false;
	if (!cache_key_valid(key) || (len && !val) || !t ||
	    !cache_times_valid(t->fetched_at, t->fresh_until, t->stale_until))
		return MDM_ERR_INVALID;
	if (len > max_value)
		return MDM_ERR_TOOBIG;
	*dead = t->stale_until <= now; /* dead on arrival: nothing to keep */
	return MDM_OK;
}
