#include "unit.h"

#include <libmemcached-1.0/memcached.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../cache/cache.h"
#include "../../gateway/recon/lease.h"
#include "cachetest.h"
#include "mcserver.h"

/*
 * Two "instances" are two caches on one real memcached, each with its own lease. Leases run on
 * the real clocks: memcached expires the lease by its own clock in whole seconds.
 */
static const unsigned char key_a[] = "0123456789abcdef0123456789abcdef";
static const unsigned char key_b[] = "another key, also long enough...";
static struct mcserver srv;
static const char *srv_list[1];

#define TTL_MS 2000
/*
 * memcached expires items by a clock that ticks in whole seconds (up to a second late), and a
 * follower looks every ttl/6: a take-over comes within the TTL plus that.
 */
#define TAKEOVER_SLACK_MS 2000

static struct cache *make_mc(const unsigned char *hmac_key)
{
	struct cache_mc_config cfg = {
	    .servers = srv_list,
	    .nservers = 1,
	    .hmac_key = hmac_key,
	    .hmac_key_len = 32,
	    .pool_size = 4,
	    .connect_timeout_ms = 200,
	    .io_timeout_ms = 500,
	    .failure_limit = 2,
	    .retry_timeout_ms = 1000,
	    .breaker_open_ms = 500,
	    .max_value = 4096,
	    .now = NULL,
	};
	char why[256] = "";
	struct cache *c = cache_mc_create(&cfg, why, sizeof(why));

	if (!c)
		fprintf(stderr, "cache_mc_create: %s\n", why);
	assert_non_null(c);
	return c;
}

static struct lease *make_lease(struct cache *c, const char *holder, bool no_thread)
{
	struct lease_config cfg = {
	    .cache = c,
	    .shared = true,
	    .ns = "t",
	    .holder = holder,
	    .ttl_ms = TTL_MS,
	    .no_thread = no_thread,
	};
	char why[256] = "";
	struct lease *l = lease_create(&cfg, why, sizeof(why));

	if (!l)
		fprintf(stderr, "lease_create: %s\n", why);
	assert_non_null(l);
	return l;
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

/* Waits up to ms for exactly one of a, b to lead; never both at once meanwhile. */
static struct lease *wait_one_leader(struct lease *a, struct lease *b, int64_t ms)
{
	int64_t end = mc_mono_ms() + ms;

