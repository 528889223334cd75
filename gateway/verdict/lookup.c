/*
 * lookup: the cache-first path of a lookup (keys, reading and writing answers, the request and
 * its asks, single-flight waiting, background refresh); what it remembers besides the cache (the
 * decode and fail memos) is in lookup_memo.c. Contract: lookup.h.
 */
#define _POSIX_C_SOURCE 200809L
#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../adapters/fanout.h"
#include "../../cache/entry.h"
#include "../../cache/pointer.h"
#include "../../core/buf.h"
#include "../../core/clock.h"
#include "../../core/log.h"
#include "guidroute.h"
#include "lookup.h"
#include "lookup_memo.h"

#define REFRESH_QUEUE 1024
#define REFRESH_INFLIGHT 64 /* refreshes waiting for their vendor at once */
#define LOCK_POLL_MS 2

struct refresh {
	struct ident id;
	size_t adapter;
};

struct lreq;

struct lookup {
	struct lookup_config cfg;
	char ns[64];
	struct lookup_stats stats;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	struct refresh queue[REFRESH_QUEUE];
	size_t qhead, qlen;
	unsigned refreshing; /* refreshes under way */
	struct memo memo;
	/*
	 * The loop thread owns every request that went asynchronous: it finishes those whose
	 * adapters answered (the done queue), expires asks past their deadline, and polls the
	 * cache for requests waiting on another request's fill. Under mu.
	 */
	pthread_t loop;
	pthread_cond_t loop_cv;
	bool loop_stop;
	bool kick;		/* something was stored: poll the waiters now */
	struct lreq *active;	/* published requests, a doubly linked list */
	struct lreq *done_head; /* requests ready to finish, FIFO */
	struct lreq *done_tail;
	size_t nactive;
	struct failmemo fails;
	struct guidroute *routes; /* GUID -> the adapters that reported it */
};

/* What one adapter said (or is cached as having said) about one identifier. */
struct pair {
	char pkey[CACHE_KEY_MAX + 1];
	struct outcome oc;
	enum cache_state state; /* CACHE_MISS: ask the adapter */
	bool locked;		/* we hold the pointer's refresh lock */
	bool routed;		/* not asked: the GUID belongs to another adapter */
	size_t dev0, ndev;	/* its device keys in the request's device-key list */
	int64_t fresh_until;	/* earliest fresh_until of the pointer and its records */
};

/* --- keys ---------------------------------------------------------------------------------- */

static bool plain_value(const char *v, size_t len)
{
	/* A value spelled like a hash is hashed too, or it would share its key with the value
	 * it names ("sha256:<hex of John Doe>" against "John Doe"). */
	if (len == 0 || len > 128 || (len >= 7 && memcmp(v, "sha256:", 7) == 0))
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)v[i] <= 0x20 || (unsigned char)v[i] >= 0x7f)
			return false;
	return true;
}

/* "<value>" when it can stand in a key, else "sha256:<hex>". */
static enum mdm_err key_value(const char *v, size_t len, char *out, size_t outsz)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	size_t o;

	if (plain_value(v, len))
		return str_copyn(out, outsz, v, len);
	if (!EVP_Digest(v, len, md, &mdlen, EVP_sha256(), NULL))
		return MDM_ERR_INTERNAL;
	if (outsz < 7 + 2 * (size_t)mdlen + 1)
		return MDM_ERR_TOOBIG;
	memcpy(out, "sha256:", 7);
	o = 7;
	for (unsigned i = 0; i < mdlen; i++, o += 2)
		snprintf(out + o, 3, "%02x", md[i]);
	return MDM_OK;
}

static enum mdm_err make_key(const char *ns, const char *adapter, const char *kind, const char *v,
			     size_t len, char *out, size_t outsz)
{
	char val[200];
	enum mdm_err e = key_value(v, len, val, sizeof(val));
	int n;

	if (e)
		return e;
	n = snprintf(out, outsz, "%s:v1:%s:%s:%s", ns, adapter, kind, val);
	return n > 0 && (size_t)n < outsz && (size_t)n <= CACHE_KEY_MAX ? MDM_OK : MDM_ERR_TOOBIG;
}

enum mdm_err lookup_pointer_key(const char *ns, const char *adapter, const struct ident *id,
				char *out, size_t outsz)
{
	return make_key(ns, adapter, ident_kind_name(id->kind), id->value, id->len, out, outsz);
}

enum mdm_err lookup_device_key(const char *ns, const char *adapter, const char *vendor_id,
			       char *out, size_t outsz)
{
	return make_key(ns, adapter, "dev", vendor_id, strlen(vendor_id), out, outsz);
}

/* --- writing answers back ------------------------------------------------------------------ */

static struct cache_times times_for(const struct lookup *l, enum outcome_kind k)
{
	struct cache_times t;

	t.fetched_at = clock_wall_ms();
	if (k == OUTCOME_FOUND) {
		t.fresh_until = t.fetched_at + l->cfg.fresh_ttl_ms;
		t.stale_until = t.fresh_until + l->cfg.stale_ttl_ms;
	} else {
		t.fresh_until = t.stale_until = t.fetched_at + l->cfg.negative_ttl_ms;
	}
	return t;
}

/* Stores what adapter a said: its device records, then the pointer naming them. */
static void store_pair(struct lookup *l, const struct adapter *a, const char *pkey,
		       const struct outcome *oc)
{
	struct cache_times t = times_for(l, oc->kind);
	char dkey[CACHE_KEY_MAX + 1];
	struct buf b;
	enum mdm_err e = MDM_OK;

	if (oc->kind != OUTCOME_FOUND && oc->kind != OUTCOME_NOT_ENROLLED)
		return; /* failures are never cached; not-applicable is the adapter's own fast no */
	atomic_fetch_add(&l->stats.writes, 1);
	buf_init(&b, ENTRY_MAX_LEN + 1);
	for (size_t i = 0; !e && oc->kind == OUTCOME_FOUND && i < oc->ndevs; i++) {
		buf_reset(&b);
		e = lookup_device_key(l->ns, a->name, oc->devs[i].vendor_id, dkey, sizeof(dkey));
		if (!e)
			e = entry_encode(ENTRY_FOUND, &oc->devs[i], 1, &b);
		if (!e)
			e = cache_put(l->cfg.cache, dkey, b.mem, b.len, &t);
	}
	if (!e) {
		buf_reset(&b);
		e = pointer_encode(oc->kind == OUTCOME_FOUND, oc->devs, oc->ndevs, &b);
	}
	if (!e)
		e = cache_put(l->cfg.cache, pkey, b.mem, b.len, &t);
	if (e)
		log_warn("cache: cannot store %s: %s", pkey, err_str(e));
	buf_free(&b);
}

