/*
 * http_conf: an adapter's HTTPS client as configuration keys, the same for every network
 * adapter type (docs/configuration.md): "ca_file" and "pinned_key", then the limits
 * "max_connections", "rate_per_sec", "max_body", "connect_timeout", "breaker_failures" and
 * "breaker_open". A type's settings struct holds a struct config_http; its key table takes the
 * rows below where those keys belong in it; its create makes the client config from it.
 */
#ifndef MDM_HTTP_CONF_H
#define MDM_HTTP_CONF_H

#include <stddef.h>
#include <stdint.h>

#include "../core/conf.h"
#include "http.h"

struct config_http {
	char ca_file[CONFIG_PATH_MAX];	   /* PEM; required, readable when the config loads */
	char pinned_key[CONF_PIN_LEN + 1]; /* "sha256//<base64>"; "" for none */
	unsigned max_connections;	   /* 1..256; the type's default */
	double rate_per_sec;		   /* 0 (no limit)..100000; default 0 */
	size_t max_body;		   /* 1024..268435456; default 16777216 */
	int64_t connect_timeout_ms;	   /* 10ms..60s; default 5s */
	unsigned breaker_failures;	   /* 0 (no breaker)..1000; default 5 */
	int64_t breaker_open_ms;	   /* 1s..1h; default 30s */
};

/* The rows of "ca_file" and "pinned_key", for member m (a struct config_http) of struct S. */
#define HTTP_CONF_TLS_KEYS(S, m)                                                                   \
	CONF_PATH("ca_file", S, m.ca_file, "", CONF_REQUIRED | CONF_READABLE),                     \
	    CONF_STR("pinned_key", S, m.pinned_key, 0, "", conf_check_pin, 0)

/* The rows of the six limits, for member m of struct S; conns: max_connections' default. */
#define HTTP_CONF_LIMIT_KEYS(S, m, conns)                                                          \
	CONF_NUM("max_connections", CONF_T_UINT, S, m.max_connections, 1, 256, conns),             \
	    CONF_NUM("rate_per_sec", CONF_T_NUMBER, S, m.rate_per_sec, 0, 100000, 0),              \
	    CONF_NUM("max_body", CONF_T_SIZE, S, m.max_body, 1024, 268435456, 16777216),           \
	    CONF_NUM("connect_timeout", CONF_T_DUR, S, m.connect_timeout_ms, 10, CONF_SECS(60),    \
		     CONF_SECS(5)),                                                                \
	    CONF_NUM("breaker_failures", CONF_T_UINT, S, m.breaker_failures, 0, 1000, 5),          \
	    CONF_NUM("breaker_open", CONF_T_DUR, S, m.breaker_open_ms, CONF_SECS(1),               \
		     CONF_HOURS(1), CONF_SECS(30))

/*
 * http_conf_client: cc (zeroed first) from h, for the adapter called name: CA file, pin ("":
 * none) and limits. Authentication, user and password are the caller's to set. cc points into
 * h and name, which must outlive it.
 */
void http_conf_client(const struct config_http *h, const char *name, struct http_client_config *cc);

#endif
