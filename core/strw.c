/* strw: see strw.h. */
#include <string.h>

#include "strw.h"

void strw_init(struct strw *w, char *out, size_t sz)
{
	w->out = out;
	w->sz = sz;
	w->len = 0;
	w->over = sz == 0;
	if (sz)
		out[0] = '\0';
}

void strw_add(struct strw *w, const char *p, size_t n)
{
	if (w->over || n >= w->sz - w->len) {
		w->over = true;
		return;
	}
	memcpy(w->out + w->len, p, n);
	w->len += n;
	w->out[w->len] = '\0';
}

void strw_str(struct strw *w, const char *p)
{
	strw_add(w, p, strlen(p));
}

static bool unreserved(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

void strw_pct(struct strw *w, const char *p, size_t n, const char *keep)
{
	static const char hex[] = "0123456789ABCDEF";

	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)p[i];
		char esc[3] = {'%', hex[ch >> 4], hex[ch & 15]};

		/* ch != 0: strchr finds the terminator of any keep */
		if (unreserved(ch) || (ch && keep && strchr(keep, ch)))
			strw_add(w, p + i, 1);
		else
			strw_add(w, esc, 3);
	}
}

bool strw_origin(struct strw *w, const char *base)
{
	size_t n = base ? strlen(base) : 0;

	while (n && base[n - 1] == '/')
		n--;
	if (n == 0)
		return false;
	strw_add(w, base, n);
	return true;
}

enum mdm_err strw_end(struct strw *w)
{
	if (!w->over)
		return MDM_OK;
	if (w->sz)
		w->out[0] = '\0';
	return MDM_ERR_TOOBIG;
}
