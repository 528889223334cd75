#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "../core/buf.h"
#include "../core/clock.h"
#include "../core/log.h"
#include "inventory.h"

/* One slot of the identifier index: open addressing, duplicates allowed (a user's devices). */
struct slot {
	uint64_t hash; /* 0: empty */
	uint32_t dev;
};

struct inventory {
	struct adapter base;
	char path[1024];
	struct device *devs;
	size_t ndevs;
	struct slot *index;
	size_t index_cap; /* power of two */
	/* Actions change device state as an MDM would: lookups and listings read under it. */
	pthread_rwlock_t lock;
	struct inv_action *acts; /* per device, ndevs of them */
};

struct inv_action {
	unsigned count;
	enum action_kind last;
};

static void index_put(struct inventory *inv, enum ident_kind kind, const char *v, uint32_t dev)
{
	uint64_t h;
	size_t i;

	if (!*v)
		return;
	h = ident_hash(kind, v);
	for (i = h & (inv->index_cap - 1); inv->index[i].hash; i = (i + 1) & (inv->index_cap - 1))
		;
	inv->index[i].hash = h;
	inv->index[i].dev = dev;
}

static enum mdm_err index_build(struct inventory *inv)
{
	size_t keys = inv->ndevs * (DEVICE_MACS_MAX + 7);

	inv->index_cap = 16;
	while (inv->index_cap < keys * 2)
		inv->index_cap *= 2;
	inv->index = calloc(inv->index_cap, sizeof(*inv->index));
	if (!inv->index)
		return MDM_ERR_NOMEM;
	for (size_t d = 0; d < inv->ndevs; d++) {
		const struct device *dv = &inv->devs[d];
		uint32_t id = (uint32_t)d;

		for (unsigned m = 0; m < dv->nmacs; m++)
			index_put(inv, IDENT_MAC, dv->macs[m], id);
		index_put(inv, IDENT_GUID, dv->guid, id);
		index_put(inv, IDENT_UDID, dv->udid, id);
		index_put(inv, IDENT_IMEI, dv->imei, id);
		index_put(inv, IDENT_MEID, dv->meid, id);
		index_put(inv, IDENT_SERIAL, dv->serial, id);
		index_put(inv, IDENT_HOSTNAME, dv->hostname, id);
		index_put(inv, IDENT_USERNAME, dv->username, id);
	}
	return MDM_OK;
}

/* --- loading ------------------------------------------------------------------------------- */

struct loader {
	const char *path;
	size_t at; /* device index, for messages */
	char *why;
	size_t whysz;
};

static enum mdm_err load_fail(struct loader *l, const char *key, const char *msg)
{
	snprintf(l->why, l->whysz, "%s: devices[%zu].%s: %s", l->path, l->at, key, msg);
	return MDM_ERR_CONFIG;
}

static enum mdm_err get_string(struct loader *l, json_t *v, const char *key, char *dst, size_t sz)
{
	const char *s;

	if (!json_is_string(v))
		return load_fail(l, key, "must be a string");
	s = json_string_value(v);
	if (json_string_length(v) != strlen(s))
		return load_fail(l, key, "holds a NUL byte");
	if (str_copy(dst, sz, s) != MDM_OK)
		return load_fail(l, key, "is too long");
	return MDM_OK;
}

/* An identifier field, validated and normalised exactly as a query for it would be. */
static enum mdm_err get_ident(struct loader *l, json_t *v, const char *key, enum ident_kind kind,
			      char *dst, size_t sz)
{
	struct ident id;
	char why[160];

	if (!json_is_string(v))
		return load_fail(l, key, "must be a string");
	if (ident_parse(kind, json_string_value(v), json_string_length(v), &id, why, sizeof(why)) !=
	    MDM_OK)
		return load_fail(l, key, why);
	if (str_copy(dst, sz, id.value) != MDM_OK)
		return load_fail(l, key, "is too long");
	return MDM_OK;
}

static enum mdm_err get_tri(struct loader *l, json_t *v, const char *key, enum tri *dst)
{
	if (!json_is_boolean(v))
		return load_fail(l, key, "must be true or false");
	*dst = json_is_true(v) ? TRI_TRUE : TRI_FALSE;
	return MDM_OK;
}

static enum mdm_err get_macs(struct loader *l, json_t *v, struct device *d)
{
	size_t i;
	json_t *m;
	char why[160], key[32];

	if (!json_is_array(v))
		return load_fail(l, "macs", "must be an array of MAC addresses");
	if (json_array_size(v) > DEVICE_MACS_MAX)
		return load_fail(l, "macs", "holds more than 5 MAC addresses");
	json_array_foreach(v, i, m)
	{
		char mac[MAC_STR_LEN + 1];
		bool local;

		snprintf(key, sizeof(key), "macs[%zu]", i);
		if (!json_is_string(m))
			return load_fail(l, key, "must be a string");
		if (mac_parse(json_string_value(m), json_string_length(m), mac, &local, why,
			      sizeof(why)) != MDM_OK)
			return load_fail(l, key, why);
		if (i == 0)
			d->mac_local = local;
		device_add_mac(d, mac);
	}
	return MDM_OK;
}

