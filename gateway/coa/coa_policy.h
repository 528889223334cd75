/*
 * coa_policy: when a CoA delivery is tried again and when it is final; every default of the
 * CoA settings written once (the configuration, coa.c and coa_radius.c take them from here).
 *
 * Two levels, one inside the other:
 *  - within one attempt, per NAS (coa_radius.c, RFC 5176): the request is sent up to nas[].tries
 *    times with the same Identifier, waiting nas[].timeout, then 2x, 4x ... that for a reply; no
 *    valid reply after the last wait: COA_NO_ANSWER. The webhook sink makes one HTTP request per
 *    attempt, the MnT sink two (the session lookup, then the CoA), each bounded by its timeout.
 *  - per delivery (coa.c): an attempt that ends COA_NO_ANSWER or COA_ERROR is made again, up to
 *    coa.max_attempts attempts in all, waiting coa.backoff before the second, then 2x, 4x ...
 *    that; COA_OK, COA_REFUSED and COA_NO_SESSION are final at once.
 *
 * Worst case, from a delivery's first send until it is final (its time in the queue, behind
 * the same session or under the rate limit aside):
 *   one attempt    radius: timeout * (2^tries - 1)   mnt: 2 * timeout   webhook: timeout
 *   the delivery   max_attempts * one attempt + backoff * (2^(max_attempts - 1) - 1)
 * With the defaults: RFC 5176 3 * 7 s + 6 s = 27 s, MnT 3 * 10 s + 6 s = 36 s, webhook
 * 3 * 5 s + 6 s = 21 s (COA_WORST_*_MS below); with every setting at its maximum (30 s, 10
 * tries; 60 s; 10 attempts, 10 min) it is bounded too, by the same formula. docs/coa.md says
 * the same.
 */
#ifndef MDM_COA_POLICY_H
#define MDM_COA_POLICY_H

#include <stdint.h>

/* --- per NAS (nas[]) --- */
#define COA_NAS_PORT_DEFAULT 3799	/* RFC 5176 */
#define COA_NAS_TIMEOUT_MS_DEFAULT 1000 /* first wait for a reply */
#define COA_NAS_TRIES_DEFAULT 3		/* sends in one attempt */

/* --- the HTTP sinks (coa.mnt, coa.webhook) --- */
#define COA_HTTP_TIMEOUT_MS_DEFAULT 5000 /* one request */

/* --- per delivery (coa) --- */
#define COA_MAX_ATTEMPTS_DEFAULT 3
#define COA_BACKOFF_MS_DEFAULT 2000 /* before the second attempt, doubling after */
#define COA_RATE_PER_SEC_DEFAULT 50
#define COA_QUEUE_MAX_DEFAULT 100000

/* coa_policy_nas_wait_ms: how long the sends-th send of an attempt (from 1) waits for a reply. */
static inline int64_t coa_policy_nas_wait_ms(int64_t timeout_ms, unsigned sends)
{
	return timeout_ms << (sends - 1);
}

/* coa_policy_retry_wait_ms: the wait before the next attempt after attempts (from 1) failed. */
static inline int64_t coa_policy_retry_wait_ms(int64_t backoff_ms, unsigned attempts)
{
	return backoff_ms << (attempts - 1);
}

/* coa_policy_radius_attempt_ms: the longest one RFC 5176 attempt takes (tries <= 62). */
static inline int64_t coa_policy_radius_attempt_ms(int64_t timeout_ms, unsigned tries)
{
	return timeout_ms * (int64_t)((1ull << tries) - 1);
}

/* coa_policy_worst_ms: the longest a delivery takes until final, for attempts of attempt_ms. */
static inline int64_t coa_policy_worst_ms(int64_t attempt_ms, unsigned max_attempts,
					  int64_t backoff_ms)
{
	int64_t waits = max_attempts ? backoff_ms * (int64_t)((1ull << (max_attempts - 1)) - 1) : 0;

	return (int64_t)max_attempts * attempt_ms + waits;
}

/* The worst cases with every default: 27 s, 36 s and 21 s. */
#define COA_BACKOFF_WAITS_MS_DEFAULT                                                               \
	(COA_BACKOFF_MS_DEFAULT * ((1LL << (COA_MAX_ATTEMPTS_DEFAULT - 1)) - 1))
#define COA_WORST_RADIUS_MS                                                                        \
	(COA_MAX_ATTEMPTS_DEFAULT * COA_NAS_TIMEOUT_MS_DEFAULT *                                   \
	     ((1LL << COA_NAS_TRIES_DEFAULT) - 1) +                                                \
	 COA_BACKOFF_WAITS_MS_DEFAULT)
#define COA_WORST_MNT_MS                                                                           \
	(COA_MAX_ATTEMPTS_DEFAULT * 2 * COA_HTTP_TIMEOUT_MS_DEFAULT + COA_BACKOFF_WAITS_MS_DEFAULT)
#define COA_WORST_WEBHOOK_MS                                                                       \
	(COA_MAX_ATTEMPTS_DEFAULT * COA_HTTP_TIMEOUT_MS_DEFAULT + COA_BACKOFF_WAITS_MS_DEFAULT)

#endif
