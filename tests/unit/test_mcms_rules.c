#include "unit.h"

#include <stdio.h>
#include <stdlib.h>

#include "../../adapters/mcms_rules.h"

#define MAXB 65536
#define BASE "https://mdm.example.com"

/* --- URLs --------------------------------------------------------------------------------- */

static void test_url_mdminfo(void **state)
{
	char u[MCMS_URL_MAX];

	(void)state;
	assert_int_equal(mcms_url_mdminfo(BASE, NULL, 3, u, sizeof(u)), MDM_OK);
	assert_string_equal(u, BASE "/ciscoise/mdminfo/?ise_api_version=3");
	assert_int_equal(mcms_url_mdminfo(BASE "//", "", 2, u, sizeof(u)), MDM_OK);
	assert_string_equal(u, BASE "/ciscoise/mdminfo/?ise_api_version=2");
	assert_int_equal(mcms_url_mdminfo(BASE ":8443/", "/tenant1/", 3, u, sizeof(u)), MDM_OK);
	assert_string_equal(u, BASE ":8443/tenant1/ciscoise/mdminfo/?ise_api_version=3");
	assert_int_equal(mcms_url_mdminfo(BASE, "a b/c?", 1, u, sizeof(u)), MDM_OK);
	assert_string_equal(u, BASE "/a%20b/c%3F/ciscoise/mdminfo/?ise_api_version=1");
	assert_int_equal(mcms_url_mdminfo("", NULL, 3, u, sizeof(u)), MDM_ERR_INVALID);
	assert_int_equal(mcms_url_mdminfo("/", NULL, 3, u, sizeof(u)), MDM_ERR_INVALID);
	assert_int_equal(mcms_url_mdminfo(BASE, NULL, 0, u, sizeof(u)), MDM_ERR_INVALID);
	assert_int_equal(mcms_url_mdminfo(BASE, NULL, 4, u, sizeof(u)), MDM_ERR_INVALID);
	assert_int_equal(mcms_url_mdminfo(BASE, NULL, 3, u, 20), MDM_ERR_TOOBIG);
	assert_string_equal(u, "");
	/* exactly fitting: the URL is 59 bytes, so 60 fits and 59 does not */
	assert_int_equal(mcms_url_mdminfo(BASE, NULL, 3, u, 60), MDM_OK);
	assert_int_equal(mcms_url_mdminfo(BASE, NULL, 3, u, 59), MDM_ERR_TOOBIG);
}

static void url_dev_ok(int version, enum mcms_criterion c, const char *value, uint32_t paging,
		       const char *want)
{
	char u[MCMS_URL_MAX];
	enum mdm_err e =
	    mcms_url_devices(BASE, "/ciscoise/mdmapi/v3", version, c, value, paging, u, sizeof(u));

	if (e != MDM_OK)
		fail_msg("v%d %s=%s: %s", version, mcms_criterion_name(c), value, err_str(e));
	assert_string_equal(u, want);
}

static void url_dev_bad(int version, enum mcms_criterion c, const char *value)
{
	char u[MCMS_URL_MAX] = "x";

	if (mcms_url_devices(BASE, "/ciscoise/mdmapi/v3", version, c, value, 0, u, sizeof(u)) !=
	    MDM_ERR_INVALID)
		fail_msg("v%d %s=%s accepted: %s", version, mcms_criterion_name(c),
			 value ? value : "(null)", u);
	assert_string_equal(u, "");
}

#define API BASE "/ciscoise/mdmapi/v3"

static void test_url_devices(void **state)
{
	(void)state;
	url_dev_ok(3, MCMS_BY_MAC, "00:26:b4:24:fe:b4", 0,
		   API "/devices/?paging=0&querycriteria=macaddress&value=0026B424FEB4&filter=all");
	url_dev_ok(2, MCMS_BY_MAC, "0026B424FEB4", 7,
		   API "/devices/?paging=7&querycriteria=macaddress&value=0026B424FEB4&filter=all");
	url_dev_ok(3, MCMS_BY_COMPLIANCE, "FALSE", 4294967295u,
		   API "/devices/?paging=4294967295&querycriteria=compliance&value=false"
		       "&filter=all");
	url_dev_ok(3, MCMS_BY_NONE, NULL, 0, API "/devices/?paging=0&filter=all");
	url_dev_ok(3, MCMS_BY_GUID, "1759c0fd-c8da-49e8-b14f-19d85acfacea", 0,
		   API "/devices/?paging=0&querycriteria=guid"
		       "&value=1759c0fd-c8da-49e8-b14f-19d85acfacea&filter=all");
	url_dev_ok(3, MCMS_BY_HOSTNAME, "PC-042.Corp.example", 0,
		   API "/devices/?paging=0&querycriteria=guidhn&value=pc-042.corp.example"
		       "&filter=all");
	url_dev_ok(2, MCMS_BY_USERNAME, "Jo Doe@corp&x=1", 0,
		   API "/devices/?paging=0&querycriteria=username&value=jo%20doe%40corp%26x%3D1"
		       "&filter=all");
	url_dev_ok(2, MCMS_BY_UDID, "00008030-001A2B3C4D5E", 0,
		   API "/devices/?paging=0&querycriteria=udid&value=00008030-001A2B3C4D5E"
		       "&filter=all");
	url_dev_ok(2, MCMS_BY_IMEI, "490154203237518", 0,
		   API "/devices/?paging=0&querycriteria=imei&value=490154203237518&filter=all");
	url_dev_ok(2, MCMS_BY_MEID, "a10000009296f2", 0,
		   API "/devices/?paging=0&querycriteria=meid&value=A10000009296F2&filter=all");
	/* v1 knows only the path form */
	url_dev_ok(1, MCMS_BY_MAC, "0026b424feb4", 0, API "/devices/0/macaddress/0026B424FEB4/all");
	url_dev_ok(1, MCMS_BY_USERNAME, "a/b", 3, API "/devices/3/username/a%2Fb/all");
	url_dev_ok(1, MCMS_BY_NONE, NULL, 5, API "/devices/5/all");
}

