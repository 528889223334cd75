/*
 * auth: HTTP Basic accounts with scrypt hashes (see auth.h for the contract).
 *
 * The request path is: parse the header, look the credentials up in the verification cache
 * (keyed by an HMAC under a per-process key, so no password is ever stored), and only on a miss
 * consult the throttle and run scrypt behind a counting semaphore. Cache and throttle table are
 * both fixed-size rings with a hash index: the oldest slot is the one reused.
 */
#include <limits.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "../../core/buf.h"
#include "../../core/clock.h"
#include "../../core/log.h"
#include "auth.h"

#define SALT_LEN 16
#define HASH_LEN 32
#define KEY_LEN 32
#define HEADER_MAX 1024
#define USER_MAX 63
#define THROTTLE_SLOTS 4096
#define PASSWD_LINE_MAX 1023
/* 128*r*N bytes of scrypt memory; more than this per hash is refused as absurd. */
#define SCRYPT_MEM_MAX ((uint64_t)1 << 30)
/* N*r*p relative to the minimum cost; 64 times keeps one hash to seconds, not minutes. */
#define SCRYPT_WORK_MAX (((uint64_t)1 << AUTH_MIN_LN) * AUTH_MIN_R * AUTH_MIN_P * 64)

/* --- base64 ---------------------------------------------------------------------------------- */

static int b64_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

/*
 * Strict standard base64 with padding. EVP_DecodeBlock skips white space and reports padding
 * as decoded zero bytes, so the alphabet is checked here and the length comes from the '='s.
 * out must hold n/4*3 bytes even though fewer are meaningful.
 */
static enum mdm_err b64_decode(const char *s, size_t n, unsigned char *out, size_t outsz,
			       size_t *outlen)
{
	size_t pad = 0, i;
	int got;

	if (n == 0 || n % 4 != 0 || n > INT_MAX)
		return MDM_ERR_INVALID;
	if (s[n - 1] == '=') {
		pad = 1;
		if (s[n - 2] == '=')
			pad = 2;
	}
	for (i = 0; i < n - pad; i++)
		if (!b64_char((unsigned char)s[i]))
			return MDM_ERR_INVALID;
	if (n / 4 * 3 > outsz)
		return MDM_ERR_TOOBIG;
	got = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
	if (got < 0 || (size_t)got != n / 4 * 3)
		return MDM_ERR_INVALID;
	*outlen = (size_t)got - pad;
	return MDM_OK;
}

static enum mdm_err b64_encode(const unsigned char *in, size_t n, char *out, size_t outsz)
{
	if (n > INT_MAX / 2 || (n + 2) / 3 * 4 + 1 > outsz)
		return MDM_ERR_TOOBIG;
	EVP_EncodeBlock((unsigned char *)out, in, (int)n);
	return MDM_OK;
}

/* --- scrypt lines ---------------------------------------------------------------------------- */

/* Cost bounds shared by parsing and making lines, so nothing we write is refused on reading. */
static enum mdm_err cost_check(unsigned ln, unsigned r, unsigned p, char *why, size_t whysz)
{
	uint64_t n;

	if (ln < AUTH_MIN_LN) {
		err_why(why, whysz, "scrypt cost too low: ln=%u, at least ln=%u needed", ln,
			AUTH_MIN_LN);
		return MDM_ERR_INVALID;
	}
	if (r < AUTH_MIN_R) {
		err_why(why, whysz, "scrypt cost too low: r=%u, at least r=%u needed", r,
			AUTH_MIN_R);
		return MDM_ERR_INVALID;
	}
	if (p < AUTH_MIN_P) {
		err_why(why, whysz, "scrypt cost too low: p=%u, at least p=%u needed", p,
			AUTH_MIN_P);
		return MDM_ERR_INVALID;
	}
	if (ln > AUTH_MAX_LN) {
		err_why(why, whysz, "scrypt cost absurd: ln=%u, at most ln=%u", ln, AUTH_MAX_LN);
		return MDM_ERR_INVALID;
	}
	if (r > AUTH_MAX_R) {
		err_why(why, whysz, "scrypt cost absurd: r=%u, at most r=%u", r, AUTH_MAX_R);
		return MDM_ERR_INVALID;
	}
	if (p > AUTH_MAX_P) {
		err_why(why, whysz, "scrypt cost absurd: p=%u, at most p=%u", p, AUTH_MAX_P);
		return MDM_ERR_INVALID;
	}
	n = (uint64_t)1 << ln;
	if (128 * r * n > SCRYPT_MEM_MAX) {
		err_why(why, whysz,
			"scrypt cost absurd: ln and r need %u MiB per hash, at most 1024",
			(unsigned)(128 * r * n >> 20));
		return MDM_ERR_INVALID;
	}
	if (n * r * p > SCRYPT_WORK_MAX) {
		err_why(
		    why, whysz,
		    "scrypt cost absurd: ln, r and p make %u times the minimum work, at most 64",
		    (unsigned)(n * r * p / (SCRYPT_WORK_MAX / 64)));
		return MDM_ERR_INVALID;
	}
	return MDM_OK;
}

