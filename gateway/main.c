/*
 * mdmgw: the MDM compliance gateway. Wires config, adapters, cache, lookup, snapshot, auth and
 * the HTTPS server together, then waits for a signal.
 *
 *   mdmgw [run] -c FILE          serve
 *   mdmgw check-config -c FILE   validate FILE and what it points at; exit 0 or 1 (also -t)
 *   mdmgw passwd [--cost LN]     read a password, print its scrypt line for accounts[]
 *   mdmgw version
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../adapters/http.h"
#include "../adapters/inventory.h"
#include "../adapters/sccm.h"
#include "../cache/cache.h"
#include "../cache/entry.h"
#include "../core/clock.h"
#include "../core/log.h"
#include "auth.h"
#include "config.h"
#include "ise_api.h"
#include "lookup.h"
#include "server.h"
#include "snapshot.h"

#define SNAPSHOT_BUILD_MS 60000

struct gateway {
	struct config cfg;
	struct http_engine
	    *http; /* only when an adapter needs the network; outlives the adapters */
	struct adapter *ads[CONFIG_MAX_ADAPTERS];
	size_t nads;
	struct cache *cache;
	struct cache *answers;
	struct lookup *lookup;
	struct snapshot *snap;
	struct auth *auth;
	struct ise_ctx ise;
	struct server *server;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: mdmgw [run] -c FILE\n"
		   "       mdmgw check-config -c FILE   (or mdmgw -t -c FILE)\n"
		   "       mdmgw passwd [--cost LN]\n"
		   "       mdmgw version\n");
}

/* Hash lines are checked here, where the auth module is known, not in the config loader. */
static int check_accounts(const struct config *cfg)
{
	char why[256];
	struct scrypt_params p;

	for (size_t i = 0; i < cfg->naccounts; i++) {
		if (scrypt_line_parse(cfg->accounts[i].password_hash, &p, why, sizeof(why)) ==
		    MDM_OK)
			continue;
		fprintf(stderr, "%s: accounts[%zu].password_hash: %s\n", cfg->path, i, why);
		return -1;
	}
	return 0;
}

static bool needs_network(const struct config_adapter *ca)
{
	return ca->type == ADAPTER_SCCM;
}

static enum http_auth http_auth_of(enum config_http_auth a)
{
	switch (a) {
	case CONFIG_AUTH_NTLM:
		return HTTP_AUTH_NTLM;
	case CONFIG_AUTH_BASIC:
		return HTTP_AUTH_BASIC;
	default:
		return HTTP_AUTH_NEGOTIATE;
	}
}

static struct adapter *make_sccm(struct http_engine *e, const struct config_adapter *ca, char *why,
				 size_t whysz)
{
	const struct config_sccm *s = &ca->sccm;
	const char *only[CONFIG_MAX_ONLY_CI];
	struct sccm_config sc = {
	    .name = ca->name,
	    .base_url = s->url,
	    .http =
		{
		    .name = ca->name,
		    .ca_file = s->ca_file,
		    .pinned_key = s->pinned_key[0] ? s->pinned_key : NULL,
		    .auth = http_auth_of(s->auth),
		    .user = s->user[0] ? s->user : NULL,
		    .password = s->password_set ? s->password : NULL,
		    .max_connections = s->max_connections,
		    .rate_per_sec = s->rate_per_sec,
		    .max_body = s->max_body,
		    .connect_timeout_ms = s->connect_timeout_ms,
		    .breaker_failures = s->breaker_failures,
		    .breaker_open_ms = s->breaker_open_ms,
		},
	    .only_ci = only,
	    .nonly_ci = s->nonly_ci,
	    .no_rows_compliant = s->no_baseline_compliant,
	    .page_rows = s->page_rows,
	    .list_timeout_ms = s->list_timeout_ms,
	};

	for (size_t i = 0; i < s->nonly_ci; i++)
		only[i] = s->only_ci[i];
	return sccm_create(e, &sc, why, whysz);
}

static struct adapter *make_adapter(struct gateway *g, const struct config_adapter *ca, char *why,
				    size_t whysz)
{
	switch (ca->type) {
	case ADAPTER_INVENTORY:
		return inventory_create(ca->name, ca->file, why, whysz);
	case ADAPTER_SCCM:
		return make_sccm(g->http, ca, why, whysz);
	}
	err_why(why, whysz, "unknown adapter type");
	return NULL;
}

/*
 * make_engine: the one HTTP engine every network adapter shares, when one of those selected
 * (all, or only adapter `only`) needs it. Its connection cache holds every adapter's share.
 */
