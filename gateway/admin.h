/*
 * admin: the gateway's own API for operators (role admin), in JSON and Prometheus text:
 *   GET /metrics                                  counters of the server, cache and adapters
 *   DELETE /api/v1/cache/devices/{identifier}     forget one device on every cache tier
 * {identifier} is a MAC in any form mac_parse accepts, or else a GUID.
 */
#ifndef MDM_ADMIN_H
#define MDM_ADMIN_H

#include "ise_api.h"
#include "route.h"

/* admin_handle: answers ROUTE_METRICS and ROUTE_PURGE into res. */
void admin_handle(struct ise_ctx *ctx, const struct route *r, struct ise_response *res);

#endif
