#include "unit.h"

#include <stdio.h>
#include <stdlib.h>

#include "../../core/buf.h"
#include "../../core/xml.h"

#define FFFD "\xef\xbf\xbd"
#define DECL "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"

/* xml_escape of len bytes of in must give exactly want. */
static void esc_n(const char *in, size_t len, const char *want)
{
	struct buf b;

	buf_init(&b, 1 << 16);
	assert_int_equal(xml_escape(&b, in, len), MDM_OK);
	assert_int_equal(b.len, strlen(want));
	assert_memory_equal(buf_str(&b), want, strlen(want));
	buf_free(&b);
}

static void esc(const char *in, const char *want)
{
	esc_n(in, strlen(in), want);
}

/*
 * xml_escape of in must give one to nbad U+FFFD (one per byte, or one per broken sequence:
 * both are correct replacements) followed by exactly tail.
 */
static void esc_replaced(const char *in, size_t nbad, const char *tail)
{
	struct buf b;
	size_t k, tlen = strlen(tail);

	buf_init(&b, 1 << 16);
	assert_int_equal(xml_escape(&b, in, strlen(in)), MDM_OK);
	assert_true(b.len >= 3 + tlen);
	k = (b.len - tlen) / 3;
	assert_int_equal(b.len, 3 * k + tlen);
	assert_in_range(k, 1, nbad);
	for (size_t i = 0; i < k; i++)
		assert_memory_equal(b.mem + 3 * i, FFFD, 3);
	assert_memory_equal(b.mem + 3 * k, tail, tlen);
	buf_free(&b);
}

static void test_escape_markup(void **state)
{
	(void)state;
	esc("", "");
	esc("plain text 123", "plain text 123");
	esc("&", "&amp;");
	esc("<", "&lt;");
	esc(">", "&gt;");
	esc("\"", "&quot;");
	esc("'", "&apos;");
	esc("a&b<c>d\"e'f", "a&amp;b&lt;c&gt;d&quot;e&apos;f");
	esc("Baseline \"Domain-Members\" <non-compliant> & 'late'",
	    "Baseline &quot;Domain-Members&quot; &lt;non-compliant&gt; &amp; &apos;late&apos;");
	esc("&amp;", "&amp;amp;"); /* escaped again: the writer never trusts its input */
}

static void test_escape_controls(void **state)
{
	(void)state;
	esc("a\tb\nc\rd", "a\tb\nc\rd"); /* the three allowed controls are kept */
	esc("\x01", FFFD);
	esc("a\x08"
	    "b",
	    "a" FFFD "b");
	esc("\x1f\x1b", FFFD FFFD);
	esc("x\x0by\x0cz", "x" FFFD "y" FFFD "z");
	esc_n("a\0b", 3, "a" FFFD "b"); /* a NUL inside the given length */
	esc_n("\0", 1, FFFD);
}

static void test_escape_valid_utf8_kept(void **state)
{
	(void)state;
	esc("caf\xc3\xa9", "caf\xc3\xa9");	     /* 2 bytes: e acute */
	esc("\xc2\x80", "\xc2\x80");		     /* lowest 2-byte */
	esc("\xe2\x82\xac 5", "\xe2\x82\xac 5");     /* 3 bytes: euro sign */
	esc("\xe0\xa0\x80", "\xe0\xa0\x80");	     /* lowest 3-byte */
	esc("\xef\xbf\xbd", "\xef\xbf\xbd");	     /* U+FFFD itself */
	esc("\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"); /* 4 bytes: emoji */
	esc("\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf"); /* U+10FFFF */
	esc("J\xc3\xbcrgen & \xe6\x97\xa5\xe6\x9c\xac",
	    "J\xc3\xbcrgen &amp; \xe6\x97\xa5\xe6\x9c\xac");
}

