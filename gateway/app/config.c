/*
 * config: the gateway's configuration (see config.h and docs/configuration.md): the key table
 * of each of its sections and the rules across keys, loaded by the engine of core/conf.h. The
 * adapters' keys are their own (adapters/registry.h).
 */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE /* explicit_bzero */
#endif

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "../../core/buf.h"
#include "../recon/publish.h"
#include "config.h"

static const char *check_address(const char *s)
{
	unsigned char a[16];

	if (inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1)
		return NULL;
	return "must be an IPv4 or IPv6 address such as \"0.0.0.0\" or \"::\"";
}

static const char *check_instance(const char *s)
{
	if (conf_all_of(s, "._-") && strcmp(s, ".") != 0 && strcmp(s, "..") != 0)
		return NULL;
	return "must be \"\" or 1 to 63 of A-Z a-z 0-9 . _ - (no slashes, not \".\" or \"..\")";
}

static const char *check_url(const char *s)
{
	if (!s[0] ||
	    ((strncmp(s, "https://", 8) == 0 || strncmp(s, "http://", 7) == 0) && !strchr(s, ' ')))
		return NULL;
	return "must be \"\" or an http:// or https:// URL without spaces";
}

static const char *check_user(const char *s)
{
	return strchr(s, ':') ? "must not contain ':'" : NULL;
}

static const char *check_hash(const char *s)
{
	if (strncmp(s, "$scrypt$", 8) == 0)
		return NULL;
	return "must be a scrypt hash line \"$scrypt$...\" (make one with `mdmgw passwd`)";
}

#define ROLE_NAMES "(query, action, admin)"

/* roles: ROLE_* bits (unsigned) from an array of role names; .def is the default. */
static enum mdm_err parse_roles(struct conf_ctx *x, const struct conf_field *f, json_t *v,
				void *base, const char *path)
{
	char ep[CONF_KEYPATH_MAX], qb[CONF_QUOTE_MAX];
	unsigned bits = 0, bit;
	size_t i;
	json_t *e;

	if (!json_is_array(v))
		return conf_fail(x, path, "must be an array of roles " ROLE_NAMES);
	if (json_array_size(v) == 0)
		return conf_fail(x, path, "must not be empty " ROLE_NAMES);
	json_array_foreach(v, i, e)
	{
		conf_key_index(ep, path, i);
		if (!json_is_string(e))
			return conf_fail(x, ep, "must be a string " ROLE_NAMES);
		bit = role_parse(json_string_value(e));
		if (!bit)
			return conf_fail(x, ep, "unknown role %s " ROLE_NAMES,
					 conf_quote(qb, json_string_value(e)));
		if (bits & bit)
			return conf_fail(x, ep, "duplicate role %s",
					 conf_quote(qb, json_string_value(e)));
		bits |= bit;
	}
	*(unsigned *)(void *)((char *)base + f->off) = bits;
	return MDM_OK;
}

static void reset_roles(const struct conf_field *f, void *base)
{
	*(unsigned *)(void *)((char *)base + f->off) = (unsigned)f->def;
}

#define ROLES(k, s, m, d, fl)                                                                      \
	{                                                                                          \
		.key = (k), .type = CONF_T_CUSTOM, CONF_AT(s, m), .def = (d), .flags = (fl),       \
		.parse = parse_roles, .reset = reset_roles                                         \
	}

/* "host:port" or "[v6]:port" with a port from 1 to 65535; NULL when fine. */
static const char *check_server(const char *s)
{
	const char *colon = strrchr(s, ':');
	char *end;
	unsigned long port;

	if (!colon || colon == s)
		return "must be \"host:port\" (\"[address]:port\" for IPv6)";
	if (s[0] == '[' && colon[-1] != ']')
		return "must be \"[address]:port\" for an IPv6 address";
	if (s[0] != '[' && memchr(s, ':', (size_t)(colon - s)))
		return "an IPv6 address must be written as \"[address]:port\"";
	port = strtoul(colon + 1, &end, 10);
	if (!colon[1] || *end || port < 1 || port > 65535)
		return "port must be from 1 to 65535";
	for (const char *c = s; c < colon; c++)
		if (*c <= ' ' || *c == '/' || *c == '@')
			return "host holds a character no host name has";
	return NULL;
}

