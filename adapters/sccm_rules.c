/* sccm_rules: see sccm_rules.h. */
#include "sccm_rules.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../core/buf.h"
#include "../core/strw.h"
#include "../core/text.h"

/* --- datetimes ---------------------------------------------------------------------------- */

struct civil {
	int year, month, day, hour, minute, second, msec;
	int offset_min; /* minutes east of UTC */
};

/* Reads a fraction of any length (at least one digit) as milliseconds, truncating; returns the
 * number of digits read, 0 when there is none. */
static size_t read_fraction(const char *s, int *msec)
{
	size_t n = 0;
	int v = 0;

	while (s[n] >= '0' && s[n] <= '9') {
		if (n < 3)
			v = v * 10 + (s[n] - '0');
		n++;
	}
	for (size_t i = n; i < 3; i++)
		v *= 10;
	*msec = v;
	return n;
}

static bool is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
	static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* days_from_civil (H. Hinnant): days since 1970-01-01 of a proleptic Gregorian date. Pure
 * arithmetic, so the result never depends on TZ or the C library's time functions. */
static int64_t days_from_civil(int y, int m, int d)
{
	int64_t yy = y - (m <= 2);
	int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
	int64_t yoe = yy - era * 400;
	int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + doe - 719468;
}

/* Checks the ranges and converts to UTC epoch milliseconds; pre-1970 instants are refused. */
static enum mdm_err civil_to_ms(const struct civil *c, int64_t *ms)
{
	int64_t secs;

	if (c->year < 1970 || c->month < 1 || c->month > 12 || c->day < 1 ||
	    c->day > days_in_month(c->year, c->month) || c->hour > 23 || c->minute > 59 ||
	    c->second > 59)
		return MDM_ERR_INVALID;
	secs = days_from_civil(c->year, c->month, c->day) * 86400 + c->hour * 3600 +
	       c->minute * 60 + c->second - (int64_t)c->offset_min * 60;
	if (secs < 0)
		return MDM_ERR_INVALID;
	*ms = secs * 1000 + c->msec;
	return MDM_OK;
}

/* yyyymmddHHMMSS.ffffff+UUU: exactly 25 bytes. */
static enum mdm_err parse_wmi(const char *s, struct civil *c)
{
	int off;

	if (strlen(s) != 25 || s[14] != '.' || (s[21] != '+' && s[21] != '-'))
		return MDM_ERR_INVALID;
	if (!text_digits(s, 4, &c->year) || !text_digits(s + 4, 2, &c->month) ||
	    !text_digits(s + 6, 2, &c->day) || !text_digits(s + 8, 2, &c->hour) ||
	    !text_digits(s + 10, 2, &c->minute) || !text_digits(s + 12, 2, &c->second) ||
	    read_fraction(s + 15, &c->msec) != 6 || !text_digits(s + 22, 3, &off))
		return MDM_ERR_INVALID;
	c->offset_min = s[21] == '-' ? -off : off;
	return MDM_OK;
}

/* The ISO-8601 zone: "", "Z", "+HH:MM" or "-HH:MM", and nothing after it. */
static enum mdm_err parse_iso_zone(const char *s, struct civil *c)
{
	int hh, mm;

	c->offset_min = 0;
	if (s[0] == '\0')
		return MDM_OK;
	if (s[0] == 'Z')
		return s[1] == '\0' ? MDM_OK : MDM_ERR_INVALID;
	if ((s[0] != '+' && s[0] != '-') || strlen(s) != 6 || s[3] != ':' ||
	    !text_digits(s + 1, 2, &hh) || !text_digits(s + 4, 2, &mm) || hh > 23 || mm > 59)
		return MDM_ERR_INVALID;
	c->offset_min = (s[0] == '-' ? -1 : 1) * (hh * 60 + mm);
	return MDM_OK;
}

/* yyyy-mm-ddTHH:MM:SS[.f...][zone]. */
static enum mdm_err parse_iso(const char *s, struct civil *c)
{
	const char *p = s + 19;

