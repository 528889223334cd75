/* coa_radius: the RFC 5176 CoA sink; see coa_radius.h. */
#include "coa_radius.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../core/buf.h"
#include "../../core/clock.h"
#include "../../core/log.h"
#include "radius.h"

struct peer {
	struct config_nas cfg;
	struct sockaddr_storage addr; /* in the socket's family (IPv4 mapped into IPv6) */
	socklen_t addrlen;
	char where[320];  /* "host:port" for logs */
	size_t space;	  /* the first peer with the same destination: owns the identifiers */
	uint8_t used[32]; /* (in the owner) identifiers of outstanding requests, one bit each */
	unsigned next_id; /* (in the owner) where the search for a free identifier starts */
};

struct pending {
	struct pending *next;
	size_t peer;
	uint8_t id;
	uint8_t code;
	uint8_t auth[RADIUS_AUTH_LEN];
	uint8_t pkt[RADIUS_MAX_LEN];
	size_t len;
	unsigned tries_done;
	int64_t deadline; /* clock_mono_ms when the current wait ends */
	bool done;	  /* res holds the outcome; the thread calls cb and frees */
	struct coa_result res;
	char ev_id[160];
	uint64_t epoch;
	coa_sink_cb cb;
	void *arg;
};

struct crad {
	struct coa_sink sink;
	struct peer *peers;
	size_t npeers;
	int fd, family;
	int wake[2]; /* a pipe: send() and destroy() interrupt the thread's poll */
	pthread_t thr;
	bool thr_started;
	pthread_mutex_t mu;
	struct pending *head; /* guarded by mu, as are peers[].used and stopping */
	bool stopping;
	struct radius_pkt *pkt; /* the thread's parse space (~6 KB: off its stack) */
};

/* --- small helpers ----------------------------------------------------------------------------
 */

enum mdm_err coa_radius_station_id(const char *mac, char out[18])
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	out[0] = '\0';
	if (!mac || strlen(mac) != 12)
		return MDM_ERR_INVALID;
	for (size_t i = 0; i < 12; i++) {
		char c = mac[i];
		const char *p;

		if (c >= 'a' && c <= 'f')
			c = (char)(c - 'a' + 'A');
		p = c ? strchr(hex, c) : NULL;
		if (!p) {
			out[0] = '\0';
			return MDM_ERR_INVALID;
		}
		out[o++] = *p;
		if (i % 2 == 1 && i < 11)
			out[o++] = '-';
	}
	out[o] = '\0';
	return MDM_OK;
}

/* same_ip: two textual addresses name the same IP ("10.0.0.1" vs "::ffff:10.0.0.1" too). */
static bool same_ip(const char *a, const char *b)
{
	unsigned char x[16], y[16];
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (!a[0] || !b[0])
		return false;
	memcpy(x, mapped, 12);
	memcpy(y, mapped, 12);
	if (inet_pton(AF_INET, a, x + 12) != 1 && inet_pton(AF_INET6, a, x) != 1)
		return false;
	if (inet_pton(AF_INET, b, y + 12) != 1 && inet_pton(AF_INET6, b, y) != 1)
		return false;
	return memcmp(x, y, 16) == 0;
}

/* find_peer: the NAS of session s (identifier first, then address); npeers when none. */
static size_t find_peer(const struct crad *r, const struct coa_session *s)
{
	for (size_t i = 0; i < r->npeers; i++)
		if (r->peers[i].cfg.identifier[0] && s->nas_id[0] &&
		    strcmp(r->peers[i].cfg.identifier, s->nas_id) == 0)
			return i;
	for (size_t i = 0; i < r->npeers; i++)
		if (same_ip(r->peers[i].cfg.address, s->nas_ip))
			return i;
	return r->npeers;
}

/* same_sockaddr: a reply's source is the peer's address and port. */
static bool same_sockaddr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

		return x->sin6_port == y->sin6_port &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
	}
	return false;
}

static bool id_used(const struct peer *p, unsigned id)
{
	return p->used[id / 8] & (1u << (id % 8));
}

