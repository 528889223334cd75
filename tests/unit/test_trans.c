#include "unit.h"

#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../../gateway/app/config.h"
#include "../../gateway/recon/trans.h"

#define MAXEV 4096

struct fix {
	char dir[64];
	struct transition *ev; /* what emit received, in order */
	size_t nev;
	struct trans_config cfg;
	struct trans *t;
	struct trans_dev devs[200];
	char keys[200][16], guids[200][40];
};

static void on_emit(void *arg, const struct transition *ev)
{
	struct fix *f = arg;

	assert_true(f->nev < MAXEV);
	f->ev[f->nev++] = *ev;
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->ev = calloc(MAXEV, sizeof(*f->ev));
	assert_non_null(f->ev);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_trans.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->cfg = (struct trans_config){true, false, 0.20, 10};
	for (size_t i = 0; i < 200; i++) {
		snprintf(f->keys[i], sizeof(f->keys[i]), "0050560000%02zX", i);
		snprintf(f->guids[i], sizeof(f->guids[i]), "guid-%zu", i);
		f->devs[i] = (struct trans_dev){f->keys[i], f->keys[i], f->guids[i], "intune",
						TRI_TRUE,   TRI_TRUE,	TRI_FALSE,   false};
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	char cmd[128];

	trans_destroy(f->t);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f->ev);
	free(f);
	return 0;
}

static void start(struct fix *f)
{
	size_t dropped = 99;

	trans_destroy(f->t);
	f->t = trans_create(&f->cfg, f->dir, &(struct transition_sink){on_emit, f});
	assert_non_null(f->t);
	assert_int_equal(trans_load(f->t, &dropped), MDM_OK);
	assert_int_equal(dropped, 0);
}

/* One cycle over the first n fixture devices; returns how many events were emitted. */
static size_t cycle(struct fix *f, uint64_t gen, size_t n, bool complete)
{
	size_t before = f->nev, ntrans = 0;

	assert_int_equal(trans_cycle(f->t, gen, f->devs, n, complete, 7, &ntrans), MDM_OK);
	return f->nev - before;
}

static const struct transition *find_ev(struct fix *f, const char *id)
{
	for (size_t i = 0; i < f->nev; i++)
		if (strcmp(f->ev[i].id, id) == 0)
			return &f->ev[i];
	return NULL;
}

static void test_each_kind(void **state)
{
	struct fix *f = *state;
	const struct transition *e;

	f->devs[3].compliant = TRI_FALSE;
	start(f);
	assert_int_equal(cycle(f, 1, 20, true), 0); /* first sight of all */
	f->devs[0].compliant = TRI_FALSE;
	f->devs[1].registered = TRI_FALSE;
	f->devs[2].jail_broken = TRI_TRUE;
	f->devs[3].compliant = TRI_TRUE;
	assert_int_equal(cycle(f, 2, 20, true), 4); /* 4/20 = 20 %: not above the guard */
	e = find_ev(f, "005056000000@2");
	assert_non_null(e);
	assert_string_equal(e->from, "compliant");
	assert_string_equal(e->to, "noncompliant");
	assert_string_equal(e->mac, "005056000000");
	assert_string_equal(e->guid, "guid-0");
	assert_int_equal(e->kind, TRANSITION_REAUTH);
	assert_int_equal(e->epoch, 7);
	assert_true(e->at_ms > 0);
	e = find_ev(f, "005056000001@2");
	assert_non_null(e);
	assert_string_equal(e->to, "unregistered");
	assert_int_equal(e->kind, TRANSITION_REAUTH);
	e = find_ev(f, "005056000002@2");
	assert_non_null(e);
	assert_string_equal(e->to, "jailbroken");
	e = find_ev(f, "005056000003@2");
	assert_non_null(e);
	assert_string_equal(e->from, "noncompliant");
	assert_string_equal(e->to, "compliant");
	/* the same data again: nothing */
	assert_int_equal(cycle(f, 3, 20, true), 0);
}

