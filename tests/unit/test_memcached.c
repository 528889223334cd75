#include "unit.h"

#include <libmemcached-1.0/memcached.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../cache/cache.h"
#include "cachetest.h"
#include "mcserver.h"

/*
 * test_now (cachetest.h) is set from the wall clock at each test's start: memcached expires
 * items by its own clock in real seconds, so the times the tests write must be near real ones.
 */
static const unsigned char key_a[] = "0123456789abcdef0123456789abcdef";
static const unsigned char key_b[] = "another key, also long enough...";

/* The server most tests share; each test starts from an empty one. */
static struct mcserver srv;
static const char *srv_list[1];

static struct cache_mc_config config(const char *const *servers, size_t n)
{
	return (struct cache_mc_config){
	    .servers = servers,
	    .nservers = n,
	    .hmac_key = key_a,
	    .hmac_key_len = 32,
	    .pool_size = 4,
	    .connect_timeout_ms = 200,
	    .io_timeout_ms = 500,
	    .failure_limit = 2,
	    .retry_timeout_ms = 1000,
	    .breaker_open_ms = 500,
	    .max_value = 4096,
	    .now = fake_now,
	};
}

static struct cache *make(const struct cache_mc_config *cfg)
{
	char why[256] = "";
	struct cache *c = cache_mc_create(cfg, why, sizeof(why));

	if (!c)
		fprintf(stderr, "cache_mc_create: %s\n", why);
	assert_non_null(c);
	return c;
}

static struct cache *make_default(void)
{
	struct cache_mc_config cfg = config(srv_list, 1);

	return make(&cfg);
}

/* --- a plain libmemcached client, to look at and tamper with what the cache stored ----------- */

static memcached_st *raw_open(int port)
{
	memcached_st *r = memcached_create(NULL);

	assert_non_null(r);
	assert_int_equal(memcached_server_add(r, "127.0.0.1", (in_port_t)port), MEMCACHED_SUCCESS);
	return r;
}

/* What memcached holds under key (malloc'd, NUL-terminated), NULL when nothing. */
static char *raw_get(memcached_st *r, const char *key)
{
	memcached_return_t rc;
	size_t len = 0;
	uint32_t flags = 0;
	char *v = memcached_get(r, key, strlen(key), &len, &flags, &rc);

	if (rc != MEMCACHED_SUCCESS)
		assert_int_equal(rc, MEMCACHED_NOTFOUND);
	return v;
}

static void raw_set(memcached_st *r, const char *key, const char *val)
{
	assert_int_equal(memcached_set(r, key, strlen(key), val, strlen(val), 60, 0),
			 MEMCACHED_SUCCESS);
}

static bool raw_has(memcached_st *r, const char *key)
{
	char *v = raw_get(r, key);

	free(v);
	return v != NULL;
}

/*
 * A value as the cache writes it, tagged with hmac_key, with the fields given: the format is
 * the documented one, so a forged value with everything right must read as a hit.
 */
static char *forge(const unsigned char *hmac_key, const char *key, const char *version,
		   long long at, long long fu, long long su, const char *payload)
{
	char msg[1024], hex[65], *out;
	unsigned char md[32];
	size_t mdlen = 0;
	int n = snprintf(msg, sizeof(msg), "mdmgw-v1\n%s\n%lld\n%lld\n%lld\n%s", key, at, fu, su,
			 payload);

	assert_true(n > 0 && (size_t)n < sizeof(msg));
	assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, hmac_key, 32,
				  (const unsigned char *)msg, (size_t)n, md, sizeof(md), &mdlen));
	for (size_t i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	out = malloc(2048);
	assert_non_null(out);
	snprintf(out, 2048,
		 "{\"v\":%s,\"at\":%lld,\"fu\":%lld,\"su\":%lld,\"d\":\"%s\",\"t\":\"%s\"}",
		 version, at, fu, su, payload, hex);
	return out;
}

/* --- setup ----------------------------------------------------------------------------------- */

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

/* A test that failed half-way leaves no server of its own running. */
static int teardown(void **state)
{
	(void)state;
	mcserver_stop_all(&srv);
	return 0;
}

/* Each test: an empty server and the clock at the wall time. */
static int setup(void **state)
{
	memcached_st *r = raw_open(srv.port);

	(void)state;
	memcached_flush(r, 0);
	memcached_free(r);
	test_now = wall_ms();
	return 0;
}

/* --- tests ----------------------------------------------------------------------------------- */

