#include "unit.h"

#include <stdio.h>
#include <stdlib.h>

#include "../../core/buf.h"
#include "../../core/clock.h"

static void test_empty(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 100);
	assert_string_equal(buf_str(&b), "");
	assert_int_equal(b.len, 0);
	assert_null(b.mem);
	assert_int_equal(b.toobig, 100);
	buf_free(&b);
	buf_free(&b); /* twice is harmless */
	assert_string_equal(buf_str(&b), "");
}

static void test_add(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 1000);
	assert_int_equal(buf_add(&b, "abc", 3), MDM_OK);
	assert_int_equal(buf_add(&b, "defXYZ", 3), MDM_OK); /* only len bytes */
	assert_int_equal(buf_addstr(&b, "-ghi"), MDM_OK);
	assert_int_equal(buf_add(&b, "", 0), MDM_OK);
	assert_int_equal(buf_addstr(&b, ""), MDM_OK);
	assert_int_equal(buf_addf(&b, "|%d|%s|%05.1f|%c", -42, "x", 3.14159, 'z'), MDM_OK);
	assert_string_equal(buf_str(&b), "abcdef-ghi|-42|x|003.1|z");
	assert_int_equal(b.len, strlen("abcdef-ghi|-42|x|003.1|z"));
	assert_int_equal(b.mem[b.len], '\0');
	buf_free(&b);
	assert_int_equal(b.len, 0);
	assert_null(b.mem);
}

static void test_add_binary(void **state)
{
	struct buf b;
	const char bin[5] = {'a', '\0', 'b', '\0', 'c'};

	(void)state;
	buf_init(&b, 64);
	assert_int_equal(buf_add(&b, bin, sizeof(bin)), MDM_OK);
	assert_int_equal(b.len, 5);
	assert_memory_equal(b.mem, bin, 5);
	assert_int_equal(b.mem[5], '\0');
	buf_free(&b);
}

static void test_addf_empty_format(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 64);
	assert_int_equal(buf_addf(&b, "%s", ""), MDM_OK);
	assert_string_equal(buf_str(&b), "");
	assert_int_equal(b.len, 0);
	buf_free(&b);
}

static void test_toobig_boundary(void **state)
{
	struct buf b;
	char ten[11] = "0123456789";

	(void)state;
	/* toobig=10 holds 9 bytes, not 10 */
	buf_init(&b, 10);
	assert_int_equal(buf_add(&b, ten, 10), MDM_ERR_TOOBIG);
	assert_int_equal(b.len, 0);
	assert_string_equal(buf_str(&b), "");
	assert_int_equal(buf_add(&b, ten, 9), MDM_OK);
	assert_string_equal(buf_str(&b), "012345678");
	assert_int_equal(buf_add(&b, "x", 1), MDM_ERR_TOOBIG);
	assert_int_equal(buf_add(&b, "", 0), MDM_OK); /* nothing more is still fine */
	assert_int_equal(b.len, 9);
	assert_string_equal(buf_str(&b), "012345678");
	buf_free(&b);

	/* the same bound reached in small steps */
	buf_init(&b, 10);
	for (int i = 0; i < 9; i++)
		assert_int_equal(buf_add(&b, ten + i, 1), MDM_OK);
	assert_int_equal(buf_add(&b, "9", 1), MDM_ERR_TOOBIG);
	assert_string_equal(buf_str(&b), "012345678");
	buf_free(&b);

	/* toobig=1 holds nothing; toobig=0 not even the empty string */
	buf_init(&b, 1);
	assert_int_equal(buf_add(&b, "", 0), MDM_OK);
	assert_int_equal(buf_add(&b, "a", 1), MDM_ERR_TOOBIG);
	assert_string_equal(buf_str(&b), "");
	buf_free(&b);
	buf_init(&b, 0);
	assert_int_equal(buf_add(&b, "", 0), MDM_ERR_TOOBIG);
	assert_int_equal(buf_addstr(&b, "a"), MDM_ERR_TOOBIG);
	assert_null(b.mem);
	buf_free(&b);
}

