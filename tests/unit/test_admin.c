/* test_admin: GET /api/v1/adapters and admin_test_adapter, with the inventory adapter and a fake.
 */
#include "unit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <jansson.h>

#include "../../adapters/inventory.h"
#include "../../gateway/admin/admin.h"

#define INV_JSON                                                                                   \
	"{\"devices\": [{\"id\": \"a\", \"macs\": [\"00:26:B4:24:FE:B4\"]}, {\"id\": \"b\", "      \
	"\"guid\": \"g-b\"}]}"

/* --- a fake network adapter: fixed health, a test answered on another thread ----------------- */

struct fake {
	struct adapter base;
	bool refuse; /* test_connection returns an error */
	bool ok;     /* what the test says */
	pthread_t thread;
	bool started;
	adapter_test_cb cb;
	void *arg;
};

static void *fake_answer(void *p)
{
	struct fake *f = p;
	struct adapter_test t = {.ok = f->ok};

	usleep(10000); /* the caller has returned by now */
	snprintf(t.message, sizeof(t.message), "%s",
		 f->ok ? "AdminService 200 in 12 ms" : "TLS: certificate not trusted \xff");
	f->cb(f->arg, &t);
	return NULL;
}

static enum mdm_err fake_test(struct adapter *a, adapter_test_cb cb, void *arg)
{
	struct fake *f = a->priv;

	if (f->refuse)
		return MDM_ERR_UNAVAILABLE;
	f->cb = cb;
	f->arg = arg;
	f->started = pthread_create(&f->thread, NULL, fake_answer, f) == 0;
	return f->started ? MDM_OK : MDM_ERR_INTERNAL;
}

static void fake_health(struct adapter *a, struct adapter_health *h)
{
	(void)a;
	h->healthy = false;
	h->breaker = BREAKER_OPEN;
	h->requests = 12;
	h->failures = 5;
	h->last_ok_ms = 1700000000123LL;
	h->last_error_ms = 1700000060000LL;
	snprintf(h->last_error, sizeof(h->last_error), "connect to cm01:443: \"refused\"");
}

static void fake_join(struct fake *f)
{
	if (f->started)
		pthread_join(f->thread, NULL);
	f->started = false;
}

static const struct adapter_ops fake_ops = {
    .type = "fake",
    .test_connection = fake_test,
    .health = fake_health,
};

/* --- fixture --------------------------------------------------------------------------------- */

struct fixture {
	char path[64];
	struct adapter *inv;
	struct fake fake;
	struct adapter *ads[2];
	struct admin_api ctx;
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	char why[256];
	FILE *f;
	int fd;

