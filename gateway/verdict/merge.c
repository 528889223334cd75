#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../core/buf.h"
#include "merge.h"

static bool same_text(const char *a, const char *b)
{
	return *a && *b && strcasecmp(a, b) == 0;
}

void merge_ids_of(const struct device *d, struct merge_ids *out)
{
	out->nmacs = d->nmacs < DEVICE_MACS_MAX ? d->nmacs : DEVICE_MACS_MAX;
	for (unsigned i = 0; i < out->nmacs; i++)
		out->macs[i] = d->macs[i];
	out->guid = d->guid;
	out->udid = d->udid;
	out->imei = d->imei;
	out->meid = d->meid;
	out->serial = d->serial;
}

static bool has_mac(const struct merge_ids *x, const char *mac)
{
	for (unsigned i = 0; i < x->nmacs; i++)
		if (strncmp(x->macs[i], mac, MAC_STR_LEN) == 0)
			return true;
	return false;
}

bool merge_same_ids(const struct merge_ids *a, const struct merge_ids *b)
{
	for (unsigned i = 0; i < a->nmacs; i++)
		if (has_mac(b, a->macs[i]))
			return true;
	return (*a->guid && strcmp(a->guid, b->guid) == 0) || same_text(a->udid, b->udid) ||
	       same_text(a->imei, b->imei) || same_text(a->meid, b->meid) ||
	       same_text(a->serial, b->serial);
}

bool merge_same_device(const struct device *a, const struct device *b)
{
	struct merge_ids x, y;

	merge_ids_of(a, &x);
	merge_ids_of(b, &y);
	return merge_same_ids(&x, &y);
}

/* --- the tri-states -------------------------------------------------------------------------- */

static void see(struct merge_seen *s, enum tri v)
{
	if (v == TRI_TRUE)
		s->t = true;
	else if (v == TRI_FALSE)
		s->f = true;
}

/* all: true only if every reporting record says true; any: true if one does. */
static enum tri seen_result(const struct merge_seen *s, bool all)
{
	if (!s->t && !s->f)
		return TRI_UNSET;
	if (all)
		return s->f ? TRI_FALSE : TRI_TRUE;
	return s->t ? TRI_TRUE : TRI_FALSE;
}

void merge_tally_add(struct merge_tally *t, const struct merge_tris *rec)
{
	if (rec->compliant == TRI_TRUE)
		t->yes++;
	else if (rec->compliant == TRI_FALSE)
		t->no++;
	else
		t->unset++;
	if (rec->registered != TRI_FALSE)
		t->registered = true;
	see(&t->encrypted, rec->disk_encrypted);
	see(&t->pin, rec->pin_lock);
	see(&t->jail, rec->jail_broken);
}

/* Compliance: any record compliant, or with compliant_requires_all every one (unset is not). */
static enum tri compliance_of(const struct merge_policy *p, const struct merge_tally *t)
{
	if (!p->compliant_requires_all)
		return t->yes ? TRI_TRUE : t->no ? TRI_FALSE : TRI_UNSET;
	if (t->no || (t->yes && t->unset))
		return TRI_FALSE;
	return t->yes ? TRI_TRUE : TRI_UNSET;
}

void merge_tally_result(const struct merge_policy *p, const struct merge_tally *t,
			struct merge_tris *out)
{
	out->registered = t->registered ? TRI_TRUE : TRI_FALSE;
	out->compliant = compliance_of(p, t);
	out->disk_encrypted = seen_result(&t->encrypted, true);
	out->pin_lock = seen_result(&t->pin, true);
	out->jail_broken = seen_result(&t->jail, false);
}

/* --- whole records --------------------------------------------------------------------------- */

static void take_text(char *dst, size_t sz, const char *src)
{
	if (!*dst && *src)
		str_copyn(dst, sz, src, strnlen(src, sz - 1));
}

/* Appends "; part" to a bounded reason, cutting at the bound rather than failing. */
static void add_reason(char *dst, size_t sz, const char *source, const char *reason)
{
	size_t len = strlen(dst);

	snprintf(dst + len, sz - len, "%s%s: %s", len ? "; " : "", source,
		 *reason ? reason : "not compliant");
}

/* The failure reason and remediation that go with the merged compliance. */
static void merge_reasons(const struct merge_policy *p, const struct device *recs, size_t n,
			  const struct merge_tally *t, struct device *dst)
{
	dst->failure_reason[0] = '\0';
	dst->remediation[0] = '\0';
	if (n == 1) {
		/* One source: its own words, unprefixed. */
		str_copy(dst->failure_reason, sizeof(dst->failure_reason), recs[0].failure_reason);
		str_copy(dst->remediation, sizeof(dst->remediation), recs[0].remediation);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (recs[i].compliant != TRI_FALSE)
			continue;
		add_reason(dst->failure_reason, sizeof(dst->failure_reason), recs[i].source,
			   recs[i].failure_reason);
		take_text(dst->remediation, sizeof(dst->remediation), recs[i].remediation);
	}
	if (!p->compliant_requires_all) {
		if (t->yes)
			dst->failure_reason[0] = dst->remediation[0] = '\0';
		return;
	}
	if (t->no || !t->yes)
		return;
	for (size_t i = 0; i < n; i++)
		if (recs[i].compliant == TRI_UNSET)
			add_reason(dst->failure_reason, sizeof(dst->failure_reason), recs[i].source,
				   "reported no compliance state");
}