enum mdm_err lookup_store_listed(struct lookup *l, const char *adapter, const struct device *dev)
{
	struct outcome oc;
	struct ident id = {.kind = IDENT_MAC};
	char pkey[CACHE_KEY_MAX + 1];
	size_t j;
	enum mdm_err e;

	for (j = 0; j < l->cfg.nads && strcmp(l->cfg.ads[j]->name, adapter) != 0; j++)
		;
	if (j == l->cfg.nads)
		return MDM_ERR_INVALID;
	if (dev->nmacs == 0)
		return MDM_OK; /* only logins by MAC are served from these keys */
	outcome_init(&oc);
	e = outcome_add(&oc, dev);
	for (unsigned m = 0; !e && m < dev->nmacs; m++) {
		id.len = strlen(dev->macs[m]);
		e = str_copy(id.value, sizeof(id.value), dev->macs[m]);
		if (!e)
			e = lookup_pointer_key(l->ns, adapter, &id, pkey, sizeof(pkey));
		if (!e)
			store_pair(l, l->cfg.ads[j], pkey, &oc);
	}
	if (!e)
		guidroute_learn(l->routes, dev->guid, (unsigned)j);
	outcome_clear(&oc);
	return e;
}

/* --- reading answers ----------------------------------------------------------------------- */

static enum cache_state worse(enum cache_state a, enum cache_state b)
{
	if (a == CACHE_MISS || b == CACHE_MISS)
		return CACHE_MISS;
	return a == CACHE_STALE || b == CACHE_STALE ? CACHE_STALE : CACHE_FRESH;
}

/* A corrupt value counts and is removed: the next fresh answer replaces it. */
static void bad_value(struct lookup *l, const char *key)
{
	atomic_fetch_add(&l->stats.bad_entries, 1);
	log_warn("cache: entry %s does not decode; treated as a miss", key);
	cache_del(l->cfg.cache, key);
}

/* Adds the records of a found pointer from their entries; any missing one makes it a miss. */
static enum cache_state add_devices(struct lookup *l, struct pair *p, const char *const *dkeys,
				    struct cache_entry *dev, enum cache_state st)
{
	for (size_t k = p->dev0; k < p->dev0 + p->ndev && st != CACHE_MISS; k++) {
		struct device d;

		if (dev[k].state == CACHE_MISS) {
			st = CACHE_MISS;
			break;
		}
		if (memo_decode_device(&l->memo, dev[k].val, dev[k].len, &d) != MDM_OK) {
			bad_value(l, dkeys[k]);
			st = CACHE_MISS;
			break;
		}
		if (outcome_add(&p->oc, &d) != MDM_OK)
			st = CACHE_MISS;
		st = worse(st, dev[k].state);
		if (dev[k].fresh_until < p->fresh_until)
			p->fresh_until = dev[k].fresh_until;
	}
	if (st == CACHE_MISS)
		outcome_clear(&p->oc);
	return st;
}

/* Device keys of every found pointer, appended to *dkeys (grown as needed). */
struct keylist {
	char (*k)[CACHE_KEY_MAX + 1];
	const char **ptr;
	size_t n, cap;
};

static enum mdm_err keylist_add(struct keylist *kl, const char *key)
{
	if (kl->n == kl->cap) {
		size_t ncap = kl->cap ? kl->cap * 2 : 16;
		void *k = realloc(kl->k, ncap * sizeof(*kl->k));

		if (!k)
			return MDM_ERR_NOMEM;
		kl->k = k;
		kl->cap = ncap;
	}
	str_copy(kl->k[kl->n++], sizeof(kl->k[0]), key);
	return MDM_OK;
}

static void keylist_free(struct keylist *kl)
{
	free(kl->k);
	free(kl->ptr);
	memset(kl, 0, sizeof(*kl));
}

static enum mdm_err keylist_index(struct keylist *kl)
{
	kl->ptr = calloc(kl->n ? kl->n : 1, sizeof(*kl->ptr));
	if (!kl->ptr)
		return MDM_ERR_NOMEM;
	for (size_t i = 0; i < kl->n; i++)
		kl->ptr[i] = kl->k[i];
	return MDM_OK;
}

/*
 * Reads pairs p[0..n) (pointer keys set) from the cache: two get_many round trips in all, one
 * for the pointers and one for every record they name. Each pair ends with an outcome and a
 * state, CACHE_MISS when something is missing or corrupt.
 */
static enum mdm_err read_pairs(struct lookup *l, struct pair *p, size_t n, const size_t *adapter_of)
{
	const char **pk = calloc(n ? n : 1, sizeof(*pk));
	struct cache_entry *pe = calloc(n ? n : 1, sizeof(*pe)), *de = NULL;
	struct keylist kl = {0};
	char ids[POINTER_MAX_IDS][GUID_MAX + 1];
	enum mdm_err e = MDM_ERR_NOMEM;

	if (!pk || !pe)
		goto out;
	for (size_t i = 0; i < n; i++)
		pk[i] = p[i].pkey;
	if (cache_get_many(l->cfg.cache, pk, n, pe) != MDM_OK)
		for (size_t i = 0; i < n; i++) /* the cache failing is a miss, never an error */
			cache_entry_clear(&pe[i]);
	e = MDM_OK;
	for (size_t i = 0; i < n; i++) {
		bool found = false;
		size_t nids = 0;
		char dkey[CACHE_KEY_MAX + 1];

		p[i].state = pe[i].state;
		p[i].fresh_until = pe[i].fresh_until;
		p[i].dev0 = kl.n;
		p[i].ndev = 0;
		outcome_init(&p[i].oc);
		if (pe[i].state == CACHE_MISS)
			continue;
		if (memo_decode_pointer(&l->memo, pe[i].val, pe[i].len, &found, ids,
					POINTER_MAX_IDS, &nids)) {
			bad_value(l, p[i].pkey);
			p[i].state = CACHE_MISS;
			continue;
		}
		for (size_t k = 0; k < nids; k++) {
			e = lookup_device_key(l->ns, l->cfg.ads[adapter_of[i]]->name, ids[k], dkey,
					      sizeof(dkey));
			if (!e)
				e = keylist_add(&kl, dkey);
			if (e)
				break;
		}
		if (e)
			goto out;
		p[i].ndev = nids;
	}
	e = keylist_index(&kl);
	if (e)
		goto out;
	de = calloc(kl.n ? kl.n : 1, sizeof(*de));
	if (!de) {
		e = MDM_ERR_NOMEM;
		goto out;
	}
	if (kl.n && cache_get_many(l->cfg.cache, kl.ptr, kl.n, de) != MDM_OK)
		for (size_t k = 0; k < kl.n; k++)
			cache_entry_clear(&de[k]);
	for (size_t i = 0; i < n; i++)
		if (p[i].state != CACHE_MISS)
			p[i].state = add_devices(l, &p[i], kl.ptr, de, p[i].state);
	e = MDM_OK;
out:
	for (size_t i = 0; pe && i < n; i++)
		cache_entry_clear(&pe[i]);
	for (size_t k = 0; de && k < kl.n; k++)
		cache_entry_clear(&de[k]);
	free(pk);
	free(pe);
	free(de);
	keylist_free(&kl);
	return e;
}

