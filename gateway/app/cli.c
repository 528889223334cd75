/*
 * cli: the operator's commands against a running gateway's admin API. Everything but cli_main
 * and the transfer below is pure (the client configuration reads its files), so the unit tests
 * drive parsing, configuration, requests and rendering without a network.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../core/buf.h"
#include "cli.h"

#define CLIENT_FILE_MAX (64 * 1024)
#define MAX_TIMEOUT_S 3600
#define MAX_DEVICE 255
#define MAX_NOTE 4096
#define ACTION_ID_LEN 32
#define KEY_RANDOM_BYTES 16 /* 128 bits */
#define CLIENT_KEYS "(url, user, password, ca_file)"
#define PLAINTEXT_PASSWORD                                                                         \
	"plaintext password in a file readable by group or others (chmod 600, or use {\"file\": "  \
	"...} / {\"env\": ...})"

static const char *const cmd_names[] = {"action", "actions", "resolve", "block", "unblock"};
static const char *const action_words[] = {"corporate_wipe", "full_wipe", "pin_lock", NULL};
static const char *const result_words[] = {"sent", "not_sent", NULL};
static const char *const state_words[] = {"pending",	   "unknown",		"sent",
					  "failed",	   "rejected",		"refused",
					  "resolved_sent", "resolved_not_sent", NULL};

#define NCMDS (sizeof(cmd_names) / sizeof(cmd_names[0]))
#define BIT(c) (1u << (c))
#define ALL_CMDS                                                                                   \
	(BIT(CLI_ACTION) | BIT(CLI_ACTIONS) | BIT(CLI_RESOLVE) | BIT(CLI_BLOCK) | BIT(CLI_UNBLOCK))

/* --- usage and argument parsing -------------------------------------------------------------- */

bool cli_is_command(const char *name)
{
	for (size_t i = 0; i < NCMDS; i++)
		if (strcmp(name, cmd_names[i]) == 0)
			return true;
	return false;
}

void cli_usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: mdmgw action  [client options] [--key KEY] DEVICE "
	    "corporate_wipe|full_wipe|pin_lock\n"
	    "       mdmgw actions [client options] [--device DEVICE] [--state STATE]\n"
	    "       mdmgw resolve [client options] ACTION_ID sent|not_sent [--note TEXT]\n"
	    "       mdmgw block   [client options] DEVICE [--note TEXT]\n"
	    "       mdmgw unblock [client options] DEVICE\n"
	    "\n"
	    "DEVICE is a MAC address in any common form or a GUID. `action` without --key makes a\n"
	    "random idempotency key and prints it first: after a timeout, repeat the command with\n"
	    "--key KEY to learn what happened without sending the action twice.\n"
	    "STATE: pending, unknown, sent, failed, rejected, refused, resolved_sent, "
	    "resolved_not_sent.\n"
	    "\n"
	    "client options (flags override the client config file):\n"
	    "  --url https://HOST:PORT[/INSTANCE]  the gateway\n"
	    "  --user NAME                        account (roles action / admin)\n"
	    "  --password-file FILE               password on the first line of FILE; else the\n"
	    "                                     environment's " CLI_ENV_PASSWORD
	    ", else the file\n"
	    "  --ca FILE                          the only CA trusted for the gateway's "
	    "certificate\n"
	    "  --client-config FILE               JSON {\"url\", \"user\", \"password\", "
	    "\"ca_file\"};\n"
	    "                                     default: the environment's " CLI_ENV_CONFIG "\n"
	    "  --timeout SECONDS                  for the whole call (default %d)\n"
	    "\n"
	    "exit codes:\n"
	    "  0  done: action sent, resolve recorded, list answered, block/unblock done\n"
	    "  1  refused or failed: not allowed (403), refused by policy, conflict (409), key\n"
	    "     reused with another request (422), the MDM failed or rejected it (502), not\n"
	    "     found (404), or the action is pending/unknown\n"
	    "  2  usage, configuration or connection error: bad arguments or request (400),\n"
	    "     cannot reach the gateway, TLS failure, authentication failed (401), server\n"
	    "     error (5xx)\n",
	    CLI_DEFAULT_TIMEOUT_S);
}

static int word_index(const char *const *words, const char *s)
{
	for (int i = 0; words[i]; i++)
		if (strcmp(words[i], s) == 0)
			return i;
	return -1;
}

static bool is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strchr("0123456789abcdefABCDEF", s[i]) || !s[i])
			return false;
	return s[n] == '\0';
}

static bool has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/* key_problem: NULL when s is a valid Idempotency-Key, else what is wrong. */
static const char *key_problem(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= CLI_KEY_MAX)
		return "must be 1 to 255 characters";
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return "must be printable ASCII without spaces";
	return NULL;
}

struct str_opt {
	const char *name;
	size_t off; /* of a const char * in struct cli_opts */
	unsigned cmds;
};

#define OPT(n, m, c)                                                                               \
	{                                                                                          \
		(n), offsetof(struct cli_opts, m), (c)                                             \
	}
static const struct str_opt str_opts[] = {
    OPT("--url", url, ALL_CMDS),
    OPT("--user", user, ALL_CMDS),
    OPT("--password-file", password_file, ALL_CMDS),
    OPT("--ca", ca, ALL_CMDS),
    OPT("--client-config", client_config, ALL_CMDS),
    OPT("--key", key, BIT(CLI_ACTION)),
    OPT("--device", device, BIT(CLI_ACTIONS)),
    OPT("--state", state, BIT(CLI_ACTIONS)),
    OPT("--note", note, BIT(CLI_RESOLVE) | BIT(CLI_BLOCK)),
};
#define NSTR_OPTS (sizeof(str_opts) / sizeof(str_opts[0]))

