#include "unit.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../../adapters/fanout.h"
#include "../../cache/cache.h"
#include "../../cache/entry.h"
#include "../../core/buf.h"
#include "../../core/clock.h"
#include "../../core/log.h"
#include "../../gateway/verdict/lookup.h"

#define NS "mdmgw"
#define MAC_A "0026B424FEB4"
#define MAC_B "0026B424FEB5"
#define MAC_C "0026B424FEB6"
#define MAC_N "020000000009"

/* --- the injected cache clock --------------------------------------------------------------- */

/*
 * lookup stamps what it writes with clock_wall_ms() (lookup_config has no clock), so the cache's
 * clock is the wall clock plus an offset the tests move: an offset of 61000 makes an answer
 * stored now 61 s old. An entry written while the offset is large is already that old when it
 * is put; a fake adapter rewinds the offset to 0 when it is asked if rewind_on_call is set, so
 * an answer fetched after a jump is stored as new.
 */
static _Atomic int64_t clock_offset;
static atomic_bool rewind_on_call;

static int64_t fake_now(void)
{
	return clock_wall_ms() + atomic_load(&clock_offset);
}

static void set_offset(int64_t ms)
{
	atomic_store(&clock_offset, ms);
}

static struct cache *make_cache(void)
{
	struct cache_mem_config cfg = {.max_entries = 1000,
				       .shards = 4,
				       .max_value = 1 << 20,
				       .max_hold_ms = 0,
				       .now = fake_now};
	struct cache *c;

	set_offset(0);
	atomic_store(&rewind_on_call, false);
	c = cache_mem_create(&cfg);
	assert_non_null(c);
	return c;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* --- a cache that counts get_many round trips, in front of another ------------------------- */

struct counting {
	struct cache base;
	struct cache *inner;
	atomic_int gets;
	void (*on_lock)(void *arg); /* run once, just before the first lock is granted */
	void *lock_arg;
};

static enum mdm_err cnt_get_many(struct cache *c, const char *const *keys, size_t n,
				 struct cache_entry *out)
{
	struct counting *k = c->priv;

	atomic_fetch_add(&k->gets, 1);
	return cache_get_many(k->inner, keys, n, out);
}

static enum mdm_err cnt_put(struct cache *c, const char *key, const void *val, size_t len,
			    const struct cache_times *t)
{
	return cache_put(((struct counting *)c->priv)->inner, key, val, len, t);
}

static enum mdm_err cnt_del(struct cache *c, const char *key)
{
	return cache_del(((struct counting *)c->priv)->inner, key);
}

static enum mdm_err cnt_lock(struct cache *c, const char *key, int64_t ttl_ms)
{
	struct counting *k = c->priv;
	void (*hook)(void *) = k->on_lock;

