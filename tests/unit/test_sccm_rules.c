#include "unit.h"

#include <stdio.h>
#include <stdlib.h>

#include "../../adapters/sccm_rules.h"

/* 2024-05-01T12:34:56Z */
#define T0 1714566896000LL

/* --- datetimes ---------------------------------------------------------------------------- */

static void time_ok(const char *s, int64_t want)
{
	int64_t ms = -1;

	if (sccm_time_parse(s, &ms) != MDM_OK)
		fail_msg("refused: %s", s);
	if (ms != want)
		fail_msg("%s: got %lld, want %lld", s, (long long)ms, (long long)want);
}

static void time_bad(const char *s)
{
	int64_t ms = 42;

	if (sccm_time_parse(s, &ms) != MDM_ERR_INVALID)
		fail_msg("accepted: %s", s);
	assert_int_equal(ms, 42);
}

static void test_time_wmi(void **state)
{
	(void)state;
	time_ok("20240501123456.000000+000", T0);
	time_ok("20240501133456.500000+060", T0 + 500);
	time_ok("20240501073456.000000-300", T0);
	time_ok("20240501143456.123456+120", T0 + 123);
	time_ok("20240501123456.999999+000", T0 + 999);
	time_ok("20240229000000.000000+000", 1709164800000LL);
	time_ok("19700101000000.000000+000", 0);
	/* 1970-01-01T00:30 at -030 is 01:00Z */
	time_ok("19700101003000.000000-030", 3600000);
}

static void test_time_iso(void **state)
{
	(void)state;
	time_ok("2024-05-01T12:34:56Z", T0);
	time_ok("2024-05-01T12:34:56", T0);
	time_ok("2024-05-01T14:34:56+02:00", T0);
	time_ok("2024-05-01T07:04:56-05:30", T0);
	time_ok("2024-05-01T18:04:56.5+05:30", T0 + 500);
	time_ok("2024-05-01T12:34:56.1234567Z", T0 + 123);
	time_ok("2024-05-01T12:34:56.12Z", T0 + 120);
	time_ok("2024-05-01T12:34:56.000000001", T0);
	time_ok("2024-02-29T23:59:59Z", 1709251199000LL);
	time_ok("2024-02-29T23:59:59.999-00:00", 1709251199999LL);
	time_ok("2000-02-29T12:00:00Z", 951825600000LL);
	time_ok("2096-02-29T00:00:00Z", 3981312000000LL);
	time_ok("2400-02-29T00:00:00Z", 13574563200000LL); /* divisible by 400: a leap year */
	time_ok("1970-01-01T00:00:00Z", 0);
}

static void test_time_invalid(void **state)
{
	(void)state;
	time_bad("");
	time_bad("2023-02-29T00:00:00Z");
	time_bad("1900-02-29T00:00:00Z"); /* also refused as pre-1970: see 2100 for the rule */
	time_bad("2100-02-29T00:00:00Z"); /* divisible by 100, not by 400: no 29 February */
	time_bad("21000229000000.000000+000");
	time_bad("2024-02-30T00:00:00Z");
	time_bad("2024-04-31T00:00:00Z");
	time_bad("2024-13-01T00:00:00Z");
	time_bad("2024-00-01T00:00:00Z");
	time_bad("2024-05-00T00:00:00Z");
	time_bad("2024-05-01T24:00:00Z");
	time_bad("2024-05-01T12:60:00Z");
	time_bad("2024-05-01T12:34:60Z");
	time_bad("2024-05-01 12:34:56Z");
	time_bad("2024-05-01T12:34:56z");
	time_bad("2024-05-01T12:34:56.Z");
	time_bad("2024-05-01T12:34:56+0200");
	time_bad("2024-05-01T12:34:56+24:00");
	time_bad("2024-05-01T12:34:56+02:60");
	time_bad("2024-05-01T12:34:56Zx");
	time_bad("2024-05-01T12:34");
	time_bad("2024-5-01T12:34:56Z");
	time_bad("1969-12-31T23:59:59Z");
	time_bad("1970-01-01T00:30:00+01:00");
	time_bad("19691231235959.000000+000");
	time_bad("20240501123456.000000");
	time_bad("20240501123456.00000+000");
	time_bad("20240501123456.000000+0000");
	time_bad("20240501123456,000000+000");
	time_bad("2024050112345*.000000+000");
	time_bad("20241301123456.000000+000");
	time_bad("20230229123456.000000+000");
	time_bad("20240501243456.000000+000");
	time_bad("20240501123456.000000*000");
	assert_int_equal(sccm_time_parse(NULL, NULL), MDM_ERR_INVALID);
}

/* --- OData pages -------------------------------------------------------------------------- */

static struct sccm_page page;
static char why[256];

static void page_ok(enum sccm_class cls, const char *body)
{
	why[0] = '\0';
	if (sccm_odata_page(body, strlen(body), cls, 1 << 20, 100, &page, why, sizeof(why)) !=
	    MDM_OK)
		fail_msg("refused (%s): %s", why, body);
}

static void page_bad(enum sccm_class cls, const char *body, enum mdm_err want, const char *want_why)
{
	why[0] = '\0';
	assert_int_equal(
	    sccm_odata_page(body, strlen(body), cls, 1 << 20, 3, &page, why, sizeof(why)), want);
	assert_string_equal(why, want_why);
	sccm_page_free(&page);
}

