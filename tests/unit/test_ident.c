#include "unit.h"

#include <stdio.h>
#include <stdlib.h>

#include "../../core/ident.h"

#define MSG_LAYOUT                                                                                 \
	"MAC address must be 12 hex digits, alone or as aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff or "  \
	"aabb.ccdd.eeff"
#define MSG_MULTICAST "MAC address is a multicast address, not a device address"

/* mac_parse of a C string: the result, with out and local checked when it succeeds. */
static void mac_ok(const char *in, const char *want, bool want_local)
{
	char out[MAC_STR_LEN + 1];
	char why[256] = "untouched";
	bool local = !want_local;

	assert_int_equal(mac_parse(in, strlen(in), out, &local, why, sizeof(why)), MDM_OK);
	assert_string_equal(out, want);
	assert_int_equal(strlen(out), MAC_STR_LEN);
	assert_int_equal(local, want_local);
}

static void mac_bad(const char *in, size_t len, const char *want_why)
{
	char out[MAC_STR_LEN + 1];
	char why[256] = "";
	bool local = false;

	assert_int_equal(mac_parse(in, len, out, &local, why, sizeof(why)), MDM_ERR_INVALID);
	assert_string_equal(why, want_why);
}

static void test_mac_forms(void **state)
{
	(void)state;
	mac_ok("00:26:b4:24:fe:b4", "0026B424FEB4", false);
	mac_ok("00-26-B4-24-FE-B4", "0026B424FEB4", false);
	mac_ok("0026.b424.feb4", "0026B424FEB4", false);
	mac_ok("0026B424FEB4", "0026B424FEB4", false);
	mac_ok("0026b424feb4", "0026B424FEB4", false);
	mac_ok("00:26:B4:24:fE:b4", "0026B424FEB4", false); /* mixed case */
	mac_ok("0026.B424.fEb4", "0026B424FEB4", false);
	mac_ok("aa:bb:cc:dd:ee:ff", "AABBCCDDEEFF", true); /* 0xAA: bit 1 set */
	mac_ok("AA-BB-CC-DD-EE-FF", "AABBCCDDEEFF", true);
	mac_ok("aabb.ccdd.eeff", "AABBCCDDEEFF", true);
	mac_ok("AABBCCDDEEFF", "AABBCCDDEEFF", true);
	mac_ok("08:00:27:00:00:01", "080027000001", false);
}

static void test_mac_local_flag(void **state)
{
	(void)state;
	mac_ok("02:00:00:00:00:01", "020000000001", true);
	mac_ok("DA:A1:19:12:34:56", "DAA119123456", true);
	mac_ok("da:a1:19:12:34:56", "DAA119123456", true);
	mac_ok("06:11:22:33:44:55", "061122334455", true);
	mac_ok("00:26:B4:24:FE:B4", "0026B424FEB4", false);
	mac_ok("3C:22:FB:00:00:01", "3C22FB000001", false);
	mac_ok("FC:FF:FF:FF:FF:FF", "FCFFFFFFFFFF", false); /* 0xFC: neither bit set */
}

