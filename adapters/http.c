#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../core/clock.h"
#include "../core/log.h"
#include "http.h"

#define DEF_MAX_TOTAL 64L
#define DEF_MAX_CONN 4U
#define DEF_MAX_BODY ((size_t)1 << 20)
#define DEF_CONNECT_MS 5000
#define DEF_OPEN_MS 30000
#define MAX_POLL_MS 1000

enum req_state { RS_QUEUED = 0, RS_RUNNING };

struct http_req {
	struct http_req *next;
	struct http_req *prev; /* only in the engine's running list */
	struct http_client *c;
	enum req_state state;
	CURL *easy;
	struct curl_slist *hdrs;
	char *url;
	char *body;
	size_t body_len;
	enum http_method method;
	int64_t deadline;
	int64_t not_before;
	http_done_cb cb;
	void *arg;
	int toobig; /* the write callback refused bytes past the cap */
	int probe;  /* this transfer decides whether the circuit closes */
	struct http_result res;
	char errbuf[CURL_ERROR_SIZE];
};

struct rq_list {
	struct http_req *head;
	struct http_req *tail;
};

enum brk_state { BRK_CLOSED = 0, BRK_OPEN, BRK_HALF };

struct http_client {
	struct http_client *next; /* engine list; new clients go to the head */
	struct http_engine *e;
	char *name, *ca_file, *pinned_key, *user, *password;
	enum http_auth auth;
	unsigned max_conn;
	double rate;
	size_t max_body;
	int64_t connect_ms;
	unsigned brk_fails;
	int64_t brk_open_ms;
	/* engine thread only */
	struct rq_list queue;
	unsigned in_flight;
	double tokens;
	int64_t tokens_at;
	enum brk_state brk;
	unsigned consec;
	int64_t open_until;
	/* under e->mu */
	struct http_client_stats st;
	int closing;
	int *closed_flag; /* set to 1 once freed, for the thread waiting in http_client_destroy */
};

struct http_engine {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	CURLM *multi;
	int debug;
	/* under mu */
	int stopping;
	struct rq_list inbox;
	struct http_client *clients;
	/* engine thread only */
	struct http_req *running;
	struct rq_list done;
};

static void list_push(struct rq_list *l, struct http_req *r)
{
	r->next = NULL;
	if (l->tail)
		l->tail->next = r;
	else
		l->head = r;
	l->tail = r;
}

static struct http_req *list_pop(struct rq_list *l)
{
	struct http_req *r = l->head;

	if (r) {
		l->head = r->next;
		if (!l->head)
			l->tail = NULL;
		r->next = NULL;
	}
	return r;
}

static void req_free(struct http_req *r)
{
	if (r->easy)
		curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->hdrs);
	free(r->url);
	free(r->body);
	buf_free(&r->res.body);
	free(r);
}

/* finish: records r's outcome and moves it to the done list; callbacks run later, unlocked. */
static void finish(struct http_req *r, enum fail_kind fail, const char *why)
{
	struct http_client *c = r->c;
	struct http_engine *e = c->e;

	r->res.fail = fail;
	if (fail != FAIL_NONE) {
		buf_free(&r->res.body);
		r->res.status = 0;
		r->res.retry_after[0] = '\0';
		str_copy(r->res.why, sizeof(r->res.why), why);
	}
	pthread_mutex_lock(&e->mu);
	if (r->state == RS_QUEUED)
		c->st.queued--;
	else
		c->st.in_flight--;
	if (fail != FAIL_NONE)
		c->st.failures[fail]++;
	pthread_mutex_unlock(&e->mu);
	list_push(&e->done, r);
}

/* deliver: runs the callbacks of finished requests, with no lock held (they may call us). */
static void deliver(struct http_engine *e)
{
	struct http_req *r;

	while ((r = list_pop(&e->done))) {
		struct http_result res = r->res;

		buf_init(&r->res.body, 1); /* the body now belongs to the callback */
		r->cb(&res, r->arg);
		req_free(r);
	}
}

static void running_unlink(struct http_engine *e, struct http_req *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		e->running = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->next = r->prev = NULL;
	r->c->in_flight--;
}

/* abort_running: stops r's transfer and fails it (client closing, engine stopping). */
static void abort_running(struct http_req *r, const char *why)
{
	curl_multi_remove_handle(r->c->e->multi, r->easy);
	running_unlink(r->c->e, r);
	finish(r, FAIL_INTERNAL, why);
}