	assert_non_null(fx);
	snprintf(fx->path, sizeof(fx->path), "/tmp/mdmgw-test-admin-XXXXXX");
	fd = mkstemp(fx->path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs(INV_JSON, f);
	fclose(f);
	fx->inv = inventory_create("inventory", fx->path, why, sizeof(why));
	if (!fx->inv)
		fail_msg("%s", why);
	fx->fake.base.ops = &fake_ops;
	fx->fake.base.priv = &fx->fake;
	snprintf(fx->fake.base.name, sizeof(fx->fake.base.name), "sccm-1");
	fx->ads[0] = fx->inv;
	fx->ads[1] = &fx->fake.base;
	fx->ctx.ads = fx->ads;
	fx->ctx.nads = 2;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	fake_join(&fx->fake);
	adapter_destroy(fx->inv);
	unlink(fx->path);
	free(fx);
	return 0;
}

/* --- answers as the caller sees them ---------------------------------------------------------- */

struct answer {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int calls;
	int status;
	char *body;
	const char *content_type;
};

static void on_done(void *arg, struct http_response *res)
{
	struct answer *a = arg;
	size_t len;

	pthread_mutex_lock(&a->mu);
	a->calls++;
	a->status = res->status;
	a->content_type = res->content_type;
	free(a->body);
	a->body = buf_take(&res->body, &len); /* moved out: nothing left for the callee */
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
}

static void answer_init(struct answer *a)
{
	memset(a, 0, sizeof(*a));
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
}

static void answer_wait(struct answer *a)
{
	pthread_mutex_lock(&a->mu);
	while (a->calls == 0)
		pthread_cond_wait(&a->cv, &a->mu);
	pthread_mutex_unlock(&a->mu);
}

static void answer_clear(struct answer *a)
{
	free(a->body);
	pthread_cond_destroy(&a->cv);
	pthread_mutex_destroy(&a->mu);
}

static json_t *parse_json(const char *text)
{
	json_error_t err;
	json_t *j = json_loads(text ? text : "", 0, &err);

	if (!j)
		fail_msg("not JSON (%s): %s", err.text, text ? text : "(null)");
	return j;
}

/* --- GET /api/v1/adapters -------------------------------------------------------------------- */

static void test_list(void **state)
{
	struct fixture *fx = *state;
	struct route r = {.kind = ROUTE_ADAPTERS};
	struct http_response res;
	json_t *j, *inv, *fake, *err;

	http_response_init(&res);
	admin_handle(&fx->ctx, &r, &res);
	assert_int_equal(res.status, 200);
	assert_string_equal(res.content_type, "application/json");
	j = parse_json(buf_str(&res.body));
	assert_int_equal(json_array_size(json_object_get(j, "adapters")), 2);
	inv = json_array_get(json_object_get(j, "adapters"), 0);
	assert_string_equal(json_string_value(json_object_get(inv, "name")), "inventory");
	assert_string_equal(json_string_value(json_object_get(inv, "type")), "inventory");
	assert_true(json_is_true(json_object_get(inv, "healthy")));
	assert_string_equal(json_string_value(json_object_get(inv, "breaker")), "closed");
	assert_int_equal(json_integer_value(json_object_get(inv, "requests")), 0);
	assert_int_equal(json_integer_value(json_object_get(inv, "failures")), 0);
	assert_true(json_is_null(json_object_get(inv, "last_ok")));
	assert_true(json_is_null(json_object_get(inv, "last_error")));
	assert_int_equal(json_object_size(inv), 8);

	fake = json_array_get(json_object_get(j, "adapters"), 1);
	assert_string_equal(json_string_value(json_object_get(fake, "name")), "sccm-1");
	assert_string_equal(json_string_value(json_object_get(fake, "type")), "fake");
	assert_true(json_is_false(json_object_get(fake, "healthy")));
	assert_string_equal(json_string_value(json_object_get(fake, "breaker")), "open");
	assert_int_equal(json_integer_value(json_object_get(fake, "requests")), 12);
	assert_int_equal(json_integer_value(json_object_get(fake, "failures")), 5);
	assert_string_equal(json_string_value(json_object_get(fake, "last_ok")),
			    "2023-11-14T22:13:20.123Z");
	err = json_object_get(fake, "last_error");
	assert_string_equal(json_string_value(json_object_get(err, "at")),
			    "2023-11-14T22:14:20.000Z");
	assert_string_equal(json_string_value(json_object_get(err, "message")),
			    "connect to cm01:443: \"refused\"");
	json_decref(j);
	http_response_clear(&res);
}

/* admin_handle does not run tests: they are asynchronous (admin_test_adapter). */
static void test_handle_refuses_test_route(void **state)
{
	struct fixture *fx = *state;
	struct route r = {.kind = ROUTE_ADAPTER_TEST, .value = "inventory"};
	struct http_response res;

	http_response_init(&res);
	admin_handle(&fx->ctx, &r, &res);
	assert_int_equal(res.status, 404);
	http_response_clear(&res);
}

/* --- POST /api/v1/adapters/{name}/test ------------------------------------------------------- */

static void expect_test(struct answer *a, int status, const char *name, bool ok)
{
	json_t *j;

	assert_int_equal(a->calls, 1);
	assert_int_equal(a->status, status);
	assert_string_equal(a->content_type, "application/json");
	j = parse_json(a->body);
	assert_string_equal(json_string_value(json_object_get(j, "adapter")), name);
	assert_int_equal(json_is_true(json_object_get(j, "ok")), ok);
	assert_true(json_is_string(json_object_get(j, "message")));
	json_decref(j);
}

/* The inventory answers from memory: done runs before admin_test_adapter returns. */
static void test_inventory_synchronous(void **state)
{
	struct fixture *fx = *state;
	struct answer a;
	json_t *j;

	answer_init(&a);
	assert_int_equal(admin_test_adapter(&fx->ctx, "inventory", on_done, &a), MDM_OK);
	expect_test(&a, 200, "inventory", true);
	j = parse_json(a.body);
	assert_non_null(strstr(json_string_value(json_object_get(j, "message")), "2 devices"));
	json_decref(j);
	answer_clear(&a);
}

static void test_async_ok_and_failed(void **state)
{
	struct fixture *fx = *state;
	struct answer a;
	json_t *j;

	answer_init(&a);
	fx->fake.ok = true;
	assert_int_equal(admin_test_adapter(&fx->ctx, "sccm-1", on_done, &a), MDM_OK);
	answer_wait(&a);
	fake_join(&fx->fake);
	expect_test(&a, 200, "sccm-1", true);
	answer_clear(&a);

	answer_init(&a);
	fx->fake.ok = false;
	assert_int_equal(admin_test_adapter(&fx->ctx, "sccm-1", on_done, &a), MDM_OK);
	answer_wait(&a);
	fake_join(&fx->fake);
	expect_test(&a, 502, "sccm-1", false);
	j = parse_json(a.body); /* the byte that is not UTF-8 became '?' */
	assert_string_equal(json_string_value(json_object_get(j, "message")),
			    "TLS: certificate not trusted ?");
	json_decref(j);
	answer_clear(&a);
}

static void test_unknown_and_refused(void **state)
{
	struct fixture *fx = *state;
	struct answer a;
	json_t *j;

	answer_init(&a);
	assert_int_equal(admin_test_adapter(&fx->ctx, "nope", on_done, &a), MDM_ERR_NOTFOUND);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.status, 404);
	j = parse_json(a.body);
	assert_string_equal(json_string_value(json_object_get(j, "error")),
			    "no adapter named nope");
	json_decref(j);
	answer_clear(&a);

	answer_init(&a);
	fx->fake.refuse = true;
	assert_int_equal(admin_test_adapter(&fx->ctx, "sccm-1", on_done, &a), MDM_ERR_UNAVAILABLE);
	fx->fake.refuse = false;
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.status, 500);
	j = parse_json(a.body);
	assert_non_null(
	    strstr(json_string_value(json_object_get(j, "error")), "the test could not start"));
	json_decref(j);
	answer_clear(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_list, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_handle_refuses_test_route, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_inventory_synchronous, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_async_ok_and_failed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unknown_and_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
