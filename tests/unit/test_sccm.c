/*
 * test_sccm: the SCCM adapter against the AdminService simulator (tests/sim/sccm_sim.py), a real
 * HTTPS server in a child process, with its own test CA, Basic and NTLM authentication, paging
 * and fault switches. The data set's cases are described in tests/sim/README.md.
 */
#include "unit.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../adapters/sccm.h"
#include "../../core/clock.h"
#include "../../core/log.h"

#define SIM_USER "CORP\\svc-ise"
#define SIM_PASSWORD "S3cret!pw"
#define SIM_DATA "tests/sim/sccm_data.json"
#define GUID_NONCOMP "GUID:5C3A1F20-0002-4A6B-9C7D-000000000002"

/* --- the simulator as a child process --------------------------------------------------------- */

#define SIM_SCRIPT "tests/sim/sccm_sim.py"
#include "simproc.h"

static char g_dir[] = "/tmp/mdmgw-test-sccm-XXXXXX";
static char g_big[512];	 /* a generated data set of 2200 resources */
static struct sim g_sim; /* the data set, --page-size 3 so listings page */

/* --- adapters ----------------------------------------------------------------------------------
 */

static void config_for(struct sccm_config *cfg, char *base, size_t basesz, const struct sim *s)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(base, basesz, "https://127.0.0.1:%u/AdminService", s->port);
	cfg->name = "sccm-test";
	cfg->base_url = base;
	cfg->http.ca_file = g_ca;
	cfg->http.auth = HTTP_AUTH_BASIC;
	cfg->http.user = SIM_USER;
	cfg->http.password = SIM_PASSWORD;
	cfg->http.max_connections = 4;
}

static struct adapter *make(const struct sccm_config *cfg)
{
	char why[256] = "";
	struct adapter *a = sccm_create(g_engine, cfg, why, sizeof(why));

	if (!a)
		fprintf(stderr, "sccm_create: %s\n", why);
	assert_non_null(a);
	return a;
}

static struct adapter *make_default(void)
{
	struct sccm_config cfg;
	char base[128];

	config_for(&cfg, base, sizeof(base), &g_sim);
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
	assert_int_equal(wait_for(w, 1, 30000), 1);
}

static void test_conn(struct adapter *a, struct wait *w)
{
	wait_init(w);
	assert_int_equal(adapter_test_connection(a, on_test, w), MDM_OK);
	assert_int_equal(wait_for(w, 1, 15000), 1);
}

/* --- fixtures ----------------------------------------------------------------------------------
 */

/* A data set of 2100 SMS_R_System resources (even ones compliant) and 100 NIC-only ones. */
static int write_big_data(const char *path)
{
	FILE *f = fopen(path, "w");
	int i;

	if (!f)
		return -1;
	fprintf(f, "{\"SMS_R_System\": [");
	for (i = 0; i < 2100; i++)
		fprintf(
		    f,
		    "%s{\"ResourceId\": %d, \"Name\": \"PC-%d\", \"MACAddresses\": "
		    "[\"00:50:57:00:%02X:%02X\"], \"Client\": 1, \"Active\": 1, \"Obsolete\": 0, "
		    "\"Decommissioned\": 0, \"SMSUniqueIdentifier\": \"GUID:%d\"}",
		    i ? "," : "", 20000000 + i, i, i >> 8, i & 255, i);
	fprintf(f, "], \"SMS_G_System_NETWORK_ADAPTER\": [");
	for (i = 0; i < 100; i++)
		fprintf(f, "%s{\"ResourceID\": %d, \"MACAddress\": \"00:50:58:00:00:%02X\"}",
			i ? "," : "", 30000000 + i, i);
	fprintf(f, "], \"SMS_G_System_CI_ComplianceState\": [");
	for (i = 0; i < 2100; i++)
		fprintf(f,
			"%s{\"ResourceID\": %d, \"CI_UniqueID\": \"B/1\", \"ComplianceState\": %d, "
			"\"LocalizedDisplayName\": \"Baseline\"}",
			i ? "," : "", 20000000 + i, i % 2 ? 2 : 1);
	fprintf(f, "], \"SMS_G_System_CH_ClientSummary\": []}\n");
	return fclose(f) == 0 ? 0 : -1;
}

