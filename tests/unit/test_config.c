/* test_config: loading, defaults, every kind of refusal (exact messages), paths and secrets. */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "../../adapters/inventory.h"
#include "../../adapters/mcms.h"
#include "../../adapters/sccm.h"
#include "../../gateway/app/config.h"

#define LISTEN "'listen': {'cert_file': 'c.pem', 'key_file': 'k.pem'}"
#define ACCOUNT "{'user': 'ise', 'password_hash': '$scrypt$x', 'roles': ['query']}"
#define ACCOUNTS "'accounts': [" ACCOUNT "]"
#define ADAPTER "{'name': 'inv', 'type': 'inventory', 'file': 'inv.json'}"
#define ADAPTERS "'adapters': [" ADAPTER "]"
#define MINIMAL "{" LISTEN ", " ACCOUNTS ", " ADAPTERS "}"
/* a minimal config with one more top-level member (or a replaced section) */
#define WITH(extra) "{" LISTEN ", " ACCOUNTS ", " ADAPTERS ", " extra "}"
#define WITH_LISTEN(extra)                                                                         \
	"{'listen': {'cert_file': 'c.pem', 'key_file': 'k.pem', " extra "}, " ACCOUNTS             \
	", " ADAPTERS "}"

#define PLAINTEXT_MSG                                                                              \
	"cache.hmac_key: plaintext secret in a file readable by group or others (chmod 600, or "   \
	"use {\"file\": ...} / {\"env\": ...})"

/* settings_of: adapter i's settings, once its type is checked to be t. */
static const void *settings_of(const struct config *c, size_t i, const struct adapter_type *t)
{
	assert_ptr_equal(c->adapters[i].type, t);
	return c->adapters[i].conf;
}

#define INVENTORY_OF(c, i)                                                                         \
	((const struct config_inventory *)settings_of(c, i, &inventory_adapter_type))
#define SCCM_OF(c, i) ((const struct config_sccm *)settings_of(c, i, &sccm_adapter_type))
#define MCMS_OF(c, i) ((const struct config_mcms *)settings_of(c, i, &mcms_adapter_type))

/* dq: the test's JSON with ' for " (easier to read in C). Caller frees. */
static char *dq(const char *s)
{
	char *d = strdup(s);

	assert_non_null(d);
	for (char *p = d; *p; p++)
		if (*p == '\'')
			*p = '"';
	return d;
}

static struct config *cfg_new(void)
{
	struct config *c = malloc(sizeof(*c));

	assert_non_null(c);
	memset(c, 0xa5, sizeof(*c));
	return c;
}

static enum mdm_err load_as(const char *name, const char *sq, struct config *c, char *why,
			    size_t whysz)
{
	char *j = dq(sq);
	enum mdm_err rc = config_load_mem(name, j, strlen(j), c, why, whysz);

	free(j);
	return rc;
}

static void load_ok(const char *name, const char *sq, struct config *c)
{
	char why[512] = "";
	enum mdm_err rc = load_as(name, sq, c, why, sizeof(why));

	if (rc != MDM_OK)
		fail_msg("expected success, got %d: %s", rc, why);
}

/* --- loading valid configs ------------------------------------------------------------------- */

static void check_defaults(const struct config *c)
{
	assert_string_equal(c->listen.address, "0.0.0.0");
	assert_int_equal(c->listen.port, 8443);
	assert_string_equal(c->listen.instance, "");
	assert_int_equal(c->listen.threads, 4);
	assert_int_equal(c->listen.idle_timeout_ms, 60000);
	assert_int_equal(c->listen.header_timeout_ms, 10000);
	assert_int_equal(c->listen.body_timeout_ms, 30000);
	assert_int_equal(c->listen.shutdown_grace_ms, 10000);
	assert_int_equal(c->listen.max_connections, 4096);
	assert_int_equal(c->listen.max_connections_per_ip, 1024);
	assert_int_equal(c->listen.header_memory, 32768);
	assert_int_equal(c->listen.max_body, 1048576);
	assert_int_equal(c->api.query_max_size, 5000);
	assert_string_equal(c->api.redirect_url, "");
	assert_string_equal(c->api.vendor, "mdmgw");
	assert_string_equal(c->api.product_name, "mdmgw MDM compliance gateway");
	assert_string_equal(c->api.product_version, MDMGW_VERSION);
	assert_int_equal(c->api.lookup_timeout_ms, 150);
	assert_true(c->api.compliant_requires_all);
	assert_false(c->api.partial_is_unavailable);
	assert_int_equal(c->api.max_hops, 4);
	/* "" from config_defaults, hostname:port once loaded */
	assert_true(!c->api.gateway_id[0] || strstr(c->api.gateway_id, ":8443"));
	assert_int_equal(c->auth.verify_cache_ttl_ms, 600000);
	assert_int_equal(c->auth.verify_cache_size, 1024);
	assert_int_equal(c->auth.max_concurrent_hashes, 2);
	assert_int_equal(c->auth.fail_limit, 5);
	assert_int_equal(c->auth.fail_window_ms, 60000);
	assert_int_equal(c->auth.lockout_ms, 60000);
	assert_int_equal(c->cache.fresh_ttl_ms, 900000);
	assert_int_equal(c->cache.stale_ttl_ms, 3600000);
	assert_int_equal(c->cache.negative_ttl_ms, 60000);
	assert_int_equal(c->cache.max_entries, 100000);
	assert_int_equal(c->cache.shards, 16);
	assert_false(c->cache.hmac_key_set);
	assert_string_equal(c->cache.hmac_key, "");
	assert_string_equal(c->log_level, "info");
}

static void test_defaults(void **state)
{
	struct config *c = cfg_new();

	(void)state;
	config_defaults(c);
	check_defaults(c);
	assert_int_equal(c->naccounts, 0);
	assert_int_equal(c->nadapters, 0);
	assert_string_equal(c->state_dir, "state");
	assert_string_equal(c->listen.cert_file, "");
	free(c);
}

static void test_actions_section(void **state)
{
	struct config *c = cfg_new();

	(void)state;
	load_ok("t.json", MINIMAL, c);
	assert_int_equal(c->actions.roles.corporate_wipe, ROLE_ACTION);
	assert_int_equal(c->actions.roles.full_wipe, ROLE_ACTION);
	assert_int_equal(c->actions.roles.pin_lock, ROLE_ACTION);
	assert_false(c->actions.allow_full_wipe_personal);
	assert_false(c->actions.allow_full_wipe_unknown_ownership);
	assert_int_equal(c->actions.ise_key_window_ms, 15 * 60 * 1000);
	assert_int_equal(c->actions.lookup_timeout_ms, 10000);
	assert_int_equal(c->actions.journal.max_bytes, 16 * 1024 * 1024);
	assert_int_equal(c->actions.journal.keep, 5);
	assert_int_equal(c->actions.journal.key_window_ms, 24LL * 3600 * 1000);
	load_ok("t.json",
		WITH("'actions': {'roles': {'full_wipe': ['admin'], 'pin_lock': ['query', "
		     "'action']}, 'allow_full_wipe_personal': true, "
		     "'allow_full_wipe_unknown_ownership': true, 'ise_key_window': '1h', "
		     "'lookup_timeout': '3s', 'journal': {'max_bytes': 65536, 'keep': 2, "
		     "'key_window': '2d'}}"),
		c);
	assert_int_equal(c->actions.roles.corporate_wipe, ROLE_ACTION);
	assert_int_equal(c->actions.roles.full_wipe, ROLE_ADMIN);
	assert_int_equal(c->actions.roles.pin_lock, ROLE_QUERY | ROLE_ACTION);
	assert_int_equal(config_action_roles_of(&c->actions.roles, 1), ROLE_ADMIN);
	assert_int_equal(config_action_roles_of(&c->actions.roles, 3), 0);
	assert_true(c->actions.allow_full_wipe_personal);
	assert_true(c->actions.allow_full_wipe_unknown_ownership);
	assert_int_equal(c->actions.ise_key_window_ms, 3600 * 1000);
	assert_int_equal(c->actions.lookup_timeout_ms, 3000);
	assert_int_equal(c->actions.journal.max_bytes, 65536);
	assert_int_equal(c->actions.journal.keep, 2);
	assert_int_equal(c->actions.journal.key_window_ms, 2LL * 24 * 3600 * 1000);
	/* reconciler: defaults, then every key */
	load_ok("t.json", MINIMAL, c);
	assert_int_equal(c->reconciler.interval_ms, 15 * 60 * 1000);
	assert_true(c->reconciler.jitter > 0.099 && c->reconciler.jitter < 0.101);
	assert_int_equal(c->reconciler.vendor_checkin_ms, 30 * 60 * 1000);
	assert_int_equal(c->reconciler.page_timeout_ms, 60000);
	assert_true(c->reconciler.write_through);
	load_ok("t.json",
		WITH("'reconciler': {'interval': '0', 'jitter': 0.5, 'vendor_checkin': '1h', "
		     "'page_timeout': '5s', 'write_through': false}"),
		c);
	assert_false(c->reconciler.write_through);
	assert_int_equal(c->reconciler.interval_ms, 0);
	assert_true(c->reconciler.jitter > 0.499 && c->reconciler.jitter < 0.501);
	assert_int_equal(c->reconciler.vendor_checkin_ms, 3600 * 1000);
	assert_int_equal(c->reconciler.page_timeout_ms, 5000);
	load_ok("t.json", WITH("'reconciler': {'interval': '2s', 'jitter': 0}"), c);
	assert_int_equal(c->reconciler.interval_ms, 2000);
	assert_true(c->reconciler.jitter == 0);
	free(c);
}

