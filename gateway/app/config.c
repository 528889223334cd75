/*
 * config: strict loading of the JSON configuration file (see config.h and
 * docs/configuration.md). Each section is a table of field descriptors; one generic walker
 * applies defaults, refuses unknown keys, checks types and ranges and stores the values.
 */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE /* explicit_bzero */
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "../../core/buf.h"
#include "../../core/clock.h"
#include "../recon/publish.h"
#include "config.h"

#define KEYPATH_MAX 256 /* key paths in messages ("accounts[1].roles[0]") */
#define QUOTE_MAX 96	/* a quoted value in a message, escapes and ellipsis included */
#define QUOTE_CHARS 48	/* bytes of the value shown before "..." */
#define WHAT_MAX 512	/* the "what is wrong" part of a message */

#define SECS(n) ((int64_t)(n)*1000)
#define MINS(n) (SECS(n) * 60)
#define HOURS(n) (MINS(n) * 60)
#define DAYS(n) (HOURS(n) * 24)

/* --- messages -------------------------------------------------------------------------------- */

/* one_line: no control character may survive into a message (file names included). */
static void one_line(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

static MDM_PRINTF(5, 0) void vsay(char *why, size_t whysz, const char *name, const char *key,
				  const char *fmt, va_list ap)
{
	char what[WHAT_MAX];

	if (!why || whysz == 0)
		return;
	vsnprintf(what, sizeof(what), fmt, ap);
	snprintf(why, whysz, "%s: %s: %s", name ? name : "(config)", key, what);
	one_line(why);
}

static MDM_PRINTF(6, 7) enum mdm_err say(enum mdm_err rc, char *why, size_t whysz, const char *name,
					 const char *key, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(why, whysz, name, key, fmt, ap);
	va_end(ap);
	return rc;
}

/* escape: s with '"', '\' and every byte outside printable ASCII escaped, cut at max bytes. */
static void escape(char *out, size_t outsz, const char *s, size_t max)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, i;

	for (i = 0; s[i] && i < max && o + 8 < outsz; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '"' || ch == '\\') {
			out[o++] = '\\';
			out[o++] = (char)ch;
		} else if (ch < 0x20 || ch >= 0x7f) {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 15];
		} else {
			out[o++] = (char)ch;
		}
	}
	if (s[i] && o + 4 <= outsz) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}

/* quote: "s" for a message, escaped and shortened. */
static const char *quote(char out[QUOTE_MAX], const char *s)
{
	size_t n;

	out[0] = '"';
	escape(out + 1, QUOTE_MAX - 2, s, QUOTE_CHARS);
	n = strlen(out);
	out[n] = '"';
	out[n + 1] = '\0';
	return out;
}

/* key_mark: a key path cut short by snprintf ends in "..." (keys come from the input). */
static void key_mark(char out[KEYPATH_MAX], int n)
{
	if (n < 0 || n >= KEYPATH_MAX)
		memcpy(out + KEYPATH_MAX - 4, "...", 4);
}

static void key_join(char out[KEYPATH_MAX], const char *path, const char *key)
{
	char k[KEYPATH_MAX];

	escape(k, sizeof(k), key, 64);
	key_mark(out, snprintf(out, KEYPATH_MAX, "%s%s%s", path, path[0] ? "." : "", k));
}

static void key_index(char out[KEYPATH_MAX], const char *path, size_t i)
{
	key_mark(out, snprintf(out, KEYPATH_MAX, "%s[%zu]", path, i));
}

/* --- small checks ---------------------------------------------------------------------------- */

/* has_control: C0 controls, DEL and the C1 controls (U+0080..U+009F, UTF-8 C2 80..C2 9F). */
static bool has_control(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch < 0x20 || ch == 0x7f)
			return true;
		if (ch == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 &&
		    (unsigned char)s[i + 1] <= 0x9f)
			return true;
	}
	return false;
}

static bool all_of(const char *s, const char *extra)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || (ch && strchr(extra, ch))))
			return false;
	}
	return true;
}

/* dir_of: the directory part of name ("" when it has none, "/" for "/x.json"). */
static void dir_of(const char *name, char out[CONFIG_PATH_MAX])
{
	const char *slash = strrchr(name, '/');

	out[0] = '\0';
	if (!slash)
		return;
	if (slash == name)
		slash++;
	if (str_copyn(out, CONFIG_PATH_MAX, name, (size_t)(slash - name)) != MDM_OK)
		out[0] = '\0';
}

/* path_resolve: p against dir unless p is absolute or dir is empty. */
static enum mdm_err path_resolve(const char *dir, const char *p, char *out, size_t outsz)
{
	int n;

	if (p[0] == '/' || dir[0] == '\0')
		return str_copy(out, outsz, p);
	n = snprintf(out, outsz, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", p);
	if (n < 0 || (size_t)n >= outsz) {
		out[0] = '\0';
		return MDM_ERR_TOOBIG;
	}
	return MDM_OK;
}

static void fmt_duration(char *out, size_t outsz, int64_t ms)
{
	static const struct {
		const char *unit;
		int64_t mult;
	} units[] = {{"d", DAYS(1)}, {"h", HOURS(1)}, {"m", MINS(1)}, {"s", SECS(1)}};

	for (size_t i = 0; ms > 0 && i < sizeof(units) / sizeof(units[0]); i++) {
		if (ms % units[i].mult == 0) {
			snprintf(out, outsz, "%lld%s", (long long)(ms / units[i].mult),
				 units[i].unit);
			return;
		}
	}
	if (ms == 0)
		snprintf(out, outsz, "0s");
	else
		snprintf(out, outsz, "%lldms", (long long)ms);
}

/* --- secrets --------------------------------------------------------------------------------- */

#define SECRET_FORMS "must be a string, {\"file\": PATH} or {\"env\": NAME}"

static enum mdm_err secret_value(const char *v, size_t n, char *out, size_t outsz, const char *name,
				 const char *key, const char *what, char *why, size_t whysz)
{
	if (n == 0)
		return say(MDM_ERR_CONFIG, why, whysz, name, key, "%s is empty", what);
	if (strlen(v) != n || has_control(v, n))
		return say(MDM_ERR_CONFIG, why, whysz, name, key,
			   "%s must not contain control characters", what);
	if (n >= outsz)
		return say(MDM_ERR_CONFIG, why, whysz, name, key,
			   "%s is too long (at most %zu bytes)", what, outsz - 1);
	memcpy(out, v, n);
	out[n] = '\0';
	return MDM_OK;
}

/*
 * first_line: fd's first line, without "\n" or "\r\n", into line[cap] (NUL-terminated).
 * MDM_ERR_TOOBIG when it has cap bytes or more.
 */
static enum mdm_err first_line(int fd, char *line, size_t cap, size_t *len)
{
	size_t n = 0;
	char *nl;

