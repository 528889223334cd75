/*
 * coa_radius: the RFC 5176 CoA sink (coa_sink.h, type "radius", needs_session): for each known
 * session of a device it sends a CoA-Request or Disconnect-Request to the session's NAS, as the
 * configuration's "nas" list describes it, and reports the NAS's answer.
 *
 * The NAS of a session is the first entry whose identifier equals the session's NAS-Identifier,
 * else the one whose address equals its NAS-IP-Address; none: COA_ERROR "no NAS configured for
 * <ip>". The request carries NAS-IP-Address, NAS-Identifier, User-Name, Calling-Station-Id
 * ("AA-BB-CC-DD-EE-FF"), Acct-Session-Id as known, Event-Timestamp and a Message-Authenticator;
 * a reauthenticate or bounce-port CoA-Request also a Cisco-AVPair "subscriber:command=..." (the
 * former only with cisco_avpair). An event of kind TRANSITION_DISCONNECT always sends a
 * Disconnect-Request, whatever the NAS's action.
 *
 * Retransmissions reuse the Identifier and authenticator, waiting timeout, 2x, 4x ... between
 * tries (the retry policy and its worst case: coa_policy.h). An ACK is COA_OK; a NAK is COA_REFUSED
 * with its Error-Cause in the detail, or COA_NO_SESSION for 503 (Session-Context-Not-Found); no
 * valid reply after the tries is COA_NO_ANSWER. A reply failing verification (authenticators, a
 * Message-Authenticator that is required or present, a code that does not answer the request) is
 * dropped, logged, and the wait goes on. Every attempt and outcome is logged with the event id and
 * epoch.
 *
 * One UDP socket per sink (IPv6 with IPv4-mapped addresses, or IPv4 alone where the host has no
 * IPv6) and one thread that receives replies, matches them by (peer, Identifier), retransmits
 * and calls the callbacks; identifiers are allocated so that no two outstanding requests to one
 * NAS share one (256 outstanding per NAS at most: send() answers MDM_ERR_BUSY past that).
 * Callbacks are always called on that thread, never inside send().
 */
#ifndef MDM_COA_RADIUS_H
#define MDM_COA_RADIUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../core/err.h"
#include "coa_policy.h"
#include "coa_sink.h"

/* --- nas: the switches (RFC 5176 Dynamic Authorization Servers) the radius CoA sink asks --- */
#define CONFIG_MAX_NAS 256
enum config_nas_action { CONFIG_NAS_REAUTH = 0, CONFIG_NAS_BOUNCE, CONFIG_NAS_DISCONNECT };

struct config_nas {
	char address[46];    /* IP the sessions report as NAS-IP-Address; required, unique */
	char identifier[64]; /* NAS-Identifier that also matches a session to it; "" none */
	char host[256];	     /* where CoA is sent (name or IP); default address */
	unsigned port;	     /* 1..65535; default COA_NAS_PORT_DEFAULT (3799) */
	char secret[129];    /* secret; required */
	bool secret_set;
	bool require_message_authenticator; /* on replies; default true */
	enum config_nas_action
	    action;	    /* "reauthenticate" (default) | "bounce-port" | "disconnect" */
	bool cisco_avpair;  /* reauthenticate with Cisco-AVPair subscriber:command=...; default true
			     */
	int64_t timeout_ms; /* first wait for a reply, doubled each retransmission; 100ms..30s,
			     * default COA_NAS_TIMEOUT_MS_DEFAULT */
	unsigned tries;	    /* sends in all, 1..10; default COA_NAS_TRIES_DEFAULT */
};

/*
 * coa_radius_create: a sink for the n NAS entries of nas (copied; n may be 0, then every send
 * reports "no NAS configured"). An entry's empty host, zero port, timeout or tries take the
 * configuration's defaults (address, and coa_policy.h's). Resolves every host now: MDM_ERR_CONFIG
 * with "nas[i].host: ..." in why when one does not resolve; MDM_ERR_IO when the socket or thread
 * cannot be made. Free it with (*out)->ops->destroy(*out).
 */
enum mdm_err coa_radius_create(const struct config_nas *nas, size_t n, struct coa_sink **out,
			       char *why, size_t whysz);

/* coa_radius_station_id: a MAC of 12 hex digits as "AA-BB-CC-DD-EE-FF" into out (18 bytes);
 * MDM_ERR_INVALID for anything else (out is "" then). */
enum mdm_err coa_radius_station_id(const char *mac, char out[18]);

#endif