static void test_ha_section(void **state)
{
	struct config *c = cfg_new();
	char why[512];

	(void)state;
	load_ok("t.json", MINIMAL, c);
	assert_int_equal(c->ha.lease_ttl_ms, 15000);
	assert_int_equal(c->ha.follow_interval_ms, 5000);
	assert_int_equal(c->ha.max_snapshot, 512u * 1024 * 1024);
	load_ok("t.json",
		WITH("'ha': {'lease_ttl': '2s', 'follow_interval': '10m', 'max_snapshot': "
		     "1048576}"),
		c);
	assert_int_equal(c->ha.lease_ttl_ms, 2000);
	assert_int_equal(c->ha.follow_interval_ms, 600000);
	assert_int_equal(c->ha.max_snapshot, 1048576);
	assert_int_equal(load_as("t.json", WITH("'ha': {'lease_ttl': '1s'}"), c, why, sizeof(why)),
			 MDM_ERR_CONFIG);
	assert_non_null(strstr(why, "t.json: ha.lease_ttl: "));
	assert_int_equal(
	    load_as("t.json", WITH("'ha': {'max_snapshot': 1000}"), c, why, sizeof(why)),
	    MDM_ERR_CONFIG);
	assert_non_null(strstr(why, "t.json: ha.max_snapshot: "));
	assert_int_equal(load_as("t.json", WITH("'ha': {'leader': true}"), c, why, sizeof(why)),
			 MDM_ERR_CONFIG);
	assert_string_equal(why, "t.json: ha.leader: unknown key");
	free(c);
}

static void test_minimal(void **state)
{
	struct config *c = cfg_new();

	(void)state;
	load_ok("t.json", MINIMAL, c);
	check_defaults(c);
	assert_string_equal(c->path, "t.json");
	assert_string_equal(c->listen.cert_file, "c.pem");
	assert_string_equal(c->listen.key_file, "k.pem");
	assert_int_equal(c->naccounts, 1);
	assert_string_equal(c->accounts[0].user, "ise");
	assert_string_equal(c->accounts[0].password_hash, "$scrypt$x");
	assert_int_equal(c->accounts[0].roles, ROLE_QUERY);
	assert_int_equal(c->nadapters, 1);
	assert_string_equal(c->adapters[0].name, "inv");
	assert_ptr_equal(c->adapters[0].type, &inventory_adapter_type);
	assert_string_equal(INVENTORY_OF(c, 0)->file, "inv.json");
	assert_string_equal(c->state_dir, "state");
	free(c);
}

static const char full_config[] =
    "{'listen': {'address': '::1', 'port': 9443, 'instance': 'site-1.a_b', 'cert_file': "
    "'/etc/mdmgw/s.pem', 'key_file': 'k.pem', 'threads': 16, 'idle_timeout': '2m', "
    "'header_timeout': '100ms', 'body_timeout': '10m', 'shutdown_grace': '0s', "
    "'max_connections': 1000000, 'max_connections_per_ip': 1000000, 'header_memory': 4096, "
    "'max_body': 67108864},"
    " 'api': {'query_max_size': 1, 'redirect_url': 'https://portal.example/enroll', 'vendor': "
    "'ACME', 'product_name': 'Gateway', 'product_version': '9.9', 'lookup_timeout': '60s', "
    "'compliance_rule': 'any', 'partial_answer': 'unavailable'},"
    " 'auth': {'verify_cache_ttl': '24h', 'verify_cache_size': 1, 'max_concurrent_hashes': 64, "
    "'fail_limit': 1000, 'fail_window': '1s', 'lockout': '1h'},"
    " 'accounts': [{'user': 'ise', 'password_hash': '$scrypt$ln=15,r=8,p=1$c2FsdA==$aGFzaA==', "
    "'roles': ['query']}, {'user': 'ops', 'password_hash': '$scrypt$y', 'roles': ['admin', "
    "'action', 'query']}],"
    " 'cache': {'fresh_ttl': '7d', 'stale_ttl': '0s', 'negative_ttl': '1d', 'max_entries': 16, "
    "'shards': 1024, 'hmac_key': {'env': 'MDMGW_TEST_FULL_HMAC'}},"
    " 'adapters': [" ADAPTER ", {'name': 'B-2_x', 'type': 'inventory', 'file': '/srv/b.json'}],"
    " 'state_dir': '/var/lib/mdmgw', 'log_level': 'debug'}";

static void test_full(void **state)
{
	struct config *c = cfg_new();

	(void)state;
	assert_int_equal(setenv("MDMGW_TEST_FULL_HMAC", "0123456789abcdef0123", 1), 0);
	load_ok("conf/full.json", full_config, c);
	assert_string_equal(c->listen.address, "::1");
	assert_int_equal(c->listen.port, 9443);
	assert_string_equal(c->listen.instance, "site-1.a_b");
	assert_string_equal(c->listen.cert_file, "/etc/mdmgw/s.pem");
	assert_string_equal(c->listen.key_file, "conf/k.pem");
	assert_int_equal(c->listen.threads, 16);
	assert_int_equal(c->listen.idle_timeout_ms, 120000);
	assert_int_equal(c->listen.header_timeout_ms, 100);
	assert_int_equal(c->listen.body_timeout_ms, 600000);
	assert_int_equal(c->listen.shutdown_grace_ms, 0);
	assert_int_equal(c->listen.max_connections, 1000000);
	assert_int_equal(c->listen.max_connections_per_ip, 1000000);
	assert_int_equal(c->listen.header_memory, 4096);
	assert_int_equal(c->listen.max_body, 67108864);
	assert_int_equal(c->api.query_max_size, 1);
	assert_string_equal(c->api.redirect_url, "https://portal.example/enroll");
	assert_string_equal(c->api.vendor, "ACME");
	assert_string_equal(c->api.product_name, "Gateway");
	assert_string_equal(c->api.product_version, "9.9");
	assert_int_equal(c->api.lookup_timeout_ms, 60000);
	assert_false(c->api.compliant_requires_all);
	assert_true(c->api.partial_is_unavailable);
	assert_int_equal(c->auth.verify_cache_ttl_ms, 86400000);
	assert_int_equal(c->auth.verify_cache_size, 1);
	assert_int_equal(c->auth.max_concurrent_hashes, 64);
	assert_int_equal(c->auth.fail_limit, 1000);
	assert_int_equal(c->auth.fail_window_ms, 1000);
	assert_int_equal(c->auth.lockout_ms, 3600000);
	assert_int_equal(c->naccounts, 2);
	assert_int_equal(c->accounts[1].roles, ROLE_QUERY | ROLE_ACTION | ROLE_ADMIN);
	assert_string_equal(c->accounts[1].user, "ops");
	assert_int_equal(c->cache.fresh_ttl_ms, 7 * 86400000LL);
	assert_int_equal(c->cache.stale_ttl_ms, 0);
	assert_int_equal(c->cache.negative_ttl_ms, 86400000);
	assert_int_equal(c->cache.max_entries, 16);
	assert_int_equal(c->cache.shards, 1024);
	assert_true(c->cache.hmac_key_set);
	assert_string_equal(c->cache.hmac_key, "0123456789abcdef0123");
	assert_int_equal(c->nadapters, 2);
	assert_string_equal(INVENTORY_OF(c, 0)->file, "conf/inv.json");
	assert_string_equal(c->adapters[1].name, "B-2_x");
	assert_string_equal(INVENTORY_OF(c, 1)->file, "/srv/b.json");
	assert_string_equal(c->state_dir, "/var/lib/mdmgw");
	assert_string_equal(c->log_level, "debug");
	unsetenv("MDMGW_TEST_FULL_HMAC");
	free(c);
}

/* The shipped example must load (run from the repository root, as make does). */
static void test_example(void **state)
{
	struct config *c;
	char why[512] = "";

	(void)state;
	if (access("conf/mdmgw.json.example", R_OK) != 0)
		skip();
	/* its sccm adapter's ca_file must exist: the dev CA, made by `make certs` */
	if (access("certs/ca.pem", R_OK) != 0) {
		print_message("certs/ca.pem missing (make certs): example not checked\n");
		skip();
	}
	c = cfg_new();
	assert_int_equal(setenv("MDMGW_CACHE_HMAC_KEY", "example-hmac-key-0123456789", 1), 0);
	assert_int_equal(setenv("MDMGW_SCCM_PASSWORD", "example-password", 1), 0);
	assert_int_equal(setenv("MDMGW_CLOUD_PASSWORD", "example-password", 1), 0);
	assert_int_equal(setenv("MDMGW_RADIUS_SECRET", "example-radius-secret", 1), 0);
	assert_int_equal(setenv("MDMGW_NAS_SECRET", "example-nas-secret", 1), 0);
	assert_int_equal(setenv("MDMGW_MNT_PASSWORD", "example-password", 1), 0);
	assert_int_equal(setenv("MDMGW_WEBHOOK_SECRET", "example-webhook-secret-0123", 1), 0);
	if (config_load("conf/mdmgw.json.example", c, why, sizeof(why)) != MDM_OK)
		fail_msg("%s", why);
	unsetenv("MDMGW_NAS_SECRET");
	assert_int_equal(c->nnas, 1);
	assert_string_equal(c->nas[0].host, "10.20.0.2"); /* defaults to address */
	assert_string_equal(c->nas[0].secret, "example-nas-secret");
	assert_int_equal(c->nas[0].action, CONFIG_NAS_REAUTH);
	unsetenv("MDMGW_SCCM_PASSWORD");
	unsetenv("MDMGW_CLOUD_PASSWORD");
	assert_int_equal(c->nadapters, 3);
	assert_ptr_equal(c->adapters[1].type, &sccm_adapter_type);
	assert_ptr_equal(c->adapters[2].type, &mcms_adapter_type);
	assert_string_equal(MCMS_OF(c, 2)->http.ca_file, "conf/../certs/ca.pem");
	assert_string_equal(c->api.gateway_id, "gw1.corp.example");
	assert_int_equal(c->actions.lookup_timeout_ms, 10000);
	assert_false(c->actions.allow_full_wipe_personal);
	assert_int_equal(c->coa.max_attempts, 3);
	assert_string_equal(c->coa.mnt.user, "ers-coa");
	assert_true(c->coa.webhook.secret_set);
	assert_string_equal(SCCM_OF(c, 1)->http.ca_file, "conf/../certs/ca.pem");
	assert_string_equal(SCCM_OF(c, 1)->user, "CORP\\svc-ise");
	assert_string_equal(c->listen.cert_file, "conf/../certs/server.pem");
	assert_string_equal(c->listen.key_file, "conf/../certs/server-key.pem");
	assert_string_equal(INVENTORY_OF(c, 0)->file, "conf/demo-inventory.json");
	assert_string_equal(c->accounts[0].user, "ise");
	assert_int_equal(c->accounts[0].roles, ROLE_QUERY);
	assert_true(c->cache.hmac_key_set);
	assert_int_equal(c->ha.lease_ttl_ms, 15000);
	assert_int_equal(c->ha.follow_interval_ms, 5000);
	assert_int_equal(c->ha.max_snapshot, 536870912);
	unsetenv("MDMGW_CACHE_HMAC_KEY");
	/* accounting */
	assert_string_equal(c->accounting.listen_addr, "0.0.0.0");
	assert_int_equal(c->accounting.listen_port, 1813);
	assert_int_equal(c->accounting.nclients, 1);
	assert_int_equal(c->accounting.clients[0].prefix, 16);
	assert_string_equal(c->accounting.clients[0].secret, "example-radius-secret");
	assert_int_equal(c->accounting.session_ttl_ms, 2 * 3600 * 1000);
	unsetenv("MDMGW_RADIUS_SECRET");
	free(c);
}

