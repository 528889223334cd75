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

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "../core/clock.h"
#include "../core/ident.h"
#include "../core/log.h"
#include "acct.h"

#define POLL_MS 200	      /* how soon acct_stop is noticed */
#define EXPIRE_EVERY_MS 30000 /* stale sessions are swept this often */
#define HDR 20		      /* code, identifier, length, authenticator */
#define AUTH_OFF 4
#define AUTH_LEN 16

/* RADIUS codes and attributes this listener reads (RFC 2865, 2866, 3162, 3579). */
enum {
	CODE_ACCT_REQUEST = 4,
	CODE_ACCT_RESPONSE = 5,
	ATTR_USER_NAME = 1,
	ATTR_NAS_IP = 4,
	ATTR_NAS_PORT = 5,
	ATTR_CALLING_STATION = 31,
	ATTR_NAS_ID = 32,
	ATTR_STATUS_TYPE = 40,
	ATTR_ACCT_SESSION_ID = 44,
	ATTR_MESSAGE_AUTH = 80,
	ATTR_NAS_IPV6 = 95,
};

enum { ST_START = 1, ST_STOP = 2, ST_INTERIM = 3, ST_ON = 7, ST_OFF = 8 };

struct acct {
	int fd;
	unsigned port;
	pthread_t thread;
	atomic_bool stop;
	struct sessions *sessions;
	struct config_acct_client clients[CONFIG_MAX_ACCT_CLIENTS];
	size_t nclients;
	struct acct_stats stats;
};

/* What one Accounting-Request says, once parsed. */
struct acct_req {
	unsigned status; /* Acct-Status-Type; 0 when absent */
	const unsigned char *msg_auth; /* the Message-Authenticator's value, NULL when absent */
	const unsigned char *calling;  /* Calling-Station-Id */
	size_t calling_len;
	struct coa_session s; /* the other fields, "" where absent or unusable */
	bool has_nas_ip;
};

/* --- the minimal RADIUS codec (the radius branch's codec replaces it once merged) --------- */

/* md5 over the packet with its authenticator field replaced by auth, then the secret. */
static bool rad_md5(const unsigned char *pkt, size_t len, const unsigned char *auth,
		    const char *secret, unsigned char out[16])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int n = 0;
	bool ok = md && EVP_DigestInit_ex(md, EVP_md5(), NULL) == 1 &&
		  EVP_DigestUpdate(md, pkt, AUTH_OFF) == 1 &&
		  EVP_DigestUpdate(md, auth, AUTH_LEN) == 1 &&
		  EVP_DigestUpdate(md, pkt + HDR, len - HDR) == 1 &&
		  EVP_DigestUpdate(md, secret, strlen(secret)) == 1 &&
		  EVP_DigestFinal_ex(md, out, &n) == 1 && n == 16;

	EVP_MD_CTX_free(md);
	return ok;
}

/*
 * Request Authenticator of an Accounting-Request (RFC 2866 3): MD5 of the packet with 16 zero
 * octets in the field, then the secret.
 */
static bool request_auth_ok(const unsigned char *pkt, size_t len, const char *secret)
{
	static const unsigned char zero[AUTH_LEN];
	unsigned char want[16];

	return rad_md5(pkt, len, zero, secret, want) &&
	       str_eq_ct(want, pkt + AUTH_OFF, AUTH_LEN);
}

/*
 * Message-Authenticator (RFC 3579 3.2) of a request: HMAC-MD5 keyed with the secret over the
 * packet with the authenticator field and the attribute's own value zeroed.
 */
