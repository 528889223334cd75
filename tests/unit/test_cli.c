/* test_cli: the admin API client without a network: arguments, client config, requests, answers. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../gateway/app/cli.h"

#define ARGV(...) ((char *[]){"mdmgw", __VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *[]){"mdmgw", __VA_ARGS__}) / sizeof(char *)))
#define PARSE(o, why, ...) cli_parse(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), (o), why, sizeof(why))

static char dir[64];

static int make_dir(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_cli.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	unsetenv(CLI_ENV_CONFIG);
	unsetenv(CLI_ENV_PASSWORD);
	return 0;
}

static int remove_dir(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* put_file: name in the test directory with text and mode; returns its path (static buffer). */
static const char *put_file(const char *name, const char *text, mode_t mode)
{
	static char path[4][256];
	static int slot;
	char *p = path[slot++ % 4];
	FILE *f;

	snprintf(p, 256, "%s/%s", dir, name);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(p, mode), 0);
	return p;
}

/* --- argument parsing ------------------------------------------------------------------------ */

static void parse_action_in_any_order(void **state)
{
	struct cli_opts o;
	char why[512] = "";

	(void)state;
	assert_int_equal(PARSE(&o, why, "action", "--url=https://gw:8443", "aa-bb-cc-dd-ee-ff",
			       "--key", "k-1", "corporate_wipe", "--user", "boss", "--timeout",
			       "5s"),
			 MDM_OK);
	assert_int_equal(o.cmd, CLI_ACTION);
	assert_string_equal(o.url, "https://gw:8443");
	assert_string_equal(o.device, "aa-bb-cc-dd-ee-ff");
	assert_string_equal(o.action, "corporate_wipe");
	assert_string_equal(o.key, "k-1");
	assert_string_equal(o.user, "boss");
	assert_int_equal(o.timeout_s, 5);
	assert_null(o.ca);
}

static void parse_other_commands(void **state)
{
	struct cli_opts o;
	char why[512] = "";

	(void)state;
	assert_int_equal(PARSE(&o, why, "actions", "--state", "unknown", "--device", "AABB"),
			 MDM_OK);
	assert_int_equal(o.cmd, CLI_ACTIONS);
	assert_string_equal(o.state, "unknown");
	assert_int_equal(PARSE(&o, why, "resolve", "0123456789abcdef0123456789ABCDEF", "not_sent",
			       "--note", "checked on the console"),
			 MDM_OK);
	assert_string_equal(o.result, "not_sent");
	assert_string_equal(o.note, "checked on the console");
	assert_int_equal(PARSE(&o, why, "block", "--", "dev-1"), MDM_OK);
	assert_string_equal(o.device, "dev-1");
	assert_int_equal(PARSE(&o, why, "unblock", "dev-1"), MDM_OK);
	assert_int_equal(o.cmd, CLI_UNBLOCK);
	assert_int_equal(PARSE(&o, why, "resolve", "--help"), MDM_OK);
	assert_true(o.help);
}

static void expect_refused(int argc, char **argv, const char *msg)
{
	struct cli_opts o;
	char why[512] = "";

	assert_int_equal(cli_parse(argc, argv, &o, why, sizeof(why)), MDM_ERR_INVALID);
	assert_string_equal(why, msg);
}

#define REFUSED(msg, ...) expect_refused(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), msg)

static void parse_errors(void **state)
{
	(void)state;
	REFUSED("unknown command frobnicate", "frobnicate");
	REFUSED("action: unknown option --bogus", "action", "--bogus", "x", "pin_lock");
	REFUSED("actions: unknown option --key", "actions", "--key", "k");
	REFUSED("unblock: unknown option --note", "unblock", "d", "--note", "n");
	REFUSED("action: --url needs a value", "action", "d", "pin_lock", "--url");
	REFUSED("action: --user is given twice", "action", "--user", "a", "--user", "b", "d",
		"pin_lock");
	REFUSED("action: --ca is empty", "action", "--ca=", "d", "pin_lock");
	REFUSED("action: expected DEVICE corporate_wipe|full_wipe|pin_lock", "action", "d");
	REFUSED("action: unknown action \"wipe\" (corporate_wipe, full_wipe, pin_lock)", "action",
		"d", "wipe");
	REFUSED("action: too many operands; expected DEVICE corporate_wipe|full_wipe|pin_lock",
		"action", "a", "b", "c", "d");
	REFUSED("actions: expected no operands (use --device / --state)", "actions", "d");
	REFUSED("resolve: ACTION_ID must be the 32 hex digits of an action id", "resolve", "12ab",
		"sent");
	REFUSED("resolve: the result must be sent or not_sent, not \"yes\"", "resolve",
		"0123456789abcdef0123456789abcdef", "yes");
	REFUSED("actions: --state: unknown state \"open\" (pending, unknown, sent, failed, "
		"rejected, refused, resolved_sent, resolved_not_sent)",
		"actions", "--state", "open");
	REFUSED("action: --key: must be printable ASCII without spaces", "action", "--key", "a b",
		"d", "pin_lock");
	REFUSED("action: --timeout: must be a number of seconds from 1 to 3600", "action",
		"--timeout", "0", "d", "pin_lock");
	REFUSED("action: --timeout: must be a number of seconds from 1 to 3600", "action",
		"--timeout", "5m", "d", "pin_lock");
	REFUSED("block: expected DEVICE", "block");
}

