/*
 * conf: the configuration engine (see conf.h). Each section is a table of field descriptors; one
 * generic walker applies defaults, refuses unknown keys, checks types and ranges and stores the
 * values.
 */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE /* explicit_bzero */
#endif

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "buf.h"
#include "clock.h"
#include "conf.h"

#define QUOTE_CHARS 48 /* bytes of the value shown before "..." */
#define WHAT_MAX 512   /* the "what is wrong" part of a message */

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

const char *conf_quote(char out[CONF_QUOTE_MAX], const char *s)
{
	size_t n;

	out[0] = '"';
	escape(out + 1, CONF_QUOTE_MAX - 2, s, QUOTE_CHARS);
	n = strlen(out);
	out[n] = '"';
	out[n + 1] = '\0';
	return out;
}

/* key_mark: a key path cut short by snprintf ends in "..." (keys come from the input). */
static void key_mark(char out[CONF_KEYPATH_MAX], int n)
{
	if (n < 0 || n >= CONF_KEYPATH_MAX)
		memcpy(out + CONF_KEYPATH_MAX - 4, "...", 4);
}

void conf_key_join(char out[CONF_KEYPATH_MAX], const char *path, const char *key)
{
	char k[CONF_KEYPATH_MAX];

	escape(k, sizeof(k), key, 64);
	key_mark(out, snprintf(out, CONF_KEYPATH_MAX, "%s%s%s", path, path[0] ? "." : "", k));
}

void conf_key_index(char out[CONF_KEYPATH_MAX], const char *path, size_t i)
{
	key_mark(out, snprintf(out, CONF_KEYPATH_MAX, "%s[%zu]", path, i));
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

bool conf_all_of(const char *s, const char *extra)
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
	} units[] = {
	    {"d", CONF_DAYS(1)}, {"h", CONF_HOURS(1)}, {"m", CONF_MINS(1)}, {"s", CONF_SECS(1)}};

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
	char dir[CONFIG_PATH_MAX], path[CONFIG_PATH_MAX], qb[CONF_QUOTE_MAX], *line;
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
			   conf_quote(qb, path), strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return say(MDM_ERR_CONFIG, why, whysz, name, key,
			   "secret file %s is not a regular file", conf_quote(qb, path));
	}
	line = malloc(outsz + 1);
	if (!line) {
		close(fd);
		return MDM_ERR_NOMEM;
	}
	rc = first_line(fd, line, outsz + 1, &n);
	close(fd);
	if (rc == MDM_ERR_IO)
		say(rc, why, whysz, name, key, "cannot read secret file %s: %s",
		    conf_quote(qb, path), strerror(errno));
	else if (rc == MDM_ERR_TOOBIG)
		rc = say(MDM_ERR_CONFIG, why, whysz, name, key,
			 "the first line of secret file %s is too long (at most %zu bytes)",
			 conf_quote(qb, path), outsz - 1);
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
	char qb[CONF_QUOTE_MAX], what[CONF_QUOTE_MAX + 32];
	const char *v = getenv(var);

	if (!v)
		return say(MDM_ERR_CONFIG, why, whysz, name, key,
			   "environment variable %s is not set", conf_quote(qb, var));
	snprintf(what, sizeof(what), "environment variable %s", conf_quote(qb, var));
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

