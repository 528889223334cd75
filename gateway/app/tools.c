#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/clock.h"
#include "../../core/log.h"
#include "gateway.h"
#include "tools.h"

int tool_check_config(const char *path)
{
	static struct gateway g;
	int rc = gateway_load(&g, path);

	gateway_free(&g);
	if (rc == 0)
		printf("%s: configuration ok\n", path);
	return rc == 0 ? 0 : 1;
}

/* --- test-connection and query: ask the adapters directly, bypassing the cache ---------------- */

#define TEST_WAIT_MS 30000  /* safety net: adapters bound their own tests */
#define QUERY_MIN_MS 10000  /* a person is waiting, not ISE: allow slow back ends */
#define QUERY_GRACE_MS 1000 /* adapters answer at their deadline: give them time to say so */

struct tool_args {
	const char *conf;
	const char *kind;
	const char *arg; /* the one positional argument */
};

/* tool_args_parse: [-c FILE] [--kind K] ARG in any order; -1 for anything else. */
static int tool_args_parse(int argc, char **argv, bool with_kind, struct tool_args *a)
{
	memset(a, 0, sizeof(*a));
	for (int i = 2; i < argc; i++) {
		bool has_next = i + 1 < argc;

		if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && has_next)
			a->conf = argv[++i];
		else if (with_kind && strcmp(argv[i], "--kind") == 0 && has_next)
			a->kind = argv[++i];
		else if (argv[i][0] != '-' && !a->arg)
			a->arg = argv[i];
		else
			return -1;
	}
	return a->conf && a->arg ? 0 : -1;
}

/* Answers awaited from the engine thread (or from within the call itself). */
struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t pending;
};

static void waiter_init(struct waiter *w, size_t pending)
{
	pthread_mutex_init(&w->mu, NULL);
	clock_cond_init(&w->cv); /* clock_mono_ms deadlines */
	w->pending = pending;
}

static void waiter_destroy(struct waiter *w)
{
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
}

/* waiter_done: one answer arrived; with w->mu held. */
static void waiter_done(struct waiter *w)
{
	if (w->pending > 0 && --w->pending == 0)
		pthread_cond_broadcast(&w->cv);
}

/* waiter_wait: until nothing is pending or deadline_ms (clock_mono_ms); with w->mu held. */
static void waiter_wait(struct waiter *w, int64_t deadline_ms)
{
	while (w->pending > 0)
		if (clock_cond_wait_until(&w->cv, &w->mu, deadline_ms))
			break;
}

/*
 * load_for_tool: the configuration and the adapters a tool asks (all, or only the one named),
 * with the engine. 0, 1 (configuration or adapter refused) or 2 (no adapter of that name).
 */
static int load_for_tool(struct gateway *g, const char *path, const char *only)
{
	const struct config_adapter *ca = NULL;

	if (gateway_load_config(g, path) != 0)
		return 1;
	if (only) {
		for (size_t i = 0; i < g->cfg.nadapters && !ca; i++)
			if (strcmp(g->cfg.adapters[i].name, only) == 0)
				ca = &g->cfg.adapters[i];
		if (!ca) {
			fprintf(stderr, "no adapter named %s; configured: ", only);
			for (size_t i = 0; i < g->cfg.nadapters; i++)
				fprintf(stderr, "%s%s", i ? ", " : "", g->cfg.adapters[i].name);
			fprintf(stderr, "\n");
			return 2;
		}
	}
	return gateway_make_adapters(g, ca) == 0 ? 0 : 1;
}

/* The test's answer; it lives until the adapter is destroyed, which may answer late. */
struct test_wait {
	struct waiter w;
	bool answered;
	struct adapter_test res;
};

static void on_test(void *arg, struct adapter_test *t)
{
	struct test_wait *tw = arg;

	pthread_mutex_lock(&tw->w.mu);
	if (!tw->answered) {
		tw->res = *t;
		tw->answered = true;
		waiter_done(&tw->w);
	}
	pthread_mutex_unlock(&tw->w.mu);
}

/* run_test: adapter_test_connection, waited for; tw->res holds the verdict in every case. */
static void run_test(struct adapter *a, struct test_wait *tw)
{
	enum mdm_err e = adapter_test_connection(a, on_test, tw);

	pthread_mutex_lock(&tw->w.mu);
	if (e == MDM_OK)
		waiter_wait(&tw->w, clock_mono_ms() + TEST_WAIT_MS);
	if (!tw->answered) {
		tw->res.ok = false;
		if (e != MDM_OK)
			snprintf(tw->res.message, sizeof(tw->res.message),
				 "the test could not start: %s", err_str(e));
		else
			snprintf(tw->res.message, sizeof(tw->res.message), "no answer within %d s",
				 TEST_WAIT_MS / 1000);
		tw->answered = true; /* a late answer is dropped */
	}
	pthread_mutex_unlock(&tw->w.mu);
}

