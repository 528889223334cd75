/*
 * test_radius: the RADIUS codec against vectors computed independently (python3 hashlib/hmac,
 * written out below) and against malformed packets.
 */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>

#include "../../gateway/coa/radius.h"

#define SECRET "testing123"

/*
 * A CoA-Request, id 7: Calling-Station-Id "AA-BB-CC-DD-EE-FF", Acct-Session-Id "sess-1",
 * NAS-IP-Address 10.0.0.1, Cisco-AVPair "subscriber:command=reauthenticate", Event-Timestamp
 * 1700000000, Message-Authenticator; secret "testing123". Computed in python3 with
 * hmac.new(secret, pkt_with_zero_auth_and_zero_ma, md5) then md5(pkt + secret).
 */
static const char REQ_HEX[] =
    "2b0700768acc24941cc574b96123efeec124a51f1f1341412d42422d43432d44442d45452d46462c08736573"
    "732d3104060a0000011a29000000090123737562736372696265723a636f6d6d616e643d7265617574686"
    "56e74696361746537066553f10050126044bae8043183bb96b3dbba1d75178c";
/* Its CoA-ACK, id 7, with only a Message-Authenticator (computed with the request's
 * authenticator in the field), then the Response Authenticator. */
static const char RESP_HEX[] =
    "2c070026c52c7b8f294ead555d6ed87bad9079ff5012d3fecda516063fbcc0cbd3f2b9e54cca";

static size_t unhex(const char *hex, uint8_t *out, size_t max)
{
	size_t n = strlen(hex) / 2;

	assert_true(n <= max);
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
	return n;
}

static void build_req(struct radius_builder *b)
{
	radius_builder_init(b, RADIUS_COA_REQUEST, 7);
	radius_add_str(b, RADIUS_CALLING_STATION_ID, "AA-BB-CC-DD-EE-FF");
	radius_add_str(b, RADIUS_ACCT_SESSION_ID, "sess-1");
	radius_add_ipv4(b, RADIUS_NAS_IP_ADDRESS, "10.0.0.1");
	radius_add_cisco_avpair(b, "subscriber:command=reauthenticate");
	radius_add_u32(b, RADIUS_EVENT_TIMESTAMP, 1700000000u);
	radius_add_ma(b);
}

static void test_request_vector(void **state)
{
	struct radius_builder b;
	uint8_t want[RADIUS_MAX_LEN];
	size_t n = unhex(REQ_HEX, want, sizeof(want));

	(void)state;
	build_req(&b);
	assert_int_equal(radius_finish_request(&b, SECRET), MDM_OK);
	assert_int_equal(b.len, n);
	assert_memory_equal(b.buf, want, n);
	assert_int_equal(radius_verify_request(b.buf, b.len, SECRET, true), MDM_OK);
	assert_int_equal(radius_verify_request(b.buf, b.len, "wrong", false), MDM_ERR_AUTH);
	/* One flipped bit in an attribute breaks both digests. */
	b.buf[30] ^= 1;
	assert_int_equal(radius_verify_request(b.buf, b.len, SECRET, false), MDM_ERR_AUTH);
}

static void test_response_vector(void **state)
{
	struct radius_builder b;
	uint8_t req[RADIUS_MAX_LEN], want[RADIUS_MAX_LEN];
	size_t n;

	(void)state;
	unhex(REQ_HEX, req, sizeof(req));
	n = unhex(RESP_HEX, want, sizeof(want));
	radius_builder_init(&b, RADIUS_COA_ACK, 7);
	radius_add_ma(&b);
	assert_int_equal(radius_finish_response(&b, req + 4, SECRET), MDM_OK);
	assert_int_equal(b.len, n);
	assert_memory_equal(b.buf, want, n);
	assert_int_equal(radius_verify_response(want, n, req + 4, SECRET, true), MDM_OK);
	assert_int_equal(radius_verify_response(want, n, req + 4, "wrong", false), MDM_ERR_AUTH);
	/* Against another request's authenticator it fails. */
	req[4] ^= 0x80;
	assert_int_equal(radius_verify_response(want, n, req + 4, SECRET, false), MDM_ERR_AUTH);
}

