/*
 * test_mcms: the cloud MDM adapter against the ISE MDM API simulator (tests/sim/mdm_sim.py), a
 * real HTTPS server in a child process with its own test CA, Basic authentication, paging and
 * fault switches. The data set's devices are described in tests/sim/README.md.
 */
#include "unit.h"

#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../adapters/mcms.h"
#include "../../core/clock.h"
#include "../../core/log.h"

#define SIM_USER "ise-api"
#define SIM_PASSWORD "Str0ng:pw"
#define SIM_DATA "tests/sim/mdm_data.json"
#define ALICE_PHONE "F018983A4B5C"
#define ALICE_PHONE_GUID "b1f6a2e0-1c3d-4e5f-8a9b-0c1d2e3f4a5b"
#define BOB_IPAD "A483E7445566"
#define CAROL_PHONE "5CF938A1B2C3"
#define ALICE_PC_GUID "1759c0fd-c8da-49e8-b14f-19d85acfacea"
#define DAVE_IMAC "10DDB1CAFE01"
#define ERIN_PHONE "3C286D112233"
#define UNREGISTERED "484BAA987654"

/* --- the simulator as a child process --------------------------------------------------------- */

#define SIM_SCRIPT "tests/sim/mdm_sim.py"
#include "simproc.h"

static char g_dir[] = "/tmp/mdmgw-test-mcms-XXXXXX";
static char g_expired_cert[512], g_expired_key[512];
static struct sim g_sim; /* the data set, --query-max-size 25 so listings page */

/* --- adapters ----------------------------------------------------------------------------------
 */

static char g_url[128];

static void config_for(struct mcms_config *cfg, const struct sim *s)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(g_url, sizeof(g_url), "https://127.0.0.1:%u", s->port);
	cfg->name = "mcms-test";
	cfg->url = g_url;
	cfg->http.ca_file = g_ca;
	cfg->http.user = SIM_USER;
	cfg->http.password = SIM_PASSWORD;
	cfg->http.max_connections = 4;
	cfg->list_timeout_ms = 10000;
}

static struct adapter *make(const struct mcms_config *cfg)
{
	char why[256] = "";
	struct adapter *a = NULL;

	if (mcms_create(g_engine, cfg, &a, why, sizeof(why)) != MDM_OK)
		fprintf(stderr, "mcms_create: %s\n", why);
	assert_non_null(a);
	return a;
}

static struct adapter *make_default(void)
{
	struct mcms_config cfg;

	config_for(&cfg, &g_sim);
	return make(&cfg);
}

/* lookup: one identifier, waited for; exactly one callback. */
static void lookup(struct adapter *a, enum ident_kind kind, const char *value, int64_t timeout_ms,
		   struct wait *w)
{
	struct ident id;

	assert_int_equal(ident_parse(kind, value, strlen(value), &id, NULL, 0), MDM_OK);
	wait_init(w);
	assert_int_equal(adapter_lookup(a, &id, clock_mono_ms() + timeout_ms, on_lookup, w),
			 MDM_OK);
	assert_int_equal(wait_for(w, 1, 15000), 1);
}

static void list(struct adapter *a, const char *cursor, struct wait *w)
{
	wait_init(w);
	assert_int_equal(adapter_list(a, cursor, on_page, w), MDM_OK);
	assert_int_equal(wait_for(w, 1, 60000), 1);
}

static void test_conn(struct adapter *a, struct wait *w)
{
	wait_init(w);
	assert_int_equal(adapter_test_connection(a, on_test, w), MDM_OK);
	assert_int_equal(wait_for(w, 1, 15000), 1);
}

static void act(struct adapter *a, const char *vendor_id, enum action_kind kind, struct wait *w)
{
	wait_init(w);
	assert_int_equal(adapter_action(a, vendor_id, kind, on_action, w), MDM_OK);
	assert_int_equal(wait_for(w, 1, 40000), 1);
}

/* find: the record carrying mac in oc, NULL when none. */
static const struct device *find(const struct outcome *oc, const char *mac)
{
	for (size_t i = 0; i < oc->ndevs; i++)
		if (device_has_mac(&oc->devs[i], mac))
			return &oc->devs[i];
	return NULL;
}

/* --- fixtures ----------------------------------------------------------------------------------
 */

