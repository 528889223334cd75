/*
 * merge: one verdict from the outcomes of every adapter asked about one identifier.
 * - found: some applicable adapter found the device. Records from different adapters that
 *   share a MAC, GUID, UDID, IMEI, MEID or serial are the same device and merge into one.
 * - not enrolled: every applicable adapter said not enrolled (also when none is applicable).
 * - unavailable: no applicable adapter gave an answer: the NAC must see 503, never a verdict.
 * When one adapter found the device while another applicable one failed, the answer is
 * "found, partial" (or unavailable if the policy says so).
 * Compliance of a merged device: with compliant_requires_all, compliant only if every record
 * says compliant (a record that reports no compliance does not count as compliant); otherwise
 * compliant if any record says so. Registered if any record does not say unregistered.
 * Encryption and PIN lock are true only if every record reporting them says true; jail-broken
 * if any record says so.
 */
#ifndef MDM_MERGE_H
#define MDM_MERGE_H

#include <stdbool.h>
#include <stddef.h>

#include "../../core/device.h"

struct merge_policy {
	bool compliant_requires_all;
	bool partial_is_unavailable;
};

enum merge_verdict { MERGE_FOUND = 0, MERGE_NOT_ENROLLED, MERGE_UNAVAILABLE };

struct merge_result {
	enum merge_verdict verdict;
	bool partial;	     /* found, while another applicable adapter failed */
	struct device *devs; /* merged devices (malloc'd), for MERGE_FOUND */
	size_t ndevs;
	/* set by lookup: until when every source's part of this answer was fresh in the cache
	 * (wall ms); 0 when some part was stale or came from a source just now */
	int64_t fresh_until;
};

/* merge_outcomes: the verdict over n outcomes (one per adapter). MDM_ERR_NOMEM only. */
enum mdm_err merge_outcomes(const struct merge_policy *p, const struct outcome *ocs, size_t n,
			    struct merge_result *out);

/* merge_devices: merges records of one device into dst (first record wins for facts). */
void merge_devices(const struct merge_policy *p, const struct device *recs, size_t n,
		   struct device *dst);

/* merge_same_device: whether two records describe the same device (a shared identifier). */
bool merge_same_device(const struct device *a, const struct device *b);

/*
 * The rule's lower level, for records held in another form than struct device (the snapshot's
 * packed rows): merge_devices and merge_same_device are built on it, so there is one rule.
 */

/* The tri-states of one record, or of a merged device. */
struct merge_tris {
	enum tri registered, compliant, disk_encrypted, pin_lock, jail_broken;
};

/* What was seen of one tri-state across records. */
struct merge_seen {
	bool t, f;
};

/* A tally of the tri-states of a device's records; zero it before the first merge_tally_add. */
struct merge_tally {
	size_t yes, no, unset; /* records saying compliant true / false / nothing */
	bool registered;       /* some record does not say unregistered */
	struct merge_seen encrypted, pin, jail;
};

/* merge_tally_add: counts one more record of the device. */
void merge_tally_add(struct merge_tally *t, const struct merge_tris *rec);
/* merge_tally_result: the merged tri-states of the records counted (at least one). */
void merge_tally_result(const struct merge_policy *p, const struct merge_tally *t,
			struct merge_tris *out);

/* The identifiers the same-device rule compares, as views ("" when the record has none). */
struct merge_ids {
	const char *macs[DEVICE_MACS_MAX]; /* 12 upper-case hex each */
	unsigned nmacs;
	const char *guid, *udid, *imei, *meid, *serial;
};

/* merge_ids_of: the views of d's identifiers (valid while d is). */
void merge_ids_of(const struct device *d, struct merge_ids *out);
/* merge_same_ids: whether two records share an identifier: merge_same_device's rule. */
bool merge_same_ids(const struct merge_ids *a, const struct merge_ids *b);

void merge_result_clear(struct merge_result *r);

#endif