/*
 * A CoA-NAK (Error-Cause 503) to REQ_HEX signed the way FreeRADIUS 3.2.1 signs its replies: the
 * Message-Authenticator computed with 16 zero octets in the authenticator field (not the
 * request's), then the Response Authenticator as usual. Computed in python3.
 */
static const char NAK_FR_HEX[] = "2d07002c400f2a97ecd8fe6233f811b8560450446506000001f75012de508d94"
				 "ac9a0e68b90098efaab01f21";
/* The same NAK with the first octet of its Message-Authenticator flipped and the Response
 * Authenticator computed again over it (python3): only the Message-Authenticator is wrong. */
static const char NAK_FR_BAD_MA_HEX[] =
    "2d07002cc9b371df9d2a9300c2fb4051afe9f1846506000001f75012df50"
    "8d94ac9a0e68b90098efaab01f21";

/*
 * The FreeRADIUS form is taken, and its Message-Authenticator is still checked: a reply whose
 * Response Authenticator is valid but whose (zero-field) Message-Authenticator is not is refused.
 */
static void test_response_freeradius_form(void **state)
{
	uint8_t req[RADIUS_MAX_LEN], nak[RADIUS_MAX_LEN];
	size_t n;

	(void)state;
	unhex(REQ_HEX, req, sizeof(req));
	n = unhex(NAK_FR_HEX, nak, sizeof(nak));
	assert_int_equal(radius_verify_response(nak, n, req + 4, SECRET, true), MDM_OK);
	assert_int_equal(radius_verify_response(nak, n, req + 4, "wrong", true), MDM_ERR_AUTH);
	n = unhex(NAK_FR_BAD_MA_HEX, nak, sizeof(nak));
	assert_int_equal(radius_verify_response(nak, n, req + 4, SECRET, true), MDM_ERR_AUTH);
	assert_int_equal(radius_verify_response(nak, n, req + 4, SECRET, false), MDM_ERR_AUTH);
}

/*
 * A FreeRADIUS-form Message-Authenticator does not cover the request's authenticator: only the
 * Response Authenticator binds such a reply to its request, so against another request's
 * authenticator the reply is refused.
 */
static void test_response_freeradius_form_other_request(void **state)
{
	uint8_t req[RADIUS_MAX_LEN], nak[RADIUS_MAX_LEN];
	size_t n;

	(void)state;
	unhex(REQ_HEX, req, sizeof(req));
	n = unhex(NAK_FR_HEX, nak, sizeof(nak));
	req[4 + 15] ^= 0x01;
	assert_int_equal(radius_verify_response(nak, n, req + 4, SECRET, true), MDM_ERR_AUTH);
	assert_int_equal(radius_verify_response(nak, n, req + 4, SECRET, false), MDM_ERR_AUTH);
}

/*
 * REQ_HEX, RESP_HEX and NAK_FR_HEX with the last octet of the Message-Authenticator flipped and
 * the Request/Response Authenticator computed again over the packet (python3): a check of the
 * Message-Authenticator on fewer than its 16 octets would take them.
 */
static const char REQ_MA_TAIL_HEX[] =
    "2b070076f92dbd09001e2ee5ba147f64ec1ecf311f1341412d42422d43432d44442d45452d46462c08736573"
    "732d3104060a0000011a29000000090123737562736372696265723a636f6d6d616e643d7265617574686"
    "56e74696361746537066553f10050126044bae8043183bb96b3dbba1d75178d";
static const char RESP_MA_TAIL_HEX[] =
    "2c070026f6d6fe3c74eebd929dd5cf4a1539e7025012d3fecda516063fbcc0cbd3f2b9e54ccb";
static const char NAK_FR_MA_TAIL_HEX[] =
    "2d07002cd7bc273a827c6d638381bfe1fd22ca696506000001f75012de"
    "508d94ac9a0e68b90098efaab01f20";

