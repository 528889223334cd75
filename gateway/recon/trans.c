#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../core/clock.h"
#include "../../core/log.h"
#include "trans.h"

#define TPATH_MAX 4096
#define KEY_MAX 136	       /* "<key>@block:<ms>" must fit transition.id */
#define LINE_MAX_BYTES 4096    /* a longer line in a state file is corrupt */
#define FLUSH_AT (32u * 1024u) /* the write buffer is flushed past this: files are streamed */
#define FORGET_MS (90LL * 24 * 3600 * 1000) /* a device unseen this long is not saved again */
#define ARENA_MAX UINT32_MAX

/* What changed for one device in one cycle (bits of struct change.what). */
enum {
	CH_UNREG = 1u << 0,	   /* registered true -> false */
	CH_ABSENT = 1u << 1,	   /* ... by absence from a complete listing */
	CH_JAIL = 1u << 2,	   /* jail-broken appeared */
	CH_NONCOMPLIANT = 1u << 3, /* compliant -> non-compliant */
	CH_COMPLIANT = 1u << 4,	   /* non-compliant -> compliant */
};

/*
 * One device's last known state: 40 bytes. Strings are offsets into the interned arena
 * (0 is ""), so a MAC that is also the key is stored once.
 */
struct rec {
	uint32_t key, mac, guid, source;
	uint32_t cycle; /* t->cycle when last present: absence and duplicates */
	uint8_t registered, compliant, jail_broken;
	uint64_t gen;
	int64_t seen_ms;
};

struct change {
	uint32_t rec;
	uint32_t what;
};

struct trans {
	pthread_mutex_t mu;
	struct trans_config cfg;
	char dir[TPATH_MAX];
	struct transition_sink sink;
	/* the interned strings: arena bytes, and an open-addressing set of their offsets */
	char *arena;
	size_t alen, acap;
	uint32_t *strs;
	size_t nstrs, scap;
	/* the records, and an open-addressing index of 1 + record number by key */
	struct rec *recs;
	size_t nrecs, rcap;
	uint32_t *index;
	size_t icap;
	uint32_t cycle;
	uint64_t epoch; /* the latest given: released events carry it */
	/* the guard */
	struct transition *held;
	size_t nheld, hcap;
	int64_t held_since_ms;
	uint64_t last_gen;
	size_t last_transitions;
	double last_share;
	bool had_cycle;
};

/* --- interned strings ---------------------------------------------------------------------- */

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h ? h : 1;
}

static enum mdm_err strs_grow(struct trans *t)
{
	size_t cap = t->scap ? t->scap * 2 : 1024;
	uint32_t *n = calloc(cap, sizeof(*n));

	if (!n)
		return MDM_ERR_NOMEM;
	for (size_t i = 0; i < t->scap; i++) {
		size_t s;

		if (!t->strs[i])
			continue;
		for (s = hash_str(t->arena + t->strs[i]) & (cap - 1); n[s]; s = (s + 1) & (cap - 1))
			;
		n[s] = t->strs[i];
	}
	free(t->strs);
	t->strs = n;
	t->scap = cap;
	return MDM_OK;
}

/* intern: the arena offset of s (added if new); 0 for NULL or "". */
static enum mdm_err intern(struct trans *t, const char *s, uint32_t *out)
{
	size_t len, slot;

	*out = 0;
	if (!s || !*s)
		return MDM_OK;
	if ((t->nstrs + 1) * 2 > t->scap && strs_grow(t))
		return MDM_ERR_NOMEM;
	for (slot = hash_str(s) & (t->scap - 1); t->strs[slot]; slot = (slot + 1) & (t->scap - 1))
		if (strcmp(t->arena + t->strs[slot], s) == 0) {
			*out = t->strs[slot];
			return MDM_OK;
		}
	len = strlen(s) + 1;
	if (t->alen + len > t->acap) {
		size_t cap = t->acap + t->acap / 2 + len + 4096;
		char *a;

		if (cap > ARENA_MAX)
			return MDM_ERR_TOOBIG;
		a = realloc(t->arena, cap);
		if (!a)
			return MDM_ERR_NOMEM;
		t->arena = a;
		t->acap = cap;
	}
	memcpy(t->arena + t->alen, s, len);
	*out = (uint32_t)t->alen;
	t->strs[slot] = *out;
	t->alen += len;
	t->nstrs++;
	return MDM_OK;
}

static const char *str_at(const struct trans *t, uint32_t off)
{
	return t->arena + off; /* offset 0 holds "" */
}

/* --- records -------------------------------------------------------------------------------- */

static enum mdm_err index_grow(struct trans *t)
{
	size_t cap = t->icap ? t->icap * 2 : 1024;
	uint32_t *n = calloc(cap, sizeof(*n));

