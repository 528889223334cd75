/*
 * block: devices an administrator marked as blocked (a stolen device after its wipe, say). The
 * NAC is answered compliance false, "blocked by administrator", for a device any of whose MACs
 * or whose GUID is in the set, whatever the MDMs say.
 *
 * The set lives in <dir>/blocks.json ({"blocks": [{"device", "by", "at", "note"}]}), rewritten
 * whole on every change: written to a temporary file, fsync'd, renamed over the old one and the
 * directory fsync'd, so a crash leaves the old set or the new one, never half of one. A file
 * that does not parse is an error at open (the caller refuses to start), never an empty set.
 *
 * Lookups are O(1) (a hash set) and take a read lock only; every function is thread-safe.
 */
#ifndef MDM_BLOCK_H
#define MDM_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../core/device.h"
#include "../../core/err.h"

#define BLOCK_FILE "blocks.json"
#define BLOCK_REASON "blocked by administrator"
#define BLOCK_USER_MAX 128
#define BLOCK_NOTE_MAX 511
#define BLOCK_MAX 1000000

struct block_entry {
	char device[GUID_MAX + 1]; /* MAC as 12 upper-case hex, or a GUID as given */
	char by[BLOCK_USER_MAX + 1];
	int64_t at_ms; /* wall clock */
	char note[BLOCK_NOTE_MAX + 1];
	bool has_note;
};

struct block;

/*
 * block_open: creates dir (0700) if missing and loads dir/blocks.json if present (a missing
 * file is an empty set). MDM_ERR_PARSE with "file: what is wrong" for a torn or invalid file,
 * MDM_ERR_IO when it cannot be read. On error *out is NULL.
 */
enum mdm_err block_open(const char *dir, struct block **out, char *why, size_t whysz);

/* block_close: frees the set; NULL is fine. */
void block_close(struct block *b);

/*
 * block_add: blocks device (already normalised) by user with an optional note (NULL: none;
 * longer than BLOCK_NOTE_MAX: MDM_ERR_TOOBIG), or updates who/when/note if it was blocked.
 * The file is rewritten before this returns MDM_OK; on MDM_ERR_IO the set is unchanged.
 * *out (may be NULL) gets the entry as stored.
 */
enum mdm_err block_add(struct block *b, const char *device, const char *user, const char *note,
		       struct block_entry *out, char *why, size_t whysz);

/* block_remove: unblocks device; MDM_ERR_NOTFOUND if it was not blocked; MDM_ERR_IO as above. */
enum mdm_err block_remove(struct block *b, const char *device, char *why, size_t whysz);

/* block_has: whether device (normalised, as stored) is blocked. NULL b: false. */
bool block_has(struct block *b, const char *device);

/* block_device: whether any of d's MACs or its GUID is blocked. NULL b: false. */
bool block_device(struct block *b, const struct device *d);

/*
 * block_apply: the block's part of the verdict. When d is blocked its compliance becomes false
 * with the reason BLOCK_REASON and no remediation, whatever the MDMs said; true then. An
 * administrator's block wins over every source, so it is applied to the merged device, after
 * the merge rule and before anything renders or lists it.
 */
bool block_apply(struct block *b, struct device *d);

/* block_count: how many devices are blocked (0 for NULL: callers skip work on an empty set). */
size_t block_count(struct block *b);

/* block_list: calls cb for each entry, oldest block first, under the read lock (cb must not call
 * block functions); a cb answer other than MDM_OK stops the walk and is returned. */
typedef enum mdm_err (*block_cb)(const struct block_entry *e, void *arg);
enum mdm_err block_list(struct block *b, block_cb cb, void *arg);

#endif