enum mdm_err conf_secret(const struct json_t *json, const char *name, const char *key, char *out,
			 size_t outsz, bool *inline_used, char *why, size_t whysz)
{
	json_t *v = (json_t *)json; /* jansson's getters take no const */
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

/* --- the state of a load ---------------------------------------------------------------------- */

enum mdm_err conf_fail(struct conf_ctx *x, const char *path, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(x->why, x->whysz, x->name, path, fmt, ap);
	va_end(ap);
	return MDM_ERR_CONFIG;
}

enum mdm_err conf_say(struct conf_ctx *x, enum mdm_err rc, const char *path, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(x->why, x->whysz, x->name, path, fmt, ap);
	va_end(ap);
	return rc;
}

void conf_begin(struct conf_ctx *x, const char *name, char *why, size_t whysz)
{
	memset(x, 0, sizeof(*x));
	x->name = name ? name : "(config)";
	x->why = why;
	x->whysz = whysz;
	if (why && whysz)
		why[0] = '\0';
	dir_of(x->name, x->dir);
}

/* --- checks several sections share ---------------------------------------------------------- */

const char *conf_check_https_url(const char *s)
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
const char *conf_check_pin(const char *s)
{
	size_t n = strlen(s), i = 8;

	if (n == CONF_PIN_LEN && strncmp(s, "sha256//", 8) == 0 && s[n - 1] == '=')
		while (i < n - 1 && is_base64(s[i]))
			i++;
	if (n == CONF_PIN_LEN && i == n - 1)
		return NULL;
	return "must be \"sha256//\" and the 44 base64 characters of the SHA-256 of the "
	       "server's public key";
}

/* An origin only: the paths are the client's own (mcms: from mdminfo, and its "instance"). */
const char *conf_check_https_origin(const char *s)
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

const char *conf_choice_name(const struct conf_choice *ch, unsigned value)
{
	for (; ch->name; ch++)
		if (ch->value == value)
			return ch->name;
	return "";
}

/* --- defaults -------------------------------------------------------------------------------- */

static void field_default(const struct conf_field *f, void *base)
{
	char *p = (char *)base + f->off;

	switch (f->type) {
	case CONF_T_STR:
	case CONF_T_PATH:
	case CONF_T_STRCHOICE:
		if (str_copy(p, f->size, f->sdef ? f->sdef : "") != MDM_OK)
			p[0] = '\0';
		break;
	case CONF_T_UINT:
		*(unsigned *)(void *)p = (unsigned)f->def;
		break;
	case CONF_T_SIZE:
		*(size_t *)(void *)p = (size_t)f->def;
		break;
	case CONF_T_DUR:
		*(int64_t *)(void *)p = f->def;
		break;
	case CONF_T_BOOLCHOICE:
		*(bool *)p = f->def != 0;
		break;
	case CONF_T_ENUM: {
		unsigned u = (unsigned)f->def;

		memcpy(p, &u, sizeof(u));
		break;
	}
	case CONF_T_BOOL:
		*(bool *)p = f->def != 0;
		break;
	case CONF_T_NUMBER:
		*(double *)(void *)p = (double)f->def;
		break;
	case CONF_T_STRLIST:
		memset(p, 0, f->size * (size_t)f->max);
		*(size_t *)(void *)((char *)base + f->aux) = 0;
		break;
	case CONF_T_SECRET:
		memset(p, 0, f->size);
		*(bool *)((char *)base + f->aux) = false;
		break;
	case CONF_T_CUSTOM:
		if (f->reset)
			f->reset(f, base);
		else
			memset(p, 0, f->size);
		break;
	case CONF_T_SECTION:
		conf_defaults(f->sub, p);
		break;
	case CONF_T_ARRAY:
		*(size_t *)(void *)((char *)base + f->arr->count_off) = 0;
		break;
	}
}

void conf_defaults(const struct conf_section *sec, void *base)
{
	for (const struct conf_field *f = sec->fields; f->key; f++)
		field_default(f, base);
}

/* --- the walker ------------------------------------------------------------------------------ */

static enum mdm_err load_section(struct conf_ctx *x, const struct conf_section *sec, json_t *obj,
				 void *base, const char *path);

enum mdm_err conf_get_string(struct conf_ctx *x, json_t *v, const char *path, size_t max,
			     const char **s)
{
	if (!json_is_string(v))
		return conf_fail(x, path, "must be a string");
	*s = json_string_value(v);
	if (has_control(*s, json_string_length(v)))
		return conf_fail(x, path, "must not contain control characters");
	if (json_string_length(v) > max)
		return conf_fail(x, path, "is too long (at most %zu bytes)", max);
	return MDM_OK;
}

static enum mdm_err parse_str(struct conf_ctx *x, const struct conf_field *f, json_t *v, char *p,
			      const char *path)
{
	const char *s, *why;
	enum mdm_err rc = conf_get_string(x, v, path, f->size - 1, &s);

	if (rc != MDM_OK)
		return rc;
	if ((int64_t)strlen(s) < f->min)
		return conf_fail(x, path, "must not be empty");
	if (f->check && (why = f->check(s)) != NULL)
		return conf_fail(x, path, "%s", why);
	return str_copy(p, f->size, s) == MDM_OK ? MDM_OK : conf_fail(x, path, "is too long");
}

/*
 * check_readable: p opens for reading and is a regular file. For trust anchors: a CA file that
 * is missing would otherwise only show at the first lookup, as a failure of every request.
 */
static enum mdm_err check_readable(struct conf_ctx *x, const char *p, const char *path)
{
	char qb[CONF_QUOTE_MAX];
	struct stat st;
	int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	if (fd < 0)
		return conf_fail(x, path, "cannot read %s: %s", conf_quote(qb, p), strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return conf_fail(x, path, "%s is not a regular file", conf_quote(qb, p));
	}
	close(fd);
	return MDM_OK;
}

static enum mdm_err parse_path(struct conf_ctx *x, const struct conf_field *f, json_t *v, char *p,
			       const char *path)
{
	char qb[CONF_QUOTE_MAX];
	const char *s;
	enum mdm_err rc = conf_get_string(x, v, path, f->size - 1, &s);

	if (rc != MDM_OK)
		return rc;
	if (!s[0])
		return conf_fail(x, path, "must not be empty");
	if (path_resolve(x->dir, s, p, f->size) != MDM_OK)
		return conf_fail(x, path,
				 "is too long once resolved against %s (at most %zu bytes)",
				 conf_quote(qb, x->dir), f->size - 1);
	return (f->flags & CONF_READABLE) ? check_readable(x, p, path) : MDM_OK;
}

static enum mdm_err parse_int(struct conf_ctx *x, const struct conf_field *f, json_t *v, char *p,
			      const char *path)
{
	json_int_t n;

	if (!json_is_integer(v) || (n = json_integer_value(v)) < f->min || n > f->max)
		return conf_fail(x, path, "must be an integer from %lld to %lld", (long long)f->min,
				 (long long)f->max);
	if (f->type == CONF_T_SIZE)
		*(size_t *)(void *)p = (size_t)n;
	else
		*(unsigned *)(void *)p = (unsigned)n;
	return MDM_OK;
}

static enum mdm_err parse_dur(struct conf_ctx *x, const struct conf_field *f, json_t *v, char *p,
			      const char *path)
{
	char qb[CONF_QUOTE_MAX], lo[32], hi[32];
	int64_t ms;

	if (!json_is_string(v))
		return conf_fail(x, path,
				 "must be a duration string such as \"30s\" (ms, s, m, h or d)");
	if (duration_parse(json_string_value(v), &ms) != MDM_OK)
		return conf_fail(x, path,
				 "%s is not a duration (use a number with ms, s, m, h or d)",
				 conf_quote(qb, json_string_value(v)));
	if (ms < f->min || ms > f->max) {
		fmt_duration(lo, sizeof(lo), f->min);
		fmt_duration(hi, sizeof(hi), f->max);
		return conf_fail(x, path, "must be from %s to %s", lo, hi);
	}
	*(int64_t *)(void *)p = ms;
	return MDM_OK;
}

static enum mdm_err parse_number(struct conf_ctx *x, const struct conf_field *f, json_t *v, char *p,
				 const char *path)
{
	double d;

	if (!json_is_number(v) || (d = json_number_value(v)) < (double)f->min || d > (double)f->max)
		return conf_fail(x, path, "must be a number from %lld to %lld", (long long)f->min,
				 (long long)f->max);
	*(double *)(void *)p = d;
	return MDM_OK;
}

static enum mdm_err parse_strlist(struct conf_ctx *x, const struct conf_field *f, json_t *v,
				  void *base, const char *path)
{
	char *arr = (char *)base + f->off, ep[CONF_KEYPATH_MAX];
	const char *s;
	size_t i;
	json_t *e;

	if (!json_is_array(v))
		return conf_fail(x, path, "must be an array of strings");
	if (json_array_size(v) > (size_t)f->max)
		return conf_fail(x, path, "holds more than %lld entries", (long long)f->max);
	json_array_foreach(v, i, e)
	{
		conf_key_index(ep, path, i);
		if (conf_get_string(x, e, ep, f->size - 1, &s) != MDM_OK)
			return MDM_ERR_CONFIG;
		if (!s[0])
			return conf_fail(x, ep, "must not be empty");
		str_copy(arr + i * f->size, f->size, s);
	}
	*(size_t *)(void *)((char *)base + f->aux) = json_array_size(v);
	return MDM_OK;
}

/* name_list: name(arg, 0), name(arg, 1) ... comma separated, for messages. */
static void name_list(const char *(*name)(const void *arg, size_t i), const void *arg, char *out,
		      size_t outsz)
{
	const char *nm;
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; (nm = name(arg, i)) != NULL && o < outsz; i++) {
		int n = snprintf(out + o, outsz - o, "%s%s", o ? ", " : "", nm);

		if (n < 0)
			break;
		o += (size_t)n;
	}
}

