/*
 * lookup_memo: the decode memo (device records and pointers already decoded) and the fail memo
 * (fills that failed lately) of lookup; see lookup_memo.h.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../../cache/entry.h"
#include "../../cache/pointer.h"
#include "../../core/buf.h"
#include "../../core/clock.h"
#include "lookup_memo.h"

/* --- the decode memo ----------------------------------------------------------------------- */

static uint64_t bytes_hash(const char *v, size_t len)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)v[i]) * 1099511628211ull;
	return h;
}

/* Whether slot key k answers for exactly these bytes (under its stripe's lock). */
static bool key_is(const struct memo_key *k, uint64_t h, const char *val, size_t len)
{
	return k->val && k->hash == h && k->len == len && memcmp(k->val, val, len) == 0;
}

/* k answers for copy (len bytes, taken over) from now on (under its stripe's lock). */
static void key_take(struct memo_key *k, uint64_t h, char *copy, size_t len)
{
	free(k->val);
	k->val = copy;
	k->hash = h;
	k->len = len;
}

static char *copy_of(const char *val, size_t len)
{
	char *copy = malloc(len ? len : 1);

	if (copy)
		memcpy(copy, val, len);
	return copy;
}

enum mdm_err memo_init(struct memo *m)
{
	m->slots = calloc(MEMO_SLOTS, sizeof(*m->slots));
	m->pointers = calloc(MEMO_SLOTS, sizeof(*m->pointers));
	if (!m->slots || !m->pointers) {
		free(m->slots);
		free(m->pointers);
		return MDM_ERR_NOMEM;
	}
	for (int i = 0; i < MEMO_STRIPES; i++)
		pthread_mutex_init(&m->mu[i], NULL);
	return MDM_OK;
}

void memo_free(struct memo *m)
{
	for (size_t i = 0; m->slots && i < MEMO_SLOTS; i++) {
		free(m->slots[i].key.val);
		free(m->pointers[i].key.val);
	}
	free(m->slots);
	free(m->pointers);
	for (int i = 0; i < MEMO_STRIPES; i++)
		pthread_mutex_destroy(&m->mu[i]);
}

/* A device record decoded from val, from the memo or from JSON (then remembered). */
enum mdm_err memo_decode_device(struct memo *m, const char *val, size_t len, struct device *out)
{
	uint64_t h = bytes_hash(val, len);
	struct memo_slot *s = &m->slots[h & (MEMO_SLOTS - 1)];
	pthread_mutex_t *mu = &m->mu[h % MEMO_STRIPES];
	enum entry_verdict v;
	struct device *d = NULL;
	size_t n = 0;
	char *copy;

	pthread_mutex_lock(mu);
	if (key_is(&s->key, h, val, len)) {
		*out = s->dev;
		pthread_mutex_unlock(mu);
		return MDM_OK;
	}
	pthread_mutex_unlock(mu);
	if (entry_decode(val, len, &v, &d, &n) != MDM_OK || n != 1) {
		free(d);
		return MDM_ERR_PARSE;
	}
	*out = *d;
	free(d);
	copy = copy_of(val, len);
	if (!copy)
		return MDM_OK; /* decoded all the same; only the memo misses out */
	pthread_mutex_lock(mu);
	key_take(&s->key, h, copy, len);
	s->dev = *out;
	pthread_mutex_unlock(mu);
	return MDM_OK;
}

/* A pointer decoded from val, from the memo or from JSON (then remembered if small). */
enum mdm_err memo_decode_pointer(struct memo *m, const char *val, size_t len, bool *found,
				 char ids[][GUID_MAX + 1], size_t max, size_t *nids)
{
	uint64_t h = bytes_hash(val, len) ^ 0x9e3779b97f4a7c15ull;
	struct memo_pointer *s = &m->pointers[h & (MEMO_SLOTS - 1)];
	pthread_mutex_t *mu = &m->mu[h % MEMO_STRIPES];
	enum mdm_err e;
	char *copy;

	pthread_mutex_lock(mu);
	if (key_is(&s->key, h, val, len) && s->nids <= max) {
		*found = s->found;
		*nids = s->nids;
		memcpy(ids, s->ids, s->nids * sizeof(ids[0]));
		pthread_mutex_unlock(mu);
		return MDM_OK;
	}
	pthread_mutex_unlock(mu);
	e = pointer_decode(val, len, found, ids, max, nids);
	if (e || *nids > MEMO_POINTER_IDS || !(copy = copy_of(val, len)))
		return e;
	pthread_mutex_lock(mu);
	key_take(&s->key, h, copy, len);
	s->found = *found;
	s->nids = *nids;
	memcpy(s->ids, ids, *nids * sizeof(ids[0]));
	pthread_mutex_unlock(mu);
	return MDM_OK;
}

/* --- the fail memo ------------------------------------------------------------------------- */

void failmemo_init(struct failmemo *f)
{
	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->mu, NULL);
}

void failmemo_destroy(struct failmemo *f)
{
	pthread_mutex_destroy(&f->mu);
}

void failmemo_put(struct failmemo *f, const char *pkey, const struct outcome *oc)
{
	struct failslot *s;

	pthread_mutex_lock(&f->mu);
	s = &f->slots[f->next++ % FAILMEMO_SLOTS];
	str_copy(s->pkey, sizeof(s->pkey), pkey);
	s->fail = oc->fail;
	str_copy(s->why, sizeof(s->why), oc->why);
	s->at = clock_mono_ms();
	pthread_mutex_unlock(&f->mu);
}

bool failmemo_get(struct failmemo *f, const char *pkey, int64_t since, struct outcome *oc)
{
	bool found = false;

	pthread_mutex_lock(&f->mu);
	for (size_t i = 0; i < FAILMEMO_SLOTS && !found; i++) {
		const struct failslot *s =
		    &f->slots[(f->next + FAILMEMO_SLOTS - 1 - i) % FAILMEMO_SLOTS];

		if (s->at == 0 || s->at < since || strcmp(s->pkey, pkey) != 0)
			continue;
		outcome_clear(oc);
		outcome_set(oc, OUTCOME_FAILED, s->fail, s->why);
		found = true;
	}
	pthread_mutex_unlock(&f->mu);
	return found;
}