/* --- circuit breaker and rate limit ---------------------------------------------------------- */

static void brk_set(struct http_client *c, enum brk_state s, int64_t now)
{
	c->brk = s;
	if (s == BRK_OPEN)
		c->open_until = now + c->brk_open_ms;
	pthread_mutex_lock(&c->e->mu);
	c->st.breaker_open = s != BRK_CLOSED;
	c->st.breaker_probing = s == BRK_HALF;
	if (s == BRK_OPEN)
		c->st.breaker_opens++;
	pthread_mutex_unlock(&c->e->mu);
}

/*
 * brk_blocks: whether the circuit keeps r from going now. With may_probe, an open circuit whose
 * period is over lets r through as the one probe.
 */
static int brk_blocks(struct http_client *c, struct http_req *r, int64_t now, int may_probe)
{
	if (c->brk == BRK_CLOSED)
		return 0;
	if (c->brk == BRK_HALF || now < c->open_until)
		return 1;
	if (!may_probe)
		return 0;
	c->brk = BRK_HALF;
	r->probe = 1;
	pthread_mutex_lock(&c->e->mu);
	c->st.breaker_probing = 1;
	pthread_mutex_unlock(&c->e->mu);
	log_info("http %s: circuit half-open, sending one probe", c->name);
	return 0;
}

static void brk_fail_now(struct http_req *r, int64_t now)
{
	struct http_client *c = r->c;
	char why[256];

	if (c->brk == BRK_HALF)
		err_why(why, sizeof(why), "circuit open: a probe of %s is in flight", c->name);
	else
		err_why(why, sizeof(why),
			"circuit open after %u consecutive failures of %s; next try in %lld ms",
			c->brk_fails, c->name, (long long)(c->open_until - now));
	finish(r, FAIL_UNREACHABLE, why);
}

/* brk_record: feeds one finished transfer into the breaker. Failure: any fail kind, or 5xx. */
static void brk_record(struct http_client *c, const struct http_req *r, int64_t now)
{
	int bad = r->res.fail != FAIL_NONE || r->res.status >= 500;

	if (!c->brk_fails)
		return;
	if (r->probe) {
		if (bad)
			log_warn("http %s: probe failed, circuit open again", c->name);
		else
			log_info("http %s: probe succeeded, circuit closed", c->name);
		c->consec = 0;
		brk_set(c, bad ? BRK_OPEN : BRK_CLOSED, now);
		return;
	}
	if (c->brk != BRK_CLOSED)
		return; /* started before the circuit opened: the probe decides */
	c->consec = bad ? c->consec + 1 : 0;
	if (c->consec >= c->brk_fails) {
		log_warn("http %s: %u consecutive failures, circuit open for %lld ms", c->name,
			 c->consec, (long long)c->brk_open_ms);
		brk_set(c, BRK_OPEN, now);
	}
}

static void tokens_refill(struct http_client *c, int64_t now)
{
	if (c->rate <= 0)
		return;
	c->tokens += (double)(now - c->tokens_at) * c->rate / 1000.0;
	if (c->tokens > 1.0)
		c->tokens = 1.0; /* no bursts: requests stay spaced 1/rate apart */
	c->tokens_at = now;
}

static int64_t tokens_wait_ms(const struct http_client *c)
{
	double ms;

	if (c->rate <= 0 || c->tokens >= 1.0)
		return 0;
	ms = (1.0 - c->tokens) * 1000.0 / c->rate;
	return (int64_t)ms + 1;
}

/* --- transfers ------------------------------------------------------------------------------- */

static size_t on_write(char *data, size_t size, size_t n, void *user)
{
	struct http_req *r = user;

	if (buf_add(&r->res.body, data, size * n) != MDM_OK) {
		r->toobig = 1;
		return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
	}
	return size * n;
}

/* on_header: keeps Retry-After; a new status line (after a 100 or a 401 challenge) resets it. */
static size_t on_header(char *data, size_t size, size_t n, void *user)
{
	struct http_req *r = user;
	size_t len = size * n, k = 12;

	if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		r->res.retry_after[0] = '\0';
	} else if (len > k && strncasecmp(data, "retry-after:", k) == 0) {
		while (k < len && (data[k] == ' ' || data[k] == '\t'))
			k++;
		while (len > k && (data[len - 1] == '\r' || data[len - 1] == '\n' ||
				   data[len - 1] == ' ' || data[len - 1] == '\t'))
			len--;
		if (str_copyn(r->res.retry_after, sizeof(r->res.retry_after), data + k, len - k) !=
		    MDM_OK)
			r->res.retry_after[0] = '\0'; /* too long to be a date or a delay */
	}
	return size * n;
}