/* A decimal of 1..9 digits; the cost check bounds it further. */
static int parse_uint(const char **pp, unsigned *out)
{
	const char *p = *pp;
	unsigned v = 0;
	int digits = 0;

	while (*p >= '0' && *p <= '9' && digits < 9) {
		v = v * 10 + (unsigned)(*p - '0');
		p++;
		digits++;
	}
	if (digits == 0 || (*p >= '0' && *p <= '9'))
		return 0;
	*out = v;
	*pp = p;
	return 1;
}

static int expect(const char **pp, const char *lit)
{
	size_t n = strlen(lit);

	if (strncmp(*pp, lit, n) != 0)
		return 0;
	*pp += n;
	return 1;
}

enum mdm_err scrypt_line_parse(const char *line, struct scrypt_params *out, char *why, size_t whysz)
{
	unsigned char tmp[96];
	const char *p = line, *salt, *hash;
	size_t n;
	enum mdm_err rc;

	if (why && whysz)
		why[0] = '\0';
	memset(out, 0, sizeof(*out));
	if (!expect(&p, "$scrypt$")) {
		err_why(why, whysz,
			"not a scrypt hash line (want \"$scrypt$ln=N,r=N,p=N$salt$hash\")");
		return MDM_ERR_INVALID;
	}
	if (!expect(&p, "ln=") || !parse_uint(&p, &out->ln) || !expect(&p, ",r=") ||
	    !parse_uint(&p, &out->r) || !expect(&p, ",p=") || !parse_uint(&p, &out->p) ||
	    !expect(&p, "$")) {
		err_why(why, whysz, "scrypt hash line: bad or missing \"ln=N,r=N,p=N\"");
		return MDM_ERR_INVALID;
	}
	salt = p;
	hash = strchr(salt, '$');
	if (!hash || strchr(hash + 1, '$')) {
		err_why(why, whysz, "scrypt hash line: want exactly \"$salt$hash\" after the cost");
		return MDM_ERR_INVALID;
	}
	hash++;
	/* tmp has room for a salt past the 64-byte limit, so "too long" gets its own reason. */
	rc = b64_decode(salt, (size_t)(hash - 1 - salt), tmp, sizeof(tmp), &n);
	if (rc == MDM_ERR_TOOBIG || (rc == MDM_OK && n > sizeof(out->salt))) {
		err_why(why, whysz, "scrypt hash line: salt longer than %u bytes",
			(unsigned)sizeof(out->salt));
		return MDM_ERR_INVALID;
	}
	if (rc != MDM_OK) {
		err_why(why, whysz, "scrypt hash line: salt is not valid base64");
		return MDM_ERR_INVALID;
	}
	if (n < SALT_LEN) {
		err_why(why, whysz, "scrypt hash line: salt shorter than %u bytes", SALT_LEN);
		return MDM_ERR_INVALID;
	}
	memcpy(out->salt, tmp, n);
	out->salt_len = n;
	rc = b64_decode(hash, strlen(hash), tmp, sizeof(tmp), &n);
	if (rc != MDM_OK && rc != MDM_ERR_TOOBIG) {
		err_why(why, whysz, "scrypt hash line: hash is not valid base64");
		return MDM_ERR_INVALID;
	}
	if (rc == MDM_ERR_TOOBIG || n != HASH_LEN) {
		err_why(why, whysz, "scrypt hash line: hash must be %u bytes", HASH_LEN);
		return MDM_ERR_INVALID;
	}
	memcpy(out->hash, tmp, n);
	out->hash_len = n;
	return cost_check(out->ln, out->r, out->p, why, whysz);
}

