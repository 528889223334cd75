/* test_coa: the CoA dispatcher against a fake sink, the webhook signature and the MnT XML. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "unit.h"

#include "../../core/clock.h"
#include "../../gateway/app/config.h"
#include "../../gateway/coa/coa.h"
#include "../../gateway/coa/coa_mnt.h"
#include "../../gateway/coa/coa_webhook.h"
#include "../../gateway/server/route.h"

#define MAXSENDS 64

/* A fake sink: answers at once from a script (or default), or holds answers for release. */
struct fake {
	pthread_mutex_t mu;
	bool hold;
	enum coa_outcome dflt;
	size_t nsends;
	char ids[MAXSENDS][160];
	char sess[MAXSENDS][64];
	int64_t at[MAXSENDS];
	coa_sink_cb held_cb[MAXSENDS];
	void *held_arg[MAXSENDS];
	size_t nheld;
	int inflight, max_inflight;
};

static enum mdm_err fake_send(void *sink, const struct transition *ev, const struct coa_session *s,
			      coa_sink_cb cb, void *arg)
{
	struct fake *f = ((struct coa_sink *)sink)->priv;
	struct coa_result r = {.outcome = f->dflt};
	bool hold;

	pthread_mutex_lock(&f->mu);
	if (f->nsends < MAXSENDS) {
		snprintf(f->ids[f->nsends], sizeof(f->ids[0]), "%s", ev->id);
		snprintf(f->sess[f->nsends], sizeof(f->sess[0]), "%s", s ? s->acct_session_id : "");
		f->at[f->nsends] = clock_mono_ms();
	}
	f->nsends++;
	hold = f->hold;
	if (++f->inflight > f->max_inflight)
		f->max_inflight = f->inflight;
	if (hold) {
		f->held_cb[f->nheld] = cb;
		f->held_arg[f->nheld++] = arg;
	} else {
		f->inflight--;
	}
	pthread_mutex_unlock(&f->mu);
	if (!hold) {
		snprintf(r.detail, sizeof(r.detail), "fake %s", coa_outcome_name(r.outcome));
		cb(arg, &r);
	}
	return MDM_OK;
}

/* release: answers the oldest held send with o. */
static void release(struct fake *f, enum coa_outcome o)
{
	struct coa_result r = {.outcome = o};
	coa_sink_cb cb;
	void *arg;

	pthread_mutex_lock(&f->mu);
	assert_true(f->nheld > 0);
	cb = f->held_cb[0];
	arg = f->held_arg[0];
	memmove(f->held_cb, f->held_cb + 1, (f->nheld - 1) * sizeof(f->held_cb[0]));
	memmove(f->held_arg, f->held_arg + 1, (f->nheld - 1) * sizeof(f->held_arg[0]));
	f->nheld--;
	f->inflight--;
	pthread_mutex_unlock(&f->mu);
	cb(arg, &r);
}

static void fake_destroy(void *sink)
{
	struct coa_sink *k = sink;
	struct fake *f = k->priv;

	while (f->nheld)
		release(f, COA_ERROR);
	free(k);
}

static const struct coa_sink_ops fake_ops = {"fake", false, fake_send, fake_destroy};
static const struct coa_sink_ops fake_session_ops = {"fakeradius", true, fake_send, fake_destroy};

static struct coa_sink *fake_sink(struct fake *f, bool sessions)
{
	struct coa_sink *k = calloc(1, sizeof(*k));

	assert_non_null(k);
	k->ops = sessions ? &fake_session_ops : &fake_ops;
	snprintf(k->name, sizeof(k->name), "%s", k->ops->type);
	k->priv = f;
	return k;
}

static void fake_init(struct fake *f, enum coa_outcome dflt, bool hold)
{
	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->mu, NULL);
	f->dflt = dflt;
	f->hold = hold;
}

static size_t sends(struct fake *f)
{
	size_t n;

	pthread_mutex_lock(&f->mu);
	n = f->nsends;
	pthread_mutex_unlock(&f->mu);
	return n;
}

