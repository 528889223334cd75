#include "unit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../../core/buf.h"
#include "../../core/clock.h"
#include "../../gateway/recon/snapshot.h"

static const struct merge_policy POLICY = {.compliant_requires_all = true};

/* --- a fake adapter that serves a fixed array in pages -------------------------------------- */

enum fake_mode {
	FAKE_OK = 0,
	FAKE_FAIL_PAGE,	  /* every page is OUTCOME_FAILED */
	FAKE_FAIL_CALL,	  /* list() itself returns an error */
	FAKE_FAIL_SECOND, /* the first page is served, the next ones fail */
	FAKE_NEVER,	  /* list() accepts and never answers (the test answers late) */
};

struct fake {
	struct adapter base;
	const struct device *devs;
	size_t n;
	size_t page;
	enum fake_mode mode;
	int calls;
	adapter_list_cb held_cb;
	void *held_arg;
};

static enum mdm_err fake_list(struct adapter *a, const char *cursor, adapter_list_cb cb, void *arg)
{
	struct fake *f = a->priv;
	struct adapter_page page;
	size_t start = cursor && *cursor ? strtoul(cursor, NULL, 10) : 0, i;

	f->calls++;
	if (f->mode == FAKE_FAIL_CALL)
		return MDM_ERR_UNAVAILABLE;
	if (f->mode == FAKE_NEVER) {
		f->held_cb = cb;
		f->held_arg = arg;
		return MDM_OK;
	}
	memset(&page, 0, sizeof(page));
	outcome_init(&page.oc);
	if (f->mode == FAKE_FAIL_PAGE || (f->mode == FAKE_FAIL_SECOND && start > 0)) {
		outcome_set(&page.oc, OUTCOME_FAILED, FAIL_UNREACHABLE, "connection refused");
		cb(arg, &page);
		outcome_clear(&page.oc);
		return MDM_OK;
	}
	for (i = start; i < f->n && i < start + f->page; i++)
		assert_int_equal(outcome_add(&page.oc, &f->devs[i]), MDM_OK);
	if (i < f->n)
		snprintf(page.next_cursor, sizeof(page.next_cursor), "%zu", i);
	cb(arg, &page); /* inline, before list() returns */
	outcome_clear(&page.oc);
	return MDM_OK;
}

static void fake_destroy(struct adapter *a)
{
	(void)a;
}

static const struct adapter_ops fake_ops = {
    .type = "fake",
    .list = fake_list,
    .destroy = fake_destroy,
};

static void fake_init(struct fake *f, const char *name, const struct device *devs, size_t n,
		      size_t page, enum fake_mode mode)
{
	memset(f, 0, sizeof(*f));
	f->base.ops = &fake_ops;
	f->base.priv = f;
	snprintf(f->base.name, sizeof(f->base.name), "%s", name);
	f->devs = devs;
	f->n = n;
	f->page = page;
	f->mode = mode;
}

static struct device mkdev(const char *src, unsigned i, enum tri compliant)
{
	struct device d;
	char mac[MAC_STR_LEN + 1];

	memset(&d, 0, sizeof(d));
	snprintf(d.source, sizeof(d.source), "%s", src);
	snprintf(d.vendor_id, sizeof(d.vendor_id), "%s-%u", src, i);
	snprintf(mac, sizeof(mac), "00163E%06X", i);
	assert_int_equal(device_add_mac(&d, mac), MDM_OK);
	d.registered = TRI_TRUE;
	d.compliant = compliant;
	return d;
}

/*
 * A view of a snapshot with every record expanded, so the listing and merging tests read
 * devices as plain structs: build() is what main.c does at start-up (each adapter listed into
 * a rowset, then snapshot_make generation 1).
 */
struct view {
	struct snapshot *snap;
	bool complete;
	const char *why;
	int64_t built_at;
	size_t ndevs;
	struct device *devs;
	const uint32_t *list[SNAP_LISTS];
	size_t nlist[SNAP_LISTS];
};

static struct view *view_of(struct snapshot *snap)
{
	struct view *v = calloc(1, sizeof(*v));

	assert_non_null(v);
	v->snap = snap;
	v->why = snapshot_why(snap) ? snapshot_why(snap) : "";
	v->complete = snapshot_why(snap) == NULL;
	v->built_at = snapshot_made_at(snap);
	v->ndevs = snapshot_count(snap);
	v->devs = calloc(v->ndevs ? v->ndevs : 1, sizeof(*v->devs));
	assert_non_null(v->devs);
	for (size_t i = 0; i < v->ndevs; i++)
		snapshot_get(snap, i, &v->devs[i]);
	for (int l = 0; l < SNAP_LISTS; l++)
		v->nlist[l] = snapshot_list(snap, (enum snapshot_list)l, &v->list[l]);
	return v;
}

static void view_free(struct view *v)
{
	if (!v)
		return;
	snapshot_unref(v->snap);
	free(v->devs);
	free(v);
}

static struct snapshot *make_from(struct adapter *const *ads, size_t nads, int64_t budget_ms,
				  uint64_t gen)
{
	struct rowset *sets[8] = {0};
	struct snapshot *s = NULL;
	int64_t deadline = clock_mono_ms() + budget_ms;

	assert_true(nads <= 8);
	for (size_t i = 0; i < nads; i++)
		assert_int_equal(snapshot_list_adapter(ads[i], deadline, &sets[i]), MDM_OK);
	assert_int_equal(snapshot_make(sets, NULL, nads, &POLICY, gen, &s), MDM_OK);
	assert_non_null(s);
	for (size_t i = 0; i < nads; i++)
		rowset_unref(sets[i]);
	return s;
}

static struct view *build(struct adapter *const *ads, size_t nads, int64_t budget_ms)
{
	return view_of(make_from(ads, nads, budget_ms, 1));
}

/* --- tests ---------------------------------------------------------------------------------- */

