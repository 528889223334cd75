/*
 * coa_mnt: the CoA sink that asks Cisco ISE's Monitoring node (MnT REST API) to send the CoA:
 * ISE knows the session, so no switch secret is needed. Sink type "mnt", needs_session false.
 *   GET /admin/API/mnt/Session/MACAddress/<AA:BB:CC:DD:EE:FF>   -> acs_server (the PSN),
 *       nas_ip_address, framed_ip_address; 404 or no session -> COA_NO_SESSION
 *   GET /admin/API/mnt/CoA/Reauth/<psn>/<MAC>/<reauth type>
 *   GET /admin/API/mnt/CoA/Disconnect/<psn>/<MAC>/<port option>/<nas ip>/<endpoint ip>
 * <remoteCoA><results>true</results></remoteCoA> -> COA_OK, false -> COA_REFUSED; 5xx and
 * transport failures COA_ERROR, timeouts COA_NO_ANSWER (retried by the dispatcher).
 */
#ifndef MDM_COA_MNT_H
#define MDM_COA_MNT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../adapters/http.h"
#include "coa_sink.h"

struct coa_mnt_config {
	const char *name;	  /* NULL: "mnt" */
	const char *url;	  /* https origin of the MnT node */
	const char *ca_file;	  /* the only trust anchor */
	const char *user;	  /* Basic auth */
	const char *password;	  /* never logged */
	unsigned reauth_type;	  /* 0 default, 1 last, 2 rerun */
	unsigned disconnect_port; /* 0 default, 1 bounce, 2 shutdown */
	int64_t timeout_ms;	  /* per request; 0: COA_HTTP_TIMEOUT_MS_DEFAULT */
};

enum mdm_err coa_mnt_create(struct http_engine *e, const struct coa_mnt_config *cfg,
			    struct coa_sink **out, char *why, size_t whysz);

/* What the session lookup tells: "" for what the answer did not carry. */
struct coa_mnt_session {
	char psn[256];	    /* acs_server */
	char nas_ip[64];    /* nas_ip_address */
	char framed_ip[64]; /* framed_ip_address */
};

/*
 * coa_mnt_parse_session: an MnT session answer (hardened expat: no DTD, no entities, depth and
 * text bounded). MDM_ERR_NOTFOUND when it names no PSN (no active session), MDM_ERR_PARSE
 * with why for a broken document or a value that is not a host name / IP address,
 * MDM_ERR_TOOBIG for an answer over 256 KiB.
 */
enum mdm_err coa_mnt_parse_session(const char *xml, size_t len, struct coa_mnt_session *out,
				   char *why, size_t whysz);

/* coa_mnt_parse_result: <remoteCoA><results>true|false</results>: *ok. MDM_ERR_PARSE
 * when the document is broken or has no results element. */
enum mdm_err coa_mnt_parse_result(const char *xml, size_t len, bool *ok, char *why, size_t whysz);

#endif
