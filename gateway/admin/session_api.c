#include <arpa/inet.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/clock.h"
#include "../../core/ident.h"
#include "../../core/jout.h"
#include "../../core/log.h"
#include "../coa/sessions.h"
#include "session_api.h"

#define JSON_TYPE "application/json"

bool session_api_route(enum route_kind k)
{
	return k == ROUTE_SESSION_PUT || k == ROUTE_SESSION_DELETE || k == ROUTE_SESSION_GET ||
	       k == ROUTE_SESSIONS;
}

static void json_error(struct ise_response *res, int status, const char *msg)
{
	json_t *o = json_pack("{s:o}", "error", jout_str(msg));
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	buf_reset(&res->body);
	res->status = status;
	res->content_type = JSON_TYPE;
	if (!text || buf_addstr(&res->body, text) || buf_addstr(&res->body, "\n")) {
		res->status = 500;
		buf_reset(&res->body);
		buf_addstr(&res->body, "{\"error\":\"out of memory\"}\n");
	}
	free(text);
}

/* Answers root (owned; NULL: out of memory). */
static void json_reply(struct ise_response *res, int status, json_t *root)
{
	char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;

	json_decref(root);
	if (!text)
		return json_error(res, 500, "out of memory");
	buf_reset(&res->body);
	res->status = status;
	res->content_type = JSON_TYPE;
	if (buf_addstr(&res->body, text) != MDM_OK || buf_addstr(&res->body, "\n") != MDM_OK)
		json_error(res, 500, "answer too large");
	free(text);
}

static bool parse_mac(const struct route *r, char mac[MAC_STR_LEN + 1], struct ise_response *res)
{
	char why[200];
	bool local;

	if (mac_parse(r->value, strlen(r->value), mac, &local, why, sizeof(why)) == MDM_OK)
		return true;
	json_error(res, 400, why);
	return false;
}

/* An optional text member into a fixed field: printable, shorter than size. */
static bool take_str(json_t *root, const char *key, char *dst, size_t size, char *why, size_t whysz)
{
	json_t *v = json_object_get(root, key);
	const char *s;

	dst[0] = '\0';
	if (!v || json_is_null(v))
		return true;
	s = json_is_string(v) ? json_string_value(v) : NULL;
	for (const char *c = s; c && *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			s = NULL;
	if (!s || str_copy(dst, size, s) != MDM_OK) {
		snprintf(why, whysz,
			 "\"%s\" must be a string of printable characters, at most %zu "
			 "bytes",
			 key, size - 1);
		return false;
	}
	return true;
}

/* The body of a PUT into s (MAC already set). false: why says what is wrong. */
static bool session_body(json_t *root, struct coa_session *s, char *why, size_t whysz)
{
	static const char *const keys[] = {"nas_ip",	"nas_id",   "acct_session_id",
					   "user_name", "nas_port", NULL};
	unsigned char bin[16];
	const char *key;
	json_t *v;

	json_object_foreach(root, key, v)
	{
		bool ok = false;

		for (size_t i = 0; keys[i] && !ok; i++)
			ok = strcmp(key, keys[i]) == 0;
		if (!ok) {
			snprintf(why, whysz, "unknown key \"%.64s\" in the body", key);
			return false;
		}
	}
	if (!take_str(root, "nas_ip", s->nas_ip, sizeof(s->nas_ip), why, whysz) ||
	    !take_str(root, "nas_id", s->nas_id, sizeof(s->nas_id), why, whysz) ||
	    !take_str(root, "acct_session_id", s->acct_session_id, sizeof(s->acct_session_id), why,
		      whysz) ||
	    !take_str(root, "user_name", s->user_name, sizeof(s->user_name), why, whysz))
		return false;
	/* A CoA goes to the NAS: without its address the session is of no use. */
	if (!s->nas_ip[0] ||
	    (inet_pton(AF_INET, s->nas_ip, bin) != 1 && inet_pton(AF_INET6, s->nas_ip, bin) != 1)) {
		snprintf(why, whysz, "\"nas_ip\" is required: the NAS's IPv4 or IPv6 address");
		return false;
	}
	v = json_object_get(root, "nas_port");
	if (v && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > 4294967295LL) {
			snprintf(why, whysz,
				 "\"nas_port\" must be an integer from 0 to 4294967295");
			return false;
		}
		s->nas_port = (uint32_t)json_integer_value(v);
		s->has_nas_port = true;
	}
	return true;
}

static void session_put(struct ise_ctx *ctx, const struct route *r, const char *body, size_t len,
			const char *user, const char *addr, struct ise_response *res)
{
	struct coa_session s;
	json_error_t jerr;
	json_t *root;
	char why[256];
	enum mdm_err e;

	memset(&s, 0, sizeof(s));
	if (!parse_mac(r, s.mac, res))
		return;
	if (len > SESSION_API_BODY_MAX)
		return json_error(res, 400, "the body is too large");
	root = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root || !json_is_object(root)) {
		snprintf(why, sizeof(why), "the body must be a JSON object%s%s", root ? "" : ": ",
			 root ? "" : jerr.text);
		json_decref(root);
		return json_error(res, 400, why);
	}
	if (!session_body(root, &s, why, sizeof(why))) {
		json_decref(root);
		return json_error(res, 400, why);
	}
	json_decref(root);
	s.updated_ms = clock_wall_ms();
	e = sessions_put(ctx->sessions, &s);
	if (e == MDM_ERR_TOOBIG)
		return json_error(res, 503, "the session table is full");
	if (e != MDM_OK)
		return json_error(res, 500, "the session could not be stored");
	log_info("session of %s on NAS %s put by %s from %s", s.mac, s.nas_ip, user, addr);
	json_reply(res, 200, sessions_session_json(&s));
}

static void session_delete(struct ise_ctx *ctx, const struct route *r, const char *user,
			   const char *addr, struct ise_response *res)
{
	char mac[MAC_STR_LEN + 1];
	json_t *o;
	size_t n;
	bool bad = false;

	if (!parse_mac(r, mac, res))
		return;
	n = sessions_remove_mac(ctx->sessions, mac);
	if (n == 0)
		return json_error(res, 404, "no session of this MAC");
	log_info("%zu sessions of %s deleted by %s from %s", n, mac, user, addr);
	o = json_object();
	jout_set(o, "mac", jout_str(mac), &bad);
	jout_set(o, "removed", json_integer((json_int_t)n), &bad);
	if (bad) {
		json_decref(o);
		o = NULL;
	}
	json_reply(res, 200, o);
}

void session_api_handle(struct ise_ctx *ctx, const struct route *r, const char *body, size_t len,
			const char *user, const char *addr, struct ise_response *res)
{
	char mac[MAC_STR_LEN + 1];

	if (!ctx->sessions)
		return json_error(res, 503, "sessions are not enabled on this gateway");
	switch (r->kind) {
	case ROUTE_SESSION_PUT:
		return session_put(ctx, r, body, len, user, addr, res);
	case ROUTE_SESSION_DELETE:
		return session_delete(ctx, r, user, addr, res);
	case ROUTE_SESSION_GET:
		if (parse_mac(r, mac, res))
			json_reply(res, 200,
				   sessions_json(ctx->sessions, mac, SESSIONS_DEFAULT_MAX));
		return;
	case ROUTE_SESSIONS:
		return json_reply(res, 200,
				  sessions_json(ctx->sessions, NULL,
						r->limit ? r->limit : SESSION_API_LIMIT_DEFAULT));
	default:
		return json_error(res, 404, "no such resource");
	}
}