/* scrypt(password, salt) at sp's cost into out (outlen bytes). Cost must have been checked. */
static enum mdm_err scrypt_derive(const struct scrypt_params *sp, const char *password, size_t len,
				  unsigned char *out, size_t outlen)
{
	EVP_KDF *kdf = NULL;
	EVP_KDF_CTX *ctx = NULL;
	OSSL_PARAM params[7], *q = params;
	uint64_t n = (uint64_t)1 << sp->ln;
	uint32_t r = sp->r, p = sp->p;
	/* OpenSSL refuses past 32 MiB by default; ln=15,r=8 needs 32 MiB plus the p blocks. */
	uint64_t maxmem = 128 * (uint64_t)r * (n + 2 + p) + ((uint64_t)1 << 20);
	enum mdm_err rc = MDM_ERR_INTERNAL;

	kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
	if (!kdf)
		goto out;
	ctx = EVP_KDF_CTX_new(kdf);
	if (!ctx) {
		rc = MDM_ERR_NOMEM;
		goto out;
	}
	*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD,
						 (void *)(password ? password : ""), len);
	*q++ =
	    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)sp->salt, sp->salt_len);
	*q++ = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n);
	*q++ = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r);
	*q++ = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p);
	*q++ = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem);
	*q = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(ctx, out, outlen, params) != 1)
		goto out;
	rc = MDM_OK;
out:
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	return rc;
}

static enum mdm_err scrypt_params_verify(const struct scrypt_params *sp, const char *password,
					 size_t len)
{
	unsigned char got[sizeof(sp->hash)];
	enum mdm_err rc;

	rc = scrypt_derive(sp, password, len, got, sp->hash_len);
	if (rc == MDM_OK && CRYPTO_memcmp(got, sp->hash, sp->hash_len) != 0)
		rc = MDM_ERR_AUTH;
	OPENSSL_cleanse(got, sizeof(got));
	return rc;
}

enum mdm_err scrypt_line_make(const char *password, size_t len, unsigned ln, unsigned r, unsigned p,
			      char *out, size_t outsz)
{
	struct scrypt_params sp;
	char salt64[SALT_LEN * 2], hash64[HASH_LEN * 2];
	enum mdm_err rc;
	int m;

	if (outsz)
		out[0] = '\0';
	rc = cost_check(ln, r, p, NULL, 0);
	if (rc != MDM_OK)
		return rc;
	memset(&sp, 0, sizeof(sp));
	sp.ln = ln;
	sp.r = r;
	sp.p = p;
	sp.salt_len = SALT_LEN;
	sp.hash_len = HASH_LEN;
	if (RAND_bytes(sp.salt, SALT_LEN) != 1)
		return MDM_ERR_INTERNAL;
	rc = scrypt_derive(&sp, password, len, sp.hash, HASH_LEN);
	if (rc == MDM_OK)
		rc = b64_encode(sp.salt, SALT_LEN, salt64, sizeof(salt64));
	if (rc == MDM_OK)
		rc = b64_encode(sp.hash, HASH_LEN, hash64, sizeof(hash64));
	if (rc == MDM_OK) {
		m = snprintf(out, outsz, "$scrypt$ln=%u,r=%u,p=%u$%s$%s", ln, r, p, salt64, hash64);
		if (m < 0 || (size_t)m >= outsz) {
			if (outsz)
				out[0] = '\0';
			rc = MDM_ERR_TOOBIG;
		}
	}
	OPENSSL_cleanse(&sp, sizeof(sp));
	OPENSSL_cleanse(hash64, sizeof(hash64));
	return rc;
}

enum mdm_err scrypt_line_verify(const char *line, const char *password, size_t len)
{
	struct scrypt_params sp;
	enum mdm_err rc;

	rc = scrypt_line_parse(line, &sp, NULL, 0);
	if (rc == MDM_OK)
		rc = scrypt_params_verify(&sp, password, len);
	OPENSSL_cleanse(&sp, sizeof(sp));
	return rc;
}

/* --- keyed ring: fixed slots reused oldest first, with a chained hash index ------------------ */

#define KT_NONE UINT32_MAX

struct ktab {
	unsigned char (*key)[KEY_LEN];
	uint32_t *next;	  /* chain within a bucket */
	uint32_t *bucket; /* first slot of each chain */
	unsigned char *used;
	uint32_t cap, mask, head; /* head: the next slot to reuse, i.e. the oldest */
};

static enum mdm_err ktab_init(struct ktab *t, uint32_t cap)
{
	uint32_t nb = 1, i;

	memset(t, 0, sizeof(*t));
	while (nb < cap && nb < ((uint32_t)1 << 30))
		nb <<= 1;
	t->cap = cap;
	t->mask = nb - 1;
	t->key = calloc(cap, sizeof(*t->key));
	t->next = calloc(cap, sizeof(*t->next));
	t->used = calloc(cap, 1);
	t->bucket = malloc(nb * sizeof(*t->bucket));
	if (!t->key || !t->next || !t->used || !t->bucket)
		return MDM_ERR_NOMEM;
	for (i = 0; i < nb; i++)
		t->bucket[i] = KT_NONE;
	return MDM_OK;
}

