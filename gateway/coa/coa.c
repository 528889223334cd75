#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/clock.h"
#include "../../core/log.h"
#include "coa.h"

#define COA_BUCKETS 16384u /* session slots hash; a power of two */
#define COA_KEY_MAX 200

/* An event waiting in the submit queue. */
struct evnode {
	struct transition ev;
	struct evnode *next;
};

struct slot;

/* One delivery: an event to one sink (and one session of the MAC for session sinks). */
struct job {
	struct coa *c;
	struct transition ev;
	struct coa_session sess;
	bool has_sess;
	size_t sink;
	struct slot *slot;
	unsigned attempts;
	int64_t due; /* clock_mono_ms when it may be sent */
	bool dead;   /* superseded while in a due list: freed when it comes up */
	struct coa_result res;
	struct job *next;
};

/* What is known per (sink, session): the job being sent or due, and the newest waiting. */
struct slot {
	char key[COA_KEY_MAX];
	struct job *cur;
	struct job *pending;
	struct slot *hnext;
};

struct jlist {
	struct job *head, *tail;
};

struct ring {
	struct coa_delivery d[COA_KEEP];
	size_t next, n;
};

struct coa {
	struct coa_config cfg;
	struct coa_sink *sinks[COA_MAX_SINKS];
	size_t nsinks;
	struct coa_hooks hooks;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	bool started, stopping, abandon;

	struct evnode *ev_head, *ev_tail;
	size_t nevents;
	struct jlist *due; /* due[k]: jobs waiting for their (k+1)th attempt, due order */
	struct jlist done; /* attempts answered, for the worker */
	struct slot **buckets;
	size_t njobs; /* deliveries not finished */
	size_t inflight;
	double tokens;
	int64_t refilled;
	int64_t full_logged; /* clock_mono_ms of the last "queue full" line */

	struct ring recent, failed;
	struct coa_stats st;
};

/* --- small helpers ------------------------------------------------------------------------- */

static void jpush(struct jlist *l, struct job *j)
{
	j->next = NULL;
	if (l->tail)
		l->tail->next = j;
	else
		l->head = j;
	l->tail = j;
}

static struct job *jpop(struct jlist *l)
{
	struct job *j = l->head;

	if (j) {
		l->head = j->next;
		if (!l->head)
			l->tail = NULL;
		j->next = NULL;
	}
	return j;
}

static uint32_t hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static void session_text(const struct job *j, char *out, size_t sz)
{
	if (!j->has_sess) {
		out[0] = '\0';
		return;
	}
	snprintf(out, sz, "%s/%s", j->sess.nas_ip[0] ? j->sess.nas_ip : j->sess.nas_id,
		 j->sess.acct_session_id);
}

/* The device part of a transition id "<device key>@<generation>". */
static void device_key(const struct transition *ev, char *out, size_t sz)
{
	const char *at = strrchr(ev->id, '@');
	size_t n = at ? (size_t)(at - ev->id) : strlen(ev->id);

	if (ev->mac[0]) {
		str_copy(out, sz, ev->mac);
		return;
	}
	if (n >= sz)
		n = sz - 1;
	memcpy(out, ev->id, n);
	out[n] = '\0';
}

static void slot_key(const struct job *j, char *out, size_t sz)
{
	char dev[COA_KEY_MAX / 2];

	if (j->has_sess) {
		snprintf(out, sz, "%zu|%s|%s|%s", j->sink, j->sess.mac,
			 j->sess.nas_ip[0] ? j->sess.nas_ip : j->sess.nas_id,
			 j->sess.acct_session_id);
		return;
	}
	device_key(&j->ev, dev, sizeof(dev));
	snprintf(out, sz, "%zu|%s", j->sink, dev);
}

