/*
 * mcms: the cloud MDM adapter, a client of the ISE MDM API (spec: backends.md section 2,
 * ise-mdm-api.md), so one adapter serves every MDM that implements it (Cisco MCMS, MaaS360,
 * MobileIron, Workspace ONE, Intune's compliance service, or another mdmgw). The pure half
 * (parsers, URLs, bodies, Retry-After) is mcms_rules.h; this is the I/O half on the shared
 * asynchronous HTTP engine: no call blocks, answers come through the adapter callbacks.
 *
 * Negotiation: GET <url>[/<instance>]/ciscoise/mdminfo/?ise_api_version=3; the answer's
 * api_version, api_path and query_max_size are used and cached. Callers that arrive while a
 * negotiation is under way wait for that one (one request, whoever asked). A 404 on a device
 * or action request drops the cache, negotiates again once and retries.
 *
 * Lookup: by MAC (macaddress), GUID (guid, v3), UDID/IMEI/MEID (v2), user name (v1) and host
 * name (guidhn, v3), every page followed. A kind the negotiated version lacks, and serial
 * numbers (no criterion has them), are OUTCOME_NOT_APPLICABLE, as SCCM answers kinds it cannot
 * ask by: the merge then ignores this source for that question. A record answered for an
 * identifier carries it, even when the MDM left the key element out of a single answer; each
 * MDM's own GUID passes through unchanged and none is ever made up. Any request failing
 * (transport, non-2xx, unparsable page): OUTCOME_FAILED with a reason, never a verdict.
 *
 * Listing (cursor ""): the whole listing is fetched, every page, and held as the newest
 * generation; pages of 1000 devices are served from it with cursors "g<generation>:<offset>"
 * (sccm's style; an expired or malformed cursor: OUTCOME_FAILED, "listing cursor expired").
 * Mode "all": no criterion. Mode "noncompliant_only": compliance=false, and every device that
 * was in the previous such listing and is no longer in it is asked for individually (by its
 * MAC, else GUID, UDID, IMEI or MEID) before it is reported: found, it is reported as the MDM
 * answers it (usually compliant); unknown, it is reported as not registered (register_status
 * false), never as compliant. Mode "auto": "all", and if the MDM refuses a full listing (403
 * or 400) "noncompliant_only" from then on, logged. Any page or confirmation failing: the
 * whole listing is OUTCOME_FAILED (never a partial answer passed off as complete).
 *
 * Throttling: a 429 (its Retry-After, else 5 s), a 503 with a Retry-After (a bare 503 is an
 * upstream gateway's "unavailable": a failure, no wait), and a <server_busy_wait_seconds>,
 * hold every further request to this MDM until then (the HTTP engine's not_before). A lookup
 * whose deadline falls before the end of the hold fails at once (FAIL_THROTTLED, saying so);
 * a listing page waits and retries while the hold ends within list_timeout of that page's
 * first try. Concurrency and rate: the HTTP client's max_connections and rate_per_sec.
 *
 * Loops: every request carries the hop headers the gateway's provider gives (X-Mdmgw-Via,
 * X-Mdmgw-Hops); an upstream gateway that refuses it answers 508, which is OUTCOME_FAILED
 * with the reason "loop: ...".
 *
 * Actions: vendor_id (the id this adapter's records carry) becomes the identifier again (a
 * MAC, else a GUID on v3, else a UDID, IMEI, MEID or serial) and the action is POSTed; the
 * MDM's action_status and failure_reason come back in struct action_result. A failure to ask
 * (transport, 4xx, 5xx, unreadable answer): fail set and the reason. Never retried, except
 * once after a 404 that made us negotiate again (a 404 executed nothing).
 *
 * test_connection: a fresh negotiation, and a message per cause (the seed's Test Connection
 * table): unreachable, 404 (instance), 403 (role), 401 (credentials or site), certificate not
 * trusted or expired, 508 (loop), or success with the negotiated version and query_max_size.
 */
#ifndef MDM_MCMS_H
#define MDM_MCMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/conf.h"
#include "adapter.h"
#include "http.h"
#include "http_conf.h"
#include "mcms_rules.h"
#include "registry.h"

#define MCMS_VIA_MAX 4200 /* the hop provider's Via value, with its NUL */

enum mcms_listing { MCMS_LIST_AUTO = 0, MCMS_LIST_ALL, MCMS_LIST_NONCOMPLIANT };

struct mcms_config {
	const char *name;     /* the adapter's name (logs, source of its records), 1..63 bytes */
	const char *url;      /* the MDM's https origin, "https://mdm.example.com[:port]" */
	const char *instance; /* optional path prefix ("" or NULL: none) */
	/* ca_file (the only trust anchor), pinned_key, user and password (Basic is forced),
	 * max_connections (0: 4), rate_per_sec, max_body, connect_timeout_ms, breaker_* */
	struct http_client_config http;
	int64_t list_timeout_ms; /* deadline of each listing request, and of waiting for a
				  * throttled one; 0: 30000 */
	enum mcms_listing listing;
	adapter_hops_fn hops; /* NULL: no hop headers */
	void *hops_arg;
};

/*
 * The keys of an adapter of type "mcms" once loaded (mcms_conf.c, docs/configuration.md);
 * mcms_adapter_type makes them a struct mcms_config.
 */
struct config_mcms {
	char url[513];		 /* https origin, no path; required */
	char instance[256];	 /* optional path prefix, [A-Za-z0-9._~/-]; "" none */
	struct config_http http; /* ca_file, pinned_key and the limits; max_connections 4 */
	char user[256];		 /* the API account (Basic); required */
	char password[256];	 /* secret; required */
	bool password_set;
	int64_t list_timeout_ms;   /* 1s..10m; default 30s */
	enum mcms_listing listing; /* auto (default), all or noncompliant_only */
};

/* The descriptor of type "mcms" (registry.h). */
extern const struct adapter_type mcms_adapter_type;

/*
 * mcms_create: a cloud MDM adapter on engine e (which must outlive it) into *out. Strings are
 * copied. MDM_ERR_CONFIG with a one-line reason in why when the config is wrong (no name, url
 * not an https origin, instance with characters outside A-Z a-z 0-9 - . _ ~ /, an HTTP client
 * that cannot be made: see http_client_create), MDM_ERR_NOMEM.
 */
enum mdm_err mcms_create(struct http_engine *e, const struct mcms_config *cfg, struct adapter **out,
			 char *why, size_t whysz);

#endif
