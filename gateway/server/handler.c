#include <string.h>

#include "../../core/err.h"
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

enum mdm_err handler_table_build(struct handler_table *t, const struct handler_group *groups,
				 size_t ngroups, char *why, size_t whysz)
{
	memset(t, 0, sizeof(*t));
	for (size_t g = 0; g < ngroups; g++) {
		for (size_t i = 0; i < groups[g].n; i++) {
			const struct handler_spec *sp = &groups[g].specs[i];

			if ((unsigned)sp->kind >= ROUTE_KIND_COUNT || !sp->handle == !sp->answer) {
				err_why(why, whysz,
					"handler table: row %zu of group %zu is malformed", i, g);
				return MDM_ERR_INVALID;
			}
			if (t->spec[sp->kind]) {
				err_why(why, whysz, "handler table: two rows answer route kind %d",
					(int)sp->kind);
				return MDM_ERR_INVALID;
			}
			t->spec[sp->kind] = sp;
			t->group[sp->kind] = &groups[g];
		}
	}
	return MDM_OK;
}

unsigned handler_roles(const struct handler_spec *spec, void *ctx, const struct route *r)
{
	return spec->roles_of ? spec->roles_of(ctx, r) : spec->roles;
}
