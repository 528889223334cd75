#include "unit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../gateway/verdict/block.h"

struct fix {
	char dir[64];
	char file[128];
	char why[256];
};

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_block.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->file, sizeof(f->file), "%s/%s", f->dir, BLOCK_FILE);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static struct block *open_b(struct fix *f)
{
	struct block *b = NULL;

	enum mdm_err e = block_open(f->dir, &b, f->why, sizeof(f->why));

	if (e)
		print_error("block_open: %s\n", f->why);
	assert_int_equal(e, MDM_OK);
	assert_non_null(b);
	return b;
}

static void write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static void test_add_has_remove(void **state)
{
	struct fix *f = *state;
	struct block *b = open_b(f);
	struct block_entry e;

	assert_int_equal(block_count(b), 0);
	assert_false(block_has(b, "0026B424FEB4"));
	assert_int_equal(block_add(b, "0026B424FEB4", "boss", "stolen", &e, f->why, sizeof(f->why)),
			 MDM_OK);
	assert_string_equal(e.device, "0026B424FEB4");
	assert_string_equal(e.by, "boss");
	assert_string_equal(e.note, "stolen");
	assert_true(e.has_note);
	assert_true(e.at_ms > 0);
	assert_true(block_has(b, "0026B424FEB4"));
	assert_false(block_has(b, "0026B424FEB5"));
	/* Blocking again updates, never duplicates. */
	assert_int_equal(block_add(b, "0026B424FEB4", "root", NULL, &e, f->why, sizeof(f->why)),
			 MDM_OK);
	assert_int_equal(block_count(b), 1);
	assert_false(e.has_note);
	assert_int_equal(block_remove(b, "0026B424FEB4", f->why, sizeof(f->why)), MDM_OK);
	assert_false(block_has(b, "0026B424FEB4"));
	assert_int_equal(block_remove(b, "0026B424FEB4", f->why, sizeof(f->why)), MDM_ERR_NOTFOUND);
	assert_false(block_has(NULL, "x"));
	block_close(b);
}

static void test_device_match(void **state)
{
	struct fix *f = *state;
	struct block *b = open_b(f);
	struct device d;

	memset(&d, 0, sizeof(d));
	device_add_mac(&d, "0026B424FEB4");
	device_add_mac(&d, "0026B424FEB5");
	snprintf(d.guid, sizeof(d.guid), "1759c0fd-c8da");
	assert_false(block_device(b, &d));
	assert_int_equal(block_add(b, "0026B424FEB5", "boss", NULL, NULL, f->why, sizeof(f->why)),
			 MDM_OK);
	assert_true(block_device(b, &d)); /* its second MAC */
	assert_int_equal(block_remove(b, "0026B424FEB5", f->why, sizeof(f->why)), MDM_OK);
	assert_int_equal(block_add(b, "1759c0fd-c8da", "boss", NULL, NULL, f->why, sizeof(f->why)),
			 MDM_OK);
	assert_true(block_device(b, &d)); /* its GUID */
	assert_false(block_device(NULL, &d));
	block_close(b);
}

/* block_apply: a blocked device is non-compliant "blocked by administrator", without the
 * MDMs' reason or remediation; anything else is left exactly as the merge made it. */
static void test_apply(void **state)
{
	struct fix *f = *state;
	struct block *b = open_b(f);
	struct device d, before;

	memset(&d, 0, sizeof(d));
	device_add_mac(&d, "0026B424FEB4");
	d.registered = TRI_TRUE;
	d.compliant = TRI_TRUE;
	d.jail_broken = TRI_FALSE;
	snprintf(d.remediation, sizeof(d.remediation), "update the OS");
	before = d;
	assert_false(block_apply(b, &d));
	assert_memory_equal(&d, &before, sizeof(d));
	assert_false(block_apply(NULL, &d));
	assert_int_equal(block_add(b, "0026B424FEB4", "boss", NULL, NULL, f->why, sizeof(f->why)),
			 MDM_OK);
	assert_true(block_apply(b, &d));
	assert_int_equal(d.compliant, TRI_FALSE);
	assert_string_equal(d.failure_reason, BLOCK_REASON);
	assert_string_equal(d.remediation, "");
	assert_int_equal(d.registered, TRI_TRUE); /* only compliance is the block's */
	assert_int_equal(d.jail_broken, TRI_FALSE);
	/* an unset compliance (the MDM reported none) becomes false too: the NAC must see it */
	d.compliant = TRI_UNSET;
	assert_true(block_apply(b, &d));
	assert_int_equal(d.compliant, TRI_FALSE);
	block_close(b);
}

static enum mdm_err collect(const struct block_entry *e, void *arg)
{
	char *out = arg;

	strcat(out, e->device);
	strcat(out, ",");
	return MDM_OK;
}

