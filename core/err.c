#include <stdarg.h>
#include <stdio.h>

#include "err.h"

const char *err_str(enum mdm_err e)
{
	switch (e) {
	case MDM_OK:
		return "ok";
	case MDM_ERR_NOMEM:
		return "out of memory";
	case MDM_ERR_INVALID:
		return "invalid input";
	case MDM_ERR_TOOBIG:
		return "too big";
	case MDM_ERR_NOTFOUND:
		return "not found";
	case MDM_ERR_IO:
		return "i/o error";
	case MDM_ERR_PARSE:
		return "parse error";
	case MDM_ERR_CONFIG:
		return "configuration error";
	case MDM_ERR_AUTH:
		return "authentication failed";
	case MDM_ERR_FORBIDDEN:
		return "forbidden";
	case MDM_ERR_THROTTLED:
		return "throttled";
	case MDM_ERR_TLS:
		return "tls error";
	case MDM_ERR_TIMEOUT:
		return "timed out";
	case MDM_ERR_UNAVAILABLE:
		return "unavailable";
	case MDM_ERR_BUSY:
		return "busy";
	case MDM_ERR_EXISTS:
		return "exists";
	case MDM_ERR_INTERNAL:
		return "internal error";
	}
	return "unknown error";
}

void err_why(char *why, size_t whysz, const char *fmt, ...)
{
	va_list ap;

	if (!why || !whysz)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whysz, fmt, ap);
	va_end(ap);
}
