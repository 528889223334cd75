#include "unit.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../../adapters/fanout.h"
#include "../../cache/cache.h"
#include "../../cache/entry.h"
#include "../../core/buf.h"
#include "../../core/clock.h"
#include "../../core/log.h"
#include "../../gateway/lookup.h"

#define MAC_A "0026B424FEB4"
#define MAC_B "0026B424FEB5"
#define MAC_C "0026B424FEB6"

/* --- the injected cache clock --------------------------------------------------------------- */

static _Atomic int64_t test_now = 1700000000000;

static int64_t fake_now(void)
{
	return atomic_load(&test_now);
}

static struct cache *make_cache(void)
{
	struct cache_mem_config cfg = {
	    .max_entries = 1000, .shards = 4, .max_value = 1 << 20, .now = fake_now};
	struct cache *c = cache_mem_create(&cfg);

	assert_non_null(c);
	return c;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* --- a fake adapter that counts its calls --------------------------------------------------- */

enum fake_mode {
	FAKE_ANSWER = 0, /* inline: the devices matching the identifier */
	FAKE_FAIL,	 /* inline: OUTCOME_FAILED / FAIL_UNREACHABLE */
	FAKE_REFUSE,	 /* lookup() returns an error */
	FAKE_NEVER,	 /* accepts, never answers; the test may answer late with late_answer() */
	FAKE_ASYNC,	 /* answers from another thread after delay_ms */
};

#define FAKE_DEVS 8
#define FAKE_THREADS 64

struct fake {
	struct adapter base;
	pthread_mutex_t mu;
	struct device devs[FAKE_DEVS];
	size_t ndevs;
	enum fake_mode mode;
	int delay_ms;
	atomic_int calls;
	adapter_lookup_cb held_cb;
	void *held_arg;
	pthread_t threads[FAKE_THREADS];
	int nthreads;
};

/* The answer to id from the devices the fake holds now. */
static void fake_answer(struct fake *f, const struct ident *id, struct outcome *oc)
{
	outcome_init(oc);
	pthread_mutex_lock(&f->mu);
	if (f->mode == FAKE_FAIL) {
		outcome_set(oc, OUTCOME_FAILED, FAIL_UNREACHABLE, "connection refused");
	} else {
		for (size_t i = 0; i < f->ndevs; i++)
			if (device_matches(&f->devs[i], id))
				assert_int_equal(outcome_add(oc, &f->devs[i]), MDM_OK);
	}
	pthread_mutex_unlock(&f->mu);
}

struct job {
	struct fake *f;
	struct ident id;
	adapter_lookup_cb cb;
	void *arg;
};

static void *async_main(void *p)
{
	struct job *j = p;
	struct outcome oc;

	sleep_ms(j->f->delay_ms);
	fake_answer(j->f, &j->id, &oc);
	j->cb(j->arg, &oc);
	outcome_clear(&oc);
	free(j);
	return NULL;
}

static enum mdm_err fake_lookup(struct adapter *a, const struct ident *id, int64_t deadline_ms,
				adapter_lookup_cb cb, void *arg)
{
	struct fake *f = a->priv;
	struct outcome oc;
	enum fake_mode mode;

	atomic_fetch_add(&f->calls, 1);
	pthread_mutex_lock(&f->mu);
	mode = f->mode;
	pthread_mutex_unlock(&f->mu);
	switch (mode) {
	case FAKE_REFUSE:
		return MDM_ERR_UNAVAILABLE;
	case FAKE_NEVER:
		pthread_mutex_lock(&f->mu);
		f->held_cb = cb;
		f->held_arg = arg;
		pthread_mutex_unlock(&f->mu);
		return MDM_OK;
	case FAKE_ASYNC: {
		struct job *j = malloc(sizeof(*j));

		assert_non_null(j);
		j->f = f;
		j->id = *id;
		j->cb = cb;
		j->arg = arg;
		pthread_mutex_lock(&f->mu);
		assert_true(f->nthreads < FAKE_THREADS);
		assert_int_equal(pthread_create(&f->threads[f->nthreads++], NULL, async_main, j),
				 0);
		pthread_mutex_unlock(&f->mu);
		return MDM_OK;
	}
	default:
		fake_answer(f, id, &oc);
		cb(arg, &oc);
		outcome_clear(&oc);
		return MDM_OK;
	}
}

static void fake_destroy(struct adapter *a)
{
	(void)a;
}

static const struct adapter_ops fake_ops = {
    .type = "fake",
    .lookup = fake_lookup,
    .destroy = fake_destroy,
};

static void fake_init(struct fake *f, const char *name, enum fake_mode mode)
{
	memset(f, 0, sizeof(*f));
	f->base.ops = &fake_ops;
	f->base.priv = f;
	snprintf(f->base.name, sizeof(f->base.name), "%s", name);
	pthread_mutex_init(&f->mu, NULL);
	f->mode = mode;
	atomic_init(&f->calls, 0);
}

static void fake_set_mode(struct fake *f, enum fake_mode mode, int delay_ms)
{
	pthread_mutex_lock(&f->mu);
	f->mode = mode;
	f->delay_ms = delay_ms;
	pthread_mutex_unlock(&f->mu);
}

/* Adds a device with one MAC; returns it so the test can change it (under f->mu). */
static struct device *fake_add(struct fake *f, const char *vid, const char *mac, enum tri compliant)
{
	struct device *d;

