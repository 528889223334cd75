/*
 * memcached_value: the memcached tier's value envelope: compact JSON carrying the payload, its
 * times and an HMAC-SHA256 tag over key, times and payload (see memcached.c), and the memo of
 * values already verified.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "cache.h"
#include "memcached_int.h"

/* --- values -------------------------------------------------------------------------------- */

/* ms as whole seconds for memcached: rounded up, at least 1, below its 30-day limit. */
uint32_t mc_expiry_s(int64_t ms)
{
	int64_t s = ms / 1000 + (ms % 1000 > 0);

	if (s < 1)
		return 1;
	return s > EXPIRY_MAX_S ? EXPIRY_MAX_S : (uint32_t)s;
}

EVP_MAC_CTX *mc_mac_template(EVP_MAC *mac, const unsigned char *key, size_t keylen)
{
	char digest[] = "SHA256";
	OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
			       OSSL_PARAM_construct_end()};
	EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);

	if (ctx && EVP_MAC_init(ctx, key, keylen, params) != 1) {
		EVP_MAC_CTX_free(ctx);
		ctx = NULL;
	}
	return ctx;
}

/* The tag of (key, times, payload), as 64 lower-case hex digits and a NUL. */
static enum mdm_err tag_make(const struct mc *m, const char *key, int64_t at, int64_t fu,
			     int64_t su, const void *payload, size_t len, char hex[TAG_HEX + 1])
{
	static const char digits[] = "0123456789abcdef";
	char head[CACHE_KEY_MAX + 96];
	unsigned char md[TAG_LEN];
	size_t mdlen = 0;
	EVP_MAC_CTX *ctx;
	int hn, ok;

	hn = snprintf(head, sizeof(head), "mdmgw-v1\n%s\n%" PRId64 "\n%" PRId64 "\n%" PRId64 "\n",
		      key, at, fu, su);
	if (hn < 0 || (size_t)hn >= sizeof(head))
		return MDM_ERR_INTERNAL;
	ctx = EVP_MAC_CTX_dup(m->mac_tmpl);
	ok = ctx && EVP_MAC_update(ctx, (const unsigned char *)head, (size_t)hn) &&
	     EVP_MAC_update(ctx, payload, len) && EVP_MAC_final(ctx, md, &mdlen, sizeof(md)) &&
	     mdlen == TAG_LEN;
	EVP_MAC_CTX_free(ctx);
	if (!ok)
		return MDM_ERR_INTERNAL;
	for (size_t i = 0; i < TAG_LEN; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[TAG_HEX] = '\0';
	OPENSSL_cleanse(md, sizeof(md));
	return MDM_OK;
}

/* The stored form of a put, malloc'd into *out (free() it). MDM_ERR_INVALID: not UTF-8. */
enum mdm_err mc_value_encode(const struct mc *m, const char *key, const void *val, size_t len,
			     const struct cache_times *t, char **out, size_t *outlen)
{
	char tag[TAG_HEX + 1];
	json_t *obj, *d;
	enum mdm_err err;

	*out = NULL;
	/*
	 * jansson answers NULL both for bytes that are not UTF-8 and for no memory; as in entry.c,
	 * the first is far likelier, and either way nothing is stored.
	 */
	d = json_stringn(len ? (const char *)val : "", len);
	if (!d)
		return MDM_ERR_INVALID;
	err = tag_make(m, key, t->fetched_at, t->fresh_until, t->stale_until, val, len, tag);
	if (err) {
		json_decref(d);
		return err;
	}
	/* "o" takes d over, also when the pack fails. */
	obj = json_pack("{s:i,s:I,s:I,s:I,s:o,s:s}", "v", VALUE_VERSION, "at",
			(json_int_t)t->fetched_at, "fu", (json_int_t)t->fresh_until, "su",
			(json_int_t)t->stale_until, "d", d, "t", tag);
	if (!obj)
		return MDM_ERR_NOMEM;
	*out = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	if (!*out)
		return MDM_ERR_NOMEM;
	*outlen = strlen(*out);
	return MDM_OK;
}

static bool is_lower_hex(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* A decoded value whose shape has been checked; d points into the JSON document. */
struct decoded {
	json_int_t v, at, fu, su;
	const char *d, *t;
	size_t dlen, tlen;
};

/*
 * Reads what memcached held under key into out. MDM_ERR_PARSE: not a value of ours (not JSON,
 * another shape or version, times out of order, a tag that does not match key, times and
 * payload). A value past stale_until by our clock is a plain miss.
 */
/*
 * Verified values: parsing the envelope and checking its tag cost more than the round trip on
 * a hit, and a login storm reads the same values again and again. A value is remembered after
 * it verified, keyed by (key, value bytes), both compared in full: only the very bytes that
 * passed the check under the very same key skip it.
 */
#define VMEMO_SLOTS 4096 /* a power of two */
#define VMEMO_STRIPES 64

struct vslot {
	uint64_t hash;
	char *key, *val, *payload;
	size_t klen, len, plen;
	int64_t at, fu, su;
};

struct vmemo {
	pthread_mutex_t mu[VMEMO_STRIPES];
	struct vslot slot[VMEMO_SLOTS];
};

static uint64_t vmemo_hash(const char *key, size_t klen, const char *val, size_t len)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < klen; i++)
		h = (h ^ (unsigned char)key[i]) * 1099511628211ull;
	h = (h ^ 0xff) * 1099511628211ull;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)val[i]) * 1099511628211ull;
	return h;
}

struct vmemo *mc_vmemo_new(void)
{
	struct vmemo *v = calloc(1, sizeof(*v));

