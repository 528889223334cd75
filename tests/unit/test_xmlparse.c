/* test_xmlparse: the one hardened expat set-up: text bound, depth bound, body bound, refusals. */
#include "unit.h"

#include <stdio.h>

#include "../../core/xmlparse.h"

#define TEXT_MAX 8

struct seen {
	char text[64];
	size_t len;
	int closes, max_depth;
};

static void on_open(struct xmlparse *x, const char *name)
{
	struct seen *s = x->ctx;

	(void)name;
	if (x->depth > s->max_depth)
		s->max_depth = x->depth;
}

static void on_close(struct xmlparse *x, const char *text, size_t len)
{
	struct seen *s = x->ctx;

	s->closes++;
	if (x->depth == 2) {
		snprintf(s->text, sizeof(s->text), "%s", text);
		s->len = len;
	}
}

static const struct xmlparse_ops ops = {.open = on_open, .close = on_close};

/* A parse with a text buffer of TEXT_MAX + 1 bytes followed by guard bytes. */
static enum mdm_err parse(const char *doc, struct seen *s, char *buf, char *why, size_t whysz)
{
	struct xmlparse x = {.ops = &ops,
			     .ctx = s,
			     .max_depth = 4,
			     .max_body = 256,
			     .encoding = "UTF-8",
			     .text = buf,
			     .text_max = TEXT_MAX,
			     .why = why,
			     .whysz = whysz};

	memset(s, 0, sizeof(*s));
	return xmlparse_run(&x, doc, strlen(doc));
}

static void test_text_cut_at_its_bound(void **state)
{
	char buf[TEXT_MAX + 1 + 4];
	struct seen s;
	char why[128] = "";

	(void)state;
	memset(buf, 'G', sizeof(buf));
	assert_int_equal(
	    parse("<a><b>abcdefghijklmnopqrstuvwxyz</b></a>", &s, buf, why, sizeof(why)), MDM_OK);
	assert_int_equal(s.len, TEXT_MAX);
	assert_string_equal(s.text, "abcdefgh");
	/* nothing written past the TEXT_MAX + 1 bytes the caller gave */
	assert_memory_equal(buf + TEXT_MAX + 1, "GGGG", 4);
	/* a text that fits is whole, and a child's text is not its parent's */
	assert_int_equal(parse("<a>x<b> ab </b>y</a>", &s, buf, why, sizeof(why)), MDM_OK);
	assert_string_equal(s.text, " ab ");
	assert_int_equal(s.closes, 2);
}

static void test_bounds_and_refusals(void **state)
{
	char buf[TEXT_MAX + 1];
	struct seen s;
	char why[128] = "";
	char big[300];

	(void)state;
	assert_int_equal(parse("<a><b><c><d/></c></b></a>", &s, buf, why, sizeof(why)), MDM_OK);
	assert_int_equal(s.max_depth, 4);
	assert_int_equal(parse("<a><b><c><d><e/></d></c></b></a>", &s, buf, why, sizeof(why)),
			 MDM_ERR_PARSE);
	assert_string_equal(why, "XML nested deeper than 4 elements");
	assert_int_equal(s.max_depth, 4);
	memset(big, ' ', sizeof(big));
	memcpy(big, "<a/>", 4);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(parse(big, &s, buf, why, sizeof(why)), MDM_ERR_TOOBIG);
	assert_int_equal(s.closes, 0); /* refused unread */
	assert_int_equal(
	    parse("<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>", &s, buf, why, sizeof(why)),
	    MDM_ERR_PARSE);
	assert_string_equal(why, "a DOCTYPE is not allowed");
	assert_int_equal(parse("<a><b>", &s, buf, why, sizeof(why)), MDM_ERR_PARSE);
	assert_non_null(strstr(why, "XML error at line 1"));
	/* namespace prefixes are not part of the name callers see */
	assert_int_equal(
	    parse("<p:a xmlns:p=\"urn:x\"><p:b>v</p:b></p:a>", &s, buf, why, sizeof(why)), MDM_OK);
	assert_string_equal(s.text, "v");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_text_cut_at_its_bound),
	    cmocka_unit_test(test_bounds_and_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