static void test_role_parse(void **state)
{
	(void)state;
	assert_int_equal(role_parse("query"), ROLE_QUERY);
	assert_int_equal(role_parse("action"), ROLE_ACTION);
	assert_int_equal(role_parse("admin"), ROLE_ADMIN);
	assert_int_equal(role_parse("Admin"), 0);
	assert_int_equal(role_parse(""), 0);
	assert_int_equal(role_parse(NULL), 0);
}

/* --- refusals, with their exact messages ----------------------------------------------------- */

struct bad {
	const char *json;
	const char *msg;
};

static const struct bad bad_cases[] = {
    /* unknown keys */
    {"{'bogus': 1, " LISTEN ", " ACCOUNTS ", " ADAPTERS "}", "t.json: bogus: unknown key"},
    {WITH_LISTEN("'bogus': 1"), "t.json: listen.bogus: unknown key"},
    {"{" LISTEN ", 'accounts': [{'user': 'ise', 'password_hash': '$scrypt$x', 'roles': "
     "['query'], 'password': 'x'}], " ADAPTERS "}",
     "t.json: accounts[0].password: unknown key"},
    {WITH("'b\\u0000\\nx': 1"), "t.json: line 1, column 221: NUL byte in object key not "
				"supported near '\"b\\u0000\\nx\"'"},
    {WITH("'a\\nb': 1"), "t.json: a\\x0ab: unknown key"},
    /* wrong types */
    {WITH_LISTEN("'port': '8443'"), "t.json: listen.port: must be an integer from 1 to 65535"},
    {WITH_LISTEN("'port': 8443.0"), "t.json: listen.port: must be an integer from 1 to 65535"},
    {WITH_LISTEN("'port': true"), "t.json: listen.port: must be an integer from 1 to 65535"},
    {WITH_LISTEN("'port': null"), "t.json: listen.port: must be an integer from 1 to 65535"},
    {"{'listen': [], " ACCOUNTS ", " ADAPTERS "}", "t.json: listen: must be an object"},
    {WITH("'log_level': 3"), "t.json: log_level: must be a string (error, warn, info, debug)"},
    {WITH("'state_dir': ['x']"), "t.json: state_dir: must be a string"},
    {"{" LISTEN ", 'accounts': {}, " ADAPTERS "}", "t.json: accounts: must be an array"},
    {"{" LISTEN ", 'accounts': [7], " ADAPTERS "}", "t.json: accounts[0]: must be an object"},
    /* out of range */
    {WITH_LISTEN("'port': 0"), "t.json: listen.port: must be an integer from 1 to 65535"},
    {WITH_LISTEN("'port': 65536"), "t.json: listen.port: must be an integer from 1 to 65535"},
    {WITH_LISTEN("'threads': 257"), "t.json: listen.threads: must be an integer from 1 to 256"},
    {WITH_LISTEN("'max_body': 1023"),
     "t.json: listen.max_body: must be an integer from 1024 to 67108864"},
    {WITH("'api': {'query_max_size': 5001}"),
     "t.json: api.query_max_size: must be an integer from 1 to 5000"},
    {WITH("'cache': {'max_entries': -1}"),
     "t.json: cache.max_entries: must be an integer from 16 to 100000000"},
    {WITH_LISTEN("'port': 99999999999999999999"),
     "t.json: line 1, column 83: too big integer near '99999999999999999999'"},
    /* durations */
    {WITH("'cache': {'fresh_ttl': '15'}"),
     "t.json: cache.fresh_ttl: \"15\" is not a duration (use a number with ms, s, m, h or d)"},
    {WITH("'cache': {'fresh_ttl': '1.5h'}"),
     "t.json: cache.fresh_ttl: \"1.5h\" is not a duration (use a number with ms, s, m, h or "
     "d)"},
    {WITH("'cache': {'fresh_ttl': 15}"),
     "t.json: cache.fresh_ttl: must be a duration string such as \"30s\" (ms, s, m, h or d)"},
    {WITH_LISTEN("'header_timeout': '50ms'"),
     "t.json: listen.header_timeout: must be from 100ms to 5m"},
    {WITH("'cache': {'stale_ttl': '8d'}"), "t.json: cache.stale_ttl: must be from 0s to 7d"},
    {WITH("'api': {'lookup_timeout': '61s'}"),
     "t.json: api.lookup_timeout: must be from 10ms to 1m"},
    /* choices */
    {WITH("'api': {'compliance_rule': 'most'}"),
     "t.json: api.compliance_rule: unknown value \"most\" (all, any)"},
    {WITH("'log_level': 'trace'"),
     "t.json: log_level: unknown value \"trace\" (error, warn, info, debug)"},
    /* accounts */
    {"{" LISTEN ", 'accounts': [" ACCOUNT ", {'user': 'x', 'password_hash': '$scrypt$x', "
     "'roles': ['root']}], " ADAPTERS "}",
     "t.json: accounts[1].roles[0]: unknown role \"root\" (query, action, admin)"},
    {"{" LISTEN ", 'accounts': [" ACCOUNT ", " ACCOUNT "], " ADAPTERS "}",
     "t.json: accounts[1].user: duplicate user \"ise\""},
    {"{" LISTEN ", " ADAPTERS "}", "t.json: accounts: required"},
    {"{" LISTEN ", 'accounts': [], " ADAPTERS "}", "t.json: accounts: must have 1 to 64 entries"},
    {"{" LISTEN
     ", 'accounts': [{'user': 'ise', 'password_hash': '$scrypt$x', 'roles': []}], " ADAPTERS "}",
     "t.json: accounts[0].roles: must not be empty (query, action, admin)"},
    {"{" LISTEN ", 'accounts': [{'user': 'ise', 'password_hash': '$scrypt$x', 'roles': "
     "['query', 'query']}], " ADAPTERS "}",
     "t.json: accounts[0].roles[1]: duplicate role \"query\""},
    {"{" LISTEN ", 'accounts': [{'user': 'ise', 'password_hash': '$scrypt$x'}], " ADAPTERS "}",
     "t.json: accounts[0].roles: required"},
    {"{" LISTEN ", 'accounts': [{'user': 'a:b', 'password_hash': '$scrypt$x', 'roles': "
     "['query']}], " ADAPTERS "}",
     "t.json: accounts[0].user: must not contain ':'"},
    {"{" LISTEN ", 'accounts': [{'user': '', 'password_hash': '$scrypt$x', 'roles': "
     "['query']}], " ADAPTERS "}",
     "t.json: accounts[0].user: must not be empty"},
    {"{" LISTEN ", 'accounts': [{'user': 'ise', 'password_hash': 'secret', 'roles': "
     "['query']}], " ADAPTERS "}",
     "t.json: accounts[0].password_hash: must be a scrypt hash line \"$scrypt$...\" (make one "
     "with `mdmgw passwd`)"},
    /* adapters */
    {"{" LISTEN ", " ACCOUNTS ", 'adapters': [" ADAPTER ", " ADAPTER "]}",
     "t.json: adapters[1].name: duplicate adapter name \"inv\""},
    {"{" LISTEN ", " ACCOUNTS ", 'adapters': [{'name': 'in v', 'type': 'inventory', 'file': "
     "'x'}]}",
     "t.json: adapters[0].name: must be 1 to 63 of A-Z a-z 0-9 _ -"},
    {"{" LISTEN ", " ACCOUNTS ", 'adapters': [{'name': 'inv', 'type': 'inventory'}]}",
     "t.json: adapters[0].file: required"},
    {"{" LISTEN ", " ACCOUNTS ", 'adapters': [{'name': 'inv', 'type': 'ldap', 'file': 'x'}]}",
     "t.json: adapters[0].type: unknown value \"ldap\" (inventory, sccm, mcms)"},
    {"{" LISTEN ", " ACCOUNTS "}", "t.json: adapters: required"},
    /* listen */
    {"{'listen': {'key_file': 'k.pem'}, " ACCOUNTS ", " ADAPTERS "}",
     "t.json: listen.cert_file: required"},
    {"{" ACCOUNTS ", " ADAPTERS "}", "t.json: listen.cert_file: required"},
    {WITH_LISTEN("'instance': 'a/b'"),
     "t.json: listen.instance: must be \"\" or 1 to 63 of A-Z a-z 0-9 . _ - (no slashes, not "
     "\".\" or \"..\")"},
    {WITH_LISTEN("'instance': '..'"),
     "t.json: listen.instance: must be \"\" or 1 to 63 of A-Z a-z 0-9 . _ - (no slashes, not "
     "\".\" or \"..\")"},
    {WITH_LISTEN("'max_connections_per_ip': 5000"),
     "t.json: listen.max_connections_per_ip: must not be greater than listen.max_connections "
     "(4096)"},
    {WITH_LISTEN("'address': 'localhost'"),
     "t.json: listen.address: must be an IPv4 or IPv6 address such as \"0.0.0.0\" or \"::\""},
    {"{'listen': {'cert_file': '', 'key_file': 'k.pem'}, " ACCOUNTS ", " ADAPTERS "}",
     "t.json: listen.cert_file: must not be empty"},
    /* cache */
    {WITH("'cache': {'shards': 12}"), "t.json: cache.shards: must be a power of two from 1 to "
				      "1024"},
    {WITH("'cache': {'hmac_key': 'short'}"),
     "t.json: cache.hmac_key: must be at least 16 bytes long"},
    {WITH("'cache': {'hmac_key': {'file': 'a', 'env': 'b'}}"),
     "t.json: cache.hmac_key: must be a string, {\"file\": PATH} or {\"env\": NAME}"},
    {WITH("'cache': {'hmac_key': 12345678901234567}"),
     "t.json: cache.hmac_key: must be a string, {\"file\": PATH} or {\"env\": NAME}"},
    /* strings */
    {WITH("'api': {'vendor': '0123456789012345678901234567890123456789012345678901234567890123'"
	  "}"),
     "t.json: api.vendor: is too long (at most 63 bytes)"},
    {WITH("'api': {'vendor': 'a\\u0001b'}"),
     "t.json: api.vendor: must not contain control characters"},
    {WITH("'api': {'vendor': 'a\\u0085b'}"),
     "t.json: api.vendor: must not contain control characters"},
    {WITH("'api': {'vendor': ''}"), "t.json: api.vendor: must not be empty"},
    {WITH("'api': {'redirect_url': 'ftp://x'}"),
     "t.json: api.redirect_url: must be \"\" or an http:// or https:// URL without spaces"},
    /* syntax and shape */
    {"{\n  'listen': {\n    'port': 8443,,\n", "t.json: line 3, column 18: string or '}' "
					       "expected near ','"},
    {WITH_LISTEN("'port': 1, 'port': 2"),
     "t.json: line 1, column 72: duplicate object key near '\"port\"'"},
    {"", "t.json: line 1, column 0: unexpected token near end of file"},
    {WITH("'actions': {'roles': {'wipe': ['action']}}"), "t.json: actions.roles.wipe: unknown key"},
    {WITH("'actions': {'roles': {'full_wipe': []}}"),
     "t.json: actions.roles.full_wipe: must not be empty (query, action, admin)"},
    {WITH("'actions': {'allow_full_wipe_personal': 'yes'}"),
     "t.json: actions.allow_full_wipe_personal: must be true or false"},
    {WITH("'actions': {'journal': {'keep': 0}}"),
     "t.json: actions.journal.keep: must be an integer from 1 to 99"},
    {WITH("'reconciler': {'interval': 15}"),
     "t.json: reconciler.interval: must be a duration string such as \"30s\" (ms, s, m, h or d)"},
    {WITH("'reconciler': {'interval': '500ms'}"),
     "t.json: reconciler.interval: must be \"0\" (timer off) or from 1s to 7d"},
    {WITH("'reconciler': {'interval': '8d'}"),
     "t.json: reconciler.interval: must be from 0s to 7d"},
    {WITH("'reconciler': {'jitter': 0.7}"),
     "t.json: reconciler.jitter: must be a fraction from 0 to 0.5"},
    {WITH("'reconciler': {'jitter': -0.1}"),
     "t.json: reconciler.jitter: must be a number from 0 to 1"},
    {WITH("'reconciler': {'page_timeout': '0'}"),
     "t.json: reconciler.page_timeout: must be from 1s to 10m"},
    {WITH("'reconciler': {'vendor_checkin': '1m', 'every': '1m'}"),
     "t.json: reconciler.every: unknown key"},
    {"[]", "t.json: (top): must be a JSON object"},
    {"\"x\"", "t.json: (top): must be a JSON object"},
    {MINIMAL " x", "t.json: line 1, column 210: end of file expected near 'x'"},
};

