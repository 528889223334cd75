/*
 * cache: the result cache interface. Keys are printable strings of at most CACHE_KEY_MAX bytes
 * with no spaces (memcached's rule); values are opaque bytes with their timestamps.
 * An entry is fresh until fresh_until, may be served stale until stale_until, and is gone after.
 * Implementations: in-process (cache_mem_create), memcached (cache_mc_create) and the two-tier
 * composition of both (cache_tiered_create). All functions are thread-safe.
 */
#ifndef MDM_CACHE_H
#define MDM_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"

/*
 * Longest key, in bytes: memcached's 250 less the 5 of the ":lock" suffix the memcached tier adds
 * for a key's refresh lock. Every implementation uses this one bound, so a key one tier takes
 * the other takes too.
 */
#define CACHE_KEY_MAX 245

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

/* When an entry was fetched and how long it may be served: wall-clock milliseconds. */
struct cache_times {
	int64_t fetched_at;
	int64_t fresh_until; /* served as fresh before this */
	int64_t stale_until; /* served as stale before this; gone after */
};

/*
 * Counters a cache keeps (monotonic, except breaker_open and the gauges). A composition adds
 * its tiers' counters; "l1_" fields count the in-process tier, "l2_" the memcached tier.
 * Hits and misses count the valid keys looked up (a key cache_key_valid refuses is a miss but
 * not counted). Memcached trouble never reaches the caller as an error: a get is a miss and a
 * put or del is dropped, and l2_errors counts them (add, gets and cas excepted: see below).
 */
struct cache_stats {
	unsigned long l1_hits, l1_stale_hits, l1_misses;
	unsigned long l1_evictions; /* entries pushed out by the size bound (not expiries) */
	unsigned long l2_hits, l2_stale_hits, l2_misses;
	unsigned long l2_errors;     /* operations that failed at memcached (not misses) */
	unsigned long l2_bad_values; /* bad HMAC tag, foreign or corrupt value: read as a miss */
	unsigned long l2_ops;	     /* operations sent to memcached */
	unsigned long l2_latency_us; /* summed over l2_ops */
	unsigned long l2_skipped;    /* operations not sent: breaker open or no handle free */
	unsigned long lock_busy;     /* lock() answered MDM_ERR_BUSY */
	unsigned long breaker_opens; /* times the memcached breaker opened */
	int breaker_open;	     /* 1 while memcached is being skipped */
};

struct cache;

struct cache_ops {
	/* get_many: looks up n keys; out[i] describes keys[i] (state CACHE_MISS when absent). */
	enum mdm_err (*get_many)(struct cache *c, const char *const *keys, size_t n,
				 struct cache_entry *out);
	/*
	 * put: stores val under key with its times, which are absolute and kept as given (a tier
	 * filled from another keeps the original times). 0 <= fetched_at <= fresh_until <=
	 * stale_until, else MDM_ERR_INVALID. An entry whose stale_until is not after now is not
	 * stored: MDM_OK, and the call does nothing.
	 */
	enum mdm_err (*put)(struct cache *c, const char *key, const void *val, size_t len,
			    const struct cache_times *t);
	/* del: removes key; MDM_OK whether or not it was present. */
	enum mdm_err (*del)(struct cache *c, const char *key);
	/*
	 * lock: claims the one refresh of key for ttl_ms. MDM_OK: the caller holds it and must
	 * unlock; MDM_ERR_BUSY: someone else does. An unreleased lock lapses after ttl_ms.
	 */
	enum mdm_err (*lock)(struct cache *c, const char *key, int64_t ttl_ms);
	void (*unlock)(struct cache *c, const char *key);
	/* stats: adds this cache's counters into out. */
	void (*stats)(struct cache *c, struct cache_stats *out);
	void (*destroy)(struct cache *c);
	/* add, gets, cas: see cache_add, cache_get_cas and cache_cas below. NULL: not supported. */
	enum mdm_err (*add)(struct cache *c, const char *key, const void *val, size_t len,
			    int64_t ttl_ms);
	enum mdm_err (*get_cas)(struct cache *c, const char *key, struct cache_entry *out,
				uint64_t *cas);
	enum mdm_err (*cas)(struct cache *c, const char *key, const void *val, size_t len,
			    int64_t ttl_ms, uint64_t cas);
};

