/*
 * ise_api: the ISE MDM API answers (mdminfo, devices, batchdevices, action), rendered as XML
 * in the version the path belongs to. Independent of the HTTP server: it takes a parsed route
 * and a body and fills a response, so tests drive it directly.
 */
#ifndef MDM_ISE_API_H
#define MDM_ISE_API_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "../../core/buf.h"
#include "../../core/role.h"
#include "../recon/snapshot.h"
#include "../server/hops.h"
#include "../server/route.h"
#include "../verdict/lookup.h"

struct config;

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
	/* hops (gateway in front of gateway): see gateway/server/hops.h */
	char gateway_id[64]; /* [A-Za-z0-9._:-], 1..63; default "<hostname>:<listen.port>" */
	unsigned max_hops; /* a request that passed this many gateways is refused; 1..16, def. 4 */
};

#define ISE_RESPONSE_MAX (64u * 1024u * 1024u)

struct ise_stats {
	atomic_ulong answer_hits; /* single-device answers sent as rendered before */
	atomic_ulong requests;
	atomic_ulong bad_requests;
	atomic_ulong unavailable;
	atomic_ulong actions;
	atomic_ulong local_macs; /* queries for locally administered (randomised) MACs */
};

struct actions;
struct journal;
struct block;
struct trans;

struct ise_ctx {
	const struct config *cfg;
	struct actions *actions; /* the action pipeline (NULL: every action is refused) */
	struct journal *journal; /* the admin API reads actions from it */
	struct block *blocks;	 /* devices blocked by an administrator (NULL: none) */
	struct lookup *lookup;
	struct cache *cache;
	/*
	 * Rendered single-device answers (NULL: none), part of the in-process tier: an entry is
	 * stored only when every source's part was fresh, under the lookup generation read before
	 * the lookup (so any write since makes it unreachable), and lives no longer than the
	 * earliest fresh_until of its parts (and l1_ttl, which the cache's max_hold_ms enforces).
	 */
	struct cache *answers;
	struct adapter *const *ads;
	size_t nads;
	struct snapstore *snaps; /* generations for bulk answers and indexed lookups (NULL: none) */
	struct ise_stats stats;
	struct hops *hops; /* loop and chain guard of the ISE API routes (NULL: none) */
	struct coa *coa;   /* the CoA dispatcher (NULL: no sink configured) */
	/* trans: the transitions engine (NULL: none), and what an admin block or unblock calls
	 * (set by main; NULL: nothing) */
	struct trans *trans;
	void (*on_block)(void *arg, const char *device, bool blocked);
	void *on_block_arg;
	/* network sessions by MAC (accounting, admin API), and the RADIUS accounting listener
	 * (for /metrics; NULL when off) */
	struct sessions *sessions;
	struct acct *acct;
	/* filled by the server for /metrics: connections cut by the header and body deadlines */
	atomic_ulong cut_header, cut_body;
};

struct ise_response {
	int status;
	struct buf body;
	const char *content_type;
	char allow[16]; /* for 405 */
};

/* ise_response_init / _clear: an empty response (status 500 until filled) and its release. */
void ise_response_init(struct ise_response *res);
void ise_response_clear(struct ise_response *res);

/* ise_response_move: dst (cleared first) takes src's answer; src is left empty. */
void ise_response_move(struct ise_response *dst, struct ise_response *src);

/*
 * ise_done_cb: a response that was not ready when ise_start returned. res is valid during the
 * call only (the callee clears it after): take it with ise_response_move.
 */
typedef void (*ise_done_cb)(void *arg, struct ise_response *res);

/*
 * ise_start: answers route r (kind MDMINFO, DEVICES, BATCH, ACTION, SENDMESSAGE or BAD) with
 * the request body (may be NULL) of the given content type, without waiting for a vendor.
 * true: res holds the answer now (done is never called). false: a lookup is under way and
 * done(arg, answer) comes exactly once, on another thread, by the lookup's deadline.
 * user is the authenticated account, for the log.
 */
bool ise_start(struct ise_ctx *ctx, const struct route *r, const char *body, size_t len,
	       const char *content_type, const char *user, struct ise_response *res,
	       ise_done_cb done, void *arg);

/*
 * ise_start_from: ise_start for an account with roles (ROLE_* bits) calling from addr (for
 * the action journal). ise_start is this with every role and address "-". An action may be
 * answered through done even before this returns (it then returns false all the same).
 */
bool ise_start_from(struct ise_ctx *ctx, const struct route *r, const char *body, size_t len,
		    const char *content_type, const char *user, unsigned roles, const char *addr,
		    struct ise_response *res, ise_done_cb done, void *arg);

/*
 * ise_handle: ise_start, waiting for the answer (tests and tools; never on a server thread):
 * answers route r (kind MDMINFO, DEVICES, BATCH, ACTION, SENDMESSAGE or BAD) with
 * the request body (may be NULL) of the given content type. user is the authenticated account,
 * for the log.
 */
void ise_handle(struct ise_ctx *ctx, const struct route *r, const char *body, size_t len,
		const char *content_type, const char *user, struct ise_response *res);

/* ise_error: an XML error document with status and message. */
void ise_error(struct ise_response *res, int status, const char *message);

#endif
