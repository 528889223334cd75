#include "unit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../../cache/cache.h"
#include "cachetest.h"

static struct cache *make_hold(size_t max_entries, unsigned shards, size_t max_value,
			       int64_t max_hold_ms)
{
	struct cache_mem_config cfg = {
	    .max_entries = max_entries,
	    .shards = shards,
	    .max_value = max_value,
	    .max_hold_ms = max_hold_ms,
	    .now = fake_now,
	};
	struct cache *c = cache_mem_create(&cfg);

	assert_non_null(c);
	return c;
}

static struct cache *make_cache(size_t max_entries, unsigned shards, size_t max_value)
{
	return make_hold(max_entries, shards, max_value, 0);
}

/* Times fetched at `at`, fresh for fresh_ms, then stale for stale_ms. */
static struct cache_times times_at(int64_t at, int64_t fresh_ms, int64_t stale_ms)
{
	return (struct cache_times){at, at + fresh_ms, at + fresh_ms + stale_ms};
}

static void test_config(void **state)
{
	struct cache_mem_config cfg = {.max_entries = 10, .shards = 4, .max_value = 100};
	struct cache_times t = times_at(wall_ms(), 60000, 0);
	struct cache *c;

	(void)state;
	assert_null(cache_mem_create(NULL));
	cfg.shards = 0;
	assert_null(cache_mem_create(&cfg));
	cfg.shards = 3;
	assert_null(cache_mem_create(&cfg));
	cfg.shards = 2048;
	assert_null(cache_mem_create(&cfg));
	cfg.shards = 1024;
	cfg.max_entries = 0;
	assert_null(cache_mem_create(&cfg));
	cfg.max_entries = 10;
	cfg.max_value = 0;
	assert_null(cache_mem_create(&cfg));
	cfg.max_value = 100;
	cfg.max_hold_ms = -1;
	assert_null(cache_mem_create(&cfg));
	cfg.max_hold_ms = 0;
	c = cache_mem_create(&cfg); /* 1024 shards, no clock given: the wall clock */
	assert_non_null(c);
	assert_int_equal(cache_put(c, "k", "v", 1, &t), MDM_OK);
	assert_int_equal(get_state(c, "k", "v"), CACHE_FRESH);
	cache_destroy(c);
	cache_destroy(NULL);
}

static void test_put_get_fresh(void **state)
{
	struct cache *c = make_cache(100, 4, 1024);
	struct cache_times t = times_at(1000, 100, 0);
	struct cache_entry e;

	(void)state;
	test_now = 1000;
	put_str(c, "mac:0026B424FEB4", "{\"v\":1}", 300, 600);
	assert_int_equal(cache_get(c, "mac:0026B424FEB4", &e), MDM_OK);
	assert_int_equal(e.state, CACHE_FRESH);
	assert_int_equal(e.len, 7);
	assert_memory_equal(e.val, "{\"v\":1}", 8); /* NUL-terminated copy */
	assert_int_equal(e.fetched_at, 1000);
	assert_int_equal(e.fresh_until, 1300);
	assert_int_equal(e.stale_until, 1900);
	cache_entry_clear(&e);
	assert_null(e.val);
	assert_int_equal(e.state, CACHE_MISS);
	assert_int_equal(get_state(c, "mac:0026B424FEB5", NULL), CACHE_MISS);
	/* An empty value is a value, not a miss. */
	assert_int_equal(cache_put(c, "empty", NULL, 0, &t), MDM_OK);
	assert_int_equal(get_state(c, "empty", ""), CACHE_FRESH);
	/* Binary values come back whole. */
	assert_int_equal(cache_put(c, "bin", "a\0b", 3, &t), MDM_OK);
	assert_int_equal(cache_get(c, "bin", &e), MDM_OK);
	assert_int_equal(e.len, 3);
	assert_memory_equal(e.val, "a\0b", 4);
	cache_entry_clear(&e);
	cache_destroy(c);
}

