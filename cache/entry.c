#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "entry.h"

/*
 * The device fields by kind, so that encoding and decoding walk the same list and a field
 * added to struct device needs one line here rather than two code paths kept in step.
 */
struct str_field {
	const char *key;
	size_t off;
	size_t size;
};

struct tri_field {
	const char *key;
	size_t off;
};

struct int_field {
	const char *key;
	size_t off;
};

/* Kept one field a line by hand: it reads as the table it is. */
/* clang-format off */
#define STR_FIELD(k, m) {k, offsetof(struct device, m), sizeof(((struct device *)0)->m)}

static const struct str_field str_fields[] = {
	STR_FIELD("src", source),
	STR_FIELD("id", vendor_id),
	STR_FIELD("guid", guid),
	STR_FIELD("udid", udid),
	STR_FIELD("imei", imei),
	STR_FIELD("meid", meid),
	STR_FIELD("sn", serial),
	STR_FIELD("host", hostname),
	STR_FIELD("user", username),
	STR_FIELD("why", failure_reason),
	STR_FIELD("fix", remediation),
	STR_FIELD("mfr", manufacturer),
	STR_FIELD("model", model),
	STR_FIELD("os", os_version),
	STR_FIELD("tel", phone_number),
};

static const struct tri_field tri_fields[] = {
	{"reg", offsetof(struct device, registered)},
	{"cmp", offsetof(struct device, compliant)},
	{"enc", offsetof(struct device, disk_encrypted)},
	{"pin", offsetof(struct device, pin_lock)},
	{"jb", offsetof(struct device, jail_broken)},
};

static const struct int_field int_fields[] = {
	{"seen", offsetof(struct device, last_checkin_ms)},
	{"at", offsetof(struct device, fetched_at_ms)},
};

/* clang-format on */

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

#define KEY_VERSION "v"
#define KEY_VERDICT "r"
#define KEY_DEVICES "d"
#define KEY_MACS "macs"
#define KEY_MAC_LOCAL "ml"
#define KEY_OWNERSHIP "own"
#define VERDICT_FOUND "found"
#define VERDICT_NOT_ENROLLED "not_enrolled"

/* --- encoding ------------------------------------------------------------------------------ */

/* Adds val under key; takes val (NULL: a failed allocation) in every case, as jansson does. */
static enum mdm_err set_new(json_t *obj, const char *key, json_t *val)
{
	if (!val)
		return MDM_ERR_NOMEM;
	return json_object_set_new(obj, key, val) == 0 ? MDM_OK : MDM_ERR_NOMEM;
}

/* A JSON string from s, which must be NUL-terminated within size bytes and valid UTF-8. */
static enum mdm_err new_string(const char *s, size_t size, json_t **out)
{
	size_t len = strnlen(s, size);

	if (len == size)
		return MDM_ERR_INVALID;
	*out = json_stringn(s, len);
	/*
	 * jansson answers NULL both for bytes that are not UTF-8 and for no memory. The first is
	 * far likelier with vendor data, and either way this answer is not cached.
	 */
	return *out ? MDM_OK : MDM_ERR_INVALID;
}

static enum mdm_err encode_str(json_t *o, const char *key, const char *s, size_t size)
{
	json_t *js;
	enum mdm_err err;

	if (s[0] == '\0')
		return MDM_OK;
	err = new_string(s, size, &js);
	if (err)
		return err;
	return set_new(o, key, js);
}

static enum mdm_err encode_tri(json_t *o, const char *key, enum tri t)
{
	switch (t) {
	case TRI_UNSET:
		return MDM_OK;
	case TRI_FALSE:
		return set_new(o, key, json_false());
	case TRI_TRUE:
		return set_new(o, key, json_true());
	default:
		return MDM_ERR_INVALID;
	}
}