static void test_config(void **state)
{
	const char *bad_servers[] = {"nohost",	   "host:",    ":11211",    "host:0",
				     "host:70000", "host:12x", "::1:11211", "[::1]",
				     "[::1]x:1",   "[]:11211", "a b:11211", "host:-1"};
	const char *v6[] = {"[::1]:11211", "localhost:11211"};
	struct cache_mc_config cfg;
	char why[256];
	struct cache *c;

	(void)state;
	assert_null(cache_mc_create(NULL, why, sizeof(why)));
	for (size_t i = 0; i < sizeof(bad_servers) / sizeof(bad_servers[0]); i++) {
		cfg = config(&bad_servers[i], 1);
		why[0] = '\0';
		assert_null(cache_mc_create(&cfg, why, sizeof(why)));
		assert_true(strlen(why) > 0);
	}
	cfg = config(srv_list, 0);
	assert_null(cache_mc_create(&cfg, why, sizeof(why)));
	cfg = config(srv_list, 1);
	cfg.hmac_key_len = 15;
	assert_null(cache_mc_create(&cfg, why, sizeof(why)));
	assert_non_null(strstr(why, "HMAC"));
	cfg = config(srv_list, 1);
	cfg.pool_size = 0;
	assert_null(cache_mc_create(&cfg, why, sizeof(why)));
	cfg = config(srv_list, 1);
	cfg.connect_timeout_ms = 0;
	assert_null(cache_mc_create(&cfg, why, sizeof(why)));
	cfg = config(srv_list, 1);
	cfg.io_timeout_ms = -1;
	assert_null(cache_mc_create(&cfg, why, sizeof(why)));
	cfg = config(srv_list, 1);
	cfg.failure_limit = 0;
	assert_null(cache_mc_create(&cfg, why, sizeof(why)));
	cfg = config(srv_list, 1);
	cfg.max_value = 0;
	assert_null(cache_mc_create(&cfg, why, sizeof(why)));
	cfg = config(srv_list, 1);
	cfg.breaker_open_ms = 0;
	assert_null(cache_mc_create(&cfg, why, sizeof(why)));
	/* IPv6 and names parse; nothing is asked of them at creation, no why is needed. */
	cfg = config(v6, 2);
	c = cache_mc_create(&cfg, NULL, 0);
	assert_non_null(c);
	cache_destroy(c);
}

/* A server down at start is no error: its keys are misses until it comes. */
static void test_server_down_at_start(void **state)
{
	char addr[32];
	const char *list[] = {addr};
	struct cache_mc_config cfg = config(list, 1);
	struct cache_times t = times(1000, 0);
	struct cache *c;
	int64_t t0;

	(void)state;
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", mc_free_port());
	c = make(&cfg);
	t0 = mc_mono_ms();
	assert_int_equal(get_state(c, "k", NULL), CACHE_MISS);
	assert_int_equal(cache_put(c, "k", "v", 1, &t), MDM_OK);
	assert_int_equal(cache_del(c, "k"), MDM_OK);
	assert_int_equal(cache_lock(c, "k", 1000), MDM_OK);
	cache_unlock(c, "k");
	assert_true(mc_mono_ms() - t0 < 2000);
	assert_true(stats(c).l2_errors >= 1);
	cache_destroy(c);
}

static void test_round_trip(void **state)
{
	struct cache *c = make_default();
	struct cache_times t = {test_now - 10, test_now + 300, test_now + 900};
	char key[CACHE_KEY_MAX + 2], big[4097];
	struct cache_entry e;

	(void)state;
	assert_int_equal(cache_put(c, "mac:0026B424FEB4", "{\"v\":1}", 7, &t), MDM_OK);
	assert_int_equal(cache_get(c, "mac:0026B424FEB4", &e), MDM_OK);
	assert_int_equal(e.state, CACHE_FRESH);
	assert_int_equal(e.len, 7);
	assert_memory_equal(e.val, "{\"v\":1}", 8);
	assert_int_equal(e.fetched_at, test_now - 10);
	assert_int_equal(e.fresh_until, test_now + 300);
	assert_int_equal(e.stale_until, test_now + 900);
	cache_entry_clear(&e);
	assert_int_equal(get_state(c, "mac:0026B424FEB5", NULL), CACHE_MISS);
	/* Empty, escaped, control characters, embedded NUL and UTF-8 come back byte for byte. */
	assert_int_equal(cache_put(c, "empty", NULL, 0, &t), MDM_OK);
	assert_int_equal(get_state(c, "empty", ""), CACHE_FRESH);
	assert_int_equal(cache_put(c, "odd", "a\"\\\n\t\x01\0z\xc3\xa9", 11, &t), MDM_OK);
	assert_int_equal(cache_get(c, "odd", &e), MDM_OK);
	assert_int_equal(e.len, 11);
	assert_memory_equal(e.val, "a\"\\\n\t\x01\0z\xc3\xa9", 12);
	cache_entry_clear(&e);
	/* Not UTF-8: refused (the payload travels as a JSON string). */
	assert_int_equal(cache_put(c, "bin", "\xff\xfe", 2, &t), MDM_ERR_INVALID);
	assert_int_equal(get_state(c, "bin", NULL), CACHE_MISS);
	/* max_value bounds the payload. */
	memset(big, 'x', sizeof(big));
	assert_int_equal(cache_put(c, "big", big, 4097, &t), MDM_ERR_TOOBIG);
	assert_int_equal(cache_put(c, "big", big, 4096, &t), MDM_OK);
	assert_int_equal(get_state(c, "big", NULL), CACHE_FRESH);
	/* Times out of order, a NULL value with a length, no times: refused. */
	t.fresh_until = t.stale_until + 1;
	assert_int_equal(cache_put(c, "k", "v", 1, &t), MDM_ERR_INVALID);
	t = times(10, 10);
	t.fetched_at = t.fresh_until + 1;
	assert_int_equal(cache_put(c, "k", "v", 1, &t), MDM_ERR_INVALID);
	t = times(10, 10);
	assert_int_equal(cache_put(c, "k", NULL, 1, &t), MDM_ERR_INVALID);
	assert_int_equal(cache_put(c, "k", "v", 1, NULL), MDM_ERR_INVALID);
	/* Already past stale_until: nothing stored, no error. */
	t = (struct cache_times){test_now - 100, test_now - 50, test_now};
	assert_int_equal(cache_put(c, "dead", "v", 1, &t), MDM_OK);
	assert_int_equal(get_state(c, "dead", NULL), CACHE_MISS);
	/* Keys: CACHE_KEY_MAX (245) bytes go, with room for the lock suffix; one more does not. */
	memset(key, 'k', sizeof(key));
	key[CACHE_KEY_MAX] = '\0';
	t = times(1000, 0);
	assert_int_equal(cache_put(c, key, "v", 1, &t), MDM_OK);
	assert_int_equal(get_state(c, key, "v"), CACHE_FRESH);
	assert_int_equal(cache_lock(c, key, 1000), MDM_OK);
	assert_int_equal(cache_lock(c, key, 1000), MDM_ERR_BUSY);
	cache_unlock(c, key);
	key[CACHE_KEY_MAX] = 'k';
	key[CACHE_KEY_MAX + 1] = '\0';
	assert_int_equal(cache_put(c, key, "v", 1, &t), MDM_ERR_INVALID);
	assert_int_equal(cache_lock(c, key, 1000), MDM_ERR_INVALID);
	assert_int_equal(cache_del(c, key), MDM_ERR_INVALID);
	assert_int_equal(cache_put(c, "a b", "v", 1, &t), MDM_ERR_INVALID);
	assert_int_equal(cache_lock(c, "k", 0), MDM_ERR_INVALID);
	/* del: present or not, MDM_OK. */
	assert_int_equal(cache_del(c, "mac:0026B424FEB4"), MDM_OK);
	assert_int_equal(get_state(c, "mac:0026B424FEB4", NULL), CACHE_MISS);
	assert_int_equal(cache_del(c, "mac:0026B424FEB4"), MDM_OK);
	assert_int_equal(stats(c).l2_errors, 0);
	assert_true(stats(c).l2_latency_us > 0);
	cache_destroy(c);
}