/* --- background refresh of stale pairs ----------------------------------------------------- */

static void refresh_start(struct lookup *l, const struct refresh *r);

static void *refresh_main(void *arg)
{
	struct lookup *l = arg;

	pthread_mutex_lock(&l->mu);
	for (;;) {
		struct refresh r;

		while (!l->stop && (l->qlen == 0 || l->refreshing >= REFRESH_INFLIGHT))
			pthread_cond_wait(&l->cv, &l->mu);
		if (l->stop)
			break;
		r = l->queue[l->qhead];
		l->qhead = (l->qhead + 1) % REFRESH_QUEUE;
		l->qlen--;
		l->refreshing++;
		pthread_mutex_unlock(&l->mu);
		refresh_start(l, &r);
		pthread_mutex_lock(&l->mu);
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

/* Queues the refresh of a stale pair whose lock the caller holds; a full queue lets it go. */
static void refresh_later(struct lookup *l, const struct ident *id, size_t adapter,
			  const char *pkey)
{
	bool queued = false;

	pthread_mutex_lock(&l->mu);
	if (!l->stop && l->qlen < REFRESH_QUEUE) {
		struct refresh *r = &l->queue[(l->qhead + l->qlen) % REFRESH_QUEUE];

		r->id = *id;
		r->adapter = adapter;
		l->qlen++;
		queued = true;
		pthread_cond_signal(&l->cv);
	}
	pthread_mutex_unlock(&l->mu);
	if (!queued) {
		atomic_fetch_add(&l->stats.refresh_dropped, 1);
		cache_unlock(l->cfg.cache, pkey);
	}
}

/* --- the request path ---------------------------------------------------------------------- */

static int64_t lock_ttl(const struct lookup *l)
{
	return 2 * l->cfg.timeout_ms + 1000;
}

struct keyed {
	const char *key;
	size_t index;
};

static int cmp_keyed(const void *a, const void *b)
{
	const struct keyed *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	return c ? c : (x->index < y->index ? -1 : x->index > y->index);
}

/*
 * dup[i] = the first index asking for the same identifier as i (i itself when first). A batch
 * may name one device many times; it is looked up once, or the later copies would wait on the
 * first copy's lock. Sorting keeps this O(n log n) for a batch of query_max_size.
 */
static enum mdm_err find_duplicates(const struct pair *p, size_t nads, size_t n, size_t *dup)
{
	struct keyed *order = malloc((n ? n : 1) * sizeof(*order));

	if (!order)
		return MDM_ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		order[i].key =
		    p[i * nads].pkey; /* the first adapter's pointer names the identifier */
		order[i].index = dup[i] = i;
	}
	qsort(order, n, sizeof(*order), cmp_keyed);
	for (size_t k = 1; k < n; k++)
		if (strcmp(order[k].key, order[k - 1].key) == 0)
			dup[order[k].index] = dup[order[k - 1].index];
	free(order);
	return MDM_OK;
}

static enum mdm_err copy_result(const struct merge_result *src, struct merge_result *dst)
{
	*dst = *src;
	dst->devs = NULL;
	if (!src->ndevs)
		return MDM_OK;
	dst->devs = malloc(src->ndevs * sizeof(*dst->devs));
	if (!dst->devs)
		return MDM_ERR_NOMEM;
	memcpy(dst->devs, src->devs, src->ndevs * sizeof(*dst->devs));
	return MDM_OK;
}

/*
 * Claims the misses and queues refreshes of stale pairs: need[] gets the misses this request
 * holds the lock for (or could not lock at all: the cache is down), wait[] those another
 * request is filling, for the loop to poll.
 */
static void plan(struct lookup *l, struct pair *p, size_t np, const struct ident *const *idof,
		 const size_t *adapter_of, const size_t *dup_pair, size_t *need, size_t *nneed,
		 size_t *wait, size_t *nwait)
{
	*nneed = *nwait = 0;
	for (size_t k = 0; k < np; k++) {
		enum mdm_err e;

		if (dup_pair[k] != k || p[k].routed)
			continue;
		if (p[k].state == CACHE_FRESH) {
			atomic_fetch_add(&l->stats.fresh_hits, 1);
			continue;
		}
		if (p[k].state == CACHE_STALE) {
			atomic_fetch_add(&l->stats.stale_hits, 1);
			if (cache_lock(l->cfg.cache, p[k].pkey, lock_ttl(l)) == MDM_OK)
				refresh_later(l, idof[k], adapter_of[k], p[k].pkey);
			continue;
		}
		atomic_fetch_add(&l->stats.misses, 1);
		e = cache_lock(l->cfg.cache, p[k].pkey, lock_ttl(l));
		p[k].locked = e == MDM_OK;
		if (e == MDM_ERR_BUSY && l->cfg.lock_wait_ms > 0) {
			atomic_fetch_add(&l->stats.lock_waits, 1);
			wait[(*nwait)++] = k;
			continue;
		}
		need[(*nneed)++] = k;
	}
}

/*
 * Reads once more the misses this request won the lock for: another request may have filled
 * one between our first read and our lock (it let go of the lock only after writing). Those are
 * answered from the cache, their locks released; the rest stay in need. One round trip for all.
 */
static size_t recheck_locked(struct lookup *l, struct pair *p, const size_t *adapter_of,
			     size_t *need, size_t nneed)
{
	struct pair *t;
	size_t *ad, n = 0, i = 0, kept = 0;

	for (size_t k = 0; k < nneed; k++)
		n += p[need[k]].locked;
	if (n == 0)
		return nneed;
	t = calloc(n, sizeof(*t));
	ad = calloc(n, sizeof(*ad));
	for (size_t k = 0; t && ad && k < nneed; k++) {
		if (!p[need[k]].locked)
			continue;
		memcpy(t[i].pkey, p[need[k]].pkey, sizeof(t[i].pkey));
		ad[i++] = adapter_of[need[k]];
	}
	if (t && ad && read_pairs(l, t, n, ad) == MDM_OK) {
		i = 0;
		for (size_t k = 0; k < nneed; k++) {
			struct pair *q = &p[need[k]];
			struct pair *r = q->locked ? &t[i++] : NULL;

			if (r && r->state != CACHE_MISS) {
				outcome_move(&q->oc, &r->oc);
				q->state = r->state;
				q->fresh_until = r->fresh_until;
				q->locked = false;
				cache_unlock(l->cfg.cache, q->pkey);
				continue;
			}
			need[kept++] = need[k];
		}
	} else {
		kept = nneed;
	}
	for (size_t j = 0; t && j < n; j++)
		outcome_clear(&t[j].oc);
	free(t);
	free(ad);
	return kept;
}

struct request {
	struct pair *p;
	const struct ident **idof;
	size_t *adapter_of, *dup, *dup_pair, *need;
	bool *asked; /* the pair's answer came from its adapter in this request */
};

static void request_free(struct request *rq, size_t np)
{
	for (size_t k = 0; rq->p && k < np; k++)
		outcome_clear(&rq->p[k].oc);
	free(rq->p);
	free(rq->idof);
	free(rq->adapter_of);
	free(rq->dup);
	free(rq->dup_pair);
	free(rq->need);
	free(rq->asked);
}

static enum mdm_err request_init(struct lookup *l, const struct ident *ids, size_t n,
				 struct request *rq)
{
	size_t np = n * l->cfg.nads, m = np ? np : 1;
	enum mdm_err e;

	memset(rq, 0, sizeof(*rq));
	rq->p = calloc(m, sizeof(*rq->p));
	rq->idof = calloc(m, sizeof(*rq->idof));
	rq->adapter_of = calloc(m, sizeof(*rq->adapter_of));
	rq->dup = calloc(n ? n : 1, sizeof(*rq->dup));
	rq->dup_pair = calloc(m, sizeof(*rq->dup_pair));
	rq->need = calloc(m, sizeof(*rq->need));
	rq->asked = calloc(m, sizeof(*rq->asked));
	if (!rq->p || !rq->idof || !rq->adapter_of || !rq->dup || !rq->dup_pair || !rq->need ||
	    !rq->asked)
		return MDM_ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < l->cfg.nads; j++) {
			size_t k = i * l->cfg.nads + j;

			outcome_init(&rq->p[k].oc);
			rq->idof[k] = &ids[i];
			rq->adapter_of[k] = j;
			e = lookup_pointer_key(l->ns, l->cfg.ads[j]->name, &ids[i], rq->p[k].pkey,
					       sizeof(rq->p[k].pkey));
			if (e)
				return e;
		}
	}
	if (l->cfg.nads == 0)
		return MDM_OK;
	e = find_duplicates(rq->p, l->cfg.nads, n, rq->dup);
	for (size_t k = 0; !e && k < np; k++)
		rq->dup_pair[k] = rq->dup[k / l->cfg.nads] * l->cfg.nads + k % l->cfg.nads;
	return e;
}

