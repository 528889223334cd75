/*
 * reply: how every route of the admin API answers: one JSON document on one line, ended by a
 * newline, with Content-Type application/json. Errors are {"error": "<message>"}; a body that
 * cannot be made (no memory, past the response bound) becomes a 500 of that form.
 * Shared by the admin modules (admin, action_api, coa_api, recon_api, session_api, trans_api).
 * Threading: none of its own; safe from any thread.
 */
#ifndef MDM_REPLY_H
#define MDM_REPLY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "../server/handler.h"

#define REPLY_JSON_TYPE "application/json"

/* reply_error: {"error": msg} with status (an handler_error_fn: the admin routes' error form). */
void reply_error(struct http_response *res, int status, const char *msg);

/* reply_json: root (consumed; NULL or bad: out of memory, answered 500) with status. */
void reply_json(struct http_response *res, int status, json_t *root, bool bad);

/* reply_text: a fixed JSON text (nothing in it to escape) with status. */
void reply_text(struct http_response *res, int status, const char *json);

/*
 * reply_body: the request body as a JSON object holding only the keys in allowed
 * (NULL-terminated), at most max bytes; an empty body is {} when empty_ok. NULL (res answered
 * 400 with what is wrong) otherwise.
 */
json_t *reply_body(const char *body, size_t len, size_t max, const char *const *allowed,
		   bool empty_ok, struct http_response *res);

#endif
