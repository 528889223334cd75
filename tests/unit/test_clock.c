/* test_clock: durations and the ISO 8601 form operators read. */
#include "unit.h"

#include "../../core/clock.h"

static void test_iso(void **state)
{
	char out[CLOCK_ISO_SIZE];

	(void)state;
	assert_int_equal(clock_iso(0, out), MDM_OK);
	assert_string_equal(out, "1970-01-01T00:00:00.000Z");
	assert_int_equal(clock_iso(1700000000123LL, out), MDM_OK);
	assert_string_equal(out, "2023-11-14T22:13:20.123Z");
	assert_int_equal(clock_iso(253402300799999LL, out), MDM_OK);
	assert_string_equal(out, "9999-12-31T23:59:59.999Z");
	assert_int_equal(clock_iso(253402300800000LL, out), MDM_ERR_INVALID);
	assert_string_equal(out, "");
	assert_int_equal(clock_iso(-1, out), MDM_ERR_INVALID);
}

static void test_duration(void **state)
{
	int64_t ms = 0;

	(void)state;
	assert_int_equal(duration_parse("150ms", &ms), MDM_OK);
	assert_int_equal(ms, 150);
	assert_int_equal(duration_parse("2h", &ms), MDM_OK);
	assert_int_equal(ms, 7200000);
	assert_int_equal(duration_parse("1.5s", &ms), MDM_ERR_INVALID);
	assert_int_equal(duration_parse("-1s", &ms), MDM_ERR_INVALID);
	assert_int_equal(duration_parse("10", &ms), MDM_ERR_INVALID);
}

/* A monotonic condition variable times out at its clock_mono_ms deadline, not before. */
static void test_cond_deadline(void **state)
{
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cv;
	int64_t t0, deadline;
	bool timed_out = false;

	(void)state;
	assert_int_equal(clock_cond_init(&cv), MDM_OK);
	pthread_mutex_lock(&mu);
	assert_true(clock_cond_wait_until(&cv, &mu, clock_mono_ms() - 1000)); /* already past */
	t0 = clock_mono_ms();
	deadline = t0 + 30;
	while (!timed_out)
		timed_out = clock_cond_wait_until(&cv, &mu, deadline);
	assert_true(clock_mono_ms() >= deadline);
	pthread_mutex_unlock(&mu);
	pthread_cond_destroy(&cv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_iso),
	    cmocka_unit_test(test_duration),
	    cmocka_unit_test(test_cond_deadline),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