static void test_ma_compared_whole(void **state)
{
	uint8_t req[RADIUS_MAX_LEN], buf[RADIUS_MAX_LEN];
	size_t n;

	(void)state;
	unhex(REQ_HEX, req, sizeof(req));
	/* a request (the accounting listener's path too) */
	n = unhex(REQ_MA_TAIL_HEX, buf, sizeof(buf));
	assert_int_equal(radius_verify_request(buf, n, SECRET, false), MDM_ERR_AUTH);
	/* a reply, Message-Authenticator over the request's authenticator (RFC 5176 3.4) */
	n = unhex(RESP_MA_TAIL_HEX, buf, sizeof(buf));
	assert_int_equal(radius_verify_response(buf, n, req + 4, SECRET, false), MDM_ERR_AUTH);
	/* a reply, Message-Authenticator over zeros (FreeRADIUS) */
	n = unhex(NAK_FR_MA_TAIL_HEX, buf, sizeof(buf));
	assert_int_equal(radius_verify_response(buf, n, req + 4, SECRET, false), MDM_ERR_AUTH);
}

/*
 * A CoA-ACK to REQ_HEX with two Message-Authenticators: 16 octets of 0xa5, then one computed
 * (python3) with the first left in place and the request's authenticator in the field, and a
 * valid Response Authenticator. RFC 3579 3.2 allows at most one: refused as malformed, although
 * the second one alone would check out.
 */
static const char ACK_TWO_MA_HEX[] =
    "2c0700385c30f5bbe40745b8c1278bb3d41cf91a5012a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a550129642bd0756"
    "33c264254af7a22dfc80fa";

static void test_two_ma(void **state)
{
	uint8_t req[RADIUS_MAX_LEN], buf[RADIUS_MAX_LEN];
	struct radius_pkt *p = malloc(sizeof(*p));
	size_t n;

	(void)state;
	assert_non_null(p);
	unhex(REQ_HEX, req, sizeof(req));
	n = unhex(ACK_TWO_MA_HEX, buf, sizeof(buf));
	assert_int_equal(radius_parse(buf, n, p), MDM_ERR_PARSE);
	assert_int_equal(radius_verify_response(buf, n, req + 4, SECRET, false), MDM_ERR_PARSE);
	assert_int_equal(radius_verify_response(buf, n, req + 4, SECRET, true), MDM_ERR_PARSE);
	free(p);
}

/*
 * Without a Message-Authenticator the Response or Request Authenticator is all that checks the
 * secret (and, for a reply, the request). A CoA-ACK to REQ_HEX without attributes, with SECRET
 * and with "another-secret"; an Accounting-Request (Start, Acct-Session-Id "sess-9") with
 * "another-secret" and with SECRET. Computed in python3.
 */
static const char ACK_NO_MA_HEX[] = "2c070014065ad0c10141d9a789762b3cdfeb5dd7";
static const char ACK_NO_MA_OTHER_SECRET_HEX[] = "2c070014538a024f0504059a76e7be1d3e8e1ed4";
static const char ACCT_OTHER_SECRET_HEX[] =
    "040900225702afb582fe20d7c7214fce523040852806000000012c08736573732d39";
static const char ACCT_HEX[] =
    "040900223d03c08d01bad773f2933f603839786d2806000000012c08736573732d39";

static void test_authenticator_only(void **state)
{
	uint8_t req[RADIUS_MAX_LEN], buf[RADIUS_MAX_LEN];
	size_t n;

	(void)state;
	unhex(REQ_HEX, req, sizeof(req));
	n = unhex(ACK_NO_MA_HEX, buf, sizeof(buf));
	assert_int_equal(radius_verify_response(buf, n, req + 4, SECRET, false), MDM_OK);
	assert_int_equal(radius_verify_response(buf, n, req + 4, SECRET, true), MDM_ERR_AUTH);
	n = unhex(ACK_NO_MA_OTHER_SECRET_HEX, buf, sizeof(buf));
	assert_int_equal(radius_verify_response(buf, n, req + 4, SECRET, false), MDM_ERR_AUTH);
	assert_int_equal(radius_verify_response(buf, n, req + 4, "another-secret", false), MDM_OK);
	/* A good reply, against another request's authenticator. */
	n = unhex(ACK_NO_MA_HEX, buf, sizeof(buf));
	req[4] ^= 0x80;
	assert_int_equal(radius_verify_response(buf, n, req + 4, SECRET, false), MDM_ERR_AUTH);
	/* The accounting listener's check. */
	n = unhex(ACCT_HEX, buf, sizeof(buf));
	assert_int_equal(radius_verify_request(buf, n, SECRET, false), MDM_OK);
	n = unhex(ACCT_OTHER_SECRET_HEX, buf, sizeof(buf));
	assert_int_equal(radius_verify_request(buf, n, SECRET, false), MDM_ERR_AUTH);
}