static void test_persisted_and_reloaded(void **state)
{
	struct fix *f = *state;
	struct block *b = open_b(f);
	char names[4096] = "";
	struct stat st;
	char dev[16];

	/* Many entries: the index grows, and removal keeps the others findable. */
	for (int i = 0; i < 300; i++) {
		snprintf(dev, sizeof(dev), "0026B4%06X", i + 1);
		assert_int_equal(
		    block_add(b, dev, "boss", i % 2 ? "n" : NULL, NULL, f->why, sizeof(f->why)),
		    MDM_OK);
	}
	assert_int_equal(block_remove(b, "0026B4000005", f->why, sizeof(f->why)), MDM_OK);
	block_close(b);
	assert_int_equal(stat(f->file, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	b = open_b(f);
	assert_int_equal(block_count(b), 299);
	assert_true(block_has(b, "0026B4000001"));
	assert_true(block_has(b, "0026B400012C"));
	assert_false(block_has(b, "0026B4000005"));
	block_close(b);
	/* Listing order is the order blocked. */
	write_file(f->file, "{\"blocks\": [{\"device\": \"B\", \"by\": \"x\", \"at\": 1}, "
			    "{\"device\": \"A\", \"by\": \"y\", \"at\": 2, \"note\": \"n\"}]}");
	b = open_b(f);
	assert_int_equal(block_list(b, collect, names), MDM_OK);
	assert_string_equal(names, "B,A,");
	/* Blocking again updates in place, on disk too. */
	assert_int_equal(block_add(b, "B", "z", NULL, NULL, f->why, sizeof(f->why)), MDM_OK);
	block_close(b);
	b = open_b(f);
	names[0] = '\0';
	assert_int_equal(block_list(b, collect, names), MDM_OK);
	assert_string_equal(names, "B,A,");
	block_close(b);
}

static void test_bad_files(void **state)
{
	struct fix *f = *state;
	const char *bad[] = {
	    "{\"blocks\": [{\"device\": \"0026B424FEB4\", \"by\": \"bo", /* torn */
	    "[]",
	    "{\"blocks\": [], \"x\": 1}",
	    "{\"blocks\": [{\"device\": \"A\", \"by\": \"x\"}]}",
	    "{\"blocks\": [{\"device\": \"A\", \"by\": \"x\", \"at\": 1, \"extra\": 2}]}",
	    "{\"blocks\": [{\"device\": \"\", \"by\": \"x\", \"at\": 1}]}",
	    "{\"blocks\": [{\"device\": \"A\", \"by\": \"x\", \"at\": 1}, "
	    "{\"device\": \"A\", \"by\": \"x\", \"at\": 2}]}",
	};
	struct block *b = NULL;

	assert_int_equal(mkdir(f->dir, 0700) == 0 || 1, 1);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_file(f->file, bad[i]);
		f->why[0] = '\0';
		assert_int_equal(block_open(f->dir, &b, f->why, sizeof(f->why)), MDM_ERR_PARSE);
		assert_null(b);
		assert_non_null(strstr(f->why, BLOCK_FILE));
	}
	/* No file at all is an empty set. */
	unlink(f->file);
	b = open_b(f);
	assert_int_equal(block_count(b), 0);
	block_close(b);
}

static void test_bounds(void **state)
{
	struct fix *f = *state;
	struct block *b = open_b(f);
	char note[BLOCK_NOTE_MAX + 2];

	memset(note, 'n', sizeof(note) - 1);
	note[sizeof(note) - 1] = '\0';
	assert_int_equal(block_add(b, "A", "boss", note, NULL, f->why, sizeof(f->why)),
			 MDM_ERR_TOOBIG);
	assert_int_equal(block_add(b, "", "boss", NULL, NULL, f->why, sizeof(f->why)),
			 MDM_ERR_INVALID);
	assert_int_equal(block_count(b), 0);
	block_close(b);
}

struct reader {
	struct block *b;
	int hits;
};

static void *read_loop(void *arg)
{
	struct reader *r = arg;

	for (int i = 0; i < 20000; i++)
		r->hits += block_has(r->b, "0026B4000001");
	return NULL;
}

static void test_threads(void **state)
{
	struct fix *f = *state;
	struct block *b = open_b(f);
	struct reader r[2] = {{b, 0}, {b, 0}};
	pthread_t t[2];
	char dev[16];

	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, read_loop, &r[i]), 0);
	for (int i = 0; i < 40; i++) {
		snprintf(dev, sizeof(dev), "0026B4%06X", i + 1);
		assert_int_equal(block_add(b, dev, "boss", NULL, NULL, f->why, sizeof(f->why)),
				 MDM_OK);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(block_count(b), 40);
	block_close(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_add_has_remove, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_device_match, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_apply, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_persisted_and_reloaded, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_files, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bounds, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
