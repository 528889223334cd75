#include <string.h>

#include "handler.h"

void http_response_init(struct http_response *res)
{
	memset(res, 0, sizeof(*res));
	res->status = 500;
	res->content_type = "text/plain; charset=utf-8";
	buf_init(&res->body, HTTP_RESPONSE_MAX);
	/* One device's answer fits: no regrowth on the hot path. Without the memory now, the body
	 * grows on the first add, which reports it. */
	if (buf_reserve(&res->body, 4096) != MDM_OK)
		buf_free(&res->body);
}

void http_response_clear(struct http_response *res)
{
	buf_free(&res->body);
}

void http_response_move(struct http_response *dst, struct http_response *src)
{
	buf_free(&dst->body);
	*dst = *src;
	buf_init(&src->body, HTTP_RESPONSE_MAX);
}

const struct handler_spec *handler_find(const struct handler_group *groups, size_t ngroups,
					enum route_kind k, const struct handler_group **group)
{
	for (size_t g = 0; g < ngroups; g++) {
		for (size_t i = 0; i < groups[g].n; i++) {
			if (groups[g].specs[i].kind != k)
				continue;
			*group = &groups[g];
			return &groups[g].specs[i];
		}
	}
	*group = NULL;
	return NULL;
}

unsigned handler_roles(const struct handler_spec *spec, void *ctx, const struct route *r)
{
	return spec->roles_of ? spec->roles_of(ctx, r) : spec->roles;
}