/* servers: config_cache's servers[] and nservers from an array of "host:port". */
static enum mdm_err parse_servers(struct conf_ctx *x, const struct conf_field *f, json_t *v,
				  void *base, const char *path)
{
	struct config_cache *c = base;
	char ep[CONF_KEYPATH_MAX];
	const char *s, *why;
	size_t i;
	json_t *e;

	(void)f;
	if (!json_is_array(v))
		return conf_fail(x, path, "must be an array of \"host:port\" strings");
	if (json_array_size(v) > CONFIG_MAX_SERVERS)
		return conf_fail(x, path, "holds more than %d servers", CONFIG_MAX_SERVERS);
	json_array_foreach(v, i, e)
	{
		conf_key_index(ep, path, i);
		if (conf_get_string(x, e, ep, sizeof(c->servers[0]) - 1, &s) != MDM_OK)
			return MDM_ERR_CONFIG;
		if ((why = check_server(s)) != NULL)
			return conf_fail(x, ep, "%s", why);
		for (size_t j = 0; j < i; j++)
			if (strcmp(c->servers[j], s) == 0)
				return conf_fail(x, ep, "duplicate server");
		str_copy(c->servers[i], sizeof(c->servers[0]), s);
	}
	c->nservers = json_array_size(v);
	return MDM_OK;
}

static void reset_servers(const struct conf_field *f, void *base)
{
	(void)f;
	((struct config_cache *)base)->nservers = 0;
}

static enum mdm_err check_listen(struct conf_ctx *x, void *base, const char *path)
{
	const struct config_listen *l = base;
	char kp[CONF_KEYPATH_MAX];

	if (l->max_connections_per_ip <= l->max_connections)
		return MDM_OK;
	conf_key_join(kp, path, "max_connections_per_ip");
	return conf_fail(x, kp, "must not be greater than listen.max_connections (%u)",
			 l->max_connections);
}

static enum mdm_err check_cache(struct conf_ctx *x, void *base, const char *path)
{
	const struct config_cache *c = base;
	char kp[CONF_KEYPATH_MAX];

	if ((c->shards & (c->shards - 1)) != 0) {
		conf_key_join(kp, path, "shards");
		return conf_fail(x, kp, "must be a power of two from 1 to 1024");
	}
	/* memcached has no authentication: without a tag anyone on its network could write
	 * compliant=true. */
	if (c->nservers && !c->hmac_key_set) {
		conf_key_join(kp, path, "hmac_key");
		return conf_fail(x, kp, "required when cache.servers is set");
	}
	return MDM_OK;
}

#define L struct config_listen
static const struct conf_field listen_fields[] = {
    CONF_STR("address", L, address, 1, "0.0.0.0", check_address, 0),
    CONF_NUM("port", CONF_T_UINT, L, port, 1, 65535, 8443),
    CONF_STR("instance", L, instance, 0, "", check_instance, 0),
    CONF_PATH("cert_file", L, cert_file, "", CONF_REQUIRED),
    CONF_PATH("key_file", L, key_file, "", CONF_REQUIRED),
    CONF_NUM("threads", CONF_T_UINT, L, threads, 1, 256, 4),
    CONF_NUM("idle_timeout", CONF_T_DUR, L, idle_timeout_ms, CONF_SECS(1), CONF_HOURS(1),
	     CONF_SECS(60)),
    CONF_NUM("header_timeout", CONF_T_DUR, L, header_timeout_ms, 100, CONF_MINS(5), CONF_SECS(10)),
    CONF_NUM("body_timeout", CONF_T_DUR, L, body_timeout_ms, 100, CONF_MINS(10), CONF_SECS(30)),
    CONF_NUM("shutdown_grace", CONF_T_DUR, L, shutdown_grace_ms, 0, CONF_MINS(5), CONF_SECS(10)),
    CONF_NUM("max_connections", CONF_T_UINT, L, max_connections, 1, 1000000, 4096),
    CONF_NUM("max_connections_per_ip", CONF_T_UINT, L, max_connections_per_ip, 1, 1000000, 1024),
    CONF_NUM("header_memory", CONF_T_SIZE, L, header_memory, 4096, 1048576, 32768),
    CONF_NUM("max_body", CONF_T_SIZE, L, max_body, 1024, 67108864, 1048576),
    CONF_END,
};
#undef L

/* A gateway id goes into a comma-separated header: no commas, spaces or controls. */
static const char *check_gateway_id(const char *s)
{
	return conf_all_of(s, "._:-") ? NULL : "may hold only A-Z, a-z, 0-9, '.', '_', ':' and '-'";
}

static const struct conf_choice rule_choices[] = {{"all", 1}, {"any", 0}, {NULL, 0}};
static const struct conf_choice partial_choices[] = {{"answer", 0}, {"unavailable", 1}, {NULL, 0}};

