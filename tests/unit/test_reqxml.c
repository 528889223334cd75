#include "unit.h"

#include <stdio.h>
#include <stdlib.h>

#include "../../gateway/ise/reqxml.h"

#define WHYSZ 256
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* --- helpers --- */

struct vals {
	enum mdm_err e;
	struct reqxml_item *it;
	size_t n;
	char why[WHYSZ];
};

static void run_values(struct vals *v, const char *doc, size_t max)
{
	memset(v, 0, sizeof(*v));
	v->e = reqxml_values(doc, strlen(doc), max, &v->it, &v->n, v->why, sizeof(v->why));
}

struct pair {
	const char *tag, *value;
};

/* expect_values: doc parses and yields exactly the given tag/value pairs, in order. */
static void expect_values(const char *doc, const struct pair *pairs, size_t npairs)
{
	struct vals v;

	run_values(&v, doc, 100);
	if (v.e)
		print_error("why: %s\n", v.why);
	assert_int_equal(v.e, MDM_OK);
	assert_non_null(v.it);
	assert_int_equal(v.n, npairs);
	for (size_t i = 0; i < npairs; i++) {
		assert_string_equal(v.it[i].tag, pairs[i].tag);
		assert_string_equal(v.it[i].value, pairs[i].value);
	}
	free(v.it);
}

/* expect_refused: doc is refused with e and the reason mentions want (when not NULL). */
static void expect_refused(const char *doc, size_t len, enum mdm_err e, const char *want)
{
	struct reqxml_item *it = (void *)1;
	struct reqxml_item one;
	size_t n = 99;
	char why[WHYSZ] = "";

	assert_int_equal(reqxml_values(doc, len, 100, &it, &n, why, sizeof(why)), e);
	assert_null(it);
	assert_int_equal(n, 0);
	if (want && !strstr(why, want))
		fail_msg("why \"%s\" does not mention \"%s\"", why, want);
	/* The action parser shares the hardening; a refused document is refused there too. */
	if (e == MDM_ERR_PARSE) {
		why[0] = '\0';
		assert_int_equal(reqxml_action(doc, len, &one, why, sizeof(why)), MDM_ERR_PARSE);
		assert_string_equal(one.value, "");
		if (want && !strstr(why, want))
			fail_msg("action why \"%s\" does not mention \"%s\"", why, want);
	}
}

/* nested: depth elements <e> around one <value>, as a malloc'd string. */
static char *nested(int depth)
{
	size_t cap = (size_t)depth * 8 + 64, len = 0;
	char *s = malloc(cap);

	assert_non_null(s);
	for (int i = 0; i < depth - 1; i++)
		len += (size_t)snprintf(s + len, cap - len, "<e>");
	len += (size_t)snprintf(s + len, cap - len, "<value>AA</value>");
	for (int i = 0; i < depth - 1; i++)
		len += (size_t)snprintf(s + len, cap - len, "</e>");
	assert_true(len < cap);
	return s;
}

/* in_element: "<tag>" + n copies of c + "</tag>" inside a root, as a malloc'd string. */
static char *in_element(const char *tag, size_t n, char c)
{
	size_t cap = n + 2 * strlen(tag) + 32;
	char *s = malloc(cap);
	int head;

	assert_non_null(s);
	head = snprintf(s, cap, "<r><%s>", tag);
	memset(s + head, c, n);
	snprintf(s + (size_t)head + n, cap - (size_t)head - n, "</%s></r>", tag);
	return s;
}

/* split_text: <value> holding n commas, an empty element, and n commas more. */
static char *split_text(size_t n)
{
	size_t cap = 2 * n + 64;
	char *s = malloc(cap);
	size_t len;

	assert_non_null(s);
	len = (size_t)snprintf(s, cap, "<r><value>");
	memset(s + len, ',', n);
	len += n;
	len += (size_t)snprintf(s + len, cap - len, "<x/>");
	memset(s + len, ',', n);
	len += n;
	snprintf(s + len, cap - len, "</value></r>");
	return s;
}

/* --- batch bodies --- */

static void batch_macaddress_list(void **state)
{
	static const struct pair want[] = {{"macaddress", "0026B424FEB4"},
					   {"macaddress", "0026B424FEB5"}};
	(void)state;
	expect_values("<ise_api><deviceList>"
		      "<macaddress>0026B424FEB4</macaddress>"
		      "<macaddress>0026B424FEB5</macaddress>"
		      "</deviceList></ise_api>",
		      want, NELEM(want));
}