/* --- client configuration -------------------------------------------------------------------- */

static enum mdm_err load(const struct cli_opts *o, struct cli_client *c, char *why, size_t n)
{
	memset(c, 0xa5, sizeof(*c));
	return cli_client_load(o, c, why, n);
}

static void config_file_relative_ca(void **state)
{
	struct cli_opts o = {.cmd = CLI_ACTIONS};
	struct cli_client c;
	char why[512] = "", ca[300];

	(void)state;
	put_file("ca.pem", "pem", 0644);
	o.client_config =
	    put_file("client.json",
		     "{\"url\": \"https://gw.example:8443/inst/\", \"user\": \"boss\", "
		     "\"password\": \"pw-inline\", \"ca_file\": \"ca.pem\"}",
		     0600);
	assert_int_equal(load(&o, &c, why, sizeof(why)), MDM_OK);
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	assert_string_equal(c.url, "https://gw.example:8443/inst"); /* trailing '/' dropped */
	assert_string_equal(c.user, "boss");
	assert_string_equal(c.password, "pw-inline");
	assert_string_equal(c.ca_file, ca);
	assert_int_equal(c.timeout_s, CLI_DEFAULT_TIMEOUT_S);
}

static void config_precedence(void **state)
{
	struct cli_opts o = {.cmd = CLI_ACTIONS, .timeout_s = 7};
	struct cli_client c;
	char why[512] = "";
	const char *pwfile;

	(void)state;
	put_file("ca.pem", "pem", 0644);
	put_file("other-ca.pem", "pem", 0644);
	o.client_config = put_file("client.json",
				   "{\"url\": \"https://file:1\", \"user\": \"fileuser\", "
				   "\"password\": \"from-file\", \"ca_file\": \"ca.pem\"}",
				   0600);
	/* the environment's password beats the file's */
	setenv(CLI_ENV_PASSWORD, "from-env", 1);
	assert_int_equal(load(&o, &c, why, sizeof(why)), MDM_OK);
	assert_string_equal(c.password, "from-env");
	assert_string_equal(c.url, "https://file:1");
	assert_int_equal(c.timeout_s, 7);
	/* flags beat both */
	pwfile = put_file("pw.txt", "from-flag-file\r\nsecond line\n", 0600);
	o.password_file = pwfile;
	o.url = "https://flag:2";
	o.user = "flaguser";
	o.ca = put_file("other-ca.pem", "pem", 0644);
	assert_int_equal(load(&o, &c, why, sizeof(why)), MDM_OK);
	assert_string_equal(c.password, "from-flag-file");
	assert_string_equal(c.url, "https://flag:2");
	assert_string_equal(c.user, "flaguser");
	assert_string_equal(c.ca_file, o.ca);
	unsetenv(CLI_ENV_PASSWORD);
}