static void test_ttl(void **state)
{
	struct cache *c = make_cache(100, 4, 1024);
	struct cache_times t;

	(void)state;
	test_now = 1000;
	put_str(c, "k", "v", 1000, 500);
	test_now = 1999;
	assert_int_equal(get_state(c, "k", "v"), CACHE_FRESH);
	test_now = 2000;
	assert_int_equal(get_state(c, "k", "v"), CACHE_STALE);
	test_now = 2499;
	assert_int_equal(get_state(c, "k", "v"), CACHE_STALE);
	test_now = 2500;
	assert_int_equal(get_state(c, "k", NULL), CACHE_MISS);
	/* The dead entry was removed, not just hidden: turning the clock back does not revive it.
	 */
	test_now = 1500;
	assert_int_equal(get_state(c, "k", NULL), CACHE_MISS);
	/* No stale window: stale straight to gone. */
	put_str(c, "k2", "v", 100, 0);
	test_now = 1600;
	assert_int_equal(get_state(c, "k2", NULL), CACHE_MISS);
	/* The far future is a time like any other. */
	t = (struct cache_times){1600, INT64_MAX, INT64_MAX};
	assert_int_equal(cache_put(c, "k3", "v", 1, &t), MDM_OK);
	assert_int_equal(get_state(c, "k3", "v"), CACHE_FRESH);
	cache_destroy(c);
}

/* Times are kept as given, checked for order, and an entry already gone is not kept. */
static void test_times(void **state)
{
	struct cache *c = make_cache(10, 2, 64);
	struct cache_times t;
	struct cache_entry e;

	(void)state;
	test_now = 5000;
	/* fetched earlier (by another tier, say): kept as given, stale already */
	t = (struct cache_times){1000, 4000, 9000};
	assert_int_equal(cache_put(c, "k", "v", 1, &t), MDM_OK);
	assert_int_equal(cache_get(c, "k", &e), MDM_OK);
	assert_int_equal(e.state, CACHE_STALE);
	assert_int_equal(e.fetched_at, 1000);
	assert_int_equal(e.fresh_until, 4000);
	assert_int_equal(e.stale_until, 9000);
	cache_entry_clear(&e);
	/* equal times are in order: fresh for no time, stale for none either */
	t = (struct cache_times){5000, 5000, 6000};
	assert_int_equal(cache_put(c, "k2", "v", 1, &t), MDM_OK);
	assert_int_equal(get_state(c, "k2", "v"), CACHE_STALE);
	/* stale_until not after now: MDM_OK, nothing kept, the old entry left alone */
	t = (struct cache_times){1000, 2000, 5000};
	assert_int_equal(cache_put(c, "k", "w", 1, &t), MDM_OK);
	assert_int_equal(get_state(c, "k", "v"), CACHE_STALE);
	assert_int_equal(cache_put(c, "gone", "w", 1, &t), MDM_OK);
	assert_int_equal(get_state(c, "gone", NULL), CACHE_MISS);
	/* out of order, negative or missing: refused */
	t = (struct cache_times){5000, 7000, 6000};
	assert_int_equal(cache_put(c, "k3", "v", 1, &t), MDM_ERR_INVALID);
	t = (struct cache_times){6000, 5500, 7000};
	assert_int_equal(cache_put(c, "k3", "v", 1, &t), MDM_ERR_INVALID);
	t = (struct cache_times){-1, 5500, 7000};
	assert_int_equal(cache_put(c, "k3", "v", 1, &t), MDM_ERR_INVALID);
	assert_int_equal(cache_put(c, "k3", "v", 1, NULL), MDM_ERR_INVALID);
	assert_int_equal(get_state(c, "k3", NULL), CACHE_MISS);
	cache_destroy(c);
}

/* max_hold_ms: an entry goes that long after its put, whatever its own times say. */
static void test_max_hold(void **state)
{
	struct cache *c = make_hold(10, 2, 64, 1000);
	struct cache_times t;

	(void)state;
	test_now = 10000;
	put_str(c, "k", "v", 60000, 60000);
	test_now = 10999;
	assert_int_equal(get_state(c, "k", "v"), CACHE_FRESH);
	test_now = 11000;
	assert_int_equal(get_state(c, "k", NULL), CACHE_MISS);
	/* dropped, not hidden: the clock going back does not bring it back */
	test_now = 10500;
	assert_int_equal(get_state(c, "k", NULL), CACHE_MISS);
	/* counted from the put, not from fetched_at: an old answer put now is held in full */
	test_now = 20000;
	t = (struct cache_times){1000, 30000, 90000};
	assert_int_equal(cache_put(c, "old", "v", 1, &t), MDM_OK);
	test_now = 20999;
	assert_int_equal(get_state(c, "old", "v"), CACHE_FRESH);
	/* a put again restarts the hold */
	assert_int_equal(cache_put(c, "old", "v", 1, &t), MDM_OK);
	test_now = 21500;
	assert_int_equal(get_state(c, "old", "v"), CACHE_FRESH);
	/* the entry's own times still end it first when they are shorter */
	put_str(c, "short", "v", 100, 100);
	test_now = 21700;
	assert_int_equal(get_state(c, "short", NULL), CACHE_MISS);
	assert_int_equal(stats(c).l1_evictions, 0); /* expiry is not eviction */
	cache_destroy(c);
}