	pthread_mutex_lock(&f->mu);
	assert_true(f->ndevs < FAKE_DEVS);
	d = &f->devs[f->ndevs++];
	memset(d, 0, sizeof(*d));
	snprintf(d->source, sizeof(d->source), "%s", f->base.name);
	snprintf(d->vendor_id, sizeof(d->vendor_id), "%s", vid);
	assert_int_equal(device_add_mac(d, mac), MDM_OK);
	d->registered = TRI_TRUE;
	d->compliant = compliant;
	pthread_mutex_unlock(&f->mu);
	return d;
}

/* Joins every thread the fake started. */
static void fake_join(struct fake *f)
{
	for (;;) {
		pthread_t t;

		pthread_mutex_lock(&f->mu);
		if (f->nthreads == 0) {
			pthread_mutex_unlock(&f->mu);
			break;
		}
		t = f->threads[--f->nthreads];
		pthread_mutex_unlock(&f->mu);
		pthread_join(t, NULL);
	}
	pthread_mutex_destroy(&f->mu);
}

static int calls(struct fake *f)
{
	return atomic_load(&f->calls);
}

/* --- helpers -------------------------------------------------------------------------------- */

static struct ident mk_ident(enum ident_kind kind, const char *v)
{
	struct ident id;

	assert_int_equal(ident_parse(kind, v, strlen(v), &id, NULL, 0), MDM_OK);
	return id;
}

static struct lookup_config config(struct adapter *const *ads, size_t nads, struct cache *c)
{
	struct lookup_config cfg = {
	    .ads = ads,
	    .nads = nads,
	    .cache = c,
	    .policy = {.compliant_requires_all = true},
	    .timeout_ms = 1000,
	    .fresh_ttl_ms = 60000,
	    .stale_ttl_ms = 300000,
	    .negative_ttl_ms = 30000,
	    .max_batch = 10,
	};

	return cfg;
}

/* One identifier; the result is left in *r (merge_result_clear it). */
static void ask(struct lookup *l, const char *mac, struct merge_result *r)
{
	struct ident id = mk_ident(IDENT_MAC, mac);

	assert_int_equal(lookup_many(l, &id, 1, r), MDM_OK);
}

/* The cache entry under the key of MAC mac (cache_entry_clear it). */
static enum cache_state cached(struct cache *c, const char *mac, struct cache_entry *e)
{
	char key[CACHE_KEY_MAX + 1];

