/*
 * mcms_rules: the pure, I/O-free half of the cloud MDM adapter (spec: backends.md section 2). The
 * adapter is a client of the ISE MDM API (ise-mdm-api.md), the API the gateway itself serves, so
 * one adapter serves every cloud MDM that implements it (MCMS, MaaS360, Intune's compliance
 * service...). This half parses the MDM's answers into C structs, builds the request URLs and
 * bodies, and reads Retry-After. Nothing here touches the network or the clock.
 *
 * Every XML parser here is tolerant of what real servers send and strict about what could hurt:
 *   - element names are matched ignoring ASCII case, and any namespace prefix is ignored
 *     (Intune writes <Attributes>, <Compliance> under a default namespace);
 *   - unknown elements are ignored, missing optional ones take their default;
 *   - an absent or empty state element is "not reported" (TRI_UNSET), never false;
 *   - a DOCTYPE, entity declarations and external entities are refused (XXE, billion laughs),
 *     nesting deeper than MCMS_MAX_DEPTH elements is refused, and a body over max_body bytes is
 *     MDM_ERR_TOOBIG before it is parsed. A text node is kept up to MCMS_TEXT_MAX bytes; the
 *     rest is ignored (each field has its own, smaller bound anyway).
 */
#ifndef MDM_MCMS_RULES_H
#define MDM_MCMS_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/buf.h"
#include "../core/device.h"
#include "../core/err.h"
#include "../core/ident.h"

#define MCMS_MAX_DEPTH 16	    /* open elements, the root counts as 1 */
#define MCMS_TEXT_MAX 4096	    /* bytes of one text node kept */
#define MCMS_API_PATH_MAX 255	    /* api_path, without the NUL */
#define MCMS_REDIRECT_MAX 1023	    /* redirect_url, without the NUL */
#define MCMS_PRODUCT_MAX 127	    /* vendor, product_name, product_version, without the NUL */
#define MCMS_QUERY_MAX_DEFAULT 5000 /* query_max_size when the MDM does not say (spec default) */
#define MCMS_QUERY_MAX_LIMIT 100000 /* query_max_size is clamped to 1..this */
#define MCMS_BUSY_WAIT_MAX 3600	    /* server_busy_wait_seconds is clamped to 0..this */
#define MCMS_RETRY_MAX_MS 3600000   /* Retry-After is clamped to one hour */
#define MCMS_URL_MAX 2048	    /* holds every URL built here (base and api_path <= 512) */

/* --- mdminfo ------------------------------------------------------------------------------ */

struct mcms_info {
	int api_version;			  /* 1..3 */
	char api_path[MCMS_API_PATH_MAX + 1];	  /* "/ciscoise/mdmapi/v3", no trailing slash */
	uint32_t query_max_size;		  /* 1..MCMS_QUERY_MAX_LIMIT */
	char redirect_url[MCMS_REDIRECT_MAX + 1]; /* "" when absent or too long */
	char vendor[MCMS_PRODUCT_MAX + 1];	  /* "" when absent; cut at a UTF-8 boundary */
	char product_name[MCMS_PRODUCT_MAX + 1];
	char product_version[MCMS_PRODUCT_MAX + 1];
	bool messaging_support; /* false unless the MDM says "true" */
};

/*
 * mcms_mdminfo_parse: the answer to GET /ciscoise/mdminfo/ into out (zeroed first). The root
 * element's children are read, whatever the root is called. api_version must be an integer
 * 1..3 (we ask for 3; a higher answer is a server that ignores the question). api_path must be
 * an absolute path ("/..."), with no query, fragment, white space or control characters;
 * trailing slashes are dropped ("/" alone stays). query_max_size: absent -> 5000, a number out
 * of range is clamped to 1..MCMS_QUERY_MAX_LIMIT. vendor, product_name, product_version are
 * optional here even for v3 (being lenient costs nothing: they are only shown to an admin).
 * Errors, with a reason in why:
 *   MDM_ERR_TOOBIG  len > max_body;
 *   MDM_ERR_PARSE   not XML, DTD/entities, too deep, api_version or api_path missing or bad,
 *                   query_max_size not a number, messaging_support neither true nor false;
 *   MDM_ERR_NOMEM.
 */
enum mdm_err mcms_mdminfo_parse(const char *body, size_t len, size_t max_body,
				struct mcms_info *out, char *why, size_t whysz);

/* --- device attributes -------------------------------------------------------------------- */