static int make_engine(struct gateway *g, const struct config_adapter *only)
{
	struct http_engine_config ec = {.debug = strcmp(g->cfg.log_level, "debug") == 0};
	long conns = 0;

	for (size_t i = 0; i < g->cfg.nadapters; i++) {
		const struct config_adapter *ca = &g->cfg.adapters[i];

		if ((!only || ca == only) && needs_network(ca))
			conns += ca->sccm.max_connections;
	}
	if (conns == 0)
		return 0;
	ec.max_total_connections = conns > 64 ? conns : 64;
	g->http = http_engine_create(&ec);
	if (!g->http) {
		fprintf(stderr, "%s: cannot start the HTTP engine (memory, libcurl or thread)\n",
			g->cfg.path);
		return -1;
	}
	return 0;
}

/* make_adapters: every configured adapter, or only `only` (test-connection). */
static int make_adapters(struct gateway *g, const struct config_adapter *only)
{
	char why[512];

	if (make_engine(g, only) != 0)
		return -1;
	for (size_t i = 0; i < g->cfg.nadapters; i++) {
		const struct config_adapter *ca = &g->cfg.adapters[i];
		struct adapter *a;

		if (only && ca != only)
			continue;
		a = make_adapter(g, ca, why, sizeof(why));
		if (!a) {
			fprintf(stderr, "%s: adapters[%zu] (%s): %s\n", g->cfg.path, i, ca->name,
				why);
			return -1;
		}
		g->ads[g->nads++] = a;
	}
	return 0;
}

static void free_gateway(struct gateway *g)
{
	lookup_destroy(g->lookup);
	cache_destroy(g->answers);
	snapshot_free(g->snap);
	auth_destroy(g->auth);
	cache_destroy(g->cache);
	for (size_t i = 0; i < g->nads; i++)
		adapter_destroy(g->ads[i]);
	g->nads = 0;
	/* after the adapters: destroying the engine frees any client still open */
	http_engine_destroy(g->http);
	g->http = NULL;
}

/* load_config: the configuration and its log level (all the command-line tools need). */
static int load_config(struct gateway *g, const char *path)
{
	char why[1024];
	enum log_level lvl;

	if (config_load(path, &g->cfg, why, sizeof(why)) != MDM_OK) {
		fprintf(stderr, "%s\n", why);
		return -1;
	}
	if (log_parse_level(g->cfg.log_level, &lvl) == MDM_OK)
		log_set_level(lvl);
	return 0;
}

/* load: what serving needs: the configuration, account hashes, TLS files and every adapter. */
static int load(struct gateway *g, const char *path)
{
	if (load_config(g, path) != 0 || check_accounts(&g->cfg) != 0)
		return -1;
	if (access(g->cfg.listen.cert_file, R_OK) != 0 ||
	    access(g->cfg.listen.key_file, R_OK) != 0) {
		fprintf(stderr, "%s: listen.cert_file / listen.key_file: cannot read %s or %s\n",
			path, g->cfg.listen.cert_file, g->cfg.listen.key_file);
		return -1;
	}
	return make_adapters(g, NULL);
}

/*
 * The cache: in-process alone without memcached; with memcached, an in-process tier holding
 * entries at most l1_ttl (none when l1_ttl is 0) in front of memcached.
 */
static struct cache *make_cache(const struct config_cache *cc)
{
	struct cache_mem_config mc = {
	    .max_entries = cc->max_entries,
	    .shards = cc->shards,
	    .max_value = ENTRY_MAX_LEN,
	    .max_hold_ms = cc->nservers ? cc->l1_ttl_ms : 0,
	    .now = NULL,
	};
	const char *servers[CONFIG_MAX_SERVERS];
	struct cache_mc_config mcc = {
	    .servers = servers,
	    .nservers = cc->nservers,
	    .hmac_key = (const unsigned char *)cc->hmac_key,
	    .hmac_key_len = strlen(cc->hmac_key),
	    .pool_size = cc->pool_size,
	    .connect_timeout_ms = cc->connect_timeout_ms,
	    .io_timeout_ms = cc->io_timeout_ms,
	    .failure_limit = cc->failure_limit,
	    .retry_timeout_ms = cc->retry_timeout_ms,
	    .breaker_open_ms = cc->breaker_open_ms,
	    .max_value = ENTRY_MAX_LEN + 512,
	    .now = NULL,
	};
	struct cache *l1 = NULL, *l2;
	char why[256];

	if (!cc->nservers)
		return cache_mem_create(&mc);
	for (size_t i = 0; i < cc->nservers; i++)
		servers[i] = cc->servers[i];
	if (cc->l1_ttl_ms > 0 && !(l1 = cache_mem_create(&mc)))
		return NULL;
	l2 = cache_mc_create(&mcc, why, sizeof(why));
	if (!l2) {
		log_err("cache: memcached: %s", why);
		cache_destroy(l1);
		return NULL;
	}
	log_info("cache: memcached on %zu server(s), in-process tier %s", cc->nservers,
		 l1 ? "in front" : "off");
	return cache_tiered_create(l1, l2);
}