	while (n < cap) {
		ssize_t r = read(fd, line + n, cap - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return MDM_ERR_IO;
		if (r == 0)
			break;
		n += (size_t)r;
		if (memchr(line + n - (size_t)r, '\n', (size_t)r))
			break;
	}
	nl = memchr(line, '\n', n);
	if (nl)
		n = (size_t)(nl - line);
	else if (n == cap)
		return MDM_ERR_TOOBIG;
	if (n > 0 && line[n - 1] == '\r')
		n--;
	line[n] = '\0';
	*len = n;
	return MDM_OK;
}

static enum mdm_err secret_file(const char *file, const char *name, const char *key, char *out,
				size_t outsz, char *why, size_t whysz)
{
	char dir[CONFIG_PATH_MAX], path[CONFIG_PATH_MAX], qb[QUOTE_MAX], *line;
	struct stat st;
	size_t n = 0;
	enum mdm_err rc;
	int fd;

	dir_of(name ? name : "", dir);
	if (path_resolve(dir, file, path, sizeof(path)) != MDM_OK)
		return say(MDM_ERR_CONFIG, why, whysz, name, key, "secret file path is too long");
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return say(MDM_ERR_IO, why, whysz, name, key, "cannot open secret file %s: %s",
			   quote(qb, path), strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return say(MDM_ERR_CONFIG, why, whysz, name, key,
			   "secret file %s is not a regular file", quote(qb, path));
	}
	line = malloc(outsz + 1);
	if (!line) {
		close(fd);
		return MDM_ERR_NOMEM;
	}
	rc = first_line(fd, line, outsz + 1, &n);
	close(fd);
	if (rc == MDM_ERR_IO)
		say(rc, why, whysz, name, key, "cannot read secret file %s: %s", quote(qb, path),
		    strerror(errno));
	else if (rc == MDM_ERR_TOOBIG)
		rc = say(MDM_ERR_CONFIG, why, whysz, name, key,
			 "the first line of secret file %s is too long (at most %zu bytes)",
			 quote(qb, path), outsz - 1);
	else
		rc = secret_value(line, n, out, outsz, name, key, "the secret file's first line",
				  why, whysz);
	explicit_bzero(line, outsz + 1);
	free(line);
	return rc;
}

static enum mdm_err secret_env(const char *var, const char *name, const char *key, char *out,
			       size_t outsz, char *why, size_t whysz)
{
	char qb[QUOTE_MAX], what[QUOTE_MAX + 32];
	const char *v = getenv(var);

	if (!v)
		return say(MDM_ERR_CONFIG, why, whysz, name, key,
			   "environment variable %s is not set", quote(qb, var));
	snprintf(what, sizeof(what), "environment variable %s", quote(qb, var));
	return secret_value(v, strlen(v), out, outsz, name, key, what, why, whysz);
}

static enum mdm_err secret_ref(json_t *v, const char *name, const char *key, char *out,
			       size_t outsz, char *why, size_t whysz)
{
	json_t *file = json_object_get(v, "file"), *env = json_object_get(v, "env");
	json_t *ref = file ? file : env;

	if (json_object_size(v) != 1 || !ref || !json_is_string(ref) ||
	    json_string_length(ref) == 0 ||
	    has_control(json_string_value(ref), json_string_length(ref)))
		return say(MDM_ERR_CONFIG, why, whysz, name, key, SECRET_FORMS);
	if (file)
		return secret_file(json_string_value(file), name, key, out, outsz, why, whysz);
	return secret_env(json_string_value(env), name, key, out, outsz, why, whysz);
}

enum mdm_err config_secret(const void *json, const char *name, const char *key, char *out,
			   size_t outsz, bool *inline_used, char *why, size_t whysz)
{
	json_t *v = (json_t *)json;
	enum mdm_err rc;

	if (inline_used)
		*inline_used = false;
	if (!out || outsz == 0)
		return say(MDM_ERR_INTERNAL, why, whysz, name, key, "no room for the secret");
	out[0] = '\0';
	if (json_is_string(v)) {
		if (inline_used)
			*inline_used = true;
		return secret_value(json_string_value(v), json_string_length(v), out, outsz, name,
				    key, "the secret", why, whysz);
	}
	if (!json_is_object(v))
		return say(MDM_ERR_CONFIG, why, whysz, name, key, SECRET_FORMS);
	rc = secret_ref(v, name, key, out, outsz, why, whysz);
	if (rc != MDM_OK)
		explicit_bzero(out, outsz);
	return rc;
}

/* --- field tables ---------------------------------------------------------------------------- */

enum ftype {
	T_STR,	      /* char[size], min = shortest length, optional check */
	T_PATH,	      /* char[size], resolved against the config's directory */
	T_UINT,	      /* unsigned in min..max */
	T_SIZE,	      /* size_t in min..max */
	T_DUR,	      /* int64_t milliseconds from a duration string, min..max */
	T_BOOLCHOICE, /* bool from one of choices */
	T_STRCHOICE,  /* char[size] holding one of choices */
	T_ENUM,	      /* an enum (stored as unsigned) from one of choices */
	T_BOOL,	      /* bool from JSON true or false */
	T_NUMBER,     /* double from a JSON integer or real in min..max */
	T_STRLIST,    /* char[max][size] from an array of 1..size-1 byte strings; count at aux */
	T_SECRET,     /* char[size] through config_secret; bool at aux set when given */
	T_ROLES,      /* unsigned ROLE_* bits from an array of role names */
	T_SERVERS,    /* config_cache servers[] and nservers from an array of "host:port" */
	T_SECTION,    /* nested object described by sub */
	T_ARRAY,      /* array of objects described by arr */
};

#define F_REQUIRED 1u
#define F_READABLE 2u /* T_PATH: must name a readable regular file when the config loads */

struct choice {
	const char *name;
	unsigned value;
};

struct field;
struct section;
struct array_spec;
struct ctx;

/* check_fn: NULL when s is acceptable, else what is wrong with it. */
typedef const char *(*check_fn)(const char *s);

struct field {
	const char *key;
	enum ftype type;
	unsigned flags;
	size_t off;  /* of the value in the section's struct */
	size_t size; /* strings: capacity of the array */
	size_t aux;  /* T_SECRET: offset of its "set" flag */
	int64_t min, max, def;
	const char *sdef;
	const struct choice *choices; /* NULL-terminated */
	check_fn check;
	const struct section *sub;
	const struct array_spec *arr;
};

struct section {
	const struct field *fields; /* ends with a NULL key */
	enum mdm_err (*check)(struct ctx *x, void *base, const char *path);
	const char *note; /* appended to "unknown key" (" for type \"sccm\""); may be NULL */
};

struct array_spec {
	const struct section *elem;
	size_t elem_size;
	size_t max;
	size_t count_off;	/* size_t count in the parent struct */
	size_t unique_off;	/* char[] member of the element that must be unique */
	const char *unique_key; /* its key */
	const char *unique_what;
	/* pick: when set, the section for element e (by its type); NULL once it said why */
	const struct section *(*pick)(struct ctx *x, json_t *e, const char *path);
};

struct ctx {
	const char *name;
	char dir[CONFIG_PATH_MAX];
	bool check_mode; /* loaded from a file: refuse inline secrets readable by others */
	mode_t mode;
	char *why;
	size_t whysz;
};

static MDM_PRINTF(3, 4) enum mdm_err fail(struct ctx *x, const char *path, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(x->why, x->whysz, x->name, path, fmt, ap);
	va_end(ap);
	return MDM_ERR_CONFIG;
}

#define MEMBER_SIZE(s, m) sizeof(((s *)0)->m)
#define AT(s, m) .off = offsetof(s, m)
#define STR(k, s, m, lo, d, chk, fl)                                                               \
	{                                                                                          \
		.key = (k), .type = T_STR, AT(s, m), .size = MEMBER_SIZE(s, m), .min = (lo),       \
		.sdef = (d), .check = (chk), .flags = (fl)                                         \
	}
#define PATH(k, s, m, d, fl)                                                                       \
	{                                                                                          \
		.key = (k), .type = T_PATH, AT(s, m), .size = MEMBER_SIZE(s, m), .sdef = (d),      \
		.flags = (fl)                                                                      \
	}
#define NUM(k, t, s, m, lo, hi, d)                                                                 \
	{                                                                                          \
		.key = (k), .type = (t), AT(s, m), .min = (lo), .max = (hi), .def = (d)            \
	}
#define CHOICE(k, t, s, m, ch, d, sd, fl)                                                          \
	{                                                                                          \
		.key = (k), .type = (t), AT(s, m), .size = MEMBER_SIZE(s, m), .choices = (ch),     \
		.def = (d), .sdef = (sd), .flags = (fl)                                            \
	}
#define END                                                                                        \
	{                                                                                          \
		.key = NULL                                                                        \
	}

static const char *check_address(const char *s)
{
	unsigned char a[16];

	if (inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1)
		return NULL;
	return "must be an IPv4 or IPv6 address such as \"0.0.0.0\" or \"::\"";
}

static const char *check_instance(const char *s)
{
	if (all_of(s, "._-") && strcmp(s, ".") != 0 && strcmp(s, "..") != 0)
		return NULL;
	return "must be \"\" or 1 to 63 of A-Z a-z 0-9 . _ - (no slashes, not \".\" or \"..\")";
}

static const char *check_url(const char *s)
{
	if (!s[0] ||
	    ((strncmp(s, "https://", 8) == 0 || strncmp(s, "http://", 7) == 0) && !strchr(s, ' ')))
		return NULL;
	return "must be \"\" or an http:// or https:// URL without spaces";
}

static const char *check_user(const char *s)
{
	return strchr(s, ':') ? "must not contain ':'" : NULL;
}

static const char *check_hash(const char *s)
{
	if (strncmp(s, "$scrypt$", 8) == 0)
		return NULL;
	return "must be a scrypt hash line \"$scrypt$...\" (make one with `mdmgw passwd`)";
}

static const char *check_adapter_name(const char *s)
{
	return all_of(s, "_-") ? NULL : "must be 1 to 63 of A-Z a-z 0-9 _ -";
}

static enum mdm_err check_listen(struct ctx *x, void *base, const char *path)
{
	const struct config_listen *l = base;
	char kp[KEYPATH_MAX];

	if (l->max_connections_per_ip <= l->max_connections)
		return MDM_OK;
	key_join(kp, path, "max_connections_per_ip");
	return fail(x, kp, "must not be greater than listen.max_connections (%u)",
		    l->max_connections);
}

static enum mdm_err check_cache(struct ctx *x, void *base, const char *path)
{
	const struct config_cache *c = base;
	char kp[KEYPATH_MAX];

	if ((c->shards & (c->shards - 1)) != 0) {
		key_join(kp, path, "shards");
		return fail(x, kp, "must be a power of two from 1 to 1024");
	}
	/* memcached has no authentication: without a tag anyone on its network could write
	 * compliant=true. */
	if (c->nservers && !c->hmac_key_set) {
		key_join(kp, path, "hmac_key");
		return fail(x, kp, "required when cache.servers is set");
	}
	return MDM_OK;
}

#define L struct config_listen
static const struct field listen_fields[] = {
    STR("address", L, address, 1, "0.0.0.0", check_address, 0),
    NUM("port", T_UINT, L, port, 1, 65535, 8443),
    STR("instance", L, instance, 0, "", check_instance, 0),
    PATH("cert_file", L, cert_file, "", F_REQUIRED),
    PATH("key_file", L, key_file, "", F_REQUIRED),
    NUM("threads", T_UINT, L, threads, 1, 256, 4),
    NUM("idle_timeout", T_DUR, L, idle_timeout_ms, SECS(1), HOURS(1), SECS(60)),
    NUM("header_timeout", T_DUR, L, header_timeout_ms, 100, MINS(5), SECS(10)),
    NUM("body_timeout", T_DUR, L, body_timeout_ms, 100, MINS(10), SECS(30)),
    NUM("shutdown_grace", T_DUR, L, shutdown_grace_ms, 0, MINS(5), SECS(10)),
    NUM("max_connections", T_UINT, L, max_connections, 1, 1000000, 4096),
    NUM("max_connections_per_ip", T_UINT, L, max_connections_per_ip, 1, 1000000, 1024),
    NUM("header_memory", T_SIZE, L, header_memory, 4096, 1048576, 32768),
    NUM("max_body", T_SIZE, L, max_body, 1024, 67108864, 1048576),
    END,
};
#undef L

/* A gateway id goes into a comma-separated header: no commas, spaces or controls. */
static const char *check_gateway_id(const char *s)
{
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr("._:-", *s)))
			return "may hold only A-Z, a-z, 0-9, '.', '_', ':' and '-'";
	return NULL;
}

