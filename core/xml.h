/*
 * xml: a small writer for the XML the gateway sends. Text is escaped (&, <, >, ", ') and bytes
 * that XML 1.0 cannot carry (control characters other than tab/newline/CR, invalid UTF-8) are
 * replaced by U+FFFD so a vendor's odd byte never breaks the document. Output is indented by
 * two spaces per level, one element per line.
 */
#ifndef MDM_XML_H
#define MDM_XML_H

#include <stdbool.h>
#include <stdint.h>
#include "buf.h"

struct xml_writer {
	struct buf *out;
	int depth;
	enum mdm_err err; /* first error; later calls do nothing once set */
};

/* xml_begin: starts a document in out with the XML declaration. */
void xml_begin(struct xml_writer *w, struct buf *out);
/* xml_open / xml_close: <tag> and </tag> on lines of their own. */
void xml_open(struct xml_writer *w, const char *tag);
void xml_close(struct xml_writer *w, const char *tag);
/* xml_text: <tag>escaped text</tag>; NULL text writes <tag></tag>. */
void xml_text(struct xml_writer *w, const char *tag, const char *text);
/* xml_empty: <tag/>. */
void xml_empty(struct xml_writer *w, const char *tag);
void xml_bool(struct xml_writer *w, const char *tag, bool v);
void xml_int(struct xml_writer *w, const char *tag, int64_t v);
/* xml_end: the first error met while writing, MDM_OK when the document is complete. */
enum mdm_err xml_end(struct xml_writer *w);
/* xml_escape: appends len bytes of s to out, escaped as described above. */
enum mdm_err xml_escape(struct buf *out, const char *s, size_t len);

#endif
