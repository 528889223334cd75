#include <string.h>

#include "recon_api.h"

bool recon_api_route(enum route_kind k)
{
	return k == ROUTE_RECON_RUN || k == ROUTE_RECON_STATUS;
}

static void json_answer(struct ise_response *res, int status, const char *body)
{
	buf_reset(&res->body);
	res->status = buf_addstr(&res->body, body) == MDM_OK ? status : 500;
	res->content_type = "application/json";
}

void recon_api_handle(struct recon *rc, const struct route *r, struct ise_response *res)
{
	enum mdm_err e;

	if (!rc)
		return json_answer(res, 503, "{\"error\":\"the reconciler is not running\"}");
	buf_reset(&res->body);
	res->content_type = "application/json";
	if (r->kind == ROUTE_RECON_RUN)
		e = buf_addf(&res->body, "{\"queued\":true,\"generation\":%llu}",
			     (unsigned long long)recon_run_now(rc));
	else
		e = recon_status_json(rc, &res->body);
	if (e)
		return json_answer(res, 500, "{\"error\":\"out of memory\"}");
	res->status = r->kind == ROUTE_RECON_RUN ? 202 : 200;
}
