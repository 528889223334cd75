/*
 * publish: chunked snapshot generations in the cache (see publish.h).
 *
 * Chunks travel base64-encoded: the memcached tier takes UTF-8 values only (they are a JSON
 * string in its tagged envelope), and serialized snapshots are bytes. Every write goes through
 * cache_cas(CACHE_CAS_ANY), which reports memcached trouble where cache_put would drop it, so
 * a publish that lost a chunk never moves the pointer. Reads use cache_get_cas, which asks
 * memcached itself: an in-process tier in front must not answer an old pointer.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "../../core/clock.h"
#include "../../core/log.h"
#include "publish.h"

#define B64_CHUNK (PUBLISH_CHUNK / 3 * 4)
#define SHA_HEX 64
#define NCHUNKS_MAX ((size_t)1 << 20)

/* --- keys and digests ------------------------------------------------------------------------ */

/* "<ns>:snap:<gen>:<i>" (i == SIZE_MAX: "manifest"; gen == 0: "<ns>:snap:latest"). */
static enum mdm_err key_of(char out[CACHE_KEY_MAX + 1], const char *ns, uint64_t gen, size_t i)
{
	int n;

	if (gen == 0)
		n = snprintf(out, CACHE_KEY_MAX + 1, "%s:snap:latest", ns);
	else if (i == SIZE_MAX)
		n = snprintf(out, CACHE_KEY_MAX + 1, "%s:snap:%" PRIu64 ":manifest", ns, gen);
	else
		n = snprintf(out, CACHE_KEY_MAX + 1, "%s:snap:%" PRIu64 ":%zu", ns, gen, i);
	if (n <= 0 || (size_t)n > CACHE_KEY_MAX || !cache_key_valid(out))
		return MDM_ERR_INVALID;
	return MDM_OK;
}