	if (strlen(s) < 19 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
	    s[16] != ':')
		return MDM_ERR_INVALID;
	if (!text_digits(s, 4, &c->year) || !text_digits(s + 5, 2, &c->month) ||
	    !text_digits(s + 8, 2, &c->day) || !text_digits(s + 11, 2, &c->hour) ||
	    !text_digits(s + 14, 2, &c->minute) || !text_digits(s + 17, 2, &c->second))
		return MDM_ERR_INVALID;
	c->msec = 0;
	if (*p == '.') {
		size_t n = read_fraction(p + 1, &c->msec);

		if (n == 0)
			return MDM_ERR_INVALID;
		p += 1 + n;
	}
	return parse_iso_zone(p, c);
}

enum mdm_err sccm_time_parse(const char *s, int64_t *ms)
{
	struct civil c;
	enum mdm_err e;

	if (!s || !ms)
		return MDM_ERR_INVALID;
	memset(&c, 0, sizeof(c));
	/* The two forms differ at byte 4: a '-' there can only be ISO-8601. */
	e = strlen(s) > 4 && s[4] == '-' ? parse_iso(s, &c) : parse_wmi(s, &c);
	if (e != MDM_OK)
		return e;
	return civil_to_ms(&c, ms);
}

/* --- classes ------------------------------------------------------------------------------ */

struct class_info {
	const char *name;
	const char *select; /* $select: the properties the rules use */
};

static const struct class_info classes[] = {
    [SCCM_SYSTEM] = {"SMS_R_System", "ResourceId,Name,MACAddresses,Client,Active,Obsolete,"
				     "Decommissioned,SMSUniqueIdentifier"},
    [SCCM_NIC] = {"SMS_G_System_NETWORK_ADAPTER", "ResourceID,MACAddress"},
    [SCCM_CI_STATE] = {"SMS_G_System_CI_ComplianceState",
		       "ResourceID,CI_UniqueID,ComplianceState,LocalizedDisplayName"},
    [SCCM_CLIENT_SUMMARY] = {"SMS_G_System_CH_ClientSummary", "ResourceID,LastPolicyRequest"},
};

static bool class_ok(enum sccm_class cls)
{
	return (unsigned)cls <= (unsigned)SCCM_CLIENT_SUMMARY;
}

const char *sccm_class_name(enum sccm_class cls)
{
	return class_ok(cls) ? classes[cls].name : "?";
}

/* --- OData rows --------------------------------------------------------------------------- */

/* Where a row's field is, for error reasons that name class, row and key. */
struct rowctx {
	const char *cls;
	size_t row;
	char *why;
	size_t whysz;
};

static enum mdm_err bad_field(const struct rowctx *rc, const char *key, const char *msg)
{
	err_why(rc->why, rc->whysz, "%s value[%zu].%s: %s", rc->cls, rc->row, key, msg);
	return MDM_ERR_PARSE;
}

/* The property key of obj: an exact match first, then one ignoring ASCII case (WMI property
 * names are case-insensitive and the classes disagree on "ResourceId" / "ResourceID"). */
static json_t *field(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	const char *k;

	if (v)
		return v;
	json_object_foreach(obj, k, v)
	{
		if (strcasecmp(k, key) == 0)
			return v;
	}
	return NULL;
}

/* The largest n <= max at which s can be cut without splitting a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t max)
{
	size_t n = max;

	while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	return n;
}

/* ResourceId / ResourceID: the join key, so it is required. */
static enum mdm_err get_resource_id(const struct rowctx *rc, json_t *row, const char *key,
				    long long *out)
{
	json_t *v = field(row, key);

	if (!v || json_is_null(v))
		return bad_field(rc, key, "missing");
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return bad_field(rc, key, "must be a non-negative integer");
	*out = (long long)json_integer_value(v);
	return MDM_OK;
}

/* An optional WMI uint32 we keep as int: -1 when null or absent. */
static enum mdm_err get_flag(const struct rowctx *rc, json_t *row, const char *key, int *out)
{
	json_t *v = field(row, key);

