/*
 * test_coa_radius: the RFC 5176 sink against a real FreeRADIUS 3.2 server (tests/sim/
 * freeradius.py spawned as a child: it ACKs, NAKs chosen MACs with an Error-Cause, writes every
 * request it accepted to a detail file, and signs or does not sign its replies with a
 * Message-Authenticator). Also the "nas" configuration list.
 */
#include "unit.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../core/buf.h"
#include "../../core/clock.h"
#include "../../gateway/app/config.h"
#include "../../gateway/coa/coa_radius.h"
#include "../../gateway/coa/radius.h"

#define FR_SCRIPT "tests/sim/freeradius.py"
#define SECRET "s3cret-for-coa"
#define NAK_MAC "AABBCCDDEE01"	  /* answered CoA-NAK, Error-Cause 503 */
#define REFUSE_MAC "AABBCCDDEE02" /* answered CoA-NAK, Error-Cause 501 */

struct fr {
	pid_t pid;
	unsigned port;
	char dir[512];
};

static pid_t g_fr_pids[4];

static void fr_stop(struct fr *f)
{
	int st;

	if (f->pid <= 0)
		return;
	kill(f->pid, SIGTERM);
	waitpid(f->pid, &st, 0);
	for (int i = 0; i < 4; i++)
		if (g_fr_pids[i] == f->pid)
			g_fr_pids[i] = 0;
	f->pid = 0;
}

/* fr_start: freeradius.py with the shared secret, the NAK MACs and, when no_ma, unsigned
 * replies; keeps its directory (removed by the harness at exit) to read detail and log. */
static void fr_start(struct fr *f, bool no_ma)
{
	const char *argv[] = {"python3",   FR_SCRIPT,	      "--secret",
			      SECRET,	   "--nak-mac",	      NAK_MAC,
			      "--nak-mac", REFUSE_MAC "=501", no_ma ? "--no-ma" : NULL,
			      NULL};
	char line[700];
	int fd[2];
	FILE *out;

	memset(f, 0, sizeof(*f));
	assert_int_equal(pipe(fd), 0);
	f->pid = fork();
	assert_true(f->pid >= 0);
	if (f->pid == 0) {
		dup2(fd[1], 1);
		close(fd[0]);
		close(fd[1]);
		execvp("python3", (char *const *)argv);
		_exit(127);
	}
	close(fd[1]);
	for (int i = 0; i < 4; i++)
		if (!g_fr_pids[i]) {
			g_fr_pids[i] = f->pid;
			break;
		}
	out = fdopen(fd[0], "r");
	assert_non_null(out);
	assert_non_null(fgets(line, sizeof(line), out));
	fclose(out);
	assert_int_equal(sscanf(line, "READY %u %511s", &f->port, f->dir), 2);
}

/* file_text: the whole of dir/name ("" when missing); free it. */
static char *file_text(const struct fr *f, const char *name)
{
	char path[600];
	FILE *fp;
	char *s = calloc(1, 1 << 20);
	size_t n = 0;

	assert_non_null(s);
	snprintf(path, sizeof(path), "%s/%s", f->dir, name);
	fp = fopen(path, "r");
	if (fp) {
		n = fread(s, 1, (1 << 20) - 1, fp);
		fclose(fp);
	}
	s[n] = '\0';
	return s;
}

static int count_of(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* --- waiting for the sink's callbacks ---------------------------------------------------------
 */

struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int calls;
	struct coa_result res;
};

static void waiter_init(struct waiter *w)
{
	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
}

static void waiter_free(struct waiter *w)
{
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
}