	if (!n)
		return MDM_ERR_NOMEM;
	for (size_t r = 0; r < t->nrecs; r++) {
		size_t s = hash_str(str_at(t, t->recs[r].key)) & (cap - 1);

		while (n[s])
			s = (s + 1) & (cap - 1);
		n[s] = (uint32_t)(r + 1);
	}
	free(t->index);
	t->index = n;
	t->icap = cap;
	return MDM_OK;
}

/* find: the record of key, or NULL. */
static struct rec *find(const struct trans *t, const char *key)
{
	if (!t->icap)
		return NULL;
	for (size_t s = hash_str(key) & (t->icap - 1); t->index[s]; s = (s + 1) & (t->icap - 1))
		if (strcmp(str_at(t, t->recs[t->index[s] - 1].key), key) == 0)
			return &t->recs[t->index[s] - 1];
	return NULL;
}

/* add: a new record for key (not present), zeroed but for the key. */
static enum mdm_err add(struct trans *t, const char *key, struct rec **out)
{
	uint32_t k;
	size_t s;

	if (t->nrecs >= UINT32_MAX - 1)
		return MDM_ERR_TOOBIG;
	if ((t->nrecs + 1) * 2 > t->icap && index_grow(t))
		return MDM_ERR_NOMEM;
	if (t->nrecs == t->rcap) {
		size_t cap = t->rcap ? t->rcap + t->rcap / 2 : 1024;
		struct rec *n = realloc(t->recs, cap * sizeof(*n));

		if (!n)
			return MDM_ERR_NOMEM;
		t->recs = n;
		t->rcap = cap;
	}
	if (intern(t, key, &k))
		return MDM_ERR_NOMEM;
	for (s = hash_str(key) & (t->icap - 1); t->index[s]; s = (s + 1) & (t->icap - 1))
		;
	*out = &t->recs[t->nrecs];
	memset(*out, 0, sizeof(**out));
	(*out)->key = k;
	t->index[s] = (uint32_t)++t->nrecs;
	return MDM_OK;
}

/* --- create / destroy ----------------------------------------------------------------------- */

struct trans *trans_create(const struct trans_config *cfg, const char *state_dir,
			   const struct transition_sink *sink)
{
	struct trans *t;

	if (!cfg || !state_dir || !sink || !sink->emit)
		return NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->cfg = *cfg;
	t->sink = *sink;
	t->acap = 4096;
	t->arena = calloc(1, t->acap);
	t->alen = 1; /* offset 0 is "" */
	if (!t->arena || str_copy(t->dir, sizeof(t->dir), state_dir) ||
	    pthread_mutex_init(&t->mu, NULL) != 0) {
		free(t->arena);
		free(t);
		return NULL;
	}
	return t;
}

void trans_destroy(struct trans *t)
{
	if (!t)
		return;
	pthread_mutex_destroy(&t->mu);
	free(t->arena);
	free(t->strs);
	free(t->recs);
	free(t->index);
	free(t->held);
	free(t);
}

size_t trans_memory(struct trans *t)
{
	size_t m;

	pthread_mutex_lock(&t->mu);
	m = t->acap + t->scap * sizeof(*t->strs) + t->rcap * sizeof(*t->recs) +
	    t->icap * sizeof(*t->index) + t->hcap * sizeof(*t->held) + sizeof(*t);
	pthread_mutex_unlock(&t->mu);
	return m;
}

size_t trans_held(struct trans *t)
{
	size_t n;

	pthread_mutex_lock(&t->mu);
	n = t->nheld;
	pthread_mutex_unlock(&t->mu);
	return n;
}

/* --- atomic streamed files ------------------------------------------------------------------- */

struct afile {
	int fd;
	char tmp[TPATH_MAX], dst[TPATH_MAX];
	struct buf b;
	bool bad;
};

static enum mdm_err path_of(const struct trans *t, const char *name, char out[TPATH_MAX])
{
	int n = snprintf(out, TPATH_MAX, "%s/%s", t->dir, name);

	return n > 0 && n < TPATH_MAX ? MDM_OK : MDM_ERR_TOOBIG;
}

static enum mdm_err af_open(const struct trans *t, const char *name, struct afile *f)
{
	char tmpname[128];

	memset(f, 0, sizeof(*f));
	f->fd = -1;
	buf_init(&f->b, FLUSH_AT * 2 + LINE_MAX_BYTES * 2);
	snprintf(tmpname, sizeof(tmpname), "%s.new", name);
	if (path_of(t, name, f->dst) || path_of(t, tmpname, f->tmp))
		return MDM_ERR_TOOBIG;
	f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	return f->fd < 0 ? MDM_ERR_IO : MDM_OK;
}