static void test_mac_rejections(void **state)
{
	(void)state;
	mac_bad("", 0, "MAC address is empty");
	mac_bad("00:26:B4:24:FE:B4:", 18, "MAC address is too long");
	mac_bad("00:26:B4:24:FE:B4:00:00", 23, "MAC address is too long");
	/* wrong lengths */
	mac_bad("0026B424FEB", 11, MSG_LAYOUT);
	mac_bad("0026B424FEB4A", 13, MSG_LAYOUT);
	mac_bad("00:26:B4:24:FE:B", 16, MSG_LAYOUT);
	mac_bad("0026.b424.feb", 13, MSG_LAYOUT);
	mac_bad("0", 1, MSG_LAYOUT);
	/* mixed separators */
	mac_bad("00:26-B4:24:FE:B4", 17, MSG_LAYOUT);
	mac_bad("00-26:B4-24-FE-B4", 17, MSG_LAYOUT);
	mac_bad("00:26:B4:24:FE-B4", 17, MSG_LAYOUT);
	mac_bad("0026.b424:feb4", 14, MSG_LAYOUT);
	mac_bad("00.26.B4.24.FE.B4", 17, MSG_LAYOUT);
	mac_bad("0026:b424:feb4", 14, MSG_LAYOUT);
	mac_bad("00 26 B4 24 FE B4", 17, MSG_LAYOUT);
	/* short groups are not guessed at */
	mac_bad("a:b:c:d:e:f", 11, MSG_LAYOUT);
	mac_bad("0:26:B4:24:FE:B4", 16, MSG_LAYOUT);
	mac_bad("026:B4:24:FE:B4:0", 17, MSG_LAYOUT);
	/* five octets in every separator form: a length that no layout has */
	mac_bad("00:26:b4:24:fe", 14, MSG_LAYOUT);
	mac_bad("00-26-b4-24-fe", 14, MSG_LAYOUT);
	mac_bad("00:26:b4:24:fe:", 15, MSG_LAYOUT);
	mac_bad("0026b424fe", 10, MSG_LAYOUT);
	mac_bad("0026.b424.fe", 12, MSG_LAYOUT);
	/* non-hex */
	mac_bad("0026B424FEBG", 12, MSG_LAYOUT);
	mac_bad("gg:26:B4:24:FE:B4", 17, MSG_LAYOUT);
	mac_bad("0026.b424.fexx", 14, MSG_LAYOUT);
	mac_bad("0026B424\0EB4", 12, MSG_LAYOUT); /* an embedded NUL is not a digit */
	/* not device addresses */
	mac_bad("01:00:5E:00:00:01", 17, MSG_MULTICAST);
	mac_bad("33:33:00:00:00:01", 17, MSG_MULTICAST);
	mac_bad("0180C2000000", 12, MSG_MULTICAST);
	mac_bad("FF:FF:FF:FF:FF:FF", 17, "MAC address FFFFFFFFFFFF is the broadcast address");
	mac_bad("ffff.ffff.ffff", 14, "MAC address FFFFFFFFFFFF is the broadcast address");
	mac_bad("00:00:00:00:00:00", 17, "MAC address 000000000000 is not a device address");
	mac_bad("000000000000", 12, "MAC address 000000000000 is not a device address");
}

static void test_mac_len_is_respected(void **state)
{
	char out[MAC_STR_LEN + 1];
	const char *s = "0026B424FEB4FFFF";

	(void)state;
	/* Only len bytes are read: the rest of the string does not matter. */
	assert_int_equal(mac_parse(s, 12, out, NULL, NULL, 0), MDM_OK);
	assert_string_equal(out, "0026B424FEB4");
}

static void test_mac_why_optional_and_bounded(void **state)
{
	char out[MAC_STR_LEN + 1];
	char why[8];

	(void)state;
	/* NULL why and NULL local are allowed */
	assert_int_equal(mac_parse("zz", 2, out, NULL, NULL, 0), MDM_ERR_INVALID);
	assert_int_equal(mac_parse("00:26:b4:24:fe:b4", 17, out, NULL, NULL, 0), MDM_OK);
	assert_string_equal(out, "0026B424FEB4");
	/* a small why is truncated, still terminated */
	assert_int_equal(mac_parse("", 0, out, NULL, why, sizeof(why)), MDM_ERR_INVALID);
	assert_string_equal(why, "MAC add");
}

/* ident_parse of a C string that must succeed with value want. */
static struct ident id_ok(enum ident_kind kind, const char *in, const char *want)
{
	struct ident id;
	char why[256] = "";

	assert_int_equal(ident_parse(kind, in, strlen(in), &id, why, sizeof(why)), MDM_OK);
	assert_int_equal(id.kind, kind);
	assert_string_equal(id.value, want);
	assert_int_equal(id.len, strlen(want));
	return id;
}

static void id_bad_n(enum ident_kind kind, const char *in, size_t len, const char *want_why)
{
	struct ident id;
	char why[256] = "";

	assert_int_equal(ident_parse(kind, in, len, &id, why, sizeof(why)), MDM_ERR_INVALID);
	assert_string_equal(why, want_why);
}

static void id_bad(enum ident_kind kind, const char *in, const char *want_why)
{
	id_bad_n(kind, in, strlen(in), want_why);
}

/* A string of n copies of ch, heap-allocated. */
static char *rep(char ch, size_t n)
{
	char *s = malloc(n + 1);

	assert_non_null(s);
	memset(s, ch, n);
	s[n] = '\0';
	return s;
}

