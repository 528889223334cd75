#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../core/clock.h"
#include "../../core/jout.h"
#include "../../core/log.h"
#include "recon.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

/*
 * The inbox: where listing pages land. A page's callback may run on an adapter's thread after
 * the cycle gave up on it (timeout, lost lead, destroy), so the inbox is refcounted and outlives
 * the reconciler while answers are out. Its mutex also guards the reconciler's schedule state.
 */
struct slot {
	uint64_t seq; /* the ask whose answer is awaited; an answer with another seq is dropped */
	bool arrived;
	struct adapter_page page;
};

struct inbox {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int refs;
	struct slot slots[RECON_MAX_ADAPTERS];
};

struct ask {
	struct inbox *in;
	size_t lane;
	uint64_t seq;
};

/* Per adapter, from one cycle to the next: the set in use and a digest per listed record. */
struct digests {
	uint64_t *key; /* hash of the vendor id; 0: empty slot */
	uint64_t *val; /* hash of the record (what the cache entry says) */
	size_t cap, n;
};

struct lane {
	struct rowset *rs; /* this cycle's, being filled */
	char cursor[64];
	int64_t deadline; /* mono ms of the page awaited */
	bool asked, done, failed;
	char why[256];
};

struct recon {
	struct recon_params p;
	struct inbox *in;
	pthread_t thread;
	atomic_bool stop;
	/* under in->mu */
	bool queued, running;
	uint64_t cycles;
	uint64_t seq;
	struct recon_cycle last;
	bool have_last;
	/* the reconciler thread's own */
	struct rowset *prev[RECON_MAX_ADAPTERS];
	struct digests dig[RECON_MAX_ADAPTERS];
	uint64_t rng;
};

static void inbox_unref(struct inbox *in)
{
	int last;

	pthread_mutex_lock(&in->mu);
	last = --in->refs == 0;
	pthread_mutex_unlock(&in->mu);
	if (!last)
		return;
	for (size_t i = 0; i < RECON_MAX_ADAPTERS; i++)
		outcome_clear(&in->slots[i].page.oc);
	pthread_mutex_destroy(&in->mu);
	pthread_cond_destroy(&in->cv);
	free(in);
}

static void on_page(void *arg, struct adapter_page *page)
{
	struct ask *a = arg;
	struct inbox *in = a->in;
	struct slot *sl = &in->slots[a->lane];

	pthread_mutex_lock(&in->mu);
	if (sl->seq == a->seq && !sl->arrived) {
		outcome_move(&sl->page.oc, &page->oc);
		memcpy(sl->page.next_cursor, page->next_cursor, sizeof(sl->page.next_cursor));
		sl->page.next_cursor[sizeof(sl->page.next_cursor) - 1] = '\0';
		sl->arrived = true;
		pthread_cond_broadcast(&in->cv);
	} else {
		outcome_clear(&page->oc); /* an answer given up on */
	}
	pthread_mutex_unlock(&in->mu);
	free(a);
	inbox_unref(in);
}

/*
 * give_back_memory: a cycle parses every vendor page (JSON and XML trees, wide device records)
 * on the HTTP client's threads and frees it all again; glibc keeps those pages in its per-thread
 * arenas unless asked, which would make a steady gateway look ~1 KiB a device bigger than the
 * data it holds.
 */
static void give_back_memory(void)
{
#ifdef __GLIBC__
	malloc_trim(0);
#endif
}

/* --- digests: what was written through, to write only what changed -------------------------- */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ull;
	return h;
}

static uint64_t fnv_str(uint64_t h, const char *s)
{
	return fnv(h, s, strlen(s) + 1); /* the NUL separates fields */
}

/*
 * What a cache entry of the record says, but the check-in time: a device checking in every
 * half hour would otherwise count as changed every cycle and the write-through would rewrite
 * half the fleet; the NAC's decision does not depend on it.
 */