/*
 * mcms_devices_parse: an "attributes" answer (<ise_api><deviceList><device>...) into oc, which
 * must have been through outcome_init; whatever it held is replaced.
 *
 * Each <device> (a child of <deviceList>) becomes one struct device:
 *   - its key, <macaddress> or <guid> directly under <device>, may be absent (some servers leave
 *     it out of single answers); <attributes> holds the rest; a <compliance> holds status,
 *     failure_reason and remediation (a <compliance> that holds only "true"/"false" as text is
 *     read as the status, which some servers do);
 *   - register_status, compliance/status, disk_encryption_on, pin_lock_on, jail_broken: "true"
 *     or "false" ignoring case and surrounding white space; absent or empty: TRI_UNSET; any
 *     other value: TRI_UNSET and counted in *dropped;
 *   - identifiers are validated with mac_parse / ident_parse: the key <macaddress>, v3's
 *     <macaddresses> (comma separated, at most DEVICE_MACS_MAX kept, duplicates merged; also
 *     accepted: <macaddress> inside <attributes>), <guid>, <udid>, <imei>, <meid>,
 *     <serial_number>, and, when a server sends them, <hostname> and <username>. A value that
 *     does not validate is dropped and counted in *dropped; it never fails the page;
 *   - manufacturer, model, os_version, phone_number, failure_reason, remediation are copied,
 *     cut at a UTF-8 boundary to their field; lastCheckinTimeStamp is milliseconds since the
 *     epoch (a bad one is 0 and counted); <ownership> "corporate"/"personal" (not in the spec,
 *     but carried when an MDM sends it: it matters for full wipe);
 *   - vendor_id is the MDM's GUID when it sent one, else the first MAC, else the UDID, else the
 *     serial number, else the IMEI, else the MEID, else "" (a device with no usable identifier
 *     is kept: a single answer is about the key the caller asked by). source = source.
 * An empty <deviceList/> gives OUTCOME_NOT_ENROLLED; one device or more, OUTCOME_FOUND.
 * *next_paging is <paging_info> (0 when absent: no more pages); *busy_wait_s is
 * <server_busy_wait_seconds> (0 when absent or not a number, clamped to MCMS_BUSY_WAIT_MAX).
 * dropped may be NULL. fetched_at_ms is left 0: the caller stamps it.
 * Errors, with a reason in why; oc is then OUTCOME_FAILED with FAIL_PROTOCOL and that reason:
 *   MDM_ERR_TOOBIG  len > max_body, or more than max_devices devices;
 *   MDM_ERR_PARSE   not XML, DTD/entities, deeper than MCMS_MAX_DEPTH, no <deviceList> at all
 *                   (an error page must not read as "not enrolled"), <paging_info> not an
 *                   unsigned 32-bit integer;
 *   MDM_ERR_INVALID source too long or NULL arguments;
 *   MDM_ERR_NOMEM.
 */
enum mdm_err mcms_devices_parse(const char *body, size_t len, size_t max_body, size_t max_devices,
				const char *source, struct outcome *oc, uint32_t *next_paging,
				int *busy_wait_s, size_t *dropped, char *why, size_t whysz);

/* --- actions ------------------------------------------------------------------------------ */

/*
 * mcms_action_parse: an "action" answer (<ise_api>...<result><action_status>true|false
 * </action_status><failure_reason>...</failure_reason></result>...). *accepted is true only
 * when every <action_status> says true (there is one per device; we send one identifier).
 * reason receives the first non-empty <failure_reason> (cut at a UTF-8 boundary), "" when
 * none. Errors, with a reason in why: MDM_ERR_TOOBIG len > max_body; MDM_ERR_PARSE not XML,
 * DTD/entities, too deep, no <action_status>, or one that is neither true nor false; then
 * *accepted is false and reason "".
 */
enum mdm_err mcms_action_parse(const char *body, size_t len, size_t max_body, bool *accepted,
			       char *reason, size_t reasonsz, char *why, size_t whysz);

/*
 * mcms_action_body: the request body of an action for id, appended to out:
 *   <ise_api><identifier><macaddress>0026B424FEB4</macaddress></identifier></ise_api>
 * Tags: macaddress, guid, udid, imei, meid, serial_number (the value XML-escaped).
 * MDM_ERR_INVALID for a host name or user name (no action names a device by them);
 * MDM_ERR_TOOBIG / MDM_ERR_NOMEM from out.
 */
enum mdm_err mcms_action_body(const struct ident *id, struct buf *out);

/* --- request URLs ------------------------------------------------------------------------- */

