/*
 * mem: the in-process cache. Keys hash (FNV-1a, 64 bit) to one of a power-of-two number of
 * shards; each shard has its own mutex, a chained hash table of entries with an LRU list
 * through them, and a second table of refresh locks. The high half of the hash picks the shard
 * and the low half the bucket, so the two choices do not correlate. Counters live in the shards
 * too, under the lock already held, so that counting costs no shared cache line.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../core/clock.h"
#include "cache.h"

#define SHARDS_MAX 1024
#define BUCKETS_MIN 16
#define CACHE_LINE 64

/* What entries and locks share: the chain link and the key it is found by. */
struct hnode {
	struct hnode *next;
	uint64_t hash;
	size_t klen;
	const char *key; /* points into the node's own allocation */
};

struct htab {
	struct hnode **b;
	size_t mask; /* buckets - 1; the bucket count is a power of two */
	size_t count;
};

struct mentry {
	struct hnode h; /* first, so a struct hnode * found in the table is the entry */
	struct mentry *newer, *older;
	int64_t fetched_at, fresh_until, stale_until;
	int64_t held_until; /* put time + max_hold_ms: dropped then, whatever its times say */
	uint64_t cas;	    /* version for gets/cas: the shard's counter when stored */
	size_t len;
	char *val;
	char data[]; /* key, NUL, value, NUL: one allocation per entry */
};

struct mlock {
	struct hnode h; /* first, as in struct mentry */
	int64_t until;	/* wall ms at which the lock lapses */
	char data[];
};

/* Aligned to a cache line so that threads on neighbouring shards do not share one. */
struct shard {
	_Alignas(CACHE_LINE) pthread_mutex_t mu;
	struct htab entries;
	struct htab locks;
	struct mentry *newest, *oldest;
	unsigned long hits, stale_hits, misses, evictions, lock_busy;
	uint64_t cas_seq; /* last version handed out; a key's versions all come from its shard */
};

struct mem {
	struct cache base;
	struct shard *shards;
	unsigned nshards;
	size_t cap;	 /* entries per shard */
	size_t lock_cap; /* locks per shard */
	size_t max_value;
	int64_t max_hold_ms; /* 0: no cap */
	int64_t (*now)(void);
};

/* --- keys and time ----------------------------------------------------------------------- */

static uint64_t key_hash(const char *key, size_t *klen)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t i;

	for (i = 0; key[i]; i++) {
		h ^= (unsigned char)key[i];
		h *= 0x100000001b3ULL;
	}
	*klen = i;
	return h;
}

/* a + b for b >= 0, held at INT64_MAX so a very long TTL cannot wrap into the past. */
static int64_t add_sat(int64_t a, int64_t b)
{
	return a > INT64_MAX - b ? INT64_MAX : a + b;
}

static struct shard *shard_of(struct mem *m, uint64_t hash)
{
	return &m->shards[(hash >> 32) & (m->nshards - 1)];
}

/* --- hash table ---------------------------------------------------------------------------- */

static enum mdm_err htab_init(struct htab *t)
{
	t->b = calloc(BUCKETS_MIN, sizeof(*t->b));
	if (!t->b)
		return MDM_ERR_NOMEM;
	t->mask = BUCKETS_MIN - 1;
	t->count = 0;
	return MDM_OK;
}

/* The link that points at key's node, or the NULL link ending its chain when absent. */
static struct hnode **htab_slot(struct htab *t, uint64_t hash, const char *key, size_t klen)
{
	struct hnode **p = &t->b[hash & t->mask];

	for (; *p; p = &(*p)->next)
		if ((*p)->hash == hash && (*p)->klen == klen && memcmp((*p)->key, key, klen) == 0)
			break;
	return p;
}

static struct hnode *htab_find(struct htab *t, uint64_t hash, const char *key, size_t klen)
{
	return *htab_slot(t, hash, key, klen);
}

