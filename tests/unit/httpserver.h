/*
 * httpserver: a real HTTPS server inside a unit test (libmicrohttpd, one thread per connection so
 * a slow route does not block the others), with test certificates made by the openssl command.
 *
 * Routes: /ok (200 "hello"), /slow?ms=N (200 after N ms), /big?n=N (N bytes of 'x'),
 * /status?code=N (status N; 429 and 503 with "Retry-After:  7 "), /basic (200 with Authorization
 * "Basic alice:s3cret", else 401), /count (200 "requests=R conns=C"); anything else 404. Every
 * request and connection is counted.
 */
#ifndef MDM_TEST_HTTPSERVER_H
#define MDM_TEST_HTTPSERVER_H

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HSRV_BASIC_OK "Basic YWxpY2U6czNjcmV0" /* alice:s3cret */

struct hsrv {
	struct MHD_Daemon *d;
	unsigned short port;
	char *cert;
	char *key;
	pthread_mutex_t mu;
	unsigned requests;    /* every request, any route */
	unsigned conns_total; /* connections accepted */
	unsigned conns_open;  /* connections open now */
	unsigned conns_max;   /* most connections open at once since hsrv_reset */
};

static void hsrv_sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0)
		;
}

static char *hsrv_slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *mem = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0) {
		mem = calloc(1, (size_t)n + 1);
		if (mem && fread(mem, 1, (size_t)n, f) != (size_t)n) {
			free(mem);
			mem = NULL;
		}
	}
	fclose(f);
	return mem;
}

static long hsrv_arg(struct MHD_Connection *conn, const char *name, long def)
{
	const char *v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);

	return v ? strtol(v, NULL, 10) : def;
}

static enum MHD_Result hsrv_reply(struct MHD_Connection *conn, unsigned code, const char *text)
{
	struct MHD_Response *rsp =
	    MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	if (!rsp)
		return MHD_NO;
	if (code == 401)
		MHD_add_response_header(rsp, "WWW-Authenticate", "Basic realm=\"test\"");
	if (code == 429 || code == 503)
		MHD_add_response_header(rsp, "Retry-After", " 7 ");
	ret = MHD_queue_response(conn, code, rsp);
	MHD_destroy_response(rsp);
	return ret;
}

static enum MHD_Result hsrv_big(struct MHD_Connection *conn, long n)
{
	struct MHD_Response *rsp;
	char *mem;
	enum MHD_Result ret;

	if (n < 0 || n > 64L * 1024 * 1024)
		return hsrv_reply(conn, 400, "bad n");
	mem = malloc((size_t)n + 1);
	if (!mem)
		return MHD_NO;
	memset(mem, 'x', (size_t)n);
	rsp = MHD_create_response_from_buffer((size_t)n, mem, MHD_RESPMEM_MUST_FREE);
	if (!rsp) {
		free(mem);
		return MHD_NO;
	}
	ret = MHD_queue_response(conn, 200, rsp);
	MHD_destroy_response(rsp);
	return ret;
}

static enum MHD_Result hsrv_route(struct hsrv *s, struct MHD_Connection *conn, const char *url)
{
	char text[128];
	const char *auth;

	if (strcmp(url, "/ok") == 0)
		return hsrv_reply(conn, 200, "hello");
	if (strcmp(url, "/slow") == 0) {
		hsrv_sleep_ms(hsrv_arg(conn, "ms", 0));
		return hsrv_reply(conn, 200, "slow");
	}
	if (strcmp(url, "/big") == 0)
		return hsrv_big(conn, hsrv_arg(conn, "n", 0));
	if (strcmp(url, "/status") == 0)
		return hsrv_reply(conn, (unsigned)hsrv_arg(conn, "code", 500), "status");
	if (strcmp(url, "/basic") == 0) {
		auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
		if (auth && strcmp(auth, HSRV_BASIC_OK) == 0)
			return hsrv_reply(conn, 200, "welcome");
		return hsrv_reply(conn, 401, "who are you");
	}
	if (strcmp(url, "/count") == 0) {
		pthread_mutex_lock(&s->mu);
		snprintf(text, sizeof(text), "requests=%u conns=%u", s->requests, s->conns_total);
		pthread_mutex_unlock(&s->mu);
		return hsrv_reply(conn, 200, text);
	}
	return hsrv_reply(conn, 404, "no such route");
}

static enum MHD_Result hsrv_handler(void *cls, struct MHD_Connection *conn, const char *url,
				    const char *method, const char *version, const char *upload,
				    size_t *upload_size, void **ctx)
{
	static int seen;
	struct hsrv *s = cls;

	(void)method;
	(void)version;
	(void)upload;
	if (!*ctx) { /* first call: headers only */
		*ctx = &seen;
		pthread_mutex_lock(&s->mu);
		s->requests++;
		pthread_mutex_unlock(&s->mu);
		return MHD_YES;
	}
	if (*upload_size) {
		*upload_size = 0;
		return MHD_YES;
	}
	return hsrv_route(s, conn, url);
}

