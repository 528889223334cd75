#include "unit.h"

#include <libmemcached-1.0/memcached.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../cache/cache.h"
#include "cachetest.h"
#include "mcserver.h"

static const unsigned char hmac_key[] = "0123456789abcdef0123456789abcdef";
static struct mcserver srv;
static const char *srv_list[1];

/* A tiered cache and, borrowed, its two tiers (the tiered one owns them). */
struct pair {
	struct cache *t, *l1, *l2;
};

static struct cache *make_l1(int64_t max_hold_ms)
{
	struct cache_mem_config cfg = {
	    .max_entries = 1000,
	    .shards = 4,
	    .max_value = 4096,
	    .max_hold_ms = max_hold_ms,
	    .now = fake_now,
	};
	struct cache *c = cache_mem_create(&cfg);

	assert_non_null(c);
	return c;
}

static struct cache *make_l2(void)
{
	struct cache_mc_config cfg = {
	    .servers = srv_list,
	    .nservers = 1,
	    .hmac_key = hmac_key,
	    .hmac_key_len = 32,
	    .pool_size = 8,
	    .connect_timeout_ms = 200,
	    .io_timeout_ms = 500,
	    .failure_limit = 2,
	    .retry_timeout_ms = 1000,
	    .breaker_open_ms = 500,
	    .max_value = 4096,
	    .now = fake_now,
	};
	char why[256] = "";
	struct cache *c = cache_mc_create(&cfg, why, sizeof(why));

	if (!c)
		fprintf(stderr, "cache_mc_create: %s\n", why);
	assert_non_null(c);
	return c;
}

static struct pair make_pair(int64_t max_hold_ms)
{
	struct pair p = {.l1 = make_l1(max_hold_ms), .l2 = make_l2()};

	p.t = cache_tiered_create(p.l1, p.l2);
	assert_non_null(p.t);
	return p;
}

static int group_setup(void **state)
{
	(void)state;
	if (mcserver_start(&srv, 0) != 0)
		return -1;
	srv_list[0] = srv.addr;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	mcserver_stop_all(NULL);
	return 0;
}

static int setup(void **state)
{
	(void)state;
	mcserver_flush(&srv);
	test_now = wall_ms();
	return 0;
}

/* --- tests ----------------------------------------------------------------------------------- */

/* What l1 has, l1 answers: memcached is not asked. */
static void test_l1_hit(void **state)
{
	struct pair p = make_pair(0);
	struct cache_stats before;

	(void)state;
	put_str(p.t, "k", "v", 60000, 0);
	before = stats(p.t);
	assert_int_equal(get_state(p.t, "k", "v"), CACHE_FRESH);
	assert_int_equal(get_state(p.t, "k", "v"), CACHE_FRESH);
	assert_int_equal(stats(p.t).l2_ops, before.l2_ops);
	assert_int_equal(stats(p.t).l1_hits, before.l1_hits + 2);
	cache_destroy(p.t);
}

/* An l1 miss that l2 has: answered, and l1 filled with l2's times, not new ones. */
static void test_l2_fills_l1(void **state)
{
	struct pair p = make_pair(0);
	struct cache_times t = {test_now - 5000, test_now + 10000, test_now + 20000};
	struct cache_stats before;
	struct cache_entry e;

	(void)state;
	assert_int_equal(cache_put(p.l2, "k", "from-l2", 7, &t), MDM_OK);
	assert_int_equal(get_state(p.l1, "k", NULL), CACHE_MISS);
	assert_int_equal(cache_get(p.t, "k", &e), MDM_OK);
	assert_int_equal(e.state, CACHE_FRESH);
	assert_string_equal(e.val, "from-l2");
	assert_int_equal(e.fetched_at, t.fetched_at);
	cache_entry_clear(&e);
	assert_int_equal(cache_get(p.l1, "k", &e), MDM_OK);
	assert_int_equal(e.state, CACHE_FRESH);
	assert_string_equal(e.val, "from-l2");
	assert_int_equal(e.fetched_at, t.fetched_at);
	assert_int_equal(e.fresh_until, t.fresh_until);
	assert_int_equal(e.stale_until, t.stale_until);
	cache_entry_clear(&e);
	/* from now on l1 answers */
	before = stats(p.t);
	assert_int_equal(get_state(p.t, "k", "from-l2"), CACHE_FRESH);
	assert_int_equal(stats(p.t).l2_ops, before.l2_ops);
	/* and by l2's times: stale when they say so */
	test_now += 10000;
	assert_int_equal(get_state(p.t, "k", "from-l2"), CACHE_STALE);
	cache_destroy(p.t);
}