/*
 * GUID routing: a GUID some adapter reported is asked of that adapter only. The others' parts
 * become "not applicable" (they are no part of the answer), so an MDM that is down cannot make
 * the answer about a device it never issued partial or unavailable.
 */
static void route_guids(struct lookup *l, struct request *rq, size_t n)
{
	size_t nads = l->cfg.nads;

	for (size_t i = 0; i < n; i++) {
		uint32_t mask;

		if (rq->dup[i] != i || rq->idof[i * nads]->kind != IDENT_GUID)
			continue;
		mask = guidroute_get(l->routes, rq->idof[i * nads]->value);
		if (mask == 0)
			continue;
		for (size_t j = 0; j < nads; j++) {
			struct pair *p = &rq->p[i * nads + j];

			if (mask & (1u << j))
				continue;
			outcome_clear(&p->oc);
			p->oc.kind = OUTCOME_NOT_APPLICABLE;
			snprintf(p->oc.why, sizeof(p->oc.why), "GUID issued by another MDM");
			p->state = CACHE_FRESH;
			p->fresh_until = 0;
			p->routed = true;
			atomic_fetch_add(&l->stats.guid_routed, 1);
		}
	}
}

/* Until when identifier i's whole answer was fresh: 0 if any part was stale or just asked. */
static int64_t answer_fresh_until(const struct request *rq, size_t i, size_t nads)
{
	int64_t until = INT64_MAX;

	for (size_t j = 0; j < nads; j++) {
		const struct pair *p = &rq->p[i * nads + j];

		if (p->oc.kind == OUTCOME_NOT_APPLICABLE)
			continue; /* the source's own fixed no: it limits nothing */
		if (p->state != CACHE_FRESH || rq->asked[i * nads + j])
			return 0;
		if (p->fresh_until < until)
			until = p->fresh_until;
	}
	return until == INT64_MAX ? 0 : until;
}

static enum mdm_err merge_all(struct lookup *l, struct request *rq, size_t n,
			      struct merge_result *results)
{
	enum mdm_err e = MDM_OK;
	struct outcome *ocs = calloc(l->cfg.nads ? l->cfg.nads : 1, sizeof(*ocs));

	if (!ocs)
		return MDM_ERR_NOMEM;
	for (size_t i = 0; i < n && !e; i++) {
		if (rq->dup[i] != i)
			continue;
		/* merge_outcomes reads the outcomes; shallow copies are enough. */
		for (size_t j = 0; j < l->cfg.nads; j++)
			ocs[j] = rq->p[i * l->cfg.nads + j].oc;
		e = merge_outcomes(&l->cfg.policy, ocs, l->cfg.nads, &results[i]);
		if (!e)
			results[i].fresh_until = answer_fresh_until(rq, i, l->cfg.nads);
		if (!e && results[i].verdict == MERGE_UNAVAILABLE)
			atomic_fetch_add(&l->stats.unavailable, 1);
		else if (!e && results[i].partial)
			atomic_fetch_add(&l->stats.partial, 1);
	}
	for (size_t i = 0; i < n && !e; i++)
		if (rq->dup[i] != i)
			e = copy_result(&results[rq->dup[i]], &results[i]);
	free(ocs);
	return e;
}

/* --- asynchronous requests ----------------------------------------------------------------- */

/* One adapter asked about some of a request's identifiers. */
struct ask {
	struct fanout *f;
	struct ident *ids;
	size_t *pairs; /* the pair each identifier answers */
	size_t n;
	int64_t deadline;
	bool expired; /* the loop expired it (loop thread only) */
};

#define MAX_ASKS (2 * LOOKUP_MAX_ADAPTERS) /* a first round, and one after waiting */

