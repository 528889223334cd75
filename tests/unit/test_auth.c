#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "../../core/clock.h"
#include "../../gateway/server/auth.h"

/*
 * Every scrypt at ln=15 costs ~0.1 s (~1.5 s under valgrind), so the accounts' lines are made
 * once in the group setup and each test spends as few hashes as it can.
 */
#define PW_A "correct horse"
#define PW_B "b:ob pw" /* a ':' in the password: only the first one splits */
#define SRC_A "192.0.2.1"
#define SRC_B "198.51.100.7"

/* 16 zero bytes of salt, 32 zero bytes of hash: a syntactically good line with no hashing. */
#define SALT0 "AAAAAAAAAAAAAAAAAAAAAA=="
#define HASH0 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

static char line_a[256], line_b[256];
static struct config_account accounts[3];

/* The injected clock: tests set it and move it forward by hand. */
static int64_t test_now;

static int64_t fake_now(void)
{
	return test_now;
}

static int group_setup(void **state)
{
	(void)state;
	if (scrypt_line_make(PW_A, strlen(PW_A), 15, 8, 1, line_a, sizeof(line_a)) != MDM_OK ||
	    scrypt_line_make(PW_B, strlen(PW_B), 15, 8, 1, line_b, sizeof(line_b)) != MDM_OK)
		return -1;
	/* carol shares alice's line (and so her password): a third account for one hash less. */
	snprintf(accounts[0].user, sizeof(accounts[0].user), "alice");
	snprintf(accounts[0].password_hash, sizeof(accounts[0].password_hash), "%s", line_a);
	accounts[0].roles = ROLE_QUERY | ROLE_ACTION;
	snprintf(accounts[1].user, sizeof(accounts[1].user), "bob");
	snprintf(accounts[1].password_hash, sizeof(accounts[1].password_hash), "%s", line_b);
	accounts[1].roles = ROLE_ADMIN;
	snprintf(accounts[2].user, sizeof(accounts[2].user), "carol");
	snprintf(accounts[2].password_hash, sizeof(accounts[2].password_hash), "%s", line_a);
	accounts[2].roles = ROLE_QUERY;
	return 0;
}

static struct config_auth default_cfg(void)
{
	struct config_auth cfg = {
	    .verify_cache_ttl_ms = 600000,
	    .verify_cache_size = 16,
	    .max_concurrent_hashes = 2,
	    .fail_limit = 3,
	    .fail_window_ms = 60000,
	    .lockout_ms = 60000,
	};
	return cfg;
}

static struct auth *make_auth(const struct config_auth *cfg)
{
	struct auth *a = auth_create(cfg, accounts, 3);

	assert_non_null(a);
	test_now = 1700000000000;
	auth_set_clock(a, fake_now);
	return a;
}

/* "Basic base64(user:password)" into out. */
static const char *basic(char *out, size_t outsz, const char *user, const char *password)
{
	char plain[1024];
	int n = snprintf(plain, sizeof(plain), "%s:%s", user, password);
	size_t need = ((size_t)n + 2) / 3 * 4 + 7;

	assert_true(n > 0 && (size_t)n < sizeof(plain));
	assert_true(need <= outsz);
	memcpy(out, "Basic ", 6);
	EVP_EncodeBlock((unsigned char *)out + 6, (const unsigned char *)plain, n);
	return out;
}

/* auth_check with a header made from user and password; the result code. */
static enum mdm_err check(struct auth *a, const char *user, const char *password,
			  const char *source, struct auth_result *res)
{
	char h[1500];

	return auth_check(a, basic(h, sizeof(h), user, password), source, res);
}

/* --- hash lines ------------------------------------------------------------------------------ */

static void test_line_parse_good(void **state)
{
	struct scrypt_params sp;
	char why[200];

	(void)state;
	assert_int_equal(scrypt_line_parse(line_a, &sp, why, sizeof(why)), MDM_OK);
	assert_int_equal(sp.ln, 15);
	assert_int_equal(sp.r, 8);
	assert_int_equal(sp.p, 1);
	assert_int_equal(sp.salt_len, 16);
	assert_int_equal(sp.hash_len, 32);
	assert_string_equal(why, "");
	assert_memory_equal(line_a, "$scrypt$ln=15,r=8,p=1$", 22);

	assert_int_equal(
	    scrypt_line_parse("$scrypt$ln=16,r=16,p=2$" SALT0 "$" HASH0, &sp, why, sizeof(why)),
	    MDM_OK);
	assert_int_equal(sp.ln, 16);
	assert_int_equal(sp.r, 16);
	assert_int_equal(sp.p, 2);
	/* A longer salt (24 bytes, no padding) is fine too. */
	assert_int_equal(
	    scrypt_line_parse("$scrypt$ln=15,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA$" HASH0, &sp,
			      why, sizeof(why)),
	    MDM_OK);
	assert_int_equal(sp.salt_len, 24);
	/* The upper bounds are inclusive: r=32 and p=16 make exactly 64 times the minimum work, */
	assert_int_equal(
	    scrypt_line_parse("$scrypt$ln=15,r=32,p=16$" SALT0 "$" HASH0, &sp, why, sizeof(why)),
	    MDM_OK);
	assert_int_equal(sp.r, 32);
	assert_int_equal(sp.p, 16);
	/* and ln=20 with r=8 exactly 1 GiB of memory. */
	assert_int_equal(
	    scrypt_line_parse("$scrypt$ln=20,r=8,p=1$" SALT0 "$" HASH0, &sp, why, sizeof(why)),
	    MDM_OK);
	assert_int_equal(sp.ln, 20);
	assert_string_equal(why, "");
}