/* Fresh, then stale, then a miss, by the injected clock. */
static void test_states(void **state)
{
	struct cache *c = make_default();
	memcached_st *r = raw_open(srv.port);
	int64_t t0 = test_now;
	struct cache_stats s;

	(void)state;
	put_str(c, "k", "v", 1000, 500);
	test_now = t0 + 999;
	assert_int_equal(get_state(c, "k", "v"), CACHE_FRESH);
	test_now = t0 + 1000;
	assert_int_equal(get_state(c, "k", "v"), CACHE_STALE);
	test_now = t0 + 1499;
	assert_int_equal(get_state(c, "k", "v"), CACHE_STALE);
	test_now = t0 + 1500;
	assert_int_equal(get_state(c, "k", NULL), CACHE_MISS);
	s = stats(c);
	assert_int_equal(s.l2_hits, 1);
	assert_int_equal(s.l2_stale_hits, 2);
	assert_int_equal(s.l2_misses, 1);
	assert_int_equal(s.l2_bad_values, 0); /* expired is not bad */
	/* Memcached's own expiry: stale_until one second away, in real seconds. */
	test_now = wall_ms();
	put_str(c, "short", "v", 500, 500);
	assert_true(raw_has(r, "short"));
	mc_sleep_ms(2100);
	assert_false(raw_has(r, "short"));
	memcached_free(r);
	cache_destroy(c);
}

/*
 * A value read for the first time is judged by its own times, not by the verification memo:
 * test_states reads its value before it ages, so the memo answers every later read there. A
 * second instance, or this one after a restart, reads values it never verified, late.
 */
static void test_first_read_by_own_times(void **state)
{
	struct cache *c = make_default();
	memcached_st *r = raw_open(srv.port);
	int64_t t0 = test_now;
	struct cache_stats s;

	(void)state;
	put_str(c, "late", "v", 10000, 5000);
	put_str(c, "stale", "v", 10000, 5000);
	put_str(c, "fresh", "v", 10000, 5000);
	test_now = t0 + 15000;
	assert_int_equal(get_state(c, "late", NULL), CACHE_MISS);
	test_now = t0 + 10000;
	assert_int_equal(get_state(c, "stale", "v"), CACHE_STALE);
	test_now = t0 + 9999;
	assert_int_equal(get_state(c, "fresh", "v"), CACHE_FRESH);
	s = stats(c);
	assert_int_equal(s.l2_misses, 1);
	assert_int_equal(s.l2_stale_hits, 1);
	assert_int_equal(s.l2_hits, 1);
	assert_int_equal(s.l2_bad_values, 0); /* expired by our clock is not bad */
	/* memcached still holds it (its own expiry is 15 real seconds away): ours said miss */
	assert_true(raw_has(r, "late"));
	memcached_free(r);
	cache_destroy(c);
}