#define A struct config_api
static const struct conf_field api_fields[] = {
    CONF_NUM("query_max_size", CONF_T_UINT, A, query_max_size, 1, 5000, 5000),
    CONF_STR("redirect_url", A, redirect_url, 0, "", check_url, 0),
    CONF_STR("vendor", A, vendor, 1, "mdmgw", NULL, 0),
    CONF_STR("product_name", A, product_name, 1, "mdmgw MDM compliance gateway", NULL, 0),
    CONF_STR("product_version", A, product_version, 1, MDMGW_VERSION, NULL, 0),
    CONF_NUM("lookup_timeout", CONF_T_DUR, A, lookup_timeout_ms, 10, CONF_SECS(60), 150),
    CONF_CHOICE("compliance_rule", CONF_T_BOOLCHOICE, A, compliant_requires_all, rule_choices, 1,
		NULL, 0),
    CONF_CHOICE("partial_answer", CONF_T_BOOLCHOICE, A, partial_is_unavailable, partial_choices, 0,
		NULL, 0),
    CONF_STR("gateway_id", A, gateway_id, 1, "", check_gateway_id, 0),
    CONF_NUM("max_hops", CONF_T_UINT, A, max_hops, 1, 16, 4),
    CONF_END,
};
#undef A

#define U struct config_auth
static const struct conf_field auth_fields[] = {
    CONF_NUM("verify_cache_ttl", CONF_T_DUR, U, verify_cache_ttl_ms, CONF_SECS(1), CONF_HOURS(24),
	     CONF_MINS(10)),
    CONF_NUM("verify_cache_size", CONF_T_UINT, U, verify_cache_size, 1, 1000000, 1024),
    CONF_NUM("max_concurrent_hashes", CONF_T_UINT, U, max_concurrent_hashes, 1, 64, 2),
    CONF_NUM("fail_limit", CONF_T_UINT, U, fail_limit, 1, 1000, 5),
    CONF_NUM("fail_window", CONF_T_DUR, U, fail_window_ms, CONF_SECS(1), CONF_HOURS(24),
	     CONF_SECS(60)),
    CONF_NUM("lockout", CONF_T_DUR, U, lockout_ms, CONF_SECS(1), CONF_HOURS(24), CONF_SECS(60)),
    CONF_END,
};
#undef U

static const char *check_namespace(const char *s)
{
	return conf_all_of(s, "_-") ? NULL : "may hold only A-Z, a-z, 0-9, '_' and '-'";
}

#define C struct config_cache
static const struct conf_field cache_fields[] = {
    CONF_NUM("fresh_ttl", CONF_T_DUR, C, fresh_ttl_ms, CONF_SECS(1), CONF_DAYS(7), CONF_MINS(15)),
    CONF_NUM("stale_ttl", CONF_T_DUR, C, stale_ttl_ms, 0, CONF_DAYS(7), CONF_HOURS(1)),
    CONF_NUM("negative_ttl", CONF_T_DUR, C, negative_ttl_ms, 0, CONF_DAYS(1), CONF_SECS(60)),
    CONF_NUM("l1_ttl", CONF_T_DUR, C, l1_ttl_ms, 0, CONF_HOURS(1), CONF_SECS(5)),
    CONF_NUM("max_entries", CONF_T_SIZE, C, max_entries, 16, 100000000, 100000),
    CONF_NUM("shards", CONF_T_UINT, C, shards, 1, 1024, 16),
    {.key = "servers",
     .type = CONF_T_CUSTOM,
     CONF_AT(C, servers),
     .parse = parse_servers,
     .reset = reset_servers},
    CONF_STR("namespace", C, ns, 1, "mdmgw", check_namespace, 0),
    CONF_NUM("pool_size", CONF_T_UINT, C, pool_size, 1, 1024, 16),
    CONF_NUM("connect_timeout", CONF_T_DUR, C, connect_timeout_ms, 1, CONF_SECS(10), 50),
    CONF_NUM("io_timeout", CONF_T_DUR, C, io_timeout_ms, 1, CONF_SECS(10), 50),
    CONF_NUM("failure_limit", CONF_T_UINT, C, failure_limit, 1, 100, 2),
    CONF_NUM("retry_timeout", CONF_T_DUR, C, retry_timeout_ms, CONF_SECS(1), CONF_HOURS(1),
	     CONF_SECS(2)),
    CONF_NUM("breaker_open", CONF_T_DUR, C, breaker_open_ms, 100, CONF_MINS(10), CONF_SECS(5)),
    CONF_NUM("lock_wait", CONF_T_DUR, C, lock_wait_ms, 0, CONF_SECS(10), 100),
    CONF_SECRET("hmac_key", C, hmac_key, hmac_key_set, 16, 0),
    CONF_END,
};
#undef C

#define N struct config_account
static const struct conf_field account_fields[] = {
    CONF_STR("user", N, user, 1, "", check_user, CONF_REQUIRED),
    CONF_STR("password_hash", N, password_hash, 1, "", check_hash, CONF_REQUIRED),
    ROLES("roles", N, roles, 0, CONF_REQUIRED),
    CONF_END,
};
#undef N