/* Past l1's max_hold_ms an entry comes from l2 again (and so does another instance's refresh). */
static void test_max_hold(void **state)
{
	struct pair p = make_pair(1000);
	struct cache_stats before;

	(void)state;
	put_str(p.t, "k", "v1", 60000, 0);
	/* another instance refreshes k in memcached */
	put_str(p.l2, "k", "v2", 60000, 0);
	test_now += 999;
	before = stats(p.t);
	assert_int_equal(get_state(p.t, "k", "v1"), CACHE_FRESH);
	assert_int_equal(stats(p.t).l2_ops, before.l2_ops);
	test_now += 1;
	assert_int_equal(get_state(p.t, "k", "v2"), CACHE_FRESH);
	assert_int_equal(stats(p.t).l2_ops, before.l2_ops + 1);
	/* refilled: held again */
	assert_int_equal(get_state(p.t, "k", "v2"), CACHE_FRESH);
	assert_int_equal(stats(p.t).l2_ops, before.l2_ops + 1);
	cache_destroy(p.t);
}

static void test_put_del_both(void **state)
{
	struct pair p = make_pair(0);
	struct cache_times t = times(60000, 0);

	(void)state;
	put_str(p.t, "k", "v", 60000, 0);
	assert_int_equal(get_state(p.l1, "k", "v"), CACHE_FRESH);
	assert_int_equal(get_state(p.l2, "k", "v"), CACHE_FRESH);
	assert_int_equal(cache_del(p.t, "k"), MDM_OK);
	assert_int_equal(get_state(p.l1, "k", NULL), CACHE_MISS);
	assert_int_equal(get_state(p.l2, "k", NULL), CACHE_MISS);
	assert_int_equal(get_state(p.t, "k", NULL), CACHE_MISS);
	/* each tier's refusals come through */
	assert_int_equal(cache_put(p.t, "bad key", "v", 1, &t), MDM_ERR_INVALID);
	assert_int_equal(cache_put(p.t, "bin", "\xff", 1, &t), MDM_ERR_INVALID); /* l2: not UTF-8 */
	assert_int_equal(cache_del(p.t, "bad key"), MDM_ERR_INVALID);
	cache_destroy(p.t);
}

/* One get_many: l1's hits from l1, the rest from l2 in one request. */
static void test_get_many(void **state)
{
	struct pair p = make_pair(0);
	const char *keys[] = {"in-l1", "in-l2", "nowhere", "in-l1", "in-l2"};
	struct cache_entry out[5];
	struct cache_stats before, after;

	(void)state;
	put_str(p.l1, "in-l1", "one", 60000, 0);
	put_str(p.l2, "in-l2", "two", 60000, 0);
	before = stats(p.t);
	assert_int_equal(cache_get_many(p.t, keys, 5, out), MDM_OK);
	after = stats(p.t);
	assert_int_equal(after.l2_ops - before.l2_ops, 1);
	assert_int_equal(after.l1_hits - before.l1_hits, 2);
	assert_int_equal(after.l1_misses - before.l1_misses, 3);
	assert_int_equal(after.l2_hits - before.l2_hits, 2);
	assert_int_equal(after.l2_misses - before.l2_misses, 1);
	assert_string_equal(out[0].val, "one");
	assert_string_equal(out[1].val, "two");
	assert_int_equal(out[2].state, CACHE_MISS);
	assert_string_equal(out[3].val, "one");
	assert_string_equal(out[4].val, "two");
	for (int i = 0; i < 5; i++)
		cache_entry_clear(&out[i]);
	assert_int_equal(get_state(p.l1, "in-l2", "two"), CACHE_FRESH);
	cache_destroy(p.t);
}