static void test_line_parse_bad(void **state)
{
	static const struct {
		const char *line;
		const char *why; /* a piece of the reason */
	} cases[] = {
	    {"", "not a scrypt hash line"},
	    {"$bcrypt$ln=15,r=8,p=1$" SALT0 "$" HASH0, "not a scrypt hash line"},
	    {"scrypt$ln=15,r=8,p=1$" SALT0 "$" HASH0, "not a scrypt hash line"},
	    {"$scrypt$ln=15,r=8$" SALT0 "$" HASH0, "ln=N,r=N,p=N"},
	    {"$scrypt$r=8,p=1,ln=15$" SALT0 "$" HASH0, "ln=N,r=N,p=N"},
	    {"$scrypt$ln=,r=8,p=1$" SALT0 "$" HASH0, "ln=N,r=N,p=N"},
	    {"$scrypt$ln=-15,r=8,p=1$" SALT0 "$" HASH0, "ln=N,r=N,p=N"},
	    {"$scrypt$ln=15x,r=8,p=1$" SALT0 "$" HASH0, "ln=N,r=N,p=N"},
	    {"$scrypt$ln=1234567890,r=8,p=1$" SALT0 "$" HASH0, "ln=N,r=N,p=N"},
	    {"$scrypt$ln=15,r=8,p=1$" SALT0, "$salt$hash"},
	    {"$scrypt$ln=15,r=8,p=1$" SALT0 "$" HASH0 "$", "$salt$hash"},
	    {"$scrypt$ln=15,r=8,p=1", "ln=N,r=N,p=N"},
	    {"$scrypt$ln=15,r=8,p=1$AAAA*AAAAAAAAAAAAAAAAA==$" HASH0, "salt is not valid base64"},
	    {"$scrypt$ln=15,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA=$" HASH0, "salt is not valid base64"},
	    {"$scrypt$ln=15,r=8,p=1$AAAAAAAAAAA=AAAAAAAAAA==$" HASH0, "salt is not valid base64"},
	    {"$scrypt$ln=15,r=8,p=1$$" HASH0, "salt is not valid base64"},
	    {"$scrypt$ln=15,r=8,p=1$AAAAAAAAAAA=$" HASH0, "salt shorter than 16"},
	    {"$scrypt$ln=15,r=8,p=1$"
	     "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	     "AAA$" HASH0,
	     "salt longer than 64"},
	    {"$scrypt$ln=15,r=8,p=1$" SALT0 "$" SALT0, "hash must be 32 bytes"},
	    {"$scrypt$ln=15,r=8,p=1$" SALT0 "$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	     "hash must be 32 bytes"},
	    {"$scrypt$ln=15,r=8,p=1$" SALT0 "$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.=",
	     "hash is not valid base64"},
	    {"$scrypt$ln=15,r=8,p=1$" SALT0 "$", "hash is not valid base64"},
	    {"$scrypt$ln=14,r=8,p=1$" SALT0 "$" HASH0, "too low: ln=14"},
	    {"$scrypt$ln=15,r=4,p=1$" SALT0 "$" HASH0, "too low: r=4"},
	    {"$scrypt$ln=15,r=8,p=0$" SALT0 "$" HASH0, "too low: p=0"},
	    {"$scrypt$ln=23,r=8,p=1$" SALT0 "$" HASH0, "ln=23, at most ln=22"},
	    {"$scrypt$ln=15,r=33,p=1$" SALT0 "$" HASH0, "r=33, at most r=32"},
	    {"$scrypt$ln=15,r=8,p=17$" SALT0 "$" HASH0, "p=17, at most p=16"},
	    {"$scrypt$ln=22,r=8,p=1$" SALT0 "$" HASH0, "MiB"},
	    {"$scrypt$ln=18,r=8,p=16$" SALT0 "$" HASH0, "times the minimum work"},
	};
	struct scrypt_params sp;
	char why[200];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		why[0] = '\0';
		if (scrypt_line_parse(cases[i].line, &sp, why, sizeof(why)) != MDM_ERR_INVALID ||
		    !strstr(why, cases[i].why))
			fail_msg("case %zu \"%s\": want \"%s\", got \"%s\"", i, cases[i].line,
				 cases[i].why, why);
	}
	/* A NULL reason buffer is allowed. */
	assert_int_equal(scrypt_line_parse("", &sp, NULL, 0), MDM_ERR_INVALID);
}