static void af_flush(struct afile *f)
{
	for (size_t off = 0; off < f->b.len && !f->bad;) {
		ssize_t w = write(f->fd, f->b.mem + off, f->b.len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			f->bad = true;
		else
			off += (size_t)w;
	}
	buf_reset(&f->b);
}

/* af_line_done: one line was added to f->b; writes the buffer out once it is large. */
static void af_line_done(struct afile *f, enum mdm_err e)
{
	if (e)
		f->bad = true;
	if (f->b.len >= FLUSH_AT)
		af_flush(f);
}

/* af_commit: flush, fsync, rename over dst, fsync the directory; or remove the temp file. */
static enum mdm_err af_commit(const struct trans *t, struct afile *f)
{
	int dfd;
	enum mdm_err e = MDM_ERR_IO;

	af_flush(f);
	buf_free(&f->b);
	if (f->fd < 0)
		return MDM_ERR_IO;
	if (!f->bad && fsync(f->fd) == 0 && close(f->fd) == 0) {
		f->fd = -1;
		if (rename(f->tmp, f->dst) == 0) {
			dfd = open(t->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (dfd >= 0 && fsync(dfd) == 0)
				e = MDM_OK;
			if (dfd >= 0)
				close(dfd);
			return e;
		}
	}
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	unlink(f->tmp);
	return e;
}

/* A JSON string of s; bytes outside printable ASCII are written as \u00XX. */
static enum mdm_err jstr(struct buf *b, const char *s)
{
	enum mdm_err e = buf_addstr(b, "\"");

	for (; *s && !e; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			e = buf_addf(b, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			e = buf_addf(b, "\\u%04x", c);
		else
			e = buf_add(b, s, 1);
	}
	return e ? e : buf_addstr(b, "\"");
}

static enum mdm_err jstr_or_null(struct buf *b, const char *s)
{
	return *s ? jstr(b, s) : buf_addstr(b, "null");
}

static const char *tri_json(uint8_t v)
{
	return v == TRI_TRUE ? "true" : v == TRI_FALSE ? "false" : "null";
}

static enum mdm_err rec_line(const struct trans *t, const struct rec *r, struct buf *b)
{
	enum mdm_err e = buf_addstr(b, "{\"key\":");

	e = e ? e : jstr(b, str_at(t, r->key));
	e = e ? e : buf_addstr(b, ",\"mac\":");
	e = e ? e : jstr_or_null(b, str_at(t, r->mac));
	e = e ? e : buf_addstr(b, ",\"guid\":");
	e = e ? e : jstr_or_null(b, str_at(t, r->guid));
	e = e ? e : buf_addstr(b, ",\"source\":");
	e = e ? e : jstr(b, str_at(t, r->source));
	e = e ? e
	      : buf_addf(b,
			 ",\"registered\":%s,\"compliant\":%s,\"jail_broken\":%s,\"gen\":%" PRIu64
			 ",\"seen\":%" PRId64 "}\n",
			 tri_json(r->registered), tri_json(r->compliant), tri_json(r->jail_broken),
			 r->gen, r->seen_ms);
	return e;
}

/* save_devices: devices.jsonl, streamed through a bounded buffer. */
static enum mdm_err save_devices(struct trans *t)
{
	struct afile f;
	int64_t now = clock_wall_ms();
	enum mdm_err e = af_open(t, TRANS_FILE, &f);

	if (e == MDM_OK) {
		af_line_done(&f,
			     buf_addf(&f.b,
				      "{\"format\":\"mdmgw-trans\",\"version\":%d,\"gen\":%" PRIu64
				      ",\"saved\":%" PRId64 "}\n",
				      TRANS_FORMAT_VERSION, t->last_gen, now));
		for (size_t i = 0; i < t->nrecs && !f.bad; i++)
			if (now - t->recs[i].seen_ms < FORGET_MS)
				af_line_done(&f, rec_line(t, &t->recs[i], &f.b));
		e = af_commit(t, &f);
	} else {
		buf_free(&f.b);
	}
	if (e)
		log_err("trans: cannot save %s/%s: %s", t->dir, TRANS_FILE, strerror(errno));
	return e;
}

static enum mdm_err event_line(const struct transition *ev, struct buf *b)
{
	enum mdm_err e = buf_addstr(b, "{\"id\":");

	e = e ? e : jstr(b, ev->id);
	e = e ? e : buf_addstr(b, ",\"mac\":");
	e = e ? e : jstr(b, ev->mac);
	e = e ? e : buf_addstr(b, ",\"guid\":");
	e = e ? e : jstr(b, ev->guid);
	e = e ? e : buf_addstr(b, ",\"from\":");
	e = e ? e : jstr(b, ev->from);
	e = e ? e : buf_addstr(b, ",\"to\":");
	e = e ? e : jstr(b, ev->to);
	e = e ? e : buf_addstr(b, ",\"reason\":");
	e = e ? e : jstr(b, ev->reason);
	e = e ? e
	      : buf_addf(b, ",\"kind\":\"%s\",\"at\":%" PRId64 ",\"epoch\":%" PRIu64 "}\n",
			 ev->kind == TRANSITION_DISCONNECT ? "disconnect" : "reauth", ev->at_ms,
			 ev->epoch);
	return e;
}

/* save_held: held.jsonl with the held batch, or no file when nothing is held. */
static enum mdm_err save_held(struct trans *t)
{
	char path[TPATH_MAX];
	struct afile f;
	enum mdm_err e;

	if (!t->nheld) {
		if (path_of(t, TRANS_HELD_FILE, path) == MDM_OK && unlink(path) != 0 &&
		    errno != ENOENT) {
			log_err("trans: cannot remove %s: %s", path, strerror(errno));
			return MDM_ERR_IO;
		}
		return MDM_OK;
	}
	e = af_open(t, TRANS_HELD_FILE, &f);
	if (e == MDM_OK) {
		af_line_done(
		    &f,
		    buf_addf(&f.b,
			     "{\"format\":\"mdmgw-trans-held\",\"version\":%d,\"since\":%" PRId64
			     "}\n",
			     TRANS_FORMAT_VERSION, t->held_since_ms));
		for (size_t i = 0; i < t->nheld && !f.bad; i++)
			af_line_done(&f, event_line(&t->held[i], &f.b));
		e = af_commit(t, &f);
	} else {
		buf_free(&f.b);
	}
	if (e)
		log_err("trans: cannot save %s/%s (held CoAs): %s", t->dir, TRANS_HELD_FILE,
			strerror(errno));
	return e;
}

/* --- loading --------------------------------------------------------------------------------- */

static bool tri_of(json_t *v, uint8_t *out)
{
	if (json_is_null(v) || !v)
		*out = TRI_UNSET;
	else if (json_is_boolean(v))
		*out = json_is_true(v) ? TRI_TRUE : TRI_FALSE;
	else
		return false;
	return true;
}

/* A string member (NULL or null: ""), of at most max bytes; false when it is anything else. */
static bool str_of(json_t *o, const char *k, size_t max, const char **out)
{
	json_t *v = json_object_get(o, k);

	*out = "";
	if (!v || json_is_null(v))
		return true;
	if (!json_is_string(v) || json_string_length(v) > max ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return false;
	*out = json_string_value(v);
	return true;
}

/* load_rec: one devices.jsonl row; MDM_ERR_PARSE when it is not one. */
static enum mdm_err load_rec(struct trans *t, json_t *o)
{
	const char *key, *mac, *guid, *source;
	json_t *gen = json_object_get(o, "gen"), *seen = json_object_get(o, "seen");
	uint8_t reg, comp, jail;
	struct rec *r;

	if (!json_is_object(o) || !str_of(o, "key", KEY_MAX, &key) || !*key ||
	    !str_of(o, "mac", MAC_STR_LEN, &mac) || !str_of(o, "guid", GUID_MAX, &guid) ||
	    !str_of(o, "source", 255, &source) || !tri_of(json_object_get(o, "registered"), &reg) ||
	    !tri_of(json_object_get(o, "compliant"), &comp) ||
	    !tri_of(json_object_get(o, "jail_broken"), &jail) || !json_is_integer(gen) ||
	    json_integer_value(gen) < 0 || !json_is_integer(seen) || find(t, key))
		return MDM_ERR_PARSE;
	if (add(t, key, &r))
		return MDM_ERR_NOMEM;
	if (intern(t, mac, &r->mac) || intern(t, guid, &r->guid) || intern(t, source, &r->source))
		return MDM_ERR_NOMEM;
	r->registered = reg;
	r->compliant = comp;
	r->jail_broken = jail;
	r->gen = (uint64_t)json_integer_value(gen);
	r->seen_ms = json_integer_value(seen);
	return MDM_OK;
}

static bool ev_str(json_t *o, const char *k, char *out, size_t sz)
{
	json_t *v = json_object_get(o, k);

	return json_is_string(v) && str_copy(out, sz, json_string_value(v)) == MDM_OK;
}

/* load_held_line: one held.jsonl event; MDM_ERR_PARSE when it is not one. */
static enum mdm_err load_held_line(struct trans *t, json_t *o)
{
	struct transition ev;
	json_t *at = json_object_get(o, "at"), *ep = json_object_get(o, "epoch"),
	       *kind = json_object_get(o, "kind");

	memset(&ev, 0, sizeof(ev));
	if (!json_is_object(o) || !ev_str(o, "id", ev.id, sizeof(ev.id)) || !ev.id[0] ||
	    !ev_str(o, "mac", ev.mac, sizeof(ev.mac)) ||
	    !ev_str(o, "guid", ev.guid, sizeof(ev.guid)) ||
	    !ev_str(o, "from", ev.from, sizeof(ev.from)) ||
	    !ev_str(o, "to", ev.to, sizeof(ev.to)) ||
	    !ev_str(o, "reason", ev.reason, sizeof(ev.reason)) || !json_is_integer(at) ||
	    !json_is_integer(ep) || !json_is_string(kind))
		return MDM_ERR_PARSE;
	if (strcmp(json_string_value(kind), "disconnect") == 0)
		ev.kind = TRANSITION_DISCONNECT;
	else if (strcmp(json_string_value(kind), "reauth") != 0)
		return MDM_ERR_PARSE;
	ev.at_ms = json_integer_value(at);
	ev.epoch = (uint64_t)json_integer_value(ep);
	if (t->nheld == t->hcap) {
		size_t cap = t->hcap ? t->hcap * 2 : 64;
		struct transition *n = realloc(t->held, cap * sizeof(*n));

		if (!n)
			return MDM_ERR_NOMEM;
		t->held = n;
		t->hcap = cap;
	}
	t->held[t->nheld++] = ev;
	return MDM_OK;
}

/* The header line: true when it is ours; *since gets "since" (held file). */
static bool header_ok(json_t *o, const char *format, int64_t *since)
{
	json_t *f = json_object_get(o, "format"), *v = json_object_get(o, "version"),
	       *s = json_object_get(o, "since");

	if (!json_is_string(f) || strcmp(json_string_value(f), format) != 0 ||
	    !json_is_integer(v) || json_integer_value(v) != TRANS_FORMAT_VERSION)
		return false;
	if (since && json_is_integer(s))
		*since = json_integer_value(s);
	return true;
}

typedef enum mdm_err (*line_fn)(struct trans *t, json_t *o);

/*
 * load_file: name's lines through fn, after the header. A line that does not parse is
 * dropped and counted; the first few are logged with their numbers.
 */
static enum mdm_err load_file(struct trans *t, const char *name, const char *format, line_fn fn,
			      size_t *dropped)
{
	char path[TPATH_MAX];
	char *line = NULL;
	size_t cap = 0, lineno = 0, bad = 0, good = 0;
	ssize_t len;
	FILE *fp;
	enum mdm_err e = MDM_OK;

	if (path_of(t, name, path))
		return MDM_ERR_IO;
	fp = fopen(path, "re");
	if (!fp) {
		if (errno == ENOENT)
			return MDM_OK;
		log_err("trans: cannot open %s: %s", path, strerror(errno));
		return MDM_ERR_IO;
	}
	while (e == MDM_OK && (len = getline(&line, &cap, fp)) >= 0) {
		json_t *o = NULL;
		enum mdm_err le = MDM_ERR_PARSE;

		lineno++;
		if ((size_t)len <= LINE_MAX_BYTES)
			o = json_loadb(line, (size_t)len, JSON_REJECT_DUPLICATES, NULL);
		if (lineno == 1 && o && header_ok(o, format, &t->held_since_ms)) {
			json_decref(o);
			continue;
		}
		if (lineno == 1 && o && json_object_get(o, "format")) {
			log_err("trans: %s: not a version %d %s file: ignored (no previous state)",
				path, TRANS_FORMAT_VERSION, format);
			json_decref(o);
			break;
		}
		if (o)
			le = fn(t, o);
		json_decref(o);
		if (le == MDM_ERR_NOMEM)
			e = le;
		else if (le == MDM_OK)
			good++;
		else if (++bad <= 5)
			log_warn("trans: %s: line %zu dropped (torn or corrupt)", path, lineno);
	}
	free(line);
	fclose(fp);
	if (bad)
		log_err("trans: %s: %zu lines dropped, %zu kept: the dropped devices have no "
			"previous state (no CoA for them next cycle)",
			path, bad, good);
	*dropped += bad;
	return e;
}

enum mdm_err trans_load(struct trans *t, size_t *dropped)
{
	size_t d = 0;
	enum mdm_err e;

	pthread_mutex_lock(&t->mu);
	e = load_file(t, TRANS_FILE, "mdmgw-trans", load_rec, &d);
	if (e == MDM_OK)
		e = load_file(t, TRANS_HELD_FILE, "mdmgw-trans-held", load_held_line, &d);
	if (t->nheld && !t->held_since_ms)
		t->held_since_ms = clock_wall_ms();
	if (t->nheld)
		log_err("trans: %zu CoA events held by the change guard since before the restart: "
			"POST /api/v1/reconciler/release lets them go",
			t->nheld);
	pthread_mutex_unlock(&t->mu);
	if (dropped)
		*dropped = d;
	return e;
}

/* --- transitions ------------------------------------------------------------------------------ */

/* The changes between a record's state and a present device's (both values must be set). */
static uint32_t changes_of(const struct trans *t, const struct rec *r, const struct trans_dev *d)
{
	uint32_t what = 0;

	if (r->registered == TRI_TRUE && d->registered == TRI_FALSE)
		what |= CH_UNREG;
	if (d->jail_broken == TRI_TRUE && r->jail_broken != TRI_TRUE)
		what |= CH_JAIL;
	if (r->compliant == TRI_TRUE && d->compliant == TRI_FALSE)
		what |= CH_NONCOMPLIANT;
	if (r->compliant == TRI_FALSE && d->compliant == TRI_TRUE && t->cfg.coa_on_compliant)
		what |= CH_COMPLIANT;
	return what;
}

/* update: the record takes the device's reported values (unset ones keep the last known). */
static enum mdm_err update(struct trans *t, struct rec *r, const struct trans_dev *d, uint64_t gen,
			   int64_t now)
{
	if (d->registered != TRI_UNSET)
		r->registered = (uint8_t)d->registered;
	if (d->compliant != TRI_UNSET)
		r->compliant = (uint8_t)d->compliant;
	if (d->jail_broken != TRI_UNSET)
		r->jail_broken = (uint8_t)d->jail_broken;
	r->gen = gen;
	r->seen_ms = now;
	r->cycle = t->cycle;
	if (d->mac && *d->mac && intern(t, d->mac, &r->mac))
		return MDM_ERR_NOMEM;
	if (d->guid && *d->guid && intern(t, d->guid, &r->guid))
		return MDM_ERR_NOMEM;
	return intern(t, d->source, &r->source);
}

static void set_pair(struct transition *ev, const char *from, const char *to)
{
	str_copy(ev->from, sizeof(ev->from), from);
	str_copy(ev->to, sizeof(ev->to), to);
}

/* make_event: the one event of a device's changes, the most severe first. */
static void make_event(const struct trans *t, const struct rec *r, uint32_t what, uint64_t gen,
		       uint64_t epoch, int64_t now, struct transition *ev)
{
	const char *src = str_at(t, r->source), *also = "";

	memset(ev, 0, sizeof(*ev));
	snprintf(ev->id, sizeof(ev->id), "%s@%" PRIu64, str_at(t, r->key), gen);
	str_copy(ev->mac, sizeof(ev->mac), str_at(t, r->mac));
	str_copy(ev->guid, sizeof(ev->guid), str_at(t, r->guid));
	ev->kind = TRANSITION_REAUTH;
	ev->at_ms = now;
	ev->epoch = epoch;
	if (what & CH_UNREG) {
		set_pair(ev, "registered", "unregistered");
		if (t->cfg.unregistered_disconnect)
			ev->kind = TRANSITION_DISCONNECT;
		snprintf(ev->reason, sizeof(ev->reason), "%s in %s",
			 what & CH_ABSENT ? "absent from a complete listing" : "unregistered",
			 *src ? src : "?");
	} else if (what & CH_JAIL) {
		set_pair(ev, "not_jailbroken", "jailbroken");
		snprintf(ev->reason, sizeof(ev->reason), "jail-broken in %s", src);
	} else if (what & CH_NONCOMPLIANT) {
		set_pair(ev, "compliant", "noncompliant");
		snprintf(ev->reason, sizeof(ev->reason), "compliance lost in %s", src);
	} else {
		set_pair(ev, "noncompliant", "compliant");
		snprintf(ev->reason, sizeof(ev->reason), "compliance regained in %s", src);
	}
	if ((what & (CH_UNREG | CH_JAIL)) && (what & CH_NONCOMPLIANT))
		also = "; also non-compliant";
	else if ((what & CH_UNREG) && (what & CH_JAIL))
		also = "; also jail-broken";
	if (*also) {
		size_t l = strlen(ev->reason);

		str_copy(ev->reason + l, sizeof(ev->reason) - l, also);
	}
}

static enum mdm_err hold(struct trans *t, const struct transition *ev)
{
	if (t->nheld == t->hcap) {
		size_t cap = t->hcap ? t->hcap * 2 : 64;
		struct transition *n = realloc(t->held, cap * sizeof(*n));

		if (!n)
			return MDM_ERR_NOMEM;
		t->held = n;
		t->hcap = cap;
	}
	t->held[t->nheld++] = *ev;
	return MDM_OK;
}

static bool in_list(const uint32_t *l, size_t n, uint32_t v)
{
	for (size_t i = 0; i < n; i++)
		if (l[i] == v)
			return true;
	return false;
}

struct cycle_work {
	struct change *ch;
	size_t n, cap;
	uint32_t *stale; /* interned sources with stale rows this cycle */
	size_t nstale, stale_cap;
};

static enum mdm_err push_change(struct cycle_work *w, size_t rec, uint32_t what)
{
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 256;
		struct change *n = realloc(w->ch, cap * sizeof(*n));

		if (!n)
			return MDM_ERR_NOMEM;
		w->ch = n;
		w->cap = cap;
	}
	w->ch[w->n].rec = (uint32_t)rec;
	w->ch[w->n++].what = what;
	return MDM_OK;
}

static enum mdm_err note_stale(struct trans *t, struct cycle_work *w, const char *source)
{
	uint32_t s;

	if (intern(t, source, &s))
		return MDM_ERR_NOMEM;
	if (in_list(w->stale, w->nstale, s))
		return MDM_OK;
	if (w->nstale == w->stale_cap) {
		size_t cap = w->stale_cap ? w->stale_cap * 2 : 16;
		uint32_t *n = realloc(w->stale, cap * sizeof(*n));

		if (!n)
			return MDM_ERR_NOMEM;
		w->stale = n;
		w->stale_cap = cap;
	}
	w->stale[w->nstale++] = s;
	return MDM_OK;
}

/* compare: pass over the present devices; records the changes and updates the state. */
static enum mdm_err compare(struct trans *t, struct cycle_work *w, uint64_t gen,
			    const struct trans_dev *devs, size_t n, int64_t now)
{
	size_t skipped = 0;

	for (size_t i = 0; i < n; i++) {
		const struct trans_dev *d = &devs[i];
		struct rec *r;
		uint32_t what;

		if (!d->key || !*d->key || strlen(d->key) > KEY_MAX || !d->source) {
			skipped++;
			continue;
		}
		r = find(t, d->key);
		if (d->stale) {
			/* an old row: present, but it says nothing new */
			if (note_stale(t, w, d->source))
				return MDM_ERR_NOMEM;
			if (r)
				r->cycle = t->cycle;
			continue;
		}
		if (r && r->cycle == t->cycle)
			continue; /* the same device twice in one generation: first wins */
		if (!r) {
			if (add(t, d->key, &r) || update(t, r, d, gen, now))
				return MDM_ERR_NOMEM;
			continue; /* first sight: no previous state, no transition */
		}
		what = changes_of(t, r, d);
		if (update(t, r, d, gen, now))
			return MDM_ERR_NOMEM;
		if (what && push_change(w, (size_t)(r - t->recs), what))
			return MDM_ERR_NOMEM;
	}
	if (skipped)
		log_warn("trans: generation %" PRIu64 ": %zu rows without a usable key skipped",
			 gen, skipped);
	return MDM_OK;
}

/* absent: registered devices of sources that listed fully, missing from this generation. */
static enum mdm_err absent(struct trans *t, struct cycle_work *w, size_t known)
{
	for (size_t i = 0; i < known; i++) {
		struct rec *r = &t->recs[i];

		if (r->cycle == t->cycle || r->registered != TRI_TRUE ||
		    in_list(w->stale, w->nstale, r->source))
			continue;
		r->registered = TRI_FALSE;
		if (push_change(w, i, CH_UNREG | CH_ABSENT))
			return MDM_ERR_NOMEM;
	}
	return MDM_OK;
}

/* let_go: emits the cycle's events, or holds them when the guard says so. */
static enum mdm_err let_go(struct trans *t, const struct cycle_work *w, uint64_t gen,
			   uint64_t epoch, size_t known, int64_t now)
{
	double share = known ? (double)w->n / (double)known : 0.0;
	bool engaged = t->nheld > 0;
	bool trips = known >= t->cfg.guard_min && share > t->cfg.guard_share;
	struct transition ev;
	enum mdm_err e = MDM_OK;

	t->last_share = share;
	if (!w->n)
		return MDM_OK;
	for (size_t i = 0; i < w->n; i++) {
		make_event(t, &t->recs[w->ch[i].rec], w->ch[i].what, gen, epoch, now, &ev);
		if (!(engaged || trips)) {
			transition_emit(&t->sink, &ev);
			continue;
		}
		if (hold(t, &ev))
			return MDM_ERR_NOMEM;
	}
	if (!(engaged || trips))
		return MDM_OK;
	if (!engaged)
		t->held_since_ms = now;
	if (engaged)
		log_err(
		    "trans: change guard still engaged: generation %" PRIu64
		    ": %zu new transitions join the held batch, now %zu CoA events (epoch %" PRIu64
		    ")",
		    gen, w->n, t->nheld, epoch);
	else
		log_err(
		    "trans: change guard engaged: generation %" PRIu64
		    ": %zu transitions of %zu known devices (%.1f %% > %.1f %%); %zu CoA events "
		    "held; POST /api/v1/reconciler/release lets them go (epoch %" PRIu64 ")",
		    gen, w->n, known, share * 100.0, t->cfg.guard_share * 100.0, t->nheld, epoch);
	e = save_held(t);
	return e;
}

enum mdm_err trans_cycle(struct trans *t, uint64_t gen, const struct trans_dev *devs, size_t n,
			 bool complete, uint64_t epoch, size_t *ntrans)
{
	struct cycle_work w;
	int64_t now = clock_wall_ms();
	size_t known;
	enum mdm_err e, se;

	memset(&w, 0, sizeof(w));
	if (ntrans)
		*ntrans = 0;
	pthread_mutex_lock(&t->mu);
	known = t->nrecs;
	t->cycle++;
	t->epoch = epoch;
	e = compare(t, &w, gen, devs, n, now);
	if (e == MDM_OK && complete)
		e = absent(t, &w, known);
	if (e == MDM_OK)
		e = let_go(t, &w, gen, epoch, known, now);
	t->last_gen = gen;
	t->last_transitions = w.n;
	t->had_cycle = true;
	se = save_devices(t);
	pthread_mutex_unlock(&t->mu);
	if (ntrans)
		*ntrans = w.n;
	free(w.ch);
	free(w.stale);
	return e ? e : se;
}

/* --- admin block, release, status ------------------------------------------------------------ */

static bool is_mac(const char *s)
{
	if (strlen(s) != MAC_STR_LEN)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'A' && *s <= 'F')))
			return false;
	return true;
}

