#include "unit.h"

#include <jansson.h>
#include <libmemcached-1.0/memcached.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../cache/cache.h"
#include "../../core/buf.h"
#include "../../gateway/recon/publish.h"
#include "cachetest.h"
#include "mcserver.h"

static const unsigned char hmac_key[] = "0123456789abcdef0123456789abcdef";
static struct mcserver srv;
static const char *srv_list[1];

#define BLOB (3u * 1024 * 1024)
#define MAXB ((size_t)64 * 1024 * 1024)
#define TTL 600000

/* The gateway's own limit for memcached values (main.c): ENTRY_MAX_LEN + 512. */
static struct cache *make_mc(void)
{
	struct cache_mc_config cfg = {
	    .servers = srv_list,
	    .nservers = 1,
	    .hmac_key = hmac_key,
	    .hmac_key_len = 32,
	    .pool_size = 4,
	    .connect_timeout_ms = 200,
	    .io_timeout_ms = 2000,
	    .failure_limit = 2,
	    .retry_timeout_ms = 1000,
	    .breaker_open_ms = 500,
	    .max_value = 1000 * 1000 + 512,
	};
	char why[256] = "";
	struct cache *c = cache_mc_create(&cfg, why, sizeof(why));

	if (!c)
		fprintf(stderr, "cache_mc_create: %s\n", why);
	assert_non_null(c);
	return c;
}

/* Bytes of generation gen: every byte value, in an order that depends on gen. */
static unsigned char *blob(uint64_t gen, size_t len)
{
	unsigned char *b = malloc(len);
	uint64_t x = gen * 0x9e3779b97f4a7c15ULL + 1;

	assert_non_null(b);
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		b[i] = (unsigned char)x;
	}
	return b;
}

/* Reads the latest; when it is new, checks it is exactly generation *gen's blob of len. */
static enum mdm_err read_latest(struct cache *c, uint64_t have, uint64_t *gen, size_t len)
{
	struct buf out;
	enum mdm_err err;

	buf_init(&out, MAXB);
	err = publish_get_latest(c, "t", have, MAXB, &out, gen);
	if (err == MDM_OK) {
		unsigned char *want = blob(*gen, len);

		assert_int_equal(out.len, len);
		assert_memory_equal(out.mem, want, len);
		free(want);
	} else {
		assert_int_equal(out.len, 0);
	}
	buf_free(&out);
	return err;
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
	return 0;
}

/* 3 MB of every byte value through memcached's 1 MB items, and back. */
static void test_round_trip(void **state)
{
	struct cache *c = make_mc();
	unsigned char *b = blob(1, BLOB);
	uint64_t gen = 0;

	(void)state;
	assert_int_equal(read_latest(c, 0, &gen, BLOB), MDM_ERR_NOTFOUND);
	assert_int_equal(publish_put(c, "t", 1, b, BLOB, TTL, MAXB), MDM_OK);
	assert_int_equal(read_latest(c, 0, &gen, BLOB), MDM_OK);
	assert_int_equal(gen, 1);
	/* Nothing newer than what the reader has. */
	assert_int_equal(read_latest(c, 1, &gen, BLOB), MDM_ERR_NOTFOUND);
	/* 5 chunks of at most PUBLISH_CHUNK: the sixth does not exist. */
	assert_int_equal(get_state(c, "t:snap:1:4", NULL), CACHE_FRESH);
	assert_int_equal(get_state(c, "t:snap:1:5", NULL), CACHE_MISS);
	/* An empty generation is one too, and a smaller one replaces a bigger. */
	assert_int_equal(publish_put(c, "t", 2, b, 0, TTL, MAXB), MDM_OK);
	assert_int_equal(read_latest(c, 1, &gen, 0), MDM_OK);
	assert_int_equal(gen, 2);
	assert_int_equal(publish_put(c, "t", 3, b, BLOB, TTL, BLOB - 1), MDM_ERR_TOOBIG);
	assert_int_equal(publish_put(c, "t", 0, b, 1, TTL, MAXB), MDM_ERR_INVALID);
	free(b);
	cache_destroy(c);
}

