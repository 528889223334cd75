#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/buf.h"
#include "../../core/clock.h"
#include "../../core/ident.h"
#include "../../core/jout.h"
#include "../../core/log.h"
#include "sessions.h"

#define NIL UINT32_MAX
#define FIRST_NODES 64
#define FULL_LOG_EVERY_MS 60000 /* a flood past the bound logs once a minute, not per packet */

/* A session and the index of the next one in its bucket (or in the free list). */
struct node {
	struct coa_session s;
	uint32_t next;
};

struct sessions {
	pthread_mutex_t mu;
	struct node *nodes; /* grows by doubling up to max */
	uint32_t nnodes;    /* nodes in use or free: nodes[0..nnodes) were handed out once */
	uint32_t cap;
	uint32_t free_head;
	uint32_t *buckets;
	uint32_t mask;
	size_t max;
	int64_t ttl_ms;
	atomic_size_t count;
	atomic_ulong refused;
	int64_t full_logged_ms;
};

struct sessions *sessions_create(size_t max_sessions, int64_t ttl_ms)
{
	struct sessions *t;
	size_t nb = 16;

	if (max_sessions == 0 || max_sessions >= NIL || ttl_ms <= 0)
		return NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	/* About four sessions per bucket when full: short chains, a small fixed array. */
	while (nb < max_sessions / 4 && nb < (1u << 24))
		nb <<= 1;
	t->buckets = malloc(nb * sizeof(*t->buckets));
	if (!t->buckets || pthread_mutex_init(&t->mu, NULL) != 0) {
		free(t->buckets);
		free(t);
		return NULL;
	}
	memset(t->buckets, 0xff, nb * sizeof(*t->buckets));
	t->mask = (uint32_t)(nb - 1);
	t->free_head = NIL;
	t->max = max_sessions;
	t->ttl_ms = ttl_ms;
	t->full_logged_ms = -FULL_LOG_EVERY_MS;
	return t;
}

void sessions_destroy(struct sessions *t)
{
	if (!t)
		return;
	pthread_mutex_destroy(&t->mu);
	free(t->nodes);
	free(t->buckets);
	free(t);
}

static uint32_t mac_bucket(const struct sessions *t, const char *mac)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < MAC_STR_LEN && mac[i]; i++)
		h = (h ^ (unsigned char)mac[i]) * 16777619u;
	return h & t->mask;
}

static bool mac_ok(const char *mac)
{
	size_t i;

	for (i = 0; mac[i]; i++)
		if (!((mac[i] >= '0' && mac[i] <= '9') || (mac[i] >= 'A' && mac[i] <= 'F')))
			return false;
	return i == MAC_STR_LEN;
}

static const char *nz(const char *s)
{
	return s ? s : "";
}

static bool same_session(const struct coa_session *a, const char *mac, const char *nas_ip,
			 const char *nas_id, const char *acct_id)
{
	return strcmp(a->mac, mac) == 0 && strcmp(a->nas_ip, nas_ip) == 0 &&
	       strcmp(a->nas_id, nas_id) == 0 && strcmp(a->acct_session_id, acct_id) == 0;
}

static bool stale(const struct sessions *t, const struct coa_session *s, int64_t now_ms)
{
	return now_ms - s->updated_ms > t->ttl_ms;
}

/* A node to fill, from the free list or the array's tail (grown when needed). Locked. */
static uint32_t node_take(struct sessions *t)
{
	uint32_t i = t->free_head;
	struct node *grown;
	size_t ncap;

	if (i != NIL) {
		t->free_head = t->nodes[i].next;
		return i;
	}
	if (t->nnodes == t->cap) {
		ncap = t->cap ? (size_t)t->cap * 2 : FIRST_NODES;
		if (ncap > t->max)
			ncap = t->max;
		grown = realloc(t->nodes, ncap * sizeof(*grown));
		if (!grown)
			return NIL;
		t->nodes = grown;
		t->cap = (uint32_t)ncap;
	}
	return t->nnodes++;
}

/* Unlinks the node at *link (a bucket head or a next field) into the free list. Locked. */
static void node_drop(struct sessions *t, uint32_t *link)
{
	uint32_t i = *link;

	*link = t->nodes[i].next;
	memset(&t->nodes[i].s, 0, sizeof(t->nodes[i].s));
	t->nodes[i].next = t->free_head;
	t->free_head = i;
	atomic_fetch_sub(&t->count, 1);
}

static size_t expire_locked(struct sessions *t, int64_t now_ms);

