/*
 * bare_server: the baselines of `make bench-cache`. A libmicrohttpd HTTPS server with exactly the
 * gateway's daemon flags, TLS priorities, thread pool, connection timeout and limits, and no
 * application work at all:
 *
 *   bare_server --port P --cert F --key F --threads N --body FILE [--reuse]
 *       every request is answered 200 with the bytes of FILE (read once at start), as
 *       "application/xml; charset=utf-8", Cache-Control: no-store. The response is built per
 *       request with MHD_RESPMEM_MUST_COPY, as the gateway builds its own; --reuse builds it
 *       once (MHD_RESPMEM_PERSISTENT) and queues the same one every time.
 *
 *   bare_server --port P --cert F --key F --threads N --memcached HOST:PORT --key K [--store FILE]
 *       (the first --key is the TLS key, the second the memcached key; --mc-key K also works)
 *       every request does one blocking memcached_get of K (libmemcached, text protocol, a pool of
 *       N handles, 50 ms connect and I/O timeouts as the gateway's defaults) and answers 200 with
 *       the value's bytes, 404 when K is absent, 503 when memcached fails. --store FILE first
 *       stores the bytes of FILE under K.
 *
 * Options: --address A (default 127.0.0.1), --verbose (MHD's error log on stderr).
 * SIGTERM or SIGINT stops it (exit 0). No authentication: the gateway's Basic auth is part of
 * what the benchmark measures on top of this.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libmemcached/memcached.h>
#include <libmemcachedutil-1.0/pool.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include "../gateway/server/server.h"

/* The gateway's listen.* defaults (gateway/app/config.c); conf/demo.json does not change them. */
#define IDLE_TIMEOUT_S 60u
#define MAX_CONNECTIONS 4096u
#define MAX_CONNECTIONS_PER_IP 1024u
#define HEADER_MEMORY ((size_t)32768)
/* The gateway's cache.connect_timeout and cache.io_timeout defaults. */
#define MC_TIMEOUT_MS 50u
#define FILE_MAX (16u * 1024u * 1024u)

#define XML_TYPE "application/xml; charset=utf-8"

struct opts {
	const char *address;
	unsigned port;
	const char *cert, *key_file;
	unsigned threads;
	const char *body_file;
	bool reuse;
	const char *mc_server;
	const char *mc_key;
	const char *store_file;
	bool verbose;
};

struct bare {
	struct opts o;
	char *body;
	size_t body_len;
	struct MHD_Response *persistent; /* --reuse */
	memcached_st *mc_template;
	memcached_pool_st *mc_pool;
	size_t mc_key_len;
	atomic_ulong mc_failures; /* gets answered 404 or 503 */
};

/* The marker of a request seen once: answered on its second call, as the gateway does. */
static int seen_marker;

static void usage(void)
{
	fputs("usage: bare_server --port P --cert F --key F --threads N --body FILE [--reuse]\n"
	      "       bare_server --port P --cert F --key F --threads N --memcached HOST:PORT "
	      "--key K [--store FILE]\n"
	      "       options: --address A (127.0.0.1), --verbose\n",
	      stderr);
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *mem = NULL;
	size_t n = 0, alloc = 0;

	if (!f) {
		fprintf(stderr, "bare_server: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	for (;;) {
		size_t got;

		if (alloc - n < 4096) {
			char *grown;

			if (alloc >= FILE_MAX) {
				fprintf(stderr, "bare_server: %s: larger than %u bytes\n", path,
					FILE_MAX);
				goto fail;
			}
			alloc = alloc ? alloc * 2 : 8192;
			grown = realloc(mem, alloc + 1);
			if (!grown)
				goto fail;
			mem = grown;
		}
		got = fread(mem + n, 1, alloc - n, f);
		n += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		fprintf(stderr, "bare_server: %s: read error\n", path);
		goto fail;
	}
	fclose(f);
	mem[n] = '\0';
	*len = n;
	return mem;
fail:
	fclose(f);
	free(mem);
	return NULL;
}

static bool parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return false;
	*out = (unsigned)v;
	return true;
}

static bool bad_args(const char *msg)
{
	fprintf(stderr, "bare_server: %s\n", msg);
	return false;
}