static const struct coa_config CFG = {0, 3, 10, 100, 2000};

static struct transition event(const char *mac, int gen)
{
	struct transition ev;

	memset(&ev, 0, sizeof(ev));
	snprintf(ev.mac, sizeof(ev.mac), "%s", mac);
	snprintf(ev.id, sizeof(ev.id), "%s@%d", mac, gen);
	snprintf(ev.from, sizeof(ev.from), "compliant");
	snprintf(ev.to, sizeof(ev.to), "noncompliant");
	ev.at_ms = clock_wall_ms();
	return ev;
}

/* wait_list: until which has at least n deliveries (5 s at most); how many it has. */
static size_t wait_list(struct coa *c, enum coa_list_which which, size_t n,
			struct coa_delivery *out)
{
	size_t got = 0;

	for (int i = 0; i < 500 && (got = coa_list(c, which, out, COA_KEEP)) < n; i++)
		nanosleep(&(struct timespec){0, 10000000}, NULL);
	return got;
}

static struct coa_delivery ds[COA_KEEP];

static void test_ok(void **state)
{
	struct fake f;
	struct coa_sink *k;
	struct coa *c;
	struct transition ev = event("AABBCCDDEEFF", 1);

	(void)state;
	fake_init(&f, COA_OK, false);
	k = fake_sink(&f, false);
	c = coa_create(&CFG, &k, 1, NULL);
	assert_non_null(c);
	assert_int_equal(coa_submit(c, &ev), MDM_OK);
	assert_int_equal(wait_list(c, COA_LIST_ALL, 1, ds), 1);
	assert_string_equal(ds[0].outcome, "ok");
	assert_string_equal(ds[0].event_id, "AABBCCDDEEFF@1");
	assert_string_equal(ds[0].sink, "fake");
	assert_int_equal(ds[0].attempts, 1);
	assert_int_equal(coa_list(c, COA_LIST_SENT, ds, COA_KEEP), 1);
	assert_int_equal(coa_list(c, COA_LIST_FAILED, ds, COA_KEEP), 0);
	coa_destroy(c);
	assert_int_equal(f.nsends, 1);
}

static void test_retries_then_failed(void **state)
{
	struct fake f;
	struct coa_sink *k;
	struct coa *c;
	struct transition ev = event("AABBCCDDEEFF", 1);
	struct coa_stats st;

	(void)state;
	fake_init(&f, COA_NO_ANSWER, false);
	k = fake_sink(&f, false);
	c = coa_create(&CFG, &k, 1, NULL);
	assert_int_equal(coa_submit(c, &ev), MDM_OK);
	assert_int_equal(wait_list(c, COA_LIST_FAILED, 1, ds), 1);
	assert_string_equal(ds[0].outcome, "failed");
	assert_int_equal(ds[0].attempts, 3);
	assert_int_equal(sends(&f), 3);
	/* back-off: 10 ms then 20 ms between the attempts */
	assert_true(f.at[1] - f.at[0] >= 10);
	assert_true(f.at[2] - f.at[1] >= 20);
	coa_get_stats(c, &st);
	assert_int_equal(st.attempts[0][COA_NO_ANSWER], 3);
	assert_int_equal(st.failed, 1);
	coa_destroy(c);
}

static void test_refused_final(void **state)
{
	struct fake f;
	struct coa_sink *k;
	struct coa *c;
	struct transition ev = event("AABBCCDDEEFF", 1);

	(void)state;
	fake_init(&f, COA_REFUSED, false);
	k = fake_sink(&f, false);
	c = coa_create(&CFG, &k, 1, NULL);
	assert_int_equal(coa_submit(c, &ev), MDM_OK);
	assert_int_equal(wait_list(c, COA_LIST_ALL, 1, ds), 1);
	assert_string_equal(ds[0].outcome, "refused");
	nanosleep(&(struct timespec){0, 100000000}, NULL); /* would be two back-offs */
	assert_int_equal(sends(&f), 1);
	assert_int_equal(coa_list(c, COA_LIST_FAILED, ds, COA_KEEP), 1);
	coa_destroy(c);
}