enum mdm_err conf_one_of(struct conf_ctx *x, json_t *v, const char *path,
			 const char *(*name)(const void *arg, size_t i), const void *arg,
			 size_t *index)
{
	char list[128], qb[CONF_QUOTE_MAX];
	const char *nm;

	name_list(name, arg, list, sizeof(list));
	if (!json_is_string(v))
		return conf_fail(x, path, "must be a string (%s)", list);
	for (size_t i = 0; (nm = name(arg, i)) != NULL; i++) {
		if (strcmp(nm, json_string_value(v)) == 0) {
			*index = i;
			return MDM_OK;
		}
	}
	return conf_fail(x, path, "unknown value %s (%s)", conf_quote(qb, json_string_value(v)),
			 list);
}

static const char *choice_at(const void *arg, size_t i)
{
	return ((const struct conf_choice *)arg)[i].name;
}

static enum mdm_err parse_choice(struct conf_ctx *x, const struct conf_field *f, json_t *v, char *p,
				 const char *path)
{
	const struct conf_choice *ch;
	size_t i = 0;
	enum mdm_err rc = conf_one_of(x, v, path, choice_at, f->choices, &i);

	if (rc != MDM_OK)
		return rc;
	ch = &f->choices[i];
	if (f->type == CONF_T_BOOLCHOICE)
		*(bool *)p = ch->value != 0;
	else if (f->type == CONF_T_ENUM)
		memcpy(p, &ch->value, sizeof(ch->value));
	else if (str_copy(p, f->size, ch->name) != MDM_OK)
		return MDM_ERR_INTERNAL;
	return MDM_OK;
}

