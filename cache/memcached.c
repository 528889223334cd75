/*
 * memcached: the shared tier, over libmemcached 1.1 (text protocol, ketama) with a bounded pool
 * of handles that all server threads share.
 *
 * A value is compact JSON, {"v":1,"at":..,"fu":..,"su":..,"d":"<payload>","t":"<hex>"}, where t
 * is HMAC-SHA256 over "mdmgw-v1\n" key "\n" at "\n" fu "\n" su "\n" payload. The tag binds the
 * value to its key and times, so a value copied under another key, written with another HMAC
 * key or simply corrupt reads as a miss (and is deleted) rather than as someone's answer.
 *
 * Failure handling has two levels:
 *  - per server, libmemcached's own: a server that fails failure_limit times is ejected from the
 *    ketama ring (its keys go to the others) and tried again after retry_timeout_ms;
 *  - for the tier, a breaker here: when every server keeps failing, memcached is not asked at
 *    all for breaker_open_ms, then one probe decides whether to resume.
 * Memcached trouble is never the caller's error: a get is a miss, a put or del is dropped, a
 * lock is granted (see mc_lock), and the stats count it.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libmemcached-1.0/memcached.h>
#include <libmemcachedutil-1.0/pool.h>
#include <openssl/evp.h>

#include "../core/clock.h"
#include "../core/log.h"
#include "cache.h"
#include "memcached_int.h"

#define HMAC_KEY_MIN 16
#define LOCK_SUFFIX ":lock"
#define LOCK_KEY_MAX (CACHE_KEY_MAX + sizeof(LOCK_SUFFIX)) /* with its NUL */
/* Connection-level failures in a row, with every server among them, that open the breaker. */
#define BREAKER_FAILS 8
#define POOL_MAX 1024
#define TIMEOUT_MAX_MS 60000
#define RETRY_MAX_MS 86400000 /* a day */

/* One operation's handle and start time, from op_begin to op_end. */
struct op {
	memcached_st *h;
	int64_t t0_us;
};

static void count(atomic_ulong *c, unsigned long v)
{
	atomic_fetch_add_explicit(c, v, memory_order_relaxed);
}

static int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* --- breaker ------------------------------------------------------------------------------- */

static enum br_verdict breaker_allow(struct breaker *b, int64_t now)
{
	enum br_verdict v = BR_PASS;

	pthread_mutex_lock(&b->mu);
	if (b->state == BR_PROBING) {
		v = BR_SKIP; /* one probe at a time */
	} else if (b->state == BR_OPEN) {
		v = now < b->until ? BR_SKIP : BR_PROBE;
		if (v == BR_PROBE)
			b->state = BR_PROBING;
	}
	pthread_mutex_unlock(&b->mu);
	return v;
}

static void breaker_success(struct breaker *b)
{
	bool closed = false;

	pthread_mutex_lock(&b->mu);
	/* Any answer closes it: a straggler that started before it opened counts as a probe. */
	closed = b->state != BR_CLOSED;
	b->state = BR_CLOSED;
	b->run = 0;
	b->failing = 0;
	pthread_mutex_unlock(&b->mu);
	if (closed)
		log_info("cache: memcached answers again; using it again");
}

static void breaker_failure(struct breaker *b, uint64_t servers, int64_t now)
{
	bool opened = false;

	pthread_mutex_lock(&b->mu);
	if (b->state == BR_PROBING) {
		/* The probe failed: open again, quietly (it never closed). */
		b->state = BR_OPEN;
		b->until = now + b->open_ms;
	} else if (b->state == BR_CLOSED) {
		b->run++;
		b->failing |= servers;
		if (b->run >= BREAKER_FAILS && (b->failing & b->all) == b->all) {
			b->state = BR_OPEN;
			b->until = now + b->open_ms;
			b->opens++;
			opened = true;
		}
	}
	pthread_mutex_unlock(&b->mu);
	if (opened)
		log_warn(
		    "cache: every memcached server is failing; not asking memcached for %" PRId64
		    " ms",
		    b->open_ms);
}

/* A probe that could not run (no handle free): the next operation probes instead. */
static void breaker_abandon(struct breaker *b, int64_t now)
{
	pthread_mutex_lock(&b->mu);
	if (b->state == BR_PROBING) {
		b->state = BR_OPEN;
		b->until = now;
	}
	pthread_mutex_unlock(&b->mu);
}

/* --- handles ------------------------------------------------------------------------------- */

/*
 * libmemcachedutil 1.1.4's own timed wait (memcached_pool_fetch with a relative time) turns
 * {0, 20 ms} into "time(NULL) + 0 s, 20 ms past the second": mostly already past, so it fails
 * at once, and a one-second wait lasts anywhere from 0 to 1 s. So the wait is here: the gate
 * admits at most pool_size threads, and each then finds a handle (or room to clone one) and
 * fetches it without waiting.
 */
static bool gate_enter(struct gate *g, int64_t wait_ms)
{
	int64_t deadline = clock_mono_ms() + wait_ms;
	bool ok;

	pthread_mutex_lock(&g->mu);
	while (g->free == 0)
		if (clock_cond_wait_until(&g->cv, &g->mu, deadline))
			break;
	ok = g->free > 0;
	if (ok)
		g->free--;
	pthread_mutex_unlock(&g->mu);
	return ok;
}

