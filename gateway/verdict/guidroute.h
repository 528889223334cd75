/*
 * guidroute: which adapters reported a device GUID, so a GUID query goes to the MDM that issued
 * it. In ISE's GUID mode the NAC reads the GUID from the device's certificate, which one MDM
 * issued; every other MDM can only answer "not enrolled" or, when it is down, turn a clean
 * answer into a partial or unavailable one. So once a GUID has been seen in an adapter's
 * answer, queries by it are asked of that adapter alone; a GUID never seen is asked of all.
 *
 * A fixed table, direct-mapped by hash of the GUID (stored whole, compared ignoring ASCII case;
 * GUIDs over 43 bytes are not routed): memory is bounded whatever the number of devices, and a
 * collision only evicts a route, which costs one fan-out to all adapters, never a wrong answer.
 * Thread-safe (one mutex, held for a copy).
 */
#ifndef MDM_GUIDROUTE_H
#define MDM_GUIDROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "../../core/err.h"

#define GUIDROUTE_MAX_ADAPTERS 32 /* adapters are bits of a 32-bit mask */

struct guidroute;

/* guidroute_create: a table of slots entries (rounded up to a power of two, 16..1<<24). */
struct guidroute *guidroute_create(size_t slots);
void guidroute_destroy(struct guidroute *g); /* NULL is fine */

/* guidroute_learn: adapter (index < GUIDROUTE_MAX_ADAPTERS) reported guid. Empty GUIDs and
 * GUIDs over 43 bytes are ignored. A slot held by another GUID is taken over. */
void guidroute_learn(struct guidroute *g, const char *guid, unsigned adapter);

/* guidroute_forget: adapter no longer knows guid (it answered "not enrolled" for it). */
void guidroute_forget(struct guidroute *g, const char *guid, unsigned adapter);

/* guidroute_get: the adapters known to have reported guid as a bit mask; 0 when none is known
 * (ask every adapter). */
uint32_t guidroute_get(struct guidroute *g, const char *guid);

#endif
