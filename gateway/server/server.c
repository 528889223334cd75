#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../core/buf.h"
#include "../../core/clock.h"
#include "../../core/log.h"
#include "handler.h"
#include "hops.h"
#include "route.h"
#include "server.h"

#define PEM_MAX (1024 * 1024)
#define REAPER_PERIOD_MS 200
#define MAX_ARGS 32
#define SUSPENDED_SEND_MS 5000 /* at shutdown, for the answers to suspended requests to go */

/*
 * Connection tracking for deadlines MHD does not have: MHD's timeout is an idle timeout, so a
 * client sending one byte a second would never be cut. Every connection is listed with the
 * phase it is in and since when; a reaper thread shuts down the socket of one past its
 * deadline, and MHD then closes it as it would any broken connection.
 */
enum conn_phase {
	PHASE_HEADERS, /* waiting for a request's headers (also between keep-alive requests) */
	PHASE_BODY,    /* headers in, body arriving */
	PHASE_ANSWER,  /* the request is complete: being answered or sent */
};

struct conn {
	struct conn *prev, *next; /* under server.mu */
	int fd;
	/* Written by the connection's own thread without a lock, read by the reaper: a request
	 * must not queue on one server-wide mutex three times over. */
	_Atomic int phase;	     /* enum conn_phase */
	_Atomic int_least64_t since; /* monotonic ms */
	bool cut;		     /* under server.mu */
};

/*
 * An answer that was not ready on the server thread: the connection is suspended until the
 * lookup (or the server's own deadline, or shutdown) fills res and resumes it. Held by the
 * request and by whoever is to answer; freed by the last.
 */
struct pending {
	pthread_mutex_t mu;
	int refs;
	bool ready;	/* res holds the answer */
	bool suspended; /* the connection waits; whoever clears this resumes it */
	bool listed;	/* on server.pendings (under server.mu) */
	struct http_response res;
	handler_error_fn error; /* how the route writes the 503 the server may answer itself */
	struct MHD_Connection *mc;
	int64_t deadline; /* monotonic ms: past it the server answers 503 itself */
	struct pending *prev, *next;
};

struct request {
	struct conn *conn;
	struct pending *pend;
	struct buf body;
	bool too_big;
	bool answered; /* a response was queued on the first call, or is being made */
	bool sent;     /* the answer was queued */
	char user[64];
	unsigned roles;		     /* the account's ROLE_* bits */
	char addr[INET6_ADDRSTRLEN]; /* the client's address */
	struct route route;
	const struct handler_spec *spec;   /* its row of the handler table; NULL: none */
	const struct handler_group *group; /* the module the row belongs to */
	int64_t started;
};

struct server {
	struct server_deps deps;
	struct handler_table table; /* deps.routes by route kind */
	struct MHD_Daemon *daemon;
	char *cert_pem;
	char *key_pem;
	pthread_mutex_t mu;
	struct conn conns; /* list head */
	pthread_t reaper;
	bool stopping;
	pthread_cond_t stop_cv;
	atomic_uint inflight;
	atomic_bool draining;	 /* stopping: refuse new connections, close kept-alive ones */
	struct pending pendings; /* suspended answers, list head; under mu */
	bool closing;		 /* shutdown answered every pending: no new suspensions */
};

/* --- deadlines ----------------------------------------------------------------------------- */

static void conn_set_phase(struct conn *c, enum conn_phase p)
{
	if (!c)
		return;
	/* since first: the reaper may pair the new phase with the old time, never the reverse,
	 * so it can only be late to cut, never early. */
	atomic_store(&c->since, clock_mono_ms());
	atomic_store(&c->phase, (int)p);
}