static void test_disconnect_and_compliant_off(void **state)
{
	struct fix *f = *state;

	f->cfg.coa_on_compliant = false;
	f->cfg.unregistered_disconnect = true;
	f->devs[0].compliant = TRI_FALSE;
	start(f);
	assert_int_equal(cycle(f, 1, 20, true), 0);
	f->devs[0].compliant = TRI_TRUE;
	f->devs[1].registered = TRI_FALSE;
	assert_int_equal(cycle(f, 2, 20, true), 1);
	assert_string_equal(f->ev[0].id, "005056000001@2");
	assert_int_equal(f->ev[0].kind, TRANSITION_DISCONNECT);
	/* and back to non-compliant is a transition again (compliant was recorded) */
	f->devs[0].compliant = TRI_FALSE;
	assert_int_equal(cycle(f, 3, 20, true), 1);
	assert_string_equal(f->ev[1].to, "noncompliant");
}

static void test_unset_stale_first_sight(void **state)
{
	struct fix *f = *state;

	start(f);
	assert_int_equal(cycle(f, 1, 20, true), 0);
	/* not reported is no change, and the last known value is kept */
	f->devs[0].compliant = TRI_UNSET;
	f->devs[1].registered = TRI_UNSET;
	f->devs[2].jail_broken = TRI_UNSET;
	assert_int_equal(cycle(f, 2, 20, true), 0);
	/* a stale row says nothing, even with a different value */
	f->devs[4].compliant = TRI_FALSE;
	f->devs[4].stale = true;
	assert_int_equal(cycle(f, 3, 20, false), 0);
	/* a device never seen before, non-compliant and jail-broken: first sight, no event */
	f->devs[25].compliant = TRI_FALSE;
	f->devs[25].jail_broken = TRI_TRUE;
	f->devs[24] = f->devs[25];
	assert_int_equal(cycle(f, 4, 26, true), 0);
	/* device 0 reports false now: its last known true (kept through the unset) counts */
	f->devs[0].compliant = TRI_FALSE;
	assert_int_equal(cycle(f, 5, 26, true), 1);
	assert_string_equal(f->ev[0].id, "005056000000@5");
}

/*
 * A value reported for the first time is no change: from "not reported" to false is not
 * compliant -> non-compliant, nor registered -> unregistered, and to true is not a recovery.
 */
static void test_unset_then_reported(void **state)
{
	struct fix *f = *state;

	f->devs[0].registered = TRI_UNSET;
	f->devs[1].compliant = TRI_UNSET;
	f->devs[2].compliant = TRI_UNSET;
	f->devs[3].jail_broken = TRI_UNSET;
	start(f);
	assert_int_equal(cycle(f, 1, 20, true), 0);
	f->devs[0].registered = TRI_FALSE;
	f->devs[1].compliant = TRI_FALSE;
	f->devs[2].compliant = TRI_TRUE;
	f->devs[3].jail_broken = TRI_FALSE;
	assert_int_equal(cycle(f, 2, 20, true), 0);
	/* now recorded: the next real change of each is one event */
	f->devs[1].compliant = TRI_TRUE;
	f->devs[2].compliant = TRI_FALSE;
	assert_int_equal(cycle(f, 3, 20, true), 2);
	assert_non_null(find_ev(f, "005056000001@3"));
	assert_string_equal(find_ev(f, "005056000001@3")->to, "compliant");
	assert_non_null(find_ev(f, "005056000002@3"));
	assert_string_equal(find_ev(f, "005056000002@3")->to, "noncompliant");
	/* unregistered (recorded false) coming back is no event either */
	f->devs[0].registered = TRI_TRUE;
	assert_int_equal(cycle(f, 4, 20, true), 0);
}