static enum mdm_err parse_timeout(const char *cmd, const char *v, long *out, char *why,
				  size_t whysz)
{
	char *end = NULL;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (end && end != v && strcmp(end, "s") == 0)
		end++;
	if (errno || !end || end == v || *end || n < 1 || n > MAX_TIMEOUT_S) {
		err_why(why, whysz, "%s: --timeout: must be a number of seconds from 1 to %d", cmd,
			MAX_TIMEOUT_S);
		return MDM_ERR_INVALID;
	}
	*out = n;
	return MDM_OK;
}

/* take_option: argv[*i] is an option of cmd; stores its value. */
static enum mdm_err take_option(struct cli_opts *o, int argc, char **argv, int *i, char *why,
				size_t whysz)
{
	const char *cmd = cmd_names[o->cmd], *arg = argv[*i], *eq = strchr(arg, '=');
	size_t nlen = eq ? (size_t)(eq - arg) : strlen(arg);
	const char *val = eq ? eq + 1 : NULL;
	const struct str_opt *so = NULL;
	bool is_timeout = nlen == 9 && strncmp(arg, "--timeout", 9) == 0;

	for (size_t k = 0; k < NSTR_OPTS && !so; k++)
		if (strlen(str_opts[k].name) == nlen && strncmp(arg, str_opts[k].name, nlen) == 0)
			so = &str_opts[k];
	if ((!so && !is_timeout) || (so && !(so->cmds & BIT(o->cmd)))) {
		err_why(why, whysz, "%s: unknown option %.*s", cmd, (int)nlen, arg);
		return MDM_ERR_INVALID;
	}
	if (!val) {
		if (*i + 1 >= argc) {
			err_why(why, whysz, "%s: %.*s needs a value", cmd, (int)nlen, arg);
			return MDM_ERR_INVALID;
		}
		val = argv[++*i];
	}
	if (is_timeout) {
		if (o->timeout_s) {
			err_why(why, whysz, "%s: --timeout is given twice", cmd);
			return MDM_ERR_INVALID;
		}
		return parse_timeout(cmd, val, &o->timeout_s, why, whysz);
	}
	if (*(const char **)((char *)o + so->off)) {
		err_why(why, whysz, "%s: %s is given twice", cmd, so->name);
		return MDM_ERR_INVALID;
	}
	if (val[0] == '\0') {
		err_why(why, whysz, "%s: %s is empty", cmd, so->name);
		return MDM_ERR_INVALID;
	}
	*(const char **)((char *)o + so->off) = val;
	return MDM_OK;
}

static const char *const operand_forms[] = {"DEVICE corporate_wipe|full_wipe|pin_lock",
					    "no operands (use --device / --state)",
					    "ACTION_ID sent|not_sent", "DEVICE", "DEVICE"};
static const size_t operand_counts[] = {2, 0, 2, 1, 1};

/* check_device: what the client can tell about a device identifier without the server. */
static enum mdm_err check_device(const char *cmd, const char *what, const char *d, char *why,
				 size_t whysz)
{
	if (strlen(d) > MAX_DEVICE || has_control(d) || d[0] == '\0') {
		err_why(why, whysz,
			"%s: %s must be a MAC address or a GUID (1 to %d printable "
			"characters)",
			cmd, what, MAX_DEVICE);
		return MDM_ERR_INVALID;
	}
	return MDM_OK;
}

/* assign_operands: the operands in their places, each checked for what it must be. */
static enum mdm_err assign_operands(struct cli_opts *o, const char **ops, size_t nops, char *why,
				    size_t whysz)
{
	const char *cmd = cmd_names[o->cmd];

	if (nops != operand_counts[o->cmd]) {
		err_why(why, whysz, "%s: expected %s", cmd, operand_forms[o->cmd]);
		return MDM_ERR_INVALID;
	}
	switch (o->cmd) {
	case CLI_ACTION:
		o->device = ops[0];
		o->action = ops[1];
		if (word_index(action_words, o->action) < 0) {
			err_why(why, whysz,
				"action: unknown action \"%.64s\" (corporate_wipe, full_wipe, "
				"pin_lock)",
				o->action);
			return MDM_ERR_INVALID;
		}
		return check_device(cmd, "DEVICE", o->device, why, whysz);
	case CLI_RESOLVE:
		o->action_id = ops[0];
		o->result = ops[1];
		if (!is_hex(o->action_id, ACTION_ID_LEN)) {
			err_why(why, whysz,
				"resolve: ACTION_ID must be the 32 hex digits of an "
				"action id");
			return MDM_ERR_INVALID;
		}
		if (word_index(result_words, o->result) < 0) {
			err_why(why, whysz,
				"resolve: the result must be sent or not_sent, not \"%.64s\"",
				o->result);
			return MDM_ERR_INVALID;
		}
		return MDM_OK;
	case CLI_BLOCK:
	case CLI_UNBLOCK:
		o->device = ops[0];
		return check_device(cmd, "DEVICE", o->device, why, whysz);
	case CLI_ACTIONS:
		break;
	}
	return MDM_OK;
}

/* check_options: the option values that have a known form. */
static enum mdm_err check_options(const struct cli_opts *o, char *why, size_t whysz)
{
	const char *cmd = cmd_names[o->cmd], *p;

