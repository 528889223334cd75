#include "unit.h"

#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../core/buf.h"
#include "../../core/clock.h"
#include "../../gateway/actions/journal.h"

#define HASH_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

struct fix {
	char top[64];	/* the mkdtemp directory */
	char dir[128];	/* top/state: the journal's, created by journal_open */
	char file[192]; /* dir/actions.jsonl */
	char why[256];
};

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->top, sizeof(f->top), "/tmp/test_journal.XXXXXX");
	assert_non_null(mkdtemp(f->top));
	snprintf(f->dir, sizeof(f->dir), "%s/state", f->top);
	snprintf(f->file, sizeof(f->file), "%s/%s", f->dir, JOURNAL_FILE);
	*state = f;
	return 0;
}

static void rm_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	char p[512];

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' && (!e->d_name[1] || e->d_name[1] == '.'))
			continue;
		snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
		if (unlink(p) != 0)
			rm_dir(p);
	}
	closedir(d);
	rmdir(path);
}

static int teardown(void **state)
{
	struct fix *f = *state;

	rm_dir(f->top);
	free(f);
	return 0;
}

static struct journal *open_j(struct fix *f, const struct journal_cfg *cfg)
{
	struct journal *j = NULL;

	assert_int_equal(journal_open(f->dir, cfg, &j, f->why, sizeof(f->why)), MDM_OK);
	assert_non_null(j);
	return j;
}

static struct journal_intent req(const char *device, const char *key)
{
	struct journal_intent in = {
	    .user = "admin",
	    .addr = "192.0.2.7",
	    .action = ACTION_CORPORATE_WIPE,
	    .device = device,
	    .mdm = "intune",
	    .vendor_id = "vid-1",
	    .key = key,
	    .key_hash = HASH_A,
	};
	return in;
}

/* An intent that must succeed; its id in id. */
static void intent_ok(struct journal *j, const char *device, const char *key,
		      char id[JOURNAL_ID_LEN + 1])
{
	struct journal_intent in = req(device, key);
	char why[256] = "";

	assert_int_equal(journal_intent(j, &in, id, NULL, why, sizeof(why)), MDM_OK);
	assert_int_equal(strlen(id), JOURNAL_ID_LEN);
}

static enum journal_state state_of(struct journal *j, const char *id)
{
	struct journal_action a;

	assert_int_equal(journal_get(j, id, &a), MDM_OK);
	return a.state;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	struct buf b;
	char chunk[4096];
	size_t n;

	assert_non_null(fp);
	buf_init(&b, 1 << 26);
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		assert_int_equal(buf_add(&b, chunk, n), MDM_OK);
	fclose(fp);
	*len = b.len;
	return b.len ? buf_take(&b, NULL) : strdup("");
}

static void append_raw(const char *path, const char *s)
{
	FILE *fp = fopen(path, "ab");

	assert_non_null(fp);
	assert_int_equal(fwrite(s, 1, strlen(s), fp), strlen(s));
	fclose(fp);
}

/* Every line of path parses as a JSON object; their number. */
static size_t parsed_lines(const char *path)
{
	size_t len, n = 0;
	char *mem = slurp(path, &len), *p = mem, *nl;

	while ((nl = memchr(p, '\n', len - (size_t)(p - mem)))) {
		json_t *o = json_loadb(p, (size_t)(nl - p), 0, NULL);

		assert_non_null(o);
		assert_true(json_is_object(o));
		json_decref(o);
		n++;
		p = nl + 1;
	}
	assert_true(p == mem + len); /* ends in '\n' */
	free(mem);
	return n;
}