static void test_stats(void **state)
{
	struct cache *c = make_cache(2, 1, 64);
	const char *keys[] = {"a", "b", "nope", "bad key"};
	struct cache_entry out[4];
	struct cache_stats s;

	(void)state;
	test_now = 1000;
	s = stats(c);
	assert_int_equal(s.l1_hits + s.l1_stale_hits + s.l1_misses + s.l1_evictions, 0);
	put_str(c, "a", "A", 100, 0);
	put_str(c, "b", "B", 0, 100);
	assert_int_equal(cache_get_many(c, keys, 4, out), MDM_OK);
	for (int i = 0; i < 4; i++)
		cache_entry_clear(&out[i]);
	s = stats(c);
	assert_int_equal(s.l1_hits, 1);
	assert_int_equal(s.l1_stale_hits, 1);
	assert_int_equal(s.l1_misses, 1); /* "bad key" is refused, not counted */
	assert_int_equal(s.l1_evictions, 0);
	put_str(c, "c", "C", 100, 0); /* a cache of two: "a", the least recent, goes */
	put_str(c, "d", "D", 100, 0);
	s = stats(c);
	assert_int_equal(s.l1_evictions, 2);
	assert_int_equal(get_state(c, "a", NULL), CACHE_MISS);
	assert_int_equal(stats(c).l1_misses, 2);
	assert_int_equal(cache_lock(c, "a", 100), MDM_OK);
	assert_int_equal(cache_lock(c, "a", 100), MDM_ERR_BUSY);
	assert_int_equal(stats(c).lock_busy, 1);
	/* the memcached tier's fields stay zero; cache_stats zeroes what it is given */
	memset(&s, 0xff, sizeof(s));
	cache_stats(c, &s);
	assert_int_equal(s.l1_hits, 1);
	assert_int_equal(s.l2_hits + s.l2_ops + s.l2_errors + s.breaker_opens, 0);
	assert_int_equal(s.breaker_open, 0);
	cache_stats(NULL, &s);
	assert_int_equal(s.l1_hits, 0);
	cache_destroy(c);
}

static void test_lru(void **state)
{
	struct cache *c = make_cache(3, 1, 64);

	(void)state;
	test_now = 1000;
	put_str(c, "a", "A", 10000, 0);
	put_str(c, "b", "B", 10000, 0);
	put_str(c, "c", "C", 10000, 0);
	/* Touch a: b is now the least recently used. */
	assert_int_equal(get_state(c, "a", "A"), CACHE_FRESH);
	put_str(c, "d", "D", 10000, 0);
	assert_int_equal(get_state(c, "b", NULL), CACHE_MISS);
	/* Order now (oldest first): c, a, d. Checking a and d leaves c the oldest. */
	assert_int_equal(get_state(c, "a", "A"), CACHE_FRESH);
	assert_int_equal(get_state(c, "d", "D"), CACHE_FRESH);
	put_str(c, "e", "E", 10000, 0);
	assert_int_equal(get_state(c, "c", NULL), CACHE_MISS);
	assert_int_equal(get_state(c, "a", "A"), CACHE_FRESH);
	assert_int_equal(get_state(c, "d", "D"), CACHE_FRESH);
	assert_int_equal(get_state(c, "e", "E"), CACHE_FRESH);
	cache_destroy(c);
}

/* With several shards each holds ceil(max_entries / shards): the total stays bounded. */
static void test_shard_bound(void **state)
{
	struct cache *c = make_cache(8, 4, 64);
	char key[32];
	int hits = 0;

	(void)state;
	test_now = 1000;
	for (int i = 0; i < 200; i++) {
		snprintf(key, sizeof(key), "key-%d", i);
		put_str(c, key, "v", 10000, 0);
	}
	for (int i = 0; i < 200; i++) {
		snprintf(key, sizeof(key), "key-%d", i);
		hits += get_state(c, key, "v") != CACHE_MISS;
	}
	assert_true(hits > 0);
	assert_true(hits <= 8);
	/* The most recent key is always kept. */
	assert_int_equal(get_state(c, "key-199", "v"), CACHE_FRESH);
	cache_destroy(c);
}

