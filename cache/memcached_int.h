/*
 * memcached_int: what the memcached tier's files share (memcached.c: the pool, the breaker and
 * the operations; memcached_value.c: the value envelope, its HMAC tag and the verification
 * memo). Private to cache/memcached*.c.
 */
#ifndef MDM_CACHE_MEMCACHED_INT_H
#define MDM_CACHE_MEMCACHED_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <libmemcached-1.0/memcached.h>
#include <libmemcachedutil-1.0/pool.h>
#include <openssl/evp.h>

#include "cache.h"

#define VALUE_VERSION 1
#define TAG_LEN 32 /* HMAC-SHA256 */
#define TAG_HEX (2 * TAG_LEN)
/* Memcached reads an expiry above 30 days as an absolute Unix time: stay below. */
#define EXPIRY_MAX_S 2592000
/* The JSON around the payload: field names, three int64 and the tag. */
#define ENVELOPE_MAX 256

/* --- the breaker (memcached.c) --------------------------------------------------------------- */

enum br_state { BR_CLOSED = 0, BR_OPEN, BR_PROBING };
enum br_verdict { BR_PASS, BR_PROBE, BR_SKIP };

/*
 * Opens only when every server is failing: it counts connection-level failures since the last
 * success and which servers they came from, and needs both BREAKER_FAILS failures and all the
 * servers among them. One dead server out of two fails only its own keys' operations; the other
 * server's successes reset the count, and even a long run of the dead one's failures never
 * covers the live one.
 */
struct breaker {
	pthread_mutex_t mu;
	enum br_state state;
	unsigned run;	  /* connection-level failures since the last success */
	uint64_t failing; /* servers those failures came from, one bit each */
	uint64_t all;	  /* every server's bit */
	int64_t open_ms;
	int64_t until; /* monotonic ms: an open breaker lets one probe through from then */
	unsigned long opens;
};

/* --- the tier ------------------------------------------------------------------------------ */

/* Handles in use, bounded by the pool size, with a wait that honours milliseconds. */
struct gate {
	pthread_mutex_t mu;
	pthread_cond_t cv; /* on CLOCK_MONOTONIC */
	unsigned free;
};

struct counters {
	atomic_ulong hits, stale_hits, misses, errors, bad_values, ops, latency_us, skipped,
	    lock_busy;
};

struct mc {
	struct cache base;
	memcached_st *master; /* configured once; the pool clones it */
	memcached_pool_st *pool;
	struct gate gate;
	struct breaker br;
	struct counters n;
	struct vmemo *memo;
	EVP_MAC *mac;
	EVP_MAC_CTX *mac_tmpl; /* keyed once; each tag works on a copy (no per-call digest
				* look-up or key schedule) */
	unsigned char *key;    /* the HMAC key, wiped on destroy */
	size_t keylen;
	unsigned nservers;
	int64_t wait_ms; /* longest wait for a free handle */
	size_t max_value;
	int64_t (*now)(void);
	bool locks_ready; /* mutexes and condition set up: destroy them */
};

/* --- values (memcached_value.c) ------------------------------------------------------------- */

/* mc_expiry_s: ms as whole seconds for memcached: rounded up, at least 1, below its 30-day limit.
 */
uint32_t mc_expiry_s(int64_t ms);
/* mc_mac_template: an HMAC-SHA256 context keyed once (each tag works on a copy); NULL: failed. */
EVP_MAC_CTX *mc_mac_template(EVP_MAC *mac, const unsigned char *key, size_t keylen);
/* mc_value_encode: the stored form of a put, malloc'd into *out (free() it). MDM_ERR_INVALID:
 * not UTF-8. */
enum mdm_err mc_value_encode(const struct mc *m, const char *key, const void *val, size_t len,
			     const struct cache_times *t, char **out, size_t *outlen);
/*
 * mc_value_decode: reads what memcached held under key into out (through the verification
 * memo). MDM_ERR_PARSE: not a value of ours (not JSON, another shape or version, times out of
 * order, a tag that does not match key, times and payload). A value past stale_until by our
 * clock is a plain miss (MDM_OK, out->val NULL).
 */
enum mdm_err mc_value_decode(struct mc *m, const char *key, const char *val, size_t len,
			     int64_t now, struct cache_entry *out);
/* mc_vmemo_new / mc_vmemo_free: the verification memo (NULL: no memory; the tier works without). */
struct vmemo *mc_vmemo_new(void);
void mc_vmemo_free(struct vmemo *v);

#endif
