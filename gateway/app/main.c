/*
 * mdmgw: the MDM compliance gateway. Wires config, adapters, cache, lookup, snapshot, auth and
 * the HTTPS server together, then waits for a signal.
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
#include <ctype.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "../../adapters/http.h"
#include "../../adapters/registry.h"
#include "../../cache/cache.h"
#include "../../cache/entry.h"
#include "../../core/clock.h"
#include "../../core/log.h"
#include "../actions/actions.h"
#include "../admin/action_api.h"
#include "../admin/admin.h"
#include "../admin/coa_api.h"
#include "../admin/recon_api.h"
#include "../admin/session_api.h"
#include "../admin/trans_api.h"
#include "../actions/journal.h"
#include "../coa/acct.h"
#include "../coa/coa.h"
#include "../coa/sessions.h"
#include "../ise/ise_api.h"
#include "../recon/lease.h"
#include "../recon/pipeline.h"
#include "../recon/recon.h"
#include "../recon/trans.h"
#include "../server/auth.h"
#include "../server/hops.h"
#include "../server/server.h"
#include "../verdict/block.h"
#include "../verdict/lookup.h"
#include "cli.h"
#include "config.h"

#define SNAPSHOT_RETAIN_MS (10 * 60 * 1000) /* a paging walk sees one generation */
#define FIRST_CYCLE_WAIT_MS 10000 /* start-up waits this long for generation 1, then serves */