static void hsrv_notify(void *cls, struct MHD_Connection *conn, void **socket_ctx,
			enum MHD_ConnectionNotificationCode code)
{
	struct hsrv *s = cls;

	(void)conn;
	(void)socket_ctx;
	pthread_mutex_lock(&s->mu);
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		s->conns_total++;
		if (++s->conns_open > s->conns_max)
			s->conns_max = s->conns_open;
	} else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
		s->conns_open--;
	}
	pthread_mutex_unlock(&s->mu);
}

/* hsrv_start: serves HTTPS on a free 127.0.0.1 port with the given PEM files; 0 on success. */
static int hsrv_start(struct hsrv *s, const char *cert_file, const char *key_file)
{
	struct sockaddr_in sa;
	const union MHD_DaemonInfo *info;

	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->mu, NULL);
	s->cert = hsrv_slurp(cert_file);
	s->key = hsrv_slurp(key_file);
	if (!s->cert || !s->key)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->d = MHD_start_daemon(
	    MHD_USE_TLS | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL,
	    NULL, hsrv_handler, s, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_HTTPS_MEM_KEY, s->key,
	    MHD_OPTION_HTTPS_MEM_CERT, s->cert, MHD_OPTION_NOTIFY_CONNECTION, hsrv_notify, s,
	    MHD_OPTION_CONNECTION_TIMEOUT, 30U, MHD_OPTION_END);
	if (!s->d)
		return -1;
	info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	s->port = info ? info->port : 0;
	return s->port ? 0 : -1;
}

static void hsrv_stop(struct hsrv *s)
{
	if (s->d)
		MHD_stop_daemon(s->d);
	s->d = NULL;
	free(s->cert);
	free(s->key);
	s->cert = s->key = NULL;
	pthread_mutex_destroy(&s->mu);
}

static unsigned hsrv_requests(struct hsrv *s)
{
	unsigned n;

	pthread_mutex_lock(&s->mu);
	n = s->requests;
	pthread_mutex_unlock(&s->mu);
	return n;
}

/* hsrv_reset: waits (up to 5 s) for earlier clients' connections to close, then zeroes counts. */
static void hsrv_reset(struct hsrv *s)
{
	int i;

	for (i = 0; i < 500; i++) {
		pthread_mutex_lock(&s->mu);
		if (!s->conns_open) {
			s->conns_total = s->conns_max = 0;
			pthread_mutex_unlock(&s->mu);
			return;
		}
		pthread_mutex_unlock(&s->mu);
		hsrv_sleep_ms(10);
	}
	pthread_mutex_lock(&s->mu);
	s->conns_total = 0;
	s->conns_max = s->conns_open;
	pthread_mutex_unlock(&s->mu);
}

/* hsrv_free_port: a loopback port nobody listens on (bound, read, closed). 0 on error. */
static unsigned short hsrv_free_port(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	unsigned short port = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return 0;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

/*
 * hsrv_make_certs: in dir, a CA (PREFIX-ca.pem) and a server certificate for 127.0.0.1 and
 * localhost (PREFIX-srv.pem, PREFIX-srv.key) signed by it, and the server key's pin
 * (PREFIX-srv.pin, base64 SHA-256 of the DER public key). 0 on success.
 */
static int hsrv_make_certs(const char *dir, const char *prefix)
{
	char cmd[4096];

	snprintf(cmd, sizeof(cmd),
		 "(cd '%s' && P='%s' && "
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		 "-keyout $P-ca.key -out $P-ca.pem -days 2 -subj /CN=$P-test-ca "
		 "-addext basicConstraints=critical,CA:TRUE "
		 "-addext keyUsage=critical,keyCertSign,cRLSign && "
		 "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		 "-keyout $P-srv.key -out $P-srv.csr -subj /CN=localhost && "
		 "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n"
		 "basicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n' > $P-ext.cnf && "
		 "openssl x509 -req -in $P-srv.csr -CA $P-ca.pem -CAkey $P-ca.key "
		 "-CAcreateserial -out $P-srv.pem -days 2 -extfile $P-ext.cnf && "
		 "openssl pkey -in $P-srv.key -pubout -outform der | openssl dgst -sha256 -binary "
		 "| openssl base64 -A > $P-srv.pin) >/dev/null 2>&1",
		 dir, prefix);
	return system(cmd) == 0 ? 0 : -1;
}

#endif
