#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../core/clock.h"
#include "../../core/ident.h"
#include "../../core/log.h"
#include "acct.h"
#include "radius.h"

#define POLL_MS 200	      /* how soon acct_stop is noticed */
#define EXPIRE_EVERY_MS 30000 /* stale sessions are swept this often */
#define WARN_EVERY_MS 60000   /* a flood of bad datagrams warns once a minute per kind */

enum drop_kind { DROP_CLIENT = 0, DROP_MALFORMED, DROP_AUTH, DROP_KINDS };

enum { ATTR_NAS_IPV6 = 95 }; /* NAS-IPv6-Address (RFC 3162), which radius.h does not name */

struct acct {
	int fd;
	unsigned port;
	pthread_t thread;
	atomic_bool stop;
	struct sessions *sessions;
	struct config_acct_client clients[CONFIG_MAX_ACCT_CLIENTS];
	size_t nclients;
	struct acct_stats stats;
	int64_t warned_ms[DROP_KINDS]; /* listener thread only */
};

/* A printable attribute value into a fixed field; "" when absent, too long or not text. */
static void take_text(const struct radius_pkt *p, uint8_t type, char *dst, size_t size)
{
	if (radius_attr_str(p, type, dst, size) != MDM_OK) {
		dst[0] = '\0';
		return;
	}
	for (const char *c = dst; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f) {
			dst[0] = '\0';
			return;
		}
}

/* The session an Accounting-Request describes (MAC not yet: the caller parses it). */
static void take_session(const struct radius_pkt *p, struct coa_session *s)
{
	const struct radius_attr *a;

	memset(s, 0, sizeof(*s));
	take_text(p, RADIUS_USER_NAME, s->user_name, sizeof(s->user_name));
	take_text(p, RADIUS_NAS_IDENTIFIER, s->nas_id, sizeof(s->nas_id));
	take_text(p, RADIUS_ACCT_SESSION_ID, s->acct_session_id, sizeof(s->acct_session_id));
	s->has_nas_port = radius_attr_u32(p, RADIUS_NAS_PORT, &s->nas_port) == MDM_OK;
	/* NAS-IP-Address wins when both are sent; neither: the caller uses the source. */
	a = radius_attr_find(p, 0, RADIUS_NAS_IP_ADDRESS, 0, NULL);
	if (a && a->len == 4 && inet_ntop(AF_INET, a->value, s->nas_ip, sizeof(s->nas_ip)))
		return;
	a = radius_attr_find(p, 0, ATTR_NAS_IPV6, 0, NULL);
	if (!a || a->len != 16 || !inet_ntop(AF_INET6, a->value, s->nas_ip, sizeof(s->nas_ip)))
		s->nas_ip[0] = '\0';
}

/* --- clients ------------------------------------------------------------------------------ */

/* The source as an address of its own family (a v4-mapped v6 source is v4). */
static int source_addr(const struct sockaddr_storage *ss, unsigned char addr[16], char *text,
		       size_t textsz)
{
	if (ss->ss_family == AF_INET) {
		memcpy(addr, &((const struct sockaddr_in *)(const void *)ss)->sin_addr, 4);
	} else if (ss->ss_family == AF_INET6) {
		const struct in6_addr *a6 =
		    &((const struct sockaddr_in6 *)(const void *)ss)->sin6_addr;

		if (!IN6_IS_ADDR_V4MAPPED(a6)) {
			memcpy(addr, a6, 16);
			inet_ntop(AF_INET6, addr, text, (socklen_t)textsz);
			return AF_INET6;
		}
		memcpy(addr, a6->s6_addr + 12, 4);
	} else {
		return AF_UNSPEC;
	}
	inet_ntop(AF_INET, addr, text, (socklen_t)textsz);
	return AF_INET;
}

static bool in_net(const struct config_acct_client *c, int family, const unsigned char *addr)
{
	unsigned full = c->prefix / 8, rest = c->prefix % 8;

	if (c->family != family || memcmp(c->net, addr, full) != 0)
		return false;
	return rest == 0 || ((c->net[full] ^ addr[full]) & (0xffu << (8 - rest)) & 0xffu) == 0;
}