static int group_setup(void **state)
{
	static const char *const page3[] = {"--page-size", "3", NULL};
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
	snprintf(g_big, sizeof(g_big), "%s/big.json", g_dir);
	if (write_big_data(g_big) != 0)
		return -1;
	if (sim_start(&g_sim, g_cert, g_key, SIM_DATA, page3) != 0)
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

/* Every test starts with no fault and zero counts. */
static int reset(void **state)
{
	(void)state;
	sims_stop(0, g_sim.pid);
	sim_reset(&g_sim);
	return 0;
}

/* --- lookups through the data set ---------------------------------------------------------------
 */

struct want {
	const char *mac;
	enum outcome_kind kind;
	const char *vendor_id;
	enum tri compliant;
	const char *reason;
	const char *guid;
	const char *hostname;
	int64_t checkin_ms;
	const char *macs[DEVICE_MACS_MAX];
};

static const struct want cases[] = {
    {"00:50:56:A1:00:FF", OUTCOME_NOT_ENROLLED, NULL, TRI_UNSET, NULL, NULL, NULL, 0, {NULL}},
    {"00:50:56:A1:00:01",
     OUTCOME_FOUND,
     "16777220",
     TRI_TRUE,
     "",
     "GUID:5C3A1F20-0001-4A6B-9C7D-000000000001",
     "pc-compliant",
     1795167015123LL,
     {"005056A10001"}},
    {"00-50-56-a1-00-02",
     OUTCOME_FOUND,
     "16777221",
     TRI_FALSE,
     "Compliance Policy",
     GUID_NONCOMP,
     "pc-noncomp",
     1795248000000LL,
     {"005056A10002"}},
    {"005056A10003",
     OUTCOME_FOUND,
     "16777222",
     TRI_FALSE,
     "Compliance",
     "GUID:5C3A1F20-0003-4A6B-9C7D-000000000003",
     "pc-unknown",
     1795107600000LL,
     {"005056A10003"}},
    {"00:50:56:A1:00:04",
     OUTCOME_FOUND,
     "16777223",
     TRI_FALSE,
     "BitLocker Baseline",
     "GUID:5C3A1F20-0004-4A6B-9C7D-000000000004",
     "pc-error",
     1794989730250LL,
     {"005056A10004"}},
    {"00:50:56:A1:00:05",
     OUTCOME_FOUND,
     "16777224",
     TRI_FALSE,
     "no compliance baseline reported",
     "GUID:5C3A1F20-0005-4A6B-9C7D-000000000005",
     "pc-nobaseline",
     1794895627000LL,
     {"005056A10005"}},
    {"00:50:56:A1:00:06",
     OUTCOME_FOUND,
     "16777225",
     TRI_TRUE,
     "",
     "GUID:5C3A1F20-0006-4A6B-9C7D-000000000006",
     "pc-nosummary",
     0,
     {"005056A10006"}},
    {"00:50:56:A1:00:17",
     OUTCOME_FOUND,
     "16777226",
     TRI_TRUE,
     "",
     "GUID:5C3A1F20-0007-4A6B-9C7D-000000000007",
     "pc-multinic",
     1795391999999LL,
     {"005056A10007", "005056A10017", "005056A10027"}},
    /* Only in NETWORK_ADAPTER: its SMS_R_System row is fetched by ResourceId, as ISE's join
     * has it: name, GUID and the system's MACs, then the NIC's. */
    {"00:50:56:A1:00:18",
     OUTCOME_FOUND,
     "16777227",
     TRI_TRUE,
     "",
     "GUID:5C3A1F20-0008-4A6B-9C7D-000000000008",
     "pc-niconly",
     1795348800000LL,
     {"005056A10008", "005056A10018"}},
    /* Obsolete duplicate: the current record wins, compliant. */
    {"00:50:56:A1:00:0A",
     OUTCOME_FOUND,
     "16777228",
     TRI_TRUE,
     "",
     "GUID:5C3A1F20-100A-4A6B-9C7D-00000000100A",
     "pc-reimaged",
     1795329000000LL,
     {"005056A1000A"}},
    {"00:50:56:A1:00:09",
     OUTCOME_FOUND,
     "16777230",
     TRI_FALSE,
     "no compliance baseline reported",
     "",
     "",
     1795273200000LL,
     {"005056A10009"}},
};

static void check_device(const struct want *c, const struct outcome *oc)
{
	const struct device *d = &oc->devs[0];
	unsigned n = 0;

	assert_int_equal(oc->ndevs, 1);
	assert_string_equal(d->source, "sccm-test");
	assert_string_equal(d->vendor_id, c->vendor_id);
	assert_int_equal(d->registered, TRI_TRUE);
	assert_int_equal(d->compliant, c->compliant);
	assert_string_equal(d->failure_reason, c->reason);
	assert_string_equal(d->guid, c->guid);
	assert_string_equal(d->hostname, c->hostname);
	assert_int_equal(d->last_checkin_ms, c->checkin_ms);
	assert_int_equal(d->pin_lock, TRI_FALSE);
	assert_int_equal(d->jail_broken, TRI_FALSE);
	assert_int_equal(d->disk_encrypted, TRI_UNSET);
	assert_true(d->fetched_at_ms > 0);
	while (n < DEVICE_MACS_MAX && c->macs[n]) {
		assert_true(n < d->nmacs);
		assert_string_equal(d->macs[n], c->macs[n]);
		n++;
	}
	assert_int_equal(d->nmacs, n);
}

static void test_lookup_data_set(void **state)
{
	struct adapter *a = make_default();
	struct adapter_health h;
	struct wait w;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		lookup(a, IDENT_MAC, cases[i].mac, 5000, &w);
		if (w.oc.kind != cases[i].kind)
			fprintf(stderr, "%s: %s %s\n", cases[i].mac, outcome_kind_name(w.oc.kind),
				w.oc.why);
		assert_int_equal(w.oc.kind, cases[i].kind);
		if (cases[i].kind == OUTCOME_FOUND)
			check_device(&cases[i], &w.oc);
		else
			assert_int_equal(w.oc.ndevs, 0);
		wait_free(&w);
	}
	adapter_health(a, &h);
	assert_true(h.healthy);
	assert_true(h.last_ok_ms > 0);
	assert_int_equal(h.last_error_ms, 0);
	assert_int_equal(h.breaker, BREAKER_CLOSED);
	assert_true(h.requests >= 40);
	assert_int_equal(h.failures, 0);
	adapter_destroy(a);
}

