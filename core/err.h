/* err: the one error enum of the project. Every fallible function returns it. */
#ifndef MDM_ERR_H
#define MDM_ERR_H

#include <stddef.h>

enum mdm_err {
	MDM_OK = 0,
	MDM_ERR_NOMEM,	     /* allocation failed */
	MDM_ERR_INVALID,     /* input is malformed or out of range */
	MDM_ERR_TOOBIG,	     /* input or output exceeds its bound */
	MDM_ERR_NOTFOUND,    /* no such thing */
	MDM_ERR_IO,	     /* a system call or file operation failed */
	MDM_ERR_PARSE,	     /* a document could not be parsed */
	MDM_ERR_CONFIG,	     /* configuration is wrong */
	MDM_ERR_AUTH,	     /* credentials missing or wrong */
	MDM_ERR_FORBIDDEN,   /* authenticated, but not allowed */
	MDM_ERR_THROTTLED,   /* too many attempts; try later */
	MDM_ERR_TLS,	     /* TLS set-up or handshake failed */
	MDM_ERR_TIMEOUT,     /* a deadline passed */
	MDM_ERR_UNAVAILABLE, /* no source could answer */
	MDM_ERR_BUSY,	     /* held by someone else (lock, single-flight) */
	MDM_ERR_EXISTS,	     /* already there, or changed since read (add, cas) */
	MDM_ERR_INTERNAL,    /* a bug: an invariant did not hold */
};

/* err_str: a short, static, human description of e. Never NULL. */
const char *err_str(enum mdm_err e);

/* err_why: formats a reason for a human into why (whysz bytes); NULL why or 0 size: nothing. */
void err_why(char *why, size_t whysz, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#endif