static enum mdm_err encode_ownership(json_t *o, enum ownership own)
{
	switch (own) {
	case OWN_UNKNOWN:
		return MDM_OK;
	case OWN_CORPORATE:
	case OWN_PERSONAL:
		return set_new(o, KEY_OWNERSHIP, json_string(ownership_name(own)));
	default:
		return MDM_ERR_INVALID;
	}
}

static enum mdm_err encode_macs(json_t *o, const struct device *d)
{
	json_t *arr, *js;
	enum mdm_err err;

	if (d->nmacs > DEVICE_MACS_MAX)
		return MDM_ERR_INVALID;
	if (d->nmacs == 0)
		return MDM_OK;
	arr = json_array();
	err = set_new(o, KEY_MACS, arr); /* o owns arr from here, also on a later error */
	for (unsigned i = 0; i < d->nmacs && !err; i++) {
		err = new_string(d->macs[i], sizeof(d->macs[i]), &js);
		if (!err && json_array_append_new(arr, js) != 0)
			err = MDM_ERR_NOMEM;
	}
	return err;
}

static enum mdm_err encode_fields(json_t *o, const struct device *d)
{
	const char *base = (const char *)d;
	enum mdm_err err = MDM_OK;
	size_t i;

	for (i = 0; i < COUNT(str_fields) && !err; i++) {
		const struct str_field *f = &str_fields[i];

		err = encode_str(o, f->key, base + f->off, f->size);
	}
	if (!err)
		err = encode_macs(o, d);
	/* Apart from the MACs: the flag alone must survive the round trip too. */
	if (!err && d->mac_local)
		err = set_new(o, KEY_MAC_LOCAL, json_true());
	if (!err)
		err = encode_ownership(o, d->ownership);
	for (i = 0; i < COUNT(tri_fields) && !err; i++)
		err = encode_tri(o, tri_fields[i].key,
				 *(const enum tri *)(const void *)(base + tri_fields[i].off));
	for (i = 0; i < COUNT(int_fields) && !err; i++) {
		int64_t t = *(const int64_t *)(const void *)(base + int_fields[i].off);

		if (t != 0)
			err = set_new(o, int_fields[i].key, json_integer((json_int_t)t));
	}
	return err;
}

static enum mdm_err encode_device(json_t *arr, const struct device *d)
{
	json_t *o = json_object();

	if (!o)
		return MDM_ERR_NOMEM;
	if (json_array_append_new(arr, o) != 0)
		return MDM_ERR_NOMEM;
	return encode_fields(o, d);
}

/* The whole value as a JSON tree in *root (json_decref it, also on error). */
static enum mdm_err build_root(enum entry_verdict v, const struct device *devs, size_t n,
			       json_t **root)
{
	json_t *arr;
	enum mdm_err err;

	*root = json_object();
	if (!*root)
		return MDM_ERR_NOMEM;
	err = set_new(*root, KEY_VERSION, json_integer(ENTRY_VERSION));
	if (!err)
		err = set_new(*root, KEY_VERDICT,
			      json_string(v == ENTRY_FOUND ? VERDICT_FOUND : VERDICT_NOT_ENROLLED));
	if (err || n == 0)
		return err;
	arr = json_array();
	err = set_new(*root, KEY_DEVICES, arr);
	for (size_t i = 0; i < n && !err; i++)
		err = encode_device(arr, &devs[i]);
	return err;
}

struct dump_ctx {
	struct buf *out;
	size_t start;
	enum mdm_err err;
};

static int dump_cb(const char *buffer, size_t size, void *data)
{
	struct dump_ctx *ctx = data;

	if (size > ENTRY_MAX_LEN - (ctx->out->len - ctx->start)) {
		ctx->err = MDM_ERR_TOOBIG;
		return -1;
	}
	ctx->err = buf_add(ctx->out, buffer, size);
	return ctx->err ? -1 : 0;
}

/* Writes root into out; on error out is cut back to where it was. */
static enum mdm_err dump_into(const json_t *root, struct buf *out)
{
	struct dump_ctx ctx = {.out = out, .start = out->len, .err = MDM_OK};