/* A found MAC costs exactly the four class queries (Basic goes with the first request). */
static void test_lookup_request_count(void **state)
{
	struct adapter *a = make_default();
	struct wait w;

	(void)state;
	lookup(a, IDENT_MAC, "00:50:56:A1:00:01", 5000, &w);
	assert_int_equal(w.oc.kind, OUTCOME_FOUND);
	wait_free(&w);
	assert_int_equal(count(&g_sim, "requests", NULL), 4);
	assert_int_equal(count(&g_sim, "by_route", "SMS_R_System"), 1);
	assert_int_equal(count(&g_sim, "by_route", "SMS_G_System_NETWORK_ADAPTER"), 1);
	assert_int_equal(count(&g_sim, "by_route", "SMS_G_System_CI_ComplianceState"), 1);
	assert_int_equal(count(&g_sim, "by_route", "SMS_G_System_CH_ClientSummary"), 1);
	assert_int_equal(count(&g_sim, "by_status", "200"), 4);
	/* Not registered: the two MAC queries, nothing more. */
	lookup(a, IDENT_MAC, "00:50:56:A1:00:FF", 5000, &w);
	assert_int_equal(w.oc.kind, OUTCOME_NOT_ENROLLED);
	wait_free(&w);
	assert_int_equal(count(&g_sim, "requests", NULL), 6);
	/* Known by a NIC row only: its system record by ResourceId too, in the second round. */
	lookup(a, IDENT_MAC, "00:50:56:A1:00:18", 5000, &w);
	assert_int_equal(w.oc.kind, OUTCOME_FOUND);
	wait_free(&w);
	assert_int_equal(count(&g_sim, "requests", NULL), 11);
	assert_int_equal(count(&g_sim, "by_route", "SMS_R_System"), 4);
	adapter_destroy(a);
}

static void test_lookup_guid(void **state)
{
	struct adapter *a = make_default();
	struct wait w;

	(void)state;
	lookup(a, IDENT_GUID, GUID_NONCOMP, 5000, &w);
	assert_int_equal(w.oc.kind, OUTCOME_FOUND);
	check_device(&cases[2], &w.oc);
	wait_free(&w);
	/* SCCM compares ignoring case; no NIC query is made. */
	assert_int_equal(count(&g_sim, "by_route", "SMS_G_System_NETWORK_ADAPTER"), 0);
	assert_int_equal(count(&g_sim, "requests", NULL), 3);
	lookup(a, IDENT_GUID, "guid:5c3a1f20-0002-4a6b-9c7d-000000000002", 5000, &w);
	assert_int_equal(w.oc.kind, OUTCOME_FOUND);
	assert_string_equal(w.oc.devs[0].vendor_id, "16777221");
	wait_free(&w);
	lookup(a, IDENT_GUID, "GUID:O'Brien-not-there", 5000, &w);
	assert_int_equal(w.oc.kind, OUTCOME_NOT_ENROLLED);
	assert_int_equal(w.oc.ndevs, 0);
	wait_free(&w);
	adapter_destroy(a);
}

static void test_lookup_not_applicable(void **state)
{
	static const struct {
		enum ident_kind kind;
		const char *value;
	} ids[] = {{IDENT_IMEI, "490154203237518"},
		   {IDENT_HOSTNAME, "pc-compliant"},
		   {IDENT_USERNAME, "alice"},
		   {IDENT_SERIAL, "ABC123"},
		   {IDENT_UDID, "abc-123"}};
	struct adapter *a = make_default();
	struct wait w;

	(void)state;
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		lookup(a, ids[i].kind, ids[i].value, 5000, &w);
		assert_int_equal(w.oc.kind, OUTCOME_NOT_APPLICABLE);
		assert_int_equal(w.oc.ndevs, 0);
		wait_free(&w);
	}
	assert_int_equal(count(&g_sim, "requests", NULL), 0);
	adapter_destroy(a);
}

/* --- authentication ------------------------------------------------------------------------------
 */

static void auth_case(enum http_auth auth, const char *password, enum outcome_kind want)
{
	struct sccm_config cfg;
	char base[128];
	struct adapter *a;
	struct wait w;

	config_for(&cfg, base, sizeof(base), &g_sim);
	cfg.http.auth = auth;
	cfg.http.password = password;
	a = make(&cfg);
	lookup(a, IDENT_MAC, "00:50:56:A1:00:02", 5000, &w);
	assert_int_equal(w.oc.kind, want);
	if (want == OUTCOME_FOUND) {
		check_device(&cases[2], &w.oc);
	} else {
		assert_int_equal(w.oc.fail, FAIL_AUTH);
		assert_int_equal(w.oc.ndevs, 0);
		assert_non_null(strstr(w.oc.why, "SCCM refused the credentials (401)"));
		assert_non_null(strstr(w.oc.why, "SMS_"));
	}
	wait_free(&w);
	adapter_destroy(a);
}

