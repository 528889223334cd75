/*
 * sccm_rules: the pure, I/O-free half of the SCCM / ConfigMgr adapter (spec: backends.md section
 * 1). It turns AdminService (OData v4) answers into C structs, builds the request URLs, and applies
 * the rules ISE applies to the WQL join it runs over WMI: which resource a MAC means, whether it
 * is compliant, and what the device record says. Nothing here touches the network or the clock.
 */
#ifndef MDM_SCCM_RULES_H
#define MDM_SCCM_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/device.h"
#include "../core/err.h"
#include "../core/ident.h"

#define SCCM_NAME_MAX 253      /* SMS_R_System.Name, stored as sent (a NetBIOS/DNS name) */
#define SCCM_CI_ID_MAX 255     /* CI_UniqueID ("ScopeId_.../Baseline_.../<version>") */
#define SCCM_NEXTLINK_MAX 2047 /* @odata.nextLink, without the NUL */
#define SCCM_URL_MAX 2048      /* a buffer that holds every URL built here (with base <= 512) */

/*
 * sccm_time_parse: a LastPolicyRequest value into milliseconds since the Unix epoch (UTC).
 * Accepted forms, exactly:
 *   WMI CIM datetime  yyyymmddHHMMSS.ffffff+UUU or -UUU   (UUU: minutes east of UTC, 000..999)
 *   ISO-8601 (OData)  yyyy-mm-ddTHH:MM:SS[.f...][Z|+HH:MM|-HH:MM]   (no offset: UTC)
 * Fractions are truncated to milliseconds. Month 1..12, day within the month (leap years),
 * hour 0..23, minute and second 0..59 (no leap second), offset hour 0..23 and minute 0..59.
 * WMI wildcards ('*'), other separators, trailing bytes, and instants before 1970-01-01T00:00Z
 * are MDM_ERR_INVALID. Independent of TZ: calendar arithmetic, no timegm/mktime.
 */
enum mdm_err sccm_time_parse(const char *s, int64_t *ms);

/* --- rows of the four WMI classes ----------------------------------------------------------- */

/* SMS_R_System. Integer flags are -1 when null or absent ("not reported"). */
struct sccm_system {
	long long resource_id;
	char name[SCCM_NAME_MAX + 1];
	char macs[DEVICE_MACS_MAX][MAC_STR_LEN + 1]; /* normalised, de-duplicated */
	unsigned nmacs;
	int client, active, obsolete, decommissioned;
	char sms_unique_id[GUID_MAX + 1]; /* "" when null or absent */
};

/* SMS_G_System_NETWORK_ADAPTER. */
struct sccm_nic {
	long long resource_id;
	char mac[MAC_STR_LEN + 1];
};

/* SMS_G_System_CI_ComplianceState: one configuration baseline of one resource. */
struct sccm_ci_state {
	long long resource_id;
	char ci_unique_id[SCCM_CI_ID_MAX + 1];
	int compliance_state;		    /* -1 when null or absent */
	char display_name[DEVICE_TEXT_MAX]; /* LocalizedDisplayName, cut at a UTF-8 boundary */
};

/* SMS_G_System_CH_ClientSummary. */
struct sccm_client_summary {
	long long resource_id;
	int64_t last_policy_request_ms; /* 0 when null or absent */
};

enum sccm_class {
	SCCM_SYSTEM = 0,     /* SMS_R_System */
	SCCM_NIC,	     /* SMS_G_System_NETWORK_ADAPTER */
	SCCM_CI_STATE,	     /* SMS_G_System_CI_ComplianceState */
	SCCM_CLIENT_SUMMARY, /* SMS_G_System_CH_ClientSummary */
};

/* sccm_class_name: the WMI class name, e.g. "SMS_R_System". */
const char *sccm_class_name(enum sccm_class cls);

/*
 * One parsed OData page. Exactly one of the row arrays (the one of cls) is set, with nrows
 * entries (it may be NULL when nrows is 0). Rows the parser drops are counted, not fatal:
 * bad_macs counts MAC strings that do not parse (SCCM holds odd entries such as
 * "00:00:00:00:00:00" or RAS adapters' pseudo-addresses); a NIC row whose MAC is null, absent or
 * unparsable is dropped, since a NIC row is only useful for its MAC. extra_macs counts valid
 * MACs of an SMS_R_System row past DEVICE_MACS_MAX (the first ones are kept).
 */
