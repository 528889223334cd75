/*
 * config: the gateway's one JSON configuration file, loaded and validated strictly.
 * Unknown keys, wrong types and out-of-range values are refused with "file: key: what is wrong"
 * (key as a dotted path, e.g. "listen.port" or "accounts[1].roles"). Durations are strings with
 * units ("30s", "15m"). Secrets may be given inline, as {"file": PATH} or as {"env": NAME};
 * a file holding an inline secret must not be readable by group or others.
 */
#ifndef MDM_CONFIG_H
#define MDM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

enum adapter_type { ADAPTER_INVENTORY = 0, ADAPTER_SCCM, ADAPTER_MCMS };

/* How an SCCM adapter authenticates to the AdminService ("negotiate" | "ntlm" | "basic"). */
enum config_http_auth { CONFIG_AUTH_NEGOTIATE = 0, CONFIG_AUTH_NTLM, CONFIG_AUTH_BASIC };

#define CONFIG_MAX_ONLY_CI 64
#define CONFIG_PIN_LEN 52 /* "sha256//" and the 44 base64 characters of a SHA-256 */

/* The keys of an adapter of type "sccm" (see adapters/sccm.h for what they drive). */
struct config_sccm {
	char url[513];			     /* https:// only, <= 512 bytes; required */
	char ca_file[CONFIG_PATH_MAX];	     /* PEM; required, readable when the config loads */
	char pinned_key[CONFIG_PIN_LEN + 1]; /* "sha256//<base64>"; "" for none */
	enum config_http_auth auth;	     /* default negotiate */
	char user[256];	    /* required for ntlm and basic, refused for negotiate */
	char password[256]; /* secret; the same rule as user */
	bool password_set;
	unsigned max_connections;	       /* 1..256; default 8 */
	double rate_per_sec;		       /* 0 (no limit)..100000; default 0 */
	size_t max_body;		       /* 1024..268435456; default 16777216 */
	int64_t connect_timeout_ms;	       /* 10ms..60s; default 5s */
	unsigned breaker_failures;	       /* 0 (no breaker)..1000; default 5 */
	int64_t breaker_open_ms;	       /* 1s..1h; default 30s */
	char only_ci[CONFIG_MAX_ONLY_CI][256]; /* CI_UniqueIDs counted for compliance; none: all */
	size_t nonly_ci;
	bool no_baseline_compliant; /* a registered device with no baseline rows is compliant */
	size_t page_rows;	    /* 1..1000000; default 10000 */
	int64_t list_timeout_ms;    /* 1s..10m; default 30s */
};

/* How an mcms adapter lists devices ("auto" | "all" | "noncompliant_only"; adapters/mcms.h). */
enum config_listing { CONFIG_LIST_AUTO = 0, CONFIG_LIST_ALL, CONFIG_LIST_NONCOMPLIANT };

/* The keys of an adapter of type "mcms": a cloud MDM's ISE MDM API (see adapters/mcms.h). */
struct config_mcms {
	char url[513];			     /* https origin, no path; required */
	char instance[256];		     /* optional path prefix, [A-Za-z0-9._~/-]; "" none */
	char ca_file[CONFIG_PATH_MAX];	     /* PEM; required, readable when the config loads */
	char pinned_key[CONFIG_PIN_LEN + 1]; /* "sha256//<base64>"; "" for none */
	char user[256];			     /* the API account (Basic); required */
	char password[256];		     /* secret; required */
	bool password_set;
	unsigned max_connections;    /* 1..256; default 4 */
	double rate_per_sec;	     /* 0 (no limit)..100000; default 0 */
	size_t max_body;	     /* 1024..268435456; default 16777216 */
	int64_t connect_timeout_ms;  /* 10ms..60s; default 5s */
	unsigned breaker_failures;   /* 0 (no breaker)..1000; default 5 */
	int64_t breaker_open_ms;     /* 1s..1h; default 30s */
	int64_t list_timeout_ms;     /* 1s..10m; default 30s */
	enum config_listing listing; /* default auto */
};

struct config_adapter {
	char name[64];		/* unique, [A-Za-z0-9_-], 1..63 */
	enum adapter_type type; /* "inventory" | "sccm" | "mcms"; each takes only its own keys */
	char file[CONFIG_PATH_MAX]; /* inventory: JSON device file (relative: config's dir) */
	struct config_sccm sccm;    /* sccm */
	struct config_mcms mcms;    /* mcms */
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

/*
 * config_secret: resolves a secret value: a JSON string (inline), {"file": PATH} (first line of
 * the file, trailing newline removed; a relative PATH is taken from name's directory) or
 * {"env": NAME}. *inline_used is set when the value was written in the config itself. The json
 * argument is a jansson json_t *, passed as void * so this header does not pull in jansson.
 * name and key only label messages ("name: key: what is wrong"). An empty value, control
 * characters or a value of outsz bytes or more are errors. MDM_ERR_CONFIG, or MDM_ERR_IO when
 * the secret file cannot be read; out is "" on failure.
 */
enum mdm_err config_secret(const void *json, const char *name, const char *key, char *out,
			   size_t outsz, bool *inline_used, char *why, size_t whysz);

#endif