static const struct conf_section listen_section = {.fields = listen_fields, .check = check_listen};
static const struct conf_section api_section = {.fields = api_fields};
static const struct conf_section auth_section = {.fields = auth_fields};
static const struct conf_section cache_section = {.fields = cache_fields, .check = check_cache};
static const struct conf_section account_section = {.fields = account_fields};
static const struct conf_array accounts_spec = {
    &account_section,
    sizeof(struct config_account),
    CONFIG_MAX_ACCOUNTS,
    offsetof(struct config, naccounts),
    offsetof(struct config_account, user),
    "user",
    "user",
};
static const struct conf_array adapters_spec = {
    &adapter_conf_keys,
    sizeof(struct config_adapter),
    CONFIG_MAX_ADAPTERS,
    offsetof(struct config, nadapters),
    offsetof(struct config_adapter, name),
    "name",
    "adapter name",
};

static const struct conf_choice level_choices[] = {
    {"error", 0}, {"warn", 0}, {"info", 0}, {"debug", 0}, {NULL, 0}};

#define R struct config_action_roles
static const struct conf_field action_roles_fields[] = {
    ROLES("corporate_wipe", R, corporate_wipe, ROLE_ACTION, 0),
    ROLES("full_wipe", R, full_wipe, ROLE_ACTION, 0),
    ROLES("pin_lock", R, pin_lock, ROLE_ACTION, 0),
    CONF_END,
};
#undef R
#define J struct config_journal
static const struct conf_field journal_fields[] = {
    CONF_NUM("max_bytes", CONF_T_SIZE, J, max_bytes, 65536, 1073741824, JOURNAL_DEFAULT_MAX_BYTES),
    CONF_NUM("keep", CONF_T_UINT, J, keep, 1, JOURNAL_KEEP_MAX, JOURNAL_DEFAULT_KEEP),
    CONF_NUM("key_window", CONF_T_DUR, J, key_window_ms, CONF_MINS(1), CONF_DAYS(30),
	     JOURNAL_DEFAULT_KEY_WINDOW_MS),
    CONF_END,
};
#undef J
static const struct conf_section action_roles_section = {.fields = action_roles_fields};
static const struct conf_section journal_section = {.fields = journal_fields};
#define X struct config_actions
static const struct conf_field actions_fields[] = {
    CONF_SECTION("roles", X, roles, &action_roles_section),
    CONF_NUM("allow_full_wipe_personal", CONF_T_BOOL, X, allow_full_wipe_personal, 0, 1, 0),
    CONF_NUM("allow_full_wipe_unknown_ownership", CONF_T_BOOL, X, allow_full_wipe_unknown_ownership,
	     0, 1, 0),
    CONF_NUM("ise_key_window", CONF_T_DUR, X, ise_key_window_ms, CONF_SECS(1), CONF_HOURS(24),
	     CONF_MINS(15)),
    CONF_NUM("lookup_timeout", CONF_T_DUR, X, lookup_timeout_ms, 100, CONF_SECS(60),
	     ACTIONS_LOOKUP_TIMEOUT_DEFAULT_MS),
    CONF_SECTION("journal", X, journal, &journal_section),
    CONF_END,
};
#undef X
static const struct conf_section actions_section = {.fields = actions_fields};

/* reconciler: the polling cycle (gateway/recon/recon.h), the transitions and guard
 * (gateway/recon/trans.h) */
static const struct conf_choice unreg_choices[] = {
    {"reauthenticate", 0}, {"disconnect", 1}, {NULL, 0}};
/* reconciler: jitter is a fraction, which the integer bounds of CONF_T_NUMBER cannot say. */
static enum mdm_err check_reconciler(struct conf_ctx *x, void *base, const char *path)
{
	const struct config_reconciler *r = base;
	char kp[CONF_KEYPATH_MAX];

	if (r->interval_ms > 0 && r->interval_ms < CONF_SECS(1)) {
		conf_key_join(kp, path, "interval");
		return conf_fail(x, kp, "must be \"0\" (timer off) or from 1s to 7d");
	}
	if (r->jitter <= 0.5)
		return MDM_OK;
	conf_key_join(kp, path, "jitter");
	return conf_fail(x, kp, "must be a fraction from 0 to 0.5");
}

