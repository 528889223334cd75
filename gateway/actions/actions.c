#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../adapters/fanout.h"
#include "../../core/buf.h"
#include "../../core/clock.h"
#include "../../core/log.h"
#include "actions.h"

#define DESTROY_WAIT_MS 60000
#define IDLE_WAKE_MS 1000

/* One action on its way through the pipeline. */
struct op {
	struct actions *x;
	atomic_int refs;
	struct op *prev, *next; /* on x->waiting while its MDM lookup is out (under x->mu) */
	bool listed;
	int64_t deadline; /* monotonic ms: the lookup is expired past it */
	struct fanout *f;
	char user[JOURNAL_USER_MAX + 1];
	char addr[JOURNAL_ADDR_MAX + 1];
	char key[JOURNAL_KEY_MAX + 1];
	char key_hash[JOURNAL_HASH_LEN + 1];
	enum action_kind kind;
	struct ident dev;
	actions_done_cb done;
	void *arg;
	size_t ad;	   /* the adapter that manages the device */
	struct device rec; /* its record of the device */
	char id[JOURNAL_ID_LEN + 1];
	struct action_answer ans;
};

struct actions {
	struct actions_deps d;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct op waiting; /* list head */
	size_t inflight;   /* ops not yet freed */
	bool stopping;
	pthread_t thr;
};

/* How long the fresh ask of every MDM may take (actions.lookup_timeout). */
static int64_t lookup_bound_ms(const struct actions *x)
{
	return x->d.cfg->lookup_timeout_ms > 0 ? x->d.cfg->lookup_timeout_ms
					       : ACTIONS_LOOKUP_TIMEOUT_DEFAULT_MS;
}

/* --- small helpers ------------------------------------------------------------------------- */

