#include "unit.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../cache/cache.h"
#include "../../core/buf.h"
#include "../../gateway/actions/actions.h"

/* --- a fake MDM ------------------------------------------------------------------------------ */

struct fake {
	struct adapter base;
	enum outcome_kind kind; /* what a lookup answers */
	struct device dev;	/* the record, when found */
	unsigned ndevs;		/* records answered when found (default 1) */
	bool hang_lookup;	/* keep the lookup's callback: the deadline must end it */
	adapter_lookup_cb held_lookup;
	void *held_lookup_arg;
	bool hold_action; /* keep the action's callback until released */
	adapter_action_cb held_action;
	void *held_action_arg;
	struct action_result result; /* what an action answers */
	atomic_int actions;	     /* action calls */
	const char *journal_file;
	bool intent_on_disk; /* the intent was on disk, without outcome, when the MDM was asked */
};

static enum mdm_err fake_lookup(struct adapter *a, const struct ident *id, int64_t deadline_ms,
				adapter_lookup_cb cb, void *arg)
{
	struct fake *f = a->priv;
	struct outcome oc;

	(void)id;
	(void)deadline_ms;
	if (f->hang_lookup) {
		f->held_lookup = cb;
		f->held_lookup_arg = arg;
		return MDM_OK;
	}
	outcome_init(&oc);
	if (f->kind == OUTCOME_FOUND)
		for (unsigned i = 0; i < (f->ndevs ? f->ndevs : 1); i++)
			assert_int_equal(outcome_add(&oc, &f->dev), MDM_OK);
	else
		outcome_set(&oc, f->kind, f->kind == OUTCOME_FAILED ? FAIL_UNREACHABLE : FAIL_NONE,
			    f->kind == OUTCOME_FAILED ? "connection refused" : NULL);
	cb(arg, &oc);
	return MDM_OK;
}

static enum mdm_err fake_list(struct adapter *a, const char *cursor, adapter_list_cb cb, void *arg)
{
	(void)a;
	(void)cursor;
	(void)cb;
	(void)arg;
	return MDM_ERR_INVALID;
}

/* Whether the journal file holds an intent for vendor_id with no outcome after it. */
static bool intent_pending_on_disk(const char *file, const char *vendor_id)
{
	FILE *fp = fopen(file, "r");
	char line[8192], id[64] = "";
	bool outcome = false;

	assert_non_null(fp);
	while (fgets(line, sizeof(line), fp)) {
		json_t *o = json_loads(line, 0, NULL);
		const char *t = json_string_value(json_object_get(o, "t"));
		const char *v = json_string_value(json_object_get(o, "vendor_id"));
		const char *i = json_string_value(json_object_get(o, "id"));

		if (t && strcmp(t, "intent") == 0 && v && strcmp(v, vendor_id) == 0)
			snprintf(id, sizeof(id), "%s", i);
		else if (t && strcmp(t, "outcome") == 0 && id[0] && i && strcmp(i, id) == 0)
			outcome = true;
		json_decref(o);
	}
	fclose(fp);
	return id[0] && !outcome;
}

/*
 * --- fdatasync, seen and made to fail ---------------------------------------------------------
 * The Makefile links this test with -Wl,--wrap=fdatasync: the journal's calls land in
 * __wrap_fdatasync, which logs each one (and each MDM call, from fake_action) in order.
 */

enum ev_kind { EV_SYNC, EV_ACTION };

struct ev {
	enum ev_kind kind;
	bool journal; /* EV_SYNC: of the journal file */
	bool pending; /* the journal held dev-1's intent, without outcome, at that moment */
	bool failed;  /* EV_SYNC: made to fail */
};

static pthread_mutex_t ev_mu = PTHREAD_MUTEX_INITIALIZER;
static struct ev evs[16];
static size_t nev;
static char sync_watch[128];  /* the journal file, whose syncs are told apart */
static atomic_int sync_errno; /* nonzero: fdatasync fails with this errno */

static void ev_add(enum ev_kind kind, bool journal, bool pending, bool failed)
{
	pthread_mutex_lock(&ev_mu);
	if (nev < sizeof(evs) / sizeof(evs[0]))
		evs[nev] = (struct ev){kind, journal, pending, failed};
	nev++;
	pthread_mutex_unlock(&ev_mu);
}

/* A copy of the events so far (asserts run outside the lock); their number. */
static size_t ev_copy(struct ev *out, size_t max)
{
	size_t n;

	pthread_mutex_lock(&ev_mu);
	n = nev;
	memcpy(out, evs, (n < max ? n : max) * sizeof(*out));
	pthread_mutex_unlock(&ev_mu);
	return n;
}

static void ev_reset(const char *watch)
{
	pthread_mutex_lock(&ev_mu);
	nev = 0;
	snprintf(sync_watch, sizeof(sync_watch), "%s", watch);
	pthread_mutex_unlock(&ev_mu);
	atomic_store(&sync_errno, 0);
}