static const char b64_digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void test_make_verify(void **state)
{
	char out[256];
	const char *d;
	size_t n;

	(void)state;
	/* line_a came from scrypt_line_make in the setup: the round trip. */
	assert_int_equal(scrypt_line_verify(line_a, PW_A, strlen(PW_A)), MDM_OK);
	assert_int_equal(scrypt_line_verify(line_a, "correct horsE", strlen(PW_A)), MDM_ERR_AUTH);
	assert_int_equal(
	    scrypt_line_verify("$scrypt$ln=14,r=8,p=1$" SALT0 "$" HASH0, PW_A, strlen(PW_A)),
	    MDM_ERR_INVALID);
	/* Costs out of bounds are refused before any hashing. */
	assert_int_equal(scrypt_line_make("x", 1, 14, 8, 1, out, sizeof(out)), MDM_ERR_INVALID);
	assert_int_equal(scrypt_line_make("x", 1, 15, 4, 1, out, sizeof(out)), MDM_ERR_INVALID);
	assert_int_equal(scrypt_line_make("x", 1, 15, 8, 0, out, sizeof(out)), MDM_ERR_INVALID);
	assert_int_equal(scrypt_line_make("x", 1, 23, 8, 1, out, sizeof(out)), MDM_ERR_INVALID);
	assert_string_equal(out, "");

	/*
	 * A stored hash that differs from the right one in its last byte only does not match.
	 * The last base64 digit before the '=' holds the low 4 bits of the last byte in its top
	 * 4 bits: flipping its top bit changes that byte and nothing else (an AUTH, not INVALID,
	 * also says the line still parsed).
	 */
	snprintf(out, sizeof(out), "%s", line_a);
	n = strlen(out);
	assert_int_equal(out[n - 1], '=');
	d = strchr(b64_digits, out[n - 2]);
	assert_non_null(d);
	out[n - 2] = b64_digits[(d - b64_digits) ^ 0x20];
	assert_int_equal(scrypt_line_verify(out, PW_A, strlen(PW_A)), MDM_ERR_AUTH);
}

/* --- auth_check ------------------------------------------------------------------------------ */

static void test_check_malformed(void **state)
{
	struct config_auth cfg = default_cfg();
	struct auth *a;
	struct auth_result res;
	char h[1500], user64[65];
	static const char *const bad[] = {
	    "",
	    "Basic",
	    "Basic ",
	    "Basic\tYWxpY2U6eA",   /* no padding */
	    "Basic !!!!",	   /* not base64 */
	    "Basic YWxp=2U6eA==",  /* '=' inside */
	    "Bearer YWxpY2U6eA==", /* another scheme */
	    "BasicYWxpY2U6eA==",   /* no space after the scheme */
	    "Basic bm9jb2xvbg==",  /* "nocolon" */
	    "Basic OnB3",	   /* ":pw": an empty user */
	};
	size_t i;

	(void)state;
	cfg.fail_limit = 1; /* a single failure counted would throttle */
	a = make_auth(&cfg);
	assert_int_equal(auth_check(a, NULL, SRC_A, &res), MDM_ERR_AUTH);
	assert_false(res.cached);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (auth_check(a, bad[i], SRC_A, &res) != MDM_ERR_AUTH)
			fail_msg("header \"%s\" was not refused", bad[i]);
		assert_false(res.cached);
	}
	/* A user name of 64 bytes cannot exist. */
	memset(user64, 'u', 64);
	user64[64] = '\0';
	assert_int_equal(check(a, user64, "pw", SRC_A, &res), MDM_ERR_AUTH);
	/* A header over 1024 bytes is refused whatever it holds. */
	memset(h, 0, sizeof(h));
	memcpy(h, "Basic ", 6);
	memset(h + 6, 'A', 1100);
	assert_int_equal(auth_check(a, h, SRC_A, &res), MDM_ERR_AUTH);
	/*
	 * Malformed headers count as no failure: alice is not throttled now, her password from
	 * the same source is checked (a hash, not the cache) and accepted. And each header sent
	 * again is refused as before, not throttled.
	 */
	assert_int_equal(check(a, "alice", PW_A, SRC_A, &res), MDM_OK);
	assert_false(res.cached);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (auth_check(a, bad[i], SRC_A, &res) != MDM_ERR_AUTH)
			fail_msg("header \"%s\" was not refused the second time", bad[i]);
	assert_int_equal(check(a, user64, "pw", SRC_A, &res), MDM_ERR_AUTH);
	assert_int_equal(auth_check(a, h, SRC_A, &res), MDM_ERR_AUTH);
	auth_destroy(a);
}

/*
 * The header is bounded as a whole, white space included: good credentials padded to 1024
 * bytes are accepted, to 1025 bytes refused unread (the cache is not even asked).
 */