static void test_ident_mac(void **state)
{
	struct ident id;

	(void)state;
	id = id_ok(IDENT_MAC, "  00:26:b4:24:fe:b4\t\r\n", "0026B424FEB4");
	assert_false(id.mac_local);
	id = id_ok(IDENT_MAC, "\tda-a1-19-00-00-01 ", "DAA119000001");
	assert_true(id.mac_local);
	id_bad(IDENT_MAC, "   ", "MAC address is empty");
	id_bad(IDENT_MAC, " 01:00:5E:00:00:01 ", MSG_MULTICAST);
	id_bad(IDENT_MAC, "00:26:b4 24:fe:b4", MSG_LAYOUT);
}

static void test_ident_trim_and_empty(void **state)
{
	(void)state;
	id_ok(IDENT_GUID, "  abc-123 \t", "abc-123");
	id_ok(IDENT_USERNAME, "\r\n JDoe \n", "jdoe");
	id_bad(IDENT_GUID, "", "identifier value is empty");
	id_bad(IDENT_UDID, " \t\r\n", "identifier value is empty");
	id_bad(IDENT_USERNAME, "  ", "identifier value is empty");
	id_bad(IDENT_HOSTNAME, "", "identifier value is empty");
}

static void test_ident_guid(void **state)
{
	char *g128 = rep('g', 128), *g129 = rep('g', 129);

	(void)state;
	id_ok(IDENT_GUID, "1759c0fd-c8da-49e8-b14f-19d85acfacea",
	      "1759c0fd-c8da-49e8-b14f-19d85acfacea");
	id_ok(IDENT_GUID, "AbC{}~!", "AbC{}~!"); /* kept as sent: case and punctuation */
	id_ok(IDENT_GUID, g128, g128);
	id_bad(IDENT_GUID, g129, "GUID is longer than 128 bytes");
	id_bad(IDENT_GUID, "abc def", "GUID may hold printable ASCII only");
	id_bad(IDENT_GUID, "abc\x01", "GUID may hold printable ASCII only");
	id_bad(IDENT_GUID, "abc\tdef", "GUID may hold printable ASCII only");
	id_bad(IDENT_GUID, "abc\x7f", "GUID may hold printable ASCII only");
	id_bad(IDENT_GUID, "caf\xc3\xa9", "GUID may hold printable ASCII only");
	id_bad_n(IDENT_GUID, "ab\0cd", 5, "GUID may hold printable ASCII only");
	free(g128);
	free(g129);
}

static void test_ident_udid_serial(void **state)
{
	char *u64 = rep('A', 64), *u65 = rep('A', 65);
	const char *udid_msg = "UDID must be 1 to 64 of A-Z, a-z, 0-9, '.', '_', '-'";
	const char *serial_msg = "serial number must be 1 to 64 of A-Z, a-z, 0-9, '.', '_', '-'";

	(void)state;
	id_ok(IDENT_UDID, "00008030-001A2B3C4D5E802E", "00008030-001A2B3C4D5E802E");
	id_ok(IDENT_UDID, "a.b_c-D9", "a.b_c-D9"); /* case kept */
	id_ok(IDENT_UDID, u64, u64);
	id_bad(IDENT_UDID, u65, udid_msg);
	id_bad(IDENT_UDID, "abc/def", udid_msg);
	id_bad(IDENT_UDID, "abc def", udid_msg);
	id_bad(IDENT_UDID, "abc:def", udid_msg);
	id_ok(IDENT_SERIAL, "C02XK1ABJG5H", "C02XK1ABJG5H");
	id_ok(IDENT_SERIAL, "7xk2q33", "7xk2q33");
	id_ok(IDENT_SERIAL, u64, u64);
	id_bad(IDENT_SERIAL, u65, serial_msg);
	id_bad(IDENT_SERIAL, "SN#1", serial_msg);
	id_bad(IDENT_SERIAL, "s\xc3\xa9rie", serial_msg);
	free(u64);
	free(u65);
}

