/*
 * burst: the request driver of `make bench-fanout`. Sends every URL of a file as an HTTPS GET,
 * each on a connection of its own, with at most N in flight at once, and prints what came back:
 *
 *   burst --cacert FILE --user U:P [--concurrency N] [--timeout-ms T] URLFILE
 *
 * URLFILE holds one URL per line (blank lines skipped, at most 100000). Every request is
 * HTTP/1.1 with Basic auth, TLS verified against --cacert, on a fresh easy handle whose connection
 * is never reused (CURLOPT_FORBID_REUSE) and never waits for another (no per-host limit).
 * --concurrency defaults to all of them at once; --timeout-ms (default 120000, 0: none) bounds
 * each request. The file-descriptor limit is raised to what the concurrency needs.
 *
 * Output (stdout, one item per line):
 *   requests N
 *   status CODE COUNT        one line per HTTP status seen; 0 is a transport failure
 *   error CURLCODE COUNT MESSAGE   one line per libcurl error behind the status-0 count
 *   total_ms X               first start to last completion
 *   p50_ms X, p99_ms X, max_ms X   per-request latency, start to completion (nearest rank)
 *   cpu_ms X                 the CPU time burst itself used (user + system): TLS set-up is not free
 *
 * Exit 0 when every request completed, whatever its status; 1 on usage, I/O or libcurl errors.
 */
#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>
#include <time.h>

#define URLS_MAX 100000u
#define STATUS_MAX 600 /* HTTP statuses counted: 0 (transport failure) and 100..599 */
#define FD_SPARE 64u   /* descriptors beyond one per connection: stdio, curl's own, the poll */

struct opts {
	const char *cacert;
	const char *user;
	const char *urlfile;
	unsigned long concurrency; /* 0: all at once */
	long timeout_ms;
};

struct burst {
	struct opts o;
	char **urls;
	size_t nurls;
	double *start_ms; /* per request: when it was handed to curl */
	double *lat_ms;	  /* per request: start to completion */
	CURL **easy;	  /* per request: its handle while in flight */
	unsigned long status[STATUS_MAX];
	unsigned long curl_errors[CURL_LAST];
	double first_start, last_done;
	CURLM *m;
	int ep;		 /* epoll set of the sockets libcurl watches */
	double deadline; /* when libcurl's timer expires; < 0: not set */
};

static void usage(void)
{
	fputs("usage: burst --cacert FILE --user U:P [--concurrency N] [--timeout-ms T] URLFILE\n",
	      stderr);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static bool parse_ulong(const char *s, unsigned long hi, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v > hi)
		return false;
	*out = v;
	return true;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	unsigned long v;

	memset(o, 0, sizeof(*o));
	o->timeout_ms = 120000;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (a[0] != '-' || strcmp(a, "-") == 0) {
			if (o->urlfile) {
				fprintf(stderr, "burst: more than one URL file\n");
				return -1;
			}
			o->urlfile = a;
			continue;
		}
		if (!val) {
			fprintf(stderr, "burst: %s: missing value or unknown option\n", a);
			return -1;
		}
		i++;
		if (strcmp(a, "--cacert") == 0) {
			o->cacert = val;
		} else if (strcmp(a, "--user") == 0) {
			o->user = val;
		} else if (strcmp(a, "--concurrency") == 0) {
			if (!parse_ulong(val, URLS_MAX, &v) || v == 0) {
				fprintf(stderr, "burst: bad --concurrency (1..%u)\n", URLS_MAX);
				return -1;
			}
			o->concurrency = v;
		} else if (strcmp(a, "--timeout-ms") == 0) {
			if (!parse_ulong(val, 86400000ul, &v)) {
				fprintf(stderr, "burst: bad --timeout-ms\n");
				return -1;
			}
			o->timeout_ms = (long)v;
		} else {
			fprintf(stderr, "burst: unknown option %s\n", a);
			return -1;
		}
	}
	if (!o->cacert || !o->user || !o->urlfile) {
		fprintf(stderr, "burst: --cacert, --user and a URL file are required\n");
		return -1;
	}
	if (!strchr(o->user, ':')) {
		fprintf(stderr, "burst: --user wants USER:PASSWORD\n");
		return -1;
	}
	return 0;
}

