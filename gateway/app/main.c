/*
 * mdmgw: the MDM compliance gateway's command line: start-up and signals. Serving is
 * gateway_start (gateway.h: every subsystem wired, one call each), the operator's tools are
 * tools.h, the admin API client cli.h.
 *
 *   mdmgw [run] -c FILE          serve
 *   mdmgw check-config -c FILE   validate FILE and what it points at; exit 0 or 1 (also -t)
 *   mdmgw passwd [--cost LN]     read a password, print its scrypt line for accounts[]
 *   mdmgw test-connection -c FILE NAME            test one adapter's connection; exit 0 or 1
 *   mdmgw query -c FILE [--kind KIND] IDENTIFIER  ask every adapter, bypassing the cache
 *   mdmgw version
 *   mdmgw action|actions|resolve|block|unblock ...   admin API client (gateway/app/cli.h)
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "../../core/log.h"
#include "../server/auth.h"
#include "cli.h"
#include "gateway.h"
#include "tools.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: mdmgw [run] -c FILE\n"
		   "       mdmgw check-config -c FILE   (or mdmgw -t -c FILE)\n"
		   "       mdmgw passwd [--cost LN]\n"
		   "       mdmgw test-connection -c FILE ADAPTER-NAME\n"
		   "       mdmgw query -c FILE [--kind "
		   "mac|guid|udid|imei|meid|username|hostname|serial] IDENTIFIER\n"
		   "       mdmgw version\n");
	fprintf(f, "       mdmgw action|actions|resolve|block|unblock ... (see --help)\n");
}

static int wait_for_signal(void)
{
	sigset_t set;
	int sig = 0;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			return SIGTERM;
		if (sig == SIGHUP) {
			log_info("SIGHUP: reloading is not supported; restart to apply changes");
			continue;
		}
		return sig;
	}
}

/*
 * fix_malloc_thresholds: every cycle allocates and frees the same big transient buffers (a
 * vendor's whole listing, 1000-device pages, 4 MB poll answers). glibc's default raises its
 * mmap threshold each time such a buffer is freed, after which they come from the heap arenas
 * and the long-lived snapshot is scattered between their holes: measured with 100k devices,
 * 1.1-1.8 KiB RSS a device instead of ~0.9 (bench-reconcile). A fixed threshold keeps them in
 * mmap, given back on free; the reconciler trims the rest after each cycle.
 */
static void fix_malloc_thresholds(void)
{
#ifdef __GLIBC__
	if (!getenv("MALLOC_MMAP_THRESHOLD_")) /* an operator's own tuning wins */
		(void)mallopt(M_MMAP_THRESHOLD, 1 << 20);
#endif
}

static int cmd_run(const char *path)
{
	static struct gateway g;
	sigset_t set;
	int sig;

	fix_malloc_thresholds();
	/* Every thread started from here on inherits the mask; only sigwait sees them. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (gateway_load(&g, path) != 0 || gateway_start(&g) != 0) {
		gateway_free(&g);
		return 1;
	}
	sig = wait_for_signal();
	log_info("signal %d: draining (up to %lld ms)", sig,
		 (long long)g.cfg.listen.shutdown_grace_ms);
	gateway_stop(&g);
	log_info("stopped");
	return 0;
}

static const char *config_arg(int argc, char **argv, int from)
{
	for (int i = from; i < argc - 1; i++)
		if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0)
			return argv[i + 1];
	return NULL;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "run";
	const char *conf;

	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
		printf("mdmgw %s\n", MDMGW_VERSION);
		return 0;
	}
	if (strcmp(cmd, "passwd") == 0) {
		unsigned ln = AUTH_MIN_LN;

		if (argc > 3 && strcmp(argv[2], "--cost") == 0)
			ln = (unsigned)strtoul(argv[3], NULL, 10);
		return auth_passwd_cli(stdin, stdout, stderr, ln);
	}
	if (tool_is_command(cmd)) {
		int rc = tool_main(argc, argv);

		if (rc == TOOL_USAGE)
			usage(stderr);
		return rc == TOOL_USAGE ? 2 : rc;
	}
	if (cli_is_command(cmd)) /* the admin API client: no gateway config involved */
		return cli_main(argc, argv);
	if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
		usage(stdout);
		return 0;
	}
	conf = config_arg(argc, argv, 1);
	if (!conf) {
		usage(stderr);
		return 2;
	}
	if (strcmp(cmd, "check-config") == 0 || strcmp(cmd, "-t") == 0)
		return tool_check_config(conf);
	if (strcmp(cmd, "run") == 0 || strcmp(cmd, "-c") == 0 || strcmp(cmd, "--config") == 0)
		return cmd_run(conf);
	usage(stderr);
	return 2;
}