/* Two instances sharing memcached: one refresh between them; l1 released when l2 says BUSY. */
static void test_lock_two_instances(void **state)
{
	struct pair a = make_pair(0), b = make_pair(0);

	(void)state;
	assert_int_equal(cache_lock(a.t, "k", 10000), MDM_OK);
	assert_int_equal(cache_lock(a.t, "k", 10000), MDM_ERR_BUSY); /* a's l1 */
	assert_int_equal(cache_lock(b.t, "k", 10000), MDM_ERR_BUSY); /* memcached */
	/* b's l1 lock was given back: b's own l1 can be taken */
	assert_int_equal(cache_lock(b.l1, "k", 10000), MDM_OK);
	cache_unlock(b.l1, "k");
	assert_int_equal(stats(a.t).lock_busy, 1);
	assert_int_equal(stats(b.t).lock_busy, 1);
	cache_unlock(a.t, "k");
	assert_int_equal(cache_lock(b.t, "k", 10000), MDM_OK);
	assert_int_equal(cache_lock(a.t, "k", 10000), MDM_ERR_BUSY);
	cache_unlock(b.t, "k");
	assert_int_equal(cache_lock(a.t, "k", 10000), MDM_OK);
	cache_unlock(a.t, "k");
	assert_int_equal(cache_lock(a.t, "k", 0), MDM_ERR_INVALID);
	cache_destroy(a.t);
	cache_destroy(b.t);
}

static void test_stats_sum(void **state)
{
	struct pair p = make_pair(0);
	struct cache_stats s1, s2, st;

	(void)state;
	put_str(p.t, "a", "A", 60000, 0);
	put_str(p.l2, "b", "B", 0, 60000);
	get_state(p.t, "a", "A");
	get_state(p.t, "b", "B");
	get_state(p.t, "c", NULL);
	assert_int_equal(cache_lock(p.t, "a", 1000), MDM_OK);
	assert_int_equal(cache_lock(p.t, "a", 1000), MDM_ERR_BUSY);
	cache_unlock(p.t, "a");
	s1 = stats(p.l1);
	s2 = stats(p.l2);
	st = stats(p.t);
	assert_int_equal(st.l1_hits, s1.l1_hits);
	assert_int_equal(st.l1_misses, s1.l1_misses);
	assert_int_equal(st.l2_hits, s2.l2_hits);
	assert_int_equal(st.l2_stale_hits, s2.l2_stale_hits);
	assert_int_equal(st.l2_misses, s2.l2_misses);
	assert_int_equal(st.l2_ops, s2.l2_ops);
	assert_int_equal(st.lock_busy, s1.lock_busy + s2.lock_busy);
	assert_int_equal(st.l1_hits, 1);
	assert_int_equal(st.l1_misses, 2);
	assert_int_equal(st.l2_stale_hits, 1);
	assert_int_equal(st.l2_misses, 1);
	assert_int_equal(st.lock_busy, 1);
	cache_destroy(p.t);
}

/* Without l1, everything goes to l2. */
static void test_no_l1(void **state)
{
	struct cache *l2 = make_l2();
	struct cache *t = cache_tiered_create(NULL, l2);
	struct cache_stats s;

	(void)state;
	assert_non_null(t);
	put_str(t, "k", "v", 60000, 0);
	assert_int_equal(get_state(l2, "k", "v"), CACHE_FRESH);
	assert_int_equal(get_state(t, "k", "v"), CACHE_FRESH);
	assert_int_equal(cache_lock(t, "k", 1000), MDM_OK);
	assert_int_equal(cache_lock(t, "k", 1000), MDM_ERR_BUSY);
	cache_unlock(t, "k");
	assert_int_equal(cache_del(t, "k"), MDM_OK);
	assert_int_equal(get_state(t, "k", NULL), CACHE_MISS);
	s = stats(t);
	assert_int_equal(s.l1_hits + s.l1_misses, 0);
	assert_int_equal(s.l2_hits, 2);
	cache_destroy(t);
	/* No l2: NULL, and l1 was destroyed all the same (the leak checker would say). */
	assert_null(cache_tiered_create(make_l1(0), NULL));
}

/* --- a cold key, 100 threads: get, miss, lock, fill ------------------------------------------ */

#define FILL_THREADS 100

struct fill {
	struct cache *c;
	pthread_barrier_t start;
	pthread_mutex_t mu;
	int fills, hits, errors;
};