static int group_setup(void **state)
{
	static const char *const qms25[] = {"--query-max-size", "25", NULL};
	struct http_client_config cc;
	char cmd[700], why[256];

	(void)state;
	unsetenv("https_proxy");
	unsetenv("HTTPS_PROXY");
	unsetenv("all_proxy");
	unsetenv("ALL_PROXY");
	log_set_level(LOGL_ERR);
	if (!mkdtemp(g_dir))
		return -1;
	snprintf(cmd, sizeof(cmd), "bash tests/sim/make_certs.sh '%s' >/dev/null", g_dir);
	if (system(cmd) != 0)
		return -1;
	snprintf(g_ca, sizeof(g_ca), "%s/ca.pem", g_dir);
	snprintf(g_cert, sizeof(g_cert), "%s/server.pem", g_dir);
	snprintf(g_key, sizeof(g_key), "%s/server-key.pem", g_dir);
	snprintf(g_other_cert, sizeof(g_other_cert), "%s/other-server.pem", g_dir);
	snprintf(g_other_key, sizeof(g_other_key), "%s/other-server-key.pem", g_dir);
	snprintf(g_expired_cert, sizeof(g_expired_cert), "%s/expired-server.pem", g_dir);
	snprintf(g_expired_key, sizeof(g_expired_key), "%s/expired-server-key.pem", g_dir);
	if (sim_start(&g_sim, g_cert, g_key, SIM_DATA, qms25) != 0)
		return -1;
	g_engine = http_engine_create(NULL);
	memset(&cc, 0, sizeof(cc));
	cc.name = "sim-control";
	cc.ca_file = g_ca;
	g_ctl = g_engine ? http_client_create(g_engine, &cc, why, sizeof(why)) : NULL;
	return g_ctl ? 0 : -1;
}