static uint64_t record_digest(const struct device *d)
{
	const char *strs[] = {d->vendor_id,	 d->guid,	 d->udid,	  d->imei,
			      d->meid,		 d->serial,	 d->hostname,	  d->username,
			      d->failure_reason, d->remediation, d->manufacturer, d->model,
			      d->os_version,	 d->phone_number};
	int nums[] = {(int)d->nmacs,	  d->mac_local,	      (int)d->ownership,
		      (int)d->registered, (int)d->compliant,  (int)d->disk_encrypted,
		      (int)d->pin_lock,	  (int)d->jail_broken};
	uint64_t h = 14695981039346656037ull;

	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		h = fnv_str(h, strs[i]);
	for (unsigned i = 0; i < d->nmacs && i < DEVICE_MACS_MAX; i++)
		h = fnv_str(h, d->macs[i]);
	h = fnv(h, nums, sizeof(nums));
	return h ? h : 1;
}

static uint64_t id_digest(const char *vendor_id)
{
	uint64_t h = fnv_str(14695981039346656037ull, vendor_id);

	return h ? h : 1;
}

static void digests_free(struct digests *d)
{
	free(d->key);
	free(d->val);
	memset(d, 0, sizeof(*d));
}

/* digests_init: room for n records at half load. */
static enum mdm_err digests_init(struct digests *d, size_t n)
{
	memset(d, 0, sizeof(*d));
	d->cap = 16;
	while (d->cap < 2 * n)
		d->cap *= 2;
	d->key = calloc(d->cap, sizeof(*d->key));
	d->val = calloc(d->cap, sizeof(*d->val));
	if (d->key && d->val)
		return MDM_OK;
	digests_free(d);
	return MDM_ERR_NOMEM;
}

/* digests_slot: the slot of key (where it is or would go). */
static size_t digests_slot(const struct digests *d, uint64_t key)
{
	size_t i = key & (d->cap - 1);

	while (d->key[i] && d->key[i] != key)
		i = (i + 1) & (d->cap - 1);
	return i;
}

/* --- schedule -------------------------------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* The wait before the next timed cycle: interval * (1 +- jitter), uniformly. */
static int64_t next_wait(struct recon *r)
{
	const struct config_reconciler *c = r->p.cfg;
	double u = (double)(rng_next(&r->rng) >> 11) / (double)(1ull << 53); /* [0, 1) */
	double w = (double)c->interval_ms * (1.0 + c->jitter * (2.0 * u - 1.0));

	return w < 1 ? 1 : (int64_t)w;
}

static bool leading(struct recon *r, uint64_t *epoch)
{
	*epoch = 0;
	return !r->p.hooks.is_leader || r->p.hooks.is_leader(r->p.hooks.arg, epoch);
}

static int64_t cpu_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
		return 0;
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- one cycle: listing ---------------------------------------------------------------------- */

/* lane_fail: the lane's listing failed: why is prefix and what. */
static void lane_fail(struct lane *ln, const char *adapter, const char *prefix, const char *what)
{
	ln->failed = ln->done = true;
	snprintf(ln->why, sizeof(ln->why), "%s%s", prefix, what);
	log_warn("reconciler: adapter %s: listing incomplete: %s; its previous rows are kept",
		 adapter, ln->why);
}

/* Asks lane i's next page; the answer lands in the inbox (maybe before this returns). */
static void ask_page(struct recon *r, struct lane *ln, size_t i)
{
	struct ask *a = malloc(sizeof(*a));
	enum mdm_err e;

	if (!a)
		return lane_fail(ln, r->p.ads[i]->name, "", "out of memory");
	pthread_mutex_lock(&r->in->mu);
	a->in = r->in;
	a->lane = i;
	a->seq = ++r->seq;
	r->in->slots[i].seq = a->seq;
	r->in->slots[i].arrived = false;
	r->in->refs++;
	pthread_mutex_unlock(&r->in->mu);
	ln->asked = true;
	ln->deadline = clock_mono_ms() + r->p.cfg->page_timeout_ms;
	e = adapter_list(r->p.ads[i], ln->cursor, on_page, a);
	if (e) { /* no callback will come */
		free(a);
		inbox_unref(r->in);
		lane_fail(ln, r->p.ads[i]->name, "cannot ask for a page: ", err_str(e));
	}
}