struct lreq {
	struct lookup *l;
	struct request rq;
	struct ident *ids;
	size_t n, np;
	lookup_done_cb cb;
	void *arg;
	int outstanding; /* under l->mu: asks not done, the waiting phase, the starter */
	struct ask asks[MAX_ASKS];
	size_t nasks;
	size_t *wait; /* pairs another request is filling */
	size_t nwait;
	bool waiting; /* the waiting phase is open */
	int64_t wait_since, wait_until;
	struct lreq *prev, *next; /* l->active, under l->mu */
	struct lreq *done_next;	  /* l->done queue, under l->mu */
};

static void ask_free(struct ask *a);

static void lreq_free(struct lreq *r)
{
	for (size_t a = 0; a < r->nasks; a++)
		ask_free(&r->asks[a]);
	request_free(&r->rq, r->np);
	free(r->ids);
	free(r->wait);
	free(r);
}

/* Drops one of r's outstanding holds, with l->mu held; the last one queues r for the loop. */
static void release_locked(struct lookup *l, struct lreq *r)
{
	if (--r->outstanding > 0)
		return;
	r->done_next = NULL;
	if (l->done_tail)
		l->done_tail->done_next = r;
	else
		l->done_head = r;
	l->done_tail = r;
	pthread_cond_signal(&l->loop_cv);
}

static void on_ask_done(void *arg)
{
	struct lreq *r = arg;

	pthread_mutex_lock(&r->l->mu);
	release_locked(r->l, r);
	pthread_mutex_unlock(&r->l->mu);
}

static void ask_free(struct ask *a)
{
	fanout_release(a->f);
	free(a->ids);
	free(a->pairs);
	memset(a, 0, sizeof(*a));
}

/*
 * Launches one ask per adapter for pairs idx[0..n); r->outstanding counts each. On an error
 * nothing was launched.
 */
static enum mdm_err launch(struct lreq *r, const size_t *idx, size_t n)
{
	struct lookup *l = r->l;
	size_t count[LOOKUP_MAX_ADAPTERS] = {0}, first = r->nasks;
	int64_t deadline = clock_mono_ms() + l->cfg.timeout_ms;

	for (size_t k = 0; k < n; k++)
		count[r->rq.adapter_of[idx[k]]]++;
	for (size_t j = 0; j < l->cfg.nads; j++) {
		struct ask *a;

		if (!count[j])
			continue;
		a = &r->asks[r->nasks];
		if (r->nasks == MAX_ASKS)
			goto undo;
		r->nasks++;
		a->ids = calloc(count[j], sizeof(*a->ids));
		a->pairs = calloc(count[j], sizeof(*a->pairs));
		a->f = fanout_create(&l->cfg.ads[j], 1, count[j]);
		a->deadline = deadline;
		if (!a->ids || !a->pairs || !a->f)
			goto undo;
		for (size_t k = 0; k < n; k++) {
			if (r->rq.adapter_of[idx[k]] != j)
				continue;
			a->pairs[a->n] = idx[k];
			a->ids[a->n++] = *r->rq.idof[idx[k]];
		}
	}
	pthread_mutex_lock(&l->mu);
	r->outstanding += (int)(r->nasks - first);
	pthread_mutex_unlock(&l->mu);
	for (size_t a = first; a < r->nasks; a++) {
		struct ask *ak = &r->asks[a];

		for (size_t k = 0; k < ak->n; k++)
			r->rq.asked[ak->pairs[k]] = true;
		atomic_fetch_add(&l->stats.adapter_lookups[r->rq.adapter_of[ak->pairs[0]]], ak->n);
		fanout_on_done(ak->f, on_ask_done, r);
		fanout_start(ak->f, ak->ids, deadline);
	}
	return MDM_OK;
undo:
	while (r->nasks > first)
		ask_free(&r->asks[--r->nasks]);
	return r->nasks == MAX_ASKS ? MDM_ERR_INTERNAL : MDM_ERR_NOMEM;
}

/* Moves the adapters' answers into the pairs, stores them, and lets go of the locks. */
/* What an adapter's answer teaches about GUIDs: the ones it reported are its own, and a GUID it
 * was asked about and does not know is no longer routed to it. */
static void learn_guids(struct lookup *l, size_t j, const struct ident *id,
			const struct outcome *oc)
{
	if (oc->kind == OUTCOME_FOUND)
		for (size_t i = 0; i < oc->ndevs; i++)
			guidroute_learn(l->routes, oc->devs[i].guid, (unsigned)j);
	else if (oc->kind == OUTCOME_NOT_ENROLLED && id->kind == IDENT_GUID)
		guidroute_forget(l->routes, id->value, (unsigned)j);
}

static void collect(struct lreq *r)
{
	struct lookup *l = r->l;
	bool stored = false;

	for (size_t a = 0; a < r->nasks; a++) {
		struct ask *ak = &r->asks[a];

		for (size_t k = 0; ak->f && k < ak->n; k++) {
			struct pair *p = &r->rq.p[ak->pairs[k]];
			size_t j = r->rq.adapter_of[ak->pairs[k]];

			outcome_move(&p->oc, fanout_outcomes(ak->f, k));
			if (p->oc.kind == OUTCOME_FAILED) {
				log_warn("lookup %s: adapter %s failed: %s: %s",
					 ident_kind_name(ak->ids[k].kind), l->cfg.ads[j]->name,
					 fail_kind_name(p->oc.fail), p->oc.why);
				failmemo_put(&l->fails, p->pkey, &p->oc);
			}
			learn_guids(l, j, &ak->ids[k], &p->oc);
			store_pair(l, l->cfg.ads[j], p->pkey, &p->oc);
			stored = true;
		}
	}
	for (size_t k = 0; k < r->np; k++)
		if (r->rq.p[k].locked) {
			cache_unlock(l->cfg.cache, r->rq.p[k].pkey);
			r->rq.p[k].locked = false;
		}
	if (stored) {
		pthread_mutex_lock(&l->mu);
		l->kick = true; /* waiters for what was just stored need not wait for the poll */
		pthread_cond_signal(&l->loop_cv);
		pthread_mutex_unlock(&l->mu);
	}
}

/* Merges, answers the caller and frees r. e: an error met on the way (then no merge). */
static void finish(struct lreq *r, enum mdm_err e)
{
	struct lookup *l = r->l;
	struct merge_result *results = calloc(r->n ? r->n : 1, sizeof(*results));

	collect(r);
	if (!results)
		e = MDM_ERR_NOMEM;
	if (!e)
		e = merge_all(l, &r->rq, r->n, results);
	r->cb(r->arg, e, e ? NULL : results, e ? 0 : r->n);
	for (size_t i = 0; results && i < r->n; i++)
		merge_result_clear(&results[i]);
	free(results);
	lreq_free(r);
}