static void test_overwrite(void **state)
{
	struct cache *c = make_cache(2, 1, 64);
	struct cache_entry e;

	(void)state;
	test_now = 1000;
	put_str(c, "k", "one", 100, 100);
	test_now = 1050;
	put_str(c, "k", "second", 500, 200);
	assert_int_equal(cache_get(c, "k", &e), MDM_OK);
	assert_int_equal(e.state, CACHE_FRESH);
	assert_string_equal(e.val, "second");
	assert_int_equal(e.len, 6);
	assert_int_equal(e.fetched_at, 1050);
	assert_int_equal(e.fresh_until, 1550);
	assert_int_equal(e.stale_until, 1750);
	cache_entry_clear(&e);
	/* The overwrite replaced the entry: k and one more fit in a cache of two. */
	put_str(c, "other", "x", 500, 0);
	assert_int_equal(get_state(c, "k", "second"), CACHE_FRESH);
	assert_int_equal(get_state(c, "other", "x"), CACHE_FRESH);
	cache_destroy(c);
}

static void test_del(void **state)
{
	struct cache *c = make_cache(10, 2, 64);

	(void)state;
	test_now = 1000;
	put_str(c, "k", "v", 100, 0);
	assert_int_equal(cache_del(c, "k"), MDM_OK);
	assert_int_equal(get_state(c, "k", NULL), CACHE_MISS);
	assert_int_equal(cache_del(c, "k"), MDM_OK);
	assert_int_equal(cache_del(c, "never"), MDM_OK);
	assert_int_equal(cache_del(c, "bad key"), MDM_ERR_INVALID);
	/* del leaves the key's refresh lock alone. */
	assert_int_equal(cache_lock(c, "k", 1000), MDM_OK);
	put_str(c, "k", "v", 100, 0);
	assert_int_equal(cache_del(c, "k"), MDM_OK);
	assert_int_equal(cache_lock(c, "k", 1000), MDM_ERR_BUSY);
	cache_unlock(c, "k");
	/* Deleting the only entry and putting again works (the LRU list emptied cleanly). */
	put_str(c, "k", "w", 100, 0);
	assert_int_equal(get_state(c, "k", "w"), CACHE_FRESH);
	cache_destroy(c);
}

static void test_get_many(void **state)
{
	struct cache *c = make_cache(10, 2, 64);
	const char *keys[] = {"a", "missing", "b", "bad key", "", "a"};
	struct cache_entry out[6];

	(void)state;
	test_now = 1000;
	put_str(c, "a", "A", 100, 100);
	put_str(c, "b", "BB", 10, 100);
	test_now = 1050;
	assert_int_equal(cache_get_many(c, keys, 6, out), MDM_OK);
	assert_int_equal(out[0].state, CACHE_FRESH);
	assert_string_equal(out[0].val, "A");
	assert_int_equal(out[1].state, CACHE_MISS);
	assert_null(out[1].val);
	assert_int_equal(out[2].state, CACHE_STALE);
	assert_string_equal(out[2].val, "BB");
	assert_int_equal(out[2].len, 2);
	assert_int_equal(out[3].state, CACHE_MISS);
	assert_int_equal(out[4].state, CACHE_MISS);
	assert_int_equal(out[5].state, CACHE_FRESH);
	assert_ptr_not_equal(out[5].val, out[0].val); /* each gets its own copy */
	for (int i = 0; i < 6; i++)
		cache_entry_clear(&out[i]);
	assert_int_equal(cache_get_many(c, keys, 0, out), MDM_OK);
	cache_destroy(c);
}

