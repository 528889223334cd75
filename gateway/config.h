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

#include "../core/err.h"

#define CONFIG_PATH_MAX 1024
#define CONFIG_MAX_ACCOUNTS 64
#define CONFIG_MAX_ADAPTERS 32
/* config files (and buffers) larger than this are refused */
#define CONFIG_FILE_MAX (1024 * 1024)

#ifndef MDMGW_VERSION
#define MDMGW_VERSION "0.1.0"
#endif

enum role_bits { ROLE_QUERY = 1u << 0, ROLE_ACTION = 1u << 1, ROLE_ADMIN = 1u << 2 };

struct config_listen {
	char address[64];		 /* "127.0.0.1", "0.0.0.0", "::" ...; default "0.0.0.0" */
	unsigned port;			 /* 1..65535; default 8443 */
	char instance[64];		 /* optional path prefix without slashes, "" for none */
	char cert_file[CONFIG_PATH_MAX]; /* PEM server certificate chain; required */
	char key_file[CONFIG_PATH_MAX];	 /* PEM private key; required */
	unsigned threads;		 /* server threads, 1..256; default 4 */
	int64_t idle_timeout_ms;	 /* default 60s, 1s..1h */
	int64_t header_timeout_ms;	 /* default 10s, 100ms..5m */
	int64_t body_timeout_ms;	 /* default 30s, 100ms..10m */
	int64_t shutdown_grace_ms;	 /* default 10s, 0..5m */
	unsigned max_connections;	 /* default 4096, 1..1000000 */
	unsigned max_connections_per_ip; /* default 1024, 1..max_connections */
	size_t header_memory; /* URI+headers per connection; default 32768, 4096..1048576 */
	size_t max_body;      /* bytes; default 1048576, 1024..67108864 */
};

struct config_api {
	unsigned query_max_size;     /* 1..5000; default 5000 */
	char redirect_url[512];	     /* default "" */
	char vendor[64];	     /* default "mdmgw" */
	char product_name[64];	     /* default "mdmgw MDM compliance gateway" */
	char product_version[32];    /* default the build's version string */
	int64_t lookup_timeout_ms;   /* deadline for a device lookup; default 150ms, 10ms..60s */
	bool compliant_requires_all; /* true: compliant only if every source that found it says so
				      * (key "compliance_rule": "all" | "any"); default all */
	bool partial_is_unavailable; /* key "partial_answer": "answer" (default) | "unavailable" */
	/* hops (gateway in front of gateway): see gateway/hops.h */
	char gateway_id[64]; /* [A-Za-z0-9._:-], 1..63; default "<hostname>:<listen.port>" */
	unsigned max_hops; /* a request that passed this many gateways is refused; 1..16, def. 4 */
};

struct config_auth {
	int64_t verify_cache_ttl_ms;	/* default 10m, 1s..24h */
	unsigned verify_cache_size;	/* entries; default 1024, 1..1000000 */
	unsigned max_concurrent_hashes; /* default 2, 1..64 */
	unsigned fail_limit;	/* per (source, user) before throttling; default 5, 1..1000 */
	int64_t fail_window_ms; /* default 60s, 1s..24h */
	int64_t lockout_ms;	/* Retry-After while throttled; default 60s, 1s..24h */
};

struct config_account {
	char user[64];		 /* 1..63 bytes, no ':' and no control characters */
	char password_hash[256]; /* "$scrypt$..." prefix checked here, the rest by auth */
	unsigned roles;		 /* ROLE_* bits; non-empty; names "query", "action", "admin" */
};

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

/* --- actions (wipe, PIN lock): who may ask, policy, idempotency and the journal --- */
struct config_action_roles { /* ROLE_* bits that may use each action; default "action" */
	unsigned corporate_wipe, full_wipe, pin_lock;
};

struct config_journal {
	size_t max_bytes;      /* rotate past this; 65536..1073741824, default 16 MiB */
	unsigned keep;	       /* rotated files kept; 1..99, default 5 */
	int64_t key_window_ms; /* keys outlive rotation this long; 1m..30d, default 24h */
};

/* "ha": several instances sharing memcached (only meaningful with cache.servers set). */
struct config_ha {
	int64_t lease_ttl_ms;	    /* reconciler leader lease; default 15s, 2s..10m */
	int64_t follow_interval_ms; /* followers poll the published snapshot; default 5s, 1s..10m */
	size_t max_snapshot;	    /* largest published snapshot taken; default 512 MiB */
};

struct config_actions {
	struct config_action_roles roles;
	bool allow_full_wipe_personal;		/* default false */
	bool allow_full_wipe_unknown_ownership; /* default false */
	int64_t ise_key_window_ms;		/* ISE action key window; 1s..24h, default 15m */
	int64_t lookup_timeout_ms; /* fresh ask of every MDM; 100ms..60s, default 10s */
	struct config_journal journal;
};

