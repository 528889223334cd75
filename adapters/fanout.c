#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "../core/clock.h"
#include "fanout.h"

struct fanout_slot {
	struct fanout *f;
	size_t index;
	int answered;
};

struct fanout {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct adapter *const *ads;
	size_t nads;
	size_t nidents;
	size_t pending; /* slots not answered yet */
	size_t refs;	/* one per launched lookup still outstanding, plus the caller's */
	int closed;	/* the caller stopped waiting: drop late answers */
	fanout_done_cb done;
	void *done_arg;
	struct outcome *oc;
	struct fanout_slot *slots;
};

struct fanout *fanout_create(struct adapter *const *ads, size_t nads, size_t nidents)
{
	struct fanout *f = calloc(1, sizeof(*f));
	size_t n = nads * nidents;

	if (!f)
		return NULL;
	f->oc = calloc(n ? n : 1, sizeof(*f->oc));
	f->slots = calloc(n ? n : 1, sizeof(*f->slots));
	if (!f->oc || !f->slots) {
		free(f->oc);
		free(f->slots);
		free(f);
		return NULL;
	}
	pthread_mutex_init(&f->mu, NULL);
	clock_cond_init(&f->cv);
	f->ads = ads;
	f->nads = nads;
	f->nidents = nidents;
	f->refs = 1;
	for (size_t i = 0; i < n; i++) {
		outcome_init(&f->oc[i]);
		f->slots[i].f = f;
		f->slots[i].index = i;
	}
	return f;
}

static void fanout_free(struct fanout *f)
{
	for (size_t i = 0; i < f->nads * f->nidents; i++)
		outcome_clear(&f->oc[i]);
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->cv);
	free(f->oc);
	free(f->slots);
	free(f);
}

/* Drops one reference with f->mu held; unlocks, and frees when it was the last. */
static void unref_locked(struct fanout *f)
{
	int last = --f->refs == 0;

	pthread_mutex_unlock(&f->mu);
	if (last)
		fanout_free(f);
}

static void on_answer(void *arg, struct outcome *oc)
{
	struct fanout_slot *s = arg;
	struct fanout *f = s->f;
	int fire = 0;

	pthread_mutex_lock(&f->mu);
	if (!f->closed && !s->answered) {
		outcome_move(&f->oc[s->index], oc);
		s->answered = 1;
		if (--f->pending == 0) {
			pthread_cond_broadcast(&f->cv);
			if (f->done) {
				f->closed = 1;
				fire = 1;
			}
		}
	} else {
		outcome_clear(oc);
	}
	if (fire) {
		/* Our slot's reference keeps f alive while done runs, even if done releases. */
		pthread_mutex_unlock(&f->mu);
		f->done(f->done_arg);
		pthread_mutex_lock(&f->mu);
	}
	unref_locked(f);
}

void fanout_on_done(struct fanout *f, fanout_done_cb done, void *arg)
{
	pthread_mutex_lock(&f->mu);
	f->done = done;
	f->done_arg = arg;
	pthread_mutex_unlock(&f->mu);
}

/* Marks every unanswered slot as timed out; with f->mu held. */
static void time_out_locked(struct fanout *f)
{
	for (size_t i = 0; i < f->nads * f->nidents; i++) {
		if (f->slots[i].answered)
			continue;
		outcome_set(&f->oc[i], OUTCOME_FAILED, FAIL_TIMEOUT,
			    "no answer before the deadline");
	}
}

void fanout_expire(struct fanout *f)
{
	int fire;

	pthread_mutex_lock(&f->mu);
	if (f->closed) {
		pthread_mutex_unlock(&f->mu);
		return;
	}
	time_out_locked(f);
	f->closed = 1;
	fire = f->done != NULL;
	pthread_mutex_unlock(&f->mu);
	if (fire)
		f->done(f->done_arg);
}

void fanout_start(struct fanout *f, const struct ident *ids, int64_t deadline_ms)
{
	int empty;

	pthread_mutex_lock(&f->mu);
	f->pending = f->nads * f->nidents;
	f->refs += f->pending;
	empty = f->pending == 0 && f->done && !f->closed;
	if (empty)
		f->closed = 1;
	pthread_mutex_unlock(&f->mu);
	if (empty)
		f->done(f->done_arg);
	for (size_t i = 0; i < f->nidents; i++) {
		for (size_t j = 0; j < f->nads; j++) {
			struct fanout_slot *s = &f->slots[i * f->nads + j];
			enum mdm_err e;
			struct outcome oc;

			e = adapter_lookup(f->ads[j], &ids[i], deadline_ms, on_answer, s);
			if (e == MDM_OK)
				continue;
			outcome_init(&oc);
			outcome_set(&oc, OUTCOME_FAILED, FAIL_INTERNAL, err_str(e));
			on_answer(s, &oc);
		}
	}
}

enum mdm_err fanout_wait(struct fanout *f, int64_t deadline_ms)
{
	enum mdm_err e = MDM_OK;

	pthread_mutex_lock(&f->mu);
	while (f->pending > 0)
		if (clock_cond_wait_until(&f->cv, &f->mu, deadline_ms))
			break;
	if (f->pending > 0) {
		e = MDM_ERR_TIMEOUT;
		time_out_locked(f);
	}
	f->closed = 1;
	pthread_mutex_unlock(&f->mu);
	return e;
}

struct outcome *fanout_outcomes(struct fanout *f, size_t i)
{
	return &f->oc[i * f->nads];
}

void fanout_release(struct fanout *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->mu);
	unref_locked(f);
}