static void ktab_free(struct ktab *t)
{
	free(t->key);
	free(t->next);
	free(t->used);
	free(t->bucket);
	memset(t, 0, sizeof(*t));
}

/* Keys are HMAC outputs, so any four bytes of them are a well-spread hash already. */
static uint32_t *ktab_chain(const struct ktab *t, const unsigned char *key)
{
	uint32_t h;

	memcpy(&h, key, sizeof(h));
	return &t->bucket[h & t->mask];
}

static uint32_t ktab_find(const struct ktab *t, const unsigned char *key)
{
	uint32_t i;

	for (i = *ktab_chain(t, key); i != KT_NONE; i = t->next[i])
		if (CRYPTO_memcmp(t->key[i], key, KEY_LEN) == 0)
			return i;
	return KT_NONE;
}

static void ktab_del(struct ktab *t, uint32_t i)
{
	uint32_t *link;

	if (!t->used[i])
		return;
	for (link = ktab_chain(t, t->key[i]); *link != KT_NONE; link = &t->next[*link]) {
		if (*link == i) {
			*link = t->next[i];
			break;
		}
	}
	t->used[i] = 0;
}

/* Takes the oldest slot (evicting whatever it held) for key; the caller fills the payload. */
static uint32_t ktab_add(struct ktab *t, const unsigned char *key)
{
	uint32_t i = t->head, *chain;

	ktab_del(t, i);
	t->head = (t->head + 1) % t->cap;
	memcpy(t->key[i], key, KEY_LEN);
	chain = ktab_chain(t, key);
	t->next[i] = *chain;
	*chain = i;
	t->used[i] = 1;
	return i;
}

/* --- the authenticator ----------------------------------------------------------------------- */

struct account {
	char user[64];
	size_t user_len;
	unsigned roles;
	bool usable; /* its hash line parsed; an unusable account can never log in */
	struct scrypt_params sp;
};

struct cache_val {
	int64_t expires_ms;
	unsigned roles;
};

struct throttle_val {
	int64_t window_start_ms;
	int64_t locked_until_ms; /* 0: not locked */
	unsigned failures;
};

struct auth {
	struct config_auth cfg;
	struct account *accounts;
	size_t naccounts;
	struct scrypt_params dummy; /* hashed against for unknown users, so timing hides them */
	int64_t (*now_ms)(void);
	EVP_MAC *hmac;
	unsigned char cache_key[KEY_LEN];
	unsigned char throttle_key[KEY_LEN];
	/* HMAC contexts keyed once at start; each use works on a copy, which spares the digest
	 * look-up and key schedule that made keying per request the costliest step of a hit. */
	EVP_MAC_CTX *cache_mac, *throttle_mac;

	pthread_mutex_t cache_mu;
	struct ktab cache;
	struct cache_val *cache_val;

	pthread_mutex_t throttle_mu;
	struct ktab throttle;
	struct throttle_val *throttle_val;

	pthread_mutex_t hash_mu;
	pthread_cond_t hash_cv;
	unsigned hashing;
};

/* HMAC-SHA256(key, a || 0x00 || b) with a keyed template: the NUL keeps ("ab","c") and
 * ("a","bc") apart. */
static enum mdm_err keyed_digest(EVP_MAC_CTX *tmpl, const char *x, size_t xlen, const char *y,
				 size_t ylen, unsigned char out[KEY_LEN])
{
	EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup(tmpl);
	const unsigned char zero = 0;
	size_t outlen = 0;
	enum mdm_err rc = MDM_ERR_INTERNAL;

	if (!ctx)
		return MDM_ERR_NOMEM;
	if (EVP_MAC_update(ctx, (const unsigned char *)x, xlen) == 1 &&
	    EVP_MAC_update(ctx, &zero, 1) == 1 &&
	    EVP_MAC_update(ctx, (const unsigned char *)y, ylen) == 1 &&
	    EVP_MAC_final(ctx, out, &outlen, KEY_LEN) == 1 && outlen == KEY_LEN)
		rc = MDM_OK;
	EVP_MAC_CTX_free(ctx);
	return rc;
}

