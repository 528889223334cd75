#include "unit.h"

#include <stdio.h>
#include <stdlib.h>

#include "../../core/buf.h"
#include "../../gateway/verdict/merge.h"

static const struct merge_policy ALL = {.compliant_requires_all = true};
static const struct merge_policy ANY = {.compliant_requires_all = false};
static const struct merge_policy ALL_STRICT = {.compliant_requires_all = true,
					       .partial_is_unavailable = true};

/* A record from source src with vendor id vid and, unless NULL, one MAC. */
static struct device dev(const char *src, const char *vid, const char *mac)
{
	struct device d;

	memset(&d, 0, sizeof(d));
	assert_int_equal(str_copy(d.source, sizeof(d.source), src), MDM_OK);
	assert_int_equal(str_copy(d.vendor_id, sizeof(d.vendor_id), vid), MDM_OK);
	if (mac)
		assert_int_equal(device_add_mac(&d, mac), MDM_OK);
	d.registered = TRI_TRUE;
	return d;
}

static void found(struct outcome *oc, const struct device *d)
{
	outcome_init(oc);
	assert_int_equal(outcome_add(oc, d), MDM_OK);
}

static void kind(struct outcome *oc, enum outcome_kind k)
{
	outcome_init(oc);
	outcome_set(oc, k, k == OUTCOME_FAILED ? FAIL_UNREACHABLE : FAIL_NONE,
		    k == OUTCOME_FAILED ? "connection refused" : NULL);
}

static void clear_all(struct outcome *ocs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		outcome_clear(&ocs[i]);
}

/* Merges two records as found by two adapters; exactly one device must come out. */
static struct device merge_two(const struct merge_policy *p, const struct device *a,
			       const struct device *b)
{
	struct outcome ocs[2];
	struct merge_result r;
	struct device out;

	found(&ocs[0], a);
	found(&ocs[1], b);
	assert_int_equal(merge_outcomes(p, ocs, 2, &r), MDM_OK);
	assert_int_equal(r.verdict, MERGE_FOUND);
	assert_false(r.partial);
	assert_int_equal(r.ndevs, 1);
	out = r.devs[0];
	merge_result_clear(&r);
	clear_all(ocs, 2);
	return out;
}

/* --- verdicts ------------------------------------------------------------------------------ */

static void test_found_by_one_of_two(void **state)
{
	struct outcome ocs[2];
	struct merge_result r;
	struct device a = dev("sccm", "s-1", "0026B424FEB4");

	(void)state;
	found(&ocs[0], &a);
	kind(&ocs[1], OUTCOME_NOT_ENROLLED);
	assert_int_equal(merge_outcomes(&ALL, ocs, 2, &r), MDM_OK);
	assert_int_equal(r.verdict, MERGE_FOUND);
	assert_false(r.partial);
	assert_int_equal(r.ndevs, 1);
	assert_string_equal(r.devs[0].source, "sccm");
	assert_string_equal(r.devs[0].vendor_id, "s-1");
	assert_string_equal(r.devs[0].macs[0], "0026B424FEB4");
	merge_result_clear(&r);
	assert_null(r.devs);
	assert_int_equal(r.ndevs, 0);
	clear_all(ocs, 2);
	/* the other order, and a not-applicable one besides */
	kind(&ocs[0], OUTCOME_NOT_APPLICABLE);
	found(&ocs[1], &a);
	assert_int_equal(merge_outcomes(&ALL, ocs, 2, &r), MDM_OK);
	assert_int_equal(r.verdict, MERGE_FOUND);
	assert_int_equal(r.ndevs, 1);
	merge_result_clear(&r);
	clear_all(ocs, 2);
}

static void test_all_not_enrolled(void **state)
{
	struct outcome ocs[3];
	struct merge_result r;

	(void)state;
	kind(&ocs[0], OUTCOME_NOT_ENROLLED);
	kind(&ocs[1], OUTCOME_NOT_ENROLLED);
	kind(&ocs[2], OUTCOME_NOT_APPLICABLE);
	assert_int_equal(merge_outcomes(&ALL, ocs, 3, &r), MDM_OK);
	assert_int_equal(r.verdict, MERGE_NOT_ENROLLED);
	assert_false(r.partial);
	assert_int_equal(r.ndevs, 0);
	assert_null(r.devs);
	merge_result_clear(&r);
	clear_all(ocs, 3);
}