/* The client the source belongs to: the longest matching prefix; NULL for none. */
static const struct config_acct_client *find_client(const struct acct *a, int family,
						    const unsigned char *addr)
{
	const struct config_acct_client *best = NULL;

	for (size_t i = 0; i < a->nclients; i++)
		if (in_net(&a->clients[i], family, addr) &&
		    (!best || a->clients[i].prefix > best->prefix))
			best = &a->clients[i];
	return best;
}

/* --- one request -------------------------------------------------------------------------- */

/*
 * A dropped datagram: a warning once a minute per kind (a wrong secret or a missing client
 * entry is a configuration error someone must see), debug lines otherwise.
 */
static void dropped(struct acct *a, enum drop_kind k, const char *src, const char *why)
{
	int64_t now = clock_mono_ms();

	if (now - a->warned_ms[k] < WARN_EVERY_MS) {
		log_debug("acct: datagram from %s dropped: %s", src, why);
		return;
	}
	a->warned_ms[k] = now;
	log_warn("acct: datagram from %s dropped: %s (warned once a minute; counted in "
		 "mdmgw_acct_*_total)",
		 src, why);
}

/* Start and Interim-Update: the session, refreshed. */
static void put_session(struct acct *a, const struct coa_session *s, const char *src)
{
	enum mdm_err e = sessions_put(a->sessions, s);

	/* A full table logs and counts itself (mdmgw_sessions_refused_total). */
	if (e != MDM_OK && e != MDM_ERR_TOOBIG)
		log_warn("acct: session of %s from %s not stored: %s", s->mac, src, err_str(e));
}

/* What the request asks of the table. The answer is sent whatever happens here. */
static void apply(struct acct *a, const struct radius_pkt *p, struct coa_session *s,
		  const char *src)
{
	const struct radius_attr *calling;
	uint32_t status = 0;
	bool local;
	size_t n;

	radius_attr_u32(p, RADIUS_ACCT_STATUS_TYPE, &status);
	if (status == RADIUS_ACCT_ON || status == RADIUS_ACCT_OFF) {
		atomic_fetch_add(&a->stats.nas_resets, 1);
		n = sessions_clear_nas(a->sessions, s->nas_ip, s->nas_id);
		log_info("acct: %s from NAS %s (%s): %zu sessions dropped",
			 radius_acct_status_name(status), s->nas_ip, s->nas_id[0] ? s->nas_id : "-",
			 n);
		return;
	}
	if (status != RADIUS_ACCT_START && status != RADIUS_ACCT_STOP &&
	    status != RADIUS_ACCT_INTERIM_UPDATE)
		return; /* Tunnel-*, Accounting-Failed...: nothing to keep */
	atomic_fetch_add(status == RADIUS_ACCT_START  ? &a->stats.starts
			 : status == RADIUS_ACCT_STOP ? &a->stats.stops
						      : &a->stats.interims,
			 1);
	calling = radius_attr_find(p, 0, RADIUS_CALLING_STATION_ID, 0, NULL);
	if (!calling ||
	    mac_parse((const char *)calling->value, calling->len, s->mac, &local, NULL, 0)) {
		atomic_fetch_add(&a->stats.no_mac, 1);
		return;
	}
	if (status == RADIUS_ACCT_STOP) {
		sessions_remove(a->sessions, s->mac, s->nas_ip, s->nas_id, s->acct_session_id);
		return;
	}
	s->updated_ms = clock_wall_ms();
	put_session(a, s, src);
}

/* The Accounting-Response to req: no attributes, Response Authenticator (RFC 2866 3). */
static void answer(struct acct *a, const struct radius_pkt *req, const char *secret,
		   const struct sockaddr_storage *to, socklen_t tolen, const char *src)
{
	struct radius_builder b;

	radius_builder_init(&b, RADIUS_ACCOUNTING_RESPONSE, req->id);
	if (radius_finish_response(&b, req->auth, secret) != MDM_OK ||
	    sendto(a->fd, b.buf, b.len, 0, (const struct sockaddr *)to, tolen) != (ssize_t)b.len) {
		log_warn("acct: cannot answer %s: %s", src, strerror(errno));
		return;
	}
	atomic_fetch_add(&a->stats.responses, 1);
}

