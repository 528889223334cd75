/*
 * coa_setup: the CoA side built from its configuration in one call: the sinks (RFC 5176 for the
 * nas[] list, ISE's MnT API, the webhook) and the dispatcher over them. See coa_start in coa.h.
 */
#include <stdio.h>

#include "../../adapters/http.h"
#include "../../core/log.h"
#include "coa.h"
#include "coa_mnt.h"
#include "coa_radius.h"
#include "coa_webhook.h"

/* The HTTP sinks (mnt, webhook) that are configured, on engine e, appended to sinks. */
static enum mdm_err http_sinks(const struct config_coa *cc, struct http_engine *e,
			       struct coa_sink **sinks, size_t *n, char *why, size_t whysz)
{
	enum mdm_err rc;

	if (cc->mnt.url[0]) {
		struct coa_mnt_config mc = {"mnt",
					    cc->mnt.url,
					    cc->mnt.ca_file,
					    cc->mnt.user,
					    cc->mnt.password,
					    cc->mnt.reauth_type,
					    cc->mnt.disconnect_port,
					    cc->mnt.timeout_ms};

		if ((rc = coa_mnt_create(e, &mc, &sinks[*n], why, whysz)) != MDM_OK)
			return rc;
		(*n)++;
	}
	if (cc->webhook.url[0]) {
		struct coa_webhook_config wc = {"webhook", cc->webhook.url, cc->webhook.ca_file,
						cc->webhook.secret, cc->webhook.timeout_ms};

		if ((rc = coa_webhook_create(e, &wc, &sinks[*n], why, whysz)) != MDM_OK)
			return rc;
		(*n)++;
	}
	return MDM_OK;
}

/* Every configured sink into sinks (*n of them); the HTTP ones on a new engine *http. */
static enum mdm_err make_sinks(const struct coa_setup *s, struct coa_sink **sinks, size_t *n,
			       struct http_engine **http, char *why, size_t whysz)
{
	const struct config_coa *cc = s->cfg;
	enum mdm_err rc;

	if (s->nnas > 0) {
		if ((rc = coa_radius_create(s->nas, s->nnas, &sinks[*n], why, whysz)) != MDM_OK)
			return rc;
		(*n)++;
	}
	if (!cc->mnt.url[0] && !cc->webhook.url[0])
		return MDM_OK;
	*http = http_engine_create(NULL);
	if (!*http) {
		snprintf(why, whysz, "cannot start the HTTP engine");
		return MDM_ERR_NOMEM;
	}
	return http_sinks(cc, *http, sinks, n, why, whysz);
}

enum mdm_err coa_start(const struct coa_setup *s, struct coa **out, struct http_engine **http,
		       char *why, size_t whysz)
{
	const struct config_coa *cc = s->cfg;
	struct coa_config dc = {cc->rate_per_sec, cc->max_attempts, cc->backoff_ms, cc->queue_max,
				s->drain_ms};
	struct coa_sink *sinks[3];
	size_t n = 0;
	enum mdm_err rc;

	*out = NULL;
	*http = NULL;
	if (!cc->mnt.url[0] && !cc->webhook.url[0] && s->nnas == 0)
		return MDM_OK;
	rc = make_sinks(s, sinks, &n, http, why, whysz);
	if (rc != MDM_OK) {
		for (size_t i = 0; i < n; i++)
			sinks[i]->ops->destroy(sinks[i]);
		return rc;
	}
	*out = coa_create(&dc, sinks, n, &s->hooks);
	if (!*out) {
		snprintf(why, whysz, "cannot start the dispatcher");
		return MDM_ERR_NOMEM;
	}
	log_info("coa: %zu sink%s, %.1f per second, %u attempts", n, n == 1 ? "" : "s",
		 cc->rate_per_sec, cc->max_attempts);
	return MDM_OK;
}