	k->on_lock = NULL;
	if (hook)
		hook(k->lock_arg);
	return cache_lock(k->inner, key, ttl_ms);
}

static void cnt_unlock(struct cache *c, const char *key)
{
	cache_unlock(((struct counting *)c->priv)->inner, key);
}

static void cnt_stats(struct cache *c, struct cache_stats *out)
{
	cache_stats(((struct counting *)c->priv)->inner, out);
}

static void cnt_destroy(struct cache *c)
{
	cache_destroy(((struct counting *)c->priv)->inner);
}

static const struct cache_ops counting_ops = {
    .get_many = cnt_get_many,
    .put = cnt_put,
    .del = cnt_del,
    .lock = cnt_lock,
    .unlock = cnt_unlock,
    .stats = cnt_stats,
    .destroy = cnt_destroy,
};

static struct cache *counting_wrap(struct counting *k, struct cache *inner)
{
	k->base.ops = &counting_ops;
	k->base.priv = k;
	k->inner = inner;
	k->on_lock = NULL;
	k->lock_arg = NULL;
	atomic_init(&k->gets, 0);
	return &k->base;
}

/* --- a fake adapter that counts its calls --------------------------------------------------- */

enum fake_mode {
	FAKE_ANSWER = 0, /* inline: the devices matching the identifier */
	FAKE_FAIL,	 /* inline: OUTCOME_FAILED / FAIL_UNREACHABLE */
	FAKE_REFUSE,	 /* lookup() returns an error */
	FAKE_NEVER,	 /* accepts, never answers; the test may answer late with late_answer() */
	FAKE_ASYNC,	 /* answers from another thread after delay_ms, once the gate is open */
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
	bool gate_closed; /* FAKE_ASYNC answers wait for fake_set_gate(f, false), 3 s at most */
	atomic_int calls;
	adapter_lookup_cb held_cb;
	void *held_arg;
	bool fail_async; /* FAKE_ASYNC answers with a failure */
	pthread_t threads[FAKE_THREADS];
	int nthreads;
};

/* The answer to id from the devices the fake holds now. */
static void fake_answer(struct fake *f, const struct ident *id, struct outcome *oc)
{
	outcome_init(oc);
	pthread_mutex_lock(&f->mu);
	if (f->mode == FAKE_FAIL || (f->mode == FAKE_ASYNC && f->fail_async)) {
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
	int delay;

	int64_t until = clock_mono_ms() + 3000;

	pthread_mutex_lock(&j->f->mu);
	while (j->f->gate_closed && clock_mono_ms() < until) {
		pthread_mutex_unlock(&j->f->mu);
		sleep_ms(1);
		pthread_mutex_lock(&j->f->mu);
	}
	delay = j->f->delay_ms;
	pthread_mutex_unlock(&j->f->mu);
	sleep_ms(delay);
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
	if (atomic_exchange(&rewind_on_call, false))
		set_offset(0);
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

static void fake_set_gate(struct fake *f, bool closed)
{
	pthread_mutex_lock(&f->mu);
	f->gate_closed = closed;
	pthread_mutex_unlock(&f->mu);
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
	    .ns = NS,
	    .timeout_ms = 1000,
	    .lock_wait_ms = 100,
	    .fresh_ttl_ms = 60000,
	    .stale_ttl_ms = 300000,
	    .negative_ttl_ms = 30000,
	    .max_batch = 10,
	};

	return cfg;
}

/* One identifier; the result is left in *r (merge_result_clear it). Macros: failures name the
 * caller's line. */
#define ask_id(l, id, r) assert_int_equal(lookup_many((l), (id), 1, (r)), MDM_OK)
#define ask(l, mac, r)                                                                             \
	do {                                                                                       \
		struct ident ask_mac_ = mk_ident(IDENT_MAC, (mac));                                \
		ask_id((l), &ask_mac_, (r));                                                       \
	} while (0)

/* The pointer key of what adapter said about MAC mac. */
static void pkey(const char *adapter, const char *mac, char out[CACHE_KEY_MAX + 1])
{
	struct ident id = mk_ident(IDENT_MAC, mac);

	assert_int_equal(lookup_pointer_key(NS, adapter, &id, out, CACHE_KEY_MAX + 1), MDM_OK);
}

/* The key of adapter's record of device vid. */
static void dkey(const char *adapter, const char *vid, char out[CACHE_KEY_MAX + 1])
{
	assert_int_equal(lookup_device_key(NS, adapter, vid, out, CACHE_KEY_MAX + 1), MDM_OK);
}

/* The entry under key (cache_entry_clear it). */
static enum cache_state cached(struct cache *c, const char *key, struct cache_entry *e)
{
	assert_int_equal(cache_get(c, key, e), MDM_OK);
	return e->state;
}

static enum cache_state state_of(struct cache *c, const char *key)
{
	struct cache_entry e;
	enum cache_state st = cached(c, key, &e);

	cache_entry_clear(&e);
	return st;
}

/* Whether the pointer under key is present and names vendor id vid (as a JSON string). */
static bool pointer_names(struct cache *c, const char *key, const char *vid)
{
	struct cache_entry e;
	char quoted[GUID_MAX + 3];
	bool yes;

	snprintf(quoted, sizeof(quoted), "\"%s\"", vid);
	yes = cached(c, key, &e) != CACHE_MISS && strstr(e.val, quoted) != NULL;
	cache_entry_clear(&e);
	return yes;
}

/* The one record stored under a device key, decoded into *d. */
static void stored_device(struct cache *c, const char *key, struct device *d)
{
	struct cache_entry e;
	enum entry_verdict v;
	struct device *ds = NULL;
	size_t n = 0;

	assert_int_not_equal(cached(c, key, &e), CACHE_MISS);
	assert_int_equal(entry_decode(e.val, e.len, &v, &ds, &n), MDM_OK);
	assert_int_equal(v, ENTRY_FOUND);
	assert_int_equal(n, 1);
	*d = ds[0];
	free(ds);
	cache_entry_clear(&e);
}

static unsigned long stat_of(const atomic_ulong *v)
{
	return atomic_load(v);
}

static unsigned long asked(const struct lookup *l, size_t j)
{
	return atomic_load(&lookup_stats(l)->adapter_lookups[j]);
}

/* Waits (at most 2 s) until *v reaches want. */
static bool wait_stat(const atomic_ulong *v, unsigned long want)
{
	int64_t until = clock_mono_ms() + 2000;

	while (atomic_load(v) < want && clock_mono_ms() < until)
		sleep_ms(2);
	return atomic_load(v) >= want;
}

static struct cache_times times_from_now(int64_t fresh_ms, int64_t stale_ms)
{
	struct cache_times t;

	t.fetched_at = fake_now();
	t.fresh_until = t.fetched_at + fresh_ms;
	t.stale_until = t.fresh_until + stale_ms;
	return t;
}

/* --- lookup: creation and keys -------------------------------------------------------------- */

static void test_create_rejects_bad_config(void **state)
{
	struct fake f;
	struct adapter *ads[LOOKUP_MAX_ADAPTERS + 1];
	struct cache *c = make_cache();
	struct lookup_config cfg;
	struct lookup *l;

	(void)state;
	fake_init(&f, "inv", FAKE_ANSWER);
	for (size_t i = 0; i <= LOOKUP_MAX_ADAPTERS; i++)
		ads[i] = &f.base;
	cfg = config(ads, LOOKUP_MAX_ADAPTERS + 1, c);
	assert_null(lookup_create(&cfg));
	cfg = config(ads, 1, c);
	cfg.ns = NULL;
	assert_null(lookup_create(&cfg));
	cfg.ns = "";
	assert_null(lookup_create(&cfg));
	cfg = config(ads, LOOKUP_MAX_ADAPTERS, c);
	l = lookup_create(&cfg);
	assert_non_null(l);
	lookup_destroy(l);
	cache_destroy(c);
	fake_join(&f);
}

static void test_key_helpers(void **state)
{
	struct ident id;
	char key[CACHE_KEY_MAX + 1];
	char *v200 = malloc(201);
	const char *plain = "mdmgw:v1:inv:mac:0026B424FEB4";

	(void)state;
	assert_non_null(v200);
	id = mk_ident(IDENT_MAC, "00:26:b4:24:fe:b4");
	assert_int_equal(lookup_pointer_key("mdmgw", "inv", &id, key, sizeof(key)), MDM_OK);
	assert_string_equal(key, plain);
	assert_int_equal(lookup_pointer_key("other", "mdm2", &id, key, sizeof(key)), MDM_OK);
	assert_string_equal(key, "other:v1:mdm2:mac:0026B424FEB4");
	id = mk_ident(IDENT_USERNAME, "JDoe@Corp.com");
	assert_int_equal(lookup_pointer_key("mdmgw", "inv", &id, key, sizeof(key)), MDM_OK);
	assert_string_equal(key, "mdmgw:v1:inv:username:jdoe@corp.com");
	id = mk_ident(IDENT_GUID, "1759c0fd-c8da-49e8-b14f-19d85acfacea");
	assert_int_equal(lookup_pointer_key("mdmgw", "inv", &id, key, sizeof(key)), MDM_OK);
	assert_string_equal(key, "mdmgw:v1:inv:guid:1759c0fd-c8da-49e8-b14f-19d85acfacea");
	/* a space is no key character: the value is hashed (its normalised form, "john doe") */
	id = mk_ident(IDENT_USERNAME, "John Doe");
	assert_int_equal(lookup_pointer_key("mdmgw", "inv", &id, key, sizeof(key)), MDM_OK);
	assert_string_equal(key,
			    "mdmgw:v1:inv:username:sha256:"
			    "94890005f3b2117a353da7260259531878cae4f541bf59998511887d1f0221a5");
	assert_true(cache_key_valid(key));
	/* nor is a byte past ASCII */
	id = mk_ident(IDENT_USERNAME, "j\xc3\xb6hn");
	assert_int_equal(lookup_pointer_key("mdmgw", "inv", &id, key, sizeof(key)), MDM_OK);
	assert_string_equal(key,
			    "mdmgw:v1:inv:username:sha256:"
			    "d099e941c8648801789318e0c87111759678219e0be85b82237a4c4ace2c0d64");
	/* long values are hashed too */
	memset(v200, 'h', 200);
	v200[200] = '\0';
	id = mk_ident(IDENT_HOSTNAME, v200);
	assert_int_equal(lookup_pointer_key("mdmgw", "inv", &id, key, sizeof(key)), MDM_OK);
	assert_string_equal(key,
			    "mdmgw:v1:inv:hostname:sha256:"
			    "b753db5b761f3e9e2919765a51503c5dad1ad15322e5c2ea95e3a3efac7a385d");
	assert_true(cache_key_valid(key));
	/* device keys: a plain vendor id as is, 128 bytes still plain, longer ones hashed */
	assert_int_equal(lookup_device_key("mdmgw", "inv", "inv-1", key, sizeof(key)), MDM_OK);
	assert_string_equal(key, "mdmgw:v1:inv:dev:inv-1");
	memset(v200, 'x', 200);
	v200[128] = '\0';
	assert_int_equal(lookup_device_key("mdmgw", "inv", v200, key, sizeof(key)), MDM_OK);
	assert_int_equal(strlen(key), strlen("mdmgw:v1:inv:dev:") + 128);
	assert_memory_equal(key + strlen("mdmgw:v1:inv:dev:"), v200, 128);
	v200[128] = 'x';
	v200[129] = '\0';
	assert_int_equal(lookup_device_key("mdmgw", "inv", v200, key, sizeof(key)), MDM_OK);
	assert_string_equal(key,
			    "mdmgw:v1:inv:dev:sha256:"
			    "0ec9eb33e74510bcdd1f2ea55206e82f21649c5c2becbf2b433eb475b34c01bd");
	memset(v200, 'x', 200);
	v200[200] = '\0';
	assert_int_equal(lookup_device_key("mdmgw", "inv", v200, key, sizeof(key)), MDM_OK);
	assert_string_equal(key,
			    "mdmgw:v1:inv:dev:sha256:"
			    "aa20c23e3201834050679e1d88941b9a6fed0557c9a705cb2c315e2e63fd486d");
	assert_true(cache_key_valid(key));
	assert_int_equal(lookup_device_key("mdmgw", "inv", "a b", key, sizeof(key)), MDM_OK);
	assert_int_equal(strncmp(key, "mdmgw:v1:inv:dev:sha256:", 24), 0);
	assert_int_equal(strlen(key), 24 + 64);
	/* too small an output is an error, not a cut key */
	id = mk_ident(IDENT_MAC, MAC_A);
	assert_int_equal(lookup_pointer_key("mdmgw", "inv", &id, key, 20), MDM_ERR_TOOBIG);
	assert_int_equal(lookup_pointer_key("mdmgw", "inv", &id, key, strlen(plain)),
			 MDM_ERR_TOOBIG);
	assert_int_equal(lookup_pointer_key("mdmgw", "inv", &id, key, strlen(plain) + 1), MDM_OK);
	assert_string_equal(key, plain);
	assert_int_equal(lookup_device_key("mdmgw", "inv", "inv-1", key, 10), MDM_ERR_TOOBIG);
	free(v200);
}

/*
 * BUG: gateway/verdict/lookup.c key_value(), `if (plain_value(v, len))` (line 67 at d2ec2a0): a
 * value that is itself plain text of the form "sha256:<64 hex>" is used as is, so it gets the very
 * key of the value it is the hash of. Input: user names "John Doe" and "sha256:9489...21a5" (both
 * valid user names). Expected: two different pointer keys, and each identifier answered for itself.
 * Actual: one key, "mdmgw:v1:inv:username:sha256:9489...21a5"; once "John Doe" is cached, a lookup
 * of the other user name is served John Doe's device without asking the adapter (cache poisoning by
 * a chosen identifier; the reverse order serves "John Doe" someone else's answer).
 */
static void test_hashed_key_collision(void **state)
{
	struct fake f;
	struct adapter *ads[1] = {&f.base};
	struct cache *c = make_cache();
	struct lookup_config cfg = config(ads, 1, c);
	struct lookup *l;
	struct merge_result r;
	struct device *d;
	struct ident john = mk_ident(IDENT_USERNAME, "John Doe");
	struct ident lookalike =
	    mk_ident(IDENT_USERNAME,
		     "sha256:94890005f3b2117a353da7260259531878cae4f541bf59998511887d1f0221a5");
	char k1[CACHE_KEY_MAX + 1], k2[CACHE_KEY_MAX + 1];
	unsigned long ndevs;
	int n;

	(void)state;
	fake_init(&f, "inv", FAKE_ANSWER);
	d = fake_add(&f, "john-1", MAC_A, TRI_TRUE);
	pthread_mutex_lock(&f.mu);
	snprintf(d->username, sizeof(d->username), "john doe");
	pthread_mutex_unlock(&f.mu);
	l = lookup_create(&cfg);
	assert_non_null(l);
	ask_id(l, &john, &r);
	assert_int_equal(r.verdict, MERGE_FOUND);
	assert_string_equal(r.devs[0].vendor_id, "john-1");
	merge_result_clear(&r);
	ask_id(l, &lookalike, &r);
	ndevs = r.ndevs;
	merge_result_clear(&r);
	n = calls(&f);
	assert_int_equal(lookup_pointer_key(NS, "inv", &john, k1, sizeof(k1)), MDM_OK);
	assert_int_equal(lookup_pointer_key(NS, "inv", &lookalike, k2, sizeof(k2)), MDM_OK);
	lookup_destroy(l);
	cache_destroy(c);
	fake_join(&f);
	assert_string_not_equal(k1, k2);
	assert_int_equal(ndevs, 0); /* nobody has that user name */
	assert_int_equal(n, 2);	    /* and the adapter was asked about it */
}

/* --- lookup: misses, hits, negative answers, failures --------------------------------------- */

static void test_miss_stores_then_fresh_hit(void **state)
{
	struct fake inv, mdm;
	struct adapter *ads[2] = {&inv.base, &mdm.base};
	struct counting cnt;
	struct cache *mem = make_cache();
	struct cache *c = counting_wrap(&cnt, mem);
	struct lookup_config cfg = config(ads, 2, c);
	struct lookup *l;
	struct merge_result r;
	struct cache_entry e;
	struct device d;
	const struct lookup_stats *st;
	char k[CACHE_KEY_MAX + 1];

	(void)state;
	fake_init(&inv, "inv", FAKE_ANSWER);
	fake_init(&mdm, "mdm", FAKE_ANSWER);
	fake_add(&inv, "inv-1", MAC_A, TRI_TRUE);
	fake_add(&mdm, "mdm-7", MAC_A, TRI_FALSE);
	l = lookup_create(&cfg);
	assert_non_null(l);
	st = lookup_stats(l);
	ask(l, "00:26:b4:24:fe:b4", &r);
	assert_int_equal(r.verdict, MERGE_FOUND);
	assert_false(r.partial);
	assert_int_equal(r.ndevs, 1); /* one device: both records share the MAC */
	assert_string_equal(r.devs[0].vendor_id, "inv-1");
	assert_int_equal(r.devs[0].compliant, TRI_FALSE); /* compliant_requires_all */
	merge_result_clear(&r);
	assert_int_equal(calls(&inv), 1);
	assert_int_equal(calls(&mdm), 1);
	assert_int_equal(asked(l, 0), 1);
	assert_int_equal(asked(l, 1), 1);
	assert_int_equal(stat_of(&st->misses), 2);
	assert_int_equal(stat_of(&st->fresh_hits), 0);
	/* each source's pointer names its own vendor id, fresh then stale for the TTLs */
	pkey("inv", MAC_A, k);
	assert_string_equal(k, "mdmgw:v1:inv:mac:" MAC_A);
	assert_int_equal(cached(c, k, &e), CACHE_FRESH);
	assert_int_equal(e.fresh_until - e.fetched_at, 60000);
	assert_int_equal(e.stale_until - e.fresh_until, 300000);
	cache_entry_clear(&e);
	assert_true(pointer_names(c, k, "inv-1"));
	assert_false(pointer_names(c, k, "mdm-7"));
	pkey("mdm", MAC_A, k);
	assert_true(pointer_names(c, k, "mdm-7"));
	assert_false(pointer_names(c, k, "inv-1"));
	/* and each source's record is stored under its own device key, as it said it */
	dkey("inv", "inv-1", k);
	assert_string_equal(k, "mdmgw:v1:inv:dev:inv-1");
	assert_int_equal(cached(c, k, &e), CACHE_FRESH);
	assert_int_equal(e.fresh_until - e.fetched_at, 60000);
	assert_int_equal(e.stale_until - e.fresh_until, 300000);
	cache_entry_clear(&e);
	stored_device(c, k, &d);
	assert_string_equal(d.vendor_id, "inv-1");
	assert_string_equal(d.source, "inv");
	assert_int_equal(d.nmacs, 1);
	assert_string_equal(d.macs[0], MAC_A);
	assert_int_equal(d.compliant, TRI_TRUE);
	dkey("mdm", "mdm-7", k);
	stored_device(c, k, &d);
	assert_string_equal(d.vendor_id, "mdm-7");
	assert_int_equal(d.compliant, TRI_FALSE);
	dkey("inv", "mdm-7", k);
	assert_int_equal(state_of(c, k), CACHE_MISS);
	dkey("mdm", "inv-1", k);
	assert_int_equal(state_of(c, k), CACHE_MISS);
	/* the second call is a fresh hit for both pairs: no adapter asked, two round trips */
	atomic_store(&cnt.gets, 0);
	ask(l, MAC_A, &r);
	assert_int_equal(atomic_load(&cnt.gets), 2);
	assert_int_equal(r.verdict, MERGE_FOUND);
	assert_false(r.partial);
	assert_int_equal(r.ndevs, 1);
	assert_string_equal(r.devs[0].vendor_id, "inv-1");
	assert_string_equal(r.devs[0].macs[0], MAC_A);
	assert_int_equal(r.devs[0].compliant, TRI_FALSE);
	merge_result_clear(&r);
	assert_int_equal(calls(&inv), 1);
	assert_int_equal(calls(&mdm), 1);
	assert_int_equal(asked(l, 0), 1);
	assert_int_equal(asked(l, 1), 1);
	assert_int_equal(stat_of(&st->fresh_hits), 2);
	assert_int_equal(stat_of(&st->misses), 2);
	assert_int_equal(stat_of(&st->stale_hits), 0);
	lookup_destroy(l);
	cache_destroy(c);
	fake_join(&inv);
	fake_join(&mdm);
}

/*
 * Also a regression test: read_pairs() once returned MDM_ERR_NOMEM for a cached "not enrolled"
 * pointer (its error variable was never reset when the pointer named no vendor id), so the
 * second lookup below failed.
 */
static void test_not_enrolled_negative_ttl(void **state)
{
	struct fake f;
	struct adapter *ads[1] = {&f.base};
	struct cache *c = make_cache();
	struct lookup_config cfg = config(ads, 1, c);
	struct lookup *l;
	struct merge_result r;
	struct cache_entry e;
	char k[CACHE_KEY_MAX + 1];

	(void)state;
	fake_init(&f, "inv", FAKE_ANSWER);
	fake_add(&f, "inv-1", MAC_A, TRI_TRUE);
	l = lookup_create(&cfg);
	assert_non_null(l);
	ask(l, MAC_B, &r);
	assert_int_equal(r.verdict, MERGE_NOT_ENROLLED);
	assert_int_equal(r.ndevs, 0);
	merge_result_clear(&r);
	assert_int_equal(calls(&f), 1);
	pkey("inv", MAC_B, k);
	assert_int_equal(cached(c, k, &e), CACHE_FRESH);
	assert_int_equal(e.fresh_until - e.fetched_at, 30000); /* the negative TTL */
	assert_int_equal(e.stale_until, e.fresh_until);	       /* never served stale */
	assert_null(strstr(e.val, "inv-1"));
	cache_entry_clear(&e);
	/* past the negative TTL the adapter is asked again, and the answer stored again */
	set_offset(30001);
	assert_int_equal(state_of(c, k), CACHE_MISS);
	atomic_store(&rewind_on_call, true);
	ask(l, MAC_B, &r);
	assert_int_equal(r.verdict, MERGE_NOT_ENROLLED);
	merge_result_clear(&r);
	assert_int_equal(calls(&f), 2);
	assert_int_equal(asked(l, 0), 2);
	assert_int_equal(stat_of(&lookup_stats(l)->misses), 2);
	assert_int_equal(state_of(c, k), CACHE_FRESH);
	/* before it runs out, the stored "not enrolled" answers and the adapter is not asked */
	set_offset(20000);
	ask(l, MAC_B, &r);
	assert_int_equal(r.verdict, MERGE_NOT_ENROLLED);
	assert_int_equal(r.ndevs, 0);
	merge_result_clear(&r);
	assert_int_equal(calls(&f), 2);
	assert_int_equal(asked(l, 0), 2);
	assert_int_equal(stat_of(&lookup_stats(l)->fresh_hits), 1);
	lookup_destroy(l);
	cache_destroy(c);
	fake_join(&f);
}

/*
 * A merged answer is fresh only as long as its least fresh part: a found record (60 s) merged
 * with another source's "not enrolled" (30 s) must be fresh until the 30 s run out, or a device
 * enrolled in the second MDM meanwhile stays unseen for the longer TTL (the ISE API caches the
 * rendered answer until fresh_until).
 */
static void test_merged_fresh_until_is_the_earliest(void **state)
{
	struct fake inv, mdm;
	struct adapter *ads[2] = {&inv.base, &mdm.base};
	struct cache *c = make_cache();
	struct lookup_config cfg = config(ads, 2, c);
	struct lookup *l;
	struct merge_result r;
	struct cache_entry found, none;
	char k[CACHE_KEY_MAX + 1];
	int64_t before;

	(void)state;
	fake_init(&inv, "inv", FAKE_ANSWER);
	fake_init(&mdm, "mdm", FAKE_ANSWER);
	fake_add(&inv, "inv-1", MAC_A, TRI_TRUE);
	l = lookup_create(&cfg);
	assert_non_null(l);
	/* asked just now: nothing of it was cached, so nothing may be cached from it either */
	ask(l, MAC_A, &r);
	assert_int_equal(r.verdict, MERGE_FOUND);
	assert_int_equal(r.fresh_until, 0);
	merge_result_clear(&r);
	pkey("inv", MAC_A, k);
	assert_int_equal(cached(c, k, &found), CACHE_FRESH);
	pkey("mdm", MAC_A, k);
	assert_int_equal(cached(c, k, &none), CACHE_FRESH);
	assert_int_equal(found.fresh_until - found.fetched_at, 60000);
	assert_int_equal(none.fresh_until - none.fetched_at, 30000);
	/* from the cache: fresh until the not-enrolled part runs out, not the found one */
	before = fake_now();
	ask(l, MAC_A, &r);
	assert_int_equal(r.verdict, MERGE_FOUND);
	assert_int_equal(calls(&inv), 1);
	assert_int_equal(calls(&mdm), 1);
	assert_int_equal(r.fresh_until, none.fresh_until);
	assert_true(r.fresh_until < found.fresh_until);
	assert_true(r.fresh_until <= before + 30000);
	merge_result_clear(&r);
	/* once the short part has run out it is asked again, and the answer is new again */
	set_offset(30001);
	atomic_store(&rewind_on_call, true);
	ask(l, MAC_A, &r);
	assert_int_equal(r.verdict, MERGE_FOUND);
	assert_int_equal(calls(&mdm), 2);
	assert_int_equal(calls(&inv), 1);
	assert_int_equal(r.fresh_until, 0);
	merge_result_clear(&r);
	cache_entry_clear(&found);
	cache_entry_clear(&none);
	lookup_destroy(l);
	cache_destroy(c);
	fake_join(&inv);
	fake_join(&mdm);
}

static void test_failing_adapter_alone(void **state)
{
	struct fake f;
	struct adapter *ads[1] = {&f.base};
	struct cache *c = make_cache();
	struct lookup_config cfg = config(ads, 1, c);
	struct lookup *l;
	struct merge_result r;
	char k[CACHE_KEY_MAX + 1];

	(void)state;
	fake_init(&f, "down", FAKE_FAIL);
	l = lookup_create(&cfg);
	assert_non_null(l);
	pkey("down", MAC_A, k);
	ask(l, MAC_A, &r);
	assert_int_equal(r.verdict, MERGE_UNAVAILABLE);
	assert_int_equal(r.ndevs, 0);
	merge_result_clear(&r);
	assert_int_equal(state_of(c, k), CACHE_MISS); /* failures are never cached */
	ask(l, MAC_A, &r);
	assert_int_equal(r.verdict, MERGE_UNAVAILABLE);
	merge_result_clear(&r);
	assert_int_equal(calls(&f), 2); /* asked again: nothing was cached */
	assert_int_equal(asked(l, 0), 2);
	assert_int_equal(stat_of(&lookup_stats(l)->unavailable), 2);
	assert_int_equal(stat_of(&lookup_stats(l)->fresh_hits), 0);
	/* the source comes back: the answer is found and now cached */
	fake_set_mode(&f, FAKE_ANSWER, 0);
	fake_add(&f, "d-1", MAC_A, TRI_TRUE);
	ask(l, MAC_A, &r);
	assert_int_equal(r.verdict, MERGE_FOUND);
	assert_string_equal(r.devs[0].vendor_id, "d-1");
	merge_result_clear(&r);
	assert_true(pointer_names(c, k, "d-1"));
	assert_int_equal(state_of(c, k), CACHE_FRESH);
	assert_int_equal(calls(&f), 3);
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
	char k[CACHE_KEY_MAX + 1];

	(void)state;
	fake_init(&f, "refuses", FAKE_REFUSE);
	l = lookup_create(&cfg);
	assert_non_null(l);
	ask(l, MAC_A, &r);
	assert_int_equal(r.verdict, MERGE_UNAVAILABLE);
	merge_result_clear(&r);
	assert_int_equal(calls(&f), 1);
	pkey("refuses", MAC_A, k);
	assert_int_equal(state_of(c, k), CACHE_MISS);
	lookup_destroy(l);
	cache_destroy(c);
	fake_join(&f);
}

static void test_partial_asks_only_the_failed(void **state)
{
	struct fake ok, down;
	struct adapter *ads[2] = {&ok.base, &down.base};
	struct cache *c = make_cache();
	struct lookup_config cfg = config(ads, 2, c);
	struct lookup *l;
	struct merge_result r;
	char kok[CACHE_KEY_MAX + 1], kdown[CACHE_KEY_MAX + 1], k[CACHE_KEY_MAX + 1];

	(void)state;
	fake_init(&ok, "ok", FAKE_ANSWER);
	fake_init(&down, "down", FAKE_FAIL);
	fake_add(&ok, "ok-1", MAC_A, TRI_TRUE);
	l = lookup_create(&cfg);
	assert_non_null(l);
	pkey("ok", MAC_A, kok);
	pkey("down", MAC_A, kdown);
	ask(l, MAC_A, &r);
	assert_int_equal(r.verdict, MERGE_FOUND);
	assert_true(r.partial);
	assert_int_equal(r.ndevs, 1);
	assert_string_equal(r.devs[0].vendor_id, "ok-1");
	merge_result_clear(&r);
	assert_int_equal(stat_of(&lookup_stats(l)->partial), 1);
	/* what A said is stored, B's failure is not */
	assert_true(pointer_names(c, kok, "ok-1"));
	dkey("ok", "ok-1", k);
	assert_int_equal(state_of(c, k), CACHE_FRESH);
	assert_int_equal(state_of(c, kdown), CACHE_MISS);
	/* the next lookup asks only B */
	ask(l, MAC_A, &r);
	assert_int_equal(r.verdict, MERGE_FOUND);
	assert_true(r.partial);
	assert_string_equal(r.devs[0].vendor_id, "ok-1");
	merge_result_clear(&r);
	assert_int_equal(calls(&ok), 1);
	assert_int_equal(calls(&down), 2);
	assert_int_equal(asked(l, 0), 1);
	assert_int_equal(asked(l, 1), 2);
	assert_int_equal(stat_of(&lookup_stats(l)->fresh_hits), 1);
	assert_int_equal(stat_of(&lookup_stats(l)->partial), 2);
	/* B comes back, knows nothing of it: a whole answer, and now B's pair is stored */
	fake_set_mode(&down, FAKE_ANSWER, 0);
	ask(l, MAC_A, &r);
	assert_int_equal(r.verdict, MERGE_FOUND);
	assert_false(r.partial);
	merge_result_clear(&r);
	assert_int_equal(calls(&ok), 1);
	assert_int_equal(calls(&down), 3);
	assert_int_equal(state_of(c, kdown), CACHE_FRESH);
	assert_false(pointer_names(c, kdown, "ok-1"));
	lookup_destroy(l);
	/* the policy may turn partial answers into unavailable ones */
	fake_set_mode(&down, FAKE_FAIL, 0);
	assert_int_equal(cache_del(c, kdown), MDM_OK);
	cfg.policy.partial_is_unavailable = true;
	l = lookup_create(&cfg);
	assert_non_null(l);
	ask(l, MAC_A, &r);
	assert_int_equal(r.verdict, MERGE_UNAVAILABLE);
	merge_result_clear(&r);
	assert_int_equal(calls(&ok), 1);
	assert_int_equal(calls(&down), 4);
	lookup_destroy(l);
	cache_destroy(c);
	fake_join(&ok);
	fake_join(&down);
}

/* --- GUID routing: a GUID is asked of the MDM that reported it ------------------------------- */

#define GUID_A "1759c0fd-c8da-49e8-b14f-19d85acfacea"

static void test_guid_routed_to_its_mdm(void **state)
{
	struct fake owner, other;
	struct adapter *ads[2] = {&other.base, &owner.base};
	struct cache *c = make_cache();
	struct lookup_config cfg = config(ads, 2, c);
	struct lookup *l;
	struct merge_result r;
	struct ident g = mk_ident(IDENT_GUID, GUID_A);
	struct ident g2 = mk_ident(IDENT_GUID, "00000000-0000-4000-8000-0000000000ff");
	struct device *d;
	size_t removed = 0;

	(void)state;
	fake_init(&owner, "owner", FAKE_ANSWER);
	fake_init(&other, "other", FAKE_ANSWER);
	d = fake_add(&owner, "own-1", MAC_A, TRI_TRUE);
	pthread_mutex_lock(&owner.mu);
	snprintf(d->guid, sizeof(d->guid), "%s", "1759c0fd-c8da-49e8-b14f-19d85acfacea");
	pthread_mutex_unlock(&owner.mu);
	l = lookup_create(&cfg);
	assert_non_null(l);
	/* a MAC query teaches the route (any answer carrying the GUID does) */
	ask(l, MAC_A, &r);
	assert_int_equal(r.verdict, MERGE_FOUND);
	merge_result_clear(&r);
	assert_int_equal(calls(&other), 1);
	/* the other MDM goes down: the GUID query is not asked of it, the answer is whole */
	fake_set_mode(&other, FAKE_FAIL, 0);
	ask_id(l, &g, &r);
	assert_int_equal(r.verdict, MERGE_FOUND);
	assert_false(r.partial);
	assert_string_equal(r.devs[0].vendor_id, "own-1");
	merge_result_clear(&r);
	assert_int_equal(calls(&other), 1);
	assert_int_equal(stat_of(&lookup_stats(l)->guid_routed), 1);
	/* a GUID nobody reported is asked of every adapter: the one down makes it unavailable */
	ask_id(l, &g2, &r);
	assert_int_equal(r.verdict, MERGE_UNAVAILABLE);
	merge_result_clear(&r);
	assert_int_equal(calls(&other), 2);
	/* the owner forgets the device: its "not enrolled" removes the route, so the next GUID
	 * query (cache purged) asks every adapter again */
	pthread_mutex_lock(&owner.mu);
	owner.ndevs = 0;
	pthread_mutex_unlock(&owner.mu);
	fake_set_mode(&other, FAKE_ANSWER, 0);
	assert_int_equal(lookup_purge(l, &g, &removed), MDM_OK);
	ask_id(l, &g, &r);
	assert_int_equal(r.verdict, MERGE_NOT_ENROLLED);
	merge_result_clear(&r);
	assert_int_equal(calls(&other), 2);
	assert_int_equal(lookup_purge(l, &g, &removed), MDM_OK);
	ask_id(l, &g, &r);
	assert_int_equal(r.verdict, MERGE_NOT_ENROLLED);
	merge_result_clear(&r);
	assert_int_equal(calls(&other), 3);
	lookup_destroy(l);
	cache_destroy(c);
	fake_join(&owner);
	fake_join(&other);
}

/* --- lookup: what one source says never erases another's ------------------------------------ */

static void test_sources_keep_their_own_records(void **state)
{
	struct fake a, b;
	struct adapter *ads[2] = {&a.base, &b.base};
	struct cache *c = make_cache();
	struct lookup_config cfg = config(ads, 2, c);
	struct lookup *l;
	struct merge_result r;
	struct cache_entry before, after, pb_before, pb_after;
	struct device *da, d;
	char ka[CACHE_KEY_MAX + 1], kb[CACHE_KEY_MAX + 1], pa[CACHE_KEY_MAX + 1],
	    pb[CACHE_KEY_MAX + 1];

	(void)state;
	fake_init(&a, "inv", FAKE_ANSWER);
	fake_init(&b, "mdm", FAKE_ANSWER);
	da = fake_add(&a, "inv-1", MAC_A, TRI_TRUE);
	fake_add(&b, "mdm-7", MAC_A, TRI_TRUE);
	l = lookup_create(&cfg);
	assert_non_null(l);
	ask(l, MAC_A, &r);
	assert_int_equal(r.verdict, MERGE_FOUND);
	assert_int_equal(r.ndevs, 1);
	assert_int_equal(r.devs[0].compliant, TRI_TRUE);
	merge_result_clear(&r);
	dkey("inv", "inv-1", ka);
	dkey("mdm", "mdm-7", kb);
	pkey("inv", MAC_A, pa);
	pkey("mdm", MAC_A, pb);
	assert_int_equal(cached(c, kb, &before), CACHE_FRESH);
	assert_int_equal(cached(c, pb, &pb_before), CACHE_FRESH);
	/* A's device changes, and only A's pointer goes: only A is asked, B's data stays */
	pthread_mutex_lock(&a.mu);
	da->compliant = TRI_FALSE;
	snprintf(da->failure_reason, sizeof(da->failure_reason), "no passcode");
	pthread_mutex_unlock(&a.mu);
	assert_int_equal(cache_del(c, pa), MDM_OK);
	sleep_ms(3); /* a rewrite of B's entries would show in fetched_at */
	ask(l, MAC_A, &r);
	assert_int_equal(r.verdict, MERGE_FOUND);
	assert_false(r.partial);
	assert_int_equal(r.ndevs, 1);
	assert_int_equal(r.devs[0].compliant, TRI_FALSE);
	assert_string_equal(r.devs[0].failure_reason, "inv: no passcode");
	merge_result_clear(&r);
	assert_int_equal(calls(&a), 2);
	assert_int_equal(calls(&b), 1);
	assert_int_equal(asked(l, 0), 2);
	assert_int_equal(asked(l, 1), 1);
	stored_device(c, ka, &d);
	assert_int_equal(d.compliant, TRI_FALSE);
	assert_true(pointer_names(c, pa, "inv-1"));
	/* B's record and pointer: still there, byte for byte, with their old times */
	assert_int_equal(cached(c, kb, &after), CACHE_FRESH);
	assert_int_equal(after.len, before.len);
	assert_memory_equal(after.val, before.val, before.len);
	assert_int_equal(after.fetched_at, before.fetched_at);
	assert_int_equal(after.stale_until, before.stale_until);
	assert_int_equal(cached(c, pb, &pb_after), CACHE_FRESH);
	assert_int_equal(pb_after.len, pb_before.len);
	assert_memory_equal(pb_after.val, pb_before.val, pb_before.len);
	assert_int_equal(pb_after.fetched_at, pb_before.fetched_at);
	stored_device(c, kb, &d);
	assert_int_equal(d.compliant, TRI_TRUE);
	cache_entry_clear(&before);
	cache_entry_clear(&after);
	cache_entry_clear(&pb_before);
	cache_entry_clear(&pb_after);
	/* A now forgets the device: its "not enrolled" still leaves B's record in place */
	pthread_mutex_lock(&a.mu);
	a.ndevs = 0;
	pthread_mutex_unlock(&a.mu);
	assert_int_equal(cache_del(c, pa), MDM_OK);
	ask(l, MAC_A, &r);
	assert_int_equal(r.verdict, MERGE_FOUND);
	assert_int_equal(r.ndevs, 1);
	assert_string_equal(r.devs[0].vendor_id, "mdm-7");
	merge_result_clear(&r);
	assert_int_equal(calls(&a), 3);
	assert_int_equal(calls(&b), 1);
	assert_false(pointer_names(c, pa, "inv-1"));
	assert_true(pointer_names(c, pb, "mdm-7"));
	assert_int_equal(state_of(c, kb), CACHE_FRESH);
	lookup_destroy(l);
	cache_destroy(c);
	fake_join(&a);
	fake_join(&b);
}

static void test_mac_repointed(void **state)
{
	struct fake f;
	struct adapter *ads[1] = {&f.base};
	struct cache *c = make_cache();
	struct lookup_config cfg = config(ads, 1, c);
	struct lookup *l;
	struct merge_result r;
	struct device *d1;
	char k[CACHE_KEY_MAX + 1], k2[CACHE_KEY_MAX + 1];

	(void)state;
	fake_init(&f, "inv", FAKE_ANSWER);
	d1 = fake_add(&f, "dev-1", MAC_A, TRI_TRUE);
	l = lookup_create(&cfg);
	assert_non_null(l);
	pkey("inv", MAC_A, k);
	ask(l, MAC_A, &r);
	assert_int_equal(r.ndevs, 1);
	assert_string_equal(r.devs[0].vendor_id, "dev-1");
	merge_result_clear(&r);
	assert_true(pointer_names(c, k, "dev-1"));
	/* at the source MAC A moves from dev-1 to dev-2 */
	pthread_mutex_lock(&f.mu);
	d1->nmacs = 0;
	memset(d1->macs, 0, sizeof(d1->macs));
	assert_int_equal(device_add_mac(d1, MAC_B), MDM_OK);
	pthread_mutex_unlock(&f.mu);
	fake_add(&f, "dev-2", MAC_A, TRI_FALSE);
	/* still fresh: the cached pointer answers */
	ask(l, MAC_A, &r);
	assert_string_equal(r.devs[0].vendor_id, "dev-1");
	merge_result_clear(&r);
	assert_int_equal(calls(&f), 1);
	/* past fresh + stale the pointer is gone; the next lookup re-points MAC A */
	set_offset(60000 + 300000 + 1);
	assert_int_equal(state_of(c, k), CACHE_MISS);
	atomic_store(&rewind_on_call, true);
	ask(l, MAC_A, &r);
	assert_int_equal(r.verdict, MERGE_FOUND);
	assert_int_equal(r.ndevs, 1);
	assert_string_equal(r.devs[0].vendor_id, "dev-2");
	assert_int_equal(r.devs[0].compliant, TRI_FALSE);
	merge_result_clear(&r);
	assert_int_equal(calls(&f), 2);
	assert_int_equal(state_of(c, k), CACHE_FRESH);
	assert_true(pointer_names(c, k, "dev-2"));
	assert_false(pointer_names(c, k, "dev-1"));
	dkey("inv", "dev-2", k2);
	assert_int_equal(state_of(c, k2), CACHE_FRESH);
	/* and it stays re-pointed */
	ask(l, MAC_A, &r);
	assert_int_equal(r.ndevs, 1);
	assert_string_equal(r.devs[0].vendor_id, "dev-2");
	merge_result_clear(&r);
	assert_int_equal(calls(&f), 2);
	lookup_destroy(l);
	cache_destroy(c);
	fake_join(&f);
}

static void test_device_record_missing(void **state)
{
	struct fake f;
	struct adapter *ads[1] = {&f.base};
	struct cache *c = make_cache();
	struct lookup_config cfg = config(ads, 1, c);
	struct lookup *l;
	struct merge_result r;
	struct ident user = mk_ident(IDENT_USERNAME, "jdoe");
	struct device *d;
	char pk[CACHE_KEY_MAX + 1], k1[CACHE_KEY_MAX + 1], k2[CACHE_KEY_MAX + 1];

	(void)state;
	fake_init(&f, "inv", FAKE_ANSWER);
	/* one user, two devices: the pointer names both records */
	d = fake_add(&f, "u-1", MAC_A, TRI_TRUE);
	pthread_mutex_lock(&f.mu);
	snprintf(d->username, sizeof(d->username), "jdoe");
	pthread_mutex_unlock(&f.mu);
	d = fake_add(&f, "u-2", MAC_B, TRI_FALSE);
	pthread_mutex_lock(&f.mu);
	snprintf(d->username, sizeof(d->username), "jdoe");
	pthread_mutex_unlock(&f.mu);
	l = lookup_create(&cfg);
	assert_non_null(l);
	ask_id(l, &user, &r);
	assert_int_equal(r.verdict, MERGE_FOUND);
	assert_int_equal(r.ndevs, 2);
	merge_result_clear(&r);
	assert_int_equal(lookup_pointer_key(NS, "inv", &user, pk, sizeof(pk)), MDM_OK);
	assert_string_equal(pk, "mdmgw:v1:inv:username:jdoe");
	assert_true(pointer_names(c, pk, "u-1"));
	assert_true(pointer_names(c, pk, "u-2"));
	dkey("inv", "u-1", k1);
	dkey("inv", "u-2", k2);
	/* one record goes (evicted), its pointer stays: a miss, never a one-device answer */
	assert_int_equal(cache_del(c, k2), MDM_OK);
	assert_int_equal(state_of(c, pk), CACHE_FRESH);
	ask_id(l, &user, &r);
	assert_int_equal(r.verdict, MERGE_FOUND);
	assert_int_equal(r.ndevs, 2);
	assert_true((strcmp(r.devs[0].vendor_id, "u-2") == 0) ^
		    (strcmp(r.devs[1].vendor_id, "u-2") == 0));
	merge_result_clear(&r);
	assert_int_equal(calls(&f), 2);
	assert_int_equal(stat_of(&lookup_stats(l)->misses), 2);
	assert_int_equal(state_of(c, k2), CACHE_FRESH); /* stored again */
	/* the same with a MAC and its only record */
	ask(l, MAC_A, &r);
	assert_int_equal(r.ndevs, 1);
	assert_string_equal(r.devs[0].vendor_id, "u-1");
	merge_result_clear(&r);
	assert_int_equal(calls(&f), 3);
	assert_int_equal(cache_del(c, k1), MDM_OK);
	pkey("inv", MAC_A, pk);
	assert_int_equal(state_of(c, pk), CACHE_FRESH);
	ask(l, MAC_A, &r);
	assert_int_equal(r.verdict, MERGE_FOUND);
	assert_int_equal(r.ndevs, 1);
	assert_string_equal(r.devs[0].vendor_id, "u-1");
	merge_result_clear(&r);
	assert_int_equal(calls(&f), 4);
	assert_int_equal(state_of(c, k1), CACHE_FRESH);
	assert_int_equal(stat_of(&lookup_stats(l)->fresh_hits), 0);
	ask(l, MAC_A, &r);
	assert_string_equal(r.devs[0].vendor_id, "u-1");
	merge_result_clear(&r);
	assert_int_equal(calls(&f), 4);
	assert_int_equal(stat_of(&lookup_stats(l)->fresh_hits), 1);
	lookup_destroy(l);
	cache_destroy(c);
	fake_join(&f);
}

static void test_corrupt_entries_are_misses(void **state)
{
	struct fake f;
	struct adapter *ads[1] = {&f.base};
	struct cache *c = make_cache();
	struct lookup_config cfg = config(ads, 1, c);
	struct lookup *l;
	struct merge_result r;
	struct cache_times t = times_from_now(60000, 300000);
	const char *junk = "{\"r\":\"found\",\"ids\":[";
	const char *junk2 = "{\"v\":99,\"r\":\"found\"}";
	char pk[CACHE_KEY_MAX + 1], dk[CACHE_KEY_MAX + 1];

	(void)state;
	fake_init(&f, "inv", FAKE_ANSWER);
	fake_add(&f, "inv-1", MAC_A, TRI_TRUE);
	pkey("inv", MAC_A, pk);
	dkey("inv", "inv-1", dk);
	assert_int_equal(cache_put(c, pk, junk, strlen(junk), &t), MDM_OK);
	assert_int_equal(state_of(c, pk), CACHE_FRESH);
	l = lookup_create(&cfg);
	assert_non_null(l);
	ask(l, MAC_A, &r);
	assert_int_equal(r.verdict, MERGE_FOUND);
	assert_int_equal(r.ndevs, 1);
	assert_string_equal(r.devs[0].vendor_id, "inv-1");
	merge_result_clear(&r);
	assert_int_equal(calls(&f), 1);
	assert_int_equal(stat_of(&lookup_stats(l)->bad_entries), 1);
	assert_int_equal(stat_of(&lookup_stats(l)->misses), 1);
	/* the good answer replaced the bad value */
	assert_true(pointer_names(c, pk, "inv-1"));
	ask(l, MAC_A, &r);
	assert_string_equal(r.devs[0].vendor_id, "inv-1");
	merge_result_clear(&r);
	assert_int_equal(calls(&f), 1);
	assert_int_equal(stat_of(&lookup_stats(l)->fresh_hits), 1);
	assert_int_equal(stat_of(&lookup_stats(l)->bad_entries), 1);
	/* a corrupt device record under a good pointer is a miss too */
	assert_int_equal(cache_put(c, dk, junk2, strlen(junk2), &t), MDM_OK);
	ask(l, MAC_A, &r);
	assert_int_equal(r.verdict, MERGE_FOUND);
	assert_string_equal(r.devs[0].vendor_id, "inv-1");
	merge_result_clear(&r);
	assert_int_equal(calls(&f), 2);
	assert_int_equal(stat_of(&lookup_stats(l)->bad_entries), 2);
	assert_int_equal(stat_of(&lookup_stats(l)->misses), 2);
	ask(l, MAC_A, &r);
	assert_string_equal(r.devs[0].vendor_id, "inv-1");
	merge_result_clear(&r);
	assert_int_equal(calls(&f), 2);
	assert_int_equal(stat_of(&lookup_stats(l)->fresh_hits), 2);
	lookup_destroy(l);
	cache_destroy(c);
	fake_join(&f);
}

/* --- lookup: stale answers, locks, single flight -------------------------------------------- */

struct reader {
	struct lookup *l;
	const char *mac;
	enum mdm_err err;
	enum merge_verdict verdict;
	enum tri compliant;
	char vid[GUID_MAX + 1];
	int64_t took;
	pthread_barrier_t *start;
};

static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	struct ident id = mk_ident(IDENT_MAC, rd->mac);
	struct merge_result r;
	int64_t t0;

	if (rd->start)
		pthread_barrier_wait(rd->start);
	t0 = clock_mono_ms();
	rd->err = lookup_many(rd->l, &id, 1, &r);
	rd->took = clock_mono_ms() - t0;
	if (rd->err == MDM_OK) {
		rd->verdict = r.verdict;
		if (r.ndevs) {
			snprintf(rd->vid, sizeof(rd->vid), "%s", r.devs[0].vendor_id);
			rd->compliant = r.devs[0].compliant;
		}
		merge_result_clear(&r);
	}
	return NULL;
}

static void test_stale_served_one_refresh(void **state)
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
	struct reader rd;
	pthread_t t;
	int64_t t0, fetched0;
	char k[CACHE_KEY_MAX + 1];