static void id_set(struct peer *p, unsigned id, bool on)
{
	if (on)
		p->used[id / 8] = (uint8_t)(p->used[id / 8] | (1u << (id % 8)));
	else
		p->used[id / 8] = (uint8_t)(p->used[id / 8] & ~(1u << (id % 8)));
}

/* id_alloc: a free identifier for peer p, rotating so a late reply to a finished request is not
 * taken for the next one at once; -1 when all 256 are out. Called with mu held. */
static int id_alloc(struct peer *p)
{
	for (unsigned k = 0; k < 256; k++) {
		unsigned id = (p->next_id + k) % 256;

		if (!id_used(p, id)) {
			id_set(p, id, true);
			p->next_id = (id + 1) % 256;
			return (int)id;
		}
	}
	return -1;
}

static void wake(struct crad *r)
{
	char c = 1;

	if (write(r->wake[1], &c, 1) < 0 && errno != EAGAIN)
		log_warn("coa radius: cannot wake the receive thread: %s", strerror(errno));
}

/* finish: records the outcome and frees the identifier; the thread delivers it. mu held. */
static void finish(struct crad *r, struct pending *p, enum coa_outcome o, const char *detail)
{
	p->done = true;
	p->res.outcome = o;
	if (str_copy(p->res.detail, sizeof(p->res.detail), detail) != MDM_OK)
		p->res.detail[0] = '\0';
	if (p->peer < r->npeers)
		id_set(&r->peers[r->peers[p->peer].space], p->id, false);
}

/* --- building a request -----------------------------------------------------------------------
 */

/* request_code: Disconnect-Request for a disconnect event or NAS, CoA-Request otherwise. */
static uint8_t request_code(const struct config_nas *n, const struct transition *ev)
{
	if (ev->kind == TRANSITION_DISCONNECT || n->action == CONFIG_NAS_DISCONNECT)
		return RADIUS_DISCONNECT_REQUEST;
	return RADIUS_COA_REQUEST;
}

/* add_nas_ip: NAS-IP-Address (also for "::ffff:a.b.c.d"), or NAS-IPv6-Address for an IPv6
 * NAS; nothing when not an IP. */
static void add_nas_ip(struct radius_builder *b, const char *ip)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (inet_pton(AF_INET, ip, &a4) == 1)
		radius_add_bytes(b, RADIUS_NAS_IP_ADDRESS, &a4.s_addr, 4);
	else if (inet_pton(AF_INET6, ip, &a6) == 1 && IN6_IS_ADDR_V4MAPPED(&a6))
		radius_add_bytes(b, RADIUS_NAS_IP_ADDRESS, &a6.s6_addr[12], 4);
	else if (inet_pton(AF_INET6, ip, &a6) == 1)
		radius_add_bytes(b, RADIUS_NAS_IPV6_ADDRESS, &a6, sizeof(a6));
}

static enum mdm_err build(struct pending *p, const struct config_nas *n,
			  const struct transition *ev, const struct coa_session *s)
{
	struct radius_builder *b = malloc(sizeof(*b));
	const char *mac = s->mac[0] ? s->mac : ev->mac;
	char station[18];
	int64_t now_s = clock_wall_ms() / 1000;
	enum mdm_err e;

	if (!b)
		return MDM_ERR_NOMEM;
	radius_builder_init(b, p->code, p->id);
	add_nas_ip(b, s->nas_ip[0] ? s->nas_ip : n->address);
	if (s->nas_id[0])
		radius_add_str(b, RADIUS_NAS_IDENTIFIER, s->nas_id);
	if (s->user_name[0])
		radius_add_str(b, RADIUS_USER_NAME, s->user_name);
	if (coa_radius_station_id(mac, station) == MDM_OK)
		radius_add_str(b, RADIUS_CALLING_STATION_ID, station);
	if (s->acct_session_id[0])
		radius_add_str(b, RADIUS_ACCT_SESSION_ID, s->acct_session_id);
	radius_add_u32(b, RADIUS_EVENT_TIMESTAMP, (uint32_t)(now_s > 0 ? now_s : 0));
	if (p->code == RADIUS_COA_REQUEST && n->action == CONFIG_NAS_BOUNCE)
		radius_add_cisco_avpair(b, "subscriber:command=bounce-host-port");
	else if (p->code == RADIUS_COA_REQUEST && n->cisco_avpair)
		radius_add_cisco_avpair(b, "subscriber:command=reauthenticate");
	radius_add_ma(b);
	e = radius_finish_request(b, n->secret);
	if (e == MDM_OK) {
		memcpy(p->pkt, b->buf, b->len);
		p->len = b->len;
		memcpy(p->auth, b->buf + 4, RADIUS_AUTH_LEN);
	}
	free(b);
	return e;
}