/* Takes an arrived page of lane i into its rowset; the next page is asked by the caller. */
static void take_page(struct recon *r, struct lane *ln, size_t i, struct adapter_page *pg,
		      struct recon_cycle *c)
{
	enum mdm_err e;

	c->last_page_ms = clock_wall_ms();
	if (pg->oc.kind == OUTCOME_FAILED)
		return lane_fail(ln, r->p.ads[i]->name, "", pg->oc.why);
	e = pg->oc.ndevs ? rowset_add(ln->rs, pg->oc.devs, pg->oc.ndevs) : MDM_OK;
	if (e)
		return lane_fail(ln, r->p.ads[i]->name, "", err_str(e));
	if (!pg->next_cursor[0]) {
		ln->done = true;
		return;
	}
	memcpy(ln->cursor, pg->next_cursor, sizeof(ln->cursor));
	ln->asked = false;
}

/* Whether to give up the cycle: destroy, or the lead lost (asked between pages). */
static bool abandon(struct recon *r, struct recon_cycle *c)
{
	uint64_t epoch;

	if (atomic_load(&r->stop)) {
		snprintf(c->skipped, sizeof(c->skipped), "stopped");
		return true;
	}
	if (!leading(r, &epoch) || epoch != c->epoch) {
		snprintf(c->skipped, sizeof(c->skipped), "leadership lost during the cycle");
		return true;
	}
	return false;
}

/* Lists every adapter; false when the cycle was abandoned. */
static bool list_all(struct recon *r, struct lane *lanes, struct recon_cycle *c)
{
	size_t n = r->p.nads, left = n;

	for (size_t i = 0; i < n; i++)
		if (!lanes[i].done)
			ask_page(r, &lanes[i], i);
	for (;;) {
		struct adapter_page pg;
		long got = -1;
		int64_t now = clock_mono_ms(), wake = now + 1000;

		left = 0;
		for (size_t i = 0; i < n; i++) {
			if (lanes[i].done)
				continue;
			left++;
			if (lanes[i].deadline <= now) {
				lane_fail(&lanes[i], r->p.ads[i]->name, "", "a page timed out");
				left--;
			} else if (lanes[i].deadline < wake) {
				wake = lanes[i].deadline;
			}
		}
		if (left == 0)
			return true;
		pthread_mutex_lock(&r->in->mu);
		for (;;) {
			for (size_t i = 0; got < 0 && i < n; i++)
				if (!lanes[i].done && r->in->slots[i].arrived)
					got = (long)i;
			if (got >= 0 || atomic_load(&r->stop) || clock_mono_ms() >= wake)
				break;
			clock_cond_wait_until(&r->in->cv, &r->in->mu, wake);
		}
		if (got >= 0) {
			struct slot *sl = &r->in->slots[got];

			pg = sl->page;
			outcome_init(&sl->page.oc);
			sl->arrived = false;
			sl->seq = 0;
		}
		pthread_mutex_unlock(&r->in->mu);
		if (got >= 0) {
			take_page(r, &lanes[got], (size_t)got, &pg, c);
			outcome_clear(&pg.oc);
		}
		if (abandon(r, c)) /* before asking more: a lost lead stops between pages */
			return false;
		if (got >= 0 && !lanes[got].done && !lanes[got].asked)
			ask_page(r, &lanes[got], (size_t)got);
	}
}

