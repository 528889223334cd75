/* pages: a listing generation served in pages by cursor. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>

#include "../../adapters/pages.h"

static struct device *devices(size_t n)
{
	struct device *d = calloc(n ? n : 1, sizeof(*d));

	assert_non_null(d);
	for (size_t i = 0; i < n; i++)
		snprintf(d[i].vendor_id, sizeof(d[i].vendor_id), "dev-%zu", i);
	return d;
}

static void test_walk_one_generation(void **state)
{
	struct pages p;
	struct adapter_page pg;
	unsigned long long gen;
	char cursor[64];
	size_t seen = 0, pages = 0;

	(void)state;
	assert_int_equal(pages_init(&p), MDM_OK);
	gen = pages_hold(&p, devices(2 * PAGES_SIZE + 5), 2 * PAGES_SIZE + 5);
	assert_int_equal(gen, 1);
	pages_page(&p, gen, 0, &pg);
	for (;;) {
		assert_int_equal(pg.oc.kind, OUTCOME_FOUND);
		for (size_t i = 0; i < pg.oc.ndevs; i++) {
			char want[32];

			snprintf(want, sizeof(want), "dev-%zu", seen + i);
			assert_string_equal(pg.oc.devs[i].vendor_id, want);
		}
		seen += pg.oc.ndevs;
		pages++;
		snprintf(cursor, sizeof(cursor), "%s", pg.next_cursor);
		outcome_clear(&pg.oc);
		if (!cursor[0])
			break;
		pages_serve(&p, cursor, &pg);
	}
	assert_int_equal(seen, 2 * PAGES_SIZE + 5);
	assert_int_equal(pages, 3);
	/* the last page was served: the generation is drained, its records freed */
	assert_null(p.devs);
	pages_serve(&p, "g1:1000", &pg);
	assert_int_equal(pg.oc.kind, OUTCOME_FAILED);
	assert_string_equal(pg.oc.why, "listing cursor expired");
	outcome_clear(&pg.oc);
	pages_page(&p, gen, 0, &pg);
	assert_int_equal(pg.oc.kind, OUTCOME_FAILED);
	outcome_clear(&pg.oc);
	pages_free(&p);
}

static void test_replaced_generation_expires(void **state)
{
	struct pages p;
	struct adapter_page pg;
	unsigned long long gen;
	char cursor[64];

	(void)state;
	assert_int_equal(pages_init(&p), MDM_OK);
	/* nothing held yet: any cursor is expired */
	pages_serve(&p, "g0:0", &pg);
	assert_int_equal(pg.oc.kind, OUTCOME_FAILED);
	outcome_clear(&pg.oc);
	gen = pages_hold(&p, devices(PAGES_SIZE + 1), PAGES_SIZE + 1);
	pages_page(&p, gen, 0, &pg);
	snprintf(cursor, sizeof(cursor), "%s", pg.next_cursor);
	outcome_clear(&pg.oc);
	assert_string_equal(cursor, "g1:1000");
	/* a new generation: the old walk's cursor must not read into it */
	assert_int_equal(pages_hold(&p, devices(PAGES_SIZE + 1), PAGES_SIZE + 1), 2);
	pages_serve(&p, cursor, &pg);
	assert_int_equal(pg.oc.kind, OUTCOME_FAILED);
	assert_string_equal(pg.oc.why, "listing cursor expired");
	outcome_clear(&pg.oc);
	pages_serve(&p, "g2:1000", &pg);
	assert_int_equal(pg.oc.kind, OUTCOME_FOUND);
	assert_int_equal(pg.oc.ndevs, 1);
	assert_string_equal(pg.next_cursor, "");
	outcome_clear(&pg.oc);
	/* past the end, malformed */
	const char *bad[] = {"g2:1002", "g2:1001", "g2", "2:0", "g:1", "g2:1x", "g2:-1", "x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		pages_serve(&p, bad[i], &pg);
		assert_int_equal(pg.oc.kind, OUTCOME_FAILED);
		outcome_clear(&pg.oc);
	}
	pages_free(&p);
}

static void test_empty_listing(void **state)
{
	struct pages p;
	struct adapter_page pg;
	unsigned long long gen;

	(void)state;
	assert_int_equal(pages_init(&p), MDM_OK);
	gen = pages_hold(&p, NULL, 0);
	pages_page(&p, gen, 0, &pg);
	assert_int_not_equal(pg.oc.kind, OUTCOME_FAILED);
	assert_int_equal(pg.oc.ndevs, 0);
	assert_string_equal(pg.next_cursor, "");
	outcome_clear(&pg.oc);
	pages_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_walk_one_generation),
	    cmocka_unit_test(test_replaced_generation_expires),
	    cmocka_unit_test(test_empty_listing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