/* What a device query asks by. MCMS_BY_NONE lists all devices (paged). */
enum mcms_criterion {
	MCMS_BY_NONE = 0,
	MCMS_BY_MAC,	    /* macaddress, v1 */
	MCMS_BY_COMPLIANCE, /* compliance (value "true"/"false"), v1 */
	MCMS_BY_USERNAME,   /* username, v1 */
	MCMS_BY_UDID,	    /* udid, v2 */
	MCMS_BY_IMEI,	    /* imei, v2 */
	MCMS_BY_MEID,	    /* meid, v2 */
	MCMS_BY_GUID,	    /* guid, v3 */
	MCMS_BY_HOSTNAME,   /* guidhn, v3 */
};

/* mcms_criterion_name: the wire name ("macaddress" ... "guidhn"; "" for MCMS_BY_NONE). */
const char *mcms_criterion_name(enum mcms_criterion c);
/* mcms_criterion_version: the lowest api_version that has c (1, 2 or 3); 0 when c is bad. */
int mcms_criterion_version(enum mcms_criterion c);

/*
 * mcms_url_mdminfo: <base>[/<instance>]/ciscoise/mdminfo/?ise_api_version=<version>.
 * base is the MDM's origin ("https://mdm.example.com[:port]"; trailing slashes dropped);
 * instance (NULL or "": none) has its surrounding slashes dropped and each byte outside
 * A-Z a-z 0-9 - . _ ~ / percent-encoded. MDM_ERR_INVALID for an empty base or a version
 * outside 1..3; MDM_ERR_TOOBIG when out (outsz bytes) is too small.
 */
enum mdm_err mcms_url_mdminfo(const char *base, const char *instance, int version, char *out,
			      size_t outsz);

/*
 * mcms_url_devices: the device query for the negotiated version, against base (the origin,
 * as above) and api_path (as mdminfo gave it: it already holds any instance prefix):
 *   v2, v3: <base><api_path>/devices/?paging=N&querycriteria=<name>&value=<value>&filter=all
 *           <base><api_path>/devices/?paging=N&filter=all                (MCMS_BY_NONE)
 *   v1:     <base><api_path>/devices/N/<name>/<value>/all   and   <base><api_path>/devices/N/all
 *           (v1 servers know only the path form; v2+ servers must still accept it, but the
 *           query form is what they document.)
 * The value is validated and normalised for its criterion (MAC: any form mac_parse takes, sent
 * as 12 upper-case hex; compliance: "true"/"false" ignoring case, sent lower case; the others:
 * ident_parse of the matching kind), then percent-encoded (unreserved bytes kept, %XX upper).
 * MDM_ERR_INVALID: a criterion the version lacks (udid on v1, guid on v2...), a bad value, an
 * empty base, an api_path not starting with '/', a version outside 1..3; MDM_ERR_TOOBIG when
 * out is too small.
 */
enum mdm_err mcms_url_devices(const char *base, const char *api_path, int version,
			      enum mcms_criterion crit, const char *value, uint32_t paging,
			      char *out, size_t outsz);

/*
 * mcms_url_action: <base><api_path>/action/?actionType=<corporate_wipe|full_wipe|pin_lock>.
 * MDM_ERR_INVALID for a bad kind, an empty base or a bad api_path; MDM_ERR_TOOBIG.
 */
enum mdm_err mcms_url_action(const char *base, const char *api_path, enum action_kind kind,
			     char *out, size_t outsz);

/* --- throttling --------------------------------------------------------------------------- */

/*
 * mcms_retry_after_parse: a Retry-After header value (RFC 9110 10.2.3), surrounding white
 * space ignored, into a delay: delta-seconds (digits only), or an HTTP-date minus now_wall_ms
 * (a date in the past is 0). HTTP-dates in the three forms recipients must accept: IMF-fixdate
 * "Sun, 06 Nov 1994 08:49:37 GMT", RFC 850 "Sunday, 06-Nov-94 08:49:37 GMT" (two-digit years
 * read as 1970..2069) and asctime "Sun Nov  6 08:49:37 1994"; names in their exact case. The delay
 * is clamped to MCMS_RETRY_MAX_MS, so a server cannot park the adapter for a day.
 * MDM_ERR_INVALID for anything else (the caller then applies its own back-off); *delay_ms is
 * only written on success.
 */
enum mdm_err mcms_retry_after_parse(const char *header_value, int64_t now_wall_ms,
				    int64_t *delay_ms);

#endif