static void reap_once(struct server *s)
{
	const struct config_listen *l = s->deps.listen;
	int64_t now = clock_mono_ms();

	pthread_mutex_lock(&s->mu);
	for (struct conn *c = s->conns.next; c != &s->conns; c = c->next) {
		int phase = atomic_load(&c->phase);
		int64_t limit, since = atomic_load(&c->since);

		if (c->cut || phase == PHASE_ANSWER)
			continue;
		limit = phase == PHASE_HEADERS ? l->header_timeout_ms : l->body_timeout_ms;
		if (now - since < limit || atomic_load(&c->phase) != phase)
			continue;
		/* Under s->mu the fd is still MHD's: the CLOSED notice needs the same lock. */
		shutdown(c->fd, SHUT_RDWR);
		c->cut = true;
		if (phase == PHASE_HEADERS)
			atomic_fetch_add(&s->deps.stats->cut_header, 1);
		else
			atomic_fetch_add(&s->deps.stats->cut_body, 1);
		log_debug("server: cut a connection past its %s deadline",
			  phase == PHASE_HEADERS ? "header" : "body");
	}
	pthread_mutex_unlock(&s->mu);
}

static void pending_unref(struct pending *p)
{
	bool last;

	pthread_mutex_lock(&p->mu);
	last = --p->refs == 0;
	pthread_mutex_unlock(&p->mu);
	if (!last)
		return;
	http_response_clear(&p->res);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

/*
 * Answers with a 503 of the server's own every pending answer past its deadline (every one
 * when all is set), and resumes their connections. The lookup's own deadline should always come
 * first; this is the guarantee that no suspended connection is ever forgotten.
 */
static unsigned answer_overdue(struct server *s, bool all, const char *why)
{
	struct MHD_Connection *resume[64];
	unsigned n = 0, total = 0;
	int64_t now = clock_mono_ms();

	do {
		n = 0;
		pthread_mutex_lock(&s->mu);
		if (all)
			s->closing = true;
		for (struct pending *p = s->pendings.next; p != &s->pendings && n < 64;
		     p = p->next) {
			pthread_mutex_lock(&p->mu);
			if (!p->ready && (all || now >= p->deadline)) {
				p->error(&p->res, 503, why);
				p->ready = true;
				log_warn("server: answered 503 itself: %s", why);
			}
			if (p->ready && p->suspended) {
				p->suspended = false;
				resume[n++] = p->mc;
			}
			pthread_mutex_unlock(&p->mu);
		}
		pthread_mutex_unlock(&s->mu);
		/* Outside the locks: MHD takes its own. Only we could resume these, so they are
		 * still suspended and alive. */
		for (unsigned i = 0; i < n; i++)
			MHD_resume_connection(resume[i]);
		total += n;
	} while (n == 64);
	return total;
}

static void *reaper_main(void *arg)
{
	struct server *s = arg;

	pthread_mutex_lock(&s->mu);
	while (!s->stopping) {
		clock_cond_wait_until(&s->stop_cv, &s->mu, clock_mono_ms() + REAPER_PERIOD_MS);
		if (s->stopping)
			break;
		pthread_mutex_unlock(&s->mu);
		reap_once(s);
		answer_overdue(s, false, "the MDM answer did not come in time; try again");
		pthread_mutex_lock(&s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	struct server *s = cls;
	struct conn *c = *socket_context;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
		    MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);

		c = calloc(1, sizeof(*c));
		if (!c || !ci)
			return free(c);
		c->fd = ci->connect_fd;
		atomic_init(&c->phase, PHASE_HEADERS);
		atomic_init(&c->since, clock_mono_ms());
		pthread_mutex_lock(&s->mu);
		c->next = s->conns.next;
		c->prev = &s->conns;
		s->conns.next->prev = c;
		s->conns.next = c;
		pthread_mutex_unlock(&s->mu);
		*socket_context = c;
		return;
	}
	if (!c)
		return;
	pthread_mutex_lock(&s->mu);
	c->prev->next = c->next;
	c->next->prev = c->prev;
	pthread_mutex_unlock(&s->mu);
	free(c);
	*socket_context = NULL;
}

/*
 * While draining, new connections are accepted and closed at once. MHD_quiesce_daemon would
 * stop accepting instead, but in libmicrohttpd 0.9.75 it races a worker thread of an epoll
 * thread pool removing the listening socket itself and then aborts the process ("Failed to
 * remove listen FD from epoll set"), which the SIGTERM-under-load test caught.
 */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t len)
{
	struct server *s = cls;

	(void)addr;
	(void)len;
	return atomic_load(&s->draining) ? MHD_NO : MHD_YES;
}

/* --- responses ----------------------------------------------------------------------------- */

