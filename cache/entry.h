/*
 * entry: how the gateway stores one lookup answer as a cache value. Compact JSON, versioned:
 *   {"v":1,"r":"found","d":[{"src":"demo","id":"inv-1","macs":["0026B424FEB4"],"reg":true}]}
 * "r" is "found" (one device or more in "d") or "not_enrolled" (no "d"). Each device object
 * holds only what is reported: empty strings, TRI_UNSET, OWN_UNKNOWN, false and 0 are left out
 * and decode back to their zero value, so encode then decode gives back the same records.
 * Tri-states are JSON true/false; ownership is "corporate" or "personal".
 * A value that fails to decode is to be treated as a miss: decoding never trusts its input.
 */
#ifndef MDM_CACHE_ENTRY_H
#define MDM_CACHE_ENTRY_H

#include <stddef.h>

#include "../core/buf.h"
#include "../core/device.h"
#include "../core/err.h"

#define ENTRY_VERSION 1
/* bytes of one encoded value: fits memcached's default 1 MB item with its key and header */
#define ENTRY_MAX_LEN ((size_t)1000 * 1000)
#define ENTRY_MAX_DEVICES 1000 /* one answer: a user's devices, never a bulk list */

enum entry_verdict { ENTRY_FOUND = 0, ENTRY_NOT_ENROLLED };

/*
 * entry_encode: verdict v and the n records of devs as compact JSON, appended to out.
 * ENTRY_FOUND needs n >= 1 and ENTRY_NOT_ENROLLED n == 0, else MDM_ERR_INVALID, as is a record
 * that is not well formed (a string without its NUL, nmacs past DEVICE_MACS_MAX, an enum out
 * of range, text that is not UTF-8). MDM_ERR_TOOBIG past ENTRY_MAX_DEVICES records, past
 * ENTRY_MAX_LEN bytes of JSON or past out's own limit. On error out is left as it was.
 */
enum mdm_err entry_encode(enum entry_verdict v, const struct device *devs, size_t n,
			  struct buf *out);

/*
 * entry_decode: the inverse. On MDM_OK *devs is a malloc'd array of *n records (free() it;
 * NULL when *n is 0). Strict: anything but what entry_encode writes (not JSON, another version,
 * an unknown verdict or key, a wrong type, a string too long for its array, more than
 * DEVICE_MACS_MAX MACs, devices that do not fit the verdict) is MDM_ERR_PARSE; more than
 * ENTRY_MAX_LEN bytes or ENTRY_MAX_DEVICES records is MDM_ERR_TOOBIG. On error *devs is NULL
 * and *n is 0, and nothing is left to free.
 */
enum mdm_err entry_decode(const char *val, size_t len, enum entry_verdict *v, struct device **devs,
			  size_t *n);

#endif
