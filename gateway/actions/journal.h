/*
 * journal: the append-only record of destructive actions (wipes, PIN lock), one JSON object a
 * line in <dir>/actions.jsonl, mode 0600, rotated by size to actions.jsonl.1 ... .keep.
 *
 * The contract with the caller that sends an action to an MDM:
 *   1. journal_intent() must return MDM_OK first: the intent is then on disk (written and
 *      fsync'd). Any other answer means the action must NOT be sent.
 *   2. after the vendor answered (or failed), journal_outcome() appends the result.
 * An intent found without an outcome when the journal is opened becomes `unknown`: it is logged,
 * keeps holding its device and is never re-sent; an operator settles it with journal_resolve().
 *
 * Records (field "t"): "intent", "outcome", "refused" (a policy refusal, final by itself) and
 * "resolve". Lines that do not parse are skipped and counted; a torn last line of the current
 * file (a crash mid-write) is expected, and the next append starts on a new line.
 * Rotation copies open actions and recent keys to the top of the new file, so they outlive the
 * files they were first written to; a rotation that fails is logged and tried again later while
 * appends go on into the current file.
 *
 * All functions are thread-safe (one mutex per journal; every append happens under it).
 */
#ifndef MDM_JOURNAL_H
#define MDM_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "../../core/device.h"
#include "../../core/err.h"

#define JOURNAL_FILE "actions.jsonl"
#define JOURNAL_ID_LEN 32	    /* 16 random bytes in hex */
#define JOURNAL_USER_MAX 128	    /* account name */
#define JOURNAL_ADDR_MAX 64	    /* source address as text (an IPv6 one fits) */
#define JOURNAL_DEVICE_MAX GUID_MAX /* MAC (12 hex) or GUID as given */
#define JOURNAL_MDM_MAX 63	    /* adapter name */
#define JOURNAL_VENDOR_ID_MAX GUID_MAX
#define JOURNAL_KEY_MAX 255  /* idempotency key */
#define JOURNAL_HASH_LEN 64  /* sha256 in hex */
#define JOURNAL_TEXT_MAX 511 /* outcome detail, refusal reason, resolve note: longer is cut */

#define JOURNAL_DEFAULT_MAX_BYTES (16 * 1024 * 1024)
#define JOURNAL_DEFAULT_KEEP 5
#define JOURNAL_DEFAULT_KEY_WINDOW_MS (24LL * 3600 * 1000)
#define JOURNAL_KEEP_MAX 99

enum journal_state {
	JOURNAL_PENDING = 0,   /* intent written by this process, no outcome yet */
	JOURNAL_UNKNOWN,       /* intent without outcome found at open: may or may not be sent */
	JOURNAL_SENT,	       /* the MDM accepted it */
	JOURNAL_FAILED,	       /* the call failed (transport, vendor error) */
	JOURNAL_REJECTED,      /* the MDM answered action_status=false */
	JOURNAL_REFUSED,       /* gateway policy refused it; nothing was sent */
	JOURNAL_RESOLVED_SENT, /* was unknown; an operator verified it was sent */
	JOURNAL_RESOLVED_NOT_SENT, /* was unknown; an operator verified it was not sent */
	JOURNAL_STATE_COUNT
};

/* Zero values mean the defaults above. keep is 1..JOURNAL_KEEP_MAX. */
struct journal_cfg {
	int64_t max_bytes;     /* rotate when the current file reaches this size */
	unsigned keep;	       /* rotated files kept; older ones are deleted */
	int64_t key_window_ms; /* keys of finished actions younger than this survive rotation */
};

/*
 * What the caller asks for. Every string must be valid UTF-8 within its bound (else
 * MDM_ERR_INVALID / MDM_ERR_TOOBIG): identities are never cut. device is required, and for an
 * intent mdm and key too (a refusal may have no MDM: none or several manage the device);
 * key_hash is "" or 64 lowercase hex digits.
 */
struct journal_intent {
	const char *user;
	const char *addr;
	enum action_kind action;
	const char *device;
	const char *mdm;
	const char *vendor_id;
	const char *key;
	const char *key_hash;
};

/* One action as the journal knows it. */
struct journal_action {
	char id[JOURNAL_ID_LEN + 1];
	enum journal_state state;
	int64_t at_ms;	 /* intent or refusal, wall clock */
	int64_t done_ms; /* outcome; 0 if none */
	char user[JOURNAL_USER_MAX + 1];
	char addr[JOURNAL_ADDR_MAX + 1];
	enum action_kind action;
	char device[JOURNAL_DEVICE_MAX + 1];
	char mdm[JOURNAL_MDM_MAX + 1];
	char vendor_id[JOURNAL_VENDOR_ID_MAX + 1];
	char key[JOURNAL_KEY_MAX + 1];
	char key_hash[JOURNAL_HASH_LEN + 1];
	char detail[JOURNAL_TEXT_MAX + 1]; /* outcome detail or refusal reason */
	int64_t resolved_ms;		   /* 0 unless resolved */
	char resolved_by[JOURNAL_USER_MAX + 1];
	char note[JOURNAL_TEXT_MAX + 1];
};

