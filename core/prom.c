#include <stdarg.h>

#include "prom.h"

struct prom prom_init(struct buf *b)
{
	return (struct prom){b, MDM_OK};
}

void prom_addf(struct prom *p, const char *fmt, ...)
{
	va_list ap;

	if (p->e)
		return;
	va_start(ap, fmt);
	p->e = buf_vaddf(p->b, fmt, ap);
	va_end(ap);
}

void prom_head(struct prom *p, const char *name, const char *type, const char *help)
{
	prom_addf(p, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void prom_value(struct prom *p, const char *name, const char *type, const char *help,
		unsigned long long v)
{
	prom_head(p, name, type, help);
	prom_addf(p, "%s %llu\n", name, v);
}