/* A reply whose Response Authenticator is right but whose Message-Authenticator is not. */
static void test_response_bad_ma(void **state)
{
	struct radius_builder b;
	uint8_t req[RADIUS_MAX_LEN];

	(void)state;
	unhex(REQ_HEX, req, sizeof(req));
	radius_builder_init(&b, RADIUS_COA_ACK, 7);
	radius_add_ma(&b);
	assert_int_equal(radius_finish_response(&b, req + 4, SECRET), MDM_OK);
	b.buf[b.ma_off] ^= 1;
	/* Recompute only the Response Authenticator over the damaged MA. */
	b.ma_off = -1;
	assert_int_equal(radius_finish_response(&b, req + 4, SECRET), MDM_OK);
	assert_int_equal(radius_verify_response(b.buf, b.len, req + 4, SECRET, false),
			 MDM_ERR_AUTH);
}

static void test_require_ma(void **state)
{
	struct radius_builder b;
	uint8_t auth[16] = {1, 2, 3};

	(void)state;
	radius_builder_init(&b, RADIUS_COA_ACK, 9);
	assert_int_equal(radius_finish_response(&b, auth, SECRET), MDM_OK);
	assert_int_equal(radius_verify_response(b.buf, b.len, auth, SECRET, false), MDM_OK);
	assert_int_equal(radius_verify_response(b.buf, b.len, auth, SECRET, true), MDM_ERR_AUTH);
	radius_builder_init(&b, RADIUS_ACCOUNTING_REQUEST, 9);
	radius_add_u32(&b, RADIUS_ACCT_STATUS_TYPE, RADIUS_ACCT_START);
	assert_int_equal(radius_finish_request(&b, SECRET), MDM_OK);
	assert_int_equal(radius_verify_request(b.buf, b.len, SECRET, false), MDM_OK);
	assert_int_equal(radius_verify_request(b.buf, b.len, SECRET, true), MDM_ERR_AUTH);
}

static void test_parse(void **state)
{
	uint8_t buf[RADIUS_MAX_LEN];
	size_t n = unhex(REQ_HEX, buf, sizeof(buf)), idx = 0;
	struct radius_pkt *p = malloc(sizeof(*p));
	const struct radius_attr *a;
	char s[64];
	uint32_t v;

	(void)state;
	assert_non_null(p);
	assert_int_equal(radius_parse(buf, n, p), MDM_OK);
	assert_int_equal(p->code, RADIUS_COA_REQUEST);
	assert_int_equal(p->id, 7);
	assert_int_equal(p->len, n);
	assert_int_equal(p->nattrs, 7); /* six top-level, one VSA sub-attribute */
	assert_int_equal(radius_attr_str(p, RADIUS_CALLING_STATION_ID, s, sizeof(s)), MDM_OK);
	assert_string_equal(s, "AA-BB-CC-DD-EE-FF");
	assert_int_equal(radius_attr_u32(p, RADIUS_EVENT_TIMESTAMP, &v), MDM_OK);
	assert_int_equal(v, 1700000000u);
	assert_int_equal(radius_attr_u32(p, RADIUS_CALLING_STATION_ID, &v), MDM_ERR_PARSE);
	assert_int_equal(radius_attr_u32(p, RADIUS_NAS_PORT, &v), MDM_ERR_NOTFOUND);
	assert_int_equal(radius_attr_str(p, RADIUS_ACCT_SESSION_ID, s, 4), MDM_ERR_TOOBIG);
	a = radius_attr_find(p, RADIUS_VENDOR_CISCO, RADIUS_CISCO_AVPAIR, 0, &idx);
	assert_non_null(a);
	assert_int_equal(a->len, strlen("subscriber:command=reauthenticate"));
	assert_memory_equal(a->value, "subscriber:command=reauthenticate", a->len);
	assert_null(radius_attr_find(p, RADIUS_VENDOR_CISCO, RADIUS_CISCO_AVPAIR, idx + 1, NULL));
	assert_non_null(radius_attr_find(p, 0, RADIUS_VENDOR_SPECIFIC, 0, NULL));
	assert_int_equal(p->ma_off, (int)n - 16);
	/* Padding after Length is ignored (RFC 2865 3). */
	buf[n] = 0xee;
	assert_int_equal(radius_parse(buf, n + 1, p), MDM_OK);
	assert_int_equal(p->len, n);
	free(p);
}