/* Reads the URL file into b->urls: one URL a line, trailing CR/LF and blank lines dropped. */
static int read_urls(struct burst *b)
{
	FILE *f = strcmp(b->o.urlfile, "-") == 0 ? stdin : fopen(b->o.urlfile, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int rc = -1;

	if (!f) {
		fprintf(stderr, "burst: %s: %s\n", b->o.urlfile, strerror(errno));
		return -1;
	}
	b->urls = calloc(URLS_MAX, sizeof(*b->urls));
	if (!b->urls)
		goto out;
	while ((len = getline(&line, &cap, f)) >= 0) {
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (len == 0)
			continue;
		if (b->nurls == URLS_MAX) {
			fprintf(stderr, "burst: %s: more than %u URLs\n", b->o.urlfile, URLS_MAX);
			goto out;
		}
		b->urls[b->nurls] = strdup(line);
		if (!b->urls[b->nurls])
			goto out;
		b->nurls++;
	}
	if (ferror(f)) {
		fprintf(stderr, "burst: %s: read error\n", b->o.urlfile);
		goto out;
	}
	if (b->nurls == 0) {
		fprintf(stderr, "burst: %s: no URLs\n", b->o.urlfile);
		goto out;
	}
	rc = 0;
out:
	free(line);
	if (f != stdin)
		fclose(f);
	return rc;
}

/* One descriptor per connection in flight, and a few more. */
static int raise_nofile(unsigned long concurrency)
{
	struct rlimit rl;
	rlim_t need = (rlim_t)concurrency + FD_SPARE;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		perror("burst: getrlimit");
		return -1;
	}
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
		return 0;
	rl.rlim_cur = need;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need)
		rl.rlim_max = need; /* only root may; otherwise the call below fails */
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
		fprintf(stderr, "burst: %lu connections need %lu file descriptors: %s\n",
			concurrency, (unsigned long)need, strerror(errno));
		return -1;
	}
	return 0;
}

static size_t discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	(void)ptr;
	(void)userdata;
	return size * nmemb;
}

static int start_one(struct burst *b, size_t i)
{
	CURL *e = curl_easy_init();

	if (!e) {
		fprintf(stderr, "burst: curl_easy_init failed\n");
		return -1;
	}
	curl_easy_setopt(e, CURLOPT_URL, b->urls[i]);
	curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)(b->urls + i));
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(e, CURLOPT_CAINFO, b->o.cacert);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
	curl_easy_setopt(e, CURLOPT_USERPWD, b->o.user);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, b->o.timeout_ms);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
	b->start_ms[i] = now_ms();
	if (curl_multi_add_handle(b->m, e) != CURLM_OK) {
		fprintf(stderr, "burst: curl_multi_add_handle failed\n");
		curl_easy_cleanup(e);
		return -1;
	}
	b->easy[i] = e;
	return 0;
}

static void finish_one(struct burst *b, CURL *e, CURLcode result)
{
	char *priv = NULL;
	long code = 0;
	size_t i;
	double t = now_ms();

	curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
	i = (size_t)((char **)(void *)priv - b->urls);
	b->lat_ms[i] = t - b->start_ms[i];
	b->last_done = t;
	if (result == CURLE_OK)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
	if (code < 100 || code >= STATUS_MAX)
		code = 0;
	if (code == 0)
		b->curl_errors[result == CURLE_OK ? CURLE_WEIRD_SERVER_REPLY : result]++;
	b->status[code]++;
	curl_multi_remove_handle(b->m, e);
	curl_easy_cleanup(e);
	b->easy[i] = NULL;
}