static void test_bad(void **state)
{
	struct config *c = cfg_new();
	char why[512];
	int failures = 0;

	(void)state;
	c->listen.port = 4242;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad *b = &bad_cases[i];
		enum mdm_err rc;

		why[0] = '\0';
		rc = load_as("t.json", b->json, c, why, sizeof(why));
		if (rc != MDM_ERR_CONFIG || strcmp(why, b->msg) != 0 || strchr(why, '\n')) {
			print_error("case %zu: rc %d\n  got:  %s\n  want: %s\n", i, rc, why,
				    b->msg);
			failures++;
		}
	}
	assert_int_equal(failures, 0);
	assert_int_equal(c->listen.port, 4242); /* untouched by failed loads */
	free(c);
}

static void test_too_many_accounts(void **state)
{
	struct config *c = cfg_new();
	char why[512], *json, *p;
	size_t cap = 64 * 1024, len;

	(void)state;
	json = malloc(cap);
	assert_non_null(json);
	p = json;
	len = (size_t)snprintf(p, cap, "{" LISTEN ", " ADAPTERS ", 'accounts': [");
	for (int i = 0; i < CONFIG_MAX_ACCOUNTS + 1; i++)
		len += (size_t)snprintf(json + len, cap - len,
					"%s{'user': 'u%d', 'password_hash': '$scrypt$x', "
					"'roles': ['query']}",
					i ? ", " : "", i);
	snprintf(json + len, cap - len, "]}");
	assert_int_equal(load_as("t.json", json, c, why, sizeof(why)), MDM_ERR_CONFIG);
	assert_string_equal(why, "t.json: accounts: must have 1 to 64 entries");
	free(json);
	free(c);
}

static void test_too_big(void **state)
{
	struct config *c = cfg_new();
	size_t n = CONFIG_FILE_MAX + 1;
	char why[512], *big = malloc(n);

	(void)state;
	assert_non_null(big);
	memset(big, ' ', n);
	big[0] = '{';
	big[n - 1] = '}';
	assert_int_equal(config_load_mem("t.json", big, n, c, why, sizeof(why)), MDM_ERR_CONFIG);
	assert_string_equal(why, "t.json: (file): larger than 1048576 bytes");
	free(big);
	free(c);
}

/* --- files and paths ------------------------------------------------------------------------- */

struct tmp {
	char dir[64];
	char file[128];
};

