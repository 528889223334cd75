#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../core/buf.h"
#include "../../core/clock.h"
#include "../../core/ident.h"
#include "../../core/log.h"
#include "block.h"

#define BPATH_MAX 4096
#define BLOCK_FILE_MAX ((size_t)1 << 30)

struct block {
	pthread_rwlock_t lock;
	pthread_mutex_t write_mu; /* one writer rewrites the file at a time */
	char dir[BPATH_MAX];
	struct block_entry *ents; /* in the order blocked */
	size_t n, cap;
	uint32_t *index;  /* open addressing: 1 + index into ents; 0 empty */
	size_t index_cap; /* power of two, at least twice n */
};

static uint64_t hash_of(const char *device)
{
	return ident_hash(0, device);
}

static enum mdm_err index_rebuild(struct block *b, size_t want)
{
	size_t cap = 64;
	uint32_t *idx;

	while (cap < want * 2 + 2)
		cap *= 2;
	idx = calloc(cap, sizeof(*idx));
	if (!idx)
		return MDM_ERR_NOMEM;
	for (size_t i = 0; i < b->n; i++) {
		size_t s = hash_of(b->ents[i].device) & (cap - 1);

		while (idx[s])
			s = (s + 1) & (cap - 1);
		idx[s] = (uint32_t)(i + 1);
	}
	free(b->index);
	b->index = idx;
	b->index_cap = cap;
	return MDM_OK;
}

/* The position of device in ents, or -1. */
static long find(const struct block *b, const char *device)
{
	size_t s;

	if (!b->index_cap || !*device)
		return -1;
	for (s = hash_of(device) & (b->index_cap - 1); b->index[s];
	     s = (s + 1) & (b->index_cap - 1))
		if (strcmp(b->ents[b->index[s] - 1].device, device) == 0)
			return (long)b->index[s] - 1;
	return -1;
}

/* --- the file ------------------------------------------------------------------------------ */

static enum mdm_err path_of(const struct block *b, const char *name, char out[BPATH_MAX])
{
	int n = snprintf(out, BPATH_MAX, "%s/%s", b->dir, name);

	return n > 0 && n < BPATH_MAX ? MDM_OK : MDM_ERR_TOOBIG;
}

