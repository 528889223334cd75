/*
 * gateway: the running gateway, wired. Each subsystem is made by one call, in the order the
 * others need them (the cache before the lookup, the sessions before CoA, CoA before the
 * transitions that feed it, the reconciler last), and the server is given the handler table of
 * every module that answers a route. Freed in the reverse order.
 * Threading: called from main's thread only; the subsystems run their own threads.
 */
#ifndef MDM_GATEWAY_H
#define MDM_GATEWAY_H

#include <stddef.h>

#include "../admin/action_api.h"
#include "../admin/admin.h"
#include "../ise/ise_api.h"
#include "../server/server.h"
#include "../verdict/merge.h"
#include "config.h"

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

/* gateway_load_config: the configuration and its log level (what every command needs). */
int gateway_load_config(struct gateway *g, const char *path);

/* gateway_make_adapters: every configured adapter, or only `only` (test-connection). */
int gateway_make_adapters(struct gateway *g, const struct config_adapter *only);

/* gateway_load: what serving needs: the configuration, account hashes, TLS files and every
 * adapter. 0, or -1 with the reason on stderr. */
int gateway_load(struct gateway *g, const char *path);

/* gateway_start: every subsystem, then the server listening. 0, or -1 (logged). */
int gateway_start(struct gateway *g);

/* gateway_stop: lets requests in flight finish (listen.shutdown_grace), then frees all. */
void gateway_stop(struct gateway *g);

/* gateway_free: everything made so far, in the order the subsystems need (also after a failed
 * start). */
void gateway_free(struct gateway *g);

/* gateway_merge_policy: the merge rule's settings from the configuration. */
struct merge_policy gateway_merge_policy(const struct config *c);

#endif