/* record: a delivery's end for the API (and the failed list when it failed). Under mu. */
static void record(struct coa *c, const struct job *j, const char *sink, const char *outcome,
		   const char *detail)
{
	struct coa_delivery *d = &c->recent.d[c->recent.next];

	memset(d, 0, sizeof(*d));
	str_copy(d->event_id, sizeof(d->event_id), j->ev.id);
	d->epoch = j->ev.epoch;
	str_copy(d->sink, sizeof(d->sink), sink);
	str_copy(d->mac, sizeof(d->mac), j->ev.mac);
	session_text(j, d->session, sizeof(d->session));
	str_copy(d->from, sizeof(d->from), j->ev.from);
	str_copy(d->to, sizeof(d->to), j->ev.to);
	d->attempts = j->attempts;
	str_copy(d->outcome, sizeof(d->outcome), outcome);
	str_copy(d->detail, sizeof(d->detail), detail);
	d->at_ms = clock_wall_ms();
	c->recent.next = (c->recent.next + 1) % COA_KEEP;
	if (c->recent.n < COA_KEEP)
		c->recent.n++;
	if (strcmp(outcome, "failed") != 0 && strcmp(outcome, "refused") != 0)
		return;
	c->failed.d[c->failed.next] = *d;
	c->failed.next = (c->failed.next + 1) % COA_KEEP;
	if (c->failed.n < COA_KEEP)
		c->failed.n++;
}

static const char *sink_name(const struct coa *c, size_t i)
{
	return i < c->nsinks ? c->sinks[i]->name : "-";
}

static void log_end(const struct coa *c, const struct job *j, const char *outcome,
		    const char *detail)
{
	char sess[200];

	session_text(j, sess, sizeof(sess));
	log_info("coa: event %s epoch %llu sink %s mac %s session %s: %s after %u attempt%s: %s",
		 j->ev.id, (unsigned long long)j->ev.epoch, sink_name(c, j->sink),
		 j->ev.mac[0] ? j->ev.mac : "-", sess[0] ? sess : "-", outcome, j->attempts,
		 j->attempts == 1 ? "" : "s", detail);
}

/* --- slots --------------------------------------------------------------------------------- */

static struct slot *slot_get(struct coa *c, const char *key, bool make)
{
	struct slot **b = &c->buckets[hash(key) & (COA_BUCKETS - 1)], *s;

	for (s = *b; s; s = s->hnext)
		if (strcmp(s->key, key) == 0)
			return s;
	if (!make)
		return NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	str_copy(s->key, sizeof(s->key), key);
	s->hnext = *b;
	*b = s;
	return s;
}

static void slot_drop(struct coa *c, struct slot *s)
{
	struct slot **p = &c->buckets[hash(s->key) & (COA_BUCKETS - 1)];

	while (*p != s)
		p = &(*p)->hnext;
	*p = s->hnext;
	free(s);
}

static void schedule(struct coa *c, struct job *j, int64_t due)
{
	unsigned k = j->attempts < c->cfg.max_attempts ? j->attempts : c->cfg.max_attempts - 1;

	j->due = due;
	jpush(&c->due[k], j);
}

/* supersede: job old lost to a newer one of its session. Not freed here when in a list. */
static void supersede(struct coa *c, struct job *old, const struct job *by, bool in_list)
{
	char detail[256];

	snprintf(detail, sizeof(detail), "superseded by event %s", by->ev.id);
	log_end(c, old, "superseded", detail);
	record(c, old, sink_name(c, old->sink), "superseded", detail);
	c->st.superseded++;
	c->njobs--;
	if (in_list)
		old->dead = true;
	else
		free(old);
}

/* place: a new job into its session's slot. Under mu. */
static void place(struct coa *c, struct job *j)
{
	char key[COA_KEY_MAX];
	struct slot *s;

	slot_key(j, key, sizeof(key));
	s = slot_get(c, key, true);
	if (!s) {
		log_err("coa: event %s: out of memory, delivery to %s dropped", j->ev.id,
			sink_name(c, j->sink));
		c->njobs--;
		free(j);
		return;
	}
	j->slot = s;
	if (!s->cur) {
		s->cur = j;
		schedule(c, j, clock_mono_ms());
	} else if (s->cur->due >= 0) {
		/* waiting in a due list (first try or back-off): the newer one replaces it */
		supersede(c, s->cur, j, true);
		s->cur = j;
		schedule(c, j, clock_mono_ms());
	} else {
		/* in flight: wait behind it, newest only */
		if (s->pending)
			supersede(c, s->pending, j, false);
		s->pending = j;
	}
}