static void test_refused(void **state)
{
	struct cache *c = make_cache(10, 2, 16);
	struct cache_times t = times_at(1000, 100, 0);
	char big[17], longkey[CACHE_KEY_MAX + 2];
	const char *bad[] = {"a b",
			     "",
			     " ",
			     "a\x01"
			     "b",
			     "tab\tkey",
			     "del\x7f",
			     "nl\n",
			     "\xc3\xa9t\xc3\xa9",
			     longkey,
			     NULL};

	(void)state;
	test_now = 1000;
	memset(big, 'x', sizeof(big));
	assert_int_equal(cache_put(c, "k", big, 17, &t), MDM_ERR_TOOBIG);
	assert_int_equal(get_state(c, "k", NULL), CACHE_MISS);
	assert_int_equal(cache_put(c, "k", big, 16, &t), MDM_OK);
	assert_int_equal(cache_put(c, "k", NULL, 3, &t), MDM_ERR_INVALID);

	memset(longkey, 'k', CACHE_KEY_MAX + 1);
	longkey[CACHE_KEY_MAX + 1] = '\0'; /* one byte too many */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_false(cache_key_valid(bad[i]));
		assert_int_equal(cache_put(c, bad[i], "v", 1, &t), MDM_ERR_INVALID);
		assert_int_equal(cache_lock(c, bad[i], 100), MDM_ERR_INVALID);
		assert_int_equal(cache_del(c, bad[i]), MDM_ERR_INVALID);
		assert_int_equal(get_state(c, bad[i], NULL), CACHE_MISS);
		cache_unlock(c, bad[i]); /* harmless */
	}
	/* CACHE_KEY_MAX (245: memcached's 250 less ":lock") is the longest key allowed. */
	assert_int_equal(CACHE_KEY_MAX, 245);
	longkey[CACHE_KEY_MAX] = '\0';
	assert_true(cache_key_valid(longkey));
	put_str(c, longkey, "v", 100, 0);
	assert_int_equal(get_state(c, longkey, "v"), CACHE_FRESH);
	assert_true(cache_key_valid("!~"));
	cache_destroy(c);
}

static void test_lock(void **state)
{
	struct cache *c = make_cache(10, 2, 64);

	(void)state;
	test_now = 1000;
	/* A cold key: no entry, the lock exists alone. */
	assert_int_equal(cache_lock(c, "k", 100), MDM_OK);
	assert_int_equal(cache_lock(c, "k", 100), MDM_ERR_BUSY);
	assert_int_equal(cache_lock(c, "other", 100), MDM_OK);
	cache_unlock(c, "k");
	assert_int_equal(cache_lock(c, "k", 100), MDM_OK);
	/* Lapses at 1100, taken again then. */
	test_now = 1099;
	assert_int_equal(cache_lock(c, "k", 100), MDM_ERR_BUSY);
	test_now = 1100;
	assert_int_equal(cache_lock(c, "k", 50), MDM_OK);
	test_now = 1149;
	assert_int_equal(cache_lock(c, "k", 100), MDM_ERR_BUSY);
	cache_unlock(c, "k");
	cache_unlock(c, "k");	  /* twice is harmless */
	cache_unlock(c, "never"); /* as is a key never locked */
	assert_int_equal(cache_lock(c, "k", 0), MDM_ERR_INVALID);
	assert_int_equal(cache_lock(c, "k", -5), MDM_ERR_INVALID);
	/* Locks do not touch entries. */
	put_str(c, "k", "v", 100, 0);
	assert_int_equal(cache_lock(c, "k", 100), MDM_OK);
	assert_int_equal(get_state(c, "k", "v"), CACHE_FRESH);
	cache_unlock(c, "k");
	assert_int_equal(get_state(c, "k", "v"), CACHE_FRESH);
	cache_destroy(c); /* "other" is still held: destroy frees it */
}

/* Locks are bounded too; lapsed ones make room again. */
static void test_lock_bound(void **state)
{
	struct cache *c = make_cache(2, 1, 64);

	(void)state;
	test_now = 1000;
	assert_int_equal(cache_lock(c, "a", 100), MDM_OK);
	assert_int_equal(cache_lock(c, "b", 200), MDM_OK);
	assert_int_equal(cache_lock(c, "c", 100), MDM_ERR_TOOBIG);
	/* Entries are not held back by locks. */
	put_str(c, "x", "1", 1000, 0);
	put_str(c, "y", "2", 1000, 0);
	assert_int_equal(get_state(c, "x", "1"), CACHE_FRESH);
	test_now = 1100; /* a lapsed, b held */
	assert_int_equal(cache_lock(c, "c", 100), MDM_OK);
	assert_int_equal(cache_lock(c, "d", 100), MDM_ERR_TOOBIG);
	cache_unlock(c, "b");
	assert_int_equal(cache_lock(c, "d", 100), MDM_OK);
	cache_destroy(c);
}

/* --- threads ------------------------------------------------------------------------------- */