static void test_none_applicable(void **state)
{
	struct outcome ocs[2];
	struct merge_result r;

	(void)state;
	kind(&ocs[0], OUTCOME_NOT_APPLICABLE);
	kind(&ocs[1], OUTCOME_NOT_APPLICABLE);
	assert_int_equal(merge_outcomes(&ALL, ocs, 2, &r), MDM_OK);
	assert_int_equal(r.verdict, MERGE_NOT_ENROLLED);
	merge_result_clear(&r);
	/* no adapter at all */
	assert_int_equal(merge_outcomes(&ALL, ocs, 0, &r), MDM_OK);
	assert_int_equal(r.verdict, MERGE_NOT_ENROLLED);
	assert_int_equal(r.ndevs, 0);
	merge_result_clear(&r);
	clear_all(ocs, 2);
}

static void test_all_failed(void **state)
{
	struct outcome ocs[2];
	struct merge_result r;

	(void)state;
	kind(&ocs[0], OUTCOME_FAILED);
	kind(&ocs[1], OUTCOME_FAILED);
	assert_int_equal(merge_outcomes(&ALL, ocs, 2, &r), MDM_OK);
	assert_int_equal(r.verdict, MERGE_UNAVAILABLE);
	assert_false(r.partial);
	assert_int_equal(r.ndevs, 0);
	assert_null(r.devs);
	merge_result_clear(&r);
	clear_all(ocs, 2);
}

static void test_failed_and_not_enrolled(void **state)
{
	struct outcome ocs[3];
	struct merge_result r;

	(void)state;
	/* a failure is never turned into "not enrolled" */
	kind(&ocs[0], OUTCOME_NOT_ENROLLED);
	kind(&ocs[1], OUTCOME_FAILED);
	assert_int_equal(merge_outcomes(&ALL, ocs, 2, &r), MDM_OK);
	assert_int_equal(r.verdict, MERGE_UNAVAILABLE);
	merge_result_clear(&r);
	kind(&ocs[0], OUTCOME_FAILED);
	kind(&ocs[1], OUTCOME_NOT_APPLICABLE);
	kind(&ocs[2], OUTCOME_NOT_ENROLLED);
	assert_int_equal(merge_outcomes(&ANY, ocs, 3, &r), MDM_OK);
	assert_int_equal(r.verdict, MERGE_UNAVAILABLE);
	merge_result_clear(&r);
	clear_all(ocs, 3);
}

static void test_found_and_failed_is_partial(void **state)
{
	struct outcome ocs[2];
	struct merge_result r;
	struct device a = dev("sccm", "s-1", "0026B424FEB4");

	(void)state;
	found(&ocs[0], &a);
	kind(&ocs[1], OUTCOME_FAILED);
	assert_int_equal(merge_outcomes(&ALL, ocs, 2, &r), MDM_OK);
	assert_int_equal(r.verdict, MERGE_FOUND);
	assert_true(r.partial);
	assert_int_equal(r.ndevs, 1);
	assert_string_equal(r.devs[0].vendor_id, "s-1");
	merge_result_clear(&r);
	/* the policy may say a partial answer is no answer */
	assert_int_equal(merge_outcomes(&ALL_STRICT, ocs, 2, &r), MDM_OK);
	assert_int_equal(r.verdict, MERGE_UNAVAILABLE);
	assert_int_equal(r.ndevs, 0);
	assert_null(r.devs);
	merge_result_clear(&r);
	/* with nothing failed the strict policy still answers */
	outcome_clear(&ocs[1]);
	kind(&ocs[1], OUTCOME_NOT_ENROLLED);
	assert_int_equal(merge_outcomes(&ALL_STRICT, ocs, 2, &r), MDM_OK);
	assert_int_equal(r.verdict, MERGE_FOUND);
	assert_false(r.partial);
	merge_result_clear(&r);
	clear_all(ocs, 2);
}