struct cache {
	const struct cache_ops *ops;
	void *priv;
};

struct cache_mem_config {
	size_t max_entries; /* bound on entries held; the least recently used go first */
	unsigned shards;    /* lock shards, a power of two */
	size_t max_value;   /* largest value accepted (MDM_ERR_TOOBIG past it) */
	/*
	 * An entry is dropped once this long has passed since its put, whatever its times say
	 * (the L1 TTL in front of memcached); 0: no cap.
	 */
	int64_t max_hold_ms;
	int64_t (*now)(void); /* wall clock in ms; NULL for clock_wall_ms (tests set their own) */
};

/* cache_mem_create: the in-process cache. NULL on bad config or no memory. */
struct cache *cache_mem_create(const struct cache_mem_config *cfg);

#define CACHE_MC_SERVERS_MAX 64

/* Copied by cache_mc_create, strings and key included: the caller may free or wipe its own. */
struct cache_mc_config {
	/* "host:port" (IPv4, [IPv6] or a name), 1..CACHE_MC_SERVERS_MAX of them */
	const char *const *servers;
	size_t nservers;
	const unsigned char *hmac_key; /* tags every value; a value whose tag fails is a miss */
	size_t hmac_key_len;	       /* at least 16 */
	/*
	 * libmemcached handles shared by all threads (1..1024). A thread waits at most
	 * io_timeout_ms for a free one, then skips memcached (a miss, counted in l2_skipped).
	 */
	unsigned pool_size;
	int64_t connect_timeout_ms; /* tens of milliseconds, not libmemcached's seconds; <= 60 s */
	int64_t io_timeout_ms;	    /* each wait for a reply; <= 60 s */
	unsigned failure_limit;	    /* per handle and server: failures before it is ejected */
	int64_t retry_timeout_ms; /* an ejected server is tried again after this (whole seconds) */
	int64_t breaker_open_ms;  /* every server failing: skip memcached this long */
	size_t max_value;	  /* largest value accepted (MDM_ERR_TOOBIG past it) */
	int64_t (*now)(void);	  /* NULL for clock_wall_ms */
};

/*
 * cache_mc_create: the memcached tier (libmemcached, text protocol, ketama, a bounded handle
 * pool). Values are stored as compact JSON with their times and an HMAC-SHA256 tag over key,
 * times and payload. NULL with a reason in why on bad config or no memory; servers that are
 * down at start are not an error (they are misses until they come back).
 * Beyond the interface: values must be UTF-8 (they travel as a JSON string; MDM_ERR_INVALID
 * otherwise), and JSON escaping makes the stored item bigger than the value (a '"' takes two
 * bytes), so max_value should leave room under memcached's item size (1 MB by default).
 * Memcached keeps an item at most 30 days, whatever stale_until says. A lock is a memcached
 * item that lapses after ttl_ms rounded up to whole seconds (memcached's clock ticks in seconds,
 * so it may lapse up to a second early). When memcached cannot be asked, lock answers MDM_OK:
 * the caller's in-process lock (cache_tiered_create's l1) still keeps one refresh per process.
 * When every server keeps failing, a breaker skips memcached for breaker_open_ms at a time.
 */
struct cache *cache_mc_create(const struct cache_mc_config *cfg, char *why, size_t whysz);

/*
 * cache_tiered_create: l1 (in-process, may be NULL) in front of l2 (memcached), as one cache.
 * A read tries l1, then l2 for the misses in one get_many, and fills l1 with what l2 had (with
 * the times l2 had; l1's max_hold_ms caps how long l1 keeps them); a put writes both; del both;
 * lock takes l1's lock then l2's (released in reverse), so one refresh runs per key in this
 * process and across processes. put and del try both tiers and return the first error.
 * Takes ownership of both, also on failure: NULL (l2 NULL or no memory) has destroyed them.
 */