static void test_malformed(void **state)
{
	uint8_t buf[RADIUS_MAX_LEN + 8];
	size_t n;
	struct radius_pkt *p = malloc(sizeof(*p));

	(void)state;
	assert_non_null(p);
	n = unhex(REQ_HEX, buf, sizeof(buf));
	/* Truncated: the datagram is shorter than Length; shorter than a header. */
	assert_int_equal(radius_parse(buf, n - 1, p), MDM_ERR_PARSE);
	assert_int_equal(radius_parse(buf, 19, p), MDM_ERR_PARSE);
	assert_int_equal(radius_parse(NULL, 0, p), MDM_ERR_PARSE);
	/* Length below the header size. */
	buf[2] = 0, buf[3] = 19;
	assert_int_equal(radius_parse(buf, n, p), MDM_ERR_PARSE);
	/* Length cutting the last attribute (the MA) in half. */
	buf[2] = 0, buf[3] = (uint8_t)(n - 8);
	assert_int_equal(radius_parse(buf, n, p), MDM_ERR_PARSE);
	/* Length leaving one odd octet: an attribute header cannot fit. */
	n = unhex(REQ_HEX, buf, sizeof(buf));
	buf[n] = 1;
	buf[2] = 0, buf[3] = (uint8_t)(n + 1);
	assert_int_equal(radius_parse(buf, n + 1, p), MDM_ERR_PARSE);
	/* An attribute length of 0, of 1, running past the packet. */
	n = unhex(REQ_HEX, buf, sizeof(buf));
	buf[21] = 0;
	assert_int_equal(radius_parse(buf, n, p), MDM_ERR_PARSE);
	buf[21] = 1;
	assert_int_equal(radius_parse(buf, n, p), MDM_ERR_PARSE);
	buf[21] = 200;
	assert_int_equal(radius_parse(buf, n, p), MDM_ERR_PARSE);
	/* The last attribute one octet past Length, the datagram holding that octet: Length
	 * bounds the attributes, not the datagram. */
	n = unhex(REQ_HEX, buf, sizeof(buf));
	buf[3] = (uint8_t)(n - 1);
	assert_int_equal(radius_parse(buf, n, p), MDM_ERR_PARSE);
	/* A Message-Authenticator of the wrong size. */
	memset(buf, 0, sizeof(buf));
	buf[0] = RADIUS_COA_ACK, buf[3] = 20 + 4, buf[20] = RADIUS_MESSAGE_AUTHENTICATOR,
	buf[21] = 4;
	assert_int_equal(radius_parse(buf, 24, p), MDM_ERR_PARSE);
	/* Over 4096. */
	memset(buf, 0, sizeof(buf));
	buf[0] = RADIUS_ACCOUNTING_REQUEST, buf[2] = 0x10, buf[3] = 0x01;
	assert_int_equal(radius_parse(buf, RADIUS_MAX_LEN + 1, p), MDM_ERR_PARSE);
	/* A length-2 attribute (empty value) is well-formed framing. */
	buf[2] = 0, buf[3] = 22, buf[20] = RADIUS_USER_NAME, buf[21] = 2;
	assert_int_equal(radius_parse(buf, 22, p), MDM_OK);
	assert_int_equal(p->nattrs, 1);
	assert_int_equal(p->attrs[0].len, 0);
	/* A Vendor-Specific value that is not in the RFC layout stays raw, not an error. */
	buf[3] = 28, buf[20] = RADIUS_VENDOR_SPECIFIC, buf[21] = 8;
	memcpy(buf + 22, "\0\0\0\x09\x01\x09", 6);
	assert_int_equal(radius_parse(buf, 28, p), MDM_OK);
	assert_int_equal(p->nattrs, 1);
	/* Nor is one of vendor 0, whose sub-attribute would pass for a top-level User-Name. */
	memcpy(buf + 22, "\0\0\0\0\x01\x03x", 7);
	buf[3] = 29, buf[21] = 9;
	assert_int_equal(radius_parse(buf, 29, p), MDM_OK);
	assert_int_equal(p->nattrs, 1);
	assert_null(radius_attr_find(p, 0, RADIUS_USER_NAME, 0, NULL));
	free(p);
}

