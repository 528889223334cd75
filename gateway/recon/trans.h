/*
 * trans: the last known state of every device, the confirmed transitions between two
 * reconciler cycles, and the change guard (issue 6, spec coa-and-actions.md).
 *
 * Input is an array of small trans_dev records the caller fills from each generation; output is
 * struct transition (core/transition.h) through the sink given at creation. A transition is one of:
 * compliant -> non-compliant, registered -> unregistered (also: absent from a complete cycle
 * while its adapter listed fully), jail-broken appears, and non-compliant -> compliant unless
 * switched off. Never on TRI_UNSET values, stale rows, or the first sight of a device. One
 * device gives at most one event per cycle (id "<key>@<gen>"): the most severe change, the
 * others named in its reason.
 *
 * The guard: when a cycle's transitions exceed guard_share of the devices with a previous state
 * (and there are at least guard_min such devices), its events are held, not emitted, until
 * trans_release; while held, every later cycle's events join the batch.
 *
 * Files in the state directory, each replaced atomically (temp, fsync, rename, dir fsync):
 *   devices.jsonl  header {"format":"mdmgw-trans","version":1,...}, then one line per device
 *   held.jsonl     the held events, one per line (absent when nothing is held)
 * Every function is thread-safe. The sink's emit is called with the module's lock held: it must
 * not call back into trans (hand the event to a queue).
 */
#ifndef MDM_TRANS_H
#define MDM_TRANS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../core/buf.h"
#include "../../core/device.h"
#include "../../core/err.h"
#include "../../core/transition.h"

#define TRANS_FILE "devices.jsonl"
#define TRANS_HELD_FILE "held.jsonl"
#define TRANS_FORMAT_VERSION 1

struct trans_config {
	bool coa_on_compliant; /* non-compliant -> compliant is a transition (default true) */
	bool unregistered_disconnect; /* registered -> unregistered: TRANSITION_DISCONNECT, not
					 reauth */
	double guard_share; /* 0..1: hold above this share (RECON_GUARD_SHARE_DEFAULT, recon.h) */
	unsigned guard_min; /* the guard needs at least this many known devices
			     * (RECON_GUARD_MIN_DEFAULT) */
};

/* One device of a generation, as the caller fills it (strings are copied by trans). */
struct trans_dev {
	const char *key;    /* "<MAC>", "guid:<GUID>" or "<adapter>:<vendor id>"; required */
	const char *mac;    /* first MAC, 12 upper hex; NULL or "" none */
	const char *guid;   /* NULL or "" none */
	const char *source; /* adapter name(s) the state came from */
	enum tri registered, compliant, jail_broken;
	bool stale; /* a kept row of an adapter whose listing failed this cycle */
};

struct trans;

/*
 * trans_create: an empty table (no previous state) saving into state_dir (must exist). sink
 * (copied; its emit required) gets each transition let go (cycle, block, release). NULL on out
 * of memory or bad arguments.
 */
struct trans *trans_create(const struct trans_config *cfg, const char *state_dir,
			   const struct transition_sink *sink);

/* trans_destroy: frees everything; NULL is fine. Held events stay in the state directory. */
void trans_destroy(struct trans *t);

/*
 * trans_load: reads devices.jsonl and held.jsonl if present. A torn or corrupt line is dropped
 * and counted (logged with its line number); a missing file is an empty table. Never fails for
 * the content of a file: MDM_ERR_IO only when a file exists but cannot be opened, MDM_ERR_NOMEM.
 * *dropped (may be NULL) gets how many lines were dropped.
 */
enum mdm_err trans_load(struct trans *t, size_t *dropped);

/*
 * trans_cycle: compares generation gen's devices with the last known state, emits (or holds)
 * the transitions, updates and saves the state. complete: every adapter listed fully this
 * cycle (absence counts only then). epoch goes into every event. *ntrans (may be NULL) gets
 * the cycle's transition count. MDM_ERR_IO when the state could not be saved (the in-memory
 * state is updated all the same and the events went out); MDM_ERR_NOMEM.
 */
enum mdm_err trans_cycle(struct trans *t, uint64_t gen, const struct trans_dev *devs, size_t n,
			 bool complete, uint64_t epoch, size_t *ntrans);

/*
 * trans_block: an admin block (blocked true) or unblock of the device known by key, MAC or
 * GUID: one event to "blocked"/"unblocked", id "<key>@block:<ms>", emitted at once (never
 * held). A device with no state is named by what was given. MDM_ERR_INVALID for "".
 */
enum mdm_err trans_block(struct trans *t, const char *key_or_mac_or_guid, bool blocked,
			 uint64_t epoch);

/*
 * trans_release: emits every held event (with the latest epoch), clears the batch and its
 * file. *n gets how many; MDM_ERR_NOTFOUND when nothing was held.
 */
enum mdm_err trans_release(struct trans *t, size_t *n);

/* trans_held: how many events are held now. */
size_t trans_held(struct trans *t);

/*
 * trans_status_json: appends {"devices", "held", "held_since" (ISO time or null),
 * "last_cycle": {"gen", "transitions", "share"}} to b.
 */
enum mdm_err trans_status_json(struct trans *t, struct buf *b);

/* trans_memory: bytes the table holds on the heap (records, index, strings), for the budget. */
size_t trans_memory(struct trans *t);

#endif