static const struct choice rule_choices[] = {{"all", 1}, {"any", 0}, {NULL, 0}};
static const struct choice partial_choices[] = {{"answer", 0}, {"unavailable", 1}, {NULL, 0}};

#define A struct config_api
static const struct field api_fields[] = {
    NUM("query_max_size", T_UINT, A, query_max_size, 1, 5000, 5000),
    STR("redirect_url", A, redirect_url, 0, "", check_url, 0),
    STR("vendor", A, vendor, 1, "mdmgw", NULL, 0),
    STR("product_name", A, product_name, 1, "mdmgw MDM compliance gateway", NULL, 0),
    STR("product_version", A, product_version, 1, MDMGW_VERSION, NULL, 0),
    NUM("lookup_timeout", T_DUR, A, lookup_timeout_ms, 10, SECS(60), 150),
    CHOICE("compliance_rule", T_BOOLCHOICE, A, compliant_requires_all, rule_choices, 1, NULL, 0),
    CHOICE("partial_answer", T_BOOLCHOICE, A, partial_is_unavailable, partial_choices, 0, NULL, 0),
    STR("gateway_id", A, gateway_id, 1, "", check_gateway_id, 0),
    NUM("max_hops", T_UINT, A, max_hops, 1, 16, 4),
    END,
};
#undef A

#define U struct config_auth
static const struct field auth_fields[] = {
    NUM("verify_cache_ttl", T_DUR, U, verify_cache_ttl_ms, SECS(1), HOURS(24), MINS(10)),
    NUM("verify_cache_size", T_UINT, U, verify_cache_size, 1, 1000000, 1024),
    NUM("max_concurrent_hashes", T_UINT, U, max_concurrent_hashes, 1, 64, 2),
    NUM("fail_limit", T_UINT, U, fail_limit, 1, 1000, 5),
    NUM("fail_window", T_DUR, U, fail_window_ms, SECS(1), HOURS(24), SECS(60)),
    NUM("lockout", T_DUR, U, lockout_ms, SECS(1), HOURS(24), SECS(60)),
    END,
};
#undef U

static const char *check_namespace(const char *s)
{
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
			return "may hold only A-Z, a-z, 0-9, '_' and '-'";
	return NULL;
}

#define C struct config_cache
static const struct field cache_fields[] = {
    NUM("fresh_ttl", T_DUR, C, fresh_ttl_ms, SECS(1), DAYS(7), MINS(15)),
    NUM("stale_ttl", T_DUR, C, stale_ttl_ms, 0, DAYS(7), HOURS(1)),
    NUM("negative_ttl", T_DUR, C, negative_ttl_ms, 0, DAYS(1), SECS(60)),
    NUM("l1_ttl", T_DUR, C, l1_ttl_ms, 0, HOURS(1), SECS(5)),
    NUM("max_entries", T_SIZE, C, max_entries, 16, 100000000, 100000),
    NUM("shards", T_UINT, C, shards, 1, 1024, 16),
    {.key = "servers", .type = T_SERVERS, AT(C, servers)},
    STR("namespace", C, ns, 1, "mdmgw", check_namespace, 0),
    NUM("pool_size", T_UINT, C, pool_size, 1, 1024, 16),
    NUM("connect_timeout", T_DUR, C, connect_timeout_ms, 1, SECS(10), 50),
    NUM("io_timeout", T_DUR, C, io_timeout_ms, 1, SECS(10), 50),
    NUM("failure_limit", T_UINT, C, failure_limit, 1, 100, 2),
    NUM("retry_timeout", T_DUR, C, retry_timeout_ms, SECS(1), HOURS(1), SECS(2)),
    NUM("breaker_open", T_DUR, C, breaker_open_ms, 100, MINS(10), SECS(5)),
    NUM("lock_wait", T_DUR, C, lock_wait_ms, 0, SECS(10), 100),
    {.key = "hmac_key",
     .type = T_SECRET,
     AT(C, hmac_key),
     .size = MEMBER_SIZE(C, hmac_key),
     .aux = offsetof(C, hmac_key_set),
     .min = 16},
    END,
};
#undef C

#define N struct config_account
static const struct field account_fields[] = {
    STR("user", N, user, 1, "", check_user, F_REQUIRED),
    STR("password_hash", N, password_hash, 1, "", check_hash, F_REQUIRED),
    {.key = "roles", .type = T_ROLES, AT(N, roles), .flags = F_REQUIRED},
    END,
};
#undef N

static const char *check_https_url(const char *s)
{
	if (strncmp(s, "https://", 8) == 0 && s[8] && s[8] != '/' && !strchr(s, ' '))
		return NULL;
	return "must be an https:// URL without spaces, such as "
	       "\"https://cm01.corp.example/AdminService\"";
}

static bool is_base64(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

/* A SHA-256 is 32 bytes: 43 base64 characters and one '=' of padding. */
static const char *check_pin(const char *s)
{
	size_t n = strlen(s), i = 8;

	if (n == CONFIG_PIN_LEN && strncmp(s, "sha256//", 8) == 0 && s[n - 1] == '=')
		while (i < n - 1 && is_base64(s[i]))
			i++;
	if (n == CONFIG_PIN_LEN && i == n - 1)
		return NULL;
	return "must be \"sha256//\" and the 44 base64 characters of the SHA-256 of the "
	       "server's public key";
}

/* Kerberos takes the process's credential cache: a user or password would be ignored. */
static enum mdm_err check_sccm(struct ctx *x, void *base, const char *path)
{
	static const char *const names[] = {"negotiate", "ntlm", "basic"};
	const struct config_sccm *c = &((const struct config_adapter *)base)->sccm;
	bool needs = c->auth != CONFIG_AUTH_NEGOTIATE;
	char kp[KEYPATH_MAX];

	if (needs != (c->user[0] != '\0')) {
		key_join(kp, path, "user");
		return fail(x, kp,
			    needs ? "required with auth \"%s\"" : "not used with auth \"%s\"",
			    names[c->auth]);
	}
	if (needs != c->password_set) {
		key_join(kp, path, "password");
		return fail(x, kp,
			    needs ? "required with auth \"%s\"" : "not used with auth \"%s\"",
			    names[c->auth]);
	}
	return MDM_OK;
}

static const struct choice adapter_choices[] = {
    {"inventory", ADAPTER_INVENTORY}, {"sccm", ADAPTER_SCCM}, {"mcms", ADAPTER_MCMS}, {NULL, 0}};
static const struct choice listing_choices[] = {{"auto", CONFIG_LIST_AUTO},
						{"all", CONFIG_LIST_ALL},
						{"noncompliant_only", CONFIG_LIST_NONCOMPLIANT},
						{NULL, 0}};

/* An origin only: the API's paths come from mdminfo, an instance from its own key. */
static const char *check_https_origin(const char *s)
{
	const char *host = s + 8, *end;

	if (strncmp(s, "https://", 8) == 0 && *host && *host != '/') {
		end = host + strcspn(host, "/?#@ ");
		while (*end == '/')
			end++;
		if (*end == '\0')
			return NULL;
	}
	return "must be an https:// origin without a path, such as \"https://mdm.example.com\" "
	       "(an instance goes into \"instance\")";
}

static const char *check_mdm_instance(const char *s)
{
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr("._~/-", *s)))
			return "may hold only A-Z, a-z, 0-9, '.', '_', '~', '/' and '-'";
	return NULL;
}
static const struct choice http_auth_choices[] = {{"negotiate", CONFIG_AUTH_NEGOTIATE},
						  {"ntlm", CONFIG_AUTH_NTLM},
						  {"basic", CONFIG_AUTH_BASIC},
						  {NULL, 0}};

_Static_assert(sizeof(enum adapter_type) == sizeof(unsigned), "T_ENUM stores an unsigned");
_Static_assert(sizeof(enum config_http_auth) == sizeof(unsigned), "T_ENUM stores an unsigned");
_Static_assert(sizeof(enum config_listing) == sizeof(unsigned), "T_ENUM stores an unsigned");

#define D struct config_adapter
#define ADAPTER_COMMON                                                                             \
	STR("name", D, name, 1, "", check_adapter_name, F_REQUIRED),                               \
	    CHOICE("type", T_ENUM, D, type, adapter_choices, ADAPTER_INVENTORY, NULL, F_REQUIRED)