static void batch_value_elements(void **state)
{
	static const struct pair want[] = {
	    {"value", "aa:bb:cc:dd:ee:01"}, {"value", "aa:bb:cc:dd:ee:02"}, {"guid", "g-1"}};
	(void)state;
	expect_values("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		      "<ise_api>\n  <filter><value>aa:bb:cc:dd:ee:01</value></filter>\n"
		      "  <value>aa:bb:cc:dd:ee:02</value><other>ignored</other>\n"
		      "  <guid>g-1</guid>\n</ise_api>\n",
		      want, NELEM(want));
}

static void batch_comma_separated(void **state)
{
	static const struct pair want[] = {
	    {"macaddress", "A1"}, {"macaddress", "B2"}, {"macaddress", "C3"}};
	(void)state;
	expect_values("<ise_api><macaddress>A1,B2,C3</macaddress></ise_api>", want, NELEM(want));
}

static void batch_every_collected_kind(void **state)
{
	static const struct pair want[] = {
	    {"udid", "u1"},	     {"imei", "490154203237518"}, {"meid", "A0000000000001"},
	    {"serial_number", "S1"}, {"hostname", "pc-1"},	  {"username", "a&b"}};
	(void)state;
	expect_values("<r><udid>u1</udid><imei>490154203237518</imei><meid>A0000000000001</meid>"
		      "<serial_number>S1</serial_number><hostname>pc-1</hostname>"
		      "<username>a&amp;b</username><serial>not collected</serial></r>",
		      want, NELEM(want));
}

static void batch_mixed_case_names(void **state)
{
	static const struct pair want[] = {
	    {"macaddress", "1"}, {"value", "2"}, {"serial_number", "3"}};
	(void)state;
	expect_values("<ISE_API><MacAddress>1</MacAddress><VALUE>2</VALUE>"
		      "<Serial_Number>3</Serial_Number></ISE_API>",
		      want, NELEM(want));
}

static void batch_namespace_default(void **state)
{
	static const struct pair want[] = {{"macaddress", "0026B424FEB4"}};
	(void)state;
	expect_values("<ise_api xmlns=\"urn:cisco:ise:mdm\">"
		      "<macaddress>0026B424FEB4</macaddress></ise_api>",
		      want, NELEM(want));
}

static void batch_namespace_prefixed(void **state)
{
	static const struct pair want[] = {{"macaddress", "0026B424FEB4"}, {"value", "X"}};
	(void)state;
	expect_values("<ise:ise_api xmlns:ise=\"urn:cisco:ise:mdm\">"
		      "<ise:MACADDRESS>0026B424FEB4</ise:MACADDRESS><v:value xmlns:v=\"urn:v\">X"
		      "</v:value></ise:ise_api>",
		      want, NELEM(want));
}

static void batch_trims_white_space(void **state)
{
	static const struct pair want[] = {{"value", "A"}, {"value", "B"}, {"value", "C D"}};
	(void)state;
	expect_values("<r><value>  A \n</value><value>\n\tB ,\r\n  C D\t</value></r>", want,
		      NELEM(want));
}

static void batch_drops_empty_pieces(void **state)
{
	static const struct pair want[] = {{"value", "A"}, {"value", "B"}};
	(void)state;
	expect_values("<r><value>,A,,B,</value><value></value><value/><value> , \n</value></r>",
		      want, NELEM(want));
}

/* Text of a batch element is its own text: a nested element's text is not mixed into it. */
static void batch_nested_collected(void **state)
{
	static const struct pair want[] = {{"macaddress", "M1"}, {"value", "AB"}};
	(void)state;
	expect_values("<r><value>A<macaddress>M1</macaddress>B</value></r>", want, NELEM(want));
}

static void batch_empty_list(void **state)
{
	struct vals v;

	(void)state;
	run_values(&v, "<ise_api><deviceList/></ise_api>", 10);
	assert_int_equal(v.e, MDM_OK);
	assert_int_equal(v.n, 0);
	assert_non_null(v.it); /* free()-able even when empty */
	free(v.it);
}

