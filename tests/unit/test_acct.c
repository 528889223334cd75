#include "unit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "../../core/buf.h"
#include "../../core/clock.h"
#include "../../gateway/coa/acct.h"

#define SECRET "testing123"

/* An Accounting-Request built here, independently of the listener's code. */
struct pkt {
	unsigned char b[5000];
	size_t len;
	int ma_at; /* offset of the Message-Authenticator value, -1 for none */
};

static void pkt_init(struct pkt *p, unsigned char id)
{
	memset(p, 0, sizeof(*p));
	p->b[0] = 4;
	p->b[1] = id;
	p->len = 20;
	p->ma_at = -1;
}

static void attr(struct pkt *p, unsigned char type, const void *v, size_t n)
{
	p->b[p->len] = type;
	p->b[p->len + 1] = (unsigned char)(n + 2);
	memcpy(p->b + p->len + 2, v, n);
	p->len += n + 2;
}

static void attr_str(struct pkt *p, unsigned char type, const char *s)
{
	attr(p, type, s, strlen(s));
}

static void attr_int(struct pkt *p, unsigned char type, uint32_t v)
{
	unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
			      (unsigned char)(v >> 8), (unsigned char)v};

	attr(p, type, b, 4);
}

static void attr_ip(struct pkt *p, const char *ip)
{
	unsigned char a[4];

	assert_int_equal(inet_pton(AF_INET, ip, a), 1);
	attr(p, 4, a, 4);
}

static void md5(const unsigned char *a, size_t an, const char *secret, unsigned char out[16])
{
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	unsigned int n;

	assert_int_equal(EVP_DigestInit_ex(m, EVP_md5(), NULL), 1);
	EVP_DigestUpdate(m, a, an);
	EVP_DigestUpdate(m, secret, strlen(secret));
	EVP_DigestFinal_ex(m, out, &n);
	EVP_MD_CTX_free(m);
}

/* Length, Message-Authenticator (when asked for) and Request Authenticator with secret. */
static void pkt_sign(struct pkt *p, const char *secret, bool with_ma)
{
	unsigned char mac[EVP_MAX_MD_SIZE], zero[16] = {0};
	unsigned int n;

	if (with_ma) {
		p->ma_at = (int)p->len + 2;
		attr(p, 80, zero, 16);
	}
	p->b[2] = (unsigned char)(p->len >> 8);
	p->b[3] = (unsigned char)p->len;
	memset(p->b + 4, 0, 16);
	if (with_ma) {
		HMAC(EVP_md5(), secret, (int)strlen(secret), p->b, p->len, mac, &n);
		memcpy(p->b + p->ma_at, mac, 16);
	}
	md5(p->b, p->len, secret, p->b + 4);
}

/* Start/Interim/Stop of a session, as a switch sends it. */
static void session_pkt(struct pkt *p, unsigned char id, uint32_t status, const char *mac,
			const char *acct_id, const char *user)
{
	pkt_init(p, id);
	attr_int(p, 40, status);
	attr_str(p, 1, user);
	attr_str(p, 31, mac);
	attr_str(p, 44, acct_id);
	attr_ip(p, "10.9.8.7");
	attr_str(p, 32, "switch-a");
	attr_int(p, 5, 50112);
}

struct fix {
	struct sessions *t;
	struct acct *a;
	int sock;  /* bound to 127.0.0.1: a client */
	int other; /* bound to 127.0.0.2: not a client */
	struct sockaddr_in to;
};

static int open_from(const char *ip)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, ip, &sa.sin_addr), 1);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	struct config_accounting cfg;
	char why[256] = "";

	assert_non_null(f);
	memset(&cfg, 0, sizeof(cfg));
	str_copy(cfg.listen_addr, sizeof(cfg.listen_addr), "127.0.0.1");
	cfg.listen_port = 0;
	cfg.nclients = 2;
	/* the /32 is more specific than the /8, so its secret is the one used */
	cfg.clients[0].family = AF_INET;
	inet_pton(AF_INET, "127.0.0.0", cfg.clients[0].net);
	cfg.clients[0].prefix = 8;
	str_copy(cfg.clients[0].secret, sizeof(cfg.clients[0].secret), "wrong-one");
	cfg.clients[1].family = AF_INET;
	inet_pton(AF_INET, "127.0.0.1", cfg.clients[1].net);
	cfg.clients[1].prefix = 32;
	str_copy(cfg.clients[1].secret, sizeof(cfg.clients[1].secret), SECRET);
	f->t = sessions_create(100, 60000);
	assert_non_null(f->t);
	if (acct_start(&cfg, f->t, &f->a, why, sizeof(why)) != MDM_OK)
		fail_msg("%s", why);
	assert_true(acct_port(f->a) > 0);
	f->sock = open_from("127.0.0.1");
	f->other = open_from("127.0.0.2");
	memset(&f->to, 0, sizeof(f->to));
	f->to.sin_family = AF_INET;
	f->to.sin_port = htons((uint16_t)acct_port(f->a));
	inet_pton(AF_INET, "127.0.0.1", &f->to.sin_addr);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	acct_stop(f->a);
	sessions_destroy(f->t);
	close(f->sock);
	close(f->other);
	free(f);
	return 0;
}

