/* gateway: the subsystems made and wired, one call each (gateway.h). */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
#include "config.h"
#include "gateway.h"

#define SNAPSHOT_RETAIN_MS (10 * 60 * 1000) /* a paging walk sees one generation */
#define FIRST_CYCLE_WAIT_MS 10000 /* start-up waits this long for generation 1, then serves */

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
int gateway_make_adapters(struct gateway *g, const struct config_adapter *only)
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

void gateway_free(struct gateway *g)
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
int gateway_load_config(struct gateway *g, const char *path)
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
int gateway_load(struct gateway *g, const char *path)
{
	if (gateway_load_config(g, path) != 0 || check_accounts(&g->cfg) != 0)
		return -1;
	if (access(g->cfg.listen.cert_file, R_OK) != 0 ||
	    access(g->cfg.listen.key_file, R_OK) != 0) {
		fprintf(stderr, "%s: listen.cert_file / listen.key_file: cannot read %s or %s\n",
			path, g->cfg.listen.cert_file, g->cfg.listen.key_file);
		return -1;
	}
	return gateway_make_adapters(g, NULL);
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
struct merge_policy gateway_merge_policy(const struct config *c)
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
	    .policy = gateway_merge_policy(&g->cfg),
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

int gateway_start(struct gateway *g)
{
	struct server_deps deps;
	char why[512];

	if (build_services(g) != 0)
		return -1;
	wire_routes(g);
	deps = (struct server_deps){.listen = &g->cfg.listen,
				    .auth = g->auth,
				    .hops = g->hops,
				    .routes = g->routes,
				    .nroutes = g->nroutes,
				    .error = ise_error,
				    .stats = &g->server_stats};
	if (server_start(&deps, &g->server, why, sizeof(why)) != MDM_OK) {
		log_err("server: %s", why);
		return -1;
	}
	log_info("mdmgw %s listening on https://%s:%u/%s%sciscoise/mdminfo/ (%zu adapters)",
		 MDMGW_VERSION, g->cfg.listen.address, g->cfg.listen.port, g->cfg.listen.instance,
		 g->cfg.listen.instance[0] ? "/" : "", g->nads);
	return 0;
}

void gateway_stop(struct gateway *g)
{
	if (g->server) {
		server_stop(g->server, g->cfg.listen.shutdown_grace_ms);
		g->server = NULL;
	}
	gateway_free(g);
}
