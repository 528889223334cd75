/*
 * fanout: asks several adapters about several identifiers at once and gathers the outcomes.
 * A fanout holds nidents x nadapters outcome slots. fanout_start() launches every lookup;
 * fanout_wait() blocks until all have answered or the deadline passes, when every unanswered
 * slot becomes OUTCOME_FAILED / FAIL_TIMEOUT. Late answers after that are dropped safely: the
 * object is reference counted and freed by whoever lets go last.
 */
#ifndef MDM_FANOUT_H
#define MDM_FANOUT_H

#include <stddef.h>
#include <stdint.h>

#include "adapter.h"

struct fanout;

/* fanout_create: slots for nidents identifiers asked of the nads adapters (NULL: no memory). */
struct fanout *fanout_create(struct adapter *const *ads, size_t nads, size_t nidents);

/*
 * fanout_start: launches lookups of ids[0..nidents) at every adapter, each with deadline_ms
 * (clock_mono_ms time). An adapter that refuses the call gives OUTCOME_FAILED at once.
 */
void fanout_start(struct fanout *f, const struct ident *ids, int64_t deadline_ms);

/*
 * fanout_on_done: set before fanout_start for a fanout nobody waits on: done(arg) is called
 * exactly once, when every slot has answered or fanout_expire() closed it, on the thread that
 * completed it (inside fanout_start when the adapters answered at once). After done the
 * outcomes are final; the caller still holds its reference and releases it.
 */
typedef void (*fanout_done_cb)(void *arg);
void fanout_on_done(struct fanout *f, fanout_done_cb done, void *arg);

/*
 * fanout_expire: every unanswered slot becomes OUTCOME_FAILED / FAIL_TIMEOUT and the fanout
 * closes (late answers are dropped), calling done if it had not been called. A no-op on a
 * closed fanout. The caller must hold its reference.
 */
void fanout_expire(struct fanout *f);

/* fanout_wait: waits for every answer or the deadline; MDM_ERR_TIMEOUT if any slot timed out. */
enum mdm_err fanout_wait(struct fanout *f, int64_t deadline_ms);

/* fanout_outcomes: the nads outcomes for identifier i, in adapter order (valid after wait). */
struct outcome *fanout_outcomes(struct fanout *f, size_t i);

/* fanout_release: the caller's reference; call once after wait. */
void fanout_release(struct fanout *f);

#endif
