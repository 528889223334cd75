/*
 * http: the asynchronous HTTPS client every network adapter uses.
 *
 * One engine thread owns a libcurl multi handle and runs every transfer; callers on any thread
 * hand it requests and get one callback per request, on the engine thread. Each adapter has its
 * own client: its CA file (the only trust anchor: the system store is never used), optional
 * pinned key, credentials, connection and rate limits, body cap and circuit breaker.
 *
 * Credentials never reach the log: curl's verbose output is only on when the engine config asks
 * for debug, and then Authorization and cookie lines and every body are dropped.
 */
#ifndef MDM_HTTP_H
#define MDM_HTTP_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/buf.h"
#include "../core/device.h"
#include "../core/err.h"
#include "adapter.h"

struct http_engine;
struct http_client;

struct http_engine_config {
	int debug;		    /* curl verbose output, redacted, to log_debug */
	long max_total_connections; /* idle + busy connections kept by the engine; 0: 64 */
};

/*
 * http_engine_create: starts the engine thread. NULL when memory, libcurl or the thread cannot be
 * had. cfg may be NULL (defaults).
 */
struct http_engine *http_engine_create(const struct http_engine_config *cfg);

/*
 * http_engine_destroy: completes every pending request (queued or in flight) with a failure
 * (FAIL_INTERNAL, "HTTP engine shutting down"), frees every client still open, joins the thread.
 * Every client pointer is invalid afterwards. Never call it from a callback. NULL is a no-op.
 */
void http_engine_destroy(struct http_engine *e);

enum http_auth {
	HTTP_AUTH_NONE = 0,
	HTTP_AUTH_BASIC,
	HTTP_AUTH_NTLM,
	HTTP_AUTH_NEGOTIATE, /* Kerberos/SPNEGO from the process's credential cache */
};

struct http_client_config {
	const char *name;	    /* for logs and why texts */
	const char *ca_file;	    /* PEM; required: the only CAs trusted */
	const char *pinned_key;	    /* "sha256//base64", optional, checked on top of the CA */
	enum http_auth auth;	    /* NONE, BASIC, NTLM, NEGOTIATE */
	const char *user;	    /* for BASIC and NTLM ("DOMAIN\\user" works for NTLM) */
	const char *password;	    /* never logged */
	unsigned max_connections;   /* transfers at once; more wait in a queue. 0: 4 */
	double rate_per_sec;	    /* requests started per second, spaced 1/rate apart; 0: none */
	size_t max_body;	    /* response body cap in bytes; 0: 1 MiB */
	int64_t connect_timeout_ms; /* 0: 5000; never past the request's deadline */
	unsigned breaker_failures;  /* consecutive failures that open the circuit; 0: no breaker */
	int64_t breaker_open_ms;    /* how long it stays open before one probe goes; 0: 30000 */
};

/*
 * http_client_create: a client on engine e. The configuration strings are copied. NULL with a
 * reason in why when the config is wrong (no CA file, unreadable CA file, user without password,
 * bad pin form, unknown auth) or memory runs out.
 */
struct http_client *http_client_create(struct http_engine *e, const struct http_client_config *cc,
				       char *why, size_t whysz);

/*
 * http_client_destroy: completes the client's pending requests with a failure (FAIL_INTERNAL,
 * "client closed") and frees it; waits for the engine thread to do so, except when called from a
 * callback, where it returns at once and the engine frees the client before its next round.
 * No http_request on c afterwards. NULL is a no-op.
 */
void http_client_destroy(struct http_client *c);

enum http_method { HTTP_GET = 0, HTTP_POST };

struct http_request {
	enum http_method method;
	const char *url;	    /* https:// only */
	const char *const *headers; /* "Name: value" lines, NULL-terminated; may be NULL */
	const char *body;	    /* POST body (copied); may be NULL */
	size_t body_len;
	int64_t
	    not_before_ms; /* clock_mono_ms time before which it is not started (a server's
			    * Retry-After); 0: none. Later requests of the client may pass it. */
};

struct http_result {
	enum fail_kind fail;  /* FAIL_NONE when an HTTP status arrived (whatever the status) */
	long status;	      /* HTTP status, 0 when none arrived */
	struct buf body;      /* owned by the callback: buf_free it. Empty on failure. */
	char why[256];	      /* on failure, a sentence an admin can act on; else "" */
	char retry_after[64]; /* the answer's Retry-After value, trimmed; "" when none */
};

/*
 * http_done_cb: called exactly once per accepted request, on the engine thread. res lives for the
 * call only; res->body is the callback's to keep (copy the struct) or buf_free. Keep it short: the
 * engine runs no transfer meanwhile. It may call http_request and http_client_destroy.
 */
typedef void (*http_done_cb)(struct http_result *res, void *arg);

/*
 * http_request: queues rq on c; everything in rq is copied, so it may go once this returns.
 * deadline_ms (clock_mono_ms time) bounds queueing, connecting and the whole transfer.
 * MDM_OK: cb will be called exactly once. Anything else (MDM_ERR_INVALID for a missing or
 * non-https URL, MDM_ERR_NOMEM, MDM_ERR_UNAVAILABLE while the engine or client is closing):
 * cb is never called.
 * A request with not_before_ms waits in the queue until then (its deadline still applies).
 * While the circuit is open the callback comes at once with FAIL_UNREACHABLE, "circuit open ...";
 * after the open period one probe goes; its success closes the circuit, its failure reopens it.
 * Failures for the breaker: any fail kind other than FAIL_NONE, and HTTP 5xx statuses.
 * Bodies past max_body abort the transfer: FAIL_PROTOCOL, "body larger than N bytes".
 */
enum mdm_err http_request(struct http_client *c, const struct http_request *rq, int64_t deadline_ms,
			  http_done_cb cb, void *arg);

struct http_client_stats {
	uint64_t requests; /* accepted by http_request */
	uint64_t
	    failures[FAIL_INTERNAL + 1]; /* completions by fail kind (index FAIL_NONE unused) */
	uint64_t breaker_opens;		 /* times the circuit opened (or reopened) */
	unsigned in_flight;		 /* transfers running now */
	unsigned queued;		 /* requests waiting for a slot or a token */
	int breaker_open;		 /* circuit open or probing now */
	int breaker_probing;		 /* of which: the one probe is in flight */
};

/* http_client_stats: a consistent snapshot of c's counters. Thread-safe. */
void http_client_stats(const struct http_client *c, struct http_client_stats *out);

/*
 * http_health: what a network adapter remembers of its vendor calls, for its health op
 * (GET /api/v1/adapters): whether the last call failed, when the last success and the last
 * failure were, and why. Thread-safe (its own mutex).
 */
struct http_health {
	pthread_mutex_t mu;
	bool last_failed;
	int64_t last_ok_ms, last_error_ms; /* clock_wall_ms; 0: never */
	char last_error[256];
};

enum mdm_err http_health_init(struct http_health *h); /* MDM_ERR_NOMEM when no mutex */
void http_health_destroy(struct http_health *h);
void http_health_ok(struct http_health *h);
void http_health_fail(struct http_health *h, const char *why); /* why cut to 255 bytes */
/* http_health_note: http_health_ok when ok, else http_health_fail for why. */
void http_health_note(struct http_health *h, bool ok, const char *why);
/* http_health_report: out from h and from c's counters and circuit breaker. */
void http_health_report(struct http_health *h, const struct http_client *c,
			struct adapter_health *out);

#endif