static int group_teardown(void **state)
{
	char cmd[600];

	(void)state;
	http_engine_destroy(g_engine);
	sim_stop(&g_sim);
	sims_stop(0, 0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Every test starts with no fault, zero counts and the data set as shipped. */
static int reset(void **state)
{
	(void)state;
	sims_stop(0, g_sim.pid);
	sim_reset(&g_sim);
	return 0;
}

/* --- lookups -----------------------------------------------------------------------------------
 */

/* Every identifier the NAC asks by reaches the MDM with its own criterion. */
static void test_lookup_every_kind(void **state)
{
	struct adapter *a = make_default();
	const struct device *d;
	struct wait w;

	(void)state;
	lookup(a, IDENT_MAC, "f0:18:98:3a:4b:5c", 5000, &w);
	assert_int_equal(w.oc.kind, OUTCOME_FOUND);
	assert_int_equal(w.oc.ndevs, 1);
	d = &w.oc.devs[0];
	assert_true(device_has_mac(d, ALICE_PHONE));
	assert_string_equal(d->guid, ALICE_PHONE_GUID);
	assert_string_equal(d->vendor_id, ALICE_PHONE_GUID);
	assert_string_equal(d->source, "mcms-test");
	assert_int_equal(d->registered, TRI_TRUE);
	assert_int_equal(d->compliant, TRI_TRUE);
	assert_string_equal(d->model, "iPhone 14");
	assert_true(d->fetched_at_ms > 0);
	wait_free(&w);

	lookup(a, IDENT_MAC, "02:00:00:00:00:99", 5000, &w);
	assert_int_equal(w.oc.kind, OUTCOME_NOT_ENROLLED);
	wait_free(&w);

	lookup(a, IDENT_GUID, ALICE_PC_GUID, 5000, &w);
	assert_int_equal(w.oc.kind, OUTCOME_FOUND);
	assert_true(device_has_mac(&w.oc.devs[0], "0026B424FEB4"));
	assert_true(device_has_mac(&w.oc.devs[0], "0026B424FEB5"));
	assert_int_equal(w.oc.devs[0].compliant, TRI_FALSE);
	assert_non_null(strstr(w.oc.devs[0].failure_reason, "\"Domain-Members\""));
	wait_free(&w);

	lookup(a, IDENT_UDID, "00008110-000C1D2E3F40801E", 5000, &w);
	assert_int_equal(w.oc.kind, OUTCOME_FOUND);
	assert_true(device_has_mac(&w.oc.devs[0], BOB_IPAD));
	assert_int_equal(w.oc.devs[0].compliant, TRI_FALSE);
	assert_string_equal(w.oc.devs[0].failure_reason, "No passcode set");
	wait_free(&w);

	lookup(a, IDENT_IMEI, "354406100876543", 5000, &w);
	assert_int_equal(w.oc.kind, OUTCOME_FOUND);
	assert_true(device_has_mac(&w.oc.devs[0], CAROL_PHONE));
	wait_free(&w);
	lookup(a, IDENT_MEID, "99000112233445", 5000, &w);
	assert_int_equal(w.oc.kind, OUTCOME_FOUND);
	assert_true(device_has_mac(&w.oc.devs[0], CAROL_PHONE));
	wait_free(&w);

	lookup(a, IDENT_USERNAME, "alice", 5000, &w);
	assert_int_equal(w.oc.kind, OUTCOME_FOUND);
	assert_int_equal(w.oc.ndevs, 2);
	assert_non_null(find(&w.oc, ALICE_PHONE));
	assert_non_null(find(&w.oc, "0026B424FEB4"));
	wait_free(&w);

	lookup(a, IDENT_HOSTNAME, "alice-iphone", 5000, &w);
	assert_int_equal(w.oc.kind, OUTCOME_FOUND);
	assert_true(device_has_mac(&w.oc.devs[0], ALICE_PHONE));
	wait_free(&w);

	/* No GUID at the MDM: none is made up, the MAC is the vendor id. */
	lookup(a, IDENT_MAC, DAVE_IMAC, 5000, &w);
	assert_int_equal(w.oc.kind, OUTCOME_FOUND);
	assert_string_equal(w.oc.devs[0].guid, "");
	assert_string_equal(w.oc.devs[0].vendor_id, DAVE_IMAC);
	assert_int_equal(w.oc.devs[0].pin_lock, TRI_UNSET);
	wait_free(&w);

	lookup(a, IDENT_MAC, UNREGISTERED, 5000, &w);
	assert_int_equal(w.oc.kind, OUTCOME_FOUND);
	assert_int_equal(w.oc.devs[0].registered, TRI_FALSE);
	assert_int_equal(w.oc.devs[0].compliant, TRI_UNSET);
	wait_free(&w);

	/* No criterion of the API has serial numbers. */
	lookup(a, IDENT_SERIAL, "F2LXK0AAHG7F", 5000, &w);
	assert_int_equal(w.oc.kind, OUTCOME_NOT_APPLICABLE);
	wait_free(&w);

	/* One negotiation for all of it, and each query once. */
	assert_int_equal(count(&g_sim, "by_route", "mdminfo"), 1);
	assert_int_equal(count(&g_sim, "by_query", "macaddress"), 4);
	assert_int_equal(count(&g_sim, "by_query", "guid"), 1);
	assert_int_equal(count(&g_sim, "by_query", "udid"), 1);
	assert_int_equal(count(&g_sim, "by_query", "imei"), 1);
	assert_int_equal(count(&g_sim, "by_query", "meid"), 1);
	assert_int_equal(count(&g_sim, "by_query", "username"), 1);
	assert_int_equal(
	    count(&g_sim, "by_query", "guidhn") + count(&g_sim, "by_query", "hostname"), 1);
	adapter_destroy(a);
}

/* Intune's dialect: capitalised elements, a default namespace, no key in single answers. */
static void test_lookup_capitalised(void **state)
{
	static const char *const caps[] = {"--capitalised", NULL};
	struct sim s;
	struct mcms_config cfg;
	struct adapter *a;
	struct wait w;

	(void)state;
	assert_int_equal(sim_start(&s, g_cert, g_key, SIM_DATA, caps), 0);
	config_for(&cfg, &s);
	a = make(&cfg);
	/* The second NIC of alice's PC: the record must carry the MAC that was asked. */
	lookup(a, IDENT_MAC, "0026B424FEB5", 5000, &w);
	assert_int_equal(w.oc.kind, OUTCOME_FOUND);
	assert_true(device_has_mac(&w.oc.devs[0], "0026B424FEB5"));
	assert_int_equal(w.oc.devs[0].compliant, TRI_FALSE);
	assert_string_equal(w.oc.devs[0].guid, ALICE_PC_GUID);
	assert_string_equal(w.oc.devs[0].remediation, "Install pending critical updates");
	wait_free(&w);
	lookup(a, IDENT_MAC, DAVE_IMAC, 5000, &w);
	assert_int_equal(w.oc.kind, OUTCOME_FOUND);
	assert_true(device_has_mac(&w.oc.devs[0], DAVE_IMAC));
	assert_string_equal(w.oc.devs[0].vendor_id, DAVE_IMAC);
	assert_int_equal(w.oc.devs[0].compliant, TRI_TRUE);
	wait_free(&w);
	lookup(a, IDENT_GUID, ALICE_PHONE_GUID, 5000, &w);
	assert_int_equal(w.oc.kind, OUTCOME_FOUND);
	assert_string_equal(w.oc.devs[0].guid, ALICE_PHONE_GUID);
	assert_true(device_has_mac(&w.oc.devs[0], ALICE_PHONE));
	wait_free(&w);
	list(a, "", &w);
	assert_int_equal(w.page.oc.kind, OUTCOME_FOUND);
	assert_int_equal(w.page.oc.ndevs, 67);
	wait_free(&w);
	adapter_destroy(a);
	sim_stop(&s);
}

/* A kind the negotiated version lacks is not applicable: never FAILED, never a verdict. */
static void test_version_lacks_kind(void **state)
{
	struct adapter *a = make_default();
	struct wait w;

	(void)state;
	fault(&g_sim, "max_version", 2);
	lookup(a, IDENT_GUID, ALICE_PHONE_GUID, 5000, &w);
	assert_int_equal(w.oc.kind, OUTCOME_NOT_APPLICABLE);
	wait_free(&w);
	lookup(a, IDENT_HOSTNAME, "alice-iphone", 5000, &w);
	assert_int_equal(w.oc.kind, OUTCOME_NOT_APPLICABLE);
	wait_free(&w);
	lookup(a, IDENT_IMEI, "354406100876543", 5000, &w);
	assert_int_equal(w.oc.kind, OUTCOME_FOUND);
	wait_free(&w);
	adapter_destroy(a);
	sim_reset(&g_sim);
	fault(&g_sim, "max_version", 1);
	a = make_default();
	lookup(a, IDENT_UDID, "00008110-000C1D2E3F40801E", 5000, &w);
	assert_int_equal(w.oc.kind, OUTCOME_NOT_APPLICABLE);
	wait_free(&w);
	/* v1 has only the path form: the MAC query still works. */
	lookup(a, IDENT_MAC, BOB_IPAD, 5000, &w);
	assert_int_equal(w.oc.kind, OUTCOME_FOUND);
	assert_int_equal(w.oc.devs[0].compliant, TRI_FALSE);
	wait_free(&w);
	adapter_destroy(a);
}

/* A 404 on a device request: negotiate again once, then the query at the new path. */
static void test_renegotiate_on_404(void **state)
{
	struct adapter *a = make_default();
	struct wait w;

	(void)state;
	lookup(a, IDENT_MAC, ALICE_PHONE, 5000, &w);
	assert_int_equal(w.oc.kind, OUTCOME_FOUND);
	assert_string_equal(w.oc.devs[0].guid, ALICE_PHONE_GUID); /* v3 */
	wait_free(&w);
	fault(&g_sim, "max_version", 2); /* the v3 path is gone */
	lookup(a, IDENT_MAC, ALICE_PHONE, 5000, &w);
	assert_int_equal(w.oc.kind, OUTCOME_FOUND);
	assert_true(device_has_mac(&w.oc.devs[0], ALICE_PHONE));
	assert_string_equal(w.oc.devs[0].guid, ""); /* v2 answers carry no GUID */
	wait_free(&w);
	assert_int_equal(count(&g_sim, "by_route", "mdminfo"), 2);
	assert_int_equal(count(&g_sim, "by_route", "other"), 1); /* the one 404 */
	adapter_destroy(a);
}

/* Concurrent first callers share one negotiation. */
static void test_shared_negotiation(void **state)
{
	struct adapter *a = make_default();
	struct wait w[8];
	struct ident id;

	(void)state;
	fault(&g_sim, "latency", 200);
	assert_int_equal(ident_parse(IDENT_MAC, ALICE_PHONE, 12, &id, NULL, 0), MDM_OK);
	for (int i = 0; i < 8; i++) {
		wait_init(&w[i]);
		assert_int_equal(adapter_lookup(a, &id, clock_mono_ms() + 10000, on_lookup, &w[i]),
				 MDM_OK);
	}
	for (int i = 0; i < 8; i++) {
		assert_int_equal(wait_for(&w[i], 1, 15000), 1);
		assert_int_equal(w[i].oc.kind, OUTCOME_FOUND);
		wait_free(&w[i]);
	}
	assert_int_equal(count(&g_sim, "by_route", "mdminfo"), 1);
	adapter_destroy(a);
}

/* --- listing -----------------------------------------------------------------------------------
 */

/* 67 devices through pages of 25: every device once, cursors on the adapter's side. */
static void test_list_pages(void **state)
{
	struct mcms_config cfg;
	struct adapter *a;
	struct wait w;

	(void)state;
	config_for(&cfg, &g_sim);
	cfg.listing = MCMS_LIST_ALL;
	a = make(&cfg);
	list(a, "", &w);
	assert_int_equal(w.page.oc.kind, OUTCOME_FOUND);
	assert_int_equal(w.page.oc.ndevs, 67);
	assert_string_equal(w.page.next_cursor, "");
	for (size_t i = 0; i < w.page.oc.ndevs; i++)
		for (size_t j = i + 1; j < w.page.oc.ndevs; j++)
			assert_string_not_equal(w.page.oc.devs[i].macs[0],
						w.page.oc.devs[j].macs[0]);
	assert_non_null(find(&w.page.oc, "02AB0000003C"));
	assert_non_null(find(&w.page.oc, ALICE_PHONE));
	wait_free(&w);
	assert_int_equal(count(&g_sim, "by_query", "all"), 3);
	/* A cursor of nothing held, or not ours: expired, never a silent empty page. */
	list(a, "g99:0", &w);
	assert_int_equal(w.page.oc.kind, OUTCOME_FAILED);
	assert_non_null(strstr(w.page.oc.why, "cursor expired"));
	wait_free(&w);
	/* A page failing fails the whole listing. */
	fault(&g_sim, "garbage", 1);
	list(a, "", &w);
	assert_int_equal(w.page.oc.kind, OUTCOME_FAILED);
	assert_int_equal(w.page.oc.ndevs, 0);
	wait_free(&w);
	adapter_destroy(a);
}

/* Non-compliant-only MDM: "auto" switches; leavers are confirmed one by one. */
static void test_list_noncompliant_confirmed(void **state)
{
	static const char *const nc[] = {"--noncompliant-only", "--query-max-size", "4", NULL};
	struct sim s;
	struct mcms_config cfg;
	struct adapter *a;
	const struct device *d;
	struct wait w;
	char *b;

	(void)state;
	assert_int_equal(sim_start(&s, g_cert, g_key, SIM_DATA, nc), 0);
	config_for(&cfg, &s);
	a = make(&cfg); /* listing "auto" */
	list(a, "", &w);
	assert_int_equal(w.page.oc.kind, OUTCOME_FOUND);
	assert_int_equal(w.page.oc.ndevs, 15);
	for (size_t i = 0; i < w.page.oc.ndevs; i++)
		assert_int_equal(w.page.oc.devs[i].compliant, TRI_FALSE);
	assert_non_null(find(&w.page.oc, BOB_IPAD));
	assert_non_null(find(&w.page.oc, ERIN_PHONE));
	wait_free(&w);
	assert_int_equal(count(&s, "by_status", "403"), 1); /* the one refused full listing */
	/* bob becomes compliant; erin's phone is unenrolled (gone from the MDM). */
	b = ctl(&s, HTTP_POST, "/_sim/device?mac=" BOB_IPAD "&compliant=true");
	assert_non_null(b);
	free(b);
	b = ctl(&s, HTTP_POST, "/_sim/device?mac=" ERIN_PHONE "&remove=1");
	assert_non_null(b);
	free(b);
	list(a, "", &w);
	assert_int_equal(w.page.oc.kind, OUTCOME_FOUND);
	assert_int_equal(w.page.oc.ndevs, 15);
	d = find(&w.page.oc, BOB_IPAD);
	assert_non_null(d);
	assert_int_equal(d->compliant, TRI_TRUE); /* confirmed by its own query */
	assert_int_equal(d->registered, TRI_TRUE);
	d = find(&w.page.oc, ERIN_PHONE);
	assert_non_null(d);
	assert_int_equal(d->registered, TRI_FALSE); /* absent is not compliant */
	assert_int_not_equal(d->compliant, TRI_TRUE);
	wait_free(&w);
	assert_int_equal(count(&s, "by_query", "macaddress"), 2);
	assert_int_equal(count(&s, "by_status", "403"), 1); /* no second full try */
	/* Next time neither is a leaver any more. */
	list(a, "", &w);
	assert_int_equal(w.page.oc.ndevs, 13);
	wait_free(&w);
	assert_int_equal(count(&s, "by_query", "macaddress"), 2);
	adapter_destroy(a);
	sim_stop(&s);
}

/* --- throttling --------------------------------------------------------------------------------
 */

/* 429 + Retry-After: nothing goes to the MDM before it ends; a listing waits it out. */
static void test_retry_after_honoured(void **state)
{
	struct adapter *a = make_default();
	struct wait w;
	long long before;
	int64_t t0;

	(void)state;
	lookup(a, IDENT_MAC, ALICE_PHONE, 5000, &w); /* negotiated */
	wait_free(&w);
	fault(&g_sim, "throttle", 2);
	t0 = clock_mono_ms();
	lookup(a, IDENT_MAC, ALICE_PHONE, 5000, &w);
	assert_int_equal(w.oc.kind, OUTCOME_FAILED);
	assert_int_equal(w.oc.fail, FAIL_THROTTLED);
	wait_free(&w);
	fault(&g_sim, "throttle", 0);
	before = count(&g_sim, "requests", NULL);
	/* Deadline before the hold ends: fails at once, without a request. */
	lookup(a, IDENT_MAC, ALICE_PHONE, 500, &w);
	assert_int_equal(w.oc.kind, OUTCOME_FAILED);
	assert_int_equal(w.oc.fail, FAIL_THROTTLED);
	assert_non_null(strstr(w.oc.why, "wait"));
	wait_free(&w);
	assert_true(clock_mono_ms() - t0 < 1500);
	assert_int_equal(count(&g_sim, "requests", NULL), before);
	/* A listing waits for the end of the hold, then goes. */
	list(a, "", &w);
	assert_int_equal(w.page.oc.kind, OUTCOME_FOUND);
	assert_int_equal(w.page.oc.ndevs, 67);
	assert_true(clock_mono_ms() - t0 >= 1900);
	wait_free(&w);
	assert_int_equal(count(&g_sim, "by_status", "429"), 1);
	adapter_destroy(a);
}

/* server_busy_wait_seconds: the data is used, and the MDM is left alone that long. */
static void test_server_busy(void **state)
{
	struct adapter *a = make_default();
	struct wait w;
	long long before;

	(void)state;
	fault(&g_sim, "server_busy", 2);
	lookup(a, IDENT_MAC, BOB_IPAD, 5000, &w);
	assert_int_equal(w.oc.kind, OUTCOME_FOUND);
	assert_int_equal(w.oc.devs[0].compliant, TRI_FALSE);
	wait_free(&w);
	before = count(&g_sim, "requests", NULL);
	lookup(a, IDENT_MAC, ALICE_PHONE, 300, &w);
	assert_int_equal(w.oc.kind, OUTCOME_FAILED);
	assert_int_equal(w.oc.fail, FAIL_THROTTLED);
	assert_non_null(strstr(w.oc.why, "server_busy_wait_seconds"));
	wait_free(&w);
	assert_int_equal(count(&g_sim, "requests", NULL), before);
	/* A lookup whose deadline outlasts the hold waits for it and is answered. */
	fault(&g_sim, "server_busy", 0);
	lookup(a, IDENT_MAC, ALICE_PHONE, 5000, &w);
	assert_int_equal(w.oc.kind, OUTCOME_FOUND);
	wait_free(&w);
	adapter_destroy(a);
}

/* --- faults ------------------------------------------------------------------------------------
 */

static void expect_failed(struct adapter *a, enum fail_kind fk, const char *text, int64_t ms)
{
	struct wait w;

	lookup(a, IDENT_MAC, ALICE_PHONE, ms, &w);
	assert_int_equal(w.oc.kind, OUTCOME_FAILED);
	assert_int_equal(w.oc.ndevs, 0);
	if (fk != FAIL_NONE)
		assert_int_equal(w.oc.fail, fk);
	if (!strstr(w.oc.why, text))
		fprintf(stderr, "why: %s\n", w.oc.why);
	assert_non_null(strstr(w.oc.why, text));
	wait_free(&w);
}

static void test_faults_fail(void **state)
{
	struct mcms_config cfg;
	struct adapter *a;
	struct wait w;

	(void)state;
	config_for(&cfg, &g_sim);
	cfg.http.max_body = 1024 * 1024;
	cfg.http.breaker_failures = 0;
	a = make(&cfg);
	lookup(a, IDENT_MAC, ALICE_PHONE, 5000, &w);
	wait_free(&w);
	fault(&g_sim, "garbage", 1);
	expect_failed(a, FAIL_PROTOCOL, "devices", 5000);
	fault(&g_sim, "garbage", 0);
	fault(&g_sim, "huge", 3);
	expect_failed(a, FAIL_PROTOCOL, "larger than", 10000);
	fault(&g_sim, "huge", 0);
	fault(&g_sim, "status", 500);
	expect_failed(a, FAIL_UNREACHABLE, "500", 5000);
	fault(&g_sim, "status", 0);
	fault(&g_sim, "stall", 1);
	expect_failed(a, FAIL_TIMEOUT, "deadline", 1000);
	fault(&g_sim, "stall", 0);
	/* and the MDM is asked normally once the fault is gone */
	lookup(a, IDENT_MAC, ALICE_PHONE, 5000, &w);
	assert_int_equal(w.oc.kind, OUTCOME_FOUND);
	wait_free(&w);
	adapter_destroy(a);
}

/* --- actions -----------------------------------------------------------------------------------
 */

static void test_action_forwarding(void **state)
{
	struct adapter *a = make_default();
	struct wait w;
	char *b;
	json_t *root, *arr;

	(void)state;
	act(a, ALICE_PHONE_GUID, ACTION_PIN_LOCK, &w); /* a GUID vendor id, v3 */
	assert_true(w.act.accepted);
	assert_int_equal(w.act.fail, FAIL_NONE);
	assert_string_equal(w.act.reason, "");
	wait_free(&w);
	act(a, DAVE_IMAC, ACTION_CORPORATE_WIPE, &w); /* a MAC vendor id */
	assert_true(w.act.accepted);
	wait_free(&w);
	/* the MDM's refusal passed through */
	act(a, CAROL_PHONE, ACTION_FULL_WIPE, &w);
	assert_false(w.act.accepted);
	assert_int_equal(w.act.fail, FAIL_NONE);
	assert_string_equal(w.act.reason, "full wipe is not allowed on a personal device");
	wait_free(&w);
	act(a, UNREGISTERED, ACTION_PIN_LOCK, &w);
	assert_false(w.act.accepted);
	assert_string_equal(w.act.reason, "device is not enrolled");
	wait_free(&w);
	/* exactly the accepted ones reached the MDM, each once */
	b = ctl(&g_sim, HTTP_GET, "/_sim/actions");
	assert_non_null(b);
	root = json_loads(b, 0, NULL);
	free(b);
	arr = json_object_get(root, "actions");
	assert_int_equal(json_array_size(arr), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 0), "guid")),
			    ALICE_PHONE_GUID);
	assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 0), "action")),
			    "pin_lock");
	assert_string_equal(
	    json_string_value(json_object_get(json_array_get(arr, 1), "macaddress")), DAVE_IMAC);
	json_decref(root);
	/* failures to ask: fail set, reason given */
	fault(&g_sim, "status", 500);
	act(a, BOB_IPAD, ACTION_PIN_LOCK, &w);
	assert_false(w.act.accepted);
	assert_int_not_equal(w.act.fail, FAIL_NONE);
	assert_non_null(strstr(w.act.reason, "500"));
	wait_free(&w);
	fault(&g_sim, "status", 403);
	act(a, BOB_IPAD, ACTION_PIN_LOCK, &w);
	assert_int_equal(w.act.fail, FAIL_AUTH);
	wait_free(&w);
	fault(&g_sim, "status", 0);
	/* a 404 makes us negotiate again and retry once */
	fault(&g_sim, "max_version", 2);
	act(a, BOB_IPAD, ACTION_PIN_LOCK, &w);
	assert_true(w.act.accepted);
	wait_free(&w);
	assert_int_equal(count(&g_sim, "by_route", "other"), 1); /* the one 404 */
	assert_int_equal(count(&g_sim, "by_route", "mdminfo"), 2);
	adapter_destroy(a);
}