static void test_page_systems(void **state)
{
	(void)state;
	page_ok(
	    SCCM_SYSTEM,
	    "{\"@odata.context\": \"https://cm/AdminService/wmi/$metadata#SMS_R_System\","
	    " \"value\": ["
	    " {\"@odata.etag\": \"1\", \"__LAZYPROPERTIES\": [], \"ResourceId\": 16777220,"
	    "  \"Name\": \"PC-0042\", \"MACAddresses\": [\"64:31:50:10:DA:60\","
	    "  \"00:00:00:00:00:00\", \"RAS\", null, \"64-31-50-10-da-60\", \"02:50:F2:00:00:01\"],"
	    "  \"Client\": 1, \"Active\": 1, \"Obsolete\": 0, \"Decommissioned\": 0,"
	    "  \"SMSUniqueIdentifier\": \"GUID:6B4E2D6A-1C1E-4B5E-9C61-0D2D5C1E7F10\","
	    "  \"Extra\": {\"x\": [1, 2]}},"
	    " {\"ResourceID\": 16777221, \"Name\": null, \"MACAddresses\": null,"
	    "  \"Client\": null, \"SMSUniqueIdentifier\": null}"
	    "]}");
	assert_int_equal(page.cls, SCCM_SYSTEM);
	assert_int_equal(page.nrows, 2);
	assert_non_null(page.systems);
	assert_null(page.nics);
	assert_int_equal(page.systems[0].resource_id, 16777220);
	assert_string_equal(page.systems[0].name, "PC-0042");
	assert_int_equal(page.systems[0].nmacs, 2);
	assert_string_equal(page.systems[0].macs[0], "64315010DA60");
	assert_string_equal(page.systems[0].macs[1], "0250F2000001");
	assert_int_equal(page.systems[0].client, 1);
	assert_int_equal(page.systems[0].active, 1);
	assert_int_equal(page.systems[0].obsolete, 0);
	assert_int_equal(page.systems[0].decommissioned, 0);
	assert_string_equal(page.systems[0].sms_unique_id,
			    "GUID:6B4E2D6A-1C1E-4B5E-9C61-0D2D5C1E7F10");
	assert_int_equal(page.systems[1].resource_id, 16777221);
	assert_string_equal(page.systems[1].name, "");
	assert_int_equal(page.systems[1].nmacs, 0);
	assert_int_equal(page.systems[1].client, -1);
	assert_int_equal(page.systems[1].active, -1);
	assert_int_equal(page.systems[1].obsolete, -1);
	assert_int_equal(page.systems[1].decommissioned, -1);
	assert_string_equal(page.systems[1].sms_unique_id, "");
	assert_int_equal(page.bad_macs, 2);
	assert_int_equal(page.extra_macs, 0);
	assert_string_equal(page.next_link, "");
	sccm_page_free(&page);
	assert_int_equal(page.nrows, 0);
	assert_null(page.systems);
}

static void test_page_system_many_macs(void **state)
{
	(void)state;
	page_ok(SCCM_SYSTEM, "{\"value\": [{\"ResourceId\": 1, \"MACAddresses\": ["
			     "\"00:11:22:33:44:01\", \"00:11:22:33:44:02\", \"00:11:22:33:44:03\","
			     "\"00:11:22:33:44:04\", \"00:11:22:33:44:05\", \"00:11:22:33:44:06\","
			     "\"00:11:22:33:44:01\"]}]}");
	assert_int_equal(page.systems[0].nmacs, 5);
	assert_string_equal(page.systems[0].macs[4], "001122334405");
	assert_int_equal(page.extra_macs, 1);
	assert_int_equal(page.bad_macs, 0);
	sccm_page_free(&page);
}

static void test_page_nics(void **state)
{
	(void)state;
	page_ok(SCCM_NIC, "{\"value\": ["
			  "{\"ResourceID\": 7, \"MACAddress\": \"00:50:56:C0:00:08\"},"
			  "{\"ResourceID\": 7, \"MACAddress\": \"20:41:53:59:4E:FF\"},"
			  "{\"ResourceID\": 8, \"MACAddress\": \"garbage\"},"
			  "{\"ResourceID\": 9, \"MACAddress\": null},"
			  "{\"ResourceID\": 9}],"
			  "\"@odata.nextLink\": \"https://cm/AdminService/wmi/"
			  "SMS_G_System_NETWORK_ADAPTER?$skiptoken=abc\"}");
	assert_int_equal(page.nrows, 2);
	assert_int_equal(page.nics[0].resource_id, 7);
	assert_string_equal(page.nics[0].mac, "005056C00008");
	assert_string_equal(page.nics[1].mac, "204153594EFF");
	assert_int_equal(page.bad_macs, 1);
	assert_string_equal(
	    page.next_link,
	    "https://cm/AdminService/wmi/SMS_G_System_NETWORK_ADAPTER?$skiptoken=abc");
	sccm_page_free(&page);
}