	*out = -1;
	if (!v || json_is_null(v))
		return MDM_OK;
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT_MAX)
		return bad_field(rc, key, "must be an integer from 0 to 2147483647");
	*out = (int)json_integer_value(v);
	return MDM_OK;
}

/* An optional string: "" when null or absent. Too long: cut cleanly when cut, else an error
 * (identifiers must never be truncated into another identifier). */
static enum mdm_err get_text(const struct rowctx *rc, json_t *row, const char *key, char *dst,
			     size_t dstsz, bool cut)
{
	json_t *v = field(row, key);
	const char *s;
	size_t len;
	char msg[64];

	dst[0] = '\0';
	if (!v || json_is_null(v))
		return MDM_OK;
	if (!json_is_string(v))
		return bad_field(rc, key, "must be a string");
	s = json_string_value(v);
	len = json_string_length(v);
	if (memchr(s, '\0', len))
		return bad_field(rc, key, "holds a NUL byte");
	if (len >= dstsz) {
		if (!cut) {
			snprintf(msg, sizeof(msg), "longer than %zu bytes", dstsz - 1);
			return bad_field(rc, key, msg);
		}
		len = utf8_cut(s, dstsz - 1);
	}
	return str_copyn(dst, dstsz, s, len);
}

/* Adds one MACAddresses entry; odd strings are counted, not fatal. */
static enum mdm_err add_system_mac(const struct rowctx *rc, json_t *v, size_t i,
				   struct sccm_system *sys, struct sccm_page *page)
{
	char mac[MAC_STR_LEN + 1], key[48];
	bool local;

	if (json_is_null(v))
		return MDM_OK;
	if (!json_is_string(v)) {
		snprintf(key, sizeof(key), "MACAddresses[%zu]", i);
		return bad_field(rc, key, "must be a string");
	}
	if (mac_parse(json_string_value(v), json_string_length(v), mac, &local, NULL, 0) !=
	    MDM_OK) {
		page->bad_macs++;
		return MDM_OK;
	}
	for (unsigned k = 0; k < sys->nmacs; k++)
		if (strcmp(sys->macs[k], mac) == 0)
			return MDM_OK;
	if (sys->nmacs >= DEVICE_MACS_MAX) {
		page->extra_macs++;
		return MDM_OK;
	}
	return str_copy(sys->macs[sys->nmacs++], sizeof(sys->macs[0]), mac);
}

static enum mdm_err get_system_macs(const struct rowctx *rc, json_t *row, struct sccm_system *sys,
				    struct sccm_page *page)
{
	json_t *arr = field(row, "MACAddresses"), *v;
	size_t i;
	enum mdm_err e;

	if (!arr || json_is_null(arr))
		return MDM_OK;
	if (!json_is_array(arr))
		return bad_field(rc, "MACAddresses", "must be an array of strings");
	json_array_foreach(arr, i, v)
	{
		e = add_system_mac(rc, v, i, sys, page);
		if (e != MDM_OK)
			return e;
	}
	return MDM_OK;
}

static enum mdm_err parse_system(const struct rowctx *rc, json_t *row, struct sccm_page *page)
{
	struct sccm_system *sys = &page->systems[page->nrows];
	enum mdm_err e;

	memset(sys, 0, sizeof(*sys));
	if ((e = get_resource_id(rc, row, "ResourceId", &sys->resource_id)) != MDM_OK ||
	    (e = get_text(rc, row, "Name", sys->name, sizeof(sys->name), false)) != MDM_OK ||
	    (e = get_system_macs(rc, row, sys, page)) != MDM_OK ||
	    (e = get_flag(rc, row, "Client", &sys->client)) != MDM_OK ||
	    (e = get_flag(rc, row, "Active", &sys->active)) != MDM_OK ||
	    (e = get_flag(rc, row, "Obsolete", &sys->obsolete)) != MDM_OK ||
	    (e = get_flag(rc, row, "Decommissioned", &sys->decommissioned)) != MDM_OK ||
	    (e = get_text(rc, row, "SMSUniqueIdentifier", sys->sms_unique_id,
			  sizeof(sys->sms_unique_id), false)) != MDM_OK)
		return e;
	page->nrows++;
	return MDM_OK;
}