static size_t two_sessions(void *arg, const char *mac, struct coa_session *out, size_t max)
{
	int *calls = arg;

	(*calls)++;
	assert_true(max >= 2);
	memset(out, 0, 2 * sizeof(*out));
	for (int i = 0; i < 2; i++) {
		snprintf(out[i].mac, sizeof(out[i].mac), "%s", mac);
		snprintf(out[i].nas_ip, sizeof(out[i].nas_ip), "10.0.0.%d", i + 1);
		snprintf(out[i].acct_session_id, sizeof(out[i].acct_session_id), "S%d", i);
	}
	return strcmp(mac, "AABBCCDDEEFF") == 0 ? 2 : 0;
}

static void test_sessions(void **state)
{
	struct fake f;
	struct coa_sink *k;
	struct coa *c;
	struct transition a = event("AABBCCDDEEFF", 1), b = event("112233445566", 1);
	int calls = 0;

	(void)state;
	fake_init(&f, COA_OK, false);
	k = fake_sink(&f, true);
	c = coa_create(&CFG, &k, 1, &(struct coa_hooks){two_sessions, &calls, NULL, NULL});
	assert_int_equal(coa_submit(c, &a), MDM_OK);
	assert_int_equal(coa_submit(c, &b), MDM_OK);
	assert_int_equal(wait_list(c, COA_LIST_ALL, 3, ds), 3);
	assert_int_equal(sends(&f), 2); /* one per session of a; b has none */
	assert_true(strcmp(f.sess[0], "S0") == 0 || strcmp(f.sess[1], "S0") == 0);
	assert_true(strcmp(f.sess[0], "S1") == 0 || strcmp(f.sess[1], "S1") == 0);
	for (size_t i = 0; i < 3; i++)
		assert_string_equal(ds[i].outcome, strcmp(ds[i].event_id, "112233445566@1") == 0
						       ? "no_session"
						       : "ok");
	assert_int_equal(coa_list(c, COA_LIST_FAILED, ds, COA_KEEP), 0);
	coa_destroy(c);
	assert_int_equal(calls, 2);
}

static void test_no_sessions_cb(void **state)
{
	struct fake f;
	struct coa_sink *k;
	struct coa *c;
	struct transition a = event("AABBCCDDEEFF", 1);

	(void)state;
	fake_init(&f, COA_OK, false);
	k = fake_sink(&f, true);
	c = coa_create(&CFG, &k, 1, NULL);
	assert_int_equal(coa_submit(c, &a), MDM_OK);
	assert_int_equal(wait_list(c, COA_LIST_ALL, 1, ds), 1);
	assert_string_equal(ds[0].outcome, "no_session");
	coa_destroy(c);
	assert_int_equal(f.nsends, 0);
}

static bool claim_odd(void *arg, const char *id)
{
	int *calls = arg;

	(*calls)++;
	return id[strlen(id) - 1] % 2 == 1;
}

static void test_claim(void **state)
{
	struct fake f;
	struct coa_sink *k;
	struct coa *c;
	struct transition a = event("AABBCCDDEEFF", 1), b = event("112233445566", 2);
	int calls = 0;

	(void)state;
	fake_init(&f, COA_NO_ANSWER, false);
	k = fake_sink(&f, false);
	c = coa_create(&CFG, &k, 1, &(struct coa_hooks){NULL, NULL, claim_odd, &calls});
	assert_int_equal(coa_submit(c, &a), MDM_OK);
	assert_int_equal(coa_submit(c, &b), MDM_OK);
	assert_int_equal(wait_list(c, COA_LIST_FAILED, 1, ds), 1);
	assert_int_equal(wait_list(c, COA_LIST_ALL, 2, ds), 2);
	coa_destroy(c);
	assert_int_equal(calls, 2); /* once per event, not per attempt */
	assert_int_equal(f.nsends, 3);
	for (size_t i = 0; i < f.nsends; i++)
		assert_string_equal(f.ids[i], "AABBCCDDEEFF@1");
	assert_string_equal(ds[1].outcome, "skipped");
	assert_string_equal(ds[1].detail, "sent by another instance");
}