static void test_auth(void **state)
{
	(void)state;
	auth_case(HTTP_AUTH_BASIC, SIM_PASSWORD, OUTCOME_FOUND);
	auth_case(HTTP_AUTH_NTLM, SIM_PASSWORD, OUTCOME_FOUND);
	assert_true(count(&g_sim, "by_status", "401") >= 2); /* NTLM's challenges */
	auth_case(HTTP_AUTH_BASIC, "wrong", OUTCOME_FAILED);
	auth_case(HTTP_AUTH_NTLM, "wrong", OUTCOME_FAILED);
}

/* --- faults: always FAILED, never a verdict
 * ------------------------------------------------------- */

static void fault_case(struct sim *s, struct adapter *a, const char *name, int value,
		       int64_t timeout_ms, enum fail_kind want, const char *why)
{
	struct adapter_health h;
	struct wait w;

	sim_reset(s);
	fault(s, name, value);
	lookup(a, IDENT_MAC, "00:50:56:A1:00:01", timeout_ms, &w);
	if (w.oc.kind != OUTCOME_FAILED || w.oc.fail != want || !strstr(w.oc.why, why))
		fprintf(stderr, "fault %s=%d: %s %s: %s\n", name, value,
			outcome_kind_name(w.oc.kind), fail_kind_name(w.oc.fail), w.oc.why);
	assert_int_equal(w.oc.kind, OUTCOME_FAILED);
	assert_int_equal(w.oc.fail, want);
	assert_int_equal(w.oc.ndevs, 0);
	assert_non_null(strstr(w.oc.why, why));
	wait_free(&w);
	adapter_health(a, &h);
	assert_false(h.healthy);
	assert_true(h.last_error_ms > 0);
	assert_non_null(strstr(h.last_error, why));
}

/* On a simulator of their own: a delayed answer is still counted seconds later, when the
 * shared simulator's counts belong to another test. */
static void test_faults(void **state)
{
	static const char *const none[] = {NULL};
	struct sim s;
	struct sccm_config cfg;
	char base[128];
	struct adapter *a;
	int64_t t0;

	(void)state;
	memset(&s, 0, sizeof(s));
	assert_int_equal(sim_start(&s, g_cert, g_key, SIM_DATA, none), 0);
	config_for(&cfg, base, sizeof(base), &s);
	cfg.http.max_body = 64 * 1024;
	a = make(&cfg);
	fault_case(&s, a, "status", 401, 5000, FAIL_AUTH,
		   "SCCM refused the credentials (401): wrong user name or password");
	fault_case(&s, a, "status", 403, 5000, FAIL_AUTH,
		   "account lacks a ConfigMgr administrative role (403)");
	fault_case(&s, a, "status", 404, 5000, FAIL_PROTOCOL, "no AdminService at this path (404)");
	fault_case(&s, a, "status", 500, 5000, FAIL_UNREACHABLE, "SCCM answered 500");
	fault_case(&s, a, "garbage", 1, 5000, FAIL_PROTOCOL, "SMS_");
	fault_case(&s, a, "huge", 2, 5000, FAIL_PROTOCOL, "body larger than");
	t0 = clock_mono_ms();
	fault_case(&s, a, "latency", 2000, 400, FAIL_TIMEOUT, "no answer before the deadline");
	assert_true(clock_mono_ms() - t0 < 1800);
	fault_case(&s, a, "stall", 1, 400, FAIL_TIMEOUT, "no answer before the deadline");
	/* Cleared: the same adapter answers again, and is healthy. */
	sim_reset(&s);
	{
		struct adapter_health h;
		struct wait w;

		lookup(a, IDENT_MAC, "00:50:56:A1:00:01", 5000, &w);
		assert_int_equal(w.oc.kind, OUTCOME_FOUND);
		wait_free(&w);
		adapter_health(a, &h);
		assert_true(h.healthy);
		assert_true(h.failures >= 4); /* timeouts and the body cap are transport failures */
	}
	adapter_destroy(a);
	sim_stop(&s);
}