	(void)state;
	fake_init(&f, "inv", FAKE_ANSWER);
	d = fake_add(&f, "inv-1", MAC_A, TRI_TRUE);
	cfg.timeout_ms = 5000; /* the refresh outlives the gate (3 s at most) */
	l = lookup_create(&cfg);
	assert_non_null(l);
	st = lookup_stats(l);
	pkey("inv", MAC_A, k);
	ask(l, MAC_A, &r);
	assert_int_equal(r.devs[0].compliant, TRI_TRUE);
	merge_result_clear(&r);
	assert_int_equal(cached(c, k, &e), CACHE_FRESH);
	fetched0 = e.fetched_at;
	cache_entry_clear(&e);
	/*
	 * the device changes at the source, which now answers from another thread and only when
	 * the test opens the gate; the pair goes stale
	 */
	pthread_mutex_lock(&f.mu);
	d->compliant = TRI_FALSE;
	pthread_mutex_unlock(&f.mu);
	fake_set_mode(&f, FAKE_ASYNC, 0);
	fake_set_gate(&f, true);
	set_offset(61000);
	assert_int_equal(state_of(c, k), CACHE_STALE);
	/* served at once (not after the adapter's answer), the old answer */
	t0 = clock_mono_ms();
	ask(l, MAC_A, &r);
	assert_true(clock_mono_ms() - t0 < 2000); /* the adapter's answer waits >= 3 s */
	assert_int_equal(r.verdict, MERGE_FOUND);
	assert_int_equal(r.devs[0].compliant, TRI_TRUE);
	merge_result_clear(&r);
	assert_int_equal(stat_of(&st->stale_hits), 1);
	/* while one refresh asks the adapter in the background, within 2 s */
	assert_true(wait_stat(&st->adapter_lookups[0], 2));
	assert_int_equal(calls(&f), 2);
	assert_int_equal(stat_of(&st->refreshes), 0);
	/* a second stale read, from another thread, while that refresh holds the lock */
	memset(&rd, 0, sizeof(rd));
	rd.l = l;
	rd.mac = MAC_A;
	assert_int_equal(pthread_create(&t, NULL, reader_main, &rd), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(rd.err, MDM_OK);
	assert_int_equal(rd.verdict, MERGE_FOUND);
	assert_int_equal(rd.compliant, TRI_TRUE);
	assert_true(rd.took < 2000);
	assert_int_equal(stat_of(&st->stale_hits), 2);
	sleep_ms(20);
	/* ...starts no second refresh */
	assert_int_equal(calls(&f), 2);
	assert_int_equal(asked(l, 0), 2);
	assert_int_equal(stat_of(&st->refreshes), 0);
	/* the adapter answers: the one refresh finishes */
	fake_set_gate(&f, false);
	assert_true(wait_stat(&st->refreshes, 1));
	sleep_ms(50);
	assert_int_equal(calls(&f), 2);
	assert_int_equal(asked(l, 0), 2);
	assert_int_equal(stat_of(&st->refreshes), 1);
	assert_int_equal(stat_of(&st->refresh_dropped), 0);
	assert_int_equal(stat_of(&st->misses), 1);
	/* the refresh wrote the new answer back */
	set_offset(0);
	assert_int_equal(cached(c, k, &e), CACHE_FRESH);
	assert_true(e.fetched_at >= fetched0 + 20);
	cache_entry_clear(&e);
	ask(l, MAC_A, &r);
	assert_int_equal(r.verdict, MERGE_FOUND);
	assert_int_equal(r.devs[0].compliant, TRI_FALSE);
	merge_result_clear(&r);
	assert_int_equal(calls(&f), 2);
	assert_int_equal(stat_of(&st->fresh_hits), 1);
	assert_int_equal(stat_of(&st->refreshes), 1);
	lookup_destroy(l);
	cache_destroy(c);
	fake_join(&f);
}

#define FLIGHT 50

static void test_single_flight(void **state)
{
	struct fake f;
	struct adapter *ads[1] = {&f.base};
	struct cache *c = make_cache();
	struct lookup_config cfg = config(ads, 1, c);
	struct lookup *l;
	const struct lookup_stats *st;
	static struct reader rd[FLIGHT];
	pthread_t t[FLIGHT];
	pthread_barrier_t start;

	(void)state;
	fake_init(&f, "inv", FAKE_ASYNC);
	f.delay_ms = 50;
	fake_add(&f, "inv-1", MAC_A, TRI_TRUE);
	cfg.lock_wait_ms = 5000;
	l = lookup_create(&cfg);
	assert_non_null(l);
	st = lookup_stats(l);
	assert_int_equal(pthread_barrier_init(&start, NULL, FLIGHT), 0);
	for (int i = 0; i < FLIGHT; i++) {
		memset(&rd[i], 0, sizeof(rd[i]));
		rd[i].l = l;
		rd[i].mac = MAC_A;
		rd[i].start = &start;
		rd[i].err = MDM_ERR_INTERNAL;
		assert_int_equal(pthread_create(&t[i], NULL, reader_main, &rd[i]), 0);
	}
	for (int i = 0; i < FLIGHT; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	pthread_barrier_destroy(&start);
	for (int i = 0; i < FLIGHT; i++) {
		assert_int_equal(rd[i].err, MDM_OK);
		assert_int_equal(rd[i].verdict, MERGE_FOUND);
		assert_string_equal(rd[i].vid, "inv-1");
	}
	assert_int_equal(calls(&f), 1);
	assert_int_equal(asked(l, 0), 1);
	/* one miss filled it; every other thread waited for it or found it fresh */
	assert_int_equal(stat_of(&st->misses) + stat_of(&st->fresh_hits), FLIGHT);
	assert_int_equal(stat_of(&st->misses), stat_of(&st->lock_waits) + 1);
	assert_true(stat_of(&st->lock_waits) >= 1);
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
	char k[CACHE_KEY_MAX + 1];

	(void)state;
	fake_init(&f, "inv", FAKE_ANSWER);
	fake_add(&f, "inv-1", MAC_A, TRI_TRUE);
	l = lookup_create(&cfg);
	assert_non_null(l);
	/* someone else claims the pointer and never fills it: wait lock_wait_ms, then ask */
	pkey("inv", MAC_A, k);
	assert_int_equal(cache_lock(c, k, 60000), MDM_OK);
	t0 = clock_mono_ms();
	ask(l, MAC_A, &r);
	took = clock_mono_ms() - t0;
	assert_int_equal(r.verdict, MERGE_FOUND);
	merge_result_clear(&r);
	assert_in_range(took, 95, 3000);
	assert_int_equal(calls(&f), 1);
	assert_int_equal(stat_of(&lookup_stats(l)->lock_waits), 1);
	assert_true(pointer_names(c, k, "inv-1")); /* the answer is stored all the same */
	cache_unlock(c, k);
	lookup_destroy(l);
	cache_destroy(c);
	fake_join(&f);
}

struct filler {
	struct cache *c;
	struct lookup *l;
	const char *pkey, *dkey;
	struct cache_entry pv, dv;
};

/* Another filler: once the lookup waits for it, writes a record, then the pointer naming it. */
static void *fill_later(void *arg)
{
	struct filler *fl = arg;
	struct cache_times t;

	int64_t until = clock_mono_ms() + 5000;

	while (stat_of(&lookup_stats(fl->l)->lock_waits) < 1 && clock_mono_ms() < until)
		sleep_ms(2);
	sleep_ms(10);
	t = times_from_now(60000, 300000);
	cache_put(fl->c, fl->dkey, fl->dv.val, fl->dv.len, &t);
	cache_put(fl->c, fl->pkey, fl->pv.val, fl->pv.len, &t);
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
	struct filler fl;
	struct device *d;
	char pk[CACHE_KEY_MAX + 1], dk[CACHE_KEY_MAX + 1];
	pthread_t t;
	int64_t t0, took;

	(void)state;
	fake_init(&f, "inv", FAKE_ANSWER);
	d = fake_add(&f, "from-other", MAC_A, TRI_TRUE);
	cfg.lock_wait_ms = 5000;
	l = lookup_create(&cfg);
	assert_non_null(l);
	/* what another gateway would write: recorded from one lookup, then taken out */
	ask(l, MAC_A, &r);
	merge_result_clear(&r);
	pkey("inv", MAC_A, pk);
	dkey("inv", "from-other", dk);
	memset(&fl, 0, sizeof(fl));
	fl.c = c;
	fl.l = l;
	fl.pkey = pk;
	fl.dkey = dk;
	assert_int_equal(cached(c, pk, &fl.pv), CACHE_FRESH);
	assert_int_equal(cached(c, dk, &fl.dv), CACHE_FRESH);
	assert_int_equal(cache_del(c, pk), MDM_OK);
	assert_int_equal(cache_del(c, dk), MDM_OK);
	pthread_mutex_lock(&f.mu);
	snprintf(d->vendor_id, sizeof(d->vendor_id), "from-adapter");
	pthread_mutex_unlock(&f.mu);
	/* the other holds the pointer's lock and fills it while we wait: its answer is taken */
	assert_int_equal(cache_lock(c, pk, 60000), MDM_OK);
	assert_int_equal(pthread_create(&t, NULL, fill_later, &fl), 0);
	t0 = clock_mono_ms();
	ask(l, MAC_A, &r);
	took = clock_mono_ms() - t0;
	pthread_join(t, NULL);
	assert_true(took < 4000); /* taken when it came, not at the end of lock_wait_ms */
	assert_int_equal(r.verdict, MERGE_FOUND);
	assert_int_equal(r.ndevs, 1);
	assert_string_equal(r.devs[0].vendor_id, "from-other");
	merge_result_clear(&r);
	assert_int_equal(calls(&f), 1);
	assert_int_equal(stat_of(&lookup_stats(l)->lock_waits), 1);
	cache_unlock(c, pk);
	cache_entry_clear(&fl.pv);
	cache_entry_clear(&fl.dv);
	lookup_destroy(l);
	cache_destroy(c);
	fake_join(&f);
}

/* --- lookup: batches and purge -------------------------------------------------------------- */

/* Another instance fills the pointer between our first read and our lock. */
static void fill_elsewhere(void *arg)
{
	struct merge_result r;

	ask(arg, MAC_A, &r);
	assert_int_equal(r.verdict, MERGE_FOUND);
	merge_result_clear(&r);
}

static void test_filled_before_our_lock(void **state)
{
	struct fake f1, f2;
	struct adapter *a1[1] = {&f1.base}, *a2[1] = {&f2.base};
	struct counting cnt;
	struct cache *mem = make_cache();
	struct cache *c = counting_wrap(&cnt, mem);
	struct lookup_config cfg1 = config(a1, 1, c), cfg2 = config(a2, 1, mem);
	struct lookup *l1, *l2;
	struct merge_result r;

	(void)state;
	fake_init(&f1, "inv", FAKE_ANSWER);
	fake_init(&f2, "inv", FAKE_ANSWER); /* the same source, seen from another instance */
	fake_add(&f1, "inv-1", MAC_A, TRI_TRUE);
	fake_add(&f2, "inv-1", MAC_A, TRI_TRUE);
	l1 = lookup_create(&cfg1);
	l2 = lookup_create(&cfg2);
	assert_non_null(l1);
	assert_non_null(l2);
	cnt.on_lock = fill_elsewhere;
	cnt.lock_arg = l2;
	ask(l1, MAC_A, &r);
	assert_int_equal(r.verdict, MERGE_FOUND);
	assert_string_equal(r.devs[0].vendor_id, "inv-1");
	merge_result_clear(&r);
	assert_int_equal(calls(&f2), 1); /* the other instance asked */
	assert_int_equal(calls(&f1), 0); /* we read its answer after winning the lock */
	lookup_destroy(l2);
	lookup_destroy(l1);
	cache_destroy(c);
}

static void test_batch(void **state)
{
	struct fake f1, f2;
	struct adapter *ads[2] = {&f1.base, &f2.base};
	struct counting cnt;
	struct cache *c = counting_wrap(&cnt, make_cache());
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
	assert_int_equal(asked(l, 0), 3);
	assert_int_equal(asked(l, 1), 3);
	/*
	 * again, with a new identifier first: two misses and four hits (two of them cached "not
	 * enrolled"), each in its place, read in two get_many round trips, plus one re-read of the
	 * pointers this request won the locks for (no records: nothing more to read)
	 */
	ids[0] = mk_ident(IDENT_MAC, MAC_N);
	ids[1] = mk_ident(IDENT_MAC, MAC_C);
	ids[2] = mk_ident(IDENT_MAC, MAC_A);
	atomic_store(&cnt.gets, 0);
	assert_int_equal(lookup_many(l, ids, 3, r), MDM_OK);
	assert_int_equal(atomic_load(&cnt.gets), 3);
	assert_int_equal(r[0].verdict, MERGE_NOT_ENROLLED);
	assert_int_equal(r[1].verdict, MERGE_FOUND);
	assert_string_equal(r[1].devs[0].vendor_id, "two-c");
	assert_int_equal(r[2].verdict, MERGE_FOUND);
	assert_string_equal(r[2].devs[0].vendor_id, "one-a");
	for (int i = 0; i < 3; i++)
		merge_result_clear(&r[i]);
	assert_int_equal(calls(&f1), 4);
	assert_int_equal(calls(&f2), 4);
	assert_int_equal(asked(l, 0), 4);
	assert_int_equal(asked(l, 1), 4);
	assert_int_equal(stat_of(&lookup_stats(l)->fresh_hits), 4);
	assert_int_equal(stat_of(&lookup_stats(l)->misses), 8);
	/* MAC B, "not enrolled" at both, is answered from the cache alone */
	ids[0] = mk_ident(IDENT_MAC, MAC_B);
	assert_int_equal(lookup_many(l, ids, 1, r), MDM_OK);
	assert_int_equal(r[0].verdict, MERGE_NOT_ENROLLED);
	merge_result_clear(&r[0]);
	assert_int_equal(calls(&f1), 4);
	assert_int_equal(calls(&f2), 4);
	assert_int_equal(stat_of(&lookup_stats(l)->fresh_hits), 6);
	/* an empty batch is no error */
	assert_int_equal(lookup_many(l, ids, 0, r), MDM_OK);
	lookup_destroy(l);
	cache_destroy(c);
	fake_join(&f1);
	fake_join(&f2);
}

static void test_duplicates_in_batch(void **state)
{
	struct fake f;
	struct adapter *ads[1] = {&f.base};
	struct cache *c = make_cache();
	struct lookup_config cfg = config(ads, 1, c);
	struct lookup *l;
	struct ident ids[5];
	struct merge_result r[5];
	int64_t t0, took;

	(void)state;
	fake_init(&f, "inv", FAKE_ANSWER);
	fake_add(&f, "inv-1", MAC_A, TRI_TRUE);
	for (int i = 0; i < 5; i++)
		ids[i] = mk_ident(IDENT_MAC, MAC_A);
	l = lookup_create(&cfg);
	assert_non_null(l);
	t0 = clock_mono_ms();
	assert_int_equal(lookup_many(l, ids, 5, r), MDM_OK);
	took = clock_mono_ms() - t0;
	for (int i = 0; i < 5; i++) {
		assert_int_equal(r[i].verdict, MERGE_FOUND);
		assert_int_equal(r[i].ndevs, 1);
		assert_string_equal(r[i].devs[0].vendor_id, "inv-1");
		merge_result_clear(&r[i]);
	}
	assert_int_equal(calls(&f), 1);
	assert_int_equal(asked(l, 0), 1);
	assert_int_equal(stat_of(&lookup_stats(l)->lock_waits), 0);
	assert_int_equal(stat_of(&lookup_stats(l)->misses), 1);
	assert_true(took < 90); /* no wait on its own lock */
	lookup_destroy(l);
	cache_destroy(c);
	fake_join(&f);
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
	assert_int_equal(asked(l, 0), 0);
	assert_int_equal(lookup_many(l, ids, 10, r), MDM_OK); /* max_batch itself is fine */
	for (int i = 0; i < 10; i++) {
		assert_int_equal(r[i].verdict, MERGE_NOT_ENROLLED);
		merge_result_clear(&r[i]);
	}
	assert_int_equal(calls(&f), 10);
	assert_int_equal(asked(l, 0), 10);
	lookup_destroy(l);
	cache_destroy(c);
	fake_join(&f);
}

static void test_purge(void **state)
{
	struct fake a, b, n;
	struct adapter *ads[3] = {&a.base, &b.base, &n.base};
	struct cache *c = make_cache();
	struct lookup_config cfg = config(ads, 3, c);
	struct lookup *l;
	struct merge_result r;
	struct ident id = mk_ident(IDENT_MAC, MAC_A);
	char keys[5][CACHE_KEY_MAX + 1], kb[CACHE_KEY_MAX + 1];
	size_t removed = 99;

	(void)state;
	fake_init(&a, "inv", FAKE_ANSWER);
	fake_init(&b, "mdm", FAKE_ANSWER);
	fake_init(&n, "none", FAKE_ANSWER); /* says "not enrolled" */
	fake_add(&a, "inv-1", MAC_A, TRI_TRUE);
	fake_add(&b, "mdm-7", MAC_A, TRI_TRUE);
	fake_add(&b, "mdm-8", MAC_B, TRI_TRUE);
	l = lookup_create(&cfg);
	assert_non_null(l);
	ask(l, MAC_A, &r);
	merge_result_clear(&r);
	ask(l, MAC_B, &r);
	merge_result_clear(&r);
	pkey("inv", MAC_A, keys[0]);
	dkey("inv", "inv-1", keys[1]);
	pkey("mdm", MAC_A, keys[2]);
	dkey("mdm", "mdm-7", keys[3]);
	pkey("none", MAC_A, keys[4]);
	dkey("mdm", "mdm-8", kb);
	for (int i = 0; i < 5; i++)
		assert_int_equal(state_of(c, keys[i]), CACHE_FRESH);
	/* every adapter's pointer for MAC A and the records they name: 2 + 2 + 1 keys */
	assert_int_equal(lookup_purge(l, &id, &removed), MDM_OK);
	assert_int_equal(removed, 5);
	for (int i = 0; i < 5; i++)
		assert_int_equal(state_of(c, keys[i]), CACHE_MISS);
	assert_int_equal(state_of(c, kb), CACHE_FRESH); /* another identifier's record stays */
	pkey("mdm", MAC_B, kb);
	assert_int_equal(state_of(c, kb), CACHE_FRESH);
	/* nothing left to purge */
	removed = 99;
	assert_int_equal(lookup_purge(l, &id, &removed), MDM_OK);
	assert_int_equal(removed, 0);
	/* the next lookup asks every adapter again */
	ask(l, MAC_A, &r);
	assert_int_equal(r.verdict, MERGE_FOUND);
	assert_string_equal(r.devs[0].vendor_id, "inv-1");
	merge_result_clear(&r);
	assert_int_equal(calls(&a), 3);
	assert_int_equal(calls(&b), 3);
	assert_int_equal(calls(&n), 3);
	assert_int_equal(asked(l, 0), 3);
	assert_int_equal(asked(l, 1), 3);
	assert_int_equal(asked(l, 2), 3);
	for (int i = 0; i < 5; i++)
		assert_int_equal(state_of(c, keys[i]), CACHE_FRESH);
	lookup_destroy(l);
	cache_destroy(c);
	fake_join(&a);
	fake_join(&b);
	fake_join(&n);
}

/* --- lookup: a source that never answers ---------------------------------------------------- */

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
	struct late la = {&silent, MAC_A};
	pthread_t t;
	int64_t t0, took;
	char ks[CACHE_KEY_MAX + 1], ko[CACHE_KEY_MAX + 1], kl[CACHE_KEY_MAX + 1];

	(void)state;
	fake_init(&silent, "silent", FAKE_NEVER);
	fake_init(&ok, "ok", FAKE_ANSWER); /* says "not enrolled" */
	cfg.timeout_ms = 150;
	l = lookup_create(&cfg);
	assert_non_null(l);
	pkey("silent", MAC_A, ks);
	pkey("ok", MAC_A, ko);
	dkey("silent", "late", kl);
	t0 = clock_mono_ms();
	ask(l, MAC_A, &r);
	took = clock_mono_ms() - t0;
	assert_int_equal(r.verdict, MERGE_UNAVAILABLE); /* a silent source is no "not enrolled" */
	assert_int_equal(r.ndevs, 0);
	merge_result_clear(&r);
	assert_in_range(took, 145, 3000);
	assert_int_equal(stat_of(&lookup_stats(l)->unavailable), 1);
	assert_int_equal(state_of(c, ks), CACHE_MISS);	/* the timeout is not stored */
	assert_int_equal(state_of(c, ko), CACHE_FRESH); /* the other's "not enrolled" is */
	/* the answer arrives after the caller gave up, from another thread */
	assert_non_null(silent.held_cb);
	assert_int_equal(pthread_create(&t, NULL, late_answer, &la), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(state_of(c, ks), CACHE_MISS); /* and changes nothing */
	assert_int_equal(state_of(c, kl), CACHE_MISS);
	lookup_destroy(l);
	cache_destroy(c);
	fake_join(&silent);
	fake_join(&ok);
}

/* --- lookup_start: the asynchronous form ---------------------------------------------------- */

/* Collects lookup_start answers: how many came, and what the last said. */
struct answers {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int count, found, unavailable, errors;
	char vid[GUID_MAX + 1];
};

static void answers_init(struct answers *a)
{
	memset(a, 0, sizeof(*a));
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
}

static void on_answer(void *arg, enum mdm_err e, struct merge_result *res, size_t n)
{
	struct answers *a = arg;

	pthread_mutex_lock(&a->mu);
	a->count++;
	if (e)
		a->errors++;
	for (size_t i = 0; !e && i < n; i++) {
		if (res[i].verdict == MERGE_FOUND) {
			a->found++;
			snprintf(a->vid, sizeof(a->vid), "%s", res[i].devs[0].vendor_id);
		} else if (res[i].verdict == MERGE_UNAVAILABLE) {
			a->unavailable++;
		}
	}
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
}

static int answers_count(struct answers *a)
{
	int n;

	pthread_mutex_lock(&a->mu);
	n = a->count;
	pthread_mutex_unlock(&a->mu);
	return n;
}

/* Waits (5 s at most) until want answers came; returns how many did. */
static int answers_wait(struct answers *a, int want)
{
	int64_t until = clock_mono_ms() + 5000;
	int n;

	while ((n = answers_count(a)) < want && clock_mono_ms() < until)
		sleep_ms(1);
	return n;
}

static void test_start_does_not_wait_for_the_vendor(void **state)
{
	struct fake f;
	struct adapter *ads[1] = {&f.base};
	struct cache *c = make_cache();
	struct lookup_config cfg = config(ads, 1, c);
	struct lookup *l;
	struct answers a;
	struct ident id = mk_ident(IDENT_MAC, MAC_A);

	(void)state;
	answers_init(&a);
	fake_init(&f, "slow", FAKE_ASYNC);
	fake_add(&f, "s-1", MAC_A, TRI_TRUE);
	fake_set_gate(&f, true); /* the vendor cannot answer until the test says so */
	cfg.timeout_ms = 5000;
	l = lookup_create(&cfg);
	assert_non_null(l);
	assert_int_equal(lookup_start(l, &id, 1, on_answer, &a), MDM_OK);
	assert_int_equal(answers_count(&a), 0); /* returned while the vendor still holds it */
	assert_int_equal(calls(&f), 1);
	fake_set_gate(&f, false);
	assert_int_equal(answers_wait(&a, 1), 1);
	assert_int_equal(a.found, 1);
	assert_string_equal(a.vid, "s-1");
	/* now in the cache: the answer comes before lookup_start returns */
	assert_int_equal(lookup_start(l, &id, 1, on_answer, &a), MDM_OK);
	assert_int_equal(answers_count(&a), 2);
	assert_int_equal(a.found, 2);
	assert_int_equal(calls(&f), 1);
	lookup_destroy(l);
	cache_destroy(c);
	fake_join(&f);
}

static void test_start_dogpile_asks_once(void **state)
{
	struct fake f;
	struct adapter *ads[1] = {&f.base};
	struct cache *c = make_cache();
	struct lookup_config cfg = config(ads, 1, c);
	struct lookup *l;
	struct answers a;
	struct ident id = mk_ident(IDENT_MAC, MAC_A);

	(void)state;
	answers_init(&a);
	fake_init(&f, "slow", FAKE_ASYNC);
	fake_add(&f, "s-1", MAC_A, TRI_FALSE);
	fake_set_gate(&f, true);
	cfg.timeout_ms = 5000;
	cfg.lock_wait_ms = 5000; /* the waiters outlast the gate */
	l = lookup_create(&cfg);
	assert_non_null(l);
	/* 100 requests for one cold MAC, all from this one thread: none may block it */
	for (int i = 0; i < 100; i++)
		assert_int_equal(lookup_start(l, &id, 1, on_answer, &a), MDM_OK);
	assert_int_equal(answers_count(&a), 0);
	assert_int_equal(calls(&f), 1);
	assert_int_equal(stat_of(&lookup_stats(l)->lock_waits), 99);
	fake_set_gate(&f, false);
	assert_int_equal(answers_wait(&a, 100), 100);
	assert_int_equal(a.found, 100);
	assert_int_equal(a.unavailable, 0);
	assert_int_equal(calls(&f), 1);
	lookup_destroy(l);
	cache_destroy(c);
	fake_join(&f);
}

static void test_start_waiter_asks_after_lock_wait(void **state)
{
	struct fake f;
	struct adapter *ads[1] = {&f.base};
	struct cache *c = make_cache();
	struct lookup_config cfg = config(ads, 1, c);
	struct lookup *l;
	struct answers a;
	struct ident id = mk_ident(IDENT_MAC, MAC_A);
	char k[CACHE_KEY_MAX + 1];

	(void)state;
	answers_init(&a);
	fake_init(&f, "inv", FAKE_ANSWER);
	fake_add(&f, "inv-1", MAC_A, TRI_TRUE);
	cfg.lock_wait_ms = 50;
	l = lookup_create(&cfg);
	assert_non_null(l);
	pkey("inv", MAC_A, k);
	/* another instance holds the fill lock and never fills */
	assert_int_equal(cache_lock(c, k, 60000), MDM_OK);
	assert_int_equal(lookup_start(l, &id, 1, on_answer, &a), MDM_OK);
	assert_int_equal(answers_count(&a), 0); /* waiting, off this thread */
	assert_int_equal(calls(&f), 0);
	assert_int_equal(answers_wait(&a, 1), 1);
	assert_int_equal(a.found, 1); /* asked itself once the wait ran out */
	assert_int_equal(calls(&f), 1);
	cache_unlock(c, k);
	lookup_destroy(l);
	cache_destroy(c);
	fake_join(&f);
}

static void test_start_waiters_share_a_failed_fill(void **state)
{
	struct fake f;
	struct adapter *ads[1] = {&f.base};
	struct cache *c = make_cache();
	struct lookup_config cfg = config(ads, 1, c);
	struct lookup *l;
	struct answers a;
	struct ident id = mk_ident(IDENT_MAC, MAC_A);

	(void)state;
	answers_init(&a);
	fake_init(&f, "slow", FAKE_ASYNC);
	fake_add(&f, "s-1", MAC_A, TRI_TRUE);
	fake_set_gate(&f, true);
	cfg.timeout_ms = 5000;
	l = lookup_create(&cfg);
	assert_non_null(l);
	for (int i = 0; i < 50; i++)
		assert_int_equal(lookup_start(l, &id, 1, on_answer, &a), MDM_OK);
	assert_int_equal(calls(&f), 1);
	/* the one vendor call fails: every waiter gets that failure, none asks again */
	pthread_mutex_lock(&f.mu);
	f.fail_async = true;
	pthread_mutex_unlock(&f.mu);
	fake_set_gate(&f, false);
	assert_int_equal(answers_wait(&a, 50), 50);
	assert_int_equal(a.unavailable, 50);
	assert_int_equal(calls(&f), 1);
	/* a later request is not a waiter: it asks (and fails) on its own */
	assert_int_equal(lookup_start(l, &id, 1, on_answer, &a), MDM_OK);
	assert_int_equal(answers_wait(&a, 51), 51);
	assert_int_equal(calls(&f), 2);
	lookup_destroy(l);
	cache_destroy(c);
	fake_join(&f);
}

static void test_start_waiter_takes_over_a_lapsed_lock(void **state)
{
	struct fake f;
	struct adapter *ads[1] = {&f.base};
	struct cache *c = make_cache();
	struct lookup_config cfg = config(ads, 1, c);
	struct lookup *l;
	struct answers a;
	struct ident id = mk_ident(IDENT_MAC, MAC_A);
	char k[CACHE_KEY_MAX + 1];

	(void)state;
	answers_init(&a);
	fake_init(&f, "inv", FAKE_ANSWER);
	fake_add(&f, "inv-1", MAC_A, TRI_TRUE);
	cfg.timeout_ms = 5000;
	l = lookup_create(&cfg);
	assert_non_null(l);
	pkey("inv", MAC_A, k);
	/* another instance holds the fill lock, then lets go without storing anything */
	assert_int_equal(cache_lock(c, k, 60000), MDM_OK);
	for (int i = 0; i < 10; i++)
		assert_int_equal(lookup_start(l, &id, 1, on_answer, &a), MDM_OK);
	sleep_ms(20);
	assert_int_equal(answers_count(&a), 0);
	cache_unlock(c, k);
	assert_int_equal(answers_wait(&a, 10), 10);
	assert_int_equal(a.found, 10);
	assert_int_equal(calls(&f), 1); /* one waiter took the fill over, the rest read it */
	lookup_destroy(l);
	cache_destroy(c);
	fake_join(&f);
}

static void test_start_deadline_always_answers(void **state)
{
	struct fake f;
	struct adapter *ads[1] = {&f.base};
	struct cache *c = make_cache();
	struct lookup_config cfg = config(ads, 1, c);
	struct lookup *l;
	struct answers a;
	struct ident id = mk_ident(IDENT_MAC, MAC_A);
	struct late la = {&f, MAC_A};
	pthread_t t;

	(void)state;
	answers_init(&a);
	fake_init(&f, "silent", FAKE_NEVER);
	cfg.timeout_ms = 50;
	l = lookup_create(&cfg);
	assert_non_null(l);
	assert_int_equal(lookup_start(l, &id, 1, on_answer, &a), MDM_OK);
	assert_int_equal(answers_wait(&a, 1), 1);
	assert_int_equal(a.unavailable, 1); /* a silent vendor is no verdict */
	/* the vendor's late answer is dropped safely */
	assert_int_equal(pthread_create(&t, NULL, late_answer, &la), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(answers_count(&a), 1);
	lookup_destroy(l);
	cache_destroy(c);
	fake_join(&f);
}

static void test_destroy_answers_what_is_out(void **state)
{
	struct fake f;
	struct adapter *ads[1] = {&f.base};
	struct cache *c = make_cache();
	struct lookup_config cfg = config(ads, 1, c);
	struct lookup *l;
	struct answers a;
	struct ident id = mk_ident(IDENT_MAC, MAC_A), id2 = mk_ident(IDENT_MAC, MAC_B);
	struct late la = {&f, MAC_A};
	pthread_t t;
	char k[CACHE_KEY_MAX + 1];

	(void)state;
	answers_init(&a);
	fake_init(&f, "silent", FAKE_NEVER);
	cfg.timeout_ms = 60000;
	cfg.lock_wait_ms = 60000;
	l = lookup_create(&cfg);
	assert_non_null(l);
	pkey("silent", MAC_B, k);
	assert_int_equal(cache_lock(c, k, 60000), MDM_OK); /* MAC_B: a waiter */
	assert_int_equal(lookup_start(l, &id, 1, on_answer, &a), MDM_OK);
	assert_int_equal(lookup_start(l, &id2, 1, on_answer, &a), MDM_OK);
	assert_int_equal(answers_count(&a), 0);
	lookup_destroy(l);
	assert_int_equal(answers_count(&a), 2);
	assert_int_equal(a.unavailable, 2);
	/* a real adapter answers what it holds when it is destroyed: after the lookup, safely */
	assert_int_equal(pthread_create(&t, NULL, late_answer, &la), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(answers_count(&a), 2);
	cache_unlock(c, k);
	cache_destroy(c);
	fake_join(&f);
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
	assert_in_range(clock_mono_ms() - t0, 95, 3000);
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
	    cmocka_unit_test(test_create_rejects_bad_config),
	    cmocka_unit_test(test_key_helpers),
	    cmocka_unit_test(test_hashed_key_collision),
	    cmocka_unit_test(test_miss_stores_then_fresh_hit),
	    cmocka_unit_test(test_not_enrolled_negative_ttl),
	    cmocka_unit_test(test_merged_fresh_until_is_the_earliest),
	    cmocka_unit_test(test_failing_adapter_alone),
	    cmocka_unit_test(test_refused_call_is_unavailable),
	    cmocka_unit_test(test_partial_asks_only_the_failed),
	    cmocka_unit_test(test_guid_routed_to_its_mdm),
	    cmocka_unit_test(test_sources_keep_their_own_records),
	    cmocka_unit_test(test_mac_repointed),
	    cmocka_unit_test(test_device_record_missing),
	    cmocka_unit_test(test_corrupt_entries_are_misses),
	    cmocka_unit_test(test_stale_served_one_refresh),
	    cmocka_unit_test(test_single_flight),
	    cmocka_unit_test(test_lock_held_elsewhere),
	    cmocka_unit_test(test_lock_holder_fills),
	    cmocka_unit_test(test_filled_before_our_lock),
	    cmocka_unit_test(test_batch),
	    cmocka_unit_test(test_duplicates_in_batch),
	    cmocka_unit_test(test_batch_too_big),
	    cmocka_unit_test(test_purge),
	    cmocka_unit_test(test_timeout_then_late_answer),
	    cmocka_unit_test(test_start_does_not_wait_for_the_vendor),
	    cmocka_unit_test(test_start_dogpile_asks_once),
	    cmocka_unit_test(test_start_waiter_asks_after_lock_wait),
	    cmocka_unit_test(test_start_waiters_share_a_failed_fill),
	    cmocka_unit_test(test_start_waiter_takes_over_a_lapsed_lock),
	    cmocka_unit_test(test_start_deadline_always_answers),
	    cmocka_unit_test(test_destroy_answers_what_is_out),
	    cmocka_unit_test(test_fanout_order),
	    cmocka_unit_test(test_fanout_timeout),
	    cmocka_unit_test(test_fanout_late_answer_before_release),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