/* --- compliance ---------------------------------------------------------------------------- */

static void test_compliance_all_true(void **state)
{
	struct device a = dev("sccm", "s-1", "0026B424FEB4");
	struct device b = dev("intune", "i-1", "0026B424FEB4");
	struct device m;

	(void)state;
	a.compliant = b.compliant = TRI_TRUE;
	m = merge_two(&ALL, &a, &b);
	assert_int_equal(m.compliant, TRI_TRUE);
	assert_string_equal(m.failure_reason, "");
	assert_string_equal(m.remediation, "");
}

static void test_compliance_all_true_false(void **state)
{
	struct device a = dev("sccm", "s-1", "0026B424FEB4");
	struct device b = dev("intune", "i-1", "0026B424FEB4");
	struct device m;

	(void)state;
	a.compliant = TRI_TRUE;
	b.compliant = TRI_FALSE;
	str_copy(b.failure_reason, sizeof(b.failure_reason), "BitLocker off");
	str_copy(b.remediation, sizeof(b.remediation), "Turn on BitLocker");
	m = merge_two(&ALL, &a, &b);
	assert_int_equal(m.compliant, TRI_FALSE);
	assert_string_equal(m.failure_reason, "intune: BitLocker off");
	assert_string_equal(m.remediation, "Turn on BitLocker");
	/* both say no: both reasons, each named by its source; no reason given reads plainly */
	a.compliant = TRI_FALSE;
	m = merge_two(&ALL, &a, &b);
	assert_int_equal(m.compliant, TRI_FALSE);
	assert_string_equal(m.failure_reason, "sccm: not compliant; intune: BitLocker off");
}

static void test_compliance_all_true_unset(void **state)
{
	struct device a = dev("sccm", "s-1", "0026B424FEB4");
	struct device b = dev("intune", "i-1", "0026B424FEB4");
	struct device m;

	(void)state;
	a.compliant = TRI_TRUE;
	b.compliant = TRI_UNSET;
	m = merge_two(&ALL, &a, &b);
	assert_int_equal(m.compliant, TRI_FALSE);
	assert_string_equal(m.failure_reason, "intune: reported no compliance state");
	/* nobody reports: still not reported */
	a.compliant = TRI_UNSET;
	m = merge_two(&ALL, &a, &b);
	assert_int_equal(m.compliant, TRI_UNSET);
	assert_string_equal(m.failure_reason, "");
	/* false + unset: false, with the false one's reason only */
	a.compliant = TRI_FALSE;
	str_copy(a.failure_reason, sizeof(a.failure_reason), "Baseline failed");
	m = merge_two(&ALL, &a, &b);
	assert_int_equal(m.compliant, TRI_FALSE);
	assert_string_equal(m.failure_reason, "sccm: Baseline failed");
}

static void test_compliance_any(void **state)
{
	struct device a = dev("sccm", "s-1", "0026B424FEB4");
	struct device b = dev("intune", "i-1", "0026B424FEB4");
	struct device m;

	(void)state;
	a.compliant = TRI_TRUE;
	b.compliant = TRI_FALSE;
	str_copy(b.failure_reason, sizeof(b.failure_reason), "BitLocker off");
	str_copy(b.remediation, sizeof(b.remediation), "Turn on BitLocker");
	m = merge_two(&ANY, &a, &b);
	assert_int_equal(m.compliant, TRI_TRUE);
	assert_string_equal(m.failure_reason, "");
	assert_string_equal(m.remediation, "");
	a.compliant = TRI_UNSET;
	m = merge_two(&ANY, &a, &b);
	assert_int_equal(m.compliant, TRI_FALSE);
	assert_string_equal(m.failure_reason, "intune: BitLocker off");
	b.compliant = TRI_UNSET;
	m = merge_two(&ANY, &a, &b);
	assert_int_equal(m.compliant, TRI_UNSET);
	a.compliant = TRI_TRUE;
	m = merge_two(&ANY, &a, &b);
	assert_int_equal(m.compliant, TRI_TRUE); /* unset does not veto under "any" */
}