/*
 * A cache that runs a reader before every write the publisher makes, and records the order of
 * the keys written: at every step the reader sees the previous generation whole, or the new
 * one whole, never a part.
 */
struct spy {
	struct cache base;
	struct cache *inner;
	uint64_t prev; /* the generation readers had before this publish */
	uint64_t gen;  /* the one being published */
	size_t prev_len, len;
	int writes, seen_new;
	int manifest_at, latest_at, last_chunk_at;
};

static enum mdm_err spy_get_many(struct cache *c, const char *const *k, size_t n,
				 struct cache_entry *o)
{
	struct spy *s = c->priv;

	return cache_get_many(s->inner, k, n, o);
}

static enum mdm_err spy_put(struct cache *c, const char *k, const void *v, size_t l,
			    const struct cache_times *t)
{
	return cache_put(((struct spy *)c->priv)->inner, k, v, l, t);
}

static enum mdm_err spy_del(struct cache *c, const char *k)
{
	return cache_del(((struct spy *)c->priv)->inner, k);
}

static enum mdm_err spy_lock(struct cache *c, const char *k, int64_t ttl)
{
	return cache_lock(((struct spy *)c->priv)->inner, k, ttl);
}

static void spy_unlock(struct cache *c, const char *k)
{
	cache_unlock(((struct spy *)c->priv)->inner, k);
}

static void spy_stats(struct cache *c, struct cache_stats *out)
{
	(void)c;
	(void)out;
}

static void spy_destroy(struct cache *c)
{
	(void)c;
}

static enum mdm_err spy_add(struct cache *c, const char *k, const void *v, size_t l, int64_t ttl)
{
	return cache_add(((struct spy *)c->priv)->inner, k, v, l, ttl);
}

static enum mdm_err spy_gets(struct cache *c, const char *k, struct cache_entry *o, uint64_t *cas)
{
	return cache_get_cas(((struct spy *)c->priv)->inner, k, o, cas);
}

static void spy_read(struct spy *s)
{
	uint64_t gen = 0;
	enum mdm_err err;

	/* From what readers had before: nothing new, or the new generation whole. */
	err = read_latest(s->inner, s->prev, &gen, s->len);
	if (err == MDM_OK) {
		assert_int_equal(gen, s->gen);
		s->seen_new++;
	} else {
		assert_int_equal(err, MDM_ERR_NOTFOUND);
	}
	/* And one that has nothing yet gets the previous whole until the pointer moves. */
	err = read_latest(s->inner, 0, &gen, s->seen_new ? s->len : s->prev_len);
	assert_int_equal(err, MDM_OK);
	assert_int_equal(gen, s->seen_new ? s->gen : s->prev);
}

static enum mdm_err spy_cas(struct cache *c, const char *k, const void *v, size_t l, int64_t ttl,
			    uint64_t cas)
{
	struct spy *s = c->priv;
	enum mdm_err err;
	char chunk_prefix[64];

	spy_read(s);
	err = cache_cas(s->inner, k, v, l, ttl, cas);
	s->writes++;
	snprintf(chunk_prefix, sizeof(chunk_prefix), "t:snap:%llu:", (unsigned long long)s->gen);
	if (strcmp(k, "t:snap:latest") == 0)
		s->latest_at = s->writes;
	else if (strstr(k, ":manifest"))
		s->manifest_at = s->writes;
	else if (strncmp(k, chunk_prefix, strlen(chunk_prefix)) == 0)
		s->last_chunk_at = s->writes;
	spy_read(s);
	return err;
}

static const struct cache_ops spy_ops = {
    .get_many = spy_get_many,
    .put = spy_put,
    .del = spy_del,
    .lock = spy_lock,
    .unlock = spy_unlock,
    .stats = spy_stats,
    .destroy = spy_destroy,
    .add = spy_add,
    .get_cas = spy_gets,
    .cas = spy_cas,
};