/*
 * Doubles the bucket array. Failing to grow is not an error: chains only get longer, and the
 * number of nodes is bounded by the shard's cap anyway.
 */
static void htab_grow(struct htab *t)
{
	size_t n = (t->mask + 1) * 2;
	struct hnode **nb = calloc(n, sizeof(*nb));

	if (!nb)
		return;
	for (size_t i = 0; i <= t->mask; i++) {
		struct hnode *x = t->b[i], *next;

		for (; x; x = next) {
			next = x->next;
			x->next = nb[x->hash & (n - 1)];
			nb[x->hash & (n - 1)] = x;
		}
	}
	free(t->b);
	t->b = nb;
	t->mask = n - 1;
}

/* Adds x, which must not be present. */
static void htab_insert(struct htab *t, struct hnode *x)
{
	struct hnode **head;

	if (t->count > t->mask)
		htab_grow(t);
	head = &t->b[x->hash & t->mask];
	x->next = *head;
	*head = x;
	t->count++;
}

/* Unlinks and returns key's node; NULL when absent. */
static struct hnode *htab_take(struct htab *t, uint64_t hash, const char *key, size_t klen)
{
	struct hnode **p = htab_slot(t, hash, key, klen);
	struct hnode *x = *p;

	if (x) {
		*p = x->next;
		t->count--;
	}
	return x;
}

/* Unlinks x, which must be present. */
static void htab_remove(struct htab *t, struct hnode *x)
{
	struct hnode **p = htab_slot(t, x->hash, x->key, x->klen);

	*p = x->next;
	t->count--;
}

/* Frees every node, then the buckets. Every node in these tables is one malloc. */
static void htab_free(struct htab *t)
{
	if (!t->b)
		return;
	for (size_t i = 0; i <= t->mask; i++) {
		struct hnode *x = t->b[i], *next;

		for (; x; x = next) {
			next = x->next;
			free(x);
		}
	}
	free(t->b);
	t->b = NULL;
}

/* --- entries and the LRU list ------------------------------------------------------------ */

static void lru_unlink(struct shard *s, struct mentry *e)
{
	if (e->newer)
		e->newer->older = e->older;
	else
		s->newest = e->older;
	if (e->older)
		e->older->newer = e->newer;
	else
		s->oldest = e->newer;
	e->newer = e->older = NULL;
}

static void lru_push(struct shard *s, struct mentry *e)
{
	e->newer = NULL;
	e->older = s->newest;
	if (s->newest)
		s->newest->newer = e;
	s->newest = e;
	if (!s->oldest)
		s->oldest = e;
}

/* Takes e out of the shard; the caller frees it (after unlocking, to keep the lock short). */
static void entry_unlink(struct shard *s, struct mentry *e)
{
	htab_remove(&s->entries, &e->h);
	lru_unlink(s, e);
}

/*
 * shard_insert: with s->mu held, e (whose key s does not hold now) becomes its key's entry, with
 * a new cas and newest in the LRU. Over the shard's capacity the oldest entry is taken out and
 * returned, for the caller to free after unlocking; else NULL.
 */
static struct mentry *shard_insert(struct mem *m, struct shard *s, struct mentry *e)
{
	struct mentry *evicted;

	e->cas = ++s->cas_seq;
	htab_insert(&s->entries, &e->h);
	lru_push(s, e);
	if (s->entries.count <= m->cap)
		return NULL;
	evicted = s->oldest;
	entry_unlink(s, evicted);
	s->evictions++;
	return evicted;
}

static struct mentry *entry_new(uint64_t hash, const char *key, size_t klen, const void *val,
				size_t len)
{
	struct mentry *e = malloc(sizeof(*e) + klen + 1 + len + 1);

	if (!e)
		return NULL;
	memset(e, 0, sizeof(*e));
	memcpy(e->data, key, klen + 1);
	e->val = e->data + klen + 1;
	if (len)
		memcpy(e->val, val, len);
	e->val[len] = '\0';
	e->len = len;
	e->h.hash = hash;
	e->h.klen = klen;
	e->h.key = e->data;
	return e;
}