static void unlink_active(struct lookup *l, struct lreq *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		l->active = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
	l->nactive--;
}

/* A new request for ids[0..n) (copied), its pairs' keys made; NULL when memory runs out. */
static struct lreq *lreq_new(struct lookup *l, const struct ident *ids, size_t n, lookup_done_cb cb,
			     void *arg)
{
	struct lreq *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->l = l;
	r->n = n;
	r->np = n * l->cfg.nads;
	r->cb = cb;
	r->arg = arg;
	r->outstanding = 1; /* the starter's, until everything is launched */
	r->ids = malloc((n ? n : 1) * sizeof(*ids));
	r->wait = malloc((r->np ? r->np : 1) * sizeof(*r->wait));
	if (!r->ids || !r->wait) {
		lreq_free(r);
		return NULL;
	}
	memcpy(r->ids, ids, n * sizeof(*ids));
	if (request_init(l, r->ids, n, &r->rq) != MDM_OK) {
		lreq_free(r);
		return NULL;
	}
	return r;
}

/*
 * The starter lets go: r finishes here when nothing is out (e: an error met while starting,
 * which leaves nothing launched), else it joins the loop's list until its answers are in.
 */
static void lreq_go(struct lreq *r, enum mdm_err e)
{
	struct lookup *l = r->l;
	bool last;

	pthread_mutex_lock(&l->mu);
	if (e && r->waiting) {
		r->waiting = false;
		r->outstanding--;
	}
	last = --r->outstanding == 0;
	if (!last) {
		r->next = l->active;
		if (l->active)
			l->active->prev = r;
		l->active = r;
		l->nactive++;
		pthread_cond_signal(&l->loop_cv);
	}
	pthread_mutex_unlock(&l->mu);
	if (last)
		finish(r, e);
}

enum mdm_err lookup_start(struct lookup *l, const struct ident *ids, size_t n, lookup_done_cb cb,
			  void *arg)
{
	struct lreq *r;
	size_t nneed = 0;
	enum mdm_err e;

	if (n > l->cfg.max_batch)
		return MDM_ERR_TOOBIG;
	r = lreq_new(l, ids, n, cb, arg);
	if (!r)
		return MDM_ERR_NOMEM;
	e = read_pairs(l, r->rq.p, r->np, r->rq.adapter_of);
	if (e) {
		lreq_free(r);
		return e;
	}
	route_guids(l, &r->rq, n);
	plan(l, r->rq.p, r->np, r->rq.idof, r->rq.adapter_of, r->rq.dup_pair, r->rq.need, &nneed,
	     r->wait, &r->nwait);
	nneed = recheck_locked(l, r->rq.p, r->rq.adapter_of, r->rq.need, nneed);
	if (r->nwait) {
		r->waiting = true;
		r->outstanding++;
		r->wait_since = clock_mono_ms();
		/* As long as the filler itself may take, and at least lock_wait_ms. */
		r->wait_until =
		    clock_mono_ms() + (l->cfg.lock_wait_ms > l->cfg.timeout_ms ? l->cfg.lock_wait_ms
									       : l->cfg.timeout_ms);
	}
	if (nneed)
		e = launch(r, r->rq.need, nneed);
	lreq_go(r, e);
	return MDM_OK;
}

static void refresh_done(void *arg, enum mdm_err e, struct merge_result *results, size_t n)
{
	struct lookup *l = arg;

	(void)e;
	(void)results;
	(void)n;
	atomic_fetch_add(&l->stats.refreshes, 1);
	pthread_mutex_lock(&l->mu);
	l->refreshing--;
	pthread_cond_signal(&l->cv);
	pthread_mutex_unlock(&l->mu);
}

/*
 * Asks one adapter again about a stale pair whose lock we hold, as a request of its own: the
 * answer is stored and the lock let go when it finishes, on the loop thread. A failure is not
 * stored, so the stale answer stays until stale_ttl.
 */
static void refresh_start(struct lookup *l, const struct refresh *rf)
{
	struct lreq *r = lreq_new(l, &rf->id, 1, refresh_done, l);
	size_t k = rf->adapter;

	if (!r) {
		char pkey[CACHE_KEY_MAX + 1];

		if (lookup_pointer_key(l->ns, l->cfg.ads[rf->adapter]->name, &rf->id, pkey,
				       sizeof(pkey)) == MDM_OK)
			cache_unlock(l->cfg.cache, pkey);
		refresh_done(l, MDM_ERR_NOMEM, NULL, 0);
		return;
	}
	r->rq.p[k].locked = true; /* taken by refresh_later's caller */
	lreq_go(r, launch(r, &k, 1));
}

/* --- the loop thread ------------------------------------------------------------------------ */

/* A waiting pair of some request, for one poll. */
struct waiter {
	struct lreq *r;
	size_t k; /* pair index in r */
};

static int cmp_waiter(const void *a, const void *b)
{
	const struct waiter *x = a, *y = b;

	return strcmp(x->r->rq.p[x->k].pkey, y->r->rq.p[y->k].pkey);
}

static enum mdm_err outcome_copy(struct outcome *dst, const struct outcome *src)
{
	outcome_clear(dst);
	for (size_t i = 0; i < src->ndevs; i++)
		if (outcome_add(dst, &src->devs[i]) != MDM_OK)
			return MDM_ERR_NOMEM;
	dst->kind = src->kind;
	dst->fail = src->fail;
	str_copy(dst->why, sizeof(dst->why), src->why);
	return MDM_OK;
}

/*
 * A pointer still missing whose lock is free again was let go by a filler that stored nothing
 * (its vendor failed, or its lock lapsed): the first waiter for it takes the lock and asks,
 * the others go on waiting, now for it. So a failed fill is retried by one request, not all.
 */
static void take_over(struct lookup *l, struct waiter *w, size_t nw, const struct pair *t,
		      const size_t *slot)
{
	for (size_t i = 0; i < nw; i++) {
		struct lreq *r = w[i].r;
		struct pair *p = &r->rq.p[w[i].k];
		size_t k = w[i].k;

		if ((i > 0 && slot[i] == slot[i - 1]) || t[slot[i]].state != CACHE_MISS ||
		    p->state != CACHE_MISS)
			continue;
		if (cache_lock(l->cfg.cache, p->pkey, lock_ttl(l)) != MDM_OK)
			continue;
		p->locked = true;
		if (launch(r, &k, 1) != MDM_OK) {
			outcome_set(&p->oc, OUTCOME_FAILED, FAIL_INTERNAL, "out of memory");
			p->state = CACHE_FRESH; /* answered (failed): no longer waiting */
		}
	}
}