/* Drops every answer still awaited: they will be discarded when they come. */
static void forget_asks(struct recon *r)
{
	pthread_mutex_lock(&r->in->mu);
	for (size_t i = 0; i < r->p.nads; i++) {
		r->in->slots[i].seq = 0;
		r->in->slots[i].arrived = false;
		outcome_clear(&r->in->slots[i].page.oc);
	}
	pthread_mutex_unlock(&r->in->mu);
}

/* --- one cycle: write-through ---------------------------------------------------------------- */

/*
 * Writes through the records of set rs (adapter i, listed fully this cycle) that are new or
 * changed since the digests of the last full listing, and replaces those digests: 16 bytes a
 * record kept between cycles, so a quiet cycle writes nothing without keeping old records.
 */
static enum mdm_err write_through(struct recon *r, size_t i, struct rowset *rs, size_t *writes)
{
	struct digests nd, *od = &r->dig[i];
	size_t n = rowset_count(rs);
	struct device *d;
	enum mdm_err e;

	if (!r->p.lookup)
		return MDM_OK;
	if (!(d = malloc(sizeof(*d))))
		return MDM_ERR_NOMEM;
	if ((e = digests_init(&nd, n)) != MDM_OK) {
		free(d);
		return e;
	}
	for (size_t k = 0; k < n; k++) {
		uint64_t key, val;
		size_t s;

		rowset_get(rs, k, d);
		key = id_digest(d->vendor_id);
		val = record_digest(d);
		s = digests_slot(&nd, key);
		if (!nd.key[s])
			nd.n++;
		nd.key[s] = key;
		nd.val[s] = val;
		if (od->cap) {
			size_t o = digests_slot(od, key);

			if (od->key[o] == key && od->val[o] == val)
				continue;
		}
		if (lookup_store_listed(r->p.lookup, r->p.ads[i]->name, d) == MDM_OK && d->nmacs)
			(*writes)++;
	}
	free(d);
	digests_free(od);
	*od = nd;
	return MDM_OK;
}

/* --- one cycle ------------------------------------------------------------------------------- */

static void record_adapter(struct recon_cycle *c, const char *name, const struct lane *ln,
			   const struct rowset *set, int64_t now)
{
	struct recon_adapter *a = &c->adapters[c->nadapters++];

	snprintf(a->name, sizeof(a->name), "%s", name);
	a->complete = !ln->failed;
	a->rows = set && !rowset_why(set) ? rowset_count(set) : 0;
	a->age_ms = set && !rowset_why(set) ? now - rowset_listed_at(set) : -1;
	snprintf(a->why, sizeof(a->why), "%s", ln->failed ? ln->why : "");
	if (!ln->failed)
		return;
	c->complete = false;
}

/* The sets of the new generation: this cycle's, or the previous ones (stale) where it failed. */
static enum mdm_err make_generation(struct recon *r, struct lane *lanes, struct recon_cycle *c,
				    struct snapshot **out)
{
	struct rowset *sets[RECON_MAX_ADAPTERS];
	bool stale[RECON_MAX_ADAPTERS];
	struct snapshot *cur = snapstore_current(r->p.store);
	uint64_t gen = cur ? snapshot_generation(cur) + 1 : 1;
	int64_t now = clock_wall_ms();
	enum mdm_err e;

	snapshot_unref(cur);
	c->complete = true;
	for (size_t i = 0; i < r->p.nads; i++) {
		struct lane *ln = &lanes[i];

		if (!ln->failed) {
			rowset_finish(ln->rs, now);
			sets[i] = ln->rs;
			stale[i] = false;
		} else if (r->prev[i]) {
			sets[i] = r->prev[i];
			stale[i] = true;
		} else { /* never listed: the generation is incomplete, as the failed set says */
			rowset_fail(ln->rs, ln->why);
			rowset_finish(ln->rs, now);
			sets[i] = ln->rs;
			stale[i] = false;
		}
		record_adapter(c, r->p.ads[i]->name, ln, sets[i], now);
	}
	e = snapshot_make(sets, stale, r->p.nads, &r->p.policy, gen, out);
	if (!e)
		c->generation = gen;
	return e;
}