static int cmd_test_connection(const char *path, const char *name)
{
	static struct gateway g;
	struct test_wait tw = {.answered = false};
	int rc;

	waiter_init(&tw.w, 1);
	rc = load_for_tool(&g, path, name);
	if (rc == 0) {
		run_test(g.ads[0], &tw);
		printf("%s: %s: %s\n", name, tw.res.ok ? "OK" : "FAILED", tw.res.message);
		rc = tw.res.ok ? 0 : 1;
	}
	gateway_free(&g); /* before tw goes: a late answer still finds it */
	waiter_destroy(&tw.w);
	return rc;
}

/* query: every adapter's own answer, with how long it took. */
struct query;

struct query_slot {
	struct query *q;
	size_t i;
};

struct query {
	struct waiter w;
	int64_t started;
	size_t n;
	struct outcome ocs[CONFIG_MAX_ADAPTERS];
	int64_t elapsed_ms[CONFIG_MAX_ADAPTERS];
	bool answered[CONFIG_MAX_ADAPTERS];
	struct query_slot slots[CONFIG_MAX_ADAPTERS];
};

/* query_answer: slot i's outcome, unless it already has one (a late answer); with w.mu held. */
static void query_answer(struct query *q, size_t i, struct outcome *oc)
{
	if (q->answered[i]) {
		outcome_clear(oc);
		return;
	}
	outcome_move(&q->ocs[i], oc);
	q->elapsed_ms[i] = clock_mono_ms() - q->started;
	q->answered[i] = true;
	waiter_done(&q->w);
}

static void on_lookup(void *arg, struct outcome *oc)
{
	struct query_slot *s = arg;

	pthread_mutex_lock(&s->q->w.mu);
	query_answer(s->q, s->i, oc);
	pthread_mutex_unlock(&s->q->w.mu);
}

/* query_failed: slot i failed without an answer from its adapter; with w.mu held. */
static void query_failed(struct query *q, size_t i, enum fail_kind fail, const char *why)
{
	struct outcome oc;

	outcome_init(&oc);
	outcome_set(&oc, OUTCOME_FAILED, fail, why);
	query_answer(q, i, &oc);
}

static void query_run(struct query *q, struct adapter *const *ads, const struct ident *id,
		      int64_t timeout_ms)
{
	int64_t deadline = clock_mono_ms() + timeout_ms;
	char why[128];

	q->started = clock_mono_ms();
	for (size_t i = 0; i < q->n; i++) {
		enum mdm_err e;

		q->slots[i] = (struct query_slot){q, i};
		e = adapter_lookup(ads[i], id, deadline, on_lookup, &q->slots[i]);
		if (e == MDM_OK)
			continue;
		snprintf(why, sizeof(why), "lookup refused: %s", err_str(e));
		pthread_mutex_lock(&q->w.mu);
		query_failed(q, i, FAIL_INTERNAL, why);
		pthread_mutex_unlock(&q->w.mu);
	}
	pthread_mutex_lock(&q->w.mu);
	waiter_wait(&q->w, deadline + QUERY_GRACE_MS);
	snprintf(why, sizeof(why), "no answer within %lld ms", (long long)timeout_ms);
	for (size_t i = 0; i < q->n; i++)
		if (!q->answered[i])
			query_failed(q, i, FAIL_TIMEOUT, why);
	pthread_mutex_unlock(&q->w.mu);
}

static const char *tri_word(enum tri t)
{
	return t == TRI_TRUE ? "yes" : t == TRI_FALSE ? "no" : "unknown";
}

/* put: " key=value", quoted (with \ escapes) when quote is set or value needs it; not if "". */
static void put(const char *key, const char *v, bool quote)
{
	const char *p;

	if (!v[0])
		return;
	for (p = v; !quote && *p; p++)
		quote = !(isalnum((unsigned char)*p) || strchr("._:@/+-,", *p));
	if (!quote) {
		printf(" %s=%s", key, v);
		return;
	}
	printf(" %s=\"", key);
	for (p = v; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if ((unsigned char)*p < 0x20 || *p == 0x7f)
			printf("\\x%02x", (unsigned char)*p);
		else
			putchar(*p);
	}
	putchar('"');
}

static void print_device(const struct device *d)
{
	char macs[DEVICE_MACS_MAX * (MAC_STR_LEN + 1) + 1] = "", when[CLOCK_ISO_SIZE] = "";

	for (unsigned m = 0; m < d->nmacs && m < DEVICE_MACS_MAX; m++)
		snprintf(macs + strlen(macs), sizeof(macs) - strlen(macs), "%s%s", m ? "," : "",
			 d->macs[m]);
	if (d->last_checkin_ms)
		clock_iso(d->last_checkin_ms, when);
	printf("  device");
	put("source", d->source, false);
	put("vendor_id", d->vendor_id, false);
	printf(" registered=%s compliant=%s", tri_word(d->registered), tri_word(d->compliant));
	put("failure_reason", d->failure_reason, true);
	put("remediation", d->remediation, true);
	printf("\n   ");
	put("guid", d->guid, false);
	put("macs", macs, false);
	printf("%s", d->mac_local ? " (locally administered)" : "");
	put("udid", d->udid, false);
	put("imei", d->imei, false);
	put("meid", d->meid, false);
	put("serial", d->serial, false);
	put("hostname", d->hostname, false);
	put("username", d->username, true);
	printf(" ownership=%s\n   ", ownership_name(d->ownership));
	printf(" disk_encrypted=%s pin_lock=%s jail_broken=%s", tri_word(d->disk_encrypted),
	       tri_word(d->pin_lock), tri_word(d->jail_broken));
	put("manufacturer", d->manufacturer, true);
	put("model", d->model, true);
	put("os_version", d->os_version, false);
	put("phone_number", d->phone_number, false);
	put("last_checkin", when, false);
	printf("\n");
}

