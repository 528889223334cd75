/*
 * conf: what every part of the configuration shares: the bounds of a path and of the file, and
 * the engine that loads strict JSON into C structs from tables.
 *
 * A section is a table of fields: a key, its type, where its value goes in the section's
 * struct, bounds and a default. conf_parse walks a document against its top section: it sets
 * every default, refuses unknown keys, checks each value's type and range, stores it, and then
 * runs the section's own check (rules across keys). Every refusal is one line,
 * "name: key: what is wrong", the key a dotted path ("listen.port", "accounts[1].roles[0]"),
 * control characters shown as '?'. Durations are strings with units ("30s", "15m"). Secrets
 * may be given inline, as {"file": PATH} or as {"env": NAME}; an inline secret in a file that
 * group or others may read is refused. Relative paths are resolved against the directory of
 * the document's name.
 *
 * A section whose further keys depend on a value of the object (an adapter's on its "type")
 * names a pick function: it reads that value first and answers the section of those keys,
 * stored at base + variant_off. Keys of both sections are one object to the walker.
 *
 * Threads: tables are read-only and may be shared; a struct conf_ctx serves one load at a time.
 * The header does not pull in jansson: values are struct json_t * (jansson's json_t).
 */
#ifndef MDM_CONF_H
#define MDM_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

#define CONFIG_PATH_MAX 1024
/* adapters in one configuration (the reconciler and the lookup size their tables by it) */
#define CONFIG_MAX_ADAPTERS 32
/* config files (and buffers) larger than this are refused */
#define CONFIG_FILE_MAX (1024 * 1024)

#define CONF_KEYPATH_MAX 256 /* key paths in messages ("accounts[1].roles[0]") */
#define CONF_QUOTE_MAX 96    /* a quoted value in a message, escapes and ellipsis included */
#define CONF_PIN_LEN 52	     /* "sha256//" and the 44 base64 characters of a SHA-256 */

/* Durations in tables, in milliseconds. */
#define CONF_SECS(n) ((int64_t)(n)*1000)
#define CONF_MINS(n) (CONF_SECS(n) * 60)
#define CONF_HOURS(n) (CONF_MINS(n) * 60)
#define CONF_DAYS(n) (CONF_HOURS(n) * 24)

struct json_t;
struct buf;
struct conf_field;

enum conf_type {
	CONF_T_STR,	   /* char[size], min = shortest length, optional check */
	CONF_T_PATH,	   /* char[size], resolved against the document's directory */
	CONF_T_UINT,	   /* unsigned in min..max */
	CONF_T_SIZE,	   /* size_t in min..max */
	CONF_T_DUR,	   /* int64_t milliseconds from a duration string, min..max */
	CONF_T_BOOLCHOICE, /* bool from one of choices */
	CONF_T_STRCHOICE,  /* char[size] holding one of choices */
	CONF_T_ENUM,	   /* an enum (stored as unsigned) from one of choices */
	CONF_T_BOOL,	   /* bool from JSON true or false */
	CONF_T_NUMBER,	   /* double from a JSON integer or real in min..max */
	CONF_T_STRLIST, /* char[max][size] from an array of 1..size-1 byte strings; count at aux */
	CONF_T_SECRET,	/* char[size] through conf_secret; bool at aux set when given */
	CONF_T_CUSTOM,	/* parsed by the field's parse, defaulted by its reset */
	CONF_T_SECTION, /* nested object described by sub */
	CONF_T_ARRAY,	/* array of objects described by arr */
};

#define CONF_REQUIRED 1u
#define CONF_READABLE 2u /* CONF_T_PATH: must name a readable regular file when loaded */

struct conf_choice {
	const char *name;
	unsigned value;
};

/*
 * The state of one load: the document's name (for messages and relative paths) and the
 * caller's message buffer. Set by conf_begin and conf_read; the walker and the parsers read it.
 */
struct conf_ctx {
	const char *name;
	char dir[CONFIG_PATH_MAX];
	bool check_mode; /* read from a file: refuse inline secrets readable by others */
	mode_t mode;
	char *why;
	size_t whysz;
};