/* Fills out from e with a private copy of the value. */
static enum mdm_err entry_copy_out(const struct mentry *e, enum cache_state st,
				   struct cache_entry *out)
{
	out->val = malloc(e->len + 1);
	if (!out->val)
		return MDM_ERR_NOMEM;
	memcpy(out->val, e->val, e->len + 1);
	out->len = e->len;
	out->state = st;
	out->fetched_at = e->fetched_at;
	out->fresh_until = e->fresh_until;
	out->stale_until = e->stale_until;
	return MDM_OK;
}

/* --- operations ---------------------------------------------------------------------------- */

/* One key of a get_many: out is already a miss. */
static enum mdm_err mem_get_one(struct mem *m, const char *key, int64_t now,
				struct cache_entry *out)
{
	struct mentry *e, *dead = NULL;
	struct shard *s;
	enum mdm_err err = MDM_OK;
	size_t klen;
	uint64_t hash;

	if (!cache_key_valid(key))
		return MDM_OK;
	hash = key_hash(key, &klen);
	s = shard_of(m, hash);
	pthread_mutex_lock(&s->mu);
	e = (struct mentry *)htab_find(&s->entries, hash, key, klen);
	if (e && (now >= e->stale_until || now >= e->held_until)) {
		/* Gone for good: removed now rather than left to the LRU to find. */
		entry_unlink(s, e);
		dead = e;
		e = NULL;
	}
	if (e) {
		lru_unlink(s, e);
		lru_push(s, e);
		err = entry_copy_out(e, now < e->fresh_until ? CACHE_FRESH : CACHE_STALE, out);
	}
	if (err == MDM_OK) {
		s->hits += out->state == CACHE_FRESH;
		s->stale_hits += out->state == CACHE_STALE;
		s->misses += out->state == CACHE_MISS;
	}
	pthread_mutex_unlock(&s->mu);
	free(dead);
	return err;
}

static enum mdm_err mem_get_many(struct cache *c, const char *const *keys, size_t n,
				 struct cache_entry *out)
{
	struct mem *m = c->priv;
	enum mdm_err err = MDM_OK;
	int64_t now;
	size_t i;

	if (n && (!keys || !out))
		return MDM_ERR_INVALID;
	for (i = 0; i < n; i++)
		memset(&out[i], 0, sizeof(out[i]));
	now = m->now();
	for (i = 0; i < n && !err; i++)
		err = mem_get_one(m, keys[i], now, &out[i]);
	if (!err)
		return MDM_OK;
	/* All or nothing, so the caller has no partial copies to free on error. */
	for (i = 0; i < n; i++)
		cache_entry_clear(&out[i]);
	return err;
}

static enum mdm_err mem_put(struct cache *c, const char *key, const void *val, size_t len,
			    const struct cache_times *t)
{
	struct mem *m = c->priv;
	struct mentry *e, *old, *evicted = NULL;
	struct shard *s;
	size_t klen;
	uint64_t hash;
	int64_t now;
	enum mdm_err err;
	bool dead;

	now = m->now();
	err = cache_put_check(key, val, len, t, m->max_value, now, &dead);
	if (err || dead)
		return err;
	hash = key_hash(key, &klen);
	/* Allocate and copy before taking the shard lock: other threads wait less. */
	e = entry_new(hash, key, klen, val, len);
	if (!e)
		return MDM_ERR_NOMEM;
	e->fetched_at = t->fetched_at;
	e->fresh_until = t->fresh_until;
	e->stale_until = t->stale_until;
	e->held_until = m->max_hold_ms ? add_sat(now, m->max_hold_ms) : INT64_MAX;
	s = shard_of(m, hash);
	pthread_mutex_lock(&s->mu);
	old = (struct mentry *)htab_take(&s->entries, hash, key, klen);
	if (old)
		lru_unlink(s, old);
	evicted = shard_insert(m, s, e);
	pthread_mutex_unlock(&s->mu);
	free(old);
	free(evicted);
	return MDM_OK;
}

