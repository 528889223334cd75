#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/buf.h"
#include "../../core/text.h"
#include "../../core/xmlparse.h"
#include "reqxml.h"

/* Element names whose text is collected. The identifier kinds of an action are 1..6. */
static const char *const tag_names[] = {
    "value", "macaddress", "guid", "udid", "imei", "meid", "serial_number", "hostname", "username",
};

enum {
	TAG_NONE = -1,
	TAG_IDENT_FIRST = 1,
	TAG_IDENT_LAST = 6,
	TAG_COUNT = (int)(sizeof(tag_names) / sizeof(tag_names[0])),
};

enum rx_mode { RX_VALUES, RX_ACTION };

struct rx {
	struct xmlparse x; /* x.depth: open elements, the root is 1 */
	enum rx_mode mode;
	size_t run;	 /* bytes of the text node being read */
	struct buf text; /* direct text of the open collected elements, innermost last */
	signed char tag[REQXML_MAX_DEPTH + 1]; /* tag index of each open element, or TAG_NONE */
	size_t start[REQXML_MAX_DEPTH + 1];    /* where that element's text starts in text */
	/* RX_VALUES */
	size_t max;
	struct reqxml_item *items;
	size_t n, cap;
	/* RX_ACTION */
	int id_depth; /* depth of the open <identifier>, 0 when none is open */
	struct reqxml_item *out;
	bool found;
};

static int tag_index(const char *name)
{
	for (int i = 0; i < TAG_COUNT; i++)
		if (text_ieq(name, strlen(name), tag_names[i]))
			return i;
	return TAG_NONE;
}

/* --- batch values --- */

/* Grows items geometrically, never past max, so memory follows what the body really holds. */
static enum mdm_err items_reserve(struct rx *rx)
{
	size_t cap;
	struct reqxml_item *p;

	if (rx->n < rx->cap)
		return MDM_OK;
	cap = rx->cap ? rx->cap * 2 : 16;
	if (cap > rx->max)
		cap = rx->max;
	if (cap > SIZE_MAX / sizeof(*p))
		return MDM_ERR_NOMEM;
	p = realloc(rx->items, cap * sizeof(*p));
	if (!p)
		return MDM_ERR_NOMEM;
	rx->items = p;
	rx->cap = cap;
	return MDM_OK;
}

static void add_piece(struct rx *rx, int tag, const char *s, size_t len)
{
	struct reqxml_item *it;
	enum mdm_err e;

	text_trim(&s, &len);
	if (len == 0)
		return;
	if (len > IDENT_VALUE_MAX) {
		xmlparse_fail(&rx->x, MDM_ERR_INVALID, "a <%s> value is longer than %d bytes",
			      tag_names[tag], IDENT_VALUE_MAX);
		return;
	}
	if (rx->n >= rx->max) {
		xmlparse_fail(&rx->x, MDM_ERR_TOOBIG, "more than %zu values", rx->max);
		return;
	}
	e = items_reserve(rx);
	if (e) {
		xmlparse_fail(&rx->x, e, "out of memory for the values");
		return;
	}
	it = &rx->items[rx->n++];
	memset(it, 0, sizeof(*it));
	str_copy(it->tag, sizeof(it->tag), tag_names[tag]);
	str_copyn(it->value, sizeof(it->value), s, len);
}

/* A batch element's text is a comma-separated list: "A, B,,C" gives A, B and C. */
static void values_text(struct rx *rx, int tag, const char *s, size_t len)
{
	while (!rx->x.err) {
		const char *comma = memchr(s, ',', len);
		size_t piece = comma ? (size_t)(comma - s) : len;

		add_piece(rx, tag, s, piece);
		if (!comma)
			return;
		s += piece + 1;
		len -= piece + 1;
	}
}

/* --- action identifier --- */

static void action_text(struct rx *rx, int tag, const char *s, size_t len)
{
	const char *name = tag_names[tag];

	text_trim(&s, &len);
	if (len == 0) {
		xmlparse_fail(&rx->x, MDM_ERR_INVALID, "the <%s> identifier is empty", name);
		return;
	}
	if (len > IDENT_VALUE_MAX) {
		xmlparse_fail(&rx->x, MDM_ERR_INVALID,
			      "the <%s> identifier is longer than %d bytes", name, IDENT_VALUE_MAX);
		return;
	}
	if (rx->found) {
		/* The same identifier twice is harmless; two different ones leave it unclear. */
		if (strcmp(rx->out->tag, name) != 0 || strlen(rx->out->value) != len ||
		    memcmp(rx->out->value, s, len) != 0)
			xmlparse_fail(&rx->x, MDM_ERR_INVALID,
				      "two different identifiers in the action body");
		return;
	}
	str_copy(rx->out->tag, sizeof(rx->out->tag), name);
	str_copyn(rx->out->value, sizeof(rx->out->value), s, len);
	rx->found = true;
}