/* Adds the headers every answer carries, queues r and lets go of it. */
static enum MHD_Result queue(struct server *s, struct MHD_Connection *mc, int status,
			     struct MHD_Response *r, const char *type, const char *hname,
			     const char *hvalue)
{
	enum MHD_Result ret;

	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (atomic_load(&s->draining)) /* no next request on this connection: it is going */
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
	if (hname)
		MHD_add_response_header(r, hname, hvalue);
	ret = MHD_queue_response(mc, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result send_response(struct server *s, struct MHD_Connection *mc, int status,
				     const char *type, const char *body, size_t len,
				     const char *hname, const char *hvalue)
{
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);

	return r ? queue(s, mc, status, r, type, hname, hvalue) : MHD_NO;
}

/* Queues body as the response without copying it: MHD frees it once sent. */
static enum MHD_Result send_buf(struct server *s, struct MHD_Connection *mc, int status,
				const char *type, struct buf *body, const char *hname,
				const char *hvalue)
{
	size_t len = 0;
	char *mem = buf_take(body, &len);
	struct MHD_Response *r = MHD_create_response_from_buffer(
	    len, mem ? mem : (void *)"", mem ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);

	if (!r) {
		free(mem);
		return MHD_NO;
	}
	return queue(s, mc, status, r, type, hname, hvalue);
}

/* An error written as fn writes them (the server's own before a route is known). */
static enum MHD_Result send_error_as(struct server *s, struct MHD_Connection *mc,
				     handler_error_fn fn, int status, const char *msg,
				     const char *hname, const char *hvalue)
{
	struct http_response res;
	enum MHD_Result ret;

	http_response_init(&res);
	fn(&res, status, msg);
	ret = send_response(s, mc, res.status, res.content_type, buf_str(&res.body), res.body.len,
			    hname, hvalue);
	http_response_clear(&res);
	return ret;
}

static enum MHD_Result send_error(struct server *s, struct MHD_Connection *mc, int status,
				  const char *msg, const char *hname, const char *hvalue)
{
	return send_error_as(s, mc, s->deps.error, status, msg, hname, hvalue);
}

/* --- requests ------------------------------------------------------------------------------ */

struct args {
	struct route_arg a[MAX_ARGS];
	size_t n;
	bool overflow;
};

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
				   const char *value)
{
	struct args *as = cls;

	(void)kind;
	if (as->n == MAX_ARGS) {
		as->overflow = true;
		return MHD_NO;
	}
	as->a[as->n].key = key;
	as->a[as->n].value = value;
	as->n++;
	return MHD_YES;
}

static void client_address(struct MHD_Connection *mc, char *out, size_t sz)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;

	str_copy(out, sz, "unknown");
	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
			  (socklen_t)sz);
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
			  out, (socklen_t)sz);
}

/* Whether an account with roles may call the request's route (its row says which it needs). */
static bool role_allows(const struct request *rq, unsigned roles)
{
	unsigned need = handler_roles(rq->spec, rq->group->ctx, &rq->route);

	return !need || (roles & need);
}