static const struct field inventory_fields[] = {
    ADAPTER_COMMON,
    PATH("file", D, file, "", F_REQUIRED),
    END,
};
static const struct field sccm_fields[] = {
    ADAPTER_COMMON,
    STR("url", D, sccm.url, 1, "", check_https_url, F_REQUIRED),
    PATH("ca_file", D, sccm.ca_file, "", F_REQUIRED | F_READABLE),
    STR("pinned_key", D, sccm.pinned_key, 0, "", check_pin, 0),
    CHOICE("auth", T_ENUM, D, sccm.auth, http_auth_choices, CONFIG_AUTH_NEGOTIATE, NULL, 0),
    STR("user", D, sccm.user, 1, "", NULL, 0),
    {.key = "password",
     .type = T_SECRET,
     AT(D, sccm.password),
     .size = MEMBER_SIZE(D, sccm.password),
     .aux = offsetof(D, sccm.password_set),
     .min = 1},
    NUM("max_connections", T_UINT, D, sccm.max_connections, 1, 256, 8),
    NUM("rate_per_sec", T_NUMBER, D, sccm.rate_per_sec, 0, 100000, 0),
    NUM("max_body", T_SIZE, D, sccm.max_body, 1024, 268435456, 16777216),
    NUM("connect_timeout", T_DUR, D, sccm.connect_timeout_ms, 10, SECS(60), SECS(5)),
    NUM("breaker_failures", T_UINT, D, sccm.breaker_failures, 0, 1000, 5),
    NUM("breaker_open", T_DUR, D, sccm.breaker_open_ms, SECS(1), HOURS(1), SECS(30)),
    {.key = "only_ci",
     .type = T_STRLIST,
     AT(D, sccm.only_ci),
     .size = MEMBER_SIZE(D, sccm.only_ci[0]),
     .max = CONFIG_MAX_ONLY_CI,
     .aux = offsetof(D, sccm.nonly_ci)},
    NUM("no_baseline_compliant", T_BOOL, D, sccm.no_baseline_compliant, 0, 1, 0),
    NUM("page_rows", T_SIZE, D, sccm.page_rows, 1, 1000000, 10000),
    NUM("list_timeout", T_DUR, D, sccm.list_timeout_ms, SECS(1), MINS(10), SECS(30)),
    END,
};
static const struct field mcms_fields[] = {
    ADAPTER_COMMON,
    STR("url", D, mcms.url, 1, "", check_https_origin, F_REQUIRED),
    STR("instance", D, mcms.instance, 0, "", check_mdm_instance, 0),
    PATH("ca_file", D, mcms.ca_file, "", F_REQUIRED | F_READABLE),
    STR("pinned_key", D, mcms.pinned_key, 0, "", check_pin, 0),
    STR("user", D, mcms.user, 1, "", NULL, F_REQUIRED),
    {.key = "password",
     .type = T_SECRET,
     AT(D, mcms.password),
     .size = MEMBER_SIZE(D, mcms.password),
     .aux = offsetof(D, mcms.password_set),
     .min = 1,
     .flags = F_REQUIRED},
    NUM("max_connections", T_UINT, D, mcms.max_connections, 1, 256, 4),
    NUM("rate_per_sec", T_NUMBER, D, mcms.rate_per_sec, 0, 100000, 0),
    NUM("max_body", T_SIZE, D, mcms.max_body, 1024, 268435456, 16777216),
    NUM("connect_timeout", T_DUR, D, mcms.connect_timeout_ms, 10, SECS(60), SECS(5)),
    NUM("breaker_failures", T_UINT, D, mcms.breaker_failures, 0, 1000, 5),
    NUM("breaker_open", T_DUR, D, mcms.breaker_open_ms, SECS(1), HOURS(1), SECS(30)),
    NUM("list_timeout", T_DUR, D, mcms.list_timeout_ms, SECS(1), MINS(10), SECS(30)),
    CHOICE("listing", T_ENUM, D, mcms.listing, listing_choices, CONFIG_LIST_AUTO, NULL, 0),
    END,
};
#undef ADAPTER_COMMON
#undef D

static const struct section listen_section = {listen_fields, check_listen, NULL};
static const struct section api_section = {api_fields, NULL, NULL};
static const struct section auth_section = {auth_fields, NULL, NULL};
static const struct section cache_section = {cache_fields, check_cache, NULL};
static const struct section account_section = {account_fields, NULL, NULL};
static const struct section inventory_section = {inventory_fields, NULL, " for type \"inventory\""};
static const struct section sccm_section = {sccm_fields, check_sccm, " for type \"sccm\""};
static const struct section mcms_section = {mcms_fields, NULL, " for type \"mcms\""};

/* adapter_pick: the keys an adapter takes depend on its type, so the type is read first. */
static enum mdm_err parse_choice(struct ctx *x, const struct field *f, json_t *v, char *p,
				 const char *path);

static const struct section *adapter_pick(struct ctx *x, json_t *e, const char *path)
{
	char kp[KEYPATH_MAX];
	json_t *t = json_object_get(e, "type");
	unsigned type = ADAPTER_INVENTORY;

	key_join(kp, path, "type");
	if (!t) {
		fail(x, kp, "required");
		return NULL;
	}
	if (parse_choice(x, &inventory_fields[1], t, (char *)&type, kp) != MDM_OK)
		return NULL;
	if (type == ADAPTER_MCMS)
		return &mcms_section;
	return type == ADAPTER_SCCM ? &sccm_section : &inventory_section;
}

static const struct array_spec accounts_spec = {
    &account_section,
    sizeof(struct config_account),
    CONFIG_MAX_ACCOUNTS,
    offsetof(struct config, naccounts),
    offsetof(struct config_account, user),
    "user",
    "user",
    NULL,
};
static const struct array_spec adapters_spec = {
    &inventory_section,
    sizeof(struct config_adapter),
    CONFIG_MAX_ADAPTERS,
    offsetof(struct config, nadapters),
    offsetof(struct config_adapter, name),
    "name",
    "adapter name",
    adapter_pick,
};

static const struct choice level_choices[] = {
    {"error", 0}, {"warn", 0}, {"info", 0}, {"debug", 0}, {NULL, 0}};

#define R struct config_action_roles
static const struct field action_roles_fields[] = {
    {.key = "corporate_wipe", .type = T_ROLES, AT(R, corporate_wipe), .def = ROLE_ACTION},
    {.key = "full_wipe", .type = T_ROLES, AT(R, full_wipe), .def = ROLE_ACTION},
    {.key = "pin_lock", .type = T_ROLES, AT(R, pin_lock), .def = ROLE_ACTION},
    END,
};
#undef R
#define J struct config_journal
static const struct field journal_fields[] = {
    NUM("max_bytes", T_SIZE, J, max_bytes, 65536, 1073741824, 16 * 1024 * 1024),
    NUM("keep", T_UINT, J, keep, 1, 99, 5),
    NUM("key_window", T_DUR, J, key_window_ms, MINS(1), DAYS(30), HOURS(24)),
    END,
};
#undef J
static const struct section action_roles_section = {action_roles_fields, NULL, NULL};
static const struct section journal_section = {journal_fields, NULL, NULL};
#define X struct config_actions
static const struct field actions_fields[] = {
    {.key = "roles", .type = T_SECTION, AT(X, roles), .sub = &action_roles_section},
    NUM("allow_full_wipe_personal", T_BOOL, X, allow_full_wipe_personal, 0, 1, 0),
    NUM("allow_full_wipe_unknown_ownership", T_BOOL, X, allow_full_wipe_unknown_ownership, 0, 1, 0),
    NUM("ise_key_window", T_DUR, X, ise_key_window_ms, SECS(1), HOURS(24), MINS(15)),
    NUM("lookup_timeout", T_DUR, X, lookup_timeout_ms, 100, SECS(60), SECS(10)),
    {.key = "journal", .type = T_SECTION, AT(X, journal), .sub = &journal_section},
    END,
};
#undef X
static const struct section actions_section = {actions_fields, NULL, NULL};

/* reconciler: the polling cycle (gateway/recon/recon.h), the transitions and guard
 * (gateway/recon/trans.h) */
static const struct choice unreg_choices[] = {{"reauthenticate", 0}, {"disconnect", 1}, {NULL, 0}};
/* reconciler: jitter is a fraction, which the integer bounds of T_NUMBER cannot say. */
static enum mdm_err check_reconciler(struct ctx *x, void *base, const char *path)
{
	const struct config_reconciler *r = base;
	char kp[KEYPATH_MAX];

	if (r->interval_ms > 0 && r->interval_ms < SECS(1)) {
		key_join(kp, path, "interval");
		return fail(x, kp, "must be \"0\" (timer off) or from 1s to 7d");
	}
	if (r->jitter <= 0.5)
		return MDM_OK;
	key_join(kp, path, "jitter");
	return fail(x, kp, "must be a fraction from 0 to 0.5");
}

#define RC struct config_reconciler
static const struct field reconciler_fields[] = {
    NUM("interval", T_DUR, RC, interval_ms, 0, DAYS(7), RECON_INTERVAL_MS_DEFAULT),
    NUM("jitter", T_NUMBER, RC, jitter, 0, 1, 0), /* RECON_JITTER_DEFAULT: config_defaults */
    NUM("vendor_checkin", T_DUR, RC, vendor_checkin_ms, MINS(1), DAYS(7),
	RECON_VENDOR_CHECKIN_MS_DEFAULT),
    NUM("page_timeout", T_DUR, RC, page_timeout_ms, SECS(1), MINS(10),
	RECON_PAGE_TIMEOUT_MS_DEFAULT),
    NUM("write_through", T_BOOL, RC, write_through, 0, 1, 1),
    NUM("coa_on_compliant", T_BOOL, RC, coa_on_compliant, 0, 1, 1),
    CHOICE("unregistered_action", T_BOOLCHOICE, RC, unregistered_disconnect, unreg_choices, 0, NULL,
	   0),
    NUM("guard_share", T_NUMBER, RC, guard_share, 0, 1, 0), /* see config_defaults */
    NUM("guard_min", T_UINT, RC, guard_min, 0, 100000000, RECON_GUARD_MIN_DEFAULT),
    END,
};
#undef RC
static const struct section reconciler_section = {reconciler_fields, check_reconciler, NULL};