static bool message_auth_ok(const unsigned char *pkt, size_t len, const unsigned char *value,
			    const char *secret)
{
	unsigned char copy[ACCT_PACKET_MAX], mac[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	memcpy(copy, pkt, len);
	memset(copy + AUTH_OFF, 0, AUTH_LEN);
	memset(copy + (value - pkt), 0, 16);
	if (!HMAC(EVP_md5(), secret, (int)strlen(secret), copy, len, mac, &n) || n != 16)
		return false;
	return str_eq_ct(mac, value, 16);
}

/* A printable attribute value into a fixed field; "" when it does not fit or is not text. */
static void take_text(char *dst, size_t size, const unsigned char *v, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (v[i] < 0x20 || v[i] == 0x7f) {
			dst[0] = '\0';
			return;
		}
	if (str_copyn(dst, size, (const char *)v, len) != MDM_OK)
		dst[0] = '\0';
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* One attribute into r. false: malformed (a fixed-size attribute of the wrong size). */
static bool take_attr(struct acct_req *r, unsigned type, const unsigned char *v, size_t len)
{
	struct coa_session *s = &r->s;

	switch (type) {
	case ATTR_USER_NAME:
		take_text(s->user_name, sizeof(s->user_name), v, len);
		return true;
	case ATTR_NAS_ID:
		take_text(s->nas_id, sizeof(s->nas_id), v, len);
		return true;
	case ATTR_ACCT_SESSION_ID:
		take_text(s->acct_session_id, sizeof(s->acct_session_id), v, len);
		return true;
	case ATTR_CALLING_STATION:
		r->calling = v;
		r->calling_len = len;
		return true;
	case ATTR_NAS_IP:
		if (len != 4)
			return false;
		r->has_nas_ip = inet_ntop(AF_INET, v, s->nas_ip, sizeof(s->nas_ip)) != NULL;
		return true;
	case ATTR_NAS_IPV6:
		if (len != 16)
			return false;
		if (!r->has_nas_ip) /* NAS-IP-Address wins when both are sent */
			r->has_nas_ip =
			    inet_ntop(AF_INET6, v, s->nas_ip, sizeof(s->nas_ip)) != NULL;
		return true;
	case ATTR_NAS_PORT:
		if (len != 4)
			return false;
		s->nas_port = be32(v);
		s->has_nas_port = true;
		return true;
	case ATTR_STATUS_TYPE:
		if (len != 4)
			return false;
		r->status = be32(v);
		return true;
	case ATTR_MESSAGE_AUTH:
		if (len != 16 || r->msg_auth)
			return false;
		r->msg_auth = v;
		return true;
	default:
		return true;
	}
}

/*
 * The packet's header and attributes into r. Returns the packet's own length (octets past it
 * are padding, RFC 2865 3), or 0 when it is no well-formed Accounting-Request.
 */
static size_t parse_request(const unsigned char *pkt, size_t got, struct acct_req *r)
{
	size_t len, at;

	memset(r, 0, sizeof(*r));
	if (got < HDR || pkt[0] != CODE_ACCT_REQUEST)
		return 0;
	len = (size_t)pkt[2] << 8 | pkt[3];
	if (len < HDR || len > got)
		return 0;
	for (at = HDR; at < len; at += pkt[at + 1]) {
		if (len - at < 2 || pkt[at + 1] < 2 || pkt[at + 1] > len - at)
			return 0;
		if (!take_attr(r, pkt[at], pkt + at + 2, (size_t)pkt[at + 1] - 2))
			return 0;
	}
	return len;
}

/* The Accounting-Response to pkt: no attributes, Response Authenticator (RFC 2866 3). */
static bool make_response(const unsigned char *req, const char *secret, unsigned char out[HDR])
{
	out[0] = CODE_ACCT_RESPONSE;
	out[1] = req[1];
	out[2] = 0;
	out[3] = HDR;
	memset(out + AUTH_OFF, 0, AUTH_LEN);
	return rad_md5(out, HDR, req + AUTH_OFF, secret, out + AUTH_OFF);
}

/* --- clients ------------------------------------------------------------------------------ */

/* The source as an address of its own family (a v4-mapped v6 source is v4). */
static int source_addr(const struct sockaddr_storage *ss, unsigned char addr[16], char *text,
		       size_t textsz)
{
	if (ss->ss_family == AF_INET) {
		memcpy(addr, &((const struct sockaddr_in *)(const void *)ss)->sin_addr, 4);
	} else if (ss->ss_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)(const void *)ss)->sin6_addr;

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

/* Start and Interim-Update: the session, refreshed. */
static void put_session(struct acct *a, struct acct_req *r, const char *src)
{
	enum mdm_err e = sessions_put(a->sessions, &r->s);

	/* A full table logs and counts itself (mdmgw_sessions_refused_total). */
	if (e != MDM_OK && e != MDM_ERR_TOOBIG)
		log_warn("acct: session of %s from %s not stored: %s", r->s.mac, src,
			 err_str(e));
}

/* What the request asks of the table. The answer is sent whatever happens here. */
static void apply(struct acct *a, struct acct_req *r, const char *src)
{
	bool local;
	size_t n;

	if (r->status == ST_ON || r->status == ST_OFF) {
		atomic_fetch_add(&a->stats.nas_resets, 1);
		n = sessions_clear_nas(a->sessions, r->s.nas_ip, r->s.nas_id);
		log_info("acct: Accounting-%s from NAS %s (%s): %zu sessions dropped",
			 r->status == ST_ON ? "On" : "Off", r->s.nas_ip,
			 r->s.nas_id[0] ? r->s.nas_id : "-", n);
		return;
	}
	if (r->status != ST_START && r->status != ST_STOP && r->status != ST_INTERIM)
		return; /* Tunnel-*, Failed...: nothing to keep */
	atomic_fetch_add(r->status == ST_START	  ? &a->stats.starts
			 : r->status == ST_STOP	  ? &a->stats.stops
						  : &a->stats.interims,
			 1);
	if (!r->calling ||
	    mac_parse((const char *)r->calling, r->calling_len, r->s.mac, &local, NULL, 0)) {
		atomic_fetch_add(&a->stats.no_mac, 1);
		return;
	}
	if (r->status == ST_STOP) {
		sessions_remove(a->sessions, r->s.mac, r->s.nas_ip, r->s.nas_id,
				r->s.acct_session_id);
		return;
	}
	r->s.updated_ms = clock_wall_ms();
	put_session(a, r, src);
}

static void handle(struct acct *a, unsigned char *pkt, size_t got,
		   const struct sockaddr_storage *from, socklen_t fromlen)
{
	const struct config_acct_client *c;
	unsigned char addr[16], resp[HDR];
	char src[INET6_ADDRSTRLEN] = "?";
	struct acct_req r;
	size_t len;
	int family = source_addr(from, addr, src, sizeof(src));

	c = family == AF_UNSPEC ? NULL : find_client(a, family, addr);
	if (!c) {
		atomic_fetch_add(&a->stats.unknown_client, 1);
		log_debug("acct: datagram from %s dropped: not a configured client", src);
		return;
	}
	len = parse_request(pkt, got, &r);
	if (!len) {
		atomic_fetch_add(&a->stats.malformed, 1);
		log_debug("acct: datagram from %s dropped: not an Accounting-Request", src);
		return;
	}
	if (!request_auth_ok(pkt, len, c->secret) ||
	    (r.msg_auth && !message_auth_ok(pkt, len, r.msg_auth, c->secret))) {
		atomic_fetch_add(&a->stats.bad_auth, 1);
		log_debug("acct: request from %s dropped: bad authenticator (secret?)", src);
		return;
	}
	atomic_fetch_add(&a->stats.requests, 1);
	if (!r.has_nas_ip)
		str_copy(r.s.nas_ip, sizeof(r.s.nas_ip), src);
	apply(a, &r, src);
	if (!make_response(pkt, c->secret, resp) ||
	    sendto(a->fd, resp, HDR, 0, (const struct sockaddr *)from, fromlen) != HDR) {
		log_warn("acct: cannot answer %s: %s", src, strerror(errno));
		return;
	}
	atomic_fetch_add(&a->stats.responses, 1);
}

static void *run(void *arg)
{
	struct acct *a = arg;
	unsigned char pkt[ACCT_PACKET_MAX + 1];
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
	if (inet_pton(AF_INET, cfg->listen_addr,
		      &((struct sockaddr_in *)(void *)&ss)->sin_addr) == 1) {
		ss.ss_family = AF_INET;
		((struct sockaddr_in *)(void *)&ss)->sin_port = htons((uint16_t)cfg->listen_port);
		sl = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, cfg->listen_addr,
			     &((struct sockaddr_in6 *)(void *)&ss)->sin6_addr) == 1) {
		ss.ss_family = AF_INET6;
		((struct sockaddr_in6 *)(void *)&ss)->sin6_port =
		    htons((uint16_t)cfg->listen_port);
		sl = sizeof(struct sockaddr_in6);
	} else {
		err_why(why, whysz, "accounting.listen: bad address \"%s\"", cfg->listen_addr);
		return MDM_ERR_CONFIG;
	}
	a->fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (a->fd < 0 || bind(a->fd, (struct sockaddr *)&ss, sl) != 0 ||
	    getsockname(a->fd, (struct sockaddr *)&ss, &sl) != 0) {
		err_why(why, whysz, "accounting: cannot listen on %s port %u: %s",
			cfg->listen_addr, cfg->listen_port, strerror(errno));
		return MDM_ERR_IO;
	}
	a->port = ntohs(ss.ss_family == AF_INET
			    ? ((struct sockaddr_in *)(void *)&ss)->sin_port
			    : ((struct sockaddr_in6 *)(void *)&ss)->sin6_port);
	return MDM_OK;
}

enum mdm_err acct_start(const struct config_accounting *cfg, struct sessions *t,
			struct acct **out, char *why, size_t whysz)
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

static void metric(struct buf *b, const char *name, const char *type, const char *help,
		   unsigned long v)
{
	buf_addf(b, "# HELP %s %s\n# TYPE %s %s\n%s %lu\n", name, help, name, type, name, v);
}

void acct_metrics(const struct acct *a, struct buf *b)
{
	const struct acct_stats *s = &a->stats;

	metric(b, "mdmgw_acct_requests_total", "counter",
	       "Valid RADIUS Accounting-Requests (retransmissions included).",
	       atomic_load(&s->requests));
	metric(b, "mdmgw_acct_responses_total", "counter", "Accounting-Responses sent.",
	       atomic_load(&s->responses));
	metric(b, "mdmgw_acct_unknown_client_total", "counter",
	       "Accounting datagrams dropped: the source is no configured client.",
	       atomic_load(&s->unknown_client));
	metric(b, "mdmgw_acct_bad_authenticator_total", "counter",
	       "Accounting-Requests dropped: bad Request or Message-Authenticator.",
	       atomic_load(&s->bad_auth));
	metric(b, "mdmgw_acct_malformed_total", "counter",
	       "Accounting datagrams dropped: not a well-formed Accounting-Request.",
	       atomic_load(&s->malformed));
	buf_addstr(b, "# HELP mdmgw_acct_status_total Accounting-Requests by Acct-Status-Type.\n"
		      "# TYPE mdmgw_acct_status_total counter\n");
	buf_addf(b, "mdmgw_acct_status_total{type=\"start\"} %lu\n", atomic_load(&s->starts));
	buf_addf(b, "mdmgw_acct_status_total{type=\"interim\"} %lu\n", atomic_load(&s->interims));
	buf_addf(b, "mdmgw_acct_status_total{type=\"stop\"} %lu\n", atomic_load(&s->stops));
	buf_addf(b, "mdmgw_acct_status_total{type=\"on_off\"} %lu\n",
		 atomic_load(&s->nas_resets));
	metric(b, "mdmgw_acct_no_mac_total", "counter",
	       "Start/Interim/Stop without a usable Calling-Station-Id (answered, not stored).",
	       atomic_load(&s->no_mac));
	metric(b, "mdmgw_sessions", "gauge", "Network sessions held.",
	       (unsigned long)sessions_count(a->sessions));
	metric(b, "mdmgw_sessions_refused_total", "counter",
	       "New sessions refused: the session table was full.",
	       sessions_refused(a->sessions));
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