int __real_fdatasync(int fd);
int __wrap_fdatasync(int fd);

int __wrap_fdatasync(int fd)
{
	struct stat a, b;
	bool journal = fstat(fd, &a) == 0 && stat(sync_watch, &b) == 0 && a.st_dev == b.st_dev &&
		       a.st_ino == b.st_ino;
	int fail = atomic_load(&sync_errno);

	ev_add(EV_SYNC, journal, journal && intent_pending_on_disk(sync_watch, "dev-1"), fail != 0);
	if (fail) {
		errno = fail;
		return -1;
	}
	return __real_fdatasync(fd);
}

static enum mdm_err fake_action(struct adapter *a, const char *vendor_id, enum action_kind kind,
				adapter_action_cb cb, void *arg)
{
	struct fake *f = a->priv;
	struct action_result res = f->result;

	(void)kind;
	assert_string_equal(vendor_id, f->dev.vendor_id);
	atomic_fetch_add(&f->actions, 1);
	ev_add(EV_ACTION, false, false, false);
	f->intent_on_disk = intent_pending_on_disk(f->journal_file, vendor_id);
	/* One call is held at a time: a second is answered at once, so a test fails, not hangs. */
	if (f->hold_action && !f->held_action) {
		f->held_action = cb;
		f->held_action_arg = arg;
		return MDM_OK;
	}
	cb(arg, &res);
	return MDM_OK;
}

static enum mdm_err fake_test(struct adapter *a, adapter_test_cb cb, void *arg)
{
	(void)a;
	(void)cb;
	(void)arg;
	return MDM_ERR_INVALID;
}

static void fake_destroy(struct adapter *a)
{
	(void)a;
}

static const struct adapter_ops fake_ops = {"fake",    fake_lookup, fake_list,	 fake_action,
					    fake_test, NULL,	    fake_destroy};

static void fake_init(struct fake *f, const char *name, const char *vendor_id, const char *mac,
		      enum ownership own)
{
	memset(f, 0, sizeof(*f));
	f->base.ops = &fake_ops;
	f->base.priv = f;
	snprintf(f->base.name, sizeof(f->base.name), "%s", name);
	f->kind = OUTCOME_FOUND;
	snprintf(f->dev.source, sizeof(f->dev.source), "%s", name);
	snprintf(f->dev.vendor_id, sizeof(f->dev.vendor_id), "%s", vendor_id);
	device_add_mac(&f->dev, mac);
	f->dev.ownership = own;
	f->dev.registered = TRI_TRUE;
	f->result.accepted = true;
	atomic_init(&f->actions, 0);
}

/* --- fixture --------------------------------------------------------------------------------- */

struct fix {
	char dir[64];
	char file[128];
	struct journal *j;
	struct config_actions cfg;
	struct fake fk[3];
	struct adapter *ads[3];
	size_t nads;
	struct actions *x;
};

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	char why[256];

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_actions.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->file, sizeof(f->file), "%s/%s", f->dir, JOURNAL_FILE);
	assert_int_equal(journal_open(f->dir, NULL, &f->j, why, sizeof(why)), MDM_OK);
	f->cfg.roles.corporate_wipe = f->cfg.roles.full_wipe = f->cfg.roles.pin_lock = ROLE_ACTION;
	f->cfg.ise_key_window_ms = 15 * 60 * 1000;
	f->cfg.lookup_timeout_ms = 300;
	fake_init(&f->fk[0], "intune", "dev-1", "0026B424FEB4", OWN_CORPORATE);
	fake_init(&f->fk[1], "jamf", "dev-2", "0026B424FEB4", OWN_CORPORATE);
	fake_init(&f->fk[2], "sccm", "dev-3", "0026B424FEB4", OWN_CORPORATE);
	f->fk[1].kind = f->fk[2].kind = OUTCOME_NOT_ENROLLED;
	for (int i = 0; i < 3; i++) {
		f->fk[i].journal_file = f->file;
		f->ads[i] = &f->fk[i].base;
	}
	f->nads = 3;
	ev_reset(f->file);
	*state = f;
	return 0;
}

/* The pipeline under test; lookup (may be NULL) is what it purges after a sent action. */
static void start_x_lookup(struct fix *f, struct lookup *l)
{
	struct actions_deps d = {&f->cfg, f->j, f->ads, f->nads, l};

	f->x = actions_create(&d);
	assert_non_null(f->x);
}

static void start_x(struct fix *f)
{
	start_x_lookup(f, NULL);
}

static int teardown(void **state)
{
	struct fix *f = *state;
	char cmd[128];

	actions_destroy(f->x);
	journal_close(f->j);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* --- running one request --------------------------------------------------------------------- */

struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	struct action_answer ans;
};

