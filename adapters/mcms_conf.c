/*
 * mcms_conf: the configuration of an adapter of type "mcms": its keys (docs/configuration.md)
 * and the struct mcms_config its settings make (Basic authentication always; the gateway's hop
 * headers on every request).
 */
#include <stddef.h>

#include "mcms.h"

_Static_assert(sizeof(struct config_mcms) <= ADAPTER_CONF_MAX, "mcms settings fit the blob");
_Static_assert(sizeof(enum mcms_listing) == sizeof(unsigned), "CONF_T_ENUM stores an unsigned");

static const struct conf_choice listing_choices[] = {{"auto", MCMS_LIST_AUTO},
						     {"all", MCMS_LIST_ALL},
						     {"noncompliant_only", MCMS_LIST_NONCOMPLIANT},
						     {NULL, 0}};

static const char *check_mdm_instance(const char *s)
{
	return conf_all_of(s, "._~/-") ? NULL
				       : "may hold only A-Z, a-z, 0-9, '.', '_', '~', '/' and '-'";
}

#define M struct config_mcms
static const struct conf_field mcms_fields[] = {
    CONF_STR("url", M, url, 1, "", conf_check_https_origin, CONF_REQUIRED),
    CONF_STR("instance", M, instance, 0, "", check_mdm_instance, 0),
    HTTP_CONF_TLS_KEYS(M, http),
    CONF_STR("user", M, user, 1, "", NULL, CONF_REQUIRED),
    CONF_SECRET("password", M, password, password_set, 1, CONF_REQUIRED),
    HTTP_CONF_LIMIT_KEYS(M, http, 4),
    CONF_NUM("list_timeout", CONF_T_DUR, M, list_timeout_ms, CONF_SECS(1), CONF_MINS(10),
	     CONF_SECS(30)),
    CONF_CHOICE("listing", CONF_T_ENUM, M, listing, listing_choices, MCMS_LIST_AUTO, NULL, 0),
    CONF_END,
};
#undef M

static const struct conf_section mcms_keys = {.fields = mcms_fields, .note = " for type \"mcms\""};

static unsigned mcms_connections(const void *conf)
{
	return ((const struct config_mcms *)conf)->http.max_connections;
}

static struct adapter *mcms_from_conf(const char *name, const void *conf,
				      const struct adapter_env *env, char *why, size_t whysz)
{
	const struct config_mcms *m = conf;
	struct mcms_config mc = {
	    .name = name,
	    .url = m->url,
	    .instance = m->instance,
	    .list_timeout_ms = m->list_timeout_ms,
	    .listing = m->listing,
	    .hops = env->hops,
	    .hops_arg = env->hops_arg,
	};
	struct adapter *a = NULL;

	http_conf_client(&m->http, name, &mc.http);
	mc.http.auth = HTTP_AUTH_BASIC;
	mc.http.user = m->user;
	mc.http.password = m->password;
	mcms_create(env->http, &mc, &a, why, whysz);
	return a;
}

const struct adapter_type mcms_adapter_type = {
    .name = "mcms",
    .conf_size = sizeof(struct config_mcms),
    .keys = &mcms_keys,
    .connections = mcms_connections,
    .create = mcms_from_conf,
};