	if (o->key && (p = key_problem(o->key))) {
		err_why(why, whysz, "%s: --key: %s", cmd, p);
		return MDM_ERR_INVALID;
	}
	if (o->state && word_index(state_words, o->state) < 0) {
		err_why(why, whysz,
			"%s: --state: unknown state \"%.64s\" (pending, unknown, sent, failed, "
			"rejected, refused, resolved_sent, resolved_not_sent)",
			cmd, o->state);
		return MDM_ERR_INVALID;
	}
	if (o->cmd == CLI_ACTIONS && o->device &&
	    check_device(cmd, "--device", o->device, why, whysz) != MDM_OK)
		return MDM_ERR_INVALID;
	if (o->note && strlen(o->note) > MAX_NOTE) {
		err_why(why, whysz, "%s: --note: at most %d bytes", cmd, MAX_NOTE);
		return MDM_ERR_INVALID;
	}
	return MDM_OK;
}

enum mdm_err cli_parse(int argc, char **argv, struct cli_opts *o, char *why, size_t whysz)
{
	const char *ops[3];
	size_t nops = 0;
	bool only_operands = false;
	enum mdm_err rc;
	size_t c;

	memset(o, 0, sizeof(*o));
	for (c = 0; argc > 1 && c < NCMDS; c++)
		if (strcmp(argv[1], cmd_names[c]) == 0)
			break;
	if (argc < 2 || c == NCMDS) {
		err_why(why, whysz, "unknown command %.64s", argc > 1 ? argv[1] : "(none)");
		return MDM_ERR_INVALID;
	}
	o->cmd = (enum cli_cmd)c;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];

		if (!only_operands && strcmp(a, "--") == 0) {
			only_operands = true;
		} else if (!only_operands && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) {
			o->help = true;
			return MDM_OK;
		} else if (!only_operands && a[0] == '-' && a[1] != '\0') {
			rc = take_option(o, argc, argv, &i, why, whysz);
			if (rc != MDM_OK)
				return rc;
		} else if (nops == sizeof(ops) / sizeof(ops[0])) {
			err_why(why, whysz, "%s: too many operands; expected %s", cmd_names[c],
				operand_forms[c]);
			return MDM_ERR_INVALID;
		} else {
			ops[nops++] = a;
		}
	}
	rc = assign_operands(o, ops, nops, why, whysz);
	return rc == MDM_OK ? check_options(o, why, whysz) : rc;
}

/* --- the client configuration ---------------------------------------------------------------- */

/* url_problem: NULL when s is https://HOST[:PORT][/PATH] without query, fragment or user. */
static const char *url_problem(const char *s)
{
	const char *host = s + 8, *end;
	size_t hl;

	if (strncmp(s, "https://", 8) != 0)
		return "must start with https://";
	if (strlen(s) >= CLI_URL_MAX)
		return "is too long";
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return "must not contain spaces, control or non-ASCII characters";
	if (strpbrk(s, "?#"))
		return "must not have a query or fragment (https://HOST:PORT[/INSTANCE])";
	end = host + strcspn(host, "/");
	hl = (size_t)(end - host);
	if (memchr(host, '@', hl))
		return "must not carry a user name (use --user / \"user\")";
	if (hl == 0 || host[0] == ':')
		return "has no host name";
	return NULL;
}

static enum mdm_err set_url(struct cli_client *c, const char *name, const char *key, const char *v,
			    char *why, size_t whysz)
{
	const char *p = url_problem(v);
	size_t n;

	if (p) {
		err_why(why, whysz, "%s: %s: %s", name, key, p);
		return MDM_ERR_CONFIG;
	}
	str_copy(c->url, sizeof(c->url), v);
	n = strlen(c->url);
	while (n > 8 && c->url[n - 1] == '/')
		c->url[--n] = '\0';
	return MDM_OK;
}

static enum mdm_err set_user(struct cli_client *c, const char *name, const char *key, const char *v,
			     char *why, size_t whysz)
{
	const char *p = NULL;

	if (v[0] == '\0')
		p = "is empty";
	else if (strlen(v) >= sizeof(c->user))
		p = "is too long";
	else if (strchr(v, ':') || has_control(v))
		p = "must not contain ':' or control characters (HTTP Basic)";
	if (p) {
		err_why(why, whysz, "%s: %s: %s", name, key, p);
		return MDM_ERR_CONFIG;
	}
	str_copy(c->user, sizeof(c->user), v);
	return MDM_OK;
}

/* set_ca: path (taken from dir unless absolute), which must be a readable regular file. */
static enum mdm_err set_ca(struct cli_client *c, const char *name, const char *key, const char *dir,
			   const char *path, char *why, size_t whysz)
{
	struct stat st;
	int n, fd;

	if (path[0] == '/' || dir[0] == '\0')
		n = snprintf(c->ca_file, sizeof(c->ca_file), "%s", path);
	else
		n = snprintf(c->ca_file, sizeof(c->ca_file), "%s/%s", dir, path);
	if (n < 0 || (size_t)n >= sizeof(c->ca_file) || path[0] == '\0' || has_control(path)) {
		err_why(why, whysz, "%s: %s: must be the path of a PEM CA file", name, key);
		return MDM_ERR_CONFIG;
	}
	fd = open(c->ca_file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		err_why(why, whysz, "%s: %s: cannot read %s: %s", name, key, c->ca_file,
			strerror(errno));
		return MDM_ERR_CONFIG;
	}
	n = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
	close(fd);
	if (!n) {
		err_why(why, whysz, "%s: %s: %s is not a regular file", name, key, c->ca_file);
		return MDM_ERR_CONFIG;
	}
	return MDM_OK;
}

/* secret_from: a {"file"} or {"env"} reference resolved as conf_secret does. */
static enum mdm_err secret_from(const char *kind, const char *value, const char *name, char *out,
				size_t outsz, char *why, size_t whysz)
{
	json_t *ref = json_pack("{ss}", kind, value);
	enum mdm_err rc;

	if (!ref)
		return MDM_ERR_NOMEM;
	rc = conf_secret(ref, name, "password", out, outsz, NULL, why, whysz);
	json_decref(ref);
	return rc;
}

