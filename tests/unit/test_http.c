#include "unit.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../adapters/http.h"
#include "../../core/clock.h"
#include "../../core/log.h"
#include "httpserver.h"

#define MAXCALLS 64

/* The test PKI and the two servers: main (test CA) and other (an unrelated CA). */
static char g_dir[] = "/tmp/mdmgw-test-http-XXXXXX";
static char g_ca[512], g_other_ca[512], g_pin[128];
static struct hsrv g_srv, g_other;

/* One request's outcome, as the callback saw it. */
struct call {
	struct http_result res;
	int calls;
};

struct waiter {
	pthread_mutex_t mu;
	int done;
	struct call c[MAXCALLS];
};

struct slot {
	struct waiter *w;
	int i;
};

static struct slot g_slots[MAXCALLS];

static void on_done(struct http_result *res, void *arg)
{
	struct slot *s = arg;
	struct waiter *w = s->w;

	pthread_mutex_lock(&w->mu);
	if (w->c[s->i].calls++ == 0)
		w->c[s->i].res = *res; /* takes the body */
	else
		buf_free(&res->body);
	w->done++;
	pthread_mutex_unlock(&w->mu);
}

static void waiter_init(struct waiter *w)
{
	int i;

	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->mu, NULL);
	for (i = 0; i < MAXCALLS; i++) {
		g_slots[i].w = w;
		g_slots[i].i = i;
	}
}

static void waiter_free(struct waiter *w)
{
	int i;

	for (i = 0; i < MAXCALLS; i++)
		buf_free(&w->c[i].res.body);
	pthread_mutex_destroy(&w->mu);
}

/* waiter_wait: until n callbacks ran (generous 15 s bound); returns how many ran. */
static int waiter_wait(struct waiter *w, int n)
{
	int64_t end = clock_mono_ms() + 15000;
	int done;

	for (;;) {
		pthread_mutex_lock(&w->mu);
		done = w->done;
		pthread_mutex_unlock(&w->mu);
		if (done >= n || clock_mono_ms() > end)
			return done;
		hsrv_sleep_ms(2);
	}
}

static void url_of(char *url, size_t sz, const struct hsrv *s, const char *path)
{
	snprintf(url, sz, "https://127.0.0.1:%u%s", (unsigned)s->port, path);
}

static void submit(struct http_client *c, const char *url, int64_t timeout_ms, int i)
{
	struct http_request rq = {HTTP_GET, url, NULL, NULL, 0, 0};

	assert_int_equal(http_request(c, &rq, clock_mono_ms() + timeout_ms, on_done, &g_slots[i]),
			 MDM_OK);
}

/* get: one request to path on s, waited for; the outcome lands in w->c[0]. */
static void get(struct waiter *w, struct http_client *c, const struct hsrv *s, const char *path,
		int64_t timeout_ms)
{
	char url[256];

	url_of(url, sizeof(url), s, path);
	submit(c, url, timeout_ms, 0);
	assert_int_equal(waiter_wait(w, 1), 1);
	assert_int_equal(w->c[0].calls, 1);
}

static void base_config(struct http_client_config *cc)
{
	memset(cc, 0, sizeof(*cc));
	cc->name = "test";
	cc->ca_file = g_ca;
}

static struct http_client *client_new(struct http_engine *e, const struct http_client_config *cc)
{
	char why[256] = "";
	struct http_client *c = http_client_create(e, cc, why, sizeof(why));

	if (!c)
		fprintf(stderr, "client: %s\n", why);
	assert_non_null(c);
	return c;
}

/* --- fixtures ------------------------------------------------------------------------------- */

