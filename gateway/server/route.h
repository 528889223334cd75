/*
 * route: maps a request (method, decoded path, decoded query arguments) to what the ISE MDM API
 * asks, with every parameter validated. Knows the optional instance prefix, trailing slashes,
 * the v1 path forms and the three action URL forms. Pure: no I/O, no allocation.
 */
#ifndef MDM_ROUTE_H
#define MDM_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../core/device.h"
#include "../../core/ident.h"

#define API_VERSION_MAX 3
#define ROUTE_PAGING_MAX 0x7fffffffu

enum route_kind {
	ROUTE_NOT_FOUND = 0, /* 404 */
	ROUTE_BAD,	     /* 400/405: status and why say what */
	ROUTE_HEALTHZ,
	ROUTE_MDMINFO,
	ROUTE_DEVICES,	    /* GET devices, any form */
	ROUTE_BATCH,	    /* POST batchdevices */
	ROUTE_ACTION,	    /* POST action */
	ROUTE_SENDMESSAGE,  /* PUT sendmessage: not offered (messaging_support=false) */
	ROUTE_METRICS,	    /* GET /metrics (admin) */
	ROUTE_PURGE,	    /* DELETE /api/v1/cache/devices/{identifier} (admin); value holds it */
	ROUTE_ADAPTERS,	    /* GET /api/v1/adapters (admin) */
	ROUTE_ADAPTER_TEST, /* POST /api/v1/adapters/{name}/test (admin); value holds the name */
	/* the actions admin API (value: {id} of the device or action, as sent, decoded) */
	ROUTE_DEVICE_ACTION,  /* POST /api/v1/devices/{id}/actions */
	ROUTE_ACTION_GET,     /* GET /api/v1/actions/{action_id} */
	ROUTE_ACTIONS,	      /* GET /api/v1/actions?device=&state= (value: device, state) */
	ROUTE_ACTION_RESOLVE, /* POST /api/v1/actions/{action_id}/resolve */
	ROUTE_BLOCK_PUT,      /* PUT /api/v1/devices/{id}/block */
	ROUTE_BLOCK_DELETE,   /* DELETE /api/v1/devices/{id}/block */
	ROUTE_BLOCKS,	      /* GET /api/v1/blocks */
	/* the CoA admin API (gateway/admin/coa_api.h) */
	ROUTE_COA_LIST, /* GET /api/v1/coa?state=failed|sent|all (state: "" for all) */
	ROUTE_COA_TEST, /* POST /api/v1/coa/test */
	/* trans: the change guard */
	ROUTE_RECON_RELEASE, /* POST /api/v1/reconciler/release */
	/* the reconciler (recon_api.h) */
	ROUTE_RECON_RUN,    /* POST /api/v1/reconciler/run */
	ROUTE_RECON_STATUS, /* GET /api/v1/reconciler */
	/* the sessions admin API (value: the {mac} as sent, decoded) */
	ROUTE_SESSION_PUT,    /* PUT /api/v1/sessions/{mac} */
	ROUTE_SESSION_DELETE, /* DELETE /api/v1/sessions/{mac} */
	ROUTE_SESSION_GET,    /* GET /api/v1/sessions/{mac} */
	ROUTE_SESSIONS,	      /* GET /api/v1/sessions?limit=N (limit) */
	ROUTE_KIND_COUNT      /* not a route: how many kinds there are */
};

enum criterion {
	CRIT_NONE = 0, /* all devices */
	CRIT_MAC,
	CRIT_GUID,
	CRIT_UDID,
	CRIT_IMEI,
	CRIT_MEID,
	CRIT_USERNAME,
	CRIT_HOSTNAME,
	CRIT_COMPLIANCE,
};

struct route_arg {
	const char *key;
	const char *value; /* NULL for a key with no '=' */
};

struct route {
	enum route_kind kind;
	int status;	 /* for ROUTE_BAD: 400 or 405 */
	char allow[16];	 /* for 405: the method that is allowed */
	char why[256];	 /* for ROUTE_BAD: a sentence for the client */
	int api_version; /* 1..3: of the path (mdmapi/vN), or negotiated for mdminfo */
	enum criterion crit;
	char value[IDENT_VALUE_MAX + 1]; /* raw criterion value, as sent (trimmed) */
	bool compliant_value;		 /* CRIT_COMPLIANCE: the value asked for */
	uint32_t paging;		 /* cursor sent by the client; 0 for the first page */
	bool key_by_guid;		 /* deviceidentifier=guid (v3 bulk) */
	bool has_action;
	enum action_kind action;
	char state[24];	 /* ROUTE_ACTIONS: the state= filter as sent ("" for none) */
	bool has_device; /* ROUTE_ACTIONS: device= was given (value holds it) */
	uint32_t limit;	 /* ROUTE_SESSIONS: limit= 1..100000; 0 when absent */
};

/*
 * route_parse: fills r for a request. path is the path as sent (still percent-encoded), args
 * the query arguments with '+' already turned into a space but percent escapes still in them:
 * the router splits first and decodes each segment and argument itself, so an encoded '/'
 * stays part of a value. instance is the configured prefix ("" for none). Always returns a
 * route; r->kind says what it is (ROUTE_BAD with 400/405/414 and a reason).
 */
void route_parse(const char *method, const char *path, const struct route_arg *args, size_t nargs,
		 const char *instance, struct route *r);

/*
 * route_parse_target: the same from a raw request target "path?query", as the fuzzer and tests
 * use it. Targets over 8 KiB are ROUTE_BAD (414).
 */
void route_parse_target(const char *method, const char *target, const char *instance,
			struct route *r);

/* criterion_ident_kind: the identifier kind a criterion looks up (CRIT_MAC -> IDENT_MAC ...). */
bool criterion_ident_kind(enum criterion c, enum ident_kind *out);
const char *criterion_name(enum criterion c);

#endif
