/*
 * actions: the pipeline every destructive action (corporate wipe, full wipe, PIN lock) goes
 * through, from the ISE action API and the admin API alike:
 *   role -> idempotency key -> device free -> which MDM (every adapter asked fresh, never the
 *   cache) -> policy (ownership) -> journal intent (fsync'd) -> the MDM -> journal outcome ->
 *   cache purge of the device, so the next login sees the MDM's new state.
 * Refusals by policy are journalled too. Nothing here blocks on a vendor: actions_start
 * returns at once and the answer comes through a callback.
 */
#ifndef MDM_ACTIONS_H
#define MDM_ACTIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "../../adapters/adapter.h"
#include "../../core/ident.h"
#include "../../core/role.h"
#include "../verdict/lookup.h"
#include "journal.h"

/* --- actions (wipe, PIN lock): who may ask, policy, idempotency and the journal --- */
struct config_action_roles { /* ROLE_* bits that may use each action; default "action" */
	unsigned corporate_wipe, full_wipe, pin_lock;
};

struct config_journal {
	size_t max_bytes;      /* rotate past this; 65536..1073741824, default 16 MiB */
	unsigned keep;	       /* rotated files kept; 1..99, default 5 */
	int64_t key_window_ms; /* keys outlive rotation this long; 1m..30d, default 24h */
};

struct config_actions {
	struct config_action_roles roles;
	bool allow_full_wipe_personal;		/* default false */
	bool allow_full_wipe_unknown_ownership; /* default false */
	int64_t ise_key_window_ms;		/* ISE action key window; 1s..24h, default 15m */
	int64_t lookup_timeout_ms; /* fresh ask of every MDM; 100ms..60s, default 10s (0: that) */
	struct config_journal journal;
};

/* config_action_roles_of: the roles allowed action kind k (enum action_kind order); 0 past it. */
unsigned config_action_roles_of(const struct config_action_roles *roles, int k);

#define ACTIONS_ERROR_MAX 320

struct actions_deps {
	const struct config_actions *cfg;
	struct journal *journal;
	struct adapter *const *ads;
	size_t nads;
	struct lookup *lookup; /* NULL: nothing to purge after a sent action */
};

/* One request. Strings are copied by actions_start. */
struct action_request {
	const char *user; /* the authenticated account */
	unsigned roles;	  /* its ROLE_* bits */
	const char *addr; /* client address */
	enum action_kind kind;
	struct ident device; /* IDENT_MAC (normalised) or IDENT_GUID */
	const char *key;     /* admin API: the Idempotency-Key; NULL: derive the ISE API's key */
};

/*
 * The answer, with the admin API's status:
 *   has_action: act is the action object (200 sent, 403 refused, 409 pending/unknown or the
 *               device's other action, 502 failed/rejected; a repeat gets its first status)
 *   else        error says why (403 role, 422 key reused with another payload (act.id set),
 *               503 journal unavailable, 500)
 */
struct action_answer {
	int status;
	bool has_action;
	struct journal_action act;
	char error[ACTIONS_ERROR_MAX];
};

typedef void (*actions_done_cb)(void *arg, const struct action_answer *ans);

struct actions;

/* actions_create: starts the thread that enforces the MDM lookup deadline. NULL: no memory. */
struct actions *actions_create(const struct actions_deps *deps);

/*
 * actions_destroy: waits (up to 60 s) for the actions under way to finish, then frees. No
 * actions_start during or after it. NULL is fine.
 */
void actions_destroy(struct actions *x);

/*
 * The pipeline's bounds: the fresh ask of every MDM takes at most actions.lookup_timeout
 * (ACTIONS_LOOKUP_TIMEOUT_DEFAULT_MS when 0), and the MDM that manages the device is given
 * ACTIONS_SEND_MS more to take the action. actions_answer_bound_ms: their sum, the longest an
 * answer may take (a caller waiting for done gives up past it).
 */
#define ACTIONS_LOOKUP_TIMEOUT_DEFAULT_MS 10000
#define ACTIONS_SEND_MS 60000
int64_t actions_answer_bound_ms(const struct actions *x);

/*
 * actions_start: runs rq through the pipeline and calls done exactly once with the answer,
 * either before returning or later on an adapter's or the deadline thread.
 */
void actions_start(struct actions *x, const struct action_request *rq, actions_done_cb done,
		   void *arg);

/* actions_parse_device: {id} of the admin API: a MAC in any form (normalised), else a GUID. */
enum mdm_err actions_parse_device(const char *s, struct ident *out, char *why, size_t whysz);

/* actions_state_status: the admin API status that answers an action in state s. */
int actions_state_status(enum journal_state s);

/* actions_key_ok: an Idempotency-Key: 1..255 printable ASCII without spaces. */
bool actions_key_ok(const char *key);

#endif