static json_t *entry_json(const struct block_entry *e)
{
	json_t *o = json_pack("{s:s, s:s, s:I}", "device", e->device, "by", e->by, "at",
			      (json_int_t)e->at_ms);

	if (o && e->has_note && json_object_set_new(o, "note", json_string(e->note)) != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/*
 * Writes ents[0..n) atomically, with entry at (-1: none) left out, or replaced by extra when
 * extra is given; with at -1, extra (if given) goes last.
 */
static enum mdm_err save(struct block *b, long at, const struct block_entry *extra, char *why,
			 size_t whysz)
{
	char tmp[BPATH_MAX], dst[BPATH_MAX];
	json_t *root = json_object(), *arr = json_array();
	char *text = NULL;
	enum mdm_err e = MDM_ERR_NOMEM;
	size_t len;
	int fd = -1;

	if (!root || !arr || json_object_set_new(root, "blocks", arr) != 0) {
		json_decref(arr);
		goto out;
	}
	for (size_t i = 0; i < b->n; i++) {
		const struct block_entry *ent = (long)i == at ? extra : &b->ents[i];

		if (ent && json_array_append_new(arr, entry_json(ent)) != 0)
			goto out;
	}
	if (at < 0 && extra && json_array_append_new(arr, entry_json(extra)) != 0)
		goto out;
	text = json_dumps(root, JSON_INDENT(1) | JSON_ENSURE_ASCII);
	if (!text)
		goto out;
	e = MDM_ERR_IO;
	if (path_of(b, BLOCK_FILE ".new", tmp) || path_of(b, BLOCK_FILE, dst)) {
		snprintf(why, whysz, "blocks: state directory path is too long");
		goto out;
	}
	len = strlen(text);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		goto fail;
	for (size_t off = 0; off < len;) {
		ssize_t w = write(fd, text + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto fail;
		off += (size_t)w;
	}
	if (write(fd, "\n", 1) != 1 || fsync(fd) != 0)
		goto fail;
	close(fd);
	fd = -1;
	if (rename(tmp, dst) != 0)
		goto fail;
	fd = open(b->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) != 0)
		goto fail;
	e = MDM_OK;
	goto out;
fail:
	snprintf(why, whysz, "blocks: cannot write %s: %s", dst, strerror(errno));
	unlink(tmp);
out:
	if (fd >= 0)
		close(fd);
	free(text);
	json_decref(root);
	return e;
}

static enum mdm_err load_entry(struct block *b, json_t *o, size_t i, const char *path, char *why,
			       size_t whysz)
{
	struct block_entry *e = &b->ents[b->n];
	json_t *dev = json_object_get(o, "device"), *by = json_object_get(o, "by"),
	       *at = json_object_get(o, "at"), *note = json_object_get(o, "note");

	memset(e, 0, sizeof(*e));
	if (!json_is_object(o) || json_object_size(o) != 3u + (note != NULL) ||
	    !json_is_string(dev) || !json_is_string(by) || !json_is_integer(at) ||
	    (note && !json_is_string(note)) ||
	    str_copy(e->device, sizeof(e->device), json_string_value(dev)) ||
	    str_copy(e->by, sizeof(e->by), json_string_value(by)) || !e->device[0] ||
	    (note && str_copy(e->note, sizeof(e->note), json_string_value(note)))) {
		snprintf(why, whysz,
			 "%s: blocks[%zu]: must be {\"device\", \"by\", \"at\", \"note\"} within "
			 "bounds",
			 path, i);
		return MDM_ERR_PARSE;
	}
	e->at_ms = json_integer_value(at);
	e->has_note = note != NULL;
	if (find(b, e->device) >= 0) {
		snprintf(why, whysz, "%s: blocks[%zu]: device %s listed twice", path, i, e->device);
		return MDM_ERR_PARSE;
	}
	b->n++;
	return index_rebuild(b, b->n) == MDM_OK ? MDM_OK : MDM_ERR_NOMEM;
}

static enum mdm_err load(struct block *b, char *why, size_t whysz)
{
	char path[BPATH_MAX];
	json_error_t jerr;
	json_t *root, *arr, *o;
	enum mdm_err e = MDM_OK;
	size_t i;

	if (path_of(b, BLOCK_FILE, path)) {
		snprintf(why, whysz, "blocks: state directory path is too long");
		return MDM_ERR_IO;
	}
	if (access(path, F_OK) != 0 && errno == ENOENT)
		return MDM_OK;
	root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		snprintf(
		    why, whysz,
		    "%s: line %d column %d: %s (a torn or corrupt block list: restore it from a "
		    "backup, or fix it by hand)",
		    path, jerr.line, jerr.column, jerr.text);
		return MDM_ERR_PARSE;
	}
	arr = json_object_get(root, "blocks");
	if (!json_is_object(root) || json_object_size(root) != 1 || !json_is_array(arr) ||
	    json_array_size(arr) > BLOCK_MAX) {
		snprintf(why, whysz, "%s: must be an object {\"blocks\": [...]}", path);
		json_decref(root);
		return MDM_ERR_PARSE;
	}
	b->cap = json_array_size(arr) + 16;
	b->ents = calloc(b->cap, sizeof(*b->ents));
	if (!b->ents)
		e = MDM_ERR_NOMEM;
	json_array_foreach(arr, i, o)
	{
		if (e)
			break;
		e = load_entry(b, o, i, path, why, whysz);
	}
	json_decref(root);
	if (e == MDM_OK)
		e = index_rebuild(b, b->n);
	if (e == MDM_ERR_NOMEM)
		snprintf(why, whysz, "%s: out of memory", path);
	return e;
}

/* --- the API ------------------------------------------------------------------------------- */

enum mdm_err block_open(const char *dir, struct block **out, char *why, size_t whysz)
{
	struct block *b = calloc(1, sizeof(*b));
	enum mdm_err e;

	*out = NULL;
	if (!b) {
		snprintf(why, whysz, "blocks: out of memory");
		return MDM_ERR_NOMEM;
	}
	pthread_rwlock_init(&b->lock, NULL);
	pthread_mutex_init(&b->write_mu, NULL);
	if (str_copy(b->dir, sizeof(b->dir), dir) != MDM_OK) {
		snprintf(why, whysz, "blocks: state directory path is too long");
		block_close(b);
		return MDM_ERR_TOOBIG;
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(why, whysz, "blocks: cannot create %s: %s", dir, strerror(errno));
		block_close(b);
		return MDM_ERR_IO;
	}
	e = load(b, why, whysz);
	if (e) {
		block_close(b);
		return e;
	}
	if (b->n)
		log_info("blocks: %zu devices blocked by administrators", b->n);
	*out = b;
	return MDM_OK;
}

void block_close(struct block *b)
{
	if (!b)
		return;
	free(b->ents);
	free(b->index);
	pthread_rwlock_destroy(&b->lock);
	pthread_mutex_destroy(&b->write_mu);
	free(b);
}

enum mdm_err block_add(struct block *b, const char *device, const char *user, const char *note,
		       struct block_entry *out, char *why, size_t whysz)
{
	struct block_entry ne;
	enum mdm_err e;
	long at;

	memset(&ne, 0, sizeof(ne));
	if (!*device || str_copy(ne.device, sizeof(ne.device), device) ||
	    str_copy(ne.by, sizeof(ne.by), user ? user : "")) {
		snprintf(why, whysz, "device or user name is empty or too long");
		return MDM_ERR_INVALID;
	}
	if (note && str_copy(ne.note, sizeof(ne.note), note)) {
		snprintf(why, whysz, "note is longer than %d bytes", BLOCK_NOTE_MAX);
		return MDM_ERR_TOOBIG;
	}
	ne.has_note = note != NULL;
	ne.at_ms = clock_wall_ms();
	pthread_mutex_lock(&b->write_mu);
	/* Only writers change the set and they hold write_mu: reading it here needs no lock. */
	at = find(b, device);
	if (at < 0 && b->n >= BLOCK_MAX) {
		snprintf(why, whysz, "more than %d devices blocked", BLOCK_MAX);
		e = MDM_ERR_TOOBIG;
		goto out;
	}
	e = save(b, at, &ne, why, whysz);
	if (e)
		goto out;
	pthread_rwlock_wrlock(&b->lock);
	if (at >= 0) {
		/* Kept where it was: the file lists it last, the next save puts it back in order.
		 */
		b->ents[at] = ne;
	} else if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 16;
		struct block_entry *ents = realloc(b->ents, cap * sizeof(*ents));

		if (!ents)
			e = MDM_ERR_NOMEM;
		else {
			b->ents = ents;
			b->cap = cap;
		}
	}
	if (!e && at < 0) {
		b->ents[b->n++] = ne;
		e = index_rebuild(b,
				  b->n); /* frees nothing on failure: the old index still works */
		if (e)
			b->n--;
	}
	pthread_rwlock_unlock(&b->lock);
	if (e) {
		snprintf(why, whysz, "out of memory");
		save(b, -1, NULL, why, whysz); /* the file back to what memory holds */
	} else if (out) {
		*out = ne;
	}
out:
	pthread_mutex_unlock(&b->write_mu);
	return e;
}

