/*
 * lookup_memo: what lookup remembers besides the cache (private to gateway/verdict/lookup*.c).
 *   - the decode memo: the last device records and pointers decoded, keyed by the value bytes
 *     themselves, so a login storm reading the same values decodes each once;
 *   - the fail memo: fills that failed lately, by pointer key, so a request that waited for
 *     another's fill takes the filler's failure as its answer.
 * Thread-safe: the decode memo locks by stripes, the fail memo under its own mutex.
 */
#ifndef MDM_LOOKUP_MEMO_H
#define MDM_LOOKUP_MEMO_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../cache/cache.h"
#include "../../core/device.h"
#include "../../core/err.h"

/*
 * Decoding a device record (JSON) costs more than everything else a cache hit does, and a login
 * storm asks for the same devices again and again: remember the last decodes, keyed by the value
 * bytes themselves (compared in full, so a hash collision can only cost a decode).
 */
#define MEMO_SLOTS 4096 /* a power of two */
#define MEMO_STRIPES 64

#define MEMO_POINTER_IDS 4 /* pointers naming more vendor ids are decoded every time */

/* The value bytes a memo slot answers for (compared in full). */
struct memo_key {
	uint64_t hash;
	size_t len;
	char *val;
};

struct memo_slot {
	struct memo_key key;
	struct device dev;
};

struct memo_pointer {
	struct memo_key key;
	bool found;
	size_t nids;
	char ids[MEMO_POINTER_IDS][GUID_MAX + 1];
};

struct memo {
	pthread_mutex_t mu[MEMO_STRIPES];
	struct memo_slot *slots;
	struct memo_pointer *pointers;
};

/* memo_init: an empty memo (MDM_ERR_NOMEM); memo_free: frees what it holds. */
enum mdm_err memo_init(struct memo *m);
void memo_free(struct memo *m);
/* memo_decode_device: the one device record of an entry value (entry.h), from the memo or
 * decoded (then remembered). MDM_ERR_PARSE when val is not an entry of exactly one record. */
enum mdm_err memo_decode_device(struct memo *m, const char *val, size_t len, struct device *out);
/* memo_decode_pointer: pointer_decode (cache/pointer.h), from the memo or decoded (then
 * remembered when it names at most MEMO_POINTER_IDS vendor ids). */
enum mdm_err memo_decode_pointer(struct memo *m, const char *val, size_t len, bool *found,
				 char ids[][GUID_MAX + 1], size_t max, size_t *nids);

/*
 * Fills that failed lately, by pointer key: a request waiting for another's fill takes the
 * filler's failure as its own answer (the vendor just failed; asking again at once would only
 * multiply the load on it). Failures are never written to the cache itself.
 */
#define FAILMEMO_SLOTS 256

struct failslot {
	char pkey[CACHE_KEY_MAX + 1];
	enum fail_kind fail;
	char why[256];
	int64_t at; /* monotonic ms; 0: empty */
};

struct failmemo {
	pthread_mutex_t mu;
	struct failslot slots[FAILMEMO_SLOTS];
	size_t next;
};

void failmemo_init(struct failmemo *f);
void failmemo_destroy(struct failmemo *f);
/* failmemo_put: remembers that the fill of pkey failed as oc says (now). */
void failmemo_put(struct failmemo *f, const char *pkey, const struct outcome *oc);
/* failmemo_get: the newest failure of pkey's fill at or after since (monotonic ms), into oc;
 * false when there is none. */
bool failmemo_get(struct failmemo *f, const char *pkey, int64_t since, struct outcome *oc);

#endif
