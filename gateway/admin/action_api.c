#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/clock.h"
#include "../../core/jout.h"
#include "../../core/log.h"
#include "../actions/actions.h"
#include "../actions/journal.h"
#include "../verdict/block.h"
#include "action_api.h"
#include "reply.h"

/* --- JSON helpers -------------------------------------------------------------------------- */

static json_t *or_null(const char *s)
{
	return s && *s ? jout_str(s) : json_null();
}

static json_t *action_json(const struct journal_action *a, bool *bad)
{
	json_t *o = json_object();
	int64_t completed = a->done_ms;

	if (!completed && a->state == JOURNAL_REFUSED)
		completed = a->at_ms; /* a refusal is final as it is made */
	if (!completed && a->resolved_ms)
		completed = a->resolved_ms;
	jout_set(o, "action_id", jout_str(a->id), bad);
	jout_set(o, "state", json_string(journal_state_name(a->state)), bad);
	jout_set(o, "action", json_string(action_kind_name(a->action)), bad);
	jout_set(o, "device", jout_str(a->device), bad);
	jout_set(o, "mdm", jout_str(a->mdm), bad);
	jout_set(o, "vendor_id", jout_str(a->vendor_id), bad);
	jout_set(o, "user", jout_str(a->user), bad);
	jout_set(o, "source", jout_str(a->addr), bad);
	jout_set(o, "detail", jout_str(a->detail), bad);
	jout_set(o, "requested_at", jout_time(a->at_ms), bad);
	jout_set(o, "completed_at", jout_time(completed), bad);
	jout_set(o, "resolved_by", or_null(a->resolved_by), bad);
	jout_set(o, "note", a->resolved_ms ? or_null(a->note) : json_null(), bad);
	return o;
}

static void reply_action(struct http_response *res, int status, const struct journal_action *a)
{
	bool bad = false;
	json_t *o = action_json(a, &bad);

	reply_json(res, status, o, bad);
}

static bool parse_device(const char *s, struct ident *id, struct http_response *res)
{
	char why[200];

	if (actions_parse_device(s, id, why, sizeof(why)) == MDM_OK)
		return true;
	reply_error(res, 400, why);
	return false;
}

/* --- POST /api/v1/devices/{id}/actions ------------------------------------------------------ */

struct device_action {
	handler_done_cb done;
	void *arg;
};

static void on_action(void *arg, const struct action_answer *ans)
{
	struct device_action *da = arg;
	struct http_response res;

	http_response_init(&res);
	if (ans->has_action) {
		reply_action(&res, ans->status, &ans->act);
	} else if (ans->status == 422) {
		bool bad = false;
		json_t *o = json_object();

		jout_set(o, "error", jout_str(ans->error), &bad);
		jout_set(o, "action_id", jout_str(ans->act.id), &bad);
		reply_json(&res, 422, o, bad);
	} else {
		reply_error(&res, ans->status, ans->error);
	}
	da->done(da->arg, &res);
	http_response_clear(&res);
	free(da);
}

static bool device_action(struct action_api *ctx, const struct handler_request *who,
			  struct http_response *res, handler_done_cb done, void *arg)
{
	static const char *const keys[] = {"action", NULL};
	const struct route *r = who->route;
	const char *key = who->idempotency_key;
	struct action_request rq;
	struct device_action *da;
	json_t *root, *v;

	memset(&rq, 0, sizeof(rq));
	if (!parse_device(r->value, &rq.device, res))
		return true;
	if (!key) {
		reply_error(res, 400, "the Idempotency-Key header is required");
		return true;
	}
	if (!actions_key_ok(key)) {
		reply_error(res, 400,
			    "Idempotency-Key must be 1 to 255 printable ASCII characters without "
			    "spaces");
		return true;
	}
	root = reply_body(who->body, who->len, ACTION_API_BODY_MAX, keys, false, res);
	if (!root)
		return true;
	v = json_object_get(root, "action");
	if (!json_is_string(v) || action_kind_parse(json_string_value(v), &rq.kind) != MDM_OK) {
		json_decref(root);
		reply_error(res, 400,
			    "\"action\" must be \"corporate_wipe\", \"full_wipe\" or \"pin_lock\"");
		return true;
	}
	json_decref(root);
	if (!ctx->actions) {
		reply_error(res, 503, "actions are not enabled on this gateway");
		return true;
	}
	da = calloc(1, sizeof(*da));
	if (!da) {
		reply_error(res, 500, "out of memory");
		return true;
	}
	da->done = done;
	da->arg = arg;
	rq.user = who->user;
	rq.roles = who->roles;
	rq.addr = who->addr;
	rq.key = key;
	actions_start(ctx->actions, &rq, on_action, da);
	return false;
}

/* --- reading and resolving -------------------------------------------------------------------- */

static void get_action(struct action_api *ctx, const struct route *r, struct http_response *res)
{
	struct journal_action a;

	if (!ctx->journal || journal_get(ctx->journal, r->value, &a) != MDM_OK)
		return reply_error(res, 404, "no such action");
	reply_action(res, 200, &a);
}

struct lister {
	json_t *arr;
	bool bad;
};