static void batch_more_than_max(void **state)
{
	struct vals v;

	(void)state;
	run_values(&v, "<r><value>A,B</value><value>C</value></r>", 3);
	assert_int_equal(v.e, MDM_OK);
	assert_int_equal(v.n, 3);
	free(v.it);

	run_values(&v, "<r><value>A,B</value><value>C,D</value></r>", 3);
	assert_int_equal(v.e, MDM_ERR_TOOBIG);
	assert_null(v.it);
	assert_int_equal(v.n, 0);
	assert_string_equal(v.why, "more than 3 values");

	run_values(&v, "<r><value>A</value></r>", 0);
	assert_int_equal(v.e, MDM_ERR_TOOBIG);
	assert_string_equal(v.why, "more than 0 values");
}

/* Many values: the array grows past its first allocation and keeps the order. */
static void batch_many_values(void **state)
{
	struct vals v;
	size_t cap = 1000 * 8 + 32, len = 0;
	char *doc = malloc(cap);

	(void)state;
	assert_non_null(doc);
	len += (size_t)snprintf(doc, cap, "<r><value>");
	for (int i = 0; i < 1000; i++)
		len += (size_t)snprintf(doc + len, cap - len, "%d,", i);
	snprintf(doc + len, cap - len, "</value></r>");
	run_values(&v, doc, 1000);
	assert_int_equal(v.e, MDM_OK);
	assert_int_equal(v.n, 1000);
	assert_string_equal(v.it[0].value, "0");
	assert_string_equal(v.it[999].value, "999");
	free(v.it);
	run_values(&v, doc, 999);
	assert_int_equal(v.e, MDM_ERR_TOOBIG);
	free(doc);
}

static void batch_piece_too_long(void **state)
{
	struct vals v;
	char *ok = in_element("value", IDENT_VALUE_MAX, 'h');
	char *ok_padded = in_element("value", IDENT_VALUE_MAX + 40, ' ');
	char *doc = in_element("hostname", IDENT_VALUE_MAX + 1, 'h');

	(void)state;
	run_values(&v, ok, 10);
	assert_int_equal(v.e, MDM_OK);
	assert_int_equal(v.n, 1);
	assert_int_equal(strlen(v.it[0].value), IDENT_VALUE_MAX);
	free(v.it);

	/* White space does not count: only what is left after trimming must fit. */
	memcpy(ok_padded + strlen("<r><value>") + 20, "X", 1);
	run_values(&v, ok_padded, 10);
	assert_int_equal(v.e, MDM_OK);
	assert_int_equal(v.n, 1);
	assert_string_equal(v.it[0].value, "X");
	free(v.it);

	run_values(&v, doc, 10);
	assert_int_equal(v.e, MDM_ERR_INVALID);
	assert_null(v.it);
	assert_non_null(strstr(v.why, "<hostname>"));
	assert_non_null(strstr(v.why, "longer than 253"));
	free(ok);
	free(ok_padded);
	free(doc);
}

/* --- refused documents --- */

static const char billion_laughs[] =
    "<?xml version=\"1.0\"?>\n"
    "<!DOCTYPE lolz [\n"
    " <!ENTITY lol \"lol\">\n"
    " <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
    " <!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">\n"
    " <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n"
    " <!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">\n"
    " <!ENTITY lol5 \"&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;\">\n"
    " <!ENTITY lol6 \"&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;\">\n"
    " <!ENTITY lol7 \"&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;\">\n"
    " <!ENTITY lol8 \"&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;\">\n"
    " <!ENTITY lol9 \"&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;\">\n"
    "]>\n"
    "<ise_api><value>&lol9;</value></ise_api>\n";

static void refuses_billion_laughs(void **state)
{
	(void)state;
	expect_refused(billion_laughs, strlen(billion_laughs), MDM_ERR_PARSE, "DOCTYPE");
}

static void refuses_external_entity(void **state)
{
	static const char xxe[] =
	    "<?xml version=\"1.0\"?>\n"
	    "<!DOCTYPE foo [ <!ENTITY xxe SYSTEM \"file:///etc/passwd\"> ]>\n"
	    "<ise_api><identifier><macaddress>&xxe;</macaddress></identifier></ise_api>\n";
	static const char ext_dtd[] = "<!DOCTYPE ise_api SYSTEM \"file:///etc/passwd\">\n"
				      "<ise_api><value>A</value></ise_api>";
	static const char param[] = "<!DOCTYPE r [<!ENTITY % p SYSTEM \"http://127.0.0.1:1/x.dtd\">"
				    "%p;]><r><value>A</value></r>";

	(void)state;
	expect_refused(xxe, strlen(xxe), MDM_ERR_PARSE, "DOCTYPE");
	expect_refused(ext_dtd, strlen(ext_dtd), MDM_ERR_PARSE, "DOCTYPE");
	expect_refused(param, strlen(param), MDM_ERR_PARSE, "DOCTYPE");
}