/* A value tagged with another HMAC key (another deployment, an attacker) is a bad miss. */
static void test_foreign_key(void **state)
{
	struct cache_mc_config cfg = config(srv_list, 1);
	struct cache *mine = make(&cfg), *theirs;
	memcached_st *r = raw_open(srv.port);

	(void)state;
	cfg.hmac_key = key_b;
	theirs = make(&cfg);
	put_str(theirs, "k", "forged", 60000, 0);
	assert_int_equal(get_state(theirs, "k", "forged"), CACHE_FRESH);
	assert_int_equal(get_state(mine, "k", NULL), CACHE_MISS);
	assert_int_equal(stats(mine).l2_bad_values, 1);
	assert_int_equal(stats(mine).l2_misses, 1);
	/* and deleted: the next get does not parse it again */
	assert_false(raw_has(r, "k"));
	memcached_free(r);
	cache_destroy(mine);
	cache_destroy(theirs);
}

/* Whatever lies under a key that is not exactly a value of ours reads as a miss, and goes. */
static void test_garbage(void **state)
{
	struct cache *c = make_default();
	memcached_st *r = raw_open(srv.port);
	long long at = test_now, fu = test_now + 60000, su = test_now + 120000;
	char *good, *copy, *bad[16];
	size_t nbad = 0;

	(void)state;
	/* A forged value with everything right is a hit: the format is the documented one. */
	good = forge(key_a, "k", "1", at, fu, su, "payload");
	raw_set(r, "k", good);
	assert_int_equal(get_state(c, "k", "payload"), CACHE_FRESH);
	/* Every way of being wrong, each with a valid tag where a tag can be made. */
	bad[nbad++] = strdup("not json");
	bad[nbad++] = strdup("");
	bad[nbad++] = strdup("[1,2]");
	bad[nbad++] = forge(key_a, "k", "2", at, fu, su, "payload");	 /* version */
	bad[nbad++] = forge(key_a, "k", "\"1\"", at, fu, su, "payload"); /* version type */
	bad[nbad++] = forge(key_a, "k", "1", at, su, fu, "payload");	 /* fresh after stale */
	bad[nbad++] = forge(key_a, "k", "1", fu, at, su, "payload");	 /* fetched after fresh */
	bad[nbad++] = forge(key_a, "k", "1", -5, fu, su, "payload");	 /* negative time */
	bad[nbad++] = forge(key_a, "other", "1", at, fu, su, "payload"); /* another key's */
	bad[nbad++] = forge(key_b, "k", "1", at, fu, su, "payload");	 /* another HMAC key */
	copy = strdup(good);
	copy[strlen(copy) - 3] ^= 1; /* one tag digit off */
	bad[nbad++] = copy;
	copy = malloc(strlen(good) + 16);
	assert_non_null(copy);
	snprintf(copy, strlen(good) + 16, "%.*s,\"x\":1}", (int)strlen(good) - 1, good);
	bad[nbad++] = copy; /* a field too many */
	copy = malloc(strlen(good) + 16);
	assert_non_null(copy);
	snprintf(copy, strlen(good) + 16, "%s x", good);
	bad[nbad++] = copy; /* trailing bytes */
	copy = strdup(good);
	for (char *p = strstr(copy, "\"t\":\"") + 5; *p != '"'; p++)
		*p = (char)(*p >= 'a' && *p <= 'f' ? *p - 32 : *p);
	bad[nbad++] = copy; /* upper-case tag */
	copy = strdup(good);
	memcpy(strstr(copy, "\"d\""), "\"e\"", 3);
	bad[nbad++] = copy; /* no payload */
	for (size_t i = 0; i < nbad; i++) {
		struct cache_stats before = stats(c);

		raw_set(r, "k", bad[i]);
		assert_int_equal(get_state(c, "k", NULL), CACHE_MISS);
		assert_int_equal(stats(c).l2_bad_values, before.l2_bad_values + 1);
		assert_false(raw_has(r, "k"));
		free(bad[i]);
	}
	assert_int_equal(stats(c).l2_errors, 0);
	free(good);
	memcached_free(r);
	cache_destroy(c);
}

