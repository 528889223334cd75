#include "unit.h"

#include <stdio.h>
#include <stdlib.h>

#include "../../cache/entry.h"

/* Fills a fixed array with n copies of ch (n < size). */
static void fill(char *dst, size_t size, char ch, size_t n)
{
	assert_true(n < size);
	memset(dst, ch, n);
	dst[n] = '\0';
}

/* Every field set; strings at their longest, with bytes JSON has to escape. */
static void full_device(struct device *d)
{
	memset(d, 0, sizeof(*d));
	fill(d->source, sizeof(d->source), 's', sizeof(d->source) - 1);
	assert_int_equal(str_copy(d->vendor_id, sizeof(d->vendor_id), "inv-1 \"quoted\" \\ /"),
			 MDM_OK);
	for (unsigned i = 0; i < DEVICE_MACS_MAX; i++)
		snprintf(d->macs[i], sizeof(d->macs[i]), "0026B424FEB%u", i);
	d->nmacs = DEVICE_MACS_MAX;
	d->mac_local = true;
	fill(d->guid, sizeof(d->guid), 'g', GUID_MAX);
	fill(d->udid, sizeof(d->udid), 'u', sizeof(d->udid) - 1);
	assert_int_equal(str_copy(d->imei, sizeof(d->imei), "3520990017614823"), MDM_OK);
	assert_int_equal(str_copy(d->meid, sizeof(d->meid), "270113177609606841"), MDM_OK);
	fill(d->serial, sizeof(d->serial), 'S', sizeof(d->serial) - 1);
	fill(d->hostname, sizeof(d->hostname), 'h', sizeof(d->hostname) - 1);
	assert_int_equal(str_copy(d->username, sizeof(d->username), "j\xc3\xbcrgen@example.com"),
			 MDM_OK);
	d->ownership = OWN_PERSONAL;
	d->registered = TRI_TRUE;
	d->compliant = TRI_FALSE;
	d->disk_encrypted = TRI_TRUE;
	d->pin_lock = TRI_FALSE;
	d->jail_broken = TRI_TRUE;
	assert_int_equal(str_copy(d->failure_reason, sizeof(d->failure_reason),
				  "line one\nline two\ttab \x01 control"),
			 MDM_OK);
	fill(d->remediation, sizeof(d->remediation), 'r', sizeof(d->remediation) - 1);
	assert_int_equal(str_copy(d->manufacturer, sizeof(d->manufacturer), "Apple"), MDM_OK);
	assert_int_equal(str_copy(d->model, sizeof(d->model), "iPhone 15 \xe2\x80\x93 Pro"),
			 MDM_OK);
	assert_int_equal(str_copy(d->os_version, sizeof(d->os_version), "17.4.1"), MDM_OK);
	assert_int_equal(str_copy(d->phone_number, sizeof(d->phone_number), "+44 20 7946 0958"),
			 MDM_OK);
	d->last_checkin_ms = 1712345678901;
	d->fetched_at_ms = -1; /* any value survives, not just plausible ones */
}

static void sparse_device(struct device *d)
{
	memset(d, 0, sizeof(*d));
	assert_int_equal(str_copy(d->source, sizeof(d->source), "demo"), MDM_OK);
	assert_int_equal(device_add_mac(d, "0026B424FEB4"), MDM_OK);
	d->registered = TRI_FALSE;
}

/* Encodes, decodes and checks the records come back byte for byte. */
static void round_trip(enum entry_verdict v, const struct device *devs, size_t n)
{
	struct buf b;
	struct device *got = NULL;
	enum entry_verdict gv;
	size_t gn = 99;

	buf_init(&b, ENTRY_MAX_LEN + 1);
	assert_int_equal(entry_encode(v, devs, n, &b), MDM_OK);
	assert_int_equal(entry_decode(b.mem, b.len, &gv, &got, &gn), MDM_OK);
	assert_int_equal(gv, v);
	assert_int_equal(gn, n);
	for (size_t i = 0; i < n; i++)
		assert_memory_equal(&got[i], &devs[i], sizeof(devs[i]));
	free(got);
	buf_free(&b);
}

static void test_full(void **state)
{
	struct device d;

	(void)state;
	full_device(&d);
	round_trip(ENTRY_FOUND, &d, 1);
}