/* A per-MAC answer larger than one page is refused, never followed. */
static void test_lookup_paged_answer(void **state)
{
	static const char *const page1[] = {"--page-size", "1", NULL};
	struct sim s;
	struct sccm_config cfg;
	char base[128];
	struct adapter *a;
	struct wait w;

	(void)state;
	memset(&s, 0, sizeof(s));
	assert_int_equal(sim_start(&s, g_cert, g_key, SIM_DATA, page1), 0);
	config_for(&cfg, base, sizeof(base), &s);
	a = make(&cfg);
	lookup(a, IDENT_MAC, "00:50:56:A1:00:0A", 5000, &w); /* two SMS_R_System rows */
	assert_int_equal(w.oc.kind, OUTCOME_FAILED);
	assert_int_equal(w.oc.fail, FAIL_PROTOCOL);
	assert_non_null(strstr(w.oc.why, "answer unexpectedly paged"));
	wait_free(&w);
	/* One row per class: fine. */
	lookup(a, IDENT_MAC, "00:50:56:A1:00:04", 5000, &w);
	assert_int_equal(w.oc.kind, OUTCOME_FOUND);
	check_device(&cases[4], &w.oc);
	wait_free(&w);
	adapter_destroy(a);
	sim_stop(&s);
}

/* The breaker opens on 5xx answers and the health says so. */
static void test_health_breaker(void **state)
{
	struct sccm_config cfg;
	char base[128];
	struct adapter *a;
	struct adapter_health h;
	struct wait w;

	(void)state;
	config_for(&cfg, base, sizeof(base), &g_sim);
	cfg.http.breaker_failures = 2;
	cfg.http.breaker_open_ms = 60000;
	a = make(&cfg);
	adapter_health(a, &h);
	assert_true(h.healthy);
	assert_int_equal(h.breaker, BREAKER_CLOSED);
	fault(&g_sim, "status", 500);
	lookup(a, IDENT_MAC, "00:50:56:A1:00:01", 5000, &w);
	assert_int_equal(w.oc.kind, OUTCOME_FAILED);
	wait_free(&w);
	sim_reset(&g_sim);
	lookup(a, IDENT_MAC, "00:50:56:A1:00:01", 5000, &w);
	assert_int_equal(w.oc.kind, OUTCOME_FAILED);
	assert_int_equal(w.oc.fail, FAIL_UNREACHABLE);
	assert_non_null(strstr(w.oc.why, "circuit open"));
	wait_free(&w);
	adapter_health(a, &h);
	assert_false(h.healthy);
	assert_int_equal(h.breaker, BREAKER_OPEN);
	assert_non_null(strstr(h.last_error, "circuit open"));
	assert_int_equal(count(&g_sim, "requests", NULL), 0); /* nothing reached SCCM */
	adapter_destroy(a);
}

/* --- action ------------------------------------------------------------------------------------
 */

static void test_action(void **state)
{
	struct adapter *a = make_default();
	struct wait w;

	(void)state;
	for (int k = 0; k < ACTION_COUNT; k++) {
		wait_init(&w);
		assert_int_equal(adapter_action(a, "16777220", (enum action_kind)k, on_action, &w),
				 MDM_OK);
		assert_int_equal(wait_for(&w, 1, 1000), 1);
		assert_false(w.act.accepted);
		assert_int_equal(w.act.fail, FAIL_NONE);
		assert_string_equal(w.act.reason,
				    "SCCM does not wipe or PIN-lock domain PCs; use the "
				    "MDM that manages this device");
		wait_free(&w);
	}
	assert_int_equal(count(&g_sim, "requests", NULL), 0);
	adapter_destroy(a);
}

/* --- listing -----------------------------------------------------------------------------------
 */

static const struct device *find_dev(const struct outcome *oc, const char *vendor_id)
{
	for (size_t i = 0; i < oc->ndevs; i++)
		if (strcmp(oc->devs[i].vendor_id, vendor_id) == 0)
			return &oc->devs[i];
	return NULL;
}

static void test_list_joins_pages(void **state)
{
	static const char *const ids[] = {"16777210", "16777220", "16777221", "16777222",
					  "16777223", "16777224", "16777225", "16777226",
					  "16777227", "16777228", "16777230"};
	struct adapter *a = make_default();
	const struct device *d;
	struct wait w;

	(void)state;
	list(a, "", &w);
	assert_int_equal(w.page.oc.kind, OUTCOME_FOUND);
	assert_string_equal(w.page.next_cursor, "");
	/* 10 SMS_R_System resources and the NIC-only one, in ResourceID order. */
	assert_int_equal(w.page.oc.ndevs, 11);
	for (size_t i = 0; i < 11; i++)
		assert_string_equal(w.page.oc.devs[i].vendor_id, ids[i]);
	/* Every class paged by 3 rows: ceil(rows / 3) requests each. */
	assert_int_equal(count(&g_sim, "by_route", "SMS_R_System"), 4);
	assert_int_equal(count(&g_sim, "by_route", "SMS_G_System_NETWORK_ADAPTER"), 4);
	assert_int_equal(count(&g_sim, "by_route", "SMS_G_System_CI_ComplianceState"), 4);
	assert_int_equal(count(&g_sim, "by_route", "SMS_G_System_CH_ClientSummary"), 4);
	d = find_dev(&w.page.oc, "16777230"); /* NIC-only resource: not lost */
	assert_non_null(d);
	assert_int_equal(d->nmacs, 1);
	assert_string_equal(d->macs[0], "005056A10009");
	assert_int_equal(d->compliant, TRI_FALSE);
	assert_int_equal(d->last_checkin_ms, 1795273200000LL);
	d = find_dev(&w.page.oc, "16777227"); /* system MAC :08 plus the NIC rows' :18 */
	assert_non_null(d);
	assert_int_equal(d->nmacs, 2);
	assert_string_equal(d->macs[0], "005056A10008");
	assert_string_equal(d->macs[1], "005056A10018");
	assert_string_equal(d->hostname, "pc-niconly");
	d = find_dev(&w.page.oc, "16777210"); /* the obsolete record is a device of its own */
	assert_non_null(d);
	assert_int_equal(d->compliant, TRI_FALSE);
	assert_string_equal(d->failure_reason, "Compliance");
	d = find_dev(&w.page.oc, "16777221");
	assert_non_null(d);
	assert_int_equal(d->compliant, TRI_FALSE);
	assert_string_equal(d->failure_reason, "Compliance Policy");
	assert_int_equal(d->last_checkin_ms, 1795248000000LL);
	d = find_dev(&w.page.oc, "16777226");
	assert_non_null(d);
	assert_int_equal(d->nmacs, 3);
	assert_int_equal(d->compliant, TRI_TRUE);
	wait_free(&w);
	adapter_destroy(a);
}