/* --- test_connection ---------------------------------------------------------------------------
 */

static void expect_test(struct adapter *a, bool ok, const char *text)
{
	struct wait w;

	test_conn(a, &w);
	if (!strstr(w.test.message, text))
		fprintf(stderr, "message: %s\n", w.test.message);
	assert_int_equal(w.test.ok, ok);
	assert_non_null(strstr(w.test.message, text));
	wait_free(&w);
}

static void test_connection_causes(void **state)
{
	static const char *const inst[] = {"--instance", "tenant7", NULL};
	static const char *const norole[] = {"--role", "none", NULL};
	struct mcms_config cfg;
	struct adapter *a;
	struct sim s;
	unsigned port;

	(void)state;
	/* success: version and query_max_size */
	a = make_default();
	expect_test(a, true,
		    "Connection to server is successful: API version 3, query_max_size 25");
	expect_test(a, true, "vendor Cisco");
	adapter_destroy(a);
	/* wrong password: 401 */
	config_for(&cfg, &g_sim);
	cfg.http.password = "nope";
	a = make(&cfg);
	expect_test(a, false, "HTTP 401: wrong user name or password");
	adapter_destroy(a);
	/* an instance configured when not needed: 404 */
	config_for(&cfg, &g_sim);
	cfg.instance = "tenant7";
	a = make(&cfg);
	expect_test(a, false, "HTTP 404: an instance name was configured when not needed");
	adapter_destroy(a);
	/* the right instance works, a wrong one is 404 */
	assert_int_equal(sim_start(&s, g_cert, g_key, SIM_DATA, inst), 0);
	config_for(&cfg, &s);
	cfg.instance = "tenant7";
	a = make(&cfg);
	expect_test(a, true, "Connection to server is successful");
	adapter_destroy(a);
	cfg.instance = "tenant8";
	a = make(&cfg);
	expect_test(a, false, "instance: \"tenant8\"");
	adapter_destroy(a);
	sim_stop(&s);
	/* no REST API MDM role: 403 */
	assert_int_equal(sim_start(&s, g_cert, g_key, SIM_DATA, norole), 0);
	config_for(&cfg, &s);
	a = make(&cfg);
	expect_test(a, false, "HTTP 403: the API account lacks the REST API MDM role");
	adapter_destroy(a);
	sim_stop(&s);
	/* a certificate from another CA: not trusted */
	assert_int_equal(sim_start(&s, g_other_cert, g_other_key, SIM_DATA, NULL), 0);
	config_for(&cfg, &s);
	a = make(&cfg);
	expect_test(a, false, "certificate is not trusted: import the MDM's certificate");
	adapter_destroy(a);
	sim_stop(&s);
	/* an expired certificate: said so */
	assert_int_equal(sim_start(&s, g_expired_cert, g_expired_key, SIM_DATA, NULL), 0);
	config_for(&cfg, &s);
	a = make(&cfg);
	expect_test(a, false, "certificate has expired");
	adapter_destroy(a);
	port = s.port;
	sim_stop(&s);
	/* nothing listening any more: unreachable */
	s.port = port;
	config_for(&cfg, &s);
	a = make(&cfg);
	expect_test(a, false, "routing and the firewall");
	adapter_destroy(a);
}