#define RC struct config_reconciler
static const struct conf_field reconciler_fields[] = {
    CONF_NUM("interval", CONF_T_DUR, RC, interval_ms, 0, CONF_DAYS(7), RECON_INTERVAL_MS_DEFAULT),
    CONF_NUM("jitter", CONF_T_NUMBER, RC, jitter, 0, 1, 0), /* see config_defaults */
    CONF_NUM("vendor_checkin", CONF_T_DUR, RC, vendor_checkin_ms, CONF_MINS(1), CONF_DAYS(7),
	     RECON_VENDOR_CHECKIN_MS_DEFAULT),
    CONF_NUM("page_timeout", CONF_T_DUR, RC, page_timeout_ms, CONF_SECS(1), CONF_MINS(10),
	     RECON_PAGE_TIMEOUT_MS_DEFAULT),
    CONF_NUM("write_through", CONF_T_BOOL, RC, write_through, 0, 1, 1),
    CONF_NUM("coa_on_compliant", CONF_T_BOOL, RC, coa_on_compliant, 0, 1, 1),
    CONF_CHOICE("unregistered_action", CONF_T_BOOLCHOICE, RC, unregistered_disconnect,
		unreg_choices, 0, NULL, 0),
    CONF_NUM("guard_share", CONF_T_NUMBER, RC, guard_share, 0, 1, 0), /* see config_defaults */
    CONF_NUM("guard_min", CONF_T_UINT, RC, guard_min, 0, 100000000, RECON_GUARD_MIN_DEFAULT),
    CONF_END,
};
#undef RC
static const struct conf_section reconciler_section = {.fields = reconciler_fields,
						       .check = check_reconciler};

/* --- accounting --------------------------------------------------------------------------- */

/* "addr:port" or "[v6addr]:port" with an IP literal; addr (46 bytes) and port filled. */
static const char *split_addr_port(const char *s, char *addr, unsigned *port)
{
	const char *colon = strrchr(s, ':'), *a = s;
	unsigned char bin[16];
	size_t alen;
	char *end;
	unsigned long p;

	if (!colon || colon == s)
		return "must be \"address:port\" (\"[address]:port\" for IPv6)";
	alen = (size_t)(colon - s);
	if (s[0] == '[') {
		if (colon[-1] != ']')
			return "must be \"[address]:port\" for an IPv6 address";
		a++;
		alen -= 2;
	} else if (memchr(s, ':', alen)) {
		return "an IPv6 address must be written as \"[address]:port\"";
	}
	p = strtoul(colon + 1, &end, 10);
	if (!colon[1] || *end || p < 1 || p > 65535)
		return "port must be from 1 to 65535";
	if (str_copyn(addr, 46, a, alen) != MDM_OK ||
	    (inet_pton(AF_INET, addr, bin) != 1 && inet_pton(AF_INET6, addr, bin) != 1))
		return "address must be an IPv4 or IPv6 address such as \"0.0.0.0:1813\"";
	*port = (unsigned)p;
	return NULL;
}

/* "10.0.0.1", "10.0.0.0/8", "fd00::/8" into family, net (host bits cleared) and prefix. */
static const char *parse_cidr(const char *s, struct config_acct_client *c)
{
	char addr[64];
	const char *slash = strchr(s, '/');
	unsigned long bits;
	unsigned max;
	char *end;

	if (str_copyn(addr, sizeof(addr), s, slash ? (size_t)(slash - s) : strlen(s)) != MDM_OK)
		return "is too long";
	memset(c->net, 0, sizeof(c->net));
	if (inet_pton(AF_INET, addr, c->net) == 1)
		c->family = AF_INET;
	else if (inet_pton(AF_INET6, addr, c->net) == 1)
		c->family = AF_INET6;
	else
		return "must be an IP address or a CIDR network such as \"10.0.0.0/8\"";
	max = c->family == AF_INET ? 32 : 128;
	bits = max;
	if (slash) {
		bits = strtoul(slash + 1, &end, 10);
		if (!slash[1] || *end || bits > max)
			return "has a prefix length out of range";
	}
	c->prefix = (unsigned)bits;
	for (unsigned i = c->prefix; i < max; i++)
		c->net[i / 8] &= (unsigned char)~(0x80u >> (i % 8));
	return NULL;
}

static enum mdm_err check_acct_client(struct conf_ctx *x, void *base, const char *path)
{
	struct config_acct_client *c = base;
	char kp[CONF_KEYPATH_MAX];
	const char *why = parse_cidr(c->address, c);

	if (!why)
		return MDM_OK;
	conf_key_join(kp, path, "address");
	return conf_fail(x, kp, "%s", why);
}

static enum mdm_err check_accounting(struct conf_ctx *x, void *base, const char *path)
{
	struct config_accounting *a = base;
	char kp[CONF_KEYPATH_MAX];
	const char *why;

