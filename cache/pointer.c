#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "pointer.h"

enum mdm_err pointer_encode(bool found, const struct device *devs, size_t n, struct buf *out)
{
	json_t *o = json_object(), *ids = json_array();
	char *s = NULL;
	enum mdm_err e = MDM_ERR_NOMEM;

	if (!o || !ids)
		goto out;
	if (json_object_set_new(o, "r", json_string(found ? "found" : "not_enrolled")))
		goto out;
	for (size_t i = 0; found && i < n && i < POINTER_MAX_IDS; i++)
		if (json_array_append_new(ids, json_string(devs[i].vendor_id)))
			goto out;
	if (json_object_set(o, "ids", ids))
		goto out;
	s = json_dumps(o, JSON_COMPACT);
	e = s ? buf_addstr(out, s) : MDM_ERR_NOMEM;
out:
	free(s);
	json_decref(ids);
	json_decref(o);
	return e;
}

enum mdm_err pointer_decode(const char *val, size_t len, bool *found, char ids[][GUID_MAX + 1],
			    size_t max, size_t *nids)
{
	json_t *o = json_loadb(val, len, JSON_REJECT_DUPLICATES, NULL), *arr, *v;
	const char *r;
	enum mdm_err e = MDM_ERR_PARSE;
	size_t i;

	*nids = 0;
	if (!o)
		return e;
	r = json_string_value(json_object_get(o, "r"));
	arr = json_object_get(o, "ids");
	if (!r || !json_is_array(arr) || json_array_size(arr) > max)
		goto out;
	*found = strcmp(r, "found") == 0;
	if (!*found && strcmp(r, "not_enrolled") != 0)
		goto out;
	if (*found != (json_array_size(arr) > 0))
		goto out;
	json_array_foreach(arr, i, v)
	{
		if (!json_is_string(v) ||
		    str_copy(ids[i], sizeof(ids[0]), json_string_value(v)) != MDM_OK)
			goto out;
	}
	*nids = json_array_size(arr);
	e = MDM_OK;
out:
	json_decref(o);
	return e;
}