/* Authenticates and routes on the first call, before any body is read. */
static enum MHD_Result first_call(struct server *s, struct MHD_Connection *mc, struct request *rq,
				  const char *url, const char *method)
{
	const char *authz, *clen;
	struct auth_result ar;
	struct args as = {.n = 0};
	char addr[INET6_ADDRSTRLEN], retry[16];
	enum mdm_err e;

	clen = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (clen && strtoull(clen, NULL, 10) >= s->deps.listen->max_body) {
		rq->answered = true;
		return send_error(s, mc, 413, "request body is too large", NULL, NULL);
	}
	MHD_get_connection_values(mc, MHD_GET_ARGUMENT_KIND, collect_arg, &as);
	if (as.overflow) {
		rq->answered = true;
		return send_error(s, mc, 400, "too many query parameters", NULL, NULL);
	}
	route_parse(method, url, as.a, as.n, s->deps.listen->instance, &rq->route);
	rq->spec = s->table.spec[rq->route.kind];
	rq->group = s->table.group[rq->route.kind];
	/* Answered on the last call, like any request: a response queued on the first call
	 * makes MHD close the connection, which a load balancer probing with keep-alive hates. */
	if (rq->route.kind == ROUTE_HEALTHZ)
		return MHD_YES;
	client_address(mc, addr, sizeof(addr));
	authz = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	e = auth_check(s->deps.auth, authz, addr, &ar);
	str_copy(rq->user, sizeof(rq->user), ar.user);
	str_copy(rq->addr, sizeof(rq->addr), addr);
	rq->roles = ar.roles;
	if (e == MDM_ERR_THROTTLED) {
		rq->answered = true;
		snprintf(retry, sizeof(retry), "%d", ar.retry_after_s);
		return send_error(s, mc, 429, "too many failed logins; try later",
				  MHD_HTTP_HEADER_RETRY_AFTER, retry);
	}
	if (e == MDM_ERR_NOMEM || e == MDM_ERR_INTERNAL) {
		rq->answered = true;
		return send_error(s, mc, 500, "cannot check credentials right now", NULL, NULL);
	}
	if (e != MDM_OK) {
		rq->answered = true;
		return send_error(s, mc, 401, "authentication required",
				  MHD_HTTP_HEADER_WWW_AUTHENTICATE,
				  "Basic realm=\"mdmgw\", charset=\"UTF-8\"");
	}
	if (rq->spec && !role_allows(rq, ar.roles)) {
		rq->answered = true;
		log_info("server: %s %s by %s from %s: forbidden (role)", method, url, rq->user,
			 addr);
		return send_error_as(s, mc, rq->group->error, 403,
				     "this account's role does not allow this call", NULL, NULL);
	}
	return MHD_YES;
}

static void log_answer(struct request *rq, const char *method, const char *url, int status)
{
	if (log_enabled(LOGL_DEBUG))
		log_debug("server: %s %s by %s: %d, %lld ms", method, url, rq->user, status,
			  (long long)(clock_mono_ms() - rq->started));
}

static enum MHD_Result send_answer(struct server *s, struct MHD_Connection *mc,
				   struct http_response *res)
{
	return send_buf(s, mc, res->status, res->content_type, &res->body,
			res->allow[0] ? MHD_HTTP_HEADER_ALLOW : NULL, res->allow);
}

/* A handler's later answer, on its thread (or the server's, before the handler returned). */
static void on_answer_ready(void *arg, struct http_response *res)
{
	struct pending *p = arg;
	bool resume;

	pthread_mutex_lock(&p->mu);
	if (!p->ready) {
		http_response_move(&p->res, res);
		p->ready = true;
	}
	resume = p->suspended;
	p->suspended = false;
	pthread_mutex_unlock(&p->mu);
	if (resume)
		MHD_resume_connection(p->mc);
	pending_unref(p);
}

static struct pending *pending_new(struct MHD_Connection *mc, int64_t deadline,
				   handler_error_fn error)
{
	struct pending *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	pthread_mutex_init(&p->mu, NULL);
	p->refs = 2; /* the request's and the answer's */
	p->mc = mc;
	p->deadline = deadline;
	p->error = error;
	http_response_init(&p->res);
	return p;
}

/*
 * The answer is on its way: suspend the connection until it comes, unless it came already or
 * the server is closing (then it is answered now).
 */
static enum MHD_Result wait_for_answer(struct server *s, struct MHD_Connection *mc,
				       struct request *rq)
{
	struct pending *p = rq->pend;
	bool closing, ready;

	/* Answered already (a lookup the cache answered on this thread): sent now, without the
	 * server-wide lock. Once ready, nothing writes the answer again. */
	pthread_mutex_lock(&p->mu);
	ready = p->ready;
	pthread_mutex_unlock(&p->mu);
	if (ready) {
		rq->sent = true;
		return send_answer(s, mc, &p->res);
	}
	/* Listed first, so the reaper and shutdown see it; they answer it if it is due. */
	pthread_mutex_lock(&s->mu);
	closing = s->closing;
	if (!closing) {
		p->next = s->pendings.next;
		p->prev = &s->pendings;
		s->pendings.next->prev = p;
		s->pendings.next = p;
		p->listed = true;
	}
	pthread_mutex_unlock(&s->mu);
	pthread_mutex_lock(&p->mu);
	if (!p->ready && closing) {
		p->error(&p->res, 503, "the gateway is shutting down");
		p->ready = true;
	}
	if (!p->ready) {
		p->suspended = true;
		/* Under p->mu: whoever resumes must see the suspension done first. */
		MHD_suspend_connection(mc);
		pthread_mutex_unlock(&p->mu);
		return MHD_YES;
	}
	pthread_mutex_unlock(&p->mu);
	rq->sent = true;
	return send_answer(s, mc, &p->res);
}