/* --- accounting --------------------------------------------------------------------------- */

/* "addr:port" or "[v6addr]:port" with an IP literal; addr (46 bytes) and port filled. */
static const char *split_addr_port(const char *s, char *addr, unsigned *port)
{
	const char *colon = strrchr(s, ':'), *a = s;
	unsigned char bin[16];
	size_t alen;
	char *end;
	unsigned long p;

	if (!colon || colon == s)
		return "must be \"address:port\" (\"[address]:port\" for IPv6)";
	alen = (size_t)(colon - s);
	if (s[0] == '[') {
		if (colon[-1] != ']')
			return "must be \"[address]:port\" for an IPv6 address";
		a++;
		alen -= 2;
	} else if (memchr(s, ':', alen)) {
		return "an IPv6 address must be written as \"[address]:port\"";
	}
	p = strtoul(colon + 1, &end, 10);
	if (!colon[1] || *end || p < 1 || p > 65535)
		return "port must be from 1 to 65535";
	if (str_copyn(addr, 46, a, alen) != MDM_OK ||
	    (inet_pton(AF_INET, addr, bin) != 1 && inet_pton(AF_INET6, addr, bin) != 1))
		return "address must be an IPv4 or IPv6 address such as \"0.0.0.0:1813\"";
	*port = (unsigned)p;
	return NULL;
}

/* "10.0.0.1", "10.0.0.0/8", "fd00::/8" into family, net (host bits cleared) and prefix. */
static const char *parse_cidr(const char *s, struct config_acct_client *c)
{
	char addr[64];
	const char *slash = strchr(s, '/');
	unsigned long bits;
	unsigned max;
	char *end;

	if (str_copyn(addr, sizeof(addr), s, slash ? (size_t)(slash - s) : strlen(s)) != MDM_OK)
		return "is too long";
	memset(c->net, 0, sizeof(c->net));
	if (inet_pton(AF_INET, addr, c->net) == 1)
		c->family = AF_INET;
	else if (inet_pton(AF_INET6, addr, c->net) == 1)
		c->family = AF_INET6;
	else
		return "must be an IP address or a CIDR network such as \"10.0.0.0/8\"";
	max = c->family == AF_INET ? 32 : 128;
	bits = max;
	if (slash) {
		bits = strtoul(slash + 1, &end, 10);
		if (!slash[1] || *end || bits > max)
			return "has a prefix length out of range";
	}
	c->prefix = (unsigned)bits;
	for (unsigned i = c->prefix; i < max; i++)
		c->net[i / 8] &= (unsigned char)~(0x80u >> (i % 8));
	return NULL;
}

static enum mdm_err check_acct_client(struct ctx *x, void *base, const char *path)
{
	struct config_acct_client *c = base;
	char kp[KEYPATH_MAX];
	const char *why = parse_cidr(c->address, c);

	if (!why)
		return MDM_OK;
	key_join(kp, path, "address");
	return fail(x, kp, "%s", why);
}

static enum mdm_err check_accounting(struct ctx *x, void *base, const char *path)
{
	struct config_accounting *a = base;
	char kp[KEYPATH_MAX];
	const char *why;

	if (!a->listen[0]) {
		key_join(kp, path, "listen");
		return a->nclients ? fail(x, kp, "required when accounting.clients is set")
				   : MDM_OK;
	}
	if ((why = split_addr_port(a->listen, a->listen_addr, &a->listen_port)) != NULL) {
		key_join(kp, path, "listen");
		return fail(x, kp, "%s", why);
	}
	if (!a->nclients) {
		key_join(kp, path, "clients");
		return fail(x, kp, "required when accounting.listen is set");
	}
	return MDM_OK;
}

#define AC struct config_acct_client
static const struct field acct_client_fields[] = {
    STR("address", AC, address, 1, "", NULL, F_REQUIRED),
    {.key = "secret",
     .type = T_SECRET,
     AT(AC, secret),
     .size = MEMBER_SIZE(AC, secret),
     .aux = offsetof(AC, secret_set),
     .min = 1,
     .flags = F_REQUIRED},
    END,
};
#undef AC
static const struct section acct_client_section = {acct_client_fields, check_acct_client, NULL};
static const struct array_spec acct_clients_spec = {
    &acct_client_section,
    sizeof(struct config_acct_client),
    CONFIG_MAX_ACCT_CLIENTS,
    offsetof(struct config_accounting, nclients),
    offsetof(struct config_acct_client, address),
    "address",
    "client address",
    NULL,
};
#define AA struct config_accounting
static const struct field accounting_fields[] = {
    STR("listen", AA, listen, 0, "", NULL, 0),
    {.key = "clients", .type = T_ARRAY, AT(AA, clients), .arr = &acct_clients_spec},
    NUM("session_ttl", T_DUR, AA, session_ttl_ms, MINS(1), DAYS(7), SESSIONS_DEFAULT_TTL_MS),
    NUM("max_sessions", T_SIZE, AA, max_sessions, 1, 10000000, SESSIONS_DEFAULT_MAX),
    END,
};
#undef AA
static const struct section accounting_section = {accounting_fields, check_accounting, NULL};
/* --- nas (RFC 5176 CoA peers) --- */
static const char *check_nas_host(const char *s)
{
	for (const char *c = s; *c; c++)
		if (*c <= ' ' || *c == '/' || *c == '@' || *c == '[' || *c == ']')
			return "must be a host name or an IP address";
	return NULL;
}

/* check_nas: host defaults to address. */
static enum mdm_err check_nas(struct ctx *x, void *base, const char *path)
{
	struct config_nas *n = base;

	(void)x;
	(void)path;
	if (!n->host[0])
		return str_copy(n->host, sizeof(n->host), n->address) == MDM_OK ? MDM_OK
										: MDM_ERR_CONFIG;
	return MDM_OK;
}

static const struct choice nas_action_choices[] = {{"reauthenticate", CONFIG_NAS_REAUTH},
						   {"bounce-port", CONFIG_NAS_BOUNCE},
						   {"disconnect", CONFIG_NAS_DISCONNECT},
						   {NULL, 0}};
#define A struct config_nas
static const struct field nas_fields[] = {
    STR("address", A, address, 1, "", check_address, F_REQUIRED),
    STR("identifier", A, identifier, 1, "", NULL, 0),
    STR("host", A, host, 1, "", check_nas_host, 0),
    NUM("port", T_UINT, A, port, 1, 65535, COA_NAS_PORT_DEFAULT),
    {.key = "secret",
     .type = T_SECRET,
     AT(A, secret),
     .size = MEMBER_SIZE(A, secret),
     .aux = offsetof(A, secret_set),
     .min = 1,
     .flags = F_REQUIRED},
    NUM("require_message_authenticator", T_BOOL, A, require_message_authenticator, 0, 1, 1),
    CHOICE("action", T_ENUM, A, action, nas_action_choices, CONFIG_NAS_REAUTH, NULL, 0),
    NUM("cisco_avpair", T_BOOL, A, cisco_avpair, 0, 1, 1),
    NUM("timeout", T_DUR, A, timeout_ms, 100, SECS(30), COA_NAS_TIMEOUT_MS_DEFAULT),
    NUM("tries", T_UINT, A, tries, 1, 10, COA_NAS_TRIES_DEFAULT),
    END,
};
#undef A
static const struct section nas_section = {nas_fields, check_nas, NULL};
static const struct array_spec nas_spec = {
    &nas_section,
    sizeof(struct config_nas),
    CONFIG_MAX_NAS,
    offsetof(struct config, nnas),
    offsetof(struct config_nas, address),
    "address",
    "NAS address",
    NULL,
};
/* --- coa ----------------------------------------------------------------------------------- */
static const struct choice reauth_choices[] = {
    {"default", 0}, {"last", 1}, {"rerun", 2}, {NULL, 0}};
static const struct choice port_choices[] = {
    {"default", 0}, {"bounce", 1}, {"shutdown", 2}, {NULL, 0}};

/* A sink is on once its url is given; then what it needs is required, else nothing may be set. */
static enum mdm_err coa_sink_check(struct ctx *x, const char *path, bool on, bool any,
				   const char *what)
{
	char kp[KEYPATH_MAX];

	key_join(kp, path, on ? what : "url");
	if (on && any)
		return fail(x, kp, "required when url is set");
	return !on && any ? fail(x, kp, "required: the other keys mean nothing without it")
			  : MDM_OK;
}

static enum mdm_err check_coa_mnt(struct ctx *x, void *base, const char *path)
{
	const struct config_coa_mnt *m = base;
	bool on = m->url[0] != '\0';

	if (on)
		return !m->ca_file[0]	  ? coa_sink_check(x, path, true, true, "ca_file")
		       : !m->user[0]	  ? coa_sink_check(x, path, true, true, "user")
		       : !m->password_set ? coa_sink_check(x, path, true, true, "password")
					  : MDM_OK;
	return coa_sink_check(x, path, false, m->ca_file[0] || m->user[0] || m->password_set, "");
}