static void test_one_in_flight_supersede(void **state)
{
	struct fake f;
	struct coa_sink *k;
	struct coa *c;
	struct transition e1 = event("AABBCCDDEEFF", 1), e2 = event("AABBCCDDEEFF", 2),
			  e3 = event("AABBCCDDEEFF", 3), o = event("112233445566", 1);

	(void)state;
	fake_init(&f, COA_OK, true);
	k = fake_sink(&f, false);
	c = coa_create(&CFG, &k, 1, NULL);
	assert_int_equal(coa_submit(c, &e1), MDM_OK);
	for (int i = 0; i < 500 && sends(&f) < 1; i++)
		nanosleep(&(struct timespec){0, 10000000}, NULL);
	assert_int_equal(coa_submit(c, &e2), MDM_OK);
	assert_int_equal(coa_submit(c, &e3), MDM_OK);
	assert_int_equal(coa_submit(c, &o), MDM_OK); /* another device is not held up */
	assert_int_equal(wait_list(c, COA_LIST_ALL, 1, ds), 1);
	assert_string_equal(ds[0].outcome, "superseded");
	assert_string_equal(ds[0].event_id, "AABBCCDDEEFF@2");
	for (int i = 0; i < 500 && sends(&f) < 2; i++)
		nanosleep(&(struct timespec){0, 10000000}, NULL);
	assert_int_equal(sends(&f), 2);
	assert_string_equal(f.ids[1], "112233445566@1");
	release(&f, COA_OK); /* e1 */
	for (int i = 0; i < 500 && sends(&f) < 3; i++)
		nanosleep(&(struct timespec){0, 10000000}, NULL);
	assert_int_equal(sends(&f), 3);
	assert_string_equal(f.ids[2], "AABBCCDDEEFF@3");
	release(&f, COA_OK);
	release(&f, COA_OK);
	assert_int_equal(wait_list(c, COA_LIST_SENT, 3, ds), 3);
	coa_destroy(c);
	assert_int_equal(f.nsends, 3);
	assert_int_equal(f.max_inflight, 2); /* AABB... and 1122..., never two of one session */
}

static void test_rate(void **state)
{
	struct fake f;
	struct coa_sink *k;
	struct coa *c;
	struct coa_config cfg = CFG;

	(void)state;
	cfg.rate_per_sec = 10; /* bursts of 10, then one per 100 ms */
	fake_init(&f, COA_OK, false);
	k = fake_sink(&f, false);
	c = coa_create(&cfg, &k, 1, NULL);
	for (int i = 0; i < 15; i++) {
		char mac[13];
		struct transition ev;

		snprintf(mac, sizeof(mac), "0000000000%02d", i);
		ev = event(mac, 1);
		assert_int_equal(coa_submit(c, &ev), MDM_OK);
	}
	assert_int_equal(wait_list(c, COA_LIST_SENT, 15, ds), 15);
	coa_destroy(c);
	/* 5 past the burst at 10 per second: at least ~400 ms after the first send */
	assert_true(f.at[14] - f.at[0] >= 400);
	assert_true(f.at[9] - f.at[0] < 300);
}

static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;

static bool claim_gate(void *arg, const char *id)
{
	(void)arg, (void)id;
	pthread_mutex_lock(&gate_mu);
	pthread_mutex_unlock(&gate_mu);
	return true;
}