static void test_lists(void **state)
{
	struct device devs[6];
	struct fake f;
	struct adapter *ads[1] = {&f.base};
	struct view *s;
	const enum tri states[6] = {TRI_TRUE, TRI_FALSE, TRI_UNSET, TRI_FALSE, TRI_TRUE, TRI_FALSE};

	(void)state;
	for (unsigned i = 0; i < 6; i++)
		devs[i] = mkdev("a", i, states[i]);
	fake_init(&f, "a", devs, 6, 1000, FAKE_OK);
	s = build(ads, 1, 5000);
	assert_true(s->complete);
	assert_string_equal(s->why, "");
	assert_true(s->built_at > 1600000000000LL);
	assert_int_equal(s->ndevs, 6);
	assert_int_equal(s->nlist[SNAP_ALL], 6);
	assert_int_equal(s->nlist[SNAP_COMPLIANT], 2);
	assert_int_equal(s->nlist[SNAP_NONCOMPLIANT], 3);
	for (size_t i = 0; i < 6; i++)
		assert_int_equal(s->list[SNAP_ALL][i], i);
	/* sorted by MAC, and the MACs were made in index order */
	assert_int_equal(s->list[SNAP_COMPLIANT][0], 0);
	assert_int_equal(s->list[SNAP_COMPLIANT][1], 4);
	assert_int_equal(s->list[SNAP_NONCOMPLIANT][0], 1);
	assert_int_equal(s->list[SNAP_NONCOMPLIANT][1], 3);
	assert_int_equal(s->list[SNAP_NONCOMPLIANT][2], 5);
	assert_string_equal(s->devs[2].vendor_id, "a-2");
	assert_int_equal(s->devs[2].compliant, TRI_UNSET);
	assert_int_equal(f.calls, 1);
	view_free(s);
	view_free(NULL);
}

static void test_paging_collects_all(void **state)
{
	const size_t n = 2503;
	struct device *devs = calloc(n, sizeof(*devs));
	struct fake f;
	struct adapter *ads[1] = {&f.base};
	struct view *s;
	size_t want[3] = {0, 0, 0};

	(void)state;
	assert_non_null(devs);
	/* served in reverse MAC order, so the snapshot has to sort */
	for (size_t i = 0; i < n; i++) {
		unsigned id = (unsigned)(n - 1 - i);
		enum tri c = id % 3 == 0 ? TRI_TRUE : id % 3 == 1 ? TRI_FALSE : TRI_UNSET;

		devs[i] = mkdev("a", id, c);
		want[id % 3]++;
	}
	fake_init(&f, "a", devs, n, 1000, FAKE_OK);
	s = build(ads, 1, 10000);
	assert_int_equal(f.calls, 3);
	assert_true(s->complete);
	assert_int_equal(s->ndevs, n);
	assert_int_equal(s->nlist[SNAP_ALL], n);
	assert_int_equal(s->nlist[SNAP_COMPLIANT], want[0]);
	assert_int_equal(s->nlist[SNAP_NONCOMPLIANT], want[1]);
	for (size_t i = 0; i < n; i++) {
		char mac[MAC_STR_LEN + 1];

		snprintf(mac, sizeof(mac), "00163E%06zX", i);
		assert_string_equal(s->devs[i].macs[0], mac);
		assert_int_equal(s->devs[i].nmacs, 1);
	}
	for (size_t i = 0; i < s->nlist[SNAP_COMPLIANT]; i++)
		assert_int_equal(s->devs[s->list[SNAP_COMPLIANT][i]].compliant, TRI_TRUE);
	for (size_t i = 0; i < s->nlist[SNAP_NONCOMPLIANT]; i++)
		assert_int_equal(s->devs[s->list[SNAP_NONCOMPLIANT][i]].compliant, TRI_FALSE);
	for (size_t i = 1; i < s->nlist[SNAP_NONCOMPLIANT]; i++)
		assert_true(s->list[SNAP_NONCOMPLIANT][i] > s->list[SNAP_NONCOMPLIANT][i - 1]);
	view_free(s);
	free(devs);
}

static void test_exact_page_multiple(void **state)
{
	const size_t n = 2000;
	struct device *devs = calloc(n, sizeof(*devs));
	struct fake f;
	struct adapter *ads[1] = {&f.base};
	struct view *s;

	(void)state;
	assert_non_null(devs);
	for (size_t i = 0; i < n; i++)
		devs[i] = mkdev("a", (unsigned)i, TRI_TRUE);
	fake_init(&f, "a", devs, n, 1000, FAKE_OK);
	s = build(ads, 1, 10000);
	assert_int_equal(f.calls, 2);
	assert_true(s->complete);
	assert_int_equal(s->ndevs, n);
	assert_int_equal(s->nlist[SNAP_COMPLIANT], n);
	assert_int_equal(s->nlist[SNAP_NONCOMPLIANT], 0);
	view_free(s);
	free(devs);
}

static void test_merged_across_adapters(void **state)
{
	struct device da[2], db[2];
	struct fake a, b;
	struct adapter *ads[2] = {&a.base, &b.base};
	struct view *s;

	(void)state;
	da[0] = mkdev("a", 1, TRI_TRUE);
	da[1] = mkdev("a", 2, TRI_TRUE);
	db[0] = mkdev("b", 1, TRI_FALSE); /* the same MAC as a-1 */
	str_copy(db[0].failure_reason, sizeof(db[0].failure_reason), "BitLocker off");
	str_copy(db[0].model, sizeof(db[0].model), "Latitude");
	device_add_mac(&db[0], "00163EFFFFF1");
	db[1] = mkdev("b", 3, TRI_UNSET);
	fake_init(&a, "a", da, 2, 1000, FAKE_OK);
	fake_init(&b, "b", db, 2, 1000, FAKE_OK);
	s = build(ads, 2, 5000);
	assert_true(s->complete);
	assert_int_equal(s->ndevs, 3);
	assert_string_equal(s->devs[0].macs[0], "00163E000001");
	assert_string_equal(s->devs[0].vendor_id, "a-1"); /* first adapter's record first */
	assert_int_equal(s->devs[0].nmacs, 2);
	assert_string_equal(s->devs[0].macs[1], "00163EFFFFF1");
	assert_string_equal(s->devs[0].model, "Latitude");
	assert_int_equal(s->devs[0].compliant, TRI_FALSE); /* requires all */
	assert_string_equal(s->devs[0].failure_reason, "b: BitLocker off");
	assert_string_equal(s->devs[1].vendor_id, "a-2");
	assert_string_equal(s->devs[2].vendor_id, "b-3");
	assert_int_equal(s->nlist[SNAP_ALL], 3);
	assert_int_equal(s->nlist[SNAP_COMPLIANT], 1);
	assert_int_equal(s->list[SNAP_COMPLIANT][0], 1);
	assert_int_equal(s->nlist[SNAP_NONCOMPLIANT], 1);
	assert_int_equal(s->list[SNAP_NONCOMPLIANT][0], 0);
	view_free(s);
}

