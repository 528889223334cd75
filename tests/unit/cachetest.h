/*
 * cachetest: what the cache tests share: an injected clock the tests move by hand, and helpers
 * that put a string and check what a get returns. Include after unit.h and cache/cache.h.
 */
#ifndef MDM_CACHETEST_H
#define MDM_CACHETEST_H

#include <stdint.h>
#include <string.h>
#include <time.h>

/* The real wall clock in ms, for tests whose times must be near real ones. */
static inline int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The injected clock: tests set it and move it forward by hand. */
static int64_t test_now;

static inline int64_t fake_now(void)
{
	return test_now;
}

/* Times fetched now by the test clock, fresh for fresh_ms, then stale for stale_ms. */
static inline struct cache_times times(int64_t fresh_ms, int64_t stale_ms)
{
	return (struct cache_times){test_now, test_now + fresh_ms, test_now + fresh_ms + stale_ms};
}

static inline void put_str(struct cache *c, const char *key, const char *val, int64_t fresh_ms,
			   int64_t stale_ms)
{
	struct cache_times t = times(fresh_ms, stale_ms);

	assert_int_equal(cache_put(c, key, val, strlen(val), &t), MDM_OK);
}

/* The state a get of key returns; the value is checked against want when not a miss. */
static inline enum cache_state get_state(struct cache *c, const char *key, const char *want)
{
	struct cache_entry e;
	enum cache_state st;

	assert_int_equal(cache_get(c, key, &e), MDM_OK);
	st = e.state;
	if (st == CACHE_MISS) {
		assert_null(e.val);
	} else if (want) {
		assert_int_equal(e.len, strlen(want));
		assert_string_equal(e.val, want);
	}
	cache_entry_clear(&e);
	return st;
}

static inline struct cache_stats stats(struct cache *c)
{
	struct cache_stats s;

	cache_stats(c, &s);
	return s;
}

/*
 * What every implementation of add, gets and cas must do, on a cache whose key "coord" and
 * "coord2" are absent: add once, gets with a version, cas only with the current version, cas
 * on a deleted key, and the unconditional store (CACHE_CAS_ANY).
 */
static inline void coord_check(struct cache *c)
{
	struct cache_entry e;
	uint64_t v1 = 0, v2 = 0, v3 = 0;

	assert_int_equal(cache_get_cas(c, "coord", &e, &v1), MDM_ERR_NOTFOUND);
	assert_int_equal(e.state, CACHE_MISS);
	assert_null(e.val);
	assert_int_equal(cache_add(c, "coord", "one", 3, 60000), MDM_OK);
	assert_int_equal(cache_add(c, "coord", "two", 3, 60000), MDM_ERR_EXISTS);
	assert_int_equal(cache_get_cas(c, "coord", &e, &v1), MDM_OK);
	assert_int_equal(e.state, CACHE_FRESH);
	assert_int_equal(e.len, 3);
	assert_string_equal(e.val, "one");
	cache_entry_clear(&e);
	assert_int_equal(cache_cas(c, "coord", "three", 5, 60000, v1), MDM_OK);
	/* v1 is spent: a second writer holding it loses. */
	assert_int_equal(cache_cas(c, "coord", "four", 4, 60000, v1), MDM_ERR_EXISTS);
	assert_int_equal(cache_get_cas(c, "coord", &e, &v2), MDM_OK);
	assert_string_equal(e.val, "three");
	assert_true(v2 != v1);
	cache_entry_clear(&e);
	assert_int_equal(cache_del(c, "coord"), MDM_OK);
	assert_int_equal(cache_cas(c, "coord", "five", 4, 60000, v2), MDM_ERR_NOTFOUND);
	assert_int_equal(cache_cas(c, "coord", "six", 3, 60000, CACHE_CAS_ANY), MDM_OK);
	assert_int_equal(cache_cas(c, "coord", "seven", 5, 0, CACHE_CAS_ANY), MDM_OK);
	assert_int_equal(cache_get_cas(c, "coord", &e, &v3), MDM_OK);
	assert_string_equal(e.val, "seven");
	cache_entry_clear(&e);
	assert_int_equal(cache_add(c, "coord", "x", 1, 0), MDM_ERR_EXISTS);
	assert_int_equal(cache_add(c, "coord2", "", 0, 0), MDM_OK);
	assert_int_equal(cache_get_cas(c, "coord2", &e, &v3), MDM_OK);
	assert_int_equal(e.len, 0);
	cache_entry_clear(&e);
	assert_int_equal(cache_add(c, "bad key", "x", 1, 1000), MDM_ERR_INVALID);
	assert_int_equal(cache_add(c, "coord3", "x", 1, -1), MDM_ERR_INVALID);
}

#endif