/* Hits, misses, a duplicate and a bad key: one request to memcached. */
static void test_get_many(void **state)
{
	struct cache *c = make_default();
	const char *keys[] = {"a", "missing", "b", "bad key", "a", "c", "", "missing2"};
	struct cache_entry out[8];
	struct cache_stats before, after;

	(void)state;
	put_str(c, "a", "A", 60000, 0);
	put_str(c, "b", "BB", 0, 60000);
	put_str(c, "c", "CCC", 60000, 0);
	before = stats(c);
	assert_int_equal(cache_get_many(c, keys, 8, out), MDM_OK);
	after = stats(c);
	assert_int_equal(after.l2_ops - before.l2_ops, 1);
	assert_int_equal(out[0].state, CACHE_FRESH);
	assert_string_equal(out[0].val, "A");
	assert_int_equal(out[1].state, CACHE_MISS);
	assert_null(out[1].val);
	assert_int_equal(out[2].state, CACHE_STALE);
	assert_string_equal(out[2].val, "BB");
	assert_int_equal(out[3].state, CACHE_MISS);
	assert_int_equal(out[4].state, CACHE_FRESH);
	assert_string_equal(out[4].val, "A");
	assert_ptr_not_equal(out[4].val, out[0].val);
	assert_int_equal(out[5].state, CACHE_FRESH);
	assert_int_equal(out[5].len, 3);
	assert_int_equal(out[6].state, CACHE_MISS);
	assert_int_equal(out[7].state, CACHE_MISS);
	assert_int_equal(after.l2_hits - before.l2_hits, 3);
	assert_int_equal(after.l2_stale_hits - before.l2_stale_hits, 1);
	assert_int_equal(after.l2_misses - before.l2_misses, 2);
	for (int i = 0; i < 8; i++)
		cache_entry_clear(&out[i]);
	/* Nothing to ask: no request. */
	assert_int_equal(cache_get_many(c, keys, 0, out), MDM_OK);
	assert_int_equal(cache_get_many(c, &keys[3], 1, out), MDM_OK);
	assert_int_equal(out[0].state, CACHE_MISS);
	assert_int_equal(stats(c).l2_ops, after.l2_ops);
	assert_int_equal(cache_get_many(c, NULL, 1, out), MDM_ERR_INVALID);
	cache_destroy(c);
}

static void test_lock(void **state)
{
	struct cache *c = make_default(), *other = make_default();
	memcached_st *r = raw_open(srv.port);
	struct cache_stats s;

	(void)state;
	assert_int_equal(cache_lock(c, "k", 1000), MDM_OK);
	assert_int_equal(cache_lock(c, "k", 1000), MDM_ERR_BUSY);
	/* another instance: the lock is memcached's, not the process's */
	assert_int_equal(cache_lock(other, "k", 1000), MDM_ERR_BUSY);
	assert_int_equal(cache_lock(other, "k2", 1000), MDM_OK);
	/* a lock is not an entry */
	assert_int_equal(get_state(c, "k", NULL), CACHE_MISS);
	assert_true(raw_has(r, "k:lock"));
	cache_unlock(c, "k");
	assert_false(raw_has(r, "k:lock"));
	assert_int_equal(cache_lock(other, "k", 1000), MDM_OK);
	s = stats(c);
	assert_int_equal(s.lock_busy, 1);
	assert_int_equal(stats(other).lock_busy, 1);
	/* Unreleased, it lapses after its TTL (whole seconds at memcached). */
	mc_sleep_ms(2100);
	assert_int_equal(cache_lock(c, "k", 1000), MDM_OK);
	assert_int_equal(cache_lock(c, "k2", 1000), MDM_OK);
	cache_unlock(c, "k");
	cache_unlock(c, "k2");
	cache_unlock(c, "k2"); /* twice: harmless */
	cache_unlock(c, "never");
	cache_unlock(c, "bad key");
	assert_int_equal(stats(c).l2_errors, 0);
	memcached_free(r);
	cache_destroy(c);
	cache_destroy(other);
}

/* Memcached killed: misses, quickly, never errors; back empty on the same port: misses, then hits.
 */
static void test_restart(void **state)
{
	struct mcserver own = {0};
	const char *list[1];
	struct cache_mc_config cfg;
	struct cache *c;
	struct cache_times t;
	struct cache_stats s;
	bool hit = false;

	(void)state;
	assert_int_equal(mcserver_start(&own, 0), 0);
	list[0] = own.addr;
	cfg = config(list, 1);
	cfg.breaker_open_ms = 300;
	c = make(&cfg);
	put_str(c, "k", "v", 60000, 0);
	assert_int_equal(get_state(c, "k", "v"), CACHE_FRESH);
	mcserver_kill(&own);
	for (int i = 0; i < 20; i++) {
		int64_t t0 = mc_mono_ms();

		assert_int_equal(get_state(c, "k", NULL), CACHE_MISS);
		t = times(60000, 0);
		assert_int_equal(cache_put(c, "k2", "v", 1, &t), MDM_OK);
		assert_int_equal(cache_lock(c, "k3", 1000), MDM_OK);
		cache_unlock(c, "k3");
		assert_true(mc_mono_ms() - t0 < 1000);
	}
	/* One server, and it failing: every server is failing. */
	assert_true(stats(c).breaker_opens >= 1);
	assert_int_equal(mcserver_start(&own, own.port), 0);
	/* Back once the breaker lets a probe through and libmemcached retries the server. */
	for (int i = 0; i < 100 && !hit; i++) {
		assert_int_equal(get_state(c, "k", NULL), CACHE_MISS); /* restarted empty */
		put_str(c, "k2", "again", 60000, 0);
		hit = get_state(c, "k2", "again") == CACHE_FRESH;
		if (!hit)
			mc_sleep_ms(100);
	}
	assert_true(hit);
	s = stats(c);
	assert_int_equal(s.breaker_open, 0);
	/* Back to normal: a miss is a miss, not an error. */
	for (int i = 0; i < 10; i++)
		assert_int_equal(get_state(c, "never", NULL), CACHE_MISS);
	assert_int_equal(stats(c).l2_errors, s.l2_errors);
	assert_int_equal(stats(c).l2_ops, s.l2_ops + 10);
	cache_destroy(c);
	mcserver_stop(&own);
}