static int redacted_header(const char *p, size_t len)
{
	static const char *const secret[] = {
	    "authorization:", "proxy-authorization:", "cookie:", "set-cookie:"};
	size_t i;

	for (i = 0; i < sizeof(secret) / sizeof(secret[0]); i++) {
		size_t sl = strlen(secret[i]);

		if (len >= sl && strncasecmp(p, secret[i], sl) == 0)
			return 1;
	}
	return 0;
}

/* log_lines: one debug line per header line; credential lines are dropped whole. */
static void log_lines(const struct http_client *c, const char *dir, const char *data, size_t size,
		      int headers)
{
	while (size) {
		const char *nl = memchr(data, '\n', size);
		size_t len = nl ? (size_t)(nl - data) : size;
		size_t eat = nl ? len + 1 : len;

		if (len && data[len - 1] == '\r')
			len--;
		if (len && !(headers && redacted_header(data, len)))
			log_debug("http %s %s %.*s", c->name, dir, (int)len, data);
		data += eat;
		size -= eat;
	}
}

/* on_debug: curl's verbose output without credentials, bodies or TLS bytes. */
static int on_debug(CURL *h, curl_infotype type, char *data, size_t size, void *user)
{
	(void)h;
	if (type == CURLINFO_TEXT)
		log_lines(user, "*", data, size, 1);
	else if (type == CURLINFO_HEADER_OUT)
		log_lines(user, ">", data, size, 1);
	else if (type == CURLINFO_HEADER_IN)
		log_lines(user, "<", data, size, 1);
	return 0;
}

static long curl_auth(enum http_auth a)
{
	switch (a) {
	case HTTP_AUTH_BASIC:
		return (long)CURLAUTH_BASIC;
	case HTTP_AUTH_NTLM:
		return (long)CURLAUTH_NTLM;
	case HTTP_AUTH_NEGOTIATE:
		return (long)CURLAUTH_NEGOTIATE;
	default:
		return 0;
	}
}

static int setup_auth(CURL *h, const struct http_client *c)
{
	int bad = 0;

	if (c->auth == HTTP_AUTH_NONE)
		return 0;
	bad |= curl_easy_setopt(h, CURLOPT_HTTPAUTH, curl_auth(c->auth)) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_USERNAME, c->user ? c->user : "") != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_PASSWORD, c->password ? c->password : "") != CURLE_OK;
	return bad;
}

/* setup_tls: verification always on, trusting only the client's CA file (and pin). */
static int setup_tls(CURL *h, const struct http_client *c)
{
	int bad = 0;

	bad |= curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_CAPATH, (char *)NULL) != CURLE_OK;
	if (c->pinned_key)
		bad |= curl_easy_setopt(h, CURLOPT_PINNEDPUBLICKEY, c->pinned_key) != CURLE_OK;
	return bad;
}

static int setup_limits(CURL *h, const struct http_req *r, int64_t now)
{
	const struct http_client *c = r->c;
	int64_t left = r->deadline - now;
	int64_t conn = c->connect_ms < left ? c->connect_ms : left;
	int bad = 0;

	if (left < 1)
		left = conn = 1;
	bad |= curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)left) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)conn) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)(c->max_body - 1)) !=
	       CURLE_OK;
	return bad;
}

static int setup_easy(CURL *h, struct http_req *r, int64_t now)
{
	struct http_client *c = r->c;
	int bad = 0;

	bad |= curl_easy_setopt(h, CURLOPT_URL, r->url) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https") != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_PRIVATE, (void *)r) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r->errbuf) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_USERAGENT, "mdmgw") != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_WRITEDATA, (void *)r) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_HEADERDATA, (void *)r) != CURLE_OK;
	if (r->hdrs)
		bad |= curl_easy_setopt(h, CURLOPT_HTTPHEADER, r->hdrs) != CURLE_OK;
	if (r->method == HTTP_POST) {
		bad |= curl_easy_setopt(h, CURLOPT_POST, 1L) != CURLE_OK;
		bad |= curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body ? r->body : "") != CURLE_OK;
		bad |= curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len) !=
		       CURLE_OK;
	}
	if (c->e->debug) {
		bad |= curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, on_debug) != CURLE_OK;
		bad |= curl_easy_setopt(h, CURLOPT_DEBUGDATA, (void *)c) != CURLE_OK;
		bad |= curl_easy_setopt(h, CURLOPT_VERBOSE, 1L) != CURLE_OK;
	}
	bad |= setup_tls(h, c);
	bad |= setup_auth(h, c);
	bad |= setup_limits(h, r, now);
	return bad;
}

