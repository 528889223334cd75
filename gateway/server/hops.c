/* hops: see hops.h. */
#include "hops.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/buf.h"
#include "../../core/clock.h"
#include "../../core/log.h"

struct down {
	char id[HOPS_ID_MAX + 1];
	unsigned hops;	 /* the Hops it came with */
	int64_t seen_ms; /* clock_mono_ms; 0: free slot */
};

struct hops {
	char own[HOPS_ID_MAX + 1];
	unsigned max_hops;
	atomic_ulong refused;
	pthread_mutex_t mu;
	struct down down[HOPS_MAX_DOWNSTREAM];
};

struct hops *hops_create(const char *own_id, unsigned max_hops)
{
	struct hops *h;

	if (!own_id || !own_id[0] || strlen(own_id) > HOPS_ID_MAX || max_hops == 0)
		return NULL;
	h = calloc(1, sizeof(*h));
	if (!h || pthread_mutex_init(&h->mu, NULL) != 0) {
		free(h);
		return NULL;
	}
	str_copy(h->own, sizeof(h->own), own_id);
	h->max_hops = max_hops;
	atomic_init(&h->refused, 0);
	return h;
}

void hops_destroy(struct hops *h)
{
	if (!h)
		return;
	pthread_mutex_destroy(&h->mu);
	free(h);
}

static bool live(const struct down *d, int64_t now)
{
	return d->seen_ms && now - d->seen_ms < HOPS_TTL_MS;
}

/* remember: one downstream id (under mu); a full table gives up its oldest entry. */
static void remember(struct hops *h, const char *id, size_t len, unsigned n, int64_t now)
{
	struct down *slot = NULL, *oldest = &h->down[0];

	for (size_t i = 0; i < HOPS_MAX_DOWNSTREAM; i++) {
		struct down *d = &h->down[i];

		if (d->seen_ms && strlen(d->id) == len && memcmp(d->id, id, len) == 0) {
			slot = d;
			break;
		}
		if (!slot && !live(d, now))
			slot = d;
		if (d->seen_ms < oldest->seen_ms)
			oldest = d;
	}
	if (!slot)
		slot = oldest;
	if (!(slot->seen_ms && strlen(slot->id) == len && memcmp(slot->id, id, len) == 0)) {
		str_copyn(slot->id, sizeof(slot->id), id, len);
		slot->hops = 0;
	}
	if (!live(slot, now) || n > slot->hops)
		slot->hops = n;
	slot->seen_ms = now;
}

/* next_id: the next comma-separated id of *p, surrounding blanks trimmed. */
static bool next_id(const char **p, const char **id, size_t *len)
{
	const char *s = *p, *e;

	while (*s == ',' || *s == ' ' || *s == '\t')
		s++;
	if (!*s)
		return false;
	e = s + strcspn(s, ",");
	*p = e;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	*id = s;
	*len = (size_t)(e - s);
	return true;
}

static unsigned parse_count(const char *count)
{
	unsigned long v;
	char *end;

	if (!count)
		return 0;
	while (*count == ' ')
		count++;
	if (*count < '0' || *count > '9')
		return 0;
	v = strtoul(count, &end, 10);
	while (*end == ' ')
		end++;
	if (*end)
		return 0;
	return v > 1000 ? 1000 : (unsigned)v;
}

enum mdm_err hops_check(struct hops *h, const char *via, const char *count, char *why, size_t whysz)
{
	unsigned n = parse_count(count);
	const char *p = via ? via : "", *id;
	size_t len;
	int64_t now = clock_mono_ms();

	while (next_id(&p, &id, &len)) {
		if (len == strlen(h->own) && memcmp(id, h->own, len) == 0) {
			atomic_fetch_add(&h->refused, 1);
			err_why(
			    why, whysz,
			    "loop: this gateway (%s) is already in %s: %.160s: the request came "
			    "back through its own upstream",
			    h->own, HOPS_VIA_HEADER, via);
			log_warn("hops: refused a request: %s", why);
			return MDM_ERR_FORBIDDEN;
		}
	}
	if (n >= h->max_hops) {
		atomic_fetch_add(&h->refused, 1);
		err_why(why, whysz, "too many hops: %s %u reaches max_hops %u (via %.160s)",
			HOPS_COUNT_HEADER, n, h->max_hops, via && via[0] ? via : "-");
		log_warn("hops: refused a request: %s", why);
		return MDM_ERR_FORBIDDEN;
	}
	p = via ? via : "";
	pthread_mutex_lock(&h->mu);
	while (next_id(&p, &id, &len))
		if (len > 0 && len <= HOPS_ID_MAX)
			remember(h, id, len, n, now);
	pthread_mutex_unlock(&h->mu);
	return MDM_OK;
}

void hops_provide(void *arg, char *via, size_t viasz, unsigned *n)
{
	struct hops *h = arg;
	int64_t now = clock_mono_ms();
	unsigned most = 0;
	size_t len;

	if (!viasz)
		return;
	len = (size_t)snprintf(via, viasz, "%s", h->own);
	pthread_mutex_lock(&h->mu);
	for (size_t i = 0; i < HOPS_MAX_DOWNSTREAM; i++) {
		const struct down *d = &h->down[i];
		size_t dl;

		if (!live(d, now))
			continue;
		if (d->hops > most)
			most = d->hops;
		dl = strlen(d->id);
		if (len + 1 + dl < viasz) {
			via[len++] = ',';
			memcpy(via + len, d->id, dl + 1);
			len += dl;
		}
	}
	pthread_mutex_unlock(&h->mu);
	*n = most + 1;
}

uint64_t hops_refused(struct hops *h)
{
	return h ? atomic_load(&h->refused) : 0;
}
