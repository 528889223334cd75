/*
 * publish: the leader's snapshot generations, shared through the cache with the followers.
 *
 * A generation's serialized bytes are cut into chunks "<ns>:snap:<gen>:<i>" (i from 0), each
 * under memcached's 1 MB item size once base64-encoded and tagged by the cache; then the
 * manifest "<ns>:snap:<gen>:manifest" = {"gen","nchunks","len","sha256"} is written, and only
 * then the pointer "<ns>:snap:latest" = {"gen"}. A reader follows the pointer to the manifest
 * and the chunks and takes the bytes only when every chunk is there and length and sha256
 * match, so it never sees a partial generation: it keeps the one it has.
 */
#ifndef MDM_PUBLISH_H
#define MDM_PUBLISH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../cache/cache.h"
#include "../../core/buf.h"

/*
 * Raw bytes per chunk: base64 makes 983040 of them, which with the cache's envelope stays under
 * memcached's default item size (-I 1m) and the gateway's memcached max_value.
 */
#define PUBLISH_CHUNK ((size_t)737280)
#define PUBLISH_MAX_DEFAULT ((size_t)512 * 1024 * 1024)

/*
 * publish_put: writes generation gen (len bytes) under ns, chunks first, manifest next, the
 * latest pointer last; every entry kept ttl_ms. MDM_ERR_UNAVAILABLE (or another error) when a
 * write failed: the pointer is then left as it was. MDM_ERR_TOOBIG past max_bytes.
 */
enum mdm_err publish_put(struct cache *c, const char *ns, uint64_t gen, const void *bytes,
			 size_t len, int64_t ttl_ms, size_t max_bytes);

/*
 * publish_get_latest: the newest complete generation when it is not have_gen: its bytes into
 * out (reset first; its own limit must allow them) and its number into *gen, MDM_OK.
 * MDM_ERR_NOTFOUND: nothing published, or have_gen is the newest. Otherwise an error, with why
 * logged, and the caller keeps what it has: MDM_ERR_PARSE (a missing chunk or manifest, a
 * length or sha256 mismatch), MDM_ERR_TOOBIG (a manifest over max_bytes), MDM_ERR_UNAVAILABLE
 * (the cache could not be asked).
 */
enum mdm_err publish_get_latest(struct cache *c, const char *ns, uint64_t have_gen,
				size_t max_bytes, struct buf *out, uint64_t *gen);

/*
 * publish_drop: deletes generation gen's chunks and manifest (the leader drops an old one once a
 * newer is published; a follower still reading it fails that read and takes the newer next
 * time). MDM_ERR_NOTFOUND when its manifest is gone (its chunks lapse by their TTL then).
 */
enum mdm_err publish_drop(struct cache *c, const char *ns, uint64_t gen);

/* Called by the follower thread with each new complete generation (bytes valid for the call). */
typedef void (*publish_cb)(void *arg, uint64_t gen, const void *bytes, size_t len);

struct publish_follow_config {
	struct cache *cache; /* borrowed: must outlive the follower */
	const char *ns;
	int64_t interval_ms; /* how often the pointer is read; > 0 */
	size_t max_bytes;    /* manifests claiming more are refused */
	publish_cb cb;
	void *arg;
	/* NULL, or true to skip a poll (e.g. while this instance leads: it has its own). */
	bool (*skip)(void *arg);
};

struct publish_follow;

/*
 * publish_follow_start: a thread that polls every interval_ms (unless skip says not now) and
 * calls cb with each newer complete generation. NULL on bad config or no memory.
 */
struct publish_follow *publish_follow_start(const struct publish_follow_config *cfg);
/* publish_follow_stop: stops and joins the thread; NULL does nothing. */
void publish_follow_stop(struct publish_follow *f);
/* publish_follow_gen: the generation last handed to cb (0: none yet). */
uint64_t publish_follow_gen(struct publish_follow *f);

#endif
