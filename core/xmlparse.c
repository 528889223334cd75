/* xmlparse: see xmlparse.h. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/*
 * expat.h declares the billion-laughs limits only when the includer defines XML_DTD, although
 * every libexpat built with DTD support (Debian's included) exports them. Defining it here only
 * makes those declarations visible; it changes nothing else in the header.
 */
#ifndef XML_DTD
#define XML_DTD 1
#endif
#include <expat.h>

#include "xmlparse.h"

/* XML_Parse takes an int length: bodies are fed in slices no bigger than this. */
#define FEED_CHUNK ((size_t)1 << 20)

void xmlparse_fail(struct xmlparse *x, enum mdm_err e, const char *fmt, ...)
{
	va_list ap;

	if (x->err)
		return;
	x->err = e;
	if (x->why && x->whysz) {
		va_start(ap, fmt);
		vsnprintf(x->why, x->whysz, fmt, ap);
		va_end(ap);
	}
	XML_StopParser(x->parser, XML_FALSE);
}

/* --- the callers' callbacks, behind the guards every reader needs ------------------------- */

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
	struct xmlparse *x = ud;
	const char *colon = strrchr(name, ':');

	(void)attrs;
	if (x->err)
		return;
	if (x->depth >= x->max_depth) {
		xmlparse_fail(x, MDM_ERR_PARSE, "XML nested deeper than %d elements", x->max_depth);
		return;
	}
	x->depth++;
	x->tlen = 0;
	if (x->ops->open)
		x->ops->open(x, colon ? colon + 1 : name);
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
	struct xmlparse *x = ud;

	(void)name;
	if (x->err || x->depth < 1)
		return;
	if (x->text)
		x->text[x->tlen] = '\0';
	x->ops->close(x, x->text ? x->text : "", x->tlen);
	x->tlen = 0;
	x->depth--;
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
	struct xmlparse *x = ud;
	size_t n = (size_t)len;

	if (x->err || len <= 0 || x->depth < 1)
		return;
	if (x->ops->text)
		x->ops->text(x, s, n);
	if (!x->text || x->err)
		return;
	if (n > x->text_max - x->tlen)
		n = x->text_max - x->tlen;
	memcpy(x->text + x->tlen, s, n);
	x->tlen += n;
}

/* --- the refusals ------------------------------------------------------------------------- */

static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
			       const XML_Char *pubid, int has_internal_subset)
{
	(void)name, (void)sysid, (void)pubid, (void)has_internal_subset;
	xmlparse_fail(ud, MDM_ERR_PARSE, "a DOCTYPE is not allowed");
}

static void XMLCALL on_entity(void *ud, const XML_Char *name, int is_param, const XML_Char *value,
			      int value_len, const XML_Char *base, const XML_Char *sysid,
			      const XML_Char *pubid, const XML_Char *notation)
{
	(void)name, (void)is_param, (void)value, (void)value_len, (void)base, (void)sysid,
	    (void)pubid, (void)notation;
	xmlparse_fail(ud, MDM_ERR_PARSE, "entity declarations are not allowed");
}

static void XMLCALL on_unparsed(void *ud, const XML_Char *name, const XML_Char *base,
				const XML_Char *sysid, const XML_Char *pubid,
				const XML_Char *notation)
{
	(void)name, (void)base, (void)sysid, (void)pubid, (void)notation;
	xmlparse_fail(ud, MDM_ERR_PARSE, "unparsed entities are not allowed");
}

static int XMLCALL on_extref(XML_Parser p, const XML_Char *context, const XML_Char *base,
			     const XML_Char *sysid, const XML_Char *pubid)
{
	(void)context, (void)base, (void)sysid, (void)pubid;
	xmlparse_fail(XML_GetUserData(p), MDM_ERR_PARSE, "external entities are not allowed");
	return XML_STATUS_ERROR;
}

/*
 * The DOCTYPE handler alone refuses every DTD; the others make sure nothing declared in one is
 * ever used should that first line give way, and expat's own amplification limit is a third.
 */
static void harden(XML_Parser p)
{
	XML_SetStartDoctypeDeclHandler(p, on_doctype);
	XML_SetEntityDeclHandler(p, on_entity);
	XML_SetUnparsedEntityDeclHandler(p, on_unparsed);
	XML_SetExternalEntityRefHandler(p, on_extref);
	XML_SetParamEntityParsing(p, XML_PARAM_ENTITY_PARSING_NEVER);
#if XML_MAJOR_VERSION > 2 || (XML_MAJOR_VERSION == 2 && XML_MINOR_VERSION >= 4)
	XML_SetBillionLaughsAttackProtectionMaximumAmplification(p, 10.0f);
	XML_SetBillionLaughsAttackProtectionActivationThreshold(p, 1u << 20);
#endif
}

static enum mdm_err feed(struct xmlparse *x, const char *body, size_t len)
{
	XML_Parser p = x->parser;

	do {
		size_t chunk = len > FEED_CHUNK ? FEED_CHUNK : len;

		if (XML_Parse(p, body, (int)chunk, chunk == len) != XML_STATUS_OK) {
			if (!x->err) {
				x->err = MDM_ERR_PARSE;
				err_why(x->why, x->whysz, "XML error at line %llu column %llu: %s",
					(unsigned long long)XML_GetCurrentLineNumber(p),
					(unsigned long long)XML_GetCurrentColumnNumber(p),
					XML_ErrorString(XML_GetErrorCode(p)));
			}
			return x->err;
		}
		body += chunk;
		len -= chunk;
	} while (len);
	return x->err;
}

enum mdm_err xmlparse_run(struct xmlparse *x, const char *body, size_t len)
{
	XML_Parser p;

	x->depth = 0;
	x->tlen = 0;
	x->err = MDM_OK;
	if (len > x->max_body) {
		x->err = MDM_ERR_TOOBIG;
		err_why(x->why, x->whysz, "the answer is %zu bytes, more than the %zu allowed", len,
			x->max_body);
		return x->err;
	}
	p = XML_ParserCreate(x->encoding);
	if (!p) {
		x->err = MDM_ERR_NOMEM;
		err_why(x->why, x->whysz, "out of memory for the XML parser");
		return x->err;
	}
	x->parser = p;
	XML_SetUserData(p, x);
	XML_SetElementHandler(p, on_start, on_end);
	XML_SetCharacterDataHandler(p, on_text);
	harden(p);
	feed(x, body ? body : "", body ? len : 0);
	XML_ParserFree(p);
	x->parser = NULL;
	return x->err;
}