static void tmp_make(struct tmp *t)
{
	snprintf(t->dir, sizeof(t->dir), "/tmp/mdmgw-test-config-XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->file, sizeof(t->file), "%s/mdmgw.json", t->dir);
}

static void write_file(const char *path, const char *content, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(content, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static void write_json(const char *path, const char *sq, mode_t mode)
{
	char *j = dq(sq);

	write_file(path, j, mode);
	free(j);
}

static void tmp_clean(struct tmp *t, const char *extra)
{
	char p[256];

	unlink(t->file);
	if (extra) {
		snprintf(p, sizeof(p), "%s/%s", t->dir, extra);
		unlink(p);
	}
	assert_int_equal(rmdir(t->dir), 0);
}

static void test_paths_file(void **state)
{
	struct config *c = cfg_new();
	struct tmp t;
	char why[512], want[256];

	(void)state;
	tmp_make(&t);
	write_json(t.file,
		   "{'listen': {'cert_file': 'certs/s.pem', 'key_file': '/abs/k.pem'}, " ACCOUNTS
		   ", " ADAPTERS "}",
		   0644);
	if (config_load(t.file, c, why, sizeof(why)) != MDM_OK)
		fail_msg("%s", why);
	assert_string_equal(c->path, t.file);
	snprintf(want, sizeof(want), "%s/certs/s.pem", t.dir);
	assert_string_equal(c->listen.cert_file, want);
	assert_string_equal(c->listen.key_file, "/abs/k.pem");
	snprintf(want, sizeof(want), "%s/inv.json", t.dir);
	assert_string_equal(INVENTORY_OF(c, 0)->file, want);
	snprintf(want, sizeof(want), "%s/state", t.dir);
	assert_string_equal(c->state_dir, want);

	write_json(t.file, WITH("'state_dir': '../var/mdmgw'"), 0600);
	if (config_load(t.file, c, why, sizeof(why)) != MDM_OK)
		fail_msg("%s", why);
	snprintf(want, sizeof(want), "%s/../var/mdmgw", t.dir);
	assert_string_equal(c->state_dir, want);
	tmp_clean(&t, NULL);
	free(c);
}

static void test_paths_mem(void **state)
{
	struct config *c = cfg_new();
	char why[512], *json;
	size_t cap = 4096;

	(void)state;
	load_ok("x.json", MINIMAL, c);
	assert_string_equal(c->listen.cert_file, "c.pem");
	assert_string_equal(c->state_dir, "state");
	load_ok("conf/x.json", MINIMAL, c);
	assert_string_equal(c->listen.cert_file, "conf/c.pem");
	assert_string_equal(INVENTORY_OF(c, 0)->file, "conf/inv.json");
	assert_string_equal(c->state_dir, "conf/state");
	load_ok("/x.json", MINIMAL, c);
	assert_string_equal(c->listen.cert_file, "/c.pem");
	assert_string_equal(c->state_dir, "/state");

	/* 1020 bytes fit alone but not once "conf/" is put in front */
	json = malloc(cap);
	assert_non_null(json);
	snprintf(
	    json, cap,
	    "{'listen': {'cert_file': '%01020d', 'key_file': 'k'}, " ACCOUNTS ", " ADAPTERS "}", 0);
	load_ok("x.json", json, c);
	assert_int_equal(strlen(c->listen.cert_file), 1020);
	assert_int_equal(load_as("conf/x.json", json, c, why, sizeof(why)), MDM_ERR_CONFIG);
	assert_string_equal(why, "conf/x.json: listen.cert_file: is too long once resolved against "
				 "\"conf\" (at most 1023 bytes)");
	snprintf(
	    json, cap,
	    "{'listen': {'cert_file': '%01024d', 'key_file': 'k'}, " ACCOUNTS ", " ADAPTERS "}", 0);
	assert_int_equal(load_as("x.json", json, c, why, sizeof(why)), MDM_ERR_CONFIG);
	assert_string_equal(why, "x.json: listen.cert_file: is too long (at most 1023 bytes)");
	free(json);
	free(c);
}

static void test_load_errors(void **state)
{
	struct config *c = cfg_new();
	struct tmp t;
	char why[512], want[1024];
	FILE *f;

	(void)state;
	assert_int_equal(config_load("/nonexistent/mdmgw.json", c, why, sizeof(why)), MDM_ERR_IO);
	assert_string_equal(why, "/nonexistent/mdmgw.json: (file): cannot open: No such file or "
				 "directory");
	assert_int_equal(config_load("/tmp", c, why, sizeof(why)), MDM_ERR_CONFIG);
	assert_string_equal(why, "/tmp: (file): not a regular file");

	tmp_make(&t);
	f = fopen(t.file, "w");
	assert_non_null(f);
	for (int i = 0; i < CONFIG_FILE_MAX / 8 + 1; i++)
		fputs("        ", f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(config_load(t.file, c, why, sizeof(why)), MDM_ERR_CONFIG);
	snprintf(want, sizeof(want), "%s: (file): larger than 1048576 bytes", t.file);
	assert_string_equal(why, want);

	write_json(t.file, "{\n'listen': 5\n}", 0600);
	assert_int_equal(config_load(t.file, c, why, sizeof(why)), MDM_ERR_CONFIG);
	snprintf(want, sizeof(want), "%s: listen: must be an object", t.file);
	assert_string_equal(why, want);
	tmp_clean(&t, NULL);
	free(c);
}

/* --- secrets --------------------------------------------------------------------------------- */

static void test_secret_forms(void **state)
{
	struct tmp t;
	char out[129], why[512], name[256], key[256], want[1024];
	bool inl = false;
	json_t *j;

	(void)state;
	j = json_string("inline-secret-value");
	assert_int_equal(conf_secret(j, "t.json", "k", out, sizeof(out), &inl, why, sizeof(why)),
			 MDM_OK);
	assert_string_equal(out, "inline-secret-value");
	assert_true(inl);
	json_decref(j);

	tmp_make(&t);
	snprintf(key, sizeof(key), "%s/hmac.key", t.dir);
	write_file(key, "file-secret-0123456789\nsecond line\n", 0600);
	snprintf(name, sizeof(name), "%s/mdmgw.json", t.dir);
	j = json_pack("{s:s}", "file", "hmac.key"); /* relative to the config's directory */
	assert_int_equal(conf_secret(j, name, "k", out, sizeof(out), &inl, why, sizeof(why)),
			 MDM_OK);
	assert_string_equal(out, "file-secret-0123456789");
	assert_false(inl);
	json_decref(j);

	write_file(key, "crlf-secret-0123456789\r\n", 0600);
	j = json_pack("{s:s}", "file", key);
	assert_int_equal(conf_secret(j, "t.json", "k", out, sizeof(out), &inl, why, sizeof(why)),
			 MDM_OK);
	assert_string_equal(out, "crlf-secret-0123456789");

	write_file(key, "no-newline-at-all", 0600);
	assert_int_equal(conf_secret(j, "t.json", "k", out, sizeof(out), &inl, why, sizeof(why)),
			 MDM_OK);
	assert_string_equal(out, "no-newline-at-all");

	write_file(key, "\nsecond", 0600);
	assert_int_equal(conf_secret(j, "t.json", "k", out, sizeof(out), &inl, why, sizeof(why)),
			 MDM_ERR_CONFIG);
	assert_string_equal(why, "t.json: k: the secret file's first line is empty");

	write_file(key, "123456789\n", 0600);
	assert_int_equal(conf_secret(j, "t.json", "k", out, 8, &inl, why, sizeof(why)),
			 MDM_ERR_CONFIG);
	snprintf(want, sizeof(want),
		 "t.json: k: the first line of secret file \"%s\" is too long (at most 7 bytes)",
		 key);
	assert_string_equal(why, want);
	assert_string_equal(out, "");
	write_file(key, "1234567\n", 0600);
	assert_int_equal(conf_secret(j, "t.json", "k", out, 8, &inl, why, sizeof(why)), MDM_OK);
	assert_string_equal(out, "1234567");
	json_decref(j);
	unlink(key);

	j = json_pack("{s:s}", "file", "hmac.key");
	assert_int_equal(conf_secret(j, name, "k", out, sizeof(out), &inl, why, sizeof(why)),
			 MDM_ERR_IO);
	snprintf(want, sizeof(want),
		 "%s: k: cannot open secret file \"%s\": No such file or directory", name, key);
	assert_string_equal(why, want);
	json_decref(j);
	tmp_clean(&t, NULL);

	assert_int_equal(setenv("MDMGW_TEST_SECRET", "env-secret-0123456789", 1), 0);
	j = json_pack("{s:s}", "env", "MDMGW_TEST_SECRET");
	assert_int_equal(conf_secret(j, "t.json", "k", out, sizeof(out), &inl, why, sizeof(why)),
			 MDM_OK);
	assert_string_equal(out, "env-secret-0123456789");
	assert_false(inl);
	json_decref(j);
	unsetenv("MDMGW_TEST_SECRET");

	j = json_pack("{s:s}", "env", "MDMGW_TEST_MISSING");
	unsetenv("MDMGW_TEST_MISSING");
	assert_int_equal(
	    conf_secret(j, "t.json", "cache.hmac_key", out, sizeof(out), &inl, why, sizeof(why)),
	    MDM_ERR_CONFIG);
	assert_string_equal(why, "t.json: cache.hmac_key: environment variable "
				 "\"MDMGW_TEST_MISSING\" is not set");
	json_decref(j);

	j = json_pack("{s:s}", "nv", "X");
	assert_int_equal(conf_secret(j, "t.json", "k", out, sizeof(out), &inl, why, sizeof(why)),
			 MDM_ERR_CONFIG);
	assert_string_equal(why,
			    "t.json: k: must be a string, {\"file\": PATH} or {\"env\": NAME}");
	json_decref(j);
}

static void test_secret_missing_env_in_config(void **state)
{
	struct config *c = cfg_new();
	char why[512];

	(void)state;
	unsetenv("MDMGW_TEST_MISSING");
	assert_int_equal(load_as("t.json",
				 WITH("'cache': {'hmac_key': {'env': "
				      "'MDMGW_TEST_MISSING'}}"),
				 c, why, sizeof(why)),
			 MDM_ERR_CONFIG);
	assert_string_equal(why, "t.json: cache.hmac_key: environment variable "
				 "\"MDMGW_TEST_MISSING\" is not set");
	free(c);
}

static void test_secret_file_mode(void **state)
{
	struct config *c = cfg_new();
	struct tmp t;
	char why[512], want[1024], key[256];

	(void)state;
	tmp_make(&t);
	write_json(t.file, WITH("'cache': {'hmac_key': 'inline-hmac-key-0123456789'}"), 0644);
	assert_int_equal(config_load(t.file, c, why, sizeof(why)), MDM_ERR_CONFIG);
	snprintf(want, sizeof(want), "%s: " PLAINTEXT_MSG, t.file);
	assert_string_equal(why, want);
	assert_int_equal(chmod(t.file, 0640), 0);
	assert_int_equal(config_load(t.file, c, why, sizeof(why)), MDM_ERR_CONFIG);
	assert_string_equal(why, want);
	assert_int_equal(chmod(t.file, 0604), 0);
	assert_int_equal(config_load(t.file, c, why, sizeof(why)), MDM_ERR_CONFIG);
	assert_int_equal(chmod(t.file, 0600), 0);
	if (config_load(t.file, c, why, sizeof(why)) != MDM_OK)
		fail_msg("%s", why);
	assert_true(c->cache.hmac_key_set);
	assert_string_equal(c->cache.hmac_key, "inline-hmac-key-0123456789");
	/* the same bytes from memory: no file mode to check */
	load_ok("t.json", WITH("'cache': {'hmac_key': 'inline-hmac-key-0123456789'}"), c);
	assert_true(c->cache.hmac_key_set);

	assert_int_equal(setenv("MDMGW_TEST_HMAC", "env-hmac-key-0123456789", 1), 0);
	write_json(t.file, WITH("'cache': {'hmac_key': {'env': 'MDMGW_TEST_HMAC'}}"), 0644);
	if (config_load(t.file, c, why, sizeof(why)) != MDM_OK)
		fail_msg("%s", why);
	assert_string_equal(c->cache.hmac_key, "env-hmac-key-0123456789");
	unsetenv("MDMGW_TEST_HMAC");

	snprintf(key, sizeof(key), "%s/hmac.key", t.dir);
	write_file(key, "file-hmac-key-0123456789\n", 0600);
	write_json(t.file, WITH("'cache': {'hmac_key': {'file': 'hmac.key'}}"), 0644);
	if (config_load(t.file, c, why, sizeof(why)) != MDM_OK)
		fail_msg("%s", why);
	assert_string_equal(c->cache.hmac_key, "file-hmac-key-0123456789");
	tmp_clean(&t, "hmac.key");
	free(c);
}

/* --- adapters of type sccm ------------------------------------------------------------------- */

/*
 * The loader only checks that ca_file can be read, so any readable file of the repository does
 * (the unit tests run from its root, as make runs them).
 */
#define CA "conf/demo-inventory.json"
#define SCCM_BASE "'name': 'cm', 'type': 'sccm', 'url': 'https://cm01.corp.example/AdminService'"
/* a minimal config whose one adapter is an sccm adapter with the extra keys given */
#define SCCM(extra)                                                                                \
	"{" LISTEN ", " ACCOUNTS ", 'adapters': [{" SCCM_BASE ", 'ca_file': '" CA "'" extra "}]}"
#define PIN "sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="

static void test_sccm_defaults(void **state)
{
	struct config *c = cfg_new();
	const struct config_sccm *s = (const void *)c->adapters[0].conf;

	(void)state;
	load_ok("t.json", SCCM(""), c);
	assert_ptr_equal(c->adapters[0].type, &sccm_adapter_type);
	assert_string_equal(c->adapters[0].name, "cm");
	assert_string_equal(s->url, "https://cm01.corp.example/AdminService");
	assert_string_equal(s->http.ca_file, CA);
	assert_string_equal(s->http.pinned_key, "");
	assert_int_equal(s->auth, HTTP_AUTH_NEGOTIATE);
	assert_string_equal(s->user, "");
	assert_false(s->password_set);
	assert_int_equal(s->http.max_connections, 8);
	assert_true(s->http.rate_per_sec == 0.0);
	assert_int_equal(s->http.max_body, 16777216);
	assert_int_equal(s->http.connect_timeout_ms, 5000);
	assert_int_equal(s->http.breaker_failures, 5);
	assert_int_equal(s->http.breaker_open_ms, 30000);
	assert_int_equal(s->nonly_ci, 0);
	assert_false(s->no_baseline_compliant);
	assert_int_equal(s->page_rows, 10000);
	assert_int_equal(s->list_timeout_ms, 30000);
	free(c);
}

static void test_sccm_full(void **state)
{
	struct config *c = cfg_new();
	const struct config_sccm *s = (const void *)c->adapters[1].conf;

	(void)state;
	assert_int_equal(setenv("MDMGW_TEST_SCCM_PW", "pa ss:word", 1), 0);
	load_ok("t.json",
		"{" LISTEN ", " ACCOUNTS ", 'adapters': [" ADAPTER ", {" SCCM_BASE
		", 'ca_file': '" CA "', 'pinned_key': '" PIN "', 'auth': 'ntlm', "
		"'user': 'CORP\\\\svc-ise', 'password': {'env': 'MDMGW_TEST_SCCM_PW'}, "
		"'max_connections': 256, 'rate_per_sec': 2.5, 'max_body': 268435456, "
		"'connect_timeout': '10ms', 'breaker_failures': 0, 'breaker_open': '1h', "
		"'only_ci': ['ScopeId_1/Baseline_a', 'ScopeId_1/Baseline_b'], "
		"'no_baseline_compliant': true, 'page_rows': 1000000, 'list_timeout': '10m'}]}",
		c);
	unsetenv("MDMGW_TEST_SCCM_PW");
	assert_int_equal(c->nadapters, 2);
	assert_ptr_equal(c->adapters[0].type, &inventory_adapter_type);
	assert_ptr_equal(c->adapters[1].type, &sccm_adapter_type);
	assert_string_equal(s->http.pinned_key, PIN);
	assert_int_equal(s->auth, HTTP_AUTH_NTLM);
	assert_string_equal(s->user, "CORP\\svc-ise");
	assert_true(s->password_set);
	assert_string_equal(s->password, "pa ss:word");
	assert_int_equal(s->http.max_connections, 256);
	assert_true(s->http.rate_per_sec == 2.5);
	assert_int_equal(s->http.max_body, 268435456);
	assert_int_equal(s->http.connect_timeout_ms, 10);
	assert_int_equal(s->http.breaker_failures, 0);
	assert_int_equal(s->http.breaker_open_ms, 3600000);
	assert_int_equal(s->nonly_ci, 2);
	assert_string_equal(s->only_ci[0], "ScopeId_1/Baseline_a");
	assert_string_equal(s->only_ci[1], "ScopeId_1/Baseline_b");
	assert_true(s->no_baseline_compliant);
	assert_int_equal(s->page_rows, 1000000);
	assert_int_equal(s->list_timeout_ms, 600000);

	load_ok("t.json",
		SCCM(", 'auth': 'basic', 'user': 'u', 'password': 'p', 'rate_per_sec': "
		     "100000, 'max_connections': 1, 'max_body': 1024, 'page_rows': 1, "
		     "'connect_timeout': '60s', 'breaker_open': '1s', 'breaker_failures': "
		     "1000, 'list_timeout': '1s', 'only_ci': [], 'no_baseline_compliant': "
		     "false"),
		c);
	assert_int_equal(SCCM_OF(c, 0)->auth, HTTP_AUTH_BASIC);
	assert_string_equal(SCCM_OF(c, 0)->password, "p");
	assert_true(SCCM_OF(c, 0)->http.rate_per_sec == 100000.0);
	load_ok("t.json", SCCM(", 'auth': 'negotiate'"), c);
	assert_int_equal(SCCM_OF(c, 0)->auth, HTTP_AUTH_NEGOTIATE);
	free(c);
}

#define S0 "t.json: adapters[0]."
#define LONG64 "0123456789012345678901234567890123456789012345678901234567890123"
#define LONG256 LONG64 LONG64 LONG64 LONG64

static const struct bad sccm_bad_cases[] = {
    /* each type takes only its own keys */
    {"{" LISTEN ", " ACCOUNTS ", 'adapters': [{'name': 'inv', 'type': 'inventory', 'file': 'x', "
     "'url': 'https://a'}]}",
     S0 "url: unknown key for type \"inventory\""},
    {SCCM(", 'file': 'x.json'"), S0 "file: unknown key for type \"sccm\""},
    {"{" LISTEN ", " ACCOUNTS ", 'adapters': [{'name': 'x', 'file': 'x'}]}", S0 "type: required"},
    {"{" LISTEN ", " ACCOUNTS ", 'adapters': [{'name': 'x', 'type': 'SCCM'}]}",
     S0 "type: unknown value \"SCCM\" (inventory, sccm, mcms)"},
    /* url */
    {"{" LISTEN ", " ACCOUNTS ", 'adapters': [{'name': 'cm', 'type': 'sccm', 'ca_file': '" CA
     "'}]}",
     S0 "url: required"},
    {"{" LISTEN ", " ACCOUNTS ", 'adapters': [{'name': 'cm', 'type': 'sccm', 'ca_file': '" CA
     "', 'url': 'http://cm01/AdminService'}]}",
     S0 "url: must be an https:// URL without spaces, such as "
	"\"https://cm01.corp.example/AdminService\""},
    {"{" LISTEN ", " ACCOUNTS ", 'adapters': [{'name': 'cm', 'type': 'sccm', 'ca_file': '" CA
     "', 'url': 'https://cm 01/x'}]}",
     S0 "url: must be an https:// URL without spaces, such as "
	"\"https://cm01.corp.example/AdminService\""},
    {"{" LISTEN ", " ACCOUNTS ", 'adapters': [{'name': 'cm', 'type': 'sccm', 'ca_file': '" CA
     "', 'url': 'https://'}]}",
     S0 "url: must be an https:// URL without spaces, such as "
	"\"https://cm01.corp.example/AdminService\""},
    {"{" LISTEN ", " ACCOUNTS ", 'adapters': [{'name': 'cm', 'type': 'sccm', 'ca_file': '" CA
     "', 'url': 'https://" LONG256 LONG256 "'}]}",
     S0 "url: is too long (at most 512 bytes)"},
    {"{" LISTEN ", " ACCOUNTS ", 'adapters': [{'name': 'cm', 'type': 'sccm', 'ca_file': '" CA
     "', 'url': 7}]}",
     S0 "url: must be a string"},
    /* ca_file */
    {"{" LISTEN ", " ACCOUNTS ", 'adapters': [{" SCCM_BASE "}]}", S0 "ca_file: required"},
    {"{" LISTEN ", " ACCOUNTS ", 'adapters': [{" SCCM_BASE ", 'ca_file': 'no/such/ca.pem'}]}",
     S0 "ca_file: cannot read \"no/such/ca.pem\": No such file or directory"},
    {"{" LISTEN ", " ACCOUNTS ", 'adapters': [{" SCCM_BASE ", 'ca_file': 'conf'}]}",
     S0 "ca_file: \"conf\" is not a regular file"},
    {"{" LISTEN ", " ACCOUNTS ", 'adapters': [{" SCCM_BASE ", 'ca_file': ''}]}",
     S0 "ca_file: must not be empty"},
    /* pinned_key */
    {SCCM(", 'pinned_key': 'sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU'"),
     S0 "pinned_key: must be \"sha256//\" and the 44 base64 characters of the SHA-256 of the "
	"server's public key"},
    {SCCM(", 'pinned_key': 'sha1//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=xx'"),
     S0 "pinned_key: must be \"sha256//\" and the 44 base64 characters of the SHA-256 of the "
	"server's public key"},
    {SCCM(", 'pinned_key': 'sha256//47DEQpj8HBSa-_TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"),
     S0 "pinned_key: must be \"sha256//\" and the 44 base64 characters of the SHA-256 of the "
	"server's public key"},
    {SCCM(", 'pinned_key': ''"),
     S0 "pinned_key: must be \"sha256//\" and the 44 base64 characters of the SHA-256 of the "
	"server's public key"},
    {SCCM(", 'pinned_key': '" PIN "x'"), S0 "pinned_key: is too long (at most 52 bytes)"},
    /* auth, user, password */
    {SCCM(", 'auth': 'kerberos'"), S0 "auth: unknown value \"kerberos\" (negotiate, ntlm, basic)"},
    {SCCM(", 'auth': 'ntlm', 'password': 'p'"), S0 "user: required with auth \"ntlm\""},
    {SCCM(", 'auth': 'basic', 'user': 'u'"), S0 "password: required with auth \"basic\""},
    {SCCM(", 'user': 'u'"), S0 "user: not used with auth \"negotiate\""},
    {SCCM(", 'password': 'p'"), S0 "password: not used with auth \"negotiate\""},
    {SCCM(", 'auth': 'basic', 'user': 'a\\u0007b', 'password': 'p'"),
     S0 "user: must not contain control characters"},
    {SCCM(", 'auth': 'basic', 'user': '" LONG256 "', 'password': 'p'"),
     S0 "user: is too long (at most 255 bytes)"},
    {SCCM(", 'auth': 'basic', 'user': '', 'password': 'p'"), S0 "user: must not be empty"},
    {SCCM(", 'auth': 'basic', 'user': 'u', 'password': ''"), S0 "password: the secret is empty"},
    {SCCM(", 'auth': 'basic', 'user': 'u', 'password': '" LONG256 "'"),
     S0 "password: the secret is too long (at most 255 bytes)"},
    {SCCM(", 'auth': 'basic', 'user': 'u', 'password': {'env': 'MDMGW_TEST_NOT_SET_SCCM'}"),
     S0 "password: environment variable \"MDMGW_TEST_NOT_SET_SCCM\" is not set"},
    {SCCM(", 'auth': 'basic', 'user': 'u', 'password': 5"),
     S0 "password: must be a string, {\"file\": PATH} or {\"env\": NAME}"},
    /* limits */
    {SCCM(", 'max_connections': 0"), S0 "max_connections: must be an integer from 1 to 256"},
    {SCCM(", 'max_connections': 257"), S0 "max_connections: must be an integer from 1 to 256"},
    {SCCM(", 'rate_per_sec': -0.5"), S0 "rate_per_sec: must be a number from 0 to 100000"},
    {SCCM(", 'rate_per_sec': 100000.5"), S0 "rate_per_sec: must be a number from 0 to 100000"},
    {SCCM(", 'rate_per_sec': '5'"), S0 "rate_per_sec: must be a number from 0 to 100000"},
    {SCCM(", 'max_body': 1023"), S0 "max_body: must be an integer from 1024 to 268435456"},
    {SCCM(", 'max_body': 268435457"), S0 "max_body: must be an integer from 1024 to 268435456"},
    {SCCM(", 'connect_timeout': '9ms'"), S0 "connect_timeout: must be from 10ms to 1m"},
    {SCCM(", 'connect_timeout': '61s'"), S0 "connect_timeout: must be from 10ms to 1m"},
    {SCCM(", 'connect_timeout': 5"),
     S0 "connect_timeout: must be a duration string such as \"30s\" (ms, s, m, h or d)"},
    {SCCM(", 'breaker_failures': -1"), S0 "breaker_failures: must be an integer from 0 to 1000"},
    {SCCM(", 'breaker_failures': 1001"), S0 "breaker_failures: must be an integer from 0 to 1000"},
    {SCCM(", 'breaker_open': '999ms'"), S0 "breaker_open: must be from 1s to 1h"},
    {SCCM(", 'breaker_open': '61m'"), S0 "breaker_open: must be from 1s to 1h"},
    /* compliance and listing */
    {SCCM(", 'only_ci': 'ScopeId_1'"), S0 "only_ci: must be an array of strings"},
    {SCCM(", 'only_ci': ['a', '']"), S0 "only_ci[1]: must not be empty"},
    {SCCM(", 'only_ci': [1]"), S0 "only_ci[0]: must be a string"},
    {SCCM(", 'only_ci': ['" LONG256 "']"), S0 "only_ci[0]: is too long (at most 255 bytes)"},
    {SCCM(", 'no_baseline_compliant': 'yes'"), S0 "no_baseline_compliant: must be true or false"},
    {SCCM(", 'no_baseline_compliant': 1"), S0 "no_baseline_compliant: must be true or false"},
    {SCCM(", 'page_rows': 0"), S0 "page_rows: must be an integer from 1 to 1000000"},
    {SCCM(", 'page_rows': 1000001"), S0 "page_rows: must be an integer from 1 to 1000000"},
    {SCCM(", 'list_timeout': '999ms'"), S0 "list_timeout: must be from 1s to 10m"},
    {SCCM(", 'list_timeout': '11m'"), S0 "list_timeout: must be from 1s to 10m"},
};

static void test_sccm_bad(void **state)
{
	struct config *c = cfg_new();
	char why[1024];
	int failures = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(sccm_bad_cases) / sizeof(sccm_bad_cases[0]); i++) {
		const struct bad *b = &sccm_bad_cases[i];
		enum mdm_err rc;

		why[0] = '\0';
		rc = load_as("t.json", b->json, c, why, sizeof(why));
		if (rc != MDM_ERR_CONFIG || strcmp(why, b->msg) != 0 || strchr(why, '\n')) {
			print_error("case %zu: rc %d\n  got:  %s\n  want: %s\n", i, rc, why,
				    b->msg);
			failures++;
		}
	}
	assert_int_equal(failures, 0);
	free(c);
}

/* --- adapters of type mcms and the hop settings ------------------------------------------------
 */

#define MCMS_BASE                                                                                  \
	"'name': 'cloud', 'type': 'mcms', 'url': 'https://mdm.example.com', 'user': 'ise-api', "   \
	"'password': 'pw'"
#define MCMS(extra)                                                                                \
	"{" LISTEN ", " ACCOUNTS ", 'adapters': [{" MCMS_BASE ", 'ca_file': '" CA "'" extra "}]}"
#define MCMS_URL(url)                                                                              \
	"{" LISTEN ", " ACCOUNTS ", 'adapters': [{'name': 'c', 'type': 'mcms', 'user': 'u', "      \
	"'password': 'p', 'ca_file': '" CA "', 'url': '" url "'}]}"

static void test_mcms_keys(void **state)
{
	struct config *c = cfg_new();
	const struct config_mcms *m = (const void *)c->adapters[0].conf;

	(void)state;
	load_ok("t.json", MCMS(""), c);
	assert_ptr_equal(c->adapters[0].type, &mcms_adapter_type);
	assert_string_equal(m->url, "https://mdm.example.com");
	assert_string_equal(m->instance, "");
	assert_string_equal(m->http.ca_file, CA);
	assert_string_equal(m->user, "ise-api");
	assert_true(m->password_set);
	assert_string_equal(m->password, "pw");
	assert_int_equal(m->http.max_connections, 4);
	assert_int_equal(m->http.max_body, 16777216);
	assert_int_equal(m->http.connect_timeout_ms, 5000);
	assert_int_equal(m->http.breaker_failures, 5);
	assert_int_equal(m->http.breaker_open_ms, 30000);
	assert_int_equal(m->list_timeout_ms, 30000);
	assert_int_equal(m->listing, MCMS_LIST_AUTO);
	load_ok("t.json",
		MCMS(", 'instance': 'tenant-7/eu', 'pinned_key': '" PIN "', 'max_connections': 16, "
		     "'rate_per_sec': 20, 'max_body': 1024, 'connect_timeout': '2s', "
		     "'breaker_failures': 0, 'breaker_open': '1m', 'list_timeout': '2m', "
		     "'listing': 'noncompliant_only'"),
		c);
	assert_string_equal(m->instance, "tenant-7/eu");
	assert_string_equal(m->http.pinned_key, PIN);
	assert_int_equal(m->http.max_connections, 16);
	assert_true(m->http.rate_per_sec == 20.0);
	assert_int_equal(m->list_timeout_ms, 120000);
	assert_int_equal(m->listing, MCMS_LIST_NONCOMPLIANT);
	load_ok("t.json", MCMS(", 'listing': 'all'"), c);
	assert_int_equal(m->listing, MCMS_LIST_ALL);
	load_ok("t.json", MCMS_URL("https://mdm.example.com:8443/"), c);
	assert_string_equal(m->url, "https://mdm.example.com:8443/");
	load_ok("t.json",
		"{" LISTEN ", 'api': {'gateway_id': 'gw-a.corp:8443', 'max_hops': 16}, " ACCOUNTS
		", 'adapters': [" ADAPTER "]}",
		c);
	assert_string_equal(c->api.gateway_id, "gw-a.corp:8443");
	assert_int_equal(c->api.max_hops, 16);
	{
		char host[256] = "", want[80];

		/* not given: "<hostname>:<listen port>" (the test host's name is a plain one) */
		load_ok("t.json", MCMS(""), c);
		gethostname(host, sizeof(host) - 1);
		snprintf(want, sizeof(want), "%.50s:%u", host, c->listen.port);
		assert_string_equal(c->api.gateway_id, want);
		assert_int_equal(c->api.max_hops, 4);
	}
	free(c);
}

static const struct bad mcms_bad_cases[] = {
    {"{" LISTEN ", " ACCOUNTS ", 'adapters': [{'name': 'c', 'type': 'mcms', 'ca_file': '" CA
     "', 'user': 'u', 'password': 'p'}]}",
     S0 "url: required"},
    {MCMS_URL("https://mdm.example.com/ciscoise"),
     S0 "url: must be an https:// origin without a path, such as \"https://mdm.example.com\" "
	"(an instance goes into \"instance\")"},
    {MCMS_URL("http://mdm.example.com"),
     S0 "url: must be an https:// origin without a path, such as \"https://mdm.example.com\" "
	"(an instance goes into \"instance\")"},
    {"{" LISTEN ", " ACCOUNTS ", 'adapters': [{" MCMS_BASE "}]}", S0 "ca_file: required"},
    {"{" LISTEN ", " ACCOUNTS ", 'adapters': [{" MCMS_BASE ", 'ca_file': 'certs/nope.pem'}]}",
     S0 "ca_file: cannot read \"certs/nope.pem\": No such file or directory"},
    {"{" LISTEN ", " ACCOUNTS ", 'adapters': [{'name': 'c', 'type': 'mcms', 'url': "
     "'https://m.example', 'ca_file': '" CA "', 'password': 'p'}]}",
     S0 "user: required"},
    {"{" LISTEN ", " ACCOUNTS ", 'adapters': [{'name': 'c', 'type': 'mcms', 'url': "
     "'https://m.example', 'ca_file': '" CA "', 'user': 'u'}]}",
     S0 "password: required"},
    {MCMS(", 'instance': 'a b'"),
     S0 "instance: may hold only A-Z, a-z, 0-9, '.', '_', '~', '/' and '-'"},
    {MCMS(", 'listing': 'some'"),
     S0 "listing: unknown value \"some\" (auto, all, noncompliant_only)"},
    {MCMS(", 'auth': 'basic'"), S0 "auth: unknown key for type \"mcms\""},
    {MCMS(", 'max_connections': 0"), S0 "max_connections: must be an integer from 1 to 256"},
    {MCMS(", 'list_timeout': '11m'"), S0 "list_timeout: must be from 1s to 10m"},
    {"{" LISTEN ", 'api': {'gateway_id': 'gw a'}, " ACCOUNTS ", 'adapters': [" ADAPTER "]}",
     "t.json: api.gateway_id: may hold only A-Z, a-z, 0-9, '.', '_', ':' and '-'"},
    {"{" LISTEN ", 'api': {'gateway_id': 'a,b'}, " ACCOUNTS ", 'adapters': [" ADAPTER "]}",
     "t.json: api.gateway_id: may hold only A-Z, a-z, 0-9, '.', '_', ':' and '-'"},
    {"{" LISTEN ", 'api': {'gateway_id': '" LONG64 "'}, " ACCOUNTS ", 'adapters': [" ADAPTER "]}",
     "t.json: api.gateway_id: is too long (at most 63 bytes)"},
    {"{" LISTEN ", 'api': {'max_hops': 0}, " ACCOUNTS ", 'adapters': [" ADAPTER "]}",
     "t.json: api.max_hops: must be an integer from 1 to 16"},
    {"{" LISTEN ", 'api': {'max_hops': 17}, " ACCOUNTS ", 'adapters': [" ADAPTER "]}",
     "t.json: api.max_hops: must be an integer from 1 to 16"},
};

static void test_mcms_bad(void **state)
{
	struct config *c = cfg_new();
	char why[1024];
	int failures = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(mcms_bad_cases) / sizeof(mcms_bad_cases[0]); i++) {
		const struct bad *b = &mcms_bad_cases[i];
		enum mdm_err rc;

		why[0] = '\0';
		rc = load_as("t.json", b->json, c, why, sizeof(why));
		if (rc != MDM_ERR_CONFIG || strcmp(why, b->msg) != 0 || strchr(why, '\n')) {
			print_error("case %zu: rc %d\n  got:  %s\n  want: %s\n", i, rc, why,
				    b->msg);
			failures++;
		}
	}
	assert_int_equal(failures, 0);
	free(c);
}

static void test_sccm_only_ci_count(void **state)
{
	struct config *c = cfg_new();
	char why[512], *json;
	size_t cap = 64 * 1024, len;

	(void)state;
	json = malloc(cap);
	assert_non_null(json);
	len = (size_t)snprintf(json, cap,
			       "{" LISTEN ", " ACCOUNTS ", 'adapters': [{" SCCM_BASE
			       ", 'ca_file': '" CA "', 'only_ci': [");
	for (int i = 0; i < SCCM_MAX_ONLY_CI; i++)
		len += (size_t)snprintf(json + len, cap - len, "%s'ci-%d'", i ? ", " : "", i);
	snprintf(json + len, cap - len, "]}]}");
	load_ok("t.json", json, c);
	assert_int_equal(SCCM_OF(c, 0)->nonly_ci, SCCM_MAX_ONLY_CI);
	assert_string_equal(SCCM_OF(c, 0)->only_ci[63], "ci-63");
	snprintf(json + len, cap - len, ", 'one-too-many']}]}");
	assert_int_equal(load_as("t.json", json, c, why, sizeof(why)), MDM_ERR_CONFIG);
	assert_string_equal(why, S0 "only_ci: holds more than 64 entries");
	free(json);
	free(c);
}

/* ca_file is relative to the config's directory; an inline password needs a private file. */
static void test_sccm_files(void **state)
{
	struct config *c = cfg_new();
	struct tmp t;
	char why[1024], want[1024], ca[256];

	(void)state;
	tmp_make(&t);
	snprintf(ca, sizeof(ca), "%s/ca.pem", t.dir);
	write_file(ca, "-----BEGIN CERTIFICATE-----\n", 0644);
	write_json(t.file,
		   "{" LISTEN ", " ACCOUNTS ", 'adapters': [{" SCCM_BASE ", 'ca_file': 'ca.pem', "
		   "'auth': 'basic', 'user': 'svc', 'password': 'inline-password'}]}",
		   0644);
	assert_int_equal(config_load(t.file, c, why, sizeof(why)), MDM_ERR_CONFIG);
	snprintf(want, sizeof(want),
		 "%s: adapters[0].password: plaintext secret in a file readable by group or others "
		 "(chmod 600, or use {\"file\": ...} / {\"env\": ...})",
		 t.file);
	assert_string_equal(why, want);
	assert_int_equal(chmod(t.file, 0600), 0);
	if (config_load(t.file, c, why, sizeof(why)) != MDM_OK)
		fail_msg("%s", why);
	assert_string_equal(SCCM_OF(c, 0)->http.ca_file, ca);
	assert_string_equal(SCCM_OF(c, 0)->password, "inline-password");
	unlink(ca);
	assert_int_equal(config_load(t.file, c, why, sizeof(why)), MDM_ERR_CONFIG);
	snprintf(want, sizeof(want),
		 "%s: adapters[0].ca_file: cannot read \"%s\": No such file or directory", t.file,
		 ca);
	assert_string_equal(why, want);
	tmp_clean(&t, NULL);
	free(c);
}

/* --- accounting ---------------------------------------------------------------------------- */

#define ACCT(body) WITH("'accounting': {" body "}")
#define ACLIENT(addr) "'clients': [{'address': '" addr "', 'secret': 's3cret'}]"

static const struct bad acct_bad_cases[] = {
    {ACCT("'listen': '0.0.0.0:1813'"), "t.json: accounting.clients: required when "
				       "accounting.listen is set"},
    {ACCT(ACLIENT("10.0.0.1")), "t.json: accounting.listen: required when accounting.clients "
				"is set"},
    {ACCT("'listen': '0.0.0.0', " ACLIENT("10.0.0.1")),
     "t.json: accounting.listen: must be \"address:port\" (\"[address]:port\" for IPv6)"},
    {ACCT("'listen': '0.0.0.0:0', " ACLIENT("10.0.0.1")),
     "t.json: accounting.listen: port must be from 1 to 65535"},
    {ACCT("'listen': 'radius.example:1813', " ACLIENT("10.0.0.1")),
     "t.json: accounting.listen: address must be an IPv4 or IPv6 address such as "
     "\"0.0.0.0:1813\""},
    {ACCT("'listen': '::1:1813', " ACLIENT("10.0.0.1")),
     "t.json: accounting.listen: an IPv6 address must be written as \"[address]:port\""},
    {ACCT("'listen': ':1813', " ACLIENT("::1")),
     "t.json: accounting.listen: must be \"address:port\" (\"[address]:port\" for IPv6)"},
    {ACCT("'listen': '0.0.0.0:1813', " ACLIENT("10.0.0.0/33")),
     "t.json: accounting.clients[0].address: has a prefix length out of range"},
    {ACCT("'listen': '0.0.0.0:1813', " ACLIENT("switch1")),
     "t.json: accounting.clients[0].address: must be an IP address or a CIDR network such as "
     "\"10.0.0.0/8\""},
    {ACCT("'listen': '0.0.0.0:1813', 'clients': [{'address': '10.0.0.1'}]"),
     "t.json: accounting.clients[0].secret: required"},
    {ACCT("'listen': '0.0.0.0:1813', 'clients': [{'address': '10.0.0.1', 'secret': 's'}, "
	  "{'address': '10.0.0.1', 'secret': 't'}]"),
     "t.json: accounting.clients[1].address: duplicate client address \"10.0.0.1\""},
    {ACCT("'listen': '0.0.0.0:1813', " ACLIENT("10.0.0.1") ", 'session_ttl': '10s'"),
     "t.json: accounting.session_ttl: must be from 1m to 7d"},
    {ACCT("'listen': '0.0.0.0:1813', " ACLIENT("10.0.0.1") ", 'max_sessions': 0"),
     "t.json: accounting.max_sessions: must be an integer from 1 to 10000000"},
    {ACCT("'bogus': 1"), "t.json: accounting.bogus: unknown key"},
};

static void test_accounting(void **state)
{
	struct config *c = cfg_new();
	char why[512];
	int failures = 0;

	(void)state;
	load_ok("t.json", MINIMAL, c);
	assert_string_equal(c->accounting.listen, ""); /* absent: off */
	assert_int_equal(c->accounting.max_sessions, 200000);
	load_ok("t.json",
		ACCT("'listen': '[::1]:11813', 'clients': [{'address': '10.1.2.3/16', 'secret': "
		     "'a'}, {'address': 'fd00::1', 'secret': 'b'}], 'session_ttl': '30m', "
		     "'max_sessions': 10"),
		c);
	assert_string_equal(c->accounting.listen_addr, "::1");
	assert_int_equal(c->accounting.listen_port, 11813);
	assert_int_equal(c->accounting.nclients, 2);
	assert_int_equal(c->accounting.clients[0].prefix, 16);
	assert_int_equal(c->accounting.clients[0].net[2], 0); /* host bits cleared */
	assert_int_equal(c->accounting.clients[0].net[1], 1);
	assert_int_equal(c->accounting.clients[1].prefix, 128);
	assert_string_equal(c->accounting.clients[1].secret, "b");
	assert_int_equal(c->accounting.session_ttl_ms, 30 * 60 * 1000);
	assert_int_equal(c->accounting.max_sessions, 10);
	for (size_t i = 0; i < sizeof(acct_bad_cases) / sizeof(acct_bad_cases[0]); i++) {
		const struct bad *b = &acct_bad_cases[i];

		why[0] = '\0';
		if (load_as("t.json", b->json, c, why, sizeof(why)) != MDM_ERR_CONFIG ||
		    strcmp(why, b->msg) != 0) {
			print_error("accounting case %zu:\n  got:  %s\n  want: %s\n", i, why,
				    b->msg);
			failures++;
		}
	}
	assert_int_equal(failures, 0);
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_minimal),
	    cmocka_unit_test(test_actions_section),
	    cmocka_unit_test(test_ha_section),
	    cmocka_unit_test(test_full),
	    cmocka_unit_test(test_example),
	    cmocka_unit_test(test_accounting),
	    cmocka_unit_test(test_role_parse),
	    cmocka_unit_test(test_bad),
	    cmocka_unit_test(test_too_many_accounts),
	    cmocka_unit_test(test_too_big),
	    cmocka_unit_test(test_paths_file),
	    cmocka_unit_test(test_paths_mem),
	    cmocka_unit_test(test_load_errors),
	    cmocka_unit_test(test_secret_forms),
	    cmocka_unit_test(test_secret_missing_env_in_config),
	    cmocka_unit_test(test_secret_file_mode),
	    cmocka_unit_test(test_sccm_defaults),
	    cmocka_unit_test(test_sccm_full),
	    cmocka_unit_test(test_sccm_bad),
	    cmocka_unit_test(test_mcms_keys),
	    cmocka_unit_test(test_mcms_bad),
	    cmocka_unit_test(test_sccm_only_ci_count),
	    cmocka_unit_test(test_sccm_files),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