/* transmit: one try of p (mu held); a failing sendto counts as a try that got no answer. */
static void transmit(struct crad *r, struct pending *p)
{
	const struct peer *pe = &r->peers[p->peer];
	ssize_t n;

	p->tries_done++;
	log_info("coa radius: %s epoch %" PRIu64 ": %s id %u to %s (NAS %s), try %u of %u",
		 p->ev_id, p->epoch, radius_code_name(p->code), p->id, pe->where, pe->cfg.address,
		 p->tries_done, pe->cfg.tries);
	n = sendto(r->fd, p->pkt, p->len, 0, (const struct sockaddr *)&pe->addr, pe->addrlen);
	if (n < 0)
		log_warn("coa radius: %s epoch %" PRIu64 ": send to %s: %s", p->ev_id, p->epoch,
			 pe->where, strerror(errno));
	p->deadline = clock_mono_ms() + coa_policy_nas_wait_ms(pe->cfg.timeout_ms, p->tries_done);
}

/* --- send / the sink's entry point ------------------------------------------------------------
 */

static enum mdm_err crad_send(void *sink, const struct transition *ev, const struct coa_session *s,
			      coa_sink_cb cb, void *arg)
{
	struct crad *r = ((struct coa_sink *)sink)->priv;
	struct pending *p;
	size_t pi;
	int id;
	enum mdm_err e;

	if (!ev || !s || !cb)
		return MDM_ERR_INVALID;
	p = calloc(1, sizeof(*p));
	if (!p)
		return MDM_ERR_NOMEM;
	str_copy(p->ev_id, sizeof(p->ev_id), ev->id);
	p->epoch = ev->epoch;
	p->cb = cb;
	p->arg = arg;
	pi = find_peer(r, s);
	p->peer = pi;
	pthread_mutex_lock(&r->mu);
	if (pi == r->npeers) {
		char d[sizeof(p->res.detail)];

		snprintf(d, sizeof(d), "no NAS configured for %s",
			 s->nas_ip[0] ? s->nas_ip : (s->nas_id[0] ? s->nas_id : "(unknown NAS)"));
		finish(r, p, COA_ERROR, d);
		goto queue;
	}
	id = id_alloc(&r->peers[r->peers[pi].space]);
	if (id < 0) {
		pthread_mutex_unlock(&r->mu);
		log_warn("coa radius: %s epoch %" PRIu64 ": 256 requests already out to %s", ev->id,
			 ev->epoch, r->peers[pi].where);
		free(p);
		return MDM_ERR_BUSY;
	}
	p->id = (uint8_t)id;
	p->code = request_code(&r->peers[pi].cfg, ev);
	e = build(p, &r->peers[pi].cfg, ev, s);
	if (e != MDM_OK) {
		char d[sizeof(p->res.detail)];

		snprintf(d, sizeof(d), "cannot build the %s: %s", radius_code_name(p->code),
			 err_str(e));
		finish(r, p, COA_ERROR, d);
		goto queue;
	}
	transmit(r, p);
queue:
	p->next = r->head;
	r->head = p;
	pthread_mutex_unlock(&r->mu);
	wake(r);
	return MDM_OK;
}

/* --- the thread: replies, retransmissions, callbacks ------------------------------------------
 */

/* nak_detail: "CoA-NAK Error-Cause=503 (Session-Context-Not-Found)"; *cause gets the value. */
static void nak_detail(const struct radius_pkt *pkt, char *out, size_t outsz, uint32_t *cause)
{
	*cause = 0;
	if (radius_attr_u32(pkt, RADIUS_ERROR_CAUSE, cause) == MDM_OK)
		snprintf(out, outsz, "%s Error-Cause=%" PRIu32 " (%s)", radius_code_name(pkt->code),
			 *cause, radius_error_cause_name(*cause));
	else
		snprintf(out, outsz, "%s without Error-Cause", radius_code_name(pkt->code));
}