/*
 * hop_refused: whether a request of a hop-checked route came through this gateway already, or
 * through too many (gateway/server/hops.h); then res holds the 508 answer.
 */
static bool hop_refused(struct server *s, struct MHD_Connection *mc, const struct request *rq,
			struct http_response *res)
{
	char why[320];

	if (!s->deps.hops || !rq->spec->hop_checked)
		return false;
	if (hops_check(s->deps.hops,
		       MHD_lookup_connection_value(mc, MHD_HEADER_KIND, HOPS_VIA_HEADER),
		       MHD_lookup_connection_value(mc, MHD_HEADER_KIND, HOPS_COUNT_HEADER), why,
		       sizeof(why)) == MDM_OK)
		return false;
	rq->group->error(res, 508, why);
	return true;
}

/* How long the route's answer may take before the server answers 503 itself. */
static int64_t answer_deadline(const struct request *rq)
{
	const struct handler_spec *spec = rq->spec;

	return clock_mono_ms() + (spec->wait_ms ? spec->wait_ms(rq->group->ctx, &rq->route)
						: HANDLER_WAIT_DEFAULT_MS);
}

/* Hands the request to its row's handler: true when res holds the answer now. */
static bool dispatch(struct MHD_Connection *mc, struct request *rq, struct http_response *res)
{
	struct handler_request hr = {
	    .route = &rq->route,
	    .body = rq->body.mem,
	    .len = rq->body.len,
	    .content_type =
		MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE),
	    .idempotency_key = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Idempotency-Key"),
	    .user = rq->user,
	    .roles = rq->roles,
	    .addr = rq->addr,
	};
	bool now;

	if (rq->spec->answer) {
		rq->spec->answer(rq->group->ctx, &hr, res);
		return true;
	}
	rq->pend = pending_new(mc, answer_deadline(rq), rq->group->error);
	if (!rq->pend) {
		rq->group->error(res, 500, "out of memory");
		return true;
	}
	now = rq->spec->handle(rq->group->ctx, &hr, res, on_answer_ready, rq->pend);
	if (now)
		pending_unref(rq->pend); /* the answer's reference: it will not come */
	return now;
}

static enum MHD_Result answer(struct server *s, struct MHD_Connection *mc, struct request *rq,
			      const char *method, const char *url)
{
	struct http_response res;
	enum MHD_Result ret;
	bool now = true;

	conn_set_phase(rq->conn, PHASE_ANSWER);
	if (rq->too_big)
		return send_error(s, mc, 413, "request body is too large", NULL, NULL);
	if (rq->route.kind == ROUTE_HEALTHZ)
		return send_response(s, mc, 200, "text/plain; charset=utf-8", "ok\n", 3, NULL,
				     NULL);
	if (!rq->spec)
		return send_error(s, mc, 404, "no such resource", NULL, NULL);
	http_response_init(&res);
	if (!hop_refused(s, mc, rq, &res))
		now = dispatch(mc, rq, &res);
	if (!now) {
		http_response_clear(&res);
		return wait_for_answer(s, mc, rq);
	}
	rq->sent = true;
	ret = send_answer(s, mc, &res);
	log_answer(rq, method, url, res.status);
	http_response_clear(&res);
	return ret;
}