/* start: hands r to the multi handle; r's callback runs later either way. */
static void start(struct http_req *r, int64_t now)
{
	struct http_client *c = r->c;
	struct http_engine *e = c->e;

	r->easy = curl_easy_init();
	if (!r->easy || setup_easy(r->easy, r, now) ||
	    curl_multi_add_handle(e->multi, r->easy) != CURLM_OK) {
		finish(r, FAIL_INTERNAL, "cannot set up the HTTP transfer (out of memory?)");
		return;
	}
	r->state = RS_RUNNING;
	r->prev = NULL;
	r->next = e->running;
	if (e->running)
		e->running->prev = r;
	e->running = r;
	c->in_flight++;
	pthread_mutex_lock(&e->mu);
	c->st.queued--;
	c->st.in_flight++;
	pthread_mutex_unlock(&e->mu);
}

/* expire_queue: fails queued requests whose deadline passed or whose circuit is open. */
static void expire_queue(struct http_client *c, int64_t now)
{
	struct rq_list keep = {NULL, NULL};
	struct http_req *r;
	char why[256];

	while ((r = list_pop(&c->queue))) {
		if (r->deadline <= now) {
			err_why(
			    why, sizeof(why),
			    "no answer before the deadline (still queued behind %u transfers to "
			    "%s)",
			    c->in_flight, c->name);
			finish(r, FAIL_TIMEOUT, why);
		} else if (brk_blocks(c, r, now, 0)) {
			brk_fail_now(r, now);
		} else {
			list_push(&keep, r);
		}
	}
	c->queue = keep;
}

/*
 * schedule: starts what the connection limit, the rate limit and the circuit allow, in queue
 * order; a request held back by its not_before keeps its place without blocking later ones.
 */
static void schedule(struct http_client *c, int64_t now)
{
	struct rq_list keep = {NULL, NULL};
	struct http_req *r;

	expire_queue(c, now);
	tokens_refill(c, now);
	while ((r = list_pop(&c->queue))) {
		if (r->not_before > now || c->in_flight >= c->max_conn || tokens_wait_ms(c) > 0) {
			list_push(&keep, r);
			continue;
		}
		if (brk_blocks(c, r, now, 1)) {
			brk_fail_now(r, now);
			continue;
		}
		if (c->rate > 0)
			c->tokens -= 1.0;
		start(r, now);
	}
	c->queue = keep;
}

/* --- outcome of a transfer ------------------------------------------------------------------- */

static const char *errtext(const struct http_req *r, CURLcode code)
{
	return r->errbuf[0] ? r->errbuf : curl_easy_strerror(code);
}

static enum fail_kind classify_tls(const struct http_req *r, CURLcode code, char *why, size_t sz)
{
	switch (code) {
	case CURLE_PEER_FAILED_VERIFICATION:
		err_why(why, sz, "certificate not trusted (%s)", errtext(r, code));
		break;
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		err_why(why, sz, "certificate not trusted (its public key is not the pinned one)");
		break;
	case CURLE_SSL_CACERT_BADFILE:
		err_why(why, sz, "CA file %s cannot be used (%s)", r->c->ca_file, errtext(r, code));
		break;
	default:
		err_why(why, sz, "TLS handshake failed (%s)", errtext(r, code));
		break;
	}
	return FAIL_TLS;
}

static enum fail_kind classify_connect(const struct http_req *r, CURLcode code, char *why,
				       size_t sz)
{
	long oserr = 0;

	curl_easy_getinfo(r->easy, CURLINFO_OS_ERRNO, &oserr);
	if (oserr == ECONNREFUSED)
		err_why(why, sz, "connection refused (%s)", errtext(r, code));
	else
		err_why(why, sz, "cannot connect (%s)", errtext(r, code));
	return FAIL_UNREACHABLE;
}