static void test_list_fails_whole(void **state)
{
	struct adapter *a = make_default();
	struct wait w;

	(void)state;
	fault(&g_sim, "status", 403);
	list(a, "", &w);
	assert_int_equal(w.page.oc.kind, OUTCOME_FAILED);
	assert_int_equal(w.page.oc.fail, FAIL_AUTH);
	assert_int_equal(w.page.oc.ndevs, 0);
	assert_string_equal(w.page.next_cursor, "");
	assert_non_null(strstr(w.page.oc.why, "(403)"));
	wait_free(&w);
	sim_reset(&g_sim);
	fault(&g_sim, "garbage", 1);
	list(a, "", &w);
	assert_int_equal(w.page.oc.kind, OUTCOME_FAILED);
	assert_int_equal(w.page.oc.fail, FAIL_PROTOCOL);
	wait_free(&w);
	adapter_destroy(a);
}

static void test_list_cursor(void **state)
{
	static const char *const big[] = {"--page-size", "1000", NULL};
	struct sim s;
	struct sccm_config cfg;
	char base[128], cursor[64], cur2[64];
	struct adapter *a;
	struct wait w;
	size_t total = 0, compliant = 0;

	(void)state;
	memset(&s, 0, sizeof(s));
	assert_int_equal(sim_start(&s, g_cert, g_key, g_big, big), 0);
	config_for(&cfg, base, sizeof(base), &s);
	cfg.http.max_body = 8 * 1024 * 1024;
	a = make(&cfg);
	list(a, "", &w);
	assert_int_equal(w.page.oc.kind, OUTCOME_FOUND);
	assert_int_equal(w.page.oc.ndevs, 1000);
	assert_string_equal(w.page.next_cursor, "g1:1000");
	assert_string_equal(w.page.oc.devs[0].vendor_id, "20000000");
	snprintf(cursor, sizeof(cursor), "%s", w.page.next_cursor);
	total += w.page.oc.ndevs;
	for (size_t i = 0; i < w.page.oc.ndevs; i++)
		compliant += w.page.oc.devs[i].compliant == TRI_TRUE;
	wait_free(&w);
	while (cursor[0]) {
		list(a, cursor, &w);
		assert_int_equal(w.page.oc.kind, OUTCOME_FOUND);
		total += w.page.oc.ndevs;
		for (size_t i = 0; i < w.page.oc.ndevs; i++)
			compliant += w.page.oc.devs[i].compliant == TRI_TRUE;
		if (strcmp(cursor, "g1:2000") == 0) {
			assert_int_equal(w.page.oc.ndevs, 200);
			assert_string_equal(w.page.oc.devs[199].vendor_id, "30000099");
			assert_string_equal(w.page.oc.devs[199].macs[0], "0050580000"
									 "63");
		}
		snprintf(cursor, sizeof(cursor), "%s", w.page.next_cursor);
		wait_free(&w);
	}
	assert_int_equal(total, 2200);
	assert_int_equal(compliant, 1050); /* the even ones; NIC-only ones have no baseline */
	/* The walk read the last page: generation 1 is drained, its records freed. */
	list(a, "g1:1000", &w);
	assert_int_equal(w.page.oc.kind, OUTCOME_FAILED);
	assert_string_equal(w.page.oc.why, "listing cursor expired");
	wait_free(&w);
	/* A new listing drops generation 1. */
	list(a, "", &w);
	assert_int_equal(w.page.oc.kind, OUTCOME_FOUND);
	assert_string_equal(w.page.next_cursor, "g2:1000");
	snprintf(cur2, sizeof(cur2), "%s", w.page.next_cursor);
	wait_free(&w);
	{
		static const char *const bad[] = {"g1:1000", "g2:9999", "g2:",	  "g:5",    "x",
						  "g2:10x",  "g-2:10",	"g2:+10", "g2:2200"};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			list(a, bad[i], &w);
			assert_int_equal(w.page.oc.kind, OUTCOME_FAILED);
			assert_int_equal(w.page.oc.fail, FAIL_PROTOCOL);
			assert_string_equal(w.page.oc.why, "listing cursor expired");
			wait_free(&w);
		}
	}
	list(a, cur2, &w);
	assert_int_equal(w.page.oc.kind, OUTCOME_FOUND);
	assert_int_equal(w.page.oc.ndevs, 1000);
	wait_free(&w);
	adapter_destroy(a);
	sim_stop(&s);
}