static void test_modes(void **state)
{
	struct fix *f = *state;
	struct journal *j = open_j(f, NULL);
	struct stat sb;
	char longdir[4093]; /* fits a 4096-byte path buffer, "/actions.jsonl" does not */

	assert_int_equal(stat(f->dir, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	assert_int_equal(stat(f->file, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	journal_close(j);

	/* An existing file readable by others is tightened. */
	assert_int_equal(chmod(f->file, 0644), 0);
	j = open_j(f, NULL);
	assert_int_equal(stat(f->file, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	journal_close(j);

	/* A directory name with no room for the file names is refused up front. */
	memset(longdir, 'd', sizeof(longdir) - 1);
	longdir[0] = '/';
	longdir[sizeof(longdir) - 1] = '\0';
	assert_int_equal(journal_open(longdir, NULL, &j, f->why, sizeof(f->why)), MDM_ERR_TOOBIG);
	assert_null(j);
}

static void test_intent_on_disk(void **state)
{
	struct fix *f = *state;
	struct journal *j = open_j(f, NULL);
	char id[JOURNAL_ID_LEN + 1], *mem;
	size_t len;
	json_t *o;

	intent_ok(j, "0026B424FEB4", "k1", id);
	/* Read back before anything else happens: the record must already be there. */
	mem = slurp(f->file, &len);
	assert_true(len > 0 && mem[len - 1] == '\n');
	o = json_loadb(mem, len - 1, 0, NULL);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "t")), "intent");
	assert_string_equal(json_string_value(json_object_get(o, "id")), id);
	assert_string_equal(json_string_value(json_object_get(o, "device")), "0026B424FEB4");
	assert_string_equal(json_string_value(json_object_get(o, "action")), "corporate_wipe");
	assert_string_equal(json_string_value(json_object_get(o, "mdm")), "intune");
	assert_string_equal(json_string_value(json_object_get(o, "vendor_id")), "vid-1");
	assert_string_equal(json_string_value(json_object_get(o, "key")), "k1");
	assert_string_equal(json_string_value(json_object_get(o, "key_hash")), HASH_A);
	assert_string_equal(json_string_value(json_object_get(o, "user")), "admin");
	assert_string_equal(json_string_value(json_object_get(o, "addr")), "192.0.2.7");
	assert_true(json_integer_value(json_object_get(o, "at")) > 0);
	json_decref(o);
	free(mem);
	assert_int_equal(state_of(j, id), JOURNAL_PENDING);
	journal_close(j);
}

static void test_reopen(void **state)
{
	struct fix *f = *state;
	struct journal *j = open_j(f, NULL);
	char a[JOURNAL_ID_LEN + 1], b[JOURNAL_ID_LEN + 1], c[JOURNAL_ID_LEN + 1];
	char d[JOURNAL_ID_LEN + 1], e[JOURNAL_ID_LEN + 1], x[JOURNAL_ID_LEN + 1];
	struct journal_intent in = req("dev-d", "kd");
	struct journal_action act;
	struct journal_stats st;

	intent_ok(j, "dev-a", "ka", a);
	assert_int_equal(journal_outcome(j, a, JOURNAL_SENT, "ok", f->why, sizeof(f->why)), MDM_OK);
	intent_ok(j, "dev-b", "kb", b);
	assert_int_equal(journal_outcome(j, b, JOURNAL_REJECTED, "no", f->why, sizeof(f->why)),
			 MDM_OK);
	intent_ok(j, "dev-c", "kc", c);
	assert_int_equal(journal_outcome(j, c, JOURNAL_FAILED, NULL, f->why, sizeof(f->why)),
			 MDM_OK);
	assert_int_equal(
	    journal_refused(j, &in, "personal device", d, NULL, f->why, sizeof(f->why)), MDM_OK);
	intent_ok(j, "dev-e", "ke", e); /* the crash comes before its outcome */
	journal_close(j);

	j = open_j(f, NULL);
	journal_get_stats(j, &st);
	assert_int_equal(st.records, 5);
	assert_int_equal(st.unknown, 1);
	assert_int_equal(st.bad_lines, 0);
	assert_int_equal(st.torn, 0);
	assert_int_equal(state_of(j, a), JOURNAL_SENT);
	assert_int_equal(state_of(j, b), JOURNAL_REJECTED);
	assert_int_equal(state_of(j, c), JOURNAL_FAILED);
	assert_int_equal(state_of(j, d), JOURNAL_REFUSED);
	assert_int_equal(state_of(j, e), JOURNAL_UNKNOWN);
	assert_int_equal(journal_get(j, a, &act), MDM_OK);
	assert_string_equal(act.detail, "ok");
	assert_string_equal(act.device, "dev-a");
	assert_int_equal(journal_get(j, d, &act), MDM_OK);
	assert_string_equal(act.detail, "personal device");
	assert_int_equal(journal_find_key(j, "kb", &act), MDM_OK);
	assert_string_equal(act.id, b);
	assert_int_equal(journal_find_key(j, "kd", &act), MDM_OK);
	assert_string_equal(act.id, d);
	assert_int_equal(journal_find_key(j, "nope", &act), MDM_ERR_NOTFOUND);

	/* The unknown action holds its device, and is never settled by an outcome. */
	assert_int_equal(journal_device_open(j, "dev-e", &act), MDM_OK);
	assert_string_equal(act.id, e);
	in = req("dev-e", "ke2");
	assert_int_equal(journal_intent(j, &in, x, NULL, f->why, sizeof(f->why)), MDM_ERR_BUSY);
	assert_string_equal(x, e);
	assert_int_equal(journal_outcome(j, e, JOURNAL_SENT, "", f->why, sizeof(f->why)),
			 MDM_ERR_INVALID);
	/* A finished action does not. */
	intent_ok(j, "dev-a", "ka2", x);

	assert_int_equal(journal_resolve(j, e, JOURNAL_RESOLVED_NOT_SENT, "checked console",
					 "operator", f->why, sizeof(f->why)),
			 MDM_OK);
	assert_int_equal(journal_device_open(j, "dev-e", &act), MDM_ERR_NOTFOUND);
	intent_ok(j, "dev-e", "ke3", x);
	journal_close(j);

	j = open_j(f, NULL);
	assert_int_equal(journal_get(j, e, &act), MDM_OK);
	assert_int_equal(act.state, JOURNAL_RESOLVED_NOT_SENT);
	assert_string_equal(act.note, "checked console");
	assert_string_equal(act.resolved_by, "operator");
	/* ka2 and ke3 were never finished: unknown now, and their devices are held again. */
	assert_int_equal(journal_device_open(j, "dev-e", &act), MDM_OK);
	assert_string_equal(act.id, x);
	journal_get_stats(j, &st);
	assert_int_equal(st.unknown, 2);
	journal_close(j);
}

static void test_state_rules(void **state)
{
	struct fix *f = *state;
	struct journal *j = open_j(f, NULL);
	char a[JOURNAL_ID_LEN + 1];

	intent_ok(j, "dev", "k", a);
	assert_int_equal(journal_outcome(j, "0123", JOURNAL_SENT, "", f->why, sizeof(f->why)),
			 MDM_ERR_NOTFOUND);
	assert_int_equal(journal_outcome(j, a, JOURNAL_UNKNOWN, "", f->why, sizeof(f->why)),
			 MDM_ERR_INVALID);
	/* Pending is this process's business: an operator cannot resolve it. */
	assert_int_equal(
	    journal_resolve(j, a, JOURNAL_RESOLVED_SENT, "", "op", f->why, sizeof(f->why)),
	    MDM_ERR_BUSY);
	assert_int_equal(journal_outcome(j, a, JOURNAL_SENT, "", f->why, sizeof(f->why)), MDM_OK);
	assert_int_equal(journal_outcome(j, a, JOURNAL_FAILED, "", f->why, sizeof(f->why)),
			 MDM_ERR_INVALID);
	assert_int_equal(
	    journal_resolve(j, a, JOURNAL_RESOLVED_SENT, "", "op", f->why, sizeof(f->why)),
	    MDM_ERR_INVALID);
	assert_int_equal(journal_resolve(j, a, JOURNAL_SENT, "", "op", f->why, sizeof(f->why)),
			 MDM_ERR_INVALID);
	assert_int_equal(state_of(j, a), JOURNAL_SENT);
	assert_int_equal(parsed_lines(f->file), 2);
	journal_close(j);
}

static void test_busy_and_duplicate(void **state)
{
	struct fix *f = *state;
	struct journal *j = open_j(f, NULL);
	char a[JOURNAL_ID_LEN + 1], x[JOURNAL_ID_LEN + 1];
	struct journal_intent in = req("dev", "k2");
	struct journal_action first;

	intent_ok(j, "dev", "k1", a);
	assert_int_equal(journal_intent(j, &in, x, NULL, f->why, sizeof(f->why)), MDM_ERR_BUSY);
	assert_string_equal(x, a);
	/* The same key on another device is a repeat of the first request. */
	in = req("other", "k1");
	memset(&first, 0, sizeof(first));
	assert_int_equal(journal_intent(j, &in, x, &first, f->why, sizeof(f->why)),
			 MDM_ERR_FORBIDDEN);
	assert_string_equal(x, a);
	assert_string_equal(first.id, a);
	assert_int_equal(first.state, JOURNAL_PENDING);
	assert_string_equal(first.key_hash, HASH_A);
	assert_int_equal(journal_refused(j, &in, "r", x, NULL, f->why, sizeof(f->why)),
			 MDM_ERR_FORBIDDEN);
	assert_string_equal(x, a);
	/* After the outcome, the key still answers the first action. */
	assert_int_equal(journal_outcome(j, a, JOURNAL_SENT, "", f->why, sizeof(f->why)), MDM_OK);
	assert_int_equal(journal_intent(j, &in, x, &first, f->why, sizeof(f->why)),
			 MDM_ERR_FORBIDDEN);
	assert_int_equal(first.state, JOURNAL_SENT);
	assert_int_equal(parsed_lines(f->file), 2); /* the refused attempts wrote nothing */
	journal_close(j);
}

static void test_refusal(void **state)
{
	struct fix *f = *state;
	struct journal *j = open_j(f, NULL);
	char r[JOURNAL_ID_LEN + 1], r2[JOURNAL_ID_LEN + 1], a[JOURNAL_ID_LEN + 1];
	struct journal_intent in = req("dev", "kr");
	struct journal_action act;

	in.action = ACTION_FULL_WIPE;
	assert_int_equal(
	    journal_refused(j, &in, "ownership unknown", r, NULL, f->why, sizeof(f->why)), MDM_OK);
	in.key = ""; /* refused before any key applied */
	assert_int_equal(journal_refused(j, &in, "no MDM", r2, NULL, f->why, sizeof(f->why)),
			 MDM_OK);
	assert_string_not_equal(r, r2);
	/* A refusal holds no device. */
	intent_ok(j, "dev", "ka", a);
	journal_close(j);

	j = open_j(f, NULL);
	assert_int_equal(journal_get(j, r, &act), MDM_OK);
	assert_int_equal(act.state, JOURNAL_REFUSED);
	assert_int_equal(act.action, ACTION_FULL_WIPE);
	assert_string_equal(act.detail, "ownership unknown");
	assert_int_equal(state_of(j, r2), JOURNAL_REFUSED);
	assert_int_equal(state_of(j, a), JOURNAL_UNKNOWN);
	journal_close(j);
}

static void test_torn_last_line(void **state)
{
	struct fix *f = *state;
	struct journal *j = open_j(f, NULL);
	char a[JOURNAL_ID_LEN + 1], b[JOURNAL_ID_LEN + 1], *mem, *p;
	struct journal_stats st;
	size_t len;

	intent_ok(j, "dev-a", "ka", a);
	assert_int_equal(journal_outcome(j, a, JOURNAL_SENT, "", f->why, sizeof(f->why)), MDM_OK);
	journal_close(j);
	append_raw(f->file, "{\"t\":\"intent\",\"id\":\"ab");

	j = open_j(f, NULL);
	journal_get_stats(j, &st);
	assert_int_equal(st.torn, 1);
	assert_int_equal(st.bad_lines, 0);
	assert_int_equal(st.records, 1);
	intent_ok(j, "dev-b", "kb", b);
	journal_close(j);

	/* The new record starts on its own line, right after the torn one. */
	mem = slurp(f->file, &len);
	p = strstr(mem, "\"id\":\"ab\n{");
	assert_non_null(p);
	assert_non_null(strstr(p, b));
	free(mem);

	/* Now the torn line is in the middle: damage, skipped and counted. */
	j = open_j(f, NULL);
	journal_get_stats(j, &st);
	assert_int_equal(st.torn, 0);
	assert_int_equal(st.bad_lines, 1);
	assert_int_equal(st.records, 2);
	assert_int_equal(state_of(j, a), JOURNAL_SENT);
	assert_int_equal(state_of(j, b), JOURNAL_UNKNOWN);
	journal_close(j);
}

static void test_garbage_middle(void **state)
{
	struct fix *f = *state;
	struct journal *j = open_j(f, NULL);
	char a[JOURNAL_ID_LEN + 1], b[JOURNAL_ID_LEN + 1];
	struct journal_stats st;

	intent_ok(j, "dev-a", "ka", a);
	assert_int_equal(journal_outcome(j, a, JOURNAL_FAILED, "x", f->why, sizeof(f->why)),
			 MDM_OK);
	journal_close(j);
	append_raw(f->file, "garbage\n{\"t\":\"what\"}\n{\"t\":\"intent\",\"id\":\"x\"}\n[1]\n\n");
	j = open_j(f, NULL);
	intent_ok(j, "dev-b", "kb", b);
	journal_close(j);

	j = open_j(f, NULL);
	journal_get_stats(j, &st);
	assert_int_equal(st.bad_lines, 4); /* the empty line is not a record, nor damage */
	assert_int_equal(st.torn, 0);
	assert_int_equal(st.records, 2);
	assert_int_equal(state_of(j, a), JOURNAL_FAILED);
	assert_int_equal(state_of(j, b), JOURNAL_UNKNOWN);
	journal_close(j);
}

static bool exists(const struct fix *f, int n)
{
	char p[256];

	snprintf(p, sizeof(p), "%s.%d", f->file, n);
	return access(p, F_OK) == 0;
}

struct id_set {
	char ids[256][JOURNAL_ID_LEN + 1];
	size_t len;
};

/* Collects ids, failing on a repeat. */
static enum mdm_err distinct_ids(const struct journal_action *a, void *arg)
{
	struct id_set *s = arg;

	for (size_t i = 0; i < s->len; i++)
		assert_string_not_equal(s->ids[i], a->id);
	assert_true(s->len < 256);
	memcpy(s->ids[s->len++], a->id, JOURNAL_ID_LEN + 1);
	return MDM_OK;
}

static void test_rotation(void **state)
{
	struct fix *f = *state;
	struct journal_cfg cfg = {.max_bytes = 2048, .keep = 2, .key_window_ms = 1500};
	struct journal *j = open_j(f, &cfg);
	char open_id[JOURNAL_ID_LEN + 1], old[JOURNAL_ID_LEN + 1], id[JOURNAL_ID_LEN + 1];
	char dev[32], key[32];
	struct journal_action act;
	struct timespec nap = {.tv_sec = 1, .tv_nsec = 600 * 1000 * 1000};
	struct stat sb;
	struct journal_stats st;
	struct id_set ids;

	intent_ok(j, "dev-open", "k-open", open_id); /* stays pending throughout */
	intent_ok(j, "dev-old", "k-old", old);
	assert_int_equal(journal_outcome(j, old, JOURNAL_SENT, "", f->why, sizeof(f->why)), MDM_OK);
	nanosleep(&nap, NULL); /* k-old leaves the key window */
	/* ~600 bytes an action, 2 KiB a file, 2 kept: 40 actions drop the first files. */
	for (int i = 0; i < 40; i++) {
		snprintf(dev, sizeof(dev), "dev-%d", i);
		snprintf(key, sizeof(key), "k-%d", i);
		intent_ok(j, dev, key, id);
		assert_int_equal(
		    journal_outcome(j, id, JOURNAL_SENT, "done", f->why, sizeof(f->why)), MDM_OK);
	}
	journal_close(j);
	assert_true(exists(f, 1));
	assert_true(exists(f, 2));
	assert_false(exists(f, 3));
	assert_int_equal(stat(f->file, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);

	j = open_j(f, &cfg);
	/* Copies made at rotation are the same actions, not new ones. */
	journal_get_stats(j, &st);
	assert_int_equal(st.unknown, 1);
	assert_int_equal(st.bad_lines, 0);
	ids.len = 0;
	assert_int_equal(journal_list(j, NULL, -1, distinct_ids, &ids), MDM_OK);
	assert_int_equal(ids.len, st.records);
	assert_int_equal(journal_get(j, open_id, &act), MDM_OK);
	assert_int_equal(act.state, JOURNAL_UNKNOWN);
	assert_int_equal(journal_device_open(j, "dev-open", &act), MDM_OK);
	assert_int_equal(journal_find_key(j, "k-open", &act), MDM_OK);
	/* Recent keys survive, with their outcome. */
	assert_int_equal(journal_find_key(j, "k-0", &act), MDM_OK);
	assert_int_equal(act.state, JOURNAL_SENT);
	assert_string_equal(act.detail, "done");
	assert_int_equal(journal_find_key(j, "k-39", &act), MDM_OK);
	/* The old finished action went with its file. */
	assert_int_equal(journal_get(j, old, &act), MDM_ERR_NOTFOUND);
	assert_int_equal(journal_find_key(j, "k-old", &act), MDM_ERR_NOTFOUND);
	journal_close(j);
	assert_true(parsed_lines(f->file) > 0);
}

/* Writes n finished actions; ids in ids[first...]. */
static void finished(struct fix *f, struct journal *j, int first, int n,
		     char ids[][JOURNAL_ID_LEN + 1])
{
	char dev[32], key[32];

	for (int i = first; i < first + n; i++) {
		snprintf(dev, sizeof(dev), "dev-%d", i);
		snprintf(key, sizeof(key), "k-%d", i);
		intent_ok(j, dev, key, ids[i]);
		assert_int_equal(
		    journal_outcome(j, ids[i], JOURNAL_SENT, "", f->why, sizeof(f->why)), MDM_OK);
	}
}

static void test_rotation_fails(void **state)
{
	struct fix *f = *state;
	struct journal_cfg cfg = {.max_bytes = 1024, .keep = 2};
	struct journal *j = open_j(f, &cfg);
	char ids[20][JOURNAL_ID_LEN + 1], blocker[256];
	struct journal_stats st;
	struct stat sb;

	/* A directory where the new file must go makes every rotation fail. */
	snprintf(blocker, sizeof(blocker), "%s.new", f->file);
	assert_int_equal(mkdir(blocker, 0700), 0);
	finished(f, j, 0, 10, ids); /* appends go on regardless */
	assert_false(exists(f, 1));
	assert_int_equal(stat(f->file, &sb), 0);
	assert_true(sb.st_size > 3 * 1024);
	assert_int_equal(rmdir(blocker), 0);
	finished(f, j, 10, 10, ids); /* and rotation resumes */
	assert_true(exists(f, 1));
	journal_close(j);

	j = open_j(f, &cfg);
	journal_get_stats(j, &st);
	assert_int_equal(st.records, 20);
	assert_int_equal(st.bad_lines, 0);
	for (int i = 0; i < 20; i++)
		assert_int_equal(state_of(j, ids[i]), JOURNAL_SENT);
	journal_close(j);
}

/* Waits, boundedly, for the wall clock to pass ms. */
static void wait_wall_past(int64_t ms)
{
	struct timespec nap = {.tv_sec = 0, .tv_nsec = 5 * 1000 * 1000};

	for (int i = 0; i < 1000 && clock_wall_ms() <= ms; i++)
		nanosleep(&nap, NULL);
	assert_true(clock_wall_ms() > ms);
}

/*
 * An unknown action is carried over rotations like a pending one: long after its key left the
 * window and its own file was dropped, it still holds its device, or a retry would wipe again.
 */
static void test_unknown_carried(void **state)
{
	struct fix *f = *state;
	struct journal_cfg cfg = {.max_bytes = 1024, .keep = 2, .key_window_ms = 50};
	struct journal *j = open_j(f, &cfg);
	char u[JOURNAL_ID_LEN + 1], x[JOURNAL_ID_LEN + 1], ids[30][JOURNAL_ID_LEN + 1];
	struct journal_intent in = req("dev-u", "k-u2");
	struct journal_action act;
	struct stat sb;
	int first;

	intent_ok(j, "dev-u", "k-u", u);
	journal_close(j); /* the crash comes before its outcome */
	j = open_j(f, &cfg);
	assert_int_equal(journal_get(j, u, &act), MDM_OK);
	assert_int_equal(act.state, JOURNAL_UNKNOWN);
	/* The file its intent is in, held open to learn when rotation drops it. */
	first = open(f->file, O_RDONLY);
	assert_true(first >= 0);
	wait_wall_past(act.at_ms + cfg.key_window_ms); /* its key no longer keeps it */
	finished(f, j, 0, 30, ids);
	journal_close(j);
	assert_int_equal(fstat(first, &sb), 0);
	assert_int_equal(sb.st_nlink, 0); /* rotated more than keep times: gone */
	close(first);

	j = open_j(f, &cfg);
	assert_int_equal(journal_get(j, u, &act), MDM_OK);
	assert_int_equal(act.state, JOURNAL_UNKNOWN);
	assert_int_equal(journal_device_open(j, "dev-u", &act), MDM_OK);
	assert_string_equal(act.id, u);
	assert_int_equal(journal_intent(j, &in, x, NULL, f->why, sizeof(f->why)), MDM_ERR_BUSY);
	assert_string_equal(x, u);
	journal_close(j);
}

/* After a rotation whose carry alone exceeds max_bytes, the next appends do not rotate again. */
static void test_carry_not_counted(void **state)
{
	struct fix *f = *state;
	struct journal_cfg cfg = {.max_bytes = 1024, .keep = 3}; /* every key recent: all carried */
	struct journal *j = open_j(f, &cfg);
	char ids[20][JOURNAL_ID_LEN + 1];
	struct stat before, after;
	int n = 0;

	while (!exists(f, 1) && n < 20)
		finished(f, j, n++, 1, ids);
	assert_true(exists(f, 1));
	assert_int_equal(stat(f->file, &before), 0);
	assert_true(before.st_size >= cfg.max_bytes);
	finished(f, j, n, 1, ids);
	assert_int_equal(stat(f->file, &after), 0);
	assert_true(after.st_ino == before.st_ino);
	assert_true(after.st_size > before.st_size);
	assert_false(exists(f, 2));
	journal_close(j);
}

/*
 * A full disk, for real: RLIMIT_FSIZE 16 bytes past the file's end cuts the intent's write
 * short, then fails it with EFBIG (root is not exempt, as it is from file modes). SIGXFSZ is
 * ignored meanwhile, or the kernel's signal would end the test.
 */
static void test_write_fails(void **state)
{
	struct fix *f = *state;
	struct journal *j = open_j(f, NULL);
	char a[JOURNAL_ID_LEN + 1], b[JOURNAL_ID_LEN + 1], x[JOURNAL_ID_LEN + 1];
	struct journal_intent in = req("dev-b", "kb");
	struct journal_action act;
	struct journal_stats st;
	struct rlimit old, lim;
	struct sigaction ign = {.sa_handler = SIG_IGN}, oldsa;
	struct stat sb;
	enum mdm_err err;

	intent_ok(j, "dev-a", "ka", a);
	assert_int_equal(journal_outcome(j, a, JOURNAL_SENT, "", f->why, sizeof(f->why)), MDM_OK);
	assert_int_equal(stat(f->file, &sb), 0);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = (rlim_t)sb.st_size + 16;
	assert_int_equal(sigaction(SIGXFSZ, &ign, &oldsa), 0);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	err = journal_intent(j, &in, x, NULL, f->why, sizeof(f->why));
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	assert_int_equal(sigaction(SIGXFSZ, &oldsa, NULL), 0);
	assert_int_equal(err, MDM_ERR_IO);
	assert_int_equal(stat(f->file, &sb), 0);
	assert_int_equal(sb.st_size, (off_t)lim.rlim_cur); /* cut part way */
	/* Not recorded: neither the device nor the key is taken. */
	assert_int_equal(journal_device_open(j, "dev-b", &act), MDM_ERR_NOTFOUND);
	assert_int_equal(journal_find_key(j, "kb", &act), MDM_ERR_NOTFOUND);
	intent_ok(j, "dev-b", "kb", b);
	journal_close(j);

	/* The cut line was closed before the next record: one bad line, nothing glued. */
	j = open_j(f, NULL);
	journal_get_stats(j, &st);
	assert_int_equal(st.records, 2);
	assert_int_equal(st.bad_lines, 1);
	assert_int_equal(st.torn, 0);
	assert_int_equal(state_of(j, a), JOURNAL_SENT);
	assert_int_equal(state_of(j, b), JOURNAL_UNKNOWN);
	journal_close(j);
}

/* Appends an intent line by hand: valid, but for field k (NULL: none) set to n copies of 'x'. */
static void raw_intent(const char *path, int seq, const char *k, size_t n)
{
	char id[JOURNAL_ID_LEN + 1], dev[32], key[32], val[512], *line;
	json_t *o;

	assert_true(n < sizeof(val));
	snprintf(id, sizeof(id), "%032x", seq);
	snprintf(dev, sizeof(dev), "dev-%d", seq);
	snprintf(key, sizeof(key), "key-%d", seq);
	o = json_pack("{ss ss sI ss ss ss ss ss ss ss ss}", "t", "intent", "id", id, "at",
		      (json_int_t)1700000000000, "user", "admin", "addr", "192.0.2.7", "action",
		      "corporate_wipe", "device", dev, "mdm", "intune", "vendor_id", "v", "key",
		      key, "key_hash", "");
	assert_non_null(o);
	if (k) {
		memset(val, 'x', n);
		val[n] = '\0';
		assert_int_equal(json_object_set_new(o, k, json_string(val)), 0);
	}
	line = json_dumps(o, JSON_COMPACT);
	assert_non_null(line);
	append_raw(path, line);
	append_raw(path, "\n");
	free(line);
	json_decref(o);
}

/* Each field of a record read back is taken at its bound and refused one byte past it. */
static void test_load_bounds(void **state)
{
	struct fix *f = *state;
	struct journal *j = open_j(f, NULL);
	static const struct {
		const char *k;
		size_t max, off;
	} fields[] = {
	    {"id", JOURNAL_ID_LEN, offsetof(struct journal_action, id)},
	    {"user", JOURNAL_USER_MAX, offsetof(struct journal_action, user)},
	    {"addr", JOURNAL_ADDR_MAX, offsetof(struct journal_action, addr)},
	    {"device", JOURNAL_DEVICE_MAX, offsetof(struct journal_action, device)},
	    {"mdm", JOURNAL_MDM_MAX, offsetof(struct journal_action, mdm)},
	    {"vendor_id", JOURNAL_VENDOR_ID_MAX, offsetof(struct journal_action, vendor_id)},
	    {"key", JOURNAL_KEY_MAX, offsetof(struct journal_action, key)},
	    {"key_hash", JOURNAL_HASH_LEN, offsetof(struct journal_action, key_hash)},
	};
	const size_t nf = sizeof(fields) / sizeof(fields[0]);
	char id[JOURNAL_ID_LEN + 1], want[512];
	struct journal_action act;
	struct journal_stats st;

	journal_close(j);
	for (size_t i = 0; i < nf; i++) {
		raw_intent(f->file, (int)(2 * i), fields[i].k, fields[i].max);
		raw_intent(f->file, (int)(2 * i + 1), fields[i].k, fields[i].max + 1);
	}
	j = open_j(f, NULL);
	journal_get_stats(j, &st);
	assert_int_equal(st.records, nf);
	assert_int_equal(st.bad_lines, nf);
	for (size_t i = 0; i < nf; i++) {
		memset(want, 'x', fields[i].max);
		want[fields[i].max] = '\0';
		/* The record at the bound, found by its id (the id itself for the "id" line). */
		snprintf(id, sizeof(id), "%032x", (int)(2 * i));
		assert_int_equal(journal_get(j, i == 0 ? want : id, &act), MDM_OK);
		assert_string_equal((const char *)&act + fields[i].off, want);
	}
	journal_close(j);
}

struct worker {
	struct journal *j;
	int n;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	char dev[32], key[32], id[JOURNAL_ID_LEN + 1], why[256];

	for (int i = 0; i < 25; i++) {
		snprintf(dev, sizeof(dev), "dev-%d-%d", w->n, i);
		snprintf(key, sizeof(key), "key-%d-%d", w->n, i);
		struct journal_intent in = req(dev, key);

		if (journal_intent(w->j, &in, id, NULL, why, sizeof(why)) != MDM_OK)
			return (void *)1;
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct fix *f = *state;
	struct journal *j = open_j(f, NULL);
	struct worker w[4];
	pthread_t t[4];
	struct journal_stats st;
	void *rc;

	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){.j = j, .n = i};
		assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], &rc), 0);
		assert_null(rc);
	}
	journal_close(j);
	assert_int_equal(parsed_lines(f->file), 100);
	j = open_j(f, NULL);
	journal_get_stats(j, &st);
	assert_int_equal(st.records, 100);
	assert_int_equal(st.bad_lines, 0);
	journal_close(j);
}