static enum mdm_err mem_del(struct cache *c, const char *key)
{
	struct mem *m = c->priv;
	struct mentry *e;
	struct shard *s;
	size_t klen;
	uint64_t hash;

	if (!cache_key_valid(key))
		return MDM_ERR_INVALID;
	hash = key_hash(key, &klen);
	s = shard_of(m, hash);
	pthread_mutex_lock(&s->mu);
	e = (struct mentry *)htab_take(&s->entries, hash, key, klen);
	if (e)
		lru_unlink(s, e);
	pthread_mutex_unlock(&s->mu);
	free(e);
	return MDM_OK;
}

/* Drops the locks of s that have lapsed. Only run when the lock table is full. */
static void locks_purge(struct shard *s, int64_t now)
{
	struct htab *t = &s->locks;

	for (size_t i = 0; i <= t->mask; i++) {
		struct hnode **p = &t->b[i];

		while (*p) {
			struct hnode *x = *p;

			if (((struct mlock *)x)->until > now) {
				p = &x->next;
				continue;
			}
			*p = x->next;
			t->count--;
			free(x);
		}
	}
}

static struct mlock *lock_new(uint64_t hash, const char *key, size_t klen, int64_t until)
{
	struct mlock *l = malloc(sizeof(*l) + klen + 1);

	if (!l)
		return NULL;
	memset(l, 0, sizeof(*l));
	memcpy(l->data, key, klen + 1);
	l->h.hash = hash;
	l->h.klen = klen;
	l->h.key = l->data;
	l->until = until;
	return l;
}

/* Called with s->mu held. */
static enum mdm_err lock_take(struct mem *m, struct shard *s, uint64_t hash, const char *key,
			      size_t klen, int64_t now, int64_t until)
{
	struct mlock *l = (struct mlock *)htab_find(&s->locks, hash, key, klen);

	if (l && l->until > now)
		return MDM_ERR_BUSY;
	if (l) {
		/* A lapsed lock: its holder gave up or died; the claim passes to this caller. */
		l->until = until;
		return MDM_OK;
	}
	if (s->locks.count >= m->lock_cap)
		locks_purge(s, now);
	if (s->locks.count >= m->lock_cap)
		return MDM_ERR_TOOBIG;
	/*
	 * Allocated under the mutex, unlike entries: most racing callers get BUSY above and
	 * would only have allocated to free again.
	 */
	l = lock_new(hash, key, klen, until);
	if (!l)
		return MDM_ERR_NOMEM;
	htab_insert(&s->locks, &l->h);
	return MDM_OK;
}

static enum mdm_err mem_lock(struct cache *c, const char *key, int64_t ttl_ms)
{
	struct mem *m = c->priv;
	struct shard *s;
	enum mdm_err err;
	int64_t now;
	size_t klen;
	uint64_t hash;

	if (!cache_key_valid(key) || ttl_ms <= 0)
		return MDM_ERR_INVALID;
	hash = key_hash(key, &klen);
	s = shard_of(m, hash);
	now = m->now();
	pthread_mutex_lock(&s->mu);
	err = lock_take(m, s, hash, key, klen, now, add_sat(now, ttl_ms));
	s->lock_busy += err == MDM_ERR_BUSY;
	pthread_mutex_unlock(&s->mu);
	return err;
}

static void mem_unlock(struct cache *c, const char *key)
{
	struct mem *m = c->priv;
	struct hnode *l;
	struct shard *s;
	size_t klen;
	uint64_t hash;

	if (!cache_key_valid(key))
		return;
	hash = key_hash(key, &klen);
	s = shard_of(m, hash);
	pthread_mutex_lock(&s->mu);
	l = htab_take(&s->locks, hash, key, klen);
	pthread_mutex_unlock(&s->mu);
	free(l);
}

