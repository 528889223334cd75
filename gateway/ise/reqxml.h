/*
 * reqxml: the XML bodies a NAC engine sends (batchdevices lists, action identifiers), parsed
 * with expat. Untrusted input: DOCTYPE / DTDs, entity declarations and external entities are
 * refused outright (billion laughs, XXE), nesting deeper than REQXML_MAX_DEPTH and text nodes
 * longer than REQXML_MAX_TEXT are refused. Element names are matched case-insensitively and
 * without namespace prefix. Bodies may also arrive as the first part of multipart/form-data.
 */
#ifndef MDM_REQXML_H
#define MDM_REQXML_H

#include <stddef.h>

#include "../../core/err.h"
#include "../../core/ident.h"

#define REQXML_MAX_DEPTH 32
#define REQXML_MAX_TEXT 65536

struct reqxml_item {
	char tag[16]; /* lower-case element name it came from, e.g. "macaddress" */
	char value[IDENT_VALUE_MAX + 1]; /* trimmed, one comma-separated piece */
};

/*
 * reqxml_values: every text piece of <value>, <macaddress>, <guid>, <udid>, <imei>, <meid>,
 * <serial_number>, <hostname> and <username> elements, split on commas and trimmed, empty pieces
 * dropped, in document order. More than max pieces: MDM_ERR_TOOBIG. A piece longer than
 * IDENT_VALUE_MAX: MDM_ERR_INVALID. Malformed or refused XML: MDM_ERR_PARSE. why says which.
 * *items is malloc'd (free() it), also when *n is 0; on error it is NULL and *n is 0.
 */
enum mdm_err reqxml_values(const char *body, size_t len, size_t max, struct reqxml_item **items,
			   size_t *n, char *why, size_t whysz);

/*
 * reqxml_action: the identifier of an action body
 * <ise_api><identifier><macaddress>..</macaddress></identifier></ise_api> (or <guid>, <udid>,
 * <imei>, <meid>, <serial_number>): tag gets the element name, value the trimmed text.
 * No identifier, or two different ones: MDM_ERR_INVALID. On error *out is all zero.
 */
enum mdm_err reqxml_action(const char *body, size_t len, struct reqxml_item *out, char *why,
			   size_t whysz);

/*
 * multipart_first_part: if content_type is multipart/form-data (or multipart/mixed) with a
 * boundary, points *part at the body of its first part (headers skipped). Any other content
 * type: *part is body itself. Broken multipart: MDM_ERR_PARSE, *part NULL and *partlen 0.
 */
enum mdm_err multipart_first_part(const char *content_type, const char *body, size_t len,
				  const char **part, size_t *partlen);

#endif