static enum mdm_err collect(const struct journal_action *a, void *arg)
{
	struct buf *b = arg;

	return buf_addf(b, "%s,", a->device);
}

static void test_list(void **state)
{
	struct fix *f = *state;
	struct journal *j = open_j(f, NULL);
	char a[JOURNAL_ID_LEN + 1], b[JOURNAL_ID_LEN + 1], c[JOURNAL_ID_LEN + 1];
	struct buf out;

	intent_ok(j, "d1", "k1", a);
	intent_ok(j, "d2", "k2", b);
	assert_int_equal(journal_outcome(j, b, JOURNAL_SENT, "", f->why, sizeof(f->why)), MDM_OK);
	intent_ok(j, "d2", "k3", c);
	buf_init(&out, 1024);
	assert_int_equal(journal_list(j, NULL, -1, collect, &out), MDM_OK);
	assert_string_equal(buf_str(&out), "d1,d2,d2,");
	buf_reset(&out);
	assert_int_equal(journal_list(j, "d2", JOURNAL_PENDING, collect, &out), MDM_OK);
	assert_string_equal(buf_str(&out), "d2,");
	buf_reset(&out);
	assert_int_equal(journal_list(j, NULL, JOURNAL_SENT, collect, &out), MDM_OK);
	assert_string_equal(buf_str(&out), "d2,");
	buf_free(&out);
	journal_close(j);
}