static void test_toobig_huge_len(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 100);
	assert_int_equal(buf_addstr(&b, "keep"), MDM_OK);
	/* lengths that would wrap len + extra are refused, not overflowed */
	assert_int_equal(buf_add(&b, "x", SIZE_MAX), MDM_ERR_TOOBIG);
	assert_int_equal(buf_add(&b, "x", SIZE_MAX - 2), MDM_ERR_TOOBIG);
	assert_string_equal(buf_str(&b), "keep");
	buf_free(&b);
	buf_init(&b, SIZE_MAX);
	assert_int_equal(buf_addstr(&b, "a"), MDM_OK);
	assert_int_equal(buf_add(&b, "x", SIZE_MAX - 1), MDM_ERR_TOOBIG);
	assert_string_equal(buf_str(&b), "a");
	buf_free(&b);
}

static void test_failed_add_leaves_buffer(void **state)
{
	struct buf b;
	char *mem;
	size_t alloc;

	(void)state;
	buf_init(&b, 20);
	assert_int_equal(buf_addstr(&b, "hello"), MDM_OK);
	mem = b.mem;
	alloc = b.alloc;
	assert_int_equal(buf_addstr(&b, "0123456789abcdef"), MDM_ERR_TOOBIG);
	assert_int_equal(buf_addf(&b, "%s-%d", "0123456789", 12345), MDM_ERR_TOOBIG);
	assert_int_equal(buf_add(&b, "0123456789abcde", 15), MDM_ERR_TOOBIG);
	assert_ptr_equal(b.mem, mem);
	assert_int_equal(b.alloc, alloc);
	assert_int_equal(b.len, 5);
	assert_string_equal(buf_str(&b), "hello");
	/* addf that fills to exactly toobig-1 works */
	assert_int_equal(buf_addf(&b, "%s%d", "0123456789", 123), MDM_OK); /* 5 + 13 = 18 */
	assert_int_equal(buf_addf(&b, "%c", 'Z'), MDM_OK);		   /* 19 */
	assert_int_equal(buf_addf(&b, "%c", 'Y'), MDM_ERR_TOOBIG);
	assert_string_equal(buf_str(&b), "hello0123456789123Z");
	assert_int_equal(b.len, 19);
	buf_free(&b);
}

static void test_growth(void **state)
{
	struct buf b;
	char want[3001];

	(void)state;
	buf_init(&b, 3001);
	for (int i = 0; i < 3000; i++) {
		char c = (char)('a' + i % 26);

		want[i] = c;
		assert_int_equal(buf_add(&b, &c, 1), MDM_OK);
	}
	want[3000] = '\0';
	assert_int_equal(b.len, 3000);
	assert_true(b.alloc <= 3001);
	assert_string_equal(buf_str(&b), want);
	assert_int_equal(buf_add(&b, "!", 1), MDM_ERR_TOOBIG);
	buf_free(&b);
}

static void test_reset(void **state)
{
	struct buf b;
	char *mem;

	(void)state;
	buf_init(&b, 100);
	assert_int_equal(buf_addstr(&b, "first"), MDM_OK);
	mem = b.mem;
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(buf_str(&b), "");
	assert_ptr_equal(b.mem, mem); /* memory kept */
	assert_int_equal(buf_addstr(&b, "second"), MDM_OK);
	assert_string_equal(buf_str(&b), "second");
	buf_free(&b);
	buf_init(&b, 100);
	buf_reset(&b); /* on a buffer that never allocated */
	assert_string_equal(buf_str(&b), "");
	buf_free(&b);
}

