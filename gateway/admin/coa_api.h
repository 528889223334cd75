/*
 * coa_api: the admin JSON API of Change of Authorization (role admin, checked by the server):
 *   GET  /api/v1/coa?state=failed|sent|all   deliveries, newest first (no state: all)
 *        -> {"deliveries": [{"event_id", "epoch", "sink", "mac", "session", "from", "to",
 *            "attempts", "outcome", "detail", "at"}]}
 *   POST /api/v1/coa/test {"mac": "...", "kind": "reauth"|"disconnect"}
 *        -> 202 {"event_id": "manual:<MAC>@<ms>"}: a manual reauth (or disconnect) event
 *           through the configured sinks, so an operator can check them.
 * 503 when no CoA sink is configured; 503 when the queue is full.
 */
#ifndef MDM_COA_API_H
#define MDM_COA_API_H

#include <stdbool.h>
#include <stddef.h>

#include "../../core/buf.h"
#include "../../core/prom.h"
#include "../server/handler.h"

struct coa;

/* coa_api_routes: the rows above for the handler table (role admin; JSON errors). */
struct handler_group coa_api_routes(struct coa *coa);

/* coa_api_metrics: the dispatcher's counters in Prometheus text; nothing without one. */
void coa_api_metrics(struct coa *coa, struct prom *b);

#endif
