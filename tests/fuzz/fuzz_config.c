/*
 * fuzz_config: config_load_mem on arbitrary bytes. It must never crash or leak, every refusal
 * must be one line of printable text, and whatever it accepts must satisfy the documented
 * invariants.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../gateway/app/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_message(const char *why)
{
	if (!why[0])
		abort();
	for (const char *p = why; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			abort();
}

static void check_config(const struct config *c)
{
	if (c->naccounts < 1 || c->naccounts > CONFIG_MAX_ACCOUNTS)
		abort();
	if (c->nadapters < 1 || c->nadapters > CONFIG_MAX_ADAPTERS)
		abort();
	if (c->listen.max_connections_per_ip > c->listen.max_connections)
		abort();
	if (c->cache.shards == 0 || (c->cache.shards & (c->cache.shards - 1)) != 0)
		abort();
	if (!c->listen.cert_file[0] || !c->listen.key_file[0])
		abort();
	for (size_t i = 0; i < c->naccounts; i++)
		if (!c->accounts[i].roles || !c->accounts[i].user[0] ||
		    strchr(c->accounts[i].user, ':'))
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct config c;
	char why[512];

	if (config_load_mem("fuzz.json", (const char *)data, size, &c, why, sizeof(why)) == MDM_OK)
		check_config(&c);
	else
		check_message(why);
	return 0;
}