/* Rendered answers belong to the in-process tier: none when that tier is switched off. */
static struct cache *make_answer_cache(const struct config_cache *cc)
{
	struct cache_mem_config mc = {
	    .max_entries = cc->max_entries < 20000 ? cc->max_entries : 20000,
	    .shards = cc->shards,
	    .max_value = 64 * 1024,
	    .max_hold_ms = cc->nservers ? cc->l1_ttl_ms : 0,
	    .now = NULL,
	};

	if (cc->nservers && cc->l1_ttl_ms == 0)
		return NULL;
	return cache_mem_create(&mc);
}

static int build_services(struct gateway *g)
{
	struct lookup_config lc = {
	    .ads = g->ads,
	    .nads = g->nads,
	    .policy = {g->cfg.api.compliant_requires_all, g->cfg.api.partial_is_unavailable},
	    .ns = g->cfg.cache.ns,
	    .timeout_ms = g->cfg.api.lookup_timeout_ms,
	    .lock_wait_ms = g->cfg.cache.lock_wait_ms,
	    .fresh_ttl_ms = g->cfg.cache.fresh_ttl_ms,
	    .stale_ttl_ms = g->cfg.cache.stale_ttl_ms,
	    .negative_ttl_ms = g->cfg.cache.negative_ttl_ms,
	    .max_batch = g->cfg.api.query_max_size,
	};

	g->cache = make_cache(&g->cfg.cache);
	lc.cache = g->cache;
	g->answers = make_answer_cache(&g->cfg.cache);
	g->lookup = g->cache ? lookup_create(&lc) : NULL;
	g->auth = auth_create(&g->cfg.auth, g->cfg.accounts, g->cfg.naccounts);
	if (!g->cache || !g->lookup || !g->auth) {
		log_err("cannot set up the cache, lookup or auth");
		return -1;
	}
	if (snapshot_build(g->ads, g->nads, &lc.policy, clock_mono_ms() + SNAPSHOT_BUILD_MS,
			   &g->snap) != MDM_OK) {
		log_err("cannot build the device snapshot: out of memory");
		return -1;
	}
	if (!g->snap->complete)
		log_warn("device snapshot incomplete: %s; bulk queries answer 503", g->snap->why);
	log_info("device snapshot: %zu devices, %zu non-compliant", g->snap->ndevs,
		 g->snap->nlist[SNAP_NONCOMPLIANT]);
	g->ise.cfg = &g->cfg;
	g->ise.lookup = g->lookup;
	g->ise.cache = g->cache;
	g->ise.answers = g->answers;
	g->ise.ads = g->ads;
	g->ise.nads = g->nads;
	g->ise.snap = g->snap;
	return 0;
}

static int cmd_check(const char *path)
{
	static struct gateway g;
	int rc = load(&g, path);

	free_gateway(&g);
	if (rc == 0)
		printf("%s: configuration ok\n", path);
	return rc == 0 ? 0 : 1;
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

static int cmd_run(const char *path)
{
	static struct gateway g;
	sigset_t set;
	char why[512];
	struct server_deps deps;
	int sig;

	/* Every thread started from here on inherits the mask; only sigwait sees them. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (load(&g, path) != 0 || build_services(&g) != 0) {
		free_gateway(&g);
		return 1;
	}
	deps.cfg = &g.cfg;
	deps.auth = g.auth;
	deps.ise = &g.ise;
	if (server_start(&deps, &g.server, why, sizeof(why)) != MDM_OK) {
		log_err("server: %s", why);
		free_gateway(&g);
		return 1;
	}
	log_info("mdmgw %s listening on https://%s:%u/%s%sciscoise/mdminfo/ (%zu adapters)",
		 MDMGW_VERSION, g.cfg.listen.address, g.cfg.listen.port, g.cfg.listen.instance,
		 g.cfg.listen.instance[0] ? "/" : "", g.nads);
	sig = wait_for_signal();
	log_info("signal %d: draining (up to %lld ms)", sig,
		 (long long)g.cfg.listen.shutdown_grace_ms);
	server_stop(g.server, g.cfg.listen.shutdown_grace_ms);
	free_gateway(&g);
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
		return cmd_check(conf);
	if (strcmp(cmd, "run") == 0 || strcmp(cmd, "-c") == 0 || strcmp(cmd, "--config") == 0)
		return cmd_run(conf);
	usage(stderr);
	return 2;
}
