/* http_conf: see http_conf.h. */
#include "http_conf.h"

#include <string.h>

void http_conf_client(const struct config_http *h, const char *name, struct http_client_config *cc)
{
	memset(cc, 0, sizeof(*cc));
	cc->name = name;
	cc->ca_file = h->ca_file;
	cc->pinned_key = h->pinned_key[0] ? h->pinned_key : NULL;
	cc->max_connections = h->max_connections;
	cc->rate_per_sec = h->rate_per_sec;
	cc->max_body = h->max_body;
	cc->connect_timeout_ms = h->connect_timeout_ms;
	cc->breaker_failures = h->breaker_failures;
	cc->breaker_open_ms = h->breaker_open_ms;
}