static void test_queue_full(void **state)
{
	struct fake f;
	struct coa_sink *k;
	struct coa *c;
	struct coa_config cfg = CFG;
	struct coa_stats st;
	int busy = 0;

	(void)state;
	cfg.queue_max = 2;
	fake_init(&f, COA_OK, false);
	k = fake_sink(&f, false);
	pthread_mutex_lock(&gate_mu); /* the worker stops in claim: the queue fills */
	c = coa_create(&cfg, &k, 1, &(struct coa_hooks){NULL, NULL, claim_gate, NULL});
	for (int i = 0; i < 5; i++) {
		struct transition ev = event("AABBCCDDEEFF", i);
		enum mdm_err e = coa_submit(c, &ev);

		assert_true(e == MDM_OK || e == MDM_ERR_BUSY);
		busy += e == MDM_ERR_BUSY;
	}
	pthread_mutex_unlock(&gate_mu);
	assert_true(busy >= 2);
	coa_get_stats(c, &st);
	assert_int_equal(st.queue_full, (uint64_t)busy);
	coa_destroy(c);
}

static void test_signature(void **state)
{
	char sig[128];

	(void)state;
	assert_int_equal(
	    coa_webhook_sign("0123456789abcdef", 1700000000, "{\"a\":1}", 7, sig, sizeof(sig)),
	    MDM_OK);
	assert_string_equal(
	    sig,
	    "t=1700000000,v1=9eb18f493f8ec135d9eb2dad817c369bb4e9cbfa818657897a7437c1cd8c3a23");
	assert_int_equal(coa_webhook_sign("", 1, "x", 1, sig, sizeof(sig)), MDM_ERR_INVALID);
}

static void test_webhook_body(void **state)
{
	struct transition ev = event("AABBCCDDEEFF", 7);
	struct buf b;

	(void)state;
	ev.at_ms = 1700000000000;
	buf_init(&b, 4096);
	assert_int_equal(coa_webhook_body(&ev, &b), MDM_OK);
	assert_non_null(strstr(b.mem, "\"event\":\"compliance_changed\""));
	assert_non_null(strstr(b.mem, "\"id\":\"AABBCCDDEEFF@7\""));
	assert_non_null(strstr(b.mem, "\"guid\":null"));
	assert_non_null(strstr(b.mem, "\"at\":\"2023-11-14T22:13:20.000Z\""));
	buf_free(&b);
	snprintf(ev.to, sizeof(ev.to), "blocked");
	assert_string_equal(coa_webhook_event_name(&ev), "blocked");
	snprintf(ev.to, sizeof(ev.to), "unregistered");
	assert_string_equal(coa_webhook_event_name(&ev), "registration_changed");
}

static void test_mnt_xml(void **state)
{
	static const char ok[] =
	    "<?xml version=\"1.0\"?><sessionParameters><passed>true</passed>"
	    "<acs_server>ise-psn1</acs_server><nas_ip_address>10.1.1.1</nas_ip_address>"
	    "<framed_ip_address> 10.2.2.2 </framed_ip_address></sessionParameters>";
	static const char none[] = "<sessionParameters/>";
	static const char dtd[] = "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"b\">]>"
				  "<sessionParameters><acs_server>&a;</acs_server>"
				  "</sessionParameters>";
	static const char inj[] =
	    "<sessionParameters><acs_server>psn/../x</acs_server></sessionParameters>";
	struct coa_mnt_session s;
	char why[200];
	bool res = false;

	(void)state;
	assert_int_equal(coa_mnt_parse_session(ok, strlen(ok), &s, why, sizeof(why)), MDM_OK);
	assert_string_equal(s.psn, "ise-psn1");
	assert_string_equal(s.nas_ip, "10.1.1.1");
	assert_string_equal(s.framed_ip, "10.2.2.2");
	assert_int_equal(coa_mnt_parse_session(none, strlen(none), &s, why, sizeof(why)),
			 MDM_ERR_NOTFOUND);
	assert_int_equal(coa_mnt_parse_session("", 0, &s, why, sizeof(why)), MDM_ERR_NOTFOUND);
	assert_int_equal(coa_mnt_parse_session(dtd, strlen(dtd), &s, why, sizeof(why)),
			 MDM_ERR_PARSE);
	assert_int_equal(coa_mnt_parse_session(inj, strlen(inj), &s, why, sizeof(why)),
			 MDM_ERR_PARSE);
	assert_int_equal(coa_mnt_parse_session("<a><b>", 6, &s, why, sizeof(why)), MDM_ERR_PARSE);
	static const char yes[] =
	    "<remoteCoA requestType=\"reauth\"><results>true</results></remoteCoA>";
	assert_int_equal(coa_mnt_parse_result(yes, strlen(yes), &res, why, sizeof(why)), MDM_OK);
	assert_true(res);
	assert_int_equal(coa_mnt_parse_result("<remoteCoA><results>false</results></remoteCoA>", 47,
					      &res, why, sizeof(why)),
			 MDM_OK);
	assert_false(res);
	assert_int_equal(coa_mnt_parse_result("<remoteCoA/>", 12, &res, why, sizeof(why)),
			 MDM_ERR_PARSE);
}