/* --- test_connection ----------------------------------------------------------------------------
 */

static void conn_case(struct adapter *a, bool ok, const char *msg)
{
	struct wait w;

	test_conn(a, &w);
	if (w.test.ok != ok || !strstr(w.test.message, msg))
		fprintf(stderr, "test_connection: %s\n", w.test.message);
	assert_int_equal(w.test.ok, ok);
	assert_non_null(strstr(w.test.message, msg));
	wait_free(&w);
}

static void test_connection_diagnoses(void **state)
{
	struct sccm_config cfg;
	char base[128], want[600];
	struct adapter *a = make_default();

	(void)state;
	snprintf(want, sizeof(want),
		 "AdminService reachable at https://127.0.0.1:%u/AdminService: $metadata answered, "
		 "SMS_R_System readable",
		 g_sim.port);
	conn_case(a, true, want);
	assert_int_equal(count(&g_sim, "by_route", "wmi/$metadata"), 1);
	assert_int_equal(count(&g_sim, "by_route", "SMS_R_System"), 1);
	fault(&g_sim, "status", 401);
	conn_case(a, false,
		  "401: SCCM refused the credentials: wrong user name or password (for NTLM give "
		  "DOMAIN\\user)");
	fault(&g_sim, "status", 403);
	conn_case(a, false,
		  "403: the account lacks a ConfigMgr administrative role (add it under "
		  "Administration > Security > Administrative Users)");
	fault(&g_sim, "status", 404);
	snprintf(want, sizeof(want),
		 "404: no AdminService at https://127.0.0.1:%u/AdminService/wmi/$metadata "
		 "(pre-1810 site, wrong host or path)",
		 g_sim.port);
	conn_case(a, false, want);
	sim_reset(&g_sim);
	adapter_destroy(a);

	/* A wrong path: the real 404 of the simulator. */
	config_for(&cfg, base, sizeof(base), &g_sim);
	snprintf(base, sizeof(base), "https://127.0.0.1:%u/SMS_AdminService/", g_sim.port);
	a = make(&cfg);
	snprintf(want, sizeof(want),
		 "404: no AdminService at https://127.0.0.1:%u/SMS_AdminService", g_sim.port);
	conn_case(a, false, want);
	adapter_destroy(a);
}

static void test_connection_refused_and_tls(void **state)
{
	static const char *const none[] = {NULL};
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	struct sccm_config cfg;
	struct sim other;
	char base[128], want[700];
	struct adapter *a;
	int fd;

	(void)state;
	/* A port nothing listens on. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);
	config_for(&cfg, base, sizeof(base), &g_sim);
	snprintf(base, sizeof(base), "https://127.0.0.1:%u/AdminService", ntohs(sin.sin_port));
	a = make(&cfg);
	conn_case(a, false, "connection refused or filtered: check the host, port and firewall");
	adapter_destroy(a);

	/* A server whose certificate comes from another CA. */
	memset(&other, 0, sizeof(other));
	assert_int_equal(sim_start(&other, g_other_cert, g_other_key, SIM_DATA, none), 0);
	config_for(&cfg, base, sizeof(base), &other);
	a = make(&cfg);
	snprintf(want, sizeof(want),
		 "TLS certificate not trusted: import the site's SMS Issuing root (or the PKI CA) "
		 "into %s",
		 g_ca);
	conn_case(a, false, want);
	{
		struct wait w;

		lookup(a, IDENT_MAC, "00:50:56:A1:00:01", 5000, &w);
		assert_int_equal(w.oc.kind, OUTCOME_FAILED);
		assert_int_equal(w.oc.fail, FAIL_TLS);
		wait_free(&w);
	}
	adapter_destroy(a);
	sim_stop(&other);
}

/* --- lifetime ----------------------------------------------------------------------------------
 */