static void test_check_header_bound(void **state)
{
	struct config_auth cfg = default_cfg();
	struct auth *a = make_auth(&cfg);
	struct auth_result res;
	char cred[100], h[1100];
	size_t n;

	(void)state;
	n = strlen(basic(cred, sizeof(cred), "alice", PW_A));
	memset(h, ' ', 1024 - n);
	memcpy(h + 1024 - n, cred, n + 1);
	assert_int_equal(auth_check(a, h, SRC_A, &res), MDM_OK);
	assert_false(res.cached);
	memset(h, ' ', 1025 - n);
	memcpy(h + 1025 - n, cred, n + 1);
	assert_int_equal(strlen(h), 1025);
	assert_int_equal(auth_check(a, h, SRC_A, &res), MDM_ERR_AUTH);
	assert_false(res.cached);
	memcpy(h, cred, n);
	memset(h + n, '\t', 1025 - n);
	h[1025] = '\0';
	assert_int_equal(auth_check(a, h, SRC_A, &res), MDM_ERR_AUTH);
	/* The same credentials within the bound are still good, from the cache. */
	assert_int_equal(check(a, "alice", PW_A, SRC_A, &res), MDM_OK);
	assert_true(res.cached);
	auth_destroy(a);
}

static void test_check_ok_cached(void **state)
{
	struct config_auth cfg = default_cfg();
	struct auth *a = make_auth(&cfg);
	struct auth_result res;
	char h[200];

	(void)state;
	assert_int_equal(check(a, "alice", PW_A, SRC_A, &res), MDM_OK);
	assert_int_equal(res.roles, ROLE_QUERY | ROLE_ACTION);
	assert_string_equal(res.user, "alice");
	assert_false(res.cached);
	/* The scheme is case-insensitive and surrounding white space is allowed. */
	basic(h, sizeof(h), "alice", PW_A);
	memcpy(h, "bASIC ", 6);
	assert_int_equal(auth_check(a, h, SRC_B, &res), MDM_OK);
	assert_true(res.cached);
	assert_int_equal(res.roles, ROLE_QUERY | ROLE_ACTION);
	/* A password holding ':' splits at the first one. */
	assert_int_equal(check(a, "bob", PW_B, SRC_A, &res), MDM_OK);
	assert_int_equal(res.roles, ROLE_ADMIN);
	assert_false(res.cached);
	assert_int_equal(check(a, "bob", PW_B, SRC_A, &res), MDM_OK);
	assert_true(res.cached);
	auth_destroy(a);
}

static void test_cache_expiry(void **state)
{
	struct config_auth cfg = default_cfg();
	struct auth *a;
	struct auth_result res;

	(void)state;
	cfg.verify_cache_ttl_ms = 5000;
	a = make_auth(&cfg);
	assert_int_equal(check(a, "alice", PW_A, SRC_A, &res), MDM_OK);
	assert_false(res.cached);
	test_now += 4999;
	assert_int_equal(check(a, "alice", PW_A, SRC_A, &res), MDM_OK);
	assert_true(res.cached);
	/* A cached entry never vouches for another password. */
	assert_int_equal(check(a, "alice", "nope", SRC_A, &res), MDM_ERR_AUTH);
	assert_false(res.cached);
	test_now += 1;
	assert_int_equal(check(a, "alice", PW_A, SRC_A, &res), MDM_OK);
	assert_false(res.cached);
	assert_int_equal(res.roles, ROLE_QUERY | ROLE_ACTION);
	assert_int_equal(check(a, "alice", PW_A, SRC_A, &res), MDM_OK);
	assert_true(res.cached);
	auth_destroy(a);
}

/* Sends stderr (where log lines go) to a temporary file until capture_stderr_end. */
static void capture_stderr_begin(int *saved, FILE **tmp)
{
	fflush(stderr);
	*tmp = tmpfile();
	assert_non_null(*tmp);
	*saved = dup(2);
	assert_true(*saved >= 0);
	assert_true(dup2(fileno(*tmp), 2) >= 0);
}

static void capture_stderr_end(int saved, FILE *tmp, char *out, size_t outsz)
{
	size_t n;

	fflush(stderr);
	assert_true(dup2(saved, 2) >= 0);
	close(saved);
	rewind(tmp);
	n = fread(out, 1, outsz - 1, tmp);
	out[n] = '\0';
	fclose(tmp);
}

static int count(const char *hay, const char *needle)
{
	int n = 0;

	for (hay = strstr(hay, needle); hay; hay = strstr(hay + 1, needle))
		n++;
	return n;
}