/* classify: a libcurl error as a fail kind and a sentence an admin can act on. */
static enum fail_kind classify(const struct http_req *r, CURLcode code, char *why, size_t sz)
{
	switch (code) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		err_why(why, sz, "name does not resolve (%s)", errtext(r, code));
		return FAIL_UNREACHABLE;
	case CURLE_COULDNT_CONNECT:
		return classify_connect(r, code, why, sz);
	case CURLE_OPERATION_TIMEDOUT:
		err_why(why, sz, "no answer before the deadline (%s)", errtext(r, code));
		return FAIL_TIMEOUT;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_CRL_BADFILE:
		return classify_tls(r, code, why, sz);
	case CURLE_WRITE_ERROR:
		if (!r->toobig)
			break;
		/* fall through */
	case CURLE_FILESIZE_EXCEEDED:
		err_why(why, sz, "body larger than %zu bytes", r->c->max_body - 1);
		return FAIL_PROTOCOL;
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
		err_why(why, sz, "connection lost (%s)", errtext(r, code));
		return FAIL_UNREACHABLE;
	case CURLE_OUT_OF_MEMORY:
		err_why(why, sz, "out of memory");
		return FAIL_INTERNAL;
	default:
		break;
	}
	err_why(why, sz, "garbled answer (%s)", errtext(r, code));
	return FAIL_PROTOCOL;
}

static void complete(struct http_engine *e, CURL *easy, CURLcode code, int64_t now)
{
	struct http_req *r;
	char *priv = NULL;
	char why[256] = "";
	enum fail_kind fail = FAIL_NONE;

	curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
	r = (struct http_req *)(void *)priv;
	if (code == CURLE_OK)
		curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &r->res.status);
	else
		fail = classify(r, code, why, sizeof(why));
	curl_multi_remove_handle(e->multi, easy);
	running_unlink(e, r);
	r->res.fail = fail;
	brk_record(r->c, r, now);
	finish(r, fail, why);
}

static void read_done(struct http_engine *e)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(e->multi, &left))) {
		CURL *easy = m->easy_handle;
		CURLcode code = m->data.result;

		if (m->msg == CURLMSG_DONE)
			complete(e, easy, code, clock_mono_ms());
	}
}

/* --- the engine thread ----------------------------------------------------------------------- */

static void fail_client(struct http_engine *e, struct http_client *c, const char *why)
{
	struct http_req *r, *next;

	while ((r = list_pop(&c->queue)))
		finish(r, FAIL_INTERNAL, why);
	for (r = e->running; r; r = next) {
		next = r->next;
		if (r->c == c)
			abort_running(r, why);
	}
}

static void client_free(struct http_client *c)
{
	free(c->name);
	free(c->ca_file);
	free(c->pinned_key);
	free(c->user);
	if (c->password) {
		memset(c->password, 0, strlen(c->password));
		free(c->password);
	}
	free(c);
}

/* reap_closing: finishes and frees the clients http_client_destroy asked to close. */
static void reap_closing(struct http_engine *e)
{
	struct http_client **pp, *c;

	pthread_mutex_lock(&e->mu);
	for (pp = &e->clients; (c = *pp);) {
		if (!c->closing) {
			pp = &c->next;
			continue;
		}
		pthread_mutex_unlock(&e->mu);
		fail_client(e, c, "client closed");
		deliver(e);
		pthread_mutex_lock(&e->mu);
		/* A client created meanwhile went to the head: find c's link again. */
		for (pp = &e->clients; *pp != c; pp = &(*pp)->next)
			;
		*pp = c->next;
		if (c->closed_flag)
			*c->closed_flag = 1;
		client_free(c);
	}
	pthread_cond_broadcast(&e->cv);
	pthread_mutex_unlock(&e->mu);
}

/* admit: moves new requests to their client's queue, or fails them at once (circuit open). */
static void admit(struct rq_list *in, int64_t now)
{
	struct http_req *r;

	while ((r = list_pop(in))) {
		if (brk_blocks(r->c, r, now, 0))
			brk_fail_now(r, now);
		else
			list_push(&r->c->queue, r);
	}
}