static enum MHD_Result resumed(struct server *s, struct MHD_Connection *mc, struct request *rq,
			       const char *method, const char *url)
{
	struct pending *p = rq->pend;
	enum MHD_Result ret;
	int status;

	pthread_mutex_lock(&p->mu);
	if (!p->ready) { /* not ours: MHD called again before the answer came */
		pthread_mutex_unlock(&p->mu);
		return MHD_YES;
	}
	pthread_mutex_unlock(&p->mu);
	rq->sent = true;
	status = p->res.status;
	ret = send_answer(s, mc, &p->res);
	log_answer(rq, method, url, status);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_size, void **req_cls)
{
	struct server *s = cls;
	struct request *rq = *req_cls;
	const union MHD_ConnectionInfo *ci;

	(void)version;
	if (!rq) {
		rq = calloc(1, sizeof(*rq));
		if (!rq)
			return MHD_NO;
		*req_cls = rq;
		buf_init(&rq->body, s->deps.listen->max_body);
		rq->started = clock_mono_ms();
		ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
		rq->conn = ci ? ci->socket_context : NULL;
		atomic_fetch_add(&s->inflight, 1);
		conn_set_phase(rq->conn, PHASE_BODY);
		return first_call(s, mc, rq, url, method);
	}
	if (rq->answered) {
		*upload_size = 0;
		if (rq->pend && !rq->sent) /* resumed: the answer is ready */
			return resumed(s, mc, rq, method, url);
		return MHD_YES;
	}
	if (*upload_size) {
		if (!rq->too_big && buf_add(&rq->body, upload_data, *upload_size) != MDM_OK) {
			rq->too_big = true;
			buf_free(&rq->body);
		}
		*upload_size = 0;
		return MHD_YES;
	}
	rq->answered = true;
	return answer(s, mc, rq, method, url);
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **req_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct server *s = cls;
	struct request *rq = *req_cls;

	(void)mc;
	(void)toe;
	if (!rq)
		return;
	/* The next request on a kept-alive connection has the header deadline from now. */
	conn_set_phase(rq->conn, PHASE_HEADERS);
	if (rq->pend) {
		pthread_mutex_lock(&s->mu);
		if (rq->pend->listed) {
			rq->pend->prev->next = rq->pend->next;
			rq->pend->next->prev = rq->pend->prev;
			rq->pend->listed = false;
		}
		pthread_mutex_unlock(&s->mu);
		pending_unref(rq->pend);
	}
	atomic_fetch_sub(&s->inflight, 1);
	buf_free(&rq->body);
	free(rq);
	*req_cls = NULL;
}

/* MHD would percent-decode the path before we split it; the router decodes per segment. */
static size_t keep_escapes(void *cls, struct MHD_Connection *mc, char *s)
{
	(void)cls;
	(void)mc;
	return strlen(s);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) MDM_PRINTF(2, 0);

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	log_debug("mhd: %s", line);
}

/* --- start and stop ------------------------------------------------------------------------ */

static enum mdm_err read_pem(const char *path, char **out, char *why, size_t whysz)
{
	FILE *f = fopen(path, "rb");
	struct buf b;
	char chunk[4096];
	size_t n;
	enum mdm_err e = MDM_OK;

	if (!f) {
		snprintf(why, whysz, "%s: cannot open", path);
		return MDM_ERR_IO;
	}
	buf_init(&b, PEM_MAX);
	while (!e && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		e = buf_add(&b, chunk, n);
	fclose(f);
	if (!e && b.len == 0)
		e = MDM_ERR_INVALID;
	if (e) {
		snprintf(why, whysz, "%s: %s", path,
			 e == MDM_ERR_TOOBIG ? "larger than 1 MiB" : "empty or unreadable");
		buf_free(&b);
		return e;
	}
	*out = buf_take(&b, NULL);
	return MDM_OK;
}

static enum mdm_err listen_address(const struct config_listen *l, struct sockaddr_storage *ss,
				   bool *v6, char *why, size_t whysz)
{
	struct sockaddr_in *a4 = (struct sockaddr_in *)(void *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)(void *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, l->address, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)l->port);
		*v6 = false;
		return MDM_OK;
	}
	if (inet_pton(AF_INET6, l->address, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)l->port);
		*v6 = true;
		return MDM_OK;
	}
	snprintf(why, whysz, "listen.address: %s is not an IPv4 or IPv6 address", l->address);
	return MDM_ERR_CONFIG;
}

void server_raise_nofile(unsigned want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want)
		log_warn("server: open-file limit is %llu, below the %u that max_connections needs",
			 (unsigned long long)rl.rlim_cur, want);
}