struct cache *cache_tiered_create(struct cache *l1, struct cache *l2);

/* Thin wrappers over the vtable. cache_destroy(NULL) does nothing. */
enum mdm_err cache_get(struct cache *c, const char *key, struct cache_entry *out);
enum mdm_err cache_get_many(struct cache *c, const char *const *keys, size_t n,
			    struct cache_entry *out);
enum mdm_err cache_put(struct cache *c, const char *key, const void *val, size_t len,
		       const struct cache_times *t);
enum mdm_err cache_del(struct cache *c, const char *key);
enum mdm_err cache_lock(struct cache *c, const char *key, int64_t ttl_ms);
void cache_unlock(struct cache *c, const char *key);

/*
 * Coordination primitives (the HA lease, once-claims, published snapshots). Unlike put, they
 * report trouble: MDM_ERR_UNAVAILABLE when memcached could not be asked or did not answer (the
 * caller must not take that for "absent" or "stored"). On memcached they act on memcached alone
 * (a tiered cache forwards them to its l2 and drops l1's copy of the key); values carry the
 * same HMAC tag as put's, so a value not written with this HMAC key reads as absent.
 * ttl_ms: the entry lapses after it (memcached: rounded up to whole seconds, at most 30 days);
 * 0: never. The entry's times are fetched_at = now, fresh_until = stale_until = now + ttl.
 */
#define CACHE_CAS_ANY 0 /* cache_cas: store whatever is there (a set that reports trouble) */

/* cache_add: stores val under key only when key holds nothing: MDM_OK, or MDM_ERR_EXISTS. */
enum mdm_err cache_add(struct cache *c, const char *key, const void *val, size_t len,
		       int64_t ttl_ms);
/*
 * cache_get_cas: key's value into out (state CACHE_FRESH) and its version into *cas, for a later
 * cache_cas. MDM_ERR_NOTFOUND when key holds nothing of ours (out is then a miss).
 */
enum mdm_err cache_get_cas(struct cache *c, const char *key, struct cache_entry *out,
			   uint64_t *cas);
/*
 * cache_cas: replaces key's value when it is still the version cas read by cache_get_cas: MDM_OK,
 * MDM_ERR_EXISTS (changed since), MDM_ERR_NOTFOUND (gone since). cas CACHE_CAS_ANY stores
 * unconditionally (MDM_OK), reporting trouble where put would drop it.
 */
enum mdm_err cache_cas(struct cache *c, const char *key, const void *val, size_t len,
		       int64_t ttl_ms, uint64_t cas);

/* cache_stats: c's counters into out, which is zeroed first (the op itself adds). */
void cache_stats(struct cache *c, struct cache_stats *out);
void cache_destroy(struct cache *c);
/* cache_entry_clear: frees an entry's value and marks it a miss. */
void cache_entry_clear(struct cache_entry *e);
/* cache_key_valid: printable ASCII, no space, 1..CACHE_KEY_MAX bytes. */
int cache_key_valid(const char *key);
/* cache_times_valid: the order every implementation checks of an entry's times, on put and on
 * read: 0 <= fetched_at <= fresh_until <= stale_until. */
int cache_times_valid(int64_t fetched_at, int64_t fresh_until, int64_t stale_until);
/*
 * cache_put_check: what every implementation's put checks first: the key, the value and its
 * times (MDM_ERR_INVALID), its size against max_value (MDM_ERR_TOOBIG). On MDM_OK, *dead says
 * the entry's stale_until has passed by now: a put that keeps nothing and succeeds.
 */
enum mdm_err cache_put_check(const char *key, const void *val, size_t len,
			     const struct cache_times *t, size_t max_value, int64_t now,
			     bool *dead);

#endif