/* After the swap: write-through, and this cycle's full listings become the previous ones. */
static void keep_listings(struct recon *r, struct lane *lanes, struct recon_cycle *c)
{
	for (size_t i = 0; i < r->p.nads; i++) {
		if (lanes[i].failed)
			continue;
		if (write_through(r, i, lanes[i].rs, &c->writes) != MDM_OK)
			log_warn("reconciler: adapter %s: write-through: out of memory",
				 r->p.ads[i]->name);
		rowset_unref(r->prev[i]);
		r->prev[i] = rowset_ref(lanes[i].rs);
	}
}

static void run_cycle(struct recon *r, struct recon_cycle *c)
{
	struct lane lanes[RECON_MAX_ADAPTERS];
	struct snapshot *s = NULL;
	int64_t mono0 = clock_mono_ms(), cpu0 = cpu_ms();
	const uint32_t *idx;

	memset(c, 0, sizeof(*c));
	memset(lanes, 0, sizeof(lanes));
	c->started_ms = clock_wall_ms();
	if (!leading(r, &c->epoch)) {
		snprintf(c->skipped, sizeof(c->skipped), "not the leader");
		goto out;
	}
	for (size_t i = 0; i < r->p.nads; i++)
		if (!(lanes[i].rs = rowset_new(r->p.ads[i]->name)))
			lane_fail(&lanes[i], r->p.ads[i]->name, "", "out of memory");
	if (!list_all(r, lanes, c))
		goto out;
	if (make_generation(r, lanes, c, &s) != MDM_OK) {
		snprintf(c->skipped, sizeof(c->skipped), "out of memory making the generation");
		goto out;
	}
	c->devices = snapshot_count(s);
	c->noncompliant = snapshot_list(s, SNAP_NONCOMPLIANT, &idx);
	c->published = true;
	snapstore_publish(r->p.store, snapshot_ref(s));
	keep_listings(r, lanes, c);
out:
	forget_asks(r);
	for (size_t i = 0; i < r->p.nads; i++)
		rowset_unref(lanes[i].rs);
	c->finished_ms = clock_wall_ms();
	c->wall_ms = clock_mono_ms() - mono0;
	c->cpu_ms = cpu_ms() - cpu0;
	if (c->published)
		log_info("reconciler: generation %llu: %zu devices, %zu non-compliant, %s, %zu "
			 "written through, %lld ms (%lld ms CPU)",
			 (unsigned long long)c->generation, c->devices, c->noncompliant,
			 c->complete ? "complete" : "incomplete (stale rows kept)", c->writes,
			 (long long)c->wall_ms, (long long)c->cpu_ms);
	else
		log_info("reconciler: cycle without a generation: %s", c->skipped);
	if (s && r->p.hooks.on_generation)
		r->p.hooks.on_generation(r->p.hooks.arg, s, c);
	snapshot_unref(s);
	give_back_memory();
}

/* --- the thread ------------------------------------------------------------------------------ */

static void *recon_main(void *arg)
{
	struct recon *r = arg;
	struct recon_cycle *c = malloc(sizeof(*c));
	int64_t interval = r->p.cfg->interval_ms;
	int64_t due = interval > 0 ? clock_mono_ms() + next_wait(r) : 0;

	if (!c) {
		log_err("reconciler: out of memory: no cycles will run");
		return NULL;
	}
	pthread_mutex_lock(&r->in->mu);
	while (!atomic_load(&r->stop)) {
		if (!r->queued && !(interval > 0 && clock_mono_ms() >= due)) {
			if (interval > 0)
				clock_cond_wait_until(&r->in->cv, &r->in->mu, due);
			else
				pthread_cond_wait(&r->in->cv, &r->in->mu);
			continue;
		}
		r->queued = false;
		r->running = true;
		pthread_mutex_unlock(&r->in->mu);
		run_cycle(r, c);
		pthread_mutex_lock(&r->in->mu);
		r->running = false;
		r->last = *c;
		r->have_last = true;
		r->cycles++;
		if (interval > 0)
			due = clock_mono_ms() + next_wait(r);
		pthread_cond_broadcast(&r->in->cv);
	}
	pthread_mutex_unlock(&r->in->mu);
	free(c);
	return NULL;
}