static enum mdm_err list_one(const struct journal_action *a, void *arg)
{
	struct lister *l = arg;

	if (json_array_append_new(l->arr, action_json(a, &l->bad)) != 0)
		l->bad = true;
	return l->bad ? MDM_ERR_NOMEM : MDM_OK;
}

static void list_actions(struct action_api *ctx, const struct route *r, struct http_response *res)
{
	struct lister l = {json_array(), false};
	struct ident dev;
	json_t *root;
	int state = -1;

	if (r->has_device && !parse_device(r->value, &dev, res)) {
		json_decref(l.arr);
		return;
	}
	if (r->state[0]) {
		for (int s = 0; s < JOURNAL_STATE_COUNT && state < 0; s++)
			if (strcmp(r->state, journal_state_name((enum journal_state)s)) == 0)
				state = s;
		if (state < 0) {
			json_decref(l.arr);
			return reply_error(res, 400, "state is not a known action state");
		}
	}
	if (!l.arr)
		return reply_error(res, 500, "out of memory");
	if (ctx->journal)
		journal_list(ctx->journal, r->has_device ? dev.value : NULL, state, list_one, &l);
	root = json_object();
	jout_set(root, "actions", l.arr, &l.bad);
	reply_json(res, 200, root, l.bad);
}

static void resolve(struct action_api *ctx, const struct route *r, const char *body, size_t len,
		    const struct handler_request *who, struct http_response *res)
{
	static const char *const keys[] = {"result", "note", NULL};
	json_t *root = reply_body(body, len, ACTION_API_BODY_MAX, keys, false, res), *result, *note;
	enum journal_state verified;
	struct journal_action a;
	char why[256];
	enum mdm_err e;

	if (!root)
		return;
	result = json_object_get(root, "result");
	note = json_object_get(root, "note");
	if (!json_is_string(result) || (strcmp(json_string_value(result), "sent") != 0 &&
					strcmp(json_string_value(result), "not_sent") != 0)) {
		json_decref(root);
		return reply_error(res, 400, "\"result\" must be \"sent\" or \"not_sent\"");
	}
	if (note && (!json_is_string(note) || json_string_length(note) > JOURNAL_TEXT_MAX)) {
		json_decref(root);
		return reply_error(res, 400, "\"note\" must be a string of at most 511 bytes");
	}
	verified = strcmp(json_string_value(result), "sent") == 0 ? JOURNAL_RESOLVED_SENT
								  : JOURNAL_RESOLVED_NOT_SENT;
	e = ctx->journal ? journal_resolve(ctx->journal, r->value, verified,
					   note ? json_string_value(note) : NULL, who->user, why,
					   sizeof(why))
			 : MDM_ERR_NOTFOUND;
	json_decref(root);
	if (e == MDM_ERR_NOTFOUND)
		return reply_error(res, 404, "no such action");
	if (e == MDM_ERR_BUSY || e == MDM_ERR_INVALID)
		return reply_error(res, 409,
				   e == MDM_ERR_BUSY
				       ? "the action is still pending in this gateway: not unknown"
				       : "the action is not unknown: it is final already");
	if (e) {
		log_err("resolve %s: %s", r->value, why);
		return reply_error(res, 503, "the action journal is unavailable");
	}
	if (journal_get(ctx->journal, r->value, &a) != MDM_OK)
		return reply_error(res, 500, "the action vanished from the journal");
	log_info("action %s resolved %s by %s from %s", a.id, journal_state_name(a.state),
		 who->user, who->addr);
	reply_action(res, 200, &a);
}

/* --- blocks ------------------------------------------------------------------------------------
 */

static json_t *block_json(const struct block_entry *e, bool *bad)
{
	json_t *o = json_object();

	jout_set(o, "device", jout_str(e->device), bad);
	jout_set(o, "blocked", json_true(), bad);
	jout_set(o, "by", jout_str(e->by), bad);
	jout_set(o, "at", jout_time(e->at_ms), bad);
	jout_set(o, "note", e->has_note ? jout_str(e->note) : json_null(), bad);
	return o;
}

/* The NAC's next lookup must see the change: drop what is cached of the device. */
static void forget(struct action_api *ctx, const struct ident *id)
{
	size_t removed = 0;

	if (ctx->lookup)
		lookup_purge(ctx->lookup, id, &removed);
}

static void block_put(struct action_api *ctx, const struct route *r, const char *body, size_t len,
		      const struct handler_request *who, struct http_response *res)
{
	static const char *const keys[] = {"note", NULL};
	struct block_entry e;
	struct ident id;
	json_t *root, *note;
	char why[256];
	enum mdm_err err;
	bool bad = false;

	if (!parse_device(r->value, &id, res))
		return;
	root = reply_body(body, len, ACTION_API_BODY_MAX, keys, true, res);
	if (!root)
		return;
	note = json_object_get(root, "note");
	if (note && !json_is_string(note) && !json_is_null(note)) {
		json_decref(root);
		return reply_error(res, 400, "\"note\" must be a string");
	}
	if (!ctx->blocks) {
		json_decref(root);
		return reply_error(res, 503, "blocking is not enabled on this gateway");
	}
	err =
	    block_add(ctx->blocks, id.value, who->user,
		      json_is_string(note) ? json_string_value(note) : NULL, &e, why, sizeof(why));
	json_decref(root);
	if (err == MDM_ERR_TOOBIG || err == MDM_ERR_INVALID)
		return reply_error(res, 400, why);
	if (err) {
		log_err("block %s: %s", id.value, why);
		return reply_error(res, 503, "the block list could not be saved");
	}
	forget(ctx, &id);
	if (ctx->on_block)
		ctx->on_block(ctx->on_block_arg, id.value, true);
	log_info("device %s blocked by %s from %s", id.value, who->user, who->addr);
	reply_json(res, 200, block_json(&e, &bad), bad);
}