/*
 * Sends p from fd; returns true when an answer came within wait_ms, checking it is a valid
 * Accounting-Response to p (code 5, same id, Response Authenticator with SECRET).
 */
static bool exchange(struct fix *f, int fd, const struct pkt *p, int wait_ms)
{
	unsigned char r[4096], want[16], buf[4096];
	struct pollfd pfd = {fd, POLLIN, 0};
	ssize_t n;

	assert_int_equal(sendto(fd, p->b, p->len, 0, (struct sockaddr *)&f->to, sizeof(f->to)),
			 (ssize_t)p->len);
	if (poll(&pfd, 1, wait_ms) != 1)
		return false;
	n = recv(fd, r, sizeof(r), 0);
	assert_int_equal(n, 20);
	assert_int_equal(r[0], 5);
	assert_int_equal(r[1], p->b[1]);
	assert_int_equal(r[2] << 8 | r[3], 20);
	memcpy(buf, r, 20);
	memcpy(buf + 4, p->b + 4, 16); /* the request's authenticator */
	md5(buf, 20, SECRET, want);
	assert_memory_equal(r + 4, want, 16);
	return true;
}

/* Whether the counter reaches want within a second. */
static bool wait_count(const atomic_ulong *c, unsigned long want)
{
	for (int i = 0; i < 100 && atomic_load(c) != want; i++)
		usleep(10000);
	return atomic_load(c) == want;
}

static void test_start_interim_stop(void **state)
{
	struct fix *f = *state;
	const struct acct_stats *st = acct_stats(f->a);
	struct coa_session out[4];
	struct pkt p;

	session_pkt(&p, 1, 1, "00-11-22-33-44-55", "S1", "alice");
	pkt_sign(&p, SECRET, false);
	assert_true(exchange(f, f->sock, &p, 2000));
	assert_int_equal(sessions_find(f->t, "001122334455", out, 4), 1);
	assert_string_equal(out[0].nas_ip, "10.9.8.7");
	assert_string_equal(out[0].nas_id, "switch-a");
	assert_string_equal(out[0].acct_session_id, "S1");
	assert_string_equal(out[0].user_name, "alice");
	assert_true(out[0].has_nas_port);
	assert_int_equal(out[0].nas_port, 50112);
	/* The same Start again (a retransmission): answered again, still one session. */
	assert_true(exchange(f, f->sock, &p, 2000));
	assert_int_equal(sessions_count(f->t), 1);
	/* An Interim-Update with a Message-Authenticator refreshes it. */
	session_pkt(&p, 2, 3, "00:11:22:33:44:55", "S1", "alice@corp");
	pkt_sign(&p, SECRET, true);
	assert_true(exchange(f, f->sock, &p, 2000));
	assert_int_equal(sessions_find(f->t, "001122334455", out, 4), 1);
	assert_string_equal(out[0].user_name, "alice@corp");
	/* A second session of the MAC (wireless), then Stop of the first. */
	session_pkt(&p, 3, 1, "0011.2233.4455", "W1", "alice");
	pkt_sign(&p, SECRET, false);
	assert_true(exchange(f, f->sock, &p, 2000));
	assert_int_equal(sessions_find(f->t, "001122334455", out, 4), 2);
	session_pkt(&p, 4, 2, "001122334455", "S1", "alice");
	pkt_sign(&p, SECRET, false);
	assert_true(exchange(f, f->sock, &p, 2000));
	assert_int_equal(sessions_find(f->t, "001122334455", out, 4), 1);
	assert_string_equal(out[0].acct_session_id, "W1");
	assert_int_equal(atomic_load(&st->starts), 3);
	assert_int_equal(atomic_load(&st->interims), 1);
	assert_int_equal(atomic_load(&st->stops), 1);
	assert_int_equal(atomic_load(&st->requests), 5);
	/* counted just after the send: the answer may arrive before */
	assert_true(wait_count(&st->responses, 5));
}