static void test_throttle(void **state)
{
	struct config_auth cfg = default_cfg();
	struct auth *a = make_auth(&cfg);
	struct auth_result res;
	char log[4096];
	FILE *tmp;
	int saved, i;

	(void)state;
	/* alice's good credentials get cached from B first. */
	assert_int_equal(check(a, "alice", PW_A, SRC_B, &res), MDM_OK);
	assert_false(res.cached);

	capture_stderr_begin(&saved, &tmp);
	for (i = 0; i < 3; i++)
		assert_int_equal(check(a, "alice", "guess", SRC_A, &res), MDM_ERR_AUTH);
	capture_stderr_end(saved, tmp, log, sizeof(log));
	assert_non_null(strstr(log, "auth: throttling user=alice source=" SRC_A));
	assert_null(strstr(log, "guess"));
	assert_null(strstr(log, "Basic"));
	assert_int_equal(count(log, "throttling"), 1);

	/* Now (A, alice) is throttled, uncached credentials are not even hashed. */
	assert_int_equal(check(a, "alice", "guess2", SRC_A, &res), MDM_ERR_THROTTLED);
	assert_int_equal(res.retry_after_s, 60);
	assert_string_equal(res.user, "alice");
	test_now += 1500;
	assert_int_equal(check(a, "alice", "guess3", SRC_A, &res), MDM_ERR_THROTTLED);
	assert_int_equal(res.retry_after_s, 59); /* ceil(58.5) */
	test_now += 58400;
	assert_int_equal(check(a, "alice", "guess3", SRC_A, &res), MDM_ERR_THROTTLED);
	assert_int_equal(res.retry_after_s, 1); /* 100 ms left is still one second */

	/* The cached good credentials still pass from A, without a hash. */
	assert_int_equal(check(a, "alice", PW_A, SRC_A, &res), MDM_OK);
	assert_true(res.cached);
	assert_int_equal(res.roles, ROLE_QUERY | ROLE_ACTION);
	/* B is not throttled for alice, nor is A for bob. */
	assert_int_equal(check(a, "alice", "guess4", SRC_B, &res), MDM_ERR_AUTH);
	assert_int_equal(check(a, "bob", PW_B, SRC_A, &res), MDM_OK);
	assert_false(res.cached);

	/* Once the lockout is over, A may try alice again (and fails normally). */
	test_now += 100;
	assert_int_equal(check(a, "alice", "guess5", SRC_A, &res), MDM_ERR_AUTH);
	auth_destroy(a);
}

static void test_throttle_window(void **state)
{
	struct config_auth cfg = default_cfg();
	struct auth *a;
	struct auth_result res;

	(void)state;
	cfg.fail_limit = 2;
	cfg.fail_window_ms = 10000;
	cfg.lockout_ms = 30000;
	a = make_auth(&cfg);
	/* A success clears the failures counted so far. */
	assert_int_equal(check(a, "bob", "x", SRC_A, &res), MDM_ERR_AUTH);
	assert_int_equal(check(a, "bob", PW_B, SRC_A, &res), MDM_OK);
	assert_int_equal(check(a, "bob", "x", SRC_A, &res), MDM_ERR_AUTH);
	/* A failure older than the window no longer counts. */
	test_now += 10000;
	assert_int_equal(check(a, "bob", "x", SRC_A, &res), MDM_ERR_AUTH);
	/* Two within the window do. */
	test_now += 9999;
	assert_int_equal(check(a, "bob", "x", SRC_A, &res), MDM_ERR_AUTH);
	assert_int_equal(check(a, "bob", "y", SRC_A, &res), MDM_ERR_THROTTLED);
	assert_int_equal(res.retry_after_s, 30);
	auth_destroy(a);
}

static void test_cache_bound(void **state)
{
	struct config_auth cfg = default_cfg();
	struct auth *a;
	struct auth_result res;

	(void)state;
	cfg.verify_cache_size = 2;
	a = make_auth(&cfg);
	assert_int_equal(check(a, "alice", PW_A, SRC_A, &res), MDM_OK);
	assert_false(res.cached);
	assert_int_equal(check(a, "bob", PW_B, SRC_A, &res), MDM_OK);
	assert_false(res.cached);
	assert_int_equal(check(a, "carol", PW_A, SRC_A, &res), MDM_OK);
	assert_false(res.cached);
	assert_int_equal(res.roles, ROLE_QUERY);
	/* Two entries fit: alice, the oldest, made room for carol. */
	assert_int_equal(check(a, "bob", PW_B, SRC_A, &res), MDM_OK);
	assert_true(res.cached);
	assert_int_equal(check(a, "carol", PW_A, SRC_A, &res), MDM_OK);
	assert_true(res.cached);
	assert_int_equal(check(a, "alice", PW_A, SRC_A, &res), MDM_OK);
	assert_false(res.cached);
	assert_int_equal(res.roles, ROLE_QUERY | ROLE_ACTION);
	assert_int_equal(check(a, "alice", PW_A, SRC_A, &res), MDM_OK);
	assert_true(res.cached);
	assert_int_equal(check(a, "carol", PW_A, SRC_A, &res), MDM_OK);
	assert_true(res.cached);
	auth_destroy(a);
}

static void test_unknown_user(void **state)
{
	struct config_auth cfg = default_cfg();
	struct auth *a = make_auth(&cfg);
	struct auth_result res;

	(void)state;
	assert_int_equal(check(a, "mallory", PW_A, SRC_A, &res), MDM_ERR_AUTH);
	assert_string_equal(res.user, "mallory");
	assert_int_equal(res.roles, 0);
	/* A prefix of a name is not that name. */
	assert_int_equal(check(a, "alic", PW_A, SRC_A, &res), MDM_ERR_AUTH);
	assert_int_equal(res.roles, 0);
	auth_destroy(a);
}

/*
 * An account whose hash line is below the minimum cost cannot log in, not even with the right
 * password: the line is reported when the accounts are loaded and never hashed against.
 */