static void test_sparse(void **state)
{
	struct device d;
	struct buf b;

	(void)state;
	sparse_device(&d);
	round_trip(ENTRY_FOUND, &d, 1);
	/* Pins the format: only what is reported, short keys, no white space; appended. */
	buf_init(&b, 1024);
	assert_int_equal(buf_addstr(&b, "x"), MDM_OK);
	assert_int_equal(entry_encode(ENTRY_FOUND, &d, 1, &b), MDM_OK);
	assert_string_equal(
	    buf_str(&b),
	    "x{\"v\":1,\"r\":\"found\",\"d\":[{\"src\":\"demo\",\"macs\":[\"0026B424FEB4\"],"
	    "\"reg\":false}]}");
	buf_free(&b);
	/* A record with nothing reported at all. */
	memset(&d, 0, sizeof(d));
	round_trip(ENTRY_FOUND, &d, 1);
	/* Flags without the strings they usually come with. */
	d.mac_local = true;
	d.jail_broken = TRI_FALSE;
	round_trip(ENTRY_FOUND, &d, 1);
}

static void test_several(void **state)
{
	struct device d[4];

	(void)state;
	full_device(&d[0]);
	sparse_device(&d[1]);
	full_device(&d[2]);
	d[2].ownership = OWN_CORPORATE;
	d[2].mac_local = false;
	d[2].nmacs = 2;
	memset(d[2].macs[2], 0, sizeof(d[2].macs) - 2 * sizeof(d[2].macs[0]));
	d[2].registered = TRI_UNSET;
	d[2].last_checkin_ms = 0;
	memset(d[2].guid, 0, sizeof(d[2].guid));
	sparse_device(&d[3]);
	assert_int_equal(str_copy(d[3].source, sizeof(d[3].source), "intune"), MDM_OK);
	round_trip(ENTRY_FOUND, d, 4);
}

static enum mdm_err decode_str(const char *s)
{
	struct device *devs = (struct device *)&devs; /* must come back NULL on error */
	enum entry_verdict v;
	size_t n = 7;
	enum mdm_err err = entry_decode(s, strlen(s), &v, &devs, &n);

	if (err) {
		assert_null(devs);
		assert_int_equal(n, 0);
	}
	free(devs);
	return err;
}

static void test_not_enrolled(void **state)
{
	struct buf b;
	struct device *got = (struct device *)&b; /* must be reset to NULL */
	enum entry_verdict v = ENTRY_FOUND;
	size_t n = 5;

	(void)state;
	round_trip(ENTRY_NOT_ENROLLED, NULL, 0);
	buf_init(&b, 1024);
	assert_int_equal(entry_encode(ENTRY_NOT_ENROLLED, NULL, 0, &b), MDM_OK);
	assert_string_equal(buf_str(&b), "{\"v\":1,\"r\":\"not_enrolled\"}");
	assert_int_equal(entry_decode(b.mem, b.len, &v, &got, &n), MDM_OK);
	assert_int_equal(v, ENTRY_NOT_ENROLLED);
	assert_null(got);
	assert_int_equal(n, 0);
	/* An explicit empty list is the same answer. */
	assert_int_equal(decode_str("{\"v\":1,\"r\":\"not_enrolled\",\"d\":[]}"), MDM_OK);
	buf_free(&b);
}