/* settle: the outcome of verified reply pkt to p. mu held. */
static void settle(struct crad *r, struct pending *p, const struct radius_pkt *pkt)
{
	char d[sizeof(p->res.detail)];
	uint32_t cause;

	if (pkt->code == p->code + 1) {
		finish(r, p, COA_OK, radius_code_name(pkt->code));
		return;
	}
	nak_detail(pkt, d, sizeof(d), &cause);
	finish(r, p, cause == RADIUS_EC_SESSION_CONTEXT_NOT_FOUND ? COA_NO_SESSION : COA_REFUSED,
	       d);
}

/* on_reply: matches one datagram to an outstanding request, verifies and settles it. mu held. */
static void on_reply(struct crad *r, const uint8_t *buf, size_t len,
		     const struct sockaddr_storage *from, struct radius_pkt *pkt)
{
	struct pending *p = NULL;
	const struct peer *pe;
	size_t pi;
	enum mdm_err e;

	/* The first peer with this address owns the identifier space of that destination. */
	for (pi = 0; pi < r->npeers; pi++)
		if (same_sockaddr(&r->peers[pi].addr, from))
			break;
	if (pi == r->npeers || len < RADIUS_HDR_LEN) {
		log_warn("coa radius: dropped a datagram of %zu bytes from an unknown peer", len);
		return;
	}
	for (p = r->head; p; p = p->next)
		if (!p->done && p->peer < r->npeers && r->peers[p->peer].space == pi &&
		    p->id == buf[1])
			break;
	if (!p) {
		log_info(
		    "coa radius: dropped a reply id %u from %s: no request outstanding (late?)",
		    buf[1], r->peers[pi].where);
		return;
	}
	pe = &r->peers[p->peer];
	e = radius_parse(buf, len, pkt);
	if (e == MDM_OK && pkt->code != p->code + 1 && pkt->code != p->code + 2)
		e = MDM_ERR_INVALID;
	if (e == MDM_OK)
		e = radius_verify_response(buf, len, p->auth, pe->cfg.secret,
					   pe->cfg.require_message_authenticator);
	if (e != MDM_OK) {
		log_warn(
		    "coa radius: %s epoch %" PRIu64 ": dropped a reply (%s, id %u) from %s: %s",
		    p->ev_id, p->epoch, radius_code_name(buf[0]), buf[1], pe->where,
		    e == MDM_ERR_AUTH ? (pkt->ma_off < 0 && pe->cfg.require_message_authenticator
					     ? "no Message-Authenticator, which is required"
					     : "authenticator or Message-Authenticator wrong "
					       "(shared secret?)")
		    : e == MDM_ERR_INVALID ? "a code that does not answer the request"
					   : "malformed");
		return;
	}
	settle(r, p, pkt);
}

static void drain(struct crad *r, struct radius_pkt *pkt)
{
	uint8_t buf[RADIUS_MAX_LEN + 1];
	char c[64];

	while (read(r->wake[0], c, sizeof(c)) > 0)
		;
	for (;;) {
		struct sockaddr_storage from;
		socklen_t fl = sizeof(from);
		ssize_t n =
		    recvfrom(r->fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);

		if (n < 0)
			return;
		pthread_mutex_lock(&r->mu);
		on_reply(r, buf, (size_t)n, &from, pkt);
		pthread_mutex_unlock(&r->mu);
	}
}

/* expire: retransmits or gives up on the requests whose wait ended. mu held. */
static void expire(struct crad *r, int64_t now)
{
	for (struct pending *p = r->head; p; p = p->next) {
		const struct peer *pe;
		char d[sizeof(p->res.detail)];

		if (p->done || p->deadline > now)
			continue;
		pe = &r->peers[p->peer];
		if (p->tries_done < pe->cfg.tries) {
			transmit(r, p);
			continue;
		}
		snprintf(d, sizeof(d), "no answer from %s after %u tries", pe->where,
			 p->tries_done);
		finish(r, p, COA_NO_ANSWER, d);
	}
}

