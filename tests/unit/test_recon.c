#include "unit.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../../adapters/inventory.h"
#include "../../cache/cache.h"
#include "../../core/buf.h"
#include "../../core/clock.h"
#include "../../gateway/app/config.h"
#include "../../gateway/recon/recon.h"
#include "../../gateway/recon/snapshot.h"
#include "../../gateway/verdict/lookup.h"

#define WAIT_MS 10000

/* --- a fake adapter serving an array in pages, whose answers the test can change ------------ */

enum fake_mode {
	FAKE_OK = 0,
	FAKE_FAIL_SECOND, /* the first page is served, the next ones fail */
	FAKE_HOLD,	  /* list() accepts and does not answer: the test answers (late) */
};

struct fake {
	struct adapter base;
	pthread_mutex_t mu;
	struct device *devs;
	size_t n, page;
	enum fake_mode mode;
	atomic_int calls, lookups;
	adapter_list_cb held_cb;
	void *held_arg;
	char held_cursor[64];
};

static enum mdm_err fake_list(struct adapter *a, const char *cursor, adapter_list_cb cb, void *arg)
{
	struct fake *f = a->priv;
	struct adapter_page page;
	size_t start = cursor && *cursor ? strtoul(cursor, NULL, 10) : 0, i;

	atomic_fetch_add(&f->calls, 1);
	pthread_mutex_lock(&f->mu);
	if (f->mode == FAKE_HOLD) {
		f->held_cb = cb;
		f->held_arg = arg;
		snprintf(f->held_cursor, sizeof(f->held_cursor), "%s", cursor);
		pthread_mutex_unlock(&f->mu);
		return MDM_OK;
	}
	memset(&page, 0, sizeof(page));
	outcome_init(&page.oc);
	if (f->mode == FAKE_FAIL_SECOND && start > 0) {
		outcome_set(&page.oc, OUTCOME_FAILED, FAIL_UNREACHABLE, "connection refused");
	} else {
		for (i = start; i < f->n && i < start + f->page; i++)
			assert_int_equal(outcome_add(&page.oc, &f->devs[i]), MDM_OK);
		if (i < f->n)
			snprintf(page.next_cursor, sizeof(page.next_cursor), "%zu", i);
	}
	pthread_mutex_unlock(&f->mu);
	cb(arg, &page); /* inline, before list() returns */
	outcome_clear(&page.oc);
	return MDM_OK;
}

/* The test answers a held page: every device at once, no next page. */
static void fake_answer_held(struct fake *f)
{
	struct adapter_page page;
	adapter_list_cb cb;
	void *arg;

	pthread_mutex_lock(&f->mu);
	cb = f->held_cb;
	arg = f->held_arg;
	f->held_cb = NULL;
	pthread_mutex_unlock(&f->mu);
	assert_non_null(cb);
	memset(&page, 0, sizeof(page));
	outcome_init(&page.oc);
	for (size_t i = 0; i < f->n; i++)
		assert_int_equal(outcome_add(&page.oc, &f->devs[i]), MDM_OK);
	cb(arg, &page);
	outcome_clear(&page.oc);
}

static bool fake_held(struct fake *f)
{
	bool held;

	pthread_mutex_lock(&f->mu);
	held = f->held_cb != NULL;
	pthread_mutex_unlock(&f->mu);
	return held;
}

static enum mdm_err fake_lookup(struct adapter *a, const struct ident *id, int64_t deadline_ms,
				adapter_lookup_cb cb, void *arg)
{
	struct fake *f = a->priv;
	struct outcome oc;

	(void)id;
	(void)deadline_ms;
	atomic_fetch_add(&f->lookups, 1);
	outcome_init(&oc);
	outcome_set(&oc, OUTCOME_FAILED, FAIL_UNREACHABLE, "the fake answers listings only");
	cb(arg, &oc);
	outcome_clear(&oc);
	return MDM_OK;
}

static void fake_destroy(struct adapter *a)
{
	(void)a;
}

static const struct adapter_ops fake_ops = {
    .type = "fake",
    .lookup = fake_lookup,
    .list = fake_list,
    .destroy = fake_destroy,
};

static struct device mkdev(const char *src, unsigned i, enum tri compliant)
{
	struct device d;
	char mac[MAC_STR_LEN + 1];