/* Encoding refuses records it could not give back, and leaves out as it was. */
static void test_encode_refused(void **state)
{
	struct device d, *many;
	struct buf b;
	size_t nmany;

	(void)state;
	buf_init(&b, 1024);
	assert_int_equal(buf_addstr(&b, "keep"), MDM_OK);
	sparse_device(&d);
	assert_int_equal(entry_encode(ENTRY_FOUND, &d, 0, &b), MDM_ERR_INVALID);
	assert_int_equal(entry_encode(ENTRY_NOT_ENROLLED, &d, 1, &b), MDM_ERR_INVALID);
	assert_int_equal(entry_encode((enum entry_verdict)7, &d, 1, &b), MDM_ERR_INVALID);
	assert_int_equal(entry_encode(ENTRY_FOUND, NULL, 1, &b), MDM_ERR_INVALID);
	assert_int_equal(entry_encode(ENTRY_FOUND, &d, ENTRY_MAX_DEVICES + 1, &b), MDM_ERR_TOOBIG);
	d.nmacs = DEVICE_MACS_MAX + 1;
	assert_int_equal(entry_encode(ENTRY_FOUND, &d, 1, &b), MDM_ERR_INVALID);
	sparse_device(&d);
	d.compliant = (enum tri)7;
	assert_int_equal(entry_encode(ENTRY_FOUND, &d, 1, &b), MDM_ERR_INVALID);
	sparse_device(&d);
	d.ownership = (enum ownership)9;
	assert_int_equal(entry_encode(ENTRY_FOUND, &d, 1, &b), MDM_ERR_INVALID);
	sparse_device(&d);
	memset(d.model, 'm', sizeof(d.model)); /* no NUL */
	assert_int_equal(entry_encode(ENTRY_FOUND, &d, 1, &b), MDM_ERR_INVALID);
	sparse_device(&d);
	assert_int_equal(str_copy(d.hostname, sizeof(d.hostname), "bad\xff utf8"), MDM_OK);
	assert_int_equal(entry_encode(ENTRY_FOUND, &d, 1, &b), MDM_ERR_INVALID);
	/* A full device does not fit in out's own limit of 1024. */
	full_device(&d);
	assert_int_equal(entry_encode(ENTRY_FOUND, &d, 1, &b), MDM_ERR_TOOBIG);
	assert_string_equal(buf_str(&b), "keep");
	assert_int_equal(b.len, 4);
	buf_free(&b);

	/* Past ENTRY_MAX_LEN of JSON, whatever room out has: enough full records to get there. */
	full_device(&d);
	buf_init(&b, 64 << 20);
	assert_int_equal(entry_encode(ENTRY_FOUND, &d, 1, &b), MDM_OK);
	nmany = 2 * (ENTRY_MAX_LEN / b.len); /* about 8 MiB; half of it fits */
	buf_reset(&b);
	many = malloc(nmany * sizeof(*many));
	assert_non_null(many);
	for (size_t i = 0; i < nmany; i++)
		many[i] = d;
	assert_int_equal(entry_encode(ENTRY_FOUND, many, nmany, &b), MDM_ERR_TOOBIG);
	assert_int_equal(b.len, 0);
	assert_int_equal(entry_encode(ENTRY_FOUND, many, nmany / 2, &b), MDM_OK);
	assert_true(b.len <= ENTRY_MAX_LEN);
	buf_free(&b);
	free(many);
}

#define OK_HEAD "{\"v\":1,\"r\":\"found\",\"d\":["

static void test_malformed(void **state)
{
	static const char *const bad[] = {
	    "not json",
	    "",
	    "[]",
	    "null",
	    "{}",
	    "{\"v\":2,\"r\":\"found\",\"d\":[{}]}",	    /* wrong version */
	    "{\"v\":\"1\",\"r\":\"found\",\"d\":[{}]}",	    /* version not a number */
	    "{\"v\":1.0,\"r\":\"found\",\"d\":[{}]}",	    /* version not an integer */
	    "{\"r\":\"found\",\"d\":[{}]}",		    /* no version */
	    "{\"v\":1,\"r\":\"maybe\",\"d\":[{}]}",	    /* unknown verdict */
	    "{\"v\":1,\"r\":0}",			    /* verdict not a string */
	    "{\"v\":1,\"d\":[{}]}",			    /* no verdict */
	    "{\"v\":1,\"r\":\"found\"}",		    /* found without devices */
	    "{\"v\":1,\"r\":\"found\",\"d\":[]}",	    /* found without devices */
	    "{\"v\":1,\"r\":\"not_enrolled\",\"d\":[{}]}",  /* not enrolled with devices */
	    "{\"v\":1,\"r\":\"found\",\"d\":{}}",	    /* devices not an array */
	    "{\"v\":1,\"r\":\"found\",\"d\":[{}],\"x\":1}", /* unknown top-level key */
	    "{\"v\":1,\"v\":1,\"r\":\"not_enrolled\"}",	    /* duplicate key */
	    "{\"v\":1,\"r\":\"not_enrolled\"} x",	    /* trailing garbage */
	    OK_HEAD "[]]}",				    /* device not an object */
	    OK_HEAD "{\"zz\":\"1\"}]}",			    /* unknown device key */
	    OK_HEAD "{\"src\":\"a\",\"src\":\"b\"}]}",	    /* duplicate device key */
	    OK_HEAD "{\"src\":7}]}",			    /* string field a number */
	    OK_HEAD "{\"src\":null}]}",			    /* string field null */
	    OK_HEAD "{\"macs\":[123]}]}",		    /* mac not a string */
	    OK_HEAD "{\"macs\":\"0026B424FEB4\"}]}",	    /* macs not an array */
	    OK_HEAD "{\"macs\":[\"0026B424FEB40\"]}]}",	    /* mac too long */
	    OK_HEAD "{\"macs\":[\"A\",\"B\",\"C\",\"D\",\"E\",\"F\"]}]}", /* too many macs */
	    OK_HEAD "{\"ml\":1}]}",			  /* mac_local not boolean */
	    OK_HEAD "{\"reg\":1}]}",			  /* tri-state as number */
	    OK_HEAD "{\"cmp\":\"true\"}]}",		  /* tri-state as string */
	    OK_HEAD "{\"jb\":null}]}",			  /* tri-state null */
	    OK_HEAD "{\"own\":\"unknown\"}]}",		  /* ownership not reported is absent */
	    OK_HEAD "{\"own\":1}]}",			  /* ownership not a string */
	    OK_HEAD "{\"seen\":1.5}]}",			  /* timestamp not an integer */
	    OK_HEAD "{\"at\":\"1\"}]}",			  /* timestamp a string */
	    OK_HEAD "{\"imei\":\"12345678901234567\"}]}", /* 17 bytes into imei[17] */
	    OK_HEAD "{\"src\":\"a\\u0000b\"}]}",	  /* embedded NUL */
	    OK_HEAD "{\"src\":\"\xff\"}]}",		  /* not UTF-8 */
	    OK_HEAD "{}",				  /* truncated */
	};
	char guid[GUID_MAX + 128], src[GUID_MAX + 2];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (decode_str(bad[i]) != MDM_ERR_PARSE)
			fail_msg("accepted or wrong error: %s", bad[i]);
	}
	/* guid: 128 bytes fit, 129 do not. */
	memset(src, 'g', GUID_MAX + 1);
	src[GUID_MAX] = '\0';
	snprintf(guid, sizeof(guid), OK_HEAD "{\"guid\":\"%s\"}]}", src);
	assert_int_equal(decode_str(guid), MDM_OK);
	src[GUID_MAX] = 'g';
	src[GUID_MAX + 1] = '\0';
	snprintf(guid, sizeof(guid), OK_HEAD "{\"guid\":\"%s\"}]}", src);
	assert_int_equal(decode_str(guid), MDM_ERR_PARSE);
	/* A NULL value is no value. */
	{
		struct device *devs;
		enum entry_verdict v;
		size_t n;

		assert_int_equal(entry_decode(NULL, 0, &v, &devs, &n), MDM_ERR_PARSE);
	}
}