static void refuses_doctype_alone(void **state)
{
	static const char doc[] = "<!DOCTYPE ise_api><ise_api><value>A</value></ise_api>";
	static const char internal[] = "<!DOCTYPE r [<!ELEMENT r ANY>]><r/>";

	(void)state;
	expect_refused(doc, strlen(doc), MDM_ERR_PARSE, "DOCTYPE is not allowed");
	expect_refused(internal, strlen(internal), MDM_ERR_PARSE, "DOCTYPE");
}

static void depth_limit(void **state)
{
	struct vals v;
	char *ok = nested(REQXML_MAX_DEPTH);
	char *deep = nested(REQXML_MAX_DEPTH + 1);

	(void)state;
	run_values(&v, ok, 10);
	assert_int_equal(v.e, MDM_OK);
	assert_int_equal(v.n, 1);
	assert_string_equal(v.it[0].value, "AA");
	free(v.it);
	expect_refused(deep, strlen(deep), MDM_ERR_PARSE, "deeper than 32");
	free(ok);
	free(deep);
}

static void text_node_limit(void **state)
{
	struct vals v;
	char *ok = in_element("pad", REQXML_MAX_TEXT, 'x');
	char *big = in_element("pad", REQXML_MAX_TEXT + 1, 'x');
	char *commas = in_element("value", REQXML_MAX_TEXT + 1, ',');

	(void)state;
	run_values(&v, ok, 10);
	assert_int_equal(v.e, MDM_OK);
	assert_int_equal(v.n, 0);
	free(v.it);
	expect_refused(big, strlen(big), MDM_ERR_PARSE, "text node is longer than 65536");
	expect_refused(commas, strlen(commas), MDM_ERR_PARSE, "longer than 65536");
	/* Two text nodes of one element, each within the limit, together over it. */
	free(ok);
	ok = split_text(REQXML_MAX_TEXT / 2 + 1);
	run_values(&v, ok, 10);
	assert_int_equal(v.e, MDM_ERR_PARSE);
	assert_null(v.it);
	assert_string_equal(v.why, "the text of <value> is longer than 65536 bytes");
	free(ok);
	free(big);
	free(commas);
}

static void refuses_malformed(void **state)
{
	static const char *const bad[] = {
	    "",
	    "not xml at all",
	    "<r><value>A</r>",
	    "<r><value>A</value>",
	    "<r/><r/>",
	    "<r>&undefined;</r>",
	    "<r a='1' a='2'/>",
	    "<r><value>\x01</value></r>",
	    "<r><value>\xff\xfe</value></r>",
	    "<?xml version=\"1.0\" encoding=\"x-no-such-charset\"?><r/>",
	};
	static const char nul[] = "<r><value>A\0B</value></r>";

	(void)state;
	for (size_t i = 0; i < NELEM(bad); i++)
		expect_refused(bad[i], strlen(bad[i]), MDM_ERR_PARSE, "XML error at line 1");
	expect_refused(nul, sizeof(nul) - 1, MDM_ERR_PARSE, "XML error");
	expect_refused(NULL, 0, MDM_ERR_PARSE, "XML error");
}

/* --- action bodies --- */

static void expect_action(const char *doc, const char *tag, const char *value)
{
	struct reqxml_item it;
	char why[WHYSZ] = "";
	enum mdm_err e = reqxml_action(doc, strlen(doc), &it, why, sizeof(why));

	if (e)
		print_error("why: %s\n", why);
	assert_int_equal(e, MDM_OK);
	assert_string_equal(it.tag, tag);
	assert_string_equal(it.value, value);
}

static void expect_action_invalid(const char *doc, const char *want)
{
	struct reqxml_item it;
	char why[WHYSZ] = "";

	assert_int_equal(reqxml_action(doc, strlen(doc), &it, why, sizeof(why)), MDM_ERR_INVALID);
	assert_string_equal(it.tag, "");
	assert_string_equal(it.value, "");
	if (!strstr(why, want))
		fail_msg("why \"%s\" does not mention \"%s\"", why, want);
}

