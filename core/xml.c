#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "xml.h"

static const char indent[] = "                                                                ";

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
	size_t n;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe || cp == 0xffff)
		return 0;
	return n;
}

enum mdm_err xml_escape(struct buf *out, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, run = 0;
	enum mdm_err e = MDM_OK;

	while (i < len && !e) {
		const char *rep = NULL;
		size_t n = 1;
		unsigned char c = p[i];

		switch (c) {
		case '&':
			rep = "&amp;";
			break;
		case '<':
			rep = "&lt;";
			break;
		case '>':
			rep = "&gt;";
			break;
		case '"':
			rep = "&quot;";
			break;
		case '\'':
			rep = "&apos;";
			break;
		default:
			if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
				rep = "\xef\xbf\xbd";
			else if (c >= 0x80 && (n = utf8_seq(p + i, len - i)) == 0)
				rep = "\xef\xbf\xbd", n = 1;
		}
		if (!rep) {
			i += n;
			run += n;
			continue;
		}
		if (run)
			e = buf_add(out, s + i - run, run);
		if (!e)
			e = buf_addstr(out, rep);
		run = 0;
		i += n;
	}
	if (!e && run)
		e = buf_add(out, s + i - run, run);
	return e;
}

static void put_indent(struct xml_writer *w)
{
	size_t n = (size_t)w->depth * 2;

	if (n > sizeof(indent) - 1)
		n = sizeof(indent) - 1;
	if (!w->err && n)
		w->err = buf_add(w->out, indent, n);
}

static void put(struct xml_writer *w, const char *s)
{
	if (!w->err)
		w->err = buf_addstr(w->out, s);
}

void xml_begin(struct xml_writer *w, struct buf *out)
{
	w->out = out;
	w->depth = 0;
	w->err = MDM_OK;
	put(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
}

void xml_open(struct xml_writer *w, const char *tag)
{
	put_indent(w);
	put(w, "<");
	put(w, tag);
	put(w, ">\n");
	w->depth++;
}

void xml_close(struct xml_writer *w, const char *tag)
{
	if (w->depth > 0)
		w->depth--;
	put_indent(w);
	put(w, "</");
	put(w, tag);
	put(w, ">\n");
}

void xml_text(struct xml_writer *w, const char *tag, const char *text)
{
	put_indent(w);
	put(w, "<");
	put(w, tag);
	put(w, ">");
	if (text && !w->err)
		w->err = xml_escape(w->out, text, strlen(text));
	put(w, "</");
	put(w, tag);
	put(w, ">\n");
}

void xml_empty(struct xml_writer *w, const char *tag)
{
	put_indent(w);
	put(w, "<");
	put(w, tag);
	put(w, "/>\n");
}

void xml_bool(struct xml_writer *w, const char *tag, bool v)
{
	xml_text(w, tag, v ? "true" : "false");
}

void xml_int(struct xml_writer *w, const char *tag, int64_t v)
{
	char num[24];

	snprintf(num, sizeof(num), "%" PRId64, v);
	xml_text(w, tag, num);
}

enum mdm_err xml_end(struct xml_writer *w)
{
	return w->err;
}