static void test_accounting_on_and_no_mac(void **state)
{
	struct fix *f = *state;
	const struct acct_stats *st = acct_stats(f->a);
	struct coa_session out[4];
	struct pkt p;
	char mac[16];

	for (int i = 0; i < 3; i++) {
		snprintf(mac, sizeof(mac), "0011223344%02X", 0x10 + i);
		session_pkt(&p, (unsigned char)i, 1, mac, "S", "u");
		pkt_sign(&p, SECRET, false);
		assert_true(exchange(f, f->sock, &p, 2000));
	}
	/* No NAS-IP-Address: the source address stands for the NAS. */
	pkt_init(&p, 9);
	attr_int(&p, 40, 1);
	attr_str(&p, 31, "00:aa:bb:cc:dd:ee");
	attr_str(&p, 44, "X");
	pkt_sign(&p, SECRET, false);
	assert_true(exchange(f, f->sock, &p, 2000));
	assert_int_equal(sessions_find(f->t, "00AABBCCDDEE", out, 4), 1);
	assert_string_equal(out[0].nas_ip, "127.0.0.1");
	assert_int_equal(sessions_count(f->t), 4);
	/* A Start without a usable MAC is answered, not stored. */
	session_pkt(&p, 10, 1, "not-a-mac", "Y", "u");
	pkt_sign(&p, SECRET, false);
	assert_true(exchange(f, f->sock, &p, 2000));
	assert_int_equal(atomic_load(&st->no_mac), 1);
	assert_int_equal(sessions_count(f->t), 4);
	/* Accounting-On from switch-a: its three sessions go, the other NAS's stays. */
	pkt_init(&p, 11);
	attr_int(&p, 40, 7);
	attr_ip(&p, "10.9.8.7");
	attr_str(&p, 32, "switch-a");
	pkt_sign(&p, SECRET, false);
	assert_true(exchange(f, f->sock, &p, 2000));
	assert_int_equal(sessions_count(f->t), 1);
	assert_int_equal(atomic_load(&st->nas_resets), 1);
}

static void test_dropped(void **state)
{
	struct fix *f = *state;
	const struct acct_stats *st = acct_stats(f->a);
	struct pkt p;

	/* wrong secret */
	session_pkt(&p, 1, 1, "001122334466", "S1", "bob");
	pkt_sign(&p, "not-the-secret", false);
	assert_false(exchange(f, f->sock, &p, 300));
	assert_int_equal(atomic_load(&st->bad_auth), 1);
	/* right Request Authenticator, tampered Message-Authenticator */
	session_pkt(&p, 2, 1, "001122334466", "S1", "bob");
	pkt_sign(&p, SECRET, true);
	p.b[p.ma_at] ^= 1;
	memset(p.b + 4, 0, 16); /* a valid Request Authenticator over the tampered packet */
	md5(p.b, p.len, SECRET, p.b + 4);
	assert_false(exchange(f, f->sock, &p, 300));
	assert_int_equal(atomic_load(&st->bad_auth), 2);
	/* 127.0.0.2 matches only the /8 client, whose secret is another one */
	session_pkt(&p, 3, 1, "001122334466", "S1", "bob");
	pkt_sign(&p, SECRET, false);
	assert_false(exchange(f, f->other, &p, 300));
	assert_int_equal(atomic_load(&st->bad_auth), 3);
	/* not an Accounting-Request, a length past the datagram, an attribute overrunning */
	session_pkt(&p, 4, 1, "001122334466", "S1", "bob");
	pkt_sign(&p, SECRET, false);
	p.b[0] = 1;
	assert_false(exchange(f, f->sock, &p, 300));
	session_pkt(&p, 5, 1, "001122334466", "S1", "bob");
	pkt_sign(&p, SECRET, false);
	p.b[3] = (unsigned char)(p.b[3] + 10);
	assert_false(exchange(f, f->sock, &p, 300));
	session_pkt(&p, 6, 1, "001122334466", "S1", "bob");
	p.b[21] = 200;
	pkt_sign(&p, SECRET, false);
	assert_false(exchange(f, f->sock, &p, 300));
	/* a datagram over 4096 bytes */
	pkt_init(&p, 7);
	p.len = 4500;
	assert_false(exchange(f, f->sock, &p, 300));
	assert_int_equal(atomic_load(&st->malformed), 4);
	assert_int_equal(atomic_load(&st->requests), 0);
	assert_int_equal(sessions_count(f->t), 0);
}

