/* test_text: the ASCII helpers of the parsers. */
#include "unit.h"

#include "../../core/text.h"

static void test_trim(void **state)
{
	const char *s = " \t\r\n\f\va b\v";
	size_t len = strlen(s);

	(void)state;
	text_trim(&s, &len);
	assert_int_equal(len, 3);
	assert_memory_equal(s, "a b", 3);
	s = " \n ";
	len = 3;
	text_trim(&s, &len);
	assert_int_equal(len, 0);
}

static void test_ieq(void **state)
{
	(void)state;
	assert_true(text_ieq("TrUe", 4, "true"));
	assert_false(text_ieq("true", 3, "true"));
	assert_false(text_ieq("truer", 5, "true"));
	assert_true(text_ieq("", 0, ""));
	assert_int_equal(text_lower('Q'), 'q');
	assert_int_equal(text_lower('['), '[');
}

static void test_digits(void **state)
{
	int v = -1;

	(void)state;
	assert_true(text_digits("2024x", 4, &v));
	assert_int_equal(v, 2024);
	assert_false(text_digits("2a", 2, &v));
	assert_false(text_digits(" 1", 2, &v));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_trim),
	    cmocka_unit_test(test_ieq),
	    cmocka_unit_test(test_digits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
