/*
 * jout: the few helpers every JSON answer of the admin API is built with (jansson). A NULL
 * value (out of memory) is remembered in *bad rather than checked at each call, so a builder
 * adds every field and looks once at the end.
 */
#ifndef MDM_JOUT_H
#define MDM_JOUT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* jout_str: a JSON string of s; bytes that are not UTF-8 (a vendor's message) become '?'. */
json_t *jout_str(const char *s);

/* jout_time: wall_ms as ISO 8601 UTC, or null when it is 0 (never happened). */
json_t *jout_time(int64_t wall_ms);

/* jout_set: adds v (owned) under key of o; a NULL o or v, or a failed add, sets *bad. */
void jout_set(json_t *o, const char *key, json_t *v, bool *bad);

#endif