static void test_merged_by_guid_across_pages(void **state)
{
	const size_t n = 1500;
	struct device *da = calloc(n, sizeof(*da));
	struct device db[1];
	struct fake a, b;
	struct adapter *ads[2] = {&a.base, &b.base};
	struct view *s;

	(void)state;
	assert_non_null(da);
	for (size_t i = 0; i < n; i++)
		da[i] = mkdev("a", (unsigned)i, TRI_TRUE);
	str_copy(da[1200].guid, sizeof(da[1200].guid), "guid-1200");
	memset(&db[0], 0, sizeof(db[0]));
	str_copy(db[0].source, sizeof(db[0].source), "b");
	str_copy(db[0].vendor_id, sizeof(db[0].vendor_id), "b-x");
	str_copy(db[0].guid, sizeof(db[0].guid), "guid-1200");
	db[0].compliant = TRI_TRUE;
	db[0].jail_broken = TRI_TRUE;
	fake_init(&a, "a", da, n, 1000, FAKE_OK);
	fake_init(&b, "b", db, 1, 1000, FAKE_OK);
	s = build(ads, 2, 5000);
	assert_int_equal(s->ndevs, n);
	assert_string_equal(s->devs[1200].guid, "guid-1200");
	assert_int_equal(s->devs[1200].jail_broken, TRI_TRUE);
	assert_int_equal(s->devs[1199].jail_broken, TRI_UNSET);
	view_free(s);
	free(da);
}

static void test_failing_adapter(void **state)
{
	struct device devs[3];
	struct fake ok, bad;
	struct adapter *ads[2] = {&ok.base, &bad.base};
	struct view *s;

	(void)state;
	for (unsigned i = 0; i < 3; i++)
		devs[i] = mkdev("ok", i, TRI_FALSE);
	fake_init(&ok, "ok", devs, 3, 1000, FAKE_OK);
	fake_init(&bad, "mdm2", NULL, 0, 1000, FAKE_FAIL_PAGE);
	s = build(ads, 2, 5000);
	assert_false(s->complete);
	assert_string_equal(s->why, "mdm2: connection refused");
	assert_int_equal(s->ndevs, 3); /* still built from what did answer */
	assert_int_equal(s->nlist[SNAP_NONCOMPLIANT], 3);
	view_free(s);
}

static void test_two_failures_named(void **state)
{
	struct fake b1, b2, ok;
	struct adapter *ads[3] = {&b1.base, &ok.base, &b2.base};
	struct device d = mkdev("ok", 7, TRI_TRUE);
	struct view *s;

	(void)state;
	fake_init(&b1, "mdm2", NULL, 0, 1000, FAKE_FAIL_PAGE);
	fake_init(&ok, "ok", &d, 1, 1000, FAKE_OK);
	fake_init(&b2, "mdm3", NULL, 0, 1000, FAKE_FAIL_CALL);
	s = build(ads, 3, 5000);
	assert_false(s->complete);
	assert_string_equal(s->why, "mdm2: connection refused; mdm3: unavailable");
	assert_int_equal(s->ndevs, 1);
	assert_int_equal(ok.calls, 1);
	view_free(s);
}

static void test_failure_on_later_page(void **state)
{
	const size_t n = 1500;
	struct device *devs = calloc(n, sizeof(*devs));
	struct fake f;
	struct adapter *ads[1] = {&f.base};
	struct view *s;

	(void)state;
	assert_non_null(devs);
	for (size_t i = 0; i < n; i++)
		devs[i] = mkdev("a", (unsigned)i, TRI_TRUE);
	fake_init(&f, "flaky", devs, n, 1000, FAKE_FAIL_SECOND);
	s = build(ads, 1, 5000);
	assert_int_equal(f.calls, 2);
	assert_false(s->complete);
	assert_string_equal(s->why, "flaky: connection refused");
	/* a listing that failed part-way keeps none of its rows: the reconciler keeps the
	 * previous cycle's instead, never a half listing */
	assert_int_equal(s->ndevs, 0);
	view_free(s);
	free(devs);
}

static void *late_page(void *arg)
{
	struct fake *f = arg;
	struct adapter_page page;
	struct device d = mkdev("late", 99, TRI_TRUE);

	memset(&page, 0, sizeof(page));
	outcome_init(&page.oc);
	outcome_add(&page.oc, &d);
	f->held_cb(f->held_arg, &page);
	outcome_clear(&page.oc);
	return NULL;
}