/* --- public ---------------------------------------------------------------------------------- */

static void warn_interval(const struct config_reconciler *c, const char *path)
{
	if (c->interval_ms > 0 && c->interval_ms < c->vendor_checkin_ms / 2)
		log_warn("%s: reconciler.interval: %lld ms is below half of "
			 "reconciler.vendor_checkin (%lld ms): devices are polled more often than "
			 "they report, which loads the vendors for nothing new",
			 path ? path : "config", (long long)c->interval_ms,
			 (long long)c->vendor_checkin_ms);
}

struct recon *recon_create(const struct recon_params *p)
{
	struct recon *r;

	if (!p || !p->cfg || !p->store || p->nads > RECON_MAX_ADAPTERS || (p->nads && !p->ads))
		return NULL;
	if (!(r = calloc(1, sizeof(*r))))
		return NULL;
	r->p = *p;
	r->rng = (uint64_t)clock_wall_ms() * 2654435761u ^ (uint64_t)(uintptr_t)r;
	if (!r->rng)
		r->rng = 88172645463325252ull;
	if (!(r->in = calloc(1, sizeof(*r->in)))) {
		free(r);
		return NULL;
	}
	pthread_mutex_init(&r->in->mu, NULL);
	clock_cond_init(&r->in->cv);
	r->in->refs = 1;
	for (size_t i = 0; i < RECON_MAX_ADAPTERS; i++)
		outcome_init(&r->in->slots[i].page.oc);
	r->queued = p->run_at_start;
	atomic_init(&r->stop, false);
	warn_interval(p->cfg, p->cfg_path);
	if (pthread_create(&r->thread, NULL, recon_main, r) != 0) {
		inbox_unref(r->in);
		free(r);
		return NULL;
	}
	return r;
}

uint64_t recon_run_now(struct recon *r)
{
	struct snapshot *s = snapstore_current(r->p.store);
	uint64_t gen = s ? snapshot_generation(s) : 0;

	snapshot_unref(s);
	pthread_mutex_lock(&r->in->mu);
	if (!r->queued && !r->running) {
		r->queued = true;
		pthread_cond_broadcast(&r->in->cv);
	}
	pthread_mutex_unlock(&r->in->mu);
	return gen;
}

bool recon_wait(struct recon *r, uint64_t n, int64_t timeout_ms)
{
	int64_t end = clock_mono_ms() + timeout_ms;
	bool ok;

	pthread_mutex_lock(&r->in->mu);
	while (r->cycles < n && clock_mono_ms() < end)
		clock_cond_wait_until(&r->in->cv, &r->in->mu, end);
	ok = r->cycles >= n;
	pthread_mutex_unlock(&r->in->mu);
	return ok;
}

uint64_t recon_cycles(struct recon *r)
{
	uint64_t n;

	pthread_mutex_lock(&r->in->mu);
	n = r->cycles;
	pthread_mutex_unlock(&r->in->mu);
	return n;
}

bool recon_last(struct recon *r, struct recon_cycle *out)
{
	bool have;

	pthread_mutex_lock(&r->in->mu);
	have = r->have_last;
	if (have)
		*out = r->last;
	pthread_mutex_unlock(&r->in->mu);
	return have;
}

