/* text: see text.h. */
#include "text.h"

bool text_is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

char text_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

void text_trim(const char **s, size_t *len)
{
	while (*len && text_is_ws(**s)) {
		(*s)++;
		(*len)--;
	}
	while (*len && text_is_ws((*s)[*len - 1]))
		(*len)--;
}

bool text_ieq(const char *s, size_t len, const char *w)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (w[i] == '\0' || text_lower(s[i]) != w[i])
			return false;
	return w[i] == '\0';
}

bool text_digits(const char *s, size_t n, int *out)
{
	int v = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}
