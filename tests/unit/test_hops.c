/* test_hops: the loop and chain guard of gateway/server/hops.h. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/log.h"
#include "../../gateway/server/hops.h"

/* A -> B -> A: B remembers A, so B's request back to A names A, and A refuses it. */
static void test_loop_refused(void **state)
{
	struct hops *a = hops_create("gw-a:8443", 4), *b = hops_create("gw-b:8443", 4);
	char via[512], why[320];
	unsigned n = 0;

	(void)state;
	hops_provide(a, via, sizeof(via), &n);
	assert_string_equal(via, "gw-a:8443");
	assert_int_equal(n, 1);
	assert_int_equal(hops_check(b, via, "1", why, sizeof(why)), MDM_OK);
	hops_provide(b, via, sizeof(via), &n);
	assert_string_equal(via, "gw-b:8443,gw-a:8443");
	assert_int_equal(n, 2);
	assert_int_equal(hops_check(a, via, "2", why, sizeof(why)), MDM_ERR_FORBIDDEN);
	assert_non_null(strstr(why, "loop: this gateway (gw-a:8443)"));
	assert_int_equal(hops_refused(a), 1);
	assert_int_equal(hops_refused(b), 0);
	/* pointed at itself: its own first request */
	hops_provide(a, via, sizeof(via), &n);
	assert_int_equal(hops_check(a, via, "1", why, sizeof(why)), MDM_ERR_FORBIDDEN);
	/* blanks around ids, and a NAC's request without headers */
	assert_int_equal(hops_check(a, " x , gw-a:8443 ", NULL, why, sizeof(why)),
			 MDM_ERR_FORBIDDEN);
	assert_int_equal(hops_check(a, NULL, NULL, why, sizeof(why)), MDM_OK);
	assert_int_equal(hops_check(a, "gw-a:84430", "bad", why, sizeof(why)), MDM_OK);
	hops_destroy(a);
	hops_destroy(b);
}

/* Chains are cut by count: Hops >= max_hops is refused. */
static void test_too_many_hops(void **state)
{
	struct hops *h = hops_create("gw-z", 3);
	char via[512], why[320];
	unsigned n = 0;

	(void)state;
	assert_int_equal(hops_check(h, "gw-y,gw-x", "2", why, sizeof(why)), MDM_OK);
	hops_provide(h, via, sizeof(via), &n);
	assert_int_equal(n, 3); /* 1 + the largest seen */
	assert_int_equal(hops_check(h, "gw-w", "3", why, sizeof(why)), MDM_ERR_FORBIDDEN);
	assert_non_null(strstr(why, "too many hops"));
	hops_destroy(h);
}

/* The downstream set is bounded, and a Via that does not fit is cut at an id. */
static void test_bounded(void **state)
{
	struct hops *h = hops_create("own", 4);
	char id[32], via[4200], why[320], small[16];
	unsigned n = 0, commas = 0;

	(void)state;
	for (int i = 0; i < 200; i++) {
		snprintf(id, sizeof(id), "gw-%03d", i);
		assert_int_equal(hops_check(h, id, "1", why, sizeof(why)), MDM_OK);
	}
	hops_provide(h, via, sizeof(via), &n);
	for (const char *p = via; *p; p++)
		commas += *p == ',';
	assert_int_equal(commas, HOPS_MAX_DOWNSTREAM);
	assert_non_null(strstr(via, "gw-199"));
	assert_null(strstr(via, "gw-000"));
	hops_provide(h, small, sizeof(small), &n);
	assert_int_equal(strncmp(small, "own,gw-", 7), 0); /* one whole id, not a part */
	assert_int_equal(strlen(small), 10);
	hops_destroy(h);
	assert_null(hops_create("", 4));
	assert_null(hops_create("x", 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_loop_refused),
	    cmocka_unit_test(test_too_many_hops),
	    cmocka_unit_test(test_bounded),
	};

	log_set_level(LOGL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