static void test_escape_invalid_utf8_replaced(void **state)
{
	(void)state;
	esc("\x80", FFFD); /* lone continuation byte */
	esc("a\xbf"
	    "b",
	    "a" FFFD "b");
	esc("\xfe", FFFD);
	esc("\xff", FFFD);
	esc("\xf5\x80\x80\x80", FFFD FFFD FFFD FFFD); /* F5.. never starts a sequence */
	esc("\xc3(", FFFD "(");			      /* lead byte without its continuation */
	esc_replaced("\xe2\x82(", 2, "(");	      /* 3-byte lead with one continuation only */
	/* overlong forms */
	esc("\xc0\xaf", FFFD FFFD);
	esc("\xc1\xbf", FFFD FFFD);
	esc("\xe0\x80\xaf", FFFD FFFD FFFD);
	esc("\xe0\x9f\xbf", FFFD FFFD FFFD);
	esc("\xf0\x80\x80\xaf", FFFD FFFD FFFD FFFD);
	esc("\xf0\x8f\xbf\xbf", FFFD FFFD FFFD FFFD);
	/* surrogates (CESU-8) */
	esc("\xed\xa0\x80", FFFD FFFD FFFD);
	esc("\xed\xbf\xbf", FFFD FFFD FFFD);
	/* past U+10FFFF */
	esc("\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD);
	/* the non-characters XML 1.0 excludes */
	esc_replaced("\xef\xbf\xbe", 3, "");
	esc_replaced("\xef\xbf\xbf", 3, "");
	/* valid text around a bad byte survives */
	esc("ok\xc3\xa9\x80ok", "ok\xc3\xa9" FFFD "ok");
}

static void test_escape_truncated_at_end(void **state)
{
	struct buf b;

	(void)state;
	/* A sequence cut off by the end of the input: the bytes are replaced, never copied. */
	esc_replaced("\xe2\x82", 2, "");
	esc_replaced("\xf0\x9f\x98", 3, "");
	buf_init(&b, 1024);
	/* len is honoured: the continuation byte past len is not looked at */
	assert_int_equal(xml_escape(&b, "\xc3\xa9", 1), MDM_OK);
	assert_string_equal(buf_str(&b), FFFD);
	buf_free(&b);
}

static void test_escape_appends(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 1024);
	assert_int_equal(buf_addstr(&b, "<t>"), MDM_OK);
	assert_int_equal(xml_escape(&b, "a<b", 3), MDM_OK);
	assert_int_equal(xml_escape(&b, "&", 1), MDM_OK);
	assert_string_equal(buf_str(&b), "<t>a&lt;b&amp;");
	buf_free(&b);
}

static void test_writer_document(void **state)
{
	struct xml_writer w;
	struct buf b;
	const char *want =
	    DECL "<ise_api>\n"
		 "  <name>attributes</name>\n"
		 "  <api_version>3</api_version>\n"
		 "  <deviceList>\n"
		 "    <device>\n"
		 "      <macaddress>0026B424FEB4</macaddress>\n"
		 "      <attributes>\n"
		 "        <register_status>true</register_status>\n"
		 "        <jail_broken>false</jail_broken>\n"
		 "        <failure_reason>Baseline &quot;X&quot; &lt;1&gt; &amp; "
		 "it&apos;s</failure_reason>\n"
		 "        <remediation></remediation>\n"
		 "        <imei></imei>\n"
		 "        <lastCheckinTimeStamp>1700000000000</lastCheckinTimeStamp>\n"
		 "        <offset>-42</offset>\n"
		 "        <empty/>\n"
		 "      </attributes>\n"
		 "    </device>\n"
		 "  </deviceList>\n"
		 "  <deviceList/>\n"
		 "</ise_api>\n";

	(void)state;
	buf_init(&b, 1 << 16);
	xml_begin(&w, &b);
	xml_open(&w, "ise_api");
	xml_text(&w, "name", "attributes");
	xml_int(&w, "api_version", 3);
	xml_open(&w, "deviceList");
	xml_open(&w, "device");
	xml_text(&w, "macaddress", "0026B424FEB4");
	xml_open(&w, "attributes");
	xml_bool(&w, "register_status", true);
	xml_bool(&w, "jail_broken", false);
	xml_text(&w, "failure_reason", "Baseline \"X\" <1> & it's");
	xml_text(&w, "remediation", NULL);
	xml_text(&w, "imei", "");
	xml_int(&w, "lastCheckinTimeStamp", 1700000000000);
	xml_int(&w, "offset", -42);
	xml_empty(&w, "empty");
	xml_close(&w, "attributes");
	xml_close(&w, "device");
	xml_close(&w, "deviceList");
	xml_empty(&w, "deviceList");
	xml_close(&w, "ise_api");
	assert_int_equal(xml_end(&w), MDM_OK);
	assert_string_equal(buf_str(&b), want);
	assert_int_equal(b.len, strlen(want));
	buf_free(&b);
}