/* A NIC row is kept only with a MAC that parses: the MAC is all it is used for. */
static enum mdm_err parse_nic(const struct rowctx *rc, json_t *row, struct sccm_page *page)
{
	struct sccm_nic *nic = &page->nics[page->nrows];
	json_t *v;
	bool local;
	enum mdm_err e;

	memset(nic, 0, sizeof(*nic));
	if ((e = get_resource_id(rc, row, "ResourceID", &nic->resource_id)) != MDM_OK)
		return e;
	v = field(row, "MACAddress");
	if (!v || json_is_null(v))
		return MDM_OK;
	if (!json_is_string(v))
		return bad_field(rc, "MACAddress", "must be a string");
	if (mac_parse(json_string_value(v), json_string_length(v), nic->mac, &local, NULL, 0) !=
	    MDM_OK) {
		page->bad_macs++;
		return MDM_OK;
	}
	page->nrows++;
	return MDM_OK;
}

static enum mdm_err parse_ci_state(const struct rowctx *rc, json_t *row, struct sccm_page *page)
{
	struct sccm_ci_state *ci = &page->ci_states[page->nrows];
	enum mdm_err e;

	memset(ci, 0, sizeof(*ci));
	if ((e = get_resource_id(rc, row, "ResourceID", &ci->resource_id)) != MDM_OK ||
	    (e = get_text(rc, row, "CI_UniqueID", ci->ci_unique_id, sizeof(ci->ci_unique_id),
			  false)) != MDM_OK ||
	    (e = get_flag(rc, row, "ComplianceState", &ci->compliance_state)) != MDM_OK ||
	    (e = get_text(rc, row, "LocalizedDisplayName", ci->display_name,
			  sizeof(ci->display_name), true)) != MDM_OK)
		return e;
	page->nrows++;
	return MDM_OK;
}

static enum mdm_err parse_summary(const struct rowctx *rc, json_t *row, struct sccm_page *page)
{
	struct sccm_client_summary *sum = &page->summaries[page->nrows];
	json_t *v;
	enum mdm_err e;

	memset(sum, 0, sizeof(*sum));
	if ((e = get_resource_id(rc, row, "ResourceID", &sum->resource_id)) != MDM_OK)
		return e;
	v = field(row, "LastPolicyRequest");
	if (v && !json_is_null(v)) {
		if (!json_is_string(v))
			return bad_field(rc, "LastPolicyRequest", "must be a string");
		if (sccm_time_parse(json_string_value(v), &sum->last_policy_request_ms) != MDM_OK)
			return bad_field(rc, "LastPolicyRequest",
					 "not a WMI or ISO-8601 datetime from 1970 on");
	}
	page->nrows++;
	return MDM_OK;
}

/* Allocates the row array of page->cls for n rows (none for n == 0). */
static enum mdm_err alloc_rows(struct sccm_page *page, size_t n)
{
	void *p = NULL;
	static const size_t sizes[] = {
	    [SCCM_SYSTEM] = sizeof(struct sccm_system),
	    [SCCM_NIC] = sizeof(struct sccm_nic),
	    [SCCM_CI_STATE] = sizeof(struct sccm_ci_state),
	    [SCCM_CLIENT_SUMMARY] = sizeof(struct sccm_client_summary),
	};

	if (n == 0)
		return MDM_OK;
	p = calloc(n, sizes[page->cls]);
	if (!p)
		return MDM_ERR_NOMEM;
	switch (page->cls) {
	case SCCM_SYSTEM:
		page->systems = p;
		break;
	case SCCM_NIC:
		page->nics = p;
		break;
	case SCCM_CI_STATE:
		page->ci_states = p;
		break;
	case SCCM_CLIENT_SUMMARY:
		page->summaries = p;
		break;
	}
	return MDM_OK;
}