	for (int i = 0; v && i < VMEMO_STRIPES; i++)
		pthread_mutex_init(&v->mu[i], NULL);
	return v;
}

static void vslot_clear(struct vslot *s)
{
	free(s->key);
	free(s->val);
	free(s->payload);
	memset(s, 0, sizeof(*s));
}

void mc_vmemo_free(struct vmemo *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < VMEMO_SLOTS; i++)
		vslot_clear(&v->slot[i]);
	for (int i = 0; i < VMEMO_STRIPES; i++)
		pthread_mutex_destroy(&v->mu[i]);
	free(v);
}

/* Fills out from a remembered verification of exactly (key, val); false when there is none. */
static bool vmemo_get(struct vmemo *v, uint64_t h, const char *key, size_t klen, const char *val,
		      size_t len, int64_t now, struct cache_entry *out, enum mdm_err *err)
{
	struct vslot *s = &v->slot[h & (VMEMO_SLOTS - 1)];
	pthread_mutex_t *mu = &v->mu[h % VMEMO_STRIPES];
	bool hit;

	pthread_mutex_lock(mu);
	hit = s->val && s->hash == h && s->klen == klen && s->len == len &&
	      memcmp(s->key, key, klen) == 0 && memcmp(s->val, val, len) == 0;
	*err = MDM_OK;
	if (hit && now < s->su) {
		out->val = malloc(s->plen + 1);
		if (out->val) {
			memcpy(out->val, s->payload, s->plen);
			out->val[s->plen] = '\0';
			out->len = s->plen;
			out->fetched_at = s->at;
			out->fresh_until = s->fu;
			out->stale_until = s->su;
			out->state = now < s->fu ? CACHE_FRESH : CACHE_STALE;
		} else {
			*err = MDM_ERR_NOMEM;
		}
	}
	pthread_mutex_unlock(mu);
	return hit;
}

static void vmemo_put(struct vmemo *v, uint64_t h, const char *key, size_t klen, const char *val,
		      size_t len, const struct cache_entry *e)
{
	struct vslot n = {h,	  malloc(klen + 1), malloc(len + 1), malloc(e->len + 1), klen, len,
			  e->len, e->fetched_at,    e->fresh_until,  e->stale_until};
	pthread_mutex_t *mu = &v->mu[h % VMEMO_STRIPES];
	struct vslot old;

	if (!n.key || !n.val || !n.payload)
		return vslot_clear(&n);
	memcpy(n.key, key, klen);
	memcpy(n.val, val, len);
	memcpy(n.payload, e->val, e->len);
	pthread_mutex_lock(mu);
	old = v->slot[h & (VMEMO_SLOTS - 1)];
	v->slot[h & (VMEMO_SLOTS - 1)] = n;
	pthread_mutex_unlock(mu);
	vslot_clear(&old);
}

static enum mdm_err value_verify(const struct mc *m, const char *key, const char *val, size_t len,
				 int64_t now, struct cache_entry *out);

enum mdm_err mc_value_decode(struct mc *m, const char *key, const char *val, size_t len,
			     int64_t now, struct cache_entry *out)
{
	size_t klen = strlen(key);
	uint64_t h = vmemo_hash(key, klen, val, len);
	enum mdm_err err;

	if (m->memo && vmemo_get(m->memo, h, key, klen, val, len, now, out, &err))
		return err;
	err = value_verify(m, key, val, len, now, out);
	if (!err && out->val && m->memo)
		vmemo_put(m->memo, h, key, klen, val, len, out);
	return err;
}

static enum mdm_err value_verify(const struct mc *m, const char *key, const char *val, size_t len,
				 int64_t now, struct cache_entry *out)
{
	struct decoded x;
	char tag[TAG_HEX + 1];
	enum mdm_err err = MDM_ERR_PARSE;
	json_t *root;

	if (len > 6 * m->max_value + ENVELOPE_MAX)
		return MDM_ERR_PARSE; /* longer than any value of ours can encode to */
	root = json_loadb(val, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
	if (!root)
		return MDM_ERR_PARSE;
	/* JSON_STRICT: no field more than these; I and s take only integers and strings. */
	if (json_unpack_ex(root, NULL, JSON_STRICT, "{s:I,s:I,s:I,s:I,s:s%,s:s%}", "v", &x.v, "at",
			   &x.at, "fu", &x.fu, "su", &x.su, "d", &x.d, &x.dlen, "t", &x.t,
			   &x.tlen) != 0)
		goto out;
	if (x.v != VALUE_VERSION || !cache_times_valid(x.at, x.fu, x.su) || x.dlen > m->max_value ||
	    x.tlen != TAG_HEX || !is_lower_hex(x.t, x.tlen))
		goto out;
	err = tag_make(m, key, x.at, x.fu, x.su, x.d, x.dlen, tag);
	if (err)
		goto out;
	if (CRYPTO_memcmp(tag, x.t, TAG_HEX) != 0) {
		err = MDM_ERR_PARSE;
		goto out;
	}
	err = MDM_OK;
	if (now >= x.su)
		goto out; /* expired by our clock, not yet by memcached's */
	out->val = malloc(x.dlen + 1);
	if (!out->val) {
		err = MDM_ERR_NOMEM;
		goto out;
	}
	memcpy(out->val, x.d, x.dlen);
	out->val[x.dlen] = '\0';
	out->len = x.dlen;
	out->fetched_at = x.at;
	out->fresh_until = x.fu;
	out->stale_until = x.su;
	out->state = now < x.fu ? CACHE_FRESH : CACHE_STALE;
out:
	json_decref(root);
	return err;
}