static int group_setup(void **state)
{
	char srv[512], key[512], osrv[512], okey[512], pin[512];
	char *p;

	(void)state;
	/* A proxy from the environment would change every network outcome below. */
	unsetenv("https_proxy");
	unsetenv("HTTPS_PROXY");
	unsetenv("all_proxy");
	unsetenv("ALL_PROXY");
	if (!mkdtemp(g_dir) || hsrv_make_certs(g_dir, "main") || hsrv_make_certs(g_dir, "other"))
		return -1;
	snprintf(g_ca, sizeof(g_ca), "%s/main-ca.pem", g_dir);
	snprintf(g_other_ca, sizeof(g_other_ca), "%s/other-ca.pem", g_dir);
	snprintf(srv, sizeof(srv), "%s/main-srv.pem", g_dir);
	snprintf(key, sizeof(key), "%s/main-srv.key", g_dir);
	snprintf(osrv, sizeof(osrv), "%s/other-srv.pem", g_dir);
	snprintf(okey, sizeof(okey), "%s/other-srv.key", g_dir);
	snprintf(pin, sizeof(pin), "%s/main-srv.pin", g_dir);
	p = hsrv_slurp(pin);
	if (!p)
		return -1;
	snprintf(g_pin, sizeof(g_pin), "sha256//%s", p);
	free(p);
	if (hsrv_start(&g_srv, srv, key) || hsrv_start(&g_other, osrv, okey))
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[600];

	(void)state;
	hsrv_stop(&g_srv);
	hsrv_stop(&g_other);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* --- tests ---------------------------------------------------------------------------------- */

static void test_ok_body(void **state)
{
	struct http_engine *e = http_engine_create(NULL);
	struct http_client_config cc;
	struct http_client *c;
	struct http_client_stats st;
	struct waiter w;

	(void)state;
	assert_non_null(e);
	base_config(&cc);
	c = client_new(e, &cc);
	waiter_init(&w);
	get(&w, c, &g_srv, "/ok", 5000);
	assert_int_equal(w.c[0].res.fail, FAIL_NONE);
	assert_int_equal(w.c[0].res.status, 200);
	assert_string_equal(buf_str(&w.c[0].res.body), "hello");
	assert_string_equal(w.c[0].res.why, "");
	http_client_stats(c, &st);
	assert_int_equal(st.requests, 1);
	assert_int_equal(st.in_flight, 0);
	assert_int_equal(st.queued, 0);
	http_engine_destroy(e);
	waiter_free(&w);
}

static void test_status_passthrough(void **state)
{
	static const char *const paths[] = {"/status?code=404", "/status?code=500", "/nowhere"};
	static const long want[] = {404, 500, 404};
	struct http_engine *e = http_engine_create(NULL);
	struct http_client_config cc;
	struct http_client *c;
	struct http_client_stats st;
	struct waiter w;
	int i;

	(void)state;
	base_config(&cc);
	c = client_new(e, &cc);
	for (i = 0; i < 3; i++) {
		waiter_init(&w);
		get(&w, c, &g_srv, paths[i], 5000);
		assert_int_equal(w.c[0].res.fail, FAIL_NONE);
		assert_int_equal(w.c[0].res.status, want[i]);
		waiter_free(&w);
	}
	http_client_stats(c, &st);
	assert_int_equal(st.requests, 3);
	assert_int_equal(st.failures[FAIL_PROTOCOL] + st.failures[FAIL_UNREACHABLE], 0);
	http_engine_destroy(e);
}

/* Retry-After reaches the caller trimmed; not_before holds a request back that long. */
static void test_retry_after_and_not_before(void **state)
{
	struct http_engine *e = http_engine_create(NULL);
	struct http_client_config cc;
	struct http_client *c;
	struct http_request rq = {HTTP_GET, NULL, NULL, NULL, 0, 0};
	struct waiter w;
	char url[256];
	int64_t t0;

	(void)state;
	base_config(&cc);
	c = client_new(e, &cc);
	waiter_init(&w);
	get(&w, c, &g_srv, "/status?code=429", 5000);
	assert_int_equal(w.c[0].res.status, 429);
	assert_string_equal(w.c[0].res.retry_after, "7");
	waiter_free(&w);
	waiter_init(&w);
	get(&w, c, &g_srv, "/status?code=404", 5000);
	assert_string_equal(w.c[0].res.retry_after, "");
	waiter_free(&w);
	waiter_init(&w);
	url_of(url, sizeof(url), &g_srv, "/ok");
	rq.url = url;
	t0 = clock_mono_ms();
	rq.not_before_ms = t0 + 300;
	assert_int_equal(http_request(c, &rq, t0 + 5000, on_done, &g_slots[0]), MDM_OK);
	assert_int_equal(waiter_wait(&w, 1), 1);
	assert_int_equal(w.c[0].res.status, 200);
	assert_true(clock_mono_ms() - t0 >= 300);
	waiter_free(&w);
	/* A deadline before not_before: the request times out in the queue, never sent. */
	waiter_init(&w);
	t0 = clock_mono_ms();
	rq.not_before_ms = t0 + 2000;
	assert_int_equal(http_request(c, &rq, t0 + 200, on_done, &g_slots[0]), MDM_OK);
	assert_int_equal(waiter_wait(&w, 1), 1);
	assert_int_equal(w.c[0].res.fail, FAIL_TIMEOUT);
	assert_true(clock_mono_ms() - t0 < 1500);
	waiter_free(&w);
	http_engine_destroy(e);
}

static void test_deadline_timeout(void **state)
{
	struct http_engine *e = http_engine_create(NULL);
	struct http_client_config cc;
	struct http_client *c;
	struct http_client_stats st;
	struct waiter w;
	int64_t t0;

	(void)state;
	base_config(&cc);
	c = client_new(e, &cc);
	waiter_init(&w);
	t0 = clock_mono_ms();
	get(&w, c, &g_srv, "/slow?ms=3000", 200);
	assert_int_equal(w.c[0].res.fail, FAIL_TIMEOUT);
	assert_int_equal(w.c[0].res.status, 0);
	assert_non_null(strstr(w.c[0].res.why, "no answer before the deadline"));
	assert_true(clock_mono_ms() - t0 < 2800); /* well before the server would have answered */
	http_client_stats(c, &st);
	assert_int_equal(st.failures[FAIL_TIMEOUT], 1);
	http_engine_destroy(e);
	waiter_free(&w);
}

static void test_connection_refused(void **state)
{
	struct http_engine *e = http_engine_create(NULL);
	struct http_client_config cc;
	struct http_client *c;
	struct waiter w;
	char url[128];
	unsigned short port = hsrv_free_port();

	(void)state;
	assert_true(port != 0);
	base_config(&cc);
	c = client_new(e, &cc);
	waiter_init(&w);
	snprintf(url, sizeof(url), "https://127.0.0.1:%u/ok", (unsigned)port);
	submit(c, url, 5000, 0);
	assert_int_equal(waiter_wait(&w, 1), 1);
	assert_int_equal(w.c[0].res.fail, FAIL_UNREACHABLE);
	assert_non_null(strstr(w.c[0].res.why, "connection refused"));
	http_engine_destroy(e);
	waiter_free(&w);
}

static void test_name_does_not_resolve(void **state)
{
	struct http_engine *e = http_engine_create(NULL);
	struct http_client_config cc;
	struct http_client *c;
	struct waiter w;

	(void)state;
	base_config(&cc);
	c = client_new(e, &cc);
	waiter_init(&w);
	submit(c, "https://nonexistent.invalid/ok", 10000, 0);
	assert_int_equal(waiter_wait(&w, 1), 1);
	assert_int_equal(w.c[0].res.fail, FAIL_UNREACHABLE);
	assert_non_null(strstr(w.c[0].res.why, "does not resolve"));
	http_engine_destroy(e);
	waiter_free(&w);
}

static void test_other_ca_refused(void **state)
{
	struct http_engine *e = http_engine_create(NULL);
	struct http_client_config cc;
	struct http_client *c;
	struct waiter w;

	(void)state;
	base_config(&cc);
	c = client_new(e, &cc);
	waiter_init(&w);
	get(&w, c, &g_other, "/ok", 5000);
	assert_int_equal(w.c[0].res.fail, FAIL_TLS);
	assert_non_null(strstr(w.c[0].res.why, "certificate not trusted"));
	assert_int_equal(w.c[0].res.body.len, 0);
	http_engine_destroy(e);
	waiter_free(&w);
}

/*
 * The system store is never used: OpenSSL's default locations are pointed at the main CA through
 * SSL_CERT_FILE/SSL_CERT_DIR, yet a client configured with the other CA still refuses the main
 * server. And a client without a CA file cannot be created at all.
 */
static void test_system_store_not_used(void **state)
{
	struct http_engine *e = http_engine_create(NULL);
	struct http_client_config cc;
	struct http_client *c;
	struct waiter w;
	char why[256] = "";

	(void)state;
	base_config(&cc);
	cc.ca_file = NULL;
	assert_null(http_client_create(e, &cc, why, sizeof(why)));
	assert_non_null(strstr(why, "CA file is required"));
	cc.ca_file = "";
	assert_null(http_client_create(e, &cc, why, sizeof(why)));
	cc.ca_file = "/nonexistent/ca.pem";
	assert_null(http_client_create(e, &cc, why, sizeof(why)));
	assert_non_null(strstr(why, "cannot be read"));

	setenv("SSL_CERT_FILE", g_ca, 1);
	setenv("SSL_CERT_DIR", g_dir, 1);
	cc.ca_file = g_other_ca;
	c = client_new(e, &cc);
	waiter_init(&w);
	get(&w, c, &g_srv, "/ok", 5000);
	assert_int_equal(w.c[0].res.fail, FAIL_TLS);
	unsetenv("SSL_CERT_FILE");
	unsetenv("SSL_CERT_DIR");
	http_engine_destroy(e);
	waiter_free(&w);
}

static void test_pinned_key(void **state)
{
	struct http_engine *e = http_engine_create(NULL);
	struct http_client_config cc;
	struct http_client *good, *bad;
	struct waiter w;
	char why[256] = "";

	(void)state;
	base_config(&cc);
	cc.pinned_key = g_pin;
	good = client_new(e, &cc);
	cc.pinned_key = "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
	bad = client_new(e, &cc);
	cc.pinned_key = "md5//AAAA";
	assert_null(http_client_create(e, &cc, why, sizeof(why)));
	waiter_init(&w);
	get(&w, good, &g_srv, "/ok", 5000);
	assert_int_equal(w.c[0].res.fail, FAIL_NONE);
	assert_int_equal(w.c[0].res.status, 200);
	waiter_free(&w);
	waiter_init(&w);
	get(&w, bad, &g_srv, "/ok", 5000);
	assert_int_equal(w.c[0].res.fail, FAIL_TLS);
	assert_non_null(strstr(w.c[0].res.why, "pinned"));
	http_engine_destroy(e);
	waiter_free(&w);
}

static void test_body_cap(void **state)
{
	static const char *const paths[] = {"/big?n=1000", "/big?n=1001", "/big?n=5000000"};
	struct http_engine *e = http_engine_create(NULL);
	struct http_client_config cc;
	struct http_client *c;
	struct http_client_stats st;
	struct waiter w;
	int i;

	(void)state;
	base_config(&cc);
	cc.max_body = 1000;
	c = client_new(e, &cc);
	for (i = 0; i < 3; i++) {
		waiter_init(&w);
		get(&w, c, &g_srv, paths[i], 10000);
		if (i == 0) {
			assert_int_equal(w.c[0].res.fail, FAIL_NONE);
			assert_int_equal(w.c[0].res.body.len, 1000);
		} else {
			assert_int_equal(w.c[0].res.fail, FAIL_PROTOCOL);
			assert_non_null(strstr(w.c[0].res.why, "body larger than 1000 bytes"));
			assert_int_equal(w.c[0].res.body.len, 0);
		}
		waiter_free(&w);
	}
	http_client_stats(c, &st);
	assert_int_equal(st.failures[FAIL_PROTOCOL], 2);
	http_engine_destroy(e);
}

static void test_basic_auth(void **state)
{
	struct http_engine *e = http_engine_create(NULL);
	struct http_client_config cc;
	struct http_client *right, *wrong;
	struct waiter w;
	char why[256] = "";

	(void)state;
	base_config(&cc);
	cc.auth = HTTP_AUTH_BASIC;
	cc.user = "alice";
	cc.password = NULL;
	assert_null(http_client_create(e, &cc, why, sizeof(why)));
	cc.auth = HTTP_AUTH_NTLM;
	assert_null(http_client_create(e, &cc, why, sizeof(why)));
	assert_non_null(strstr(why, "user and a password"));
	cc.auth = HTTP_AUTH_NEGOTIATE; /* Kerberos needs no password: the ticket cache has it */
	http_client_destroy(client_new(e, &cc));
	cc.auth = HTTP_AUTH_BASIC;
	cc.password = "s3cret";
	right = client_new(e, &cc);
	cc.password = "guess";
	wrong = client_new(e, &cc);
	waiter_init(&w);
	get(&w, right, &g_srv, "/basic", 5000);
	assert_int_equal(w.c[0].res.fail, FAIL_NONE);
	assert_int_equal(w.c[0].res.status, 200);
	assert_string_equal(buf_str(&w.c[0].res.body), "welcome");
	waiter_free(&w);
	waiter_init(&w);
	get(&w, wrong, &g_srv, "/basic", 5000);
	assert_int_equal(w.c[0].res.fail, FAIL_NONE); /* FAIL_AUTH is the caller's call */
	assert_int_equal(w.c[0].res.status, 401);
	http_engine_destroy(e);
	waiter_free(&w);
}

/* Debug output shows the exchange but never the Authorization line nor the password. */
static void test_debug_redacts_credentials(void **state)
{
	struct http_engine_config ec = {1, 0};
	struct http_engine *e;
	struct http_client_config cc;
	struct http_client *c;
	struct waiter w;
	char path[600];
	char *log;
	int fd, saved;

	(void)state;
	snprintf(path, sizeof(path), "%s/debug.log", g_dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	fflush(stderr);
	saved = dup(2);
	dup2(fd, 2);
	log_set_level(LOGL_DEBUG);
	e = http_engine_create(&ec);
	base_config(&cc);
	cc.auth = HTTP_AUTH_BASIC;
	cc.user = "alice";
	cc.password = "s3cret";
	c = client_new(e, &cc);
	waiter_init(&w);
	get(&w, c, &g_srv, "/basic", 5000);
	assert_int_equal(w.c[0].res.status, 200);
	http_engine_destroy(e);
	waiter_free(&w);
	fflush(stderr);
	log_set_level(LOGL_INFO);
	dup2(saved, 2);
	close(saved);
	close(fd);
	log = hsrv_slurp(path);
	assert_non_null(log);
	assert_non_null(strstr(log, "GET /basic"));
	assert_null(strstr(log, "Authorization"));
	assert_null(strstr(log, "YWxpY2U6czNjcmV0"));
	assert_null(strstr(log, "s3cret"));
	assert_null(strstr(log, "welcome")); /* bodies are never printed */
	free(log);
}

static void test_concurrency_limit_and_reuse(void **state)
{
	struct http_engine *e = http_engine_create(NULL);
	struct http_client_config cc;
	struct http_client *c;
	struct http_client_stats st;
	struct waiter w;
	char url[256];
	int i;

	(void)state;
	hsrv_reset(&g_srv);
	base_config(&cc);
	cc.max_connections = 4;
	c = client_new(e, &cc);
	waiter_init(&w);
	url_of(url, sizeof(url), &g_srv, "/slow?ms=20");
	for (i = 0; i < 50; i++)
		submit(c, url, 15000, i);
	http_client_stats(c, &st);
	assert_true(st.in_flight <= 4);
	assert_int_equal(waiter_wait(&w, 50), 50);
	for (i = 0; i < 50; i++) {
		assert_int_equal(w.c[i].calls, 1);
		assert_int_equal(w.c[i].res.fail, FAIL_NONE);
		assert_int_equal(w.c[i].res.status, 200);
	}
	pthread_mutex_lock(&g_srv.mu);
	assert_true(g_srv.conns_max <= 4);
	assert_true(g_srv.conns_total >= 1);
	assert_true(g_srv.conns_total < 50); /* keep-alive: connections were reused */
	pthread_mutex_unlock(&g_srv.mu);
	http_client_stats(c, &st);
	assert_int_equal(st.requests, 50);
	assert_int_equal(st.in_flight, 0);
	assert_int_equal(st.queued, 0);
	http_engine_destroy(e);
	waiter_free(&w);
}

static void test_rate_limit(void **state)
{
	struct http_engine *e = http_engine_create(NULL);
	struct http_client_config cc;
	struct http_client *c;
	struct waiter w;
	char url[256];
	int64_t t0;
	int i;

	(void)state;
	base_config(&cc);
	cc.rate_per_sec = 10;
	c = client_new(e, &cc);
	waiter_init(&w);
	url_of(url, sizeof(url), &g_srv, "/ok");
	t0 = clock_mono_ms();
	for (i = 0; i < 20; i++)
		submit(c, url, 15000, i);
	assert_int_equal(waiter_wait(&w, 20), 20);
	assert_true(clock_mono_ms() - t0 >= 1500); /* 19 gaps of 100 ms */
	for (i = 0; i < 20; i++)
		assert_int_equal(w.c[i].res.status, 200);
	http_engine_destroy(e);
	waiter_free(&w);
}

static void breaker_fail_n(struct http_client *c, int n)
{
	struct waiter w;
	int i;

	for (i = 0; i < n; i++) {
		waiter_init(&w);
		get(&w, c, &g_srv, "/status?code=503", 5000);
		assert_int_equal(w.c[0].res.status, 503);
		waiter_free(&w);
	}
}

static void test_breaker(void **state)
{
	struct http_engine *e = http_engine_create(NULL);
	struct http_client_config cc;
	struct http_client *c;
	struct http_client_stats st;
	struct waiter w;
	unsigned before;
	char url[256];

	(void)state;
	base_config(&cc);
	cc.max_connections = 1;
	cc.breaker_failures = 3;
	cc.breaker_open_ms = 400;
	c = client_new(e, &cc);
	breaker_fail_n(c, 3);
	http_client_stats(c, &st);
	assert_int_equal(st.breaker_opens, 1);
	assert_int_equal(st.breaker_open, 1);

	/* Open: fails at once, never reaching the server. */
	before = hsrv_requests(&g_srv);
	waiter_init(&w);
	get(&w, c, &g_srv, "/ok", 5000);
	assert_int_equal(w.c[0].res.fail, FAIL_UNREACHABLE);
	assert_non_null(strstr(w.c[0].res.why, "circuit open"));
	assert_int_equal(hsrv_requests(&g_srv), before);
	waiter_free(&w);

	assert_int_equal(st.breaker_probing, 0);

	/* After the period a probe goes (the stats say so while it runs); its success closes the
	 * circuit. */
	hsrv_sleep_ms(500);
	waiter_init(&w);
	url_of(url, sizeof(url), &g_srv, "/slow?ms=400");
	submit(c, url, 5000, 0);
	hsrv_sleep_ms(150);
	http_client_stats(c, &st);
	assert_int_equal(st.breaker_open, 1);
	assert_int_equal(st.breaker_probing, 1);
	assert_int_equal(waiter_wait(&w, 1), 1);
	assert_int_equal(w.c[0].res.fail, FAIL_NONE);
	assert_int_equal(w.c[0].res.status, 200);
	assert_int_equal(hsrv_requests(&g_srv), before + 1);
	waiter_free(&w);
	http_client_stats(c, &st);
	assert_int_equal(st.breaker_open, 0);
	assert_int_equal(st.breaker_probing, 0);

	/* Trip again; a failed probe reopens it. */
	breaker_fail_n(c, 3);
	hsrv_sleep_ms(500);
	breaker_fail_n(c, 1); /* the probe */
	http_client_stats(c, &st);
	assert_int_equal(st.breaker_opens, 3);
	assert_int_equal(st.breaker_open, 1);
	before = hsrv_requests(&g_srv);
	waiter_init(&w);
	get(&w, c, &g_srv, "/ok", 5000);
	assert_non_null(strstr(w.c[0].res.why, "circuit open"));
	assert_int_equal(hsrv_requests(&g_srv), before);
	http_engine_destroy(e);
	waiter_free(&w);
}

static void test_destroy_completes_pending(void **state)
{
	struct http_engine *e = http_engine_create(NULL);
	struct http_client_config cc;
	struct http_client *c;
	struct http_client_stats st;
	struct waiter w;
	char url[256];
	int i;

	(void)state;
	base_config(&cc);
	cc.max_connections = 2;
	c = client_new(e, &cc);
	waiter_init(&w);
	url_of(url, sizeof(url), &g_srv, "/slow?ms=1000");
	for (i = 0; i < 6; i++)
		submit(c, url, 10000, i);
	for (i = 0; i < 200; i++) { /* until two are on the wire */
		http_client_stats(c, &st);
		if (st.in_flight == 2)
			break;
		hsrv_sleep_ms(5);
	}
	assert_int_equal(st.in_flight, 2);
	assert_int_equal(st.queued, 4);
	http_engine_destroy(e);
	assert_int_equal(w.done, 6);
	for (i = 0; i < 6; i++) {
		assert_int_equal(w.c[i].calls, 1);
		assert_int_equal(w.c[i].res.fail, FAIL_INTERNAL);
		assert_non_null(strstr(w.c[i].res.why, "shutting down"));
	}
	waiter_free(&w);
}

static void test_client_destroy_completes_pending(void **state)
{
	struct http_engine *e = http_engine_create(NULL);
	struct http_client_config cc;
	struct http_client *c, *other;
	struct waiter w;
	char url[256];
	int i;

	(void)state;
	base_config(&cc);
	cc.max_connections = 1;
	c = client_new(e, &cc);
	other = client_new(e, &cc);
	waiter_init(&w);
	url_of(url, sizeof(url), &g_srv, "/slow?ms=1000");
	for (i = 0; i < 3; i++)
		submit(c, url, 10000, i);
	hsrv_sleep_ms(50);
	http_client_destroy(c);
	assert_int_equal(w.done, 3);
	for (i = 0; i < 3; i++) {
		assert_int_equal(w.c[i].calls, 1);
		assert_int_equal(w.c[i].res.fail, FAIL_INTERNAL);
		assert_non_null(strstr(w.c[i].res.why, "client closed"));
	}
	waiter_free(&w);
	/* The engine and its other clients carry on. */
	waiter_init(&w);
	get(&w, other, &g_srv, "/ok", 5000);
	assert_int_equal(w.c[0].res.status, 200);
	http_engine_destroy(e);
	waiter_free(&w);
}

static void test_invalid_requests(void **state)
{
	struct http_engine *e = http_engine_create(NULL);
	struct http_client_config cc;
	struct http_client *c;
	struct http_request rq = {HTTP_GET, "http://127.0.0.1/ok", NULL, NULL, 0, 0};
	struct http_client_stats st;
	struct waiter w;

	(void)state;
	base_config(&cc);
	c = client_new(e, &cc);
	waiter_init(&w);
	assert_int_equal(http_request(c, &rq, clock_mono_ms() + 1000, on_done, &g_slots[0]),
			 MDM_ERR_INVALID);
	rq.url = NULL;
	assert_int_equal(http_request(c, &rq, clock_mono_ms() + 1000, on_done, &g_slots[0]),
			 MDM_ERR_INVALID);
	rq.url = "https://127.0.0.1/ok";
	assert_int_equal(http_request(c, &rq, clock_mono_ms() + 1000, NULL, NULL), MDM_ERR_INVALID);
	http_client_stats(c, &st);
	assert_int_equal(st.requests, 0);
	http_engine_destroy(e);
	assert_int_equal(w.done, 0);
	waiter_free(&w);
}

static void test_post_with_headers(void **state)
{
	static const char *const hdrs[] = {"Accept: application/json", NULL};
	struct http_engine *e = http_engine_create(NULL);
	struct http_client_config cc;
	struct http_client *c;
	struct waiter w;
	char url[256];
	struct http_request rq = {HTTP_POST, url, hdrs, "{\"a\":1}", 7, 0};

	(void)state;
	base_config(&cc);
	c = client_new(e, &cc);
	waiter_init(&w);
	url_of(url, sizeof(url), &g_srv, "/ok");
	assert_int_equal(http_request(c, &rq, clock_mono_ms() + 5000, on_done, &g_slots[0]),
			 MDM_OK);
	assert_int_equal(waiter_wait(&w, 1), 1);
	assert_int_equal(w.c[0].res.fail, FAIL_NONE);
	assert_int_equal(w.c[0].res.status, 200);
	http_engine_destroy(e);
	waiter_free(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ok_body),
	    cmocka_unit_test(test_status_passthrough),
	    cmocka_unit_test(test_retry_after_and_not_before),
	    cmocka_unit_test(test_deadline_timeout),
	    cmocka_unit_test(test_connection_refused),
	    cmocka_unit_test(test_name_does_not_resolve),
	    cmocka_unit_test(test_other_ca_refused),
	    cmocka_unit_test(test_system_store_not_used),
	    cmocka_unit_test(test_pinned_key),
	    cmocka_unit_test(test_body_cap),
	    cmocka_unit_test(test_basic_auth),
	    cmocka_unit_test(test_debug_redacts_credentials),
	    cmocka_unit_test(test_concurrency_limit_and_reuse),
	    cmocka_unit_test(test_rate_limit),
	    cmocka_unit_test(test_breaker),
	    cmocka_unit_test(test_destroy_completes_pending),
	    cmocka_unit_test(test_client_destroy_completes_pending),
	    cmocka_unit_test(test_invalid_requests),
	    cmocka_unit_test(test_post_with_headers),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