static void test_page_ci_and_summary(void **state)
{
	(void)state;
	page_ok(SCCM_CI_STATE,
		"{\"value\": [{\"ResourceID\": 5, \"CI_UniqueID\": \"ScopeId_1/Baseline_2\","
		" \"ComplianceState\": 2, \"LocalizedDisplayName\": \"Compliance Policy\"},"
		" {\"ResourceID\": 5, \"CI_UniqueID\": null, \"ComplianceState\": null}],"
		" \"@odata.nextLink\": null}");
	assert_int_equal(page.nrows, 2);
	assert_int_equal(page.ci_states[0].resource_id, 5);
	assert_string_equal(page.ci_states[0].ci_unique_id, "ScopeId_1/Baseline_2");
	assert_int_equal(page.ci_states[0].compliance_state, 2);
	assert_string_equal(page.ci_states[0].display_name, "Compliance Policy");
	assert_string_equal(page.ci_states[1].ci_unique_id, "");
	assert_int_equal(page.ci_states[1].compliance_state, -1);
	assert_string_equal(page.ci_states[1].display_name, "");
	assert_string_equal(page.next_link, "");
	sccm_page_free(&page);

	page_ok(SCCM_CLIENT_SUMMARY,
		"{\"value\": [{\"ResourceID\": 5, \"LastPolicyRequest\": "
		"\"20240501143456.123456+120\"},"
		" {\"ResourceID\": 6, \"LastPolicyRequest\": \"2024-05-01T12:34:56Z\"},"
		" {\"ResourceID\": 7, \"LastPolicyRequest\": null}, {\"ResourceID\": 8}]}");
	assert_int_equal(page.nrows, 4);
	assert_int_equal(page.summaries[0].last_policy_request_ms, T0 + 123);
	assert_int_equal(page.summaries[1].last_policy_request_ms, T0);
	assert_int_equal(page.summaries[2].last_policy_request_ms, 0);
	assert_int_equal(page.summaries[3].resource_id, 8);
	assert_int_equal(page.summaries[3].last_policy_request_ms, 0);
	sccm_page_free(&page);
}

static void test_page_display_name_cut(void **state)
{
	char body[1024], want[DEVICE_TEXT_MAX];

	(void)state;
	/* 254 'a' then a two-byte "é": the cut must not split it. */
	memset(want, 'a', 254);
	want[254] = '\0';
	snprintf(body, sizeof(body),
		 "{\"value\": [{\"ResourceID\": 1, \"ComplianceState\": 1,"
		 " \"LocalizedDisplayName\": \"%s\xc3\xa9\"}]}",
		 want);
	page_ok(SCCM_CI_STATE, body);
	assert_string_equal(page.ci_states[0].display_name, want);
	sccm_page_free(&page);
}

static void test_page_empty(void **state)
{
	(void)state;
	page_ok(SCCM_CLIENT_SUMMARY, "{\"@odata.context\": \"x\", \"value\": []}");
	assert_int_equal(page.nrows, 0);
	assert_null(page.summaries);
	sccm_page_free(&page);
}

static void test_page_wrong_types(void **state)
{
	(void)state;
	page_bad(SCCM_SYSTEM, "{\"value\": [{\"ResourceId\": 1, \"Client\": \"1\"}]}",
		 MDM_ERR_PARSE,
		 "SMS_R_System value[0].Client: must be an integer from 0 to 2147483647");
	page_bad(SCCM_SYSTEM, "{\"value\": [{\"ResourceId\": 1}, {\"ResourceId\": \"2\"}]}",
		 MDM_ERR_PARSE, "SMS_R_System value[1].ResourceId: must be a non-negative integer");
	page_bad(SCCM_SYSTEM, "{\"value\": [{\"Name\": \"x\"}]}", MDM_ERR_PARSE,
		 "SMS_R_System value[0].ResourceId: missing");
	page_bad(SCCM_SYSTEM, "{\"value\": [{\"ResourceId\": 1, \"Name\": 5}]}", MDM_ERR_PARSE,
		 "SMS_R_System value[0].Name: must be a string");
	page_bad(SCCM_SYSTEM, "{\"value\": [{\"ResourceId\": 1, \"MACAddresses\": \"a\"}]}",
		 MDM_ERR_PARSE, "SMS_R_System value[0].MACAddresses: must be an array of strings");
	page_bad(SCCM_SYSTEM,
		 "{\"value\": [{\"ResourceId\": 1, \"MACAddresses\": [\"00:11:22:33:44:55\", 7]}]}",
		 MDM_ERR_PARSE, "SMS_R_System value[0].MACAddresses[1]: must be a string");
	page_bad(SCCM_NIC, "{\"value\": [{\"ResourceID\": 1, \"MACAddress\": 1}]}", MDM_ERR_PARSE,
		 "SMS_G_System_NETWORK_ADAPTER value[0].MACAddress: must be a string");
	page_bad(
	    SCCM_CI_STATE,
	    "{\"value\": [{\"ResourceID\": 1, \"ComplianceState\": 1},"
	    " {\"ResourceID\": 1, \"ComplianceState\": true}]}",
	    MDM_ERR_PARSE,
	    "SMS_G_System_CI_ComplianceState value[1].ComplianceState: must be an integer from "
	    "0 to 2147483647");
	page_bad(
	    SCCM_CI_STATE, "{\"value\": [{\"ResourceID\": 1, \"ComplianceState\": 1.0}]}",
	    MDM_ERR_PARSE,
	    "SMS_G_System_CI_ComplianceState value[0].ComplianceState: must be an integer from "
	    "0 to 2147483647");
	page_bad(SCCM_CLIENT_SUMMARY,
		 "{\"value\": [{\"ResourceID\": 1, \"LastPolicyRequest\": 1714566896}]}",
		 MDM_ERR_PARSE,
		 "SMS_G_System_CH_ClientSummary value[0].LastPolicyRequest: must be a string");
	page_bad(SCCM_CLIENT_SUMMARY,
		 "{\"value\": [{\"ResourceID\": 1, \"LastPolicyRequest\": \"yesterday\"}]}",
		 MDM_ERR_PARSE,
		 "SMS_G_System_CH_ClientSummary value[0].LastPolicyRequest: not a WMI or ISO-8601 "
		 "datetime from 1970 on");
	page_bad(SCCM_CLIENT_SUMMARY, "{\"value\": [1]}", MDM_ERR_PARSE,
		 "SMS_G_System_CH_ClientSummary value[0]: must be an object");
}

