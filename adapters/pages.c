#include "pages.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum mdm_err pages_init(struct pages *p)
{
	memset(p, 0, sizeof(*p));
	return pthread_mutex_init(&p->mu, NULL) == 0 ? MDM_OK : MDM_ERR_NOMEM;
}

void pages_free(struct pages *p)
{
	free(p->devs);
	p->devs = NULL;
	p->n = 0;
	pthread_mutex_destroy(&p->mu);
}

unsigned long long pages_hold(struct pages *p, struct device *devs, size_t n)
{
	struct device *old;
	unsigned long long gen;

	pthread_mutex_lock(&p->mu);
	old = p->devs;
	p->devs = devs;
	p->n = n;
	p->drained = false;
	gen = ++p->gen;
	pthread_mutex_unlock(&p->mu);
	free(old);
	return gen;
}

static void expired(struct adapter_page *pg)
{
	outcome_clear(&pg->oc);
	outcome_set(&pg->oc, OUTCOME_FAILED, FAIL_PROTOCOL, "listing cursor expired");
}

void pages_page(struct pages *p, unsigned long long gen, size_t off, struct adapter_page *pg)
{
	struct device *drained = NULL;
	size_t end;

	memset(pg, 0, sizeof(*pg));
	outcome_init(&pg->oc);
	pthread_mutex_lock(&p->mu);
	if (gen == 0 || p->gen != gen || p->drained || off > p->n || (off == p->n && off != 0)) {
		pthread_mutex_unlock(&p->mu);
		expired(pg);
		return;
	}
	end = p->n - off > PAGES_SIZE ? off + PAGES_SIZE : p->n;
	for (size_t i = off; i < end; i++) {
		if (outcome_add(&pg->oc, &p->devs[i]) != MDM_OK) {
			pthread_mutex_unlock(&p->mu);
			outcome_clear(&pg->oc);
			outcome_set(&pg->oc, OUTCOME_FAILED, FAIL_INTERNAL, "out of memory");
			return;
		}
	}
	if (end < p->n) {
		snprintf(pg->next_cursor, sizeof(pg->next_cursor), "g%llu:%zu", gen, end);
	} else {
		drained = p->devs;
		p->devs = NULL;
		p->n = 0;
		p->drained = true;
	}
	pthread_mutex_unlock(&p->mu);
	free(drained);
}

/* parse_cursor: "g<gen>:<offset>", decimal, nothing else. */
static bool parse_cursor(const char *cur, unsigned long long *gen, size_t *off)
{
	char *end;
	unsigned long long o;

	if (cur[0] != 'g' || !isdigit((unsigned char)cur[1]))
		return false;
	*gen = strtoull(cur + 1, &end, 10);
	if (*end != ':' || !isdigit((unsigned char)end[1]))
		return false;
	o = strtoull(end + 1, &end, 10);
	if (*end)
		return false;
	*off = (size_t)o;
	return true;
}

void pages_serve(struct pages *p, const char *cursor, struct adapter_page *pg)
{
	unsigned long long gen;
	size_t off;

	if (parse_cursor(cursor, &gen, &off)) {
		pages_page(p, gen, off, pg);
		return;
	}
	memset(pg, 0, sizeof(*pg));
	outcome_init(&pg->oc);
	expired(pg);
}

void pages_answer(struct pages *p, const char *cursor, adapter_list_cb cb, void *arg)
{
	struct adapter_page pg;

	pages_serve(p, cursor, &pg);
	cb(arg, &pg);
	outcome_clear(&pg.oc);
}