static void test_unknown_client(void **state)
{
	struct sessions *t = sessions_create(10, 60000);
	struct config_accounting cfg;
	struct acct *a;
	struct fix f;
	struct pkt p;
	char why[256];

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	str_copy(cfg.listen_addr, sizeof(cfg.listen_addr), "127.0.0.1");
	cfg.nclients = 1;
	cfg.clients[0].family = AF_INET;
	inet_pton(AF_INET, "127.0.0.1", cfg.clients[0].net);
	cfg.clients[0].prefix = 32;
	str_copy(cfg.clients[0].secret, sizeof(cfg.clients[0].secret), SECRET);
	assert_int_equal(acct_start(&cfg, t, &a, why, sizeof(why)), MDM_OK);
	memset(&f, 0, sizeof(f));
	f.to.sin_family = AF_INET;
	f.to.sin_port = htons((uint16_t)acct_port(a));
	inet_pton(AF_INET, "127.0.0.1", &f.to.sin_addr);
	f.other = open_from("127.0.0.2");
	f.sock = open_from("127.0.0.1");
	session_pkt(&p, 1, 1, "001122334477", "S1", "eve");
	pkt_sign(&p, SECRET, false);
	assert_false(exchange(&f, f.other, &p, 300));
	assert_int_equal(atomic_load(&acct_stats(a)->unknown_client), 1);
	assert_int_equal(sessions_count(t), 0);
	assert_true(exchange(&f, f.sock, &p, 2000)); /* the same packet from the client */
	assert_int_equal(sessions_count(t), 1);
	close(f.other);
	close(f.sock);
	acct_stop(a);
	sessions_destroy(t);
}

static void test_bind_error(void **state)
{
	struct sessions *t = sessions_create(10, 60000);
	struct config_accounting cfg;
	struct acct *a, *b;
	char why[256] = "";

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	str_copy(cfg.listen_addr, sizeof(cfg.listen_addr), "127.0.0.1");
	assert_int_equal(acct_start(&cfg, t, &a, why, sizeof(why)), MDM_OK);
	cfg.listen_port = acct_port(a);
	assert_int_equal(acct_start(&cfg, t, &b, why, sizeof(why)), MDM_ERR_IO);
	assert_null(b);
	assert_non_null(strstr(why, "cannot listen on 127.0.0.1 port"));
	acct_stop(a);
	acct_stop(NULL);
	sessions_destroy(t);
}

static void test_metrics(void **state)
{
	struct fix *f = *state;
	struct buf b;
	struct prom w;
	struct pkt p;

	session_pkt(&p, 1, 1, "001122334488", "S1", "carol");
	pkt_sign(&p, SECRET, false);
	assert_true(exchange(f, f->sock, &p, 2000));
	buf_init(&b, 1 << 16);
	w = prom_init(&b);
	acct_metrics(f->a, &w);
	assert_non_null(strstr(buf_str(&b), "\nmdmgw_acct_requests_total 1\n"));
	sessions_metrics(f->t, &w);
	assert_non_null(strstr(buf_str(&b), "\nmdmgw_sessions 1\n"));
	assert_non_null(strstr(buf_str(&b), "\nmdmgw_sessions_refused_total 0\n"));
	assert_non_null(strstr(buf_str(&b), "mdmgw_acct_status_total{type=\"start\"} 1\n"));
	assert_int_equal(w.e, MDM_OK);
	buf_free(&b);
	/* a bound too small for the lines: the failure sticks, nothing after it is added */
	buf_init(&b, 64);
	w = prom_init(&b);
	acct_metrics(f->a, &w);
	assert_int_equal(w.e, MDM_ERR_TOOBIG);
	assert_true(b.len < 64);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_start_interim_stop, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_accounting_on_and_no_mac, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dropped, setup, teardown),
	    cmocka_unit_test(test_unknown_client),
	    cmocka_unit_test(test_bind_error),
	    cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
