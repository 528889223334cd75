/*
 * config: the gateway's one JSON configuration file, loaded and validated strictly by the
 * engine of core/conf.h. Unknown keys, wrong types and out-of-range values are refused with
 * "file: key: what is wrong" (key as a dotted path, e.g. "listen.port" or "accounts[1].roles").
 * Durations are strings with units ("30s", "15m"). Secrets may be given inline, as
 * {"file": PATH} or as {"env": NAME} (conf_secret); a file holding an inline secret must not be
 * readable by group or others. Each adapter's keys are its type's (adapters/registry.h).
 */
#ifndef MDM_CONFIG_H
#define MDM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../adapters/registry.h"
#include "../../core/conf.h"
#include "../../core/err.h"
#include "../../core/role.h"
#include "../../core/version.h"
#include "../actions/actions.h"
#include "../coa/acct.h"
#include "../coa/coa.h"
#include "../coa/coa_radius.h"
#include "../ise/ise_api.h"
#include "../recon/recon.h"
#include "../server/auth.h"
#include "../server/server.h"

#define CONFIG_MAX_ACCOUNTS 64

#define CONFIG_MAX_SERVERS 32

struct config_cache {
	int64_t fresh_ttl_ms;	 /* default 15m, 1s..7d */
	int64_t stale_ttl_ms;	 /* serve stale this long after fresh ends; default 1h, 0..7d */
	int64_t negative_ttl_ms; /* not-enrolled answers; default 60s, 0..1d */
	int64_t l1_ttl_ms;	 /* in-process tier in front of memcached; default 5s, 0 (no L1
				  * when servers are set)..1h; without servers L1 is the cache */
	size_t max_entries;	 /* default 100000, 16..100000000 */
	unsigned shards;	 /* power of two 1..1024; default 16 */
	char hmac_key[129];	 /* secret "hmac_key", 16..128 bytes; for memcached entries */
	bool hmac_key_set;	 /* hmac_key was given; default false; required with servers */
	/* memcached (L2): none by default */
	char servers[CONFIG_MAX_SERVERS][128]; /* "host:port" or "[v6addr]:port" */
	size_t nservers;
	char ns[32];		    /* key namespace "namespace", [A-Za-z0-9_-], default "mdmgw" */
	unsigned pool_size;	    /* memcached handles; default 16, 1..1024 */
	int64_t connect_timeout_ms; /* default 50ms, 1ms..10s */
	int64_t io_timeout_ms;	    /* default 50ms, 1ms..10s */
	unsigned failure_limit; /* per server and handle before it is ejected; default 2, 1..100 */
	int64_t
	    retry_timeout_ms; /* an ejected server is tried again after this; default 2s, 1s..1h */
	int64_t breaker_open_ms; /* every server failing: skip memcached; default 5s, 100ms..10m */
	int64_t lock_wait_ms; /* a miss another instance is filling: wait; default 100ms, 0..10s */
};

/* "ha": several instances sharing memcached (only meaningful with cache.servers set). */
struct config_ha {
	int64_t lease_ttl_ms;	    /* reconciler leader lease; default 15s, 2s..10m */
	int64_t follow_interval_ms; /* followers poll the published snapshot; default 5s, 1s..10m */
	size_t max_snapshot;	    /* largest published snapshot taken; default 512 MiB */
};

struct config {
	char path[CONFIG_PATH_MAX]; /* the file this came from */
	struct config_listen listen;
	struct config_api api;
	struct config_auth auth;
	struct config_cache cache;
	struct config_account accounts[CONFIG_MAX_ACCOUNTS];
	size_t naccounts; /* at least 1 */
	struct config_adapter adapters[CONFIG_MAX_ADAPTERS];
	size_t nadapters;		 /* at least 1 */
	char state_dir[CONFIG_PATH_MAX]; /* default "state" next to the config file */
	struct config_actions actions;
	struct config_reconciler reconciler;
	struct config_ha ha;
	char log_level[16]; /* "error" | "warn" | "info" (default) | "debug" */
	struct config_accounting accounting;
	struct config_nas nas[CONFIG_MAX_NAS]; /* optional; see config_nas */
	size_t nnas;
	struct config_coa coa;
};

/*
 * config_defaults: every field at its documented default (no accounts, no adapters). state_dir
 * is "state" here; config_load* resolve it against the config file's directory.
 */
void config_defaults(struct config *c);

/*
 * config_load: reads and validates path into c. On failure, why holds one line
 * "path: key: what is wrong" and the result is MDM_ERR_CONFIG (or MDM_ERR_IO if unreadable).
 * Relative file paths inside the config are resolved against the config file's directory.
 * Files over CONFIG_FILE_MAX are refused, and so is an inline secret in a file whose mode lets
 * group or others read it. c is only written on success.
 */
enum mdm_err config_load(const char *path, struct config *c, char *why, size_t whysz);

/*
 * config_load_mem: the same from a buffer; name stands for the file in messages, and relative
 * paths are resolved against its directory part (left as given when it has none). No file mode
 * check is made.
 */
enum mdm_err config_load_mem(const char *name, const char *json, size_t len, struct config *c,
			     char *why, size_t whysz);

#endif