static void test_adapter_never_answers(void **state)
{
	struct fake never, ok;
	struct device d = mkdev("ok", 1, TRI_TRUE);
	struct adapter *ads[2] = {&never.base, &ok.base};
	struct view *s;
	pthread_t t;
	int64_t t0;

	(void)state;
	fake_init(&never, "silent", NULL, 0, 1000, FAKE_NEVER);
	fake_init(&ok, "ok", &d, 1, 1000, FAKE_OK);
	t0 = clock_mono_ms();
	s = build(ads, 2, 100);
	assert_true(clock_mono_ms() - t0 < 3000);
	assert_false(s->complete);
	assert_string_equal(s->why, "silent: timed out");
	/* an answer given inline is taken even after the deadline */
	assert_int_equal(s->ndevs, 1);
	assert_string_equal(s->devs[0].vendor_id, "ok-1");
	assert_non_null(never.held_cb);
	/* the page arrives after the snapshot gave up: dropped without harm (ASan watches) */
	assert_int_equal(pthread_create(&t, NULL, late_page, &never), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	view_free(s);
}

static void test_sort_order(void **state)
{
	struct device devs[5];
	struct fake f;
	struct adapter *ads[1] = {&f.base};
	struct view *s;

	(void)state;
	memset(devs, 0, sizeof(devs));
	/* no MAC: after every device with one, by GUID then vendor id */
	str_copy(devs[0].vendor_id, sizeof(devs[0].vendor_id), "z");
	str_copy(devs[0].guid, sizeof(devs[0].guid), "g-b");
	str_copy(devs[1].vendor_id, sizeof(devs[1].vendor_id), "y");
	str_copy(devs[1].serial, sizeof(devs[1].serial), "SER1");
	devs[2] = mkdev("a", 0xB, TRI_TRUE);
	str_copy(devs[3].vendor_id, sizeof(devs[3].vendor_id), "x");
	str_copy(devs[3].guid, sizeof(devs[3].guid), "g-a");
	devs[4] = mkdev("a", 0xA, TRI_TRUE);
	device_add_mac(&devs[4], "00163E000000"); /* sorted by the first MAC, not the least */
	fake_init(&f, "a", devs, 5, 2, FAKE_OK);
	s = build(ads, 1, 5000);
	assert_int_equal(s->ndevs, 5);
	assert_string_equal(s->devs[0].macs[0], "00163E00000A");
	assert_string_equal(s->devs[1].macs[0], "00163E00000B");
	assert_string_equal(s->devs[2].vendor_id, "y"); /* GUID "" sorts before "g-a" */
	assert_string_equal(s->devs[3].vendor_id, "x");
	assert_string_equal(s->devs[4].vendor_id, "z");
	view_free(s);
}

static void test_no_adapters(void **state)
{
	struct view *s;

	(void)state;
	s = build(NULL, 0, 1000);
	assert_true(s->complete);
	assert_string_equal(s->why, "");
	assert_int_equal(s->ndevs, 0);
	for (int l = 0; l < SNAP_LISTS; l++)
		assert_int_equal(s->nlist[l], 0);
	view_free(s);
}

static void test_grouping_follows_chains(void **state)
{
	struct device da[1], db[1], dc[1];
	struct fake a, b, c;
	struct adapter *ads[3] = {&a.base, &b.base, &c.base};
	struct view *s;
	size_t ndevs;
	unsigned nmacs;

	(void)state;
	/*
	 * A chain: a has MAC 01; b has MACs 01 and 02 (joins a); c has only MAC 02, which it
	 * shares with b, not with a's first record. All three are one device.
	 */
	da[0] = mkdev("a", 1, TRI_TRUE);
	db[0] = mkdev("b", 1, TRI_TRUE);
	device_add_mac(&db[0], "00163E000002");
	dc[0] = mkdev("c", 2, TRI_FALSE);
	fake_init(&a, "a", da, 1, 1000, FAKE_OK);
	fake_init(&b, "b", db, 1, 1000, FAKE_OK);
	fake_init(&c, "c", dc, 1, 1000, FAKE_OK);
	s = build(ads, 3, 5000);
	ndevs = s->ndevs;
	nmacs = s->ndevs ? s->devs[0].nmacs : 0;
	view_free(s);
	assert_int_equal(ndevs, 1);
	assert_int_equal(nmacs, 2);
}

static void test_grouping_bridges(void **state)
{
	struct device da[2], db[1], dc[1];
	struct fake a, b, c;
	struct adapter *ads[3] = {&a.base, &b.base, &c.base};
	struct view *s;

	(void)state;
	/* a: MAC 01 and (another device) MAC 09; b: MAC 02; c: MACs 02 and 01 bridges a and b */
	da[0] = mkdev("a", 1, TRI_TRUE);
	da[1] = mkdev("a", 9, TRI_TRUE);
	db[0] = mkdev("b", 2, TRI_TRUE);
	dc[0] = mkdev("c", 2, TRI_FALSE);
	device_add_mac(&dc[0], "00163E000001");
	fake_init(&a, "a", da, 2, 1000, FAKE_OK);
	fake_init(&b, "b", db, 1, 1000, FAKE_OK);
	fake_init(&c, "c", dc, 1, 1000, FAKE_OK);
	s = build(ads, 3, 5000);
	assert_int_equal(s->ndevs, 2);
	assert_string_equal(s->devs[0].vendor_id, "a-1"); /* the first adapter's record leads */
	assert_int_equal(s->devs[0].nmacs, 2);
	assert_true(device_has_mac(&s->devs[0], "00163E000001"));
	assert_true(device_has_mac(&s->devs[0], "00163E000002"));
	assert_int_equal(s->devs[0].compliant, TRI_FALSE);
	assert_string_equal(s->devs[1].vendor_id, "a-9");
	assert_int_equal(s->nlist[SNAP_COMPLIANT], 1);
	assert_int_equal(s->nlist[SNAP_NONCOMPLIANT], 1);
	view_free(s);
}

/* An adapter with nothing enrolled answers one page with no array at all. */
static void test_empty_adapter(void **state)
{
	struct device d = mkdev("a", 1, TRI_FALSE);
	struct fake a, empty;
	struct adapter *ads[2] = {&a.base, &empty.base};
	struct view *s;

	(void)state;
	fake_init(&a, "a", &d, 1, 1000, FAKE_OK);
	fake_init(&empty, "empty", NULL, 0, 1000, FAKE_OK);
	s = build(ads, 2, 5000);
	assert_int_equal(empty.calls, 1);
	assert_true(s->complete);
	assert_int_equal(s->ndevs, 1);
	assert_int_equal(s->nlist[SNAP_NONCOMPLIANT], 1);
	view_free(s);
}

/* --- rowsets, generations, indexes, serialization, memory ------------------------------------ */

static struct rowset *rowset_of(const char *adapter, const struct device *devs, size_t n,
				int64_t listed_at)
{
	struct rowset *rs = rowset_new(adapter);

	assert_non_null(rs);
	assert_int_equal(rowset_add(rs, devs, n), MDM_OK);
	rowset_finish(rs, listed_at);
	return rs;
}

static struct snapshot *make(struct rowset *const *sets, const bool *stale, size_t n, uint64_t gen)
{
	struct snapshot *s = NULL;

	assert_int_equal(snapshot_make(sets, stale, n, &POLICY, gen, &s), MDM_OK);
	assert_non_null(s);
	return s;
}

/* A device as a vendor would list it: every identifier set, facts repeating across devices. */
static struct device fulldev(const char *src, unsigned i)
{
	struct device d = mkdev(src, i, i % 4 == 0 ? TRI_FALSE : TRI_TRUE);

	snprintf(d.guid, sizeof(d.guid), "%08X-4B2C-11EE-BE56-%012X", i * 7919u, i);
	snprintf(d.udid, sizeof(d.udid), "%08x%032x", i, i * 31u);
	snprintf(d.imei, sizeof(d.imei), "35%013u", i);
	snprintf(d.meid, sizeof(d.meid), "A1%012X", i);
	snprintf(d.serial, sizeof(d.serial), "SN%010u", i);
	snprintf(d.hostname, sizeof(d.hostname), "host-%u.corp.example.com", i);
	snprintf(d.username, sizeof(d.username), "User%u@Corp.Example.com", i / 2); /* two each */
	snprintf(d.manufacturer, sizeof(d.manufacturer), "%s", i % 2 ? "Apple" : "Samsung");
	snprintf(d.model, sizeof(d.model), "Model %u", i % 20);
	snprintf(d.os_version, sizeof(d.os_version), "17.%u", i % 6);
	if (i % 4 == 0)
		snprintf(d.failure_reason, sizeof(d.failure_reason), "Passcode policy %u", i % 3);
	d.last_checkin_ms = 1700000000000LL + (int64_t)(i % 1000) * 60000;
	d.disk_encrypted = TRI_TRUE;
	d.ownership = OWN_CORPORATE;
	return d;
}

static void test_stale_set_shared(void **state)
{
	struct device da[3], db[2];
	struct rowset *a1, *b1, *b2, *sets[2];
	bool stale[2] = {true, false};
	struct snapshot *g1, *g2;
	struct snapshot_state st;
	const struct rowset *kept;
	bool was_stale = false;
	long i;

	(void)state;
	for (unsigned k = 0; k < 3; k++)
		da[k] = fulldev("a", k);
	db[0] = mkdev("b", 1, TRI_FALSE); /* the same MAC as a's device 1 */
	db[1] = mkdev("b", 7, TRI_TRUE);
	a1 = rowset_of("a", da, 3, 1000);
	b1 = rowset_of("b", db, 2, 1000);
	sets[0] = a1;
	sets[1] = b1;
	g1 = make(sets, NULL, 2, 1);
	/* cycle 2: a failed, its rows kept (stale); b listed again, one device changed */
	db[1].compliant = TRI_FALSE;
	b2 = rowset_of("b", db, 2, 5000);
	sets[1] = b2;
	g2 = make(sets, stale, 2, 2);
	rowset_unref(a1);
	rowset_unref(b1);
	rowset_unref(b2);
	kept = snapshot_set(g2, 0, &was_stale);
	assert_ptr_equal(kept, snapshot_set(g1, 0, NULL)); /* the very rows, not a copy */
	assert_true(was_stale);
	assert_null(snapshot_why(g2)); /* stale rows are not a failure */
	assert_int_equal(snapshot_generation(g2), 2);
	assert_int_equal(snapshot_count(g2), 4);
	i = snapshot_find_key(g2, "00163E000001");
	assert_true(i >= 0);
	snapshot_state(g2, (size_t)i, &st);
	assert_true(st.stale); /* a row of it is from the stale set */
	assert_int_equal(st.listed_at_ms, 1000);
	assert_int_equal(st.compliant, TRI_FALSE); /* b says no, compliance requires all */
	assert_string_equal(st.source, "a");
	assert_string_equal(st.mac, "00163E000001");
	assert_string_equal(st.guid, da[1].guid);
	i = snapshot_find_key(g2, "00163E000007");
	snapshot_state(g2, (size_t)i, &st);
	assert_false(st.stale);
	assert_int_equal(st.listed_at_ms, 5000);
	assert_int_equal(st.compliant, TRI_FALSE);
	i = snapshot_find_key(g1, "00163E000007");
	snapshot_state(g1, (size_t)i, &st);
	assert_int_equal(st.compliant, TRI_TRUE); /* generation 1 unchanged */
	snapshot_unref(g1);
	snapshot_unref(g2);
}

static void test_unchanged_listing_shares_memory(void **state)
{
	enum { N = 2000 };
	struct device *devs = calloc(N, sizeof(*devs));
	struct rowset *r1, *r2;
	struct snapshot *g1, *g2;
	size_t before, one, two;

	(void)state;
	assert_non_null(devs);
	for (unsigned i = 0; i < N; i++)
		devs[i] = fulldev("a", i);
	before = snapshot_mem_bytes();
	r1 = rowset_of("a", devs, N, 1000);
	g1 = make(&r1, NULL, 1, 1);
	one = snapshot_mem_bytes() - before;
	/* the next cycle lists the same devices: same rows, same merged core */
	r2 = rowset_of("a", devs, N, 2000);
	g2 = make(&r2, NULL, 1, 2);
	two = snapshot_mem_bytes() - before;
	assert_int_equal(rowset_count(r2), N);
	assert_int_equal(rowset_listed_at(r2), 2000);
	assert_string_equal(rowset_adapter(r2), "a");
	assert_true(two - one < 2048); /* headers only */
	assert_int_equal(snapshot_count(g2), N);
	/* one device changes: a generation of its own */
	devs[5].compliant = TRI_FALSE;
	rowset_unref(r2);
	r2 = rowset_of("a", devs, N, 3000);
	snapshot_unref(g2);
	g2 = make(&r2, NULL, 1, 3);
	assert_true(snapshot_mem_bytes() - before > one + one / 2);
	{
		struct snapshot_state st;

		snapshot_state(g2, (size_t)snapshot_find_key(g2, "00163E000005"), &st);
		assert_int_equal(st.compliant, TRI_FALSE);
		snapshot_state(g1, (size_t)snapshot_find_key(g1, "00163E000005"), &st);
		assert_int_equal(st.compliant, TRI_TRUE);
	}
	rowset_unref(r1);
	rowset_unref(r2);
	snapshot_unref(g1);
	snapshot_unref(g2);
	assert_int_equal(snapshot_mem_bytes(), before);
	free(devs);
}

static size_t find(const struct snapshot *s, enum ident_kind kind, const char *value, uint32_t *out,
		   size_t max)
{
	struct ident id;
	char why[128];

	assert_int_equal(ident_parse(kind, value, strlen(value), &id, why, sizeof(why)), MDM_OK);
	return snapshot_find(s, &id, out, max);
}

static void test_indexes(void **state)
{
	struct device da[40], db[1], dc[1];
	struct rowset *sets[3];
	struct snapshot *s;
	struct device got;
	uint32_t hit[4];
	long k;

	(void)state;
	for (unsigned i = 0; i < 40; i++)
		da[i] = fulldev("a", i);
	/* b knows device 3 by its GUID and adds a second MAC and a UDID of its own */
	memset(db, 0, sizeof(db));
	str_copy(db[0].vendor_id, sizeof(db[0].vendor_id), "b-3");
	str_copy(db[0].guid, sizeof(db[0].guid), da[3].guid);
	str_copy(db[0].hostname, sizeof(db[0].hostname), "Laptop-Three");
	device_add_mac(&db[0], "0A0B0C0D0E0F");
	/* c: a device with no MAC and no GUID: keyed by adapter and vendor id */
	memset(dc, 0, sizeof(dc));
	str_copy(dc[0].vendor_id, sizeof(dc[0].vendor_id), "c-only");
	str_copy(dc[0].serial, sizeof(dc[0].serial), "C-SERIAL");
	sets[0] = rowset_of("a", da, 40, 1000);
	sets[1] = rowset_of("b", db, 1, 1000);
	sets[2] = rowset_of("c", dc, 1, 1000);
	s = make(sets, NULL, 3, 9);
	for (int i = 0; i < 3; i++)
		rowset_unref(sets[i]);
	assert_int_equal(snapshot_count(s), 41);
	/* every kind, each to the device that carries it */
	assert_int_equal(find(s, IDENT_MAC, "00:16:3e:00:00:03", hit, 4), 1);
	snapshot_get(s, hit[0], &got);
	assert_string_equal(got.vendor_id, "a-3");
	assert_int_equal(find(s, IDENT_MAC, "0a0b.0c0d.0e0f", hit + 1, 3), 1); /* b's own MAC */
	assert_int_equal(hit[1], hit[0]);
	assert_int_equal(find(s, IDENT_GUID, da[3].guid, hit + 1, 3), 1);
	assert_int_equal(hit[1], hit[0]);
	assert_int_equal(find(s, IDENT_UDID, da[3].udid, hit + 1, 3), 1);
	assert_int_equal(hit[1], hit[0]);
	assert_int_equal(find(s, IDENT_IMEI, da[3].imei, hit + 1, 3), 1);
	assert_int_equal(hit[1], hit[0]);
	assert_int_equal(find(s, IDENT_MEID, da[3].meid, hit + 1, 3), 1);
	assert_int_equal(hit[1], hit[0]);
	assert_int_equal(find(s, IDENT_SERIAL, da[3].serial, hit + 1, 3), 1);
	assert_int_equal(hit[1], hit[0]);
	assert_int_equal(find(s, IDENT_HOSTNAME, "HOST-3.corp.example.COM", hit + 1, 3), 1);
	assert_int_equal(hit[1], hit[0]);
	/* a hostname only the second adapter's row carries still finds the merged device */
	assert_int_equal(find(s, IDENT_HOSTNAME, "laptop-three", hit + 1, 3), 1);
	assert_int_equal(hit[1], hit[0]);
	/* user names: case-insensitive, several devices each (devices 6 and 7) */
	assert_int_equal(find(s, IDENT_USERNAME, "USER3@corp.example.com", hit, 4), 2);
	assert_true(hit[0] < hit[1]);
	snapshot_get(s, hit[0], &got);
	assert_string_equal(got.vendor_id, "a-6");
	snapshot_get(s, hit[1], &got);
	assert_string_equal(got.vendor_id, "a-7");
	assert_int_equal(find(s, IDENT_USERNAME, "user3@corp.example.com", hit, 1), 2); /* count */
	/* unknown values: nothing, however close */
	assert_int_equal(find(s, IDENT_USERNAME, "user3@corp.example.co", hit, 4), 0);
	assert_int_equal(find(s, IDENT_MAC, "00163E0000FF", hit, 4), 0);
	assert_int_equal(find(s, IDENT_GUID, "nope", hit, 4), 0);
	/* GUIDs compare as sent */
	{
		char lower[GUID_MAX + 1];

		str_copy(lower, sizeof(lower), da[4].guid);
		for (char *p = lower; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
		assert_int_equal(find(s, IDENT_GUID, lower, hit, 4), 0);
	}
	/* keys */
	k = snapshot_find_key(s, "00163E000003");
	assert_true(k >= 0);
	snapshot_get(s, (size_t)k, &got);
	assert_string_equal(got.vendor_id, "a-3");
	assert_int_equal(snapshot_find_key(s, "0A0B0C0D0E0F"), -1); /* not its first MAC */
	k = snapshot_find_key(s, "c:c-only");
	assert_int_equal(k, 40); /* no MAC: sorted last */
	{
		struct snapshot_state st;

		snapshot_state(s, (size_t)k, &st);
		assert_string_equal(st.key, "c:c-only");
		assert_string_equal(st.mac, "");
		assert_string_equal(st.guid, "");
		assert_string_equal(st.source, "c");
	}
	assert_int_equal(find(s, IDENT_SERIAL, "c-serial", hit, 4), 1);
	assert_int_equal(hit[0], 40);
	assert_int_equal(snapshot_find_key(s, "c:nothing"), -1);
	snapshot_unref(s);
}

static void test_guid_key(void **state)
{
	struct device d;
	struct rowset *rs;
	struct snapshot *s;
	struct snapshot_state st;

	(void)state;
	memset(&d, 0, sizeof(d));
	str_copy(d.vendor_id, sizeof(d.vendor_id), "v1");
	str_copy(d.guid, sizeof(d.guid), "Guid-ABC");
	d.registered = TRI_FALSE;
	d.jail_broken = TRI_TRUE;
	rs = rowset_of("cloud", &d, 1, 1);
	s = make(&rs, NULL, 1, 1);
	rowset_unref(rs);
	assert_int_equal(snapshot_find_key(s, "guid:Guid-ABC"), 0);
	assert_int_equal(snapshot_find_key(s, "guid:guid-abc"), -1);
	snapshot_state(s, 0, &st);
	assert_string_equal(st.key, "guid:Guid-ABC");
	assert_string_equal(st.guid, "Guid-ABC");
	assert_int_equal(st.registered, TRI_FALSE);
	assert_int_equal(st.jail_broken, TRI_TRUE);
	assert_int_equal(st.compliant, TRI_UNSET);
	snapshot_unref(s);
}

static void test_store_generations(void **state)
{
	struct snapstore *st = snapstore_create(150);
	struct snapshot *g[4], *held, *got;

	(void)state;
	assert_non_null(st);
	assert_null(snapstore_current(st));
	for (int i = 1; i <= 3; i++) {
		g[i] = make(NULL, NULL, 0, (uint64_t)i);
		snapstore_publish(st, g[i]);
	}
	got = snapstore_current(st);
	assert_int_equal(snapshot_generation(got), 3);
	snapshot_unref(got);
	for (uint64_t i = 1; i <= 3; i++) {
		got = snapstore_get(st, i);
		assert_non_null(got);
		assert_int_equal(snapshot_generation(got), i);
		snapshot_unref(got);
	}
	assert_null(snapstore_get(st, 4));
	held = snapstore_get(st, 1); /* a reader still walking generation 1 */
	usleep(300 * 1000);
	assert_null(snapstore_get(st, 1)); /* replaced more than retain_ms ago */
	assert_null(snapstore_get(st, 2));
	got = snapstore_get(st, 3); /* the current one never expires */
	assert_non_null(got);
	snapshot_unref(got);
	assert_int_equal(snapshot_generation(held), 1); /* the reader's reference is still good */
	snapshot_unref(held);
	snapstore_destroy(st);
	snapstore_destroy(NULL);
}

static void test_store_keeps_at_most(void **state)
{
	struct snapstore *st = snapstore_create(60 * 60 * 1000);
	struct snapshot *got;

	(void)state;
	for (uint64_t i = 1; i <= SNAPSTORE_KEEP_MAX + 5; i++)
		snapstore_publish(st, make(NULL, NULL, 0, i));
	/* the current one and SNAPSTORE_KEEP_MAX replaced ones: 5 .. KEEP_MAX + 5 */
	assert_null(snapstore_get(st, 4));
	got = snapstore_get(st, 5);
	assert_non_null(got); /* the oldest still kept */
	snapshot_unref(got);
	snapstore_publish(st, make(NULL, NULL, 0, SNAPSTORE_KEEP_MAX + 6));
	assert_null(snapstore_get(st, 5)); /* pushed out by count, not age */
	got = snapstore_get(st, 6);
	assert_non_null(got);
	snapshot_unref(got);
	snapstore_destroy(st);
}

static uint64_t fnv64(const unsigned char *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

static void reseal(unsigned char *p, size_t n)
{
	uint64_t h = fnv64(p, n - 8);

	for (int i = 0; i < 8; i++)
		p[n - 8 + i] = (unsigned char)(h >> (8 * i));
}

static void test_serialization(void **state)
{
	struct device da[50], db[2];
	struct rowset *sets[3], *failed;
	bool stale[3] = {false, true, false};
	struct snapshot *s, *r = NULL;
	struct buf b;
	unsigned char *copy;

	(void)state;
	for (unsigned i = 0; i < 50; i++)
		da[i] = fulldev("a", i);
	db[0] = mkdev("b", 3, TRI_FALSE);
	db[1] = mkdev("b", 99, TRI_TRUE);
	sets[0] = rowset_of("a", da, 50, 111);
	sets[1] = rowset_of("b", db, 2, 222);
	failed = rowset_new("c");
	rowset_fail(failed, "connection refused");
	rowset_finish(failed, 333);
	sets[2] = failed;
	s = make(sets, stale, 3, 77);
	buf_init(&b, 64u << 20);
	assert_int_equal(snapshot_write(s, &b), MDM_OK);
	assert_int_equal(snapshot_read(b.mem, b.len, &r), MDM_OK);
	assert_int_equal(snapshot_generation(r), 77);
	assert_int_equal(snapshot_made_at(r), snapshot_made_at(s));
	assert_string_equal(snapshot_why(r), "c: connection refused");
	assert_int_equal(snapshot_count(r), snapshot_count(s));
	for (size_t i = 0; i < snapshot_sets(r); i++) {
		bool x, y;

		assert_string_equal(rowset_adapter(snapshot_set(r, i, &x)),
				    rowset_adapter(snapshot_set(s, i, &y)));
		assert_int_equal(x, y);
		assert_int_equal(rowset_listed_at(snapshot_set(r, i, NULL)),
				 rowset_listed_at(snapshot_set(s, i, NULL)));
	}
	for (size_t i = 0; i < snapshot_count(s); i++) {
		struct device x, y;
		struct snapshot_state sx, sy;

		snapshot_get(s, i, &x);
		snapshot_get(r, i, &y);
		assert_memory_equal(&x, &y, sizeof(x));
		snapshot_state(s, i, &sx);
		snapshot_state(r, i, &sy);
		assert_string_equal(sx.key, sy.key);
		assert_int_equal(sx.stale, sy.stale);
		assert_int_equal(sx.compliant, sy.compliant);
	}
	for (int l = 0; l < SNAP_LISTS; l++) {
		const uint32_t *x, *y;
		size_t nx = snapshot_list(s, (enum snapshot_list)l, &x);

		assert_int_equal(snapshot_list(r, (enum snapshot_list)l, &y), nx);
		assert_memory_equal(x, y, nx * sizeof(*x));
	}
	snapshot_unref(r);
	/* every truncation, and a flipped bit anywhere, is refused */
	for (size_t n = 0; n < b.len; n += n < 64 ? 1 : 97)
		assert_int_equal(snapshot_read(b.mem, n, &r), MDM_ERR_PARSE);
	copy = malloc(b.len + 1);
	assert_non_null(copy);
	for (size_t at = 0; at < b.len; at += 13) {
		memcpy(copy, b.mem, b.len);
		copy[at] ^= 0x10;
		assert_int_equal(snapshot_read(copy, b.len, &r), MDM_ERR_PARSE);
		assert_null(r);
	}
	/* a well-sealed document that lies is refused too: the checksum is not the only check */
	{
		/* header 8+4+4+8+8+4, then set a: name (2+1), stale, failed, why (2+0), listed_at,
		 * three counts: the first row's first string offset follows */
		size_t row0 = 36 + 3 + 1 + 1 + 2 + 8 + 12;
		unsigned char v;

		memcpy(copy, b.mem, b.len);
		copy[row0 + 3] = 0x7f; /* an offset far past the pool */
		reseal(copy, b.len);
		assert_int_equal(snapshot_read(copy, b.len, &r), MDM_ERR_PARSE);
		memcpy(copy, b.mem, b.len);
		v = copy[row0 + 14 * 4 + 8 + 4]; /* the MAC count */
		assert_int_equal(v, 1);
		copy[row0 + 14 * 4 + 8 + 4] = 6;
		reseal(copy, b.len);
		assert_int_equal(snapshot_read(copy, b.len, &r), MDM_ERR_PARSE);
		memcpy(copy, b.mem, b.len);
		copy[row0 + 14 * 4 + 8 + 4 + 2] = 0xff; /* tri-states out of range */
		reseal(copy, b.len);
		assert_int_equal(snapshot_read(copy, b.len, &r), MDM_ERR_PARSE);
		memcpy(copy, b.mem, b.len);
		copy[12] = 9; /* policy bits */
		reseal(copy, b.len);
		assert_int_equal(snapshot_read(copy, b.len, &r), MDM_ERR_PARSE);
		memcpy(copy, b.mem, b.len);
		copy[8] = 2; /* a version this reader does not know */
		reseal(copy, b.len);
		assert_int_equal(snapshot_read(copy, b.len, &r), MDM_ERR_PARSE);
	}
	free(copy);
	buf_free(&b);
	snapshot_unref(s);
	for (int i = 0; i < 3; i++)
		rowset_unref(sets[i]);
}

/*
 * 100k devices as a vendor lists them (every identifier, repeating facts) in two adapters that
 * overlap by a tenth, three generations kept as the reconciler keeps them (one unchanged, one
 * with a change): the bytes this module holds, per device, from its own accounting.
 */
static void test_memory_100k(void **state)
{
	enum { N = 100000, NB = 20000 };
	struct device *da = calloc(N - NB / 2, sizeof(*da)), *db = calloc(NB, sizeof(*db));
	struct rowset *sets[2];
	size_t before = snapshot_mem_bytes(), per;
	struct snapstore *st = snapstore_create(60000);
	struct snapshot *cur;

	(void)state;
	assert_non_null(da);
	assert_non_null(db);
	for (unsigned i = 0; i < N - NB / 2; i++)
		da[i] = fulldev("a", i);
	for (unsigned i = 0; i < NB; i++) /* half of b's devices are a's too (same MAC) */
		db[i] = fulldev("b", i < NB / 2 ? i * 7 : N + i);
	for (uint64_t gen = 1; gen <= 3; gen++) {
		if (gen == 3)
			da[42].compliant = TRI_FALSE;
		sets[0] = rowset_of("a", da, N - NB / 2, (int64_t)gen);
		sets[1] = rowset_of("b", db, NB, (int64_t)gen);
		snapstore_publish(st, make(sets, NULL, 2, gen));
		rowset_unref(sets[0]);
		rowset_unref(sets[1]);
	}
	cur = snapstore_current(st);
	assert_int_equal(snapshot_count(cur), N);
	per = (snapshot_mem_bytes() - before) / N;
	print_message("snapshot memory: %zu bytes per device, 3 generations\n", per);
	assert_true(per < 1024);
	snapshot_unref(cur);
	snapstore_destroy(st);
	assert_int_equal(snapshot_mem_bytes(), before);
	free(da);
	free(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lists),
	    cmocka_unit_test(test_paging_collects_all),
	    cmocka_unit_test(test_exact_page_multiple),
	    cmocka_unit_test(test_merged_across_adapters),
	    cmocka_unit_test(test_merged_by_guid_across_pages),
	    cmocka_unit_test(test_failing_adapter),
	    cmocka_unit_test(test_two_failures_named),
	    cmocka_unit_test(test_failure_on_later_page),
	    cmocka_unit_test(test_adapter_never_answers),
	    cmocka_unit_test(test_sort_order),
	    cmocka_unit_test(test_no_adapters),
	    cmocka_unit_test(test_grouping_follows_chains),
	    cmocka_unit_test(test_grouping_bridges),
	    cmocka_unit_test(test_empty_adapter),
	    cmocka_unit_test(test_stale_set_shared),
	    cmocka_unit_test(test_unchanged_listing_shares_memory),
	    cmocka_unit_test(test_indexes),
	    cmocka_unit_test(test_guid_key),
	    cmocka_unit_test(test_store_generations),
	    cmocka_unit_test(test_store_keeps_at_most),
	    cmocka_unit_test(test_serialization),
	    cmocka_unit_test(test_memory_100k),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
