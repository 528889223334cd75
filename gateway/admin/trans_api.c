#include <stdio.h>

#include "../../core/log.h"
#include "../recon/trans.h"
#include "reply.h"
#include "trans_api.h"

static void release(void *ctx, const struct handler_request *rq, struct http_response *res)
{
	struct trans *t = ctx;
	char text[64];
	size_t n = 0;
	enum mdm_err e;

	(void)rq;
	if (!t)
		return reply_text(res, 503,
				  "{\"error\":\"the reconciler is not enabled on this gateway\"}");
	e = trans_release(t, &n);
	if (e == MDM_ERR_NOTFOUND)
		return reply_text(res, 409, "{\"error\":\"nothing held\"}");
	if (e && !n)
		return reply_text(res, 500,
				  "{\"error\":\"the held events could not be released\"}");
	/* released even when the file could not be removed: the log says so */
	snprintf(text, sizeof(text), "{\"released\":%zu}", n);
	reply_text(res, 200, text);
}

static const struct handler_spec trans_specs[] = {
    {.kind = ROUTE_RECON_RELEASE, .roles = ROLE_ADMIN, .answer = release},
};

struct handler_group trans_api_routes(struct trans *t)
{
	return (struct handler_group){trans_specs, 1, t, reply_error};
}
