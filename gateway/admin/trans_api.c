#include <stdio.h>

#include "../../core/log.h"
#include "../recon/trans.h"
#include "trans_api.h"

bool trans_api_route(enum route_kind k)
{
	return k == ROUTE_RECON_RELEASE;
}

/* Fixed texts only: nothing here needs escaping. */
static void reply(struct ise_response *res, int status, const char *json)
{
	buf_reset(&res->body);
	res->status = status;
	res->content_type = "application/json";
	if (buf_addstr(&res->body, json) || buf_addstr(&res->body, "\n"))
		res->status = 500;
}

void trans_api_handle(struct ise_ctx *ctx, const struct route *r, struct ise_response *res)
{
	char text[64];
	size_t n = 0;
	enum mdm_err e;

	if (r->kind != ROUTE_RECON_RELEASE)
		return reply(res, 404, "{\"error\":\"no such resource\"}");
	if (!ctx->trans)
		return reply(res, 503,
			     "{\"error\":\"the reconciler is not enabled on this gateway\"}");
	e = trans_release(ctx->trans, &n);
	if (e == MDM_ERR_NOTFOUND)
		return reply(res, 409, "{\"error\":\"nothing held\"}");
	if (e && !n)
		return reply(res, 500, "{\"error\":\"the held events could not be released\"}");
	/* released even when the file could not be removed: the log says so */
	snprintf(text, sizeof(text), "{\"released\":%zu}", n);
	reply(res, 200, text);
}