static bool parse_args(int argc, char **argv, struct opts *o)
{
	memset(o, 0, sizeof(*o));
	o->address = "127.0.0.1";
	o->threads = 2;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--reuse") == 0) {
			o->reuse = true;
			continue;
		}
		if (strcmp(a, "--verbose") == 0) {
			o->verbose = true;
			continue;
		}
		if (!v) {
			fprintf(stderr, "bare_server: %s: missing value or unknown option\n", a);
			return false;
		}
		i++;
		if (strcmp(a, "--port") == 0) {
			if (!parse_uint(v, 1, 65535, &o->port))
				return bad_args("bad --port");
		} else if (strcmp(a, "--threads") == 0) {
			if (!parse_uint(v, 1, 256, &o->threads))
				return bad_args("bad --threads");
		} else if (strcmp(a, "--address") == 0) {
			o->address = v;
		} else if (strcmp(a, "--cert") == 0) {
			o->cert = v;
		} else if (strcmp(a, "--key") == 0) {
			/* the first --key is the TLS key file, a second one the memcached key */
			if (o->key_file)
				o->mc_key = v;
			else
				o->key_file = v;
		} else if (strcmp(a, "--mc-key") == 0) {
			o->mc_key = v;
		} else if (strcmp(a, "--body") == 0) {
			o->body_file = v;
		} else if (strcmp(a, "--memcached") == 0) {
			o->mc_server = v;
		} else if (strcmp(a, "--store") == 0) {
			o->store_file = v;
		} else {
			fprintf(stderr, "bare_server: unknown option %s\n", a);
			return false;
		}
	}
	if (!o->port || !o->cert || !o->key_file)
		return bad_args("--port, --cert and --key are required");
	if (!!o->body_file == !!o->mc_server)
		return bad_args("give either --body or --memcached");
	if (!!o->mc_server != !!o->mc_key)
		return bad_args(
		    "--memcached and a memcached key (a second --key, or --mc-key) go together");
	if (o->store_file && !o->mc_server)
		return bad_args("--store needs --memcached");
	if (o->mc_key &&
	    (strlen(o->mc_key) == 0 || strlen(o->mc_key) > 250 || strpbrk(o->mc_key, " \t\r\n")))
		return bad_args("bad memcached key");
	return true;
}

/* --- memcached ----------------------------------------------------------------------------- */

static bool mc_setup(struct bare *b)
{
	char host[256];
	const char *colon = strrchr(b->o.mc_server, ':');
	unsigned port;
	size_t hlen;
	memcached_return_t rc;

	if (!colon || !parse_uint(colon + 1, 1, 65535, &port) ||
	    (hlen = (size_t)(colon - b->o.mc_server)) == 0 || hlen >= sizeof(host)) {
		fprintf(stderr, "bare_server: --memcached wants HOST:PORT\n");
		return false;
	}
	if (hlen > 2 && b->o.mc_server[0] == '[' && b->o.mc_server[hlen - 1] == ']') {
		memcpy(host, b->o.mc_server + 1, hlen - 2); /* [IPv6]:port */
		host[hlen - 2] = '\0';
	} else {
		memcpy(host, b->o.mc_server, hlen);
		host[hlen] = '\0';
	}
	b->mc_key_len = strlen(b->o.mc_key);
	b->mc_template = memcached_create(NULL);
	if (!b->mc_template)
		return false;
	/* The I/O behaviours the gateway sets on its handles (cache/memcached.c): text protocol,
	 * millisecond connect and poll timeouts, socket timeouts, TCP_NODELAY and keep-alive. Its
	 * distribution settings (ketama over MD5) do not matter with one server. */
	memcached_behavior_set(b->mc_template, MEMCACHED_BEHAVIOR_BINARY_PROTOCOL, 0);
	memcached_behavior_set(b->mc_template, MEMCACHED_BEHAVIOR_TCP_NODELAY, 1);
	memcached_behavior_set(b->mc_template, MEMCACHED_BEHAVIOR_TCP_KEEPALIVE, 1);
	memcached_behavior_set(b->mc_template, MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, MC_TIMEOUT_MS);
	memcached_behavior_set(b->mc_template, MEMCACHED_BEHAVIOR_POLL_TIMEOUT, MC_TIMEOUT_MS);
	memcached_behavior_set(b->mc_template, MEMCACHED_BEHAVIOR_RCV_TIMEOUT,
			       (uint64_t)MC_TIMEOUT_MS * 1000u);
	memcached_behavior_set(b->mc_template, MEMCACHED_BEHAVIOR_SND_TIMEOUT,
			       (uint64_t)MC_TIMEOUT_MS * 1000u);
	rc = memcached_server_add(b->mc_template, host, (in_port_t)port);
	if (rc != MEMCACHED_SUCCESS) {
		fprintf(stderr, "bare_server: memcached %s: %s\n", b->o.mc_server,
			memcached_strerror(b->mc_template, rc));
		return false;
	}
	if (b->o.store_file) {
		size_t len;
		char *val = read_file(b->o.store_file, &len);

		if (!val)
			return false;
		rc = memcached_set(b->mc_template, b->o.mc_key, b->mc_key_len, val, len, 0, 0);
		free(val);
		if (rc != MEMCACHED_SUCCESS) {
			fprintf(stderr, "bare_server: memcached set %s: %s\n", b->o.mc_key,
				memcached_strerror(b->mc_template, rc));
			return false;
		}
	}
	/* One handle per MHD thread: a request never waits for a handle. */
	b->mc_pool = memcached_pool_create(b->mc_template, b->o.threads, b->o.threads);
	if (!b->mc_pool) {
		fprintf(stderr, "bare_server: cannot create the memcached pool\n");
		return false;
	}
	return true;
}