static void test_single_record_keeps_own_reason(void **state)
{
	struct outcome oc;
	struct merge_result r;
	struct device a = dev("sccm", "s-1", "0026B424FEB4");

	(void)state;
	a.compliant = TRI_FALSE;
	str_copy(a.failure_reason, sizeof(a.failure_reason), "Baseline \"Domain-Members\" failed");
	str_copy(a.remediation, sizeof(a.remediation), "Install updates");
	found(&oc, &a);
	assert_int_equal(merge_outcomes(&ALL, &oc, 1, &r), MDM_OK);
	assert_int_equal(r.ndevs, 1);
	assert_int_equal(r.devs[0].compliant, TRI_FALSE);
	assert_string_equal(r.devs[0].failure_reason, "Baseline \"Domain-Members\" failed");
	assert_string_equal(r.devs[0].remediation, "Install updates");
	merge_result_clear(&r);
	outcome_clear(&oc);
	/* a lone record's unset compliance stays unset, even under compliant_requires_all */
	a.compliant = TRI_UNSET;
	a.failure_reason[0] = '\0';
	found(&oc, &a);
	assert_int_equal(merge_outcomes(&ALL, &oc, 1, &r), MDM_OK);
	assert_int_equal(r.devs[0].compliant, TRI_UNSET);
	assert_string_equal(r.devs[0].failure_reason, "");
	merge_result_clear(&r);
	outcome_clear(&oc);
}

static void test_reason_bounded(void **state)
{
	struct device recs[3];
	struct device m;

	(void)state;
	for (int i = 0; i < 3; i++) {
		char src[8];

		snprintf(src, sizeof(src), "s%d", i);
		recs[i] = dev(src, src, "0026B424FEB4");
		recs[i].compliant = TRI_FALSE;
		memset(recs[i].failure_reason, 'r', sizeof(recs[i].failure_reason) - 1);
		recs[i].failure_reason[sizeof(recs[i].failure_reason) - 1] = '\0';
	}
	merge_devices(&ALL, recs, 3, &m);
	assert_int_equal(m.compliant, TRI_FALSE);
	assert_int_equal(strlen(m.failure_reason), sizeof(m.failure_reason) - 1);
	assert_memory_equal(m.failure_reason, "s0: rrr", 7);
}

/* --- the other state attributes ------------------------------------------------------------ */

static enum tri merged_field(enum tri va, enum tri vb, size_t off)
{
	struct device recs[2] = {dev("a", "a-1", "0026B424FEB4"), dev("b", "b-1", "0026B424FEB4")};
	struct device m;

	*(enum tri *)(void *)((char *)&recs[0] + off) = va;
	*(enum tri *)(void *)((char *)&recs[1] + off) = vb;
	merge_devices(&ALL, recs, 2, &m);
	return *(enum tri *)(void *)((char *)&m + off);
}

static void test_registered(void **state)
{
	const size_t off = offsetof(struct device, registered);

	(void)state;
	assert_int_equal(merged_field(TRI_FALSE, TRI_TRUE, off), TRI_TRUE);
	assert_int_equal(merged_field(TRI_TRUE, TRI_FALSE, off), TRI_TRUE);
	assert_int_equal(merged_field(TRI_FALSE, TRI_UNSET, off), TRI_TRUE);
	assert_int_equal(merged_field(TRI_UNSET, TRI_UNSET, off), TRI_TRUE);
	assert_int_equal(merged_field(TRI_TRUE, TRI_TRUE, off), TRI_TRUE);
	assert_int_equal(merged_field(TRI_FALSE, TRI_FALSE, off), TRI_FALSE);
}