static void test_ident_imei(void **state)
{
	const char *msg = "IMEI must be 14 to 16 decimal digits";

	(void)state;
	id_ok(IDENT_IMEI, "35209900176148", "35209900176148");
	id_ok(IDENT_IMEI, "352099001761481", "352099001761481");
	id_ok(IDENT_IMEI, "3520990017614823", "3520990017614823");
	id_ok(IDENT_IMEI, " 352099001761481 ", "352099001761481");
	id_bad(IDENT_IMEI, "3520990017614", msg);
	id_bad(IDENT_IMEI, "35209900176148231", msg);
	id_bad(IDENT_IMEI, "35209900176148a", msg);
	id_bad(IDENT_IMEI, "35-209900-176148-1", msg);
	id_bad(IDENT_IMEI, "35209900176148 1", msg);
}

static void test_ident_meid(void **state)
{
	const char *msg = "MEID must be 14 hex digits or 18 decimal digits";

	(void)state;
	id_ok(IDENT_MEID, "a0000000002a3b", "A0000000002A3B"); /* upper-cased */
	id_ok(IDENT_MEID, "A0000000002A3B", "A0000000002A3B");
	id_ok(IDENT_MEID, "35209900176148", "35209900176148");
	id_ok(IDENT_MEID, "270113177609606898", "270113177609606898");
	id_bad(IDENT_MEID, "a0000000002a3", msg);	/* 13 */
	id_bad(IDENT_MEID, "a0000000002a3bc", msg);	/* 15 */
	id_bad(IDENT_MEID, "a0000000002a3g", msg);	/* not hex */
	id_bad(IDENT_MEID, "27011317760960689a", msg);	/* 18 but not decimal */
	id_bad(IDENT_MEID, "2701131776096068", msg);	/* 16 */
	id_bad(IDENT_MEID, "2701131776096068981", msg); /* 19 */
}

static void test_ident_hostname(void **state)
{
	char *h253 = rep('H', 253), *h253l = rep('h', 253), *h254 = rep('h', 254);
	const char *msg = "host name must be 1 to 253 of A-Z, a-z, 0-9, '.', '_', '-'";

	(void)state;
	id_ok(IDENT_HOSTNAME, "Laptop-01.Corp.Example.COM", "laptop-01.corp.example.com");
	id_ok(IDENT_HOSTNAME, "WS_042", "ws_042");
	id_ok(IDENT_HOSTNAME, h253, h253l);
	id_bad(IDENT_HOSTNAME, h254, "identifier value is too long");
	id_bad(IDENT_HOSTNAME, "my host", msg);
	id_bad(IDENT_HOSTNAME, "host/1", msg);
	id_bad(IDENT_HOSTNAME, "h\xc3\xb6st", msg);
	free(h253);
	free(h253l);
	free(h254);
}

static void test_ident_username(void **state)
{
	char *u128 = rep('U', 128), *u128l = rep('u', 128), *u129 = rep('u', 129);
	const char *ctl = "user name holds a control character";

	(void)state;
	id_ok(IDENT_USERNAME, "John.Doe@Corp.COM", "john.doe@corp.com");
	id_ok(IDENT_USERNAME, "CORP\\JDoe", "corp\\jdoe");
	id_ok(IDENT_USERNAME, "John Doe", "john doe");	     /* inner space kept */
	id_ok(IDENT_USERNAME, "J\xc3\x96rg", "j\xc3\x96rg"); /* ASCII only lowered */
	id_ok(IDENT_USERNAME, u128, u128l);
	id_bad(IDENT_USERNAME, u129, "user name is longer than 128 bytes");
	id_bad(IDENT_USERNAME, "jdoe\x01", ctl);
	id_bad(IDENT_USERNAME, "j\tdoe", ctl); /* inner tab is a control character */
	id_bad(IDENT_USERNAME, "j\ndoe", ctl);
	id_bad(IDENT_USERNAME, "jdoe\x7f", ctl);
	id_bad(IDENT_USERNAME, "\x1b[31mjdoe", ctl);
	id_bad_n(IDENT_USERNAME, "jd\0oe", 5, ctl);
	free(u128);
	free(u128l);
	free(u129);
}

static void test_ident_unknown_kind(void **state)
{
	(void)state;
	id_bad(IDENT_KIND_COUNT, "abc", "unknown identifier kind");
}

static void test_ident_failure_leaves_no_value(void **state)
{
	struct ident id;

	(void)state;
	memset(&id, 'x', sizeof(id));
	assert_int_equal(ident_parse(IDENT_IMEI, "12", 2, &id, NULL, 0), MDM_ERR_INVALID);
	assert_int_equal(id.len, 0);
	assert_string_equal(id.value, "");
}

