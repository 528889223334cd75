/*
 * mcms_conf: the configuration of an adapter of type "mcms": its keys (docs/configuration.md)
 * and the struct mcms_config its settings make (Basic authentication always; the gateway's hop
 * headers on every request).
 */
#include <stddef.h>
#include <string.h>

#include "mcms.h"

_Static_assert(sizeof(struct config_mcms) <= ADAPTER_CONF_MAX, "mcms settings fit the blob");
_Static_assert(sizeof(enum mcms_listing) == sizeof(unsigned), "CONF_T_ENUM stores an unsigned");

static const struct conf_choice listing_choices[] = {{"auto", MCMS_LIST_AUTO},
						     {"all", MCMS_LIST_ALL},
						     {"noncompliant_only", MCMS_LIST_NONCOMPLIANT},
						     {NULL, 0}};

static const char *check_mdm_instance(const char *s)
{
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr("._~/-", *s)))
			return "may hold only A-Z, a-z, 0-9, '.', '_', '~', '/' and '-'";
	return NULL;
}

#define M struct config_mcms
static const struct conf_field mcms_fields[] = {
    CONF_STR("url", M, url, 1, "", conf_check_https_origin, CONF_REQUIRED),
    CONF_STR("instance", M, instance, 0, "", check_mdm_instance, 0),
    CONF_PATH("ca_file", M, ca_file, "", CONF_REQUIRED | CONF_READABLE),
    CONF_STR("pinned_key", M, pinned_key, 0, "", conf_check_pin, 0),
    CONF_STR("user", M, user, 1, "", NULL, CONF_REQUIRED),
    CONF_SECRET("password", M, password, password_set, 1, CONF_REQUIRED),
    CONF_NUM("max_connections", CONF_T_UINT, M, max_connections, 1, 256, 4),
    CONF_NUM("rate_per_sec", CONF_T_NUMBER, M, rate_per_sec, 0, 100000, 0),
    CONF_NUM("max_body", CONF_T_SIZE, M, max_body, 1024, 268435456, 16777216),
    CONF_NUM("connect_timeout", CONF_T_DUR, M, connect_timeout_ms, 10, CONF_SECS(60), CONF_SECS(5)),
    CONF_NUM("breaker_failures", CONF_T_UINT, M, breaker_failures, 0, 1000, 5),
    CONF_NUM("breaker_open", CONF_T_DUR, M, breaker_open_ms, CONF_SECS(1), CONF_HOURS(1),
	     CONF_SECS(30)),
    CONF_NUM("list_timeout", CONF_T_DUR, M, list_timeout_ms, CONF_SECS(1), CONF_MINS(10),
	     CONF_SECS(30)),
    CONF_CHOICE("listing", CONF_T_ENUM, M, listing, listing_choices, MCMS_LIST_AUTO, NULL, 0),
    CONF_END,
};
#undef M

static const struct conf_section mcms_keys = {.fields = mcms_fields, .note = " for type \"mcms\""};

static unsigned mcms_connections(const void *conf)
{
	return ((const struct config_mcms *)conf)->max_connections;
}

static struct adapter *mcms_from_conf(const char *name, const void *conf,
				      const struct adapter_env *env, char *why, size_t whysz)
{
	const struct config_mcms *m = conf;
	struct mcms_config mc = {
	    .name = name,
	    .url = m->url,
	    .instance = m->instance,
	    .http =
		{
		    .name = name,
		    .ca_file = m->ca_file,
		    .pinned_key = m->pinned_key[0] ? m->pinned_key : NULL,
		    .auth = HTTP_AUTH_BASIC,
		    .user = m->user,
		    .password = m->password,
		    .max_connections = m->max_connections,
		    .rate_per_sec = m->rate_per_sec,
		    .max_body = m->max_body,
		    .connect_timeout_ms = m->connect_timeout_ms,
		    .breaker_failures = m->breaker_failures,
		    .breaker_open_ms = m->breaker_open_ms,
		},
	    .list_timeout_ms = m->list_timeout_ms,
	    .listing = m->listing,
	    .hops = env->hops,
	    .hops_arg = env->hops_arg,
	};
	struct adapter *a = NULL;

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
