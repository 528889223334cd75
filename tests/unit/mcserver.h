/*
 * mcserver: real memcached servers for the cache tests, started and stopped by pid (never by
 * name), and a fake one that accepts connections and never answers. Include after unit.h.
 * Functions are static inline so that a test using only some of them builds under -Werror.
 */
#ifndef MDM_TEST_MCSERVER_H
#define MDM_TEST_MCSERVER_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libmemcached/memcached.h>

#define MEMCACHED_BIN "/usr/bin/memcached"

struct mcserver {
	pid_t pid; /* 0: not running */
	int port;
	char addr[32]; /* "127.0.0.1:<port>", for cache_mc_config.servers */
};

/*
 * The pids this process started and has not reaped, so that a test that fails half-way (cmocka
 * jumps out of it) still leaves no memcached behind: see mcserver_stop_all.
 */
#define MC_PIDS_MAX 16
static pid_t mc_pids[MC_PIDS_MAX];

static inline void mc_track(pid_t pid, bool running)
{
	for (int i = 0; i < MC_PIDS_MAX; i++) {
		if (running && mc_pids[i] == 0) {
			mc_pids[i] = pid;
			return;
		}
		if (!running && mc_pids[i] == pid) {
			mc_pids[i] = 0;
			return;
		}
	}
}

static inline void mc_sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static inline int64_t mc_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A listening socket on 127.0.0.1 (port 0: any free one); its port in *port. -1 on error. */
static inline int mc_listen(int port, int *out_port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	socklen_t sl = sizeof(sa);
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 64) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
		close(fd);
		return -1;
	}
	*out_port = ntohs(sa.sin_port);
	return fd;
}

/* A port nobody listens on right now (bound, then released). */
static inline int mc_free_port(void)
{
	int port = 0, fd = mc_listen(0, &port);

	if (fd < 0)
		return -1;
	close(fd);
	return port;
}

/* Whether something accepts TCP connections on 127.0.0.1:port. */
static inline bool mc_accepts(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	if (fd < 0)
		return false;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

/* Stops s: SIGTERM, then SIGKILL if it lingers; reaped either way. */
static inline void mcserver_stop(struct mcserver *s)
{
	int st;

	if (s->pid <= 0)
		return;
	kill(s->pid, SIGTERM);
	for (int i = 0; i < 200; i++) {
		if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
			mc_track(s->pid, false);
			s->pid = 0;
			return;
		}
		mc_sleep_ms(10);
	}
	kill(s->pid, SIGKILL);
	waitpid(s->pid, &st, 0);
	mc_track(s->pid, false);
	s->pid = 0;
}

/* Kills s at once, as a crash would. */
static inline void mcserver_kill(struct mcserver *s)
{
	int st;

	if (s->pid <= 0)
		return;
	kill(s->pid, SIGKILL);
	waitpid(s->pid, &st, 0);
	mc_track(s->pid, false);
	s->pid = 0;
}

/* Starts memcached on port (0: a free one) and waits until it accepts connections. 0 or -1. */
static inline int mcserver_start(struct mcserver *s, int port)
{
	char portstr[16];
	int st;

	s->port = port ? port : mc_free_port();
	if (s->port <= 0)
		return -1;
	snprintf(portstr, sizeof(portstr), "%d", s->port);
	snprintf(s->addr, sizeof(s->addr), "127.0.0.1:%d", s->port);
	s->pid = fork();
	if (s->pid < 0)
		return -1;
	if (s->pid == 0) {
		int devnull = open("/dev/null", O_RDWR);

		if (devnull >= 0) {
			dup2(devnull, STDOUT_FILENO);
			dup2(devnull, STDERR_FILENO);
		}
		/* memcached refuses to run as root without -u. */
		if (geteuid() == 0)
			execl(MEMCACHED_BIN, "memcached", "-l", "127.0.0.1", "-p", portstr, "-U",
			      "0", "-m", "64", "-t", "2", "-u", "root", (char *)NULL);
		else
			execl(MEMCACHED_BIN, "memcached", "-l", "127.0.0.1", "-p", portstr, "-U",
			      "0", "-m", "64", "-t", "2", (char *)NULL);
		_exit(127);
	}
	mc_track(s->pid, true);
	for (int i = 0; i < 500; i++) {
		if (mc_accepts(s->port))
			return 0;
		if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
			mc_track(s->pid, false);
			s->pid = 0;
			return -1; /* it died: the port was taken, most likely */
		}
		mc_sleep_ms(10);
	}
	mcserver_stop(s);
	return -1;
}

/* Kills every server still running but keep (NULL: all) and reaps it. */
static inline void mcserver_stop_all(const struct mcserver *keep)
{
	for (int i = 0; i < MC_PIDS_MAX; i++) {
		struct mcserver s = {.pid = mc_pids[i]};

		if (s.pid > 0 && (!keep || s.pid != keep->pid))
			mcserver_kill(&s);
	}
}

/* --- a memcached that accepts connections, reads what it is sent and never answers ---------- */

#define HUNG_CONNS 64

struct hung {
	int lfd;
	int port;
	char addr[32];
	atomic_bool stop;
	atomic_ulong accepted;
	pthread_t thread;
};

static inline void *hung_run(void *p)
{
	struct hung *h = p;
	struct pollfd fds[HUNG_CONNS + 1];
	nfds_t n = 1;
	char buf[4096];

	fds[0] = (struct pollfd){.fd = h->lfd, .events = POLLIN};
	while (!h->stop) {
		if (poll(fds, n, 20) <= 0)
			continue;
		for (nfds_t i = n; i-- > 1;) {
			if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			if (read(fds[i].fd, buf, sizeof(buf)) > 0)
				continue;
			close(fds[i].fd); /* the client went away */
			fds[i] = fds[--n];
		}
		if (fds[0].revents & POLLIN) {
			int c = accept(h->lfd, NULL, NULL);

			if (c >= 0 && n < HUNG_CONNS + 1) {
				fds[n++] = (struct pollfd){.fd = c, .events = POLLIN};
				h->accepted++;
			} else if (c >= 0) {
				close(c);
			}
		}
	}
	for (nfds_t i = 1; i < n; i++)
		close(fds[i].fd);
	return NULL;
}

static inline int hung_start(struct hung *h)
{
	memset(h, 0, sizeof(*h));
	atomic_init(&h->stop, false);
	atomic_init(&h->accepted, 0);
	h->lfd = mc_listen(0, &h->port);
	if (h->lfd < 0)
		return -1;
	snprintf(h->addr, sizeof(h->addr), "127.0.0.1:%d", h->port);
	if (pthread_create(&h->thread, NULL, hung_run, h) != 0) {
		close(h->lfd);
		return -1;
	}
	return 0;
}

static inline void hung_stop(struct hung *h)
{
	h->stop = true;
	pthread_join(h->thread, NULL);
	close(h->lfd);
}

/* mcserver_flush: empties server s (each test starts from a blank memcached). */
static inline void mcserver_flush(const struct mcserver *s)
{
	memcached_st *r = memcached_create(NULL);

	if (!r)
		return;
	memcached_server_add(r, "127.0.0.1", (in_port_t)s->port);
	memcached_flush(r, 0);
	memcached_free(r);
}

#endif