static void merge_facts(const struct device *r, struct device *dst)
{
	for (unsigned m = 0; m < r->nmacs; m++)
		device_add_mac(dst, r->macs[m]);
	take_text(dst->guid, sizeof(dst->guid), r->guid);
	take_text(dst->udid, sizeof(dst->udid), r->udid);
	take_text(dst->imei, sizeof(dst->imei), r->imei);
	take_text(dst->meid, sizeof(dst->meid), r->meid);
	take_text(dst->serial, sizeof(dst->serial), r->serial);
	take_text(dst->hostname, sizeof(dst->hostname), r->hostname);
	take_text(dst->username, sizeof(dst->username), r->username);
	take_text(dst->manufacturer, sizeof(dst->manufacturer), r->manufacturer);
	take_text(dst->model, sizeof(dst->model), r->model);
	take_text(dst->os_version, sizeof(dst->os_version), r->os_version);
	take_text(dst->phone_number, sizeof(dst->phone_number), r->phone_number);
	if (dst->ownership == OWN_UNKNOWN)
		dst->ownership = r->ownership;
	if (r->last_checkin_ms > dst->last_checkin_ms)
		dst->last_checkin_ms = r->last_checkin_ms;
	if (r->fetched_at_ms < dst->fetched_at_ms)
		dst->fetched_at_ms = r->fetched_at_ms;
}

void merge_devices(const struct merge_policy *p, const struct device *recs, size_t n,
		   struct device *dst)
{
	struct merge_tally t;
	struct merge_tris m;

	memset(&t, 0, sizeof(t));
	*dst = recs[0];
	for (size_t i = 1; i < n; i++)
		merge_facts(&recs[i], dst);
	for (size_t i = 0; i < n; i++) {
		struct merge_tris r = {recs[i].registered, recs[i].compliant,
				       recs[i].disk_encrypted, recs[i].pin_lock,
				       recs[i].jail_broken};

		merge_tally_add(&t, &r);
	}
	merge_tally_result(p, &t, &m);
	dst->registered = m.registered;
	dst->compliant = m.compliant;
	dst->disk_encrypted = m.disk_encrypted;
	dst->pin_lock = m.pin_lock;
	dst->jail_broken = m.jail_broken;
	merge_reasons(p, recs, n, &t, dst);
}

/* The smallest index of i's group; roots point at themselves. */
static size_t find_root(size_t *group, size_t i)
{
	while (group[i] != i) {
		group[i] = group[group[i]];
		i = group[i];
	}
	return i;
}

/* Groups all found records into devices (union by shared identifier) and merges each group. */
static enum mdm_err merge_groups(const struct merge_policy *p, const struct outcome *ocs, size_t n,
				 struct merge_result *out)
{
	size_t total = 0, k = 0, ngroups = 0;
	struct device *recs = NULL, *grp = NULL;
	size_t *group = NULL;
	enum mdm_err e = MDM_ERR_NOMEM;

	for (size_t i = 0; i < n; i++)
		if (ocs[i].kind == OUTCOME_FOUND)
			total += ocs[i].ndevs;
	recs = malloc(total * sizeof(*recs));
	grp = malloc(total * sizeof(*grp));
	group = malloc(total * sizeof(*group));
	out->devs = malloc(total * sizeof(*out->devs));
	if (!recs || !grp || !group || !out->devs)
		goto done;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; ocs[i].kind == OUTCOME_FOUND && j < ocs[i].ndevs; j++)
			recs[k++] = ocs[i].devs[j];
	/* Union-find: a record sharing an identifier with two earlier groups joins them. */
	for (size_t i = 0; i < total; i++) {
		group[i] = i;
		for (size_t j = 0; j < i; j++) {
			size_t ri, rj;

			if (!merge_same_device(&recs[j], &recs[i]))
				continue;
			ri = find_root(group, i);
			rj = find_root(group, j);
			if (ri != rj)
				group[ri > rj ? ri : rj] = ri < rj ? ri : rj;
		}
	}
	for (size_t i = 0; i < total; i++)
		group[i] = find_root(group, i);
	for (size_t g = 0; g < total; g++) {
		size_t m = 0;

		if (group[g] != g)
			continue;
		for (size_t i = g; i < total; i++)
			if (group[i] == g)
				grp[m++] = recs[i];
		merge_devices(p, grp, m, &out->devs[ngroups++]);
	}
	out->ndevs = ngroups;
	e = MDM_OK;
done:
	free(recs);
	free(grp);
	free(group);
	return e;
}

enum mdm_err merge_outcomes(const struct merge_policy *p, const struct outcome *ocs, size_t n,
			    struct merge_result *out)
{
	size_t found = 0, failed = 0;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < n; i++) {
		if (ocs[i].kind == OUTCOME_FOUND && ocs[i].ndevs > 0) {
			found++;
		} else if (ocs[i].kind == OUTCOME_FAILED) {
			failed++;
		}
	}
	if (!found) {
		out->verdict = failed ? MERGE_UNAVAILABLE : MERGE_NOT_ENROLLED;
		return MDM_OK;
	}
	if (failed && p->partial_is_unavailable) {
		out->verdict = MERGE_UNAVAILABLE;
		return MDM_OK;
	}
	out->partial = failed > 0;
	out->verdict = MERGE_FOUND;
	return merge_groups(p, ocs, n, out);
}

void merge_result_clear(struct merge_result *r)
{
	free(r->devs);
	memset(r, 0, sizeof(*r));
}