/* Which tag (if any) an element opened at rx->x.depth collects, for the current mode. */
static int classify(struct rx *rx, const char *name)
{
	int t = tag_index(name);

	if (rx->mode == RX_VALUES)
		return t;
	if (rx->id_depth == 0 && text_ieq(name, strlen(name), "identifier")) {
		rx->id_depth = rx->x.depth;
		return TAG_NONE;
	}
	if (rx->id_depth && rx->x.depth == rx->id_depth + 1 && t >= TAG_IDENT_FIRST &&
	    t <= TAG_IDENT_LAST)
		return t;
	return TAG_NONE;
}

/* --- the parser's callbacks --- */

static void rx_open(struct xmlparse *x, const char *name)
{
	struct rx *rx = x->ctx;

	rx->run = 0;
	rx->tag[x->depth] = (signed char)classify(rx, name);
	rx->start[x->depth] = rx->text.len;
}

static void rx_close(struct xmlparse *x, const char *text, size_t len)
{
	struct rx *rx = x->ctx;
	int t = rx->tag[x->depth];
	size_t from = rx->start[x->depth];

	(void)text, (void)len; /* the text of collected elements is kept in rx->text */
	rx->run = 0;
	if (t != TAG_NONE) {
		const char *s = rx->text.mem ? rx->text.mem + from : "";

		if (rx->mode == RX_VALUES)
			values_text(rx, t, s, rx->text.len - from);
		else
			action_text(rx, t, s, rx->text.len - from);
		/* Drop this element's text so its parent's own text continues where it stopped. */
		rx->text.len = from;
		if (rx->text.mem)
			rx->text.mem[from] = '\0';
	}
	if (rx->id_depth == x->depth)
		rx->id_depth = 0;
}

static void rx_text(struct xmlparse *x, const char *s, size_t n)
{
	struct rx *rx = x->ctx;
	int d = x->depth;
	enum mdm_err e;

	/* expat hands one text node over in several calls: the limit is on their sum. */
	if (n > REQXML_MAX_TEXT - rx->run) {
		xmlparse_fail(x, MDM_ERR_PARSE, "a text node is longer than %d bytes",
			      REQXML_MAX_TEXT);
		return;
	}
	rx->run += n;
	if (rx->tag[d] == TAG_NONE)
		return;
	if (rx->text.len - rx->start[d] > REQXML_MAX_TEXT - n) {
		xmlparse_fail(x, MDM_ERR_PARSE, "the text of <%s> is longer than %d bytes",
			      tag_names[(int)rx->tag[d]], REQXML_MAX_TEXT);
		return;
	}
	e = buf_add(&rx->text, s, n);
	if (e)
		xmlparse_fail(x, e, "out of memory for the text of <%s>",
			      tag_names[(int)rx->tag[d]]);
}

static const struct xmlparse_ops rx_ops = {.open = rx_open, .close = rx_close, .text = rx_text};

/* parse: runs the body through the hardened parser in rx's mode; rx holds the results. */
static enum mdm_err parse(struct rx *rx, const char *body, size_t len, char *why, size_t whysz)
{
	enum mdm_err e;

	/* The body's size was bounded where it was received. */
	rx->x = (struct xmlparse){.ops = &rx_ops,
				  .ctx = rx,
				  .max_depth = REQXML_MAX_DEPTH,
				  .max_body = SIZE_MAX,
				  .why = why,
				  .whysz = whysz};
	buf_init(&rx->text, (size_t)REQXML_MAX_DEPTH * REQXML_MAX_TEXT + 1);
	e = xmlparse_run(&rx->x, body, len);
	buf_free(&rx->text);
	return e;
}

enum mdm_err reqxml_values(const char *body, size_t len, size_t max, struct reqxml_item **items,
			   size_t *n, char *why, size_t whysz)
{
	struct rx rx;
	enum mdm_err e;

	memset(&rx, 0, sizeof(rx));
	rx.mode = RX_VALUES;
	rx.max = max;
	*items = NULL;
	*n = 0;
	e = parse(&rx, body, len, why, whysz);
	/* The contract promises a block to free() even for an empty list. */
	if (!e && !rx.items) {
		rx.items = calloc(1, sizeof(*rx.items));
		if (!rx.items) {
			err_why(why, whysz, "out of memory for the values");
			e = MDM_ERR_NOMEM;
		}
	}
	if (e) {
		free(rx.items);
		return e;
	}
	*items = rx.items;
	*n = rx.n;
	return MDM_OK;
}

