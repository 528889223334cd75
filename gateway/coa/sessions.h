/*
 * sessions: the active network sessions the gateway knows, keyed by MAC (12 upper-case hex),
 * several per MAC (wired and wireless, each told apart by NAS-IP-Address, NAS-Identifier and
 * Acct-Session-Id). Fed by RADIUS accounting (acct.c) and the admin API (session_api.c), read
 * by the CoA dispatcher to address a Disconnect/CoA to every session of a device.
 *
 * Thread-safe (one mutex). Bounded: past max_sessions a new session is refused (an update of
 * a known one still goes through). Memory is one fixed struct per session in a growing array,
 * no strings on the heap. A session not refreshed (Start, Interim-Update, PUT) within ttl_ms is
 * stale: never returned, and dropped by sessions_expire.
 */
#ifndef MDM_SESSIONS_H
#define MDM_SESSIONS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../core/buf.h"
#include "../../core/prom.h"
#include "../../core/err.h"
#include "coa_sink.h"

#define SESSIONS_DEFAULT_MAX 200000
#define SESSIONS_DEFAULT_TTL_MS (2 * 3600 * 1000LL)

struct sessions;

/* sessions_create: an empty table of at most max_sessions (>= 1) living ttl_ms (> 0) each. */
struct sessions *sessions_create(size_t max_sessions, int64_t ttl_ms);

/* sessions_destroy: frees the table; NULL is fine. */
void sessions_destroy(struct sessions *t);

/*
 * sessions_put: inserts s, or replaces the session of the same MAC, nas_ip, nas_id and
 * acct_session_id (a retransmitted Start is the same upsert). s->mac must be 12 upper-case hex.
 * s->updated_ms 0 means now (clock_wall_ms). A full table first drops its stale sessions.
 * MDM_ERR_INVALID for a bad MAC, MDM_ERR_TOOBIG when the table is still full (logged at most
 * once a minute, counted), MDM_ERR_NOMEM.
 */
enum mdm_err sessions_put(struct sessions *t, const struct coa_session *s);

/*
 * sessions_remove: drops the session of mac with exactly these nas_ip, nas_id and
 * acct_session_id (NULL counts as ""). MDM_ERR_NOTFOUND when there is none.
 */
enum mdm_err sessions_remove(struct sessions *t, const char *mac, const char *nas_ip,
			     const char *nas_id, const char *acct_session_id);

/* sessions_remove_mac: drops every session of mac; returns how many there were. */
size_t sessions_remove_mac(struct sessions *t, const char *mac);

/*
 * sessions_clear_nas: drops every session whose nas_ip and nas_id equal the given ones, an
 * empty or NULL argument matching anything (a NAS rebooted: Accounting-On/Off). Both empty
 * clears nothing. Returns how many were dropped.
 */
size_t sessions_clear_nas(struct sessions *t, const char *nas_ip, const char *nas_id);

/*
 * sessions_find: copies the (up to) max most recently updated live sessions of mac (any form
 * mac_parse knows) into out, most recent first; returns how many. Stale ones are skipped. Matches
 * the `sessions` callback the CoA dispatcher takes (pass the table as arg).
 */
size_t sessions_find(struct sessions *t, const char *mac, struct coa_session *out, size_t max);

/* sessions_find_cb: sessions_find with the table as void * (the dispatcher's callback type). */
size_t sessions_find_cb(void *t, const char *mac, struct coa_session *out, size_t max);

/* sessions_expire: drops sessions not updated since now_ms - ttl; returns how many. */
size_t sessions_expire(struct sessions *t, int64_t now_ms);

/* sessions_count: the sessions held (stale ones not yet expired included). */
size_t sessions_count(const struct sessions *t);

/* sessions_refused: how many new sessions were refused because the table was full. */
unsigned long sessions_refused(const struct sessions *t);

/* sessions_metrics: appends mdmgw_sessions and mdmgw_sessions_refused_total to b. */
void sessions_metrics(const struct sessions *t, struct prom *b);

/* sessions_session_json: one session as the admin API shows it (NULL: out of memory). */
json_t *sessions_session_json(const struct coa_session *s);

/*
 * sessions_json: {"count": live sessions in the answer's scope, "sessions": [the first max]}
 * of mac (12 upper-case hex; NULL: every MAC, in table order). NULL when out of memory.
 */
json_t *sessions_json(struct sessions *t, const char *mac, size_t max);

#endif