struct gateway {
	struct config cfg;
	struct http_engine
	    *http; /* only when an adapter needs the network; outlives the adapters */
	struct adapter *ads[CONFIG_MAX_ADAPTERS];
	size_t nads;
	struct cache *cache;
	struct cache *answers;
	struct lookup *lookup;
	struct snapstore *snaps; /* generations of the device snapshot (bulk answers); pipe's */
	struct recon *recon;	 /* fills snaps every polling interval; pipe's */
	struct auth *auth;
	struct ise_api ise;
	struct admin_api admin;
	struct action_api action_api;
	struct server_stats server_stats;
	struct handler_group routes[8]; /* the handler table, by module */
	size_t nroutes;
	struct server *server;
	struct hops *hops; /* made before the adapters: mcms adapters ask it for hop headers */
	struct journal *journal; /* actions: in state_dir */
	struct block *blocks;
	struct actions *actions;
	struct trans *trans; /* last known device states and the change guard, in state_dir */
	/* sessions: always (the admin API feeds it even without accounting); acct: when
	 * accounting.listen is set */
	struct sessions *sessions;
	struct acct *acct;
	struct http_engine *coa_http; /* CoA sinks' own engine: CoA never waits behind listings */
	struct coa *coa;	      /* the CoA dispatcher (NULL: no sink configured) */
	struct lease *lease;	      /* ha: with cache.servers only; NULL: alone, always leader */
	struct pipeline *pipe; /* owns snaps and recon, and with a lease follows the leader */
};

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

		if (!only || ca == only)
			conns += ca->type->connections(ca->conf);
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
	struct adapter_env env = {.hops = hops_provide};
	char why[512];

	g->hops = hops_create(g->cfg.api.gateway_id, g->cfg.api.max_hops);
	if (!g->hops) {
		fprintf(stderr, "%s: api.gateway_id: cannot set up hop checks\n", g->cfg.path);
		return -1;
	}
	if (make_engine(g, only) != 0)
		return -1;
	env.http = g->http;
	env.hops_arg = g->hops;
	for (size_t i = 0; i < g->cfg.nadapters; i++) {
		const struct config_adapter *ca = &g->cfg.adapters[i];
		struct adapter *a;

		if (only && ca != only)
			continue;
		a = ca->type->create(ca->name, ca->conf, &env, why, sizeof(why));
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
	pipeline_stop(g->pipe); /* first: it feeds trans, writes through, publishes into snaps */
	g->pipe = NULL;
	g->recon = NULL;
	g->snaps = NULL;
	trans_destroy(g->trans); /* before the dispatcher it emits to */
	g->trans = NULL;
	coa_destroy(g->coa); /* drains, then its sinks close; before the sessions it asks */
	g->coa = NULL;
	http_engine_destroy(g->coa_http);
	g->coa_http = NULL;
	acct_stop(g->acct); /* before the table it feeds */
	sessions_destroy(g->sessions);
	g->acct = NULL;
	g->sessions = NULL;
	lease_destroy(g->lease); /* gives the lease up; before the cache it uses */
	g->lease = NULL;
	actions_destroy(g->actions); /* before what its actions use */
	g->actions = NULL;
	journal_close(g->journal);
	block_close(g->blocks);
	g->journal = NULL;
	g->blocks = NULL;
	lookup_destroy(g->lookup);
	cache_destroy(g->answers);
	auth_destroy(g->auth);
	cache_destroy(g->cache);
	for (size_t i = 0; i < g->nads; i++)
		adapter_destroy(g->ads[i]);
	g->nads = 0;
	/* after the adapters: destroying the engine frees any client still open */
	http_engine_destroy(g->http);
	g->http = NULL;
	hops_destroy(g->hops);
	g->hops = NULL;
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

/* policy_of: the merge policy the configuration asks for (lookups, snapshot, query). */
static struct merge_policy policy_of(const struct config *c)
{
	struct merge_policy p = {c->api.compliant_requires_all, c->api.partial_is_unavailable};

	return p;
}

/* The action journal, the block list and the pipeline; either file unusable: no start. */
static int build_actions(struct gateway *g)
{
	const struct config_journal *cj = &g->cfg.actions.journal;
	struct journal_cfg jc = {(int64_t)cj->max_bytes, cj->keep, cj->key_window_ms};
	struct journal_stats st;
	struct actions_deps d = {&g->cfg.actions, NULL, g->ads, g->nads, g->lookup};
	char why[1024];

	if (journal_open(g->cfg.state_dir, &jc, &g->journal, why, sizeof(why)) != MDM_OK) {
		log_err("%s: state_dir: the action journal cannot be opened: %s", g->cfg.path, why);
		return -1;
	}
	if (block_open(g->cfg.state_dir, &g->blocks, why, sizeof(why)) != MDM_OK) {
		log_err("%s: state_dir: the block list cannot be loaded: %s", g->cfg.path, why);
		return -1;
	}
	journal_get_stats(g->journal, &st);
	log_info("actions: journal in %s: %lu actions, %lu unknown (never resent: resolve them), "
		 "%lu bad lines, %s; %zu devices blocked",
		 g->cfg.state_dir, st.records, st.unknown, st.bad_lines,
		 st.torn ? "a torn last line" : "no torn line", block_count(g->blocks));
	d.journal = g->journal;
	g->actions = actions_create(&d);
	if (!g->actions) {
		log_err("cannot start the action pipeline");
		return -1;
	}
	return 0;
}

/* --- trans: transitions and the change guard; they leave through the CoA side's sink --- */

/* Never refuses the start for the files' content (trans_load keeps what parses). */
static int build_trans(struct gateway *g)
{
	const struct config_reconciler *rc = &g->cfg.reconciler;
	struct trans_config tc = {rc->coa_on_compliant, rc->unregistered_disconnect,
				  rc->guard_share, rc->guard_min};
	struct transition_sink sink = coa_transition_sink(g->coa);
	size_t dropped = 0;

	g->trans = trans_create(&tc, g->cfg.state_dir, &sink);
	if (!g->trans || trans_load(g->trans, &dropped) != MDM_OK) {
		log_err("%s: state_dir: the device states cannot be loaded", g->cfg.path);
		return -1;
	}
	return 0;
}

/*
 * build_recon: the reconciler and what its generations do next (recon/pipeline.h). Its first
 * cycle runs at once on its own thread: bulk queries answer 503 until it publishes generation
 * 1, and no server thread waits for a vendor listing.
 */
static int build_recon(struct gateway *g, const struct merge_policy *policy)
{
	struct pipeline_config pc = {
	    .cfg = &g->cfg.reconciler,
	    .cfg_path = g->cfg.path,
	    .ads = g->ads,
	    .nads = g->nads,
	    .lookup = g->cfg.reconciler.write_through ? g->lookup : NULL,
	    .policy = *policy,
	    .retain_ms = SNAPSHOT_RETAIN_MS,
	    .trans = g->trans,
	    .lease = g->lease,
	    .cache = g->cache,
	    .ns = g->cfg.cache.ns,
	    .max_snapshot = g->cfg.ha.max_snapshot,
	    .follow_interval_ms = g->cfg.ha.follow_interval_ms,
	    .first_wait_ms = FIRST_CYCLE_WAIT_MS,
	};
	char why[256];

	g->pipe = pipeline_start(&pc, why, sizeof(why));
	if (!g->pipe) {
		log_err("%s", why);
		return -1;
	}
	g->snaps = pipeline_store(g->pipe);
	g->recon = pipeline_recon(g->pipe);
	return 0;
}

/* The session table, and the accounting listener feeding it when configured. */
static int build_sessions(struct gateway *g)
{
	const struct config_accounting *ca = &g->cfg.accounting;
	char why[512];

	g->sessions = sessions_create(ca->max_sessions, ca->session_ttl_ms);
	if (!g->sessions) {
		log_err("cannot create the session table");
		return -1;
	}
	if (!ca->listen[0])
		return 0;
	if (acct_start(ca, g->sessions, &g->acct, why, sizeof(why)) != MDM_OK) {
		log_err("%s: %s", g->cfg.path, why);
		return -1;
	}
	return 0;
}

/* --- coa: the sinks and the dispatcher (none configured: transitions are only logged) --- */

static int build_coa(struct gateway *g)
{
	struct coa_setup cs = {&g->cfg.coa,
			       g->cfg.nas,
			       g->cfg.nnas,
			       g->cfg.listen.shutdown_grace_ms,
			       {sessions_find_cb, g->sessions, lease_claim_cb, g->lease}};
	char why[512] = "";

	if (coa_start(&cs, &g->coa, &g->coa_http, why, sizeof(why)) != MDM_OK) {
		log_err("%s: coa: %s", g->cfg.path, why);
		return -1;
	}
	return 0;
}

/*
 * ha: instances sharing memcached elect the reconciler's leader by a lease in it. Alone (no
 * cache.servers) there is no lease: the instance is the leader (the reconciler's is_leader and
 * the CoA claim callbacks take a NULL lease as "always").
 */
static int make_lease(struct gateway *g)
{
	struct lease_config lc = {
	    .cache = g->cache,
	    .shared = true,
	    .ns = g->cfg.cache.ns,
	    .holder = g->cfg.api.gateway_id,
	    .ttl_ms = g->cfg.ha.lease_ttl_ms,
	};
	char why[256];

	if (!g->cfg.cache.nservers)
		return 0;
	g->lease = lease_create(&lc, why, sizeof(why));
	if (!g->lease) {
		log_err("%s: ha: %s", g->cfg.path, why);
		return -1;
	}
	log_info("ha: leader lease %s:reconciler:lease, ttl %lld ms; this instance %s",
		 g->cfg.cache.ns, (long long)g->cfg.ha.lease_ttl_ms,
		 lease_is_leader(g->lease, NULL) ? "leads" : "follows");
	return 0;
}

static int build_services(struct gateway *g)
{
	struct lookup_config lc = {
	    .ads = g->ads,
	    .nads = g->nads,
	    .policy = policy_of(&g->cfg),
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
	if (make_lease(g) != 0)
		return -1;
	log_info("gateway id %s, at most %u hops", g->cfg.api.gateway_id, g->cfg.api.max_hops);
	if (build_sessions(g) != 0 || build_coa(g) != 0 || build_actions(g) != 0 ||
	    build_trans(g) != 0)
		return -1;
	return build_recon(g, &lc.policy);
}

/* The handler table: each module's routes with the context they answer from. */
static void wire_routes(struct gateway *g)
{
	g->ise = (struct ise_api){.api = &g->cfg.api,
				  .instance = g->cfg.listen.instance,
				  .action_roles = &g->cfg.actions.roles,
				  .lookup = g->lookup,
				  .answers = g->answers,
				  .snaps = g->snaps,
				  .actions = g->actions,
				  .blocks = g->blocks};
	g->action_api = (struct action_api){.actions = g->actions,
					    .journal = g->journal,
					    .blocks = g->blocks,
					    .lookup = g->lookup,
					    .on_block = g->trans ? pipeline_block : NULL,
					    .on_block_arg = g->pipe};
	g->admin = (struct admin_api){.ads = g->ads,
				      .nads = g->nads,
				      .lookup = g->lookup,
				      .cache = g->cache,
				      .hops = g->hops,
				      .ise_stats = &g->ise.stats,
				      .server_stats = &g->server_stats,
				      .coa = g->coa,
				      .sessions = g->sessions,
				      .acct = g->acct,
				      .trans = g->trans};
	g->nroutes = 0;
	g->routes[g->nroutes++] = ise_api_routes(&g->ise);
	g->routes[g->nroutes++] = admin_api_routes(&g->admin);
	g->routes[g->nroutes++] = action_api_routes(&g->action_api);
	g->routes[g->nroutes++] = coa_api_routes(g->coa);
	g->routes[g->nroutes++] = trans_api_routes(g->trans);
	g->routes[g->nroutes++] = recon_api_routes(g->recon);
	g->routes[g->nroutes++] = session_api_routes(g->sessions);
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

/* --- test-connection and query: ask the adapters directly, bypassing the cache ---------------- */

#define TEST_WAIT_MS 30000  /* safety net: adapters bound their own tests */
#define QUERY_MIN_MS 10000  /* a person is waiting, not ISE: allow slow back ends */
#define QUERY_GRACE_MS 1000 /* adapters answer at their deadline: give them time to say so */

struct tool_args {
	const char *conf;
	const char *kind;
	const char *arg; /* the one positional argument */
};

/* tool_args_parse: [-c FILE] [--kind K] ARG in any order; -1 for anything else. */
static int tool_args_parse(int argc, char **argv, bool with_kind, struct tool_args *a)
{
	memset(a, 0, sizeof(*a));
	for (int i = 2; i < argc; i++) {
		bool has_next = i + 1 < argc;

		if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && has_next)
			a->conf = argv[++i];
		else if (with_kind && strcmp(argv[i], "--kind") == 0 && has_next)
			a->kind = argv[++i];
		else if (argv[i][0] != '-' && !a->arg)
			a->arg = argv[i];
		else
			return -1;
	}
	return a->conf && a->arg ? 0 : -1;
}

/* Answers awaited from the engine thread (or from within the call itself). */
struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t pending;
};

static void waiter_init(struct waiter *w, size_t pending)
{
	pthread_mutex_init(&w->mu, NULL);
	clock_cond_init(&w->cv); /* clock_mono_ms deadlines */
	w->pending = pending;
}

static void waiter_destroy(struct waiter *w)
{
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
}

/* waiter_done: one answer arrived; with w->mu held. */
static void waiter_done(struct waiter *w)
{
	if (w->pending > 0 && --w->pending == 0)
		pthread_cond_broadcast(&w->cv);
}

/* waiter_wait: until nothing is pending or deadline_ms (clock_mono_ms); with w->mu held. */
static void waiter_wait(struct waiter *w, int64_t deadline_ms)
{
	while (w->pending > 0)
		if (clock_cond_wait_until(&w->cv, &w->mu, deadline_ms))
			break;
}

/*
 * load_for_tool: the configuration and the adapters a tool asks (all, or only the one named),
 * with the engine. 0, 1 (configuration or adapter refused) or 2 (no adapter of that name).
 */
static int load_for_tool(struct gateway *g, const char *path, const char *only)
{
	const struct config_adapter *ca = NULL;

	if (load_config(g, path) != 0)
		return 1;
	if (only) {
		for (size_t i = 0; i < g->cfg.nadapters && !ca; i++)
			if (strcmp(g->cfg.adapters[i].name, only) == 0)
				ca = &g->cfg.adapters[i];
		if (!ca) {
			fprintf(stderr, "no adapter named %s; configured: ", only);
			for (size_t i = 0; i < g->cfg.nadapters; i++)
				fprintf(stderr, "%s%s", i ? ", " : "", g->cfg.adapters[i].name);
			fprintf(stderr, "\n");
			return 2;
		}
	}
	return make_adapters(g, ca) == 0 ? 0 : 1;
}

/* The test's answer; it lives until the adapter is destroyed, which may answer late. */
struct test_wait {
	struct waiter w;
	bool answered;
	struct adapter_test res;
};

static void on_test(void *arg, struct adapter_test *t)
{
	struct test_wait *tw = arg;

	pthread_mutex_lock(&tw->w.mu);
	if (!tw->answered) {
		tw->res = *t;
		tw->answered = true;
		waiter_done(&tw->w);
	}
	pthread_mutex_unlock(&tw->w.mu);
}

/* run_test: adapter_test_connection, waited for; tw->res holds the verdict in every case. */
static void run_test(struct adapter *a, struct test_wait *tw)
{
	enum mdm_err e = adapter_test_connection(a, on_test, tw);

	pthread_mutex_lock(&tw->w.mu);
	if (e == MDM_OK)
		waiter_wait(&tw->w, clock_mono_ms() + TEST_WAIT_MS);
	if (!tw->answered) {
		tw->res.ok = false;
		if (e != MDM_OK)
			snprintf(tw->res.message, sizeof(tw->res.message),
				 "the test could not start: %s", err_str(e));
		else
			snprintf(tw->res.message, sizeof(tw->res.message), "no answer within %d s",
				 TEST_WAIT_MS / 1000);
		tw->answered = true; /* a late answer is dropped */
	}
	pthread_mutex_unlock(&tw->w.mu);
}

static int cmd_test_connection(const char *path, const char *name)
{
	static struct gateway g;
	struct test_wait tw = {.answered = false};
	int rc;

	waiter_init(&tw.w, 1);
	rc = load_for_tool(&g, path, name);
	if (rc == 0) {
		run_test(g.ads[0], &tw);
		printf("%s: %s: %s\n", name, tw.res.ok ? "OK" : "FAILED", tw.res.message);
		rc = tw.res.ok ? 0 : 1;
	}
	free_gateway(&g); /* before tw goes: a late answer still finds it */
	waiter_destroy(&tw.w);
	return rc;
}

/* query: every adapter's own answer, with how long it took. */
struct query;

struct query_slot {
	struct query *q;
	size_t i;
};

struct query {
	struct waiter w;
	int64_t started;
	size_t n;
	struct outcome ocs[CONFIG_MAX_ADAPTERS];
	int64_t elapsed_ms[CONFIG_MAX_ADAPTERS];
	bool answered[CONFIG_MAX_ADAPTERS];
	struct query_slot slots[CONFIG_MAX_ADAPTERS];
};

/* query_answer: slot i's outcome, unless it already has one (a late answer); with w.mu held. */
static void query_answer(struct query *q, size_t i, struct outcome *oc)
{
	if (q->answered[i]) {
		outcome_clear(oc);
		return;
	}
	outcome_move(&q->ocs[i], oc);
	q->elapsed_ms[i] = clock_mono_ms() - q->started;
	q->answered[i] = true;
	waiter_done(&q->w);
}

static void on_lookup(void *arg, struct outcome *oc)
{
	struct query_slot *s = arg;

	pthread_mutex_lock(&s->q->w.mu);
	query_answer(s->q, s->i, oc);
	pthread_mutex_unlock(&s->q->w.mu);
}

/* query_failed: slot i failed without an answer from its adapter; with w.mu held. */
static void query_failed(struct query *q, size_t i, enum fail_kind fail, const char *why)
{
	struct outcome oc;

	outcome_init(&oc);
	outcome_set(&oc, OUTCOME_FAILED, fail, why);
	query_answer(q, i, &oc);
}

static void query_run(struct query *q, struct adapter *const *ads, const struct ident *id,
		      int64_t timeout_ms)
{
	int64_t deadline = clock_mono_ms() + timeout_ms;
	char why[128];

	q->started = clock_mono_ms();
	for (size_t i = 0; i < q->n; i++) {
		enum mdm_err e;

		q->slots[i] = (struct query_slot){q, i};
		e = adapter_lookup(ads[i], id, deadline, on_lookup, &q->slots[i]);
		if (e == MDM_OK)
			continue;
		snprintf(why, sizeof(why), "lookup refused: %s", err_str(e));
		pthread_mutex_lock(&q->w.mu);
		query_failed(q, i, FAIL_INTERNAL, why);
		pthread_mutex_unlock(&q->w.mu);
	}
	pthread_mutex_lock(&q->w.mu);
	waiter_wait(&q->w, deadline + QUERY_GRACE_MS);
	snprintf(why, sizeof(why), "no answer within %lld ms", (long long)timeout_ms);
	for (size_t i = 0; i < q->n; i++)
		if (!q->answered[i])
			query_failed(q, i, FAIL_TIMEOUT, why);
	pthread_mutex_unlock(&q->w.mu);
}

static const char *tri_word(enum tri t)
{
	return t == TRI_TRUE ? "yes" : t == TRI_FALSE ? "no" : "unknown";
}

/* put: " key=value", quoted (with \ escapes) when quote is set or value needs it; not if "". */
static void put(const char *key, const char *v, bool quote)
{
	const char *p;

	if (!v[0])
		return;
	for (p = v; !quote && *p; p++)
		quote = !(isalnum((unsigned char)*p) || strchr("._:@/+-,", *p));
	if (!quote) {
		printf(" %s=%s", key, v);
		return;
	}
	printf(" %s=\"", key);
	for (p = v; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if ((unsigned char)*p < 0x20 || *p == 0x7f)
			printf("\\x%02x", (unsigned char)*p);
		else
			putchar(*p);
	}
	putchar('"');
}

static void print_device(const struct device *d)
{
	char macs[DEVICE_MACS_MAX * (MAC_STR_LEN + 1) + 1] = "", when[CLOCK_ISO_SIZE] = "";

	for (unsigned m = 0; m < d->nmacs && m < DEVICE_MACS_MAX; m++)
		snprintf(macs + strlen(macs), sizeof(macs) - strlen(macs), "%s%s", m ? "," : "",
			 d->macs[m]);
	if (d->last_checkin_ms)
		clock_iso(d->last_checkin_ms, when);
	printf("  device");
	put("source", d->source, false);
	put("vendor_id", d->vendor_id, false);
	printf(" registered=%s compliant=%s", tri_word(d->registered), tri_word(d->compliant));
	put("failure_reason", d->failure_reason, true);
	put("remediation", d->remediation, true);
	printf("\n   ");
	put("guid", d->guid, false);
	put("macs", macs, false);
	printf("%s", d->mac_local ? " (locally administered)" : "");
	put("udid", d->udid, false);
	put("imei", d->imei, false);
	put("meid", d->meid, false);
	put("serial", d->serial, false);
	put("hostname", d->hostname, false);
	put("username", d->username, true);
	printf(" ownership=%s\n   ", ownership_name(d->ownership));
	printf(" disk_encrypted=%s pin_lock=%s jail_broken=%s", tri_word(d->disk_encrypted),
	       tri_word(d->pin_lock), tri_word(d->jail_broken));
	put("manufacturer", d->manufacturer, true);
	put("model", d->model, true);
	put("os_version", d->os_version, false);
	put("phone_number", d->phone_number, false);
	put("last_checkin", when, false);
	printf("\n");
}

static void print_outcome(const struct adapter *a, const struct outcome *oc, int64_t elapsed_ms)
{
	printf("%s: type=%s outcome=%s fail=%s", a->name, a->ops->type, outcome_kind_name(oc->kind),
	       fail_kind_name(oc->fail));
	put("why", oc->why, true);
	printf(" elapsed_ms=%lld devices=%zu\n", (long long)elapsed_ms, oc->ndevs);
	for (size_t i = 0; i < oc->ndevs; i++)
		print_device(&oc->devs[i]);
}

static const char *verdict_word(enum merge_verdict v)
{
	return v == MERGE_FOUND		 ? "found"
	       : v == MERGE_NOT_ENROLLED ? "not_enrolled"
					 : "unavailable";
}

/* print_merged: the answer ISE would get, by the gateway's own merge policy. */
static int print_merged(const struct merge_policy *p, const struct outcome *ocs, size_t n)
{
	struct merge_result mr;

	memset(&mr, 0, sizeof(mr));
	if (merge_outcomes(p, ocs, n, &mr) != MDM_OK) {
		fprintf(stderr, "merge: out of memory\n");
		return -1;
	}
	printf("merged: verdict=%s partial=%s devices=%zu compliance_rule=%s partial_answer=%s\n",
	       verdict_word(mr.verdict), mr.partial ? "yes" : "no", mr.ndevs,
	       p->compliant_requires_all ? "all" : "any",
	       p->partial_is_unavailable ? "unavailable" : "answer");
	for (size_t i = 0; i < mr.ndevs; i++)
		print_device(&mr.devs[i]);
	merge_result_clear(&mr);
	return 0;
}

/* query_ident: value of kind (NULL: a MAC if it parses as one, else a GUID). 0 or -1. */
static int query_ident(const char *kind, const char *value, struct ident *id)
{
	enum ident_kind k = IDENT_GUID;
	char why[256];

	if (kind && ident_kind_parse(kind, &k) != MDM_OK) {
		fprintf(stderr,
			"unknown --kind %s (mac, guid, udid, imei, meid, username, "
			"hostname, serial)\n",
			kind);
		return -1;
	}
	if (!kind && ident_parse(IDENT_MAC, value, strlen(value), id, NULL, 0) == MDM_OK)
		return 0;
	if (ident_parse(k, value, strlen(value), id, why, sizeof(why)) != MDM_OK) {
		fprintf(stderr, "%s: %s\n", value, why);
		return -1;
	}
	return 0;
}

static int cmd_query(const char *path, const char *kind, const char *value)
{
	static struct gateway g;
	static struct query q;
	struct ident id;
	int rc = 0;

	if (query_ident(kind, value, &id) != 0)
		return 2;
	waiter_init(&q.w, 0);
	if (load_for_tool(&g, path, NULL) != 0)
		rc = 1;
	if (rc == 0) {
		struct merge_policy p = policy_of(&g.cfg);
		int64_t timeout = g.cfg.api.lookup_timeout_ms;

		q.n = q.w.pending = g.nads;
		for (size_t i = 0; i < q.n; i++)
			outcome_init(&q.ocs[i]);
		query_run(&q, g.ads, &id, timeout > QUERY_MIN_MS ? timeout : QUERY_MIN_MS);
		printf("query: %s %s\n", ident_kind_name(id.kind), id.value);
		for (size_t i = 0; i < q.n; i++) {
			print_outcome(g.ads[i], &q.ocs[i], q.elapsed_ms[i]);
			if (q.ocs[i].kind == OUTCOME_FAILED)
				rc = 1;
		}
		if (print_merged(&p, q.ocs, q.n) != 0)
			rc = 1;
	}
	free_gateway(&g); /* before q goes: a late answer still finds it */
	for (size_t i = 0; i < q.n; i++)
		outcome_clear(&q.ocs[i]);
	waiter_destroy(&q.w);
	return rc;
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
	char why[512];
	struct server_deps deps;
	int sig;

	fix_malloc_thresholds();
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
	wire_routes(&g);
	deps = (struct server_deps){.listen = &g.cfg.listen,
				    .auth = g.auth,
				    .hops = g.hops,
				    .routes = g.routes,
				    .nroutes = g.nroutes,
				    .error = ise_error,
				    .stats = &g.server_stats};
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
	if (strcmp(cmd, "test-connection") == 0 || strcmp(cmd, "query") == 0) {
		bool query = strcmp(cmd, "query") == 0;
		struct tool_args ta;

		if (tool_args_parse(argc, argv, query, &ta) != 0) {
			usage(stderr);
			return 2;
		}
		return query ? cmd_query(ta.conf, ta.kind, ta.arg)
			     : cmd_test_connection(ta.conf, ta.arg);
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
		return cmd_check(conf);
	if (strcmp(cmd, "run") == 0 || strcmp(cmd, "-c") == 0 || strcmp(cmd, "--config") == 0)
		return cmd_run(conf);
	usage(stderr);
	return 2;
}