static void handle(struct acct *a, const uint8_t *buf, size_t got,
		   const struct sockaddr_storage *from, socklen_t fromlen)
{
	const struct config_acct_client *c;
	unsigned char addr[16];
	char src[INET6_ADDRSTRLEN] = "?";
	struct radius_pkt p;
	struct coa_session s;
	enum mdm_err e;
	int family = source_addr(from, addr, src, sizeof(src));

	c = family == AF_UNSPEC ? NULL : find_client(a, family, addr);
	if (!c) {
		atomic_fetch_add(&a->stats.unknown_client, 1);
		dropped(a, DROP_CLIENT, src, "not a configured accounting client");
		return;
	}
	if (radius_parse(buf, got, &p) != MDM_OK || p.code != RADIUS_ACCOUNTING_REQUEST) {
		atomic_fetch_add(&a->stats.malformed, 1);
		dropped(a, DROP_MALFORMED, src, "not a well-formed Accounting-Request");
		return;
	}
	e = radius_verify_request(buf, got, c->secret, false);
	if (e != MDM_OK) {
		atomic_fetch_add(e == MDM_ERR_AUTH ? &a->stats.bad_auth : &a->stats.malformed, 1);
		dropped(a, e == MDM_ERR_AUTH ? DROP_AUTH : DROP_MALFORMED, src,
			e == MDM_ERR_AUTH ? "bad authenticator (not this client's secret?)"
					  : "not a well-formed Accounting-Request");
		return;
	}
	atomic_fetch_add(&a->stats.requests, 1);
	take_session(&p, &s);
	if (!s.nas_ip[0])
		str_copy(s.nas_ip, sizeof(s.nas_ip), src);
	apply(a, &p, &s, src);
	answer(a, &p, c->secret, from, fromlen, src);
}

static void *run(void *arg)
{
	struct acct *a = arg;
	uint8_t pkt[ACCT_PACKET_MAX + 1];
	int64_t next_expire = clock_mono_ms() + EXPIRE_EVERY_MS;

	while (!atomic_load(&a->stop)) {
		struct pollfd pfd = {a->fd, POLLIN, 0};
		struct sockaddr_storage from;
		socklen_t fromlen = sizeof(from);
		ssize_t got;

		if (clock_mono_ms() >= next_expire) {
			sessions_expire(a->sessions, clock_wall_ms());
			next_expire = clock_mono_ms() + EXPIRE_EVERY_MS;
		}
		if (poll(&pfd, 1, POLL_MS) <= 0)
			continue;
		/* One byte more than the bound: a datagram that fills it is too long. */
		got = recvfrom(a->fd, pkt, sizeof(pkt), MSG_DONTWAIT, (struct sockaddr *)&from,
			       &fromlen);
		if (got < 0)
			continue;
		if ((size_t)got > ACCT_PACKET_MAX) {
			atomic_fetch_add(&a->stats.malformed, 1);
			continue;
		}
		handle(a, pkt, (size_t)got, &from, fromlen);
	}
	return NULL;
}

/* --- life cycle ----------------------------------------------------------------------------- */

static enum mdm_err open_socket(struct acct *a, const struct config_accounting *cfg, char *why,
				size_t whysz)
{
	struct sockaddr_storage ss;
	socklen_t sl;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, cfg->listen_addr, &((struct sockaddr_in *)(void *)&ss)->sin_addr) ==
	    1) {
		ss.ss_family = AF_INET;
		((struct sockaddr_in *)(void *)&ss)->sin_port = htons((uint16_t)cfg->listen_port);
		sl = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, cfg->listen_addr,
			     &((struct sockaddr_in6 *)(void *)&ss)->sin6_addr) == 1) {
		ss.ss_family = AF_INET6;
		((struct sockaddr_in6 *)(void *)&ss)->sin6_port = htons((uint16_t)cfg->listen_port);
		sl = sizeof(struct sockaddr_in6);
	} else {
		err_why(why, whysz, "accounting.listen: bad address \"%s\"", cfg->listen_addr);
		return MDM_ERR_CONFIG;
	}
	a->fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (a->fd < 0 || bind(a->fd, (struct sockaddr *)&ss, sl) != 0 ||
	    getsockname(a->fd, (struct sockaddr *)&ss, &sl) != 0) {
		err_why(why, whysz, "accounting: cannot listen on %s port %u: %s", cfg->listen_addr,
			cfg->listen_port, strerror(errno));
		return MDM_ERR_IO;
	}
	a->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)(void *)&ss)->sin_port
						: ((struct sockaddr_in6 *)(void *)&ss)->sin6_port);
	return MDM_OK;
}

