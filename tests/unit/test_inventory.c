#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../../adapters/inventory.h"
#include "../../core/buf.h"
#include "../../core/log.h"

/* --- temp files ----------------------------------------------------------------------------- */

static char tmp_path[64];

/* Writes text to a fresh temp file; its name is left in tmp_path. */
static const char *write_tmp(const char *text)
{
	int fd;
	FILE *f;

	snprintf(tmp_path, sizeof(tmp_path), "/tmp/mdmgw_test_inventory_XXXXXX");
	fd = mkstemp(tmp_path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	return tmp_path;
}

/* Loads text, which must load; the temp file is gone again afterwards. */
static struct adapter *load_ok(const char *text)
{
	char why[512] = "";
	struct adapter *a = inventory_create("inv", write_tmp(text), why, sizeof(why));

	unlink(tmp_path);
	if (!a)
		fail_msg("inventory refused: %s", why);
	return a;
}

/* Loads text, which must be refused with "<path>: " followed by want. */
static void load_bad(const char *text, const char *want)
{
	char why[512] = "", full[640];
	struct adapter *a = inventory_create("inv", write_tmp(text), why, sizeof(why));

	unlink(tmp_path);
	if (a) {
		adapter_destroy(a);
		fail_msg("inventory accepted: %s", text);
	}
	snprintf(full, sizeof(full), "%s: %s", tmp_path, want);
	assert_string_equal(why, full);
}

/* --- lookups -------------------------------------------------------------------------------- */

static void on_outcome(void *arg, struct outcome *oc)
{
	outcome_move(arg, oc);
}

/* Looks v up as kind; the outcome (answered inline) is left in *oc (outcome_clear it). */
static void look(struct adapter *a, enum ident_kind kind, const char *v, struct outcome *oc)
{
	struct ident id;

	assert_int_equal(ident_parse(kind, v, strlen(v), &id, NULL, 0), MDM_OK);
	outcome_init(oc);
	oc->kind = OUTCOME_FAILED; /* must be overwritten by the answer */
	assert_int_equal(adapter_lookup(a, &id, 0, on_outcome, oc), MDM_OK);
}

/* Looks v up and expects exactly the one device vendor id vid. */
static void look_one(struct adapter *a, enum ident_kind kind, const char *v, const char *vid)
{
	struct outcome oc;

	look(a, kind, v, &oc);
	if (oc.kind != OUTCOME_FOUND || oc.ndevs != 1 || strcmp(oc.devs[0].vendor_id, vid) != 0)
		fail_msg("%s %s: kind %d, %zu devices, want %s", ident_kind_name(kind), v, oc.kind,
			 oc.ndevs, vid);
	outcome_clear(&oc);
}

static void look_none(struct adapter *a, enum ident_kind kind, const char *v)
{
	struct outcome oc;

	look(a, kind, v, &oc);
	assert_int_equal(oc.kind, OUTCOME_NOT_ENROLLED);
	assert_int_equal(oc.ndevs, 0);
	outcome_clear(&oc);
}

static const char *const sample =
    "{\"devices\": [\n"
    "  {\"id\": \"inv-001\", \"macs\": [\"00:26:b4:24:fe:b4\", \"0026.b424.feb5\"],\n"
    "   \"guid\": \"1759c0fd-c8da-49e8-b14f-19d85acfacea\", \"udid\": "
    "\"00008030-001A2B3C4D5E802E\",\n"
    "   \"imei\": \"352099001761481\", \"meid\": \"a0000000002a3b\", \"serial\": "
    "\"C02XK1ABJG5H\",\n"
    "   \"hostname\": \"Laptop-01.Corp\", \"username\": \"JDoe\", \"ownership\": \"corporate\",\n"
    "   \"registered\": true, \"compliant\": false, \"failure_reason\": \"Disk not encrypted\",\n"
    "   \"remediation\": \"Enable FileVault\", \"disk_encrypted\": false, \"pin_lock\": true,\n"
    "   \"jail_broken\": false, \"manufacturer\": \"Apple\", \"model\": \"MacBook Pro\",\n"
    "   \"os_version\": \"14.4\", \"phone_number\": \"+1 555 0100\",\n"
    "   \"last_checkin\": 1700000000000},\n"
    "  {\"id\": \"inv-002\", \"macs\": [\"DA-A1-19-00-00-02\"], \"username\": \"jdoe\",\n"
    "   \"ownership\": \"personal\", \"meid\": \"270113177609606898\"},\n"
    "  {\"id\": \"inv-003\", \"serial\": \"SN-3\", \"username\": \"asmith\", \"ownership\": "
    "\"unknown\"}\n"
    "]}\n";

static void test_load_and_fields(void **state)
{
	struct adapter *a;
	struct outcome oc;
	const struct device *d;

	(void)state;
	a = load_ok(sample);
	assert_int_equal(inventory_count(a), 3);
	assert_string_equal(a->name, "inv");
	look(a, IDENT_MAC, "0026B424FEB4", &oc);
	assert_int_equal(oc.kind, OUTCOME_FOUND);
	assert_int_equal(oc.ndevs, 1);
	d = &oc.devs[0];
	assert_string_equal(d->source, "inv");
	assert_string_equal(d->vendor_id, "inv-001");
	assert_int_equal(d->nmacs, 2);
	assert_string_equal(d->macs[0], "0026B424FEB4");
	assert_string_equal(d->macs[1], "0026B424FEB5");
	assert_false(d->mac_local);
	assert_string_equal(d->guid, "1759c0fd-c8da-49e8-b14f-19d85acfacea");
	assert_string_equal(d->udid, "00008030-001A2B3C4D5E802E");
	assert_string_equal(d->imei, "352099001761481");
	assert_string_equal(d->meid, "A0000000002A3B"); /* normalised as a query would be */
	assert_string_equal(d->serial, "C02XK1ABJG5H");
	assert_string_equal(d->hostname, "laptop-01.corp");
	assert_string_equal(d->username, "jdoe");
	assert_int_equal(d->ownership, OWN_CORPORATE);
	assert_int_equal(d->registered, TRI_TRUE);
	assert_int_equal(d->compliant, TRI_FALSE);
	assert_string_equal(d->failure_reason, "Disk not encrypted");
	assert_string_equal(d->remediation, "Enable FileVault");
	assert_int_equal(d->disk_encrypted, TRI_FALSE);
	assert_int_equal(d->pin_lock, TRI_TRUE);
	assert_int_equal(d->jail_broken, TRI_FALSE);
	assert_string_equal(d->manufacturer, "Apple");
	assert_string_equal(d->model, "MacBook Pro");
	assert_string_equal(d->os_version, "14.4");
	assert_string_equal(d->phone_number, "+1 555 0100");
	assert_int_equal(d->last_checkin_ms, 1700000000000);
	assert_true(d->fetched_at_ms > 1600000000000LL);
	outcome_clear(&oc);
	/* what a file leaves out stays "not reported" */
	look(a, IDENT_MAC, "DAA119000002", &oc);
	assert_int_equal(oc.ndevs, 1);
	d = &oc.devs[0];
	assert_true(d->mac_local);
	assert_int_equal(d->ownership, OWN_PERSONAL);
	assert_int_equal(d->registered, TRI_UNSET);
	assert_int_equal(d->compliant, TRI_UNSET);
	assert_int_equal(d->jail_broken, TRI_UNSET);
	assert_int_equal(d->last_checkin_ms, 0);
	assert_string_equal(d->model, "");
	outcome_clear(&oc);
	adapter_destroy(a);
}

static void test_lookup_every_kind(void **state)
{
	struct adapter *a;

	(void)state;
	a = load_ok(sample);
	/* any MAC form in the file, looked up by any form (normalised) */
	look_one(a, IDENT_MAC, "0026B424FEB4", "inv-001");
	look_one(a, IDENT_MAC, "00-26-B4-24-FE-B5", "inv-001");
	look_one(a, IDENT_MAC, "da:a1:19:00:00:02", "inv-002");
	look_one(a, IDENT_GUID, "1759c0fd-c8da-49e8-b14f-19d85acfacea", "inv-001");
	look_one(a, IDENT_UDID, "00008030-001A2B3C4D5E802E", "inv-001");
	look_one(a, IDENT_IMEI, "352099001761481", "inv-001");
	look_one(a, IDENT_MEID, "A0000000002A3B", "inv-001");
	look_one(a, IDENT_MEID, "a0000000002a3b", "inv-001");
	look_one(a, IDENT_MEID, "270113177609606898", "inv-002");
	look_one(a, IDENT_SERIAL, "C02XK1ABJG5H", "inv-001");
	look_one(a, IDENT_SERIAL, "SN-3", "inv-003");
	/* host and user names without regard to case */
	look_one(a, IDENT_HOSTNAME, "laptop-01.corp", "inv-001");
	look_one(a, IDENT_HOSTNAME, "LAPTOP-01.CORP", "inv-001");
	look_one(a, IDENT_USERNAME, "ASmith", "inv-003");
	adapter_destroy(a);
}

static void test_user_with_two_devices(void **state)
{
	struct adapter *a;
	struct outcome oc;
	bool seen1 = false, seen2 = false;

	(void)state;
	a = load_ok(sample);
	look(a, IDENT_USERNAME, "JDOE", &oc);
	assert_int_equal(oc.kind, OUTCOME_FOUND);
	assert_int_equal(oc.ndevs, 2);
	for (size_t i = 0; i < oc.ndevs; i++) {
		seen1 |= strcmp(oc.devs[i].vendor_id, "inv-001") == 0;
		seen2 |= strcmp(oc.devs[i].vendor_id, "inv-002") == 0;
	}
	assert_true(seen1 && seen2);
	outcome_clear(&oc);
	adapter_destroy(a);
}

static void test_unknown_not_enrolled(void **state)
{
	struct adapter *a;

	(void)state;
	a = load_ok(sample);
	look_none(a, IDENT_MAC, "0026B424FEB6");
	look_none(a, IDENT_GUID, "1759C0FD-C8DA-49E8-B14F-19D85ACFACEA"); /* GUIDs are exact */
	look_none(a, IDENT_GUID, "nope");
	look_none(a, IDENT_UDID, "ffff");
	look_none(a, IDENT_IMEI, "35209900176148");
	look_none(a, IDENT_MEID, "A0000000002A3C");
	look_none(a, IDENT_SERIAL, "C02XK1ABJG5");
	look_none(a, IDENT_HOSTNAME, "laptop-02.corp");
	look_none(a, IDENT_USERNAME, "jdoe2");
	/* an identifier of one kind does not answer for another */
	look_none(a, IDENT_SERIAL, "jdoe");
	look_none(a, IDENT_HOSTNAME, "SN-3");
	adapter_destroy(a);
}

static void test_same_mac_twice_listed_once(void **state)
{
	struct adapter *a;
	struct outcome oc;

	(void)state;
	a = load_ok("{\"devices\": [{\"id\": \"d\", \"macs\": [\"0026B424FEB4\", "
		    "\"00:26:b4:24:fe:b4\"]}]}");
	look(a, IDENT_MAC, "0026B424FEB4", &oc);
	assert_int_equal(oc.kind, OUTCOME_FOUND);
	assert_int_equal(oc.ndevs, 1);
	assert_int_equal(oc.devs[0].nmacs, 1);
	outcome_clear(&oc);
	adapter_destroy(a);
}

/* --- listing -------------------------------------------------------------------------------- */

static void on_page(void *arg, struct adapter_page *page)
{
	struct adapter_page *out = arg;

	outcome_move(&out->oc, &page->oc);
	memcpy(out->next_cursor, page->next_cursor, sizeof(out->next_cursor));
}

static enum mdm_err list(struct adapter *a, const char *cursor, struct adapter_page *page)
{
	memset(page, 0, sizeof(*page));
	outcome_init(&page->oc);
	strcpy(page->next_cursor, "unset");
	return adapter_list(a, cursor, on_page, page);
}

static void test_list_pages(void **state)
{
	const size_t n = 2 * INVENTORY_PAGE + 500;
	struct buf b;
	struct adapter *a;
	struct adapter_page page;
	char cursor[64] = "";
	size_t seen = 0, pages = 0;

	(void)state;
	buf_init(&b, 1 << 22);
	assert_int_equal(buf_addstr(&b, "{\"devices\": ["), MDM_OK);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(
		    buf_addf(&b, "%s{\"id\": \"d%zu\", \"macs\": [\"02:00:00:%02zX:%02zX:%02zX\"]}",
			     i ? "," : "", i, (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff),
		    MDM_OK);
	assert_int_equal(buf_addstr(&b, "]}"), MDM_OK);
	a = load_ok(buf_str(&b));
	buf_free(&b);
	assert_int_equal(inventory_count(a), n);
	for (;;) {
		assert_int_equal(list(a, cursor, &page), MDM_OK);
		assert_int_equal(page.oc.kind, OUTCOME_FOUND);
		for (size_t i = 0; i < page.oc.ndevs; i++) {
			char vid[32];

			snprintf(vid, sizeof(vid), "d%zu", seen + i);
			assert_string_equal(page.oc.devs[i].vendor_id, vid);
		}
		seen += page.oc.ndevs;
		pages++;
		if (pages < 3) {
			char want[32];

			assert_int_equal(page.oc.ndevs, INVENTORY_PAGE);
			snprintf(want, sizeof(want), "%zu", pages * INVENTORY_PAGE);
			assert_string_equal(page.next_cursor, want);
		} else {
			assert_int_equal(page.oc.ndevs, 500);
			assert_string_equal(page.next_cursor, "");
		}
		memcpy(cursor, page.next_cursor, sizeof(cursor));
		outcome_clear(&page.oc);
		if (!cursor[0])
			break;
	}
	assert_int_equal(pages, 3);
	assert_int_equal(seen, n);
	/* cursors it never handed out */
	assert_int_equal(list(a, "x", &page), MDM_ERR_INVALID);
	assert_int_equal(list(a, "10x", &page), MDM_ERR_INVALID);
	assert_int_equal(list(a, "2501", &page), MDM_ERR_INVALID);
	/* the end itself: an empty last page */
	assert_int_equal(list(a, "2500", &page), MDM_OK);
	assert_int_equal(page.oc.ndevs, 0);
	assert_string_equal(page.next_cursor, "");
	outcome_clear(&page.oc);
	adapter_destroy(a);
}

static void test_empty_inventory(void **state)
{
	struct adapter *a;
	struct adapter_page page;

	(void)state;
	a = load_ok("{\"devices\": []}");
	assert_int_equal(inventory_count(a), 0);
	look_none(a, IDENT_MAC, "0026B424FEB4");
	assert_int_equal(list(a, "", &page), MDM_OK);
	assert_int_equal(page.oc.kind, OUTCOME_NOT_ENROLLED); /* "zero devices" */
	assert_int_equal(page.oc.ndevs, 0);
	assert_string_equal(page.next_cursor, "");
	outcome_clear(&page.oc);
	adapter_destroy(a);
}

/* --- refusals -------------------------------------------------------------------------------- */

static void test_not_json(void **state)
{
	char why[512] = "", want[128];
	struct adapter *a;

	(void)state;
	a = inventory_create("inv", write_tmp("{\"devices\": [\n  {\"id\": \"a\",}\n]}\n"), why,
			     sizeof(why));
	unlink(tmp_path);
	assert_null(a);
	snprintf(want, sizeof(want), "%s: line 2 column ", tmp_path);
	assert_memory_equal(why, want, strlen(want));
	a = inventory_create("inv", write_tmp("not json"), why, sizeof(why));
	unlink(tmp_path);
	assert_null(a);
	snprintf(want, sizeof(want), "%s: line 1 column ", tmp_path);
	assert_memory_equal(why, want, strlen(want));
	/* duplicate keys are an error, not a silent overwrite */
	a = inventory_create("inv",
			     write_tmp("{\"devices\": [{\"id\": \"a\", \"id\": \"b\", \"serial\": "
				       "\"S\"}]}"),
			     why, sizeof(why));
	unlink(tmp_path);
	assert_null(a);
	snprintf(want, sizeof(want), "%s: line 1 column ", tmp_path);
	assert_memory_equal(why, want, strlen(want));
	/* an escaped NUL is refused by the parser */
	a = inventory_create("inv",
			     write_tmp("{\"devices\": [{\"id\": \"a\\u0000b\", \"serial\": "
				       "\"S\"}]}"),
			     why, sizeof(why));
	unlink(tmp_path);
	assert_null(a);
	snprintf(want, sizeof(want), "%s: line 1 column ", tmp_path);
	assert_memory_equal(why, want, strlen(want));
}

static void test_no_file(void **state)
{
	char why[512] = "";

	(void)state;
	assert_null(inventory_create("inv", "/nonexistent/mdmgw/inv.json", why, sizeof(why)));
	assert_string_equal(why, "/nonexistent/mdmgw/inv.json: cannot read the inventory file");
	assert_null(inventory_create("inv", "/tmp", why, sizeof(why)));
	assert_string_equal(why, "/tmp: cannot read the inventory file");
}

static void test_top_level(void **state)
{
	const char *msg = "must be an object {\"devices\": [...]}";

	(void)state;
	load_bad("[]", msg);
	load_bad("{}", msg);
	load_bad("{\"devices\": {}}", msg);
	load_bad("{\"devices\": \"x\"}", msg);
	load_bad("{\"devices\": [], \"extra\": 1}", msg);
	load_bad("{\"Devices\": []}", msg);
	load_bad("{\"devices\": [5]}", "devices[0]: must be an object");
}

static void test_device_refusals(void **state)
{
	(void)state;
	load_bad(
	    "{\"devices\": [{\"id\": \"a\", \"macs\": [\"0026B424FEB4\"], \"colour\": \"red\"}]}",
	    "devices[0].colour: unknown key");
	/* wrong types */
	load_bad("{\"devices\": [{\"id\": \"a\", \"macs\": [\"0026B424FEB4\"], \"registered\": "
		 "\"yes\"}]}",
		 "devices[0].registered: must be true or false");
	load_bad("{\"devices\": [{\"id\": \"a\", \"macs\": [\"0026B424FEB4\"], \"compliant\": 1}]}",
		 "devices[0].compliant: must be true or false");
	load_bad("{\"devices\": [{\"id\": \"a\", \"macs\": [\"0026B424FEB4\"], \"model\": 5}]}",
		 "devices[0].model: must be a string");
	load_bad("{\"devices\": [{\"id\": 7, \"macs\": [\"0026B424FEB4\"]}]}",
		 "devices[0].id: must be a string");
	load_bad("{\"devices\": [{\"id\": \"a\", \"guid\": null}]}",
		 "devices[0].guid: must be a string");
	load_bad("{\"devices\": [{\"id\": \"a\", \"macs\": \"0026B424FEB4\"}]}",
		 "devices[0].macs: must be an array of MAC addresses");
	load_bad("{\"devices\": [{\"id\": \"a\", \"macs\": [42]}]}",
		 "devices[0].macs[0]: must be a string");
	/* bad values, with the device's index */
	load_bad("{\"devices\": [{\"id\": \"a\", \"serial\": \"S\"}, {\"id\": \"b\", \"macs\": "
		 "[\"0026B424FEB4\", \"01:00:5E:00:00:01\"]}]}",
		 "devices[1].macs[1]: MAC address is a multicast address, not a device address");
	load_bad("{\"devices\": [{\"id\": \"a\", \"macs\": [\"a:b:c:d:e:f\"]}]}",
		 "devices[0].macs[0]: MAC address must be 12 hex digits, alone or as "
		 "aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff or aabb.ccdd.eeff");
	load_bad("{\"devices\": [{\"id\": \"a\", \"macs\": [\"020000000001\", \"020000000002\", "
		 "\"020000000003\", \"020000000004\", \"020000000005\", \"020000000006\"]}]}",
		 "devices[0].macs: holds more than 5 MAC addresses");
	load_bad("{\"devices\": [{\"macs\": [\"0026B424FEB4\"]}]}", "devices[0].id: required");
	load_bad("{\"devices\": [{\"id\": \"\", \"macs\": [\"0026B424FEB4\"]}]}",
		 "devices[0].id: required");
	load_bad("{\"devices\": [{\"id\": \"a\", \"username\": \"jdoe\", \"model\": \"X\"}]}",
		 "devices[0].macs: a device needs at least one identifier");
	load_bad("{\"devices\": [{\"id\": \"a\", \"macs\": []}]}",
		 "devices[0].macs: a device needs at least one identifier");
	load_bad("{\"devices\": [{\"id\": \"a\", \"serial\": \"S\", \"ownership\": \"company\"}]}",
		 "devices[0].ownership: must be \"corporate\", \"personal\" or \"unknown\"");
	load_bad("{\"devices\": [{\"id\": \"a\", \"serial\": \"S\", \"ownership\": 1}]}",
		 "devices[0].ownership: must be \"corporate\", \"personal\" or \"unknown\"");
	load_bad("{\"devices\": [{\"id\": \"a\", \"serial\": \"S\", \"last_checkin\": -1}]}",
		 "devices[0].last_checkin: must be milliseconds since the epoch");
	load_bad("{\"devices\": [{\"id\": \"a\", \"serial\": \"S\", \"last_checkin\": 1.5}]}",
		 "devices[0].last_checkin: must be milliseconds since the epoch");
	load_bad("{\"devices\": [{\"id\": \"a\", \"imei\": \"123\"}]}",
		 "devices[0].imei: IMEI must be 14 to 16 decimal digits");
	load_bad("{\"devices\": [{\"id\": \"a\", \"guid\": \"has space\"}]}",
		 "devices[0].guid: GUID may hold printable ASCII only");
	load_bad("{\"devices\": [{\"id\": \"a\", \"serial\": \"S\", \"username\": \"j\\u0001\"}]}",
		 "devices[0].username: user name holds a control character");
}

static void test_zero_checkin_allowed(void **state)
{
	struct adapter *a;

	(void)state;
	a = load_ok("{\"devices\": [{\"id\": \"a\", \"serial\": \"S\", \"last_checkin\": 0}]}");
	assert_int_equal(inventory_count(a), 1);
	adapter_destroy(a);
}

static int setup(void **state)
{
	(void)state;
	log_set_level(LOGL_ERR);
	return 0;
}

static void on_action_result(void *arg, struct action_result *res)
{
	*(struct action_result *)arg = *res;
}

static void test_actions(void **state)
{
	struct adapter *a = load_ok(
	    "{\"devices\": [{\"id\": \"d1\", \"macs\": [\"0026B424FEB4\"], \"registered\": true, "
	    "\"compliant\": false, \"failure_reason\": \"old OS\", \"pin_lock\": false}, "
	    "{\"id\": \"d2\", \"macs\": [\"0026B424FEB5\"], \"ownership\": \"personal\", "
	    "\"registered\": true}]}");
	struct action_result res;
	struct outcome oc;
	enum action_kind last;
	unsigned count = 9;

	(void)state;
	assert_int_equal(inventory_action_count(a, "d1", &count, &last), MDM_OK);
	assert_int_equal(count, 0);
	assert_int_equal(inventory_action_count(a, "nope", &count, NULL), MDM_ERR_NOTFOUND);
	/* PIN lock: the device reports its PIN lock on from now on. */
	memset(&res, 0, sizeof(res));
	assert_int_equal(adapter_action(a, "d1", ACTION_PIN_LOCK, on_action_result, &res), MDM_OK);
	assert_true(res.accepted);
	look(a, IDENT_MAC, "0026B424FEB4", &oc);
	assert_int_equal(oc.kind, OUTCOME_FOUND);
	assert_int_equal(oc.devs[0].pin_lock, TRI_TRUE);
	assert_int_equal(oc.devs[0].registered, TRI_TRUE);
	outcome_clear(&oc);
	/* A wipe unenrols it, as an MDM would. */
	assert_int_equal(adapter_action(a, "d1", ACTION_CORPORATE_WIPE, on_action_result, &res),
			 MDM_OK);
	assert_true(res.accepted);
	look(a, IDENT_MAC, "0026B424FEB4", &oc);
	assert_int_equal(oc.devs[0].registered, TRI_FALSE);
	assert_int_equal(oc.devs[0].compliant, TRI_UNSET);
	assert_string_equal(oc.devs[0].failure_reason, "");
	outcome_clear(&oc);
	assert_int_equal(inventory_action_count(a, "d1", &count, &last), MDM_OK);
	assert_int_equal(count, 2);
	assert_int_equal(last, ACTION_CORPORATE_WIPE);
	/* Ownership reaches the record; the other device is untouched. */
	look(a, IDENT_MAC, "0026B424FEB5", &oc);
	assert_int_equal(oc.devs[0].ownership, OWN_PERSONAL);
	assert_int_equal(oc.devs[0].registered, TRI_TRUE);
	outcome_clear(&oc);
	/* An unknown vendor id is rejected by the MDM, not failed. */
	assert_int_equal(adapter_action(a, "nope", ACTION_FULL_WIPE, on_action_result, &res),
			 MDM_OK);
	assert_false(res.accepted);
	assert_int_equal(res.fail, FAIL_NONE);
	assert_non_null(strstr(res.reason, "nope"));
	adapter_destroy(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_load_and_fields),
	    cmocka_unit_test(test_lookup_every_kind),
	    cmocka_unit_test(test_user_with_two_devices),
	    cmocka_unit_test(test_unknown_not_enrolled),
	    cmocka_unit_test(test_same_mac_twice_listed_once),
	    cmocka_unit_test(test_list_pages),
	    cmocka_unit_test(test_empty_inventory),
	    cmocka_unit_test(test_not_json),
	    cmocka_unit_test(test_no_file),
	    cmocka_unit_test(test_top_level),
	    cmocka_unit_test(test_device_refusals),
	    cmocka_unit_test(test_zero_checkin_allowed),
	    cmocka_unit_test(test_actions),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
