#include "jout.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"

json_t *jout_str(const char *s)
{
	json_t *v = json_string(s);
	char *copy;

	if (v || !(copy = strdup(s)))
		return v;
	for (char *p = copy; *p; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	v = json_string(copy);
	free(copy);
	return v;
}

json_t *jout_time(int64_t wall_ms)
{
	char when[CLOCK_ISO_SIZE];

	if (wall_ms <= 0 || clock_iso(wall_ms, when) != MDM_OK)
		return json_null();
	return json_string(when);
}

void jout_set(json_t *o, const char *key, json_t *v, bool *bad)
{
	if (!o) {
		json_decref(v);
		*bad = true;
	} else if (json_object_set_new(o, key, v) != 0) { /* also for a NULL v; it released v */
		*bad = true;
	}
}