#define BASE                                                                                       \
	"{\"listen\": {\"cert_file\": \"c.pem\", \"key_file\": \"k.pem\"}, \"accounts\": "         \
	"[{\"user\": \"ise\", \"password_hash\": \"$scrypt$x\", \"roles\": [\"query\"]}], "        \
	"\"adapters\": [{\"name\": \"inv\", \"type\": \"inventory\", \"file\": \"inv.json\"}], "

static void load_coa(const char *coa, enum mdm_err want, const char *why_want)
{
	char json[2048], why[512] = "";
	struct config *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	snprintf(json, sizeof(json), "%s\"coa\": %s}", BASE, coa);
	assert_int_equal(config_load_mem("t.json", json, strlen(json), c, why, sizeof(why)), want);
	if (why_want)
		assert_string_equal(why, why_want);
	free(c);
}

/* The policy's stated worst cases (coa_policy.h, docs/coa.md) are what its formula gives. */
static void test_policy_bound(void **state)
{
	(void)state;
	assert_int_equal(coa_policy_nas_wait_ms(1000, 1), 1000);
	assert_int_equal(coa_policy_nas_wait_ms(1000, 3), 4000);
	assert_int_equal(coa_policy_retry_wait_ms(2000, 1), 2000);
	assert_int_equal(coa_policy_retry_wait_ms(2000, 2), 4000);
	assert_int_equal(coa_policy_radius_attempt_ms(1000, 3), 1000 + 2000 + 4000);
	assert_int_equal(COA_WORST_RADIUS_MS, 27000);
	assert_int_equal(COA_WORST_MNT_MS, 36000);
	assert_int_equal(COA_WORST_WEBHOOK_MS, 21000);
	assert_int_equal(coa_policy_worst_ms(coa_policy_radius_attempt_ms(
						 COA_NAS_TIMEOUT_MS_DEFAULT, COA_NAS_TRIES_DEFAULT),
					     COA_MAX_ATTEMPTS_DEFAULT, COA_BACKOFF_MS_DEFAULT),
			 COA_WORST_RADIUS_MS);
	assert_int_equal(coa_policy_worst_ms(COA_HTTP_TIMEOUT_MS_DEFAULT, COA_MAX_ATTEMPTS_DEFAULT,
					     COA_BACKOFF_MS_DEFAULT),
			 COA_WORST_WEBHOOK_MS);
	assert_int_equal(coa_policy_worst_ms(500, 1, 2000), 500); /* one attempt: no back-off */
}