#define PLAINTEXT_SECRET                                                                           \
	"plaintext secret in a file readable by group or others (chmod 600, or use {\"file\": "    \
	"...} / {\"env\": ...})"

static enum mdm_err parse_secret(struct conf_ctx *x, const struct conf_field *f, json_t *v,
				 void *base, const char *path)
{
	char *p = (char *)base + f->off;
	bool inl = false;
	enum mdm_err rc = conf_secret(v, x->name, path, p, f->size, &inl, x->why, x->whysz);

	if (rc != MDM_OK)
		return rc;
	if (inl && x->check_mode && (x->mode & (S_IRGRP | S_IROTH)))
		rc = conf_fail(x, path, PLAINTEXT_SECRET);
	else if ((int64_t)strlen(p) < f->min)
		rc = conf_fail(x, path, "must be at least %lld bytes long", (long long)f->min);
	if (rc != MDM_OK) {
		explicit_bzero(p, f->size);
		return rc;
	}
	*(bool *)((char *)base + f->aux) = true;
	return MDM_OK;
}

/* unique: element i's unique member differs from those of elements 0..i-1. */
static enum mdm_err unique(struct conf_ctx *x, const struct conf_array *a, const char *arr,
			   size_t i, const char *path)
{
	const char *mine = arr + i * a->elem_size + a->unique_off;
	char kp[CONF_KEYPATH_MAX], qb[CONF_QUOTE_MAX];

	for (size_t j = 0; j < i; j++) {
		if (strcmp(arr + j * a->elem_size + a->unique_off, mine) == 0) {
			conf_key_join(kp, path, a->unique_key);
			return conf_fail(x, kp, "duplicate %s %s", a->unique_what,
					 conf_quote(qb, mine));
		}
	}
	return MDM_OK;
}

