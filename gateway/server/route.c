#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../../core/buf.h"
#include "route.h"

#define ROUTE_MAX_SEGMENTS 12
#define ROUTE_TARGET_MAX 8192
#define ROUTE_MAX_ARGS 32

struct segs {
	const char *s[ROUTE_MAX_SEGMENTS];
	size_t len[ROUTE_MAX_SEGMENTS];
	size_t n;
};

static const struct {
	const char *name;
	enum criterion crit;
	int min_version;
} criteria[] = {
    {"macaddress", CRIT_MAC, 1},    {"compliance", CRIT_COMPLIANCE, 1},
    {"username", CRIT_USERNAME, 1}, {"udid", CRIT_UDID, 2},
    {"imei", CRIT_IMEI, 2},	    {"meid", CRIT_MEID, 2},
    {"guid", CRIT_GUID, 3},	    {"guidhn", CRIT_HOSTNAME, 3},
    {"hostname", CRIT_HOSTNAME, 3},
};

const char *criterion_name(enum criterion c)
{
	if (c == CRIT_NONE)
		return "none";
	for (size_t i = 0; i < sizeof(criteria) / sizeof(criteria[0]); i++)
		if (criteria[i].crit == c)
			return criteria[i].name;
	return "unknown";
}

bool criterion_ident_kind(enum criterion c, enum ident_kind *out)
{
	switch (c) {
	case CRIT_MAC:
		*out = IDENT_MAC;
		return true;
	case CRIT_GUID:
		*out = IDENT_GUID;
		return true;
	case CRIT_UDID:
		*out = IDENT_UDID;
		return true;
	case CRIT_IMEI:
		*out = IDENT_IMEI;
		return true;
	case CRIT_MEID:
		*out = IDENT_MEID;
		return true;
	case CRIT_USERNAME:
		*out = IDENT_USERNAME;
		return true;
	case CRIT_HOSTNAME:
		*out = IDENT_HOSTNAME;
		return true;
	default:
		return false;
	}
}

static void bad(struct route *r, int status, const char *why)
{
	r->kind = ROUTE_BAD;
	r->status = status;
	snprintf(r->why, sizeof(r->why), "%s", why);
}

static void bad_method(struct route *r, const char *allow)
{
	bad(r, 405, "method not allowed");
	snprintf(r->allow, sizeof(r->allow), "%s", allow);
}

static bool seg_is(const struct segs *sg, size_t i, const char *word)
{
	return i < sg->n && sg->len[i] == strlen(word) && memcmp(sg->s[i], word, sg->len[i]) == 0;
}

/* Splits path into segments; empty segments (trailing or doubled slashes) are skipped. */
static bool split_path(const char *path, struct segs *sg)
{
	const char *p = path;

	sg->n = 0;
	while (*p) {
		const char *e;

		while (*p == '/')
			p++;
		if (!*p)
			break;
		e = strchr(p, '/');
		if (!e)
			e = p + strlen(p);
		if (sg->n == ROUTE_MAX_SEGMENTS)
			return false;
		sg->s[sg->n] = p;
		sg->len[sg->n] = (size_t)(e - p);
		sg->n++;
		p = e;
	}
	return true;
}

/* Finds the one value of a query argument; a second occurrence is an error (no pollution). */
static int find_arg(const struct route_arg *args, size_t nargs, const char *key, const char **val)
{
	int found = 0;

	*val = NULL;
	for (size_t i = 0; i < nargs; i++) {
		if (strcmp(args[i].key, key) != 0)
			continue;
		if (found)
			return -1;
		found = 1;
		*val = args[i].value ? args[i].value : "";
	}
	return found;
}

static bool get_arg(struct route *r, const struct route_arg *args, size_t nargs, const char *key,
		    const char **val)
{
	char why[128];

	if (find_arg(args, nargs, key, val) < 0) {
		snprintf(why, sizeof(why), "query parameter %s is given more than once", key);
		bad(r, 400, why);
		return false;
	}
	return true;
}

