/*
 * xmlparse: the one hardened expat set-up every XML reader of the gateway goes through (the
 * ISE MDM API answers, the NAC's request bodies, the MnT answers). xmlparse_run refuses a body
 * over max_body unread, then parses it with
 *   - no DOCTYPE at all (which alone keeps out every DTD); should that ever give way, entity
 *     declarations, unparsed entities and external entities are refused too, parameter
 *     entities are never parsed, and expat's own amplification limit is a third line;
 *   - at most max_depth open elements;
 *   - namespace processing off: callbacks see an element's local name (after its last ':').
 * The first error wins: it is kept with its reason in why, the parser is stopped, and no
 * callback runs after it. Callbacks read the state below (depth, ctx) and fail through
 * xmlparse_fail.
 * Not thread-safe: one struct xmlparse serves one parse on one thread; xmlparse_run may be
 * called from any number of threads with their own.
 */
#ifndef MDM_XMLPARSE_H
#define MDM_XMLPARSE_H

#include <stddef.h>

#include "err.h"

struct xmlparse;

struct xmlparse_ops {
	/* open: an element opened; x->depth counts it already (the root is 1). */
	void (*open)(struct xmlparse *x, const char *name);
	/* close: the element at x->depth closes; text is its collected direct text (see text
	 * below), NUL-terminated, or "" when nothing is collected. */
	void (*close)(struct xmlparse *x, const char *text, size_t len);
	/* text: optional, a piece of character data inside an element (expat hands one text
	 * node over in several pieces). */
	void (*text)(struct xmlparse *x, const char *s, size_t len);
};

struct xmlparse {
	/* set by the caller */
	const struct xmlparse_ops *ops;
	void *ctx;	      /* the caller's, for its callbacks */
	int max_depth;	      /* open elements allowed; one more is refused */
	size_t max_body;      /* a longer body: MDM_ERR_TOOBIG, unread */
	const char *encoding; /* forced encoding ("UTF-8"), or NULL: as the document says */
	/* Optional: the direct text of the innermost open element is collected here (past
	 * text_max bytes the rest is dropped: the caller keeps only shorter values) and handed to
	 * close; text has text_max + 1 bytes. NULL: nothing is collected. */
	char *text;
	size_t text_max;
	char *why; /* the first error's reason, when whysz > 0 */
	size_t whysz;
	/* state, read by callbacks */
	int depth;	  /* open elements */
	enum mdm_err err; /* first error; MDM_OK so far */
	/* private */
	void *parser;
	size_t tlen;
};

/*
 * xmlparse_run: parses body[0..len) (NULL: an empty body) through x's callbacks. x holds the
 * caller's settings; its state is reset here. Returns x->err: MDM_ERR_TOOBIG for a body over
 * max_body, MDM_ERR_NOMEM without a parser, MDM_ERR_PARSE for a document expat refuses ("XML
 * error at line L column C: ...") or one refused by the rules above, else what a callback gave
 * xmlparse_fail.
 */
enum mdm_err xmlparse_run(struct xmlparse *x, const char *body, size_t len);

/* xmlparse_fail: from a callback, the first error: kept with its reason, the parse stops. */
void xmlparse_fail(struct xmlparse *x, enum mdm_err e, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#endif