/* Destroying the adapter under a slow lookup answers it once, with a failure, at once. */
static void test_destroy_pending(void **state)
{
	static const char *const slow[] = {"--fault", "latency=3000", NULL};
	struct sim s;
	struct sccm_config cfg;
	char base[128];
	struct adapter *a;
	struct ident id;
	struct wait w, wl;
	int64_t t0;

	(void)state;
	memset(&s, 0, sizeof(s));
	assert_int_equal(sim_start(&s, g_cert, g_key, SIM_DATA, slow), 0);
	config_for(&cfg, base, sizeof(base), &s);
	a = make(&cfg);
	assert_int_equal(ident_parse(IDENT_MAC, "005056A10001", 12, &id, NULL, 0), MDM_OK);
	wait_init(&w);
	wait_init(&wl);
	assert_int_equal(adapter_lookup(a, &id, clock_mono_ms() + 10000, on_lookup, &w), MDM_OK);
	assert_int_equal(adapter_list(a, "", on_page, &wl), MDM_OK);
	assert_int_equal(wait_for(&w, 1, 300), 0);
	t0 = clock_mono_ms();
	adapter_destroy(a);
	assert_true(clock_mono_ms() - t0 < 2000);
	assert_int_equal(wait_for(&w, 1, 100), 1);
	assert_int_equal(w.oc.kind, OUTCOME_FAILED);
	assert_int_equal(w.oc.fail, FAIL_INTERNAL);
	assert_non_null(strstr(w.oc.why, "client closed"));
	assert_int_equal(wait_for(&wl, 1, 100), 1);
	assert_int_equal(wl.page.oc.kind, OUTCOME_FAILED);
	/* No second call, however long we wait. */
	assert_int_equal(wait_for(&w, 2, 500), 1);
	assert_int_equal(wait_for(&wl, 2, 10), 1);
	wait_free(&w);
	wait_free(&wl);
	sim_stop(&s);
}

static void test_create_checks(void **state)
{
	struct sccm_config cfg;
	char base[128], longbase[600], why[256];
	const char *only[] = {"B/1", ""};

	(void)state;
	config_for(&cfg, base, sizeof(base), &g_sim);
	cfg.base_url = "http://127.0.0.1/AdminService";
	assert_null(sccm_create(g_engine, &cfg, why, sizeof(why)));
	assert_non_null(strstr(why, "https://"));
	memset(longbase, 'a', sizeof(longbase) - 1);
	longbase[sizeof(longbase) - 1] = '\0';
	memcpy(longbase, "https://", 8);
	cfg.base_url = longbase;
	assert_null(sccm_create(g_engine, &cfg, why, sizeof(why)));
	cfg.base_url = "https:///AdminService";
	assert_null(sccm_create(g_engine, &cfg, why, sizeof(why)));
	cfg.base_url = base;
	cfg.only_ci = only;
	cfg.nonly_ci = 2;
	assert_null(sccm_create(g_engine, &cfg, why, sizeof(why)));
	assert_non_null(strstr(why, "only_ci[1]"));
	cfg.nonly_ci = 1;
	cfg.http.ca_file = NULL;
	assert_null(sccm_create(g_engine, &cfg, why, sizeof(why)));
	assert_non_null(strstr(why, "CA file"));
}

/* only_ci limits the baselines counted; no_rows_compliant flips the empty case. */
static void test_only_ci_and_no_rows(void **state)
{
	const char *only[] = {"SCOPEID_1A2B3C4D-0000-0000-0000-000000000001/"
			      "BASELINE_0E1F2A3B-0000-0000-0000-000000000001/2"};
	struct sccm_config cfg;
	char base[128];
	struct adapter *a;
	struct wait w;

	(void)state;
	config_for(&cfg, base, sizeof(base), &g_sim);
	cfg.only_ci = only;
	cfg.nonly_ci = 1;
	cfg.no_rows_compliant = true;
	a = make(&cfg);
	/* PC-NONCOMP fails only "Compliance Policy", which is not counted here. */
	lookup(a, IDENT_MAC, "00:50:56:A1:00:02", 5000, &w);
	assert_int_equal(w.oc.kind, OUTCOME_FOUND);
	assert_int_equal(w.oc.devs[0].compliant, TRI_TRUE);
	wait_free(&w);
	lookup(a, IDENT_MAC, "00:50:56:A1:00:05", 5000, &w);
	assert_int_equal(w.oc.kind, OUTCOME_FOUND);
	assert_int_equal(w.oc.devs[0].compliant, TRI_TRUE);
	assert_string_equal(w.oc.devs[0].failure_reason, "");
	wait_free(&w);
	adapter_destroy(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_lookup_data_set, reset),
	    cmocka_unit_test_setup(test_lookup_request_count, reset),
	    cmocka_unit_test_setup(test_lookup_guid, reset),
	    cmocka_unit_test_setup(test_lookup_not_applicable, reset),
	    cmocka_unit_test_setup(test_auth, reset),
	    cmocka_unit_test_setup(test_faults, reset),
	    cmocka_unit_test_setup(test_lookup_paged_answer, reset),
	    cmocka_unit_test_setup(test_health_breaker, reset),
	    cmocka_unit_test_setup(test_action, reset),
	    cmocka_unit_test_setup(test_list_joins_pages, reset),
	    cmocka_unit_test_setup(test_list_fails_whole, reset),
	    cmocka_unit_test_setup(test_list_cursor, reset),
	    cmocka_unit_test_setup(test_connection_diagnoses, reset),
	    cmocka_unit_test_setup(test_connection_refused_and_tls, reset),
	    cmocka_unit_test_setup(test_destroy_pending, reset),
	    cmocka_unit_test_setup(test_create_checks, reset),
	    cmocka_unit_test_setup(test_only_ci_and_no_rows, reset),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
