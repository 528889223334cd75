/*
 * snapshot: every device of every adapter, merged, held for bulk answers (no criterion, and the
 * NAC's compliance poll) so they never fan out to the vendors at request time. A snapshot is
 * immutable once built; paging cursors are offsets into its lists. The reconciler will rebuild
 * and swap it every polling interval; today it is built at start-up.
 */
#ifndef MDM_SNAPSHOT_H
#define MDM_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../adapters/adapter.h"
#include "merge.h"

enum snapshot_list { SNAP_ALL = 0, SNAP_COMPLIANT, SNAP_NONCOMPLIANT, SNAP_LISTS };

struct snapshot {
	struct device *devs; /* merged devices, sorted by first MAC, then GUID, then vendor id */
	size_t ndevs;
	uint32_t *list[SNAP_LISTS]; /* indexes into devs */
	size_t nlist[SNAP_LISTS];
	bool complete;	  /* every adapter listed fully */
	char why[256];	  /* when not complete: which adapter failed and how */
	int64_t built_at; /* wall ms */
};

/*
 * snapshot_build: lists every adapter to the end (each page by deadline_ms), merges records
 * of the same device across adapters, and sorts. An adapter that fails leaves the snapshot
 * incomplete (complete=false, why set) but still built. MDM_ERR_NOMEM only.
 */
enum mdm_err snapshot_build(struct adapter *const *ads, size_t nads, const struct merge_policy *p,
			    int64_t deadline_ms, struct snapshot **out);
void snapshot_free(struct snapshot *s);

#endif
