/*
 * hotpath: the gateway's work for one cached single-device query, without TLS or HTTP: the
 * cached Basic-auth check, routing, lookup (cache hit) and XML rendering, in a loop on one
 * thread. Prints nanoseconds per request and per stage, so a change to the hot path can be
 * measured here (or under valgrind --tool=callgrind) before wrk sees it.
 *   hotpath INVENTORY.json [iterations]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../adapters/inventory.h"
#include "../cache/cache.h"
#include "../cache/entry.h"
#include "../core/clock.h"
#include "../core/log.h"
#include "../gateway/app/config.h"
#include "../gateway/ise/ise_api.h"
#include "../gateway/server/auth.h"
#include "../gateway/server/route.h"
#include "../gateway/verdict/lookup.h"

#define TARGET                                                                                     \
	"/ciscoise/mdmapi/v3/devices/"                                                             \
	"?paging=0&querycriteria=macaddress&value=0026B424FEB4&filter=all"

static struct timespec ts_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t;
}

static double ns_since(struct timespec a)
{
	struct timespec b = ts_now();

	return (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
}

int main(int argc, char **argv)
{
	static struct config cfg;
	struct config_account acct;
	struct adapter *ads[1];
	struct cache_mem_config mc = {
	    .max_entries = 1000, .shards = 16, .max_value = ENTRY_MAX_LEN};
	struct lookup_config lc = {0};
	struct ise_api ctx;
	struct auth *auth;
	struct auth_result ar;
	struct route r;
	char why[512];
	long n = argc > 2 ? atol(argv[2]) : 200000;
	double t_auth = 0, t_route = 0, t_handle = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: hotpath INVENTORY.json [iterations]\n");
		return 2;
	}
	log_set_level(LOGL_WARN);
	config_defaults(&cfg);
	ads[0] = inventory_create("inventory", argv[1], why, sizeof(why));
	if (!ads[0]) {
		fprintf(stderr, "%s\n", why);
		return 1;
	}
	memset(&acct, 0, sizeof(acct));
	str_copy(acct.user, sizeof(acct.user), "demo");
	acct.roles = ROLE_QUERY;
	if (scrypt_line_make("mdmgw-demo", 10, AUTH_MIN_LN, AUTH_MIN_R, AUTH_MIN_P,
			     acct.password_hash, sizeof(acct.password_hash)) != MDM_OK)
		return 1;
	auth = auth_create(&cfg.auth, &acct, 1);
	lc.ads = ads;
	lc.nads = 1;
	lc.cache = cache_mem_create(&mc);
	lc.policy.compliant_requires_all = true;
	lc.ns = "mdmgw";
	lc.timeout_ms = 1000;
	lc.lock_wait_ms = 100;
	lc.fresh_ttl_ms = 3600000;
	lc.stale_ttl_ms = 3600000;
	lc.negative_ttl_ms = 60000;
	lc.max_batch = 5000;
	memset(&ctx, 0, sizeof(ctx));
	ctx.api = &cfg.api;
	ctx.instance = "";
	ctx.lookup = lookup_create(&lc);
	if (getenv("HOTPATH_ANSWERS")) /* the rendered-answer tier, as the gateway runs it */
		ctx.answers = cache_mem_create(&mc);
	for (long i = -1; i < n; i++) { /* the first round fills the caches */
		struct http_response res;
		struct handler_request rq = {
		    .route = &r, .user = "demo", .roles = ~0u, .addr = "-"};
		struct timespec t0 = ts_now();

		if (auth_check(auth, "Basic ZGVtbzptZG1ndy1kZW1v", "127.0.0.1", &ar) != MDM_OK)
			return 1;
		if (i >= 0)
			t_auth += ns_since(t0);
		t0 = ts_now();
		route_parse_target("GET", TARGET, "", &r);
		if (i >= 0)
			t_route += ns_since(t0);
		t0 = ts_now();
		http_response_init(&res);
		ise_handle(&ctx, &rq, &res);
		if (res.status != 200)
			return 1;
		http_response_clear(&res);
		if (i >= 0)
			t_handle += ns_since(t0);
	}
	printf("auth   %8.0f ns\nroute  %8.0f ns\nhandle %8.0f ns (lookup + render)\n"
	       "total  %8.0f ns per request over %ld\n",
	       t_auth / n, t_route / n, t_handle / n, (t_auth + t_route + t_handle) / n, n);
	lookup_destroy(ctx.lookup);
	cache_destroy(ctx.answers);
	cache_destroy(lc.cache);
	auth_destroy(auth);
	adapter_destroy(ads[0]);
	return 0;
}