/* Every proper prefix of a good value fails cleanly. */
static void test_truncated(void **state)
{
	struct device d[2];
	struct buf b;

	(void)state;
	full_device(&d[0]);
	sparse_device(&d[1]);
	buf_init(&b, ENTRY_MAX_LEN);
	assert_int_equal(entry_encode(ENTRY_FOUND, d, 2, &b), MDM_OK);
	for (size_t len = 0; len < b.len; len++) {
		struct device *devs = NULL;
		enum entry_verdict v;
		size_t n;

		assert_int_equal(entry_decode(b.mem, len, &v, &devs, &n), MDM_ERR_PARSE);
		assert_null(devs);
	}
	buf_free(&b);
}

static void test_bounds(void **state)
{
	struct buf b;
	struct device *devs;
	enum entry_verdict v;
	size_t n;
	char *big;

	(void)state;
	/* Over 4 MiB is refused before parsing. */
	big = malloc(ENTRY_MAX_LEN + 1);
	assert_non_null(big);
	memset(big, ' ', ENTRY_MAX_LEN + 1);
	assert_int_equal(entry_decode(big, ENTRY_MAX_LEN + 1, &v, &devs, &n), MDM_ERR_TOOBIG);
	free(big);
	/* More than ENTRY_MAX_DEVICES records is refused before any is allocated. */
	buf_init(&b, ENTRY_MAX_LEN);
	assert_int_equal(buf_addstr(&b, OK_HEAD "{}"), MDM_OK);
	for (int i = 0; i < ENTRY_MAX_DEVICES; i++)
		assert_int_equal(buf_add(&b, ",{}", 3), MDM_OK);
	assert_int_equal(buf_addstr(&b, "]}"), MDM_OK);
	assert_int_equal(entry_decode(b.mem, b.len, &v, &devs, &n), MDM_ERR_TOOBIG);
	assert_null(devs);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_full),	   cmocka_unit_test(test_sparse),
	    cmocka_unit_test(test_several),	   cmocka_unit_test(test_not_enrolled),
	    cmocka_unit_test(test_encode_refused), cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_truncated),	   cmocka_unit_test(test_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
