/* remote: see remote.h. */
#include "remote.h"

enum mdm_err remote_open(struct pages *pages, struct http_health *health)
{
	if (pages_init(pages) != MDM_OK)
		return MDM_ERR_NOMEM;
	if (http_health_init(health) != MDM_OK) {
		pages_free(pages);
		return MDM_ERR_NOMEM;
	}
	return MDM_OK;
}

void remote_close(struct http_client **http, struct pages *pages, struct http_health *health)
{
	http_client_destroy(*http);
	*http = NULL;
	pages_free(pages);
	http_health_destroy(health);
}