struct sccm_page {
	enum sccm_class cls;
	size_t nrows;
	struct sccm_system *systems;
	struct sccm_nic *nics;
	struct sccm_ci_state *ci_states;
	struct sccm_client_summary *summaries;
	size_t bad_macs;
	size_t extra_macs;
	char next_link[SCCM_NEXTLINK_MAX + 1]; /* "" when the page is the last */
};

/*
 * sccm_odata_page: parses one AdminService answer {"@odata.context": ..., "value": [...],
 * "@odata.nextLink": "..."} for class cls into page (which the caller frees with sccm_page_free,
 * also after an error). Unknown keys anywhere are ignored; property names are matched exactly
 * first, then ignoring ASCII case (WMI names are case-insensitive: SMS_R_System says
 * "ResourceId", the SMS_G_ classes "ResourceID").
 * Errors, with a reason in why:
 *   MDM_ERR_TOOBIG  len > max_body, more than max_rows rows, or a nextLink too long;
 *   MDM_ERR_PARSE   not JSON, no "value" array, a row that is not an object, a ResourceId
 *                   missing, or a field we use with the wrong type or out of range; the reason
 *                   names class, row and key: "SMS_R_System value[1].Client: must be an integer";
 *   MDM_ERR_NOMEM.
 */
enum mdm_err sccm_odata_page(const char *body, size_t len, enum sccm_class cls, size_t max_body,
			     size_t max_rows, struct sccm_page *page, char *why, size_t whysz);
/* sccm_page_free: releases the rows; the page is empty again. NULL does nothing. */
void sccm_page_free(struct sccm_page *page);

/* --- request URLs ------------------------------------------------------------------------- */

/*
 * sccm_odata_quote: value as an OData string literal: wrapped in single quotes, each single
 * quote inside doubled ("O'Brien" -> "'O''Brien'"). Not yet URL-encoded. MDM_ERR_TOOBIG when
 * out (outsz bytes) is too small.
 */
enum mdm_err sccm_odata_quote(const char *value, char *out, size_t outsz);

/*
 * URLs against base (the AdminService root, e.g. "https://cm01.corp.example/AdminService";
 * trailing slashes are dropped) on the WMI route. The $filter expression is percent-encoded
 * with one rule: bytes outside A-Z a-z 0-9 - . _ ~ ' ( ) : / , become %XX (upper case), so a
 * space is %20 and a single quote stays a literal ' (RFC 3986 sub-delim, as OData's URL
 * conventions write literals). Example, sccm_url_system_by_mac(base, "64315010DA60", ...):
 *   <base>/wmi/SMS_R_System?$filter=MACAddresses/any(m:%20m%20eq%20'64:31:50:10:DA:60')
 *   &$select=ResourceId,Name,MACAddresses,Client,Active,Obsolete,Decommissioned,SMSUniqueIdentifier
 * (one line). mac is any form mac_parse accepts; SCCM stores it upper case with colons.
 * MDM_ERR_INVALID for an empty base, a bad MAC or a negative resource id; MDM_ERR_TOOBIG when
 * out is too small (SCCM_URL_MAX always suffices for a base of up to 512 bytes).
 */
enum mdm_err sccm_url_system_by_mac(const char *base, const char *mac, char *out, size_t outsz);
/* <base>/wmi/SMS_G_System_NETWORK_ADAPTER?$filter=MACAddress%20eq%20'..'&$select=ResourceID,MACAddress
 */
enum mdm_err sccm_url_nic_by_mac(const char *base, const char *mac, char *out, size_t outsz);
/*
 * <base>/wmi/SMS_R_System?$filter=SMSUniqueIdentifier%20eq%20'<guid>'&$select=<as by MAC>: the
 * lookup by GUID. guid (1..GUID_MAX bytes, kept as sent: SCCM compares ignoring case) is quoted
 * with sccm_odata_quote, then percent-encoded like every filter. MDM_ERR_INVALID when empty or
 * longer than GUID_MAX.
 */
