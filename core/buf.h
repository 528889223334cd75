/*
 * buf: a growable byte buffer that carries its own size limit (after curl's dynbuf).
 * Adding past the limit fails with MDM_ERR_TOOBIG and leaves the buffer as it was.
 * The content is always NUL-terminated once anything has been added.
 */
#ifndef MDM_BUF_H
#define MDM_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "err.h"

#if defined(__GNUC__)
#define MDM_PRINTF(a, b) __attribute__((format(printf, a, b)))
/* A result that must be looked at (as curl's dynbuf marks its own): gcc warns even through a
 * (void) cast, so an ignored add is a build error here, not a silently cut answer. */
#define MDM_MUST_USE __attribute__((warn_unused_result))
#else
#define MDM_PRINTF(a, b)
#define MDM_MUST_USE
#endif

struct buf {
	char *mem;
	size_t len;
	size_t alloc;
	size_t toobig; /* len must stay below this */
};

/* buf_init: an empty buffer that may hold at most toobig-1 bytes. Allocates nothing. */
void buf_init(struct buf *b, size_t toobig);
/* buf_free: releases the memory; the buffer is empty and reusable. */
void buf_free(struct buf *b);
/* buf_reset: empties the buffer, keeping its memory. */
void buf_reset(struct buf *b);
/* buf_reserve: makes room for extra more bytes now, so later adds do not reallocate. */
MDM_MUST_USE enum mdm_err buf_reserve(struct buf *b, size_t extra);
/* buf_add: appends len bytes. */
MDM_MUST_USE enum mdm_err buf_add(struct buf *b, const void *mem, size_t len);
/* buf_addstr: appends a NUL-terminated string. */
MDM_MUST_USE enum mdm_err buf_addstr(struct buf *b, const char *s);
/* buf_addf: appends printf-formatted text. */
MDM_MUST_USE enum mdm_err buf_addf(struct buf *b, const char *fmt, ...) MDM_PRINTF(2, 3);
/* buf_vaddf: buf_addf with a va_list (ap is used up). */
MDM_MUST_USE enum mdm_err buf_vaddf(struct buf *b, const char *fmt, va_list ap) MDM_PRINTF(2, 0);
/* buf_str: the content as a string; "" for an empty buffer. */
const char *buf_str(const struct buf *b);
/* buf_take: hands the memory to the caller (free() it) and empties the buffer; NULL if empty. */
MDM_MUST_USE char *buf_take(struct buf *b, size_t *len);

/*
 * str_copy / str_copyn: bounded copies into a fixed array of size bytes, always NUL-terminated.
 * MDM_ERR_TOOBIG when the source does not fit (dst then holds "").
 */
enum mdm_err str_copy(char *dst, size_t size, const char *src);
enum mdm_err str_copyn(char *dst, size_t size, const char *src, size_t len);
/* str_eq_ct: constant-time comparison of two byte strings of equal length. */
int str_eq_ct(const void *a, const void *b, size_t len);

#endif
