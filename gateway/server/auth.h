/*
 * auth: HTTP Basic accounts with scrypt password hashes, a verification cache so the hot path
 * never re-hashes, a bound on hash checks running at once, and throttling of failures per
 * (source address, user). Credentials and Authorization headers never reach a log line.
 *
 * Hash line: "$scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt base64>$<hash base64>" (standard base64
 * with padding, salt 16 to 64 bytes, hash 32 bytes), cost at least ln=15, r=8, p=1 and at most
 * ln=22, r=32, p=16, 1 GiB of scrypt memory (128*r*2^ln) and 64 times the minimum work
 * (2^ln*r*p), so no configuration can make one login take minutes or exhaust memory.
 */
#ifndef MDM_AUTH_H
#define MDM_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../../core/err.h"
#include "../../core/role.h"

struct config_auth {
	int64_t verify_cache_ttl_ms;	/* default 10m, 1s..24h */
	unsigned verify_cache_size;	/* entries; default 1024, 1..1000000 */
	unsigned max_concurrent_hashes; /* default 2, 1..64 */
	unsigned fail_limit;	/* per (source, user) before throttling; default 5, 1..1000 */
	int64_t fail_window_ms; /* default 60s, 1s..24h */
	int64_t lockout_ms;	/* Retry-After while throttled; default 60s, 1s..24h */
};

struct config_account {
	char user[64];		 /* 1..63 bytes, no ':' and no control characters */
	char password_hash[256]; /* "$scrypt$..." prefix checked here, the rest by auth */
	unsigned roles;		 /* ROLE_* bits; non-empty; names "query", "action", "admin" */
};

#define AUTH_MIN_LN 15
#define AUTH_MIN_R 8
#define AUTH_MIN_P 1
#define AUTH_MAX_LN 22
#define AUTH_MAX_R 32
#define AUTH_MAX_P 16

struct scrypt_params {
	unsigned ln, r, p;
	unsigned char salt[64];
	size_t salt_len;
	unsigned char hash[64];
	size_t hash_len;
};

/*
 * scrypt_line_parse: checks the syntax and minimum cost of a hash line.
 * MDM_ERR_INVALID with a reason in why (for config messages) otherwise.
 */
enum mdm_err scrypt_line_parse(const char *line, struct scrypt_params *out, char *why,
			       size_t whysz);

/*
 * scrypt_line_make: hashes password with a fresh random salt at the given cost into out.
 * MDM_ERR_INVALID for a cost outside the bounds above, MDM_ERR_TOOBIG if out is too small.
 */
enum mdm_err scrypt_line_make(const char *password, size_t len, unsigned ln, unsigned r, unsigned p,
			      char *out, size_t outsz);

/*
 * scrypt_line_verify: MDM_OK if password matches line, MDM_ERR_AUTH if not. Constant time compare.
 * MDM_ERR_INVALID if line does not parse, MDM_ERR_NOMEM / MDM_ERR_INTERNAL if scrypt failed.
 */
enum mdm_err scrypt_line_verify(const char *line, const char *password, size_t len);

struct auth;

/* auth_create: from the validated accounts and settings; NULL on no memory. */
struct auth *auth_create(const struct config_auth *cfg, const struct config_account *accounts,
			 size_t naccounts);
void auth_destroy(struct auth *a);

struct auth_result {
	unsigned roles;	   /* ROLE_* bits of the account, on MDM_OK */
	char user[64];	   /* the user name sent (for logs), may be set on failure too */
	int retry_after_s; /* on MDM_ERR_THROTTLED */
	bool cached;	   /* answered from the verification cache */
};

/*
 * auth_check: verifies an Authorization header value (NULL when absent) sent from source
 * (a printable address). MDM_OK: *res has the roles. MDM_ERR_AUTH: missing, malformed or wrong
 * credentials (answer 401). MDM_ERR_THROTTLED: too many recent failures for (source, user)
 * (answer 429 with res->retry_after_s). Credentials already in the verification cache are
 * accepted without a hash and are never throttled. Thread-safe; may block while a hash runs.
 * MDM_ERR_NOMEM / MDM_ERR_INTERNAL when the check itself could not run (answer 500); such a
 * request counts as no failure.
 */
enum mdm_err auth_check(struct auth *a, const char *authorization, const char *source,
			struct auth_result *res);

/*
 * auth_set_clock: tests only: a wall clock in ms used for expiry and throttling windows; NULL
 * restores the default. Call it before the authenticator is shared between threads.
 */
void auth_set_clock(struct auth *a, int64_t (*now_ms)(void));

/*
 * auth_passwd_cli: `mdmgw passwd`: reads a password twice (echo off when in is a terminal),
 * prints the hash line at the minimum cost (or ln from the argument, when higher) to out.
 * Prompts and messages go to err. 0 on success; 1 for no input, an empty password, a line over
 * 1023 bytes, two different passwords or a cost out of bounds.
 */
int auth_passwd_cli(FILE *in, FILE *out, FILE *err, unsigned ln);

#endif