static void gate_leave(struct gate *g)
{
	pthread_mutex_lock(&g->mu);
	g->free++;
	pthread_cond_signal(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

static memcached_st *handle_get(struct mc *m)
{
	memcached_return_t rc;
	memcached_st *h;

	if (!gate_enter(&m->gate, m->wait_ms))
		return NULL;
	/* NULL also when cloning a handle ran out of memory (rc then says SUCCESS). */
	h = memcached_pool_fetch(m->pool, NULL, &rc);
	if (!h)
		gate_leave(&m->gate);
	return h;
}

static void handle_put(struct mc *m, memcached_st *h)
{
	memcached_pool_release(m->pool, h);
	gate_leave(&m->gate);
}

/* --- operations' bookkeeping --------------------------------------------------------------- */

enum rc_class { RC_ANSWER, RC_BAD_ANSWER, RC_DOWN };

/*
 * RC_ANSWER: the server answered as servers do. RC_DOWN: it could not be reached or did not
 * answer in time (what the breaker counts). RC_BAD_ANSWER: anything else (a refusal, garbage,
 * no memory here): an error, but memcached is there.
 */
static enum rc_class rc_class(memcached_return_t rc)
{
	switch (rc) {
	case MEMCACHED_SUCCESS:
	case MEMCACHED_STORED:
	case MEMCACHED_DELETED:
	case MEMCACHED_END:
	case MEMCACHED_NOTFOUND:
	case MEMCACHED_NOTSTORED:
	case MEMCACHED_DATA_EXISTS:
		return RC_ANSWER;
	case MEMCACHED_FAILURE: /* mget: no server took the request */
	case MEMCACHED_HOST_LOOKUP_FAILURE:
	case MEMCACHED_CONNECTION_FAILURE:
	case MEMCACHED_WRITE_FAILURE:
	case MEMCACHED_READ_FAILURE:
	case MEMCACHED_ERRNO:
	case MEMCACHED_TIMEOUT:
	case MEMCACHED_NO_SERVERS:
	case MEMCACHED_SERVER_MARKED_DEAD:
	case MEMCACHED_SERVER_TEMPORARILY_DISABLED:
	case MEMCACHED_IN_PROGRESS:
	case MEMCACHED_SOME_ERRORS:
		return RC_DOWN;
	default:
		return RC_BAD_ANSWER;
	}
}

/*
 * Whether the handle's connections may hold a reply nobody will read: libmemcached 1.1 leaves
 * the socket open after a timeout, and a late reply would then answer the next request on it
 * (an old "STORED" taken for a lock that was refused). Such connections are closed.
 */
static bool rc_desyncs(memcached_return_t rc)
{
	return rc == MEMCACHED_TIMEOUT || rc == MEMCACHED_PROTOCOL_ERROR ||
	       rc == MEMCACHED_UNKNOWN_READ_FAILURE || rc == MEMCACHED_IN_PROGRESS;
}

/* The bit of the server at position i of a handle. */
static uint64_t bit(unsigned i)
{
	return (uint64_t)1 << i;
}

/* The bit of the server that key maps to on h; every bit when that cannot be told. */
static uint64_t server_bit(const struct mc *m, memcached_st *h, const char *key, size_t len)
{
	memcached_return_t rc;
	const memcached_instance_st *inst = memcached_server_by_key(h, key, len, &rc);

	for (unsigned i = 0; inst && i < m->nservers; i++)
		if (memcached_server_instance_by_position(h, i) == inst)
			return bit(i);
	return m->br.all;
}

/*
 * The bit of the server libmemcached last gave up on during this operation (a failed connect, a
 * server marked dead), 0 if none. Asked before the key's server: the failure that ejects a
 * server also moves its keys to another, which did not fail.
 */
static uint64_t disconnected_bit(const struct mc *m, memcached_st *h)
{
	const memcached_instance_st *d = memcached_server_get_last_disconnect(h);

	for (unsigned i = 0; d && i < m->nservers; i++) {
		const memcached_instance_st *x = memcached_server_instance_by_position(h, i);

		if (x && memcached_server_port(x) == memcached_server_port(d) &&
		    strcmp(memcached_server_name(x), memcached_server_name(d)) == 0)
			return bit(i);
	}
	return 0;
}

/* The servers of h still owing a reply: they did not answer in time. */
static uint64_t servers_pending(const struct mc *m, memcached_st *h)
{
	uint64_t bits = 0;

	for (unsigned i = 0; i < m->nservers; i++) {
		const memcached_instance_st *inst = memcached_server_instance_by_position(h, i);

		if (inst && memcached_server_response_count(inst) > 0)
			bits |= bit(i);
	}
	return bits;
}

/* Starts an operation: false when memcached is to be skipped (breaker open, no handle free). */
static bool op_begin(struct mc *m, struct op *op)
{
	enum br_verdict v = breaker_allow(&m->br, clock_mono_ms());

	memset(op, 0, sizeof(*op));
	if (v == BR_SKIP) {
		count(&m->n.skipped, 1);
		return false;
	}
	op->h = handle_get(m);
	if (!op->h) {
		/* Every handle busy for wait_ms: the pool is the bound, not memcached's health. */
		count(&m->n.skipped, 1);
		count(&m->n.errors, 1);
		if (v == BR_PROBE)
			breaker_abandon(&m->br, clock_mono_ms());
		return false;
	}
	/* So that disconnected_bit sees this operation's failures only. */
	memcached_reset_last_disconnected_server(op->h);
	count(&m->n.ops, 1);
	op->t0_us = mono_us();
	return true;
}

/*
 * Ends an operation whose worst result was rc. answered: some server answered, so memcached is
 * not all down (the breaker hears a success). down: when nothing answered, the servers that
 * failed (the breaker hears a failure of those). reset: close the handle's connections (see
 * rc_desyncs). Releases the handle.
 */
static void op_end(struct mc *m, struct op *op, memcached_return_t rc, bool answered, uint64_t down,
		   bool reset)
{
	count(&m->n.latency_us, (unsigned long)(mono_us() - op->t0_us));
	if (rc_class(rc) != RC_ANSWER)
		count(&m->n.errors, 1);
	if (answered)
		breaker_success(&m->br);
	else
		breaker_failure(&m->br, down, clock_mono_ms());
	if (reset)
		memcached_quit(op->h);
	handle_put(m, op->h);
	op->h = NULL;
}

/* Ends a one-key operation. */
static void op_end1(struct mc *m, struct op *op, memcached_return_t rc, const char *key, size_t len)
{
	uint64_t down = 0;

	if (rc_class(rc) == RC_DOWN) {
		down = disconnected_bit(m, op->h);
		if (!down)
			down = server_bit(m, op->h, key, len);
	}
	op_end(m, op, rc, rc_class(rc) != RC_DOWN, down, rc_desyncs(rc));
}

/* --- get_many ------------------------------------------------------------------------------ */

/* A valid key of a get_many: the request is sorted by key so that duplicates go once. */
struct slot {
	const char *key;
	size_t len;
	size_t i;  /* its place in keys[] and out[] */
	bool bad;  /* memcached held a value that is not ours: delete it */
	bool seen; /* a reply came for it */
};

static int slot_cmp(const void *a, const void *b)
{
	const struct slot *x = a, *y = b;
	int c = memcmp(x->key, y->key, x->len < y->len ? x->len : y->len);

	if (c)
		return c;
	return (x->len > y->len) - (x->len < y->len);
}

/* Everything one get_many needs, allocated once. */
struct batch {
	struct slot *s;	   /* valid keys, sorted */
	size_t ns;	   /* how many */
	const char **keys; /* distinct keys, for mget */
	size_t *lens;
	size_t nk;
};

static void batch_free(struct batch *b)
{
	free(b->s);
	free(b->keys);
	free(b->lens);
	memset(b, 0, sizeof(*b));
}

static enum mdm_err batch_make(struct batch *b, const char *const *keys, size_t n)
{
	memset(b, 0, sizeof(*b));
	b->s = calloc(n, sizeof(*b->s));
	b->keys = calloc(n, sizeof(*b->keys));
	b->lens = calloc(n, sizeof(*b->lens));
	if (!b->s || !b->keys || !b->lens) {
		batch_free(b);
		return MDM_ERR_NOMEM;
	}
	for (size_t i = 0; i < n; i++)
		if (cache_key_valid(keys[i]))
			b->s[b->ns++] =
			    (struct slot){.key = keys[i], .len = strlen(keys[i]), .i = i};
	if (b->ns)
		qsort(b->s, b->ns, sizeof(*b->s), slot_cmp);
	for (size_t j = 0; j < b->ns; j++) {
		if (j && slot_cmp(&b->s[j - 1], &b->s[j]) == 0)
			continue;
		b->keys[b->nk] = b->s[j].key;
		b->lens[b->nk++] = b->s[j].len;
	}
	return MDM_OK;
}

/* The first slot with key (len bytes), NULL when the batch has none. */
static struct slot *batch_find(struct batch *b, const char *key, size_t len)
{
	struct slot probe = {.key = key, .len = len};
	struct slot *x = bsearch(&probe, b->s, b->ns, sizeof(*b->s), slot_cmp);

	while (x && x > b->s && slot_cmp(x - 1, x) == 0)
		x--;
	return x;
}

/* Takes one reply: decodes it into the first slot of its key. */
static enum mdm_err take_reply(struct mc *m, struct batch *b, const memcached_result_st *r,
			       int64_t now, struct cache_entry *out)
{
	struct slot *x =
	    batch_find(b, memcached_result_key_value(r), memcached_result_key_length(r));
	enum mdm_err err;

	if (!x || x->seen)
		return MDM_OK; /* not asked for, or twice: ignore */
	x->seen = true;
	err = mc_value_decode(m, x->key, memcached_result_value(r), memcached_result_length(r), now,
			      &out[x->i]);
	if (err == MDM_ERR_PARSE) {
		x->bad = true;
		count(&m->n.bad_values, 1);
		return MDM_OK;
	}
	return err;
}

/* The bits of the servers of keys that got no reply. */
static uint64_t servers_unanswered(const struct mc *m, memcached_st *h, const struct batch *b)
{
	uint64_t bits = 0;

	for (size_t j = 0; j < b->ns; j++)
		if (!b->s[j].seen)
			bits |= server_bit(m, h, b->s[j].key, b->s[j].len);
	return bits;
}

static bool fetch_done(memcached_return_t frc)
{
	return frc == MEMCACHED_END || frc == MEMCACHED_NOTFOUND;
}

/*
 * What went wrong in an mget and its fetches, MEMCACHED_SUCCESS if nothing. libmemcached 1.1.4
 * hides some failures: a server that does not connect is skipped when another takes the mget
 * (which then succeeds; the error stays on the handle), and when a wait on several servers at
 * once times out, the fetches end as a plain NOTFOUND with no error at all, the servers still
 * owing their replies. So the handle's last error and the replies owed count too.
 */
static memcached_return_t batch_result(memcached_st *h, memcached_return_t rc,
				       memcached_return_t frc, uint64_t pending)
{
	memcached_return_t last = memcached_last_error(h);

	if (!fetch_done(frc))
		return frc;
	if (pending)
		return MEMCACHED_TIMEOUT;
	if (rc != MEMCACHED_SUCCESS)
		return rc;
	return rc_class(last) == RC_ANSWER ? MEMCACHED_SUCCESS : last;
}

/*
 * One mget for all keys, then the replies as they come. Fills out; MDM_ERR_NOMEM is the only
 * error (memcached's are misses). The handle is released.
 */
static enum mdm_err fetch_batch(struct mc *m, struct op *op, struct batch *b,
				struct cache_entry *out)
{
	memcached_result_st res, *r;
	memcached_return_t rc, frc = MEMCACHED_END;
	enum mdm_err err = MDM_OK;
	uint64_t down, pending;
	size_t replies = 0;
	int64_t now = m->now();

	rc = memcached_mget(op->h, b->keys, b->lens, b->nk);
	if (rc == MEMCACHED_SUCCESS || rc == MEMCACHED_SOME_ERRORS) {
		memcached_result_create(op->h, &res);
		/* Even out of memory, every reply is read so that the handle stays in step. */
		while ((r = memcached_fetch_result(op->h, &res, &frc)) != NULL) {
			replies++;
			if (err == MDM_OK)
				err = take_reply(m, b, r, now, out);
		}
		memcached_result_free(&res);
	}
	pending = servers_pending(m, op->h);
	rc = batch_result(op->h, rc, frc, pending);
	down = pending | disconnected_bit(m, op->h);
	if (rc_class(rc) == RC_DOWN && !down)
		down = servers_unanswered(m, op->h, b);
	/* A reply proves some server is up, whatever happened to the others. */
	op_end(m, op, rc, replies > 0 || rc_class(rc) != RC_DOWN, down,
	       pending || !fetch_done(frc) || rc_desyncs(rc));
	return err;
}

/* Deletes the values that were not ours, so that the next get does not pay for them again. */
static void delete_bad(struct mc *m, const struct batch *b)
{
	struct op op;

	for (size_t j = 0; j < b->ns; j++) {
		if (!b->s[j].bad || !op_begin(m, &op))
			continue;
		op_end1(m, &op, memcached_delete(op.h, b->s[j].key, b->s[j].len, 0), b->s[j].key,
			b->s[j].len);
	}
}

/* Gives each duplicate key its own copy of the first one's entry. */
static enum mdm_err fill_duplicates(const struct batch *b, struct cache_entry *out)
{
	for (size_t j = 1; j < b->ns; j++) {
		const struct cache_entry *src = &out[b->s[j - 1].i];
		struct cache_entry *dst = &out[b->s[j].i];

		if (slot_cmp(&b->s[j - 1], &b->s[j]) != 0 || src->state == CACHE_MISS)
			continue;
		*dst = *src;
		dst->val = malloc(src->len + 1);
		if (!dst->val)
			return MDM_ERR_NOMEM;
		memcpy(dst->val, src->val, src->len + 1);
	}
	return MDM_OK;
}

static void count_states(struct mc *m, const struct batch *b, const struct cache_entry *out)
{
	unsigned long hit = 0, stale = 0;

	for (size_t j = 0; j < b->ns; j++) {
		hit += out[b->s[j].i].state == CACHE_FRESH;
		stale += out[b->s[j].i].state == CACHE_STALE;
	}
	count(&m->n.hits, hit);
	count(&m->n.stale_hits, stale);
	count(&m->n.misses, b->ns - hit - stale);
}

static enum mdm_err mc_get_many(struct cache *c, const char *const *keys, size_t n,
				struct cache_entry *out)
{
	struct mc *m = c->priv;
	struct batch b;
	struct op op;
	enum mdm_err err;

	if (n && (!keys || !out))
		return MDM_ERR_INVALID;
	for (size_t i = 0; i < n; i++)
		memset(&out[i], 0, sizeof(out[i]));
	if (n == 0)
		return MDM_OK;
	err = batch_make(&b, keys, n);
	if (err)
		return err;
	if (b.nk && op_begin(m, &op))
		err = fetch_batch(m, &op, &b, out);
	if (!err)
		err = fill_duplicates(&b, out);
	if (!err) {
		count_states(m, &b, out);
		delete_bad(m, &b);
	} else {
		/* All or nothing, as in every implementation. */
		for (size_t i = 0; i < n; i++)
			cache_entry_clear(&out[i]);
	}
	batch_free(&b);
	return err;
}

/* --- put, del, lock ------------------------------------------------------------------------ */

static enum mdm_err mc_put(struct cache *c, const char *key, const void *val, size_t len,
			   const struct cache_times *t)
{
	struct mc *m = c->priv;
	struct op op;
	char *enc;
	size_t enclen = 0;
	enum mdm_err err;
	int64_t now;
	bool dead;

	now = m->now();
	err = cache_put_check(key, val, len, t, m->max_value, now, &dead);
	if (err || dead)
		return err;
	/* Encoded first: a bad value is refused whatever state memcached is in. */
	err = mc_value_encode(m, key, val, len, t, &enc, &enclen);
	if (err)
		return err;
	if (op_begin(m, &op))
		op_end1(m, &op,
			memcached_set(op.h, key, strlen(key), enc, enclen,
				      (time_t)mc_expiry_s(t->stale_until - now), 0),
			key, strlen(key));
	free(enc);
	return MDM_OK;
}

static enum mdm_err mc_del(struct cache *c, const char *key)
{
	struct mc *m = c->priv;
	struct op op;

	if (!cache_key_valid(key))
		return MDM_ERR_INVALID;
	if (op_begin(m, &op))
		op_end1(m, &op, memcached_delete(op.h, key, strlen(key), 0), key, strlen(key));
	return MDM_OK;
}

static enum mdm_err lock_key(const char *key, char out[LOCK_KEY_MAX], size_t *len)
{
	int n;

	if (!cache_key_valid(key))
		return MDM_ERR_INVALID;
	n = snprintf(out, LOCK_KEY_MAX, "%s" LOCK_SUFFIX, key);
	if (n < 0 || (size_t)n >= LOCK_KEY_MAX)
		return MDM_ERR_INVALID;
	*len = (size_t)n;
	return MDM_OK;
}

/*
 * An add of key + ":lock": memcached stores it for one caller only. When memcached cannot say
 * (down, breaker open, no handle free), the answer is MDM_OK: memcached trouble must not stop
 * every instance from refreshing; each falls back to its in-process lock (the tiered cache
 * takes l1's first), so at worst one refresh runs per instance instead of one in all.
 */
static enum mdm_err mc_lock(struct cache *c, const char *key, int64_t ttl_ms)
{
	struct mc *m = c->priv;
	char lk[LOCK_KEY_MAX];
	size_t lklen = 0;
	memcached_return_t rc;
	struct op op;

	if (ttl_ms <= 0 || lock_key(key, lk, &lklen) != MDM_OK)
		return MDM_ERR_INVALID;
	if (!op_begin(m, &op))
		return MDM_OK;
	rc = memcached_add(op.h, lk, lklen, "1", 1, (time_t)mc_expiry_s(ttl_ms), 0);
	op_end1(m, &op, rc, lk, lklen);
	if (rc == MEMCACHED_NOTSTORED || rc == MEMCACHED_DATA_EXISTS) {
		count(&m->n.lock_busy, 1);
		return MDM_ERR_BUSY;
	}
	return MDM_OK;
}

/* Errors are ignored: an unreleased lock lapses by its expiry anyway. */
static void mc_unlock(struct cache *c, const char *key)
{
	struct mc *m = c->priv;
	char lk[LOCK_KEY_MAX];
	size_t lklen = 0;
	struct op op;

	if (lock_key(key, lk, &lklen) != MDM_OK || !op_begin(m, &op))
		return;
	op_end1(m, &op, memcached_delete(op.h, lk, lklen, 0), lk, lklen);
}

/* --- add, gets, cas ------------------------------------------------------------------------- */

/* What memcached answered a store with, as the interface says it. */
static enum mdm_err store_result(memcached_return_t rc)
{
	switch (rc) {
	case MEMCACHED_SUCCESS:
	case MEMCACHED_STORED:
		return MDM_OK;
	case MEMCACHED_NOTSTORED:
	case MEMCACHED_DATA_EXISTS:
		return MDM_ERR_EXISTS;
	case MEMCACHED_NOTFOUND:
		return MDM_ERR_NOTFOUND;
	case MEMCACHED_E2BIG:
		return MDM_ERR_TOOBIG;
	default:
		return MDM_ERR_UNAVAILABLE;
	}
}

/* The tagged form of val for add and cas: times now .. now + ttl (0: never lapses). */
static enum mdm_err coord_encode(struct mc *m, const char *key, const void *val, size_t len,
				 int64_t ttl_ms, char **enc, size_t *enclen, time_t *exp)
{
	int64_t now = m->now();
	int64_t until = ttl_ms && now <= INT64_MAX - ttl_ms ? now + ttl_ms : INT64_MAX;
	struct cache_times t = {now, until, until};

	if (!cache_key_valid(key) || (len && !val) || ttl_ms < 0 || now < 0)
		return MDM_ERR_INVALID;
	if (len > m->max_value)
		return MDM_ERR_TOOBIG;
	*exp = ttl_ms ? (time_t)mc_expiry_s(ttl_ms) : 0;
	return mc_value_encode(m, key, val, len, &t, enc, enclen);
}

/*
 * What memcached holds under key, raw, with its cas: MDM_OK (*raw malloc'd), MDM_ERR_NOTFOUND,
 * MDM_ERR_UNAVAILABLE or MDM_ERR_NOMEM. An mget of one key, as memcached_get has no cas.
 */
static enum mdm_err raw_gets(struct mc *m, const char *key, char **raw, size_t *rawlen,
			     uint64_t *cas)
{
	size_t klen = strlen(key);
	memcached_result_st res, *r;
	memcached_return_t rc, frc = MEMCACHED_END;
	enum mdm_err err = MDM_ERR_NOTFOUND;
	struct op op;

	*raw = NULL;
	if (!op_begin(m, &op))
		return MDM_ERR_UNAVAILABLE;
	rc = memcached_mget(op.h, &key, &klen, 1);
	if (rc == MEMCACHED_SUCCESS) {
		memcached_result_create(op.h, &res);
		/* Every reply is read, so that the handle stays in step. */
		while ((r = memcached_fetch_result(op.h, &res, &frc)) != NULL) {
			if (*raw || memcached_result_key_length(r) != klen ||
			    memcmp(memcached_result_key_value(r), key, klen) != 0)
				continue;
			*rawlen = memcached_result_length(r);
			*raw = malloc(*rawlen + 1);
			if (!*raw) {
				err = MDM_ERR_NOMEM;
				continue;
			}
			memcpy(*raw, memcached_result_value(r), *rawlen);
			(*raw)[*rawlen] = '\0';
			*cas = memcached_result_cas(r);
			err = MDM_OK;
		}
		memcached_result_free(&res);
		rc = batch_result(op.h, rc, frc, servers_pending(m, op.h));
	}
	op_end1(m, &op, rc, key, klen);
	if (rc_class(rc) != RC_ANSWER) {
		free(*raw);
		*raw = NULL;
		return MDM_ERR_UNAVAILABLE;
	}
	return err;
}

/*
 * key's value, verified, into out with its cas. MDM_ERR_NOTFOUND also for a value that is not
 * ours (*bad set, *cas its version, so that the caller may replace it) or that has lapsed.
 */
static enum mdm_err mc_gets_checked(struct mc *m, const char *key, struct cache_entry *out,
				    uint64_t *cas, bool *bad)
{
	char *raw = NULL;
	size_t rawlen = 0;
	enum mdm_err err;

	*bad = false;
	if (!cache_key_valid(key))
		return MDM_ERR_INVALID;
	err = raw_gets(m, key, &raw, &rawlen, cas);
	if (err)
		return err;
	err = mc_value_decode(m, key, raw, rawlen, m->now(), out);
	free(raw);
	if (err == MDM_ERR_PARSE) {
		count(&m->n.bad_values, 1);
		*bad = true;
		return MDM_ERR_NOTFOUND;
	}
	if (err)
		return err;
	if (!out->val)
		return MDM_ERR_NOTFOUND; /* lapsed by our clock */
	out->state = CACHE_FRESH;
	return MDM_OK;
}

static enum mdm_err mc_get_cas(struct cache *c, const char *key, struct cache_entry *out,
			       uint64_t *cas)
{
	bool bad;
	enum mdm_err err = mc_gets_checked(c->priv, key, out, cas, &bad);

	if (err) {
		cache_entry_clear(out);
		*cas = 0;
	}
	return err;
}

/* One store of an encoded value: add, set (cas CACHE_CAS_ANY) or cas. */
static enum mdm_err mc_store(struct mc *m, const char *key, const char *enc, size_t enclen,
			     time_t exp, bool add, uint64_t cas)
{
	size_t klen = strlen(key);
	memcached_return_t rc;
	struct op op;

	if (!op_begin(m, &op))
		return MDM_ERR_UNAVAILABLE;
	if (add)
		rc = memcached_add(op.h, key, klen, enc, enclen, exp, 0);
	else if (cas == CACHE_CAS_ANY)
		rc = memcached_set(op.h, key, klen, enc, enclen, exp, 0);
	else
		rc = memcached_cas(op.h, key, klen, enc, enclen, exp, 0, cas);
	op_end1(m, &op, rc, key, klen);
	return store_result(rc);
}

/*
 * A value that is not ours (forged, another HMAC key, corrupt) must not block an add for its
 * lifetime: it is replaced by cas, so a genuine value written meanwhile still wins.
 */
static enum mdm_err mc_add(struct cache *c, const char *key, const void *val, size_t len,
			   int64_t ttl_ms)
{
	struct mc *m = c->priv;
	struct cache_entry e = {0};
	char *enc = NULL;
	size_t enclen = 0;
	uint64_t cas = 0;
	time_t exp = 0;
	bool bad = false;
	enum mdm_err err;

	err = coord_encode(m, key, val, len, ttl_ms, &enc, &enclen, &exp);
	if (err)
		return err;
	err = mc_store(m, key, enc, enclen, exp, true, 0);
	if (err == MDM_ERR_EXISTS) {
		enum mdm_err gerr = mc_gets_checked(m, key, &e, &cas, &bad);

		cache_entry_clear(&e);
		if (gerr == MDM_ERR_NOTFOUND && bad)
			err = mc_store(m, key, enc, enclen, exp, false, cas);
		/* Lapsed or deleted meanwhile (or lapsed by our clock only: then EXISTS again). */
		if (gerr == MDM_ERR_NOTFOUND && (!bad || err == MDM_ERR_NOTFOUND))
			err = mc_store(m, key, enc, enclen, exp, true, 0);
		if (bad)
			log_warn("cache: %s held a value that is not ours; %s", key,
				 err ? "not replaced" : "replaced");
	}
	free(enc);
	return err;
}

static enum mdm_err mc_cas(struct cache *c, const char *key, const void *val, size_t len,
			   int64_t ttl_ms, uint64_t cas)
{
	struct mc *m = c->priv;
	char *enc = NULL;
	size_t enclen = 0;
	time_t exp = 0;
	enum mdm_err err;

	err = coord_encode(m, key, val, len, ttl_ms, &enc, &enclen, &exp);
	if (!err)
		err = mc_store(m, key, enc, enclen, exp, false, cas);
	free(enc);
	return err;
}

static unsigned long load(atomic_ulong *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

static void mc_stats(struct cache *c, struct cache_stats *out)
{
	struct mc *m = c->priv;

	out->l2_hits += load(&m->n.hits);
	out->l2_stale_hits += load(&m->n.stale_hits);
	out->l2_misses += load(&m->n.misses);
	out->l2_errors += load(&m->n.errors);
	out->l2_bad_values += load(&m->n.bad_values);
	out->l2_ops += load(&m->n.ops);
	out->l2_latency_us += load(&m->n.latency_us);
	out->l2_skipped += load(&m->n.skipped);
	out->lock_busy += load(&m->n.lock_busy);
	pthread_mutex_lock(&m->br.mu);
	out->breaker_opens += m->br.opens;
	out->breaker_open += m->br.state != BR_CLOSED;
	pthread_mutex_unlock(&m->br.mu);
}

/* --- creation and destruction -------------------------------------------------------------- */

static void mc_free(struct mc *m)
{
	if (m->pool)
		memcached_pool_destroy(m->pool); /* frees the clones, hands back the master */
	memcached_free(m->master);
	EVP_MAC_CTX_free(m->mac_tmpl);
	EVP_MAC_free(m->mac);
	mc_vmemo_free(m->memo);
	if (m->key) {
		OPENSSL_cleanse(m->key, m->keylen);
		free(m->key);
	}
	if (m->locks_ready) {
		pthread_mutex_destroy(&m->br.mu);
		pthread_mutex_destroy(&m->gate.mu);
		pthread_cond_destroy(&m->gate.cv);
	}
	free(m);
}

static void mc_destroy(struct cache *c)
{
	mc_free(c->priv);
}

static const struct cache_ops mc_ops = {
    .get_many = mc_get_many,
    .put = mc_put,
    .del = mc_del,
    .lock = mc_lock,
    .unlock = mc_unlock,
    .stats = mc_stats,
    .destroy = mc_destroy,
    .add = mc_add,
    .get_cas = mc_get_cas,
    .cas = mc_cas,
};

static bool timeout_ok(int64_t ms)
{
	return ms > 0 && ms <= TIMEOUT_MAX_MS;
}

static enum mdm_err config_check(const struct cache_mc_config *cfg, char *why, size_t whysz)
{
	if (!cfg || !cfg->servers || cfg->nservers == 0 || cfg->nservers > CACHE_MC_SERVERS_MAX) {
		err_why(why, whysz, "memcached: 1 to %d servers needed", CACHE_MC_SERVERS_MAX);
		return MDM_ERR_CONFIG;
	}
	if (!cfg->hmac_key || cfg->hmac_key_len < HMAC_KEY_MIN) {
		err_why(why, whysz, "memcached: the HMAC key must have at least %d bytes",
			HMAC_KEY_MIN);
		return MDM_ERR_CONFIG;
	}
	if (cfg->pool_size == 0 || cfg->pool_size > POOL_MAX || cfg->failure_limit == 0 ||
	    cfg->max_value == 0 || cfg->max_value > SIZE_MAX / 8) {
		err_why(why, whysz, "memcached: pool_size 1..%d, failure_limit and max_value > 0",
			POOL_MAX);
		return MDM_ERR_CONFIG;
	}
	if (!timeout_ok(cfg->connect_timeout_ms) || !timeout_ok(cfg->io_timeout_ms) ||
	    cfg->retry_timeout_ms <= 0 || cfg->retry_timeout_ms > RETRY_MAX_MS ||
	    cfg->breaker_open_ms <= 0 || cfg->breaker_open_ms > RETRY_MAX_MS) {
		err_why(why, whysz,
			"memcached: timeouts must be positive (I/O at most %d ms, retry and "
			"breaker at most a day)",
			TIMEOUT_MAX_MS);
		return MDM_ERR_CONFIG;
	}
	return MDM_OK;
}

/* "host:port" or "[v6]:port" into host (without brackets) and port. */
static enum mdm_err server_parse(const char *s, char *host, size_t hostsz, in_port_t *port)
{
	const char *colon = strrchr(s, ':'), *h = s, *hend = colon;
	char *end;
	unsigned long p;

	if (!colon)
		return MDM_ERR_INVALID;
	if (s[0] == '[') {
		h = s + 1;
		hend = colon - 1;
		if (hend < h || *hend != ']')
			return MDM_ERR_INVALID;
	} else if (memchr(s, ':', (size_t)(colon - s))) {
		return MDM_ERR_INVALID; /* a bare IPv6 address: its port is ambiguous */
	}
	if (hend == h || colon[1] < '0' || colon[1] > '9')
		return MDM_ERR_INVALID;
	errno = 0;
	p = strtoul(colon + 1, &end, 10);
	if (errno || *end || p == 0 || p > 65535)
		return MDM_ERR_INVALID;
	for (const char *x = h; x < hend; x++)
		if ((unsigned char)*x <= ' ' || (unsigned char)*x > '~')
			return MDM_ERR_INVALID;
	*port = (in_port_t)p;
	return str_copyn(host, hostsz, h, (size_t)(hend - h)) ? MDM_ERR_INVALID : MDM_OK;
}

static enum mdm_err servers_add(struct mc *m, const struct cache_mc_config *cfg, char *why,
				size_t whysz)
{
	char host[256];
	in_port_t port = 0;

	for (size_t i = 0; i < cfg->nservers; i++) {
		if (!cfg->servers[i] ||
		    server_parse(cfg->servers[i], host, sizeof(host), &port) != MDM_OK) {
			err_why(why, whysz, "memcached: server %zu is not host:port", i + 1);
			return MDM_ERR_CONFIG;
		}
		if (memcached_server_add(m->master, host, port) != MEMCACHED_SUCCESS) {
			err_why(why, whysz, "memcached: cannot add server %zu", i + 1);
			return MDM_ERR_CONFIG;
		}
	}
	m->nservers = (unsigned)cfg->nservers;
	m->br.all = m->nservers == 64 ? UINT64_MAX : ((uint64_t)1 << m->nservers) - 1;
	return MDM_OK;
}

/*
 * The behaviours, and why:
 *  - text protocol: memcached's default, and what every memcached speaks;
 *  - ketama (consistent hashing, MD5 as libketama has it): adding or losing a server moves only
 *    its share of the keys, and every gateway instance maps keys alike;
 *  - timeouts in milliseconds for connect and poll, which is what bounds an operation; the
 *    socket receive and send timeouts (microseconds) match them;
 *  - TCP_NODELAY (small requests must not wait for Nagle), keep-alive (idle pooled connections
 *    through firewalls and NAT notice a dead peer);
 *  - per server failures: a failed connect puts the server in timeout for retry_timeout (its
 *    keys fail at once meanwhile); failure_limit of them eject it from the ring, its keys going
 *    to the others (as misses), until the dead timeout (= retry_timeout) has passed. Both are
 *    whole seconds for libmemcached, at least 1.
 * Each pooled handle keeps its own server state, so each one finds a dead server out by itself:
 * the worst case is pool_size x failure_limit slow operations, each bounded by connect_timeout
 * (plus io_timeout when the server accepts and then hangs), and after that one per handle every
 * retry_timeout, when it tries the server again. A small failure_limit (1-3), timeouts in tens
 * of milliseconds and a pool no bigger than the threads need keep that short; when every server
 * is down the breaker stops even that. A server that accepts connections but never answers is
 * not ejected by libmemcached at all (its connects succeed): each operation on its keys pays
 * io_timeout, and only the breaker helps, when every server is in that state.
 */
static enum mdm_err behaviours_set(struct mc *m, const struct cache_mc_config *cfg, char *why,
				   size_t whysz)
{
	/* Rounded up: at least 1, as retry_timeout_ms > 0. */
	uint64_t retry_s = (uint64_t)((cfg->retry_timeout_ms + 999) / 1000);
	const struct {
		memcached_behavior_t b;
		uint64_t v;
	} want[] = {
	    {MEMCACHED_BEHAVIOR_BINARY_PROTOCOL, 0},
	    {MEMCACHED_BEHAVIOR_DISTRIBUTION, MEMCACHED_DISTRIBUTION_CONSISTENT_KETAMA},
	    {MEMCACHED_BEHAVIOR_HASH, MEMCACHED_HASH_MD5},
	    {MEMCACHED_BEHAVIOR_KETAMA_HASH, MEMCACHED_HASH_MD5},
	    {MEMCACHED_BEHAVIOR_VERIFY_KEY, 1},
	    {MEMCACHED_BEHAVIOR_SUPPORT_CAS, 1}, /* gets, for cache_get_cas and cache_cas */
	    {MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, (uint64_t)cfg->connect_timeout_ms},
	    {MEMCACHED_BEHAVIOR_POLL_TIMEOUT, (uint64_t)cfg->io_timeout_ms},
	    {MEMCACHED_BEHAVIOR_RCV_TIMEOUT, (uint64_t)cfg->io_timeout_ms * 1000},
	    {MEMCACHED_BEHAVIOR_SND_TIMEOUT, (uint64_t)cfg->io_timeout_ms * 1000},
	    {MEMCACHED_BEHAVIOR_TCP_NODELAY, 1},
	    {MEMCACHED_BEHAVIOR_TCP_KEEPALIVE, 1},
	    {MEMCACHED_BEHAVIOR_SERVER_FAILURE_LIMIT, cfg->failure_limit},
	    {MEMCACHED_BEHAVIOR_REMOVE_FAILED_SERVERS, 1},
	    {MEMCACHED_BEHAVIOR_RETRY_TIMEOUT, retry_s},
	    {MEMCACHED_BEHAVIOR_DEAD_TIMEOUT, retry_s},
	};

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		if (memcached_behavior_set(m->master, want[i].b, want[i].v) != MEMCACHED_SUCCESS) {
			err_why(why, whysz, "memcached: libmemcached refused behaviour %d",
				(int)want[i].b);
			return MDM_ERR_CONFIG;
		}
	}
	return MDM_OK;
}

static enum mdm_err locks_init(struct mc *m)
{
	if (clock_cond_init(&m->gate.cv) != MDM_OK)
		return MDM_ERR_NOMEM;
	if (pthread_mutex_init(&m->gate.mu, NULL) != 0) {
		pthread_cond_destroy(&m->gate.cv);
		return MDM_ERR_NOMEM;
	}
	if (pthread_mutex_init(&m->br.mu, NULL) != 0) {
		pthread_mutex_destroy(&m->gate.mu);
		pthread_cond_destroy(&m->gate.cv);
		return MDM_ERR_NOMEM;
	}
	m->locks_ready = true;
	return MDM_OK;
}

static enum mdm_err mc_setup(struct mc *m, const struct cache_mc_config *cfg, char *why,
			     size_t whysz)
{
	enum mdm_err err;

	if (locks_init(m) != MDM_OK) {
		err_why(why, whysz, "memcached: no memory");
		return MDM_ERR_NOMEM;
	}
	m->key = malloc(cfg->hmac_key_len);
	m->memo = mc_vmemo_new(); /* no memory for it: every value is verified, that is all */
	m->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	m->master = memcached_create(NULL);
	if (!m->key || !m->mac || !m->master) {
		err_why(why, whysz, "memcached: no memory (or no HMAC in OpenSSL)");
		return MDM_ERR_NOMEM;
	}
	memcpy(m->key, cfg->hmac_key, cfg->hmac_key_len);
	m->keylen = cfg->hmac_key_len;
	m->mac_tmpl = mc_mac_template(m->mac, m->key, m->keylen);
	if (!m->mac_tmpl) {
		err_why(why, whysz, "memcached: cannot key HMAC-SHA256");
		return MDM_ERR_INTERNAL;
	}
	err = servers_add(m, cfg, why, whysz);
	if (!err)
		err = behaviours_set(m, cfg, why, whysz);
	if (err)
		return err;
	/* The clones are made now, connections only when first used: a server down is no error. */
	m->pool = memcached_pool_create(m->master, cfg->pool_size, cfg->pool_size);
	if (!m->pool) {
		err_why(why, whysz, "memcached: no memory for the handle pool");
		return MDM_ERR_NOMEM;
	}
	return MDM_OK;
}

struct cache *cache_mc_create(const struct cache_mc_config *cfg, char *why, size_t whysz)
{
	struct mc *m;

	if (config_check(cfg, why, whysz) != MDM_OK)
		return NULL;
	m = calloc(1, sizeof(*m));
	if (!m) {
		err_why(why, whysz, "memcached: no memory");
		return NULL;
	}
	m->base.ops = &mc_ops;
	m->base.priv = m;
	m->gate.free = cfg->pool_size;
	m->br.open_ms = cfg->breaker_open_ms;
	/* A handle frees up within one operation: waiting longer is waiting for trouble. */
	m->wait_ms = cfg->io_timeout_ms;
	m->max_value = cfg->max_value;
	m->now = cfg->now ? cfg->now : clock_wall_ms;
	if (mc_setup(m, cfg, why, whysz) != MDM_OK) {
		mc_free(m);
		return NULL;
	}
	return &m->base;
}