enum mdm_err reqxml_action(const char *body, size_t len, struct reqxml_item *out, char *why,
			   size_t whysz)
{
	struct rx rx;
	enum mdm_err e;

	memset(&rx, 0, sizeof(rx));
	memset(out, 0, sizeof(*out));
	rx.mode = RX_ACTION;
	rx.out = out;
	e = parse(&rx, body, len, why, whysz);
	if (!e && !rx.found) {
		err_why(why, whysz, "no identifier in the action body");
		e = MDM_ERR_INVALID;
	}
	if (e)
		memset(out, 0, sizeof(*out));
	return e;
}

/* --- multipart --- */

#define BOUNDARY_MAX 70 /* RFC 2046 */

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* RFC 2046 bchars: the boundary may hold these (space, but not at the end). */
static bool is_bchar(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c && strchr("'()+_,-./:=? ", c));
}

static bool is_tspecial_end(char c)
{
	return c == '\0' || c == ';' || c == '=' || is_ows(c);
}

/*
 * param_value: reads a token or quoted-string at ct[*i] into dst (when dst is not NULL).
 * MDM_ERR_PARSE if unterminated or longer than dstsz - 1.
 */
static enum mdm_err param_value(const char *ct, size_t *i, char *dst, size_t dstsz, size_t *dlen)
{
	bool quoted = ct[*i] == '"';
	size_t n = 0;

	if (quoted)
		(*i)++;
	for (;;) {
		char c = ct[*i];

		if (c == '\0' && quoted)
			return MDM_ERR_PARSE;
		if (quoted ? c == '"' : (c == '\0' || c == ';' || is_ows(c)))
			break;
		if (quoted && c == '\\' && ct[*i + 1])
			c = ct[++*i];
		if (dst) {
			if (n + 1 >= dstsz)
				return MDM_ERR_PARSE;
			dst[n] = c;
		}
		n++;
		(*i)++;
	}
	if (quoted)
		(*i)++;
	if (dst)
		dst[n] = '\0';
	*dlen = n;
	return MDM_OK;
}

static bool boundary_ok(const char *b, size_t len)
{
	if (len == 0 || len > BOUNDARY_MAX || b[len - 1] == ' ')
		return false;
	for (size_t i = 0; i < len; i++)
		if (!is_bchar(b[i]))
			return false;
	return true;
}

/* One "; name=value" parameter; the boundary, if it is one, goes to b (blen 0: none yet). */
static enum mdm_err ct_param(const char *ct, size_t *i, char *b, size_t *blen)
{
	size_t name = *i, namelen, vlen;
	bool is_boundary;

	while (!is_tspecial_end(ct[*i]))
		(*i)++;
	namelen = *i - name;
	while (is_ows(ct[*i]))
		(*i)++;
	if (namelen == 0 || ct[*i] != '=')
		return MDM_ERR_PARSE;
	(*i)++;
	while (is_ows(ct[*i]))
		(*i)++;
	is_boundary = text_ieq(ct + name, namelen, "boundary");
	if (is_boundary && *blen)
		return MDM_ERR_PARSE; /* two boundaries: which one is meant is anyone's guess */
	if (param_value(ct, i, is_boundary ? b : NULL, BOUNDARY_MAX + 1, &vlen))
		return MDM_ERR_PARSE;
	if (is_boundary) {
		if (!boundary_ok(b, vlen))
			return MDM_ERR_PARSE;
		*blen = vlen;
	}
	return MDM_OK;
}

/*
 * ct_boundary: whether ct names a multipart type we unwrap, and its boundary. *blen stays 0 for
 * any other type; a multipart type without a usable boundary is MDM_ERR_PARSE.
 */
static enum mdm_err ct_boundary(const char *ct, char b[BOUNDARY_MAX + 1], size_t *blen)
{
	size_t i = 0, type;
	enum mdm_err e;

