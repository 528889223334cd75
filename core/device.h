/*
 * device: what one source knows of one device, and the outcome of asking a source.
 * State attributes are tri-state: TRI_UNSET ("not reported") is omitted on the wire, never
 * sent as false. Strings are bounded arrays; an empty string means "not reported".
 */
#ifndef MDM_DEVICE_H
#define MDM_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "ident.h"

enum tri { TRI_UNSET = 0, TRI_FALSE, TRI_TRUE };
enum ownership { OWN_UNKNOWN = 0, OWN_CORPORATE, OWN_PERSONAL };
enum action_kind { ACTION_CORPORATE_WIPE = 0, ACTION_FULL_WIPE, ACTION_PIN_LOCK, ACTION_COUNT };

#define DEVICE_MACS_MAX 5
#define DEVICE_TEXT_MAX 256 /* failure reason, remediation */
#define DEVICE_FACT_MAX 64  /* manufacturer, model, OS version ... */

struct device {
	/* identity */
	char source[64]; /* adapter name */
	char vendor_id[GUID_MAX + 1];
	char macs[DEVICE_MACS_MAX][MAC_STR_LEN + 1];
	unsigned nmacs;
	bool mac_local; /* the first MAC is locally administered (randomised) */
	char guid[GUID_MAX + 1];
	char udid[65];
	char imei[17];
	char meid[19];
	char serial[65];
	char hostname[254];
	char username[129];
	enum ownership ownership;
	/* state */
	enum tri registered;
	enum tri compliant;
	enum tri disk_encrypted;
	enum tri pin_lock;
	enum tri jail_broken;
	char failure_reason[DEVICE_TEXT_MAX];
	char remediation[DEVICE_TEXT_MAX];
	/* facts */
	char manufacturer[DEVICE_FACT_MAX];
	char model[DEVICE_FACT_MAX];
	char os_version[DEVICE_FACT_MAX];
	char phone_number[32];
	int64_t last_checkin_ms; /* 0: not reported */
	/* bookkeeping */
	int64_t fetched_at_ms;
};

enum outcome_kind {
	OUTCOME_FOUND = 0,	/* devs/ndevs hold one record or more */
	OUTCOME_NOT_ENROLLED,	/* the source knows no such device */
	OUTCOME_NOT_APPLICABLE, /* the source cannot answer this criterion, or it is out of scope */
	OUTCOME_FAILED,		/* the source could not be asked; fail and why say how */
};

enum fail_kind {
	FAIL_NONE = 0,
	FAIL_UNREACHABLE,
	FAIL_TIMEOUT,
	FAIL_AUTH,
	FAIL_TLS,
	FAIL_PROTOCOL,
	FAIL_THROTTLED,
	FAIL_INTERNAL,
};

struct outcome {
	enum outcome_kind kind;
	enum fail_kind fail;
	char why[256];
	struct device *devs; /* heap array, owned by the outcome */
	size_t ndevs;
	size_t cap;
};

/* device_has_mac: whether mac (12 upper-case hex) is one of d's MACs. */
bool device_has_mac(const struct device *d, const char *mac);
/* device_add_mac: adds a normalised MAC unless present; MDM_ERR_TOOBIG past DEVICE_MACS_MAX. */
enum mdm_err device_add_mac(struct device *d, const char *mac);
/* device_matches: whether d carries identifier id (case rules as in ident.h). */
bool device_matches(const struct device *d, const struct ident *id);

/* outcome_init: an empty OUTCOME_NOT_ENROLLED outcome. */
void outcome_init(struct outcome *oc);
/* outcome_clear: frees the records; the outcome is empty again (as after outcome_init). */
void outcome_clear(struct outcome *oc);
/* outcome_add: copies d into oc and makes oc OUTCOME_FOUND. */
enum mdm_err outcome_add(struct outcome *oc, const struct device *d);
/* outcome_set: sets the kind (and for OUTCOME_FAILED the fail kind and a message). */
void outcome_set(struct outcome *oc, enum outcome_kind kind, enum fail_kind fail, const char *why);
/* outcome_move: moves src into dst (dst is cleared first); src is left empty. */
void outcome_move(struct outcome *dst, struct outcome *src);

const char *outcome_kind_name(enum outcome_kind k);
const char *fail_kind_name(enum fail_kind k);
const char *action_kind_name(enum action_kind k); /* "corporate_wipe", "full_wipe", "pin_lock" */
enum mdm_err action_kind_parse(const char *s, enum action_kind *out);
const char *ownership_name(enum ownership o); /* "corporate", "personal", "unknown" */

#endif