static void test_absence(void **state)
{
	struct fix *f = *state;
	const struct transition *e;

	start(f);
	assert_int_equal(cycle(f, 1, 20, true), 0);
	/* device 19 missing from an incomplete cycle: no event */
	assert_int_equal(cycle(f, 2, 19, false), 0);
	/* missing while other rows of its source are stale: no event even when "complete" */
	f->devs[18].stale = true;
	assert_int_equal(cycle(f, 3, 19, true), 0);
	f->devs[18].stale = false;
	/* missing from a complete cycle: unregistered */
	assert_int_equal(cycle(f, 4, 19, true), 1);
	e = find_ev(f, "005056000013@4");
	assert_non_null(e);
	assert_string_equal(e->to, "unregistered");
	assert_non_null(strstr(e->reason, "absent"));
	/* still absent: it is unregistered now, no second event */
	assert_int_equal(cycle(f, 5, 19, true), 0);
}

static void test_guard_holds_and_releases(void **state)
{
	struct fix *f = *state;
	struct buf b;
	size_t n = 0;

	start(f);
	assert_int_equal(cycle(f, 1, 100, true), 0);
	for (size_t i = 0; i < 30; i++)
		f->devs[i].compliant = TRI_FALSE;
	assert_int_equal(cycle(f, 2, 100, true), 0); /* 30 %: held */
	assert_int_equal(trans_held(f->t), 30);
	buf_init(&b, 4096);
	assert_int_equal(trans_status_json(f->t, &b), MDM_OK);
	assert_non_null(strstr(buf_str(&b), "\"held\":30"));
	assert_non_null(strstr(buf_str(&b), "\"transitions\":30,\"share\":0.3000"));
	assert_null(strstr(buf_str(&b), "\"held_since\":null"));
	buf_free(&b);
	/* one more change while held joins the batch, though 1 % alone would pass */
	f->devs[50].registered = TRI_FALSE;
	assert_int_equal(cycle(f, 3, 100, true), 0);
	assert_int_equal(trans_held(f->t), 31);
	assert_int_equal(access(f->dir, F_OK), 0);
	assert_int_equal(trans_release(f->t, &n), MDM_OK);
	assert_int_equal(n, 31);
	assert_int_equal(f->nev, 31);
	for (size_t i = 0; i < 30; i++) {
		char id[64];

		snprintf(id, sizeof(id), "%s@2", f->keys[i]);
		assert_non_null(find_ev(f, id));
	}
	assert_non_null(find_ev(f, "005056000032@3"));
	assert_int_equal(f->ev[0].epoch, 7);
	assert_int_equal(trans_release(f->t, &n), MDM_ERR_NOTFOUND);
	assert_int_equal(trans_held(f->t), 0);
	/* released: a small change goes out at once again */
	f->devs[60].compliant = TRI_FALSE;
	assert_int_equal(cycle(f, 4, 100, true), 1);
}

static void test_guard_small_lab(void **state)
{
	struct fix *f = *state;

	start(f);
	assert_int_equal(cycle(f, 1, 3, true), 0);
	f->devs[0].compliant = TRI_FALSE;
	f->devs[1].compliant = TRI_FALSE;
	assert_int_equal(cycle(f, 2, 3, true), 2); /* 67 % of 3 devices: under guard_min */
	assert_int_equal(trans_held(f->t), 0);
}

static void test_held_survive_restart(void **state)
{
	struct fix *f = *state;
	size_t n = 0;

	start(f);
	assert_int_equal(cycle(f, 1, 50, true), 0);
	for (size_t i = 0; i < 15; i++)
		f->devs[i].compliant = TRI_FALSE;
	assert_int_equal(cycle(f, 2, 50, true), 0);
	start(f); /* restart */
	assert_int_equal(trans_held(f->t), 15);
	assert_int_equal(cycle(f, 3, 50, true), 0); /* nothing new, and the held ones stay */
	assert_int_equal(trans_held(f->t), 15);
	assert_int_equal(trans_release(f->t, &n), MDM_OK);
	assert_int_equal(n, 15);
	assert_int_equal(f->nev, 15);
	assert_non_null(find_ev(f, "00505600000E@2"));
	start(f);
	assert_int_equal(trans_held(f->t), 0);
}