static void test_encryption_and_pin_all_true(void **state)
{
	const size_t offs[2] = {offsetof(struct device, disk_encrypted),
				offsetof(struct device, pin_lock)};

	(void)state;
	for (int i = 0; i < 2; i++) {
		assert_int_equal(merged_field(TRI_TRUE, TRI_TRUE, offs[i]), TRI_TRUE);
		assert_int_equal(merged_field(TRI_TRUE, TRI_FALSE, offs[i]), TRI_FALSE);
		assert_int_equal(merged_field(TRI_FALSE, TRI_TRUE, offs[i]), TRI_FALSE);
		assert_int_equal(merged_field(TRI_TRUE, TRI_UNSET, offs[i]), TRI_TRUE);
		assert_int_equal(merged_field(TRI_UNSET, TRI_TRUE, offs[i]), TRI_TRUE);
		assert_int_equal(merged_field(TRI_FALSE, TRI_UNSET, offs[i]), TRI_FALSE);
		assert_int_equal(merged_field(TRI_UNSET, TRI_UNSET, offs[i]), TRI_UNSET);
	}
}

static void test_jail_broken_any_true(void **state)
{
	const size_t off = offsetof(struct device, jail_broken);

	(void)state;
	assert_int_equal(merged_field(TRI_FALSE, TRI_TRUE, off), TRI_TRUE);
	assert_int_equal(merged_field(TRI_TRUE, TRI_FALSE, off), TRI_TRUE);
	assert_int_equal(merged_field(TRI_TRUE, TRI_UNSET, off), TRI_TRUE);
	assert_int_equal(merged_field(TRI_FALSE, TRI_FALSE, off), TRI_FALSE);
	assert_int_equal(merged_field(TRI_FALSE, TRI_UNSET, off), TRI_FALSE);
	assert_int_equal(merged_field(TRI_UNSET, TRI_UNSET, off), TRI_UNSET);
}

/* --- grouping records into devices ---------------------------------------------------------- */

static void test_shared_mac_merges(void **state)
{
	struct device a = dev("sccm", "s-1", "0026B424FEB4");
	struct device b = dev("intune", "i-1", "0026B424FEB5");
	struct device m;

	(void)state;
	device_add_mac(&a, "0026B424FEB5");
	device_add_mac(&b, "0026B424FEB6");
	a.last_checkin_ms = 1700000000000;
	b.last_checkin_ms = 1700000500000;
	a.fetched_at_ms = 2000;
	b.fetched_at_ms = 1000;
	str_copy(a.manufacturer, sizeof(a.manufacturer), "Dell Inc.");
	str_copy(b.manufacturer, sizeof(b.manufacturer), "Dell");
	str_copy(b.model, sizeof(b.model), "Latitude 7420");
	str_copy(b.serial, sizeof(b.serial), "7XK2Q33");
	b.ownership = OWN_CORPORATE;
	m = merge_two(&ALL, &a, &b);
	assert_string_equal(m.source, "sccm"); /* the first record wins for facts */
	assert_string_equal(m.vendor_id, "s-1");
	assert_int_equal(m.nmacs, 3);
	assert_string_equal(m.macs[0], "0026B424FEB4");
	assert_string_equal(m.macs[1], "0026B424FEB5");
	assert_string_equal(m.macs[2], "0026B424FEB6");
	assert_int_equal(m.last_checkin_ms, 1700000500000); /* the newest */
	assert_int_equal(m.fetched_at_ms, 1000);	    /* the oldest fetch */
	assert_string_equal(m.manufacturer, "Dell Inc.");
	assert_string_equal(m.model, "Latitude 7420"); /* taken where the first has none */
	assert_string_equal(m.serial, "7XK2Q33");
	assert_int_equal(m.ownership, OWN_CORPORATE);
	/* the newest check-in whichever record holds it */
	a.last_checkin_ms = 1700000900000;
	m = merge_two(&ALL, &a, &b);
	assert_int_equal(m.last_checkin_ms, 1700000900000);
}

static void test_mac_union_capped(void **state)
{
	struct device a = dev("sccm", "s-1", "020000000001");
	struct device b = dev("intune", "i-1", "020000000001");
	struct device m;

	(void)state;
	device_add_mac(&a, "020000000002");
	device_add_mac(&a, "020000000003");
	device_add_mac(&b, "020000000004");
	device_add_mac(&b, "020000000005");
	device_add_mac(&b, "020000000006");
	device_add_mac(&b, "020000000003");
	m = merge_two(&ALL, &a, &b);
	assert_int_equal(m.nmacs, DEVICE_MACS_MAX);
	assert_string_equal(m.macs[0], "020000000001");
	assert_string_equal(m.macs[1], "020000000002");
	assert_string_equal(m.macs[2], "020000000003");
	assert_string_equal(m.macs[3], "020000000004");
	assert_string_equal(m.macs[4], "020000000005");
	assert_false(device_has_mac(&m, "020000000006"));
}