static enum mdm_err get_ownership(struct loader *l, json_t *v, struct device *d)
{
	const char *s = json_string_value(v);

	if (s && strcmp(s, "corporate") == 0)
		d->ownership = OWN_CORPORATE;
	else if (s && strcmp(s, "personal") == 0)
		d->ownership = OWN_PERSONAL;
	else if (s && strcmp(s, "unknown") == 0)
		d->ownership = OWN_UNKNOWN;
	else
		return load_fail(l, "ownership",
				 "must be \"corporate\", \"personal\" or \"unknown\"");
	return MDM_OK;
}

static enum mdm_err get_checkin(struct loader *l, json_t *v, struct device *d)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return load_fail(l, "last_checkin", "must be milliseconds since the epoch");
	d->last_checkin_ms = (int64_t)json_integer_value(v);
	return MDM_OK;
}

#define STR_FIELD(k, f)                                                                            \
	{                                                                                          \
		k, 's', offsetof(struct device, f), sizeof(((struct device *)0)->f), 0             \
	}
#define ID_FIELD(k, f, kind)                                                                       \
	{                                                                                          \
		k, 'i', offsetof(struct device, f), sizeof(((struct device *)0)->f), kind          \
	}
#define TRI_FIELD(k, f)                                                                            \
	{                                                                                          \
		k, 't', offsetof(struct device, f), 0, 0                                           \
	}

static const struct field {
	const char *key;
	char type; /* s: string, i: identifier, t: tri-state */
	size_t off;
	size_t size;
	enum ident_kind kind;
} fields[] = {
    ID_FIELD("guid", guid, IDENT_GUID),
    ID_FIELD("udid", udid, IDENT_UDID),
    ID_FIELD("imei", imei, IDENT_IMEI),
    ID_FIELD("meid", meid, IDENT_MEID),
    ID_FIELD("serial", serial, IDENT_SERIAL),
    ID_FIELD("hostname", hostname, IDENT_HOSTNAME),
    ID_FIELD("username", username, IDENT_USERNAME),
    STR_FIELD("failure_reason", failure_reason),
    STR_FIELD("remediation", remediation),
    STR_FIELD("manufacturer", manufacturer),
    STR_FIELD("model", model),
    STR_FIELD("os_version", os_version),
    STR_FIELD("phone_number", phone_number),
    TRI_FIELD("registered", registered),
    TRI_FIELD("compliant", compliant),
    TRI_FIELD("disk_encrypted", disk_encrypted),
    TRI_FIELD("pin_lock", pin_lock),
    TRI_FIELD("jail_broken", jail_broken),
};

static enum mdm_err load_field(struct loader *l, const char *key, json_t *v, struct device *d)
{
	char *base = (char *)d;

	if (strcmp(key, "id") == 0)
		return get_string(l, v, key, d->vendor_id, sizeof(d->vendor_id));
	if (strcmp(key, "macs") == 0)
		return get_macs(l, v, d);
	if (strcmp(key, "ownership") == 0)
		return get_ownership(l, v, d);
	if (strcmp(key, "last_checkin") == 0)
		return get_checkin(l, v, d);
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		const struct field *f = &fields[i];

		if (strcmp(key, f->key) != 0)
			continue;
		if (f->type == 's')
			return get_string(l, v, key, base + f->off, f->size);
		if (f->type == 'i')
			return get_ident(l, v, key, f->kind, base + f->off, f->size);
		return get_tri(l, v, key, (enum tri *)(void *)(base + f->off));
	}
	return load_fail(l, key, "unknown key");
}

static enum mdm_err load_device(struct loader *l, json_t *obj, const char *source, struct device *d)
{
	const char *key;
	json_t *v;
	enum mdm_err e;

	memset(d, 0, sizeof(*d));
	if (!json_is_object(obj)) {
		snprintf(l->why, l->whysz, "%s: devices[%zu]: must be an object", l->path, l->at);
		return MDM_ERR_CONFIG;
	}
	json_object_foreach(obj, key, v)
	{
		e = load_field(l, key, v, d);
		if (e)
			return e;
	}
	if (!d->vendor_id[0])
		return load_fail(l, "id", "required");
	if (!d->nmacs && !d->guid[0] && !d->udid[0] && !d->imei[0] && !d->meid[0] &&
	    !d->serial[0] && !d->hostname[0])
		return load_fail(l, "macs", "a device needs at least one identifier");
	str_copy(d->source, sizeof(d->source), source);
	return MDM_OK;
}

