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
#include "reply.h"
#include "session_api.h"

static bool parse_mac(const struct route *r, char mac[MAC_STR_LEN + 1], struct http_response *res)
{
	char why[200];
	bool local;

	if (mac_parse(r->value, strlen(r->value), mac, &local, why, sizeof(why)) == MDM_OK)
		return true;
	reply_error(res, 400, why);
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
	unsigned char bin[16];
	json_t *v;

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

static void session_put(struct sessions *sessions, const struct route *r, const char *body,
			size_t len, const char *user, const char *addr, struct http_response *res)
{
	static const char *const keys[] = {"nas_ip",	"nas_id",   "acct_session_id",
					   "user_name", "nas_port", NULL};
	struct coa_session s;
	json_t *root;
	char why[256];
	enum mdm_err e;

	memset(&s, 0, sizeof(s));
	if (!parse_mac(r, s.mac, res))
		return;
	root = reply_body(body, len, SESSION_API_BODY_MAX, keys, false, res);
	if (!root)
		return;
	if (!session_body(root, &s, why, sizeof(why))) {
		json_decref(root);
		return reply_error(res, 400, why);
	}
	json_decref(root);
	s.updated_ms = clock_wall_ms();
	e = sessions_put(sessions, &s);
	if (e == MDM_ERR_TOOBIG)
		return reply_error(res, 503, "the session table is full");
	if (e != MDM_OK)
		return reply_error(res, 500, "the session could not be stored");
	log_info("session of %s on NAS %s put by %s from %s", s.mac, s.nas_ip, user, addr);
	reply_json(res, 200, sessions_session_json(&s), false);
}

static void session_delete(struct sessions *sessions, const struct route *r, const char *user,
			   const char *addr, struct http_response *res)
{
	char mac[MAC_STR_LEN + 1];
	json_t *o;
	size_t n;
	bool bad = false;

	if (!parse_mac(r, mac, res))
		return;
	n = sessions_remove_mac(sessions, mac);
	if (n == 0)
		return reply_error(res, 404, "no session of this MAC");
	log_info("%zu sessions of %s deleted by %s from %s", n, mac, user, addr);
	o = json_object();
	jout_set(o, "mac", jout_str(mac), &bad);
	jout_set(o, "removed", json_integer((json_int_t)n), &bad);
	if (bad) {
		json_decref(o);
		o = NULL;
	}
	reply_json(res, 200, o, false);
}

static void answer(struct sessions *sessions, const struct handler_request *rq,
		   struct http_response *res)
{
	const struct route *r = rq->route;
	char mac[MAC_STR_LEN + 1];

	if (!sessions)
		return reply_error(res, 503, "sessions are not enabled on this gateway");
	switch (r->kind) {
	case ROUTE_SESSION_PUT:
		return session_put(sessions, r, rq->body, rq->len, rq->user, rq->addr, res);
	case ROUTE_SESSION_DELETE:
		return session_delete(sessions, r, rq->user, rq->addr, res);
	case ROUTE_SESSION_GET:
		if (parse_mac(r, mac, res))
			reply_json(res, 200, sessions_json(sessions, mac, SESSIONS_DEFAULT_MAX),
				   false);
		return;
	case ROUTE_SESSIONS:
		return reply_json(
		    res, 200,
		    sessions_json(sessions, NULL, r->limit ? r->limit : SESSION_API_LIMIT_DEFAULT),
		    false);
	default:
		return reply_error(res, 404, "no such resource");
	}
}

static void answer_now(void *ctx, const struct handler_request *rq, struct http_response *res)
{
	answer(ctx, rq, res);
}

static const struct handler_spec session_specs[] = {
    {.kind = ROUTE_SESSION_PUT, .roles = ROLE_ADMIN, .answer = answer_now},
    {.kind = ROUTE_SESSION_DELETE, .roles = ROLE_ADMIN, .answer = answer_now},
    {.kind = ROUTE_SESSION_GET, .roles = ROLE_ADMIN, .answer = answer_now},
    {.kind = ROUTE_SESSIONS, .roles = ROLE_ADMIN, .answer = answer_now},
};

struct handler_group session_api_routes(struct sessions *sessions)
{
	return (struct handler_group){
	    session_specs, sizeof(session_specs) / sizeof(session_specs[0]), sessions, reply_error};
}
