/*
 * sccm: Microsoft SCCM / ConfigMgr through its AdminService (OData v4 over HTTPS), answering as
 * ISE answers when it runs its WQL over WMI (spec: backends.md section 1; the rules themselves
 * are in sccm_rules.h). Network I/O goes through the shared asynchronous HTTP engine: no call
 * blocks, every answer comes through the adapter callback on the engine thread.
 *
 * Lookup by MAC: SMS_R_System (MACAddresses) and SMS_G_System_NETWORK_ADAPTER (MACAddress) at
 * once; then, for the chosen resource, SMS_G_System_CI_ComplianceState and
 * SMS_G_System_CH_ClientSummary at once. Lookup by GUID (SMSUniqueIdentifier) starts from
 * SMS_R_System alone. Other identifiers: OUTCOME_NOT_APPLICABLE. Any request failing (transport,
 * non-2xx, unparsable page) makes the outcome OUTCOME_FAILED with a reason: never a verdict.
 * Actions: never accepted (SCCM does not wipe or PIN-lock domain PCs); the reason says so.
 * Listing: cursor "" fetches every page of the four classes (each class's pages in sequence,
 * the classes at once; a nextLink is only followed on the base URL's scheme, host and port;
 * more than 1,000,000 rows in a class is refused), joins them by ResourceID (a resource named
 * by SMS_R_System or by a NETWORK_ADAPTER row is one device), keeps that listing as the newest
 * generation and answers its first 1000 devices; next_cursor "g<generation>:<offset>" reads on,
 * "" after the last page. A cursor of a generation no longer held (only the newest is kept) or a
 * malformed one: OUTCOME_FAILED, FAIL_PROTOCOL, "listing cursor expired". Never partial.
 * test_connection: GET <base>/wmi/$metadata, then an SMS_R_System query that matches no row,
 * within 10 s; the message says what to fix. health: the HTTP client's counters and breaker,
 * and whether the adapter's last lookup, listing or test succeeded.
 */
#ifndef MDM_SCCM_H
#define MDM_SCCM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/conf.h"
#include "adapter.h"
#include "http.h"
#include "http_conf.h"
#include "registry.h"
#include "sccm_rules.h"

#define SCCM_MAX_ONLY_CI 64

/*
 * The keys of an adapter of type "sccm" once loaded (sccm_conf.c, docs/configuration.md);
 * sccm_adapter_type makes them a struct sccm_config.
 */
struct config_sccm {
	char url[513];		 /* https:// only, <= 512 bytes; required */
	struct config_http http; /* ca_file, pinned_key and the limits; max_connections 8 */
	enum http_auth auth;	 /* negotiate (default), ntlm or basic */
	char user[256];		 /* required for ntlm and basic, refused for negotiate */
	char password[256];	 /* secret; the same rule as user */
	bool password_set;
	char only_ci[SCCM_MAX_ONLY_CI][256]; /* CI_UniqueIDs counted for compliance; none: all */
	size_t nonly_ci;
	bool no_baseline_compliant; /* a registered device with no baseline rows is compliant */
	size_t page_rows;	    /* 1..1000000; default 10000 */
	int64_t list_timeout_ms;    /* 1s..10m; default 30s */
};

/* The descriptor of type "sccm" (registry.h). */
extern const struct adapter_type sccm_adapter_type;

struct sccm_config {
	const char *name; /* the adapter's name (logs, source of its records) */
	const char
	    *base_url; /* "https://cm01.corp.example/AdminService"; https only, <= 512 bytes */
	struct http_client_config http; /* CA file, pin, auth, user, password, limits, breaker */
	/* Compliance counted only over these CI_UniqueIDs (ignoring case); none: every baseline. */
	const char *const *only_ci;
	size_t nonly_ci;
	bool no_rows_compliant;	 /* a registered device with no baseline rows is compliant */
	size_t page_rows;	 /* most rows accepted in one OData page; 0: 10000 */
	int64_t list_timeout_ms; /* deadline of each listing request; 0: 30000 */
};

/*
 * sccm_create: an SCCM adapter on engine e (which must outlive it). The strings are copied.
 * NULL with a one-line reason in why when the config is wrong (no or non-https base_url, an
 * HTTP client that cannot be made: see http_client_create) or memory runs out.
 */
struct adapter *sccm_create(struct http_engine *e, const struct sccm_config *cfg, char *why,
			    size_t whysz);

#endif
