/*
 * fuzz_radius: the RADIUS parser and verifiers on arbitrary datagrams. An accepted packet must
 * keep every attribute inside its Length, and a packet rebuilt from its top-level attributes
 * must parse back to the same list; the verifiers must never read past the datagram. A broken
 * promise aborts.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../gateway/coa/radius.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct radius_pkt g_pkt, g_again;
static struct radius_builder g_b;

static void check_inside(const struct radius_pkt *p, const uint8_t *data)
{
	for (size_t i = 0; i < p->nattrs; i++) {
		const struct radius_attr *a = &p->attrs[i];

		if (a->value < data + RADIUS_HDR_LEN || a->value + a->len > data + p->len)
			abort();
	}
}

/* rebuild: the top-level attributes through the builder; the result must parse the same. */
static void rebuild(const struct radius_pkt *p)
{
	radius_builder_init(&g_b, p->code, p->id);
	for (size_t i = 0; i < p->nattrs; i++) {
		if (p->attrs[i].vendor != 0)
			continue;
		if (p->attrs[i].len == 0)
			return; /* the builder refuses empty values, by design */
		if (radius_add_bytes(&g_b, p->attrs[i].type, p->attrs[i].value, p->attrs[i].len) !=
		    MDM_OK)
			abort();
	}
	if (radius_finish_request(&g_b, "secret") != MDM_OK)
		abort();
	if (radius_parse(g_b.buf, g_b.len, &g_again) != MDM_OK || g_again.nattrs != p->nattrs)
		abort();
	for (size_t i = 0; i < p->nattrs; i++)
		if (g_again.attrs[i].type != p->attrs[i].type ||
		    g_again.attrs[i].vendor != p->attrs[i].vendor ||
		    g_again.attrs[i].len != p->attrs[i].len ||
		    memcmp(g_again.attrs[i].value, p->attrs[i].value, p->attrs[i].len) != 0)
			abort();
	if (radius_verify_request(g_b.buf, g_b.len, "secret", false) != MDM_OK)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t auth[16];

	if (radius_parse(data, size, &g_pkt) != MDM_OK)
		return 0;
	if (g_pkt.len < RADIUS_HDR_LEN || g_pkt.len > RADIUS_MAX_LEN || g_pkt.len > size)
		abort();
	check_inside(&g_pkt, data);
	(void)radius_verify_request(data, size, "secret", false);
	(void)radius_verify_response(data, size, auth, "secret", true);
	if (g_pkt.ma_off < 0)
		rebuild(&g_pkt);
	return 0;
}
