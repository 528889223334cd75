/*
 * strw: a bounded string writer into a caller's array, for building URLs and quoted literals
 * without allocating. Pieces are appended one after the other; the first piece that does not fit
 * (with its terminating NUL) marks the writer over, and every later piece is dropped, so a
 * builder appends everything and asks strw_end once whether it all fitted. The array always
 * holds a NUL-terminated string (when it has room for one).
 * Not thread-safe: one writer belongs to one caller at a time.
 */
#ifndef MDM_STRW_H
#define MDM_STRW_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

struct strw {
	char *out;
	size_t sz, len;
	bool over; /* a piece did not fit: out no longer holds what was asked */
};

/* strw_init: w writes into out[0..sz), empty for now; sz == 0 is over at once. */
void strw_init(struct strw *w, char *out, size_t sz);
/* strw_add / strw_str: appends p[0..n) / the string p. */
void strw_add(struct strw *w, const char *p, size_t n);
void strw_str(struct strw *w, const char *p);
/*
 * strw_pct: appends p[0..n) percent-encoded (RFC 3986): the unreserved characters
 * (A-Z a-z 0-9 - . _ ~) and those in keep (NULL: none) stay as they are, every other byte
 * becomes %XX with upper-case hex digits.
 */
void strw_pct(struct strw *w, const char *p, size_t n, const char *keep);
/*
 * strw_origin: appends base without its trailing slashes, the start of a URL that a path
 * follows. False when nothing is left of base (NULL, empty or only slashes).
 */
bool strw_origin(struct strw *w, const char *base);
/* strw_end: MDM_OK when everything fitted; else MDM_ERR_TOOBIG and out is "" (half a URL is
 * never used by mistake). */
enum mdm_err strw_end(struct strw *w);

#endif