static void test_manifest_last(void **state)
{
	struct cache *c = make_mc();
	struct spy s = {.base = {&spy_ops, &s}, .inner = c, .prev = 1, .gen = 2};
	unsigned char *b1 = blob(1, BLOB), *b2 = blob(2, BLOB - 5);

	(void)state;
	s.prev_len = BLOB;
	s.len = BLOB - 5;
	assert_int_equal(publish_put(c, "t", 1, b1, BLOB, TTL, MAXB), MDM_OK);
	assert_int_equal(publish_put(&s.base, "t", 2, b2, BLOB - 5, TTL, MAXB), MDM_OK);
	assert_int_equal(s.writes, 5 + 2);
	assert_int_equal(s.last_chunk_at, 5);
	assert_int_equal(s.manifest_at, 6);
	assert_int_equal(s.latest_at, 7);
	/* Only the pointer's write made the new generation visible. */
	assert_int_equal(s.seen_new, 1);
	free(b1);
	free(b2);
	cache_destroy(c);
}

/* A chunk gone (evicted, lapsed): the reader keeps what it has, told why. */
static void test_missing_chunk(void **state)
{
	struct cache *c = make_mc();
	unsigned char *b = blob(1, BLOB), *b2 = blob(2, BLOB);
	uint64_t gen = 0;

	(void)state;
	assert_int_equal(publish_put(c, "t", 1, b, BLOB, TTL, MAXB), MDM_OK);
	assert_int_equal(read_latest(c, 0, &gen, BLOB), MDM_OK);
	assert_int_equal(publish_put(c, "t", 2, b2, BLOB, TTL, MAXB), MDM_OK);
	assert_int_equal(cache_del(c, "t:snap:2:3"), MDM_OK);
	assert_int_equal(read_latest(c, 1, &gen, BLOB), MDM_ERR_PARSE);
	assert_int_equal(gen, 1);
	/* The manifest gone: the same. */
	assert_int_equal(publish_put(c, "t", 3, b, BLOB, TTL, MAXB), MDM_OK);
	assert_int_equal(cache_del(c, "t:snap:3:manifest"), MDM_OK);
	assert_int_equal(read_latest(c, 1, &gen, BLOB), MDM_ERR_PARSE);
	assert_int_equal(gen, 1);
	/* Published again whole: read (read_latest checks the bytes are generation 4's). */
	free(b);
	b = blob(4, BLOB);
	assert_int_equal(publish_put(c, "t", 4, b, BLOB, TTL, MAXB), MDM_OK);
	gen = 0;
	assert_int_equal(read_latest(c, 1, &gen, BLOB), MDM_OK);
	assert_int_equal(gen, 4);
	free(b);
	free(b2);
	cache_destroy(c);
}