/* conf_check_fn: NULL when s is acceptable, else what is wrong with it. */
typedef const char *(*conf_check_fn)(const char *s);
/* conf_parse_fn: a CONF_T_CUSTOM value v into base (the section's struct); its own messages. */
typedef enum mdm_err (*conf_parse_fn)(struct conf_ctx *x, const struct conf_field *f,
				      struct json_t *v, void *base, const char *path);
/* conf_reset_fn: a CONF_T_CUSTOM field at its default (NULL: its size bytes at base+off zeroed) */
typedef void (*conf_reset_fn)(const struct conf_field *f, void *base);

struct conf_field {
	const char *key;
	enum conf_type type;
	unsigned flags;
	size_t off;  /* of the value in the section's struct */
	size_t size; /* strings: capacity of the array */
	size_t aux;  /* CONF_T_SECRET: offset of its "set" flag; CONF_T_STRLIST: of its count */
	int64_t min, max, def;
	const char *sdef;
	const struct conf_choice *choices; /* NULL-terminated */
	conf_check_fn check;
	const struct conf_section *sub;
	const struct conf_array *arr;
	conf_parse_fn parse;
	conf_reset_fn reset;
};

struct conf_section {
	const struct conf_field *fields; /* ends with a NULL key */
	/* check: rules across keys, once every key is stored; may be NULL */
	enum mdm_err (*check)(struct conf_ctx *x, void *base, const char *path);
	const char *note; /* appended to "unknown key" (" for type \"sccm\""); may be NULL */
	/* pick: the section of the keys that depend on obj (NULL once it said why); may be NULL */
	const struct conf_section *(*pick)(struct conf_ctx *x, struct json_t *obj,
					   const char *path);
	size_t variant_off; /* where the picked section's struct is, from base */
};

struct conf_array {
	const struct conf_section *elem;
	size_t elem_size;
	size_t max;
	size_t count_off;	/* size_t count in the parent struct */
	size_t unique_off;	/* char[] member of the element that must be unique */
	const char *unique_key; /* its key */
	const char *unique_what;
};

/* Field tables: s is the section's struct type, m the member. */
#define CONF_MEMBER_SIZE(s, m) sizeof(((s *)0)->m)
#define CONF_AT(s, m) .off = offsetof(s, m)
#define CONF_STR(k, s, m, lo, d, chk, fl)                                                          \
	{                                                                                          \
		.key = (k), .type = CONF_T_STR, CONF_AT(s, m), .size = CONF_MEMBER_SIZE(s, m),     \
		.min = (lo), .sdef = (d), .check = (chk), .flags = (fl)                            \
	}
#define CONF_PATH(k, s, m, d, fl)                                                                  \
	{                                                                                          \
		.key = (k), .type = CONF_T_PATH, CONF_AT(s, m), .size = CONF_MEMBER_SIZE(s, m),    \
		.sdef = (d), .flags = (fl)                                                         \
	}
#define CONF_NUM(k, t, s, m, lo, hi, d)                                                            \
	{                                                                                          \
		.key = (k), .type = (t), CONF_AT(s, m), .min = (lo), .max = (hi), .def = (d)       \
	}
#define CONF_CHOICE(k, t, s, m, ch, d, sd, fl)                                                     \
	{                                                                                          \
		.key = (k), .type = (t), CONF_AT(s, m), .size = CONF_MEMBER_SIZE(s, m),            \
		.choices = (ch), .def = (d), .sdef = (sd), .flags = (fl)                           \
	}
/* a secret of at least lo bytes into member m, with its "given" flag in member set */
#define CONF_SECRET(k, s, m, set, lo, fl)                                                          \
	{                                                                                          \
		.key = (k), .type = CONF_T_SECRET, CONF_AT(s, m), .size = CONF_MEMBER_SIZE(s, m),  \
		.aux = offsetof(s, set), .min = (lo), .flags = (fl)                                \
	}
#define CONF_SECTION(k, s, m, sec)                                                                 \
	{                                                                                          \
		.key = (k), .type = CONF_T_SECTION, CONF_AT(s, m), .sub = (sec)                    \
	}
#define CONF_ARRAY(k, s, m, spec, fl)                                                              \
	{                                                                                          \
		.key = (k), .type = CONF_T_ARRAY, CONF_AT(s, m), .arr = (spec), .flags = (fl)      \
	}
