/* The pointer codec (cache/pointer.h): the exact bytes written, round trips, strict decoding. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>

#include "../../cache/pointer.h"

static void encode(bool found, const struct device *devs, size_t n, const char *want)
{
	struct buf b;

	buf_init(&b, 1 << 20);
	assert_int_equal(pointer_encode(found, devs, n, &b), MDM_OK);
	assert_string_equal(b.mem, want);
	buf_free(&b);
}

/* Byte for byte what memcached already holds: a change here would turn every pointer a miss. */
static void test_bytes(void **state)
{
	struct device d[2];

	(void)state;
	memset(d, 0, sizeof(d));
	str_copy(d[0].vendor_id, sizeof(d[0].vendor_id), "inv-1");
	str_copy(d[1].vendor_id, sizeof(d[1].vendor_id), "a \"b\" \\c");
	encode(true, d, 1, "{\"r\":\"found\",\"ids\":[\"inv-1\"]}");
	encode(true, d, 2, "{\"r\":\"found\",\"ids\":[\"inv-1\",\"a \\\"b\\\" \\\\c\"]}");
	encode(false, NULL, 0, "{\"r\":\"not_enrolled\",\"ids\":[]}");
	encode(false, d, 2, "{\"r\":\"not_enrolled\",\"ids\":[]}");
}

static void test_round_trip(void **state)
{
	struct device *d = calloc(POINTER_MAX_IDS + 3, sizeof(*d));
	char(*ids)[GUID_MAX + 1] = calloc(POINTER_MAX_IDS, sizeof(*ids));
	struct buf b;
	bool found = false;
	size_t n = 99;

	(void)state;
	assert_non_null(d);
	assert_non_null(ids);
	for (size_t i = 0; i < POINTER_MAX_IDS + 3; i++)
		snprintf(d[i].vendor_id, sizeof(d[i].vendor_id), "dev-%zu", i);
	buf_init(&b, 1 << 20);
	/* past POINTER_MAX_IDS the ids are cut, never refused */
	assert_int_equal(pointer_encode(true, d, POINTER_MAX_IDS + 3, &b), MDM_OK);
	assert_int_equal(pointer_decode(b.mem, b.len, &found, ids, POINTER_MAX_IDS, &n), MDM_OK);
	assert_true(found);
	assert_int_equal(n, POINTER_MAX_IDS);
	assert_string_equal(ids[0], "dev-0");
	assert_string_equal(ids[POINTER_MAX_IDS - 1], "dev-63");
	/* more ids than the caller has room for: refused */
	assert_int_equal(pointer_decode(b.mem, b.len, &found, ids, 4, &n), MDM_ERR_PARSE);
	assert_int_equal(n, 0);
	buf_reset(&b);
	assert_int_equal(pointer_encode(false, NULL, 0, &b), MDM_OK);
	found = true;
	assert_int_equal(pointer_decode(b.mem, b.len, &found, ids, POINTER_MAX_IDS, &n), MDM_OK);
	assert_false(found);
	assert_int_equal(n, 0);
	buf_free(&b);
	free(ids);
	free(d);
}

static void test_malformed(void **state)
{
	static const char *const bad[] = {
	    "",
	    "not json",
	    "[]",
	    "{\"r\":\"found\"}",
	    "{\"ids\":[\"a\"]}",
	    "{\"r\":\"found\",\"ids\":[]}",
	    "{\"r\":\"not_enrolled\",\"ids\":[\"a\"]}",
	    "{\"r\":\"maybe\",\"ids\":[]}",
	    "{\"r\":1,\"ids\":[]}",
	    "{\"r\":\"found\",\"ids\":[1]}",
	    "{\"r\":\"found\",\"ids\":\"a\"}",
	    "{\"r\":\"found\",\"r\":\"found\",\"ids\":[\"a\"]}",
	};
	char ids[4][GUID_MAX + 1], longid[GUID_MAX + 40];
	bool found;
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(pointer_decode(bad[i], strlen(bad[i]), &found, ids, 4, &n),
				 MDM_ERR_PARSE);
	/* an id longer than a vendor id can be */
	snprintf(longid, sizeof(longid), "{\"r\":\"found\",\"ids\":[\"%0*d\"]}", GUID_MAX + 1, 7);
	assert_int_equal(pointer_decode(longid, strlen(longid), &found, ids, 4, &n), MDM_ERR_PARSE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bytes),
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_malformed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
