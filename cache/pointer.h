/*
 * pointer: how the gateway stores what one source said about one identifier (the cache value
 * under "<ns>:v1:<adapter>:<kind>:<value>"): the vendor ids of the device records it found,
 * each stored as an entry (entry.h) under its own key, or that the source knows no such device.
 * Compact JSON, byte for byte what the gateway has always written (values already in memcached
 * keep decoding):
 *   {"r":"found","ids":["inv-1","inv-2"]}    {"r":"not_enrolled","ids":[]}
 * A value that fails to decode is to be treated as a miss: decoding never trusts its input.
 * Thread-safe (no state).
 */
#ifndef MDM_CACHE_POINTER_H
#define MDM_CACHE_POINTER_H

#include <stdbool.h>
#include <stddef.h>

#include "../core/buf.h"
#include "../core/device.h"
#include "../core/err.h"

#define POINTER_MAX_IDS 64 /* vendor ids one identifier may map to at one source */

/*
 * pointer_encode: found with the vendor ids of devs[0..n) (the first POINTER_MAX_IDS), or
 * not enrolled (devs and n ignored), appended to out. MDM_ERR_NOMEM, MDM_ERR_TOOBIG (out's
 * limit).
 */
enum mdm_err pointer_encode(bool found, const struct device *devs, size_t n, struct buf *out);

/*
 * pointer_decode: *found, and the vendor ids (at most max) into ids; *nids their number.
 * MDM_ERR_PARSE on anything pointer_encode does not write (not JSON, an unknown verdict, found
 * without ids or not enrolled with some, more than max ids, an id too long).
 */
enum mdm_err pointer_decode(const char *val, size_t len, bool *found, char ids[][GUID_MAX + 1],
			    size_t max, size_t *nids);

#endif
