/* registry: see registry.h. */
#include "registry.h"

#include <jansson.h>

#include "inventory.h"
#include "mcms.h"
#include "sccm.h"

const struct adapter_type *const adapter_types[] = {
    &inventory_adapter_type,
    &sccm_adapter_type,
    &mcms_adapter_type,
    NULL,
};

/* --- the keys of one element of "adapters" ---------------------------------------------------- */

static const char *type_name_at(const void *arg, size_t i)
{
	(void)arg;
	return adapter_types[i] ? adapter_types[i]->name : NULL;
}

/* read_type: v names one of adapter_types[]; the message lists them all when it does not. */
static const struct adapter_type *read_type(struct conf_ctx *x, json_t *v, const char *path)
{
	size_t i = 0;

	if (conf_one_of(x, v, path, type_name_at, NULL, &i) != MDM_OK)
		return NULL;
	return adapter_types[i];
}

static enum mdm_err parse_type(struct conf_ctx *x, const struct conf_field *f, json_t *v,
			       void *base, const char *path)
{
	const struct adapter_type *t = read_type(x, v, path);

	(void)f;
	((struct config_adapter *)base)->type = t;
	return t ? MDM_OK : MDM_ERR_CONFIG;
}

/* pick_keys: the keys an adapter takes depend on its type, so the type is read first. */
static const struct conf_section *pick_keys(struct conf_ctx *x, json_t *obj, const char *path)
{
	char kp[CONF_KEYPATH_MAX];
	json_t *v = json_object_get(obj, "type");
	const struct adapter_type *t;

	conf_key_join(kp, path, "type");
	if (!v) {
		conf_fail(x, kp, "required");
		return NULL;
	}
	t = read_type(x, v, kp);
	return t ? t->keys : NULL;
}

static const char *check_adapter_name(const char *s)
{
	return conf_all_of(s, "_-") ? NULL : "must be 1 to 63 of A-Z a-z 0-9 _ -";
}

#define D struct config_adapter
static const struct conf_field adapter_fields[] = {
    CONF_STR("name", D, name, 1, "", check_adapter_name, CONF_REQUIRED),
    {.key = "type",
     .type = CONF_T_CUSTOM,
     CONF_AT(D, type),
     .size = CONF_MEMBER_SIZE(D, type),
     .parse = parse_type,
     .flags = CONF_REQUIRED},
    CONF_END,
};
#undef D

const struct conf_section adapter_conf_keys = {
    .fields = adapter_fields,
    .pick = pick_keys,
    .variant_off = offsetof(struct config_adapter, conf),
};
