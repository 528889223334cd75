/*
 * hops: keeps a gateway that is an upstream of another gateway (through an mcms adapter) from
 * forming a loop, and bounds chains.
 *
 * Every request an mcms adapter sends carries X-Mdmgw-Via: <own gateway_id>[,<downstream ids>]
 * and X-Mdmgw-Hops: <n>. On every ISE API request the server hands those headers to
 * hops_check: a request whose Via already holds this gateway's id, or whose Hops is at least
 * max_hops, is refused (the server answers 508 Loop Detected); otherwise the Via ids are
 * remembered as "downstream" (at most HOPS_MAX_DOWNSTREAM ids, each for HOPS_TTL_MS after it
 * was last seen) with the Hops they came with. hops_provide, the adapters' header provider,
 * answers Via = own id + the downstream ids, Hops = 1 + the largest Hops seen recently.
 *
 * Why not simply pass the incoming request's path on: an adapter call is decoupled from the
 * request that caused it (the cache answers most requests, refreshes run in the background,
 * the snapshot lists at start-up and on a timer), so there is often no incoming request to take
 * a path from. The set of downstream gateways seen recently stands in for the path: with
 * A -> B -> A, B has seen A in a Via, so B's request back to A carries A's id and A refuses it
 * on the first request that comes back; a gateway pointed at itself refuses its own first
 * request; long chains are refused by count. The price: a gateway seen downstream in the last
 * hour makes requests look as if they came through it (false positives only in topologies
 * that are loops anyway, or that changed within the hour).
 */
#ifndef MDM_HOPS_H
#define MDM_HOPS_H

#include <stddef.h>
#include <stdint.h>

#include "../../core/err.h"

#define HOPS_MAX_DOWNSTREAM 64
#define HOPS_TTL_MS (3600 * 1000)
#define HOPS_ID_MAX 63
#define HOPS_VIA_HEADER "X-Mdmgw-Via"
#define HOPS_COUNT_HEADER "X-Mdmgw-Hops"

struct hops;

/* hops_create: the state for gateway own_id ([A-Za-z0-9._:-], 1..63), refusing at max_hops. */
struct hops *hops_create(const char *own_id, unsigned max_hops);
void hops_destroy(struct hops *h);

/*
 * hops_check: an incoming request's X-Mdmgw-Via (NULL or "" when absent) and X-Mdmgw-Hops
 * (NULL when absent; not a number counts as absent). MDM_OK: accepted, Via ids remembered.
 * MDM_ERR_FORBIDDEN: refused (counted); why says "loop: ..." or "too many hops: ...".
 * Thread-safe.
 */
enum mdm_err hops_check(struct hops *h, const char *via, const char *count, char *why,
			size_t whysz);

/*
 * hops_provide: the adapters' header provider (an adapter_hops_fn; arg is the struct hops):
 * via receives own id and the downstream ids seen within HOPS_TTL_MS, comma separated (ids that
 * do not fit in viasz are left out); *n is 1 + the largest Hops among them (1 when none).
 */
void hops_provide(void *arg, char *via, size_t viasz, unsigned *n);

/* hops_refused: requests refused so far (for /metrics). */
uint64_t hops_refused(struct hops *h);

#endif