static enum mdm_err load_file(struct inventory *inv, char *why, size_t whysz)
{
	struct loader l = {inv->path, 0, why, whysz};
	json_error_t jerr;
	json_t *root, *list, *v;
	struct stat st;
	enum mdm_err e = MDM_OK;
	size_t i;

	if (stat(inv->path, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(why, whysz, "%s: cannot read the inventory file", inv->path);
		return MDM_ERR_IO;
	}
	if ((uint64_t)st.st_size > INVENTORY_MAX_FILE) {
		snprintf(why, whysz, "%s: inventory file is larger than %u bytes", inv->path,
			 INVENTORY_MAX_FILE);
		return MDM_ERR_TOOBIG;
	}
	root = json_load_file(inv->path, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		snprintf(why, whysz, "%s: line %d column %d: %s", inv->path, jerr.line, jerr.column,
			 jerr.text);
		return MDM_ERR_PARSE;
	}
	list = json_object_get(root, "devices");
	if (!json_is_object(root) || json_object_size(root) != 1 || !json_is_array(list)) {
		snprintf(why, whysz, "%s: must be an object {\"devices\": [...]}", inv->path);
		e = MDM_ERR_CONFIG;
		goto out;
	}
	if (json_array_size(list) > INVENTORY_MAX_DEVICES) {
		snprintf(why, whysz, "%s: devices: more than %d devices", inv->path,
			 INVENTORY_MAX_DEVICES);
		e = MDM_ERR_TOOBIG;
		goto out;
	}
	inv->devs = calloc(json_array_size(list) ? json_array_size(list) : 1, sizeof(*inv->devs));
	if (!inv->devs) {
		e = MDM_ERR_NOMEM;
		goto out;
	}
	json_array_foreach(list, i, v)
	{
		l.at = i;
		e = load_device(&l, v, inv->base.name, &inv->devs[i]);
		if (e)
			goto out;
		inv->ndevs++;
	}
out:
	json_decref(root);
	return e;
}

/* --- the adapter vtable -------------------------------------------------------------------- */

static enum mdm_err inv_lookup(struct adapter *a, const struct ident *id, int64_t deadline_ms,
			       adapter_lookup_cb cb, void *arg)
{
	struct inventory *inv = a->priv;
	struct outcome oc;
	uint64_t h = ident_hash(id->kind, id->value);
	int64_t now = clock_wall_ms();
	enum mdm_err e = MDM_OK;
	size_t i;

	(void)deadline_ms;
	outcome_init(&oc);
	pthread_rwlock_rdlock(&inv->lock);
	for (i = h & (inv->index_cap - 1); inv->index[i].hash; i = (i + 1) & (inv->index_cap - 1)) {
		const struct device *d = &inv->devs[inv->index[i].dev];
		bool dup = false;

		if (inv->index[i].hash != h || !device_matches(d, id))
			continue;
		/* A device reached through two equal keys (same MAC twice) is listed once. */
		for (size_t k = 0; k < oc.ndevs && !dup; k++)
			dup = strcmp(oc.devs[k].vendor_id, d->vendor_id) == 0;
		if (dup)
			continue;
		e = outcome_add(&oc, d);
		if (e)
			break;
		oc.devs[oc.ndevs - 1].fetched_at_ms = now;
	}
	pthread_rwlock_unlock(&inv->lock);
	if (e) {
		outcome_clear(&oc);
		outcome_set(&oc, OUTCOME_FAILED, FAIL_INTERNAL, "out of memory");
	}
	cb(arg, &oc);
	return MDM_OK;
}

static enum mdm_err inv_list(struct adapter *a, const char *cursor, adapter_list_cb cb, void *arg)
{
	struct inventory *inv = a->priv;
	struct adapter_page page;
	unsigned long start = 0;
	char *end = NULL;
	int64_t now = clock_wall_ms();
	size_t i;