/* A server that takes connections and never answers: timeouts, then the breaker. */
static void test_hung_server(void **state)
{
	struct hung h;
	const char *list[1];
	struct cache_mc_config cfg;
	struct cache_stats s;
	struct cache_times t;
	struct cache *c;
	int i;

	(void)state;
	assert_int_equal(hung_start(&h), 0);
	list[0] = h.addr;
	cfg = config(list, 1);
	cfg.connect_timeout_ms = 50;
	cfg.io_timeout_ms = 50;
	cfg.breaker_open_ms = 400;
	c = make(&cfg);
	t = times(60000, 0);
	/* Every kind of operation times out alike, and none is the caller's error. */
	for (i = 0; i < 30 && stats(c).breaker_open == 0; i++) {
		int64_t t0 = mc_mono_ms();

		switch (i % 4) {
		case 0:
			assert_int_equal(get_state(c, "k", NULL), CACHE_MISS);
			break;
		case 1:
			assert_int_equal(cache_put(c, "k", "v", 1, &t), MDM_OK);
			break;
		case 2:
			assert_int_equal(cache_lock(c, "k", 1000), MDM_OK);
			break;
		default:
			assert_int_equal(cache_del(c, "k"), MDM_OK);
		}
		assert_true(mc_mono_ms() - t0 < 500);
	}
	assert_int_equal(i, 8); /* BREAKER_FAILS */
	assert_true(atomic_load(&h.accepted) >= 1);
	s = stats(c);
	assert_int_equal(s.breaker_open, 1);
	assert_int_equal(s.breaker_opens, 1);
	assert_true(s.l2_errors >= 8);
	/* Open: nothing goes to memcached, everything answers at once. */
	for (i = 0; i < 20; i++) {
		int64_t t0 = mc_mono_ms();

		assert_int_equal(get_state(c, "k", NULL), CACHE_MISS);
		assert_int_equal(cache_put(c, "k", "v", 1, &t), MDM_OK);
		assert_int_equal(cache_del(c, "k"), MDM_OK);
		assert_int_equal(cache_lock(c, "k", 1000), MDM_OK);
		cache_unlock(c, "k");
		assert_true(mc_mono_ms() - t0 < 50);
	}
	assert_int_equal(stats(c).l2_ops, s.l2_ops);
	assert_true(stats(c).l2_skipped >= s.l2_skipped + 100);
	/* After breaker_open_ms one probe goes; it fails, and the breaker stays open. */
	mc_sleep_ms(450);
	assert_int_equal(get_state(c, "k", NULL), CACHE_MISS);
	assert_int_equal(stats(c).l2_ops, s.l2_ops + 1);
	assert_int_equal(get_state(c, "k", NULL), CACHE_MISS);
	assert_int_equal(stats(c).l2_ops, s.l2_ops + 1);
	s = stats(c);
	assert_int_equal(s.breaker_open, 1);
	assert_int_equal(s.breaker_opens, 1);
	cache_destroy(c);
	hung_stop(&h);
}

/* Two servers, one killed: its keys are misses, the other's still hit, the breaker stays shut. */
static void test_one_of_two_dead(void **state)
{
	struct mcserver a = {0}, b = {0};
	const char *list[2];
	struct cache_mc_config cfg;
	struct cache_stats s;
	struct cache *c;
	char key[32];
	int hits = 0;

	(void)state;
	assert_int_equal(mcserver_start(&a, 0), 0);
	assert_int_equal(mcserver_start(&b, 0), 0);
	list[0] = a.addr;
	list[1] = b.addr;
	cfg = config(list, 2);
	c = make(&cfg);
	for (int i = 0; i < 200; i++) {
		snprintf(key, sizeof(key), "key-%d", i);
		put_str(c, key, "v", 600000, 0);
	}
	for (int i = 0; i < 200; i++) {
		snprintf(key, sizeof(key), "key-%d", i);
		assert_int_equal(get_state(c, key, "v"), CACHE_FRESH);
	}
	mcserver_kill(&b);
	for (int i = 0; i < 200; i++) {
		int64_t t0 = mc_mono_ms();

		snprintf(key, sizeof(key), "key-%d", i);
		hits += get_state(c, key, "v") == CACHE_FRESH;
		assert_true(mc_mono_ms() - t0 < 1000);
	}
	/* Ketama gives each server about half; a's half still answers. */
	assert_true(hits >= 60);
	assert_true(hits < 200);
	/* The dead one's keys land on a once it is ejected: writes there work again. */
	for (int i = 0; i < 200; i++) {
		snprintf(key, sizeof(key), "key-%d", i);
		put_str(c, key, "w", 600000, 0);
		get_state(c, key, NULL);
	}
	s = stats(c);
	assert_int_equal(s.breaker_opens, 0);
	assert_int_equal(s.breaker_open, 0);
	assert_true(s.l2_hits >= 200 + 60);
	cache_destroy(c);
	mcserver_stop(&a);
}

/* --- single flight across processes ---------------------------------------------------------- */

