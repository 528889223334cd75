/*
 * prom: the Prometheus text exposition format, appended to a buffer. The first failure to
 * append (the buffer's bound, no memory) sticks in p->e and later appends do nothing, so a
 * renderer of many lines writes them all and looks at p->e once, at the end.
 * Threading: a prom is used by one thread at a time.
 */
#ifndef MDM_PROM_H
#define MDM_PROM_H

#include "buf.h"
#include "err.h"

struct prom {
	struct buf *b;
	enum mdm_err e; /* MDM_OK until an append fails */
};

/* prom_init: a writer appending to b. */
struct prom prom_init(struct buf *b);

/* prom_head: the HELP and TYPE lines of a metric whose samples follow (with labels). */
void prom_head(struct prom *p, const char *name, const char *type, const char *help);

/* prom_value: a metric without labels: its HELP, TYPE and one sample. */
void prom_value(struct prom *p, const char *name, const char *type, const char *help,
		unsigned long long v);

/* prom_addf: any text, typically one labelled sample after prom_head. */
void prom_addf(struct prom *p, const char *fmt, ...) MDM_PRINTF(2, 3);

#endif