/* next_wake: ms until a queued request's deadline or the next rate token, at most MAX_POLL_MS. */
static int next_wake(struct http_client *head, int64_t now)
{
	int64_t t = MAX_POLL_MS;
	struct http_client *c;
	struct http_req *r;

	for (c = head; c; c = c->next) {
		for (r = c->queue.head; r; r = r->next) {
			if (r->deadline - now < t)
				t = r->deadline - now;
			if (r->not_before > now && r->not_before - now < t)
				t = r->not_before - now;
		}
		/* A token short: wake when it comes (requests merely held by not_before are
		 * covered above; a free slot and a token with nothing eligible is no reason). */
		if (c->queue.head && c->in_flight < c->max_conn && tokens_wait_ms(c) > 0 &&
		    tokens_wait_ms(c) < t)
			t = tokens_wait_ms(c);
	}
	return t < 0 ? 0 : (int)t;
}

/* round_once: one turn of the loop; returns 0 once the engine is stopping. */
static int round_once(struct http_engine *e)
{
	struct rq_list in;
	struct http_client *head, *c;
	int stopping, running;
	int64_t now;

	pthread_mutex_lock(&e->mu);
	stopping = e->stopping;
	in = e->inbox;
	e->inbox.head = e->inbox.tail = NULL;
	pthread_mutex_unlock(&e->mu);
	now = clock_mono_ms();
	admit(&in, now);
	if (stopping)
		return 0;
	reap_closing(e);
	/* Clients are only added at the head, so the list below a snapshot of it is stable. */
	pthread_mutex_lock(&e->mu);
	head = e->clients;
	pthread_mutex_unlock(&e->mu);
	for (c = head; c; c = c->next)
		schedule(c, now);
	curl_multi_perform(e->multi, &running);
	read_done(e);
	now = clock_mono_ms();
	for (c = head; c; c = c->next)
		schedule(c, now); /* slots freed by finished transfers go to queued requests */
	deliver(e);
	curl_multi_poll(e->multi, NULL, 0, next_wake(head, clock_mono_ms()), NULL);
	return 1;
}

static void *engine_main(void *arg)
{
	struct http_engine *e = arg;
	struct http_client *c, *head;

	while (round_once(e))
		;
	pthread_mutex_lock(&e->mu);
	head = e->clients;
	pthread_mutex_unlock(&e->mu);
	for (c = head; c; c = c->next)
		fail_client(e, c, "HTTP engine shutting down");
	deliver(e);
	return NULL;
}

/* --- public API ------------------------------------------------------------------------------ */

struct http_engine *http_engine_create(const struct http_engine_config *cfg)
{
	struct http_engine *e;
	long maxc =
	    cfg && cfg->max_total_connections > 0 ? cfg->max_total_connections : DEF_MAX_TOTAL;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return NULL;
	e = calloc(1, sizeof(*e));
	if (!e)
		goto fail_global;
	e->debug = cfg ? cfg->debug : 0;
	e->multi = curl_multi_init();
	if (!e->multi)
		goto fail_mem;
	curl_multi_setopt(e->multi, CURLMOPT_MAXCONNECTS, maxc);
	if (pthread_mutex_init(&e->mu, NULL))
		goto fail_multi;
	if (pthread_cond_init(&e->cv, NULL))
		goto fail_mutex;
	if (pthread_create(&e->thread, NULL, engine_main, e))
		goto fail_cond;
	return e;
fail_cond:
	pthread_cond_destroy(&e->cv);
fail_mutex:
	pthread_mutex_destroy(&e->mu);
fail_multi:
	curl_multi_cleanup(e->multi);
fail_mem:
	free(e);
fail_global:
	curl_global_cleanup();
	return NULL;
}

void http_engine_destroy(struct http_engine *e)
{
	struct http_client *c;

	if (!e)
		return;
	pthread_mutex_lock(&e->mu);
	e->stopping = 1;
	curl_multi_wakeup(e->multi);
	pthread_mutex_unlock(&e->mu);
	pthread_join(e->thread, NULL);
	while ((c = e->clients)) {
		e->clients = c->next;
		if (c->closed_flag)
			*c->closed_flag = 1;
		client_free(c);
	}
	curl_multi_cleanup(e->multi);
	pthread_cond_destroy(&e->cv);
	pthread_mutex_destroy(&e->mu);
	free(e);
	curl_global_cleanup();
}

static enum mdm_err dup_opt(char **dst, const char *src)
{
	*dst = NULL;
	if (!src)
		return MDM_OK;
	*dst = strdup(src);
	return *dst ? MDM_OK : MDM_ERR_NOMEM;
}

