#include <stddef.h>
#include <string.h>

#include "adapter.h"

enum mdm_err adapter_lookup(struct adapter *a, const struct ident *id, int64_t deadline_ms,
			    adapter_lookup_cb cb, void *arg)
{
	return a->ops->lookup(a, id, deadline_ms, cb, arg);
}

enum mdm_err adapter_list(struct adapter *a, const char *cursor, adapter_list_cb cb, void *arg)
{
	return a->ops->list(a, cursor, cb, arg);
}

enum mdm_err adapter_action(struct adapter *a, const char *vendor_id, enum action_kind kind,
			    adapter_action_cb cb, void *arg)
{
	return a->ops->action(a, vendor_id, kind, cb, arg);
}

enum mdm_err adapter_test_connection(struct adapter *a, adapter_test_cb cb, void *arg)
{
	return a->ops->test_connection(a, cb, arg);
}

void adapter_not_applicable(adapter_lookup_cb cb, void *arg)
{
	struct outcome oc;

	outcome_init(&oc);
	outcome_set(&oc, OUTCOME_NOT_APPLICABLE, FAIL_NONE, NULL);
	cb(arg, &oc);
	outcome_clear(&oc);
}

void adapter_health(struct adapter *a, struct adapter_health *out)
{
	memset(out, 0, sizeof(*out));
	out->healthy = true;
	if (a->ops->health)
		a->ops->health(a, out);
}

const char *adapter_breaker_name(enum adapter_breaker b)
{
	switch (b) {
	case BREAKER_OPEN:
		return "open";
	case BREAKER_PROBING:
		return "probing";
	default:
		return "closed";
	}
}

void adapter_destroy(struct adapter *a)
{
	if (a)
		a->ops->destroy(a);
}