/* read_client_file: path's JSON object (bounded), and its mode for the plaintext check. */
static enum mdm_err read_client_file(const char *path, json_t **out, mode_t *mode, char *why,
				     size_t whysz)
{
	char *text = NULL;
	struct stat st;
	json_error_t je;
	ssize_t n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	*out = NULL;
	if (fd < 0) {
		err_why(why, whysz, "%s: cannot open: %s", path, strerror(errno));
		return MDM_ERR_IO;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > CLIENT_FILE_MAX) {
		close(fd);
		err_why(why, whysz, "%s: must be a regular file of at most %d bytes", path,
			CLIENT_FILE_MAX);
		return MDM_ERR_CONFIG;
	}
	*mode = st.st_mode;
	text = malloc((size_t)st.st_size + 1);
	if (text)
		n = read(fd, text, (size_t)st.st_size);
	close(fd);
	if (!text || n != st.st_size) {
		free(text);
		err_why(why, whysz, "%s: cannot read: %s", path, text ? strerror(errno) : "memory");
		return MDM_ERR_IO;
	}
	*out = json_loadb(text, (size_t)n, JSON_REJECT_DUPLICATES, &je);
	explicit_bzero(text, (size_t)n);
	free(text);
	if (!*out) {
		err_why(why, whysz, "%s: line %d column %d: %s", path, je.line, je.column, je.text);
		return MDM_ERR_CONFIG;
	}
	if (!json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		err_why(why, whysz, "%s: must be a JSON object " CLIENT_KEYS, path);
		return MDM_ERR_CONFIG;
	}
	return MDM_OK;
}

static enum mdm_err want_string(json_t *v, const char *path, const char *key, char *why,
				size_t whysz)
{
	if (json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v))
		return MDM_OK;
	err_why(why, whysz, "%s: %s: must be a string", path, key);
	return MDM_ERR_CONFIG;
}

/* file_string: the file's url, user or ca_file, unless a flag gave it. */
static enum mdm_err file_string(const struct cli_opts *o, struct cli_client *c, const char *path,
				const char *dir, const char *key, const char *v, char *why,
				size_t whysz)
{
	if (strcmp(key, "url") == 0)
		return o->url ? MDM_OK : set_url(c, path, key, v, why, whysz);
	if (strcmp(key, "user") == 0)
		return o->user ? MDM_OK : set_user(c, path, key, v, why, whysz);
	return o->ca ? MDM_OK : set_ca(c, path, key, dir, v, why, whysz);
}

/*
 * load_client_file: the file's values where no flag overrides them. The password is resolved
 * only when need_password (a reference the flags make moot must not fail the command), but an
 * inline one in a file others can read is refused in every case: it is already exposed.
 */
static enum mdm_err load_client_file(const struct cli_opts *o, const char *path, bool need_password,
				     struct cli_client *c, bool *have_pw, char *why, size_t whysz)
{
	char dir[CONFIG_PATH_MAX] = "";
	const char *slash = strrchr(path, '/'), *key;
	enum mdm_err rc;
	json_t *j, *v;
	mode_t mode = 0;

	rc = read_client_file(path, &j, &mode, why, whysz);
	if (rc != MDM_OK)
		return rc;
	if (slash)
		str_copyn(dir, sizeof(dir), path, slash == path ? 1 : (size_t)(slash - path));
	json_object_foreach(j, key, v)
	{
		if (strcmp(key, "password") == 0) {
			if (json_is_string(v) && (mode & (S_IRGRP | S_IROTH))) {
				err_why(why, whysz, "%s: password: " PLAINTEXT_PASSWORD, path);
				rc = MDM_ERR_CONFIG;
			} else if (need_password) {
				rc = conf_secret(v, path, "password", c->password,
						 sizeof(c->password), NULL, why, whysz);
				*have_pw = rc == MDM_OK;
			}
		} else if (strcmp(key, "url") == 0 || strcmp(key, "user") == 0 ||
			   strcmp(key, "ca_file") == 0) {
			rc = want_string(v, path, key, why, whysz);
			if (rc == MDM_OK)
				rc = file_string(o, c, path, dir, key, json_string_value(v), why,
						 whysz);
		} else {
			err_why(why, whysz, "%s: %.64s: unknown key " CLIENT_KEYS, path, key);
			rc = MDM_ERR_CONFIG;
		}
		if (rc != MDM_OK)
			break;
	}
	json_decref(j);
	return rc;
}

static enum mdm_err missing(const char *what, const char *flag, const char *key, char *why,
			    size_t whysz)
{
	err_why(why, whysz,
		"no %s: give %s or \"%s\" in a client config (--client-config FILE or "
		"$" CLI_ENV_CONFIG ")",
		what, flag, key);
	return MDM_ERR_CONFIG;
}

/* client_flags: the flags and the environment, which override the file. */
static enum mdm_err client_flags(const struct cli_opts *o, struct cli_client *c, bool *have_pw,
				 char *why, size_t whysz)
{
	enum mdm_err rc = MDM_OK;
	const char *envpw = getenv(CLI_ENV_PASSWORD);

	if (o->url)
		rc = set_url(c, "--url", "value", o->url, why, whysz);
	if (rc == MDM_OK && o->user)
		rc = set_user(c, "--user", "value", o->user, why, whysz);
	if (rc == MDM_OK && o->ca)
		rc = set_ca(c, "--ca", "value", "", o->ca, why, whysz);
	if (rc == MDM_OK && o->password_file) {
		rc = secret_from("file", o->password_file, "--password-file", c->password,
				 sizeof(c->password), why, whysz);
		*have_pw = rc == MDM_OK;
	} else if (rc == MDM_OK && envpw) {
		rc = secret_from("env", CLI_ENV_PASSWORD, CLI_ENV_PASSWORD, c->password,
				 sizeof(c->password), why, whysz);
		*have_pw = rc == MDM_OK;
	}
	return rc;
}