static void test_page_envelope(void **state)
{
	(void)state;
	page_bad(SCCM_NIC, "{\"value\": {}}", MDM_ERR_PARSE,
		 "SMS_G_System_NETWORK_ADAPTER: \"value\" must be an array");
	page_bad(SCCM_NIC, "{\"error\": {\"code\": \"x\"}}", MDM_ERR_PARSE,
		 "SMS_G_System_NETWORK_ADAPTER: \"value\" must be an array");
	page_bad(SCCM_NIC, "[]", MDM_ERR_PARSE,
		 "SMS_G_System_NETWORK_ADAPTER: the answer is not a JSON object");
	page_bad(SCCM_NIC, "{\"value\": [], \"@odata.nextLink\": 3}", MDM_ERR_PARSE,
		 "SMS_G_System_NETWORK_ADAPTER: @odata.nextLink must be a string");
	page_bad(SCCM_NIC, "{\"value\": [}", MDM_ERR_PARSE,
		 "SMS_G_System_NETWORK_ADAPTER: line 1 column 12: unexpected token near '}'");
	/* The test limit is 3 rows. */
	page_bad(SCCM_CLIENT_SUMMARY,
		 "{\"value\": [{\"ResourceID\": 1}, {\"ResourceID\": 2}, {\"ResourceID\": 3},"
		 " {\"ResourceID\": 4}]}",
		 MDM_ERR_TOOBIG, "SMS_G_System_CH_ClientSummary: 4 rows, more than the limit of 3");
}

static void test_page_limits(void **state)
{
	const char *body = "{\"value\": [{\"ResourceID\": 1}, {\"ResourceID\": 2}]}";
	char *link;
	size_t n = SCCM_NEXTLINK_MAX + 1;

	(void)state;
	why[0] = '\0';
	assert_int_equal(
	    sccm_odata_page(body, strlen(body), SCCM_NIC, 10, 100, &page, why, sizeof(why)),
	    MDM_ERR_TOOBIG);
	assert_string_equal(why, "SMS_G_System_NETWORK_ADAPTER: answer of 49 bytes, more than the "
				 "limit of 10");
	sccm_page_free(&page);
	/* Exactly at the body limit and the row cap is fine. */
	assert_int_equal(sccm_odata_page(body, strlen(body), SCCM_CLIENT_SUMMARY, 49, 2, &page, why,
					 sizeof(why)),
			 MDM_OK);
	assert_int_equal(page.nrows, 2);
	sccm_page_free(&page);

	link = malloc(n + 64);
	assert_non_null(link);
	memcpy(link, "{\"value\": [], \"@odata.nextLink\": \"", 34);
	memset(link + 34, 'x', n);
	memcpy(link + 34 + n, "\"}", 3);
	assert_int_equal(
	    sccm_odata_page(link, strlen(link), SCCM_NIC, 1 << 20, 10, &page, why, sizeof(why)),
	    MDM_ERR_TOOBIG);
	assert_string_equal(why, "SMS_G_System_NETWORK_ADAPTER: @odata.nextLink is longer than "
				 "2047 bytes or holds a NUL");
	sccm_page_free(&page);
	/* One byte shorter fits. */
	memcpy(link + 34 + n - 1, "\"}", 3);
	assert_int_equal(
	    sccm_odata_page(link, strlen(link), SCCM_NIC, 1 << 20, 10, &page, why, sizeof(why)),
	    MDM_OK);
	assert_int_equal(strlen(page.next_link), SCCM_NEXTLINK_MAX);
	sccm_page_free(&page);
	free(link);
}

/* --- URLs --------------------------------------------------------------------------------- */

#define BASE "https://cm01.corp.example/AdminService"