#define MIX_THREADS 8
#define MIX_OPS 10000
#define MIX_KEYS 64

struct mix_arg {
	struct cache *c;
	unsigned seed;
	int errors;
};

static unsigned xorshift(unsigned *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* Any outcome but the ones the contract allows counts as an error; checked on the main thread. */
static void mix_one(struct mix_arg *a)
{
	unsigned r = xorshift(&a->seed);
	char key[16], val[32];
	struct cache_times t = times_at(wall_ms(), 60000, 1000);
	struct cache_entry e;
	enum mdm_err err;
	int n;

	snprintf(key, sizeof(key), "k%u", r % MIX_KEYS);
	switch ((r >> 8) % 4) {
	case 0:
		n = snprintf(val, sizeof(val), "value-%u", r);
		a->errors += cache_put(a->c, key, val, (size_t)n, &t) != MDM_OK;
		break;
	case 1:
	case 2:
		a->errors += cache_get(a->c, key, &e) != MDM_OK;
		if (e.state != CACHE_MISS)
			a->errors += e.state != CACHE_FRESH || strncmp(e.val, "value-", 6) != 0 ||
				     strlen(e.val) != e.len;
		cache_entry_clear(&e);
		break;
	default:
		err = cache_lock(a->c, key, 60000);
		if (err == MDM_OK)
			cache_unlock(a->c, key);
		else
			a->errors += err != MDM_ERR_BUSY;
		break;
	}
}

static void *mix_thread(void *p)
{
	struct mix_arg *a = p;

	for (int i = 0; i < MIX_OPS; i++)
		mix_one(a);
	return NULL;
}

static void test_threads_mixed(void **state)
{
	/* Fewer entries than keys, so eviction runs concurrently with everything else. */
	struct cache_mem_config cfg = {.max_entries = 32, .shards = 4, .max_value = 64};
	struct cache *c = cache_mem_create(&cfg);
	pthread_t th[MIX_THREADS];
	struct mix_arg args[MIX_THREADS];

	(void)state;
	assert_non_null(c);
	for (int i = 0; i < MIX_THREADS; i++) {
		args[i] = (struct mix_arg){.c = c, .seed = 2463534242u + (unsigned)i * 7919u};
		assert_int_equal(pthread_create(&th[i], NULL, mix_thread, &args[i]), 0);
	}
	for (int i = 0; i < MIX_THREADS; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(args[i].errors, 0);
	}
	cache_destroy(c);
}

#define FLIGHT_THREADS 100

struct flight {
	struct cache *c;
	pthread_barrier_t start;
	enum mdm_err res[FLIGHT_THREADS];
	int next;
	pthread_mutex_t mu;
};

static void *flight_thread(void *p)
{
	struct flight *f = p;
	int me;

	pthread_mutex_lock(&f->mu);
	me = f->next++;
	pthread_mutex_unlock(&f->mu);
	pthread_barrier_wait(&f->start);
	f->res[me] = cache_lock(f->c, "mac:0026B424FEB4", 60000);
	return NULL;
}

/* A cold key, 100 callers at once: exactly one refreshes. */
static void test_single_flight(void **state)
{
	struct cache_mem_config cfg = {.max_entries = 1000, .shards = 16, .max_value = 64};
	struct flight *f = calloc(1, sizeof(*f));
	pthread_t th[FLIGHT_THREADS];
	int ok = 0, busy = 0;

	(void)state;
	assert_non_null(f);
	f->c = cache_mem_create(&cfg);
	assert_non_null(f->c);
	assert_int_equal(pthread_mutex_init(&f->mu, NULL), 0);
	assert_int_equal(pthread_barrier_init(&f->start, NULL, FLIGHT_THREADS), 0);
	for (int i = 0; i < FLIGHT_THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, flight_thread, f), 0);
	for (int i = 0; i < FLIGHT_THREADS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	for (int i = 0; i < FLIGHT_THREADS; i++) {
		ok += f->res[i] == MDM_OK;
		busy += f->res[i] == MDM_ERR_BUSY;
	}
	assert_int_equal(ok, 1);
	assert_int_equal(busy, FLIGHT_THREADS - 1);
	cache_unlock(f->c, "mac:0026B424FEB4");
	assert_int_equal(cache_lock(f->c, "mac:0026B424FEB4", 60000), MDM_OK);
	pthread_barrier_destroy(&f->start);
	pthread_mutex_destroy(&f->mu);
	cache_destroy(f->c);
	free(f);
}

/* add, gets, cas in process: the shared checks, then the TTL by the injected clock. */
static void test_coord(void **state)
{
	struct cache *c = make_cache(100, 4, 16);
	struct cache_entry e;
	uint64_t v = 0;

	(void)state;
	test_now = 1000000;
	coord_check(c);
	assert_int_equal(cache_add(c, "short", "x", 1, 500), MDM_OK);
	test_now += 499;
	assert_int_equal(cache_add(c, "short", "y", 1, 500), MDM_ERR_EXISTS);
	test_now += 1;
	/* Lapsed: absent to gets and cas, free for add. */
	assert_int_equal(cache_get_cas(c, "short", &e, &v), MDM_ERR_NOTFOUND);
	assert_int_equal(cache_cas(c, "short", "z", 1, 500, 1), MDM_ERR_NOTFOUND);
	assert_int_equal(cache_add(c, "short", "y", 1, 500), MDM_OK);
	/* ttl 0 never lapses; a put's value has a version too. */
	test_now += 1000LL * 3600 * 24 * 365;
	assert_int_equal(cache_get_cas(c, "coord", &e, &v), MDM_OK);
	cache_entry_clear(&e);
	put_str(c, "plain", "p", 1000, 0);
	assert_int_equal(cache_get_cas(c, "plain", &e, &v), MDM_OK);
	cache_entry_clear(&e);
	assert_int_equal(cache_cas(c, "plain", "q", 1, 0, v), MDM_OK);
	assert_int_equal(get_state(c, "plain", "q"), CACHE_FRESH);
	assert_int_equal(cache_add(c, "big", "0123456789abcdefg", 17, 0), MDM_ERR_TOOBIG);
	cache_destroy(c);
}

/* Many threads adding one key: exactly one wins; cas increments from many threads lose none. */
#define COORD_THREADS 8
#define COORD_ROUNDS 200

static void *coord_thread(void *arg)
{
	struct cache *c = arg;
	long won = 0;

	for (int i = 0; i < COORD_ROUNDS; i++) {
		char key[32];

		snprintf(key, sizeof(key), "once:%d", i);
		won += cache_add(c, key, "1", 1, 0) == MDM_OK;
		for (;;) {
			struct cache_entry e;
			uint64_t v = 0;
			char val[32];
			int n;

			if (cache_get_cas(c, "counter", &e, &v) != MDM_OK)
				continue;
			n = snprintf(val, sizeof(val), "%ld", strtol(e.val, NULL, 10) + 1);
			cache_entry_clear(&e);
			if (cache_cas(c, "counter", val, (size_t)n, 0, v) == MDM_OK)
				break;
		}
	}
	return (void *)won;
}

static void test_coord_threads(void **state)
{
	struct cache *c = make_cache(10000, 4, 64);
	pthread_t th[COORD_THREADS];
	struct cache_entry e;
	uint64_t v = 0;
	long won = 0;

	(void)state;
	test_now = 1000000;
	assert_int_equal(cache_add(c, "counter", "0", 1, 0), MDM_OK);
	for (int i = 0; i < COORD_THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, coord_thread, c), 0);
	for (int i = 0; i < COORD_THREADS; i++) {
		void *r;

		assert_int_equal(pthread_join(th[i], &r), 0);
		won += (long)r;
	}
	assert_int_equal(won, COORD_ROUNDS);
	assert_int_equal(cache_get_cas(c, "counter", &e, &v), MDM_OK);
	assert_int_equal(strtol(e.val, NULL, 10), COORD_THREADS * COORD_ROUNDS);
	cache_entry_clear(&e);
	cache_destroy(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_config),	  cmocka_unit_test(test_put_get_fresh),
	    cmocka_unit_test(test_ttl),		  cmocka_unit_test(test_times),
	    cmocka_unit_test(test_max_hold),	  cmocka_unit_test(test_stats),
	    cmocka_unit_test(test_lru),		  cmocka_unit_test(test_shard_bound),
	    cmocka_unit_test(test_overwrite),	  cmocka_unit_test(test_del),
	    cmocka_unit_test(test_get_many),	  cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_lock),	  cmocka_unit_test(test_lock_bound),
	    cmocka_unit_test(test_threads_mixed), cmocka_unit_test(test_single_flight),
	    cmocka_unit_test(test_coord),	  cmocka_unit_test(test_coord_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