/*
 * Reads the cache once for every distinct pointer the waiting requests wait for, and hands
 * each waiter what arrived. A waiter answered leaves r->wait.
 */
static void poll_waiters(struct lookup *l, struct lreq **rs, size_t nrs)
{
	struct waiter *w;
	struct pair *t = NULL;
	size_t *ad = NULL, nw = 0, nt = 0, *slot = NULL;

	for (size_t i = 0; i < nrs; i++)
		nw += rs[i]->waiting ? rs[i]->nwait : 0;
	if (!nw)
		return;
	w = calloc(nw, sizeof(*w));
	t = calloc(nw, sizeof(*t));
	ad = calloc(nw, sizeof(*ad));
	slot = calloc(nw, sizeof(*slot));
	if (!w || !t || !ad || !slot)
		goto out;
	nw = 0;
	for (size_t i = 0; i < nrs; i++)
		for (size_t k = 0; rs[i]->waiting && k < rs[i]->nwait; k++)
			w[nw++] = (struct waiter){rs[i], rs[i]->wait[k]};
	qsort(w, nw, sizeof(*w), cmp_waiter);
	for (size_t i = 0; i < nw; i++) {
		const char *key = w[i].r->rq.p[w[i].k].pkey;

		if (i == 0 || strcmp(key, t[nt - 1].pkey) != 0) {
			memcpy(t[nt].pkey, key, sizeof(t[nt].pkey));
			ad[nt++] = w[i].r->rq.adapter_of[w[i].k];
		}
		slot[i] = nt - 1;
	}
	if (read_pairs(l, t, nt, ad) != MDM_OK)
		goto out;
	for (size_t i = 0; i < nw; i++) {
		struct pair *src = &t[slot[i]], *dst = &w[i].r->rq.p[w[i].k];

		if (src->state == CACHE_MISS || outcome_copy(&dst->oc, &src->oc) != MDM_OK)
			continue;
		dst->state = src->state;
		dst->fresh_until = src->fresh_until;
	}
	for (size_t i = 0; i < nw; i++) {
		struct pair *dst = &w[i].r->rq.p[w[i].k];

		/* Stale, not fresh: an answer made of a failure is never kept as rendered. */
		if (t[slot[i]].state == CACHE_MISS &&
		    failmemo_get(&l->fails, dst->pkey, w[i].r->wait_since, &dst->oc))
			dst->state = CACHE_STALE;
	}
	take_over(l, w, nw, t, slot);
	/* Drop the answered and taken-over pairs from each request's wait list. */
	for (size_t i = 0; i < nrs; i++) {
		struct lreq *r = rs[i];
		size_t kept = 0;

		for (size_t k = 0; r->waiting && k < r->nwait; k++) {
			const struct pair *p = &r->rq.p[r->wait[k]];

			if (p->state == CACHE_MISS && !p->locked)
				r->wait[kept++] = r->wait[k];
		}
		if (r->waiting)
			r->nwait = kept;
	}
out:
	for (size_t i = 0; t && i < nt; i++)
		outcome_clear(&t[i].oc);
	free(w);
	free(t);
	free(ad);
	free(slot);
}

/* Closes r's waiting phase: what is still missing is asked of its adapter now. */
static void end_wait(struct lookup *l, struct lreq *r)
{
	enum mdm_err e = MDM_OK;

	if (r->nwait)
		e = launch(r, r->wait, r->nwait);
	if (e) {
		log_warn("lookup: cannot ask the adapters: %s", err_str(e));
		for (size_t k = 0; k < r->nwait; k++)
			outcome_set(&r->rq.p[r->wait[k]].oc, OUTCOME_FAILED, FAIL_INTERNAL,
				    err_str(e));
	}
	r->nwait = 0;
	pthread_mutex_lock(&l->mu);
	r->waiting = false;
	release_locked(l, r);
	pthread_mutex_unlock(&l->mu);
}

/* Snapshot of the active list (the loop alone frees requests, so the pointers stay valid). */
static size_t active_snapshot(struct lookup *l, struct lreq ***rs, size_t *cap)
{
	size_t n = 0;

	if (l->nactive > *cap) {
		size_t ncap = l->nactive * 2;
		struct lreq **nrs = realloc(*rs, ncap * sizeof(**rs));

		if (!nrs)
			return 0;
		*rs = nrs;
		*cap = ncap;
	}
	for (struct lreq *r = l->active; r && n < *cap; r = r->next)
		(*rs)[n++] = r;
	return n;
}

/* One round without l->mu: expire asks, poll and end waits. Returns the next wake-up time. */
static int64_t loop_round(struct lookup *l, struct lreq **rs, size_t nrs, bool poll, bool stop)
{
	int64_t now = clock_mono_ms(), next = now + 1000;
	bool any_wait = false;

	for (size_t i = 0; i < nrs; i++) {
		struct lreq *r = rs[i];

		for (size_t a = 0; a < r->nasks; a++) {
			struct ask *ak = &r->asks[a];

			if (ak->expired || !ak->f)
				continue;
			if (stop || ak->deadline <= now) {
				ak->expired = true;
				fanout_expire(ak->f);
			} else if (ak->deadline < next) {
				next = ak->deadline;
			}
		}
		any_wait |= r->waiting;
	}
	if (!any_wait)
		return next;
	if (poll && !stop)
		poll_waiters(l, rs, nrs);
	now = clock_mono_ms();
	for (size_t i = 0; i < nrs; i++) {
		struct lreq *r = rs[i];

		if (!r->waiting)
			continue;
		if (stop) {
			for (size_t k = 0; k < r->nwait; k++)
				outcome_set(&r->rq.p[r->wait[k]].oc, OUTCOME_FAILED, FAIL_INTERNAL,
					    "gateway shutting down");
			r->nwait = 0;
		}
		if (r->nwait == 0 || r->wait_until <= now)
			end_wait(l, r);
		else if (now + LOCK_POLL_MS < next)
			next = now + LOCK_POLL_MS;
	}
	return next;
}

static void wait_until_locked(struct lookup *l, int64_t until)
{
	clock_cond_wait_until(&l->loop_cv, &l->mu, until);
}

