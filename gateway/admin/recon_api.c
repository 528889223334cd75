#include <string.h>

#include "recon_api.h"
#include "reply.h"

/* Answers at once (never blocks). No reconciler: 503. */
static void answer_now(void *ctx, const struct handler_request *rq, struct http_response *res)
{
	struct recon *rc = ctx;
	bool run = rq->route->kind == ROUTE_RECON_RUN;
	enum mdm_err e;

	if (!rc)
		return reply_text(res, 503, "{\"error\":\"the reconciler is not running\"}");
	buf_reset(&res->body);
	res->content_type = REPLY_JSON_TYPE;
	if (run)
		e = buf_addf(&res->body, "{\"queued\":true,\"generation\":%llu}\n",
			     (unsigned long long)recon_run_now(rc));
	else
		e = recon_status_json(rc, &res->body);
	if (e)
		reply_text(res, 500, "{\"error\":\"out of memory\"}");
	else
		res->status = run ? 202 : 200;
}

static const struct handler_spec recon_specs[] = {
    {.kind = ROUTE_RECON_RUN, .roles = ROLE_ADMIN, .answer = answer_now},
    {.kind = ROUTE_RECON_STATUS, .roles = ROLE_ADMIN, .answer = answer_now},
};

struct handler_group recon_api_routes(struct recon *rc)
{
	return (struct handler_group){recon_specs, 2, rc, reply_error};
}