static void config_from_environment(void **state)
{
	struct cli_opts o = {.cmd = CLI_ACTIONS};
	struct cli_client c;
	char why[512] = "";

	(void)state;
	put_file("ca.pem", "pem", 0644);
	put_file("secret", "s3cret\n", 0600);
	setenv(CLI_ENV_CONFIG,
	       put_file("env.json",
			"{\"url\": \"https://envgw:9\", \"user\": \"u\", \"password\": {\"file\": "
			"\"secret\"}, \"ca_file\": \"ca.pem\"}",
			0644),
	       1);
	assert_int_equal(load(&o, &c, why, sizeof(why)), MDM_OK);
	assert_string_equal(c.url, "https://envgw:9");
	assert_string_equal(c.password, "s3cret");
	/* --client-config wins over the environment */
	o.client_config = put_file("flag.json",
				   "{\"url\": \"https://flaggw:9\", \"user\": \"u\", \"password\": "
				   "{\"env\": \"CLI_TEST_PW\"}, \"ca_file\": \"ca.pem\"}",
				   0644);
	assert_int_equal(load(&o, &c, why, sizeof(why)), MDM_ERR_CONFIG);
	assert_non_null(strstr(why, "flag.json: password: environment variable \"CLI_TEST_PW\" "
				    "is not set"));
	/* a reference a flag makes moot is not resolved */
	o.password_file = put_file("secret", "s3cret\n", 0600);
	assert_int_equal(load(&o, &c, why, sizeof(why)), MDM_OK);
	assert_string_equal(c.url, "https://flaggw:9");
	unsetenv(CLI_ENV_CONFIG);
}

static void expect_config_error(struct cli_opts *o, const char *part)
{
	struct cli_client c;
	char why[512] = "";

	assert_int_not_equal(load(o, &c, why, sizeof(why)), MDM_OK);
	if (!strstr(why, part))
		fail_msg("message %s lacks %s", why, part);
	assert_string_equal(c.password, ""); /* wiped */
}

static void config_plaintext_password_refused(void **state)
{
	struct cli_opts o = {.cmd = CLI_ACTIONS};

	(void)state;
	put_file("ca.pem", "pem", 0644);
	o.client_config = put_file("client.json",
				   "{\"url\": \"https://gw:1\", \"user\": \"boss\", \"password\": "
				   "\"pw\", \"ca_file\": \"ca.pem\"}",
				   0640);
	expect_config_error(&o, "client.json: password: plaintext password in a file readable "
				"by group or others (chmod 600, or use {\"file\": ...} / "
				"{\"env\": ...})");
	/* even when a flag would give the password: it is exposed all the same */
	o.password_file = put_file("pw", "x\n", 0600);
	expect_config_error(&o, "client.json: password: plaintext password");
}

static void config_errors(void **state)
{
	struct cli_opts o = {.cmd = CLI_ACTIONS};

	(void)state;
	put_file("ca.pem", "pem", 0644);
	o.client_config = put_file("c.json", "{\"url\": \"http://gw:1\"}", 0600);
	expect_config_error(&o, "c.json: url: must start with https://");
	o.client_config = put_file("c.json", "{\"url\": \"https://gw:1/?x=1\"}", 0600);
	expect_config_error(&o, "c.json: url: must not have a query or fragment");
	o.client_config = put_file("c.json", "{\"url\": \"https://u@gw:1\"}", 0600);
	expect_config_error(&o, "c.json: url: must not carry a user name");
	o.client_config = put_file("c.json", "{\"user\": 5}", 0600);
	expect_config_error(&o, "c.json: user: must be a string");
	o.client_config = put_file("c.json", "{\"user\": \"a:b\"}", 0600);
	expect_config_error(&o, "c.json: user: must not contain ':'");
	o.client_config = put_file("c.json", "{\"uri\": \"https://gw\"}", 0600);
	expect_config_error(&o, "c.json: uri: unknown key (url, user, password, ca_file)");
	o.client_config = put_file("c.json", "{\"ca_file\": \"missing.pem\"}", 0600);
	expect_config_error(&o, "c.json: ca_file: cannot read ");
	o.client_config = put_file("c.json", "[1]", 0600);
	expect_config_error(&o, "c.json: must be a JSON object");
	o.client_config = put_file("c.json", "{\"url\": ", 0600);
	expect_config_error(&o, "c.json: line 1 column");
	o.client_config = put_file("c.json", "{\"password\": {\"file\": \"nope\"}}", 0600);
	expect_config_error(&o, "c.json: password: cannot open secret file");
	o.client_config = "/nonexistent/client.json";
	expect_config_error(&o, "/nonexistent/client.json: cannot open: ");
	o.client_config = NULL;
	expect_config_error(&o, "no gateway URL: give --url or \"url\" in a client config");
	o.url = "https://gw:1";
	expect_config_error(&o, "no user: give --user");
	o.user = "boss";
	expect_config_error(&o, "no password: give --password-file, $MDMGW_PASSWORD");
	setenv(CLI_ENV_PASSWORD, "", 1);
	expect_config_error(&o, "MDMGW_PASSWORD: password: environment variable "
				"\"MDMGW_PASSWORD\" is empty");
	setenv(CLI_ENV_PASSWORD, "pw", 1);
	expect_config_error(&o, "no CA file (the system's CAs are never trusted): give --ca");
	o.ca = dir;
	expect_config_error(&o, "--ca: value: ");
	o.ca = NULL;
	o.url = "ftp://x";
	expect_config_error(&o, "--url: value: must start with https://");
	unsetenv(CLI_ENV_PASSWORD);
}