/* --- reconciler: the polling cycle (gateway/recon.h), transitions and guard (trans.h) --- */
struct config_reconciler {
	bool coa_on_compliant;	      /* non-compliant -> compliant sends CoA; default true */
	bool unregistered_disconnect; /* "unregistered_action": "reauthenticate" (default) |
				       * "disconnect" */
	double guard_share;	      /* hold a cycle's CoAs above this share; 0..1, default 0.20 */
	unsigned
	    guard_min; /* the guard needs this many devices with a previous state; default 10 */
	/* the polling cycle (gateway/recon.h) */
	int64_t interval_ms;	   /* 0 (timer off) or 1s..7d; default 15m */
	double jitter;		   /* each wait is interval * (1 +- jitter); 0..0.5, default 0.1 */
	int64_t vendor_checkin_ms; /* the vendors' device check-in period; 1m..7d, default 30m */
	int64_t page_timeout_ms;   /* one listing page; 1s..10m, default 60s */
	bool write_through;	   /* changed devices into the cache after a cycle; default true */
};

/* --- accounting: the RADIUS accounting listener that feeds the session table --- */
#define CONFIG_MAX_ACCT_CLIENTS 64
#define CONFIG_RADIUS_SECRET_MAX 128

struct config_acct_client {
	char address[64];			   /* source IP or CIDR, as written; required */
	char secret[CONFIG_RADIUS_SECRET_MAX + 1]; /* RADIUS shared secret; required */
	bool secret_set;
	/* filled by the loader from address */
	int family;	       /* AF_INET or AF_INET6 */
	unsigned char net[16]; /* the network, host bits cleared */
	unsigned prefix;       /* 0..32 / 0..128 */
};

struct config_accounting {
	char listen[64];      /* "addr:port" ("[v6]:port"); "" (default, section absent): off */
	char listen_addr[46]; /* filled by the loader from listen */
	unsigned listen_port;
	struct config_acct_client clients[CONFIG_MAX_ACCT_CLIENTS];
	size_t nclients;	/* at least 1 when listen is set */
	int64_t session_ttl_ms; /* a session not refreshed this long is dropped; 1m..7d, def. 2h */
	size_t max_sessions;	/* 1..10000000; default 200000 */
};

/* --- nas: the switches (RFC 5176 Dynamic Authorization Servers) the radius CoA sink asks --- */
#define CONFIG_MAX_NAS 256
enum config_nas_action { CONFIG_NAS_REAUTH = 0, CONFIG_NAS_BOUNCE, CONFIG_NAS_DISCONNECT };

struct config_nas {
	char address[46];    /* IP the sessions report as NAS-IP-Address; required, unique */
	char identifier[64]; /* NAS-Identifier that also matches a session to it; "" none */
	char host[256];	     /* where CoA is sent (name or IP); default address */
	unsigned port;	     /* 1..65535; default 3799 */
	char secret[129];    /* secret; required */
	bool secret_set;
	bool require_message_authenticator; /* on replies; default true */
	enum config_nas_action
	    action;	   /* "reauthenticate" (default) | "bounce-port" | "disconnect" */
	bool cisco_avpair; /* reauthenticate with Cisco-AVPair subscriber:command=...; default true
			    */
	int64_t
	    timeout_ms; /* first wait for a reply, doubled each retransmission; 100ms..30s, 1s */
	unsigned tries; /* sends in all, 1..10; default 3 */
};

/* --- coa: the Change of Authorization dispatcher and its MnT and webhook sinks --- */
struct config_coa_mnt {		       /* sink off while url is "" */
	char url[513];		       /* https origin of the MnT node */
	char ca_file[CONFIG_PATH_MAX]; /* PEM; required with url */
	char user[256];		       /* required with url */
	char password[256];	       /* secret; required with url */
	bool password_set;
	unsigned reauth_type;	  /* "default" 0 | "last" 1 | "rerun" 2 */
	unsigned disconnect_port; /* "default" 0 | "bounce" 1 | "shutdown" 2 */
	int64_t timeout_ms;	  /* 100ms..60s; default 5s */
};
struct config_coa_webhook {	       /* sink off while url is "" */
	char url[513];		       /* https:// URL */
	char ca_file[CONFIG_PATH_MAX]; /* PEM; required with url */
	char secret[256];	       /* secret, >= 16 bytes; required with url */
	bool secret_set;
	int64_t timeout_ms; /* 100ms..60s; default 5s */
};
struct config_coa {
	double rate_per_sec;   /* 0 (no limit)..100000; default 50 */
	unsigned max_attempts; /* 1..10; default 3 */
	int64_t backoff_ms;    /* 10ms..10m; default 2s */
	size_t queue_max;      /* 1..10000000; default 100000 */
	struct config_coa_mnt mnt;
	struct config_coa_webhook webhook;
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

/* role_parse: "query" | "action" | "admin" -> ROLE_* bit; 0 for anything else. */
unsigned role_parse(const char *name);

/* config_action_roles_of: the roles allowed action kind k (enum action_kind order); 0 past it. */
unsigned config_action_roles_of(const struct config_actions *a, int k);

#endif
