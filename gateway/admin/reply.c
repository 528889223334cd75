#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/jout.h"
#include "reply.h"

#define OUT_OF_MEMORY "{\"error\":\"out of memory\"}\n"

/* Sets the body to text and "\n"; a 500 of our own when even that does not fit. */
static void set_body(struct http_response *res, int status, const char *text)
{
	buf_reset(&res->body);
	res->status = status;
	res->content_type = REPLY_JSON_TYPE;
	if (!text || buf_addstr(&res->body, text) != MDM_OK ||
	    buf_addstr(&res->body, "\n") != MDM_OK) {
		res->status = 500;
		buf_reset(&res->body);
		if (buf_addstr(&res->body, OUT_OF_MEMORY) != MDM_OK)
			buf_reset(&res->body); /* nothing fits: an empty 500 says enough */
	}
}

void reply_error(struct http_response *res, int status, const char *msg)
{
	json_t *o = json_pack("{s:o}", "error", jout_str(msg));
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	set_body(res, status, text);
	free(text);
}

void reply_json(struct http_response *res, int status, json_t *root, bool bad)
{
	char *text = bad || !root ? NULL : json_dumps(root, JSON_COMPACT);

	json_decref(root);
	set_body(res, status, text);
	free(text);
}

void reply_text(struct http_response *res, int status, const char *json)
{
	set_body(res, status, json);
}

json_t *reply_body(const char *body, size_t len, size_t max, const char *const *allowed,
		   bool empty_ok, struct http_response *res)
{
	json_error_t jerr;
	const char *key;
	json_t *root, *v;
	char msg[256];

	if (len > max) {
		reply_error(res, 400, "the body is too large");
		return NULL;
	}
	if (len == 0 && empty_ok)
		return json_object();
	root = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root || !json_is_object(root)) {
		snprintf(msg, sizeof(msg), "the body must be a JSON object%s%s", root ? "" : ": ",
			 root ? "" : jerr.text);
		json_decref(root);
		reply_error(res, 400, msg);
		return NULL;
	}
	json_object_foreach(root, key, v)
	{
		bool ok = false;

		for (size_t i = 0; allowed[i] && !ok; i++)
			ok = strcmp(key, allowed[i]) == 0;
		if (!ok) {
			snprintf(msg, sizeof(msg), "unknown key \"%.64s\" in the body", key);
			json_decref(root);
			reply_error(res, 400, msg);
			return NULL;
		}
	}
	return root;
}
