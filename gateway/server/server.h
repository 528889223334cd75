/*
 * server: the HTTPS front on libmicrohttpd. TLS 1.2/1.3 only (an explicit GnuTLS priority
 * string), an epoll thread pool, and every limit enforced: an idle timeout, a header deadline
 * that also cuts a client trickling one byte a second, a body deadline, global and per-IP
 * connection caps, URI/header memory (MHD answers 414/431) and a body cap (413).
 * Basic auth on everything but /healthz. Graceful stop: refuse new connections, let requests in
 * flight finish (answers say "Connection: close"), then stop.
 */
#ifndef MDM_SERVER_H
#define MDM_SERVER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "../../core/conf.h"
#include "../../core/err.h"
#include "auth.h"
#include "handler.h"

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

/* TLS 1.3 and 1.2 with AEAD ciphers and ECDHE only. */
#define SERVER_TLS_PRIORITIES                                                                      \
	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:"        \
	"+CHACHA20-POLY1305:-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:%SERVER_PRECEDENCE"

struct server;
struct hops;

/* What the server counts for /metrics (caller-owned: it outlives the server). */
struct server_stats {
	atomic_ulong cut_header; /* connections cut by the header deadline */
	atomic_ulong cut_body;	 /* ... and by the body deadline */
};

/*
 * What the server is given. Every route but /healthz is answered by the row of its kind in
 * routes (a module's group of rows: gateway/server/http.h); the server authenticates, checks
 * the row's roles (403 written as the group writes errors), the hop guard for hop-checked rows
 * (508), and waits for a later answer until the row's bound (503). Requests it refuses before a
 * route is known (401, 413, 429 ...) and routes no row answers (404) are written with error.
 */
struct server_deps {
	const struct config_listen *listen;
	struct auth *auth;
	struct hops *hops; /* NULL: no hop checks */
	const struct handler_group *routes;
	size_t nroutes;
	handler_error_fn error;
	struct server_stats *stats;
};

/* server_start: listens and serves on its own threads. why says what failed. */
enum mdm_err server_start(const struct server_deps *deps, struct server **out, char *why,
			  size_t whysz);

/*
 * server_stop: stops accepting, lets requests in flight finish for up to grace_ms, then closes
 * every connection and frees the server. Returns how many requests were still in flight.
 */
unsigned server_stop(struct server *s, int64_t grace_ms);

/* server_raise_nofile: raises RLIMIT_NOFILE to cover want descriptors (as far as allowed). */
void server_raise_nofile(unsigned want);

#endif