	snprintf(key, sizeof(key), "mdmgw:v1:mac:%s", mac);
	assert_int_equal(cache_get(c, key, e), MDM_OK);
	return e->state;
}

static unsigned long stat_of(const atomic_ulong *v)
{
	return atomic_load(v);
}

/* Waits (at most 2 s) until *v reaches want. */
static bool wait_stat(const atomic_ulong *v, unsigned long want)
{
	int64_t until = clock_mono_ms() + 2000;

	while (atomic_load(v) < want && clock_mono_ms() < until)
		sleep_ms(2);
	return atomic_load(v) >= want;
}

/* --- lookup --------------------------------------------------------------------------------- */

static void test_miss_then_hit(void **state)
{
	struct fake f;
	struct adapter *ads[1] = {&f.base};
	struct cache *c = make_cache();
	struct lookup_config cfg = config(ads, 1, c);
	struct lookup *l;
	struct merge_result r;
	struct cache_entry e;
	const struct lookup_stats *st;

	(void)state;
	fake_init(&f, "inv", FAKE_ANSWER);
	fake_add(&f, "inv-1", MAC_A, TRI_FALSE);
	l = lookup_create(&cfg);
	assert_non_null(l);
	st = lookup_stats(l);
	ask(l, "00:26:b4:24:fe:b4", &r);
	assert_int_equal(r.verdict, MERGE_FOUND);
	assert_false(r.partial);
	assert_int_equal(r.ndevs, 1);
	assert_string_equal(r.devs[0].vendor_id, "inv-1");
	assert_int_equal(r.devs[0].compliant, TRI_FALSE);
	merge_result_clear(&r);
	assert_int_equal(calls(&f), 1);
	assert_int_equal(stat_of(&st->misses), 1);
	/* stored: fresh for fresh_ttl_ms, then stale for stale_ttl_ms */
	assert_int_equal(cached(c, MAC_A, &e), CACHE_FRESH);
	assert_int_equal(e.fresh_until - e.fetched_at, 60000);
	assert_int_equal(e.stale_until - e.fresh_until, 300000);
	cache_entry_clear(&e);
	/* the second call is a fresh hit: the adapter is not asked */
	ask(l, MAC_A, &r);
	assert_int_equal(r.verdict, MERGE_FOUND);
	assert_int_equal(r.ndevs, 1);
	assert_string_equal(r.devs[0].vendor_id, "inv-1");
	assert_string_equal(r.devs[0].macs[0], MAC_A);
	assert_int_equal(r.devs[0].compliant, TRI_FALSE);
	merge_result_clear(&r);
	assert_int_equal(calls(&f), 1);
	assert_int_equal(stat_of(&st->fresh_hits), 1);
	assert_int_equal(stat_of(&st->misses), 1);
	lookup_destroy(l);
	cache_destroy(c);
	fake_join(&f);
}

static void test_not_enrolled_negative_ttl(void **state)
{
	struct fake f;
	struct adapter *ads[1] = {&f.base};
	struct cache *c = make_cache();
	struct lookup_config cfg = config(ads, 1, c);
	struct lookup *l;
	struct merge_result r;
	struct cache_entry e;

	(void)state;
	fake_init(&f, "inv", FAKE_ANSWER);
	l = lookup_create(&cfg);
	assert_non_null(l);
	ask(l, MAC_B, &r);
	assert_int_equal(r.verdict, MERGE_NOT_ENROLLED);
	assert_int_equal(r.ndevs, 0);
	merge_result_clear(&r);
	assert_int_equal(calls(&f), 1);
	assert_int_equal(cached(c, MAC_B, &e), CACHE_FRESH);
	assert_int_equal(e.fresh_until - e.fetched_at, 30000); /* the negative TTL */
	assert_int_equal(e.stale_until, e.fresh_until);	       /* never served stale */
	cache_entry_clear(&e);
	ask(l, MAC_B, &r);
	assert_int_equal(r.verdict, MERGE_NOT_ENROLLED);
	merge_result_clear(&r);
	assert_int_equal(calls(&f), 1);
	/* past the negative TTL the adapters are asked again */
	atomic_fetch_add(&test_now, 30001);
	assert_int_equal(cached(c, MAC_B, &e), CACHE_MISS);
	cache_entry_clear(&e);
	ask(l, MAC_B, &r);
	assert_int_equal(r.verdict, MERGE_NOT_ENROLLED);
	merge_result_clear(&r);
	assert_int_equal(calls(&f), 2);
	lookup_destroy(l);
	cache_destroy(c);
	fake_join(&f);
}

static void test_failed_not_cached(void **state)
{
	struct fake f;
	struct adapter *ads[1] = {&f.base};
	struct cache *c = make_cache();
	struct lookup_config cfg = config(ads, 1, c);
	struct lookup *l;
	struct merge_result r;
	struct cache_entry e;

	(void)state;
	fake_init(&f, "down", FAKE_FAIL);
	l = lookup_create(&cfg);
	assert_non_null(l);
	ask(l, MAC_A, &r);
	assert_int_equal(r.verdict, MERGE_UNAVAILABLE);
	assert_int_equal(r.ndevs, 0);
	merge_result_clear(&r);
	assert_int_equal(cached(c, MAC_A, &e), CACHE_MISS);
	cache_entry_clear(&e);
	ask(l, MAC_A, &r);
	assert_int_equal(r.verdict, MERGE_UNAVAILABLE);
	merge_result_clear(&r);
	assert_int_equal(calls(&f), 2); /* asked again: nothing was cached */
	assert_int_equal(stat_of(&lookup_stats(l)->unavailable), 2);
	/* the source comes back: the answer is found and now cached */
	fake_set_mode(&f, FAKE_ANSWER, 0);
	fake_add(&f, "d-1", MAC_A, TRI_TRUE);
	ask(l, MAC_A, &r);
	assert_int_equal(r.verdict, MERGE_FOUND);
	merge_result_clear(&r);
	assert_int_equal(cached(c, MAC_A, &e), CACHE_FRESH);
	cache_entry_clear(&e);
	lookup_destroy(l);
	cache_destroy(c);
	fake_join(&f);
}

static void test_refused_call_is_unavailable(void **state)
{
	struct fake f;
	struct adapter *ads[1] = {&f.base};
	struct cache *c = make_cache();
	struct lookup_config cfg = config(ads, 1, c);
	struct lookup *l;
	struct merge_result r;

	(void)state;
	fake_init(&f, "refuses", FAKE_REFUSE);
	l = lookup_create(&cfg);
	assert_non_null(l);
	ask(l, MAC_A, &r);
	assert_int_equal(r.verdict, MERGE_UNAVAILABLE);
	merge_result_clear(&r);
	lookup_destroy(l);
	cache_destroy(c);
	fake_join(&f);
}

static void test_partial_not_cached(void **state)
{
	struct fake ok, down;
	struct adapter *ads[2] = {&ok.base, &down.base};
	struct cache *c = make_cache();
	struct lookup_config cfg = config(ads, 2, c);
	struct lookup *l;
	struct merge_result r;
	struct cache_entry e;

	(void)state;
	fake_init(&ok, "ok", FAKE_ANSWER);
	fake_init(&down, "down", FAKE_FAIL);
	fake_add(&ok, "ok-1", MAC_A, TRI_TRUE);
	l = lookup_create(&cfg);
	assert_non_null(l);
	ask(l, MAC_A, &r);
	assert_int_equal(r.verdict, MERGE_FOUND);
	assert_true(r.partial);
	assert_int_equal(r.ndevs, 1);
	assert_string_equal(r.devs[0].vendor_id, "ok-1");
	merge_result_clear(&r);
	assert_int_equal(stat_of(&lookup_stats(l)->partial), 1);
	assert_int_equal(cached(c, MAC_A, &e), CACHE_MISS);
	cache_entry_clear(&e);
	ask(l, MAC_A, &r);
	assert_true(r.partial);
	merge_result_clear(&r);
	assert_int_equal(calls(&ok), 2);
	assert_int_equal(calls(&down), 2);
	lookup_destroy(l);
	/* the policy may turn partial answers into unavailable ones */
	cfg.policy.partial_is_unavailable = true;
	l = lookup_create(&cfg);
	assert_non_null(l);
	ask(l, MAC_A, &r);
	assert_int_equal(r.verdict, MERGE_UNAVAILABLE);
	merge_result_clear(&r);
	lookup_destroy(l);
	cache_destroy(c);
	fake_join(&ok);
	fake_join(&down);
}

static void test_cache_key(void **state)
{
	struct ident id;
	char key[CACHE_KEY_MAX + 1];
	char *h200 = malloc(201);

	(void)state;
	assert_non_null(h200);
	id = mk_ident(IDENT_MAC, "00:26:b4:24:fe:b4");
	assert_int_equal(lookup_cache_key(&id, key, sizeof(key)), MDM_OK);
	assert_string_equal(key, "mdmgw:v1:mac:0026B424FEB4");
	id = mk_ident(IDENT_USERNAME, "JDoe@Corp.com");
	assert_int_equal(lookup_cache_key(&id, key, sizeof(key)), MDM_OK);
	assert_string_equal(key, "mdmgw:v1:username:jdoe@corp.com");
	id = mk_ident(IDENT_GUID, "1759c0fd-c8da-49e8-b14f-19d85acfacea");
	assert_int_equal(lookup_cache_key(&id, key, sizeof(key)), MDM_OK);
	assert_string_equal(key, "mdmgw:v1:guid:1759c0fd-c8da-49e8-b14f-19d85acfacea");
	/* a space is no key character: the value is hashed (of its normalised form) */
	id = mk_ident(IDENT_USERNAME, "John Doe");
	assert_int_equal(lookup_cache_key(&id, key, sizeof(key)), MDM_OK);
	assert_string_equal(key,
			    "mdmgw:v1:username:sha256:"
			    "94890005f3b2117a353da7260259531878cae4f541bf59998511887d1f0221a5");
	assert_true(cache_key_valid(key));
	/* nor is a byte past ASCII */
	id = mk_ident(IDENT_USERNAME, "j\xc3\xb6hn");
	assert_int_equal(lookup_cache_key(&id, key, sizeof(key)), MDM_OK);
	assert_string_equal(key,
			    "mdmgw:v1:username:sha256:"
			    "d099e941c8648801789318e0c87111759678219e0be85b82237a4c4ace2c0d64");
	/* long values are hashed too */
	memset(h200, 'h', 200);
	h200[200] = '\0';
	id = mk_ident(IDENT_HOSTNAME, h200);
	assert_int_equal(lookup_cache_key(&id, key, sizeof(key)), MDM_OK);
	assert_string_equal(key,
			    "mdmgw:v1:hostname:sha256:"
			    "b753db5b761f3e9e2919765a51503c5dad1ad15322e5c2ea95e3a3efac7a385d");
	assert_true(cache_key_valid(key));
	/* too small an output is an error, not a cut key */
	id = mk_ident(IDENT_MAC, MAC_A);
	assert_int_equal(lookup_cache_key(&id, key, 20), MDM_ERR_TOOBIG);
	assert_int_equal(lookup_cache_key(&id, key, strlen("mdmgw:v1:mac:0026B424FEB4")),
			 MDM_ERR_TOOBIG);
	assert_int_equal(lookup_cache_key(&id, key, strlen("mdmgw:v1:mac:0026B424FEB4") + 1),
			 MDM_OK);
	free(h200);
}

static void test_batch(void **state)
{
	struct fake f1, f2;
	struct adapter *ads[2] = {&f1.base, &f2.base};
	struct cache *c = make_cache();
	struct lookup_config cfg = config(ads, 2, c);
	struct lookup *l;
	struct ident ids[3];
	struct merge_result r[3];

	(void)state;
	fake_init(&f1, "one", FAKE_ANSWER);
	fake_init(&f2, "two", FAKE_ANSWER);
	fake_add(&f1, "one-a", MAC_A, TRI_TRUE);
	fake_add(&f2, "two-c", MAC_C, TRI_FALSE);
	ids[0] = mk_ident(IDENT_MAC, MAC_A);
	ids[1] = mk_ident(IDENT_MAC, MAC_B);
	ids[2] = mk_ident(IDENT_MAC, MAC_C);
	l = lookup_create(&cfg);
	assert_non_null(l);
	assert_int_equal(lookup_many(l, ids, 3, r), MDM_OK);
	assert_int_equal(r[0].verdict, MERGE_FOUND);
	assert_string_equal(r[0].devs[0].vendor_id, "one-a");
	assert_int_equal(r[1].verdict, MERGE_NOT_ENROLLED);
	assert_int_equal(r[2].verdict, MERGE_FOUND);
	assert_string_equal(r[2].devs[0].vendor_id, "two-c");
	assert_int_equal(r[2].devs[0].compliant, TRI_FALSE);
	for (int i = 0; i < 3; i++)
		merge_result_clear(&r[i]);
	assert_int_equal(calls(&f1), 3);
	assert_int_equal(calls(&f2), 3);
	/* again, with one new identifier first: two hits and one miss, each in its place */
	ids[0] = mk_ident(IDENT_MAC, "02:00:00:00:00:09");
	ids[1] = mk_ident(IDENT_MAC, MAC_C);
	ids[2] = mk_ident(IDENT_MAC, MAC_A);
	assert_int_equal(lookup_many(l, ids, 3, r), MDM_OK);
	assert_int_equal(r[0].verdict, MERGE_NOT_ENROLLED);
	assert_string_equal(r[1].devs[0].vendor_id, "two-c");
	assert_string_equal(r[2].devs[0].vendor_id, "one-a");
	for (int i = 0; i < 3; i++)
		merge_result_clear(&r[i]);
	assert_int_equal(calls(&f1), 4);
	assert_int_equal(calls(&f2), 4);
	assert_int_equal(stat_of(&lookup_stats(l)->fresh_hits), 2);
	/* an empty batch is no error */
	assert_int_equal(lookup_many(l, ids, 0, r), MDM_OK);
	lookup_destroy(l);
	cache_destroy(c);
	fake_join(&f1);
	fake_join(&f2);
}

static void test_batch_too_big(void **state)
{
	struct fake f;
	struct adapter *ads[1] = {&f.base};
	struct cache *c = make_cache();
	struct lookup_config cfg = config(ads, 1, c);
	struct lookup *l;
	struct ident ids[11];
	struct merge_result r[11];

	(void)state;
	fake_init(&f, "inv", FAKE_ANSWER);
	for (int i = 0; i < 11; i++) {
		char mac[MAC_STR_LEN + 1];

		snprintf(mac, sizeof(mac), "0200000000%02X", i + 1);
		ids[i] = mk_ident(IDENT_MAC, mac);
	}
	l = lookup_create(&cfg);
	assert_non_null(l);
	assert_int_equal(lookup_many(l, ids, 11, r), MDM_ERR_TOOBIG);
	assert_int_equal(calls(&f), 0);
	assert_int_equal(lookup_many(l, ids, 10, r), MDM_OK); /* max_batch itself is fine */
	for (int i = 0; i < 10; i++) {
		assert_int_equal(r[i].verdict, MERGE_NOT_ENROLLED);
		merge_result_clear(&r[i]);
	}
	assert_int_equal(calls(&f), 10);
	lookup_destroy(l);
	cache_destroy(c);
	fake_join(&f);
}

static void test_stale_served_then_refreshed(void **state)
{
	struct fake f;
	struct adapter *ads[1] = {&f.base};
	struct cache *c = make_cache();
	struct lookup_config cfg = config(ads, 1, c);
	struct lookup *l;
	const struct lookup_stats *st;
	struct merge_result r;
	struct cache_entry e;
	struct device *d;
	int64_t t0;

	(void)state;
	fake_init(&f, "inv", FAKE_ANSWER);
	d = fake_add(&f, "inv-1", MAC_A, TRI_TRUE);
	l = lookup_create(&cfg);
	assert_non_null(l);
	st = lookup_stats(l);
	ask(l, MAC_A, &r);
	assert_int_equal(r.devs[0].compliant, TRI_TRUE);
	merge_result_clear(&r);
	/* the device changes at the source, which now answers slowly; the entry goes stale */
	pthread_mutex_lock(&f.mu);
	d->compliant = TRI_FALSE;
	pthread_mutex_unlock(&f.mu);
	fake_set_mode(&f, FAKE_ASYNC, 300);
	atomic_fetch_add(&test_now, 61000);
	assert_int_equal(cached(c, MAC_A, &e), CACHE_STALE);
	cache_entry_clear(&e);
	/* served at once, the old answer, while one refresh runs in the background */
	t0 = clock_mono_ms();
	ask(l, MAC_A, &r);
	assert_true(clock_mono_ms() - t0 < 250);
	assert_int_equal(r.verdict, MERGE_FOUND);
	assert_int_equal(r.devs[0].compliant, TRI_TRUE);
	merge_result_clear(&r);
	ask(l, MAC_A, &r); /* a second stale hit does not start a second refresh */
	assert_int_equal(r.devs[0].compliant, TRI_TRUE);
	merge_result_clear(&r);
	assert_true(clock_mono_ms() - t0 < 250);
	assert_int_equal(stat_of(&st->stale_hits), 2);
	assert_true(wait_stat(&st->refreshes, 1));
	assert_int_equal(calls(&f), 2);
	/* the refresh wrote the new answer back, fresh again */
	assert_int_equal(cached(c, MAC_A, &e), CACHE_FRESH);
	cache_entry_clear(&e);
	ask(l, MAC_A, &r);
	assert_int_equal(r.verdict, MERGE_FOUND);
	assert_int_equal(r.devs[0].compliant, TRI_FALSE);
	merge_result_clear(&r);
	assert_int_equal(calls(&f), 2);
	assert_int_equal(stat_of(&st->fresh_hits), 1);
	assert_int_equal(stat_of(&st->refreshes), 1);
	assert_int_equal(stat_of(&st->misses), 1);
	lookup_destroy(l);
	cache_destroy(c);
	fake_join(&f);
}

static void test_corrupt_entry_is_a_miss(void **state)
{
	struct fake f;
	struct adapter *ads[1] = {&f.base};
	struct cache *c = make_cache();
	struct lookup_config cfg = config(ads, 1, c);
	struct lookup *l;
	struct merge_result r;
	const char *junk = "{\"v\":99,\"r\":\"found\"}";

	(void)state;
	fake_init(&f, "inv", FAKE_ANSWER);
	fake_add(&f, "inv-1", MAC_A, TRI_TRUE);
	assert_int_equal(cache_put(c, "mdmgw:v1:mac:" MAC_A, junk, strlen(junk), 60000, 0), MDM_OK);
	l = lookup_create(&cfg);
	assert_non_null(l);
	ask(l, MAC_A, &r);
	assert_int_equal(r.verdict, MERGE_FOUND);
	assert_string_equal(r.devs[0].vendor_id, "inv-1");
	merge_result_clear(&r);
	assert_int_equal(calls(&f), 1);
	assert_int_equal(stat_of(&lookup_stats(l)->bad_entries), 1);
	assert_int_equal(stat_of(&lookup_stats(l)->misses), 1);
	/* the good answer replaced the bad value */
	ask(l, MAC_A, &r);
	assert_string_equal(r.devs[0].vendor_id, "inv-1");
	merge_result_clear(&r);
	assert_int_equal(calls(&f), 1);
	assert_int_equal(stat_of(&lookup_stats(l)->fresh_hits), 1);
	lookup_destroy(l);
	cache_destroy(c);
	fake_join(&f);
}

static void test_lock_held_elsewhere(void **state)
{
	struct fake f;
	struct adapter *ads[1] = {&f.base};
	struct cache *c = make_cache();
	struct lookup_config cfg = config(ads, 1, c);
	struct lookup *l;
	struct merge_result r;
	int64_t t0, took;

	(void)state;
	fake_init(&f, "inv", FAKE_ANSWER);
	fake_add(&f, "inv-1", MAC_A, TRI_TRUE);
	l = lookup_create(&cfg);
	assert_non_null(l);
	/* someone else claims the key and never fills it: wait briefly, then ask directly */
	assert_int_equal(cache_lock(c, "mdmgw:v1:mac:" MAC_A, 60000), MDM_OK);
	t0 = clock_mono_ms();
	ask(l, MAC_A, &r);
	took = clock_mono_ms() - t0;
	assert_int_equal(r.verdict, MERGE_FOUND);
	merge_result_clear(&r);
	assert_in_range(took, 90, 900);
	assert_int_equal(calls(&f), 1);
	assert_int_equal(stat_of(&lookup_stats(l)->lock_waits), 1);
	cache_unlock(c, "mdmgw:v1:mac:" MAC_A);
	lookup_destroy(l);
	cache_destroy(c);
	fake_join(&f);
}

struct filler {
	struct cache *c;
};

static void *fill_later(void *arg)
{
	struct filler *fl = arg;
	struct device d;
	struct buf b;

	memset(&d, 0, sizeof(d));
	snprintf(d.source, sizeof(d.source), "other");
	snprintf(d.vendor_id, sizeof(d.vendor_id), "from-other");
	device_add_mac(&d, MAC_A);
	buf_init(&b, 1 << 16);
	sleep_ms(20);
	if (entry_encode(ENTRY_FOUND, &d, 1, &b) == MDM_OK)
		cache_put(fl->c, "mdmgw:v1:mac:" MAC_A, b.mem, b.len, 60000, 0);
	buf_free(&b);
	return NULL;
}

static void test_lock_holder_fills(void **state)
{
	struct fake f;
	struct adapter *ads[1] = {&f.base};
	struct cache *c = make_cache();
	struct lookup_config cfg = config(ads, 1, c);
	struct lookup *l;
	struct merge_result r;
	struct filler fl = {c};
	pthread_t t;

	(void)state;
	fake_init(&f, "inv", FAKE_ANSWER);
	fake_add(&f, "inv-1", MAC_A, TRI_TRUE);
	l = lookup_create(&cfg);
	assert_non_null(l);
	assert_int_equal(cache_lock(c, "mdmgw:v1:mac:" MAC_A, 60000), MDM_OK);
	assert_int_equal(pthread_create(&t, NULL, fill_later, &fl), 0);
	ask(l, MAC_A, &r);
	pthread_join(t, NULL);
	assert_int_equal(r.verdict, MERGE_FOUND);
	assert_string_equal(r.devs[0].vendor_id, "from-other"); /* the other's answer */
	merge_result_clear(&r);
	assert_int_equal(calls(&f), 0);
	cache_unlock(c, "mdmgw:v1:mac:" MAC_A);
	lookup_destroy(l);
	cache_destroy(c);
	fake_join(&f);
}

static void test_duplicate_in_batch(void **state)
{
	struct fake f;
	struct adapter *ads[1] = {&f.base};
	struct cache *c = make_cache();
	struct lookup_config cfg = config(ads, 1, c);
	struct lookup *l;
	struct ident ids[5];
	struct merge_result r[5];
	int64_t t0, took;
	unsigned long waits;

	(void)state;
	/*
	 * BUG: gateway/lookup.c lookup_many (lines 280-281): when one batch names the same
	 * identifier twice, the first occurrence takes the key's refresh lock and every later
	 * occurrence finds that lock held -- by this very call -- and sits in wait_for_other for
	 * up to min(timeout_ms, 100) ms polling a cache nobody will fill before the batch is
	 * asked. A batchdevices body of 5000 copies of one MAC blocks the request for
	 * ~5000 x 100 ms (DoS; the contract wants 200 ms). Input: lookup_many of the same MAC
	 * 5 times, adapter answering inline. Expected: answered at once (no lock wait).
	 * Actual: ~400 ms, lock_waits == 4.
	 */
	fake_init(&f, "inv", FAKE_ANSWER);
	fake_add(&f, "inv-1", MAC_A, TRI_TRUE);
	for (int i = 0; i < 5; i++)
		ids[i] = mk_ident(IDENT_MAC, MAC_A);
	l = lookup_create(&cfg);
	assert_non_null(l);
	t0 = clock_mono_ms();
	assert_int_equal(lookup_many(l, ids, 5, r), MDM_OK);
	took = clock_mono_ms() - t0;
	waits = stat_of(&lookup_stats(l)->lock_waits);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(r[i].verdict, MERGE_FOUND);
		merge_result_clear(&r[i]);
	}
	lookup_destroy(l);
	cache_destroy(c);
	fake_join(&f);
	assert_int_equal(waits, 0);
	assert_true(took < 100);
}

