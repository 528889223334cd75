#include "unit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../../core/buf.h"
#include "../../core/clock.h"
#include "../../gateway/snapshot.h"

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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