	if (json_dump_callback(root, dump_cb, &ctx, JSON_COMPACT) == 0)
		return MDM_OK;
	/* buf has no truncate; its fields are public and this keeps its invariants (NUL end). */
	out->len = ctx.start;
	if (out->mem)
		out->mem[out->len] = '\0';
	return ctx.err ? ctx.err : MDM_ERR_NOMEM;
}

enum mdm_err entry_encode(enum entry_verdict v, const struct device *devs, size_t n,
			  struct buf *out)
{
	json_t *root;
	enum mdm_err err;

	if (v != ENTRY_FOUND && v != ENTRY_NOT_ENROLLED)
		return MDM_ERR_INVALID;
	/* The verdict and the records must agree, so a cached answer always maps to an outcome. */
	if ((v == ENTRY_FOUND) != (n > 0) || (n && !devs))
		return MDM_ERR_INVALID;
	if (n > ENTRY_MAX_DEVICES)
		return MDM_ERR_TOOBIG;
	err = build_root(v, devs, n, &root);
	if (!err)
		err = dump_into(root, out);
	json_decref(root);
	return err;
}

/* --- decoding ------------------------------------------------------------------------------ */

/* Copies a JSON string into a fixed array; anything else, or too long to fit, is a parse error. */
static enum mdm_err decode_str(const json_t *js, char *dst, size_t size)
{
	if (!json_is_string(js))
		return MDM_ERR_PARSE;
	if (str_copyn(dst, size, json_string_value(js), json_string_length(js)) != MDM_OK)
		return MDM_ERR_PARSE;
	return MDM_OK;
}

static enum mdm_err decode_tri(const json_t *js, enum tri *t)
{
	if (!json_is_boolean(js))
		return MDM_ERR_PARSE;
	*t = json_is_true(js) ? TRI_TRUE : TRI_FALSE;
	return MDM_OK;
}

static enum mdm_err decode_ownership(const json_t *js, enum ownership *own)
{
	const char *s = json_string_value(js); /* NULL when not a string */

	if (s && strcmp(s, ownership_name(OWN_CORPORATE)) == 0)
		*own = OWN_CORPORATE;
	else if (s && strcmp(s, ownership_name(OWN_PERSONAL)) == 0)
		*own = OWN_PERSONAL;
	else
		return MDM_ERR_PARSE;
	return MDM_OK;
}

static enum mdm_err decode_macs(const json_t *js, struct device *d)
{
	size_t n = json_array_size(js);

	if (!json_is_array(js) || n > DEVICE_MACS_MAX)
		return MDM_ERR_PARSE;
	for (size_t i = 0; i < n; i++) {
		enum mdm_err err =
		    decode_str(json_array_get(js, i), d->macs[i], sizeof(d->macs[i]));

		if (err)
			return err;
	}
	d->nmacs = (unsigned)n;
	return MDM_OK;
}

/* One member of a device object; a key not in the tables is a parse error. */
static enum mdm_err decode_field(const char *key, const json_t *js, struct device *d)
{
	char *base = (char *)d;
	size_t i;

	for (i = 0; i < COUNT(str_fields); i++)
		if (strcmp(key, str_fields[i].key) == 0)
			return decode_str(js, base + str_fields[i].off, str_fields[i].size);
	for (i = 0; i < COUNT(tri_fields); i++)
		if (strcmp(key, tri_fields[i].key) == 0)
			return decode_tri(js, (enum tri *)(void *)(base + tri_fields[i].off));
	for (i = 0; i < COUNT(int_fields); i++) {
		if (strcmp(key, int_fields[i].key) != 0)
			continue;
		if (!json_is_integer(js))
			return MDM_ERR_PARSE;
		*(int64_t *)(void *)(base + int_fields[i].off) = (int64_t)json_integer_value(js);
		return MDM_OK;
	}
	if (strcmp(key, KEY_MACS) == 0)
		return decode_macs(js, d);
	if (strcmp(key, KEY_OWNERSHIP) == 0)
		return decode_ownership(js, &d->ownership);
	if (strcmp(key, KEY_MAC_LOCAL) == 0) {
		if (!json_is_boolean(js))
			return MDM_ERR_PARSE;
		d->mac_local = json_is_true(js);
		return MDM_OK;
	}
	return MDM_ERR_PARSE;
}

