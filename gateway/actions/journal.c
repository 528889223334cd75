#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "../../core/buf.h"
#include "../../core/clock.h"
#include "../../core/log.h"
#include "journal.h"

/* A path in the state directory: the directory, "/", the file name and ".NN" or ".new". */
#define JPATH_MAX 4096
/* A record line is a few KiB at most; a whole file is read into memory only up to this. */
#define LOAD_MAX ((int64_t)1 << 30)
#define LINE_MAX_BYTES (64 * 1024)

/*
 * One action in memory: the fixed fields, and every string once, NUL-terminated, in one
 * allocation sized to fit (a typical action takes ~250 bytes here, against ~2 KiB for a
 * struct journal_action). Callers only ever see journal_action copies (rec_unpack).
 */
enum rec_str {
	S_USER,
	S_ADDR,
	S_DEVICE,
	S_MDM,
	S_VENDOR,
	S_KEY,
	S_HASH,
	S_DETAIL,
	S_BY,
	S_NOTE,
	S_COUNT
};

struct jrec {
	int64_t at_ms, done_ms, resolved_ms;
	char id[JOURNAL_ID_LEN + 1];
	unsigned char state, action;
	uint16_t off[S_COUNT]; /* of each string in s; every bound sums to well under 64 KiB */
	char s[];
};

struct journal {
	pthread_mutex_t mu;
	char dir[JPATH_MAX];
	struct journal_cfg cfg;
	int fd;
	int64_t size;	    /* bytes in the current file */
	int64_t rotate_at;  /* size at which to rotate next */
	bool need_nl;	    /* the file ends in a torn line: start the next append with '\n' */
	struct jrec **acts; /* in the order recorded */
	size_t n, cap;
	json_t *by_id;	/* id -> index into acts */
	json_t *by_key; /* idempotency key -> index */
	json_t *by_dev; /* device -> index of the action holding it */
	struct journal_stats st;
};

static const char *const state_names[JOURNAL_STATE_COUNT] = {
    "pending",	"unknown", "sent",	    "failed",
    "rejected", "refused", "resolved_sent", "resolved_not_sent",
};

const char *journal_state_name(enum journal_state s)
{
	if ((unsigned)s >= JOURNAL_STATE_COUNT)
		return "?";
	return state_names[s];
}

static bool holds_device(enum journal_state s)
{
	return s == JOURNAL_PENDING || s == JOURNAL_UNKNOWN;
}

/* --- paths and files -------------------------------------------------------------------------- */

/* n == 0: the current file; otherwise the n-th rotated one; n < 0: the rotation's new file. */
static enum mdm_err file_path(const struct journal *j, int n, char out[JPATH_MAX])
{
	int w;

	if (n == 0)
		w = snprintf(out, JPATH_MAX, "%s/%s", j->dir, JOURNAL_FILE);
	else if (n < 0)
		w = snprintf(out, JPATH_MAX, "%s/%s.new", j->dir, JOURNAL_FILE);
	else
		w = snprintf(out, JPATH_MAX, "%s/%s.%d", j->dir, JOURNAL_FILE, n);
	return w < 0 || w >= JPATH_MAX ? MDM_ERR_TOOBIG : MDM_OK;
}

/* A new or renamed directory entry is durable only once the directory itself is synced. */
static enum mdm_err fsync_dir(const char *dir, char *why, size_t whysz)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	enum mdm_err err = MDM_OK;

	if (fd < 0 || fsync(fd) != 0) {
		err_why(why, whysz, "journal: fsync of directory %s: %s", dir, strerror(errno));
		err = MDM_ERR_IO;
	}
	if (fd >= 0)
		close(fd);
	return err;
}

static enum mdm_err ensure_dir(const char *dir, char *why, size_t whysz)
{
	struct stat sb;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		err_why(why, whysz, "journal: mkdir %s: %s", dir, strerror(errno));
		return MDM_ERR_IO;
	}
	if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
		err_why(why, whysz, "journal: %s is not a directory", dir);
		return MDM_ERR_IO;
	}
	return MDM_OK;
}

/* Who may read the journal learns who wiped what: only the gateway's own user. */
static enum mdm_err tighten_mode(int fd, const char *path, char *why, size_t whysz)
{
	struct stat sb;

	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		err_why(why, whysz, "journal: %s is not a regular file", path);
		return MDM_ERR_IO;
	}
	if ((sb.st_mode & 0777) == 0600)
		return MDM_OK;
	if (fchmod(fd, 0600) != 0) {
		err_why(why, whysz, "journal: chmod 0600 %s: %s", path, strerror(errno));
		return MDM_ERR_IO;
	}
	log_warn("journal: %s had mode %03o; set to 0600", path, (unsigned)(sb.st_mode & 0777));
	return MDM_OK;
}

static enum mdm_err open_current(struct journal *j, char *why, size_t whysz)
{
	char path[JPATH_MAX];
	struct stat sb;
	bool created = true;
	enum mdm_err err = file_path(j, 0, path);

	if (err)
		return err;
	j->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (j->fd < 0 && errno == EEXIST) {
		created = false;
		j->fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
	}
	if (j->fd < 0) {
		err_why(why, whysz, "journal: open %s: %s", path, strerror(errno));
		return MDM_ERR_IO;
	}
	err = tighten_mode(j->fd, path, why, whysz);
	if (!err && created)
		err = fsync_dir(j->dir, why, whysz);
	if (!err && fstat(j->fd, &sb) != 0)
		err = MDM_ERR_IO;
	if (!err) {
		j->size = sb.st_size;
		j->rotate_at = j->cfg.max_bytes;
	}
	return err;
}