#define RACE_THREADS 50

struct race {
	struct cache *c;
	const char *key;
	pthread_barrier_t start;
	int winners;
	pthread_mutex_t mu;
};

static void *race_thread(void *p)
{
	struct race *r = p;
	enum mdm_err err;

	pthread_barrier_wait(&r->start);
	err = cache_lock(r->c, r->key, 30000);
	pthread_mutex_lock(&r->mu);
	r->winners += err == MDM_OK;
	r->winners += (err != MDM_OK && err != MDM_ERR_BUSY) * 1000; /* shows up as wrong */
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

/* One process's side: its own memcached tier and l1, 50 threads on one key. Its winners. */
static int race_child(const char *addr, const char *key)
{
	const char *list[] = {addr};
	struct cache_mc_config cfg = config(list, 1);
	struct cache_mem_config l1cfg = {.max_entries = 100, .shards = 4, .max_value = 4096};
	struct race r = {.key = key};
	pthread_t th[RACE_THREADS];

	cfg.now = NULL;
	cfg.pool_size = 8;
	r.c = cache_tiered_create(cache_mem_create(&l1cfg), cache_mc_create(&cfg, NULL, 0));
	if (!r.c)
		return -1;
	pthread_mutex_init(&r.mu, NULL);
	pthread_barrier_init(&r.start, NULL, RACE_THREADS);
	for (int i = 0; i < RACE_THREADS; i++)
		if (pthread_create(&th[i], NULL, race_thread, &r) != 0)
			return -1;
	for (int i = 0; i < RACE_THREADS; i++)
		pthread_join(th[i], NULL);
	/* The winner keeps the lock: the race is over only when both processes are done. */
	pthread_barrier_destroy(&r.start);
	pthread_mutex_destroy(&r.mu);
	cache_destroy(r.c);
	return r.winners;
}

static void test_single_flight_processes(void **state)
{
	char key[64];
	int fds[2], total = 0, got;
	pid_t pids[2];

	(void)state;
	snprintf(key, sizeof(key), "cold:%lld", (long long)test_now);
	assert_int_equal(pipe(fds), 0);
	for (int i = 0; i < 2; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			int w = race_child(srv.addr, key);

			/* _exit: the parent's at-exit work (and leak check) is not the child's. */
			_exit(write(fds[1], &w, sizeof(w)) == sizeof(w) ? 0 : 1);
		}
	}
	close(fds[1]);
	for (int i = 0; i < 2; i++) {
		int st;

		assert_int_equal(read(fds[0], &got, sizeof(got)), sizeof(got));
		assert_true(got >= 0);
		total += got;
		assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	close(fds[0]);
	assert_int_equal(total, 1);
}

/* --- threads over a small pool --------------------------------------------------------------- */

#define MIX_THREADS 16
#define MIX_OPS 300

struct mix {
	struct cache *c;
	unsigned seed;
	int errors;
};

static void *mix_thread(void *p)
{
	struct mix *a = p;
	const char *keys[2];
	struct cache_entry e[2];
	char k1[16], k2[16];

	for (int i = 0; i < MIX_OPS; i++) {
		unsigned r = a->seed = a->seed * 1103515245u + 12345u;
		struct cache_times t = {test_now, test_now + 60000, test_now + 60000};
		enum mdm_err err;

		snprintf(k1, sizeof(k1), "m%u", (r >> 8) % 8);
		snprintf(k2, sizeof(k2), "m%u", (r >> 12) % 8);
		keys[0] = k1;
		keys[1] = k2;
		switch ((r >> 16) % 3) {
		case 0:
			a->errors += cache_put(a->c, k1, "value", 5, &t) != MDM_OK;
			break;
		case 1:
			a->errors += cache_get_many(a->c, keys, 2, e) != MDM_OK;
			for (int j = 0; j < 2; j++) {
				a->errors += e[j].state == CACHE_STALE;
				a->errors += e[j].state == CACHE_FRESH && strcmp(e[j].val, "value");
				cache_entry_clear(&e[j]);
			}
			break;
		default:
			err = cache_lock(a->c, k1, 5000);
			a->errors += err != MDM_OK && err != MDM_ERR_BUSY;
			if (err == MDM_OK)
				cache_unlock(a->c, k1);
		}
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct cache_mc_config cfg = config(srv_list, 1);
	struct mix args[MIX_THREADS];
	pthread_t th[MIX_THREADS];
	struct cache *c;

	(void)state;
	cfg.pool_size = 3; /* fewer handles than threads: the gate makes them wait their turn */
	c = make(&cfg);
	for (int i = 0; i < MIX_THREADS; i++) {
		args[i] = (struct mix){.c = c, .seed = 7u + (unsigned)i * 7919u};
		assert_int_equal(pthread_create(&th[i], NULL, mix_thread, &args[i]), 0);
	}
	for (int i = 0; i < MIX_THREADS; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(args[i].errors, 0);
	}
	assert_int_equal(stats(c).breaker_opens, 0);
	cache_destroy(c);
}

/* --- add, gets, cas --------------------------------------------------------------------------- */

static void test_coord(void **state)
{
	struct cache_mc_config cfg = config(srv_list, 1);
	struct cache *a = make(&cfg), *b = make(&cfg);
	memcached_st *r = raw_open(srv.port);
	struct cache_entry e;
	uint64_t va = 0, vb = 0;
	char *raw;

	(void)state;
	coord_check(a);
	/* Stored tagged, like put's values: the payload is not in memcached as such. */
	raw = raw_get(r, "coord");
	assert_non_null(raw);
	assert_non_null(strstr(raw, "\"t\":\""));
	free(raw);
	/* Two instances: both read one version, only the first cas wins. */
	assert_int_equal(cache_get_cas(a, "coord", &e, &va), MDM_OK);
	cache_entry_clear(&e);
	assert_int_equal(cache_get_cas(b, "coord", &e, &vb), MDM_OK);
	cache_entry_clear(&e);
	assert_true(va == vb);
	assert_int_equal(cache_cas(b, "coord", "b", 1, 60000, vb), MDM_OK);
	assert_int_equal(cache_cas(a, "coord", "a", 1, 60000, va), MDM_ERR_EXISTS);
	assert_int_equal(get_state(a, "coord", "b"), CACHE_FRESH);
	assert_int_equal(cache_add(a, "k", "binary\xff", 7, 1000), MDM_ERR_INVALID);
	assert_int_equal(cache_add(a, "k", NULL, 5000, 1000), MDM_ERR_INVALID);
	memcached_free(r);
	cache_destroy(a);
	cache_destroy(b);
}

/* A value tagged with another key is absent to gets and no obstacle to add. */
static void test_coord_forged(void **state)
{
	struct cache_mc_config cfg = config(srv_list, 1);
	struct cache *mine = make(&cfg), *theirs;
	memcached_st *r = raw_open(srv.port);
	struct cache_entry e;
	uint64_t v = 0;
	char *raw;

	(void)state;
	cfg.hmac_key = key_b;
	theirs = make(&cfg);
	assert_int_equal(cache_add(theirs, "lease", "forged", 6, 60000), MDM_OK);
	assert_int_equal(cache_get_cas(mine, "lease", &e, &v), MDM_ERR_NOTFOUND);
	assert_null(e.val);
	assert_true(stats(mine).l2_bad_values >= 1);
	assert_int_equal(cache_add(mine, "lease", "genuine", 7, 60000), MDM_OK);
	assert_int_equal(cache_get_cas(mine, "lease", &e, &v), MDM_OK);
	assert_string_equal(e.val, "genuine");
	cache_entry_clear(&e);
	/* And plain garbage under the key does not block it either. */
	raw_set(r, "lease2", "not a value of ours");
	assert_int_equal(cache_add(mine, "lease2", "genuine", 7, 60000), MDM_OK);
	raw = raw_get(r, "lease2");
	assert_non_null(strstr(raw, "genuine"));
	free(raw);
	/* A forged value under the key makes a cas with an old version fail, not pass. */
	assert_int_equal(cache_get_cas(mine, "lease2", &e, &v), MDM_OK);
	cache_entry_clear(&e);
	raw_set(r, "lease2", "forged again");
	assert_int_equal(cache_cas(mine, "lease2", "x", 1, 60000, v), MDM_ERR_EXISTS);
	memcached_free(r);
	cache_destroy(mine);
	cache_destroy(theirs);
}

/* memcached's own expiry, in real seconds; and trouble reported, not taken for an answer. */
static void test_coord_ttl_and_down(void **state)
{
	char addr[32];
	const char *list[] = {addr};
	struct cache_mc_config cfg = config(srv_list, 1), dcfg = config(list, 1);
	struct cache *c = make(&cfg), *down;
	struct cache_entry e;
	uint64_t v = 0;

	(void)state;
	cfg.now = NULL;
	cache_destroy(c);
	c = make(&cfg);
	assert_int_equal(cache_add(c, "short", "x", 1, 1000), MDM_OK);
	assert_int_equal(cache_add(c, "short", "x", 1, 1000), MDM_ERR_EXISTS);
	mc_sleep_ms(2100);
	assert_int_equal(cache_get_cas(c, "short", &e, &v), MDM_ERR_NOTFOUND);
	assert_int_equal(cache_add(c, "short", "y", 1, 1000), MDM_OK);
	cache_destroy(c);

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", mc_free_port());
	down = make(&dcfg);
	assert_int_equal(cache_add(down, "k", "v", 1, 1000), MDM_ERR_UNAVAILABLE);
	assert_int_equal(cache_get_cas(down, "k", &e, &v), MDM_ERR_UNAVAILABLE);
	assert_null(e.val);
	assert_int_equal(cache_cas(down, "k", "v", 1, 1000, CACHE_CAS_ANY), MDM_ERR_UNAVAILABLE);
	assert_int_equal(cache_cas(down, "k", "v", 1, 1000, 7), MDM_ERR_UNAVAILABLE);
	cache_destroy(down);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_config, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_server_down_at_start, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_states, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_first_read_by_own_times, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_foreign_key, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_get_many, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_restart, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hung_server, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_one_of_two_dead, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_single_flight_processes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_coord, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_coord_forged, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_coord_ttl_and_down, setup, teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