	memset(&d, 0, sizeof(d));
	snprintf(d.source, sizeof(d.source), "%s", src);
	snprintf(d.vendor_id, sizeof(d.vendor_id), "%s-%u", src, i);
	snprintf(mac, sizeof(mac), "0016%02X%06X", (unsigned char)src[0], i); /* one range each */
	assert_int_equal(device_add_mac(&d, mac), MDM_OK);
	d.registered = TRI_TRUE;
	d.compliant = compliant;
	return d;
}

static struct fake *fake_new(const char *name, size_t n, size_t page)
{
	struct fake *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->base.ops = &fake_ops;
	f->base.priv = f;
	snprintf(f->base.name, sizeof(f->base.name), "%s", name);
	pthread_mutex_init(&f->mu, NULL);
	f->devs = calloc(n ? n : 1, sizeof(*f->devs));
	assert_non_null(f->devs);
	for (size_t i = 0; i < n; i++)
		f->devs[i] = mkdev(name, (unsigned)i, i % 4 == 0 ? TRI_FALSE : TRI_TRUE);
	f->n = n;
	f->page = page;
	return f;
}

static void fake_set(struct fake *f, size_t i, enum tri compliant)
{
	pthread_mutex_lock(&f->mu);
	f->devs[i].compliant = compliant;
	pthread_mutex_unlock(&f->mu);
}

static void fake_mode(struct fake *f, enum fake_mode m)
{
	pthread_mutex_lock(&f->mu);
	f->mode = m;
	pthread_mutex_unlock(&f->mu);
}

static void fake_free(struct fake *f)
{
	pthread_mutex_destroy(&f->mu);
	free(f->devs);
	free(f);
}

/* --- hooks ----------------------------------------------------------------------------------- */

struct hooks_seen {
	atomic_int generations;	 /* on_generation calls */
	atomic_ullong last_gen;	 /* the generation it saw */
	atomic_int leader_calls; /* is_leader calls */
	atomic_int lead_until;	 /* is_leader answers true for calls < this (-1: always) */
	atomic_ullong epoch;
};

static void on_gen(void *arg, struct snapshot *s, const struct recon_cycle *c)
{
	struct hooks_seen *h = arg;

	assert_int_equal(snapshot_generation(s), c->generation);
	assert_true(c->published);
	atomic_store(&h->last_gen, c->generation);
	atomic_fetch_add(&h->generations, 1);
}

static bool is_leader(void *arg, uint64_t *epoch)
{
	struct hooks_seen *h = arg;
	int n = atomic_fetch_add(&h->leader_calls, 1), until = atomic_load(&h->lead_until);

	*epoch = atomic_load(&h->epoch);
	return until < 0 || n < until;
}

static void status_extra(void *arg, json_t *status)
{
	(void)arg;
	json_object_set_new(status, "guard", json_pack("{s:b}", "held", 0));
}

/* --- set-up ---------------------------------------------------------------------------------- */

struct rig {
	struct config cfg;
	struct snapstore *store;
	struct recon *r;
	struct hooks_seen seen;
};

static void rig_start(struct rig *g, struct adapter *const *ads, size_t nads, struct lookup *lk,
		      bool leader_hook, bool run_at_start)
{
	struct recon_params p = {.cfg = &g->cfg.reconciler,
				 .cfg_path = g->cfg.path,
				 .ads = ads,
				 .nads = nads,
				 .lookup = lk,
				 .policy = {.compliant_requires_all = true},
				 .run_at_start = run_at_start};

	g->store = snapstore_create(60000);
	assert_non_null(g->store);
	p.store = g->store;
	p.hooks.on_generation = on_gen;
	p.hooks.is_leader = leader_hook ? is_leader : NULL;
	p.hooks.status = status_extra;
	p.hooks.arg = &g->seen;
	g->r = recon_create(&p);
	assert_non_null(g->r);
}

static struct rig *rig_new(int64_t interval_ms)
{
	struct rig *g = calloc(1, sizeof(*g));

	assert_non_null(g);
	config_defaults(&g->cfg);
	snprintf(g->cfg.path, sizeof(g->cfg.path), "test.json");
	g->cfg.reconciler.interval_ms = interval_ms;
	g->cfg.reconciler.page_timeout_ms = 5000;
	atomic_store(&g->seen.lead_until, -1);
	return g;
}

static void rig_free(struct rig *g)
{
	recon_destroy(g->r);
	snapstore_destroy(g->store);
	free(g);
}