enum mdm_err acct_start(const struct config_accounting *cfg, struct sessions *t, struct acct **out,
			char *why, size_t whysz)
{
	struct acct *a;
	enum mdm_err rc;

	*out = NULL;
	if (cfg->nclients > CONFIG_MAX_ACCT_CLIENTS)
		return MDM_ERR_INVALID;
	a = calloc(1, sizeof(*a));
	if (!a)
		return MDM_ERR_NOMEM;
	a->fd = -1;
	a->sessions = t;
	for (int k = 0; k < DROP_KINDS; k++)
		a->warned_ms[k] = clock_mono_ms() - WARN_EVERY_MS;
	a->nclients = cfg->nclients;
	memcpy(a->clients, cfg->clients, cfg->nclients * sizeof(cfg->clients[0]));
	rc = open_socket(a, cfg, why, whysz);
	if (rc == MDM_OK && pthread_create(&a->thread, NULL, run, a) != 0) {
		err_why(why, whysz, "accounting: cannot start its thread");
		rc = MDM_ERR_INTERNAL;
	}
	if (rc != MDM_OK) {
		if (a->fd >= 0)
			close(a->fd);
		explicit_bzero(a->clients, sizeof(a->clients));
		free(a);
		return rc;
	}
	log_info("accounting: listening on %s port %u (%zu clients)", cfg->listen_addr, a->port,
		 a->nclients);
	*out = a;
	return MDM_OK;
}

unsigned acct_port(const struct acct *a)
{
	return a->port;
}

const struct acct_stats *acct_stats(const struct acct *a)
{
	return &a->stats;
}

void acct_metrics(const struct acct *a, struct prom *b)
{
	const struct acct_stats *s = &a->stats;

	prom_value(b, "mdmgw_acct_requests_total", "counter",
		   "Valid RADIUS Accounting-Requests (retransmissions included).",
		   atomic_load(&s->requests));
	prom_value(b, "mdmgw_acct_responses_total", "counter", "Accounting-Responses sent.",
		   atomic_load(&s->responses));
	prom_value(b, "mdmgw_acct_unknown_client_total", "counter",
		   "Accounting datagrams dropped: the source is no configured client.",
		   atomic_load(&s->unknown_client));
	prom_value(b, "mdmgw_acct_bad_authenticator_total", "counter",
		   "Accounting-Requests dropped: bad Request or Message-Authenticator.",
		   atomic_load(&s->bad_auth));
	prom_value(b, "mdmgw_acct_malformed_total", "counter",
		   "Accounting datagrams dropped: not a well-formed Accounting-Request.",
		   atomic_load(&s->malformed));
	prom_head(b, "mdmgw_acct_status_total", "counter",
		  "Accounting-Requests by Acct-Status-Type.");
	prom_addf(b, "mdmgw_acct_status_total{type=\"start\"} %lu\n", atomic_load(&s->starts));
	prom_addf(b, "mdmgw_acct_status_total{type=\"interim\"} %lu\n", atomic_load(&s->interims));
	prom_addf(b, "mdmgw_acct_status_total{type=\"stop\"} %lu\n", atomic_load(&s->stops));
	prom_addf(b, "mdmgw_acct_status_total{type=\"on_off\"} %lu\n", atomic_load(&s->nas_resets));
	prom_value(b, "mdmgw_acct_no_mac_total", "counter",
		   "Start/Interim/Stop without a usable Calling-Station-Id (answered, not stored).",
		   atomic_load(&s->no_mac));
}

void acct_stop(struct acct *a)
{
	if (!a)
		return;
	atomic_store(&a->stop, true);
	pthread_join(a->thread, NULL);
	close(a->fd);
	explicit_bzero(a->clients, sizeof(a->clients));
	free(a);
}