static void test_account_below_minimum_cost(void **state)
{
	static const unsigned char salt[16]; /* SALT0 */
	struct config_auth cfg = default_cfg();
	struct config_account weak;
	unsigned char hash[32];
	char hash64[48], log[1024];
	uint64_t n = 1 << 14;
	uint32_t r = 8, p = 1;
	OSSL_PARAM params[6];
	EVP_KDF *kdf;
	EVP_KDF_CTX *kctx;
	struct auth_result res;
	struct auth *a;
	FILE *tmp;
	int saved;

	(void)state;
	/* The right hash of PW_A at ln=14, which scrypt_line_make refuses to make. */
	kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
	assert_non_null(kdf);
	kctx = EVP_KDF_CTX_new(kdf);
	assert_non_null(kctx);
	params[0] =
	    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)PW_A, strlen(PW_A));
	params[1] =
	    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, sizeof(salt));
	params[2] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n);
	params[3] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r);
	params[4] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p);
	params[5] = OSSL_PARAM_construct_end();
	assert_int_equal(EVP_KDF_derive(kctx, hash, sizeof(hash), params), 1);
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	EVP_EncodeBlock((unsigned char *)hash64, hash, sizeof(hash));

	memset(&weak, 0, sizeof(weak));
	snprintf(weak.user, sizeof(weak.user), "dave");
	snprintf(weak.password_hash, sizeof(weak.password_hash),
		 "$scrypt$ln=14,r=8,p=1$" SALT0 "$%s", hash64);
	weak.roles = ROLE_ADMIN;
	capture_stderr_begin(&saved, &tmp);
	a = auth_create(&cfg, &weak, 1);
	capture_stderr_end(saved, tmp, log, sizeof(log));
	assert_non_null(a);
	assert_non_null(
	    strstr(log, "auth: account dave cannot log in: scrypt cost too low: ln=14"));
	test_now = 1700000000000;
	auth_set_clock(a, fake_now);
	assert_int_equal(check(a, "dave", PW_A, SRC_A, &res), MDM_ERR_AUTH);
	assert_int_equal(res.roles, 0);
	auth_destroy(a);
}

struct worker {
	struct auth *a;
	const char *user, *password;
	enum mdm_err want, got;
};

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	struct auth_result res;
	char h[200];

	w->got = auth_check(w->a, basic(h, sizeof(h), w->user, w->password), SRC_A, &res);
	return NULL;
}

/* Parallel checks through a single hash slot each get their own answer. */
static void test_threads(void **state)
{
	struct config_auth cfg = default_cfg();
	struct auth *a;
	struct worker w[] = {
	    {NULL, "alice", PW_A, MDM_OK, MDM_ERR_INTERNAL},
	    {NULL, "bob", PW_B, MDM_OK, MDM_ERR_INTERNAL},
	    {NULL, "alice", PW_B, MDM_ERR_AUTH, MDM_ERR_INTERNAL},
	    {NULL, "nobody", PW_A, MDM_ERR_AUTH, MDM_ERR_INTERNAL},
	};
	pthread_t t[4];
	size_t i;

	(void)state;
	cfg.max_concurrent_hashes = 1;
	a = make_auth(&cfg);
	for (i = 0; i < 4; i++) {
		w[i].a = a;
		assert_int_equal(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(w[i].got, w[i].want);
	}
	auth_destroy(a);
}

/* --- bursts of parallel guesses -------------------------------------------------------------- */

/*
 * The injected clock is the seam that makes parallel guesses meet without relying on timing:
 * auth_check reads it at fixed points, so the n-th reading of a thread says where that thread
 * is. A wrong guess reads it for the cache look-up (1st), the first throttle check (2nd), the
 * throttle check again once it holds the hash slot (3rd) and to count its failure (4th).
 */
#define BURST 6

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned at_first_check; /* guesses past their 2nd reading */
	unsigned counted;	 /* 4th readings so far */
	bool hold_count;	 /* a 4th reading waits (bounded) for another guess to hash */
	bool gate_timed_out;
} burst;
static _Thread_local unsigned clock_reads;

static int64_t burst_now(void)
{
	unsigned n = ++clock_reads, seen;
	struct timespec until;

	pthread_mutex_lock(&burst.mu);
	if (n == 2) {
		burst.at_first_check++;
		pthread_cond_broadcast(&burst.cv);
	} else if (n == 3) {
		/* No guess hashes before every guess has come to the first throttle check. */
		clock_realtime_after(10000, &until);
		while (burst.at_first_check < BURST && !burst.gate_timed_out)
			if (pthread_cond_timedwait(&burst.cv, &burst.mu, &until) != 0)
				burst.gate_timed_out = true;
	} else if (n == 4 && burst.hold_count) {
		/*
		 * Hold this failure back until another guess has hashed too. The wait can only end
		 * early if another guess got a hash slot meanwhile, i.e. if failures were counted
		 * outside the slot; otherwise it ends at its bound.
		 */
		seen = ++burst.counted;
		pthread_cond_broadcast(&burst.cv);
		clock_realtime_after(100, &until);
		while (burst.counted == seen &&
		       pthread_cond_timedwait(&burst.cv, &burst.mu, &until) == 0)
			;
	}
	pthread_mutex_unlock(&burst.mu);
	return test_now;
}