/* A chunk replaced by another of the same size, a length lie, a too-big claim: refused. */
static void test_corrupt(void **state)
{
	struct cache *c = make_mc();
	unsigned char *b = blob(1, BLOB), *other = blob(9, PUBLISH_CHUNK);
	const char *big = "{\"gen\":1,\"nchunks\":728,\"len\":536870912,\"sha256\":"
			  "\"0000000000000000000000000000000000000000000000000000000000000000\"}";
	char *b64 = malloc(PUBLISH_CHUNK / 3 * 4 + 1);
	struct buf out;
	uint64_t gen = 0;
	json_t *m;
	char *ms;
	int n;

	(void)state;
	assert_non_null(b64);
	buf_init(&out, MAXB);
	assert_int_equal(publish_put(c, "t", 1, b, BLOB, TTL, MAXB), MDM_OK);
	n = EVP_EncodeBlock((unsigned char *)b64, other, (int)PUBLISH_CHUNK);
	assert_int_equal(cache_cas(c, "t:snap:1:2", b64, (size_t)n, TTL, CACHE_CAS_ANY), MDM_OK);
	assert_int_equal(publish_get_latest(c, "t", 0, MAXB, &out, &gen), MDM_ERR_PARSE);
	assert_int_equal(out.len, 0);
	/* Put right again, then a manifest whose length does not match the chunks. */
	assert_int_equal(publish_put(c, "t", 1, b, BLOB, TTL, MAXB), MDM_OK);
	assert_int_equal(publish_get_latest(c, "t", 0, MAXB, &out, &gen), MDM_OK);
	m = json_pack("{s:i,s:i,s:i,s:s}", "gen", 1, "nchunks", 5, "len", (int)BLOB - 1, "sha256",
		      "0000000000000000000000000000000000000000000000000000000000000000");
	ms = json_dumps(m, JSON_COMPACT);
	json_decref(m);
	assert_int_equal(cache_cas(c, "t:snap:1:manifest", ms, strlen(ms), TTL, CACHE_CAS_ANY),
			 MDM_OK);
	free(ms);
	assert_int_equal(publish_get_latest(c, "t", 0, MAXB, &out, &gen), MDM_ERR_PARSE);
	/* A manifest claiming 512 MiB: refused before a chunk is read. */
	assert_int_equal(cache_cas(c, "t:snap:1:manifest", big, strlen(big), TTL, CACHE_CAS_ANY),
			 MDM_OK);
	assert_int_equal(publish_get_latest(c, "t", 0, MAXB, &out, &gen), MDM_ERR_TOOBIG);
	/* Not our HMAC: absent. */
	{
		memcached_st *r = memcached_create(NULL);

		memcached_server_add(r, "127.0.0.1", (in_port_t)srv.port);
		assert_int_equal(memcached_set(r, "t:snap:latest", 13, "{\"gen\":1}", 9, 60, 0),
				 MEMCACHED_SUCCESS);
		memcached_free(r);
	}
	assert_int_equal(publish_get_latest(c, "t", 0, MAXB, &out, &gen), MDM_ERR_NOTFOUND);
	buf_free(&out);
	free(b64);
	free(b);
	free(other);
	cache_destroy(c);
}

struct seen {
	pthread_mutex_t mu;
	uint64_t gen;
	int calls;
	size_t len;
	bool skip;
};

static bool skip_now(void *arg)
{
	struct seen *s = arg;
	bool v;

	pthread_mutex_lock(&s->mu);
	v = s->skip;
	pthread_mutex_unlock(&s->mu);
	return v;
}

static void set_skip(struct seen *s, bool v)
{
	pthread_mutex_lock(&s->mu);
	s->skip = v;
	pthread_mutex_unlock(&s->mu);
}

static void on_gen(void *arg, uint64_t gen, const void *bytes, size_t len)
{
	struct seen *s = arg;
	unsigned char *want = blob(gen, len);
	int same = memcmp(want, bytes, len) == 0;

	free(want);
	pthread_mutex_lock(&s->mu);
	s->gen = same ? gen : 0;
	s->len = len;
	s->calls++;
	pthread_mutex_unlock(&s->mu);
}

static uint64_t wait_gen(struct seen *s, uint64_t gen, int64_t ms)
{
	int64_t end = mc_mono_ms() + ms;
	uint64_t g;

	for (;;) {
		pthread_mutex_lock(&s->mu);
		g = s->gen;
		pthread_mutex_unlock(&s->mu);
		if (g == gen || mc_mono_ms() > end)
			return g;
		mc_sleep_ms(10);
	}
}