static void test_config(void **state)
{
	struct config *c = calloc(1, sizeof(*c));
	char why[512] = "";
	const char *j = BASE "\"coa\": {}}";

	(void)state;
	assert_int_equal(config_load_mem("t.json", j, strlen(j), c, why, sizeof(why)), MDM_OK);
	assert_true(c->coa.rate_per_sec == 50);
	assert_int_equal(c->coa.max_attempts, 3);
	assert_int_equal(c->coa.backoff_ms, 2000);
	assert_int_equal(c->coa.queue_max, 100000);
	assert_string_equal(c->coa.mnt.url, "");
	assert_int_equal(c->coa.mnt.timeout_ms, 5000);
	free(c);
	load_coa("{\"mnt\": {\"url\": \"https://mnt.example\", \"ca_file\": \"/etc/passwd\", "
		 "\"user\": \"u\", \"password\": \"p\", \"reauth_type\": \"rerun\", "
		 "\"disconnect_port\": \"bounce\"}, \"webhook\": {\"url\": "
		 "\"https://h.example/x\", \"ca_file\": \"/etc/passwd\", \"secret\": "
		 "\"0123456789abcdef\"}}",
		 MDM_OK, NULL);
	load_coa("{\"max_attempts\": 0}", MDM_ERR_CONFIG,
		 "t.json: coa.max_attempts: must be an integer from 1 to 10");
	load_coa("{\"mnt\": {\"url\": \"https://mnt.example\", \"ca_file\": \"/etc/passwd\", "
		 "\"user\": \"u\"}}",
		 MDM_ERR_CONFIG, "t.json: coa.mnt.password: required when url is set");
	load_coa("{\"mnt\": {\"user\": \"u\"}}", MDM_ERR_CONFIG,
		 "t.json: coa.mnt.url: required: the other keys mean nothing without it");
	load_coa("{\"mnt\": {\"url\": \"http://mnt.example\"}}", MDM_ERR_CONFIG, NULL);
	load_coa("{\"mnt\": {\"reauth_type\": \"often\"}}", MDM_ERR_CONFIG, NULL);
	load_coa("{\"webhook\": {\"url\": \"https://h.example/x\", \"ca_file\": \"/etc/passwd\", "
		 "\"secret\": \"short\"}}",
		 MDM_ERR_CONFIG, "t.json: coa.webhook.secret: must be at least 16 bytes long");
	load_coa("{\"rate\": 5}", MDM_ERR_CONFIG, "t.json: coa.rate: unknown key");
}

static void test_routes(void **state)
{
	struct route r;

	(void)state;
	route_parse_target("GET", "/api/v1/coa?state=failed", "", &r);
	assert_int_equal(r.kind, ROUTE_COA_LIST);
	assert_string_equal(r.state, "failed");
	route_parse_target("GET", "/api/v1/coa", "", &r);
	assert_int_equal(r.kind, ROUTE_COA_LIST);
	assert_string_equal(r.state, "");
	route_parse_target("GET", "/api/v1/coa?state=maybe", "", &r);
	assert_int_equal(r.kind, ROUTE_BAD);
	assert_int_equal(r.status, 400);
	route_parse_target("GET", "/api/v1/coa?device=x", "", &r);
	assert_int_equal(r.kind, ROUTE_BAD);
	route_parse_target("POST", "/api/v1/coa", "", &r);
	assert_int_equal(r.status, 405);
	route_parse_target("POST", "/api/v1/coa/test", "", &r);
	assert_int_equal(r.kind, ROUTE_COA_TEST);
	route_parse_target("GET", "/api/v1/coa/test", "", &r);
	assert_int_equal(r.status, 405);
	route_parse_target("GET", "/api/v1/coa/other", "", &r);
	assert_int_equal(r.kind, ROUTE_NOT_FOUND);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ok),
	    cmocka_unit_test(test_retries_then_failed),
	    cmocka_unit_test(test_refused_final),
	    cmocka_unit_test(test_sessions),
	    cmocka_unit_test(test_no_sessions_cb),
	    cmocka_unit_test(test_claim),
	    cmocka_unit_test(test_one_in_flight_supersede),
	    cmocka_unit_test(test_rate),
	    cmocka_unit_test(test_queue_full),
	    cmocka_unit_test(test_signature),
	    cmocka_unit_test(test_webhook_body),
	    cmocka_unit_test(test_mnt_xml),
	    cmocka_unit_test(test_policy_bound),
	    cmocka_unit_test(test_config),
	    cmocka_unit_test(test_routes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
