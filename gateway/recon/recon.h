/*
 * recon: the polling reconciler. Every interval (with jitter) one thread lists every adapter
 * in bulk, page by page (the adapters concurrently, each adapter's pages one after another so
 * its own connection and rate limits hold), each page going at once into that adapter's new
 * rowset. An adapter whose listing failed (a failed or timed-out page) keeps its previous
 * rowset, marked stale. The sets are merged into generation N+1, published into the snapstore
 * (an atomic swap), the devices whose listed record changed are written through to the cache
 * (so the next login by MAC is a hit), the cycle is recorded, and on_generation is called.
 * A cycle is skipped when this instance is not the leader, and abandoned between pages when it
 * stops being the leader or the reconciler is destroyed.
 */
#ifndef MDM_RECON_H
#define MDM_RECON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../adapters/adapter.h"
#include "../../core/buf.h"
#include "../../core/conf.h"
#include "../verdict/lookup.h"
#include "../verdict/merge.h"
#include "snapshot.h"

/* The reconciler's defaults, written once (the configuration takes them from here). */
#define RECON_INTERVAL_MS_DEFAULT (15LL * 60 * 1000)
#define RECON_JITTER_DEFAULT 0.1
#define RECON_VENDOR_CHECKIN_MS_DEFAULT (30LL * 60 * 1000)
#define RECON_PAGE_TIMEOUT_MS_DEFAULT (60LL * 1000)
#define RECON_GUARD_SHARE_DEFAULT 0.20 /* the change guard (trans.h) */
#define RECON_GUARD_MIN_DEFAULT 10

/* --- reconciler: the polling cycle (gateway/recon/recon.h), transitions and guard (trans.h) --- */
struct config_reconciler {
	bool coa_on_compliant;	      /* non-compliant -> compliant sends CoA; default true */
	bool unregistered_disconnect; /* "unregistered_action": "reauthenticate" (default) |
				       * "disconnect" */
	double guard_share;	      /* hold a cycle's CoAs above this share; 0..1,
				       * RECON_GUARD_SHARE_DEFAULT */
	unsigned guard_min;	      /* the guard needs this many devices with a previous state;
				       * RECON_GUARD_MIN_DEFAULT */
	/* the polling cycle (gateway/recon/recon.h) */
	int64_t interval_ms; /* 0 (timer off) or 1s..7d; RECON_INTERVAL_MS_DEFAULT */
	double jitter; /* each wait is interval * (1 +- jitter); 0..0.5, RECON_JITTER_DEFAULT */
	int64_t vendor_checkin_ms; /* the vendors' device check-in period; 1m..7d,
				    * RECON_VENDOR_CHECKIN_MS_DEFAULT */
	int64_t page_timeout_ms;   /* one listing page; 1s..10m, RECON_PAGE_TIMEOUT_MS_DEFAULT */
	bool write_through;	   /* changed devices into the cache after a cycle; default true */
};

#define RECON_MAX_ADAPTERS CONFIG_MAX_ADAPTERS

/* What one adapter gave in a cycle. */
struct recon_adapter {
	char name[64];
	bool complete;	/* listed fully this cycle */
	size_t rows;	/* rows in the set the generation uses (the previous one when stale) */
	int64_t age_ms; /* how old those rows are (since their listing completed); -1: none */
	char why[256];	/* when not complete: what failed */
};

/* One cycle, as GET /api/v1/reconciler shows it. Wall times in ms; 0: not reached. */
struct recon_cycle {
	uint64_t generation; /* published by this cycle; 0 when skipped or abandoned */
	uint64_t epoch;	     /* the leader epoch the cycle ran under */
	int64_t started_ms, finished_ms;
	int64_t last_page_ms; /* when the cycle's last listing page arrived */
	int64_t wall_ms, cpu_ms;
	size_t devices, noncompliant;
	size_t writes;	/* devices written through to the cache */
	bool complete;	/* every adapter listed fully */
	bool published; /* a generation was made and swapped in */
	char
	    skipped[128]; /* why no generation was made ("not the leader" ...); "" when published */
	struct recon_adapter adapters[RECON_MAX_ADAPTERS];
	size_t nadapters;
};

struct recon_hooks {
	/* After each published generation, on the reconciler's thread; s and c are valid during
	 * the call (take snapshot_ref to keep s). NULL: none. */
	void (*on_generation)(void *arg, struct snapshot *s, const struct recon_cycle *c);
	/* Whether this instance leads, and its epoch; asked before a cycle and between pages.
	 * NULL: always the leader, epoch 0. */
	bool (*is_leader)(void *arg, uint64_t *epoch);
	/* Adds extra members (trans's "guard") to the status object. NULL: none. */
	void (*status)(void *arg, json_t *status);
	void *arg;
};

struct recon_params {
	const struct config_reconciler *cfg; /* kept */
	const char *cfg_path; /* the configuration file, named in the interval warning; kept */
	struct adapter *const *ads;
	size_t nads; /* at most RECON_MAX_ADAPTERS */
	struct snapstore *store;
	struct lookup *lookup; /* write-through target; NULL: none */
	struct merge_policy policy;
	struct recon_hooks hooks;
	bool run_at_start; /* queue the first cycle at once (else the first waits an interval) */
};

struct recon;

/*
 * recon_create: starts the reconciler's thread. Logs a warning naming the config file when
 * the interval is set and below half of vendor_checkin. NULL: bad parameters or no memory.
 * Everything p points at must outlive the reconciler.
 */
struct recon *recon_create(const struct recon_params *p);

/*
 * recon_run_now: asks for a cycle now. A cycle already queued or running answers the request
 * (they coalesce). Returns the current generation (0: none yet).
 */
uint64_t recon_run_now(struct recon *r);

/*
 * recon_wait: waits until at least n cycles have ended (published, skipped or abandoned), or
 * timeout_ms passed. true when they have. For start-up and tests; never on a server thread.
 */
bool recon_wait(struct recon *r, uint64_t n, int64_t timeout_ms);

/* recon_cycles: cycles ended so far; recon_last: a copy of the last one (false: none yet). */
uint64_t recon_cycles(struct recon *r);
bool recon_last(struct recon *r, struct recon_cycle *out);

/*
 * recon_status_json: the GET /api/v1/reconciler object, appended to out:
 * {"enabled", "interval_ms", "jitter", "generation", "running", "queued", "cycles",
 *  "last_cycle": null or {"generation", "epoch", "started_ms", "finished_ms", "last_page_ms",
 *  "wall_ms", "cpu_ms", "devices", "noncompliant", "writes", "complete", "published",
 *  "skipped", "adapters": [{"name", "complete", "rows", "age_ms", "why"}]}}
 * plus what hooks.status adds. MDM_ERR_NOMEM, MDM_ERR_TOOBIG (out's limit).
 */
enum mdm_err recon_status_json(struct recon *r, struct buf *out);

/* recon_destroy: abandons a cycle under way (between pages), joins the thread, frees. */
void recon_destroy(struct recon *r);

#endif