static void action_macaddress(void **state)
{
	(void)state;
	expect_action("<ise_api><identifier><macaddress>0026B424FEB4</macaddress></identifier>"
		      "</ise_api>",
		      "macaddress", "0026B424FEB4");
}

static void action_guid(void **state)
{
	(void)state;
	expect_action("<ise_api><identifier><guid>1759c0fd-c8da-49e8-b14f-19d85acfacea</guid>"
		      "</identifier></ise_api>",
		      "guid", "1759c0fd-c8da-49e8-b14f-19d85acfacea");
}

static void action_other_kinds(void **state)
{
	(void)state;
	expect_action("<r><identifier><serial_number>C02X</serial_number></identifier></r>",
		      "serial_number", "C02X");
	expect_action("<r><identifier><udid>u-1</udid></identifier></r>", "udid", "u-1");
	expect_action("<r><identifier><imei>490154203237518</imei></identifier></r>", "imei",
		      "490154203237518");
	expect_action("<r><identifier><meid>A0000000000001</meid></identifier></r>", "meid",
		      "A0000000000001");
}

static void action_white_space(void **state)
{
	(void)state;
	expect_action("<?xml version=\"1.0\"?>\n<ise_api>\n  <identifier>\n    <macaddress>\n"
		      "\t 0026B424FEB4 \r\n    </macaddress>\n  </identifier>\n</ise_api>\n",
		      "macaddress", "0026B424FEB4");
}

static void action_case_namespace_and_depth(void **state)
{
	(void)state;
	expect_action("<i:ISE_API xmlns:i=\"urn:x\"><i:Request><i:Identifier><i:MacAddress>"
		      "aa:bb:cc:00:11:22</i:MacAddress></i:Identifier></i:Request></i:ISE_API>",
		      "macaddress", "aa:bb:cc:00:11:22");
	/* A batch-style element outside <identifier> is not the action's target. */
	expect_action("<r><macaddress>111111111111</macaddress><identifier><guid>G</guid>"
		      "</identifier></r>",
		      "guid", "G");
}

static void action_missing_identifier(void **state)
{
	(void)state;
	expect_action_invalid("<ise_api><macaddress>0026B424FEB4</macaddress></ise_api>",
			      "no identifier in the action body");
	expect_action_invalid("<ise_api><identifier><hostname>h</hostname></identifier></ise_api>",
			      "no identifier in the action body");
	expect_action_invalid("<ise_api><identifier/></ise_api>", "no identifier");
	/* Only a direct child of <identifier> counts. */
	expect_action_invalid("<r><identifier><x><guid>G</guid></x></identifier></r>",
			      "no identifier");
	expect_action_invalid("<r><identifier><macaddress> \n</macaddress></identifier></r>",
			      "empty");
}

static void action_two_identifiers(void **state)
{
	(void)state;
	expect_action_invalid("<r><identifier><macaddress>0026B424FEB4</macaddress>"
			      "<guid>G</guid></identifier></r>",
			      "two different identifiers");
	expect_action_invalid("<r><identifier><macaddress>0026B424FEB4</macaddress></identifier>"
			      "<identifier><macaddress>0026B424FEB5</macaddress></identifier></r>",
			      "two different identifiers");
	/* The same identifier twice names one device: accepted. */
	expect_action("<r><identifier><macaddress>0026B424FEB4</macaddress>"
		      "<macaddress> 0026B424FEB4 </macaddress></identifier></r>",
		      "macaddress", "0026B424FEB4");
}

static void action_value_too_long(void **state)
{
	char doc[512];
	char v[IDENT_VALUE_MAX + 2];

	(void)state;
	memset(v, 'a', sizeof(v) - 1);
	v[sizeof(v) - 1] = '\0';
	snprintf(doc, sizeof(doc), "<r><identifier><guid>%s</guid></identifier></r>", v);
	expect_action_invalid(doc, "longer than 253");
}

/* --- multipart --- */

static const char xml_part[] =
    "<ise_api><identifier><macaddress>0026B424FEB4</macaddress></identifier></ise_api>";

static void expect_part(const char *ct, const char *body, size_t len, const char *want,
			size_t wantlen)
{
	const char *part = NULL;
	size_t partlen = 0;

	assert_int_equal(multipart_first_part(ct, body, len, &part, &partlen), MDM_OK);
	assert_non_null(part);
	assert_true(part >= body && part + partlen <= body + len); /* points into the body */
	assert_int_equal(partlen, wantlen);
	assert_memory_equal(part, want, wantlen);
}

