/*
 * pages: the newest bulk listing of an adapter, served in pages by cursor. A listing is one
 * generation; a cursor "g<gen>:<offset>" names a page of it, and a cursor into a generation
 * that was replaced (or a malformed one) answers "listing cursor expired" instead of mixing two
 * generations in one walk. Shared by every adapter that lists from a vendor (sccm, mcms).
 * Thread-safe: one mutex, held while a page is copied out.
 */
#ifndef MDM_PAGES_H
#define MDM_PAGES_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "adapter.h"

#define PAGES_SIZE 1000 /* devices per page */

struct pages {
	pthread_mutex_t mu;
	struct device *devs; /* the held generation (malloc'd, flat records) */
	size_t n;
	unsigned long long gen; /* its number; 0: none held yet */
	bool drained;		/* its last page was served: the records are freed */
};

/* pages_init / pages_free: an empty store; pages_free drops the held generation. */
enum mdm_err pages_init(struct pages *p);
void pages_free(struct pages *p);

/*
 * pages_hold: devs (n records, malloc'd or NULL when n is 0) becomes the newest generation; the
 * store owns it from now on and the previous one is freed. Returns the new generation's number.
 */
unsigned long long pages_hold(struct pages *p, struct device *devs, size_t n);

/*
 * pages_page: up to PAGES_SIZE devices of generation gen from off into pg (initialised here),
 * with next_cursor set when more follow. A generation no longer held or an offset past the end:
 * OUTCOME_FAILED, FAIL_PROTOCOL, "listing cursor expired". Out of memory: FAIL_INTERNAL.
 * Serving the last page drains the generation (its records are freed, later cursors into it
 * are expired): a walk reads each page once, and the reconciler keeps the listing compactly
 * itself, so holding a second, wide copy of every device between cycles only costs memory.
 */
void pages_page(struct pages *p, unsigned long long gen, size_t off, struct adapter_page *pg);

/* pages_serve: the page a cursor names; a cursor that does not parse is an expired one. */
void pages_serve(struct pages *p, const char *cursor, struct adapter_page *pg);

/* pages_answer: the page a cursor names (pages_serve) handed to cb, at once: how a listing's
 * later pages are answered. */
void pages_answer(struct pages *p, const char *cursor, adapter_list_cb cb, void *arg);

#endif