/* --- requests -------------------------------------------------------------------------------- */

static const struct cli_client client = {.url = "https://gw:8443/inst"};

static void request_action(void **state)
{
	struct cli_opts o;
	struct cli_request r, r2;
	char why[512] = "";

	(void)state;
	assert_int_equal(PARSE(&o, why, "action", "AA:BB:CC:DD:EE:FF", "full_wipe"), MDM_OK);
	assert_int_equal(cli_request_build(&o, &client, &r, why, sizeof(why)), MDM_OK);
	assert_string_equal(r.method, "POST");
	assert_string_equal(r.url, "https://gw:8443/inst/api/v1/devices/AA:BB:CC:DD:EE:FF/actions");
	assert_string_equal(r.body, "{\"action\":\"full_wipe\"}");
	assert_true(r.key_generated);
	assert_int_equal(strlen(r.key), 32);
	assert_int_equal(strspn(r.key, "0123456789abcdef"), 32);
	assert_int_equal(cli_request_build(&o, &client, &r2, why, sizeof(why)), MDM_OK);
	assert_string_not_equal(r.key, r2.key); /* random, not fixed */
	cli_request_clear(&r);
	cli_request_clear(&r2);
	assert_int_equal(PARSE(&o, why, "action", "--key", "retry-7", "dev 1/x", "pin_lock"),
			 MDM_OK);
	assert_int_equal(cli_request_build(&o, &client, &r, why, sizeof(why)), MDM_OK);
	assert_string_equal(r.key, "retry-7");
	assert_false(r.key_generated);
	assert_string_equal(r.url, "https://gw:8443/inst/api/v1/devices/dev%201%2Fx/actions");
	cli_request_clear(&r);
}

static void request_others(void **state)
{
	struct cli_opts o;
	struct cli_request r;
	char why[512] = "";

	(void)state;
	assert_int_equal(PARSE(&o, why, "actions"), MDM_OK);
	assert_int_equal(cli_request_build(&o, &client, &r, why, sizeof(why)), MDM_OK);
	assert_string_equal(r.method, "GET");
	assert_string_equal(r.url, "https://gw:8443/inst/api/v1/actions");
	assert_null(r.body);
	assert_string_equal(r.key, "");
	assert_int_equal(PARSE(&o, why, "actions", "--state", "unknown", "--device", "a&b"),
			 MDM_OK);
	assert_int_equal(cli_request_build(&o, &client, &r, why, sizeof(why)), MDM_OK);
	assert_string_equal(r.url,
			    "https://gw:8443/inst/api/v1/actions?device=a%26b&state=unknown");
	assert_int_equal(PARSE(&o, why, "resolve", "0123456789abcdef0123456789abcdef", "sent",
			       "--note", "seen \"wiped\""),
			 MDM_OK);
	assert_int_equal(cli_request_build(&o, &client, &r, why, sizeof(why)), MDM_OK);
	assert_string_equal(r.method, "POST");
	assert_string_equal(r.url, "https://gw:8443/inst/api/v1/actions/"
				   "0123456789abcdef0123456789abcdef/resolve");
	assert_string_equal(r.body, "{\"result\":\"sent\",\"note\":\"seen \\\"wiped\\\"\"}");
	cli_request_clear(&r);
	assert_int_equal(PARSE(&o, why, "block", "dev1"), MDM_OK);
	assert_int_equal(cli_request_build(&o, &client, &r, why, sizeof(why)), MDM_OK);
	assert_string_equal(r.method, "PUT");
	assert_string_equal(r.url, "https://gw:8443/inst/api/v1/devices/dev1/block");
	assert_null(r.body);
	assert_int_equal(PARSE(&o, why, "block", "dev1", "--note", "stolen"), MDM_OK);
	assert_int_equal(cli_request_build(&o, &client, &r, why, sizeof(why)), MDM_OK);
	assert_string_equal(r.body, "{\"note\":\"stolen\"}");
	cli_request_clear(&r);
	assert_int_equal(PARSE(&o, why, "unblock", "dev1"), MDM_OK);
	assert_int_equal(cli_request_build(&o, &client, &r, why, sizeof(why)), MDM_OK);
	assert_string_equal(r.method, "DELETE");
	assert_null(r.body);
}