static enum mdm_err parse_row(const struct rowctx *rc, json_t *row, struct sccm_page *page)
{
	if (!json_is_object(row)) {
		err_why(rc->why, rc->whysz, "%s value[%zu]: must be an object", rc->cls, rc->row);
		return MDM_ERR_PARSE;
	}
	switch (page->cls) {
	case SCCM_SYSTEM:
		return parse_system(rc, row, page);
	case SCCM_NIC:
		return parse_nic(rc, row, page);
	case SCCM_CI_STATE:
		return parse_ci_state(rc, row, page);
	case SCCM_CLIENT_SUMMARY:
		return parse_summary(rc, row, page);
	}
	return MDM_ERR_INTERNAL;
}

static enum mdm_err get_next_link(json_t *root, struct sccm_page *page, char *why, size_t whysz)
{
	json_t *v = json_object_get(root, "@odata.nextLink");
	const char *cls = classes[page->cls].name;

	if (!v || json_is_null(v))
		return MDM_OK;
	if (!json_is_string(v)) {
		err_why(why, whysz, "%s: @odata.nextLink must be a string", cls);
		return MDM_ERR_PARSE;
	}
	if (json_string_length(v) > SCCM_NEXTLINK_MAX ||
	    memchr(json_string_value(v), '\0', json_string_length(v))) {
		err_why(why, whysz, "%s: @odata.nextLink is longer than %d bytes or holds a NUL",
			cls, SCCM_NEXTLINK_MAX);
		return MDM_ERR_TOOBIG;
	}
	return str_copy(page->next_link, sizeof(page->next_link), json_string_value(v));
}

static enum mdm_err parse_rows(json_t *value, struct sccm_page *page, char *why, size_t whysz)
{
	struct rowctx rc = {classes[page->cls].name, 0, why, whysz};
	json_t *row;
	enum mdm_err e;

	e = alloc_rows(page, json_array_size(value));
	if (e != MDM_OK)
		return e;
	json_array_foreach(value, rc.row, row)
	{
		e = parse_row(&rc, row, page);
		if (e != MDM_OK)
			return e;
	}
	return MDM_OK;
}

static enum mdm_err parse_root(json_t *root, size_t max_rows, struct sccm_page *page, char *why,
			       size_t whysz)
{
	const char *cls = classes[page->cls].name;
	json_t *value;
	enum mdm_err e;

	if (!json_is_object(root)) {
		err_why(why, whysz, "%s: the answer is not a JSON object", cls);
		return MDM_ERR_PARSE;
	}
	value = json_object_get(root, "value");
	if (!json_is_array(value)) {
		err_why(why, whysz, "%s: \"value\" must be an array", cls);
		return MDM_ERR_PARSE;
	}
	if (json_array_size(value) > max_rows) {
		err_why(why, whysz, "%s: %zu rows, more than the limit of %zu", cls,
			json_array_size(value), max_rows);
		return MDM_ERR_TOOBIG;
	}
	e = get_next_link(root, page, why, whysz);
	return e != MDM_OK ? e : parse_rows(value, page, why, whysz);
}

enum mdm_err sccm_odata_page(const char *body, size_t len, enum sccm_class cls, size_t max_body,
			     size_t max_rows, struct sccm_page *page, char *why, size_t whysz)
{
	json_error_t jerr;
	json_t *root;
	enum mdm_err e;

	if (!page || !class_ok(cls) || (!body && len))
		return MDM_ERR_INVALID;
	memset(page, 0, sizeof(*page));
	page->cls = cls;
	if (len > max_body) {
		err_why(why, whysz, "%s: answer of %zu bytes, more than the limit of %zu",
			classes[cls].name, len, max_body);
		return MDM_ERR_TOOBIG;
	}
	root = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		err_why(why, whysz, "%s: line %d column %d: %s", classes[cls].name, jerr.line,
			jerr.column, jerr.text);
		return MDM_ERR_PARSE;
	}
	e = parse_root(root, max_rows, page, why, whysz);
	json_decref(root);
	return e;
}

void sccm_page_free(struct sccm_page *page)
{
	enum sccm_class cls;

	if (!page)
		return;
	cls = page->cls;
	free(page->systems);
	free(page->nics);
	free(page->ci_states);
	free(page->summaries);
	memset(page, 0, sizeof(*page));
	page->cls = cls;
}