static enum mdm_err check_config(const struct http_client_config *cc, char *why, size_t whysz)
{
	FILE *f;

	if (!cc->ca_file || !*cc->ca_file) {
		err_why(why, whysz, "a CA file is required: the system CA store is never trusted");
		return MDM_ERR_CONFIG;
	}
	f = fopen(cc->ca_file, "r");
	if (!f) {
		err_why(why, whysz, "CA file %s cannot be read: %s", cc->ca_file, strerror(errno));
		return MDM_ERR_CONFIG;
	}
	fclose(f);
	if (cc->pinned_key && strncmp(cc->pinned_key, "sha256//", 8) != 0) {
		err_why(why, whysz, "pinned key must be \"sha256//<base64>\"");
		return MDM_ERR_CONFIG;
	}
	if (cc->auth > HTTP_AUTH_NEGOTIATE) {
		err_why(why, whysz, "unknown authentication scheme");
		return MDM_ERR_CONFIG;
	}
	if ((cc->auth == HTTP_AUTH_BASIC || cc->auth == HTTP_AUTH_NTLM) &&
	    (!cc->user || !*cc->user || !cc->password)) {
		err_why(why, whysz, "Basic and NTLM authentication need a user and a password");
		return MDM_ERR_CONFIG;
	}
	return MDM_OK;
}

static void client_limits(struct http_client *c, const struct http_client_config *cc)
{
	c->auth = cc->auth;
	c->max_conn = cc->max_connections ? cc->max_connections : DEF_MAX_CONN;
	c->rate = cc->rate_per_sec > 0 ? cc->rate_per_sec : 0;
	/* buf holds toobig-1 bytes, so the cap is max_body+1 */
	c->max_body = (cc->max_body ? cc->max_body : DEF_MAX_BODY) + 1;
	c->connect_ms = cc->connect_timeout_ms > 0 ? cc->connect_timeout_ms : DEF_CONNECT_MS;
	c->brk_fails = cc->breaker_failures;
	c->brk_open_ms = cc->breaker_open_ms > 0 ? cc->breaker_open_ms : DEF_OPEN_MS;
	c->tokens = 1.0;
	c->tokens_at = clock_mono_ms();
}

struct http_client *http_client_create(struct http_engine *e, const struct http_client_config *cc,
				       char *why, size_t whysz)
{
	struct http_client *c;

	if (!e || !cc) {
		err_why(why, whysz, "no engine or no configuration");
		return NULL;
	}
	if (check_config(cc, why, whysz) != MDM_OK)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c || dup_opt(&c->name, cc->name ? cc->name : "http") ||
	    dup_opt(&c->ca_file, cc->ca_file) || dup_opt(&c->pinned_key, cc->pinned_key) ||
	    dup_opt(&c->user, cc->user) || dup_opt(&c->password, cc->password)) {
		if (c)
			client_free(c);
		err_why(why, whysz, "out of memory");
		return NULL;
	}
	c->e = e;
	client_limits(c, cc);
	pthread_mutex_lock(&e->mu);
	c->next = e->clients;
	e->clients = c;
	pthread_mutex_unlock(&e->mu);
	return c;
}

void http_client_destroy(struct http_client *c)
{
	struct http_engine *e;
	int closed = 0;

	if (!c)
		return;
	e = c->e;
	pthread_mutex_lock(&e->mu);
	c->closing = 1;
	if (pthread_equal(pthread_self(), e->thread)) {
		/* From a callback: the engine frees c before its next round. */
		curl_multi_wakeup(e->multi);
		pthread_mutex_unlock(&e->mu);
		return;
	}
	c->closed_flag = &closed;
	curl_multi_wakeup(e->multi);
	while (!closed)
		pthread_cond_wait(&e->cv, &e->mu);
	pthread_mutex_unlock(&e->mu);
}

static enum mdm_err copy_headers(struct http_req *r, const struct http_request *rq)
{
	const char *const *h;
	struct curl_slist *n;

	for (h = rq->headers; h && *h; h++) {
		n = curl_slist_append(r->hdrs, *h);
		if (!n)
			return MDM_ERR_NOMEM;
		r->hdrs = n;
	}
	if (rq->method == HTTP_POST) {
		/* No "Expect: 100-continue" round trip for small bodies. */
		n = curl_slist_append(r->hdrs, "Expect:");
		if (!n)
			return MDM_ERR_NOMEM;
		r->hdrs = n;
	}
	return MDM_OK;
}

