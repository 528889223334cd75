/* mcms_rules: see mcms_rules.h. */
#include "mcms_rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/strw.h"
#include "../core/text.h"
#include "../core/xml.h"
#include "../core/xmlparse.h"

/* Element names we know are short; a longer one can only be unknown, so it is kept as "". */
#define NAME_MAX_LEN 31

/* --- small text helpers (and core/text.h) ------------------------------------------------ */

/* copy_cut: s[0..len) trimmed into dst, cut at a UTF-8 boundary so no character is split. */
static void copy_cut(char *dst, size_t size, const char *s, size_t len)
{
	size_t n;

	text_trim(&s, &len);
	n = len < size - 1 ? len : size - 1;
	if (n < len)
		while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--;
	memcpy(dst, s, n);
	dst[n] = '\0';
}

/* parse_tri: "true"/"false" ignoring case; empty is TRI_UNSET. false: neither (also UNSET). */
static bool parse_tri(const char *s, size_t len, enum tri *out)
{
	text_trim(&s, &len);
	*out = TRI_UNSET;
	if (len == 0)
		return true;
	if (text_ieq(s, len, "true"))
		*out = TRI_TRUE;
	else if (text_ieq(s, len, "false"))
		*out = TRI_FALSE;
	return *out != TRI_UNSET;
}

