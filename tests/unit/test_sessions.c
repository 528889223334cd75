#include "unit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../core/buf.h"
#include "../../core/clock.h"
#include "../../gateway/coa/sessions.h"

static struct coa_session sess(const char *mac, const char *nas_ip, const char *acct_id, int64_t at)
{
	struct coa_session s;

	memset(&s, 0, sizeof(s));
	str_copy(s.mac, sizeof(s.mac), mac);
	str_copy(s.nas_ip, sizeof(s.nas_ip), nas_ip);
	str_copy(s.nas_id, sizeof(s.nas_id), "sw1");
	str_copy(s.acct_session_id, sizeof(s.acct_session_id), acct_id);
	str_copy(s.user_name, sizeof(s.user_name), "alice");
	s.updated_ms = at;
	return s;
}

static void test_upsert_and_several_per_mac(void **state)
{
	struct sessions *t = sessions_create(100, 60000);
	struct coa_session s = sess("0011223344AA", "10.0.0.1", "A1", 0), out[4];
	int64_t now = clock_wall_ms();

	(void)state;
	assert_non_null(t);
	assert_int_equal(sessions_put(t, &s), MDM_OK);
	/* A retransmitted Start (or an Interim) is the same session, updated. */
	str_copy(s.user_name, sizeof(s.user_name), "bob");
	s.nas_port = 7;
	s.has_nas_port = true;
	assert_int_equal(sessions_put(t, &s), MDM_OK);
	assert_int_equal(sessions_count(t), 1);
	assert_int_equal(sessions_find(t, "00:11:22:33:44:aa", out, 4), 1);
	assert_string_equal(out[0].user_name, "bob");
	assert_true(out[0].has_nas_port);
	assert_int_equal(out[0].nas_port, 7);
	assert_true(out[0].updated_ms >= now);
	/* Wireless on another NAS, and another accounting session on the same NAS. */
	s = sess("0011223344AA", "10.0.0.2", "W1", now + 10000);
	assert_int_equal(sessions_put(t, &s), MDM_OK);
	s = sess("0011223344AA", "10.0.0.1", "A2", now + 5000);
	assert_int_equal(sessions_put(t, &s), MDM_OK);
	s = sess("0011223344BB", "10.0.0.1", "B1", now);
	assert_int_equal(sessions_put(t, &s), MDM_OK);
	assert_int_equal(sessions_count(t), 4);
	assert_int_equal(sessions_find(t, "0011.2233.44aa", out, 4), 3);
	assert_string_equal(out[0].acct_session_id, "W1"); /* most recent first */
	assert_string_equal(out[1].acct_session_id, "A2");
	assert_int_equal(sessions_find(t, "0011223344AA", out, 2), 2);
	assert_string_equal(out[0].acct_session_id, "W1"); /* the two most recent, whatever */
	assert_string_equal(out[1].acct_session_id, "A2"); /* the order in the table */
	assert_int_equal(sessions_find(t, "0011223344AA", out, 1), 1);
	assert_string_equal(out[0].acct_session_id, "W1");
	assert_int_equal(sessions_find(t, "0011223344AA", out, 0), 0);
	assert_int_equal(sessions_find(t, "0011223344CC", out, 4), 0);
	assert_int_equal(sessions_find(t, "not a mac", out, 4), 0);
	s = sess("0011223344bb", "10.0.0.1", "x", 0); /* lower case is not the table's form */
	assert_int_equal(sessions_put(t, &s), MDM_ERR_INVALID);
	sessions_destroy(t);
}

