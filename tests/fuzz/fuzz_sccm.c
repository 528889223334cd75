/*
 * fuzz_sccm: the SCCM AdminService answer parser (adapters/sccm_rules.h) on hostile input: the
 * site server's OData pages are a vendor's bytes. The whole input goes to the page parser for
 * each of the four classes and to the date parser; beyond the sanitizers, the documented
 * promises of each result are checked (rows within the bound, MACs normalised, strings
 * terminated, times from 1970 on) and a broken one aborts. The rules that consume a page (the
 * record choice, compliance, the device record) run on what parsed.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../adapters/sccm_rules.h"

#define FUZZ_MAX_BODY (64 * 1024)
#define FUZZ_MAX_ROWS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_mac(const char *mac)
{
	if (strlen(mac) != MAC_STR_LEN)
		abort();
	for (size_t i = 0; i < MAC_STR_LEN; i++)
		if (hex_value(mac[i]) < 0 || (mac[i] >= 'a' && mac[i] <= 'f'))
			abort();
}

static void check_systems(const struct sccm_page *p)
{
	struct device d;

	for (size_t i = 0; i < p->nrows; i++) {
		const struct sccm_system *s = &p->systems[i];

		if (s->nmacs > DEVICE_MACS_MAX ||
		    strnlen(s->name, sizeof(s->name)) >= sizeof(s->name))
			abort();
		for (unsigned m = 0; m < s->nmacs; m++)
			check_mac(s->macs[m]);
		if (s->resource_id >= 0 &&
		    sccm_fill_device(s->resource_id, s, NULL, 0, NULL, 0, "fuzz", &d) == MDM_OK &&
		    (d.nmacs > DEVICE_MACS_MAX || d.registered != TRI_TRUE))
			abort();
	}
	if (p->nrows && (sccm_pick_resource(p->systems, p->nrows) < 0 ||
			 (size_t)sccm_pick_resource(p->systems, p->nrows) >= p->nrows))
		abort();
}

static void check_ci(const struct sccm_page *p)
{
	struct device d;

	memset(&d, 0, sizeof(d));
	for (size_t i = 0; i < p->nrows; i++) {
		sccm_compliance(p->ci_states, p->nrows, p->ci_states[i].resource_id, NULL, 0, false,
				&d);
		if (d.compliant != TRI_TRUE && d.compliant != TRI_FALSE)
			abort();
		if (strnlen(d.failure_reason, sizeof(d.failure_reason)) >= sizeof(d.failure_reason))
			abort();
	}
}

static void check_page(const char *body, size_t len, enum sccm_class cls)
{
	struct sccm_page page;
	char why[256];
	enum mdm_err e;

	memset(&page, 0, sizeof(page));
	e = sccm_odata_page(body, len, cls, FUZZ_MAX_BODY, FUZZ_MAX_ROWS, &page, why, sizeof(why));
	if (e == MDM_OK) {
		if (page.nrows > FUZZ_MAX_ROWS)
			abort();
		if (cls == SCCM_SYSTEM)
			check_systems(&page);
		else if (cls == SCCM_NIC)
			for (size_t i = 0; i < page.nrows; i++)
				check_mac(page.nics[i].mac);
		else if (cls == SCCM_CI_STATE)
			check_ci(&page);
		else
			for (size_t i = 0; i < page.nrows; i++)
				if (page.summaries[i].last_policy_request_ms < 0)
					abort();
	} else if (!why[0]) {
		abort(); /* every refusal says why */
	}
	sccm_page_free(&page);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *body = malloc(size + 1);
	int64_t ms;

	if (!body)
		return 0;
	memcpy(body, data, size);
	body[size] = '\0';
	for (int cls = SCCM_SYSTEM; cls <= SCCM_CLIENT_SUMMARY; cls++)
		check_page(body, size, (enum sccm_class)cls);
	if (size < 64 && sccm_time_parse(body, &ms) == MDM_OK && ms < 0)
		abort();
	free(body);
	return 0;
}