/* parse_u64: decimal digits only (white space around allowed), at most max. */
static bool parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	text_trim(&s, &len);
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		if (v > (max - (uint64_t)(s[i] - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return true;
}

/* --- a walker on the hardened parser ----------------------------------------------------- */

struct walker;
typedef void (*open_fn)(struct walker *w);
typedef void (*close_fn)(struct walker *w, const char *text, size_t len);

/*
 * The walker keeps the lower-cased local name of every open element and the direct text of the
 * innermost one (core/xmlparse.h), and hands both to its mode's callbacks. Callbacks see
 * w->x.depth (open elements, the root is 1) and w->names.
 */
struct walker {
	struct xmlparse x;
	char names[MCMS_MAX_DEPTH + 1][NAME_MAX_LEN + 1];
	char text[MCMS_TEXT_MAX + 1];
	open_fn on_open;
	close_fn on_close;
	void *ctx;
};

/* named: whether the open element at depth d is called name (lower case). */
static bool named(const struct walker *w, int d, const char *name)
{
	return d >= 1 && d <= w->x.depth && strcmp(w->names[d], name) == 0;
}

/* Stores the local name lower-cased: namespace processing stays off, so "a:Attributes" and
 * "Attributes" under xmlns="..." both read as "attributes". */
static void store_name(char dst[NAME_MAX_LEN + 1], const char *name)
{
	size_t n = strlen(name);

	if (n > NAME_MAX_LEN)
		n = 0;
	for (size_t i = 0; i < n; i++)
		dst[i] = text_lower(name[i]);
	dst[n] = '\0';
}

static void walker_open(struct xmlparse *x, const char *name)
{
	struct walker *w = x->ctx;

	store_name(w->names[x->depth], name);
	if (w->on_open)
		w->on_open(w);
}

static void walker_close(struct xmlparse *x, const char *text, size_t len)
{
	struct walker *w = x->ctx;

	w->on_close(w, text, len);
}

static const struct xmlparse_ops walker_ops = {.open = walker_open, .close = walker_close};

/* walker_new: a zeroed walker (some 5 KiB: kept off the stack of adapter threads). */
static struct walker *walker_new(close_fn on_close, void *ctx, char *why, size_t whysz)
{
	struct walker *w = calloc(1, sizeof(*w));

	if (!w) {
		err_why(why, whysz, "out of memory for the XML parser");
		return NULL;
	}
	w->on_close = on_close;
	w->ctx = ctx;
	w->x = (struct xmlparse){.ops = &walker_ops,
				 .ctx = w,
				 .max_depth = MCMS_MAX_DEPTH,
				 .text = w->text,
				 .text_max = MCMS_TEXT_MAX,
				 .why = why,
				 .whysz = whysz};
	return w;
}

/* walk: runs body (refused unread when over max_body) through the hardened parser. */
static enum mdm_err walk(struct walker *w, const char *body, size_t len, size_t max_body)
{
	w->x.max_body = max_body;
	return xmlparse_run(&w->x, body, len);
}

/* --- mdminfo ------------------------------------------------------------------------------ */

struct info_ctx {
	struct mcms_info *out;
	bool have_version, have_path;
};

static void info_version(struct walker *w, struct info_ctx *c, const char *s, size_t len)
{
	uint64_t v;

	if (!parse_u64(s, len, 1000, &v) || v < 1 || v > 3) {
		xmlparse_fail(&w->x, MDM_ERR_PARSE, "api_version \"%.*s\" is not 1, 2 or 3",
			      (int)(len > 32 ? 32 : len), s);
		return;
	}
	c->out->api_version = (int)v;
	c->have_version = true;
}

/* An api_path is appended to the origin as is: anything that would change the URL's meaning
 * (a query, a fragment, white space, control bytes) or is not a path is refused. */
static void info_path(struct walker *w, struct info_ctx *c, const char *s, size_t len)
{
	text_trim(&s, &len);
	while (len > 1 && s[len - 1] == '/')
		len--;
	if (len == 0 || s[0] != '/') {
		xmlparse_fail(&w->x, MDM_ERR_PARSE, "api_path must be an absolute path");
		return;
	}
	if (len > MCMS_API_PATH_MAX) {
		xmlparse_fail(&w->x, MDM_ERR_PARSE, "api_path is longer than %d bytes",
			      MCMS_API_PATH_MAX);
		return;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch <= 0x20 || ch == 0x7f || ch == '?' || ch == '#') {
			xmlparse_fail(&w->x, MDM_ERR_PARSE,
				      "api_path holds a byte a path cannot carry");
			return;
		}
	}
	str_copyn(c->out->api_path, sizeof(c->out->api_path), s, len);
	c->have_path = true;
}

static void info_qmax(struct walker *w, struct info_ctx *c, const char *s, size_t len)
{
	uint64_t v;
	const char *t = s;
	size_t tl = len;

	text_trim(&t, &tl);
	if (tl == 0)
		return; /* empty: the default stands */
	/* A huge number is still a number: clamp it rather than refuse the server. */
	if (!parse_u64(t, tl, UINT64_MAX, &v)) {
		bool digits = true;

		for (size_t i = 0; i < tl; i++)
			digits = digits && t[i] >= '0' && t[i] <= '9';
		if (!digits) {
			xmlparse_fail(&w->x, MDM_ERR_PARSE, "query_max_size is not a number");
			return;
		}
		v = MCMS_QUERY_MAX_LIMIT;
	}
	if (v < 1)
		v = 1;
	if (v > MCMS_QUERY_MAX_LIMIT)
		v = MCMS_QUERY_MAX_LIMIT;
	c->out->query_max_size = (uint32_t)v;
}

static void info_close(struct walker *w, const char *s, size_t len)
{
	struct info_ctx *c = w->ctx;
	struct mcms_info *o = c->out;
	const char *n = w->names[w->x.depth];
	enum tri t;

	if (w->x.depth != 2)
		return;
	if (!strcmp(n, "api_version"))
		info_version(w, c, s, len);
	else if (!strcmp(n, "api_path"))
		info_path(w, c, s, len);
	else if (!strcmp(n, "query_max_size"))
		info_qmax(w, c, s, len);
	else if (!strcmp(n, "messaging_support")) {
		if (!parse_tri(s, len, &t))
			xmlparse_fail(&w->x, MDM_ERR_PARSE,
				      "messaging_support is neither true nor false");
		o->messaging_support = t == TRI_TRUE;
	} else if (!strcmp(n, "redirect_url")) {
		text_trim(&s, &len);
		/* A cut URL would send users to the wrong page: too long is as good as absent. */
		if (len <= MCMS_REDIRECT_MAX)
			str_copyn(o->redirect_url, sizeof(o->redirect_url), s, len);
	} else if (!strcmp(n, "vendor"))
		copy_cut(o->vendor, sizeof(o->vendor), s, len);
	else if (!strcmp(n, "product_name"))
		copy_cut(o->product_name, sizeof(o->product_name), s, len);
	else if (!strcmp(n, "product_version"))
		copy_cut(o->product_version, sizeof(o->product_version), s, len);
}

enum mdm_err mcms_mdminfo_parse(const char *body, size_t len, size_t max_body,
				struct mcms_info *out, char *why, size_t whysz)
{
	struct info_ctx c = {.out = out};
	struct walker *w;
	enum mdm_err e;

	memset(out, 0, sizeof(*out));
	out->query_max_size = MCMS_QUERY_MAX_DEFAULT;
	w = walker_new(info_close, &c, why, whysz);
	if (!w)
		return MDM_ERR_NOMEM;
	e = walk(w, body, len, max_body);
	if (!e && !c.have_version) {
		err_why(why, whysz, "the mdminfo answer has no api_version");
		e = MDM_ERR_PARSE;
	}
	if (!e && !c.have_path) {
		err_why(why, whysz, "the mdminfo answer has no api_path");
		e = MDM_ERR_PARSE;
	}
	free(w);
	if (e) {
		memset(out, 0, sizeof(*out));
		out->query_max_size = MCMS_QUERY_MAX_DEFAULT;
	}
	return e;
}

/* --- device attributes -------------------------------------------------------------------- */

struct dev_ctx {
	struct outcome oc;
	struct device cur;
	bool in_device;
	bool status_seen; /* a <status> was read in the open <compliance> */
	bool seen_list;
	size_t ndevs;
	size_t max_devices;
	const char *source;
	uint32_t paging;
	int busy;
	size_t dropped;
};

static void dev_mac(struct dev_ctx *c, const char *s, size_t len)
{
	char mac[MAC_STR_LEN + 1];
	bool local;

	text_trim(&s, &len);
	if (len == 0)
		return;
	if (mac_parse(s, len, mac, &local, NULL, 0) != MDM_OK) {
		c->dropped++;
		return;
	}
	/* Past DEVICE_MACS_MAX the MAC is simply not kept: the first ones are the ones that matter.
	 */
	if (device_add_mac(&c->cur, mac) == MDM_OK && c->cur.nmacs == 1)
		c->cur.mac_local = local;
}

/* v3's <macaddresses>: "A,B,C". */
static void dev_macs(struct dev_ctx *c, const char *s, size_t len)
{
	for (;;) {
		const char *comma = memchr(s, ',', len);
		size_t piece = comma ? (size_t)(comma - s) : len;

		dev_mac(c, s, piece);
		if (!comma)
			return;
		s += piece + 1;
		len -= piece + 1;
	}
}

/* dev_ident: a validated identifier into dst; a bad one is dropped and counted. */
static void dev_ident(struct dev_ctx *c, enum ident_kind kind, char *dst, size_t size,
		      const char *s, size_t len)
{
	struct ident id;

	text_trim(&s, &len);
	if (len == 0)
		return;
	if (ident_parse(kind, s, len, &id, NULL, 0) != MDM_OK ||
	    str_copy(dst, size, id.value) != MDM_OK)
		c->dropped++;
}

static void dev_tri(struct dev_ctx *c, enum tri *dst, const char *s, size_t len)
{
	if (!parse_tri(s, len, dst))
		c->dropped++;
}

static void dev_checkin(struct dev_ctx *c, const char *s, size_t len)
{
	uint64_t v;
	const char *t = s;
	size_t tl = len;

	text_trim(&t, &tl);
	if (tl == 0)
		return;
	if (!parse_u64(t, tl, (uint64_t)INT64_MAX, &v)) {
		c->dropped++;
		return;
	}
	c->cur.last_checkin_ms = (int64_t)v;
}

static void dev_ownership(struct dev_ctx *c, const char *s, size_t len)
{
	text_trim(&s, &len);
	if (text_ieq(s, len, "corporate"))
		c->cur.ownership = OWN_CORPORATE;
	else if (text_ieq(s, len, "personal"))
		c->cur.ownership = OWN_PERSONAL;
}

/* Identifiers: under <device> (the key) and under <attributes> alike. */
static bool dev_ident_field(struct dev_ctx *c, const char *n, const char *s, size_t len)
{
	struct device *d = &c->cur;

	if (!strcmp(n, "macaddress"))
		dev_mac(c, s, len);
	else if (!strcmp(n, "macaddresses"))
		dev_macs(c, s, len);
	else if (!strcmp(n, "guid"))
		dev_ident(c, IDENT_GUID, d->guid, sizeof(d->guid), s, len);
	else if (!strcmp(n, "udid"))
		dev_ident(c, IDENT_UDID, d->udid, sizeof(d->udid), s, len);
	else if (!strcmp(n, "imei"))
		dev_ident(c, IDENT_IMEI, d->imei, sizeof(d->imei), s, len);
	else if (!strcmp(n, "meid"))
		dev_ident(c, IDENT_MEID, d->meid, sizeof(d->meid), s, len);
	else if (!strcmp(n, "serial_number"))
		dev_ident(c, IDENT_SERIAL, d->serial, sizeof(d->serial), s, len);
	else if (!strcmp(n, "hostname"))
		dev_ident(c, IDENT_HOSTNAME, d->hostname, sizeof(d->hostname), s, len);
	else if (!strcmp(n, "username"))
		dev_ident(c, IDENT_USERNAME, d->username, sizeof(d->username), s, len);
	else
		return false;
	return true;
}

/* A child of <attributes>. */
static void dev_attribute(struct dev_ctx *c, const char *n, const char *s, size_t len)
{
	struct device *d = &c->cur;

	if (dev_ident_field(c, n, s, len))
		return;
	if (!strcmp(n, "register_status"))
		dev_tri(c, &d->registered, s, len);
	else if (!strcmp(n, "disk_encryption_on"))
		dev_tri(c, &d->disk_encrypted, s, len);
	else if (!strcmp(n, "pin_lock_on"))
		dev_tri(c, &d->pin_lock, s, len);
	else if (!strcmp(n, "jail_broken"))
		dev_tri(c, &d->jail_broken, s, len);
	else if (!strcmp(n, "manufacturer"))
		copy_cut(d->manufacturer, sizeof(d->manufacturer), s, len);
	else if (!strcmp(n, "model"))
		copy_cut(d->model, sizeof(d->model), s, len);
	else if (!strcmp(n, "os_version"))
		copy_cut(d->os_version, sizeof(d->os_version), s, len);
	else if (!strcmp(n, "phone_number"))
		copy_cut(d->phone_number, sizeof(d->phone_number), s, len);
	else if (!strcmp(n, "lastcheckintimestamp"))
		dev_checkin(c, s, len);
	else if (!strcmp(n, "ownership"))
		dev_ownership(c, s, len);
	else if (!strcmp(n, "compliance") && !c->status_seen)
		dev_tri(c, &d->compliant, s, len); /* <compliance>true</compliance> */
}

/* A child of <compliance>. */
static void dev_compliance(struct dev_ctx *c, const char *n, const char *s, size_t len)
{
	struct device *d = &c->cur;

	if (!strcmp(n, "status")) {
		dev_tri(c, &d->compliant, s, len);
		c->status_seen = true;
	} else if (!strcmp(n, "failure_reason"))
		copy_cut(d->failure_reason, sizeof(d->failure_reason), s, len);
	else if (!strcmp(n, "remediation"))
		copy_cut(d->remediation, sizeof(d->remediation), s, len);
}

/* The vendor id prefers what the MDM itself keys devices by, then the most stable hardware id. */
static const char *pick_vendor_id(const struct device *d)
{
	if (d->guid[0])
		return d->guid;
	if (d->nmacs)
		return d->macs[0];
	if (d->udid[0])
		return d->udid;
	if (d->serial[0])
		return d->serial;
	if (d->imei[0])
		return d->imei;
	return d->meid;
}

static void dev_finish(struct walker *w, struct dev_ctx *c)
{
	enum mdm_err e;

	str_copy(c->cur.vendor_id, sizeof(c->cur.vendor_id), pick_vendor_id(&c->cur));
	str_copy(c->cur.source, sizeof(c->cur.source), c->source);
	e = outcome_add(&c->oc, &c->cur);
	if (e)
		xmlparse_fail(&w->x, e, "out of memory for device %zu", c->ndevs);
	c->in_device = false;
}

static void dev_open(struct walker *w)
{
	struct dev_ctx *c = w->ctx;

	if (w->x.depth == 2 && named(w, 2, "devicelist"))
		c->seen_list = true;
	else if (w->x.depth == 3 && named(w, 2, "devicelist") && named(w, 3, "device")) {
		if (c->ndevs >= c->max_devices) {
			xmlparse_fail(&w->x, MDM_ERR_TOOBIG, "more than %zu devices in one answer",
				      c->max_devices);
			return;
		}
		c->ndevs++;
		memset(&c->cur, 0, sizeof(c->cur));
		c->in_device = true;
	} else if (c->in_device && w->x.depth == 5 && named(w, 4, "attributes") &&
		   named(w, 5, "compliance"))
		c->status_seen = false;
}

static void dev_top(struct walker *w, struct dev_ctx *c, const char *n, const char *s, size_t len)
{
	uint64_t v;
	const char *t = s;
	size_t tl = len;

	text_trim(&t, &tl);
	if (!strcmp(n, "paging_info") && tl) {
		/* A cursor we cannot send back would silently lose the rest of the listing. */
		if (!parse_u64(t, tl, UINT32_MAX, &v)) {
			xmlparse_fail(&w->x, MDM_ERR_PARSE,
				      "paging_info is not an unsigned 32-bit integer");
			return;
		}
		c->paging = (uint32_t)v;
	} else if (!strcmp(n, "server_busy_wait_seconds") && tl) {
		/* Only a hint: a bad one is ignored, a huge one clamped. */
		if (parse_u64(t, tl, UINT64_MAX, &v))
			c->busy = v > MCMS_BUSY_WAIT_MAX ? MCMS_BUSY_WAIT_MAX : (int)v;
	}
}

static void dev_close(struct walker *w, const char *s, size_t len)
{
	struct dev_ctx *c = w->ctx;
	const char *n = w->names[w->x.depth];
	int d = w->x.depth;

	if (d == 2)
		dev_top(w, c, n, s, len);
	if (!c->in_device)
		return;
	if (d == 3)
		dev_finish(w, c);
	else if (d == 4)
		dev_ident_field(c, n, s, len);
	else if (d == 5 && named(w, 4, "attributes"))
		dev_attribute(c, n, s, len);
	else if (d == 6 && named(w, 4, "attributes") && named(w, 5, "compliance"))
		dev_compliance(c, n, s, len);
}

enum mdm_err mcms_devices_parse(const char *body, size_t len, size_t max_body, size_t max_devices,
				const char *source, struct outcome *oc, uint32_t *next_paging,
				int *busy_wait_s, size_t *dropped, char *why, size_t whysz)
{
	struct dev_ctx *c = NULL;
	struct walker *w = NULL;
	enum mdm_err e = MDM_ERR_INVALID;

	if (!oc || !next_paging || !busy_wait_s || !source ||
	    strlen(source) >= sizeof(c->cur.source)) {
		err_why(why, whysz, "bad arguments (or a source name too long)");
		goto out;
	}
	*next_paging = 0;
	*busy_wait_s = 0;
	if (dropped)
		*dropped = 0;
	e = MDM_ERR_NOMEM;
	c = calloc(1, sizeof(*c));
	if (!c) {
		err_why(why, whysz, "out of memory for the device list");
		goto out;
	}
	outcome_init(&c->oc);
	c->max_devices = max_devices;
	c->source = source;
	w = walker_new(dev_close, c, why, whysz);
	if (!w)
		goto out;
	w->on_open = dev_open;
	e = walk(w, body, len, max_body);
	if (!e && !c->seen_list) {
		err_why(why, whysz, "the answer has no <deviceList>");
		e = MDM_ERR_PARSE;
	}
	if (e)
		goto out;
	outcome_move(oc, &c->oc);
	*next_paging = c->paging;
	*busy_wait_s = c->busy;
	if (dropped)
		*dropped = c->dropped;
out:
	if (e && oc) {
		/* A page we could not read is a failure, never "not enrolled". */
		outcome_clear(oc);
		outcome_set(oc, OUTCOME_FAILED, FAIL_PROTOCOL, why && whysz ? why : err_str(e));
	}
	if (c)
		outcome_clear(&c->oc);
	free(c);
	free(w);
	return e;
}

/* --- actions ------------------------------------------------------------------------------ */

struct act_ctx {
	size_t nstatus;
	bool all_true;
	char *reason;
	size_t reasonsz;
};

static void act_close(struct walker *w, const char *s, size_t len)
{
	struct act_ctx *c = w->ctx;
	const char *n = w->names[w->x.depth];
	enum tri t;

	if (!strcmp(n, "action_status")) {
		if (!parse_tri(s, len, &t) || t == TRI_UNSET) {
			xmlparse_fail(&w->x, MDM_ERR_PARSE,
				      "action_status is neither true nor false");
			return;
		}
		c->nstatus++;
		c->all_true = c->all_true && t == TRI_TRUE;
	} else if (!strcmp(n, "failure_reason") && c->reasonsz && c->reason[0] == '\0')
		copy_cut(c->reason, c->reasonsz, s, len);
}

enum mdm_err mcms_action_parse(const char *body, size_t len, size_t max_body, bool *accepted,
			       char *reason, size_t reasonsz, char *why, size_t whysz)
{
	char none[1];
	struct act_ctx c = {.all_true = true,
			    .reason = reason ? reason : none,
			    .reasonsz = reason ? reasonsz : sizeof(none)};
	struct walker *w;
	enum mdm_err e;

	*accepted = false;
	if (c.reasonsz)
		c.reason[0] = '\0';
	w = walker_new(act_close, &c, why, whysz);
	if (!w)
		return MDM_ERR_NOMEM;
	e = walk(w, body, len, max_body);
	if (!e && c.nstatus == 0) {
		err_why(why, whysz, "the action answer has no action_status");
		e = MDM_ERR_PARSE;
	}
	free(w);
	if (e) {
		if (c.reasonsz)
			c.reason[0] = '\0';
		return e;
	}
	*accepted = c.all_true;
	return MDM_OK;
}

enum mdm_err mcms_action_body(const struct ident *id, struct buf *out)
{
	static const char *const tags[IDENT_KIND_COUNT] = {
	    [IDENT_MAC] = "macaddress", [IDENT_GUID] = "guid", [IDENT_UDID] = "udid",
	    [IDENT_IMEI] = "imei",	[IDENT_MEID] = "meid", [IDENT_SERIAL] = "serial_number",
	};
	const char *tag;
	enum mdm_err e;

	if (!id || (unsigned)id->kind >= IDENT_KIND_COUNT || !tags[id->kind])
		return MDM_ERR_INVALID;
	tag = tags[id->kind];
	e = buf_addf(out, "<ise_api><identifier><%s>", tag);
	if (!e)
		e = xml_escape(out, id->value, strlen(id->value));
	if (!e)
		e = buf_addf(out, "</%s></identifier></ise_api>", tag);
	return e;
}

/* --- request URLs ------------------------------------------------------------------------- */

enum mdm_err mcms_url_mdminfo(const char *base, const char *instance, int version, char *out,
			      size_t outsz)
{
	struct strw s;
	char v[4];

	strw_init(&s, out, outsz);
	if (!strw_origin(&s, base) || version < 1 || version > 3)
		return MDM_ERR_INVALID;
	if (instance) {
		size_t n = strlen(instance);

		while (n && instance[n - 1] == '/')
			n--;
		while (n && *instance == '/') {
			instance++;
			n--;
		}
		if (n) {
			strw_add(&s, "/", 1);
			strw_pct(&s, instance, n, "/");
		}
	}
	snprintf(v, sizeof(v), "%d", version);
	strw_str(&s, "/ciscoise/mdminfo/?ise_api_version=");
	strw_str(&s, v);
	return strw_end(&s);
}

static const struct {
	const char *name;
	int version;
} criteria[] = {
    [MCMS_BY_NONE] = {"", 1},
    [MCMS_BY_MAC] = {"macaddress", 1},
    [MCMS_BY_COMPLIANCE] = {"compliance", 1},
    [MCMS_BY_USERNAME] = {"username", 1},
    [MCMS_BY_UDID] = {"udid", 2},
    [MCMS_BY_IMEI] = {"imei", 2},
    [MCMS_BY_MEID] = {"meid", 2},
    [MCMS_BY_GUID] = {"guid", 3},
    [MCMS_BY_HOSTNAME] = {"guidhn", 3},
};

#define NCRITERIA (sizeof(criteria) / sizeof(criteria[0]))

const char *mcms_criterion_name(enum mcms_criterion c)
{
	return (unsigned)c < NCRITERIA ? criteria[c].name : "";
}

int mcms_criterion_version(enum mcms_criterion c)
{
	return (unsigned)c < NCRITERIA ? criteria[c].version : 0;
}

/* norm_value: the criterion's value validated and normalised into out (IDENT_VALUE_MAX + 1). */
static enum mdm_err norm_value(enum mcms_criterion crit, const char *value, char *out)
{
	static const enum ident_kind kinds[NCRITERIA] = {
	    [MCMS_BY_USERNAME] = IDENT_USERNAME, [MCMS_BY_UDID] = IDENT_UDID,
	    [MCMS_BY_IMEI] = IDENT_IMEI,	 [MCMS_BY_MEID] = IDENT_MEID,
	    [MCMS_BY_GUID] = IDENT_GUID,	 [MCMS_BY_HOSTNAME] = IDENT_HOSTNAME,
	};
	struct ident id;
	bool local;
	size_t len;

	if (crit == MCMS_BY_NONE)
		return str_copy(out, IDENT_VALUE_MAX + 1, "");
	if (!value)
		return MDM_ERR_INVALID;
	len = strlen(value);
	if (crit == MCMS_BY_MAC)
		return mac_parse(value, len, out, &local, NULL, 0) ? MDM_ERR_INVALID : MDM_OK;
	if (crit == MCMS_BY_COMPLIANCE) {
		enum tri t;

		if (!parse_tri(value, len, &t) || t == TRI_UNSET)
			return MDM_ERR_INVALID;
		return str_copy(out, IDENT_VALUE_MAX + 1, t == TRI_TRUE ? "true" : "false");
	}
	if (ident_parse(kinds[crit], value, len, &id, NULL, 0) != MDM_OK)
		return MDM_ERR_INVALID;
	return str_copy(out, IDENT_VALUE_MAX + 1, id.value);
}

/* url_api: <base><api_path>, api_path as mdminfo gave it (absolute, trailing slashes dropped). */
static bool url_api(struct strw *s, char *out, size_t outsz, const char *base, const char *api_path)
{
	size_t n = api_path ? strlen(api_path) : 0;

	strw_init(s, out, outsz);
	if (!strw_origin(s, base) || n == 0 || api_path[0] != '/')
		return false;
	while (n && api_path[n - 1] == '/')
		n--;
	strw_pct(s, api_path, n, "/");
	return true;
}

enum mdm_err mcms_url_devices(const char *base, const char *api_path, int version,
			      enum mcms_criterion crit, const char *value, uint32_t paging,
			      char *out, size_t outsz)
{
	char v[IDENT_VALUE_MAX + 1];
	char pg[16];
	struct strw s;
	const char *name = mcms_criterion_name(crit);

	if (version < 1 || version > 3 || (unsigned)crit >= NCRITERIA ||
	    criteria[crit].version > version || norm_value(crit, value, v) != MDM_OK ||
	    !url_api(&s, out, outsz, base, api_path)) {
		if (outsz)
			out[0] = '\0';
		return MDM_ERR_INVALID;
	}
	snprintf(pg, sizeof(pg), "%lu", (unsigned long)paging);
	if (version == 1) {
		strw_str(&s, "/devices/");
		strw_str(&s, pg);
		if (crit != MCMS_BY_NONE) {
			strw_add(&s, "/", 1);
			strw_str(&s, name);
			strw_add(&s, "/", 1);
			strw_pct(&s, v, strlen(v), NULL);
		}
		strw_str(&s, "/all");
		return strw_end(&s);
	}
	strw_str(&s, "/devices/?paging=");
	strw_str(&s, pg);
	if (crit != MCMS_BY_NONE) {
		strw_str(&s, "&querycriteria=");
		strw_str(&s, name);
		strw_str(&s, "&value=");
		strw_pct(&s, v, strlen(v), NULL);
	}
	strw_str(&s, "&filter=all");
	return strw_end(&s);
}

enum mdm_err mcms_url_action(const char *base, const char *api_path, enum action_kind kind,
			     char *out, size_t outsz)
{
	struct strw s;

	if ((unsigned)kind >= ACTION_COUNT || !url_api(&s, out, outsz, base, api_path)) {
		if (outsz)
			out[0] = '\0';
		return MDM_ERR_INVALID;
	}
	strw_str(&s, "/action/?actionType=");
	strw_str(&s, action_kind_name(kind));
	return strw_end(&s);
}

/* --- Retry-After -------------------------------------------------------------------------- */

/* index of the 3-letter name at s in names (exact case, as RFC 9110 writes them), or -1. */
static int name_index(const char *s, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (!memcmp(s, names[i], 3))
			return i;
	return -1;
}

/* Days since 1970-01-01 of a Gregorian date (H. Hinnant's algorithm): no TZ, no libc. */
static int64_t days_since_epoch(int y, int m, int d)
{
	int64_t yy = y - (m <= 2 ? 1 : 0);
	int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
	int64_t yoe = yy - era * 400;
	int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;

	return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

static const char *const wday_abbr[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
static const char *const month_abbr[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* The fields of an HTTP-date, whatever its form. */
struct hdate {
	int day, mon, year, hh, mm, ss; /* mon 0..11 */
};

/* "HH:MM:SS" at s. */
static bool hms(const char *s, struct hdate *d)
{
	return s[2] == ':' && s[5] == ':' && text_digits(s, 2, &d->hh) &&
	       text_digits(s + 3, 2, &d->mm) && text_digits(s + 6, 2, &d->ss);
}

/* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" (the form senders must use). */
static bool imf_fixdate(const char *s, size_t len, struct hdate *d)
{
	return len == 29 && name_index(s, wday_abbr, 7) >= 0 && !memcmp(s + 3, ", ", 2) &&
	       text_digits(s + 5, 2, &d->day) && s[7] == ' ' &&
	       (d->mon = name_index(s + 8, month_abbr, 12)) >= 0 && s[11] == ' ' &&
	       text_digits(s + 12, 4, &d->year) && s[16] == ' ' && hms(s + 17, d) &&
	       !memcmp(s + 25, " GMT", 4);
}

/* RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT". The two-digit year is read as 1970..2069, the
 * usual pivot: the form has been obsolete since 1996, so a later reading cannot matter. */
static bool rfc850_date(const char *s, size_t len, struct hdate *d)
{
	static const char *const wdays[] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
					    "Friday", "Saturday", "Sunday"};
	const char *comma = memchr(s, ',', len);
	size_t wl = comma ? (size_t)(comma - s) : 0;
	bool wday_ok = false;

	for (int i = 0; i < 7; i++)
		wday_ok = wday_ok || (wl == strlen(wdays[i]) && !memcmp(s, wdays[i], wl));
	if (!wday_ok || len != wl + 24)
		return false;
	s = comma + 1;
	if (!(s[0] == ' ' && text_digits(s + 1, 2, &d->day) && s[3] == '-' &&
	      (d->mon = name_index(s + 4, month_abbr, 12)) >= 0 && s[7] == '-' &&
	      text_digits(s + 8, 2, &d->year) && s[10] == ' ' && hms(s + 11, d) &&
	      !memcmp(s + 19, " GMT", 4)))
		return false;
	d->year += d->year < 70 ? 2000 : 1900;
	return true;
}

/* asctime: "Sun Nov  6 08:49:37 1994" (the day padded with a space). */
static bool asctime_date(const char *s, size_t len, struct hdate *d)
{
	char day[2];

	if (len != 24 || name_index(s, wday_abbr, 7) < 0 || s[3] != ' ' ||
	    (d->mon = name_index(s + 4, month_abbr, 12)) < 0 || s[7] != ' ')
		return false;
	day[0] = s[8] == ' ' ? '0' : s[8];
	day[1] = s[9];
	return text_digits(day, 2, &d->day) && s[10] == ' ' && hms(s + 11, d) && s[19] == ' ' &&
	       text_digits(s + 20, 4, &d->year);
}

/* http_date: any of the three forms RFC 9110 5.6.7 makes recipients accept, to epoch ms. */
static bool http_date(const char *s, size_t len, int64_t *ms)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	struct hdate d;
	bool leap;

	memset(&d, 0, sizeof(d));
	if (len < 24 ||
	    (!imf_fixdate(s, len, &d) && !rfc850_date(s, len, &d) && !asctime_date(s, len, &d)))
		return false;
	leap = (d.year % 4 == 0 && d.year % 100 != 0) || d.year % 400 == 0;
	/* second 60: a leap second, which the grammar allows */
	if (d.day < 1 || d.day > mdays[d.mon] || (d.mon == 1 && d.day == 29 && !leap) ||
	    d.hh > 23 || d.mm > 59 || d.ss > 60)
		return false;
	*ms =
	    (days_since_epoch(d.year, d.mon + 1, d.day) * 86400 + d.hh * 3600 + d.mm * 60 + d.ss) *
	    1000;
	return true;
}

enum mdm_err mcms_retry_after_parse(const char *header_value, int64_t now_wall_ms,
				    int64_t *delay_ms)
{
	const char *s = header_value;
	size_t len = s ? strlen(s) : 0;
	uint64_t secs;
	int64_t at;

	text_trim(&s, &len);
	if (len == 0)
		return MDM_ERR_INVALID;
	if (s[0] >= '0' && s[0] <= '9') {
		bool all = true;

		for (size_t i = 0; i < len; i++)
			all = all && s[i] >= '0' && s[i] <= '9';
		if (!all)
			return MDM_ERR_INVALID;
		/* More digits than fit is still "a long time": the clamp below applies. */
		if (!parse_u64(s, len, UINT64_MAX / 1000, &secs) || secs > MCMS_RETRY_MAX_MS / 1000)
			secs = MCMS_RETRY_MAX_MS / 1000;
		*delay_ms = (int64_t)secs * 1000;
		return MDM_OK;
	}
	if (!http_date(s, len, &at))
		return MDM_ERR_INVALID;
	at -= now_wall_ms;
	*delay_ms = at < 0 ? 0 : (at > MCMS_RETRY_MAX_MS ? MCMS_RETRY_MAX_MS : at);
	return MDM_OK;
}