static void block_delete(struct action_api *ctx, const struct route *r,
			 const struct handler_request *who, struct http_response *res)
{
	struct ident id;
	char why[256];
	enum mdm_err err;
	bool bad = false;
	json_t *o;

	if (!parse_device(r->value, &id, res))
		return;
	err =
	    ctx->blocks ? block_remove(ctx->blocks, id.value, why, sizeof(why)) : MDM_ERR_NOTFOUND;
	if (err == MDM_ERR_NOTFOUND)
		return reply_error(res, 404, "the device is not blocked");
	if (err) {
		log_err("unblock %s: %s", id.value, why);
		return reply_error(res, 503, "the block list could not be saved");
	}
	forget(ctx, &id);
	if (ctx->on_block)
		ctx->on_block(ctx->on_block_arg, id.value, false);
	log_info("device %s unblocked by %s from %s", id.value, who->user, who->addr);
	o = json_object();
	jout_set(o, "device", jout_str(id.value), &bad);
	jout_set(o, "blocked", json_false(), &bad);
	reply_json(res, 200, o, bad);
}

struct block_lister {
	json_t *arr;
	bool bad;
};

static enum mdm_err list_block(const struct block_entry *e, void *arg)
{
	struct block_lister *l = arg;

	if (json_array_append_new(l->arr, block_json(e, &l->bad)) != 0)
		l->bad = true;
	return l->bad ? MDM_ERR_NOMEM : MDM_OK;
}

static void list_blocks(struct action_api *ctx, struct http_response *res)
{
	struct block_lister l = {json_array(), false};
	json_t *root = json_object();

	if (!l.arr)
		l.bad = true;
	else if (ctx->blocks)
		block_list(ctx->blocks, list_block, &l);
	jout_set(root, "blocks", l.arr, &l.bad);
	reply_json(res, 200, root, l.bad);
}

/* --- the handler table ----------------------------------------------------------------------- */

static bool start_action(void *ctx, const struct handler_request *rq, struct http_response *res,
			 handler_done_cb done, void *arg)
{
	return device_action(ctx, rq, res, done, arg);
}

/* The pipeline's own bound (actions/actions.h). */
static int64_t action_wait(void *ctx, const struct route *r)
{
	const struct action_api *a = ctx;

	(void)r;
	return a->actions ? actions_answer_bound_ms(a->actions) : HANDLER_WAIT_DEFAULT_MS;
}

/* Reading actions: who may act may see them. Settling one and blocking are the admin's. */
static void answer_now(void *ctx, const struct handler_request *rq, struct http_response *res)
{
	struct action_api *a = ctx;
	const struct route *r = rq->route;

	switch (r->kind) {
	case ROUTE_ACTION_GET:
		get_action(a, r, res);
		break;
	case ROUTE_ACTIONS:
		list_actions(a, r, res);
		break;
	case ROUTE_ACTION_RESOLVE:
		resolve(a, r, rq->body, rq->len, rq, res);
		break;
	case ROUTE_BLOCK_PUT:
		block_put(a, r, rq->body, rq->len, rq, res);
		break;
	case ROUTE_BLOCK_DELETE:
		block_delete(a, r, rq, res);
		break;
	default:
		list_blocks(a, res);
		break;
	}
}

static const struct handler_spec action_specs[] = {
    /* the role depends on the action in the body: the pipeline checks it */
    {.kind = ROUTE_DEVICE_ACTION, .handle = start_action, .wait_ms = action_wait},
    {.kind = ROUTE_ACTION_GET, .roles = ROLE_ADMIN | ROLE_ACTION, .answer = answer_now},
    {.kind = ROUTE_ACTIONS, .roles = ROLE_ADMIN | ROLE_ACTION, .answer = answer_now},
    {.kind = ROUTE_ACTION_RESOLVE, .roles = ROLE_ADMIN, .answer = answer_now},
    {.kind = ROUTE_BLOCK_PUT, .roles = ROLE_ADMIN, .answer = answer_now},
    {.kind = ROUTE_BLOCK_DELETE, .roles = ROLE_ADMIN, .answer = answer_now},
    {.kind = ROUTE_BLOCKS, .roles = ROLE_ADMIN, .answer = answer_now},
};

struct handler_group action_api_routes(struct action_api *a)
{
	return (struct handler_group){action_specs, sizeof(action_specs) / sizeof(action_specs[0]),
				      a, reply_error};
}