static enum mdm_err check_coa_webhook(struct ctx *x, void *base, const char *path)
{
	const struct config_coa_webhook *w = base;
	bool on = w->url[0] != '\0';

	if (on)
		return !w->ca_file[0]	? coa_sink_check(x, path, true, true, "ca_file")
		       : !w->secret_set ? coa_sink_check(x, path, true, true, "secret")
					: MDM_OK;
	return coa_sink_check(x, path, false, w->ca_file[0] || w->secret_set, "");
}

#define M struct config_coa_mnt
static const struct field coa_mnt_fields[] = {
    STR("url", M, url, 0, "", check_https_origin, 0),
    PATH("ca_file", M, ca_file, "", F_READABLE),
    STR("user", M, user, 1, "", NULL, 0),
    {.key = "password",
     .type = T_SECRET,
     AT(M, password),
     .size = MEMBER_SIZE(M, password),
     .aux = offsetof(M, password_set),
     .min = 1},
    CHOICE("reauth_type", T_ENUM, M, reauth_type, reauth_choices, 0, NULL, 0),
    CHOICE("disconnect_port", T_ENUM, M, disconnect_port, port_choices, 0, NULL, 0),
    NUM("timeout", T_DUR, M, timeout_ms, 100, SECS(60), COA_HTTP_TIMEOUT_MS_DEFAULT),
    END,
};
#undef M
#define W struct config_coa_webhook
static const struct field coa_webhook_fields[] = {
    STR("url", W, url, 0, "", check_https_url, 0),
    PATH("ca_file", W, ca_file, "", F_READABLE),
    {.key = "secret",
     .type = T_SECRET,
     AT(W, secret),
     .size = MEMBER_SIZE(W, secret),
     .aux = offsetof(W, secret_set),
     .min = 16},
    NUM("timeout", T_DUR, W, timeout_ms, 100, SECS(60), COA_HTTP_TIMEOUT_MS_DEFAULT),
    END,
};
#undef W
static const struct section coa_mnt_section = {coa_mnt_fields, check_coa_mnt, NULL};
static const struct section coa_webhook_section = {coa_webhook_fields, check_coa_webhook, NULL};
#define C struct config_coa
static const struct field coa_fields[] = {
    NUM("rate_per_sec", T_NUMBER, C, rate_per_sec, 0, 100000, COA_RATE_PER_SEC_DEFAULT),
    NUM("max_attempts", T_UINT, C, max_attempts, 1, 10, COA_MAX_ATTEMPTS_DEFAULT),
    NUM("backoff", T_DUR, C, backoff_ms, 10, MINS(10), COA_BACKOFF_MS_DEFAULT),
    NUM("queue_max", T_SIZE, C, queue_max, 1, 10000000, COA_QUEUE_MAX_DEFAULT),
    {.key = "mnt", .type = T_SECTION, AT(C, mnt), .sub = &coa_mnt_section},
    {.key = "webhook", .type = T_SECTION, AT(C, webhook), .sub = &coa_webhook_section},
    END,
};
#undef C
static const struct section coa_section = {coa_fields, NULL, NULL};

#define H struct config_ha
static const struct field ha_fields[] = {
    NUM("lease_ttl", T_DUR, H, lease_ttl_ms, SECS(2), MINS(10), SECS(15)),
    NUM("follow_interval", T_DUR, H, follow_interval_ms, SECS(1), MINS(10), SECS(5)),
    NUM("max_snapshot", T_SIZE, H, max_snapshot, 1048576, 4294967296LL, PUBLISH_MAX_DEFAULT),
    END,
};
#undef H
static const struct section ha_section = {ha_fields, NULL, NULL};

#define G struct config
static const struct field top_fields[] = {
    {.key = "listen", .type = T_SECTION, AT(G, listen), .sub = &listen_section},
    {.key = "api", .type = T_SECTION, AT(G, api), .sub = &api_section},
    {.key = "auth", .type = T_SECTION, AT(G, auth), .sub = &auth_section},
    {.key = "accounts",
     .type = T_ARRAY,
     AT(G, accounts),
     .arr = &accounts_spec,
     .flags = F_REQUIRED},
    {.key = "cache", .type = T_SECTION, AT(G, cache), .sub = &cache_section},
    {.key = "adapters",
     .type = T_ARRAY,
     AT(G, adapters),
     .arr = &adapters_spec,
     .flags = F_REQUIRED},
    PATH("state_dir", G, state_dir, "state", 0),
    CHOICE("log_level", T_STRCHOICE, G, log_level, level_choices, 0, "info", 0),
    {.key = "actions", .type = T_SECTION, AT(G, actions), .sub = &actions_section},
    {.key = "reconciler", .type = T_SECTION, AT(G, reconciler), .sub = &reconciler_section},
    {.key = "accounting", .type = T_SECTION, AT(G, accounting), .sub = &accounting_section},
    {.key = "nas", .type = T_ARRAY, AT(G, nas), .arr = &nas_spec},
    {.key = "coa", .type = T_SECTION, AT(G, coa), .sub = &coa_section},
    {.key = "ha", .type = T_SECTION, AT(G, ha), .sub = &ha_section},
    END,
};
#undef G

static const struct section top_section = {top_fields, NULL, NULL};

/* --- defaults -------------------------------------------------------------------------------- */

static void section_defaults(const struct section *sec, void *base);

static void field_default(const struct field *f, void *base)
{
	char *p = (char *)base + f->off;

	switch (f->type) {
	case T_STR:
	case T_PATH:
	case T_STRCHOICE:
		if (str_copy(p, f->size, f->sdef ? f->sdef : "") != MDM_OK)
			p[0] = '\0';
		break;
	case T_UINT:
		*(unsigned *)(void *)p = (unsigned)f->def;
		break;
	case T_SIZE:
		*(size_t *)(void *)p = (size_t)f->def;
		break;
	case T_DUR:
		*(int64_t *)(void *)p = f->def;
		break;
	case T_BOOLCHOICE:
		*(bool *)p = f->def != 0;
		break;
	case T_ENUM: {
		unsigned u = (unsigned)f->def;

		memcpy(p, &u, sizeof(u));
		break;
	}
	case T_BOOL:
		*(bool *)p = f->def != 0;
		break;
	case T_NUMBER:
		*(double *)(void *)p = (double)f->def;
		break;
	case T_STRLIST:
		memset(p, 0, f->size * (size_t)f->max);
		*(size_t *)(void *)((char *)base + f->aux) = 0;
		break;
	case T_SECRET:
		memset(p, 0, f->size);
		*(bool *)((char *)base + f->aux) = false;
		break;
	case T_ROLES:
		*(unsigned *)(void *)p = (unsigned)f->def;
		break;
	case T_SERVERS:
		((struct config_cache *)base)->nservers = 0;
		break;
	case T_SECTION:
		section_defaults(f->sub, p);
		break;
	case T_ARRAY:
		*(size_t *)(void *)((char *)base + f->arr->count_off) = 0;
		break;
	}
}

static void section_defaults(const struct section *sec, void *base)
{
	for (const struct field *f = sec->fields; f->key; f++)
		field_default(f, base);
}

void config_defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	section_defaults(&top_section, c);
	/* field defaults are whole numbers */
	c->reconciler.guard_share = RECON_GUARD_SHARE_DEFAULT;
	c->reconciler.jitter = RECON_JITTER_DEFAULT;
}

/* --- the walker ------------------------------------------------------------------------------ */

static enum mdm_err load_section(struct ctx *x, const struct section *sec, json_t *obj, void *base,
				 const char *path);

/* get_string: v as a string without control characters, at most max bytes. */
static enum mdm_err get_string(struct ctx *x, json_t *v, const char *path, size_t max,
			       const char **s)
{
	if (!json_is_string(v))
		return fail(x, path, "must be a string");
	*s = json_string_value(v);
	if (has_control(*s, json_string_length(v)))
		return fail(x, path, "must not contain control characters");
	if (json_string_length(v) > max)
		return fail(x, path, "is too long (at most %zu bytes)", max);
	return MDM_OK;
}

static enum mdm_err parse_str(struct ctx *x, const struct field *f, json_t *v, char *p,
			      const char *path)
{
	const char *s, *why;
	enum mdm_err rc = get_string(x, v, path, f->size - 1, &s);

	if (rc != MDM_OK)
		return rc;
	if ((int64_t)strlen(s) < f->min)
		return fail(x, path, "must not be empty");
	if (f->check && (why = f->check(s)) != NULL)
		return fail(x, path, "%s", why);
	return str_copy(p, f->size, s) == MDM_OK ? MDM_OK : fail(x, path, "is too long");
}

/*
 * check_readable: p opens for reading and is a regular file. For trust anchors: a CA file that
 * is missing would otherwise only show at the first lookup, as a failure of every request.
 */
static enum mdm_err check_readable(struct ctx *x, const char *p, const char *path)
{
	char qb[QUOTE_MAX];
	struct stat st;
	int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	if (fd < 0)
		return fail(x, path, "cannot read %s: %s", quote(qb, p), strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return fail(x, path, "%s is not a regular file", quote(qb, p));
	}
	close(fd);
	return MDM_OK;
}