static enum mdm_err write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return MDM_ERR_IO;
		p += w;
		len -= (size_t)w;
	}
	return MDM_OK;
}

/* --- the index -------------------------------------------------------------------------------- */

static long idx_get(json_t *map, const char *k)
{
	json_t *v = json_object_get(map, k);

	return v ? (long)json_integer_value(v) : -1;
}

static enum mdm_err idx_set(json_t *map, const char *k, size_t i)
{
	return json_object_set_new(map, k, json_integer((json_int_t)i)) == 0 ? MDM_OK
									     : MDM_ERR_NOMEM;
}

/* --- compact records ------------------------------------------------------------------------ */

static const char *rec_str(const struct jrec *r, enum rec_str k)
{
	return r->s + r->off[k];
}

/* A compact copy of a; NULL: no memory. */
static struct jrec *rec_pack(const struct journal_action *a)
{
	const char *str[S_COUNT] = {a->user, a->addr,	  a->device, a->mdm,	     a->vendor_id,
				    a->key,  a->key_hash, a->detail, a->resolved_by, a->note};
	size_t len[S_COUNT], total = 0;
	struct jrec *r;

	for (int k = 0; k < S_COUNT; k++)
		total += (len[k] = strlen(str[k])) + 1;
	r = malloc(sizeof(*r) + total);
	if (!r)
		return NULL;
	r->at_ms = a->at_ms;
	r->done_ms = a->done_ms;
	r->resolved_ms = a->resolved_ms;
	memcpy(r->id, a->id, sizeof(r->id));
	r->state = (unsigned char)a->state;
	r->action = (unsigned char)a->action;
	total = 0;
	for (int k = 0; k < S_COUNT; k++) {
		r->off[k] = (uint16_t)total;
		memcpy(r->s + total, str[k], len[k] + 1);
		total += len[k] + 1;
	}
	return r;
}

/* The journal_action r stands for (every string fits: it came from one). */
static void rec_unpack(const struct jrec *r, struct journal_action *a)
{
	char *dst[S_COUNT] = {a->user, a->addr,	    a->device, a->mdm,	       a->vendor_id,
			      a->key,  a->key_hash, a->detail, a->resolved_by, a->note};
	size_t size[S_COUNT] = {sizeof(a->user),     sizeof(a->addr),	   sizeof(a->device),
				sizeof(a->mdm),	     sizeof(a->vendor_id), sizeof(a->key),
				sizeof(a->key_hash), sizeof(a->detail),	   sizeof(a->resolved_by),
				sizeof(a->note)};

	memcpy(a->id, r->id, sizeof(a->id));
	a->state = (enum journal_state)r->state;
	a->action = (enum action_kind)r->action;
	a->at_ms = r->at_ms;
	a->done_ms = r->done_ms;
	a->resolved_ms = r->resolved_ms;
	for (int k = 0; k < S_COUNT; k++)
		str_copy(dst[k], size[k], rec_str(r, (enum rec_str)k));
}

/* Replaces record i by a compact copy of a; MDM_ERR_NOMEM leaves it as it was. */
static enum mdm_err rec_replace(struct journal *j, size_t i, const struct journal_action *a)
{
	struct jrec *r = rec_pack(a);

	if (!r)
		return MDM_ERR_NOMEM;
	free(j->acts[i]);
	j->acts[i] = r;
	return MDM_OK;
}

/* Adds a copy of a to the index: by id, by key (the first action under a key wins), by device. */
static enum mdm_err add_action(struct journal *j, const struct journal_action *a)
{
	struct jrec *r;
	enum mdm_err err;

	if (j->n == j->cap) {
		size_t cap = j->cap ? j->cap * 2 : 64;
		struct jrec **p = realloc(j->acts, cap * sizeof(*p));

		if (!p)
			return MDM_ERR_NOMEM;
		j->acts = p;
		j->cap = cap;
	}
	r = rec_pack(a);
	if (!r)
		return MDM_ERR_NOMEM;
	err = idx_set(j->by_id, a->id, j->n);
	if (!err && a->key[0] && idx_get(j->by_key, a->key) < 0)
		err = idx_set(j->by_key, a->key, j->n);
	if (!err && holds_device(a->state) && idx_get(j->by_dev, a->device) < 0)
		err = idx_set(j->by_dev, a->device, j->n);
	if (err) {
		json_object_del(j->by_id, a->id);
		free(r);
		return err;
	}
	j->acts[j->n++] = r;
	return MDM_OK;
}

/* The index of action id, or -1. */
static long find(struct journal *j, const char *id)
{
	return idx_get(j->by_id, id);
}

/* Action i stops holding its device (its state has just become final). */
static void release_device(struct journal *j, size_t i)
{
	const char *device = rec_str(j->acts[i], S_DEVICE);

	if (idx_get(j->by_dev, device) == (long)i)
		json_object_del(j->by_dev, device);
}

/* --- encoding --------------------------------------------------------------------------------- */

static int set_str(json_t *o, const char *k, const char *s)
{
	json_t *v = json_string(s);

	return v ? json_object_set_new(o, k, v) : -1;
}

static int set_int(json_t *o, const char *k, int64_t v)
{
	return json_object_set_new(o, k, json_integer((json_int_t)v));
}