/*
 * An Accounting-Request whose last attribute is a Vendor-Specific one (vendor 9) holding a
 * sub-attribute of length 7 with only 5 octets left in the VSA: it would run 2 octets past the
 * VSA and the packet. The same octets as tests/fuzz/corpus/fuzz_radius/vsa-sub-overrun.
 */
static const char VSA_SUB_OVERRUN_HEX[] =
    "04010025000000000000000000000000000000002806000000011a0b0000"
    "00090107616263";

/* A sub-attribute running past its VSA is no sub-attribute: the VSA stays raw (radius.h). */
static void test_vsa_sub_overrun(void **state)
{
	uint8_t buf[RADIUS_MAX_LEN];
	struct radius_pkt *p = malloc(sizeof(*p));
	size_t n;
	uint32_t v;

	(void)state;
	assert_non_null(p);
	n = unhex(VSA_SUB_OVERRUN_HEX, buf, sizeof(buf));
	assert_int_equal(radius_parse(buf, n, p), MDM_OK);
	assert_int_equal(p->nattrs, 2); /* Acct-Status-Type and the raw VSA, no sub-attribute */
	assert_null(radius_attr_find(p, RADIUS_VENDOR_CISCO, RADIUS_CISCO_AVPAIR, 0, NULL));
	assert_int_equal(p->attrs[1].vendor, 0);
	assert_int_equal(p->attrs[1].type, RADIUS_VENDOR_SPECIFIC);
	assert_int_equal(p->attrs[1].len, 9);
	for (size_t i = 0; i < p->nattrs; i++)
		assert_true(p->attrs[i].value + p->attrs[i].len <= buf + p->len);
	assert_int_equal(radius_attr_u32(p, RADIUS_ACCT_STATUS_TYPE, &v), MDM_OK);
	assert_int_equal(v, RADIUS_ACCT_START);
	/* With the sub-attribute's length 5 it fits exactly and is listed. */
	buf[n - 4] = 5;
	assert_int_equal(radius_parse(buf, n, p), MDM_OK);
	assert_int_equal(p->nattrs, 3);
	assert_non_null(radius_attr_find(p, RADIUS_VENDOR_CISCO, RADIUS_CISCO_AVPAIR, 0, NULL));
	free(p);
}

static void test_too_many_attrs(void **state)
{
	uint8_t buf[RADIUS_MAX_LEN];
	struct radius_pkt *p = malloc(sizeof(*p));
	size_t n = 20 + 2 * (RADIUS_MAX_ATTRS + 1);

	(void)state;
	assert_non_null(p);
	memset(buf, 0, sizeof(buf));
	buf[0] = RADIUS_ACCOUNTING_REQUEST, buf[2] = (uint8_t)(n >> 8), buf[3] = (uint8_t)n;
	for (size_t off = 20; off < n; off += 2)
		buf[off] = 25 /* Class */, buf[off + 1] = 2;
	assert_int_equal(radius_parse(buf, n, p), MDM_ERR_TOOBIG);
	free(p);
}