/* Parses a decimal of at most max. */
static bool parse_uint(const char *s, size_t len, unsigned long long max, unsigned long long *out)
{
	unsigned long long v = 0;

	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned long long)(s[i] - '0');
		if (v > max)
			return false;
	}
	*out = v;
	return true;
}

static bool all_digits(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return len > 0;
}

static void route_mdminfo(const char *method, const struct route_arg *args, size_t nargs,
			  struct route *r)
{
	const char *v;
	unsigned long long n = 0;
	size_t len;

	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return bad_method(r, "GET");
	if (!get_arg(r, args, nargs, "ise_api_version", &v))
		return;
	r->kind = ROUTE_MDMINFO;
	r->api_version = 1;
	if (!v)
		return;
	len = strlen(v);
	if (!all_digits(v, len))
		return bad(r, 400, "ise_api_version must be a positive integer");
	while (len > 1 && *v == '0') {
		v++;
		len--;
	}
	/* A client's highest version may be any positive integer: cap it, never overflow. */
	if (len > 9) {
		r->api_version = API_VERSION_MAX;
		return;
	}
	parse_uint(v, len, 999999999ull, &n);
	if (n == 0)
		return bad(r, 400, "ise_api_version must be a positive integer");
	r->api_version = n > API_VERSION_MAX ? API_VERSION_MAX : (int)n;
}

static bool set_criterion(struct route *r, const char *name, size_t len)
{
	char why[160];

	for (size_t i = 0; i < sizeof(criteria) / sizeof(criteria[0]); i++) {
		if (strlen(criteria[i].name) != len ||
		    strncasecmp(criteria[i].name, name, len) != 0)
			continue;
		if (r->api_version < criteria[i].min_version) {
			snprintf(why, sizeof(why), "querycriteria %s needs API version %d",
				 criteria[i].name, criteria[i].min_version);
			bad(r, 400, why);
			return false;
		}
		r->crit = criteria[i].crit;
		return true;
	}
	bad(r, 400,
	    "querycriteria must be macaddress, compliance, username, udid, imei, meid, "
	    "guid or guidhn");
	return false;
}

