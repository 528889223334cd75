/*
 * cache: the result cache interface. Keys are printable strings of at most CACHE_KEY_MAX bytes
 * with no spaces (memcached's rule); values are opaque bytes with their timestamps.
 * An entry is fresh until fresh_until, may be served stale until stale_until, and is gone after.
 * Implementations: in-process (cache_mem_create), memcached and a two-tier composition later.
 * All functions are thread-safe.
 */
#ifndef MDM_CACHE_H
#define MDM_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"

#define CACHE_KEY_MAX 250

enum cache_state { CACHE_MISS = 0, CACHE_FRESH, CACHE_STALE };

struct cache_entry {
	enum cache_state state;
	char *val; /* malloc'd copy, NUL-terminated for convenience; caller frees with
		      cache_entry_clear */
	size_t len;
	int64_t fetched_at;  /* wall ms */
	int64_t fresh_until; /* wall ms */
	int64_t stale_until; /* wall ms */
};

struct cache;

struct cache_ops {
	/* get_many: looks up n keys; out[i] describes keys[i] (state CACHE_MISS when absent). */
	enum mdm_err (*get_many)(struct cache *c, const char *const *keys, size_t n,
				 struct cache_entry *out);
	/* put: stores val under key, fresh for fresh_ms and servable stale for stale_ms after that.
	 */
	enum mdm_err (*put)(struct cache *c, const char *key, const void *val, size_t len,
			    int64_t fresh_ms, int64_t stale_ms);
	/* del: removes key; MDM_OK whether or not it was present. */
	enum mdm_err (*del)(struct cache *c, const char *key);
	/*
	 * lock: claims the one refresh of key for ttl_ms. MDM_OK: the caller holds it and must
	 * unlock; MDM_ERR_BUSY: someone else does. An unreleased lock lapses after ttl_ms.
	 */
	enum mdm_err (*lock)(struct cache *c, const char *key, int64_t ttl_ms);
	void (*unlock)(struct cache *c, const char *key);
	void (*destroy)(struct cache *c);
};

struct cache {
	const struct cache_ops *ops;
	void *priv;
};

struct cache_mem_config {
	size_t max_entries;   /* bound on entries held; the least recently used go first */
	unsigned shards;      /* lock shards, a power of two */
	size_t max_value;     /* largest value accepted (MDM_ERR_TOOBIG past it) */
	int64_t (*now)(void); /* wall clock in ms; NULL for clock_wall_ms (tests set their own) */
};

/* cache_mem_create: the in-process cache. NULL on bad config or no memory. */
struct cache *cache_mem_create(const struct cache_mem_config *cfg);

/* Thin wrappers over the vtable. cache_destroy(NULL) does nothing. */
enum mdm_err cache_get(struct cache *c, const char *key, struct cache_entry *out);
enum mdm_err cache_get_many(struct cache *c, const char *const *keys, size_t n,
			    struct cache_entry *out);
enum mdm_err cache_put(struct cache *c, const char *key, const void *val, size_t len,
		       int64_t fresh_ms, int64_t stale_ms);
enum mdm_err cache_del(struct cache *c, const char *key);
enum mdm_err cache_lock(struct cache *c, const char *key, int64_t ttl_ms);
void cache_unlock(struct cache *c, const char *key);
void cache_destroy(struct cache *c);
/* cache_entry_clear: frees an entry's value and marks it a miss. */
void cache_entry_clear(struct cache_entry *e);
/* cache_key_valid: printable ASCII, no space, 1..CACHE_KEY_MAX bytes. */
int cache_key_valid(const char *key);

#endif