static void test_take(void **state)
{
	struct buf b;
	size_t len = 99;
	char *p;

	(void)state;
	buf_init(&b, 100);
	assert_null(buf_take(&b, &len));
	assert_int_equal(len, 0);
	assert_int_equal(buf_addstr(&b, "payload"), MDM_OK);
	p = buf_take(&b, &len);
	assert_non_null(p);
	assert_int_equal(len, 7);
	assert_string_equal(p, "payload");
	/* the buffer is empty and reusable, and no longer owns p */
	assert_int_equal(b.len, 0);
	assert_null(b.mem);
	assert_string_equal(buf_str(&b), "");
	assert_int_equal(buf_addstr(&b, "next"), MDM_OK);
	assert_string_equal(buf_str(&b), "next");
	assert_string_equal(p, "payload");
	free(p);
	p = buf_take(&b, NULL); /* len is optional */
	assert_string_equal(p, "next");
	free(p);
	buf_free(&b);
}

static void test_take_after_reset(void **state)
{
	struct buf b;
	size_t len = 99;
	char *p;

	(void)state;
	/* "NULL if empty" also once memory was allocated: after a reset, or after adding "" */
	buf_init(&b, 100);
	assert_int_equal(buf_addstr(&b, "gone"), MDM_OK);
	buf_reset(&b);
	p = buf_take(&b, &len);
	assert_int_equal(len, 0);
	free(p); /* keep ASan's leak check quiet whatever the outcome */
	assert_null(p);
	assert_string_equal(buf_str(&b), "");
	assert_int_equal(buf_addstr(&b, ""), MDM_OK);
	len = 99;
	p = buf_take(&b, &len);
	assert_int_equal(len, 0);
	free(p);
	assert_null(p);
	assert_int_equal(buf_addstr(&b, "again"), MDM_OK); /* still usable */
	assert_string_equal(buf_str(&b), "again");
	buf_free(&b);
}

static void test_str_copy(void **state)
{
	char dst[4];

	(void)state;
	assert_int_equal(str_copy(dst, sizeof(dst), "abc"), MDM_OK);
	assert_string_equal(dst, "abc");
	assert_int_equal(str_copy(dst, sizeof(dst), ""), MDM_OK);
	assert_string_equal(dst, "");
	memcpy(dst, "xyz", 4);
	assert_int_equal(str_copy(dst, sizeof(dst), "abcd"), MDM_ERR_TOOBIG);
	assert_string_equal(dst, "");
	memcpy(dst, "xyz", 4);
	assert_int_equal(str_copy(dst, 0, "a"), MDM_ERR_TOOBIG);
	assert_string_equal(dst, "xyz"); /* size 0: nothing written at all */
	assert_int_equal(str_copy(dst, 1, ""), MDM_OK);
	assert_string_equal(dst, "");
	assert_int_equal(str_copy(dst, 1, "a"), MDM_ERR_TOOBIG);
}

static void test_str_copyn(void **state)
{
	char dst[4];

	(void)state;
	assert_int_equal(str_copyn(dst, sizeof(dst), "abcdef", 3), MDM_OK);
	assert_string_equal(dst, "abc");
	assert_int_equal(str_copyn(dst, sizeof(dst), "abcdef", 0), MDM_OK);
	assert_string_equal(dst, "");
	memcpy(dst, "xyz", 4);
	assert_int_equal(str_copyn(dst, sizeof(dst), "abcdef", 4), MDM_ERR_TOOBIG);
	assert_string_equal(dst, "");
	memcpy(dst, "xyz", 4);
	assert_int_equal(str_copyn(dst, sizeof(dst), "abcdef", 6), MDM_ERR_TOOBIG);
	assert_string_equal(dst, "");
	/* bytes past len are not read: a non-terminated source is fine */
	assert_int_equal(str_copyn(dst, sizeof(dst), (const char[2]){'h', 'i'}, 2), MDM_OK);
	assert_string_equal(dst, "hi");
}