static bool set_value(struct route *r, const char *v, size_t len)
{
	while (len && (*v == ' ' || *v == '\t')) {
		v++;
		len--;
	}
	while (len && (v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	if (len == 0) {
		bad(r, 400, "value is missing");
		return false;
	}
	if (str_copyn(r->value, sizeof(r->value), v, len) != MDM_OK) {
		bad(r, 400, "value is too long");
		return false;
	}
	if (r->crit != CRIT_COMPLIANCE)
		return true;
	if (strcasecmp(r->value, "true") == 0)
		r->compliant_value = true;
	else if (strcasecmp(r->value, "false") == 0)
		r->compliant_value = false;
	else {
		bad(r, 400, "value for querycriteria compliance must be true or false");
		return false;
	}
	return true;
}

static bool set_paging(struct route *r, const char *v, size_t len)
{
	unsigned long long n;

	if (!parse_uint(v, len, ROUTE_PAGING_MAX, &n)) {
		bad(r, 400, "paging must be 0 or a paging_info value this server returned");
		return false;
	}
	r->paging = (uint32_t)n;
	return true;
}

static bool set_filter(struct route *r, size_t len)
{
	/* Every attribute is always returned, which the contract allows; only bound it. */
	if (len > 512) {
		bad(r, 400, "filter is too long");
		return false;
	}
	return true;
}

/* batch: the values come from the body, so a criterion needs no value argument. */
static void route_devices_query(const struct route_arg *args, size_t nargs, bool batch,
				struct route *r)
{
	const char *paging, *crit, *value, *filter, *devid;

	if (!get_arg(r, args, nargs, "paging", &paging) ||
	    !get_arg(r, args, nargs, "querycriteria", &crit) ||
	    !get_arg(r, args, nargs, "value", &value) ||
	    !get_arg(r, args, nargs, "filter", &filter) ||
	    !get_arg(r, args, nargs, "deviceidentifier", &devid))
		return;
	if (paging && !set_paging(r, paging, strlen(paging)))
		return;
	if (filter && !set_filter(r, strlen(filter)))
		return;
	if (crit && *crit) {
		if (!set_criterion(r, crit, strlen(crit)))
			return;
		if (!batch && !set_value(r, value ? value : "", value ? strlen(value) : 0))
			return;
	} else if (value && *value) {
		return bad(r, 400, "value given without querycriteria");
	}
	if (devid) {
		if (r->api_version < 3)
			return bad(r, 400, "deviceidentifier needs API version 3");
		if (strcasecmp(devid, "guid") == 0)
			r->key_by_guid = true;
		else if (strcasecmp(devid, "macaddress") != 0)
			return bad(r, 400, "deviceidentifier must be guid or macaddress");
	}
	r->kind = ROUTE_DEVICES;
}

/* v1 path forms: {paging}/{filter} and {paging}/{criteria}/{value}/{filter}. */
static void route_devices_path(const struct segs *sg, size_t at, struct route *r)
{
	size_t n = sg->n - at;

	if (n != 2 && n != 4) {
		r->kind = ROUTE_NOT_FOUND;
		return;
	}
	if (!set_paging(r, sg->s[at], sg->len[at]))
		return;
	if (n == 4) {
		if (!set_criterion(r, sg->s[at + 1], sg->len[at + 1]) ||
		    !set_value(r, sg->s[at + 2], sg->len[at + 2]) ||
		    !set_filter(r, sg->len[at + 3]))
			return;
	} else if (!set_filter(r, sg->len[at + 1])) {
		return;
	}
	r->kind = ROUTE_DEVICES;
}

static void set_action(struct route *r, const char *type, size_t len)
{
	char name[32];

	if (len == 0)
		return bad(r, 400, "actionType is missing");
	if (str_copyn(name, sizeof(name), type, len) != MDM_OK ||
	    action_kind_parse(name, &r->action) != MDM_OK)
		return bad(r, 400, "actionType must be corporate_wipe, full_wipe or pin_lock");
	r->has_action = true;
	r->kind = ROUTE_ACTION;
}

static void route_action(const char *method, const struct segs *sg, size_t at,
			 const struct route_arg *args, size_t nargs, struct route *r)
{
	static const char prefix[] = "actionType=";
	const char *type;

	if (sg->n - at > 1) {
		r->kind = ROUTE_NOT_FOUND;
		return;
	}
	if (strcmp(method, "POST") != 0)
		return bad_method(r, "POST");
	if (sg->n - at == 1) {
		if (sg->len[at] < sizeof(prefix) - 1 ||
		    memcmp(sg->s[at], prefix, sizeof(prefix) - 1) != 0) {
			r->kind = ROUTE_NOT_FOUND;
			return;
		}
		return set_action(r, sg->s[at] + sizeof(prefix) - 1,
				  sg->len[at] - (sizeof(prefix) - 1));
	}
	if (!get_arg(r, args, nargs, "actionType", &type))
		return;
	set_action(r, type ? type : "", type ? strlen(type) : 0);
}

static void route_api(const char *method, const struct segs *sg, const struct route_arg *args,
		      size_t nargs, struct route *r)
{
	/* sg: ciscoise mdmapi vN <what> ... */
	const size_t at = 4;
	bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;

	if (sg->len[2] != 2 || sg->s[2][0] != 'v' || sg->s[2][1] < '1' || sg->s[2][1] > '3' ||
	    sg->n < at)
		return;
	r->api_version = sg->s[2][1] - '0';
	if (seg_is(sg, 3, "devices")) {
		if (!get)
			return bad_method(r, "GET");
		if (sg->n == at)
			return route_devices_query(args, nargs, false, r);
		return route_devices_path(sg, at, r);
	}
	if (seg_is(sg, 3, "batchdevices") && sg->n == at) {
		if (strcmp(method, "POST") != 0)
			return bad_method(r, "POST");
		route_devices_query(args, nargs, true, r);
		if (r->kind == ROUTE_DEVICES)
			r->kind = ROUTE_BATCH;
		return;
	}
	if (seg_is(sg, 3, "action"))
		return route_action(method, sg, at, args, nargs, r);
	if (seg_is(sg, 3, "sendmessage") && sg->n == at)
		r->kind = ROUTE_SENDMESSAGE;
}

/* Decodes s[0..len) into out (same or shorter length); false on a bad escape or NUL. */
static bool pct_decode(const char *s, size_t len, bool plus, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (c == '%') {
			int h, l;

			if (i + 2 >= len)
				return false;
			h = hex_value(s[i + 1]);
			l = hex_value(s[i + 2]);
			if (h < 0 || l < 0 || (h == 0 && l == 0))
				return false;
			c = (char)(h << 4 | l);
			i += 2;
		} else if (plus && c == '+') {
			c = ' ';
		}
		out[o++] = c;
	}
	out[o] = '\0';
	return true;
}

/*
 * Decodes every path segment and query argument into work (which must hold ROUTE_TARGET_MAX + 1
 * bytes per byte of input, see route_parse). Segments are split before decoding, so an encoded
 * '/' stays inside its segment (a user name "corp/jdoe" in a v1 path).
 */
static bool decode_all(struct segs *sg, struct route_arg *args, size_t nargs, char *work,
		       size_t worksz)
{
	size_t used = 0;

	for (size_t i = 0; i < sg->n; i++) {
		if (used + sg->len[i] + 1 > worksz ||
		    !pct_decode(sg->s[i], sg->len[i], false, work + used))
			return false;
		sg->s[i] = work + used;
		sg->len[i] = strlen(work + used);
		used += sg->len[i] + 1;
	}
	for (size_t i = 0; i < nargs; i++) {
		const char **fields[2] = {&args[i].key, &args[i].value};

		for (int f = 0; f < 2; f++) {
			size_t len;

			if (!*fields[f])
				continue;
			len = strlen(*fields[f]);
			if (used + len + 1 > worksz ||
			    !pct_decode(*fields[f], len, false, work + used))
				return false;
			*fields[f] = work + used;
			used += strlen(work + used) + 1;
		}
	}
	return true;
}

/* An adapter name as the configuration allows it: 1 to 63 of A-Z a-z 0-9 _ -. */
static bool adapter_name_ok(const char *s, size_t len)
{
	if (len == 0 || len > 63)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
			return false;
	return true;
}

/* /api/v1/adapters and /api/v1/adapters/{name}/test */
static void route_adapters(const char *method, const struct segs *sg, struct route *r)
{
	if (sg->n == 3) {
		if (strcmp(method, "GET") != 0)
			return bad_method(r, "GET");
		r->kind = ROUTE_ADAPTERS;
		return;
	}
	if (sg->n != 5 || !seg_is(sg, 4, "test"))
		return;
	if (strcmp(method, "POST") != 0)
		return bad_method(r, "POST");
	if (!adapter_name_ok(sg->s[3], sg->len[3]))
		return bad(r, 400, "adapter name must be 1 to 63 of A-Z a-z 0-9 _ -");
	memcpy(r->value, sg->s[3], sg->len[3]);
	r->value[sg->len[3]] = '\0';
	r->kind = ROUTE_ADAPTER_TEST;
}

/* One path segment into r->value; false (r answered 400) when it does not fit. */
static bool take_value(struct route *r, const struct segs *sg, size_t i)
{
	if (sg->len[i] == 0 || str_copyn(r->value, sizeof(r->value), sg->s[i], sg->len[i])) {
		bad(r, 400, "identifier is empty or too long");
		return false;
	}
	return true;
}

/* /api/v1/devices/{id}/actions, /api/v1/devices/{id}/block */
static void route_devices_admin(const char *method, const struct segs *sg, struct route *r)
{
	if (sg->n != 5)
		return;
	if (seg_is(sg, 4, "actions")) {
		if (strcmp(method, "POST") != 0)
			return bad_method(r, "POST");
		if (take_value(r, sg, 3))
			r->kind = ROUTE_DEVICE_ACTION;
		return;
	}
	if (!seg_is(sg, 4, "block"))
		return;
	if (strcmp(method, "PUT") != 0 && strcmp(method, "DELETE") != 0)
		return bad_method(r, "PUT, DELETE");
	if (take_value(r, sg, 3))
		r->kind = strcmp(method, "PUT") == 0 ? ROUTE_BLOCK_PUT : ROUTE_BLOCK_DELETE;
}

/* /api/v1/actions, /api/v1/actions/{action_id}, /api/v1/actions/{action_id}/resolve */
static void route_actions_admin(const char *method, const struct segs *sg,
				const struct route_arg *args, size_t nargs, struct route *r)
{
	if (sg->n == 3) {
		if (strcmp(method, "GET") != 0)
			return bad_method(r, "GET");
		for (size_t i = 0; i < nargs; i++) {
			const char *v = args[i].value ? args[i].value : "";
			bool dev = strcmp(args[i].key, "device") == 0;

			if (!dev && strcmp(args[i].key, "state") != 0)
				return bad(r, 400,
					   "unknown query parameter (device and state only)");
			if (!*v)
				return bad(r, 400, "device and state must not be empty");
			if (dev && str_copy(r->value, sizeof(r->value), v))
				return bad(r, 400, "device is too long");
			if (!dev && str_copy(r->state, sizeof(r->state), v))
				return bad(r, 400, "state is not a known action state");
			r->has_device |= dev;
		}
		r->kind = ROUTE_ACTIONS;
		return;
	}
	if (sg->n == 4) {
		if (strcmp(method, "GET") != 0)
			return bad_method(r, "GET");
		if (take_value(r, sg, 3))
			r->kind = ROUTE_ACTION_GET;
		return;
	}
	if (sg->n != 5 || !seg_is(sg, 4, "resolve"))
		return;
	if (strcmp(method, "POST") != 0)
		return bad_method(r, "POST");
	if (take_value(r, sg, 3))
		r->kind = ROUTE_ACTION_RESOLVE;
}

/* /api/v1/sessions, /api/v1/sessions/{mac} */
static void route_sessions_admin(const char *method, const struct segs *sg,
				 const struct route_arg *args, size_t nargs, struct route *r)
{
	unsigned long long v;

	if (sg->n == 3) {
		if (strcmp(method, "GET") != 0)
			return bad_method(r, "GET");
		for (size_t i = 0; i < nargs; i++) {
			if (strcmp(args[i].key, "limit") != 0)
				return bad(r, 400, "unknown query parameter (limit only)");
			if (!args[i].value ||
			    !parse_uint(args[i].value, strlen(args[i].value), 100000, &v) || !v)
				return bad(r, 400, "limit must be an integer from 1 to 100000");
			r->limit = (uint32_t)v;
		}
		r->kind = ROUTE_SESSIONS;
		return;
	}
	if (sg->n != 4)
		return;
	if (strcmp(method, "GET") != 0 && strcmp(method, "PUT") != 0 &&
	    strcmp(method, "DELETE") != 0)
		return bad_method(r, "GET,PUT,DELETE");
	if (!take_value(r, sg, 3))
		return;
	r->kind = strcmp(method, "GET") == 0   ? ROUTE_SESSION_GET
		  : strcmp(method, "PUT") == 0 ? ROUTE_SESSION_PUT
					       : ROUTE_SESSION_DELETE;
}

/* /api/v1/coa?state=failed|sent|all, /api/v1/coa/test */
static void route_coa_admin(const char *method, const struct segs *sg, const struct route_arg *args,
			    size_t nargs, struct route *r)
{
	if (sg->n == 4 && seg_is(sg, 3, "test")) {
		if (strcmp(method, "POST") != 0)
			return bad_method(r, "POST");
		r->kind = ROUTE_COA_TEST;
		return;
	}
	if (sg->n != 3)
		return;
	if (strcmp(method, "GET") != 0)
		return bad_method(r, "GET");
	for (size_t i = 0; i < nargs; i++) {
		const char *v = args[i].value ? args[i].value : "";

		if (strcmp(args[i].key, "state") != 0)
			return bad(r, 400, "unknown query parameter (state only)");
		if (strcmp(v, "failed") != 0 && strcmp(v, "sent") != 0 && strcmp(v, "all") != 0)
			return bad(r, 400, "state must be failed, sent or all");
		str_copy(r->state, sizeof(r->state), v);
	}
	r->kind = ROUTE_COA_LIST;
}

/* DELETE /api/v1/cache/devices/{identifier} */
static void route_purge(const char *method, const struct segs *sg, struct route *r)
{
	if (sg->n != 5 || !seg_is(sg, 3, "devices"))
		return;
	if (strcmp(method, "DELETE") != 0)
		return bad_method(r, "DELETE");
	if (str_copyn(r->value, sizeof(r->value), sg->s[4], sg->len[4]) != MDM_OK)
		return bad(r, 400, "identifier is too long");
	r->kind = ROUTE_PURGE;
}

/* GET /api/v1/blocks */
static void route_blocks(const char *method, struct route *r)
{
	if (strcmp(method, "GET") != 0)
		return bad_method(r, "GET");
	r->kind = ROUTE_BLOCKS;
}

/* /api/v1/reconciler (GET), /api/v1/reconciler/run and .../release (POST: the change guard) */
static void route_reconciler(const char *method, const struct segs *sg, struct route *r)
{
	if (sg->n == 4 && seg_is(sg, 3, "release")) {
		if (strcmp(method, "POST") != 0)
			return bad_method(r, "POST");
		r->kind = ROUTE_RECON_RELEASE;
		return;
	}
	if (sg->n > 4 || (sg->n == 4 && !seg_is(sg, 3, "run")))
		return;
	if (strcmp(method, sg->n == 3 ? "GET" : "POST") != 0)
		return bad_method(r, sg->n == 3 ? "GET" : "POST");
	r->kind = sg->n == 3 ? ROUTE_RECON_STATUS : ROUTE_RECON_RUN;
}

/*
 * The gateway's own API: /metrics and /api/v1/... It is not the ISE API: no instance prefix,
 * whatever is configured. false: the path is not of it.
 */
static bool route_gateway(const char *method, const struct segs *sg, const struct route_arg *args,
			  size_t nargs, struct route *r)
{
	if (sg->n == 1 && seg_is(sg, 0, "metrics")) {
		if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
			bad_method(r, "GET");
		else
			r->kind = ROUTE_METRICS;
		return true;
	}
	if (sg->n < 3 || !seg_is(sg, 0, "api") || !seg_is(sg, 1, "v1"))
		return false;
	if (seg_is(sg, 2, "cache"))
		route_purge(method, sg, r);
	else if (seg_is(sg, 2, "adapters"))
		route_adapters(method, sg, r);
	else if (seg_is(sg, 2, "devices"))
		route_devices_admin(method, sg, r);
	else if (seg_is(sg, 2, "actions"))
		route_actions_admin(method, sg, args, nargs, r);
	else if (seg_is(sg, 2, "coa"))
		route_coa_admin(method, sg, args, nargs, r);
	else if (seg_is(sg, 2, "sessions"))
		route_sessions_admin(method, sg, args, nargs, r);
	else if (seg_is(sg, 2, "blocks") && sg->n == 3)
		route_blocks(method, r);
	else if (seg_is(sg, 2, "reconciler"))
		route_reconciler(method, sg, r);
	return true;
}

/* The ISE API: [/<instance>]/ciscoise/mdminfo and .../ciscoise/mdmapi/... */
static void route_ise(const char *method, struct segs *sg, const struct route_arg *args,
		      size_t nargs, const char *instance, struct route *r)
{
	size_t first = 0;

	/* With an instance configured, every API path must carry it; without, none may. */
	if (instance && *instance) {
		if (!seg_is(sg, 0, instance))
			return;
		first = 1;
	}
	for (size_t i = 0; i + first < sg->n; i++) {
		sg->s[i] = sg->s[i + first];
		sg->len[i] = sg->len[i + first];
	}
	sg->n -= first;
	if (!seg_is(sg, 0, "ciscoise"))
		return;
	if (sg->n == 2 && seg_is(sg, 1, "mdminfo"))
		return route_mdminfo(method, args, nargs, r);
	if (sg->n >= 3 && seg_is(sg, 1, "mdmapi"))
		route_api(method, sg, args, nargs, r);
}

void route_parse(const char *method, const char *path, const struct route_arg *raw_args,
		 size_t nargs, const char *instance, struct route *r)
{
	char work[2 * ROUTE_TARGET_MAX + 2];
	struct route_arg args[ROUTE_MAX_ARGS];
	struct segs sg;
	size_t total = strlen(path);

	memset(r, 0, sizeof(*r));
	r->kind = ROUTE_NOT_FOUND;
	if (nargs > ROUTE_MAX_ARGS)
		return bad(r, 400, "too many query parameters");
	/* As sent: "?" or "&" before each argument, "=" only when it has a value. */
	for (size_t i = 0; i < nargs; i++) {
		args[i] = raw_args[i];
		total += strlen(args[i].key) + 1 + (args[i].value ? strlen(args[i].value) + 1 : 0);
	}
	if (total > ROUTE_TARGET_MAX)
		return bad(r, 414, "request target is too long");
	if (!split_path(path, &sg))
		return;
	if (!decode_all(&sg, args, nargs, work, sizeof(work)))
		return bad(r, 400, "bad percent-encoding in the request target");
	if (sg.n == 1 && seg_is(&sg, 0, "healthz")) {
		if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
			return bad_method(r, "GET");
		r->kind = ROUTE_HEALTHZ;
		return;
	}
	if (!route_gateway(method, &sg, args, nargs, r))
		route_ise(method, &sg, args, nargs, instance, r);
}

void route_parse_target(const char *method, const char *target, const char *instance,
			struct route *r)
{
	char work[ROUTE_TARGET_MAX + 2];
	struct route_arg args[ROUTE_MAX_ARGS];
	size_t nargs = 0, len = strlen(target);
	const char *q;
	char *p;

	memset(r, 0, sizeof(*r));
	if (len > ROUTE_TARGET_MAX)
		return bad(r, 414, "request target is too long");
	memcpy(work, target, len + 1);
	p = strchr(work, '?');
	if (p)
		*p++ = '\0';
	/* As an HTTP server does: '+' is a space in the query; percent escapes stay for the router.
	 */
	for (q = p; p && *q;) {
		char *e = strchr(p, '&'), *eq;

		if (e)
			*e = '\0';
		if (*p) {
			if (nargs == ROUTE_MAX_ARGS)
				return bad(r, 400, "too many query parameters");
			for (char *c = p; *c; c++)
				if (*c == '+')
					*c = ' ';
			eq = strchr(p, '=');
			if (eq)
				*eq = '\0';
			args[nargs].key = p;
			args[nargs].value = eq ? eq + 1 : NULL;
			nargs++;
		}
		if (!e)
			break;
		p = e + 1;
		q = p;
	}
	route_parse(method, work, args, nargs, instance, r);
}