/* The record of a device named by key, one of its MACs or its GUID; NULL when unknown. */
static const struct rec *find_any(const struct trans *t, const char *what)
{
	char key[KEY_MAX + 8];
	const struct rec *r = find(t, what);

	if (r)
		return r;
	if (snprintf(key, sizeof(key), "guid:%s", what) < (int)sizeof(key) && (r = find(t, key)))
		return r;
	for (size_t i = 0; i < t->nrecs; i++)
		if (strcmp(str_at(t, t->recs[i].mac), what) == 0 ||
		    strcmp(str_at(t, t->recs[i].guid), what) == 0)
			return &t->recs[i];
	return NULL;
}

enum mdm_err trans_block(struct trans *t, const char *what, bool blocked, uint64_t epoch)
{
	struct transition ev;
	const struct rec *r;
	int64_t now = clock_wall_ms();
	char key[KEY_MAX + 8];

	if (!what || !*what || strlen(what) > GUID_MAX)
		return MDM_ERR_INVALID;
	memset(&ev, 0, sizeof(ev));
	pthread_mutex_lock(&t->mu);
	r = find_any(t, what);
	if (r) {
		str_copy(key, sizeof(key), str_at(t, r->key));
		str_copy(ev.mac, sizeof(ev.mac), str_at(t, r->mac));
		str_copy(ev.guid, sizeof(ev.guid), str_at(t, r->guid));
	} else if (is_mac(what)) {
		str_copy(key, sizeof(key), what);
		str_copy(ev.mac, sizeof(ev.mac), what);
	} else {
		snprintf(key, sizeof(key), "guid:%s", what);
		str_copy(ev.guid, sizeof(ev.guid), what);
	}
	snprintf(ev.id, sizeof(ev.id), "%s@block:%" PRId64, key, now);
	set_pair(&ev, blocked ? "unblocked" : "blocked", blocked ? "blocked" : "unblocked");
	snprintf(ev.reason, sizeof(ev.reason), "%s by administrator",
		 blocked ? "blocked" : "unblocked");
	ev.kind = TRANSITION_REAUTH;
	ev.at_ms = now;
	ev.epoch = epoch;
	log_info("trans: %s %s: CoA event %s (epoch %" PRIu64 ")", ev.to, what, ev.id, epoch);
	transition_emit(&t->sink, &ev);
	pthread_mutex_unlock(&t->mu);
	return MDM_OK;
}

