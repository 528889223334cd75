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

/* fanout_wait: waits for every answer or the deadline; MDM_ERR_TIMEOUT if any slot timed out. */
enum mdm_err fanout_wait(struct fanout *f, int64_t deadline_ms);

/* fanout_outcomes: the nads outcomes for identifier i, in adapter order (valid after wait). */
struct outcome *fanout_outcomes(struct fanout *f, size_t i);

/* fanout_release: the caller's reference; call once after wait. */
void fanout_release(struct fanout *f);

#endif
