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

/* What an operator sees of an adapter in GET /api/v1/adapters. */
enum adapter_breaker { BREAKER_CLOSED = 0, BREAKER_OPEN, BREAKER_PROBING };

struct adapter_health {
	bool healthy; /* the last call to the vendor succeeded (or none failed yet) */
	enum adapter_breaker breaker;
	uint64_t requests, failures; /* calls to the vendor, and those that failed */
	int64_t last_ok_ms;	     /* clock_wall_ms of the last success; 0: none */
	int64_t last_error_ms;	     /* clock_wall_ms of the last failure; 0: none */
	char last_error[256];	     /* why the last failure happened; "" when none */
};

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
	/* health: a consistent snapshot of the adapter's state; thread-safe, never blocks. */
	void (*health)(struct adapter *a, struct adapter_health *out);
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
/* adapter_not_applicable: answers cb at once with OUTCOME_NOT_APPLICABLE, for an identifier
 * kind the source has no key for. */
void adapter_not_applicable(adapter_lookup_cb cb, void *arg);
/* adapter_health: the op when the adapter has one, else a healthy, closed, zero record. */
void adapter_health(struct adapter *a, struct adapter_health *out);
const char *adapter_breaker_name(enum adapter_breaker b); /* "closed", "open", "probing" */
void adapter_destroy(struct adapter *a);

#endif