static EVP_MAC_CTX *keyed_template(EVP_MAC *hmac, const unsigned char *key)
{
	EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(hmac);
	OSSL_PARAM params[2];

	if (!ctx)
		return NULL;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (EVP_MAC_init(ctx, key, KEY_LEN, params) != 1) {
		EVP_MAC_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

static void account_load(struct account *acc, const struct config_account *ca)
{
	char why[160];

	memset(acc, 0, sizeof(*acc));
	if (str_copy(acc->user, sizeof(acc->user), ca->user) != MDM_OK)
		return;
	acc->user_len = strlen(acc->user);
	acc->roles = ca->roles;
	/* config checks the syntax already; a line that slips through only locks that account. */
	if (scrypt_line_parse(ca->password_hash, &acc->sp, why, sizeof(why)) != MDM_OK) {
		log_warn("auth: account %s cannot log in: %s", acc->user, why);
		return;
	}
	acc->usable = acc->user_len > 0;
}

struct auth *auth_create(const struct config_auth *cfg, const struct config_account *accounts,
			 size_t naccounts)
{
	struct auth *a;
	size_t i;
	int ok;

	a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->cfg = *cfg;
	/* Zero would mean "never cache" or "never hash"; the config forbids it, so be safe. */
	if (a->cfg.verify_cache_size == 0)
		a->cfg.verify_cache_size = 1;
	if (a->cfg.max_concurrent_hashes == 0)
		a->cfg.max_concurrent_hashes = 1;
	if (a->cfg.fail_limit == 0)
		a->cfg.fail_limit = 1;
	a->now_ms = clock_wall_ms;
	pthread_mutex_init(&a->cache_mu, NULL);
	pthread_mutex_init(&a->throttle_mu, NULL);
	pthread_mutex_init(&a->hash_mu, NULL);
	pthread_cond_init(&a->hash_cv, NULL);

	a->accounts = calloc(naccounts ? naccounts : 1, sizeof(*a->accounts));
	a->cache_val = calloc(a->cfg.verify_cache_size, sizeof(*a->cache_val));
	a->throttle_val = calloc(THROTTLE_SLOTS, sizeof(*a->throttle_val));
	a->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	ok = a->accounts && a->cache_val && a->throttle_val && a->hmac &&
	     ktab_init(&a->cache, a->cfg.verify_cache_size) == MDM_OK &&
	     ktab_init(&a->throttle, THROTTLE_SLOTS) == MDM_OK &&
	     RAND_bytes(a->cache_key, KEY_LEN) == 1 && RAND_bytes(a->throttle_key, KEY_LEN) == 1 &&
	     (a->cache_mac = keyed_template(a->hmac, a->cache_key)) != NULL &&
	     (a->throttle_mac = keyed_template(a->hmac, a->throttle_key)) != NULL;
	/* The dummy needs no real hash: a random one costs the same scrypt and never matches. */
	a->dummy.ln = AUTH_MIN_LN;
	a->dummy.r = AUTH_MIN_R;
	a->dummy.p = AUTH_MIN_P;
	a->dummy.salt_len = SALT_LEN;
	a->dummy.hash_len = HASH_LEN;
	ok = ok && RAND_bytes(a->dummy.salt, SALT_LEN) == 1 &&
	     RAND_bytes(a->dummy.hash, HASH_LEN) == 1;
	if (!ok) {
		auth_destroy(a);
		return NULL;
	}
	for (i = 0; i < naccounts; i++)
		account_load(&a->accounts[i], &accounts[i]);
	a->naccounts = naccounts;
	return a;
}

void auth_destroy(struct auth *a)
{
	if (!a)
		return;
	ktab_free(&a->cache);
	ktab_free(&a->throttle);
	free(a->cache_val);
	free(a->throttle_val);
	if (a->accounts)
		OPENSSL_cleanse(a->accounts, a->naccounts * sizeof(*a->accounts));
	free(a->accounts);
	EVP_MAC_CTX_free(a->cache_mac);
	EVP_MAC_CTX_free(a->throttle_mac);
	EVP_MAC_free(a->hmac);
	pthread_mutex_destroy(&a->cache_mu);
	pthread_mutex_destroy(&a->throttle_mu);
	pthread_mutex_destroy(&a->hash_mu);
	pthread_cond_destroy(&a->hash_cv);
	OPENSSL_cleanse(a, sizeof(*a));
	free(a);
}

void auth_set_clock(struct auth *a, int64_t (*now_ms)(void))
{
	a->now_ms = now_ms ? now_ms : clock_wall_ms;
}

/* --- verification cache ---------------------------------------------------------------------- */

static bool cache_get(struct auth *a, const unsigned char *key, int64_t now, unsigned *roles)
{
	uint32_t i;
	bool hit = false;

	pthread_mutex_lock(&a->cache_mu);
	i = ktab_find(&a->cache, key);
	if (i != KT_NONE && a->cache_val[i].expires_ms > now) {
		*roles = a->cache_val[i].roles;
		hit = true;
	}
	pthread_mutex_unlock(&a->cache_mu);
	return hit;
}

static void cache_put(struct auth *a, const unsigned char *key, int64_t now, unsigned roles)
{
	uint32_t i;

	pthread_mutex_lock(&a->cache_mu);
	/* Two misses for the same credentials may race here; refresh rather than duplicate. */
	i = ktab_find(&a->cache, key);
	if (i == KT_NONE)
		i = ktab_add(&a->cache, key);
	a->cache_val[i].expires_ms = now + a->cfg.verify_cache_ttl_ms;
	a->cache_val[i].roles = roles;
	pthread_mutex_unlock(&a->cache_mu);
}

/* --- throttling per (source, user) ----------------------------------------------------------- */

/* MDM_ERR_THROTTLED with the seconds left, or MDM_OK (clearing a lockout that has run out). */
static enum mdm_err throttle_check(struct auth *a, const unsigned char *key, int64_t now,
				   int *retry_after_s)
{
	struct throttle_val *v;
	enum mdm_err rc = MDM_OK;
	int64_t left;
	uint32_t i;

	pthread_mutex_lock(&a->throttle_mu);
	i = ktab_find(&a->throttle, key);
	if (i == KT_NONE)
		goto out;
	v = &a->throttle_val[i];
	if (v->locked_until_ms == 0)
		goto out;
	left = v->locked_until_ms - now;
	if (left <= 0) {
		/* The lockout is served: start again with a clean slate. */
		ktab_del(&a->throttle, i);
		goto out;
	}
	left = (left + 999) / 1000;
	*retry_after_s = left > INT_MAX ? INT_MAX : (int)left;
	rc = MDM_ERR_THROTTLED;
out:
	pthread_mutex_unlock(&a->throttle_mu);
	return rc;
}

/* Counts one failure; true when this one locked the pair (so the caller logs it once). */
static bool throttle_fail(struct auth *a, const unsigned char *key, int64_t now)
{
	struct throttle_val *v;
	bool locked = false;
	uint32_t i;

	pthread_mutex_lock(&a->throttle_mu);
	i = ktab_find(&a->throttle, key);
	if (i == KT_NONE) {
		i = ktab_add(&a->throttle, key);
		memset(&a->throttle_val[i], 0, sizeof(a->throttle_val[i]));
		a->throttle_val[i].window_start_ms = now;
	}
	v = &a->throttle_val[i];
	if (v->locked_until_ms > now)
		goto out; /* raced with the failure that locked it: nothing to add */
	if (v->locked_until_ms != 0) {
		/* The lockout ran out while this hash ran: count from a clean slate. */
		memset(v, 0, sizeof(*v));
		v->window_start_ms = now;
	}
	if (now - v->window_start_ms >= a->cfg.fail_window_ms) {
		v->window_start_ms = now;
		v->failures = 0;
	}
	v->failures++;
	if (v->failures >= a->cfg.fail_limit) {
		v->locked_until_ms = now + a->cfg.lockout_ms;
		locked = true;
	}
out:
	pthread_mutex_unlock(&a->throttle_mu);
	return locked;
}

static void throttle_clear(struct auth *a, const unsigned char *key)
{
	uint32_t i;

	pthread_mutex_lock(&a->throttle_mu);
	i = ktab_find(&a->throttle, key);
	if (i != KT_NONE)
		ktab_del(&a->throttle, i);
	pthread_mutex_unlock(&a->throttle_mu);
}

/* The decoded credentials of one request; wiped before auth_check returns. */
struct cred {
	unsigned char buf[HEADER_MAX / 4 * 3 + 3]; /* decoded "user:password" */
	size_t len;
	const char *user, *password;
	size_t user_len, password_len;
};

/* --- hashing --------------------------------------------------------------------------------- */

/* A counting semaphore: scrypt takes 32 MiB and ~0.1 s, so only a few may run at once. */
static void hash_acquire(struct auth *a)
{
	pthread_mutex_lock(&a->hash_mu);
	while (a->hashing >= a->cfg.max_concurrent_hashes)
		pthread_cond_wait(&a->hash_cv, &a->hash_mu);
	a->hashing++;
	pthread_mutex_unlock(&a->hash_mu);
}

static void hash_release(struct auth *a)
{
	pthread_mutex_lock(&a->hash_mu);
	a->hashing--;
	pthread_cond_signal(&a->hash_cv);
	pthread_mutex_unlock(&a->hash_mu);
}

/*
 * The account for user, or NULL. Every account is compared in full so the time taken does not
 * depend on where (or whether) the name is found.
 */
static const struct account *account_find(const struct auth *a, const char *user, size_t len)
{
	const struct account *found = NULL;
	size_t i;

	for (i = 0; i < a->naccounts; i++) {
		const struct account *acc = &a->accounts[i];
		int same = acc->user_len == len && str_eq_ct(acc->user, user, len);

		if (same && acc->usable)
			found = acc;
	}
	return found;
}

/*
 * scrypt against the account (or the dummy) once a hash slot is free. The throttle is asked
 * again after the wait: a burst of parallel guesses all passed the first check together, and
 * only fail_limit of them should get to hash. For that a failure is counted before the slot is
 * given back, else the next guess in line re-checks without it. *locked: this failure locked
 * the pair.
 */
static enum mdm_err verify_slow(struct auth *a, const struct cred *c, const unsigned char *tkey,
				unsigned *roles, int *retry_after_s, bool *locked)
{
	const struct account *acc = account_find(a, c->user, c->user_len);
	enum mdm_err rc;

	*locked = false;
	hash_acquire(a);
	rc = throttle_check(a, tkey, a->now_ms(), retry_after_s);
	if (rc == MDM_OK)
		rc = scrypt_params_verify(acc ? &acc->sp : &a->dummy, c->password, c->password_len);
	if (rc == MDM_OK && !acc)
		rc = MDM_ERR_AUTH; /* cannot happen with a random dummy hash, but never let it in */
	if (rc == MDM_ERR_AUTH)
		*locked = throttle_fail(a, tkey, a->now_ms());
	hash_release(a);
	if (rc != MDM_OK)
		return rc;
	*roles = acc->roles;
	return MDM_OK;
}

/* --- the request ----------------------------------------------------------------------------- */

static int is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* "Basic <base64 of user:password>", bounded and strict; MDM_ERR_AUTH for anything else. */
static enum mdm_err cred_parse(const char *h, struct cred *c)
{
	const char *end, *colon;
	size_t n;

	if (!h || strnlen(h, HEADER_MAX + 1) > HEADER_MAX)
		return MDM_ERR_AUTH;
	while (is_ows(*h))
		h++;
	if (strncasecmp(h, "Basic", 5) != 0 || !is_ows(h[5]))
		return MDM_ERR_AUTH;
	h += 5;
	while (is_ows(*h))
		h++;
	end = h + strlen(h);
	while (end > h && is_ows(end[-1]))
		end--;
	n = (size_t)(end - h);
	if (b64_decode(h, n, c->buf, sizeof(c->buf), &c->len) != MDM_OK)
		return MDM_ERR_AUTH;
	colon = memchr(c->buf, ':', c->len);
	if (!colon)
		return MDM_ERR_AUTH;
	c->user = (const char *)c->buf;
	c->user_len = (size_t)(colon - c->user);
	c->password = colon + 1;
	c->password_len = c->len - c->user_len - 1;
	/* No account has an empty or longer name: refuse without spending a hash on it. */
	if (c->user_len == 0 || c->user_len > USER_MAX)
		return MDM_ERR_AUTH;
	return MDM_OK;
}

/* The user name as sent, made safe for a log line: control bytes (and NUL) become '?'. */
static void user_printable(char *dst, size_t size, const char *user, size_t len)
{
	size_t i;

	if (len >= size)
		len = size - 1;
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)user[i];

		dst[i] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
	}
	dst[len] = '\0';
}

