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

#endif
