#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "clock.h"

int64_t clock_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t clock_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

enum mdm_err duration_parse(const char *s, int64_t *ms)
{
	static const struct {
		const char *unit;
		int64_t mult;
	} units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
	const int64_t limit = (int64_t)1 << 53;
	int64_t v = 0;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return MDM_ERR_INVALID;
	if (strcmp(s, "0") == 0) { /* zero needs no unit ("interval": "0" turns a timer off) */
		*ms = 0;
		return MDM_OK;
	}
	while (*p >= '0' && *p <= '9') {
		v = v * 10 + (*p - '0');
		if (v > limit)
			return MDM_ERR_INVALID;
		p++;
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(p, units[i].unit) == 0) {
			if (v > limit / units[i].mult)
				return MDM_ERR_INVALID;
			*ms = v * units[i].mult;
			return MDM_OK;
		}
	}
	return MDM_ERR_INVALID;
}

enum mdm_err clock_iso(int64_t wall_ms, char out[CLOCK_ISO_SIZE])
{
	/* 253402300800 s is 10000-01-01: later years do not fit the four digits of the form */
	time_t secs = (time_t)(wall_ms / 1000);
	struct tm tm;
	size_t n;

	out[0] = '\0';
	if (wall_ms < 0 || wall_ms / 1000 >= 253402300800LL || !gmtime_r(&secs, &tm))
		return MDM_ERR_INVALID;
	n = strftime(out, CLOCK_ISO_SIZE, "%Y-%m-%dT%H:%M:%S", &tm);
	if (n == 0)
		return MDM_ERR_INVALID;
	snprintf(out + n, CLOCK_ISO_SIZE - n, ".%03dZ", (int)(wall_ms % 1000));
	return MDM_OK;
}

void clock_realtime_after(int64_t ms, struct timespec *ts)
{
	if (ms < 0)
		ms = 0;
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += (time_t)(ms / 1000);
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

enum mdm_err clock_cond_init(pthread_cond_t *cv)
{
	pthread_condattr_t ca;
	bool ok;

	if (pthread_condattr_init(&ca) != 0)
		return MDM_ERR_NOMEM;
	ok =
	    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 && pthread_cond_init(cv, &ca) == 0;
	pthread_condattr_destroy(&ca);
	return ok ? MDM_OK : MDM_ERR_NOMEM;
}

bool clock_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline_ms)
{
	struct timespec ts;

	if (deadline_ms < 0)
		deadline_ms = 0;
	ts.tv_sec = (time_t)(deadline_ms / 1000);
	ts.tv_nsec = (long)(deadline_ms % 1000) * 1000000L;
	return pthread_cond_timedwait(cv, mu, &ts) == ETIMEDOUT;
}