static void log_full(struct sessions *t, const char *mac)
{
	int64_t now = clock_mono_ms();

	atomic_fetch_add(&t->refused, 1);
	if (now - t->full_logged_ms < FULL_LOG_EVERY_MS)
		return;
	t->full_logged_ms = now;
	log_warn("sessions: table full (%zu sessions): new session of %s refused (further "
		 "refusals this minute are only counted)",
		 t->max, mac);
}

enum mdm_err sessions_put(struct sessions *t, const struct coa_session *s)
{
	struct coa_session copy = *s;
	uint32_t b, i;
	enum mdm_err rc = MDM_OK;

	if (!mac_ok(s->mac))
		return MDM_ERR_INVALID;
	if (!copy.updated_ms)
		copy.updated_ms = clock_wall_ms();
	b = mac_bucket(t, s->mac);
	pthread_mutex_lock(&t->mu);
	for (i = t->buckets[b]; i != NIL; i = t->nodes[i].next)
		if (same_session(&t->nodes[i].s, s->mac, s->nas_ip, s->nas_id, s->acct_session_id))
			break;
	if (i != NIL) {
		t->nodes[i].s = copy;
		goto out;
	}
	if (atomic_load(&t->count) >= t->max && expire_locked(t, clock_wall_ms()) == 0) {
		log_full(t, s->mac);
		rc = MDM_ERR_TOOBIG;
		goto out;
	}
	i = node_take(t);
	if (i == NIL) {
		rc = MDM_ERR_NOMEM;
		goto out;
	}
	t->nodes[i].s = copy;
	t->nodes[i].next = t->buckets[b];
	t->buckets[b] = i;
	atomic_fetch_add(&t->count, 1);
out:
	pthread_mutex_unlock(&t->mu);
	return rc;
}

enum mdm_err sessions_remove(struct sessions *t, const char *mac, const char *nas_ip,
			     const char *nas_id, const char *acct_session_id)
{
	enum mdm_err rc = MDM_ERR_NOTFOUND;
	uint32_t *link;

	if (!mac_ok(mac))
		return MDM_ERR_NOTFOUND;
	pthread_mutex_lock(&t->mu);
	for (link = &t->buckets[mac_bucket(t, mac)]; *link != NIL; link = &t->nodes[*link].next) {
		if (same_session(&t->nodes[*link].s, mac, nz(nas_ip), nz(nas_id),
				 nz(acct_session_id))) {
			node_drop(t, link);
			rc = MDM_OK;
			break;
		}
	}
	pthread_mutex_unlock(&t->mu);
	return rc;
}

size_t sessions_remove_mac(struct sessions *t, const char *mac)
{
	size_t n = 0;
	uint32_t *link;

	if (!mac_ok(mac))
		return 0;
	pthread_mutex_lock(&t->mu);
	link = &t->buckets[mac_bucket(t, mac)];
	while (*link != NIL) {
		if (strcmp(t->nodes[*link].s.mac, mac) == 0) {
			node_drop(t, link);
			n++;
		} else {
			link = &t->nodes[*link].next;
		}
	}
	pthread_mutex_unlock(&t->mu);
	return n;
}

/* What a whole-table sweep drops. */
struct sweep {
	const char *nas_ip, *nas_id; /* clear_nas; NULL when expiring */
	int64_t now_ms;
};

static bool sweep_hit(const struct sessions *t, const struct coa_session *s, const struct sweep *w)
{
	if (!w->nas_ip && !w->nas_id)
		return stale(t, s, w->now_ms);
	return (!*w->nas_ip || strcmp(s->nas_ip, w->nas_ip) == 0) &&
	       (!*w->nas_id || strcmp(s->nas_id, w->nas_id) == 0);
}

static size_t sweep_locked(struct sessions *t, const struct sweep *w)
{
	size_t n = 0;

	for (uint32_t b = 0; b <= t->mask; b++) {
		uint32_t *link = &t->buckets[b];

		while (*link != NIL) {
			if (sweep_hit(t, &t->nodes[*link].s, w)) {
				node_drop(t, link);
				n++;
			} else {
				link = &t->nodes[*link].next;
			}
		}
	}
	return n;
}

static size_t sweep(struct sessions *t, const struct sweep *w)
{
	size_t n;

	pthread_mutex_lock(&t->mu);
	n = sweep_locked(t, w);
	pthread_mutex_unlock(&t->mu);
	return n;
}

/*
 * A full table drops its stale sessions before refusing a new one: without the accounting
 * listener (whose thread sweeps) nothing else would. Locked.
 */