static void test_remove(void **state)
{
	struct sessions *t = sessions_create(100, 60000);
	struct coa_session s = sess("0011223344AA", "10.0.0.1", "A1", 0), out[4];

	(void)state;
	assert_int_equal(sessions_put(t, &s), MDM_OK);
	s = sess("0011223344AA", "10.0.0.2", "W1", 0);
	assert_int_equal(sessions_put(t, &s), MDM_OK);
	assert_int_equal(sessions_remove(t, "0011223344AA", "10.0.0.1", "sw1", "nope"),
			 MDM_ERR_NOTFOUND);
	assert_int_equal(sessions_remove(t, "0011223344AA", "10.0.0.1", "sw1", "A1"), MDM_OK);
	assert_int_equal(sessions_remove(t, "0011223344AA", "10.0.0.1", "sw1", "A1"),
			 MDM_ERR_NOTFOUND);
	assert_int_equal(sessions_find(t, "0011223344AA", out, 4), 1);
	assert_string_equal(out[0].acct_session_id, "W1");
	s = sess("0011223344AA", "10.0.0.3", "W2", 0);
	assert_int_equal(sessions_put(t, &s), MDM_OK);
	assert_int_equal(sessions_remove_mac(t, "0011223344AA"), 2);
	assert_int_equal(sessions_remove_mac(t, "0011223344AA"), 0);
	assert_int_equal(sessions_count(t), 0);
	sessions_destroy(t);
}

static void test_clear_nas(void **state)
{
	struct sessions *t = sessions_create(100, 60000);
	struct coa_session s;
	char mac[13];

	(void)state;
	for (int i = 0; i < 10; i++) {
		snprintf(mac, sizeof(mac), "0011223344%02X", i + 1);
		s = sess(mac, i % 2 ? "10.0.0.1" : "10.0.0.2", "A", 0);
		assert_int_equal(sessions_put(t, &s), MDM_OK);
	}
	assert_int_equal(sessions_clear_nas(t, "", ""), 0);
	assert_int_equal(sessions_clear_nas(t, "10.0.0.1", "other"), 0);
	assert_int_equal(sessions_clear_nas(t, "10.0.0.1", "sw1"), 5);
	assert_int_equal(sessions_count(t), 5);
	assert_int_equal(sessions_clear_nas(t, NULL, "sw1"), 5);
	assert_int_equal(sessions_count(t), 0);
	sessions_destroy(t);
}

static void test_expiry(void **state)
{
	struct sessions *t = sessions_create(100, 1000);
	int64_t now = clock_wall_ms();
	struct coa_session s = sess("0011223344AA", "10.0.0.1", "old", now - 5000), out[4];
	json_t *j;

	(void)state;
	assert_int_equal(sessions_put(t, &s), MDM_OK);
	s = sess("0011223344AA", "10.0.0.1", "new", now);
	assert_int_equal(sessions_put(t, &s), MDM_OK);
	/* The stale one is held until expired, but never handed out. */
	assert_int_equal(sessions_count(t), 2);
	assert_int_equal(sessions_find(t, "0011223344AA", out, 4), 1);
	assert_string_equal(out[0].acct_session_id, "new");
	j = sessions_json(t, "0011223344AA", 10);
	assert_int_equal(json_integer_value(json_object_get(j, "count")), 1);
	json_decref(j);
	/* An Interim-Update refreshes. */
	s = sess("0011223344AA", "10.0.0.1", "old", now);
	assert_int_equal(sessions_put(t, &s), MDM_OK);
	assert_int_equal(sessions_find(t, "0011223344AA", out, 4), 2);
	assert_int_equal(sessions_expire(t, now + 500), 0);
	assert_int_equal(sessions_expire(t, now + 1001), 2);
	assert_int_equal(sessions_count(t), 0);
	sessions_destroy(t);
}

static void test_bound(void **state)
{
	struct sessions *t = sessions_create(3, 60000);
	struct coa_session s;
	char mac[13];

	(void)state;
	for (int i = 0; i < 3; i++) {
		snprintf(mac, sizeof(mac), "00112233440%d", i + 1);
		s = sess(mac, "10.0.0.1", "A", 0);
		assert_int_equal(sessions_put(t, &s), MDM_OK);
	}
	s = sess("001122334499", "10.0.0.1", "A", 0);
	assert_int_equal(sessions_put(t, &s), MDM_ERR_TOOBIG);
	assert_int_equal(sessions_put(t, &s), MDM_ERR_TOOBIG);
	assert_int_equal(sessions_refused(t), 2);
	/* An update of a known one still goes through; a freed slot is reused. */
	s = sess("001122334401", "10.0.0.1", "A", 0);
	assert_int_equal(sessions_put(t, &s), MDM_OK);
	assert_int_equal(sessions_remove_mac(t, "001122334402"), 1);
	s = sess("001122334499", "10.0.0.1", "A", 0);
	assert_int_equal(sessions_put(t, &s), MDM_OK);
	assert_int_equal(sessions_count(t), 3);
	/* A full table drops its stale sessions before it refuses. */
	s = sess("001122334403", "10.0.0.1", "A", clock_wall_ms() - 120000);
	assert_int_equal(sessions_put(t, &s), MDM_OK); /* an update: stale now */
	s = sess("0011223344A0", "10.0.0.1", "A", 0);
	assert_int_equal(sessions_put(t, &s), MDM_OK);
	assert_int_equal(sessions_count(t), 3);
	assert_int_equal(sessions_refused(t), 2);
	sessions_destroy(t);
	assert_null(sessions_create(0, 1000));
	assert_null(sessions_create(10, 0));
}