	for (;;) {
		bool la = lease_is_leader(a, NULL), lb = b && lease_is_leader(b, NULL);

		assert_false(la && lb);
		if (la)
			return a;
		if (lb)
			return b;
		if (mc_mono_ms() > end)
			return NULL;
		mc_sleep_ms(10);
	}
}

static void test_config(void **state)
{
	struct lease_config cfg = {.shared = true, .ns = "t", .holder = "a", .ttl_ms = TTL_MS};
	char why[256] = "";

	(void)state;
	assert_null(lease_create(&cfg, why, sizeof(why))); /* shared without a cache */
	assert_non_null(strstr(why, "lease:"));
	cfg.shared = false;
	cfg.ttl_ms = 1999;
	assert_null(lease_create(&cfg, why, sizeof(why)));
	cfg.ttl_ms = 600001;
	assert_null(lease_create(&cfg, why, sizeof(why)));
	cfg.ttl_ms = TTL_MS;
	cfg.holder = "";
	assert_null(lease_create(&cfg, why, sizeof(why)));
	cfg.holder = "a";
	cfg.ns = "has space";
	assert_null(lease_create(&cfg, why, sizeof(why)));
}

/* Two instances: exactly one leads, with an epoch; the other knows who. */
static void test_one_leader(void **state)
{
	struct cache *ca = make_mc(key_a), *cb = make_mc(key_a);
	struct lease *a = make_lease(ca, "gw-a", false), *b = make_lease(cb, "gw-b", false);
	struct lease *lead, *other;
	uint64_t epoch = 0;
	json_t *st;

	(void)state;
	lead = wait_one_leader(a, b, 1000);
	assert_non_null(lead);
	other = lead == a ? b : a;
	/* Over a few renewals the leader stays the leader, the other never leads. */
	for (int i = 0; i < 150; i++) {
		assert_true(lease_is_leader(lead, &epoch));
		assert_false(lease_is_leader(other, NULL));
		mc_sleep_ms(20);
	}
	assert_true(epoch >= 1);
	assert_true(lease_is_leader_cb(lead, &epoch));
	assert_false(lease_is_leader_cb(other, NULL));
	st = lease_status_json(other);
	assert_non_null(st);
	assert_false(json_is_true(json_object_get(st, "leader")));
	assert_string_equal(json_string_value(json_object_get(st, "leader_holder")),
			    lead == a ? "gw-a" : "gw-b");
	json_decref(st);
	st = lease_status_json(lead);
	assert_true(json_is_true(json_object_get(st, "leader")));
	assert_int_equal(json_integer_value(json_object_get(st, "epoch")), (json_int_t)epoch);
	json_decref(st);
	lease_destroy(a);
	lease_destroy(b);
	cache_destroy(ca);
	cache_destroy(cb);
}

/*
 * The leader stops renewing (a hung instance): it stops counting itself leader before anyone
 * else may take over, and the other takes over within the TTL of its last renewal (plus the
 * second memcached's clock may add), with a higher epoch.
 */
static void test_takeover_hung(void **state)
{
	struct cache *ca = make_mc(key_a), *cb = make_mc(key_a);
	struct lease *a = make_lease(ca, "gw-a", false), *b = make_lease(cb, "gw-b", false);
	struct lease *lead, *other, *next;
	uint64_t e1 = 0, e2 = 0;
	int64_t t0;

	(void)state;
	lead = wait_one_leader(a, b, 1000);
	assert_non_null(lead);
	other = lead == a ? b : a;
	assert_true(lease_is_leader(lead, &e1));
	lease_pause(lead, true);
	t0 = mc_mono_ms();
	/* wait_one_leader checks they never lead at once. */
	while (lease_is_leader(lead, NULL)) {
		assert_false(lease_is_leader(other, NULL));
		mc_sleep_ms(10);
	}
	assert_true(mc_mono_ms() - t0 <= TTL_MS);
	next = wait_one_leader(lead, other, TTL_MS + TAKEOVER_SLACK_MS);
	assert_ptr_equal(next, other);
	assert_true(mc_mono_ms() - t0 <= TTL_MS + TAKEOVER_SLACK_MS);
	assert_true(lease_is_leader(other, &e2));
	assert_true(e2 > e1);
	/* The old leader, back, finds the lease taken and stays a follower. */
	lease_pause(lead, false);
	for (int i = 0; i < 100; i++) {
		assert_false(lease_is_leader(lead, NULL));
		mc_sleep_ms(10);
	}
	lease_destroy(a);
	lease_destroy(b);
	cache_destroy(ca);
	cache_destroy(cb);
}

/* A leader shut down gives the lease up: the other takes over well within the TTL. */
static void test_takeover_destroy(void **state)
{
	struct cache *ca = make_mc(key_a), *cb = make_mc(key_a);
	struct lease *a = make_lease(ca, "gw-a", false), *b = make_lease(cb, "gw-b", false);
	struct lease *lead, *other;
	uint64_t e1 = 0, e2 = 0;
	int64_t t0;

	(void)state;
	lead = wait_one_leader(a, b, 1000);
	assert_non_null(lead);
	other = lead == a ? b : a;
	assert_true(lease_is_leader(lead, &e1));
	t0 = mc_mono_ms();
	lease_destroy(lead);
	assert_ptr_equal(wait_one_leader(other, NULL, TTL_MS), other);
	assert_true(mc_mono_ms() - t0 < TTL_MS);
	assert_true(lease_is_leader(other, &e2));
	assert_true(e2 > e1);
	lease_destroy(other);
	cache_destroy(ca);
	cache_destroy(cb);
}

/* Step by step, without threads: epochs grow across leaders and a displaced leader knows. */
static void test_epochs_grow(void **state)
{
	struct cache *ca = make_mc(key_a), *cb = make_mc(key_a);
	struct lease *a = make_lease(ca, "gw-a", true), *b = make_lease(cb, "gw-b", true);
	uint64_t e = 0;

	(void)state;
	/* lease_create made the first attempt: a came first. */
	assert_true(lease_is_leader(a, &e));
	assert_int_equal(e, 1);
	assert_false(lease_is_leader(b, NULL));
	assert_int_equal(lease_tick(a), MDM_OK);
	assert_int_equal(lease_tick(b), MDM_OK);
	assert_true(lease_is_leader(a, NULL));
	assert_false(lease_is_leader(b, NULL));
	/* The lease lapses (as memcached would let it): b takes it with epoch 2. */
	assert_int_equal(cache_del(ca, "t:reconciler:lease"), MDM_OK);
	assert_int_equal(lease_tick(b), MDM_OK);
	assert_true(lease_is_leader(b, &e));
	assert_int_equal(e, 2);
	/* a's renewal finds b's lease: a no longer leads. */
	assert_int_equal(lease_tick(a), MDM_OK);
	assert_false(lease_is_leader(a, NULL));
	assert_int_equal(cache_del(ca, "t:reconciler:lease"), MDM_OK);
	assert_int_equal(lease_tick(a), MDM_OK);
	assert_true(lease_is_leader(a, &e));
	assert_int_equal(e, 3);
	/* memcached emptied (a restart): the epoch entry is gone, yet epochs still grow. */
	assert_int_equal(lease_tick(b), MDM_OK); /* b reads a's lease: epoch 3 seen */
	assert_int_equal(cache_del(ca, "t:reconciler:lease"), MDM_OK);
	assert_int_equal(cache_del(ca, "t:reconciler:epoch"), MDM_OK);
	assert_int_equal(lease_tick(b), MDM_OK);
	assert_true(lease_is_leader(b, &e));
	assert_int_equal(e, 4);
	lease_destroy(a);
	lease_destroy(b);
	cache_destroy(ca);
	cache_destroy(cb);
}

/* A lease written with another HMAC key is not a lease: it neither leads nor blocks. */
static void test_forged_lease(void **state)
{
	struct cache *ca = make_mc(key_a), *evil = make_mc(key_b);
	const char *forged = "{\"holder\":\"evil\",\"epoch\":99,\"expires\":0}";
	struct lease *a;
	uint64_t e = 0;
	json_t *st;

	(void)state;
	assert_int_equal(cache_add(evil, "t:reconciler:lease", forged, strlen(forged), 60000),
			 MDM_OK);
	assert_int_equal(cache_add(evil, "t:reconciler:epoch", "1000", 4, 0), MDM_OK);
	a = make_lease(ca, "gw-a", true);
	assert_true(lease_is_leader(a, &e));
	assert_int_equal(e, 1); /* the forged epoch is not taken either */
	st = lease_status_json(a);
	assert_string_equal(json_string_value(json_object_get(st, "leader_holder")), "gw-a");
	json_decref(st);
	/*
	 * Forged again under a running leader: not taken for another holder's lease but for no
	 * lease at all, so the instance takes it back, as a new leadership (epoch 2).
	 */
	assert_int_equal(
	    cache_cas(evil, "t:reconciler:lease", forged, strlen(forged), 60000, CACHE_CAS_ANY),
	    MDM_OK);
	assert_int_equal(lease_tick(a), MDM_OK);
	assert_true(lease_is_leader(a, &e));
	assert_int_equal(e, 2);
	lease_destroy(a);
	cache_destroy(ca);
	cache_destroy(evil);
}

/* Claims: the first claimer only, across instances; long ids are hashed. */
static void test_claim(void **state)
{
	struct cache *ca = make_mc(key_a), *cb = make_mc(key_a);
	struct lease *a = make_lease(ca, "gw-a", true), *b = make_lease(cb, "gw-b", true);
	char longid[400];
	struct cache_entry e;
	uint64_t v = 0;

	(void)state;
	assert_true(lease_claim(a, "AABBCCDDEEFF@7"));
	assert_false(lease_claim(a, "AABBCCDDEEFF@7"));
	assert_false(lease_claim(b, "AABBCCDDEEFF@7"));
	assert_true(lease_claim_cb(b, "AABBCCDDEEFF@8"));
	assert_false(lease_claim_cb(a, "AABBCCDDEEFF@8"));
	assert_int_equal(cache_get_cas(ca, "t:coa:AABBCCDDEEFF@7", &e, &v), MDM_OK);
	assert_non_null(strstr(e.val, "gw-a"));
	cache_entry_clear(&e);
	memset(longid, 'x', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	assert_true(lease_claim(b, longid));
	assert_false(lease_claim(a, longid));
	longid[10] = 'y';
	assert_true(lease_claim(a, longid));
	assert_true(lease_claim(a, "guid:with space@3"));
	assert_false(lease_claim(b, "guid:with space@3"));
	assert_false(lease_claim(a, ""));
	lease_destroy(a);
	lease_destroy(b);
	cache_destroy(ca);
	cache_destroy(cb);
}

/* memcached gone: claims go ahead only while leading, and leadership runs out. */
static void test_memcached_down(void **state)
{
	struct mcserver own = {0};
	const char *list[1];
	struct cache_mc_config cfg = {
	    .servers = list,
	    .nservers = 1,
	    .hmac_key = key_a,
	    .hmac_key_len = 32,
	    .pool_size = 2,
	    .connect_timeout_ms = 100,
	    .io_timeout_ms = 200,
	    .failure_limit = 1,
	    .retry_timeout_ms = 1000,
	    .breaker_open_ms = 500,
	    .max_value = 4096,
	};
	char why[256];
	struct cache *c;
	struct lease *a;

	(void)state;
	assert_int_equal(mcserver_start(&own, 0), 0);
	list[0] = own.addr;
	c = cache_mc_create(&cfg, why, sizeof(why));
	assert_non_null(c);
	a = make_lease(c, "gw-a", false);
	assert_ptr_equal(wait_one_leader(a, NULL, 1000), a);
	mcserver_kill(&own);
	assert_true(lease_claim(a, "X@1")); /* not recorded, but this instance leads */
	for (int i = 0; i < 300 && lease_is_leader(a, NULL); i++)
		mc_sleep_ms(10);
	assert_false(lease_is_leader(a, NULL));
	assert_false(lease_claim(a, "X@2"));
	lease_destroy(a);
	cache_destroy(c);
}

/* Without memcached: always leader, epoch 1; claims still once, in process. */
static void test_local(void **state)
{
	struct cache_mem_config mc = {.max_entries = 100, .shards = 1, .max_value = 1024};
	struct cache *c = cache_mem_create(&mc);
	struct lease_config cfg = {
	    .cache = c, .shared = false, .ns = "t", .holder = "solo", .ttl_ms = TTL_MS};
	struct lease *l, *bare;
	uint64_t e = 0;
	char why[128];
	json_t *st;

	(void)state;
	assert_non_null(c);
	l = lease_create(&cfg, why, sizeof(why));
	assert_non_null(l);
	assert_true(lease_is_leader(l, &e));
	assert_int_equal(e, 1);
	assert_int_equal(lease_tick(l), MDM_OK);
	assert_true(lease_claim(l, "A@1"));
	assert_false(lease_claim(l, "A@1"));
	st = lease_status_json(l);
	assert_false(json_is_true(json_object_get(st, "shared")));
	assert_true(json_is_true(json_object_get(st, "leader")));
	json_decref(st);
	cfg.cache = NULL;
	bare = lease_create(&cfg, why, sizeof(why));
	assert_non_null(bare);
	assert_true(lease_is_leader(bare, NULL));
	assert_true(lease_claim(bare, "A@1"));
	lease_destroy(bare);
	lease_destroy(l);
	/* No lease at all (main.c without cache.servers): the same. */
	assert_true(lease_is_leader(NULL, &e));
	assert_int_equal(e, 1);
	assert_true(lease_claim(NULL, "A@1"));
	assert_true(lease_claim_cb(NULL, "A@1"));
	e = 0;
	assert_true(lease_is_leader_cb(NULL, &e));
	assert_int_equal(e, 1);
	assert_int_equal(lease_tick(NULL), MDM_OK);
	st = lease_status_json(NULL);
	assert_true(json_is_true(json_object_get(st, "leader")));
	json_decref(st);
	cache_destroy(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_config),
	    cmocka_unit_test_setup(test_one_leader, setup),
	    cmocka_unit_test_setup(test_takeover_hung, setup),
	    cmocka_unit_test_setup(test_takeover_destroy, setup),
	    cmocka_unit_test_setup(test_epochs_grow, setup),
	    cmocka_unit_test_setup(test_forged_lease, setup),
	    cmocka_unit_test_setup(test_claim, setup),
	    cmocka_unit_test_setup(test_memcached_down, setup),
	    cmocka_unit_test(test_local),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