static void mem_stats(struct cache *c, struct cache_stats *out)
{
	struct mem *m = c->priv;

	for (unsigned i = 0; i < m->nshards; i++) {
		struct shard *s = &m->shards[i];

		pthread_mutex_lock(&s->mu);
		out->l1_hits += s->hits;
		out->l1_stale_hits += s->stale_hits;
		out->l1_misses += s->misses;
		out->l1_evictions += s->evictions;
		out->lock_busy += s->lock_busy;
		pthread_mutex_unlock(&s->mu);
	}
}

/* Frees the first n shards (those fully set up) and m. */
static void mem_free(struct mem *m, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		pthread_mutex_destroy(&m->shards[i].mu);
		htab_free(&m->shards[i].entries);
		htab_free(&m->shards[i].locks);
	}
	free(m->shards);
	free(m);
}

static void mem_destroy(struct cache *c)
{
	struct mem *m = c->priv;

	mem_free(m, m->nshards);
}

/* --- add, gets, cas ------------------------------------------------------------------------- */

enum store_mode { STORE_ADD, STORE_CAS };

/* Whether e may still be read at now. */
static bool entry_alive(const struct mentry *e, int64_t now)
{
	return now < e->stale_until && now < e->held_until;
}

/*
 * add and cas in one: decides under the shard lock whether e replaces what key holds, then
 * stores it as put does (LRU, eviction). e is taken over.
 */
static enum mdm_err mem_store(struct mem *m, struct mentry *e, enum store_mode mode, uint64_t cas,
			      int64_t now)
{
	struct shard *s = shard_of(m, e->h.hash);
	struct mentry *old, *evicted = NULL;
	enum mdm_err err = MDM_OK;

	pthread_mutex_lock(&s->mu);
	old = (struct mentry *)htab_find(&s->entries, e->h.hash, e->h.key, e->h.klen);
	if (old && !entry_alive(old, now)) {
		entry_unlink(s, old);
		free(old); /* only a few bytes: not worth a second unlock path */
		old = NULL;
	}
	if (mode == STORE_ADD && old)
		err = MDM_ERR_EXISTS;
	else if (mode == STORE_CAS && cas != CACHE_CAS_ANY && !old)
		err = MDM_ERR_NOTFOUND;
	else if (mode == STORE_CAS && cas != CACHE_CAS_ANY && old->cas != cas)
		err = MDM_ERR_EXISTS;
	if (!err) {
		if (old)
			entry_unlink(s, old);
		evicted = shard_insert(m, s, e);
	}
	pthread_mutex_unlock(&s->mu);
	if (err)
		free(e);
	else
		free(old);
	free(evicted);
	return err;
}

static enum mdm_err mem_store_new(struct cache *c, const char *key, const void *val, size_t len,
				  int64_t ttl_ms, enum store_mode mode, uint64_t cas)
{
	struct mem *m = c->priv;
	struct mentry *e;
	size_t klen;
	uint64_t hash;
	int64_t now;

	if (!cache_key_valid(key) || (len && !val) || ttl_ms < 0)
		return MDM_ERR_INVALID;
	if (len > m->max_value)
		return MDM_ERR_TOOBIG;
	now = m->now();
	hash = key_hash(key, &klen);
	e = entry_new(hash, key, klen, val, len);
	if (!e)
		return MDM_ERR_NOMEM;
	e->fetched_at = now;
	e->fresh_until = e->stale_until = ttl_ms ? add_sat(now, ttl_ms) : INT64_MAX;
	e->held_until = m->max_hold_ms ? add_sat(now, m->max_hold_ms) : INT64_MAX;
	return mem_store(m, e, mode, cas, now);
}