	if (!a->listen[0]) {
		conf_key_join(kp, path, "listen");
		return a->nclients ? conf_fail(x, kp, "required when accounting.clients is set")
				   : MDM_OK;
	}
	if ((why = split_addr_port(a->listen, a->listen_addr, &a->listen_port)) != NULL) {
		conf_key_join(kp, path, "listen");
		return conf_fail(x, kp, "%s", why);
	}
	if (!a->nclients) {
		conf_key_join(kp, path, "clients");
		return conf_fail(x, kp, "required when accounting.listen is set");
	}
	return MDM_OK;
}

#define AC struct config_acct_client
static const struct conf_field acct_client_fields[] = {
    CONF_STR("address", AC, address, 1, "", NULL, CONF_REQUIRED),
    CONF_SECRET("secret", AC, secret, secret_set, 1, CONF_REQUIRED),
    CONF_END,
};
#undef AC
static const struct conf_section acct_client_section = {.fields = acct_client_fields,
							.check = check_acct_client};
static const struct conf_array acct_clients_spec = {
    &acct_client_section,
    sizeof(struct config_acct_client),
    CONFIG_MAX_ACCT_CLIENTS,
    offsetof(struct config_accounting, nclients),
    offsetof(struct config_acct_client, address),
    "address",
    "client address",
};
#define AA struct config_accounting
static const struct conf_field accounting_fields[] = {
    CONF_STR("listen", AA, listen, 0, "", NULL, 0),
    CONF_ARRAY("clients", AA, clients, &acct_clients_spec, 0),
    CONF_NUM("session_ttl", CONF_T_DUR, AA, session_ttl_ms, CONF_MINS(1), CONF_DAYS(7),
	     SESSIONS_DEFAULT_TTL_MS),
    CONF_NUM("max_sessions", CONF_T_SIZE, AA, max_sessions, 1, 10000000, SESSIONS_DEFAULT_MAX),
    CONF_END,
};
#undef AA
static const struct conf_section accounting_section = {.fields = accounting_fields,
						       .check = check_accounting};
/* --- nas (RFC 5176 CoA peers) --- */
static const char *check_nas_host(const char *s)
{
	for (const char *c = s; *c; c++)
		if (*c <= ' ' || *c == '/' || *c == '@' || *c == '[' || *c == ']')
			return "must be a host name or an IP address";
	return NULL;
}

/* check_nas: host defaults to address. */
static enum mdm_err check_nas(struct conf_ctx *x, void *base, const char *path)
{
	struct config_nas *n = base;

	(void)x;
	(void)path;
	if (!n->host[0])
		return str_copy(n->host, sizeof(n->host), n->address) == MDM_OK ? MDM_OK
										: MDM_ERR_CONFIG;
	return MDM_OK;
}

static const struct conf_choice nas_action_choices[] = {{"reauthenticate", CONFIG_NAS_REAUTH},
							{"bounce-port", CONFIG_NAS_BOUNCE},
							{"disconnect", CONFIG_NAS_DISCONNECT},
							{NULL, 0}};
#define A struct config_nas
static const struct conf_field nas_fields[] = {
    CONF_STR("address", A, address, 1, "", check_address, CONF_REQUIRED),
    CONF_STR("identifier", A, identifier, 1, "", NULL, 0),
    CONF_STR("host", A, host, 1, "", check_nas_host, 0),
    CONF_NUM("port", CONF_T_UINT, A, port, 1, 65535, COA_NAS_PORT_DEFAULT),
    CONF_SECRET("secret", A, secret, secret_set, 1, CONF_REQUIRED),
    CONF_NUM("require_message_authenticator", CONF_T_BOOL, A, require_message_authenticator, 0, 1,
	     1),
    CONF_CHOICE("action", CONF_T_ENUM, A, action, nas_action_choices, CONFIG_NAS_REAUTH, NULL, 0),
    CONF_NUM("cisco_avpair", CONF_T_BOOL, A, cisco_avpair, 0, 1, 1),
    CONF_NUM("timeout", CONF_T_DUR, A, timeout_ms, 100, CONF_SECS(30), COA_NAS_TIMEOUT_MS_DEFAULT),
    CONF_NUM("tries", CONF_T_UINT, A, tries, 1, 10, COA_NAS_TRIES_DEFAULT),
    CONF_END,
};
#undef A
static const struct conf_section nas_section = {.fields = nas_fields, .check = check_nas};
static const struct conf_array nas_spec = {
    &nas_section,
    sizeof(struct config_nas),
    CONFIG_MAX_NAS,
    offsetof(struct config, nnas),
    offsetof(struct config_nas, address),
    "address",
    "NAS address",
};
/* --- coa ----------------------------------------------------------------------------------- */
static const struct conf_choice reauth_choices[] = {
    {"default", 0}, {"last", 1}, {"rerun", 2}, {NULL, 0}};
