/*
 * log: one line per event on stderr, "<UTC time> <level> <message>".
 * Callers never pass credentials or Authorization headers to it.
 */
#ifndef MDM_LOG_H
#define MDM_LOG_H

#include "buf.h"

enum log_level { LOGL_ERR = 0, LOGL_WARN, LOGL_INFO, LOGL_DEBUG };

/* log_set_level: messages above level are dropped. Default LOGL_INFO. */
void log_set_level(enum log_level level);
/* log_parse_level: "error", "warn", "info", "debug" -> level; MDM_ERR_INVALID otherwise. */
enum mdm_err log_parse_level(const char *s, enum log_level *out);
/* log_enabled: whether a message at level would be written. */
int log_enabled(enum log_level level);
/* log_msg: writes one line (newlines in the message are replaced by spaces). Thread-safe. */
void log_msg(enum log_level level, const char *fmt, ...) MDM_PRINTF(2, 3);

#define log_err(...) log_msg(LOGL_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOGL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOGL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOGL_DEBUG, __VA_ARGS__)

#endif
