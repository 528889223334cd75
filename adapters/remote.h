/*
 * remote: what the network adapters (mcms, sccm) do alike around their vendor's rules, written
 * once. Each holds an HTTP client (http.h), the health record of its vendor calls (http.h) and
 * its newest listing (pages.h). The record and the listing are set up and freed together; an
 * adapter is torn down client first, because destroying the client completes every pending
 * request, so that each lookup, listing, action and test answers (with a failure) before the
 * memory it uses goes.
 * Not thread-safe: remote_open and remote_close run while no other thread uses the adapter.
 */
#ifndef MDM_REMOTE_H
#define MDM_REMOTE_H

#include "http.h"
#include "pages.h"

/* remote_open: pages and health ready, both or neither: MDM_ERR_NOMEM. */
enum mdm_err remote_open(struct pages *pages, struct http_health *health);

/*
 * remote_close: destroys *http first (NULL: no client yet, as when a create fails) and sets it
 * to NULL, then frees pages and health (as remote_open left them).
 */
void remote_close(struct http_client **http, struct pages *pages, struct http_health *health);

#endif