/* --- rendering ------------------------------------------------------------------------------- */

struct shown {
	int rc;
	char *out, *err;
};

static struct shown show(enum cli_cmd cmd, long status, const char *body)
{
	struct shown s;
	size_t on = 0, en = 0;
	FILE *out = open_memstream(&s.out, &on), *err = open_memstream(&s.err, &en);

	assert_non_null(out);
	assert_non_null(err);
	s.rc = cli_render(cmd, status, body, strlen(body), out, err);
	fclose(out);
	fclose(err);
	return s;
}

static void shown_free(struct shown *s)
{
	free(s->out);
	free(s->err);
}

#define ACT(state, detail)                                                                         \
	"{\"action_id\": \"0123456789abcdef0123456789abcdef\", \"state\": \"" state "\", "         \
	"\"action\": \"corporate_wipe\", \"device\": \"AABBCCDDEEFF\", \"mdm\": \"inventory\", "   \
	"\"vendor_id\": \"inv-7\", \"user\": \"boss\", \"source\": \"127.0.0.1\", \"detail\": "    \
	"\"" detail "\", \"requested_at\": \"2024-05-01T12:00:00.000Z\", \"completed_at\": null, " \
	"\"resolved_by\": null, \"note\": null}"

static void expect_shown(enum cli_cmd cmd, long status, const char *body, int rc, const char *out,
			 const char *err)
{
	struct shown s = show(cmd, status, body);

	if (s.rc != rc || (out && !strstr(s.out, out)) || (err && !strstr(s.err, err)))
		fail_msg("status %ld: rc %d (want %d)\nout: %s(want %s)\nerr: %s(want %s)", status,
			 s.rc, rc, s.out, out ? out : "-", s.err, err ? err : "-");
	if (!err && s.err[0])
		fail_msg("status %ld: unexpected error output %s", status, s.err);
	shown_free(&s);
}

static void render_action_answers(void **state)
{
	(void)state;
	expect_shown(CLI_ACTION, 200, ACT("sent", ""), 0,
		     "action 0123456789abcdef0123456789abcdef\n  state         sent\n", NULL);
	expect_shown(CLI_ACTION, 200, ACT("sent", ""), 0, "  vendor id     inv-7\n", NULL);
	expect_shown(CLI_ACTION, 200, ACT("sent", ""), 0, "  completed at  -\n", NULL);
	expect_shown(CLI_ACTION, 200, ACT("pending", ""), 1, "state         pending",
		     "the action is pending\n");
	expect_shown(CLI_ACTION, 403, ACT("refused", "no MDM manages this device"), 1,
		     "state         refused", "refused: no MDM manages this device\n");
	expect_shown(CLI_ACTION, 403, "{\"error\": \"account wiper may not full_wipe\"}", 1, "",
		     "refused (HTTP 403): account wiper may not full_wipe\n");
	expect_shown(CLI_ACTION, 409, ACT("unknown", ""), 1, "state         unknown",
		     "conflict: action 0123456789abcdef0123456789abcdef is unknown");
	expect_shown(CLI_ACTION, 422,
		     "{\"error\": \"key used for another request\", \"action_id\": \"ff00\"}", 1,
		     "", "refused (HTTP 422): key used for another request (first action: ff00)\n");
	expect_shown(CLI_ACTION, 502, ACT("failed", "MDM unreachable"), 1, "state         failed",
		     "failed (failed): MDM unreachable\n");
	expect_shown(CLI_ACTION, 502, ACT("rejected", "device offline"), 1,
		     "state         rejected", "rejected by the MDM: device offline\n");
	expect_shown(CLI_ACTION, 502, "{\"error\": \"bad gateway\"}", 2, "",
		     "gateway error (HTTP 502): bad gateway\n");
	expect_shown(CLI_ACTION, 503, "{\"error\": \"journal unavailable\"}", 2, "",
		     "gateway error (HTTP 503): journal unavailable\n");
	expect_shown(CLI_ACTION, 500, "", 2, "", "gateway error (HTTP 500)\n");
	expect_shown(CLI_ACTION, 401, "{\"error\": \"authentication required\"}", 2, "",
		     "authentication failed (HTTP 401): check the user and password: "
		     "authentication required\n");
	expect_shown(CLI_ACTION, 400, "{\"error\": \"Idempotency-Key is required\"}", 2, "",
		     "error (HTTP 400): Idempotency-Key is required\n");
	expect_shown(CLI_ACTION, 200, "not json", 2, "",
		     "unexpected answer (HTTP 200): the body is not JSON\n");
	expect_shown(CLI_ACTION, 200, "{\"error\": \"x\"}", 2, "",
		     "unexpected answer: not an action\n");
	/* a server string cannot drive the terminal */
	expect_shown(CLI_ACTION, 403, ACT("refused", "a\\u001b[2Jb"), 1, "", "refused: a?[2Jb\n");
}