static void test_urls(void **state)
{
	char url[SCCM_URL_MAX];

	(void)state;
	assert_int_equal(sccm_url_system_by_mac(BASE "/", "64315010DA60", url, sizeof(url)),
			 MDM_OK);
	assert_string_equal(url, BASE "/wmi/SMS_R_System?$filter=MACAddresses/"
				      "any(m:%20m%20eq%20'64:31:50:10:DA:60')&$select=ResourceId,"
				      "Name,MACAddresses,Client,Active,Obsolete,Decommissioned,"
				      "SMSUniqueIdentifier");
	assert_int_equal(sccm_url_nic_by_mac(BASE, "64-31-50-10-da-60", url, sizeof(url)), MDM_OK);
	assert_string_equal(url,
			    BASE "/wmi/SMS_G_System_NETWORK_ADAPTER?$filter=MACAddress%20eq%20'"
				 "64:31:50:10:DA:60'&$select=ResourceID,MACAddress");
	assert_int_equal(sccm_url_ci_by_resource(BASE, 16777220, url, sizeof(url)), MDM_OK);
	assert_string_equal(url,
			    BASE "/wmi/SMS_G_System_CI_ComplianceState?$filter=ResourceID%20eq%"
				 "2016777220&$select=ResourceID,CI_UniqueID,ComplianceState,"
				 "LocalizedDisplayName");
	assert_int_equal(sccm_url_summary_by_resource(BASE, 16777220, url, sizeof(url)), MDM_OK);
	assert_string_equal(url, BASE "/wmi/SMS_G_System_CH_ClientSummary?$filter=ResourceID%20eq%"
				      "2016777220&$select=ResourceID,LastPolicyRequest");
	assert_int_equal(sccm_url_system_by_resource(BASE, 16777227, url, sizeof(url)), MDM_OK);
	assert_string_equal(url,
			    BASE "/wmi/SMS_R_System?$filter=ResourceId%20eq%2016777227&$select="
				 "ResourceId,Name,MACAddresses,Client,Active,Obsolete,"
				 "Decommissioned,SMSUniqueIdentifier");
	assert_int_equal(sccm_url_system_by_resource(BASE, -1, url, sizeof(url)), MDM_ERR_INVALID);
}

static void test_url_by_guid(void **state)
{
	char url[SCCM_URL_MAX], guid[GUID_MAX + 2];

	(void)state;
	assert_int_equal(sccm_url_system_by_guid(BASE, "GUID:5C3A1F20-0001-4A6B-9C7D-000000000001",
						 url, sizeof(url)),
			 MDM_OK);
	assert_string_equal(url, BASE "/wmi/SMS_R_System?$filter=SMSUniqueIdentifier%20eq%20'GUID:"
				      "5C3A1F20-0001-4A6B-9C7D-000000000001'&$select=ResourceId,"
				      "Name,MACAddresses,Client,Active,Obsolete,Decommissioned,"
				      "SMSUniqueIdentifier");
	/* A quote is doubled (OData), then every byte outside the safe set is percent-encoded. */
	assert_int_equal(sccm_url_system_by_guid(BASE, "{a'b c}", url, sizeof(url)), MDM_OK);
	assert_string_equal(url,
			    BASE "/wmi/SMS_R_System?$filter=SMSUniqueIdentifier%20eq%20'%7Ba''"
				 "b%20c%7D'&$select=ResourceId,Name,MACAddresses,Client,Active,"
				 "Obsolete,Decommissioned,SMSUniqueIdentifier");
	assert_int_equal(sccm_url_system_by_guid(BASE, "", url, sizeof(url)), MDM_ERR_INVALID);
	assert_string_equal(url, "");
	memset(guid, 'q', sizeof(guid) - 1);
	guid[sizeof(guid) - 1] = '\0';
	assert_int_equal(sccm_url_system_by_guid(BASE, guid, url, sizeof(url)), MDM_ERR_INVALID);
	/* The longest GUID, all quotes, still fits SCCM_URL_MAX with a 512-byte base. */
	memset(guid, '\'', GUID_MAX);
	guid[GUID_MAX] = '\0';
	assert_int_equal(sccm_url_system_by_guid(BASE, guid, url, sizeof(url)), MDM_OK);
}

static void test_urls_list(void **state)
{
	char url[SCCM_URL_MAX];

	(void)state;
	assert_int_equal(sccm_url_list(BASE, SCCM_SYSTEM, url, sizeof(url)), MDM_OK);
	assert_string_equal(url,
			    BASE "/wmi/SMS_R_System?$select=ResourceId,Name,MACAddresses,Client,"
				 "Active,Obsolete,Decommissioned,SMSUniqueIdentifier");
	assert_int_equal(sccm_url_list(BASE, SCCM_NIC, url, sizeof(url)), MDM_OK);
	assert_string_equal(url,
			    BASE "/wmi/SMS_G_System_NETWORK_ADAPTER?$select=ResourceID,MACAddress");
	assert_int_equal(sccm_url_list(BASE, SCCM_CI_STATE, url, sizeof(url)), MDM_OK);
	assert_string_equal(url, BASE "/wmi/SMS_G_System_CI_ComplianceState?$select=ResourceID,"
				      "CI_UniqueID,ComplianceState,LocalizedDisplayName");
	assert_int_equal(sccm_url_list(BASE, SCCM_CLIENT_SUMMARY, url, sizeof(url)), MDM_OK);
	assert_string_equal(
	    url, BASE "/wmi/SMS_G_System_CH_ClientSummary?$select=ResourceID,LastPolicyRequest");
}

static void test_urls_errors(void **state)
{
	char url[SCCM_URL_MAX], small[40];

	(void)state;
	assert_int_equal(sccm_url_system_by_mac(BASE, "not a mac", url, sizeof(url)),
			 MDM_ERR_INVALID);
	assert_int_equal(sccm_url_nic_by_mac(BASE, "FFFFFFFFFFFF", url, sizeof(url)),
			 MDM_ERR_INVALID);
	assert_int_equal(sccm_url_ci_by_resource(BASE, -1, url, sizeof(url)), MDM_ERR_INVALID);
	assert_int_equal(sccm_url_list("", SCCM_NIC, url, sizeof(url)), MDM_ERR_INVALID);
	assert_int_equal(sccm_url_list("///", SCCM_NIC, url, sizeof(url)), MDM_ERR_INVALID);
	assert_int_equal(sccm_url_summary_by_resource(BASE, 1, small, sizeof(small)),
			 MDM_ERR_TOOBIG);
	assert_string_equal(small, "");
}