static json_t *cycle_json(const struct recon_cycle *c, bool *bad)
{
	json_t *o = json_object(), *ads = json_array();

	jout_set(o, "generation", json_integer((json_int_t)c->generation), bad);
	jout_set(o, "epoch", json_integer((json_int_t)c->epoch), bad);
	jout_set(o, "started_ms", json_integer(c->started_ms), bad);
	jout_set(o, "finished_ms", json_integer(c->finished_ms), bad);
	jout_set(o, "last_page_ms", json_integer(c->last_page_ms), bad);
	jout_set(o, "wall_ms", json_integer(c->wall_ms), bad);
	jout_set(o, "cpu_ms", json_integer(c->cpu_ms), bad);
	jout_set(o, "devices", json_integer((json_int_t)c->devices), bad);
	jout_set(o, "noncompliant", json_integer((json_int_t)c->noncompliant), bad);
	jout_set(o, "writes", json_integer((json_int_t)c->writes), bad);
	jout_set(o, "complete", json_boolean(c->published && c->complete), bad);
	jout_set(o, "published", json_boolean(c->published), bad);
	jout_set(o, "skipped", c->published ? json_null() : jout_str(c->skipped), bad);
	for (size_t i = 0; i < c->nadapters; i++) {
		const struct recon_adapter *a = &c->adapters[i];
		json_t *e = json_object();

		jout_set(e, "name", jout_str(a->name), bad);
		jout_set(e, "complete", json_boolean(a->complete), bad);
		jout_set(e, "rows", json_integer((json_int_t)a->rows), bad);
		jout_set(e, "age_ms", a->age_ms < 0 ? json_null() : json_integer(a->age_ms), bad);
		jout_set(e, "why", a->why[0] ? jout_str(a->why) : json_null(), bad);
		if (!e || json_array_append_new(ads, e))
			*bad = true;
	}
	jout_set(o, "adapters", ads, bad);
	return o;
}

enum mdm_err recon_status_json(struct recon *r, struct buf *out)
{
	struct recon_cycle *c = malloc(sizeof(*c));
	struct snapshot *s = snapstore_current(r->p.store);
	json_t *o = json_object();
	bool bad = !c, have = false, running = false, queued = false;
	uint64_t cycles = 0;
	char *txt = NULL;
	enum mdm_err e = MDM_ERR_NOMEM;

	if (c) {
		pthread_mutex_lock(&r->in->mu);
		have = r->have_last;
		if (have)
			*c = r->last;
		running = r->running;
		queued = r->queued;
		cycles = r->cycles;
		pthread_mutex_unlock(&r->in->mu);
	}
	jout_set(o, "enabled", json_boolean(r->p.cfg->interval_ms > 0), &bad);
	jout_set(o, "interval_ms", json_integer(r->p.cfg->interval_ms), &bad);
	jout_set(o, "jitter", json_real(r->p.cfg->jitter), &bad);
	jout_set(o, "generation", json_integer(s ? (json_int_t)snapshot_generation(s) : 0), &bad);
	jout_set(o, "running", json_boolean(running), &bad);
	jout_set(o, "queued", json_boolean(queued), &bad);
	jout_set(o, "cycles", json_integer((json_int_t)cycles), &bad);
	jout_set(o, "last_cycle", have && c ? cycle_json(c, &bad) : json_null(), &bad);
	if (!bad && r->p.hooks.status)
		r->p.hooks.status(r->p.hooks.arg, o);
	if (!bad && (txt = json_dumps(o, JSON_COMPACT)) != NULL)
		e = buf_addstr(out, txt);
	free(txt);
	json_decref(o);
	snapshot_unref(s);
	free(c);
	return e;
}

void recon_destroy(struct recon *r)
{
	if (!r)
		return;
	atomic_store(&r->stop, true);
	pthread_mutex_lock(&r->in->mu);
	pthread_cond_broadcast(&r->in->cv);
	pthread_mutex_unlock(&r->in->mu);
	pthread_join(r->thread, NULL);
	for (size_t i = 0; i < RECON_MAX_ADAPTERS; i++) {
		rowset_unref(r->prev[i]);
		digests_free(&r->dig[i]);
	}
	inbox_unref(r->in);
	free(r);
}