static enum mdm_err mem_add(struct cache *c, const char *key, const void *val, size_t len,
			    int64_t ttl_ms)
{
	return mem_store_new(c, key, val, len, ttl_ms, STORE_ADD, 0);
}

static enum mdm_err mem_cas(struct cache *c, const char *key, const void *val, size_t len,
			    int64_t ttl_ms, uint64_t cas)
{
	return mem_store_new(c, key, val, len, ttl_ms, STORE_CAS, cas);
}

static enum mdm_err mem_get_cas(struct cache *c, const char *key, struct cache_entry *out,
				uint64_t *cas)
{
	struct mem *m = c->priv;
	struct mentry *e;
	struct shard *s;
	enum mdm_err err = MDM_ERR_NOTFOUND;
	int64_t now;
	size_t klen;
	uint64_t hash;

	if (!cache_key_valid(key))
		return MDM_ERR_INVALID;
	hash = key_hash(key, &klen);
	s = shard_of(m, hash);
	now = m->now();
	pthread_mutex_lock(&s->mu);
	e = (struct mentry *)htab_find(&s->entries, hash, key, klen);
	if (e && entry_alive(e, now)) {
		err = entry_copy_out(e, CACHE_FRESH, out);
		*cas = e->cas;
	}
	pthread_mutex_unlock(&s->mu);
	return err;
}

static const struct cache_ops mem_ops = {
    .get_many = mem_get_many,
    .put = mem_put,
    .del = mem_del,
    .lock = mem_lock,
    .unlock = mem_unlock,
    .stats = mem_stats,
    .destroy = mem_destroy,
    .add = mem_add,
    .get_cas = mem_get_cas,
    .cas = mem_cas,
};

/* --- creation ------------------------------------------------------------------------------ */

static bool config_ok(const struct cache_mem_config *cfg)
{
	unsigned n;

	if (!cfg || cfg->max_entries == 0 || cfg->max_value == 0 || cfg->max_hold_ms < 0)
		return false;
	n = cfg->shards;
	if (n == 0 || n > SHARDS_MAX || (n & (n - 1)) != 0)
		return false;
	/* Leaves room for the entry header and the key in one allocation size. */
	return cfg->max_value <= SIZE_MAX / 2;
}

static enum mdm_err shard_init(struct shard *s)
{
	memset(s, 0, sizeof(*s));
	if (htab_init(&s->entries) || htab_init(&s->locks)) {
		free(s->entries.b);
		free(s->locks.b);
		return MDM_ERR_NOMEM;
	}
	if (pthread_mutex_init(&s->mu, NULL) != 0) {
		free(s->entries.b);
		free(s->locks.b);
		return MDM_ERR_NOMEM;
	}
	return MDM_OK;
}

struct cache *cache_mem_create(const struct cache_mem_config *cfg)
{
	struct mem *m;
	unsigned i;

	if (!config_ok(cfg))
		return NULL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->nshards = cfg->shards;
	/* ceil(max_entries / shards), written so that it cannot overflow. */
	m->cap = cfg->max_entries / cfg->shards + (cfg->max_entries % cfg->shards != 0);
	/* Locks are few and short-lived; the bound only stops leaked ones piling up. */
	m->lock_cap = cfg->max_entries;
	m->max_value = cfg->max_value;
	m->max_hold_ms = cfg->max_hold_ms;
	m->now = cfg->now ? cfg->now : clock_wall_ms;
	m->base.ops = &mem_ops;
	m->base.priv = m;
	/* sizeof(struct shard) is a multiple of its alignment, as aligned_alloc requires. */
	m->shards = aligned_alloc(CACHE_LINE, (size_t)m->nshards * sizeof(struct shard));
	if (!m->shards) {
		free(m);
		return NULL;
	}
	for (i = 0; i < m->nshards; i++) {
		if (shard_init(&m->shards[i]) != MDM_OK) {
			mem_free(m, i);
			return NULL;
		}
	}
	return &m->base;
}
