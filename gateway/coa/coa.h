/*
 * coa: the Change of Authorization dispatcher. Takes confirmed transitions (struct coa_event),
 * and hands each to every configured sink (coa_sink.h) from one worker thread, with:
 *   - a bounded queue (coa_submit refuses when full, counted and logged);
 *   - a global rate limit (token bucket, rate_per_sec, bursts of up to one second's worth);
 *   - at most one attempt in flight per (sink, session): the session is MAC + NAS +
 *     Acct-Session-Id for sinks that need sessions, the device (MAC, else the event's device
 *     key) for the others. A later job for a busy session waits behind it; of several waiting,
 *     only the newest is sent (the older are superseded, logged);
 *   - claim() asked once per event before its first send (false: skipped, logged);
 *   - retries of COA_NO_ANSWER / COA_ERROR up to max_attempts with doubling back-off; then the
 *     delivery is failed. COA_REFUSED and COA_NO_SESSION are final.
 * Every attempt and outcome is logged on one line. Finished deliveries are kept for the admin
 * API: the failed ones (newest COA_KEEP) and the recent ones (a ring of COA_KEEP).
 *
 * Sink calling convention: ops->send and ops->destroy get the struct coa_sink * itself (a
 * sink finds its state in ->priv); destroy frees the struct coa_sink too.
 */
#ifndef MDM_COA_H
#define MDM_COA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../core/buf.h"
#include "../../core/conf.h"
#include "../../core/err.h"
#include "coa_sink.h"

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

#define COA_KEEP 1000	    /* failed deliveries kept, and recent deliveries kept */
#define COA_MAX_SINKS 8	    /* sinks one dispatcher drives */
#define COA_MAX_SESSIONS 16 /* sessions of one MAC a needs_session sink is sent for */

struct coa_config {
	double rate_per_sec;   /* attempts started per second; 0: no limit */
	unsigned max_attempts; /* attempts per delivery, 1..; default 3 */
	int64_t backoff_ms;    /* wait before the 2nd attempt, doubling after; default 2000 */
	size_t queue_max;      /* events waiting, at most; default 100000 */
	int64_t drain_ms;      /* coa_destroy waits this long for work still queued */
};

/* The session lookup (sessions_find, wired by the lead): up to max sessions of mac into out. */
typedef size_t (*coa_sessions_fn)(void *arg, const char *mac, struct coa_session *out, size_t max);
/* The HA once-claim of a transition id: false when another instance has it. */
typedef bool (*coa_claim_fn)(void *arg, const char *transition_id);

struct coa;

/*
 * coa_create: starts the worker. The dispatcher owns the n sinks from here on (also on
 * failure) and destroys them in coa_destroy. sessions and claim may be NULL (no sessions
 * known; every event is ours). NULL when memory or the thread cannot be had.
 */
struct coa *coa_create(const struct coa_config *cfg, struct coa_sink **sinks, size_t n,
		       coa_sessions_fn sessions, coa_claim_fn claim, void *arg);

/*
 * coa_submit: queues a copy of ev and returns at once. MDM_ERR_BUSY when the queue is full
 * (counted and logged), MDM_ERR_UNAVAILABLE once coa_destroy began, MDM_ERR_NOMEM.
 */
enum mdm_err coa_submit(struct coa *c, const struct coa_event *ev);

/*
 * coa_destroy: waits up to cfg.drain_ms for queued work, abandons what is left (one log line
 * with the count), joins the worker, destroys the sinks (which complete their sends) and
 * frees everything. NULL is a no-op.
 */
void coa_destroy(struct coa *c);

/* One finished delivery (or a skipped/superseded one), as the admin API shows it. */
struct coa_delivery {
	char event_id[160];
	uint64_t epoch;
	char sink[64];
	char mac[13];
	char session[200]; /* "<nas>/<acct-session-id>" for session sinks, else "" */
	char from[32], to[32];
	unsigned attempts;
	char outcome[24]; /* coa_outcome_name, or "failed", "superseded", "skipped", "abandoned" */
	char detail[256];
	int64_t at_ms; /* clock_wall_ms of the outcome */
};

enum coa_list_which { COA_LIST_FAILED = 0, COA_LIST_SENT, COA_LIST_ALL };

/*
 * coa_list: up to max deliveries, newest first: FAILED from the failed list, ALL from the
 * recent ring, SENT those of the ring whose outcome is "ok". Returns how many were written.
 */
size_t coa_list(struct coa *c, enum coa_list_which which, struct coa_delivery *out, size_t max);

struct coa_stats {
	uint64_t submitted, queue_full, superseded, skipped, no_session, failed, abandoned;
	uint64_t attempts[COA_MAX_SINKS][COA_NO_SESSION + 1]; /* per sink and attempt outcome */
	char sink_names[COA_MAX_SINKS][64];
	size_t nsinks;
	size_t queued; /* events waiting now */
	size_t jobs;   /* deliveries not finished now */
};

/* coa_get_stats: a consistent snapshot of the counters. Thread-safe. */
void coa_get_stats(struct coa *c, struct coa_stats *out);

#endif