/* --- URLs --------------------------------------------------------------------------------- */

/* The one percent-encoding used for $filter (see the header): unreserved characters and the
 * OData punctuation ' ( ) : / , stay literal, everything else is %XX. */
#define FILTER_KEEP "'():/,"

enum mdm_err sccm_odata_quote(const char *value, char *out, size_t outsz)
{
	struct strw u;

	if (!value || !out || !outsz)
		return MDM_ERR_INVALID;
	strw_init(&u, out, outsz);
	strw_add(&u, "'", 1);
	for (const char *s = value; *s; s++) {
		if (*s == '\'')
			strw_add(&u, "''", 2);
		else
			strw_add(&u, s, 1);
	}
	strw_add(&u, "'", 1);
	return strw_end(&u);
}

/* <base>/wmi/<class>?[$filter=<encoded filter>&]$select=<list>. */
static enum mdm_err build_url(const char *base, enum sccm_class cls, const char *filter, char *out,
			      size_t outsz)
{
	struct strw u;

	if (!out || !outsz)
		return MDM_ERR_INVALID;
	strw_init(&u, out, outsz);
	if (!class_ok(cls) || !strw_origin(&u, base))
		return MDM_ERR_INVALID;
	strw_str(&u, "/wmi/");
	strw_str(&u, classes[cls].name);
	strw_str(&u, "?");
	if (filter) {
		strw_str(&u, "$filter=");
		strw_pct(&u, filter, strlen(filter), FILTER_KEEP);
		strw_str(&u, "&");
	}
	strw_str(&u, "$select=");
	strw_str(&u, classes[cls].select);
	return strw_end(&u);
}

/* mac (any form) as SCCM writes it, upper case with colons, quoted as an OData literal. */
static enum mdm_err mac_literal(const char *mac, char *out, size_t outsz)
{
	char norm[MAC_STR_LEN + 1], colon[18];
	bool local;

	if (!mac || mac_parse(mac, strlen(mac), norm, &local, NULL, 0) != MDM_OK)
		return MDM_ERR_INVALID;
	snprintf(colon, sizeof(colon), "%.2s:%.2s:%.2s:%.2s:%.2s:%.2s", norm, norm + 2, norm + 4,
		 norm + 6, norm + 8, norm + 10);
	return sccm_odata_quote(colon, out, outsz);
}

enum mdm_err sccm_url_system_by_mac(const char *base, const char *mac, char *out, size_t outsz)
{
	char lit[32], filter[80];
	enum mdm_err e = mac_literal(mac, lit, sizeof(lit));

	if (e != MDM_OK)
		return e;
	snprintf(filter, sizeof(filter), "MACAddresses/any(m: m eq %s)", lit);
	return build_url(base, SCCM_SYSTEM, filter, out, outsz);
}

enum mdm_err sccm_url_nic_by_mac(const char *base, const char *mac, char *out, size_t outsz)
{
	char lit[32], filter[80];
	enum mdm_err e = mac_literal(mac, lit, sizeof(lit));

	if (e != MDM_OK)
		return e;
	snprintf(filter, sizeof(filter), "MACAddress eq %s", lit);
	return build_url(base, SCCM_NIC, filter, out, outsz);
}

enum mdm_err sccm_url_system_by_guid(const char *base, const char *guid, char *out, size_t outsz)
{
	/* "SMSUniqueIdentifier eq " + a literal of at most 2 * GUID_MAX + 2 bytes. */
	char lit[2 * GUID_MAX + 3], filter[sizeof(lit) + 32];
	size_t len = guid ? strlen(guid) : 0;
	enum mdm_err e;

	if (len == 0 || len > GUID_MAX) {
		if (out && outsz)
			out[0] = '\0';
		return MDM_ERR_INVALID;
	}
	e = sccm_odata_quote(guid, lit, sizeof(lit));
	if (e != MDM_OK)
		return e;
	snprintf(filter, sizeof(filter), "SMSUniqueIdentifier eq %s", lit);
	return build_url(base, SCCM_SYSTEM, filter, out, outsz);
}