/* --- hops, health, create ----------------------------------------------------------------------
 */

static void hops_two(void *arg, char *via, size_t viasz, unsigned *hops)
{
	(void)arg;
	snprintf(via, viasz, "gw-a:8443,gw-b:8443");
	*hops = 2;
}

/* The provider's headers go out (the simulator ignores them: checked by their absence of harm
 * here, and end to end by the gateway-to-gateway integration cases); health counts. */
static void test_hops_and_health(void **state)
{
	struct mcms_config cfg;
	struct adapter *a;
	struct adapter_health h;
	struct wait w;

	(void)state;
	config_for(&cfg, &g_sim);
	cfg.hops = hops_two;
	a = make(&cfg);
	adapter_health(a, &h);
	assert_true(h.healthy);
	assert_int_equal(h.requests, 0);
	lookup(a, IDENT_MAC, ALICE_PHONE, 5000, &w);
	assert_int_equal(w.oc.kind, OUTCOME_FOUND);
	wait_free(&w);
	adapter_health(a, &h);
	assert_true(h.healthy);
	assert_int_equal(h.requests, 2);
	assert_true(h.last_ok_ms > 0);
	fault(&g_sim, "status", 500);
	lookup(a, IDENT_MAC, ALICE_PHONE, 5000, &w);
	wait_free(&w);
	adapter_health(a, &h);
	assert_false(h.healthy);
	assert_non_null(strstr(h.last_error, "500"));
	adapter_destroy(a);
}