enum mdm_err trans_release(struct trans *t, size_t *n)
{
	enum mdm_err e;

	*n = 0;
	pthread_mutex_lock(&t->mu);
	if (!t->nheld) {
		pthread_mutex_unlock(&t->mu);
		return MDM_ERR_NOTFOUND;
	}
	log_warn("trans: change guard released: %zu CoA events let go (epoch %" PRIu64 ")",
		 t->nheld, t->epoch);
	for (size_t i = 0; i < t->nheld; i++) {
		t->held[i].epoch = t->epoch;
		transition_emit(&t->sink, &t->held[i]);
	}
	*n = t->nheld;
	t->nheld = 0;
	t->held_since_ms = 0;
	e = save_held(t);
	pthread_mutex_unlock(&t->mu);
	return e;
}

enum mdm_err trans_status_json(struct trans *t, struct buf *b)
{
	char since[CLOCK_ISO_SIZE];
	enum mdm_err e;

	pthread_mutex_lock(&t->mu);
	if (!t->held_since_ms || clock_iso(t->held_since_ms, since) != MDM_OK)
		since[0] = '\0';
	e = buf_addf(b, "{\"devices\":%zu,\"held\":%zu,\"held_since\":", t->nrecs, t->nheld);
	e = e ? e : since[0] ? jstr(b, since) : buf_addstr(b, "null");
	if (!e && t->had_cycle)
		e = buf_addf(
		    b, ",\"last_cycle\":{\"gen\":%" PRIu64 ",\"transitions\":%zu,\"share\":%.4f}}",
		    t->last_gen, t->last_transitions, t->last_share);
	else if (!e)
		e = buf_addstr(b, ",\"last_cycle\":null}");
	pthread_mutex_unlock(&t->mu);
	return e;
}
