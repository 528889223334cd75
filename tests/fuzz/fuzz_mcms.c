/*
 * fuzz_mcms: the cloud MDM answer parsers (adapters/mcms_rules.h) on hostile input: what an
 * MDM on the Internet sends is untrusted. The whole input goes to the mdminfo, device-list and
 * action parsers; beyond the sanitizers, the documented promises of each result are checked and
 * a broken one aborts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../adapters/mcms_rules.h"

#define FUZZ_MAX_BODY (64 * 1024)
#define FUZZ_MAX_DEVICES 50

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_info(const char *body, size_t len)
{
	struct mcms_info info;
	char why[256];

	if (mcms_mdminfo_parse(body, len, FUZZ_MAX_BODY, &info, why, sizeof(why)) != MDM_OK)
		return;
	if (info.api_version < 1 || info.api_version > 3 || info.api_path[0] != '/' ||
	    info.query_max_size < 1 || info.query_max_size > MCMS_QUERY_MAX_LIMIT)
		abort();
}

static void check_devices(const char *body, size_t len)
{
	struct outcome oc;
	uint32_t next = 0;
	int busy = 0;
	size_t dropped = 0;
	char why[256];
	enum mdm_err e;

	outcome_init(&oc);
	e = mcms_devices_parse(body, len, FUZZ_MAX_BODY, FUZZ_MAX_DEVICES, "fuzz", &oc, &next,
			       &busy, &dropped, why, sizeof(why));
	/* a parse failure is a failed outcome, never "not enrolled" or a verdict */
	if (e != MDM_OK && (oc.kind != OUTCOME_FAILED || oc.ndevs != 0))
		abort();
	if (e == MDM_OK && oc.kind != OUTCOME_FOUND && oc.kind != OUTCOME_NOT_ENROLLED)
		abort();
	if (oc.ndevs > FUZZ_MAX_DEVICES || busy < 0 || busy > MCMS_BUSY_WAIT_MAX)
		abort();
	for (size_t i = 0; i < oc.ndevs; i++)
		if (strcmp(oc.devs[i].source, "fuzz") != 0 || oc.devs[i].nmacs > DEVICE_MACS_MAX)
			abort();
	outcome_clear(&oc);
}

static void check_action(const char *body, size_t len)
{
	bool accepted = true;
	char reason[256], why[256];

	if (mcms_action_parse(body, len, FUZZ_MAX_BODY, &accepted, reason, sizeof(reason), why,
			      sizeof(why)) != MDM_OK)
		return;
	if (strnlen(reason, sizeof(reason)) >= sizeof(reason))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body = (const char *)data;

	check_info(body, size);
	check_devices(body, size);
	check_action(body, size);
	return 0;
}