enum mdm_err cli_client_load(const struct cli_opts *o, struct cli_client *c, char *why,
			     size_t whysz)
{
	const char *file = o->client_config ? o->client_config : getenv(CLI_ENV_CONFIG);
	bool have_pw = false;
	enum mdm_err rc;

	memset(c, 0, sizeof(*c));
	c->timeout_s = o->timeout_s ? o->timeout_s : CLI_DEFAULT_TIMEOUT_S;
	rc = client_flags(o, c, &have_pw, why, whysz);
	if (rc == MDM_OK && file && file[0])
		rc = load_client_file(o, file, !have_pw, c, &have_pw, why, whysz);
	if (rc != MDM_OK)
		;
	else if (!c->url[0])
		rc = missing("gateway URL", "--url", "url", why, whysz);
	else if (!c->user[0])
		rc = missing("user", "--user", "user", why, whysz);
	else if (!have_pw)
		rc = missing("password", "--password-file, $" CLI_ENV_PASSWORD, "password", why,
			     whysz);
	else if (!c->ca_file[0])
		rc = missing("CA file (the system's CAs are never trusted)", "--ca", "ca_file", why,
			     whysz);
	if (rc != MDM_OK)
		explicit_bzero(c->password, sizeof(c->password));
	return rc;
}

/* --- the request ----------------------------------------------------------------------------- */

/* add_escaped: s percent-encoded; keep names the bytes kept as they are besides unreserved. */
static enum mdm_err add_escaped(struct buf *b, const char *s, const char *keep)
{
	static const char hex[] = "0123456789ABCDEF";
	enum mdm_err rc = MDM_OK;

	for (; *s && rc == MDM_OK; s++) {
		unsigned char ch = (unsigned char)*s;
		char e[3] = {'%', hex[ch >> 4], hex[ch & 15]};

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || strchr("-._~", ch) || strchr(keep, ch))
			rc = buf_add(b, s, 1);
		else
			rc = buf_add(b, e, 3);
	}
	return rc;
}

static enum mdm_err random_key(char out[CLI_KEY_MAX])
{
	unsigned char r[KEY_RANDOM_BYTES];
	size_t got = 0;

	while (got < sizeof(r)) {
		ssize_t n = getrandom(r + got, sizeof(r) - got, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return MDM_ERR_IO;
		got += (size_t)n;
	}
	for (size_t i = 0; i < sizeof(r); i++)
		snprintf(out + 2 * i, 3, "%02x", r[i]);
	return MDM_OK;
}

/* build_path: the target after the base URL, into b. */
static enum mdm_err build_path(const struct cli_opts *o, struct buf *b)
{
	enum mdm_err rc = MDM_OK;

	switch (o->cmd) {
	case CLI_ACTION:
	case CLI_BLOCK:
	case CLI_UNBLOCK:
		rc = buf_addstr(b, "/api/v1/devices/");
		if (rc == MDM_OK)
			rc = add_escaped(b, o->device, ":");
		if (rc == MDM_OK)
			rc = buf_addstr(b, o->cmd == CLI_ACTION ? "/actions" : "/block");
		break;
	case CLI_ACTIONS:
		rc = buf_addstr(b, "/api/v1/actions");
		if (rc == MDM_OK && o->device) {
			rc = buf_addstr(b, "?device=");
			if (rc == MDM_OK)
				rc = add_escaped(b, o->device, ":");
		}
		if (rc == MDM_OK && o->state) {
			rc = buf_addstr(b, o->device ? "&state=" : "?state=");
			if (rc == MDM_OK)
				rc = add_escaped(b, o->state, "");
		}
		break;
	case CLI_RESOLVE:
		rc = buf_addf(b, "/api/v1/actions/%s/resolve", o->action_id);
		break;
	}
	return rc;
}

/* build_body: the JSON body, or NULL when the call has none. */
static enum mdm_err build_body(const struct cli_opts *o, char **out)
{
	json_t *j = NULL;

	*out = NULL;
	if (o->cmd == CLI_ACTION)
		j = json_pack("{ss}", "action", o->action);
	else if (o->cmd == CLI_RESOLVE)
		j = json_pack("{ss}", "result", o->result);
	else if (o->cmd == CLI_BLOCK && o->note)
		j = json_object();
	else
		return MDM_OK;
	if (j && o->note && json_object_set_new(j, "note", json_string(o->note)) != 0) {
		json_decref(j);
		j = NULL;
	}
	if (j)
		*out = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return *out ? MDM_OK : MDM_ERR_INVALID;
}

enum mdm_err cli_request_build(const struct cli_opts *o, const struct cli_client *c,
			       struct cli_request *r, char *why, size_t whysz)
{
	static const char *const methods[] = {"POST", "GET", "POST", "PUT", "DELETE"};
	struct buf b;
	enum mdm_err rc;