enum mdm_err auth_check(struct auth *a, const char *authorization, const char *source,
			struct auth_result *res)
{
	struct cred c;
	unsigned char ckey[KEY_LEN], tkey[KEY_LEN];
	unsigned roles = 0;
	bool locked = false;
	enum mdm_err rc;

	memset(res, 0, sizeof(*res));
	if (!source)
		source = "";
	rc = cred_parse(authorization, &c);
	if (rc != MDM_OK)
		goto out;
	user_printable(res->user, sizeof(res->user), c.user, c.user_len);

	rc = keyed_digest(a->cache_mac, c.user, c.user_len, c.password, c.password_len, ckey);
	if (rc != MDM_OK)
		goto out;
	if (cache_get(a, ckey, a->now_ms(), &roles)) {
		res->roles = roles;
		res->cached = true;
		goto out;
	}

	rc = keyed_digest(a->throttle_mac, source, strlen(source), c.user, c.user_len, tkey);
	if (rc != MDM_OK)
		goto out;
	rc = throttle_check(a, tkey, a->now_ms(), &res->retry_after_s);
	if (rc != MDM_OK)
		goto out;

	rc = verify_slow(a, &c, tkey, &roles, &res->retry_after_s, &locked);
	if (rc == MDM_OK) {
		throttle_clear(a, tkey);
		cache_put(a, ckey, a->now_ms(), roles);
		res->roles = roles;
	} else if (locked) {
		log_warn("auth: throttling user=%s source=%.64s", res->user, source);
	}
	/* Other errors (no memory, a broken KDF) are ours, not the client's: nothing is counted. */
out:
	OPENSSL_cleanse(&c, sizeof(c));
	OPENSSL_cleanse(ckey, sizeof(ckey));
	return rc;
}

