/*
 * handler: what the HTTPS front and the modules that answer its routes share, so that neither
 * knows the other: the request as a handler sees it, the response it fills, and the rows of the
 * handler table (route kind -> the roles it needs -> the handler) the server dispatches through.
 *
 * A handler answers now or later, never both:
 *   - true: res holds the answer (done is never called);
 *   - false: done(arg, answer) is called exactly once, on any thread, possibly before the
 *     handler returns; the server keeps the connection waiting until then, or until the
 *     route's wait bound, past which it answers 503 itself.
 * The answer passed to done lives for the call only: take it with http_response_move.
 *
 * Threading: handlers are called on server threads, concurrently; a table is read-only once
 * the server runs.
 */
#ifndef MDM_HANDLER_H
#define MDM_HANDLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../core/buf.h"
#include "../../core/role.h"
#include "route.h"

#define HTTP_RESPONSE_MAX (64u * 1024u * 1024u)

struct http_response {
	int status;
	struct buf body; /* bounded by HTTP_RESPONSE_MAX */
	const char *content_type;
	char allow[16]; /* the Allow header of a 405; "" for none */
};

/* http_response_init / _clear: an empty response (status 500 until filled) and its release. */
void http_response_init(struct http_response *res);
void http_response_clear(struct http_response *res);

/* http_response_move: dst (cleared first) takes src's answer; src is left empty. */
void http_response_move(struct http_response *dst, struct http_response *src);

/* One request, routed and authenticated: what every handler is given. */
struct handler_request {
	const struct route *route;
	const char *body; /* NULL or len bytes */
	size_t len;
	const char *content_type;    /* NULL when absent */
	const char *idempotency_key; /* the Idempotency-Key header; NULL when absent */
	const char *user;	     /* the authenticated account */
	unsigned roles;		     /* its ROLE_* bits */
	const char *addr;	     /* the client's address */
};

typedef void (*handler_done_cb)(void *arg, struct http_response *res);

/* handler_now_fn: a handler that always answers at once (res filled when it returns). */
typedef void (*handler_now_fn)(void *ctx, const struct handler_request *rq,
			       struct http_response *res);

typedef bool (*handler_fn)(void *ctx, const struct handler_request *rq, struct http_response *res,
			   handler_done_cb done, void *arg);

/* handler_error_fn: how a group of routes writes an error (XML for the ISE API, JSON for admin). */
typedef void (*handler_error_fn)(struct http_response *res, int status, const char *message);

/* One row of the handler table. */
struct handler_spec {
	enum route_kind kind;
	unsigned roles; /* one of these ROLE_* bits is needed; 0: any authenticated account */
	/* instead of roles when they depend on the request (an ISE action: on its kind) */
	unsigned (*roles_of)(void *ctx, const struct route *r);
	handler_fn handle;     /* answers now or later (see above) */
	handler_now_fn answer; /* instead of handle, for a route always answered at once */
	/* how long an answer given later may take before the server answers 503 itself (ms);
	 * NULL: HANDLER_WAIT_DEFAULT_MS */
	int64_t (*wait_ms)(void *ctx, const struct route *r);
	bool hop_checked; /* refused with 508 on a loop or past the hop limit (server/hops.h) */
};

#define HANDLER_WAIT_DEFAULT_MS 30000

/* A module's routes, with the context its handlers get and how its errors are written. */
struct handler_group {
	const struct handler_spec *specs;
	size_t n;
	void *ctx;
	handler_error_fn error;
};

/* The table indexed by route kind, built once before serving: a request finds its row in O(1). */
struct handler_table {
	const struct handler_spec *spec[ROUTE_KIND_COUNT];   /* NULL: no row (404) */
	const struct handler_group *group[ROUTE_KIND_COUNT]; /* the module of each row */
};

/*
 * handler_table_build: t from ngroups groups (which must outlive t). MDM_ERR_INVALID, with the
 * kind in why, when two rows answer one kind, a row names no kind or neither or both of
 * handle and answer: a wiring error, refused before the server listens.
 */
enum mdm_err handler_table_build(struct handler_table *t, const struct handler_group *groups,
				 size_t ngroups, char *why, size_t whysz);

/* handler_roles: the roles a request needs by its row (0: any account). */
unsigned handler_roles(const struct handler_spec *spec, void *ctx, const struct route *r);

#endif