/* Runs one cycle now and waits for it; the last cycle is left in *c. */
static void cycle(struct rig *g, struct recon_cycle *c)
{
	uint64_t n = recon_cycles(g->r);

	recon_run_now(g->r);
	assert_true(recon_wait(g->r, n + 1, WAIT_MS));
	assert_true(recon_last(g->r, c));
}

static uint64_t current_gen(struct rig *g)
{
	struct snapshot *s = snapstore_current(g->store);
	uint64_t gen = s ? snapshot_generation(s) : 0;

	snapshot_unref(s);
	return gen;
}

/* --- tests ----------------------------------------------------------------------------------- */

static const char INVENTORY[] =
    "{\"devices\": [{\"id\": \"inv-1\", \"macs\": [\"AA:BB:CC:00:00:01\"], \"compliant\": false},"
    " {\"id\": \"inv-2\", \"macs\": [\"AA:BB:CC:00:00:02\"], \"compliant\": true}]}";

/* Pages of a fake adapter and the inventory adapter, listed concurrently, merged in one
 * generation; the first cycle runs at start. */
static void test_pages(void **state)
{
	char path[] = "/tmp/test_recon_inv_XXXXXX";
	int fd = mkstemp(path);
	char why[256];
	struct fake *f = fake_new("a", 2503, 1000);
	struct adapter *inv, *ads[2];
	struct rig *g = rig_new(0);
	struct recon_cycle c;
	struct snapshot *s;
	const uint32_t *idx;

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, INVENTORY, sizeof(INVENTORY) - 1),
			 (ssize_t)sizeof(INVENTORY) - 1);
	close(fd);
	inv = inventory_create("inv", path, why, sizeof(why));
	assert_non_null(inv);
	ads[0] = &f->base;
	ads[1] = inv;
	rig_start(g, ads, 2, NULL, false, true);
	assert_true(recon_wait(g->r, 1, WAIT_MS));
	assert_true(recon_last(g->r, &c));
	assert_int_equal(atomic_load(&f->calls), 3); /* 1000 + 1000 + 503 */
	assert_true(c.published);
	assert_true(c.complete);
	assert_int_equal(c.generation, 1);
	assert_int_equal(c.devices, 2505);
	assert_int_equal(c.noncompliant, 626 + 1); /* every fourth of a, and inv-1 */
	assert_int_equal(c.nadapters, 2);
	assert_string_equal(c.adapters[0].name, "a");
	assert_int_equal(c.adapters[0].rows, 2503);
	assert_string_equal(c.adapters[1].name, "inv");
	assert_int_equal(c.adapters[1].rows, 2);
	assert_true(c.adapters[1].complete);
	assert_true(c.adapters[1].age_ms >= 0 && c.adapters[1].age_ms < WAIT_MS);
	assert_true(c.started_ms <= c.last_page_ms && c.last_page_ms <= c.finished_ms);
	assert_true(c.wall_ms >= 0 && c.cpu_ms >= 0);
	s = snapstore_current(g->store);
	assert_non_null(s);
	assert_int_equal(snapshot_generation(s), 1);
	assert_int_equal(snapshot_count(s), 2505);
	assert_int_equal(snapshot_list(s, SNAP_NONCOMPLIANT, &idx), 627);
	assert_true(snapshot_find_key(s, "AABBCC000001") >= 0);
	assert_null(snapshot_why(s));
	snapshot_unref(s);
	assert_int_equal(atomic_load(&g->seen.generations), 1);
	assert_int_equal(atomic_load(&g->seen.last_gen), 1);
	/* the next cycle makes generation 2 */
	cycle(g, &c);
	assert_int_equal(c.generation, 2);
	assert_int_equal(current_gen(g), 2);
	rig_free(g);
	adapter_destroy(inv);
	unlink(path);
	fake_free(f);
}

/* A page failing keeps the adapter's previous rows, stale, with their age; the other adapter's
 * change shows. An adapter that never listed makes the generation incomplete. */