static void test_nothing_shared_two_devices(void **state)
{
	struct outcome ocs[2];
	struct merge_result r;
	struct device a = dev("sccm", "s-1", "0026B424FEB4");
	struct device b = dev("intune", "i-1", "0026B424FEB5");

	(void)state;
	/* the same user and host name do not make one device: a user has many */
	str_copy(a.username, sizeof(a.username), "jdoe");
	str_copy(b.username, sizeof(b.username), "jdoe");
	str_copy(a.hostname, sizeof(a.hostname), "laptop");
	str_copy(b.hostname, sizeof(b.hostname), "laptop");
	a.compliant = TRI_TRUE;
	b.compliant = TRI_FALSE;
	found(&ocs[0], &a);
	found(&ocs[1], &b);
	assert_int_equal(merge_outcomes(&ALL, ocs, 2, &r), MDM_OK);
	assert_int_equal(r.verdict, MERGE_FOUND);
	assert_int_equal(r.ndevs, 2);
	assert_string_equal(r.devs[0].vendor_id, "s-1");
	assert_int_equal(r.devs[0].compliant, TRI_TRUE);
	assert_int_equal(r.devs[0].nmacs, 1);
	assert_string_equal(r.devs[1].vendor_id, "i-1");
	assert_int_equal(r.devs[1].compliant, TRI_FALSE);
	merge_result_clear(&r);
	clear_all(ocs, 2);
}

static void test_grouped_by_guid_imei_and_others(void **state)
{
	struct device a, b, m;

	(void)state;
	a = dev("sccm", "s-1", "0026B424FEB4");
	b = dev("intune", "i-1", "0026B424FEB5");
	str_copy(a.guid, sizeof(a.guid), "1759c0fd-c8da-49e8-b14f-19d85acfacea");
	str_copy(b.guid, sizeof(b.guid), "1759c0fd-c8da-49e8-b14f-19d85acfacea");
	m = merge_two(&ALL, &a, &b);
	assert_int_equal(m.nmacs, 2);

	a = dev("sccm", "s-1", NULL);
	b = dev("intune", "i-1", NULL);
	str_copy(a.imei, sizeof(a.imei), "352099001761481");
	str_copy(b.imei, sizeof(b.imei), "352099001761481");
	str_copy(b.phone_number, sizeof(b.phone_number), "+44 20 7946 0958");
	m = merge_two(&ALL, &a, &b);
	assert_string_equal(m.imei, "352099001761481");
	assert_string_equal(m.phone_number, "+44 20 7946 0958");

	a = dev("sccm", "s-1", NULL);
	b = dev("intune", "i-1", NULL);
	str_copy(a.udid, sizeof(a.udid), "abc-def");
	str_copy(b.udid, sizeof(b.udid), "ABC-DEF");
	assert_true(merge_same_device(&a, &b)); /* UDIDs compare without case */
	a.udid[0] = b.udid[0] = '\0';
	str_copy(a.meid, sizeof(a.meid), "A0000000002A3B");
	str_copy(b.meid, sizeof(b.meid), "A0000000002A3B");
	assert_true(merge_same_device(&a, &b));
	a.meid[0] = b.meid[0] = '\0';
	str_copy(a.serial, sizeof(a.serial), "7XK2Q33");
	str_copy(b.serial, sizeof(b.serial), "7xk2q33");
	assert_true(merge_same_device(&a, &b));
	a.serial[0] = '\0';
	assert_false(merge_same_device(&a, &b));
	/* empty identifiers never match each other */
	b.serial[0] = '\0';
	assert_false(merge_same_device(&a, &b));
	/* GUIDs are compared exactly */
	str_copy(a.guid, sizeof(a.guid), "AbC");
	str_copy(b.guid, sizeof(b.guid), "abc");
	assert_false(merge_same_device(&a, &b));
}