static void render_resolve_list_block(void **state)
{
	(void)state;
	expect_shown(CLI_RESOLVE, 200, ACT("resolved_not_sent", ""), 0, "resolved_not_sent", NULL);
	expect_shown(CLI_RESOLVE, 409, ACT("sent", ""), 1, "",
		     "conflict: the action is sent, not unknown: nothing to resolve\n");
	expect_shown(CLI_RESOLVE, 409, "{\"error\": \"the action is not unknown\"}", 1, "",
		     "refused (HTTP 409): the action is not unknown\n");
	expect_shown(CLI_RESOLVE, 404, "{\"error\": \"no such action\"}", 1, "",
		     "refused (HTTP 404): no such action\n");
	expect_shown(CLI_ACTIONS, 200, "{\"actions\": []}", 0, "no actions\n", NULL);
	expect_shown(
	    CLI_ACTIONS, 200, "{\"actions\": [" ACT("unknown", "") ", " ACT("sent", "ok") "]}", 0,
	    "ACTION_ID                         STATE    ACTION          DEVICE        MDM  "
	    "      VENDOR_ID  USER  REQUESTED                 COMPLETED  DETAIL\n"
	    "0123456789abcdef0123456789abcdef  unknown  corporate_wipe  AABBCCDDEEFF  "
	    "inventory  inv-7      boss  2024-05-01T12:00:00.000Z  -          -\n"
	    "0123456789abcdef0123456789abcdef  sent     corporate_wipe  AABBCCDDEEFF  "
	    "inventory  inv-7      boss  2024-05-01T12:00:00.000Z  -          ok\n",
	    NULL);
	expect_shown(CLI_ACTIONS, 200, "{\"actions\": [{\"x\": 1}]}", 2, "",
		     "unexpected answer: actions[0] is not an action\n");
	expect_shown(CLI_ACTIONS, 400, "{\"error\": \"bad state\"}", 2, "",
		     "error (HTTP 400): bad state\n");
	expect_shown(CLI_BLOCK, 200,
		     "{\"device\": \"AABBCCDDEEFF\", \"blocked\": true, \"by\": \"boss\", \"at\": "
		     "\"2024-05-01T12:00:00Z\", \"note\": \"stolen\"}",
		     0, "AABBCCDDEEFF: blocked by boss at 2024-05-01T12:00:00Z (note: stolen)\n",
		     NULL);
	expect_shown(CLI_BLOCK, 403, "{\"error\": \"role admin required\"}", 1, "",
		     "refused (HTTP 403): role admin required\n");
	expect_shown(CLI_UNBLOCK, 200, "{\"device\": \"AABBCCDDEEFF\", \"blocked\": false}", 0,
		     "AABBCCDDEEFF: not blocked\n", NULL);
	expect_shown(CLI_UNBLOCK, 404, "{\"error\": \"device is not blocked\"}", 1, "",
		     "refused (HTTP 404): device is not blocked\n");
	expect_shown(CLI_UNBLOCK, 200, "{\"device\": 1}", 2, "",
		     "unexpected answer: not a block state\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(parse_action_in_any_order),
	    cmocka_unit_test(parse_other_commands),
	    cmocka_unit_test(parse_errors),
	    cmocka_unit_test_setup_teardown(config_file_relative_ca, make_dir, remove_dir),
	    cmocka_unit_test_setup_teardown(config_precedence, make_dir, remove_dir),
	    cmocka_unit_test_setup_teardown(config_from_environment, make_dir, remove_dir),
	    cmocka_unit_test_setup_teardown(config_plaintext_password_refused, make_dir,
					    remove_dir),
	    cmocka_unit_test_setup_teardown(config_errors, make_dir, remove_dir),
	    cmocka_unit_test(request_action),
	    cmocka_unit_test(request_others),
	    cmocka_unit_test(render_action_answers),
	    cmocka_unit_test(render_resolve_list_block),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