/* FNV-1a 64 of a C string, written out from the published algorithm, for cross-checking. */
static uint64_t fnv1a64(uint64_t basis, const char *s)
{
	uint64_t h = basis;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h;
}

static void test_ident_hash(void **state)
{
	(void)state;
	/* Kind 0 leaves the offset basis as it is: the published FNV-1a 64 test vectors hold. */
	assert_int_equal(ident_hash(0, ""), 0xcbf29ce484222325ull);
	assert_int_equal(ident_hash(0, "a"), 0xaf63dc4c8601ec8cull);
	assert_int_equal(ident_hash(0, "foobar"), 0x85944171f73967e8ull);
	/* The kind is folded into the basis: the same value of two kinds hashes apart. */
	assert_int_equal(ident_hash(IDENT_GUID, "abc"),
			 fnv1a64(0xcbf29ce484222325ull ^ IDENT_GUID, "abc"));
	assert_int_not_equal(ident_hash(IDENT_MAC, "0026B424FEB4"),
			     ident_hash(IDENT_SERIAL, "0026B424FEB4"));
	/* ASCII letters are folded, nothing else is. */
	assert_int_equal(ident_hash(IDENT_HOSTNAME, "Laptop-01.CORP"),
			 ident_hash(IDENT_HOSTNAME, "laptop-01.corp"));
	assert_int_equal(ident_hash(IDENT_MAC, "0026B424FEB4"),
			 fnv1a64(0xcbf29ce484222325ull, "0026b424feb4"));
	assert_int_not_equal(ident_hash(IDENT_USERNAME, "j\xc3\x96rg"),
			     ident_hash(IDENT_USERNAME, "j\xc3\xb6rg"));
	assert_int_not_equal(ident_hash(IDENT_USERNAME, "a@b"), ident_hash(IDENT_USERNAME, "a`b"));
	assert_int_not_equal(ident_hash(IDENT_USERNAME, "a[b"), ident_hash(IDENT_USERNAME, "a{b"));
}

static void test_kind_names(void **state)
{
	static const char *const names[IDENT_KIND_COUNT] = {
	    "mac", "guid", "udid", "imei", "meid", "serial", "hostname", "username",
	};
	enum ident_kind k;

	(void)state;
	for (int i = 0; i < IDENT_KIND_COUNT; i++) {
		assert_string_equal(ident_kind_name((enum ident_kind)i), names[i]);
		k = IDENT_KIND_COUNT;
		assert_int_equal(ident_kind_parse(names[i], &k), MDM_OK);
		assert_int_equal(k, i);
	}
	assert_string_equal(ident_kind_name(IDENT_KIND_COUNT), "unknown");
	assert_string_equal(ident_kind_name((enum ident_kind) - 1), "unknown");
	k = IDENT_GUID;
	assert_int_equal(ident_kind_parse("MAC", &k), MDM_ERR_INVALID);
	assert_int_equal(ident_kind_parse("", &k), MDM_ERR_INVALID);
	assert_int_equal(ident_kind_parse("macaddress", &k), MDM_ERR_INVALID);
	assert_int_equal(ident_kind_parse("unknown", &k), MDM_ERR_INVALID);
	assert_int_equal(k, IDENT_GUID); /* untouched on failure */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mac_forms),
	    cmocka_unit_test(test_mac_local_flag),
	    cmocka_unit_test(test_mac_rejections),
	    cmocka_unit_test(test_mac_len_is_respected),
	    cmocka_unit_test(test_mac_why_optional_and_bounded),
	    cmocka_unit_test(test_ident_mac),
	    cmocka_unit_test(test_ident_trim_and_empty),
	    cmocka_unit_test(test_ident_guid),
	    cmocka_unit_test(test_ident_udid_serial),
	    cmocka_unit_test(test_ident_imei),
	    cmocka_unit_test(test_ident_meid),
	    cmocka_unit_test(test_ident_hostname),
	    cmocka_unit_test(test_ident_username),
	    cmocka_unit_test(test_ident_unknown_kind),
	    cmocka_unit_test(test_ident_failure_leaves_no_value),
	    cmocka_unit_test(test_ident_hash),
	    cmocka_unit_test(test_kind_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
