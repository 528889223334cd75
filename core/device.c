#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "device.h"

bool device_has_mac(const struct device *d, const char *mac)
{
	for (unsigned i = 0; i < d->nmacs; i++)
		if (memcmp(d->macs[i], mac, MAC_STR_LEN) == 0)
			return true;
	return false;
}

enum mdm_err device_add_mac(struct device *d, const char *mac)
{
	if (device_has_mac(d, mac))
		return MDM_OK;
	if (d->nmacs >= DEVICE_MACS_MAX)
		return MDM_ERR_TOOBIG;
	return str_copy(d->macs[d->nmacs++], sizeof(d->macs[0]), mac);
}

bool device_matches(const struct device *d, const struct ident *id)
{
	switch (id->kind) {
	case IDENT_MAC:
		return device_has_mac(d, id->value);
	case IDENT_GUID:
		return strcmp(d->guid, id->value) == 0;
	case IDENT_UDID:
		return strcasecmp(d->udid, id->value) == 0;
	case IDENT_IMEI:
		return strcmp(d->imei, id->value) == 0;
	case IDENT_MEID:
		return strcasecmp(d->meid, id->value) == 0;
	case IDENT_SERIAL:
		return strcasecmp(d->serial, id->value) == 0;
	case IDENT_HOSTNAME:
		return strcasecmp(d->hostname, id->value) == 0;
	case IDENT_USERNAME:
		return strcasecmp(d->username, id->value) == 0;
	default:
		return false;
	}
}

void outcome_init(struct outcome *oc)
{
	memset(oc, 0, sizeof(*oc));
	oc->kind = OUTCOME_NOT_ENROLLED;
}

void outcome_clear(struct outcome *oc)
{
	free(oc->devs);
	outcome_init(oc);
}

enum mdm_err outcome_add(struct outcome *oc, const struct device *d)
{
	if (oc->ndevs == oc->cap) {
		size_t ncap = oc->cap ? oc->cap * 2 : 1;
		struct device *p = realloc(oc->devs, ncap * sizeof(*p));

		if (!p)
			return MDM_ERR_NOMEM;
		oc->devs = p;
		oc->cap = ncap;
	}
	oc->devs[oc->ndevs++] = *d;
	oc->kind = OUTCOME_FOUND;
	oc->fail = FAIL_NONE;
	return MDM_OK;
}

void outcome_set(struct outcome *oc, enum outcome_kind kind, enum fail_kind fail, const char *why)
{
	oc->kind = kind;
	oc->fail = kind == OUTCOME_FAILED ? fail : FAIL_NONE;
	if (why)
		str_copyn(oc->why, sizeof(oc->why), why, strnlen(why, sizeof(oc->why) - 1));
	else
		oc->why[0] = '\0';
}

void outcome_move(struct outcome *dst, struct outcome *src)
{
	free(dst->devs);
	*dst = *src;
	outcome_init(src);
}

const char *outcome_kind_name(enum outcome_kind k)
{
	switch (k) {
	case OUTCOME_FOUND:
		return "found";
	case OUTCOME_NOT_ENROLLED:
		return "not_enrolled";
	case OUTCOME_NOT_APPLICABLE:
		return "not_applicable";
	case OUTCOME_FAILED:
		return "failed";
	}
	return "unknown";
}

const char *fail_kind_name(enum fail_kind k)
{
	switch (k) {
	case FAIL_NONE:
		return "none";
	case FAIL_UNREACHABLE:
		return "unreachable";
	case FAIL_TIMEOUT:
		return "timeout";
	case FAIL_AUTH:
		return "auth";
	case FAIL_TLS:
		return "tls";
	case FAIL_PROTOCOL:
		return "protocol";
	case FAIL_THROTTLED:
		return "throttled";
	case FAIL_INTERNAL:
		return "internal";
	}
	return "unknown";
}

static const char *const action_names[ACTION_COUNT] = {"corporate_wipe", "full_wipe", "pin_lock"};

const char *action_kind_name(enum action_kind k)
{
	if ((unsigned)k >= ACTION_COUNT)
		return "unknown";
	return action_names[k];
}

enum mdm_err action_kind_parse(const char *s, enum action_kind *out)
{
	for (int i = 0; i < ACTION_COUNT; i++) {
		if (strcmp(s, action_names[i]) == 0) {
			*out = (enum action_kind)i;
			return MDM_OK;
		}
	}
	return MDM_ERR_INVALID;
}

const char *ownership_name(enum ownership o)
{
	switch (o) {
	case OWN_CORPORATE:
		return "corporate";
	case OWN_PERSONAL:
		return "personal";
	case OWN_UNKNOWN:
		break;
	}
	return "unknown";
}