static enum mdm_err parse_array(struct conf_ctx *x, const struct conf_field *f, json_t *v,
				void *base, const char *path)
{
	const struct conf_array *a = f->arr;
	char *arr = (char *)base + f->off, ep[CONF_KEYPATH_MAX];
	enum mdm_err rc;
	size_t i;
	json_t *e;

	if (!json_is_array(v))
		return conf_fail(x, path, "must be an array");
	if (json_array_size(v) == 0 || json_array_size(v) > a->max)
		return conf_fail(x, path, "must have 1 to %zu entries", a->max);
	json_array_foreach(v, i, e)
	{
		conf_key_index(ep, path, i);
		if (!json_is_object(e))
			return conf_fail(x, ep, "must be an object");
		conf_defaults(a->elem, arr + i * a->elem_size);
		rc = load_section(x, a->elem, e, arr + i * a->elem_size, ep);
		if (rc == MDM_OK)
			rc = unique(x, a, arr, i, ep);
		if (rc != MDM_OK)
			return rc;
	}
	*(size_t *)(void *)((char *)base + a->count_off) = json_array_size(v);
	return MDM_OK;
}

static enum mdm_err parse_field(struct conf_ctx *x, const struct conf_field *f, json_t *v,
				void *base, const char *path)
{
	char *p = (char *)base + f->off;

	switch (f->type) {
	case CONF_T_STR:
		return parse_str(x, f, v, p, path);
	case CONF_T_PATH:
		return parse_path(x, f, v, p, path);
	case CONF_T_UINT:
	case CONF_T_SIZE:
		return parse_int(x, f, v, p, path);
	case CONF_T_DUR:
		return parse_dur(x, f, v, p, path);
	case CONF_T_BOOLCHOICE:
	case CONF_T_STRCHOICE:
	case CONF_T_ENUM:
		return parse_choice(x, f, v, p, path);
	case CONF_T_BOOL:
		if (!json_is_boolean(v))
			return conf_fail(x, path, "must be true or false");
		*(bool *)p = json_is_true(v);
		return MDM_OK;
	case CONF_T_NUMBER:
		return parse_number(x, f, v, p, path);
	case CONF_T_STRLIST:
		return parse_strlist(x, f, v, base, path);
	case CONF_T_SECRET:
		return parse_secret(x, f, v, base, path);
	case CONF_T_CUSTOM:
		return f->parse(x, f, v, base, path);
	case CONF_T_SECTION:
		return load_section(x, f->sub, v, p, path);
	case CONF_T_ARRAY:
		return parse_array(x, f, v, base, path);
	}
	return MDM_ERR_INTERNAL;
}

/* missing_field: a key that is absent: required, a section of defaults, or a default path. */
static enum mdm_err missing_field(struct conf_ctx *x, const struct conf_field *f, void *base,
				  const char *path)
{
	char *p = (char *)base + f->off;

	if (f->flags & CONF_REQUIRED)
		return conf_fail(x, path, "required");
	if (f->type == CONF_T_SECTION)
		return load_section(x, f->sub, NULL, p, path);
	if (f->type == CONF_T_PATH && f->sdef && f->sdef[0] &&
	    path_resolve(x->dir, f->sdef, p, f->size) != MDM_OK)
		return conf_fail(x, path,
				 "default %s is too long once resolved against the config "
				 "directory",
				 f->sdef);
	return MDM_OK;
}

/*
 * One object's keys: a section's, and those of the section its pick chose (stored elsewhere).
 * The walker takes them as one table: unknown keys first, then every key in table order.
 */
struct part {
	const struct conf_section *sec;
	void *base;
};