static void print_outcome(const struct adapter *a, const struct outcome *oc, int64_t elapsed_ms)
{
	printf("%s: type=%s outcome=%s fail=%s", a->name, a->ops->type, outcome_kind_name(oc->kind),
	       fail_kind_name(oc->fail));
	put("why", oc->why, true);
	printf(" elapsed_ms=%lld devices=%zu\n", (long long)elapsed_ms, oc->ndevs);
	for (size_t i = 0; i < oc->ndevs; i++)
		print_device(&oc->devs[i]);
}

static const char *verdict_word(enum merge_verdict v)
{
	return v == MERGE_FOUND		 ? "found"
	       : v == MERGE_NOT_ENROLLED ? "not_enrolled"
					 : "unavailable";
}

/* print_merged: the answer ISE would get, by the gateway's own merge policy. */
static int print_merged(const struct merge_policy *p, const struct outcome *ocs, size_t n)
{
	struct merge_result mr;

	memset(&mr, 0, sizeof(mr));
	if (merge_outcomes(p, ocs, n, &mr) != MDM_OK) {
		fprintf(stderr, "merge: out of memory\n");
		return -1;
	}
	printf("merged: verdict=%s partial=%s devices=%zu compliance_rule=%s partial_answer=%s\n",
	       verdict_word(mr.verdict), mr.partial ? "yes" : "no", mr.ndevs,
	       p->compliant_requires_all ? "all" : "any",
	       p->partial_is_unavailable ? "unavailable" : "answer");
	for (size_t i = 0; i < mr.ndevs; i++)
		print_device(&mr.devs[i]);
	merge_result_clear(&mr);
	return 0;
}

/* query_ident: value of kind (NULL: a MAC if it parses as one, else a GUID). 0 or -1. */
static int query_ident(const char *kind, const char *value, struct ident *id)
{
	enum ident_kind k = IDENT_GUID;
	char why[256];

	if (kind && ident_kind_parse(kind, &k) != MDM_OK) {
		fprintf(stderr,
			"unknown --kind %s (mac, guid, udid, imei, meid, username, "
			"hostname, serial)\n",
			kind);
		return -1;
	}
	if (!kind && ident_parse(IDENT_MAC, value, strlen(value), id, NULL, 0) == MDM_OK)
		return 0;
	if (ident_parse(k, value, strlen(value), id, why, sizeof(why)) != MDM_OK) {
		fprintf(stderr, "%s: %s\n", value, why);
		return -1;
	}
	return 0;
}

static int cmd_query(const char *path, const char *kind, const char *value)
{
	static struct gateway g;
	static struct query q;
	struct ident id;
	int rc = 0;

	if (query_ident(kind, value, &id) != 0)
		return 2;
	waiter_init(&q.w, 0);
	if (load_for_tool(&g, path, NULL) != 0)
		rc = 1;
	if (rc == 0) {
		struct merge_policy p = gateway_merge_policy(&g.cfg);
		int64_t timeout = g.cfg.api.lookup_timeout_ms;

		q.n = q.w.pending = g.nads;
		for (size_t i = 0; i < q.n; i++)
			outcome_init(&q.ocs[i]);
		query_run(&q, g.ads, &id, timeout > QUERY_MIN_MS ? timeout : QUERY_MIN_MS);
		printf("query: %s %s\n", ident_kind_name(id.kind), id.value);
		for (size_t i = 0; i < q.n; i++) {
			print_outcome(g.ads[i], &q.ocs[i], q.elapsed_ms[i]);
			if (q.ocs[i].kind == OUTCOME_FAILED)
				rc = 1;
		}
		if (print_merged(&p, q.ocs, q.n) != 0)
			rc = 1;
	}
	gateway_free(&g); /* before q goes: a late answer still finds it */
	for (size_t i = 0; i < q.n; i++)
		outcome_clear(&q.ocs[i]);
	waiter_destroy(&q.w);
	return rc;
}

bool tool_is_command(const char *cmd)
{
	return strcmp(cmd, "test-connection") == 0 || strcmp(cmd, "query") == 0;
}

int tool_main(int argc, char **argv)
{
	bool query = strcmp(argv[1], "query") == 0;
	struct tool_args ta;

	if (tool_args_parse(argc, argv, query, &ta) != 0)
		return TOOL_USAGE;
	return query ? cmd_query(ta.conf, ta.kind, ta.arg) : cmd_test_connection(ta.conf, ta.arg);
}