/* libcurl's socket callback: the sockets it wants watched, and for what, go into the epoll set. */
static int on_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct burst *b = userp;
	struct epoll_event ev;

	(void)e;
	if (what == CURL_POLL_REMOVE) {
		epoll_ctl(b->ep, EPOLL_CTL_DEL, s, NULL); /* the socket may be closed already */
		return 0;
	}
	memset(&ev, 0, sizeof(ev));
	ev.data.fd = s;
	ev.events =
	    ((what & CURL_POLL_IN) ? EPOLLIN : 0u) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0u);
	if (epoll_ctl(b->ep, socketp ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, s, &ev) != 0) {
		perror("burst: epoll_ctl");
		return -1;
	}
	if (!socketp)
		curl_multi_assign(b->m, s, b); /* any non-NULL marker: "in the set" */
	return 0;
}

/* libcurl's timer callback: when it next wants curl_multi_socket_action(CURL_SOCKET_TIMEOUT). */
static int on_timer(CURLM *m, long timeout_ms, void *userp)
{
	struct burst *b = userp;

	(void)m;
	b->deadline = timeout_ms < 0 ? -1.0 : now_ms() + (double)timeout_ms;
	return 0;
}

/* Counts every transfer that has completed; each is stamped when its last event is handled. */
static void reap(struct burst *b, size_t *inflight, size_t *done)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(b->m, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		finish_one(b, msg->easy_handle, msg->data.result);
		(*inflight)--;
		(*done)++;
	}
}

static int act(struct burst *b, curl_socket_t s, int flags)
{
	int running;
	CURLMcode mc = curl_multi_socket_action(b->m, s, flags, &running);

	if (mc != CURLM_OK) {
		fprintf(stderr, "burst: curl_multi_socket_action: %s\n", curl_multi_strerror(mc));
		return -1;
	}
	return 0;
}

/*
 * curl_multi_socket_action over epoll rather than curl_multi_perform: each event is handed to
 * the one transfer it concerns, so a completion is stamped when it happens, not at the end of a
 * pass over every transfer (which, with a thousand TLS connections, takes a while).
 */
