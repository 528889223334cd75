/* inventory_conf: the configuration of an adapter of type "inventory": its one key, "file". */
#include <stddef.h>

#include "inventory.h"

_Static_assert(sizeof(struct config_inventory) <= ADAPTER_CONF_MAX, "inventory settings fit");

static const struct conf_field inventory_fields[] = {
    CONF_PATH("file", struct config_inventory, file, "", CONF_REQUIRED),
    CONF_END,
};

static const struct conf_section inventory_keys = {.fields = inventory_fields,
						   .note = " for type \"inventory\""};

static unsigned inventory_connections(const void *conf)
{
	(void)conf;
	return 0;
}

static struct adapter *inventory_from_conf(const char *name, const void *conf,
					   const struct adapter_env *env, char *why, size_t whysz)
{
	(void)env;
	return inventory_create(name, ((const struct config_inventory *)conf)->file, why, whysz);
}

const struct adapter_type inventory_adapter_type = {
    .name = "inventory",
    .conf_size = sizeof(struct config_inventory),
    .keys = &inventory_keys,
    .connections = inventory_connections,
    .create = inventory_from_conf,
};
