/* clock: time in milliseconds, and durations written with units ("150ms", "30s", "15m", "1h"). */
#ifndef MDM_CLOCK_H
#define MDM_CLOCK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "err.h"

/* clock_mono_ms: monotonic milliseconds, for deadlines and ages. */
int64_t clock_mono_ms(void);
/* clock_wall_ms: milliseconds since the Unix epoch, for timestamps on the wire. */
int64_t clock_wall_ms(void);
/*
 * clock_realtime_after: the CLOCK_REALTIME instant ms from now, for pthread_cond_timedwait on a
 * condition variable set up the default way (it waits on the real-time clock). ms < 0 counts as
 * 0. The product's timed waits use clock_cond_init and clock_cond_wait_until instead.
 */
void clock_realtime_after(int64_t ms, struct timespec *ts);
/*
 * clock_cond_init: a condition variable whose timed waits count on CLOCK_MONOTONIC, so that
 * clock_cond_wait_until takes clock_mono_ms deadlines and a step of the wall clock moves none of
 * them. MDM_ERR_NOMEM when it cannot be set up (then there is nothing to destroy).
 */
enum mdm_err clock_cond_init(pthread_cond_t *cv);
/*
 * clock_cond_wait_until: waits on cv (set up by clock_cond_init; mu held, as for
 * pthread_cond_wait) until it is signalled or deadline_ms (clock_mono_ms time) has come. True
 * when the deadline has come; false on a wake-up, which may be spurious: callers loop on their
 * condition.
 */
bool clock_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline_ms);
/*
 * duration_parse: "<digits><unit>" with unit ms, s, m, h or d into milliseconds; "0" alone needs
 * no unit. Otherwise no unit, an
 * empty string, a sign, a fraction or a value past 2^53 ms is MDM_ERR_INVALID.
 */
enum mdm_err duration_parse(const char *s, int64_t *ms);

#define CLOCK_ISO_SIZE 32 /* "2024-05-01T12:00:00.000Z" and room to spare */

/*
 * clock_iso: wall_ms (clock_wall_ms time) as ISO 8601 in UTC with milliseconds,
 * "2024-05-01T12:00:00.000Z", for what operators read (admin API, command line).
 * MDM_ERR_INVALID for a time before 1970 or past year 9999 (out is "" then).
 */
enum mdm_err clock_iso(int64_t wall_ms, char out[CLOCK_ISO_SIZE]);

#endif
