/*
 * registry: the adapter types the gateway knows, each one descriptor: its "type" name, the keys
 * its configuration takes, how many HTTP connections it needs and how to create it from those
 * keys. The configuration picks an adapter's keys from here by its "type"; the gateway creates
 * every adapter through its descriptor. Nothing outside adapters/ knows a type by name.
 *
 * Adding a vendor (docs/adapters.md): its files in adapters/ (the adapter, its settings struct
 * and its descriptor), and in registry.c its header's #include and one line in adapter_types[].
 *
 * Threads: everything here is read-only once the program runs.
 */
#ifndef MDM_REGISTRY_H
#define MDM_REGISTRY_H

#include <stddef.h>

#include "../core/conf.h"
#include "adapter.h"
#include "http.h"

/* The room an adapter's settings have in struct config_adapter (each asserts its own fits). */
#define ADAPTER_CONF_MAX 20480

/*
 * adapter_hops_fn: the hop headers' values for the next request to another gateway: via (viasz
 * bytes) receives the gateway ids, comma separated, own id first; *hops the hop count to send.
 * Called on any thread, often; must not block.
 */
typedef void (*adapter_hops_fn)(void *arg, char *via, size_t viasz, unsigned *hops);

/* What every adapter may use of the gateway's; it outlives the adapters. */
struct adapter_env {
	struct http_engine *http; /* the one HTTP engine; NULL when no adapter needs one */
	adapter_hops_fn hops;	  /* NULL: no hop headers */
	void *hops_arg;
};

struct adapter_type {
	const char *name;		 /* its "type" in the configuration */
	size_t conf_size;		 /* of its settings struct, at most ADAPTER_CONF_MAX */
	const struct conf_section *keys; /* its keys besides "name" and "type", into its settings */
	/* connections: HTTP connections its settings ask for; 0: it needs no network */
	unsigned (*connections)(const void *conf);
	/* create: the adapter called name from its loaded settings; NULL with why on failure */
	struct adapter *(*create)(const char *name, const void *conf, const struct adapter_env *env,
				  char *why, size_t whysz);
};

/* Every type the configuration accepts, in the order messages list them; NULL-terminated. */
extern const struct adapter_type *const adapter_types[];

/* One configured adapter: its name, its type, and its settings as the type's keys left them. */
struct config_adapter {
	char name[64];			 /* unique, [A-Za-z0-9_-], 1..63 */
	const struct adapter_type *type; /* each type takes only its own keys */
	_Alignas(max_align_t) unsigned char conf[ADAPTER_CONF_MAX]; /* type->conf_size used */
};

/*
 * adapter_conf_keys: the keys of one element of "adapters": "name" and "type", then, picked by
 * the type, that type's keys into conf ("unknown key for type \"sccm\"" for others).
 */
extern const struct conf_section adapter_conf_keys;

#endif