/* d is zeroed: whatever the object leaves out keeps its zero value. */
static enum mdm_err decode_device(json_t *o, struct device *d)
{
	const char *key;
	json_t *js;

	if (!json_is_object(o))
		return MDM_ERR_PARSE;
	json_object_foreach(o, key, js)
	{
		enum mdm_err err = decode_field(key, js, d);

		if (err)
			return err;
	}
	return MDM_OK;
}

static enum mdm_err decode_verdict(const json_t *js, enum entry_verdict *v)
{
	const char *s = json_string_value(js);

	if (s && strcmp(s, VERDICT_FOUND) == 0)
		*v = ENTRY_FOUND;
	else if (s && strcmp(s, VERDICT_NOT_ENROLLED) == 0)
		*v = ENTRY_NOT_ENROLLED;
	else
		return MDM_ERR_PARSE;
	return MDM_OK;
}

/* The top-level object has exactly "v" and "r", and "d" unless there are no records. */
static enum mdm_err decode_header(const json_t *root, enum entry_verdict *v, const json_t **arr)
{
	const json_t *ver;
	size_t want = 2;

	if (!json_is_object(root))
		return MDM_ERR_PARSE;
	ver = json_object_get(root, KEY_VERSION);
	if (!json_is_integer(ver) || json_integer_value(ver) != ENTRY_VERSION)
		return MDM_ERR_PARSE;
	if (decode_verdict(json_object_get(root, KEY_VERDICT), v) != MDM_OK)
		return MDM_ERR_PARSE;
	*arr = json_object_get(root, KEY_DEVICES);
	if (*arr) {
		want++;
		if (!json_is_array(*arr))
			return MDM_ERR_PARSE;
	}
	if (json_object_size(root) != want)
		return MDM_ERR_PARSE;
	if (json_array_size(*arr) > ENTRY_MAX_DEVICES)
		return MDM_ERR_TOOBIG;
	if ((*v == ENTRY_FOUND) != (json_array_size(*arr) > 0))
		return MDM_ERR_PARSE;
	return MDM_OK;
}

static enum mdm_err decode_root(const json_t *root, enum entry_verdict *v, struct device **devs,
				size_t *n)
{
	const json_t *arr = NULL;
	struct device *d = NULL;
	enum entry_verdict verdict;
	enum mdm_err err;
	size_t i, count;

	err = decode_header(root, &verdict, &arr);
	if (err)
		return err;
	count = json_array_size(arr);
	if (count) {
		d = calloc(count, sizeof(*d));
		if (!d)
			return MDM_ERR_NOMEM;
	}
	for (i = 0; i < count && !err; i++)
		err = decode_device(json_array_get(arr, i), &d[i]);
	if (err) {
		free(d);
		return err;
	}
	*v = verdict;
	*devs = d;
	*n = count;
	return MDM_OK;
}

enum mdm_err entry_decode(const char *val, size_t len, enum entry_verdict *v, struct device **devs,
			  size_t *n)
{
	json_error_t jerr;
	json_t *root;
	enum mdm_err err;

	*devs = NULL;
	*n = 0;
	if (!val)
		return MDM_ERR_PARSE;
	if (len > ENTRY_MAX_LEN)
		return MDM_ERR_TOOBIG;
	/* Duplicate keys would make "strict" depend on which copy jansson kept. */
	root = json_loadb(val, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return MDM_ERR_PARSE;
	err = decode_root(root, v, devs, n);
	json_decref(root);
	return err;
}