static void test_failed_page_keeps_stale(void **state)
{
	struct fake *a = fake_new("a", 30, 10), *b = fake_new("b", 5, 10);
	struct adapter *ads[2] = {&a->base, &b->base};
	struct rig *g = rig_new(0);
	struct recon_cycle c;
	struct snapshot *s;
	const uint32_t *idx;
	bool stale = false;
	size_t nc;

	(void)state;
	rig_start(g, ads, 2, NULL, false, false);
	cycle(g, &c);
	assert_true(c.complete);
	s = snapstore_current(g->store);
	nc = snapshot_list(s, SNAP_NONCOMPLIANT, &idx);
	snapshot_unref(s);
	/* a fails on its second page; its changed device must not show */
	fake_mode(a, FAKE_FAIL_SECOND);
	fake_set(a, 1, TRI_FALSE);
	fake_set(b, 1, TRI_FALSE);
	usleep(20000); /* so the kept rows have an age */
	cycle(g, &c);
	assert_true(c.published);
	assert_false(c.complete);
	assert_int_equal(c.generation, 2);
	assert_false(c.adapters[0].complete);
	assert_string_equal(c.adapters[0].why, "connection refused");
	assert_int_equal(c.adapters[0].rows, 30);
	assert_true(c.adapters[0].age_ms >= 20);
	assert_true(c.adapters[1].complete);
	assert_int_equal(c.devices, 35);
	s = snapstore_current(g->store);
	assert_int_equal(snapshot_generation(s), 2);
	assert_non_null(snapshot_set(s, 0, &stale));
	assert_true(stale);
	assert_non_null(snapshot_set(s, 1, &stale));
	assert_false(stale);
	assert_int_equal(snapshot_list(s, SNAP_NONCOMPLIANT, &idx), nc + 1); /* b's, not a's */
	snapshot_unref(s);
	/* a recovers: its change shows */
	fake_mode(a, FAKE_OK);
	cycle(g, &c);
	assert_true(c.complete);
	s = snapstore_current(g->store);
	assert_int_equal(snapshot_list(s, SNAP_NONCOMPLIANT, &idx), nc + 2);
	snapshot_unref(s);
	rig_free(g);
	fake_free(a);
	fake_free(b);
	/* never listed: the generation is made, incomplete, and says why */
	a = fake_new("a", 30, 10);
	fake_mode(a, FAKE_FAIL_SECOND);
	ads[0] = &a->base;
	g = rig_new(0);
	rig_start(g, ads, 1, NULL, false, false);
	cycle(g, &c);
	assert_true(c.published);
	assert_false(c.complete);
	assert_int_equal(c.adapters[0].rows, 0);
	assert_int_equal(c.adapters[0].age_ms, -1);
	s = snapstore_current(g->store);
	assert_non_null(snapshot_why(s));
	snapshot_unref(s);
	rig_free(g);
	fake_free(a);
}

/* A page that never comes times out (page_timeout); its late answer is dropped. */
static void test_page_timeout(void **state)
{
	struct fake *a = fake_new("a", 3, 10);
	struct adapter *ads[1] = {&a->base};
	struct rig *g = rig_new(0);
	struct recon_cycle c;
	int64_t t0;

	(void)state;
	g->cfg.reconciler.page_timeout_ms = 300;
	rig_start(g, ads, 1, NULL, false, false);
	cycle(g, &c);
	assert_true(c.complete);
	fake_mode(a, FAKE_HOLD);
	t0 = clock_mono_ms();
	cycle(g, &c);
	assert_true(clock_mono_ms() - t0 >= 300);
	assert_false(c.complete);
	assert_string_equal(c.adapters[0].why, "a page timed out");
	assert_int_equal(c.adapters[0].rows, 3);
	assert_true(fake_held(a));
	fake_answer_held(a); /* late: dropped, nothing leaks */
	fake_mode(a, FAKE_OK);
	cycle(g, &c);
	assert_true(c.complete);
	assert_int_equal(c.generation, 3);
	rig_free(g);
	fake_free(a);
}

/* Not the leader: skipped, nothing published; the lead lost between pages abandons the cycle. */
static void test_leader(void **state)
{
	struct fake *a = fake_new("a", 30, 10);
	struct adapter *ads[1] = {&a->base};
	struct rig *g = rig_new(0);
	struct recon_cycle c;

	(void)state;
	atomic_store(&g->seen.lead_until, 0);
	rig_start(g, ads, 1, NULL, true, false);
	cycle(g, &c);
	assert_false(c.published);
	assert_string_equal(c.skipped, "not the leader");
	assert_int_equal(atomic_load(&a->calls), 0);
	assert_int_equal(current_gen(g), 0);
	assert_int_equal(atomic_load(&g->seen.generations), 0);
	/* leader: published, with the epoch */
	atomic_store(&g->seen.epoch, 7);
	atomic_store(&g->seen.lead_until, -1);
	cycle(g, &c);
	assert_true(c.published);
	assert_int_equal(c.epoch, 7);
	assert_int_equal(current_gen(g), 1);
	/* the lead is lost after the first page: the cycle stops there */
	atomic_store(&a->calls, 0);
	atomic_store(&g->seen.leader_calls, 0);
	atomic_store(&g->seen.lead_until, 2); /* before the cycle, after page 1, not after 2 */
	cycle(g, &c);
	assert_false(c.published);
	assert_string_equal(c.skipped, "leadership lost during the cycle");
	assert_int_equal(atomic_load(&a->calls), 2);
	assert_int_equal(current_gen(g), 1);
	assert_int_equal(atomic_load(&g->seen.generations), 1);
	rig_free(g);
	fake_free(a);
}