	*blen = 0;
	while (is_ows(ct[i]))
		i++;
	type = i;
	while (ct[i] && ct[i] != ';' && !is_ows(ct[i]))
		i++;
	if (!text_ieq(ct + type, i - type, "multipart/form-data") &&
	    !text_ieq(ct + type, i - type, "multipart/mixed"))
		return MDM_OK;
	for (;;) {
		while (is_ows(ct[i]))
			i++;
		if (ct[i] == '\0')
			break;
		if (ct[i] != ';')
			return MDM_ERR_PARSE;
		i++;
		while (is_ows(ct[i]))
			i++;
		if (ct[i] == '\0')
			break; /* a trailing ';' is sloppy but harmless */
		e = ct_param(ct, &i, b, blen);
		if (e)
			return e;
	}
	return *blen ? MDM_OK : MDM_ERR_PARSE;
}

/*
 * delimiter_at: whether "--boundary" starts at body[at] and is followed by "--" (*close) or by
 * transport padding and a line end; *next is the offset just past that line end.
 */
static bool delimiter_at(const char *body, size_t len, size_t at, const char *b, size_t blen,
			 bool *close, size_t *next)
{
	size_t i = at;

	if (len - at < blen + 2 || body[i] != '-' || body[i + 1] != '-' ||
	    memcmp(body + i + 2, b, blen) != 0)
		return false;
	i += blen + 2;
	if (len - i >= 2 && body[i] == '-' && body[i + 1] == '-') {
		*close = true;
		*next = i + 2;
		return true;
	}
	while (i < len && is_ows(body[i]))
		i++;
	if (i < len && body[i] == '\r')
		i++;
	if (i >= len || body[i] != '\n')
		return false;
	*close = false;
	*next = i + 1;
	return true;
}

/* first_delimiter: offset past the line of the opening delimiter (a preamble may come first). */
static enum mdm_err first_delimiter(const char *body, size_t len, const char *b, size_t blen,
				    size_t *next)
{
	size_t at = 0;
	bool close;

	for (;;) {
		const char *nl;

		if (delimiter_at(body, len, at, b, blen, &close, next))
			return close ? MDM_ERR_PARSE : MDM_OK;
		nl = memchr(body + at, '\n', len - at);
		if (!nl)
			return MDM_ERR_PARSE;
		at = (size_t)(nl - body) + 1;
	}
}

/* skip_headers: offset of the part body, just past the blank line that ends the headers. */
static enum mdm_err skip_headers(const char *body, size_t len, size_t at, size_t *next)
{
	for (;;) {
		const char *nl = at < len ? memchr(body + at, '\n', len - at) : NULL;
		size_t end;

		if (!nl)
			return MDM_ERR_PARSE;
		end = (size_t)(nl - body);
		if (end == at || (end == at + 1 && body[at] == '\r')) {
			*next = end + 1;
			return MDM_OK;
		}
		at = end + 1;
	}
}

/* part_end: where the part starting at from ends, i.e. the line end before the next delimiter. */
static enum mdm_err part_end(const char *body, size_t len, size_t from, const char *b, size_t blen,
			     size_t *end)
{
	size_t at = from, next;
	bool close;

	/* No line end between headers and delimiter: a sloppy sender's empty part. */
	if (delimiter_at(body, len, from, b, blen, &close, &next)) {
		*end = from;
		return MDM_OK;
	}
	for (;;) {
		const char *nl = at < len ? memchr(body + at, '\n', len - at) : NULL;
		size_t k;

		if (!nl)
			return MDM_ERR_PARSE;
		k = (size_t)(nl - body);
		if (delimiter_at(body, len, k + 1, b, blen, &close, &next)) {
			*end = (k > from && body[k - 1] == '\r') ? k - 1 : k;
			return MDM_OK;
		}
		at = k + 1;
	}
}

enum mdm_err multipart_first_part(const char *content_type, const char *body, size_t len,
				  const char **part, size_t *partlen)
{
	char b[BOUNDARY_MAX + 1];
	size_t blen, hdr, start, end;
	enum mdm_err e;

	*part = body;
	*partlen = len;
	if (!content_type)
		return MDM_OK;
	e = ct_boundary(content_type, b, &blen);
	if (e || blen == 0)
		goto out;
	e = MDM_ERR_PARSE;
	if (!body)
		goto out;
	e = first_delimiter(body, len, b, blen, &hdr);
	if (!e)
		e = skip_headers(body, len, hdr, &start);
	if (!e)
		e = part_end(body, len, start, b, blen, &end);
	if (!e) {
		*part = body + start;
		*partlen = end - start;
	}
out:
	if (e) {
		*part = NULL;
		*partlen = 0;
	}
	return e;
}