enum mdm_err sccm_url_system_by_guid(const char *base, const char *guid, char *out, size_t outsz);
/* <base>/wmi/SMS_R_System?$filter=ResourceId%20eq%20<id>&$select=<as by MAC>: the system
 * record of a resource found through a NETWORK_ADAPTER row only (ISE's WQL joins it). */
enum mdm_err sccm_url_system_by_resource(const char *base, long long resource_id, char *out,
					 size_t outsz);
/* <base>/wmi/SMS_G_System_CI_ComplianceState?$filter=ResourceID%20eq%20<id>&$select=ResourceID,
 * CI_UniqueID,ComplianceState,LocalizedDisplayName */
enum mdm_err sccm_url_ci_by_resource(const char *base, long long resource_id, char *out,
				     size_t outsz);
/* <base>/wmi/SMS_G_System_CH_ClientSummary?$filter=ResourceID%20eq%20<id>&$select=ResourceID,
 * LastPolicyRequest */
enum mdm_err sccm_url_summary_by_resource(const char *base, long long resource_id, char *out,
					  size_t outsz);
/* sccm_url_list: the bulk listing of cls: <base>/wmi/<class>?$select=<the same list as above>.
 * Later pages are fetched from each page's next_link as the server gives it. */
enum mdm_err sccm_url_list(const char *base, enum sccm_class cls, char *out, size_t outsz);

/* --- the rules ---------------------------------------------------------------------------- */

/*
 * sccm_pick_resource: several SMS_R_System records for one MAC (re-imaged machines keep their
 * old, obsolete record). Prefers, in this order, Client=1, Active=1, Obsolete=0, then the
 * highest ResourceId: SCCM hands out ResourceIds in increasing order, so the highest is the
 * newest record, and the rows carry no creation date. Ties keep the first row. Returns the
 * index, or -1 when n is 0.
 */
int sccm_pick_resource(const struct sccm_system *rows, size_t n);

/*
 * sccm_compliance: sets d->compliant and d->failure_reason from the baseline rows of
 * resource_id (rows of other resources are ignored), limited to the CI_UniqueIDs in only_ci
 * (compared ignoring ASCII case, as WMI does) when nonly > 0. Compliant only if every such row
 * has ComplianceState 1; any other state (0 unknown, 2 non-compliant, 4 error, anything else,
 * null) fails it, and failure_reason lists the failing rows' LocalizedDisplayName (CI_UniqueID
 * when the name is empty) joined with ", ", in row order, whole names only: when the list does
 * not fit it ends with ", ..." instead (a first name too long on its own is cut at a UTF-8
 * boundary and ends with "..."). No rows: non-compliant with "no compliance baseline
 * reported", or compliant when no_rows_compliant. A compliant device gets failure_reason "".
 */
void sccm_compliance(const struct sccm_ci_state *rows, size_t n, long long resource_id,
		     const char *const *only_ci, size_t nonly, bool no_rows_compliant,
		     struct device *d);

/*
 * sccm_fill_device: a fresh device record for resource_id: sys is its SMS_R_System row, or NULL
 * for a resource known only by a NETWORK_ADAPTER row (such devices must not vanish); nics and
 * sums may hold rows of any resource (those of others are ignored). registered TRUE; GUID =
 * SMSUniqueIdentifier; hostname = Name lower-cased (left "" when Name is not a valid host
 * name); MACs: the system row's, then the NICs', de-duplicated, at most DEVICE_MACS_MAX;
 * mac_local from the first; pin_lock and jail_broken FALSE (domain PCs: desktop semantics);
 * disk_encrypted and compliant not reported (call sccm_compliance next); last_checkin_ms =
 * the latest LastPolicyRequest; vendor_id = ResourceId in decimal; source = source.
 * MDM_ERR_INVALID when sys belongs to another resource or resource_id is negative;
 * MDM_ERR_TOOBIG when source does not fit.
 */
enum mdm_err sccm_fill_device(long long resource_id, const struct sccm_system *sys,
			      const struct sccm_nic *nics, size_t nnics,
			      const struct sccm_client_summary *sums, size_t nsums,
			      const char *source, struct device *d);

#endif