/* take_done: unlinks the finished requests (mu held); returns them, and the next deadline. */
static struct pending *take_done(struct crad *r, int64_t *next)
{
	struct pending *done = NULL, **pp = &r->head;

	*next = INT64_MAX;
	while (*pp) {
		struct pending *p = *pp;

		if (!p->done) {
			if (p->deadline < *next)
				*next = p->deadline;
			pp = &p->next;
			continue;
		}
		*pp = p->next;
		p->next = done;
		done = p;
	}
	return done;
}

static void deliver(struct pending *done)
{
	while (done) {
		struct pending *p = done;

		done = p->next;
		if (p->res.outcome == COA_OK)
			log_info("coa radius: %s epoch %" PRIu64 ": %s: %s", p->ev_id, p->epoch,
				 coa_outcome_name(p->res.outcome), p->res.detail);
		else
			log_warn("coa radius: %s epoch %" PRIu64 ": %s: %s", p->ev_id, p->epoch,
				 coa_outcome_name(p->res.outcome), p->res.detail);
		p->cb(p->arg, &p->res);
		free(p);
	}
}

static void *loop(void *arg)
{
	struct crad *r = arg;

	for (;;) {
		struct pollfd fds[2] = {{r->fd, POLLIN, 0}, {r->wake[0], POLLIN, 0}};
		struct pending *done;
		int64_t next, now;
		bool quit;
		int ms;

		pthread_mutex_lock(&r->mu);
		expire(r, clock_mono_ms());
		done = take_done(r, &next);
		quit = r->stopping && !r->head;
		pthread_mutex_unlock(&r->mu);
		deliver(done);
		if (quit)
			break;
		now = clock_mono_ms();
		ms = next == INT64_MAX ? 1000 : (next <= now ? 0 : (int)(next - now));
		if (poll(fds, 2, ms) > 0)
			drain(r, r->pkt);
	}
	return NULL;
}

/* --- create / destroy -------------------------------------------------------------------------
 */

static void crad_free(struct crad *r)
{
	if (r->thr_started) {
		pthread_mutex_lock(&r->mu);
		r->stopping = true;
		pthread_mutex_unlock(&r->mu);
		wake(r);
		pthread_join(r->thr, NULL);
	}
	if (r->fd >= 0)
		close(r->fd);
	if (r->wake[0] >= 0)
		close(r->wake[0]);
	if (r->wake[1] >= 0)
		close(r->wake[1]);
	pthread_mutex_destroy(&r->mu);
	free(r->pkt);
	if (r->peers) {
		explicit_bzero(r->peers, r->npeers * sizeof(*r->peers));
		free(r->peers);
	}
	free(r);
}

static void crad_destroy(void *sink)
{
	crad_free(((struct coa_sink *)sink)->priv);
}

static const struct coa_sink_ops crad_ops = {"radius", true, crad_send, crad_destroy};

/* open_socket: IPv6 taking IPv4-mapped peers too; IPv4 only where IPv6 is not there. */
static enum mdm_err open_socket(struct crad *r)
{
	struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT};
	struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY)};
	int off = 0;

	r->fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (r->fd >= 0 && setsockopt(r->fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)) == 0 &&
	    bind(r->fd, (struct sockaddr *)&a6, sizeof(a6)) == 0) {
		r->family = AF_INET6;
		return MDM_OK;
	}
	if (r->fd >= 0)
		close(r->fd);
	r->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (r->fd < 0 || bind(r->fd, (struct sockaddr *)&a4, sizeof(a4)) != 0)
		return MDM_ERR_IO;
	r->family = AF_INET;
	return MDM_OK;
}

/* resolve: the peer's host:port in the socket's family. */
static enum mdm_err resolve(struct crad *r, struct peer *pe, size_t i, char *why, size_t whysz)
{
	struct addrinfo hints = {.ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res = NULL, *ai;
	char port[8];
	int rc;