static void test_strings(void **state)
{
	struct fix *f = *state;
	struct journal *j = open_j(f, NULL);
	char a[JOURNAL_ID_LEN + 1], x[JOURNAL_ID_LEN + 1], longdev[JOURNAL_DEVICE_MAX + 2];
	char longtext[3000];
	const char *odd = "a \"quoted\" \\ line\nbreak\ttab \x01 j\xc3\xbcrgen";
	struct journal_intent in = req("dev", "k\"1\n");
	struct journal_action act;

	in.user = odd;
	assert_int_equal(journal_intent(j, &in, a, NULL, f->why, sizeof(f->why)), MDM_OK);
	/* 510 bytes of 'x', then a 2-byte character straddling the 511-byte bound. */
	memset(longtext, 'x', sizeof(longtext));
	memcpy(longtext + JOURNAL_TEXT_MAX - 1, "\xc3\xbc", 2);
	longtext[sizeof(longtext) - 1] = '\0';
	assert_int_equal(journal_outcome(j, a, JOURNAL_FAILED, longtext, f->why, sizeof(f->why)),
			 MDM_OK);

	memset(longdev, 'd', sizeof(longdev) - 1);
	longdev[sizeof(longdev) - 1] = '\0';
	in = req(longdev, "k2");
	assert_int_equal(journal_intent(j, &in, x, NULL, f->why, sizeof(f->why)), MDM_ERR_TOOBIG);
	in = req("dev\xff", "k2");
	assert_int_equal(journal_intent(j, &in, x, NULL, f->why, sizeof(f->why)), MDM_ERR_INVALID);
	in = req("dev", "k2");
	in.key_hash = "ABC";
	assert_int_equal(journal_intent(j, &in, x, NULL, f->why, sizeof(f->why)), MDM_ERR_INVALID);
	in = req("", "k2");
	assert_int_equal(journal_intent(j, &in, x, NULL, f->why, sizeof(f->why)), MDM_ERR_INVALID);
	in = req("dev", "");
	assert_int_equal(journal_intent(j, &in, x, NULL, f->why, sizeof(f->why)), MDM_ERR_INVALID);
	in = req("dev", "k2");
	in.action = ACTION_COUNT;
	assert_int_equal(journal_intent(j, &in, x, NULL, f->why, sizeof(f->why)), MDM_ERR_INVALID);
	/* Bytes that are not UTF-8 in free text do not lose the record. */
	in = req("dev", "k3");
	assert_int_equal(journal_refused(j, &in, "bad \xff byte", x, NULL, f->why, sizeof(f->why)),
			 MDM_OK);
	journal_close(j);
	assert_int_equal(parsed_lines(f->file), 3); /* newlines inside stayed escaped */

	j = open_j(f, NULL);
	assert_int_equal(journal_get(j, a, &act), MDM_OK);
	assert_string_equal(act.user, odd);
	assert_string_equal(act.key, "k\"1\n");
	assert_int_equal(strlen(act.detail), JOURNAL_TEXT_MAX - 1); /* cut before the character */
	assert_int_equal(journal_get(j, x, &act), MDM_OK);
	assert_string_equal(act.detail, "bad ? byte");
	journal_close(j);
}