/* advance: the slot's current job is done with; the waiting one (if any) goes next. */
static void advance(struct coa *c, struct slot *s)
{
	s->cur = s->pending;
	s->pending = NULL;
	if (s->cur)
		schedule(c, s->cur, clock_mono_ms());
	else
		slot_drop(c, s);
}

/* --- the worker ---------------------------------------------------------------------------- */

static void on_sent(void *arg, const struct coa_result *res)
{
	struct job *j = arg;
	struct coa *c = j->c;

	pthread_mutex_lock(&c->mu);
	j->res = *res;
	jpush(&c->done, j);
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

/* finish: an answered attempt: final, retried, superseded or failed. Under mu. */
static void finish(struct coa *c, struct job *j)
{
	enum coa_outcome o = j->res.outcome;
	struct slot *s = j->slot;
	char sess[200];
	bool retryable = o == COA_NO_ANSWER || o == COA_ERROR;

	c->inflight--;
	if ((unsigned)o <= COA_NO_SESSION && j->sink < COA_MAX_SINKS)
		c->st.attempts[j->sink][o]++;
	session_text(j, sess, sizeof(sess));
	log_info("coa: event %s epoch %llu sink %s mac %s session %s attempt %u/%u: %s (%s)",
		 j->ev.id, (unsigned long long)j->ev.epoch, sink_name(c, j->sink),
		 j->ev.mac[0] ? j->ev.mac : "-", sess[0] ? sess : "-", j->attempts,
		 c->cfg.max_attempts, coa_outcome_name(o), j->res.detail);
	if (retryable && j->attempts < c->cfg.max_attempts && !s->pending && !c->abandon) {
		int64_t wait = coa_policy_retry_wait_ms(c->cfg.backoff_ms, j->attempts);

		schedule(c, j, clock_mono_ms() + wait);
		return;
	}
	if (retryable && s->pending) {
		supersede(c, j, s->pending, false);
		advance(c, s);
		return;
	}
	if (retryable) {
		c->st.failed++;
		log_end(c, j, "failed", j->res.detail);
		record(c, j, sink_name(c, j->sink), "failed", j->res.detail);
	} else {
		if (o == COA_NO_SESSION)
			c->st.no_session++;
		log_end(c, j, coa_outcome_name(o), j->res.detail);
		record(c, j, sink_name(c, j->sink), coa_outcome_name(o), j->res.detail);
	}
	c->njobs--;
	free(j);
	advance(c, s);
}

static struct job *job_new(struct coa *c, const struct transition *ev, size_t sink,
			   const struct coa_session *sess)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->c = c;
	j->ev = *ev;
	j->sink = sink;
	if (sess) {
		j->sess = *sess;
		j->has_sess = true;
	}
	return j;
}

/* A delivery that ends before any send (no session, skipped): logged and recorded. Under mu. */
static void end_unsent(struct coa *c, const struct transition *ev, const char *sink,
		       const char *outcome, const char *detail)
{
	struct job tmp;

	memset(&tmp, 0, sizeof(tmp));
	tmp.ev = *ev;
	tmp.sink = (size_t)-1;
	log_info("coa: event %s epoch %llu sink %s mac %s: %s: %s", ev->id,
		 (unsigned long long)ev->epoch, sink, ev->mac[0] ? ev->mac : "-", outcome, detail);
	record(c, &tmp, sink, outcome, detail);
}

/*
 * expand: an event into its jobs, one per sink (per session for session sinks). The claim and
 * session callbacks are called without mu; the jobs are placed under it.
 */
