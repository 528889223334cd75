/*
 * adapter: one vendor back end behind a small asynchronous vtable.
 * Every call returns at once; the answer arrives through the callback, which may run before
 * the call returns (an adapter that answers from memory) or later on another thread (network
 * adapters). The callback is called exactly once per accepted call, and never when the call
 * itself returned an error. An adapter knows nothing of HTTP serving, the cache or the NAC.
 */
#ifndef MDM_ADAPTER_H
#define MDM_ADAPTER_H

#include <stdbool.h>
#include <stdint.h>

#include "../core/device.h"
#include "../core/err.h"
#include "../core/ident.h"

struct adapter;

/* lookup answer: the callee hands over oc; the callback must outcome_move() or outcome_clear() it.
 */
typedef void (*adapter_lookup_cb)(void *arg, struct outcome *oc);

/* one page of a bulk listing: oc is OUTCOME_FOUND (maybe zero devices: kind NOT_ENROLLED) or
 * FAILED. */
struct adapter_page {
	struct outcome oc;
	char next_cursor[64]; /* "" when this was the last page */
};
typedef void (*adapter_list_cb)(void *arg, struct adapter_page *page);

struct action_result {
	bool accepted;	     /* the MDM accepted the command */
	enum fail_kind fail; /* FAIL_NONE unless the MDM could not be asked */
	char reason[256];    /* why not accepted, for failure_reason */
};
typedef void (*adapter_action_cb)(void *arg, struct action_result *res);

struct adapter_test {
	bool ok;
	char message[512]; /* a diagnosis an administrator can act on */
};
typedef void (*adapter_test_cb)(void *arg, struct adapter_test *res);

struct adapter_ops {
	const char *type;
	/* lookup: the records the source holds for id, by deadline_ms (clock_mono_ms time). */
	enum mdm_err (*lookup)(struct adapter *a, const struct ident *id, int64_t deadline_ms,
			       adapter_lookup_cb cb, void *arg);
	/* list: one page of all devices, starting at cursor ("" for the first page). */
	enum mdm_err (*list)(struct adapter *a, const char *cursor, adapter_list_cb cb, void *arg);
	/* action: asks the MDM to perform kind on its device vendor_id. */
	enum mdm_err (*action)(struct adapter *a, const char *vendor_id, enum action_kind kind,
			       adapter_action_cb cb, void *arg);
	/* test_connection: checks that the source can be reached and answers. */
	enum mdm_err (*test_connection)(struct adapter *a, adapter_test_cb cb, void *arg);
	void (*destroy)(struct adapter *a);
};

struct adapter {
	const struct adapter_ops *ops;
	char name[64];
	void *priv;
};

/* Convenience wrappers over the vtable; adapter_destroy(NULL) does nothing. */
enum mdm_err adapter_lookup(struct adapter *a, const struct ident *id, int64_t deadline_ms,
			    adapter_lookup_cb cb, void *arg);
enum mdm_err adapter_list(struct adapter *a, const char *cursor, adapter_list_cb cb, void *arg);
enum mdm_err adapter_action(struct adapter *a, const char *vendor_id, enum action_kind kind,
			    adapter_action_cb cb, void *arg);
enum mdm_err adapter_test_connection(struct adapter *a, adapter_test_cb cb, void *arg);
void adapter_destroy(struct adapter *a);

#endif
