/*
 * coa_webhook: the CoA sink that POSTs each transition as signed JSON to a configured HTTPS URL
 * (for NAC engines and SOAR tools that are not ISE). Sink type "webhook", needs_session false.
 *
 * Body: {"event", "id", "epoch", "mac", "guid", "from", "to", "reason", "at"}; headers
 * Content-Type: application/json, X-Mdmgw-Event-Id: <id> and
 * X-Mdmgw-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed by the secret>.
 * 2xx is COA_OK; 4xx other than 408 and 429 is COA_REFUSED; a timeout is COA_NO_ANSWER; the
 * rest (5xx, 408, 429, TLS, connection) COA_ERROR, which the dispatcher retries.
 */
#ifndef MDM_COA_WEBHOOK_H
#define MDM_COA_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#include "../../adapters/http.h"
#include "../../core/buf.h"
#include "coa_sink.h"

#define COA_WEBHOOK_SECRET_MIN 16

struct coa_webhook_config {
	const char *name;    /* sink name for logs; NULL: "webhook" */
	const char *url;     /* https:// */
	const char *ca_file; /* the only trust anchor */
	const char *secret;  /* HMAC key, >= COA_WEBHOOK_SECRET_MIN bytes */
	int64_t timeout_ms;  /* one attempt, all included; 0: COA_HTTP_TIMEOUT_MS_DEFAULT */
};

/*
 * coa_webhook_create: a sink on engine e. MDM_ERR_CONFIG with why when the URL, CA file or
 * secret will not do; MDM_ERR_NOMEM.
 */
enum mdm_err coa_webhook_create(struct http_engine *e, const struct coa_webhook_config *cfg,
				struct coa_sink **out, char *why, size_t whysz);

/* coa_webhook_event_name: "blocked", "unblocked", "registration_changed" or
 * "compliance_changed", from the event's to/from states. */
const char *coa_webhook_event_name(const struct transition *ev);

/* coa_webhook_body: the JSON body of ev (compact, one object) appended to out. */
enum mdm_err coa_webhook_body(const struct transition *ev, struct buf *out);

/*
 * coa_webhook_sign: the X-Mdmgw-Signature value "t=<t>,v1=<64 hex>" of body at unix time t,
 * into out (outsz >= 96). MDM_ERR_INVALID for an empty secret, MDM_ERR_INTERNAL when OpenSSL
 * fails.
 */
enum mdm_err coa_webhook_sign(const char *secret, int64_t t, const char *body, size_t len,
			      char *out, size_t outsz);

#endif