struct late {
	struct fake *f;
	const char *mac;
};

static void *late_answer(void *arg)
{
	struct late *la = arg;
	struct outcome oc;
	struct device d;

	memset(&d, 0, sizeof(d));
	snprintf(d.vendor_id, sizeof(d.vendor_id), "late");
	device_add_mac(&d, la->mac);
	outcome_init(&oc);
	outcome_add(&oc, &d);
	la->f->held_cb(la->f->held_arg, &oc);
	outcome_clear(&oc);
	return NULL;
}

static void test_timeout_then_late_answer(void **state)
{
	struct fake silent, ok;
	struct adapter *ads[2] = {&silent.base, &ok.base};
	struct cache *c = make_cache();
	struct lookup_config cfg = config(ads, 2, c);
	struct lookup *l;
	struct merge_result r;
	struct cache_entry e;
	struct late la = {&silent, MAC_A};
	pthread_t t;
	int64_t t0, took;

	(void)state;
	fake_init(&silent, "silent", FAKE_NEVER);
	fake_init(&ok, "ok", FAKE_ANSWER); /* says "not enrolled" */
	cfg.timeout_ms = 150;
	l = lookup_create(&cfg);
	assert_non_null(l);
	t0 = clock_mono_ms();
	ask(l, MAC_A, &r);
	took = clock_mono_ms() - t0;
	assert_int_equal(r.verdict, MERGE_UNAVAILABLE); /* a silent source is no "not enrolled" */
	assert_int_equal(r.ndevs, 0);
	merge_result_clear(&r);
	assert_in_range(took, 145, 1000);
	assert_int_equal(stat_of(&lookup_stats(l)->unavailable), 1);
	assert_int_equal(cached(c, MAC_A, &e), CACHE_MISS);
	cache_entry_clear(&e);
	/* the answer arrives after the caller gave up, from another thread */
	assert_non_null(silent.held_cb);
	assert_int_equal(pthread_create(&t, NULL, late_answer, &la), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(cached(c, MAC_A, &e), CACHE_MISS); /* and changes nothing */
	cache_entry_clear(&e);
	lookup_destroy(l);
	cache_destroy(c);
	fake_join(&silent);
	fake_join(&ok);
}

/* --- fanout --------------------------------------------------------------------------------- */

static void test_fanout_order(void **state)
{
	struct fake slow, fast, down, refuses;
	struct adapter *ads[4] = {&slow.base, &fast.base, &down.base, &refuses.base};
	struct ident ids[2];
	struct fanout *fo;
	struct outcome *oc;

	(void)state;
	fake_init(&slow, "slow", FAKE_ASYNC); /* answers last, from other threads */
	slow.delay_ms = 50;
	fake_init(&fast, "fast", FAKE_ANSWER);
	fake_init(&down, "down", FAKE_FAIL);
	fake_init(&refuses, "refuses", FAKE_REFUSE);
	fake_add(&slow, "slow-a", MAC_A, TRI_TRUE);
	fake_add(&slow, "slow-b", MAC_B, TRI_TRUE);
	fake_add(&fast, "fast-b", MAC_B, TRI_FALSE);
	ids[0] = mk_ident(IDENT_MAC, MAC_A);
	ids[1] = mk_ident(IDENT_MAC, MAC_B);
	fo = fanout_create(ads, 4, 2);
	assert_non_null(fo);
	fanout_start(fo, ids, clock_mono_ms() + 2000);
	assert_int_equal(fanout_wait(fo, clock_mono_ms() + 2000), MDM_OK);
	/* identifier 0 (MAC A): slow found it, fast does not know it */
	oc = fanout_outcomes(fo, 0);
	assert_int_equal(oc[0].kind, OUTCOME_FOUND);
	assert_int_equal(oc[0].ndevs, 1);
	assert_string_equal(oc[0].devs[0].vendor_id, "slow-a");
	assert_int_equal(oc[1].kind, OUTCOME_NOT_ENROLLED);
	assert_int_equal(oc[2].kind, OUTCOME_FAILED);
	assert_int_equal(oc[2].fail, FAIL_UNREACHABLE);
	assert_string_equal(oc[2].why, "connection refused");
	assert_int_equal(oc[3].kind, OUTCOME_FAILED);
	assert_int_equal(oc[3].fail, FAIL_INTERNAL);
	assert_string_equal(oc[3].why, "unavailable");
	/* identifier 1 (MAC B): both found their own record */
	oc = fanout_outcomes(fo, 1);
	assert_int_equal(oc[0].kind, OUTCOME_FOUND);
	assert_string_equal(oc[0].devs[0].vendor_id, "slow-b");
	assert_int_equal(oc[1].kind, OUTCOME_FOUND);
	assert_string_equal(oc[1].devs[0].vendor_id, "fast-b");
	assert_int_equal(oc[2].kind, OUTCOME_FAILED);
	assert_int_equal(oc[3].kind, OUTCOME_FAILED);
	fanout_release(fo);
	assert_int_equal(calls(&slow), 2);
	assert_int_equal(calls(&fast), 2);
	fake_join(&slow);
	fake_join(&fast);
	fake_join(&down);
	fake_join(&refuses);
}

static void test_fanout_timeout(void **state)
{
	struct fake silent, fast;
	struct adapter *ads[2] = {&fast.base, &silent.base};
	struct ident id = mk_ident(IDENT_MAC, MAC_A);
	struct fanout *fo;
	struct outcome *oc;
	struct late la = {&silent, MAC_A};
	pthread_t t;
	int64_t t0;

	(void)state;
	fake_init(&silent, "silent", FAKE_NEVER);
	fake_init(&fast, "fast", FAKE_ANSWER);
	fake_add(&fast, "fast-a", MAC_A, TRI_TRUE);
	fo = fanout_create(ads, 2, 1);
	assert_non_null(fo);
	t0 = clock_mono_ms();
	fanout_start(fo, &id, t0 + 100);
	assert_int_equal(fanout_wait(fo, t0 + 100), MDM_ERR_TIMEOUT);
	assert_in_range(clock_mono_ms() - t0, 95, 1000);
	oc = fanout_outcomes(fo, 0);
	assert_int_equal(oc[0].kind, OUTCOME_FOUND);
	assert_string_equal(oc[0].devs[0].vendor_id, "fast-a");
	assert_int_equal(oc[1].kind, OUTCOME_FAILED);
	assert_int_equal(oc[1].fail, FAIL_TIMEOUT);
	assert_string_equal(oc[1].why, "no answer before the deadline");
	fanout_release(fo);
	/* the late answer is the last reference: it frees the fanout (ASan checks) */
	assert_int_equal(pthread_create(&t, NULL, late_answer, &la), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	fake_join(&silent);
	fake_join(&fast);
}

static void test_fanout_late_answer_before_release(void **state)
{
	struct fake silent;
	struct adapter *ads[1] = {&silent.base};
	struct ident id = mk_ident(IDENT_MAC, MAC_A);
	struct fanout *fo;
	struct outcome *oc;
	struct late la = {&silent, MAC_A};
	pthread_t t;

	(void)state;
	fake_init(&silent, "silent", FAKE_NEVER);
	fo = fanout_create(ads, 1, 1);
	assert_non_null(fo);
	fanout_start(fo, &id, clock_mono_ms() + 50);
	assert_int_equal(fanout_wait(fo, clock_mono_ms() + 50), MDM_ERR_TIMEOUT);
	/* the answer comes after the wait but before the release: it is dropped */
	assert_int_equal(pthread_create(&t, NULL, late_answer, &la), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	oc = fanout_outcomes(fo, 0);
	assert_int_equal(oc[0].kind, OUTCOME_FAILED);
	assert_int_equal(oc[0].fail, FAIL_TIMEOUT);
	assert_int_equal(oc[0].ndevs, 0);
	fanout_release(fo);
	fake_join(&silent);
}

static int setup(void **state)
{
	(void)state;
	log_set_level(LOGL_ERR); /* the failures these tests provoke are logged as warnings */
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_miss_then_hit),
	    cmocka_unit_test(test_not_enrolled_negative_ttl),
	    cmocka_unit_test(test_failed_not_cached),
	    cmocka_unit_test(test_refused_call_is_unavailable),
	    cmocka_unit_test(test_partial_not_cached),
	    cmocka_unit_test(test_cache_key),
	    cmocka_unit_test(test_batch),
	    cmocka_unit_test(test_batch_too_big),
	    cmocka_unit_test(test_stale_served_then_refreshed),
	    cmocka_unit_test(test_corrupt_entry_is_a_miss),
	    cmocka_unit_test(test_lock_held_elsewhere),
	    cmocka_unit_test(test_lock_holder_fills),
	    cmocka_unit_test(test_duplicate_in_batch),
	    cmocka_unit_test(test_timeout_then_late_answer),
	    cmocka_unit_test(test_fanout_order),
	    cmocka_unit_test(test_fanout_timeout),
	    cmocka_unit_test(test_fanout_late_answer_before_release),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