/* Every field at its longest round-trips through the compact in-memory record and the file. */
static void test_compact_records(void **state)
{
	struct fix *f = *state;
	struct journal *j = open_j(f, NULL);
	char user[JOURNAL_USER_MAX + 1], addr[JOURNAL_ADDR_MAX + 1], dev[JOURNAL_DEVICE_MAX + 1];
	char mdm[JOURNAL_MDM_MAX + 1], vid[JOURNAL_VENDOR_ID_MAX + 1], key[JOURNAL_KEY_MAX + 1];
	char text[JOURNAL_TEXT_MAX + 1], id[JOURNAL_ID_LEN + 1], r2[JOURNAL_ID_LEN + 1];
	struct journal_intent in;
	struct journal_action a, b;
	char *fill[] = {user, addr, dev, mdm, vid, key, text};
	size_t size[] = {sizeof(user), sizeof(addr), sizeof(dev), sizeof(mdm),
			 sizeof(vid),  sizeof(key),  sizeof(text)};

	for (int i = 0; i < 7; i++) {
		memset(fill[i], 'a' + i, size[i] - 1);
		fill[i][size[i] - 1] = '\0';
	}
	in = req(dev, key);
	in.user = user;
	in.addr = addr;
	in.mdm = mdm;
	in.vendor_id = vid;
	assert_int_equal(journal_intent(j, &in, id, NULL, f->why, sizeof(f->why)), MDM_OK);
	in = req("short", "k-short");
	in.mdm = "";
	assert_int_equal(journal_refused(j, &in, text, r2, NULL, f->why, sizeof(f->why)), MDM_OK);
	journal_close(j);
	j = open_j(f, NULL); /* the intent is unknown now */
	assert_int_equal(
	    journal_resolve(j, id, JOURNAL_RESOLVED_SENT, text, user, f->why, sizeof(f->why)),
	    MDM_OK);
	for (int round = 0; round < 2; round++) {
		assert_int_equal(journal_get(j, id, &a), MDM_OK);
		assert_string_equal(a.user, user);
		assert_string_equal(a.addr, addr);
		assert_string_equal(a.device, dev);
		assert_string_equal(a.mdm, mdm);
		assert_string_equal(a.vendor_id, vid);
		assert_string_equal(a.key, key);
		assert_string_equal(a.key_hash, HASH_A);
		assert_string_equal(a.note, text);
		assert_string_equal(a.resolved_by, user);
		assert_int_equal(a.state, JOURNAL_RESOLVED_SENT);
		assert_true(a.at_ms > 0 && a.resolved_ms >= a.at_ms);
		assert_int_equal(journal_find_key(j, "k-short", &b), MDM_OK);
		assert_string_equal(b.id, r2);
		assert_string_equal(b.detail, text);
		assert_string_equal(b.mdm, "");
		assert_int_equal(b.state, JOURNAL_REFUSED);
		journal_close(j);
		j = open_j(f, NULL);
	}
	journal_close(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_modes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_intent_on_disk, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_state_rules, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_busy_and_duplicate, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refusal, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_torn_last_line, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_garbage_middle, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rotation_fails, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unknown_carried, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_carry_not_counted, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_write_fails, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_load_bounds, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_list, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_strings, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_compact_records, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