static void test_persistence(void **state)
{
	struct fix *f = *state;
	char path[128];
	size_t dropped = 0;
	FILE *fp;

	start(f);
	f->devs[7].compliant = TRI_FALSE;
	f->devs[8].registered = TRI_UNSET;
	f->devs[9].mac = NULL;
	f->devs[9].key = "guid:guid-9";
	assert_int_equal(cycle(f, 1, 20, true), 0);
	start(f); /* restart with the same data: no storm */
	assert_int_equal(cycle(f, 2, 20, true), 0);
	/* nor a missed change */
	f->devs[7].compliant = TRI_TRUE;
	assert_int_equal(cycle(f, 3, 20, true), 1);
	start(f);
	f->devs[9].compliant = TRI_FALSE;
	assert_int_equal(cycle(f, 4, 20, true), 1);
	assert_string_equal(f->ev[1].id, "guid:guid-9@4");
	assert_string_equal(f->ev[1].mac, "");
	/* a torn last line is dropped and counted; the rest loads */
	snprintf(path, sizeof(path), "%s/%s", f->dir, TRANS_FILE);
	fp = fopen(path, "a");
	assert_non_null(fp);
	fputs("{\"key\":\"005056000099\",\"mac\":\"0050", fp);
	fclose(fp);
	trans_destroy(f->t);
	f->t = trans_create(&f->cfg, f->dir, &(struct transition_sink){on_emit, f});
	assert_non_null(f->t);
	assert_int_equal(trans_load(f->t, &dropped), MDM_OK);
	assert_int_equal(dropped, 1);
	assert_int_equal(cycle(f, 5, 20, true), 0);
	/* a file of garbage: everything dropped, start anyway, no events (no previous state) */
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("garbage\n{\"key\":1}\n", fp);
	fclose(fp);
	trans_destroy(f->t);
	f->t = trans_create(&f->cfg, f->dir, &(struct transition_sink){on_emit, f});
	assert_int_equal(trans_load(f->t, &dropped), MDM_OK);
	assert_int_equal(dropped, 2);
	f->devs[0].compliant = TRI_FALSE;
	assert_int_equal(cycle(f, 6, 20, true), 0);
}

static void test_block(void **state)
{
	struct fix *f = *state;

	start(f);
	assert_int_equal(cycle(f, 1, 20, true), 0);
	assert_int_equal(trans_block(f->t, "guid-3", true, 9), MDM_OK);
	assert_int_equal(f->nev, 1);
	assert_string_equal(f->ev[0].to, "blocked");
	assert_string_equal(f->ev[0].mac, "005056000003");
	assert_int_equal(strncmp(f->ev[0].id, "005056000003@block:", 19), 0);
	assert_int_equal(f->ev[0].epoch, 9);
	assert_int_equal(trans_block(f->t, "AABBCCDDEEFF", false, 9), MDM_OK);
	assert_string_equal(f->ev[1].to, "unblocked");
	assert_string_equal(f->ev[1].mac, "AABBCCDDEEFF");
	assert_int_equal(trans_block(f->t, "", true, 9), MDM_ERR_INVALID);
	/* not subject to the guard: hold a batch, block still goes out */
	for (size_t i = 0; i < 10; i++)
		f->devs[i].compliant = TRI_FALSE;
	assert_int_equal(cycle(f, 2, 20, true), 0);
	assert_int_equal(trans_block(f->t, "005056000010", true, 9), MDM_OK);
	assert_int_equal(f->nev, 3);
}

#define BIG 100000