static const struct conf_choice port_choices[] = {
    {"default", 0}, {"bounce", 1}, {"shutdown", 2}, {NULL, 0}};

/* A sink is on once its url is given; then what it needs is required, else nothing may be set. */
static enum mdm_err coa_sink_check(struct conf_ctx *x, const char *path, bool on, bool any,
				   const char *what)
{
	char kp[CONF_KEYPATH_MAX];

	conf_key_join(kp, path, on ? what : "url");
	if (on && any)
		return conf_fail(x, kp, "required when url is set");
	return !on && any ? conf_fail(x, kp, "required: the other keys mean nothing without it")
			  : MDM_OK;
}

static enum mdm_err check_coa_mnt(struct conf_ctx *x, void *base, const char *path)
{
	const struct config_coa_mnt *m = base;
	bool on = m->url[0] != '\0';

	if (on)
		return !m->ca_file[0]	  ? coa_sink_check(x, path, true, true, "ca_file")
		       : !m->user[0]	  ? coa_sink_check(x, path, true, true, "user")
		       : !m->password_set ? coa_sink_check(x, path, true, true, "password")
					  : MDM_OK;
	return coa_sink_check(x, path, false, m->ca_file[0] || m->user[0] || m->password_set, "");
}

static enum mdm_err check_coa_webhook(struct conf_ctx *x, void *base, const char *path)
{
	const struct config_coa_webhook *w = base;
	bool on = w->url[0] != '\0';

	if (on)
		return !w->ca_file[0]	? coa_sink_check(x, path, true, true, "ca_file")
		       : !w->secret_set ? coa_sink_check(x, path, true, true, "secret")
					: MDM_OK;
	return coa_sink_check(x, path, false, w->ca_file[0] || w->secret_set, "");
}

#define M struct config_coa_mnt
static const struct conf_field coa_mnt_fields[] = {
    CONF_STR("url", M, url, 0, "", conf_check_https_origin, 0),
    CONF_PATH("ca_file", M, ca_file, "", CONF_READABLE),
    CONF_STR("user", M, user, 1, "", NULL, 0),
    CONF_SECRET("password", M, password, password_set, 1, 0),
    CONF_CHOICE("reauth_type", CONF_T_ENUM, M, reauth_type, reauth_choices, 0, NULL, 0),
    CONF_CHOICE("disconnect_port", CONF_T_ENUM, M, disconnect_port, port_choices, 0, NULL, 0),
    CONF_NUM("timeout", CONF_T_DUR, M, timeout_ms, 100, CONF_SECS(60), COA_HTTP_TIMEOUT_MS_DEFAULT),
    CONF_END,
};
#undef M
#define W struct config_coa_webhook
static const struct conf_field coa_webhook_fields[] = {
    CONF_STR("url", W, url, 0, "", conf_check_https_url, 0),
    CONF_PATH("ca_file", W, ca_file, "", CONF_READABLE),
    CONF_SECRET("secret", W, secret, secret_set, 16, 0),
    CONF_NUM("timeout", CONF_T_DUR, W, timeout_ms, 100, CONF_SECS(60), COA_HTTP_TIMEOUT_MS_DEFAULT),
    CONF_END,
};
#undef W
static const struct conf_section coa_mnt_section = {.fields = coa_mnt_fields,
						    .check = check_coa_mnt};
static const struct conf_section coa_webhook_section = {.fields = coa_webhook_fields,
							.check = check_coa_webhook};
#define C struct config_coa
static const struct conf_field coa_fields[] = {
    CONF_NUM("rate_per_sec", CONF_T_NUMBER, C, rate_per_sec, 0, 100000, COA_RATE_PER_SEC_DEFAULT),
    CONF_NUM("max_attempts", CONF_T_UINT, C, max_attempts, 1, 10, COA_MAX_ATTEMPTS_DEFAULT),
    CONF_NUM("backoff", CONF_T_DUR, C, backoff_ms, 10, CONF_MINS(10), COA_BACKOFF_MS_DEFAULT),
    CONF_NUM("queue_max", CONF_T_SIZE, C, queue_max, 1, 10000000, COA_QUEUE_MAX_DEFAULT),
    CONF_SECTION("mnt", C, mnt, &coa_mnt_section),
    CONF_SECTION("webhook", C, webhook, &coa_webhook_section),
    CONF_END,
};
#undef C
static const struct conf_section coa_section = {.fields = coa_fields};