static void on_done(void *arg, const struct action_answer *ans)
{
	struct waiter *w = arg;

	pthread_mutex_lock(&w->mu);
	w->ans = *ans;
	w->done = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void waiter_init(struct waiter *w)
{
	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
}

static void waiter_wait(struct waiter *w)
{
	pthread_mutex_lock(&w->mu);
	while (!w->done)
		pthread_cond_wait(&w->cv, &w->mu);
	pthread_mutex_unlock(&w->mu);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
}

static void request(struct fix *f, const char *user, unsigned roles, const char *device,
		    enum action_kind kind, const char *key, struct waiter *w)
{
	struct action_request rq = {user, roles, "192.0.2.9", kind, {0}, key};
	char why[128];

	assert_int_equal(actions_parse_device(device, &rq.device, why, sizeof(why)), MDM_OK);
	waiter_init(w);
	actions_start(f->x, &rq, on_done, w);
}

/* One request, waited for; the answer in *out. */
static void run(struct fix *f, unsigned roles, const char *device, enum action_kind kind,
		const char *key, struct action_answer *out)
{
	struct waiter w;

	request(f, "alice", roles, device, kind, key, &w);
	waiter_wait(&w);
	*out = w.ans;
}

/* --- tests ------------------------------------------------------------------------------------ */

static void test_sent_repeat_and_reuse(void **state)
{
	struct fix *f = *state;
	struct action_answer a, b;

	start_x(f);
	run(f, ROLE_ACTION, "00:26:b4:24:fe:b4", ACTION_CORPORATE_WIPE, "k1", &a);
	assert_int_equal(a.status, 200);
	assert_true(a.has_action);
	assert_int_equal(a.act.state, JOURNAL_SENT);
	assert_string_equal(a.act.device, "0026B424FEB4");
	assert_string_equal(a.act.mdm, "intune");
	assert_string_equal(a.act.vendor_id, "dev-1");
	assert_string_equal(a.act.user, "alice");
	assert_string_equal(a.act.addr, "192.0.2.9");
	assert_int_equal(atomic_load(&f->fk[0].actions), 1);
	/* The intent was on disk before the MDM was asked; the outcome came after. */
	assert_true(f->fk[0].intent_on_disk);
	assert_false(intent_pending_on_disk(f->file, "dev-1"));
	/* A repeat: the first result, nothing sent. */
	run(f, ROLE_ACTION, "0026B424FEB4", ACTION_CORPORATE_WIPE, "k1", &b);
	assert_int_equal(b.status, 200);
	assert_string_equal(b.act.id, a.act.id);
	assert_int_equal(atomic_load(&f->fk[0].actions), 1);
	/* The same key with another payload: 422 naming the first action. */
	run(f, ROLE_ACTION, "0026B424FEB4", ACTION_PIN_LOCK, "k1", &b);
	assert_int_equal(b.status, 422);
	assert_false(b.has_action);
	assert_string_equal(b.act.id, a.act.id);
	run(f, ROLE_ACTION, "0026B424FEB5", ACTION_CORPORATE_WIPE, "k1", &b);
	assert_int_equal(b.status, 422);
	assert_int_equal(atomic_load(&f->fk[0].actions), 1);
	/* A bad key is refused before anything else. */
	run(f, ROLE_ACTION, "0026B424FEB4", ACTION_PIN_LOCK, "has space", &b);
	assert_int_equal(b.status, 400);
}

static void test_pending_conflicts(void **state)
{
	struct fix *f = *state;
	struct waiter first;
	struct action_answer b;

	f->fk[0].hold_action = true;
	start_x(f);
	request(f, "alice", ROLE_ACTION, "0026B424FEB4", ACTION_CORPORATE_WIPE, "k1", &first);
	assert_false(first.done); /* the MDM has not answered */
	assert_non_null(f->fk[0].held_action);
	/* The same key while the first is pending: 409 with it. */
	run(f, ROLE_ACTION, "0026B424FEB4", ACTION_CORPORATE_WIPE, "k1", &b);
	assert_int_equal(b.status, 409);
	assert_int_equal(b.act.state, JOURNAL_PENDING);
	/* Another key for the busy device: 409 with the action holding it. */
	run(f, ROLE_ACTION, "00-26-B4-24-FE-B4", ACTION_PIN_LOCK, "k2", &b);
	assert_int_equal(b.status, 409);
	assert_int_equal(b.act.action, ACTION_CORPORATE_WIPE);
	assert_int_equal(atomic_load(&f->fk[0].actions), 1);
	f->fk[0].held_action(f->fk[0].held_action_arg, &f->fk[0].result);
	waiter_wait(&first);
	assert_int_equal(first.ans.status, 200);
	assert_string_equal(first.ans.act.id, b.act.id);
	/* Free again. */
	f->fk[0].hold_action = false;
	run(f, ROLE_ACTION, "0026B424FEB4", ACTION_PIN_LOCK, "k3", &b);
	assert_int_equal(b.status, 200);
	assert_int_equal(atomic_load(&f->fk[0].actions), 2);
}

static void test_which_mdm(void **state)
{
	struct fix *f = *state;
	struct action_answer a;

	start_x(f);
	f->fk[0].kind = OUTCOME_NOT_ENROLLED;
	run(f, ROLE_ACTION, "0026B424FEB4", ACTION_PIN_LOCK, "none", &a);
	assert_int_equal(a.status, 403);
	assert_int_equal(a.act.state, JOURNAL_REFUSED);
	assert_string_equal(a.act.detail, "no MDM manages this device");
	/* An unregistered record is not management. */
	f->fk[0].kind = OUTCOME_FOUND;
	f->fk[0].dev.registered = TRI_FALSE;
	run(f, ROLE_ACTION, "0026B424FEB4", ACTION_PIN_LOCK, "unreg", &a);
	assert_string_equal(a.act.detail, "no MDM manages this device");
	f->fk[0].dev.registered = TRI_TRUE;
	f->fk[2].kind = OUTCOME_FOUND;
	run(f, ROLE_ACTION, "0026B424FEB4", ACTION_PIN_LOCK, "several", &a);
	assert_int_equal(a.status, 403);
	assert_string_equal(a.act.detail, "managed by several MDMs (intune, sccm): ambiguous");
	assert_string_equal(a.act.mdm, "");
	f->fk[2].kind = OUTCOME_NOT_ENROLLED;
	f->fk[1].kind = OUTCOME_FAILED;
	run(f, ROLE_ACTION, "0026B424FEB4", ACTION_PIN_LOCK, "failed", &a);
	assert_int_equal(a.status, 403);
	assert_string_equal(a.act.detail, "cannot tell which MDM manages the device: jamf did not "
					  "answer: connection refused");
	/* Not a standing refusal: the same key tries again once the MDM answers. */
	f->fk[1].kind = OUTCOME_NOT_ENROLLED;
	run(f, ROLE_ACTION, "0026B424FEB4", ACTION_PIN_LOCK, "failed", &a);
	assert_int_equal(a.status, 200);
	/* Two records at one MDM for the identifier: ambiguous too. */
	f->fk[0].ndevs = 2;
	run(f, ROLE_ACTION, "0026B424FEB4", ACTION_PIN_LOCK, "two", &a);
	assert_int_equal(a.status, 403);
	assert_non_null(strstr(a.act.detail, "ambiguous"));
	assert_int_equal(atomic_load(&f->fk[0].actions), 1);
	/* A standing refusal keeps its key: a repeat gets it back. */
	run(f, ROLE_ACTION, "0026B424FEB4", ACTION_PIN_LOCK, "several", &a);
	assert_int_equal(a.status, 403);
	assert_non_null(strstr(a.act.detail, "several MDMs"));
}

/* Any adapter that did not answer stops the action, the first one asked included. */
static void test_first_mdm_unanswered(void **state)
{
	struct fix *f = *state;
	struct action_answer a;

	f->fk[0].kind = OUTCOME_FAILED;
	f->fk[1].kind = OUTCOME_FOUND; /* jamf alone says it manages the device */
	start_x(f);
	run(f, ROLE_ACTION, "0026B424FEB4", ACTION_CORPORATE_WIPE, "f1", &a);
	assert_int_equal(a.status, 403);
	assert_string_equal(a.act.detail, "cannot tell which MDM manages the device: intune did "
					  "not answer: connection refused");
	assert_int_equal(atomic_load(&f->fk[1].actions), 0);
}

/* Answers the action call the fake holds, and waits for the request's answer. */
static void release_held(struct fake *fk, struct waiter *w)
{
	adapter_action_cb cb = fk->held_action;

	fk->held_action = NULL;
	cb(fk->held_action_arg, &fk->result);
	waiter_wait(w);
}

/*
 * An action open on any identifier of the device's record holds the device for all of them.
 * The held call is released before the answers are checked, so a failure does not leave it out.
 */
static void test_held_by_other_identifier(void **state)
{
	struct fix *f = *state;
	struct waiter first;
	struct action_answer b, c;

	assert_int_equal(device_add_mac(&f->fk[0].dev, "0026B424FEB5"), MDM_OK);
	snprintf(f->fk[0].dev.guid, sizeof(f->fk[0].dev.guid), "1759c0fd-c8da");
	f->fk[0].hold_action = true;
	start_x(f);
	/* Open on the second MAC: the first MAC and the GUID are busy. */
	request(f, "alice", ROLE_ACTION, "0026B424FEB5", ACTION_CORPORATE_WIPE, "k1", &first);
	assert_non_null(f->fk[0].held_action);
	run(f, ROLE_ACTION, "0026B424FEB4", ACTION_PIN_LOCK, "k2", &b);
	run(f, ROLE_ACTION, "1759c0fd-c8da", ACTION_PIN_LOCK, "k3", &c);
	release_held(&f->fk[0], &first);
	assert_int_equal(first.ans.status, 200);
	assert_int_equal(b.status, 409);
	assert_string_equal(b.act.device, "0026B424FEB5");
	assert_int_equal(c.status, 409);
	assert_string_equal(c.act.device, "0026B424FEB5");
	/* Open on the GUID: a MAC is busy. */
	request(f, "alice", ROLE_ACTION, "1759c0fd-c8da", ACTION_CORPORATE_WIPE, "k4", &first);
	assert_non_null(f->fk[0].held_action);
	run(f, ROLE_ACTION, "0026B424FEB4", ACTION_PIN_LOCK, "k5", &b);
	release_held(&f->fk[0], &first);
	assert_int_equal(first.ans.status, 200);
	assert_int_equal(b.status, 409);
	assert_string_equal(b.act.device, "1759c0fd-c8da");
	assert_int_equal(atomic_load(&f->fk[0].actions), 2);
}

static void test_lookup_deadline(void **state)
{
	struct fix *f = *state;
	struct action_answer a;

	f->fk[1].hang_lookup = true;
	start_x(f);
	run(f, ROLE_ACTION, "0026B424FEB4", ACTION_CORPORATE_WIPE, "slow", &a);
	assert_int_equal(a.status, 403);
	assert_non_null(strstr(a.act.detail, "jamf did not answer"));
	assert_int_equal(atomic_load(&f->fk[0].actions), 0);
	/* The late answer is dropped safely. */
	{
		struct outcome oc;

		outcome_init(&oc);
		f->fk[1].held_lookup(f->fk[1].held_lookup_arg, &oc);
	}
}

static void test_ownership_policy(void **state)
{
	struct fix *f = *state;
	struct action_answer a;

	start_x(f);
	f->fk[0].dev.ownership = OWN_PERSONAL;
	run(f, ROLE_ACTION, "0026B424FEB4", ACTION_FULL_WIPE, "p1", &a);
	assert_int_equal(a.status, 403);
	assert_non_null(strstr(a.act.detail, "personally owned"));
	assert_string_equal(a.act.mdm, "intune");
	run(f, ROLE_ACTION, "0026B424FEB4", ACTION_CORPORATE_WIPE, "p2", &a);
	assert_int_equal(a.status, 200); /* only full wipe is restricted */
	f->fk[0].dev.ownership = OWN_UNKNOWN;
	run(f, ROLE_ACTION, "0026B424FEB4", ACTION_FULL_WIPE, "u1", &a);
	assert_int_equal(a.status, 403);
	assert_non_null(strstr(a.act.detail, "ownership is unknown"));
	assert_int_equal(atomic_load(&f->fk[0].actions), 1);
	f->cfg.allow_full_wipe_unknown_ownership = true;
	run(f, ROLE_ACTION, "0026B424FEB4", ACTION_FULL_WIPE, "u2", &a);
	assert_int_equal(a.status, 200);
	f->fk[0].dev.ownership = OWN_PERSONAL;
	run(f, ROLE_ACTION, "0026B424FEB4", ACTION_FULL_WIPE, "p3", &a);
	assert_int_equal(a.status, 403);
	f->cfg.allow_full_wipe_personal = true;
	run(f, ROLE_ACTION, "0026B424FEB4", ACTION_FULL_WIPE, "p4", &a);
	assert_int_equal(a.status, 200);
	assert_int_equal(atomic_load(&f->fk[0].actions), 3);
}

static void test_roles(void **state)
{
	struct fix *f = *state;
	struct action_answer a;

	start_x(f);
	run(f, ROLE_QUERY, "0026B424FEB4", ACTION_PIN_LOCK, "r1", &a);
	assert_int_equal(a.status, 403);
	assert_false(a.has_action);
	f->cfg.roles.full_wipe = ROLE_ADMIN;
	run(f, ROLE_ACTION, "0026B424FEB4", ACTION_FULL_WIPE, "r2", &a);
	assert_int_equal(a.status, 403);
	assert_int_equal(atomic_load(&f->fk[0].actions), 0);
	run(f, ROLE_ADMIN, "0026B424FEB4", ACTION_FULL_WIPE, "r3", &a);
	assert_int_equal(a.status, 200);
	/* A role refusal took no key: the key is still free for an allowed request. */
	run(f, ROLE_ACTION, "0026B424FEB4", ACTION_PIN_LOCK, "r1", &a);
	assert_int_equal(a.status, 200);
}

static void test_rejected_and_failed(void **state)
{
	struct fix *f = *state;
	struct action_answer a;

	start_x(f);
	f->fk[0].result.accepted = false;
	snprintf(f->fk[0].result.reason, sizeof(f->fk[0].result.reason), "device offline");
	run(f, ROLE_ACTION, "0026B424FEB4", ACTION_PIN_LOCK, "j1", &a);
	assert_int_equal(a.status, 502);
	assert_int_equal(a.act.state, JOURNAL_REJECTED);
	assert_string_equal(a.act.detail, "device offline");
	f->fk[0].result.fail = FAIL_TIMEOUT;
	run(f, ROLE_ACTION, "0026B424FEB4", ACTION_PIN_LOCK, "j2", &a);
	assert_int_equal(a.status, 502);
	assert_int_equal(a.act.state, JOURNAL_FAILED);
	assert_non_null(strstr(a.act.detail, "device offline"));
	/* Repeats answer the first result with its status. */
	run(f, ROLE_ACTION, "0026B424FEB4", ACTION_PIN_LOCK, "j1", &a);
	assert_int_equal(a.status, 502);
	assert_int_equal(atomic_load(&f->fk[0].actions), 2);
}

static void test_unknown_after_reopen(void **state)
{
	struct fix *f = *state;
	struct journal_intent in = {"alice",	    "192.0.2.9", ACTION_CORPORATE_WIPE,
				    "0026B424FEB4", "intune",	 "dev-1",
				    "crash",	    NULL};
	struct journal_action ja;
	struct action_answer a;
	char id[JOURNAL_ID_LEN + 1], hash[80], why[256];

	/* The hash the pipeline uses for this payload: sha256("corporate_wipe\n0026B424FEB4\n"). */
	{
		FILE *p = popen("printf 'corporate_wipe\\n0026B424FEB4\\n' | sha256sum", "r");

		assert_non_null(p);
		assert_non_null(fgets(hash, sizeof(hash), p));
		pclose(p);
		hash[64] = '\0';
	}
	in.key_hash = hash;
	/* A crash after the intent: written, never answered. */
	assert_int_equal(journal_intent(f->j, &in, id, NULL, why, sizeof(why)), MDM_OK);
	journal_close(f->j);
	assert_int_equal(journal_open(f->dir, NULL, &f->j, why, sizeof(why)), MDM_OK);
	assert_int_equal(journal_get(f->j, id, &ja), MDM_OK);
	assert_int_equal(ja.state, JOURNAL_UNKNOWN);
	start_x(f);
	run(f, ROLE_ACTION, "0026B424FEB4", ACTION_CORPORATE_WIPE, "crash", &a);
	assert_int_equal(a.status, 409);
	assert_int_equal(a.act.state, JOURNAL_UNKNOWN);
	run(f, ROLE_ACTION, "0026B424FEB4", ACTION_PIN_LOCK, "other", &a);
	assert_int_equal(a.status, 409);
	assert_string_equal(a.act.id, id);
	assert_int_equal(atomic_load(&f->fk[0].actions), 0);
	assert_int_equal(journal_resolve(f->j, id, JOURNAL_RESOLVED_NOT_SENT, "checked", "root",
					 why, sizeof(why)),
			 MDM_OK);
	run(f, ROLE_ACTION, "0026B424FEB4", ACTION_PIN_LOCK, "other2", &a);
	assert_int_equal(a.status, 200);
	/* The resolved action's key answers its verified result. */
	run(f, ROLE_ACTION, "0026B424FEB4", ACTION_CORPORATE_WIPE, "crash", &a);
	assert_int_equal(a.act.state, JOURNAL_RESOLVED_NOT_SENT);
	assert_int_equal(atomic_load(&f->fk[0].actions), 1);
}

static void test_ise_key(void **state)
{
	struct fix *f = *state;
	struct action_answer a, b;
	struct waiter w;

	start_x(f);
	run(f, ROLE_ACTION, "0026B424FEB4", ACTION_CORPORATE_WIPE, NULL, &a);
	assert_int_equal(a.status, 200);
	assert_int_equal(strncmp(a.act.key, "ise:", 4), 0);
	run(f, ROLE_ACTION, "0026b424feb4", ACTION_CORPORATE_WIPE, NULL, &b);
	assert_string_equal(b.act.id, a.act.id);
	assert_int_equal(atomic_load(&f->fk[0].actions), 1);
	/* Another account, or another action, is another request. */
	request(f, "bob", ROLE_ACTION, "0026B424FEB4", ACTION_CORPORATE_WIPE, NULL, &w);
	waiter_wait(&w);
	assert_int_equal(w.ans.status, 200);
	assert_string_not_equal(w.ans.act.id, a.act.id);
	run(f, ROLE_ACTION, "0026B424FEB4", ACTION_PIN_LOCK, NULL, &b);
	assert_int_equal(b.status, 200);
	assert_int_equal(atomic_load(&f->fk[0].actions), 3);
}

static void test_guid_routing(void **state)
{
	struct fix *f = *state;
	struct action_answer a;

	/* Only jamf reports this GUID: the action goes there. */
	f->fk[0].kind = OUTCOME_NOT_ENROLLED;
	f->fk[1].kind = OUTCOME_FOUND;
	snprintf(f->fk[1].dev.guid, sizeof(f->fk[1].dev.guid), "1759c0fd-c8da");
	start_x(f);
	run(f, ROLE_ACTION, "1759c0fd-c8da", ACTION_PIN_LOCK, "g1", &a);
	assert_int_equal(a.status, 200);
	assert_string_equal(a.act.mdm, "jamf");
	assert_string_equal(a.act.device, "1759c0fd-c8da");
	assert_int_equal(atomic_load(&f->fk[1].actions), 1);
	assert_int_equal(atomic_load(&f->fk[0].actions), 0);
}

/* The journal's fdatasync of the intent comes before the MDM is asked, not just its write. */
static void test_intent_synced_before_sent(void **state)
{
	struct fix *f = *state;
	struct action_answer a;
	struct ev got[3];

	start_x(f);
	run(f, ROLE_ACTION, "0026B424FEB4", ACTION_CORPORATE_WIPE, "k1", &a);
	assert_int_equal(a.status, 200);
	/* The intent, written then synced; the MDM; the outcome, written then synced. */
	assert_int_equal(ev_copy(got, 3), 3);
	assert_int_equal(got[0].kind, EV_SYNC);
	assert_true(got[0].journal);
	assert_true(got[0].pending);
	assert_int_equal(got[1].kind, EV_ACTION);
	assert_int_equal(got[2].kind, EV_SYNC);
	assert_true(got[2].journal);
	assert_false(got[2].pending);
}

/*
 * The answer to a wipe (key k1) whose intent the journal could not take: 503, the MDM never
 * asked, and neither the device nor the key taken.
 */
static void assert_refused_unjournalled(struct fix *f, const struct action_answer *a)
{
	struct journal_action ja;

	assert_int_equal(a->status, 503);
	assert_false(a->has_action);
	assert_non_null(strstr(a->error, "nothing was sent"));
	assert_int_equal(atomic_load(&f->fk[0].actions), 0);
	assert_int_equal(journal_device_open(f->j, "0026B424FEB4", &ja), MDM_ERR_NOTFOUND);
	assert_int_equal(journal_find_key(f->j, "k1", &ja), MDM_ERR_NOTFOUND);
}

/* The intent written but its fdatasync failing (EIO): 503, nothing sent. */
static void test_intent_sync_fails(void **state)
{
	struct fix *f = *state;
	struct action_answer a;
	struct ev got[1];

	start_x(f);
	atomic_store(&sync_errno, EIO);
	run(f, ROLE_ACTION, "0026B424FEB4", ACTION_CORPORATE_WIPE, "k1", &a);
	atomic_store(&sync_errno, 0);
	assert_refused_unjournalled(f, &a);
	assert_non_null(strstr(a.error, strerror(EIO)));
	/* It was the intent's sync that failed, and nothing came after it. */
	assert_int_equal(ev_copy(got, 1), 1);
	assert_int_equal(got[0].kind, EV_SYNC);
	assert_true(got[0].journal && got[0].pending && got[0].failed);
	/* The journal healed: the same request goes through. */
	run(f, ROLE_ACTION, "0026B424FEB4", ACTION_CORPORATE_WIPE, "k1", &a);
	assert_int_equal(a.status, 200);
	assert_int_equal(atomic_load(&f->fk[0].actions), 1);
}

/*
 * A full disk, for real: RLIMIT_FSIZE a few bytes past the journal's end makes the intent's
 * write stop part way and then fail with EFBIG (root is not exempt, unlike file modes).
 * SIGXFSZ is ignored meanwhile, or the kernel's signal would end the test.
 */
static void test_intent_write_fails(void **state)
{
	struct fix *f = *state;
	struct action_answer a;
	struct rlimit old, lim;
	struct sigaction ign = {.sa_handler = SIG_IGN}, oldsa;
	struct stat sb;

	start_x(f);
	assert_int_equal(stat(f->file, &sb), 0);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = (rlim_t)sb.st_size + 16;
	assert_int_equal(sigaction(SIGXFSZ, &ign, &oldsa), 0);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	/* The fakes answer at once: the whole pipeline runs on this thread, under the limit. */
	run(f, ROLE_ACTION, "0026B424FEB4", ACTION_CORPORATE_WIPE, "k1", &a);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	assert_int_equal(sigaction(SIGXFSZ, &oldsa, NULL), 0);
	assert_refused_unjournalled(f, &a);
	assert_int_equal(stat(f->file, &sb), 0);
	assert_int_equal(sb.st_size, (off_t)lim.rlim_cur); /* it did write, part way */
	run(f, ROLE_ACTION, "0026B424FEB4", ACTION_CORPORATE_WIPE, "k1", &a);
	assert_int_equal(a.status, 200);
	assert_int_equal(atomic_load(&f->fk[0].actions), 1);
}

/* The cache state of the pointer adapter keeps for identifier v. */
static enum cache_state pointer_state(struct cache *c, const char *adapter, enum ident_kind kind,
				      const char *v)
{
	struct ident id;
	struct cache_entry e;
	char key[CACHE_KEY_MAX + 1], why[128];
	enum cache_state st;

	assert_int_equal(ident_parse(kind, v, strlen(v), &id, why, sizeof(why)), MDM_OK);
	assert_int_equal(lookup_pointer_key("mdmgw", adapter, &id, key, sizeof(key)), MDM_OK);
	assert_int_equal(cache_get(c, key, &e), MDM_OK);
	st = e.state;
	cache_entry_clear(&e);
	return st;
}

/* A sent action purges what the cache holds for every identifier of the device's record. */
static void test_purge_after_sent(void **state)
{
	struct fix *f = *state;
	struct cache_mem_config ccfg = {.max_entries = 1000, .shards = 4, .max_value = 1 << 20};
	struct cache *c = cache_mem_create(&ccfg);
	struct lookup_config lcfg = {.ads = f->ads,
				     .nads = f->nads,
				     .cache = c,
				     .ns = "mdmgw",
				     .timeout_ms = 1000,
				     .lock_wait_ms = 100,
				     .fresh_ttl_ms = 60000,
				     .stale_ttl_ms = 300000,
				     .negative_ttl_ms = 30000,
				     .max_batch = 10};
	struct lookup *l;
	const char *ids[3] = {"0026B424FEB4", "0026B424FEB5", "1759c0fd-c8da"};
	const enum ident_kind kinds[3] = {IDENT_MAC, IDENT_MAC, IDENT_GUID};
	struct ident q[3];
	struct merge_result r[3];
	struct action_answer a;
	char why[128];

	assert_non_null(c);
	assert_int_equal(device_add_mac(&f->fk[0].dev, "0026B424FEB5"), MDM_OK);
	snprintf(f->fk[0].dev.guid, sizeof(f->fk[0].dev.guid), "%s", ids[2]);
	l = lookup_create(&lcfg);
	assert_non_null(l);
	for (int i = 0; i < 3; i++)
		assert_int_equal(
		    ident_parse(kinds[i], ids[i], strlen(ids[i]), &q[i], why, sizeof(why)), MDM_OK);
	assert_int_equal(lookup_many(l, q, 3, r), MDM_OK);
	for (int i = 0; i < 3; i++) {
		merge_result_clear(&r[i]);
		assert_int_equal(pointer_state(c, "intune", kinds[i], ids[i]), CACHE_FRESH);
		assert_int_equal(pointer_state(c, "jamf", kinds[i], ids[i]), CACHE_FRESH);
	}
	start_x_lookup(f, l);
	/* Refused: the MDM's state did not change, the cache stays. */
	f->fk[0].dev.ownership = OWN_PERSONAL;
	run(f, ROLE_ACTION, "0026B424FEB4", ACTION_FULL_WIPE, "p1", &a);
	assert_int_equal(a.status, 403);
	assert_int_equal(pointer_state(c, "intune", IDENT_MAC, ids[0]), CACHE_FRESH);
	/* Sent, asked by one MAC: the other MAC and the GUID go too, at every adapter. */
	run(f, ROLE_ACTION, "0026B424FEB4", ACTION_CORPORATE_WIPE, "w1", &a);
	assert_int_equal(a.status, 200);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(pointer_state(c, "intune", kinds[i], ids[i]), CACHE_MISS);
		assert_int_equal(pointer_state(c, "jamf", kinds[i], ids[i]), CACHE_MISS);
	}
	actions_destroy(f->x);
	f->x = NULL;
	lookup_destroy(l);
	cache_destroy(c);
}