/* --- mdmgw passwd ---------------------------------------------------------------------------- */

/*
 * One line of at most PASSWD_LINE_MAX bytes without its "\n" (or "\r\n"). NUL bytes are kept
 * as part of the password. MDM_ERR_IO at end of input, MDM_ERR_TOOBIG for a longer line.
 */
static enum mdm_err read_secret_line(FILE *in, char *buf, size_t size, size_t *len)
{
	size_t n = 0;
	int ch;

	for (;;) {
		ch = getc(in);
		if (ch == EOF || ch == '\n')
			break;
		if (n + 1 >= size)
			return MDM_ERR_TOOBIG;
		buf[n++] = (char)ch;
	}
	if (ch == EOF && n == 0)
		return MDM_ERR_IO;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	*len = n;
	return MDM_OK;
}

static enum mdm_err prompt_read(FILE *in, FILE *err, bool quiet, const char *prompt, char *buf,
				size_t size, size_t *len)
{
	enum mdm_err rc;

	fputs(prompt, err);
	fflush(err);
	rc = read_secret_line(in, buf, size, len);
	/* With echo off the user's Enter shows nothing; end the prompt line for them. */
	if (quiet)
		fputs("\n", err);
	return rc;
}

int auth_passwd_cli(FILE *in, FILE *out, FILE *err, unsigned ln)
{
	char pw1[PASSWD_LINE_MAX + 1], pw2[PASSWD_LINE_MAX + 1], line[256], why[160];
	size_t len1 = 0, len2 = 0;
	struct termios saved, quiet;
	bool restore = false;
	int fd = fileno(in), ret = 1;
	enum mdm_err rc;

	if (fd >= 0 && isatty(fd) && tcgetattr(fd, &saved) == 0) {
		quiet = saved;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		restore = tcsetattr(fd, TCSAFLUSH, &quiet) == 0;
	}
	rc = prompt_read(in, err, restore, "Password: ", pw1, sizeof(pw1), &len1);
	if (rc == MDM_OK)
		rc = prompt_read(in, err, restore, "Repeat: ", pw2, sizeof(pw2), &len2);
	if (restore)
		tcsetattr(fd, TCSAFLUSH, &saved);

	if (rc == MDM_ERR_TOOBIG) {
		fprintf(err, "passwd: password longer than %d bytes\n", PASSWD_LINE_MAX);
		goto out;
	}
	if (rc != MDM_OK) {
		fputs("passwd: no password read\n", err);
		goto out;
	}
	if (len1 == 0) {
		fputs("passwd: empty password refused\n", err);
		goto out;
	}
	if (len1 != len2 || !str_eq_ct(pw1, pw2, len1)) {
		fputs("passwd: passwords do not match\n", err);
		goto out;
	}
	if (ln < AUTH_MIN_LN)
		ln = AUTH_MIN_LN;
	if (cost_check(ln, AUTH_MIN_R, AUTH_MIN_P, why, sizeof(why)) != MDM_OK) {
		fprintf(err, "passwd: %s\n", why);
		goto out;
	}
	rc = scrypt_line_make(pw1, len1, ln, AUTH_MIN_R, AUTH_MIN_P, line, sizeof(line));
	if (rc != MDM_OK) {
		fprintf(err, "passwd: cannot hash the password: %s\n", err_str(rc));
		goto out;
	}
	fprintf(out, "%s\n", line);
	fflush(out);
	ret = ferror(out) ? 1 : 0;
out:
	OPENSSL_cleanse(pw1, sizeof(pw1));
	OPENSSL_cleanse(pw2, sizeof(pw2));
	return ret;
}
