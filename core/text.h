/*
 * text: small ASCII helpers for the parsers of vendor and NAC text (XML values, dates, header
 * parameters). They work on (pointer, length) slices, never need a NUL, and know nothing of
 * locales: white space and case are ASCII's. Pure functions; thread-safe.
 */
#ifndef MDM_TEXT_H
#define MDM_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* text_is_ws: space, tab, newline, carriage return, form feed or vertical tab. */
bool text_is_ws(char c);
/* text_lower: c in lower case when it is an ASCII capital. */
char text_lower(char c);
/* text_trim: narrows s[0..*len) to leave out the white space at both ends. */
void text_trim(const char **s, size_t *len);
/* text_ieq: s[0..len) equals the lower-case word w, ignoring ASCII case. */
bool text_ieq(const char *s, size_t len, const char *w);
/* text_digits: s[0..n) is exactly n decimal digits (n small enough for an int): *out. */
bool text_digits(const char *s, size_t n, int *out);

#endif