/* The follower hands each new complete generation over once. */
static void test_follow(void **state)
{
	struct cache *c = make_mc();
	struct seen s = {.gen = 0};
	struct publish_follow_config cfg = {.cache = c,
					    .ns = "t",
					    .interval_ms = 50,
					    .max_bytes = MAXB,
					    .cb = on_gen,
					    .arg = &s,
					    .skip = skip_now};
	struct publish_follow *f;
	unsigned char *b1 = blob(1, 1000), *b2 = blob(2, BLOB), *b3 = blob(3, 1000);

	(void)state;
	pthread_mutex_init(&s.mu, NULL);
	assert_null(publish_follow_start(&(struct publish_follow_config){.cache = c}));
	f = publish_follow_start(&cfg);
	assert_non_null(f);
	mc_sleep_ms(120);
	assert_int_equal(s.calls, 0);
	assert_int_equal(publish_put(c, "t", 1, b1, 1000, TTL, MAXB), MDM_OK);
	assert_int_equal(wait_gen(&s, 1, 2000), 1);
	assert_int_equal(publish_follow_gen(f), 1);
	assert_int_equal(publish_put(c, "t", 2, b2, BLOB, TTL, MAXB), MDM_OK);
	assert_int_equal(wait_gen(&s, 2, 3000), 2);
	mc_sleep_ms(200);
	pthread_mutex_lock(&s.mu);
	assert_int_equal(s.calls, 2);
	assert_int_equal(s.len, BLOB);
	pthread_mutex_unlock(&s.mu);
	/* Told to skip (this instance leads): a newer generation is not fetched until told. */
	set_skip(&s, true);
	mc_sleep_ms(100); /* a poll already past its skip check has finished */
	assert_int_equal(publish_put(c, "t", 3, b3, 1000, TTL, MAXB), MDM_OK);
	mc_sleep_ms(300);
	assert_int_equal(publish_follow_gen(f), 2);
	set_skip(&s, false);
	assert_int_equal(wait_gen(&s, 3, 2000), 3);
	publish_follow_stop(f);
	pthread_mutex_destroy(&s.mu);
	free(b1);
	free(b2);
	free(b3);
	cache_destroy(c);
}

/* Dropping an old generation deletes its manifest and chunks, and nothing else. */
static void test_drop(void **state)
{
	struct cache *c = make_mc();
	unsigned char *b1 = blob(1, BLOB), *b2 = blob(2, 10);
	uint64_t gen = 0;

	(void)state;
	assert_int_equal(publish_put(c, "t", 1, b1, BLOB, TTL, MAXB), MDM_OK);
	assert_int_equal(publish_put(c, "t", 2, b2, 10, TTL, MAXB), MDM_OK);
	assert_int_equal(publish_drop(c, "t", 1), MDM_OK);
	for (int i = 0; i < 5; i++) {
		char key[64];

		snprintf(key, sizeof(key), "t:snap:1:%d", i);
		assert_int_equal(get_state(c, key, NULL), CACHE_MISS);
	}
	assert_int_equal(get_state(c, "t:snap:1:manifest", NULL), CACHE_MISS);
	assert_int_equal(publish_drop(c, "t", 1), MDM_ERR_NOTFOUND);
	assert_int_equal(read_latest(c, 0, &gen, 10), MDM_OK);
	assert_int_equal(gen, 2);
	free(b1);
	free(b2);
	cache_destroy(c);
}

/* Without memcached the in-process cache carries it the same way. */
static void test_in_process(void **state)
{
	struct cache_mem_config mc = {.max_entries = 100, .shards = 1, .max_value = 1000000};
	struct cache *c = cache_mem_create(&mc);
	unsigned char *b = blob(7, BLOB);
	uint64_t gen = 0;

	(void)state;
	assert_non_null(c);
	assert_int_equal(publish_put(c, "t", 7, b, BLOB, TTL, MAXB), MDM_OK);
	assert_int_equal(read_latest(c, 0, &gen, BLOB), MDM_OK);
	assert_int_equal(gen, 7);
	free(b);
	cache_destroy(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_round_trip, setup),
	    cmocka_unit_test_setup(test_manifest_last, setup),
	    cmocka_unit_test_setup(test_missing_chunk, setup),
	    cmocka_unit_test_setup(test_corrupt, setup),
	    cmocka_unit_test_setup(test_follow, setup),
	    cmocka_unit_test_setup(test_drop, setup),
	    cmocka_unit_test(test_in_process),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