enum mdm_err server_start(const struct server_deps *deps, struct server **out, char *why,
			  size_t whysz)
{
	const struct config_listen *l = deps->listen;
	struct server *s = calloc(1, sizeof(*s));
	struct sockaddr_storage ss;
	bool v6 = false;
	unsigned flags;
	enum mdm_err e;

	*out = NULL;
	if (!s)
		return MDM_ERR_NOMEM;
	s->deps = *deps;
	s->conns.next = s->conns.prev = &s->conns;
	s->pendings.next = s->pendings.prev = &s->pendings;
	pthread_mutex_init(&s->mu, NULL);
	clock_cond_init(&s->stop_cv);
	e = handler_table_build(&s->table, deps->routes, deps->nroutes, why, whysz);
	if (!e)
		e = read_pem(l->cert_file, &s->cert_pem, why, whysz);
	if (!e)
		e = read_pem(l->key_file, &s->key_pem, why, whysz);
	if (!e)
		e = listen_address(l, &ss, &v6, why, whysz);
	if (e)
		goto fail;
	server_raise_nofile(l->max_connections + 64);
	flags = MHD_USE_TLS | MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG |
		MHD_ALLOW_SUSPEND_RESUME | (v6 ? MHD_USE_IPv6 : 0);
	s->daemon = MHD_start_daemon(
	    flags, (uint16_t)l->port, on_accept, s, on_request, s, MHD_OPTION_SOCK_ADDR,
	    (struct sockaddr *)&ss, MHD_OPTION_HTTPS_MEM_CERT, s->cert_pem,
	    MHD_OPTION_HTTPS_MEM_KEY, s->key_pem, MHD_OPTION_HTTPS_PRIORITIES,
	    SERVER_TLS_PRIORITIES, MHD_OPTION_THREAD_POOL_SIZE, l->threads,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)((l->idle_timeout_ms + 999) / 1000),
	    MHD_OPTION_CONNECTION_LIMIT, l->max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	    l->max_connections_per_ip, MHD_OPTION_CONNECTION_MEMORY_LIMIT, l->header_memory,
	    MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_NOTIFY_COMPLETED,
	    on_completed, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
	    MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_UNESCAPE_CALLBACK, keep_escapes,
	    NULL, MHD_OPTION_END);
	if (!s->daemon) {
		snprintf(why, whysz,
			 "cannot listen on %s port %u (address in use, no permission, or a bad "
			 "certificate/key pair)",
			 l->address, l->port);
		e = MDM_ERR_IO;
		goto fail;
	}
	if (pthread_create(&s->reaper, NULL, reaper_main, s) != 0) {
		MHD_stop_daemon(s->daemon);
		snprintf(why, whysz, "cannot start the deadline thread");
		e = MDM_ERR_INTERNAL;
		goto fail;
	}
	*out = s;
	return MDM_OK;
fail:
	free(s->cert_pem);
	free(s->key_pem);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->stop_cv);
	free(s);
	return e;
}

unsigned server_stop(struct server *s, int64_t grace_ms)
{
	int64_t until = clock_mono_ms() + grace_ms;
	struct timespec ts = {0, 20 * 1000000L};
	unsigned left;

	atomic_store(&s->draining, true);
	while ((left = atomic_load(&s->inflight)) > 0 && clock_mono_ms() < until)
		nanosleep(&ts, NULL);
	/* MHD must not stop with a suspended connection: answer every one, then let them go. */
	if (answer_overdue(s, true, "the gateway is shutting down; try again") > 0) {
		/* Short answers, already made: only a stalled client keeps us this long. */
		until = clock_mono_ms() + SUSPENDED_SEND_MS;
		while ((left = atomic_load(&s->inflight)) > 0 && clock_mono_ms() < until)
			nanosleep(&ts, NULL);
	}
	pthread_mutex_lock(&s->mu);
	s->stopping = true;
	pthread_cond_signal(&s->stop_cv);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->reaper, NULL);
	MHD_stop_daemon(s->daemon);
	log_info("server: stopped (%u requests unfinished; %lu header and %lu body deadlines cut)",
		 left, atomic_load(&s->deps.stats->cut_header),
		 atomic_load(&s->deps.stats->cut_body));
	free(s->cert_pem);
	free(s->key_pem);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->stop_cv);
	free(s);
	return left;
}