#define H struct config_ha
static const struct conf_field ha_fields[] = {
    CONF_NUM("lease_ttl", CONF_T_DUR, H, lease_ttl_ms, CONF_SECS(2), CONF_MINS(10), CONF_SECS(15)),
    CONF_NUM("follow_interval", CONF_T_DUR, H, follow_interval_ms, CONF_SECS(1), CONF_MINS(10),
	     CONF_SECS(5)),
    CONF_NUM("max_snapshot", CONF_T_SIZE, H, max_snapshot, 1048576, 4294967296LL,
	     PUBLISH_MAX_DEFAULT),
    CONF_END,
};
#undef H
static const struct conf_section ha_section = {.fields = ha_fields};

#define G struct config
static const struct conf_field top_fields[] = {
    CONF_SECTION("listen", G, listen, &listen_section),
    CONF_SECTION("api", G, api, &api_section),
    CONF_SECTION("auth", G, auth, &auth_section),
    CONF_ARRAY("accounts", G, accounts, &accounts_spec, CONF_REQUIRED),
    CONF_SECTION("cache", G, cache, &cache_section),
    CONF_ARRAY("adapters", G, adapters, &adapters_spec, CONF_REQUIRED),
    CONF_PATH("state_dir", G, state_dir, "state", 0),
    CONF_CHOICE("log_level", CONF_T_STRCHOICE, G, log_level, level_choices, 0, "info", 0),
    CONF_SECTION("actions", G, actions, &actions_section),
    CONF_SECTION("reconciler", G, reconciler, &reconciler_section),
    CONF_SECTION("accounting", G, accounting, &accounting_section),
    CONF_ARRAY("nas", G, nas, &nas_spec, 0),
    CONF_SECTION("coa", G, coa, &coa_section),
    CONF_SECTION("ha", G, ha, &ha_section),
    CONF_END,
};

static const struct conf_section top_section = {.fields = top_fields};

/* --- entry points ---------------------------------------------------------------------------- */

void config_defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	conf_defaults(&top_section, c);
	/* field defaults are whole numbers */
	c->reconciler.guard_share = RECON_GUARD_SHARE_DEFAULT;
	c->reconciler.jitter = RECON_JITTER_DEFAULT;
}

/*
 * default_gateway_id: "<hostname>:<listen.port>" when api.gateway_id is not given; bytes the id
 * may not hold become '-', and a long host name is cut so the id fits.
 */
static void default_gateway_id(struct config *c)
{
	char host[256] = "";
	char port[8];
	size_t room, n;

	if (c->api.gateway_id[0])
		return;
	if (gethostname(host, sizeof(host) - 1) != 0 || !host[0])
		str_copy(host, sizeof(host), "mdmgw");
	snprintf(port, sizeof(port), ":%u", c->listen.port);
	room = sizeof(c->api.gateway_id) - 1 - strlen(port);
	n = strnlen(host, room);
	for (size_t i = 0; i < n; i++)
		if (check_gateway_id((char[]){host[i], '\0'}))
			host[i] = '-';
	snprintf(c->api.gateway_id, sizeof(c->api.gateway_id), "%.*s%s", (int)n, host, port);
}

static enum mdm_err load(struct conf_ctx *x, const char *json, size_t len, struct config *out)
{
	struct config *c = malloc(sizeof(*c));
	enum mdm_err rc;

	if (!c)
		return conf_say(x, MDM_ERR_NOMEM, "(file)", "out of memory");
	config_defaults(c);
	if (str_copy(c->path, sizeof(c->path), x->name) != MDM_OK)
		rc = conf_fail(x, "(file)", "file name is too long");
	else
		rc = conf_parse(x, json, len, &top_section, c);
	if (rc == MDM_OK)
		default_gateway_id(c);
	if (rc == MDM_OK)
		memcpy(out, c, sizeof(*c));
	explicit_bzero(c, sizeof(*c));
	free(c);
	return rc;
}

enum mdm_err config_load_mem(const char *name, const char *json, size_t len, struct config *c,
			     char *why, size_t whysz)
{
	struct conf_ctx x;

	conf_begin(&x, name, why, whysz);
	if (!json)
		return conf_fail(&x, "(file)", "no content");
	return load(&x, json, len, c);
}

enum mdm_err config_load(const char *path, struct config *c, char *why, size_t whysz)
{
	struct conf_ctx x;
	struct buf b;
	enum mdm_err rc;

	conf_begin(&x, path, why, whysz);
	if (!path)
		return conf_fail(&x, "(file)", "no file name");
	buf_init(&b, (size_t)CONFIG_FILE_MAX + 1);
	rc = conf_read(&x, &b);
	if (rc == MDM_OK)
		rc = load(&x, buf_str(&b), b.len, c);
	if (b.mem)
		explicit_bzero(b.mem, b.alloc);
	buf_free(&b);
	return rc;
}