	snprintf(port, sizeof(port), "%u", pe->cfg.port);
	hints.ai_family = r->family == AF_INET ? AF_INET : AF_UNSPEC;
	rc = getaddrinfo(pe->cfg.host, port, &hints, &res);
	if (rc != 0) {
		err_why(why, whysz, "nas[%zu].host: cannot resolve \"%s\": %s", i, pe->cfg.host,
			gai_strerror(rc));
		return MDM_ERR_CONFIG;
	}
	for (ai = res; ai; ai = ai->ai_next)
		if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6)
			break;
	if (!ai) {
		freeaddrinfo(res);
		err_why(why, whysz, "nas[%zu].host: \"%s\" has no IP address", i, pe->cfg.host);
		return MDM_ERR_CONFIG;
	}
	memset(&pe->addr, 0, sizeof(pe->addr));
	if (r->family == AF_INET6 && ai->ai_family == AF_INET) {
		const struct sockaddr_in *v4 = (const void *)ai->ai_addr;
		struct sockaddr_in6 *v6 = (void *)&pe->addr;

		v6->sin6_family = AF_INET6;
		v6->sin6_port = v4->sin_port;
		v6->sin6_addr.s6_addr[10] = 0xff;
		v6->sin6_addr.s6_addr[11] = 0xff;
		memcpy(&v6->sin6_addr.s6_addr[12], &v4->sin_addr, 4);
		pe->addrlen = sizeof(*v6);
	} else {
		memcpy(&pe->addr, ai->ai_addr, ai->ai_addrlen);
		pe->addrlen = ai->ai_addrlen;
	}
	freeaddrinfo(res);
	snprintf(pe->where, sizeof(pe->where), strchr(pe->cfg.host, ':') ? "[%s]:%u" : "%s:%u",
		 pe->cfg.host, pe->cfg.port);
	return MDM_OK;
}

enum mdm_err coa_radius_create(const struct config_nas *nas, size_t n, struct coa_sink **out,
			       char *why, size_t whysz)
{
	struct crad *r = calloc(1, sizeof(*r));
	enum mdm_err e = MDM_ERR_NOMEM;

	*out = NULL;
	if (!r)
		return MDM_ERR_NOMEM;
	r->fd = r->wake[0] = r->wake[1] = -1;
	pthread_mutex_init(&r->mu, NULL);
	r->peers = calloc(n ? n : 1, sizeof(*r->peers));
	r->pkt = malloc(sizeof(*r->pkt));
	if (!r->peers || !r->pkt)
		goto fail;
	r->npeers = n;
	e = MDM_ERR_IO;
	if (open_socket(r) != MDM_OK || pipe(r->wake) != 0 ||
	    fcntl(r->wake[0], F_SETFL, O_NONBLOCK) != 0 ||
	    fcntl(r->wake[1], F_SETFL, O_NONBLOCK) != 0) {
		err_why(why, whysz, "coa radius: cannot open a UDP socket: %s", strerror(errno));
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		struct config_nas *c = &r->peers[i].cfg;

		/* Entries made by hand (not by config_load) get the documented defaults. */
		*c = nas[i];
		if (!c->host[0])
			str_copy(c->host, sizeof(c->host), c->address);
		c->port = c->port ? c->port : COA_NAS_PORT_DEFAULT;
		c->timeout_ms = c->timeout_ms > 0 ? c->timeout_ms : COA_NAS_TIMEOUT_MS_DEFAULT;
		c->tries = c->tries ? c->tries : COA_NAS_TRIES_DEFAULT;
		e = resolve(r, &r->peers[i], i, why, whysz);
		if (e != MDM_OK)
			goto fail;
		/* NAS entries sharing a destination (identifiers behind one address) share
		 * its identifiers, so that a reply matches exactly one request. */
		r->peers[i].space = i;
		for (size_t j = 0; j < i; j++)
			if (same_sockaddr(&r->peers[j].addr, &r->peers[i].addr)) {
				r->peers[i].space = j;
				break;
			}
	}
	if (pthread_create(&r->thr, NULL, loop, r) != 0) {
		e = MDM_ERR_IO;
		err_why(why, whysz, "coa radius: cannot start its thread");
		goto fail;
	}
	r->thr_started = true;
	r->sink.ops = &crad_ops;
	str_copy(r->sink.name, sizeof(r->sink.name), "radius");
	r->sink.priv = r;
	*out = &r->sink;
	return MDM_OK;
fail:
	crad_free(r);
	return e;
}
