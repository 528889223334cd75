#define _POSIX_C_SOURCE 200809L
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