static void test_url_devices_refused(void **state)
{
	char u[MCMS_URL_MAX];

	(void)state;
	/* criteria the negotiated version lacks */
	url_dev_bad(1, MCMS_BY_UDID, "00008030-001A2B3C4D5E");
	url_dev_bad(1, MCMS_BY_IMEI, "490154203237518");
	url_dev_bad(1, MCMS_BY_MEID, "A10000009296F2");
	url_dev_bad(2, MCMS_BY_GUID, "1759c0fd");
	url_dev_bad(2, MCMS_BY_HOSTNAME, "pc-042");
	/* bad values */
	url_dev_bad(3, MCMS_BY_MAC, "0026B424FEB");
	url_dev_bad(3, MCMS_BY_MAC, "FFFFFFFFFFFF");
	url_dev_bad(3, MCMS_BY_MAC, NULL);
	url_dev_bad(3, MCMS_BY_COMPLIANCE, "maybe");
	url_dev_bad(3, MCMS_BY_COMPLIANCE, "");
	url_dev_bad(3, MCMS_BY_IMEI, "12345");
	url_dev_bad(3, MCMS_BY_HOSTNAME, "a b");
	url_dev_bad(3, (enum mcms_criterion)42, "x");
	url_dev_bad(0, MCMS_BY_MAC, "0026B424FEB4");
	url_dev_bad(4, MCMS_BY_MAC, "0026B424FEB4");
	/* base and api_path */
	assert_int_equal(mcms_url_devices("", "/p", 3, MCMS_BY_NONE, NULL, 0, u, sizeof(u)),
			 MDM_ERR_INVALID);
	assert_int_equal(mcms_url_devices(BASE, "p", 3, MCMS_BY_NONE, NULL, 0, u, sizeof(u)),
			 MDM_ERR_INVALID);
	assert_int_equal(mcms_url_devices(BASE, "", 3, MCMS_BY_NONE, NULL, 0, u, sizeof(u)),
			 MDM_ERR_INVALID);
	assert_int_equal(mcms_url_devices(BASE, "/p", 3, MCMS_BY_NONE, NULL, 0, u, 30),
			 MDM_ERR_TOOBIG);
	assert_int_equal(mcms_criterion_version(MCMS_BY_MAC), 1);
	assert_int_equal(mcms_criterion_version(MCMS_BY_MEID), 2);
	assert_int_equal(mcms_criterion_version(MCMS_BY_HOSTNAME), 3);
	assert_int_equal(mcms_criterion_version((enum mcms_criterion)99), 0);
}

static void test_url_action(void **state)
{
	char u[MCMS_URL_MAX];

	(void)state;
	assert_int_equal(
	    mcms_url_action(BASE, "/ciscoise/mdmapi/v3/", ACTION_CORPORATE_WIPE, u, sizeof(u)),
	    MDM_OK);
	assert_string_equal(u, API "/action/?actionType=corporate_wipe");
	assert_int_equal(
	    mcms_url_action(BASE, "/t1/ciscoise/mdmapi/v2", ACTION_FULL_WIPE, u, sizeof(u)),
	    MDM_OK);
	assert_string_equal(u, BASE "/t1/ciscoise/mdmapi/v2/action/?actionType=full_wipe");
	assert_int_equal(mcms_url_action(BASE, "/x", ACTION_PIN_LOCK, u, sizeof(u)), MDM_OK);
	assert_string_equal(u, BASE "/x/action/?actionType=pin_lock");
	assert_int_equal(mcms_url_action(BASE, "/x", ACTION_COUNT, u, sizeof(u)), MDM_ERR_INVALID);
	assert_int_equal(mcms_url_action(BASE, "x", ACTION_PIN_LOCK, u, sizeof(u)),
			 MDM_ERR_INVALID);
	assert_int_equal(mcms_url_action(BASE, "/x", ACTION_PIN_LOCK, u, 10), MDM_ERR_TOOBIG);
}

static void test_action_body(void **state)
{
	struct buf b;
	struct ident id;

	(void)state;
	buf_init(&b, 4096);
	assert_int_equal(ident_parse(IDENT_MAC, "00:26:b4:24:fe:b4", 17, &id, NULL, 0), MDM_OK);
	assert_int_equal(mcms_action_body(&id, &b), MDM_OK);
	assert_string_equal(
	    buf_str(&b),
	    "<ise_api><identifier><macaddress>0026B424FEB4</macaddress></identifier></ise_api>");
	buf_reset(&b);
	memset(&id, 0, sizeof(id));
	id.kind = IDENT_GUID;
	str_copy(id.value, sizeof(id.value), "a<b&c\"d'");
	assert_int_equal(mcms_action_body(&id, &b), MDM_OK);
	assert_string_equal(buf_str(&b), "<ise_api><identifier><guid>a&lt;b&amp;c&quot;d&apos;"
					 "</guid></identifier></ise_api>");
	buf_reset(&b);
	assert_int_equal(ident_parse(IDENT_SERIAL, "7XK2Q33", 7, &id, NULL, 0), MDM_OK);
	assert_int_equal(mcms_action_body(&id, &b), MDM_OK);
	assert_string_equal(
	    buf_str(&b),
	    "<ise_api><identifier><serial_number>7XK2Q33</serial_number></identifier></ise_api>");
	buf_reset(&b);
	assert_int_equal(ident_parse(IDENT_HOSTNAME, "pc-1", 4, &id, NULL, 0), MDM_OK);
	assert_int_equal(mcms_action_body(&id, &b), MDM_ERR_INVALID);
	assert_int_equal(ident_parse(IDENT_USERNAME, "jo", 2, &id, NULL, 0), MDM_OK);
	assert_int_equal(mcms_action_body(&id, &b), MDM_ERR_INVALID);
	assert_int_equal(b.len, 0);
	buf_free(&b);
	/* the limit of the buffer holds */
	buf_init(&b, 20);
	assert_int_equal(ident_parse(IDENT_MAC, "0026B424FEB4", 12, &id, NULL, 0), MDM_OK);
	assert_int_equal(mcms_action_body(&id, &b), MDM_ERR_TOOBIG);
	buf_free(&b);
}

/* --- mdminfo ------------------------------------------------------------------------------ */

static enum mdm_err info(const char *xml, struct mcms_info *o, char *why, size_t whysz)
{
	return mcms_mdminfo_parse(xml, strlen(xml), MAXB, o, why, whysz);
}