static void test_str_eq_ct(void **state)
{
	(void)state;
	assert_true(str_eq_ct("secret", "secret", 6));
	assert_false(str_eq_ct("secret", "secreT", 6));
	assert_false(str_eq_ct("secret", "Secret", 6));
	assert_true(str_eq_ct("secret", "secreT", 5)); /* only len bytes compared */
	assert_true(str_eq_ct("a", "b", 0));
	assert_false(str_eq_ct("\x80\x00", "\x00\x00", 2));
	assert_true(str_eq_ct((const char[3]){1, 0, 2}, (const char[3]){1, 0, 2}, 3));
	assert_false(str_eq_ct((const char[3]){1, 0, 2}, (const char[3]){1, 0, 3}, 3));
}

static void dur_ok(const char *s, int64_t want)
{
	int64_t ms = -1;

	assert_int_equal(duration_parse(s, &ms), MDM_OK);
	assert_int_equal(ms, want);
}

static void dur_bad(const char *s)
{
	int64_t ms = -7;

	if (duration_parse(s, &ms) != MDM_ERR_INVALID)
		fail_msg("duration \"%s\" was accepted (%lld ms)", s, (long long)ms);
}

static void test_duration_ok(void **state)
{
	(void)state;
	dur_ok("150ms", 150);
	dur_ok("30s", 30000);
	dur_ok("15m", 900000);
	dur_ok("1h", 3600000);
	dur_ok("2d", 172800000);
	dur_ok("0s", 0);
	dur_ok("0ms", 0);
	dur_ok("007s", 7000);
	dur_ok("1000ms", 1000);
	dur_ok("9007199254740992ms", (int64_t)1 << 53); /* 2^53: the largest allowed */
	dur_ok("9007199254740s", 9007199254740000);
	dur_ok("104249991d", 104249991LL * 86400000LL);
}

static void test_duration_bad(void **state)
{
	(void)state;
	dur_bad("");
	dur_bad("15");
	dur_bad("1.5s");
	dur_bad("-1s");
	dur_bad("+1s");
	dur_bad("s");
	dur_bad("ms");
	dur_bad("10 s");
	dur_bad(" 10s");
	dur_bad("10s ");
	dur_bad("10S");
	dur_bad("10MS");
	dur_bad("10sec");
	dur_bad("10ss");
	dur_bad("10sm");
	dur_bad("10w");
	dur_bad("10y");
	dur_bad("1e3ms");
	dur_bad("0x10s");
	/* past 2^53 ms, in the digits or after the unit multiplies them */
	dur_bad("9007199254740993ms");
	dur_bad("9007199254741s");
	dur_bad("150119987580m");
	dur_bad("2501999793h");
	dur_bad("104249992d");
	dur_bad("99999999999999999999999999999999s");
	dur_bad("18446744073709551616ms");
}

static void test_clocks(void **state)
{
	int64_t a, b, w;

	(void)state;
	a = clock_mono_ms();
	b = clock_mono_ms();
	assert_true(b >= a);
	w = clock_wall_ms();
	assert_true(w > 1600000000000LL); /* after September 2020 */
	assert_true(w < 4102444800000LL); /* before 2100 */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_empty),
	    cmocka_unit_test(test_add),
	    cmocka_unit_test(test_add_binary),
	    cmocka_unit_test(test_addf_empty_format),
	    cmocka_unit_test(test_toobig_boundary),
	    cmocka_unit_test(test_toobig_huge_len),
	    cmocka_unit_test(test_failed_add_leaves_buffer),
	    cmocka_unit_test(test_growth),
	    cmocka_unit_test(test_reset),
	    cmocka_unit_test(test_take),
	    cmocka_unit_test(test_take_after_reset),
	    cmocka_unit_test(test_str_copy),
	    cmocka_unit_test(test_str_copyn),
	    cmocka_unit_test(test_str_eq_ct),
	    cmocka_unit_test(test_duration_ok),
	    cmocka_unit_test(test_duration_bad),
	    cmocka_unit_test(test_clocks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