/* run_now while a cycle runs coalesces with it; destroy stops a cycle that waits at once. */
static void test_run_now_coalesces(void **state)
{
	struct fake *a = fake_new("a", 3, 10);
	struct adapter *ads[1] = {&a->base};
	struct rig *g = rig_new(0);
	int64_t t0;

	(void)state;
	fake_mode(a, FAKE_HOLD);
	rig_start(g, ads, 1, NULL, false, true);
	for (int i = 0; i < 100 && !fake_held(a); i++)
		usleep(10000);
	assert_true(fake_held(a));
	assert_int_equal(recon_run_now(g->r), 0);
	assert_int_equal(recon_run_now(g->r), 0);
	assert_int_equal(recon_run_now(g->r), 0);
	fake_mode(a, FAKE_OK);
	fake_answer_held(a);
	assert_true(recon_wait(g->r, 1, WAIT_MS));
	assert_false(recon_wait(g->r, 2, 300)); /* the three requests did not queue more */
	assert_int_equal(recon_cycles(g->r), 1);
	assert_int_equal(atomic_load(&a->calls), 1);
	assert_int_equal(recon_run_now(g->r), 1);
	assert_true(recon_wait(g->r, 2, WAIT_MS));
	/* destroy while a page is awaited: at once, and the late answer is safe */
	fake_mode(a, FAKE_HOLD);
	recon_run_now(g->r);
	for (int i = 0; i < 100 && !fake_held(a); i++)
		usleep(10000);
	assert_true(fake_held(a));
	t0 = clock_mono_ms();
	rig_free(g);
	assert_true(clock_mono_ms() - t0 < 1000);
	fake_answer_held(a);
	fake_free(a);
}

/* The timer runs cycles by itself (interval with jitter). */
static void test_interval(void **state)
{
	struct fake *a = fake_new("a", 3, 10);
	struct adapter *ads[1] = {&a->base};
	struct rig *g = rig_new(100);
	int64_t t0 = clock_mono_ms();

	(void)state;
	rig_start(g, ads, 1, NULL, false, false);
	assert_true(recon_wait(g->r, 3, WAIT_MS));
	assert_true(clock_mono_ms() - t0 >= 3 * 90 - 10);
	assert_true(current_gen(g) >= 3);
	rig_free(g);
	fake_free(a);
}

static struct ident mac_ident(const char *mac)
{
	struct ident id;

	assert_int_equal(ident_parse(IDENT_MAC, mac, strlen(mac), &id, NULL, 0), MDM_OK);
	return id;
}

/* Write-through: the first cycle writes every device, a quiet one nothing, then only changes;
 * a login by MAC is then answered from the cache, not the adapter. */