static enum mdm_err parse_path(struct ctx *x, const struct field *f, json_t *v, char *p,
			       const char *path)
{
	char qb[QUOTE_MAX];
	const char *s;
	enum mdm_err rc = get_string(x, v, path, f->size - 1, &s);

	if (rc != MDM_OK)
		return rc;
	if (!s[0])
		return fail(x, path, "must not be empty");
	if (path_resolve(x->dir, s, p, f->size) != MDM_OK)
		return fail(x, path, "is too long once resolved against %s (at most %zu bytes)",
			    quote(qb, x->dir), f->size - 1);
	return (f->flags & F_READABLE) ? check_readable(x, p, path) : MDM_OK;
}

static enum mdm_err parse_int(struct ctx *x, const struct field *f, json_t *v, char *p,
			      const char *path)
{
	json_int_t n;

	if (!json_is_integer(v) || (n = json_integer_value(v)) < f->min || n > f->max)
		return fail(x, path, "must be an integer from %lld to %lld", (long long)f->min,
			    (long long)f->max);
	if (f->type == T_SIZE)
		*(size_t *)(void *)p = (size_t)n;
	else
		*(unsigned *)(void *)p = (unsigned)n;
	return MDM_OK;
}

static enum mdm_err parse_dur(struct ctx *x, const struct field *f, json_t *v, char *p,
			      const char *path)
{
	char qb[QUOTE_MAX], lo[32], hi[32];
	int64_t ms;

	if (!json_is_string(v))
		return fail(x, path,
			    "must be a duration string such as \"30s\" (ms, s, m, h or d)");
	if (duration_parse(json_string_value(v), &ms) != MDM_OK)
		return fail(x, path, "%s is not a duration (use a number with ms, s, m, h or d)",
			    quote(qb, json_string_value(v)));
	if (ms < f->min || ms > f->max) {
		fmt_duration(lo, sizeof(lo), f->min);
		fmt_duration(hi, sizeof(hi), f->max);
		return fail(x, path, "must be from %s to %s", lo, hi);
	}
	*(int64_t *)(void *)p = ms;
	return MDM_OK;
}

static enum mdm_err parse_number(struct ctx *x, const struct field *f, json_t *v, char *p,
				 const char *path)
{
	double d;

	if (!json_is_number(v) || (d = json_number_value(v)) < (double)f->min || d > (double)f->max)
		return fail(x, path, "must be a number from %lld to %lld", (long long)f->min,
			    (long long)f->max);
	*(double *)(void *)p = d;
	return MDM_OK;
}

static enum mdm_err parse_strlist(struct ctx *x, const struct field *f, json_t *v, void *base,
				  const char *path)
{
	char *arr = (char *)base + f->off, ep[KEYPATH_MAX];
	const char *s;
	size_t i;
	json_t *e;

	if (!json_is_array(v))
		return fail(x, path, "must be an array of strings");
	if (json_array_size(v) > (size_t)f->max)
		return fail(x, path, "holds more than %lld entries", (long long)f->max);
	json_array_foreach(v, i, e)
	{
		key_index(ep, path, i);
		if (get_string(x, e, ep, f->size - 1, &s) != MDM_OK)
			return MDM_ERR_CONFIG;
		if (!s[0])
			return fail(x, ep, "must not be empty");
		str_copy(arr + i * f->size, f->size, s);
	}
	*(size_t *)(void *)((char *)base + f->aux) = json_array_size(v);
	return MDM_OK;
}

static void choice_list(const struct choice *ch, char *out, size_t outsz)
{
	size_t o = 0;

	out[0] = '\0';
	for (; ch->name && o < outsz; ch++) {
		int n = snprintf(out + o, outsz - o, "%s%s", o ? ", " : "", ch->name);

		if (n < 0)
			break;
		o += (size_t)n;
	}
}

static enum mdm_err parse_choice(struct ctx *x, const struct field *f, json_t *v, char *p,
				 const char *path)
{
	char list[128], qb[QUOTE_MAX];
	const struct choice *ch;

	choice_list(f->choices, list, sizeof(list));
	if (!json_is_string(v))
		return fail(x, path, "must be a string (%s)", list);
	for (ch = f->choices; ch->name; ch++)
		if (strcmp(ch->name, json_string_value(v)) == 0)
			break;
	if (!ch->name)
		return fail(x, path, "unknown value %s (%s)", quote(qb, json_string_value(v)),
			    list);
	if (f->type == T_BOOLCHOICE)
		*(bool *)p = ch->value != 0;
	else if (f->type == T_ENUM)
		memcpy(p, &ch->value, sizeof(ch->value));
	else if (str_copy(p, f->size, ch->name) != MDM_OK)
		return MDM_ERR_INTERNAL;
	return MDM_OK;
}

#define PLAINTEXT_SECRET                                                                           \
	"plaintext secret in a file readable by group or others (chmod 600, or use {\"file\": "    \
	"...} / {\"env\": ...})"

static enum mdm_err parse_secret(struct ctx *x, const struct field *f, json_t *v, void *base,
				 const char *path)
{
	char *p = (char *)base + f->off;
	bool inl = false;
	enum mdm_err rc = config_secret(v, x->name, path, p, f->size, &inl, x->why, x->whysz);

	if (rc != MDM_OK)
		return rc;
	if (inl && x->check_mode && (x->mode & (S_IRGRP | S_IROTH)))
		rc = fail(x, path, PLAINTEXT_SECRET);
	else if ((int64_t)strlen(p) < f->min)
		rc = fail(x, path, "must be at least %lld bytes long", (long long)f->min);
	if (rc != MDM_OK) {
		explicit_bzero(p, f->size);
		return rc;
	}
	*(bool *)((char *)base + f->aux) = true;
	return MDM_OK;
}

#define ROLE_NAMES "(query, action, admin)"

static enum mdm_err parse_roles(struct ctx *x, json_t *v, unsigned *out, const char *path)
{
	char ep[KEYPATH_MAX], qb[QUOTE_MAX];
	unsigned bits = 0, bit;
	size_t i;
	json_t *e;

	if (!json_is_array(v))
		return fail(x, path, "must be an array of roles " ROLE_NAMES);
	if (json_array_size(v) == 0)
		return fail(x, path, "must not be empty " ROLE_NAMES);
	json_array_foreach(v, i, e)
	{
		key_index(ep, path, i);
		if (!json_is_string(e))
			return fail(x, ep, "must be a string " ROLE_NAMES);
		bit = role_parse(json_string_value(e));
		if (!bit)
			return fail(x, ep, "unknown role %s " ROLE_NAMES,
				    quote(qb, json_string_value(e)));
		if (bits & bit)
			return fail(x, ep, "duplicate role %s", quote(qb, json_string_value(e)));
		bits |= bit;
	}
	*out = bits;
	return MDM_OK;
}

/* "host:port" or "[v6]:port" with a port from 1 to 65535; NULL when fine. */
static const char *check_server(const char *s)
{
	const char *colon = strrchr(s, ':');
	char *end;
	unsigned long port;

	if (!colon || colon == s)
		return "must be \"host:port\" (\"[address]:port\" for IPv6)";
	if (s[0] == '[' && colon[-1] != ']')
		return "must be \"[address]:port\" for an IPv6 address";
	if (s[0] != '[' && memchr(s, ':', (size_t)(colon - s)))
		return "an IPv6 address must be written as \"[address]:port\"";
	port = strtoul(colon + 1, &end, 10);
	if (!colon[1] || *end || port < 1 || port > 65535)
		return "port must be from 1 to 65535";
	for (const char *c = s; c < colon; c++)
		if (*c <= ' ' || *c == '/' || *c == '@')
			return "host holds a character no host name has";
	return NULL;
}

static enum mdm_err parse_servers(struct ctx *x, json_t *v, void *base, const char *path)
{
	struct config_cache *c = base;
	char ep[KEYPATH_MAX];
	const char *s, *why;
	size_t i;
	json_t *e;

	if (!json_is_array(v))
		return fail(x, path, "must be an array of \"host:port\" strings");
	if (json_array_size(v) > CONFIG_MAX_SERVERS)
		return fail(x, path, "holds more than %d servers", CONFIG_MAX_SERVERS);
	json_array_foreach(v, i, e)
	{
		key_index(ep, path, i);
		if (get_string(x, e, ep, sizeof(c->servers[0]) - 1, &s) != MDM_OK)
			return MDM_ERR_CONFIG;
		if ((why = check_server(s)) != NULL)
			return fail(x, ep, "%s", why);
		for (size_t j = 0; j < i; j++)
			if (strcmp(c->servers[j], s) == 0)
				return fail(x, ep, "duplicate server");
		str_copy(c->servers[i], sizeof(c->servers[0]), s);
	}
	c->nservers = json_array_size(v);
	return MDM_OK;
}

/* unique: element i's unique member differs from those of elements 0..i-1. */
static enum mdm_err unique(struct ctx *x, const struct array_spec *a, const char *arr, size_t i,
			   const char *path)
{
	const char *mine = arr + i * a->elem_size + a->unique_off;
	char kp[KEYPATH_MAX], qb[QUOTE_MAX];

	for (size_t j = 0; j < i; j++) {
		if (strcmp(arr + j * a->elem_size + a->unique_off, mine) == 0) {
			key_join(kp, path, a->unique_key);
			return fail(x, kp, "duplicate %s %s", a->unique_what, quote(qb, mine));
		}
	}
	return MDM_OK;
}

