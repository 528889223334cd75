/*
 * fuzz_route: the URL router on arbitrary request targets. The first byte picks the method and
 * whether an instance prefix is configured; the rest is the target. Whatever comes in, the
 * route must be well formed: a known kind (ROUTE_KIND_COUNT bounds them, so a new route cannot
 * leave this check behind, as the admin routes once did), a 4xx status when bad, a version 1..3 when served,
 * a paging cursor below 2^31, and a NUL-terminated value.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../gateway/server/route.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const methods[] = {"GET", "POST", "PUT", "HEAD", "DELETE"};
	char target[9000];
	struct route r;

	if (size < 1 || size > sizeof(target) - 1)
		return 0;
	memcpy(target, data + 1, size - 1);
	target[size - 1] = '\0';
	route_parse_target(methods[data[0] % 5], target, (data[0] & 0x80) ? "inst" : "", &r);
	/* every kind the router knows, the gateway's own routes after ROUTE_PURGE included */
	if ((unsigned)r.kind >= ROUTE_KIND_COUNT)
		abort();
	if (r.kind == ROUTE_BAD && (r.status < 400 || r.status > 499 || !r.why[0]))
		abort();
	if ((r.kind == ROUTE_DEVICES || r.kind == ROUTE_BATCH || r.kind == ROUTE_MDMINFO ||
	     r.kind == ROUTE_ACTION) &&
	    (r.api_version < 1 || r.api_version > API_VERSION_MAX))
		abort();
	if (r.paging > ROUTE_PAGING_MAX || memchr(r.value, '\0', sizeof(r.value)) == NULL)
		abort();
	if (r.kind == ROUTE_ACTION && (!r.has_action || r.action >= ACTION_COUNT))
		abort();
	return 0;
}
