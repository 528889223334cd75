#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

#define BUF_MIN_ALLOC 64

void buf_init(struct buf *b, size_t toobig)
{
	b->mem = NULL;
	b->len = 0;
	b->alloc = 0;
	b->toobig = toobig;
}

void buf_free(struct buf *b)
{
	free(b->mem);
	b->mem = NULL;
	b->len = 0;
	b->alloc = 0;
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->mem)
		b->mem[0] = '\0';
}

/* Make room for extra more bytes plus the terminating NUL. */
static enum mdm_err buf_grow(struct buf *b, size_t extra)
{
	size_t need, a;
	char *p;

	if (extra >= b->toobig || b->len >= b->toobig - extra)
		return MDM_ERR_TOOBIG;
	need = b->len + extra + 1;
	if (need <= b->alloc)
		return MDM_OK;
	a = b->alloc ? b->alloc : BUF_MIN_ALLOC;
	while (a < need)
		a = (a > (size_t)-1 / 2) ? need : a * 2;
	if (a > b->toobig)
		a = b->toobig; /* toobig > len + extra, so a >= need */
	p = realloc(b->mem, a);
	if (!p)
		return MDM_ERR_NOMEM;
	b->mem = p;
	b->alloc = a;
	return MDM_OK;
}

enum mdm_err buf_reserve(struct buf *b, size_t extra)
{
	enum mdm_err e = buf_grow(b, extra);

	if (!e && b->mem)
		b->mem[b->len] = '\0';
	return e;
}

enum mdm_err buf_add(struct buf *b, const void *mem, size_t len)
{
	enum mdm_err e = buf_grow(b, len);

	if (e)
		return e;
	if (len)
		memcpy(b->mem + b->len, mem, len);
	b->len += len;
	b->mem[b->len] = '\0';
	return MDM_OK;
}

enum mdm_err buf_addstr(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

enum mdm_err buf_vaddf(struct buf *b, const char *fmt, va_list ap)
{
	va_list again;
	int n;
	enum mdm_err e;

	va_copy(again, ap);
	n = vsnprintf(NULL, 0, fmt, ap);
	if (n < 0) {
		va_end(again);
		return MDM_ERR_INVALID;
	}
	e = buf_grow(b, (size_t)n);
	if (!e) {
		vsnprintf(b->mem + b->len, (size_t)n + 1, fmt, again);
		b->len += (size_t)n;
	}
	va_end(again);
	return e;
}

enum mdm_err buf_addf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	enum mdm_err e;

	va_start(ap, fmt);
	e = buf_vaddf(b, fmt, ap);
	va_end(ap);
	return e;
}

const char *buf_str(const struct buf *b)
{
	return b->mem ? b->mem : "";
}

char *buf_take(struct buf *b, size_t *len)
{
	char *p = b->mem;

	if (b->len == 0) {
		buf_free(b);
		if (len)
			*len = 0;
		return NULL;
	}

	if (len)
		*len = b->len;
	b->mem = NULL;
	b->len = 0;
	b->alloc = 0;
	return p;
}

enum mdm_err str_copyn(char *dst, size_t size, const char *src, size_t len)
{
	if (size == 0)
		return MDM_ERR_TOOBIG;
	if (len >= size) {
		dst[0] = '\0';
		return MDM_ERR_TOOBIG;
	}
	memcpy(dst, src, len);
	dst[len] = '\0';
	return MDM_OK;
}

enum mdm_err str_copy(char *dst, size_t size, const char *src)
{
	return str_copyn(dst, size, src, strlen(src));
}

int str_eq_ct(const void *a, const void *b, size_t len)
{
	const volatile unsigned char *x = a, *y = b;
	unsigned char d = 0;
	size_t i;

	for (i = 0; i < len; i++)
		d |= x[i] ^ y[i];
	return d == 0;
}