/* The caller's pattern: a miss takes the lock, looks again, and only then fills. */
static void *fill_thread(void *p)
{
	struct fill *f = p;
	struct cache_times t = {test_now, test_now + 60000, test_now + 60000};
	struct cache_entry e;
	enum mdm_err err;
	int filled = 0, hit = 0, bad = 0;

	pthread_barrier_wait(&f->start);
	for (int tries = 0; tries < 2000 && !hit; tries++) {
		bad += cache_get(f->c, "cold", &e) != MDM_OK;
		hit = e.state == CACHE_FRESH;
		cache_entry_clear(&e);
		if (hit)
			break;
		err = cache_lock(f->c, "cold", 30000);
		if (err == MDM_ERR_BUSY) {
			mc_sleep_ms(2);
			continue;
		}
		bad += err != MDM_OK;
		bad += cache_get(f->c, "cold", &e) != MDM_OK;
		if (e.state == CACHE_MISS) {
			bad += cache_put(f->c, "cold", "filled", 6, &t) != MDM_OK;
			filled++;
		}
		cache_entry_clear(&e);
		cache_unlock(f->c, "cold");
	}
	pthread_mutex_lock(&f->mu);
	f->fills += filled;
	f->hits += hit;
	f->errors += bad;
	pthread_mutex_unlock(&f->mu);
	return NULL;
}

static void test_fill_once(void **state)
{
	struct pair p = make_pair(0);
	struct fill *f = calloc(1, sizeof(*f));
	pthread_t th[FILL_THREADS];

	(void)state;
	assert_non_null(f);
	f->c = p.t;
	assert_int_equal(pthread_mutex_init(&f->mu, NULL), 0);
	assert_int_equal(pthread_barrier_init(&f->start, NULL, FILL_THREADS), 0);
	for (int i = 0; i < FILL_THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, fill_thread, f), 0);
	for (int i = 0; i < FILL_THREADS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	assert_int_equal(f->errors, 0);
	assert_int_equal(f->fills, 1);
	assert_int_equal(f->hits, FILL_THREADS);
	assert_int_equal(get_state(p.l2, "cold", "filled"), CACHE_FRESH);
	pthread_barrier_destroy(&f->start);
	pthread_mutex_destroy(&f->mu);
	free(f);
	cache_destroy(p.t);
}

/* add, gets, cas are memcached's: l1 neither answers them nor keeps an old copy after them. */
static void test_coord_l2(void **state)
{
	struct pair p = make_pair(0);
	struct pair q = make_pair(0);
	struct cache_entry e;
	uint64_t v = 0;

	(void)state;
	coord_check(p.t);
	/* Stored in l2 alone. */
	assert_int_equal(get_state(p.l1, "coord", NULL), CACHE_MISS);
	assert_int_equal(get_state(p.l2, "coord", "seven"), CACHE_FRESH);
	/* A get fills l1; a cas through another instance is seen by gets at once... */
	assert_int_equal(get_state(p.t, "coord", "seven"), CACHE_FRESH);
	assert_int_equal(get_state(p.l1, "coord", "seven"), CACHE_FRESH);
	assert_int_equal(cache_cas(q.t, "coord", "eight", 5, 60000, CACHE_CAS_ANY), MDM_OK);
	assert_int_equal(cache_get_cas(p.t, "coord", &e, &v), MDM_OK);
	assert_string_equal(e.val, "eight");
	cache_entry_clear(&e);
	/* ...and a cas through this one drops l1's copy, so its own get sees it too. */
	assert_int_equal(cache_cas(p.t, "coord", "nine", 4, 60000, v), MDM_OK);
	assert_int_equal(get_state(p.l1, "coord", NULL), CACHE_MISS);
	assert_int_equal(get_state(p.t, "coord", "nine"), CACHE_FRESH);
	/* An add in l1 alone does not stop the tiered add: only l2 has a say. */
	assert_int_equal(cache_add(p.l1, "only-l1", "x", 1, 60000), MDM_OK);
	assert_int_equal(cache_add(p.t, "only-l1", "y", 1, 60000), MDM_OK);
	assert_int_equal(cache_add(q.t, "only-l1", "z", 1, 60000), MDM_ERR_EXISTS);
	cache_destroy(p.t);
	cache_destroy(q.t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_l1_hit, setup),
	    cmocka_unit_test_setup(test_l2_fills_l1, setup),
	    cmocka_unit_test_setup(test_max_hold, setup),
	    cmocka_unit_test_setup(test_put_del_both, setup),
	    cmocka_unit_test_setup(test_get_many, setup),
	    cmocka_unit_test_setup(test_lock_two_instances, setup),
	    cmocka_unit_test_setup(test_stats_sum, setup),
	    cmocka_unit_test_setup(test_no_l1, setup),
	    cmocka_unit_test_setup(test_fill_once, setup),
	    cmocka_unit_test_setup(test_coord_l2, setup),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