static enum mdm_err sha256_hex(const void *bytes, size_t len, char hex[SHA_HEX + 1])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (EVP_Digest(bytes, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
		return MDM_ERR_INTERNAL;
	for (unsigned i = 0; i < 32; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[SHA_HEX] = '\0';
	return MDM_OK;
}

static size_t chunks_for(size_t len)
{
	return len / PUBLISH_CHUNK + (len % PUBLISH_CHUNK != 0);
}

/* --- writing --------------------------------------------------------------------------------- */

/* Writes a JSON object under key, compact; takes j over. */
static enum mdm_err put_json(struct cache *c, const char *key, json_t *j, int64_t ttl_ms)
{
	char *s;
	enum mdm_err err;

	if (!j)
		return MDM_ERR_NOMEM;
	s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!s)
		return MDM_ERR_NOMEM;
	err = cache_cas(c, key, s, strlen(s), ttl_ms, CACHE_CAS_ANY);
	free(s);
	return err;
}

static enum mdm_err put_chunks(struct cache *c, const char *ns, uint64_t gen,
			       const unsigned char *bytes, size_t len, int64_t ttl_ms)
{
	char key[CACHE_KEY_MAX + 1];
	char *b64 = malloc(B64_CHUNK + 1);
	enum mdm_err err = b64 ? MDM_OK : MDM_ERR_NOMEM;

	for (size_t i = 0; !err && i < chunks_for(len); i++) {
		size_t off = i * PUBLISH_CHUNK;
		size_t n = len - off < PUBLISH_CHUNK ? len - off : PUBLISH_CHUNK;
		int blen = EVP_EncodeBlock((unsigned char *)b64, bytes + off, (int)n);

		err = key_of(key, ns, gen, i);
		if (!err)
			err = cache_cas(c, key, b64, (size_t)blen, ttl_ms, CACHE_CAS_ANY);
		if (err)
			log_warn("publish: generation %" PRIu64 ": chunk %zu not written: %s", gen,
				 i, err_str(err));
	}
	free(b64);
	return err;
}

enum mdm_err publish_put(struct cache *c, const char *ns, uint64_t gen, const void *bytes,
			 size_t len, int64_t ttl_ms, size_t max_bytes)
{
	char key[CACHE_KEY_MAX + 1], sha[SHA_HEX + 1];
	enum mdm_err err;

	if (!c || !ns || gen == 0 || (len && !bytes) || ttl_ms <= 0)
		return MDM_ERR_INVALID;
	if (len > max_bytes)
		return MDM_ERR_TOOBIG;
	err = sha256_hex(bytes ? bytes : "", len, sha);
	if (!err)
		err = put_chunks(c, ns, gen, bytes, len, ttl_ms);
	if (!err)
		err = key_of(key, ns, gen, SIZE_MAX);
	/* The manifest after every chunk, the pointer after the manifest: see publish.h. */
	if (!err)
		err = put_json(c, key,
			       json_pack("{s:I,s:I,s:I,s:s}", "gen", (json_int_t)gen, "nchunks",
					 (json_int_t)chunks_for(len), "len", (json_int_t)len,
					 "sha256", sha),
			       ttl_ms);
	if (!err)
		err = key_of(key, ns, 0, 0);
	if (!err)
		err = put_json(c, key, json_pack("{s:I}", "gen", (json_int_t)gen), ttl_ms);
	if (err)
		log_warn("publish: generation %" PRIu64 " (%zu bytes) not published: %s", gen, len,
			 err_str(err));
	return err;
}

/* --- reading --------------------------------------------------------------------------------- */

struct manifest {
	uint64_t gen;
	size_t nchunks, len;
	char sha[SHA_HEX + 1];
};

/* Reads key as JSON into *j: MDM_ERR_NOTFOUND, MDM_ERR_PARSE or what the cache said. */
static enum mdm_err get_json(struct cache *c, const char *key, json_t **j)
{
	struct cache_entry e;
	uint64_t cas = 0;
	enum mdm_err err = cache_get_cas(c, key, &e, &cas);

	*j = NULL;
	if (err)
		return err;
	*j = json_loadb(e.val, e.len, JSON_REJECT_DUPLICATES, NULL);
	cache_entry_clear(&e);
	return *j ? MDM_OK : MDM_ERR_PARSE;
}

static enum mdm_err latest_gen(struct cache *c, const char *ns, uint64_t *gen)
{
	char key[CACHE_KEY_MAX + 1];
	json_int_t g = 0;
	json_t *j = NULL;
	enum mdm_err err = key_of(key, ns, 0, 0);

	if (!err)
		err = get_json(c, key, &j);
	if (!err && (json_unpack(j, "{s:I}", "gen", &g) != 0 || g <= 0))
		err = MDM_ERR_PARSE;
	json_decref(j);
	*gen = (uint64_t)g;
	return err;
}

static enum mdm_err manifest_read(struct cache *c, const char *ns, uint64_t gen, size_t max_bytes,
				  struct manifest *m)
{
	char key[CACHE_KEY_MAX + 1];
	json_int_t g = 0, nc = 0, len = 0;
	const char *sha = NULL;
	json_t *j = NULL;
	enum mdm_err err = key_of(key, ns, gen, SIZE_MAX);

	if (!err)
		err = get_json(c, key, &j);
	if (!err && json_unpack(j, "{s:I,s:I,s:I,s:s}", "gen", &g, "nchunks", &nc, "len", &len,
				"sha256", &sha) != 0)
		err = MDM_ERR_PARSE;
	if (!err && ((uint64_t)g != gen || nc < 0 || len < 0 || strlen(sha) != SHA_HEX))
		err = MDM_ERR_PARSE;
	if (!err && (uint64_t)len > max_bytes)
		err = MDM_ERR_TOOBIG;
	if (!err && (size_t)nc != chunks_for((size_t)len))
		err = MDM_ERR_PARSE;
	if (!err) {
		m->gen = gen;
		m->nchunks = (size_t)nc;
		m->len = (size_t)len;
		memcpy(m->sha, sha, SHA_HEX + 1);
	}
	json_decref(j);
	return err;
}

/* Decodes one chunk onto out; its size must be exactly want. */
static enum mdm_err chunk_take(const struct cache_entry *e, size_t want, struct buf *out)
{
	unsigned char *raw;
	size_t pad = 0;
	int n;
	enum mdm_err err;

	if (e->len != (want + 2) / 3 * 4 || e->len > B64_CHUNK)
		return MDM_ERR_PARSE;
	raw = malloc(e->len / 4 * 3 + 1);
	if (!raw)
		return MDM_ERR_NOMEM;
	n = EVP_DecodeBlock(raw, (const unsigned char *)e->val, (int)e->len);
	pad = (e->len && e->val[e->len - 1] == '=') + (e->len > 1 && e->val[e->len - 2] == '=');
	err = n < 0 || (size_t)n - pad != want ? MDM_ERR_PARSE : buf_add(out, raw, want);
	free(raw);
	return err;
}

static enum mdm_err chunks_read(struct cache *c, const char *ns, const struct manifest *m,
				struct buf *out, size_t *bad)
{
	char key[CACHE_KEY_MAX + 1];
	enum mdm_err err = buf_reserve(out, m->len + 1);

	for (size_t i = 0; !err && i < m->nchunks; i++) {
		struct cache_entry e;
		uint64_t cas = 0;
		size_t want = i + 1 < m->nchunks ? PUBLISH_CHUNK : m->len - i * PUBLISH_CHUNK;

		*bad = i;
		err = key_of(key, ns, m->gen, i);
		if (!err)
			err = cache_get_cas(c, key, &e, &cas);
		if (!err) {
			err = chunk_take(&e, want, out);
			cache_entry_clear(&e);
		}
	}
	return err;
}

enum mdm_err publish_get_latest(struct cache *c, const char *ns, uint64_t have_gen,
				size_t max_bytes, struct buf *out, uint64_t *gen)
{
	struct manifest m = {0};
	char sha[SHA_HEX + 1];
	size_t bad = 0;
	enum mdm_err err;

	if (!c || !ns || !out || !gen)
		return MDM_ERR_INVALID;
	buf_reset(out);
	err = latest_gen(c, ns, &m.gen);
	if (err == MDM_ERR_NOTFOUND || (!err && m.gen == have_gen))
		return MDM_ERR_NOTFOUND;
	if (err) {
		log_warn("publish: the latest pointer cannot be read: %s", err_str(err));
		return err;
	}
	err = manifest_read(c, ns, m.gen, max_bytes, &m);
	if (err == MDM_ERR_NOTFOUND)
		err = MDM_ERR_PARSE; /* incomplete: not "nothing newer" */
	if (err) {
		log_warn("publish: generation %" PRIu64
			 ": manifest %s; keeping generation %" PRIu64,
			 m.gen, err == MDM_ERR_TOOBIG ? "claims too many bytes" : "missing or bad",
			 have_gen);
		return err;
	}
	err = chunks_read(c, ns, &m, out, &bad);
	if (err == MDM_ERR_NOTFOUND)
		err = MDM_ERR_PARSE;
	if (err) {
		log_warn("publish: generation %" PRIu64 ": chunk %zu of %zu missing or bad (%s); "
			 "keeping generation %" PRIu64,
			 m.gen, bad, m.nchunks, err_str(err), have_gen);
		goto fail;
	}
	err = sha256_hex(out->len ? out->mem : "", out->len, sha);
	if (!err && (out->len != m.len || CRYPTO_memcmp(sha, m.sha, SHA_HEX) != 0)) {
		log_warn("publish: generation %" PRIu64 ": length or sha256 does not match the "
			 "manifest; keeping generation %" PRIu64,
			 m.gen, have_gen);
		err = MDM_ERR_PARSE;
	}
	if (err)
		goto fail;
	*gen = m.gen;
	return MDM_OK;
fail:
	buf_reset(out);
	return err;
}

enum mdm_err publish_drop(struct cache *c, const char *ns, uint64_t gen)
{
	char key[CACHE_KEY_MAX + 1];
	struct manifest m = {0};
	enum mdm_err err;

	if (!c || !ns || gen == 0)
		return MDM_ERR_INVALID;
	err = manifest_read(c, ns, gen, SIZE_MAX, &m);
	if (err)
		return err;
	/* The manifest first: a reader then stops at it instead of at a missing chunk. */
	err = key_of(key, ns, gen, SIZE_MAX);
	if (!err)
		err = cache_del(c, key);
	for (size_t i = 0; !err && i < m.nchunks; i++) {
		err = key_of(key, ns, gen, i);
		if (!err)
			err = cache_del(c, key);
	}
	return err;
}

/* --- the follower ---------------------------------------------------------------------------- */

struct publish_follow {
	struct publish_follow_config cfg;
	char ns[CACHE_KEY_MAX + 1];
	pthread_mutex_t mu;
	pthread_cond_t cv; /* on CLOCK_MONOTONIC */
	bool stop;
	uint64_t gen;
	pthread_t thread;
};

static void follow_once(struct publish_follow *f)
{
	struct buf b;
	uint64_t gen = 0, have;
	enum mdm_err err;

	if (f->cfg.skip && f->cfg.skip(f->cfg.arg))
		return;
	pthread_mutex_lock(&f->mu);
	have = f->gen;
	pthread_mutex_unlock(&f->mu);
	buf_init(&b, f->cfg.max_bytes + 2);
	err = publish_get_latest(f->cfg.cache, f->ns, have, f->cfg.max_bytes, &b, &gen);
	if (!err) {
		f->cfg.cb(f->cfg.arg, gen, b.mem ? b.mem : "", b.len);
		pthread_mutex_lock(&f->mu);
		f->gen = gen;
		pthread_mutex_unlock(&f->mu);
	}
	buf_free(&b);
}

static void *follow_thread(void *arg)
{
	struct publish_follow *f = arg;
	int64_t deadline;

	pthread_mutex_lock(&f->mu);
	while (!f->stop) {
		pthread_mutex_unlock(&f->mu);
		follow_once(f);
		pthread_mutex_lock(&f->mu);
		deadline = clock_mono_ms() + f->cfg.interval_ms;
		while (!f->stop && !clock_cond_wait_until(&f->cv, &f->mu, deadline))
			;
	}
	pthread_mutex_unlock(&f->mu);
	return NULL;
}

struct publish_follow *publish_follow_start(const struct publish_follow_config *cfg)
{
	struct publish_follow *f;

	if (!cfg || !cfg->cache || !cfg->ns || !cfg->cb || cfg->interval_ms <= 0 ||
	    cfg->max_bytes == 0 || cfg->max_bytes > SIZE_MAX / 2)
		return NULL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->cfg = *cfg;
	if (str_copy(f->ns, sizeof(f->ns), cfg->ns) != MDM_OK ||
	    clock_cond_init(&f->cv) != MDM_OK) {
		free(f);
		return NULL;
	}
	f->cfg.ns = f->ns;
	pthread_mutex_init(&f->mu, NULL);
	if (pthread_create(&f->thread, NULL, follow_thread, f) != 0) {
		pthread_mutex_destroy(&f->mu);
		pthread_cond_destroy(&f->cv);
		free(f);
		return NULL;
	}
	return f;
}

void publish_follow_stop(struct publish_follow *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->mu);
	f->stop = true;
	pthread_cond_signal(&f->cv);
	pthread_mutex_unlock(&f->mu);
	pthread_join(f->thread, NULL);
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->cv);
	free(f);
}

uint64_t publish_follow_gen(struct publish_follow *f)
{
	uint64_t g;

	pthread_mutex_lock(&f->mu);
	g = f->gen;
	pthread_mutex_unlock(&f->mu);
	return g;
}