static const struct conf_field *find_field(const struct part *parts, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		for (const struct conf_field *f = parts[i].sec->fields; f->key; f++)
			if (strcmp(f->key, key) == 0)
				return f;
	return NULL;
}

static enum mdm_err load_parts(struct conf_ctx *x, const struct part *parts, size_t n, json_t *obj,
			       const char *path)
{
	const char *note = parts[n - 1].sec->note ? parts[n - 1].sec->note : parts[0].sec->note;
	char kp[CONF_KEYPATH_MAX];
	const char *key;
	json_t *v;
	enum mdm_err rc;

	json_object_foreach(obj, key, v)
	{
		if (!find_field(parts, n, key)) {
			conf_key_join(kp, path, key);
			return conf_fail(x, kp, "unknown key%s", note ? note : "");
		}
	}
	for (size_t i = 0; i < n; i++) {
		for (const struct conf_field *f = parts[i].sec->fields; f->key; f++) {
			conf_key_join(kp, path, f->key);
			v = json_object_get(obj, f->key);
			rc = v ? parse_field(x, f, v, parts[i].base, kp)
			       : missing_field(x, f, parts[i].base, kp);
			if (rc != MDM_OK)
				return rc;
		}
	}
	/* the picked keys' rules first: the section's own may rely on them */
	for (size_t i = n; i-- > 0;) {
		rc = parts[i].sec->check ? parts[i].sec->check(x, parts[i].base, path) : MDM_OK;
		if (rc != MDM_OK)
			return rc;
	}
	return MDM_OK;
}

/* load_section: obj (NULL when the section is absent) into base, which holds defaults. */
static enum mdm_err load_section(struct conf_ctx *x, const struct conf_section *sec, json_t *obj,
				 void *base, const char *path)
{
	struct part parts[2] = {{sec, base}, {NULL, NULL}};

	if (obj && !json_is_object(obj))
		return conf_fail(x, path, "must be an object");
	if (!sec->pick)
		return load_parts(x, parts, 1, obj, path);
	parts[1].sec = sec->pick(x, obj, path);
	if (!parts[1].sec)
		return MDM_ERR_CONFIG;
	parts[1].base = (char *)base + sec->variant_off;
	conf_defaults(parts[1].sec, parts[1].base);
	return load_parts(x, parts, 2, obj, path);
}

/* --- entry points ---------------------------------------------------------------------------- */

enum mdm_err conf_parse(struct conf_ctx *x, const char *json, size_t len,
			const struct conf_section *top, void *base)
{
	json_error_t jerr;
	json_t *root;
	enum mdm_err rc;

	if (len > CONFIG_FILE_MAX)
		return conf_fail(x, "(file)", "larger than %d bytes", CONFIG_FILE_MAX);
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!root) {
		char where[64];

		/* jansson's text quotes the input near the error; conf_fail() makes it one line */
		snprintf(where, sizeof(where), "line %d, column %d", jerr.line, jerr.column);
		return conf_fail(x, where, "%s", jerr.text);
	}
	if (!json_is_object(root))
		rc = conf_fail(x, "(top)", "must be a JSON object");
	else
		rc = load_section(x, top, root, base, "");
	json_decref(root);
	return rc;
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

enum mdm_err conf_read(struct conf_ctx *x, struct buf *b)
{
	struct stat st;
	enum mdm_err rc;
	int fd = open(x->name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	if (fd < 0)
		return conf_say(x, MDM_ERR_IO, "(file)", "cannot open: %s", strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return conf_fail(x, "(file)", "not a regular file");
	}
	if (st.st_size > CONFIG_FILE_MAX) {
		close(fd);
		return conf_fail(x, "(file)", "larger than %d bytes", CONFIG_FILE_MAX);
	}
	x->check_mode = true;
	x->mode = st.st_mode;
	rc = read_all(fd, b);
	close(fd);
	if (rc == MDM_ERR_TOOBIG)
		return conf_fail(x, "(file)", "larger than %d bytes", CONFIG_FILE_MAX);
	if (rc == MDM_ERR_IO)
		return conf_say(x, MDM_ERR_IO, "(file)", "cannot read: %s", strerror(errno));
	return rc;
}