static void test_memory_100k(void **state)
{
	struct fix *f = *state;
	struct trans_dev *devs = calloc(BIG, sizeof(*devs));
	char(*keys)[16] = calloc(BIG, 16), (*guids)[40] = calloc(BIG, 40);
	struct mallinfo2 before, after;
	size_t per, used, ntrans = 0;

	assert_non_null(devs);
	assert_non_null(keys);
	assert_non_null(guids);
	for (size_t i = 0; i < BIG; i++) {
		snprintf(keys[i], 16, "0050%08zX", i);
		snprintf(guids[i], 40, "6f1c2a4e-0000-4000-8000-%012zx", i);
		devs[i] = (struct trans_dev){keys[i],  keys[i],	 guids[i],  "intune",
					     TRI_TRUE, TRI_TRUE, TRI_FALSE, false};
	}
	before = mallinfo2();
	start(f);
	assert_int_equal(trans_cycle(f->t, 1, devs, BIG, true, 0, &ntrans), MDM_OK);
	assert_int_equal(trans_cycle(f->t, 2, devs, BIG, true, 0, &ntrans), MDM_OK);
	assert_int_equal(ntrans, 0);
	after = mallinfo2();
	per = trans_memory(f->t) / BIG;
	/* malloc's own count (heap plus mmap'd blocks) cross-checks the module's */
	used = (after.uordblks + after.hblkhd) - (before.uordblks + before.hblkhd);
	print_message("trans: %zu bytes/device counted, %zu by malloc\n", per, used / BIG);
	assert_true(per < 200);
#if !defined(__SANITIZE_ADDRESS__)
	/* ASan's allocator is not the one mallinfo2 reports on */
	assert_true(used / BIG < 200);
	assert_true(used / BIG + 16 >= per); /* the counter is not an under-estimate */
#endif
	/* and it reloads whole */
	start(f);
	assert_int_equal(trans_cycle(f->t, 3, devs, BIG, true, 0, &ntrans), MDM_OK);
	assert_int_equal(ntrans, 0);
	free(devs);
	free(keys);
	free(guids);
}

/* The config keys (the "reconciler" section): defaults, values, and refusals naming the key. */
#define CFG_BASE                                                                                   \
	"{\"listen\": {\"cert_file\": \"c.pem\", \"key_file\": \"k.pem\"}, \"accounts\": "         \
	"[{\"user\": \"a\", \"password_hash\": \"$scrypt$x\", \"roles\": [\"admin\"]}], "          \
	"\"adapters\": [{\"name\": \"inv\", \"type\": \"inventory\", \"file\": \"i.json\"}]"

static void cfg_load(const char *json, struct config *c, enum mdm_err want, const char *why_part)
{
	char why[512] = "";

	assert_int_equal(config_load_mem("t.json", json, strlen(json), c, why, sizeof(why)), want);
	if (why_part)
		assert_non_null(strstr(why, why_part));
}

static void test_config_keys(void **state)
{
	struct config *c = calloc(1, sizeof(*c));

	(void)state;
	assert_non_null(c);
	cfg_load(CFG_BASE "}", c, MDM_OK, NULL);
	assert_true(c->reconciler.coa_on_compliant);
	assert_false(c->reconciler.unregistered_disconnect);
	assert_true(c->reconciler.guard_share > 0.1999 && c->reconciler.guard_share < 0.2001);
	assert_int_equal(c->reconciler.guard_min, 10);
	cfg_load(CFG_BASE
		 ", \"reconciler\": {\"coa_on_compliant\": false, \"unregistered_action\": "
		 "\"disconnect\", \"guard_share\": 0.5, \"guard_min\": 3}}",
		 c, MDM_OK, NULL);
	assert_false(c->reconciler.coa_on_compliant);
	assert_true(c->reconciler.unregistered_disconnect);
	assert_true(c->reconciler.guard_share == 0.5);
	assert_int_equal(c->reconciler.guard_min, 3);
	cfg_load(CFG_BASE ", \"reconciler\": {\"guard_share\": 1.5}}", c, MDM_ERR_CONFIG,
		 "t.json: reconciler.guard_share:");
	cfg_load(CFG_BASE ", \"reconciler\": {\"unregistered_action\": \"wipe\"}}", c,
		 MDM_ERR_CONFIG, "reconciler.unregistered_action");
	cfg_load(CFG_BASE ", \"reconciler\": {\"coa_on_compliant\": 1}}", c, MDM_ERR_CONFIG,
		 "reconciler.coa_on_compliant");
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_each_kind, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_disconnect_and_compliant_off, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unset_stale_first_sight, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unset_then_reported, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_absence, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_guard_holds_and_releases, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_guard_small_lab, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_held_survive_restart, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_persistence, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_block, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_memory_100k, setup, teardown),
	    cmocka_unit_test(test_config_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
