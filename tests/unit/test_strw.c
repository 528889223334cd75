/* test_strw: the bounded string writer URLs are built with. */
#include "unit.h"

#include "../../core/strw.h"

static void test_fits(void **state)
{
	char out[64];
	struct strw w;

	(void)state;
	strw_init(&w, out, sizeof(out));
	assert_true(strw_origin(&w, "https://h:1//"));
	strw_str(&w, "/a?v=");
	strw_pct(&w, "x/y z~", 6, NULL);
	strw_add(&w, "&p=", 3);
	strw_pct(&w, "/p/q", 4, "/");
	assert_int_equal(strw_end(&w), MDM_OK);
	assert_string_equal(out, "https://h:1/a?v=x%2Fy%20z~&p=/p/q");
}

static void test_over(void **state)
{
	char out[8];
	struct strw w;

	(void)state;
	strw_init(&w, out, sizeof(out));
	strw_str(&w, "1234567"); /* seven bytes and the NUL: just fits */
	assert_int_equal(strw_end(&w), MDM_OK);
	assert_string_equal(out, "1234567");
	strw_str(&w, "8");
	strw_str(&w, ""); /* nothing is appended once over */
	assert_true(w.over);
	assert_int_equal(strw_end(&w), MDM_ERR_TOOBIG);
	assert_string_equal(out, "");
	strw_init(&w, out, 0);
	assert_int_equal(strw_end(&w), MDM_ERR_TOOBIG);
}

static void test_pct_keep(void **state)
{
	char out[64];
	struct strw w;

	(void)state;
	strw_init(&w, out, sizeof(out));
	strw_pct(&w, "a'b(c):d/e,f\xc3\xa9", 14, "'():/,");
	assert_int_equal(strw_end(&w), MDM_OK);
	assert_string_equal(out, "a'b(c):d/e,f%C3%A9");
	strw_init(&w, out, sizeof(out));
	strw_pct(&w, "a\0b", 3, "/"); /* a NUL byte is never kept, whatever keep holds */
	assert_int_equal(strw_end(&w), MDM_OK);
	assert_string_equal(out, "a%00b");
}

static void test_origin(void **state)
{
	char out[16];
	struct strw w;

	(void)state;
	strw_init(&w, out, sizeof(out));
	assert_false(strw_origin(&w, NULL));
	assert_false(strw_origin(&w, ""));
	assert_false(strw_origin(&w, "///"));
	assert_string_equal(out, "");
	assert_true(strw_origin(&w, "https://a/"));
	assert_string_equal(out, "https://a");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fits),
	    cmocka_unit_test(test_over),
	    cmocka_unit_test(test_pct_keep),
	    cmocka_unit_test(test_origin),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