struct guess {
	struct auth *a;
	pthread_barrier_t *start;
	const char *header;
	enum mdm_err got;
	int retry_after_s;
};

static void *guess_run(void *arg)
{
	struct guess *g = arg;
	struct auth_result res;

	pthread_barrier_wait(g->start);
	g->got = auth_check(g->a, g->header, SRC_A, &res);
	g->retry_after_s = res.retry_after_s;
	return NULL;
}

/*
 * BURST threads started together guess alice's password from SRC_A through one hash slot with
 * fail_limit 2. Every answer must be 401 or 429 (with the full lockout to wait); the counts of
 * each go to *nauth and *nthrottled.
 */
static void burst_guess(bool hold_count, int *nauth, int *nthrottled)
{
	struct config_auth cfg = default_cfg();
	struct guess g[BURST];
	pthread_t t[BURST];
	pthread_barrier_t start;
	struct auth *a;
	char h[200];
	size_t i;

	cfg.fail_limit = 2;
	cfg.max_concurrent_hashes = 1;
	a = make_auth(&cfg);
	memset(&burst, 0, sizeof(burst));
	assert_int_equal(pthread_mutex_init(&burst.mu, NULL), 0);
	assert_int_equal(pthread_cond_init(&burst.cv, NULL), 0);
	burst.hold_count = hold_count;
	auth_set_clock(a, burst_now);
	basic(h, sizeof(h), "alice", "guess");
	assert_int_equal(pthread_barrier_init(&start, NULL, BURST), 0);
	for (i = 0; i < BURST; i++) {
		g[i] = (struct guess){a, &start, h, MDM_ERR_INTERNAL, 0};
		assert_int_equal(pthread_create(&t[i], NULL, guess_run, &g[i]), 0);
	}
	*nauth = *nthrottled = 0;
	for (i = 0; i < BURST; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		if (g[i].got == MDM_ERR_AUTH) {
			++*nauth;
		} else if (g[i].got == MDM_ERR_THROTTLED) {
			++*nthrottled;
			assert_int_equal(g[i].retry_after_s, 60);
		} else {
			fail_msg("guess %zu: %s", i, err_str(g[i].got));
		}
	}
	assert_false(burst.gate_timed_out);
	pthread_barrier_destroy(&start);
	pthread_cond_destroy(&burst.cv);
	pthread_mutex_destroy(&burst.mu);
	auth_destroy(a);
}

/*
 * Parallel guesses all pass the first throttle check before any hash ends: asking the throttle
 * again once a hash slot is theirs lets only fail_limit of them hash, the rest are throttled.
 */
static void test_throttle_burst(void **state)
{
	int nauth, nthrottled;

	(void)state;
	burst_guess(false, &nauth, &nthrottled);
	assert_int_equal(nauth, 2);
	assert_int_equal(nthrottled, BURST - 2);
}

/*
 * A burst of guesses with each failure held back a while before it is counted: it is counted
 * before the hash slot is given back, so the next guess's check in the slot still sees it and
 * only fail_limit of them hash.
 */
static void test_throttle_burst_counted_in_slot(void **state)
{
	int nauth, nthrottled;

	(void)state;
	burst_guess(true, &nauth, &nthrottled);
	assert_int_equal(nauth, 2);
	assert_int_equal(nthrottled, BURST - 2);
}

/* --- mdmgw passwd ---------------------------------------------------------------------------- */

struct cli_run {
	int rc;
	char *out, *err;
	size_t outlen, errlen;
};

static void cli_run(FILE *in, unsigned ln, struct cli_run *r)
{
	FILE *out = open_memstream(&r->out, &r->outlen);
	FILE *err = open_memstream(&r->err, &r->errlen);

	assert_non_null(out);
	assert_non_null(err);
	r->rc = auth_passwd_cli(in, out, err, ln);
	fclose(out);
	fclose(err);
}

static void cli_free(struct cli_run *r)
{
	free(r->out);
	free(r->err);
}

/* Feeds text through fmemopen. */
static void cli_mem(const char *text, unsigned ln, struct cli_run *r)
{
	FILE *in = fmemopen((void *)text, strlen(text), "r");

	assert_non_null(in);
	cli_run(in, ln, r);
	fclose(in);
}

static void test_passwd_pipe_ok(void **state)
{
	static const char input[] = "s3cret pass\ns3cret pass\n";
	struct cli_run r;
	FILE *in;
	int fds[2];
	size_t n;

	(void)state;
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(write(fds[1], input, sizeof(input) - 1), (ssize_t)(sizeof(input) - 1));
	close(fds[1]);
	in = fdopen(fds[0], "r");
	assert_non_null(in);
	cli_run(in, 3, &r); /* ln below the minimum: the minimum is used */
	fclose(in);
	assert_int_equal(r.rc, 0);
	assert_non_null(strstr(r.err, "Password: "));
	assert_non_null(strstr(r.err, "Repeat: "));
	assert_null(strstr(r.err, "s3cret"));
	n = strlen(r.out);
	assert_true(n > 1 && r.out[n - 1] == '\n');
	assert_ptr_equal(strchr(r.out, '\n'), r.out + n - 1); /* one line */
	r.out[n - 1] = '\0';
	assert_memory_equal(r.out, "$scrypt$ln=15,r=8,p=1$", 22);
	assert_int_equal(scrypt_line_verify(r.out, "s3cret pass", 11), MDM_OK);
	cli_free(&r);
}