#define CONF_END                                                                                   \
	{                                                                                          \
		.key = NULL                                                                        \
	}

/*
 * conf_begin: x ready for loading the document called name (NULL: "(config)"); why ("" from
 * now) receives the message of a refusal.
 */
void conf_begin(struct conf_ctx *x, const char *name, char *why, size_t whysz);

/*
 * conf_read: the file x->name into b (buf_init'ed by the caller with a limit above
 * CONFIG_FILE_MAX); remembers its mode for the inline-secret rule. MDM_ERR_IO when it cannot
 * be opened or read, MDM_ERR_CONFIG when it is not a regular file or larger than
 * CONFIG_FILE_MAX, each with its message.
 */
enum mdm_err conf_read(struct conf_ctx *x, struct buf *b);

/*
 * conf_parse: json (len bytes, at most CONFIG_FILE_MAX) must be one JSON object, loaded into
 * base by top. base holds the defaults (conf_defaults) beforehand; on failure it may hold part
 * of the document. MDM_ERR_CONFIG (or an error of a secret file) with the message in x->why.
 */
enum mdm_err conf_parse(struct conf_ctx *x, const char *json, size_t len,
			const struct conf_section *top, void *base);

/* conf_defaults: every field of sec, and of its sections, at its default (arrays empty). */
void conf_defaults(const struct conf_section *sec, void *base);

/*
 * conf_secret: resolves a secret value: a JSON string (inline), {"file": PATH} (first line of
 * the file, trailing newline removed; a relative PATH is taken from name's directory) or
 * {"env": NAME}. *inline_used (may be NULL) is set when the value was written in the document
 * itself. name and key only label messages ("name: key: what is wrong"). An empty value,
 * control characters or a value of outsz bytes or more are errors. MDM_ERR_CONFIG, or
 * MDM_ERR_IO when the secret file cannot be read; out is "" on failure.
 */
enum mdm_err conf_secret(const struct json_t *json, const char *name, const char *key, char *out,
			 size_t outsz, bool *inline_used, char *why, size_t whysz);

/* --- for section checks and custom fields ------------------------------------------------- */

/* conf_fail: "name: path: <fmt>" into x->why; returns MDM_ERR_CONFIG. */
enum mdm_err conf_fail(struct conf_ctx *x, const char *path, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* conf_say: the same message, returning rc (MDM_ERR_IO, MDM_ERR_NOMEM ...). */
enum mdm_err conf_say(struct conf_ctx *x, enum mdm_err rc, const char *path, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* conf_key_join / conf_key_index: "path.key" and "path[i]"; cut with "..." when too long. */
void conf_key_join(char out[CONF_KEYPATH_MAX], const char *path, const char *key);
void conf_key_index(char out[CONF_KEYPATH_MAX], const char *path, size_t i);

/* conf_quote: "s" for a message into out, escaped and cut after 48 bytes; returns out. */
const char *conf_quote(char out[CONF_QUOTE_MAX], const char *s);

/* conf_get_string: v as a string without control characters, of at most max bytes. */
enum mdm_err conf_get_string(struct conf_ctx *x, struct json_t *v, const char *path, size_t max,
			     const char **s);

/*
 * conf_one_of: v must be a string equal to one of name(arg, 0), name(arg, 1) ... (NULL ends
 * them); its index into *index. The messages name every choice, as a choice field's do.
 */
enum mdm_err conf_one_of(struct conf_ctx *x, struct json_t *v, const char *path,
			 const char *(*name)(const void *arg, size_t i), const void *arg,
			 size_t *index);

/* conf_choice_name: the name of value among ch; "" when none has it. */
const char *conf_choice_name(const struct conf_choice *ch, unsigned value);

/* --- checks of string values that several sections share (conf_check_fn) ------------------ */

/* conf_all_of: s holds only A-Z a-z 0-9 and the characters of extra. */
bool conf_all_of(const char *s, const char *extra);
/* an https:// URL with a host, without spaces */
const char *conf_check_https_url(const char *s);
/* an https:// origin: a host and port, no path (a trailing "/" aside) */
const char *conf_check_https_origin(const char *s);
/* a public key pin, "sha256//" and the 44 base64 characters of a SHA-256 */
const char *conf_check_pin(const char *s);

#endif