static void test_many_and_json(void **state)
{
	struct sessions *t = sessions_create(5000, 60000);
	struct coa_session s, out[2];
	char mac[13];
	json_t *j, *arr;

	(void)state;
	for (int i = 0; i < 5000; i++) {
		snprintf(mac, sizeof(mac), "02%010X", i + 1);
		s = sess(mac, "10.0.0.1", "A", 0);
		assert_int_equal(sessions_put(t, &s), MDM_OK);
	}
	assert_int_equal(sessions_count(t), 5000);
	for (int i = 0; i < 5000; i += 499) {
		snprintf(mac, sizeof(mac), "02%010X", i + 1);
		assert_int_equal(sessions_find(t, mac, out, 2), 1);
		assert_string_equal(out[0].mac, mac);
	}
	j = sessions_json(t, NULL, 10);
	assert_non_null(j);
	assert_int_equal(json_integer_value(json_object_get(j, "count")), 5000);
	arr = json_object_get(j, "sessions");
	assert_int_equal(json_array_size(arr), 10);
	assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 0), "nas_ip")),
			    "10.0.0.1");
	assert_true(json_is_null(json_object_get(json_array_get(arr, 0), "nas_port")));
	json_decref(j);
	sessions_destroy(t);
}

/* Writers, readers and sweepers at once: every put lands, nothing is torn. */
struct worker {
	struct sessions *t;
	int id;
};

static void *hammer(void *arg)
{
	struct worker *w = arg;
	struct coa_session s, out[8];
	char mac[13], sid[16];

	for (int i = 0; i < 2000; i++) {
		snprintf(mac, sizeof(mac), "02%02X%08X", w->id, i % 100);
		snprintf(sid, sizeof(sid), "S%d", i % 3);
		s = sess(mac, "10.0.0.1", sid, 0);
		if (sessions_put(w->t, &s) != MDM_OK)
			return (void *)1;
		size_t n = sessions_find(w->t, mac, out, 8);
		for (size_t j = 0; j < n; j++)
			if (strcmp(out[j].mac, mac) != 0 || strcmp(out[j].user_name, "alice") != 0)
				return (void *)1;
		if (i % 7 == 0)
			sessions_remove(w->t, mac, "10.0.0.1", "sw1", sid);
		if (i % 500 == 0)
			sessions_expire(w->t, clock_wall_ms());
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct sessions *t = sessions_create(100000, 60000);
	struct worker w[4];
	pthread_t th[4];
	size_t want = 0;
	void *rc;

	(void)state;
	for (int i = 0; i < 4; i++) {
		w[i].t = t;
		w[i].id = i;
		assert_int_equal(pthread_create(&th[i], NULL, hammer, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], &rc), 0);
		assert_null(rc);
	}
	/* Each worker: 300 (MAC, session id) pairs, each last put at one i in 1700..1999 and
	 * left removed when that i is a multiple of 7. */
	for (int i = 1700; i < 2000; i++)
		want += i % 7 != 0;
	assert_int_equal(sessions_count(t), 4 * want);
	assert_int_equal(sessions_remove_mac(t, "020000000000"), 3);
	sessions_destroy(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_upsert_and_several_per_mac),
	    cmocka_unit_test(test_remove),
	    cmocka_unit_test(test_clear_nas),
	    cmocka_unit_test(test_expiry),
	    cmocka_unit_test(test_bound),
	    cmocka_unit_test(test_many_and_json),
	    cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