/* SMS_R_System spells the key ResourceId, the SMS_G_ classes ResourceID; WMI ignores case. */
static enum mdm_err url_by_resource(const char *base, enum sccm_class cls, long long id, char *out,
				    size_t outsz)
{
	char filter[48];

	if (id < 0)
		return MDM_ERR_INVALID;
	snprintf(filter, sizeof(filter), "%s eq %lld",
		 cls == SCCM_SYSTEM ? "ResourceId" : "ResourceID", id);
	return build_url(base, cls, filter, out, outsz);
}

enum mdm_err sccm_url_system_by_resource(const char *base, long long resource_id, char *out,
					 size_t outsz)
{
	return url_by_resource(base, SCCM_SYSTEM, resource_id, out, outsz);
}

enum mdm_err sccm_url_ci_by_resource(const char *base, long long resource_id, char *out,
				     size_t outsz)
{
	return url_by_resource(base, SCCM_CI_STATE, resource_id, out, outsz);
}

enum mdm_err sccm_url_summary_by_resource(const char *base, long long resource_id, char *out,
					  size_t outsz)
{
	return url_by_resource(base, SCCM_CLIENT_SUMMARY, resource_id, out, outsz);
}

enum mdm_err sccm_url_list(const char *base, enum sccm_class cls, char *out, size_t outsz)
{
	return build_url(base, cls, NULL, out, outsz);
}

/* --- the rules ---------------------------------------------------------------------------- */

/* Whether a is preferred over b: Client=1, Active=1, Obsolete=0, then the higher ResourceId. */
static bool system_better(const struct sccm_system *a, const struct sccm_system *b)
{
	if ((a->client == 1) != (b->client == 1))
		return a->client == 1;
	if ((a->active == 1) != (b->active == 1))
		return a->active == 1;
	if ((a->obsolete == 0) != (b->obsolete == 0))
		return a->obsolete == 0;
	return a->resource_id > b->resource_id;
}

int sccm_pick_resource(const struct sccm_system *rows, size_t n)
{
	size_t best = 0;

	if (!rows || n == 0 || n > INT_MAX)
		return -1;
	for (size_t i = 1; i < n; i++)
		if (system_better(&rows[i], &rows[best]))
			best = i;
	return (int)best;
}

/* Whether the row counts: it is of the resource and, with a filter, one of the listed CIs. */
static bool ci_counts(const struct sccm_ci_state *r, long long resource_id,
		      const char *const *only_ci, size_t nonly)
{
	if (r->resource_id != resource_id)
		return false;
	if (nonly == 0)
		return true;
	for (size_t i = 0; i < nonly; i++)
		if (only_ci[i] && strcasecmp(only_ci[i], r->ci_unique_id) == 0)
			return true;
	return false;
}

static const char *ci_name(const struct sccm_ci_state *r)
{
	if (r->display_name[0])
		return r->display_name;
	return r->ci_unique_id[0] ? r->ci_unique_id : "(unnamed baseline)";
}

/* Appends failing name k of nfail to the reason. Room for ", ..." is kept free until the last
 * name, so the list can always end cleanly; the first name alone is cut at a UTF-8 boundary
 * when even it does not fit. Returns false once the reason is full. */
static bool reason_add(char *out, size_t outsz, size_t *len, const char *name, size_t k,
		       size_t nfail)
{
	static const char more[] = ", ...";
	size_t sep = k ? 2 : 0, nlen = strlen(name);
	size_t reserve = k + 1 < nfail ? sizeof(more) - 1 : 0;

	if (*len + sep + nlen + reserve < outsz) {
		snprintf(out + *len, outsz - *len, "%s%s", k ? ", " : "", name);
		*len += sep + nlen;
		return true;
	}
	if (k == 0) {
		/* Leave room for "..." after the (possibly cut) first name. */
		if (nlen > outsz - 4)
			nlen = utf8_cut(name, outsz - 4);
		snprintf(out, outsz, "%.*s...", (int)nlen, name);
	} else {
		snprintf(out + *len, outsz - *len, "%s", more);
	}
	*len = strlen(out);
	return false;
}