static void test_odata_quote(void **state)
{
	char out[32], tiny[8];

	(void)state;
	assert_int_equal(sccm_odata_quote("O'Brien's PC", out, sizeof(out)), MDM_OK);
	assert_string_equal(out, "'O''Brien''s PC'");
	assert_int_equal(sccm_odata_quote("", out, sizeof(out)), MDM_OK);
	assert_string_equal(out, "''");
	assert_int_equal(sccm_odata_quote("'", out, sizeof(out)), MDM_OK);
	assert_string_equal(out, "''''");
	assert_int_equal(sccm_odata_quote("abcd'e", tiny, sizeof(tiny)), MDM_ERR_TOOBIG);
	assert_string_equal(tiny, "");
	/* exactly fits: 'abc''' is 7 bytes + NUL */
	assert_int_equal(sccm_odata_quote("abc'", tiny, sizeof(tiny)), MDM_OK);
	assert_string_equal(tiny, "'abc'''");
}

/* --- compliance --------------------------------------------------------------------------- */

static struct sccm_ci_state ci(long long id, const char *uid, int st, const char *name)
{
	struct sccm_ci_state r;

	memset(&r, 0, sizeof(r));
	r.resource_id = id;
	snprintf(r.ci_unique_id, sizeof(r.ci_unique_id), "%s", uid);
	r.compliance_state = st;
	snprintf(r.display_name, sizeof(r.display_name), "%s", name);
	return r;
}

static struct device dev;

static void comply(const struct sccm_ci_state *rows, size_t n, const char *const *only,
		   size_t nonly, bool no_rows_ok)
{
	memset(&dev, 0, sizeof(dev));
	snprintf(dev.failure_reason, sizeof(dev.failure_reason), "stale");
	sccm_compliance(rows, n, 5, only, nonly, no_rows_ok, &dev);
}

static void test_compliance_all_ok(void **state)
{
	struct sccm_ci_state rows[] = {ci(5, "A", 1, "Compliance"), ci(5, "B", 1, "Firewall")};

	(void)state;
	comply(rows, 2, NULL, 0, false);
	assert_int_equal(dev.compliant, TRI_TRUE);
	assert_string_equal(dev.failure_reason, "");
}

static void test_compliance_failing_states(void **state)
{
	struct sccm_ci_state rows[] = {ci(5, "A", 1, "Compliance"), ci(5, "B", 2, "Firewall")};
	const int states[] = {0, 2, 3, 4, 7, -1};

	(void)state;
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
		rows[1].compliance_state = states[i];
		comply(rows, 2, NULL, 0, false);
		assert_int_equal(dev.compliant, TRI_FALSE);
		assert_string_equal(dev.failure_reason, "Firewall");
	}
}

static void test_compliance_names(void **state)
{
	struct sccm_ci_state rows[] = {
	    ci(5, "A", 2, "Compliance"), ci(5, "B", 0, "Compliance"),
	    ci(5, "C", 1, "OK one"),	 ci(5, "D", 4, "Compliance Policy"),
	    ci(5, "E", -1, ""),		 ci(5, "", 2, "")};

	(void)state;
	comply(rows, 4, NULL, 0, false);
	assert_int_equal(dev.compliant, TRI_FALSE);
	assert_string_equal(dev.failure_reason, "Compliance, Compliance, Compliance Policy");
	comply(rows, 6, NULL, 0, false);
	assert_string_equal(dev.failure_reason,
			    "Compliance, Compliance, Compliance Policy, E, (unnamed baseline)");
}

static void test_compliance_no_rows(void **state)
{
	struct sccm_ci_state rows[] = {ci(6, "A", 2, "Other machine's"), ci(7, "B", 1, "X")};

	(void)state;
	comply(rows, 2, NULL, 0, false);
	assert_int_equal(dev.compliant, TRI_FALSE);
	assert_string_equal(dev.failure_reason, "no compliance baseline reported");
	comply(NULL, 0, NULL, 0, false);
	assert_int_equal(dev.compliant, TRI_FALSE);
	assert_string_equal(dev.failure_reason, "no compliance baseline reported");
	comply(rows, 2, NULL, 0, true);
	assert_int_equal(dev.compliant, TRI_TRUE);
	assert_string_equal(dev.failure_reason, "");
}

static void test_compliance_other_resources(void **state)
{
	struct sccm_ci_state rows[] = {ci(6, "A", 2, "Theirs"), ci(5, "A", 1, "Ours"),
				       ci(4, "A", 0, "Also theirs")};

	(void)state;
	comply(rows, 3, NULL, 0, false);
	assert_int_equal(dev.compliant, TRI_TRUE);
	assert_string_equal(dev.failure_reason, "");
}