	memset(r, 0, sizeof(*r));
	r->method = methods[o->cmd];
	buf_init(&b, sizeof(r->url));
	rc = buf_addstr(&b, c->url);
	if (rc == MDM_OK)
		rc = build_path(o, &b);
	if (rc == MDM_OK)
		rc = str_copy(r->url, sizeof(r->url), buf_str(&b));
	buf_free(&b);
	if (rc != MDM_OK) {
		err_why(why, whysz, "%s: the request URL is too long", cmd_names[o->cmd]);
		return rc;
	}
	if (o->cmd == CLI_ACTION && o->key) {
		str_copy(r->key, sizeof(r->key), o->key);
	} else if (o->cmd == CLI_ACTION) {
		if (random_key(r->key) != MDM_OK) {
			err_why(why, whysz, "action: cannot make a random key: %s",
				strerror(errno));
			return MDM_ERR_IO;
		}
		r->key_generated = true;
	}
	rc = build_body(o, &r->body);
	if (rc != MDM_OK)
		err_why(why, whysz, "%s: cannot build the request body (the note must be UTF-8)",
			cmd_names[o->cmd]);
	return rc;
}

void cli_request_clear(struct cli_request *r)
{
	free(r->body);
	r->body = NULL;
}

/* --- rendering answers ----------------------------------------------------------------------- */

/* put: a server string with control characters shown as '?' (no terminal escapes). */
static void put(FILE *f, const char *s)
{
	for (; *s; s++)
		fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, f);
}

/* field: o's member as text: "-" when absent, null or empty. */
static const char *field(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s && s[0] ? s : "-";
}

static bool is_action(const json_t *j)
{
	return json_is_object(j) && json_is_string(json_object_get(j, "action_id")) &&
	       json_is_string(json_object_get(j, "state"));
}

static void print_action(FILE *out, const json_t *a)
{
	static const struct {
		const char *label, *key;
	} rows[] = {{"state", "state"},
		    {"action", "action"},
		    {"device", "device"},
		    {"mdm", "mdm"},
		    {"vendor id", "vendor_id"},
		    {"requested by", "user"},
		    {"from", "source"},
		    {"detail", "detail"},
		    {"requested at", "requested_at"},
		    {"completed at", "completed_at"}};

	fprintf(out, "action ");
	put(out, field(a, "action_id"));
	fprintf(out, "\n");
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		fprintf(out, "  %-13s ", rows[i].label);
		put(out, field(a, rows[i].key));
		fprintf(out, "\n");
	}
	if (json_is_string(json_object_get(a, "resolved_by"))) {
		fprintf(out, "  %-13s ", "resolved by");
		put(out, field(a, "resolved_by"));
		fprintf(out, "\n");
	}
	if (json_is_string(json_object_get(a, "note"))) {
		fprintf(out, "  %-13s ", "note");
		put(out, field(a, "note"));
		fprintf(out, "\n");
	}
}

/* The list's columns; the last one (detail) is not padded. */
static const struct {
	const char *head, *key;
} columns[] = {{"ACTION_ID", "action_id"},
	       {"STATE", "state"},
	       {"ACTION", "action"},
	       {"DEVICE", "device"},
	       {"MDM", "mdm"},
	       {"VENDOR_ID", "vendor_id"},
	       {"USER", "user"},
	       {"REQUESTED", "requested_at"},
	       {"COMPLETED", "completed_at"},
	       {"DETAIL", "detail"}};
#define NCOLS (sizeof(columns) / sizeof(columns[0]))

static void print_cell(FILE *out, const char *s, size_t width, bool last)
{
	put(out, s);
	if (last) {
		fputc('\n', out);
		return;
	}
	for (size_t n = strlen(s); n < width + 2; n++)
		fputc(' ', out);
}

/* print_list: one line per action under a heading, columns as wide as their widest cell. */
static int print_list(FILE *out, FILE *err, const json_t *list)
{
	size_t width[NCOLS], i;
	json_t *a;

	if (!json_is_array(list)) {
		fprintf(err, "unexpected answer: no \"actions\" list\n");
		return CLI_EXIT_USAGE;
	}
	for (i = 0; i < json_array_size(list); i++) {
		if (!is_action(json_array_get(list, i))) {
			fprintf(err, "unexpected answer: actions[%zu] is not an action\n", i);
			return CLI_EXIT_USAGE;
		}
	}
	if (json_array_size(list) == 0) {
		fprintf(out, "no actions\n");
		return CLI_EXIT_OK;
	}
	for (size_t c = 0; c < NCOLS; c++) {
		width[c] = strlen(columns[c].head);
		for (i = 0; i < json_array_size(list); i++) {
			size_t n = strlen(field(json_array_get(list, i), columns[c].key));

			width[c] = n > width[c] ? n : width[c];
		}
	}
	for (size_t c = 0; c < NCOLS; c++)
		print_cell(out, columns[c].head, width[c], c + 1 == NCOLS);
	for (i = 0; i < json_array_size(list); i++) {
		a = json_array_get(list, i);
		for (size_t c = 0; c < NCOLS; c++)
			print_cell(out, field(a, columns[c].key), width[c], c + 1 == NCOLS);
	}
	return CLI_EXIT_OK;
}

static bool state_is(const json_t *a, const char *s)
{
	return strcmp(field(a, "state"), s) == 0;
}

/* render_action: an action object answered 2xx: success only in the command's final state. */
static int render_action(enum cli_cmd cmd, const json_t *a, FILE *out, FILE *err)
{
	print_action(out, a);
	if (cmd == CLI_ACTION && state_is(a, "sent"))
		return CLI_EXIT_OK;
	if (cmd == CLI_RESOLVE &&
	    (state_is(a, "resolved_sent") || state_is(a, "resolved_not_sent")))
		return CLI_EXIT_OK;
	fprintf(err, "the action is %s", field(a, "state"));
	if (state_is(a, "unknown"))
		fprintf(err, ": whether the MDM got it is not known; check the device, then "
			     "`mdmgw resolve`");
	fprintf(err, "\n");
	return CLI_EXIT_FAILED;
}