static void expand(struct coa *c, const struct transition *ev)
{
	struct coa_session *ss = calloc(COA_MAX_SESSIONS, sizeof(*ss));
	struct job *jobs[COA_MAX_SINKS * COA_MAX_SESSIONS];
	size_t nj = 0, nsess[COA_MAX_SINKS] = {0};
	bool mine = !c->hooks.claim || c->hooks.claim(c->hooks.claim_arg, ev->id), oom = !ss;

	for (size_t i = 0; mine && !oom && i < c->nsinks; i++) {
		if (!c->sinks[i]->ops->needs_session) {
			jobs[nj] = job_new(c, ev, i, NULL);
			oom |= !jobs[nj];
			nj += jobs[nj] != NULL;
			continue;
		}
		if (ev->mac[0] && c->hooks.sessions)
			nsess[i] =
			    c->hooks.sessions(c->hooks.sessions_arg, ev->mac, ss, COA_MAX_SESSIONS);
		if (nsess[i] > COA_MAX_SESSIONS)
			nsess[i] = COA_MAX_SESSIONS;
		for (size_t k = 0; k < nsess[i] && !oom; k++) {
			jobs[nj] = job_new(c, ev, i, &ss[k]);
			oom |= !jobs[nj];
			nj += jobs[nj] != NULL;
		}
	}
	free(ss);
	pthread_mutex_lock(&c->mu);
	if (!mine) {
		c->st.skipped++;
		end_unsent(c, ev, "-", "skipped", "sent by another instance");
	}
	for (size_t i = 0; mine && i < c->nsinks; i++) {
		if (c->sinks[i]->ops->needs_session && nsess[i] == 0 && !oom) {
			c->st.no_session++;
			end_unsent(c, ev, c->sinks[i]->name, "no_session",
				   ev->mac[0] ? "no session known for the MAC"
					      : "the device has no MAC");
		}
	}
	if (oom)
		log_err("coa: event %s: out of memory, %zu of its deliveries dropped", ev->id, nj);
	for (size_t i = 0; i < nj; i++) {
		if (oom) {
			free(jobs[i]);
			continue;
		}
		c->njobs++;
		place(c, jobs[i]);
	}
	pthread_mutex_unlock(&c->mu);
}

/* next_due: the earliest due job over the due lists (dead ones freed on the way). Under mu. */
static struct jlist *next_due(struct coa *c)
{
	struct jlist *best = NULL;

	for (unsigned k = 0; k < c->cfg.max_attempts; k++) {
		struct jlist *l = &c->due[k];

		while (l->head && l->head->dead)
			free(jpop(l));
		if (l->head && (!best || l->head->due < best->head->due))
			best = l;
	}
	return best;
}

static void refill(struct coa *c, int64_t now)
{
	double cap = c->cfg.rate_per_sec < 1 ? 1 : c->cfg.rate_per_sec;

	if (c->cfg.rate_per_sec <= 0)
		return; /* no limit */
	c->tokens += (double)(now - c->refilled) * c->cfg.rate_per_sec / 1000.0;
	if (c->tokens > cap)
		c->tokens = cap;
	c->refilled = now;
}

/* send_one: takes j out of its list and makes its attempt; mu is dropped meanwhile. */
static void send_one(struct coa *c, struct jlist *l)
{
	struct job *j = jpop(l);
	struct coa_sink *k = c->sinks[j->sink];
	enum mdm_err e;

	j->due = -1; /* in flight */
	j->attempts++;
	c->inflight++;
	c->tokens -= 1;
	pthread_mutex_unlock(&c->mu);
	e = k->ops->send(k, &j->ev, j->has_sess ? &j->sess : NULL, on_sent, j);
	pthread_mutex_lock(&c->mu);
	if (e != MDM_OK) {
		j->res.outcome = COA_ERROR;
		snprintf(j->res.detail, sizeof(j->res.detail), "not sent: %s", err_str(e));
		jpush(&c->done, j);
	}
}

static void wait_ms(struct coa *c, int64_t ms)
{
	if (ms < 0)
		pthread_cond_wait(&c->cv, &c->mu);
	else
		clock_cond_wait_until(&c->cv, &c->mu, clock_mono_ms() + ms);
}