static void test_parse_device_and_key(void **state)
{
	struct ident id;
	char why[128];

	(void)state;
	assert_int_equal(actions_parse_device("aabb.ccdd.eeff", &id, why, sizeof(why)), MDM_OK);
	assert_int_equal(id.kind, IDENT_MAC);
	assert_string_equal(id.value, "AABBCCDDEEFF");
	assert_int_equal(actions_parse_device("1759c0fd-c8da", &id, why, sizeof(why)), MDM_OK);
	assert_int_equal(id.kind, IDENT_GUID);
	assert_int_not_equal(actions_parse_device("", &id, why, sizeof(why)), MDM_OK);
	assert_true(actions_key_ok("abc-123_!"));
	assert_false(actions_key_ok(""));
	assert_false(actions_key_ok("a b"));
	assert_false(actions_key_ok("caf\xc3\xa9"));
	assert_int_equal(actions_state_status(JOURNAL_SENT), 200);
	assert_int_equal(actions_state_status(JOURNAL_REFUSED), 403);
	assert_int_equal(actions_state_status(JOURNAL_UNKNOWN), 409);
	assert_int_equal(actions_state_status(JOURNAL_REJECTED), 502);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_sent_repeat_and_reuse, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pending_conflicts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_which_mdm, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_first_mdm_unanswered, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_held_by_other_identifier, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lookup_deadline, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ownership_policy, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_roles, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rejected_and_failed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unknown_after_reopen, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ise_key, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_guid_routing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_intent_synced_before_sent, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_intent_sync_fails, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_intent_write_fails, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_purge_after_sent, setup, teardown),
	    cmocka_unit_test(test_parse_device_and_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