static void expect_broken(const char *ct, const char *body)
{
	const char *part = body;
	size_t partlen = 1;

	assert_int_equal(multipart_first_part(ct, body, strlen(body), &part, &partlen),
			 MDM_ERR_PARSE);
	assert_null(part);
	assert_int_equal(partlen, 0);
}

static void multipart_quoted_boundary(void **state)
{
	static const char body[] = "--b0undary.42 x\r\n"
				   "Content-Disposition: form-data; name=\"file\"; "
				   "filename=\"a.xml\"\r\n"
				   "Content-Type: application/xml\r\n"
				   "\r\n"
				   "<ise_api><identifier><macaddress>0026B424FEB4</macaddress>"
				   "</identifier></ise_api>\r\n"
				   "--b0undary.42 x--\r\n";
	struct reqxml_item it;
	const char *part;
	size_t partlen;

	(void)state;
	expect_part("multipart/form-data; boundary=\"b0undary.42 x\"", body, strlen(body), xml_part,
		    strlen(xml_part));
	/* What the action handler does with it end to end. */
	assert_int_equal(multipart_first_part("Multipart/Form-Data;BOUNDARY=\"b0undary.42 x\"",
					      body, strlen(body), &part, &partlen),
			 MDM_OK);
	assert_int_equal(reqxml_action(part, partlen, &it, NULL, 0), MDM_OK);
	assert_string_equal(it.value, "0026B424FEB4");
}

static void multipart_unquoted_boundary(void **state)
{
	static const char body[] = "preamble to be ignored\r\n"
				   "------WebKitFormBoundary7MA4YWxkTrZu0gW\r\n"
				   "Content-Disposition: form-data; name=\"xml\"\r\n"
				   "\r\n"
				   "line one\r\n"
				   "line two with --dashes\r\n"
				   "\r\n"
				   "------WebKitFormBoundary7MA4YWxkTrZu0gW\r\n"
				   "Content-Disposition: form-data; name=\"second\"\r\n"
				   "\r\n"
				   "second part\r\n"
				   "------WebKitFormBoundary7MA4YWxkTrZu0gW--\r\n";
	static const char want[] = "line one\r\nline two with --dashes\r\n";

	(void)state;
	expect_part("multipart/form-data; charset=utf-8; "
		    "boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW",
		    body, strlen(body), want, strlen(want));
	expect_part("multipart/mixed;boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW ; x=\"a;b\"",
		    body, strlen(body), want, strlen(want));
}

static void multipart_exact_bytes(void **state)
{
	/* Binary-safe: the part holds a NUL and a lone CR, and ends in a bare "\r" of its own. */
	static const char body[] = "--XyZ\r\n\r\nA\0B\rC\r\r\n--XyZ--";
	static const char want[] = "A\0B\rC\r";
	static const char empty[] = "--XyZ\r\nH: v\r\n\r\n\r\n--XyZ--\r\n";
	static const char sloppy[] = "--XyZ\r\nH: v\r\n\r\n--XyZ--\r\n";

	(void)state;
	expect_part("multipart/form-data; boundary=XyZ", body, sizeof(body) - 1, want,
		    sizeof(want) - 1);
	expect_part("multipart/form-data; boundary=XyZ", empty, strlen(empty), "", 0);
	expect_part("multipart/form-data; boundary=XyZ", sloppy, strlen(sloppy), "", 0);
	/* "--XyZW" is not the delimiter "--XyZ": it is part of the content. */
	expect_part("multipart/form-data; boundary=XyZ", "--XyZ\r\n\r\na\r\n--XyZW\r\n--XyZ--",
		    strlen("--XyZ\r\n\r\na\r\n--XyZW\r\n--XyZ--"), "a\r\n--XyZW", 9);
}

static void multipart_lf_only(void **state)
{
	static const char body[] = "--sep\n"
				   "Content-Disposition: form-data; name=\"xml\"\n"
				   "\n"
				   "<ise_api><identifier><macaddress>0026B424FEB4</macaddress>"
				   "</identifier></ise_api>\n"
				   "--sep--\n";

	(void)state;
	expect_part("multipart/form-data; boundary=sep", body, strlen(body), xml_part,
		    strlen(xml_part));
}