static void test_writer_int_extremes(void **state)
{
	struct xml_writer w;
	struct buf b;

	(void)state;
	buf_init(&b, 4096);
	xml_begin(&w, &b);
	xml_int(&w, "min", INT64_MIN);
	xml_int(&w, "max", INT64_MAX);
	xml_int(&w, "zero", 0);
	assert_int_equal(xml_end(&w), MDM_OK);
	assert_string_equal(buf_str(&b), DECL "<min>-9223372036854775808</min>\n"
					      "<max>9223372036854775807</max>\n"
					      "<zero>0</zero>\n");
	buf_free(&b);
}

static void test_writer_escapes_text_controls(void **state)
{
	struct xml_writer w;
	struct buf b;

	(void)state;
	buf_init(&b, 4096);
	xml_begin(&w, &b);
	xml_text(&w, "model", "iPhone\x01 \xc0\xaf Pro \xe2\x80\x93 15");
	assert_int_equal(xml_end(&w), MDM_OK);
	assert_string_equal(buf_str(&b), DECL "<model>iPhone" FFFD " " FFFD FFFD
					      " Pro \xe2\x80\x93 15</model>\n");
	buf_free(&b);
}

static void test_writer_toobig(void **state)
{
	struct xml_writer w;
	struct buf b;
	char big[101];
	size_t len_after_fail;

	(void)state;
	/* Not even the declaration fits. */
	buf_init(&b, 16);
	xml_begin(&w, &b);
	xml_open(&w, "a");
	assert_int_equal(xml_end(&w), MDM_ERR_TOOBIG);
	assert_int_equal(b.len, 0);
	buf_free(&b);

	/* The declaration and one element fit; a long text does not; nothing is written after. */
	memset(big, 'x', 100);
	big[100] = '\0';
	buf_init(&b, strlen(DECL) + 40);
	xml_begin(&w, &b);
	xml_open(&w, "a");
	assert_int_equal(xml_end(&w), MDM_OK);
	assert_string_equal(buf_str(&b), DECL "<a>\n");
	xml_text(&w, "t", big);
	assert_int_equal(xml_end(&w), MDM_ERR_TOOBIG);
	len_after_fail = b.len;
	assert_true(len_after_fail < strlen(DECL) + 40);
	xml_empty(&w, "b"); /* would fit, but the writer has stopped */
	xml_close(&w, "a");
	xml_int(&w, "n", 1);
	assert_int_equal(b.len, len_after_fail);
	assert_int_equal(xml_end(&w), MDM_ERR_TOOBIG);
	buf_free(&b);

	/* xml_escape on its own reports the bound too */
	buf_init(&b, 5);
	assert_int_equal(xml_escape(&b, "&", 1), MDM_ERR_TOOBIG); /* "&amp;" needs 5 + NUL */
	assert_int_equal(xml_escape(&b, "abcd", 4), MDM_OK);
	assert_int_equal(xml_escape(&b, "e", 1), MDM_ERR_TOOBIG);
	assert_string_equal(buf_str(&b), "abcd");
	buf_free(&b);
}

static void test_writer_deep_nesting(void **state)
{
	struct xml_writer w;
	struct buf b;
	const char *p;

	(void)state;
	buf_init(&b, 1 << 16);
	xml_begin(&w, &b);
	for (int i = 0; i < 3; i++)
		xml_open(&w, "n");
	xml_text(&w, "leaf", "v");
	for (int i = 0; i < 3; i++)
		xml_close(&w, "n");
	xml_close(&w, "extra"); /* a close too many does not go below depth 0 */
	assert_int_equal(xml_end(&w), MDM_OK);
	p = buf_str(&b) + strlen(DECL);
	assert_string_equal(p, "<n>\n  <n>\n    <n>\n      <leaf>v</leaf>\n    </n>\n  </n>\n</n>\n"
			       "</extra>\n");
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_escape_markup),
	    cmocka_unit_test(test_escape_controls),
	    cmocka_unit_test(test_escape_valid_utf8_kept),
	    cmocka_unit_test(test_escape_invalid_utf8_replaced),
	    cmocka_unit_test(test_escape_truncated_at_end),
	    cmocka_unit_test(test_escape_appends),
	    cmocka_unit_test(test_writer_document),
	    cmocka_unit_test(test_writer_int_extremes),
	    cmocka_unit_test(test_writer_escapes_text_controls),
	    cmocka_unit_test(test_writer_toobig),
	    cmocka_unit_test(test_writer_deep_nesting),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
