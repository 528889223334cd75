/*
 * simproc: a vendor simulator (a script in tests/sim) as a child process for the adapters' unit
 * tests: started on a free port with the test CA's certificates, stopped by pid (also when a failed
 * assertion skipped a test's own stop), driven through its /_sim/ control routes, and the
 * callbacks that collect an adapter's answers. Define SIM_SCRIPT (the simulator's path) before
 * including it; the test's set-up fills g_ca, g_cert... (make_certs.sh's files) and g_engine.
 */
#ifndef MDM_TEST_SIMPROC_H
#define MDM_TEST_SIMPROC_H

#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../adapters/adapter.h"
#include "../../adapters/http.h"
#include "../../core/clock.h"

#ifndef SIM_SCRIPT
#error "define SIM_SCRIPT before including simproc.h"
#endif

struct sim {
	pid_t pid;
	unsigned port;
	FILE *out;
};

static char g_ca[512], g_cert[512], g_key[512], g_other_cert[512], g_other_key[512];
static struct http_engine *g_engine;
static struct http_client *g_ctl; /* the simulator's /_sim/ control routes */

/* Simulators still running: a failed assertion jumps past a test's sim_stop, and a stray
 * simulator would keep the test's output pipe open; reset and teardown stop them by pid. */
#define MAX_SIMS 8
static pid_t g_pids[MAX_SIMS];

static void sims_add(pid_t pid)
{
	for (int i = 0; i < MAX_SIMS; i++)
		if (!g_pids[i]) {
			g_pids[i] = pid;
			return;
		}
}

/* sims_stop: stops pid, or every simulator but the shared one when pid is 0. */
static void sims_stop(pid_t pid, pid_t keep)
{
	int st;

	for (int i = 0; i < MAX_SIMS; i++) {
		if (!g_pids[i] || g_pids[i] == keep || (pid && g_pids[i] != pid))
			continue;
		kill(g_pids[i], SIGTERM);
		waitpid(g_pids[i], &st, 0);
		g_pids[i] = 0;
	}
}

/* sim_start: python3 SIM_SCRIPT on a free port; extra: more arguments, NULL-terminated. */
static int sim_start(struct sim *s, const char *cert, const char *key, const char *data,
		     const char *const *extra)
{
	const char *argv[32] = {"python3", SIM_SCRIPT, "--port",     "0",	  "--cert",
				cert,	   "--key",    key,	     "--data",	  data,
				"--user",  SIM_USER,   "--password", SIM_PASSWORD};
	char line[128];
	int fd[2], n = 14;

	for (; extra && *extra && n < 31; extra++)
		argv[n++] = *extra;
	argv[n] = NULL;
	if (pipe(fd) != 0)
		return -1;
	s->pid = fork();
	if (s->pid < 0)
		return -1;
	if (s->pid == 0) {
		dup2(fd[1], 1);
		close(fd[0]);
		close(fd[1]);
		execvp("python3", (char *const *)argv);
		_exit(127);
	}
	close(fd[1]);
	sims_add(s->pid);
	s->out = fdopen(fd[0], "r");
	if (!s->out || !fgets(line, sizeof(line), s->out) ||
	    sscanf(line, "READY %u", &s->port) != 1)
		return -1;
	return 0;
}

static void sim_stop(struct sim *s)
{
	if (s->pid > 0)
		sims_stop(s->pid, 0);
	if (s->out)
		fclose(s->out);
	memset(s, 0, sizeof(*s));
}

/* --- waiting for callbacks ---------------------------------------------------------------------
 */

struct wait {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int calls;
	struct outcome oc;
	struct adapter_page page;
	struct adapter_test test;
	struct action_result act;
	struct http_result res;
};

static void wait_init(struct wait *w)
{
	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	outcome_init(&w->oc);
	outcome_init(&w->page.oc);
}

static void wait_free(struct wait *w)
{
	outcome_clear(&w->oc);
	outcome_clear(&w->page.oc);
	buf_free(&w->res.body);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
}

/* wait_for: until n callbacks came or ms passed; returns how many came. */
static int wait_for(struct wait *w, int n, int64_t ms)
{
	struct timespec ts;
	int calls;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&w->mu);
	while (w->calls < n && pthread_cond_timedwait(&w->cv, &w->mu, &ts) == 0)
		;
	calls = w->calls;
	pthread_mutex_unlock(&w->mu);
	return calls;
}

static void on_lookup(void *arg, struct outcome *oc)
{
	struct wait *w = arg;

	pthread_mutex_lock(&w->mu);
	if (w->calls++ == 0)
		outcome_move(&w->oc, oc);
	else
		outcome_clear(oc);
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void on_page(void *arg, struct adapter_page *pg)
{
	struct wait *w = arg;

	pthread_mutex_lock(&w->mu);
	if (w->calls++ == 0) {
		outcome_move(&w->page.oc, &pg->oc);
		memcpy(w->page.next_cursor, pg->next_cursor, sizeof(pg->next_cursor));
	} else {
		outcome_clear(&pg->oc);
	}
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void on_test(void *arg, struct adapter_test *t)
{
	struct wait *w = arg;

	pthread_mutex_lock(&w->mu);
	if (w->calls++ == 0)
		w->test = *t;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void on_action(void *arg, struct action_result *r)
{
	struct wait *w = arg;

	pthread_mutex_lock(&w->mu);
	if (w->calls++ == 0)
		w->act = *r;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void on_http(struct http_result *res, void *arg)
{
	struct wait *w = arg;

	pthread_mutex_lock(&w->mu);
	if (w->calls++ == 0)
		w->res = *res;
	else
		buf_free(&res->body);
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/* --- the simulator's control routes ------------------------------------------------------------
 */

/* ctl: one request to a /_sim/ route of s; the answer body (a string to free), NULL on failure. */
static char *ctl(const struct sim *s, enum http_method m, const char *path)
{
	char url[256];
	struct http_request rq = {m, url, NULL, NULL, 0, 0};
	struct wait w;
	char *body = NULL;

	snprintf(url, sizeof(url), "https://127.0.0.1:%u%s", s->port, path);
	wait_init(&w);
	if (http_request(g_ctl, &rq, clock_mono_ms() + 5000, on_http, &w) == MDM_OK &&
	    wait_for(&w, 1, 10000) == 1 && w.res.fail == FAIL_NONE && w.res.status == 200)
		body = strdup(buf_str(&w.res.body));
	wait_free(&w);
	return body;
}

static void fault(const struct sim *s, const char *name, int value)
{
	char path[128];
	char *b;

	snprintf(path, sizeof(path), "/_sim/fault?name=%s&value=%d", name, value);
	b = ctl(s, HTTP_POST, path);
	assert_non_null(b);
	free(b);
}

static void sim_reset(const struct sim *s)
{
	char *b = ctl(s, HTTP_POST, "/_sim/reset");

	assert_non_null(b);
	free(b);
}

/* count: counts.<key> or counts.by_route.<route> (key "route") from GET /_sim/counts. */
static long long count(const struct sim *s, const char *key, const char *route)
{
	char *b = ctl(s, HTTP_GET, "/_sim/counts");
	json_t *root, *v;
	long long n = -1;

	assert_non_null(b);
	root = json_loads(b, 0, NULL);
	free(b);
	assert_non_null(root);
	v = json_object_get(json_object_get(root, "counts"), key);
	if (route)
		v = json_object_get(v, route);
	n = v ? json_integer_value(v) : 0;
	json_decref(root);
	return n;
}

#endif