static const char info_v3[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			      "<ise_api>\n"
			      "  <name>mdminfo</name>\n"
			      "  <api_version>3</api_version>\n"
			      "  <api_path>/ciscoise/mdmapi/v3</api_path>\n"
			      "  <redirect_url>https://enroll.example.com/</redirect_url>\n"
			      "  <query_max_size>5000</query_max_size>\n"
			      "  <messaging_support>false</messaging_support>\n"
			      "  <vendor>mdmgw</vendor>\n"
			      "  <product_name>mdmgw test</product_name>\n"
			      "  <product_version>0.1.0</product_version>\n"
			      "</ise_api>\n";

static void test_mdminfo_versions(void **state)
{
	struct mcms_info o;
	char why[256] = "";

	(void)state;
	assert_int_equal(info(info_v3, &o, why, sizeof(why)), MDM_OK);
	assert_int_equal(o.api_version, 3);
	assert_string_equal(o.api_path, "/ciscoise/mdmapi/v3");
	assert_string_equal(o.redirect_url, "https://enroll.example.com/");
	assert_int_equal(o.query_max_size, 5000);
	assert_false(o.messaging_support);
	assert_string_equal(o.vendor, "mdmgw");
	assert_string_equal(o.product_name, "mdmgw test");
	assert_string_equal(o.product_version, "0.1.0");

	/* v2 from an older server: no vendor elements, messaging on, instance in the path */
	assert_int_equal(info("<ise_api><name>mdminfo</name><api_version>2</api_version>"
			      "<api_path>/t1/ciscoise/mdmapi/v2/</api_path>"
			      "<query_max_size>200</query_max_size>"
			      "<messaging_support>TRUE</messaging_support></ise_api>",
			      &o, why, sizeof(why)),
			 MDM_OK);
	assert_int_equal(o.api_version, 2);
	assert_string_equal(o.api_path, "/t1/ciscoise/mdmapi/v2");
	assert_int_equal(o.query_max_size, 200);
	assert_true(o.messaging_support);
	assert_string_equal(o.vendor, "");
	assert_string_equal(o.redirect_url, "");

	/* v1, minimal: the defaults */
	assert_int_equal(info("<ise_api><api_version> 1 </api_version>"
			      "<api_path> /ciscoise/mdmapi/v1 </api_path></ise_api>",
			      &o, why, sizeof(why)),
			 MDM_OK);
	assert_int_equal(o.api_version, 1);
	assert_string_equal(o.api_path, "/ciscoise/mdmapi/v1");
	assert_int_equal(o.query_max_size, MCMS_QUERY_MAX_DEFAULT);
	assert_false(o.messaging_support);
}

static void test_mdminfo_tolerant(void **state)
{
	struct mcms_info plain, o;
	char why[256] = "";

	(void)state;
	assert_int_equal(info(info_v3, &plain, why, sizeof(why)), MDM_OK);
	/* capitalised, default namespace, unknown elements */
	assert_int_equal(
	    info("<ISE_API xmlns=\"http://schemas.example.com/mdm\"><Name>mdminfo</Name>"
		 "<Extra><api_version>9</api_version></Extra>"
		 "<API_Version>3</API_Version><Api_Path>/ciscoise/mdmapi/v3</Api_Path>"
		 "<Redirect_URL>https://enroll.example.com/</Redirect_URL>"
		 "<Query_Max_Size>5000</Query_Max_Size><Messaging_Support>False"
		 "</Messaging_Support><Vendor>mdmgw</Vendor><Product_Name>mdmgw test"
		 "</Product_Name><Product_Version>0.1.0</Product_Version></ISE_API>",
		 &o, why, sizeof(why)),
	    MDM_OK);
	assert_memory_equal(&o, &plain, sizeof(o));
	/* a namespace prefix */
	assert_int_equal(info("<m:ise_api xmlns:m=\"urn:x\"><m:api_version>3</m:api_version>"
			      "<m:api_path>/ciscoise/mdmapi/v3</m:api_path>"
			      "<m:vendor>mdmgw</m:vendor></m:ise_api>",
			      &o, why, sizeof(why)),
			 MDM_OK);
	assert_int_equal(o.api_version, 3);
	assert_string_equal(o.vendor, "mdmgw");
	/* query_max_size clamped, not refused */
	assert_int_equal(info("<a><api_version>3</api_version><api_path>/p</api_path>"
			      "<query_max_size>99999999999999999999999</query_max_size></a>",
			      &o, why, sizeof(why)),
			 MDM_OK);
	assert_int_equal(o.query_max_size, MCMS_QUERY_MAX_LIMIT);
	assert_int_equal(info("<a><api_version>3</api_version><api_path>/</api_path>"
			      "<query_max_size>0</query_max_size></a>",
			      &o, why, sizeof(why)),
			 MDM_OK);
	assert_int_equal(o.query_max_size, 1);
	assert_string_equal(o.api_path, "/");
}

static void info_bad(const char *xml, enum mdm_err want, const char *why_has)
{
	struct mcms_info o;
	char why[256] = "";
	enum mdm_err e = info(xml, &o, why, sizeof(why));

	if (e != want)
		fail_msg("%s: got %s, want %s (%s)", xml, err_str(e), err_str(want), why);
	if (!strstr(why, why_has))
		fail_msg("%s: reason \"%s\" lacks \"%s\"", xml, why, why_has);
	assert_int_equal(o.api_version, 0);
	assert_string_equal(o.api_path, "");
}

static void test_mdminfo_refused(void **state)
{
	(void)state;
	info_bad("<ise_api><api_path>/p</api_path></ise_api>", MDM_ERR_PARSE, "api_version");
	info_bad("<ise_api><api_version>3</api_version></ise_api>", MDM_ERR_PARSE, "api_path");
	info_bad("<ise_api><api_version>0</api_version><api_path>/p</api_path></ise_api>",
		 MDM_ERR_PARSE, "api_version");
	info_bad("<ise_api><api_version>4</api_version><api_path>/p</api_path></ise_api>",
		 MDM_ERR_PARSE, "api_version");
	info_bad("<ise_api><api_version>v3</api_version><api_path>/p</api_path></ise_api>",
		 MDM_ERR_PARSE, "api_version");
	info_bad("<ise_api><api_version>3</api_version><api_path>p/v3</api_path></ise_api>",
		 MDM_ERR_PARSE, "absolute");
	info_bad("<ise_api><api_version>3</api_version><api_path>/p?x=1</api_path></ise_api>",
		 MDM_ERR_PARSE, "api_path");
	info_bad("<ise_api><api_version>3</api_version><api_path>/a b</api_path></ise_api>",
		 MDM_ERR_PARSE, "api_path");
	info_bad("<ise_api><api_version>3</api_version><api_path>/p</api_path>"
		 "<query_max_size>lots</query_max_size></ise_api>",
		 MDM_ERR_PARSE, "query_max_size");
	info_bad("<ise_api><api_version>3</api_version><api_path>/p</api_path>"
		 "<messaging_support>yes</messaging_support></ise_api>",
		 MDM_ERR_PARSE, "messaging_support");
	info_bad("<html><body>502 Bad Gateway</body></html>", MDM_ERR_PARSE, "api_version");
	info_bad("not xml", MDM_ERR_PARSE, "XML error");
	info_bad("", MDM_ERR_PARSE, "XML error");
	info_bad("<!DOCTYPE x [<!ENTITY a \"b\">]><x><api_version>3</api_version></x>",
		 MDM_ERR_PARSE, "DOCTYPE");
}

/* --- device answers ----------------------------------------------------------------------- */

static const char dev_v2[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<ise_api>\n"
    "  <name>attributes</name>\n"
    "  <api_version>2</api_version>\n"
    "  <paging_info>0</paging_info>\n"
    "  <deviceList>\n"
    "    <device>\n"
    "      <macaddress>0026B424FEB4</macaddress>\n"
    "      <attributes>\n"
    "        <register_status>true</register_status>\n"
    "        <compliance>\n"
    "          <status>false</status>\n"
    "          <failure_reason>Baseline &quot;Domain-Members&quot; non-compliant</failure_reason>\n"
    "          <remediation>Install pending critical updates</remediation>\n"
    "        </compliance>\n"
    "        <disk_encryption_on>true</disk_encryption_on>\n"
    "        <pin_lock_on>true</pin_lock_on>\n"
    "        <jail_broken>false</jail_broken>\n"
    "        <manufacturer>Dell Inc.</manufacturer>\n"
    "        <model>Latitude 7420</model>\n"
    "        <imei></imei>\n"
    "        <meid></meid>\n"
    "        <udid></udid>\n"
    "        <serial_number>7XK2Q33</serial_number>\n"
    "        <os_version>10.0.19045</os_version>\n"
    "        <phone_number></phone_number>\n"
    "      </attributes>\n"
    "    </device>\n"
    "  </deviceList>\n"
    "</ise_api>\n";

/* The same device, v3, Intune style: capitalised names under a default namespace. */
static const char dev_v3_intune[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<ise_api xmlns=\"http://schemas.microsoft.com/intune/ise\">\n"
    "  <Name>attributes</Name><Api_Version>3</Api_Version>\n"
    "  <Paging_Info>0</Paging_Info><Server_Busy_Wait_Seconds>0</Server_Busy_Wait_Seconds>\n"
    "  <DeviceList><Device><MacAddress>0026b424feb4</MacAddress>\n"
    "    <Attributes><Register_Status>True</Register_Status>\n"
    "      <Compliance><Status>FALSE</Status>\n"
    "        <Failure_Reason>Baseline \"Domain-Members\" non-compliant</Failure_Reason>\n"
    "        <Remediation>Install pending critical updates</Remediation></Compliance>\n"
    "      <Disk_Encryption_On>true</Disk_Encryption_On><Pin_Lock_On>true</Pin_Lock_On>\n"
    "      <Jail_Broken>false</Jail_Broken><Manufacturer>Dell Inc.</Manufacturer>\n"
    "      <Model>Latitude 7420</Model><Serial_Number>7XK2Q33</Serial_Number>\n"
    "      <OS_Version>10.0.19045</OS_Version><Unknown><Deeper>x</Deeper></Unknown>\n"
    "    </Attributes></Device></DeviceList></ise_api>\n";

struct parsed {
	struct outcome oc;
	uint32_t paging;
	int busy;
	size_t dropped;
	char why[256];
	enum mdm_err e;
};

static void devs(const char *xml, size_t max_devices, struct parsed *p)
{
	memset(p, 0, sizeof(*p));
	outcome_init(&p->oc);
	p->paging = 99;
	p->busy = 99;
	p->dropped = 99;
	p->e = mcms_devices_parse(xml, strlen(xml), MAXB, max_devices, "mcms", &p->oc, &p->paging,
				  &p->busy, &p->dropped, p->why, sizeof(p->why));
}

static void check_dell(const struct device *d)
{
	assert_string_equal(d->source, "mcms");
	assert_string_equal(d->vendor_id, "0026B424FEB4");
	assert_int_equal(d->nmacs, 1);
	assert_string_equal(d->macs[0], "0026B424FEB4");
	assert_int_equal(d->registered, TRI_TRUE);
	assert_int_equal(d->compliant, TRI_FALSE);
	assert_string_equal(d->failure_reason, "Baseline \"Domain-Members\" non-compliant");
	assert_string_equal(d->remediation, "Install pending critical updates");
	assert_int_equal(d->disk_encrypted, TRI_TRUE);
	assert_int_equal(d->pin_lock, TRI_TRUE);
	assert_int_equal(d->jail_broken, TRI_FALSE);
	assert_string_equal(d->manufacturer, "Dell Inc.");
	assert_string_equal(d->model, "Latitude 7420");
	assert_string_equal(d->serial, "7XK2Q33");
	assert_string_equal(d->os_version, "10.0.19045");
	assert_string_equal(d->imei, "");
	assert_string_equal(d->udid, "");
	assert_string_equal(d->guid, "");
	assert_int_equal(d->last_checkin_ms, 0);
}

static void test_devices_v2(void **state)
{
	struct parsed p;

	(void)state;
	devs(dev_v2, 10, &p);
	assert_int_equal(p.e, MDM_OK);
	assert_int_equal(p.oc.kind, OUTCOME_FOUND);
	assert_int_equal(p.oc.ndevs, 1);
	assert_int_equal(p.paging, 0);
	assert_int_equal(p.busy, 0);
	assert_int_equal(p.dropped, 0);
	check_dell(&p.oc.devs[0]);
	outcome_clear(&p.oc);
}

/* Every field compared: the Intune form must read exactly as the plain one. */
static void same_device(const struct device *a, const struct device *b)
{
	assert_string_equal(a->source, b->source);
	assert_string_equal(a->vendor_id, b->vendor_id);
	assert_int_equal(a->nmacs, b->nmacs);
	for (unsigned i = 0; i < a->nmacs; i++)
		assert_string_equal(a->macs[i], b->macs[i]);
	assert_int_equal(a->mac_local, b->mac_local);
	assert_string_equal(a->guid, b->guid);
	assert_string_equal(a->udid, b->udid);
	assert_string_equal(a->imei, b->imei);
	assert_string_equal(a->meid, b->meid);
	assert_string_equal(a->serial, b->serial);
	assert_string_equal(a->hostname, b->hostname);
	assert_string_equal(a->username, b->username);
	assert_int_equal(a->ownership, b->ownership);
	assert_int_equal(a->registered, b->registered);
	assert_int_equal(a->compliant, b->compliant);
	assert_int_equal(a->disk_encrypted, b->disk_encrypted);
	assert_int_equal(a->pin_lock, b->pin_lock);
	assert_int_equal(a->jail_broken, b->jail_broken);
	assert_string_equal(a->failure_reason, b->failure_reason);
	assert_string_equal(a->remediation, b->remediation);
	assert_string_equal(a->manufacturer, b->manufacturer);
	assert_string_equal(a->model, b->model);
	assert_string_equal(a->os_version, b->os_version);
	assert_string_equal(a->phone_number, b->phone_number);
	assert_int_equal(a->last_checkin_ms, b->last_checkin_ms);
}

static void test_devices_intune_style(void **state)
{
	struct parsed a, b;

	(void)state;
	devs(dev_v2, 10, &a);
	devs(dev_v3_intune, 10, &b);
	assert_int_equal(a.e, MDM_OK);
	assert_int_equal(b.e, MDM_OK);
	assert_int_equal(b.oc.kind, OUTCOME_FOUND);
	assert_int_equal(b.oc.ndevs, 1);
	assert_int_equal(b.dropped, 0);
	same_device(&a.oc.devs[0], &b.oc.devs[0]);
	check_dell(&b.oc.devs[0]);
	outcome_clear(&a.oc);
	outcome_clear(&b.oc);
}

static void test_devices_v3_guid_mode(void **state)
{
	struct parsed p;
	const struct device *d;

	(void)state;
	devs("<ise_api><name>attributes</name><api_version>3</api_version>"
	     "<paging_info>0</paging_info><server_busy_wait_seconds>0</server_busy_wait_seconds>"
	     "<deviceList><device><guid>1759c0fd-c8da-49e8-b14f-19d85acfacea</guid><attributes>"
	     "<register_status>true</register_status><compliance><status>true</status>"
	     "</compliance><lastCheckinTimeStamp>1700000000000</lastCheckinTimeStamp>"
	     "<guid>1759c0fd-c8da-49e8-b14f-19d85acfacea</guid>"
	     "<macaddresses>0026B424FEB4, 02:26:b4:24:fe:b5,0026B424FEB4</macaddresses>"
	     "<udid>00008030-001A2B3C4D5E</udid><imei>490154203237518</imei>"
	     "<meid>a10000009296f2</meid><phone_number>+41 44 000 00 00</phone_number>"
	     "<ownership>Corporate</ownership></attributes></device></deviceList></ise_api>",
	     10, &p);
	assert_int_equal(p.e, MDM_OK);
	assert_int_equal(p.oc.ndevs, 1);
	d = &p.oc.devs[0];
	assert_string_equal(d->vendor_id, "1759c0fd-c8da-49e8-b14f-19d85acfacea");
	assert_string_equal(d->guid, "1759c0fd-c8da-49e8-b14f-19d85acfacea");
	assert_int_equal(d->nmacs, 2);
	assert_string_equal(d->macs[0], "0026B424FEB4");
	assert_string_equal(d->macs[1], "0226B424FEB5");
	assert_false(d->mac_local);
	assert_int_equal(d->last_checkin_ms, 1700000000000LL);
	assert_int_equal(d->compliant, TRI_TRUE);
	assert_string_equal(d->failure_reason, "");
	assert_string_equal(d->udid, "00008030-001A2B3C4D5E");
	assert_string_equal(d->imei, "490154203237518");
	assert_string_equal(d->meid, "A10000009296F2");
	assert_string_equal(d->phone_number, "+41 44 000 00 00");
	assert_int_equal(d->ownership, OWN_CORPORATE);
	assert_int_equal(d->disk_encrypted, TRI_UNSET);
	assert_int_equal(p.dropped, 0);
	outcome_clear(&p.oc);
}

static void test_devices_paged(void **state)
{
	struct parsed p;

	(void)state;
	devs("<ise_api><api_version>3</api_version><paging_info>2</paging_info>"
	     "<server_busy_wait_seconds>5</server_busy_wait_seconds><deviceList>"
	     "<device><macaddress>001122334455</macaddress><attributes><compliance><status>false"
	     "</status></compliance></attributes></device>"
	     "<device><macaddress>001122334456</macaddress><attributes><compliance><status>false"
	     "</status></compliance></attributes></device>"
	     "<device><macaddress>021122334457</macaddress><attributes><compliance><status>false"
	     "</status></compliance></attributes></device>"
	     "</deviceList></ise_api>",
	     3, &p);
	assert_int_equal(p.e, MDM_OK);
	assert_int_equal(p.oc.ndevs, 3);
	assert_int_equal(p.paging, 2);
	assert_int_equal(p.busy, 5);
	assert_string_equal(p.oc.devs[0].vendor_id, "001122334455");
	assert_string_equal(p.oc.devs[1].vendor_id, "001122334456");
	assert_string_equal(p.oc.devs[2].vendor_id, "021122334457");
	assert_true(p.oc.devs[2].mac_local);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(p.oc.devs[i].compliant, TRI_FALSE);
		assert_int_equal(p.oc.devs[i].registered, TRI_UNSET);
	}
	outcome_clear(&p.oc);
	/* one over the limit */
	devs("<ise_api><deviceList><device/><device/><device/><device/></deviceList></ise_api>", 3,
	     &p);
	assert_int_equal(p.e, MDM_ERR_TOOBIG);
	assert_non_null(strstr(p.why, "more than 3 devices"));
	assert_int_equal(p.oc.kind, OUTCOME_FAILED);
	assert_int_equal(p.oc.fail, FAIL_PROTOCOL);
	assert_int_equal(p.oc.ndevs, 0);
	outcome_clear(&p.oc);
	/* a huge busy wait is clamped, a bad one ignored */
	devs("<ise_api><server_busy_wait_seconds>86400</server_busy_wait_seconds><deviceList/>"
	     "</ise_api>",
	     3, &p);
	assert_int_equal(p.e, MDM_OK);
	assert_int_equal(p.busy, MCMS_BUSY_WAIT_MAX);
	devs("<ise_api><server_busy_wait_seconds>-1</server_busy_wait_seconds><deviceList/>"
	     "</ise_api>",
	     3, &p);
	assert_int_equal(p.e, MDM_OK);
	assert_int_equal(p.busy, 0);
}

static void test_devices_unset(void **state)
{
	struct parsed p;
	const struct device *d;

	(void)state;
	/* no macaddress (a single answer), empty and absent elements, odd values */
	devs("<ise_api><deviceList><device><attributes>"
	     "<register_status></register_status><compliance><status/>"
	     "<failure_reason></failure_reason></compliance><pin_lock_on>  </pin_lock_on>"
	     "<jail_broken>yes</jail_broken><lastCheckinTimeStamp>yesterday</lastCheckinTimeStamp>"
	     "<serial_number>SN 1</serial_number><udid>U-1</udid></attributes></device>"
	     "</deviceList></ise_api>",
	     10, &p);
	assert_int_equal(p.e, MDM_OK);
	assert_int_equal(p.oc.kind, OUTCOME_FOUND);
	d = &p.oc.devs[0];
	assert_int_equal(d->nmacs, 0);
	assert_int_equal(d->registered, TRI_UNSET);
	assert_int_equal(d->compliant, TRI_UNSET);
	assert_int_equal(d->disk_encrypted, TRI_UNSET);
	assert_int_equal(d->pin_lock, TRI_UNSET);
	assert_int_equal(d->jail_broken, TRI_UNSET);
	assert_int_equal(d->last_checkin_ms, 0);
	assert_string_equal(d->serial, "");
	assert_string_equal(d->vendor_id, "U-1"); /* no GUID, no MAC: the UDID */
	/* "yes", "yesterday", "SN 1" */
	assert_int_equal(p.dropped, 3);
	outcome_clear(&p.oc);
	/* a bare device: kept, nothing reported */
	devs("<ise_api><deviceList><device/></deviceList></ise_api>", 10, &p);
	assert_int_equal(p.e, MDM_OK);
	assert_int_equal(p.oc.ndevs, 1);
	assert_int_equal(p.oc.devs[0].registered, TRI_UNSET);
	assert_string_equal(p.oc.devs[0].vendor_id, "");
	outcome_clear(&p.oc);
	/* <compliance>false</compliance>, serial as the last-resort id */
	devs("<ise_api><deviceList><device><attributes><compliance> false </compliance>"
	     "<serial_number>7XK2Q33</serial_number></attributes></device></deviceList></ise_api>",
	     10, &p);
	assert_int_equal(p.e, MDM_OK);
	assert_int_equal(p.oc.devs[0].compliant, TRI_FALSE);
	assert_string_equal(p.oc.devs[0].vendor_id, "7XK2Q33");
	outcome_clear(&p.oc);
}

static void test_devices_bad_idents(void **state)
{
	struct parsed p;
	const struct device *d;

	(void)state;
	devs("<ise_api><deviceList><device><macaddress>0026B424FEZZ</macaddress><attributes>"
	     "<macaddresses>FFFFFFFFFFFF,001122334455,,000000000000,0011223344</macaddresses>"
	     "<imei>12</imei><meid>xyz</meid><guid></guid><register_status>true"
	     "</register_status></attributes></device></deviceList></ise_api>",
	     10, &p);
	assert_int_equal(p.e, MDM_OK);
	d = &p.oc.devs[0];
	assert_int_equal(d->nmacs, 1);
	assert_string_equal(d->macs[0], "001122334455");
	assert_string_equal(d->vendor_id, "001122334455");
	assert_string_equal(d->imei, "");
	assert_string_equal(d->meid, "");
	assert_int_equal(d->registered, TRI_TRUE);
	/* ZZ, broadcast, all-zero, short, imei, meid */
	assert_int_equal(p.dropped, 6);
	outcome_clear(&p.oc);
	/* more MACs than a device holds: the first five are kept, not an error */
	devs("<ise_api><deviceList><device><attributes><macaddresses>001122334401,001122334402,"
	     "001122334403,001122334404,001122334405,001122334406</macaddresses></attributes>"
	     "</device></deviceList></ise_api>",
	     10, &p);
	assert_int_equal(p.e, MDM_OK);
	assert_int_equal(p.oc.devs[0].nmacs, DEVICE_MACS_MAX);
	assert_string_equal(p.oc.devs[0].macs[4], "001122334405");
	outcome_clear(&p.oc);
}

static void test_devices_long_text(void **state)
{
	char *xml = malloc(20000);
	struct parsed p;
	size_t n = 0;

	(void)state;
	assert_non_null(xml);
	n += (size_t)snprintf(xml, 20000,
			      "<ise_api><deviceList><device><attributes><compliance>"
			      "<failure_reason>");
	/* "é" repeated: every cut must land on a character boundary */
	for (int i = 0; i < 3000; i++) {
		xml[n++] = (char)0xC3;
		xml[n++] = (char)0xA9;
	}
	snprintf(xml + n, 20000 - n,
		 "</failure_reason></compliance><model>%s</model></attributes></device>"
		 "</deviceList></ise_api>",
		 "M");
	devs(xml, 10, &p);
	assert_int_equal(p.e, MDM_OK);
	assert_int_equal(strlen(p.oc.devs[0].failure_reason), DEVICE_TEXT_MAX - 2);
	assert_int_equal((unsigned char)p.oc.devs[0].failure_reason[DEVICE_TEXT_MAX - 3], 0xA9);
	assert_string_equal(p.oc.devs[0].model, "M");
	outcome_clear(&p.oc);
	free(xml);
}

static void test_devices_not_enrolled(void **state)
{
	struct parsed p;

	(void)state;
	devs("<ise_api><name>attributes</name><api_version>3</api_version>"
	     "<paging_info>0</paging_info><deviceList/></ise_api>",
	     10, &p);
	assert_int_equal(p.e, MDM_OK);
	assert_int_equal(p.oc.kind, OUTCOME_NOT_ENROLLED);
	assert_int_equal(p.oc.ndevs, 0);
	devs("<x:ise_api xmlns:x=\"urn:y\"><x:DEVICELIST>\n</x:DEVICELIST></x:ise_api>", 10, &p);
	assert_int_equal(p.e, MDM_OK);
	assert_int_equal(p.oc.kind, OUTCOME_NOT_ENROLLED);
}

static void dev_bad(const char *xml, size_t max_body, enum mdm_err want, const char *why_has)
{
	struct outcome oc;
	uint32_t paging = 7;
	int busy = 7;
	char why[256] = "";
	enum mdm_err e;

	outcome_init(&oc);
	e = mcms_devices_parse(xml, strlen(xml), max_body, 10, "mcms", &oc, &paging, &busy, NULL,
			       why, sizeof(why));
	if (e != want)
		fail_msg("%.60s: got %s, want %s (%s)", xml, err_str(e), err_str(want), why);
	if (!strstr(why, why_has))
		fail_msg("%.60s: reason \"%s\" lacks \"%s\"", xml, why, why_has);
	/* never "not enrolled" on a failure */
	assert_int_equal(oc.kind, OUTCOME_FAILED);
	assert_int_equal(oc.fail, FAIL_PROTOCOL);
	assert_int_equal(oc.ndevs, 0);
	assert_string_equal(oc.why, why);
	assert_int_equal(paging, 0);
	assert_int_equal(busy, 0);
	outcome_clear(&oc);
}

static void test_devices_refused(void **state)
{
	static const char laughs[] =
	    "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">"
	    "<!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">"
	    "<!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">]>"
	    "<ise_api><deviceList><device><attributes><model>&lol3;</model></attributes></device>"
	    "</deviceList></ise_api>";
	char deep[512] = "";
	size_t n = 0;

	(void)state;
	dev_bad(laughs, MAXB, MDM_ERR_PARSE, "DOCTYPE");
	dev_bad("<!DOCTYPE x SYSTEM \"file:///etc/passwd\"><ise_api><deviceList/></ise_api>", MAXB,
		MDM_ERR_PARSE, "DOCTYPE");
	dev_bad("<ise_api><deviceList>&xxe;</deviceList></ise_api>", MAXB, MDM_ERR_PARSE,
		"XML error");
	dev_bad("<ise_api><name>attributes</name></ise_api>", MAXB, MDM_ERR_PARSE, "deviceList");
	dev_bad("<html><body>Service Unavailable</body></html>", MAXB, MDM_ERR_PARSE, "deviceList");
	dev_bad("garbage", MAXB, MDM_ERR_PARSE, "XML error");
	dev_bad("<ise_api><deviceList>", MAXB, MDM_ERR_PARSE, "XML error");
	dev_bad("", MAXB, MDM_ERR_PARSE, "XML error");
	dev_bad("<ise_api><paging_info>-1</paging_info><deviceList/></ise_api>", MAXB,
		MDM_ERR_PARSE, "paging_info");
	dev_bad("<ise_api><paging_info>4294967296</paging_info><deviceList/></ise_api>", MAXB,
		MDM_ERR_PARSE, "paging_info");
	dev_bad(dev_v2, sizeof(dev_v2) - 2, MDM_ERR_TOOBIG, "more than");
	/* 16 levels parse, 17 do not */
	for (int i = 0; i < MCMS_MAX_DEPTH; i++)
		n += (size_t)snprintf(deep + n, sizeof(deep) - n, "<a%d>", i);
	for (int i = MCMS_MAX_DEPTH - 1; i >= 0; i--)
		n += (size_t)snprintf(deep + n, sizeof(deep) - n, "</a%d>", i);
	{
		char ok[600];

		snprintf(ok, sizeof(ok), "<ise_api><deviceList/>%.*s</ise_api>",
			 (int)(n - strlen("<a0>") - strlen("</a0>")),
			 deep + strlen("<a0>")); /* 15 inside the root: 16 in all */
		dev_bad(deep, MAXB, MDM_ERR_PARSE, "deviceList");
		{
			struct parsed p;

			devs(ok, 10, &p);
			assert_int_equal(p.e, MDM_OK);
		}
		/* the root and 16 more: 17 */
		snprintf(ok, sizeof(ok), "<ise_api><deviceList/>%s</ise_api>", deep);
		dev_bad(ok, MAXB, MDM_ERR_PARSE, "deeper than 16");
	}
}

static void test_devices_args(void **state)
{
	struct outcome oc;
	uint32_t pg;
	int busy;
	char why[128];

	(void)state;
	outcome_init(&oc);
	assert_int_equal(mcms_devices_parse(dev_v2, strlen(dev_v2), MAXB, 10,
					    "a-source-name-that-is-much-longer-than-sixty-three-"
					    "bytes-in-all-of-it",
					    &oc, &pg, &busy, NULL, why, sizeof(why)),
			 MDM_ERR_INVALID);
	assert_int_equal(oc.kind, OUTCOME_FAILED);
	outcome_clear(&oc);
	/* a found outcome is replaced, not appended to */
	assert_int_equal(mcms_devices_parse(dev_v2, strlen(dev_v2), MAXB, 10, "mcms", &oc, &pg,
					    &busy, NULL, why, sizeof(why)),
			 MDM_OK);
	assert_int_equal(mcms_devices_parse(dev_v2, strlen(dev_v2), MAXB, 10, "mcms", &oc, &pg,
					    &busy, NULL, why, sizeof(why)),
			 MDM_OK);
	assert_int_equal(oc.ndevs, 1);
	outcome_clear(&oc);
}

/* --- actions ------------------------------------------------------------------------------ */

static void test_action_answers(void **state)
{
	bool ok = true;
	char reason[64] = "x", why[128] = "";

	(void)state;
	assert_int_equal(
	    mcms_action_parse("<ise_api><name>action</name><api_version>3</api_version>"
			      "<deviceList><device><macaddress>0026B424FEB4</macaddress><result>"
			      "<action_status>true</action_status><failure_reason></failure_reason>"
			      "</result></device></deviceList></ise_api>",
			      120, MAXB, &ok, reason, sizeof(reason), why, sizeof(why)),
	    MDM_ERR_PARSE); /* 120 bytes: the document cut short */
	{
		const char *t = "<ise_api><name>action</name><deviceList><device><result>"
				"<action_status>true</action_status><failure_reason>"
				"</failure_reason></result></device></deviceList></ise_api>";

		assert_int_equal(mcms_action_parse(t, strlen(t), MAXB, &ok, reason, sizeof(reason),
						   why, sizeof(why)),
				 MDM_OK);
		assert_true(ok);
		assert_string_equal(reason, "");
	}
	{
		const char *f = "<Ise_Api xmlns=\"urn:x\"><DeviceList><Device><Result>"
				"<Action_Status>FALSE</Action_Status><Failure_Reason> device is "
				"personally owned &amp; cannot be wiped </Failure_Reason></Result>"
				"</Device></DeviceList></Ise_Api>";

		assert_int_equal(mcms_action_parse(f, strlen(f), MAXB, &ok, reason, sizeof(reason),
						   why, sizeof(why)),
				 MDM_OK);
		assert_false(ok);
		assert_string_equal(reason, "device is personally owned & cannot be wiped");
		/* no room for a reason at all */
		assert_int_equal(
		    mcms_action_parse(f, strlen(f), MAXB, &ok, NULL, 0, why, sizeof(why)), MDM_OK);
		assert_false(ok);
		/* a small reason buffer cuts */
		assert_int_equal(
		    mcms_action_parse(f, strlen(f), MAXB, &ok, reason, 7, why, sizeof(why)),
		    MDM_OK);
		assert_string_equal(reason, "device");
		assert_int_equal(mcms_action_parse(f, strlen(f), 10, &ok, reason, sizeof(reason),
						   why, sizeof(why)),
				 MDM_ERR_TOOBIG);
		assert_false(ok);
		assert_string_equal(reason, "");
	}
	{
		const char *m = "<ise_api><deviceList><device><result><failure_reason>boom"
				"</failure_reason></result></device></deviceList></ise_api>";

		ok = true;
		assert_int_equal(mcms_action_parse(m, strlen(m), MAXB, &ok, reason, sizeof(reason),
						   why, sizeof(why)),
				 MDM_ERR_PARSE);
		assert_false(ok);
		assert_string_equal(reason, "");
		assert_non_null(strstr(why, "action_status"));
	}
	{
		const char *b = "<ise_api><result><action_status>ok</action_status></result>"
				"</ise_api>";

		assert_int_equal(mcms_action_parse(b, strlen(b), MAXB, &ok, reason, sizeof(reason),
						   why, sizeof(why)),
				 MDM_ERR_PARSE);
		assert_non_null(strstr(why, "neither true nor false"));
		b = "<ise_api><result><action_status></action_status></result></ise_api>";
		assert_int_equal(mcms_action_parse(b, strlen(b), MAXB, &ok, reason, sizeof(reason),
						   why, sizeof(why)),
				 MDM_ERR_PARSE);
	}
	{
		/* two devices: accepted only if both are */
		const char *two = "<ise_api><deviceList><device><result><action_status>false"
				  "</action_status><failure_reason>offline</failure_reason>"
				  "</result></device><device><result><action_status>true"
				  "</action_status><failure_reason>other</failure_reason>"
				  "</result></device></deviceList></ise_api>";

		assert_int_equal(mcms_action_parse(two, strlen(two), MAXB, &ok, reason,
						   sizeof(reason), why, sizeof(why)),
				 MDM_OK);
		assert_false(ok);
		assert_string_equal(reason, "offline");
	}
	{
		const char *dtd = "<!DOCTYPE a [<!ENTITY e \"true\">]><ise_api><result>"
				  "<action_status>&e;</action_status></result></ise_api>";

		assert_int_equal(mcms_action_parse(dtd, strlen(dtd), MAXB, &ok, reason,
						   sizeof(reason), why, sizeof(why)),
				 MDM_ERR_PARSE);
		assert_false(ok);
	}
}

/* --- Retry-After -------------------------------------------------------------------------- */

/* Sun, 06 Nov 1994 08:49:37 GMT */
#define RFC_DATE_MS 784111777000LL

static void retry_ok(const char *v, int64_t now, int64_t want)
{
	int64_t d = -1;

	if (mcms_retry_after_parse(v, now, &d) != MDM_OK)
		fail_msg("refused: \"%s\"", v);
	if (d != want)
		fail_msg("\"%s\": got %lld, want %lld", v, (long long)d, (long long)want);
}

static void retry_bad(const char *v)
{
	int64_t d = 42;

	if (mcms_retry_after_parse(v, RFC_DATE_MS, &d) != MDM_ERR_INVALID)
		fail_msg("accepted: \"%s\"", v ? v : "(null)");
	assert_int_equal(d, 42);
}

static void test_retry_after(void **state)
{
	(void)state;
	retry_ok("120", 0, 120000);
	retry_ok(" 0 ", 0, 0);
	retry_ok("3600", 0, 3600000);
	retry_ok("3601", 0, MCMS_RETRY_MAX_MS);
	retry_ok("99999999999999999999999999", 0, MCMS_RETRY_MAX_MS);
	retry_ok("Sun, 06 Nov 1994 08:49:37 GMT", RFC_DATE_MS - 90000, 90000);
	retry_ok("Sun, 06 Nov 1994 08:49:37 GMT", RFC_DATE_MS + 5000, 0);
	retry_ok("Sun, 06 Nov 1994 08:49:37 GMT", RFC_DATE_MS - 86400000, MCMS_RETRY_MAX_MS);
	retry_ok("Thu, 29 Feb 2024 23:59:59 GMT", 1709251199000LL - 1000, 1000);
	retry_ok("Thu, 01 Jan 1970 00:00:00 GMT", 0, 0);
	retry_bad(NULL);
	retry_bad("");
	retry_bad("   ");
	retry_bad("-5");
	retry_bad("1.5");
	retry_bad("12s");
	/* the obsolete forms recipients must still accept */
	retry_ok("Sunday, 06-Nov-94 08:49:37 GMT", RFC_DATE_MS - 1000, 1000);
	retry_ok("Wednesday, 01-May-24 12:34:56 GMT", 1714566896000LL - 2000, 2000);
	retry_ok("Sun Nov  6 08:49:37 1994", RFC_DATE_MS - 3000, 3000);
	retry_ok("Wed May 01 12:34:56 2024", 1714566896000LL - 4000, 4000);
	retry_bad("Sun, 06-Nov-94 08:49:37 GMT");
	retry_bad("Sunday, 06-Nov-1994 08:49:37 GMT");
	retry_bad("Sunday, 06 Nov 94 08:49:37 GMT");
	retry_bad("Sundae, 06-Nov-94 08:49:37 GMT");
	retry_bad("Sun Nov 6 08:49:37 1994");
	retry_bad("Sun Nov  6 08:49:37 1994 GMT");
	retry_bad("Sun Nov 31 08:49:37 1994");
	retry_bad("sun, 06 nov 1994 08:49:37 gmt");
	retry_bad("Sun, 06 Nov 1994 08:49:37 UTC");
	retry_bad("Sun, 6 Nov 1994 08:49:37 GMT");
	retry_bad("Xyz, 06 Nov 1994 08:49:37 GMT");
	retry_bad("Sun, 06 Foo 1994 08:49:37 GMT");
	retry_bad("Sun, 31 Nov 1994 08:49:37 GMT");
	retry_bad("Sun, 29 Feb 2023 08:49:37 GMT");
	retry_bad("Sun, 06 Nov 1994 24:49:37 GMT");
	retry_bad("Sun, 06 Nov 1994 08:49:37 GMTX");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_url_mdminfo),
	    cmocka_unit_test(test_url_devices),
	    cmocka_unit_test(test_url_devices_refused),
	    cmocka_unit_test(test_url_action),
	    cmocka_unit_test(test_action_body),
	    cmocka_unit_test(test_mdminfo_versions),
	    cmocka_unit_test(test_mdminfo_tolerant),
	    cmocka_unit_test(test_mdminfo_refused),
	    cmocka_unit_test(test_devices_v2),
	    cmocka_unit_test(test_devices_intune_style),
	    cmocka_unit_test(test_devices_v3_guid_mode),
	    cmocka_unit_test(test_devices_paged),
	    cmocka_unit_test(test_devices_unset),
	    cmocka_unit_test(test_devices_bad_idents),
	    cmocka_unit_test(test_devices_long_text),
	    cmocka_unit_test(test_devices_not_enrolled),
	    cmocka_unit_test(test_devices_refused),
	    cmocka_unit_test(test_devices_args),
	    cmocka_unit_test(test_action_answers),
	    cmocka_unit_test(test_retry_after),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