static void test_compliance_only_ci(void **state)
{
	struct sccm_ci_state rows[] = {ci(5, "ScopeId_1/Baseline_A", 1, "Wanted"),
				       ci(5, "ScopeId_1/Baseline_B", 2, "Ignored"),
				       ci(5, "ScopeId_1/Baseline_C", 4, "Wanted too")};
	const char *only_a[] = {"scopeid_1/baseline_a"};
	const char *only_ac[] = {"ScopeId_1/Baseline_A", "ScopeId_1/Baseline_C"};
	const char *only_none[] = {"ScopeId_1/Baseline_Z"};

	(void)state;
	comply(rows, 3, only_a, 1, false);
	assert_int_equal(dev.compliant, TRI_TRUE);
	assert_string_equal(dev.failure_reason, "");
	comply(rows, 3, only_ac, 2, false);
	assert_int_equal(dev.compliant, TRI_FALSE);
	assert_string_equal(dev.failure_reason, "Wanted too");
	comply(rows, 3, only_none, 1, false);
	assert_int_equal(dev.compliant, TRI_FALSE);
	assert_string_equal(dev.failure_reason, "no compliance baseline reported");
}

static void test_compliance_reason_bounded(void **state)
{
	struct sccm_ci_state rows[40];
	char want[DEVICE_TEXT_MAX] = "";
	size_t len = 0;

	(void)state;
	/* 40 names of 10 bytes: 21 fit with their separators and room for ", ...". */
	for (size_t i = 0; i < 40; i++) {
		char name[16];

		snprintf(name, sizeof(name), "Baseline%02zu", i);
		rows[i] = ci(5, "X", 2, name);
		if (i < 21)
			len += (size_t)snprintf(want + len, sizeof(want) - len, "%s%s",
						i ? ", " : "", name);
	}
	snprintf(want + len, sizeof(want) - len, ", ...");
	comply(rows, 40, NULL, 0, false);
	assert_int_equal(dev.compliant, TRI_FALSE);
	assert_string_equal(dev.failure_reason, want);
	assert_true(strlen(dev.failure_reason) < DEVICE_TEXT_MAX);
}

static void test_compliance_reason_long_first(void **state)
{
	struct sccm_ci_state rows[2];
	char name[DEVICE_TEXT_MAX], want[DEVICE_TEXT_MAX];

	(void)state;
	memset(name, 'n', 255);
	name[255] = '\0';
	rows[0] = ci(5, "X", 2, name);
	rows[1] = ci(5, "Y", 2, "Second");
	comply(rows, 2, NULL, 0, false);
	memset(want, 'n', 252);
	memcpy(want + 252, "...", 4);
	assert_string_equal(dev.failure_reason, want);
	/* Alone, a name of 255 bytes fits whole. */
	comply(rows, 1, NULL, 0, false);
	assert_string_equal(dev.failure_reason, name);
}

/* --- pick and fill ------------------------------------------------------------------------ */

static struct sccm_system sys(long long id, int client, int active, int obsolete)
{
	struct sccm_system s;

	memset(&s, 0, sizeof(s));
	s.resource_id = id;
	s.client = client;
	s.active = active;
	s.obsolete = obsolete;
	s.decommissioned = 0;
	return s;
}

static void test_pick_resource(void **state)
{
	/* A re-imaged PC: the old record is obsolete without a client and has no newer id. */
	struct sccm_system dup[] = {sys(16777300, 0, 0, 1), sys(16777220, 1, 1, 0)};
	struct sccm_system order[] = {sys(9, 0, 1, 0), sys(3, 1, 0, 1), sys(4, 1, 0, 1),
				      sys(2, 1, 1, 1), sys(1, 1, 1, 0)};
	struct sccm_system nulls[] = {sys(1, -1, -1, -1), sys(3, -1, -1, -1), sys(2, -1, -1, -1)};
	struct sccm_system obs[] = {sys(5, -1, -1, 0), sys(9, -1, -1, -1), sys(7, -1, -1, 1)};

	(void)state;
	assert_int_equal(sccm_pick_resource(NULL, 0), -1);
	assert_int_equal(sccm_pick_resource(dup, 1), 0);
	assert_int_equal(sccm_pick_resource(dup, 2), 1);
	/* Client beats Active beats Obsolete=0 beats the higher id. */
	assert_int_equal(sccm_pick_resource(order, 5), 4);
	assert_int_equal(sccm_pick_resource(order, 4), 3);
	assert_int_equal(sccm_pick_resource(order, 3), 2);
	assert_int_equal(sccm_pick_resource(order, 1), 0);
	/* Nothing reported: the newest (highest ResourceId). */
	assert_int_equal(sccm_pick_resource(nulls, 3), 1);
	/* A null Obsolete is not Obsolete=0; between null and 1 the newer wins. */
	assert_int_equal(sccm_pick_resource(obs, 3), 0);
	assert_int_equal(sccm_pick_resource(obs + 1, 2), 0);
}

