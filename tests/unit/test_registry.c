/*
 * test_registry: the adapter registry (adapters/registry.h): every type listed once and whole,
 * the configuration's "unknown type" message naming every type, each type's settings fitting
 * struct config_adapter, and each type's connections and create working from loaded settings.
 */
#include "unit.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../adapters/inventory.h"
#include "../../adapters/mcms.h"
#include "../../adapters/registry.h"
#include "../../adapters/sccm.h"
#include "../../gateway/app/config.h"

#define LISTEN "\"listen\": {\"cert_file\": \"c.pem\", \"key_file\": \"k.pem\"}"
#define ACCOUNTS                                                                                   \
	"\"accounts\": [{\"user\": \"ise\", \"password_hash\": \"$scrypt$x\", \"roles\": "         \
	"[\"query\"]}]"
/* the loader only checks that a ca_file can be read; the tests run from the repository root */
#define CA "conf/demo-inventory.json"
/* one adapter of each type */
#define THREE                                                                                      \
	"{" LISTEN ", " ACCOUNTS ", \"adapters\": ["                                               \
	"{\"name\": \"inv\", \"type\": \"inventory\", \"file\": \"conf/demo-inventory.json\"}, "   \
	"{\"name\": \"cm\", \"type\": \"sccm\", \"url\": \"https://cm01.example/AdminService\", "  \
	"\"ca_file\": \"" CA "\", \"max_connections\": 3}, "                                       \
	"{\"name\": \"cloud\", \"type\": \"mcms\", \"url\": \"https://mdm.example.com\", "         \
	"\"ca_file\": \"" CA "\", \"user\": \"u\", \"password\": \"p\", \"max_connections\": 5}]}"

static size_t ntypes(void)
{
	size_t n = 0;

	while (adapter_types[n])
		n++;
	return n;
}

static struct config *load(const char *json, char *why, size_t whysz, enum mdm_err *rc)
{
	struct config *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	*rc = config_load_mem("t.json", json, strlen(json), c, why, whysz);
	return c;
}

/* listed: t is in the table under name. */
static bool listed(const struct adapter_type *t, const char *name)
{
	for (size_t i = 0; adapter_types[i]; i++)
		if (adapter_types[i] == t)
			return strcmp(t->name, name) == 0;
	return false;
}

/* Each type once, named, complete; its keys do not take "name" or "type" again. */
static void test_table(void **state)
{
	size_t n = ntypes();

	(void)state;
	assert_true(n >= 3); /* inventory, sccm, mcms; a new vendor adds one */
	for (size_t i = 0; i < n; i++) {
		const struct adapter_type *t = adapter_types[i];

		assert_non_null(t->name);
		assert_true(t->name[0] != '\0');
		assert_non_null(t->keys);
		assert_non_null(t->keys->fields);
		assert_non_null(t->connections);
		assert_non_null(t->create);
		for (size_t j = 0; j < i; j++) {
			assert_ptr_not_equal(adapter_types[j], t);
			assert_string_not_equal(adapter_types[j]->name, t->name);
		}
		for (const struct conf_field *f = t->keys->fields; f->key; f++) {
			assert_string_not_equal(f->key, "name");
			assert_string_not_equal(f->key, "type");
		}
	}
	assert_true(listed(&inventory_adapter_type, "inventory"));
	assert_true(listed(&sccm_adapter_type, "sccm"));
	assert_true(listed(&mcms_adapter_type, "mcms"));
}

/* A type's settings live in config_adapter's blob: each must fit, and the blob be aligned. */
static void test_settings_fit(void **state)
{
	(void)state;
	for (size_t i = 0; adapter_types[i]; i++) {
		assert_true(adapter_types[i]->conf_size > 0);
		assert_true(adapter_types[i]->conf_size <= ADAPTER_CONF_MAX);
		assert_true(adapter_types[i]->conf_size <=
			    sizeof(((struct config_adapter *)0)->conf));
	}
	assert_int_equal(offsetof(struct config_adapter, conf) % _Alignof(max_align_t), 0);
	assert_int_equal(inventory_adapter_type.conf_size, sizeof(struct config_inventory));
	assert_int_equal(sccm_adapter_type.conf_size, sizeof(struct config_sccm));
	assert_int_equal(mcms_adapter_type.conf_size, sizeof(struct config_mcms));
}

/* "unknown value" and "must be a string" list the registry's names, in its order. */
static void test_unknown_type(void **state)
{
	char list[256] = "", want[512], why[512], json[512];
	const char *forms[] = {"\"ldap\"", "7"};
	enum mdm_err rc;
	size_t o = 0;

	(void)state;
	for (size_t i = 0; adapter_types[i]; i++)
		o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", i ? ", " : "",
				      adapter_types[i]->name);
	assert_non_null(strstr(list, "inventory, sccm, mcms")); /* test_config pins the message */
	for (size_t k = 0; k < 2; k++) {
		struct config *c;

		snprintf(json, sizeof(json),
			 "{" LISTEN ", " ACCOUNTS
			 ", \"adapters\": [{\"name\": \"x\", \"type\": %s}]}",
			 forms[k]);
		c = load(json, why, sizeof(why), &rc);
		assert_int_equal(rc, MDM_ERR_CONFIG);
		if (k == 0)
			snprintf(want, sizeof(want),
				 "t.json: adapters[0].type: unknown value \"ldap\" (%s)", list);
		else
			snprintf(want, sizeof(want),
				 "t.json: adapters[0].type: must be a string (%s)", list);
		assert_string_equal(why, want);
		free(c);
	}
}

/* The settings a type's keys left are the ones its connections and create read. */
static void test_connections_and_create(void **state)
{
	struct http_engine *e = http_engine_create(NULL);
	struct adapter_env env = {.http = e};
	char why[512] = "";
	enum mdm_err rc;
	struct config *c = load(THREE, why, sizeof(why), &rc);
	unsigned want[] = {0, 3, 5};

	(void)state;
	assert_non_null(e);
	if (rc != MDM_OK)
		fail_msg("%s", why);
	assert_int_equal(c->nadapters, 3);
	for (size_t i = 0; i < c->nadapters; i++) {
		const struct config_adapter *ca = &c->adapters[i];
		struct adapter *a;

		assert_int_equal(ca->type->connections(ca->conf), want[i]);
		a = ca->type->create(ca->name, ca->conf, &env, why, sizeof(why));
		if (!a)
			fail_msg("%s: %s", ca->name, why);
		assert_string_equal(a->name, ca->name);
		assert_string_equal(a->ops->type, ca->type->name);
		adapter_destroy(a);
	}
	/* a setting the adapter itself refuses comes back as its reason */
	str_copy(((struct config_inventory *)(void *)c->adapters[0].conf)->file, CONFIG_PATH_MAX,
		 "/nonexistent/inventory.json");
	assert_null(
	    c->adapters[0].type->create("inv", c->adapters[0].conf, &env, why, sizeof(why)));
	assert_non_null(strstr(why, "/nonexistent/inventory.json"));
	free(c);
	http_engine_destroy(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table),
	    cmocka_unit_test(test_settings_fit),
	    cmocka_unit_test(test_unknown_type),
	    cmocka_unit_test(test_connections_and_create),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