static void *loop_main(void *arg)
{
	struct lookup *l = arg;
	struct lreq **rs = NULL;
	size_t cap = 0;
	int64_t next = 0, last_poll = 0;

	pthread_mutex_lock(&l->mu);
	for (;;) {
		bool stop = l->loop_stop, poll;
		size_t nrs;

		while (l->done_head) {
			struct lreq *r = l->done_head;

			l->done_head = r->done_next;
			if (!l->done_head)
				l->done_tail = NULL;
			unlink_active(l, r);
			pthread_mutex_unlock(&l->mu);
			finish(r, MDM_OK);
			pthread_mutex_lock(&l->mu);
		}
		if (stop && !l->active)
			break;
		poll = l->kick || clock_mono_ms() - last_poll >= LOCK_POLL_MS;
		l->kick = false;
		nrs = active_snapshot(l, &rs, &cap);
		pthread_mutex_unlock(&l->mu);
		if (poll)
			last_poll = clock_mono_ms();
		next = loop_round(l, rs, nrs, poll, stop);
		pthread_mutex_lock(&l->mu);
		if (!l->done_head && !l->kick && !l->loop_stop)
			wait_until_locked(l, next);
	}
	pthread_mutex_unlock(&l->mu);
	free(rs);
	return NULL;
}

/* --- the blocking form ----------------------------------------------------------------------- */

struct sync_wait {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	enum mdm_err e;
	struct merge_result *out;
};

static void sync_done(void *arg, enum mdm_err e, struct merge_result *results, size_t n)
{
	struct sync_wait *sw = arg;

	for (size_t i = 0; !e && i < n; i++) {
		sw->out[i] = results[i]; /* moved: the callee's copy lets go of the devices */
		results[i].devs = NULL;
		results[i].ndevs = 0;
	}
	pthread_mutex_lock(&sw->mu);
	sw->e = e;
	sw->done = true;
	pthread_cond_signal(&sw->cv);
	pthread_mutex_unlock(&sw->mu);
}

enum mdm_err lookup_many(struct lookup *l, const struct ident *ids, size_t n,
			 struct merge_result *results)
{
	struct sync_wait sw = {.out = results};
	enum mdm_err e;

	memset(results, 0, n * sizeof(*results));
	pthread_mutex_init(&sw.mu, NULL);
	pthread_cond_init(&sw.cv, NULL);
	e = lookup_start(l, ids, n, sync_done, &sw);
	pthread_mutex_lock(&sw.mu);
	while (!e && !sw.done)
		pthread_cond_wait(&sw.cv, &sw.mu);
	pthread_mutex_unlock(&sw.mu);
	pthread_mutex_destroy(&sw.mu);
	pthread_cond_destroy(&sw.cv);
	return e ? e : sw.e;
}

/* Deletes one adapter's pointer for id and the records it names; counts what went. */
static void purge_pointer(struct lookup *l, size_t j, const char *pkey, size_t *removed)
{
	char ids[POINTER_MAX_IDS][GUID_MAX + 1], dkey[CACHE_KEY_MAX + 1];
	struct cache_entry ce;
	bool found = false;
	size_t nids = 0;

	if (cache_get(l->cfg.cache, pkey, &ce) == MDM_OK && ce.state != CACHE_MISS &&
	    pointer_decode(ce.val, ce.len, &found, ids, POINTER_MAX_IDS, &nids) == MDM_OK) {
		for (size_t k = 0; k < nids; k++)
			if (lookup_device_key(l->ns, l->cfg.ads[j]->name, ids[k], dkey,
					      sizeof(dkey)) == MDM_OK &&
			    cache_del(l->cfg.cache, dkey) == MDM_OK)
				(*removed)++;
		(*removed)++;
	}
	cache_entry_clear(&ce);
	cache_del(l->cfg.cache, pkey);
}

enum mdm_err lookup_purge(struct lookup *l, const struct ident *id, size_t *removed)
{
	char pkey[CACHE_KEY_MAX + 1];

	*removed = 0;
	atomic_fetch_add(&l->stats.writes, 1);
	for (size_t j = 0; j < l->cfg.nads; j++) {
		enum mdm_err e =
		    lookup_pointer_key(l->ns, l->cfg.ads[j]->name, id, pkey, sizeof(pkey));

		if (e)
			return e;
		purge_pointer(l, j, pkey, removed);
	}
	return MDM_OK;
}

static void stop_refresh(struct lookup *l);

/* What lookup_create made, once no thread of the lookup runs. */
static void lookup_free(struct lookup *l)
{
	pthread_mutex_destroy(&l->mu);
	pthread_cond_destroy(&l->cv);
	pthread_cond_destroy(&l->loop_cv);
	failmemo_destroy(&l->fails);
	memo_free(&l->memo);
	guidroute_destroy(l->routes);
	free(l);
}

struct lookup *lookup_create(const struct lookup_config *cfg)
{
	struct lookup *l;

	if (cfg->nads > LOOKUP_MAX_ADAPTERS || !cfg->ns || !plain_value(cfg->ns, strlen(cfg->ns)))
		return NULL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->cfg = *cfg;
	if (str_copy(l->ns, sizeof(l->ns), cfg->ns) != MDM_OK) {
		free(l);
		return NULL;
	}
	l->cfg.ns = l->ns;
	l->routes = guidroute_create(LOOKUP_GUID_ROUTES);
	if (!l->routes || memo_init(&l->memo) != MDM_OK) {
		guidroute_destroy(l->routes);
		free(l);
		return NULL;
	}
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv, NULL);
	clock_cond_init(&l->loop_cv);
	failmemo_init(&l->fails);
	if (pthread_create(&l->thread, NULL, refresh_main, l) != 0)
		goto fail;
	if (pthread_create(&l->loop, NULL, loop_main, l) != 0) {
		stop_refresh(l);
		goto fail;
	}
	return l;
fail:
	lookup_free(l);
	return NULL;
}

static void stop_refresh(struct lookup *l)
{
	pthread_mutex_lock(&l->mu);
	l->stop = true;
	pthread_cond_signal(&l->cv);
	pthread_mutex_unlock(&l->mu);
	pthread_join(l->thread, NULL);
}

void lookup_destroy(struct lookup *l)
{
	if (!l)
		return;
	/* Refreshes first, so none starts after the loop; the loop then answers every request
	 * still out (expired) before it ends. */
	stop_refresh(l);
	pthread_mutex_lock(&l->mu);
	l->loop_stop = true;
	pthread_cond_signal(&l->loop_cv);
	pthread_mutex_unlock(&l->mu);
	pthread_join(l->loop, NULL);
	lookup_free(l);
}

const struct lookup_stats *lookup_stats(const struct lookup *l)
{
	return &l->stats;
}

int64_t lookup_answer_bound_ms(const struct lookup *l)
{
	return 2 * l->cfg.timeout_ms + l->cfg.lock_wait_ms + 1000;
}

unsigned long lookup_generation(const struct lookup *l)
{
	return atomic_load(&l->stats.writes);
}