static void test_fill_device(void **state)
{
	struct sccm_system s = sys(16777220, 1, 1, 0);
	struct sccm_nic nics[] = {{16777220, "64315010DA60"},
				  {16777221, "001122334455"},
				  {16777220, "0250F2000001"},
				  {16777220, "005056C00008"}};
	struct sccm_client_summary sums[] = {
	    {16777220, T0 - 1000}, {16777221, T0 + 5000}, {16777220, T0}};
	struct sccm_ci_state cis[] = {ci(16777220, "A", 1, "Compliance")};
	struct device d;

	(void)state;
	snprintf(s.name, sizeof(s.name), "PC-0042");
	snprintf(s.sms_unique_id, sizeof(s.sms_unique_id), "GUID:6B4E2D6A");
	snprintf(s.macs[0], sizeof(s.macs[0]), "64315010DA60");
	snprintf(s.macs[1], sizeof(s.macs[1]), "A4BB6D000001");
	s.nmacs = 2;
	assert_int_equal(sccm_fill_device(16777220, &s, nics, 4, sums, 3, "sccm-hq", &d), MDM_OK);
	assert_string_equal(d.source, "sccm-hq");
	assert_string_equal(d.vendor_id, "16777220");
	assert_string_equal(d.guid, "GUID:6B4E2D6A");
	assert_string_equal(d.hostname, "pc-0042");
	assert_int_equal(d.nmacs, 4);
	assert_string_equal(d.macs[0], "64315010DA60");
	assert_string_equal(d.macs[1], "A4BB6D000001");
	assert_string_equal(d.macs[2], "0250F2000001");
	assert_string_equal(d.macs[3], "005056C00008");
	assert_false(d.mac_local);
	assert_int_equal(d.registered, TRI_TRUE);
	assert_int_equal(d.compliant, TRI_UNSET);
	assert_int_equal(d.pin_lock, TRI_FALSE);
	assert_int_equal(d.jail_broken, TRI_FALSE);
	assert_int_equal(d.disk_encrypted, TRI_UNSET);
	assert_int_equal(d.last_checkin_ms, T0);
	assert_string_equal(d.failure_reason, "");
	sccm_compliance(cis, 1, 16777220, NULL, 0, false, &d);
	assert_int_equal(d.compliant, TRI_TRUE);
}

static void test_fill_device_nic_only(void **state)
{
	struct sccm_nic nics[] = {{7, "0250F2000001"}, {7, "0250F2000002"}, {7, "0250F2000003"},
				  {7, "0250F2000004"}, {7, "0250F2000005"}, {7, "0250F2000006"},
				  {7, "0250F2000001"}};
	struct sccm_system other = sys(8, 1, 1, 0);
	struct device d;

	(void)state;
	assert_int_equal(sccm_fill_device(7, NULL, nics, 7, NULL, 0, "sccm", &d), MDM_OK);
	assert_string_equal(d.vendor_id, "7");
	assert_string_equal(d.guid, "");
	assert_string_equal(d.hostname, "");
	assert_int_equal(d.nmacs, 5);
	assert_string_equal(d.macs[4], "0250F2000005");
	assert_true(d.mac_local);
	assert_int_equal(d.registered, TRI_TRUE);
	assert_int_equal(d.last_checkin_ms, 0);
	assert_int_equal(sccm_fill_device(7, &other, NULL, 0, NULL, 0, "sccm", &d),
			 MDM_ERR_INVALID);
	assert_int_equal(sccm_fill_device(-1, NULL, NULL, 0, NULL, 0, "sccm", &d), MDM_ERR_INVALID);
	assert_int_equal(sccm_fill_device(7, NULL, NULL, 0, NULL, 0,
					  "a-source-name-much-longer-than-sixty-three-bytes-which-"
					  "cannot-fit",
					  &d),
			 MDM_ERR_TOOBIG);
}

static void test_fill_device_bad_name(void **state)
{
	struct sccm_system s = sys(1, 1, 1, 0);
	struct device d;

	(void)state;
	snprintf(s.name, sizeof(s.name), "Bad Name");
	assert_int_equal(sccm_fill_device(1, &s, NULL, 0, NULL, 0, "sccm", &d), MDM_OK);
	assert_string_equal(d.hostname, "");
	assert_int_equal(d.nmacs, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_time_wmi),
	    cmocka_unit_test(test_time_iso),
	    cmocka_unit_test(test_time_invalid),
	    cmocka_unit_test(test_page_systems),
	    cmocka_unit_test(test_page_system_many_macs),
	    cmocka_unit_test(test_page_nics),
	    cmocka_unit_test(test_page_ci_and_summary),
	    cmocka_unit_test(test_page_display_name_cut),
	    cmocka_unit_test(test_page_empty),
	    cmocka_unit_test(test_page_wrong_types),
	    cmocka_unit_test(test_page_envelope),
	    cmocka_unit_test(test_page_limits),
	    cmocka_unit_test(test_urls),
	    cmocka_unit_test(test_url_by_guid),
	    cmocka_unit_test(test_urls_list),
	    cmocka_unit_test(test_urls_errors),
	    cmocka_unit_test(test_odata_quote),
	    cmocka_unit_test(test_compliance_all_ok),
	    cmocka_unit_test(test_compliance_failing_states),
	    cmocka_unit_test(test_compliance_names),
	    cmocka_unit_test(test_compliance_no_rows),
	    cmocka_unit_test(test_compliance_other_resources),
	    cmocka_unit_test(test_compliance_only_ci),
	    cmocka_unit_test(test_compliance_reason_bounded),
	    cmocka_unit_test(test_compliance_reason_long_first),
	    cmocka_unit_test(test_pick_resource),
	    cmocka_unit_test(test_fill_device),
	    cmocka_unit_test(test_fill_device_nic_only),
	    cmocka_unit_test(test_fill_device_bad_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