static void *worker(void *arg)
{
	struct coa *c = arg;

	pthread_mutex_lock(&c->mu);
	while (!c->abandon) {
		struct jlist *l;
		int64_t now;

		while (c->done.head)
			finish(c, jpop(&c->done));
		pthread_cond_broadcast(&c->cv); /* coa_destroy waits for the work to drain */
		if (c->ev_head) {
			struct evnode *n = c->ev_head;

			c->ev_head = n->next;
			if (!c->ev_head)
				c->ev_tail = NULL;
			c->nevents--;
			pthread_mutex_unlock(&c->mu);
			expand(c, &n->ev);
			free(n);
			pthread_mutex_lock(&c->mu);
			continue;
		}
		l = next_due(c);
		now = clock_mono_ms();
		if (!l) {
			wait_ms(c, -1);
			continue;
		}
		if (l->head->due > now) {
			wait_ms(c, l->head->due - now);
			continue;
		}
		refill(c, now);
		if (c->cfg.rate_per_sec > 0 && c->tokens < 1) {
			wait_ms(c, (int64_t)((1 - c->tokens) * 1000.0 / c->cfg.rate_per_sec) + 1);
			continue;
		}
		send_one(c, l);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

/* --- public -------------------------------------------------------------------------------- */

static void free_all(struct coa *c)
{
	struct job *j;

	for (unsigned k = 0; c->due && k < c->cfg.max_attempts; k++)
		while ((j = jpop(&c->due[k])))
			free(j);
	while ((j = jpop(&c->done)))
		free(j);
	for (size_t b = 0; c->buckets && b < COA_BUCKETS; b++) {
		while (c->buckets[b]) {
			struct slot *s = c->buckets[b];

			c->buckets[b] = s->hnext;
			free(s->pending);
			free(s);
		}
	}
	while (c->ev_head) {
		struct evnode *n = c->ev_head;

		c->ev_head = n->next;
		free(n);
	}
	free(c->due);
	free(c->buckets);
}

struct coa *coa_create(const struct coa_config *cfg, struct coa_sink **sinks, size_t n,
		       const struct coa_hooks *hooks)
{
	struct coa *c = calloc(1, sizeof(*c));
	bool ok = c && n <= COA_MAX_SINKS && cfg->max_attempts > 0 && cfg->rate_per_sec >= 0;

	if (ok) {
		c->cfg = *cfg;
		c->due = calloc(cfg->max_attempts, sizeof(*c->due));
		c->buckets = calloc(COA_BUCKETS, sizeof(*c->buckets));
		ok = c->due && c->buckets;
	}
	for (size_t i = 0; i < n; i++) {
		if (ok && i < COA_MAX_SINKS) {
			c->sinks[c->nsinks] = sinks[i];
			str_copy(c->st.sink_names[c->nsinks], sizeof(c->st.sink_names[0]),
				 sinks[i]->name);
			c->nsinks++;
		} else if (sinks[i]) {
			sinks[i]->ops->destroy(sinks[i]);
		}
	}
	if (!ok) {
		if (c)
			free_all(c);
		free(c);
		return NULL;
	}
	c->st.nsinks = c->nsinks;
	if (hooks)
		c->hooks = *hooks;
	c->tokens = c->cfg.rate_per_sec < 1 ? 1 : c->cfg.rate_per_sec;
	c->refilled = clock_mono_ms();
	pthread_mutex_init(&c->mu, NULL);
	clock_cond_init(&c->cv);
	if (pthread_create(&c->thread, NULL, worker, c) != 0) {
		c->abandon = true;
		coa_destroy(c);
		return NULL;
	}
	c->started = true;
	return c;
}

enum mdm_err coa_submit(struct coa *c, const struct transition *ev)
{
	struct evnode *n;
	int64_t now;

	pthread_mutex_lock(&c->mu);
	if (c->stopping) {
		pthread_mutex_unlock(&c->mu);
		return MDM_ERR_UNAVAILABLE;
	}
	if (c->nevents >= c->cfg.queue_max) {
		c->st.queue_full++;
		now = clock_mono_ms();
		/* one line a second at most: a storm would otherwise flood the log */
		if (now - c->full_logged >= 1000 || c->full_logged == 0) {
			c->full_logged = now;
			log_warn("coa: queue full (%zu events): event %s refused (%llu refused so "
				 "far)",
				 c->nevents, ev->id, (unsigned long long)c->st.queue_full);
		}
		pthread_mutex_unlock(&c->mu);
		return MDM_ERR_BUSY;
	}
	pthread_mutex_unlock(&c->mu);
	n = malloc(sizeof(*n));
	if (!n)
		return MDM_ERR_NOMEM;
	n->ev = *ev;
	n->next = NULL;
	pthread_mutex_lock(&c->mu);
	if (c->ev_tail)
		c->ev_tail->next = n;
	else
		c->ev_head = n;
	c->ev_tail = n;
	c->nevents++;
	c->st.submitted++;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	return MDM_OK;
}

/* Each transition logged, so a gateway without sinks still shows what it would have asked. */
static void emit_transition(void *arg, const struct transition *ev)
{
	struct coa *c = arg;
	enum mdm_err rc;

	log_info("transition %s: %s -> %s (%s) mac %s guid %s kind %s epoch %llu", ev->id, ev->from,
		 ev->to, ev->reason, ev->mac[0] ? ev->mac : "-", ev->guid[0] ? ev->guid : "-",
		 ev->kind == TRANSITION_DISCONNECT ? "disconnect" : "reauth",
		 (unsigned long long)ev->epoch);
	if (!c)
		return;
	rc = coa_submit(c, ev);
	if (rc != MDM_OK)
		log_err("transition %s: not queued for CoA: %s", ev->id, err_str(rc));
}

struct transition_sink coa_transition_sink(struct coa *c)
{
	struct transition_sink s = {emit_transition, c};

	return s;
}

void coa_destroy(struct coa *c)
{
	int64_t until;

	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	c->stopping = true;
	until = clock_mono_ms() + c->cfg.drain_ms;
	while (c->started && !c->abandon && (c->nevents || c->njobs) && clock_mono_ms() < until)
		wait_ms(c, until - clock_mono_ms());
	if (c->nevents || c->njobs) {
		c->st.abandoned += c->nevents + c->njobs;
		log_warn("coa: shutting down: %zu queued events and %zu unfinished deliveries "
			 "abandoned",
			 c->nevents, c->njobs);
	}
	c->abandon = true;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	if (c->started)
		pthread_join(c->thread, NULL);
	/* the sinks complete their sends: the callbacks land in done, freed below */
	for (size_t i = 0; i < c->nsinks; i++)
		c->sinks[i]->ops->destroy(c->sinks[i]);
	free_all(c);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

static size_t ring_list(const struct ring *r, bool ok_only, struct coa_delivery *out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < r->n && n < max; i++) {
		const struct coa_delivery *d = &r->d[(r->next + COA_KEEP - 1 - i) % COA_KEEP];

		if (!ok_only || strcmp(d->outcome, "ok") == 0)
			out[n++] = *d;
	}
	return n;
}

size_t coa_list(struct coa *c, enum coa_list_which which, struct coa_delivery *out, size_t max)
{
	size_t n;

	pthread_mutex_lock(&c->mu);
	if (which == COA_LIST_FAILED)
		n = ring_list(&c->failed, false, out, max);
	else
		n = ring_list(&c->recent, which == COA_LIST_SENT, out, max);
	pthread_mutex_unlock(&c->mu);
	return n;
}

void coa_get_stats(struct coa *c, struct coa_stats *out)
{
	pthread_mutex_lock(&c->mu);
	*out = c->st;
	out->queued = c->nevents;
	out->jobs = c->njobs;
	pthread_mutex_unlock(&c->mu);
}