static void on_result(void *arg, const struct coa_result *res)
{
	struct waiter *w = arg;

	pthread_mutex_lock(&w->mu);
	if (w->calls++ == 0)
		w->res = *res;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static int wait_calls(struct waiter *w, int n, int64_t ms)
{
	struct timespec ts;
	int calls;

	clock_realtime_after(ms, &ts);
	pthread_mutex_lock(&w->mu);
	while (w->calls < n && pthread_cond_timedwait(&w->cv, &w->mu, &ts) == 0)
		;
	calls = w->calls;
	pthread_mutex_unlock(&w->mu);
	return calls;
}

static void nas_for(struct config_nas *n, const struct fr *f, const char *secret)
{
	memset(n, 0, sizeof(*n));
	str_copy(n->address, sizeof(n->address), "127.0.0.1");
	str_copy(n->host, sizeof(n->host), "127.0.0.1");
	n->port = f->port;
	str_copy(n->secret, sizeof(n->secret), secret);
	n->secret_set = true;
	n->require_message_authenticator = true;
	n->action = CONFIG_NAS_REAUTH;
	n->cisco_avpair = true;
	n->timeout_ms = 1000;
	n->tries = 3;
}

static void event_for(struct transition *ev, const char *mac, enum transition_kind kind)
{
	memset(ev, 0, sizeof(*ev));
	snprintf(ev->id, sizeof(ev->id), "%s@42", mac);
	str_copy(ev->mac, sizeof(ev->mac), mac);
	str_copy(ev->from, sizeof(ev->from), "compliant");
	str_copy(ev->to, sizeof(ev->to), "noncompliant");
	ev->kind = kind;
	ev->epoch = 7;
}

static void session_for(struct coa_session *s, const char *mac, const char *nas_ip)
{
	memset(s, 0, sizeof(*s));
	str_copy(s->mac, sizeof(s->mac), mac);
	str_copy(s->nas_ip, sizeof(s->nas_ip), nas_ip);
	str_copy(s->acct_session_id, sizeof(s->acct_session_id), "0A0B0C0D00000042");
	str_copy(s->user_name, sizeof(s->user_name), "host/laptop-7.corp.example");
}

/* one: sends one event through a fresh sink for nas and waits for its result. */
static struct coa_result one(const struct config_nas *nas, const char *mac,
			     enum transition_kind kind, const char *nas_ip, int64_t wait_ms)
{
	struct coa_sink *sink = NULL;
	struct transition ev;
	struct coa_session s;
	struct waiter w;
	struct coa_result res;
	char why[256] = "";

	waiter_init(&w);
	assert_int_equal(coa_radius_create(nas, 1, &sink, why, sizeof(why)), MDM_OK);
	assert_string_equal(sink->ops->type, "radius");
	assert_true(sink->ops->needs_session);
	event_for(&ev, mac, kind);
	session_for(&s, mac, nas_ip);
	assert_int_equal(sink->ops->send(sink, &ev, &s, on_result, &w), MDM_OK);
	assert_int_equal(wait_calls(&w, 1, wait_ms), 1);
	sink->ops->destroy(sink);
	assert_int_equal(w.calls, 1); /* exactly once */
	res = w.res;
	waiter_free(&w);
	return res;
}

/* --- against FreeRADIUS -----------------------------------------------------------------------
 */

static void test_coa_ack(void **state)
{
	struct fr f;
	struct config_nas nas;
	struct coa_result r;
	char *detail;

	(void)state;
	fr_start(&f, false);
	nas_for(&nas, &f, SECRET);
	r = one(&nas, "0011223344AB", TRANSITION_REAUTH, "127.0.0.1", 5000);
	assert_int_equal(r.outcome, COA_OK);
	assert_string_equal(r.detail, "CoA-ACK");
	detail = file_text(&f, "detail");
	assert_int_equal(count_of(detail, "Packet-Type = CoA-Request"), 1);
	assert_non_null(strstr(detail, "Calling-Station-Id = \"00-11-22-33-44-AB\""));
	assert_non_null(strstr(detail, "Cisco-AVPair = \"subscriber:command=reauthenticate\""));
	assert_non_null(strstr(detail, "Acct-Session-Id = \"0A0B0C0D00000042\""));
	assert_non_null(strstr(detail, "User-Name = \"host/laptop-7.corp.example\""));
	assert_non_null(strstr(detail, "NAS-IP-Address = 127.0.0.1"));
	assert_non_null(strstr(detail, "Event-Timestamp = "));
	assert_non_null(strstr(detail, "Message-Authenticator = 0x"));
	free(detail);
	fr_stop(&f);
}

static void test_bounce_and_plain(void **state)
{
	struct fr f;
	struct config_nas nas;
	struct coa_result r;
	char *detail;

	(void)state;
	fr_start(&f, false);
	nas_for(&nas, &f, SECRET);
	nas.action = CONFIG_NAS_BOUNCE;
	r = one(&nas, "0011223344AC", TRANSITION_REAUTH, "127.0.0.1", 5000);
	assert_int_equal(r.outcome, COA_OK);
	nas.action = CONFIG_NAS_REAUTH;
	nas.cisco_avpair = false;
	/* a session reporting its NAS as an IPv4-mapped address matches, sent as IPv4 */
	r = one(&nas, "0011223344AD", TRANSITION_REAUTH, "::ffff:127.0.0.1", 5000);
	assert_int_equal(r.outcome, COA_OK);
	detail = file_text(&f, "detail");
	assert_int_equal(count_of(detail, "NAS-IP-Address = 127.0.0.1"), 2);
	assert_int_equal(count_of(detail, "Packet-Type = CoA-Request"), 2);
	assert_int_equal(count_of(detail, "Cisco-AVPair"), 1);
	assert_non_null(strstr(detail, "Cisco-AVPair = \"subscriber:command=bounce-host-port\""));
	free(detail);
	fr_stop(&f);
}

static void test_disconnect_ack(void **state)
{
	struct fr f;
	struct config_nas nas;
	struct coa_result r;
	char *detail;

	(void)state;
	fr_start(&f, false);
	nas_for(&nas, &f, SECRET);
	/* The event's kind wins over the NAS's reauthenticate. */
	r = one(&nas, "0011223344AE", TRANSITION_DISCONNECT, "127.0.0.1", 5000);
	assert_int_equal(r.outcome, COA_OK);
	assert_string_equal(r.detail, "Disconnect-ACK");
	/* And a NAS configured to disconnect does so for a reauthenticate event. */
	nas.action = CONFIG_NAS_DISCONNECT;
	r = one(&nas, "0011223344AF", TRANSITION_REAUTH, "127.0.0.1", 5000);
	assert_int_equal(r.outcome, COA_OK);
	assert_string_equal(r.detail, "Disconnect-ACK");
	detail = file_text(&f, "detail");
	assert_int_equal(count_of(detail, "Packet-Type = Disconnect-Request"), 2);
	assert_int_equal(count_of(detail, "Cisco-AVPair"), 0);
	free(detail);
	fr_stop(&f);
}

static void test_nak(void **state)
{
	struct fr f;
	struct config_nas nas;
	struct coa_result r;

	(void)state;
	fr_start(&f, false);
	nas_for(&nas, &f, SECRET);
	r = one(&nas, NAK_MAC, TRANSITION_REAUTH, "127.0.0.1", 5000);
	assert_int_equal(r.outcome, COA_NO_SESSION);
	assert_string_equal(r.detail, "CoA-NAK Error-Cause=503 (Session-Context-Not-Found)");
	r = one(&nas, REFUSE_MAC, TRANSITION_REAUTH, "127.0.0.1", 5000);
	assert_int_equal(r.outcome, COA_REFUSED);
	assert_string_equal(r.detail, "CoA-NAK Error-Cause=501 (Administratively-Prohibited)");
	r = one(&nas, NAK_MAC, TRANSITION_DISCONNECT, "127.0.0.1", 5000);
	assert_int_equal(r.outcome, COA_NO_SESSION);
	assert_string_equal(r.detail, "Disconnect-NAK Error-Cause=503 (Session-Context-Not-Found)");
	fr_stop(&f);
}

/* A wrong secret: FreeRADIUS drops every try; the sink gives up after tries, and a NAK was not
 * taken for an answer. Timings: 150 + 300 + 600 ms. */
static void test_wrong_secret(void **state)
{
	struct fr f;
	struct config_nas nas;
	struct coa_result r;
	int64_t t0;
	char *detail, *log;

	(void)state;
	fr_start(&f, false);
	nas_for(&nas, &f, "not-the-secret");
	nas.timeout_ms = 150;
	t0 = clock_mono_ms();
	r = one(&nas, "0011223344B0", TRANSITION_REAUTH, "127.0.0.1", 5000);
	assert_int_equal(r.outcome, COA_NO_ANSWER);
	assert_true(clock_mono_ms() - t0 >= 1050 - 20);
	assert_non_null(strstr(r.detail, "after 3 tries"));
	detail = file_text(&f, "detail");
	assert_int_equal(count_of(detail, "Packet-Type"), 0);
	free(detail);
	/* All three datagrams reached the server (it drops the first for its authenticators
	 * and ignores the retransmissions of a request it dropped); none was accepted. */
	log = file_text(&f, "freeradius.log");
	assert_int_equal(count_of(log, "Shared secret is incorrect"), 1);
	assert_int_equal(
	    count_of(log, "Received CoA-Request") + count_of(log, "Ignoring duplicate packet"), 3);
	assert_int_equal(count_of(log, "Sent CoA-"), 0);
	free(log);
	fr_stop(&f);
}

/* Replies without Message-Authenticator: dropped when required (no answer), taken when not. */
static void test_reply_without_ma(void **state)
{
	struct fr f;
	struct config_nas nas;
	struct coa_result r;
	char *log;

	(void)state;
	fr_start(&f, true);
	nas_for(&nas, &f, SECRET);
	nas.timeout_ms = 150;
	nas.tries = 2;
	r = one(&nas, "0011223344B1", TRANSITION_REAUTH, "127.0.0.1", 5000);
	assert_int_equal(r.outcome, COA_NO_ANSWER);
	nas.require_message_authenticator = false;
	r = one(&nas, "0011223344B2", TRANSITION_REAUTH, "127.0.0.1", 5000);
	assert_int_equal(r.outcome, COA_OK);
	/* The server did answer the first one: it was the sink that refused the answers. */
	log = file_text(&f, "freeradius.log");
	assert_int_equal(count_of(log, "Sent CoA-ACK") + count_of(log, "Sending duplicate reply"),
			 3);
	free(log);
	fr_stop(&f);
}

/* Many requests out at once to one NAS: each gets its own identifier and its own answer. */
static void test_many_outstanding(void **state)
{
	enum { N = 40 };
	struct fr f;
	struct config_nas nas;
	struct coa_sink *sink = NULL;
	struct waiter w[N];
	char why[256], mac[13], *detail;

	(void)state;
	fr_start(&f, false);
	nas_for(&nas, &f, SECRET);
	assert_int_equal(coa_radius_create(&nas, 1, &sink, why, sizeof(why)), MDM_OK);
	for (int i = 0; i < N; i++) {
		struct transition ev;
		struct coa_session s;

		waiter_init(&w[i]);
		snprintf(mac, sizeof(mac), "0011223345%02X", i);
		/* every fifth one is NAKed */
		event_for(&ev, i % 5 == 0 ? NAK_MAC : mac, TRANSITION_REAUTH);
		session_for(&s, i % 5 == 0 ? NAK_MAC : mac, "127.0.0.1");
		assert_int_equal(sink->ops->send(sink, &ev, &s, on_result, &w[i]), MDM_OK);
	}
	for (int i = 0; i < N; i++) {
		assert_int_equal(wait_calls(&w[i], 1, 10000), 1);
		assert_int_equal(w[i].res.outcome, i % 5 == 0 ? COA_NO_SESSION : COA_OK);
	}
	sink->ops->destroy(sink);
	for (int i = 0; i < N; i++) {
		assert_int_equal(w[i].calls, 1);
		waiter_free(&w[i]);
	}
	detail = file_text(&f, "detail");
	assert_int_equal(count_of(detail, "Packet-Type = CoA-Request"), N);
	free(detail);
	fr_stop(&f);
}

/* --- against a scripted peer: retransmissions and replies that must be dropped ---------------
 */

struct fake {
	int fd;
	unsigned port;
	uint8_t first[RADIUS_MAX_LEN], second[RADIUS_MAX_LEN];
	ssize_t n1, n2;
	bool ok;
};

/* reply: a reply of code to req, signed with secret (and a Message-Authenticator). */
static void fake_reply(struct fake *f, const struct sockaddr_in *to, const uint8_t *req,
		       uint8_t code, const char *secret)
{
	struct radius_builder b;

	radius_builder_init(&b, code, req[1]);
	radius_add_ma(&b);
	if (radius_finish_response(&b, req + 4, secret) != MDM_OK)
		return;
	sendto(f->fd, b.buf, b.len, 0, (const struct sockaddr *)to, sizeof(*to));
}

/* The peer ignores the first try; answers the second with a NAK signed with another secret,
 * then a reply of a code that does not answer a CoA-Request, then a good CoA-ACK. Either bad
 * reply, if taken, would end the request as COA_REFUSED. */
static void *fake_loop(void *arg)
{
	struct fake *f = arg;
	struct sockaddr_in from;
	socklen_t fl = sizeof(from);

	f->n1 = recvfrom(f->fd, f->first, sizeof(f->first), 0, (struct sockaddr *)&from, &fl);
	fl = sizeof(from);
	f->n2 = recvfrom(f->fd, f->second, sizeof(f->second), 0, (struct sockaddr *)&from, &fl);
	if (f->n1 <= 0 || f->n2 <= 0)
		return NULL;
	fake_reply(f, &from, f->second, RADIUS_COA_NAK, "another-secret");
	fake_reply(f, &from, f->second, RADIUS_DISCONNECT_ACK, SECRET);
	fake_reply(f, &from, f->second, RADIUS_COA_ACK, SECRET);
	f->ok = true;
	return NULL;
}

static void test_retransmit_and_drops(void **state)
{
	struct fake f = {0};
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t al = sizeof(a);
	struct config_nas nas;
	struct fr fr = {0};
	struct coa_result r;
	struct timeval tv = {5, 0};
	pthread_t t;
	int64_t t0;

	(void)state;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	f.fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(f.fd >= 0);
	assert_int_equal(bind(f.fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(f.fd, (struct sockaddr *)&a, &al), 0);
	assert_int_equal(setsockopt(f.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	fr.port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&t, NULL, fake_loop, &f), 0);
	nas_for(&nas, &fr, SECRET);
	nas.timeout_ms = 200;
	t0 = clock_mono_ms();
	r = one(&nas, "0011223344C0", TRANSITION_REAUTH, "127.0.0.1", 5000);
	pthread_join(t, NULL);
	close(f.fd);
	assert_true(f.ok);
	assert_int_equal(r.outcome, COA_OK);
	assert_string_equal(r.detail, "CoA-ACK");
	/* answered after the first wait, on the second try: the bad replies did not end it */
	assert_true(clock_mono_ms() - t0 >= 200 - 10);
	assert_true(clock_mono_ms() - t0 < 200 + 400);
	/* the retransmission is the same datagram: same Identifier, same authenticator */
	assert_int_equal(f.n1, f.n2);
	assert_memory_equal(f.first, f.second, (size_t)f.n1);
	assert_int_equal(radius_verify_request(f.first, (size_t)f.n1, SECRET, true), MDM_OK);
}

/*
 * Replies that must be dropped, each a CoA-NAK with its own Error-Cause so that one taken shows
 * in the outcome (COA_REFUSED and its cause), then a good CoA-ACK: all sent at once to the first
 * try. The NAS does not require a Message-Authenticator, so that a reply without one is checked
 * on its Response Authenticator alone.
 */
struct bad_peer {
	int fd, other; /* other: a second socket on the same address, another port */
	bool ok;       /* every reply was built and sent (no cmocka asserts off the main thread) */
};

static bool send_built(int fd, const struct sockaddr_in *to, const struct radius_builder *b)
{
	return b->err == MDM_OK && sendto(fd, b->buf, b->len, 0, (const struct sockaddr *)to,
					  sizeof(*to)) == (ssize_t)b->len;
}

static void nak_init(struct radius_builder *b, uint8_t id, uint32_t cause)
{
	radius_builder_init(b, RADIUS_COA_NAK, id);
	radius_add_u32(b, RADIUS_ERROR_CAUSE, cause);
}

/* sign_rfc: a Message-Authenticator over the reply with req_auth in the field (RFC 5176 3.4),
 * then the Response Authenticator. */
static bool sign_rfc(struct radius_builder *b, const uint8_t *req_auth, const char *secret)
{
	radius_add_ma(b);
	return radius_finish_response(b, req_auth, secret) == MDM_OK;
}

/* sign_freeradius: as FreeRADIUS 3.2 signs replies: the Message-Authenticator over the reply
 * with 16 zero octets in the field, then the Response Authenticator over req_auth. */
static bool sign_freeradius(struct radius_builder *b, const uint8_t *req_auth, const char *secret)
{
	radius_add_ma(b);
	if (radius_finish_request(b, secret) != MDM_OK) /* its MA is over zeros */
		return false;
	b->ma_off = -1; /* keep that MA: only the Response Authenticator is computed again */
	return radius_finish_response(b, req_auth, secret) == MDM_OK;
}

static void *bad_peer_loop(void *arg)
{
	static const uint8_t junk[16] = {0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5,
					 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5};
	struct bad_peer *f = arg;
	struct radius_builder b;
	struct sockaddr_in from;
	socklen_t fl = sizeof(from);
	uint8_t req[RADIUS_MAX_LEN], other_auth[RADIUS_AUTH_LEN];
	bool ok = true;

	if (recvfrom(f->fd, req, sizeof(req), 0, (struct sockaddr *)&from, &fl) < RADIUS_HDR_LEN)
		return NULL;
	/* From another port of the NAS's address, otherwise good. */
	nak_init(&b, req[1], RADIUS_EC_UNSUPPORTED_ATTRIBUTE);
	ok = ok && sign_rfc(&b, req + 4, SECRET) && send_built(f->other, &from, &b);
	/* Another Identifier, otherwise good (signed over the request's authenticator). */
	nak_init(&b, (uint8_t)(req[1] + 1), RADIUS_EC_MISSING_ATTRIBUTE);
	ok = ok && sign_rfc(&b, req + 4, SECRET) && send_built(f->fd, &from, &b);
	/* No Message-Authenticator, the Response Authenticator under another secret. */
	nak_init(&b, req[1], RADIUS_EC_NAS_IDENTIFICATION_MISMATCH);
	ok = ok && radius_finish_response(&b, req + 4, "another-secret") == MDM_OK &&
	     send_built(f->fd, &from, &b);
	/* FreeRADIUS form with the right secret, but answering another request's authenticator:
	 * its Message-Authenticator does not cover the request, its Response Authenticator does. */
	memcpy(other_auth, req + 4, sizeof(other_auth));
	other_auth[15] ^= 0x01;
	nak_init(&b, req[1], RADIUS_EC_INVALID_REQUEST);
	ok = ok && sign_freeradius(&b, other_auth, SECRET) && send_built(f->fd, &from, &b);
	/* Two Message-Authenticators, the second one (and the Response Authenticator) good. */
	nak_init(&b, req[1], RADIUS_EC_UNSUPPORTED_SERVICE);
	radius_add_bytes(&b, RADIUS_MESSAGE_AUTHENTICATOR, junk, sizeof(junk));
	ok = ok && sign_rfc(&b, req + 4, SECRET) && send_built(f->fd, &from, &b);
	/* The answer: a CoA-ACK signed as FreeRADIUS signs it. */
	radius_builder_init(&b, RADIUS_COA_ACK, req[1]);
	ok = ok && sign_freeradius(&b, req + 4, SECRET) && send_built(f->fd, &from, &b);
	f->ok = ok;
	return NULL;
}

static void test_bad_replies_dropped(void **state)
{
	struct bad_peer f = {0};
	struct sockaddr_in a = {.sin_family = AF_INET}, a2 = {.sin_family = AF_INET};
	socklen_t al = sizeof(a);
	struct config_nas nas;
	struct fr fr = {0};
	struct coa_result r;
	struct timeval tv = {5, 0};
	pthread_t t;

	(void)state;
	a.sin_addr.s_addr = a2.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	f.fd = socket(AF_INET, SOCK_DGRAM, 0);
	f.other = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(f.fd >= 0 && f.other >= 0);
	assert_int_equal(bind(f.fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(bind(f.other, (struct sockaddr *)&a2, sizeof(a2)), 0);
	assert_int_equal(getsockname(f.fd, (struct sockaddr *)&a, &al), 0);
	assert_int_equal(setsockopt(f.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	fr.port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&t, NULL, bad_peer_loop, &f), 0);
	nas_for(&nas, &fr, SECRET);
	nas.require_message_authenticator = false;
	r = one(&nas, "0011223344C2", TRANSITION_REAUTH, "127.0.0.1", 5000);
	pthread_join(t, NULL);
	close(f.fd);
	close(f.other);
	/* A NAK taken shows as "CoA-NAK Error-Cause=..." naming which one. */
	assert_string_equal(r.detail, "CoA-ACK");
	assert_int_equal(r.outcome, COA_OK);
	assert_true(f.ok);
}

/* --- without a server -------------------------------------------------------------------------
 */

/* destroy waits for the sends still out, whose callbacks it calls before returning. */
static void test_destroy_waits(void **state)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t al = sizeof(a);
	struct config_nas nas;
	struct fr fr = {0};
	struct coa_sink *sink = NULL;
	struct transition ev;
	struct coa_session s;
	struct waiter w;
	char why[256];
	int fd = socket(AF_INET, SOCK_DGRAM, 0); /* a peer that never answers */

	(void)state;
	assert_true(fd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	fr.port = ntohs(a.sin_port);
	nas_for(&nas, &fr, SECRET);
	nas.timeout_ms = 100;
	nas.tries = 2;
	assert_int_equal(coa_radius_create(&nas, 1, &sink, why, sizeof(why)), MDM_OK);
	waiter_init(&w);
	event_for(&ev, "0011223344C1", TRANSITION_REAUTH);
	session_for(&s, "0011223344C1", "127.0.0.1");
	assert_int_equal(sink->ops->send(sink, &ev, &s, on_result, &w), MDM_OK);
	sink->ops->destroy(sink);
	assert_int_equal(w.calls, 1);
	assert_int_equal(w.res.outcome, COA_NO_ANSWER);
	assert_non_null(strstr(w.res.detail, "after 2 tries"));
	waiter_free(&w);
	close(fd);
}

static void test_no_nas(void **state)
{
	struct config_nas nas;
	struct fr f = {.port = 9};
	struct coa_result r;

	(void)state;
	nas_for(&nas, &f, SECRET);
	r = one(&nas, "0011223344B3", TRANSITION_REAUTH, "10.9.9.9", 2000);
	assert_int_equal(r.outcome, COA_ERROR);
	assert_string_equal(r.detail, "no NAS configured for 10.9.9.9");
}

/* A NAS matched by NAS-Identifier although the session's address is another. */
static void test_match_by_identifier(void **state)
{
	struct fr f;
	struct config_nas nas[2];
	struct coa_sink *sink = NULL;
	struct transition ev;
	struct coa_session s;
	struct waiter w;
	char why[256];

	(void)state;
	fr_start(&f, false);
	nas_for(&nas[0], &f, "other-secret");
	str_copy(nas[0].address, sizeof(nas[0].address), "10.1.1.1");
	nas_for(&nas[1], &f, SECRET);
	str_copy(nas[1].address, sizeof(nas[1].address), "10.2.2.2");
	str_copy(nas[1].identifier, sizeof(nas[1].identifier), "sw-floor-2");
	assert_int_equal(coa_radius_create(nas, 2, &sink, why, sizeof(why)), MDM_OK);
	waiter_init(&w);
	event_for(&ev, "0011223344B4", TRANSITION_REAUTH);
	session_for(&s, "0011223344B4", "10.1.1.1");
	str_copy(s.nas_id, sizeof(s.nas_id), "sw-floor-2");
	assert_int_equal(sink->ops->send(sink, &ev, &s, on_result, &w), MDM_OK);
	assert_int_equal(wait_calls(&w, 1, 5000), 1);
	assert_int_equal(w.res.outcome, COA_OK);
	sink->ops->destroy(sink);
	waiter_free(&w);
	fr_stop(&f);
}

static void test_create_errors(void **state)
{
	struct config_nas nas;
	struct fr f = {.port = 3799};
	struct coa_sink *sink = NULL;
	char why[256] = "";

	(void)state;
	nas_for(&nas, &f, SECRET);
	str_copy(nas.host, sizeof(nas.host), "no-such-host.invalid");
	assert_int_equal(coa_radius_create(&nas, 1, &sink, why, sizeof(why)), MDM_ERR_CONFIG);
	assert_null(sink);
	assert_non_null(strstr(why, "nas[0].host: cannot resolve \"no-such-host.invalid\""));
	/* No NAS at all is a valid, if useless, sink. */
	assert_int_equal(coa_radius_create(NULL, 0, &sink, why, sizeof(why)), MDM_OK);
	sink->ops->destroy(sink);
}

static void test_station_id(void **state)
{
	char out[18];

	(void)state;
	assert_int_equal(coa_radius_station_id("001122aabbCC", out), MDM_OK);
	assert_string_equal(out, "00-11-22-AA-BB-CC");
	assert_int_equal(coa_radius_station_id("00112233445", out), MDM_ERR_INVALID);
	assert_string_equal(out, "");
	assert_int_equal(coa_radius_station_id("00112233445G", out), MDM_ERR_INVALID);
	assert_int_equal(coa_radius_station_id("", out), MDM_ERR_INVALID);
}

/* --- the "nas" configuration list -------------------------------------------------------------
 */

#define BASE                                                                                       \
	"{\"listen\": {\"cert_file\": \"c.pem\", \"key_file\": \"k.pem\"}, \"accounts\": "         \
	"[{\"user\": \"ise\", \"password_hash\": \"$scrypt$x\", \"roles\": [\"query\"]}], "        \
	"\"adapters\": [{\"name\": \"inv\", \"type\": \"inventory\", \"file\": \"inv.json\"}]"

static void test_config_nas(void **state)
{
	struct config *c = calloc(1, sizeof(*c));
	char why[512] = "";
	const char *ok =
	    BASE ", \"nas\": [{\"address\": \"10.0.0.2\", \"secret\": \"abc\"}, "
		 "{\"address\": \"10.0.0.3\", \"identifier\": \"sw3\", \"host\": "
		 "\"sw3.mgmt.example\", \"port\": 1700, \"secret\": \"def\", "
		 "\"require_message_authenticator\": false, \"action\": \"bounce-port\", "
		 "\"cisco_avpair\": false, \"timeout\": \"500ms\", \"tries\": 5}]}";

	(void)state;
	assert_non_null(c);
	if (config_load_mem("t.json", ok, strlen(ok), c, why, sizeof(why)) != MDM_OK)
		fail_msg("%s", why);
	assert_int_equal(c->nnas, 2);
	assert_string_equal(c->nas[0].host, "10.0.0.2");
	assert_int_equal(c->nas[0].port, 3799);
	assert_true(c->nas[0].require_message_authenticator);
	assert_true(c->nas[0].cisco_avpair);
	assert_int_equal(c->nas[0].action, CONFIG_NAS_REAUTH);
	assert_int_equal(c->nas[0].timeout_ms, 1000);
	assert_int_equal(c->nas[0].tries, 3);
	assert_string_equal(c->nas[0].secret, "abc");
	assert_string_equal(c->nas[1].host, "sw3.mgmt.example");
	assert_string_equal(c->nas[1].identifier, "sw3");
	assert_int_equal(c->nas[1].port, 1700);
	assert_false(c->nas[1].require_message_authenticator);
	assert_false(c->nas[1].cisco_avpair);
	assert_int_equal(c->nas[1].action, CONFIG_NAS_BOUNCE);
	assert_int_equal(c->nas[1].timeout_ms, 500);
	assert_int_equal(c->nas[1].tries, 5);
	/* Without the list: none. */
	assert_int_equal(config_load_mem("t.json", BASE "}", strlen(BASE "}"), c, why, sizeof(why)),
			 MDM_OK);
	assert_int_equal(c->nnas, 0);
	free(c);
}

static void test_config_nas_bad(void **state)
{
	static const struct {
		const char *nas, *msg;
	} cases[] = {
	    {"[{\"secret\": \"abc\"}]", "t.json: nas[0].address: "},
	    {"[{\"address\": \"sw1\", \"secret\": \"abc\"}]", "t.json: nas[0].address: "},
	    {"[{\"address\": \"10.0.0.2\"}]", "t.json: nas[0].secret: "},
	    {"[{\"address\": \"10.0.0.2\", \"secret\": \"\"}]", "t.json: nas[0].secret: "},
	    {"[{\"address\": \"10.0.0.2\", \"secret\": \"a\", \"port\": 0}]",
	     "t.json: nas[0].port: "},
	    {"[{\"address\": \"10.0.0.2\", \"secret\": \"a\", \"tries\": 11}]",
	     "t.json: nas[0].tries: "},
	    {"[{\"address\": \"10.0.0.2\", \"secret\": \"a\", \"timeout\": \"50ms\"}]",
	     "t.json: nas[0].timeout: "},
	    {"[{\"address\": \"10.0.0.2\", \"secret\": \"a\", \"action\": \"wipe\"}]",
	     "t.json: nas[0].action: "},
	    {"[{\"address\": \"10.0.0.2\", \"secret\": \"a\", \"host\": \"a b\"}]",
	     "t.json: nas[0].host: "},
	    {"[{\"address\": \"10.0.0.2\", \"secret\": \"a\", \"colour\": 1}]",
	     "t.json: nas[0].colour: "},
	    {"[{\"address\": \"10.0.0.2\", \"secret\": \"a\"}, {\"address\": \"10.0.0.2\", "
	     "\"secret\": \"b\"}]",
	     "t.json: nas[1].address: duplicate NAS address"},
	    {"{}", "t.json: nas: must be an array"},
	};
	struct config *c = calloc(1, sizeof(*c));
	char json[1024], why[512];
	int failures = 0;

	(void)state;
	assert_non_null(c);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum mdm_err rc;

		snprintf(json, sizeof(json), BASE ", \"nas\": %s}", cases[i].nas);
		why[0] = '\0';
		rc = config_load_mem("t.json", json, strlen(json), c, why, sizeof(why));
		if (rc != MDM_ERR_CONFIG || strncmp(why, cases[i].msg, strlen(cases[i].msg)) != 0) {
			print_error("case %zu: rc %d\n  got:  %s\n  want: %s...\n", i, rc, why,
				    cases[i].msg);
			failures++;
		}
	}
	assert_int_equal(failures, 0);
	free(c);
}

static int teardown(void **state)
{
	int st;

	(void)state;
	for (int i = 0; i < 4; i++)
		if (g_fr_pids[i]) {
			kill(g_fr_pids[i], SIGTERM);
			waitpid(g_fr_pids[i], &st, 0);
			g_fr_pids[i] = 0;
		}
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_coa_ack, teardown),
	    cmocka_unit_test_teardown(test_bounce_and_plain, teardown),
	    cmocka_unit_test_teardown(test_disconnect_ack, teardown),
	    cmocka_unit_test_teardown(test_nak, teardown),
	    cmocka_unit_test_teardown(test_wrong_secret, teardown),
	    cmocka_unit_test_teardown(test_reply_without_ma, teardown),
	    cmocka_unit_test_teardown(test_many_outstanding, teardown),
	    cmocka_unit_test_teardown(test_match_by_identifier, teardown),
	    cmocka_unit_test(test_retransmit_and_drops),
	    cmocka_unit_test(test_bad_replies_dropped),
	    cmocka_unit_test(test_destroy_waits),
	    cmocka_unit_test(test_no_nas),
	    cmocka_unit_test(test_create_errors),
	    cmocka_unit_test(test_station_id),
	    cmocka_unit_test(test_config_nas),
	    cmocka_unit_test(test_config_nas_bad),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