static void test_write_through(void **state)
{
	struct fake *a = fake_new("a", 40, 15);
	struct adapter *ads[1] = {&a->base};
	struct cache_mem_config mc = {.max_entries = 10000, .shards = 4, .max_value = 65536};
	struct cache *cache = cache_mem_create(&mc);
	struct lookup_config lc = {
	    .ads = ads,
	    .nads = 1,
	    .policy = {.compliant_requires_all = true},
	    .ns = "t",
	    .timeout_ms = 1000,
	    .lock_wait_ms = 100,
	    .fresh_ttl_ms = 60000,
	    .stale_ttl_ms = 300000,
	    .negative_ttl_ms = 30000,
	    .max_batch = 10,
	};
	struct lookup *lk;
	struct rig *g = rig_new(0);
	struct recon_cycle c;
	struct merge_result res;
	struct ident id = mac_ident("001661000005");

	(void)state;
	assert_non_null(cache);
	lc.cache = cache;
	lk = lookup_create(&lc);
	assert_non_null(lk);
	rig_start(g, ads, 1, lk, false, false);
	cycle(g, &c);
	assert_int_equal(c.writes, 40);
	cycle(g, &c);
	assert_int_equal(c.writes, 0);
	fake_set(a, 5, TRI_FALSE);
	fake_set(a, 6, TRI_FALSE);
	cycle(g, &c);
	assert_int_equal(c.writes, 2);
	/* a failed listing writes nothing and changes no digest */
	fake_set(a, 7, TRI_FALSE);
	fake_mode(a, FAKE_FAIL_SECOND);
	cycle(g, &c);
	assert_false(c.complete);
	assert_int_equal(c.writes, 0);
	fake_mode(a, FAKE_OK);
	cycle(g, &c);
	assert_int_equal(c.writes, 1);
	/* the login of device 5 is a cache hit with its new state */
	assert_int_equal(lookup_many(lk, &id, 1, &res), MDM_OK);
	assert_int_equal(res.verdict, MERGE_FOUND);
	assert_int_equal(res.ndevs, 1);
	assert_string_equal(res.devs[0].vendor_id, "a-5");
	assert_int_equal(res.devs[0].compliant, TRI_FALSE);
	merge_result_clear(&res);
	assert_int_equal(atomic_load(&a->lookups), 0);
	assert_true(atomic_load(&lookup_stats(lk)->fresh_hits) >= 1);
	rig_free(g);
	lookup_destroy(lk);
	cache_destroy(cache);
	fake_free(a);
}

/* The status JSON: the shape of shared-plan.md, and the hook's extra object. */
static void test_status_json(void **state)
{
	struct fake *a = fake_new("a", 8, 10);
	struct adapter *ads[1] = {&a->base};
	struct rig *g = rig_new(0);
	struct recon_cycle c;
	struct buf b;
	json_t *o, *lc, *ad;

	(void)state;
	rig_start(g, ads, 1, NULL, false, false);
	buf_init(&b, 1 << 20);
	assert_int_equal(recon_status_json(g->r, &b), MDM_OK);
	o = json_loadb(b.mem, b.len, 0, NULL);
	assert_non_null(o);
	assert_true(json_is_false(json_object_get(o, "enabled")));
	assert_int_equal(json_integer_value(json_object_get(o, "generation")), 0);
	assert_int_equal(json_integer_value(json_object_get(o, "cycles")), 0);
	assert_true(json_is_null(json_object_get(o, "last_cycle")));
	json_decref(o);
	cycle(g, &c);
	buf_reset(&b);
	assert_int_equal(recon_status_json(g->r, &b), MDM_OK);
	o = json_loadb(b.mem, b.len, 0, NULL);
	assert_non_null(o);
	assert_int_equal(json_integer_value(json_object_get(o, "interval_ms")), 0);
	assert_int_equal(json_integer_value(json_object_get(o, "generation")), 1);
	assert_int_equal(json_integer_value(json_object_get(o, "cycles")), 1);
	assert_true(json_is_false(json_object_get(o, "running")));
	assert_non_null(json_object_get(o, "guard"));
	lc = json_object_get(o, "last_cycle");
	assert_true(json_is_object(lc));
	assert_int_equal(json_integer_value(json_object_get(lc, "generation")), 1);
	assert_int_equal(json_integer_value(json_object_get(lc, "devices")), 8);
	assert_int_equal(json_integer_value(json_object_get(lc, "noncompliant")), 2);
	assert_true(json_is_true(json_object_get(lc, "complete")));
	for (const char *const *k =
		 (const char *const[]){"started_ms", "finished_ms", "last_page_ms", "wall_ms",
				       "cpu_ms", NULL};
	     *k; k++)
		assert_true(json_is_integer(json_object_get(lc, *k)));
	ad = json_array_get(json_object_get(lc, "adapters"), 0);
	assert_string_equal(json_string_value(json_object_get(ad, "name")), "a");
	assert_true(json_is_true(json_object_get(ad, "complete")));
	assert_int_equal(json_integer_value(json_object_get(ad, "rows")), 8);
	assert_true(json_is_integer(json_object_get(ad, "age_ms")));
	assert_true(json_is_null(json_object_get(ad, "why")));
	json_decref(o);
	buf_free(&b);
	rig_free(g);
	fake_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pages),
	    cmocka_unit_test(test_failed_page_keeps_stale),
	    cmocka_unit_test(test_page_timeout),
	    cmocka_unit_test(test_leader),
	    cmocka_unit_test(test_run_now_coalesces),
	    cmocka_unit_test(test_interval),
	    cmocka_unit_test(test_write_through),
	    cmocka_unit_test(test_status_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