static void test_grouping_three_adapters(void **state)
{
	struct outcome ocs[3];
	struct merge_result r;
	struct device a1 = dev("a", "a-1", "0026B424FEB4");
	struct device a2 = dev("a", "a-2", "0026B424FE00");
	struct device b1 = dev("b", "b-1", "0026B424FEB4");
	struct device c1 = dev("c", "c-1", NULL);

	(void)state;
	str_copy(a2.guid, sizeof(a2.guid), "g-2");
	str_copy(c1.guid, sizeof(c1.guid), "g-2");
	outcome_init(&ocs[0]);
	assert_int_equal(outcome_add(&ocs[0], &a1), MDM_OK);
	assert_int_equal(outcome_add(&ocs[0], &a2), MDM_OK);
	found(&ocs[1], &b1);
	found(&ocs[2], &c1);
	assert_int_equal(merge_outcomes(&ALL, ocs, 3, &r), MDM_OK);
	assert_int_equal(r.verdict, MERGE_FOUND);
	assert_int_equal(r.ndevs, 2);
	assert_string_equal(r.devs[0].vendor_id, "a-1");
	assert_string_equal(r.devs[0].macs[0], "0026B424FEB4");
	assert_string_equal(r.devs[1].vendor_id, "a-2");
	assert_string_equal(r.devs[1].guid, "g-2");
	merge_result_clear(&r);
	clear_all(ocs, 3);
}

static void test_grouping_is_transitive(void **state)
{
	struct outcome ocs[3];
	struct merge_result r;
	struct device a = dev("a", "a-1", "0026B424FE01");
	struct device b = dev("b", "b-1", "0026B424FE02");
	struct device c = dev("c", "c-1", "0026B424FE01");
	enum merge_verdict verdict;
	size_t ndevs;
	unsigned nmacs;

	(void)state;
	/*
	 * A record that bridges two earlier ones (a: MAC 01, b: MAC 02, c: MACs 01 and 02: one
	 * device seen by three sources) unites their groups: one device, not {a, c} and {b}.
	 */
	device_add_mac(&c, "0026B424FE02");
	found(&ocs[0], &a);
	found(&ocs[1], &b);
	found(&ocs[2], &c);
	assert_int_equal(merge_outcomes(&ALL, ocs, 3, &r), MDM_OK);
	verdict = r.verdict;
	ndevs = r.ndevs;
	nmacs = r.ndevs ? r.devs[0].nmacs : 0;
	merge_result_clear(&r);
	clear_all(ocs, 3);
	assert_int_equal(verdict, MERGE_FOUND);
	assert_int_equal(ndevs, 1);
	assert_int_equal(nmacs, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_found_by_one_of_two),
	    cmocka_unit_test(test_all_not_enrolled),
	    cmocka_unit_test(test_none_applicable),
	    cmocka_unit_test(test_all_failed),
	    cmocka_unit_test(test_failed_and_not_enrolled),
	    cmocka_unit_test(test_found_and_failed_is_partial),
	    cmocka_unit_test(test_compliance_all_true),
	    cmocka_unit_test(test_compliance_all_true_false),
	    cmocka_unit_test(test_compliance_all_true_unset),
	    cmocka_unit_test(test_compliance_any),
	    cmocka_unit_test(test_single_record_keeps_own_reason),
	    cmocka_unit_test(test_reason_bounded),
	    cmocka_unit_test(test_registered),
	    cmocka_unit_test(test_encryption_and_pin_all_true),
	    cmocka_unit_test(test_jail_broken_any_true),
	    cmocka_unit_test(test_shared_mac_merges),
	    cmocka_unit_test(test_mac_union_capped),
	    cmocka_unit_test(test_nothing_shared_two_devices),
	    cmocka_unit_test(test_grouped_by_guid_imei_and_others),
	    cmocka_unit_test(test_grouping_three_adapters),
	    cmocka_unit_test(test_grouping_is_transitive),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
