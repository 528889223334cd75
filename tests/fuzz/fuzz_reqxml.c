/*
 * fuzz_reqxml: the request-body parsers on hostile input. The whole input goes to reqxml_values
 * and reqxml_action; its first line is then used as a Content-Type and the rest as the body of
 * multipart_first_part, whose part (the rest itself for other types) is parsed again. Beyond the
 * sanitizers, the documented promises of each result are checked and a broken one aborts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../gateway/ise/reqxml.h"

#define FUZZ_MAX_VALUES 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* A value handed on must be non-empty, trimmed, NUL-terminated within its array. */
static void check_value(const struct reqxml_item *it, int may_hold_comma)
{
	size_t len = strnlen(it->value, sizeof(it->value));

	if (len == 0 || len > IDENT_VALUE_MAX || is_ws(it->value[0]) || is_ws(it->value[len - 1]))
		abort();
	if (!may_hold_comma && memchr(it->value, ',', len))
		abort();
	if (strnlen(it->tag, sizeof(it->tag)) == 0 || strnlen(it->tag, sizeof(it->tag)) >= 16)
		abort();
}

static void check_values(const char *body, size_t len)
{
	struct reqxml_item *items = NULL;
	size_t n = 99;
	char why[128];
	enum mdm_err e = reqxml_values(body, len, FUZZ_MAX_VALUES, &items, &n, why, sizeof(why));

	if (e != MDM_OK) {
		if (items || n != 0 || strnlen(why, sizeof(why)) == 0)
			abort();
		return;
	}
	if (!items || n > FUZZ_MAX_VALUES)
		abort();
	for (size_t i = 0; i < n; i++)
		check_value(&items[i], 0);
	free(items);
}

static void check_action(const char *body, size_t len)
{
	struct reqxml_item it;
	char why[128];
	enum mdm_err e = reqxml_action(body, len, &it, why, sizeof(why));

	if (e == MDM_OK)
		check_value(&it, 1);
	else if (it.value[0] || it.tag[0] || strnlen(why, sizeof(why)) == 0)
		abort();
}

static void check_multipart(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t ctlen = nl ? (size_t)(nl - data) : size;
	const char *body = nl ? (const char *)nl + 1 : (const char *)data + size;
	size_t len = size - (nl ? ctlen + 1 : ctlen);
	char *ct = malloc(ctlen + 1);
	const char *part = NULL;
	size_t partlen = 0;

	if (!ct)
		return;
	memcpy(ct, data, ctlen);
	ct[ctlen] = '\0';
	if (multipart_first_part(ct, body, len, &part, &partlen) == MDM_OK) {
		/* The part is a window into the body, never a copy or anything beyond it. */
		if (!part || part < body || partlen > len || (size_t)(part - body) > len - partlen)
			abort();
		check_values(part, partlen);
		check_action(part, partlen);
	} else if (part || partlen) {
		abort();
	}
	free(ct);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_values((const char *)data, size);
	check_action((const char *)data, size);
	check_multipart(data, size);
	return 0;
}
