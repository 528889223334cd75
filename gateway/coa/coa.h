/*
 * coa: the Change of Authorization dispatcher. Takes confirmed transitions (core/transition.h),
 * and hands each to every configured sink (coa_sink.h) from one worker thread, with:
 *   - a bounded queue (coa_submit refuses when full, counted and logged);
 *   - a global rate limit (token bucket, rate_per_sec, bursts of up to one second's worth);
 *   - at most one attempt in flight per (sink, session): the session is MAC + NAS +
 *     Acct-Session-Id for sinks that need sessions, the device (MAC, else the event's device
 *     key) for the others. A later job for a busy session waits behind it; of several waiting,
 *     only the newest is sent (the older are superseded, logged);
 *   - claim() asked once per event before its first send (false: skipped, logged);
 *   - retries of COA_NO_ANSWER / COA_ERROR up to max_attempts with doubling back-off; then the
 *     delivery is failed. COA_REFUSED and COA_NO_SESSION are final. The policy, its defaults
 *     and the worst case until a delivery is final: coa_policy.h.
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
#include "../../core/transition.h"
#include "coa_policy.h"
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
	int64_t timeout_ms;	  /* 100ms..60s; default COA_HTTP_TIMEOUT_MS_DEFAULT */
};
struct config_coa_webhook {	       /* sink off while url is "" */
	char url[513];		       /* https:// URL */
	char ca_file[CONFIG_PATH_MAX]; /* PEM; required with url */
	char secret[256];	       /* secret, >= 16 bytes; required with url */
	bool secret_set;
	int64_t timeout_ms; /* 100ms..60s; default COA_HTTP_TIMEOUT_MS_DEFAULT */
};
struct config_coa {
	double rate_per_sec;   /* 0 (no limit)..100000; default COA_RATE_PER_SEC_DEFAULT */
	unsigned max_attempts; /* 1..10; default COA_MAX_ATTEMPTS_DEFAULT */
	int64_t backoff_ms;    /* 10ms..10m; default COA_BACKOFF_MS_DEFAULT */
	size_t queue_max;      /* 1..10000000; default COA_QUEUE_MAX_DEFAULT */
	struct config_coa_mnt mnt;
	struct config_coa_webhook webhook;
};

#define COA_KEEP 1000	    /* failed deliveries kept, and recent deliveries kept */
#define COA_MAX_SINKS 8	    /* sinks one dispatcher drives */
#define COA_MAX_SESSIONS 16 /* sessions of one MAC a needs_session sink is sent for */

struct coa_config {
	double rate_per_sec;   /* attempts started per second; 0: no limit */
	unsigned max_attempts; /* attempts per delivery, 1.. */
	int64_t backoff_ms;    /* wait before the 2nd attempt, doubling after */
	size_t queue_max;      /* events waiting, at most */
	int64_t drain_ms;      /* coa_destroy waits this long for work still queued */
};

/* The session lookup (sessions_find_cb, sessions.h): up to max sessions of mac into out. */
typedef size_t (*coa_sessions_fn)(void *arg, const char *mac, struct coa_session *out, size_t max);
/* The HA once-claim of a transition id (lease_claim_cb): false when another instance has it. */
typedef bool (*coa_claim_fn)(void *arg, const char *transition_id);

/* What the dispatcher asks outside itself; each with its own argument. */
struct coa_hooks {
	coa_sessions_fn sessions; /* NULL: no sessions known */
	void *sessions_arg;
	coa_claim_fn claim; /* NULL: every event is ours */
	void *claim_arg;
};

struct coa;

/*
 * coa_create: starts the worker. The dispatcher owns the n sinks from here on (also on
 * failure) and destroys them in coa_destroy. hooks (copied) may be NULL: no sessions known,
 * every event ours. NULL when memory or the thread cannot be had.
 */
struct coa *coa_create(const struct coa_config *cfg, struct coa_sink **sinks, size_t n,
		       const struct coa_hooks *hooks);

struct config_nas;
struct http_engine;

/* What coa_start builds the CoA side from. */
struct coa_setup {
	const struct config_coa *cfg;
	const struct config_nas *nas; /* RFC 5176 peers (coa_radius.h); nnas 0: no radius sink */
	size_t nnas;
	int64_t drain_ms; /* coa_destroy waits this long for work still queued */
	struct coa_hooks hooks;
};

/*
 * coa_start: the configured sinks (nas[] for RFC 5176, cfg->mnt, cfg->webhook) and the
 * dispatcher over them, logged in one line. No sink configured: MDM_OK with *out NULL (the
 * transitions are only logged, coa_transition_sink(NULL)). The HTTP sinks get an engine of
 * their own, *http (NULL when none: CoA never waits behind vendor listings); destroy it after
 * coa_destroy. A sink that cannot be made: MDM_ERR_CONFIG (or MDM_ERR_IO, MDM_ERR_NOMEM) with
 * why, nothing left to free but *http.
 */
enum mdm_err coa_start(const struct coa_setup *s, struct coa **out, struct http_engine **http,
		       char *why, size_t whysz);

/*
 * coa_submit: queues a copy of ev and returns at once. MDM_ERR_BUSY when the queue is full
 * (counted and logged), MDM_ERR_UNAVAILABLE once coa_destroy began, MDM_ERR_NOMEM.
 */
enum mdm_err coa_submit(struct coa *c, const struct transition *ev);

/*
 * coa_transition_sink: the sink the transitions engine emits into: each transition is logged
 * (one info line), then queued by coa_submit (a refusal logged). c NULL (no CoA sink
 * configured): logged only. Never blocks.
 */
struct transition_sink coa_transition_sink(struct coa *c);

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
