/*
 * sccm_conf: the configuration of an adapter of type "sccm": its keys (docs/configuration.md),
 * the rule between auth, user and password, and the struct sccm_config its settings make.
 */
#include <stddef.h>

#include "sccm.h"

_Static_assert(sizeof(struct config_sccm) <= ADAPTER_CONF_MAX, "sccm settings fit the blob");
_Static_assert(sizeof(enum http_auth) == sizeof(unsigned), "CONF_T_ENUM stores an unsigned");

static const struct conf_choice auth_choices[] = {{"negotiate", HTTP_AUTH_NEGOTIATE},
						  {"ntlm", HTTP_AUTH_NTLM},
						  {"basic", HTTP_AUTH_BASIC},
						  {NULL, 0}};

/* Kerberos takes the process's credential cache: a user or password would be ignored. */
static enum mdm_err check_sccm(struct conf_ctx *x, void *base, const char *path)
{
	const struct config_sccm *c = base;
	bool needs = c->auth != HTTP_AUTH_NEGOTIATE;
	const char *auth = conf_choice_name(auth_choices, c->auth);
	char kp[CONF_KEYPATH_MAX];

	if (needs != (c->user[0] != '\0')) {
		conf_key_join(kp, path, "user");
		return conf_fail(
		    x, kp, needs ? "required with auth \"%s\"" : "not used with auth \"%s\"", auth);
	}
	if (needs != c->password_set) {
		conf_key_join(kp, path, "password");
		return conf_fail(
		    x, kp, needs ? "required with auth \"%s\"" : "not used with auth \"%s\"", auth);
	}
	return MDM_OK;
}

#define S struct config_sccm
static const struct conf_field sccm_fields[] = {
    CONF_STR("url", S, url, 1, "", conf_check_https_url, CONF_REQUIRED),
    HTTP_CONF_TLS_KEYS(S, http),
    CONF_CHOICE("auth", CONF_T_ENUM, S, auth, auth_choices, HTTP_AUTH_NEGOTIATE, NULL, 0),
    CONF_STR("user", S, user, 1, "", NULL, 0),
    CONF_SECRET("password", S, password, password_set, 1, 0),
    HTTP_CONF_LIMIT_KEYS(S, http, 8),
    {.key = "only_ci",
     .type = CONF_T_STRLIST,
     CONF_AT(S, only_ci),
     .size = CONF_MEMBER_SIZE(S, only_ci[0]),
     .max = SCCM_MAX_ONLY_CI,
     .aux = offsetof(S, nonly_ci)},
    CONF_NUM("no_baseline_compliant", CONF_T_BOOL, S, no_baseline_compliant, 0, 1, 0),
    CONF_NUM("page_rows", CONF_T_SIZE, S, page_rows, 1, 1000000, 10000),
    CONF_NUM("list_timeout", CONF_T_DUR, S, list_timeout_ms, CONF_SECS(1), CONF_MINS(10),
	     CONF_SECS(30)),
    CONF_END,
};
#undef S

static const struct conf_section sccm_keys = {
    .fields = sccm_fields, .check = check_sccm, .note = " for type \"sccm\""};

static unsigned sccm_connections(const void *conf)
{
	return ((const struct config_sccm *)conf)->http.max_connections;
}

static struct adapter *sccm_from_conf(const char *name, const void *conf,
				      const struct adapter_env *env, char *why, size_t whysz)
{
	const struct config_sccm *s = conf;
	const char *only[SCCM_MAX_ONLY_CI];
	struct sccm_config sc = {
	    .name = name,
	    .base_url = s->url,
	    .only_ci = only,
	    .nonly_ci = s->nonly_ci,
	    .no_rows_compliant = s->no_baseline_compliant,
	    .page_rows = s->page_rows,
	    .list_timeout_ms = s->list_timeout_ms,
	};

	http_conf_client(&s->http, name, &sc.http);
	sc.http.auth = s->auth;
	sc.http.user = s->user[0] ? s->user : NULL;
	sc.http.password = s->password_set ? s->password : NULL;
	for (size_t i = 0; i < s->nonly_ci; i++)
		only[i] = s->only_ci[i];
	return sccm_create(env->http, &sc, why, whysz);
}

const struct adapter_type sccm_adapter_type = {
    .name = "sccm",
    .conf_size = sizeof(struct config_sccm),
    .keys = &sccm_keys,
    .connections = sccm_connections,
    .create = sccm_from_conf,
};