static size_t expire_locked(struct sessions *t, int64_t now_ms)
{
	struct sweep w = {NULL, NULL, now_ms};

	return sweep_locked(t, &w);
}

size_t sessions_clear_nas(struct sessions *t, const char *nas_ip, const char *nas_id)
{
	struct sweep w = {nz(nas_ip), nz(nas_id), 0};

	if (!*w.nas_ip && !*w.nas_id)
		return 0;
	return sweep(t, &w);
}

size_t sessions_expire(struct sessions *t, int64_t now_ms)
{
	struct sweep w = {NULL, NULL, now_ms};

	return sweep(t, &w);
}

size_t sessions_find(struct sessions *t, const char *mac, struct coa_session *out, size_t max)
{
	char norm[MAC_STR_LEN + 1];
	int64_t now = clock_wall_ms();
	size_t n = 0;
	bool local;

	if (!t || !mac || !max || mac_parse(mac, strlen(mac), norm, &local, NULL, 0) != MDM_OK)
		return 0;
	pthread_mutex_lock(&t->mu);
	for (uint32_t i = t->buckets[mac_bucket(t, norm)]; i != NIL; i = t->nodes[i].next) {
		const struct coa_session *s = &t->nodes[i].s;
		size_t j;

		if (strcmp(s->mac, norm) != 0 || stale(t, s, now))
			continue;
		/* Insertion by recency, keeping the max most recent: the session the device used
		 * last comes first. */
		if (n == max && out[n - 1].updated_ms >= s->updated_ms)
			continue;
		j = n < max ? n++ : n - 1;
		for (; j > 0 && out[j - 1].updated_ms < s->updated_ms; j--)
			out[j] = out[j - 1];
		out[j] = *s;
	}
	pthread_mutex_unlock(&t->mu);
	return n;
}

size_t sessions_find_cb(void *t, const char *mac, struct coa_session *out, size_t max)
{
	return sessions_find(t, mac, out, max);
}

size_t sessions_count(const struct sessions *t)
{
	return t ? atomic_load(&t->count) : 0;
}

unsigned long sessions_refused(const struct sessions *t)
{
	return t ? atomic_load(&t->refused) : 0;
}

void sessions_metrics(const struct sessions *t, struct prom *b)
{
	prom_addf(b,
		  "# HELP mdmgw_sessions Network sessions held.\n# TYPE mdmgw_sessions gauge\n"
		  "mdmgw_sessions %zu\n",
		  sessions_count(t));
	prom_addf(b,
		  "# HELP mdmgw_sessions_refused_total New sessions refused: the session table "
		  "was full.\n# TYPE mdmgw_sessions_refused_total counter\n"
		  "mdmgw_sessions_refused_total %lu\n",
		  sessions_refused(t));
}

static json_t *or_null(const char *s)
{
	return *s ? jout_str(s) : json_null();
}

json_t *sessions_session_json(const struct coa_session *s)
{
	json_t *o = json_object();
	bool bad = false;

	jout_set(o, "mac", jout_str(s->mac), &bad);
	jout_set(o, "nas_ip", or_null(s->nas_ip), &bad);
	jout_set(o, "nas_id", or_null(s->nas_id), &bad);
	jout_set(o, "acct_session_id", or_null(s->acct_session_id), &bad);
	jout_set(o, "user_name", or_null(s->user_name), &bad);
	jout_set(o, "nas_port", s->has_nas_port ? json_integer(s->nas_port) : json_null(), &bad);
	jout_set(o, "updated_at", jout_time(s->updated_ms), &bad);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *sessions_json(struct sessions *t, const char *mac, size_t max)
{
	json_t *root = json_object(), *arr = json_array();
	int64_t now = clock_wall_ms();
	size_t total = 0;
	bool bad = !root || !arr;

	uint32_t first = mac ? mac_bucket(t, mac) : 0, last = mac ? first : t->mask;

	pthread_mutex_lock(&t->mu);
	for (uint32_t b = first; b <= last && !bad; b++) {
		for (uint32_t i = t->buckets[b]; i != NIL && !bad; i = t->nodes[i].next) {
			const struct coa_session *s = &t->nodes[i].s;

			if ((mac && strcmp(s->mac, mac) != 0) || stale(t, s, now))
				continue;
			if (total++ < max &&
			    json_array_append_new(arr, sessions_session_json(s)) != 0)
				bad = true;
		}
	}
	pthread_mutex_unlock(&t->mu);
	jout_set(root, "count", json_integer((json_int_t)total), &bad);
	jout_set(root, "sessions", arr, &bad);
	if (bad) {
		json_decref(root);
		return NULL;
	}
	return root;
}