static void test_builder_limits(void **state)
{
	struct radius_builder b;
	struct radius_pkt *p;
	char big[300];

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	radius_builder_init(&b, RADIUS_COA_REQUEST, 1);
	assert_int_equal(radius_add_str(&b, RADIUS_USER_NAME, big), MDM_ERR_INVALID);
	/* The failure sticks: later adds and the finish report it. */
	assert_int_equal(radius_add_str(&b, RADIUS_USER_NAME, "ok"), MDM_ERR_INVALID);
	assert_int_equal(radius_finish_request(&b, SECRET), MDM_ERR_INVALID);
	radius_builder_init(&b, RADIUS_COA_REQUEST, 1);
	assert_int_equal(radius_add_str(&b, RADIUS_USER_NAME, ""), MDM_ERR_INVALID);
	radius_builder_init(&b, RADIUS_COA_REQUEST, 1);
	assert_int_equal(radius_add_ipv4(&b, RADIUS_NAS_IP_ADDRESS, "::1"), MDM_ERR_INVALID);
	radius_builder_init(&b, RADIUS_COA_REQUEST, 1);
	assert_int_equal(radius_add_ma(&b), MDM_OK);
	assert_int_equal(radius_add_ma(&b), MDM_ERR_INVALID);
	/* Past 4096 octets. */
	radius_builder_init(&b, RADIUS_COA_REQUEST, 1);
	big[253] = '\0';
	for (int i = 0; i < 15; i++)
		assert_int_equal(radius_add_str(&b, RADIUS_USER_NAME, big), MDM_OK);
	assert_int_equal(b.len, 20 + 15 * 255);
	assert_int_equal(radius_add_str(&b, RADIUS_USER_NAME, big), MDM_ERR_TOOBIG);
	assert_int_equal(b.len, 20 + 15 * 255);
	/* Exactly 4096 octets is a packet, and parses. */
	radius_builder_init(&b, RADIUS_COA_REQUEST, 1);
	for (int i = 0; i < 15; i++)
		assert_int_equal(radius_add_str(&b, RADIUS_USER_NAME, big), MDM_OK);
	big[4096 - (20 + 15 * 255) - 2] = '\0';
	assert_int_equal(radius_add_str(&b, RADIUS_USER_NAME, big), MDM_OK);
	assert_int_equal(radius_finish_request(&b, SECRET), MDM_OK);
	assert_int_equal(b.len, RADIUS_MAX_LEN);
	p = malloc(sizeof(*p));
	assert_non_null(p);
	assert_int_equal(radius_parse(b.buf, b.len, p), MDM_OK);
	assert_int_equal(p->len, RADIUS_MAX_LEN);
	assert_int_equal(p->nattrs, 16);
	free(p);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(radius_code_name(RADIUS_COA_NAK), "CoA-NAK");
	assert_string_equal(radius_code_name(RADIUS_DISCONNECT_REQUEST), "Disconnect-Request");
	assert_string_equal(radius_code_name(99), "Unknown");
	assert_string_equal(radius_error_cause_name(503), "Session-Context-Not-Found");
	assert_string_equal(radius_error_cause_name(401), "Unsupported-Attribute");
	assert_string_equal(radius_error_cause_name(508), "Multiple-Session-Selection-Unsupported");
	assert_string_equal(radius_error_cause_name(1), "Unknown");
	assert_string_equal(radius_acct_status_name(3), "Interim-Update");
	assert_string_equal(radius_acct_status_name(8), "Accounting-Off");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_request_vector),
	    cmocka_unit_test(test_response_vector),
	    cmocka_unit_test(test_response_bad_ma),
	    cmocka_unit_test(test_response_freeradius_form),
	    cmocka_unit_test(test_response_freeradius_form_other_request),
	    cmocka_unit_test(test_ma_compared_whole),
	    cmocka_unit_test(test_two_ma),
	    cmocka_unit_test(test_authenticator_only),
	    cmocka_unit_test(test_require_ma),
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_vsa_sub_overrun),
	    cmocka_unit_test(test_too_many_attrs),
	    cmocka_unit_test(test_builder_limits),
	    cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