static int run(struct burst *b)
{
	struct epoll_event evs[256];
	size_t next = 0, inflight = 0, done = 0;
	size_t limit = b->o.concurrency ? b->o.concurrency : b->nurls;

	curl_multi_setopt(b->m, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
	curl_multi_setopt(b->m, CURLMOPT_MAX_TOTAL_CONNECTIONS, 0L);
	curl_multi_setopt(b->m, CURLMOPT_PIPELINING, (long)CURLPIPE_NOTHING);
	curl_multi_setopt(b->m, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(b->m, CURLMOPT_SOCKETDATA, b);
	curl_multi_setopt(b->m, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(b->m, CURLMOPT_TIMERDATA, b);
	b->deadline = -1.0;
	b->first_start = now_ms();
	while (done < b->nurls) {
		double wait;
		int n;

		while (inflight < limit && next < b->nurls) {
			if (start_one(b, next) != 0)
				return -1;
			next++;
			inflight++;
		}
		wait = b->deadline < 0 ? 1000.0 : b->deadline - now_ms();
		n = epoll_wait(b->ep, evs, (int)(sizeof(evs) / sizeof(evs[0])),
			       wait <= 0 ? 0 : (int)wait + 1);
		if (n < 0 && errno != EINTR) {
			perror("burst: epoll_wait");
			return -1;
		}
		for (int i = 0; i < n; i++) {
			int flags =
			    ((evs[i].events & EPOLLIN) ? CURL_CSELECT_IN : 0) |
			    ((evs[i].events & EPOLLOUT) ? CURL_CSELECT_OUT : 0) |
			    ((evs[i].events & (EPOLLERR | EPOLLHUP)) ? CURL_CSELECT_ERR : 0);

			if (act(b, evs[i].data.fd, flags) != 0)
				return -1;
			reap(b, &inflight, &done);
		}
		if (b->deadline >= 0 && now_ms() >= b->deadline) {
			if (act(b, CURL_SOCKET_TIMEOUT, 0) != 0)
				return -1;
			reap(b, &inflight, &done);
		}
	}
	return 0;
}

static int cmp_double(const void *pa, const void *pb)
{
	double a = *(const double *)pa, b = *(const double *)pb;

	return (a > b) - (a < b);
}

/* Nearest rank: the smallest value with at least p of the values at or below it. */
static double percentile(const double *sorted, size_t n, double p)
{
	size_t rank = (size_t)ceil(p * (double)n);

	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return sorted[rank - 1];
}

static double tv_ms(const struct timeval *tv)
{
	return (double)tv->tv_sec * 1000.0 + (double)tv->tv_usec / 1000.0;
}

static void report(struct burst *b)
{
	struct rusage ru;

	printf("requests %zu\n", b->nurls);
	for (int s = 0; s < STATUS_MAX; s++)
		if (b->status[s])
			printf("status %d %lu\n", s, b->status[s]);
	for (int c = 0; c < CURL_LAST; c++)
		if (b->curl_errors[c])
			printf("error %d %lu %s\n", c, b->curl_errors[c],
			       curl_easy_strerror((CURLcode)c));
	qsort(b->lat_ms, b->nurls, sizeof(*b->lat_ms), cmp_double);
	printf("total_ms %.1f\n", b->last_done - b->first_start);
	printf("p50_ms %.1f\n", percentile(b->lat_ms, b->nurls, 0.50));
	printf("p99_ms %.1f\n", percentile(b->lat_ms, b->nurls, 0.99));
	printf("max_ms %.1f\n", b->lat_ms[b->nurls - 1]);
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		printf("cpu_ms %.1f\n", tv_ms(&ru.ru_utime) + tv_ms(&ru.ru_stime));
}

int main(int argc, char **argv)
{
	struct burst b;
	int rc = 1;
	bool curl_up = false;

	memset(&b, 0, sizeof(b));
	b.ep = -1;
	if (parse_args(argc, argv, &b.o) != 0) {
		usage();
		return 1;
	}
	if (read_urls(&b) != 0)
		goto out;
	if (raise_nofile(b.o.concurrency && b.o.concurrency < b.nurls ? b.o.concurrency
								      : b.nurls) != 0)
		goto out;
	b.start_ms = calloc(b.nurls, sizeof(*b.start_ms));
	b.lat_ms = calloc(b.nurls, sizeof(*b.lat_ms));
	b.easy = calloc(b.nurls, sizeof(*b.easy));
	if (!b.start_ms || !b.lat_ms || !b.easy) {
		fprintf(stderr, "burst: out of memory\n");
		goto out;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "burst: curl_global_init failed\n");
		goto out;
	}
	curl_up = true;
	b.m = curl_multi_init();
	b.ep = epoll_create1(EPOLL_CLOEXEC);
	if (!b.m || b.ep < 0) {
		fprintf(stderr, "burst: cannot create the multi handle or the epoll set\n");
		goto out;
	}
	if (run(&b) != 0)
		goto out;
	report(&b);
	if (fflush(stdout) != 0) {
		perror("burst: stdout");
		goto out;
	}
	rc = 0;
out:
	for (size_t i = 0; b.easy && i < b.nurls; i++) {
		if (b.easy[i]) { /* still in flight after an error */
			curl_multi_remove_handle(b.m, b.easy[i]);
			curl_easy_cleanup(b.easy[i]);
		}
	}
	if (b.m)
		curl_multi_cleanup(b.m);
	if (b.ep >= 0)
		close(b.ep);
	if (curl_up)
		curl_global_cleanup();
	for (size_t i = 0; i < b.nurls; i++)
		free(b.urls[i]);
	free(b.urls);
	free(b.start_ms);
	free(b.lat_ms);
	free(b.easy);
	return rc;
}
