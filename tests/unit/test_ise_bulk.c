/*
 * The NAC's bulk poll served from the snapstore: pages no larger than query_max_size, a walk
 * that stays in the generation it started in while a new one is published, and a cursor into
 * a generation no longer kept refused rather than answered from another list.
 */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../../gateway/app/config.h"
#include "../../gateway/ise/ise_api.h"

static const struct merge_policy POLICY = {.compliant_requires_all = true};

/* Generation gen of n devices, MAC 00163E0000<i>, non-compliant where i % modulo == 0. */
static struct snapshot *generation(uint64_t gen, size_t n, int modulo)
{
	struct device d[16];
	struct rowset *rs = rowset_new("a");
	struct snapshot *s = NULL;

	assert_true(n <= 16);
	assert_non_null(rs);
	for (size_t i = 0; i < n; i++) {
		memset(&d[i], 0, sizeof(d[i]));
		snprintf(d[i].vendor_id, sizeof(d[i].vendor_id), "v%zu", i);
		snprintf(d[i].macs[0], sizeof(d[i].macs[0]), "00163E0000%02zX", i);
		d[i].nmacs = 1;
		d[i].registered = TRI_TRUE;
		d[i].compliant = (int)i % modulo == 0 ? TRI_FALSE : TRI_TRUE;
	}
	assert_int_equal(rowset_add(rs, d, n), MDM_OK);
	rowset_finish(rs, 1);
	assert_int_equal(snapshot_make(&rs, NULL, 1, &POLICY, gen, &s), MDM_OK);
	rowset_unref(rs);
	return s;
}

struct page {
	int status;
	char macs[8][13];
	int n;
	unsigned long next;
	char body[4096];
};

static void get_page(struct ise_api *ctx, unsigned long cursor, struct page *p)
{
	char target[256];
	struct route r;
	struct http_response res;
	struct handler_request rq = {.route = &r, .user = "test", .roles = ~0u, .addr = "-"};
	const char *at;

	snprintf(target, sizeof(target),
		 "/ciscoise/mdmapi/v3/devices/?paging=%lu&querycriteria=compliance&value=false",
		 cursor);
	route_parse_target("GET", target, "", &r);
	assert_int_equal(r.kind, ROUTE_DEVICES);
	http_response_init(&res);
	ise_handle(ctx, &rq, &res);
	memset(p, 0, sizeof(*p));
	p->status = res.status;
	snprintf(p->body, sizeof(p->body), "%s", buf_str(&res.body));
	for (at = p->body; (at = strstr(at, "<macaddress>")) != NULL && p->n < 8; at++)
		memcpy(p->macs[p->n++], at + 12, 12);
	at = strstr(p->body, "<paging_info>");
	if (at)
		p->next = strtoul(at + 13, NULL, 10);
	http_response_clear(&res);
}

static void test_walk_stays_in_its_generation(void **state)
{
	static struct config cfg;
	struct ise_api ctx;
	struct page p;
	char seen[16][13];
	int nseen = 0;

	(void)state;
	memset(&ctx, 0, sizeof(ctx));
	cfg.api.query_max_size = 2;
	ctx.api = &cfg.api;
	ctx.snaps = snapstore_create(200);
	assert_non_null(ctx.snaps);
	/* before any generation: 503, not an empty list */
	get_page(&ctx, 0, &p);
	assert_int_equal(p.status, 503);
	/* generation 1: devices 0, 2, 4, 6, 8 are non-compliant */
	snapstore_publish(ctx.snaps, generation(1, 10, 2));
	get_page(&ctx, 0, &p);
	assert_int_equal(p.status, 200);
	assert_int_equal(p.n, 2);
	assert_string_equal(p.macs[0], "00163E000000");
	assert_string_equal(p.macs[1], "00163E000002");
	assert_int_not_equal(p.next, 0);
	/* generation 2 swapped in mid-walk: only devices 0, 3, 6, 9 are non-compliant now */
	snapstore_publish(ctx.snaps, generation(2, 10, 3));
	for (;;) {
		for (int i = 0; i < p.n; i++)
			memcpy(seen[nseen++], p.macs[i], 13);
		if (!p.next)
			break;
		get_page(&ctx, p.next, &p);
		assert_int_equal(p.status, 200);
		assert_true(p.n <= 2);
	}
	/* the walk saw generation 1's list, whole, nothing of generation 2 */
	assert_int_equal(nseen, 5);
	for (int i = 0; i < 5; i++) {
		char want[13];

		snprintf(want, sizeof(want), "00163E0000%02X", 2 * i);
		assert_string_equal(seen[i], want);
	}
	/* a walk started now sees generation 2 */
	get_page(&ctx, 0, &p);
	assert_string_equal(p.macs[0], "00163E000000");
	assert_string_equal(p.macs[1], "00163E000003");
	{
		unsigned long gen2_cursor = p.next, gen1_cursor = (2ul << 10) | 1;

		/* generation 1 expires: its cursors are refused, gen 2's (current) still work */
		usleep(400 * 1000);
		snapstore_publish(ctx.snaps, generation(3, 10, 5));
		get_page(&ctx, gen1_cursor, &p);
		assert_int_equal(p.status, 400);
		assert_non_null(strstr(p.body, "paging cursor expired: start the walk again"));
		get_page(&ctx, gen2_cursor, &p);
		assert_int_equal(p.status, 200);
		assert_string_equal(p.macs[0], "00163E000006");
		assert_string_equal(p.macs[1], "00163E000009");
		assert_int_equal(p.next, 0);
	}
	/* a cursor naming a generation after the current one was never handed out */
	get_page(&ctx, (2ul << 10) | 4, &p);
	assert_int_equal(p.status, 400);
	assert_non_null(strstr(p.body, "not a paging_info value"));
	snapstore_destroy(ctx.snaps);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_walk_stays_in_its_generation),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
