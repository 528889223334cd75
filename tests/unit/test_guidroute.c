/* guidroute: GUID -> adapters table. */
#include "unit.h"

#include <stdio.h>

#include "../../gateway/verdict/guidroute.h"

static void test_learn_get_forget(void **state)
{
	struct guidroute *g = guidroute_create(16);

	(void)state;
	assert_non_null(g);
	assert_int_equal(guidroute_get(g, "1759c0fd-c8da-49e8-b14f-19d85acfacea"), 0);
	guidroute_learn(g, "1759C0FD-C8DA-49E8-B14F-19D85ACFACEA", 3);
	/* compared ignoring case */
	assert_int_equal(guidroute_get(g, "1759c0fd-c8da-49e8-b14f-19d85acfacea"), 1u << 3);
	guidroute_learn(g, "1759c0fd-c8da-49e8-b14f-19d85acfacea", 0);
	assert_int_equal(guidroute_get(g, "1759c0fd-C8DA-49e8-b14f-19d85acfacea"), (1u << 3) | 1u);
	guidroute_forget(g, "1759c0fd-c8da-49e8-b14f-19d85acfacea", 3);
	assert_int_equal(guidroute_get(g, "1759c0fd-c8da-49e8-b14f-19d85acfacea"), 1u);
	guidroute_forget(g, "1759c0fd-c8da-49e8-b14f-19d85acfacea", 0);
	assert_int_equal(guidroute_get(g, "1759c0fd-c8da-49e8-b14f-19d85acfacea"), 0);
	/* forgetting an adapter that never reported it changes nothing */
	guidroute_learn(g, "abc", 1);
	guidroute_forget(g, "abc", 2);
	assert_int_equal(guidroute_get(g, "abc"), 1u << 1);
	guidroute_destroy(g);
}

static void test_bounds(void **state)
{
	struct guidroute *g = guidroute_create(0);
	char longer[64];

	(void)state;
	assert_non_null(g);
	guidroute_learn(g, "", 0);
	assert_int_equal(guidroute_get(g, ""), 0);
	guidroute_learn(g, NULL, 0);
	assert_int_equal(guidroute_get(g, NULL), 0);
	guidroute_learn(g, "x", 32); /* adapter out of range */
	assert_int_equal(guidroute_get(g, "x"), 0);
	guidroute_learn(g, "x", 31);
	assert_int_equal(guidroute_get(g, "x"), 1u << 31);
	/* a GUID over 43 bytes is never routed */
	snprintf(longer, sizeof(longer), "%s", "0123456789012345678901234567890123456789abcd");
	guidroute_learn(g, longer, 1);
	assert_int_equal(guidroute_get(g, longer), 0);
	guidroute_destroy(g);
	guidroute_destroy(NULL);
}

static void test_collision_evicts_never_misroutes(void **state)
{
	struct guidroute *g = guidroute_create(16);
	char name[32];
	unsigned kept = 0;

	(void)state;
	assert_non_null(g);
	/* 200 GUIDs in 16 slots: most are evicted, but none ever answers another's adapter */
	for (unsigned i = 0; i < 200; i++) {
		snprintf(name, sizeof(name), "guid-%u", i);
		guidroute_learn(g, name, i % 32);
	}
	for (unsigned i = 0; i < 200; i++) {
		uint32_t m;

		snprintf(name, sizeof(name), "guid-%u", i);
		m = guidroute_get(g, name);
		assert_true(m == 0 || m == 1u << (i % 32));
		kept += m != 0;
	}
	assert_true(kept > 0 && kept <= 16);
	guidroute_destroy(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_learn_get_forget),
	    cmocka_unit_test(test_bounds),
	    cmocka_unit_test(test_collision_evicts_never_misroutes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