static int render_block(enum cli_cmd cmd, const json_t *j, FILE *out, FILE *err)
{
	const json_t *blocked = json_object_get(j, "blocked");

	if (!json_is_object(j) || !json_is_string(json_object_get(j, "device")) ||
	    !json_is_boolean(blocked)) {
		fprintf(err, "unexpected answer: not a block state\n");
		return CLI_EXIT_USAGE;
	}
	put(out, field(j, "device"));
	if (json_is_true(blocked)) {
		fprintf(out, ": blocked by ");
		put(out, field(j, "by"));
		fprintf(out, " at ");
		put(out, field(j, "at"));
		if (json_is_string(json_object_get(j, "note"))) {
			fprintf(out, " (note: ");
			put(out, field(j, "note"));
			fprintf(out, ")");
		}
		fprintf(out, "\n");
		return cmd == CLI_BLOCK ? CLI_EXIT_OK : CLI_EXIT_FAILED;
	}
	fprintf(out, ": not blocked\n");
	return cmd == CLI_UNBLOCK ? CLI_EXIT_OK : CLI_EXIT_FAILED;
}

static int render_ok(enum cli_cmd cmd, const json_t *j, FILE *out, FILE *err)
{
	switch (cmd) {
	case CLI_ACTIONS:
		return print_list(out, err, json_object_get(j, "actions"));
	case CLI_BLOCK:
	case CLI_UNBLOCK:
		return render_block(cmd, j, out, err);
	case CLI_ACTION:
	case CLI_RESOLVE:
		break;
	}
	if (!is_action(j)) {
		fprintf(err, "unexpected answer: not an action\n");
		return CLI_EXIT_USAGE;
	}
	return render_action(cmd, j, out, err);
}

/* render_refusal: an action object with 403, 409 or 502: shown, with why it did not happen. */
static int render_refusal(enum cli_cmd cmd, long status, const json_t *a, FILE *out, FILE *err)
{
	print_action(out, a);
	if (status == 403) {
		fprintf(err, "refused: ");
		put(err, field(a, "detail"));
	} else if (status == 409 && cmd == CLI_RESOLVE) {
		fprintf(err, "conflict: the action is %s, not unknown: nothing to resolve",
			field(a, "state"));
	} else if (status == 409) {
		fprintf(err, "conflict: action %s is %s for this device or key; nothing was sent",
			field(a, "action_id"), field(a, "state"));
	} else if (state_is(a, "rejected")) {
		fprintf(err, "rejected by the MDM: ");
		put(err, field(a, "detail"));
	} else {
		fprintf(err, "failed (%s): ", field(a, "state"));
		put(err, field(a, "detail"));
	}
	fprintf(err, "\n");
	return CLI_EXIT_FAILED;
}

/* render_error: a status without an object to show: its {"error"} sentence, or the status. */
static int render_error(long status, const json_t *j, FILE *err)
{
	const char *e = json_string_value(json_object_get(j, "error"));
	const char *id = json_string_value(json_object_get(j, "action_id"));
	int rc = CLI_EXIT_USAGE;

	if (status == 403 || status == 404 || status == 409 || status == 422)
		rc = CLI_EXIT_FAILED;
	if (status == 401)
		fprintf(err, "authentication failed (HTTP 401): check the user and password");
	else if (status == 422)
		fprintf(err, "refused (HTTP 422)");
	else if (status >= 500)
		fprintf(err, "gateway error (HTTP %ld)", status);
	else
		fprintf(err, "%s (HTTP %ld)", rc == CLI_EXIT_FAILED ? "refused" : "error", status);
	if (e) {
		fprintf(err, ": ");
		put(err, e);
	}
	if (id) {
		fprintf(err, " (first action: ");
		put(err, id);
		fprintf(err, ")");
	}
	fprintf(err, "\n");
	return rc;
}

int cli_render(enum cli_cmd cmd, long status, const char *body, size_t len, FILE *out, FILE *err)
{
	json_t *j = len ? json_loadb(body, len, 0, NULL) : NULL;
	int rc;

	if (status >= 200 && status < 300 && !j) {
		fprintf(err, "unexpected answer (HTTP %ld): the body is not JSON\n", status);
		rc = CLI_EXIT_USAGE;
	} else if (status >= 200 && status < 300) {
		rc = render_ok(cmd, j, out, err);
	} else if (is_action(j) && (status == 403 || status == 409 || status == 502)) {
		rc = render_refusal(cmd, status, j, out, err);
	} else {
		rc = render_error(status, j, err);
	}
	json_decref(j);
	return rc;
}

/* --- the call -------------------------------------------------------------------------------- */

struct sink {
	struct buf body;
	bool toobig;
};

static size_t on_write(char *data, size_t size, size_t n, void *arg)
{
	struct sink *s = arg;

	if (buf_add(&s->body, data, size * n) != MDM_OK) {
		s->toobig = true;
		return 0;
	}
	return size * n;
}