static void mc_teardown(struct bare *b)
{
	if (b->mc_pool)
		memcached_pool_destroy(b->mc_pool);
	if (b->mc_template)
		memcached_free(b->mc_template);
}

/* --- HTTP ---------------------------------------------------------------------------------- */

static enum MHD_Result send_copy(struct MHD_Connection *mc, unsigned status, const char *type,
				 const char *body, size_t len)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	ret = MHD_queue_response(mc, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* The first few failures are logged with libmemcached's reason; all are counted. */
static void mc_failed(struct bare *b, memcached_st *h, memcached_return_t rc)
{
	unsigned long n = atomic_fetch_add(&b->mc_failures, 1) + 1;
	const char *why = h ? memcached_last_error_message(h) : NULL;

	if (n <= 10)
		fprintf(stderr, "bare_server: memcached get %s: %s (%s)%s\n", b->o.mc_key,
			memcached_strerror(h, rc), why ? why : "-",
			n == 10 ? "; further failures only counted" : "");
}

static enum MHD_Result answer_memcached(struct bare *b, struct MHD_Connection *mc)
{
	memcached_return_t rc;
	memcached_st *h;
	size_t len = 0;
	uint32_t flags = 0;
	char *val;
	enum MHD_Result ret;

	/* As many handles as MHD threads, each thread holding one at a time: never waits. */
	h = memcached_pool_fetch(b->mc_pool, NULL, &rc);
	if (!h) {
		mc_failed(b, NULL, rc);
		return send_copy(mc, 503, "text/plain; charset=utf-8", "no memcached handle\n", 20);
	}
	val = memcached_get(h, b->o.mc_key, b->mc_key_len, &len, &flags, &rc);
	if (rc != MEMCACHED_SUCCESS || !val)
		mc_failed(b, h, rc);
	memcached_pool_release(b->mc_pool, h);
	if (rc == MEMCACHED_NOTFOUND)
		return send_copy(mc, 404, "text/plain; charset=utf-8", "not found\n", 10);
	if (rc != MEMCACHED_SUCCESS || !val) {
		free(val);
		return send_copy(mc, 503, "text/plain; charset=utf-8", "memcached failed\n", 17);
	}
	ret = send_copy(mc, 200, XML_TYPE, val, len);
	free(val);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_size, void **req_cls)
{
	struct bare *b = cls;

	(void)url;
	(void)version;
	(void)upload_data;
	if (!*req_cls) {
		/* First call: headers only. Like the gateway, answer on the next call. */
		*req_cls = &seen_marker;
		return MHD_YES;
	}
	if (*upload_size) {
		*upload_size = 0; /* a body is ignored */
		return MHD_YES;
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0)
		return send_copy(mc, 405, "text/plain; charset=utf-8", "GET only\n", 9);
	if (b->mc_pool)
		return answer_memcached(b, mc);
	if (b->persistent)
		return MHD_queue_response(mc, MHD_HTTP_OK, b->persistent);
	return send_copy(mc, MHD_HTTP_OK, XML_TYPE, b->body, b->body_len);
}

/* The gateway's unescape callback: paths are left as they came. */
static size_t keep_escapes(void *cls, struct MHD_Connection *mc, char *s)
{
	(void)cls;
	(void)mc;
	return strlen(s);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	const struct bare *b = cls;

	if (!b->o.verbose)
		return;
	fputs("bare_server: mhd: ", stderr);
	vfprintf(stderr, fmt, ap);
}

static void raise_nofile(unsigned want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
	(void)setrlimit(RLIMIT_NOFILE, &rl);
}

int main(int argc, char **argv)
{
	struct bare b;
	struct sockaddr_storage ss;
	struct sockaddr_in *a4 = (struct sockaddr_in *)(void *)&ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)(void *)&ss;
	struct MHD_Daemon *d;
	char *cert_pem = NULL, *key_pem = NULL;
	size_t cert_len, key_len;
	unsigned flags;
	bool v6 = false;
	sigset_t sigs;
	int sig = 0, rc = 1;

	memset(&b, 0, sizeof(b));
	if (!parse_args(argc, argv, &b.o)) {
		usage();
		return 2;
	}
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, b.o.address, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)b.o.port);
	} else if (inet_pton(AF_INET6, b.o.address, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)b.o.port);
		v6 = true;
	} else {
		fprintf(stderr, "bare_server: --address %s is not an IP address\n", b.o.address);
		return 2;
	}
	cert_pem = read_file(b.o.cert, &cert_len);
	key_pem = cert_pem ? read_file(b.o.key_file, &key_len) : NULL;
	if (!cert_pem || !key_pem)
		goto out;
	if (b.o.body_file) {
		b.body = read_file(b.o.body_file, &b.body_len);
		if (!b.body)
			goto out;
		if (b.o.reuse) {
			b.persistent = MHD_create_response_from_buffer(b.body_len, b.body,
								       MHD_RESPMEM_PERSISTENT);
			if (!b.persistent)
				goto out;
			MHD_add_response_header(b.persistent, MHD_HTTP_HEADER_CONTENT_TYPE,
						XML_TYPE);
			MHD_add_response_header(b.persistent, MHD_HTTP_HEADER_CACHE_CONTROL,
						"no-store");
		}
	} else if (!mc_setup(&b)) {
		goto out;
	}

	/* Signals are taken by sigwait below; MHD's threads inherit the blocked mask. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	raise_nofile(MAX_CONNECTIONS + 64);
	/* The gateway's flags and options (gateway/server/server.c server_start), less its
	 * connection tracking callbacks (the deadline reaper is gateway work). */
	flags = MHD_USE_TLS | MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG |
		(v6 ? MHD_USE_IPv6 : 0);
	d = MHD_start_daemon(
	    flags, (uint16_t)b.o.port, NULL, NULL, on_request, &b, MHD_OPTION_SOCK_ADDR,
	    (struct sockaddr *)&ss, MHD_OPTION_HTTPS_MEM_CERT, cert_pem, MHD_OPTION_HTTPS_MEM_KEY,
	    key_pem, MHD_OPTION_HTTPS_PRIORITIES, SERVER_TLS_PRIORITIES,
	    MHD_OPTION_THREAD_POOL_SIZE, b.o.threads, MHD_OPTION_CONNECTION_TIMEOUT, IDLE_TIMEOUT_S,
	    MHD_OPTION_CONNECTION_LIMIT, MAX_CONNECTIONS, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	    MAX_CONNECTIONS_PER_IP, MHD_OPTION_CONNECTION_MEMORY_LIMIT, HEADER_MEMORY,
	    MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, &b, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
	    MHD_OPTION_UNESCAPE_CALLBACK, keep_escapes, NULL, MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "bare_server: cannot listen on %s port %u\n", b.o.address,
			b.o.port);
		goto out;
	}
	fprintf(stderr, "bare_server: listening on %s port %u, %u threads, %s\n", b.o.address,
		b.o.port, b.o.threads,
		b.mc_pool ? "memcached get per request"
			  : (b.persistent ? "one persistent response" : "response per request"));
	while (sigwait(&sigs, &sig) != 0)
		;
	MHD_stop_daemon(d);
	if (b.mc_pool)
		fprintf(stderr, "bare_server: stopped (signal %d), %lu memcached gets failed\n",
			sig, atomic_load(&b.mc_failures));
	else
		fprintf(stderr, "bare_server: stopped (signal %d)\n", sig);
	rc = 0;
out:
	if (b.persistent)
		MHD_destroy_response(b.persistent);
	mc_teardown(&b);
	free(b.body);
	free(cert_pem);
	free(key_pem);
	return rc;
}