static enum mdm_err parse_array(struct ctx *x, const struct field *f, json_t *v, void *base,
				const char *path)
{
	const struct array_spec *a = f->arr;
	char *arr = (char *)base + f->off, ep[KEYPATH_MAX];
	enum mdm_err rc;
	size_t i;
	json_t *e;

	if (!json_is_array(v))
		return fail(x, path, "must be an array");
	if (json_array_size(v) == 0 || json_array_size(v) > a->max)
		return fail(x, path, "must have 1 to %zu entries", a->max);
	json_array_foreach(v, i, e)
	{
		const struct section *sec = a->elem;

		key_index(ep, path, i);
		if (!json_is_object(e))
			return fail(x, ep, "must be an object");
		if (a->pick && !(sec = a->pick(x, e, ep)))
			return MDM_ERR_CONFIG;
		section_defaults(sec, arr + i * a->elem_size);
		rc = load_section(x, sec, e, arr + i * a->elem_size, ep);
		if (rc == MDM_OK)
			rc = unique(x, a, arr, i, ep);
		if (rc != MDM_OK)
			return rc;
	}
	*(size_t *)(void *)((char *)base + a->count_off) = json_array_size(v);
	return MDM_OK;
}

static enum mdm_err parse_field(struct ctx *x, const struct field *f, json_t *v, void *base,
				const char *path)
{
	char *p = (char *)base + f->off;

	switch (f->type) {
	case T_STR:
		return parse_str(x, f, v, p, path);
	case T_PATH:
		return parse_path(x, f, v, p, path);
	case T_UINT:
	case T_SIZE:
		return parse_int(x, f, v, p, path);
	case T_DUR:
		return parse_dur(x, f, v, p, path);
	case T_BOOLCHOICE:
	case T_STRCHOICE:
	case T_ENUM:
		return parse_choice(x, f, v, p, path);
	case T_BOOL:
		if (!json_is_boolean(v))
			return fail(x, path, "must be true or false");
		*(bool *)p = json_is_true(v);
		return MDM_OK;
	case T_NUMBER:
		return parse_number(x, f, v, p, path);
	case T_STRLIST:
		return parse_strlist(x, f, v, base, path);
	case T_SECRET:
		return parse_secret(x, f, v, base, path);
	case T_ROLES:
		return parse_roles(x, v, (unsigned *)(void *)p, path);
	case T_SERVERS:
		return parse_servers(x, v, base, path);
	case T_SECTION:
		return load_section(x, f->sub, v, p, path);
	case T_ARRAY:
		return parse_array(x, f, v, base, path);
	}
	return MDM_ERR_INTERNAL;
}

/* missing_field: a key that is absent: required, a section of defaults, or a default path. */
static enum mdm_err missing_field(struct ctx *x, const struct field *f, void *base,
				  const char *path)
{
	char *p = (char *)base + f->off;

	if (f->flags & F_REQUIRED)
		return fail(x, path, "required");
	if (f->type == T_SECTION)
		return load_section(x, f->sub, NULL, p, path);
	if (f->type == T_PATH && f->sdef && f->sdef[0] &&
	    path_resolve(x->dir, f->sdef, p, f->size) != MDM_OK)
		return fail(x, path,
			    "default %s is too long once resolved against the config "
			    "directory",
			    f->sdef);
	return MDM_OK;
}

static const struct field *find_field(const struct section *sec, const char *key)
{
	for (const struct field *f = sec->fields; f->key; f++)
		if (strcmp(f->key, key) == 0)
			return f;
	return NULL;
}

/* load_section: obj (NULL when the section is absent) into base, which holds defaults. */
static enum mdm_err load_section(struct ctx *x, const struct section *sec, json_t *obj, void *base,
				 const char *path)
{
	char kp[KEYPATH_MAX];
	const char *key;
	json_t *v;
	enum mdm_err rc;

	if (obj && !json_is_object(obj))
		return fail(x, path, "must be an object");
	json_object_foreach(obj, key, v)
	{
		if (!find_field(sec, key)) {
			key_join(kp, path, key);
			return fail(x, kp, "unknown key%s", sec->note ? sec->note : "");
		}
	}
	for (const struct field *f = sec->fields; f->key; f++) {
		key_join(kp, path, f->key);
		v = json_object_get(obj, f->key);
		rc = v ? parse_field(x, f, v, base, kp) : missing_field(x, f, base, kp);
		if (rc != MDM_OK)
			return rc;
	}
	return sec->check ? sec->check(x, base, path) : MDM_OK;
}

/* --- entry points ---------------------------------------------------------------------------- */

static enum mdm_err parse_root(struct ctx *x, const char *json, size_t len, struct config *c)
{
	json_error_t jerr;
	json_t *root;
	enum mdm_err rc;

	if (len > CONFIG_FILE_MAX)
		return fail(x, "(file)", "larger than %d bytes", CONFIG_FILE_MAX);
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!root) {
		char where[64];

		/* jansson's text quotes the input near the error; fail() makes it one line */
		snprintf(where, sizeof(where), "line %d, column %d", jerr.line, jerr.column);
		return fail(x, where, "%s", jerr.text);
	}
	if (!json_is_object(root))
		rc = fail(x, "(top)", "must be a JSON object");
	else
		rc = load_section(x, &top_section, root, c, "");
	json_decref(root);
	return rc;
}

/*
 * default_gateway_id: "<hostname>:<listen.port>" when api.gateway_id is not given; bytes the id
 * may not hold become '-', and a long host name is cut so the id fits.
 */
static void default_gateway_id(struct config *c)
{
	char host[256] = "";
	char port[8];
	size_t room, n;

	if (c->api.gateway_id[0])
		return;
	if (gethostname(host, sizeof(host) - 1) != 0 || !host[0])
		str_copy(host, sizeof(host), "mdmgw");
	snprintf(port, sizeof(port), ":%u", c->listen.port);
	room = sizeof(c->api.gateway_id) - 1 - strlen(port);
	n = strnlen(host, room);
	for (size_t i = 0; i < n; i++)
		if (check_gateway_id((char[]){host[i], '\0'}))
			host[i] = '-';
	snprintf(c->api.gateway_id, sizeof(c->api.gateway_id), "%.*s%s", (int)n, host, port);
}

static enum mdm_err load(struct ctx *x, const char *json, size_t len, struct config *out)
{
	struct config *c = malloc(sizeof(*c));
	enum mdm_err rc;

	if (!c)
		return say(MDM_ERR_NOMEM, x->why, x->whysz, x->name, "(file)", "out of memory");
	config_defaults(c);
	dir_of(x->name, x->dir);
	if (str_copy(c->path, sizeof(c->path), x->name) != MDM_OK)
		rc = fail(x, "(file)", "file name is too long");
	else
		rc = parse_root(x, json, len, c);
	if (rc == MDM_OK)
		default_gateway_id(c);
	if (rc == MDM_OK)
		memcpy(out, c, sizeof(*c));
	explicit_bzero(c, sizeof(*c));
	free(c);
	return rc;
}

enum mdm_err config_load_mem(const char *name, const char *json, size_t len, struct config *c,
			     char *why, size_t whysz)
{
	struct ctx x = {.name = name ? name : "(config)", .why = why, .whysz = whysz};

	if (why && whysz)
		why[0] = '\0';
	if (!json)
		return fail(&x, "(file)", "no content");
	return load(&x, json, len, c);
}

/* read_all: the whole of fd into b (bounded by b's limit). */
static enum mdm_err read_all(int fd, struct buf *b)
{
	char chunk[16384];
	enum mdm_err rc;

	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return MDM_ERR_IO;
		if (n == 0)
			return MDM_OK;
		rc = buf_add(b, chunk, (size_t)n);
		if (rc != MDM_OK) {
			explicit_bzero(chunk, sizeof(chunk));
			return rc;
		}
	}
}

static enum mdm_err read_config(struct ctx *x, const char *path, struct buf *b)
{
	struct stat st;
	enum mdm_err rc;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	if (fd < 0)
		return say(MDM_ERR_IO, x->why, x->whysz, path, "(file)", "cannot open: %s",
			   strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return fail(x, "(file)", "not a regular file");
	}
	if (st.st_size > CONFIG_FILE_MAX) {
		close(fd);
		return fail(x, "(file)", "larger than %d bytes", CONFIG_FILE_MAX);
	}
	x->check_mode = true;
	x->mode = st.st_mode;
	rc = read_all(fd, b);
	close(fd);
	if (rc == MDM_ERR_TOOBIG)
		return fail(x, "(file)", "larger than %d bytes", CONFIG_FILE_MAX);
	if (rc == MDM_ERR_IO)
		return say(MDM_ERR_IO, x->why, x->whysz, path, "(file)", "cannot read: %s",
			   strerror(errno));
	return rc;
}

enum mdm_err config_load(const char *path, struct config *c, char *why, size_t whysz)
{
	struct ctx x = {.name = path ? path : "(config)", .why = why, .whysz = whysz};
	struct buf b;
	enum mdm_err rc;

	if (why && whysz)
		why[0] = '\0';
	if (!path)
		return fail(&x, "(file)", "no file name");
	buf_init(&b, (size_t)CONFIG_FILE_MAX + 1);
	rc = read_config(&x, path, &b);
	if (rc == MDM_OK)
		rc = load(&x, buf_str(&b), b.len, c);
	if (b.mem)
		explicit_bzero(b.mem, b.alloc);
	buf_free(&b);
	return rc;
}