static void test_create_checks(void **state)
{
	struct mcms_config cfg;
	struct adapter *a = NULL;
	char why[256];

	(void)state;
	config_for(&cfg, &g_sim);
	cfg.url = "http://127.0.0.1:1";
	assert_int_equal(mcms_create(g_engine, &cfg, &a, why, sizeof(why)), MDM_ERR_CONFIG);
	assert_null(a);
	assert_non_null(strstr(why, "https:// origin"));
	cfg.url = "https://mdm.example.com/some/path";
	assert_int_equal(mcms_create(g_engine, &cfg, &a, why, sizeof(why)), MDM_ERR_CONFIG);
	cfg.url = "https://mdm.example.com/";
	cfg.instance = "bad instance";
	assert_int_equal(mcms_create(g_engine, &cfg, &a, why, sizeof(why)), MDM_ERR_CONFIG);
	assert_non_null(strstr(why, "instance"));
	cfg.instance = NULL;
	cfg.http.ca_file = NULL;
	assert_int_equal(mcms_create(g_engine, &cfg, &a, why, sizeof(why)), MDM_ERR_CONFIG);
	assert_non_null(strstr(why, "CA file"));
	cfg.http.ca_file = g_ca;
	assert_int_equal(mcms_create(g_engine, &cfg, &a, why, sizeof(why)), MDM_OK);
	assert_non_null(a);
	adapter_destroy(a);
}