enum mdm_err block_remove(struct block *b, const char *device, char *why, size_t whysz)
{
	enum mdm_err e;
	long at;

	pthread_mutex_lock(&b->write_mu);
	at = find(b, device);
	if (at < 0) {
		snprintf(why, whysz, "%s is not blocked", device);
		e = MDM_ERR_NOTFOUND;
		goto out;
	}
	e = save(b, at, NULL, why, whysz);
	if (e)
		goto out;
	pthread_rwlock_wrlock(&b->lock);
	memmove(&b->ents[at], &b->ents[at + 1], (b->n - (size_t)at - 1) * sizeof(*b->ents));
	b->n--;
	if (index_rebuild(b, b->n) != MDM_OK) {
		/* No memory for a new index: clear the old one's slots in place instead. */
		memset(b->index, 0, b->index_cap * sizeof(*b->index));
		for (size_t i = 0; i < b->n; i++) {
			size_t s = hash_of(b->ents[i].device) & (b->index_cap - 1);

			while (b->index[s])
				s = (s + 1) & (b->index_cap - 1);
			b->index[s] = (uint32_t)(i + 1);
		}
	}
	pthread_rwlock_unlock(&b->lock);
out:
	pthread_mutex_unlock(&b->write_mu);
	return e;
}

bool block_has(struct block *b, const char *device)
{
	bool has;

	if (!b)
		return false;
	pthread_rwlock_rdlock(&b->lock);
	has = find(b, device) >= 0;
	pthread_rwlock_unlock(&b->lock);
	return has;
}

bool block_device(struct block *b, const struct device *d)
{
	bool has = false;

	if (!b)
		return false;
	pthread_rwlock_rdlock(&b->lock);
	if (b->n) {
		for (unsigned i = 0; i < d->nmacs && !has; i++)
			has = find(b, d->macs[i]) >= 0;
		if (!has && d->guid[0])
			has = find(b, d->guid) >= 0;
	}
	pthread_rwlock_unlock(&b->lock);
	return has;
}

bool block_apply(struct block *b, struct device *d)
{
	if (!block_device(b, d))
		return false;
	d->compliant = TRI_FALSE;
	str_copy(d->failure_reason, sizeof(d->failure_reason), BLOCK_REASON);
	d->remediation[0] = '\0';
	return true;
}

size_t block_count(struct block *b)
{
	size_t n;

	if (!b)
		return 0;
	pthread_rwlock_rdlock(&b->lock);
	n = b->n;
	pthread_rwlock_unlock(&b->lock);
	return n;
}

enum mdm_err block_list(struct block *b, block_cb cb, void *arg)
{
	enum mdm_err e = MDM_OK;

	pthread_rwlock_rdlock(&b->lock);
	for (size_t i = 0; i < b->n && !e; i++)
		e = cb(&b->ents[i], arg);
	pthread_rwlock_unlock(&b->lock);
	return e;
}