static void multipart_broken(void **state)
{
	static const char *const ct = "multipart/form-data; boundary=sep";

	(void)state;
	/* No delimiter after the first part. */
	expect_broken(ct, "--sep\r\nContent-Type: application/xml\r\n\r\n<r/>\r\n");
	expect_broken(ct, "--sep\r\n\r\n<r/>\r\n--se");
	/* No opening delimiter, only a closing one, headers never end, empty body. */
	expect_broken(ct, "<r/>");
	expect_broken(ct, "--sep--\r\n");
	expect_broken(ct, "--sep\r\nContent-Type: application/xml\r\n");
	expect_broken(ct, "");
	/* The content type itself: no boundary, empty, too long, bad characters, unterminated. */
	expect_broken("multipart/form-data", "--sep\r\n\r\nx\r\n--sep--");
	expect_broken("multipart/form-data; boundary=", "--\r\n\r\nx\r\n----");
	expect_broken("multipart/form-data; boundary=\"sep", "--sep\r\n\r\nx\r\n--sep--");
	expect_broken("multipart/form-data; boundary=se\x01p", "--se\x01p\r\n\r\nx\r\n--se\x01p--");
	expect_broken("multipart/form-data; boundary=sep; boundary=other",
		      "--sep\r\n\r\nx\r\n--sep--");
	expect_broken("multipart/form-data; boundary", "--sep\r\n\r\nx\r\n--sep--");
	expect_broken("multipart/form-data garbage; boundary=sep", "--sep\r\n\r\nx\r\n--sep--");
	expect_broken(
	    "multipart/form-data; boundary=01234567890123456789012345678901234567890123456"
	    "789012345678901234567890",
	    "x");
}

static void multipart_passthrough(void **state)
{
	static const char body[] = "<ise_api/>";
	static const char *const types[] = {
	    NULL,
	    "application/xml; charset=utf-8",
	    "text/xml",
	    "application/x-www-form-urlencoded",
	    "multipart/alternative; boundary=sep",
	    "multipart/form-datax; boundary=sep",
	    "",
	};
	const char *part;
	size_t partlen;

	(void)state;
	for (size_t i = 0; i < NELEM(types); i++) {
		part = NULL;
		partlen = 0;
		assert_int_equal(
		    multipart_first_part(types[i], body, strlen(body), &part, &partlen), MDM_OK);
		assert_ptr_equal(part, body);
		assert_int_equal(partlen, strlen(body));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(batch_macaddress_list),
	    cmocka_unit_test(batch_value_elements),
	    cmocka_unit_test(batch_comma_separated),
	    cmocka_unit_test(batch_every_collected_kind),
	    cmocka_unit_test(batch_mixed_case_names),
	    cmocka_unit_test(batch_namespace_default),
	    cmocka_unit_test(batch_namespace_prefixed),
	    cmocka_unit_test(batch_trims_white_space),
	    cmocka_unit_test(batch_drops_empty_pieces),
	    cmocka_unit_test(batch_nested_collected),
	    cmocka_unit_test(batch_empty_list),
	    cmocka_unit_test(batch_more_than_max),
	    cmocka_unit_test(batch_many_values),
	    cmocka_unit_test(batch_piece_too_long),
	    cmocka_unit_test(refuses_billion_laughs),
	    cmocka_unit_test(refuses_external_entity),
	    cmocka_unit_test(refuses_doctype_alone),
	    cmocka_unit_test(depth_limit),
	    cmocka_unit_test(text_node_limit),
	    cmocka_unit_test(refuses_malformed),
	    cmocka_unit_test(action_macaddress),
	    cmocka_unit_test(action_guid),
	    cmocka_unit_test(action_other_kinds),
	    cmocka_unit_test(action_white_space),
	    cmocka_unit_test(action_case_namespace_and_depth),
	    cmocka_unit_test(action_missing_identifier),
	    cmocka_unit_test(action_two_identifiers),
	    cmocka_unit_test(action_value_too_long),
	    cmocka_unit_test(multipart_quoted_boundary),
	    cmocka_unit_test(multipart_unquoted_boundary),
	    cmocka_unit_test(multipart_exact_bytes),
	    cmocka_unit_test(multipart_lf_only),
	    cmocka_unit_test(multipart_broken),
	    cmocka_unit_test(multipart_passthrough),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