/* Requests in flight when the adapter goes: each caller still gets its one answer. */
static void test_destroy_pending(void **state)
{
	struct adapter *a = make_default();
	struct wait w, l;
	struct ident id;

	(void)state;
	fault(&g_sim, "latency", 3000);
	assert_int_equal(ident_parse(IDENT_MAC, ALICE_PHONE, 12, &id, NULL, 0), MDM_OK);
	wait_init(&w);
	wait_init(&l);
	assert_int_equal(adapter_lookup(a, &id, clock_mono_ms() + 10000, on_lookup, &w), MDM_OK);
	assert_int_equal(adapter_list(a, "", on_page, &l), MDM_OK);
	usleep(100000);
	adapter_destroy(a);
	assert_int_equal(wait_for(&w, 1, 5000), 1);
	assert_int_equal(wait_for(&l, 1, 5000), 1);
	assert_int_equal(w.oc.kind, OUTCOME_FAILED);
	assert_int_equal(l.page.oc.kind, OUTCOME_FAILED);
	wait_free(&w);
	wait_free(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_lookup_every_kind, reset),
	    cmocka_unit_test_setup(test_lookup_capitalised, reset),
	    cmocka_unit_test_setup(test_version_lacks_kind, reset),
	    cmocka_unit_test_setup(test_renegotiate_on_404, reset),
	    cmocka_unit_test_setup(test_shared_negotiation, reset),
	    cmocka_unit_test_setup(test_list_pages, reset),
	    cmocka_unit_test_setup(test_list_noncompliant_confirmed, reset),
	    cmocka_unit_test_setup(test_retry_after_honoured, reset),
	    cmocka_unit_test_setup(test_server_busy, reset),
	    cmocka_unit_test_setup(test_faults_fail, reset),
	    cmocka_unit_test_setup(test_action_forwarding, reset),
	    cmocka_unit_test_setup(test_connection_causes, reset),
	    cmocka_unit_test_setup(test_hops_and_health, reset),
	    cmocka_unit_test_setup(test_create_checks, reset),
	    cmocka_unit_test_setup(test_destroy_pending, reset),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
