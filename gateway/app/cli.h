/*
 * cli: the operator's command line for a running gateway's admin API (docs: README "CLI"):
 *
 *   mdmgw action  [client options] [--key K] DEVICE corporate_wipe|full_wipe|pin_lock
 *   mdmgw actions [client options] [--device X] [--state S]
 *   mdmgw resolve [client options] ACTION_ID sent|not_sent [--note TEXT]
 *   mdmgw block   [client options] DEVICE [--note TEXT]
 *   mdmgw unblock [client options] DEVICE
 *
 * The pure parts (argument parsing, client configuration, the request, rendering an answer and
 * choosing the exit code) are separate from the one function that talks HTTPS (cli_main), so
 * they can be tested without a network.
 */
#ifndef MDM_CLI_H
#define MDM_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "../../core/err.h"
#include "config.h"

/* Exit codes: success, refusal or failure of the operation, usage/config/connection error. */
#define CLI_EXIT_OK 0
#define CLI_EXIT_FAILED 1
#define CLI_EXIT_USAGE 2

#define CLI_URL_MAX 2048
#define CLI_USER_MAX 256
#define CLI_PASSWORD_MAX 1024
#define CLI_KEY_MAX 256 /* Idempotency-Key: 1..255 printable ASCII, no spaces */
#define CLI_MAX_BODY ((size_t)4 << 20)
#define CLI_DEFAULT_TIMEOUT_S 30
#define CLI_ENV_CONFIG "MDMGW_CLIENT_CONFIG"
#define CLI_ENV_PASSWORD "MDMGW_PASSWORD"

enum cli_cmd { CLI_ACTION = 0, CLI_ACTIONS, CLI_RESOLVE, CLI_BLOCK, CLI_UNBLOCK };

/* cli_opts: the command line as given; every string points into argv (NULL when absent). */
struct cli_opts {
	enum cli_cmd cmd;
	bool help;
	/* client options */
	const char *url, *user, *password_file, *ca, *client_config;
	long timeout_s; /* 0: not given */
	/* command arguments */
	const char *key, *device, *state, *note, *action, *action_id, *result;
};

/* cli_client: where and as whom to connect, once flags, environment and file are merged. */
struct cli_client {
	char url[CLI_URL_MAX]; /* https://host[:port][/instance], no trailing '/' */
	char user[CLI_USER_MAX];
	char password[CLI_PASSWORD_MAX];
	char ca_file[CONFIG_PATH_MAX];
	long timeout_s;
};

/* cli_request: one admin API call. */
struct cli_request {
	const char *method; /* "GET", "POST", "PUT", "DELETE" */
	char url[CLI_URL_MAX + 512];
	char *body;	       /* JSON, malloc'd; NULL: no body */
	char key[CLI_KEY_MAX]; /* Idempotency-Key; "" when none is sent */
	bool key_generated;    /* key was made here (not --key): the operator must be told it */
};

/* cli_is_command: whether name is one of this module's commands. */
bool cli_is_command(const char *name);

/* cli_usage: the usage text of the commands, client options and exit codes. */
void cli_usage(FILE *f);

/*
 * cli_parse: argv[1] is the command; options and operands follow in any order ("--opt VALUE" or
 * "--opt=VALUE"; "--" ends options). o is filled (strings point into argv). MDM_ERR_INVALID
 * with why ("action: ...") on anything unknown, repeated, missing or malformed that can be
 * checked without the server (action and result words, state names, action id form, key form,
 * timeout range). With --help/-h, o->help is set and nothing else is required.
 */
enum mdm_err cli_parse(int argc, char **argv, struct cli_opts *o, char *why, size_t whysz);

/*
 * cli_client_load: merges the client configuration. The file is --client-config, else the
 * environment's MDMGW_CLIENT_CONFIG when set; it is a JSON object with only "url", "user",
 * "password" (inline, {"file": P} or {"env": N}, as conf_secret; an inline one in a file
 * readable by group or others is refused) and "ca_file" (relative paths are taken from the
 * file's directory). Flags override the file; the password comes from --password-file (first
 * line), else MDMGW_PASSWORD, else the file. url, user, password and a readable CA file are
 * all required. MDM_ERR_CONFIG (or MDM_ERR_IO for an unreadable file) with why
 * ("file: key: what is wrong"); c->password is wiped on failure.
 */
enum mdm_err cli_client_load(const struct cli_opts *o, struct cli_client *c, char *why,
			     size_t whysz);

/*
 * cli_request_build: the call for o against c->url. For CLI_ACTION, o->key is used when given,
 * else a fresh random 128-bit key in hex (getrandom) with r->key_generated set. Path segments
 * and query values are percent-encoded. Free with cli_request_clear.
 */
enum mdm_err cli_request_build(const struct cli_opts *o, const struct cli_client *c,
			       struct cli_request *r, char *why, size_t whysz);

/* cli_request_clear: frees r's body. */
void cli_request_clear(struct cli_request *r);

/*
 * cli_render: prints the server's answer to cmd (status and body of len bytes) plainly: action
 * objects as a short block, a list as one line per action, a block state; an error sentence
 * ({"error"}) and anything unexpected go to err. Returns the exit code: CLI_EXIT_OK for success
 * (action "sent", resolve done, list answered, block/unblock done), CLI_EXIT_FAILED for a
 * refusal or failure (403, 404, 409, 422, 502 with an action object, or an action whose state
 * is not the success one), CLI_EXIT_USAGE for the rest (400, 401, other 5xx, an answer that is
 * not the contract's).
 */
int cli_render(enum cli_cmd cmd, long status, const char *body, size_t len, FILE *out, FILE *err);

/*
 * cli_main: the whole command (argv[1] is the command): parse, load the client configuration,
 * call the gateway over HTTPS trusting only the CA file (never the system store), render.
 * Returns the exit code.
 */
int cli_main(int argc, char **argv);

#endif