static void test_passwd_refusals(void **state)
{
	static const struct {
		const char *input;
		unsigned ln;
		const char *err;
	} cases[] = {
	    {"one\ntwo\n", 15, "do not match"},
	    {"one\none2\n", 15, "do not match"},
	    {"\n\n", 15, "empty"},
	    {"", 15, "no password"},
	    {"one\n", 15, "no password"},
	    {"one\none\n", 23, "at most ln=22"},
	};
	char longline[1100];
	struct cli_run r;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cli_mem(cases[i].input, cases[i].ln, &r);
		if (r.rc != 1 || r.outlen != 0 || !strstr(r.err, cases[i].err))
			fail_msg("case %zu: rc %d, out \"%s\", err \"%s\"", i, r.rc, r.out, r.err);
		cli_free(&r);
	}
	/* 1024 bytes on a line is one too many. */
	memset(longline, 'x', 1024);
	memcpy(longline + 1024, "\n", 2);
	cli_mem(longline, 15, &r);
	assert_int_equal(r.rc, 1);
	assert_non_null(strstr(r.err, "longer than 1023"));
	cli_free(&r);
}

struct pty_feeder {
	int master, slave;
	bool saw_echo_off;
};

/* Types the answers only once echo is off (TCSAFLUSH would drop anything typed earlier). */
static void *pty_feed(void *arg)
{
	struct pty_feeder *f = arg;
	struct timespec pause = {0, 1000000};
	struct termios t;
	int i;

	for (i = 0; i < 5000; i++) {
		if (tcgetattr(f->slave, &t) == 0 && !(t.c_lflag & ECHO)) {
			f->saw_echo_off = true;
			break;
		}
		nanosleep(&pause, NULL);
	}
	if (write(f->master, "one\ntwo\n", 8) != 8)
		f->saw_echo_off = false;
	return NULL;
}

/* On a terminal echo is off while reading and back on afterwards, also on a failure path. */
static void test_passwd_tty_echo(void **state)
{
	struct pty_feeder f = {-1, -1, false};
	struct termios t;
	struct cli_run r;
	unsigned unlock = 0, n = 0;
	char name[64], echo[64];
	pthread_t th;
	FILE *in;

	(void)state;
	f.master = open("/dev/ptmx", O_RDWR | O_NOCTTY);
	if (f.master < 0 || ioctl(f.master, TIOCSPTLCK, &unlock) != 0 ||
	    ioctl(f.master, TIOCGPTN, &n) != 0) {
		if (f.master >= 0)
			close(f.master);
		skip();
	}
	snprintf(name, sizeof(name), "/dev/pts/%u", n);
	f.slave = open(name, O_RDWR | O_NOCTTY);
	if (f.slave < 0) {
		close(f.master);
		skip();
	}
	assert_int_equal(tcgetattr(f.slave, &t), 0);
	assert_true(t.c_lflag & ECHO);
	in = fdopen(dup(f.slave), "r");
	assert_non_null(in);
	assert_int_equal(pthread_create(&th, NULL, pty_feed, &f), 0);
	cli_run(in, 15, &r);
	assert_int_equal(pthread_join(th, NULL), 0);
	fclose(in);

	assert_true(f.saw_echo_off);
	assert_int_equal(r.rc, 1);
	assert_non_null(strstr(r.err, "do not match"));
	assert_int_equal(tcgetattr(f.slave, &t), 0);
	assert_true(t.c_lflag & ECHO);
	/* Nothing typed came back on the terminal. */
	assert_int_equal(fcntl(f.master, F_SETFL, O_NONBLOCK), 0);
	assert_true(read(f.master, echo, sizeof(echo)) <= 0);
	cli_free(&r);
	close(f.slave);
	close(f.master);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_line_parse_good),
	    cmocka_unit_test(test_line_parse_bad),
	    cmocka_unit_test(test_make_verify),
	    cmocka_unit_test(test_check_malformed),
	    cmocka_unit_test(test_check_header_bound),
	    cmocka_unit_test(test_check_ok_cached),
	    cmocka_unit_test(test_cache_expiry),
	    cmocka_unit_test(test_throttle),
	    cmocka_unit_test(test_throttle_window),
	    cmocka_unit_test(test_cache_bound),
	    cmocka_unit_test(test_unknown_user),
	    cmocka_unit_test(test_account_below_minimum_cost),
	    cmocka_unit_test(test_threads),
	    cmocka_unit_test(test_throttle_burst),
	    cmocka_unit_test(test_throttle_burst_counted_in_slot),
	    cmocka_unit_test(test_passwd_pipe_ok),
	    cmocka_unit_test(test_passwd_refusals),
	    cmocka_unit_test(test_passwd_tty_echo),
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
