/* test_prom: the Prometheus text writer: exact lines, and a first failure that sticks. */
#include "unit.h"

#include "../../core/prom.h"

static void test_lines(void **state)
{
	struct buf b;
	struct prom p;

	(void)state;
	buf_init(&b, 1 << 12);
	p = prom_init(&b);
	prom_value(&p, "mdmgw_x_total", "counter", "Things counted.", 42);
	prom_head(&p, "mdmgw_y", "gauge", "Things by kind.");
	prom_addf(&p, "mdmgw_y{kind=\"%s\"} %d\n", "a", 7);
	assert_int_equal(p.e, MDM_OK);
	assert_string_equal(buf_str(&b), "# HELP mdmgw_x_total Things counted.\n"
					 "# TYPE mdmgw_x_total counter\n"
					 "mdmgw_x_total 42\n"
					 "# HELP mdmgw_y Things by kind.\n"
					 "# TYPE mdmgw_y gauge\n"
					 "mdmgw_y{kind=\"a\"} 7\n");
	buf_free(&b);
}

static void test_failure_sticks(void **state)
{
	struct buf b;
	struct prom p;

	(void)state;
	buf_init(&b, 40);
	p = prom_init(&b);
	prom_addf(&p, "%s\n", "short line");
	assert_int_equal(p.e, MDM_OK);
	prom_value(&p, "mdmgw_a_name_too_long_for_what_is_left", "gauge", "Help.", 1);
	assert_int_equal(p.e, MDM_ERR_TOOBIG);
	prom_addf(&p, "x\n"); /* would fit, but nothing is added after a failure */
	assert_int_equal(p.e, MDM_ERR_TOOBIG);
	assert_string_equal(buf_str(&b), "short line\n");
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lines),
	    cmocka_unit_test(test_failure_sticks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