/* explain: a failed transfer in words; *maybe_sent when the gateway may have had the request. */
static void explain(CURLcode code, const char *errbuf, const struct cli_client *c,
		    const struct sink *s, bool *maybe_sent, char *why, size_t whysz)
{
	const char *t = errbuf[0] ? errbuf : curl_easy_strerror(code);

	*maybe_sent = false;
	switch (code) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
		err_why(why, whysz, "cannot reach %s (%s)", c->url, t);
		return;
	case CURLE_PEER_FAILED_VERIFICATION:
		err_why(why, whysz, "TLS: the gateway's certificate is not trusted by %s (%s)",
			c->ca_file, t);
		return;
	case CURLE_SSL_CACERT_BADFILE:
		err_why(why, whysz, "TLS: CA file %s cannot be used (%s)", c->ca_file, t);
		return;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_ISSUER_ERROR:
		err_why(why, whysz, "TLS handshake with %s failed (%s)", c->url, t);
		return;
	default:
		break;
	}
	*maybe_sent = true;
	if (code == CURLE_OPERATION_TIMEDOUT)
		err_why(why, whysz, "no answer from %s within %ld s (%s)", c->url, c->timeout_s, t);
	else if (s->toobig || code == CURLE_FILESIZE_EXCEEDED)
		err_why(why, whysz, "the answer is larger than %zu bytes", CLI_MAX_BODY);
	else
		err_why(why, whysz, "the call to %s failed (%s)", c->url, t);
}

static struct curl_slist *headers(const struct cli_request *r)
{
	char kh[CLI_KEY_MAX + 32];
	struct curl_slist *h = curl_slist_append(NULL, "Accept: application/json"), *t;

	/* no body: an empty PUT must not claim curl's default form content type */
	t = h ? curl_slist_append(h, r->body ? "Content-Type: application/json" : "Content-Type:")
	      : NULL;
	h = t ? curl_slist_append(t, "Expect:") : NULL;
	if (h && r->key[0]) {
		snprintf(kh, sizeof(kh), "Idempotency-Key: %s", r->key);
		t = curl_slist_append(h, kh);
		if (!t)
			curl_slist_free_all(h);
		h = t;
	}
	return h;
}

/* setup: verification always on, trusting only the CA file (CAPATH cleared: no system store). */
static int setup(CURL *h, const struct cli_client *c, const struct cli_request *r,
		 struct curl_slist *hdrs, struct sink *s, char *errbuf)
{
	int bad = 0;

	bad |= curl_easy_setopt(h, CURLOPT_URL, r->url) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https") != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_USERAGENT, "mdmgw-cli/" MDMGW_VERSION) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_CAPATH, (char *)NULL) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_USERNAME, c->user) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_PASSWORD, c->password) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_s * 1000L) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)CLI_MAX_BODY) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_WRITEDATA, (void *)s) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs) != CURLE_OK;
	if (strcmp(r->method, "GET") != 0)
		bad |= curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method) != CURLE_OK;
	if (r->body || strcmp(r->method, "PUT") == 0 || strcmp(r->method, "POST") == 0) {
		bad |= curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body ? r->body : "") != CURLE_OK;
		bad |= curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
					(curl_off_t)(r->body ? strlen(r->body) : 0)) != CURLE_OK;
	}
	return bad;
}

/* transfer: r sent to the gateway; *status and s->body hold its answer on MDM_OK. */
static enum mdm_err transfer(const struct cli_client *c, const struct cli_request *r, long *status,
			     struct sink *s, bool *maybe_sent, char *why, size_t whysz)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdrs = headers(r);
	CURL *h = curl_easy_init();
	enum mdm_err rc = MDM_OK;
	CURLcode code;

	*maybe_sent = false;
	if (!h || !hdrs || setup(h, c, r, hdrs, s, errbuf) != 0) {
		err_why(why, whysz, "cannot set up the HTTPS client (memory or libcurl)");
		rc = MDM_ERR_INTERNAL;
	} else if ((code = curl_easy_perform(h)) != CURLE_OK) {
		explain(code, errbuf, c, s, maybe_sent, why, whysz);
		rc = MDM_ERR_UNAVAILABLE;
	} else {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	}
	curl_slist_free_all(hdrs);
	if (h)
		curl_easy_cleanup(h);
	return rc;
}

int cli_main(int argc, char **argv)
{
	struct cli_opts o;
	struct cli_client c;
	struct cli_request r = {0};
	struct sink s = {.toobig = false};
	char why[1024];
	bool maybe_sent = false;
	long status = 0;
	int rc = CLI_EXIT_USAGE;

	buf_init(&s.body, CLI_MAX_BODY + 1);
	if (cli_parse(argc, argv, &o, why, sizeof(why)) != MDM_OK) {
		fprintf(stderr, "mdmgw %s\n(mdmgw %s --help for usage)\n", why,
			argc > 1 ? argv[1] : "action");
		return CLI_EXIT_USAGE;
	}
	if (o.help) {
		cli_usage(stdout);
		return CLI_EXIT_OK;
	}
	if (cli_client_load(&o, &c, why, sizeof(why)) != MDM_OK ||
	    cli_request_build(&o, &c, &r, why, sizeof(why)) != MDM_OK) {
		fprintf(stderr, "mdmgw %s: %s\n", cmd_names[o.cmd], why);
		goto out;
	}
	if (r.key_generated) {
		printf("idempotency key: %s\n", r.key);
		fflush(stdout);
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "mdmgw %s: cannot initialise libcurl\n", cmd_names[o.cmd]);
		goto out;
	}
	if (transfer(&c, &r, &status, &s, &maybe_sent, why, sizeof(why)) != MDM_OK) {
		fprintf(stderr, "mdmgw %s: %s\n", cmd_names[o.cmd], why);
		if (maybe_sent && o.cmd == CLI_ACTION)
			fprintf(stderr,
				"the gateway may have received the request: repeat the same "
				"command with --key %s to learn its result without sending it "
				"twice\n",
				r.key);
	} else {
		rc = cli_render(o.cmd, status, buf_str(&s.body), s.body.len, stdout, stderr);
	}
	curl_global_cleanup();
out:
	explicit_bzero(c.password, sizeof(c.password));
	cli_request_clear(&r);
	buf_free(&s.body);
	return rc;
}