/* What journal_open found, for logs and tests. */
struct journal_stats {
	unsigned long records;	 /* actions known */
	unsigned long bad_lines; /* lines skipped: not JSON, not a record, out of bounds */
	unsigned long torn;	 /* 1 if the current file ended in a partial line */
	unsigned long unknown;	 /* actions that became unknown at open */
};

struct journal;

/* journal_state_name: "pending", "unknown", "sent", ... ; "?" for a value out of range. */
const char *journal_state_name(enum journal_state s);

/*
 * journal_open: creates dir (0700) if missing, opens or creates dir/actions.jsonl (0600; an
 * existing file with wider permissions is chmod'ed to 0600 and logged) and fsyncs dir when it
 * created the file. Loads the retained rotated files, oldest first, then the current one, to
 * rebuild ids, keys, states and device holds. Pending intents become unknown and are logged.
 * cfg may be NULL (defaults). On error *out is NULL.
 */
enum mdm_err journal_open(const char *dir, const struct journal_cfg *cfg, struct journal **out,
			  char *why, size_t whysz);

/* journal_close: closes the file and frees everything; NULL is fine. */
void journal_close(struct journal *j);

/* journal_get_stats: what the journal found at open and how many actions it knows now. */
void journal_get_stats(struct journal *j, struct journal_stats *out);

/*
 * journal_intent: records that the action in `in` is about to be sent, with a fresh random id
 * (id_out), and fsyncs it before returning MDM_OK. The action then holds in->device.
 *   MDM_ERR_FORBIDDEN: in->key is already known (an intent or a refusal): nothing is written,
 *       id_out is the first action's id and *first (if not NULL) a copy of it, so the caller
 *       can answer its result, 409 while it is pending, or 422 if first->key_hash differs.
 *   MDM_ERR_BUSY: another action holds the device (pending or unknown); id_out is its id.
 *   MDM_ERR_IO: the write or the fsync failed; the action must NOT be sent. The line may
 *       still have reached the disk: after a restart it then shows as `unknown`, and the
 *       operator resolves it as not_sent.
 * Anything but MDM_OK: do not send.
 * Keys are remembered for as long as this process runs and, across restarts, for at least
 * cfg->key_window_ms (older ones go when the last file holding them is dropped).
 */
enum mdm_err journal_intent(struct journal *j, const struct journal_intent *in,
			    char id_out[JOURNAL_ID_LEN + 1], struct journal_action *first,
			    char *why, size_t whysz);

/*
 * journal_outcome: appends the result of a pending action: state is JOURNAL_SENT,
 * JOURNAL_FAILED or JOURNAL_REJECTED; detail (may be NULL) is cut to JOURNAL_TEXT_MAX bytes.
 * Frees the device. MDM_ERR_NOTFOUND for an unknown id, MDM_ERR_INVALID when the action is not
 * pending (an `unknown` one is settled by journal_resolve only).
 */
enum mdm_err journal_outcome(struct journal *j, const char *id, enum journal_state state,
			     const char *detail, char *why, size_t whysz);

/*
 * journal_refused: records a policy refusal (final; holds no device) with a fresh id. The key
 * may be "" (no key); a known key answers MDM_ERR_FORBIDDEN as journal_intent does.
 */
enum mdm_err journal_refused(struct journal *j, const struct journal_intent *in, const char *reason,
			     char id_out[JOURNAL_ID_LEN + 1], struct journal_action *first,
			     char *why, size_t whysz);

/*
 * journal_resolve: an operator (user) verified what became of an `unknown` action: verified is
 * JOURNAL_RESOLVED_SENT or JOURNAL_RESOLVED_NOT_SENT; note may be NULL. Frees the device.
 * Only `unknown` actions: a pending one is still in this process's hands (MDM_ERR_BUSY), any
 * other is already final (MDM_ERR_INVALID); MDM_ERR_NOTFOUND for an id not known.
 */
enum mdm_err journal_resolve(struct journal *j, const char *id, enum journal_state verified,
			     const char *note, const char *user, char *why, size_t whysz);

/* journal_get: a copy of action id; MDM_ERR_NOTFOUND if not known. */
enum mdm_err journal_get(struct journal *j, const char *id, struct journal_action *out);

/* journal_find_key: a copy of the action recorded under an idempotency key; MDM_ERR_NOTFOUND. */
enum mdm_err journal_find_key(struct journal *j, const char *key, struct journal_action *out);

/* journal_device_open: a copy of the action holding device (pending/unknown); MDM_ERR_NOTFOUND. */
enum mdm_err journal_device_open(struct journal *j, const char *device, struct journal_action *out);

/*
 * journal_list: calls cb for each action in the order they were recorded, keeping those for
 * device (NULL: all) in state (-1: any). cb runs under the journal's lock, so it must not call
 * journal functions; a cb answer other than MDM_OK stops the walk and is returned.
 */
typedef enum mdm_err (*journal_cb)(const struct journal_action *a, void *arg);
enum mdm_err journal_list(struct journal *j, const char *device, int state, journal_cb cb,
			  void *arg);

#endif