	if (cursor && *cursor) {
		start = strtoul(cursor, &end, 10);
		if (*end || start > inv->ndevs)
			return MDM_ERR_INVALID;
	}
	memset(&page, 0, sizeof(page));
	outcome_init(&page.oc);
	pthread_rwlock_rdlock(&inv->lock);
	for (i = start; i < inv->ndevs && i < start + INVENTORY_PAGE; i++) {
		if (outcome_add(&page.oc, &inv->devs[i]) != MDM_OK) {
			pthread_rwlock_unlock(&inv->lock);
			outcome_clear(&page.oc);
			return MDM_ERR_NOMEM;
		}
		page.oc.devs[page.oc.ndevs - 1].fetched_at_ms = now;
	}
	pthread_rwlock_unlock(&inv->lock);
	if (i < inv->ndevs)
		snprintf(page.next_cursor, sizeof(page.next_cursor), "%zu", i);
	cb(arg, &page);
	return MDM_OK;
}

/* The device whose vendor id is vendor_id, or -1. */
static long find_vendor_id(const struct inventory *inv, const char *vendor_id)
{
	for (size_t i = 0; i < inv->ndevs; i++)
		if (strcmp(inv->devs[i].vendor_id, vendor_id) == 0)
			return (long)i;
	return -1;
}

/*
 * An action changes what the inventory reports, as an MDM would: a PIN lock turns pin_lock on,
 * a wipe unenrols the device (registered false, compliance no longer reported).
 */
static enum mdm_err inv_action(struct adapter *a, const char *vendor_id, enum action_kind kind,
			       adapter_action_cb cb, void *arg)
{
	struct inventory *inv = a->priv;
	struct action_result res;
	struct device *d;
	unsigned count = 0;
	long at;

	memset(&res, 0, sizeof(res));
	pthread_rwlock_wrlock(&inv->lock);
	at = find_vendor_id(inv, vendor_id);
	if (at >= 0) {
		d = &inv->devs[at];
		if (kind == ACTION_PIN_LOCK) {
			d->pin_lock = TRI_TRUE;
		} else {
			d->registered = TRI_FALSE;
			d->compliant = TRI_UNSET;
			d->failure_reason[0] = '\0';
			d->remediation[0] = '\0';
		}
		inv->acts[at].last = kind;
		count = ++inv->acts[at].count;
		res.accepted = true;
	} else {
		snprintf(res.reason, sizeof(res.reason), "no device with id %s in this inventory",
			 vendor_id);
	}
	pthread_rwlock_unlock(&inv->lock);
	if (at >= 0)
		log_info("inventory %s: action %s on %s accepted (actions on it: %u)", a->name,
			 action_kind_name(kind), vendor_id, count);
	cb(arg, &res);
	return MDM_OK;
}

enum mdm_err inventory_action_count(struct adapter *a, const char *vendor_id, unsigned *count,
				    enum action_kind *last)
{
	struct inventory *inv = a->priv;
	enum mdm_err e = MDM_ERR_NOTFOUND;
	long at;

	pthread_rwlock_rdlock(&inv->lock);
	at = find_vendor_id(inv, vendor_id);
	if (at >= 0) {
		*count = inv->acts[at].count;
		if (last)
			*last = inv->acts[at].last;
		e = MDM_OK;
	}
	pthread_rwlock_unlock(&inv->lock);
	return e;
}

static enum mdm_err inv_test(struct adapter *a, adapter_test_cb cb, void *arg)
{
	struct inventory *inv = a->priv;
	struct adapter_test t;

	t.ok = true;
	snprintf(t.message, sizeof(t.message), "inventory %s: %zu devices loaded from %s", a->name,
		 inv->ndevs, inv->path);
	cb(arg, &t);
	return MDM_OK;
}

static void inv_destroy(struct adapter *a)
{
	struct inventory *inv = a->priv;

	free(inv->devs);
	free(inv->index);
	free(inv->acts);
	pthread_rwlock_destroy(&inv->lock);
	free(inv);
}

static const struct adapter_ops inventory_ops = {
    .type = "inventory",
    .lookup = inv_lookup,
    .list = inv_list,
    .action = inv_action,
    .test_connection = inv_test,
    .destroy = inv_destroy,
};

struct adapter *inventory_create(const char *name, const char *path, char *why, size_t whysz)
{
	struct inventory *inv = calloc(1, sizeof(*inv));
	enum mdm_err e;

	if (!inv) {
		snprintf(why, whysz, "out of memory");
		return NULL;
	}
	inv->base.ops = &inventory_ops;
	inv->base.priv = inv;
	pthread_rwlock_init(&inv->lock, NULL);
	if (str_copy(inv->base.name, sizeof(inv->base.name), name) != MDM_OK ||
	    str_copy(inv->path, sizeof(inv->path), path) != MDM_OK) {
		snprintf(why, whysz, "inventory: name or path too long");
		free(inv);
		return NULL;
	}
	e = load_file(inv, why, whysz);
	if (!e)
		e = index_build(inv);
	if (!e && !(inv->acts = calloc(inv->ndevs ? inv->ndevs : 1, sizeof(*inv->acts))))
		e = MDM_ERR_NOMEM;
	if (e) {
		if (e == MDM_ERR_NOMEM)
			snprintf(why, whysz, "%s: out of memory", path);
		inv_destroy(&inv->base);
		return NULL;
	}
	log_info("inventory %s: %zu devices from %s", name, inv->ndevs, path);
	return &inv->base;
}

size_t inventory_count(const struct adapter *a)
{
	return ((const struct inventory *)a->priv)->ndevs;
}
