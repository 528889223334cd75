/*
 * fuzz_mac: the identifier parsers on arbitrary bytes. mac_parse and ident_parse for every kind;
 * an accepted MAC must be 12 upper-case hex digits that parse back to themselves, and every
 * accepted identifier must be a fixed point of its own normalisation. A broken promise aborts.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/ident.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool upper_hex12(const char *s)
{
	for (size_t i = 0; i < MAC_STR_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'F')))
			return false;
	return s[MAC_STR_LEN] == '\0';
}

static void check_mac(const char *s, size_t len)
{
	char out[MAC_STR_LEN + 1], again[MAC_STR_LEN + 1];
	bool local = false, local2 = false;
	char why[128];

	if (mac_parse(s, len, out, &local, why, sizeof(why)) != MDM_OK) {
		if (strnlen(why, sizeof(why)) == 0)
			abort();
		return;
	}
	if (!upper_hex12(out))
		abort();
	if (mac_parse(out, MAC_STR_LEN, again, &local2, NULL, 0) != MDM_OK)
		abort();
	if (memcmp(out, again, sizeof(out)) != 0 || local != local2)
		abort();
}

static void check_ident(enum ident_kind kind, const char *s, size_t len)
{
	struct ident id, again;
	char why[128];

	if (ident_parse(kind, s, len, &id, why, sizeof(why)) != MDM_OK) {
		if (strnlen(why, sizeof(why)) == 0)
			abort();
		return;
	}
	if (id.kind != kind || id.len == 0 || id.len > IDENT_VALUE_MAX ||
	    strnlen(id.value, sizeof(id.value)) != id.len)
		abort();
	if (kind == IDENT_MAC && (id.len != MAC_STR_LEN || !upper_hex12(id.value)))
		abort();
	/* Normalising twice must change nothing: the cache and the adapters compare these. */
	if (ident_parse(kind, id.value, id.len, &again, NULL, 0) != MDM_OK)
		abort();
	if (again.len != id.len || memcmp(again.value, id.value, id.len) != 0 ||
	    again.mac_local != id.mac_local)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;

	check_mac(s, size);
	for (int k = 0; k < IDENT_KIND_COUNT; k++)
		check_ident((enum ident_kind)k, s, size);
	return 0;
}