void sccm_compliance(const struct sccm_ci_state *rows, size_t n, long long resource_id,
		     const char *const *only_ci, size_t nonly, bool no_rows_compliant,
		     struct device *d)
{
	size_t counted = 0, nfail = 0, k = 0, len = 0;

	d->failure_reason[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (!ci_counts(&rows[i], resource_id, only_ci, nonly))
			continue;
		counted++;
		nfail += rows[i].compliance_state != 1;
	}
	if (counted == 0) {
		d->compliant = no_rows_compliant ? TRI_TRUE : TRI_FALSE;
		if (!no_rows_compliant)
			str_copy(d->failure_reason, sizeof(d->failure_reason),
				 "no compliance baseline reported");
		return;
	}
	d->compliant = nfail == 0 ? TRI_TRUE : TRI_FALSE;
	for (size_t i = 0; i < n && k < nfail; i++) {
		if (!ci_counts(&rows[i], resource_id, only_ci, nonly) ||
		    rows[i].compliance_state == 1)
			continue;
		if (!reason_add(d->failure_reason, sizeof(d->failure_reason), &len,
				ci_name(&rows[i]), k++, nfail))
			break;
	}
}

/* Adds a normalised MAC; past DEVICE_MACS_MAX the rest are dropped (the record stays useful). */
static void fill_mac(struct device *d, const char *mac)
{
	if (device_add_mac(d, mac) == MDM_OK && d->nmacs == 1)
		d->mac_local = (hex_value(mac[1]) & 2) != 0;
}

/* The latest LastPolicyRequest of the resource; 0 when none is reported. */
static int64_t last_checkin(const struct sccm_client_summary *sums, size_t nsums, long long id)
{
	int64_t best = 0;

	for (size_t i = 0; i < nsums; i++)
		if (sums[i].resource_id == id && sums[i].last_policy_request_ms > best)
			best = sums[i].last_policy_request_ms;
	return best;
}

static void fill_identity(const struct sccm_system *sys, struct device *d)
{
	struct ident host;

	for (unsigned i = 0; i < sys->nmacs; i++)
		fill_mac(d, sys->macs[i]);
	/* SMSUniqueIdentifier is bounded to GUID_MAX by the parser, so it always fits. */
	str_copy(d->guid, sizeof(d->guid), sys->sms_unique_id);
	if (sys->name[0] &&
	    ident_parse(IDENT_HOSTNAME, sys->name, strlen(sys->name), &host, NULL, 0) == MDM_OK)
		str_copy(d->hostname, sizeof(d->hostname), host.value);
}

enum mdm_err sccm_fill_device(long long resource_id, const struct sccm_system *sys,
			      const struct sccm_nic *nics, size_t nnics,
			      const struct sccm_client_summary *sums, size_t nsums,
			      const char *source, struct device *d)
{
	if (!d || !source || resource_id < 0 || (sys && sys->resource_id != resource_id))
		return MDM_ERR_INVALID;
	memset(d, 0, sizeof(*d));
	if (str_copy(d->source, sizeof(d->source), source) != MDM_OK)
		return MDM_ERR_TOOBIG;
	snprintf(d->vendor_id, sizeof(d->vendor_id), "%lld", resource_id);
	if (sys)
		fill_identity(sys, d);
	for (size_t i = 0; i < nnics; i++)
		if (nics[i].resource_id == resource_id)
			fill_mac(d, nics[i].mac);
	d->registered = TRI_TRUE;
	d->compliant = TRI_UNSET;
	d->disk_encrypted = TRI_UNSET;
	/* Domain PCs have no PIN lock or jail-break notion: ISE's SCCM answers say false. */
	d->pin_lock = TRI_FALSE;
	d->jail_broken = TRI_FALSE;
	d->last_checkin_ms = last_checkin(sums, nsums, resource_id);
	return MDM_OK;
}