static enum mdm_err req_build(struct http_req **out, struct http_client *c,
			      const struct http_request *rq)
{
	struct http_req *r = calloc(1, sizeof(*r));

	*out = NULL;
	if (!r)
		return MDM_ERR_NOMEM;
	r->c = c;
	r->method = rq->method;
	buf_init(&r->res.body, c->max_body);
	r->url = strdup(rq->url);
	if (!r->url || copy_headers(r, rq) != MDM_OK)
		goto fail;
	if (rq->body && rq->body_len) {
		r->body = malloc(rq->body_len);
		if (!r->body)
			goto fail;
		memcpy(r->body, rq->body, rq->body_len);
		r->body_len = rq->body_len;
	}
	*out = r;
	return MDM_OK;
fail:
	req_free(r);
	return MDM_ERR_NOMEM;
}

enum mdm_err http_request(struct http_client *c, const struct http_request *rq, int64_t deadline_ms,
			  http_done_cb cb, void *arg)
{
	struct http_engine *e;
	struct http_req *r;
	enum mdm_err err;

	if (!c || !rq || !cb || !rq->url || strncasecmp(rq->url, "https://", 8) != 0 ||
	    (rq->method != HTTP_GET && rq->method != HTTP_POST))
		return MDM_ERR_INVALID;
	err = req_build(&r, c, rq);
	if (err != MDM_OK)
		return err;
	r->deadline = deadline_ms;
	r->not_before = rq->not_before_ms;
	r->cb = cb;
	r->arg = arg;
	e = c->e;
	pthread_mutex_lock(&e->mu);
	if (e->stopping || c->closing) {
		pthread_mutex_unlock(&e->mu);
		req_free(r);
		return MDM_ERR_UNAVAILABLE;
	}
	list_push(&e->inbox, r);
	c->st.requests++;
	c->st.queued++;
	/* Under the lock, so the multi handle cannot be gone (destroy sets stopping first). */
	curl_multi_wakeup(e->multi);
	pthread_mutex_unlock(&e->mu);
	return MDM_OK;
}

void http_client_stats(const struct http_client *c, struct http_client_stats *out)
{
	pthread_mutex_lock(&c->e->mu);
	*out = c->st;
	pthread_mutex_unlock(&c->e->mu);
}

/* --- health ------------------------------------------------------------------------------- */

enum mdm_err http_health_init(struct http_health *h)
{
	memset(h, 0, sizeof(*h));
	return pthread_mutex_init(&h->mu, NULL) == 0 ? MDM_OK : MDM_ERR_NOMEM;
}

void http_health_destroy(struct http_health *h)
{
	pthread_mutex_destroy(&h->mu);
}

void http_health_ok(struct http_health *h)
{
	pthread_mutex_lock(&h->mu);
	h->last_failed = false;
	h->last_ok_ms = clock_wall_ms();
	pthread_mutex_unlock(&h->mu);
}

void http_health_fail(struct http_health *h, const char *why)
{
	pthread_mutex_lock(&h->mu);
	h->last_failed = true;
	h->last_error_ms = clock_wall_ms();
	str_copyn(h->last_error, sizeof(h->last_error), why,
		  strnlen(why, sizeof(h->last_error) - 1));
	pthread_mutex_unlock(&h->mu);
}

void http_health_note(struct http_health *h, bool ok, const char *why)
{
	if (ok)
		http_health_ok(h);
	else
		http_health_fail(h, why);
}

void http_health_report(struct http_health *h, const struct http_client *c,
			struct adapter_health *out)
{
	struct http_client_stats st;

	http_client_stats(c, &st);
	memset(out, 0, sizeof(*out));
	out->requests = st.requests;
	for (int k = FAIL_NONE + 1; k <= FAIL_INTERNAL; k++)
		out->failures += st.failures[k];
	out->breaker = st.breaker_probing ? BREAKER_PROBING
		       : st.breaker_open  ? BREAKER_OPEN
					  : BREAKER_CLOSED;
	pthread_mutex_lock(&h->mu);
	out->healthy = !h->last_failed;
	out->last_ok_ms = h->last_ok_ms;
	out->last_error_ms = h->last_error_ms;
	str_copy(out->last_error, sizeof(out->last_error), h->last_error);
	pthread_mutex_unlock(&h->mu);
}