/* The intent or refusal line of a (refusals add their reason). */
static json_t *enc_intent(const struct journal_action *a)
{
	json_t *o = json_object();
	bool refused = a->state == JOURNAL_REFUSED;
	int rc = o ? 0 : -1;

	rc |= o ? set_str(o, "t", refused ? "refused" : "intent") : -1;
	rc |= o ? set_str(o, "id", a->id) : -1;
	rc |= o ? set_int(o, "at", a->at_ms) : -1;
	rc |= o ? set_str(o, "user", a->user) : -1;
	rc |= o ? set_str(o, "addr", a->addr) : -1;
	rc |= o ? set_str(o, "action", action_kind_name(a->action)) : -1;
	rc |= o ? set_str(o, "device", a->device) : -1;
	rc |= o ? set_str(o, "mdm", a->mdm) : -1;
	rc |= o ? set_str(o, "vendor_id", a->vendor_id) : -1;
	rc |= o ? set_str(o, "key", a->key) : -1;
	rc |= o ? set_str(o, "key_hash", a->key_hash) : -1;
	if (refused)
		rc |= o ? set_str(o, "reason", a->detail) : -1;
	if (rc) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *enc_outcome(const struct journal_action *a)
{
	json_t *o = json_object();
	int rc = o ? 0 : -1;

	rc |= o ? set_str(o, "t", "outcome") : -1;
	rc |= o ? set_str(o, "id", a->id) : -1;
	rc |= o ? set_int(o, "at", a->done_ms) : -1;
	rc |= o ? set_str(o, "state", journal_state_name(a->state)) : -1;
	rc |= o ? set_str(o, "detail", a->detail) : -1;
	if (rc) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *enc_resolve(const struct journal_action *a)
{
	json_t *o = json_object();
	bool sent = a->state == JOURNAL_RESOLVED_SENT;
	int rc = o ? 0 : -1;

	rc |= o ? set_str(o, "t", "resolve") : -1;
	rc |= o ? set_str(o, "id", a->id) : -1;
	rc |= o ? set_int(o, "at", a->resolved_ms) : -1;
	rc |= o ? set_str(o, "user", a->resolved_by) : -1;
	rc |= o ? set_str(o, "verified", sent ? "sent" : "not_sent") : -1;
	rc |= o ? set_str(o, "note", a->note) : -1;
	if (rc) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* Adds o (taken) as one line to b. */
static enum mdm_err add_line(struct buf *b, json_t *o)
{
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	enum mdm_err err = s ? buf_addstr(b, s) : MDM_ERR_NOMEM;

	if (!err)
		err = buf_add(b, "\n", 1);
	free(s);
	json_decref(o);
	return err;
}

/* Every line it takes to rebuild a as it is now (used to carry it over a rotation). */
static enum mdm_err add_history(struct buf *b, const struct journal_action *a)
{
	enum mdm_err err = add_line(b, enc_intent(a));

	if (!err && a->done_ms)
		err = add_line(b, enc_outcome(a));
	if (!err && a->resolved_ms)
		err = add_line(b, enc_resolve(a));
	return err;
}

/* --- appending and rotation ------------------------------------------------------------------- */

/* Whether a survives the loss of its original lines: it is open, or its key is recent. */
static bool carried(const struct journal *j, const struct jrec *r, int64_t now)
{
	return holds_device((enum journal_state)r->state) ||
	       (rec_str(r, S_KEY)[0] && now - r->at_ms < j->cfg.key_window_ms);
}

static enum mdm_err build_carry(struct journal *j, struct buf *b)
{
	int64_t now = clock_wall_ms();
	struct journal_action *a = malloc(sizeof(*a));
	enum mdm_err err = a ? MDM_OK : MDM_ERR_NOMEM;

	for (size_t i = 0; i < j->n && !err; i++) {
		if (!carried(j, j->acts[i], now))
			continue;
		rec_unpack(j->acts[i], a);
		err = add_history(b, a);
	}
	free(a);
	return err;
}

/* Shifts .N-1 -> .N ... current -> .1 (the oldest is overwritten), then .new -> current. */
static enum mdm_err shift_files(struct journal *j, char *why, size_t whysz)
{
	char from[JPATH_MAX], to[JPATH_MAX];

	for (int n = (int)j->cfg.keep; n >= 1; n--) {
		if (file_path(j, n - 1, from) || file_path(j, n, to))
			return MDM_ERR_TOOBIG;
		if (rename(from, to) != 0 && errno != ENOENT) {
			err_why(why, whysz, "journal: rename %s: %s", from, strerror(errno));
			return MDM_ERR_IO;
		}
	}
	if (file_path(j, -1, from) || file_path(j, 0, to))
		return MDM_ERR_TOOBIG;
	if (rename(from, to) != 0) {
		err_why(why, whysz, "journal: rename %s: %s", from, strerror(errno));
		/*
		 * The open descriptor still writes to what is now .1; put it back under the current
		 * name, or a later rotation could drop the file that open actions are written to.
		 */
		if (file_path(j, 1, from) == MDM_OK && rename(from, to) != 0)
			log_err("journal: cannot rename %s back to %s: %s", from, to,
				strerror(errno));
		return MDM_ERR_IO;
	}
	return fsync_dir(j->dir, why, whysz);
}

/*
 * The new file is written and synced under another name first, so that a failure before the
 * renames leaves the journal as it was. Open actions and recent keys are copied to its top:
 * the files they came from will be dropped one day.
 */
static enum mdm_err rotate(struct journal *j, char *why, size_t whysz)
{
	char path[JPATH_MAX];
	struct buf carry;
	int fd = -1;
	enum mdm_err err = file_path(j, -1, path);

	buf_init(&carry, (size_t)LOAD_MAX);
	if (!err)
		err = build_carry(j, &carry);
	if (!err) {
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
			  0600);
		if (fd < 0 || write_all(fd, buf_str(&carry), carry.len) || fsync(fd) != 0) {
			err_why(why, whysz, "journal: writing %s: %s", path, strerror(errno));
			err = MDM_ERR_IO;
		}
	}
	if (!err)
		err = shift_files(j, why, whysz);
	if (err) {
		if (fd >= 0) {
			close(fd);
			unlink(path);
		}
	} else {
		close(j->fd);
		j->fd = fd;
		j->size = (int64_t)carry.len;
		/* The carry does not count, or a big one would rotate at every append. */
		j->rotate_at = j->size + j->cfg.max_bytes;
		j->need_nl = false;
		log_info("journal: rotated; %zu bytes carried over", carry.len);
	}
	buf_free(&carry);
	return err;
}

/*
 * Appends lines and syncs them: only then may the caller act on them. A torn line left by an
 * earlier crash or failed write is closed first, so it never glues to this one.
 */
static enum mdm_err append(struct journal *j, const struct buf *lines, char *why, size_t whysz)
{
	char rwhy[256] = "";

	/*
	 * A failed rotation only lets the file grow: refusing appends would stop outcomes of
	 * actions already sent from being recorded. It is tried again a little later.
	 */
	if (j->size >= j->rotate_at && rotate(j, rwhy, sizeof(rwhy)) != MDM_OK) {
		log_err("journal: rotation failed, appending to the current file: %s", rwhy);
		j->rotate_at = j->size + j->cfg.max_bytes / 16 + 1;
	}
	if (j->need_nl) {
		if (write_all(j->fd, "\n", 1))
			goto io;
		j->size++;
		j->need_nl = false;
	}
	if (write_all(j->fd, buf_str(lines), lines->len)) {
		j->need_nl = true;
		goto io;
	}
	j->size += (int64_t)lines->len;
	if (fdatasync(j->fd) != 0)
		goto io;
	return MDM_OK;
io:
	err_why(why, whysz, "journal: append: %s", strerror(errno));
	return MDM_ERR_IO;
}

static enum mdm_err append_one(struct journal *j, json_t *o, char *why, size_t whysz)
{
	struct buf b;
	enum mdm_err err;

	buf_init(&b, LINE_MAX_BYTES);
	err = add_line(&b, o);
	if (err)
		err_why(why, whysz, "journal: cannot encode the record");
	else
		err = append(j, &b, why, whysz);
	buf_free(&b);
	return err;
}

/* --- decoding --------------------------------------------------------------------------------- */

static bool get_str(json_t *o, const char *k, char *dst, size_t size)
{
	json_t *v = json_object_get(o, k);

	if (!json_is_string(v) || json_string_length(v) >= size)
		return false;
	memcpy(dst, json_string_value(v), json_string_length(v) + 1);
	return strlen(dst) == json_string_length(v); /* no NUL inside */
}

static bool get_ms(json_t *o, const char *k, int64_t *out)
{
	json_t *v = json_object_get(o, k);

	if (!json_is_integer(v) || json_integer_value(v) <= 0)
		return false;
	*out = (int64_t)json_integer_value(v);
	return true;
}

static enum mdm_err load_intent(struct journal *j, json_t *o, bool refused)
{
	struct journal_action a;
	char kind[32];

	memset(&a, 0, sizeof(a));
	if (!get_str(o, "id", a.id, sizeof(a.id)) || !get_ms(o, "at", &a.at_ms) ||
	    !get_str(o, "user", a.user, sizeof(a.user)) ||
	    !get_str(o, "addr", a.addr, sizeof(a.addr)) ||
	    !get_str(o, "action", kind, sizeof(kind)) ||
	    action_kind_parse(kind, &a.action) != MDM_OK ||
	    !get_str(o, "device", a.device, sizeof(a.device)) ||
	    !get_str(o, "mdm", a.mdm, sizeof(a.mdm)) ||
	    !get_str(o, "vendor_id", a.vendor_id, sizeof(a.vendor_id)) ||
	    !get_str(o, "key", a.key, sizeof(a.key)) ||
	    !get_str(o, "key_hash", a.key_hash, sizeof(a.key_hash)) ||
	    (refused && !get_str(o, "reason", a.detail, sizeof(a.detail))))
		return MDM_ERR_PARSE;
	if (find(j, a.id) >= 0)
		return MDM_OK; /* a copy made at rotation */
	a.state = refused ? JOURNAL_REFUSED : JOURNAL_PENDING;
	return add_action(j, &a);
}

/*
 * closing_of: for an outcome or resolve line, the action id names unpacked into a when it is
 * still pending: its index. Else -1, with *e MDM_OK when it is no longer pending (a copy made at
 * rotation: nothing to do) and MDM_ERR_NOTFOUND when the journal lacks it (its intent was
 * dropped).
 */
static long closing_of(struct journal *j, const char *id, struct journal_action *a, enum mdm_err *e)
{
	long i = find(j, id);

	*e = i >= 0 ? MDM_OK : MDM_ERR_NOTFOUND;
	if (i < 0 || j->acts[i]->state != JOURNAL_PENDING)
		return -1;
	rec_unpack(j->acts[i], a);
	return i;
}

/* closed: a, closed by its line, replaces record i and frees its device. */
static enum mdm_err closed(struct journal *j, long i, const struct journal_action *a)
{
	if (rec_replace(j, (size_t)i, a) != MDM_OK)
		return MDM_ERR_NOMEM;
	release_device(j, (size_t)i);
	return MDM_OK;
}

static enum mdm_err load_outcome(struct journal *j, json_t *o)
{
	char id[JOURNAL_ID_LEN + 1], state[32];
	struct journal_action act, *a = &act;
	enum mdm_err e;
	int64_t at;
	long i;

	if (!get_str(o, "id", id, sizeof(id)) || !get_ms(o, "at", &at) ||
	    !get_str(o, "state", state, sizeof(state)))
		return MDM_ERR_PARSE;
	i = closing_of(j, id, a, &e);
	if (i < 0)
		return e;
	if (strcmp(state, "sent") == 0)
		a->state = JOURNAL_SENT;
	else if (strcmp(state, "failed") == 0)
		a->state = JOURNAL_FAILED;
	else if (strcmp(state, "rejected") == 0)
		a->state = JOURNAL_REJECTED;
	else
		return MDM_ERR_PARSE;
	a->done_ms = at;
	if (!get_str(o, "detail", a->detail, sizeof(a->detail)))
		a->detail[0] = '\0';
	return closed(j, i, a);
}

static enum mdm_err load_resolve(struct journal *j, json_t *o)
{
	char id[JOURNAL_ID_LEN + 1], verified[16];
	struct journal_action act, *a = &act;
	enum mdm_err e;
	int64_t at;
	long i;

	if (!get_str(o, "id", id, sizeof(id)) || !get_ms(o, "at", &at) ||
	    !get_str(o, "verified", verified, sizeof(verified)))
		return MDM_ERR_PARSE;
	i = closing_of(j, id, a, &e); /* still pending: unknown is set after loading */
	if (i < 0)
		return e;
	if (strcmp(verified, "sent") == 0)
		a->state = JOURNAL_RESOLVED_SENT;
	else if (strcmp(verified, "not_sent") == 0)
		a->state = JOURNAL_RESOLVED_NOT_SENT;
	else
		return MDM_ERR_PARSE;
	a->resolved_ms = at;
	if (!get_str(o, "user", a->resolved_by, sizeof(a->resolved_by)))
		a->resolved_by[0] = '\0';
	if (!get_str(o, "note", a->note, sizeof(a->note)))
		a->note[0] = '\0';
	return closed(j, i, a);
}

static enum mdm_err load_line(struct journal *j, const char *line, size_t len)
{
	json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
	const char *t = json_string_value(json_object_get(o, "t"));
	enum mdm_err err = MDM_ERR_PARSE;

	if (!t)
		err = MDM_ERR_PARSE;
	else if (strcmp(t, "intent") == 0)
		err = load_intent(j, o, false);
	else if (strcmp(t, "refused") == 0)
		err = load_intent(j, o, true);
	else if (strcmp(t, "outcome") == 0)
		err = load_outcome(j, o);
	else if (strcmp(t, "resolve") == 0)
		err = load_resolve(j, o);
	json_decref(o);
	return err;
}

static enum mdm_err read_file(const char *path, char **mem, size_t *len, char *why, size_t whysz)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat sb;
	enum mdm_err err = MDM_OK;
	size_t got = 0;

	*mem = NULL;
	if (fd < 0)
		return errno == ENOENT ? MDM_ERR_NOTFOUND : MDM_ERR_IO;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > LOAD_MAX)
		err = MDM_ERR_TOOBIG;
	if (!err && !(*mem = malloc((size_t)sb.st_size + 1)))
		err = MDM_ERR_NOMEM;
	while (!err && got < (size_t)sb.st_size) {
		ssize_t r = read(fd, *mem + got, (size_t)sb.st_size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break; /* shrank meanwhile: use what was read */
		got += (size_t)r;
	}
	close(fd);
	if (err) {
		err_why(why, whysz, "journal: cannot read %s (%s)", path, err_str(err));
		free(*mem);
		*mem = NULL;
		return err;
	}
	*len = got;
	return MDM_OK;
}

/* Loads one file; a partial last line of the current file is a crash mid-write, not damage. */
static enum mdm_err load_file(struct journal *j, int n, char *why, size_t whysz)
{
	char path[JPATH_MAX], *mem;
	size_t len, start = 0;
	enum mdm_err err = file_path(j, n, path);

	if (!err)
		err = read_file(path, &mem, &len, why, whysz);
	if (err)
		return err == MDM_ERR_NOTFOUND && n > 0 ? MDM_OK : err;
	while (start < len) {
		char *nl = memchr(mem + start, '\n', len - start);
		size_t end = nl ? (size_t)(nl - mem) : len;
		enum mdm_err lerr;

		/*
		 * Even a complete record missing only its '\n' is dropped: its writer had not
		 * returned, so nothing acted on it; an outcome lost so leaves the action unknown,
		 * which is the safe side.
		 */
		if (!nl && n == 0) {
			j->st.torn = 1;
			j->need_nl = true;
			log_warn("journal: %s ends in a partial line (%zu bytes), ignored", path,
				 end - start);
			break;
		}
		lerr = end > start ? load_line(j, mem + start, end - start) : MDM_OK;
		if (lerr == MDM_ERR_NOMEM) {
			err = lerr;
			break;
		}
		if (lerr) {
			j->st.bad_lines++;
			log_warn("journal: %s: skipped a record at byte %zu (%s)", path, start,
				 err_str(lerr));
		}
		start = end + 1;
	}
	free(mem);
	if (err)
		err_why(why, whysz, "journal: out of memory loading %s", path);
	return err;
}

/* What no process is sending any more may or may not have reached the MDM. */
static void mark_unknown(struct journal *j)
{
	for (size_t i = 0; i < j->n; i++) {
		struct jrec *r = j->acts[i];

		if (r->state != JOURNAL_PENDING)
			continue;
		r->state = JOURNAL_UNKNOWN;
		j->st.unknown++;
		log_warn(
		    "journal: action %s (%s of %s via %s) has no outcome: unknown, not re-sent; "
		    "an admin must resolve it",
		    r->id, action_kind_name((enum action_kind)r->action), rec_str(r, S_DEVICE),
		    rec_str(r, S_MDM));
	}
}

/* --- open and close --------------------------------------------------------------------------- */

static enum mdm_err set_cfg(struct journal *j, const struct journal_cfg *cfg, char *why,
			    size_t whysz)
{
	j->cfg.max_bytes = cfg && cfg->max_bytes ? cfg->max_bytes : JOURNAL_DEFAULT_MAX_BYTES;
	j->cfg.keep = cfg && cfg->keep ? cfg->keep : JOURNAL_DEFAULT_KEEP;
	j->cfg.key_window_ms =
	    cfg && cfg->key_window_ms ? cfg->key_window_ms : JOURNAL_DEFAULT_KEY_WINDOW_MS;
	if (j->cfg.max_bytes < 0 || j->cfg.keep > JOURNAL_KEEP_MAX || j->cfg.key_window_ms < 0) {
		err_why(why, whysz, "journal: max_bytes, keep (1..%d) or key window out of range",
			JOURNAL_KEEP_MAX);
		return MDM_ERR_CONFIG;
	}
	return MDM_OK;
}

static enum mdm_err load_all(struct journal *j, char *why, size_t whysz)
{
	enum mdm_err err = MDM_OK;

	for (int n = (int)j->cfg.keep; n >= 0 && !err; n--)
		err = load_file(j, n, why, whysz);
	if (!err) {
		mark_unknown(j);
		j->st.records = j->n;
	}
	return err;
}

enum mdm_err journal_open(const char *dir, const struct journal_cfg *cfg, struct journal **out,
			  char *why, size_t whysz)
{
	struct journal *j = calloc(1, sizeof(*j));
	enum mdm_err err = j ? MDM_OK : MDM_ERR_NOMEM;
	char path[JPATH_MAX];

	*out = NULL;
	if (!j)
		return err;
	j->fd = -1;
	pthread_mutex_init(&j->mu, NULL);
	j->by_id = json_object();
	j->by_key = json_object();
	j->by_dev = json_object();
	if (!j->by_id || !j->by_key || !j->by_dev)
		err = MDM_ERR_NOMEM;
	/* The longest path (".new") is checked once here, so building one later cannot fail. */
	if (!err &&
	    (str_copy(j->dir, sizeof(j->dir), dir) != MDM_OK || file_path(j, -1, path) != MDM_OK)) {
		err_why(why, whysz, "journal: directory name too long");
		err = MDM_ERR_TOOBIG;
	}
	if (!err)
		err = set_cfg(j, cfg, why, whysz);
	if (!err)
		err = ensure_dir(dir, why, whysz);
	if (!err)
		err = open_current(j, why, whysz);
	if (!err)
		err = load_all(j, why, whysz);
	if (err) {
		journal_close(j);
		return err;
	}
	log_info("journal: %s: %lu actions, %lu unknown, %lu bad lines, %lu torn", dir,
		 j->st.records, j->st.unknown, j->st.bad_lines, j->st.torn);
	*out = j;
	return MDM_OK;
}

void journal_close(struct journal *j)
{
	if (!j)
		return;
	if (j->fd >= 0)
		close(j->fd);
	json_decref(j->by_id);
	json_decref(j->by_key);
	json_decref(j->by_dev);
	for (size_t i = 0; i < j->n; i++)
		free(j->acts[i]);
	free(j->acts);
	pthread_mutex_destroy(&j->mu);
	free(j);
}

void journal_get_stats(struct journal *j, struct journal_stats *out)
{
	pthread_mutex_lock(&j->mu);
	*out = j->st;
	out->records = j->n;
	pthread_mutex_unlock(&j->mu);
}

/* --- recording -------------------------------------------------------------------------------- */

/* An identity field: copied whole or refused, never cut. */
static enum mdm_err take_str(char *dst, size_t size, const char *s, bool required, const char *name,
			     char *why, size_t whysz)
{
	json_t *probe;

	if (!s)
		s = "";
	if (required && !s[0]) {
		err_why(why, whysz, "journal: %s is required", name);
		return MDM_ERR_INVALID;
	}
	if (str_copy(dst, size, s) != MDM_OK) {
		err_why(why, whysz, "journal: %s longer than %zu bytes", name, size - 1);
		return MDM_ERR_TOOBIG;
	}
	probe = json_string(dst);
	if (!probe) {
		err_why(why, whysz, "journal: %s is not UTF-8", name);
		return MDM_ERR_INVALID;
	}
	json_decref(probe);
	return MDM_OK;
}

/* Free text (a vendor's message, a note): cut to fit on a character boundary; bytes that are
 * not UTF-8 become '?', so that a record is never lost to what a vendor wrote. */
static void take_text(char dst[JOURNAL_TEXT_MAX + 1], const char *s)
{
	size_t len = s ? strnlen(s, JOURNAL_TEXT_MAX + 1) : 0;
	json_t *probe;

	if (len > JOURNAL_TEXT_MAX) {
		len = JOURNAL_TEXT_MAX;
		while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
			len--;
	}
	str_copyn(dst, JOURNAL_TEXT_MAX + 1, s ? s : "", len);
	probe = json_string(dst);
	if (probe) {
		json_decref(probe);
		return;
	}
	for (char *p = dst; *p; p++) {
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	}
}

static bool is_hash(const char *s)
{
	size_t n = strspn(s, "0123456789abcdef");

	return s[0] == '\0' || (n == JOURNAL_HASH_LEN && s[n] == '\0');
}

static enum mdm_err fill_action(struct journal_action *a, const struct journal_intent *in,
				bool need_key, char *why, size_t whysz)
{
	enum mdm_err err;

	memset(a, 0, sizeof(*a));
	if ((unsigned)in->action >= ACTION_COUNT) {
		err_why(why, whysz, "journal: no such action");
		return MDM_ERR_INVALID;
	}
	a->action = in->action;
	err = take_str(a->user, sizeof(a->user), in->user, false, "user", why, whysz);
	if (!err)
		err = take_str(a->addr, sizeof(a->addr), in->addr, false, "addr", why, whysz);
	if (!err)
		err =
		    take_str(a->device, sizeof(a->device), in->device, true, "device", why, whysz);
	if (!err)
		err = take_str(a->mdm, sizeof(a->mdm), in->mdm, need_key, "mdm", why, whysz);
	if (!err)
		err = take_str(a->vendor_id, sizeof(a->vendor_id), in->vendor_id, false,
			       "vendor_id", why, whysz);
	if (!err)
		err = take_str(a->key, sizeof(a->key), in->key, need_key, "key", why, whysz);
	if (!err)
		err = take_str(a->key_hash, sizeof(a->key_hash), in->key_hash, false, "key_hash",
			       why, whysz);
	if (!err && !is_hash(a->key_hash)) {
		err_why(why, whysz, "journal: key_hash is not 64 lowercase hex digits");
		err = MDM_ERR_INVALID;
	}
	return err;
}

static enum mdm_err new_id(char id[JOURNAL_ID_LEN + 1])
{
	unsigned char raw[JOURNAL_ID_LEN / 2];

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return MDM_ERR_INTERNAL;
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(id + 2 * i, 3, "%02x", raw[i]);
	return MDM_OK;
}

/* Under the lock: MDM_OK if a may be recorded; else why not, with the other action's id. */
static enum mdm_err check_free(struct journal *j, const struct journal_action *a, bool device,
			       char id_out[JOURNAL_ID_LEN + 1], struct journal_action *first,
			       char *why, size_t whysz)
{
	long k = a->key[0] ? idx_get(j->by_key, a->key) : -1;
	long d = device ? idx_get(j->by_dev, a->device) : -1;

	/* The key first: a repeat of a request whose action still holds the device is a repeat. */
	if (k >= 0) {
		str_copy(id_out, JOURNAL_ID_LEN + 1, j->acts[k]->id);
		if (first)
			rec_unpack(j->acts[k], first);
		err_why(why, whysz, "journal: key already used by action %s", j->acts[k]->id);
		return MDM_ERR_FORBIDDEN;
	}
	if (d >= 0) {
		str_copy(id_out, JOURNAL_ID_LEN + 1, j->acts[d]->id);
		err_why(why, whysz, "journal: device %s has action %s %s", a->device,
			j->acts[d]->id, journal_state_name((enum journal_state)j->acts[d]->state));
		return MDM_ERR_BUSY;
	}
	return MDM_OK;
}

/* Shared by intents and refusals: checks, writes, syncs, then indexes. */
static enum mdm_err record(struct journal *j, struct journal_action *a,
			   char id_out[JOURNAL_ID_LEN + 1], struct journal_action *first, char *why,
			   size_t whysz)
{
	bool intent = a->state == JOURNAL_PENDING;
	enum mdm_err err;

	pthread_mutex_lock(&j->mu);
	err = check_free(j, a, intent, id_out, first, why, whysz);
	if (!err && new_id(a->id) != MDM_OK) {
		err_why(why, whysz, "journal: no random bytes for an id");
		err = MDM_ERR_INTERNAL;
	}
	if (!err) {
		a->at_ms = clock_wall_ms();
		err = append_one(j, enc_intent(a), why, whysz);
	}
	if (!err)
		err = add_action(j, a);
	if (!err)
		str_copy(id_out, JOURNAL_ID_LEN + 1, a->id);
	pthread_mutex_unlock(&j->mu);
	return err;
}

enum mdm_err journal_intent(struct journal *j, const struct journal_intent *in,
			    char id_out[JOURNAL_ID_LEN + 1], struct journal_action *first,
			    char *why, size_t whysz)
{
	struct journal_action *a = malloc(sizeof(*a));
	enum mdm_err err = a ? fill_action(a, in, true, why, whysz) : MDM_ERR_NOMEM;

	id_out[0] = '\0';
	if (!err) {
		a->state = JOURNAL_PENDING;
		err = record(j, a, id_out, first, why, whysz);
	}
	free(a);
	return err;
}

enum mdm_err journal_refused(struct journal *j, const struct journal_intent *in, const char *reason,
			     char id_out[JOURNAL_ID_LEN + 1], struct journal_action *first,
			     char *why, size_t whysz)
{
	struct journal_action *a = malloc(sizeof(*a));
	enum mdm_err err = a ? fill_action(a, in, false, why, whysz) : MDM_ERR_NOMEM;

	id_out[0] = '\0';
	if (!err) {
		a->state = JOURNAL_REFUSED;
		take_text(a->detail, reason);
		err = record(j, a, id_out, first, why, whysz);
	}
	free(a);
	return err;
}

/* Under the lock: the index of action id and a copy of it, if it is in state want. */
static enum mdm_err find_in(struct journal *j, const char *id, enum journal_state want, size_t *at,
			    struct journal_action *out, char *why, size_t whysz)
{
	long i = id ? find(j, id) : -1;
	enum journal_state st;

	if (i < 0) {
		err_why(why, whysz, "journal: no action %s", id ? id : "(null)");
		return MDM_ERR_NOTFOUND;
	}
	st = (enum journal_state)j->acts[i]->state;
	if (st != want) {
		err_why(why, whysz, "journal: action %s is %s, not %s", id, journal_state_name(st),
			journal_state_name(want));
		return st == JOURNAL_PENDING ? MDM_ERR_BUSY : MDM_ERR_INVALID;
	}
	*at = (size_t)i;
	rec_unpack(j->acts[i], out);
	return MDM_OK;
}

/* Appends line o (taken) and makes next record i; nothing changes unless both succeed. */
static enum mdm_err update(struct journal *j, size_t i, json_t *o,
			   const struct journal_action *next, char *why, size_t whysz)
{
	struct jrec *r = rec_pack(next);
	enum mdm_err err;

	if (!r) {
		json_decref(o);
		err_why(why, whysz, "journal: out of memory");
		return MDM_ERR_NOMEM;
	}
	err = append_one(j, o, why, whysz);
	if (err) {
		free(r);
		return err;
	}
	free(j->acts[i]);
	j->acts[i] = r;
	release_device(j, i);
	return MDM_OK;
}

enum mdm_err journal_outcome(struct journal *j, const char *id, enum journal_state state,
			     const char *detail, char *why, size_t whysz)
{
	struct journal_action next;
	enum mdm_err err;
	size_t i = 0;

	if (state != JOURNAL_SENT && state != JOURNAL_FAILED && state != JOURNAL_REJECTED) {
		err_why(why, whysz, "journal: an outcome is sent, failed or rejected");
		return MDM_ERR_INVALID;
	}
	pthread_mutex_lock(&j->mu);
	err = find_in(j, id, JOURNAL_PENDING, &i, &next, why, whysz);
	if (!err) {
		next.state = state;
		next.done_ms = clock_wall_ms();
		take_text(next.detail, detail);
		err = update(j, i, enc_outcome(&next), &next, why, whysz);
	}
	pthread_mutex_unlock(&j->mu);
	return err;
}

enum mdm_err journal_resolve(struct journal *j, const char *id, enum journal_state verified,
			     const char *note, const char *user, char *why, size_t whysz)
{
	struct journal_action next;
	enum mdm_err err;
	size_t i = 0;

	if (verified != JOURNAL_RESOLVED_SENT && verified != JOURNAL_RESOLVED_NOT_SENT) {
		err_why(why, whysz, "journal: verified is sent or not_sent");
		return MDM_ERR_INVALID;
	}
	pthread_mutex_lock(&j->mu);
	err = find_in(j, id, JOURNAL_UNKNOWN, &i, &next, why, whysz);
	if (!err) {
		next.state = verified;
		next.resolved_ms = clock_wall_ms();
		err = take_str(next.resolved_by, sizeof(next.resolved_by), user, true, "user", why,
			       whysz);
	}
	if (!err) {
		take_text(next.note, note);
		err = update(j, i, enc_resolve(&next), &next, why, whysz);
	}
	if (!err)
		log_info("journal: action %s resolved %s by %s", next.id,
			 journal_state_name(verified), next.resolved_by);
	pthread_mutex_unlock(&j->mu);
	return err;
}

/* --- reading ---------------------------------------------------------------------------------- */

static enum mdm_err copy_from(struct journal *j, json_t *map, const char *k,
			      struct journal_action *out)
{
	long i;

	if (!k)
		return MDM_ERR_NOTFOUND;
	pthread_mutex_lock(&j->mu);
	i = idx_get(map, k);
	if (i >= 0)
		rec_unpack(j->acts[i], out);
	pthread_mutex_unlock(&j->mu);
	return i >= 0 ? MDM_OK : MDM_ERR_NOTFOUND;
}

enum mdm_err journal_get(struct journal *j, const char *id, struct journal_action *out)
{
	return copy_from(j, j->by_id, id, out);
}

enum mdm_err journal_find_key(struct journal *j, const char *key, struct journal_action *out)
{
	return copy_from(j, j->by_key, key, out);
}

enum mdm_err journal_device_open(struct journal *j, const char *device, struct journal_action *out)
{
	return copy_from(j, j->by_dev, device, out);
}

enum mdm_err journal_list(struct journal *j, const char *device, int state, journal_cb cb,
			  void *arg)
{
	struct journal_action *a = malloc(sizeof(*a));
	enum mdm_err err = a ? MDM_OK : MDM_ERR_NOMEM;

	pthread_mutex_lock(&j->mu);
	for (size_t i = 0; i < j->n && !err; i++) {
		const struct jrec *r = j->acts[i];

		if (device && strcmp(device, rec_str(r, S_DEVICE)) != 0)
			continue;
		if (state >= 0 && (int)r->state != state)
			continue;
		rec_unpack(r, a);
		err = cb(a, arg);
	}
	pthread_mutex_unlock(&j->mu);
	free(a);
	return err;
}