bool actions_key_ok(const char *key)
{
	size_t n = key ? strlen(key) : 0;

	if (n == 0 || n > JOURNAL_KEY_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (key[i] <= ' ' || key[i] > '~')
			return false;
	return true;
}

enum mdm_err actions_parse_device(const char *s, struct ident *out, char *why, size_t whysz)
{
	char mac[MAC_STR_LEN + 1], mwhy[128];
	bool local = false;
	size_t len = strlen(s);

	memset(out, 0, sizeof(*out));
	if (mac_parse(s, len, mac, &local, mwhy, sizeof(mwhy)) == MDM_OK) {
		out->kind = IDENT_MAC;
		out->mac_local = local;
		out->len = MAC_STR_LEN;
		memcpy(out->value, mac, sizeof(mac));
		return MDM_OK;
	}
	if (ident_parse(IDENT_GUID, s, len, out, mwhy, sizeof(mwhy)) == MDM_OK)
		return MDM_OK;
	snprintf(why, whysz, "the device must be a MAC address or a GUID: %s", mwhy);
	return MDM_ERR_INVALID;
}

int actions_state_status(enum journal_state s)
{
	switch (s) {
	case JOURNAL_SENT:
	case JOURNAL_RESOLVED_SENT:
		return 200;
	case JOURNAL_REFUSED:
		return 403;
	case JOURNAL_PENDING:
	case JOURNAL_UNKNOWN:
		return 409;
	default: /* failed, rejected, resolved_not_sent: the MDM did not do it */
		return 502;
	}
}

/* sha256 of the parts, joined by '\n', as 64 lowercase hex digits. */
static bool sha256_hex(const char *const *parts, size_t n, char out[JOURNAL_HASH_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	bool ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1;

	for (size_t i = 0; ok && i < n; i++)
		ok = EVP_DigestUpdate(c, parts[i], strlen(parts[i])) == 1 &&
		     EVP_DigestUpdate(c, "\n", 1) == 1;
	ok = ok && EVP_DigestFinal_ex(c, md, &mdlen) == 1 && mdlen == 32;
	EVP_MD_CTX_free(c);
	for (unsigned i = 0; ok && i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[ok ? JOURNAL_HASH_LEN : 0] = '\0';
	return ok;
}

/* --- answers ------------------------------------------------------------------------------- */

static void answer_error(struct action_answer *a, int status, const char *fmt, ...)
    MDM_PRINTF(3, 4);

static void answer_error(struct action_answer *a, int status, const char *fmt, ...)
{
	va_list ap;

	a->status = status;
	a->has_action = false;
	va_start(ap, fmt);
	vsnprintf(a->error, sizeof(a->error), fmt, ap);
	va_end(ap);
}

static void answer_action(struct action_answer *a, const struct journal_action *act, int status)
{
	a->status = status ? status : actions_state_status(act->state);
	a->has_action = true;
	a->act = *act;
	a->error[0] = '\0';
}

/* A key already known: the same payload gets the first result, another payload 422. */
static void answer_known_key(struct op *op, const struct journal_action *first)
{
	if (strcmp(first->key_hash, op->key_hash) != 0) {
		answer_error(&op->ans, 422,
			     "this Idempotency-Key was used for another request (%s of %s)",
			     action_kind_name(first->action), first->device);
		str_copy(op->ans.act.id, sizeof(op->ans.act.id), first->id);
		return;
	}
	answer_action(&op->ans, first, 0);
}

static void log_action(const struct op *op)
{
	const struct journal_action *a = &op->ans.act;

	if (op->ans.has_action)
		log_info("action %s: %s of %s %s (vendor id %s) at %s by %s from %s: %s%s%s (%d)",
			 a->id, action_kind_name(op->kind), ident_kind_name(op->dev.kind),
			 op->dev.value, a->vendor_id[0] ? a->vendor_id : "-",
			 a->mdm[0] ? a->mdm : "-", op->user, op->addr, journal_state_name(a->state),
			 a->detail[0] ? ": " : "", a->detail, op->ans.status);
	else
		log_info("action: %s of %s %s by %s from %s: %d: %s", action_kind_name(op->kind),
			 ident_kind_name(op->dev.kind), op->dev.value, op->user, op->addr,
			 op->ans.status, op->ans.error);
}

/* --- op life ------------------------------------------------------------------------------- */

static void op_unref(struct op *op)
{
	struct actions *x = op->x;

	if (atomic_fetch_sub(&op->refs, 1) != 1)
		return;
	fanout_release(op->f);
	free(op);
	pthread_mutex_lock(&x->mu);
	x->inflight--;
	pthread_cond_broadcast(&x->cv);
	pthread_mutex_unlock(&x->mu);
}

static void finish(struct op *op)
{
	log_action(op);
	op->done(op->arg, &op->ans);
	op_unref(op);
}

static void fill_intent(const struct op *op, struct journal_intent *in, bool keyed)
{
	memset(in, 0, sizeof(*in));
	in->user = op->user;
	in->addr = op->addr;
	in->action = op->kind;
	in->device = op->dev.value;
	in->mdm = op->ad < op->x->d.nads ? op->x->d.ads[op->ad]->name : "";
	in->vendor_id = op->rec.vendor_id;
	in->key = keyed ? op->key : "";
	in->key_hash = keyed ? op->key_hash : "";
}

/*
 * A refusal, journalled. keyed: a refusal that will stand (policy, who manages the device)
 * takes the key, so a repeat gets it back; one that may pass on a retry (an MDM did not
 * answer) is journalled without it, so the same key can try again.
 */
static void refuse(struct op *op, bool keyed, const char *fmt, ...) MDM_PRINTF(3, 4);

static void refuse(struct op *op, bool keyed, const char *fmt, ...)
{
	struct journal_intent in;
	struct journal_action first, got;
	char reason[JOURNAL_TEXT_MAX + 1], why[256];
	va_list ap;
	enum mdm_err e;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	fill_intent(op, &in, keyed);
	e = journal_refused(op->x->d.journal, &in, reason, op->id, &first, why, sizeof(why));
	if (e == MDM_ERR_FORBIDDEN)
		answer_known_key(op, &first);
	else if (e == MDM_OK && journal_get(op->x->d.journal, op->id, &got) == MDM_OK)
		answer_action(&op->ans, &got, 403);
	else
		answer_error(&op->ans, 503,
			     "the action journal is unavailable (%s); nothing was sent",
			     e ? why : "record lost");
	finish(op);
}

/* --- the MDM's answer ---------------------------------------------------------------------- */

static void purge(struct op *op)
{
	struct lookup *l = op->x->d.lookup;
	struct ident id;
	size_t removed = 0, n;
	char why[128];

	if (!l)
		return;
	lookup_purge(l, &op->dev, &removed);
	for (unsigned i = 0; i < op->rec.nmacs; i++)
		if (ident_parse(IDENT_MAC, op->rec.macs[i], strlen(op->rec.macs[i]), &id, why,
				sizeof(why)) == MDM_OK &&
		    lookup_purge(l, &id, &n) == MDM_OK)
			removed += n;
	if (op->rec.guid[0] &&
	    ident_parse(IDENT_GUID, op->rec.guid, strlen(op->rec.guid), &id, why, sizeof(why)) ==
		MDM_OK &&
	    lookup_purge(l, &id, &n) == MDM_OK)
		removed += n;
	log_debug("action %s: %zu cache entries of the device purged", op->id, removed);
}

static void on_action(void *arg, struct action_result *res)
{
	struct op *op = arg;
	struct journal *j = op->x->d.journal;
	struct journal_action got;
	enum journal_state st;
	char detail[JOURNAL_TEXT_MAX + 1], why[256];

	if (res->accepted) {
		st = JOURNAL_SENT;
		str_copy(detail, sizeof(detail), res->reason);
	} else if (res->fail != FAIL_NONE) {
		st = JOURNAL_FAILED;
		snprintf(detail, sizeof(detail), "%s: %s", fail_kind_name(res->fail), res->reason);
	} else {
		st = JOURNAL_REJECTED;
		str_copy(detail, sizeof(detail),
			 res->reason[0] ? res->reason : "rejected by the MDM");
	}
	if (journal_outcome(j, op->id, st, detail, why, sizeof(why)) != MDM_OK)
		log_err("action %s: the outcome (%s) could not be journalled: %s", op->id,
			journal_state_name(st), why);
	if (st == JOURNAL_SENT)
		purge(op);
	if (journal_get(j, op->id, &got) == MDM_OK) {
		/* What happened is what the client learns, even when the journal missed it. */
		if (got.state == JOURNAL_PENDING) {
			got.state = st;
			str_copy(got.detail, sizeof(got.detail), detail);
		}
		answer_action(&op->ans, &got, 0);
	} else {
		answer_error(&op->ans, 500, "action %s vanished from the journal", op->id);
	}
	finish(op);
}

/* --- which MDM, policy, intent --------------------------------------------------------------- */

/* 409 with the action holding one of the record's identifiers, if any. */
static bool held_elsewhere(struct op *op)
{
	struct journal *j = op->x->d.journal;
	struct journal_action other;

	for (unsigned i = 0; i < op->rec.nmacs; i++)
		if (journal_device_open(j, op->rec.macs[i], &other) == MDM_OK)
			goto held;
	if (op->rec.guid[0] && journal_device_open(j, op->rec.guid, &other) == MDM_OK)
		goto held;
	return false;
held:
	answer_action(&op->ans, &other, 409);
	return true;
}

static void send_action(struct op *op)
{
	struct journal *j = op->x->d.journal;
	struct journal_intent in;
	struct journal_action first;
	char why[256];
	enum mdm_err e;

	fill_intent(op, &in, true);
	e = journal_intent(j, &in, op->id, &first, why, sizeof(why));
	if (e == MDM_ERR_FORBIDDEN) {
		answer_known_key(op, &first);
		return finish(op);
	}
	if (e == MDM_ERR_BUSY) {
		if (journal_get(j, op->id, &first) == MDM_OK)
			answer_action(&op->ans, &first, 409);
		else
			answer_error(&op->ans, 409, "another action holds this device");
		return finish(op);
	}
	if (e) {
		answer_error(&op->ans, 503,
			     "the action journal is unavailable (%s); nothing was sent", why);
		return finish(op);
	}
	/* On disk: from here the MDM may be asked. */
	e = adapter_action(op->x->d.ads[op->ad], op->rec.vendor_id, op->kind, on_action, op);
	if (e) {
		struct action_result res;

		memset(&res, 0, sizeof(res));
		res.fail = FAIL_INTERNAL;
		snprintf(res.reason, sizeof(res.reason), "the action could not start: %s",
			 err_str(e));
		on_action(op, &res);
	}
}

/* Which adapters manage the device: exactly one must, and every one must have answered. */
static void on_found(void *arg)
{
	struct op *op = arg;
	struct actions *x = op->x;
	struct outcome *oc;
	char names[256] = "";
	size_t owners = 0, nlen = 0, records = 0;

	pthread_mutex_lock(&x->mu);
	if (op->listed) {
		op->prev->next = op->next;
		op->next->prev = op->prev;
		op->listed = false;
	}
	pthread_mutex_unlock(&x->mu);
	oc = fanout_outcomes(op->f, 0);
	op->ad = x->d.nads;
	for (size_t i = 0; i < x->d.nads; i++) {
		if (oc[i].kind == OUTCOME_FAILED)
			return refuse(
			    op, false,
			    "cannot tell which MDM manages the device: %s did not answer: "
			    "%s",
			    x->d.ads[i]->name, oc[i].why[0] ? oc[i].why : "no reason given");
	}
	for (size_t i = 0; i < x->d.nads; i++) {
		size_t mine = 0;

		if (oc[i].kind != OUTCOME_FOUND)
			continue;
		for (size_t k = 0; k < oc[i].ndevs; k++) {
			if (oc[i].devs[k].registered == TRI_FALSE)
				continue;
			if (!mine++)
				op->rec = oc[i].devs[k];
		}
		if (!mine)
			continue;
		records += mine;
		if (owners++ == 0)
			op->ad = i;
		nlen += (size_t)snprintf(names + nlen, sizeof(names) - nlen, "%s%s",
					 owners > 1 ? ", " : "", x->d.ads[i]->name);
		if (nlen >= sizeof(names))
			nlen = sizeof(names) - 1;
	}
	if (owners == 0)
		return refuse(op, true, "no MDM manages this device");
	if (owners > 1) {
		op->ad = x->d.nads;
		memset(&op->rec, 0, sizeof(op->rec));
		return refuse(op, true, "managed by several MDMs (%s): ambiguous", names);
	}
	if (records > 1) {
		memset(&op->rec, 0, sizeof(op->rec));
		return refuse(op, true, "%s holds several devices with this identifier: ambiguous",
			      names);
	}
	if (op->kind == ACTION_FULL_WIPE && op->rec.ownership == OWN_PERSONAL &&
	    !x->d.cfg->allow_full_wipe_personal)
		return refuse(op, true,
			      "full wipe of a personally owned device is not allowed "
			      "(actions.allow_full_wipe_personal)");
	if (op->kind == ACTION_FULL_WIPE && op->rec.ownership == OWN_UNKNOWN &&
	    !x->d.cfg->allow_full_wipe_unknown_ownership)
		return refuse(op, true,
			      "full wipe of a device whose ownership is unknown is not allowed "
			      "(actions.allow_full_wipe_unknown_ownership)");
	if (held_elsewhere(op))
		return finish(op);
	send_action(op);
}

/* --- the deadline thread ------------------------------------------------------------------- */

static void *deadline_main(void *arg)
{
	struct actions *x = arg;

	pthread_mutex_lock(&x->mu);
	while (!x->stopping || x->waiting.next != &x->waiting) {
		int64_t now = clock_mono_ms(), next = now + IDLE_WAKE_MS;
		struct op *due = NULL;

		for (struct op *op = x->waiting.next; op != &x->waiting; op = op->next) {
			if (x->stopping || op->deadline <= now) {
				due = op;
				break;
			}
			if (op->deadline < next)
				next = op->deadline;
		}
		if (due) {
			due->prev->next = due->next;
			due->next->prev = due->prev;
			due->listed = false;
			atomic_fetch_add(&due->refs, 1);
			pthread_mutex_unlock(&x->mu);
			fanout_expire(
			    due->f); /* done (on_found) runs here, unless it ran already */
			op_unref(due);
			pthread_mutex_lock(&x->mu);
			continue;
		}
		clock_cond_wait_until(&x->cv, &x->mu, next);
	}
	pthread_mutex_unlock(&x->mu);
	return NULL;
}

/* --- the API ------------------------------------------------------------------------------- */

struct actions *actions_create(const struct actions_deps *deps)
{
	struct actions *x = calloc(1, sizeof(*x));

	if (!x)
		return NULL;
	x->d = *deps;
	x->waiting.next = x->waiting.prev = &x->waiting;
	pthread_mutex_init(&x->mu, NULL);
	clock_cond_init(&x->cv);
	if (pthread_create(&x->thr, NULL, deadline_main, x) != 0) {
		pthread_mutex_destroy(&x->mu);
		pthread_cond_destroy(&x->cv);
		free(x);
		return NULL;
	}
	return x;
}

void actions_destroy(struct actions *x)
{
	int64_t until = clock_mono_ms() + DESTROY_WAIT_MS;

	if (!x)
		return;
	pthread_mutex_lock(&x->mu);
	x->stopping = true;
	pthread_cond_broadcast(&x->cv);
	pthread_mutex_unlock(&x->mu);
	pthread_join(x->thr, NULL);
	pthread_mutex_lock(&x->mu);
	while (x->inflight > 0 && clock_mono_ms() < until)
		clock_cond_wait_until(&x->cv, &x->mu, clock_mono_ms() + 200);
	if (x->inflight > 0) {
		/* An MDM still holds a call: its callback would find x freed. Leak instead. */
		log_err("actions: %zu actions still waiting for their MDM at shutdown",
			x->inflight);
		pthread_mutex_unlock(&x->mu);
		return;
	}
	pthread_mutex_unlock(&x->mu);
	pthread_mutex_destroy(&x->mu);
	pthread_cond_destroy(&x->cv);
	free(x);
}

/* The key and payload hash of a request; false (answered) when they cannot be made. */
static bool make_key(struct op *op, const struct action_request *rq)
{
	const char *payload[2] = {action_kind_name(op->kind), op->dev.value};
	char window[32], hash[JOURNAL_HASH_LEN + 1];
	int64_t w = op->x->d.cfg->ise_key_window_ms > 0 ? op->x->d.cfg->ise_key_window_ms : 1;
	const char *parts[4] = {op->user, op->dev.value, action_kind_name(op->kind), window};

	if (!sha256_hex(payload, 2, op->key_hash))
		goto fail;
	if (rq->key) {
		if (!actions_key_ok(rq->key)) {
			answer_error(&op->ans, 400,
				     "Idempotency-Key must be 1 to 255 printable ASCII characters "
				     "without spaces");
			return false;
		}
		str_copy(op->key, sizeof(op->key), rq->key);
		return true;
	}
	/* The ISE API has no key: the same account asking the same of the same device within one
	 * window is one request. */
	snprintf(window, sizeof(window), "%lld", (long long)(clock_wall_ms() / w));
	if (!sha256_hex(parts, 4, hash))
		goto fail;
	snprintf(op->key, sizeof(op->key), "ise:%s", hash);
	return true;
fail:
	answer_error(&op->ans, 500, "cannot compute the idempotency key");
	return false;
}

void actions_start(struct actions *x, const struct action_request *rq, actions_done_cb done,
		   void *arg)
{
	struct op *op = calloc(1, sizeof(*op));
	struct journal_action first;
	struct action_answer oom;
	int64_t lookup_ms;

	if (!op) {
		memset(&oom, 0, sizeof(oom));
		answer_error(&oom, 500, "out of memory");
		done(arg, &oom);
		return;
	}
	op->x = x;
	atomic_init(&op->refs, 1); /* the pipeline's */
	op->kind = rq->kind;
	op->dev = rq->device;
	op->done = done;
	op->arg = arg;
	op->ad = x->d.nads;
	str_copy(op->user, sizeof(op->user), rq->user ? rq->user : "");
	str_copy(op->addr, sizeof(op->addr), rq->addr ? rq->addr : "");
	pthread_mutex_lock(&x->mu);
	x->inflight++;
	pthread_mutex_unlock(&x->mu);
	if ((unsigned)rq->kind >= ACTION_COUNT) {
		answer_error(&op->ans, 400, "unknown action");
		return finish(op);
	}
	if (!(rq->roles & config_action_roles_of(&x->d.cfg->roles, (int)rq->kind))) {
		answer_error(&op->ans, 403, "this account's roles do not allow %s",
			     action_kind_name(rq->kind));
		return finish(op);
	}
	if (!make_key(op, rq))
		return finish(op);
	if (journal_find_key(x->d.journal, op->key, &first) == MDM_OK) {
		answer_known_key(op, &first);
		return finish(op);
	}
	if (journal_device_open(x->d.journal, op->dev.value, &first) == MDM_OK) {
		answer_action(&op->ans, &first, 409);
		return finish(op);
	}
	op->f = fanout_create(x->d.ads, x->d.nads, 1);
	if (!op->f) {
		answer_error(&op->ans, 500, "out of memory");
		return finish(op);
	}
	/* Ours too until fanout_start returns: the last answer may finish the op inside it, and
	 * fanout_start still reads the fanout after that answer. */
	atomic_store(&op->refs, 2);
	fanout_on_done(op->f, on_found, op);
	lookup_ms = lookup_bound_ms(x);
	op->deadline = clock_mono_ms() + lookup_ms;
	pthread_mutex_lock(&x->mu);
	op->next = x->waiting.next;
	op->prev = &x->waiting;
	x->waiting.next->prev = op;
	x->waiting.next = op;
	op->listed = true;
	pthread_cond_broadcast(&x->cv);
	pthread_mutex_unlock(&x->mu);
	fanout_start(op->f, &op->dev, op->deadline);
	op_unref(op);
}

int64_t actions_answer_bound_ms(const struct actions *x)
{
	return lookup_bound_ms(x) + ACTIONS_SEND_MS;
}

unsigned config_action_roles_of(const struct config_action_roles *roles, int k)
{
	switch (k) {
	case 0:
		return roles->corporate_wipe;
	case 1:
		return roles->full_wipe;
	case 2:
		return roles->pin_lock;
	default:
		return 0;
	}
}
